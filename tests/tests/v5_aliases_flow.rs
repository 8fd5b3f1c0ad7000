//! MQTT 5 Topic Aliases in both directions, Receive Maximum in both directions and
//! Maximum Packet Size in both directions.
//!
//! Section 3.3.2.3.4 (Topic Alias), 3.1.2.11.3 and 3.2.2.3.3 (Receive Maximum), 4.9 (Flow
//! Control), 3.1.2.11.4 and 3.2.2.3.6 (Maximum Packet Size).

use std::collections::HashMap;

use midge_e2e::rumqtt5::Client5;
use midge_e2e::{Midge, MosquittoSub, RawClient, Received, connect_v5_with, publish_packet};
use midge_wire::{Ack, Packet, Property, QoS, QosPid, ReasonCode};
use rumqttc::v5::mqttbytes::QoS as RQoS;
use rumqttc::v5::mqttbytes::v5::PublishProperties;

/// The Topic Alias Maximum midge announces (`max_topic_alias`, 10 as in Mosquitto).
const OUR_TOPIC_ALIAS_MAXIMUM: u16 = 10;

fn puback_reason(client: &mut RawClient, id: u16) -> ReasonCode {
    client.recv(|p| match p {
        Packet::Puback(ack) if ack.packet_id == id => ack.reason,
        other => panic!("expected PUBACK {id}, got {other:?}"),
    })
}

#[test]
fn client_topic_alias_is_set_with_a_topic_then_used_with_an_empty_one() {
    let midge = Midge::start();
    // A 3.1.1 subscriber: aliases are the publisher's business only.
    let mut sub = RawClient::connected(midge.port(), "ta-sub");
    sub.subscribe("ta/#", QoS::AtLeastOnce);
    let (mut publisher, connack) =
        RawClient::connected_with(midge.port(), midge_e2e::connect_v5("ta-pub"));
    assert_eq!(
        connack.props().topic_alias_maximum(),
        Some(OUR_TOPIC_ALIAS_MAXIMUM)
    );

    // [MQTT-3.3.2-12]: every alias from 1 to our maximum is accepted; a topic with an
    // alias sets the mapping, an empty topic uses it, and a new topic replaces it.
    let steps: [(&str, u16, &str); 6] = [
        ("ta/one", 1, "ta/one"),
        ("", 1, "ta/one"),
        ("ta/two", 1, "ta/two"),
        ("", 1, "ta/two"),
        ("ta/max", OUR_TOPIC_ALIAS_MAXIMUM, "ta/max"),
        ("", OUR_TOPIC_ALIAS_MAXIMUM, "ta/max"),
    ];
    for (i, (topic, alias, _)) in steps.iter().enumerate() {
        let id = i as u16 + 1;
        let props = [Property::TopicAlias(*alias)];
        publisher.send_packet(&publish_packet(
            topic,
            &props,
            QosPid::AtLeastOnce(id),
            format!("{i}").as_bytes(),
        ));
        assert_eq!(
            puback_reason(&mut publisher, id),
            ReasonCode::Success,
            "step {i}"
        );
    }
    for (i, (_, _, expected)) in steps.iter().enumerate() {
        let p = sub.recv_publish();
        assert_eq!(
            (&p.topic[..], p.payload.clone()),
            (*expected, format!("{i}").into_bytes())
        );
    }
}

#[test]
fn topic_alias_mappings_do_not_carry_over_to_a_new_connection() {
    let midge = Midge::start();
    let props = [Property::SessionExpiryInterval(60)];
    let (mut publisher, _) =
        RawClient::connected_with(midge.port(), connect_v5_with("ta-carry", true, &props));
    publisher.send_packet(&publish_packet(
        "ta/carry",
        &[Property::TopicAlias(1)],
        QosPid::AtLeastOnce(1),
        b"set",
    ));
    assert!(!puback_reason(&mut publisher, 1).is_error());
    publisher.disconnect();

    let (mut publisher, connack) =
        RawClient::connected_with(midge.port(), connect_v5_with("ta-carry", false, &props));
    assert!(connack.session_present);
    // [MQTT-3.3.2-7]: aliases belong to a network connection, not to the session; alias 1
    // is unknown again, which is a Protocol Error.
    publisher.send_packet(&publish_packet(
        "",
        &[Property::TopicAlias(1)],
        QosPid::AtLeastOnce(2),
        b"use",
    ));
    publisher.expect_disconnect(ReasonCode::ProtocolError);
}

