//! Every transition of the sans-IO client, driven by hand: what it sends, what it
//! reports, when it gives up.

use embassy_time::{Duration, Instant};
use midge_client::{
    Backoff, Client, Config, Error, Event, LastWill, Message, PublishError, Waiting,
};
use midge_wire::{
    Ack, Connack, DecodeOptions, Decoded, Disconnect, List, Packet, Properties, Property,
    ProtocolVersion, Publish, QoS, QosPid, ReasonCode, Suback, Subscription, SubscriptionOptions,
    decode,
};

const V3: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;
const TIMEOUT: Duration = Duration::from_secs(5);

type TestClient = Client<'static, 128, 4>;

static SUBSCRIPTIONS: [Subscription<'static>; 2] = [
    Subscription {
        filter: "devices/d1/cmd/#",
        options: SubscriptionOptions::new(QoS::AtLeastOnce),
    },
    Subscription {
        filter: "broadcast/+",
        options: SubscriptionOptions::new(QoS::AtMostOnce),
    },
];

fn config(version: ProtocolVersion) -> Config<'static> {
    let mut c = Config::new("d1");
    c.version = version;
    c.keep_alive_secs = 20;
    c.response_timeout = TIMEOUT;
    c.backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(10),
        seed: 1,
    };
    c
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// Every packet the client wants to send now, encoded, as owned frames.
fn transmit(client: &mut TestClient, now: Instant) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut buf = [0u8; 128];
    while let Some(n) = client.poll_transmit(now, &mut buf).unwrap() {
        frames.push(buf[..n].to_vec());
        assert!(frames.len() < 100, "poll_transmit never ends");
    }
    frames
}

fn parse(frame: &[u8], version: ProtocolVersion) -> Packet<'_> {
    let opts = DecodeOptions {
        version,
        ..DecodeOptions::default()
    };
    match decode(frame, &opts).unwrap() {
        Decoded::Complete { packet, len } => {
            assert_eq!(len, frame.len());
            packet
        }
        other => panic!("incomplete frame {other:?}"),
    }
}

fn connack(session_present: bool) -> Packet<'static> {
    Packet::Connack(Connack {
        session_present,
        reason: ReasonCode::Success,
        properties: Properties::EMPTY,
    })
}

/// A client that has sent CONNECT and received an accepting CONNACK at `now`.
fn connected(version: ProtocolVersion, now: Instant) -> TestClient {
    let mut client = TestClient::new(config(version));
    handshake(&mut client, now, false);
    client
}

fn handshake(client: &mut TestClient, now: Instant, session_present: bool) -> Vec<Vec<u8>> {
    client.connection_opened();
    let frames = transmit(client, now);
    assert_eq!(frames.len(), 1);
    assert!(matches!(
        parse(&frames[0], client.version()),
        Packet::Connect(_)
    ));
    assert_eq!(
        client.handle_packet(connack(session_present)).unwrap(),
        Some(Event::Connected { session_present })
    );
    transmit(client, now)
}

fn puback(id: u16) -> Packet<'static> {
    Packet::Puback(Ack::new(id))
}

#[test]
fn connect_carries_credentials_will_and_keep_alive() {
    for version in [V3, V5] {
        let mut c = config(version);
        c.username = Some("user");
        c.password = Some(b"secret");
        c.will = Some(LastWill {
            topic: "devices/d1/status",
            payload: b"offline",
            qos: QoS::AtLeastOnce,
            retain: true,
        });
        let mut client = TestClient::new(c);
        assert_eq!(client.poll_timeout(), None);
        assert!(
            transmit(&mut client, at(0)).is_empty(),
            "nothing before the transport is up"
        );
        client.connection_opened();
        let frames = transmit(&mut client, at(0));
        assert_eq!(frames.len(), 1);
        let Packet::Connect(connect) = parse(&frames[0], version) else {
            panic!("not CONNECT");
        };
        assert_eq!(connect.version, version);
        assert_eq!(connect.client_id, "d1");
        assert_eq!(connect.keep_alive, 20);
        assert!(!connect.clean_start);
        assert_eq!(connect.username, Some("user"));
        assert_eq!(connect.password, Some(&b"secret"[..]));
        let will = connect.will.unwrap();
        assert_eq!(
            (will.topic, will.payload),
            ("devices/d1/status", &b"offline"[..])
        );
        assert_eq!((will.qos, will.retain), (QoS::AtLeastOnce, true));
        if version == V5 {
            assert_eq!(connect.properties.maximum_packet_size(), Some(128));
            assert_eq!(connect.properties.receive_maximum(), Some(8));
        }
        assert!(!client.is_connected());
        // CONNECT goes out once.
        assert!(transmit(&mut client, at(10)).is_empty());
    }
}

