//! Mosquitto's `mosquitto.conf`, read with Mosquitto 2.0's semantics.
//!
//! One option per line, the name first and its values after it, separated by spaces or
//! tabs; lines starting with `#` and blank lines are skipped. Every Mosquitto option is
//! recognised: those midge acts on fill the [`Config`], the others produce a [`Warning`]
//! so nothing is silently ignored, and a name that is not a Mosquitto option at all (a
//! typo) is an error suggesting the option it was probably meant to be.
//!
//! As in Mosquitto:
//! - `listener <port> [<address>]` starts a listener block; `max_connections`, and
//!   `allow_anonymous` under `per_listener_settings true`, apply to the block they are in.
//!   Options before the first `listener` belong to the default listener, which exists only
//!   if `port` or `bind_address` is given.
//! - Without `per_listener_settings true`, `allow_anonymous` is global, wherever it is.
//! - `include_dir` reads the directory's `*.conf` files in Mosquitto's order (case-blind
//!   first), only from the main file; each file starts outside any listener block.
//! - No `listener`/`port`/`bind_address` at all leaves [`Config::listeners`] empty: the
//!   caller then listens on loopback only, like Mosquitto 2.0's local-only mode.
//!
//! Where midge differs, it errs on the safe side and says so: a listener that needs TLS,
//! websockets or a Unix socket is not opened (rather than serving plain MQTT on it), and a
//! listener without `allow_anonymous` keeps midge's default (anonymous from loopback only)
//! instead of refusing every anonymous client.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::persist::Durability;

use super::{
    CertificateIdentity, Config, ConfigError, Listener, Loaded, LogDest, Security, Tls, Warning,
    read_text, suggest,
};

/// Options midge acts on.
const SUPPORTED: &[&str] = &[
    "acl_file",
    "allow_anonymous",
    "cafile",
    "capath",
    "certfile",
    "keyfile",
    "require_certificate",
    "use_identity_as_username",
    "use_subject_as_username",
    "bind_address",
    "include_dir",
    "listener",
    "log_dest",
    "log_type",
    "max_connections",
    "max_inflight_messages",
    "max_keepalive",
    "max_packet_size",
    "max_queued_bytes",
    "max_queued_messages",
    "max_topic_alias",
    "message_size_limit",
    "password_file",
    "per_listener_settings",
    "persistence",
    "persistence_location",
    "autosave_interval",
    "port",
    "protocol",
    "queue_qos0_messages",
    "retain_available",
    "sys_interval",
];

/// Mosquitto 2.0/2.1 options midge does not act on yet: accepted with a warning.
const UNSUPPORTED: &[&str] = &[
    "accept_protocol_versions",
    "allow_duplicate_messages",
    "allow_zero_length_clientid",
    "auth_plugin",
    "auth_plugin_deny_special_chars",
    "auto_id_prefix",
    "autosave_on_changes",
    "bind_interface",
    "check_retain_source",
    "ciphers",
    "ciphers_tls1.3",
    "clientid_prefixes",
    "connection_messages",
    "crlfile",
    "dhparamfile",
    "disable_client_cert_date_checks",
    "enable_control_api",
    "enable_proxy_protocol",
    "global_max_clients",
    "global_max_connections",
    "global_plugin",
    "http_dir",
    "log_facility",
    "log_timestamp",
    "log_timestamp_format",
    "max_inflight_bytes",
    "max_qos",
    "max_topic_alias_broker",
    "maximum_qos",
    "memory_limit",
    "mount_point",
    "persistence_file",
    "persistent_client_expiration",
    "pid_file",
    "plugin",
    "plugin_load",
    "plugin_use",
    "proxy_protocol_v2_require_tls",
    "psk_file",
    "psk_hint",
    "retained_persistence",
    "retry_interval",
    "set_tcp_nodelay",
    "socket_domain",
    "tls_engine",
    "tls_engine_kpass_sha1",
    "tls_keyform",
    "tls_version",
    "upgrade_outgoing_qos",
    "use_username_as_clientid",
    "user",
    "websockets_headers_size",
    "websockets_log_level",
    "websockets_origin",
];

/// Bridge options (`connection` and the lines of its block): accepted with a warning.
const BRIDGE: &[&str] = &[
    "address",
    "addresses",
    "bridge_alpn",
    "bridge_attempt_unsubscribe",
    "bridge_bind_address",
    "bridge_cafile",
    "bridge_capath",
    "bridge_certfile",
    "bridge_ciphers",
    "bridge_ciphers_tls1.3",
    "bridge_identity",
    "bridge_insecure",
    "bridge_keyfile",
    "bridge_max_packet_size",
    "bridge_max_topic_alias",
    "bridge_outgoing_retain",
    "bridge_protocol_version",
    "bridge_psk",
    "bridge_receive_maximum",
    "bridge_reload_type",
    "bridge_require_ocsp",
    "bridge_session_expiry_interval",
    "bridge_tcp_keepalive",
    "bridge_tcp_user_timeout",
    "bridge_tls_use_os_certs",
    "bridge_tls_version",
    "cleansession",
    "clientid",
    "connection",
    "idle_timeout",
    "keepalive_interval",
    "local_cleansession",
    "local_clientid",
    "local_password",
    "local_username",
    "notification_topic",
    "notifications",
    "notifications_local_only",
    "password",
    "remote_clientid",
    "remote_password",
    "remote_username",
    "restart_timeout",
    "round_robin",
    "start_type",
    "threshold",
    "topic",
    "try_private",
    "username",
];

/// Plugin option families (`auth_opt_<key> <value>`): accepted with a warning.
const UNSUPPORTED_PREFIXES: &[&str] = &["auth_opt_", "plugin_opt_"];

/// Security options: `per_listener_settings` must come before all of them.
const SECURITY: &[&str] = &[
    "acl_file",
    "allow_anonymous",
    "allow_zero_length_clientid",
    "auth_plugin",
    "auto_id_prefix",
    "password_file",
    "plugin",
    "psk_file",
];

/// Listener options that make the listener one midge cannot serve yet (TLS-PSK).
const TLS_LISTENER: &[&str] = &["psk_hint"];

/// MQTT's largest payload (a 268,435,455-byte remaining length less the smallest header).
const MQTT_MAX_PAYLOAD: i64 = 268_435_455;

pub(super) fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let mut parser = Parser::default();
    // As in Mosquitto, nothing is persisted unless the file says `persistence true`.
    parser.config.persistence = Durability::Off;
    parser.read_file(path, 0)?;
    parser.finish()
}

/// Where a line is.
#[derive(Debug, Clone)]
struct Loc {
    file: PathBuf,
    line: usize,
}

impl Loc {
    fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.clone(),
            line: self.line,
            message: message.into(),
        }
    }
}

/// One listener block, or the default listener.
#[derive(Debug, Default)]
struct Block {
    /// The `listener` line; for the default listener, the first `port`/`bind_address`.
    at: Option<Loc>,
    port: Option<u16>,
    /// `None`: every interface (IPv4 and IPv6).
    addrs: Option<Vec<IpAddr>>,
    max_connections: Option<usize>,
    /// Security options given in this block (with `per_listener_settings true`).
    security: Security,
    /// TLS options given in this block.
    tls: TlsOptions,
    /// Why midge cannot open this listener (TLS, websockets, Unix socket).
    unsupported: Option<String>,
    /// Default listener only: the first per-listener option given for it.
    first_setting: Option<(Loc, String)>,
}

/// A listener block's TLS options as read; `certfile` and `keyfile` make it TLS.
#[derive(Debug, Default)]
struct TlsOptions {
    /// The first TLS option's line, for errors.
    at: Option<Loc>,
    certfile: Option<PathBuf>,
    keyfile: Option<PathBuf>,
    cafile: Option<PathBuf>,
    capath: Option<PathBuf>,
    require_certificate: bool,
    identity: CertificateIdentity,
}

