#!/usr/bin/env bash
# Calls the demo (600) on a running `parley serve` with sipp: listens, presses DIGIT (1 or 2)
# as RFC 2833 events from sipp's captures, and waits for Parley to hang up.
#   scripts/call-demo.sh [DIGIT] [EDGE_ADDR]      e.g. scripts/call-demo.sh 2 127.0.0.1:5060
set -euo pipefail
cd "$(dirname "$0")/.."
digit=${1:-1}
edge=${2:-127.0.0.1:5060}
scen=$(mktemp --suffix=.xml)
msgs=$(mktemp)
trap 'rm -f "$scen" "$msgs"' EXIT
# RTP from Parley goes to port 6002 (nobody listens there in this tour; tests capture it).
sed -e "s/__RTP_PORT__/6002/" -e "s/__DIGIT__/$digit/" -e "s/__WAIT_MS__/7000/" \
  tests/data/uac_dtmf.xml > "$scen"
echo "calling 600 at $edge, pressing $digit after 7 s..."
rc=0
sipp "$edge" -sf "$scen" -s 600 -m 1 -l 1 -nostdin -i 127.0.0.1 -p 5099 -mi 127.0.0.1 -mp 6000 \
  -timeout 60s -timeout_error -trace_msg -message_file "$msgs" >/dev/null 2>&1 || rc=$?
# The SIP exchange, one line per message (sent and received, as sipp logged them).
grep -E '^(UDP|TCP) message (sent|received)|^(INVITE|ACK|BYE|SIP/2.0) ' "$msgs" | grep -v '^[UT][DC]P' || true
if [ "$rc" -eq 0 ]; then
  echo "call completed: Parley played the demo and hung up (BYE)"
else
  echo "call failed (sipp exit $rc); full trace kept in $msgs.kept" >&2
  cp "$msgs" "$msgs.kept"
  exit "$rc"
fi
