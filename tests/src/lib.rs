//! End-to-end test harness: starts the real `midge` binary on a port it picks itself,
//! and gives tests a raw MQTT socket and Mosquitto's command-line clients to talk to it.
//!
//! The binary is `target/debug/midge` (or `$MIDGE_BIN`); `tests/run` builds it before the
//! tests run.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use midge_wire::{
    Ack, Connect, DecodeOptions, Decoded, List, Packet, Properties, ProtocolVersion, Publish, QoS,
    QosPid, Subscribe, Subscription, SubscriptionOptions, Unsubscribe, decode,
};

/// How long a test waits for anything: generous, as CI machines are slow.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A running `midge` process, killed when dropped.
#[derive(Debug)]
pub struct Midge {
    child: Child,
    port: u16,
    log_path: PathBuf,
}

fn midge_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("MIDGE_BIN") {
        return bin.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug/midge");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p midge` first (tests/run does)",
        bin.display()
    );
    bin
}

/// A path in the temporary directory that no other test (or test process) uses.
pub fn unique_temp_path(what: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("midge-e2e-{}-{n}-{what}", std::process::id()))
}

impl Midge {
    /// Starts midge listening on a free loopback port, with debug logging.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts midge with extra command-line arguments.
    pub fn start_with(args: &[&str]) -> Self {
        let log_path = unique_temp_path("midge.log");
        let log = File::create(&log_path).expect("create log file");
        let child = Command::new(midge_binary())
            .args(["--bind", "127.0.0.1:0", "--log-level", "debug"])
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start midge");
        let mut midge = Self {
            child,
            port: 0,
            log_path,
        };
        midge.port = midge.wait_for_port();
        midge
    }

    /// Reads the bound port from the startup line ("listening on 127.0.0.1:PORT").
    fn wait_for_port(&mut self) -> u16 {
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            let log = self.log();
            if let Some(port) = log
                .split("127.0.0.1:")
                .skip(1)
                .find_map(|rest| {
                    rest.split(|c: char| !c.is_ascii_digit())
                        .next()?
                        .parse()
                        .ok()
                })
                .filter(|&p: &u16| p != 0)
            {
                return port;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("midge exited with {status} before listening:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("midge did not report a listening port:\n{}", self.log());
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything midge has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_for_log(&self, needle: &str) -> bool {
        self.wait_for_log_count(needle, 1)
    }

    /// How many times the log contains `needle` so far.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log().matches(needle).count()
    }

    /// Waits until the log contains `needle` at least `count` times (for lines a test
    /// provokes more than once, such as a client subscribing again after a reconnect).
    pub fn wait_for_log_count(&self, needle: &str, count: usize) -> bool {
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            if self.log_count(needle) >= count {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Runs `mosquitto_pub` against this broker and waits for it.
    pub fn mosquitto_pub(&self, args: &[&str]) -> Output {
        self.client("mosquitto_pub", args)
            .output()
            .expect("run mosquitto_pub (apt-get install mosquitto-clients)")
    }

    /// Starts `mosquitto_sub` against this broker with its output captured.
    pub fn mosquitto_sub(&self, args: &[&str]) -> Child {
        self.client("mosquitto_sub", args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run mosquitto_sub (apt-get install mosquitto-clients)")
    }

    fn client(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null());
        cmd
    }
}

impl Drop for Midge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- midge log ({}) ---\n{}",
                self.log_path.display(),
                self.log()
            );
        } else {
            let _ = std::fs::remove_file(&self.log_path);
        }
    }
}

/// A 3.1.1 CONNECT with clean session, keep-alive 60 s, no will and no credentials; tests
/// change what they need with struct update syntax.
pub fn connect_packet(client_id: &str) -> Connect<'_> {
    Connect {
        version: ProtocolVersion::V3_1_1,
        clean_start: true,
        keep_alive: 60,
        properties: Properties::EMPTY,
        client_id,
        will: None,
        username: None,
        password: None,
    }
}

/// A PUBLISH as received, owning its topic and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: QoS,
    pub packet_id: Option<u16>,
    pub dup: bool,
    pub retain: bool,
}

