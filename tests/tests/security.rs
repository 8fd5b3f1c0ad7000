//! Password and ACL files: who gets in, and what they may publish, subscribe to and
//! leave as a will.

use midge_e2e::{Midge, RawClient, connect_packet, connect_v5, password_file, temp_file};
use midge_wire::{QoS, ReasonCode, SubscriptionOptions, Will};

fn with_user<'a>(id: &'a str, user: &'a str, password: &'a [u8]) -> midge_wire::Connect<'a> {
    midge_wire::Connect {
        username: Some(user),
        password: Some(password),
        ..connect_packet(id)
    }
}

/// `allow_anonymous false` plus a password file: only matching credentials get in.
/// 3.1.1 refusals are "not authorised" (5), MQTT 5's "bad user name or password" (0x86),
/// as in Mosquitto.
#[test]
fn password_file_admits_only_matching_credentials() {
    let passwd = password_file(&[("alice", "secret"), ("bob", "hunter2")]);
    let midge = Midge::start_with_config(&format!(
        "allow_anonymous false\npassword_file {}\n",
        passwd.display()
    ));
    let port = midge.port();
    let (_alice, connack) = RawClient::handshake(port, with_user("a", "alice", b"secret"));
    assert_eq!(connack, [0x20, 2, 0, 0], "right password");
    for (id, connect) in [
        ("wrong", with_user("w", "alice", b"Secret")),
        ("unknown", with_user("u", "mallory", b"secret")),
        ("none", connect_packet("anon")),
        (
            "no password",
            midge_wire::Connect {
                username: Some("bob"),
                ..connect_packet("np")
            },
        ),
    ] {
        let (mut client, connack) = RawClient::handshake(port, connect);
        assert_eq!(connack, [0x20, 2, 0, 5], "{id}");
        assert!(
            client.is_closed_by_broker(),
            "{id}: connection closed after refusal"
        );
    }
    let v5 = midge_wire::Connect {
        username: Some("alice"),
        password: Some(b"nope"),
        ..connect_v5("v5")
    };
    let (_c, connack) = RawClient::handshake_v5(port, v5);
    assert_eq!(connack.reason, ReasonCode::BadUserNameOrPassword);
    // A well-behaved client is still served afterwards.
    let (mut bob, connack) = RawClient::handshake(port, with_user("b", "bob", b"hunter2"));
    assert_eq!(connack, [0x20, 2, 0, 0]);
    bob.subscribe("t", QoS::AtMostOnce);
}

/// Without a password file, `allow_anonymous false` lets nobody in: a user name alone
/// proves nothing.
#[test]
fn no_password_file_and_no_anonymous_access_refuses_everyone() {
    let midge = Midge::start_with_config("allow_anonymous false\n");
    let (_c, connack) = RawClient::handshake(midge.port(), with_user("x", "admin", b"admin"));
    assert_eq!(connack, [0x20, 2, 0, 5]);
}

const ACL: &str = "\
# anonymous clients: nothing
user alice
topic readwrite alice/#
topic read news/#
pattern readwrite clients/%c/#
user admin
topic readwrite #
";

fn acl_broker() -> Midge {
    let passwd = password_file(&[("alice", "a"), ("admin", "z")]);
    let acl = temp_file("acl", ACL);
    Midge::start_with_config(&format!(
        "allow_anonymous false\npassword_file {}\nacl_file {}\n",
        passwd.display(),
        acl.display()
    ))
}

/// Subscriptions under which nothing is readable are refused in SUBACK (0x80 in 3.1.1,
/// 0x87 in MQTT 5); others, including `%c` patterns, are granted.
#[test]
fn acl_refuses_subscriptions_it_does_not_grant() {
    let midge = acl_broker();
    let (mut alice, _) = RawClient::handshake(midge.port(), with_user("alice-1", "alice", b"a"));
    let granted = |c: &mut RawClient, filter: &str| {
        let codes = c.subscribe_many(
            &[midge_wire::Subscription {
                filter,
                options: SubscriptionOptions::new(QoS::AtLeastOnce),
            }],
            &[],
        );
        codes[0]
    };
    assert_eq!(granted(&mut alice, "alice/#"), ReasonCode::GrantedQoS1);
    assert_eq!(granted(&mut alice, "news/today"), ReasonCode::GrantedQoS1);
    assert_eq!(
        granted(&mut alice, "clients/alice-1/in"),
        ReasonCode::GrantedQoS1
    );
    // 3.1.1 SUBACK failure is 0x80, which decodes as UnspecifiedError.
    assert_eq!(
        granted(&mut alice, "clients/other/in"),
        ReasonCode::UnspecifiedError
    );
    assert_eq!(granted(&mut alice, "bob/#"), ReasonCode::UnspecifiedError);

    let v5 = midge_wire::Connect {
        username: Some("alice"),
        password: Some(b"a"),
        ..connect_v5("alice-5")
    };
    let (mut alice5, _) = RawClient::connected_with(midge.port(), v5);
    let codes = alice5.subscribe_with("admin/#", SubscriptionOptions::new(QoS::AtMostOnce), &[]);
    assert_eq!(codes, [ReasonCode::NotAuthorized]);
}

