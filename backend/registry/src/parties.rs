//! The registry's copy of the membership: who may sign now, kept in memory.
//!
//! Every submission needs its signer's key, so the membership ([`Membership`]) is kept in
//! memory. It is loaded from `parties`, `party_keys` and `operator_keys` — the genesis imported
//! from `parties.json` plus what the party statements on the ledger changed, written in each
//! statement's own transaction — and moved forward by the sequencer's writer as soon as a
//! statement is durable. A kid not known in memory is looked for in the database (a party
//! imported into the genesis since start): once per request for all of the request's unknown
//! kids, and a kid not found there is remembered as unknown for [`UNKNOWN_FOR`] (at most
//! [`UNKNOWN_KIDS`] of them), so junk kids cost no database round trip each.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use foldhash::HashSet;

use lading_domain::ids::{KeyId, PartyId, UnLocode};
use lading_domain::jws::VerifyingKey;
use lading_domain::membership::{
    KeyRecord, Member, Membership, MembershipViolation, PartyStatement, Principal,
};
use lading_domain::party::{Party, Role};
use lading_store::models::{OperatorKeyRow, PartyKeyRow, PartyRow};
use lading_store::{Store, StoreError};

use crate::refusal::Refusal;

/// The membership, shared by the verifier threads and the sequencer.
#[derive(Debug, Clone)]
pub struct PartyBook {
    store: Store,
    membership: Arc<RwLock<Membership>>,
    /// Moves with every statement applied: a submission verified under an older generation is
    /// checked again by the sequencer.
    generation: Arc<AtomicU64>,
    /// Kids looked for in the database and not found there.
    unknown: Arc<Mutex<UnknownKids>>,
}

/// How long a kid not found in the database is answered `unknown_key` without asking it again
/// (a genesis imported meanwhile is seen after this long; a key added by a party statement is
/// in memory at once).
pub const UNKNOWN_FOR: Duration = Duration::from_secs(10);

/// Most kids remembered as unknown; the set starts over when full.
pub const UNKNOWN_KIDS: usize = 10_000;

/// Kids the database does not know, forgotten all at once every [`UNKNOWN_FOR`] or when
/// [`UNKNOWN_KIDS`] of them are held: bounded, and never stale for long.
#[derive(Debug)]
struct UnknownKids {
    kids: HashSet<String>,
    since: Instant,
}

impl Default for UnknownKids {
    fn default() -> Self {
        Self {
            kids: HashSet::default(),
            since: Instant::now(),
        }
    }
}

impl UnknownKids {
    fn contains(&mut self, kid: &str) -> bool {
        self.expire();
        self.kids.contains(kid)
    }

    fn insert(&mut self, kid: &str) {
        self.expire();
        if self.kids.len() >= UNKNOWN_KIDS {
            self.kids.clear();
        }
        self.kids.insert(kid.to_owned());
    }

    fn expire(&mut self) {
        if self.since.elapsed() >= UNKNOWN_FOR {
            self.kids.clear();
            self.since = Instant::now();
        }
    }
}

/// A signer's key as memory alone knows it.
#[derive(Debug)]
pub(crate) enum InMemory {
    Key(VerifyingKey),
    Refused(Refusal),
    /// Not in memory, and not known to be unknown: the database must be asked.
    NotThere,
}

/// "Now", for a membership check: after every statement applied so far.
const NOW: u64 = u64::MAX;

impl PartyBook {
    pub fn load(store: Store) -> Result<Self, StoreError> {
        let book = Self {
            store,
            membership: Arc::default(),
            generation: Arc::default(),
            unknown: Arc::default(),
        };
        book.reload()?;
        Ok(book)
    }

