//! Hand-built packets that break one rule of MQTT 3.1.1 (OASIS, 2014) or MQTT 5.0 (OASIS,
//! 2019) each. Every `DecodeError` variant is produced by at least one of them; each test
//! checks the exact error and the MQTT 5 reason code `DecodeError::reason_code` gives for
//! it (MQTT 5.0 §4.13 and the rule's own section).

use midge_wire::{
    DecodeError, DecodeOptions, Decoded, MAX_PACKET_SIZE, Packet, PacketType, PropertyId,
    ProtocolVersion, QoS, QosPid, ReasonCode, TopicError, decode,
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

/// A packet: the first byte, the remaining length of `body` (at most 127 here), the body.
fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    assert!(
        body.len() < 128,
        "test frames use a one-byte remaining length"
    );
    let mut out = vec![first, body.len() as u8];
    out.extend_from_slice(body);
    out
}

/// A UTF-8 Encoded String / Binary Data field: two-byte length, then the bytes.
fn string(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Asserts that `bytes` is refused with `error`, whose reason code is `reason`.
#[track_caller]
fn assert_violation(
    bytes: &[u8],
    version: ProtocolVersion,
    error: DecodeError,
    reason: ReasonCode,
) {
    assert_violation_with(bytes, &opts(version), error, reason);
}

#[track_caller]
fn assert_violation_with(
    bytes: &[u8],
    opts: &DecodeOptions,
    error: DecodeError,
    reason: ReasonCode,
) {
    match decode(bytes, opts) {
        Err(e) => {
            assert_eq!(e, error, "{bytes:02x?} ({:?})", opts.version);
            assert_eq!(
                e.reason_code(),
                reason,
                "reason code of {e:?} for {bytes:02x?} ({:?})",
                opts.version
            );
            assert!(!e.to_string().is_empty());
        }
        Ok(d) => panic!(
            "{bytes:02x?} ({:?}) decoded to {d:?}, expected {error:?}",
            opts.version
        ),
    }
}

/// Decodes a packet that must be accepted whole.
#[track_caller]
fn assert_accepted(bytes: &[u8], version: ProtocolVersion) -> Packet<'_> {
    match decode(bytes, &opts(version)) {
        Ok(Decoded::Complete { packet, len }) => {
            assert_eq!(len, bytes.len());
            packet
        }
        other => panic!("{bytes:02x?} ({version:?}) decoded to {other:?}"),
    }
}

/// A 3.1.1 CONNECT with the given Connect Flags and payload after the Client Identifier
/// "c".
fn connect_v311(flags: u8, payload: &[u8]) -> Vec<u8> {
    frame(
        0x10,
        &cat(&[
            &string(b"MQTT"),
            &[0x04, flags, 0x00, 0x3C],
            &string(b"c"),
            payload,
        ]),
    )
}

/// An MQTT 5 CONNECT with the given flags, properties (wire form, without the length) and
/// payload after the Client Identifier "c".
fn connect_v5(flags: u8, properties: &[u8], payload: &[u8]) -> Vec<u8> {
    frame(
        0x10,
        &cat(&[
            &string(b"MQTT"),
            &[0x05, flags, 0x00, 0x3C, properties.len() as u8],
            properties,
            &string(b"c"),
            payload,
        ]),
    )
}

/// A CONNECT with the given protocol name and level and nothing else wrong.
fn connect_named(name: &[u8], level: u8) -> Vec<u8> {
    let props: &[u8] = if level == 5 { &[0x00] } else { &[] };
    frame(
        0x10,
        &cat(&[
            &string(name),
            &[level, 0x02, 0x00, 0x3C],
            props,
            &string(b"c"),
        ]),
    )
}

/// An MQTT 5 QoS 0 PUBLISH to `topic` with the given properties (wire form).
fn publish_v5(topic: &[u8], properties: &[u8]) -> Vec<u8> {
    frame(
        0x30,
        &cat(&[&string(topic), &[properties.len() as u8], properties, b"x"]),
    )
}

/// A SUBSCRIBE with Packet Identifier 10, one filter and its options byte.
fn subscribe(version: ProtocolVersion, filter: &[u8], options: u8) -> Vec<u8> {
    let props: &[u8] = if version == V5 { &[0x00] } else { &[] };
    frame(
        0x82,
        &cat(&[&[0x00, 0x0A], props, &string(filter), &[options]]),
    )
}

/// An UNSUBSCRIBE with Packet Identifier 10 and one filter.
fn unsubscribe(version: ProtocolVersion, filter: &[u8]) -> Vec<u8> {
    let props: &[u8] = if version == V5 { &[0x00] } else { &[] };
    frame(0xA2, &cat(&[&[0x00, 0x0A], props, &string(filter)]))
}

// ---------------------------------------------------------------------------------------
// Fixed header
// ---------------------------------------------------------------------------------------

/// MQTT 3.1.1 §2.2.3 / MQTT 5.0 §1.5.5: the Remaining Length is at most four bytes.
#[test]
fn malformed_remaining_length_five_bytes() {
    for version in [V3_1, V3_1_1, V5] {
        assert_violation(
            &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
            version,
            DecodeError::MalformedRemainingLength,
            ReasonCode::MalformedPacket,
        );
        // The fourth byte already says a fifth follows: refused without waiting for it.
        assert_violation(
            &[0x30, 0x80, 0x80, 0x80, 0x80],
            version,
            DecodeError::MalformedRemainingLength,
            ReasonCode::MalformedPacket,
        );
        // Three continuation bytes: still possibly a valid length, so incomplete.
        assert_eq!(
            decode(&[0x30, 0x80, 0x80, 0x80], &opts(version)),
            Ok(Decoded::Incomplete { frame_len: None })
        );
    }
}

/// MQTT 5.0 §1.5.5 [MQTT-1.5.5-1]: "The encoded value MUST use the minimum number of bytes
/// necessary to represent the value."
#[test]
fn malformed_remaining_length_not_minimal() {
    assert_violation(
        &[0xC0, 0x80, 0x00],
        V5,
        DecodeError::MalformedRemainingLength,
        ReasonCode::MalformedPacket,
    );
    assert_violation(
        &[0x30, 0x85, 0x80, 0x00],
        V5,
        DecodeError::MalformedRemainingLength,
        ReasonCode::MalformedPacket,
    );
}

/// MQTT 5.0 §3.1.2.11.4 / §4.13: a packet larger than the Maximum Packet Size the receiver
/// announced is refused with 0x95 Packet too large, from the fixed header alone.
#[test]
fn packet_too_large_from_the_fixed_header_alone() {
    let small = DecodeOptions {
        version: V5,
        max_packet_size: 128,
    };
    // 2 + 127 = 129 bytes: only the two header bytes are present.
    assert_violation_with(
        &[0x30, 0x7F],
        &small,
        DecodeError::PacketTooLarge {
            size: 129,
            max: 128,
        },
        ReasonCode::PacketTooLarge,
    );
    // A three-byte header: 3 + 16383.
    assert_violation_with(
        &[0x82, 0xFF, 0x7F],
        &small,
        DecodeError::PacketTooLarge {
            size: 16_386,
            max: 128,
        },
        ReasonCode::PacketTooLarge,
    );
    // Exactly the maximum is fine: the reader is told to wait for 128 bytes.
    assert_eq!(
        decode(&[0x30, 0x7E], &small),
        Ok(Decoded::Incomplete {
            frame_len: Some(128)
        })
    );
    // The default maximum is the largest packet MQTT can express.
    assert_eq!(
        decode(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F], &opts(V5)),
        Ok(Decoded::Incomplete {
            frame_len: Some(MAX_PACKET_SIZE)
        })
    );
    let one_less = DecodeOptions {
        version: V3_1_1,
        max_packet_size: MAX_PACKET_SIZE as u32 - 1,
    };
    assert_violation_with(
        &[0x30, 0xFF, 0xFF, 0xFF, 0x7F],
        &one_less,
        DecodeError::PacketTooLarge {
            size: MAX_PACKET_SIZE,
            max: MAX_PACKET_SIZE as u32 - 1,
        },
        ReasonCode::PacketTooLarge,
    );
}