impl TlsOptions {
    fn settings(&self) -> Result<Option<Tls>, ConfigError> {
        let Some(at) = &self.at else { return Ok(None) };
        match (&self.certfile, &self.keyfile) {
            (Some(certfile), Some(keyfile)) => Ok(Some(Tls {
                certfile: certfile.clone(),
                keyfile: keyfile.clone(),
                cafile: self.cafile.clone(),
                capath: self.capath.clone(),
                require_certificate: self.require_certificate,
                identity: self.identity,
            })),
            (None, _) => Err(at.error(
                "a TLS listener needs certfile (the server certificate) and keyfile; add \
                 \"certfile /path/to/server.crt\" to this listener",
            )),
            (Some(_), None) => Err(at.error(
                "a TLS listener needs keyfile (the server's private key) too; add \
                 \"keyfile /path/to/server.key\" to this listener",
            )),
        }
    }
}

/// Which listener block the lines of the current file are in.
#[derive(Debug, Clone, Copy)]
enum Current {
    Default,
    Block(usize),
}

/// What one file's lines are inside; each file, included ones too, starts afresh.
#[derive(Debug)]
struct FileState {
    listener: Current,
    /// The bridge (`connection <name>`) whose block this is, if any.
    bridge: Option<String>,
}

/// Severity of the `log_type`s given, least to most verbose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verbosity {
    Off,
    Error,
    Warn,
    Info,
    Debug,
}

#[derive(Debug, Default)]
struct Parser {
    config: Config,
    warnings: Vec<Warning>,
    per_listener_settings: bool,
    /// The first security option, which `per_listener_settings true` must precede.
    first_security: Option<(Loc, String)>,
    /// Global security options (without `per_listener_settings true`).
    security: Security,
    default_listener: Block,
    blocks: Vec<Block>,
    /// `None` until a `log_type` line.
    verbosity: Option<Verbosity>,
    /// `None` until a `log_dest` line.
    log_dest: Option<Vec<LogDest>>,
    log_file_at: Option<Loc>,
}

impl Parser {
    fn warn(&mut self, at: &Loc, message: impl Into<String>) {
        self.warnings.push(Warning {
            file: at.file.clone(),
            line: at.line,
            message: message.into(),
        });
    }

