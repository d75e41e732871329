//! Request bodies read with a hard size limit and a required media type.

use actix_web::{web, HttpRequest};
use futures::StreamExt;

use crate::problem::ApiError;

/// Largest single transition or event (an ISSUE carries the whole transport document).
pub const MAX_ITEM_BYTES: usize = lading_registry::MAX_ITEM_BYTES;
/// Largest batch request body.
pub const MAX_BATCH_BYTES: usize = 32 << 20;
/// Most items in one batch.
pub const MAX_BATCH_ITEMS: usize = 10_000;

/// Refuses the request unless its Content-Type's essence is `expected`.
pub fn require_media_type(req: &HttpRequest, expected: &'static str) -> Result<(), ApiError> {
    let given = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if given.as_deref() == Some(expected) {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType { expected })
    }
}

/// Most memory reserved up front from a request's `Content-Length`: enough for any batch of
/// ordinary transitions, without letting a client that only claims a large body reserve more.
const MAX_RESERVED_BYTES: usize = 4 << 20;

/// Reads the whole body, refusing it as soon as it passes `limit` bytes. The buffer is sized
/// from `Content-Length` (up to a bound) rather than grown: a batch is about a megabyte.
pub async fn read_limited(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, ApiError> {
    let announced = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = web::BytesMut::with_capacity(announced.min(limit).min(MAX_RESERVED_BYTES));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest {
            code: "bad_body",
            detail: format!("cannot read the request body: {e}"),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A compact JWS body: ASCII, surrounding whitespace ignored.
pub fn jws_text(body: &[u8]) -> Result<String, ApiError> {
    let text = std::str::from_utf8(body).map_err(|_| ApiError::BadRequest {
        code: "malformed_jws",
        detail: "the body is not a compact JWS (not UTF-8)".into(),
    })?;
    Ok(text.trim().to_owned())
}
