//! Byte-exact test vectors from the MQTT 3.1.1 (OASIS, 2014) and MQTT 5.0 (OASIS, 2019)
//! specifications: their worked ("non normative") examples, completed where an example
//! shows only part of a packet, and packets laid out by the normative field tables.
//!
//! Every vector is decoded with [`midge_wire::decode`], every field of the result is
//! checked (by comparing with a hand-built packet), the decoded packet and the hand-built
//! one are both re-encoded and must give the vector back byte for byte, and every strict
//! prefix of the vector must decode to [`Decoded::Incomplete`].

use std::collections::BTreeSet;

use midge_wire::{
    Ack, Auth, Connack, Connect, DecodeOptions, Decoded, Disconnect, EncodeError, FixedHeader,
    List, MAX_PACKET_SIZE, MAX_VARINT, Packet, PacketType, Properties, Property, PropertyId,
    ProtocolVersion, Publish, QoS, QosPid, ReasonCode, RetainHandling, Suback, Subscribe,
    Subscription, SubscriptionOptions, Unsuback, Unsubscribe, Will, decode, varint_len,
};

use ProtocolVersion::{V3_1, V3_1_1, V5};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn opts(version: ProtocolVersion) -> DecodeOptions {
    DecodeOptions {
        version,
        ..DecodeOptions::default()
    }
}

/// Bytes of the fixed header of a well-formed vector: the first byte and the remaining
/// length (a Variable Byte Integer ending at the first byte below 0x80).
fn fixed_header_len(bytes: &[u8]) -> usize {
    let varint = bytes[1..]
        .iter()
        .position(|b| b & 0x80 == 0)
        .expect("vector has a complete remaining length");
    1 + varint + 1
}

/// Encodes `packet` and checks that it is exactly `expected`, that `encoded_len` agrees and
/// that a buffer one byte short is refused.
fn assert_encodes_to(packet: &Packet<'_>, version: ProtocolVersion, expected: &[u8]) {
    assert_eq!(
        packet.encoded_len(version),
        Ok(expected.len()),
        "encoded_len of {packet:?}"
    );
    let mut buf = vec![0xAA; expected.len() + 16];
    let n = packet
        .encode(version, &mut buf)
        .unwrap_or_else(|e| panic!("encode {packet:?}: {e:?}"));
    assert_eq!(&buf[..n], expected, "encoding of {packet:?}");
    assert!(
        buf[n..].iter().all(|&b| b == 0xAA),
        "encode wrote past the packet"
    );
    let short = expected.len() - 1;
    assert_eq!(
        packet.encode(version, &mut buf[..short]),
        Err(EncodeError::BufferTooSmall {
            needed: expected.len()
        })
    );
}

/// Every strict prefix is incomplete: `frame_len` is unknown until the fixed header is in,
/// then it is the whole vector's length.
fn assert_prefixes_incomplete(bytes: &[u8], version: ProtocolVersion) {
    let header = fixed_header_len(bytes);
    for cut in 0..bytes.len() {
        let expected = if cut < header {
            None
        } else {
            Some(bytes.len())
        };
        assert_eq!(
            decode(&bytes[..cut], &opts(version)),
            Ok(Decoded::Incomplete {
                frame_len: expected
            }),
            "prefix of {cut} bytes of {bytes:02x?}"
        );
    }
}

/// Decodes a complete vector, checking that it takes exactly all the bytes (also when
/// another packet follows it), that it re-encodes to the same bytes and that its prefixes
/// are incomplete. Returns the packet for the caller to check field by field.
fn decode_vector(bytes: &[u8], version: ProtocolVersion) -> Packet<'_> {
    let packet = match decode(bytes, &opts(version)) {
        Ok(Decoded::Complete { packet, len }) => {
            assert_eq!(len, bytes.len(), "length of {packet:?}");
            packet
        }
        other => panic!("{bytes:02x?} ({version:?}) decoded to {other:?}"),
    };
    let header = FixedHeader::parse(bytes, version, MAX_PACKET_SIZE as u32)
        .expect("fixed header")
        .expect("complete fixed header");
    assert_eq!(header.packet_type, packet.packet_type());
    assert_eq!(header.flags, bytes[0] & 0x0f);
    assert_eq!(header.header_len, fixed_header_len(bytes));
    assert_eq!(header.frame_len(), bytes.len());

    assert_encodes_to(&packet, version, bytes);
    assert_prefixes_incomplete(bytes, version);

    // A stream: the vector followed by a PINGREQ decodes to the vector alone.
    let mut stream = bytes.to_vec();
    stream.extend_from_slice(&[0xC0, 0x00]);
    match decode(&stream, &opts(version)) {
        Ok(Decoded::Complete { packet: again, len }) => {
            assert_eq!(len, bytes.len());
            assert_eq!(again, packet);
        }
        other => panic!("{bytes:02x?} followed by PINGREQ decoded to {other:?}"),
    }
    packet
}

/// Decodes `bytes`, checks the result equals `expected` field by field and that both the
/// decoded and the hand-built packet encode back to `bytes`.
fn check_vector(bytes: &[u8], version: ProtocolVersion, expected: &Packet<'_>) {
    let decoded = decode_vector(bytes, version);
    assert_eq!(&decoded, expected, "decoded {bytes:02x?}");
    assert_encodes_to(expected, version, bytes);
}

