//! midge against rumqttc, an MQTT 3.1.1 client library on tokio: QoS, wildcards, `$SYS`,
//! overlapping subscriptions, retained messages, persistent sessions, takeover and wills.
//!
//! Absence of a delivery is shown with a sentinel: the same publisher sends one more
//! message the subscriber does receive, and it must be the next one to arrive (midge keeps
//! one FIFO queue per session, and every publish below is acknowledged before the next).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use midge_e2e::{Midge, TIMEOUT};
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, Incoming, LastWill,
    MqttOptions, Outgoing, Publish, QoS, SubscribeReasonCode,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What the event loop task reports: a packet from midge, our DISCONNECT having been
/// sent, or the error that ended the connection.
#[derive(Debug)]
enum Report {
    Packet(Incoming),
    DisconnectSent,
    Failed(ConnectionError),
}

/// A connected rumqttc client whose event loop runs in its own task and stops at the
/// first error (rumqttc would otherwise reconnect, which would hide a closed connection).
struct Client {
    id: String,
    client: AsyncClient,
    reports: mpsc::UnboundedReceiver<Report>,
    /// Packets received while waiting for another kind.
    stash: VecDeque<Incoming>,
    event_loop: JoinHandle<()>,
    /// CONNACK's session present flag.
    session_present: bool,
}

fn options(midge: &Midge, id: &str) -> MqttOptions {
    let mut options = MqttOptions::new(id, "127.0.0.1", midge.port());
    options.set_keep_alive(Duration::from_secs(30));
    options
}

impl Client {
    /// A client with a clean session.
    async fn connect(midge: &Midge, id: &str) -> Self {
        Self::connect_with(id, options(midge, id)).await
    }

    /// A client with clean session 0.
    async fn connect_persistent(midge: &Midge, id: &str) -> Self {
        let mut options = options(midge, id);
        options.set_clean_session(false);
        Self::connect_with(id, options).await
    }

    async fn connect_with(id: &str, options: MqttOptions) -> Self {
        let (client, event_loop) = AsyncClient::new(options, 100);
        let (tx, reports) = mpsc::unbounded_channel();
        let event_loop = tokio::spawn(run_event_loop(event_loop, tx));
        let mut this = Self {
            id: id.to_owned(),
            client,
            reports,
            stash: VecDeque::new(),
            event_loop,
            session_present: false,
        };
        let connack = this.expect(|p| matches!(p, Incoming::ConnAck(_))).await;
        let Incoming::ConnAck(connack) = connack else {
            unreachable!()
        };
        assert_eq!(
            connack.code,
            ConnectReturnCode::Success,
            "{id}: {connack:?}"
        );
        this.session_present = connack.session_present;
        this
    }

    /// The next report, failing the test after [`TIMEOUT`].
    async fn next_report(&mut self) -> Report {
        match tokio::time::timeout(TIMEOUT, self.reports.recv()).await {
            Ok(Some(report)) => report,
            Ok(None) => panic!("{}: event loop ended", self.id),
            Err(_) => panic!("{}: nothing from midge within {TIMEOUT:?}", self.id),
        }
    }

    /// The first packet `wanted` accepts, stashing others that arrive before it.
    async fn expect(&mut self, wanted: impl Fn(&Incoming) -> bool) -> Incoming {
        if let Some(i) = self.stash.iter().position(&wanted) {
            return self.stash.remove(i).unwrap();
        }
        loop {
            match self.next_report().await {
                Report::Packet(p) if wanted(&p) => return p,
                Report::Packet(p) => self.stash.push_back(p),
                other => panic!("{}: connection ended: {other:?}", self.id),
            }
        }
    }

    async fn subscribe(&mut self, filter: &str, qos: QoS) {
        self.client.subscribe(filter, qos).await.unwrap();
        let Incoming::SubAck(suback) = self.expect(|p| matches!(p, Incoming::SubAck(_))).await
        else {
            unreachable!()
        };
        assert_eq!(
            suback.return_codes,
            [SubscribeReasonCode::Success(qos)],
            "{}: SUBACK for {filter}",
            self.id
        );
    }

    async fn unsubscribe(&mut self, filter: &str) {
        self.client.unsubscribe(filter).await.unwrap();
        self.expect(|p| matches!(p, Incoming::UnsubAck(_))).await;
    }

