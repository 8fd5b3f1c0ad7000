#!/usr/bin/env python3
"""Writes the seed inputs of the `connection` target into seeds/ (deterministic).

Run from broker/fuzz: python3 gen_seeds.py. The step encoding is described in README.md
and in fuzz_targets/connection.rs (`run` and the gen_* functions)."""

import os

RAW, CONNECT, SUB, UNSUB, PUB, ACK, PING, DISC, AUTH = range(9)
SENDQ, FLUSH, CLOSE, SERVE, TICK, RELOAD, ROUND = 9, 10, 11, 12, 13, 14, 15
V31, V311, V5 = 0, 1, 2
# Client ids "a", "b", "c", "" (indexes into CLIENT_IDS).
A, B, C, EMPTY = 0, 1, 2, 3
# FILTERS and TOPICS indexes.
F = {"a/b": 0, "a/+": 1, "#": 2, "+/+": 3, "$share/g/a/b": 4, "$share/g/#": 5,
     "c/+/x": 6, "r/#": 7, "t": 8, "$SYS/#": 9, "a/secret": 10, "$share/h/+/+": 11}
T = {"a/b": 0, "a/c": 1, "a/secret": 2, "c/a/x": 3, "r/1": 4, "t": 5, "$SYS/x": 6, "c/b/x": 7}


def step(slot, kind, *rest):
    return bytes([slot << 4 | kind, *rest])


def connect(slot, version, cid, clean=True, will=0, user=False, expiry=0, rmax=0,
            maxpkt=0, aliases=0, auth=0, rri=False, no_problem=False, keepalive=1,
            will_delay=False, will_expiry=False, password=None):
    b1 = version | cid << 2 | int(clean) << 4 | will << 5 | int(user) << 7
    b2 = expiry | rmax << 2 | maxpkt << 4 | aliases << 6
    b3 = (auth | int(rri) << 2 | int(no_problem) << 3 | keepalive << 4
          | int(will_delay) << 6 | int(will_expiry) << 7)
    b4 = {None: 0, "pw": 1, "wrong": 2}[password]
    return step(slot, CONNECT, b1, b2, b3, b4)


def sub(slot, pid, subs, subid=None):
    b1 = (pid - 1) | (len(subs) - 1) << 2
    if subid is not None:
        b1 |= 1 << 4 | (subid - 1) << 5
    out = step(slot, SUB, b1)
    for flt, qos, *opts in subs:
        nl, rap, rh = (list(opts) + [0, 0, 0])[:3]
        out += bytes([F[flt], qos | nl << 2 | rap << 3 | rh << 4])
    return out


def unsub(slot, pid, filters):
    return step(slot, UNSUB, (pid - 1) | (len(filters) - 1) << 2, *[F[f] for f in filters])


def pub(slot, topic, qos, pid=1, retain=False, alias=0, payload=1, props=0):
    b1 = T[topic] | qos << 3 | int(retain) << 5 | alias << 6
    return step(slot, PUB, b1, (pid - 1) | payload << 2, props)


PUBACK, PUBREC, PUBREL, PUBCOMP = range(4)


def ack(slot, kind, pid, error=False):
    return step(slot, ACK, kind | (pid - 1) << 2 | int(error) << 5)


def disc(slot, reason=0, expiry=0):
    return step(slot, DISC, reason | expiry << 2)


def auth(slot, reason=0, method=0, data=0):
    return step(slot, AUTH, reason | method << 2 | data << 4)


LOST, IDLE, SOCKET, SHUTDOWN, TAKEN = 0, 1, 2, 3, 4
# Listener flavours for the connection that replaces a closed one.
NO_ANONYMOUS, ACL_FILE, PASSWORD_FILE, CERT_USER, CERT_NONE = 1, 2, 4, 8, 8 | 16


def close(slot, kind=LOST, flavour=0):
    return step(slot, CLOSE, kind | flavour << 3)


def raw(slot, data):
    return step(slot, RAW, len(data)) + data


