//! One MQTT 5 connection to the broker for one set of device credentials, driven by
//! rumqttc: turns [`Command`]s into packets and acknowledgements into [`Event`]s.
//!
//! rumqttc hands out packet identifiers itself and reports them in `Outgoing` events in
//! the order requests were made, so the commands waiting for an identifier form a queue.
//! Subscriptions are reference-counted per filter: several relations may observe one
//! filter through one connection.
//!
//! MQTT has no "end of retained messages" signal. Once a `Subscribe` or `Read` has its
//! SUBACK, the link sends an UNSUBSCRIBE of a filter nobody uses and takes its UNSUBACK as
//! that signal. Waiting for the SUBACK first matters: a broker may queue the retained
//! messages and write them after answering the rest of the packets it read together
//! with the SUBSCRIBE (midge does), but not after answering a packet sent later.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{
    ConnectReturnCode, Packet, PubAckReason, PubRecReason, PublishProperties, SubscribeReasonCode,
};
use rumqttc::v5::{AsyncClient, ConnectionError, Event as MqttEvent, MqttOptions};
use rumqttc::{Outgoing, TlsConfiguration, Transport};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::broker::{Command, Event, Failure, Message, OpId, Outcome};
use crate::query::Credentials;
use crate::topic;

/// A filter no client subscribes to, unsubscribed to learn that earlier answers are in.
const SYNC_FILTER: &str = "midge-gateway/sync";

/// QoS 1 and 2 publishes in flight per connection; more wait in rumqttc's queue.
const INFLIGHT: u16 = 64;

/// SUBSCRIBEs and UNSUBSCRIBEs awaiting their acknowledgement per connection.
const CONTROL_WINDOW: usize = 16;

/// Requests rumqttc queues before the connection takes them; past this, 5.03.
const REQUEST_QUEUE: usize = 1024;

/// How to reach the broker, shared by every connection.
#[derive(Debug, Clone)]
pub struct BrokerSettings {
    pub host: String,
    pub port: u16,
    /// Credentials for devices that give none (`None`: connect anonymously).
    pub username: Option<String>,
    pub password: Option<String>,
    /// Prefix of generated client ids.
    pub client_id_prefix: String,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Largest MQTT packet accepted from the broker.
    pub max_packet: u32,
    /// Close a connection with no subscriptions after this long without work.
    pub idle: Duration,
}

#[derive(Debug)]
enum Sent {
    Publish { op: OpId, qos: QoS },
    Subscribe { op: OpId },
    Unsubscribe { sync: Option<OpId> },
}

/// A `Subscribe` or `Read` collecting retained messages until its sync UNSUBACK.
#[derive(Debug)]
struct Collecting {
    filter: String,
    /// `Subscribe` keeps the subscription afterwards, `Read` releases it.
    keep: bool,
    retained: Vec<Message>,
}

/// A SUBSCRIBE or UNSUBSCRIBE waiting for its turn.
#[derive(Debug)]
enum Control {
    Subscribe { op: OpId, filter: String },
    Unsubscribe { filter: String, sync: Option<OpId> },
}

#[derive(Debug, Default)]
struct Link {
    awaiting_pkid: VecDeque<Sent>,
    publishes: HashMap<u16, OpId>,
    /// rumqttc reuses packet identifiers after `INFLIGHT` requests and does not track
    /// them for SUBSCRIBE and UNSUBSCRIBE, so their acknowledgements are matched by
    /// order (the broker answers in order), and at most `CONTROL_WINDOW` are outstanding.
    subscribes: VecDeque<OpId>,
    unsubscribes: VecDeque<Option<OpId>>,
    backlog: VecDeque<Control>,
    controls_out: usize,
    collecting: HashMap<OpId, Collecting>,
    filters: HashMap<String, usize>,
    done: Vec<(OpId, Outcome)>,
}

impl Link {
    fn busy(&self) -> bool {
        !(self.filters.is_empty()
            && self.awaiting_pkid.is_empty()
            && self.publishes.is_empty()
            && self.backlog.is_empty()
            && self.controls_out == 0)
    }

