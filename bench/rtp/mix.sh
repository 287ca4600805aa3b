#!/bin/bash
# Conference mixer and Opus side by side, in one run: Parley's Rust kernels
# (media-engine/benches/mixer.rs) against the reference C kernels (mixbench.c: PCMU N-1 mix;
# opusbench.c: libopus encode/decode per 20 ms frame), built here with gcc -O3 -march=native.
#
#   bench/rtp/mix.sh [RUNS=3]
#
# Runs each side RUNS times, alternating (Rust, C, Rust, C, ...), and prints one table of medians
# with the ratios. One Rust run takes 3-4 minutes (its Opus rooms dominate); a C run a few
# seconds. Installs libopus-dev with apt if it is missing (needs root); without it the Opus C
# column is skipped. Honours CARGO_TARGET_DIR; set CARGO_LOCK=FILE to run cargo under flock FILE.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
runs=${1:-3}
work=$(mktemp -d /tmp/parley-mix-bench.XXXX)
trap 'rm -rf "$work"' EXIT
started=$(date +%s)

# --- C side ---------------------------------------------------------------------------------
have_opus=1
if ! [ -f /usr/include/opus/opus.h ]; then
    echo "libopus-dev missing: installing it with apt"
    (apt-get install -y --no-install-recommends libopus-dev >/dev/null 2>&1 ||
        (apt-get update -qq >/dev/null 2>&1 &&
            apt-get install -y --no-install-recommends libopus-dev >/dev/null 2>&1)) || true
    [ -f /usr/include/opus/opus.h ] || {
        echo "SKIP: libopus-dev could not be installed; the Opus C column is left out"
        have_opus=0
    }
fi
cp "$here"/{mixbench.c,opusbench.c} "$work/"
cd "$work"
# Same room sizes as the Rust bench (the C file hard-codes 3,10,50,200,1000,5000; only the list
# of sizes changes in this temporary copy, not the kernels).
sed -i 's/int Ns\[\] = {[^}]*};/int Ns[] = {10, 100, 1000};/' mixbench.c
grep -q 'int Ns\[\] = {10, 100, 1000};' mixbench.c || { echo "mixbench.c: N list not found"; exit 1; }
gcc -O3 -march=native -o mixbench mixbench.c || exit 1
if [ $have_opus = 1 ]; then
    gcc -O3 -march=native -o opusbench opusbench.c -lopus -lm || {
        echo "SKIP: opusbench.c does not build against the installed libopus; Opus C column left out"
        have_opus=0
    }
fi

# --- Rust side: build once (under the lock if one is given), then run the binary directly ----
lock=()
[ -n "${CARGO_LOCK:-}" ] && lock=(flock "$CARGO_LOCK")
echo "building media-engine bench 'mixer' (release)..."
rust_bench=$(cd "$root" && ${lock[@]+"${lock[@]}"} cargo bench --no-run -q -p media-engine \
    --bench mixer --message-format=json 2>"$work/cargo.log" | python3 -c '
import json, sys
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "mixer" and m.get("executable"):
        print(m["executable"])')
[ -x "$rust_bench" ] || { cat "$work/cargo.log"; echo "Rust bench build failed"; exit 1; }

# libopus version bundled by opusic-sys (the Rust bench does not print it)
osys=$(awk '/^name = "opusic-sys"/{getline; gsub(/"/, "", $3); print $3}' "$root/Cargo.lock")
rust_opus=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' \
    "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/opusic-sys-"$osys"/opus/package_version 2>/dev/null | head -1)
echo "Rust Opus: opusic-sys $osys bundling libopus ${rust_opus:-?}"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "gcc: $(gcc -dumpfullversion); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for run in $(seq "$runs"); do
    echo
    echo "=== run $run/$runs: Rust (media-engine/benches/mixer.rs)"
    "$rust_bench" --bench > rust.$run 2>&1 || { cat rust.$run; echo "Rust bench failed"; exit 1; }
    sed 's/^/  /' rust.$run
    echo "=== run $run/$runs: C (mixbench.c$([ $have_opus = 1 ] && echo ', opusbench.c'))"
    ./mixbench > c-mix.$run 2>/dev/null || { echo "mixbench failed"; exit 1; }
    sed 's/^/  /' c-mix.$run
    if [ $have_opus = 1 ]; then
        ./opusbench > c-opus.$run || { echo "opusbench failed"; exit 1; }
        sed 's/^/  /' c-opus.$run
    fi
done
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg); wall time $(( $(date +%s) - started )) s"

