//! One client connection's protocol state, without any I/O.
//!
//! The network shell (`server.rs`) feeds it decoded packets and wake-ups and writes out
//! whatever it leaves in [`Connection::out`]; everything MQTT decides happens here, so it
//! can be driven directly in tests. One file per packet family, like Mosquitto's
//! `handle_*.c`: `connect.rs`, `publish.rs`, `subscribe.rs`; `deliver.rs` sends messages
//! to the client.

mod authenticate;
mod connect;
mod deliver;
mod publish;
mod subscribe;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::signal::Signal;
use bytes::BytesMut;
use midge_wire::{
    Ack, Connack, DecodeError, Disconnect, List, Packet, PacketType, Properties, Property,
    ProtocolVersion, ReasonCode,
};
use tracing::{debug, info, warn};

use crate::broker::Broker;
use crate::security::access::{Identity, ListenerAccess};
use crate::session::Session;
use crate::stats::Stats;
use crate::will::Will;

use authenticate::PendingAuth;
pub use connect::PasswordCheck;
use connect::Waiting;
pub use deliver::OUT_HIGH_WATER;

/// Why a connection ends.
#[derive(Debug)]
pub enum Closing {
    /// The client sent DISCONNECT.
    Disconnected {
        keep_will: bool,
    },
    /// The socket closed without DISCONNECT.
    ConnectionLost,
    /// Nothing arrived within 1.5 × the keep-alive.
    KeepAliveTimeout,
    /// No CONNECT arrived within the connect timeout.
    ConnectTimeout,
    /// Another connection with the same client id took the session.
    TakenOver,
    /// A malformed packet or a packet the protocol forbids here.
    ProtocolError {
        reason: ReasonCode,
        detail: String,
    },
    /// CONNECT refused with this reason (already answered by CONNACK).
    Refused(ReasonCode),
    /// A read or write failed.
    SocketError(std::io::Error),
    /// The TLS handshake or a record failed (unknown CA, expired certificate…).
    Tls(rustls::Error),
    ShuttingDown,
}

impl Closing {
    pub fn protocol(reason: ReasonCode, detail: impl Into<String>) -> Self {
        Self::ProtocolError {
            reason,
            detail: detail.into(),
        }
    }

    /// Whether the will is published: on any end but a DISCONNECT asking otherwise.
    fn publishes_will(&self) -> bool {
        match self {
            Self::Disconnected { keep_will } => *keep_will,
            Self::Refused(_) | Self::ShuttingDown => false,
            _ => true,
        }
    }

    /// The reason an MQTT 5 client is told in the server's DISCONNECT, if it gets one.
    fn disconnect_reason(&self) -> Option<ReasonCode> {
        match self {
            // A decode error's code may be one DISCONNECT cannot carry (0x84 for a second
            // CONNECT of an unknown version): that is a protocol error.
            Self::ProtocolError { reason, .. } if reason.is_valid_for(PacketType::Disconnect) => {
                Some(*reason)
            }
            Self::ProtocolError { .. } => Some(ReasonCode::ProtocolError),
            Self::KeepAliveTimeout => Some(ReasonCode::KeepAliveTimeout),
            Self::TakenOver => Some(ReasonCode::SessionTakenOver),
            Self::ShuttingDown => Some(ReasonCode::ServerShuttingDown),
            _ => None,
        }
    }
}

impl fmt::Display for Closing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disconnected { .. } => f.write_str("disconnected"),
            Self::ConnectionLost => f.write_str("closed its connection"),
            Self::KeepAliveTimeout => f.write_str("has exceeded timeout, disconnecting"),
            Self::ConnectTimeout => f.write_str("sent no CONNECT in time, disconnecting"),
            Self::TakenOver => f.write_str("already connected, closing old connection"),
            Self::ProtocolError { detail, .. } => {
                write!(f, "protocol error ({detail}), disconnecting")
            }
            Self::Refused(reason) => write!(f, "refused ({reason:?})"),
            Self::SocketError(e) => write!(f, "socket error ({e}), disconnecting"),
            Self::Tls(e) => write!(f, "TLS error ({e}), disconnecting"),
            Self::ShuttingDown => f.write_str("disconnected: broker shutting down"),
        }
    }
}

