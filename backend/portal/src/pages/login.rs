//! Signing in and out.
//!
//! The sign-in form carries a token that must equal the one in its own short-lived cookie
//! (`__Host-lading_login`): a form posted from another site cannot know it. Every attempt is
//! counted against the account and the client's address ([`crate::limiter`]); past a limit
//! the answer is `429` whatever the password. A wrong password, an unknown user and a disabled
//! one get the same words, and cost the same time (an unknown name is checked against a decoy
//! hash). A successful sign-in opens a new session (a session token is never reused).

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::Utc;
use lading_store::portal;
use serde::Deserialize;

use crate::auth;
use crate::error::PortalError;
use crate::session::{self, site_of, CsrfForm, SESSION_COOKIE};
use crate::site::Site;
use crate::view::{self, Layout};

/// The cookie that carries the sign-in form's token.
pub const LOGIN_COOKIE: &str = "__Host-lading_login";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    next: String,
    csrf: String,
    username: String,
    /// Why the last attempt failed.
    error: Option<String>,
    /// Something to know before signing in (a session that ended).
    notice: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    expired: Option<String>,
}

/// The sign-in page, with a fresh form token in its cookie, at `status`.
fn login_page(
    status: StatusCode,
    next: String,
    username: String,
    error: Option<String>,
    notice: Option<String>,
) -> Result<HttpResponse, PortalError> {
    let token = auth::new_token();
    let page = LoginPage {
        layout: Layout::bare("Sign in"),
        next,
        csrf: token.clone(),
        username,
        error,
        notice,
    };
    let cookie = Cookie::build(LOGIN_COOKIE, token)
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::hours(1))
        .finish();
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .cookie(cookie)
        .body(page.render()?))
}

/// `GET /login`.
pub async fn form(query: web::Query<LoginQuery>) -> Result<HttpResponse, PortalError> {
    let notice = query
        .expired
        .is_some()
        .then(|| "Your session has ended. Please sign in again.".to_owned());
    login_page(
        StatusCode::OK,
        view::local_path(query.next.as_deref()),
        String::new(),
        None,
        notice,
    )
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

/// What a sign-in attempt came to.
enum Attempt {
    /// The new session's token.
    SignedIn(String),
    Refused,
}

/// Checks the password and opens a session. Blocks (argon2id, the database).
fn attempt(
    site: &Site,
    username: &str,
    password: &str,
    old_token: Option<String>,
) -> Result<Attempt, PortalError> {
    let mut conn = site.conn()?;
    let user = portal::user_by_name(&mut conn, username)?;
    let hash = user.as_ref().map_or_else(
        || auth::decoy_hash().to_owned(),
        |u| u.password_hash.clone(),
    );
    let matches = auth::verify_password(password, &hash);
    let Some(user) = user.filter(|u| matches && !u.disabled && u.party == site.party()) else {
        return Ok(Attempt::Refused);
    };
    // A session the browser still held ends here: a sign-in always opens a new one.
    if let Some(old) = old_token.as_deref().and_then(auth::token_hash) {
        portal::end_session(&mut conn, &old)?;
    }
    let token = auth::new_token();
    let hash = auth::token_hash(&token)
        .ok_or_else(|| PortalError::Internal("a new token does not decode".into()))?;
    let max = chrono::Duration::from_std(site.settings().session_max)
        .unwrap_or(chrono::Duration::days(1));
    let now = Utc::now();
    // Sessions that ended without a sign-out go when someone signs in: the table holds the
    // live ones and those ended since the last sign-in, however long the node runs.
    let idle = chrono::Duration::from_std(site.settings().session_idle)
        .unwrap_or(chrono::Duration::hours(8));
    portal::purge_sessions(&mut conn, now, idle)?;
    portal::open_session(&mut conn, &hash, user.id, now + max)?;
    portal::audit(
        &mut conn,
        Some(user.id),
        &user.username,
        "signed_in",
        None,
        &serde_json::json!({}),
    )?;
    Ok(Attempt::SignedIn(token))
}

/// `POST /login`.
pub async fn submit(
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, PortalError> {
    let site = site_of(&req)?;
    let form = form.into_inner();
    let cookie_token = req.cookie(LOGIN_COOKIE).map(|c| c.value().to_owned());
    if !cookie_token.is_some_and(|t| !t.is_empty() && auth::same_secret(&t, &form.csrf)) {
        return Err(PortalError::Csrf);
    }
    let next = view::local_path(Some(&form.next));
    let username = form.username.trim().to_owned();
    let address = req.peer_addr().map(|a| a.ip());
    if let Err(wait) = site.limiter().check(&username, address) {
        tracing::warn!(%username, ?address, "sign-in refused: too many failures");
        let minutes = wait.as_secs().div_ceil(60).max(1);
        return login_page(
            StatusCode::TOO_MANY_REQUESTS,
            next,
            username,
            Some(format!(
                "Too many failed sign-ins. Sign-in is paused for this account or this computer; try again in {minutes} minute{}.",
                if minutes == 1 { "" } else { "s" }
            )),
            None,
        )
        .map(|mut r| {
            if let Ok(value) = header::HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, value);
            }
            r
        });
    }
    let old = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned());
    let (s, u, password) = (site.clone(), username.clone(), form.password);
    match web::block(move || attempt(&s, &u, &password, old)).await?? {
        Attempt::SignedIn(token) => {
            site.limiter().succeeded(&username);
            let mut gone = Cookie::build(LOGIN_COOKIE, "")
                .path("/")
                .secure(true)
                .finish();
            gone.make_removal();
            Ok(HttpResponse::SeeOther()
                .insert_header((header::LOCATION, next))
                .cookie(session::session_cookie(Some(&token)))
                .cookie(gone)
                .finish())
        }
        Attempt::Refused => {
            site.limiter().failed(&username, address);
            // Under the client-error limit: anyone can fail to sign in as often as they like.
            if let Some(suppressed) = lading_weblog::client_error_admitted() {
                tracing::info!(%username, suppressed, "sign-in failed");
            }
            login_page(
                StatusCode::UNAUTHORIZED,
                next,
                username,
                Some("The username or password is not right.".to_owned()),
                None,
            )
        }
    }
}

/// A form with no fields but its CSRF token.
#[derive(Debug, Deserialize)]
pub struct NoFields {}

/// `POST /logout`: ends the session (deleted from the database) and clears the cookie.
pub async fn logout(
    req: HttpRequest,
    form: CsrfForm<NoFields>,
) -> Result<HttpResponse, PortalError> {
    let site = site_of(&req)?;
    let user = form.user;
    web::block(move || -> Result<(), PortalError> {
        let mut conn = site.conn()?;
        portal::end_session(&mut conn, user.token_hash())?;
        portal::audit(
            &mut conn,
            Some(user.user_id),
            &user.username,
            "signed_out",
            None,
            &serde_json::json!({}),
        )?;
        Ok(())
    })
    .await??;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/login"))
        .cookie(session::session_cookie(None))
        .finish())
}
