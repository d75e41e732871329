//! Sessions and what a request needs to reach a page.
//!
//! The browser holds the session token in the cookie [`SESSION_COOKIE`] (`__Host-` prefixed:
//! Secure, Path=/, no Domain; HttpOnly; SameSite=Strict). The database holds its SHA-256
//! only. A session ends after [`crate::PortalSettings::session_idle`] without a request, at
//! [`crate::PortalSettings::session_max`] after sign-in whatever happens, when its user is
//! disabled or changes password, and at logout.
//!
//! Handlers say what they need in their arguments, and the extractors refuse the rest before
//! the handler runs:
//! - [`SignedIn`]: a live session (else the sign-in page, then back);
//! - [`Allowed<P>`]: a live session whose role has permission `P` (else a 403 page) — e.g.
//!   `Allowed<need::ManageUsers>`;
//! - [`CsrfForm<T>`]: a POSTed form carrying the session's CSRF token in its `csrf` field
//!   (else a 403 page, and the handler never runs). Every POST handler of a signed-in user
//!   takes one.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{web, FromRequest, HttpRequest};
use chrono::Utc;
use lading_store::portal;

use crate::auth::{self, Permission, Role};
use crate::error::PortalError;
use crate::site::Site;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "__Host-lading_session";

/// How often a session's `last_seen` is written at most (its idle time is measured to this).
const TOUCH_EVERY: chrono::Duration = chrono::Duration::seconds(30);

/// A signed-in user of the node's party, as a request carries it.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user_id: i64,
    pub username: String,
    pub party: String,
    pub role: Role,
    /// The CSRF token every form of this session must carry.
    pub csrf: String,
    token_hash: [u8; 32],
}

impl SignedIn {
    /// The SHA-256 of the session's token (what logout deletes).
    pub fn token_hash(&self) -> &[u8; 32] {
        &self.token_hash
    }

    /// Refuses unless the user's role has `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), PortalError> {
        if self.role.may(permission) {
            Ok(())
        } else {
            Err(PortalError::Forbidden {
                role: self.role,
                needed: permission,
            })
        }
    }
}

/// What a session token leads to.
enum Lookup {
    Live(SignedIn),
    /// It was a session once: idle or past its end (now deleted), or of a disabled user.
    Ended,
    Unknown,
}

/// Finds the live session of `token`, ending it when its time is up. Blocks.
fn lookup(site: &Site, token: &str) -> Result<Lookup, PortalError> {
    let Some(hash) = auth::token_hash(token) else {
        return Ok(Lookup::Unknown);
    };
    let mut conn = site.conn()?;
    let Some((session, user)) = portal::session(&mut conn, &hash)? else {
        return Ok(Lookup::Unknown);
    };
    let now = Utc::now();
    let idle =
        chrono::Duration::from_std(site.settings().session_idle).unwrap_or(chrono::Duration::MAX);
    let ended = now >= session.expires_at || now - session.last_seen >= idle || user.disabled;
    // A user is the site's party's: one made for another party (a database moved between
    // nodes) signs in nowhere.
    let foreign = user.party != site.party();
    let role = user.role.parse::<Role>();
    if ended || foreign || role.is_err() {
        portal::end_session(&mut conn, &hash)?;
        return Ok(Lookup::Ended);
    }
    if now - session.last_seen >= TOUCH_EVERY {
        portal::touch_session(&mut conn, &hash)?;
    }
    Ok(Lookup::Live(SignedIn {
        user_id: user.id,
        username: user.username,
        party: user.party,
        role: role.unwrap_or(Role::Viewer),
        csrf: auth::csrf_token(token),
        token_hash: hash,
    }))
}

pub(crate) fn portal_of(req: &HttpRequest) -> Result<crate::Portal, PortalError> {
    req.app_data::<web::Data<crate::Portal>>()
        .map(|p| p.get_ref().clone())
        .ok_or_else(|| PortalError::Internal("the portal is missing".into()))
}

