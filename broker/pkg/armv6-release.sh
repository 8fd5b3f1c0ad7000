#!/usr/bin/env bash
# Release build for ARMv6 Raspberry Pis (Pi Zero, Zero W, Pi 1), not part of every CI run:
#
#   armv6-release.sh      (prints the .deb's path)
#
# A static musl binary (arm-unknown-linux-musleabihf, std built from source on nightly), so
# it needs no particular libc and also runs on every newer Pi with a 32-bit OS. It is
# smoke-tested under `qemu-arm -cpu arm1176` (the Pi Zero/1 CPU) and packaged as
# midge_VERSION_armhf-armv6.deb in $CARGO_TARGET_DIR/pi/deb.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

bash broker/pkg/host-packages.sh
dir=$(bash broker/pkg/cross-build.sh arm-unknown-linux-musleabihf)
echo "stripped size: $(stat -c %s "$dir/midge") bytes" >&2
bash broker/pkg/smoke-test.sh "$dir/midge" qemu-arm -cpu arm1176 >&2
DEB_SUFFIX=armv6 bash broker/pkg/build-deb.sh armhf "$dir" "$CARGO_TARGET_DIR/pi/deb" static
