#!/bin/bash
# RTP relay side by side, one core each, in one run: rtpengine (userspace, --table=-1),
# Parley's media engine (media-engine/examples/rtp_relay.rs: bridged session pairs on one media
# thread) and the C epoll floor (minirelay.c). The same generator (rtpgen.c) drives each.
#
#   bench/rtp/compare.sh [CALLS=1000] [SECS=10] [RUNS=3]
#
# Prints µs CPU per relayed packet and packets/s per core (medians of RUNS), and the ratios.
# Installs rtpengine-daemon with apt if it is missing (needs root); skips it if that fails.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
calls=${1:-1000}; secs=${2:-10}; runs=${3:-3}
work=$(mktemp -d /tmp/parley-rtp-bench.XXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
cp "$here"/{rtpgen.c,minirelay.c,ng.py,measure.sh} "$work/"
cd "$work"
gcc -O2 -o rtpgen rtpgen.c && gcc -O2 -o minirelay minirelay.c || exit 1
(cd "$root" && cargo build --release -q -p media-engine --example rtp_relay) || exit 1
parley_relay="${CARGO_TARGET_DIR:-$root/target}/release/examples/rtp_relay"
if ! command -v rtpengine >/dev/null; then
    (apt-get install -y --no-install-recommends rtpengine-daemon >/dev/null 2>&1 ||
        (apt-get update -qq && apt-get install -y --no-install-recommends rtpengine-daemon >/dev/null 2>&1)) ||
        echo "rtpengine-daemon not installable here; comparing with the C floor only"
fi
# The generator runs on core 1, relays on core 0 (rtpengine and minirelay pinned with taskset;
# Parley pins its media thread itself).
gen_core=1; relay_core=0

# measure NAME PID MAP -> appends "NAME us_per_pkt relayed_pct" to results
measure() {
    local out
    out=$(RELAY_PID=$2 taskset -c $gen_core bash ./measure.sh "$3" "$secs" 1)
    local us pct
    us=$(sed -n 's/.* \([0-9.]*\) us CPU per relayed pkt.*/\1/p' <<<"$out")
    pct=$(sed -n 's/.*rcvd=[0-9]* (\([0-9.]*\)%).*/\1/p' <<<"$out")
    echo "$1 $us $pct" >> results
    echo "  $1: $us µs/packet, $pct% relayed"
}

: > results
for run in $(seq "$runs"); do
    echo "run $run/$runs: $calls calls, $((2 * calls)) streams at 50 packets/s each, ${secs}s"
    if command -v rtpengine >/dev/null; then
        rtpengine --config-file=none --table=-1 --interface=127.0.0.1 --listen-ng=127.0.0.1:22222 \
            --foreground --log-stderr --log-level=3 --port-min=30000 --port-max=40000 \
            --num-threads=1 --pidfile="$work/rtpengine.pid" 2>rtpengine.log &
        sleep 1
        taskset -cp $relay_core "$(cat rtpengine.pid)" >/dev/null
        python3 ng.py "$calls" > map-rtpengine.txt 2>/dev/null
        measure rtpengine "$(cat rtpengine.pid)" map-rtpengine.txt
        kill "$(cat rtpengine.pid)"; wait 2>/dev/null; sleep 1
    fi
    mkfifo hold.$run
    "$parley_relay" "$calls" 1 < hold.$run > map-parley.txt 2>parley.log &
    relay=$!
    exec 9>hold.$run
    while [ "$(wc -l < map-parley.txt)" -lt "$calls" ]; do sleep 0.2; done
    measure parley $relay map-parley.txt
    exec 9>&-; wait $relay 2>/dev/null
    taskset -c $relay_core ./minirelay < map-parley.txt > /dev/null 2>&1 &
    relay=$!; sleep 0.5
    measure c-floor $relay map-parley.txt
    kill $relay; wait 2>/dev/null; sleep 0.5
done

python3 - "$calls" <<'PY'
import sys, statistics, collections
calls = int(sys.argv[1])
by = collections.defaultdict(list)
for line in open("results"):
    name, us, pct = line.split()
    if us: by[name].append((float(us), float(pct)))
med = {n: statistics.median(u for u, _ in v) for n, v in by.items()}
print(f"\nRTP relay, {calls} calls, one core each (median of {len(next(iter(by.values())))} runs)")
print(f"{'relay':<10} {'µs CPU/pkt':>11} {'pkts/s/core':>12} {'relayed':>8}")
for n in ("rtpengine", "parley", "c-floor"):
    if n in med:
        pct = min(p for _, p in by[n])
        print(f"{n:<10} {med[n]:>11.2f} {1e6 / med[n]:>12.0f} {pct:>7.1f}%")
if "parley" in med:
    if "rtpengine" in med:
        print(f"parley / rtpengine packets per core: {med['rtpengine'] / med['parley']:.2f}x")
    if "c-floor" in med:
        print(f"parley CPU per packet vs the C epoll floor: {100 * (med['parley'] / med['c-floor'] - 1):+.0f}%")
PY