/// A PUBLISH the ACL does not allow is dropped: acknowledged as usual in 3.1.1, with
/// 0x87 in MQTT 5; subscribers never see it.
#[test]
fn acl_drops_publishes_it_does_not_grant() {
    let midge = acl_broker();
    let (mut admin, _) = RawClient::handshake(midge.port(), with_user("admin-1", "admin", b"z"));
    admin.subscribe("#", QoS::AtLeastOnce);
    let (mut alice, _) = RawClient::handshake(midge.port(), with_user("alice-1", "alice", b"a"));
    // news/# is read-only for alice: the PUBACK is an ordinary one in 3.1.1.
    alice.publish("news/fake", b"x", QoS::AtLeastOnce, false);
    alice.publish("alice/ok", b"y", QoS::AtLeastOnce, false);
    let got = admin.recv_publish();
    assert_eq!(
        (got.topic.as_str(), got.payload.as_slice()),
        ("alice/ok", &b"y"[..])
    );
    admin.sync();

    let v5 = midge_wire::Connect {
        username: Some("alice"),
        password: Some(b"a"),
        ..connect_v5("alice-5")
    };
    let (mut alice5, _) = RawClient::connected_with(midge.port(), v5);
    let reply = alice5.publish_with("news/fake", b"x", QoS::AtLeastOnce, false, &[]);
    assert_eq!(reply.reason, ReasonCode::NotAuthorized);
    admin.sync();
}

/// A will on a topic the client may not publish to is refused at CONNECT, as Mosquitto
/// does; one it may publish to is accepted.
#[test]
fn acl_refuses_a_will_the_client_may_not_publish() {
    let midge = acl_broker();
    let will = |topic| Will {
        qos: QoS::AtMostOnce,
        retain: false,
        properties: midge_wire::Properties::EMPTY,
        topic,
        payload: b"gone",
    };
    let denied = midge_wire::Connect {
        will: Some(will("admin/alarm")),
        ..with_user("w1", "alice", b"a")
    };
    let (_c, connack) = RawClient::handshake(midge.port(), denied);
    assert_eq!(connack, [0x20, 2, 0, 5]);
    let allowed = midge_wire::Connect {
        will: Some(will("alice/status")),
        ..with_user("w2", "alice", b"a")
    };
    let (_c, connack) = RawClient::handshake(midge.port(), allowed);
    assert_eq!(connack, [0x20, 2, 0, 0]);
}

/// SIGHUP (`systemctl reload`) reads the password file again: a changed password works
/// at once and the old one no longer does; connected clients are checked again, and only
/// those whose credentials stopped working are disconnected.
#[test]
fn sighup_reloads_the_password_file() {
    let passwd = password_file(&[("alice", "one"), ("bob", "b")]);
    let midge = Midge::start_with_config(&format!(
        "allow_anonymous false\npassword_file {}\n",
        passwd.display()
    ));
    let (mut alice, connack) = RawClient::handshake(midge.port(), with_user("a1", "alice", b"one"));
    assert_eq!(connack, [0x20, 2, 0, 0]);
    let (mut bob, connack) = RawClient::handshake(midge.port(), with_user("b1", "bob", b"b"));
    assert_eq!(connack, [0x20, 2, 0, 0]);
    midge_e2e::midge_passwd(&["-b", passwd.to_str().unwrap(), "alice", "two"]);
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &midge.pid().to_string()])
        .status();
    assert!(hup.is_ok_and(|s| s.success()));
    assert!(midge.wait_for_log("reloaded password and ACL files"));
    assert!(
        alice.is_closed_by_broker(),
        "alice's password changed: she is disconnected"
    );
    bob.subscribe("still/here", QoS::AtMostOnce);
    let (_c, connack) = RawClient::handshake(midge.port(), with_user("a2", "alice", b"two"));
    assert_eq!(connack, [0x20, 2, 0, 0], "new password");
    let (_c, connack) = RawClient::handshake(midge.port(), with_user("a3", "alice", b"one"));
    assert_eq!(connack, [0x20, 2, 0, 5], "old password");
}

/// A subscription wider than the client's rules is granted (as Mosquitto, whose ACL only
/// filters deliveries), and each message is checked: the client receives only what it
/// may read.
#[test]
fn acl_filters_each_delivery_of_a_wide_subscription() {
    let midge = acl_broker();
    let (mut alice, _) = RawClient::handshake(midge.port(), with_user("alice-1", "alice", b"a"));
    alice.subscribe("#", QoS::AtLeastOnce);
    let (mut admin, _) = RawClient::handshake(midge.port(), with_user("admin-1", "admin", b"z"));
    admin.publish("admin/secret", b"no", QoS::AtLeastOnce, true);
    admin.publish("news/today", b"yes", QoS::AtLeastOnce, false);
    let got = alice.recv_publish();
    assert_eq!(
        (got.topic.as_str(), got.payload.as_slice()),
        ("news/today", &b"yes"[..])
    );
    alice.sync();
    // The retained admin message is not delivered at subscribe either.
    let (mut again, _) = RawClient::handshake(midge.port(), with_user("alice-2", "alice", b"a"));
    again.subscribe("#", QoS::AtLeastOnce);
    again.sync();
}

