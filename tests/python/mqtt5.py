#!/usr/bin/env python3
"""MQTT 5 scenarios the end-to-end tests run against midge with paho-mqtt 2.x.

Usage: mqtt5.py --port PORT SCENARIO

Each scenario drives one or more paho clients and prints one JSON object per line for what
it observed ({"event": "message", ...}); the Rust test (tests/src/python.rs) asserts on
those. Properties are printed as paho's Properties.json() gives them (Correlation Data in
hex, User Properties as [name, value] pairs in order). A scenario that cannot complete
raises, which exits non-zero with the reason on stderr.
"""

import argparse
import json
import signal
import socket
import sys
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

# How long any one wait lasts, in seconds.
TIMEOUT = 10
PORT = 0
# Clients whose network loop runs while a scenario waits.
ACTIVE = []


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def props_json(props):
    return props.json() if props is not None else {}


def properties(packet_type, **values):
    p = Properties(packet_type)
    for name, value in values.items():
        setattr(p, name, value)
    return p


def pump(seconds=0.0):
    """Runs every active client's network loop for at least `seconds`."""
    end = time.monotonic() + seconds
    while True:
        for c in list(ACTIVE):
            c.client.loop(timeout=0.005)
        if time.monotonic() >= end:
            return


def wait_for(what, condition):
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        pump()


class Client:
    """A paho MQTT 5 client whose callbacks record what arrived."""

    def __init__(self, client_id, **will):
        self.id = client_id
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
        )
        self.connack = None
        self.messages = []
        self.subacks = {}
        self.acks = {}
        self.disconnected = None
        c = self.client
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        c.on_publish = self._on_publish
        c.on_disconnect = self._on_disconnect
        if will:
            c.will_set(**will)

    def _on_connect(self, client, userdata, flags, reason_code, props):
        self.connack = {
            "reason": reason_code.value,
            "session_present": bool(flags.session_present),
            "properties": props_json(props),
        }

    def _on_message(self, client, userdata, msg):
        self.messages.append(
            {
                "client": self.id,
                "topic": msg.topic,
                "payload": msg.payload.decode("utf-8", "replace"),
                "qos": msg.qos,
                "retain": bool(msg.retain),
                "properties": props_json(msg.properties),
                "at": time.monotonic(),
            }
        )

    def _on_subscribe(self, client, userdata, mid, reason_codes, props):
        self.subacks[mid] = [rc.value for rc in reason_codes]

    def _on_publish(self, client, userdata, mid, reason_code, props):
        self.acks[mid] = reason_code.value

    def _on_disconnect(self, client, userdata, flags, reason_code, props):
        self.disconnected = {"reason": reason_code.value, "properties": props_json(props)}
        if self in ACTIVE:
            ACTIVE.remove(self)

    def connect(self, clean_start=True, expect_success=True, keepalive=60, **connect_props):
        """Connects and waits for CONNACK; returns it as a dict."""
        props = properties(PacketTypes.CONNECT, **connect_props) if connect_props else None
        self.connack = None
        self.disconnected = None
        self.client.connect(
            "127.0.0.1", PORT, keepalive=keepalive, clean_start=clean_start, properties=props
        )
        ACTIVE.append(self)
        wait_for(f"CONNACK for {self.id}", lambda: self.connack is not None)
        if expect_success and self.connack["reason"] != 0:
            raise RuntimeError(f"{self.id} refused: {self.connack}")
        return self.connack

    def subscribe(self, topic, qos=1, options=None, **subscribe_props):
        props = properties(PacketTypes.SUBSCRIBE, **subscribe_props) if subscribe_props else None
        if options is None:
            options = SubscribeOptions(qos=qos)
        _, mid = self.client.subscribe(topic, options=options, properties=props)
        wait_for(f"SUBACK for {topic}", lambda: mid in self.subacks)
        return self.subacks[mid]

    def publish(self, topic, payload, qos=1, retain=False, **publish_props):
        """Publishes; for QoS 1 and 2 waits for the flow to end and returns the reason."""
        props = properties(PacketTypes.PUBLISH, **publish_props) if publish_props else None
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=props)
        if qos == 0:
            pump(0.05)
            return 0
        wait_for(f"acknowledgement of {topic}", lambda: info.mid in self.acks)
        return self.acks[info.mid]

    def wait_messages(self, count):
        wait_for(
            f"{count} messages for {self.id} (have {len(self.messages)})",
            lambda: len(self.messages) >= count,
        )
        return self.messages

    def disconnect(self, **disconnect_props):
        props = properties(PacketTypes.DISCONNECT, **disconnect_props) if disconnect_props else None
        self.client.disconnect(properties=props)
        wait_for(f"{self.id} disconnected", lambda: self not in ACTIVE)

    def kill(self):
        """Closes the socket without DISCONNECT (what a crashed device does)."""
        sock = self.client.socket()
        ACTIVE.remove(self)
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()


def passthrough():
    """Application properties of a PUBLISH reach the subscriber unchanged and in order."""
    sub = Client("py-pt-sub")
    sub.connect()
    sub.subscribe("pt/#", qos=1)
    pub = Client("py-pt-pub")
    pub.connect()
    reason = pub.publish(
        "pt/reading",
        b'{"t": 21.5}',
        qos=1,
        PayloadFormatIndicator=1,
        ContentType="application/json",
        ResponseTopic="pt/reply",
        CorrelationData=b"\x00\x01corr",
        UserProperty=[("z", "1"), ("a", "2"), ("z", "0")],
    )
    emit("puback", reason=reason)
    for m in sub.wait_messages(1):
        emit("message", **m)


