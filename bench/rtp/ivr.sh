#!/bin/bash
# Concurrent IVR sessions on one media thread: each plays a cached prompt in a loop (re-queued on
# PlayoutDone) with RFC 4733 negotiated, while rtpgen sends each session 50 packets/s and takes
# its 50 packets/s back. Reports the media thread's CPU per session, the sessions one core
# could carry at that rate, and the late frames (sent >= 5 ms after their deadline).
#
#   bench/rtp/ivr.sh [SESSIONS=1000] [SECS=20] [RUNS=3]
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
sessions=${1:-1000}; secs=${2:-20}; runs=${3:-3}
work=$(mktemp -d /tmp/parley-ivr-bench.XXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
cp "$here/rtpgen.c" "$work/" && cd "$work" && gcc -O2 -o rtpgen rtpgen.c || exit 1
(cd "$root" && cargo build --release -q -p media-engine --example ivr_load) || exit 1
tck=$(getconf CLK_TCK)
: > results
for run in $(seq "$runs"); do
    mkfifo hold.$run
    "${CARGO_TARGET_DIR:-$root/target}/release/examples/ivr_load" "$sessions" < hold.$run > out.$run 2>ivr.log &
    pid=$!
    exec 9>hold.$run
    while [ "$(wc -l < out.$run)" -lt $((sessions / 2)) ]; do sleep 0.2; done
    head -n $((sessions / 2)) out.$run > map.txt
    task=$(grep -l '^parley-media-0$' /proc/$pid/task/*/comm | head -1 | xargs dirname)
    read mu0 ms0 < <(awk '{print $14, $15}' "$task/stat")
    read pu0 ps0 < <(awk '{print $14, $15}' /proc/$pid/stat)
    gen=$(taskset -c 1 ./rtpgen "$secs" 1 < map.txt)
    read mu1 ms1 < <(awk '{print $14, $15}' "$task/stat")
    read pu1 ps1 < <(awk '{print $14, $15}' /proc/$pid/stat)
    exec 9>&-; wait $pid
    late=$(tail -1 out.$run)
    echo "run $run: $gen"
    echo "        $late"
    python3 - "$sessions" "$secs" "$tck" $mu0 $ms0 $mu1 $ms1 $pu0 $ps0 $pu1 $ps1 "$late" >> results <<'PY'
import sys
n, secs, tck = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
mu0, ms0, mu1, ms1, pu0, ps0, pu1, ps1 = map(int, sys.argv[4:12])
late = dict(kv.split("=") for kv in sys.argv[12].split())
media = (mu1 - mu0 + ms1 - ms0) / tck / secs      # fraction of a core
total = (pu1 - pu0 + ps1 - ps0) / tck / secs
print(media, total, late["late_pct"], late["max_late_us"])
PY
    sleep 1
done
python3 - "$sessions" <<'PY'
import sys, statistics
n = int(sys.argv[1])
rows = [list(map(float, l.split())) for l in open("results")]
media = statistics.median(r[0] for r in rows); total = statistics.median(r[1] for r in rows)
late = max(r[2] for r in rows); worst = max(r[3] for r in rows)
late_median = statistics.median(r[2] for r in rows)
print(f"\nIVR sessions: {n} on one media thread (median of {len(rows)} runs)")
print(f"media thread: {100*media:.0f}% of a core -> {n/media:.0f} sessions per core "
      f"({1e6*media/n/100:.2f} µs CPU per packet in+out)")
print(f"whole process (event loop re-queuing prompts included): {100*total:.0f}% of a core")
print(f"late frames (>= 5 ms): median run {late_median:.4f}%, worst run {late:.4f}%, "
      f"worst lateness {worst/1000:.1f} ms; target < 0.1%")
PY