/// What a connection knows once CONNECT is accepted.
#[derive(Debug)]
struct Connected {
    session: Arc<Session>,
    version: ProtocolVersion,
    keep_alive: u16,
    /// Boxed, as most clients have none and every connected client holds this struct.
    will: Option<Box<Will>>,
    /// The client's Receive Maximum: QoS 1/2 PUBLISHes it takes unacknowledged.
    receive_maximum: u16,
    /// The client's Maximum Packet Size.
    max_packet_size: u32,
    /// The client's Request Problem Information: Reason Strings on acknowledgements.
    problem_information: bool,
    /// Topic aliases the client set for its PUBLISHes (index = alias − 1).
    aliases_in: Vec<Option<Box<str>>>,
    /// Topic aliases the broker set for PUBLISHes to the client.
    aliases_out: Option<Box<deliver::OutAliases>>,
    /// The enhanced authentication method the client connected with.
    auth_method: Option<Box<str>>,
    /// Who the client authenticated as, for ACL checks.
    identity: Identity,
}

#[derive(Debug)]
pub struct Connection {
    broker: Arc<Broker>,
    id: u64,
    peer: SocketAddr,
    allow_anonymous: bool,
    /// The listener's password and ACL files.
    access: Arc<ListenerAccess>,
    /// Bytes to send; empty (and unallocated) when idle.
    pub out: BytesMut,
    /// Wakes this connection's task (see [`Signal`]).
    pub signal: Arc<Signal>,
    state: Option<Connected>,
    /// An enhanced authentication exchange waiting for the client's AUTH.
    pending_auth: Option<Box<PendingAuth>>,
    /// CONNECT waiting for its password check.
    waiting: Option<Box<Waiting>>,
    /// The user name a TLS client certificate gives, on listeners that take it from
    /// there (`use_identity_as_username`): it replaces CONNECT's, and no password is asked.
    certificate_username: Option<Box<Option<Box<str>>>>,
    /// The password the client authenticated with, to check again on reload.
    credentials: Option<Box<PasswordCheck>>,
}

impl Connection {
    pub fn new(broker: Arc<Broker>, peer: SocketAddr, allow_anonymous: bool) -> Self {
        let id = broker.next_connection_id();
        Self {
            broker,
            id,
            peer,
            allow_anonymous,
            access: Arc::default(),
            out: BytesMut::new(),
            signal: Arc::default(),
            state: None,
            pending_auth: None,
            waiting: None,
            certificate_username: None,
            credentials: None,
        }
    }

    /// Applies the listener's password and ACL files to this connection.
    pub fn with_access(mut self, access: Arc<ListenerAccess>) -> Self {
        self.access = access;
        self
    }

    /// The TLS layer's verdict on the client certificate: the user name it gives, or
    /// `None` for no usable certificate (then CONNECT is refused).
    pub fn set_certificate_username(&mut self, username: Option<String>) {
        self.certificate_username = Some(Box::new(username.map(Box::from)));
    }

    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// The version to decode with: the client's once connected.
    pub fn version(&self) -> ProtocolVersion {
        self.state
            .as_ref()
            .map_or(ProtocolVersion::V5, |c| c.version)
    }

    /// The session, once connected (the shell waits on its wake-ups).
    pub fn session(&self) -> Option<&Arc<Session>> {
        self.state.as_ref().map(|c| &c.session)
    }

    /// How long the connection may stay silent before it is closed.
    pub fn idle_timeout(&self) -> Option<Duration> {
        match &self.state {
            None => Some(self.broker.limits.connect_timeout),
            Some(c) if c.keep_alive == 0 => None,
            // [MQTT-3.1.2-24]: one and a half times the keep-alive.
            Some(c) => Some(Duration::from_millis(u64::from(c.keep_alive) * 1500)),
        }
    }

