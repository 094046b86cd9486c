//! The process's TLS crypto provider, for the MQTT and InfluxDB clients.
//!
//! rustls needs one installed before any client is built. reqwest 0.13 and
//! rumqttc would each pull in aws-lc-rs by default, a large C library that
//! needs cmake and doubled a clean build here; ring serves the same TLS 1.2
//! and 1.3 suites in far less build time, so both are built without a
//! provider and this installs ring.
use std::sync::Once;

/// Installs ring as the process default; calling it again does nothing, and
/// a provider someone else installed first is kept.
pub fn install_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_client_config_can_be_built_after_installing() {
        super::install_provider();
        super::install_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
        let roots = rustls::RootCertStore::empty();
        let _ = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
    }
}
