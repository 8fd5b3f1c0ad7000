//! MQTT 5 subscription options (No Local, Retain As Published, Retain Handling 0/1/2),
//! Subscription Identifiers, and SUBACK/UNSUBACK reason codes per topic filter.
//!
//! Section 3.8.3.1 (Subscription Options), 3.8.2.1.2 and 3.3.4 (Subscription
//! Identifier), 3.9.3 (SUBACK payload), 3.11.3 (UNSUBACK payload).

use midge_e2e::rumqtt5::Client5;
use midge_e2e::{Midge, RawClient};
use midge_wire::{
    List, Packet, Property, QoS, ReasonCode, RetainHandling, Subscription, SubscriptionOptions,
    Unsubscribe,
};
use rumqttc::v5::mqttbytes::QoS as RQoS;
use rumqttc::v5::mqttbytes::v5::{Filter, RetainForwardRule, SubscribeProperties};

fn options(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions::new(qos)
}

#[test]
fn no_local_subscription_does_not_receive_the_clients_own_messages() {
    let midge = Midge::start();
    let mut me = RawClient::connected_v5(midge.port(), "nl-me");
    let no_local = SubscriptionOptions {
        no_local: true,
        ..options(QoS::AtLeastOnce)
    };
    assert_eq!(
        me.subscribe_with("nl/t", no_local, &[]),
        [ReasonCode::GrantedQoS1]
    );
    let mut other = RawClient::connected_v5(midge.port(), "nl-other");
    other.subscribe("nl/t", QoS::AtLeastOnce);

    // [MQTT-3.8.3-3]: not forwarded to the connection that published it...
    me.publish("nl/t", b"mine", QoS::AtLeastOnce, false);
    assert_eq!(other.recv_publish().payload, b"mine");
    me.sync();
    // ...but other clients' messages are.
    other.publish("nl/t", b"theirs", QoS::AtLeastOnce, false);
    assert_eq!(me.recv_publish().payload, b"theirs");
}

#[test]
fn retain_as_published_keeps_the_retain_flag_of_live_messages() {
    let midge = Midge::start();
    let mut kept = RawClient::connected_v5(midge.port(), "rap-1");
    let rap = SubscriptionOptions {
        retain_as_published: true,
        ..options(QoS::AtLeastOnce)
    };
    kept.subscribe_with("rap/t", rap, &[]);
    let mut cleared = RawClient::connected_v5(midge.port(), "rap-0");
    cleared.subscribe("rap/t", QoS::AtLeastOnce);

    let mut publisher = RawClient::connected_v5(midge.port(), "rap-pub");
    publisher.publish("rap/t", b"retained", QoS::AtLeastOnce, true);
    publisher.publish("rap/t", b"plain", QoS::AtLeastOnce, false);
    // [MQTT-3.3.1-13]: Retain As Published 1: RETAIN as the publisher set it.
    let got: Vec<(Vec<u8>, bool)> = (0..2)
        .map(|_| {
            let p = kept.recv_publish();
            (p.payload, p.retain)
        })
        .collect();
    assert_eq!(
        got,
        [(b"retained".to_vec(), true), (b"plain".to_vec(), false)]
    );
    // [MQTT-3.3.1-12]: Retain As Published 0: RETAIN 0 on live messages.
    let got: Vec<(Vec<u8>, bool)> = (0..2)
        .map(|_| {
            let p = cleared.recv_publish();
            (p.payload, p.retain)
        })
        .collect();
    assert_eq!(
        got,
        [(b"retained".to_vec(), false), (b"plain".to_vec(), false)]
    );
}

/// A broker with one retained message on `rh/t`, and a v5 client to subscribe with.
fn with_retained(midge: &Midge, id: &str) -> RawClient {
    let mut publisher = RawClient::connected_v5(midge.port(), &format!("{id}-pub"));
    publisher.publish("rh/t", b"kept", QoS::AtLeastOnce, true);
    RawClient::connected_v5(midge.port(), id)
}

fn retain_handling(handling: RetainHandling) -> SubscriptionOptions {
    SubscriptionOptions {
        retain_handling: handling,
        ..options(QoS::AtLeastOnce)
    }
}

#[test]
fn retain_handling_0_sends_retained_messages_at_every_subscribe() {
    let midge = Midge::start();
    let mut client = with_retained(&midge, "rh0");
    // [MQTT-3.3.1-9]: at the subscribe, and again when it is repeated.
    for _ in 0..2 {
        client.subscribe_with("rh/t", retain_handling(RetainHandling::OnSubscribe), &[]);
        let p = client.recv_publish();
        assert_eq!((&p.payload[..], p.retain), (&b"kept"[..], true));
        client.acknowledge(&p);
    }
}

