#!/usr/bin/env bash
# Regenerates the stock prompts: festival's festvox-us-slt-hts voice (the most natural English voice
# among Debian's packages), then sox to 8 kHz, 16-bit mono PCM WAV (the call rate; no resampling at playout).
# Needs: apt-get install festival festvox-us-slt-hts sox
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
while IFS='|' read -r name text; do
  [ -z "$name" ] && continue
  case "$name" in \#*) continue ;; esac
  printf '%s\n' "$text" > "$tmp/$name.txt"
  text2wave -eval "(voice_cmu_us_slt_arctic_hts)" "$tmp/$name.txt" -o "$tmp/$name.raw.wav"
  # trim leading/trailing silence so prompts start without dead air, normalise to -3 dBFS
  sox "$tmp/$name.raw.wav" -r 8000 -c 1 -b 16 -e signed-integer "$name.wav" \
    silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse norm -3
  echo "$name.wav: $(soxi -D "$name.wav") s"
done < prompts.txt
