//! The portal's sign-in, sessions and page security, end to end: a registry and a party's
//! node with its portal (real processes, PostgreSQL, TLS from a consortium CA), users made
//! with `lading user`, an HTTPS client that keeps cookies as a browser does.
//!
//! What must hold:
//! - a wrong password and an unknown user get the same `401` page; a right one opens a
//!   session whose cookie is `__Host-`, Secure, HttpOnly, SameSite=Strict, Path=/;
//! - every answer carries the security headers (the CSP with no inline script or style,
//!   nosniff, same-origin referrers, HSTS) and pages are `no-store`; the assets are cached for long,
//!   by content hash and ETag;
//! - a POST without the session's CSRF token, with another one, or from another origin is a
//!   `403` page and changes nothing; logout ends the session in the database;
//! - a session idle too long, or past its absolute end, leads back to sign-in ("ended"), and
//!   so does a user disabled or given a new password;
//! - a viewer cannot reach an administrator's page; an administrator can;
//! - sign-in is refused after 5 failures of one account (even with the right password) and
//!   after 20 from one address.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use anyhow::Result;
use lading_e2e::harness::sql_number;
use lading_e2e::portal::{Pki, PortalNode};
use reqwest::StatusCode;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A registry and shipper-acme's node with its portal.
fn node() -> Result<(
    Pki,
    lading_e2e::harness::TestDb,
    lading_e2e::harness::Server,
    PortalNode,
)> {
    tokio::task::block_in_place(|| {
        let pki = Pki::new(&["shipper-acme"])?;
        let (registry_db, registry) = pki.plain_registry()?;
        let node = PortalNode::start(&pki, "shipper-acme", &registry, &[])?;
        Ok((pki, registry_db, registry, node))
    })
}

fn sessions(node: &PortalNode) -> Result<u64> {
    sql_number(&node.db, "SELECT count(*) FROM portal_sessions")
}

