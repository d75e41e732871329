//! Party authentication.
//!
//! - Bearer credentials: `Authorization: Bearer <secret>`, a party's API credential
//!   ([`crate::credentials`]): the registry stores only the SHA-256 of each secret. A
//!   credential that is unknown, expired or revoked is refused (401); one without the scope a
//!   route needs, 403. Reads need `read` ([`Caller`]), writes `submit` ([`Writer`]), the
//!   party's credentials `admin` ([`Admin`]).
//! - Writes: the signature proves who signed; the credential says who may submit (and whom
//!   to rate-limit). A write without a bearer credential or a consortium client certificate
//!   is refused unless `registry.require_write_credential` is turned off. A party's
//!   credential submits its own party's statements, and another party's only where that
//!   party has authorised it (`lading_registry::Submitter`).
//! - Replication: mutual TLS. The TLS layer has already checked that the client certificate
//!   chains to the consortium's CA; [`Replica`] reads the party it names and requires that
//!   party to be registered.

use std::future::Future;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpRequest};
use lading_domain::party::Party;
use lading_domain::Digest;

use crate::credentials::Scope;
use crate::problem::ApiError;
use crate::AppState;

/// A bearer credential that is valid now: known, not expired, not revoked.
#[derive(Debug, Clone)]
pub struct Credential {
    pub id: String,
    pub party: Party,
    pub scopes: Vec<Scope>,
}

impl Credential {
    /// Refused as `insufficient_scope` unless the credential has `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(&scope) {
            return Ok(());
        }
        Err(ApiError::Forbidden {
            code: "insufficient_scope",
            detail: format!("this credential has no {} scope", scope.as_str()),
        })
    }
}

/// The secret of the request's `Authorization: Bearer` header, if it has one.
pub fn bearer_secret(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        // The scheme is case-insensitive (RFC 7235 §2.1).
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned())
}

/// The request's bearer credential: `None` without an `Authorization` header, refused when
/// the header names no valid credential.
pub async fn bearer(req: &HttpRequest) -> Result<Option<Credential>, ApiError> {
    if !req
        .headers()
        .contains_key(actix_web::http::header::AUTHORIZATION)
    {
        return Ok(None);
    }
    let secret = bearer_secret(req)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthenticated)?;
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::unexpected("application state missing"))?;
    let hash = Digest::of(secret.as_bytes());
    let store = state.registry.store().clone();
    let found = web::block(move || {
        let mut conn = store.conn()?;
        lading_store::credentials::by_secret(&mut conn, &hash.0)
    })
    .await
    .map_err(ApiError::unexpected)?
    .map_err(ApiError::unexpected)?;
    // A party removed by a party statement is no longer anyone to the registry.
    let (row, party) = found
        .filter(|(_, party)| party.removed_idx.is_none())
        .ok_or(ApiError::Unauthenticated)?;
    let now = chrono::Utc::now();
    if row.revoked_at.is_some() {
        return Err(ApiError::BadCredential {
            code: "token_revoked",
            detail: format!("credential {} is revoked", row.id),
        });
    }
    if row.expires_at.is_some_and(|at| at <= now) {
        return Err(ApiError::BadCredential {
            code: "token_expired",
            detail: format!("credential {} has expired", row.id),
        });
    }
    let party = lading_registry::parties::party_from_row(&party).map_err(ApiError::unexpected)?;
    // Unknown names (a scope of a later version) are ignored, not fatal.
    let scopes = row.scope_names().filter_map(|s| s.parse().ok()).collect();
    if state
        .credentials
        .should_touch(&row.id, std::time::Instant::now())
    {
        let store = state.registry.store().clone();
        let id = row.id.clone();
        // Bookkeeping: the request does not wait for it, and a failure only logs.
        actix_web::rt::spawn(async move {
            let touched = web::block(move || {
                let mut conn = store.conn()?;
                lading_store::credentials::touch(&mut conn, &id, now)
            })
            .await;
            if let Ok(Err(e)) = touched {
                tracing::warn!(error = %e, "cannot record a credential's last use");
            }
        });
    }
    Ok(Some(Credential {
        id: row.id,
        party,
        scopes,
    }))
}

/// A bearer credential with `scope`, required.
async fn bearer_with(req: &HttpRequest, scope: Scope) -> Result<Credential, ApiError> {
    let credential = bearer(req).await?.ok_or(ApiError::Unauthenticated)?;
    credential.require(scope)?;
    Ok(credential)
}

/// The party making a read: a bearer credential with the `read` scope or — without an
/// `Authorization` header — the client certificate of a registered party's node from the
/// consortium's CA, which reads exactly what its party's credential would (the same
/// entitlement rule decides both).
#[derive(Debug, Clone)]
pub struct Caller(pub Party);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let party = bearer_or_certificate(req, payload, Scope::Read);
        Box::pin(async move { Ok(Caller(party.await?)) })
    }
}

/// A party that subscribes to notifications (`/v1/subscriptions`, `/v1/notifications`): a
/// bearer credential with the `subscribe` scope.
#[derive(Debug, Clone)]
pub struct Subscriber(pub Party);

impl FromRequest for Subscriber {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Ok(Subscriber(bearer_with(&req, Scope::Subscribe).await?.party)) })
    }
}

/// A party reading its own subscriptions (`GET /v1/subscriptions`, one of them, its
/// deliveries): a bearer credential with the `subscribe` scope, or — without an
/// `Authorization` header — the client certificate of a registered party's node from the
/// consortium's CA. The node asks so it can tell its users when a subscription is failing
/// (its portal, its status); the certificate reads, it never makes, changes or deletes one,
/// and no answer to a read carries a secret.
#[derive(Debug, Clone)]
pub struct SubscriptionReader(pub Party);

