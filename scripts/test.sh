#!/usr/bin/env bash
# Sets up a fresh machine and runs the whole test suite: unit tests of every crate and the
# end-to-end tests (real parley + sipp over loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace "$@"
