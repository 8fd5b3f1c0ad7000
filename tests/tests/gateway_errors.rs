//! Every error the gateway answers with, and bad input it must survive: each checked
//! with a raw CoAP socket (coap-client exits 0 on errors and cannot send malformed data).

use std::time::Duration;

use coap_lite::{CoapOption, MessageType, Packet, RequestType};
use midge_e2e::gateway::{CoapSocket, Gateway, coap_client, code, con, unique_topic};
use midge_e2e::{Midge, MosquittoSub, password_file, temp_file, unique_client_id};

fn answer(coap: &CoapSocket, packet: &Packet) -> String {
    let response = coap.exchange(packet);
    assert_eq!(response.header.get_type(), MessageType::Acknowledgement);
    assert_eq!(response.header.message_id, packet.header.message_id);
    assert_eq!(response.get_token(), packet.get_token());
    code(&response)
}

#[test]
fn request_errors() {
    let midge = Midge::start();
    let gateway = Gateway::start(&midge);
    let coap = CoapSocket::new(&gateway);
    let mut critical = con(RequestType::Put, 6, "ps/a", &[]);
    critical.add_option(CoapOption::Unknown(2049), b"?".to_vec());
    let mut if_match = con(RequestType::Put, 7, "ps/a", &[]);
    if_match.add_option(CoapOption::IfMatch, vec![1]);
    let mut proxy = con(RequestType::Get, 8, "ps/a", &[]);
    proxy.add_option(CoapOption::ProxyUri, b"coap://elsewhere/x".to_vec());
    let mut bad_block = con(RequestType::Put, 13, "ps/a", &[]);
    bad_block.add_option(CoapOption::Block1, vec![0x07]);
    let cases = [
        (
            con(RequestType::Put, 1, "ps/a/+", &[]),
            "4.00",
            "wildcard on publish",
        ),
        (
            con(RequestType::Post, 2, "ps/a/#", &[]),
            "4.00",
            "wildcard on publish",
        ),
        (con(RequestType::Put, 3, "ps", &[]), "4.00", "empty topic"),
        (
            con(RequestType::Put, 4, "ps/a", &["qos=3"]),
            "4.00",
            "bad qos",
        ),
        (
            con(RequestType::Put, 5, "ps/a", &["retain=yes"]),
            "4.00",
            "bad retain",
        ),
        (critical, "4.02", "unknown critical option"),
        (if_match, "4.02", "If-Match is not supported"),
        (proxy, "5.05", "Proxy-Uri"),
        (
            con(RequestType::Get, 9, "mqtt/a", &[]),
            "4.04",
            "unknown path",
        ),
        (con(RequestType::Get, 10, "", &[]), "4.04", "root"),
        (con(RequestType::Delete, 11, "ps/a", &[]), "4.05", "DELETE"),
        (
            con(RequestType::Put, 12, ".well-known/core", &[]),
            "4.05",
            "PUT on core",
        ),
        (bad_block, "4.00", "reserved block size"),
        (
            con(RequestType::Get, 14, "ps/a/+", &[]),
            "4.00",
            "wildcard GET without Observe",
        ),
    ];
    for (packet, expected, what) in cases {
        assert_eq!(answer(&coap, &packet), expected, "{what}");
    }
}

/// Block1 blocks out of order: 4.08.
#[test]
fn block1_out_of_order() {
    let midge = Midge::start();
    let gateway = Gateway::start(&midge);
    let coap = CoapSocket::new(&gateway);
    let mut late = con(RequestType::Put, 1, "ps/up", &[]);
    late.add_option(CoapOption::Block1, vec![0x2a]); // block 2, more, 64 bytes
    late.payload = vec![0; 64];
    assert_eq!(answer(&coap, &late), "4.08");
}

/// Bodies over `max_body` (set in a config file): 4.13 with Size1, whole or block-wise.
#[test]
fn too_large_bodies() {
    let midge = Midge::start();
    let config = temp_file(
        "gateway.toml",
        &format!("broker = \"127.0.0.1:{}\"\nmax_body = 2048\n", midge.port()),
    );
    let gateway = Gateway::start_with(&["--config", config.to_str().unwrap()]);
    let coap = CoapSocket::new(&gateway);
    let mut big = con(RequestType::Put, 1, "ps/big", &[]);
    big.payload = vec![1; 3000];
    let response = coap.exchange(&big);
    assert_eq!(code(&response), "4.13");
    assert_eq!(
        response.get_first_option(CoapOption::Size1),
        Some(&2048u16.to_be_bytes().to_vec())
    );
    let file = temp_file("big-upload", "");
    std::fs::write(&file, vec![2u8; 4096]).unwrap();
    let run = coap_client(&[
        "-m",
        "put",
        "-b",
        "512",
        &gateway.uri("ps/big"),
        "-f",
        file.to_str().unwrap(),
    ]);
    assert_eq!(run.code(), "4.13", "{}", run.dump);
}

