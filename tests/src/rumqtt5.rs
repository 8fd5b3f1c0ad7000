//! rumqttc's MQTT 5 client (`rumqttc::v5`) driven step by step: each call waits for the
//! packet that completes it, so tests read as the exchange they make.

use std::collections::VecDeque;
use std::time::Duration;

use rumqttc::Outgoing;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{
    ConnAck, ConnectReturnCode, Filter, Packet, PubAckReason, PubRecReason, Publish,
    PublishProperties, SubscribeProperties, SubscribeReasonCode,
};
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{Midge, TIMEOUT};

/// What the event loop task reports: a packet from midge, a packet it sent, or the error
/// that ended the connection.
#[derive(Debug)]
pub enum Report {
    Packet(Box<Packet>),
    Sent(Outgoing),
    Failed(ConnectionError),
}

/// A connected rumqttc MQTT 5 client whose event loop runs in its own task and stops at
/// the first error (rumqttc would otherwise reconnect and hide a closed connection).
#[derive(Debug)]
pub struct Client5 {
    pub id: String,
    pub client: AsyncClient,
    reports: mpsc::UnboundedReceiver<Report>,
    /// Packets received while waiting for another kind.
    stash: VecDeque<Packet>,
    event_loop: JoinHandle<()>,
    pub connack: ConnAck,
}

/// Options for client `id` on `midge`: MQTT 5, clean start, keep-alive 30 s.
pub fn options(midge: &Midge, id: &str) -> MqttOptions {
    let mut options = MqttOptions::new(id, "127.0.0.1", midge.port());
    options.set_keep_alive(Duration::from_secs(30));
    options
}

async fn run_event_loop(mut event_loop: EventLoop, tx: mpsc::UnboundedSender<Report>) {
    loop {
        let report = match event_loop.poll().await {
            Ok(Event::Incoming(packet)) => Report::Packet(Box::new(packet)),
            Ok(Event::Outgoing(outgoing)) => Report::Sent(outgoing),
            Err(e) => {
                let _ = tx.send(Report::Failed(e));
                return;
            }
        };
        if tx.send(report).is_err() {
            return;
        }
    }
}

impl Client5 {
    /// A client with clean start and no properties.
    pub async fn connect(midge: &Midge, id: &str) -> Self {
        Self::connect_with(options(midge, id)).await
    }

    /// Connects with `options` and checks CONNACK says Success.
    pub async fn connect_with(options: MqttOptions) -> Self {
        let id = options.client_id();
        match Self::try_connect(options).await {
            Ok(client) => client,
            Err(e) => panic!("{id} could not connect: {e:?}"),
        }
    }

    /// Connects with `options`; the error ends the attempt (a refusing CONNACK is
    /// `ConnectionRefused`).
    pub async fn try_connect(options: MqttOptions) -> Result<Self, ConnectionError> {
        let id = options.client_id();
        let (client, event_loop) = AsyncClient::new(options, 100);
        let (tx, mut reports) = mpsc::unbounded_channel();
        let event_loop = tokio::spawn(run_event_loop(event_loop, tx));
        let report = tokio::time::timeout(TIMEOUT, reports.recv())
            .await
            .unwrap_or_else(|_| panic!("{id}: no CONNACK within {TIMEOUT:?}"))
            .unwrap_or_else(|| panic!("{id}: event loop ended"));
        match report {
            Report::Packet(packet) => match *packet {
                Packet::ConnAck(connack) => {
                    assert_eq!(connack.code, ConnectReturnCode::Success, "{id}");
                    Ok(Self {
                        id,
                        client,
                        reports,
                        stash: VecDeque::new(),
                        event_loop,
                        connack,
                    })
                }
                other => panic!("{id}: {other:?} before CONNACK"),
            },
            Report::Failed(e) => Err(e),
            other => panic!("{id}: {other:?} before CONNACK"),
        }
    }

    /// The next report, failing the test after [`TIMEOUT`].
    pub async fn next_report(&mut self) -> Report {
        match tokio::time::timeout(TIMEOUT, self.reports.recv()).await {
            Ok(Some(report)) => report,
            Ok(None) => panic!("{}: event loop ended", self.id),
            Err(_) => panic!("{}: nothing from midge within {TIMEOUT:?}", self.id),
        }
    }

