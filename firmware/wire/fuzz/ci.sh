#!/usr/bin/env bash
# A short fuzz run of the decoder, for CI: ci.sh [SECONDS] (default 60).
# Installs the nightly toolchain and cargo-fuzz when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.." # firmware/wire, where cargo-fuzz looks for fuzz/
secs=${1:-60}

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

mkdir -p fuzz/corpus/decode
cargo +nightly fuzz run decode fuzz/corpus/decode fuzz/seeds -- -max_total_time="$secs"
