//! The gateway's CoAP side without I/O: fed datagrams, broker events and the time, it
//! returns datagrams to send and commands for the broker connections. The tokio shell in
//! [`crate::server`] only moves bytes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use coap_lite::{CoapOption, MessageClass, MessageType, Packet};

use crate::block::{self, Block, Representations, UploadError, Uploads};
use crate::broker::{Command, Event, Failure, Message, OpId, Outcome};
use crate::content_format;
use crate::dedup::{Dedup, EXCHANGE_LIFETIME, NON_LIFETIME, Seen};
use crate::observe::{ClientKey, Observer, ObserverId, Observers, Queued};
use crate::query::{self, Credentials};
use crate::topic;
use tracing::debug;

/// Response codes (RFC 7252 §12.1.2), as the byte on the wire.
pub mod code {
    pub const CHANGED: u8 = 0x44;
    pub const CONTENT: u8 = 0x45;
    pub const CONTINUE: u8 = 0x5f;
    pub const BAD_REQUEST: u8 = 0x80;
    pub const UNAUTHORIZED: u8 = 0x81;
    pub const BAD_OPTION: u8 = 0x82;
    pub const FORBIDDEN: u8 = 0x83;
    pub const NOT_FOUND: u8 = 0x84;
    pub const METHOD_NOT_ALLOWED: u8 = 0x85;
    pub const NOT_ACCEPTABLE: u8 = 0x86;
    pub const REQUEST_ENTITY_INCOMPLETE: u8 = 0x88;
    pub const REQUEST_ENTITY_TOO_LARGE: u8 = 0x8d;
    pub const BAD_GATEWAY: u8 = 0xa2;
    pub const SERVICE_UNAVAILABLE: u8 = 0xa3;
    pub const GATEWAY_TIMEOUT: u8 = 0xa4;
    pub const PROXYING_NOT_SUPPORTED: u8 = 0xa5;
}

// Option numbers coap-lite has no name for.
const REQUEST_TAG: u16 = 292;
/// Options the gateway understands. Critical ones not listed (odd numbers: If-Match,
/// If-None-Match, OSCORE, anything unknown) are answered with 4.02 (RFC 7252 §5.4.1).
const KNOWN_OPTIONS: &[u16] = &[
    3,
    4,
    6,
    7,
    11,
    12,
    15,
    17,
    23,
    27,
    28,
    35,
    39,
    60,
    REQUEST_TAG,
];

/// How long a 5.03 tells the device to wait before trying again (Max-Age, seconds).
const RETRY_AFTER_SECS: u32 = 5;

/// How long a request waits for the broker before it is answered 5.04: well within the
/// 45 s over which a device retransmits a CON (MAX_TRANSMIT_SPAN, RFC 7252 §4.8.2).
const BROKER_TIMEOUT: Duration = Duration::from_secs(30);

/// Bounds on what the gateway keeps per device and in total.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Observe relations in total; past this, GET with Observe is answered without it
    /// (RFC 7641 §4.1).
    pub max_observers: usize,
    /// Requests waiting for the broker; past this, 5.03.
    pub max_pending: usize,
    /// Largest request body (one datagram or a Block1 upload): larger is 4.13.
    pub max_body: usize,
    /// Block1 uploads being reassembled at once; the oldest is dropped past this.
    pub max_uploads: usize,
    /// Largest block the gateway sends (16..=1024).
    pub block_size: usize,
    /// Confirmable notifications queued per client behind the one in flight.
    pub notify_queue: usize,
    /// Remembered (peer, Message ID) pairs for de-duplication.
    pub dedup_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_observers: 20_000,
            max_pending: 4096,
            max_body: 64 * 1024,
            max_uploads: 256,
            block_size: 1024,
            notify_queue: 8,
            dedup_entries: 50_000,
        }
    }
}

/// Something the shell must do.
#[derive(Debug, PartialEq, Eq)]
pub enum Effect {
    Send {
        to: SocketAddr,
        bytes: Vec<u8>,
    },
    Broker {
        session: Credentials,
        command: Command,
    },
}

