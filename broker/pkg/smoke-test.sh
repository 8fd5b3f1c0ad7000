#!/usr/bin/env bash
# Smoke test of a midge binary, typically an ARM one under qemu-user:
#
#   smoke-test.sh MIDGE [RUNNER...]
#   e.g. smoke-test.sh target/pi/aarch64-unknown-linux-gnu/midge qemu-aarch64 -L /usr/aarch64-linux-gnu
#
# Checks the packaged /etc/midge/midge.toml with --test-config, starts the broker on two
# free loopback ports (plain, and TLS with a throw-away certificate from openssl), publishes
# and subscribes through it with mosquitto_pub/mosquitto_sub (QoS 1, retained, and over TLS,
# which runs ring's ARM code), stops it with SIGTERM and expects a clean exit.
set -euo pipefail
pkg=$(cd "$(dirname "$0")" && pwd)
midge=$1
shift
runner=("$@")
run() { "${runner[@]}" "$midge" "$@"; }

work=$(mktemp -d)
pid=
cleanup() {
    [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "smoke-test: $*" >&2
    [ ! -s "$work/midge.log" ] || sed 's/^/  midge: /' "$work/midge.log" >&2
    exit 1
}

run --version
# The configuration file the package installs must be valid as shipped.
run -c "$pkg/midge.toml" --test-config >"$work/test-config.out" 2>&1 ||
    { cat "$work/test-config.out" >&2; fail "the packaged midge.toml does not pass --test-config"; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
tls_port=$(free_port)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$work/server.key" -out "$work/server.crt" 2>/dev/null
cat >"$work/midge.toml" <<EOF
data_dir = "$work"
[log]
level = "debug"
[[listener]]
bind = "127.0.0.1:$port"
allow_anonymous = true
[[listener]]
bind = "127.0.0.1:$tls_port"
allow_anonymous = true
certfile = "$work/server.crt"
keyfile = "$work/server.key"
EOF
# Not through run(): $! must be the broker's own process, for the signal below.
"${runner[@]}" "$midge" -c "$work/midge.toml" 2>"$work/midge.log" &
pid=$!
for _ in $(seq 100); do
    grep -q "listening on 127.0.0.1:$port" "$work/midge.log" && break
    kill -0 "$pid" 2>/dev/null || fail "midge exited before listening"
    sleep 0.1
done
grep -q "listening on 127.0.0.1:$port" "$work/midge.log" || fail "midge did not start listening"

mosquitto_sub -h 127.0.0.1 -p "$port" -q 1 -t 'pi/#' -C 1 -W 20 -v >"$work/sub.out" &
sub=$!
for _ in $(seq 100); do
    grep -q 'subscribed to pi/#' "$work/midge.log" && break
    sleep 0.1
done
mosquitto_pub -h 127.0.0.1 -p "$port" -q 1 -t pi/smoke -m "hello from $(uname -m) host" ||
    fail "mosquitto_pub failed"
wait "$sub" || fail "mosquitto_sub got nothing"
[ "$(cat "$work/sub.out")" = "pi/smoke hello from $(uname -m) host" ] ||
    fail "mosquitto_sub got '$(cat "$work/sub.out")'"

# A retained message reaches a subscriber that comes later.
mosquitto_pub -h 127.0.0.1 -p "$port" -q 1 -r -t pi/retained -m kept || fail "retained publish failed"
got=$(mosquitto_sub -h 127.0.0.1 -p "$port" -t pi/retained -C 1 -W 20) || fail "no retained message"
[ "$got" = kept ] || fail "retained message was '$got'"

# TLS: a retained message published and read back over the TLS listener.
tls=(-h 127.0.0.1 -p "$tls_port" --cafile "$work/server.crt")
mosquitto_pub "${tls[@]}" -q 1 -r -t pi/tls -m secret || fail "publish over TLS failed"
got=$(mosquitto_sub "${tls[@]}" -t pi/tls -C 1 -W 20) || fail "nothing over TLS"
[ "$got" = secret ] || fail "over TLS: '$got'"

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
((status == 0)) || fail "midge exited with status $status after SIGTERM"
grep -q "shutting down" "$work/midge.log" || fail "no orderly shutdown in the log"
echo "smoke-test: $midge ${runner[*]:+under ${runner[*]}}: config OK, pub/sub OK, retained OK, TLS OK, clean stop"
