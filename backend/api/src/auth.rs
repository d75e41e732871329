//! Party authentication.
//!
//! - Reads: `Authorization: Bearer <token>`. The registry stores only the SHA-256 of each
//!   party's token. Signed submissions need no token — the signature is the authority — but
//!   every read of a document does.
//! - Replication: mutual TLS. The TLS layer has already checked that the client certificate
//!   chains to the consortium's CA; [`Replica`] reads the party it names and requires that
//!   party to be registered.

use std::future::Future;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpRequest};
use lading_domain::party::Party;
use lading_domain::Digest;

use crate::problem::ApiError;
use crate::AppState;

/// The party making the request.
#[derive(Debug, Clone)]
pub struct Caller(pub Party);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let token = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            // The scheme is case-insensitive (RFC 7235 §2.1).
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_owned());
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let token = token
                .filter(|t| !t.is_empty())
                .ok_or(ApiError::Unauthenticated)?;
            let hash = Digest::of(token.as_bytes());
            let party = registered_party(state, move |conn| {
                lading_store::parties::party_by_token(conn, &hash.0)
            })
            .await?
            .ok_or(ApiError::Unauthenticated)?;
            Ok(Caller(party))
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
