//! What midge tells MQTT 5 clients: CONNACK properties (what it supports and its
//! limits, Server Keep Alive, Assigned Client Identifier), reason codes on PUBACK and
//! PUBREC, Reason Strings only when the client allows them, AUTH with an unknown method,
//! and the server's DISCONNECT with the right reason code.
//!
//! Section 3.2.2.3 (CONNACK properties), 3.4.2.1 and 3.5.2.1 (PUBACK and PUBREC reason
//! codes), 3.1.2.11.7 (Request Problem Information), 4.12 (Enhanced authentication),
//! 4.13 (Handling errors), 3.14.2.1 (DISCONNECT reason codes).

use std::time::{Duration, Instant};

use midge_e2e::rumqtt5::{self, Client5};
use midge_e2e::{Midge, RawClient, connect_v5, connect_v5_with};
use midge_wire::{
    Auth, List, Packet, Property, Publish, QoS, QosPid, ReasonCode, Subscription,
    SubscriptionOptions,
};
use rumqttc::v5::ConnectionError;
use rumqttc::v5::mqttbytes::QoS as RQoS;
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, PubAckReason, PubRecReason};

#[test]
fn connack_advertises_what_midge_supports_and_claims_nothing_it_does_not() {
    let midge = Midge::start();
    let (_, connack) = RawClient::connected_with(midge.port(), connect_v5("ca-default"));
    let props = connack.props();
    // 3.2.2.3.5: retained messages are available: Retain Available absent (or 1).
    assert_ne!(props.retain_available(), Some(false), "{connack:?}");
    // 3.2.2.3.8: midge accepts topic aliases 1 to 10 (max_topic_alias, as Mosquitto).
    assert_eq!(props.topic_alias_maximum(), Some(10), "{connack:?}");
    // 3.2.2.3.3: its own Receive Maximum, a real limit (absent would mean 65,535).
    let receive_maximum = props.receive_maximum();
    assert!(receive_maximum.is_some_and(|m| m > 0), "{connack:?}");
    // 3.2.2.3.6: no Maximum Packet Size when nothing below MQTT's own limit is set.
    assert_eq!(props.maximum_packet_size(), None, "{connack:?}");
    // 3.2.2.3.4: QoS 2 is supported: no Maximum QoS.
    assert_eq!(props.maximum_qos(), None, "{connack:?}");
    // 3.2.2.3.11 to 3.2.2.3.13: wildcards, Subscription Identifiers and shared
    // subscriptions all work, so none is declared unavailable.
    assert_ne!(
        props.wildcard_subscription_available(),
        Some(false),
        "{connack:?}"
    );
    assert_ne!(
        props.subscription_identifier_available(),
        Some(false),
        "{connack:?}"
    );
    assert_ne!(
        props.shared_subscription_available(),
        Some(false),
        "{connack:?}"
    );
    // Nothing that was not asked for: no assigned id (one was given), no Server Keep
    // Alive (60 s is within bounds), no Response Information, no authentication.
    assert_eq!(props.assigned_client_identifier(), None);
    assert_eq!(props.server_keep_alive(), None);
    assert_eq!(props.response_information(), None);
    assert_eq!(props.authentication_method(), None);
}

