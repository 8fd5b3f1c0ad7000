//! Malformed packets and packets the protocol forbids: each closes the offending
//! connection (MQTT 3.1.1 section 4.8: the server closes the Network Connection, and sends
//! nothing first unless a CONNACK return code exists for the case), while a client already
//! connected keeps working and the broker keeps running.

use std::time::Duration;

use midge_e2e::{Midge, RawClient, frame};
use midge_wire::{Packet, QoS};

/// A length-prefixed string of raw bytes (which need not be valid UTF-8).
fn string(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// A PUBLISH with a raw topic: `first_byte` carries QoS and flags, `packet_id` is written
/// when given.
fn publish(first_byte: u8, topic: &[u8], packet_id: Option<u16>) -> Vec<u8> {
    let mut body = string(topic);
    if let Some(id) = packet_id {
        body.extend_from_slice(&id.to_be_bytes());
    }
    body.extend_from_slice(b"payload");
    frame(first_byte, &body)
}

/// A SUBSCRIBE (first byte `first_byte`, packet id 1) for raw filters at QoS 0.
fn subscribe(first_byte: u8, filters: &[&[u8]]) -> Vec<u8> {
    let mut body = 1u16.to_be_bytes().to_vec();
    for filter in filters {
        body.extend_from_slice(&string(filter));
        body.push(0);
    }
    frame(first_byte, &body)
}

/// A CONNECT with a raw protocol name, level and flags, keep-alive 60 and client id "v".
fn connect(name: &[u8], level: u8, flags: u8) -> Vec<u8> {
    let mut body = string(name);
    body.extend_from_slice(&[level, flags, 0, 60]);
    body.extend_from_slice(&string(b"v"));
    frame(0x10, &body)
}

/// What the offending client does before the bad bytes.
#[derive(Clone, Copy, PartialEq)]
enum Before {
    /// Nothing: the bad bytes are the first thing on the connection.
    Nothing,
    /// A valid 3.1.1 CONNECT, answered by CONNACK.
    Connect,
}

/// Sends `bytes` from a new client and checks that midge answers `reply` (nothing at all
/// when empty) and closes that connection, that a client connected before still gets a
/// message from a client connecting after, and that midge is still running.
fn assert_closes_only_the_offender(before: Before, bytes: &[u8], reply: &[u8]) {
    let mut midge = Midge::start();
    let mut bystander = RawClient::connected(midge.port(), "bystander");
    bystander.subscribe("alive/#", QoS::AtLeastOnce);

    let mut offender = if before == Before::Connect {
        RawClient::connected(midge.port(), "offender")
    } else {
        RawClient::connect(midge.port())
    };
    offender.send(bytes);
    if !reply.is_empty() {
        assert_eq!(
            offender.recv_frame().as_deref(),
            Some(reply),
            "reply to {bytes:02x?}"
        );
    }
    assert_eq!(
        offender.recv_frame(),
        None,
        "connection not closed after {bytes:02x?}"
    );

    let mut publisher = RawClient::connected(midge.port(), "publisher");
    publisher.publish("alive/after", b"still here", QoS::AtLeastOnce, false);
    let p = bystander.recv_publish();
    assert_eq!(
        (&p.topic[..], &p.payload[..]),
        ("alive/after", &b"still here"[..])
    );
    assert!(midge.is_running());
}

#[test]
fn first_packet_pingreq_instead_of_connect() {
    // [MQTT-3.1.0-1]: the first packet must be CONNECT.
    assert_closes_only_the_offender(Before::Nothing, &[0xc0, 0], &[]);
}

#[test]
fn first_packet_publish_instead_of_connect() {
    assert_closes_only_the_offender(Before::Nothing, &publish(0x30, b"t", None), &[]);
}

#[test]
fn second_connect() {
    // [MQTT-3.1.0-2]: a second CONNECT is a protocol violation.
    let connect = midge_e2e::connect_packet("offender");
    let bytes = midge_e2e::encode(connect.version, &Packet::Connect(connect));
    assert_closes_only_the_offender(Before::Connect, &bytes, &[]);
}

#[test]
fn unsupported_protocol_level_is_refused_with_return_code_1() {
    // [MQTT-3.1.2-2]: CONNACK 0x01 (unacceptable protocol version), then close.
    assert_closes_only_the_offender(
        Before::Nothing,
        &connect(b"MQTT", 7, 0x02),
        &[0x20, 2, 0, 1],
    );
}

#[test]
fn unknown_protocol_name() {
    // [MQTT-3.1.2-1]: the server may close without CONNACK.
    assert_closes_only_the_offender(Before::Nothing, &connect(b"MQTX", 4, 0x02), &[]);
}

#[test]
fn connect_reserved_flag_set() {
    // [MQTT-3.1.2-3]: the reserved CONNECT flag must be 0.
    assert_closes_only_the_offender(Before::Nothing, &connect(b"MQTT", 4, 0x03), &[]);
}

#[test]
fn pubrel_with_reserved_flags_0x63() {
    // [MQTT-3.6.1-1]: PUBREL's flags are 0010.
    assert_closes_only_the_offender(Before::Connect, &[0x63, 2, 0, 1], &[]);
}

#[test]
fn subscribe_with_reserved_flags_0x80() {
    // [MQTT-3.8.1-1]: SUBSCRIBE's flags are 0010.
    assert_closes_only_the_offender(Before::Connect, &subscribe(0x80, &[b"a"]), &[]);
}

#[test]
fn pingreq_with_reserved_flags_0xc1() {
    // [MQTT-2.2.2-2]: flags marked reserved must be as the table says.
    assert_closes_only_the_offender(Before::Connect, &[0xc1, 0], &[]);
}

#[test]
fn publish_with_qos_3() {
    // [MQTT-3.3.1-4]: both QoS bits set is malformed.
    assert_closes_only_the_offender(Before::Connect, &publish(0x36, b"t", Some(1)), &[]);
}

#[test]
fn remaining_length_over_four_bytes() {
    // Section 2.2.3: at most four bytes of remaining length.
    assert_closes_only_the_offender(Before::Connect, &[0x30, 0xff, 0xff, 0xff, 0xff, 0x7f], &[]);
}

#[test]
fn invalid_utf8_in_publish_topic() {
    // [MQTT-1.5.3-1]: ill-formed UTF-8 closes the connection.
    assert_closes_only_the_offender(Before::Connect, &publish(0x30, b"a/\xc3\x28", None), &[]);
}

#[test]
fn null_character_in_publish_topic() {
    // [MQTT-1.5.3-2]: U+0000 is not allowed in a string.
    assert_closes_only_the_offender(Before::Connect, &publish(0x30, b"a\0b", None), &[]);
}

#[test]
fn plus_wildcard_in_publish_topic() {
    // [MQTT-3.3.2-2]: a topic name must not contain wildcards.
    assert_closes_only_the_offender(Before::Connect, &publish(0x30, b"alive/+", None), &[]);
}

#[test]
fn hash_wildcard_in_publish_topic() {
    assert_closes_only_the_offender(Before::Connect, &publish(0x32, b"alive/#", Some(1)), &[]);
}

#[test]
fn qos1_publish_with_packet_id_0() {
    // [MQTT-2.3.1-1]: packet identifiers are non-zero.
    assert_closes_only_the_offender(Before::Connect, &publish(0x32, b"alive/x", Some(0)), &[]);
}

#[test]
fn subscribe_with_invalid_filter() {
    // [MQTT-4.7.1-2]: '#' must be the last level of a filter.
    assert_closes_only_the_offender(Before::Connect, &subscribe(0x82, &[b"a/#/b"]), &[]);
}

#[test]
fn subscribe_without_filters() {
    // [MQTT-3.8.3-3]: a SUBSCRIBE carries at least one filter.
    assert_closes_only_the_offender(Before::Connect, &subscribe(0x82, &[]), &[]);
}

#[test]
fn garbage_instead_of_connect() {
    assert_closes_only_the_offender(
        Before::Nothing,
        b"GET / HTTP/1.1\r\nHost: midge\r\n\r\n",
        &[],
    );
}

#[test]
fn reserved_packet_type_0_after_connect() {
    assert_closes_only_the_offender(Before::Connect, &[0x00, 0x00], &[]);
}

#[test]
fn packet_type_15_after_a_3_1_1_connect() {
    // AUTH exists in MQTT 5 only; in 3.1.1 type 15 is reserved.
    assert_closes_only_the_offender(Before::Connect, &[0xf0, 0x00], &[]);
}

#[test]
fn connection_without_connect_is_closed_after_the_connect_timeout() {
    let mut midge = Midge::start();
    let mut silent = RawClient::connect(midge.port());
    assert!(
        !silent.is_closed_within(Duration::from_secs(1)),
        "closed within a second"
    );
    // midge's connect timeout is 10 s (Mosquitto: about as long).
    assert!(
        silent.is_closed_within(Duration::from_secs(14)),
        "still open after 15 s"
    );
    assert!(midge.is_running());
}
