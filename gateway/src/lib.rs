//! midge's CoAP-to-MQTT gateway: constrained devices publish with `PUT`/`POST
//! coap://gw/ps/{topic}`, read retained values with `GET`, and subscribe with Observe.
//!
//! The CoAP side ([`engine`]) is sans-IO: datagrams, broker events and the time go in,
//! datagrams and broker commands come out. [`server`] wraps it in tokio with a UDP socket
//! and rumqttc connections ([`link`]). [`run`] is the entry point for the `midge-gateway`
//! binary and for the broker when it runs the gateway in its own process.

pub mod block;
pub mod broker;
pub mod config;
pub mod content_format;
pub mod dedup;
pub mod engine;
pub mod link;
pub mod observe;
pub mod query;
pub mod server;
pub mod topic;

use std::future::Future;

pub use config::{ConfigError, GatewayConfig};

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("CoAP listener {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// Serves CoAP on `config.listen`, bridging to the broker at `config.broker`, until
/// `shutdown` completes. Logs `CoAP gateway listening on udp ADDR` once bound.
pub async fn run(
    config: GatewayConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), GatewayError> {
    let limits = config.limits()?;
    let settings = config.broker_settings()?;
    let socket = tokio::net::UdpSocket::bind(config.listen)
        .await
        .map_err(|source| GatewayError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = socket.local_addr().map_err(|source| GatewayError::Bind {
        addr: config.listen,
        source,
    })?;
    tracing::info!(
        "CoAP gateway listening on udp {addr}, broker {}:{}",
        settings.host,
        settings.port
    );
    server::serve(socket, settings, limits, shutdown).await;
    Ok(())
}
