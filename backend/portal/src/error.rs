//! What a page answers when it cannot show what was asked: always a whole HTML page that says
//! what happened in words, never a stack trace or an internal error's text (that is logged).
//!
//! A document that does not exist and a document the party is not entitled to are the same
//! 404 page: the node holds only what its party is entitled to, so there is nothing else to
//! tell them apart by, and the page must not either.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use askama::Template;

use crate::auth::{Permission, Role};
use crate::view::Layout;

/// Why a page is not shown.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    #[error("not found")]
    NotFound,
    /// No session, or one that ended: the sign-in page, then back to `next`.
    #[error("sign in required")]
    SignInRequired { next: String, expired: bool },
    #[error("the role {role} may not {}", needed.as_str())]
    Forbidden { role: Role, needed: Permission },
    /// A form without the session's CSRF token, or with another one.
    #[error("the form's CSRF token is missing or wrong")]
    Csrf,
    /// A POST whose Origin (or Referer) is another site.
    #[error("cross-origin request")]
    CrossOrigin,
    #[error("the chain of {reference} held here is damaged: {detail}")]
    ChainDamaged { reference: String, detail: String },
    #[error("the chain of {reference} is not verified")]
    ChainUnverified { reference: String, given_up: bool },
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The node has no signing key (`[portal] signing_key`): nothing can be signed here.
    #[error("no signing key")]
    NoSigningKey,
    /// The state machine, the node or the domain refused what was asked, in words.
    #[error("refused: {0}")]
    Refused(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<lading_store::StoreError> for PortalError {
    fn from(e: lading_store::StoreError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<lading_replica::node::NodeError> for PortalError {
    fn from(e: lading_replica::node::NodeError) -> Self {
        use lading_replica::node::NodeError;
        match e {
            NodeError::ChainDamaged { reference, detail } => Self::ChainDamaged {
                reference: reference.to_string(),
                detail,
            },
            NodeError::ChainUnverified {
                reference,
                given_up,
            } => Self::ChainUnverified {
                reference: reference.to_string(),
                given_up,
            },
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<actix_web::error::BlockingError> for PortalError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<askama::Error> for PortalError {
    fn from(e: askama::Error) -> Self {
        Self::Internal(format!("rendering a page: {e}"))
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    status: u16,
    heading: &'a str,
    message: String,
    detail: Option<String>,
}

impl PortalError {
    fn page(&self) -> (&'static str, String, Option<String>) {
        match self {
            Self::NotFound => (
                "Not found",
                "There is no such page or bill of lading on this node.".into(),
                None,
            ),
            Self::SignInRequired { .. } => ("Sign in", "Please sign in.".into(), None),
            Self::Forbidden { role, needed } => (
                "Not allowed",
                format!(
                    "Your role ({role}) does not allow this: it needs the permission to {}. Ask an administrator of this node.",
                    needed.as_str()
                ),
                None,
            ),
            Self::Csrf => (
                "Form refused",
                "This form could not be accepted: it did not come from this portal's own page, or the page was from an earlier session. Nothing was changed. Go back, reload the page and try again.".into(),
                None,
            ),
            Self::CrossOrigin => (
                "Request refused",
                "This request came from another site. Nothing was changed.".into(),
                None,
            ),
            Self::ChainDamaged { reference, detail } => (
                "Chain damaged",
                format!(
                    "The records this node holds of {reference} are not the chain it verified, so it is not shown. An incident is open; reconciliation with the registry repairs lost or altered records."
                ),
                Some(detail.clone()),
            ),
            Self::ChainUnverified {
                reference,
                given_up,
            } => (
                "Not verified yet",
                if *given_up {
                    format!("The earlier records of {reference} did not come in full from the registry, so this node cannot vouch for it. An incident is open.")
                } else {
                    format!("The earlier records of {reference} are being fetched from the registry; it is shown once its chain is verified.")
                },
                None,
            ),
            Self::BadRequest(what) => ("Bad request", what.clone(), None),
            Self::NoSigningKey => (
                "No signing key",
                "This node holds no signing key of its party ([portal] signing_key), so nothing can be signed here. Nothing was changed.".into(),
                None,
            ),
            Self::Refused(why) => (
                "Not accepted",
                "This is not allowed now (the reason is below). Nothing was signed and nothing was changed.".into(),
                Some(why.clone()),
            ),
            Self::Internal(_) => (
                "Something went wrong",
                "The node could not answer this page. The problem was logged; try again in a moment.".into(),
                None,
            ),
        }
    }
}

impl ResponseError for PortalError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::SignInRequired { .. } => StatusCode::SEE_OTHER,
            Self::Forbidden { .. } | Self::Csrf | Self::CrossOrigin => StatusCode::FORBIDDEN,
            Self::ChainDamaged { .. } | Self::ChainUnverified { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NoSigningKey => StatusCode::CONFLICT,
            Self::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::SignInRequired { next, expired } = self {
            let mut location = format!("/login?next={}", crate::view::url_encode(next));
            if *expired {
                location.push_str("&expired=1");
            }
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, location))
                .finish();
        }
        if let Self::Internal(detail) = self {
            tracing::error!(%detail, "a portal page failed");
        }
        let (heading, message, detail) = self.page();
        let status = self.status_code();
        let page = ErrorPage {
            layout: Layout::bare(heading),
            status: status.as_u16(),
            heading,
            message,
            detail,
        };
        let body = page.render().unwrap_or_else(|_| heading.to_owned());
        HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body)
    }
}

/// The 404 page of every path the portal does not serve.
pub async fn not_found(_: HttpRequest) -> Result<HttpResponse, PortalError> {
    Err(PortalError::NotFound)
}
