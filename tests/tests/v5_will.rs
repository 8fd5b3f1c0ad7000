//! MQTT 5 wills: Will Delay Interval (published after it; not when the client comes back
//! within it; at session end if that comes first), will properties passed through,
//! Message Expiry on a will, and DISCONNECT with reason 0x04.
//!
//! Section 3.1.2.5 (Will Flag), 3.1.3.2 (Will Properties), 3.14.2.1 (DISCONNECT reason).

use std::time::{Duration, Instant};

use midge_e2e::rumqtt5::{self, Client5};
use midge_e2e::{Midge, MosquittoSub, RawClient, connect_v5_with};
use midge_wire::{Connect, List, Property, QoS, ReasonCode, Will};
use rumqttc::v5::mqttbytes::QoS as RQoS;
use rumqttc::v5::mqttbytes::v5::{LastWill, LastWillProperties};

/// A v5 CONNECT for `id` with Session Expiry Interval `expiry` and a QoS 1 will on
/// `topic` with `will_properties`.
fn with_will<'a>(
    id: &'a str,
    session_props: &'a [Property<'a>],
    topic: &'a str,
    will_properties: &'a [Property<'a>],
) -> Connect<'a> {
    Connect {
        will: Some(Will {
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: List::new(will_properties),
            topic,
            payload: b"gone",
        }),
        ..connect_v5_with(id, true, session_props)
    }
}

/// A v5 watcher subscribed to `filter`.
fn watcher(midge: &Midge, id: &str, filter: &str) -> RawClient {
    let mut w = RawClient::connected_v5(midge.port(), id);
    w.subscribe(filter, QoS::AtLeastOnce);
    w
}

#[test]
fn will_is_published_after_the_will_delay_interval() {
    let midge = Midge::start();
    let mut watch = watcher(&midge, "wd-watch", "wd/#");
    let session = [Property::SessionExpiryInterval(10)];
    let will = [Property::WillDelayInterval(1)];
    let (device, _) =
        RawClient::connected_with(midge.port(), with_will("wd-dev", &session, "wd/dev", &will));
    device.drop_connection();
    let dropped = Instant::now();
    // 3.1.3.2.2: held back for the Will Delay Interval, then published.
    let p = watch.recv_publish();
    let after = dropped.elapsed();
    assert_eq!((&p.topic[..], &p.payload[..]), ("wd/dev", &b"gone"[..]));
    assert!(
        after >= Duration::from_millis(900),
        "published after {after:?}"
    );
    assert!(after <= Duration::from_secs(4), "published after {after:?}");
}

#[test]
fn will_is_not_published_when_the_client_reconnects_within_the_delay() {
    let midge = Midge::start();
    let mut watch = watcher(&midge, "wb-watch", "wb/#");
    let session = [Property::SessionExpiryInterval(10)];
    let will = [Property::WillDelayInterval(1)];
    let connect = with_will("wb-dev", &session, "wb/dev", &will);
    let (device, _) = RawClient::connected_with(midge.port(), connect);
    device.drop_connection();
    let dropped = Instant::now();
    assert!(midge.wait_for_log("Client wb-dev closed its connection."));
    let (back, connack) =
        RawClient::connected_with(midge.port(), connect_v5_with("wb-dev", false, &session));
    assert!(connack.session_present);
    // [MQTT-3.1.3-9]: back before the delay passed: the will is never sent. Wait past
    // the delay, then a sentinel must be the next thing the watcher gets.
    std::thread::sleep(Duration::from_millis(1500).saturating_sub(dropped.elapsed()));
    let mut publisher = RawClient::connected_v5(midge.port(), "wb-pub");
    publisher.publish("wb/end", b"end", QoS::AtLeastOnce, false);
    assert_eq!(
        watch.recv_publish().topic,
        "wb/end",
        "the will was published"
    );
    drop(back);
}

