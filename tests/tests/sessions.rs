//! Exact packets over a raw socket: QoS 2 flows in both directions, in-flight messages
//! resent after a reconnect, the in-flight window, keep-alive, client ids and takeover.

use std::time::{Duration, Instant};

use midge_e2e::{Midge, RawClient, Received, ack_frame, connect_packet};
use midge_wire::{Ack, Connect, Packet, Properties, ProtocolVersion, Publish, QoS, QosPid, Will};

/// A QoS 2 PUBLISH with packet id `id`.
fn qos2_publish<'a>(topic: &'a str, payload: &'a [u8], id: u16, dup: bool) -> Packet<'a> {
    Packet::Publish(Publish {
        dup,
        qos_pid: QosPid::ExactlyOnce(id),
        retain: false,
        topic,
        properties: Properties::EMPTY,
        payload,
    })
}

fn payload_and_qos(p: &Received) -> (&[u8], QoS) {
    (&p.payload, p.qos)
}

#[test]
fn qos2_publish_resent_before_pubrel_is_delivered_once() {
    let midge = Midge::start();
    let mut sub = RawClient::connected(midge.port(), "eo-sub");
    sub.subscribe("eo/t", QoS::ExactlyOnce);
    let mut publisher = RawClient::connected(midge.port(), "eo-pub");

    publisher.send_packet(&qos2_publish("eo/t", b"once", 10, false));
    assert_eq!(publisher.recv_frame(), Some(ack_frame(0x50, 10)), "PUBREC");
    // The PUBREC "was lost": the client resends with DUP 1 [MQTT-3.3.1-1]...
    publisher.send_packet(&qos2_publish("eo/t", b"once", 10, true));
    assert_eq!(
        publisher.recv_frame(),
        Some(ack_frame(0x50, 10)),
        "PUBREC again"
    );
    // ...then releases it.
    publisher.send_packet(&Packet::Pubrel(Ack::new(10)));
    assert_eq!(publisher.recv_frame(), Some(ack_frame(0x70, 10)), "PUBCOMP");

    let p = sub.recv_publish();
    assert_eq!(payload_and_qos(&p), (&b"once"[..], QoS::ExactlyOnce));
    assert!(!p.dup);
    let id = p.packet_id.unwrap();
    sub.send_packet(&Packet::Pubrec(Ack::new(id)));
    assert_eq!(sub.recv_frame(), Some(ack_frame(0x62, id)), "PUBREL");
    sub.send_packet(&Packet::Pubcomp(Ack::new(id)));
    sub.sync();

    // Once released (PUBREL, PUBCOMP above), id 10 is free: the same id is a new message.
    publisher.send_packet(&qos2_publish("eo/t", b"again", 10, false));
    assert_eq!(publisher.recv_frame(), Some(ack_frame(0x50, 10)), "PUBREC");
    assert_eq!(sub.recv_publish().payload, b"again");
}

#[test]
fn outgoing_qos2_flow_is_publish_pubrec_pubrel_pubcomp() {
    let midge = Midge::start();
    let mut sub = RawClient::connected(midge.port(), "out2-sub");
    sub.subscribe("out2/#", QoS::ExactlyOnce);
    let mut publisher = RawClient::connected(midge.port(), "out2-pub");
    publisher.publish("out2/t", b"payload", QoS::ExactlyOnce, false);

    let frame = sub.recv_frame().unwrap();
    // 0x34: PUBLISH, QoS 2, DUP 0, RETAIN 0; topic "out2/t"; packet id; payload.
    assert_eq!(frame[0], 0x34, "{frame:02x?}");
    assert_eq!(&frame[2..10], b"\x00\x06out2/t");
    let id = u16::from_be_bytes([frame[10], frame[11]]);
    assert_ne!(id, 0);
    assert_eq!(&frame[12..], b"payload");

    sub.send_packet(&Packet::Pubrec(Ack::new(id)));
    assert_eq!(sub.recv_frame(), Some(ack_frame(0x62, id)), "PUBREL");
    sub.send_packet(&Packet::Pubcomp(Ack::new(id)));
    // Nothing more for this message: no PUBREL or PUBLISH resent.
    sub.sync();
    publisher.publish("out2/t", b"next", QoS::AtMostOnce, false);
    let next = sub.recv_publish();
    assert_eq!(payload_and_qos(&next), (&b"next"[..], QoS::AtMostOnce));
}