/// MQTT 3.1.1 §2.2.1 Table 2.1 / MQTT 5.0 §2.1.2 Table 2-1: type 0 is reserved; type 15 is
/// reserved in 3.1.1 and is AUTH only in MQTT 5.
#[test]
fn invalid_packet_type() {
    for version in [V3_1, V3_1_1, V5] {
        assert_violation(
            &[0x00, 0x00],
            version,
            DecodeError::InvalidPacketType(0),
            ReasonCode::MalformedPacket,
        );
        // The first byte is enough.
        assert_violation(
            &[0x00],
            version,
            DecodeError::InvalidPacketType(0),
            ReasonCode::MalformedPacket,
        );
    }
    for version in [V3_1, V3_1_1] {
        assert_violation(
            &[0xF0, 0x00],
            version,
            DecodeError::InvalidPacketType(15),
            ReasonCode::MalformedPacket,
        );
    }
    assert!(matches!(
        assert_accepted(&[0xF0, 0x00], V5),
        Packet::Auth(_)
    ));
}

/// MQTT 3.1.1 §2.2.2 Table 2.2 [MQTT-2.2.2-1, MQTT-2.2.2-2] / MQTT 5.0 §2.1.3 Table 2-2:
/// the flag bits of every packet but PUBLISH are fixed (0010 for PUBREL, SUBSCRIBE and
/// UNSUBSCRIBE, 0000 otherwise); other values are malformed.
#[test]
fn invalid_header_flags_on_non_publish_packets() {
    let cases: [(&[u8], PacketType, u8); 15] = [
        (&[0x63, 0x02, 0x00, 0x0A], PacketType::Pubrel, 0x3),
        (&[0x60, 0x02, 0x00, 0x0A], PacketType::Pubrel, 0x0),
        (
            &[0x80, 0x08, 0x00, 0x0A, 0x00, 0x03, b'a', b'/', b'b', 0x01],
            PacketType::Subscribe,
            0x0,
        ),
        (
            &[0xA0, 0x07, 0x00, 0x0A, 0x00, 0x03, b'a', b'/', b'b'],
            PacketType::Unsubscribe,
            0x0,
        ),
        (&[0x12, 0x00], PacketType::Connect, 0x2),
        (&[0x22, 0x02, 0x00, 0x00], PacketType::Connack, 0x2),
        (&[0x41, 0x02, 0x00, 0x0A], PacketType::Puback, 0x1),
        (&[0x58, 0x02, 0x00, 0x0A], PacketType::Pubrec, 0x8),
        (&[0x72, 0x02, 0x00, 0x0A], PacketType::Pubcomp, 0x2),
        (&[0x9F, 0x03, 0x00, 0x0A, 0x00], PacketType::Suback, 0xF),
        (&[0xB2, 0x02, 0x00, 0x0A], PacketType::Unsuback, 0x2),
        (&[0xC8, 0x00], PacketType::Pingreq, 0x8),
        (&[0xD1, 0x00], PacketType::Pingresp, 0x1),
        (&[0xE2, 0x00], PacketType::Disconnect, 0x2),
        (&[0xEF, 0x00], PacketType::Disconnect, 0xF),
    ];
    for (bytes, packet, flags) in cases {
        for version in [V3_1_1, V5] {
            let error = DecodeError::InvalidHeaderFlags { packet, flags };
            assert_violation(bytes, version, error, ReasonCode::MalformedPacket);
            // Refused on the first byte, before the remaining length is in.
            assert_violation(&bytes[..1], version, error, ReasonCode::MalformedPacket);
        }
    }
    assert_violation(
        &[0xF1, 0x00],
        V5,
        DecodeError::InvalidHeaderFlags {
            packet: PacketType::Auth,
            flags: 0x1,
        },
        ReasonCode::MalformedPacket,
    );
}

/// MQTT 3.1.1 §3.3.1.1 [MQTT-3.3.1-2] / MQTT 5.0 §3.3.1.1 [MQTT-3.3.1-2]: "The DUP flag MUST
/// be set to 0 for all QoS 0 messages."
#[test]
fn invalid_header_flags_dup_with_qos0() {
    for version in [V3_1_1, V5] {
        let props: &[u8] = if version == V5 { &[0x00] } else { &[] };
        let body = cat(&[&string(b"a/b"), props, b"hi"]);
        assert_violation(
            &frame(0x38, &body),
            version,
            DecodeError::InvalidHeaderFlags {
                packet: PacketType::Publish,
                flags: 0x8,
            },
            ReasonCode::MalformedPacket,
        );
        assert_violation(
            &frame(0x39, &body),
            version,
            DecodeError::InvalidHeaderFlags {
                packet: PacketType::Publish,
                flags: 0x9,
            },
            ReasonCode::MalformedPacket,
        );
    }
}

// ---------------------------------------------------------------------------------------
// Packet length
// ---------------------------------------------------------------------------------------

/// MQTT 5.0 §4.13 / §1.5: a field that runs past the end of the packet (the Remaining Length
/// is shorter than the fields need) is malformed.
#[test]
fn unexpected_end() {
    // 3.1.1 PUBACK with remaining length 1: half a Packet Identifier (§3.4).
    assert_violation(
        &[0x40, 0x01, 0x00],
        V3_1_1,
        DecodeError::UnexpectedEnd,
        ReasonCode::MalformedPacket,
    );
    // A Topic Name of length 5 with one byte left (§1.5.3).
    assert_violation(
        &[0x30, 0x03, 0x00, 0x05, b'a'],
        V3_1_1,
        DecodeError::UnexpectedEnd,
        ReasonCode::MalformedPacket,
    );
    // QoS 1 PUBLISH without room for its Packet Identifier (§3.3.2.2).
    assert_violation(
        &[0x32, 0x05, 0x00, 0x03, b'a', b'/', b'b'],
        V3_1_1,
        DecodeError::UnexpectedEnd,
        ReasonCode::MalformedPacket,
    );
    // CONNECT that stops after the protocol level (§3.1.2).
    assert_violation(
        &frame(0x10, &cat(&[&string(b"MQTT"), &[0x04]])),
        V3_1_1,
        DecodeError::UnexpectedEnd,
        ReasonCode::MalformedPacket,
    );
    // Password flag set but no password (§3.1.3.5).
    assert_violation(
        &connect_v311(0xC2, &string(b"user")),
        V3_1_1,
        DecodeError::UnexpectedEnd,
        ReasonCode::MalformedPacket,
    );
    // MQTT 5 Property Length 5 with one byte of properties (§2.2.2.1).
    assert_violation(
        &[0x40, 0x05, 0x00, 0x0A, 0x00, 0x05, 0x1F],
        V5,
        DecodeError::UnexpectedEnd,
        ReasonCode::MalformedPacket,
    );
    // A User Property whose value is cut off by the Property Length (§3.4.2.2.3).
    assert_violation(
        &[0x40, 0x08, 0x00, 0x0A, 0x00, 0x04, 0x26, 0x00, 0x01, b'k'],
        V5,
        DecodeError::UnexpectedEnd,
        ReasonCode::MalformedPacket,
    );
    // MQTT 5 CONNACK with flags and reason code but no Property Length (§3.2.2.3.1).
    assert_violation(
        &[0x20, 0x01, 0x00],
        V5,
        DecodeError::UnexpectedEnd,
        ReasonCode::MalformedPacket,
    );
}