#[test]
fn connack_accepted_then_subscribe_and_suback() {
    let mut client = TestClient::new({
        let mut c = config(V3);
        c.subscriptions = &SUBSCRIPTIONS;
        c
    });
    let frames = handshake(&mut client, at(0), false);
    assert!(client.is_connected());
    assert_eq!(frames.len(), 1);
    let Packet::Subscribe(sub) = parse(&frames[0], V3) else {
        panic!("not SUBSCRIBE");
    };
    let filters: Vec<_> = sub
        .subscriptions
        .iter()
        .map(|s| (s.filter, s.options.qos))
        .collect();
    assert_eq!(
        filters,
        [
            ("devices/d1/cmd/#", QoS::AtLeastOnce),
            ("broadcast/+", QoS::AtMostOnce)
        ]
    );
    assert_eq!(
        client.poll_timeout(),
        Some(at(0) + TIMEOUT),
        "SUBACK deadline"
    );

    let codes = [ReasonCode::GrantedQoS1, ReasonCode::Success];
    let suback = Packet::Suback(Suback {
        packet_id: sub.packet_id,
        properties: Properties::EMPTY,
        reason_codes: List::new(&codes),
    });
    assert_eq!(
        client.handle_packet(suback),
        Ok(Some(Event::Subscribed { granted: true }))
    );
    // Keep alive is the only deadline left: 3/4 of 20 s after the last send.
    assert_eq!(client.poll_timeout(), Some(at(15_000)));
}

fn subscribed_client(version: ProtocolVersion) -> (TestClient, u16) {
    let mut client = TestClient::new({
        let mut c = config(version);
        c.subscriptions = &SUBSCRIPTIONS;
        c
    });
    let frames = handshake(&mut client, at(0), false);
    let Packet::Subscribe(sub) = parse(&frames[0], version) else {
        panic!("not SUBSCRIBE");
    };
    (client, sub.packet_id)
}

#[test]
fn refused_subscription_is_reported() {
    let (mut client, id) = subscribed_client(V5);
    let codes = [ReasonCode::GrantedQoS1, ReasonCode::NotAuthorized];
    let suback = Packet::Suback(Suback {
        packet_id: id,
        properties: Properties::EMPTY,
        reason_codes: List::new(&codes),
    });
    assert_eq!(
        client.handle_packet(suback),
        Ok(Some(Event::Subscribed { granted: false }))
    );
}

#[test]
fn suback_for_another_id_or_missing_is_an_error() {
    let (mut client, id) = subscribed_client(V3);
    let codes = [ReasonCode::GrantedQoS1, ReasonCode::Success];
    let suback = Packet::Suback(Suback {
        packet_id: id.wrapping_add(1),
        properties: Properties::EMPTY,
        reason_codes: List::new(&codes),
    });
    assert_eq!(
        client.handle_packet(suback),
        Err(Error::Unexpected(midge_wire::PacketType::Suback))
    );

    let (mut client, _) = subscribed_client(V3);
    assert_eq!(client.handle_timeout(at(4_999)), Ok(()));
    assert_eq!(
        client.handle_timeout(at(5_000)),
        Err(Error::Timeout(Waiting::Suback))
    );
}

