//! MQTT 3.1.1 and 5.0 clients on one broker: each gets the other's messages in its own
//! protocol, a 3.1.1 subscriber with 3.1.1's retain rules and no properties.
//!
//! MQTT 5.0 section 3.3 (PUBLISH); MQTT 3.1.1 section 3.3.1.3 (RETAIN).

use midge_e2e::{Midge, MosquittoSub, RawClient};
use midge_wire::{Property, QoS, SubscriptionOptions};

/// Properties a v5 publisher sets, including a Topic Alias for its own connection.
const V5_PROPERTIES: [Property<'static>; 5] = [
    Property::MessageExpiryInterval(300),
    Property::ContentType("text/plain"),
    Property::UserProperty("k", "v"),
    Property::CorrelationData(b"c"),
    Property::TopicAlias(1),
];

#[test]
fn v311_subscriber_receives_a_v5_message_as_plain_3_1_1() {
    let midge = Midge::start();
    let mut old = RawClient::connected(midge.port(), "mix-old");
    old.subscribe("mix/t", QoS::AtLeastOnce);
    let mut publisher = RawClient::connected_v5(midge.port(), "mix-v5-pub");
    publisher.publish_with("mix/t", b"from v5", QoS::AtLeastOnce, true, &V5_PROPERTIES);
    // Then the alias alone, with an empty topic.
    publisher.publish_with(
        "",
        b"by alias",
        QoS::AtLeastOnce,
        false,
        &[Property::TopicAlias(1)],
    );

    // A 3.1.1 PUBLISH has no properties: the exact bytes are the topic, the packet id
    // and the payload. And 3.1.1's [MQTT-3.3.1-9]: RETAIN 0 on a live message.
    for payload in [&b"from v5"[..], b"by alias"] {
        let frame = old.recv_frame().expect("PUBLISH");
        let id = [frame[9], frame[10]];
        let mut expected = vec![0x32, (2 + 5 + 2 + payload.len()) as u8, 0, 5];
        expected.extend_from_slice(b"mix/t");
        expected.extend_from_slice(&id);
        expected.extend_from_slice(payload);
        assert_eq!(frame, expected, "{:?}", String::from_utf8_lossy(&frame));
        old.send(&midge_e2e::ack_frame(0x40, u16::from_be_bytes(id)));
    }

    // On subscribing, the retained copy comes with RETAIN 1 [MQTT-3.3.1-8 (3.1.1)].
    let mut late = RawClient::connected(midge.port(), "mix-old-late");
    late.subscribe("mix/#", QoS::AtMostOnce);
    let p = late.recv_publish();
    assert_eq!(
        (&p.topic[..], &p.payload[..], p.retain),
        ("mix/t", &b"from v5"[..], true)
    );
    assert!(p.properties.is_empty());
}

#[test]
fn v5_subscriber_receives_a_v311_message_without_properties() {
    let midge = Midge::start();
    let mut new = RawClient::connected_v5(midge.port(), "mix-new");
    new.subscribe("mix5/t", QoS::AtLeastOnce);
    let mut kept = RawClient::connected_v5(midge.port(), "mix-new-rap");
    let rap = SubscriptionOptions {
        retain_as_published: true,
        ..SubscriptionOptions::new(QoS::AtLeastOnce)
    };
    kept.subscribe_with("mix5/t", rap, &[]);
    let mut old = RawClient::connected(midge.port(), "mix-old-pub");
    old.publish("mix5/t", b"from 3.1.1", QoS::AtLeastOnce, true);

    // No properties were published, none are invented (no expiry, no alias).
    let p = new.recv_publish();
    assert_eq!((&p.payload[..], p.retain), (&b"from 3.1.1"[..], false));
    assert!(p.properties.is_empty(), "{:?}", p.properties);
    // MQTT 5 subscription options apply to 3.1.1 publishers' messages too.
    let p = kept.recv_publish();
    assert_eq!((&p.payload[..], p.retain), (&b"from 3.1.1"[..], true));
}

#[test]
fn mosquitto_v311_and_v5_clients_get_each_others_messages() {
    let midge = Midge::start();
    let format = ["-F", "%t %p|%P|%r"];
    let v5 = MosquittoSub::start(
        &midge,
        "mix-sub-v5",
        "mixm/#",
        &[
            &format[..],
            &["-V", "5", "-q", "1", "-C", "1", "-t", "mixm/#"],
        ]
        .concat(),
    );
    let v311 = MosquittoSub::start(
        &midge,
        "mix-sub-v311",
        "mixm5/#",
        &[
            &format[..],
            &["-V", "mqttv311", "-q", "1", "-C", "1", "-t", "mixm5/#"],
        ]
        .concat(),
    );
    midge.mosquitto_pub_ok(&["-V", "mqttv311", "-q", "1", "-t", "mixm/old", "-m", "old"]);
    midge.mosquitto_pub_ok(&[
        "-V",
        "5",
        "-q",
        "1",
        "-r",
        "-t",
        "mixm5/new",
        "-m",
        "new",
        "-D",
        "publish",
        "user-property",
        "k",
        "v",
    ]);
    assert_eq!(v5.text(), "mixm/old old||0\n");
    // The 3.1.1 client sees no user property, and RETAIN 0 on a live message.
    assert_eq!(v311.text(), "mixm5/new new||0\n");
}
