//! The connection state machine driven directly, without sockets.

use super::*;
use crate::auth::{AuthExchange, AuthMethod, AuthStep};
use crate::config::Limits;
use crate::signal::Raised;
use midge_wire::{
    Connect, DecodeOptions, Decoded, Publish, QoS, QosPid, Subscribe, SubscriptionOptions, Will,
    decode,
};

fn broker() -> Arc<Broker> {
    Arc::new(Broker::new(Limits::default()))
}

fn connect_packet<'a>(client_id: &'a str, clean: bool, will: Option<Will<'a>>) -> Packet<'a> {
    Packet::Connect(Connect {
        version: ProtocolVersion::V3_1_1,
        clean_start: clean,
        keep_alive: 60,
        properties: Properties::EMPTY,
        client_id,
        will,
        username: None,
        password: None,
    })
}

/// Everything the connection wants to send, one line per packet.
/// Everything a 3.1.1 client is sent, one line per packet (also before its CONNECT is
/// handled, as every client in these tests but the MQTT 5 ones speaks 3.1.1).
fn sent(c: &mut Connection) -> Vec<String> {
    sent_in(c, ProtocolVersion::V3_1_1)
}

fn sent_in(c: &mut Connection, version: ProtocolVersion) -> Vec<String> {
    let out = std::mem::take(&mut c.out);
    let opts = DecodeOptions {
        version,
        ..DecodeOptions::default()
    };
    let mut rest = &out[..];
    let mut lines = Vec::new();
    while !rest.is_empty() {
        let Ok(Decoded::Complete { packet, len }) = decode(rest, &opts) else {
            panic!("undecodable output {rest:?}")
        };
        lines.push(match packet {
            Packet::Publish(p) => format!(
                "PUBLISH {} {:?} q{} r{} d{}",
                p.topic,
                std::str::from_utf8(p.payload).unwrap(),
                p.qos_pid.qos() as u8,
                u8::from(p.retain),
                u8::from(p.dup)
            ),
            Packet::Connack(c) => {
                format!("CONNACK {:?} sp{}", c.reason, u8::from(c.session_present))
            }
            Packet::Auth(a) => format!(
                "AUTH {:?} {:?} {:?}",
                a.reason,
                a.properties.authentication_method(),
                a.properties
                    .authentication_data()
                    .map(|d| std::str::from_utf8(d).unwrap())
            ),
            other => format!("{:?}", other.packet_type()),
        });
        rest = &rest[len..];
    }
    lines
}

fn client(broker: &Arc<Broker>, id: &str, clean: bool) -> Connection {
    let mut c = Connection::new(Arc::clone(broker), "127.0.0.1:1".parse().unwrap(), true);
    c.on_packet(connect_packet(id, clean, None)).unwrap();
    c
}

fn publish<'a>(topic: &'a str, payload: &'a [u8], qos_pid: QosPid, retain: bool) -> Packet<'a> {
    Packet::Publish(Publish {
        dup: false,
        qos_pid,
        retain,
        topic,
        properties: Properties::EMPTY,
        payload,
    })
}

fn subscribe(c: &mut Connection, filter: &str, qos: QoS) {
    let subs = [midge_wire::Subscription {
        filter,
        options: SubscriptionOptions::new(qos),
    }];
    let packet = Subscribe {
        packet_id: 1,
        properties: Properties::EMPTY,
        subscriptions: List::new(&subs),
    };
    c.on_packet(Packet::Subscribe(packet)).unwrap();
}

#[test]
fn publish_reaches_a_matching_subscriber_at_the_granted_qos() {
    let broker = broker();
    let mut sub = client(&broker, "sub", true);
    let mut publisher = client(&broker, "pub", true);
    assert_eq!(sent(&mut sub), ["CONNACK Success sp0"]);
    subscribe(&mut sub, "a/+", QoS::AtLeastOnce);
    assert_eq!(sent(&mut sub), ["Suback"]);
    publisher
        .on_packet(publish("a/b", b"x", QosPid::ExactlyOnce(9), false))
        .unwrap();
    assert_eq!(sent(&mut publisher), ["CONNACK Success sp0", "Pubrec"]);
    sub.send_queued();
    assert_eq!(sent(&mut sub), ["PUBLISH a/b \"x\" q1 r0 d0"]);
}

#[test]
fn retained_messages_arrive_after_the_suback_with_retain_set() {
    let broker = broker();
    let mut publisher = client(&broker, "pub", true);
    publisher
        .on_packet(publish("r/1", b"kept", QosPid::AtMostOnce, true))
        .unwrap();
    let mut sub = client(&broker, "sub", true);
    sent(&mut sub);
    subscribe(&mut sub, "r/#", QoS::AtMostOnce);
    sub.send_queued();
    assert_eq!(sent(&mut sub), ["Suback", "PUBLISH r/1 \"kept\" q0 r1 d0"]);
}

