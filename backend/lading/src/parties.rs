//! Importing the party registry (`parties.json`) and API tokens into the database.
//!
//! `parties.json` lists each party with its role, its customs ports and its public keys as OKP
//! JWKs. Keys marked `"lading_test_key": true` (the fixtures') are refused unless the
//! configuration explicitly allows test keys — the demo does, a production registry must not.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use chrono::Utc;
use lading_domain::Digest;
use lading_store::models::{OperatorKeyRow, PartyKeyRow, PartyRow};
use lading_store::Store;

/// `parties.json` (the format is the domain's: the replica reads the same file).
pub use lading_domain::party::PartyRegistryFile as PartyFile;

/// Bearer tokens per party id (the demo's are in `fixtures/tokens.json`).
pub type Tokens = BTreeMap<String, String>;

pub fn import(
    store: &Store,
    file: &PartyFile,
    tokens: &Tokens,
    allow_test_keys: bool,
) -> Result<usize> {
    let mut conn = store.conn()?;
    for entry in &file.parties {
        if let Err(e) = entry.role.parse::<lading_domain::party::Role>() {
            bail!("party {}: {e}", entry.id);
        }
        let row = PartyRow {
            id: entry.id.clone(),
            name: entry.name.clone(),
            role: entry.role.clone(),
            ports: entry.ports.iter().cloned().map(Some).collect(),
            created_at: Utc::now(),
            added_idx: None,
            removed_idx: None,
        };
        // Parse the row back as the registry will, so a bad id or port fails here.
        lading_registry::parties::party_from_row(&row)
            .with_context(|| format!("party {}", entry.id))?;
        lading_store::parties::upsert_party(&mut conn, &row)?;
        if let Some(token) = tokens.get(&entry.id) {
            // The party's one imported token: a credential with every scope.
            lading_store::credentials::upsert_imported(
                &mut conn,
                &lading_store::credentials::CredentialRow {
                    id: lading_store::credentials::imported_id(&entry.id),
                    party_id: entry.id.clone(),
                    secret_sha256: Digest::of(token.as_bytes()).0.to_vec(),
                    scopes: lading_api::credentials::Scope::ALL
                        .iter()
                        .map(|s| Some(s.as_str().to_owned()))
                        .collect(),
                    label: "imported".into(),
                    created_at: Utc::now(),
                    expires_at: None,
                    last_used_at: None,
                    revoked_at: None,
                },
            )?;
        }
        for jwk in &entry.keys {
            check_public_key(jwk, &entry.id, allow_test_keys)?;
            lading_store::parties::add_key(
                &mut conn,
                &PartyKeyRow {
                    kid: jwk.kid().to_string(),
                    party_id: entry.id.clone(),
                    public_key: jwk.public_key_bytes().to_vec(),
                    created_at: Utc::now(),
                    revoked_at: None,
                    added_idx: None,
                    revoked_idx: None,
                },
            )?;
        }
    }
    for jwk in &file.operator_keys {
        check_public_key(jwk, "the operator", allow_test_keys)?;
        lading_store::parties::add_operator_key(
            &mut conn,
            &OperatorKeyRow {
                kid: jwk.kid().to_string(),
                public_key: jwk.public_key_bytes().to_vec(),
                added_idx: None,
                revoked_idx: None,
            },
        )?;
    }
    Ok(file.parties.len())
}

/// A key of the genesis: public, valid, and a TEST key only where test keys are allowed.
fn check_public_key(jwk: &lading_domain::Jwk, owner: &str, allow_test_keys: bool) -> Result<()> {
    if jwk.is_test_key() && !allow_test_keys {
        bail!(
            "key {} of {} is a TEST key (lading_test_key); refusing it outside the demo \
             (set registry.allow_test_keys only for test deployments)",
            jwk.kid(),
            owner
        );
    }
    if jwk.is_private() {
        bail!(
            "key {} of {} is a private key; parties.json holds public keys only",
            jwk.kid(),
            owner
        );
    }
    jwk.verifying_key()
        .with_context(|| format!("key {} of {}", jwk.kid(), owner))?;
    Ok(())
}
