//! MQTT 5 shared subscriptions, `$share/{group}/{filter}`: one member of each group
//! gets each message, in turn; messages in flight to a member that goes away; no
//! retained messages at subscribe.
//!
//! Section 4.8.2 (Shared Subscriptions), 3.8.3.1 (No Local on a shared subscription).

use std::collections::BTreeMap;
use std::time::Duration;

use midge_e2e::{Midge, MosquittoSub, RawClient, Received, connect_v5_with};
use midge_wire::{Property, QoS, ReasonCode, Subscription, SubscriptionOptions};

/// `n` v5 members of `$share/{group}/{filter}` at QoS 1, named `{prefix}{i}`.
fn members(midge: &Midge, prefix: &str, n: usize, group: &str, filter: &str) -> Vec<RawClient> {
    (0..n)
        .map(|i| {
            let mut m = RawClient::connected_v5(midge.port(), &format!("{prefix}{i}"));
            m.subscribe(&format!("$share/{group}/{filter}"), QoS::AtLeastOnce);
            m
        })
        .collect()
}

/// Everything a client has received and acknowledged until `sync` shows the stream
/// is idle.
fn drain(client: &mut RawClient) -> Vec<Received> {
    let mut got = Vec::new();
    while let Some(p) = client.poll_publish(Duration::from_millis(300)) {
        client.acknowledge(&p);
        got.push(p);
    }
    client.sync();
    got
}

#[test]
fn shared_subscription_delivers_each_message_to_one_member_in_turn() {
    let midge = Midge::start();
    let mut group = members(&midge, "sh-a", 3, "grp", "sh/t");
    let mut other_group = members(&midge, "sh-b", 1, "other", "sh/+");
    let mut plain = RawClient::connected_v5(midge.port(), "sh-plain");
    plain.subscribe("sh/t", QoS::AtLeastOnce);
    let mut publisher = RawClient::connected_v5(midge.port(), "sh-pub");
    for i in 0..6 {
        publisher.publish("sh/t", format!("{i}").as_bytes(), QoS::AtLeastOnce, false);
    }

    // 4.8.2: each message goes to exactly one member of each group...
    let mut owner: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    let mut counts = Vec::new();
    for (i, member) in group.iter_mut().enumerate() {
        let got = drain(member);
        counts.push(got.len());
        for p in got {
            assert!(owner.insert(p.payload.clone(), i).is_none(), "{p:?} twice");
        }
    }
    assert_eq!(owner.len(), 6, "messages lost: {owner:?}");
    // ...in turn (midge's choice, round-robin): two each of six.
    assert_eq!(counts, [2, 2, 2], "{owner:?}");
    // Another group, and an ordinary subscription, get every message.
    assert_eq!(drain(&mut other_group[0]).len(), 6);
    assert_eq!(drain(&mut plain).len(), 6);
}

#[test]
fn python_paho_shared_subscription_members_take_turns() {
    let midge = Midge::start();
    let run = midge.python("shared", &[]);
    let mut per_client: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in run.all("message") {
        per_client
            .entry(m["client"].as_str().unwrap().to_owned())
            .or_default()
            .push(m["payload"].as_str().unwrap().to_owned());
    }
    let plain = per_client.remove("py-sh-plain").unwrap_or_default();
    assert_eq!(plain.len(), 9, "{plain:?}");
    // 4.8.2: nine messages, each to one of the three members, three each.
    let mut all: Vec<String> = per_client.values().flatten().cloned().collect();
    all.sort_by_key(|p| p.parse::<u32>().unwrap());
    assert_eq!(all, (0..9).map(|i| i.to_string()).collect::<Vec<_>>());
    let counts: Vec<usize> = per_client.values().map(Vec::len).collect();
    assert_eq!(counts, [3, 3, 3], "{per_client:?}");
}

