//! The one error type of the crate.

use std::path::PathBuf;

/// Why PKI material could not be made, read, written or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is there already; keys and certificates are never overwritten.
    #[error("{} exists; refusing to overwrite it", .0.display())]
    Exists(PathBuf),
    /// rcgen could not make or sign a certificate, or could not read a key.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    /// A PEM file holds no certificate / no key, or is not PEM.
    #[error("{what}: {reason}")]
    Pem { what: String, reason: String },
    /// The bytes are not a well-formed X.509 certificate.
    #[error("not a valid X.509 certificate: {0}")]
    Certificate(String),
    /// The CA directory's certificate is not a CA certificate.
    #[error("{} is not a CA certificate (no basicConstraints CA:TRUE)", .0.display())]
    NotCa(PathBuf),
    /// The CA key does not belong to the CA certificate next to it.
    #[error("the key {} does not belong to the certificate {}", key.display(), cert.display())]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    /// A server name that is neither a DNS name nor an IP address.
    #[error("invalid server name {0:?} (expected a DNS name or an IP address)")]
    ServerName(String),
    /// The certificate has no `urn:lading:party:` URI subject alternative name.
    #[error("the certificate names no party (no urn:lading:party:<id> URI SAN)")]
    NoParty,
    /// The certificate names two different parties; which one it speaks for is undecidable.
    #[error("the certificate names more than one party ({0} and {1})")]
    SeveralParties(String, String),
    /// The `urn:lading:party:` URI holds something that is not a party id.
    #[error("the certificate's party URI: {0}")]
    InvalidParty(#[from] lading_domain::ids::IdError),
    /// rustls refused the material (e.g. a key that does not match its certificate).
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built (e.g. no trust anchor).
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// The HTTPS client could not be built over the TLS configuration.
    #[error("HTTPS client: {0}")]
    Client(String),
}

impl PkiError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
