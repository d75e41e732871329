//! `POST /v1/party-statements` and `GET /v1/parties`: the consortium's membership on the ledger.
//!
//! A party statement (`typ` `lading-party+jws`) adds or removes a party, or adds or revokes a
//! key; its signature is its authority, as for transitions. The membership it builds is public
//! to every member: `GET /v1/parties` answers any authenticated party with every party and key
//! and the ledger indexes where each was added, removed or revoked, so a verifier can tell
//! which key was valid at which index.

use actix_web::{web, HttpRequest, HttpResponse};
use lading_domain::membership::{KeyRecord, Member};
use lading_registry::Expect;
use serde::Serialize;

use crate::auth::Caller;
use crate::problem::ApiError;
use crate::AppState;

/// One signed party statement (`application/jose`): `201` with `Location`, or `200` for the
/// same bytes already on the ledger.
#[utoipa::path(post, path = "/v1/party-statements", tag = "membership", security((), ("bearer" = ["submit"]), ("mutualTLS" = [])), request_body(content = String, content_type = "application/jose", description = "One signed party statement as a compact JWS (typ lading-party+jws; payload PartyStatement)"), responses((status = 201, description = "Sequenced", body = crate::contract::files::EntryAnswer, headers(("Location" = String))), (status = 200, description = "Already on the ledger (duplicate: true)", body = crate::contract::files::EntryAnswer)))]
pub async fn submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    // Who submits: its party is the submitter the registry checks and records.
    writer: crate::auth::Writer,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    crate::routes::transitions::submit_one(state, req, writer, payload, Expect::Party).await
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MembershipAnswer {
    pub parties: Vec<PartyAnswer>,
    /// The operator's keys.
    pub operator_keys: Vec<KeyAnswer>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartyAnswer {
    pub id: String,
    pub name: String,
    pub role: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
    /// The index of its ADD_PARTY; absent for a party of the genesis (`parties.json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed_at: Option<u64>,
    pub keys: Vec<KeyAnswer>,
}

/// A key as a public JWK, with its history.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyAnswer {
    pub jwk: lading_domain::Jwk,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<u64>,
}

impl From<&KeyRecord> for KeyAnswer {
    fn from(record: &KeyRecord) -> Self {
        Self {
            jwk: lading_domain::Jwk::from_verifying_key(&record.key, false),
            added_at: record.added_at,
            revoked_at: record.revoked_at,
        }
    }
}

fn party_answer(member: &Member, keys: &[&KeyRecord]) -> PartyAnswer {
    PartyAnswer {
        id: member.party.id.to_string(),
        name: member.party.name.to_string(),
        role: member.party.role.as_str(),
        ports: member.party.ports.iter().map(ToString::to_string).collect(),
        added_at: member.added_at,
        removed_at: member.removed_at,
        keys: keys
            .iter()
            .filter(|k| k.owner.party() == Some(&member.party.id))
            .map(|k| KeyAnswer::from(*k))
            .collect(),
    }
}

/// Every party and key, with their history, for any authenticated party.
#[utoipa::path(get, path = "/v1/parties", tag = "membership", security(("bearer" = ["read"]), ("mutualTLS" = [])), responses((status = 200, description = "The consortium's membership", body = crate::contract::files::PartiesAnswer)))]
pub async fn list(state: web::Data<AppState>, _caller: Caller) -> HttpResponse {
    let membership = state.registry.parties().snapshot();
    let keys = membership.keys();
    HttpResponse::Ok().json(MembershipAnswer {
        parties: membership
            .members()
            .into_iter()
            .map(|m| party_answer(m, &keys))
            .collect(),
        operator_keys: keys
            .iter()
            .filter(|k| k.owner.party().is_none())
            .map(|k| KeyAnswer::from(*k))
            .collect(),
    })
}