/// A request being answered: what the response needs from it.
#[derive(Debug, Clone)]
struct Exchange {
    peer: SocketAddr,
    mid: u16,
    token: Vec<u8>,
    confirmable: bool,
    /// Uri-Path joined with `/` (the key for Block2 follow-ups).
    path: String,
    /// The Block2 the client asked for, if any.
    block2: Option<Block>,
    /// The last Block1 of an upload, echoed in the final response (RFC 7959 §2.3).
    block1: Option<Block>,
    accept: Option<u16>,
    received: Instant,
}

#[derive(Debug)]
enum Waiting {
    Publish,
    Read,
    Observe(ObserverId),
}

#[derive(Debug)]
struct Response {
    code: u8,
    options: Vec<(u16, Vec<u8>)>,
    payload: Vec<u8>,
}

impl Response {
    fn new(code: u8) -> Self {
        Self {
            code,
            options: Vec::new(),
            payload: Vec::new(),
        }
    }

    /// An error with a diagnostic payload (RFC 7252 §5.5.2).
    fn error(code: u8, why: impl std::fmt::Display) -> Self {
        Self {
            payload: why.to_string().into_bytes(),
            ..Self::new(code)
        }
    }

    fn option(mut self, number: u16, value: Vec<u8>) -> Self {
        self.options.push((number, value));
        self
    }
}

fn failure_response(failure: Failure) -> Response {
    match failure {
        Failure::BadCredentials => Response::error(code::UNAUTHORIZED, "bad credentials"),
        Failure::NotAuthorized => Response::error(code::FORBIDDEN, "not authorized"),
        Failure::Unreachable => Response::error(code::SERVICE_UNAVAILABLE, "broker unreachable")
            .option(14, uint(RETRY_AFTER_SECS)),
        Failure::TopicInvalid => Response::error(code::BAD_REQUEST, "topic refused by broker"),
        Failure::TooLarge => {
            Response::error(code::REQUEST_ENTITY_TOO_LARGE, "too large for broker")
        }
        Failure::Refused => Response::error(code::BAD_GATEWAY, "refused by broker"),
    }
}

/// An unsigned integer option value in as few bytes as possible (RFC 7252 §3.2).
pub fn uint(value: u32) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    bytes[skip..].to_vec()
}

fn read_uint(value: &[u8]) -> Option<u32> {
    (value.len() <= 4).then(|| value.iter().fold(0u32, |acc, b| acc << 8 | u32::from(*b)))
}

fn first_option(packet: &Packet, number: u16) -> Option<&Vec<u8>> {
    packet.get_first_option(CoapOption::from(number))
}

fn options(packet: &Packet, number: u16) -> Vec<Vec<u8>> {
    packet
        .get_option(CoapOption::from(number))
        .map(|list| list.iter().cloned().collect())
        .unwrap_or_default()
}

/// The RFC 6690 description of what the gateway serves.
const WELL_KNOWN_CORE: &str = "</ps>;rt=\"core.ps\";ct=0;obs,</.well-known/core>;ct=40";

#[derive(Debug)]
pub struct Engine {
    limits: Limits,
    szx: u8,
    dedup: Dedup,
    uploads: Uploads,
    representations: Representations,
    observers: Observers,
    waiting: HashMap<OpId, (Exchange, Waiting)>,
    next_op: OpId,
    next_mid: u16,
    next_etag: u32,
    effects: Vec<Effect>,
}

impl Engine {
    pub fn new(limits: Limits) -> Self {
        let random = getrandom::u32().unwrap_or(0);
        Self {
            szx: block::szx_for(limits.block_size),
            dedup: Dedup::new(limits.dedup_entries),
            uploads: Uploads::new(limits.max_uploads, limits.max_body, EXCHANGE_LIFETIME),
            representations: Representations::new(
                limits.max_observers.max(1024),
                Duration::from_secs(60),
            ),
            observers: Observers::new(limits.notify_queue),
            waiting: HashMap::new(),
            next_op: 0,
            next_mid: random as u16,
            next_etag: random >> 16,
            effects: Vec::new(),
            limits,
        }
    }