/// `Packet::Puback` and friends, as functions.
type MakeAck = fn(Ack<'static>) -> Packet<'static>;

fn property_ids(properties: &Properties<'_>) -> Vec<PropertyId> {
    properties.iter().map(|p| p.id()).collect()
}

// ---------------------------------------------------------------------------------------
// MQTT 3.1.1
// ---------------------------------------------------------------------------------------

/// MQTT 3.1.1 §3.1.2.10, "Variable header non normative example": protocol name "MQTT",
/// level 4, Connect Flags 0xCE (User Name, Password, Will QoS 1, Will Flag, Clean Session),
/// Keep Alive 10. The payload follows §3.1.3: Client Identifier, Will Topic, Will Message,
/// User Name, Password.
const V311_CONNECT: [u8; 39] = [
    0x10, 37, // CONNECT, remaining length 37
    0x00, 0x04, b'M', b'Q', b'T', b'T', // Protocol Name
    0x04, // Protocol Level 4
    0xCE, // Connect Flags 1100 1110
    0x00, 0x0A, // Keep Alive 10
    0x00, 0x03, b'c', b'i', b'd', // Client Identifier
    0x00, 0x03, b'w', b'/', b't', // Will Topic
    0x00, 0x03, b'b', b'y', b'e', // Will Message
    0x00, 0x04, b'u', b's', b'e', b'r', // User Name
    0x00, 0x04, b'p', b'a', b's', b's', // Password
];

#[test]
fn v311_connect_variable_header_example_with_will_username_password() {
    let expected = Packet::Connect(Connect {
        version: V3_1_1,
        clean_start: true,
        keep_alive: 10,
        properties: Properties::EMPTY,
        client_id: "cid",
        will: Some(Will {
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Properties::EMPTY,
            topic: "w/t",
            payload: b"bye",
        }),
        username: Some("user"),
        password: Some(b"pass"),
    });
    check_vector(&V311_CONNECT, V3_1_1, &expected);
    // CONNECT carries its own version: the connection's version does not matter to it.
    for version in [V3_1, V5] {
        let Ok(Decoded::Complete { packet, .. }) = decode(&V311_CONNECT, &opts(version)) else {
            panic!("CONNECT under {version:?}");
        };
        assert_eq!(packet, expected);
        assert_encodes_to(&packet, version, &V311_CONNECT);
    }
}

/// MQTT 3.1.1 §3.1.2.2–§3.1.2.9: the smallest CONNECT, Clean Session only, an empty Client
/// Identifier (allowed with Clean Session, §3.1.3.1) and Keep Alive 0 (off, §3.1.2.10).
#[test]
fn v311_connect_minimal_empty_client_id() {
    let bytes = [
        0x10, 12, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x00, 0x00, 0x00,
    ];
    check_vector(
        &bytes,
        V3_1_1,
        &Packet::Connect(Connect {
            version: V3_1_1,
            clean_start: true,
            keep_alive: 0,
            properties: Properties::EMPTY,
            client_id: "",
            will: None,
            username: None,
            password: None,
        }),
    );
}

/// MQTT 3.1 (protocol name "MQIsdp", level 3; referenced by 3.1.1 §3.1.2.2 as the previous
/// level): will QoS 2 with Will Retain, an empty will message, user name and password.
const V31_CONNECT: [u8; 30] = [
    0x10, 28, // CONNECT, remaining length 28
    0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', // Protocol Name "MQIsdp"
    0x03, // Protocol Level 3
    0xF6, // User Name, Password, Will Retain, Will QoS 2, Will Flag, Clean Session
    0x00, 0x3C, // Keep Alive 60
    0x00, 0x03, b'c', b'3', b'1', // Client Identifier
    0x00, 0x01, b'w', // Will Topic
    0x00, 0x00, // empty Will Message
    0x00, 0x01, b'u', // User Name
    0x00, 0x01, b'p', // Password
];

#[test]
fn v31_mqisdp_connect() {
    check_vector(
        &V31_CONNECT,
        V3_1,
        &Packet::Connect(Connect {
            version: V3_1,
            clean_start: true,
            keep_alive: 60,
            properties: Properties::EMPTY,
            client_id: "c31",
            will: Some(Will {
                qos: QoS::ExactlyOnce,
                retain: true,
                properties: Properties::EMPTY,
                topic: "w",
                payload: b"",
            }),
            username: Some("u"),
            password: Some(b"p"),
        }),
    );
}

/// MQTT 3.1.1 §3.2: CONNACK, remaining length 2, Session Present 0, return code 0.
#[test]
fn v311_connack_accepted() {
    check_vector(
        &[0x20, 0x02, 0x00, 0x00],
        V3_1_1,
        &Packet::Connack(Connack {
            session_present: false,
            reason: ReasonCode::Success,
            properties: Properties::EMPTY,
        }),
    );
    // §3.2.2.2: Session Present is bit 0 of the Connect Acknowledge Flags.
    check_vector(
        &[0x20, 0x02, 0x01, 0x00],
        V3_1_1,
        &Packet::Connack(Connack {
            session_present: true,
            reason: ReasonCode::Success,
            properties: Properties::EMPTY,
        }),
    );
}

/// MQTT 3.1.1 §3.2.2.3, Table 3.1: Connect Return code values 0–5.
#[test]
fn v311_connack_return_codes_map_to_reason_codes() {
    let table = [
        (0x00, ReasonCode::Success),
        (0x01, ReasonCode::UnsupportedProtocolVersion),
        (0x02, ReasonCode::ClientIdentifierNotValid),
        (0x03, ReasonCode::ServerUnavailable),
        (0x04, ReasonCode::BadUserNameOrPassword),
        (0x05, ReasonCode::NotAuthorized),
    ];
    for (code, reason) in table {
        let bytes = [0x20, 0x02, 0x00, code];
        for version in [V3_1, V3_1_1] {
            check_vector(
                &bytes,
                version,
                &Packet::Connack(Connack {
                    session_present: false,
                    reason,
                    properties: Properties::EMPTY,
                }),
            );
        }
        assert_eq!(reason.connack_return_code(), code);
    }
}

/// MQTT 3.1.1 §3.3: PUBLISH QoS 0 has no Packet Identifier (§3.3.2.2); the payload is the
/// rest of the packet (§3.3.3).
#[test]
fn v311_publish_qos0() {
    let bytes = [0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i'];
    check_vector(
        &bytes,
        V3_1_1,
        &Packet::Publish(Publish {
            dup: false,
            qos_pid: QosPid::AtMostOnce,
            retain: false,
            topic: "a/b",
            properties: Properties::EMPTY,
            payload: b"hi",
        }),
    );
    // §3.3.1.3: RETAIN is bit 0.
    let retained = [0x31, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i'];
    check_vector(
        &retained,
        V3_1_1,
        &Packet::Publish(Publish {
            dup: false,
            qos_pid: QosPid::AtMostOnce,
            retain: true,
            topic: "a/b",
            properties: Properties::EMPTY,
            payload: b"hi",
        }),
    );
}

/// MQTT 3.1.1 §3.3.2.3, "Publish Packet variable header non normative example": Topic Name
/// "a/b", Packet Identifier 10.
const V311_PUBLISH_QOS1: [u8; 11] = [
    0x32, 0x09, // PUBLISH QoS 1, remaining length 9
    0x00, 0x03, b'a', b'/', b'b', // Topic Name
    0x00, 0x0A, // Packet Identifier 10
    b'h', b'i', // Payload
];

#[test]
fn v311_publish_variable_header_example_qos1() {
    check_vector(
        &V311_PUBLISH_QOS1,
        V3_1_1,
        &Packet::Publish(Publish {
            dup: false,
            qos_pid: QosPid::AtLeastOnce(10),
            retain: false,
            topic: "a/b",
            properties: Properties::EMPTY,
            payload: b"hi",
        }),
    );
}

/// MQTT 3.1.1 §3.3.1: DUP (bit 3), QoS 2 (bits 2–1), RETAIN (bit 0); a zero-length payload
/// is allowed (§3.3.3).
#[test]
fn v311_publish_qos2_dup_retain_empty_payload() {
    let bytes = [0x3D, 0x07, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0B];
    check_vector(
        &bytes,
        V3_1_1,
        &Packet::Publish(Publish {
            dup: true,
            qos_pid: QosPid::ExactlyOnce(11),
            retain: true,
            topic: "a/b",
            properties: Properties::EMPTY,
            payload: b"",
        }),
    );
}

/// MQTT 3.1.1 §3.4–§3.7: PUBACK, PUBREC, PUBREL (flags 0010, §2.2.2) and PUBCOMP, each a
/// remaining length of 2 and the Packet Identifier.
#[test]
fn v311_publish_acknowledgements() {
    let cases: [([u8; 4], MakeAck); 4] = [
        ([0x40, 0x02, 0x00, 0x0A], Packet::Puback),
        ([0x50, 0x02, 0x00, 0x0A], Packet::Pubrec),
        ([0x62, 0x02, 0x00, 0x0A], Packet::Pubrel),
        ([0x70, 0x02, 0x00, 0x0A], Packet::Pubcomp),
    ];
    for (bytes, make) in cases {
        let expected = make(Ack {
            packet_id: 10,
            reason: ReasonCode::Success,
            properties: Properties::EMPTY,
        });
        check_vector(&bytes, V3_1_1, &expected);
        check_vector(&bytes, V3_1, &expected);
        assert_eq!(make(Ack::new(10)), expected);
    }
}

/// MQTT 3.1.1 §3.8.2 (variable header example: Packet Identifier 10) and §3.8.3 ("Payload
/// byte format non normative example": "a/b" QoS 1, "c/d" QoS 2).
const V311_SUBSCRIBE: [u8; 16] = [
    0x82, 0x0E, // SUBSCRIBE (flags 0010), remaining length 14
    0x00, 0x0A, // Packet Identifier 10
    0x00, 0x03, b'a', b'/', b'b', 0x01, // "a/b", Requested QoS 1
    0x00, 0x03, b'c', b'/', b'd', 0x02, // "c/d", Requested QoS 2
];

#[test]
fn v311_subscribe_payload_example() {
    let subs = [
        Subscription {
            filter: "a/b",
            options: SubscriptionOptions::new(QoS::AtLeastOnce),
        },
        Subscription {
            filter: "c/d",
            options: SubscriptionOptions::new(QoS::ExactlyOnce),
        },
    ];
    let expected = Packet::Subscribe(Subscribe {
        packet_id: 10,
        properties: Properties::EMPTY,
        subscriptions: List::new(&subs),
    });
    check_vector(&V311_SUBSCRIBE, V3_1_1, &expected);
    let Packet::Subscribe(s) = decode_vector(&V311_SUBSCRIBE, V3_1_1) else {
        unreachable!()
    };
    assert_eq!(s.subscriptions.len(), 2);
    assert_eq!(s.subscriptions.iter().collect::<Vec<_>>(), subs);
}

/// MQTT 3.1.1 §3.9.3, "Payload byte format non normative example": Success – Maximum QoS 0,
/// Success – Maximum QoS 2, Failure (0x80); §3.9.2 Packet Identifier.
#[test]
fn v311_suback_payload_example() {
    let bytes = [0x90, 0x05, 0x00, 0x0A, 0x00, 0x02, 0x80];
    let codes = [
        ReasonCode::Success,
        ReasonCode::GrantedQoS2,
        ReasonCode::UnspecifiedError,
    ];
    check_vector(
        &bytes,
        V3_1_1,
        &Packet::Suback(Suback {
            packet_id: 10,
            properties: Properties::EMPTY,
            reason_codes: List::new(&codes),
        }),
    );
    // Granted QoS 1 as well (§3.9.3: 0x01 Success – Maximum QoS 1).
    let granted1 = [ReasonCode::GrantedQoS1];
    check_vector(
        &[0x90, 0x03, 0x00, 0x0B, 0x01],
        V3_1_1,
        &Packet::Suback(Suback {
            packet_id: 11,
            properties: Properties::EMPTY,
            reason_codes: List::new(&granted1),
        }),
    );
}

/// MQTT 3.1.1 §3.10.3, "Payload byte format non normative example": "a/b", "c/d"; §3.10.2
/// Packet Identifier.
const V311_UNSUBSCRIBE: [u8; 14] = [
    0xA2, 0x0C, // UNSUBSCRIBE (flags 0010), remaining length 12
    0x00, 0x0A, // Packet Identifier 10
    0x00, 0x03, b'a', b'/', b'b', // "a/b"
    0x00, 0x03, b'c', b'/', b'd', // "c/d"
];

#[test]
fn v311_unsubscribe_payload_example() {
    let filters = ["a/b", "c/d"];
    check_vector(
        &V311_UNSUBSCRIBE,
        V3_1_1,
        &Packet::Unsubscribe(Unsubscribe {
            packet_id: 10,
            properties: Properties::EMPTY,
            filters: List::new(&filters),
        }),
    );
}

/// MQTT 3.1.1 §3.11: UNSUBACK, remaining length 2, Packet Identifier, no payload.
#[test]
fn v311_unsuback() {
    check_vector(
        &[0xB0, 0x02, 0x00, 0x0A],
        V3_1_1,
        &Packet::Unsuback(Unsuback {
            packet_id: 10,
            properties: Properties::EMPTY,
            reason_codes: List::EMPTY,
        }),
    );
}

/// MQTT 3.1.1 §3.12, §3.13, §3.14: PINGREQ, PINGRESP and DISCONNECT are two bytes.
#[test]
fn v311_pingreq_pingresp_disconnect() {
    for version in [V3_1, V3_1_1] {
        check_vector(&[0xC0, 0x00], version, &Packet::Pingreq);
        check_vector(&[0xD0, 0x00], version, &Packet::Pingresp);
        check_vector(
            &[0xE0, 0x00],
            version,
            &Packet::Disconnect(Disconnect {
                reason: ReasonCode::Success,
                properties: Properties::EMPTY,
            }),
        );
    }
}

/// MQTT 3.1 has the same wire format as 3.1.1 for every packet but CONNECT.
#[test]
fn v31_packets_match_v311() {
    let vectors: [&[u8]; 9] = [
        &V311_PUBLISH_QOS1,
        &[0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i'],
        &V311_SUBSCRIBE,
        &[0x90, 0x05, 0x00, 0x0A, 0x00, 0x02, 0x80],
        &V311_UNSUBSCRIBE,
        &[0xB0, 0x02, 0x00, 0x0A],
        &[0x20, 0x02, 0x00, 0x00], // 3.1 has no session present flag: see below
        &[0x62, 0x02, 0x00, 0x0A],
        &[0xE0, 0x00],
    ];
    for bytes in vectors {
        let v31 = decode_vector(bytes, V3_1);
        let v311 = decode_vector(bytes, V3_1_1);
        assert_eq!(v31, v311);
    }
}

/// MQTT 3.1 reserves the CONNACK flags byte: the session present bit of 3.1.1 is neither
/// read nor written for a 3.1 connection (Mosquitto sets it only for 3.1.1 and 5.0).
#[test]
fn v31_connack_has_no_session_present_flag() {
    let stray_bit = [0x20, 0x02, 0x01, 0x00];
    let Ok(Decoded::Complete {
        packet: Packet::Connack(connack),
        ..
    }) = decode(&stray_bit, &opts(V3_1))
    else {
        panic!("a 3.1 CONNACK with bit 0 set still decodes")
    };
    assert!(!connack.session_present);
    let resumed = Packet::Connack(Connack {
        session_present: true,
        ..connack
    });
    assert_encodes_to(&resumed, V3_1, &[0x20, 0x02, 0x00, 0x00]);
    assert_encodes_to(&resumed, V3_1_1, &[0x20, 0x02, 0x01, 0x00]);
}

// ---------------------------------------------------------------------------------------
// Data representation: UTF-8 strings and Variable Byte Integers
// ---------------------------------------------------------------------------------------

/// MQTT 3.1.1 §1.5.3 / MQTT 5.0 §1.5.4, "UTF-8 Encoded String non normative example": the
/// string "A𪛔" (U+0041, U+2A6D4) is 0x00 0x05 0x41 0xF0 0xAA 0x9B 0x94.
#[test]
fn utf8_string_example_u2a6d4() {
    let bytes = [
        0x30, 0x09, // PUBLISH QoS 0
        0x00, 0x05, 0x41, 0xF0, 0xAA, 0x9B, 0x94, // "A\u{2A6D4}"
        b'h', b'i',
    ];
    for version in [V3_1, V3_1_1] {
        let expected = Packet::Publish(Publish {
            dup: false,
            qos_pid: QosPid::AtMostOnce,
            retain: false,
            topic: "A\u{2A6D4}",
            properties: Properties::EMPTY,
            payload: b"hi",
        });
        check_vector(&bytes, version, &expected);
    }
    let v5 = [
        0x30, 0x0A, 0x00, 0x05, 0x41, 0xF0, 0xAA, 0x9B, 0x94, 0x00, b'h', b'i',
    ];
    check_vector(
        &v5,
        V5,
        &Packet::Publish(Publish {
            dup: false,
            qos_pid: QosPid::AtMostOnce,
            retain: false,
            topic: "A\u{2A6D4}",
            properties: Properties::EMPTY,
            payload: b"hi",
        }),
    );
}

/// MQTT 3.1.1 §1.5.3 [MQTT-1.5.3-3] / MQTT 5.0 §1.5.4 [MQTT-1.5.4-3]: 0xEF 0xBB 0xBF is
/// always U+FEFF and must not be skipped or stripped by a receiver.
#[test]
fn utf8_bom_is_not_stripped() {
    let bytes = [0x30, 0x06, 0x00, 0x04, 0xEF, 0xBB, 0xBF, b'a'];
    check_vector(
        &bytes,
        V3_1_1,
        &Packet::Publish(Publish {
            dup: false,
            qos_pid: QosPid::AtMostOnce,
            retain: false,
            topic: "\u{FEFF}a",
            properties: Properties::EMPTY,
            payload: b"",
        }),
    );
}

/// MQTT 3.1.1 §2.2.3 Table 2.4 / MQTT 5.0 §1.5.5 Table 1-1: the smallest and largest value
/// of each Variable Byte Integer length.
const VARINT_TABLE: [(u32, &[u8]); 8] = [
    (0, &[0x00]),
    (127, &[0x7F]),
    (128, &[0x80, 0x01]),
    (16_383, &[0xFF, 0x7F]),
    (16_384, &[0x80, 0x80, 0x01]),
    (2_097_151, &[0xFF, 0xFF, 0x7F]),
    (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
    (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
];

#[test]
fn varint_table_as_remaining_length() {
    assert_eq!(MAX_VARINT, 268_435_455);
    assert_eq!(MAX_PACKET_SIZE, 1 + 4 + 268_435_455);
    for (value, encoded) in VARINT_TABLE {
        assert_eq!(varint_len(value), encoded.len(), "varint_len({value})");
        let mut header = vec![0x30];
        header.extend_from_slice(encoded);
        for version in [V3_1_1, V5] {
            let parsed = FixedHeader::parse(&header, version, MAX_PACKET_SIZE as u32)
                .unwrap()
                .unwrap();
            assert_eq!(parsed.packet_type, PacketType::Publish);
            assert_eq!(parsed.flags, 0);
            assert_eq!(parsed.remaining_len, value as usize);
            assert_eq!(parsed.header_len, 1 + encoded.len());
            assert_eq!(parsed.frame_len(), 1 + encoded.len() + value as usize);
            // The fixed header alone gives the frame length; every prefix of the remaining
            // length does not.
            let frame_len = 1 + encoded.len() + value as usize;
            let decoded = decode(&header, &opts(version));
            if value == 0 {
                // PUBLISH with nothing after the header: complete, and malformed.
                assert!(decoded.is_err());
            } else {
                assert_eq!(
                    decoded,
                    Ok(Decoded::Incomplete {
                        frame_len: Some(frame_len)
                    })
                );
            }
            for cut in 0..header.len() {
                assert_eq!(
                    decode(&header[..cut], &opts(version)),
                    Ok(Decoded::Incomplete { frame_len: None })
                );
            }
        }
    }
}

/// The same table through whole packets: a QoS 0 PUBLISH whose remaining length is each
/// boundary (topic "a" takes 3 bytes, the payload the rest).
#[test]
fn varint_table_whole_publish_packets() {
    for (value, encoded) in VARINT_TABLE {
        if !(3..=2_097_152).contains(&value) {
            continue;
        }
        let payload = vec![0x5A; value as usize - 3];
        let publish = Packet::Publish(Publish {
            dup: false,
            qos_pid: QosPid::AtMostOnce,
            retain: false,
            topic: "a",
            properties: Properties::EMPTY,
            payload: &payload,
        });
        let mut bytes = vec![0x30];
        bytes.extend_from_slice(encoded);
        bytes.extend_from_slice(&[0x00, 0x01, b'a']);
        bytes.extend_from_slice(&payload);
        assert_encodes_to(&publish, V3_1_1, &bytes);
        match decode(&bytes, &opts(V3_1_1)) {
            Ok(Decoded::Complete { packet, len }) => {
                assert_eq!(len, bytes.len());
                assert_eq!(packet, publish);
            }
            other => panic!("remaining length {value}: {other:?}"),
        }
        // One byte short of the whole frame.
        assert_eq!(
            decode(&bytes[..bytes.len() - 1], &opts(V3_1_1)),
            Ok(Decoded::Incomplete {
                frame_len: Some(bytes.len())
            })
        );
    }
}

/// MQTT 5.0 §1.5.5 / §3.8.2.1.2: the Subscription Identifier is a Variable Byte Integer of
/// 1 to 268,435,455; each boundary of Table 1-1 in a SUBSCRIBE property.
#[test]
fn varint_table_as_subscription_identifier() {
    for (value, encoded) in VARINT_TABLE {
        if value == 0 {
            continue;
        }
        let mut bytes = vec![0x82, (2 + 1 + 1 + encoded.len() + 4) as u8, 0x00, 0x0A];
        bytes.push((1 + encoded.len()) as u8); // Property Length
        bytes.push(0x0B); // Subscription Identifier
        bytes.extend_from_slice(encoded);
        bytes.extend_from_slice(&[0x00, 0x01, b'#', 0x00]);
        let props = [Property::SubscriptionIdentifier(value)];
        let subs = [Subscription {
            filter: "#",
            options: SubscriptionOptions::new(QoS::AtMostOnce),
        }];
        check_vector(
            &bytes,
            V5,
            &Packet::Subscribe(Subscribe {
                packet_id: 10,
                properties: Properties::new(&props),
                subscriptions: List::new(&subs),
            }),
        );
        let Packet::Subscribe(s) = decode_vector(&bytes, V5) else {
            unreachable!()
        };
        assert_eq!(
            s.properties.subscription_identifiers().collect::<Vec<_>>(),
            [value]
        );
    }
}

// ---------------------------------------------------------------------------------------
// MQTT 5.0
// ---------------------------------------------------------------------------------------

/// MQTT 5.0 §3.1.2.12, "Variable Header non-normative example": protocol name "MQTT",
/// version 5, Connect Flags 0xCE, Keep Alive 10, Properties: length 5, Session Expiry
/// Interval (17) = 10. The payload follows §3.1.3: Client Identifier, Will Properties
/// (§3.1.3.2: Will Delay Interval, Payload Format Indicator, Message Expiry Interval,
/// Content Type, Response Topic, Correlation Data, User Property), Will Topic, Will
/// Payload, User Name, Password.
const V5_CONNECT: [u8; 89] = [
    0x10, 0x57, // CONNECT, remaining length 87
    0x00, 0x04, b'M', b'Q', b'T', b'T', // Protocol Name
    0x05, // Protocol Version 5
    0xCE, // Connect Flags 1100 1110
    0x00, 0x0A, // Keep Alive 10
    0x05, // Property Length 5
    0x11, 0x00, 0x00, 0x00, 0x0A, // Session Expiry Interval 10
    0x00, 0x03, b'c', b'i', b'd', // Client Identifier
    0x2B, // Will Property Length 43
    0x18, 0x00, 0x00, 0x00, 0x05, // Will Delay Interval 5
    0x01, 0x01, // Payload Format Indicator: UTF-8
    0x02, 0x00, 0x00, 0x0E, 0x10, // Message Expiry Interval 3600
    0x03, 0x00, 0x0A, b't', b'e', b'x', b't', b'/', b'p', b'l', b'a', b'i',
    b'n', // Content Type
    0x08, 0x00, 0x03, b'r', b'/', b't', // Response Topic
    0x09, 0x00, 0x02, 0xC0, 0xFF, // Correlation Data
    0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // User Property k=v
    0x00, 0x03, b'w', b'/', b't', // Will Topic
    0x00, 0x03, b'b', b'y', b'e', // Will Payload
    0x00, 0x04, b'u', b's', b'e', b'r', // User Name
    0x00, 0x04, b'p', b'a', b's', b's', // Password
];

#[test]
fn v5_connect_variable_header_example_with_will_properties() {
    let props = [Property::SessionExpiryInterval(10)];
    let will_props = [
        Property::WillDelayInterval(5),
        Property::PayloadFormatIndicator(true),
        Property::MessageExpiryInterval(3600),
        Property::ContentType("text/plain"),
        Property::ResponseTopic("r/t"),
        Property::CorrelationData(&[0xC0, 0xFF]),
        Property::UserProperty("k", "v"),
    ];
    let expected = Packet::Connect(Connect {
        version: V5,
        clean_start: true,
        keep_alive: 10,
        properties: Properties::new(&props),
        client_id: "cid",
        will: Some(Will {
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Properties::new(&will_props),
            topic: "w/t",
            payload: b"bye",
        }),
        username: Some("user"),
        password: Some(b"pass"),
    });
    check_vector(&V5_CONNECT, V5, &expected);
    // CONNECT is encoded in its own version whatever the connection's version says.
    assert_encodes_to(&expected, V3_1_1, &V5_CONNECT);

    let Packet::Connect(c) = decode_vector(&V5_CONNECT, V3_1_1) else {
        unreachable!()
    };
    assert_eq!(c.properties.session_expiry_interval(), Some(10));
    assert_eq!(
        property_ids(&c.properties),
        [PropertyId::SessionExpiryInterval]
    );
    let will = c.will.unwrap();
    let w = will.properties;
    assert_eq!(w.will_delay_interval(), Some(5));
    assert_eq!(w.payload_format_indicator(), Some(true));
    assert_eq!(w.message_expiry_interval(), Some(3600));
    assert_eq!(w.content_type(), Some("text/plain"));
    assert_eq!(w.response_topic(), Some("r/t"));
    assert_eq!(w.correlation_data(), Some(&[0xC0, 0xFF][..]));
    assert_eq!(w.user_properties().collect::<Vec<_>>(), [("k", "v")]);
    assert_eq!(w.session_expiry_interval(), None);
    assert_eq!(w.len(), 7);
}

/// MQTT 5.0 §3.1.2.11: every CONNECT property (Session Expiry Interval, Receive Maximum,
/// Maximum Packet Size, Topic Alias Maximum, Request Response Information, Request Problem
/// Information, User Property twice with the same name (§3.1.2.11.8 allows it),
/// Authentication Method, Authentication Data); an empty Client Identifier (§3.1.3.1).
const V5_CONNECT_ALL_PROPERTIES: [u8; 67] = [
    0x10, 0x41, // CONNECT, remaining length 65
    0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, // Protocol Name, Version 5
    0x02, // Clean Start
    0x00, 0x3C, // Keep Alive 60
    0x34, // Property Length 52
    0x11, 0x00, 0x00, 0x01, 0x2C, // Session Expiry Interval 300
    0x21, 0x00, 0x14, // Receive Maximum 20
    0x27, 0x00, 0x00, 0x10, 0x00, // Maximum Packet Size 4096
    0x22, 0x00, 0x0A, // Topic Alias Maximum 10
    0x19, 0x01, // Request Response Information 1
    0x17, 0x00, // Request Problem Information 0
    0x26, 0x00, 0x02, b'r', b'g', 0x00, 0x02, b'e', b'u', // User Property rg=eu
    0x26, 0x00, 0x02, b'r', b'g', 0x00, 0x02, b'u', b's', // User Property rg=us
    0x15, 0x00, 0x05, b'S', b'C', b'R', b'A', b'M', // Authentication Method
    0x16, 0x00, 0x03, 0x01, 0x02, 0x03, // Authentication Data
    0x00, 0x00, // empty Client Identifier
];

#[test]
fn v5_connect_every_connect_property() {
    let props = [
        Property::SessionExpiryInterval(300),
        Property::ReceiveMaximum(20),
        Property::MaximumPacketSize(4096),
        Property::TopicAliasMaximum(10),
        Property::RequestResponseInformation(true),
        Property::RequestProblemInformation(false),
        Property::UserProperty("rg", "eu"),
        Property::UserProperty("rg", "us"),
        Property::AuthenticationMethod("SCRAM"),
        Property::AuthenticationData(&[1, 2, 3]),
    ];
    check_vector(
        &V5_CONNECT_ALL_PROPERTIES,
        V5,
        &Packet::Connect(Connect {
            version: V5,
            clean_start: true,
            keep_alive: 60,
            properties: Properties::new(&props),
            client_id: "",
            will: None,
            username: None,
            password: None,
        }),
    );
    let Packet::Connect(c) = decode_vector(&V5_CONNECT_ALL_PROPERTIES, V5) else {
        unreachable!()
    };
    let p = c.properties;
    assert_eq!(p.session_expiry_interval(), Some(300));
    assert_eq!(p.receive_maximum(), Some(20));
    assert_eq!(p.maximum_packet_size(), Some(4096));
    assert_eq!(p.topic_alias_maximum(), Some(10));
    assert_eq!(p.request_response_information(), Some(true));
    assert_eq!(p.request_problem_information(), Some(false));
    assert_eq!(
        p.user_properties().collect::<Vec<_>>(),
        [("rg", "eu"), ("rg", "us")]
    );
    assert_eq!(p.authentication_method(), Some("SCRAM"));
    assert_eq!(p.authentication_data(), Some(&[1, 2, 3][..]));
    assert_eq!(p.topic_alias(), None);
    assert_eq!(p.len(), 10);
}

/// MQTT 5.0 §3.2: the smallest CONNACK: flags 0, Reason Code 0x00 Success, Property
/// Length 0.
#[test]
fn v5_connack_minimal() {
    check_vector(
        &[0x20, 0x03, 0x00, 0x00, 0x00],
        V5,
        &Packet::Connack(Connack {
            session_present: false,
            reason: ReasonCode::Success,
            properties: Properties::EMPTY,
        }),
    );
}

/// MQTT 5.0 §3.2.2.3: every CONNACK property, with Session Present set (§3.2.2.1.1).
const V5_CONNACK_ALL_PROPERTIES: [u8; 78] = [
    0x20, 0x4C, // CONNACK, remaining length 76
    0x01, // Session Present
    0x00, // Success
    0x49, // Property Length 73
    0x11, 0x00, 0x00, 0x00, 0x78, // Session Expiry Interval 120
    0x21, 0x00, 0x0A, // Receive Maximum 10
    0x24, 0x01, // Maximum QoS 1
    0x25, 0x00, // Retain Available 0
    0x27, 0x00, 0x01, 0x00, 0x00, // Maximum Packet Size 65536
    0x12, 0x00, 0x04, b'a', b'u', b't', b'o', // Assigned Client Identifier
    0x22, 0x00, 0x05, // Topic Alias Maximum 5
    0x1F, 0x00, 0x02, b'o', b'k', // Reason String
    0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'b', // User Property a=b
    0x28, 0x00, // Wildcard Subscription Available 0
    0x29, 0x01, // Subscription Identifiers Available 1
    0x2A, 0x00, // Shared Subscription Available 0
    0x13, 0x00, 0x1E, // Server Keep Alive 30
    0x1A, 0x00, 0x03, b'r', b'/', b'i', // Response Information
    0x1C, 0x00, 0x03, b's', b'r', b'v', // Server Reference
    0x15, 0x00, 0x05, b'S', b'C', b'R', b'A', b'M', // Authentication Method
    0x16, 0x00, 0x02, 0xAA, 0xBB, // Authentication Data
];

#[test]
fn v5_connack_every_connack_property() {
    let props = [
        Property::SessionExpiryInterval(120),
        Property::ReceiveMaximum(10),
        Property::MaximumQoS(QoS::AtLeastOnce),
        Property::RetainAvailable(false),
        Property::MaximumPacketSize(65536),
        Property::AssignedClientIdentifier("auto"),
        Property::TopicAliasMaximum(5),
        Property::ReasonString("ok"),
        Property::UserProperty("a", "b"),
        Property::WildcardSubscriptionAvailable(false),
        Property::SubscriptionIdentifierAvailable(true),
        Property::SharedSubscriptionAvailable(false),
        Property::ServerKeepAlive(30),
        Property::ResponseInformation("r/i"),
        Property::ServerReference("srv"),
        Property::AuthenticationMethod("SCRAM"),
        Property::AuthenticationData(&[0xAA, 0xBB]),
    ];
    check_vector(
        &V5_CONNACK_ALL_PROPERTIES,
        V5,
        &Packet::Connack(Connack {
            session_present: true,
            reason: ReasonCode::Success,
            properties: Properties::new(&props),
        }),
    );
    let Packet::Connack(c) = decode_vector(&V5_CONNACK_ALL_PROPERTIES, V5) else {
        unreachable!()
    };
    let p = c.properties;
    assert_eq!(p.session_expiry_interval(), Some(120));
    assert_eq!(p.receive_maximum(), Some(10));
    assert_eq!(p.maximum_qos(), Some(QoS::AtLeastOnce));
    assert_eq!(p.retain_available(), Some(false));
    assert_eq!(p.maximum_packet_size(), Some(65536));
    assert_eq!(p.assigned_client_identifier(), Some("auto"));
    assert_eq!(p.topic_alias_maximum(), Some(5));
    assert_eq!(p.reason_string(), Some("ok"));
    assert_eq!(p.user_properties().collect::<Vec<_>>(), [("a", "b")]);
    assert_eq!(p.wildcard_subscription_available(), Some(false));
    assert_eq!(p.subscription_identifier_available(), Some(true));
    assert_eq!(p.shared_subscription_available(), Some(false));
    assert_eq!(p.server_keep_alive(), Some(30));
    assert_eq!(p.response_information(), Some("r/i"));
    assert_eq!(p.server_reference(), Some("srv"));
    assert_eq!(p.authentication_method(), Some("SCRAM"));
    assert_eq!(p.authentication_data(), Some(&[0xAA, 0xBB][..]));
    assert_eq!(p.len(), 17);
}

/// MQTT 5.0 §3.2.2.2 and §4.11: a refusal with 0x9C Use another server and a Server
/// Reference.
#[test]
fn v5_connack_use_another_server() {
    let bytes = [
        0x20, 0x09, 0x00, 0x9C, 0x06, 0x1C, 0x00, 0x03, b's', b'r', b'v',
    ];
    let props = [Property::ServerReference("srv")];
    check_vector(
        &bytes,
        V5,
        &Packet::Connack(Connack {
            session_present: false,
            reason: ReasonCode::UseAnotherServer,
            properties: Properties::new(&props),
        }),
    );
}

/// MQTT 5.0 §3.3.2, "PUBLISH packet Variable Header non-normative example": Topic Name
/// "a/b", Packet Identifier 10, no properties.
const V5_PUBLISH_QOS1: [u8; 12] = [
    0x32, 0x0A, // PUBLISH QoS 1, remaining length 10
    0x00, 0x03, b'a', b'/', b'b', // Topic Name
    0x00, 0x0A, // Packet Identifier 10
    0x00, // Property Length 0
    b'h', b'i', // Payload
];

#[test]
fn v5_publish_variable_header_example_qos1() {
    check_vector(
        &V5_PUBLISH_QOS1,
        V5,
        &Packet::Publish(Publish {
            dup: false,
            qos_pid: QosPid::AtLeastOnce(10),
            retain: false,
            topic: "a/b",
            properties: Properties::EMPTY,
            payload: b"hi",
        }),
    );
}

/// MQTT 5.0 §3.3.2.3: every PUBLISH property; Subscription Identifier twice (§3.3.4: a
/// PUBLISH to a subscriber carries one per matching subscription) and User Property twice
/// with the same name.
const V5_PUBLISH_ALL_PROPERTIES: [u8; 61] = [
    0x31, 0x3B, // PUBLISH QoS 0 RETAIN, remaining length 59
    0x00, 0x03, b'a', b'/', b'b', // Topic Name
    0x33, // Property Length 51
    0x01, 0x01, // Payload Format Indicator: UTF-8
    0x02, 0x00, 0x00, 0x00, 0x3C, // Message Expiry Interval 60
    0x03, 0x00, 0x04, b'j', b's', b'o', b'n', // Content Type
    0x08, 0x00, 0x05, b'r', b'e', b'p', b'/', b'1', // Response Topic
    0x09, 0x00, 0x04, 0xDE, 0xAD, 0xBE, 0xEF, // Correlation Data
    0x0B, 0x05, // Subscription Identifier 5
    0x0B, 0x80, 0x01, // Subscription Identifier 128
    0x23, 0x00, 0x07, // Topic Alias 7
    0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'1', // User Property a=1
    0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'2', // User Property a=2
    b'{', b'}', // Payload
];

#[test]
fn v5_publish_every_publish_property() {
    let props = [
        Property::PayloadFormatIndicator(true),
        Property::MessageExpiryInterval(60),
        Property::ContentType("json"),
        Property::ResponseTopic("rep/1"),
        Property::CorrelationData(&[0xDE, 0xAD, 0xBE, 0xEF]),
        Property::SubscriptionIdentifier(5),
        Property::SubscriptionIdentifier(128),
        Property::TopicAlias(7),
        Property::UserProperty("a", "1"),
        Property::UserProperty("a", "2"),
    ];
    check_vector(
        &V5_PUBLISH_ALL_PROPERTIES,
        V5,
        &Packet::Publish(Publish {
            dup: false,
            qos_pid: QosPid::AtMostOnce,
            retain: true,
            topic: "a/b",
            properties: Properties::new(&props),
            payload: b"{}",
        }),
    );
    let Packet::Publish(p) = decode_vector(&V5_PUBLISH_ALL_PROPERTIES, V5) else {
        unreachable!()
    };
    let props = p.properties;
    assert_eq!(props.payload_format_indicator(), Some(true));
    assert_eq!(props.message_expiry_interval(), Some(60));
    assert_eq!(props.content_type(), Some("json"));
    assert_eq!(props.response_topic(), Some("rep/1"));
    assert_eq!(
        props.correlation_data(),
        Some(&[0xDE, 0xAD, 0xBE, 0xEF][..])
    );
    assert_eq!(
        props.subscription_identifiers().collect::<Vec<_>>(),
        [5, 128]
    );
    assert_eq!(props.topic_alias(), Some(7));
    assert_eq!(
        props.user_properties().collect::<Vec<_>>(),
        [("a", "1"), ("a", "2")]
    );
    assert_eq!(props.len(), 10);
}

/// MQTT 5.0 §3.3.2.3.4: with a Topic Alias the Topic Name may be zero length.
#[test]
fn v5_publish_empty_topic_with_topic_alias() {
    let bytes = [0x30, 0x07, 0x00, 0x00, 0x03, 0x23, 0x00, 0x07, b'x'];
    let props = [Property::TopicAlias(7)];
    check_vector(
        &bytes,
        V5,
        &Packet::Publish(Publish {
            dup: false,
            qos_pid: QosPid::AtMostOnce,
            retain: false,
            topic: "",
            properties: Properties::new(&props),
            payload: b"x",
        }),
    );
}

/// MQTT 5.0 §3.3.1: QoS 2 with DUP, §3.3.2.3.1 Property Length 0, empty payload.
#[test]
fn v5_publish_qos2_dup() {
    let bytes = [0x3C, 0x08, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0B, 0x00];
    check_vector(
        &bytes,
        V5,
        &Packet::Publish(Publish {
            dup: true,
            qos_pid: QosPid::ExactlyOnce(11),
            retain: false,
            topic: "a/b",
            properties: Properties::EMPTY,
            payload: b"",
        }),
    );
    let publish = Packet::Publish(Publish {
        dup: false,
        qos_pid: QosPid::new(QoS::ExactlyOnce, 11),
        retain: false,
        topic: "a/b",
        properties: Properties::EMPTY,
        payload: b"",
    });
    assert_encodes_to(
        &publish,
        V5,
        &[0x34, 0x08, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0B, 0x00],
    );
}

/// MQTT 5.0 §3.4.2.1: "The Reason Code and Property Length can be omitted if the Reason Code
/// is 0x00 (Success) and there are no Properties. In this case the PUBACK has a Remaining
/// Length of 2." The same short form exists for PUBREC (§3.5.2.1), PUBREL (§3.6.2.1) and
/// PUBCOMP (§3.7.2.1).
#[test]
fn v5_publish_acknowledgements_short_form() {
    let cases: [([u8; 4], MakeAck); 4] = [
        ([0x40, 0x02, 0x00, 0x0A], Packet::Puback),
        ([0x50, 0x02, 0x00, 0x0A], Packet::Pubrec),
        ([0x62, 0x02, 0x00, 0x0A], Packet::Pubrel),
        ([0x70, 0x02, 0x00, 0x0A], Packet::Pubcomp),
    ];
    for (bytes, make) in cases {
        check_vector(&bytes, V5, &make(Ack::new(10)));
    }
}

/// MQTT 5.0 §3.4.2.2.1: "If the Remaining Length is less than 4 there is no Property Length
/// and the value of 0 is used": a Reason Code alone.
#[test]
fn v5_publish_acknowledgements_reason_code_only() {
    let cases: [([u8; 5], MakeAck, ReasonCode); 4] = [
        (
            [0x40, 0x03, 0x00, 0x0A, 0x10],
            Packet::Puback,
            ReasonCode::NoMatchingSubscribers,
        ),
        (
            [0x50, 0x03, 0x00, 0x0A, 0x80],
            Packet::Pubrec,
            ReasonCode::UnspecifiedError,
        ),
        (
            [0x62, 0x03, 0x00, 0x0A, 0x92],
            Packet::Pubrel,
            ReasonCode::PacketIdentifierNotFound,
        ),
        (
            [0x70, 0x03, 0x00, 0x0A, 0x92],
            Packet::Pubcomp,
            ReasonCode::PacketIdentifierNotFound,
        ),
    ];
    for (bytes, make, reason) in cases {
        check_vector(
            &bytes,
            V5,
            &make(Ack {
                packet_id: 10,
                reason,
                properties: Properties::EMPTY,
            }),
        );
    }
}

/// MQTT 5.0 §3.4.2.2: a PUBACK with a Reason String (§3.4.2.2.2), and a PUBCOMP with Success
/// and a User Property (§3.7.2.2.3), which needs the Reason Code written out.
#[test]
fn v5_publish_acknowledgements_with_properties() {
    let puback = [
        0x40, 0x0C, 0x00, 0x0A, 0x97, // PUBACK, id 10, Quota exceeded
        0x08, 0x1F, 0x00, 0x05, b'q', b'u', b'o', b't', b'a', // Reason String
    ];
    let props = [Property::ReasonString("quota")];
    check_vector(
        &puback,
        V5,
        &Packet::Puback(Ack {
            packet_id: 10,
            reason: ReasonCode::QuotaExceeded,
            properties: Properties::new(&props),
        }),
    );
    let Packet::Puback(ack) = decode_vector(&puback, V5) else {
        unreachable!()
    };
    assert_eq!(ack.properties.reason_string(), Some("quota"));

    let pubcomp = [
        0x70, 0x0B, 0x00, 0x0A, 0x00, // PUBCOMP, id 10, Success
        0x07, 0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // User Property
    ];
    let props = [Property::UserProperty("k", "v")];
    check_vector(
        &pubcomp,
        V5,
        &Packet::Pubcomp(Ack {
            packet_id: 10,
            reason: ReasonCode::Success,
            properties: Properties::new(&props),
        }),
    );
}

/// MQTT 5.0 §3.4.2.2.1: a Reason Code 0x00 with Property Length 0 is a valid (longer) form
/// of the short PUBACK; the encoder then writes the shortest form.
#[test]
fn v5_puback_with_explicit_empty_properties_decodes_to_the_short_form() {
    let bytes = [0x40, 0x04, 0x00, 0x0A, 0x00, 0x00];
    match decode(&bytes, &opts(V5)) {
        Ok(Decoded::Complete { packet, len }) => {
            assert_eq!(len, 6);
            assert_eq!(packet, Packet::Puback(Ack::new(10)));
            assert_encodes_to(&packet, V5, &[0x40, 0x02, 0x00, 0x0A]);
        }
        other => panic!("{other:?}"),
    }
}

/// MQTT 5.0 §3.8.2 (variable header example: Packet Identifier 10, Property Length 0) and
/// §3.8.3 ("Payload byte format non-normative example": "a/b" options 1, "c/d" options 2).
const V5_SUBSCRIBE: [u8; 17] = [
    0x82, 0x0F, // SUBSCRIBE, remaining length 15
    0x00, 0x0A, // Packet Identifier 10
    0x00, // Property Length 0
    0x00, 0x03, b'a', b'/', b'b', 0x01, // "a/b", QoS 1
    0x00, 0x03, b'c', b'/', b'd', 0x02, // "c/d", QoS 2
];

#[test]
fn v5_subscribe_payload_example() {
    let subs = [
        Subscription {
            filter: "a/b",
            options: SubscriptionOptions::new(QoS::AtLeastOnce),
        },
        Subscription {
            filter: "c/d",
            options: SubscriptionOptions::new(QoS::ExactlyOnce),
        },
    ];
    let expected = Packet::Subscribe(Subscribe {
        packet_id: 10,
        properties: Properties::EMPTY,
        subscriptions: List::new(&subs),
    });
    check_vector(&V5_SUBSCRIBE, V5, &expected);
    // The same packet for 3.1.1 drops the Property Length: the 3.1.1 example.
    assert_encodes_to(&expected, V3_1_1, &V311_SUBSCRIBE);
}

/// MQTT 5.0 §3.8.2.1 (Subscription Identifier 16384, User Property) and §3.8.3.1
/// (Subscription Options: QoS, No Local, Retain As Published, Retain Handling), with a
/// shared subscription (§4.8.2) that has No Local clear.
const V5_SUBSCRIBE_OPTIONS: [u8; 39] = [
    0x82, 0x25, // SUBSCRIBE, remaining length 37
    0x00, 0x0B, // Packet Identifier 11
    0x0B, // Property Length 11
    0x0B, 0x80, 0x80, 0x01, // Subscription Identifier 16384
    0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // User Property
    0x00, 0x01, b'#', 0x2E, // "#": QoS 2, No Local, Retain As Published, Retain Handling 2
    0x00, 0x0A, b'$', b's', b'h', b'a', b'r', b'e', b'/', b'g', b'/', b'+', // "$share/g/+"
    0x11, // QoS 1, Retain Handling 1
    0x00, 0x03, b'a', b'/', b'b', 0x00, // "a/b", QoS 0
];

#[test]
fn v5_subscribe_options_and_properties() {
    let props = [
        Property::SubscriptionIdentifier(16384),
        Property::UserProperty("k", "v"),
    ];
    let subs = [
        Subscription {
            filter: "#",
            options: SubscriptionOptions {
                qos: QoS::ExactlyOnce,
                no_local: true,
                retain_as_published: true,
                retain_handling: RetainHandling::Never,
            },
        },
        Subscription {
            filter: "$share/g/+",
            options: SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                no_local: false,
                retain_as_published: false,
                retain_handling: RetainHandling::OnNewSubscription,
            },
        },
        Subscription {
            filter: "a/b",
            options: SubscriptionOptions {
                qos: QoS::AtMostOnce,
                no_local: false,
                retain_as_published: false,
                retain_handling: RetainHandling::OnSubscribe,
            },
        },
    ];
    check_vector(
        &V5_SUBSCRIBE_OPTIONS,
        V5,
        &Packet::Subscribe(Subscribe {
            packet_id: 11,
            properties: Properties::new(&props),
            subscriptions: List::new(&subs),
        }),
    );
    let Packet::Subscribe(s) = decode_vector(&V5_SUBSCRIBE_OPTIONS, V5) else {
        unreachable!()
    };
    assert_eq!(
        s.properties.subscription_identifiers().collect::<Vec<_>>(),
        [16384]
    );
    assert_eq!(
        s.properties.user_properties().collect::<Vec<_>>(),
        [("k", "v")]
    );
    assert_eq!(s.subscriptions.iter().collect::<Vec<_>>(), subs);
}

/// MQTT 5.0 §3.9.2 (Reason String) and §3.9.3 (one Reason Code per subscription): every
/// SUBACK reason code of Table 3-8 that a SUBACK can carry.
#[test]
fn v5_suback_reason_codes() {
    let bytes = [
        0x90, 0x14, // SUBACK, remaining length 20
        0x00, 0x0B, // Packet Identifier 11
        0x05, 0x1F, 0x00, 0x02, b'n', b'o', // Reason String
        0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
    ];
    let props = [Property::ReasonString("no")];
    let codes = [
        ReasonCode::Success,
        ReasonCode::GrantedQoS1,
        ReasonCode::GrantedQoS2,
        ReasonCode::UnspecifiedError,
        ReasonCode::ImplementationSpecificError,
        ReasonCode::NotAuthorized,
        ReasonCode::TopicFilterInvalid,
        ReasonCode::PacketIdentifierInUse,
        ReasonCode::QuotaExceeded,
        ReasonCode::SharedSubscriptionsNotSupported,
        ReasonCode::SubscriptionIdentifiersNotSupported,
        ReasonCode::WildcardSubscriptionsNotSupported,
    ];
    let expected = Packet::Suback(Suback {
        packet_id: 11,
        properties: Properties::new(&props),
        reason_codes: List::new(&codes),
    });
    check_vector(&bytes, V5, &expected);
    // For 3.1.1 every failure becomes 0x80 (MQTT 3.1.1 §3.9.3).
    let v311 = [
        0x90, 0x0E, 0x00, 0x0B, 0x00, 0x01, 0x02, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
        0x80,
    ];
    assert_encodes_to(&expected, V3_1_1, &v311);
}

/// MQTT 5.0 §3.10.2 (Packet Identifier, Property Length 0) and §3.10.3 ("Payload byte format
/// non-normative example": "a/b", "c/d").
const V5_UNSUBSCRIBE: [u8; 15] = [
    0xA2, 0x0D, // UNSUBSCRIBE, remaining length 13
    0x00, 0x0A, // Packet Identifier 10
    0x00, // Property Length 0
    0x00, 0x03, b'a', b'/', b'b', // "a/b"
    0x00, 0x03, b'c', b'/', b'd', // "c/d"
];

#[test]
fn v5_unsubscribe_payload_example() {
    let filters = ["a/b", "c/d"];
    let expected = Packet::Unsubscribe(Unsubscribe {
        packet_id: 10,
        properties: Properties::EMPTY,
        filters: List::new(&filters),
    });
    check_vector(&V5_UNSUBSCRIBE, V5, &expected);
    assert_encodes_to(&expected, V3_1_1, &V311_UNSUBSCRIBE);
}

/// MQTT 5.0 §3.10.2.1.2: UNSUBSCRIBE with a User Property, removing a shared subscription.
#[test]
fn v5_unsubscribe_with_user_property() {
    let bytes = [
        0xA2, 0x16, 0x00, 0x0C, // UNSUBSCRIBE, remaining length 22, Packet Identifier 12
        0x07, 0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // User Property
        0x00, 0x0A, b'$', b's', b'h', b'a', b'r', b'e', b'/', b'g', b'/', b'+',
    ];
    let props = [Property::UserProperty("k", "v")];
    let filters = ["$share/g/+"];
    check_vector(
        &bytes,
        V5,
        &Packet::Unsubscribe(Unsubscribe {
            packet_id: 12,
            properties: Properties::new(&props),
            filters: List::new(&filters),
        }),
    );
}

/// MQTT 5.0 §3.11: UNSUBACK, Property Length 0, one Reason Code per filter (Table 3-9).
#[test]
fn v5_unsuback_reason_codes() {
    let bytes = [
        0xB0, 0x0A, 0x00, 0x0A, 0x00, 0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91,
    ];
    let codes = [
        ReasonCode::Success,
        ReasonCode::NoSubscriptionExisted,
        ReasonCode::UnspecifiedError,
        ReasonCode::ImplementationSpecificError,
        ReasonCode::NotAuthorized,
        ReasonCode::TopicFilterInvalid,
        ReasonCode::PacketIdentifierInUse,
    ];
    let expected = Packet::Unsuback(Unsuback {
        packet_id: 10,
        properties: Properties::EMPTY,
        reason_codes: List::new(&codes),
    });
    check_vector(&bytes, V5, &expected);
    // 3.1.1 UNSUBACK has no payload.
    assert_encodes_to(&expected, V3_1_1, &[0xB0, 0x02, 0x00, 0x0A]);
}

/// MQTT 5.0 §3.12, §3.13: PINGREQ and PINGRESP are unchanged.
#[test]
fn v5_pingreq_pingresp() {
    check_vector(&[0xC0, 0x00], V5, &Packet::Pingreq);
    check_vector(&[0xD0, 0x00], V5, &Packet::Pingresp);
}

/// MQTT 5.0 §3.14.2.1: "The Reason Code and Property Length can be omitted if the Reason
/// Code is 0x00 (Normal disconnection) and there are no Properties. In this case the
/// DISCONNECT has a Remaining Length of 0."
#[test]
fn v5_disconnect_short_form() {
    check_vector(&[0xE0, 0x00], V5, &Packet::Disconnect(Disconnect::NORMAL));
    assert_eq!(Disconnect::NORMAL.reason, ReasonCode::Success);
    assert!(Disconnect::NORMAL.properties.is_empty());
}

/// MQTT 5.0 §3.14.2.2.1: "If the Remaining Length is less than 2, a value of 0 is used":
/// a Reason Code alone (0x04 Disconnect with Will Message).
#[test]
fn v5_disconnect_reason_code_only() {
    check_vector(
        &[0xE0, 0x01, 0x04],
        V5,
        &Packet::Disconnect(Disconnect::new(ReasonCode::DisconnectWithWillMessage)),
    );
}

/// MQTT 5.0 §3.14.2.2: every DISCONNECT property (Session Expiry Interval, Server Reference,
/// Reason String, User Property) with 0x9C Use another server.
#[test]
fn v5_disconnect_with_properties() {
    let bytes = [
        0xE0, 0x1B, 0x9C, // DISCONNECT, remaining length 27, Use another server
        0x19, // Property Length 25
        0x11, 0x00, 0x00, 0x00, 0x00, // Session Expiry Interval 0
        0x1C, 0x00, 0x03, b's', b'r', b'v', // Server Reference
        0x1F, 0x00, 0x04, b'm', b'o', b'v', b'e', // Reason String
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // User Property
    ];
    let props = [
        Property::SessionExpiryInterval(0),
        Property::ServerReference("srv"),
        Property::ReasonString("move"),
        Property::UserProperty("k", "v"),
    ];
    check_vector(
        &bytes,
        V5,
        &Packet::Disconnect(Disconnect {
            reason: ReasonCode::UseAnotherServer,
            properties: Properties::new(&props),
        }),
    );
    let Packet::Disconnect(d) = decode_vector(&bytes, V5) else {
        unreachable!()
    };
    assert_eq!(d.properties.session_expiry_interval(), Some(0));
    assert_eq!(d.properties.server_reference(), Some("srv"));
    assert_eq!(d.properties.reason_string(), Some("move"));
    // The same packet on a 3.1.1 connection is the two-byte DISCONNECT.
    assert_encodes_to(&Packet::Disconnect(d), V3_1_1, &[0xE0, 0x00]);
}

/// MQTT 5.0 §3.15.2.1: "The Reason Code and Property Length can be omitted if the Reason
/// Code is 0x00 (Success) and there are no Properties. In this case the AUTH has a
/// Remaining Length of 0."
#[test]
fn v5_auth_short_form() {
    check_vector(
        &[0xF0, 0x00],
        V5,
        &Packet::Auth(Auth {
            reason: ReasonCode::Success,
            properties: Properties::EMPTY,
        }),
    );
}

/// MQTT 5.0 §3.15.2: AUTH 0x18 Continue authentication with Authentication Method,
/// Authentication Data and Reason String; AUTH 0x19 Re-authenticate (§4.12.1).
#[test]
fn v5_auth_with_properties() {
    let bytes = [
        0xF0, 0x18, 0x18, // AUTH, remaining length 24, Continue authentication
        0x16, // Property Length 22
        0x15, 0x00, 0x05, b'S', b'C', b'R', b'A', b'M', // Authentication Method
        0x16, 0x00, 0x04, 0x01, 0x02, 0x03, 0x04, // Authentication Data
        0x1F, 0x00, 0x04, b'm', b'o', b'r', b'e', // Reason String
    ];
    let props = [
        Property::AuthenticationMethod("SCRAM"),
        Property::AuthenticationData(&[1, 2, 3, 4]),
        Property::ReasonString("more"),
    ];
    check_vector(
        &bytes,
        V5,
        &Packet::Auth(Auth {
            reason: ReasonCode::ContinueAuthentication,
            properties: Properties::new(&props),
        }),
    );
    let Packet::Auth(a) = decode_vector(&bytes, V5) else {
        unreachable!()
    };
    assert_eq!(a.properties.authentication_method(), Some("SCRAM"));
    assert_eq!(a.properties.authentication_data(), Some(&[1, 2, 3, 4][..]));
    assert_eq!(a.properties.reason_string(), Some("more"));

    let reauth = [
        0xF0, 0x0A, 0x19, 0x08, 0x15, 0x00, 0x05, b'S', b'C', b'R', b'A', b'M',
    ];
    let props = [Property::AuthenticationMethod("SCRAM")];
    check_vector(
        &reauth,
        V5,
        &Packet::Auth(Auth {
            reason: ReasonCode::ReAuthenticate,
            properties: Properties::new(&props),
        }),
    );
    // §2.1.2: AUTH does not exist before MQTT 5.
    assert_eq!(
        Packet::Auth(a).encode(V3_1_1, &mut [0u8; 64]),
        Err(EncodeError::NotInThisVersion)
    );
}

/// MQTT 5.0 §2.2.2.2, Table 2-4: every property identifier appears, with its value, in at
/// least one vector above.
#[test]
fn every_property_identifier_is_covered() {
    let vectors: [&[u8]; 6] = [
        &V5_CONNECT,
        &V5_CONNECT_ALL_PROPERTIES,
        &V5_CONNACK_ALL_PROPERTIES,
        &V5_PUBLISH_ALL_PROPERTIES,
        &V5_SUBSCRIBE_OPTIONS,
        &[0xF0, 0x00],
    ];
    let mut seen = BTreeSet::new();
    for bytes in vectors {
        let lists: Vec<Properties<'_>> = match decode_vector(bytes, V5) {
            Packet::Connect(c) => {
                let mut l = vec![c.properties];
                l.extend(c.will.map(|w| w.properties));
                l
            }
            Packet::Connack(c) => vec![c.properties],
            Packet::Publish(p) => vec![p.properties],
            Packet::Subscribe(s) => vec![s.properties],
            Packet::Auth(a) => vec![a.properties],
            other => panic!("{other:?}"),
        };
        for list in lists {
            seen.extend(list.iter().map(|p| p.id() as u8));
        }
    }
    let all = [
        PropertyId::PayloadFormatIndicator,
        PropertyId::MessageExpiryInterval,
        PropertyId::ContentType,
        PropertyId::ResponseTopic,
        PropertyId::CorrelationData,
        PropertyId::SubscriptionIdentifier,
        PropertyId::SessionExpiryInterval,
        PropertyId::AssignedClientIdentifier,
        PropertyId::ServerKeepAlive,
        PropertyId::AuthenticationMethod,
        PropertyId::AuthenticationData,
        PropertyId::RequestProblemInformation,
        PropertyId::WillDelayInterval,
        PropertyId::RequestResponseInformation,
        PropertyId::ResponseInformation,
        PropertyId::ServerReference,
        PropertyId::ReasonString,
        PropertyId::ReceiveMaximum,
        PropertyId::TopicAliasMaximum,
        PropertyId::TopicAlias,
        PropertyId::MaximumQoS,
        PropertyId::RetainAvailable,
        PropertyId::UserProperty,
        PropertyId::MaximumPacketSize,
        PropertyId::WildcardSubscriptionAvailable,
        PropertyId::SubscriptionIdentifierAvailable,
        PropertyId::SharedSubscriptionAvailable,
    ];
    // Table 2-4 identifiers.
    let ids: Vec<u8> = all.iter().map(|&id| id as u8).collect();
    assert_eq!(
        ids,
        [
            0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x11, 0x12, 0x13, 0x15, 0x16, 0x17, 0x18, 0x19,
            0x1A, 0x1C, 0x1F, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A
        ]
    );
    assert_eq!(seen, ids.into_iter().collect::<BTreeSet<_>>());
}

/// MQTT 5.0 §3.2.2.3.4 / §3.1.2.11: Maximum QoS 0 and the property boolean values 0/1 both
/// decode, and re-encode, as their wire byte.
#[test]
fn v5_connack_maximum_qos_0_and_flags_set() {
    let bytes = [
        0x20, 0x0D, 0x00, 0x00, 0x0A, // CONNACK, Success, Property Length 10
        0x24, 0x00, // Maximum QoS 0
        0x25, 0x01, // Retain Available 1
        0x28, 0x01, // Wildcard Subscription Available 1
        0x29, 0x00, // Subscription Identifiers Available 0
        0x2A, 0x01, // Shared Subscription Available 1
    ];
    let props = [
        Property::MaximumQoS(QoS::AtMostOnce),
        Property::RetainAvailable(true),
        Property::WildcardSubscriptionAvailable(true),
        Property::SubscriptionIdentifierAvailable(false),
        Property::SharedSubscriptionAvailable(true),
    ];
    check_vector(
        &bytes,
        V5,
        &Packet::Connack(Connack {
            session_present: false,
            reason: ReasonCode::Success,
            properties: Properties::new(&props),
        }),
    );
}

/// MQTT 5.0 §3.2.2.2: a CONNACK for 3.1.1 maps the MQTT 5 reason onto the 3.1.1 return
/// code (MQTT 3.1.1 §3.2.2.3) and drops the properties.
#[test]
fn v5_connack_encoded_for_v311() {
    let props = [Property::ReasonString("no")];
    let refused = Packet::Connack(Connack {
        session_present: false,
        reason: ReasonCode::NotAuthorized,
        properties: Properties::new(&props),
    });
    assert_encodes_to(&refused, V3_1_1, &[0x20, 0x02, 0x00, 0x05]);
    assert_encodes_to(
        &refused,
        V5,
        &[0x20, 0x08, 0x00, 0x87, 0x05, 0x1F, 0x00, 0x02, b'n', b'o'],
    );
}
