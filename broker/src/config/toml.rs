//! midge's own configuration format: TOML, read when the file name ends in `.toml`.
//!
//! Every key is optional and an omitted key keeps the default shown below (Mosquitto's
//! default, where Mosquitto has one). A key midge does not know is an error, so a typo
//! never silently does nothing. The complete format, with the defaults:
//!
//! ```toml
//! # Where persistent state lives. Default: /var/lib/midge for root, else
//! # $XDG_STATE_HOME/midge (~/.local/state/midge).
//! data_dir = "/var/lib/midge"
//! # "sync": a QoS 1/2 message is acknowledged once it is on disk (fsyncs are shared by
//! # everything arriving together); "periodic": written every flush_interval_ms, a power
//! # cut loses at most that; "off": memory only.
//! persistence = "sync"
//! flush_interval_ms = 1000     # with "periodic"
//! # How often $SYS/broker/... is published, in seconds (0 to 65535); 0 turns it off.
//! sys_interval = 10
//!
//! [log]
//! # off, error, warn, info, debug, trace, or a tracing filter such as "midge=debug,warn".
//! level = "info"
//! # Any of "stderr", "stdout" and "file:/var/log/midge.log" (appended to); [] logs nothing.
//! dest = ["stderr"]
//!
//! [limits]
//! max_inflight_messages = 20   # QoS 1 and 2 messages in flight per client, 0 = no limit
//! max_queued_messages = 1000   # further messages queued per client, 0 = no limit
//! max_queued_bytes = 0         # payload bytes queued per client, 0 = no limit
//! queue_qos0_messages = false  # queue QoS 0 messages for offline persistent sessions
//! max_keepalive = 65535        # largest keep-alive accepted, in seconds
//! max_packet_size = 268435460  # largest packet accepted, in bytes (20 to 268435460)
//! message_size_limit = 0       # largest PUBLISH payload accepted, in bytes, 0 = no limit
//! retain_available = true      # whether retained messages are kept
//! max_topic_alias = 10         # topic aliases an MQTT 5 client may set, 0 = none
//! connect_timeout = 10         # seconds a new connection has to send CONNECT
//! connection_rate = 500        # new connections a second from one address, 0 = no limit
//!
//! # The CoAP gateway in this process (omitted: none). Every key of midge-gateway's
//! # configuration file works here (see gateway/README.md); without `broker`, it connects
//! # to this broker's first listener without TLS, as an MQTT client like any other (give
//! # it username/password if that listener wants them).
//! # [coap]
//! # listen = "0.0.0.0:5683"
//!
//! # One [[listener]] per address. With none, midge listens on 127.0.0.1:1883 and
//! # [::1]:1883 only: clients on this machine.
//! [[listener]]
//! # "IP:port", "[IPv6]:port", "*:port" (every interface, IPv4 and IPv6)
//! # or "localhost:port" (loopback, IPv4 and IPv6).
//! bind = "0.0.0.0:1883"
//! # Omitted: anonymous clients are accepted from this machine (loopback) only.
//! allow_anonymous = false
//! # Mosquitto password and ACL files for this listener (top-level keys of the same
//! # names set them for every listener).
//! password_file = "/etc/midge/passwd"
//! acl_file = "/etc/midge/acl"
//! # TLS: the server certificate chain and key (PEM); cafile/capath check client
//! # certificates, require_certificate demands one, use_identity_as_username (or
//! # use_subject_as_username) takes the user name from it.
//! # certfile = "/etc/midge/server.crt"
//! # keyfile = "/etc/midge/server.key"
//! # Connections open at once on this listener; omitted: no limit.
//! max_connections = 1000
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ::toml::Spanned;
use serde::Deserialize;

use crate::persist::Durability;