impl FromRequest for SubscriptionReader {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let party = bearer_or_certificate(req, payload, Scope::Subscribe);
        Box::pin(async move { Ok(SubscriptionReader(party.await?)) })
    }
}

/// A bearer credential with `scope` when an `Authorization` header is sent; else, when the
/// connection presented one, the consortium client certificate of a registered party (as
/// [`Replica`] reads it); else `401`.
fn bearer_or_certificate(
    req: &HttpRequest,
    payload: &mut actix_web::dev::Payload,
    scope: Scope,
) -> Pin<Box<dyn Future<Output = Result<Party, ApiError>>>> {
    let has_bearer = req
        .headers()
        .contains_key(actix_web::http::header::AUTHORIZATION);
    if !has_bearer && req.conn_data::<PeerCertificate>().is_some() {
        let replica = Replica::from_request(req, payload);
        return Box::pin(async move { Ok(replica.await?.0) });
    }
    let req = req.clone();
    Box::pin(async move { Ok(bearer_with(&req, scope).await?.party) })
}

/// A party's admin: a bearer credential with the `admin` scope, for the party's credentials.
#[derive(Debug, Clone)]
pub struct Admin(pub Credential);

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Ok(Admin(bearer_with(&req, Scope::Admin).await?)) })
    }
}

/// Who may write: a bearer credential with the `submit` scope, or a client certificate from
/// the consortium's CA (a party's node forwarding, the registry's own certificate). Without
/// either a write is refused (`401`) unless `registry.require_write_credential` is turned off,
/// and then taken with the signature as its only authority.
///
/// The credential's party is the submitter: it may hand in statements it signed itself, and
/// another party's only where that party has authorised it (`/v1/submitters`).
#[derive(Debug, Clone)]
pub enum Writer {
    Bearer(Credential),
    /// A client certificate: the party it names, or `None` for the registry's own.
    Certificate(Option<lading_domain::PartyId>),
    Anonymous,
}

impl Writer {
    /// Who hands the submission in, for the registry's submitter rule.
    pub fn submitter(&self) -> lading_registry::Submitter {
        match self {
            Writer::Bearer(credential) => {
                lading_registry::Submitter::Party(credential.party.id.clone())
            }
            Writer::Certificate(Some(party)) => lading_registry::Submitter::Party(party.clone()),
            Writer::Certificate(None) | Writer::Anonymous => lading_registry::Submitter::Unchecked,
        }
    }
}

impl FromRequest for Writer {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            if let Some(credential) = bearer(&req).await? {
                credential.require(Scope::Submit)?;
                return Ok(Writer::Bearer(credential));
            }
            if let Some(cert) = req.conn_data::<PeerCertificate>() {
                return match lading_pki::subject_of(&cert.0) {
                    Ok(lading_pki::Subject::Party(party)) => Ok(Writer::Certificate(Some(party))),
                    Ok(lading_pki::Subject::Registry) => Ok(Writer::Certificate(None)),
                    Err(e) => Err(ApiError::Forbidden {
                        code: "certificate_names_no_party",
                        detail: e.to_string(),
                    }),
                };
            }
            let required = req
                .app_data::<web::Data<AppState>>()
                .is_none_or(|s| s.credentials.require_write_credential);
            if required {
                return Err(ApiError::Unauthenticated);
            }
            Ok(Writer::Anonymous)
        })
    }
}

/// The leaf certificate the client presented, verified by the TLS layer against the
/// consortium's CA. Stored per connection by [`crate::https_server`].
#[derive(Debug, Clone)]
pub struct PeerCertificate(pub Vec<u8>);

/// The registered party whose replica is calling, named by its client certificate.
#[derive(Debug, Clone)]
pub struct Replica(pub Party);

impl FromRequest for Replica {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let cert = req.conn_data::<PeerCertificate>().cloned();
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let cert = cert.ok_or(ApiError::ClientCertificateRequired)?;
            let id = lading_pki::party_of(&cert.0).map_err(|e| ApiError::Forbidden {
                code: "certificate_names_no_party",
                detail: e.to_string(),
            })?;
            let wanted = id.to_string();
            let party = registered_party(state, move |conn| {
                lading_store::parties::party(conn, &wanted)
            })
            .await?
            .ok_or_else(|| ApiError::Forbidden {
                code: "unregistered_party",
                detail: format!(
                    "the client certificate names {id}, which is not a registered party"
                ),
            })?;
            Ok(Replica(party))
        })
    }
}

/// The registered party a look-up finds, read off the async workers (diesel blocks).
async fn registered_party(
    state: Option<web::Data<AppState>>,
    find: impl FnOnce(
            &mut lading_store::PgConnection,
        ) -> Result<Option<lading_store::models::PartyRow>, lading_store::StoreError>
        + Send
        + 'static,
) -> Result<Option<Party>, ApiError> {
    let state = state.ok_or_else(|| ApiError::unexpected("application state missing"))?;
    let store = state.registry.store().clone();
    let row = web::block(move || {
        let mut conn = store.conn()?;
        find(&mut conn)
    })
    .await
    .map_err(ApiError::unexpected)?
    .map_err(ApiError::unexpected)?;
    // A party removed by a party statement is no longer anyone to the registry.
    row.filter(|row| row.removed_idx.is_none())
        .map(|row| lading_registry::parties::party_from_row(&row).map_err(ApiError::unexpected))
        .transpose()
}
