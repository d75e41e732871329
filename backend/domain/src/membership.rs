//! Who may sign at each ledger index: the consortium's parties and their keys, as a fold over
//! the ledger's party statements with `parties.json` as the genesis.
//!
//! A **party statement** is the third kind of ledger entry: a JWS of `typ`
//! [`PARTY_STATEMENT_TYP`] whose canonical-JSON payload is one of
//!
//! | `action` | members | signed by |
//! |---|---|---|
//! | `ADD_PARTY` | `party` (`id`, `name`, `role`, `ports`), `keys` (public JWKs, at least one) | the operator |
//! | `REMOVE_PARTY` | `partyId` | the operator |
//! | `ADD_KEY` | `partyId`, `key` (a public JWK) | a valid key of `partyId`, or the operator |
//! | `REVOKE_KEY` | `partyId`, `kid` | a valid key of `partyId`, or the operator |
//!
//! plus `actor` (the signer: a party id, or `"operator"`) and `time`. The operator is the
//! consortium's operator, whose keys are `operator_keys` in `parties.json`; its own keys are
//! added and revoked the same way with `"partyId": "operator"`, by the operator only. Party
//! statements are public to every member: the feed delivers them in full to everyone.
//!
//! **Validity.** Every entry at index `i` is judged against the membership made by the
//! genesis and the statements at indexes below `i`. A key added by the statement at index `a`
//! may sign entries `i > a` (genesis keys: every `i`); a key revoked by the statement at index
//! `r` may sign no entry `i > r` (the revocation itself, which that key may sign, is the last).
//! A party removed at index `r` signs nothing after `r`. A kid is never reused, a party id is
//! never added twice, and a key added by a statement has a kid `<partyId>:<label>`.
//! [`KeyRecord::valid_at`] answers for any index, so an offline verifier that folds the same
//! statements can tell which key was valid where.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{KeyId, PartyId, Timestamp};
use crate::jws::{open_envelope, CompactJws, EnvelopeError, Jwk, VerifyingKey};
use crate::party::{Party, PartyRegistryError, PartyRegistryFile};

/// The JWS `typ` of a party statement.
pub const PARTY_STATEMENT_TYP: &str = "lading-party+jws";

/// Who a key speaks for: a party, or the consortium's operator (written `"operator"`, a name
/// no party may take).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Principal {
    Operator,
    Party(PartyId),
}

impl Principal {
    pub const OPERATOR: &'static str = "operator";

    pub fn as_str(&self) -> &str {
        match self {
            Self::Operator => Self::OPERATOR,
            Self::Party(id) => id.as_str(),
        }
    }

    pub fn party(&self) -> Option<&PartyId> {
        match self {
            Self::Operator => None,
            Self::Party(id) => Some(id),
        }
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Principal {
    type Err = crate::IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == Self::OPERATOR {
            return Ok(Self::Operator);
        }
        s.parse().map(Self::Party)
    }
}

impl Serialize for Principal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Principal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What a party statement does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    AddParty { party: Party, keys: Vec<Jwk> },
    RemoveParty { party: PartyId },
    AddKey { subject: Principal, key: Jwk },
    RevokeKey { subject: Principal, kid: KeyId },
}

impl Statement {
    pub fn action(&self) -> &'static str {
        match self {
            Self::AddParty { .. } => "ADD_PARTY",
            Self::RemoveParty { .. } => "REMOVE_PARTY",
            Self::AddKey { .. } => "ADD_KEY",
            Self::RevokeKey { .. } => "REVOKE_KEY",
        }
    }

    /// The party (or the operator) the statement is about.
    pub fn subject(&self) -> Principal {
        match self {
            Self::AddParty { party, .. } => Principal::Party(party.id.clone()),
            Self::RemoveParty { party } => Principal::Party(party.clone()),
            Self::AddKey { subject, .. } | Self::RevokeKey { subject, .. } => subject.clone(),
        }
    }
}

/// A party statement's payload: who signs, when, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartyStatement {
    pub actor: Principal,
    pub time: Timestamp,
    pub statement: Statement,
}

/// The payload as written: one flat object, members by action.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawStatement {
    action: String,
    actor: Principal,
    time: Timestamp,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    party: Option<Party>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    keys: Option<Vec<Jwk>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    party_id: Option<Principal>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    key: Option<Jwk>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    kid: Option<KeyId>,
}