#[test]
fn unknown_topic_alias_is_a_protocol_error_0x82() {
    let midge = Midge::start();
    let mut sub = RawClient::connected_v5(midge.port(), "ta-unknown-sub");
    sub.subscribe("#", QoS::AtLeastOnce);
    let mut publisher = RawClient::connected_v5(midge.port(), "ta-unknown");
    publisher.send_packet(&publish_packet(
        "ta/known",
        &[Property::TopicAlias(1)],
        QosPid::AtLeastOnce(1),
        b"ok",
    ));
    assert!(!puback_reason(&mut publisher, 1).is_error());
    // 3.3.2.3.4: an empty topic with an alias that has no mapping is a Protocol Error.
    publisher.send_packet(&publish_packet(
        "",
        &[Property::TopicAlias(2)],
        QosPid::AtLeastOnce(2),
        b"lost",
    ));
    publisher.expect_disconnect(ReasonCode::ProtocolError);
    assert_eq!(sub.recv_publish().payload, b"ok");
    sub.sync();
}

#[test]
fn topic_alias_above_our_maximum_disconnects_with_0x94() {
    let midge = Midge::start();
    let mut publisher = RawClient::connected_v5(midge.port(), "ta-above");
    // [MQTT-3.3.2-9], 3.3.2.3.4: above the Topic Alias Maximum of our CONNACK:
    // DISCONNECT with 0x94 (Topic Alias invalid).
    let props = [Property::TopicAlias(OUR_TOPIC_ALIAS_MAXIMUM + 1)];
    publisher.send_packet(&publish_packet(
        "ta/above",
        &props,
        QosPid::AtLeastOnce(1),
        b"x",
    ));
    publisher.expect_disconnect(ReasonCode::TopicAliasInvalid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rumqttc_v5_publisher_topic_aliases_are_accepted() {
    let midge = Midge::start();
    let mut sub = Client5::connect(&midge, "ta-rq-sub").await;
    sub.subscribe("tarq/#", RQoS::AtLeastOnce).await;
    let mut publisher = Client5::connect(&midge, "ta-rq-pub").await;
    // rumqttc refuses to send an alias above the server's Topic Alias Maximum, so this
    // also needs the CONNACK to announce one.
    let alias = || PublishProperties {
        topic_alias: Some(3),
        ..Default::default()
    };
    publisher
        .publish_qos1("tarq/long/topic/name", false, b"first", alias())
        .await;
    publisher.publish_qos1("", false, b"second", alias()).await;
    for payload in [&b"first"[..], b"second"] {
        let p = sub.recv_publish().await;
        assert_eq!(
            (&p.topic[..], &p.payload[..]),
            (&b"tarq/long/topic/name"[..], payload)
        );
    }
}

/// Resolves what a subscriber with Topic Alias Maximum `max` received, checking
/// [MQTT-3.3.2-11] (no alias above `max`) and that an empty topic uses a known alias.
fn resolve(received: &[Received], max: u16) -> Vec<(String, Option<u16>, bool)> {
    let mut aliases: HashMap<u16, String> = HashMap::new();
    received
        .iter()
        .map(|p| {
            let alias = p.props().topic_alias();
            if let Some(a) = alias {
                assert!((1..=max).contains(&a), "alias {a} above {max}: {p:?}");
            }
            let topic = match (&p.topic[..], alias) {
                ("", Some(a)) => aliases
                    .get(&a)
                    .unwrap_or_else(|| panic!("alias {a} used before being set: {p:?}"))
                    .clone(),
                ("", None) => panic!("empty topic without alias: {p:?}"),
                (t, Some(a)) => {
                    aliases.insert(a, t.to_owned());
                    t.to_owned()
                }
                (t, None) => t.to_owned(),
            };
            (topic, alias, p.topic.is_empty())
        })
        .collect()
}

#[test]
fn midge_assigns_topic_aliases_to_a_client_that_allows_them() {
    let midge = Midge::start();
    let (mut sub, _) = RawClient::connected_with(
        midge.port(),
        connect_v5_with("ta-out", true, &[Property::TopicAliasMaximum(2)]),
    );
    sub.subscribe("tout/#", QoS::AtLeastOnce);
    let mut publisher = RawClient::connected_v5(midge.port(), "ta-out-pub");
    let order = [
        "tout/a", "tout/b", "tout/a", "tout/b", "tout/c", "tout/c", "tout/a",
    ];
    for (i, topic) in order.iter().enumerate() {
        publisher.publish(topic, format!("{i}").as_bytes(), QoS::AtLeastOnce, false);
    }
    let received: Vec<Received> = order
        .iter()
        .map(|_| {
            let p = sub.recv_publish();
            sub.acknowledge(&p);
            p
        })
        .collect();
    let resolved = resolve(&received, 2);
    for (i, ((topic, _, _), expected)) in resolved.iter().zip(order).enumerate() {
        assert_eq!(
            (&topic[..], received[i].payload.clone()),
            (expected, format!("{i}").into_bytes())
        );
    }
    // The first two topics fit in the client's two aliases: the first message on each
    // carries the topic and an alias, the next one an empty topic and the same alias.
    let (a, b) = (&resolved[0], &resolved[1]);
    assert!(a.1.is_some() && !a.2, "first tout/a: {:?}", received[0]);
    assert!(b.1.is_some() && !b.2, "first tout/b: {:?}", received[1]);
    assert_ne!(a.1, b.1);
    assert_eq!(
        (resolved[2].1, resolved[2].2),
        (a.1, true),
        "{:?}",
        received[2]
    );
    assert_eq!(
        (resolved[3].1, resolved[3].2),
        (b.1, true),
        "{:?}",
        received[3]
    );
}

#[test]
fn no_topic_aliases_are_sent_to_a_client_that_did_not_allow_them() {
    let midge = Midge::start();
    let mut sub = RawClient::connected_v5(midge.port(), "ta-none");
    sub.subscribe("tnone/#", QoS::AtLeastOnce);
    let mut publisher = RawClient::connected_v5(midge.port(), "ta-none-pub");
    for _ in 0..3 {
        publisher.publish("tnone/t", b"m", QoS::AtLeastOnce, false);
    }
    // [MQTT-3.1.2-27]: no Topic Alias Maximum in CONNECT means no aliases at all.
    for _ in 0..3 {
        let p = sub.recv_publish();
        assert_eq!(p.topic, "tnone/t");
        assert_eq!(p.props().topic_alias(), None, "{p:?}");
        sub.acknowledge(&p);
    }
}

#[test]
fn python_paho_subscriber_receives_aliased_topics() {
    let midge = Midge::start();
    let run = midge.python("server_aliases", &[]);
    let messages = run.all("message");
    let got: Vec<(&str, Option<u64>, &str)> = messages
        .iter()
        .map(|m| {
            (
                m["topic"].as_str().unwrap(),
                m["properties"]["TopicAlias"].as_u64(),
                m["payload"].as_str().unwrap(),
            )
        })
        .collect();
    // paho reports the wire topic: set with the alias first, empty afterwards.
    let (a, b) = (got[0].1, got[1].1);
    assert!(a.is_some_and(|a| (1..=5).contains(&a)), "{got:?}");
    assert!(b.is_some_and(|b| (1..=5).contains(&b)) && a != b, "{got:?}");
    assert_eq!(
        got,
        [
            ("al/a", a, "0"),
            ("al/b", b, "1"),
            ("", a, "2"),
            ("", b, "3"),
            ("", a, "4")
        ]
    );
}

#[test]
fn midge_never_has_more_unacknowledged_qos1_publishes_out_than_the_client_receive_maximum() {
    let midge = Midge::start();
    let (mut sub, _) = RawClient::connected_with(
        midge.port(),
        connect_v5_with("rm-sub", true, &[Property::ReceiveMaximum(3)]),
    );
    sub.subscribe("rm/t", QoS::AtLeastOnce);
    let mut publisher = RawClient::connected_v5(midge.port(), "rm-pub");
    for i in 0..7 {
        publisher.publish("rm/t", format!("{i}").as_bytes(), QoS::AtLeastOnce, false);
    }
    // [MQTT-3.3.4-9]: at most Receive Maximum (3) PUBLISHes awaiting PUBACK.
    let first: Vec<Received> = (0..3).map(|_| sub.recv_publish()).collect();
    sub.sync();
    // Each PUBACK lets exactly one more through.
    sub.send_packet(&Packet::Puback(Ack::new(first[0].packet_id.unwrap())));
    let fourth = sub.recv_publish();
    assert_eq!(fourth.payload, b"3");
    sub.sync();
    for p in first[1..].iter().chain([&fourth]) {
        sub.send_packet(&Packet::Puback(Ack::new(p.packet_id.unwrap())));
    }
    let rest: Vec<Received> = (0..3).map(|_| sub.recv_publish()).collect();
    let payloads: Vec<&[u8]> = rest.iter().map(|p| &p.payload[..]).collect();
    assert_eq!(payloads, [b"4", b"5", b"6"]);
    sub.sync();
}

#[test]
fn qos2_publish_counts_against_the_client_receive_maximum_until_pubcomp() {
    let midge = Midge::start();
    let (mut sub, _) = RawClient::connected_with(
        midge.port(),
        connect_v5_with("rm2-sub", true, &[Property::ReceiveMaximum(1)]),
    );
    sub.subscribe("rm2/t", QoS::ExactlyOnce);
    let mut publisher = RawClient::connected_v5(midge.port(), "rm2-pub");
    publisher.publish("rm2/t", b"one", QoS::ExactlyOnce, false);
    publisher.publish("rm2/t", b"two", QoS::ExactlyOnce, false);

    let one = sub.recv_publish();
    assert_eq!(one.payload, b"one");
    let id = one.packet_id.unwrap();
    sub.send_packet(&Packet::Pubrec(Ack::new(id)));
    assert_eq!(
        sub.recv_frame(),
        Some(midge_e2e::ack_frame(0x62, id)),
        "PUBREL"
    );
    // [MQTT-3.3.4-9]: a QoS 2 PUBLISH is unacknowledged until PUBCOMP.
    sub.sync();
    sub.send_packet(&Packet::Pubcomp(Ack::new(id)));
    assert_eq!(sub.recv_publish().payload, b"two");
}

#[test]
fn client_exceeding_our_receive_maximum_with_unreleased_qos2_is_disconnected_with_0x93() {
    let midge = Midge::start();
    let (mut publisher, connack) =
        RawClient::connected_with(midge.port(), midge_e2e::connect_v5("rm-flood"));
    // 3.2.2.3.3: midge says how many QoS 1 and 2 PUBLISHes it accepts unacknowledged.
    let max = connack
        .props()
        .receive_maximum()
        .expect("CONNACK without Receive Maximum");
    for id in 1..=max {
        publisher.send_packet(&publish_packet(
            "rm/flood",
            &[],
            QosPid::ExactlyOnce(id),
            b"x",
        ));
        let pubrec = publisher.recv(|p| match p {
            Packet::Pubrec(ack) => (ack.packet_id, ack.reason),
            other => panic!("expected PUBREC, got {other:?}"),
        });
        assert_eq!(pubrec.0, id);
        assert!(!pubrec.1.is_error(), "PUBREC {id}: {:?}", pubrec.1);
    }
    publisher.sync(); // exactly Receive Maximum unreleased: still fine
    // [MQTT-3.3.4-7], 4.9: one more before any PUBREL: DISCONNECT with 0x93.
    publisher.send_packet(&publish_packet(
        "rm/flood",
        &[],
        QosPid::ExactlyOnce(max + 1),
        b"x",
    ));
    publisher.expect_disconnect(ReasonCode::ReceiveMaximumExceeded);
}

#[test]
fn message_larger_than_the_client_maximum_packet_size_is_dropped_not_sent() {
    let midge = Midge::start();
    // Receive Maximum 1 too: a dropped QoS 1 message must not hold the only slot.
    let props = [Property::MaximumPacketSize(64), Property::ReceiveMaximum(1)];
    let (mut sub, _) =
        RawClient::connected_with(midge.port(), connect_v5_with("mps-sub", true, &props));
    sub.subscribe("mps/#", QoS::AtLeastOnce);
    let mut publisher = RawClient::connected_v5(midge.port(), "mps-pub");
    publisher.publish("mps/big", &[b'x'; 100], QoS::AtLeastOnce, false);
    publisher.publish("mps/small", b"fits", QoS::AtLeastOnce, false);
    // [MQTT-3.1.2-24]: never sent; [MQTT-3.1.2-25]: discarded as if it had been sent.
    let p = sub.recv_publish();
    assert_eq!((&p.topic[..], &p.payload[..]), ("mps/small", &b"fits"[..]));
    sub.acknowledge(&p);
    sub.sync();
}

#[test]
fn mosquitto_sub_with_a_maximum_packet_size_gets_only_the_messages_that_fit() {
    let midge = Midge::start();
    let sub = MosquittoSub::start(
        &midge,
        "mps-mosq",
        "mpsq/#",
        &[
            "-V",
            "5",
            "-q",
            "1",
            "-C",
            "1",
            "-F",
            "%t %p",
            "-D",
            "connect",
            "maximum-packet-size",
            "100",
            "-t",
            "mpsq/#",
        ],
    );
    let big = "y".repeat(200);
    midge.mosquitto_pub_ok(&["-V", "5", "-q", "1", "-t", "mpsq/big", "-m", &big]);
    midge.mosquitto_pub_ok(&["-V", "5", "-q", "1", "-t", "mpsq/small", "-m", "fits"]);
    // [MQTT-3.1.2-24]: the 200-byte message is never sent to it.
    assert_eq!(sub.text(), "mpsq/small fits\n");
}

#[test]
fn packet_larger_than_our_maximum_packet_size_is_refused_with_0x95() {
    let midge = Midge::start_with_config("max_packet_size 1024\n");
    let (mut client, connack) =
        RawClient::connected_with(midge.port(), midge_e2e::connect_v5("mps-big"));
    // 3.2.2.3.6: the limit is announced...
    assert_eq!(connack.props().maximum_packet_size(), Some(1024));
    // ...a packet of exactly that size is fine...
    let fits = vec![b'f'; 1010];
    let size = publish_packet("mps/in", &[], QosPid::AtLeastOnce(1), &fits)
        .encoded_len(midge_wire::ProtocolVersion::V5)
        .unwrap();
    assert_eq!(size, 1024);
    let reply = client.publish_with("mps/in", &fits, QoS::AtLeastOnce, false, &[]);
    assert!(!reply.reason.is_error(), "{reply:?}");
    // ...one byte more is a DISCONNECT with 0x95 (Packet too large).
    let too_big = vec![b'f'; 1011];
    client.send_packet(&publish_packet(
        "mps/in",
        &[],
        QosPid::AtLeastOnce(2),
        &too_big,
    ));
    client.expect_disconnect(ReasonCode::PacketTooLarge);
}
