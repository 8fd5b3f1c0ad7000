//! Encode/decode throughput of the codec against a plain copy of the same bytes.
//!
//! Run with `cargo bench -p midge-wire --features bytes --bench codec` (from the workspace
//! root). Every packet gets its own group whose throughput is the packet's encoded size,
//! so criterion prints MB/s, and every group has a `memcpy` baseline that copies the
//! encoded frame into a buffer of the same size: the ratio of the two is what the codec
//! costs over touching the bytes once.
//!
//! Lists (properties, will properties) are validated when a packet is decoded and parsed
//! again only when iterated, so packets with properties have both `decode` and
//! `decode_iter_props`.

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use midge_wire::{
    Connect, DecodeOptions, Decoded, Packet, Properties, Property, ProtocolVersion, Publish, QoS,
    QosPid, Will, decode,
};

/// One benchmarked packet: its name, the version it is encoded in and the packet itself.
struct Case {
    name: &'static str,
    version: ProtocolVersion,
    packet: Packet<'static>,
    /// Whether it carries properties worth iterating.
    has_properties: bool,
}

static PAYLOAD_16: [u8; 16] = *b"{\"t\":21.5,\"h\":4}";
static PAYLOAD_1K: [u8; 1024] = [0x5a; 1024];
static PAYLOAD_256: [u8; 256] = [0xa5; 256];

static PUBLISH_V5_PROPS: [Property<'static>; 4] = [
    Property::MessageExpiryInterval(3600),
    Property::ContentType("application/json"),
    Property::UserProperty("source", "node-17"),
    Property::UserProperty("trace-id", "4bf92f3577b34da6"),
];

static CONNECT_V5_PROPS: [Property<'static>; 4] = [
    Property::SessionExpiryInterval(3600),
    Property::ReceiveMaximum(32),
    Property::TopicAliasMaximum(16),
    Property::UserProperty("firmware", "1.4.2"),
];

static WILL_V5_PROPS: [Property<'static>; 1] = [Property::WillDelayInterval(30)];

fn cases() -> Vec<Case> {
    let publish_qos0 = |payload: &'static [u8]| Publish {
        dup: false,
        qos_pid: QosPid::AtMostOnce,
        retain: false,
        topic: "sensors/kitchen/temperature",
        properties: Properties::EMPTY,
        payload,
    };
    let connect = |version, properties, will_properties| Connect {
        version,
        clean_start: true,
        keep_alive: 60,
        properties,
        client_id: "midge-sensor-0001",
        will: Some(Will {
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: will_properties,
            topic: "devices/midge-sensor-0001/status",
            payload: b"offline",
        }),
        username: Some("sensor"),
        password: Some(b"s3cr3t-passw0rd"),
    };
    vec![
        Case {
            name: "publish_v311_qos0_16B",
            version: ProtocolVersion::V3_1_1,
            packet: Packet::Publish(publish_qos0(&PAYLOAD_16)),
            has_properties: false,
        },
        Case {
            name: "publish_v311_qos0_1KiB",
            version: ProtocolVersion::V3_1_1,
            packet: Packet::Publish(publish_qos0(&PAYLOAD_1K)),
            has_properties: false,
        },
        Case {
            name: "publish_v5_qos1_props_256B",
            version: ProtocolVersion::V5,
            packet: Packet::Publish(Publish {
                dup: false,
                qos_pid: QosPid::AtLeastOnce(42),
                retain: false,
                topic: "sensors/kitchen/temperature",
                properties: Properties::new(&PUBLISH_V5_PROPS),
                payload: &PAYLOAD_256,
            }),
            has_properties: true,
        },
        Case {
            name: "connect_v311_will_user_pass",
            version: ProtocolVersion::V3_1_1,
            packet: Packet::Connect(connect(
                ProtocolVersion::V3_1_1,
                Properties::EMPTY,
                Properties::EMPTY,
            )),
            has_properties: false,
        },
        Case {
            name: "connect_v5_props_will_delay",
            version: ProtocolVersion::V5,
            packet: Packet::Connect(connect(
                ProtocolVersion::V5,
                Properties::new(&CONNECT_V5_PROPS),
                Properties::new(&WILL_V5_PROPS),
            )),
            has_properties: true,
        },
    ]
}

