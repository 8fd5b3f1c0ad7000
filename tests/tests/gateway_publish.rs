//! CoAP PUT/POST through midge-gateway, checked with mosquitto_sub: the README's example,
//! QoS and retain options, binary payloads, NON, Content-Format, duplicates, Block1.

use coap_lite::{MessageType, RequestType};
use midge_e2e::gateway::{CoapSocket, Gateway, coap_client, code, con, request, unique_topic};
use midge_e2e::{Midge, MosquittoSub, temp_file, unique_client_id};

/// The README's device's-eye example.
#[test]
fn coap_put_is_seen_by_mosquitto_sub() {
    let midge = Midge::start();
    let gateway = Gateway::start(&midge);
    let id = unique_client_id("watcher");
    let sub = MosquittoSub::start(
        &midge,
        &id,
        "sensors/#",
        &["-t", "sensors/#", "-v", "-C", "1"],
    );
    let run = coap_client(&[
        "-m",
        "put",
        &gateway.uri("ps/sensors/kitchen/temp"),
        "-e",
        "21.5",
    ]);
    assert_eq!(run.code(), "2.04", "{}", run.dump);
    assert_eq!(sub.text(), "sensors/kitchen/temp 21.5\n");
}

/// CON defaults to QoS 1, NON to QoS 0, `qos`/`q` and `retain`/`r` choose; POST and PUT
/// both publish.
#[test]
fn qos_and_retain_options() {
    let midge = Midge::start();
    let gateway = Gateway::start(&midge);
    let topic = unique_topic("gw-qos");
    let id = unique_client_id("qos");
    let sub = MosquittoSub::start(
        &midge,
        &id,
        &topic,
        &["-t", &topic, "-q", "2", "-F", "%q %r %p", "-C", "5"],
    );
    for (method, query, nonconfirmable, payload) in [
        ("put", "", false, "con"),
        ("put", "", true, "non"),
        ("post", "?qos=2", false, "two"),
        ("post", "?q=0", false, "zero"),
        ("put", "?qos=1&retain=true", false, "kept"),
    ] {
        let uri = gateway.uri(&format!("ps/{topic}{query}"));
        let mut args = vec!["-m", method, uri.as_str(), "-e", payload];
        if nonconfirmable {
            args.push("-N");
        }
        let run = coap_client(&args);
        assert_eq!(run.code(), "2.04", "{args:?}: {}", run.dump);
    }
    // A live subscriber sees the retain flag cleared (MQTT 5 Retain As Published off).
    // MQTT orders messages per QoS level only, so compare without order.
    let text = sub.text();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        ["0 0 non", "0 0 zero", "1 0 con", "1 0 kept", "2 0 two"]
    );
    // A new subscriber gets the retained message.
    let later = MosquittoSub::start(
        &midge,
        &unique_client_id("late"),
        &topic,
        &["-t", &topic, "-F", "%r %p", "-C", "1"],
    );
    assert_eq!(later.text(), "1 kept\n");
    // An empty retained message clears it.
    let run = coap_client(&["-m", "put", &gateway.uri(&format!("ps/{topic}?r=true"))]);
    assert_eq!(run.code(), "2.04", "{}", run.dump);
    let get = coap_client(&["-m", "get", &gateway.uri(&format!("ps/{topic}"))]);
    assert_eq!(get.code(), "4.04", "{}", get.dump);
}

/// Every byte value survives CoAP to MQTT unchanged.
#[test]
fn binary_payload_is_byte_exact() {
    let midge = Midge::start();
    let gateway = Gateway::start(&midge);
    let topic = unique_topic("gw-bin");
    let body: Vec<u8> = (0..=255u8).rev().chain(0..=255).collect();
    let file = temp_file("binary", "");
    std::fs::write(&file, &body).unwrap();
    let sub = MosquittoSub::start(
        &midge,
        &unique_client_id("bin"),
        &topic,
        &["-t", &topic, "-N", "-C", "1"],
    );
    let run = coap_client(&[
        "-m",
        "post",
        &gateway.uri(&format!("ps/{topic}")),
        "-f",
        file.to_str().unwrap(),
    ]);
    assert_eq!(run.code(), "2.04", "{}", run.dump);
    assert_eq!(sub.output(), body);
}

