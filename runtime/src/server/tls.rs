//! HTTPS/WSS in the serve helpers (feature `tls`): rustls on the `ring`
//! provider, from a PEM certificate chain and private key.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::ServerError;

/// A server certificate and its key, for [`ServerConfig::tls`](super::ServerConfig::tls):
/// the serve helpers then speak HTTPS, and clients connect with `https://`
/// or `wss://` URLs. TLS 1.2 and 1.3, HTTP/1.1 (ALPN `http/1.1`).
///
/// The handshake is bounded by the header-read timeout, so a client that
/// opens a TCP connection and never starts TLS is closed like one that never
/// sends a request.
#[derive(Clone)]
pub struct TlsConfig {
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
}

impl TlsConfig {
    /// From a PEM certificate chain (the server's certificate first, then
    /// intermediates) and a PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> Result<Self, ServerError> {
        let bad =
            |what: &str, e: &dyn fmt::Display| ServerError::Config(format!("TLS {what}: {e}"));
        let certs = CertificateDer::pem_slice_iter(cert_chain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad("certificate chain is not PEM", &e))?;
        if certs.is_empty() {
            return Err(ServerError::Config(
                "TLS certificate chain: no `CERTIFICATE` block in the PEM".to_owned(),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| bad("private key", &e))?;
        let mut config = rustls::ServerConfig::builder_with_provider(crate::crypto::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("setup", &e))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| bad("certificate and key", &e))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// [`from_pem`](Self::from_pem) with the two PEM files read from disk;
    /// an unreadable file is an error naming it.
    pub fn from_pem_files(cert_chain: &Path, key: &Path) -> Result<Self, ServerError> {
        let read = |path: &Path| {
            std::fs::read(path)
                .map_err(|e| ServerError::Config(format!("cannot read `{}`: {e}", path.display())))
        };
        Self::from_pem(&read(cert_chain)?, &read(key)?)
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("TlsConfig").finish_non_exhaustive()
    }
}