#[test]
fn persistent_session_resumes_with_queued_messages() {
    let broker = broker();
    let mut sub = client(&broker, "sub", false);
    subscribe(&mut sub, "q", QoS::AtLeastOnce);
    sub.on_close(&Closing::Disconnected { keep_will: false });
    let mut publisher = client(&broker, "pub", true);
    publisher
        .on_packet(publish("q", b"1", QosPid::AtLeastOnce(1), false))
        .unwrap();
    publisher
        .on_packet(publish("q", b"0", QosPid::AtMostOnce, false))
        .unwrap();
    let mut again = client(&broker, "sub", false);
    again.send_queued();
    assert_eq!(
        sent(&mut again),
        ["CONNACK Success sp1", "PUBLISH q \"1\" q1 r0 d0"]
    );
}

#[test]
fn unacknowledged_publish_is_resent_with_dup_after_reconnect() {
    let broker = broker();
    let mut sub = client(&broker, "sub", false);
    subscribe(&mut sub, "q", QoS::AtLeastOnce);
    let mut publisher = client(&broker, "pub", true);
    publisher
        .on_packet(publish("q", b"1", QosPid::AtLeastOnce(1), false))
        .unwrap();
    sub.send_queued();
    sent(&mut sub);
    sub.on_close(&Closing::ConnectionLost);
    let mut again = client(&broker, "sub", false);
    assert_eq!(
        sent(&mut again),
        ["CONNACK Success sp1", "PUBLISH q \"1\" q1 r0 d1"]
    );
}

#[tokio::test]
async fn same_client_id_takes_the_session_over() {
    let broker = broker();
    let first = client(&broker, "dup", false);
    let _second = client(&broker, "dup", false);
    let notified = tokio::time::timeout(Duration::from_millis(100), first.signal.wait());
    assert!(notified.await.is_ok(), "the first connection is woken");
    assert!(
        first.signal.take().contains(Raised::TakenOver),
        "and told it was taken over"
    );
}

#[test]
fn will_is_published_on_connection_loss_but_not_on_disconnect() {
    for (closing, expected) in [
        (Closing::ConnectionLost, 1),
        (Closing::KeepAliveTimeout, 1),
        (Closing::Disconnected { keep_will: false }, 0),
    ] {
        let broker = broker();
        let mut watcher = client(&broker, "watcher", true);
        subscribe(&mut watcher, "wills/#", QoS::AtMostOnce);
        sent(&mut watcher);
        let will = Will {
            qos: QoS::AtMostOnce,
            retain: false,
            properties: Properties::EMPTY,
            topic: "wills/dev",
            payload: b"gone",
        };
        let mut dev = Connection::new(Arc::clone(&broker), "127.0.0.1:2".parse().unwrap(), true);
        dev.on_packet(connect_packet("dev", true, Some(will)))
            .unwrap();
        dev.on_close(&closing);
        watcher.send_queued();
        assert_eq!(sent(&mut watcher).len(), expected, "{closing:?}");
    }
}

#[test]
fn protocol_errors_close_the_connection() {
    let broker = broker();
    let mut c = Connection::new(Arc::clone(&broker), "127.0.0.1:3".parse().unwrap(), true);
    assert!(matches!(
        c.on_packet(Packet::Pingreq),
        Err(Closing::ProtocolError { .. })
    ));
    let mut c = client(&broker, "x", true);
    assert!(matches!(
        c.on_packet(connect_packet("x", true, None)),
        Err(Closing::ProtocolError { .. })
    ));
}

#[test]
fn anonymous_refused_where_not_allowed() {
    let broker = broker();
    let mut c = Connection::new(Arc::clone(&broker), "10.0.0.1:3".parse().unwrap(), false);
    assert!(matches!(
        c.on_packet(connect_packet("x", true, None)),
        Err(Closing::Refused(_))
    ));
    assert_eq!(sent(&mut c), ["CONNACK NotAuthorized sp0"]);
}

/// A challenge–response method for the tests: challenges with "n1", accepts "n1-ok".
#[derive(Debug)]
struct Nonce;

#[derive(Debug)]
struct NonceExchange {
    challenged: bool,
}

impl AuthMethod for Nonce {
    fn name(&self) -> &str {
        "nonce"
    }

    fn start(&self, _client_id: &str, _username: Option<&str>) -> Box<dyn AuthExchange> {
        Box::new(NonceExchange { challenged: false })
    }
}

impl AuthExchange for NonceExchange {
    fn step(&mut self, data: Option<&[u8]>) -> AuthStep {
        if !std::mem::replace(&mut self.challenged, true) {
            AuthStep::Challenge(b"n1".to_vec())
        } else if data == Some(b"n1-ok") {
            AuthStep::Accept(Some(b"welcome".to_vec()))
        } else {
            AuthStep::Refuse
        }
    }
}

fn auth_connect(method: &str) -> (Connection, Arc<Broker>) {
    let broker = Arc::new(Broker::new(Limits::default()).with_auth_methods(vec![Arc::new(Nonce)]));
    let mut c = Connection::new(Arc::clone(&broker), "127.0.0.1:5".parse().unwrap(), true);
    let props = [Property::AuthenticationMethod(method)];
    let connect = Connect {
        version: ProtocolVersion::V5,
        clean_start: true,
        keep_alive: 60,
        properties: List::new(&props),
        client_id: "authed",
        will: None,
        username: None,
        password: None,
    };
    let _ = c.on_packet(Packet::Connect(connect));
    (c, broker)
}

