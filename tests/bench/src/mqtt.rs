//! A bare MQTT 3.1.1 client on tokio sockets and midge-wire: enough to connect, subscribe,
//! publish pre-encoded frames and read packets in batches. Nothing here allocates per
//! message.

use std::io;
use std::net::{IpAddr, SocketAddr};

use midge_wire::{
    Connect, DecodeOptions, Decoded, List, Packet, Properties, ProtocolVersion, Publish, QoS,
    QosPid, ReasonCode, Subscribe, Subscription, SubscriptionOptions, decode,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};

const VERSION: ProtocolVersion = ProtocolVersion::V3_1_1;

/// Long enough for any run: no PINGREQ is ever needed.
const KEEP_ALIVE_S: u16 = 600;

/// Encodes one packet.
pub fn encode(packet: &Packet<'_>) -> Vec<u8> {
    let len = packet
        .encoded_len(VERSION)
        .expect("packet fits MQTT limits");
    let mut buf = vec![0; len];
    packet
        .encode(VERSION, &mut buf)
        .expect("buffer of the encoded length");
    buf
}

/// A PUBACK frame, written by hand: four bytes, the hot path of every QoS 1 subscriber.
pub fn puback(packet_id: u16) -> [u8; 4] {
    let [hi, lo] = packet_id.to_be_bytes();
    [0x40, 2, hi, lo]
}

/// A connected client, split so that one task can read while another writes.
#[derive(Debug)]
pub struct Client {
    pub reader: Reader,
    pub writer: OwnedWriteHalf,
}

impl Client {
    /// Connects with a clean session and waits for a successful CONNACK.
    pub async fn connect(broker: SocketAddr, client_id: &str) -> io::Result<Self> {
        Self::connect_from(None, broker, client_id).await
    }

    /// Connects with a persistent session (clean session 0), which brokers that persist
    /// keep on disk.
    pub async fn connect_persistent(broker: SocketAddr, client_id: &str) -> io::Result<Self> {
        Self::connect_session(TcpStream::connect(broker).await?, client_id, false).await
    }

    /// As [`Self::connect`], from the local address `source` (port chosen by the kernel),
    /// so that many connections can use more than one address's ephemeral ports.
    pub async fn connect_from(
        source: Option<IpAddr>,
        broker: SocketAddr,
        client_id: &str,
    ) -> io::Result<Self> {
        let stream = match source {
            None => TcpStream::connect(broker).await?,
            Some(ip) => {
                let socket = TcpSocket::new_v4()?;
                socket.bind(SocketAddr::new(ip, 0))?;
                socket.connect(broker).await?
            }
        };
        Self::handshake(stream, client_id).await
    }

    /// Sends CONNECT (clean session) on an open stream and waits for CONNACK.
    pub async fn handshake(stream: TcpStream, client_id: &str) -> io::Result<Self> {
        Self::connect_session(stream, client_id, true).await
    }

    async fn connect_session(
        stream: TcpStream,
        client_id: &str,
        clean_start: bool,
    ) -> io::Result<Self> {
        stream.set_nodelay(true)?;
        let (read, mut writer) = stream.into_split();
        let connect = Packet::Connect(Connect {
            version: VERSION,
            clean_start,
            keep_alive: KEEP_ALIVE_S,
            properties: Properties::EMPTY,
            client_id,
            will: None,
            username: None,
            password: None,
        });
        writer.write_all(&encode(&connect)).await?;
        let mut reader = Reader::new(read);
        let reason = reader
            .next(|packet| match packet {
                Packet::Connack(c) => Ok(c.reason),
                other => Err(unexpected("CONNACK", &other)),
            })
            .await??;
        if reason != ReasonCode::Success {
            return Err(io::Error::other(format!("CONNACK refused: {reason:?}")));
        }
        Ok(Self { reader, writer })
    }

    /// Subscribes to one filter and checks the granted QoS.
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> io::Result<()> {
        let subscriptions = [Subscription {
            filter,
            options: SubscriptionOptions::new(qos),
        }];
        let subscribe = Packet::Subscribe(Subscribe {
            packet_id: 1,
            properties: Properties::EMPTY,
            subscriptions: List::new(&subscriptions),
        });
        self.writer.write_all(&encode(&subscribe)).await?;
        let granted = self
            .reader
            .next(|packet| match packet {
                Packet::Suback(s) => Ok(s.reason_codes.iter().next()),
                other => Err(unexpected("SUBACK", &other)),
            })
            .await??;
        if granted.map(|c| c as u8) != Some(qos as u8) {
            return Err(io::Error::other(format!(
                "SUBACK for {filter}: granted {granted:?}, asked for {qos:?}"
            )));
        }
        Ok(())
    }

    /// Gives back the socket, e.g. to drive it from a plain thread.
    pub fn into_stream(self) -> io::Result<TcpStream> {
        self.reader
            .read
            .reunite(self.writer)
            .map_err(|e| io::Error::other(e.to_string()))
    }
}

fn unexpected(wanted: &str, got: &Packet<'_>) -> io::Error {
    io::Error::other(format!("expected {wanted}, got {got:?}"))
}

/// The reading half with its buffer: decodes every whole packet a read brought in.
#[derive(Debug)]
pub struct Reader {
    read: OwnedReadHalf,
    buf: Vec<u8>,
    /// Decoded up to here.
    start: usize,
    /// Filled up to here.
    end: usize,
}

const READ_BUFFER: usize = 64 * 1024;