    fn issue(&mut self, client: &AsyncClient, command: Command) {
        match command {
            Command::Publish {
                op,
                topic,
                payload,
                qos,
                retain,
                content_type,
            } => {
                let qos = match qos {
                    0 => QoS::AtMostOnce,
                    1 => QoS::AtLeastOnce,
                    _ => QoS::ExactlyOnce,
                };
                let properties = PublishProperties {
                    content_type,
                    ..PublishProperties::default()
                };
                match client.try_publish_with_properties(topic, qos, retain, payload, properties) {
                    Ok(()) => self.awaiting_pkid.push_back(Sent::Publish { op, qos }),
                    Err(_) => self.done.push((op, Outcome::Failed(Failure::Unreachable))),
                }
            }
            Command::Subscribe { op, filter } => self.subscribe(client, op, filter, true),
            Command::Read { op, topic } => self.subscribe(client, op, topic, false),
            Command::Unsubscribe { filter } => self.release(client, &filter),
        }
    }

    fn subscribe(&mut self, client: &AsyncClient, op: OpId, filter: String, keep: bool) {
        *self.filters.entry(filter.clone()).or_default() += 1;
        self.collecting.insert(
            op,
            Collecting {
                filter: filter.clone(),
                keep,
                retained: Vec::new(),
            },
        );
        self.backlog.push_back(Control::Subscribe { op, filter });
        self.pump(client);
    }

    /// Sends waiting SUBSCRIBEs and UNSUBSCRIBEs while the window has room.
    fn pump(&mut self, client: &AsyncClient) {
        while self.controls_out < CONTROL_WINDOW {
            let Some(control) = self.backlog.pop_front() else {
                return;
            };
            let (sent, op) = match control {
                Control::Subscribe { op, filter } => (
                    client
                        .try_subscribe(filter, QoS::ExactlyOnce)
                        .map(|()| Sent::Subscribe { op }),
                    Some(op),
                ),
                Control::Unsubscribe { filter, sync } => (
                    client
                        .try_unsubscribe(filter)
                        .map(|()| Sent::Unsubscribe { sync }),
                    sync,
                ),
            };
            match sent {
                Ok(sent) => {
                    self.awaiting_pkid.push_back(sent);
                    self.controls_out += 1;
                }
                // rumqttc's queue is full or gone: the connection is failing.
                Err(_) => {
                    if let Some(op) = op.filter(|op| self.collecting.remove(op).is_some()) {
                        self.done.push((op, Outcome::Failed(Failure::Unreachable)));
                    }
                }
            }
        }
    }

    /// Completes a `Subscribe` or `Read`, releasing the filter unless it is kept.
    fn finish(&mut self, client: &AsyncClient, op: OpId, failure: Option<Failure>) {
        let Some(c) = self.collecting.remove(&op) else {
            return;
        };
        if failure.is_some() || !c.keep {
            self.release(client, &c.filter);
        }
        let outcome = match failure {
            Some(f) => Outcome::Failed(f),
            None => Outcome::Subscribed {
                retained: c.retained,
            },
        };
        self.done.push((op, outcome));
    }

