//! Drives the broker's connection state machine with arbitrary client byte streams: bytes
//! in, actions out, no sockets.
//!
//! One `Broker` per input (limits picked by the first byte, an enhanced authentication
//! method `nonce`), three client slots, each holding a `Connection` fed the way `server.rs`
//! feeds it: packets decoded with `midge_wire::decode` in the connection's `version()`
//! and the broker's `max_packet_size`, partial frames kept per connection, nothing read
//! while the output is over `OUT_HIGH_WATER`, a password check answered before what
//! followed CONNECT is handled, `send_queued` after each read, the connection closed and
//! replaced after an error. The rest of the input is a sequence of steps (README.md):
//! raw bytes, well-formed packets built from a few bytes, `send_queued`, the client
//! reading, closes, takeover and wake-up notifications, the broker's clock for wills and
//! session expiry, password-file reloads.
//!
//! Checked after every call into the broker:
//! * nothing panics (overflow checks and debug assertions are on);
//! * what the connection added to `out` decodes, with the version the client expects
//!   (its CONNECT's; 3.1.1 for the CONNACK refusing an unsupported protocol level), as a
//!   sequence of whole, valid packets, each one a server-to-client packet;
//! * the answer fits the packet handled: CONNACK (and, for a resumed session, only resent
//!   PUBLISH with DUP / PUBREL after it), AUTH, or nothing while the password is checked,
//!   for CONNECT; PUBACK/PUBREC/PUBREL/PUBCOMP with the same packet id; SUBACK with one
//!   code per filter, none granting more than asked; UNSUBACK; PINGRESP; nothing for the
//!   rest, and nothing at all when the call returns an error; a refused CONNECT (wrong
//!   password included) gets an error CONNACK, attaches no session and ends the
//!   connection; a password re-check that fails ends it;
//! * nothing but CONNACK or AUTH before the CONNACK, no second CONNACK, no PUBLISH before
//!   a successful CONNACK, session present never set after a clean start, an MQTT 5
//!   client sent an empty client id gets an Assigned Client Identifier;
//! * every PUBLISH fits the client's Maximum Packet Size and its Topic Alias Maximum,
//!   and an alias without a topic is one already set on this connection; a packet over
//!   the client's Maximum Packet Size carries no Reason String or User Property;
//! * a connection whose session was taken over handles nothing more (`TakenOver`);
//! * while no other live connection shares the session (so the target's copy of the
//!   in-flight window is exact): a new QoS 1/2 PUBLISH uses a packet id not in flight and
//!   only while fewer than min(max_inflight_messages, Receive Maximum) are in flight;
//! * on close, an MQTT 5 client is sent exactly one DISCONNECT when the server ends the
//!   connection for a reason it tells, nothing otherwise; the session is no longer owned
//!   by the closed connection;
//! * the broker's counters answer at every step, and every session a live connection
//!   holds as current is counted;
//! * at the end, with every connection closed and the broker's clock moved past every
//!   expiry, no session and no subscription is left unless some CONNECT or DISCONNECT
//!   asked for a session that never expires;
//! * LeakSanitizer: nothing leaks once the broker is dropped.
//!
//! `MIDGE_FUZZ_TRACE=1` prints each step and what the broker sent.
#![no_main]

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use midge::auth::{AuthExchange, AuthMethod, AuthStep};
use midge::broker::Broker;
use midge::config::{Limits, Security};
use midge::connection::{Closing, Connection, OUT_HIGH_WATER, PasswordCheck};
use midge::security::access::ListenerAccess;
use midge::security::password::PasswordFile;
use midge::session::Session;
use midge::signal::Raised;
use midge_wire::{
    Ack, Auth, Connect, DecodeError, DecodeOptions, Decoded, Disconnect, List, MAX_PACKET_SIZE,
    Packet, PacketType, Properties, Property, ProtocolVersion, Publish, QoS, QosPid, ReasonCode,
    RetainHandling, Subscribe, Subscription, SubscriptionOptions, Unsubscribe, Will, decode,
};

const SLOTS: usize = 3;
const CLIENT_IDS: [&str; 4] = ["a", "b", "c", ""];
const TOPICS: [&str; 8] = [
    "a/b", "a/c", "a/secret", "c/a/x", "r/1", "t", "$SYS/x", "c/b/x",
];
const FILTERS: [&str; 12] = [
    "a/b",
    "a/+",
    "#",
    "+/+",
    "$share/g/a/b",
    "$share/g/#",
    "c/+/x",
    "r/#",
    "t",
    "$SYS/#",
    "a/secret",
    "$share/h/+/+",
];
const PAYLOAD_LENS: [usize; 8] = [0, 1, 4, 16, 64, 200, 1000, 3];
static TEXT: [u8; 1000] = [b'x'; 1000];
static NOT_UTF8: [u8; 1000] = [0xff; 1000];

/// An ACL file for the listeners that have one (loaded once, shared by every input).
const ACL: &str = "\
topic readwrite a/#
topic read r/#
topic deny a/secret
pattern readwrite c/%c/#
user u
topic readwrite #
";

/// The listener's files: bit 0 the ACL file above, bit 1 a password file with user `u`,
/// password `pw` (written and loaded once, shared by every input).
fn listener_access(files: u8) -> Arc<ListenerAccess> {
    static ACCESS: OnceLock<[Arc<ListenerAccess>; 4]> = OnceLock::new();
    let all = ACCESS.get_or_init(|| {
        let dir: PathBuf = std::env::temp_dir().join(format!("midge-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let acl = dir.join("acl");
        std::fs::write(&acl, ACL).expect("write ACL");
        let passwd = dir.join("passwd");
        let mut file = PasswordFile::new(&passwd);
        file.set("u", b"pw").expect("hash");
        file.save().expect("write password file");
        let load = |files: u8| {
            let security = Security {
                acl_file: (files & 1 != 0).then(|| acl.clone()),
                password_file: (files & 2 != 0).then(|| passwd.clone()),
                ..Security::default()
            };
            let access = ListenerAccess::load(&security).expect("files load");
            if files & 2 != 0 {
                // The target decides password checks without hashing (`password_ok`):
                // make sure it decides as the file does.
                assert!(access.verify_password("u", b"pw"));
                assert!(!access.verify_password("u", b"wrong"));
            }
            Arc::new(access)
        };
        let all = [load(0), load(1), load(2), load(3)];
        // Loaded: the files are not read again (the target never reloads them).
        let _ = std::fs::remove_dir_all(&dir);
        all
    });
    Arc::clone(&all[usize::from(files & 3)])
}

/// `MIDGE_FUZZ_TRACE=1`: print each step and what the broker sent (for reading seeds
/// and crashes).
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("MIDGE_FUZZ_TRACE").is_some_and(|v| v != "0"))
}