    /// The reason for closing after the idle timeout expired.
    pub fn idle_closing(&self) -> Closing {
        if self.state.is_some() {
            Closing::KeepAliveTimeout
        } else {
            Closing::ConnectTimeout
        }
    }

    pub fn on_packet(&mut self, packet: Packet<'_>) -> Result<(), Closing> {
        let Some(connected) = &self.state else {
            return match packet {
                Packet::Connect(_) if self.pending_auth.is_some() || self.waiting.is_some() => Err(
                    Closing::protocol(ReasonCode::ProtocolError, "second CONNECT"),
                ),
                Packet::Connect(connect) => self.on_connect(&connect),
                Packet::Auth(auth) if self.pending_auth.is_some() => self.on_auth(&auth),
                other => Err(Closing::protocol(
                    ReasonCode::ProtocolError,
                    format!("first packet {:?} is not CONNECT", other.packet_type()),
                )),
            };
        };
        let session = Arc::clone(&connected.session);
        if session
            .state()
            .owner
            .as_ref()
            .is_none_or(|o| o.connection_id != self.id)
        {
            // Another connection took the session over: nothing more is done for this
            // one, or a late SUBSCRIBE would outlive the session it went into.
            return Err(Closing::TakenOver);
        }
        match packet {
            Packet::Connect(_) => Err(Closing::protocol(
                ReasonCode::ProtocolError,
                "second CONNECT",
            )),
            Packet::Publish(publish) => self.on_publish(&publish),
            Packet::Puback(ack) => {
                session.state().puback(ack.packet_id);
                Ok(())
            }
            Packet::Pubrec(ack) => {
                session.state().pubrec(ack.packet_id);
                // An error reason ends the QoS 2 exchange there [MQTT-4.3.3-4]… but a
                // PUBREL for it is harmless, and 3.1.1 has no reasons: always release.
                self.send(Packet::Pubrel(Ack::new(ack.packet_id)));
                Ok(())
            }
            Packet::Pubrel(ack) => {
                let known = session.state().release_qos2(ack.packet_id);
                let mut reply = Ack::new(ack.packet_id);
                if !known {
                    reply.reason = ReasonCode::PacketIdentifierNotFound;
                }
                self.send(Packet::Pubcomp(reply));
                Ok(())
            }
            Packet::Pubcomp(ack) => {
                session.state().pubcomp(ack.packet_id);
                Ok(())
            }
            Packet::Subscribe(subscribe) => {
                self.on_subscribe(&session, &subscribe);
                Ok(())
            }
            Packet::Unsubscribe(unsubscribe) => {
                self.on_unsubscribe(&session, &unsubscribe);
                Ok(())
            }
            Packet::Pingreq => {
                self.send(Packet::Pingresp);
                Ok(())
            }
            Packet::Disconnect(d) => {
                if let Some(expiry) = d.properties.session_expiry_interval() {
                    let mut state = session.state();
                    if state.expiry_interval == 0 && expiry != 0 {
                        // [MQTT-3.14.2-2]: a session that ends with its connection stays so.
                        return Err(Closing::protocol(
                            ReasonCode::ProtocolError,
                            "session expiry set at DISCONNECT after 0 at CONNECT",
                        ));
                    }
                    state.expiry_interval = expiry;
                }
                Err(Closing::Disconnected {
                    keep_will: d.reason == ReasonCode::DisconnectWithWillMessage,
                })
            }
            Packet::Auth(auth) => self.on_auth(&auth),
            other => Err(Closing::protocol(
                ReasonCode::ProtocolError,
                format!("{:?} is not sent by clients", other.packet_type()),
            )),
        }
    }

    /// A packet that could not be decoded: answers what the protocol asks for, and closes.
    pub fn on_decode_error(&mut self, error: DecodeError) -> Closing {
        if self.state.is_none() && matches!(error, DecodeError::UnsupportedProtocolVersion(_)) {
            // Answer in 3.1.1's form, which every version of client can read.
            let connack = Connack {
                session_present: false,
                reason: ReasonCode::UnsupportedProtocolVersion,
                properties: Properties::EMPTY,
            };
            self.send_in(ProtocolVersion::V3_1_1, Packet::Connack(connack));
        }
        Closing::protocol(error.reason_code(), error.to_string())
    }

