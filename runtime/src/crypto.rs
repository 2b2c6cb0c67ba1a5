//! The rustls crypto provider of the client's and the server's TLS.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// The application's process-wide provider when it installed one
/// (`CryptoProvider::install_default`: for example aws-lc-rs, for its
/// post-quantum key exchange), else *ring*, which builds everywhere
/// without cmake or an assembler. rustls 0.23.48 deprecates *ring*'s
/// provider only because it lacks post-quantum key exchange; applications
/// that need it install aws-lc-rs as the default and get it here.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    if let Some(installed) = CryptoProvider::get_default() {
        return installed.clone();
    }
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}