#[test]
fn subscriptions_are_renewed_only_without_session() {
    let (mut client, id) = subscribed_client(V3);
    let codes = [ReasonCode::GrantedQoS1, ReasonCode::Success];
    let suback = Packet::Suback(Suback {
        packet_id: id,
        properties: Properties::EMPTY,
        reason_codes: List::new(&codes),
    });
    client.handle_packet(suback).unwrap();
    client.connection_lost();
    // The broker kept the session: no SUBSCRIBE.
    assert!(handshake(&mut client, at(1_000), true).is_empty());
    client.connection_lost();
    // It lost the session: subscribe again.
    let frames = handshake(&mut client, at(2_000), false);
    assert!(matches!(parse(&frames[0], V3), Packet::Subscribe(_)));
    // The connection dies before the SUBACK: subscribe again even with a session.
    client.connection_lost();
    let frames = handshake(&mut client, at(3_000), true);
    assert!(matches!(parse(&frames[0], V3), Packet::Subscribe(_)));
}

#[test]
fn refused_connection() {
    // 3.1.1 return code 5 and MQTT 5 reason code 0x86.
    for (version, code) in [
        (V3, ReasonCode::NotAuthorized),
        (V5, ReasonCode::BadUserNameOrPassword),
    ] {
        let mut client = TestClient::new(config(version));
        client.connection_opened();
        transmit(&mut client, at(0));
        let refused = Packet::Connack(Connack {
            session_present: false,
            reason: code,
            properties: Properties::EMPTY,
        });
        // Through the codec, as the driver would see it.
        let mut buf = [0u8; 32];
        let n = refused.encode(version, &mut buf).unwrap();
        let packet = parse(&buf[..n], version);
        assert_eq!(client.handle_packet(packet), Err(Error::Refused(code)));
    }
}

#[test]
fn connack_timeout() {
    let mut client = TestClient::new(config(V3));
    client.connection_opened();
    assert_eq!(
        client.poll_timeout(),
        None,
        "deadline starts when CONNECT is sent"
    );
    transmit(&mut client, at(1_000));
    assert_eq!(client.poll_timeout(), Some(at(6_000)));
    assert_eq!(client.handle_timeout(at(5_999)), Ok(()));
    assert_eq!(
        client.handle_timeout(at(6_000)),
        Err(Error::Timeout(Waiting::Connack))
    );
}

#[test]
fn packets_out_of_order_are_protocol_errors() {
    use midge_wire::PacketType as T;
    // Before CONNACK, only CONNACK (or DISCONNECT) makes sense.
    let mut client = TestClient::new(config(V3));
    client.connection_opened();
    transmit(&mut client, at(0));
    let publish = Packet::Publish(Publish {
        dup: false,
        qos_pid: QosPid::AtMostOnce,
        retain: false,
        topic: "a",
        properties: Properties::EMPTY,
        payload: b"x",
    });
    assert_eq!(
        client.handle_packet(publish),
        Err(Error::Unexpected(T::Publish))
    );

    // A CONNACK before CONNECT went out.
    let mut client = TestClient::new(config(V3));
    client.connection_opened();
    assert_eq!(
        client.handle_packet(connack(false)),
        Err(Error::Unexpected(T::Connack))
    );

    // After CONNACK: a second CONNACK, and packets only a broker receives.
    for packet in [
        connack(false),
        Packet::Pingreq,
        Packet::Unsubscribe(midge_wire::Unsubscribe {
            packet_id: 1,
            properties: Properties::EMPTY,
            filters: List::new(&["a"]),
        }),
    ] {
        let mut client = connected(V3, at(0));
        let kind = packet.packet_type();
        assert_eq!(client.handle_packet(packet), Err(Error::Unexpected(kind)));
    }
}

#[test]
fn broker_disconnect_ends_the_connection() {
    let mut client = connected(V5, at(0));
    let packet = Packet::Disconnect(Disconnect::new(ReasonCode::ServerShuttingDown));
    assert_eq!(
        client.handle_packet(packet),
        Err(Error::DisconnectedByBroker(ReasonCode::ServerShuttingDown))
    );
    // Also while waiting for CONNACK.
    let mut client = TestClient::new(config(V5));
    client.connection_opened();
    transmit(&mut client, at(0));
    let packet = Packet::Disconnect(Disconnect::new(ReasonCode::NotAuthorized));
    assert_eq!(
        client.handle_packet(packet),
        Err(Error::DisconnectedByBroker(ReasonCode::NotAuthorized))
    );
}

