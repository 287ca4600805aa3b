#!/usr/bin/env bash
# Common helpers for the run-*.sh scripts.  Source it; do not run it.
# Environment knobs (all optional):
#   TARGET_HOST / TARGET_PORT  SIP server under test            (127.0.0.1 / 5070, UDP)
#   START_SERVER=1|0           1: start/stop kamailio from this dir; 0: a server is already
#                              listening on TARGET (e.g. your own), nothing is started/stopped
#   SERVER_PID                 with START_SERVER=0: PID whose CPU/mem (incl. direct children)
#                              is sampled; empty = no server CPU figures
#   KAM_CHILDREN (4) KAM_SHM_MB (1024)  kamailio worker count / shared memory (256 MB ran out
#                              at ~2000 cps INVITE: tm keeps each transaction ~5 s after it ends)
#   SIPP_IP (127.0.0.1)        local address sipp binds
#   RECV_TIMEOUT_MS (5000)     a call waiting longer than this for a message counts as failed
#   RESULTS                    summary file (results/summary.txt)
#   OWN_TRAP=1                 the caller installs its own EXIT trap (start_kamailio sets none)
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TARGET_HOST=${TARGET_HOST:-127.0.0.1}
TARGET_PORT=${TARGET_PORT:-5070}
START_SERVER=${START_SERVER:-1}
SERVER_PID=${SERVER_PID:-}
KAM_CHILDREN=${KAM_CHILDREN:-4}
KAM_SHM_MB=${KAM_SHM_MB:-1024}
SIPP_IP=${SIPP_IP:-127.0.0.1}
RECV_TIMEOUT_MS=${RECV_TIMEOUT_MS:-5000}
RUN_DIR=$BENCH_DIR/run
LOG_DIR=$BENCH_DIR/logs
RES_DIR=$BENCH_DIR/results
RESULTS=${RESULTS:-$RES_DIR/summary.txt}
mkdir -p "$RUN_DIR" "$LOG_DIR" "$RES_DIR"
KAM_STARTED=0
KAM_CHILD_PIDS=""

udp_port_busy() { ss -Hlun "sport = :$1" | grep -q .; }

start_kamailio() {  # $1 = cfg file
  [ "$START_SERVER" = 1 ] || { echo "START_SERVER=0: using server at $TARGET_HOST:$TARGET_PORT (SERVER_PID=${SERVER_PID:-none})"; return 0; }
  local cfg=$1 pidf=$RUN_DIR/kamailio.pid i
  if udp_port_busy "$TARGET_PORT"; then echo "ERROR: UDP port $TARGET_PORT already in use" >&2; return 1; fi
  rm -f "$pidf"
  kamailio -f "$cfg" -DD -E -Y "$RUN_DIR" -P "$pidf" -m "$KAM_SHM_MB" -M 8 \
    -A "LISTEN_ADDR=udp:$TARGET_HOST:$TARGET_PORT" -A "NCHILDREN=$KAM_CHILDREN" \
    -A "DBURL=\"text://$BENCH_DIR/dbtext\"" > "$LOG_DIR/kamailio-$(basename "$cfg" .cfg).log" 2>&1 &
  KAM_BG=$!
  for i in $(seq 1 50); do
    [ -s "$pidf" ] && udp_port_busy "$TARGET_PORT" && break
    kill -0 "$KAM_BG" 2>/dev/null || { echo "ERROR: kamailio exited, see $LOG_DIR" >&2; return 1; }
    sleep 0.2
  done
  SERVER_PID=$(cat "$pidf"); KAM_STARTED=1
  sleep 0.5
  KAM_CHILD_PIDS=$(ps -o pid= --ppid "$SERVER_PID" | tr '\n' ' ')
  [ "${OWN_TRAP:-0}" = 1 ] || trap stop_kamailio EXIT   # compare.sh sets OWN_TRAP=1 and cleans up itself
  echo "kamailio $cfg pid=$SERVER_PID children=[$KAM_CHILD_PIDS] on udp:$TARGET_HOST:$TARGET_PORT"
}

stop_kamailio() {
  [ "$KAM_STARTED" = 1 ] || return 0
  local i p
  kill -TERM "$SERVER_PID" 2>/dev/null
  for i in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$SERVER_PID" 2>/dev/null && kill -KILL "$SERVER_PID" 2>/dev/null
  for p in $KAM_CHILD_PIDS; do   # only the PIDs this script started
    if kill -0 "$p" 2>/dev/null && [ "$(cat /proc/$p/comm 2>/dev/null)" = kamailio ]; then kill -KILL "$p"; fi
  done
  wait "$KAM_BG" 2>/dev/null
  KAM_STARTED=0
  echo "kamailio stopped"
}