/// A member that is there must hold a value: `null` is refused, as in transitions.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// Why a party statement could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("party statement: {0}")]
    Invalid(String),
    #[error("key {kid} carries private material; a party statement publishes public keys only")]
    PrivateKey { kid: String },
}

impl StatementError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Envelope(e) => e.code(),
            Self::Invalid(_) => "invalid_payload",
            Self::PrivateKey { .. } => "private_key",
        }
    }
}

/// Whether `value` holds a `null`, leaving its JSON Pointer in `path`. Nothing in a party
/// statement is ever `null` (`schemas/party-statement.json`), and serde reads a `null` as an
/// absent optional member, which would let a member of another action through (`"kid": null`
/// in a `REMOVE_PARTY`) and make the payload differ from [`PartyStatement::to_json`].
fn first_null(value: &Value, path: &mut String) -> bool {
    let len = path.len();
    let found = match value {
        Value::Null => return true,
        Value::Object(members) => members.iter().any(|(name, v)| {
            path.truncate(len);
            path.push('/');
            path.push_str(&crate::document::pointer_token(name));
            first_null(v, path)
        }),
        Value::Array(items) => items.iter().enumerate().any(|(i, v)| {
            path.truncate(len);
            path.push_str(&format!("/{i}"));
            first_null(v, path)
        }),
        _ => false,
    };
    if !found {
        path.truncate(len);
    }
    found
}

impl PartyStatement {
    pub fn from_json(value: &Value) -> Result<Self, StatementError> {
        let mut path = String::new();
        if value.is_object() && first_null(value, &mut path) {
            return Err(StatementError::Invalid(format!(
                "{path}: not in normal form (omit optional members instead of null)"
            )));
        }
        let raw: RawStatement = serde_json::from_value(value.clone())
            .map_err(|e| StatementError::Invalid(e.to_string()))?;
        let invalid = |detail: &str| StatementError::Invalid(format!("{}: {detail}", raw.action));
        let extra = |present: bool, name: &str| {
            if present {
                Err(invalid(&format!("{name} does not belong to this action")))
            } else {
                Ok(())
            }
        };
        let party_subject = |p: Option<Principal>| match p {
            Some(Principal::Party(id)) => Ok(id),
            Some(Principal::Operator) => Err(invalid("the operator is not a party")),
            None => Err(invalid("partyId is required")),
        };
        let statement = match raw.action.as_str() {
            "ADD_PARTY" => {
                extra(raw.party_id.is_some(), "partyId")?;
                extra(raw.key.is_some(), "key")?;
                extra(raw.kid.is_some(), "kid")?;
                let party = raw.party.ok_or_else(|| invalid("party is required"))?;
                let keys = raw.keys.ok_or_else(|| invalid("keys is required"))?;
                if keys.is_empty() {
                    return Err(invalid("a party needs at least one key"));
                }
                Statement::AddParty { party, keys }
            }
            "REMOVE_PARTY" => {
                extra(raw.party.is_some(), "party")?;
                extra(raw.keys.is_some(), "keys")?;
                extra(raw.key.is_some(), "key")?;
                extra(raw.kid.is_some(), "kid")?;
                Statement::RemoveParty {
                    party: party_subject(raw.party_id)?,
                }
            }
            "ADD_KEY" => {
                extra(raw.party.is_some(), "party")?;
                extra(raw.keys.is_some(), "keys")?;
                extra(raw.kid.is_some(), "kid")?;
                Statement::AddKey {
                    subject: raw.party_id.ok_or_else(|| invalid("partyId is required"))?,
                    key: raw.key.ok_or_else(|| invalid("key is required"))?,
                }
            }
            "REVOKE_KEY" => {
                extra(raw.party.is_some(), "party")?;
                extra(raw.keys.is_some(), "keys")?;
                extra(raw.key.is_some(), "key")?;
                Statement::RevokeKey {
                    subject: raw.party_id.ok_or_else(|| invalid("partyId is required"))?,
                    kid: raw.kid.ok_or_else(|| invalid("kid is required"))?,
                }
            }
            other => {
                return Err(StatementError::Invalid(format!(
                    "action {other:?} is not one of ADD_PARTY, REMOVE_PARTY, ADD_KEY, REVOKE_KEY"
                )))
            }
        };
        let new_keys: &[Jwk] = match &statement {
            Statement::AddParty { keys, .. } => keys,
            Statement::AddKey { key, .. } => std::slice::from_ref(key),
            _ => &[],
        };
        if let Some(private) = new_keys.iter().find(|k| k.is_private()) {
            return Err(StatementError::PrivateKey {
                kid: private.kid().to_string(),
            });
        }
        Ok(Self {
            actor: raw.actor,
            time: raw.time,
            statement,
        })
    }