#[test]
fn retain_handling_1_sends_retained_messages_only_for_a_new_subscription() {
    let midge = Midge::start();
    let mut client = with_retained(&midge, "rh1");
    let rh1 = retain_handling(RetainHandling::OnNewSubscription);
    // [MQTT-3.3.1-10]: the subscription did not exist: sent...
    client.subscribe_with("rh/t", rh1, &[]);
    let p = client.recv_publish();
    assert_eq!((&p.payload[..], p.retain), (&b"kept"[..], true));
    client.acknowledge(&p);
    // ...it exists now: not sent again.
    client.subscribe_with("rh/t", rh1, &[]);
    client.sync();
}

#[test]
fn retain_handling_2_never_sends_retained_messages() {
    let midge = Midge::start();
    let mut client = with_retained(&midge, "rh2");
    // [MQTT-3.3.1-11]: not at the subscribe...
    client.subscribe_with("rh/t", retain_handling(RetainHandling::Never), &[]);
    client.sync();
    // ...while live messages still arrive.
    client.publish("rh/t", b"live", QoS::AtLeastOnce, false);
    assert_eq!(client.recv_publish().payload, b"live");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rumqttc_v5_subscription_options_no_local_retain_as_published_and_never_retained() {
    let midge = Midge::start();
    let mut publisher = Client5::connect(&midge, "so-rq-pub").await;
    publisher
        .publish_qos1("sorq/t", true, b"old", Default::default())
        .await;

    let mut client = Client5::connect(&midge, "so-rq").await;
    let mut filter = Filter::new("sorq/t", RQoS::AtLeastOnce);
    filter.nolocal = true;
    filter.preserve_retain = true;
    filter.retain_forward_rule = RetainForwardRule::Never;
    let codes = client.subscribe_filter(filter, None).await;
    assert_eq!(
        codes,
        [rumqttc::v5::mqttbytes::v5::SubscribeReasonCode::Success(
            RQoS::AtLeastOnce
        )]
    );
    // Own message: not delivered (No Local); retained "old": not sent (Retain Handling 2);
    // "new", published retained by another client: delivered with RETAIN 1 (Retain As
    // Published). It must be the first thing to arrive.
    client
        .publish_qos1("sorq/t", false, b"mine", Default::default())
        .await;
    publisher
        .publish_qos1("sorq/t", true, b"new", Default::default())
        .await;
    let p = client.recv_publish().await;
    assert_eq!((&p.payload[..], p.retain), (&b"new"[..], true));
}

#[test]
fn subscription_identifier_is_sent_with_the_messages_of_its_subscription() {
    let midge = Midge::start();
    let mut client = RawClient::connected_v5(midge.port(), "sid-one");
    client.subscribe_with(
        "sid1/with",
        options(QoS::AtLeastOnce),
        &[Property::SubscriptionIdentifier(268_435_455)],
    );
    client.subscribe("sid1/without", QoS::AtLeastOnce);
    let mut publisher = RawClient::connected_v5(midge.port(), "sid-one-pub");
    publisher.publish("sid1/with", b"a", QoS::AtLeastOnce, false);
    publisher.publish("sid1/without", b"b", QoS::AtLeastOnce, false);
    // 3.8.2.1.2, [MQTT-3.3.4-3]: the identifier of the matching subscription, the
    // largest one allowed included...
    let with = client.recv_publish();
    let ids: Vec<u32> = with.props().subscription_identifiers().collect();
    assert_eq!(ids, [268_435_455]);
    client.acknowledge(&with);
    // ...and none for a subscription made without one.
    let without = client.recv_publish();
    assert_eq!(
        without.props().subscription_identifiers().count(),
        0,
        "{without:?}"
    );
}

#[test]
fn overlapping_subscriptions_deliver_one_copy_with_every_identifier_at_the_highest_qos() {
    let midge = Midge::start();
    let mut client = RawClient::connected_v5(midge.port(), "sid-over");
    let id = |n| [Property::SubscriptionIdentifier(n)];
    client.subscribe_with("over/#", options(QoS::AtMostOnce), &id(1));
    client.subscribe_with("over/+/x", options(QoS::AtLeastOnce), &id(2));
    client.subscribe("over/a/+", QoS::AtLeastOnce); // no identifier
    let mut publisher = RawClient::connected_v5(midge.port(), "sid-over-pub");
    publisher.publish("over/a/x", b"all three", QoS::ExactlyOnce, false);
    publisher.publish("over/b/y", b"first only", QoS::AtLeastOnce, false);

    // [MQTT-3.3.4-2]: one copy at the highest QoS of the matching subscriptions;
    // [MQTT-3.3.4-4]: carrying the identifiers of all of them (in any order).
    let p = client.recv_publish();
    assert_eq!(
        (&p.payload[..], p.qos),
        (&b"all three"[..], QoS::AtLeastOnce)
    );
    let mut ids: Vec<u32> = p.props().subscription_identifiers().collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 2]);
    client.acknowledge(&p);
    let p = client.recv_publish();
    assert_eq!(
        (&p.payload[..], p.qos),
        (&b"first only"[..], QoS::AtMostOnce)
    );
    assert_eq!(
        p.props().subscription_identifiers().collect::<Vec<_>>(),
        [1]
    );
    client.sync(); // no second copy of either
}

