//! The API's one error type, answered as RFC 7807 problem+json.
//!
//! Rules for the whole HTTP face:
//! - every refusal carries a stable `code` naming the rule that was broken; `type` is
//!   `urn:lading:problem:<code>`, so clients can match either;
//! - a field error names the field with a JSON Pointer in `pointer`;
//! - unexpected failures are logged with their cause and answered as a bare 500/503, never
//!   with internal details;
//! - "not found" and "not yours" are the same answer (404), so nothing leaks about documents a
//!   party may not see.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use lading_registry::Refusal;
use serde::Serialize;

use crate::codes::Code;

/// The media type of every error answer.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 7807 problem document.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
}

/// Everything a handler can answer instead of success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    #[error("missing or unknown bearer token")]
    Unauthenticated,
    /// A known bearer credential that may not be used (expired, revoked).
    #[error("{detail}")]
    BadCredential { code: &'static str, detail: String },
    /// Over a rate limit (`registry.rate_limit_*`): retry after so many seconds.
    #[error("too many requests from this {whom}: retry after {retry_after} s")]
    RateLimited {
        whom: &'static str,
        retry_after: u64,
    },
    #[error("this resource needs a client certificate from the consortium's CA (mutual TLS)")]
    ClientCertificateRequired,
    #[error("{detail}")]
    Forbidden { code: &'static str, detail: String },
    #[error("{what} not found")]
    NotFound { what: String },
    /// The request conflicts with the state of what it names.
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    #[error("this resource answers {allowed} only")]
    MethodNotAllowed { allowed: &'static str },
    #[error("expected Content-Type {expected}")]
    UnsupportedMediaType { expected: &'static str },
    #[error("the request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("not ready: {0}")]
    NotReady(String),
    /// What was asked for cannot be answered truthfully now, for the reason its code names.
    #[error("{detail}")]
    Unavailable { code: &'static str, detail: String },
    #[error("the request body did not arrive within {millis} ms")]
    BodyTimeout { millis: u64 },
    /// Refused for load, not for what was asked: the same request may succeed shortly.
    #[error("{detail}")]
    Busy { detail: String },
    /// An answer that would contradict the published OpenAPI document (only where answers
    /// are checked: `LADING_CONTRACT_CHECK=1`, as in the tests).
    #[error("{detail}")]
    ContractViolation { detail: String },
    /// Logged with its cause; the client sees only a 500.
    #[error("internal error")]
    Unexpected(String),
}

impl ApiError {
    /// A failure the client can do nothing about. A database that cannot be reached or has no
    /// primary now (being failed over) is answered `503 not_ready` with `Retry-After`: the
    /// same request may succeed shortly. Anything else is a bare 500, its cause logged.
    pub fn unexpected(e: impl std::fmt::Display + 'static) -> Self {
        let any: &dyn std::any::Any = &e;
        if let Some(store) = any.downcast_ref::<lading_store::StoreError>() {
            if store.is_unavailable() {
                tracing::warn!(error = %store, "the database cannot answer now");
                return Self::NotReady("the database cannot answer now; retry shortly".into());
            }
        }
        Self::Unexpected(e.to_string())
    }

    pub fn problem(&self) -> Problem {
        let status = self.status_code();
        let (code, pointer) = match self {
            Self::Refused(r) => (r.code(), r.pointer().map(str::to_owned)),
            Self::BadRequest { code, .. } => (*code, None),
            Self::Unauthenticated => ("unauthenticated", None),
            Self::BadCredential { code, .. } => (*code, None),
            Self::RateLimited { .. } => ("rate_limited", None),
            Self::ClientCertificateRequired => ("client_certificate_required", None),
            Self::Forbidden { code, .. } => (*code, None),
            Self::NotFound { .. } => ("not_found", None),
            Self::Conflict { code, .. } => (*code, None),
            Self::MethodNotAllowed { .. } => ("method_not_allowed", None),
            Self::UnsupportedMediaType { .. } => ("unsupported_media_type", None),
            Self::TooLarge { .. } => ("body_too_large", None),
            Self::NotReady(_) => ("not_ready", None),
            Self::Unavailable { code, .. } => (*code, None),
            Self::BodyTimeout { .. } => ("body_timeout", None),
            Self::Busy { .. } => ("server_busy", None),
            Self::ContractViolation { .. } => ("contract_violation", None),
            Self::Unexpected(_) => ("internal_error", None),
        };
        let detail = match self {
            Self::Unexpected(_) => {
                "the registry hit an unexpected error; it has been logged".into()
            }
            other => other.to_string(),
        };
        Problem {
            type_uri: format!("urn:lading:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            code: code.to_owned(),
            pointer,
        }
    }
}

/// The HTTP status of a refusal: its code's, from the one table of codes ([`Code`]).
pub fn refusal_status(refusal: &Refusal) -> StatusCode {
    status_of(refusal.code(), StatusCode::UNPROCESSABLE_ENTITY)
}

/// The status of `code` in the table of codes; `otherwise` for a code missing from it (a test
/// keeps every code the server can answer in the table).
fn status_of(code: &str, otherwise: StatusCode) -> StatusCode {
    Code::parse(code)
        .and_then(|c| StatusCode::from_u16(c.status()).ok())
        .unwrap_or(otherwise)
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Refused(r) => refusal_status(r),
            Self::BadRequest { code, .. } => status_of(code, StatusCode::BAD_REQUEST),
            Self::Unauthenticated | Self::ClientCertificateRequired => StatusCode::UNAUTHORIZED,
            Self::BadCredential { code, .. } => status_of(code, StatusCode::UNAUTHORIZED),
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Forbidden { code, .. } => status_of(code, StatusCode::FORBIDDEN),
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Conflict { code, .. } => status_of(code, StatusCode::CONFLICT),
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotReady(_) | Self::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unavailable { code, .. } => status_of(code, StatusCode::SERVICE_UNAVAILABLE),
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::Unexpected(_) | Self::ContractViolation { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Unexpected(cause) => tracing::error!(%cause, "request failed"),
            // Its cause was logged where it arose (Refusal::unavailable, the lease).
            Self::Refused(r @ Refusal::Unavailable { .. }) => {
                tracing::debug!(refusal = %r, "submission not sequenced")
            }
            _ => {}
        }
        let problem = self.problem();
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
        if matches!(self, Self::Unauthenticated) {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        if matches!(self, Self::BadCredential { .. }) {
            // RFC 6750 §3.1: a credential that is expired or revoked is an invalid_token.
            response.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            ));
        }
        if let Self::RateLimited { retry_after, .. } = self {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(*retry_after)));
        }
        // Refused for now, not for what was asked: say when to ask again.
        if matches!(
            self,
            Self::Busy { .. }
                | Self::NotReady(_)
                | Self::Refused(Refusal::Busy { .. } | Refusal::Unavailable { .. })
        ) {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
        if matches!(self, Self::Unavailable { code, .. } if *code == "too_many_exports") {
            response.insert_header((
                header::RETRY_AFTER,
                HeaderValue::from(crate::routes::exports::EXPORT_RETRY_AFTER_SECONDS),
            ));
        }
        if let Self::MethodNotAllowed { allowed } = self {
            response.insert_header((header::ALLOW, HeaderValue::from_static(allowed)));
        }
        response.json(problem)
    }
}

/// A document reference taken from a URL path: refused with its own code when it is not one
/// (it can name no document, so this tells nobody anything about the ledger).
pub fn document_reference(raw: &str) -> Result<lading_domain::DocumentReference, ApiError> {
    raw.parse()
        .map_err(|e: lading_domain::IdError| ApiError::BadRequest {
            code: e.code(),
            detail: e.to_string(),
        })
}