    /// The first packet (stashed or new) for which `wanted` holds; others are stashed.
    pub async fn expect(&mut self, wanted: impl Fn(&Packet) -> bool) -> Packet {
        if let Some(i) = self.stash.iter().position(&wanted) {
            return self.stash.remove(i).unwrap();
        }
        loop {
            match self.next_report().await {
                Report::Packet(p) if wanted(&p) => return *p,
                Report::Packet(p) => self.stash.push_back(*p),
                Report::Sent(_) => {}
                Report::Failed(e) => panic!("{}: connection failed: {e:?}", self.id),
            }
        }
    }

    /// The error that ends the connection, skipping packets until then.
    pub async fn failure(&mut self) -> ConnectionError {
        loop {
            match self.next_report().await {
                Report::Failed(e) => return e,
                Report::Packet(p) => self.stash.push_back(*p),
                Report::Sent(_) => {}
            }
        }
    }

    /// Subscribes with the options of `filter` and SUBSCRIBE `properties`; returns the
    /// SUBACK's reason codes.
    pub async fn subscribe_filter(
        &mut self,
        filter: Filter,
        properties: Option<SubscribeProperties>,
    ) -> Vec<SubscribeReasonCode> {
        match properties {
            Some(p) => {
                self.client
                    .subscribe_many_with_properties([filter], p)
                    .await
            }
            None => self.client.subscribe_many([filter]).await,
        }
        .expect("queue SUBSCRIBE");
        match self.expect(|p| matches!(p, Packet::SubAck(_))).await {
            Packet::SubAck(suback) => suback.return_codes,
            _ => unreachable!(),
        }
    }

    /// Subscribes to one filter and checks the SUBACK grants `qos`.
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) {
        let codes = self.subscribe_filter(Filter::new(filter, qos), None).await;
        assert_eq!(
            codes,
            [SubscribeReasonCode::Success(qos)],
            "SUBACK for {filter}"
        );
    }

    /// Publishes at QoS 1 and returns the PUBACK's reason.
    pub async fn publish_qos1(
        &mut self,
        topic: &str,
        retain: bool,
        payload: &[u8],
        properties: PublishProperties,
    ) -> PubAckReason {
        self.client
            .publish_with_properties(
                topic,
                QoS::AtLeastOnce,
                retain,
                payload.to_vec(),
                properties,
            )
            .await
            .expect("queue PUBLISH");
        match self.expect(|p| matches!(p, Packet::PubAck(_))).await {
            Packet::PubAck(ack) => ack.reason,
            _ => unreachable!(),
        }
    }

    /// Publishes at QoS 2, waits for PUBCOMP and returns the PUBREC's reason.
    pub async fn publish_qos2(&mut self, topic: &str, payload: &[u8]) -> PubRecReason {
        self.client
            .publish(topic, QoS::ExactlyOnce, false, payload.to_vec())
            .await
            .expect("queue PUBLISH");
        let reason = match self.expect(|p| matches!(p, Packet::PubRec(_))).await {
            Packet::PubRec(rec) => rec.reason,
            _ => unreachable!(),
        };
        self.expect(|p| matches!(p, Packet::PubComp(_))).await;
        reason
    }

    /// The next PUBLISH from midge.
    pub async fn recv_publish(&mut self) -> Publish {
        match self.expect(|p| matches!(p, Packet::Publish(_))).await {
            Packet::Publish(p) => p,
            _ => unreachable!(),
        }
    }

    /// Sends DISCONNECT (normal disconnection) and waits until rumqttc has sent it.
    pub async fn disconnect(mut self) {
        self.client.disconnect().await.expect("queue DISCONNECT");
        loop {
            match self.next_report().await {
                Report::Sent(Outgoing::Disconnect) | Report::Failed(_) => break,
                _ => {}
            }
        }
        self.event_loop.abort();
    }

    /// Ends the connection without DISCONNECT, as a device losing power does: the event
    /// loop task and its socket are dropped.
    pub async fn kill(mut self) {
        self.event_loop.abort();
        let _ = (&mut self.event_loop).await;
    }
}

impl Drop for Client5 {
    fn drop(&mut self) {
        self.event_loop.abort();
    }
}