    fn read_file(&mut self, path: &Path, level: usize) -> Result<(), ConfigError> {
        let text = read_text(path)?;
        let mut state = FileState {
            listener: Current::Default,
            bridge: None,
        };
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, rest) = match line.split_once(char::is_whitespace) {
                Some((name, rest)) => (name, rest.trim()),
                None => (line, ""),
            };
            let at = Loc {
                file: path.to_owned(),
                line: index + 1,
            };
            self.option(&at, &mut state, name, rest, level)?;
        }
        Ok(())
    }

    fn block(&mut self, current: Current) -> &mut Block {
        match current {
            Current::Default => &mut self.default_listener,
            Current::Block(i) => &mut self.blocks[i],
        }
    }

    /// The listener block a per-listener option on this line applies to.
    fn tls_option(&mut self, at: &Loc, state: &FileState, name: &str) -> &mut TlsOptions {
        let tls = &mut self.listener_option(at, state, name).tls;
        tls.at.get_or_insert_with(|| at.clone());
        tls
    }

    /// Where a security option goes: the listener block with `per_listener_settings true`,
    /// else the global settings.
    fn security(&mut self, at: &Loc, state: &FileState, name: &str) -> &mut Security {
        if self.per_listener_settings {
            &mut self.listener_option(at, state, name).security
        } else {
            &mut self.security
        }
    }

    fn listener_option(&mut self, at: &Loc, state: &FileState, name: &str) -> &mut Block {
        let block = self.block(state.listener);
        if matches!(state.listener, Current::Default) && block.first_setting.is_none() {
            block.first_setting = Some((at.clone(), name.to_owned()));
        }
        block
    }

    fn option(
        &mut self,
        at: &Loc,
        state: &mut FileState,
        name: &str,
        rest: &str,
        level: usize,
    ) -> Result<(), ConfigError> {
        if SECURITY.contains(&name) && self.first_security.is_none() {
            self.first_security = Some((at.clone(), name.to_owned()));
        }
        match name {
            "listener" => self.listener(at, state, rest)?,
            "port" => {
                let port = self.int(at, name, rest)?;
                if !(1..=65535).contains(&port) {
                    return Err(out_of_range(at, name, port, "ports are 1 to 65535"));
                }
                if self.default_listener.port.is_some() {
                    self.warn(
                        at,
                        "port is given more than once; only the last one is used",
                    );
                }
                let default = &mut self.default_listener;
                default.port = Some(port as u16);
                default.at.get_or_insert_with(|| at.clone());
            }
            "bind_address" => {
                let host = self.one_value(at, name, rest)?;
                let addrs = resolve(at, name, host)?;
                let default = &mut self.default_listener;
                default.addrs = Some(addrs);
                default.at.get_or_insert_with(|| at.clone());
            }
            "allow_anonymous" => {
                let allow = self.bool(at, name, rest)?;
                self.security(at, state, name).allow_anonymous = Some(allow);
            }
            "password_file" => {
                let path = PathBuf::from(self.one_value(at, name, rest)?);
                self.security(at, state, name).password_file = Some(path);
            }
            "acl_file" => {
                let path = PathBuf::from(self.one_value(at, name, rest)?);
                self.security(at, state, name).acl_file = Some(path);
            }
            "certfile" | "keyfile" | "cafile" | "capath" => {
                let path = PathBuf::from(self.one_value(at, name, rest)?);
                let tls = self.tls_option(at, state, name);
                *match name {
                    "certfile" => &mut tls.certfile,
                    "keyfile" => &mut tls.keyfile,
                    "cafile" => &mut tls.cafile,
                    _ => &mut tls.capath,
                } = Some(path);
            }
            "require_certificate" => {
                let on = self.bool(at, name, rest)?;
                self.tls_option(at, state, name).require_certificate = on;
            }
            "use_identity_as_username" | "use_subject_as_username" => {
                if self.bool(at, name, rest)? {
                    self.tls_option(at, state, name).identity =
                        if name == "use_identity_as_username" {
                            CertificateIdentity::CommonName
                        } else {
                            CertificateIdentity::Subject
                        };
                }
            }
            "per_listener_settings" => {
                let on = self.bool(at, name, rest)?;
                if on && let Some((first, option)) = &self.first_security {
                    return Err(at.error(format!(
                        "per_listener_settings must come before every security option, but \
                         {option} is set first at {}:{} (move \"per_listener_settings true\" \
                         to the top of the main configuration file)",
                        first.file.display(),
                        first.line
                    )));
                }
                self.per_listener_settings = on;
            }
            "max_connections" => {
                let max = self.int(at, name, rest)?;
                let max = usize::try_from(max).ok(); // negative: no limit
                self.listener_option(at, state, name).max_connections = max;
            }
            "max_keepalive" => {
                let v = self.int(at, name, rest)?;
                let v = u16::try_from(v)
                    .map_err(|_| out_of_range(at, name, v, "it is 0 to 65535 seconds"))?;
                self.config.limits.max_keepalive = v;
            }
            "max_packet_size" => {
                let v = self.int(at, name, rest)?;
                let max = midge_wire::MAX_PACKET_SIZE as i64;
                if !(20..=max).contains(&v) {
                    let range = format!("it is 20 to {max} bytes");
                    return Err(out_of_range(at, name, v, &range));
                }
                self.config.limits.max_packet_size = v as u32;
            }
            "message_size_limit" => {
                let v = self.int(at, name, rest)?;
                if !(0..=MQTT_MAX_PAYLOAD).contains(&v) {
                    let range = format!("it is 0 (no limit) to {MQTT_MAX_PAYLOAD} bytes");
                    return Err(out_of_range(at, name, v, &range));
                }
                self.config.limits.message_size_limit = v as u32;
            }
            "max_inflight_messages" => {
                let v = self.int(at, name, rest)?;
                if v > 65535 {
                    return Err(out_of_range(at, name, v, "it is 0 (no limit) to 65535"));
                }
                // Mosquitto: 0, 65535 or negative = no limit; 65535 is MQTT's largest window.
                self.config.limits.max_inflight_messages = if v <= 0 { 65535 } else { v as usize };
            }
            "max_queued_messages" => {
                let v = self.int(at, name, rest)?;
                self.config.limits.max_queued_messages = usize::try_from(v).unwrap_or(0);
            }
            "max_queued_bytes" => {
                let v = self.int(at, name, rest)?;
                self.config.limits.max_queued_bytes = usize::try_from(v).unwrap_or(0);
            }
            "queue_qos0_messages" => {
                self.config.limits.queue_qos0_messages = self.bool(at, name, rest)?;
            }
            "retain_available" => {
                self.config.limits.retain_available = self.bool(at, name, rest)?;
            }
            "max_topic_alias" => {
                let v = self.int(at, name, rest)?;
                self.config.limits.max_topic_alias = u16::try_from(v)
                    .map_err(|_| out_of_range(at, name, v, "it is 0 (no aliases) to 65535"))?;
            }
            "sys_interval" => {
                let v = self.int(at, name, rest)?;
                let v = u16::try_from(v)
                    .map_err(|_| out_of_range(at, name, v, "it is 0 (off) to 65535 seconds"))?;
                self.config.sys_interval = Duration::from_secs(v.into());
            }
            "log_type" => self.log_type(at, rest)?,
            "log_dest" => self.log_dest(at, rest)?,
            "include_dir" => {
                if rest.is_empty() {
                    return Err(missing(at, name));
                }
                if level == 0 {
                    self.include_dir(at, rest)?;
                } else {
                    self.warn(
                        at,
                        "include_dir in an included file is ignored (as Mosquitto does); \
                         move it to the main configuration file",
                    );
                }
            }
            "persistence" => {
                self.config.persistence = if self.bool(at, name, rest)? {
                    Durability::Sync
                } else {
                    Durability::Off
                };
            }
            "autosave_interval" => {
                self.int(at, name, rest)?;
                self.warn(
                    at,
                    "autosave_interval is not needed: midge writes every change as it \
                     happens and acknowledges QoS 1/2 messages once they are on disk; ignored",
                );
            }
            "persistence_location" => {
                if rest.is_empty() {
                    return Err(missing(at, name));
                }
                self.config.data_dir = Some(PathBuf::from(rest));
            }
            "protocol" => {
                let protocol = self.one_value(at, name, rest)?;
                match protocol {
                    "mqtt" => {}
                    "websockets" => {
                        self.warn(at, unsupported_message(name));
                        self.listener_option(at, state, name)
                            .unsupported
                            .get_or_insert_with(|| "websockets".into());
                    }
                    other => {
                        return Err(at.error(format!(
                            "protocol expects mqtt or websockets, got \"{other}\" \
                             (write e.g. \"protocol mqtt\")"
                        )));
                    }
                }
            }
            "connection" => {
                let bridge = rest.split_whitespace().next().unwrap_or("").to_owned();
                self.warn(
                    at,
                    format!(
                        "{} (bridge \"{bridge}\" will not run; its options below are ignored too)",
                        unsupported_message(name)
                    ),
                );
                state.bridge = Some(bridge);
            }
            _ if BRIDGE.contains(&name) => {
                let message = match &state.bridge {
                    Some(bridge) => format!("{} (bridge \"{bridge}\")", unsupported_message(name)),
                    None => unsupported_message(name),
                };
                self.warn(at, message);
            }
            _ if TLS_LISTENER.contains(&name) => {
                self.warn(at, unsupported_message(name));
                self.listener_option(at, state, name)
                    .unsupported
                    .get_or_insert_with(|| format!("TLS ({name})"));
            }
            _ if UNSUPPORTED.contains(&name)
                || UNSUPPORTED_PREFIXES.iter().any(|p| name.starts_with(p)) =>
            {
                self.warn(at, unsupported_message(name));
            }
            _ => {
                let known = SUPPORTED.iter().chain(UNSUPPORTED).chain(BRIDGE).copied();
                let message = match suggest(name, known) {
                    Some(option) => {
                        format!("unknown option \"{name}\" (did you mean \"{option}\"?)")
                    }
                    None => format!(
                        "unknown option \"{name}\": it is not a Mosquitto option (check the \
                         spelling against mosquitto.conf(5), or delete the line)"
                    ),
                };
                return Err(at.error(message));
            }
        }
        Ok(())
    }

    fn listener(&mut self, at: &Loc, state: &mut FileState, rest: &str) -> Result<(), ConfigError> {
        let mut tokens = rest.split_whitespace();
        let Some(port) = tokens.next() else {
            return Err(missing(at, "listener"));
        };
        let port = parse_int(at, "listener", port)?;
        let host = tokens.next().filter(|t| !t.starts_with('#'));
        self.extra_values(at, "listener", tokens);
        let mut block = Block {
            at: Some(at.clone()),
            ..Block::default()
        };
        match (port, host) {
            (0, None) => {
                return Err(at.error(
                    "a listener on port 0 needs a Unix socket path, and midge does not support \
                     Unix sockets yet (write a TCP port, e.g. \"listener 1883\")",
                ));
            }
            (0, Some(path)) => {
                block.unsupported = Some(format!("a Unix socket ({path})"));
            }
            (1..=65535, host) => {
                block.port = Some(port as u16);
                block.addrs = host.map(|h| resolve(at, "listener", h)).transpose()?;
            }
            _ => {
                return Err(out_of_range(at, "listener", port, "ports are 1 to 65535"));
            }
        }
        self.blocks.push(block);
        state.listener = Current::Block(self.blocks.len() - 1);
        state.bridge = None;
        Ok(())
    }

    fn log_type(&mut self, at: &Loc, rest: &str) -> Result<(), ConfigError> {
        let kind = self.one_value(at, "log_type", rest)?;
        let verbosity = match kind {
            "none" => {
                self.verbosity = Some(Verbosity::Off);
                return Ok(());
            }
            "debug" | "all" => Verbosity::Debug,
            "information" | "notice" | "subscribe" | "unsubscribe" | "websockets" | "internal" => {
                Verbosity::Info
            }
            "warning" => Verbosity::Warn,
            "error" => Verbosity::Error,
            other => {
                return Err(at.error(format!(
                    "log_type expects one of debug, error, warning, notice, information, \
                     subscribe, unsubscribe, websockets, internal, none or all, got \"{other}\" \
                     (write e.g. \"log_type all\")"
                )));
            }
        };
        self.verbosity = Some(self.verbosity.unwrap_or(Verbosity::Off).max(verbosity));
        Ok(())
    }

    fn log_dest(&mut self, at: &Loc, rest: &str) -> Result<(), ConfigError> {
        let (kind, path) = match rest.split_once(char::is_whitespace) {
            Some((kind, path)) => (kind, path.trim()),
            None => (rest, ""),
        };
        if kind.is_empty() {
            return Err(missing(at, "log_dest"));
        }
        let dest = match kind {
            "none" => {
                self.log_dest = Some(Vec::new());
                return Ok(());
            }
            "stderr" => LogDest::Stderr,
            "stdout" => LogDest::Stdout,
            "file" => {
                if path.is_empty() {
                    return Err(at.error(
                        "log_dest file needs a path (write e.g. \
                         \"log_dest file /var/log/mosquitto/mosquitto.log\")",
                    ));
                }
                if let Some(first) = &self.log_file_at {
                    return Err(at.error(format!(
                        "log_dest file is given twice (first at {}:{}); midge writes to one \
                         log file (delete one of the lines)",
                        first.file.display(),
                        first.line
                    )));
                }
                self.log_file_at = Some(at.clone());
                LogDest::File(PathBuf::from(path))
            }
            "syslog" | "topic" | "dlt" => {
                self.warn(
                    at,
                    format!("log_dest {kind} is not supported, logging to stderr"),
                );
                LogDest::Stderr
            }
            other => {
                return Err(at.error(format!(
                    "log_dest expects stderr, stdout, file <path>, syslog, topic, dlt or none, \
                     got \"{other}\" (write e.g. \"log_dest stderr\")"
                )));
            }
        };
        if kind != "file" {
            self.extra_values(at, "log_dest", path.split_whitespace());
        }
        let dests = self.log_dest.get_or_insert_with(Vec::new);
        if !dests.contains(&dest) {
            dests.push(dest);
        }
        Ok(())
    }

    fn include_dir(&mut self, at: &Loc, dir: &str) -> Result<(), ConfigError> {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            at.error(format!(
                "include_dir {dir}: cannot open the directory: {e} (create it, correct the \
                 path, or delete the line)"
            ))
        })?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| {
                at.error(format!("include_dir {dir}: cannot list the directory: {e}"))
            })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.len() > ".conf".len() && name.ends_with(".conf") {
                files.push((name, entry.path()));
            }
        }
        files.sort_by(|(a, _), (b, _)| mosquitto_order(a.as_bytes(), b.as_bytes()));
        for (_, path) in files {
            self.read_file(&path, 1)?;
        }
        Ok(())
    }

    /// The single value of an option; extra words after it are warned about (Mosquitto
    /// ignores them) unless they are a `#` comment.
    fn one_value<'a>(
        &mut self,
        at: &Loc,
        name: &str,
        rest: &'a str,
    ) -> Result<&'a str, ConfigError> {
        let mut tokens = rest.split_whitespace();
        let value = tokens.next().ok_or_else(|| missing(at, name))?;
        self.extra_values(at, name, tokens);
        Ok(value)
    }

    fn extra_values<'a>(&mut self, at: &Loc, name: &str, tokens: impl Iterator<Item = &'a str>) {
        let extra: Vec<&str> = tokens.collect();
        if extra.first().is_some_and(|t| !t.starts_with('#')) {
            self.warn(
                at,
                format!(
                    "{name}: extra text \"{}\" after the value is ignored",
                    extra.join(" ")
                ),
            );
        }
    }

    fn int(&mut self, at: &Loc, name: &str, rest: &str) -> Result<i64, ConfigError> {
        let value = self.one_value(at, name, rest)?;
        parse_int(at, name, value)
    }

    fn bool(&mut self, at: &Loc, name: &str, rest: &str) -> Result<bool, ConfigError> {
        match self.one_value(at, name, rest)? {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            other => Err(at.error(format!(
                "{name} expects true or false, got \"{other}\" (write e.g. \"{}\")",
                example(name)
            ))),
        }
    }

    /// Turns the blocks into listeners and applies what depends on the whole file.
    fn finish(mut self) -> Result<Loaded, ConfigError> {
        let default = std::mem::take(&mut self.default_listener);
        if default.at.is_some() {
            self.blocks.push(Block {
                port: default.port.or(Some(1883)),
                ..default
            });
        } else if let Some((at, option)) = default.first_setting {
            self.warn(
                &at,
                format!(
                    "{option} is outside any listener block and no default listener is defined \
                     (no port or bind_address), so it has no effect; put it after a \
                     \"listener\" line"
                ),
            );
        }

        let mut listeners: Vec<Listener> = Vec::new();
        let mut defined_at: HashMap<SocketAddr, Loc> = HashMap::new();
        let mut first_unsupported: Option<(Loc, String)> = None;
        let blocks = std::mem::take(&mut self.blocks);
        for block in &blocks {
            let at = block.at.clone().expect("every block has a location");
            if let Some(reason) = &block.unsupported {
                let what = match block.port {
                    Some(port) => format!("listener on port {port}"),
                    None => "listener".to_owned(),
                };
                let message = format!(
                    "this {what} needs {reason}, which midge does not support yet; \
                     it is not opened"
                );
                self.warn(&at, message.clone());
                first_unsupported.get_or_insert((at, message));
                continue;
            }
            let port = block.port.expect("a supported listener has a port");
            let addrs = match &block.addrs {
                Some(addrs) => addrs.clone(),
                None => vec![Ipv4Addr::UNSPECIFIED.into(), Ipv6Addr::UNSPECIFIED.into()],
            };
            for ip in addrs {
                let addr = SocketAddr::new(ip, port);
                if let Some(first) = defined_at.get(&addr) {
                    return Err(at.error(format!(
                        "{addr} is already a listener (defined at {}:{}); delete one of them",
                        first.file.display(),
                        first.line
                    )));
                }
                defined_at.insert(addr, at.clone());
                listeners.push(Listener {
                    addr,
                    security: block.security.clone(),
                    tls: block.tls.settings()?,
                    max_connections: block.max_connections,
                });
            }
        }
        if listeners.is_empty()
            && let Some((at, message)) = first_unsupported
        {
            return Err(at.error(format!(
                "{message}, and no other listener is defined (add a plain listener, e.g. \
                 \"listener 1883\", to serve MQTT without TLS)"
            )));
        }
        // Without per_listener_settings, security options cover every listener.
        for listener in &mut listeners {
            listener.security = listener.security.or(&self.security);
        }
        self.config.listeners = listeners;

        if let Some(verbosity) = self.verbosity {
            self.config.log.filter = match verbosity {
                Verbosity::Off => "off",
                Verbosity::Error => "error",
                Verbosity::Warn => "warn",
                Verbosity::Info => "info",
                Verbosity::Debug => "debug",
            }
            .into();
        }
        if let Some(dest) = self.log_dest {
            self.config.log.dest = dest;
        }
        Ok(Loaded {
            config: self.config,
            warnings: self.warnings,
            security: self.security,
        })
    }
}