/// Reads enough of a decoded packet that decoding cannot be optimised away.
fn consume(packet: &Packet<'_>) -> usize {
    match packet {
        Packet::Publish(p) => p.topic.len() + p.payload.len(),
        Packet::Connect(c) => {
            c.client_id.len()
                + c.will.map_or(0, |w| w.topic.len() + w.payload.len())
                + c.username.map_or(0, str::len)
                + c.password.map_or(0, <[u8]>::len)
        }
        _ => 0,
    }
}

/// Walks every property of the packet (and of its will), parsing each one again.
fn iterate_properties(packet: &Packet<'_>) -> usize {
    let mut n = 0;
    let mut walk = |props: &Properties<'_>| {
        for p in props {
            black_box(p);
            n += 1;
        }
    };
    match packet {
        Packet::Publish(p) => walk(&p.properties),
        Packet::Connect(c) => {
            walk(&c.properties);
            if let Some(will) = &c.will {
                walk(&will.properties);
            }
        }
        _ => {}
    }
    n
}

fn decode_one<'a>(frame: &'a [u8], opts: &DecodeOptions) -> Packet<'a> {
    match decode(frame, opts) {
        Ok(Decoded::Complete { packet, .. }) => packet,
        other => panic!("benchmark frame does not decode: {other:?}"),
    }
}

fn codec(c: &mut Criterion) {
    for case in cases() {
        let version = case.version;
        let len = case.packet.encoded_len(version).expect("encodable");
        let mut frame = vec![0u8; len];
        assert_eq!(case.packet.encode(version, &mut frame), Ok(len));
        let opts = DecodeOptions {
            version,
            ..DecodeOptions::default()
        };
        // The decoded packet must be the one we encoded, or the numbers mean nothing.
        assert_eq!(decode_one(&frame, &opts), case.packet);

        let mut group = c.benchmark_group(case.name);
        group.throughput(Throughput::Bytes(len as u64));

        group.bench_function("decode", |b| {
            b.iter(|| {
                let packet = decode_one(black_box(&frame), black_box(&opts));
                black_box(consume(&packet))
            })
        });

        if case.has_properties {
            group.bench_function("decode_iter_props", |b| {
                b.iter(|| {
                    let packet = decode_one(black_box(&frame), black_box(&opts));
                    black_box(consume(&packet) + iterate_properties(&packet))
                })
            });
        }

        let mut out = vec![0u8; len];
        group.bench_function("encode_slice", |b| {
            b.iter(|| {
                let n = black_box(&case.packet)
                    .encode(black_box(version), black_box(out.as_mut_slice()))
                    .unwrap();
                black_box(&out);
                n
            })
        });

        if case.has_properties {
            // The broker's forwarding path: a decoded packet's properties are still their
            // wire bytes and are copied as they are instead of being written one by one.
            let decoded = decode_one(&frame, &opts);
            group.bench_function("encode_slice_decoded", |b| {
                b.iter(|| {
                    let n = black_box(&decoded)
                        .encode(black_box(version), black_box(out.as_mut_slice()))
                        .unwrap();
                    black_box(&out);
                    n
                })
            });
        }

        let mut bytes = BytesMut::with_capacity(len);
        group.bench_function("encode_bytesmut", |b| {
            b.iter(|| {
                bytes.clear();
                let n = black_box(&case.packet)
                    .encode_to(black_box(version), &mut bytes)
                    .unwrap();
                black_box(&bytes);
                n
            })
        });

        let mut copy = vec![0u8; len];
        group.bench_function("memcpy", |b| {
            b.iter(|| {
                copy.copy_from_slice(black_box(frame.as_slice()));
                black_box(&copy);
            })
        });

        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    targets = codec
}
criterion_main!(benches);
