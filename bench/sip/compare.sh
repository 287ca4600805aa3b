#!/usr/bin/env bash
# Kamailio vs Parley's edge, same sipp scenarios, same rates, one after the other in one run.
#
#   bench/sip/compare.sh            full run (about 10-15 minutes on 2 cores)
#   QUICK=1 bench/sip/compare.sh    smoke run (about 2 minutes)
#
# For each scenario -- (a) REGISTER with digest, (b) INVITE through a registering, record-routing
# proxy to a registered UAS -- it sweeps a rate ladder upward, first against Kamailio, then
# against Parley, and stops a server's sweep at the first step with >= FAIL_PCT % failed calls.
# Prints (and writes results/compare.txt): the highest rate with < FAIL_PCT % failures per
# server, what sipp really achieved there, the server's CPU at that rate and Parley/Kamailio.
#
# Env knobs:
#   QUICK=1            DURATION=3, short ladders (smoke test)
#   DURATION (10)      seconds per step (sipp -m = RATE * DURATION)
#   REG_RATES          REGISTER ladder, calls/s (one call = 401 round + authenticated REGISTER)
#   INV_RATES          INVITE ladder, calls/s (one call = INVITE/100/200/ACK/BYE/200)
#   USERS (1000)       users (sipp CSV, Kamailio db_text, Parley user import)
#   FAIL_PCT (1)       a step fails at >= this % of failed calls
#   SERVERS            "kamailio parley" (default) or one of them
#   SCENARIOS          "register invite" (default) or one of them
#   PARLEY_BIN         a parley binary to use instead of building one
#   SKIP_BUILD=1       do not run cargo build (needs the binary built before)
#   plus lib.sh knobs: TARGET_PORT (5070), KAM_CHILDREN (4), KAM_SHM_MB, RECV_TIMEOUT_MS ...
# Everything listens on 127.0.0.1 (server 5070, UAS 5090, REGISTER UAC 5081, Parley's edge HTTP
# endpoint tcp 5079 = PARLEY_HTTP_PORT); everything
# started here is stopped by PID on exit, also on failure or Ctrl-C.
set -u
cd "$(dirname "$0")"
OWN_TRAP=1
RESULTS=${RESULTS:-results/compare-steps.txt}
. ./lib.sh
REPO_DIR=$(cd "$BENCH_DIR/../.." && pwd)

if [ "${QUICK:-0}" = 1 ]; then
  DURATION=${DURATION:-3}
  REG_RATES=${REG_RATES:-500 1000}
  INV_RATES=${INV_RATES:-100 300}
else
  DURATION=${DURATION:-10}
  REG_RATES=${REG_RATES:-1000 2000 3000 4000 5000 6000 8000 10000 12000}
  INV_RATES=${INV_RATES:-250 500 750 1000 1500 2000 2500 3000 4000 5000}
fi
USERS=${USERS:-1000}
FAIL_PCT=${FAIL_PCT:-1}
SERVERS=${SERVERS:-kamailio parley}
SCENARIOS=${SCENARIOS:-register invite}
UAS_PORT=${UAS_PORT:-5090}
UAC_PORT=${UAC_PORT:-5081}
PARLEY_DOMAIN=$TARGET_HOST
PARLEY_HTTP_PORT=${PARLEY_HTTP_PORT:-5079}
PARLEY_MEDIA_PORT=${PARLEY_MEDIA_PORT:-5078}

PARLEY_PID=""; UAS_PID=""
stop_pid() {  # $1 = pid, $2 = name: TERM, up to 5 s, then KILL
  local p=$1 i
  [ -n "$p" ] || return 0
  kill -TERM "$p" 2>/dev/null
  for i in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$p" 2>/dev/null && { echo "$2 ($p) did not stop on TERM: KILL"; kill -KILL "$p" 2>/dev/null; }
  wait "$p" 2>/dev/null
  return 0
}
stop_uas() { stop_pid "$UAS_PID" "sipp uas"; UAS_PID=""; }
stop_parley() { [ -n "$PARLEY_PID" ] && { stop_pid "$PARLEY_PID" parley; echo "parley stopped"; }; PARLEY_PID=""; }
cleanup() { stop_uas; stop_parley; stop_kamailio; }
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM

