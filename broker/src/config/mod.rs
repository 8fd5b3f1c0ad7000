//! The broker's settings, with Mosquitto's defaults where Mosquitto has one.
//!
//! Two file formats fill the same [`Config`]: midge's own TOML (`toml.rs`) and
//! Mosquitto's `mosquitto.conf` (`mosquitto.rs`), so an existing Mosquitto setup starts
//! unchanged with `midge -c /etc/mosquitto/mosquitto.conf`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod mosquitto;
pub mod toml;

use crate::persist::Durability;

/// Per-client limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// QoS 1/2 deliveries in flight per client (`max_inflight_messages`).
    pub max_inflight_messages: usize,
    /// Deliveries queued per client beyond the in-flight window; 0 = no limit.
    pub max_queued_messages: usize,
    /// Payload bytes queued per client; 0 = no limit.
    pub max_queued_bytes: usize,
    /// Queue QoS 0 messages for offline persistent sessions.
    pub queue_qos0_messages: bool,
    /// Largest keep-alive accepted, in seconds (`max_keepalive`).
    pub max_keepalive: u16,
    /// Largest packet accepted, header included (`max_packet_size`).
    pub max_packet_size: u32,
    /// Largest PUBLISH payload accepted; 0 = no limit (`message_size_limit`).
    pub message_size_limit: u32,
    /// Whether retained messages are stored (`retain_available`).
    pub retain_available: bool,
    /// Topic aliases an MQTT 5 client may set towards the broker (`max_topic_alias`).
    pub max_topic_alias: u16,
    /// How long a socket may stay open without sending CONNECT.
    pub connect_timeout: Duration,
    /// New connections a second accepted from one source address (bursts of ten
    /// seconds' worth); 0 = no limit.
    pub connection_rate: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_inflight_messages: 20,
            max_queued_messages: 1000,
            max_queued_bytes: 0,
            queue_qos0_messages: false,
            max_keepalive: 65_535,
            max_packet_size: midge_wire::MAX_PACKET_SIZE as u32,
            message_size_limit: 0,
            retain_available: true,
            max_topic_alias: 10,
            connect_timeout: Duration::from_secs(10),
            connection_rate: 500,
        }
    }
}

/// One address to accept MQTT connections on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub addr: SocketAddr,
    pub security: Security,
    /// TLS on this listener (`certfile` and `keyfile` given).
    pub tls: Option<Tls>,
    /// Connections accepted at once on this listener; `None` = no limit.
    pub max_connections: Option<usize>,
}

impl Listener {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            security: Security::default(),
            tls: None,
            max_connections: None,
        }
    }
}

/// Who may connect on a listener, and what they may do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Security {
    /// `None`: anonymous clients only from loopback addresses.
    pub allow_anonymous: Option<bool>,
    /// Mosquitto password file (`password_file`): clients with a user name must match it.
    pub password_file: Option<PathBuf>,
    /// Mosquitto ACL file (`acl_file`): what each client may publish and receive.
    pub acl_file: Option<PathBuf>,
}

impl Security {
    /// Settings given here win over `other`'s.
    pub fn or(&self, other: &Security) -> Security {
        Security {
            allow_anonymous: self.allow_anonymous.or(other.allow_anonymous),
            password_file: self
                .password_file
                .clone()
                .or_else(|| other.password_file.clone()),
            acl_file: self.acl_file.clone().or_else(|| other.acl_file.clone()),
        }
    }
}

/// A TLS listener's certificate and what it asks of clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// PEM certificate chain (`certfile`).
    pub certfile: PathBuf,
    /// PEM private key (`keyfile`).
    pub keyfile: PathBuf,
    /// CA certificates client certificates are checked against (`cafile`, `capath`).
    pub cafile: Option<PathBuf>,
    pub capath: Option<PathBuf>,
    /// Clients must present a certificate signed by those CAs (`require_certificate`).
    pub require_certificate: bool,
    /// The user name is taken from the client certificate, not from CONNECT.
    pub identity: CertificateIdentity,
}

/// Whether, and how, a client certificate names the user (`use_identity_as_username`,
/// `use_subject_as_username`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CertificateIdentity {
    #[default]
    None,
    /// The subject's Common Name.
    CommonName,
    /// The whole subject, as an RFC 2253 string.
    Subject,
}

/// Where log lines go (`log_dest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogDest {
    Stderr,
    Stdout,
    File(PathBuf),
}

/// Logging: a tracing filter (`info`, `debug`, `midge=debug,warn`…) and destinations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub filter: String,
    /// Empty: no logging at all (`log_dest none`).
    pub dest: Vec<LogDest>,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info".into(),
            dest: vec![LogDest::Stderr],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Empty in a file means "no listener configured": the loopback default applies.
    pub listeners: Vec<Listener>,
    pub limits: Limits,
    /// How often `$SYS/broker/...` is published; zero turns it off (`sys_interval`).
    pub sys_interval: Duration,
    pub log: LogConfig,
    /// Where persistent state lives (`--data-dir`, `persistence_location`); `None`: the
    /// default for the user running midge ([`crate::persist::default_dir`]).
    pub data_dir: Option<PathBuf>,
    /// When acknowledged messages reach the disk (`persistence`).
    pub persistence: Durability,
    /// The CoAP gateway run in this process (`[coap]` in midge TOML).
    pub coap: Option<CoapGateway>,
}

/// The CoAP gateway's settings, when the broker runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoapGateway {
    pub config: midge_gateway::GatewayConfig,
    /// Whether `broker` was given; if not, the gateway connects to this broker's first
    /// listener without TLS.
    pub broker_given: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listeners: Vec::new(),
            limits: Limits::default(),
            sys_interval: Duration::from_secs(10),
            log: LogConfig::default(),
            data_dir: None,
            persistence: Durability::Sync,
            coap: None,
        }
    }
}

