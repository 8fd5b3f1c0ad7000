//! MQTT 5 application messages: properties passed through unchanged (User Properties in
//! order, Content Type, Payload Format Indicator, Response Topic, Correlation Data),
//! Message Expiry Interval on queued and retained messages, invalid UTF-8 payloads, and
//! request/response.
//!
//! Section 3.3.2.3 (PUBLISH properties), 4.10 (Request / Response).

use std::time::{Duration, Instant};

use midge_e2e::rumqtt5::Client5;
use midge_e2e::{Midge, MosquittoSub, RawClient, connect_v5_with};
use midge_wire::{Packet, Property, Publish, QoS, QosPid, ReasonCode};
use rumqttc::v5::mqttbytes::QoS as RQoS;
use rumqttc::v5::mqttbytes::v5::{PubAckReason, PublishProperties};
use serde_json::json;

/// A payload that is not UTF-8 (0xff never occurs in UTF-8).
const NOT_UTF8: &[u8] = b"\xff\xfe bytes";

/// Every application property, User Properties with a repeated name, in this order.
const APPLICATION_PROPERTIES: [Property<'static>; 7] = [
    Property::PayloadFormatIndicator(true),
    Property::ContentType("application/json"),
    Property::ResponseTopic("m5/reply"),
    Property::CorrelationData(b"\x00\x01corr"),
    Property::UserProperty("z", "1"),
    Property::UserProperty("a", "2"),
    Property::UserProperty("z", "0"),
];

