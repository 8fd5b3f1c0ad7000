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

use midge_wire::{DecodeOptions, Decoded, Packet, ProtocolVersion, decode};

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

fn unique_temp_path(what: &str) -> PathBuf {
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
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
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

/// A TCP connection speaking MQTT byte by byte, for tests that need exact packets.
#[derive(Debug)]
pub struct RawClient {
    stream: TcpStream,
    buf: Vec<u8>,
    pub version: ProtocolVersion,
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
        }
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
