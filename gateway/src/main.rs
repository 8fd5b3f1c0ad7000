//! `midge-gateway`: the CoAP-to-MQTT gateway as a program of its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use midge_gateway::GatewayConfig;

/// CoAP (UDP) to MQTT gateway: PUT/POST coap://HOST/ps/TOPIC publishes, GET reads the
/// retained message, GET with Observe subscribes.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// TOML file with gateway settings; options given here override it.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// UDP address to serve CoAP on [default: 0.0.0.0:5683].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// MQTT broker, HOST[:PORT] [default: 127.0.0.1:1883; port 8883 with --tls].
    #[arg(long, value_name = "HOST:PORT")]
    broker: Option<String>,
    /// User name for devices that give none.
    #[arg(long)]
    username: Option<String>,
    /// Password for devices that give none.
    #[arg(long)]
    password: Option<String>,
    /// Connect to the broker with TLS.
    #[arg(long)]
    tls: bool,
    /// PEM file of the CA certificates to trust for the broker's TLS certificate.
    #[arg(long, value_name = "FILE")]
    cafile: Option<PathBuf>,
    /// Log filter (error, warn, info, debug, trace, or a tracing directive).
    #[arg(long, default_value = "info")]
    log_level: String,
}

impl Args {
    fn config(self) -> Result<GatewayConfig, midge_gateway::ConfigError> {
        let mut config = match &self.config {
            Some(path) => GatewayConfig::from_file(path)?,
            None => GatewayConfig::default(),
        };
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(broker) = self.broker {
            config.broker = broker;
        }
        config.username = self.username.or(config.username);
        config.password = self.password.or(config.password);
        config.tls |= self.tls;
        config.cafile = self.cafile.or(config.cafile);
        Ok(config)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    // rumqttc warns about every UNSUBACK "no subscription existed", which the gateway
    // provokes on purpose (see link.rs); keep its state module quiet unless asked for.
    let mut filter = args.log_level.clone();
    if !filter.contains("rumqttc") {
        filter.push_str(",rumqttc::v5::state=error");
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&filter)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::env::var_os("NO_COLOR").is_none())
        .init();
    let config = match args.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("midge-gateway: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("midge-gateway: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match runtime.block_on(midge_gateway::run(config, shutdown)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("midge-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}
