use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use midge::config::{self, Config, Listener, Loaded, LogConfig, LogDest, Security};
use midge::persist::Durability;
use midge::security::access::ListenerAccess;
use midge::server::Server;
use midge::tls::TlsAcceptor;
use tracing::{error, info, warn};
use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriterExt};

/// midge: a small, fast MQTT broker, a drop-in for Mosquitto.
///
/// Settings come from the configuration file (-c), then the command line: -p and --bind
/// add listeners to the file's, --data-dir, --persistence, -v and --log-level replace the
/// file's values.
/// With no listener anywhere, midge listens on 127.0.0.1:1883 and [::1]:1883 only.
#[derive(Debug, Parser)]
#[command(version, about, disable_help_flag = true)]
struct Args {
    /// Configuration file: midge TOML if the name ends in .toml, else mosquitto.conf.
    #[arg(
        short = 'c',
        long = "config",
        visible_alias = "config-file",
        value_name = "FILE"
    )]
    config: Option<PathBuf>,
    /// Listen on this port on all interfaces (IPv4 and IPv6). Repeatable.
    #[arg(short = 'p', long = "port", value_name = "PORT",
          value_parser = clap::value_parser!(u16).range(1..))]
    ports: Vec<u16>,
    /// Listen on this address and port, e.g. 192.168.1.10:1883 or [::1]:1883. Repeatable.
    #[arg(long = "bind", value_name = "ADDR:PORT")]
    binds: Vec<SocketAddr>,
    /// Where persistent state lives (overrides persistence_location / data_dir).
    #[arg(long = "data-dir", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// When QoS 1/2 messages are on disk: sync (before they are acknowledged), periodic
    /// (every flush_interval_ms, 1 s by default), or off (memory only). Overrides the file.
    #[arg(long = "persistence", value_name = "MODE")]
    persistence: Option<PersistenceArg>,
    /// Log everything (debug level), as Mosquitto's -v.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Log level or tracing filter (off, error, warn, info, debug, trace, "midge=debug,warn").
    #[arg(long = "log-level", value_name = "LEVEL")]
    log_level: Option<String>,
    /// Check the configuration, print its warnings and "configuration OK" or the error, and
    /// exit (0 when it is valid, 1 when not) without starting the broker.
    #[arg(long = "test-config")]
    test_config: bool,
    /// Print help (-h, as Mosquitto).
    #[arg(short = 'h', long = "help", action = clap::ArgAction::Help)]
    help: Option<bool>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum PersistenceArg {
    Sync,
    Periodic,
    Off,
}

/// The configuration to run with, and what to tell the user about it once logging is up.
#[derive(Debug)]
struct Settings {
    config: Config,
    warnings: Vec<String>,
    /// No listener was configured: the loopback default is in use.
    local_only: bool,
}

fn main() -> ExitCode {
    // `midge passwd ...` manages password files (as mosquitto_passwd); anything else is
    // the broker's own command line.
    if midge::passwd_cli::is_passwd(std::env::args_os().nth(1).as_deref()) {
        return midge::passwd_cli::main(std::env::args_os().skip(2));
    }
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            // Help and version go to stdout and succeed; a bad argument is exit code 1.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let settings = match settings(&args) {
        Ok(s) => s,
        Err(message) => {
            eprintln!("midge: {message}");
            return ExitCode::FAILURE;
        }
    };
    if args.test_config {
        return test_config(&settings);
    }

    let mut logging = match Logging::open(&settings.config.log) {
        Ok(logging) => logging,
        Err(message) => {
            eprintln!("midge: {message}");
            return ExitCode::FAILURE;
        }
    };
    logging.init(&settings.config.log.filter);
    for warning in &settings.warnings {
        warn!("{warning}");
    }
    if settings.local_only {
        info!("{}", LOCAL_ONLY);
    }

    let config = settings.config;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fatal(&logging, &format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(async {
        let server = match Server::bind(&config).await {
            Ok(s) => s,
            Err(e) => return fatal(&logging, &e.to_string()),
        };
        let addrs: Vec<String> = server
            .local_addrs()
            .iter()
            .map(ToString::to_string)
            .collect();
        info!(
            "midge {} listening on {}",
            env!("CARGO_PKG_VERSION"),
            addrs.join(", ")
        );
        midge::systemd::ready();
        tokio::spawn(midge::systemd::watchdog());
        server
            .run(async {
                shutdown_signal().await;
                midge::systemd::stopping();
            })
            .await;
        ExitCode::SUCCESS
    })
}

const LOCAL_ONLY: &str = "No listener configured: midge is local-only (clients on this machine \
    only). To serve the network, add a listener (`listener 1883` in mosquitto.conf, \
    [[listener]] bind = \"*:1883\" in midge TOML, or --bind 0.0.0.0:1883); clients from other \
    hosts are then refused unless allow_anonymous true is set for it, or a password_file.";