/// An enhanced authentication method: challenges once, accepts the answer `n1-ok`.
#[derive(Debug)]
struct Nonce;

#[derive(Debug)]
struct NonceExchange {
    challenged: bool,
}

impl AuthMethod for Nonce {
    fn name(&self) -> &str {
        "nonce"
    }

    fn start(&self, _client_id: &str, _username: Option<&str>) -> Box<dyn AuthExchange> {
        Box::new(NonceExchange { challenged: false })
    }
}

impl AuthExchange for NonceExchange {
    fn step(&mut self, data: Option<&[u8]>) -> AuthStep {
        if !std::mem::replace(&mut self.challenged, true) {
            AuthStep::Challenge(b"n1".to_vec())
        } else if data == Some(b"n1-ok") {
            AuthStep::Accept(Some(b"welcome".to_vec()))
        } else {
            AuthStep::Refuse
        }
    }
}

/// Polls a future once: whether a `Notify` holds a permit (consuming it).
fn ready(f: impl Future) -> bool {
    let mut f = pin!(f);
    f.as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
        .is_ready()
}

/// Reads the input a byte at a time; zeros once it runs out.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }
}

fn limits(config: u8) -> Limits {
    let bit = |n: u8| config & (1 << n) != 0;
    let default = Limits::default();
    Limits {
        max_inflight_messages: if bit(0) { 2 } else { 20 },
        max_queued_messages: if bit(1) { 4 } else { 1000 },
        max_queued_bytes: if bit(1) { 64 } else { 0 },
        queue_qos0_messages: bit(2),
        max_packet_size: if bit(3) { 300 } else { default.max_packet_size },
        message_size_limit: if bit(4) { 8 } else { 0 },
        retain_available: !bit(5),
        max_topic_alias: if bit(6) { 0 } else { default.max_topic_alias },
        max_keepalive: if bit(7) { 100 } else { default.max_keepalive },
        ..default
    }
}

/// What the client asked for in the CONNECT being handled.
#[derive(Clone, Copy, Debug)]
struct Params {
    version: ProtocolVersion,
    clean: bool,
    empty_id: bool,
    max_packet_size: u32,
    topic_alias_max: u16,
    receive_max: u16,
}

impl Params {
    fn of(c: &Connect<'_>) -> Self {
        let p = &c.properties;
        Self {
            version: c.version,
            clean: c.clean_start,
            empty_id: c.client_id.is_empty(),
            max_packet_size: p.maximum_packet_size().unwrap_or(MAX_PACKET_SIZE as u32),
            topic_alias_max: p.topic_alias_maximum().unwrap_or(0),
            receive_max: p.receive_maximum().unwrap_or(u16::MAX),
        }
    }
}

/// A packet the broker sent, as much of it as the checks need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Connack { reason: ReasonCode, present: bool },
    Publish { qos: QoS, id: u16, dup: bool },
    Puback(u16),
    Pubrec(u16),
    Pubrel(u16),
    Pubcomp(u16),
    Suback { id: u16, n: usize },
    Unsuback { id: u16, n: usize },
    Pingresp,
    Disconnect(ReasonCode),
    Auth(ReasonCode),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flight {
    Published(QoS),
    Released,
}

/// One client slot: the connection and what its client has seen.
struct Client {
    conn: Connection,
    /// Bytes of a packet that arrived in part (the server's `partial`).
    partial: Vec<u8>,
    /// Bytes of `conn.out` already checked.
    checked: usize,
    /// Version of the last CONNECT generated for this connection: the version the target
    /// encodes its packets in until the connection is connected.
    gen_version: Option<ProtocolVersion>,
    /// The broker answered CONNECT with AUTH and waits for the client's.
    awaiting_auth: bool,
    /// Whether the last CONNECT's credentials are the password file's (`u`, `pw`): what
    /// the password check the broker asks for answers.
    password_ok: bool,
    /// The CONNECT being handled; becomes `params` with a successful CONNACK.
    pending: Option<Params>,
    params: Option<Params>,
    connack_seen: bool,
    /// Topics of the aliases the broker set for PUBLISHes to this client (index = alias).
    aliases: Vec<Option<Box<str>>>,
    /// Outgoing QoS 1/2 in flight, as the session should hold it.
    inflight: Vec<(u16, Flight)>,
    /// Whether `inflight` is exact: no other connection touched the session.
    trusted: bool,
    /// QoS asked for by each filter of the SUBSCRIBE being handled.
    asked_qos: Vec<QoS>,
}

impl Client {
    /// A fresh connection on a listener of this `flavour`: bit 0 no anonymous access,
    /// bit 1 the ACL file, bit 2 the password file, bit 3 a TLS listener taking the user
    /// name from the client certificate (`u`, or with bit 4 no usable certificate).
    fn new(broker: &Arc<Broker>, flavour: u8) -> Self {
        let peer: SocketAddr = "192.0.2.1:1883".parse().expect("address");
        let allow_anonymous = flavour & 1 == 0;
        let mut conn = Connection::new(Arc::clone(broker), peer, allow_anonymous);
        if flavour & 6 != 0 {
            conn = conn.with_access(listener_access(flavour >> 1));
        }
        if flavour & 8 != 0 {
            conn.set_certificate_username((flavour & 16 == 0).then(|| "u".to_owned()));
        }
        Self {
            conn,
            partial: Vec::new(),
            checked: 0,
            gen_version: None,
            awaiting_auth: false,
            password_ok: false,
            pending: None,
            params: None,
            connack_seen: false,
            aliases: Vec::new(),
            inflight: Vec::new(),
            trusted: true,
            asked_qos: Vec::new(),
        }
    }

    fn connected(&self) -> bool {
        self.conn.session().is_some()
    }

    /// Whether the session is still this connection's (not taken over).
    fn owns_session(&self) -> bool {
        self.conn.session().is_some_and(|s| {
            s.state()
                .owner
                .as_ref()
                .is_some_and(|o| Arc::ptr_eq(&o.signal, &self.conn.signal))
        })
    }

    /// The version the target encodes this client's packets in.
    fn client_version(&self) -> ProtocolVersion {
        if self.connected() {
            self.conn.version()
        } else {
            self.gen_version.unwrap_or(ProtocolVersion::V5)
        }
    }

