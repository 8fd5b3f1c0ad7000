#!/usr/bin/env bash
# End-to-end test of the device firmware on a real network: the midge-node/midge-client
# code on embassy-net (smoltcp) over a TAP device, publishing to the real midge broker in
# a private network namespace, checked byte for byte by mosquitto_sub. The broker is
# restarted mid-run: the node must reconnect and deliver every QoS 1 reading (sequence
# numbers make gaps visible), and its will must announce it offline when it dies. Two
# scenarios: MQTT 3.1.1 with a graceful broker restart (SIGTERM), MQTT 5 with a crash
# (SIGKILL). A third runs the node's CoAP path through midge-gateway, started only after
# the node's first request, which must get through by RFC 7252 retransmission. A fourth
# gives the node no address and the broker as a DNS name: DHCP and DNS from dnsmasq.
#
# Needs root (network namespaces, TAP), /dev/net/tun, mosquitto-clients, dnsmasq (from
# dnsmasq-base) and python3; tests/run installs them.
# Broker and gateway binaries: $MIDGE_BIN and $MIDGE_GATEWAY_BIN, else
# ${CARGO_TARGET_DIR:-target}/debug/midge and …/midge-gateway (build them first with
# `cargo build -p midge -p midge-gateway`). Takes about 30 s once the node is built.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
case $target_dir in /*) ;; *) target_dir=$root/$target_dir ;; esac
midge=${MIDGE_BIN:-$target_dir/debug/midge}
gateway=${MIDGE_GATEWAY_BIN:-$target_dir/debug/midge-gateway}

fail() {
    echo "e2e: FAILED: $*" >&2
    exit 1
}
[ "$(id -u)" -eq 0 ] || fail "needs root (network namespace and TAP device)"
[ -c /dev/net/tun ] || fail "/dev/net/tun is missing"
[ -x "$midge" ] || fail "broker binary $midge not found: cargo build -p midge, or set MIDGE_BIN"
[ -x "$gateway" ] || fail "gateway binary $gateway not found: cargo build -p midge-gateway, or set MIDGE_GATEWAY_BIN"
for tool in ip mosquitto_sub mosquitto_pub python3 stdbuf dnsmasq; do
    command -v "$tool" >/dev/null || fail "$tool not installed"
done

# The board crate has its own lock file and target dir (boards/linux-tap/target).
(cd "$here" && env -u CARGO_TARGET_DIR cargo build --locked --quiet)
node_bin=$here/target/debug/midge-linux-tap

ns=midge-e2e-$$
work=$(mktemp -d)
pids=()
ok=0
cleanup() {
    status=$?
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    if [ "$status" -ne 0 ]; then
        for log in "$work"/*.log "$work"/*.out; do
            [ -f "$log" ] && { echo "--- $(basename "$log") (last 30 lines)"; tail -n 30 "$log"; }
        done
    fi
    [ -n "${E2E_KEEP:-}" ] && echo "e2e: logs kept in $work" || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# For foreground commands only: `in_ns … &` would put a subshell's pid in $!, and killing
# that leaves the command running. Background commands use `ip netns exec`, which execs.
in_ns() { ip netns exec "$ns" "$@"; }
pass() {
    ok=$((ok + 1))
    echo "e2e: ok: $*"
}

# The namespace: the TAP device is the node's Ethernet link; 10.99.0.1 is the broker's
# side. The node (10.99.0.2, static) runs inside the same namespace, as TUNSETIFF attaches
# by name in the caller's namespace.
ip netns add "$ns"
in_ns ip link set lo up
in_ns ip tuntap add name tap0 mode tap
in_ns ip addr add 10.99.0.1/24 dev tap0
in_ns ip link set tap0 up

# Mosquitto syntax: a listener on every address refuses anonymous clients unless told.
printf 'listener 1883 0.0.0.0\nallow_anonymous true\n' >"$work/midge.conf"
broker_pid=
start_broker() {
    # Both runs of a scenario share one data directory, as a restarted broker would.
    ip netns exec "$ns" "$midge" -c "$work/midge.conf" --data-dir "$work/$scenario.data" \
        >>"$work/$scenario.broker.log" 2>&1 &
    broker_pid=$!
    pids+=("$broker_pid")
    for _ in $(seq 100); do
        in_ns mosquitto_pub -h 127.0.0.1 -i e2e-wait -t e2e/wait -m up 2>/dev/null && return
        sleep 0.1
    done
    fail "broker did not listen within 10 s"
}

# A QoS 1 subscriber on the broker's loopback; returns once a probe message has come back
# through it, so the subscription is known to be live.
start_sub() {
    local name=$1
    ip netns exec "$ns" stdbuf -oL mosquitto_sub -h 127.0.0.1 -i "e2e-$name" -q 1 -v \
        -t 'sensors/e2e/#' -t 'devices/e2e/status' -t "e2e/probe/$name" \
        >"$work/$name.out" 2>>"$work/$scenario.sub.log" &
    pids+=("$!")
    sub_pid=$!
    for i in $(seq 100); do
        in_ns mosquitto_pub -h 127.0.0.1 -i e2e-probe -q 1 -t "e2e/probe/$name" -m "$i" 2>/dev/null || true
        grep -q "^e2e/probe/$name " "$work/$name.out" && return
        sleep 0.1
    done
    fail "subscriber $name not live within 10 s"
}

readings() { grep -c '^sensors/e2e/temperature ' "$work/$1.out" || true; }
wait_readings() {
    local name=$1 want=$2 seconds=$3
    for _ in $(seq $((seconds * 10))); do
        [ "$(readings "$name")" -ge "$want" ] && return
        sleep 0.1
    done
    fail "$name got $(readings "$name") readings, expected $want within $seconds s"
}

# A command to the node (devices/e2e/cmd/led, QoS 1) must reach its Sensor::command,
# which prints it.
send_command() {
    local scenario=$1 when=$2
    in_ns mosquitto_pub -h 127.0.0.1 -i e2e-cmd -q 1 -t devices/e2e/cmd/led -m "on-$when"
    for _ in $(seq 50); do
        grep -q "^command led on-$when\$" "$work/$scenario.node.log" && {
            pass "$scenario: command delivered to the node ($when the restart)"
            return
        }
        sleep 0.1
    done
    fail "$scenario: command on-$when did not reach the node"
}

# One scenario: broker, subscriber, node (extra flags $3, protocol level $4 in the broker's
# log); broker restart with signal $2; node killed.
run_scenario() {
    scenario=$1
    local signal=$2 flags=$3 level=$4
    start_broker
    start_sub ${scenario}-before
    ip netns exec "$ns" "$node_bin" --tap tap0 --ip 10.99.0.2/24 --gateway 10.99.0.1 --broker 10.99.0.1 \
        --device-id e2e --period-ms 200 --keep-alive 2 --timeout-ms 2000 --backoff-max-ms 2000 ${flags:+"$flags"} \
        >"$work/$scenario.node.log" 2>&1 &
    node_pid=$!
    pids+=("$node_pid")
    started=$(date +%s)

    wait_readings ${scenario}-before 10 20
    grep -q "as e2e ($level," "$work/$scenario.broker.log" || fail "node did not connect with protocol $level"
    send_command "$scenario" before
    pass "$scenario: node connected ($level) and published (${scenario}-before: $(readings ${scenario}-before) readings)"

    # Restart the broker. While it is away the node keeps sampling into its outbox. The
    # broker's address is taken off the TAP link until the new subscriber is live, so the
    # node cannot deliver to the new broker before anyone listens.
    kill "-$signal" "$broker_pid"
    wait "$broker_pid" 2>/dev/null || true
    kill "$sub_pid" 2>/dev/null || true
    wait "$sub_pid" 2>/dev/null || true
    in_ns ip addr del 10.99.0.1/24 dev tap0
    before=$(readings ${scenario}-before)
    start_broker
    start_sub ${scenario}-after
    sleep 1
    in_ns ip addr add 10.99.0.1/24 dev tap0
    sampled=$(grep -c '^sample ' "$work/$scenario.node.log" || true)
    offline=$((sampled - before))
    [ "$offline" -ge 3 ] || fail "only $offline samples taken while the broker was away; the test proves nothing"
    pass "$scenario: broker restarted ($signal); $offline samples taken while it was unreachable"

    wait_readings ${scenario}-after 20 30
    send_command "$scenario" after
    pass "$scenario: node reconnected and published again (${scenario}-after: $(readings ${scenario}-after) readings)"

    # The node vanishes without DISCONNECT: the broker publishes its will after 1.5 × the
    # 2 s keep alive.
    kill -9 "$node_pid"
    wait "$node_pid" 2>/dev/null || true
    for _ in $(seq 100); do
        grep -q '^devices/e2e/status offline$' "$work/${scenario}-after.out" && break
        sleep 0.1
    done
    elapsed=$(($(date +%s) - started + 1))

    python3 "$here/check_readings.py" "$work/${scenario}-before.out" "$work/${scenario}-after.out" \
        "$elapsed" "$scenario" "$work/checks"

    kill "$broker_pid" "$sub_pid"
    wait "$broker_pid" "$sub_pid" 2>/dev/null || true
}

# CoAP: node → UDP → midge-gateway → broker → subscriber. The gateway comes up after the
# node has sent its first request, so that request only arrives by retransmission.
run_coap_scenario() {
    scenario=coap
    start_broker
    start_sub coap
    ip netns exec "$ns" "$node_bin" --tap tap0 --ip 10.99.0.2/24 --gateway 10.99.0.1 --broker 10.99.0.1 \
        --device-id e2e --period-ms 300 --coap >"$work/coap.node.log" 2>&1 &
    node_pid=$!
    pids+=("$node_pid")
    started=$(date +%s)
    sleep 1
    ip netns exec "$ns" "$gateway" --listen 0.0.0.0:5683 --broker 127.0.0.1:1883 \
        >"$work/coap.gateway.log" 2>&1 &
    local gateway_pid=$!
    pids+=("$gateway_pid")
    wait_readings coap 10 30
    # The node samples only after `online` got through, so the first reading's uptime
    # shows how long that took: at least the 2 s initial retransmission timeout.
    local first_up
    first_up=$(grep -m1 '^sensors/e2e/temperature ' "$work/coap.out" | sed 's/.*"up":\([0-9]*\)}$/\1/')
    [ "$first_up" -ge 2 ] || fail "coap: first reading at ${first_up} s: the request was not retransmitted"
    pass "coap: first request retransmitted until the gateway came up (first reading at ${first_up} s); $(readings coap) readings"
    kill -9 "$node_pid"
    wait "$node_pid" 2>/dev/null || true
    elapsed=$(($(date +%s) - started + 1))
    # No second subscriber here: an empty file stands for it. CoAP has no will, so the
    # status check expects only `online`.
    : >"$work/coap-none.out"
    python3 "$here/check_readings.py" "$work/coap.out" "$work/coap-none.out" "$elapsed" coap \
        "$work/checks" --no-restart
    kill "$gateway_pid" "$broker_pid" "$sub_pid"
    wait "$gateway_pid" "$broker_pid" "$sub_pid" 2>/dev/null || true
}

# DHCP and DNS: dnsmasq on the broker's side leases an address and answers for the
# broker's name, so the node needs neither an address nor the broker's IP.
run_dhcp_dns_scenario() {
    scenario=dhcp
    start_broker
    start_sub dhcp
    ip netns exec "$ns" dnsmasq --no-daemon --conf-file=/dev/null --no-resolv --no-hosts \
        --interface=tap0 --bind-interfaces --listen-address=10.99.0.1 --pid-file= \
        --dhcp-range=10.99.0.50,10.99.0.99,255.255.255.0,1h --dhcp-leasefile="$work/leases" \
        --dhcp-option=option:dns-server,10.99.0.1 --address=/broker.e2e/10.99.0.1 \
        >"$work/dhcp.dnsmasq.log" 2>&1 &
    local dnsmasq_pid=$!
    pids+=("$dnsmasq_pid")
    # A DISCOVER sent before dnsmasq listens is only retried by the node seconds later.
    for _ in $(seq 100); do
        grep -q 'sockets bound exclusively' "$work/dhcp.dnsmasq.log" && break
        sleep 0.1
    done
    ip netns exec "$ns" "$node_bin" --tap tap0 --broker broker.e2e --device-id e2e \
        --period-ms 200 >"$work/dhcp.node.log" 2>&1 &
    node_pid=$!
    pids+=("$node_pid")
    started=$(date +%s)
    wait_readings dhcp 10 30
    grep -q '10\.99\.0\.[5-9][0-9]' "$work/leases" || fail "dhcp: no lease in $(cat "$work/leases")"
    grep -q "New connection from 10\.99\.0\.[5-9][0-9]:" "$work/dhcp.broker.log" \
        || fail "dhcp: the broker saw no connection from a leased address"
    pass "dhcp: address leased, broker.e2e resolved, $(readings dhcp) readings"
    kill -9 "$node_pid"
    wait "$node_pid" 2>/dev/null || true
    elapsed=$(($(date +%s) - started + 1))
    : >"$work/dhcp-none.out"
    python3 "$here/check_readings.py" "$work/dhcp.out" "$work/dhcp-none.out" "$elapsed" dhcp \
        "$work/checks" --no-restart
    kill "$dnsmasq_pid" "$broker_pid" "$sub_pid"
    wait "$dnsmasq_pid" "$broker_pid" "$sub_pid" 2>/dev/null || true
}

run_scenario v311 TERM "" p4
run_scenario v5 KILL --v5 p5
run_coap_scenario
run_dhcp_dns_scenario
while read -r n; do ok=$((ok + n)); done <"$work/checks"
echo "e2e: $ok passed, 0 failed"