#[test]
fn application_properties_are_forwarded_unchanged_with_user_properties_in_order() {
    let midge = Midge::start();
    let mut sub = RawClient::connected_v5(midge.port(), "m5-pt-sub");
    sub.subscribe("m5pt/#", QoS::AtLeastOnce);
    let mut publisher = RawClient::connected_v5(midge.port(), "m5-pt-pub");
    let reply = publisher.publish_with(
        "m5pt/reading",
        br#"{"t": 21.5}"#,
        QoS::AtLeastOnce,
        false,
        &APPLICATION_PROPERTIES,
    );
    assert_eq!(reply.reason, ReasonCode::Success);

    let p = sub.recv_publish();
    assert_eq!(p.payload, br#"{"t": 21.5}"#);
    let props = p.props();
    // [MQTT-3.3.2-4] Payload Format Indicator, [MQTT-3.3.2-20] Content Type,
    // [MQTT-3.3.2-15] Response Topic, [MQTT-3.3.2-16] Correlation Data: unaltered.
    assert_eq!(props.payload_format_indicator(), Some(true));
    assert_eq!(props.content_type(), Some("application/json"));
    assert_eq!(props.response_topic(), Some("m5/reply"));
    assert_eq!(props.correlation_data(), Some(&b"\x00\x01corr"[..]));
    // [MQTT-3.3.2-17], [MQTT-3.3.2-18]: every User Property, in the order published.
    assert_eq!(
        props.user_properties().collect::<Vec<_>>(),
        [("z", "1"), ("a", "2"), ("z", "0")]
    );
    // Nothing added: no expiry (none was set), no alias (none allowed), no identifier.
    assert_eq!(p.properties.to_vec().len(), 7, "{:?}", p.properties);
}

#[test]
fn python_paho_receives_application_properties_as_published() {
    let midge = Midge::start();
    let run = midge.python("passthrough", &[]);
    assert_eq!(run.one("puback")["reason"], 0);
    let m = run.one("message");
    assert_eq!(m["topic"], "pt/reading");
    assert_eq!(m["payload"], r#"{"t": 21.5}"#);
    // [MQTT-3.3.2-4], -15, -16, -17, -18, -20: as published, User Properties in order.
    assert_eq!(
        m["properties"],
        json!({
            "PayloadFormatIndicator": 1,
            "ContentType": "application/json",
            "ResponseTopic": "pt/reply",
            "CorrelationData": "0001636f7272",
            "UserProperty": [["z", "1"], ["a", "2"], ["z", "0"]],
        })
    );
}

#[test]
fn mosquitto_clients_exchange_user_properties_content_type_and_expiry() {
    let midge = Midge::start();
    let sub = MosquittoSub::start(
        &midge,
        "m5-mosq-sub",
        "m5mosq/#",
        &[
            "-V",
            "5",
            "-q",
            "1",
            "-C",
            "1",
            "-F",
            "%P|%E|%C|%F|%t|%p",
            "-t",
            "m5mosq/#",
        ],
    );
    midge.mosquitto_pub_ok(&[
        "-V",
        "5",
        "-q",
        "1",
        "-t",
        "m5mosq/t",
        "-m",
        "hello",
        "-D",
        "publish",
        "user-property",
        "k",
        "v",
        "-D",
        "publish",
        "user-property",
        "a",
        "b",
        "-D",
        "publish",
        "message-expiry-interval",
        "5",
        "-D",
        "publish",
        "content-type",
        "text/plain",
        "-D",
        "publish",
        "payload-format-indicator",
        "1",
    ]);
    let text = sub.text();
    let fields: Vec<&str> = text.trim_end().split('|').collect();
    assert_eq!(fields.len(), 6, "{text:?}");
    assert_eq!(fields[0], "k:v a:b", "user properties, in order");
    // [MQTT-3.3.2-6]: what is left of the 5 s, delivered at once.
    let expiry: u32 = fields[1]
        .parse()
        .unwrap_or_else(|_| panic!("%E in {text:?}"));
    assert!(
        (4..=5).contains(&expiry),
        "message expiry interval {expiry}"
    );
    assert_eq!(&fields[2..], ["text/plain", "1", "m5mosq/t", "hello"]);
}

#[test]
fn live_delivery_carries_the_message_expiry_interval_and_none_when_none_was_set() {
    let midge = Midge::start();
    let mut sub = RawClient::connected_v5(midge.port(), "m5-live-sub");
    sub.subscribe("m5live/#", QoS::AtLeastOnce);
    let mut publisher = RawClient::connected_v5(midge.port(), "m5-live-pub");
    publisher.publish_with(
        "m5live/e",
        b"expires",
        QoS::AtLeastOnce,
        false,
        &[Property::MessageExpiryInterval(30)],
    );
    publisher.publish("m5live/n", b"does not", QoS::AtLeastOnce, false);
    // [MQTT-3.3.2-6]: the received value minus the time spent in the server.
    let e = sub.recv_publish();
    let left = e.props().message_expiry_interval();
    assert!(matches!(left, Some(29 | 30)), "{:?}", e.properties);
    let n = sub.recv_publish();
    assert_eq!(
        n.props().message_expiry_interval(),
        None,
        "{:?}",
        n.properties
    );
}

#[test]
fn expired_queued_message_is_never_delivered_and_the_others_carry_what_is_left() {
    let midge = Midge::start();
    let (mut sub, _) = RawClient::connected_with(
        midge.port(),
        connect_v5_with("m5-q-sub", true, &[Property::SessionExpiryInterval(60)]),
    );
    sub.subscribe("m5q/#", QoS::AtLeastOnce);
    sub.disconnect();

    let mut publisher = RawClient::connected_v5(midge.port(), "m5-q-pub");
    let published = Instant::now();
    for (topic, expiry) in [
        ("m5q/short", Some(1)),
        ("m5q/long", Some(60)),
        ("m5q/none", None),
    ] {
        let props: Vec<Property> = expiry
            .map(Property::MessageExpiryInterval)
            .into_iter()
            .collect();
        publisher.publish_with(topic, topic.as_bytes(), QoS::AtLeastOnce, false, &props);
    }
    // The 1 s message expires while its subscriber is away.
    std::thread::sleep(Duration::from_millis(1300).saturating_sub(published.elapsed()));

    let (mut sub, connack) = RawClient::connected_with(
        midge.port(),
        connect_v5_with("m5-q-sub", false, &[Property::SessionExpiryInterval(60)]),
    );
    assert!(connack.session_present);
    // [MQTT-3.3.2-5]: the expired message is deleted, not delivered.
    let long = sub.recv_publish();
    assert_eq!(long.topic, "m5q/long");
    // [MQTT-3.3.2-6]: 60 s less the 1.3 s it waited.
    let left = long.props().message_expiry_interval();
    assert!(matches!(left, Some(58 | 59)), "{:?}", long.properties);
    sub.acknowledge(&long);
    let none = sub.recv_publish();
    assert_eq!(none.topic, "m5q/none");
    assert_eq!(none.props().message_expiry_interval(), None);
    sub.acknowledge(&none);
    sub.sync();
}

#[test]
fn python_paho_queued_messages_expire_and_carry_the_remaining_interval() {
    let midge = Midge::start();
    let run = midge.python("expiry", &[]);
    assert_eq!(run.one("connack")["session_present"], true);
    let messages = run.all("message");
    let topics: Vec<&str> = messages
        .iter()
        .map(|m| m["topic"].as_str().unwrap())
        .collect();
    // [MQTT-3.3.2-5]: ex/short (1 s) expired during the 2.2 s away.
    assert_eq!(topics, ["ex/long", "ex/none", "ex/end"]);
    // [MQTT-3.3.2-6]: 10 s less about 2.2 s.
    let left = messages[0]["properties"]["MessageExpiryInterval"].as_u64();
    assert!(matches!(left, Some(7 | 8)), "{}", messages[0]);
    assert_eq!(messages[1]["properties"], json!({}));
}

#[test]
fn retained_message_expires_and_is_sent_with_what_is_left_of_its_interval() {
    let midge = Midge::start();
    let mut publisher = RawClient::connected_v5(midge.port(), "m5-ret-pub");
    let published = Instant::now();
    publisher.publish_with(
        "m5ret/short",
        b"short",
        QoS::AtLeastOnce,
        true,
        &[Property::MessageExpiryInterval(1)],
    );
    publisher.publish_with(
        "m5ret/long",
        b"long",
        QoS::AtLeastOnce,
        true,
        &[Property::MessageExpiryInterval(60)],
    );
    publisher.publish("m5ret/none", b"none", QoS::AtLeastOnce, true);

    let mut early = RawClient::connected_v5(midge.port(), "m5-ret-early");
    early.subscribe("m5ret/short", QoS::AtLeastOnce);
    let p = early.recv_publish();
    assert!(p.retain);
    assert_eq!(
        p.props().message_expiry_interval(),
        Some(1),
        "{:?}",
        p.properties
    );

    std::thread::sleep(Duration::from_millis(1300).saturating_sub(published.elapsed()));
    // 3.3.2.3.3: a retained message whose interval has passed is no longer sent.
    let mut late = RawClient::connected_v5(midge.port(), "m5-ret-late");
    late.subscribe("m5ret/#", QoS::AtLeastOnce);
    let mut got: Vec<_> = (0..2).map(|_| late.recv_publish()).collect();
    late.sync();
    got.sort_by(|a, b| a.topic.cmp(&b.topic));
    assert_eq!(got[0].topic, "m5ret/long");
    // [MQTT-3.3.2-6]: 60 s less the 1.3 s it was kept.
    let left = got[0].props().message_expiry_interval();
    assert!(matches!(left, Some(58 | 59)), "{:?}", got[0].properties);
    assert_eq!(got[1].topic, "m5ret/none");
    assert_eq!(got[1].props().message_expiry_interval(), None);
}

/// A publisher and a subscriber on `topic`; the publisher sends `payload` with Payload
/// Format Indicator 1 at `qos` as a raw PUBLISH with packet id 1.
fn publish_utf8_flagged(
    midge: &Midge,
    topic: &str,
    payload: &[u8],
    qos: QoS,
) -> (RawClient, RawClient) {
    let mut sub = RawClient::connected_v5(midge.port(), &format!("{topic}-sub"));
    sub.subscribe(topic, QoS::AtLeastOnce);
    let mut publisher = RawClient::connected_v5(midge.port(), &format!("{topic}-pub"));
    let props = [Property::PayloadFormatIndicator(true)];
    publisher.send_packet(&Packet::Publish(Publish {
        dup: false,
        qos_pid: QosPid::new(qos, if qos == QoS::AtMostOnce { 0 } else { 1 }),
        retain: false,
        topic,
        properties: midge_wire::List::new(&props),
        payload,
    }));
    (publisher, sub)
}

#[test]
fn invalid_utf8_payload_flagged_as_text_is_refused_at_qos1_with_puback_0x99() {
    let midge = Midge::start();
    let (mut publisher, mut sub) =
        publish_utf8_flagged(&midge, "m5pfi1", NOT_UTF8, QoS::AtLeastOnce);
    // 3.3.2.3.2: PUBACK with 0x99 (Payload format invalid), and not forwarded.
    let reason = publisher.recv(|p| match p {
        Packet::Puback(ack) => (ack.packet_id, ack.reason),
        other => panic!("expected PUBACK, got {other:?}"),
    });
    assert_eq!(reason, (1, ReasonCode::PayloadFormatInvalid));
    sub.sync();
    // The connection stays usable, and valid UTF-8 with the flag goes through.
    let ok = publisher.publish_with(
        "m5pfi1",
        "grüße".as_bytes(),
        QoS::AtLeastOnce,
        false,
        &[Property::PayloadFormatIndicator(true)],
    );
    assert_eq!(ok.reason, ReasonCode::Success);
    assert_eq!(sub.recv_publish().payload, "grüße".as_bytes());
}

#[test]
fn invalid_utf8_payload_flagged_as_text_is_refused_at_qos2_with_pubrec_0x99() {
    let midge = Midge::start();
    let (mut publisher, mut sub) =
        publish_utf8_flagged(&midge, "m5pfi2", NOT_UTF8, QoS::ExactlyOnce);
    // 3.3.2.3.2: PUBREC with 0x99, which ends the QoS 2 flow [MQTT-4.3.3-4].
    let reason = publisher.recv(|p| match p {
        Packet::Pubrec(ack) => (ack.packet_id, ack.reason),
        other => panic!("expected PUBREC, got {other:?}"),
    });
    assert_eq!(reason, (1, ReasonCode::PayloadFormatInvalid));
    sub.sync();
    publisher.sync();
}

#[test]
fn invalid_utf8_payload_flagged_as_text_at_qos0_disconnects_with_0x99() {
    let midge = Midge::start();
    let (mut publisher, mut sub) =
        publish_utf8_flagged(&midge, "m5pfi0", NOT_UTF8, QoS::AtMostOnce);
    // 3.3.2.3.2: with no acknowledgement to carry it, DISCONNECT with 0x99.
    publisher.expect_disconnect(ReasonCode::PayloadFormatInvalid);
    sub.sync();
}

#[test]
fn request_response_information_is_answered_with_response_information_only_when_asked() {
    let midge = Midge::start();
    let (_, asked) = RawClient::connected_with(
        midge.port(),
        connect_v5_with(
            "m5-rri",
            true,
            &[Property::RequestResponseInformation(true)],
        ),
    );
    // 3.1.2.11.7 / 3.2.2.3.15: the server may send Response Information when asked.
    let info = asked.props().response_information();
    assert!(info.is_some_and(|i| !i.is_empty()), "{asked:?}");
    let (_, not_asked) = RawClient::connected_with(
        midge.port(),
        connect_v5_with(
            "m5-no-rri",
            true,
            &[Property::RequestResponseInformation(false)],
        ),
    );
    // [MQTT-3.1.2-28]: not when Request Response Information is 0 (or absent).
    assert_eq!(not_asked.props().response_information(), None);
}

#[test]
fn python_paho_request_and_response_round_trip_with_correlation_data() {
    let midge = Midge::start();
    let run = midge.python("request_response", &[]);
    let connack = run.one("connack");
    let info = connack["properties"]["ResponseInformation"].as_str();
    assert!(info.is_some_and(|i| !i.is_empty()), "{connack}");
    let reply_topic = run.one("reply_topic")["topic"].as_str().unwrap().to_owned();
    assert_eq!(reply_topic, format!("{}/reply", info.unwrap()));
    // 4.10: Response Topic and Correlation Data reach the responder unchanged...
    let request = run.one("request");
    assert_eq!(
        request["properties"],
        json!({"ResponseTopic": reply_topic, "CorrelationData": "7265712d3432"})
    );
    // ...and the response, on the Response Topic, brings the Correlation Data back.
    let reply = run.one("reply");
    assert_eq!(reply["topic"], reply_topic.as_str());
    assert_eq!(reply["payload"], "noon");
    assert_eq!(
        reply["properties"],
        json!({"CorrelationData": "7265712d3432"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rumqttc_v5_publish_properties_reach_a_rumqttc_subscriber() {
    let midge = Midge::start();
    let mut sub = Client5::connect(&midge, "m5-rq-sub").await;
    sub.subscribe("m5rq/#", RQoS::AtLeastOnce).await;
    let mut publisher = Client5::connect(&midge, "m5-rq-pub").await;
    let properties = PublishProperties {
        payload_format_indicator: Some(1),
        content_type: Some("text/plain".into()),
        response_topic: Some("m5rq/reply".into()),
        correlation_data: Some(b"c-1".to_vec().into()),
        user_properties: vec![("b".into(), "2".into()), ("a".into(), "1".into())],
        message_expiry_interval: Some(120),
        ..Default::default()
    };
    let reason = publisher
        .publish_qos1("m5rq/t", false, b"text", properties)
        .await;
    assert_eq!(reason, PubAckReason::Success);
    let p = sub.recv_publish().await;
    let got = p.properties.expect("properties");
    assert_eq!(got.payload_format_indicator, Some(1));
    assert_eq!(got.content_type.as_deref(), Some("text/plain"));
    assert_eq!(got.response_topic.as_deref(), Some("m5rq/reply"));
    assert_eq!(got.correlation_data.as_deref(), Some(&b"c-1"[..]));
    assert_eq!(
        got.user_properties,
        [
            ("b".to_owned(), "2".to_owned()),
            ("a".to_owned(), "1".to_owned())
        ]
    );
    assert!(
        matches!(got.message_expiry_interval, Some(119 | 120)),
        "{got:?}"
    );
    assert_eq!(got.topic_alias, None);
    assert!(got.subscription_identifiers.is_empty());
}