/// Content-Format becomes the MQTT 5 Content Type.
#[test]
fn content_format_becomes_content_type() {
    let midge = Midge::start();
    let gateway = Gateway::start(&midge);
    let topic = unique_topic("gw-cf");
    let sub = MosquittoSub::start(
        &midge,
        &unique_client_id("cf"),
        &topic,
        &["-V", "5", "-t", &topic, "-F", "%C %p", "-C", "1"],
    );
    let run = coap_client(&[
        "-m",
        "put",
        "-t",
        "50",
        &gateway.uri(&format!("ps/{topic}")),
        "-e",
        "{\"t\":1}",
    ]);
    assert_eq!(run.code(), "2.04", "{}", run.dump);
    assert_eq!(sub.text(), "application/json {\"t\":1}\n");
}

/// A repeated CON (same Message ID) is answered again but published once.
#[test]
fn duplicate_con_is_published_once() {
    let midge = Midge::start();
    let gateway = Gateway::start(&midge);
    let topic = unique_topic("gw-dup");
    let sub = MosquittoSub::start(
        &midge,
        &unique_client_id("dup"),
        &topic,
        &["-t", &topic, "-C", "2"],
    );
    let coap = CoapSocket::new(&gateway);
    let mut put = con(RequestType::Put, 0x1234, &format!("ps/{topic}"), &[]);
    put.payload = b"once".to_vec();
    let first = coap.exchange(&put);
    assert_eq!(code(&first), "2.04");
    for _ in 0..3 {
        let again = coap.exchange(&put);
        assert_eq!(again, first, "the cached answer");
    }
    let mut next = con(RequestType::Put, 0x1235, &format!("ps/{topic}"), &[]);
    next.payload = b"after".to_vec();
    assert_eq!(code(&coap.exchange(&next)), "2.04");
    assert_eq!(sub.text(), "once\nafter\n");
}

/// NON requests get NON answers.
#[test]
fn non_request_gets_non_response() {
    let midge = Midge::start();
    let gateway = Gateway::start(&midge);
    let coap = CoapSocket::new(&gateway);
    let mut post = request(
        MessageType::NonConfirmable,
        RequestType::Post,
        9,
        &format!("ps/{}", unique_topic("gw-non")),
        &[],
    );
    post.payload = b"x".to_vec();
    let answer = coap.exchange(&post);
    assert_eq!(answer.header.get_type(), MessageType::NonConfirmable);
    assert_eq!(code(&answer), "2.04");
    assert_eq!(answer.get_token(), post.get_token());
}

/// A 4 KB body in 1024-byte Block1 blocks (libcoap: a new token per block, Request-Tag)
/// arrives whole; smaller blocks too.
#[test]
fn block1_upload_of_4_kb() {
    let midge = Midge::start();
    let gateway = Gateway::start(&midge);
    let body: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 256) as u8).collect();
    let file = temp_file("upload", "");
    std::fs::write(&file, &body).unwrap();
    for block in ["1024", "64"] {
        let topic = unique_topic("gw-up");
        let sub = MosquittoSub::start(
            &midge,
            &unique_client_id("up"),
            &topic,
            &["-t", &topic, "-N", "-C", "1"],
        );
        let run = coap_client(&[
            "-m",
            "put",
            "-b",
            block,
            &gateway.uri(&format!("ps/{topic}")),
            "-f",
            file.to_str().unwrap(),
        ]);
        assert_eq!(run.code(), "2.04", "{}", run.dump);
        // libcoap's dump shows the request's first block and the final answer, which
        // names the last block.
        let size: usize = block.parse().unwrap();
        let last = format!("Block1:{}/_/{size}", 4096 / size - 1);
        assert!(run.dump.contains(&last), "no {last} in {}", run.dump);
        assert_eq!(sub.output(), body);
    }
}