    /// What to do now; empties the list.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    pub fn observer_count(&self) -> usize {
        self.observers.len()
    }

    pub fn waiting_count(&self) -> usize {
        self.waiting.len()
    }

    fn mid(&mut self) -> u16 {
        self.next_mid = self.next_mid.wrapping_add(1);
        self.next_mid
    }

    fn send(&mut self, to: SocketAddr, bytes: Vec<u8>) {
        self.effects.push(Effect::Send { to, bytes });
    }

    fn broker(&mut self, session: Credentials, command: Command) {
        self.effects.push(Effect::Broker { session, command });
    }

    /// An RST for a message the gateway cannot or will not process (RFC 7252 §4.2, §4.3).
    fn reset(&mut self, to: SocketAddr, mid: u16) {
        let mut bytes = vec![0x70, 0, 0, 0];
        bytes[2..4].copy_from_slice(&mid.to_be_bytes());
        self.send(to, bytes);
    }

    /// One datagram from `peer`.
    pub fn on_datagram(&mut self, peer: SocketAddr, bytes: &[u8], now: Instant) {
        // Too short for a header, or another protocol version: silently ignored.
        if bytes.len() < 4 || bytes[0] >> 6 != 1 {
            return;
        }
        let confirmable = (bytes[0] >> 4) & 3 == 0;
        let mid = u16::from_be_bytes([bytes[2], bytes[3]]);
        let Ok(packet) = Packet::from_bytes(bytes) else {
            // A message format error: rejected if confirmable, else ignored.
            if confirmable {
                self.reset(peer, mid);
            }
            return;
        };
        match (packet.header.get_type(), packet.header.code) {
            (kind, MessageClass::Empty) => {
                if bytes.len() > 4 {
                    // Empty messages carry nothing: a format error.
                    if confirmable {
                        self.reset(peer, mid);
                    }
                    return;
                }
                match kind {
                    // A CoAP ping.
                    MessageType::Confirmable => self.reset(peer, mid),
                    MessageType::Acknowledgement => self.on_ack(peer, mid, now),
                    MessageType::Reset => {
                        if let Some(id) = self.observers.on_rst(peer, mid) {
                            self.end_relation(id, "RST");
                        }
                    }
                    MessageType::NonConfirmable => {}
                }
            }
            (MessageType::Confirmable | MessageType::NonConfirmable, class) => {
                let request = match class {
                    MessageClass::Request(_) => true,
                    MessageClass::Reserved(c) => c >> 5 == 0,
                    _ => false,
                };
                if request {
                    self.on_request(peer, packet, now);
                } else if confirmable {
                    // A response to nothing the gateway asked.
                    self.reset(peer, mid);
                }
            }
            // ACKs and RSTs with a code: the gateway sends no requests to be answered.
            _ => {}
        }
    }

    fn on_ack(&mut self, peer: SocketAddr, mid: u16, now: Instant) {
        let sent = self
            .observers
            .on_ack(peer, mid, &mut self.next_mid, jitter(), now);
        if let Some((to, bytes)) = sent {
            self.send(to, bytes);
        }
    }

    fn on_request(&mut self, peer: SocketAddr, packet: Packet, now: Instant) {
        let confirmable = packet.header.get_type() == MessageType::Confirmable;
        let mid = packet.header.message_id;
        let lifetime = if confirmable {
            EXCHANGE_LIFETIME
        } else {
            NON_LIFETIME
        };
        match self.dedup.check(peer, mid, lifetime, now) {
            Seen::New => {}
            Seen::InProgress | Seen::Answered(None) => return,
            Seen::Answered(Some(bytes)) => {
                self.send(peer, bytes);
                return;
            }
        }
        // Any request naming a client id tells where that client is now (NAT rebinding).
        if let Ok(query) = query::parse(&options(&packet, 15))
            && let Some(id) = query.credentials.client_id
        {
            self.observers.touch(&ClientKey::Id(id), peer);
        }
        let path_segments = options(&packet, 11);
        let mut exchange = Exchange {
            peer,
            mid,
            token: packet.get_token().to_vec(),
            confirmable,
            path: path_segments
                .iter()
                .map(|s| String::from_utf8_lossy(s))
                .collect::<Vec<_>>()
                .join("/"),
            block2: None,
            block1: None,
            accept: None,
            received: now,
        };
        if let Some(response) = self.handle(&mut exchange, &packet, &path_segments, now) {
            self.respond(&exchange, response);
        }
    }

    /// Answers at once (`Some`) or leaves the request waiting for the broker (`None`).
    fn handle(
        &mut self,
        exchange: &mut Exchange,
        packet: &Packet,
        path: &[Vec<u8>],
        now: Instant,
    ) -> Option<Response> {
        if let Some((number, _)) = packet
            .options()
            .find(|(n, _)| *n & 1 == 1 && !KNOWN_OPTIONS.contains(n))
        {
            return Some(Response::error(
                code::BAD_OPTION,
                format_args!("unsupported critical option {number}"),
            ));
        }
        if first_option(packet, 35).is_some() || first_option(packet, 39).is_some() {
            return Some(Response::error(
                code::PROXYING_NOT_SUPPORTED,
                "this is not a proxy",
            ));
        }
        match first_option(packet, 23).map(|v| Block::decode(v)) {
            Some(None) => return Some(Response::error(code::BAD_REQUEST, "bad Block2")),
            Some(Some(b)) => exchange.block2 = Some(b),
            None => {}
        }
        match first_option(packet, 17).map(|v| read_uint(v)) {
            Some(None) => return Some(Response::error(code::BAD_REQUEST, "bad Accept")),
            Some(Some(f)) => exchange.accept = u16::try_from(f).ok(),
            None => {}
        }
        let method = packet.header.code;
        match path {
            [w, c] if w == b".well-known" && c == b"core" => {
                if method != MessageClass::Request(coap_lite::RequestType::Get) {
                    return Some(Response::error(code::METHOD_NOT_ALLOWED, "GET only"));
                }
                if exchange.accept.is_some_and(|a| a != 40) {
                    return Some(Response::error(code::NOT_ACCEPTABLE, "link-format only"));
                }
                let mut response = Response::new(code::CONTENT).option(12, uint(40));
                response.payload = WELL_KNOWN_CORE.as_bytes().to_vec();
                Some(response)
            }
            [ps, rest @ ..] if ps == b"ps" => {
                use coap_lite::RequestType::{Get, Post, Put};
                match method {
                    MessageClass::Request(Post | Put) => self.publish(exchange, packet, rest, now),
                    MessageClass::Request(Get) => self.get(exchange, packet, rest, now),
                    _ => Some(Response::error(
                        code::METHOD_NOT_ALLOWED,
                        "GET, POST or PUT",
                    )),
                }
            }
            _ => Some(Response::error(code::NOT_FOUND, "no such resource")),
        }
    }

    fn publish(
        &mut self,
        exchange: &mut Exchange,
        packet: &Packet,
        path: &[Vec<u8>],
        now: Instant,
    ) -> Option<Response> {
        let query_options = options(packet, 15);
        let query = match query::parse(&query_options) {
            Ok(q) => q,
            Err(e) => return Some(Response::error(code::BAD_REQUEST, e)),
        };
        let topic = match topic::topic_name(path) {
            Ok(t) => t,
            Err(e) => return Some(Response::error(code::BAD_REQUEST, e)),
        };
        let content_type = match first_option(packet, 12).map(|v| read_uint(v)) {
            Some(None) => return Some(Response::error(code::BAD_REQUEST, "bad Content-Format")),
            Some(Some(f)) => u16::try_from(f)
                .ok()
                .and_then(content_format::to_content_type)
                .map(str::to_owned),
            None => None,
        };
        let max = self.limits.max_body;
        let too_large = || {
            Response::error(code::REQUEST_ENTITY_TOO_LARGE, "body too large")
                .option(60, uint(max as u32))
        };
        if first_option(packet, 60)
            .and_then(|v| read_uint(v))
            .is_some_and(|size| size as usize > max)
        {
            return Some(too_large());
        }
        let payload = match first_option(packet, 27).map(|v| Block::decode(v)) {
            Some(None) => return Some(Response::error(code::BAD_REQUEST, "bad Block1")),
            Some(Some(block)) => {
                let key = (
                    exchange.peer,
                    format!(
                        "{}?{}",
                        exchange.path,
                        query_options.join(&b'&').escape_ascii()
                    ),
                    first_option(packet, REQUEST_TAG)
                        .cloned()
                        .unwrap_or_default(),
                );
                match self.uploads.add(key, block, &packet.payload, now) {
                    Ok(None) => {
                        return Some(Response::new(code::CONTINUE).option(27, block.encode()));
                    }
                    Ok(Some(body)) => {
                        exchange.block1 = Some(block);
                        body
                    }
                    Err(UploadError::TooLarge) => return Some(too_large()),
                    Err(UploadError::Incomplete) => {
                        return Some(Response::error(
                            code::REQUEST_ENTITY_INCOMPLETE,
                            "blocks missing",
                        ));
                    }
                    Err(UploadError::BadBlockSize) => {
                        return Some(Response::error(code::BAD_REQUEST, "block of wrong size"));
                    }
                }
            }
            None if packet.payload.len() > max => return Some(too_large()),
            None => packet.payload.clone(),
        };
        let qos = query.qos.unwrap_or(u8::from(exchange.confirmable));
        let command = |op| Command::Publish {
            op,
            topic,
            payload,
            qos,
            retain: query.retain.unwrap_or(false),
            content_type,
        };
        self.wait(exchange, Waiting::Publish, query.credentials, command)
    }

    /// Starts a broker operation for `exchange`, unless too many are waiting already.
    fn wait(
        &mut self,
        exchange: &Exchange,
        waiting: Waiting,
        session: Credentials,
        command: impl FnOnce(OpId) -> Command,
    ) -> Option<Response> {
        if self.waiting.len() >= self.limits.max_pending {
            return Some(
                Response::error(code::SERVICE_UNAVAILABLE, "too many requests waiting")
                    .option(14, uint(RETRY_AFTER_SECS)),
            );
        }
        self.next_op += 1;
        let op = self.next_op;
        self.waiting.insert(op, (exchange.clone(), waiting));
        self.broker(session, command(op));
        None
    }

    fn get(
        &mut self,
        exchange: &mut Exchange,
        packet: &Packet,
        path: &[Vec<u8>],
        now: Instant,
    ) -> Option<Response> {
        // A follow-up for block 1, 2, … of something already sent block-wise.
        if let Some(block) = exchange.block2.filter(|b| b.num > 0) {
            let key = (exchange.peer, exchange.path.clone());
            if let Some(rep) = self.representations.get(&key, now).cloned() {
                return Some(self.content(
                    exchange,
                    rep.body,
                    rep.content_format,
                    Some(rep.etag),
                    block,
                    now,
                ));
            }
        }
        let query = match query::parse(&options(packet, 15)) {
            Ok(q) => q,
            Err(e) => return Some(Response::error(code::BAD_REQUEST, e)),
        };
        let filter = match topic::topic_filter(path) {
            Ok(f) => f,
            Err(e) => return Some(Response::error(code::BAD_REQUEST, e)),
        };
        let client = match &query.credentials.client_id {
            Some(id) => ClientKey::Id(id.clone()),
            None => ClientKey::Peer(exchange.peer),
        };
        let observe = match packet.get_observe_value() {
            Some(Ok(0)) => Some(true),
            Some(Ok(1)) => Some(false),
            _ => None,
        };
        // A new registration with a token in use replaces the old relation, and
        // Observe: 1 ends it (RFC 7641 §3.3, §3.6).
        if observe.is_some()
            && let Some(old) = self.observers.find(&client, &exchange.token)
        {
            self.end_relation(old, "Observe with its token");
        }
        if observe == Some(true) && self.observers.len() < self.limits.max_observers {
            let szx = exchange.block2.map_or(self.szx, |b| b.szx.min(self.szx));
            let observer = Observer::new(
                client,
                exchange.token.clone(),
                filter.clone(),
                exchange.path.clone(),
                query.credentials.clone(),
                szx,
            );
            let id = self.observers.insert(observer, exchange.peer);
            let response = self.wait(exchange, Waiting::Observe(id), query.credentials, |op| {
                Command::Subscribe { op, filter }
            });
            if response.is_some() {
                self.observers.remove(id);
            }
            return response;
        }
        if topic::has_wildcard(&filter) {
            if observe == Some(false) {
                // The relation is over; there is no single value to return.
                return Some(Response::new(code::CONTENT));
            }
            return Some(Response::error(code::BAD_REQUEST, "wildcards need Observe"));
        }
        self.wait(exchange, Waiting::Read, query.credentials, |op| {
            Command::Read { op, topic: filter }
        })
    }

    /// A 2.05 with `body`, sliced to the requested block (RFC 7959 §2.4) when it does not
    /// fit in one; the whole body is then kept for the follow-up requests.
    fn content(
        &mut self,
        exchange: &Exchange,
        body: Vec<u8>,
        content_format: Option<u16>,
        etag: Option<Vec<u8>>,
        block: Block,
        now: Instant,
    ) -> Response {
        if exchange
            .accept
            .is_some_and(|a| content_format.is_some_and(|f| f != a))
        {
            return Response::error(code::NOT_ACCEPTABLE, "stored in another Content-Format");
        }
        let mut response = Response::new(code::CONTENT);
        if let Some(f) = content_format {
            response = response.option(12, uint(f.into()));
        }
        let szx = block.szx.min(self.szx);
        if body.len() <= block.size().min(1 << (self.szx + 4)) && block.num == 0 {
            if exchange.block2.is_some() {
                response = response.option(
                    23,
                    Block {
                        num: 0,
                        more: false,
                        szx,
                    }
                    .encode(),
                );
            }
            response.payload = body;
            return response;
        }
        // The client may ask for a smaller block than it was sent; block numbers count in
        // its size.
        let num = if block.szx > szx {
            block.num << (block.szx - szx)
        } else {
            block.num
        };
        let Some((chunk, more)) = block::slice(&body, num, szx) else {
            return Response::error(code::BAD_OPTION, "no such block");
        };
        let chunk = chunk.to_vec();
        let etag = etag.unwrap_or_else(|| {
            self.next_etag = self.next_etag.wrapping_add(1);
            self.next_etag.to_be_bytes().to_vec()
        });
        response = response
            .option(4, etag.clone())
            .option(23, Block { num, more, szx }.encode())
            .option(28, uint(body.len() as u32));
        response.payload = chunk;
        if num == 0 {
            self.representations.store(
                (exchange.peer, exchange.path.clone()),
                body,
                content_format,
                etag,
                now,
            );
        }
        response
    }

    /// Sends `response` to the request of `exchange`: piggybacked on the ACK of a CON, as
    /// a NON for a NON (RFC 7252 §5.2), and remembered for duplicates.
    fn respond(&mut self, exchange: &Exchange, mut response: Response) {
        if let Some(block1) = exchange.block1
            && response.code == code::CHANGED
        {
            response = response.option(27, block1.encode());
        }
        let (kind, mid) = if exchange.confirmable {
            (MessageType::Acknowledgement, exchange.mid)
        } else {
            (MessageType::NonConfirmable, self.mid())
        };
        let bytes = encode(kind, mid, &exchange.token, response);
        self.dedup
            .answer(exchange.peer, exchange.mid, Some(bytes.clone()));
        self.send(exchange.peer, bytes);
    }

    /// An event from a broker connection.
    pub fn on_broker(&mut self, event: Event, now: Instant) {
        match event {
            Event::Done { op, outcome } => self.on_done(op, outcome, now),
            Event::Message { session, message } => self.on_message(&session, &message, now),
            Event::LinkDown { session } => {
                // The connection's subscriptions died with it: end the relations with 5.03
                // so the devices register again (RFC 7641 §3.2). Registrations still
                // waiting get their own answer from whichever connection has their request.
                for id in self.observers.of_session(&session) {
                    let Some(observer) = self.observers.get(id).filter(|o| o.established) else {
                        continue;
                    };
                    let to = self.observers.address(&observer.client);
                    let token = observer.token.clone();
                    self.observers.remove(id);
                    if let Some(to) = to {
                        let mid = self.mid();
                        let response = failure_response(Failure::Unreachable);
                        self.send(
                            to,
                            encode(MessageType::NonConfirmable, mid, &token, response),
                        );
                    }
                }
            }
            Event::Idle { .. } => {}
        }
    }

    fn on_done(&mut self, op: OpId, outcome: Outcome, now: Instant) {
        let Some((exchange, waiting)) = self.waiting.remove(&op) else {
            return;
        };
        let response = match outcome {
            Outcome::Failed(failure) => {
                if let Waiting::Observe(id) = waiting {
                    // The connection dropped the refused subscription itself.
                    self.observers.remove(id);
                }
                failure_response(failure)
            }
            Outcome::Published => Response::new(code::CHANGED),
            Outcome::Subscribed { retained } => match waiting {
                Waiting::Observe(id) if self.observers.get(id).is_some() => {
                    self.establish(&exchange, id, retained, now);
                    return;
                }
                // A read, or a registration cancelled while it waited: the current value.
                _ => match retained.into_iter().next() {
                    Some(m) => self.message_content(&exchange, m, now),
                    None => Response::error(code::NOT_FOUND, "no retained message"),
                },
            },
        };
        self.respond(&exchange, response);
    }

    fn message_content(&mut self, exchange: &Exchange, message: Message, now: Instant) -> Response {
        let format = message
            .content_type
            .as_deref()
            .and_then(content_format::to_content_format);
        let block = exchange.block2.unwrap_or(Block {
            num: 0,
            more: false,
            szx: self.szx,
        });
        self.content(exchange, message.payload, format, None, block, now)
    }

    /// The first response of a relation carries the retained value, if any (RFC 7641
    /// §3.2); more retained values and messages that came meanwhile follow as
    /// notifications.
    fn establish(
        &mut self,
        exchange: &Exchange,
        id: ObserverId,
        retained: Vec<Message>,
        now: Instant,
    ) {
        let mut retained = retained.into_iter();
        let mut response = match retained.next() {
            Some(m) => self.message_content(exchange, m, now),
            None => Response::new(code::CONTENT),
        };
        if response.code != code::CONTENT {
            self.end_relation(id, "no first response");
            self.respond(exchange, response);
            return;
        }
        let Some(observer) = self.observers.get_mut(id) else {
            return;
        };
        response = response.option(6, uint(observer.next_seq()));
        observer.established = true;
        debug!(
            "observe relation on {} of {:?} started",
            observer.filter, observer.client
        );
        let early = std::mem::take(&mut observer.early);
        self.respond(exchange, response);
        for message in retained.chain(early) {
            self.notify(id, &message, now);
        }
    }

    fn on_message(&mut self, session: &Credentials, message: &Message, now: Instant) {
        // Retained messages flagged as such were sent for some new subscription; the
        // relations that exist already have seen them.
        if message.retain {
            return;
        }
        for id in self.observers.matching(session, &message.topic) {
            let Some(observer) = self.observers.get_mut(id) else {
                continue;
            };
            if observer.established {
                self.notify(id, message, now);
            } else if observer.early.len() < self.limits.notify_queue {
                observer.early.push(message.clone());
            }
        }
    }

    /// Sends one notification: NON for QoS 0, CON otherwise (one in flight per client).
    /// On a wildcard relation, Location-Path options name the concrete resource,
    /// `/ps/{topic}`, so the device learns the topic.
    fn notify(&mut self, id: ObserverId, message: &Message, now: Instant) {
        let Some(observer) = self.observers.get_mut(id) else {
            return;
        };
        let seq = observer.next_seq();
        let token = observer.token.clone();
        let szx = observer.szx;
        let key = (observer.client.clone(), observer.path.clone());
        let wildcard = topic::has_wildcard(&observer.filter);
        let Some(to) = self.observers.address(&key.0) else {
            return;
        };
        let mut response = Response::new(code::CONTENT).option(6, uint(seq));
        let format = message
            .content_type
            .as_deref()
            .and_then(content_format::to_content_format);
        if let Some(f) = format {
            response = response.option(12, uint(f.into()));
        }
        if wildcard {
            for level in std::iter::once("ps").chain(message.topic.split('/')) {
                response = response.option(8, level.as_bytes().to_vec());
            }
        }
        let block = Block {
            num: 0,
            more: true,
            szx,
        };
        if message.payload.len() > block.size() {
            self.next_etag = self.next_etag.wrapping_add(1);
            let etag = self.next_etag.to_be_bytes().to_vec();
            response = response
                .option(4, etag.clone())
                .option(23, block.encode())
                .option(28, uint(message.payload.len() as u32));
            response.payload = message.payload[..block.size()].to_vec();
            self.representations
                .store((to, key.1), message.payload.clone(), format, etag, now);
        } else {
            response.payload = message.payload.clone();
        }
        if message.qos == 0 {
            let mid = self.mid();
            self.observers.sent_non(id, to, mid);
            self.send(
                to,
                encode(MessageType::NonConfirmable, mid, &token, response),
            );
            return;
        }
        let queued = Queued {
            observer: id,
            bytes: encode(MessageType::Confirmable, 0, &token, response),
        };
        let sent = self
            .observers
            .send_con(queued, &mut self.next_mid, jitter(), now);
        if let Some((to, bytes)) = sent {
            self.send(to, bytes);
        }
    }

    /// Ends a relation, releasing its broker subscription.
    fn end_relation(&mut self, id: ObserverId, why: &str) {
        if let Some(observer) = self.observers.remove(id) {
            debug!(
                "observe relation on {} of {:?} ended: {why}",
                observer.filter, observer.client
            );
            self.broker(
                observer.session,
                Command::Unsubscribe {
                    filter: observer.filter,
                },
            );
        }
    }

    /// Retransmissions and expiry; call every 100 ms or so.
    pub fn on_tick(&mut self, now: Instant) {
        let (resend, exhausted) = self.observers.on_tick(now);
        for (to, bytes) in resend {
            self.send(to, bytes);
        }
        for id in exhausted {
            self.end_relation(id, "notification not acknowledged");
        }
        self.time_out_waiting(now);
        self.dedup.expire(now);
        self.uploads.expire(now);
        self.representations.expire(now);
    }

    /// Answers 5.04 to requests the broker has not answered within BROKER_TIMEOUT; a late
    /// answer finds nothing waiting and is dropped.
    fn time_out_waiting(&mut self, now: Instant) {
        let late: Vec<OpId> = self
            .waiting
            .iter()
            .filter(|(_, (exchange, _))| now >= exchange.received + BROKER_TIMEOUT)
            .map(|(op, _)| *op)
            .collect();
        for op in late {
            let Some((exchange, waiting)) = self.waiting.remove(&op) else {
                continue;
            };
            if let Waiting::Observe(id) = waiting {
                // Releases the subscription the connection will make eventually.
                self.end_relation(id, "broker did not answer");
            }
            self.respond(
                &exchange,
                Response::error(code::GATEWAY_TIMEOUT, "broker did not answer"),
            );
        }
    }
}

/// A number in [0, 1) for the retransmission timeout's random factor.
fn jitter() -> f64 {
    f64::from(getrandom::u32().unwrap_or(0)) / (f64::from(u32::MAX) + 1.0)
}

fn encode(kind: MessageType, mid: u16, token: &[u8], response: Response) -> Vec<u8> {
    let mut packet = Packet::new();
    packet.header.set_version(1);
    packet.header.set_type(kind);
    packet.header.message_id = mid;
    packet.header.code = MessageClass::from(response.code);
    packet.set_token(token.to_vec());
    for (number, value) in response.options {
        packet.add_option(CoapOption::from(number), value);
    }
    packet.payload = response.payload;
    packet
        .to_bytes()
        .expect("responses are sliced into blocks well below the datagram limit")
}

#[cfg(test)]
mod tests;
