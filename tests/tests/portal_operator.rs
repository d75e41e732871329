//! The registry's operator view (`lading serve` with `[portal] listen`), end to end: a real
//! registry and real replicas (`lading replica`) on their own PostgreSQL databases, over HTTPS
//! with the consortium's certificates, signed in as a browser would.
//!
//! What must hold:
//! - an operator added with `lading user add` against the registry's configuration signs in
//!   at the registry's operator view, and each page shows the registry's data: the replicas
//!   with their last reconciliation (outcome, size, lag) and their open incidents with the
//!   evidence, the latest checkpoints (size, root), the ingest of the last hour as an SVG;
//! - users are per database: a party's user signs in at its node's portal and not at the
//!   registry, an operator not at a node, and a user of the registry's database made for a
//!   party does not sign in at the operator view either.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use anyhow::{ensure, Context, Result};
use lading_e2e::consortium::{caught_up, wait_until, Pki};
use lading_e2e::harness::{free_port, get, post, Server};
use lading_e2e::portal::{add_user, registry_env, Browser, Page};
use lading_e2e::samples::Samples;
use reqwest::StatusCode;

/// A replica that follows closely: the registry finds it in agreement.
const CLOSE: &str = "shipper-acme";
/// A replica that polls once an hour: the registry finds it behind.
const SLOW: &str = "carrier-oceanic";

/// Submits the sample chains `chains` (their transitions, in order); how many entries.
async fn submit_chains(
    client: &reqwest::Client,
    server: &Server,
    chains: &[lading_e2e::samples::SampleChain],
) -> Result<u64> {
    let mut total = 0;
    for chain in chains {
        for jws in &chain.transitions {
            let response = client
                .post(server.url("/v1/transitions"))
                .header("content-type", "application/jose")
                .body(jws.clone())
                .send()
                .await?;
            ensure!(response.status() == StatusCode::CREATED, "{jws} refused");
            total += 1;
        }
    }
    Ok(total)
}

