#!/usr/bin/env bash
# Installs, upgrades, removes and purges a midge .deb for real and checks what the
# maintainer scripts did (user, data directory, service enablement, the port 1883 check):
#
#   test-maintainer-scripts.sh DEB MIDGE_HOST_BINARY
#
# Needs root. It runs in private mount and network namespaces: /var/lib is a fresh tmpfs
# (only dpkg's and systemd's state are the real ones), so the package's /var/lib/midge and
# the test's port 1883 touch nothing else on the machine; the wanted-by directory of
# multi-user.target is a tmpfs too, to tell "Mosquitto is enabled" from not. The package
# does go into the real dpkg database while the test runs (forced, being for another
# architecture), and the midge user it creates is deleted at the end.
# MIDGE_HOST_BINARY is an x86-64 midge, to play the running service during an upgrade.
set -euo pipefail

if [ "${1-}" != --inside ]; then
    (($# == 2)) || { echo "usage: $0 DEB MIDGE_HOST_BINARY" >&2 && exit 2; }
    user_existed=false
    ! getent passwd midge >/dev/null || user_existed=true
    work=$(mktemp -d)
    status=0
    unshare --mount --net "$0" --inside "$(realpath "$1")" "$(realpath "$2")" "$work" || status=$?
    rm -rf "$work"
    dpkg --purge midge >/dev/null 2>&1 || true # only after a failure inside
    $user_existed || ! getent passwd midge >/dev/null || deluser --system --quiet midge >/dev/null 2>&1
    exit $status
fi

deb=$2
host_midge=$3
real=$4/var-lib
out=$4/dpkg.out
mkdir "$real"
ip link set lo up
mount --bind /var/lib "$real"
mount -t tmpfs none /var/lib
for d in dpkg systemd; do
    mkdir -p "/var/lib/$d"
    mount --bind "$real/$d" "/var/lib/$d"
done
wants=/etc/systemd/system/multi-user.target.wants
mount -t tmpfs none "$wants"

fail() {
    echo "test-maintainer-scripts: $*" >&2
    exit 1
}
dpkg_() {
    dpkg --force-architecture --force-depends "$@" >"$out" 2>&1 ||
        { cat "$out" >&2 && fail "dpkg $* failed"; }
}

# A first installation, nothing else on the port: enabled, no warning.
dpkg_ -i "$deb"
getent passwd midge | grep -q ':/var/lib/midge:/usr/sbin/nologin$' || fail "no midge system user"
[ "$(stat -c '%U:%G %a' /var/lib/midge)" = "midge:midge 750" ] || fail "/var/lib/midge: $(stat -c '%U:%G %a' /var/lib/midge)"
dpkg-query -W -f='${Conffiles}' midge | grep -q /etc/midge/midge.toml || fail "midge.toml is not a conffile"
[ -L "$wants/midge.service" ] || fail "midge.service not enabled on a first installation"
! grep -q "NOT started" "$out" || fail "unexpected warning: $(cat "$out")"

# An upgrade while midge itself serves port 1883 is no conflict.
"$host_midge" --bind 127.0.0.1:1883 --log-level off &
midge_pid=$!
sleep 0.5
dpkg_ -i "$deb"
kill "$midge_pid"
! grep -q "NOT started" "$out" || fail "midge's own port taken for a conflict: $(cat "$out")"
[ -L "$wants/midge.service" ] || fail "midge.service no longer enabled after an upgrade"

# Remove keeps the configuration; purge removes it and the data.
dpkg_ -r midge
[ ! -e /usr/bin/midge ] || fail "/usr/bin/midge left after remove"
[ -e /etc/midge/midge.toml ] || fail "remove deleted the conffile"
dpkg_ --purge midge
for gone in /etc/midge /var/lib/midge "$wants/midge.service"; do
    [ ! -e "$gone" ] || fail "$gone left after purge"
done

# Another program on port 1883: installed, neither started nor enabled, and said so.
python3 -c 'import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 1883)); s.listen(); time.sleep(60)' &
other_pid=$!
sleep 0.5
dpkg_ -i "$deb"
kill "$other_pid"
grep -q "NOT started and NOT enabled: another program listens on port 1883" "$out" ||
    fail "no port 1883 warning: $(cat "$out")"
[ ! -e "$wants/midge.service" ] || fail "midge.service enabled despite the port conflict"
dpkg_ --purge midge

# Mosquitto enabled (it would take the port at boot): the same.
ln -s /lib/systemd/system/mosquitto.service "$wants/mosquitto.service"
dpkg_ -i "$deb"
grep -q "NOT started and NOT enabled: Mosquitto is enabled" "$out" ||
    fail "no Mosquitto warning: $(cat "$out")"
[ ! -e "$wants/midge.service" ] || fail "midge.service enabled next to an enabled Mosquitto"
dpkg_ --purge midge
echo "test-maintainer-scripts: install, upgrade, remove, purge and both port 1883 conflicts OK"
