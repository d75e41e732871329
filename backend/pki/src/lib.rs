//! The consortium's PKI: who may replicate from the registry, and as which party.
//!
//! The registry and the parties' replicas talk over HTTPS with mutual TLS. Bearer tokens say who
//! calls the API; on the replication endpoints the TLS client certificate says it instead, so a
//! replica's identity rests on a key that never leaves its host and is checked before a single
//! byte of the ledger is sent. The pieces:
//!
//! - [`Ca`]: the consortium's own certificate authority (ECDSA P-256, self-signed, `CA:TRUE` with
//!   path length 0 so it can only sign parties, never another CA). It lives in a directory as
//!   `ca.crt.pem` and `ca.key.pem`.
//! - [`Ca::issue_party`]: a certificate for one party, a TLS client certificate and, when it is
//!   given server names, a server certificate too. The party is named by a URI subject
//!   alternative name `urn:lading:party:<party-id>` (and, for people reading it, the subject CN).
//! - [`party_of`]: the party a verified peer certificate names — how the registry maps a
//!   connection to a party.
//! - [`client_verifier`] and [`client_config`]: the rustls halves that trust this CA and nothing
//!   else; [`https_client`], the HTTPS client over the latter; [`client_config_for`] also
//!   requires the server to be the registry (or a party), as a replica does of what it follows.
//!
//! Why a private CA rather than the public web PKI: membership of the consortium is decided by
//! the consortium, and a public CA would vouch for anyone who controls a domain name.
//!
//! Why P-256 and not Ed25519: rustls with the ring provider verifies both, but P-256 is what every
//! TLS stack (curl, browsers' client-certificate stores, HSMs) accepts as a client key, so a party
//! is not forced onto our own client.
//!
//! Keys are written owner-only (0600) into new files: an existing key is never overwritten, so a
//! mistyped command cannot destroy the consortium's CA or a party's identity.

mod ca;
mod error;
mod files;
mod name;
mod tls;

pub use ca::{Ca, PartyCert, PartyFiles, CA_CERT_FILE, CA_KEY_FILE};
pub use error::PkiError;
pub use name::{party_of, party_uri, subject_of, Subject, PARTY_URI_PREFIX, REGISTRY_URI};
pub use tls::{
    client_config, client_config_for, client_verifier, https_client, https_client_for, parse_certs,
    parse_key, ServerIdentity, WrongServer,
};