#[test]
fn unacknowledged_qos1_publish_is_resent_with_dup_after_reconnect() {
    let midge = Midge::start();
    let (mut sub, present) = RawClient::persistent(midge.port(), "resend1");
    assert!(!present);
    sub.subscribe("rs1/t", QoS::AtLeastOnce);
    let mut publisher = RawClient::connected(midge.port(), "resend1-pub");
    publisher.publish("rs1/t", b"m", QoS::AtLeastOnce, false);

    let first = sub.recv_publish();
    assert!(!first.dup);
    assert_eq!(first.qos, QoS::AtLeastOnce);
    sub.drop_connection(); // no PUBACK
    assert!(midge.wait_for_log("Client resend1 closed its connection."));

    let (mut sub, present) = RawClient::persistent(midge.port(), "resend1");
    assert!(present);
    let again = sub.recv_publish();
    // [MQTT-4.4.0-1]: resent with DUP 1 and the same packet id.
    assert_eq!(
        again,
        Received {
            dup: true,
            ..first.clone()
        }
    );
    sub.send_packet(&Packet::Puback(Ack::new(first.packet_id.unwrap())));
    sub.sync();

    // Acknowledged now: a further reconnect resends nothing.
    sub.drop_connection();
    assert!(midge.wait_for_log_count("Client resend1 closed its connection.", 2));
    let (mut sub, present) = RawClient::persistent(midge.port(), "resend1");
    assert!(present);
    sub.sync();
}

#[test]
fn pubrel_is_resent_after_reconnect_when_pubcomp_was_missing() {
    let midge = Midge::start();
    let (mut sub, _) = RawClient::persistent(midge.port(), "resend2");
    sub.subscribe("rs2/t", QoS::ExactlyOnce);
    let mut publisher = RawClient::connected(midge.port(), "resend2-pub");
    publisher.publish("rs2/t", b"m", QoS::ExactlyOnce, false);

    let p = sub.recv_publish();
    let id = p.packet_id.unwrap();
    sub.send_packet(&Packet::Pubrec(Ack::new(id)));
    assert_eq!(sub.recv_frame(), Some(ack_frame(0x62, id)), "PUBREL");
    sub.drop_connection(); // no PUBCOMP
    assert!(midge.wait_for_log("Client resend2 closed its connection."));

    let (mut sub, present) = RawClient::persistent(midge.port(), "resend2");
    assert!(present);
    // [MQTT-4.4.0-1]: the PUBREL is resent, not the PUBLISH.
    assert_eq!(sub.recv_frame(), Some(ack_frame(0x62, id)), "PUBREL resent");
    sub.send_packet(&Packet::Pubcomp(Ack::new(id)));
    sub.sync();
    publisher.publish("rs2/t", b"next", QoS::ExactlyOnce, false);
    assert_eq!(sub.recv_publish().payload, b"next");
}

#[test]
fn inflight_window_holds_twenty_unacknowledged_qos1_messages() {
    let midge = Midge::start();
    let mut sub = RawClient::connected(midge.port(), "window-sub");
    sub.subscribe("win/t", QoS::AtLeastOnce);
    let mut publisher = RawClient::connected(midge.port(), "window-pub");
    for i in 0..25 {
        publisher.publish("win/t", format!("{i}").as_bytes(), QoS::AtLeastOnce, false);
    }

    // max_inflight_messages defaults to 20, as in Mosquitto.
    let first: Vec<Received> = (0..20).map(|_| sub.recv_publish()).collect();
    for (i, p) in first.iter().enumerate() {
        assert_eq!(p.payload, format!("{i}").as_bytes());
    }
    sub.sync();

    sub.send_packet(&Packet::Puback(Ack::new(first[0].packet_id.unwrap())));
    assert_eq!(sub.recv_publish().payload, b"20");
    sub.sync();

    // Acknowledging the rest lets the last four through.
    for p in &first[1..] {
        sub.send_packet(&Packet::Puback(Ack::new(p.packet_id.unwrap())));
    }
    for i in 21..25 {
        assert_eq!(sub.recv_publish().payload, format!("{i}").as_bytes());
    }
    sub.sync();
}

