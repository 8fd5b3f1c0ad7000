#!/usr/bin/env bash
# Makes midge's Debian package from binaries built already (cross-build.sh, armv6-release.sh):
#
#   build-deb.sh ARCH BINDIR OUTDIR [GLIBC]
#
# ARCH is Debian's architecture name (arm64, armhf, amd64), BINDIR holds the release
# binaries listed in BINARIES, OUTDIR receives midge_VERSION_ARCH.deb (its path is printed).
# GLIBC is the glibc the binaries were linked for (default 2.31), written into the
# dependency as libc6 (>= GLIBC) rather than detected, since detection would claim the
# build machine's newer glibc; "static" for static (musl) builds, which depend on no libc.
# The binaries are checked against it: glibc symbol versions no newer, no other library.
# DEB_SUFFIX (optional, environment) goes into the file name: midge_VERSION_ARCH-SUFFIX.deb.
#
# Plain dpkg-deb over a staged tree: nothing to install, and every file is listed here.
set -euo pipefail

# Every binary the package ships, in /usr/bin: the broker (which can also run the CoAP
# gateway itself, [coap] in midge.toml) and the standalone gateway, for other brokers.
BINARIES=(midge midge-gateway)

if (($# < 3)); then
    sed -n '2,12s/^# \{0,1\}//p' "$0" >&2
    exit 2
fi
arch=$1
bindir=$2
outdir=$3
glibc=${4:-2.31}
pkg=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$pkg/../.." && pwd)

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n1)
[ -n "$version" ] || { echo "build-deb.sh: no version in $repo/Cargo.toml" >&2; exit 1; }
# File dates and the changelog date from the last commit, so the same commit gives the
# same package.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}
maintainer=${DEB_MAINTAINER:-"midge developers <midge-mqtt@users.noreply.github.com>"}

# The dependency is written by hand, so check that it is true: a static build needs no
# shared library; a glibc build needs only glibc's, at symbol versions up to $glibc.
check_libraries() {
    local needed newest
    needed=$(readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
    if [ "$glibc" = static ]; then
        [ -z "$needed" ] || { echo "build-deb.sh: $1 is not static: $needed" >&2; exit 1; }
        return
    fi
    for lib in $needed; do
        case $lib in
        libc.so.6 | libm.so.6 | libpthread.so.0 | libdl.so.2 | librt.so.1 | ld-linux*) ;;
        *) echo "build-deb.sh: $1 needs $lib, which libc6 does not provide" >&2; exit 1 ;;
        esac
    done
    newest=$(readelf -V -W "$1" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n1)
    if [ "$(printf '%s\n' "$newest" "$glibc" | sort -V | tail -n1)" != "$glibc" ]; then
        echo "build-deb.sh: $1 needs GLIBC_$newest, newer than $glibc" >&2
        exit 1
    fi
}

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/root
install -d -m 755 "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" \
    "$root/etc/midge" "$root/var/lib/midge" "$root/usr/share/doc/midge"

for bin in "${BINARIES[@]}"; do
    [ -x "$bindir/$bin" ] || { echo "build-deb.sh: $bindir/$bin is missing" >&2; exit 1; }
    check_libraries "$bindir/$bin"
    install -m 755 "$bindir/$bin" "$root/usr/bin/$bin"
done
install -m 644 "$pkg/midge.service" "$root/lib/systemd/system/midge.service"
install -m 644 "$pkg/midge.toml" "$root/etc/midge/midge.toml"
for script in postinst prerm postrm; do
    install -m 755 "$pkg/debian/$script" "$root/DEBIAN/$script"
done
echo /etc/midge/midge.toml >"$root/DEBIAN/conffiles"

doc=$root/usr/share/doc/midge
cat >"$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: midge
Source: https://github.com/midge-mqtt/midge

Files: *
Copyright: $(date -u -d "@$SOURCE_DATE_EPOCH" +%Y) the midge developers
License: MIT or Apache-2.0
 midge may be used under the terms of the MIT licence or of the Apache License,
 Version 2.0, at your option.
 .
 On Debian systems, the Apache License 2.0 is in /usr/share/common-licenses/Apache-2.0.
 The MIT licence: Permission is hereby granted, free of charge, to any person
 obtaining a copy of this software and associated documentation files (the
 "Software"), to deal in the Software without restriction, including without
 limitation the rights to use, copy, modify, merge, publish, distribute,
 sublicense, and/or sell copies of the Software, and to permit persons to whom the
 Software is furnished to do so, subject to the following conditions: The above
 copyright notice and this permission notice shall be included in all copies or
 substantial portions of the Software. THE SOFTWARE IS PROVIDED "AS IS", WITHOUT
 WARRANTY OF ANY KIND, EXPRESS OR IMPLIED.
EOF
{
    printf 'midge (%s) unstable; urgency=medium\n\n' "$version"
    printf '  * Built from %s.\n\n' "$(git -C "$repo" describe --always --dirty 2>/dev/null || echo source)"
    printf ' -- %s  %s\n' "$maintainer" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$doc/changelog.gz" # a native package: no .Debian
install -m 644 "$repo/README.md" "$doc/README.md"

depends="adduser"
[ "$glibc" = static ] || depends="libc6 (>= $glibc), $depends"
cat >"$root/DEBIAN/control" <<EOF
Package: midge
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $depends
Section: net
Priority: optional
Homepage: https://github.com/midge-mqtt/midge
Description: small, fast MQTT 3.1/3.1.1/5.0 broker for Raspberry Pi-class hardware
 midge is an MQTT broker written in Rust. It reads Mosquitto's configuration,
 password and ACL files, supports TLS, and runs as a hardened systemd service
 (Type=notify, watchdog, reload on SIGHUP) configured in /etc/midge/midge.toml.
EOF
(cd "$root" && find . -type f ! -path './DEBIAN/*' ! -path './etc/*' -printf '%P\0' |
    sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"

find "$root" -exec touch --no-dereference -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$outdir"
deb=$outdir/midge_${version}_${arch}${DEB_SUFFIX:+-$DEB_SUFFIX}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