    pub fn to_json(&self) -> Value {
        let mut raw = RawStatement {
            action: self.statement.action().to_owned(),
            actor: self.actor.clone(),
            time: self.time,
            party: None,
            keys: None,
            party_id: None,
            key: None,
            kid: None,
        };
        match &self.statement {
            Statement::AddParty { party, keys } => {
                raw.party = Some(party.clone());
                raw.keys = Some(keys.iter().map(Jwk::to_public).collect());
            }
            Statement::RemoveParty { party } => {
                raw.party_id = Some(Principal::Party(party.clone()))
            }
            Statement::AddKey { subject, key } => {
                raw.party_id = Some(subject.clone());
                raw.key = Some(key.to_public());
            }
            Statement::RevokeKey { subject, kid } => {
                raw.party_id = Some(subject.clone());
                raw.kid = Some(kid.clone());
            }
        }
        serde_json::to_value(raw).unwrap_or(Value::Null)
    }

    /// Signs the statement with `key` (which must be the actor's).
    pub fn sign(&self, key: &crate::jws::SigningKey) -> String {
        key.sign_compact(
            &crate::canonical::canonicalize(&self.to_json()),
            PARTY_STATEMENT_TYP,
        )
    }
}

/// A party statement as signed; the signature is checked against the [`Membership`].
#[derive(Debug, Clone)]
pub struct SignedPartyStatement {
    jws: CompactJws,
    statement: PartyStatement,
}

impl SignedPartyStatement {
    pub fn parse(compact: &str) -> Result<Self, StatementError> {
        let (jws, value) = open_envelope(compact, PARTY_STATEMENT_TYP)?;
        let statement = PartyStatement::from_json(&value)?;
        // One byte form per statement: the payload is exactly what `to_json` writes (keys with
        // `use` and `alg`, no empty `ports`), so the same statement always has the same leaf.
        if crate::canonical::canonicalize(&statement.to_json()).as_slice() != jws.payload_bytes() {
            return Err(StatementError::Invalid(
                "not in normal form: write the statement as `lading party` does (public keys with \
                 kty, crv, x, kid, use \"sig\" and alg \"EdDSA\"; no empty ports)"
                    .into(),
            ));
        }
        Ok(Self { jws, statement })
    }

    pub fn jws(&self) -> &CompactJws {
        &self.jws
    }

    pub fn kid(&self) -> &KeyId {
        self.jws.kid()
    }

    pub fn statement(&self) -> &PartyStatement {
        &self.statement
    }
}

/// A key and its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub key: VerifyingKey,
    pub owner: Principal,
    /// The index of the statement that added it; `None` for a genesis key.
    pub added_at: Option<u64>,
    /// The index of the statement that revoked it.
    pub revoked_at: Option<u64>,
}

impl KeyRecord {
    /// Whether the key may sign the entry at `index` (see the module documentation).
    pub fn valid_at(&self, index: u64) -> bool {
        self.added_at.is_none_or(|a| a < index) && self.revoked_at.is_none_or(|r| index <= r)
    }
}

/// A party and its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub party: Party,
    /// The index of the statement that added it; `None` for a genesis party.
    pub added_at: Option<u64>,
    pub removed_at: Option<u64>,
}

impl Member {
    /// Whether the party may sign the entry at `index`.
    pub fn active_at(&self, index: u64) -> bool {
        self.added_at.is_none_or(|a| a < index) && self.removed_at.is_none_or(|r| index <= r)
    }
}

/// Why a signature or a party statement does not fit the membership.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipViolation {
    #[error("key {kid} is not registered")]
    UnknownKey { kid: String },
    #[error("key {kid} was revoked at ledger index {revoked_at}")]
    RevokedKey { kid: String, revoked_at: u64 },
    #[error("key {kid} belongs to {owner}, but {actor} signed")]
    KeyNotActor {
        kid: String,
        owner: String,
        actor: String,
    },
    #[error("{party} is not a member of the consortium")]
    NotMember { party: String },
    #[error("{action} must be signed by the consortium's operator")]
    OperatorOnly { action: &'static str },
    #[error("{action} about {subject} must be signed by {subject} or by the operator")]
    NotOwnerOrOperator {
        action: &'static str,
        subject: String,
    },
    #[error("party {party} exists (party ids are never reused)")]
    PartyExists { party: String },
    #[error("kid {kid} is taken (kids are never reused)")]
    KeyExists { kid: String },
    #[error("kid {kid} must be written {owner}:<label>")]
    KidNotOfOwner { kid: String, owner: String },
    #[error("key {kid} is not a key of {owner}")]
    KeyNotOfOwner { kid: String, owner: String },
    #[error("key {kid} is already revoked")]
    AlreadyRevoked { kid: String },
    #[error("key {kid} is the operator's last valid key")]
    LastOperatorKey { kid: String },
    #[error("party {party}: {detail}")]
    InvalidParty { party: String, detail: String },
}

