//! What protects every page whatever its handler does: the headers on every answer, and the
//! refusal of any POST (or other unsafe method) that another site's page sent.
//!
//! The Content-Security-Policy allows scripts, styles, fonts and images from the portal itself
//! only — no inline script or style anywhere, no `eval` — forms that post back to it only, and
//! no framing. Pages are never cached (`no-store`), except the assets, which carry their own
//! long-lived caching with a content hash in their URL.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::{HttpRequest, ResponseError};

use crate::error::PortalError;

/// The Content-Security-Policy of every answer.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The headers every answer carries (a handler's own value of one wins: the assets' caching).
pub fn headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "same-origin"))
        .add((header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
        .add((header::CACHE_CONTROL, "no-store"))
}

/// Whether `req` comes from this portal's own pages, as far as the browser says: its `Origin`
/// (or, without one, its `Referer`) must be this portal's `https://` origin. A request that
/// names neither (an older browser, a script) is judged by its CSRF token alone.
pub fn same_origin(req: &HttpRequest) -> bool {
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        });
    let Some(host) = host else {
        return false;
    };
    let own = format!("https://{}", host.to_ascii_lowercase());
    let header_text = |name| {
        req.headers()
            .get(name)
            .and_then(|v: &header::HeaderValue| v.to_str().ok())
            .map(str::to_ascii_lowercase)
    };
    if let Some(origin) = header_text(header::ORIGIN) {
        return origin == own;
    }
    if let Some(referer) = header_text(header::REFERER) {
        return referer == own || referer.starts_with(&format!("{own}/"));
    }
    true
}

/// Refuses, before any handler, a request with an unsafe method from another origin.
pub async fn same_origin_posts(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && !same_origin(req.request()) {
        tracing::warn!(path = req.path(), "refused a cross-origin request");
        let answer = PortalError::CrossOrigin.error_response();
        return Ok(req.into_response(answer).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}
