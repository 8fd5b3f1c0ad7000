#!/usr/bin/env bash
# A short fuzz run of the connection state machine, for CI: ci.sh [SECONDS] (default 60).
# Installs the nightly toolchain and cargo-fuzz when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.." # broker, where cargo-fuzz looks for fuzz/
secs=${1:-60}

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

mkdir -p fuzz/corpus/connection
cargo +nightly fuzz run connection fuzz/corpus/connection fuzz/seeds -- -max_total_time="$secs"