#[test]
fn mosquitto_sub_shared_subscribers_split_the_messages() {
    let midge = Midge::start();
    let subs: Vec<MosquittoSub> = (0..2)
        .map(|i| {
            MosquittoSub::start(
                &midge,
                &format!("sh-mosq{i}"),
                "$share/mosq/shm/#",
                &[
                    "-V",
                    "5",
                    "-q",
                    "1",
                    "-C",
                    "2",
                    "-F",
                    "%p",
                    "-t",
                    "$share/mosq/shm/#",
                ],
            )
        })
        .collect();
    for i in 0..4 {
        midge.mosquitto_pub_ok(&["-V", "5", "-q", "1", "-t", "shm/t", "-m", &format!("m{i}")]);
    }
    // Two each (-C 2 ends each one), none twice.
    let mut got: Vec<String> = subs
        .into_iter()
        .flat_map(|s| s.text().lines().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    got.sort();
    assert_eq!(got, ["m0", "m1", "m2", "m3"]);
}

#[test]
fn qos1_message_in_flight_to_a_member_that_goes_away_is_sent_to_another_member() {
    let midge = Midge::start();
    let mut first = members(&midge, "sh-q1-", 1, "g1", "shq1/t").remove(0);
    let mut publisher = RawClient::connected_v5(midge.port(), "sh-q1-pub");
    publisher.publish("shq1/t", b"in flight", QoS::AtLeastOnce, false);
    let p = first.recv_publish();
    assert_eq!(p.payload, b"in flight");
    let mut second = members(&midge, "sh-q1-b", 1, "g1", "shq1/t").remove(0);

    // The first member's session (expiry 0) ends with its connection, PUBACK unsent.
    first.drop_connection();
    // 4.8.2: the server SHOULD then send it to another member of the group.
    let again = second.recv_publish();
    assert_eq!(
        (&again.payload[..], again.qos),
        (&b"in flight"[..], QoS::AtLeastOnce)
    );
    second.acknowledge(&again);
    second.sync();
}

#[test]
fn qos2_message_in_flight_to_a_member_whose_session_ends_is_not_sent_to_another_member() {
    let midge = Midge::start();
    let mut first = RawClient::connected_v5(midge.port(), "sh-q2-a");
    first.subscribe("$share/g2/shq2/t", QoS::ExactlyOnce);
    let mut publisher = RawClient::connected_v5(midge.port(), "sh-q2-pub");
    publisher.publish("shq2/t", b"in flight", QoS::ExactlyOnce, false);
    assert_eq!(first.recv_publish().payload, b"in flight");
    let mut second = RawClient::connected_v5(midge.port(), "sh-q2-b");
    second.subscribe("$share/g2/shq2/t", QoS::ExactlyOnce);

    first.drop_connection(); // no PUBREC; session expiry 0: the session ends
    assert!(midge.wait_for_log("Client sh-q2-a closed its connection."));
    // [MQTT-4.8.2-5]: a QoS 2 message MUST NOT be sent to any other member then (it may
    // have reached the application of the first one already).
    publisher.publish("shq2/t", b"next", QoS::ExactlyOnce, false);
    let p = second.recv_publish();
    assert_eq!(
        p.payload, b"next",
        "the in-flight QoS 2 message went to another member"
    );
    second.acknowledge(&p);
    second.sync();
}

#[test]
fn qos2_message_in_flight_to_a_member_is_completed_when_it_reconnects() {
    let midge = Midge::start();
    let props = [Property::SessionExpiryInterval(60)];
    let (mut first, _) =
        RawClient::connected_with(midge.port(), connect_v5_with("sh-q2r-a", true, &props));
    first.subscribe("$share/g2r/shq2r/t", QoS::ExactlyOnce);
    let mut other = RawClient::connected_v5(midge.port(), "sh-q2r-b");
    other.subscribe("$share/g2r/shq2r/t", QoS::ExactlyOnce);
    let mut publisher = RawClient::connected_v5(midge.port(), "sh-q2r-pub");
    // Round-robin: each member gets one of the first two.
    publisher.publish("shq2r/t", b"one", QoS::ExactlyOnce, false);
    publisher.publish("shq2r/t", b"two", QoS::ExactlyOnce, false);
    let mine = first.recv_publish();
    let theirs = other.recv_publish();
    other.acknowledge(&theirs);
    first.drop_connection(); // no PUBREC, session kept
    assert!(midge.wait_for_log("Client sh-q2r-a closed its connection."));

    // [MQTT-4.8.2-4]: the delivery is completed with that member when it reconnects...
    let (mut first, connack) =
        RawClient::connected_with(midge.port(), connect_v5_with("sh-q2r-a", false, &props));
    assert!(connack.session_present);
    let again = first.recv_publish();
    assert_eq!((&again.payload[..], again.dup), (&mine.payload[..], true));
    first.acknowledge(&again);
    first.sync();
    // ...and not with the other member.
    other.sync();
}

#[test]
fn retained_messages_are_not_sent_for_a_shared_subscription() {
    let midge = Midge::start();
    let mut publisher = RawClient::connected_v5(midge.port(), "sh-ret-pub");
    publisher.publish("shret/t", b"kept", QoS::AtLeastOnce, true);
    // 4.8.2: no retained messages when a shared subscription is made...
    let mut member = RawClient::connected_v5(midge.port(), "sh-ret");
    member.subscribe("$share/r/shret/#", QoS::AtLeastOnce);
    member.sync();
    // ...while an ordinary subscription of the same client gets them.
    member.subscribe("shret/#", QoS::AtLeastOnce);
    let p = member.recv_publish();
    assert_eq!((&p.payload[..], p.retain), (&b"kept"[..], true));
}

#[test]
fn no_local_on_a_shared_subscription_is_a_protocol_error() {
    let midge = Midge::start();
    let mut client = RawClient::connected_v5(midge.port(), "sh-nolocal");
    let options = SubscriptionOptions {
        no_local: true,
        ..SubscriptionOptions::new(QoS::AtLeastOnce)
    };
    client.send_packet(&midge_wire::Packet::Subscribe(midge_wire::Subscribe {
        packet_id: 1,
        properties: midge_wire::List::EMPTY,
        subscriptions: midge_wire::List::new(&[Subscription {
            filter: "$share/g/shnl/t",
            options,
        }]),
    }));
    // [MQTT-3.8.3-4]: DISCONNECT with 0x82 (Protocol Error).
    client.expect_disconnect(ReasonCode::ProtocolError);
}
