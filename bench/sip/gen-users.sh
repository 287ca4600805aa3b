#!/usr/bin/env bash
# Generate N users: users.csv (sipp injection file: user;password;[authentication ...])
# and a db_text directory (dbtext/version + dbtext/subscriber) for kamailio-reg-auth.cfg.
# sipp 3.6 does not expand [fieldN] inside an [authentication ...] keyword written in the
# scenario, so the whole keyword is carried in CSV field 2 and used as [field2].
# Usage: ./gen-users.sh [N]   (default 1000)
set -euo pipefail
cd "$(dirname "$0")"
N=${1:-1000}
mkdir -p dbtext
{
  echo "SEQUENTIAL"
  for i in $(seq 1 "$N"); do printf 'u%06d;pw%06d;[authentication username=u%06d password=pw%06d];\n' "$i" "$i" "$i" "$i"; done
} > users.csv
printf 'id(int,auto) table_name(string) table_version(int) \n0:subscriber:7\n' > dbtext/version
{
  echo 'id(int,auto) username(string) domain(string) password(string) ha1(string) ha1b(string) '
  for i in $(seq 1 "$N"); do printf '%d:u%06d:127.0.0.1:pw%06d:x:x\n' "$i" "$i" "$i"; done
} > dbtext/subscriber
# Parley: `parley users import parley-users.csv` (header row; realm = the config's [edge] domain),
# plus the UAS of the INVITE test (user uas, password pwuas; it registers with digest there).
{
  echo "user,sip_password"
  for i in $(seq 1 "$N"); do printf 'u%06d,pw%06d\n' "$i" "$i"; done
  echo "uas,pwuas"
} > parley-users.csv
echo "generated $N users -> users.csv, dbtext/subscriber, parley-users.csv"
