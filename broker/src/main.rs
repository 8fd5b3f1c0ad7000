use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use midge::config::{Config, Listener};
use midge::server::Server;
use tracing::{error, info};

/// midge: a small, fast MQTT broker.
#[derive(Debug, Parser)]
#[command(version, about, disable_help_flag = true)]
struct Args {
    /// Listen on this port on all interfaces (as Mosquitto's -p). Repeatable.
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    ports: Vec<u16>,
    /// Listen on this address and port. Repeatable.
    #[arg(long = "bind", value_name = "ADDR:PORT")]
    binds: Vec<SocketAddr>,
    /// Log everything (debug level), as Mosquitto's -v.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Log level or tracing filter (error, warn, info, debug, trace).
    #[arg(long = "log-level", value_name = "LEVEL")]
    log_level: Option<String>,
    /// Print help (-h, as Mosquitto).
    #[arg(short = 'h', long = "help", action = clap::ArgAction::Help)]
    help: Option<bool>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = args
        .log_level
        .clone()
        .unwrap_or_else(|| if args.verbose { "debug" } else { "info" }.into());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let config = config_from_args(&args);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let server = match Server::bind(&config).await {
            Ok(s) => s,
            Err(e) => {
                error!("{e}");
                return ExitCode::FAILURE;
            }
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
        if args.ports.is_empty() && args.binds.is_empty() {
            info!(
                "Local only. To serve the network: --bind 0.0.0.0:1883 (clients from other hosts \
                 are refused unless they authenticate; anonymous access is for loopback only)."
            );
        }
        server.run(shutdown_signal()).await;
        ExitCode::SUCCESS
    })
}

fn config_from_args(args: &Args) -> Config {
    let mut config = Config::default();
    for &port in &args.ports {
        config.listeners.extend(Config::all_interfaces(port));
    }
    config
        .listeners
        .extend(args.binds.iter().map(|&addr| Listener::new(addr)));
    if config.listeners.is_empty() {
        config.listeners = Config::loopback_listeners(1883);
    }
    config
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
