//! The network shell: listeners, and one task per connection moving bytes between the
//! socket and its [`Connection`].
//!
//! Reads go into one scratch buffer per worker thread; a connection keeps bytes only for a
//! packet that arrived in part, sized to that packet. Output is gathered in the
//! connection's buffer while packets are handled and written with one call, then freed.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use midge_wire::{DecodeOptions, Decoded, ReasonCode, decode};
use rustls::ServerConnection;
use tokio::io::AsyncWriteExt;
use tokio::io::Ready;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, sleep_until};
use tracing::{error, info, warn};

use crate::broker::Broker;
use crate::config::{CertificateIdentity, CoapGateway, Config, Listener, Security};
use crate::connection::{Closing, Connection, OUT_HIGH_WATER, PasswordCheck};
use crate::keep_alive::Deadlines;
use crate::persist::{self, DataDir, Durability, Store, Tuning};
use crate::rate_limit::{Admission, ConnectionRate};
use crate::security::access::ListenerAccess;
use crate::signal::Raised;
use crate::tls::{TlsAcceptor, certificate_username};

const SCRATCH_SIZE: usize = 64 * 1024;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_SIZE].into_boxed_slice());
    /// Decrypted bytes of TLS connections (rustls keeps at most a record's worth).
    static PLAINTEXT: RefCell<Box<[u8]>> = RefCell::new(vec![0; 16 * 1024].into_boxed_slice());
}

#[derive(Debug)]
pub struct Server {
    broker: Arc<Broker>,
    listeners: Vec<Bound>,
    sys_interval: std::time::Duration,
    /// The CoAP gateway to run beside the listeners, its broker address resolved.
    coap: Option<midge_gateway::GatewayConfig>,
}

impl Server {
    /// Binds every listener of `config`. An address that cannot be bound is an error
    /// naming it, except a loopback address of a family the host lacks (no IPv6).
    pub async fn bind(config: &Config) -> io::Result<Self> {
        let mut listeners = Vec::new();
        // Listeners with the same settings share their loaded files.
        let mut accesses: Vec<(&Security, Arc<ListenerAccess>)> = Vec::new();
        for listener in &config.listeners {
            let access = match accesses.iter().find(|(s, _)| **s == listener.security) {
                Some((_, access)) => Arc::clone(access),
                None => {
                    let access = ListenerAccess::load(&listener.security)
                        .map(Arc::new)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    accesses.push((&listener.security, Arc::clone(&access)));
                    access
                }
            };
            let tls = match &listener.tls {
                Some(settings) => {
                    Some(Arc::new(TlsAcceptor::load(settings).map_err(|e| {
                        io::Error::new(io::ErrorKind::InvalidData, e)
                    })?))
                }
                None => None,
            };
            match bind_one(listener.addr) {
                Ok(socket) => listeners.push(Bound {
                    socket,
                    listener: listener.clone(),
                    access,
                    tls,
                }),
                Err(e) if listener.addr.is_ipv6() && listener.addr.ip().is_loopback() => {
                    warn!("not listening on {}: {e}", listener.addr);
                }
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot listen on {}: {e}", listener.addr),
                    ));
                }
            }
        }
        if listeners.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                "no listener could be bound",
            ));
        }
        let coap = config
            .coap
            .as_ref()
            .map(|coap| coap_config(coap, &listeners))
            .transpose()?;
        let broker = open_broker(config)?;
        Ok(Self {
            broker,
            listeners,
            sys_interval: config.sys_interval,
            coap,
        })
    }

    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|b| b.socket.local_addr().ok())
            .collect()
    }

    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// Serves until `shutdown` completes, then closes every connection and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let expiry = tokio::spawn(expire_sessions(Arc::clone(&self.broker)));
        let sys = (!self.sys_interval.is_zero())
            .then(|| tokio::spawn(crate::sys::run(Arc::clone(&self.broker), self.sys_interval)));
        // `listener 1883` is two sockets (0.0.0.0 and ::) but one listener to its user, so
        // the two share one max_connections count.
        let mut any_address_counts: HashMap<u16, Arc<AtomicUsize>> = HashMap::new();
        let mut accesses: Vec<Arc<ListenerAccess>> = Vec::new();
        let rate = Arc::new(ConnectionRate::new(self.broker.limits.connection_rate));
        let deadlines = Arc::new(Deadlines::default());
        let sweeper = tokio::spawn(Arc::clone(&deadlines).run());
        let mut acceptors: Vec<Arc<TlsAcceptor>> = Vec::new();
        for bound in self.listeners {
            if !accesses.iter().any(|a| Arc::ptr_eq(a, &bound.access)) {
                accesses.push(Arc::clone(&bound.access));
            }
            acceptors.extend(bound.tls.iter().cloned());
            let addr = bound.listener.addr;
            let open = if addr.ip().is_unspecified() {
                Arc::clone(any_address_counts.entry(addr.port()).or_default())
            } else {
                Arc::default()
            };
            tokio::spawn(accept_loop(
                Arc::clone(&self.broker),
                bound,
                open,
                Arc::clone(&rate),
                Arc::clone(&deadlines),
                stop_rx.clone(),
            ));
        }
        let reloads = tokio::spawn(reload_on_sighup(
            Arc::clone(&self.broker),
            accesses,
            acceptors,
        ));
        let coap = self.coap.map(|config| {
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                let stopped = async move {
                    let _ = stop.changed().await;
                };
                if let Err(e) = midge_gateway::run(config, stopped).await {
                    error!("CoAP gateway: {e}");
                }
            })
        });
        shutdown.await;
        reloads.abort();
        info!("shutting down");
        let _ = stop_tx.send(true);
        self.broker.raise_all(Raised::ShuttingDown);
        expiry.abort();
        sweeper.abort();
        if let Some(sys) = sys {
            sys.abort();
        }
        // Give connections a moment to send their DISCONNECTs and release sessions.
        let deadline = Instant::now() + std::time::Duration::from_secs(2);
        while self.broker.stats.clients_connected.load(Ordering::Relaxed) > 0
            && Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        if let Some(coap) = coap {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), coap).await;
        }
        if let Some(store) = self.broker.store() {
            store.close();
        }
    }
}