def expiry():
    """Queued messages: the expired one is dropped, the others carry what is left."""
    sub = Client("py-ex-sub")
    sub.connect(clean_start=True, SessionExpiryInterval=60)
    sub.subscribe("ex/#", qos=1)
    sub.disconnect()
    pub = Client("py-ex-pub")
    pub.connect()
    pub.publish("ex/short", b"short", qos=1, MessageExpiryInterval=1)
    pub.publish("ex/long", b"long", qos=1, MessageExpiryInterval=10)
    pub.publish("ex/none", b"none", qos=1)
    pump(2.2)
    emit("connack", **sub.connect(clean_start=False))
    pub.publish("ex/end", b"end", qos=1)
    wait_for("ex/end", lambda: any(m["topic"] == "ex/end" for m in sub.messages))
    for m in sub.messages:
        emit("message", **m)


def request_response():
    """Response Information on request; Response Topic and Correlation Data round trip."""
    requester = Client("py-rr-requester")
    connack = requester.connect(RequestResponseInformation=1)
    emit("connack", **connack)
    info = connack["properties"].get("ResponseInformation")
    reply_topic = f"{info}/reply" if info else "rr/fallback/reply"
    emit("reply_topic", topic=reply_topic)
    requester.subscribe(reply_topic, qos=1)

    responder = Client("py-rr-responder")
    responder.connect()
    responder.subscribe("rr/service", qos=1)
    requester.publish(
        "rr/service",
        b"what time is it",
        qos=1,
        ResponseTopic=reply_topic,
        CorrelationData=b"req-42",
    )
    request = responder.wait_messages(1)[0]
    emit("request", **request)
    props = request["properties"]
    responder.publish(
        props["ResponseTopic"],
        b"noon",
        qos=1,
        CorrelationData=bytes.fromhex(props["CorrelationData"]),
    )
    emit("reply", **requester.wait_messages(1)[0])


def server_aliases():
    """midge assigns Topic Aliases to a client that allows them."""
    sub = Client("py-al-sub")
    emit("connack", **sub.connect(TopicAliasMaximum=5))
    sub.subscribe("al/#", qos=1)
    pub = Client("py-al-pub")
    pub.connect()
    order = ["al/a", "al/b", "al/a", "al/b", "al/a"]
    for i, topic in enumerate(order):
        pub.publish(topic, f"{i}".encode(), qos=1)
    for m in sub.wait_messages(len(order)):
        emit("message", **m)


def shared():
    """Each message of a shared subscription goes to one member, in turn."""
    members = []
    for i in range(3):
        m = Client(f"py-sh-member{i}")
        m.connect()
        m.subscribe("$share/grp/sh/t", qos=1)
        members.append(m)
    plain = Client("py-sh-plain")
    plain.connect()
    plain.subscribe("sh/t", qos=1)
    pub = Client("py-sh-pub")
    pub.connect()
    for i in range(9):
        pub.publish("sh/t", f"{i}".encode(), qos=1)
    plain.wait_messages(9)
    wait_for(
        "9 messages across the group",
        lambda: sum(len(m.messages) for m in members) >= 9,
    )
    pump(0.2)  # a duplicate to another member would show up here
    for c in members + [plain]:
        for m in c.messages:
            emit("message", **m)


def auth_method():
    """A CONNECT with an Authentication Method midge does not know is refused."""
    c = Client("py-auth")
    connack = c.connect(expect_success=False, AuthenticationMethod="SCRAM-SHA-256")
    emit("connack", **connack)
    wait_for("the connection to close", lambda: c not in ACTIVE)
    emit("closed")


def assigned_id():
    """An empty client id gets an Assigned Client Identifier, and the client works."""
    c = Client("")
    connack = c.connect()
    emit("connack", **connack)
    c.subscribe("aid/t", qos=1)
    c.publish("aid/t", b"to myself", qos=1)
    emit("message", **c.wait_messages(1)[0])


def subscription_ids():
    """Overlapping subscriptions: one copy carrying every matching identifier."""
    c = Client("py-sid")
    c.connect()
    c.subscribe("sid/#", qos=1, SubscriptionIdentifier=1)
    c.subscribe("sid/+/x", qos=1, SubscriptionIdentifier=2)
    c.subscribe("sid/a/+", qos=1)  # no identifier
    pub = Client("py-sid-pub")
    pub.connect()
    pub.publish("sid/a/x", b"both", qos=1)
    pub.publish("sid/b/y", b"first only", qos=1)
    pub.publish("sid/end", b"end", qos=1)
    wait_for("sid/end", lambda: any(m["topic"] == "sid/end" for m in c.messages))
    for m in c.messages:
        emit("message", **m)


def will():
    """A will with a delay and properties, published after the delay."""
    watcher = Client("py-will-watch")
    watcher.connect()
    watcher.subscribe("pywill/#", qos=1)
    device = Client(
        "py-will-device",
        topic="pywill/device",
        payload=b"gone",
        qos=1,
        properties=properties(
            PacketTypes.WILLMESSAGE,
            WillDelayInterval=1,
            ContentType="text/plain",
            UserProperty=[("reason", "power"), ("site", "shed")],
        ),
    )
    device.connect(SessionExpiryInterval=10)
    device.kill()
    killed = time.monotonic()
    m = watcher.wait_messages(1)[0]
    emit("will", delay=m["at"] - killed, **m)


SCENARIOS = {
    f.__name__: f
    for f in [
        passthrough,
        expiry,
        request_response,
        server_aliases,
        shared,
        auth_method,
        assigned_id,
        subscription_ids,
        will,
    ]
}


def main():
    global PORT
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    args = parser.parse_args()
    PORT = args.port
    # Whatever happens, the test is not held up for long.
    signal.alarm(30)
    SCENARIOS[args.scenario]()
    for c in list(ACTIVE):
        c.client.disconnect()
        c.client.loop(timeout=0.05)


if __name__ == "__main__":
    sys.exit(main())