/// The site a request signs in to: a node's portal or the registry's operator view.
pub(crate) fn site_of(req: &HttpRequest) -> Result<Site, PortalError> {
    req.app_data::<web::Data<Site>>()
        .map(|s| s.get_ref().clone())
        .ok_or_else(|| PortalError::Internal("the portal's site is missing".into()))
}

/// Where to come back to after signing in: this page for a GET, the dashboard otherwise (a
/// form is never sent again by itself).
fn come_back_to(req: &HttpRequest) -> String {
    if req.method() == actix_web::http::Method::GET {
        req.uri()
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned())
    } else {
        "/".to_owned()
    }
}

impl FromRequest for SignedIn {
    type Error = PortalError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PortalError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let site = site_of(req);
        let token = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned());
        let next = come_back_to(req);
        Box::pin(async move {
            let site = site?;
            let Some(token) = token else {
                return Err(PortalError::SignInRequired {
                    next,
                    expired: false,
                });
            };
            match web::block(move || lookup(&site, &token)).await?? {
                Lookup::Live(user) => Ok(user),
                Lookup::Ended => Err(PortalError::SignInRequired {
                    next,
                    expired: true,
                }),
                Lookup::Unknown => Err(PortalError::SignInRequired {
                    next,
                    expired: false,
                }),
            }
        })
    }
}

/// The permissions a handler can ask for with [`Allowed`].
pub mod need {
    use crate::auth::Permission;

    /// A permission, as a type.
    pub trait Need {
        const PERMISSION: Permission;
    }

    macro_rules! need {
        ($($name:ident),*) => {$(
            #[derive(Debug, Clone, Copy)]
            pub struct $name;
            impl Need for $name {
                const PERMISSION: Permission = Permission::$name;
            }
        )*};
    }

    need!(Read, Draft, Sign, ManageUsers);
}

/// A signed-in user whose role has permission `P`.
#[derive(Debug, Clone)]
pub struct Allowed<P: need::Need>(SignedIn, PhantomData<P>);

impl<P: need::Need> Allowed<P> {
    pub fn user(&self) -> &SignedIn {
        &self.0
    }

    pub fn into_user(self) -> SignedIn {
        self.0
    }
}

impl<P: need::Need + 'static> FromRequest for Allowed<P> {
    type Error = PortalError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PortalError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let signed_in = SignedIn::from_request(req, payload);
        Box::pin(async move {
            let user = signed_in.await?;
            user.require(P::PERMISSION)?;
            Ok(Allowed(user, PhantomData))
        })
    }
}

/// A form POSTed by a signed-in user, with the session's CSRF token in its `csrf` field.
#[derive(Debug)]
pub struct CsrfForm<T> {
    pub user: SignedIn,
    pub form: T,
}

/// Largest form body read.
const MAX_FORM: usize = 64 * 1024;

impl<T: serde::de::DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = PortalError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PortalError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let signed_in = SignedIn::from_request(req, payload);
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let user = signed_in.await?;
            let body = body
                .await
                .map_err(|_| PortalError::BadRequest("the form could not be read".into()))?;
            if body.len() > MAX_FORM {
                return Err(PortalError::BadRequest("the form is too large".into()));
            }
            let fields: Vec<(String, String)> =
                serde_urlencoded::from_bytes(&body).map_err(|_| PortalError::Csrf)?;
            let token = fields
                .iter()
                .find(|(name, _)| name == "csrf")
                .map(|(_, value)| value.as_str())
                .unwrap_or_default();
            if !auth::same_secret(token, &user.csrf) {
                tracing::warn!(user = %user.username, "refused a form without this session's CSRF token");
                return Err(PortalError::Csrf);
            }
            let form = serde_urlencoded::from_bytes(&body)
                .map_err(|e| PortalError::BadRequest(format!("the form is not valid: {e}")))?;
            Ok(CsrfForm { user, form })
        })
    }
}

/// The session cookie for `token` (or, with `None`, one that deletes it).
pub fn session_cookie(token: Option<&str>) -> Cookie<'static> {
    let mut cookie = Cookie::build(SESSION_COOKIE, token.unwrap_or_default().to_owned())
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Strict)
        .finish();
    if token.is_none() {
        cookie.make_removal();
    }
    cookie
}