impl MembershipViolation {
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownKey { .. } => "unknown_key",
            Self::RevokedKey { .. } => "revoked_key",
            Self::KeyNotActor { .. } => "key_not_actor",
            Self::NotMember { .. } => "not_a_member",
            Self::OperatorOnly { .. } => "operator_only",
            Self::NotOwnerOrOperator { .. } => "not_owner_or_operator",
            Self::PartyExists { .. } => "party_exists",
            Self::KeyExists { .. } => "key_exists",
            Self::KidNotOfOwner { .. } => "kid_not_of_owner",
            Self::KeyNotOfOwner { .. } => "key_not_of_owner",
            Self::AlreadyRevoked { .. } => "key_already_revoked",
            Self::LastOperatorKey { .. } => "last_operator_key",
            Self::InvalidParty { .. } => "invalid_party",
        }
    }
}

/// The consortium at one point of the ledger, with the history of every key and party.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    parties: HashMap<PartyId, Member>,
    keys: HashMap<KeyId, KeyRecord>,
}

impl Membership {
    /// The genesis: every party and key of `parties.json`, valid from index 0.
    pub fn genesis(file: &PartyRegistryFile) -> Result<Self, PartyRegistryError> {
        let mut members = Vec::new();
        let mut keys = Vec::new();
        for key in file.party_keys()? {
            keys.push(KeyRecord {
                key: key.key,
                owner: Principal::Party(key.party),
                added_at: None,
                revoked_at: None,
            });
        }
        for jwk in &file.operator_keys {
            let invalid = |detail: String| PartyRegistryError::Invalid {
                party: Principal::OPERATOR.into(),
                detail,
            };
            if jwk.is_private() {
                return Err(PartyRegistryError::PrivateKey {
                    party: Principal::OPERATOR.into(),
                    kid: jwk.kid().to_string(),
                });
            }
            keys.push(KeyRecord {
                key: jwk.verifying_key().map_err(|e| invalid(e.to_string()))?,
                owner: Principal::Operator,
                added_at: None,
                revoked_at: None,
            });
        }
        for entry in &file.parties {
            let party: Party = serde_json::from_value(serde_json::json!({
                "id": entry.id, "name": entry.name, "role": entry.role, "ports": entry.ports,
            }))
            .map_err(|e| PartyRegistryError::Invalid {
                party: entry.id.clone(),
                detail: e.to_string(),
            })?;
            members.push(Member {
                party,
                added_at: None,
                removed_at: None,
            });
        }
        Self::from_records(members, keys).map_err(|v| PartyRegistryError::Invalid {
            party: String::new(),
            detail: v.to_string(),
        })
    }

    /// A membership from its records (as a registry keeps them), checking that ids and kids
    /// are unique and that every key's owner is a member or the operator.
    pub fn from_records(
        members: Vec<Member>,
        keys: Vec<KeyRecord>,
    ) -> Result<Self, MembershipViolation> {
        let mut membership = Self::default();
        for member in members {
            let id = member.party.id.clone();
            if id.as_str() == Principal::OPERATOR {
                return Err(MembershipViolation::PartyExists {
                    party: id.to_string(),
                });
            }
            if membership.parties.insert(id.clone(), member).is_some() {
                return Err(MembershipViolation::PartyExists {
                    party: id.to_string(),
                });
            }
        }
        for record in keys {
            if let Principal::Party(owner) = &record.owner {
                if !membership.parties.contains_key(owner) {
                    return Err(MembershipViolation::NotMember {
                        party: owner.to_string(),
                    });
                }
            }
            let kid = record.key.kid.clone();
            if membership.keys.insert(kid.clone(), record).is_some() {
                return Err(MembershipViolation::KeyExists {
                    kid: kid.to_string(),
                });
            }
        }
        Ok(membership)
    }