python3 - "$runs" "$have_opus" "opusic-sys $osys, libopus ${rust_opus:-?}" <<'PY'
import re, sys, statistics
runs, have_opus, rver = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3]
TICK = 20000.0  # µs per 20 ms frame
med = statistics.median

room_re = re.compile(r"^(?P<label>\S.*?)\s+N=(?P<n>\d+)\s+(?P<tick>[\d.]+) µs/tick.*?"
                     r"(?P<pf>[\d.]+) µs/participant-frame")
ropus_re = re.compile(r"^opus\s+(?P<rate>\d+) Hz\s+(?P<br>\d+) bit/s: encode\s+(?P<enc>[\d.]+) µs, "
                      r"decode\s+(?P<dec>[\d.]+) µs")
cmix_re = re.compile(r"^(?P<name>\S.*?)\s+(?P<n>\d+)\s+(?P<nsf>\d+)\s+(?P<nspf>[\d.]+)\s+\d+\s+\(best")
copus_re = re.compile(r"^(?P<rate>\d+)\s+(?P<cplx>\d+)\s+(?P<br>\d+)\s+(?P<enc>[\d.]+)\s+(?P<dec>[\d.]+)\s")

rooms, ropus, cmix, copus, cver = {}, {}, {}, {}, ""
for r in range(1, runs + 1):
    section = ""
    for line in open(f"rust.{r}"):
        if line.startswith("=="):
            section = line
        if m := room_re.match(line):
            key = (m["label"].strip(), int(m["n"]))
            rooms.setdefault(key, []).append(float(m["pf"]))
        elif m := ropus_re.match(line):
            ropus.setdefault(int(m["rate"]), []).append((float(m["enc"]), float(m["dec"])))
    for line in open(f"c-mix.{r}"):
        if m := cmix_re.match(line):
            cmix.setdefault((m["name"].strip(), int(m["n"])), []).append(float(m["nspf"]) / 1000)
    if have_opus:
        for line in open(f"c-opus.{r}"):
            if m := copus_re.match(line):
                if int(m["cplx"]) == 5:
                    copus.setdefault(int(m["rate"]), []).append((float(m["enc"]), float(m["dec"])))
            elif line.startswith("libopus version:"):
                cver = line.split(":", 1)[1].strip().removeprefix("libopus ")

def fmt(x, d=3):
    return "-" if x is None else f"{x:.{d}f}"
def ppc(us):
    return "-" if us is None else f"{TICK / us:,.0f}"
def ratio(a, b):
    return "-" if a is None or b is None else f"{a / b:.2f}x"
def m(d, k):
    return med(d[k]) if k in d else None

print(f"\n==================== medians of {runs} runs (Rust and C alternating) ====================")
print("(a) G.711 PCMU 8 kHz conference, 3 talkers: µs per participant-frame (pf) and participants")
print("    per core (= 20 ms / pf, mixing only: no RTP, no sockets). Ratio = Rust time / C time")
print("    (< 1: Rust faster). C full = 'pcmu8k N-1 tab-encode'; C shared = 'pcmu8k 3 talkers+shared'.")
hdr = (f"  {'N':>5} | {'Rust µs/pf':>10} {'C full':>8} {'C shared':>9} | {'Rust/C full':>11} "
       f"{'Rust/C shared':>13} | {'Rust p/core':>11} {'C full p/core':>13} {'C shared p/core':>15}")
print(hdr)
print("  " + "-" * (len(hdr) - 2))
rust_min_ppc = None
for n in (10, 100, 1000):
    r = m(rooms, ("PCMU", n))
    cf = m(cmix, ("pcmu8k N-1 tab-encode", n))
    cs = m(cmix, ("pcmu8k 3 talkers+shared", n))
    if r is not None:
        rust_min_ppc = TICK / r if rust_min_ppc is None else min(rust_min_ppc, TICK / r)
    print(f"  {n:>5} | {fmt(r):>10} {fmt(cf):>8} {fmt(cs):>9} | {ratio(r, cf):>11} {ratio(r, cs):>13} | "
          f"{ppc(r):>11} {ppc(cf):>13} {ppc(cs):>15}")