#[test]
fn will_is_published_when_the_session_ends_before_the_will_delay() {
    let midge = Midge::start();
    let mut watch = watcher(&midge, "we-watch", "we/#");
    let session = [Property::SessionExpiryInterval(1)];
    let will = [Property::WillDelayInterval(3600)];
    let (device, _) =
        RawClient::connected_with(midge.port(), with_will("we-dev", &session, "we/dev", &will));
    device.drop_connection();
    let dropped = Instant::now();
    // 3.1.3.2.2: the delay or the end of the session, whichever comes first.
    let p = watch.recv_publish();
    let after = dropped.elapsed();
    assert_eq!(p.topic, "we/dev");
    assert!(
        after >= Duration::from_millis(900),
        "published after {after:?}"
    );
    assert!(after <= Duration::from_secs(4), "published after {after:?}");
}

#[test]
fn will_properties_are_passed_through_and_the_will_delay_is_not() {
    let midge = Midge::start();
    let mut watch = watcher(&midge, "wp-watch", "wp/#");
    let will = [
        Property::WillDelayInterval(0),
        Property::PayloadFormatIndicator(true),
        Property::MessageExpiryInterval(60),
        Property::ContentType("text/plain"),
        Property::ResponseTopic("wp/ack"),
        Property::CorrelationData(b"w-1"),
        Property::UserProperty("b", "2"),
        Property::UserProperty("a", "1"),
    ];
    let (device, _) =
        RawClient::connected_with(midge.port(), with_will("wp-dev", &[], "wp/dev", &will));
    device.drop_connection();
    let p = watch.recv_publish();
    assert_eq!(p.topic, "wp/dev");
    let props = p.props();
    // 3.1.3.2.3 to 3.1.3.2.8: sent with the will as published, [MQTT-3.1.3-10] User
    // Properties in order.
    assert_eq!(props.payload_format_indicator(), Some(true));
    assert!(
        matches!(props.message_expiry_interval(), Some(59 | 60)),
        "{p:?}"
    );
    assert_eq!(props.content_type(), Some("text/plain"));
    assert_eq!(props.response_topic(), Some("wp/ack"));
    assert_eq!(props.correlation_data(), Some(&b"w-1"[..]));
    assert_eq!(
        props.user_properties().collect::<Vec<_>>(),
        [("b", "2"), ("a", "1")]
    );
    // The Will Delay Interval is the server's business, not a PUBLISH property.
    assert_eq!(p.properties.to_vec().len(), 7, "{:?}", p.properties);
}

#[test]
fn will_message_expiry_interval_applies_to_the_retained_will() {
    let midge = Midge::start();
    let will = [Property::MessageExpiryInterval(1)];
    let connect = Connect {
        will: Some(Will {
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: List::new(&will),
            topic: "wx/dev",
            payload: b"gone",
        }),
        ..midge_e2e::connect_v5("wx-dev")
    };
    let (device, _) = RawClient::connected_with(midge.port(), connect);
    device.drop_connection();
    let dropped = Instant::now();
    assert!(midge.wait_for_log("Client wx-dev closed its connection."));
    let mut early = RawClient::connected_v5(midge.port(), "wx-early");
    early.subscribe("wx/#", QoS::AtLeastOnce);
    let p = early.recv_publish();
    assert_eq!((&p.payload[..], p.retain), (&b"gone"[..], true));
    assert_eq!(p.props().message_expiry_interval(), Some(1), "{p:?}");

    // 3.1.3.2.4: the will's lifetime is its Message Expiry Interval, retained copy included.
    std::thread::sleep(Duration::from_millis(1300).saturating_sub(dropped.elapsed()));
    let mut late = RawClient::connected_v5(midge.port(), "wx-late");
    late.subscribe("wx/#", QoS::AtLeastOnce);
    late.sync();
}

#[test]
fn disconnect_with_will_message_0x04_publishes_the_will() {
    let midge = Midge::start();
    let mut watch = watcher(&midge, "w4-watch", "w4/#");
    let (device, _) =
        RawClient::connected_with(midge.port(), with_will("w4-dev", &[], "w4/dev", &[]));
    // 3.14.2.1: 0x04, Disconnect with Will Message: "publish my will".
    device.disconnect_with(ReasonCode::DisconnectWithWillMessage, &[]);
    let p = watch.recv_publish();
    assert_eq!((&p.topic[..], &p.payload[..]), ("w4/dev", &b"gone"[..]));
}