/// An empty CON is a ping: answered with RST. Malformed datagrams get an RST (CON) or
/// nothing, and the gateway keeps serving.
#[test]
fn ping_and_malformed_datagrams() {
    let midge = Midge::start();
    let mut gateway = Gateway::start(&midge);
    let coap = CoapSocket::new(&gateway);
    coap.send(&[0x40, 0x00, 0xbe, 0xef]);
    let rst = coap.recv();
    assert_eq!(rst.header.get_type(), MessageType::Reset);
    assert_eq!(rst.header.message_id, 0xbeef);
    // A truncated option in a CON: RST.
    coap.send(&[0x40, 0x03, 0x00, 0x07, 0xbd]);
    let rst = coap.recv();
    assert_eq!(
        (rst.header.get_type(), rst.header.message_id),
        (MessageType::Reset, 7)
    );
    // Garbage, a wrong version, a huge token length, a lone byte, an empty datagram: silence.
    for junk in [
        &[0xff; 40][..],
        &[0x80, 0x01, 0, 1],
        &[0x5f, 0x01, 0, 2, 1, 2],
        &[0x40],
        &[],
    ] {
        coap.send(junk);
    }
    assert!(coap.try_recv(Duration::from_millis(300)).is_none());
    // Still serving.
    let topic = unique_topic("gw-after-junk");
    let sub = MosquittoSub::start(
        &midge,
        &unique_client_id("junk"),
        &topic,
        &["-t", &topic, "-C", "1"],
    );
    let mut put = con(RequestType::Put, 9, &format!("ps/{topic}"), &[]);
    put.payload = b"fine".to_vec();
    assert_eq!(answer(&coap, &put), "2.04");
    assert_eq!(sub.text(), "fine\n");
    assert!(gateway.is_running());
}

/// No broker: 5.03 with Max-Age; once the broker is there, the same gateway serves.
#[test]
fn broker_unreachable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let gateway = Gateway::start_with(&["--broker", &format!("127.0.0.1:{port}")]);
    let coap = CoapSocket::new(&gateway);
    let put = con(RequestType::Put, 1, "ps/x", &[]);
    let response = coap.exchange(&put);
    assert_eq!(response.header.message_id, put.header.message_id);
    assert_eq!(code(&response), "5.03");
    assert!(response.get_first_option(CoapOption::MaxAge).is_some());
    let observe = {
        let mut p = con(RequestType::Get, 2, "ps/x", &[]);
        p.set_observe_value(0);
        p
    };
    assert_eq!(answer(&coap, &observe), "5.03");
    // The broker comes up (midge takes a second --bind): the next request connects.
    let midge = Midge::start_with(&["--bind", &format!("127.0.0.1:{port}")]);
    let topic = unique_topic("gw-back");
    let sub = MosquittoSub::start(
        &midge,
        &unique_client_id("back"),
        &topic,
        &["-t", &topic, "-C", "1"],
    );
    let mut put = con(RequestType::Put, 3, &format!("ps/{topic}"), &[]);
    put.payload = b"back".to_vec();
    assert_eq!(answer(&coap, &put), "2.04");
    assert_eq!(sub.text(), "back\n");
}

const ACL: &str = "user alice\ntopic write sensors/alice/#\ntopic read sensors/alice/#\n";

/// Devices' credentials are checked by the broker: a wrong password is 4.01, a topic
/// the ACL refuses is 4.03 (for publish and for Observe), allowed topics work.
#[test]
fn credentials_and_acl() {
    let passwd = password_file(&[("alice", "secret")]);
    let acl = temp_file("acl", ACL);
    let midge = Midge::start_with_config(&format!(
        "allow_anonymous false\npassword_file {}\nacl_file {}\n",
        passwd.display(),
        acl.display()
    ));
    let gateway = Gateway::start(&midge);
    let coap = CoapSocket::new(&gateway);
    let alice = ["clientid=dev-alice", "u=alice", "p=secret"];
    let mut mid = 0;
    let mut put = |path: &str, query: &[&str]| {
        mid += 1;
        let mut p = con(RequestType::Put, mid, path, query);
        p.payload = b"v".to_vec();
        answer(&coap, &p)
    };
    assert_eq!(put("ps/sensors/alice/t", &[]), "4.01", "anonymous");
    assert_eq!(
        put("ps/sensors/alice/t", &["u=alice", "p=wrong"]),
        "4.01",
        "wrong password"
    );
    assert_eq!(put("ps/sensors/alice/t", &alice), "2.04");
    assert_eq!(put("ps/sensors/bob/t", &alice), "4.03", "ACL");
    assert_eq!(
        put("ps/sensors/bob/t", &[&alice[..], &["qos=2"]].concat()),
        "4.03",
        "ACL, QoS 2"
    );
    let mut observe = con(RequestType::Get, 100, "ps/sensors/bob/#", &alice);
    observe.set_observe_value(0);
    assert_eq!(answer(&coap, &observe), "4.03", "ACL on Observe");
    let mut observe = con(RequestType::Get, 101, "ps/sensors/alice/#", &alice);
    observe.set_observe_value(0);
    assert_eq!(answer(&coap, &observe), "2.05");
}

/// A device's own broker connection closes (DISCONNECT) once idle, and the next request
/// opens a new one.
#[test]
fn idle_device_connections_close_and_reopen() {
    let midge = Midge::start();
    let config = temp_file(
        "gateway-idle.toml",
        &format!(
            "broker = \"127.0.0.1:{}\"\nlink_idle_secs = 1\n",
            midge.port()
        ),
    );
    let gateway = Gateway::start_with(&["--config", config.to_str().unwrap()]);
    let coap = CoapSocket::new(&gateway);
    let device = unique_client_id("sleepy");
    let query = format!("c={device}");
    let mut put = con(RequestType::Put, 1, "ps/sleepy", &[&query]);
    put.payload = b"1".to_vec();
    assert_eq!(answer(&coap, &put), "2.04");
    assert!(
        midge.wait_for_log(&format!("Client {device} disconnected.")),
        "{}",
        midge.log()
    );
    put.header.message_id = 2;
    assert_eq!(answer(&coap, &put), "2.04");
    assert!(midge.wait_for_log_count(&format!("as {device} "), 2));
}
