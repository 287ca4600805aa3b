#!/usr/bin/env bash
# Sets up a fresh machine and runs `parley serve` with the embedded defaults
# (extra arguments are passed on, e.g. scripts/serve.sh --config parley.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --release --bin parley -- serve "$@"
