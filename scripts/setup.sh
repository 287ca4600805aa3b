#!/usr/bin/env bash
# Installs what Parley needs to build and test on a fresh Debian machine (idempotent, quiet):
#   cmake      - builds the bundled libopus of the `opus` crate
#   sip-tester - sipp, the SIP peer of the end-to-end tests (and its RFC 2833 DTMF captures)
#   sox        - audio conversion for prompts/generate.sh
#   flite      - runtime text-to-speech for plain-text prompts
#   baresip-core - a real softphone for the end-to-end PBX test (registers with digest, calls)
#   python3-aiosmtpd - the SMTP server of the voicemail e-mail test (apps/tests/email.rs)
# festival + festvox-us-slt-hts are only needed to regenerate the stock prompts (prompts/generate.sh).
set -euo pipefail
pkgs=(cmake sip-tester sox flite baresip-core python3-aiosmtpd)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust (rustup) first" >&2; exit 1; }
