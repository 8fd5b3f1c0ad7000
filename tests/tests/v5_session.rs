//! MQTT 5 sessions: Session Expiry Interval (at CONNECT, changed at DISCONNECT,
//! 0xFFFFFFFF), Clean Start, and the server ending abandoned sessions on time.
//!
//! Section 3.1.2.11.2 (Session Expiry Interval), 3.1.2.4 (Clean Start), 3.14.2.2.2
//! (Session Expiry Interval in DISCONNECT), 4.1 (Session State).

use std::time::{Duration, Instant};

use midge_e2e::rumqtt5::{self, Client5};
use midge_e2e::{Midge, MosquittoSub, RawClient, connect_v5_with};
use midge_wire::{Property, QoS, ReasonCode};
use rumqttc::v5::mqttbytes::QoS as RQoS;

/// A v5 client `id` with Clean Start `clean` and Session Expiry Interval `expiry`;
/// returns it and CONNACK's session present flag.
fn session(midge: &Midge, id: &str, clean: bool, expiry: Option<u32>) -> (RawClient, bool) {
    let props: Vec<Property> = expiry
        .map(Property::SessionExpiryInterval)
        .into_iter()
        .collect();
    let (client, connack) =
        RawClient::connected_with(midge.port(), connect_v5_with(id, clean, &props));
    (client, connack.session_present)
}

#[test]
fn session_with_an_expiry_interval_is_resumed_with_its_subscriptions_and_messages() {
    let midge = Midge::start();
    let (mut sub, present) = session(&midge, "s5-keep", true, Some(60));
    // [MQTT-3.2.2-2]: Clean Start 1 means Session Present 0.
    assert!(!present);
    sub.subscribe("s5keep/t", QoS::AtLeastOnce);
    sub.disconnect();

    let mut publisher = RawClient::connected_v5(midge.port(), "s5-keep-pub");
    publisher.publish("s5keep/t", b"while away", QoS::AtLeastOnce, false);

    // [MQTT-3.1.2-23]: the session outlives the connection; [MQTT-3.2.2-3]: Clean Start 0
    // with a session present resumes it and says so.
    let (mut sub, present) = session(&midge, "s5-keep", false, Some(60));
    assert!(present, "session not present after reconnecting");
    let p = sub.recv_publish();
    assert_eq!(
        (&p.topic[..], &p.payload[..]),
        ("s5keep/t", &b"while away"[..])
    );
    sub.acknowledge(&p);
    publisher.publish("s5keep/t", b"live", QoS::AtLeastOnce, false);
    assert_eq!(sub.recv_publish().payload, b"live", "subscription kept");
}

#[test]
fn session_without_an_expiry_interval_ends_with_its_connection() {
    let midge = Midge::start();
    let (mut sub, _) = session(&midge, "s5-zero", true, None);
    sub.subscribe("s5zero/t", QoS::AtLeastOnce);
    sub.disconnect();

    // 3.1.2.11.2: absent means 0, and the session ends when the connection closes.
    let (mut sub, present) = session(&midge, "s5-zero", false, None);
    assert!(!present, "a session with expiry 0 survived its connection");
    let mut publisher = RawClient::connected_v5(midge.port(), "s5-zero-pub");
    publisher.publish("s5zero/t", b"nobody", QoS::AtLeastOnce, false);
    sub.sync(); // no subscription left: nothing arrives
}

#[test]
fn clean_start_discards_an_existing_session() {
    let midge = Midge::start();
    // [MQTT-3.2.2-3]… Clean Start 0 without a session: a new one, Session Present 0.
    let (mut sub, present) = session(&midge, "s5-clean", false, Some(60));
    assert!(!present);
    sub.subscribe("s5clean/t", QoS::AtLeastOnce);
    sub.disconnect();
    let mut publisher = RawClient::connected_v5(midge.port(), "s5-clean-pub");
    publisher.publish("s5clean/t", b"queued", QoS::AtLeastOnce, false);

    // [MQTT-3.1.2-4]: Clean Start 1 discards the session, its subscriptions and its queue.
    let (mut sub, present) = session(&midge, "s5-clean", true, Some(60));
    assert!(!present, "Clean Start 1 answered with Session Present 1");
    publisher.publish("s5clean/t", b"after", QoS::AtLeastOnce, false);
    sub.sync();
}

#[test]
fn abandoned_session_is_expired_by_the_server_after_its_interval() {
    let midge = Midge::start();
    let (mut sub, _) = session(&midge, "s5-gone", true, Some(1));
    sub.subscribe("s5gone/t", QoS::AtLeastOnce);
    sub.drop_connection();
    let dropped = Instant::now();
    assert!(midge.wait_for_log("Client s5-gone closed its connection."));
    let mut publisher = RawClient::connected_v5(midge.port(), "s5-gone-pub");
    publisher.publish("s5gone/t", b"queued", QoS::AtLeastOnce, false);

    // 3.1.2.11.2 and 4.1: the server discards the session once the interval has passed
    // since the connection closed, not before.
    assert!(
        midge.wait_for_log("Expiring client s5-gone."),
        "the session was not expired"
    );
    let after = dropped.elapsed();
    assert!(
        after >= Duration::from_millis(900),
        "expired after {after:?}"
    );
    assert!(after <= Duration::from_secs(4), "expired after {after:?}");

    let (mut sub, present) = session(&midge, "s5-gone", false, Some(1));
    assert!(!present, "expired session still present");
    sub.sync(); // its queued message went with it
}