use super::{
    CertificateIdentity, CoapGateway, Config, ConfigError, Listener, Loaded, LogDest, Security,
    Tls, check_log_filter, read_text, suggest,
};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    data_dir: Option<PathBuf>,
    persistence: Option<Spanned<String>>,
    flush_interval_ms: Option<Spanned<i64>>,
    password_file: Option<PathBuf>,
    acl_file: Option<PathBuf>,
    sys_interval: Option<Spanned<i64>>,
    log: Option<LogSection>,
    limits: Option<LimitsSection>,
    #[serde(default)]
    listener: Vec<ListenerSection>,
    coap: Option<Spanned<::toml::Table>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogSection {
    level: Option<Spanned<String>>,
    dest: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsSection {
    max_inflight_messages: Option<Spanned<i64>>,
    max_queued_messages: Option<Spanned<i64>>,
    max_queued_bytes: Option<Spanned<i64>>,
    queue_qos0_messages: Option<bool>,
    max_keepalive: Option<Spanned<i64>>,
    max_packet_size: Option<Spanned<i64>>,
    message_size_limit: Option<Spanned<i64>>,
    retain_available: Option<bool>,
    max_topic_alias: Option<Spanned<i64>>,
    connect_timeout: Option<Spanned<i64>>,
    connection_rate: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenerSection {
    bind: Spanned<String>,
    allow_anonymous: Option<bool>,
    password_file: Option<PathBuf>,
    acl_file: Option<PathBuf>,
    max_connections: Option<Spanned<i64>>,
    certfile: Option<PathBuf>,
    keyfile: Option<PathBuf>,
    cafile: Option<PathBuf>,
    capath: Option<PathBuf>,
    #[serde(default)]
    require_certificate: bool,
    #[serde(default)]
    use_identity_as_username: bool,
    #[serde(default)]
    use_subject_as_username: bool,
}

pub(super) fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = read_text(path)?;
    let file: File = ::toml::from_str(&text).map_err(|e| syntax_error(path, &text, &e))?;
    let source = Source { path, text: &text };
    // Top-level password_file/acl_file cover every listener, command-line ones too.
    let security = Security {
        allow_anonymous: None,
        password_file: file.password_file.clone(),
        acl_file: file.acl_file.clone(),
    };
    let mut config = source.config(file)?;
    for listener in &mut config.listeners {
        listener.security = listener.security.or(&security);
    }
    Ok(Loaded {
        config,
        warnings: Vec::new(),
        security,
    })
}

/// The file being read, to turn spans into lines.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    fn error(&self, span: Range<usize>, message: String) -> ConfigError {
        ConfigError::Invalid {
            file: self.path.to_owned(),
            line: line_of(self.text, span.start),
            message,
        }
    }

    /// `value` if it is within `range`, else an error at its line.
    fn within(
        &self,
        key: &str,
        value: &Spanned<i64>,
        range: std::ops::RangeInclusive<i64>,
        what: &str,
    ) -> Result<i64, ConfigError> {
        let v = *value.get_ref();
        if range.contains(&v) {
            return Ok(v);
        }
        Err(self.error(
            value.span(),
            format!(
                "{key} = {v} is out of range: {what} (write e.g. {})",
                example(key).unwrap_or("see the example in the documentation")
            ),
        ))
    }

    fn config(&self, file: File) -> Result<Config, ConfigError> {
        let mut config = Config {
            data_dir: file.data_dir,
            ..Config::default()
        };
        let interval = match &file.flush_interval_ms {
            Some(ms) => self.within(
                "flush_interval_ms",
                ms,
                1..=3_600_000,
                "it is 1 to 3600000 milliseconds",
            )? as u64,
            None => 1000,
        };
        if let Some(mode) = &file.persistence {
            config.persistence = match mode.get_ref().as_str() {
                "sync" => Durability::Sync,
                "periodic" => Durability::Periodic(Duration::from_millis(interval)),
                "off" => Durability::Off,
                other => {
                    return Err(self.error(
                        mode.span(),
                        format!(
                            "persistence = \"{other}\" is not a mode: it is \"sync\", \"periodic\" \
                             or \"off\" (write e.g. persistence = \"sync\")"
                        ),
                    ));
                }
            };
        }
        if let Some(secs) = &file.sys_interval {
            let secs = self.within(
                "sys_interval",
                secs,
                0..=65535,
                "it is 0 (off) to 65535 seconds",
            )?;
            config.sys_interval = Duration::from_secs(secs as u64);
        }
        if let Some(log) = file.log {
            if let Some(level) = log.level {
                check_log_filter(level.get_ref()).map_err(|e| {
                    self.error(
                        level.span(),
                        format!("log level {e} (write e.g. level = \"info\")"),
                    )
                })?;
                config.log.filter = level.into_inner();
            }
            if let Some(dests) = log.dest {
                config.log.dest = Vec::new();
                for dest in dests {
                    let parsed = self.log_dest(&dest)?;
                    if !config.log.dest.contains(&parsed) {
                        config.log.dest.push(parsed);
                    }
                }
            }
        }
        if let Some(l) = file.limits {
            let limits = &mut config.limits;
            if let Some(v) = &l.max_inflight_messages {
                let v = self.within(
                    "max_inflight_messages",
                    v,
                    0..=65535,
                    "it is 0 (no limit) to 65535",
                )?;
                // 0 = no limit, as in Mosquitto; 65535 is MQTT's largest window.
                limits.max_inflight_messages = if v == 0 { 65535 } else { v as usize };
            }
            if let Some(v) = &l.max_queued_messages {
                let v = self.within(
                    "max_queued_messages",
                    v,
                    0..=i64::MAX,
                    "it is 0 (no limit) or more",
                )?;
                limits.max_queued_messages = usize::try_from(v).unwrap_or(usize::MAX);
            }
            if let Some(v) = &l.max_queued_bytes {
                let v = self.within(
                    "max_queued_bytes",
                    v,
                    0..=i64::MAX,
                    "it is 0 (no limit) or more",
                )?;
                limits.max_queued_bytes = usize::try_from(v).unwrap_or(usize::MAX);
            }
            if let Some(v) = l.queue_qos0_messages {
                limits.queue_qos0_messages = v;
            }
            if let Some(v) = &l.max_keepalive {
                let v = self.within("max_keepalive", v, 0..=65535, "it is 0 to 65535 seconds")?;
                limits.max_keepalive = v as u16;
            }
            if let Some(v) = &l.max_packet_size {
                let max = midge_wire::MAX_PACKET_SIZE as i64;
                let what = format!("it is 20 to {max} bytes");
                let v = self.within("max_packet_size", v, 20..=max, &what)?;
                limits.max_packet_size = v as u32;
            }
            if let Some(v) = &l.message_size_limit {
                let what = "it is 0 (no limit) to 268435455 bytes";
                let v = self.within("message_size_limit", v, 0..=268_435_455, what)?;
                limits.message_size_limit = v as u32;
            }
            if let Some(v) = l.retain_available {
                limits.retain_available = v;
            }
            if let Some(v) = &l.max_topic_alias {
                let what = "it is 0 (no aliases) to 65535";
                limits.max_topic_alias =
                    self.within("max_topic_alias", v, 0..=65_535, what)? as u16;
            }
            if let Some(v) = &l.connection_rate {
                let what = "it is 0 (no limit) to 100000 new connections a second";
                limits.connection_rate =
                    self.within("connection_rate", v, 0..=100_000, what)? as u32;
            }
            if let Some(v) = &l.connect_timeout {
                let v = self.within("connect_timeout", v, 1..=3600, "it is 1 to 3600 seconds")?;
                limits.connect_timeout = Duration::from_secs(v as u64);
            }
        }
        let mut first_at: Vec<(SocketAddr, usize)> = Vec::new();
        for section in file.listener {
            let max_connections = match &section.max_connections {
                None => None,
                Some(v) => {
                    let what = "it is 0 or more (omit it for no limit)";
                    Some(self.within("max_connections", v, 0..=i64::MAX, what)? as usize)
                }
            };
            let addrs = parse_bind(section.bind.get_ref()).map_err(|why| {
                self.error(
                    section.bind.span(),
                    format!(
                        "bind = \"{}\" {why} (write e.g. bind = \"0.0.0.0:1883\", \
                         \"[::1]:1883\", \"*:1883\" or \"localhost:1883\")",
                        section.bind.get_ref()
                    ),
                )
            })?;
            let line = line_of(self.text, section.bind.span().start);
            let tls = self.tls(&section)?;
            for addr in addrs {
                if let Some((_, first)) = first_at.iter().find(|(a, _)| *a == addr) {
                    return Err(self.error(
                        section.bind.span(),
                        format!(
                            "{addr} is already a listener (line {first}); delete one of the \
                             [[listener]] tables"
                        ),
                    ));
                }
                first_at.push((addr, line));
                config.listeners.push(Listener {
                    addr,
                    security: Security {
                        allow_anonymous: section.allow_anonymous,
                        password_file: section.password_file.clone(),
                        acl_file: section.acl_file.clone(),
                    },
                    tls: tls.clone(),
                    max_connections,
                });
            }
        }
        if let Some(table) = file.coap {
            config.coap = Some(self.coap(table)?);
        }
        Ok(config)
    }

    /// The `[coap]` table: midge-gateway's own keys, checked as it checks them.
    fn coap(&self, table: Spanned<::toml::Table>) -> Result<CoapGateway, ConfigError> {
        let span = table.span();
        let table = table.into_inner();
        let broker_given = table.contains_key("broker");
        let config: midge_gateway::GatewayConfig =
            ::toml::Value::Table(table).try_into().map_err(|e| {
                self.error(
                    span.clone(),
                    format!(
                        "[coap]: {} (the keys are those of midge-gateway's configuration \
                         file, e.g. listen = \"0.0.0.0:5683\")",
                        e.message().trim_end()
                    ),
                )
            })?;
        config
            .limits()
            .and(config.broker_settings().map(drop))
            .map_err(|e| self.error(span, format!("[coap]: {e}")))?;
        Ok(CoapGateway {
            config,
            broker_given,
        })
    }

    /// A listener's TLS settings: `certfile` and `keyfile` make it TLS.
    fn tls(&self, section: &ListenerSection) -> Result<Option<Tls>, ConfigError> {
        let identity = match (
            section.use_identity_as_username,
            section.use_subject_as_username,
        ) {
            (true, true) => {
                return Err(self.error(
                    section.bind.span(),
                    "use_identity_as_username and use_subject_as_username exclude each other; \
                     keep one"
                        .into(),
                ));
            }
            (true, false) => CertificateIdentity::CommonName,
            (false, true) => CertificateIdentity::Subject,
            (false, false) => CertificateIdentity::None,
        };
        let wants_tls = section.cafile.is_some()
            || section.capath.is_some()
            || section.require_certificate
            || identity != CertificateIdentity::None;
        match (&section.certfile, &section.keyfile) {
            (Some(certfile), Some(keyfile)) => Ok(Some(Tls {
                certfile: certfile.clone(),
                keyfile: keyfile.clone(),
                cafile: section.cafile.clone(),
                capath: section.capath.clone(),
                require_certificate: section.require_certificate,
                identity,
            })),
            (None, None) if !wants_tls => Ok(None),
            _ => Err(self.error(
                section.bind.span(),
                "a TLS listener needs both certfile and keyfile (certfile = \"/etc/midge/server.crt\", \
                 keyfile = \"/etc/midge/server.key\")"
                    .into(),
            )),
        }
    }

    fn log_dest(&self, dest: &Spanned<String>) -> Result<LogDest, ConfigError> {
        match dest.get_ref().as_str() {
            "stderr" => Ok(LogDest::Stderr),
            "stdout" => Ok(LogDest::Stdout),
            other => match other.strip_prefix("file:") {
                Some(path) if !path.trim().is_empty() => Ok(LogDest::File(path.trim().into())),
                _ => Err(self.error(
                    dest.span(),
                    format!(
                        "log dest \"{other}\" is not a log destination (write \"stderr\", \
                         \"stdout\" or \"file:/var/log/midge.log\", e.g. dest = [\"stderr\"])"
                    ),
                )),
            },
        }
    }
}