# ---- Parley ----
find_parley() {
  if [ -n "${PARLEY_BIN:-}" ]; then echo "$PARLEY_BIN"; return; fi
  local td=${CARGO_TARGET_DIR:-}
  [ -n "$td" ] || td=$(cd "$REPO_DIR" && cargo metadata --format-version 1 --no-deps \
                       | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  echo "$td/release/parley"
}

write_parley_config() {  # $1 = file, $2 = trusted (1|0)
  {
    echo "# written by compare.sh"
    echo "data_dir = \"$RUN_DIR/parley-data\""
    echo "[edge]"
    echo "udp = \"$TARGET_HOST:$TARGET_PORT\""
    echo "tcp_enabled = false"
    echo "domain = \"$PARLEY_DOMAIN\""
    echo "http = \"$TARGET_HOST:$PARLEY_HTTP_PORT\"   # the edge's loopback HTTP endpoint (not the default 8081)"
    [ "$2" = 1 ] && echo "trusted = [\"$SIPP_IP/32\"]"
    echo "rate_limit = 0                 # all sipp traffic comes from one address; Kamailio has no limit either"
    echo "digest = [\"MD5\", \"SHA-256\"]   # sipp 3.6 answers only the first challenge, and only MD5"
    echo "[media]"
    echo "sip = \"$TARGET_HOST:$PARLEY_MEDIA_PORT\"   # not run here; kept off the edge's own port"
    echo "[voicemail]"
    echo "enabled = false   # no media server here: a failed call must not be retargeted to one"
  } > "$1"
}

start_parley() {  # $1 = label, $2 = trusted (1|0)
  local cfg=$RUN_DIR/parley-$1.toml i
  if udp_port_busy "$TARGET_PORT"; then echo "ERROR: UDP port $TARGET_PORT already in use" >&2; return 1; fi
  rm -rf "$RUN_DIR/parley-data"
  write_parley_config "$cfg" "$2"
  "$PARLEY" users import "$BENCH_DIR/parley-users.csv" --config "$cfg" > "$LOG_DIR/parley-import-$1.log" 2>&1 \
    || { echo "ERROR: parley users import failed:" >&2; tail -5 "$LOG_DIR/parley-import-$1.log" >&2; return 1; }
  RUST_LOG=${PARLEY_LOG:-warn} "$PARLEY" serve --role edge --config "$cfg" > "$LOG_DIR/parley-$1.log" 2>&1 &
  PARLEY_PID=$!
  for i in $(seq 1 100); do
    udp_port_busy "$TARGET_PORT" && break
    kill -0 "$PARLEY_PID" 2>/dev/null || { echo "ERROR: parley exited, see $LOG_DIR/parley-$1.log" >&2; PARLEY_PID=""; return 1; }
    sleep 0.1
  done
  udp_port_busy "$TARGET_PORT" || { echo "ERROR: parley does not listen on $TARGET_PORT" >&2; return 1; }
  SERVER_PID=$PARLEY_PID
  echo "parley pid=$PARLEY_PID on udp:$TARGET_HOST:$TARGET_PORT ($cfg)"
}

# ---- servers ----
start_server() {  # $1 = kamailio|parley, $2 = register|invite
  SERVER_PID=""
  case $1-$2 in
    kamailio-register) start_kamailio "$BENCH_DIR/kamailio-reg-auth.cfg" ;;
    kamailio-invite)   start_kamailio "$BENCH_DIR/kamailio-proxy.cfg" ;;
    parley-register)   start_parley register 0 ;;
    parley-invite)     start_parley invite 1 ;;
  esac
}
stop_server() { stop_uas; stop_parley; stop_kamailio; }

start_uas() {  # $1 = server: registers AOR uas from UAS_PORT, then runs the sipp UAS there
  if udp_port_busy "$UAS_PORT"; then echo "ERROR: UDP $UAS_PORT busy" >&2; return 1; fi
  local nrates; nrates=$(wc -w <<<"$INV_RATES")
  printf 'SEQUENTIAL\nuas;[authentication username=uas password=pwuas];\n' > "$RUN_DIR/uas.csv"
  # The REGISTER is sent FROM the UAS port: Parley sends calls to the address a binding was
  # registered from (the NAT flow), not to the Contact. Kamailio's proxy cfg registers without
  # auth; Parley's registrar always challenges: reg-contact-auth.xml answers a 401 if one comes.
  sipp "$TARGET_HOST:$TARGET_PORT" -sf scenarios/reg-contact-auth.xml -i "$SIPP_IP" -p "$UAS_PORT" -m 1 -nostdin \
       -timeout 10s -inf "$RUN_DIR/uas.csv" -key contact_uri "sip:uas@$SIPP_IP:$UAS_PORT" > "$LOG_DIR/reg-uas-$1.out" 2>&1 \
    || { echo "ERROR: registering the UAS at $1 failed (see $LOG_DIR/reg-uas-$1.out)" >&2; return 1; }
  sipp -sf scenarios/uas-rr.xml -i "$SIPP_IP" -p "$UAS_PORT" -nostdin \
       -timeout "$(( nrates * (DURATION + 45) + 30 ))s" -trace_stat -stf "$LOG_DIR/uas-$1.stat.csv" -fd 5 \
       > "$LOG_DIR/uas-$1.sipp.out" 2> "$LOG_DIR/uas-$1.sipp.err" &
  UAS_PID=$!
  local i
  for i in $(seq 1 50); do udp_port_busy "$UAS_PORT" && break; sleep 0.1; done
  kill -0 "$UAS_PID" 2>/dev/null || { echo "ERROR: the sipp UAS exited (see $LOG_DIR/uas-$1.sipp.err)" >&2; UAS_PID=""; return 1; }
  echo "uas pid=$UAS_PID registered as uas -> sip:uas@$SIPP_IP:$UAS_PORT"
}

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }

# sweep SERVER SCENARIO: sets BEST_RATE / BEST_LINE / TOP (1 = the last rung passed)
sweep() {
  local srv=$1 scen=$2 rates r line f
  BEST_RATE=0; BEST_LINE=""; TOP=0
  case $scen in register) rates=$REG_RATES ;; invite) rates=$INV_RATES ;; esac
  local last; last=$(awk '{print $NF}' <<<"$rates")
  for r in $rates; do
    case $scen in
      register) line=$(run_sipp "cmp-$srv-reg-r$r" "$r" $(( r * DURATION )) -p "$UAC_PORT" \
                         -sf "$BENCH_DIR/scenarios/reg-auth.xml" -inf "$BENCH_DIR/users.csv") ;;
      invite)   line=$(EXTRA_PID=$UAS_PID run_sipp "cmp-$srv-inv-r$r" "$r" $(( r * DURATION )) \
                         -sf "$BENCH_DIR/scenarios/uac-rr.xml" -s uas -d 0) ;;
    esac
    echo "  $line"
    # failed = every call of the step that did not complete (sipp failures, calls never
    # started or still open at sipp's -timeout), so a sipp that aborts is not a pass
    f=$(awk -v ok="$(field ok "$line")" -v n=$(( r * DURATION )) 'BEGIN{printf "%.2f", 100*(n-(ok+0))/n}')
    if awk -v f="$f" -v m="$FAIL_PCT" 'BEGIN{exit !(f>=m)}'; then
      echo "  stop: $srv $scen at $r/s: $f% of $(( r * DURATION )) calls failed or did not complete (>= $FAIL_PCT%)"
      break
    fi
    if [ -n "$UAS_PID" ] && ! kill -0 "$UAS_PID" 2>/dev/null; then echo "  stop: the UAS exited"; break; fi
    BEST_RATE=$r; BEST_LINE=$line
    [ "$r" = "$last" ] && TOP=1
    sleep 3   # let the previous step's transactions end
  done
}

# ---- main ----
for s in $SERVERS; do case $s in kamailio|parley) ;; *) echo "SERVERS: kamailio and/or parley" >&2; exit 2 ;; esac; done
for s in $SCENARIOS; do case $s in register|invite) ;; *) echo "SCENARIOS: register and/or invite" >&2; exit 2 ;; esac; done
command -v sipp >/dev/null || { echo "sipp missing: apt-get install -y sip-tester" >&2; exit 1; }
case " $SERVERS " in *" kamailio "*) command -v kamailio >/dev/null || { echo "kamailio missing: apt-get install -y kamailio" >&2; exit 1; } ;; esac
case " $SERVERS " in *" parley "*)
  if [ -z "${PARLEY_BIN:-}" ] && [ "${SKIP_BUILD:-0}" != 1 ]; then
    echo "building parley (release) ..."
    (cd "$REPO_DIR" && cargo build --release --bin parley) > "$LOG_DIR/build.log" 2>&1 \
      || { tail -20 "$LOG_DIR/build.log" >&2; echo "ERROR: cargo build failed" >&2; exit 1; }
  fi
  PARLEY=$(find_parley)
  [ -x "$PARLEY" ] || { echo "ERROR: no parley binary at $PARLEY" >&2; exit 1; }
  echo "parley: $PARLEY" ;;
esac
[ "$(($(wc -l < parley-users.csv 2>/dev/null || echo 0) - 2))" = "$USERS" ] \
  && [ "$(($(wc -l < users.csv 2>/dev/null || echo 0) - 1))" = "$USERS" ] || ./gen-users.sh "$USERS"

