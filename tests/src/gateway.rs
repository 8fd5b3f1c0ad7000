//! Harness for the CoAP gateway's end-to-end tests: the real `midge-gateway` binary in
//! front of a real `midge`, libcoap's `coap-client-notls`, and [`CoapSocket`], a small
//! CoAP endpoint for what coap-client cannot do (duplicates, malformed datagrams, RSTs).

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use coap_lite::{CoapOption, MessageClass, MessageType, Packet, RequestType};

use crate::{
    Midge, TIMEOUT, midge_binary, rss_kib, spawn_logged, unique_temp_path, wait_for_logged_port,
};

/// The `midge-gateway` binary: next to the `midge` binary under test.
pub fn gateway_binary() -> PathBuf {
    let bin = midge_binary().with_file_name("midge-gateway");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p midge-gateway` first (tests/run does)",
        bin.display()
    );
    bin
}

/// A running `midge-gateway`, killed when dropped.
#[derive(Debug)]
pub struct Gateway {
    child: Child,
    port: u16,
    log_path: PathBuf,
}

impl Gateway {
    /// A gateway on a free loopback UDP port in front of `midge`.
    pub fn start(midge: &Midge) -> Self {
        Self::start_with(&["--broker", &format!("127.0.0.1:{}", midge.port())])
    }

    /// A gateway with these command-line arguments (at least `--broker`).
    pub fn start_with(args: &[&str]) -> Self {
        let (child, log_path) = spawn_logged(
            &gateway_binary(),
            &["--listen", "127.0.0.1:0", "--log-level", "debug"],
            args,
        );
        let mut gateway = Self {
            child,
            port: 0,
            log_path,
        };
        gateway.port = gateway.wait_for_port();
        gateway
    }

    /// Reads the port from "CoAP gateway listening on udp 127.0.0.1:PORT".
    fn wait_for_port(&mut self) -> u16 {
        let log_path = &self.log_path;
        wait_for_logged_port(
            &mut self.child,
            "midge-gateway",
            "listening on udp 127.0.0.1:",
            || std::fs::read_to_string(log_path).unwrap_or_default(),
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `coap://127.0.0.1:PORT/{path}` (`path` may carry a `?query`).
    pub fn uri(&self, path: &str) -> String {
        format!("coap://127.0.0.1:{}/{path}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits until the log contains `needle` (the gateway logs at debug level).
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

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The gateway's resident set size now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id()).expect("the gateway's VmRSS")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- gateway log ---\n{}", self.log());
        } else {
            let _ = std::fs::remove_file(&self.log_path);
        }
    }
}

/// What `coap-client-notls -v 6` showed: the response codes in order (`"2.04"`…) and
/// the payload it wrote to its output file.
#[derive(Debug)]
pub struct CoapClientRun {
    pub codes: Vec<String>,
    pub payload: Vec<u8>,
    /// Its PDU dump, for failure messages.
    pub dump: String,
}

impl CoapClientRun {
    /// The last response code (a block-wise transfer shows one per block).
    pub fn code(&self) -> &str {
        self.codes.last().map_or("none", String::as_str)
    }
}

/// Runs `coap-client-notls -v 6 -o FILE ARGS` and collects the response codes from its
/// PDU dump (its exit status is 0 even for 4.xx) and the payload from FILE.
pub fn coap_client(args: &[&str]) -> CoapClientRun {
    let out_path = unique_temp_path("coap-out");
    let output = coap_client_command(args, &out_path)
        .output()
        .expect("run coap-client-notls (apt-get install libcoap3-bin)");
    let payload = std::fs::read(&out_path).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    let dump = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    CoapClientRun {
        codes: response_codes(&dump),
        payload,
        dump,
    }
}

/// The command [`coap_client`] runs, writing the payload to `out_path`.
pub fn coap_client_command(args: &[&str], out_path: &std::path::Path) -> Command {
    let mut cmd = Command::new("coap-client-notls");
    cmd.args(["-v", "6", "-o", out_path.to_str().expect("UTF-8 temp path")])
        .args(args)
        .stdin(Stdio::null());
    cmd
}

