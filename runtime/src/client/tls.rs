//! TLS for `https://` and `wss://` URLs (feature `tls`): rustls on the
//! `ring` provider, with the platform's roots, Mozilla's roots, or only the
//! certificate authorities the application gives.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_tungstenite::Connector;

use super::error::{ConnectError, TransportError};
use super::options::TlsRoots;

/// The connector for `wss://` nodes: the roots `roots` stands for, plus every
/// certificate in `extra_ca_pems`. A PEM without a certificate, or with a
/// malformed one, is a [`ConnectError::Config`] (found before any network
/// work, so the mistake is not taken for a server's fault).
pub(crate) fn connector(
    roots: TlsRoots,
    extra_ca_pems: &[Vec<u8>],
) -> Result<Connector, ConnectError> {
    let mut store = RootCertStore::empty();
    match roots {
        TlsRoots::Platform => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                // A minimal container often has no CA bundle: Mozilla's
                // roots are what a browser would trust there.
                store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
        }
        TlsRoots::WebPki => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        TlsRoots::None => {}
    }
    for (i, pem) in extra_ca_pems.iter().enumerate() {
        let bad = |why: String| {
            ConnectError::Config(format!("root certificate PEM number {}: {why}", i + 1))
        };
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("not a PEM certificate ({e})")))?;
        if certs.is_empty() {
            return Err(bad("contains no `CERTIFICATE` block".to_owned()));
        }
        for cert in certs {
            store
                .add(cert)
                .map_err(|e| bad(format!("not a usable CA certificate ({e})")))?;
        }
    }
    if store.is_empty() {
        return Err(ConnectError::Config(
            "no root certificate to check a `wss://` server with: add one with `add_root_certificate_pem` or choose other roots".to_owned(),
        ));
    }
    let config = rustls::ClientConfig::builder_with_provider(crate::crypto::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectError::Config(format!("TLS setup: {e}")))?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(Connector::Rustls(Arc::new(config)))
}

/// A TLS failure of the WebSocket connect, if `err` is one: an untrusted or
/// expired certificate, a name mismatch, a failed handshake.
pub(crate) fn tls_failure(err: &tokio_tungstenite::tungstenite::Error) -> Option<ConnectError> {
    use tokio_tungstenite::tungstenite::Error;
    match err {
        Error::Tls(tls) => Some(ConnectError::Tls(TransportError::msg(tls.to_string()))),
        // tokio-rustls reports handshake failures as I/O errors that carry
        // the rustls error.
        Error::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .map(|tls| ConnectError::Tls(TransportError::msg(tls.to_string()))),
        _ => None,
    }
}
