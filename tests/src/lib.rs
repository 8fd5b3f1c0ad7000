//! End-to-end test harness: starts the real `midge` binary on a port it picks itself,
//! and gives tests a raw MQTT socket and Mosquitto's command-line clients to talk to it.
//!
//! The binary is `target/debug/midge` (or `$MIDGE_BIN`); `tests/run` builds it before the
//! tests run.
//!
//! For MQTT 5 there is more: [`RawClient`] speaks 5.0 when its `version` is
//! [`ProtocolVersion::V5`] (see [`RawClient::connected_v5`]), [`rumqtt5`] wraps rumqttc's
//! MQTT 5 client, and [`python`] runs the paho-mqtt scenarios of `tests/python/`.

pub mod gateway;
pub mod python;
pub mod rumqtt5;

use std::fmt;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use midge_wire::{
    Ack, Connect, DecodeOptions, Decoded, Disconnect, List, Packet, Properties, Property,
    ProtocolVersion, Publish, QoS, QosPid, ReasonCode, Subscribe, Subscription,
    SubscriptionOptions, Unsubscribe, decode,
};

/// How long a test waits for anything: generous, as CI machines are slow.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A running `midge` process, killed when dropped.
#[derive(Debug)]
pub struct Midge {
    child: Child,
    port: u16,
    log_path: PathBuf,
    /// Its persistence directory, when the harness chose it (removed at the end).
    data_dir: Option<PathBuf>,
}