#[test]
fn connack_advertises_configured_limits_and_retain_unavailable() {
    let midge = Midge::start_with_config("max_packet_size 2048\nretain_available false\n");
    let (mut client, connack) = RawClient::connected_with(midge.port(), connect_v5("ca-limits"));
    // 3.2.2.3.6: the configured Maximum Packet Size; 3.2.2.3.5: Retain Available 0.
    assert_eq!(
        connack.props().maximum_packet_size(),
        Some(2048),
        "{connack:?}"
    );
    assert_eq!(
        connack.props().retain_available(),
        Some(false),
        "{connack:?}"
    );
    // 3.2.2.3.5: a retained PUBLISH then ([MQTT-3.2.2-14] forbids it) is answered with
    // DISCONNECT 0x9A (Retain not supported).
    client.send_packet(&Packet::Publish(Publish {
        dup: false,
        qos_pid: QosPid::AtLeastOnce(1),
        retain: true,
        topic: "ca/ret",
        properties: List::EMPTY,
        payload: b"x",
    }));
    client.expect_disconnect(ReasonCode::RetainNotSupported);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rumqttc_v5_reads_topic_alias_and_receive_maximum_from_connack() {
    let midge = Midge::start();
    let client = Client5::connect(&midge, "ca-rq").await;
    let props = client
        .connack
        .properties
        .clone()
        .expect("CONNACK properties");
    assert_eq!(props.topic_alias_max, Some(10));
    assert!(props.receive_max.is_some(), "{props:?}");
    assert_ne!(props.retain_available, Some(0));
    assert_ne!(props.shared_subscription_available, Some(0));
    assert_ne!(props.subscription_identifiers_available, Some(0));
}

#[test]
fn server_keep_alive_lowers_a_larger_client_keep_alive_and_says_so() {
    let midge = Midge::start_with_config("max_keepalive 10\n");
    let long = midge_wire::Connect {
        keep_alive: 60,
        ..connect_v5("ka-long")
    };
    let (_, connack) = RawClient::connected_with(midge.port(), long);
    // [MQTT-3.2.2-21]: the server's value replaces the client's, and is sent.
    assert_eq!(connack.props().server_keep_alive(), Some(10), "{connack:?}");
    let short = midge_wire::Connect {
        keep_alive: 5,
        ..connect_v5("ka-short")
    };
    let (_, connack) = RawClient::connected_with(midge.port(), short);
    // Within the limit: the client's own 5 s stands.
    assert!(
        matches!(connack.props().server_keep_alive(), None | Some(5)),
        "{connack:?}"
    );
}

#[test]
fn server_keep_alive_is_the_one_enforced() {
    let midge = Midge::start_with_config("max_keepalive 1\n");
    let (mut client, connack) = RawClient::connected_with(
        midge.port(),
        midge_wire::Connect {
            keep_alive: 600,
            ..connect_v5("ka-enforced")
        },
    );
    let connected = Instant::now();
    assert_eq!(connack.props().server_keep_alive(), Some(1));
    // [MQTT-3.2.2-22], [MQTT-3.1.2-22]: silent for 1.5 times the Server Keep Alive:
    // DISCONNECT with 0x8D (Keep Alive timeout).
    client.expect_disconnect(ReasonCode::KeepAliveTimeout);
    let after = connected.elapsed();
    assert!(
        after >= Duration::from_millis(1400),
        "closed after {after:?}"
    );
    assert!(after <= Duration::from_secs(4), "closed after {after:?}");
}

#[test]
fn empty_client_id_gets_an_assigned_client_identifier_it_can_use() {
    let midge = Midge::start();
    // 3.1.3.1: in MQTT 5 an empty id is allowed with Clean Start 0 too.
    let props = [Property::SessionExpiryInterval(60)];
    let (mut client, connack) =
        RawClient::connected_with(midge.port(), connect_v5_with("", false, &props));
    // [MQTT-3.2.2-16]: the id midge assigned is in the CONNACK.
    let id = connack
        .props()
        .assigned_client_identifier()
        .expect("no Assigned Client Identifier")
        .to_owned();
    assert!(!id.is_empty());
    client.subscribe("aci/t", QoS::AtLeastOnce);
    client.disconnect();
    // The session is under that id: reconnecting with it resumes it.
    let (_, connack) = RawClient::connected_with(midge.port(), connect_v5_with(&id, false, &props));
    assert!(
        connack.session_present,
        "session of assigned id {id} not found"
    );
}

#[test]
fn python_paho_empty_client_id_gets_an_assigned_client_identifier() {
    let midge = Midge::start();
    let run = midge.python("assigned_id", &[]);
    let connack = run.one("connack");
    let id = connack["properties"]["AssignedClientIdentifier"].as_str();
    assert!(id.is_some_and(|id| !id.is_empty()), "{connack}");
    assert_eq!(run.one("message")["payload"], "to myself");
}

#[test]
fn puback_and_pubrec_say_when_there_were_no_matching_subscribers() {
    let midge = Midge::start();
    let mut publisher = RawClient::connected_v5(midge.port(), "nms-pub");
    // 3.4.2.1 and 3.5.2.1: 0x10 (No matching subscribers)...
    for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let reply = publisher.publish_with("nms/t", b"x", qos, false, &[]);
        assert_eq!(reply.reason, ReasonCode::NoMatchingSubscribers, "{qos:?}");
    }
    // ...and 0x00 once somebody listens.
    let mut sub = RawClient::connected_v5(midge.port(), "nms-sub");
    sub.subscribe("nms/#", QoS::AtMostOnce);
    for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let reply = publisher.publish_with("nms/t", b"x", qos, false, &[]);
        assert_eq!(reply.reason, ReasonCode::Success, "{qos:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rumqttc_v5_sees_no_matching_subscribers_in_puback_and_pubrec() {
    let midge = Midge::start();
    let mut publisher = Client5::connect(&midge, "nms-rq").await;
    let reason = publisher
        .publish_qos1("nmsrq/t", false, b"x", Default::default())
        .await;
    assert_eq!(reason, PubAckReason::NoMatchingSubscribers);
    let reason = publisher.publish_qos2("nmsrq/t", b"x").await;
    assert_eq!(reason, PubRecReason::NoMatchingSubscribers);
    publisher.subscribe("nmsrq/t", RQoS::AtMostOnce).await;
    let reason = publisher
        .publish_qos1("nmsrq/t", false, b"x", Default::default())
        .await;
    assert_eq!(reason, PubAckReason::Success);
}

#[test]
fn request_problem_information_0_keeps_reason_strings_off_acknowledgements() {
    let midge = Midge::start();
    let props = [Property::RequestProblemInformation(false)];
    let (mut client, _) =
        RawClient::connected_with(midge.port(), connect_v5_with("rpi", true, &props));
    // Acknowledgements with a reason to explain: no subscribers (QoS 1 and 2), and an
    // invalid payload.
    let replies = [
        client.publish_with("rpi/t", b"x", QoS::AtLeastOnce, false, &[]),
        client.publish_with("rpi/t", b"x", QoS::ExactlyOnce, false, &[]),
        client.publish_with(
            "rpi/t",
            b"\xff",
            QoS::AtLeastOnce,
            false,
            &[Property::PayloadFormatIndicator(true)],
        ),
    ];
    // [MQTT-3.1.2-29]: no Reason String nor User Property on anything but PUBLISH,
    // CONNACK and DISCONNECT.
    for reply in &replies {
        assert_eq!(reply.props().reason_string(), None, "{reply:?}");
        assert_eq!(reply.props().user_properties().count(), 0, "{reply:?}");
    }
    let codes = client.subscribe_many(
        &[Subscription {
            filter: "rpi/#",
            options: SubscriptionOptions::new(QoS::AtLeastOnce),
        }],
        &[],
    );
    assert_eq!(codes, [ReasonCode::GrantedQoS1]);
}

#[test]
fn unknown_authentication_method_is_refused_with_connack_0x8c() {
    let midge = Midge::start();
    let props = [Property::AuthenticationMethod("SCRAM-SHA-256")];
    let (mut client, connack) =
        midge_e2e::RawClient::handshake_v5(midge.port(), connect_v5_with("auth", true, &props));
    // 4.12: a method the server does not support: CONNACK 0x8C (Bad authentication
    // method), and [MQTT-3.2.2-7] the connection is closed.
    assert_eq!(
        connack.reason,
        ReasonCode::BadAuthenticationMethod,
        "{connack:?}"
    );
    assert!(!connack.session_present);
    assert!(client.is_closed_by_broker());
}

#[test]
fn python_paho_unknown_authentication_method_is_refused_with_0x8c() {
    let midge = Midge::start();
    let run = midge.python("auth_method", &[]);
    assert_eq!(run.one("connack")["reason"], 0x8c);
    run.one("closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rumqttc_v5_unknown_authentication_method_is_refused() {
    let midge = Midge::start();
    let mut options = rumqtt5::options(&midge, "auth-rq");
    options.set_authentication_method(Some("KERBEROS".into()));
    match Client5::try_connect(options).await {
        Err(ConnectionError::ConnectionRefused(code)) => {
            assert_eq!(code, ConnectReturnCode::BadAuthenticationMethod);
        }
        Err(other) => panic!("refused otherwise: {other:?}"),
        Ok(_) => panic!("accepted an unknown authentication method"),
    }
}

#[test]
fn auth_packet_without_an_authentication_method_is_a_protocol_error() {
    let midge = Midge::start();
    let mut client = RawClient::connected_v5(midge.port(), "auth-stray");
    client.send_packet(&Packet::Auth(Auth {
        reason: ReasonCode::ContinueAuthentication,
        properties: List::EMPTY,
    }));
    // 4.12: AUTH without an Authentication Method in CONNECT is a Protocol Error.
    client.expect_disconnect(ReasonCode::ProtocolError);
}

#[test]
fn session_takeover_sends_disconnect_0x8e_to_the_old_connection() {
    let midge = Midge::start();
    let mut old = RawClient::connected_v5(midge.port(), "takeover");
    let _new = RawClient::connected_v5(midge.port(), "takeover");
    // [MQTT-3.1.4-3]: the existing connection gets DISCONNECT 0x8E (Session taken over).
    old.expect_disconnect(ReasonCode::SessionTakenOver);
}

#[test]
fn second_connect_is_a_protocol_error() {
    let midge = Midge::start();
    let mut client = RawClient::connected_v5(midge.port(), "twice");
    client.send_packet(&Packet::Connect(connect_v5("twice")));
    // [MQTT-3.1.0-2]: a second CONNECT is a Protocol Error: DISCONNECT 0x82.
    client.expect_disconnect(ReasonCode::ProtocolError);
}

#[test]
fn subscription_identifier_in_a_client_publish_is_a_protocol_error() {
    let midge = Midge::start();
    let mut client = RawClient::connected_v5(midge.port(), "sid-pub");
    let props = [Property::SubscriptionIdentifier(3)];
    client.send_packet(&Packet::Publish(Publish {
        dup: false,
        qos_pid: QosPid::AtLeastOnce(1),
        retain: false,
        topic: "sidpub/t",
        properties: List::new(&props),
        payload: b"x",
    }));
    // [MQTT-3.3.4-6]: a client's PUBLISH must not carry one: DISCONNECT 0x82.
    client.expect_disconnect(ReasonCode::ProtocolError);
}

#[test]
fn malformed_packet_gets_disconnect_0x81() {
    let midge = Midge::start();
    let mut client = RawClient::connected_v5(midge.port(), "malformed");
    // A PUBLISH with QoS 3: [MQTT-3.3.1-4], a Malformed Packet. 4.13.1: DISCONNECT 0x81.
    client.send(&[0x36, 0x06, 0x00, 0x01, b't', 0x00, 0x01, 0x00]);
    client.expect_disconnect(ReasonCode::MalformedPacket);
}