    pub fn key(&self, kid: &KeyId) -> Option<&KeyRecord> {
        self.keys.get(kid)
    }

    pub fn member(&self, id: &PartyId) -> Option<&Member> {
        self.parties.get(id)
    }

    /// Every party, in id order.
    pub fn members(&self) -> Vec<&Member> {
        let mut members: Vec<&Member> = self.parties.values().collect();
        members.sort_by(|a, b| a.party.id.cmp(&b.party.id));
        members
    }

    /// Every key, in kid order.
    pub fn keys(&self) -> Vec<&KeyRecord> {
        let mut keys: Vec<&KeyRecord> = self.keys.values().collect();
        keys.sort_by(|a, b| a.key.kid.cmp(&b.key.kid));
        keys
    }

    /// The key `kid` if `signer` may sign the entry at `index` with it.
    pub fn signer_key(
        &self,
        kid: &KeyId,
        signer: &Principal,
        index: u64,
    ) -> Result<&VerifyingKey, MembershipViolation> {
        let record = self
            .keys
            .get(kid)
            .filter(|r| r.added_at.is_none_or(|a| a < index))
            .ok_or_else(|| MembershipViolation::UnknownKey {
                kid: kid.to_string(),
            })?;
        if &record.owner != signer {
            return Err(MembershipViolation::KeyNotActor {
                kid: kid.to_string(),
                owner: record.owner.to_string(),
                actor: signer.to_string(),
            });
        }
        if let Some(revoked_at) = record.revoked_at.filter(|r| index > *r) {
            return Err(MembershipViolation::RevokedKey {
                kid: kid.to_string(),
                revoked_at,
            });
        }
        if let Principal::Party(party) = signer {
            if !self.parties.get(party).is_some_and(|m| m.active_at(index)) {
                return Err(MembershipViolation::NotMember {
                    party: party.to_string(),
                });
            }
        }
        Ok(&record.key)
    }

    /// Checks the statement at `index` signed with `kid` (the signature itself is the
    /// caller's to verify, with the key this returns) and applies it. On `Err` nothing changed.
    pub fn apply(
        &mut self,
        index: u64,
        kid: &KeyId,
        statement: &PartyStatement,
    ) -> Result<VerifyingKey, MembershipViolation> {
        let key = self.check(index, kid, statement)?;
        match &statement.statement {
            Statement::AddParty { party, keys } => {
                self.parties.insert(
                    party.id.clone(),
                    Member {
                        party: party.clone(),
                        added_at: Some(index),
                        removed_at: None,
                    },
                );
                for jwk in keys {
                    self.add_key(index, Principal::Party(party.id.clone()), jwk)?;
                }
            }
            Statement::RemoveParty { party } => {
                if let Some(member) = self.parties.get_mut(party) {
                    member.removed_at = Some(index);
                }
            }
            Statement::AddKey { subject, key } => self.add_key(index, subject.clone(), key)?,
            Statement::RevokeKey { kid, .. } => {
                if let Some(record) = self.keys.get_mut(kid) {
                    record.revoked_at = Some(index);
                }
            }
        }
        Ok(key)
    }

    fn add_key(
        &mut self,
        index: u64,
        owner: Principal,
        jwk: &Jwk,
    ) -> Result<(), MembershipViolation> {
        let key = jwk
            .verifying_key()
            .map_err(|e| MembershipViolation::InvalidParty {
                party: owner.to_string(),
                detail: e.to_string(),
            })?;
        self.keys.insert(
            jwk.kid().clone(),
            KeyRecord {
                key,
                owner,
                added_at: Some(index),
                revoked_at: None,
            },
        );
        Ok(())
    }