# ---- resource sampling (server = SERVER_PID + its direct children) ----
server_pids() { [ -n "$SERVER_PID" ] && { echo "$SERVER_PID"; ps -o pid= --ppid "$SERVER_PID"; }; }
proc_ticks() {  # sum utime+stime (clock ticks) of the given pids
  local t=0 p v
  for p in "$@"; do v=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12+$13}') && [ -n "$v" ] && t=$((t+v)); done
  echo $t
}
udp_rcvbuf_errs() { awk '/^Udp:/{n++; if(n==2) print $6}' /proc/net/snmp; }  # kernel UDP receive-buffer drops (this netns)
host_ticks() { awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8+$9, $5+$6}' /proc/stat; }  # "total idle"
server_mem() {  # "pss_sum_MB rss_sum_MB rss_max_MB"
  local p pss=0 rss=0 mx=0 a b
  for p in $(server_pids); do
    a=$(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null); b=$(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null)
    pss=$((pss+${a:-0})); rss=$((rss+${b:-0})); [ "${b:-0}" -gt $mx ] && mx=${b:-0}
  done
  awk -v a=$pss -v b=$rss -v c=$mx 'BEGIN{printf "%.1f %.1f %.1f", a/1024, b/1024, c/1024}'
}

# run_sipp LABEL RATE COUNT [extra sipp args...]
# Runs sipp as a UAC against TARGET at RATE calls/s for COUNT calls (bounded by -m and
# -timeout), samples server CPU, prints and appends a one-line summary.
run_sipp() {
  local label=$1 rate=$2 count=$3; shift 3
  local stf=$LOG_DIR/$label.stat.csv hz; hz=$(getconf CLK_TCK)
  local tmo=$(( count / rate + 30 ))
  rm -f "$stf"
  local spids; spids=$(server_pids | tr '\n' ' ')
  local s0; s0=$(proc_ticks $spids); local x0=0; [ -n "${EXTRA_PID:-}" ] && x0=$(proc_ticks $EXTRA_PID)
  local h0; h0=$(host_ticks); local w0; w0=$(date +%s.%N); local u0; u0=$(udp_rcvbuf_errs)
  local TIMEFORMAT='%U %S'
  local wd=$LOG_DIR/$label.d; rm -rf "$wd"; mkdir -p "$wd"   # sipp writes *_rtt.csv / *_errors.log here
  { time env -C "$wd" sipp "$TARGET_HOST:$TARGET_PORT" -i "$SIPP_IP" -r "$rate" -m "$count" -nostdin \
      -recv_timeout "$RECV_TIMEOUT_MS" -timeout "${tmo}s" -trace_stat -stf "$stf" -fd 1 \
      -trace_rtt -rtt_freq 100 -trace_err \
      "$@" > "$LOG_DIR/$label.sipp.out" 2> "$LOG_DIR/$label.sipp.err"; echo $? > "$RUN_DIR/sipp.rc"; } 2> "$RUN_DIR/sipp.time"
  local w1; w1=$(date +%s.%N); local h1; h1=$(host_ticks); local u1; u1=$(udp_rcvbuf_errs)
  local s1; s1=$(proc_ticks $spids); local x1=0; [ -n "${EXTRA_PID:-}" ] && x1=$(proc_ticks $EXTRA_PID)
  local mem="- - -"; [ -n "$SERVER_PID" ] && mem=$(server_mem)
  local kshm=""   # kamailio shm allocator: real_used and max_used (MB) -- RSS/PSS only show pages ever touched
  [ "$KAM_STARTED" = 1 ] && kshm=$(kamcmd -s "unix:$RUN_DIR/kamailio_ctl" core.shmmem m 2>/dev/null | awk '/real_used:/{r=$2} /max_used:/{m=$2} END{if (m!="") print r" "m}')
  local line
  line=$(python3 "$BENCH_DIR/parse_stat.py" "$stf" \
     "label=$label" "target=$TARGET_HOST:$TARGET_PORT" "rate=$rate" "count=$count" \
     "wall=$(awk -v a=$w0 -v b=$w1 'BEGIN{print b-a}')" "rc=$(cat "$RUN_DIR/sipp.rc")" \
     "srv_ticks=$(( s1 - s0 ))" "extra_ticks=$(( x1 - x0 ))" "hz=$hz" "sipp_cpu=$(cat "$RUN_DIR/sipp.time")" \
     "host=$h0 $h1" "mem=$mem" "srv=${SERVER_PID:+yes}" "rttdir=$wd" "kshm=$kshm" "udpdrop=$(( u1 - u0 ))")
  echo "$line"
  echo "$(date -u +%FT%TZ) $line" >> "$RESULTS"
}
