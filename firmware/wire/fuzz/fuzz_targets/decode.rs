//! Decodes arbitrary bytes; whatever decodes must re-encode to bytes that decode to the same
//! packet.
//!
//! Input: one selector byte, then the bytes to decode. The selector's low nibble picks the
//! connection's protocol version (`% 3`: 3 → 3.1, 4 → 3.1.1, 5 → 5.0, so the seeds start
//! with the protocol level), its high nibble the maximum packet size.
//!
//! Checked for every input:
//! * `decode` never panics, and its answer is consistent: `Incomplete { frame_len }` only
//!   for a longer frame within the size limit, `Complete { len }` within the input and the
//!   limit;
//! * every lazily parsed list (properties, will properties, subscriptions, topic filters,
//!   reason codes) iterates, and encoding its items one by one gives the same bytes as
//!   copying its validated wire form;
//! * a decoded packet re-encodes (in the CONNECT's own version for a CONNECT), `encode` and
//!   `encode_to` agree with each other and with `encoded_len`, the result is no longer than
//!   the input frame, every strict prefix of it is `Incomplete`, and it decodes to a packet
//!   equal to the first.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use midge_wire::{
    DecodeOptions, Decoded, MAX_PACKET_SIZE, Packet, Properties, Property, ProtocolVersion,
    ReasonCode, Subscription, decode,
};

/// Maximum packet sizes, picked by the high nibble of the selector: no limit, tiny limits,
/// and limits around the lengths where the remaining length grows a byte.
const MAX_SIZES: [u32; 16] = [
    MAX_PACKET_SIZE as u32,
    0,
    1,
    2,
    5,
    16,
    64,
    129,
    131,
    1024,
    16_386,
    16_388,
    65_536,
    2_097_155,
    2_097_157,
    MAX_PACKET_SIZE as u32 - 1,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let version = match (selector & 0x0f) % 3 {
        0 => ProtocolVersion::V3_1,
        1 => ProtocolVersion::V3_1_1,
        _ => ProtocolVersion::V5,
    };
    let opts = DecodeOptions {
        version,
        max_packet_size: MAX_SIZES[usize::from(selector >> 4)],
    };
    let max = opts.max_packet_size as usize;

    match decode(input, &opts) {
        Err(e) => {
            // Both must be total.
            let _ = e.reason_code();
            let _ = e.to_string();
        }
        Ok(Decoded::Incomplete { frame_len }) => {
            if let Some(frame_len) = frame_len {
                assert!(frame_len > input.len(), "Incomplete but the frame is in");
                assert!(frame_len <= max, "Incomplete for a frame over the limit");
            }
        }
        Ok(Decoded::Complete { packet, len }) => {
            assert!(
                len <= input.len() && len <= max,
                "Complete beyond input or limit"
            );
            round_trip(&packet, len, version);
        }
    }
});

fn round_trip(packet: &Packet<'_>, len: usize, version: ProtocolVersion) {
    let _ = format!("{packet:?}");
    // CONNECT is encoded in its own version, and so is what follows it on a connection.
    let version = match packet {
        Packet::Connect(c) => c.version,
        _ => version,
    };

    let n = packet
        .encoded_len(version)
        .unwrap_or_else(|e| panic!("decoded packet does not re-encode: {e}"));
    let mut frame = vec![0u8; n];
    assert_eq!(
        packet.encode(version, &mut frame),
        Ok(n),
        "encode vs encoded_len"
    );
    let mut bytes = BytesMut::new();
    assert_eq!(
        packet.encode_to(version, &mut bytes),
        Ok(n),
        "encode_to vs encoded_len"
    );
    assert_eq!(frame[..], bytes[..], "encode and encode_to disagree");
    assert!(
        n <= len,
        "re-encoding grew the packet from {len} to {n} bytes"
    );

    // Lists are lazily parsed: walk all of them, and encode them again item by item.
    let lists = Lists::collect(packet);
    let itemised = lists.rebuild(packet);
    let mut frame2 = vec![0u8; n];
    assert_eq!(
        itemised.encode(version, &mut frame2),
        Ok(n),
        "item-form length"
    );
    assert_eq!(
        frame, frame2,
        "item-form lists encode differently from their wire form"
    );

    let opts = DecodeOptions {
        version,
        max_packet_size: MAX_PACKET_SIZE as u32,
    };
    for cut in [0, 1, n / 2, n - 1] {
        if cut < n {
            assert!(
                matches!(decode(&frame[..cut], &opts), Ok(Decoded::Incomplete { .. })),
                "a {cut}-byte prefix of a {n}-byte frame is not Incomplete"
            );
        }
    }
    match decode(&frame, &opts) {
        Ok(Decoded::Complete { packet: again, len }) => {
            assert_eq!(len, n, "re-decoded length");
            assert_eq!(&again, packet, "round trip changed the packet");
            assert_eq!(again, itemised, "item-form packet differs");
        }
        other => panic!("re-encoded packet does not decode: {other:?}\n{frame:02x?}"),
    }
}

