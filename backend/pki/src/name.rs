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
/// ([`PkiError::NoParty`]), one naming two different parties, and a party id that breaks the
/// rule of [`PartyId`] (so a certificate can never introduce a party the ledger could not name).
pub fn party_of(cert_der: &[u8]) -> Result<PartyId, PkiError> {
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
    let mut found: Option<&str> = None;
    for name in &san.value.general_names {
        let GeneralName::URI(uri) = name else {
            continue;
        };
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