/// The exact 3.1.1 bytes of a two-byte acknowledgement: `first_byte` is `0x40` PUBACK,
/// `0x50` PUBREC, `0x62` PUBREL, `0x70` PUBCOMP or `0xb0` UNSUBACK.
pub fn ack_frame(first_byte: u8, id: u16) -> Vec<u8> {
    let [hi, lo] = id.to_be_bytes();
    vec![first_byte, 2, hi, lo]
}

/// A TCP connection speaking MQTT byte by byte, for tests that need exact packets.
#[derive(Debug)]
pub struct RawClient {
    stream: TcpStream,
    buf: Vec<u8>,
    pub version: ProtocolVersion,
    /// The packet id the helpers below use next.
    next_packet_id: u16,
}

impl RawClient {
    pub fn connect(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to midge");
        stream.set_read_timeout(Some(TIMEOUT)).expect("set timeout");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream,
            buf: Vec::new(),
            version: ProtocolVersion::V3_1_1,
            next_packet_id: 0,
        }
    }

    /// Opens a connection, sends `connect` and returns the client with the CONNACK's bytes.
    pub fn handshake(port: u16, connect: Connect<'_>) -> (Self, Vec<u8>) {
        let mut client = Self::connect(port);
        client.version = connect.version;
        client.send_packet(&Packet::Connect(connect));
        let connack = client
            .recv_frame()
            .expect("connection closed instead of CONNACK");
        (client, connack)
    }

    /// A connected 3.1.1 client with a clean session.
    pub fn connected(port: u16, client_id: &str) -> Self {
        let (client, connack) = Self::handshake(port, connect_packet(client_id));
        assert_eq!(connack, [0x20, 2, 0, 0], "CONNACK for {client_id}");
        client
    }

    /// A connected 3.1.1 client with clean session 0, and whether CONNACK said a session
    /// was present.
    pub fn persistent(port: u16, client_id: &str) -> (Self, bool) {
        let connect = Connect {
            clean_start: false,
            ..connect_packet(client_id)
        };
        let (client, connack) = Self::handshake(port, connect);
        assert!(
            matches!(connack[..], [0x20, 2, 0 | 1, 0]),
            "CONNACK for {client_id}: {connack:02x?}"
        );
        (client, connack[2] == 1)
    }

    fn packet_id(&mut self) -> u16 {
        self.next_packet_id = self.next_packet_id.wrapping_add(1).max(1);
        self.next_packet_id
    }

    /// Subscribes to one filter and checks the SUBACK grants `qos`.
    pub fn subscribe(&mut self, filter: &str, qos: QoS) {
        let id = self.packet_id();
        let subscriptions = [Subscription {
            filter,
            options: SubscriptionOptions::new(qos),
        }];
        self.send_packet(&Packet::Subscribe(Subscribe {
            packet_id: id,
            properties: Properties::EMPTY,
            subscriptions: List::new(&subscriptions),
        }));
        let [hi, lo] = id.to_be_bytes();
        let suback = self.recv_frame();
        assert_eq!(
            suback,
            Some(vec![0x90, 3, hi, lo, qos as u8]),
            "SUBACK for {filter}"
        );
    }

    /// Unsubscribes from one filter and checks the UNSUBACK.
    pub fn unsubscribe(&mut self, filter: &str) {
        let id = self.packet_id();
        let filters = [filter];
        self.send_packet(&Packet::Unsubscribe(Unsubscribe {
            packet_id: id,
            properties: Properties::EMPTY,
            filters: List::new(&filters),
        }));
        let unsuback = self.recv_frame();
        assert_eq!(unsuback, Some(ack_frame(0xb0, id)), "UNSUBACK for {filter}");
    }

    /// Publishes and completes the QoS flow, checking each acknowledgement's exact bytes.
    /// When it returns, midge has routed the message (for QoS 0, [`Self::sync`] makes
    /// sure of that).
    pub fn publish(&mut self, topic: &str, payload: &[u8], qos: QoS, retain: bool) {
        let id = if qos == QoS::AtMostOnce {
            0
        } else {
            self.packet_id()
        };
        self.send_packet(&Packet::Publish(Publish {
            dup: false,
            qos_pid: QosPid::new(qos, id),
            retain,
            topic,
            properties: Properties::EMPTY,
            payload,
        }));
        match qos {
            QoS::AtMostOnce => self.sync(),
            QoS::AtLeastOnce => assert_eq!(self.recv_frame(), Some(ack_frame(0x40, id)), "PUBACK"),
            QoS::ExactlyOnce => {
                assert_eq!(self.recv_frame(), Some(ack_frame(0x50, id)), "PUBREC");
                self.send_packet(&Packet::Pubrel(Ack::new(id)));
                assert_eq!(self.recv_frame(), Some(ack_frame(0x70, id)), "PUBCOMP");
            }
        }
    }

    /// The next packet, which must be a PUBLISH.
    pub fn recv_publish(&mut self) -> Received {
        self.recv(|packet| match packet {
            Packet::Publish(p) => Received {
                topic: p.topic.to_owned(),
                payload: p.payload.to_vec(),
                qos: p.qos_pid.qos(),
                packet_id: p.qos_pid.packet_id(),
                dup: p.dup,
                retain: p.retain,
            },
            other => panic!("expected PUBLISH, got {other:?}"),
        })
    }

    /// Sends PINGREQ twice, checking each time that the very next packet is PINGRESP.
    ///
    /// midge handles a connection's packets in order and writes what it has queued for
    /// the client no later than its answer to the client's next packet, so two round trips
    /// prove nothing was on its way when this was called. Tests that assert the *absence*
    /// of a delivery use this rather than waiting an arbitrary time.
    pub fn sync(&mut self) {
        for _ in 0..2 {
            self.send(&[0xc0, 0]);
            let frame = self
                .recv_frame()
                .expect("connection closed while waiting for PINGRESP");
            assert_eq!(
                frame,
                [0xd0, 0],
                "expected PINGRESP, got another packet first"
            );
        }
    }

    /// Whether midge closes the connection within `limit`, skipping packets it sends first.
    pub fn is_closed_within(&mut self, limit: Duration) -> bool {
        self.stream
            .set_read_timeout(Some(limit))
            .expect("set timeout");
        let closed = self.is_closed_by_broker();
        self.stream
            .set_read_timeout(Some(TIMEOUT))
            .expect("set timeout");
        closed
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to midge");
    }

    pub fn send_packet(&mut self, packet: &Packet<'_>) {
        let mut out = vec![0; packet.encoded_len(self.version).expect("encodable")];
        packet.encode(self.version, &mut out).expect("encode");
        self.send(&out);
    }

    /// The next whole packet's bytes, or `None` if the connection closed first.
    pub fn recv_frame(&mut self) -> Option<Vec<u8>> {
        self.recv_frame_or_timeout()
            .unwrap_or_else(|()| panic!("no packet from midge within {TIMEOUT:?}"))
    }

    /// Receives the next packet and hands it to `f` (packets borrow their frame).
    pub fn recv<T>(&mut self, f: impl FnOnce(Packet<'_>) -> T) -> T {
        let frame = self
            .recv_frame()
            .expect("connection closed while a packet was expected");
        let opts = DecodeOptions {
            version: self.version,
            ..DecodeOptions::default()
        };
        match decode(&frame, &opts) {
            Ok(Decoded::Complete { packet, .. }) => f(packet),
            other => panic!("bad packet from midge: {other:?}"),
        }
    }

    /// Whether midge closes the connection (reads end) within the timeout, skipping any
    /// packets it sends first (a CONNACK or an MQTT 5 DISCONNECT).
    pub fn is_closed_by_broker(&mut self) -> bool {
        loop {
            match self.recv_frame_or_timeout() {
                Ok(None) => return true,
                Ok(Some(_)) => continue,
                Err(()) => return false,
            }
        }
    }

    /// `Ok(None)`: closed; `Err(())`: nothing within the timeout.
    fn recv_frame_or_timeout(&mut self) -> Result<Option<Vec<u8>>, ()> {
        let opts = DecodeOptions {
            version: self.version,
            ..DecodeOptions::default()
        };
        loop {
            if let Ok(Decoded::Complete { len, .. }) = decode(&self.buf, &opts) {
                return Ok(Some(self.buf.drain(..len).collect()));
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(None),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(());
                }
                Err(_) => return Ok(None),
            }
        }
    }

    /// Closes the socket without DISCONNECT (what a crashed device does).
    pub fn drop_connection(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}