fn unsupported_message(name: &str) -> String {
    format!("option {name} is not supported yet by midge; ignored")
}

fn parse_int(at: &Loc, name: &str, value: &str) -> Result<i64, ConfigError> {
    value.parse().map_err(|_| {
        at.error(format!(
            "{name} expects a number, got \"{value}\" (write e.g. \"{}\")",
            example(name)
        ))
    })
}

fn missing(at: &Loc, name: &str) -> ConfigError {
    at.error(format!(
        "{name} needs a value (write e.g. \"{}\")",
        example(name)
    ))
}

fn out_of_range(at: &Loc, name: &str, value: i64, range: &str) -> ConfigError {
    at.error(format!(
        "{name} {value} is out of range: {range} (write e.g. \"{}\")",
        example(name)
    ))
}

/// A correct line for `name`, for error messages.
fn example(name: &str) -> &'static str {
    match name {
        "listener" => "listener 1883 0.0.0.0",
        "port" => "port 1883",
        "bind_address" => "bind_address 127.0.0.1",
        "allow_anonymous" => "allow_anonymous false",
        "require_certificate" => "require_certificate true",
        "use_identity_as_username" => "use_identity_as_username true",
        "use_subject_as_username" => "use_subject_as_username true",
        "password_file" => "password_file /etc/mosquitto/passwd",
        "acl_file" => "acl_file /etc/mosquitto/acl",
        "per_listener_settings" => "per_listener_settings true",
        "max_connections" => "max_connections 1000",
        "max_keepalive" => "max_keepalive 65535",
        "max_packet_size" => "max_packet_size 1048576",
        "message_size_limit" => "message_size_limit 0",
        "max_inflight_messages" => "max_inflight_messages 20",
        "max_queued_messages" => "max_queued_messages 1000",
        "max_queued_bytes" => "max_queued_bytes 0",
        "queue_qos0_messages" => "queue_qos0_messages false",
        "retain_available" => "retain_available true",
        "max_topic_alias" => "max_topic_alias 10",
        "sys_interval" => "sys_interval 10",
        "log_type" => "log_type all",
        "log_dest" => "log_dest stderr",
        "include_dir" => "include_dir /etc/mosquitto/conf.d",
        "persistence_location" => "persistence_location /var/lib/mosquitto/",
        "persistence" => "persistence true",
        "autosave_interval" => "autosave_interval 1800",
        "protocol" => "protocol mqtt",
        _ => "see mosquitto.conf(5)",
    }
}

