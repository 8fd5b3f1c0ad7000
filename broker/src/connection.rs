//! One client connection's protocol state, without any I/O.
//!
//! The network shell (`server.rs`) feeds it decoded packets and wake-ups and writes out
//! whatever it leaves in [`Connection::out`]; everything MQTT decides happens here, so it
//! can be driven directly in tests.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use midge_wire::{
    Ack, Connack, Connect, DecodeError, Disconnect, List, Packet, Properties, Property,
    ProtocolVersion, Publish, QoS, QosPid, ReasonCode, Suback, Subscribe, Unsuback, Unsubscribe,
    topic::SharedFilter,
};
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use crate::broker::Broker;
use crate::message::Message;
use crate::session::{Outbound, Owner, Session};
use crate::stats::Stats;

/// Output is not added to beyond this: the connection stops taking deliveries (and the
/// shell stops reading) until the client has read what is pending, so a client that does
/// not read costs at most this much here, and its session's queue limits do the rest.
pub const OUT_HIGH_WATER: usize = 64 * 1024;

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
    ShuttingDown,
}

impl Closing {
    fn protocol(reason: ReasonCode, detail: impl Into<String>) -> Self {
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
            Self::ShuttingDown => f.write_str("disconnected: broker shutting down"),
        }
    }
}

#[derive(Debug)]
struct Connected {
    session: Arc<Session>,
    version: ProtocolVersion,
    keep_alive: u16,
    will: Option<Message>,
}

#[derive(Debug)]
pub struct Connection {
    broker: Arc<Broker>,
    id: u64,
    peer: SocketAddr,
    allow_anonymous: bool,
    /// Bytes to send; empty (and unallocated) when idle.
    pub out: BytesMut,
    /// Notified when another connection takes this one's session.
    pub close: Arc<Notify>,
    state: Option<Connected>,
}