#[test]
fn normal_disconnect_discards_a_delayed_will() {
    let midge = Midge::start();
    let mut watch = watcher(&midge, "wn-watch", "wn/#");
    let session = [Property::SessionExpiryInterval(1)];
    let will = [Property::WillDelayInterval(1)];
    let (device, _) =
        RawClient::connected_with(midge.port(), with_will("wn-dev", &session, "wn/dev", &will));
    // [MQTT-3.1.2-10], 3.14.4: a normal DISCONNECT deletes the will, delayed or not;
    // neither the delay nor the end of the session brings it back.
    device.disconnect();
    assert!(midge.wait_for_log("Expiring client wn-dev."));
    let mut publisher = RawClient::connected_v5(midge.port(), "wn-pub");
    publisher.publish("wn/end", b"end", QoS::AtLeastOnce, false);
    assert_eq!(
        watch.recv_publish().topic,
        "wn/end",
        "the will was published"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rumqttc_v5_will_with_delay_and_user_properties_arrives_after_the_delay() {
    let midge = Midge::start();
    let mut watch = Client5::connect(&midge, "wr-watch").await;
    watch.subscribe("wr/#", RQoS::AtLeastOnce).await;
    let mut options = rumqtt5::options(&midge, "wr-dev");
    options.set_session_expiry_interval(Some(10));
    options.set_last_will(LastWill::new(
        "wr/dev",
        "offline",
        RQoS::AtLeastOnce,
        false,
        Some(LastWillProperties {
            delay_interval: Some(1),
            payload_format_indicator: None,
            message_expiry_interval: None,
            content_type: None,
            response_topic: None,
            correlation_data: None,
            user_properties: vec![("cause".into(), "crash".into())],
        }),
    ));
    let device = Client5::connect_with(options).await;
    device.kill().await;
    let killed = Instant::now();
    let p = watch.recv_publish().await;
    let after = killed.elapsed();
    assert_eq!(
        (&p.topic[..], &p.payload[..]),
        (&b"wr/dev"[..], &b"offline"[..])
    );
    // 3.1.3.2.2; 3.1.3.2.8 and [MQTT-3.1.3-10]: User Properties kept.
    assert!(
        after >= Duration::from_millis(900),
        "published after {after:?}"
    );
    let props = p.properties.expect("will properties");
    assert_eq!(
        props.user_properties,
        [("cause".to_owned(), "crash".to_owned())]
    );
}

#[test]
fn python_paho_will_with_delay_and_properties_arrives_after_the_delay() {
    let midge = Midge::start();
    let run = midge.python("will", &[]);
    let will = run.one("will");
    assert_eq!(will["topic"], "pywill/device");
    assert_eq!(will["payload"], "gone");
    // 3.1.3.2.2: after the 1 s delay (measured from the socket's close in Python).
    let delay = will["delay"].as_f64().unwrap();
    assert!((0.9..=4.0).contains(&delay), "published after {delay} s");
    assert_eq!(
        will["properties"],
        serde_json::json!({
            "ContentType": "text/plain",
            "UserProperty": [["reason", "power"], ["site", "shed"]],
        })
    );
}

#[test]
fn mosquitto_sub_will_with_a_delay_is_published_after_it() {
    let midge = Midge::start();
    let watcher = MosquittoSub::start(
        &midge,
        "wm-watch",
        "wm/#",
        &["-V", "5", "-q", "1", "-C", "1", "-F", "%t %p", "-t", "wm/#"],
    );
    let victim = MosquittoSub::start(
        &midge,
        "wm-victim",
        "wm-victim/t",
        &[
            "-V",
            "5",
            "-x",
            "10",
            "-t",
            "wm-victim/t",
            "--will-topic",
            "wm/victim",
            "--will-payload",
            "killed",
            "--will-qos",
            "1",
            "-D",
            "will",
            "will-delay-interval",
            "1",
        ],
    );
    victim.kill();
    let killed = Instant::now();
    assert_eq!(watcher.text(), "wm/victim killed\n");
    let after = killed.elapsed();
    assert!(
        after >= Duration::from_millis(900),
        "published after {after:?}"
    );
}
