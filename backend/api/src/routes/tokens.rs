//! `POST /v1/tokens`, `GET /v1/tokens`, `DELETE /v1/tokens/{id}`: a party's admin manages
//! the party's own API credentials (a credential with the `admin` scope). The secret is in
//! the answer to `POST` only; afterwards only its id is ever shown. Another party's credential
//! answers exactly as one that does not exist (`404 not_found`).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use lading_domain::Digest;
use lading_store::credentials::CredentialRow;
use serde::{Deserialize, Serialize};

use crate::auth::Admin;
use crate::credentials::{new_id, new_secret, parse_duration, parse_scopes};
use crate::problem::ApiError;
use crate::AppState;

/// A credential as shown: never its secret (nor the secret's hash).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    pub id: String,
    pub party: String,
    pub scopes: Vec<String>,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<&CredentialRow> for TokenView {
    fn from(row: &CredentialRow) -> Self {
        Self {
            id: row.id.clone(),
            party: row.party_id.clone(),
            scopes: row.scope_names().map(str::to_owned).collect(),
            label: row.label.clone(),
            created_at: row.created_at,
            expires_at: row.expires_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        }
    }
}

/// What `POST /v1/tokens` takes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    /// `read`, `submit`, `subscribe`, `admin`.
    pub scopes: Vec<String>,
    #[serde(default)]
    pub label: String,
    /// How long it is valid: `90d`, `12h`, ... (absent: until revoked).
    #[serde(default)]
    pub expires: Option<String>,
}

/// The answer to `POST /v1/tokens`: the credential and, this once, its secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Issued {
    #[serde(flatten)]
    pub token: TokenView,
    pub secret: String,
}

/// Labels longer than this are refused: a label names an integration, not a document.
const MAX_LABEL: usize = 200;

/// Makes the row of a new credential of `party` and its secret (not yet stored).
pub fn new_credential(
    party: &str,
    scopes: &[String],
    label: &str,
    expires: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(CredentialRow, String), crate::credentials::CredentialError> {
    let scopes = parse_scopes(scopes.iter().map(String::as_str))?;
    let expires_at = expires.map(parse_duration).transpose()?.map(|d| now + d);
    let secret = new_secret();
    let row = CredentialRow {
        id: new_id(),
        party_id: party.to_owned(),
        secret_sha256: Digest::of(secret.as_bytes()).0.to_vec(),
        scopes: scopes.iter().map(|s| Some(s.as_str().to_owned())).collect(),
        label: label.to_owned(),
        created_at: now,
        expires_at,
        last_used_at: None,
        revoked_at: None,
    };
    Ok((row, secret))
}

/// Issues a credential of the caller's own party: `201` with the secret, shown this once.
#[utoipa::path(post, path = "/v1/tokens", tag = "credentials", security(("bearer" = ["admin"])), request_body(content = IssueRequest, content_type = "application/json"), responses((status = 201, description = "Issued; the secret is shown only here", body = Issued, headers(("Location" = String)))))]
pub async fn issue(
    state: web::Data<AppState>,
    admin: Admin,
    body: web::Json<IssueRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if body.label.chars().count() > MAX_LABEL {
        return Err(ApiError::BadRequest {
            code: "bad_json",
            detail: format!("label is longer than {MAX_LABEL} characters"),
        });
    }
    let (row, secret) = new_credential(
        admin.0.party.id.as_str(),
        &body.scopes,
        &body.label,
        body.expires.as_deref(),
        Utc::now(),
    )
    .map_err(|e| ApiError::BadRequest {
        code: "bad_json",
        detail: e.to_string(),
    })?;
    let store = state.registry.store().clone();
    let row = web::block(move || {
        let mut conn = store.conn()?;
        lading_store::credentials::insert(&mut conn, &row).map(|()| row)
    })
    .await
    .map_err(ApiError::unexpected)?
    .map_err(ApiError::unexpected)?;
    Ok(HttpResponse::build(StatusCode::CREATED)
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("/v1/tokens/{}", row.id),
        ))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(Issued {
            token: TokenView::from(&row),
            secret,
        }))
}

/// The caller's party's credentials, revoked ones included, oldest first.
#[utoipa::path(get, path = "/v1/tokens", tag = "credentials", security(("bearer" = ["admin"])), responses((status = 200, description = "The party's credentials, without secrets", body = Vec<TokenView>)))]
pub async fn list(state: web::Data<AppState>, admin: Admin) -> Result<HttpResponse, ApiError> {
    let store = state.registry.store().clone();
    let party = admin.0.party.id.to_string();
    let rows = web::block(move || {
        let mut conn = store.conn()?;
        lading_store::credentials::list(&mut conn, Some(&party))
    })
    .await
    .map_err(ApiError::unexpected)?
    .map_err(ApiError::unexpected)?;
    Ok(HttpResponse::Ok().json(rows.iter().map(TokenView::from).collect::<Vec<_>>()))
}

/// Revokes one of the caller's party's credentials: `200` with it (revoking again answers
/// the same). Another party's id is `404`, as an id that does not exist.
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "credentials", security(("bearer" = ["admin"])), params(("id" = String, Path, description = "The credential's id")), responses((status = 200, description = "Revoked (or already revoked)", body = TokenView)))]
pub async fn revoke(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let store = state.registry.store().clone();
    let party = admin.0.party.id.to_string();
    let wanted = id.clone();
    let row = web::block(move || {
        let mut conn = store.conn()?;
        lading_store::credentials::revoke(&mut conn, &wanted, Some(&party), Utc::now())
    })
    .await
    .map_err(ApiError::unexpected)?
    .map_err(ApiError::unexpected)?
    .ok_or_else(|| ApiError::NotFound {
        what: format!("token {id}"),
    })?;
    Ok(HttpResponse::Ok().json(TokenView::from(&row)))
}
