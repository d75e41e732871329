//! A party is told when one of its webhook subscriptions is failing: a real registry (its
//! `notifications.failing_after_ms` made short), a subscription whose callback nothing listens
//! on, and the party's own node, which asks the registry for its party's subscriptions with its
//! client certificate in the background.
//!
//! What must hold:
//! - the registry shows a party's subscriptions to its node's client certificate, for reading
//!   only (no secret; deleting one with the certificate alone is refused);
//! - the node's `GET /v1/status` names the failing subscription (`subscriptions.failing`, with
//!   `checkedAt`), and its portal's dashboard, in a real headless Chromium, shows a notice with
//!   the callback URL, the registry's last error and what to do;
//! - while the registry does not answer, the notice stays dated by when it last did and says
//!   it has not answered since (it claims nothing newer);
//! - once the subscription is deleted, the notice and the status entry go.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use anyhow::{bail, ensure, Context, Result};
use lading_e2e::browser::Browser;
use lading_e2e::consortium::{replica_url, wait_until};
use lading_e2e::harness::{free_port, get, repo_root, token, Server, ServerOptions, TestDb, Tls};
use lading_e2e::portal::{submit_all, Pki, PortalNode};
use lading_e2e::samples::Samples;
use reqwest::StatusCode;
use serde_json::{json, Value};

const ME: &str = "shipper-acme";
const PASSWORD: &str = "correct horse battery staple";
/// The notice's heading on the dashboard.
const NOTICE: &str = "Notifications are not reaching you";

/// A registry with the consortium's certificate whose subscriptions turn `failing` after
/// 300 ms of failures, retried every few hundred milliseconds, and that may call loopback.
/// The TLS material is returned with it: the registry reads it again when it restarts.
fn registry(pki: &Pki) -> Result<(TestDb, Server, Tls)> {
    let tls = pki.registry_tls()?;
    let env = [
        ("LADING_NOTIFICATIONS_ALLOW_PRIVATE_TARGETS", "true"),
        ("LADING_NOTIFICATIONS_FAILING_AFTER_MS", "300"),
        ("LADING_NOTIFICATIONS_POLL_INTERVAL_MS", "50"),
        ("LADING_NOTIFICATIONS_FIRST_RETRY_MS", "100"),
        ("LADING_NOTIFICATIONS_MAX_RETRY_MS", "300"),
    ];
    let options = ServerOptions {
        client_ca: Some(pki.ca_pem()),
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..ServerOptions::default()
    };
    let db = TestDb::new()?;
    let server = Server::start(&db, &tls, options)?;
    Ok((db, server, tls))
}

/// The node's `GET /v1/status` once `probe` holds of its `subscriptions` field (120 s).
async fn status_when(
    client: &reqwest::Client,
    port: u16,
    what: &str,
    probe: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let url = format!("{}/v1/status", replica_url(port));
    wait_until(what, || async {
        let (status, body) = get(client, &url).await?;
        Ok((status == StatusCode::OK && probe(&body["subscriptions"])).then_some(body))
    })
    .await
}

/// Whether the status's `failing` list names subscription `id`.
fn failing_names(subscriptions: &Value, id: &str) -> bool {
    subscriptions["failing"]
        .as_array()
        .is_some_and(|list| list.iter().any(|f| f["id"] == id))
}

