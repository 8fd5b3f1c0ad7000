//! The tokio shell: a UDP socket and the broker connections around the sans-IO engine.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::debug;

use crate::broker::{Command, Event};
use crate::engine::{Effect, Engine, Limits};
use crate::link::{self, BrokerSettings};
use crate::query::Credentials;

/// How often retransmissions and expiries are checked.
const TICK: Duration = Duration::from_millis(100);

/// The broker connections, one per set of device credentials, started on first use.
#[derive(Debug)]
struct Links {
    settings: Arc<BrokerSettings>,
    events: mpsc::UnboundedSender<Event>,
    links: HashMap<Credentials, mpsc::UnboundedSender<Command>>,
}

impl Links {
    fn dispatch(&mut self, session: Credentials, command: Command) {
        let command = match self.links.get(&session) {
            Some(link) => match link.send(command) {
                Ok(()) => return,
                // The connection ended; a new one takes over.
                Err(mpsc::error::SendError(command)) => command,
            },
            None => command,
        };
        if matches!(command, Command::Unsubscribe { .. }) {
            // Its subscriptions ended with the old connection.
            return;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        // Queued before the connection starts: it may fail and close its channel at once,
        // and then it answers what it found queued.
        let _ = tx.send(command);
        tokio::spawn(link::run(
            session.clone(),
            self.settings.clone(),
            rx,
            self.events.clone(),
        ));
        self.links.insert(session, tx);
    }

    /// Keeps the map of connections current; `false` for a stale `LinkDown`, which the
    /// engine must not see: it comes from a connection already replaced, and the relations
    /// of the session now live on the new one.
    fn on_event(&mut self, event: &Event) -> bool {
        match event {
            // Dropping the sender lets the connection finish what it has and close.
            Event::Idle { session } => {
                self.links.remove(session);
                true
            }
            Event::LinkDown { session } => match self.links.get(session) {
                Some(link) if !link.is_closed() => false,
                Some(_) => {
                    self.links.remove(session);
                    true
                }
                None => true,
            },
            _ => true,
        }
    }
}

/// Serves CoAP on `socket` until `shutdown` completes.
pub async fn serve(
    socket: UdpSocket,
    settings: BrokerSettings,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let mut engine = Engine::new(limits);
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let mut links = Links {
        settings: Arc::new(settings),
        events: events_tx,
        links: HashMap::new(),
    };
    let mut buf = vec![0u8; 65_536];
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, peer)) => engine.on_datagram(peer, &buf[..n], Instant::now()),
                // ICMP errors for earlier sends surface here on some systems: not fatal.
                Err(e) => debug!("UDP receive: {e}"),
            },
            Some(event) = events.recv() => {
                if links.on_event(&event) {
                    engine.on_broker(event, Instant::now());
                }
            }
            _ = tick.tick() => engine.on_tick(Instant::now()),
        }
        for effect in engine.take_effects() {
            match effect {
                Effect::Send { to, bytes } => {
                    if let Err(e) = socket.send_to(&bytes, to).await {
                        debug!("UDP send to {to}: {e}");
                    }
                }
                Effect::Broker { session, command } => links.dispatch(session, command),
            }
        }
    }
}