impl Connection {
    pub fn new(broker: Arc<Broker>, peer: SocketAddr, allow_anonymous: bool) -> Self {
        let id = broker.next_connection_id();
        Self {
            broker,
            id,
            peer,
            allow_anonymous,
            out: BytesMut::new(),
            close: Arc::new(Notify::new()),
            state: None,
        }
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
                Packet::Connect(connect) => self.on_connect(&connect),
                other => Err(Closing::protocol(
                    ReasonCode::ProtocolError,
                    format!("first packet {:?} is not CONNECT", other.packet_type()),
                )),
            };
        };
        let session = Arc::clone(&connected.session);
        let version = connected.version;
        match packet {
            Packet::Connect(_) => Err(Closing::protocol(
                ReasonCode::ProtocolError,
                "second CONNECT",
            )),
            Packet::Publish(publish) => self.on_publish(&session, version, &publish),
            Packet::Puback(ack) => {
                session.state().puback(ack.packet_id);
                Ok(())
            }
            Packet::Pubrec(ack) => {
                session.state().pubrec(ack.packet_id);
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
            Packet::Subscribe(subscribe) => self.on_subscribe(&session, &subscribe),
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
            Packet::Auth(_) => Err(Closing::protocol(
                ReasonCode::BadAuthenticationMethod,
                "AUTH without an authentication method",
            )),
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

    /// Encodes queued deliveries for the client, as far as its in-flight window allows.
    pub fn send_queued(&mut self) {
        let Some(connected) = &self.state else { return };
        let session = Arc::clone(&connected.session);
        let version = connected.version;
        let mut state = session.state();
        if state
            .owner
            .as_ref()
            .is_none_or(|o| o.connection_id != self.id)
        {
            return; // taken over: the close notification is on its way
        }
        let limits = &self.broker.limits;
        state.send_queued(limits, |o| {
            encode_outbound(&mut self.out, version, o, &self.broker);
            self.out.len() < OUT_HIGH_WATER
        });
    }

    /// Ends the connection: says why to an MQTT 5 client when the server is the one
    /// closing, publishes the will if due, releases the session, logs.
    pub fn on_close(&mut self, closing: &Closing) {
        let Some(connected) = self.state.take() else {
            debug!(
                "connection from {} closed before CONNECT: {closing}",
                self.peer
            );
            return;
        };
        let client = &connected.session.client_id;
        if connected.version.is_v5() {
            let reason = match closing {
                Closing::ProtocolError { reason, .. } => Some(*reason),
                Closing::KeepAliveTimeout => Some(ReasonCode::KeepAliveTimeout),
                Closing::TakenOver => Some(ReasonCode::SessionTakenOver),
                Closing::ShuttingDown => Some(ReasonCode::ServerShuttingDown),
                _ => None,
            };
            if let Some(reason) = reason {
                self.send_in(
                    connected.version,
                    Packet::Disconnect(Disconnect::new(reason)),
                );
            }
        }
        match closing {
            Closing::Disconnected { .. } => info!("Client {client} disconnected."),
            Closing::ProtocolError { .. } | Closing::SocketError(_) => {
                warn!("Client {client} {closing}.")
            }
            _ => info!("Client {client} {closing}."),
        }
        if closing.publishes_will()
            && let Some(will) = connected.will
        {
            debug!("publishing will of {client} on {}", will.topic);
            self.broker.publish(will);
        }
        self.broker.detach(&connected.session, self.id);
        self.broker.stats.client_disconnected();
    }

    fn on_connect(&mut self, connect: &Connect<'_>) -> Result<(), Closing> {
        let version = connect.version;
        let refuse = |this: &mut Self, reason: ReasonCode| {
            let connack = Connack {
                session_present: false,
                reason,
                properties: Properties::EMPTY,
            };
            this.send_in(version, Packet::Connack(connack));
            info!("Refused client from {} ({reason:?}).", this.peer);
            Err(Closing::Refused(reason))
        };
        let limits = &self.broker.limits;
        if connect.client_id.is_empty()
            && !version.is_v5()
            && (!connect.clean_start || version == ProtocolVersion::V3_1)
        {
            // [MQTT-3.1.3-8]: an empty id needs clean session (3.1 has no empty ids).
            return refuse(self, ReasonCode::ClientIdentifierNotValid);
        }
        if !version.is_v5() && connect.keep_alive > limits.max_keepalive {
            // 3.x cannot be told another keep-alive; Mosquitto refuses it this way too.
            return refuse(self, ReasonCode::ClientIdentifierNotValid);
        }
        if connect.username.is_none() && !self.allow_anonymous {
            return refuse(self, ReasonCode::NotAuthorized);
        }
        let assigned = connect.client_id.is_empty().then(generate_client_id);
        let client_id = assigned.as_deref().unwrap_or(connect.client_id);
        let expiry = if version.is_v5() {
            connect.properties.session_expiry_interval().unwrap_or(0)
        } else if connect.clean_start {
            0
        } else {
            u32::MAX
        };
        // MQTT 5 clients are told the keep-alive to use instead (Server Keep Alive).
        let max = limits.max_keepalive;
        let keep_alive = if version.is_v5() && (connect.keep_alive == 0 || connect.keep_alive > max)
        {
            max
        } else {
            connect.keep_alive
        };
        let owner = Owner {
            connection_id: self.id,
            close: Arc::clone(&self.close),
        };
        let attached = self
            .broker
            .attach(client_id, connect.clean_start, expiry, owner);
        if let Some(previous) = attached.previous_owner {
            previous.close.notify_one();
        }
        let will = connect.will.map(|w| Message {
            topic: w.topic.into(),
            payload: Bytes::copy_from_slice(w.payload),
            qos: w.qos,
            retain: w.retain,
            publisher: Some(Arc::clone(&attached.session.client_id)),
        });
        let mut properties = Vec::new();
        if let Some(id) = &assigned {
            properties.push(Property::AssignedClientIdentifier(id));
        }
        if version.is_v5() {
            if keep_alive != connect.keep_alive {
                properties.push(Property::ServerKeepAlive(keep_alive));
            }
            // What this broker does not offer yet, MQTT 5 clients are told up front.
            properties.push(Property::SubscriptionIdentifierAvailable(false));
            properties.push(Property::SharedSubscriptionAvailable(false));
            if !limits.retain_available {
                properties.push(Property::RetainAvailable(false));
            }
            if limits.max_packet_size < midge_wire::MAX_PACKET_SIZE as u32 {
                properties.push(Property::MaximumPacketSize(limits.max_packet_size));
            }
        }
        let connack = Connack {
            session_present: attached.session_present,
            reason: ReasonCode::Success,
            properties: List::new(&properties),
        };
        self.send_in(version, Packet::Connack(connack));
        self.broker.stats.client_connected();
        info!(
            "New client connected from {} as {client_id} (p{}, c{}, k{}{}).",
            self.peer,
            version.level(),
            u8::from(connect.clean_start),
            keep_alive,
            connect
                .username
                .map(|u| format!(", u'{u}'"))
                .unwrap_or_default(),
        );
        if attached.session_present {
            let state = attached.session.state();
            state.resend_inflight(|o| encode_outbound(&mut self.out, version, o, &self.broker));
        }
        self.state = Some(Connected {
            session: attached.session,
            version,
            keep_alive,
            will,
        });
        Ok(())
    }

    fn on_publish(
        &mut self,
        session: &Arc<Session>,
        version: ProtocolVersion,
        publish: &Publish<'_>,
    ) -> Result<(), Closing> {
        let stats = &self.broker.stats;
        stats.publish_received.fetch_add(1, Ordering::Relaxed);
        let limits = &self.broker.limits;
        if publish.properties.topic_alias().is_some() {
            // We announce no Topic Alias Maximum, which means 0 [MQTT-3.3.2-9].
            return Err(Closing::protocol(
                ReasonCode::TopicAliasInvalid,
                "topic alias not allowed",
            ));
        }
        if publish
            .properties
            .subscription_identifiers()
            .next()
            .is_some()
        {
            return Err(Closing::protocol(
                ReasonCode::ProtocolError,
                "subscription identifier in a PUBLISH from a client",
            ));
        }
        if publish.retain && !limits.retain_available {
            return Err(Closing::protocol(
                ReasonCode::RetainNotSupported,
                "retained messages are disabled",
            ));
        }
        if limits.message_size_limit != 0
            && publish.payload.len() > limits.message_size_limit as usize
        {
            // Dropped but acknowledged, as Mosquitto does, so the client does not resend it.
            stats.publish_dropped.fetch_add(1, Ordering::Relaxed);
            warn!(
                "Dropped too large PUBLISH from {} ({} bytes) on {}",
                session.client_id,
                publish.payload.len(),
                publish.topic
            );
            let mut ack = Ack::new(publish.qos_pid.packet_id().unwrap_or(0));
            if version.is_v5() {
                ack.reason = ReasonCode::QuotaExceeded;
            }
            match publish.qos_pid {
                QosPid::AtMostOnce => {}
                QosPid::AtLeastOnce(_) => self.send(Packet::Puback(ack)),
                QosPid::ExactlyOnce(_) => self.send(Packet::Pubrec(ack)),
            }
            return Ok(());
        }
        if publish.topic.is_empty() {
            return Err(Closing::protocol(
                ReasonCode::TopicAliasInvalid,
                "topic aliases are not supported yet",
            ));
        }
        let message = Message {
            topic: publish.topic.into(),
            payload: Bytes::copy_from_slice(publish.payload),
            qos: publish.qos_pid.qos(),
            retain: publish.retain,
            publisher: Some(Arc::clone(&session.client_id)),
        };
        match publish.qos_pid {
            QosPid::AtMostOnce => {
                self.broker.publish(message);
            }
            QosPid::AtLeastOnce(id) => {
                let delivered = self.broker.publish(message);
                self.send(Packet::Puback(ack_for(id, delivered, version)));
            }
            QosPid::ExactlyOnce(id) => {
                // Delivered when first received; a resend before PUBREL is only acknowledged.
                let first = session.state().receive_qos2(id);
                let delivered = if first {
                    self.broker.publish(message)
                } else {
                    1
                };
                self.send(Packet::Pubrec(ack_for(id, delivered, version)));
            }
        }
        Ok(())
    }

    fn on_subscribe(
        &mut self,
        session: &Arc<Session>,
        subscribe: &Subscribe<'_>,
    ) -> Result<(), Closing> {
        if subscribe
            .properties
            .subscription_identifiers()
            .next()
            .is_some()
        {
            return Err(Closing::protocol(
                ReasonCode::SubscriptionIdentifiersNotSupported,
                "subscription identifiers are not supported yet",
            ));
        }
        let mut codes = Vec::with_capacity(subscribe.subscriptions.len());
        for s in &subscribe.subscriptions {
            let code = if matches!(SharedFilter::parse(s.filter), Ok(Some(_))) {
                ReasonCode::SharedSubscriptionsNotSupported
            } else {
                self.broker.subscribe(session, s.filter, s.options);
                match s.options.qos {
                    QoS::AtMostOnce => ReasonCode::Success,
                    QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
                    QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
                }
            };
            debug!(
                "{} subscribed to {} ({code:?})",
                session.client_id, s.filter
            );
            codes.push(code);
        }
        self.send(Packet::Suback(Suback {
            packet_id: subscribe.packet_id,
            properties: Properties::EMPTY,
            reason_codes: List::new(&codes),
        }));
        Ok(())
    }

    fn on_unsubscribe(&mut self, session: &Arc<Session>, unsubscribe: &Unsubscribe<'_>) {
        let codes: Vec<ReasonCode> = unsubscribe
            .filters
            .iter()
            .map(|f| {
                if self.broker.unsubscribe(session, f) {
                    ReasonCode::Success
                } else {
                    ReasonCode::NoSubscriptionExisted
                }
            })
            .collect();
        self.send(Packet::Unsuback(Unsuback {
            packet_id: unsubscribe.packet_id,
            properties: Properties::EMPTY,
            reason_codes: List::new(&codes),
        }));
    }

    fn send(&mut self, packet: Packet<'_>) {
        self.send_in(self.version(), packet);
    }

    fn send_in(&mut self, version: ProtocolVersion, packet: Packet<'_>) {
        encode(&mut self.out, version, &packet, &self.broker.stats);
    }
}

/// PUBACK/PUBREC for a message delivered to `delivered` sessions.
fn ack_for(id: u16, delivered: usize, version: ProtocolVersion) -> Ack<'static> {
    let mut ack = Ack::new(id);
    if delivered == 0 && version.is_v5() {
        ack.reason = ReasonCode::NoMatchingSubscribers;
    }
    ack
}

