//! The gateway's settings: a TOML table (a file of its own for `midge-gateway --config`, or
//! a `[coap]` table in the broker's configuration) with command-line overrides.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use crate::engine::Limits;
use crate::link::BrokerSettings;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("broker address {0:?}: expected HOST or HOST:PORT")]
    BrokerAddress(String),
    #[error("TLS to the broker needs `cafile` (the CA that signed its certificate)")]
    NoCaFile,
    #[error("cafile {path}: {why}")]
    CaFile { path: PathBuf, why: String },
    #[error("{0} must be at least 1")]
    Zero(&'static str),
}

/// Everything the gateway needs to run; every key has a default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// The UDP address CoAP is served on.
    pub listen: SocketAddr,
    /// The MQTT broker, `HOST[:PORT]` (port 1883, or 8883 with TLS).
    pub broker: String,
    /// Credentials the gateway uses for devices that give none.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Prefix of the client ids the gateway makes up for devices without one.
    pub client_id_prefix: String,
    /// TLS to the broker, trusting the CA certificates in `cafile` (PEM).
    pub tls: bool,
    pub cafile: Option<PathBuf>,
    pub max_observers: usize,
    pub max_pending: usize,
    /// Largest request body in bytes, whole or reassembled from Block1.
    pub max_body: usize,
    pub max_uploads: usize,
    pub block_size: usize,
    pub notify_queue: usize,
    /// Seconds a broker connection without subscriptions stays open after its last use.
    pub link_idle_secs: u64,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        let limits = Limits::default();
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 5683)),
            broker: "127.0.0.1:1883".into(),
            username: None,
            password: None,
            client_id_prefix: "midge-gateway".into(),
            tls: false,
            cafile: None,
            max_observers: limits.max_observers,
            max_pending: limits.max_pending,
            max_body: limits.max_body,
            max_uploads: limits.max_uploads,
            block_size: limits.block_size,
            notify_queue: limits.notify_queue,
            link_idle_secs: 60,
        }
    }
}

impl GatewayConfig {
    /// Reads a TOML file of gateway keys.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.into(),
            source: Box::new(source),
        })
    }

    pub fn limits(&self) -> Result<Limits, ConfigError> {
        for (name, value) in [
            ("max_observers", self.max_observers),
            ("max_pending", self.max_pending),
            ("max_uploads", self.max_uploads),
            ("notify_queue", self.notify_queue),
            ("block_size", self.block_size),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        Ok(Limits {
            max_observers: self.max_observers,
            max_pending: self.max_pending,
            max_body: self.max_body,
            max_uploads: self.max_uploads,
            block_size: self.block_size,
            notify_queue: self.notify_queue,
            ..Limits::default()
        })
    }

    /// `(host, port)` of the broker.
    pub fn broker_address(&self) -> Result<(String, u16), ConfigError> {
        let bad = || ConfigError::BrokerAddress(self.broker.clone());
        let default_port = if self.tls { 8883 } else { 1883 };
        let (host, port) = if let Some(rest) = self.broker.strip_prefix('[') {
            // [IPv6]:port
            let (host, after) = rest.split_once(']').ok_or_else(bad)?;
            match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None if after.is_empty() => (host, None),
                None => return Err(bad()),
            }
        } else {
            match self.broker.split_once(':') {
                Some((host, port)) if !port.contains(':') => (host, Some(port)),
                Some(_) => (self.broker.as_str(), None),
                None => (self.broker.as_str(), None),
            }
        };
        if host.is_empty() {
            return Err(bad());
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad())?,
            None => default_port,
        };
        Ok((host.to_owned(), port))
    }

    pub fn broker_settings(&self) -> Result<BrokerSettings, ConfigError> {
        let (host, port) = self.broker_address()?;
        let tls = if self.tls {
            let cafile = self.cafile.as_deref().ok_or(ConfigError::NoCaFile)?;
            Some(Arc::new(tls_config(cafile)?))
        } else {
            None
        };
        Ok(BrokerSettings {
            host,
            port,
            username: self.username.clone(),
            password: self.password.clone(),
            client_id_prefix: self.client_id_prefix.clone(),
            tls,
            // Room for the largest body a device may upload plus the packet's headers.
            max_packet: u32::try_from(self.max_body.saturating_add(64 * 1024)).unwrap_or(u32::MAX),
            idle: Duration::from_secs(self.link_idle_secs),
        })
    }
}

/// A rustls client configuration (ring provider) trusting the CAs in `cafile`.
fn tls_config(cafile: &Path) -> Result<rustls::ClientConfig, ConfigError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let ca_error = |why: String| ConfigError::CaFile {
        path: cafile.into(),
        why,
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(cafile).map_err(|e| ca_error(e.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|e| ca_error(e.to_string()))?;
        roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(ca_error("no certificates".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ca_error(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_broker(broker: &str, tls: bool) -> GatewayConfig {
        GatewayConfig {
            broker: broker.into(),
            tls,
            ..GatewayConfig::default()
        }
    }

    #[test]
    fn broker_addresses() {
        let addr = |b, tls| {
            with_broker(b, tls)
                .broker_address()
                .map_err(|e| e.to_string())
        };
        assert_eq!(addr("10.0.0.2:1884", false), Ok(("10.0.0.2".into(), 1884)));
        assert_eq!(addr("pi.local", false), Ok(("pi.local".into(), 1883)));
        assert_eq!(addr("pi.local", true), Ok(("pi.local".into(), 8883)));
        assert_eq!(addr("[::1]:1999", false), Ok(("::1".into(), 1999)));
        assert_eq!(addr("[::1]", false), Ok(("::1".into(), 1883)));
        assert!(addr("host:port", false).is_err());
        assert!(addr(":1883", false).is_err());
        assert!(addr("[::1", false).is_err());
    }

    #[test]
    fn toml_keys() {
        let config: GatewayConfig = toml::from_str(
            "listen = \"127.0.0.1:5684\"\nbroker = \"b:1\"\nusername = \"gw\"\nmax_observers = 5\n",
        )
        .unwrap();
        assert_eq!(config.listen, "127.0.0.1:5684".parse().unwrap());
        assert_eq!(config.username.as_deref(), Some("gw"));
        assert_eq!(config.limits().unwrap().max_observers, 5);
        assert!(toml::from_str::<GatewayConfig>("lisen = \"x\"").is_err());
        let zero = GatewayConfig {
            max_pending: 0,
            ..GatewayConfig::default()
        };
        assert!(zero.limits().is_err());
    }

    #[test]
    fn tls_needs_a_ca_file() {
        assert!(matches!(
            with_broker("b", true).broker_settings(),
            Err(ConfigError::NoCaFile)
        ));
        let missing = GatewayConfig {
            cafile: Some("/nonexistent/ca.pem".into()),
            ..with_broker("b", true)
        };
        assert!(matches!(
            missing.broker_settings(),
            Err(ConfigError::CaFile { .. })
        ));
    }
}
