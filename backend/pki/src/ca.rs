//! The consortium CA and the party certificates it issues.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use lading_domain::ids::PartyId;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use crate::files::{ensure_dir, read, write_pair};
use crate::{PkiError, Subject};

/// The CA certificate's file name in a CA directory (public, 0644).
pub const CA_CERT_FILE: &str = "ca.crt.pem";
/// The CA key's file name in a CA directory (secret, 0600).
pub const CA_KEY_FILE: &str = "ca.key.pem";

/// Long enough that the consortium does not have to roll its trust anchor in ordinary operation;
/// party certificates, which are the ones exposed on every connection, are short-lived instead.
const CA_VALIDITY: Duration = Duration::days(3650);
/// A party certificate is renewed yearly: a stolen one stops working within the year even if
/// nobody notices, without a revocation list to run.
const PARTY_VALIDITY: Duration = Duration::days(365);
/// Certificates start being valid an hour before they were made, so a host whose clock is a little
/// behind the CA's accepts a certificate issued a moment ago.
const CLOCK_SKEW: Duration = Duration::hours(1);

/// The consortium's certificate authority, loaded with its private key.
///
/// It signs party certificates only: its path length is 0, so a certificate it signs can never
/// act as a CA itself, and a leaked party key cannot mint further identities.
#[derive(Debug)]
pub struct Ca {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    /// The CA's name, key identifier and key; its Debug form elides the key.
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// Makes a new CA in `dir` (created when missing, owner-only): a fresh ECDSA P-256 key and a
    /// self-signed certificate with subject CN `common_name`, valid for ten years, written as
    /// [`CA_CERT_FILE`] and [`CA_KEY_FILE`].
    ///
    /// Refuses ([`PkiError::Exists`]) when either file is already there: replacing a CA would
    /// silently cut off every party certificate it signed. Use [`Ca::load`] to use an existing
    /// one, or [`Ca::load_or_create`] when either is fine.
    pub fn create(dir: &Path, common_name: &str) -> Result<Self, PkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - CLOCK_SKEW;
        params.not_after = now + CA_VALIDITY;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = params.self_signed(&key)?;

        ensure_dir(dir)?;
        write_pair(
            &dir.join(CA_CERT_FILE),
            &cert.pem(),
            &dir.join(CA_KEY_FILE),
            &key.serialize_pem(),
        )?;
        Ok(Self {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads the CA of `dir` (as written by [`Ca::create`]).
    ///
    /// Checks that the certificate is a CA certificate and that the key is the one it
    /// certifies: signing with a stray key would issue certificates that nothing verifies.
    pub fn load(dir: &Path) -> Result<Self, PkiError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let cert_pem = read(&cert_path)?;
        let key = KeyPair::from_pem(&read(&key_path)?)?;
        let cert_der = crate::parse_certs(&cert_pem)?.swap_remove(0);
        {
            let (_, x509) = x509_parser::parse_x509_certificate(&cert_der)
                .map_err(|e| PkiError::Certificate(e.to_string()))?;
            if !x509.is_ca() {
                return Err(PkiError::NotCa(cert_path));
            }
            if x509.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
                return Err(PkiError::KeyMismatch {
                    cert: cert_path,
                    key: key_path,
                });
            }
        }
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)?;
        Ok(Self {
            cert_pem,
            cert_der,
            issuer,
        })
    }

    /// Loads the CA of `dir` if it has one, otherwise creates it; `true` when it was created.
    /// For set-ups that run more than once (the demo, deployment scripts). A directory holding
    /// only one of the two files is refused, not repaired.
    pub fn load_or_create(dir: &Path, common_name: &str) -> Result<(Self, bool), PkiError> {
        if dir.join(CA_CERT_FILE).exists() && dir.join(CA_KEY_FILE).exists() {
            return Ok((Self::load(dir)?, false));
        }
        Ok((Self::create(dir, common_name)?, true))
    }

    /// The CA certificate, PEM: the trust anchor every party and the registry configure.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// Issues a certificate for `party` with a fresh ECDSA P-256 key, valid for one year.
    ///
    /// It names the party as the URI SAN `urn:lading:party:<party>` (what [`crate::party_of`]
    /// reads) and as the subject CN, and is a TLS client certificate (extended key usage
    /// clientAuth). When `server_names` is not empty it is also a server certificate (serverAuth)
    /// for those names — DNS names, or IP addresses written as such — so a replica can serve
    /// its own party's reads with the same identity.
    pub fn issue_party(
        &self,
        party: &PartyId,
        server_names: &[String],
    ) -> Result<PartyCert, PkiError> {
        self.issue(&Subject::Party(party.clone()), server_names)
    }

    /// Issues a certificate for the party or for the registry (URI SAN `urn:lading:registry`,
    /// which replicas require of whoever reconciles them), as [`Self::issue_party`] does.
    pub fn issue(&self, subject: &Subject, server_names: &[String]) -> Result<PartyCert, PkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, subject.file_stem());
        params.subject_alt_names = vec![SanType::URI(subject.uri().try_into()?)];
        for name in server_names {
            params.subject_alt_names.push(server_name(name)?);
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        if !server_names.is_empty() {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - CLOCK_SKEW;
        params.not_after = now + PARTY_VALIDITY;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(PartyCert {
            subject: subject.clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A SAN for a server name: an IP address when it parses as one, otherwise a DNS name, which
/// must be a valid one (checked as rustls will check the name a client connects to).
fn server_name(name: &str) -> Result<SanType, PkiError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    rustls_pki_types::DnsName::try_from(name).map_err(|_| PkiError::ServerName(name.into()))?;
    Ok(SanType::DnsName(name.try_into()?))
}

/// A party's certificate and key, PEM, as [`Ca::issue_party`] made them.
pub struct PartyCert {
    pub subject: Subject,
    pub cert_pem: String,
    /// PKCS#8. Never printed: the Debug form leaves it out.
    pub key_pem: String,
}

impl std::fmt::Debug for PartyCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartyCert")
            .field("subject", &self.subject)
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[elided]")
            .finish()
    }
}

/// Where [`PartyCert::write`] put the certificate and the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartyFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl PartyCert {
    /// Writes `<party>.crt.pem` (0644) and `<party>.key.pem` (0600) into `dir`, created when
    /// missing. Refuses ([`PkiError::Exists`]) if either is there already: a party's existing key
    /// is its identity and is never overwritten.
    pub fn write(&self, dir: &Path) -> Result<PartyFiles, PkiError> {
        let files = PartyFiles {
            cert: dir.join(format!("{}.crt.pem", self.subject.file_stem())),
            key: dir.join(format!("{}.key.pem", self.subject.file_stem())),
        };
        ensure_dir(dir)?;
        write_pair(&files.cert, &self.cert_pem, &files.key, &self.key_pem)?;
        Ok(files)
    }
}