#[test]
fn silent_client_is_disconnected_after_one_and_a_half_keep_alives_and_its_will_published() {
    let midge = Midge::start();
    let mut watcher = RawClient::connected(midge.port(), "ka-watch");
    watcher.subscribe("ka/will", QoS::AtLeastOnce);

    let connect = Connect {
        keep_alive: 1,
        will: Some(Will {
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Properties::EMPTY,
            topic: "ka/will",
            payload: b"timed out",
        }),
        ..connect_packet("ka-silent")
    };
    let (mut silent, connack) = RawClient::handshake(midge.port(), connect);
    let connected = Instant::now();
    assert_eq!(connack, [0x20, 2, 0, 0]);
    assert!(silent.is_closed_by_broker());
    let after = connected.elapsed();
    // [MQTT-3.1.2-24]: closed after one and a half times the keep-alive, not before.
    assert!(
        after >= Duration::from_millis(1400),
        "closed after {after:?}"
    );
    assert!(after <= Duration::from_secs(4), "closed after {after:?}");

    let will = watcher.recv_publish();
    assert_eq!(
        (&will.topic[..], &will.payload[..]),
        ("ka/will", &b"timed out"[..])
    );
}

#[test]
fn pings_keep_a_connection_with_a_short_keep_alive_open() {
    let midge = Midge::start();
    let connect = Connect {
        keep_alive: 1,
        ..connect_packet("ka-pinger")
    };
    let (mut client, connack) = RawClient::handshake(midge.port(), connect);
    assert_eq!(connack, [0x20, 2, 0, 0]);
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(2500) {
        client.send(&[0xc0, 0]);
        assert_eq!(client.recv_frame(), Some(vec![0xd0, 0]), "PINGRESP");
        // Pings every 800 ms: each within the 1.5 s allowance of the last.
        std::thread::sleep(Duration::from_millis(800));
    }
    client.sync();
}

#[test]
fn empty_client_id_is_accepted_with_clean_session() {
    let midge = Midge::start();
    // [MQTT-3.1.3-6]: the server assigns an id.
    let mut client = RawClient::connected(midge.port(), "");
    client.subscribe("anon/t", QoS::AtLeastOnce);
    client.publish("anon/t", b"hi", QoS::AtLeastOnce, false);
    assert_eq!(client.recv_publish().payload, b"hi");
}

#[test]
fn empty_client_id_without_clean_session_is_refused() {
    let midge = Midge::start();
    let connect = Connect {
        clean_start: false,
        ..connect_packet("")
    };
    let (mut client, connack) = RawClient::handshake(midge.port(), connect);
    // [MQTT-3.1.3-8]: CONNACK return code 2 (identifier rejected), then close.
    assert_eq!(connack, [0x20, 2, 0, 2]);
    assert!(client.is_closed_by_broker());
}

#[test]
fn takeover_of_a_persistent_session_closes_the_old_connection_and_keeps_the_session() {
    let midge = Midge::start();
    let (mut first, _) = RawClient::persistent(midge.port(), "take");
    first.subscribe("take/t", QoS::AtLeastOnce);
    let (mut second, present) = RawClient::persistent(midge.port(), "take");
    assert!(present);
    // [MQTT-3.1.4-2]: the existing connection is closed.
    assert!(first.is_closed_by_broker());
    let mut publisher = RawClient::connected(midge.port(), "take-pub");
    publisher.publish("take/t", b"to the new one", QoS::AtLeastOnce, false);
    assert_eq!(second.recv_publish().payload, b"to the new one");
}

#[test]
fn mqtt_3_1_client_with_empty_id_is_refused() {
    let midge = Midge::start();
    let connect = Connect {
        version: ProtocolVersion::V3_1,
        ..connect_packet("")
    };
    let (mut client, connack) = RawClient::handshake(midge.port(), connect);
    // MQTT 3.1 requires 1 to 23 characters: return code 2, as Mosquitto answers.
    assert_eq!(connack, [0x20, 2, 0, 2]);
    assert!(client.is_closed_by_broker());
}

#[test]
fn mqtt_3_1_session_is_resumed_with_connack_flags_zero() {
    let midge = Midge::start();
    let connect = Connect {
        version: ProtocolVersion::V3_1,
        clean_start: false,
        ..connect_packet("old-device")
    };
    let (mut device, connack) = RawClient::handshake(midge.port(), connect);
    assert_eq!(connack, [0x20, 2, 0, 0]);
    device.subscribe("old/t", QoS::AtLeastOnce);
    device.drop_connection();
    assert!(midge.wait_for_log("Client old-device closed its connection."));

    let mut publisher = RawClient::connected(midge.port(), "old-pub");
    publisher.publish("old/t", b"queued", QoS::AtLeastOnce, false);
    let (mut device, connack) = RawClient::handshake(midge.port(), connect);
    // 3.1 has no session present flag: the byte is reserved and 0 (Mosquitto sets the
    // flag for 3.1.1 and 5 only).
    assert_eq!(connack, [0x20, 2, 0, 0], "CONNACK to a 3.1 client");
    assert_eq!(device.recv_publish().payload, b"queued");
}
