//! One module per page. Each handler names what it needs in its arguments (see
//! [`crate::session`]), reads what it shows off the async workers (`web::block`) from the
//! node's verified data, and renders one askama template.

pub mod act;
pub mod bill;
pub mod bills;
pub mod dashboard;
pub mod issue;
pub mod login;
pub mod submissions;
pub mod users;

use actix_web::HttpResponse;
use askama::Template;

use crate::error::PortalError;

/// A page as a `200` HTML answer.
pub(crate) fn html(page: &impl Template) -> Result<HttpResponse, PortalError> {
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page.render()?))
}