/// Opens the dashboard again and again until `done` holds of its text (120 s); that text.
async fn dashboard_until(
    browser: &Browser,
    url: &str,
    what: &str,
    done: impl Fn(&str) -> bool,
) -> Result<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        browser.goto(url).await?;
        browser.wait_for("main").await?;
        let text = browser.page_text().await?;
        if done(&text) {
            return Ok(text);
        }
        if std::time::Instant::now() > deadline {
            browser.screenshot("dashboard-timed-out").await?;
            bail!("the dashboard never showed {what}:\n{text}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_subscription_is_told_on_the_partys_portal_and_node_status() -> Result<()> {
    let pki = tokio::task::block_in_place(|| Pki::new(&[ME]))?;
    let (_registry_db, mut registry, _registry_tls) =
        tokio::task::block_in_place(|| registry(&pki))?;
    let client = pki.registry_client()?;
    let samples = Samples::load()?;

    // A callback nothing listens on: every delivery is refused.
    let dead = free_port()?;
    let callback = format!("https://127.0.0.1:{dead}/lading-hook");
    let made: Value = client
        .post(registry.url("/v1/subscriptions"))
        .bearer_auth(token(ME)?)
        .json(&json!({ "url": callback, "filter": {} }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = made["id"].as_str().context("an id")?.to_owned();

    // Something for the party after it subscribed: deliveries start, and fail.
    for chain in &samples.chains {
        submit_all(&client, &registry, &chain.transitions).await?;
    }
    let subscription_url = registry.url(&format!("/v1/subscriptions/{id}"));
    let failing = wait_until("the registry to mark the subscription failing", || async {
        let response = client
            .get(&subscription_url)
            .bearer_auth(token(ME)?)
            .send()
            .await?;
        let body: Value = response.json().await?;
        Ok((body["status"] == "failing").then_some(body))
    })
    .await?;
    let registry_error = failing["lastError"]
        .as_str()
        .context("a failing subscription has a last error")?
        .to_owned();

    // The node's certificate reads the party's subscriptions (no secret), and does no more.
    let node_cert = pki.client(Some(ME))?;
    let (status, listed) = get(&node_cert, &registry.url("/v1/subscriptions")).await?;
    ensure!(status == StatusCode::OK, "{status} {listed}");
    let listed = listed["subscriptions"].as_array().context("a list")?;
    ensure!(
        listed.len() == 1 && listed[0]["id"] == id.as_str(),
        "{listed:?}"
    );
    ensure!(listed[0].get("secret").is_none(), "no secret: {listed:?}");
    let refused = node_cert.delete(&subscription_url).send().await?.status();
    ensure!(
        refused == StatusCode::UNAUTHORIZED,
        "the certificate alone deletes nothing: {refused}"
    );

    // The party's node, asking every 200 ms, with its portal and its own face (for the status).
    let face = free_port()?;
    let face_bind = format!("127.0.0.1:{face}");
    let node = tokio::task::block_in_place(|| {
        PortalNode::start(
            &pki,
            ME,
            &registry,
            &[
                ("LADING_REPLICA_SUBSCRIPTIONS_INTERVAL_MS", "200"),
                ("LADING_REPLICA_LISTEN", &face_bind),
            ],
        )
    })?;
    tokio::task::block_in_place(|| node.add_user("vera", "viewer", PASSWORD))?;

    let status = status_when(
        &node_cert,
        face,
        "the node to name the failing subscription",
        |s| failing_names(s, &id),
    )
    .await?;
    let told = &status["subscriptions"];
    let entry = told["failing"]
        .as_array()
        .and_then(|l| l.iter().find(|f| f["id"] == id.as_str()))
        .context("the entry")?;
    ensure!(entry["url"] == callback.as_str(), "{entry}");
    ensure!(entry["failingSince"].is_string(), "{entry}");
    ensure!(entry["failures"].as_i64().unwrap_or(0) >= 1, "{entry}");
    ensure!(
        entry["lastError"].as_str().is_some_and(|e| !e.is_empty()),
        "{entry}"
    );
    ensure!(told["checkedAt"].is_string(), "{told}");
    ensure!(told["unansweredSince"].is_null(), "{told}");

    // The portal's dashboard, in a real browser.
    let browser = Browser::start("portal_failing_subscriptions", &[&pki.ca_pem()]).await?;
    browser.sign_in(&node.url(""), "vera", PASSWORD).await?;
    let home = node.url("/");
    dashboard_until(&browser, &home, "the failing subscription", |t| {
        t.contains(NOTICE) && t.contains(&callback)
    })
    .await?;
    let notice = browser.text("#failing-subscriptions").await?;
    ensure!(notice.contains(&callback), "the URL: {notice}");
    // The error the registry recorded (it may have been retried since: the node's word).
    let shown_error = browser.text(".last-error").await?;
    ensure!(
        !shown_error.is_empty() && shown_error != "none recorded",
        "the last error: {notice}"
    );
    ensure!(
        registry_error.contains("could not be reached")
            && shown_error.contains("could not be reached"),
        "a refused connection, as the registry says: {registry_error} / {shown_error}"
    );
    ensure!(
        notice.contains("Failing since") && notice.contains("failed attempt"),
        "since when and how often: {notice}"
    );
    ensure!(
        notice.contains("fix the receiver")
            && notice.contains(&format!("POST /v1/subscriptions/{id}/redeliver?from=")),
        "what to do: {notice}"
    );
    ensure!(
        notice.contains("As the registry said at"),
        "dated: {notice}"
    );
    browser.look("failing-subscription").await?;
    let shot = browser.screenshot("failing-subscription-notice").await?;
    // The README's picture is taken again only when asked (`LADING_BLESS=1`, as for the
    // committed OpenAPI documents), so that a test run leaves the tree as it found it.
    if std::env::var_os("LADING_BLESS").is_some() {
        let docs = repo_root().join("docs/screenshots/portal-failing-subscription.png");
        std::fs::copy(&shot, &docs).with_context(|| format!("copying to {}", docs.display()))?;
    }

    // The registry goes away: the notice stays as last heard, and says since when it is not.
    tokio::task::block_in_place(|| registry.kill_9())?;
    status_when(
        &node_cert,
        face,
        "the node to see the registry not answering",
        |s| s["unansweredSince"].is_string() && failing_names(s, &id) && s["checkedAt"].is_string(),
    )
    .await?;
    let stale = dashboard_until(&browser, &home, "that the registry does not answer", |t| {
        t.contains("has not answered this node's question since")
    })
    .await?;
    ensure!(
        stale.contains(NOTICE) && stale.contains("may no longer hold"),
        "{stale}"
    );
    browser
        .screenshot("failing-subscription-registry-away")
        .await?;

    // Back, and the subscription deleted: the notice goes.
    tokio::task::block_in_place(|| registry.spawn())?;
    let deleted = client
        .delete(&subscription_url)
        .bearer_auth(token(ME)?)
        .send()
        .await?
        .status();
    ensure!(deleted == StatusCode::NO_CONTENT, "{deleted}");
    let settled = status_when(
        &node_cert,
        face,
        "the node to drop the deleted subscription",
        |s| s["failing"].as_array().is_some_and(Vec::is_empty) && s["unansweredSince"].is_null(),
    )
    .await?;
    ensure!(
        settled["subscriptions"]["checkedAt"].is_string(),
        "{settled}"
    );
    let clear = dashboard_until(&browser, &home, "no notice", |t| !t.contains(NOTICE)).await?;
    ensure!(clear.contains("none failing"), "{clear}");
    ensure!(
        browser.find_all("#failing-subscriptions").await?.is_empty(),
        "no notice left"
    );
    browser.look("no-failing-subscription").await?;
    browser.close().await?;
    Ok(())
}
