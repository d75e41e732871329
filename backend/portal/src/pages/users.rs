//! `GET /users`: the node's portal users, for its administrators (managed with
//! `lading user`; changing them from the portal comes with the write side).

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::error::PortalError;
use crate::session::{need, portal_of, Allowed};
use crate::view::{self, Layout, Names};

struct UserLine {
    username: String,
    role: String,
    disabled: bool,
    created: String,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    layout: Layout,
    users: Vec<UserLine>,
}

pub async fn list(
    req: HttpRequest,
    allowed: Allowed<need::ManageUsers>,
) -> Result<HttpResponse, PortalError> {
    let user = allowed.into_user();
    let portal = portal_of(&req)?;
    let (rows, names) = web::block(move || -> Result<_, PortalError> {
        let mut conn = portal.conn()?;
        let rows = lading_store::portal::users(&mut conn)?;
        Ok((rows, Names::of(portal.node())))
    })
    .await??;
    let page = UsersPage {
        layout: Layout::signed_in("Users", "users", &user, &names),
        users: rows
            .into_iter()
            .map(|u| UserLine {
                username: u.username,
                role: u.role,
                disabled: u.disabled,
                created: view::time(&u.created_at),
            })
            .collect(),
    };
    super::html(&page)
}