/// The addresses a `bind` value stands for, or why it is wrong.
fn parse_bind(bind: &str) -> Result<Vec<SocketAddr>, String> {
    let port = |p: &str| match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("has no valid port (\"{p}\"; ports are 1 to 65535)")),
        Ok(port) => Ok(port),
    };
    if let Some(p) = bind.strip_prefix("*:") {
        let port = port(p)?;
        let any: [IpAddr; 2] = [Ipv4Addr::UNSPECIFIED.into(), Ipv6Addr::UNSPECIFIED.into()];
        return Ok(any
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect());
    }
    if let Some(p) = bind.strip_prefix("localhost:") {
        let port = port(p)?;
        let lo: [IpAddr; 2] = [Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()];
        return Ok(lo.into_iter().map(|ip| SocketAddr::new(ip, port)).collect());
    }
    match bind.parse::<SocketAddr>() {
        Ok(addr) if addr.port() == 0 => Err("has port 0 (ports are 1 to 65535)".into()),
        Ok(addr) => Ok(vec![addr]),
        Err(_) if bind.parse::<IpAddr>().is_ok() => Err("has no port".into()),
        Err(_) => Err("is not an address and port".into()),
    }
}

/// 1-based line of byte `offset`.
fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// A correct line for `key`, from the documented example.
fn example(key: &str) -> Option<&'static str> {
    Some(match key {
        "data_dir" => "data_dir = \"/var/lib/midge\"",
        "persistence" => "persistence = \"sync\"",
        "flush_interval_ms" => "flush_interval_ms = 1000",
        "sys_interval" => "sys_interval = 10",
        "log" => "[log] with level = \"info\"",
        "level" => "level = \"info\"",
        "dest" => "dest = [\"stderr\"]",
        "limits" => "[limits] with max_inflight_messages = 20",
        "max_inflight_messages" => "max_inflight_messages = 20",
        "max_queued_messages" => "max_queued_messages = 1000",
        "max_queued_bytes" => "max_queued_bytes = 0",
        "queue_qos0_messages" => "queue_qos0_messages = false",
        "max_keepalive" => "max_keepalive = 65535",
        "max_packet_size" => "max_packet_size = 1048576",
        "message_size_limit" => "message_size_limit = 0",
        "retain_available" => "retain_available = true",
        "max_topic_alias" => "max_topic_alias = 10",
        "connection_rate" => "connection_rate = 500",
        "connect_timeout" => "connect_timeout = 10",
        "listener" => "[[listener]] (two brackets) with bind = \"0.0.0.0:1883\"",
        "bind" => "bind = \"0.0.0.0:1883\"",
        "allow_anonymous" => "allow_anonymous = false",
        "max_connections" => "max_connections = 1000",
        _ => return None,
    })
}