    /// Reads the whole membership again.
    pub fn reload(&self) -> Result<(), StoreError> {
        let mut conn = self.store.conn()?;
        let parties = lading_store::parties::all_parties(&mut conn)?;
        let keys = lading_store::parties::all_keys(&mut conn)?;
        let operator = lading_store::parties::operator_keys(&mut conn)?;
        let members = parties
            .iter()
            .map(|row| {
                Ok(Member {
                    party: party_from_row(row)?,
                    added_at: index_of(row.added_idx),
                    removed_at: index_of(row.removed_idx),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let keys = keys
            .iter()
            .map(key_from_row)
            .chain(operator.iter().map(operator_key_from_row))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let membership =
            Membership::from_records(members, keys).map_err(|e| StoreError::Corrupt {
                table: "parties",
                detail: e.to_string(),
            })?;
        *self.membership.write().unwrap_or_else(|e| e.into_inner()) = membership;
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// The current generation (see [`PartyBook::generation`]'s field).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The key `kid` if `signer` may sign with it now. A kid not in memory is looked for in the
    /// database, unless it was not found there lately.
    pub fn signer_key(&self, kid: &str, signer: &str) -> Result<VerifyingKey, Refusal> {
        match self.key_in_memory(kid, signer) {
            InMemory::Key(key) => return Ok(key),
            InMemory::Refused(refusal) => return Err(refusal),
            InMemory::NotThere => {}
        }
        if self.look_up_kids(&[kid]).map_err(Refusal::unavailable)? {
            match self.key_in_memory(kid, signer) {
                InMemory::Key(key) => return Ok(key),
                InMemory::Refused(refusal) => return Err(refusal),
                InMemory::NotThere => {}
            }
        }
        Err(Refusal::UnknownKey {
            kid: kid.to_owned(),
        })
    }

    /// [`Self::signer_key`] without the database: a kid memory does not hold is `NotThere`,
    /// or `unknown_key` when the database was asked about it lately.
    pub(crate) fn key_in_memory(&self, kid: &str, signer: &str) -> InMemory {
        let unknown = || {
            InMemory::Refused(Refusal::UnknownKey {
                kid: kid.to_owned(),
            })
        };
        let (Ok(parsed), Ok(signer)) = (kid.parse::<KeyId>(), signer.parse::<Principal>()) else {
            return unknown();
        };
        match self.read().signer_key(&parsed, &signer, NOW) {
            Ok(key) => return InMemory::Key(key.clone()),
            Err(MembershipViolation::UnknownKey { .. }) => {}
            Err(violation) => return InMemory::Refused(refusal(violation)),
        }
        if self.lock_unknown().contains(kid) {
            return unknown();
        }
        InMemory::NotThere
    }

    /// Looks for `kids` in the database, in one round trip: true when some were found, and
    /// the membership was read again; the others are remembered as unknown.
    pub(crate) fn look_up_kids(&self, kids: &[&str]) -> Result<bool, StoreError> {
        let mut asked: Vec<&str> = {
            let mut unknown = self.lock_unknown();
            kids.iter()
                .copied()
                .filter(|kid| !unknown.contains(kid))
                .collect()
        };
        asked.sort_unstable();
        asked.dedup();
        if asked.is_empty() {
            return Ok(false);
        }
        let known = {
            let mut conn = self.store.conn()?;
            lading_store::parties::known_kids(&mut conn, &asked)?
        };
        if !known.is_empty() {
            self.reload()?;
        }
        let mut unknown = self.lock_unknown();
        for kid in asked {
            if !known.iter().any(|k| k == kid) {
                unknown.insert(kid);
            }
        }
        Ok(!known.is_empty())
    }

    fn lock_unknown(&self) -> std::sync::MutexGuard<'_, UnknownKids> {
        self.unknown.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The key `kid` of `signer` whatever its validity now: a signature by a key revoked since
    /// may still be a resubmission of an entry it signed in time (a duplicate).
    pub fn historic_key(&self, kid: &str, signer: &str) -> Option<VerifyingKey> {
        let kid: KeyId = kid.parse().ok()?;
        let signer: Principal = signer.parse().ok()?;
        self.read()
            .key(&kid)
            .filter(|record| record.owner == signer)
            .map(|record| record.key.clone())
    }

    /// A current member.
    pub fn party(&self, id: &str) -> Option<Party> {
        let id: PartyId = id.parse().ok()?;
        self.read()
            .member(&id)
            .filter(|m| m.removed_at.is_none())
            .map(|m| m.party.clone())
    }

    /// The membership as it stands, with every key's and party's history.
    pub fn snapshot(&self) -> Membership {
        self.read().clone()
    }

    /// Checks a party statement as the entry at `index`.
    pub(crate) fn check(
        &self,
        index: u64,
        kid: &KeyId,
        statement: &PartyStatement,
    ) -> Result<VerifyingKey, Refusal> {
        self.read().check(index, kid, statement).map_err(refusal)
    }

    /// Applies a statement made durable at `index`.
    pub(crate) fn apply(&self, index: u64, kid: &KeyId, statement: &PartyStatement) {
        let applied = self
            .membership
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .apply(index, kid, statement);
        if let Err(e) = applied {
            // It was checked against this very membership before it was written.
            tracing::error!(error = %e, index, "a durable party statement did not apply; reloading");
            if let Err(e) = self.reload() {
                tracing::error!(error = %e, "cannot reload the membership");
            }
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Membership> {
        self.membership.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// The refusal for a membership rule (the key refusals keep their own variants).
pub(crate) fn refusal(violation: MembershipViolation) -> Refusal {
    match violation {
        MembershipViolation::UnknownKey { kid } => Refusal::UnknownKey { kid },
        MembershipViolation::RevokedKey { kid, .. } => Refusal::RevokedKey { kid },
        MembershipViolation::KeyNotActor { kid, owner, actor } => {
            Refusal::KeyNotActor { kid, owner, actor }
        }
        violation => Refusal::Rule {
            code: violation.code(),
            detail: violation.to_string(),
        },
    }
}

fn index_of(idx: Option<i64>) -> Option<u64> {
    idx.map(|i| u64::try_from(i).unwrap_or(0))
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

fn key_from_row(row: &PartyKeyRow) -> Result<KeyRecord, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        table: "party_keys",
        detail,
    };
    let party: PartyId = row
        .party_id
        .parse()
        .map_err(|e| corrupt(format!("party id {:?}: {e}", row.party_id)))?;
    Ok(KeyRecord {
        key: verifying_key(&row.kid, &row.public_key).map_err(corrupt)?,
        owner: Principal::Party(party),
        added_at: index_of(row.added_idx),
        // A key revoked before party statements existed counts as revoked from the start.
        revoked_at: index_of(row.revoked_idx).or(row.revoked_at.map(|_| 0)),
    })
}

fn operator_key_from_row(row: &OperatorKeyRow) -> Result<KeyRecord, StoreError> {
    Ok(KeyRecord {
        key: verifying_key(&row.kid, &row.public_key).map_err(|detail| StoreError::Corrupt {
            table: "operator_keys",
            detail,
        })?,
        owner: Principal::Operator,
        added_at: index_of(row.added_idx),
        revoked_at: index_of(row.revoked_idx),
    })
}

fn verifying_key(kid: &str, public_key: &[u8]) -> Result<VerifyingKey, String> {
    let kid: KeyId = kid.parse().map_err(|e| format!("kid {kid:?}: {e}"))?;
    VerifyingKey::from_bytes(kid.clone(), public_key)
        .map_err(|e| format!("public key of {kid}: {e}"))
}
