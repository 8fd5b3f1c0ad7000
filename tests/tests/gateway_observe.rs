//! Reading and subscribing through midge-gateway: GET of retained messages, Block2
//! downloads, Observe fed by mosquitto_pub, and the ways a relation ends.

use std::time::Duration;

use coap_lite::{CoapOption, Packet, RequestType};
use midge_e2e::gateway::{
    CoapSocket, Gateway, coap_client, coap_client_command, code, con, unique_topic,
    wait_for_subscription,
};
use midge_e2e::{Midge, temp_file, unique_temp_path};

/// GET returns the retained message, with its Content Type as Content-Format, or 4.04.
#[test]
fn get_returns_the_retained_message() {
    let midge = Midge::start();
    let gateway = Gateway::start(&midge);
    let topic = unique_topic("gw-get");
    let none = coap_client(&["-m", "get", &gateway.uri(&format!("ps/{topic}"))]);
    assert_eq!(none.code(), "4.04", "{}", none.dump);
    midge.mosquitto_pub_ok(&[
        "-V",
        "5",
        "-t",
        &topic,
        "-m",
        "{\"t\":20}",
        "-r",
        "-q",
        "1",
        "-D",
        "publish",
        "content-type",
        "application/json",
    ]);
    let got = coap_client(&["-m", "get", &gateway.uri(&format!("ps/{topic}"))]);
    assert_eq!(got.code(), "2.05", "{}", got.dump);
    assert_eq!(got.payload, b"{\"t\":20}");
    // Content-Format 50 is application/json.
    let coap = CoapSocket::new(&gateway);
    let answer = coap.exchange(&con(RequestType::Get, 1, &format!("ps/{topic}"), &[]));
    assert_eq!(code(&answer), "2.05");
    assert_eq!(
        answer.get_first_option(CoapOption::ContentFormat),
        Some(&vec![50])
    );
}

/// A 4 KB retained message comes back whole through Block2, in the gateway's 1024-byte
/// blocks or in the smaller ones the client asks for.
#[test]
fn block2_download_of_4_kb() {
    let midge = Midge::start();
    let gateway = Gateway::start(&midge);
    let topic = unique_topic("gw-down");
    let body: Vec<u8> = (0..4096u32).map(|i| (i * 13 % 251) as u8).collect();
    let file = temp_file("download", "");
    std::fs::write(&file, &body).unwrap();
    midge.mosquitto_pub_ok(&["-t", &topic, "-f", file.to_str().unwrap(), "-r", "-q", "1"]);
    for block in [None, Some("64")] {
        let mut args = vec!["-m", "get"];
        if let Some(size) = block {
            args.extend(["-b", size]);
        }
        let uri = gateway.uri(&format!("ps/{topic}"));
        args.push(&uri);
        let run = coap_client(&args);
        assert_eq!(run.code(), "2.05", "{}", run.dump);
        let blocks = 4096 / block.map_or(1024, |b| b.parse().unwrap());
        assert_eq!(run.codes.len(), blocks, "{}", run.dump);
        assert_eq!(run.payload, body, "block size {block:?}");
    }
}