    /// Ends the connection: says why to an MQTT 5 client when the server is the one
    /// closing, publishes or schedules the will if due, releases the session, logs.
    pub fn on_close(&mut self, closing: &Closing) {
        let Some(connected) = self.state.take() else {
            match closing {
                // Handshake failures are what an operator needs to see (wrong CA, expired
                // or missing client certificate).
                Closing::Tls(e) => warn!("TLS with {} failed: {e}.", self.peer),
                _ => debug!(
                    "connection from {} closed before CONNECT: {closing}",
                    self.peer
                ),
            }
            return;
        };
        let client = Arc::clone(&connected.session.client_id);
        if let (true, Some(reason)) = (connected.version.is_v5(), closing.disconnect_reason()) {
            // A Reason String may always go in a DISCONNECT [MQTT-3.1.2-29].
            let detail = match closing {
                Closing::ProtocolError { detail, .. } => Some(Property::ReasonString(detail)),
                _ => None,
            };
            let properties: Vec<Property<'_>> = detail.into_iter().collect();
            let with_detail = Packet::Disconnect(Disconnect {
                reason,
                properties: List::new(&properties),
            });
            // The Reason String is left out if it would take the packet over the client's
            // Maximum Packet Size [MQTT-3.14.2-3].
            let disconnect = if fits(&with_detail, &connected) {
                with_detail
            } else {
                Packet::Disconnect(Disconnect::new(reason))
            };
            self.send_in(connected.version, disconnect);
        }
        match closing {
            Closing::Disconnected { .. } => info!("Client {client} disconnected."),
            Closing::ProtocolError { .. } | Closing::SocketError(_) | Closing::Tls(_) => {
                warn!("Client {client} {closing}.")
            }
            _ => info!("Client {client} {closing}."),
        }
        if closing.publishes_will()
            && let Some(will) = connected.will
        {
            self.release_will(&connected.session, closing, *will);
        }
        self.broker.detach(&connected.session, self.id);
        self.broker.stats.client_disconnected();
    }

    /// Publishes the will now, or after its delay if the session outlives the connection.
    fn release_will(&self, session: &Arc<Session>, closing: &Closing, will: Will) {
        let taken_over = matches!(closing, Closing::TakenOver);
        let delay = if taken_over && !self.broker.is_current(session) {
            0 // a clean start replaced the session: it has ended, so the will is due now
        } else {
            will.delay.min(session.state().expiry_interval)
        };
        if delay == 0 {
            debug!(
                "publishing will of {} on {}",
                session.client_id,
                will.topic()
            );
            self.broker.publish(will.into_message(Instant::now()));
        } else if taken_over {
            // The connection that took over resumed the session before the delay ran
            // out: the will is not sent [MQTT-3.1.3-9].
        } else {
            let at = Instant::now() + Duration::from_secs(u64::from(delay));
            self.broker
                .schedule_will(Arc::clone(&session.client_id), at, will);
        }
    }

    fn send(&mut self, packet: Packet<'_>) {
        self.send_in(self.version(), packet);
    }

    fn send_in(&mut self, version: ProtocolVersion, packet: Packet<'_>) {
        encode(&mut self.out, version, &packet, &self.broker.stats);
    }
}

/// Whether `packet` is within the client's Maximum Packet Size.
fn fits(packet: &Packet<'_>, connected: &Connected) -> bool {
    packet
        .encoded_len(connected.version)
        .is_ok_and(|len| len <= connected.max_packet_size as usize)
}

fn encode(out: &mut BytesMut, version: ProtocolVersion, packet: &Packet<'_>, stats: &Stats) {
    match packet.encode_to(version, out) {
        Ok(_) => {
            stats
                .messages_sent
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Err(e) => {
            // Only a packet we built wrongly gets here (e.g. a field over 64 KiB).
            warn!("dropping unencodable {:?}: {e}", packet.packet_type());
        }
    }
}