    /// Publishes and waits for the flow to complete (PUBACK; PUBREC then PUBCOMP), so midge
    /// has routed the message when this returns. QoS 0 has no acknowledgement: an
    /// UNSUBSCRIBE round trip after it stands in, as midge handles a connection's packets
    /// in order (rumqttc cannot be asked to send a PINGREQ).
    async fn publish(&mut self, topic: &str, qos: QoS, retain: bool, payload: &[u8]) {
        self.client
            .publish(topic, qos, retain, payload.to_vec())
            .await
            .unwrap();
        match qos {
            QoS::AtMostOnce => self.unsubscribe("midge-e2e/none").await,
            QoS::AtLeastOnce => {
                self.expect(|p| matches!(p, Incoming::PubAck(_))).await;
            }
            QoS::ExactlyOnce => {
                self.expect(|p| matches!(p, Incoming::PubRec(_))).await;
                self.expect(|p| matches!(p, Incoming::PubComp(_))).await;
            }
        }
    }

    async fn recv_publish(&mut self) -> Publish {
        let Incoming::Publish(p) = self.expect(|p| matches!(p, Incoming::Publish(_))).await else {
            unreachable!()
        };
        p
    }

    /// Receives publishes until one on `sentinel` and returns those before it.
    async fn publishes_until(&mut self, sentinel: &str) -> Vec<Publish> {
        let mut got = Vec::new();
        loop {
            let p = self.recv_publish().await;
            if p.topic == sentinel {
                return got;
            }
            got.push(p);
        }
    }

    /// Sends DISCONNECT and closes the socket, as a well-behaved client leaves.
    async fn disconnect(mut self, midge: &Midge) {
        let line = format!("Client {} disconnected.", self.id);
        let before = midge.log_count(&line);
        self.client.disconnect().await.unwrap();
        loop {
            match self.next_report().await {
                Report::DisconnectSent => break,
                Report::Packet(_) => {}
                Report::Failed(e) => panic!("{}: failed before DISCONNECT: {e}", self.id),
            }
        }
        self.event_loop.await.unwrap();
        let logged = tokio::task::block_in_place(|| midge.wait_for_log_count(&line, before + 1));
        assert!(logged, "midge did not log {line:?}");
    }

    /// Drops the TCP connection without DISCONNECT, as a crashed device does.
    async fn kill(self) {
        self.event_loop.abort();
        let _ = self.event_loop.await;
    }