/// The `midge` binary under test.
pub fn midge_binary() -> PathBuf {
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

/// Starts `binary` with `fixed` then `args`, its log (stderr, without colours) going to a
/// temporary file whose path is returned with the process.
pub fn spawn_logged(binary: &Path, fixed: &[&str], args: &[&str]) -> (Child, PathBuf) {
    let name = binary
        .file_name()
        .map_or("process".into(), |n| n.to_string_lossy());
    let log_path = unique_temp_path(&format!("{name}.log"));
    let log = File::create(&log_path).expect("create log file");
    let child = Command::new(binary)
        .args(fixed)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
    (child, log_path)
}

/// Waits for `name` (the process `child`) to log `needle` followed by a port other than 0,
/// and returns it; fails the test if the process exits first or nothing comes in time.
pub fn wait_for_logged_port(
    child: &mut Child,
    name: &str,
    needle: &str,
    log: impl Fn() -> String,
) -> u16 {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let text = log();
        let port = text.split(needle).skip(1).find_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
                .filter(|&p: &u16| p != 0)
        });
        if let Some(port) = port {
            return port;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{name} exited with {status} before listening:\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not report its port:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
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

    /// Starts midge with `config` as its mosquitto.conf (`-c`), e.g. `"max_keepalive 10\n"`.
    pub fn start_with_config(config: &str) -> Self {
        let path = unique_temp_path("mosquitto.conf");
        std::fs::write(&path, config).expect("write the configuration file");
        let midge = Self::start_with(&["-c", path.to_str().expect("UTF-8 temp path")]);
        // midge has read the file once it listens.
        let _ = std::fs::remove_file(&path);
        midge
    }

    /// Starts midge with extra command-line arguments, and a data directory of its own
    /// unless they give one.
    pub fn start_with(args: &[&str]) -> Self {
        if args.contains(&"--data-dir") {
            return Self::spawn(args, None);
        }
        let dir = unique_temp_path("data");
        let mut with_dir = vec!["--data-dir", dir.to_str().expect("UTF-8 temp path")];
        with_dir.extend_from_slice(args);
        Self::spawn(&with_dir, Some(dir.clone()))
    }

    /// Kills midge with SIGKILL (no chance to write anything more) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn spawn(args: &[&str], data_dir: Option<PathBuf>) -> Self {
        let (child, log_path) = spawn_logged(
            &midge_binary(),
            &["--bind", "127.0.0.1:0", "--log-level", "debug"],
            args,
        );
        let mut midge = Self {
            child,
            port: 0,
            log_path,
            data_dir,
        };
        midge.port = midge.wait_for_port();
        midge
    }

    /// Reads the bound port from the startup line ("listening on 127.0.0.1:PORT").
    fn wait_for_port(&mut self) -> u16 {
        let log_path = &self.log_path;
        wait_for_logged_port(&mut self.child, "midge", "127.0.0.1:", || {
            std::fs::read_to_string(log_path).unwrap_or_default()
        })
    }

    /// A port the running midge logged after `needle` (e.g. its CoAP gateway's).
    pub fn logged_port(&mut self, needle: &str) -> u16 {
        let log_path = &self.log_path;
        wait_for_logged_port(&mut self.child, "midge", needle, || {
            std::fs::read_to_string(log_path).unwrap_or_default()
        })
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

    /// midge's resident set size now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid()).expect("midge's VmRSS")
    }

    /// The lines midge logged at `level` ("ERROR", "WARN"…) so far.
    pub fn log_lines_at(&self, level: &str) -> Vec<String> {
        self.log()
            .lines()
            .filter(|line| line.split_whitespace().nth(1) == Some(level))
            .map(str::to_owned)
            .collect()
    }

    /// A new well-behaved client subscribed to a topic of its own, for
    /// [`Self::assert_delivers_to`].
    pub fn bystander(&self) -> Bystander {
        let id = unique_client_id("bystander");
        let topic = format!("healthy/{id}");
        let mut client = RawClient::connected(self.port, &id);
        client.subscribe(&topic, QoS::AtLeastOnce);
        Bystander { client, topic }
    }

    /// Checks that midge is running and that a new client's QoS 1 message reaches
    /// `bystander`.
    pub fn assert_delivers_to(&mut self, bystander: &mut Bystander) {
        assert!(self.is_running(), "midge is not running");
        let mut publisher = RawClient::connected(self.port, &unique_client_id("publisher"));
        publisher.publish(&bystander.topic, b"still serving", QoS::AtLeastOnce, false);
        let p = bystander.client.recv_publish();
        assert_eq!(
            (&p.topic[..], &p.payload[..]),
            (&bystander.topic[..], &b"still serving"[..]),
            "message to a well-behaved client"
        );
        bystander.client.acknowledge(&p);
        publisher.disconnect();
        assert!(self.is_running(), "midge is not running");
    }

    /// Checks that midge is running and serves well-behaved clients: a client connecting
    /// now subscribes and gets a message another new client publishes.
    pub fn assert_still_serving(&mut self) {
        let mut bystander = self.bystander();
        self.assert_delivers_to(&mut bystander);
        bystander.client.disconnect();
    }

    /// Runs `mosquitto_pub` against this broker and waits for it.
    pub fn mosquitto_pub(&self, args: &[&str]) -> Output {
        self.client("mosquitto_pub", args)
            .output()
            .expect("run mosquitto_pub (apt-get install mosquitto-clients)")
    }

    /// Runs `mosquitto_pub` and checks it succeeded.
    pub fn mosquitto_pub_ok(&self, args: &[&str]) {
        let out = self.mosquitto_pub(args);
        assert!(
            out.status.success(),
            "mosquitto_pub {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
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
            if let Some(dir) = &self.data_dir {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

/// The resident set size of process `pid` in KiB (`VmRSS` in `/proc/PID/status`);
/// `None` once it has exited.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A client id no other call in this test process returns: `prefix-N`.
pub fn unique_client_id(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A well-behaved client subscribed to a topic only it uses, from [`Midge::bystander`]: a
/// test keeps it connected while it misbehaves with other connections, and checks with
/// [`Midge::assert_delivers_to`] that it is still served.
#[derive(Debug)]
pub struct Bystander {
    pub client: RawClient,
    topic: String,
}

/// Runs `midge passwd ARGS` (mosquitto_passwd's interface) and checks it succeeded.
pub fn midge_passwd(args: &[&str]) {
    let status = Command::new(midge_binary())
        .arg("passwd")
        .args(args)
        .status()
        .expect("run midge passwd");
    assert!(status.success(), "midge passwd {args:?}");
}

/// A Mosquitto password file holding `users` (name, password), written by
/// `midge passwd -b` (argon2id, as it writes by default).
pub fn password_file(users: &[(&str, &str)]) -> PathBuf {
    let path = unique_temp_path("passwd");
    let file = path.to_str().expect("UTF-8 temp path");
    for (i, (user, password)) in users.iter().enumerate() {
        let create = if i == 0 { &["-c"][..] } else { &[] };
        midge_passwd(&[create, &["-b", file, user, password]].concat());
    }
    path
}

/// A file with `text` in the temp directory (an ACL file, say).
pub fn temp_file(what: &str, text: &str) -> PathBuf {
    let path = unique_temp_path(what);
    std::fs::write(&path, text).expect("write temp file");
    path
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

/// A running mosquitto_sub whose output is collected as it comes; killed when dropped.
#[derive(Debug)]
pub struct MosquittoSub {
    child: Child,
    stdout: Option<std::thread::JoinHandle<Vec<u8>>>,
}

impl MosquittoSub {
    /// Starts `mosquitto_sub -i id -W 10 args…` and waits until midge logs its
    /// subscription to `last_filter` (the last `-t` of `args`).
    pub fn start(midge: &Midge, id: &str, last_filter: &str, args: &[&str]) -> Self {
        let line = format!("{id} subscribed to {last_filter}");
        let before = midge.log_count(&line);
        let mut child = midge.mosquitto_sub(&[&["-i", id, "-W", "10"], args].concat());
        let mut stdout = child.stdout.take().expect("piped stdout");
        let stdout = std::thread::spawn(move || {
            let mut out = Vec::new();
            stdout
                .read_to_end(&mut out)
                .expect("read mosquitto_sub output");
            out
        });
        let mut sub = Self {
            child,
            stdout: Some(stdout),
        };
        if !midge.wait_for_log_count(&line, before + 1) {
            let _ = sub.child.kill();
            let out = sub.finish();
            panic!(
                "mosquitto_sub {args:?} did not subscribe: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        sub
    }

    /// Waits for mosquitto_sub to exit (after its `-C` count, or its `-W` timeout).
    pub fn finish(&mut self) -> Output {
        let status = self.child.wait().expect("wait for mosquitto_sub");
        let stdout = self
            .stdout
            .take()
            .map(|t| t.join().expect("mosquitto_sub output"))
            .unwrap_or_default();
        let mut stderr = Vec::new();
        if let Some(mut e) = self.child.stderr.take() {
            e.read_to_end(&mut stderr)
                .expect("read mosquitto_sub errors");
        }
        Output {
            status,
            stdout,
            stderr,
        }
    }

    /// What mosquitto_sub printed, once it exited successfully (its `-C` count reached).
    pub fn output(mut self) -> Vec<u8> {
        let out = self.finish();
        assert!(
            out.status.success(),
            "mosquitto_sub failed ({}), printed {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    pub fn text(self) -> String {
        String::from_utf8(self.output()).expect("mosquitto_sub printed UTF-8")
    }

    /// Kills mosquitto_sub with SIGKILL: no DISCONNECT reaches midge.
    pub fn kill(mut self) {
        self.child.kill().expect("kill mosquitto_sub");
        self.child.wait().expect("wait for mosquitto_sub");
    }
}

impl Drop for MosquittoSub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An MQTT 5 CONNECT: clean start, keep-alive 60 s, no properties, will or credentials.
pub fn connect_v5(client_id: &str) -> Connect<'_> {
    Connect {
        version: ProtocolVersion::V5,
        ..connect_packet(client_id)
    }
}

/// An MQTT 5 CONNECT with the given Clean Start and CONNECT properties (Session Expiry
/// Interval, Receive Maximum, Topic Alias Maximum…).
pub fn connect_v5_with<'a>(
    client_id: &'a str,
    clean_start: bool,
    properties: &'a [Property<'a>],
) -> Connect<'a> {
    Connect {
        clean_start,
        properties: List::new(properties),
        ..connect_v5(client_id)
    }
}

/// MQTT 5 properties as received, owning their wire bytes; [`OwnedProperties::get`] gives
/// the codec's typed view (`.user_properties()`, `.message_expiry_interval()`…).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OwnedProperties(Vec<u8>);

impl OwnedProperties {
    /// Copies decoded properties (which are all wire bytes).
    pub fn of(properties: &Properties<'_>) -> Self {
        assert!(properties.items().is_empty(), "not decoded properties");
        Self(properties.wire().to_vec())
    }

    pub fn get(&self) -> Properties<'_> {
        Properties::with_wire(&self.0, &[])
    }

    /// Every property, in order.
    pub fn to_vec(&self) -> Vec<Property<'_>> {
        self.get().iter().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for OwnedProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.get().iter()).finish()
    }
}

/// A PUBLISH as received, owning its topic, payload and (MQTT 5) properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: QoS,
    pub packet_id: Option<u16>,
    pub dup: bool,
    pub retain: bool,
    pub properties: OwnedProperties,
}