/// coap-client observes a topic for a while; every mosquitto_pub message arrives, in
/// order, and at the end coap-client's Observe: 1 ends the relation.
#[test]
fn observe_receives_mosquitto_pub_messages_in_order() {
    let midge = Midge::start();
    let gateway = Gateway::start(&midge);
    let topic = unique_topic("gw-obs");
    midge.mosquitto_pub_ok(&["-t", &topic, "-m", "m0", "-r"]);
    let out = unique_temp_path("observe-out");
    let mut client = coap_client_command(
        &[
            "-m",
            "get",
            "-s",
            // Long enough for five mosquitto_pub runs on a loaded machine.
            "5",
            "-w",
            &gateway.uri(&format!("ps/{topic}")),
        ],
        &out,
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .expect("run coap-client-notls");
    wait_for_subscription(&midge, &topic);
    // One QoS: MQTT orders messages per QoS level only, and the gateway sends NON
    // notifications (QoS 0) at once but CON ones one at a time.
    for i in 1..=5 {
        midge.mosquitto_pub_ok(&["-t", &topic, "-m", &format!("m{i}"), "-q", "1"]);
    }
    assert!(client.wait().unwrap().success());
    let text = String::from_utf8(std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(text, "m0\nm1\nm2\nm3\nm4\nm5\n", "the retained value first");
    // coap-client ended the relation with Observe: 1 on its token.
    assert!(
        gateway.wait_for_log(&format!("relation on {topic} of Peer(")),
        "{}",
        gateway.log()
    );
    assert!(
        gateway.wait_for_log("ended: Observe with its token"),
        "{}",
        gateway.log()
    );
}

fn observe(mid: u16, path: &str, value: u32, token: &[u8]) -> Packet {
    let mut p = con(RequestType::Get, mid, path, &[]);
    p.set_token(token.to_vec());
    p.set_observe_value(value);
    p
}

fn observe_value(p: &Packet) -> Option<u32> {
    p.get_observe_value().and_then(Result::ok)
}

/// A relation on a wildcard names each concrete topic in Location-Path; Observe: 1 ends
/// it, and then nothing more arrives.
#[test]
fn wildcard_relation_and_cancel_with_observe_1() {
    let midge = Midge::start();
    let gateway = Gateway::start(&midge);
    let base = unique_topic("gw-wild");
    let coap = CoapSocket::new(&gateway);
    let path = format!("ps/{base}/%23");
    // The client decodes %23 before sending; so does this one.
    let path_decoded = format!("ps/{base}/#");
    let first = coap.exchange(&observe(1, &path_decoded, 0, b"w1"));
    assert_eq!(code(&first), "2.05", "{first:?} for {path}");
    assert!(observe_value(&first).is_some());
    midge.mosquitto_pub_ok(&["-t", &format!("{base}/kitchen/temp"), "-m", "21", "-q", "0"]);
    let n = coap.recv();
    assert_eq!(
        (code(&n), &n.payload[..], n.get_token()),
        ("2.05".into(), &b"21"[..], &b"w1"[..])
    );
    let location: Vec<String> = n
        .get_option(CoapOption::LocationPath)
        .expect("Location-Path on a wildcard notification")
        .iter()
        .map(|s| String::from_utf8(s.clone()).unwrap())
        .collect();
    let mut expected = vec!["ps".to_owned()];
    expected.extend(base.split('/').map(str::to_owned));
    expected.extend(["kitchen".into(), "temp".into()]);
    assert_eq!(location, expected);
    assert!(observe_value(&n) > observe_value(&first));
    // Deregister: the answer has no Observe option.
    let end = coap.exchange(&observe(2, &path_decoded, 1, b"w1"));
    assert_eq!(code(&end), "2.05");
    assert_eq!(observe_value(&end), None);
    midge.mosquitto_pub_ok(&["-t", &format!("{base}/kitchen/temp"), "-m", "22"]);
    assert!(
        coap.try_recv(Duration::from_millis(500)).is_none(),
        "notified after cancel"
    );
}

/// An RST in answer to a confirmable notification ends the relation.
#[test]
fn rst_ends_the_relation() {
    let midge = Midge::start();
    let gateway = Gateway::start(&midge);
    let topic = unique_topic("gw-rst");
    let coap = CoapSocket::new(&gateway);
    let first = coap.exchange(&observe(1, &format!("ps/{topic}"), 0, b"r"));
    assert_eq!(code(&first), "2.05");
    assert!(first.payload.is_empty(), "nothing retained yet");
    midge.mosquitto_pub_ok(&["-t", &topic, "-m", "a", "-q", "1"]);
    let n = coap.recv();
    assert_eq!(n.header.get_type(), coap_lite::MessageType::Confirmable);
    assert_eq!(n.payload, b"a");
    coap.reset(&n);
    assert!(gateway.wait_for_log("ended: RST"), "{}", gateway.log());
    midge.mosquitto_pub_ok(&["-t", &topic, "-m", "b", "-q", "1"]);
    assert!(
        coap.try_recv(Duration::from_millis(500)).is_none(),
        "notified after RST"
    );
}

/// Unacknowledged confirmable notifications are sent again (same Message ID) with
/// growing gaps; an ACK stops that and lets the next one go.
#[test]
fn confirmable_notifications_are_retransmitted_until_acknowledged() {
    let midge = Midge::start();
    let gateway = Gateway::start(&midge);
    let topic = unique_topic("gw-retx");
    let coap = CoapSocket::new(&gateway);
    assert_eq!(
        code(&coap.exchange(&observe(1, &format!("ps/{topic}"), 0, b"x"))),
        "2.05"
    );
    midge.mosquitto_pub_ok(&["-t", &topic, "-m", "one", "-q", "1"]);
    midge.mosquitto_pub_ok(&["-t", &topic, "-m", "two", "-q", "1"]);
    let n = coap.recv();
    assert_eq!(n.payload, b"one");
    let start = std::time::Instant::now();
    let again = coap.recv();
    let gap = start.elapsed();
    assert_eq!(again, n, "the same message again");
    // ACK_TIMEOUT 2 s with a random factor up to 1.5 (3 s), plus slack for a busy machine;
    // the next retransmission would come twice as late.
    assert!(
        gap >= Duration::from_millis(1800) && gap <= Duration::from_millis(4000),
        "{gap:?}"
    );
    coap.ack(&again);
    let next = coap.recv();
    assert_eq!(
        next.payload, b"two",
        "held back until the first was acknowledged"
    );
    coap.ack(&next);
}

/// `/.well-known/core` describes `/ps` in link format.
#[test]
fn well_known_core() {
    let midge = Midge::start();
    let gateway = Gateway::start(&midge);
    let run = coap_client(&["-m", "get", &gateway.uri(".well-known/core")]);
    assert_eq!(run.code(), "2.05", "{}", run.dump);
    let text = String::from_utf8(run.payload).unwrap();
    assert!(text.contains("</ps>;rt=\"core.ps\";ct=0;obs"), "{text}");
}