    /// Waits for the event loop to report the connection ended by midge.
    async fn expect_closed_by_broker(&mut self) {
        let reports = &mut self.reports;
        let id = &self.id;
        let closed = tokio::time::timeout(TIMEOUT, async {
            loop {
                match reports.recv().await {
                    Some(Report::Failed(_)) | None => return,
                    Some(Report::Packet(Incoming::PingResp)) => {}
                    Some(other) => panic!("{id}: expected the connection to end, got {other:?}"),
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "{id}: connection still open after {TIMEOUT:?}"
        );
    }
}

async fn run_event_loop(mut event_loop: EventLoop, tx: mpsc::UnboundedSender<Report>) {
    loop {
        let report = match event_loop.poll().await {
            Ok(Event::Incoming(p)) => Report::Packet(p),
            Ok(Event::Outgoing(Outgoing::Disconnect)) => Report::DisconnectSent,
            Ok(Event::Outgoing(_)) => continue,
            Err(e) => Report::Failed(e),
        };
        let last = !matches!(report, Report::Packet(_));
        if tx.send(report).is_err() || last {
            return;
        }
    }
}

fn qos_from(n: u8) -> QoS {
    match n {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

fn topics(publishes: &[Publish]) -> Vec<&str> {
    publishes.iter().map(|p| p.topic.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_qos_is_the_lower_of_publish_and_subscription() {
    let midge = Midge::start();
    let mut sub = Client::connect(&midge, "qos-sub").await;
    for s in 0..=2 {
        sub.subscribe(&format!("qos/sub{s}/#"), qos_from(s)).await;
    }
    let mut publisher = Client::connect(&midge, "qos-pub").await;
    for s in 0..=2 {
        for p in 0..=2 {
            let payload = format!("s{s}p{p}");
            let topic = format!("qos/sub{s}/pub{p}");
            publisher
                .publish(&topic, qos_from(p), false, payload.as_bytes())
                .await;
        }
    }
    let mut got = BTreeMap::new();
    for _ in 0..9 {
        let p = sub.recv_publish().await;
        assert!(!p.retain && !p.dup, "{p:?}");
        assert!(
            got.insert(p.topic.clone(), (p.qos, p.payload)).is_none(),
            "{} twice",
            p.topic
        );
    }
    for s in 0..=2u8 {
        for p in 0..=2u8 {
            let (qos, payload) = &got[&format!("qos/sub{s}/pub{p}")];
            assert_eq!(
                *qos,
                qos_from(s.min(p)),
                "published at {p}, subscribed at {s}"
            );
            assert_eq!(&payload[..], format!("s{s}p{p}").as_bytes());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcards_match_levels_as_the_specification_says() {
    let midge = Midge::start();
    let filters = [
        "w/+/temp",
        "w/#",
        "+/+/temp",
        "w/+",
        "+",
        "/+",
        "w/kitchen/temp",
    ];
    let mut subs = Vec::new();
    for (i, filter) in filters.iter().enumerate() {
        let mut sub = Client::connect(&midge, &format!("wild-sub{i}")).await;
        sub.subscribe(filter, QoS::AtLeastOnce).await;
        sub.subscribe("end", QoS::AtLeastOnce).await;
        subs.push(sub);
    }
    let published = [
        "w/kitchen/temp",
        "w/hall/temp",
        "w/kitchen/humidity",
        "w",
        "w/",
        "w/kitchen",
        "x/kitchen/temp",
        "w/kitchen/temp/raw",
        "/finance",
        "a",
    ];
    let mut publisher = Client::connect(&midge, "wild-pub").await;
    for topic in published {
        publisher
            .publish(topic, QoS::AtLeastOnce, false, topic.as_bytes())
            .await;
    }
    publisher.publish("end", QoS::AtLeastOnce, false, b"").await;
    let expected: [&[&str]; 7] = [
        &["w/kitchen/temp", "w/hall/temp"],
        // Section 4.7.1.2: "w/#" also matches the parent level "w".
        &[
            "w/kitchen/temp",
            "w/hall/temp",
            "w/kitchen/humidity",
            "w",
            "w/",
            "w/kitchen",
            "w/kitchen/temp/raw",
        ],
        &["w/kitchen/temp", "w/hall/temp", "x/kitchen/temp"],
        // "+" matches an empty level too.
        &["w/", "w/kitchen"],
        &["w", "a"],
        &["/finance"],
        &["w/kitchen/temp"],
    ];
    for ((sub, filter), expected) in subs.iter_mut().zip(filters).zip(expected) {
        let got = sub.publishes_until("end").await;
        assert_eq!(topics(&got), expected, "filter {filter}");
        for p in &got {
            assert_eq!(p.payload, p.topic.as_bytes());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sys_topics_are_matched_only_by_filters_starting_with_sys() {
    let midge = Midge::start();
    // midge publishes $SYS/broker/version (retained) at start-up, as Mosquitto does.
    let mut sys = Client::connect(&midge, "sys-sys").await;
    sys.subscribe("$SYS/#", QoS::AtMostOnce).await;
    let version = sys.recv_publish().await;
    assert!(version.topic.starts_with("$SYS/broker/"), "{version:?}");
    assert!(version.retain, "{version:?}");

    // [MQTT-4.7.2-1]: wildcards at the first level do not match topics starting with '$'.
    let mut all = Client::connect(&midge, "sys-all").await;
    all.subscribe("#", QoS::AtMostOnce).await;
    let mut plus = Client::connect(&midge, "sys-plus").await;
    plus.subscribe("+/broker/version", QoS::AtMostOnce).await;
    plus.subscribe("+/broker/#", QoS::AtMostOnce).await;
    let mut publisher = Client::connect(&midge, "sys-pub").await;
    publisher
        .publish("x/broker/version", QoS::AtLeastOnce, false, b"end")
        .await;
    for sub in [&mut all, &mut plus] {
        let p = sub.recv_publish().await;
        assert_eq!(
            p.topic, "x/broker/version",
            "{}: a $SYS message was delivered",
            sub.id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_subscriptions_deliver_one_copy_at_the_highest_qos() {
    let midge = Midge::start();
    let mut sub = Client::connect(&midge, "overlap-sub").await;
    sub.subscribe("o/#", QoS::AtMostOnce).await;
    sub.subscribe("o/+", QoS::ExactlyOnce).await;
    sub.subscribe("o/a", QoS::AtLeastOnce).await;
    let mut publisher = Client::connect(&midge, "overlap-pub").await;
    publisher
        .publish("o/a", QoS::ExactlyOnce, false, b"one")
        .await;
    publisher
        .publish("o/a", QoS::AtLeastOnce, false, b"two")
        .await;
    publisher
        .publish("o/end", QoS::AtMostOnce, false, b"")
        .await;
    let got = sub.publishes_until("o/end").await;
    let got: Vec<_> = got.iter().map(|p| (&p.payload[..], p.qos)).collect();
    assert_eq!(
        got,
        [
            (&b"one"[..], QoS::ExactlyOnce),
            (&b"two"[..], QoS::AtLeastOnce)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_stops_delivery() {
    let midge = Midge::start();
    let mut sub = Client::connect(&midge, "unsub-sub").await;
    sub.subscribe("u/t", QoS::AtLeastOnce).await;
    sub.subscribe("u/end", QoS::AtLeastOnce).await;
    let mut publisher = Client::connect(&midge, "unsub-pub").await;
    publisher
        .publish("u/t", QoS::AtLeastOnce, false, b"before")
        .await;
    assert_eq!(sub.recv_publish().await.payload, "before");
    sub.unsubscribe("u/t").await;
    publisher
        .publish("u/t", QoS::AtLeastOnce, false, b"after")
        .await;
    publisher
        .publish("u/end", QoS::AtLeastOnce, false, b"")
        .await;
    assert!(sub.publishes_until("u/end").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_message_is_stored_replayed_and_cleared() {
    let midge = Midge::start();
    let mut publisher = Client::connect(&midge, "ret-pub").await;
    publisher
        .publish("r/t", QoS::AtLeastOnce, true, b"v1")
        .await;

    // Delivered on subscribe with RETAIN set, at the lower QoS.
    let mut sub = Client::connect(&midge, "ret-sub").await;
    sub.subscribe("r/#", QoS::AtMostOnce).await;
    let p = sub.recv_publish().await;
    assert_eq!(
        (p.topic.as_str(), &p.payload[..], p.retain),
        ("r/t", &b"v1"[..], true)
    );
    assert_eq!(p.qos, QoS::AtMostOnce);

    // [MQTT-3.3.1-9]: copies sent to existing subscribers carry RETAIN 0.
    publisher
        .publish("r/t", QoS::AtLeastOnce, true, b"v2")
        .await;
    let p = sub.recv_publish().await;
    assert_eq!((&p.payload[..], p.retain), (&b"v2"[..], false));

    // A later subscriber gets the newest retained message only.
    let mut late = Client::connect(&midge, "ret-late").await;
    late.subscribe("r/t", QoS::AtLeastOnce).await;
    let p = late.recv_publish().await;
    assert_eq!(
        (&p.payload[..], p.retain, p.qos),
        (&b"v2"[..], true, QoS::AtLeastOnce)
    );

    // [MQTT-3.3.1-10]/[MQTT-3.3.1-11]: an empty retained PUBLISH clears it (and is
    // forwarded to current subscribers as an ordinary empty message).
    publisher.publish("r/t", QoS::AtLeastOnce, true, b"").await;
    let p = sub.recv_publish().await;
    assert_eq!((&p.payload[..], p.retain), (&b""[..], false));
    let mut after = Client::connect(&midge, "ret-after").await;
    after.subscribe("r/#", QoS::AtLeastOnce).await;
    publisher
        .publish("r/end", QoS::AtLeastOnce, false, b"")
        .await;
    assert!(
        after.publishes_until("r/end").await.is_empty(),
        "cleared message replayed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_session_keeps_subscriptions_and_queues_qos1_while_away() {
    let midge = Midge::start();
    let mut sub = Client::connect_persistent(&midge, "persist").await;
    assert!(!sub.session_present, "no session existed yet");
    sub.subscribe("p/#", QoS::AtLeastOnce).await;
    sub.disconnect(&midge).await;

    let mut publisher = Client::connect(&midge, "persist-pub").await;
    // QoS 0 messages are not queued for an offline client (Mosquitto's default,
    // queue_qos0_messages false).
    publisher
        .publish("p/q0", QoS::AtMostOnce, false, b"lost")
        .await;
    for i in 0..3 {
        publisher
            .publish(
                &format!("p/{i}"),
                QoS::AtLeastOnce,
                false,
                format!("m{i}").as_bytes(),
            )
            .await;
    }

    let mut sub = Client::connect_persistent(&midge, "persist").await;
    assert!(
        sub.session_present,
        "[MQTT-3.2.2-2]: the session is resumed"
    );
    for i in 0..3 {
        let p = sub.recv_publish().await;
        assert_eq!(p.topic, format!("p/{i}"));
        assert_eq!(p.payload, format!("m{i}"));
        assert_eq!(p.qos, QoS::AtLeastOnce);
    }
    // The subscription itself survived too: live messages keep coming.
    publisher
        .publish("p/live", QoS::AtLeastOnce, false, b"live")
        .await;
    assert_eq!(sub.recv_publish().await.topic, "p/live");

    // Clean session 1 discards the session [MQTT-3.1.2-6].
    sub.disconnect(&midge).await;
    let clean = Client::connect(&midge, "persist").await;
    assert!(!clean.session_present);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_connection_with_the_same_id_takes_over() {
    let midge = Midge::start();
    let mut first = Client::connect(&midge, "twin").await;
    first.subscribe("twin/t", QoS::AtLeastOnce).await;
    let mut second = Client::connect(&midge, "twin").await;
    // [MQTT-3.1.4-2]: the server disconnects the existing client.
    first.expect_closed_by_broker().await;

    // The new connection works (with a clean session: no subscription was inherited).
    second.subscribe("twin/t", QoS::AtLeastOnce).await;
    let mut publisher = Client::connect(&midge, "twin-pub").await;
    publisher
        .publish("twin/t", QoS::AtLeastOnce, false, b"hi")
        .await;
    assert_eq!(second.recv_publish().await.payload, "hi");
}

fn with_will(midge: &Midge, id: &str, topic: &str) -> MqttOptions {
    let mut options = options(midge, id);
    options.set_last_will(LastWill::new(
        topic,
        format!("{id} is gone"),
        QoS::AtLeastOnce,
        false,
    ));
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_is_published_when_the_connection_drops() {
    let midge = Midge::start();
    let mut watcher = Client::connect(&midge, "will-watch").await;
    watcher.subscribe("will/#", QoS::AtLeastOnce).await;
    let device = Client::connect_with("will-dev", with_will(&midge, "will-dev", "will/dev")).await;
    device.kill().await;
    let p = watcher.recv_publish().await;
    assert_eq!(
        (p.topic.as_str(), &p.payload[..], p.qos, p.retain),
        (
            "will/dev",
            &b"will-dev is gone"[..],
            QoS::AtLeastOnce,
            false
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_is_not_published_after_disconnect() {
    let midge = Midge::start();
    let mut watcher = Client::connect(&midge, "nowill-watch").await;
    watcher.subscribe("nowill/#", QoS::AtLeastOnce).await;
    let device =
        Client::connect_with("nowill-dev", with_will(&midge, "nowill-dev", "nowill/dev")).await;
    // [MQTT-3.14.4-3]: DISCONNECT discards the will.
    device.disconnect(&midge).await;
    let mut publisher = Client::connect(&midge, "nowill-pub").await;
    publisher
        .publish("nowill/end", QoS::AtLeastOnce, false, b"")
        .await;
    assert!(
        watcher.publishes_until("nowill/end").await.is_empty(),
        "will published"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_again_replaces_the_subscription_and_resends_retained() {
    let midge = Midge::start();
    let mut publisher = Client::connect(&midge, "resub-pub").await;
    publisher
        .publish("resub/t", QoS::AtLeastOnce, true, b"kept")
        .await;
    let mut sub = Client::connect(&midge, "resub-sub").await;
    sub.subscribe("resub-end", QoS::AtMostOnce).await;
    sub.subscribe("resub/t", QoS::AtMostOnce).await;
    let p = sub.recv_publish().await;
    assert_eq!(
        (&p.payload[..], p.qos, p.retain),
        (&b"kept"[..], QoS::AtMostOnce, true)
    );

    // [MQTT-3.8.4-3]: the same filter again replaces the subscription (new QoS), and the
    // retained messages it matches are sent again.
    sub.subscribe("resub/t", QoS::AtLeastOnce).await;
    let p = sub.recv_publish().await;
    assert_eq!(
        (&p.payload[..], p.qos, p.retain),
        (&b"kept"[..], QoS::AtLeastOnce, true)
    );
    publisher
        .publish("resub/t", QoS::AtLeastOnce, false, b"live")
        .await;
    publisher
        .publish("resub-end", QoS::AtLeastOnce, false, b"")
        .await;
    let got = sub.publishes_until("resub-end").await;
    let got: Vec<_> = got.iter().map(|p| (&p.payload[..], p.qos)).collect();
    assert_eq!(
        got,
        [(&b"live"[..], QoS::AtLeastOnce)],
        "one subscription, one copy"
    );
}
