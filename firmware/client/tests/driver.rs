//! The async driver over an in-memory transport: byte streams split anywhere, malformed
//! and oversized input, a silent broker, a closed connection. Timers are real (the
//! embassy-time std driver), with deadlines of a few tens of milliseconds.

use std::collections::VecDeque;

use embassy_futures::block_on;
use embassy_time::{Duration, Instant};
use embedded_io_async::{ErrorKind, ErrorType, Read, Write};
use midge_client::{Client, Config, Connection, Error, Event, Message, QoS, Waiting};
use midge_wire::{
    Ack, Connack, DecodeError, DecodeOptions, Decoded, Packet, Properties, ProtocolVersion,
    Publish, QosPid, ReasonCode, decode,
};

const V3: ProtocolVersion = ProtocolVersion::V3_1_1;

/// Delivers scripted chunks, then either end-of-stream or nothing ever again; records
/// everything written.
#[derive(Default)]
struct Script {
    input: VecDeque<Vec<u8>>,
    eof: bool,
    output: Vec<u8>,
    flushes: usize,
}

impl ErrorType for Script {
    type Error = ErrorKind;
}

impl Read for Script {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let Some(mut chunk) = self.input.pop_front() else {
            if self.eof {
                return Ok(0);
            }
            return core::future::pending().await;
        };
        let n = chunk.len().min(buf.len());
        buf[..n].copy_from_slice(&chunk[..n]);
        if n < chunk.len() {
            self.input.push_front(chunk.split_off(n));
        }
        Ok(n)
    }
}

impl Write for Script {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), ErrorKind> {
        self.flushes += 1;
        Ok(())
    }
}

fn frame(packet: Packet<'_>) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let n = packet.encode(V3, &mut buf).unwrap();
    buf[..n].to_vec()
}

fn connack() -> Vec<u8> {
    frame(Packet::Connack(Connack {
        session_present: false,
        reason: ReasonCode::Success,
        properties: Properties::EMPTY,
    }))
}

fn publish(qos_pid: QosPid, topic: &str, payload: &[u8]) -> Vec<u8> {
    frame(Packet::Publish(Publish {
        dup: false,
        qos_pid,
        retain: false,
        topic,
        properties: Properties::EMPTY,
        payload,
    }))
}

/// Every packet in the byte stream the client wrote.
fn written(bytes: &[u8]) -> Vec<Packet<'_>> {
    let mut packets = Vec::new();
    let mut rest = bytes;
    let opts = DecodeOptions {
        version: V3,
        ..DecodeOptions::default()
    };
    while !rest.is_empty() {
        let Decoded::Complete { packet, len } = decode(rest, &opts).unwrap() else {
            panic!("partial packet written");
        };
        packets.push(packet);
        rest = &rest[len..];
    }
    packets
}

fn config() -> Config<'static> {
    let mut c = Config::new("drv");
    c.response_timeout = Duration::from_millis(60);
    c
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(2)
}

#[test]
fn session_over_a_stream_split_at_every_byte() {
    // The broker's bytes arrive one at a time.
    let mut stream = connack();
    stream.extend(publish(QosPid::AtLeastOnce(3), "devices/drv/cmd/x", b"go"));
    stream.extend(frame(Packet::Puback(Ack::new(1))));
    let mut script = Script {
        input: stream.into_iter().map(|b| vec![b]).collect(),
        ..Script::default()
    };
    let mut client = Client::<128, 4>::new(config());
    block_on(async {
        let mut conn = Connection::new(&mut client, &mut script);
        let mut events = Vec::new();
        while events.len() < 3 {
            match conn.poll(soon()).await.unwrap() {
                Some(Event::Connected { session_present }) => {
                    events.push(format!("connected {session_present}"));
                    let id =
                        conn.client()
                            .publish("sensors/drv/t", b"21.5", QoS::AtLeastOnce, false);
                    assert_eq!(id, Ok(Some(1)));
                }
                Some(Event::Message(Message {
                    topic,
                    payload,
                    qos,
                    ..
                })) => {
                    events.push(format!("{topic} {payload:?} {qos:?}"));
                }
                Some(Event::Delivered { packet_id }) => {
                    events.push(format!("delivered {packet_id}"))
                }
                other => assert_eq!(other, None),
            }
        }
        assert_eq!(
            events,
            [
                "connected false",
                "devices/drv/cmd/x [103, 111] AtLeastOnce",
                "delivered 1"
            ]
        );
        // Flush the PUBACK owed for the message, then idle until the deadline.
        let until = Instant::now() + Duration::from_millis(20);
        assert_eq!(conn.poll(until).await, Ok(None));
    });
    let packets = written(&script.output);
    let kinds: Vec<_> = packets.iter().map(|p| p.packet_type()).collect();
    use midge_wire::PacketType as T;
    assert_eq!(kinds, [T::Connect, T::Publish, T::Puback]);
    assert_eq!(packets[2], Packet::Puback(Ack::new(3)));
    assert!(script.flushes >= 3);
}

