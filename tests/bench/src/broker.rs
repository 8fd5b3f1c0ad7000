//! Starting the brokers under test: midge and Mosquitto, each with a generated
//! configuration on a loopback port of its own, a fresh process for every run.

use std::fmt;
use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::mqtt::Client;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Midge,
    Mosquitto,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Midge => "midge",
            Kind::Mosquitto => "mosquitto",
        })
    }
}

/// Per-client limits both brokers get: queues large enough that nothing is dropped for
/// lack of room (the generator bounds what is outstanding; only the slow-subscriber
/// scenario sets a smaller queue), and a QoS 1 window wide enough not to throttle a fast
/// subscriber.
pub const MAX_INFLIGHT: u32 = 1000;
pub const MAX_QUEUED: u32 = 1_000_000;

/// How to start one broker.
#[derive(Debug, Clone)]
pub struct Spec {
    pub kind: Kind,
    pub bin: PathBuf,
    /// Run it on this core only (`taskset -c`).
    pub core: Option<usize>,
}

/// The configuration file for `kind` listening on `port`, with `max_queued` as
/// `max_queued_messages`. Without persistence, `persistence_off` adds midge's
/// `persistence = "off"` (Mosquitto runs with `persistence false`). With it (`persist_in`,
/// Mosquitto's directory; midge gets `--data-dir`), midge runs `sync` and Mosquitto
/// `persistence true` with its default autosave.
pub fn config(
    kind: Kind,
    port: u16,
    max_queued: u32,
    persistence_off: bool,
    persist_in: Option<&Path>,
) -> String {
    match kind {
        // TOML, because the connection rate cap (500/s per address by default, which a
        // connection storm from 127.0.0.1 would hit) is only settable there.
        Kind::Midge => format!(
            "{}[log]\nlevel = \"warn\"\n\n\
             [limits]\nmax_inflight_messages = {MAX_INFLIGHT}\n\
             max_queued_messages = {max_queued}\nmax_queued_bytes = 0\nconnection_rate = 0\n\n\
             [[listener]]\nbind = \"127.0.0.1:{port}\"\nallow_anonymous = true\n",
            match (persist_in, persistence_off) {
                (Some(_), _) => "persistence = \"sync\"\n",
                (None, true) => "persistence = \"off\"\n",
                (None, false) => "",
            }
        ),
        Kind::Mosquitto => format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\n{}\
             max_inflight_messages {MAX_INFLIGHT}\nmax_queued_messages {max_queued}\n\
             max_queued_bytes 0\nlog_dest stderr\nlog_type error\nlog_type warning\n",
            match persist_in {
                Some(dir) => format!(
                    "persistence true\npersistence_location {}/\n",
                    dir.display()
                ),
                None => "persistence false\n".into(),
            }
        ),
    }
}

/// A running broker, killed when dropped.
#[derive(Debug)]
pub struct Broker {
    child: Child,
    pub kind: Kind,
    pub addr: SocketAddr,
    /// From spawning the process to the first CONNACK it sent.
    pub startup: Duration,
    dir: PathBuf,
}

impl Broker {
    /// Starts the broker and waits until it answers a CONNECT.
    pub async fn start(spec: &Spec, max_queued: u32, persistent: bool) -> Result<Self, String> {
        let dir = fresh_dir(spec.kind)?;
        let port = free_port()?;
        let conf = dir.join(match spec.kind {
            Kind::Midge => "midge.toml",
            Kind::Mosquitto => "mosquitto.conf",
        });
        let persistence_off = spec.kind == Kind::Midge && knows_persistence_off(&spec.bin);
        let persist_in = persistent.then(|| dir.clone());
        let conf_text = config(
            spec.kind,
            port,
            max_queued,
            persistence_off,
            persist_in.as_deref(),
        );
        std::fs::write(&conf, conf_text).map_err(|e| format!("{e}"))?;
        let log = File::create(dir.join("log")).map_err(|e| format!("log file: {e}"))?;
        let mut command = match spec.core {
            Some(core) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(core.to_string()).arg(&spec.bin);
                c
            }
            None => Command::new(&spec.bin),
        };
        if spec.kind == Kind::Midge {
            // Its own state directory: midge locks it, and runs must not share state.
            command.arg("--data-dir").arg(dir.join("data"));
        }
        command
            .arg("-c")
            .arg(&conf)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let spawned = Instant::now();
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", spec.bin.display()))?;
        let mut broker = Self {
            child,
            kind: spec.kind,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            startup: Duration::ZERO,
            dir,
        };
        broker.startup = broker.first_connack(spawned).await?;
        Ok(broker)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Connects until the broker accepts (polling every millisecond, so the time is
    /// accurate to about that), then disconnects.
    async fn first_connack(&mut self, spawned: Instant) -> Result<Duration, String> {
        let deadline = spawned + Duration::from_secs(10);
        loop {
            if let Ok(stream) = tokio::net::TcpStream::connect(self.addr).await {
                Client::handshake(stream, "bench-probe")
                    .await
                    .map_err(|e| format!("{}: first CONNECT failed: {e}", self.kind))?;
                return Ok(spawned.elapsed());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{} exited with {status} before listening:\n{}",
                    self.kind,
                    self.log()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("{} did not listen within 10 s", self.kind));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Everything the broker logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// Fails if the broker died during the run.
    pub fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("{} died ({status}):\n{}", self.kind, self.log())),
            Err(e) => Err(format!("{}: {e}", self.kind)),
        }
    }
}

/// How long a broker gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

impl Drop for Broker {
    /// SIGTERM first, so that a broker run under a profiler (valgrind) exits normally
    /// and writes its profile; SIGKILL if it takes longer than [`STOP_GRACE`].
    fn drop(&mut self) {
        let pid = i32::try_from(self.child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let deadline = Instant::now() + STOP_GRACE;
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether this midge build has the `persistence` setting (it came with persistence;
/// older builds refuse the key, and keep nothing on disk anyway). Asked once, with
/// `--test-config`.
fn knows_persistence_off(bin: &Path) -> bool {
    static KNOWS: OnceLock<bool> = OnceLock::new();
    *KNOWS.get_or_init(|| {
        let probe =
            std::env::temp_dir().join(format!("midge-bench-{}-probe.toml", std::process::id()));
        let known = std::fs::write(&probe, "persistence = \"off\"\n").is_ok()
            && Command::new(bin)
                .arg("--test-config")
                .arg("-c")
                .arg(&probe)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        let _ = std::fs::remove_file(&probe);
        known
    })
}

/// A port free on 127.0.0.1 right now (the broker binds it a moment later).
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn fresh_dir(kind: Kind) -> Result<PathBuf, String> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("midge-bench-{}-{n}-{kind}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // Mosquitto started as root drops to its own user: let it read its config there.
    make_world_readable(&dir);
    Ok(dir)
}

fn make_world_readable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
}

/// Where a broker binary is when not given: midge next to this binary (same cargo
/// profile), Mosquitto where Debian puts it.
pub fn default_bin(kind: Kind) -> PathBuf {
    match kind {
        Kind::Midge => std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|d| d.join("midge")))
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("midge")),
        Kind::Mosquitto => PathBuf::from("/usr/sbin/mosquitto"),
    }
}