/// The part of `page` from `start` to the first `end` after it.
fn between<'a>(page: &'a Page, start: &str, end: &str) -> &'a str {
    let at = page
        .body
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} is not on the page:\n{}", page.body));
    let rest = &page.body[at..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_view_shows_replicas_incidents_checkpoints_and_ingest() -> Result<()> {
    let pki = Pki::new(&[CLOSE, SLOW])?;
    let (close_port, slow_port, view_port) = (free_port()?, free_port()?, free_port()?);
    let listen = format!("127.0.0.1:{view_port}");
    let (registry_db, server, _tls) = pki
        .registry(
            &[(CLOSE, close_port), (SLOW, slow_port)],
            0,
            &[("LADING_PORTAL_LISTEN", &listen)],
        )
        .await?;
    let added = add_user(
        &registry_env(&registry_db),
        "ops",
        "viewer",
        "operator password 1",
    )?;
    assert!(added.contains("operator view"), "{added}");

    let mut browser = Browser::new(&pki.ca_pem(), format!("https://{listen}"))?;
    // Nothing without signing in.
    let anonymous = browser.get("/").await?;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    let login = browser.get("/login").await?;
    assert!(
        !login.body.contains("party's own node"),
        "the operator view's sign-in page is not a node's: {}",
        login.body
    );
    let signed_in = browser.sign_in("ops", "operator password 1").await?;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    let before = browser.get("/").await?;
    assert_eq!(before.status, StatusCode::OK, "{}", before.body);
    assert!(before.header("content-security-policy").is_some());
    for party in [CLOSE, SLOW] {
        let row = between(&before, &format!("id=\"replica-{party}\""), "</tr>");
        assert!(row.contains("none yet"), "{row}");
    }

    // Half the samples, then the slow replica takes them and sleeps for an hour; the rest.
    let samples = Samples::load()?;
    let (first, rest) = samples.chains.split_at(samples.chains.len() / 2);
    let plain = pki.client(None)?;
    let half = submit_chains(&plain, &server, first).await?;
    // Signed before the slow replica's one catch-up, so that it verifies what it takes.
    let checkpoint_url = server.url("/v1/checkpoint");
    wait_until("the checkpoint of the first half", || async {
        let (status, c) = get(&plain, &checkpoint_url).await?;
        Ok((status == StatusCode::OK && c["size"] == half).then_some(()))
    })
    .await?;
    let (_slow_db, _slow) = pki
        .replica(
            SLOW,
            &server.base,
            slow_port,
            &[],
            &[("LADING_REPLICA_POLL_INTERVAL_MS", "3600000")],
        )
        .await?;
    caught_up(&pki.client(Some(SLOW))?, slow_port, half).await?;
    let total = half + submit_chains(&plain, &server, rest).await?;
    let node_portal_port = free_port()?;
    let (close_db, _close) = pki
        .replica(
            CLOSE,
            &server.base,
            close_port,
            &[],
            &[(
                "LADING_PORTAL_LISTEN",
                &format!("127.0.0.1:{node_portal_port}"),
            )],
        )
        .await?;
    caught_up(&pki.client(Some(CLOSE))?, close_port, total).await?;

    let operator = pki.client(Some("registry"))?;
    for (party, outcome) in [(CLOSE, "agree"), (SLOW, "behind")] {
        let (status, report) = post(
            &operator,
            &server.url(&format!("/v1/replicas/{party}/reconcile")),
        )
        .await?;
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!(report["outcome"], outcome, "{report}");
    }

    // The replicas as the reconciliations found them; the slow one's incident, with evidence.
    let replicas = browser.get("/").await?;
    assert_eq!(replicas.status, StatusCode::OK);
    assert!(replicas
        .body
        .contains(&format!("<strong>{total}</strong> entries")));
    let close_row = between(&replicas, &format!("id=\"replica-{CLOSE}\""), "</tr>");
    assert!(close_row.contains(">agree<"), "{close_row}");
    assert!(
        close_row.contains(&format!("<td class=\"num\">{total}</td>")),
        "{close_row}"
    );
    assert!(
        close_row.contains(&format!("https://127.0.0.1:{close_port}")),
        "{close_row}"
    );
    let slow_row = between(&replicas, &format!("id=\"replica-{SLOW}\""), "</tr>");
    assert!(slow_row.contains(">behind<"), "{slow_row}");
    assert!(
        slow_row.contains(&format!("<td class=\"num\">{half}</td>")),
        "{slow_row}"
    );
    assert!(
        slow_row.contains(&format!("<td class=\"num\">{}</td>", total - half)),
        "the lag: {slow_row}"
    );
    let incidents = between(&replicas, &format!("id=\"incidents-{SLOW}\""), "</section>");
    assert!(incidents.contains("replica_behind"), "{incidents}");
    assert!(
        incidents.contains(&format!("{} entries behind", total - half)),
        "{incidents}"
    );
    // The evidence: the reconciliation's report, as JSON (askama escapes its quotes).
    assert!(incidents.contains("class=\"evidence\""), "{incidents}");
    assert!(
        incidents.contains(&format!("&#34;lag&#34;: {}", total - half))
            || incidents.contains(&format!("&quot;lag&quot;: {}", total - half)),
        "{incidents}"
    );
    assert!(!replicas.body.contains(&format!("id=\"incidents-{CLOSE}\"")));

    // The checkpoints: the latest is the registry's, size and root.
    let checkpoint = wait_until("the checkpoint of every sample", || async {
        let (status, c) = get(&plain, &checkpoint_url).await?;
        Ok((status == StatusCode::OK && c["size"] == total).then_some(c))
    })
    .await?;
    let root = checkpoint["root"].as_str().context("root")?;
    let checkpoints = browser.get("/checkpoints").await?;
    assert_eq!(checkpoints.status, StatusCode::OK);
    let latest = between(&checkpoints, "<tbody>", "</tr>");
    assert!(
        latest.contains(&format!("<td class=\"num\">{total}</td>")),
        "{latest}"
    );
    assert!(latest.contains(root), "{latest}");

    // The ingest of the last hour: every entry, drawn as 60 bars of an SVG.
    let ingest = browser.get("/ingest").await?;
    assert_eq!(ingest.status, StatusCode::OK);
    assert!(
        ingest
            .body
            .contains(&format!("id=\"ingest-total\">{total}<")),
        "{}",
        ingest.body
    );
    assert!(ingest.body.contains("<svg class=\"chart\""));
    assert_eq!(ingest.body.matches("<rect class=\"bar\"").count(), 60);
    assert!(
        !ingest.body.contains("style="),
        "no inline style: the CSP forbids it"
    );
    assert!(
        ingest.body.matches("height=\"0\"").count() < 60,
        "some bar is drawn"
    );

    // Users are per database. A party's user signs in at its node, not at the registry.
    let mut close_env = close_db.env();
    close_env.push((
        "LADING_REPLICA_CERT".into(),
        pki.cert(CLOSE).display().to_string(),
    ));
    add_user(&close_env, "clerk1", "clerk", "party password 1")?;
    let mut node = Browser::new(
        &pki.ca_pem(),
        format!("https://127.0.0.1:{node_portal_port}"),
    )?;
    assert_eq!(
        node.sign_in("clerk1", "party password 1").await?.status,
        StatusCode::SEE_OTHER
    );
    let mut at_registry = Browser::new(&pki.ca_pem(), format!("https://{listen}"))?;
    let refused = at_registry.sign_in("clerk1", "party password 1").await?;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    // An operator does not sign in at a node.
    let mut at_node = Browser::new(
        &pki.ca_pem(),
        format!("https://127.0.0.1:{node_portal_port}"),
    )?;
    assert_eq!(
        at_node.sign_in("ops", "operator password 1").await?.status,
        StatusCode::UNAUTHORIZED
    );
    // A user of the registry's database made for a party is no operator.
    add_user(
        &registry_env(&registry_db),
        "moved",
        "viewer",
        "moved password 1",
    )?;
    registry_db.psql("UPDATE portal_users SET party = 'shipper-acme' WHERE username = 'moved'")?;
    let mut moved = Browser::new(&pki.ca_pem(), format!("https://{listen}"))?;
    assert_eq!(
        moved.sign_in("moved", "moved password 1").await?.status,
        StatusCode::UNAUTHORIZED
    );
    // The operator's session still works, and signing out ends it.
    let csrf = browser
        .get("/checkpoints")
        .await?
        .csrf()
        .context("logout form")?;
    assert_eq!(
        browser.post("/logout", &[("csrf", &csrf)]).await?.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(browser.get("/").await?.status, StatusCode::SEE_OTHER);
    Ok(())
}