/// The file's settings with the command line's applied on top.
fn settings(args: &Args) -> Result<Settings, String> {
    let loaded = match &args.config {
        Some(path) => config::load(path).map_err(|e| e.to_string())?,
        None => Loaded::defaults(),
    };
    let mut warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    let mut config = loaded.config;

    let mut added: Vec<Listener> = Vec::new();
    for &port in &args.ports {
        added.extend(Config::all_interfaces(port));
    }
    added.extend(args.binds.iter().map(|&addr| Listener::new(addr)));
    for mut listener in added {
        if config.listeners.iter().any(|l| l.addr == listener.addr) {
            warnings.push(format!(
                "{} is given on the command line and in the configuration file; listening once",
                listener.addr
            ));
            continue;
        }
        // mosquitto.conf's global security options cover every listener.
        listener.security = loaded.security.clone();
        config.listeners.push(listener);
    }

    if let Some(dir) = &args.data_dir {
        config.data_dir = Some(dir.clone());
    }
    if let Some(mode) = args.persistence {
        config.persistence = match (mode, config.persistence) {
            (PersistenceArg::Sync, _) => Durability::Sync,
            (PersistenceArg::Off, _) => Durability::Off,
            (PersistenceArg::Periodic, Durability::Periodic(every)) => Durability::Periodic(every),
            (PersistenceArg::Periodic, _) => Durability::Periodic(Duration::from_secs(1)),
        };
    }
    if let Some(level) = &args.log_level {
        config::check_log_filter(level).map_err(|e| format!("--log-level: {e}"))?;
        config.log.filter = level.clone();
    } else if args.verbose {
        config.log.filter = "debug".into();
    }

    let local_only = config.listeners.is_empty();
    if local_only {
        config.listeners = Config::loopback_listeners(1883);
        for listener in &mut config.listeners {
            // Password and ACL files still apply; allow_anonymous does not (see below).
            listener.security = Security {
                allow_anonymous: None,
                ..loaded.security.clone()
            };
        }
        if loaded.security.allow_anonymous == Some(false) {
            warnings.push(
                "allow_anonymous false has no effect in local-only mode (as in Mosquitto): \
                 clients on this machine may connect anonymously"
                    .into(),
            );
        }
    }
    Ok(Settings {
        config,
        warnings,
        local_only,
    })
}

/// `--test-config`: report on the configuration without starting anything.
fn test_config(settings: &Settings) -> ExitCode {
    // Report to the terminal whatever the configured log destination is.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .init();
    for warning in &settings.warnings {
        warn!("{warning}");
    }
    for dest in &settings.config.log.dest {
        if let LogDest::File(path) = dest
            && let Err(message) = check_log_file(path)
        {
            eprintln!("midge: {message}");
            return ExitCode::FAILURE;
        }
    }
    // The files the listeners name must load too: password, ACL, certificates.
    for listener in &settings.config.listeners {
        let files = ListenerAccess::load(&listener.security).and_then(|_| {
            listener
                .tls
                .as_ref()
                .map_or(Ok(()), |tls| TlsAcceptor::load(tls).map(drop))
        });
        if let Err(message) = files {
            eprintln!("midge: {message}");
            return ExitCode::FAILURE;
        }
    }
    if settings.local_only {
        info!("{}", LOCAL_ONLY);
    }
    println!("configuration OK");
    ExitCode::SUCCESS
}

/// Whether the broker could append to the log file, without creating it.
fn check_log_file(path: &Path) -> Result<(), String> {
    let error = |e: std::io::Error| format!("cannot open log file {}: {e}", path.display());
    if path.exists() {
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
            .map_err(error)
    } else {
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if parent.is_dir() {
            Ok(())
        } else {
            Err(format!(
                "cannot open log file {}: directory {} does not exist",
                path.display(),
                parent.display()
            ))
        }
    }
}

/// Where log lines go, opened.
#[derive(Debug)]
struct Logging {
    /// `None`: logging is off (or the subscriber is installed).
    writer: Option<BoxMakeWriter>,
    ansi: bool,
    /// Error lines reach stderr through the log.
    to_stderr: bool,
}

impl Logging {
    fn open(log: &LogConfig) -> Result<Self, String> {
        let mut writer: Option<BoxMakeWriter> = None;
        let add = |acc: Option<BoxMakeWriter>, next: BoxMakeWriter| {
            Some(match acc {
                None => next,
                Some(acc) => BoxMakeWriter::new(acc.and(next)),
            })
        };
        for dest in &log.dest {
            let next = match dest {
                LogDest::Stderr => BoxMakeWriter::new(std::io::stderr),
                LogDest::Stdout => BoxMakeWriter::new(std::io::stdout),
                LogDest::File(path) => {
                    let file = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?;
                    BoxMakeWriter::new(Arc::new(file))
                }
            };
            writer = add(writer, next);
        }
        let ansi = match log.dest.as_slice() {
            [LogDest::Stderr] => std::io::stderr().is_terminal(),
            [LogDest::Stdout] => std::io::stdout().is_terminal(),
            _ => false,
        };
        let to_stderr = log.dest.contains(&LogDest::Stderr);
        Ok(Self {
            writer,
            ansi,
            to_stderr,
        })
    }

    /// Installs the subscriber; with no destination, logging stays off.
    fn init(&mut self, filter: &str) {
        let Some(writer) = self.writer.take() else {
            self.to_stderr = false;
            return;
        };
        let filter = tracing_subscriber::EnvFilter::try_new(filter)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        if filter.max_level_hint() == Some(tracing::level_filters::LevelFilter::OFF) {
            self.to_stderr = false;
        }
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .with_ansi(self.ansi)
            .init();
    }
}

/// Logs a fatal error and makes sure it reaches the terminal as one line.
fn fatal(logging: &Logging, message: &str) -> ExitCode {
    error!("{message}");
    if !logging.to_stderr {
        eprintln!("midge: {message}");
    }
    ExitCode::FAILURE
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
