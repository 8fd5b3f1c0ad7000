//! TLS listeners with rustls (TLS 1.2 and 1.3, ring): the server certificate, optional
//! client certificates checked against `cafile`/`capath`, the user name a certificate
//! gives, and reloading on SIGHUP. The network shell drives rustls' sans-IO connection
//! itself, so a TLS connection uses the same per-worker read buffer as a plain one.

use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};

use crate::config::{CertificateIdentity, Tls};
use crate::locks::{read, write};

/// Bytes rustls may hold for sending before the shell stops adding to it: the same
/// bound as a plain connection's output.
const SEND_BUFFER_LIMIT: usize = crate::connection::OUT_HIGH_WATER;

#[derive(Debug)]
pub struct TlsAcceptor {
    settings: Tls,
    config: RwLock<Arc<ServerConfig>>,
}

impl TlsAcceptor {
    /// Loads the certificate, key and CAs; errors name the file and what is wrong.
    pub fn load(settings: &Tls) -> Result<Self, String> {
        let config = server_config(settings)?;
        Ok(Self {
            settings: settings.clone(),
            config: RwLock::new(config),
        })
    }

    /// Reads the files again for new connections; on error the old ones stay in use.
    /// Connections already open keep their session.
    pub fn reload(&self) -> Result<(), String> {
        let config = server_config(&self.settings)?;
        *write(&self.config) = config;
        Ok(())
    }

    /// A server-side TLS session for a new connection.
    pub fn accept(&self) -> Result<ServerConnection, rustls::Error> {
        let config = Arc::clone(&read(&self.config));
        let mut session = ServerConnection::new(config)?;
        session.set_buffer_limit(Some(SEND_BUFFER_LIMIT));
        Ok(session)
    }

    /// How a client certificate names the user on this listener.
    pub fn identity(&self) -> CertificateIdentity {
        self.settings.identity
    }
}

/// The user name the client's certificate gives, as `identity` asks: its subject's
/// Common Name, or the whole subject. `None` without a (parsable) certificate.
pub fn certificate_username(
    session: &ServerConnection,
    identity: CertificateIdentity,
) -> Option<String> {
    let cert = session.peer_certificates()?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let subject = cert.subject();
    match identity {
        CertificateIdentity::None => None,
        CertificateIdentity::CommonName => subject
            .iter_common_name()
            .next()?
            .as_str()
            .ok()
            .map(str::to_owned),
        CertificateIdentity::Subject => Some(subject.to_string()),
    }
}

fn server_config(settings: &Tls) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = certificates(&settings.certfile)?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no certificate in this file (certfile must be PEM)",
            settings.certfile.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&settings.keyfile).map_err(|e| {
        format!(
            "{}: cannot read a private key: {e} (keyfile must be PEM)",
            settings.keyfile.display()
        )
    })?;
    let verifier = match client_roots(settings)? {
        Some(roots) => {
            let builder =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
            let builder = if settings.require_certificate {
                builder
            } else {
                builder.allow_unauthenticated()
            };
            builder
                .build()
                .map_err(|e| format!("client certificate checks: {e}"))?
        }
        None if settings.require_certificate => {
            return Err(format!(
                "require_certificate needs cafile or capath (the CAs client certificates are checked \
                 against) on the listener with certfile {}",
                settings.certfile.display()
            ));
        }
        None => WebPkiClientVerifier::no_client_auth(),
    };
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "{} and {}: {e}",
                settings.certfile.display(),
                settings.keyfile.display()
            )
        })?;
    Ok(Arc::new(config))
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect)
        .map_err(|e| format!("{}: cannot read certificates: {e}", path.display()))
}

/// The CAs client certificates are checked against, if the listener names any.
fn client_roots(settings: &Tls) -> Result<Option<RootCertStore>, String> {
    let mut files = Vec::new();
    files.extend(settings.cafile.iter().cloned());
    if let Some(dir) = &settings.capath {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: cannot read capath: {e}", dir.display()))?;
        let mut pems: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "pem" || x == "crt"))
            .collect();
        pems.sort();
        files.extend(pems);
    }
    if files.is_empty() {
        return Ok(None);
    }
    let mut roots = RootCertStore::empty();
    for file in files {
        for cert in certificates(&file)? {
            roots
                .add(cert)
                .map_err(|e| format!("{}: not a usable CA certificate: {e}", file.display()))?;
        }
    }
    Ok(Some(roots))
}
