//! The sans-IO client: a state machine that is told what arrived and what time it is, and
//! answers with bytes to send, deadlines and events. It never blocks and owns no socket,
//! so every transition is testable on the host without a network.

use embassy_time::{Duration, Instant};
use heapless::{Deque, Vec};
use midge_wire::{
    Ack, Connack, Connect, DecodeOptions, Disconnect, Packet, Properties, Property,
    ProtocolVersion, Publish, QoS, QosPid, Subscribe, Will, topic,
};

use crate::backoff::BackoffState;
use crate::config::Config;
use crate::error::{Error, PublishError, Waiting};
use crate::event::{Event, Message};
use crate::outbox::{Outbox, Slot, Stage};

/// Acknowledgements we owe the broker for QoS 1/2 messages it sent us. The driver sends
/// them before reading the next packet, so a handful is plenty.
const REPLY_QUEUE: usize = 4;
/// Incoming QoS 2 messages received but not yet released (PUBREL). Announced to MQTT 5
/// brokers as our Receive Maximum.
const QOS2_RECEIVED: usize = 8;

/// An MQTT client for one broker.
///
/// * `MAX_PACKET`: the largest packet, in bytes, sent or received (and the size of each
///   outbox slot and of the driver's two buffers).
/// * `OUTBOX`: how many published messages may wait for their acknowledgement (QoS 1/2)
///   or for a connection (QoS 0) at once.
///
/// The client outlives connections: messages in the outbox survive a reconnect and are
/// sent again. Typical use, with a transport of your choice (or use
/// [`crate::Connection`], which does this loop):
///
/// 1. transport connected: [`connection_opened`](Self::connection_opened);
/// 2. send what [`poll_transmit`](Self::poll_transmit) produces until it says `None`;
/// 3. feed every packet read (decoded with [`decode_options`](Self::decode_options)) to [`handle_packet`](Self::handle_packet);
/// 4. wake at [`poll_timeout`](Self::poll_timeout) and call
///    [`handle_timeout`](Self::handle_timeout);
/// 5. on any `Err` or transport failure: close the transport, call
///    [`connection_lost`](Self::connection_lost) and wait the delay it returns.
#[derive(Debug)]
pub struct Client<'a, const MAX_PACKET: usize, const OUTBOX: usize> {
    config: Config<'a>,
    state: State,
    outbox: Outbox<MAX_PACKET, OUTBOX>,
    replies: Deque<Reply, REPLY_QUEUE>,
    qos2_received: Vec<u16, QOS2_RECEIVED>,
    next_packet_id: u16,
    backoff: BackoffState,
    /// Effective keep alive (an MQTT 5 broker may override ours).
    keep_alive: Duration,
    /// The broker's Receive Maximum: how many QoS 1/2 messages may be in flight.
    send_quota: usize,
    /// The broker's Maximum Packet Size (MQTT 5); unlimited until a CONNACK says otherwise.
    broker_max_packet: usize,
    /// Messages dropped because they exceed `broker_max_packet`.
    dropped: u32,
    last_sent: Instant,
    ping_sent: Option<Instant>,
    subscription: Subscription,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Disconnected,
    /// The transport is up; CONNECT goes out next, then we wait for CONNACK.
    AwaitingConnack {
        connect_sent: Option<Instant>,
    },
    Connected,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Subscription {
    /// Nothing to subscribe, or the broker's session already has our subscriptions.
    Done,
    /// SUBSCRIBE goes out next.
    Due,
    Sent {
        packet_id: u16,
        at: Instant,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reply {
    Puback(u16),
    Pubrec(u16),
    Pubcomp(u16),
}

impl<'a, const MAX_PACKET: usize, const OUTBOX: usize> Client<'a, MAX_PACKET, OUTBOX> {
    pub fn new(config: Config<'a>) -> Self {
        Self {
            state: State::Disconnected,
            outbox: Outbox::new(),
            replies: Deque::new(),
            qos2_received: Vec::new(),
            next_packet_id: 1,
            backoff: BackoffState::new(config.backoff.seed),
            keep_alive: Duration::from_secs(config.keep_alive_secs.into()),
            send_quota: OUTBOX,
            broker_max_packet: usize::MAX,
            dropped: 0,
            last_sent: Instant::from_ticks(0),
            ping_sent: None,
            subscription: Subscription::Done,
            config,
        }
    }

    pub fn config(&self) -> &Config<'a> {
        &self.config
    }

    /// CONNACK accepted and the connection not lost since.
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// Messages waiting in the outbox (un-acknowledged or not yet sent).
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// Messages dropped unsent because they were queued before a CONNACK announced a
    /// Maximum Packet Size (MQTT 5) smaller than they are. Sending one would only make
    /// the broker disconnect, again after every reconnect.
    pub fn dropped(&self) -> u32 {
        self.dropped
    }

    /// How the driver must decode what the broker sends.
    pub fn decode_options(&self) -> DecodeOptions {
        DecodeOptions {
            version: self.config.version,
            max_packet_size: MAX_PACKET as u32,
        }
    }

    /// The transport to the broker is up: CONNECT is the next packet to send.
    pub fn connection_opened(&mut self) {
        self.reset_connection();
        self.state = State::AwaitingConnack { connect_sent: None };
    }

    /// The connection failed or ended (or a connection attempt failed). Returns how long
    /// to wait before the next attempt: exponential back-off with jitter, reset by every
    /// accepted CONNACK.
    pub fn connection_lost(&mut self) -> Duration {
        self.reset_connection();
        self.state = State::Disconnected;
        self.outbox.connection_lost();
        self.backoff.next_delay(&self.config.backoff)
    }

    fn reset_connection(&mut self) {
        self.replies.clear();
        self.ping_sent = None;
        if let Subscription::Sent { .. } = self.subscription {
            self.subscription = Subscription::Due;
        }
    }

    /// Queues a message and returns its packet identifier (`None` for QoS 0). It is sent
    /// as soon as a connection is up; QoS 1/2 messages stay in the outbox until the broker
    /// acknowledges them, across reconnects.
    pub fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<Option<u16>, PublishError> {
        // MQTT strings must not contain U+0000; the codec checks that only when decoding.
        if topic::validate_name(topic).is_err() || topic.contains('\0') {
            return Err(PublishError::InvalidTopic);
        }
        if self.outbox.is_full() {
            return Err(PublishError::OutboxFull);
        }
        let packet_id = if qos == QoS::AtMostOnce {
            0
        } else {
            self.allocate_packet_id()
        };
        let packet = Packet::Publish(Publish {
            dup: false,
            qos_pid: QosPid::new(qos, packet_id),
            retain,
            topic,
            properties: Properties::EMPTY,
            payload,
        });
        let frame =
            encode_frame::<MAX_PACKET>(&packet, self.config.version).map_err(|e| match e {
                midge_wire::EncodeError::BufferTooSmall { needed } => {
                    PublishError::TooLarge { needed }
                }
                _ => PublishError::TooLarge { needed: usize::MAX },
            })?;
        if frame.len() > self.broker_max_packet {
            return Err(PublishError::TooLarge {
                needed: frame.len(),
            });
        }
        self.outbox.push(Slot {
            frame,
            qos,
            packet_id,
            stage: Stage::Publish,
            sent_at: None,
        });
        Ok((packet_id != 0).then_some(packet_id))
    }

    /// A packet identifier no message in the outbox uses. The outbox is not full, so one
    /// of the next `OUTBOX + 1` candidates is free.
    fn allocate_packet_id(&mut self) -> u16 {
        loop {
            let id = self.next_packet_id;
            self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
            if !self.outbox.uses_id(id) {
                return id;
            }
        }
    }

    /// Writes the next packet to send into `buf` and returns its length, or `None` when
    /// there is nothing to send now. Call it until `None` after every other call.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Result<Option<usize>, Error> {
        let len = match self.state {
            State::Disconnected
            | State::AwaitingConnack {
                connect_sent: Some(_),
            } => None,
            State::AwaitingConnack { connect_sent: None } => {
                let len = self.encode_connect(buf)?;
                self.state = State::AwaitingConnack {
                    connect_sent: Some(now),
                };
                Some(len)
            }
            State::Connected => self.next_connected_packet(now, buf)?,
        };
        if len.is_some() {
            self.last_sent = now;
        }
        Ok(len)
    }

    fn next_connected_packet(
        &mut self,
        now: Instant,
        buf: &mut [u8],
    ) -> Result<Option<usize>, Error> {
        let v = self.config.version;
        if let Some(reply) = self.replies.pop_front() {
            let packet = match reply {
                Reply::Puback(id) => Packet::Puback(Ack::new(id)),
                Reply::Pubrec(id) => Packet::Pubrec(Ack::new(id)),
                Reply::Pubcomp(id) => Packet::Pubcomp(Ack::new(id)),
            };
            return encode(&packet, v, buf).map(Some);
        }
        if self.subscription == Subscription::Due {
            let packet_id = self.allocate_packet_id();
            let packet = Packet::Subscribe(Subscribe {
                packet_id,
                properties: Properties::EMPTY,
                subscriptions: midge_wire::List::new(self.config.subscriptions),
            });
            let len = encode(&packet, v, buf)?;
            self.subscription = Subscription::Sent { packet_id, at: now };
            return Ok(Some(len));
        }
        while let Some(index) = self.outbox.next_unsent(self.send_quota) {
            let slot = self.outbox.get_mut(index);
            if slot.frame.len() > self.broker_max_packet {
                self.outbox.remove(index);
                self.dropped = self.dropped.saturating_add(1);
                continue;
            }
            let len = slot.frame.len();
            let out = buf.get_mut(..len).ok_or(Error::Encode(
                midge_wire::EncodeError::BufferTooSmall { needed: len },
            ))?;
            out.copy_from_slice(&slot.frame);
            slot.sent_at = Some(now);
            if slot.qos == QoS::AtMostOnce {
                self.outbox.remove(index);
            }
            return Ok(Some(len));
        }
        if self.ping_sent.is_none() && self.ping_due().is_some_and(|due| now >= due) {
            self.ping_sent = Some(now);
            return encode(&Packet::Pingreq, v, buf).map(Some);
        }
        Ok(None)
    }

    /// When the next PINGREQ is due: after three quarters of the keep alive without
    /// sending anything, which leaves the broker's grace period (1.5 × keep alive) for
    /// the PINGRESP round trip.
    fn ping_due(&self) -> Option<Instant> {
        (self.keep_alive.as_ticks() > 0).then(|| self.last_sent + self.keep_alive * 3 / 4)
    }

    fn encode_connect(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let c = &self.config;
        let props = [
            // Never more QoS 2 messages in flight towards us than we can remember.
            Property::ReceiveMaximum(QOS2_RECEIVED as u16),
            // The broker must not send what our receive buffer cannot hold.
            Property::MaximumPacketSize(MAX_PACKET as u32),
        ];
        let packet = Packet::Connect(Connect {
            version: c.version,
            clean_start: c.clean_start,
            keep_alive: c.keep_alive_secs,
            properties: Properties::new(&props),
            client_id: c.client_id,
            will: c.will.map(|w| Will {
                qos: w.qos,
                retain: w.retain,
                properties: Properties::EMPTY,
                topic: w.topic,
                payload: w.payload,
            }),
            username: c.username,
            password: c.password,
        });
        encode(&packet, c.version, buf)
    }

    /// The next instant at which [`handle_timeout`](Self::handle_timeout) has work: a
    /// response deadline or a PINGREQ that falls due. `None` when disconnected.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timeout = self.config.response_timeout;
        match self.state {
            State::Disconnected | State::AwaitingConnack { connect_sent: None } => None,
            State::AwaitingConnack {
                connect_sent: Some(at),
            } => Some(at + timeout),
            State::Connected => {
                let subscription = match self.subscription {
                    Subscription::Sent { at, .. } => Some(at + timeout),
                    _ => None,
                };
                let ping = match self.ping_sent {
                    Some(at) => Some(at + timeout),
                    None => self.ping_due(),
                };
                [
                    subscription,
                    ping,
                    self.outbox.oldest_unacked().map(|at| at + timeout),
                ]
                .into_iter()
                .flatten()
                .min()
            }
        }
    }

    /// Checks the response deadlines. An `Err` means the broker stopped answering: the
    /// connection is dead (PINGREQs that fall due are produced by `poll_transmit`).
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        let expired = |at: Instant| now >= at + self.config.response_timeout;
        match self.state {
            State::AwaitingConnack {
                connect_sent: Some(at),
            } if expired(at) => Err(Error::Timeout(Waiting::Connack)),
            State::Connected => {
                if let Subscription::Sent { at, .. } = self.subscription
                    && expired(at)
                {
                    return Err(Error::Timeout(Waiting::Suback));
                }
                if self.ping_sent.is_some_and(expired) {
                    return Err(Error::Timeout(Waiting::Pingresp));
                }
                if self.outbox.oldest_unacked().is_some_and(expired) {
                    // MQTT 5 forbids sending a PUBLISH again on the same connection, and
                    // in 3.1.1 a missing PUBACK after this long means the connection is
                    // broken anyway: reconnect, and the outbox goes out again.
                    return Err(Error::Timeout(Waiting::PublishAck));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Processes one packet from the broker. `Err` ends the connection.
    pub fn handle_packet<'p>(&mut self, packet: Packet<'p>) -> Result<Option<Event<'p>>, Error> {
        match (self.state, packet) {
            (
                State::AwaitingConnack {
                    connect_sent: Some(_),
                },
                Packet::Connack(connack),
            ) => self.handle_connack(&connack).map(Some),
            (_, Packet::Disconnect(d)) => Err(Error::DisconnectedByBroker(d.reason)),
            (State::Connected, Packet::Publish(p)) => self.handle_publish(&p),
            (State::Connected, Packet::Puback(ack)) => {
                Ok(self.acknowledged(ack.packet_id, Stage::Publish, QoS::AtLeastOnce, &ack))
            }
            (State::Connected, Packet::Pubrec(ack)) => Ok(self.handle_pubrec(&ack)),
            (State::Connected, Packet::Pubcomp(ack)) => {
                Ok(self.acknowledged(ack.packet_id, Stage::Release, QoS::ExactlyOnce, &ack))
            }
            (State::Connected, Packet::Pubrel(ack)) => {
                self.qos2_received.retain(|&id| id != ack.packet_id);
                self.reply(Reply::Pubcomp(ack.packet_id), packet)?;
                Ok(None)
            }
            (State::Connected, Packet::Suback(suback)) => match self.subscription {
                Subscription::Sent { packet_id, .. } if packet_id == suback.packet_id => {
                    self.subscription = Subscription::Done;
                    let granted = suback.reason_codes.iter().all(|code| !code.is_error());
                    Ok(Some(Event::Subscribed { granted }))
                }
                _ => Err(Error::Unexpected(packet.packet_type())),
            },
            (State::Connected, Packet::Pingresp) => {
                self.ping_sent = None;
                Ok(None)
            }
            (_, other) => Err(Error::Unexpected(other.packet_type())),
        }
    }

    fn handle_connack(&mut self, connack: &Connack<'_>) -> Result<Event<'static>, Error> {
        if connack.reason.is_error() {
            return Err(Error::Refused(connack.reason));
        }
        self.state = State::Connected;
        self.backoff.reset();
        let props = &connack.properties;
        self.keep_alive = Duration::from_secs(
            props
                .server_keep_alive()
                .unwrap_or(self.config.keep_alive_secs)
                .into(),
        );
        self.send_quota = props
            .receive_maximum()
            .map_or(OUTBOX, |max| usize::from(max).min(OUTBOX));
        self.broker_max_packet = props
            .maximum_packet_size()
            .map_or(usize::MAX, |max| max as usize);
        let session_present = connack.session_present;
        if !session_present {
            // A fresh session: nothing of the old one (QoS 2 ids, subscriptions) is left.
            self.qos2_received.clear();
            if !self.config.subscriptions.is_empty() {
                self.subscription = Subscription::Due;
            }
        }
        Ok(Event::Connected { session_present })
    }

    fn handle_publish<'p>(&mut self, p: &Publish<'p>) -> Result<Option<Event<'p>>, Error> {
        let message = Event::Message(Message {
            topic: p.topic,
            payload: p.payload,
            qos: p.qos_pid.qos(),
            retain: p.retain,
        });
        match p.qos_pid {
            QosPid::AtMostOnce => Ok(Some(message)),
            QosPid::AtLeastOnce(id) => {
                self.reply(Reply::Puback(id), Packet::Publish(*p))?;
                Ok(Some(message))
            }
            QosPid::ExactlyOnce(id) => {
                // A resend of a message we already have: acknowledge, don't deliver twice.
                let first = !self.qos2_received.contains(&id);
                if first && self.qos2_received.push(id).is_err() {
                    return Err(Error::Unexpected(midge_wire::PacketType::Publish));
                }
                self.reply(Reply::Pubrec(id), Packet::Publish(*p))?;
                Ok(first.then_some(message))
            }
        }
    }

    fn handle_pubrec<'p>(&mut self, ack: &Ack<'_>) -> Option<Event<'p>> {
        let index = self.outbox.find(ack.packet_id, Stage::Publish)?;
        if ack.reason.is_error() {
            // The broker refused the message (MQTT 5): nothing to release.
            self.outbox.remove(index);
            return Some(Event::Rejected {
                packet_id: ack.packet_id,
                reason: ack.reason,
            });
        }
        let version = self.config.version;
        let slot = self.outbox.get_mut(index);
        if slot.qos != QoS::ExactlyOnce {
            return None;
        }
        // PUBREL is a few bytes and MAX_PACKET can hold any PUBLISH, so it fits.
        let frame = encode_frame::<MAX_PACKET>(&Packet::Pubrel(Ack::new(ack.packet_id)), version);
        if let Ok(frame) = frame {
            slot.frame = frame;
            slot.stage = Stage::Release;
            slot.sent_at = None;
        }
        None
    }

    /// The end of an outgoing QoS flow: frees the slot. Acknowledgements for identifiers
    /// we are not waiting on (late duplicates after a reconnect) are ignored.
    fn acknowledged<'p>(
        &mut self,
        packet_id: u16,
        stage: Stage,
        qos: QoS,
        ack: &Ack<'_>,
    ) -> Option<Event<'p>> {
        let index = self.outbox.find(packet_id, stage)?;
        if self.outbox.get_mut(index).qos != qos {
            return None;
        }
        self.outbox.remove(index);
        Some(if ack.reason.is_error() {
            Event::Rejected {
                packet_id,
                reason: ack.reason,
            }
        } else {
            Event::Delivered { packet_id }
        })
    }

    fn reply(&mut self, reply: Reply, cause: Packet<'_>) -> Result<(), Error> {
        // The driver drains replies after every packet, so this only fails for a peer
        // that floods us faster than we can answer.
        self.replies
            .push_back(reply)
            .map_err(|_| Error::Unexpected(cause.packet_type()))
    }

    /// Writes a DISCONNECT (normal, so the broker discards the will) for a graceful close.
    pub fn disconnect(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let len = encode(
            &Packet::Disconnect(Disconnect::NORMAL),
            self.config.version,
            buf,
        )?;
        self.reset_connection();
        self.state = State::Disconnected;
        self.outbox.connection_lost();
        Ok(len)
    }

    /// The protocol version the client speaks.
    pub fn version(&self) -> ProtocolVersion {
        self.config.version
    }
}

fn encode(packet: &Packet<'_>, version: ProtocolVersion, buf: &mut [u8]) -> Result<usize, Error> {
    packet.encode(version, buf).map_err(Error::Encode)
}

fn encode_frame<const N: usize>(
    packet: &Packet<'_>,
    version: ProtocolVersion,
) -> Result<Vec<u8, N>, midge_wire::EncodeError> {
    let needed = packet.encoded_len(version)?;
    let mut frame = Vec::new();
    frame
        .resize(needed, 0)
        .map_err(|_| midge_wire::EncodeError::BufferTooSmall { needed })?;
    packet.encode(version, &mut frame)?;
    Ok(frame)
}
