#!/usr/bin/env bash
# Generates the stock prompts of prompts.txt: festival's festvox-us-slt-hts voice (the most natural
# English voice among Debian's packages), then sox to 8 kHz, 16-bit mono PCM WAV (the call rate; no
# resampling at playout).
#
#   ./generate.sh          generate only the WAVs that are missing (committed prompts keep their bytes)
#   ./generate.sh --all    regenerate every prompt (festival's output may differ between versions)
#   ./generate.sh NAME...  regenerate just these prompts (e.g. after editing their text)
#
# Needs: apt-get install festival festvox-us-slt-hts sox
set -euo pipefail
cd "$(dirname "$0")"
mode=missing
names=()
case "${1:-}" in
  --all) mode=all ;;
  -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
  -*) echo "generate.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  "") ;;
  *) mode=named; names=("$@") ;;
esac
wanted() {
  case "$mode" in
    all) return 0 ;;
    missing) [ ! -e "$1.wav" ] ;;
    named) local n; for n in "${names[@]}"; do [ "$n" = "$1" ] && return 0; done; return 1 ;;
  esac
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
made=0
while IFS='|' read -r name text; do
  [ -z "$name" ] && continue
  case "$name" in \#*) continue ;; esac
  wanted "$name" || continue
  printf '%s\n' "$text" > "$tmp/$name.txt"
  text2wave -eval "(voice_cmu_us_slt_arctic_hts)" "$tmp/$name.txt" -o "$tmp/$name.raw.wav"
  # trim leading/trailing silence so prompts start without dead air, normalise to -3 dBFS;
  # write next to the target and rename, so an interrupted run leaves no truncated WAV behind
  sox "$tmp/$name.raw.wav" -r 8000 -c 1 -b 16 -e signed-integer "$tmp/$name.wav" \
    silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse norm -3
  # pad the shortest words ("eight", "oh") with trailing silence to 0.32 s: players and the
  # media-engine test (media-engine/tests/stock_prompts.rs) expect prompts of at least 0.3 s
  short=$(soxi -D "$tmp/$name.wav" | awk '{ d = 0.32 - $1; if (d > 0) printf "%.3f", d }')
  if [ -n "$short" ]; then
    sox "$tmp/$name.wav" "$tmp/$name.pad.wav" pad 0 "$short"
    mv "$tmp/$name.pad.wav" "$tmp/$name.wav"
  fi
  mv "$tmp/$name.wav" "$name.wav"
  echo "$name.wav: $(soxi -D "$name.wav") s"
  made=$((made + 1))
done < prompts.txt
echo "generate.sh: $made prompt(s) written" >&2