    /// Drops one use of `filter`, unsubscribing when it was the last.
    fn release(&mut self, client: &AsyncClient, filter: &str) {
        let Some(count) = self.filters.get_mut(filter) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            self.filters.remove(filter);
            self.backlog.push_back(Control::Unsubscribe {
                filter: filter.to_owned(),
                sync: None,
            });
            self.pump(client);
        }
    }

    fn on_outgoing(&mut self, outgoing: Outgoing) {
        let pkid = match outgoing {
            Outgoing::Publish(p) | Outgoing::Subscribe(p) | Outgoing::Unsubscribe(p) => p,
            _ => return,
        };
        match (self.awaiting_pkid.pop_front(), outgoing) {
            (Some(Sent::Publish { op, qos }), Outgoing::Publish(_)) => {
                if qos == QoS::AtMostOnce {
                    self.done.push((op, Outcome::Published));
                } else {
                    self.publishes.insert(pkid, op);
                }
            }
            (Some(Sent::Subscribe { op }), Outgoing::Subscribe(_)) => {
                self.subscribes.push_back(op);
            }
            (Some(Sent::Unsubscribe { sync }), Outgoing::Unsubscribe(_)) => {
                self.unsubscribes.push_back(sync);
            }
            (sent, outgoing) => warn!("MQTT request order lost: {sent:?} vs {outgoing:?}"),
        }
    }

    fn on_incoming(&mut self, client: &AsyncClient, packet: Packet) -> Option<Message> {
        match packet {
            Packet::Publish(p) => {
                let message = Message {
                    topic: String::from_utf8(p.topic.to_vec()).ok()?,
                    payload: p.payload.to_vec(),
                    qos: p.qos as u8,
                    retain: p.retain,
                    content_type: p.properties.and_then(|props| props.content_type),
                };
                if message.retain {
                    for c in self.collecting.values_mut() {
                        let wanted = if c.keep {
                            topic::matches(&c.filter, &message.topic)
                        } else {
                            c.filter == message.topic
                        };
                        if wanted {
                            c.retained.push(message.clone());
                        }
                    }
                }
                return Some(message);
            }
            Packet::PubAck(ack) => {
                if let Some(op) = self.publishes.remove(&ack.pkid) {
                    self.done.push((op, puback_outcome(&ack.reason)));
                }
            }
            Packet::PubRec(rec) => {
                if let Some(failure) = pubrec_failure(&rec.reason)
                    && let Some(op) = self.publishes.remove(&rec.pkid)
                {
                    self.done.push((op, Outcome::Failed(failure)));
                }
            }
            Packet::PubComp(comp) => {
                if let Some(op) = self.publishes.remove(&comp.pkid) {
                    self.done.push((op, Outcome::Published));
                }
            }
            Packet::SubAck(ack) => {
                self.controls_out = self.controls_out.saturating_sub(1);
                let op = self.subscribes.pop_front()?;
                let failure = match ack.return_codes.first() {
                    Some(SubscribeReasonCode::Success(_)) => None,
                    Some(SubscribeReasonCode::NotAuthorized) => Some(Failure::NotAuthorized),
                    Some(SubscribeReasonCode::TopicFilterInvalid) => Some(Failure::TopicInvalid),
                    _ => Some(Failure::Refused),
                };
                if failure.is_some() {
                    self.finish(client, op, failure);
                } else {
                    // The marker goes first: it completes a request someone waits for.
                    self.backlog.push_front(Control::Unsubscribe {
                        filter: SYNC_FILTER.to_owned(),
                        sync: Some(op),
                    });
                }
                self.pump(client);
            }
            Packet::UnsubAck(_) => {
                self.controls_out = self.controls_out.saturating_sub(1);
                if let Some(Some(op)) = self.unsubscribes.pop_front() {
                    self.finish(client, op, None);
                }
                self.pump(client);
            }
            _ => {}
        }
        None
    }

    /// Every operation still open, failed with `failure`.
    fn fail_all(&mut self, failure: Failure) {
        // Subscriptions in any stage are in `collecting`; publishes are waiting either for
        // their packet identifier or for their acknowledgement.
        let publishes = self.awaiting_pkid.drain(..).filter_map(|s| match s {
            Sent::Publish { op, .. } => Some(op),
            Sent::Subscribe { .. } | Sent::Unsubscribe { .. } => None,
        });
        let ops: Vec<OpId> = publishes
            .chain(self.publishes.drain().map(|(_, op)| op))
            .chain(self.collecting.drain().map(|(op, _)| op))
            .collect();
        for op in ops {
            self.done.push((op, Outcome::Failed(failure)));
        }
    }
}

fn puback_outcome(reason: &PubAckReason) -> Outcome {
    match reason {
        PubAckReason::Success | PubAckReason::NoMatchingSubscribers => Outcome::Published,
        PubAckReason::NotAuthorized => Outcome::Failed(Failure::NotAuthorized),
        PubAckReason::TopicNameInvalid => Outcome::Failed(Failure::TopicInvalid),
        _ => Outcome::Failed(Failure::Refused),
    }
}

fn pubrec_failure(reason: &PubRecReason) -> Option<Failure> {
    match reason {
        PubRecReason::Success | PubRecReason::NoMatchingSubscribers => None,
        PubRecReason::NotAuthorized => Some(Failure::NotAuthorized),
        PubRecReason::TopicNameInvalid => Some(Failure::TopicInvalid),
        _ => Some(Failure::Refused),
    }
}

fn connection_failure(error: &ConnectionError) -> Failure {
    match error {
        ConnectionError::ConnectionRefused(
            ConnectReturnCode::BadUserNamePassword
            | ConnectReturnCode::NotAuthorized
            | ConnectReturnCode::BadClientId
            | ConnectReturnCode::ClientIdentifierNotValid
            | ConnectReturnCode::Banned
            | ConnectReturnCode::BadAuthenticationMethod,
        ) => Failure::BadCredentials,
        _ => Failure::Unreachable,
    }
}