/// The addresses of `listener`/`bind_address` host: an IP address, `localhost` (IPv4 and
/// IPv6 loopback), or a host name resolved now, as Mosquitto does.
fn resolve(at: &Loc, option: &str, host: &str) -> Result<Vec<IpAddr>, ConfigError> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    if bare.eq_ignore_ascii_case("localhost") {
        return Ok(vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()]);
    }
    let fail = |reason: String| {
        at.error(format!(
            "{option}: cannot use \"{host}\" as an address: {reason} (write an IP address of \
             this machine, e.g. \"{}\", or leave the address out to listen on every interface)",
            example(option)
        ))
    };
    let mut addrs: Vec<IpAddr> = Vec::new();
    for addr in (bare, 0)
        .to_socket_addrs()
        .map_err(|e| fail(e.to_string()))?
    {
        if !addrs.contains(&addr.ip()) {
            addrs.push(addr.ip());
        }
    }
    if addrs.is_empty() {
        return Err(fail("the name has no address".into()));
    }
    Ok(addrs)
}

/// Mosquitto's include_dir order: case-blind first, then by case at the first difference.
fn mosquitto_order(a: &[u8], b: &[u8]) -> Ordering {
    for (&x, &y) in a.iter().zip(b) {
        let (ux, uy) = (x.to_ascii_uppercase(), y.to_ascii_uppercase());
        if ux != uy {
            return ux.cmp(&uy);
        }
        if x != y {
            return x.cmp(&y);
        }
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

    use super::*;
    use crate::config::load as load_any;

    /// A fresh directory for one test.
    fn temp_dir(test: &str) -> PathBuf {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, AtomicOrdering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("midge-mosquitto-{}-{n}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Loads `text` as a mosquitto.conf.
    fn parse(test: &str, text: &str) -> Result<Loaded, ConfigError> {
        let dir = temp_dir(test);
        let path = write(&dir, "mosquitto.conf", text);
        let result = load_any(&path);
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    fn ok(test: &str, text: &str) -> Loaded {
        parse(test, text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(test: &str, text: &str) -> (usize, String) {
        match parse(test, text) {
            Ok(loaded) => panic!("expected an error, got {loaded:?}"),
            Err(e) => (e.line().expect("a line"), e.to_string()),
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn empty_file_is_the_defaults_with_no_listener() {
        let loaded = ok("empty", "");
        let defaults = Config {
            persistence: Durability::Off,
            ..Config::default()
        };
        assert_eq!(loaded.config, defaults);
        assert!(loaded.warnings.is_empty());
        assert_eq!(loaded.security.allow_anonymous, None);
    }

    #[test]
    fn comments_blank_lines_and_crlf() {
        let text = "# a comment\r\n\r\n   \n  # indented comment\n\tmax_keepalive 60\r\n\
                    max_queued_messages\t\t50   # trailing comment\n";
        let loaded = ok("comments", text);
        assert_eq!(loaded.config.limits.max_keepalive, 60);
        assert_eq!(loaded.config.limits.max_queued_messages, 50);
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    }

    #[test]
    fn every_global_option() {
        let text = "\
max_keepalive 300
max_packet_size 1048576
message_size_limit 65536
max_inflight_messages 5
max_queued_messages 200
max_queued_bytes 1000000
queue_qos0_messages true
retain_available false
max_topic_alias 4
sys_interval 0
persistence_location /var/lib/mosquitto/
log_type debug
log_dest stdout
";
        let c = ok("globals", text).config;
        assert_eq!(c.limits.max_keepalive, 300);
        assert_eq!(c.limits.max_packet_size, 1_048_576);
        assert_eq!(c.limits.message_size_limit, 65_536);
        assert_eq!(c.limits.max_inflight_messages, 5);
        assert_eq!(c.limits.max_queued_messages, 200);
        assert_eq!(c.limits.max_queued_bytes, 1_000_000);
        assert!(c.limits.queue_qos0_messages);
        assert_eq!(c.limits.max_topic_alias, 4);
        assert!(!c.limits.retain_available);
        assert_eq!(c.sys_interval, Duration::ZERO);
        assert_eq!(c.data_dir, Some(PathBuf::from("/var/lib/mosquitto/")));
        assert_eq!(c.log.filter, "debug");
        assert_eq!(c.log.dest, vec![LogDest::Stdout]);
        assert!(c.listeners.is_empty());
        assert_eq!(c.limits.connect_timeout, Duration::from_secs(10));
    }

    #[test]
    fn mosquitto_no_limit_spellings() {
        let c = ok(
            "nolimit",
            "max_inflight_messages 0\nmax_queued_messages -1\n",
        )
        .config;
        assert_eq!(c.limits.max_inflight_messages, 65535);
        assert_eq!(c.limits.max_queued_messages, 0);
        let c = ok(
            "nolimit2",
            "max_inflight_messages 65535\nmax_queued_bytes -5\n",
        )
        .config;
        assert_eq!(c.limits.max_inflight_messages, 65535);
        assert_eq!(c.limits.max_queued_bytes, 0);
        let c = ok("boolnum", "queue_qos0_messages 1\nretain_available 0\n").config;
        assert!(c.limits.queue_qos0_messages);
        assert!(!c.limits.retain_available);
    }

    #[test]
    fn listener_without_address_is_every_interface() {
        let c = ok("listener-any", "listener 1883\n").config;
        assert_eq!(c.listeners, Config::all_interfaces(1883));
    }

    #[test]
    fn listener_addresses() {
        let text = "listener 1883 127.0.0.1\nlistener 1884 ::1\nlistener 1885 localhost\n\
                    listener 1886 [::1]\n";
        let c = ok("listener-addr", text).config;
        let addrs: Vec<SocketAddr> = c.listeners.iter().map(|l| l.addr).collect();
        assert_eq!(
            addrs,
            vec![
                addr("127.0.0.1:1883"),
                addr("[::1]:1884"),
                addr("127.0.0.1:1885"),
                addr("[::1]:1885"),
                addr("[::1]:1886"),
            ]
        );
        assert!(
            c.listeners
                .iter()
                .all(|l| l.security.allow_anonymous.is_none())
        );
    }

    #[test]
    fn listener_bad_ports() {
        let (line, msg) = err("port-range", "# c\nlistener 70000\n");
        assert_eq!(line, 2);
        assert!(msg.contains("listener 70000 is out of range"), "{msg}");
        assert!(
            msg.contains("write e.g. \"listener 1883 0.0.0.0\""),
            "{msg}"
        );
        let (_, msg) = err("port-nan", "listener mqtt\n");
        assert!(
            msg.contains("listener expects a number, got \"mqtt\""),
            "{msg}"
        );
        let (_, msg) = err("port-missing", "listener\n");
        assert!(msg.contains("listener needs a value"), "{msg}");
        let (_, msg) = err("port-zero", "listener 0\n");
        assert!(msg.contains("Unix socket"), "{msg}");
        let (_, msg) = err("port-port", "port 0\n");
        assert!(msg.contains("port 0 is out of range"), "{msg}");
    }

    #[test]
    fn unix_socket_listener_is_skipped_with_a_warning() {
        let loaded = ok("unix", "listener 0 /run/mosquitto.sock\nlistener 1883\n");
        assert_eq!(loaded.config.listeners, Config::all_interfaces(1883));
        assert_eq!(loaded.warnings.len(), 1);
        assert_eq!(loaded.warnings[0].line, 1);
        assert!(loaded.warnings[0].message.contains("Unix socket"));
    }

    #[test]
    fn default_listener_from_port_and_bind_address() {
        let c = ok("port", "port 1884\n").config;
        assert_eq!(c.listeners, Config::all_interfaces(1884));

        let c = ok("bind", "bind_address 127.0.0.1\nmax_connections 5\n").config;
        assert_eq!(c.listeners.len(), 1);
        assert_eq!(c.listeners[0].addr, addr("127.0.0.1:1883"));
        assert_eq!(c.listeners[0].max_connections, Some(5));

        // The default listener comes after the `listener` blocks, as in Mosquitto, and
        // keeps the settings made before the first `listener` line.
        let text = "max_connections 10\nport 1884\nlistener 1885 127.0.0.1\nmax_connections -1\n";
        let c = ok("both", text).config;
        let summary: Vec<(SocketAddr, Option<usize>)> = c
            .listeners
            .iter()
            .map(|l| (l.addr, l.max_connections))
            .collect();
        assert_eq!(
            summary,
            vec![
                (addr("127.0.0.1:1885"), None),
                (addr("0.0.0.0:1884"), Some(10)),
                (addr("[::]:1884"), Some(10)),
            ]
        );
    }

    #[test]
    fn port_twice_warns() {
        let loaded = ok("port-twice", "port 1883\nport 1884\n");
        assert_eq!(loaded.config.listeners, Config::all_interfaces(1884));
        assert_eq!(loaded.warnings.len(), 1);
        assert_eq!(loaded.warnings[0].line, 2);
    }

    #[test]
    fn listener_setting_without_a_listener_warns() {
        let loaded = ok("orphan", "max_connections 10\n");
        assert!(loaded.config.listeners.is_empty());
        assert_eq!(loaded.warnings.len(), 1);
        assert_eq!(loaded.warnings[0].line, 1);
        assert!(
            loaded.warnings[0].message.contains("no effect"),
            "{}",
            loaded.warnings[0]
        );
    }

    #[test]
    fn max_connections_per_listener() {
        let text = "listener 1883 127.0.0.1\nmax_connections 100\nlistener 1884 127.0.0.1\n\
                    max_connections -1\nlistener 1885 127.0.0.1\nmax_connections 0\n";
        let c = ok("maxconn", text).config;
        let max: Vec<Option<usize>> = c.listeners.iter().map(|l| l.max_connections).collect();
        assert_eq!(max, vec![Some(100), None, Some(0)]);
        let (line, msg) = err("maxconn-bad", "listener 1883\nmax_connections many\n");
        assert_eq!(line, 2);
        assert!(
            msg.contains("max_connections expects a number, got \"many\""),
            "{msg}"
        );
    }

    #[test]
    fn allow_anonymous_is_global_without_per_listener_settings() {
        let text = "listener 1883\nlistener 1884 127.0.0.1\nallow_anonymous true\n";
        let loaded = ok("anon-global", text);
        assert_eq!(loaded.config.listeners.len(), 3);
        assert!(
            loaded
                .config
                .listeners
                .iter()
                .all(|l| l.security.allow_anonymous == Some(true))
        );
        assert_eq!(loaded.security.allow_anonymous, Some(true));

        let loaded = ok(
            "anon-global-off",
            "allow_anonymous false\nlistener 1883 ::1\n",
        );
        assert_eq!(
            loaded.config.listeners[0].security.allow_anonymous,
            Some(false)
        );

        // No listener: nothing to apply it to yet; the caller gets the global value.
        let loaded = ok("anon-nolistener", "allow_anonymous true\n");
        assert!(loaded.config.listeners.is_empty());
        assert_eq!(loaded.security.allow_anonymous, Some(true));
        assert!(loaded.warnings.is_empty());
    }

    #[test]
    fn allow_anonymous_per_listener() {
        let text = "per_listener_settings true\nlistener 1883 127.0.0.1\nallow_anonymous true\n\
                    listener 1884 127.0.0.1\nlistener 1885 127.0.0.1\nallow_anonymous false\n";
        let loaded = ok("anon-per", text);
        let anon: Vec<Option<bool>> = loaded
            .config
            .listeners
            .iter()
            .map(|l| l.security.allow_anonymous)
            .collect();
        assert_eq!(anon, vec![Some(true), None, Some(false)]);
        assert_eq!(loaded.security.allow_anonymous, None);

        // Before any `listener`, it is the default listener's.
        let text = "per_listener_settings true\nallow_anonymous true\nport 1883\n\
                    listener 1884 ::1\n";
        let loaded = ok("anon-per-default", text);
        let anon: Vec<(SocketAddr, Option<bool>)> = loaded
            .config
            .listeners
            .iter()
            .map(|l| (l.addr, l.security.allow_anonymous))
            .collect();
        assert_eq!(
            anon,
            vec![
                (addr("[::1]:1884"), None),
                (addr("0.0.0.0:1883"), Some(true)),
                (addr("[::]:1883"), Some(true)),
            ]
        );

        let loaded = ok(
            "per-off",
            "per_listener_settings false\nlistener 1883\nallow_anonymous true\n",
        );
        assert!(
            loaded
                .config
                .listeners
                .iter()
                .all(|l| l.security.allow_anonymous == Some(true))
        );
    }

    #[test]
    fn per_listener_settings_must_come_first() {
        let (line, msg) = err(
            "per-late",
            "allow_anonymous true\nper_listener_settings true\n",
        );
        assert_eq!(line, 2);
        assert!(msg.contains("allow_anonymous is set first at"), "{msg}");
        assert!(msg.contains("mosquitto.conf:1"), "{msg}");
    }

    #[test]
    fn log_types() {
        let filter = |test: &str, text: &str| ok(test, text).config.log.filter;
        assert_eq!(filter("lt-default", ""), "info");
        assert_eq!(filter("lt-all", "log_type all\n"), "debug");
        assert_eq!(
            filter("lt-debug", "log_type error\nlog_type debug\n"),
            "debug"
        );
        assert_eq!(filter("lt-none", "log_type none\n"), "off");
        assert_eq!(
            filter("lt-none-then", "log_type none\nlog_type warning\n"),
            "warn"
        );
        assert_eq!(filter("lt-error", "log_type error\n"), "error");
        assert_eq!(
            filter(
                "lt-info",
                "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n\
                 log_type subscribe\nlog_type unsubscribe\nlog_type websockets\n"
            ),
            "info"
        );
        let (line, msg) = err("lt-bad", "\nlog_type verbose\n");
        assert_eq!(line, 2);
        assert!(msg.contains("got \"verbose\""), "{msg}");
        let (_, msg) = err("lt-empty", "log_type\n");
        assert!(msg.contains("log_type needs a value"), "{msg}");
    }

    #[test]
    fn log_dests() {
        let dest = |test: &str, text: &str| ok(test, text).config.log.dest;
        assert_eq!(dest("ld-default", ""), vec![LogDest::Stderr]);
        assert_eq!(
            dest("ld-stdout", "log_dest stdout\n"),
            vec![LogDest::Stdout]
        );
        assert_eq!(dest("ld-none", "log_dest none\n"), vec![]);
        assert_eq!(
            dest(
                "ld-many",
                "log_dest stderr\nlog_dest file /var/log/my log.txt\nlog_dest stderr\n"
            ),
            vec![LogDest::Stderr, LogDest::File("/var/log/my log.txt".into())]
        );
        assert_eq!(dest("ld-reset", "log_dest stdout\nlog_dest none\n"), vec![]);

        let loaded = ok("ld-syslog", "log_dest syslog\nlog_dest topic\n");
        assert_eq!(loaded.config.log.dest, vec![LogDest::Stderr]);
        assert_eq!(loaded.warnings.len(), 2);
        assert_eq!(
            loaded.warnings[0].message,
            "log_dest syslog is not supported, logging to stderr"
        );

        let (line, msg) = err("ld-twice", "log_dest file /a\nlog_dest file /b\n");
        assert_eq!(line, 2);
        assert!(msg.contains("given twice"), "{msg}");
        let (_, msg) = err("ld-nofile", "log_dest file\n");
        assert!(msg.contains("log_dest file needs a path"), "{msg}");
        let (_, msg) = err("ld-bad", "log_dest printer\n");
        assert!(msg.contains("got \"printer\""), "{msg}");
    }

    #[test]
    fn bad_values_name_file_line_and_fix() {
        let (line, msg) = err("bad-number", "\n\nmax_inflight_messages lots\n");
        assert_eq!(line, 3);
        assert!(
            msg.ends_with(
                ":3: max_inflight_messages expects a number, got \"lots\" \
                 (write e.g. \"max_inflight_messages 20\")"
            ),
            "{msg}"
        );
        assert!(msg.contains("mosquitto.conf:3:"), "{msg}");
        let (_, msg) = err("bad-small", "max_packet_size 10\n");
        assert!(
            msg.contains("max_packet_size 10 is out of range: it is 20 to"),
            "{msg}"
        );
        let (_, msg) = err("bad-big", "max_packet_size 300000000\n");
        assert!(msg.contains("out of range"), "{msg}");
        let (_, msg) = err("bad-keepalive", "max_keepalive 65536\n");
        assert!(msg.contains("max_keepalive 65536 is out of range"), "{msg}");
        let (_, msg) = err("bad-msl", "message_size_limit -1\n");
        assert!(msg.contains("out of range"), "{msg}");
        let (_, msg) = err("bad-inflight", "max_inflight_messages 70000\n");
        assert!(msg.contains("out of range"), "{msg}");
        let (_, msg) = err("bad-sys", "sys_interval -1\n");
        assert!(msg.contains("sys_interval -1 is out of range"), "{msg}");
        let (_, msg) = err("bad-bool", "retain_available yes\n");
        assert!(
            msg.contains("retain_available expects true or false, got \"yes\" (write e.g. \"retain_available true\")"),
            "{msg}"
        );
        let (_, msg) = err("bad-missing", "max_queued_messages\n");
        assert!(msg.contains("max_queued_messages needs a value"), "{msg}");
        let (_, msg) = err("bad-persist", "persistence_location\n");
        assert!(msg.contains("persistence_location needs a value"), "{msg}");
        let (_, msg) = err("bad-protocol", "listener 1883\nprotocol mqttsn\n");
        assert!(msg.contains("protocol expects mqtt or websockets"), "{msg}");
    }

    #[test]
    fn extra_values_warn() {
        let loaded = ok(
            "extra",
            "max_keepalive 60 120\nmax_queued_messages 5 # five\n",
        );
        assert_eq!(loaded.config.limits.max_keepalive, 60);
        assert_eq!(loaded.warnings.len(), 1);
        assert_eq!(loaded.warnings[0].line, 1);
        assert!(loaded.warnings[0].message.contains("\"120\""));
    }

    #[test]
    fn unknown_option_suggests_the_known_one() {
        let (line, msg) = err("typo", "listener 1883\nmax_inflight_mesages 20\n");
        assert_eq!(line, 2);
        assert!(
            msg.contains("unknown option \"max_inflight_mesages\""),
            "{msg}"
        );
        assert!(
            msg.contains("did you mean \"max_inflight_messages\"?"),
            "{msg}"
        );
        let (_, msg) = err("typo-unsupported", "pasword_file /etc/pw\n");
        assert!(msg.contains("did you mean \"password_file\"?"), "{msg}");
        let (_, msg) = err("typo-case", "Listener 1883\n");
        assert!(msg.contains("did you mean \"listener\"?"), "{msg}");
        let (_, msg) = err("nonsense", "frobnicate yes\n");
        assert!(msg.contains("unknown option \"frobnicate\": it is not a Mosquitto option"));
    }

    #[test]
    fn unsupported_options_warn_with_file_and_line() {
        let text = "listener 1883\n\npsk_file /etc/mosquitto/psk\nauth_plugin /x.so\n\
                    auth_opt_backend files\nplugin_opt_x y\nuser mosquitto\n";
        let dir = temp_dir("unsupported");
        let path = write(&dir, "main.conf", text);
        let loaded = load_any(&path).unwrap();
        let lines: Vec<usize> = loaded.warnings.iter().map(|w| w.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6, 7]);
        assert_eq!(
            loaded.warnings[0].to_string(),
            format!(
                "{}:3: option psk_file is not supported yet by midge; ignored",
                path.display()
            )
        );
        assert_eq!(loaded.config.listeners, Config::all_interfaces(1883));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn password_and_acl_files_are_global_or_per_listener() {
        let global = ok(
            "sec-global",
            "listener 1883\npassword_file /etc/p\nlistener 1884 127.0.0.1\nacl_file /etc/a\n",
        );
        for listener in &global.config.listeners {
            assert_eq!(listener.security.password_file, Some("/etc/p".into()));
            assert_eq!(listener.security.acl_file, Some("/etc/a".into()));
        }
        assert_eq!(global.security.password_file, Some("/etc/p".into()));
        let per = ok(
            "sec-per",
            "per_listener_settings true\nlistener 1883 127.0.0.1\npassword_file /etc/p1\n\
             listener 1884 127.0.0.1\nacl_file /etc/a2\n",
        );
        let l = &per.config.listeners;
        assert_eq!(
            (
                l[0].security.password_file.clone(),
                l[0].security.acl_file.clone()
            ),
            (Some("/etc/p1".into()), None)
        );
        assert_eq!(
            (
                l[1].security.password_file.clone(),
                l[1].security.acl_file.clone()
            ),
            (None, Some("/etc/a2".into()))
        );
        assert_eq!(per.security, Security::default());
    }

    #[test]
    fn every_listed_unsupported_option_warns() {
        let text: String = UNSUPPORTED
            .iter()
            .chain(BRIDGE)
            .filter(|o| !TLS_LISTENER.contains(o))
            .map(|o| format!("{o} x\n"))
            .collect();
        let loaded = ok("all-unsupported", &text);
        assert_eq!(loaded.warnings.len(), text.lines().count());
        // No option is in two lists.
        let all: Vec<&str> = SUPPORTED
            .iter()
            .chain(UNSUPPORTED)
            .chain(BRIDGE)
            .copied()
            .collect();
        let unique: std::collections::HashSet<&str> = all.iter().copied().collect();
        assert_eq!(all.len(), unique.len());
    }

    #[test]
    fn bridge_config_loads_with_warnings() {
        let text = "\
listener 1883
connection cloud
address broker.example.com:8883
topic sensors/# out 1
remote_username pi
bridge_cafile /etc/ssl/ca.pem
listener 1884 127.0.0.1
max_connections 5
";
        let loaded = ok("bridge", text);
        let lines: Vec<usize> = loaded.warnings.iter().map(|w| w.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6]);
        assert!(
            loaded.warnings[0]
                .message
                .contains("bridge \"cloud\" will not run")
        );
        assert!(loaded.warnings[2].message.contains("(bridge \"cloud\")"));
        assert_eq!(loaded.config.listeners.len(), 3);
        assert_eq!(loaded.config.listeners[2].max_connections, Some(5));
    }

    #[test]
    fn tls_listeners_and_their_options() {
        let text = "listener 1883\nlistener 8883 127.0.0.1\ncertfile /etc/c.pem\nkeyfile /etc/k.pem\n\
                    cafile /etc/ca.pem\nrequire_certificate true\nuse_identity_as_username true\n";
        let loaded = ok("tls", text);
        let listeners = &loaded.config.listeners;
        assert!(
            listeners[..2].iter().all(|l| l.tls.is_none()),
            "listener 1883 stays plain"
        );
        let tls = listeners[2].tls.as_ref().expect("8883 is TLS");
        assert_eq!(tls.certfile, PathBuf::from("/etc/c.pem"));
        assert_eq!(tls.keyfile, PathBuf::from("/etc/k.pem"));
        assert_eq!(tls.cafile, Some(PathBuf::from("/etc/ca.pem")));
        assert!(tls.require_certificate);
        assert_eq!(tls.identity, CertificateIdentity::CommonName);
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);

        let (line, msg) = err("tls-nokey", "listener 8883\ncertfile /etc/c.pem\n");
        assert_eq!(line, 2);
        assert!(msg.contains("keyfile"), "{msg}");
        let (line, msg) = err("tls-nocert", "listener 8883\ncafile /etc/ca.pem\n");
        assert_eq!(line, 2);
        assert!(msg.contains("certfile"), "{msg}");

        let (line, msg) = err("psk-only", "listener 8883\npsk_hint hint\n");
        assert_eq!(line, 1);
        assert!(msg.contains("no other listener"), "{msg}");

        let loaded = ok("ws", "listener 1883\nlistener 9001\nprotocol websockets\n");
        assert_eq!(loaded.config.listeners, Config::all_interfaces(1883));
        assert!(
            loaded
                .warnings
                .iter()
                .any(|w| w.message.contains("needs websockets"))
        );

        let loaded = ok("mqtt", "listener 1883\nprotocol mqtt\n");
        assert!(loaded.warnings.is_empty());
    }

    #[test]
    fn duplicate_listener_is_an_error() {
        let (line, msg) = err("dup", "listener 1883\nlistener 1883 ::\n");
        assert_eq!(line, 2);
        assert!(
            msg.contains("[::]:1883 is already a listener (defined at"),
            "{msg}"
        );
    }

    #[test]
    fn bad_address_is_an_error() {
        let (line, msg) = err("badaddr", "listener 1883 300.1.1.1\n");
        assert_eq!(line, 1);
        assert!(
            msg.contains("cannot use \"300.1.1.1\" as an address"),
            "{msg}"
        );
    }

    #[test]
    fn include_dir_order_and_locations() {
        let dir = temp_dir("include");
        let conf_d = dir.join("conf.d");
        std::fs::create_dir(&conf_d).unwrap();
        write(&conf_d, "b.conf", "listener 1004 127.0.0.1\n");
        write(&conf_d, "a.conf", "listener 1003 127.0.0.1\n");
        write(&conf_d, "A.conf", "listener 1002 127.0.0.1\n");
        write(
            &conf_d,
            "10-first.conf",
            "\n# first\nlistener 1001 127.0.0.1\npid_file /x\n",
        );
        write(&conf_d, "README", "not a config file\n");
        write(&conf_d, "c.conf.disabled", "garbage\n");
        write(&conf_d, ".conf", "garbage\n");
        let main = write(
            &dir,
            "mosquitto.conf",
            &format!(
                "listener 1000 127.0.0.1\ninclude_dir {}\nmax_connections 7\n",
                conf_d.display()
            ),
        );
        let loaded = load_any(&main).unwrap();
        let ports: Vec<u16> = loaded
            .config
            .listeners
            .iter()
            .map(|l| l.addr.port())
            .collect();
        assert_eq!(ports, vec![1000, 1001, 1002, 1003, 1004]);
        // The main file's listener block continues after the include.
        assert_eq!(loaded.config.listeners[0].max_connections, Some(7));
        assert_eq!(loaded.config.listeners[1].max_connections, None);
        assert_eq!(loaded.warnings.len(), 1);
        assert_eq!(loaded.warnings[0].file, conf_d.join("10-first.conf"));
        assert_eq!(loaded.warnings[0].line, 4);

        // An error inside an included file names that file and its line.
        write(
            &conf_d,
            "b.conf",
            "# ok\nmax_keepalive 10\nmax_keepalive ten\n",
        );
        let e = load_any(&main).unwrap_err();
        assert_eq!(e.file(), conf_d.join("b.conf"));
        assert_eq!(e.line(), Some(3));
        assert!(
            e.to_string()
                .starts_with(&format!("{}:3: ", conf_d.join("b.conf").display()))
        );

        // include_dir inside an included file is ignored, with a warning.
        write(
            &conf_d,
            "b.conf",
            &format!("include_dir {}\n", conf_d.display()),
        );
        let loaded = load_any(&main).unwrap();
        assert!(
            loaded
                .warnings
                .iter()
                .any(|w| w.file == conf_d.join("b.conf")
                    && w.line == 1
                    && w.message.contains("include_dir in an included file"))
        );

        let (line, msg) = err("include-missing", "include_dir /nonexistent/midge/conf.d\n");
        assert_eq!(line, 1);
        assert!(msg.contains("cannot open the directory"), "{msg}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn include_order_matches_mosquitto() {
        let mut names = vec!["b.conf", "a.conf", "B.conf", "10.conf", "A.conf", "ab.conf"];
        names.sort_by(|a, b| mosquitto_order(a.as_bytes(), b.as_bytes()));
        assert_eq!(
            names,
            vec!["10.conf", "A.conf", "a.conf", "ab.conf", "B.conf", "b.conf"]
        );
    }

    #[test]
    fn debian_default_config_loads_with_warnings_only() {
        let dir = temp_dir("debian");
        let conf_d = dir.join("conf.d");
        std::fs::create_dir(&conf_d).unwrap();
        write(
            &conf_d,
            "README",
            "Any files placed in this directory that have a .conf ending will be loaded as\n\
             config files by the broker. Use this to make your local config.\n",
        );
        let text = format!(
            "\
# Place your local configuration in /etc/mosquitto/conf.d/
#
# A full description of the configuration file is at
# /usr/share/doc/mosquitto/examples/mosquitto.conf.example

pid_file /run/mosquitto/mosquitto.pid

persistence true
persistence_location /var/lib/mosquitto/

log_dest file /var/log/mosquitto/mosquitto.log

include_dir {}
",
            conf_d.display()
        );
        let main = write(&dir, "mosquitto.conf", &text);
        let loaded = load_any(&main).unwrap();
        let warned: Vec<(usize, &str)> = loaded
            .warnings
            .iter()
            .map(|w| (w.line, w.message.as_str()))
            .collect();
        assert_eq!(
            warned,
            vec![(6, "option pid_file is not supported yet by midge; ignored"),]
        );
        let c = loaded.config;
        assert!(c.listeners.is_empty());
        assert_eq!(c.data_dir, Some(PathBuf::from("/var/lib/mosquitto/")));
        assert_eq!(
            c.log.dest,
            vec![LogDest::File("/var/log/mosquitto/mosquitto.log".into())]
        );
        assert_eq!(c.log.filter, "info");

        // A local listener dropped into conf.d, the usual way to open the network.
        write(
            &conf_d,
            "local.conf",
            "listener 1883\nallow_anonymous true\n",
        );
        let loaded = load_any(&main).unwrap();
        assert_eq!(loaded.config.listeners.len(), 2);
        assert!(
            loaded
                .config
                .listeners
                .iter()
                .all(|l| l.security.allow_anonymous == Some(true))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn not_utf8_is_an_error_with_a_line() {
        let dir = temp_dir("utf8");
        let path = dir.join("bad.conf");
        std::fs::write(&path, b"port 1883\nlog_dest file /tmp/\xff\n").unwrap();
        let e = load_any(&path).unwrap_err();
        assert_eq!(e.line(), Some(2));
        assert!(e.to_string().contains("UTF-8"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