fn auth_packet<'a>(reason: ReasonCode, props: &'a [Property<'a>]) -> Packet<'a> {
    Packet::Auth(midge_wire::Auth {
        reason,
        properties: List::new(props),
    })
}

#[test]
fn enhanced_authentication_challenge_and_answer() {
    let (mut c, _broker) = auth_connect("nonce");
    assert_eq!(
        sent_in(&mut c, ProtocolVersion::V5),
        ["AUTH ContinueAuthentication Some(\"nonce\") Some(\"n1\")"]
    );
    let answer = [
        Property::AuthenticationMethod("nonce"),
        Property::AuthenticationData(b"n1-ok"),
    ];
    c.on_packet(auth_packet(ReasonCode::ContinueAuthentication, &answer))
        .unwrap();
    assert_eq!(
        sent_in(&mut c, ProtocolVersion::V5),
        ["CONNACK Success sp0"]
    );
    assert!(c.session().is_some(), "connected after the exchange");

    // Re-authentication on the live connection, same method.
    let again = [Property::AuthenticationMethod("nonce")];
    c.on_packet(auth_packet(ReasonCode::ReAuthenticate, &again))
        .unwrap();
    c.on_packet(auth_packet(ReasonCode::ContinueAuthentication, &answer))
        .unwrap();
    let lines = sent_in(&mut c, ProtocolVersion::V5);
    assert_eq!(lines[1], "AUTH Success Some(\"nonce\") Some(\"welcome\")");
}

#[test]
fn enhanced_authentication_wrong_answer_and_unknown_method_are_refused() {
    let (mut c, _broker) = auth_connect("nonce");
    sent_in(&mut c, ProtocolVersion::V5);
    let wrong = [
        Property::AuthenticationMethod("nonce"),
        Property::AuthenticationData(b"guess"),
    ];
    let refused = c.on_packet(auth_packet(ReasonCode::ContinueAuthentication, &wrong));
    assert!(matches!(
        refused,
        Err(Closing::Refused(ReasonCode::NotAuthorized))
    ));
    assert_eq!(
        sent_in(&mut c, ProtocolVersion::V5),
        ["CONNACK NotAuthorized sp0"]
    );

    let (mut c, _broker) = auth_connect("kerberos");
    assert_eq!(
        sent_in(&mut c, ProtocolVersion::V5),
        ["CONNACK BadAuthenticationMethod sp0"]
    );
}

fn v5_client<'a>(broker: &Arc<Broker>, id: &str, props: &'a [Property<'a>]) -> Connection {
    let mut c = Connection::new(Arc::clone(broker), "127.0.0.1:9".parse().unwrap(), true);
    let connect = Connect {
        version: ProtocolVersion::V5,
        clean_start: true,
        keep_alive: 60,
        properties: List::new(props),
        client_id: id,
        will: None,
        username: None,
        password: None,
    };
    c.on_packet(Packet::Connect(connect)).unwrap();
    sent_in(&mut c, ProtocolVersion::V5);
    c
}

/// Found by the connection fuzzer: a connection whose session was taken over by a clean
/// start must not subscribe the dead session to anything.
#[test]
fn a_taken_over_connection_handles_nothing_more() {
    let broker = broker();
    let mut old = v5_client(&broker, "b", &[]);
    let _new = v5_client(&broker, "b", &[]);
    let subs = [midge_wire::Subscription {
        filter: "t",
        options: SubscriptionOptions::new(QoS::AtMostOnce),
    }];
    let subscribe = Subscribe {
        packet_id: 1,
        properties: Properties::EMPTY,
        subscriptions: List::new(&subs),
    };
    assert!(matches!(
        old.on_packet(Packet::Subscribe(subscribe)),
        Err(Closing::TakenOver)
    ));
    old.on_close(&Closing::TakenOver);
    assert_eq!(broker.subscription_count(), 0);
}

/// Found by the connection fuzzer: DISCONNECT carries only its own reason codes, and its
/// Reason String is dropped rather than exceed the client's Maximum Packet Size.
#[test]
fn server_disconnect_reason_is_valid_and_fits_the_client() {
    let broker = broker();
    let small = [Property::MaximumPacketSize(16)];
    let mut c = v5_client(&broker, "small", &small);
    let closing = Closing::protocol(
        ReasonCode::UnsupportedProtocolVersion,
        "a long explanation of the problem",
    );
    c.on_close(&closing);
    let out = std::mem::take(&mut c.out);
    let opts = DecodeOptions {
        version: ProtocolVersion::V5,
        ..DecodeOptions::default()
    };
    let Ok(Decoded::Complete {
        packet: Packet::Disconnect(d),
        len,
    }) = decode(&out, &opts)
    else {
        panic!("expected a DISCONNECT in {out:?}")
    };
    assert_eq!(
        d.reason,
        ReasonCode::ProtocolError,
        "0x84 is not a DISCONNECT code"
    );
    assert!(
        d.properties.is_empty() && len <= 16,
        "no Reason String past the maximum"
    );
}