/// The words between backticks in a serde message (`unknown field `x`, expected `y``).
fn quoted(message: &str) -> Vec<&str> {
    message.split('`').skip(1).step_by(2).collect()
}

/// A `toml` parse or type error as a `file:line: message (fix)` error.
fn syntax_error(path: &Path, text: &str, e: &::toml::de::Error) -> ConfigError {
    let line = e.span().map_or(1, |span| line_of(text, span.start));
    let message = e
        .message()
        .trim()
        .replace('\n', "; ")
        .replace("expected i64", "expected a whole number");
    let line_text = text.lines().nth(line - 1).unwrap_or("").trim();
    // The key on the error's line: `key = value`, or the table of a `[key]` header.
    let key = match line_text.split_once('=') {
        Some((key, _)) => key.trim().trim_matches('"'),
        None => line_text
            .trim_matches(['[', ']', ' '])
            .rsplit('.')
            .next()
            .unwrap_or(""),
    };
    let hint = if message.starts_with("unknown field") {
        let words = quoted(&message);
        match words.split_first() {
            Some((unknown, expected)) => match suggest(unknown, expected.iter().copied()) {
                Some(known) => format!("did you mean {known}?"),
                None => format!("remove \"{unknown}\" or correct its spelling"),
            },
            None => "remove it or correct its spelling".into(),
        }
    } else if message.starts_with("missing field") {
        let missing = quoted(&message).first().copied().unwrap_or("");
        match example(missing) {
            Some(example) => format!("add {example}"),
            None => format!("add {missing}"),
        }
    } else if message.contains("invalid type") || message.contains("invalid value") {
        match example(key) {
            Some(example) => format!("write e.g. {example}"),
            None => "see the example in midge's documentation".into(),
        }
    } else {
        "check the TOML syntax: key = value, text in double quotes, [table] headers".into()
    };
    ConfigError::Invalid {
        file: path.to_owned(),
        line,
        message: format!("{message} ({hint})"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::config::load as load_any;

    fn parse(test: &str, text: &str) -> Result<Loaded, ConfigError> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("midge-toml-{}-{n}-{test}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        let result = load_any(&path);
        let _ = std::fs::remove_file(&path);
        result
    }

    fn ok(test: &str, text: &str) -> Config {
        let loaded = parse(test, text).unwrap_or_else(|e| panic!("{e}"));
        assert!(loaded.warnings.is_empty());
        loaded.config
    }

    fn err(test: &str, text: &str) -> (usize, String) {
        match parse(test, text) {
            Ok(loaded) => panic!("expected an error, got {loaded:?}"),
            Err(e) => (e.line().expect("a line"), e.to_string()),
        }
    }

    /// The ```toml block of this module's documentation.
    fn documented_example() -> String {
        let source = include_str!("toml.rs");
        let mut lines = source
            .lines()
            .map_while(|l| l.strip_prefix("//!"))
            .map(|l| l.strip_prefix(' ').unwrap_or(l));
        lines
            .by_ref()
            .find(|l| *l == "```toml")
            .expect("a ```toml block");
        lines
            .take_while(|l| *l != "```")
            .map(|l| format!("{l}\n"))
            .collect()
    }

    #[test]
    fn documented_example_parses() {
        let example = documented_example();
        assert!(example.contains("[[listener]]"));
        let c = ok("example", &example);
        // Everything but the example's own choices is the default.
        let expected = Config {
            data_dir: Some("/var/lib/midge".into()),
            listeners: vec![Listener {
                addr: "0.0.0.0:1883".parse().unwrap(),
                security: Security {
                    allow_anonymous: Some(false),
                    password_file: Some("/etc/midge/passwd".into()),
                    acl_file: Some("/etc/midge/acl".into()),
                },
                tls: None,
                max_connections: Some(1000),
            }],
            ..Config::default()
        };
        assert_eq!(c, expected);
    }

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(ok("empty", ""), Config::default());
    }

    #[test]
    fn every_key() {
        let text = r#"
data_dir = "/srv/midge"
sys_interval = 0
[log]
level = "midge=debug,warn"
dest = ["stdout", "file:/var/log/midge.log", "stdout"]
[limits]
max_inflight_messages = 0
max_queued_messages = 10
max_queued_bytes = 4096
queue_qos0_messages = true
max_keepalive = 600
max_packet_size = 65536
message_size_limit = 1024
retain_available = false
max_topic_alias = 0
connect_timeout = 3
connection_rate = 7
[[listener]]
bind = "*:1883"
allow_anonymous = true
[[listener]]
bind = "localhost:1884"
max_connections = 0
[[listener]]
bind = "[fe80::1]:1885"
"#;
        let c = ok("every", text);
        assert_eq!(c.data_dir, Some("/srv/midge".into()));
        assert_eq!(c.sys_interval, Duration::ZERO);
        assert_eq!(c.log.filter, "midge=debug,warn");
        assert_eq!(
            c.log.dest,
            vec![LogDest::Stdout, LogDest::File("/var/log/midge.log".into())]
        );
        assert_eq!(c.limits.max_inflight_messages, 65535);
        assert_eq!(c.limits.max_queued_messages, 10);
        assert_eq!(c.limits.max_queued_bytes, 4096);
        assert!(c.limits.queue_qos0_messages);
        assert_eq!(c.limits.max_keepalive, 600);
        assert_eq!(c.limits.max_packet_size, 65536);
        assert_eq!(c.limits.message_size_limit, 1024);
        assert_eq!(c.limits.max_topic_alias, 0);
        assert_eq!(c.limits.connection_rate, 7);
        assert!(!c.limits.retain_available);
        assert_eq!(c.limits.connect_timeout, Duration::from_secs(3));
        let listeners: Vec<(String, Option<bool>, Option<usize>)> = c
            .listeners
            .iter()
            .map(|l| {
                (
                    l.addr.to_string(),
                    l.security.allow_anonymous,
                    l.max_connections,
                )
            })
            .collect();
        let expected = [
            ("0.0.0.0:1883", Some(true), None),
            ("[::]:1883", Some(true), None),
            ("127.0.0.1:1884", None, Some(0)),
            ("[::1]:1884", None, Some(0)),
            ("[fe80::1]:1885", None, None),
        ];
        let expected: Vec<(String, Option<bool>, Option<usize>)> = expected
            .iter()
            .map(|(a, b, m)| (a.to_string(), *b, *m))
            .collect();
        assert_eq!(listeners, expected);
    }

    #[test]
    fn no_log_dest() {
        assert_eq!(ok("nolog", "[log]\ndest = []\n").log.dest, vec![]);
    }

    #[test]
    fn unknown_key_names_its_line_and_suggests() {
        let (line, msg) = err(
            "unknown",
            "[limits]\nmax_inflight_messages = 20\nmax_inflight_mesages = 5\n",
        );
        assert_eq!(line, 3);
        assert!(
            msg.contains("unknown field `max_inflight_mesages`"),
            "{msg}"
        );
        assert!(msg.contains("did you mean max_inflight_messages?"), "{msg}");

        let (line, msg) = err("unknown-top", "\n\nfoo = 1\n");
        assert_eq!(line, 3);
        assert!(msg.contains("unknown field `foo`"), "{msg}");

        let (line, msg) = err("unknown-table", "[limit]\nmax_keepalive = 5\n");
        assert_eq!(line, 1);
        assert!(msg.contains("did you mean limits?"), "{msg}");

        let (line, msg) = err(
            "unknown-listener",
            "[[listener]]\nbind = \"*:1883\"\nallow_anonymus = true\n",
        );
        assert_eq!(line, 3);
        assert!(msg.contains("did you mean allow_anonymous?"), "{msg}");
    }

    #[test]
    fn bad_type_names_its_line() {
        let (line, msg) = err("type", "[limits]\n\nmax_inflight_messages = \"lots\"\n");
        assert_eq!(line, 3);
        assert!(msg.contains("invalid type"), "{msg}");
        assert!(
            msg.contains("write e.g. max_inflight_messages = 20"),
            "{msg}"
        );
        assert!(msg.contains(".toml:3: "), "{msg}");

        let (line, msg) = err("type-bool", "[limits]\nretain_available = \"yes\"\n");
        assert_eq!(line, 2);
        assert!(msg.contains("write e.g. retain_available = true"), "{msg}");

        let (line, msg) = err("type-dest", "[log]\ndest = \"stderr\"\n");
        assert_eq!(line, 2);
        assert!(msg.contains("write e.g. dest = [\"stderr\"]"), "{msg}");

        let (_, msg) = err("type-listener", "[listener]\nbind = \"*:1883\"\n");
        assert!(msg.contains("two brackets"), "{msg}");
    }

    #[test]
    fn syntax_error_names_its_line() {
        let (line, msg) = err("syntax", "sys_interval = 10\n[limits\n");
        assert_eq!(line, 2);
        assert!(msg.contains("check the TOML syntax"), "{msg}");
    }

    #[test]
    fn out_of_range_values() {
        let (line, msg) = err("range", "[limits]\nmax_packet_size = 10\n");
        assert_eq!(line, 2);
        assert!(
            msg.contains("max_packet_size = 10 is out of range: it is 20 to"),
            "{msg}"
        );
        let (_, msg) = err("range2", "[limits]\nmax_keepalive = 70000\n");
        assert!(msg.contains("out of range"), "{msg}");
        let (_, msg) = err("range3", "sys_interval = -1\n");
        assert!(msg.contains("sys_interval = -1 is out of range"), "{msg}");
        let (_, msg) = err("range4", "[limits]\nconnect_timeout = 0\n");
        assert!(msg.contains("out of range"), "{msg}");
        let (_, msg) = err(
            "range5",
            "[[listener]]\nbind = \"*:1883\"\nmax_connections = -1\n",
        );
        assert!(msg.contains("omit it for no limit"), "{msg}");
    }

    #[test]
    fn bad_listeners() {
        let (line, msg) = err("bind", "[[listener]]\nbind = \"0.0.0.0\"\n");
        assert_eq!(line, 2);
        assert!(msg.contains("has no port"), "{msg}");
        let (_, msg) = err("bind2", "[[listener]]\nbind = \"*:70000\"\n");
        assert!(msg.contains("no valid port"), "{msg}");
        let (_, msg) = err("bind3", "[[listener]]\nbind = \"example.com:1883\"\n");
        assert!(msg.contains("not an address and port"), "{msg}");
        let (line, msg) = err("nobind", "[[listener]]\nallow_anonymous = true\n");
        assert_eq!(line, 1);
        assert!(msg.contains("missing field `bind`"), "{msg}");
        assert!(msg.contains("add bind = \"0.0.0.0:1883\""), "{msg}");
        let (line, msg) = err(
            "dup",
            "[[listener]]\nbind = \"*:1883\"\n[[listener]]\nbind = \"[::]:1883\"\n",
        );
        assert_eq!(line, 4);
        assert!(
            msg.contains("[::]:1883 is already a listener (line 2)"),
            "{msg}"
        );
    }

    #[test]
    fn bad_log_settings() {
        let (line, msg) = err("level", "[log]\nlevel = \"inf\"\n");
        assert_eq!(line, 2);
        assert!(msg.contains("\"inf\" is not a log level"), "{msg}");
        let (line, msg) = err("dest", "[log]\ndest = [\"stderr\",\n  \"syslog\"]\n");
        assert_eq!(line, 3);
        assert!(msg.contains("\"syslog\" is not a log destination"), "{msg}");
        let (_, msg) = err("dest2", "[log]\ndest = [\"file:\"]\n");
        assert!(msg.contains("not a log destination"), "{msg}");
    }
}