/// The response codes of a coap-client PDU dump: `c:2.05` in lines such as
/// `v:1 t:ACK c:2.05 i:8f56 {01} [ ] :: 'x'` (requests show `c:GET`).
pub fn response_codes(dump: &str) -> Vec<String> {
    dump.lines()
        .filter(|line| line.starts_with("v:1 "))
        .filter_map(|line| {
            let code = line.split_whitespace().find_map(|w| w.strip_prefix("c:"))?;
            code.contains('.').then(|| code.to_owned())
        })
        .collect()
}

/// A request packet: `path` like `"ps/a/b"`, `query` like `["qos=1"]`, token `[mid]`.
pub fn request(
    kind: MessageType,
    method: RequestType,
    mid: u16,
    path: &str,
    query: &[&str],
) -> Packet {
    let mut p = Packet::new();
    p.header.set_version(1);
    p.header.set_type(kind);
    p.header.code = MessageClass::Request(method);
    p.header.message_id = mid;
    p.set_token(mid.to_be_bytes().to_vec());
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        p.add_option(CoapOption::UriPath, segment.as_bytes().to_vec());
    }
    for q in query {
        p.add_option(CoapOption::UriQuery, q.as_bytes().to_vec());
    }
    p
}

/// A confirmable request (see [`request`]).
pub fn con(method: RequestType, mid: u16, path: &str, query: &[&str]) -> Packet {
    request(MessageType::Confirmable, method, mid, path, query)
}

/// A response's code as CoAP writes it, `"2.04"`.
pub fn code(p: &Packet) -> String {
    p.header.code.to_string()
}

/// A UDP socket talking CoAP to one gateway.
#[derive(Debug)]
pub struct CoapSocket {
    socket: UdpSocket,
    gateway: SocketAddr,
}

impl CoapSocket {
    pub fn new(gateway: &Gateway) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket");
        socket.set_read_timeout(Some(TIMEOUT)).expect("set timeout");
        Self {
            socket,
            gateway: gateway.addr(),
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("local address")
    }

    pub fn send(&self, bytes: &[u8]) {
        self.socket
            .send_to(bytes, self.gateway)
            .expect("send to the gateway");
    }

    pub fn send_packet(&self, packet: &Packet) {
        self.send(&packet.to_bytes().expect("encode a CoAP packet"));
    }

    /// The next datagram within `limit`, if any.
    pub fn try_recv(&self, limit: Duration) -> Option<Vec<u8>> {
        self.socket
            .set_read_timeout(Some(limit))
            .expect("set timeout");
        let mut buf = vec![0u8; 65_536];
        let received = self.socket.recv_from(&mut buf);
        self.socket
            .set_read_timeout(Some(TIMEOUT))
            .expect("set timeout");
        let (n, _) = received.ok()?;
        buf.truncate(n);
        Some(buf)
    }

    /// The next message from the gateway, decoded.
    pub fn recv(&self) -> Packet {
        let bytes = self
            .try_recv(TIMEOUT)
            .unwrap_or_else(|| panic!("no datagram from the gateway within {TIMEOUT:?}"));
        Packet::from_bytes(&bytes).expect("the gateway sends well-formed CoAP")
    }

    /// Sends `packet` and returns the gateway's answer.
    pub fn exchange(&self, packet: &Packet) -> Packet {
        self.send_packet(packet);
        self.recv()
    }

    /// Sends an empty ACK for a confirmable notification.
    pub fn ack(&self, notification: &Packet) {
        let [hi, lo] = notification.header.message_id.to_be_bytes();
        self.send(&[0x60, 0, hi, lo]);
    }

    /// Sends an RST for a notification.
    pub fn reset(&self, notification: &Packet) {
        let [hi, lo] = notification.header.message_id.to_be_bytes();
        self.send(&[0x70, 0, hi, lo]);
    }
}

/// A topic no other test (or earlier run against a broker that keeps retained messages)
/// uses: `{prefix}/{pid}-{n}`.
pub fn unique_topic(prefix: &str) -> String {
    format!(
        "{prefix}/{}",
        crate::unique_client_id(&std::process::id().to_string())
    )
}

/// Waits until midge logs a subscription to `filter` (the gateway's, for an Observe).
pub fn wait_for_subscription(midge: &Midge, filter: &str) {
    assert!(
        midge.wait_for_log(&format!(" subscribed to {filter} (")),
        "no subscription to {filter}:\n{}",
        midge.log()
    );
}
