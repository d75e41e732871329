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

/// How long a client may take to send a request's whole body, unless the server says
/// otherwise ([`BodyTimeout`]).
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The body read deadline a server was started with (`server.body_timeout_ms`).
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub std::time::Duration);

/// Bodies past this size are large; only [`LARGE_BODIES`] of them are read at once.
const LARGE_BODY_BYTES: usize = 1 << 20;

/// How many large bodies may be read at once: a batch of 32 MiB is real memory, so a few
/// hundred slow clients announcing one each must not be able to hold that much.
const LARGE_BODIES: usize = 16;

static LARGE_BODY_PERMITS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(LARGE_BODIES);

/// Reads the whole body, refusing it as soon as it passes `limit` bytes or takes longer than
/// the server's [`BodyTimeout`] ([`BODY_TIMEOUT`] by default). Nothing is reserved from `Content-Length`, which only the client vouches
/// for: the buffer grows with what arrives. A body that grows past a megabyte needs one of a
/// few permits, or is refused as `server_busy` (503, `Retry-After`).
pub async fn read_limited(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, ApiError> {
    let deadline = req
        .app_data::<BodyTimeout>()
        .map_or(BODY_TIMEOUT, |timeout| timeout.0);
    tokio::time::timeout(deadline, read_body(payload, limit))
        .await
        .map_err(|_| ApiError::BodyTimeout {
            millis: u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
        })?
}

async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::BytesMut, ApiError> {
    let mut body = web::BytesMut::new();
    let mut permit = None;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest {
            code: "bad_body",
            detail: format!("cannot read the request body: {e}"),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::TooLarge { limit });
        }
        if permit.is_none() && body.len() + chunk.len() > LARGE_BODY_BYTES {
            permit = Some(
                LARGE_BODY_PERMITS
                    .try_acquire()
                    .map_err(|_| ApiError::Busy {
                        detail: "too many large request bodies are being received; retry shortly"
                            .into(),
                    })?,
            );
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