    /// [`Membership::apply`] without the change.
    pub fn check(
        &self,
        index: u64,
        kid: &KeyId,
        statement: &PartyStatement,
    ) -> Result<VerifyingKey, MembershipViolation> {
        let key = self.signer_key(kid, &statement.actor, index)?.clone();
        let action = statement.statement.action();
        let subject = statement.statement.subject();
        let by_operator = statement.actor == Principal::Operator;
        let new_key_ok = |jwk: &Jwk, owner: &Principal, seen: &[&KeyId]| {
            let kid = jwk.kid();
            jwk.verifying_key()
                .map_err(|e| MembershipViolation::InvalidParty {
                    party: owner.to_string(),
                    detail: e.to_string(),
                })?;
            if self.keys.contains_key(kid) || seen.contains(&kid) {
                return Err(MembershipViolation::KeyExists {
                    kid: kid.to_string(),
                });
            }
            let label = kid
                .as_str()
                .strip_prefix(owner.as_str())
                .and_then(|rest| rest.strip_prefix(':'));
            if label.is_none_or(str::is_empty) {
                return Err(MembershipViolation::KidNotOfOwner {
                    kid: kid.to_string(),
                    owner: owner.to_string(),
                });
            }
            Ok(())
        };
        let member_now = |party: &PartyId| {
            if self.parties.get(party).is_some_and(|m| m.active_at(index)) {
                Ok(())
            } else {
                Err(MembershipViolation::NotMember {
                    party: party.to_string(),
                })
            }
        };
        match &statement.statement {
            Statement::AddParty { party, keys } => {
                if !by_operator {
                    return Err(MembershipViolation::OperatorOnly { action });
                }
                if party.id.as_str() == Principal::OPERATOR || self.parties.contains_key(&party.id)
                {
                    return Err(MembershipViolation::PartyExists {
                        party: party.id.to_string(),
                    });
                }
                if party.role != crate::party::Role::CustomsAuthority && !party.ports.is_empty() {
                    return Err(MembershipViolation::InvalidParty {
                        party: party.id.to_string(),
                        detail: "only a customs authority has ports".into(),
                    });
                }
                let mut seen = Vec::new();
                for jwk in keys {
                    new_key_ok(jwk, &subject, &seen)?;
                    seen.push(jwk.kid());
                }
            }
            Statement::RemoveParty { party } => {
                if !by_operator {
                    return Err(MembershipViolation::OperatorOnly { action });
                }
                member_now(party)?;
            }
            Statement::AddKey { subject, key } => {
                self.owner_or_operator(statement, action, subject)?;
                new_key_ok(key, subject, &[])?;
            }
            Statement::RevokeKey { subject, kid } => {
                self.owner_or_operator(statement, action, subject)?;
                let record = self
                    .keys
                    .get(kid)
                    .filter(|r| &r.owner == subject)
                    .ok_or_else(|| MembershipViolation::KeyNotOfOwner {
                        kid: kid.to_string(),
                        owner: subject.to_string(),
                    })?;
                if record.revoked_at.is_some() {
                    return Err(MembershipViolation::AlreadyRevoked {
                        kid: kid.to_string(),
                    });
                }
                if *subject == Principal::Operator {
                    let others = self.keys.values().any(|r| {
                        r.owner == Principal::Operator
                            && r.key.kid != *kid
                            && r.revoked_at.is_none()
                            && r.added_at.is_none_or(|a| a < index)
                    });
                    if !others {
                        return Err(MembershipViolation::LastOperatorKey {
                            kid: kid.to_string(),
                        });
                    }
                }
            }
        }
        Ok(key)
    }

