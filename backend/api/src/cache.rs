//! What caches may do with an answer.
//!
//! An entitled read (a document, its chain or events, a search) is for the caller alone: it is
//! answered `Cache-Control: private, no-store`, so no shared cache (a proxy, a CDN) keeps it
//! and serves it to someone else. A document's read carries an `ETag` (its head checksum: the
//! answer changes exactly when the chain does), so a client can ask again with
//! `If-None-Match` and get `304 Not Modified` — after the entitlement check, never before it.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};

/// The `Cache-Control` of every entitled read.
pub const PRIVATE_NO_STORE: &str = "private, no-store";

/// A 200 builder for an entitled read.
pub fn entitled_ok() -> HttpResponseBuilder {
    let mut builder = HttpResponse::Ok();
    builder.insert_header((
        header::CACHE_CONTROL,
        HeaderValue::from_static(PRIVATE_NO_STORE),
    ));
    builder
}

/// The quoted strong entity tag `"<tag>"`.
pub fn etag(tag: &str) -> String {
    format!("\"{tag}\"")
}

/// Whether `If-None-Match` of `req` names `etag` (or is `*`): weak comparison, as RFC 9110
/// §13.1.2 asks for this header.
pub fn not_modified(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// The answer of an entitled read with entity tag `etag`: 304 when the client holds it
/// already, otherwise `body` as JSON.
pub fn entitled_json<T: serde::Serialize>(
    req: &HttpRequest,
    etag: String,
    body: &T,
) -> HttpResponse {
    if not_modified(req, &etag) {
        let mut builder = HttpResponse::NotModified();
        builder.insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static(PRIVATE_NO_STORE),
        ));
        builder.insert_header((header::ETAG, etag));
        return builder.finish();
    }
    entitled_ok().insert_header((header::ETAG, etag)).json(body)
}
