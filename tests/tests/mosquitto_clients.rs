//! midge against Debian's mosquitto_pub and mosquitto_sub (2.0): the clients most people
//! will point at it first.
//!
//! Every mosquitto_sub runs with an explicit client id, so the test can wait for midge's
//! "<id> subscribed to <filter>" log line before publishing, and with `-W` so it cannot
//! outlive a failed test by long. Messages whose order matters are published at QoS 1:
//! mosquitto_pub exits only after PUBACK, when midge has routed the message.

use midge_e2e::{Midge, MosquittoSub as Sub, unique_temp_path};

/// Runs mosquitto_pub and checks it succeeded.
fn publish(midge: &Midge, args: &[&str]) {
    midge.mosquitto_pub_ok(args);
}

/// The lines mosquitto_sub printed, as `&str`s.
fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn wildcards() {
    let midge = Midge::start();
    // Each subscriber also subscribes to "end", published last: with `-C` set to the
    // expected count, an unexpected message shows as a missing "end".
    let cases: [(&str, &[&str]); 4] = [
        ("home/+/temp", &["home/kitchen/temp"]),
        (
            "home/#",
            &[
                "home/kitchen/temp",
                "home/hall/humidity",
                "home",
                "home/kitchen/temp/raw",
            ],
        ),
        ("+/+/temp", &["home/kitchen/temp", "garden/shed/temp"]),
        (
            "#",
            &[
                "home/kitchen/temp",
                "home/hall/humidity",
                "home",
                "garden/shed/temp",
                "home/kitchen/temp/raw",
            ],
        ),
    ];
    let subs: Vec<Sub> = cases
        .iter()
        .enumerate()
        .map(|(i, (filter, expected))| {
            let count = (expected.len() + 1).to_string();
            let args = ["-v", "-C", &count, "-t", filter, "-t", "end"];
            Sub::start(&midge, &format!("wild{i}"), "end", &args)
        })
        .collect();
    for topic in [
        "home/kitchen/temp",
        "home/hall/humidity",
        "home",
        "garden/shed/temp",
        "home/kitchen/temp/raw",
    ] {
        publish(
            &midge,
            &["-q", "1", "-t", topic, "-m", &format!("m-{topic}")],
        );
    }
    publish(&midge, &["-q", "1", "-t", "end", "-m", "m-end"]);
    for (sub, (filter, expected)) in subs.into_iter().zip(cases) {
        let expected: Vec<String> = expected
            .iter()
            .chain(&["end"])
            .map(|t| format!("{t} m-{t}"))
            .collect();
        assert_eq!(lines(&sub.text()), expected, "filter {filter}");
    }
}

#[test]
fn retained_messages_are_delivered_flagged_and_cleared() {
    let midge = Midge::start();
    let format = ["-F", "%r %q %t %p"];
    let live = Sub::start(
        &midge,
        "ret-live",
        "ret/t",
        &[&format[..], &["-q", "1", "-C", "2", "-t", "ret/t"]].concat(),
    );
    publish(&midge, &["-r", "-q", "1", "-t", "ret/t", "-m", "v1"]);

    // A new subscriber gets it with the retain flag, at the lower of the two QoS.
    let at0 = Sub::start(
        &midge,
        "ret-0",
        "ret/#",
        &[&format[..], &["-C", "1", "-t", "ret/#"]].concat(),
    );
    assert_eq!(at0.text(), "1 0 ret/t v1\n");
    let at1 = Sub::start(
        &midge,
        "ret-1",
        "ret/t",
        &[&format[..], &["-q", "2", "-C", "1", "-t", "ret/t"]].concat(),
    );
    assert_eq!(at1.text(), "1 1 ret/t v1\n");

    // -R skips retained (stale) messages: this one prints the next live message only, which
    // carries retain 0 although it was published retained [MQTT-3.3.1-9].
    let fresh = Sub::start(
        &midge,
        "ret-fresh",
        "ret/t",
        &[&format[..], &["-R", "-q", "1", "-C", "1", "-t", "ret/t"]].concat(),
    );
    publish(&midge, &["-r", "-q", "1", "-t", "ret/t", "-m", "v2"]);
    assert_eq!(fresh.text(), "0 1 ret/t v2\n");
    assert_eq!(live.text(), "0 1 ret/t v1\n0 1 ret/t v2\n");

    // `-n -r` (an empty retained message) clears it [MQTT-3.3.1-10].
    publish(&midge, &["-n", "-r", "-q", "1", "-t", "ret/t"]);
    let after = Sub::start(
        &midge,
        "ret-after",
        "ret-end",
        &["-v", "-C", "1", "-t", "ret/#", "-t", "ret-end"],
    );
    publish(&midge, &["-q", "1", "-t", "ret-end", "-m", "end"]);
    assert_eq!(
        after.text(),
        "ret-end end\n",
        "a cleared retained message was delivered"
    );
}