#[test]
fn qos0_goes_out_once_and_is_not_kept() {
    let mut client = connected(V3, at(0));
    assert_eq!(
        client.publish("s/t", b"1", QoS::AtMostOnce, false),
        Ok(None)
    );
    assert_eq!(client.outbox_len(), 1);
    let frames = transmit(&mut client, at(10));
    assert_eq!(frames.len(), 1);
    let Packet::Publish(p) = parse(&frames[0], V3) else {
        panic!("not PUBLISH");
    };
    assert_eq!(
        (p.topic, p.payload, p.qos_pid, p.retain),
        ("s/t", &b"1"[..], QosPid::AtMostOnce, false)
    );
    assert_eq!(client.outbox_len(), 0);
    assert!(transmit(&mut client, at(20)).is_empty());
}

#[test]
fn qos1_is_kept_until_puback() {
    let mut client = connected(V3, at(0));
    let id = client
        .publish("s/t", b"21.5", QoS::AtLeastOnce, true)
        .unwrap()
        .unwrap();
    let frames = transmit(&mut client, at(100));
    let Packet::Publish(p) = parse(&frames[0], V3) else {
        panic!("not PUBLISH");
    };
    assert_eq!(
        (p.qos_pid, p.retain, p.dup),
        (QosPid::AtLeastOnce(id), true, false)
    );
    assert_eq!(client.poll_timeout(), Some(at(100) + TIMEOUT));
    // Not sent twice on the same connection.
    assert!(transmit(&mut client, at(200)).is_empty());
    // A PUBACK for an identifier we do not wait for is ignored.
    assert_eq!(client.handle_packet(puback(id.wrapping_add(7))), Ok(None));
    assert_eq!(client.outbox_len(), 1);
    assert_eq!(
        client.handle_packet(puback(id)),
        Ok(Some(Event::Delivered { packet_id: id }))
    );
    assert_eq!(client.outbox_len(), 0);
    // A duplicate PUBACK changes nothing.
    assert_eq!(client.handle_packet(puback(id)), Ok(None));
}