/// `connection_rate` caps new connections per source address: with 1 a second (bursts of
/// ten), the eleventh connection in a row is closed without a CONNACK, and a second
/// later there is room again.
#[test]
fn connection_rate_caps_new_connections_per_address() {
    let config = temp_file("rate.toml", "[limits]\nconnection_rate = 1\n");
    let midge = Midge::start_with(&["-c", config.to_str().unwrap()]);
    let clients: Vec<RawClient> = (0..10)
        .map(|i| RawClient::connected(midge.port(), &format!("r{i}")))
        .collect();
    let mut refused = RawClient::connect(midge.port());
    assert!(
        refused.is_closed_by_broker(),
        "the eleventh connection is closed at once"
    );
    assert!(midge.wait_for_log("over connection_rate"));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let mut later = RawClient::connected(midge.port(), "later");
    later.subscribe("t", QoS::AtMostOnce);
    drop(clients);
}

/// The password check runs off the async workers while the connection waits: packets a
/// client sends right behind its CONNECT (in the same write) are handled after it, in
/// order.
#[test]
fn packets_pipelined_behind_a_checked_connect_wait_for_it() {
    use midge_wire::{List, Packet, ProtocolVersion, Subscribe, Subscription};
    let passwd = password_file(&[("alice", "secret")]);
    let midge = Midge::start_with_config(&format!(
        "allow_anonymous false\npassword_file {}\n",
        passwd.display()
    ));
    let subscriptions = [Subscription {
        filter: "p/t",
        options: SubscriptionOptions::new(QoS::AtMostOnce),
    }];
    let subscribe = Packet::Subscribe(Subscribe {
        packet_id: 7,
        properties: midge_wire::Properties::EMPTY,
        subscriptions: List::new(&subscriptions),
    });
    let mut bytes = midge_e2e::encode(
        ProtocolVersion::V3_1_1,
        &Packet::Connect(with_user("p", "alice", b"secret")),
    );
    bytes.extend(midge_e2e::encode(ProtocolVersion::V3_1_1, &subscribe));
    bytes.extend([0xc0, 0]); // PINGREQ
    let mut client = RawClient::connect(midge.port());
    client.send(&bytes);
    assert_eq!(
        client.recv_frame(),
        Some(vec![0x20, 2, 0, 0]),
        "CONNACK first"
    );
    assert_eq!(
        client.recv_frame(),
        Some(vec![0x90, 3, 0, 7, 0]),
        "then SUBACK"
    );
    assert_eq!(client.recv_frame(), Some(vec![0xd0, 0]), "then PINGRESP");
}

/// An ACL reload applies to connected clients at once: what alice may no longer read stops
/// reaching her, without reconnecting.
#[test]
fn sighup_reloads_the_acl_for_connected_clients() {
    let passwd = password_file(&[("alice", "a"), ("admin", "z")]);
    let acl = temp_file(
        "reload.acl",
        "user alice\ntopic read news/#\nuser admin\ntopic readwrite #\n",
    );
    let midge = Midge::start_with_config(&format!(
        "allow_anonymous false\npassword_file {}\nacl_file {}\n",
        passwd.display(),
        acl.display()
    ));
    let (mut alice, _) = RawClient::handshake(midge.port(), with_user("alice-1", "alice", b"a"));
    alice.subscribe("news/#", QoS::AtMostOnce);
    let (mut admin, _) = RawClient::handshake(midge.port(), with_user("admin-1", "admin", b"z"));
    admin.publish("news/1", b"before", QoS::AtLeastOnce, false);
    assert_eq!(alice.recv_publish().payload, b"before");

    std::fs::write(
        &acl,
        "user alice\ntopic read weather/#\nuser admin\ntopic readwrite #\n",
    )
    .unwrap();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &midge.pid().to_string()])
        .status();
    assert!(hup.is_ok_and(|s| s.success()));
    assert!(midge.wait_for_log("reloaded password and ACL files"));
    admin.publish("news/2", b"after", QoS::AtLeastOnce, false);
    alice.sync(); // nothing arrived
}

/// `--test-config` loads the password, ACL and certificate files too: a broken one fails
/// the check with its file and line, before the broker is ever started with it.
#[test]
fn test_config_checks_the_security_files() {
    let acl = temp_file("bad.acl", "user alice\ntopic readwrite a/#\ntopik read b\n");
    let conf = temp_file(
        "secure.conf",
        &format!("listener 1883 127.0.0.1\nacl_file {}\n", acl.display()),
    );
    let out = std::process::Command::new(midge_e2e::midge_binary())
        .args(["--test-config", "-c", conf.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:3:", acl.display())),
        "{stderr}"
    );
}
