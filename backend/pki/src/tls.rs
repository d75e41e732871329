//! rustls configurations that trust the consortium CA and nothing else.
//!
//! PEM arguments are bytes or text (`impl AsRef<[u8]>`), so a file read with `std::fs::read` or
//! `read_to_string` can be passed as it is.
//!
//! Both sides use the ring provider explicitly, as the registry's server does
//! (`backend/lading/src/tls.rs`): no process-wide default provider has to be installed first.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::{subject_of, PkiError, Subject};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM text, in order; refuses a text with none.
pub fn parse_certs(pem: impl AsRef<[u8]>) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_ref())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::Pem {
            what: "certificate".into(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(PkiError::Pem {
            what: "certificate".into(),
            reason: "no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

/// The private key of a PEM text (PKCS#8, as `lading ca` writes it, or SEC1/PKCS#1).
pub fn parse_key(pem: impl AsRef<[u8]>) -> Result<PrivateKeyDer<'static>, PkiError> {
    PrivateKeyDer::from_pem_slice(pem.as_ref()).map_err(|e| PkiError::Pem {
        what: "private key".into(),
        reason: e.to_string(),
    })
}

fn roots(ca_pem: &[u8]) -> Result<Arc<RootCertStore>, PkiError> {
    let mut roots = RootCertStore::empty();
    for cert in parse_certs(ca_pem)? {
        roots.add(cert)?;
    }
    Ok(Arc::new(roots))
}

/// What a TLS server of the consortium uses to check client certificates: a certificate must
/// chain to the consortium CA (`ca_pem`), be within its validity period and allow clientAuth.
///
/// A client without a certificate is let through (`allow_unauthenticated`): the ordinary API is
/// used with bearer tokens by clients that have none. The replication endpoints refuse such a
/// connection themselves, by asking for the peer certificate and its [`crate::party_of`]. A
/// certificate that is presented and does not verify (another CA, expired) fails the handshake.
pub fn client_verifier(ca_pem: impl AsRef<[u8]>) -> Result<Arc<dyn ClientCertVerifier>, PkiError> {
    let roots = roots(ca_pem.as_ref())?;
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider())
        .allow_unauthenticated()
        .build()?;
    Ok(verifier)
}

/// A replica's TLS client: presents its party certificate (`cert_pem`, `key_pem`) and trusts
/// only servers whose certificate chains to the consortium CA (`ca_pem`), so a replica cannot be
/// pointed at an impostor registry with a certificate from some public CA.
pub fn client_config(
    ca_pem: impl AsRef<[u8]>,
    cert_pem: impl AsRef<[u8]>,
    key_pem: impl AsRef<[u8]>,
) -> Result<Arc<rustls::ClientConfig>, PkiError> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots(ca_pem.as_ref())?)
        .with_client_auth_cert(parse_certs(cert_pem)?, parse_key(key_pem)?)?;
    Ok(Arc::new(config))
}

/// An HTTPS client of the consortium over [`client_config`]: a replica following the registry,
/// the registry reconciling a replica. Small requests go one after another, so none may wait
/// for a delayed ACK (`TCP_NODELAY`); a request gets 60 s.
pub fn https_client(
    ca_pem: impl AsRef<[u8]>,
    cert_pem: impl AsRef<[u8]>,
    key_pem: impl AsRef<[u8]>,
) -> Result<reqwest::Client, PkiError> {
    build_https_client(client_config(ca_pem, cert_pem, key_pem)?)
}

/// [`https_client`] over [`client_config_for`]: the server must be `server`.
pub fn https_client_for(
    ca_pem: impl AsRef<[u8]>,
    cert_pem: impl AsRef<[u8]>,
    key_pem: impl AsRef<[u8]>,
    server: ServerIdentity,
) -> Result<reqwest::Client, PkiError> {
    build_https_client(client_config_for(ca_pem, cert_pem, key_pem, server)?)
}

fn build_https_client(tls: Arc<rustls::ClientConfig>) -> Result<reqwest::Client, PkiError> {
    reqwest::Client::builder()
        .use_preconfigured_tls(Arc::unwrap_or_clone(tls))
        .timeout(std::time::Duration::from_secs(60))
        .tcp_nodelay(true)
        .build()
        .map_err(|e| PkiError::Client(e.to_string()))
}

/// Whom a consortium client requires the server's certificate to name, on top of chaining to
/// the consortium CA and being valid for the host name it was reached at. Every member's
/// certificate chains to the one CA, and a party's may carry any server name, so the host name
/// alone says nothing about *who* answers: a party certificate issued for the registry's host
/// would otherwise pass for the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerIdentity {
    /// The registry (`urn:lading:registry`): what a replica follows and submits to.
    Registry,
    /// A party of the consortium, whichever (another party's replica, compared with); never
    /// the registry.
    AnyParty,
    /// This party's own replica, and no other's: what the registry reconciles as that party's.
    Party(lading_domain::ids::PartyId),
}

impl ServerIdentity {
    fn admits(&self, subject: &Subject) -> bool {
        match self {
            Self::Registry => *subject == Subject::Registry,
            Self::AnyParty => matches!(subject, Subject::Party(_)),
            Self::Party(party) => matches!(subject, Subject::Party(p) if p == party),
        }
    }
}

impl std::fmt::Display for ServerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Registry => f.write_str("the registry"),
            Self::AnyParty => f.write_str("a party"),
            Self::Party(party) => write!(f, "party {party}"),
        }
    }
}

/// The server certificate names someone else than the client requires (see
/// [`ServerIdentity`]); the handshake is aborted before a byte of the request is sent.
#[derive(Debug, thiserror::Error)]
#[error("the server's certificate names {found}, not {expected}")]
pub struct WrongServer {
    pub expected: ServerIdentity,
    pub found: String,
}

/// The consortium CA's verdict first (chain, validity, host name), then the subject.
#[derive(Debug)]
struct NamedServer {
    inner: Arc<WebPkiServerVerifier>,
    expected: ServerIdentity,
}

impl ServerCertVerifier for NamedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        // Read only now, from a certificate the CA vouched for.
        let found = match subject_of(end_entity.as_ref()) {
            Ok(subject) if self.expected.admits(&subject) => return Ok(verified),
            Ok(subject) => subject.uri(),
            Err(e) => e.to_string(),
        };
        let wrong = WrongServer {
            expected: self.expected.clone(),
            found,
        };
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(
            rustls::OtherError(Arc::new(wrong)),
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// [`client_config`] that also requires the server's certificate to name `server`: a replica
/// talks to the registry only if its certificate is the registry's own (`urn:lading:registry`),
/// so no party certificate — even one issued for the registry's host name — can collect the
/// party's signed submissions or feed it a ledger.
pub fn client_config_for(
    ca_pem: impl AsRef<[u8]>,
    cert_pem: impl AsRef<[u8]>,
    key_pem: impl AsRef<[u8]>,
    server: ServerIdentity,
) -> Result<Arc<rustls::ClientConfig>, PkiError> {
    let inner =
        WebPkiServerVerifier::builder_with_provider(roots(ca_pem.as_ref())?, provider()).build()?;
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NamedServer {
            inner,
            expected: server,
        }))
        .with_client_auth_cert(parse_certs(cert_pem)?, parse_key(key_pem)?)?;
    Ok(Arc::new(config))
}