#[test]
fn qos_levels() {
    let midge = Midge::start();
    let format = ["-F", "%q %t %p"];
    let subs: Vec<Sub> = ["0", "1", "2"]
        .iter()
        .map(|q| {
            let args = [&format[..], &["-q", q, "-C", "3", "-t", "qos/#"]].concat();
            Sub::start(&midge, &format!("qos-sub{q}"), "qos/#", &args)
        })
        .collect();
    // QoS 0 last: the QoS 1 and 2 publishes before it are acknowledged, so the three
    // are routed in this order although each comes from a new connection.
    for q in ["1", "2", "0"] {
        publish(
            &midge,
            &["-q", q, "-t", &format!("qos/{q}"), "-m", &format!("at {q}")],
        );
    }
    let expected = [
        "0 qos/1 at 1\n0 qos/2 at 2\n0 qos/0 at 0\n",
        "1 qos/1 at 1\n1 qos/2 at 2\n0 qos/0 at 0\n",
        "1 qos/1 at 1\n2 qos/2 at 2\n0 qos/0 at 0\n",
    ];
    for (sub, expected) in subs.into_iter().zip(expected) {
        assert_eq!(sub.text(), expected);
    }
}

#[test]
fn will_of_a_killed_client_is_published() {
    let midge = Midge::start();
    let watcher = Sub::start(
        &midge,
        "will-watch",
        "will/#",
        &["-v", "-C", "1", "-t", "will/#"],
    );
    let victim = Sub::start(
        &midge,
        "will-victim",
        "victim/t",
        &[
            "--will-topic",
            "will/victim",
            "--will-payload",
            "killed",
            "--will-qos",
            "1",
            "-t",
            "victim/t",
        ],
    );
    victim.kill();
    assert_eq!(watcher.text(), "will/victim killed\n");
}

#[test]
fn will_is_not_published_when_the_client_disconnects() {
    let midge = Midge::start();
    let watcher = Sub::start(
        &midge,
        "nowill-watch",
        "nowill/#",
        &["-v", "-C", "1", "-t", "nowill/#"],
    );
    // -E: subscribe, then DISCONNECT and exit.
    let polite = Sub::start(
        &midge,
        "nowill-polite",
        "polite/t",
        &[
            "-E",
            "--will-topic",
            "nowill/polite",
            "--will-payload",
            "gone",
            "-t",
            "polite/t",
        ],
    );
    assert_eq!(polite.output(), b"");
    assert!(midge.wait_for_log("Client nowill-polite disconnected."));
    publish(&midge, &["-q", "1", "-t", "nowill/end", "-m", "end"]);
    assert_eq!(watcher.text(), "nowill/end end\n");
}

#[test]
fn persistent_session_receives_what_was_published_while_away() {
    let midge = Midge::start();
    let args = ["-c", "-q", "1", "-v", "-t", "away/#"];
    // -E: subscribe, then disconnect; the session stays.
    let first = Sub::start(&midge, "away", "away/#", &[&args[..], &["-E"]].concat());
    assert_eq!(first.output(), b"");
    assert!(midge.wait_for_log("Client away disconnected."));
    for i in 1..=3 {
        publish(
            &midge,
            &[
                "-q",
                "1",
                "-t",
                &format!("away/{i}"),
                "-m",
                &format!("message {i}"),
            ],
        );
    }
    let back = Sub::start(
        &midge,
        "away",
        "away/#",
        &[&args[..], &["-C", "3"]].concat(),
    );
    assert_eq!(
        back.text(),
        "away/1 message 1\naway/2 message 2\naway/3 message 3\n"
    );
    assert!(
        midge.log().contains("as away (p4, c0,"),
        "the second connection resumed"
    );
}

#[test]
fn mqtt_3_1_and_3_1_1_clients() {
    let midge = Midge::start();
    for (version, level) in [("mqttv31", "p3"), ("mqttv311", "p4")] {
        let sub_id = format!("sub-{version}");
        let topic = format!("version/{version}");
        let sub = Sub::start(
            &midge,
            &sub_id,
            &topic,
            &["-V", version, "-q", "2", "-v", "-C", "2", "-t", &topic],
        );
        let pub_id = format!("pub-{version}");
        publish(
            &midge,
            &[
                "-V", version, "-i", &pub_id, "-q", "1", "-t", &topic, "-m", "one",
            ],
        );
        publish(
            &midge,
            &[
                "-V", version, "-i", &pub_id, "-q", "2", "-t", &topic, "-m", "two",
            ],
        );
        assert_eq!(sub.text(), format!("{topic} one\n{topic} two\n"));
        let log = midge.log();
        for id in [&sub_id, &pub_id] {
            assert!(
                log.contains(&format!("as {id} ({level},")),
                "{id} did not connect with {version}"
            );
        }
    }
}

#[test]
fn payload_of_256_kib_arrives_intact() {
    let midge = Midge::start();
    // Every byte value, in an order that repeats only every 256 KiB.
    let payload: Vec<u8> = (0..256 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let path = unique_temp_path("payload.bin");
    std::fs::write(&path, &payload).unwrap();
    let sub = Sub::start(
        &midge,
        "big-sub",
        "big/t",
        &["-N", "-q", "1", "-C", "1", "-t", "big/t"],
    );
    publish(
        &midge,
        &["-q", "1", "-t", "big/t", "-f", path.to_str().unwrap()],
    );
    let _ = std::fs::remove_file(&path);
    let got = sub.output();
    assert_eq!(got.len(), payload.len());
    assert!(got == payload, "payload differs");
}