    fn window(&self, limits: &Limits) -> usize {
        let receive_max = self.params.map_or(u16::MAX, |p| p.receive_max);
        limits.max_inflight_messages.min(usize::from(receive_max))
    }

    /// Decodes and checks what the connection added to `out` since the last check.
    fn check_out(&mut self, version: ProtocolVersion) -> Vec<Sent> {
        let new = self.conn.out[self.checked..].to_vec();
        self.checked = self.conn.out.len();
        let opts = DecodeOptions {
            version,
            max_packet_size: MAX_PACKET_SIZE as u32,
        };
        let mut sent = Vec::new();
        let mut rest = &new[..];
        while !rest.is_empty() {
            let (packet, len) = match decode(rest, &opts) {
                Ok(Decoded::Complete { packet, len }) => (packet, len),
                other => panic!(
                    "output does not decode as {version:?}: {other:?}\nbytes: {}",
                    hex(rest)
                ),
            };
            if trace() {
                eprintln!("    <- {packet:?}");
            }
            sent.push(self.check_sent(&packet, len, version));
            rest = &rest[len..];
        }
        sent
    }

    fn check_sent(&mut self, packet: &Packet<'_>, len: usize, version: ProtocolVersion) -> Sent {
        let kind = packet.packet_type();
        if !matches!(packet, Packet::Connack(_) | Packet::Auth(_)) {
            assert!(
                self.connack_seen,
                "{kind:?} sent before CONNACK: {packet:?}"
            );
        }
        let max = self
            .params
            .map_or(MAX_PACKET_SIZE as u32, |p| p.max_packet_size) as usize;
        if version.is_v5()
            && len > max
            && let Some(props) = properties_of(packet)
        {
            assert!(
                props.reason_string().is_none() && props.user_properties().next().is_none(),
                "{len}-byte {kind:?} over the client's Maximum Packet Size {max} carries a \
                 Reason String or User Property: {packet:?}"
            );
        }
        match *packet {
            Packet::Connack(c) => {
                assert!(!self.connack_seen, "second CONNACK: {c:?}");
                self.connack_seen = true;
                if c.reason == ReasonCode::Success {
                    let params = self.pending.expect("CONNACK Success without a CONNECT");
                    assert_eq!(params.version, version);
                    assert!(
                        !(params.clean && c.session_present),
                        "session present after a clean start"
                    );
                    if params.version.is_v5() && params.empty_id {
                        assert!(
                            c.properties.assigned_client_identifier().is_some(),
                            "no Assigned Client Identifier for an empty client id"
                        );
                    }
                    self.params = Some(params);
                } else {
                    assert!(c.reason.is_error(), "CONNACK with {:?}", c.reason);
                }
                Sent::Connack {
                    reason: c.reason,
                    present: c.session_present,
                }
            }
            Packet::Publish(p) => {
                let params = self.params.expect("PUBLISH before a successful CONNACK");
                assert!(
                    len <= params.max_packet_size as usize,
                    "{len}-byte PUBLISH over the client's Maximum Packet Size {}",
                    params.max_packet_size
                );
                match p.properties.topic_alias() {
                    Some(alias) => {
                        assert!(
                            alias >= 1 && alias <= params.topic_alias_max,
                            "topic alias {alias} over the client's maximum {}",
                            params.topic_alias_max
                        );
                        let slot = usize::from(alias);
                        if self.aliases.len() <= slot {
                            self.aliases.resize(slot + 1, None);
                        }
                        if p.topic.is_empty() {
                            assert!(
                                self.aliases[slot].is_some(),
                                "topic alias {alias} used before it was set"
                            );
                        } else {
                            self.aliases[slot] = Some(p.topic.into());
                        }
                    }
                    None => assert!(!p.topic.is_empty(), "PUBLISH without topic or alias"),
                }
                Sent::Publish {
                    qos: p.qos_pid.qos(),
                    id: p.qos_pid.packet_id().unwrap_or(0),
                    dup: p.dup,
                }
            }
            Packet::Puback(a) => Sent::Puback(a.packet_id),
            Packet::Pubrec(a) => Sent::Pubrec(a.packet_id),
            Packet::Pubrel(a) => Sent::Pubrel(a.packet_id),
            Packet::Pubcomp(a) => Sent::Pubcomp(a.packet_id),
            Packet::Suback(s) => {
                // Granted QoS no higher than asked, or a failure.
                if s.reason_codes.len() == self.asked_qos.len() {
                    for (code, &asked) in s.reason_codes.iter().zip(&self.asked_qos) {
                        assert!(
                            code.is_error() || code as u8 <= asked as u8,
                            "SUBACK grants {code:?} for QoS {asked:?}"
                        );
                    }
                }
                Sent::Suback {
                    id: s.packet_id,
                    n: s.reason_codes.len(),
                }
            }
            Packet::Unsuback(u) => Sent::Unsuback {
                id: u.packet_id,
                n: u.reason_codes.len(),
            },
            Packet::Pingresp => Sent::Pingresp,
            Packet::Disconnect(d) => Sent::Disconnect(d.reason),
            Packet::Auth(a) => {
                assert!(version.is_v5(), "AUTH to a {version:?} client");
                Sent::Auth(a.reason)
            }
            Packet::Connect(_)
            | Packet::Subscribe(_)
            | Packet::Unsubscribe(_)
            | Packet::Pingreq => {
                panic!("client-to-server packet sent to the client: {packet:?}")
            }
        }
    }
}