fn mqtt_options(session: &Credentials, settings: &BrokerSettings) -> MqttOptions {
    let client_id = session.client_id.clone().unwrap_or_else(|| {
        format!(
            "{}-{:08x}",
            settings.client_id_prefix,
            getrandom::u32().unwrap_or(0)
        )
    });
    let mut options = MqttOptions::new(client_id, settings.host.clone(), settings.port);
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_start(true)
        .set_connection_timeout(5)
        .set_max_packet_size(Some(settings.max_packet))
        // rumqttc keeps a slot per possible in-flight packet identifier; left at the
        // broker's Receive Maximum (65535 by default) that is about 13 MB per connection.
        .set_outgoing_inflight_upper_limit(INFLIGHT);
    // A device's own credentials replace the gateway's (the broker checks them).
    let (user, pass) = if session.username.is_some() || session.password.is_some() {
        (session.username.clone(), session.password.clone())
    } else {
        (settings.username.clone(), settings.password.clone())
    };
    if user.is_some() || pass.is_some() {
        options.set_credentials(user.unwrap_or_default(), pass.unwrap_or_default());
    }
    if let Some(tls) = &settings.tls {
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            tls.clone(),
        )));
    }
    options
}

/// Runs the connection for `session` until its command channel closes (idle, or the
/// gateway stops) or the connection fails; open operations then fail and `LinkDown` is
/// reported.
pub async fn run(
    session: Credentials,
    settings: Arc<BrokerSettings>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<Event>,
) {
    let (client, mut eventloop) =
        AsyncClient::new(mqtt_options(&session, &settings), REQUEST_QUEUE);
    // The event loop runs in a task of its own: dropping a `poll()` future halfway (as a
    // `select!` with the command channel would) abandons a connection attempt in progress.
    let (mqtt_tx, mut mqtt_events) = mpsc::unbounded_channel();
    let poller = tokio::spawn(async move {
        loop {
            let event = eventloop.poll().await;
            let failed = event.is_err();
            if mqtt_tx.send(event).is_err() || failed {
                break;
            }
        }
    });
    let mut link = Link::default();
    let mut failure = Failure::Unreachable;
    let mut closing = false;
    let mut idle_reported = false;
    let idle = tokio::time::sleep(settings.idle);
    tokio::pin!(idle);
    loop {
        let busy = link.busy();
        if busy {
            idle.as_mut()
                .reset(tokio::time::Instant::now() + settings.idle);
            idle_reported = false;
        }
        tokio::select! {
            command = commands.recv(), if !closing => match command {
                Some(command) => link.issue(&client, command),
                None => {
                    closing = true;
                    if client.try_disconnect().is_err() {
                        break;
                    }
                }
            },
            event = mqtt_events.recv() => match event {
                Some(Ok(MqttEvent::Outgoing(Outgoing::Disconnect))) if closing => break,
                Some(Ok(MqttEvent::Outgoing(outgoing))) => link.on_outgoing(outgoing),
                Some(Ok(MqttEvent::Incoming(packet))) => {
                    if let Some(message) = link.on_incoming(&client, packet) {
                        let _ = events.send(Event::Message { session: session.clone(), message });
                    }
                }
                Some(Err(error)) => {
                    failure = connection_failure(&error);
                    debug!("broker connection for {session:?} ended: {error}");
                    break;
                }
                None => break,
            },
            () = &mut idle, if !busy && !idle_reported && !closing => {
                idle_reported = true;
                let _ = events.send(Event::Idle { session: session.clone() });
            }
        }
        for (op, outcome) in link.done.drain(..) {
            let _ = events.send(Event::Done { op, outcome });
        }
    }
    poller.abort();
    commands.close();
    link.fail_all(failure);
    while let Ok(command) = commands.try_recv() {
        if let Some(op) = command.op() {
            link.done.push((op, Outcome::Failed(failure)));
        }
    }
    for (op, outcome) in link.done.drain(..) {
        let _ = events.send(Event::Done { op, outcome });
    }
    let _ = events.send(Event::LinkDown { session });
}