impl Received {
    /// The typed properties.
    pub fn props(&self) -> Properties<'_> {
        self.properties.get()
    }
}

/// An MQTT 5 CONNACK as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connack5 {
    pub session_present: bool,
    pub reason: ReasonCode,
    pub properties: OwnedProperties,
}

impl Connack5 {
    pub fn props(&self) -> Properties<'_> {
        self.properties.get()
    }
}

/// A reason code with properties, as received in an MQTT 5 PUBACK, PUBREC, PUBCOMP or
/// DISCONNECT (`packet_id` 0 for DISCONNECT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub packet_id: u16,
    pub reason: ReasonCode,
    pub properties: OwnedProperties,
}

impl Reply {
    fn of_ack(ack: &Ack<'_>) -> Self {
        Self {
            packet_id: ack.packet_id,
            reason: ack.reason,
            properties: OwnedProperties::of(&ack.properties),
        }
    }

    pub fn props(&self) -> Properties<'_> {
        self.properties.get()
    }
}

/// The bytes of `packet` encoded for `version`.
pub fn encode(version: ProtocolVersion, packet: &Packet<'_>) -> Vec<u8> {
    let mut out = vec![0; packet.encoded_len(version).expect("encodable")];
    packet.encode(version, &mut out).expect("encode");
    out
}