fn properties_of<'a>(packet: &Packet<'a>) -> Option<Properties<'a>> {
    match *packet {
        Packet::Connack(c) => Some(c.properties),
        Packet::Puback(a) | Packet::Pubrec(a) | Packet::Pubrel(a) | Packet::Pubcomp(a) => {
            Some(a.properties)
        }
        Packet::Suback(s) => Some(s.properties),
        Packet::Unsuback(u) => Some(u.properties),
        Packet::Disconnect(d) => Some(d.properties),
        Packet::Auth(a) => Some(a.properties),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a call must have answered, given the packet it handled.
enum Expect {
    /// Exactly this (and `Ok`).
    Exactly(Vec<Sent>),
    /// An error, and nothing sent.
    Error,
    /// `Ok` with these, or an error with nothing sent.
    OkOrError(Vec<Sent>),
    /// CONNECT (or the AUTH finishing one): see `check_connect`.
    Connect,
    /// AUTH from a connected client: `Ok` with one AUTH, or an error with nothing sent.
    Reauth,
    /// The session was taken over: `Err(TakenOver)` whatever the packet, nothing sent.
    TakenOver,
}

struct Harness {
    broker: Arc<Broker>,
    clients: Vec<Client>,
    /// Broker clock offset for expiring sessions and publishing delayed wills.
    clock: Duration,
    /// Some CONNECT or DISCONNECT may have made a session that never expires.
    forever: bool,
    /// Every session a connection held, to break reference cycles at the end (see
    /// `finish`).
    seen: Vec<Arc<Session>>,
}

impl Harness {
    fn new(config: u8) -> Self {
        let broker = Arc::new(Broker::new(limits(config)).with_auth_methods(vec![Arc::new(Nonce)]));
        let clients = (0..SLOTS).map(|_| Client::new(&broker, 0)).collect();
        Self {
            broker,
            clients,
            clock: Duration::ZERO,
            forever: false,
            seen: Vec::new(),
        }
    }

    /// Marks the in-flight copies of connections sharing `i`'s session as inexact.
    fn touch(&mut self, i: usize) {
        let Some(session) = self.clients[i].conn.session().cloned() else {
            return;
        };
        for j in 0..SLOTS {
            if j != i
                && self.clients[j]
                    .conn
                    .session()
                    .is_some_and(|s| Arc::ptr_eq(s, &session))
            {
                self.clients[j].trusted = false;
                self.clients[i].trusted = false;
            }
        }
    }

    /// Appends bytes to the client's stream and handles every whole packet, as
    /// `server.rs` does with what a read returns: a password check the broker asks for is
    /// answered at once (as the server's blocking pool would), then what followed CONNECT.
    fn feed(&mut self, i: usize, bytes: &[u8]) {
        if self.clients[i].conn.out.len() >= OUT_HIGH_WATER {
            return; // the server does not read while the client is not reading
        }
        let mut buf = std::mem::take(&mut self.clients[i].partial);
        buf.extend_from_slice(bytes);
        let mut used = 0;
        let result = self.handle_packets(i, &buf, &mut used).and_then(|()| {
            let Some(check) = self.clients[i].conn.take_password_check() else {
                return Ok(());
            };
            let valid = self.clients[i].password_ok;
            self.password_checked(i, check, valid)?;
            self.handle_packets(i, &buf, &mut used)
        });
        match result {
            Ok(()) => {
                buf.drain(..used);
                self.clients[i].partial = buf;
                if self.clients[i].conn.out.len() < OUT_HIGH_WATER {
                    self.send_queued(i);
                }
            }
            Err(closing) => self.close(i, closing, 0),
        }
    }

    /// `server.rs`'s `handle_packets`: decodes and handles whole packets from
    /// `buf[*used..]` until one is incomplete or CONNECT waits for its password check.
    fn handle_packets(&mut self, i: usize, buf: &[u8], used: &mut usize) -> Result<(), Closing> {
        let max = self.broker.limits.max_packet_size;
        loop {
            if self.clients[i].conn.is_waiting() {
                return Ok(());
            }
            let opts = DecodeOptions {
                version: self.clients[i].conn.version(),
                max_packet_size: max,
            };
            match decode(&buf[*used..], &opts) {
                Ok(Decoded::Complete { packet, len }) => {
                    assert!(len > 0 && *used + len <= buf.len() && len <= max as usize);
                    *used += len;
                    if trace() {
                        eprintln!("  [{i}] -> {packet:?}");
                    }
                    self.on_packet(i, packet)?;
                }
                Ok(Decoded::Incomplete { frame_len }) => {
                    if let Some(frame_len) = frame_len {
                        assert!(frame_len > buf.len() - *used && frame_len <= max as usize);
                    }
                    return Ok(());
                }
                Err(e) => {
                    if trace() {
                        eprintln!("  [{i}] -> undecodable: {e:?}");
                    }
                    return Err(self.on_decode_error(i, e));
                }
            }
        }
    }

    /// The outcome of a password check: for a CONNECT waiting for it, or for a connected
    /// client after the password file was reloaded.
    fn password_checked(
        &mut self,
        i: usize,
        check: PasswordCheck,
        valid: bool,
    ) -> Result<(), Closing> {
        if trace() {
            eprintln!("  [{i}] password check: {valid}");
        }
        self.touch(i);
        let client = &mut self.clients[i];
        let was_connected = client.connected();
        let v_before = client.conn.version();
        let result = client.conn.on_password_checked(check, valid);
        let out_version = if was_connected {
            v_before
        } else if client.connected() {
            client.conn.version()
        } else {
            client.pending.map_or(ProtocolVersion::V5, |p| p.version)
        };
        let sent = client.check_out(out_version);
        if was_connected {
            assert_eq!(sent, [], "answer to a password re-check");
            match &result {
                Ok(()) => assert!(valid, "credentials no longer valid, still connected"),
                Err(closing) => assert!(
                    !valid && matches!(closing, Closing::ProtocolError { .. }),
                    "re-check ({valid}) ended with {closing:?}"
                ),
            }
        } else {
            if !valid {
                assert!(result.is_err(), "CONNECT with a wrong password accepted");
            }
            client.check_connect(&result, &sent);
        }
        self.after_call(i);
        result
    }

    /// Bookkeeping after a call that may have attached a session.
    fn after_call(&mut self, i: usize) {
        if let Some(s) = self.clients[i].conn.session()
            && !self.seen.iter().any(|x| Arc::ptr_eq(x, s))
        {
            self.seen.push(Arc::clone(s));
        }
        self.touch(i);
        self.check_broker();
    }

    fn on_packet(&mut self, i: usize, packet: Packet<'_>) -> Result<(), Closing> {
        self.touch(i);
        let client = &mut self.clients[i];
        let was_connected = client.connected();
        let v_before = client.conn.version();
        match packet {
            Packet::Connect(c) => {
                let v5 = c.version.is_v5();
                if (!v5 && !c.clean_start)
                    || (v5 && c.properties.session_expiry_interval() == Some(u32::MAX))
                {
                    self.forever = true;
                }
            }
            Packet::Disconnect(d) if d.properties.session_expiry_interval() == Some(u32::MAX) => {
                self.forever = true;
            }
            _ => {}
        }
        let client = &mut self.clients[i];
        let expect = if was_connected && !client.owns_session() {
            Expect::TakenOver
        } else if was_connected {
            match packet {
                Packet::Publish(p) => match p.qos_pid {
                    QosPid::AtMostOnce => Expect::OkOrError(vec![]),
                    QosPid::AtLeastOnce(id) => Expect::OkOrError(vec![Sent::Puback(id)]),
                    QosPid::ExactlyOnce(id) => Expect::OkOrError(vec![Sent::Pubrec(id)]),
                },
                Packet::Puback(_) | Packet::Pubcomp(_) => Expect::Exactly(vec![]),
                Packet::Pubrec(a) => Expect::Exactly(vec![Sent::Pubrel(a.packet_id)]),
                Packet::Pubrel(a) => Expect::Exactly(vec![Sent::Pubcomp(a.packet_id)]),
                Packet::Subscribe(s) => Expect::Exactly(vec![Sent::Suback {
                    id: s.packet_id,
                    n: s.subscriptions.len(),
                }]),
                Packet::Unsubscribe(u) => Expect::Exactly(vec![Sent::Unsuback {
                    id: u.packet_id,
                    n: if v_before.is_v5() { u.filters.len() } else { 0 },
                }]),
                Packet::Pingreq => Expect::Exactly(vec![Sent::Pingresp]),
                Packet::Auth(_) => Expect::Reauth,
                _ => Expect::Error,
            }
        } else {
            match packet {
                Packet::Connect(_) if client.awaiting_auth => Expect::Error,
                Packet::Connect(c) => {
                    client.pending = Some(Params::of(&c));
                    client.password_ok = c.username == Some("u") && c.password == Some(b"pw");
                    Expect::Connect
                }
                Packet::Auth(_) if client.awaiting_auth => Expect::Connect,
                _ => Expect::Error,
            }
        };
        client.asked_qos = match packet {
            Packet::Subscribe(s) => s.subscriptions.iter().map(|s| s.options.qos).collect(),
            _ => Vec::new(),
        };
        let client_ack = match packet {
            Packet::Puback(a) => Some((PacketType::Puback, a.packet_id)),
            Packet::Pubrec(a) => Some((PacketType::Pubrec, a.packet_id)),
            Packet::Pubcomp(a) => Some((PacketType::Pubcomp, a.packet_id)),
            _ => None,
        };
        let result = client.conn.on_packet(packet);
        let now_connected = client.connected();
        let out_version = if was_connected {
            v_before
        } else if now_connected {
            client.conn.version()
        } else {
            match packet {
                Packet::Connect(c) if !client.awaiting_auth => c.version,
                _ => ProtocolVersion::V5,
            }
        };
        let sent = client.check_out(out_version);
        if was_connected {
            assert!(now_connected, "connection lost its state without closing");
        }
        match expect {
            Expect::Exactly(want) => {
                assert!(
                    result.is_ok(),
                    "{:?} failed: {result:?}",
                    packet.packet_type()
                );
                assert_eq!(sent, want, "answer to {packet:?}");
            }
            Expect::Error => {
                assert!(
                    result.is_err(),
                    "{packet:?} accepted (was connected: {was_connected})"
                );
                assert_eq!(sent, [], "answer to refused {packet:?}");
            }
            Expect::OkOrError(want) => {
                if result.is_ok() {
                    assert_eq!(sent, want, "answer to {packet:?}");
                } else {
                    assert_eq!(sent, [], "answer to refused {packet:?}");
                }
            }
            Expect::TakenOver => {
                assert!(
                    matches!(result, Err(Closing::TakenOver)),
                    "{packet:?} handled after the session was taken over: {result:?}"
                );
                assert_eq!(sent, [], "answer after the session was taken over");
            }
            Expect::Reauth => match &result {
                Ok(()) => assert!(
                    matches!(sent[..], [Sent::Auth(_)]),
                    "answer to AUTH: {sent:?}"
                ),
                Err(_) => assert_eq!(sent, [], "answer to refused AUTH"),
            },
            Expect::Connect => client.check_connect(&result, &sent),
        }
        if result.is_ok()
            && let Some((kind, id)) = client_ack
        {
            let pos = client.inflight.iter().position(|&(i, f)| {
                i == id
                    && match kind {
                        PacketType::Puback => f == Flight::Published(QoS::AtLeastOnce),
                        PacketType::Pubrec => f == Flight::Published(QoS::ExactlyOnce),
                        _ => f == Flight::Released,
                    }
            });
            if let Some(pos) = pos {
                if kind == PacketType::Pubrec {
                    client.inflight[pos].1 = Flight::Released;
                } else {
                    client.inflight.remove(pos);
                }
            }
        }
        self.after_call(i);
        result
    }

    fn on_decode_error(&mut self, i: usize, e: DecodeError) -> Closing {
        let client = &mut self.clients[i];
        let was_connected = client.connected();
        let unsupported = !was_connected && matches!(e, DecodeError::UnsupportedProtocolVersion(_));
        let v_before = client.conn.version();
        let closing = client.conn.on_decode_error(e);
        assert!(
            matches!(closing, Closing::ProtocolError { .. }),
            "decode error {e:?} closes with {closing:?}"
        );
        let sent = client.check_out(if unsupported {
            ProtocolVersion::V3_1_1
        } else {
            v_before
        });
        if unsupported {
            assert!(
                matches!(sent[..], [Sent::Connack { reason, .. }] if reason.is_error()),
                "answer to an unsupported protocol level: {sent:?}"
            );
        } else {
            assert_eq!(sent, [], "answer to decode error {e:?}");
        }
        closing
    }

    fn send_queued(&mut self, i: usize) {
        self.touch(i);
        let window = self.clients[i].window(&self.broker.limits);
        let client = &mut self.clients[i];
        let version = client.conn.version();
        client.conn.send_queued();
        let sent = client.check_out(version);
        for s in sent {
            let Sent::Publish { qos, id, dup } = s else {
                panic!("send_queued sent {s:?}");
            };
            assert!(!dup, "send_queued sent a PUBLISH with DUP");
            if qos == QoS::AtMostOnce {
                continue;
            }
            if client.trusted {
                assert!(
                    client.inflight.len() < window,
                    "PUBLISH {id} sent with {} in flight, window {window}",
                    client.inflight.len()
                );
                assert!(
                    !client.inflight.iter().any(|&(i, _)| i == id),
                    "packet id {id} reused while in flight: {:?}",
                    client.inflight
                );
            }
            client.inflight.push((id, Flight::Published(qos)));
        }
        self.check_broker();
    }

    /// Closes client `i` and puts a fresh connection (of `flavour`) in its slot.
    fn close(&mut self, i: usize, closing: Closing, flavour: u8) {
        if trace() {
            eprintln!("  [{i}] closed: {closing:?}");
        }
        self.touch(i);
        let client = &mut self.clients[i];
        let was_connected = client.connected();
        let v_before = client.conn.version();
        let tells = matches!(
            closing,
            Closing::ProtocolError { .. }
                | Closing::KeepAliveTimeout
                | Closing::TakenOver
                | Closing::ShuttingDown
        );
        let session = client.conn.session().cloned();
        client.conn.on_close(&closing);
        if let Some(session) = session {
            // Detached: a session left owned by a closed connection would never send
            // again nor expire.
            let owner = session
                .state()
                .owner
                .as_ref()
                .map(|o| Arc::clone(&o.signal));
            assert!(
                owner.is_none_or(|o| !Arc::ptr_eq(&o, &client.conn.signal)),
                "session still owned by its closed connection"
            );
        }
        let sent = client.check_out(v_before);
        if was_connected && v_before.is_v5() && tells {
            assert!(
                matches!(sent[..], [Sent::Disconnect(_)]),
                "closing with {closing:?} sent {sent:?}"
            );
        } else {
            assert_eq!(sent, [], "closing with {closing:?}");
        }
        assert!(!client.connected(), "still connected after on_close");
        self.clients[i] = Client::new(&self.broker, flavour);
        self.check_broker();
    }

    /// A round of the server's event loop for client `i`: if its signal was raised, the
    /// takeover, else the deliveries it was woken for.
    fn serve(&mut self, i: usize) {
        let signal = Arc::clone(&self.clients[i].conn.signal);
        if !ready(signal.wait()) {
            return;
        }
        if signal.take().contains(Raised::TakenOver) {
            self.close(i, Closing::TakenOver, 0);
            return;
        }
        if self.clients[i].conn.out.len() < OUT_HIGH_WATER {
            self.send_queued(i);
        }
    }

    fn flush(&mut self, i: usize) {
        let client = &mut self.clients[i];
        client.conn.out.clear();
        client.checked = 0;
    }

    fn tick(&mut self, seconds: u8) {
        self.clock += Duration::from_secs(u64::from(seconds));
        let now = Instant::now() + self.clock;
        self.broker.publish_due_wills(now);
        self.broker.expire_sessions(now);
        self.check_broker();
    }

    fn check_broker(&self) {
        let sessions = self.broker.session_count();
        let _ = self.broker.subscription_count();
        let _ = self.broker.retained_count();
        let mut current: Vec<_> = Vec::new();
        for c in &self.clients {
            if let Some(s) = c.conn.session()
                && self.broker.is_current(s)
                && !current.iter().any(|x| Arc::ptr_eq(x, s))
            {
                current.push(Arc::clone(s));
            }
        }
        assert!(
            current.len() <= sessions,
            "{} current sessions held, {sessions} counted",
            current.len()
        );
    }

    fn finish(&mut self) {
        if trace() {
            eprintln!("end of input");
        }
        for i in 0..SLOTS {
            let closing = if self.clients[i]
                .conn
                .signal
                .take()
                .contains(Raised::TakenOver)
            {
                Closing::TakenOver
            } else {
                Closing::ConnectionLost
            };
            self.close(i, closing, 0);
        }
        // Past every expiry, including the longest finite session expiry interval.
        let far = Instant::now() + self.clock + Duration::from_secs(u64::from(u32::MAX) + 1);
        self.broker.publish_due_wills(far);
        self.broker.expire_sessions(far);
        if trace() {
            eprintln!(
                "left: {} sessions, {} subscriptions (a session may never expire: {})",
                self.broker.session_count(),
                self.broker.subscription_count(),
                self.forever
            );
        }
        if !self.forever {
            assert_eq!(
                (
                    self.broker.session_count(),
                    self.broker.subscription_count()
                ),
                (0, 0),
                "sessions, subscriptions left after every connection closed and expired"
            );
        }
        // A session in a shared group that has a delivery from the group queued is a
        // reference cycle (group -> member session -> queued delivery -> group): fine while
        // the broker runs, but LeakSanitizer reports it when the broker is dropped with
        // such a session still subscribed (one that never expires). Unsubscribing every
        // session the target saw breaks the cycles.
        for session in std::mem::take(&mut self.seen) {
            let filters = session.state().subscriptions.take();
            for filter in filters {
                self.broker.unsubscribe(&session, &filter);
            }
        }
    }
}

impl Client {
    fn check_connect(&mut self, result: &Result<(), Closing>, sent: &[Sent]) {
        match result {
            Ok(()) if self.connected() => {
                self.awaiting_auth = false;
                let Some((&Sent::Connack { reason, present }, resent)) = sent.split_first() else {
                    panic!("CONNECT accepted without CONNACK first: {sent:?}");
                };
                assert_eq!(reason, ReasonCode::Success);
                // 3.1 has no session present flag (it always reads as false).
                let v31 = self
                    .params
                    .is_some_and(|p| p.version == ProtocolVersion::V3_1);
                assert!(
                    present || v31 || resent.is_empty(),
                    "resent without a session: {sent:?}"
                );
                for s in resent {
                    match *s {
                        Sent::Publish { qos, id, dup: true } if qos != QoS::AtMostOnce => {
                            self.inflight.push((id, Flight::Published(qos)))
                        }
                        Sent::Pubrel(id) => self.inflight.push((id, Flight::Released)),
                        other => panic!("{other:?} resent after CONNACK"),
                    }
                }
            }
            Ok(()) if self.conn.is_waiting() => {
                assert_eq!(sent, [], "answer to CONNECT waiting for its password check");
            }
            Ok(()) => {
                assert!(
                    matches!(sent, [Sent::Auth(ReasonCode::ContinueAuthentication)]),
                    "CONNECT pending without AUTH: {sent:?}"
                );
                self.awaiting_auth = true;
            }
            Err(Closing::Refused(_)) => {
                assert!(
                    matches!(sent, [Sent::Connack { reason, .. }] if reason.is_error()),
                    "refused without an error CONNACK: {sent:?}"
                );
                assert!(!self.connected(), "refused but connected");
            }
            Err(closing) => {
                assert!(
                    matches!(closing, Closing::ProtocolError { .. }),
                    "CONNECT ended with {closing:?}"
                );
                assert_eq!(sent, [], "answer to a failed CONNECT");
            }
        }
    }
}

// --- Packets the target writes for the client ---------------------------------------

fn encode(packet: &Packet<'_>, version: ProtocolVersion) -> Option<Vec<u8>> {
    let n = packet.encoded_len(version).ok()?;
    let mut buf = vec![0; n];
    packet.encode(version, &mut buf).ok()?;
    Some(buf)
}

fn gen_connect(input: &mut Input<'_>) -> (ProtocolVersion, Option<Vec<u8>>) {
    let (b1, b2, b3, b4) = (input.byte(), input.byte(), input.byte(), input.byte());
    let version = [
        ProtocolVersion::V3_1,
        ProtocolVersion::V3_1_1,
        ProtocolVersion::V5,
        ProtocolVersion::V5,
    ][usize::from(b1 & 3)];
    let v5 = version.is_v5();
    let mut props = Vec::new();
    let mut will_props = Vec::new();
    if v5 {
        match b2 & 3 {
            0 => {}
            1 => props.push(Property::SessionExpiryInterval(0)),
            2 => props.push(Property::SessionExpiryInterval(10)),
            _ => props.push(Property::SessionExpiryInterval(u32::MAX)),
        }
        match (b2 >> 2) & 3 {
            0 => {}
            1 => props.push(Property::ReceiveMaximum(1)),
            2 => props.push(Property::ReceiveMaximum(2)),
            _ => props.push(Property::ReceiveMaximum(u16::MAX)),
        }
        match (b2 >> 4) & 3 {
            0 => {}
            1 => props.push(Property::MaximumPacketSize(16)),
            2 => props.push(Property::MaximumPacketSize(64)),
            _ => props.push(Property::MaximumPacketSize(300)),
        }
        match (b2 >> 6) & 3 {
            0 => {}
            1 => props.push(Property::TopicAliasMaximum(1)),
            2 => props.push(Property::TopicAliasMaximum(2)),
            _ => props.push(Property::TopicAliasMaximum(100)),
        }
        match b3 & 3 {
            1 => props.push(Property::AuthenticationMethod("nonce")),
            2 => props.push(Property::AuthenticationMethod("bad")),
            _ => {}
        }
        if b3 & 4 != 0 {
            props.push(Property::RequestResponseInformation(true));
        }
        if b3 & 8 != 0 {
            props.push(Property::RequestProblemInformation(false));
        }
        if b3 & 0x40 != 0 {
            will_props.push(Property::WillDelayInterval(5));
        }
        if b3 & 0x80 != 0 {
            will_props.push(Property::MessageExpiryInterval(100));
        }
    }
    let will = match (b1 >> 5) & 3 {
        0 => None,
        kind => Some(Will {
            qos: [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][usize::from(kind - 1)],
            retain: kind == 2,
            properties: List::new(&will_props),
            topic: ["a/b", "r/1", "a/secret"][usize::from(kind - 1)],
            payload: b"gone",
        }),
    };
    let connect = Connect {
        version,
        clean_start: b1 & 0x10 != 0,
        keep_alive: [0, 60, 200, u16::MAX][usize::from((b3 >> 4) & 3)],
        properties: List::new(&props),
        client_id: CLIENT_IDS[usize::from((b1 >> 2) & 3)],
        will,
        username: (b1 & 0x80 != 0).then_some("u"),
        password: match b4 & 3 {
            0 => None,
            2 => Some(b"wrong"),
            _ => Some(b"pw"),
        },
    };
    (version, encode(&Packet::Connect(connect), version))
}

fn gen_subscribe(input: &mut Input<'_>, version: ProtocolVersion) -> Option<Vec<u8>> {
    let b1 = input.byte();
    let n = usize::from((b1 >> 2) & 3) + 1;
    let mut subs = Vec::with_capacity(n);
    for _ in 0..n {
        let (f, o) = (input.byte(), input.byte());
        subs.push(Subscription {
            filter: FILTERS[usize::from(f & 0x0f) % FILTERS.len()],
            options: SubscriptionOptions {
                qos: [
                    QoS::AtMostOnce,
                    QoS::AtLeastOnce,
                    QoS::ExactlyOnce,
                    QoS::AtLeastOnce,
                ][usize::from(o & 3)],
                no_local: o & 4 != 0,
                retain_as_published: o & 8 != 0,
                retain_handling: [
                    RetainHandling::OnSubscribe,
                    RetainHandling::OnNewSubscription,
                    RetainHandling::Never,
                    RetainHandling::OnSubscribe,
                ][usize::from((o >> 4) & 3)],
            },
        });
    }
    let props = [Property::SubscriptionIdentifier(u32::from(b1 >> 5) + 1)];
    let subscribe = Subscribe {
        packet_id: u16::from(b1 & 3) + 1,
        properties: if b1 & 0x10 != 0 && version.is_v5() {
            List::new(&props)
        } else {
            Properties::EMPTY
        },
        subscriptions: List::new(&subs),
    };
    encode(&Packet::Subscribe(subscribe), version)
}

fn gen_unsubscribe(input: &mut Input<'_>, version: ProtocolVersion) -> Option<Vec<u8>> {
    let b1 = input.byte();
    let n = usize::from((b1 >> 2) & 3) + 1;
    let filters: Vec<&str> = (0..n)
        .map(|_| FILTERS[usize::from(input.byte() & 0x0f) % FILTERS.len()])
        .collect();
    let unsubscribe = Unsubscribe {
        packet_id: u16::from(b1 & 3) + 1,
        properties: Properties::EMPTY,
        filters: List::new(&filters),
    };
    encode(&Packet::Unsubscribe(unsubscribe), version)
}

fn gen_publish(input: &mut Input<'_>, version: ProtocolVersion) -> Option<Vec<u8>> {
    let (b1, b2, b3) = (input.byte(), input.byte(), input.byte());
    let id = u16::from(b2 & 3) + 1;
    let (qos_pid, dup) = match (b1 >> 3) & 3 {
        0 => (QosPid::AtMostOnce, false),
        1 => (QosPid::AtLeastOnce(id), false),
        2 => (QosPid::ExactlyOnce(id), false),
        _ => (QosPid::ExactlyOnce(id), true),
    };
    let mut topic = TOPICS[usize::from(b1 & 7)];
    let mut props = Vec::new();
    if version.is_v5() {
        match b1 >> 6 {
            0 => {}
            1 => props.push(Property::TopicAlias(1)),
            2 => {
                topic = "";
                props.push(Property::TopicAlias(1));
            }
            _ => props.push(Property::TopicAlias(11)),
        }
        if b3 & 1 != 0 {
            props.push(Property::MessageExpiryInterval(0));
        } else if b3 & 2 != 0 {
            props.push(Property::MessageExpiryInterval(3600));
        }
        if b3 & 4 != 0 {
            props.push(Property::PayloadFormatIndicator(true));
        }
        if b3 & 0x10 != 0 {
            props.push(Property::UserProperty("k", "v"));
        }
        if b3 & 0x20 != 0 {
            props.push(Property::ContentType("text/plain"));
        }
        if b3 & 0x40 != 0 {
            props.push(Property::ResponseTopic("r/1"));
        }
        if b3 & 0x80 != 0 {
            props.push(Property::SubscriptionIdentifier(1)); // only servers send these
        }
    }
    let len = PAYLOAD_LENS[usize::from((b2 >> 2) & 7)];
    let payload = if b3 & 8 != 0 {
        &NOT_UTF8[..len]
    } else {
        &TEXT[..len]
    };
    let publish = Publish {
        dup,
        qos_pid,
        retain: b1 & 0x20 != 0,
        topic,
        properties: List::new(&props),
        payload,
    };
    encode(&Packet::Publish(publish), version)
}

fn gen_ack(input: &mut Input<'_>, version: ProtocolVersion) -> Option<Vec<u8>> {
    let b1 = input.byte();
    let mut ack = Ack::new(u16::from((b1 >> 2) & 7) + 1);
    let error = b1 & 0x20 != 0 && version.is_v5();
    let packet = match b1 & 3 {
        0 => {
            if error {
                ack.reason = ReasonCode::UnspecifiedError;
            }
            Packet::Puback(ack)
        }
        1 => {
            if error {
                ack.reason = ReasonCode::UnspecifiedError;
            }
            Packet::Pubrec(ack)
        }
        2 => {
            if error {
                ack.reason = ReasonCode::PacketIdentifierNotFound;
            }
            Packet::Pubrel(ack)
        }
        _ => {
            if error {
                ack.reason = ReasonCode::PacketIdentifierNotFound;
            }
            Packet::Pubcomp(ack)
        }
    };
    encode(&packet, version)
}

fn gen_disconnect(input: &mut Input<'_>, version: ProtocolVersion) -> Option<Vec<u8>> {
    let b1 = input.byte();
    let reason = [
        ReasonCode::Success,
        ReasonCode::DisconnectWithWillMessage,
        ReasonCode::UnspecifiedError,
        ReasonCode::Success,
    ][usize::from(b1 & 3)];
    let props = match (b1 >> 2) & 3 {
        0 => vec![],
        1 => vec![Property::SessionExpiryInterval(0)],
        2 => vec![Property::SessionExpiryInterval(30)],
        _ => vec![Property::SessionExpiryInterval(u32::MAX)],
    };
    let disconnect = Disconnect {
        reason,
        properties: if version.is_v5() {
            List::new(&props)
        } else {
            Properties::EMPTY
        },
    };
    encode(&Packet::Disconnect(disconnect), version)
}

fn gen_auth(input: &mut Input<'_>, version: ProtocolVersion) -> Option<Vec<u8>> {
    let b1 = input.byte();
    let reason = [
        ReasonCode::ContinueAuthentication,
        ReasonCode::ReAuthenticate,
        ReasonCode::Success,
        ReasonCode::ContinueAuthentication,
    ][usize::from(b1 & 3)];
    let mut props = Vec::new();
    match (b1 >> 2) & 3 {
        0 | 1 => props.push(Property::AuthenticationMethod("nonce")),
        2 => props.push(Property::AuthenticationMethod("bad")),
        _ => {}
    }
    if !props.is_empty() {
        match (b1 >> 4) & 3 {
            0 | 1 => props.push(Property::AuthenticationData(b"n1-ok")),
            2 => props.push(Property::AuthenticationData(b"nope")),
            _ => {}
        }
    }
    let auth = Auth {
        reason,
        properties: List::new(&props),
    };
    encode(&Packet::Auth(auth), version)
}

fn run(data: &[u8]) {
    let mut input = Input { data };
    let mut h = Harness::new(input.byte());
    while !input.data.is_empty() {
        let b0 = input.byte();
        let i = usize::from(b0 >> 4) % SLOTS;
        if trace() {
            eprintln!("step {b0:#04x}: slot {i}, kind {}", b0 & 0x0f);
        }
        let version = h.clients[i].client_version();
        let generated = match b0 & 0x0f {
            0 => {
                let n = usize::from(input.byte());
                let bytes = input.take(n);
                h.feed(i, bytes);
                None
            }
            1 => {
                let (v, bytes) = gen_connect(&mut input);
                h.clients[i].gen_version = Some(v);
                bytes
            }
            2 => gen_subscribe(&mut input, version),
            3 => gen_unsubscribe(&mut input, version),
            4 => gen_publish(&mut input, version),
            5 => gen_ack(&mut input, version),
            6 => encode(&Packet::Pingreq, version),
            7 => gen_disconnect(&mut input, version),
            8 => gen_auth(&mut input, version),
            9 => {
                h.send_queued(i);
                None
            }
            10 => {
                h.flush(i);
                None
            }
            11 => {
                let b1 = input.byte();
                let closing = match b1 & 7 {
                    0 | 5 => Closing::ConnectionLost,
                    1 => h.clients[i].conn.idle_closing(),
                    2 => Closing::SocketError(std::io::Error::other("fuzz")),
                    3 => Closing::ShuttingDown,
                    _ if h.clients[i].conn.signal.take().contains(Raised::TakenOver) => {
                        Closing::TakenOver
                    }
                    _ => Closing::ConnectionLost,
                };
                h.close(i, closing, b1 >> 3);
                None
            }
            12 => {
                h.serve(i);
                None
            }
            13 => {
                let b1 = input.byte();
                h.tick(b1);
                None
            }
            14 => {
                // The password file was reloaded: the server checks the connected client's
                // password again; bit 0 says whether it still matches.
                let b1 = input.byte();
                if let Some(check) = h.clients[i].conn.recheck_password()
                    && let Err(closing) = h.password_checked(i, check, b1 & 1 == 0)
                {
                    h.close(i, closing, 0);
                }
                None
            }
            _ => {
                // A round of every connection's event loop, and every client reads.
                for j in 0..SLOTS {
                    h.serve(j);
                    h.flush(j);
                }
                None
            }
        };
        if let Some(bytes) = generated {
            h.feed(i, &bytes);
        }
    }
    h.finish();
}

fuzz_target!(|data: &[u8]| run(data));