idle = m(rooms, ("PCMU idle", 1000))
print(f"  {'idle':>5} | {fmt(idle):>10} {'-':>8} {'-':>9} | {'-':>11} {'-':>13} | {ppc(idle):>11} "
      f"{'-':>13} {'-':>15}   (Rust, N=1000, nobody talking)")
if rust_min_ppc is not None:
    ok = "met" if rust_min_ppc >= 1000 else "NOT met"
    print(f"  target >= 1,000 participants per core: Rust worst N gives {rust_min_ppc:,.0f} -> {ok}")
print("  Like for like: the Rust room decodes every participant (+ level metering, talker choice)")
print("  and encodes 4 payloads per codec group (1 shared mix for the listeners + 3 talkers' N-1),")
print("  handing listeners the shared payload. C full decodes everyone but encodes N N-1 mixes;")
print("  C shared encodes the same 4 but decodes only the 3 talkers (listeners' input ignored) and")
print("  memcpy's the shared payload. So C full over-counts the encodes, C shared under-counts the")
print("  decodes: Rust does strictly more than C shared and less encode work than C full. C input")
print("  is random bytes, Rust's is speech/line noise (table lookups: no data dependence).")

print(f"\n(b) Opus mono VoIP, complexity 5, 8 kHz @ 12 kbit/s and 48 kHz @ 32 kbit/s: µs per 20 ms frame.")
print(f"    Rust = the opus crate over {rver} (bundled, built by its cmake);")
print(f"    C = the system's libopus {cver or '(not run)'} (libopus-dev), opusbench.c -O3 -march=native.")
hdr = (f"  {'rate':>5} | {'Rust enc':>8} {'dec':>6} {'enc+dec':>8} | {'C enc':>6} {'dec':>6} {'enc+dec':>8} | "
       f"{'Rust/C e+d':>10} | {'Rust ch/core':>12} {'C ch/core':>9} | {'Rust room N=100 p/core':>22}")
print(hdr)
print("  " + "-" * (len(hdr) - 2))
worst = None
for rate in (8000, 48000):
    re_ = [e for e, _ in ropus.get(rate, [])]; rd = [d for _, d in ropus.get(rate, [])]
    ce = [e for e, _ in copus.get(rate, [])]; cd = [d for _, d in copus.get(rate, [])]
    re_m, rd_m = (med(re_), med(rd)) if re_ else (None, None)
    ce_m, cd_m = (med(ce), med(cd)) if ce else (None, None)
    rsum = med([e + d for e, d in ropus[rate]]) if rate in ropus else None
    csum = med([e + d for e, d in copus[rate]]) if rate in copus else None
    room = m(rooms, (f"Opus {rate} Hz", 100))
    if rsum is not None:
        worst = TICK / rsum if worst is None else min(worst, TICK / rsum)
    print(f"  {rate:>5} | {fmt(re_m,1):>8} {fmt(rd_m,1):>6} {fmt(rsum,1):>8} | {fmt(ce_m,1):>6} {fmt(cd_m,1):>6} "
          f"{fmt(csum,1):>8} | {ratio(rsum, csum):>10} | {ppc(rsum):>12} {ppc(csum):>9} | {ppc(room):>22}")
if worst is not None:
    ok = "met" if worst >= 60 else "NOT met"
    print(f"  target >= 60 participants per core: Rust worst case (own encode + decode each, 48 kHz)"
          f" {worst:,.0f} -> {ok}")
print("  Like for like: both sides run libopus C code; the Rust column is libopus as bundled by")
print("  opusic-sys (its version and cmake flags, hardening on) called through the opus crate, the")
print("  C column the distribution's build. The ratio measures library version/build plus FFI,")
print("  not Rust code. ch/core = 20 ms / (encode + decode): every participant with its own")
print("  encoder. The Rust room column (3 talkers, one shared encode for listeners, every")
print("  participant decoded) has no C counterpart. C encodes 500 frames once and decodes them")
print("  once; Rust takes the median of 9 passes of 500 frames each.")
PY