#[test]
fn session_expiry_interval_set_at_disconnect_replaces_the_connect_value() {
    let midge = Midge::start();
    let (sub, _) = session(&midge, "s5-shorten", true, Some(3600));
    // 3.14.2.2.2: the DISCONNECT's Session Expiry Interval is the one that applies.
    sub.disconnect_with(ReasonCode::Success, &[Property::SessionExpiryInterval(1)]);
    let disconnected = Instant::now();
    assert!(
        midge.wait_for_log("Expiring client s5-shorten."),
        "the session did not expire after the interval set at DISCONNECT"
    );
    assert!(disconnected.elapsed() >= Duration::from_millis(900));
    let (_, present) = session(&midge, "s5-shorten", false, None);
    assert!(!present);
}

#[test]
fn session_expiry_0xffffffff_never_expires_whether_set_at_connect_or_at_disconnect() {
    let midge = Midge::start();
    let mut publisher = RawClient::connected_v5(midge.port(), "s5-inf-pub");
    // A control session with 1 s, two that must never expire: one asked for 0xFFFFFFFF
    // at CONNECT and lost its connection, one raised 1 s to 0xFFFFFFFF at DISCONNECT.
    let (mut control, _) = session(&midge, "s5-control", true, Some(1));
    control.subscribe("s5inf/t", QoS::AtLeastOnce);
    let (mut forever, _) = session(&midge, "s5-forever", true, Some(u32::MAX));
    forever.subscribe("s5inf/t", QoS::AtLeastOnce);
    let (mut raised, _) = session(&midge, "s5-raised", true, Some(1));
    raised.subscribe("s5inf/t", QoS::AtLeastOnce);

    control.disconnect();
    forever.drop_connection();
    raised.disconnect_with(
        ReasonCode::Success,
        &[Property::SessionExpiryInterval(u32::MAX)],
    );
    assert!(midge.wait_for_log("Client s5-forever closed its connection."));
    publisher.publish("s5inf/t", b"kept", QoS::AtLeastOnce, false);

    // 3.1.2.11.2: 0xFFFFFFFF (UINT_MAX) means the session does not expire.
    assert!(midge.wait_for_log("Expiring client s5-control."));
    std::thread::sleep(Duration::from_millis(1200)); // a further expiry round, at least
    assert_eq!(midge.log_count("Expiring client"), 1, "{}", midge.log());
    for id in ["s5-forever", "s5-raised"] {
        let (mut client, present) = session(&midge, id, false, Some(u32::MAX));
        assert!(present, "{id}: session expired");
        let p = client.recv_publish();
        assert_eq!(p.payload, b"kept", "{id}");
        client.acknowledge(&p);
    }
}

#[test]
fn nonzero_expiry_at_disconnect_after_zero_at_connect_is_a_protocol_error() {
    let midge = Midge::start();
    let (mut client, _) = session(&midge, "s5-late", true, None);
    client.send_packet(&midge_wire::Packet::Disconnect(midge_wire::Disconnect {
        reason: ReasonCode::Success,
        properties: midge_wire::List::new(&[Property::SessionExpiryInterval(60)]),
    }));
    // 3.14.2.2.2: not a valid DISCONNECT; the server answers with DISCONNECT 0x82, and
    // [MQTT-3.14.2-2] a server's DISCONNECT never carries a Session Expiry Interval.
    let disconnect = client.expect_disconnect(ReasonCode::ProtocolError);
    assert_eq!(disconnect.props().session_expiry_interval(), None);
    let (_, present) = session(&midge, "s5-late", false, None);
    assert!(
        !present,
        "the session took the interval of an invalid DISCONNECT"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rumqttc_v5_client_resumes_its_session_with_the_messages_queued_meanwhile() {
    let midge = Midge::start();
    let mut options = rumqtt5::options(&midge, "s5-rq");
    options.set_clean_start(false);
    options.set_session_expiry_interval(Some(30));
    let mut sub = Client5::connect_with(options.clone()).await;
    assert!(!sub.connack.session_present);
    sub.subscribe("s5rq/#", RQoS::AtLeastOnce).await;
    sub.disconnect().await;
    assert!(midge.wait_for_log("Client s5-rq disconnected."));

    let mut publisher = Client5::connect(&midge, "s5-rq-pub").await;
    for i in 1..=2 {
        publisher
            .publish_qos1(&format!("s5rq/{i}"), false, b"away", Default::default())
            .await;
    }
    let mut sub = Client5::connect_with(options).await;
    assert!(sub.connack.session_present, "{:?}", sub.connack);
    for i in 1..=2 {
        let p = sub.recv_publish().await;
        assert_eq!(p.topic, format!("s5rq/{i}").as_bytes());
    }
}

#[test]
fn mosquitto_sub_v5_session_keeps_messages_published_while_it_was_away() {
    let midge = Midge::start();
    // -c -x 60: Clean Start 0 and a Session Expiry Interval of 60 s; -E: subscribe, leave.
    let args = ["-V", "5", "-c", "-x", "60", "-q", "1", "-t", "s5away/#"];
    let first = MosquittoSub::start(
        &midge,
        "s5-away",
        "s5away/#",
        &[&args[..], &["-E"]].concat(),
    );
    assert_eq!(first.output(), b"");
    assert!(midge.wait_for_log("Client s5-away disconnected."));
    for i in 1..=2 {
        midge.mosquitto_pub_ok(&[
            "-V",
            "5",
            "-q",
            "1",
            "-t",
            &format!("s5away/{i}"),
            "-m",
            &format!("m{i}"),
        ]);
    }
    let back = MosquittoSub::start(
        &midge,
        "s5-away",
        "s5away/#",
        &[&args[..], &["-C", "2", "-F", "%t %p"]].concat(),
    );
    assert_eq!(back.text(), "s5away/1 m1\ns5away/2 m2\n");
}