fn encode_outbound(
    out: &mut BytesMut,
    version: ProtocolVersion,
    outbound: Outbound<'_>,
    broker: &Broker,
) {
    let packet = match outbound {
        Outbound::Publish {
            delivery,
            packet_id,
            dup,
        } => {
            broker.stats.publish_sent.fetch_add(1, Ordering::Relaxed);
            Packet::Publish(Publish {
                dup,
                qos_pid: QosPid::new(delivery.qos, packet_id.unwrap_or(0)),
                retain: delivery.retain,
                topic: &delivery.message.topic,
                properties: Properties::EMPTY,
                payload: &delivery.message.payload,
            })
        }
        Outbound::Pubrel(id) => Packet::Pubrel(Ack::new(id)),
    };
    encode(out, version, &packet, &broker.stats);
}

fn encode(out: &mut BytesMut, version: ProtocolVersion, packet: &Packet<'_>, stats: &Stats) {
    match packet.encode_to(version, out) {
        Ok(_) => {
            stats.messages_sent.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            // Only a packet we built wrongly gets here (e.g. a field over 64 KiB).
            warn!("dropping unencodable {:?}: {e}", packet.packet_type());
        }
    }
}

/// A client id for a client that sent none, unique for the broker's lifetime.
fn generate_client_id() -> String {
    use std::hash::{BuildHasher, RandomState};
    // RandomState is seeded randomly per instance: a cheap source of unpredictable bits.
    let a = RandomState::new().hash_one(0u8);
    let b = RandomState::new().hash_one(1u8);
    format!("auto-{a:016x}{b:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Limits;
    use midge_wire::{DecodeOptions, Decoded, SubscriptionOptions, Will, decode};

    fn broker() -> Arc<Broker> {
        Arc::new(Broker::new(Limits::default()))
    }

    fn connect_packet<'a>(client_id: &'a str, clean: bool, will: Option<Will<'a>>) -> Packet<'a> {
        Packet::Connect(Connect {
            version: ProtocolVersion::V3_1_1,
            clean_start: clean,
            keep_alive: 60,
            properties: Properties::EMPTY,
            client_id,
            will,
            username: None,
            password: None,
        })
    }

    /// Everything the connection wants to send, one line per packet.
    fn sent(c: &mut Connection) -> Vec<String> {
        let out = std::mem::take(&mut c.out);
        // Every client in these tests speaks 3.1.1 (also before its CONNECT is handled).
        let opts = DecodeOptions {
            version: ProtocolVersion::V3_1_1,
            ..DecodeOptions::default()
        };
        let mut rest = &out[..];
        let mut lines = Vec::new();
        while !rest.is_empty() {
            let Ok(Decoded::Complete { packet, len }) = decode(rest, &opts) else {
                panic!("undecodable output {rest:?}")
            };
            lines.push(match packet {
                Packet::Publish(p) => format!(
                    "PUBLISH {} {:?} q{} r{} d{}",
                    p.topic,
                    std::str::from_utf8(p.payload).unwrap(),
                    p.qos_pid.qos() as u8,
                    u8::from(p.retain),
                    u8::from(p.dup)
                ),
                Packet::Connack(c) => {
                    format!("CONNACK {:?} sp{}", c.reason, u8::from(c.session_present))
                }
                other => format!("{:?}", other.packet_type()),
            });
            rest = &rest[len..];
        }
        lines
    }

    fn client(broker: &Arc<Broker>, id: &str, clean: bool) -> Connection {
        let mut c = Connection::new(Arc::clone(broker), "127.0.0.1:1".parse().unwrap(), true);
        c.on_packet(connect_packet(id, clean, None)).unwrap();
        c
    }

    fn publish<'a>(topic: &'a str, payload: &'a [u8], qos_pid: QosPid, retain: bool) -> Packet<'a> {
        Packet::Publish(Publish {
            dup: false,
            qos_pid,
            retain,
            topic,
            properties: Properties::EMPTY,
            payload,
        })
    }

    fn subscribe(c: &mut Connection, filter: &str, qos: QoS) {
        let subs = [midge_wire::Subscription {
            filter,
            options: SubscriptionOptions::new(qos),
        }];
        let packet = Subscribe {
            packet_id: 1,
            properties: Properties::EMPTY,
            subscriptions: List::new(&subs),
        };
        c.on_packet(Packet::Subscribe(packet)).unwrap();
    }

    #[test]
    fn publish_reaches_a_matching_subscriber_at_the_granted_qos() {
        let broker = broker();
        let mut sub = client(&broker, "sub", true);
        let mut publisher = client(&broker, "pub", true);
        assert_eq!(sent(&mut sub), ["CONNACK Success sp0"]);
        subscribe(&mut sub, "a/+", QoS::AtLeastOnce);
        assert_eq!(sent(&mut sub), ["Suback"]);
        publisher
            .on_packet(publish("a/b", b"x", QosPid::ExactlyOnce(9), false))
            .unwrap();
        assert_eq!(sent(&mut publisher), ["CONNACK Success sp0", "Pubrec"]);
        sub.send_queued();
        assert_eq!(sent(&mut sub), ["PUBLISH a/b \"x\" q1 r0 d0"]);
    }

    #[test]
    fn retained_messages_arrive_after_the_suback_with_retain_set() {
        let broker = broker();
        let mut publisher = client(&broker, "pub", true);
        publisher
            .on_packet(publish("r/1", b"kept", QosPid::AtMostOnce, true))
            .unwrap();
        let mut sub = client(&broker, "sub", true);
        sent(&mut sub);
        subscribe(&mut sub, "r/#", QoS::AtMostOnce);
        sub.send_queued();
        assert_eq!(sent(&mut sub), ["Suback", "PUBLISH r/1 \"kept\" q0 r1 d0"]);
    }

    #[test]
    fn persistent_session_resumes_with_queued_messages() {
        let broker = broker();
        let mut sub = client(&broker, "sub", false);
        subscribe(&mut sub, "q", QoS::AtLeastOnce);
        sub.on_close(&Closing::Disconnected { keep_will: false });
        let mut publisher = client(&broker, "pub", true);
        publisher
            .on_packet(publish("q", b"1", QosPid::AtLeastOnce(1), false))
            .unwrap();
        publisher
            .on_packet(publish("q", b"0", QosPid::AtMostOnce, false))
            .unwrap();
        let mut again = client(&broker, "sub", false);
        again.send_queued();
        assert_eq!(
            sent(&mut again),
            ["CONNACK Success sp1", "PUBLISH q \"1\" q1 r0 d0"]
        );
    }

    #[test]
    fn unacknowledged_publish_is_resent_with_dup_after_reconnect() {
        let broker = broker();
        let mut sub = client(&broker, "sub", false);
        subscribe(&mut sub, "q", QoS::AtLeastOnce);
        let mut publisher = client(&broker, "pub", true);
        publisher
            .on_packet(publish("q", b"1", QosPid::AtLeastOnce(1), false))
            .unwrap();
        sub.send_queued();
        sent(&mut sub);
        sub.on_close(&Closing::ConnectionLost);
        let mut again = client(&broker, "sub", false);
        assert_eq!(
            sent(&mut again),
            ["CONNACK Success sp1", "PUBLISH q \"1\" q1 r0 d1"]
        );
    }

    #[tokio::test]
    async fn same_client_id_takes_the_session_over() {
        let broker = broker();
        let first = client(&broker, "dup", false);
        let _second = client(&broker, "dup", false);
        let notified = tokio::time::timeout(Duration::from_millis(100), first.close.notified());
        assert!(
            notified.await.is_ok(),
            "the first connection is told to close"
        );
    }

    #[test]
    fn will_is_published_on_connection_loss_but_not_on_disconnect() {
        for (closing, expected) in [
            (Closing::ConnectionLost, 1),
            (Closing::KeepAliveTimeout, 1),
            (Closing::Disconnected { keep_will: false }, 0),
        ] {
            let broker = broker();
            let mut watcher = client(&broker, "watcher", true);
            subscribe(&mut watcher, "wills/#", QoS::AtMostOnce);
            sent(&mut watcher);
            let will = Will {
                qos: QoS::AtMostOnce,
                retain: false,
                properties: Properties::EMPTY,
                topic: "wills/dev",
                payload: b"gone",
            };
            let mut dev =
                Connection::new(Arc::clone(&broker), "127.0.0.1:2".parse().unwrap(), true);
            dev.on_packet(connect_packet("dev", true, Some(will)))
                .unwrap();
            dev.on_close(&closing);
            watcher.send_queued();
            assert_eq!(sent(&mut watcher).len(), expected, "{closing:?}");
        }
    }

    #[test]
    fn protocol_errors_close_the_connection() {
        let broker = broker();
        let mut c = Connection::new(Arc::clone(&broker), "127.0.0.1:3".parse().unwrap(), true);
        assert!(matches!(
            c.on_packet(Packet::Pingreq),
            Err(Closing::ProtocolError { .. })
        ));
        let mut c = client(&broker, "x", true);
        assert!(matches!(
            c.on_packet(connect_packet("x", true, None)),
            Err(Closing::ProtocolError { .. })
        ));
    }

    #[test]
    fn anonymous_refused_where_not_allowed() {
        let broker = broker();
        let mut c = Connection::new(Arc::clone(&broker), "10.0.0.1:3".parse().unwrap(), false);
        assert!(matches!(
            c.on_packet(connect_packet("x", true, None)),
            Err(Closing::Refused(_))
        ));
        assert_eq!(sent(&mut c), ["CONNACK NotAuthorized sp0"]);
    }
}