/// MQTT 3.1.1 §3.12–§3.14 / §3.4: the Remaining Length of PINGREQ, PINGRESP and 3.1.1
/// DISCONNECT is 0 and of a 3.1.1 PUBACK is 2; more bytes than the fields is malformed.
#[test]
fn trailing_bytes() {
    let cases: [(&[u8], ProtocolVersion); 12] = [
        (&[0xC0, 0x01, 0x00], V3_1_1),
        (&[0xC0, 0x01, 0x00], V5),
        (&[0xD0, 0x01, 0x00], V3_1_1),
        (&[0xD0, 0x01, 0x00], V5),
        (&[0xE0, 0x01, 0x00], V3_1_1),
        (&[0x40, 0x03, 0x00, 0x0A, 0x00], V3_1_1),
        (&[0x62, 0x03, 0x00, 0x0A, 0x00], V3_1_1),
        (&[0xB0, 0x03, 0x00, 0x0A, 0x00], V3_1_1),
        (&[0x20, 0x03, 0x00, 0x00, 0x00], V3_1_1),
        // MQTT 5 CONNACK with a byte after its (empty) properties.
        (&[0x20, 0x04, 0x00, 0x00, 0x00, 0x00], V5),
        // MQTT 5 PUBACK with a byte after its properties.
        (&[0x40, 0x05, 0x00, 0x0A, 0x00, 0x00, 0xFF], V5),
        // MQTT 5 DISCONNECT with a byte after its properties.
        (&[0xE0, 0x03, 0x00, 0x00, 0x00], V5),
    ];
    for (bytes, version) in cases {
        assert_violation(
            bytes,
            version,
            DecodeError::TrailingBytes,
            ReasonCode::MalformedPacket,
        );
    }
    // A CONNECT with a byte after the Client Identifier and no flag announcing more.
    assert_violation(
        &connect_v311(0x02, &[0x00]),
        V3_1_1,
        DecodeError::TrailingBytes,
        ReasonCode::MalformedPacket,
    );
}

// ---------------------------------------------------------------------------------------
// Data representation
// ---------------------------------------------------------------------------------------