SEEDS = {
    # 3.1.1: a subscribes to a/+ at QoS 2, b publishes at QoS 0, 1, 2; both sides
    # complete their QoS 1/2 flows.
    "pubsub-v311": bytes([0])
    + connect(0, V311, A) + connect(1, V311, B)
    + sub(0, 1, [("a/+", 2)])
    + pub(1, "a/b", 0) + pub(1, "a/b", 1, pid=1) + pub(1, "a/c", 2, pid=2)
    + ack(1, PUBREL, 2)
    + step(0, SENDQ)
    + ack(0, PUBACK, 1) + ack(0, PUBREC, 2) + ack(0, PUBCOMP, 2)
    + step(0, PING) + unsub(0, 2, ["a/+"]) + disc(0) + disc(1),
    # MQTT 5: topic aliases both ways, a subscription identifier, message expiry, user
    # properties, Maximum Packet Size and Receive Maximum, retained message at subscribe.
    "pubsub-v5": bytes([0])
    + connect(0, V5, A, maxpkt=3, aliases=2, rmax=1, expiry=2)
    + connect(1, V5, B)
    + pub(1, "r/1", 1, pid=3, retain=True, payload=2, props=0x12)
    + sub(0, 2, [("a/+", 2, 0, 1, 0), ("r/#", 1)], subid=3)
    + pub(1, "a/b", 2, pid=1, alias=1, props=0x20) + pub(1, "a/b", 2, pid=2, alias=2)
    + ack(1, PUBREL, 1) + ack(1, PUBREL, 2)
    + step(0, SENDQ) + ack(0, PUBACK, 1) + step(0, SENDQ) + ack(0, PUBREC, 2)
    + ack(0, PUBCOMP, 2) + step(0, SENDQ)
    + unsub(0, 3, ["a/+", "t"]) + disc(0, 0, 1) + disc(1),
    # Session takeover: a (expiry 10 s) has an unacknowledged QoS 1 delivery; a second
    # connection resumes the session (resent with DUP), the first is told Session taken
    # over; then a clean start replaces it.
    "takeover": bytes([0])
    + connect(0, V5, A, clean=True, expiry=2)
    + sub(0, 1, [("t", 1)])
    + connect(1, V311, B)
    + pub(1, "t", 1, pid=4) + step(0, SENDQ)
    + connect(2, V5, A, clean=False, expiry=2)
    + step(0, SERVE)
    + ack(2, PUBACK, 1)
    + connect(0, V311, A, clean=True)
    + step(2, SERVE) + step(0, PING),
    # Wills: a 3.1.1 will published on a lost connection, an MQTT 5 will with a delay
    # published after the clock moves, and a DISCONNECT that keeps the will.
    "will": bytes([0])
    + connect(0, V311, C) + sub(0, 1, [("#", 2)])
    + connect(1, V311, A, will=2)
    + close(1, LOST)
    + connect(1, V5, B, will=1, expiry=2, will_delay=True, will_expiry=True)
    + close(1, LOST) + step(0, SENDQ) + step(0, TICK, 6) + step(0, SENDQ)
    + connect(1, V5, A, will=3) + disc(1, 1)
    + step(0, SENDQ),
    # Enhanced authentication: challenge, answer, CONNACK; re-authentication; a refused
    # exchange and an unknown method.
    "auth": bytes([0])
    + connect(0, V5, A, auth=1) + auth(0, 0, 0, 0)
    + auth(0, 1, 0, 0) + auth(0, 0, 0, 0)
    + connect(1, V5, B, auth=1) + auth(1, 0, 0, 2)
    + connect(1, V5, C, auth=2),
    # Shared subscriptions: two members of $share/g/#, QoS 1 deliveries round-robin, one
    # member leaves with a delivery unacknowledged and it moves to the other.
    "shared": bytes([0])
    + connect(0, V5, A) + connect(1, V311, B)
    + sub(0, 1, [("$share/g/#", 1)]) + sub(1, 1, [("$share/g/#", 1)])
    + connect(2, V5, C)
    + pub(2, "t", 1, pid=1) + pub(2, "t", 1, pid=2) + pub(2, "t", 1, pid=3)
    + step(0, SENDQ) + step(1, SENDQ) + close(0, LOST) + step(1, SENDQ)
    + step(0, ROUND),
    # ACL and anonymous access: a listener without anonymous access refuses; one with the
    # ACL file lets "u" do anything and an anonymous client only a/#, not a/secret.
    "acl": bytes([0])
    + close(0, LOST, NO_ANONYMOUS) + connect(0, V311, A)
    + close(0, LOST, ACL_FILE) + connect(0, V5, A)
    + sub(0, 1, [("#", 1), ("a/secret", 1), ("c/+/x", 0)])
    + pub(0, "a/secret", 1) + pub(0, "c/a/x", 0) + pub(0, "t", 2, pid=2)
    + close(1, LOST, ACL_FILE) + connect(1, V311, B, user=True)
    + pub(1, "a/secret", 1, pid=1) + step(0, SENDQ),
    # Raw bytes: a CONNECT of protocol level 6 (CONNACK refusal in 3.1.1 form), a 3.1
    # CONNECT split across reads, then a PINGREQ and a malformed packet.
    "raw": bytes([0])
    + raw(0, bytes.fromhex("100c00044d5154540602003c0000"))
    + raw(1, bytes.fromhex("101100064d514973647003020000"))
    + raw(1, bytes.fromhex("0003616263"))
    + raw(1, bytes.fromhex("c000"))
    + raw(1, bytes.fromhex("30020000")),
    # Password file: a right password (CONNECT waits for the check; the SUBSCRIBE behind
    # it in the same read is handled after), a wrong one, a reload that keeps the client
    # and one that ends it; client certificates giving the user name, or none.
    "passwords": bytes([0])
    + close(0, LOST, PASSWORD_FILE | NO_ANONYMOUS | ACL_FILE)
    + raw(0, bytes.fromhex(  # MQTT 5 CONNECT a, u/pw, and SUBSCRIBE # QoS 1: one read
        "10150004 4d515454 05c2003c 00000161 00017500 027077"
        "82070001 00000123 01"))
    + close(1, LOST, PASSWORD_FILE) + connect(1, V5, B, user=True, password="wrong")
    + close(1, LOST, PASSWORD_FILE) + connect(1, V311, C, user=True, password="pw")
    + step(1, RELOAD, 0) + step(1, PING) + step(1, RELOAD, 1)
    + close(2, LOST, CERT_USER | NO_ANONYMOUS) + connect(2, V5, C)
    + close(2, LOST, CERT_NONE) + connect(2, V311, C, user=True, password="pw"),
    # Regression inputs for what this target found (fixed in 83ffd9d):
    # a connection taken over by a clean start sends SUBSCRIBE;
    "regress-taken-over-subscribe": bytes([0])
    + connect(0, V5, B) + connect(1, V311, B)
    + sub(0, 1, [("a/b", 1)]) + disc(0),
    # a connected MQTT 5 client sends a CONNECT of protocol level 6 (DISCONNECT 0x84);
    "regress-disconnect-reason": bytes([0])
    + connect(0, V5, A, keepalive=0)
    + raw(0, bytes.fromhex("100c00044d5154540602003c0000")),
    # a malformed packet from a client with Maximum Packet Size 16 (Reason String).
    "regress-reason-string-size": bytes([0])
    + connect(0, V5, A, maxpkt=1) + raw(0, bytes.fromhex("0000")),
    # Limits: in-flight window 2, small queues, no retain, tiny message size limit.
    "limits": bytes([0b0011_0011])
    + connect(0, V311, A) + sub(0, 1, [("#", 2)]) + connect(1, V5, B)
    + pub(1, "a/b", 1, pid=1) + pub(1, "a/c", 1, pid=2) + pub(1, "t", 2, pid=3)
    + pub(1, "t", 0, payload=3) + pub(1, "r/1", 0, retain=True)
    + step(0, SENDQ) + ack(0, PUBACK, 1) + step(0, SENDQ),
}

os.makedirs("seeds", exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join("seeds", name), "wb") as f:
        f.write(data)
    print(f"{name}: {len(data)} bytes")