/// The gateway's settings, connecting to this broker's first listener without TLS unless
/// its `broker` was given, once its UDP address is known to be free (a port in use is an
/// error at start, as for MQTT listeners).
fn coap_config(
    coap: &CoapGateway,
    listeners: &[Bound],
) -> io::Result<midge_gateway::GatewayConfig> {
    let mut config = coap.config.clone();
    if !coap.broker_given {
        let plain = listeners
            .iter()
            .filter(|b| b.tls.is_none())
            .find_map(|b| b.socket.local_addr().ok())
            .ok_or_else(|| {
                io::Error::other(
                    "the [coap] gateway needs `broker` (HOST:PORT) when every listener uses TLS",
                )
            })?;
        let ip = match plain.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => Ipv4Addr::LOCALHOST.into(),
            IpAddr::V6(ip) if ip.is_unspecified() => Ipv6Addr::LOCALHOST.into(),
            ip => ip,
        };
        config.broker = SocketAddr::new(ip, plain.port()).to_string();
    }
    std::net::UdpSocket::bind(config.listen).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot serve CoAP on udp {}: {e}", config.listen),
        )
    })?;
    Ok(config)
}

/// The broker, with what the data directory holds restored, unless persistence is off.
fn open_broker(config: &Config) -> io::Result<Arc<Broker>> {
    let broker = Broker::new(config.limits.clone());
    if config.persistence == Durability::Off {
        return Ok(Arc::new(broker));
    }
    let path = config.data_dir.clone().unwrap_or_else(persist::default_dir);
    let dir = DataDir::open(&path).map_err(io::Error::other)?;
    let (store, state) = Store::open(dir, config.persistence, Tuning::default()).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot recover the state in {}: {e}", path.display()),
        )
    })?;
    let broker = Arc::new(broker.with_store(store.clone()));
    crate::restore::restore(&broker, &store, state);
    Ok(broker)
}