/// A PUBLISH on `topic` (may be empty: with a Topic Alias in `props`), sent as it is by
/// the tests that choose packet ids themselves.
pub fn publish_packet<'a>(
    topic: &'a str,
    props: &'a [Property<'a>],
    qos_pid: QosPid,
    payload: &'a [u8],
) -> Packet<'a> {
    Packet::Publish(Publish {
        dup: false,
        qos_pid,
        retain: false,
        topic,
        properties: List::new(props),
        payload,
    })
}

/// A fixed header: the first byte, then `remaining_len` as a Remaining Length (section
/// 2.2.3: seven bits a byte, low bits first). It need not be followed by that many bytes.
pub fn fixed_header(first_byte: u8, remaining_len: usize) -> Vec<u8> {
    let mut out = vec![first_byte];
    let mut len = remaining_len;
    loop {
        let byte = (len % 128) as u8;
        len /= 128;
        out.push(if len > 0 { byte | 0x80 } else { byte });
        if len == 0 {
            return out;
        }
    }
}

/// A packet from its first byte and body (the remaining length is computed), for bytes
/// the codec would refuse to encode.
pub fn frame(first_byte: u8, body: &[u8]) -> Vec<u8> {
    let mut out = fixed_header(first_byte, body.len());
    out.extend_from_slice(body);
    out
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

    /// Sends an MQTT 5 `connect` and returns the client with the CONNACK, whatever its
    /// reason code.
    pub fn handshake_v5(port: u16, connect: Connect<'_>) -> (Self, Connack5) {
        assert!(
            connect.version.is_v5(),
            "handshake_v5 with {:?}",
            connect.version
        );
        let mut client = Self::connect(port);
        client.version = ProtocolVersion::V5;
        client.send_packet(&Packet::Connect(connect));
        let connack = client.recv(|packet| match packet {
            Packet::Connack(c) => Connack5 {
                session_present: c.session_present,
                reason: c.reason,
                properties: OwnedProperties::of(&c.properties),
            },
            other => panic!("expected CONNACK, got {other:?}"),
        });
        (client, connack)
    }

    /// Connects with an MQTT 5 `connect` and checks CONNACK says Success.
    pub fn connected_with(port: u16, connect: Connect<'_>) -> (Self, Connack5) {
        let id = connect.client_id;
        let (client, connack) = Self::handshake_v5(port, connect);
        assert_eq!(
            connack.reason,
            ReasonCode::Success,
            "CONNACK for {id}: {connack:?}"
        );
        (client, connack)
    }

    /// A connected MQTT 5 client with clean start and no properties.
    pub fn connected_v5(port: u16, client_id: &str) -> Self {
        Self::connected_with(port, connect_v5(client_id)).0
    }

    fn packet_id(&mut self) -> u16 {
        self.next_packet_id = self.next_packet_id.wrapping_add(1).max(1);
        self.next_packet_id
    }

    /// Subscribes to one filter and checks the SUBACK grants `qos` (3.1.1: its exact
    /// bytes).
    pub fn subscribe(&mut self, filter: &str, qos: QoS) {
        if self.version.is_v5() {
            let codes = self.subscribe_with(filter, SubscriptionOptions::new(qos), &[]);
            let granted = ReasonCode::from_u8(qos as u8).expect("granted QoS code");
            assert_eq!(codes, [granted], "SUBACK for {filter}");
            return;
        }
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

    /// Subscribes to one filter with MQTT 5 `options` and SUBSCRIBE `properties` (a
    /// Subscription Identifier…), returning the SUBACK's reason code list.
    pub fn subscribe_with(
        &mut self,
        filter: &str,
        options: SubscriptionOptions,
        properties: &[Property<'_>],
    ) -> Vec<ReasonCode> {
        self.subscribe_many(&[Subscription { filter, options }], properties)
    }

    /// One SUBSCRIBE with several filters; returns the SUBACK's reason codes, in order.
    pub fn subscribe_many(
        &mut self,
        subscriptions: &[Subscription<'_>],
        properties: &[Property<'_>],
    ) -> Vec<ReasonCode> {
        let id = self.packet_id();
        self.send_packet(&Packet::Subscribe(Subscribe {
            packet_id: id,
            properties: List::new(properties),
            subscriptions: List::new(subscriptions),
        }));
        self.recv(|packet| match packet {
            Packet::Suback(s) => {
                assert_eq!(s.packet_id, id, "SUBACK packet id");
                s.reason_codes.iter().collect()
            }
            other => panic!("expected SUBACK, got {other:?}"),
        })
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

    /// Publishes and completes the QoS flow, checking each acknowledgement's exact bytes
    /// (MQTT 5: that it is a success). When it returns, midge has routed the message (for
    /// QoS 0, [`Self::sync`] makes sure of that).
    pub fn publish(&mut self, topic: &str, payload: &[u8], qos: QoS, retain: bool) {
        if self.version.is_v5() {
            let reply = self.publish_with(topic, payload, qos, retain, &[]);
            assert!(!reply.reason.is_error(), "publish on {topic}: {reply:?}");
            return;
        }
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

    /// Publishes an MQTT 5 message with `properties` and returns the PUBACK or PUBREC
    /// (QoS 0: a Success reply once [`Self::sync`] returned). A successful PUBREC is
    /// followed by PUBREL, and the PUBCOMP checked.
    pub fn publish_with(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
        properties: &[Property<'_>],
    ) -> Reply {
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
            properties: List::new(properties),
            payload,
        }));
        match qos {
            QoS::AtMostOnce => {
                self.sync();
                Reply {
                    packet_id: 0,
                    reason: ReasonCode::Success,
                    properties: OwnedProperties::default(),
                }
            }
            QoS::AtLeastOnce => self.recv(|packet| match packet {
                Packet::Puback(ack) if ack.packet_id == id => Reply::of_ack(&ack),
                other => panic!("expected PUBACK {id}, got {other:?}"),
            }),
            QoS::ExactlyOnce => {
                let pubrec = self.recv(|packet| match packet {
                    Packet::Pubrec(ack) if ack.packet_id == id => Reply::of_ack(&ack),
                    other => panic!("expected PUBREC {id}, got {other:?}"),
                });
                if !pubrec.reason.is_error() {
                    self.send_packet(&Packet::Pubrel(Ack::new(id)));
                    let pubcomp = self.recv(|packet| match packet {
                        Packet::Pubcomp(ack) if ack.packet_id == id => Reply::of_ack(&ack),
                        other => panic!("expected PUBCOMP {id}, got {other:?}"),
                    });
                    assert_eq!(pubcomp.reason, ReasonCode::Success, "PUBCOMP {id}");
                }
                pubrec
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
                properties: OwnedProperties::of(&p.properties),
            },
            other => panic!("expected PUBLISH, got {other:?}"),
        })
    }

    /// Completes the receiver's side of a delivery: PUBACK for QoS 1, PUBREC, PUBREL and
    /// PUBCOMP for QoS 2, nothing for QoS 0.
    pub fn acknowledge(&mut self, publish: &Received) {
        let Some(id) = publish.packet_id else {
            return;
        };
        if publish.qos == QoS::AtLeastOnce {
            self.send_packet(&Packet::Puback(Ack::new(id)));
            return;
        }
        self.send_packet(&Packet::Pubrec(Ack::new(id)));
        let pubrel = self.recv(|packet| match packet {
            Packet::Pubrel(ack) => Reply::of_ack(&ack),
            other => panic!("expected PUBREL {id}, got {other:?}"),
        });
        assert_eq!((pubrel.packet_id, pubrel.reason), (id, ReasonCode::Success));
        self.send_packet(&Packet::Pubcomp(Ack::new(id)));
    }

    /// The next packet, which must be an MQTT 5 DISCONNECT from midge.
    pub fn recv_disconnect(&mut self) -> Reply {
        self.recv(|packet| match packet {
            Packet::Disconnect(d) => Reply {
                packet_id: 0,
                reason: d.reason,
                properties: OwnedProperties::of(&d.properties),
            },
            other => panic!("expected DISCONNECT, got {other:?}"),
        })
    }

    /// Checks that midge's next packet is a DISCONNECT with `reason` and that it then
    /// closes the connection [MQTT-3.14.4-2]; returns the DISCONNECT.
    pub fn expect_disconnect(&mut self, reason: ReasonCode) -> Reply {
        let disconnect = self.recv_disconnect();
        assert_eq!(
            disconnect.reason, reason,
            "DISCONNECT from midge: {disconnect:?}"
        );
        assert!(
            self.is_closed_by_broker(),
            "connection still open after DISCONNECT"
        );
        disconnect
    }

    /// Sends an MQTT 5 DISCONNECT with `reason` and `properties` (Session Expiry
    /// Interval…), and waits for midge to close the connection.
    pub fn disconnect_with(mut self, reason: ReasonCode, properties: &[Property<'_>]) {
        self.send_packet(&Packet::Disconnect(Disconnect {
            reason,
            properties: List::new(properties),
        }));
        assert!(
            self.is_closed_by_broker(),
            "midge did not close the connection after DISCONNECT"
        );
    }

    /// Sends DISCONNECT (normal disconnection) and waits for midge to close the connection.
    pub fn disconnect(self) {
        self.disconnect_with(ReasonCode::Success, &[]);
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

    /// The next PUBLISH if one arrives within `limit`; `None` if nothing does. Any other
    /// packet fails the test.
    pub fn poll_publish(&mut self, limit: Duration) -> Option<Received> {
        match self.wait_frame(limit) {
            Some(true) => Some(self.recv_publish()),
            Some(false) => None,
            None => panic!("connection closed while polling for a PUBLISH"),
        }
    }

    /// Whether a whole packet arrives within `limit` (it is then next for [`Self::recv`]);
    /// `false` if nothing does or the connection closes.
    pub fn poll_frame(&mut self, limit: Duration) -> bool {
        self.wait_frame(limit) == Some(true)
    }

    /// Waits up to `limit` for a whole packet and leaves it next in line: `Some(true)` if
    /// one came, `Some(false)` if none in time, `None` if the connection closed.
    fn wait_frame(&mut self, limit: Duration) -> Option<bool> {
        self.stream
            .set_read_timeout(Some(limit))
            .expect("set timeout");
        let frame = self.recv_frame_or_timeout();
        self.stream
            .set_read_timeout(Some(TIMEOUT))
            .expect("set timeout");
        match frame {
            Err(()) => Some(false),
            Ok(None) => None,
            Ok(Some(frame)) => {
                let mut buf = frame;
                buf.append(&mut self.buf);
                self.buf = buf;
                Some(true)
            }
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

    /// A second handle on the same connection, with its own read buffer: one thread can
    /// write while another reads. Only while nothing read is left unparsed.
    pub fn try_clone(&self) -> Self {
        assert!(self.buf.is_empty(), "bytes read and not parsed yet");
        Self {
            stream: self.stream.try_clone().expect("clone the socket"),
            buf: Vec::new(),
            version: self.version,
            next_packet_id: self.next_packet_id,
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to midge");
    }

    pub fn send_packet(&mut self, packet: &Packet<'_>) {
        self.send(&encode(self.version, packet));
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