impl Config {
    /// Loopback listeners on `port` (IPv4 and IPv6): what runs with no configuration.
    pub fn loopback_listeners(port: u16) -> Vec<Listener> {
        let loopback: [IpAddr; 2] = [Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()];
        loopback
            .into_iter()
            .map(|ip| Listener::new(SocketAddr::new(ip, port)))
            .collect()
    }

    /// Listeners on every interface for `port` (Mosquitto's `-p`).
    pub fn all_interfaces(port: u16) -> Vec<Listener> {
        let any: [IpAddr; 2] = [Ipv4Addr::UNSPECIFIED.into(), Ipv6Addr::UNSPECIFIED.into()];
        any.into_iter()
            .map(|ip| Listener::new(SocketAddr::new(ip, port)))
            .collect()
    }
}

/// A configuration file, read: the settings, and what the reader wants the user to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub config: Config,
    /// Options accepted but not acted on (not supported yet, deprecated forms…), to be
    /// logged at startup.
    pub warnings: Vec<Warning>,
    /// mosquitto.conf's global security settings (without `per_listener_settings true`).
    /// Already applied to the file's listeners; also apply them to listeners added on the
    /// command line, since in Mosquitto they cover every listener.
    pub security: Security,
}

impl Loaded {
    /// No file: the defaults, nothing to say.
    pub fn defaults() -> Self {
        Self {
            config: Config::default(),
            warnings: Vec::new(),
            security: Security::default(),
        }
    }
}

/// Something in a configuration file that does not stop the broker but should be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

/// Why a configuration file was refused. The message names the file (and the line, for
/// content errors) and says what to write instead.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file (or an `include_dir` directory) could not be read.
    #[error("{}: cannot read {what}: {source}", path.display())]
    Io {
        path: PathBuf,
        /// "the configuration file", "the include_dir directory"…
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A line of the file is wrong; `message` includes how to fix it.
    #[error("{}:{line}: {message}", file.display())]
    Invalid {
        file: PathBuf,
        line: usize,
        message: String,
    },
}

impl ConfigError {
    /// The file the error is in (the included file, for errors in an `include_dir` file).
    pub fn file(&self) -> &Path {
        match self {
            Self::Io { path, .. } => path,
            Self::Invalid { file, .. } => file,
        }
    }

    /// The 1-based line of the error; `None` for I/O errors.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Io { .. } => None,
            Self::Invalid { line, .. } => Some(*line),
        }
    }
}

/// Reads a configuration file: midge's TOML when the name ends in `.toml`, otherwise
/// Mosquitto's `mosquitto.conf` format.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let is_toml = path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("toml"));
    if is_toml {
        self::toml::load(path)
    } else {
        mosquitto::load(path)
    }
}

/// Checks a log filter (`log.level`, `--log-level`): a level (`off`, `error`, `warn`,
/// `info`, `debug`, `trace`) or a tracing filter such as `midge=debug,warn`. A bare word
/// that is not a level is refused: tracing would read it as a target name and log almost
/// nothing, which is never what a typo such as `inf` meant.
pub fn check_log_filter(filter: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    for directive in filter.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let bare_word = !directive.contains(['=', '[', ':']);
        if bare_word && !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(directive)) {
            return Err(format!(
                "\"{directive}\" is not a log level (use off, error, warn, info, debug or trace, \
                 or a filter such as \"midge=debug,warn\")"
            ));
        }
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(filter)
        .map(drop)
        .map_err(|e| format!("\"{filter}\" is not a valid log filter: {e}"))
}

/// Reads a whole configuration file as UTF-8 text.
fn read_text(path: &Path) -> Result<String, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        what: "the configuration file",
        source,
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        ConfigError::Invalid {
            file: path.to_owned(),
            line: valid.iter().filter(|&&b| b == b'\n').count() + 1,
            message: "the file is not valid UTF-8 text (save it as UTF-8)".into(),
        }
    })
}

/// The candidate closest to `word` within edit distance 2 (transpositions count as one),
/// for "did you mean" hints.
fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word, c), c))
        .filter(|&(d, _)| d <= 2)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Optimal string alignment distance over bytes.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_typos() {
        assert_eq!(
            edit_distance("max_inflight_mesages", "max_inflight_messages"),
            1
        );
        assert_eq!(edit_distance("listenre", "listener"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", "abc"), 0);
    }

    #[test]
    fn suggestion_within_two_edits_only() {
        let known = ["listener", "port", "max_inflight_messages"];
        assert_eq!(
            suggest("max_inflight_mesages", known),
            Some("max_inflight_messages")
        );
        assert_eq!(suggest("Listener", known), Some("listener"));
        assert_eq!(suggest("frobnicate", known), None);
    }

    #[test]
    fn log_filters() {
        for ok in [
            "info",
            "DEBUG",
            "off",
            "midge=debug,warn",
            "midge::server=trace",
            "warn,",
        ] {
            assert_eq!(check_log_filter(ok), Ok(()), "{ok}");
        }
        for bad in ["inf", "lots", "info,verbose", "midge=loud"] {
            assert!(check_log_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn warning_display_names_file_and_line() {
        let w = Warning {
            file: "/etc/x.conf".into(),
            line: 3,
            message: "hello".into(),
        };
        assert_eq!(w.to_string(), "/etc/x.conf:3: hello");
    }

    #[test]
    fn io_error_names_the_file() {
        let path = std::env::temp_dir().join("midge-no-such-dir/none.conf");
        let err = load(&path).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("{}: cannot read", path.display())),
            "{err}"
        );
        assert_eq!(err.line(), None);
    }
}