/// Reads the password, ACL and TLS certificate files again on SIGHUP (`systemctl
/// reload`). A file that fails to load leaves what was in force as it was. Connected
/// clients keep the ACL and TLS session they connected with until they reconnect.
async fn reload_on_sighup(
    broker: Arc<Broker>,
    accesses: Vec<Arc<ListenerAccess>>,
    acceptors: Vec<Arc<TlsAcceptor>>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        warn!("cannot watch SIGHUP: configuration files will not be reloaded");
        return;
    };
    while hangups.recv().await.is_some() {
        crate::systemd::reloading();
        let mut reloaded = false;
        for access in &accesses {
            match access.reload() {
                Ok(()) => {
                    info!("reloaded password and ACL files");
                    reloaded = true;
                }
                Err(e) => error!("{e}; keeping the rules in force"),
            }
        }
        if reloaded {
            // Clients that authenticated with a password check it again.
            broker.raise_all(Raised::Reloaded);
        }
        for acceptor in &acceptors {
            match acceptor.reload() {
                Ok(()) => info!("reloaded TLS certificates"),
                Err(e) => error!("{e}; keeping the certificates in use"),
            }
        }
        crate::systemd::ready();
    }
}

/// Ends sessions whose expiry interval passed while disconnected, and publishes wills
/// whose delay passed. New deadlines are whole seconds away, so waking at least once a
/// second is late by under a second at most.
async fn expire_sessions(broker: Arc<Broker>) {
    loop {
        let now = Instant::now();
        broker.publish_due_wills(now.into_std());
        let next = broker.expire_sessions(now.into_std());
        let wake = next.map_or(now + Duration::from_secs(1), |at| {
            Instant::from_std(at).min(now + Duration::from_secs(1))
        });
        sleep_until(wake).await;
    }
}

/// Binds one listening socket. IPv6 sockets are IPv6-only, so `0.0.0.0:P` and `[::]:P`
/// can both be bound as Mosquitto does, and SO_REUSEADDR lets a restarted broker bind at
/// once while old connections linger in TIME_WAIT.
fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

