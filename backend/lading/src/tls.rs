//! TLS material: loading a configured certificate, or making the demo's self-signed one.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A rustls server config from PEM files. With `client_ca`, clients may present a certificate
/// and one that does not chain to that CA fails the handshake; clients without one (bearer
/// tokens) are let through, and the replication endpoints refuse them.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<rustls::ServerConfig>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read certificate {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("invalid PEM certificate {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read private key {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS protocol versions")?;
    let config = match client_ca {
        Some(ca) => {
            let pem = std::fs::read_to_string(ca)
                .with_context(|| format!("cannot read the consortium CA {}", ca.display()))?;
            config.with_client_cert_verifier(
                lading_pki::client_verifier(&pem)
                    .with_context(|| format!("invalid consortium CA {}", ca.display()))?,
            )
        }
        None => config.with_no_client_auth(),
    };
    let config = config
        .with_single_cert(certs, key)
        .context("the certificate and key do not make a TLS identity")?;
    Ok(Arc::new(config))
}

/// Writes a secret readable by its owner only, into a new file: an existing file (maybe
/// another key) is never overwritten.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}
