//! Rate limits on the registry's `/v1` routes, per bearer credential and per client address
//! (`registry.rate_limit_*`): over either, `429 rate_limited` with `Retry-After`.
//!
//! A request with a client certificate from the consortium's CA is never limited: that is
//! the consortium's own traffic (replicas replicating, nodes forwarding what their parties
//! submitted, the registry's reconciliations), which a limit meant for API clients must not
//! slow down or break.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use lading_domain::Digest;

use crate::auth::PeerCertificate;
use crate::credentials::BucketKey;
use crate::problem::ApiError;
use crate::AppState;

/// The middleware: takes one request from the address's bucket, then from the credential's.
pub async fn limit(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.conn_data::<PeerCertificate>().is_none() {
        if let Some(state) = req.app_data::<web::Data<AppState>>() {
            let now = Instant::now();
            let credentials = &state.credentials;
            if let Some(ip) = req.peer_addr().map(|a| a.ip()) {
                credentials
                    .take(BucketKey::Address(ip), now)
                    .map_err(|wait| refused("address", wait))?;
            }
            if let Some(secret) = crate::auth::bearer_secret(req.request()) {
                let digest = Digest::of(secret.as_bytes());
                let mut key = [0u8; 16];
                key.copy_from_slice(&digest.0[..16]);
                credentials
                    .take(BucketKey::Credential(key), now)
                    .map_err(|wait| refused("credential", wait))?;
            }
        }
    }
    next.call(req).await
}

/// The refusal: wait at least a second, rounded up.
fn refused(whom: &'static str, wait: std::time::Duration) -> ApiError {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::RateLimited {
        whom,
        retry_after: seconds.max(1),
    }
}
