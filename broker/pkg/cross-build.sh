#!/usr/bin/env bash
# Cross-builds midge's release binaries for Raspberry Pi OS from x86-64 Debian:
#
#   cross-build.sh [TARGET...]     (default: aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)
#
# The glibc binaries link against glibc 2.31 (cargo-zigbuild's `TARGET.2.31`), so they run
# on bullseye (2.31) and bookworm (2.36) alike; Debian's own cross gcc would tie them to the
# build machine's glibc. arm-unknown-linux-musleabihf (ARMv6: Pi Zero and 1, any OS) is
# static; rustup has no prebuilt std for it, so that one is built with nightly cargo's
# -Zbuild-std (armv6-release.sh; it installs nightly and rust-src when missing).
# Each binary lands stripped in $CARGO_TARGET_DIR/pi/TARGET/ (printed).
# PROFILE (environment, default release) picks the cargo profile.
#
# Installs what it needs: zig and cargo-zigbuild, both prebuilt from PyPI, in a virtual
# environment in the target directory; the two Rust targets come with rust-toolchain.toml.
set -euo pipefail
cd "$(dirname "$0")/../.."

targets=("$@")
((${#targets[@]})) || targets=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)
profile=${PROFILE:-release}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
glibc=2.31

# Pinned, so that a new zig cannot change the binaries behind our back.
venv=$CARGO_TARGET_DIR/zig-venv
tools=(ziglang==0.17.1 cargo-zigbuild==0.24.1)
if [ "$(cat "$venv/installed" 2>/dev/null)" != "${tools[*]}" ]; then
    rm -rf "$venv"
    # The Python in PATH may lack venv support (Debian's needs python3-venv).
    python3 -m venv "$venv" 2>/dev/null || { rm -rf "$venv" && /usr/bin/python3 -m venv "$venv"; }
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "${tools[@]}"
    echo "${tools[*]}" >"$venv/installed"
fi
# cargo-zigbuild runs zig as `python3 -m ziglang`: the venv's python must come first.
export PATH=$venv/bin:$PATH
rustup toolchain install >/dev/null # the pinned toolchain and its targets

for target in "${targets[@]}"; do
    case $target in
    *-gnu*) build=(cargo zigbuild --target "$target.$glibc") ;;
    arm-unknown-linux-musleabihf)
        rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal >&2
        rustup component add rust-src --toolchain nightly >&2
        build=(cargo +nightly zigbuild --target "$target" -Zbuild-std=std)
        # No prebuilt std also means no rust-std crt objects: zig supplies musl's own. (The
        # linker's warning that rustup has no library directory for the target is harmless.)
        export CARGO_TARGET_ARM_UNKNOWN_LINUX_MUSLEABIHF_RUSTFLAGS="-C link-self-contained=no"
        ;;
    *) echo "cross-build.sh: $target is not a target this script knows" >&2 && exit 2 ;;
    esac
    # Symbols are not needed on the Pi (panics still print their message).
    CARGO_PROFILE_RELEASE_STRIP=symbols "${build[@]}" --locked -p midge -p midge-gateway \
        --profile "$profile" >&2
    out=$CARGO_TARGET_DIR/pi/$target
    mkdir -p "$out"
    dir=$profile
    [ "$profile" != dev ] || dir=debug
    for bin in midge midge-gateway; do
        install -m 755 "$CARGO_TARGET_DIR/$target/$dir/$bin" "$out/$bin"
    done
    echo "$out"
done