fn assert_security_headers(page: &lading_e2e::portal::Page, what: &str) {
    assert_eq!(page.header("content-security-policy"), Some(CSP), "{what}");
    assert_eq!(
        page.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        page.header("referrer-policy"),
        Some("same-origin"),
        "{what}"
    );
    assert!(
        page.header("strict-transport-security")
            .is_some_and(|v| v.starts_with("max-age=")),
        "{what}"
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_sessions_csrf_and_roles() -> Result<()> {
    let (_pki, _registry_db, _registry, node) = node()?;
    tokio::task::block_in_place(|| -> Result<()> {
        node.add_user("vera", "viewer", "vera-password-1")?;
        node.add_user("ada", "admin", "ada-password-12")?;
        Ok(())
    })?;
    let listed = tokio::task::block_in_place(|| node.lading_user(&["list"]))?;
    assert!(
        listed.contains("vera\tviewer\tshipper-acme\tactive"),
        "{listed}"
    );
    assert!(
        listed.contains("ada\tadmin\tshipper-acme\tactive"),
        "{listed}"
    );
    let hashes = node.db.psql("SELECT password_hash FROM portal_users")?;
    assert!(
        hashes.lines().all(|h| h.starts_with("$argon2id$")),
        "{hashes}"
    );
    assert!(!hashes.contains("vera-password-1"));

    // Not signed in: every page leads to sign-in, and back.
    let mut browser = node.browser()?;
    let page = browser.get("/bills?q=x").await?;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.header("location"),
        Some("/login?next=%2Fbills%3Fq%3Dx")
    );
    assert_security_headers(&page, "a redirect");

    // The sign-in page: headers, and its form token in a __Host- cookie.
    let login = browser.get("/login").await?;
    assert_eq!(login.status, StatusCode::OK);
    assert_security_headers(&login, "the sign-in page");
    assert_eq!(login.header("cache-control"), Some("no-store"));
    assert!(!login.body.contains("<script>") && !login.body.contains("style="));
    assert!(browser.cookies.contains_key("__Host-lading_login"));

    // A wrong password and an unknown user: the same page, nothing said about which.
    let wrong = browser.sign_in("vera", "not-her-password").await?;
    let unknown = browser.sign_in("nobody", "not-her-password").await?;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(wrong
        .body
        .contains("The username or password is not right."));
    let strip = |body: &str, user: &str| {
        let mut body = body.replace(user, "USER");
        // The form tokens differ each time.
        while let Some(at) = body.find("name=\"csrf\" value=\"") {
            let start = at + 19;
            let end = body[start..].find('"').unwrap() + start;
            body.replace_range(at..end, "");
        }
        body
    };
    assert_eq!(strip(&wrong.body, "vera"), strip(&unknown.body, "nobody"));
    assert!(!browser.cookies.contains_key("__Host-lading_session"));

    // The sign-in form without its token (or from another site) is refused.
    let refused = browser
        .post(
            "/login",
            &[
                ("username", "vera"),
                ("password", "vera-password-1"),
                ("csrf", "forged"),
            ],
        )
        .await?;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(!browser.cookies.contains_key("__Host-lading_session"));

    // Signed in: a session cookie with every attribute, and the dashboard.
    let signed_in = browser.sign_in("vera", "vera-password-1").await?;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    assert_eq!(signed_in.header("location"), Some("/"));
    let cookie = browser
        .set_cookies
        .iter()
        .find(|c| c.starts_with("__Host-lading_session="))
        .unwrap()
        .to_ascii_lowercase();
    for attribute in ["secure", "httponly", "samesite=strict", "path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("domain="), "{cookie}");
    assert_eq!(sessions(&node)?, 1);
    let token = browser.cookies["__Host-lading_session"].clone();
    let stored = node
        .db
        .psql("SELECT encode(token_sha256, 'hex') FROM portal_sessions")?;
    assert!(!stored.contains(&token), "only the token's hash is stored");
    let dashboard = browser.get("/").await?;
    assert_eq!(dashboard.status, StatusCode::OK);
    assert_security_headers(&dashboard, "the dashboard");
    assert_eq!(dashboard.header("cache-control"), Some("no-store"));
    assert!(dashboard.body.contains("vera"), "{}", dashboard.body);

    // Assets: long-lived, by content hash, revalidated with their ETag.
    let css = dashboard
        .body
        .split("href=\"")
        .find_map(|s| s.split('"').next().filter(|h| h.ends_with("/portal.css")))
        .unwrap()
        .to_owned();
    let asset = browser.get(&css).await?;
    assert_eq!(asset.status, StatusCode::OK);
    assert!(asset
        .header("content-type")
        .unwrap()
        .starts_with("text/css"));
    assert_eq!(
        asset.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_security_headers(&asset, "an asset");
    let etag = asset.header("etag").unwrap().to_owned();
    let again = browser
        .http_get_with(&css, &[("if-none-match", &etag)])
        .await?;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert_eq!(
        browser
            .get("/assets/0000000000000000/portal.css")
            .await?
            .status,
        StatusCode::NOT_FOUND
    );

    // A viewer may not manage users.
    let users = browser.get("/users").await?;
    assert_eq!(users.status, StatusCode::FORBIDDEN);
    assert!(
        users
            .body
            .contains("Your role (viewer) does not allow this"),
        "{}",
        users.body
    );

    // Logout without the CSRF token, with a forged one, or from another site: refused, and
    // the session lives on.
    let csrf = dashboard.csrf().unwrap();
    for (fields, origin) in [
        (vec![], Some(node.url(""))),
        (vec![("csrf", "forged-token")], Some(node.url(""))),
        (
            vec![("csrf", csrf.as_str())],
            Some("https://evil.example".to_owned()),
        ),
    ] {
        let answer = browser
            .post_from("/logout", &fields, origin.as_deref())
            .await?;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{fields:?} {origin:?}"
        );
        assert!(
            answer.body.contains("Nothing was changed"),
            "{}",
            answer.body
        );
        assert_security_headers(&answer, "a refusal");
        assert_eq!(sessions(&node)?, 1);
        assert_eq!(browser.get("/").await?.status, StatusCode::OK);
    }

    // Logout with it: the session is gone from the database, the cookie cleared.
    let out = browser.post("/logout", &[("csrf", &csrf)]).await?;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.header("location"), Some("/login"));
    assert_eq!(sessions(&node)?, 0);
    assert!(!browser.cookies.contains_key("__Host-lading_session"));
    // The old cookie, replayed, opens nothing.
    browser
        .cookies
        .insert("__Host-lading_session".into(), token);
    assert_eq!(browser.get("/").await?.status, StatusCode::SEE_OTHER);

    // An administrator reaches the users page.
    let mut admin = node.browser()?;
    assert_eq!(
        admin.sign_in("ada", "ada-password-12").await?.status,
        StatusCode::SEE_OTHER
    );
    let users = admin.get("/users").await?;
    assert_eq!(users.status, StatusCode::OK);
    assert!(users.body.contains("vera") && users.body.contains("viewer"));

    // Idle too long: the next request leads to sign-in, saying the session ended.
    let mut idle = node.browser()?;
    idle.sign_in("vera", "vera-password-1").await?;
    assert_eq!(idle.get("/").await?.status, StatusCode::OK);
    node.db
        .psql("UPDATE portal_sessions SET last_seen = now() - interval '9 hours' WHERE user_id = (SELECT id FROM portal_users WHERE username = 'vera')")?;
    let ended = idle.get("/bills").await?;
    assert_eq!(ended.status, StatusCode::SEE_OTHER);
    assert_eq!(
        ended.header("location"),
        Some("/login?next=%2Fbills&expired=1")
    );
    assert!(idle
        .get("/login?expired=1")
        .await?
        .body
        .contains("Your session has ended"));
    // The admin's session was not idle.
    assert_eq!(admin.get("/users").await?.status, StatusCode::OK);

    // Past its absolute end, however fresh.
    node.db
        .psql("UPDATE portal_sessions SET expires_at = now() - interval '1 second'")?;
    assert_eq!(admin.get("/").await?.status, StatusCode::SEE_OTHER);
    assert_eq!(sessions(&node)?, 0);

    // Sessions that end and are never used again are not kept: the next sign-in clears them.
    let mut left = node.browser()?;
    left.sign_in("vera", "vera-password-1").await?;
    let mut forgotten = node.browser()?;
    forgotten.sign_in("vera", "vera-password-1").await?;
    assert_eq!(sessions(&node)?, 2);
    node.db
        .psql("UPDATE portal_sessions SET last_seen = now() - interval '9 hours'")?;
    let mut fresh = node.browser()?;
    fresh.sign_in("vera", "vera-password-1").await?;
    assert_eq!(sessions(&node)?, 1, "the two idle sessions are gone");
    assert_eq!(fresh.get("/").await?.status, StatusCode::OK);
    assert_eq!(left.get("/").await?.status, StatusCode::SEE_OTHER);

    // A user disabled, or given a new password, is signed out at once.
    let mut vera = node.browser()?;
    vera.sign_in("vera", "vera-password-1").await?;
    assert_eq!(vera.get("/").await?.status, StatusCode::OK);
    tokio::task::block_in_place(|| node.lading_user(&["disable", "vera"]))?;
    assert_eq!(vera.get("/").await?.status, StatusCode::SEE_OTHER);
    assert_eq!(
        vera.sign_in("vera", "vera-password-1").await?.status,
        StatusCode::UNAUTHORIZED
    );
    admin.sign_in("ada", "ada-password-12").await?;
    assert_eq!(admin.get("/").await?.status, StatusCode::OK);
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("pw");
    std::fs::write(&file, "ada-password-34\n")?;
    tokio::task::block_in_place(|| {
        node.lading_user(&["passwd", "ada", "--password-file", file.to_str().unwrap()])
    })?;
    assert_eq!(admin.get("/").await?.status, StatusCode::SEE_OTHER);
    assert_eq!(
        admin.sign_in("ada", "ada-password-12").await?.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        admin.sign_in("ada", "ada-password-34").await?.status,
        StatusCode::SEE_OTHER
    );

    // The audit log kept who signed in and out.
    let audit = node
        .db
        .psql("SELECT username || ':' || action FROM portal_audit ORDER BY id")?;
    for line in [
        "vera:signed_in",
        "vera:signed_out",
        "ada:signed_in",
        "lading user:user_disabled",
    ] {
        assert!(audit.contains(line), "{line} in {audit}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_is_rate_limited_per_account_and_per_address() -> Result<()> {
    let (_pki, _registry_db, _registry, node) = node()?;
    tokio::task::block_in_place(|| -> Result<()> {
        node.add_user("carl", "clerk", "carl-password-1")?;
        node.add_user("sid", "signer", "sid-password-12")?;
        Ok(())
    })?;
    let mut browser = node.browser()?;
    // Five failures of one account: the sixth attempt is refused, right password or not.
    for _ in 0..5 {
        let page = browser.sign_in("carl", "wrong-password").await?;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    let limited = browser.sign_in("carl", "carl-password-1").await?;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.body
    );
    assert!(
        limited.body.contains("Too many failed sign-ins"),
        "{}",
        limited.body
    );
    assert!(limited.header("retry-after").is_some());
    assert_eq!(sessions(&node)?, 0);
    // Another account from the same address still signs in.
    assert_eq!(
        browser.sign_in("sid", "sid-password-12").await?.status,
        StatusCode::SEE_OTHER
    );

    // Twenty failures from one address, whatever the accounts: then nobody signs in from it.
    for i in 0..15 {
        let page = browser
            .sign_in(&format!("guess{i}"), "wrong-password")
            .await?;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let limited = browser.sign_in("sid", "sid-password-12").await?;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        sessions(&node)?,
        1,
        "only the session opened before the limit"
    );
    Ok(())
}