/// MQTT 5.0 §1.5.5 [MQTT-1.5.5-1] and §2.2.2.1: a Variable Byte Integer inside the packet
/// (Property Length, Property Identifier, Subscription Identifier) of more than four
/// bytes, not minimal, or cut off by the end of the packet is malformed.
#[test]
fn malformed_var_int() {
    let cases: [&[u8]; 5] = [
        // Property Length of five bytes.
        &[0x40, 0x08, 0x00, 0x0A, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
        // Property Length cut off by the end of the packet.
        &[0x40, 0x04, 0x00, 0x0A, 0x00, 0x80],
        // Property Identifier 0x1F written in two bytes.
        &[0x40, 0x06, 0x00, 0x0A, 0x00, 0x02, 0x9F, 0x00],
        // Subscription Identifier 0 written in two bytes (0x80 0x00).
        &[
            0x82, 0x0A, 0x00, 0x0A, 0x03, 0x0B, 0x80, 0x00, 0x00, 0x01, b'#', 0x00,
        ],
        // Subscription Identifier cut off by the Property Length.
        &[
            0x82, 0x09, 0x00, 0x0A, 0x02, 0x0B, 0x80, 0x00, 0x01, b'#', 0x00,
        ],
    ];
    for bytes in cases {
        assert_violation(
            bytes,
            V5,
            DecodeError::MalformedVarInt,
            ReasonCode::MalformedPacket,
        );
    }
}

/// MQTT 3.1.1 §1.5.3 [MQTT-1.5.3-1] / MQTT 5.0 §1.5.4 [MQTT-1.5.4-1]: ill-formed UTF-8,
/// including encodings of the surrogates U+D800..U+DFFF, is malformed.
#[test]
fn invalid_utf8() {
    let bad: [&[u8]; 6] = [
        &[0xED, 0xA0, 0x80],       // U+D800, a surrogate
        &[0xED, 0xBF, 0xBF],       // U+DFFF, a surrogate
        &[0xC3, 0x28],             // broken two-byte sequence
        &[0xC0, 0xAF],             // overlong '/'
        &[b'a', 0xFF],             // never valid in UTF-8
        &[0xF4, 0x90, 0x80, 0x80], // above U+10FFFF
    ];
    for topic in bad {
        for version in [V3_1_1, V5] {
            let props: &[u8] = if version == V5 { &[0x00] } else { &[] };
            assert_violation(
                &frame(0x30, &cat(&[&string(topic), props])),
                version,
                DecodeError::InvalidUtf8,
                ReasonCode::MalformedPacket,
            );
        }
    }
    // In a Client Identifier (§3.1.3.1), a topic filter (§3.8.3) and a User Property
    // (§2.2.2.2).
    let surrogate = [0xED, 0xA0, 0x80];
    assert_violation(
        &frame(
            0x10,
            &cat(&[
                &string(b"MQTT"),
                &[0x04, 0x02, 0x00, 0x3C],
                &string(&surrogate),
            ]),
        ),
        V3_1_1,
        DecodeError::InvalidUtf8,
        ReasonCode::MalformedPacket,
    );
    assert_violation(
        &subscribe(V3_1_1, &surrogate, 0x00),
        V3_1_1,
        DecodeError::InvalidUtf8,
        ReasonCode::MalformedPacket,
    );
    assert_violation(
        &publish_v5(b"a", &cat(&[&[0x26], &string(b"k"), &string(&surrogate)])),
        V5,
        DecodeError::InvalidUtf8,
        ReasonCode::MalformedPacket,
    );
}

/// MQTT 3.1.1 §1.5.3 [MQTT-1.5.3-2] / MQTT 5.0 §1.5.4 [MQTT-1.5.4-2]: a UTF-8 Encoded String
/// MUST NOT include U+0000.
#[test]
fn null_character() {
    assert_violation(
        &[0x30, 0x05, 0x00, 0x03, b'a', 0x00, b'b'],
        V3_1_1,
        DecodeError::NullCharacter,
        ReasonCode::MalformedPacket,
    );
    assert_violation(
        &publish_v5(b"a\0b", &[]),
        V5,
        DecodeError::NullCharacter,
        ReasonCode::MalformedPacket,
    );
    assert_violation(
        &subscribe(V5, b"a/\0", 0x00),
        V5,
        DecodeError::NullCharacter,
        ReasonCode::MalformedPacket,
    );
    assert_violation(
        &connect_v311(0x82, &string(b"us\0er")),
        V3_1_1,
        DecodeError::NullCharacter,
        ReasonCode::MalformedPacket,
    );
    assert_violation(
        &publish_v5(b"a", &cat(&[&[0x26], &string(b"\0"), &string(b"v")])),
        V5,
        DecodeError::NullCharacter,
        ReasonCode::MalformedPacket,
    );
}

// ---------------------------------------------------------------------------------------
// Topic names and filters
// ---------------------------------------------------------------------------------------

/// MQTT 3.1.1 §3.3.2.1 [MQTT-3.3.2-2] / MQTT 5.0 §3.3.2.1 [MQTT-3.3.2-2]: "The Topic Name in
/// the PUBLISH packet MUST NOT contain wildcard characters." (MQTT 5.0 §4.13 / Table 2-6:
/// 0x90 Topic Name invalid.)
#[test]
fn invalid_topic_name_wildcards_in_publish() {
    for topic in [&b"a/+"[..], b"a/#", b"+", b"#", b"a+b", b"a/b#"] {
        assert_violation(
            &frame(0x30, &cat(&[&string(topic), b"hi"])),
            V3_1_1,
            DecodeError::InvalidTopicName(TopicError::WildcardInName),
            ReasonCode::TopicNameInvalid,
        );
        assert_violation(
            &publish_v5(topic, &[]),
            V5,
            DecodeError::InvalidTopicName(TopicError::WildcardInName),
            ReasonCode::TopicNameInvalid,
        );
    }
}

/// MQTT 3.1.1 §3.1.3.2 [MQTT-3.1.3-10] and §4.7.3: the Will Topic is a topic name, so no
/// wildcards.
#[test]
fn invalid_topic_name_in_will() {
    let payload = cat(&[&string(b"w/#"), &string(b"bye")]);
    assert_violation(
        &connect_v311(0x06, &payload),
        V3_1_1,
        DecodeError::InvalidTopicName(TopicError::WildcardInName),
        ReasonCode::TopicNameInvalid,
    );
    let payload = cat(&[&[0x00], &string(b"w/+"), &string(b"bye")]);
    assert_violation(
        &connect_v5(0x06, &[], &payload),
        V5,
        DecodeError::InvalidTopicName(TopicError::WildcardInName),
        ReasonCode::TopicNameInvalid,
    );
}

/// MQTT 5.0 §3.3.2.1: "It is a Protocol Error if the Topic Name is zero length and there is
/// no Topic Alias." (Also §3.3.2.3.4: such a packet is answered with DISCONNECT 0x82
/// Protocol Error.) MQTT 3.1.1 §4.7.3 [MQTT-4.7.3-1]: "All Topic Names and Topic Filters
/// MUST be at least one character long." The 3.1.1 packet gives the same error value, and
/// `reason_code` depends on that value alone, so it is 0x82 as well.
#[test]
fn empty_publish_topic_without_topic_alias_is_a_protocol_error() {
    assert_violation(
        &publish_v5(b"", &[]),
        V5,
        DecodeError::InvalidTopicName(TopicError::Empty),
        ReasonCode::ProtocolError,
    );
    // Other properties do not stand in for a Topic Alias.
    assert_violation(
        &publish_v5(b"", &[0x02, 0x00, 0x00, 0x00, 0x3C]),
        V5,
        DecodeError::InvalidTopicName(TopicError::Empty),
        ReasonCode::ProtocolError,
    );
    assert_violation(
        &[0x30, 0x04, 0x00, 0x00, b'h', b'i'],
        V3_1_1,
        DecodeError::InvalidTopicName(TopicError::Empty),
        ReasonCode::ProtocolError,
    );
}

/// MQTT 5.0 §3.3.2.3.4: with a Topic Alias the Topic Name may be empty.
#[test]
fn empty_v5_publish_topic_with_topic_alias_is_accepted() {
    let bytes = publish_v5(b"", &[0x23, 0x00, 0x01]);
    let Packet::Publish(p) = assert_accepted(&bytes, V5) else {
        panic!("not a PUBLISH")
    };
    assert_eq!(p.topic, "");
    assert_eq!(p.properties.topic_alias(), Some(1));
    assert_eq!(p.qos_pid, QosPid::AtMostOnce);
    assert_eq!(p.payload, b"x");
    // A Topic Alias with a non-empty topic name (setting the alias) is accepted too.
    let bytes = publish_v5(b"a/b", &[0x23, 0x00, 0x01]);
    assert!(matches!(assert_accepted(&bytes, V5), Packet::Publish(_)));
}

/// MQTT 3.1.1 §4.7.1.2 [MQTT-4.7.1-2] / MQTT 5.0 §4.7.1.2: "#" must be the last level and
/// alone in it; §4.7.1.3 [MQTT-4.7.1-3]: "+" must occupy an entire level. MQTT 5.0 §4.8.2
/// [MQTT-4.8.2-1, MQTT-4.8.2-2]: "$share/" needs a ShareName, then "/", then a filter.
#[test]
fn invalid_topic_filter_in_subscribe_and_unsubscribe() {
    let cases: [(&[u8], TopicError, &[ProtocolVersion]); 7] = [
        (b"a/#/b", TopicError::MisplacedWildcard, &[V3_1_1, V5]),
        (b"a+", TopicError::MisplacedWildcard, &[V3_1_1, V5]),
        (b"a/b#", TopicError::MisplacedWildcard, &[V3_1_1, V5]),
        (b"", TopicError::Empty, &[V3_1_1, V5]),
        (b"$share/g", TopicError::InvalidSharedSubscription, &[V5]),
        (b"$share//a", TopicError::InvalidSharedSubscription, &[V5]),
        (b"$share/g+/a", TopicError::InvalidSharedSubscription, &[V5]),
    ];
    for (filter, topic_error, versions) in cases {
        for &version in versions {
            let error = DecodeError::InvalidTopicFilter(topic_error);
            assert_violation(
                &subscribe(version, filter, 0x01),
                version,
                error,
                ReasonCode::TopicFilterInvalid,
            );
            assert_violation(
                &unsubscribe(version, filter),
                version,
                error,
                ReasonCode::TopicFilterInvalid,
            );
        }
    }
    // The filter inside a shared subscription follows the same rules.
    assert_violation(
        &subscribe(V5, b"$share/g/a/#/b", 0x01),
        V5,
        DecodeError::InvalidTopicFilter(TopicError::MisplacedWildcard),
        ReasonCode::TopicFilterInvalid,
    );
    // A bad filter after a good one.
    let two = frame(
        0x82,
        &cat(&[
            &[0x00, 0x0A, 0x00],
            &string(b"a/+"),
            &[0x01],
            &string(b"a+"),
            &[0x01],
        ]),
    );
    assert_violation(
        &two,
        V5,
        DecodeError::InvalidTopicFilter(TopicError::MisplacedWildcard),
        ReasonCode::TopicFilterInvalid,
    );
}

// ---------------------------------------------------------------------------------------
// Packet identifiers
// ---------------------------------------------------------------------------------------

/// MQTT 3.1.1 §2.3.1 [MQTT-2.3.1-1] / MQTT 5.0 §2.2.1 [MQTT-2.2.1-3]: SUBSCRIBE, UNSUBSCRIBE
/// and PUBLISH with QoS > 0 carry a non-zero Packet Identifier, and the acknowledgements
/// echo it.
#[test]
fn zero_packet_id() {
    let v311: [&[u8]; 10] = [
        &[0x32, 0x07, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x00],
        &[0x34, 0x07, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x00],
        &[0x82, 0x08, 0x00, 0x00, 0x00, 0x03, b'a', b'/', b'b', 0x01],
        &[0xA2, 0x07, 0x00, 0x00, 0x00, 0x03, b'a', b'/', b'b'],
        &[0x40, 0x02, 0x00, 0x00],
        &[0x50, 0x02, 0x00, 0x00],
        &[0x62, 0x02, 0x00, 0x00],
        &[0x70, 0x02, 0x00, 0x00],
        &[0x90, 0x03, 0x00, 0x00, 0x00],
        &[0xB0, 0x02, 0x00, 0x00],
    ];
    for bytes in v311 {
        assert_violation(
            bytes,
            V3_1_1,
            DecodeError::ZeroPacketId,
            ReasonCode::ProtocolError,
        );
    }
    let v5: [&[u8]; 6] = [
        &[0x32, 0x08, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x00, 0x00],
        &[
            0x82, 0x09, 0x00, 0x00, 0x00, 0x00, 0x03, b'a', b'/', b'b', 0x01,
        ],
        &[0xA2, 0x08, 0x00, 0x00, 0x00, 0x00, 0x03, b'a', b'/', b'b'],
        &[0x40, 0x02, 0x00, 0x00],
        &[0x40, 0x03, 0x00, 0x00, 0x10],
        &[0xB0, 0x04, 0x00, 0x00, 0x00, 0x00],
    ];
    for bytes in v5 {
        assert_violation(
            bytes,
            V5,
            DecodeError::ZeroPacketId,
            ReasonCode::ProtocolError,
        );
    }
}

// ---------------------------------------------------------------------------------------
// MQTT 5 properties
// ---------------------------------------------------------------------------------------

/// MQTT 5.0 §2.2.2.2: "A Control Packet which contains an Identifier which is not valid for
/// its packet type ... is a Malformed Packet"; an identifier Table 2-4 does not define is
/// not valid for any packet.
#[test]
fn unknown_property() {
    let cases: [(&[u8], u32); 4] = [
        (&[0x40, 0x05, 0x00, 0x0A, 0x00, 0x01, 0x04], 0x04),
        (&[0x40, 0x05, 0x00, 0x0A, 0x00, 0x01, 0x00], 0x00),
        (&[0x40, 0x05, 0x00, 0x0A, 0x00, 0x01, 0x7F], 0x7F),
        // A two-byte Variable Byte Integer identifier: 0x80 0x01 = 128.
        (&[0x40, 0x06, 0x00, 0x0A, 0x00, 0x02, 0x80, 0x01], 128),
    ];
    for (bytes, id) in cases {
        assert_violation(
            bytes,
            V5,
            DecodeError::UnknownProperty(id),
            ReasonCode::MalformedPacket,
        );
    }
    assert_violation(
        &connect_v5(0x02, &[0x2B, 0x01], &[]),
        V5,
        DecodeError::UnknownProperty(0x2B),
        ReasonCode::MalformedPacket,
    );
}

/// MQTT 5.0 §3.1.2.11.2 ff., §3.3.2.3.4, §3.8.2.1.2: "It is a Protocol Error to include the
/// <property> more than once." Only User Property (and Subscription Identifier in a
/// PUBLISH to a subscriber, §3.3.4) may repeat.
#[test]
fn duplicate_property() {
    assert_violation(
        &connect_v5(0x02, &[0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2], &[]),
        V5,
        DecodeError::DuplicateProperty(PropertyId::SessionExpiryInterval),
        ReasonCode::ProtocolError,
    );
    assert_violation(
        &publish_v5(b"a", &[0x23, 0x00, 0x01, 0x23, 0x00, 0x02]),
        V5,
        DecodeError::DuplicateProperty(PropertyId::TopicAlias),
        ReasonCode::ProtocolError,
    );
    let sub = frame(
        0x82,
        &cat(&[
            &[0x00, 0x0A, 0x04, 0x0B, 0x01, 0x0B, 0x02],
            &string(b"a"),
            &[0x00],
        ]),
    );
    assert_violation(
        &sub,
        V5,
        DecodeError::DuplicateProperty(PropertyId::SubscriptionIdentifier),
        ReasonCode::ProtocolError,
    );
    assert_violation(
        &[0x20, 0x07, 0x00, 0x00, 0x04, 0x24, 0x00, 0x24, 0x01],
        V5,
        DecodeError::DuplicateProperty(PropertyId::MaximumQoS),
        ReasonCode::ProtocolError,
    );
    let reason_twice = cat(&[
        &[0x40, 0x0C, 0x00, 0x0A, 0x80, 0x08],
        &[0x1F],
        &string(b"a"),
        &[0x1F],
        &string(b"b"),
    ]);
    assert_violation(
        &reason_twice,
        V5,
        DecodeError::DuplicateProperty(PropertyId::ReasonString),
        ReasonCode::ProtocolError,
    );
    // In the will properties (§3.1.3.2.2).
    let will = cat(&[
        &[0x0A, 0x18, 0, 0, 0, 1, 0x18, 0, 0, 0, 2],
        &string(b"w"),
        &string(b""),
    ]);
    assert_violation(
        &connect_v5(0x06, &[], &will),
        V5,
        DecodeError::DuplicateProperty(PropertyId::WillDelayInterval),
        ReasonCode::ProtocolError,
    );
    // Repeating what may repeat is fine.
    let ok = publish_v5(
        b"a",
        &[
            0x0B, 0x01, 0x0B, 0x02, 0x26, 0x00, 0x01, b'k', 0x00, 0x00, 0x26, 0x00, 0x01, b'k',
            0x00, 0x00,
        ],
    );
    let Packet::Publish(p) = assert_accepted(&ok, V5) else {
        panic!("not a PUBLISH")
    };
    assert_eq!(p.properties.subscription_identifiers().count(), 2);
    assert_eq!(p.properties.user_properties().count(), 2);
}

/// MQTT 5.0 §2.2.2.2: a property not listed for the packet (Table 2-4) is malformed:
/// Topic Alias in CONNECT, Will Delay Interval outside the will, Session Expiry Interval in
/// the will, Subscription Identifier in UNSUBSCRIBE, and so on.
#[test]
fn property_not_allowed() {
    let not_allowed = |property, packet| DecodeError::PropertyNotAllowed { property, packet };
    assert_violation(
        &connect_v5(0x02, &[0x23, 0x00, 0x01], &[]),
        V5,
        not_allowed(PropertyId::TopicAlias, PacketType::Connect),
        ReasonCode::MalformedPacket,
    );
    assert_violation(
        &connect_v5(0x02, &[0x18, 0x00, 0x00, 0x00, 0x05], &[]),
        V5,
        not_allowed(PropertyId::WillDelayInterval, PacketType::Connect),
        ReasonCode::MalformedPacket,
    );
    assert_violation(
        &connect_v5(0x02, &cat(&[&[0x1F], &string(b"r")]), &[]),
        V5,
        not_allowed(PropertyId::ReasonString, PacketType::Connect),
        ReasonCode::MalformedPacket,
    );
    // Will properties (§3.1.3.2): no Session Expiry Interval, no Topic Alias.
    for (prop, id) in [
        (&[0x11, 0, 0, 0, 1][..], PropertyId::SessionExpiryInterval),
        (&[0x23, 0, 1][..], PropertyId::TopicAlias),
    ] {
        let will = cat(&[&[prop.len() as u8], prop, &string(b"w"), &string(b"")]);
        assert_violation(
            &connect_v5(0x06, &[], &will),
            V5,
            not_allowed(id, PacketType::Connect),
            ReasonCode::MalformedPacket,
        );
    }
    assert_violation(
        &publish_v5(b"a", &[0x11, 0, 0, 0, 1]),
        V5,
        not_allowed(PropertyId::SessionExpiryInterval, PacketType::Publish),
        ReasonCode::MalformedPacket,
    );
    assert_violation(
        &publish_v5(b"a", &[0x18, 0, 0, 0, 1]),
        V5,
        not_allowed(PropertyId::WillDelayInterval, PacketType::Publish),
        ReasonCode::MalformedPacket,
    );
    let unsub = frame(
        0xA2,
        &cat(&[&[0x00, 0x0A, 0x02, 0x0B, 0x01], &string(b"a")]),
    );
    assert_violation(
        &unsub,
        V5,
        not_allowed(PropertyId::SubscriptionIdentifier, PacketType::Unsubscribe),
        ReasonCode::MalformedPacket,
    );
    assert_violation(
        &[0x40, 0x06, 0x00, 0x0A, 0x00, 0x02, 0x25, 0x01],
        V5,
        not_allowed(PropertyId::RetainAvailable, PacketType::Puback),
        ReasonCode::MalformedPacket,
    );
    assert_violation(
        &[0xE0, 0x05, 0x00, 0x03, 0x23, 0x00, 0x01],
        V5,
        not_allowed(PropertyId::TopicAlias, PacketType::Disconnect),
        ReasonCode::MalformedPacket,
    );
    assert_violation(
        &[0xF0, 0x05, 0x18, 0x03, 0x13, 0x00, 0x01],
        V5,
        not_allowed(PropertyId::ServerKeepAlive, PacketType::Auth),
        ReasonCode::MalformedPacket,
    );
}

/// MQTT 5.0 property value ranges: Receive Maximum (§3.1.2.11.3, §3.2.2.3.3), Maximum
/// Packet Size (§3.1.2.11.4), Subscription Identifier (§3.8.2.1.2) "It is a Protocol Error
/// if ... the value 0"; Topic Alias 0 (§3.3.2.3.4 [MQTT-3.3.2-8]) is answered with 0x94
/// Topic Alias invalid; Maximum QoS (§3.2.2.3.4) and Request Problem / Response Information
/// (§3.1.2.11.6–7) "a value other than 0 or 1" is a Protocol Error.
#[test]
fn invalid_property_value() {
    let invalid = DecodeError::InvalidPropertyValue;
    assert_violation(
        &connect_v5(0x02, &[0x21, 0x00, 0x00], &[]),
        V5,
        invalid(PropertyId::ReceiveMaximum),
        ReasonCode::ProtocolError,
    );
    assert_violation(
        &[0x20, 0x06, 0x00, 0x00, 0x03, 0x21, 0x00, 0x00],
        V5,
        invalid(PropertyId::ReceiveMaximum),
        ReasonCode::ProtocolError,
    );
    assert_violation(
        &connect_v5(0x02, &[0x27, 0x00, 0x00, 0x00, 0x00], &[]),
        V5,
        invalid(PropertyId::MaximumPacketSize),
        ReasonCode::ProtocolError,
    );
    assert_violation(
        &publish_v5(b"a", &[0x23, 0x00, 0x00]),
        V5,
        invalid(PropertyId::TopicAlias),
        ReasonCode::TopicAliasInvalid,
    );
    let sub = frame(
        0x82,
        &cat(&[&[0x00, 0x0A, 0x02, 0x0B, 0x00], &string(b"a"), &[0x00]]),
    );
    assert_violation(
        &sub,
        V5,
        invalid(PropertyId::SubscriptionIdentifier),
        ReasonCode::ProtocolError,
    );
    assert_violation(
        &publish_v5(b"a", &[0x0B, 0x00]),
        V5,
        invalid(PropertyId::SubscriptionIdentifier),
        ReasonCode::ProtocolError,
    );
    assert_violation(
        &[0x20, 0x05, 0x00, 0x00, 0x02, 0x24, 0x02],
        V5,
        invalid(PropertyId::MaximumQoS),
        ReasonCode::ProtocolError,
    );
    assert_violation(
        &connect_v5(0x02, &[0x17, 0x02], &[]),
        V5,
        invalid(PropertyId::RequestProblemInformation),
        ReasonCode::ProtocolError,
    );
    assert_violation(
        &connect_v5(0x02, &[0x19, 0x02], &[]),
        V5,
        invalid(PropertyId::RequestResponseInformation),
        ReasonCode::ProtocolError,
    );
    assert_violation(
        &publish_v5(b"a", &[0x01, 0x02]),
        V5,
        invalid(PropertyId::PayloadFormatIndicator),
        ReasonCode::ProtocolError,
    );
    for id in [
        PropertyId::RetainAvailable,
        PropertyId::WildcardSubscriptionAvailable,
        PropertyId::SubscriptionIdentifierAvailable,
        PropertyId::SharedSubscriptionAvailable,
    ] {
        assert_violation(
            &[0x20, 0x05, 0x00, 0x00, 0x02, id as u8, 0x02],
            V5,
            invalid(id),
            ReasonCode::ProtocolError,
        );
    }
    // A Response Topic is a topic name (§3.3.2.3.5 [MQTT-3.3.2-14]): no wildcards.
    assert_violation(
        &publish_v5(b"a", &cat(&[&[0x08], &string(b"r/#")])),
        V5,
        invalid(PropertyId::ResponseTopic),
        ReasonCode::ProtocolError,
    );
    // Topic Alias Maximum 0 is allowed (§3.1.2.11.5: 0 means no aliases).
    let ok = connect_v5(0x02, &[0x22, 0x00, 0x00], &[]);
    let Packet::Connect(c) = assert_accepted(&ok, V5) else {
        panic!("not a CONNECT")
    };
    assert_eq!(c.properties.topic_alias_maximum(), Some(0));
}

// ---------------------------------------------------------------------------------------
// QoS and flags
// ---------------------------------------------------------------------------------------

/// MQTT 3.1.1 §3.3.1.2 [MQTT-3.3.1-4] / MQTT 5.0 §3.3.1.2: "A PUBLISH Packet MUST NOT have
/// both QoS bits set to 1"; §3.1.2.6 [MQTT-3.1.2-14]: Will QoS 3 is malformed; §3.8.3.1
/// [MQTT-3-8.3-4] (3.1.1) / §3.8.3.1 (5.0): subscription QoS 3 is malformed.
#[test]
fn invalid_qos() {
    for version in [V3_1_1, V5] {
        let props: &[u8] = if version == V5 { &[0x00] } else { &[] };
        let body = cat(&[&string(b"a/b"), &[0x00, 0x01], props]);
        for first in [0x36, 0x37, 0x3E, 0x3F] {
            assert_violation(
                &frame(first, &body),
                version,
                DecodeError::InvalidQoS,
                ReasonCode::MalformedPacket,
            );
        }
        assert_violation(
            &subscribe(version, b"a/b", 0x03),
            version,
            DecodeError::InvalidQoS,
            ReasonCode::MalformedPacket,
        );
    }
    let will = cat(&[&string(b"w"), &string(b"bye")]);
    assert_violation(
        &connect_v311(0x1E, &will),
        V3_1_1,
        DecodeError::InvalidQoS,
        ReasonCode::MalformedPacket,
    );
    let will = cat(&[&[0x00], &string(b"w"), &string(b"bye")]);
    assert_violation(
        &connect_v5(0x1E, &[], &will),
        V5,
        DecodeError::InvalidQoS,
        ReasonCode::MalformedPacket,
    );
}

/// MQTT 3.1.1 §3.1.2.3 [MQTT-3.1.2-3] / MQTT 5.0 §3.1.2.3: the reserved bit 0 of the
/// Connect Flags must be 0; otherwise the packet is malformed.
#[test]
fn invalid_connect_flags_reserved_bit() {
    assert_violation(
        &connect_v311(0x03, &[]),
        V3_1_1,
        DecodeError::InvalidConnectFlags,
        ReasonCode::MalformedPacket,
    );
    assert_violation(
        &connect_v5(0x01, &[], &[]),
        V5,
        DecodeError::InvalidConnectFlags,
        ReasonCode::MalformedPacket,
    );
    let v31 = frame(
        0x10,
        &cat(&[&string(b"MQIsdp"), &[0x03, 0x03, 0x00, 0x3C], &string(b"c")]),
    );
    assert_violation(
        &v31,
        V3_1,
        DecodeError::InvalidConnectFlags,
        ReasonCode::MalformedPacket,
    );
}

/// MQTT 3.1.1 §3.1.2.6 [MQTT-3.1.2-13] and §3.1.2.7 [MQTT-3.1.2-15] / MQTT 5.0 §3.1.2.6
/// [MQTT-3.1.2-11] and §3.1.2.7 [MQTT-3.1.2-13]: with the Will Flag 0, Will QoS and Will
/// Retain must be 0.
#[test]
fn invalid_will_flags_without_will() {
    for flags in [0x0A, 0x12, 0x22, 0x2A] {
        assert_violation(
            &connect_v311(flags, &[]),
            V3_1_1,
            DecodeError::InvalidWillFlags,
            ReasonCode::MalformedPacket,
        );
        assert_violation(
            &connect_v5(flags, &[], &[]),
            V5,
            DecodeError::InvalidWillFlags,
            ReasonCode::MalformedPacket,
        );
    }
}

/// MQTT 3.1.1 §3.1.2.9 [MQTT-3.1.2-22]: "If the User Name Flag is set to 0, the Password
/// Flag MUST be set to 0." MQTT 5.0 §3.1.2.9 drops that rule: a password without a user
/// name is allowed.
#[test]
fn password_without_username() {
    assert_violation(
        &connect_v311(0x42, &string(b"pass")),
        V3_1_1,
        DecodeError::PasswordWithoutUsername,
        ReasonCode::MalformedPacket,
    );
    let ok = connect_v5(0x42, &[], &string(b"pass"));
    let Packet::Connect(c) = assert_accepted(&ok, V5) else {
        panic!("not a CONNECT")
    };
    assert_eq!(c.username, None);
    assert_eq!(c.password, Some(&b"pass"[..]));
    assert!(c.clean_start);
}

/// MQTT 3.1.1 §3.1.2.1 [MQTT-3.1.2-1] / MQTT 5.0 §3.1.2.1: the Protocol Name is "MQTT"
/// (case-sensitive); the server may disconnect on anything else.
#[test]
fn invalid_protocol_name() {
    for name in [&b"MQTX"[..], b"mqtt", b"MQT", b"MQTTT", b"MQIsdP", b""] {
        for level in [3, 4, 5] {
            assert_violation(
                &connect_named(name, level),
                V3_1_1,
                DecodeError::InvalidProtocolName,
                ReasonCode::ProtocolError,
            );
        }
    }
}

/// MQTT 3.1.1 §3.1.2.2 [MQTT-3.1.2-2] / MQTT 5.0 §3.1.2.2: an unsupported Protocol Level is
/// answered with return code 0x01 / reason code 0x84 Unsupported Protocol Version. Level 4
/// and 5 belong to "MQTT", level 3 to "MQIsdp".
#[test]
fn unsupported_protocol_version() {
    let cases: [(&[u8], u8); 7] = [
        (b"MQTT", 6),
        (b"MQTT", 3),
        (b"MQTT", 0),
        (b"MQTT", 0xFF),
        (b"MQIsdp", 4),
        (b"MQIsdp", 5),
        (b"MQIsdp", 6),
    ];
    for (name, level) in cases {
        assert_violation(
            &connect_named(name, level),
            V5,
            DecodeError::UnsupportedProtocolVersion(level),
            ReasonCode::UnsupportedProtocolVersion,
        );
    }
    // The right pairs are accepted.
    for (name, level, version) in [
        (&b"MQIsdp"[..], 3, V3_1),
        (b"MQTT", 4, V3_1_1),
        (b"MQTT", 5, V5),
    ] {
        let bytes = connect_named(name, level);
        let Packet::Connect(c) = assert_accepted(&bytes, V3_1_1) else {
            panic!("not a CONNECT")
        };
        assert_eq!(c.version, version);
    }
}

/// MQTT 3.1.1 §3.2.2.1 [MQTT-3.2.2-1] / MQTT 5.0 §3.2.2.1: bits 7–1 of the Connect
/// Acknowledge Flags are reserved and must be 0.
#[test]
fn invalid_connack_flags() {
    for flags in [0x02, 0x80, 0xFE, 0xFF] {
        assert_violation(
            &[0x20, 0x02, flags, 0x00],
            V3_1_1,
            DecodeError::InvalidConnackFlags,
            ReasonCode::MalformedPacket,
        );
        assert_violation(
            &[0x20, 0x03, flags, 0x00, 0x00],
            V5,
            DecodeError::InvalidConnackFlags,
            ReasonCode::MalformedPacket,
        );
    }
}

// ---------------------------------------------------------------------------------------
// Reason codes
// ---------------------------------------------------------------------------------------

/// MQTT 5.0 §2.4 Table 2-6 and each packet's reason code table: a packet may only carry the
/// reason codes listed for it. MQTT 3.1.1 §3.2.2.3: CONNACK return codes 6–255 are
/// reserved; §3.9.3: SUBACK return codes other than 0x00, 0x01, 0x02, 0x80 are reserved.
#[test]
fn invalid_reason_code() {
    let invalid = |packet, code| DecodeError::InvalidReasonCode { packet, code };
    let v5: [(&[u8], PacketType, u8); 11] = [
        // PUBREL only has 0x00 and 0x92 (§3.6.2.1, Table 3-6).
        (&[0x62, 0x03, 0x00, 0x0A, 0x87], PacketType::Pubrel, 0x87),
        (&[0x70, 0x03, 0x00, 0x0A, 0x10], PacketType::Pubcomp, 0x10),
        // 0x03 is not a reason code at all.
        (&[0x40, 0x03, 0x00, 0x0A, 0x03], PacketType::Puback, 0x03),
        (&[0x50, 0x03, 0x00, 0x0A, 0x92], PacketType::Pubrec, 0x92),
        (&[0x20, 0x03, 0x00, 0x04, 0x00], PacketType::Connack, 0x04),
        (&[0x20, 0x03, 0x00, 0x01, 0x00], PacketType::Connack, 0x01),
        (
            &[0x90, 0x04, 0x00, 0x0A, 0x00, 0x11],
            PacketType::Suback,
            0x11,
        ),
        (
            &[0xB0, 0x04, 0x00, 0x0A, 0x00, 0x02],
            PacketType::Unsuback,
            0x02,
        ),
        (&[0xE0, 0x01, 0x01], PacketType::Disconnect, 0x01),
        (&[0xE0, 0x01, 0x18], PacketType::Disconnect, 0x18),
        (&[0xF0, 0x01, 0x87], PacketType::Auth, 0x87),
    ];
    for (bytes, packet, code) in v5 {
        assert_violation(
            bytes,
            V5,
            invalid(packet, code),
            ReasonCode::MalformedPacket,
        );
    }
    for code in [0x06, 0x80, 0xFF] {
        assert_violation(
            &[0x20, 0x02, 0x00, code],
            V3_1_1,
            invalid(PacketType::Connack, code),
            ReasonCode::MalformedPacket,
        );
    }
    for code in [0x03, 0x81, 0x87] {
        assert_violation(
            &[0x90, 0x03, 0x00, 0x0A, code],
            V3_1_1,
            invalid(PacketType::Suback, code),
            ReasonCode::MalformedPacket,
        );
    }
}

// ---------------------------------------------------------------------------------------
// SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK
// ---------------------------------------------------------------------------------------

/// MQTT 3.1.1 §3.8.3.1 [MQTT-3-8.3-4]: bits 7–2 of the Requested QoS byte are reserved;
/// MQTT 5.0 §3.8.3.1 [MQTT-3.8.3-5]: bits 7–6 of the Subscription Options are reserved;
/// "The Server MUST treat a SUBSCRIBE packet as malformed if any of Reserved bits in the
/// Payload are non-zero."
#[test]
fn invalid_subscription_options_reserved_bits() {
    for options in [0x40, 0x80, 0xC1] {
        assert_violation(
            &subscribe(V5, b"a/b", options),
            V5,
            DecodeError::InvalidSubscriptionOptions,
            ReasonCode::MalformedPacket,
        );
    }
    // In 3.1.1 the MQTT 5 option bits (No Local, Retain As Published, Retain Handling)
    // are reserved too.
    for options in [0x04, 0x08, 0x10, 0x20, 0x80] {
        assert_violation(
            &subscribe(V3_1_1, b"a/b", options),
            V3_1_1,
            DecodeError::InvalidSubscriptionOptions,
            ReasonCode::MalformedPacket,
        );
    }
}

/// MQTT 5.0 §3.8.3.1: "It is a Protocol Error to send a Retain Handling value of 3."
///
/// No `DecodeError` variant stands for this alone today (the codec reports
/// `InvalidSubscriptionOptions`, which reserved bits also produce and which must stay
/// Malformed Packet), so the test checks the reason code the specification requires.
#[test]
fn retain_handling_3_is_a_protocol_error() {
    for options in [0x30, 0x31, 0x3E] {
        let error = match decode(&subscribe(V5, b"a/b", options), &opts(V5)) {
            Err(e) => e,
            Ok(d) => panic!("options {options:#04x} decoded to {d:?}"),
        };
        assert_eq!(
            error,
            DecodeError::InvalidRetainHandling,
            "options {options:#04x}"
        );
        assert_eq!(error.reason_code(), ReasonCode::ProtocolError);
    }
}

/// MQTT 5.0 §3.1.2.11.10: "It is a Protocol Error to include Authentication Data if there is
/// no Authentication Method".
#[test]
fn authentication_data_without_method() {
    // CONNECT, MQTT 5, clean start, keep-alive 0, properties: Authentication Data (0x16) "",
    // client id "c".
    let without: &[u8] = &[
        0x10, 0x11, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x00, 0x03, 0x16, 0x00,
        0x00, 0x00, 0x01, b'c',
    ];
    let error = decode(without, &opts(V5)).unwrap_err();
    assert_eq!(error, DecodeError::AuthenticationDataWithoutMethod);
    assert_eq!(error.reason_code(), ReasonCode::ProtocolError);
    // The same with Authentication Method (0x15) "m" first is accepted.
    let with: &[u8] = &[
        0x10, 0x15, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x00, 0x07, 0x15, 0x00,
        0x01, b'm', 0x16, 0x00, 0x00, 0x00, 0x01, b'c',
    ];
    assert!(matches!(
        decode(with, &opts(V5)),
        Ok(Decoded::Complete { .. })
    ));
}

/// MQTT 3.1 §2.1 set DUP on retried PUBREL, SUBSCRIBE and UNSUBSCRIBE; 3.1.1 reserved those
/// bits. Only a 3.1 connection may send them, and never on other packet types.
#[test]
fn dup_on_pubrel_is_accepted_from_3_1_only() {
    let pubrel_dup: &[u8] = &[0x6A, 0x02, 0x00, 0x01];
    assert!(matches!(
        decode(pubrel_dup, &opts(V3_1)),
        Ok(Decoded::Complete { .. })
    ));
    assert!(matches!(
        decode(pubrel_dup, &opts(V3_1_1)),
        Err(DecodeError::InvalidHeaderFlags { flags: 0x0A, .. })
    ));
    let puback_dup: &[u8] = &[0x48, 0x02, 0x00, 0x01];
    assert!(matches!(
        decode(puback_dup, &opts(V3_1)),
        Err(DecodeError::InvalidHeaderFlags { flags: 0x08, .. })
    ));
}

/// MQTT 3.1.1 §3.8.3 [MQTT-3.8.3-3] / MQTT 5.0 §3.8.3 [MQTT-3.8.3-2]: a SUBSCRIBE without a
/// Topic Filter is a Protocol Error; MQTT 3.1.1 §3.10.3 [MQTT-3.10.3-2] / MQTT 5.0 §3.10.3
/// [MQTT-3.10.3-2]: so is an UNSUBSCRIBE without one.
#[test]
fn no_topic_filters() {
    let cases: [(&[u8], ProtocolVersion); 4] = [
        (&[0x82, 0x02, 0x00, 0x0A], V3_1_1),
        (&[0x82, 0x03, 0x00, 0x0A, 0x00], V5),
        (&[0xA2, 0x02, 0x00, 0x0A], V3_1_1),
        (&[0xA2, 0x03, 0x00, 0x0A, 0x00], V5),
    ];
    for (bytes, version) in cases {
        assert_violation(
            bytes,
            version,
            DecodeError::NoTopicFilters,
            ReasonCode::ProtocolError,
        );
    }
    // Properties alone do not make a payload.
    assert_violation(
        &[0x82, 0x05, 0x00, 0x0A, 0x02, 0x0B, 0x01],
        V5,
        DecodeError::NoTopicFilters,
        ReasonCode::ProtocolError,
    );
}

/// MQTT 3.1.1 §3.9.3 / MQTT 5.0 §3.9.3: the SUBACK payload has a return / reason code for
/// each Topic Filter of the SUBSCRIBE, which has at least one; MQTT 5.0 §3.11.3: the same
/// for UNSUBACK.
#[test]
fn no_reason_codes() {
    let cases: [(&[u8], ProtocolVersion); 3] = [
        (&[0x90, 0x02, 0x00, 0x0A], V3_1_1),
        (&[0x90, 0x03, 0x00, 0x0A, 0x00], V5),
        (&[0xB0, 0x03, 0x00, 0x0A, 0x00], V5),
    ];
    for (bytes, version) in cases {
        assert_violation(
            bytes,
            version,
            DecodeError::NoReasonCodes,
            ReasonCode::MalformedPacket,
        );
    }
}

/// MQTT 5.0 §3.8.3.1 [MQTT-3.8.3-4]: "It is a Protocol Error to set the No Local bit to 1 on
/// a Shared Subscription."
#[test]
fn no_local_on_shared_subscription() {
    for options in [0x04, 0x05, 0x2E] {
        assert_violation(
            &subscribe(V5, b"$share/g/a", options),
            V5,
            DecodeError::NoLocalOnSharedSubscription,
            ReasonCode::ProtocolError,
        );
    }
    // No Local on an ordinary subscription, and a shared one without it, are fine.
    for filter in [&b"a"[..], b"$share/g/a"] {
        let options = if filter.starts_with(b"$share/") {
            0x01
        } else {
            0x05
        };
        let bytes = subscribe(V5, filter, options);
        let Packet::Subscribe(s) = assert_accepted(&bytes, V5) else {
            panic!("not a SUBSCRIBE")
        };
        let sub = s.subscriptions.iter().next().unwrap();
        assert_eq!(sub.options.qos, QoS::AtLeastOnce);
        assert_eq!(sub.options.no_local, options & 0x04 != 0);
    }
}

/// MQTT 5.0 §4.13.1: a Malformed Packet and a Protocol Error each have their reason code;
/// `reason_code` is what a DISCONNECT (or CONNACK) answering the error carries. Every
/// reason code it returns is valid in a DISCONNECT (§3.14.2.1, Table 3-10).
#[test]
fn every_reason_code_for_a_decode_error_is_valid_in_disconnect() {
    let samples: [(&[u8], ProtocolVersion); 10] = [
        (&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], V5),
        (&[0x00, 0x00], V5),
        (&[0x40, 0x02, 0x00, 0x00], V5),
        (&[0x30, 0x05, 0x00, 0x03, b'a', b'/', b'#'], V3_1_1),
        (&[0xA2, 0x06, 0x00, 0x0A, 0x00, 0x02, b'a', b'+'], V3_1_1),
        (&[0x30, 0x06, 0x00, 0x01, b'a', 0x03, 0x23, 0x00], V5),
        (&[0x30, 0x07, 0x00, 0x01, b'a', 0x03, 0x23, 0x00, 0x00], V5),
        (&[0x40, 0x05, 0x00, 0x0A, 0x00, 0x01, 0x04], V5),
        (&[0x82, 0x03, 0x00, 0x0A, 0x00], V5),
        (&[0x20, 0x02, 0x02, 0x00], V3_1_1),
    ];
    for (bytes, version) in samples {
        let Err(e) = decode(bytes, &opts(version)) else {
            panic!("{bytes:02x?} decoded")
        };
        let reason = e.reason_code();
        assert!(reason.is_error(), "{e:?} -> {reason:?}");
        assert!(
            reason.is_valid_for(PacketType::Disconnect),
            "{e:?} -> {reason:?}"
        );
    }
    let too_large = DecodeError::PacketTooLarge { size: 10, max: 5 };
    assert!(too_large.reason_code().is_valid_for(PacketType::Disconnect));
    assert!(too_large.reason_code().is_valid_for(PacketType::Connack));
}