/// Every list of a packet, iterated into vectors.
#[derive(Default)]
struct Lists<'a> {
    properties: Vec<Property<'a>>,
    will_properties: Vec<Property<'a>>,
    subscriptions: Vec<Subscription<'a>>,
    filters: Vec<&'a str>,
    reason_codes: Vec<ReasonCode>,
}

impl<'a> Lists<'a> {
    fn collect(packet: &Packet<'a>) -> Self {
        let mut lists = Self::default();
        let props = |p: &Properties<'a>| -> Vec<Property<'a>> {
            let v: Vec<_> = p.iter().collect();
            assert_eq!(v.len(), p.len());
            v
        };
        match packet {
            Packet::Connect(c) => {
                lists.properties = props(&c.properties);
                if let Some(will) = &c.will {
                    lists.will_properties = props(&will.properties);
                }
            }
            Packet::Connack(c) => lists.properties = props(&c.properties),
            Packet::Publish(p) => lists.properties = props(&p.properties),
            Packet::Puback(a) | Packet::Pubrec(a) | Packet::Pubrel(a) | Packet::Pubcomp(a) => {
                lists.properties = props(&a.properties)
            }
            Packet::Subscribe(s) => {
                lists.properties = props(&s.properties);
                lists.subscriptions = s.subscriptions.iter().collect();
            }
            Packet::Suback(s) => {
                lists.properties = props(&s.properties);
                lists.reason_codes = s.reason_codes.iter().collect();
            }
            Packet::Unsubscribe(u) => {
                lists.properties = props(&u.properties);
                lists.filters = u.filters.iter().collect();
            }
            Packet::Unsuback(u) => {
                lists.properties = props(&u.properties);
                lists.reason_codes = u.reason_codes.iter().collect();
            }
            Packet::Disconnect(d) => lists.properties = props(&d.properties),
            Packet::Auth(a) => lists.properties = props(&a.properties),
            Packet::Pingreq | Packet::Pingresp => {}
        }
        lists
    }

    /// The same packet with every list replaced by its items.
    fn rebuild<'b>(&'b self, packet: &Packet<'b>) -> Packet<'b> {
        let props = Properties::new(&self.properties);
        let mut packet = *packet;
        match &mut packet {
            Packet::Connect(c) => {
                c.properties = props;
                if let Some(will) = &mut c.will {
                    will.properties = Properties::new(&self.will_properties);
                }
            }
            Packet::Connack(c) => c.properties = props,
            Packet::Publish(p) => p.properties = props,
            Packet::Puback(a) | Packet::Pubrec(a) | Packet::Pubrel(a) | Packet::Pubcomp(a) => {
                a.properties = props
            }
            Packet::Subscribe(s) => {
                s.properties = props;
                s.subscriptions = midge_wire::List::new(&self.subscriptions);
            }
            Packet::Suback(s) => {
                s.properties = props;
                s.reason_codes = midge_wire::List::new(&self.reason_codes);
            }
            Packet::Unsubscribe(u) => {
                u.properties = props;
                u.filters = midge_wire::List::new(&self.filters);
            }
            Packet::Unsuback(u) => {
                u.properties = props;
                u.reason_codes = midge_wire::List::new(&self.reason_codes);
            }
            Packet::Disconnect(d) => d.properties = props,
            Packet::Auth(a) => a.properties = props,
            Packet::Pingreq | Packet::Pingresp => {}
        }
        packet
    }
}