#[test]
fn malformed_input_ends_the_connection() {
    let cases: [(Vec<u8>, DecodeError); 3] = [
        // Packet type 0 is reserved.
        (vec![0x00, 0x00], DecodeError::InvalidPacketType(0)),
        // Remaining length with a fifth continuation byte.
        (
            vec![0x30, 0xff, 0xff, 0xff, 0xff, 0x01],
            DecodeError::MalformedRemainingLength,
        ),
        // PUBACK with a body of one byte.
        (vec![0x40, 0x01, 0x00], DecodeError::UnexpectedEnd),
    ];
    for (bytes, expected) in cases {
        let mut script = Script {
            input: [connack(), bytes].into(),
            ..Script::default()
        };
        let mut client = Client::<128, 4>::new(config());
        block_on(async {
            let mut conn = Connection::new(&mut client, &mut script);
            assert!(matches!(
                conn.poll(soon()).await,
                Ok(Some(Event::Connected { .. }))
            ));
            assert_eq!(conn.poll(soon()).await, Err(Error::Malformed(expected)));
        });
    }
}

#[test]
fn closed_connection() {
    let mut script = Script {
        input: [connack()].into(),
        eof: true,
        ..Script::default()
    };
    let mut client = Client::<128, 4>::new(config());
    block_on(async {
        let mut conn = Connection::new(&mut client, &mut script);
        assert!(matches!(
            conn.poll(soon()).await,
            Ok(Some(Event::Connected { .. }))
        ));
        assert_eq!(conn.poll(soon()).await, Err(Error::Closed));
    });
}

#[test]
fn silent_broker_times_out() {
    let mut script = Script::default();
    let mut client = Client::<128, 4>::new(config());
    let started = Instant::now();
    block_on(async {
        let mut conn = Connection::new(&mut client, &mut script);
        let mut result = conn.poll(soon()).await;
        while result == Ok(None) {
            result = conn.poll(soon()).await;
        }
        assert_eq!(result, Err(Error::Timeout(Waiting::Connack)));
    });
    let waited = Instant::now() - started;
    assert!(
        waited >= Duration::from_millis(60) && waited < Duration::from_secs(1),
        "{waited:?}"
    );
}

#[test]
fn oversized_packets_are_skipped() {
    // A 3.1.1 broker may send more than MAX_PACKET (64) bytes; the driver drops that
    // packet and carries on with the next.
    let big = publish(QosPid::AtMostOnce, "retained/blob", &[7; 300]);
    let small = publish(QosPid::AtMostOnce, "a", b"ok");
    let mut stream = connack();
    stream.extend(&big);
    stream.extend(&small);
    let mut script = Script {
        input: stream.chunks(50).map(<[u8]>::to_vec).collect(),
        ..Script::default()
    };
    let mut client = Client::<64, 2>::new(config());
    block_on(async {
        let mut conn = Connection::new(&mut client, &mut script);
        assert!(matches!(
            conn.poll(soon()).await,
            Ok(Some(Event::Connected { .. }))
        ));
        let mut event = conn.poll(soon()).await.unwrap();
        while event.is_none() {
            event = conn.poll(soon()).await.unwrap();
        }
        let Some(Event::Message(m)) = event else {
            panic!("{event:?}");
        };
        assert_eq!((m.topic, m.payload), ("a", &b"ok"[..]));
    });
}

#[test]
fn poll_returns_at_the_deadline_when_idle() {
    let mut script = Script {
        input: [connack()].into(),
        ..Script::default()
    };
    let mut c = config();
    c.keep_alive_secs = 60;
    let mut client = Client::<128, 4>::new(c);
    block_on(async {
        let mut conn = Connection::new(&mut client, &mut script);
        assert!(matches!(
            conn.poll(soon()).await,
            Ok(Some(Event::Connected { .. }))
        ));
        let until = Instant::now() + Duration::from_millis(30);
        assert_eq!(conn.poll(until).await, Ok(None));
        assert!(Instant::now() >= until);
    });
}