    /// A key statement about `subject` is signed by `subject` itself (a member) or by the
    /// operator; one about the operator's keys by the operator only.
    fn owner_or_operator(
        &self,
        statement: &PartyStatement,
        action: &'static str,
        subject: &Principal,
    ) -> Result<(), MembershipViolation> {
        match subject {
            Principal::Operator if statement.actor != Principal::Operator => {
                Err(MembershipViolation::OperatorOnly { action })
            }
            Principal::Operator => Ok(()),
            Principal::Party(party) => {
                if statement.actor != Principal::Operator && &statement.actor != subject {
                    return Err(MembershipViolation::NotOwnerOrOperator {
                        action,
                        subject: party.to_string(),
                    });
                }
                if self
                    .parties
                    .get(party)
                    .is_none_or(|m| m.removed_at.is_some())
                {
                    return Err(MembershipViolation::NotMember {
                        party: party.to_string(),
                    });
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jws::SigningKey;
    use crate::party::Role;

    fn key(kid: &str) -> SigningKey {
        Jwk::generate(kid.parse().unwrap(), true)
            .signing_key()
            .unwrap()
    }

    fn genesis(operator: &SigningKey, carrier: &SigningKey) -> Membership {
        let file = serde_json::json!({
            "operator_keys": [Jwk::from_signing_key(operator, true).to_public()],
            "parties": [{
                "id": "carrier-a", "name": "Carrier A", "role": "carrier",
                "keys": [Jwk::from_signing_key(carrier, true).to_public()],
            }],
        });
        Membership::genesis(&PartyRegistryFile::parse(&file.to_string()).unwrap()).unwrap()
    }

    fn statement(actor: &str, statement: Statement) -> PartyStatement {
        PartyStatement {
            actor: actor.parse().unwrap(),
            time: Timestamp::now(),
            statement,
        }
    }

    fn carrier_a() -> Principal {
        Principal::Party("carrier-a".parse().unwrap())
    }

    #[test]
    fn a_rotated_key_signs_after_its_statement_and_a_revoked_one_only_until_its_own() {
        let (op, k1) = (key("operator:1"), key("carrier-a:1"));
        let mut m = genesis(&op, &k1);
        let k2 = key("carrier-a:2");
        let add = statement(
            "carrier-a",
            Statement::AddKey {
                subject: carrier_a(),
                key: Jwk::from_signing_key(&k2, true).to_public(),
            },
        );
        m.apply(5, &k1.kid, &add).unwrap();
        assert!(
            m.signer_key(&k2.kid, &carrier_a(), 5).is_err(),
            "not at its own index"
        );
        assert!(m.signer_key(&k2.kid, &carrier_a(), 6).is_ok());
        // The old key revokes itself at 9: it signs 9, nothing after.
        let revoke = statement(
            "carrier-a",
            Statement::RevokeKey {
                subject: carrier_a(),
                kid: k1.kid.clone(),
            },
        );
        m.apply(9, &k1.kid, &revoke).unwrap();
        assert!(
            m.signer_key(&k1.kid, &carrier_a(), 3).is_ok(),
            "earlier entries stay valid"
        );
        assert!(m.signer_key(&k1.kid, &carrier_a(), 9).is_ok());
        assert_eq!(
            m.signer_key(&k1.kid, &carrier_a(), 10).unwrap_err().code(),
            "revoked_key"
        );
        let record = m.key(&k1.kid).unwrap();
        assert_eq!((record.added_at, record.revoked_at), (None, Some(9)));
        assert!(record.valid_at(0) && record.valid_at(9) && !record.valid_at(10));
        // Revoking again, and by a revoked key, are refused without change.
        let before = m.clone();
        assert_eq!(
            m.apply(11, &k2.kid, &revoke).unwrap_err().code(),
            "key_already_revoked"
        );
        assert_eq!(
            m.apply(11, &k1.kid, &add).unwrap_err().code(),
            "revoked_key"
        );
        assert_eq!(m, before);
    }

    #[test]
    fn only_the_operator_adds_and_removes_parties() {
        let (op, k1) = (key("operator:1"), key("carrier-a:1"));
        let mut m = genesis(&op, &k1);
        let newcomer = key("bank-b:1");
        let add = statement(
            "operator",
            Statement::AddParty {
                party: Party {
                    id: "bank-b".parse().unwrap(),
                    name: "Bank B".parse().unwrap(),
                    role: Role::Bank,
                    ports: vec![],
                },
                keys: vec![Jwk::from_signing_key(&newcomer, true).to_public()],
            },
        );
        let by_carrier = PartyStatement {
            actor: carrier_a(),
            ..add.clone()
        };
        assert_eq!(
            m.apply(1, &k1.kid, &by_carrier).unwrap_err().code(),
            "operator_only"
        );
        m.apply(2, &op.kid, &add).unwrap();
        let bank = Principal::Party("bank-b".parse().unwrap());
        assert!(m.signer_key(&newcomer.kid, &bank, 3).is_ok());
        assert_eq!(
            m.apply(3, &op.kid, &add).unwrap_err().code(),
            "party_exists"
        );
        let remove = statement(
            "operator",
            Statement::RemoveParty {
                party: "bank-b".parse().unwrap(),
            },
        );
        m.apply(4, &op.kid, &remove).unwrap();
        assert_eq!(
            m.signer_key(&newcomer.kid, &bank, 5).unwrap_err().code(),
            "not_a_member"
        );
        assert!(m.signer_key(&newcomer.kid, &bank, 3).is_ok());
        // A removed party's id is not taken again.
        assert_eq!(
            m.apply(6, &op.kid, &add).unwrap_err().code(),
            "party_exists"
        );
    }

    #[test]
    fn keys_are_bound_to_their_owner_and_never_reused() {
        let (op, k1) = (key("operator:1"), key("carrier-a:1"));
        let mut m = genesis(&op, &k1);
        let add = |kid: &str, actor: &str, subject: Principal| {
            statement(
                actor,
                Statement::AddKey {
                    subject,
                    key: Jwk::from_signing_key(&key(kid), true).to_public(),
                },
            )
        };
        let code = |m: &mut Membership, kid: &KeyId, s: &PartyStatement| {
            m.apply(7, kid, s).unwrap_err().code()
        };
        assert_eq!(
            code(
                &mut m,
                &k1.kid,
                &add("carrier-a:1", "carrier-a", carrier_a())
            ),
            "key_exists"
        );
        assert_eq!(
            code(&mut m, &k1.kid, &add("other:1", "carrier-a", carrier_a())),
            "kid_not_of_owner"
        );
        assert_eq!(
            code(
                &mut m,
                &k1.kid,
                &add("operator:2", "carrier-a", Principal::Operator)
            ),
            "operator_only"
        );
        // The operator adds a key for a party that lost its own.
        m.apply(8, &op.kid, &add("carrier-a:9", "operator", carrier_a()))
            .unwrap();
        // The operator's last key cannot go.
        let revoke_op = statement(
            "operator",
            Statement::RevokeKey {
                subject: Principal::Operator,
                kid: op.kid.clone(),
            },
        );
        assert_eq!(code(&mut m, &op.kid, &revoke_op), "last_operator_key");
        // A key of one party is not the key of another.
        let wrong = statement(
            "operator",
            Statement::RevokeKey {
                subject: Principal::Operator,
                kid: k1.kid.clone(),
            },
        );
        assert_eq!(code(&mut m, &op.kid, &wrong), "key_not_of_owner");
    }

    #[test]
    fn statements_round_trip_and_refuse_stray_members_and_private_keys() {
        let (op, k1) = (key("operator:1"), key("carrier-a:1"));
        let s = statement(
            "operator",
            Statement::AddKey {
                subject: carrier_a(),
                key: Jwk::from_signing_key(&k1, true).to_public(),
            },
        );
        let signed = s.sign(&op);
        let parsed = SignedPartyStatement::parse(&signed).unwrap();
        assert_eq!(parsed.statement(), &s);
        assert_eq!(parsed.jws().typ(), Some(PARTY_STATEMENT_TYP));
        // Another spelling of the same key is not the same statement: refused, not re-read.
        let mut v = s.to_json();
        v["key"].as_object_mut().unwrap().remove("use");
        let respelled = op.sign_compact(&crate::canonical::canonicalize(&v), PARTY_STATEMENT_TYP);
        assert_eq!(
            SignedPartyStatement::parse(&respelled).unwrap_err().code(),
            "invalid_payload"
        );
        let mut v = s.to_json();
        v["kid"] = "carrier-a:1".into();
        assert_eq!(
            PartyStatement::from_json(&v).unwrap_err().code(),
            "invalid_payload"
        );
        let mut v = s.to_json();
        v["key"] = serde_json::to_value(Jwk::from_signing_key(&k1, true)).unwrap();
        assert_eq!(
            PartyStatement::from_json(&v).unwrap_err().code(),
            "private_key"
        );
        // A null is no absent member: not the member of another action, nor inside a key.
        let mut v = s.to_json();
        v["kid"] = Value::Null;
        let err = PartyStatement::from_json(&v).unwrap_err();
        assert_eq!(err.code(), "invalid_payload");
        assert!(
            err.to_string().contains("/kid: not in normal form"),
            "{err}"
        );
        let mut v = s.to_json();
        v["key"]["use"] = Value::Null;
        let err = PartyStatement::from_json(&v).unwrap_err();
        assert!(
            err.to_string().contains("/key/use: not in normal form"),
            "{err}"
        );
        let mut signed_null = s.to_json();
        signed_null["party"] = Value::Null;
        let compact = op.sign_compact(
            &crate::canonical::canonicalize(&signed_null),
            PARTY_STATEMENT_TYP,
        );
        assert_eq!(
            SignedPartyStatement::parse(&compact).unwrap_err().code(),
            "invalid_payload"
        );
        let mut v = s.to_json();
        v["kid"] = serde_json::Value::Null;
        assert_eq!(
            PartyStatement::from_json(&v).unwrap_err().code(),
            "invalid_payload",
            "null is not absent"
        );
        let mut v = s.to_json();
        v["action"] = "BECOME_KING".into();
        assert!(PartyStatement::from_json(&v).is_err());
        let mut v = s.to_json();
        v["partyId"] = "operator".into();
        v["action"] = "REMOVE_PARTY".into();
        v.as_object_mut().unwrap().remove("key");
        assert!(
            PartyStatement::from_json(&v).is_err(),
            "the operator is not removed"
        );
    }
}
