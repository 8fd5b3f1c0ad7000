#!/usr/bin/env bash
# CI for Raspberry Pi OS: release cross builds for aarch64 and armv7 (glibc 2.31, so
# bullseye and bookworm), each smoke-tested under qemu-user with Mosquitto's clients and
# packaged as a .deb that dpkg-deb and lintian check. The ARMv6 build is a release step
# (broker/pkg/armv6-release.sh), not run here. The .debs land in $CARGO_TARGET_DIR/pi/deb.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
pkg=broker/pkg
debs=$CARGO_TARGET_DIR/pi/deb

bash $pkg/host-packages.sh
rm -f "$debs"/midge_*.deb

# target, Debian architecture, qemu-user binary, the ARM glibc it runs against
builds=(
    "aarch64-unknown-linux-gnu arm64 qemu-aarch64 /usr/aarch64-linux-gnu"
    "armv7-unknown-linux-gnueabihf armhf qemu-arm /usr/arm-linux-gnueabihf"
)
for build in "${builds[@]}"; do
    read -r target arch qemu sysroot <<<"$build"
    start=$SECONDS
    dir=$(bash $pkg/cross-build.sh "$target")
    echo "$target: release build in $((SECONDS - start)) s"
    newest=$(readelf -V -W "$dir/midge" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n1)
    echo "$target: stripped size $(stat -c %s "$dir/midge") bytes, newest glibc symbol $newest"
    bash $pkg/smoke-test.sh "$dir/midge" "$qemu" -L "$sysroot"

    # build-deb.sh refuses binaries that need more than libc6 (>= 2.31).
    deb=$(bash $pkg/build-deb.sh "$arch" "$dir" "$debs" 2.31)
    dpkg-deb --info "$deb"
    dpkg-deb --contents "$deb"
    # The package must hold what the brief promises, where it promises it.
    for path in ./usr/bin/midge ./etc/midge/midge.toml ./lib/systemd/system/midge.service \
        ./var/lib/midge/; do
        dpkg-deb --contents "$deb" | awk '{ print $6 }' | grep -qx "$path" ||
            { echo "pi.sh: $deb lacks $path" >&2 && exit 1; }
    done
    dpkg-deb --field "$deb" Depends | grep -q 'libc6 (>= 2.31)' ||
        { echo "pi.sh: $deb does not depend on libc6 (>= 2.31)" >&2 && exit 1; }
    # Errors fail the build; warnings (today only: no manual page) are printed.
    lintian --fail-on error "$deb"
done

# An x86-64 midge stands in for the ARM one below.
[ -x "$CARGO_TARGET_DIR/debug/midge" ] || cargo build -p midge --locked
# The unit file: systemd-analyze must have nothing to say (an unknown key is only a warning
# to it). It wants ExecStart's binary to exist.
unit=$(mktemp -d)
sed "s|/usr/bin/midge|$CARGO_TARGET_DIR/debug/midge|" $pkg/midge.service >"$unit/midge.service"
if ! complaints=$(systemd-analyze verify "$unit/midge.service" 2>&1) || [ -n "$complaints" ]; then
    echo "pi.sh: midge.service: $complaints" >&2
    exit 1
fi
rm -rf "$unit"
# The maintainer scripts, for real (in namespaces; the x86-64 midge plays the running service).
bash $pkg/test-maintainer-scripts.sh "$debs"/midge_*_arm64.deb "$CARGO_TARGET_DIR/debug/midge"
ls -l "$debs"