async fn accept_loop(
    broker: Arc<Broker>,
    bound: Bound,
    open: Arc<AtomicUsize>,
    rate: Arc<ConnectionRate>,
    deadlines: Arc<Deadlines>,
    mut stop: watch::Receiver<bool>,
) {
    let Bound {
        socket,
        listener,
        access,
        tls,
    } = bound;
    loop {
        let accepted = tokio::select! {
            a = socket.accept() => a,
            _ = stop.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                if let Admission::Refused { first } =
                    rate.admit(peer.ip(), std::time::Instant::now())
                {
                    if first {
                        warn!(
                            "Connections from {} refused: over connection_rate.",
                            peer.ip()
                        );
                    }
                    continue; // dropping the stream closes it
                }
                if listener
                    .max_connections
                    .is_some_and(|max| open.load(Ordering::Relaxed) >= max)
                {
                    warn!(
                        "Client connection from {peer} denied: max_connections reached on {}.",
                        listener.addr
                    );
                    drop(stream);
                    continue;
                }
                info!(
                    "New connection from {peer} on port {}.",
                    listener.addr.port()
                );
                let guard = ConnectionSlot::take(&open);
                let allow_anonymous = listener
                    .security
                    .allow_anonymous
                    .unwrap_or(peer.ip().is_loopback());
                let session = match tls.as_deref().map(TlsAcceptor::accept).transpose() {
                    Ok(session) => session.map(|session| {
                        Box::new(TlsSession {
                            identity: tls
                                .as_deref()
                                .map_or(CertificateIdentity::None, TlsAcceptor::identity),
                            session,
                            named: false,
                        })
                    }),
                    Err(e) => {
                        error!("TLS on {}: {e}", listener.addr);
                        continue;
                    }
                };
                let conn = Connection::new(Arc::clone(&broker), peer, allow_anonymous)
                    .with_access(Arc::clone(&access));
                tokio::spawn(serve(stream, conn, session, guard, &deadlines));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!("accept on {} failed: {e}", listener.addr);
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// A bound listening socket with what its connections need.
#[derive(Debug)]
struct Bound {
    socket: TcpListener,
    listener: Listener,
    access: Arc<ListenerAccess>,
    tls: Option<Arc<TlsAcceptor>>,
}

/// One open connection counted against its listener's `max_connections`.
struct ConnectionSlot(Arc<AtomicUsize>);

impl ConnectionSlot {
    fn take(open: &Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(open))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

enum Event {
    Ready(io::Result<Ready>),
    Signal,
}

/// Serves one connection until it closes. (A plain function returning an `async move`
/// block rather than an `async fn`: an `async fn` keeps its arguments twice in its state,
/// once as passed and once as moved into its body, and this state is what every idle
/// connection costs. For the same reason it waits on three futures only: the socket, the
/// connection's [`Signal`]; its timeouts are swept by [`Deadlines`].)
#[allow(clippy::manual_async_fn)]
fn serve(
    stream: TcpStream,
    mut conn: Connection,
    mut tls: Option<Box<TlsSession>>,
    slot: ConnectionSlot,
    deadlines: &Deadlines,
) -> impl Future<Output = ()> + use<> {
    deadlines.watch(&conn.signal);
    async move {
        let _slot = &slot; // released when the task ends
        let _ = stream.set_nodelay(true);
        let broker = Arc::clone(conn.broker());
        let signal = Arc::clone(&conn.signal);
        let mut partial = BytesMut::new();
        let accepted = std::time::Instant::now();
        let mut last_read = accepted;
        // Deliveries wait while the output is full: sent once it drains.
        let mut deferred = false;
        let closing = loop {
            // Keep-alive counts from the last byte read; the connect timeout from accept, so
            // a CONNECT trickled in a byte at a time still runs out of time.
            let since = if conn.session().is_some() {
                last_read
            } else {
                accepted
            };
            signal.set_deadline(conn.idle_timeout().map(|t| since + t));
            let pending_out =
                !conn.out.is_empty() || tls.as_ref().is_some_and(|t| t.session.wants_write());
            // Reading stops while the output is over its high-water mark: a client that
            // does not read is not given more to hold here.
            let readable = conn.out.len() < OUT_HIGH_WATER;
            let event = tokio::select! {
                r = ready(&stream, readable, pending_out) => Event::Ready(r),
                () = signal.wait() => Event::Signal,
            };
            let step = match event {
                Event::Ready(Err(e)) => Err(Closing::SocketError(e)),
                Event::Ready(Ok(ready)) if ready.is_readable() => {
                    match read_packets(&stream, &mut conn, &mut partial, tls.as_deref_mut()) {
                        Ok(got_bytes) => {
                            if got_bytes {
                                last_read = std::time::Instant::now();
                            }
                            match conn.take_password_check() {
                                Some(check) => {
                                    Box::pin(check_password(&mut conn, check, &mut partial)).await
                                }
                                None => Ok(()),
                            }
                            // Acknowledgements may have opened the in-flight window.
                            .map(|()| send_queued(&mut conn, &mut deferred))
                        }
                        Err(closing) => Err(closing),
                    }
                }
                Event::Ready(Ok(_)) => Ok(()), // writable: flushed below
                Event::Signal => {
                    let raised = signal.take();
                    if raised.contains(Raised::TakenOver) {
                        Err(Closing::TakenOver)
                    } else if raised.contains(Raised::ShuttingDown) {
                        Err(Closing::ShuttingDown)
                    } else if raised.contains(Raised::Idle)
                        && signal.is_past_deadline(std::time::Instant::now())
                    {
                        Err(conn.idle_closing())
                    } else {
                        let rechecked = match conn.recheck_password() {
                            Some(check) if raised.contains(Raised::Reloaded) => {
                                Box::pin(check_password(&mut conn, check, &mut partial)).await
                            }
                            _ => Ok(()),
                        };
                        send_queued(&mut conn, &mut deferred);
                        rechecked
                    }
                }
            };
            // Acknowledgements go out once what they acknowledge is on disk, also those
            // answered before a later packet closes the connection.
            let unsynced = persist::take_unsynced();
            if unsynced != 0
                && let Some(store) = broker.store()
            {
                // Boxed: this state is the largest of the task's otherwise, and every idle
                // connection's task is as large as its largest state.
                Box::pin(store.wait_durable(unsynced)).await;
            }
            if let Err(closing) = step {
                break closing;
            }
            let flushed = match &mut tls {
                None => try_flush(&stream, &mut conn.out, &broker),
                Some(tls) => tls.flush(&stream, &mut conn.out, &broker),
            };
            if let Err(e) = flushed {
                break Closing::SocketError(e);
            }
            if deferred && conn.out.len() < OUT_HIGH_WATER {
                deferred = false;
                signal.wake();
            }
        };
        conn.on_close(&closing);
        // Last words (CONNACK refusal, MQTT 5 DISCONNECT, TLS close_notify or alert), if the
        // client is still reading.
        let mut stream = stream;
        let last_words = async {
            match &mut tls {
                None if !conn.out.is_empty() => stream.write_all(&conn.out).await?,
                None => {}
                Some(tls) => {
                    tls.session.send_close_notify();
                    loop {
                        tls.flush(&stream, &mut conn.out, &broker)?;
                        if conn.out.is_empty() && !tls.session.wants_write() {
                            break;
                        }
                        stream.writable().await?;
                    }
                }
            }
            stream.shutdown().await
        };
        let _ = Box::pin(tokio::time::timeout(
            std::time::Duration::from_secs(1),
            last_words,
        ))
        .await;
    }
}

/// Encodes what the session has queued while the output takes more. If it fills up,
/// `deferred` says to come back once it has drained: nothing else would, as the wake-up
/// for those deliveries has been used.
fn send_queued(conn: &mut Connection, deferred: &mut bool) {
    if conn.out.len() < OUT_HIGH_WATER {
        conn.send_queued();
    }
    *deferred = conn.out.len() >= OUT_HIGH_WATER;
}

/// Reads what the socket has into the worker's scratch buffer and handles every whole
/// packet in it (decrypting first on a TLS listener). `Ok(false)` when the readiness was
/// spurious.
fn read_packets(
    stream: &TcpStream,
    conn: &mut Connection,
    partial: &mut BytesMut,
    tls: Option<&mut TlsSession>,
) -> Result<bool, Closing> {
    SCRATCH.with_borrow_mut(|scratch| {
        let n = match stream.try_read(scratch) {
            Ok(0) => return Err(Closing::ConnectionLost),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(Closing::SocketError(e)),
        };
        conn.broker()
            .stats
            .bytes_received
            .fetch_add(n as u64, Ordering::Relaxed);
        match tls {
            None => feed(conn, partial, &scratch[..n])?,
            Some(tls) => tls.read(conn, partial, &scratch[..n])?,
        }
        Ok(true)
    })
}

/// Hands bytes of the MQTT stream to the connection, keeping a packet that is not
/// complete yet in `partial`.
fn feed(conn: &mut Connection, partial: &mut BytesMut, bytes: &[u8]) -> Result<(), Closing> {
    if partial.is_empty() {
        let (used, frame_len) = handle_packets(conn, bytes)?;
        if used < bytes.len() {
            partial.reserve(reservation(frame_len, bytes.len() - used));
            partial.extend_from_slice(&bytes[used..]);
        }
    } else {
        partial.extend_from_slice(bytes);
        let (used, frame_len) = handle_packets(conn, partial)?;
        partial.advance(used);
        if partial.is_empty() {
            *partial = BytesMut::new(); // give the memory back while idle
        } else {
            let missing = frame_len.map(|len| len.saturating_sub(partial.len()));
            partial.reserve(reservation(missing, 0));
        }
    }
    Ok(())
}

/// A connection's TLS session: rustls' sans-IO state, fed from the socket by the shell.
struct TlsSession {
    session: ServerConnection,
    identity: CertificateIdentity,
    /// The client certificate's user name was handed to the connection.
    named: bool,
}

impl TlsSession {
    /// Decrypts `raw` and feeds the plaintext to the connection.
    fn read(
        &mut self,
        conn: &mut Connection,
        partial: &mut BytesMut,
        mut raw: &[u8],
    ) -> Result<(), Closing> {
        PLAINTEXT.with_borrow_mut(|plain| {
            while !raw.is_empty() {
                self.session
                    .read_tls(&mut raw)
                    .map_err(Closing::SocketError)?;
                self.session.process_new_packets().map_err(Closing::Tls)?;
                if !self.named && !self.session.is_handshaking() {
                    // Before any MQTT byte: CONNECT is judged with the certificate's name.
                    self.named = true;
                    if self.identity != CertificateIdentity::None {
                        conn.set_certificate_username(certificate_username(
                            &self.session,
                            self.identity,
                        ));
                    }
                }
                loop {
                    match self.session.reader().read(plain) {
                        Ok(0) => return Err(Closing::ConnectionLost), // close_notify
                        Ok(k) => feed(conn, partial, &plain[..k])?,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(Closing::SocketError(e)),
                    }
                }
            }
            Ok(())
        })
    }

    /// Moves output into rustls and records to the socket, as far as both take it now.
    fn flush(&mut self, stream: &TcpStream, out: &mut BytesMut, broker: &Broker) -> io::Result<()> {
        loop {
            let mut progress = false;
            if !out.is_empty() {
                let n = self.session.writer().write(out)?;
                out.advance(n);
                progress |= n > 0;
            }
            while self.session.wants_write() {
                match self.session.write_tls(&mut SocketWriter(stream)) {
                    Ok(n) => {
                        broker
                            .stats
                            .bytes_sent
                            .fetch_add(n as u64, Ordering::Relaxed);
                        progress |= n > 0;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
            if !progress || (out.is_empty() && !self.session.wants_write()) {
                break;
            }
        }
        if out.is_empty() {
            *out = BytesMut::new();
        }
        Ok(())
    }
}

/// `Write` over a non-blocking socket, for rustls' `write_tls`.
struct SocketWriter<'a>(&'a TcpStream);

impl Write for SocketWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Room to make for the rest of a partial packet: what its header announces, but never
/// more than one scratch buffer ahead of the bytes actually received, so a header claiming
/// 256 MiB costs nothing until the bytes come (growth is then amortised by `BytesMut`).
fn reservation(announced: Option<usize>, at_least: usize) -> usize {
    announced.unwrap_or(0).min(SCRATCH_SIZE).max(at_least)
}

/// Decodes and handles packets from `buf`; returns the bytes used and, if a packet is
/// left incomplete, its length when known.
fn handle_packets(conn: &mut Connection, buf: &[u8]) -> Result<(usize, Option<usize>), Closing> {
    let mut used = 0;
    loop {
        if conn.is_waiting() {
            // CONNECT's password is being checked: what follows waits its turn.
            return Ok((used, None));
        }
        let opts = DecodeOptions {
            version: conn.version(),
            max_packet_size: conn.broker().limits.max_packet_size,
        };
        match decode(&buf[used..], &opts) {
            Ok(Decoded::Complete { packet, len }) => {
                used += len;
                conn.broker()
                    .stats
                    .messages_received
                    .fetch_add(1, Ordering::Relaxed);
                conn.on_packet(packet)?;
            }
            Ok(Decoded::Incomplete { frame_len }) => return Ok((used, frame_len)),
            Err(e) => return Err(conn.on_decode_error(e)),
        }
    }
}

/// Runs a password check on the blocking pool, at most one per core at a time (argon2
/// takes tens of milliseconds and megabytes on a small board; on the async workers it
/// would stall every other client), then handles what the client sent after CONNECT
/// meanwhile. Also used to check a connected client again after a reload.
async fn check_password(
    conn: &mut Connection,
    check: PasswordCheck,
    partial: &mut BytesMut,
) -> Result<(), Closing> {
    static CHECKS: OnceLock<Semaphore> = OnceLock::new();
    let checks = CHECKS.get_or_init(|| {
        Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    });
    let valid = match checks.acquire().await {
        Ok(_permit) => {
            let checked = tokio::task::spawn_blocking(move || {
                let valid = check.run();
                (check, valid)
            });
            checked.await.ok()
        }
        Err(_) => None, // the semaphore is never closed
    };
    let Some((check, valid)) = valid else {
        return Err(Closing::protocol(
            ReasonCode::ImplementationSpecificError,
            "password check failed",
        ));
    };
    conn.on_password_checked(check, valid)?;
    if !partial.is_empty() {
        let (used, _) = handle_packets(conn, partial)?;
        partial.advance(used);
    }
    Ok(())
}

/// Writes as much pending output as the socket takes now, without waiting.
fn try_flush(stream: &TcpStream, out: &mut BytesMut, broker: &Broker) -> io::Result<()> {
    while !out.is_empty() {
        match stream.try_write(out) {
            Ok(n) => {
                broker
                    .stats
                    .bytes_sent
                    .fetch_add(n as u64, Ordering::Relaxed);
                out.advance(n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    *out = BytesMut::new(); // nothing is kept per connection between writes
    Ok(())
}

/// The socket's readiness for what is asked. Polled rather than awaited through
/// `TcpStream::ready`, whose future carries a waiter node: the socket keeps the waker.
fn ready(stream: &TcpStream, read: bool, write: bool) -> impl Future<Output = io::Result<Ready>> {
    std::future::poll_fn(move |cx| {
        let mut ready = Ready::EMPTY;
        if read && let Poll::Ready(r) = stream.poll_read_ready(cx) {
            r?;
            ready |= Ready::READABLE;
        }
        if write && let Poll::Ready(r) = stream.poll_write_ready(cx) {
            r?;
            ready |= Ready::WRITABLE;
        }
        if ready.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(Ok(ready))
        }
    })
}
