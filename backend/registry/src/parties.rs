//! The registry's in-memory copy of the party registry: keys by kid, parties by id.
//!
//! Every submission needs its signer's key, so keys are kept in memory and the database is
//! asked again only for a kid not seen before (a party registered since start).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use lading_domain::ids::{KeyId, PartyId, UnLocode};
use lading_domain::jws::VerifyingKey;
use lading_domain::party::{Party, Role};
use lading_store::models::{PartyKeyRow, PartyRow};
use lading_store::{Store, StoreError};

/// A registered key and the party it belongs to.
#[derive(Debug, Clone)]
pub struct RegisteredKey {
    pub key: VerifyingKey,
    pub party: PartyId,
    pub revoked: bool,
}

#[derive(Debug, Default)]
struct Maps {
    keys: HashMap<String, Arc<RegisteredKey>>,
    parties: HashMap<String, Arc<Party>>,
}

/// Keys and parties, shared by the verifier threads and the sequencer.
#[derive(Debug, Clone)]
pub struct PartyBook {
    store: Store,
    maps: Arc<RwLock<Maps>>,
}

impl PartyBook {
    pub fn load(store: Store) -> Result<Self, StoreError> {
        let book = Self {
            store,
            maps: Arc::default(),
        };
        book.reload()?;
        Ok(book)
    }

    /// Reads every party and key again.
    pub fn reload(&self) -> Result<(), StoreError> {
        let mut conn = self.store.conn()?;
        let parties = lading_store::parties::all_parties(&mut conn)?;
        let keys = lading_store::parties::all_keys(&mut conn)?;
        let mut maps = Maps::default();
        for row in parties {
            let party = party_from_row(&row)?;
            maps.parties.insert(row.id.clone(), Arc::new(party));
        }
        for row in keys {
            let key = key_from_row(&row)?;
            maps.keys.insert(row.kid.clone(), Arc::new(key));
        }
        *self.maps.write().unwrap_or_else(|e| e.into_inner()) = maps;
        Ok(())
    }

    /// The key named `kid`, asking the database if it is not known yet.
    pub fn key(&self, kid: &str) -> Result<Option<Arc<RegisteredKey>>, StoreError> {
        if let Some(key) = self.read().keys.get(kid) {
            return Ok(Some(key.clone()));
        }
        let mut conn = self.store.conn()?;
        let Some(row) = lading_store::parties::key(&mut conn, kid)? else {
            return Ok(None);
        };
        if !self.read().parties.contains_key(&row.party_id) {
            if let Some(party) = lading_store::parties::party(&mut conn, &row.party_id)? {
                let party = Arc::new(party_from_row(&party)?);
                self.write().parties.insert(row.party_id.clone(), party);
            }
        }
        let key = Arc::new(key_from_row(&row)?);
        self.write().keys.insert(row.kid.clone(), key.clone());
        Ok(Some(key))
    }

    pub fn party(&self, id: &str) -> Option<Arc<Party>> {
        self.read().parties.get(id).cloned()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Maps> {
        self.maps.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Maps> {
        self.maps.write().unwrap_or_else(|e| e.into_inner())
    }
}

pub fn party_from_row(row: &PartyRow) -> Result<Party, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        table: "parties",
        detail,
    };
    let id: PartyId = row
        .id
        .parse()
        .map_err(|e| corrupt(format!("party id {:?}: {e}", row.id)))?;
    let role: Role = row.role.parse().map_err(corrupt)?;
    let ports = row
        .ports
        .iter()
        .flatten()
        .map(|p| p.parse::<UnLocode>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| corrupt(format!("ports of {}: {e}", row.id)))?;
    Ok(Party {
        id,
        name: row
            .name
            .parse()
            .map_err(|e| corrupt(format!("name of {}: {e}", row.id)))?,
        role,
        ports,
    })
}

fn key_from_row(row: &PartyKeyRow) -> Result<RegisteredKey, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        table: "party_keys",
        detail,
    };
    let kid: KeyId = row
        .kid
        .parse()
        .map_err(|e| corrupt(format!("kid {:?}: {e}", row.kid)))?;
    let key = VerifyingKey::from_bytes(kid, &row.public_key)
        .map_err(|e| corrupt(format!("public key of {}: {e}", row.kid)))?;
    let party = row
        .party_id
        .parse()
        .map_err(|e| corrupt(format!("party id {:?}: {e}", row.party_id)))?;
    Ok(RegisteredKey {
        key,
        party,
        revoked: row.revoked_at.is_some(),
    })
}
