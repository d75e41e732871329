//! How a certificate names its party.
//!
//! The party is a URI subject alternative name, `urn:lading:party:<party-id>`. A SAN rather
//! than the subject CN because SANs are typed and unambiguous (a CN is free text that TLS
//! libraries have stopped reading), and a URI rather than a DNS name because a party is not a
//! host: the same certificate may also carry the DNS names the party serves on.

use lading_domain::ids::PartyId;
use x509_parser::extensions::GeneralName;

use crate::PkiError;

/// What every party URI starts with; the party id follows.
pub const PARTY_URI_PREFIX: &str = "urn:lading:party:";

/// The URI SAN of the registry's own certificate: what a replica requires of whoever asks to
/// reconcile it. It is not a party URI, so no party certificate can pass for the registry.
pub const REGISTRY_URI: &str = "urn:lading:registry";

/// Whom a consortium certificate names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// The registry ([`REGISTRY_URI`]).
    Registry,
    /// A party (`urn:lading:party:<id>`).
    Party(PartyId),
}

impl Subject {
    /// The URI SAN that names this subject.
    pub fn uri(&self) -> String {
        match self {
            Self::Registry => REGISTRY_URI.to_owned(),
            Self::Party(party) => party_uri(party),
        }
    }

    /// The name files and the subject CN use: the party id, or `registry`.
    pub fn file_stem(&self) -> &str {
        match self {
            Self::Registry => "registry",
            Self::Party(party) => party.as_str(),
        }
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Registry => f.write_str("the registry"),
            Self::Party(party) => write!(f, "{party}"),
        }
    }
}

/// Whom a certificate (DER) names: the registry, or the party of [`party_of`]. The same
/// caution applies: call it on a peer certificate rustls has verified.
pub fn subject_of(cert_der: &[u8]) -> Result<Subject, PkiError> {
    let uris = uris(cert_der)?;
    let registry = uris.iter().any(|uri| uri == REGISTRY_URI);
    let party = party_in(&uris);
    match (registry, party) {
        (true, Err(PkiError::NoParty)) => Ok(Subject::Registry),
        (true, _) => Err(PkiError::Certificate(
            "a certificate names both the registry and a party".into(),
        )),
        (false, party) => party.map(Subject::Party),
    }
}

/// The URI SAN that names `party`.
pub fn party_uri(party: &PartyId) -> String {
    format!("{PARTY_URI_PREFIX}{party}")
}

/// The party that a certificate (DER) names in its `urn:lading:party:` URI SAN.
///
/// This reads the name only; it does not check the signature, the issuer or the validity period.
/// Call it on a peer certificate that rustls has verified against the consortium CA (see
/// [`crate::client_verifier`]), never on a certificate merely presented.
///
/// Refused: bytes that are not one certificate, a certificate without a party URI
/// ([`PkiError::NoParty`]), one naming two different parties or a party and the registry, and
/// a party id that breaks the
/// rule of [`PartyId`] (so a certificate can never introduce a party the ledger could not name).
///
/// It reads the certificate exactly as [`subject_of`] does, so one certificate has one verdict
/// everywhere: a certificate that also names the registry is refused here as there.
pub fn party_of(cert_der: &[u8]) -> Result<PartyId, PkiError> {
    match subject_of(cert_der)? {
        Subject::Party(party) => Ok(party),
        Subject::Registry => Err(PkiError::NoParty),
    }
}

/// The URI SANs of a certificate.
fn uris(cert_der: &[u8]) -> Result<Vec<String>, PkiError> {
    let (rest, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| PkiError::Certificate(e.to_string()))?;
    if !rest.is_empty() {
        return Err(PkiError::Certificate(format!(
            "{} bytes after the certificate",
            rest.len()
        )));
    }
    let san = cert
        .subject_alternative_name()
        .map_err(|e| PkiError::Certificate(e.to_string()))?
        .ok_or(PkiError::NoParty)?;
    Ok(san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some((*uri).to_owned()),
            _ => None,
        })
        .collect())
}

fn party_in(uris: &[String]) -> Result<PartyId, PkiError> {
    let mut found: Option<&str> = None;
    for uri in uris {
        let Some(id) = uri.strip_prefix(PARTY_URI_PREFIX) else {
            continue;
        };
        match found {
            Some(first) if first != id => {
                return Err(PkiError::SeveralParties(first.to_owned(), id.to_owned()))
            }
            _ => found = Some(id),
        }
    }
    Ok(found.ok_or(PkiError::NoParty)?.parse()?)
}