#[test]
fn python_paho_overlapping_subscriptions_get_one_copy_with_both_identifiers() {
    let midge = Midge::start();
    let run = midge.python("subscription_ids", &[]);
    let got: Vec<(String, Vec<u64>)> = run
        .all("message")
        .iter()
        .map(|m| {
            let mut ids: Vec<u64> = m["properties"]["SubscriptionIdentifier"]
                .as_array()
                .map(|a| a.iter().map(|v| v.as_u64().unwrap()).collect())
                .unwrap_or_default();
            ids.sort_unstable();
            (m["payload"].as_str().unwrap().to_owned(), ids)
        })
        .collect();
    // [MQTT-3.3.4-4]: one copy of "both" with identifiers 1 and 2.
    assert_eq!(
        got,
        [
            ("both".to_owned(), vec![1, 2]),
            ("first only".to_owned(), vec![1]),
            ("end".to_owned(), vec![1]),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rumqttc_v5_subscription_identifier_comes_back_on_its_messages() {
    let midge = Midge::start();
    let mut client = Client5::connect(&midge, "sid-rq").await;
    let props = SubscribeProperties {
        id: Some(42),
        user_properties: vec![],
    };
    client
        .subscribe_filter(Filter::new("sidrq/#", RQoS::AtLeastOnce), Some(props))
        .await;
    client
        .publish_qos1("sidrq/t", false, b"x", Default::default())
        .await;
    let p = client.recv_publish().await;
    let ids = p
        .properties
        .map(|p| p.subscription_identifiers)
        .unwrap_or_default();
    assert_eq!(ids, [42]);
}

#[test]
fn suback_and_unsuback_have_one_reason_code_per_topic_filter_in_order() {
    let midge = Midge::start();
    let mut client = RawClient::connected_v5(midge.port(), "codes");
    let subscriptions = [
        Subscription {
            filter: "codes/2",
            options: options(QoS::ExactlyOnce),
        },
        Subscription {
            filter: "codes/0",
            options: options(QoS::AtMostOnce),
        },
        Subscription {
            filter: "codes/+/1",
            options: options(QoS::AtLeastOnce),
        },
    ];
    // [MQTT-3.9.3-1]: one code per filter, in the order of the SUBSCRIBE;
    // [MQTT-3.8.4-7]: the QoS granted.
    assert_eq!(
        client.subscribe_many(&subscriptions, &[]),
        [
            ReasonCode::GrantedQoS2,
            ReasonCode::Success,
            ReasonCode::GrantedQoS1
        ]
    );
    let filters = ["codes/0", "codes/never", "codes/+/1"];
    client.send_packet(&Packet::Unsubscribe(Unsubscribe {
        packet_id: 77,
        properties: List::EMPTY,
        filters: List::new(&filters),
    }));
    // [MQTT-3.11.3-1], [MQTT-3.11.3-2]: 0x00 for a removed subscription, 0x11 (No
    // subscription existed) for the other, in order.
    let codes: (u16, Vec<ReasonCode>) = client.recv(|p| match p {
        Packet::Unsuback(u) => (u.packet_id, u.reason_codes.iter().collect()),
        other => panic!("expected UNSUBACK, got {other:?}"),
    });
    assert_eq!(
        codes,
        (
            77,
            vec![
                ReasonCode::Success,
                ReasonCode::NoSubscriptionExisted,
                ReasonCode::Success
            ]
        )
    );
}