#[test]
fn lost_puback_means_reconnect_and_resend_with_dup() {
    let mut client = connected(V3, at(0));
    let a = client
        .publish("s/a", b"1", QoS::AtLeastOnce, false)
        .unwrap()
        .unwrap();
    let b = client
        .publish("s/b", b"2", QoS::AtLeastOnce, false)
        .unwrap()
        .unwrap();
    client.publish("s/c", b"3", QoS::AtMostOnce, false).unwrap();
    assert_eq!(transmit(&mut client, at(1_000)).len(), 3);
    client.handle_packet(puback(b)).unwrap();
    // PUBACK of `a` never comes.
    assert_eq!(client.handle_timeout(at(5_999)), Ok(()));
    assert_eq!(
        client.handle_timeout(at(6_000)),
        Err(Error::Timeout(Waiting::PublishAck))
    );
    let delay = client.connection_lost();
    assert!(delay <= Duration::from_millis(100) && delay >= Duration::from_millis(50));
    assert!(!client.is_connected());
    assert_eq!(client.poll_timeout(), None);
    // Published while offline: waits for the connection, not marked DUP.
    let d = client
        .publish("s/d", b"4", QoS::AtLeastOnce, false)
        .unwrap()
        .unwrap();
    let e = client.publish("s/e", b"5", QoS::AtMostOnce, false);
    assert_eq!(e, Ok(None));

    let frames = handshake(&mut client, at(7_000), true);
    let sent: Vec<_> = frames
        .iter()
        .map(|f| match parse(f, V3) {
            Packet::Publish(p) => (p.topic.to_owned(), p.qos_pid, p.dup),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        sent,
        [
            ("s/a".to_owned(), QosPid::AtLeastOnce(a), true),
            ("s/d".to_owned(), QosPid::AtLeastOnce(d), false),
            ("s/e".to_owned(), QosPid::AtMostOnce, false),
        ],
        "the QoS 0 message of the lost connection is gone"
    );
    client.handle_packet(puback(a)).unwrap();
    client.handle_packet(puback(d)).unwrap();
    assert_eq!(client.outbox_len(), 0);
}

#[test]
fn keep_alive_pings_and_detects_a_dead_broker() {
    let mut client = connected(V3, at(0));
    // Quiet for 3/4 of 20 s: PINGREQ.
    assert_eq!(client.poll_timeout(), Some(at(15_000)));
    assert!(transmit(&mut client, at(14_999)).is_empty());
    let frames = transmit(&mut client, at(15_000));
    assert_eq!(frames, [vec![0xc0, 0x00]]);
    assert_eq!(client.poll_timeout(), Some(at(20_000)), "PINGRESP deadline");
    assert!(
        transmit(&mut client, at(16_000)).is_empty(),
        "one PINGREQ at a time"
    );
    assert_eq!(client.handle_packet(Packet::Pingresp), Ok(None));
    assert_eq!(client.poll_timeout(), Some(at(30_000)));
    // Sending anything postpones the next ping.
    client.publish("s/t", b"x", QoS::AtMostOnce, false).unwrap();
    transmit(&mut client, at(20_000));
    assert_eq!(client.poll_timeout(), Some(at(35_000)));
    // No PINGRESP: dead.
    assert_eq!(transmit(&mut client, at(35_000)).len(), 1);
    assert_eq!(client.handle_timeout(at(39_999)), Ok(()));
    assert_eq!(
        client.handle_timeout(at(40_000)),
        Err(Error::Timeout(Waiting::Pingresp))
    );
}

#[test]
fn keep_alive_zero_never_pings() {
    let mut client = TestClient::new({
        let mut c = config(V3);
        c.keep_alive_secs = 0;
        c
    });
    handshake(&mut client, at(0), false);
    assert_eq!(client.poll_timeout(), None);
    assert!(transmit(&mut client, at(10_000_000)).is_empty());
}

#[test]
fn mqtt5_server_keep_alive_and_receive_maximum() {
    let mut client = TestClient::new(config(V5));
    client.connection_opened();
    transmit(&mut client, at(0));
    let props = [Property::ServerKeepAlive(4), Property::ReceiveMaximum(1)];
    let connack = Packet::Connack(Connack {
        session_present: false,
        reason: ReasonCode::Success,
        properties: Properties::new(&props),
    });
    client.handle_packet(connack).unwrap();
    assert_eq!(
        client.poll_timeout(),
        Some(at(3_000)),
        "3/4 of the broker's 4 s"
    );
    let a = client
        .publish("s/a", b"1", QoS::AtLeastOnce, false)
        .unwrap()
        .unwrap();
    client
        .publish("s/b", b"2", QoS::AtLeastOnce, false)
        .unwrap();
    client.publish("s/c", b"3", QoS::AtMostOnce, false).unwrap();
    let topics = |frames: Vec<Vec<u8>>| -> Vec<String> {
        frames
            .iter()
            .map(|f| match parse(f, V5) {
                Packet::Publish(p) => p.topic.to_owned(),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    };
    // One QoS 1 message in flight at a time; QoS 0 is not held back.
    assert_eq!(topics(transmit(&mut client, at(10))), ["s/a", "s/c"]);
    client.handle_packet(puback(a)).unwrap();
    assert_eq!(topics(transmit(&mut client, at(20))), ["s/b"]);
}

#[test]
fn mqtt5_rejected_publish() {
    let mut client = connected(V5, at(0));
    let id = client
        .publish("s/t", b"x", QoS::AtLeastOnce, false)
        .unwrap()
        .unwrap();
    transmit(&mut client, at(0));
    let mut ack = Ack::new(id);
    ack.reason = ReasonCode::NotAuthorized;
    assert_eq!(
        client.handle_packet(Packet::Puback(ack)),
        Ok(Some(Event::Rejected {
            packet_id: id,
            reason: ReasonCode::NotAuthorized
        }))
    );
    assert_eq!(client.outbox_len(), 0);
    // "No matching subscribers" is a success.
    let id = client
        .publish("s/t", b"x", QoS::AtLeastOnce, false)
        .unwrap()
        .unwrap();
    transmit(&mut client, at(0));
    let mut ack = Ack::new(id);
    ack.reason = ReasonCode::NoMatchingSubscribers;
    assert_eq!(
        client.handle_packet(Packet::Puback(ack)),
        Ok(Some(Event::Delivered { packet_id: id }))
    );
}

#[test]
fn outgoing_qos2_flow_survives_a_reconnect() {
    let mut client = connected(V3, at(0));
    let id = client
        .publish("s/q2", b"x", QoS::ExactlyOnce, false)
        .unwrap()
        .unwrap();
    transmit(&mut client, at(0));
    assert_eq!(client.handle_packet(Packet::Pubrec(Ack::new(id))), Ok(None));
    let frames = transmit(&mut client, at(10));
    assert_eq!(parse(&frames[0], V3), Packet::Pubrel(Ack::new(id)));
    assert_eq!(
        client.poll_timeout(),
        Some(at(10) + TIMEOUT),
        "PUBCOMP deadline"
    );
    // The connection drops before PUBCOMP: PUBREL (not the PUBLISH) goes out again.
    client.connection_lost();
    let frames = handshake(&mut client, at(1_000), true);
    assert_eq!(frames.len(), 1);
    assert_eq!(parse(&frames[0], V3), Packet::Pubrel(Ack::new(id)));
    // A PUBACK does not end a QoS 2 flow.
    assert_eq!(client.handle_packet(puback(id)), Ok(None));
    assert_eq!(
        client.handle_packet(Packet::Pubcomp(Ack::new(id))),
        Ok(Some(Event::Delivered { packet_id: id }))
    );
    assert_eq!(client.outbox_len(), 0);
}

fn incoming(qos_pid: QosPid, dup: bool) -> Packet<'static> {
    Packet::Publish(Publish {
        dup,
        qos_pid,
        retain: false,
        topic: "devices/d1/cmd/led",
        properties: Properties::EMPTY,
        payload: b"on",
    })
}

fn message(qos: QoS) -> Option<Event<'static>> {
    Some(Event::Message(Message {
        topic: "devices/d1/cmd/led",
        payload: b"on",
        qos,
        retain: false,
    }))
}

#[test]
fn incoming_messages_are_delivered_and_acknowledged() {
    let mut client = connected(V3, at(0));
    assert_eq!(
        client.handle_packet(incoming(QosPid::AtMostOnce, false)),
        Ok(message(QoS::AtMostOnce))
    );
    assert!(transmit(&mut client, at(0)).is_empty());

    assert_eq!(
        client.handle_packet(incoming(QosPid::AtLeastOnce(9), false)),
        Ok(message(QoS::AtLeastOnce))
    );
    let frames = transmit(&mut client, at(0));
    assert_eq!(parse(&frames[0], V3), Packet::Puback(Ack::new(9)));

    // QoS 2: delivered once, however often the broker sends it before PUBREL.
    assert_eq!(
        client.handle_packet(incoming(QosPid::ExactlyOnce(10), false)),
        Ok(message(QoS::ExactlyOnce))
    );
    assert_eq!(
        client.handle_packet(incoming(QosPid::ExactlyOnce(10), true)),
        Ok(None)
    );
    let frames = transmit(&mut client, at(0));
    assert_eq!(frames.len(), 2);
    assert!(
        frames
            .iter()
            .all(|f| parse(f, V3) == Packet::Pubrec(Ack::new(10)))
    );
    assert_eq!(client.handle_packet(Packet::Pubrel(Ack::new(10))), Ok(None));
    let frames = transmit(&mut client, at(0));
    assert_eq!(parse(&frames[0], V3), Packet::Pubcomp(Ack::new(10)));
    // After PUBREL the identifier is free: a new message with it is delivered.
    assert_eq!(
        client.handle_packet(incoming(QosPid::ExactlyOnce(10), false)),
        Ok(message(QoS::ExactlyOnce))
    );
}

#[test]
fn a_flood_of_unanswered_messages_ends_the_connection() {
    let mut client = connected(V3, at(0));
    // The driver drains replies after every packet; one that does not gets an error
    // instead of an unbounded queue.
    for id in 1..=4 {
        client
            .handle_packet(incoming(QosPid::AtLeastOnce(id), false))
            .unwrap();
    }
    assert_eq!(
        client.handle_packet(incoming(QosPid::AtLeastOnce(5), false)),
        Err(Error::Unexpected(midge_wire::PacketType::Publish))
    );
}

#[test]
fn publish_errors() {
    let mut client = connected(V3, at(0));
    for topic in ["", "a/+", "a/#", "a\0b"] {
        assert_eq!(
            client.publish(topic, b"x", QoS::AtMostOnce, false),
            Err(PublishError::InvalidTopic),
            "{topic:?}"
        );
    }
    // 2 (header) + 2 + 3 (topic) + 2 (id) + 120 = 129 > 128.
    assert_eq!(
        client.publish("s/t", &[0; 120], QoS::AtLeastOnce, false),
        Err(PublishError::TooLarge { needed: 129 })
    );
    for _ in 0..4 {
        client
            .publish("s/t", b"x", QoS::AtLeastOnce, false)
            .unwrap();
    }
    assert_eq!(
        client.publish("s/t", b"x", QoS::AtLeastOnce, false),
        Err(PublishError::OutboxFull)
    );
}

#[test]
fn packet_ids_skip_zero_and_ids_in_use() {
    let mut client = connected(V3, at(0));
    let first = client
        .publish("s/t", b"x", QoS::AtLeastOnce, false)
        .unwrap()
        .unwrap();
    assert_eq!(first, 1);
    transmit(&mut client, at(0));
    // Use up identifiers until the counter wraps; `first` is still in flight.
    for expected in 2..=u16::MAX {
        let id = client
            .publish("s/t", b"x", QoS::AtLeastOnce, false)
            .unwrap()
            .unwrap();
        assert_eq!(id, expected);
        transmit(&mut client, at(0));
        client.handle_packet(puback(id)).unwrap();
    }
    let id = client
        .publish("s/t", b"x", QoS::AtLeastOnce, false)
        .unwrap()
        .unwrap();
    assert_eq!(id, 2, "0 is never used and 1 is still in flight");
}

#[test]
fn backoff_grows_and_resets_after_connack() {
    let mut client = TestClient::new(config(V3));
    let ceilings = [100, 200, 400, 800];
    for ceiling in ceilings {
        client.connection_opened();
        let delay = client.connection_lost().as_millis();
        assert!(
            delay >= ceiling / 2 && delay <= ceiling,
            "{delay} vs {ceiling}"
        );
    }
    handshake(&mut client, at(0), false);
    assert!(client.connection_lost() <= Duration::from_millis(100));
}

#[test]
fn graceful_disconnect() {
    let mut client = connected(V5, at(0));
    let mut buf = [0u8; 16];
    let n = client.disconnect(&mut buf).unwrap();
    assert_eq!(parse(&buf[..n], V5), Packet::Disconnect(Disconnect::NORMAL));
    assert!(!client.is_connected());
}

#[test]
fn mqtt5_broker_maximum_packet_size() {
    let mut client = TestClient::new(config(V5));
    // Queued before the broker's limit is known: 2 + 2 + 3 + 2 + 1 (no properties) + 20.
    client
        .publish("s/a", &[1; 20], QoS::AtLeastOnce, false)
        .unwrap();
    client
        .publish("s/b", b"small", QoS::AtLeastOnce, false)
        .unwrap();
    client.connection_opened();
    transmit(&mut client, at(0));
    let props = [Property::MaximumPacketSize(20)];
    let connack = Packet::Connack(Connack {
        session_present: false,
        reason: ReasonCode::Success,
        properties: Properties::new(&props),
    });
    client.handle_packet(connack).unwrap();
    // The oversized message is dropped rather than sent (the broker would disconnect,
    // after every reconnect); the next one goes out.
    let frames = transmit(&mut client, at(0));
    assert_eq!(frames.len(), 1);
    let Packet::Publish(p) = parse(&frames[0], V5) else {
        panic!("not PUBLISH");
    };
    assert_eq!(p.topic, "s/b");
    assert_eq!(client.dropped(), 1);
    assert_eq!(client.outbox_len(), 1);
    // Now that the limit is known, publish refuses what would exceed it.
    assert_eq!(
        client.publish("s/c", &[1; 20], QoS::AtLeastOnce, false),
        Err(PublishError::TooLarge { needed: 30 })
    );
    assert!(
        client
            .publish("s/c", &[1; 10], QoS::AtLeastOnce, false)
            .is_ok()
    );
}