impl Reader {
    fn new(read: OwnedReadHalf) -> Self {
        Self {
            read,
            buf: vec![0; READ_BUFFER],
            start: 0,
            end: 0,
        }
    }

    /// Reads once from the socket, then calls `f` for every whole packet buffered.
    /// Returns `false` when the broker closed the connection.
    pub async fn read_batch(&mut self, mut f: impl FnMut(Packet<'_>)) -> io::Result<bool> {
        if !self.fill().await? {
            return Ok(false);
        }
        while let Some((packet, len)) = self.decode_one()? {
            f(packet);
            self.start += len;
        }
        Ok(true)
    }

    /// Waits for the next packet and maps it with `f`.
    pub async fn next<T>(&mut self, f: impl FnOnce(Packet<'_>) -> T) -> io::Result<T> {
        loop {
            if let Some((packet, len)) = self.decode_one()? {
                let out = f(packet);
                self.start += len;
                return Ok(out);
            }
            if !self.fill().await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    fn decode_one(&self) -> io::Result<Option<(Packet<'_>, usize)>> {
        let opts = DecodeOptions {
            version: VERSION,
            max_packet_size: READ_BUFFER as u32,
        };
        match decode(&self.buf[self.start..self.end], &opts) {
            Ok(Decoded::Complete { packet, len }) => Ok(Some((packet, len))),
            Ok(Decoded::Incomplete { .. }) => Ok(None),
            Err(e) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("broker sent a malformed packet: {e:?}"),
            )),
        }
    }

    /// Moves the partial packet to the front and reads more after it.
    async fn fill(&mut self) -> io::Result<bool> {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        let n = self.read.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n > 0)
    }
}

/// What each benchmark payload starts with: who sent it, its number in that publisher's
/// sequence and when it was due, in nanoseconds from the run's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub publisher: u32,
    pub seq: u64,
    pub due_ns: u64,
}

impl Stamp {
    pub const LEN: usize = 4 + 8 + 8;

    fn write(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.publisher.to_le_bytes());
        out[4..12].copy_from_slice(&self.seq.to_le_bytes());
        out[12..20].copy_from_slice(&self.due_ns.to_le_bytes());
    }

    pub fn read(payload: &[u8]) -> Option<Self> {
        let field = |range: std::ops::Range<usize>| payload.get(range);
        Some(Self {
            publisher: u32::from_le_bytes(field(0..4)?.try_into().ok()?),
            seq: u64::from_le_bytes(field(4..12)?.try_into().ok()?),
            due_ns: u64::from_le_bytes(field(12..20)?.try_into().ok()?),
        })
    }
}

/// A PUBLISH encoded once; each message is a copy with its packet id and stamp patched in.
#[derive(Debug, Clone)]
pub struct PublishTemplate {
    frame: Vec<u8>,
    payload_at: usize,
    qos: QoS,
}

impl PublishTemplate {
    /// `payload_len` is at least [`Stamp::LEN`]; the rest is filler.
    pub fn new(topic: &str, qos: QoS, payload_len: usize) -> Self {
        let payload = vec![b'x'; payload_len.max(Stamp::LEN)];
        let qos_pid = match qos {
            QoS::AtMostOnce => QosPid::AtMostOnce,
            QoS::AtLeastOnce => QosPid::AtLeastOnce(1),
            QoS::ExactlyOnce => QosPid::ExactlyOnce(1),
        };
        let frame = encode(&Packet::Publish(Publish {
            dup: false,
            qos_pid,
            retain: false,
            topic,
            properties: Properties::EMPTY,
            payload: &payload,
        }));
        Self {
            payload_at: frame.len() - payload.len(),
            frame,
            qos,
        }
    }

    /// Appends one message to `out`. The packet id is ignored at QoS 0.
    pub fn append(&self, out: &mut Vec<u8>, packet_id: u16, stamp: Stamp) {
        let at = out.len();
        out.extend_from_slice(&self.frame);
        let frame = &mut out[at..];
        if self.qos != QoS::AtMostOnce {
            // The packet id sits just before the payload in a 3.1.1 PUBLISH.
            frame[self.payload_at - 2..self.payload_at].copy_from_slice(&packet_id.to_be_bytes());
        }
        stamp.write(&mut frame[self.payload_at..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_messages_decode_with_their_stamp_and_id() {
        let template = PublishTemplate::new("bench/t", QoS::AtLeastOnce, 64);
        let mut out = Vec::new();
        let stamps = [
            Stamp {
                publisher: 3,
                seq: 0,
                due_ns: 7,
            },
            Stamp {
                publisher: 3,
                seq: 1 << 40,
                due_ns: u64::MAX,
            },
        ];
        template.append(&mut out, 9, stamps[0]);
        template.append(&mut out, 65535, stamps[1]);
        let opts = DecodeOptions {
            version: VERSION,
            ..DecodeOptions::default()
        };
        let mut at = 0;
        for (stamp, id) in stamps.iter().zip([9, 65535]) {
            let Decoded::Complete {
                packet: Packet::Publish(p),
                len,
            } = decode(&out[at..], &opts).unwrap()
            else {
                panic!("not a PUBLISH");
            };
            assert_eq!(p.qos_pid, QosPid::AtLeastOnce(id));
            assert_eq!(p.topic, "bench/t");
            assert_eq!(p.payload.len(), 64);
            assert_eq!(Stamp::read(p.payload), Some(*stamp));
            at += len;
        }
        assert_eq!(at, out.len());
    }
}