declare -A BEST ACH CPU P99 ISTOP
started=$(date -u +%FT%TZ)
echo "compare: users=$USERS duration=${DURATION}s fail<$FAIL_PCT% servers=[$SERVERS] scenarios=[$SCENARIOS]"
echo "  REGISTER ladder: $REG_RATES"; echo "  INVITE ladder:   $INV_RATES"
for scen in $SCENARIOS; do
  for srv in $SERVERS; do
    echo "== $scen on $srv"
    start_server "$srv" "$scen" || { stop_server; BEST[$srv-$scen]=error; continue; }
    if [ "$scen" = invite ]; then start_uas "$srv" || { stop_server; BEST[$srv-$scen]=error; continue; }; fi
    sweep "$srv" "$scen"
    BEST[$srv-$scen]=$BEST_RATE; ISTOP[$srv-$scen]=$TOP
    ACH[$srv-$scen]=$(field ok_per_s "$BEST_LINE"); CPU[$srv-$scen]=$(field srv_cpu_pct "$BEST_LINE")
    P99[$srv-$scen]=$(field rt_p99_ms "$BEST_LINE")
    if [ "$srv" = parley ] && [ -n "$PARLEY_PID" ] && ! kill -0 "$PARLEY_PID" 2>/dev/null; then
      echo "  parley exited during the sweep: see $LOG_DIR/parley-$scen.log"; PARLEY_PID=""
    fi
    stop_server
    sleep 2
  done
done

# ---- table ----
cell() {  # server scenario -> "rate/s (ok/s, cpu%, p99)"
  local k=$1-$2 b=${BEST[$1-$2]:-}
  case $b in "") echo "not run" ;; error) echo "error" ;; 0) echo "none <${FAIL_PCT}%" ;;
    *) printf '%s%s/s (ok %s/s, cpu %s%%, p99 %sms)' "$([ "${ISTOP[$k]}" = 1 ] && echo '>=')" "$b" \
         "${ACH[$k]:-?}" "${CPU[$k]:-?}" "${P99[$k]:-?}" ;; esac
}
ratio() {
  local k=${BEST[kamailio-$1]:-} p=${BEST[parley-$1]:-}
  case "$k" in ""|*[!0-9]*) echo "n/a"; return ;; esac
  case "$p" in ""|*[!0-9]*) echo "n/a"; return ;; esac
  [ "$k" -gt 0 ] || { echo "n/a"; return; }
  awk -v p="$p" -v k="$k" 'BEGIN{printf "%.2f", p/k}'
}
{
  echo "Parley edge vs Kamailio $(kamailio -v 2>/dev/null | awk 'NR==1{print $3}'), sipp $(sipp -v 2>/dev/null | awk '/SIPp v/{print $2}' | tr -d ,)"
  echo "run $started .. $(date -u +%FT%TZ) on $(nproc) cores ($(uname -m)); users=$USERS; ${DURATION}s per step; best = highest ladder rate with < ${FAIL_PCT}% failed calls"
  echo "REGISTER ladder: $REG_RATES"; echo "INVITE ladder:   $INV_RATES"
  printf '%-26s | %-44s | %-44s | %s\n' scenario "Kamailio best" "Parley best" "Parley/Kamailio"
  for scen in $SCENARIOS; do
    case $scen in register) name="(a) REGISTER + digest" ;; invite) name="(b) INVITE via proxy" ;; esac
    printf '%-26s | %-44s | %-44s | %s\n' "$name" "$(cell kamailio "$scen")" "$(cell parley "$scen")" "$(ratio "$scen")"
  done
  echo "cpu = server CPU in % of one core at that rate (all threads/processes); ok = calls/s completed;"
  echo "p99 = sipp response time (REGISTER: first REGISTER -> final 200; INVITE: INVITE -> 200); '>=' = the top rung passed."
  echo "(a) sipp reg-auth.xml: REGISTER -> 401 -> REGISTER with MD5 digest -> 200, $USERS users in turn."
  echo "    Kamailio: kamailio-reg-auth.cfg (auth_db over db_text, qop=auth, $KAM_CHILDREN UDP workers)."
  echo "    Parley: serve --role edge, registrar challenges MD5 then SHA-256 (sipp answers MD5), users imported (HA1s, realm $PARLEY_DOMAIN)."
  echo "(b) sipp uac-rr.xml -> server -> sipp uas-rr.xml (AOR uas): INVITE/100/200/ACK/BYE/200, record-routed, 0-s calls."
  echo "    INVITEs are NOT authenticated on either side: Kamailio's proxy cfg has no auth, Parley runs with"
  echo "    trusted = [\"$SIPP_IP/32\"]. The UAS registers once, without auth at Kamailio, with digest at Parley."
  echo "per-step lines: bench/sip/$RESULTS; logs: bench/sip/logs/"
} > "$RES_DIR/compare.txt"
echo
cat "$RES_DIR/compare.txt"
