//! The portal's read side on a node fed by a real registry: the bills-of-lading list (search,
//! filters, sorting, keyset pages), a bill's page with the verification badge it earns, the
//! same 404 for a foreign document as for none, the "chain damaged" page, and the list made
//! again from the verified chains when the node restarts.
//!
//! The registry takes the sample chains and events (`fixtures/samples.json`) and 110 bills
//! issued to shipper-acme now (every tenth transferred on to its consignee), 10 of another
//! shipper's that shipper-acme's node never receives, and one of that shipper's handed on to
//! shipper-acme after its node caught up (its earlier entries back-filled). What the pages show is compared with
//! what the test signed, not with the node's own tables.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use lading_domain::transition::{Action, SignedTransition};
use lading_domain::{Timestamp, TransportDocument};
use lading_e2e::gen::sample_document;
use lading_e2e::harness::sql_number;
use lading_e2e::portal::{submit_all, submit_events, Browser, Page, Pki, PortalNode, Signer};
use lading_e2e::samples::Samples;
use reqwest::StatusCode;

const ME: &str = "shipper-acme";

/// A document the node should list, with what the list shows of it.
#[derive(Debug, Clone)]
struct Expected {
    doc: TransportDocument,
    state: &'static str,
    holder: bool,
}

impl Expected {
    /// What the free-text search looks in, lower-cased.
    fn search_text(&self) -> String {
        let d = &self.doc;
        let mut parts = vec![
            d.reference().to_string(),
            d.carrier().to_string(),
            d.shipper().to_string(),
            d.vessel_name().to_owned(),
            d.voyage_number().to_owned(),
            d.port_of_loading().to_string(),
            d.port_of_discharge().to_string(),
        ];
        parts.extend(d.consignee().map(ToString::to_string));
        parts.extend(d.endorsee().map(ToString::to_string));
        parts.extend(d.notify_parties().iter().map(ToString::to_string));
        parts.extend(d.container_numbers().iter().map(|c| c.as_str().to_owned()));
        parts.join(" ").to_lowercase()
    }

    /// Whether the list's search for `q` should find this document: every word of `q` (any
    /// case) is found — one with three letters or digits in a row anywhere in the search text,
    /// a shorter one at the start of one of its words — or names a party of the document.
    fn found_by(&self, q: &str) -> bool {
        let text = self.search_text();
        q.split_whitespace().all(|word| {
            let word = word.to_lowercase();
            let anywhere = word
                .split(|c: char| !c.is_alphanumeric())
                .any(|run| run.chars().count() >= 3);
            let in_text = if anywhere {
                text.contains(&word)
            } else {
                text.split(' ').any(|w| w.starts_with(&word))
            };
            let in_name = |name: &str| {
                let name = name.to_lowercase();
                if anywhere {
                    name.contains(&word)
                } else {
                    name.split(' ').any(|w| w.starts_with(&word))
                }
            };
            in_text
                || PARTY_NAMES
                    .iter()
                    .any(|(id, name)| in_name(name) && text.contains(id))
        })
    }
}

/// The fixture parties' names (fixtures/parties.json), which a search may use for their ids.
const PARTY_NAMES: [(&str, &str); 10] = [
    ("carrier-oceanic", "Oceanic Container Lines"),
    ("carrier-polaris", "Polaris Shipping Company"),
    ("shipper-acme", "Acme Industrial Exports B.V."),
    ("shipper-borealis", "Borealis Trading Oy"),
    ("forwarder-swift", "Swift Freight Forwarding GmbH"),
    ("bank-harbour", "Harbour Trade Bank"),
    ("consignee-delta", "Delta Imports Inc."),
    ("customs-nl", "Netherlands Customs Administration"),
    ("customs-sg", "Singapore Customs"),
    ("customs-us", "U.S. Customs and Border Protection"),
];

/// The references of a list page, in order.
fn references(page: &Page) -> Vec<String> {
    page.body
        .split("class=\"ref\">")
        .skip(1)
        .map(|s| s.split('<').next().unwrap().to_owned())
        .collect()
}

/// Every reference of the list at `path`, page by page, and the pages' sizes.
async fn walk(browser: &mut Browser, path: &str) -> Result<(Vec<String>, Vec<usize>)> {
    let mut all = Vec::new();
    let mut sizes = Vec::new();
    let mut next = Some(path.to_owned());
    while let Some(path) = next {
        let page = browser.get(&path).await?;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        let refs = references(&page);
        sizes.push(refs.len());
        all.extend(refs);
        next = page.link("next");
        assert!(sizes.len() < 20, "too many pages: {path} -> {next:?}");
    }
    Ok((all, sizes))
}

fn set(refs: &[String]) -> BTreeSet<String> {
    refs.iter().cloned().collect()
}

fn expect(
    expected: &BTreeMap<String, Expected>,
    keep: impl Fn(&Expected) -> bool,
) -> BTreeSet<String> {
    expected
        .values()
        .filter(|e| keep(e))
        .map(|e| e.doc.reference().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_lists_searches_pages_and_shows_what_the_node_verified() -> Result<()> {
    let pki = tokio::task::block_in_place(|| Pki::new(&[ME]))?;
    let (_registry_db, registry) = tokio::task::block_in_place(|| pki.plain_registry())?;
    let client = pki.registry_client()?;
    let signer = Signer::new()?;

    // The samples, and what shipper-acme's node holds of them.
    let samples = Samples::load()?;
    let mut expected: BTreeMap<String, Expected> = BTreeMap::new();
    for chain in &samples.chains {
        submit_all(&client, &registry, &chain.transitions).await?;
        let parsed: Vec<SignedTransition> = chain
            .transitions
            .iter()
            .map(|t| SignedTransition::parse(t).unwrap())
            .collect();
        let doc = parsed[0].payload().transport_document().unwrap().clone();
        let mut state =
            lading_domain::DocumentState::issue(parsed[0].payload(), parsed[0].checksum()).unwrap();
        let mut involved: BTreeSet<String> =
            doc.named_parties().iter().map(|p| p.to_string()).collect();
        for t in &parsed {
            involved.insert(t.payload().actor().to_string());
            involved.extend(t.payload().recipient().map(ToString::to_string));
        }
        for t in &parsed[1..] {
            state = state.apply(t.payload(), t.checksum()).unwrap();
        }
        if involved.contains(ME) {
            expected.insert(
                chain.reference.clone(),
                Expected {
                    state: state.status.as_str(),
                    holder: state.possessor.as_str() == ME,
                    doc,
                },
            );
        }
    }
    submit_events(&client, &registry, &samples.events).await?;

    // 110 bills issued to shipper-acme a minute apart (every tenth passed on to its
    // consignee), and 10 of shipper-borealis's.
    let now = chrono::Utc::now();
    let at = |minutes_ago: i64| {
        Timestamp::from_datetime_truncated(now - chrono::Duration::minutes(minutes_ago))
    };
    let mut issues = Vec::new();
    let mut transfers = Vec::new();
    for i in 0..110u64 {
        let reference = format!("ACME{i:04}");
        let doc = sample_document(
            &reference,
            "carrier-oceanic",
            ME,
            Some("consignee-delta"),
            false,
            i,
        )?;
        let issue = signer.issue(&doc, ME, at(200 - i as i64))?;
        let transferred = i % 10 == 0;
        if transferred {
            transfers.push(signer.next(
                &doc,
                &issue,
                Action::Transfer,
                ME,
                Some("consignee-delta"),
                at(199 - i as i64),
            )?);
        }
        issues.push(issue);
        expected.insert(
            reference,
            Expected {
                doc,
                state: "ACTIVE",
                holder: !transferred,
            },
        );
    }
    for i in 0..10u64 {
        let doc = sample_document(
            &format!("BORE{i:04}"),
            "carrier-polaris",
            "shipper-borealis",
            Some("consignee-delta"),
            false,
            1000 + i,
        )?;
        issues.push(signer.issue(&doc, "shipper-borealis", at(100))?);
    }
    // A to-order bill of shipper-borealis's that shipper-acme receives only later: its node
    // then fetches the earlier entries it was not entitled to before (a back-fill).
    let late = sample_document(
        "LATE0001",
        "carrier-polaris",
        "shipper-borealis",
        None,
        true,
        2000,
    )?;
    let late_issue = signer.issue(&late, "shipper-borealis", at(90))?;
    issues.push(late_issue.clone());
    submit_all(&client, &registry, &issues).await?;
    submit_all(&client, &registry, &transfers).await?;

    let mut node = tokio::task::block_in_place(|| PortalNode::start(&pki, ME, &registry, &[]))?;
    tokio::task::block_in_place(|| node.wait_for_documents(expected.len() as u64))?;
    let handed_on = signer.next(
        &late,
        &late_issue,
        Action::Transfer,
        "shipper-borealis",
        Some(ME),
        at(1),
    )?;
    submit_all(&client, &registry, &[handed_on]).await?;
    expected.insert(
        "LATE0001".into(),
        Expected {
            doc: late,
            state: "ACTIVE",
            holder: true,
        },
    );
    tokio::task::block_in_place(|| node.wait_for_documents(expected.len() as u64))?;
    tokio::task::block_in_place(|| node.add_user("vera", "viewer", "vera-password-1"))?;
    let mut browser = node.browser()?;
    assert_eq!(
        browser.sign_in("vera", "vera-password-1").await?.status,
        StatusCode::SEE_OTHER
    );
    let all: BTreeSet<String> = expected.keys().cloned().collect();

    // The whole list, 50 a page, newest activity first: every bill once, none of another's.
    let (listed, sizes) = walk(&mut browser, "/bills").await?;
    assert_eq!(sizes, vec![50, 50, all.len() - 100], "{listed:?}");
    assert_eq!(set(&listed), all);
    assert_eq!(listed.len(), all.len(), "no bill twice");
    let acme_order: Vec<&String> = listed.iter().filter(|r| r.starts_with("ACME")).collect();
    let mut newest_first: Vec<&String> = acme_order.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(acme_order, newest_first, "newest activity first");
    let first = browser.get("/bills").await?;
    assert!(
        first.body.contains(&format!("{} bills", all.len())),
        "{}",
        first.body
    );
    assert!(first.link("prev").is_none());
    // Forward to page 2 and back: the same first page.
    let second = browser.get(&first.link("next").unwrap()).await?;
    let back = browser.get(&second.link("prev").unwrap()).await?;
    assert_eq!(references(&back), references(&first));
    assert!(
        back.link("prev").is_none(),
        "the first page has no page before it"
    );

    // Oldest first, and by reference.
    let (oldest, _) = walk(&mut browser, "/bills?dir=asc").await?;
    let mut reversed = listed.clone();
    reversed.reverse();
    assert_eq!(oldest, reversed);
    let (by_reference, _) = walk(&mut browser, "/bills?sort=reference&dir=asc").await?;
    assert_eq!(by_reference, all.iter().cloned().collect::<Vec<_>>());

    // Free-text search: a reference (any case), a container, a vessel, a port.
    let acme42 = &expected["ACME0042"];
    let container = acme42.doc.container_numbers()[0].as_str().to_owned();
    let vessel = acme42.doc.vessel_name().to_owned();
    // Short words match the start of a word (`NL` finds NLRTM, not every "…nl…"); a party's
    // name finds the documents carrying its id; every word must match.
    for q in [
        "acme0042".to_owned(),
        container.clone(),
        vessel.to_uppercase(),
        "SGSIN".to_owned(),
        "NL".to_owned(),
        "us".to_owned(),
        "Borealis trading".to_owned(),
        "delta sgsin".to_owned(),
        format!("{} acme", &container[..2]),
    ] {
        let (found, _) = walk(
            &mut browser,
            &format!("/bills?q={}", lading_e2e::portal::encode(&q)),
        )
        .await?;
        let wanted = expect(&expected, |e| e.found_by(&q));
        assert!(!wanted.is_empty(), "{q}");
        assert!(
            wanted.len() < expected.len(),
            "{q} is no test: it finds all"
        );
        assert_eq!(set(&found), wanted, "search {q}");
    }
    // A short word inside another word finds nothing (no reference or port starts with it).
    let texts: Vec<String> = expected.values().map(Expected::search_text).collect();
    let inside: String = texts
        .iter()
        .flat_map(|t| t.split(' '))
        .flat_map(|w| {
            let chars: Vec<char> = w.chars().collect();
            (1..chars.len().saturating_sub(1))
                .map(move |i| chars[i..i + 2].iter().collect::<String>())
        })
        .find(|pair| {
            pair.chars().all(char::is_alphanumeric)
                && expect(&expected, |e| e.found_by(pair)).is_empty()
        })
        .expect("some two letters are only ever inside a word");
    assert!(texts.iter().any(|t| t.contains(&inside)));
    let (found, _) = walk(&mut browser, &format!("/bills?q={inside}")).await?;
    assert!(found.is_empty(), "{found:?}");
    // A word without a letter or digit is left out, and said.
    let dash = browser.get("/bills?q=-+acme0042").await?;
    assert_eq!(dash.status, StatusCode::OK);
    assert!(
        dash.body
            .contains("A search word needs a letter or a digit"),
        "{}",
        dash.body
    );
    assert_eq!(
        set(&references(&dash)),
        expect(&expected, |e| e.found_by("acme0042"))
    );
    let (nothing, _) = walk(&mut browser, "/bills?q=no-such-thing").await?;
    assert!(nothing.is_empty());

    // Filters: state, the party's role, the issue date; and together with a search.
    for state in ["ACTIVE", "VOID", "SURRENDERED_FOR_DELIVERY"] {
        let (found, _) = walk(&mut browser, &format!("/bills?state={state}")).await?;
        assert_eq!(
            set(&found),
            expect(&expected, |e| e.state == state),
            "{state}"
        );
    }
    let (held, _) = walk(&mut browser, "/bills?role=holder").await?;
    assert_eq!(set(&held), expect(&expected, |e| e.holder));
    let (shipped, _) = walk(&mut browser, "/bills?role=shipper").await?;
    assert_eq!(
        set(&shipped),
        expect(&expected, |e| e.doc.shipper().as_str() == ME)
    );
    let (consigned, _) = walk(&mut browser, "/bills?role=consignee").await?;
    assert!(consigned.is_empty());
    let in_range = |e: &Expected| {
        let d = e.doc.issue_date().as_naive().to_string();
        ("2026-11-10".to_owned()..="2026-11-14".to_owned()).contains(&d)
    };
    let (dated, _) = walk(&mut browser, "/bills?from=2026-11-10&to=2026-11-14").await?;
    assert_eq!(set(&dated), expect(&expected, in_range));
    let (both, _) = walk(
        &mut browser,
        "/bills?from=2026-11-10&to=2026-11-14&role=holder&q=acme",
    )
    .await?;
    assert_eq!(
        set(&both),
        expect(&expected, |e| in_range(e) && e.holder && e.found_by("acme"))
    );
    let bad = browser.get("/bills?from=banana").await?;
    assert_eq!(bad.status, StatusCode::OK);
    assert!(
        bad.body.contains("The from date is not a date"),
        "{}",
        bad.body
    );

    // The dashboard: counts by state, what was just received, the node in sync.
    let dashboard = browser.get("/").await?;
    assert!(
        dashboard.body.contains("Just received"),
        "{}",
        dashboard.body
    );
    assert!(
        dashboard.body.contains("/bills/ACME0109"),
        "{}",
        dashboard.body
    );
    assert!(dashboard.body.contains("In sync"), "{}", dashboard.body);

    // A bill's page: the document, its timeline and possession, and the badge it earns.
    let last_index = sql_number(
        &node.db,
        "SELECT max(idx) FROM replica_entries WHERE document_ref = 'OCNL2026000101'",
    )?;
    let page = wait_for_badge(&mut browser, "/bills/OCNL2026000101").await?;
    assert!(
        page.body
            .contains(&format!("<strong>#{last_index}</strong>")),
        "{}",
        page.body
    );
    let sample = &expected["OCNL2026000101"].doc;
    for text in [
        "Acme Industrial Exports B.V.",
        sample.vessel_name(),
        sample.container_numbers()[0].as_str(),
        "Transferred",
        "Surrendered for delivery",
        "Surrender accepted",
        "carrier-oceanic:test-2026",
        "Chain of possession",
    ] {
        assert!(page.body.contains(text), "{text} in {}", page.body);
    }
    let backfilled = wait_for_badge(&mut browser, "/bills/LATE0001").await?;
    assert!(backfilled.body.contains("Issued"), "{}", backfilled.body);
    assert!(
        backfilled.body.contains("Transferred"),
        "{}",
        backfilled.body
    );
    let fresh = wait_for_badge(&mut browser, "/bills/ACME0003").await?;
    assert!(fresh
        .body
        .contains(acme_container(&expected, "ACME0003").as_str()));

    // Not the party's, or not there at all: the same page.
    let foreign = browser.get("/bills/BORE0001").await?;
    let missing = browser.get("/bills/NONE0001").await?;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(foreign.body, missing.body);
    assert_eq!(
        browser.get("/bills/OCNL2026000102").await?.body,
        missing.body
    );

    // The list is made again from the verified chains when the node restarts: rows lost or
    // changed by hand come back as they were.
    let before = node
        .db
        .psql("SELECT * FROM node_documents ORDER BY reference")?;
    node.db
        .psql("DELETE FROM node_documents WHERE reference LIKE 'ACME001%'")?;
    node.db.psql("UPDATE node_documents SET state = 'VOID', head = '\\x00' || substring(head from 2) WHERE reference = 'ACME0020'")?;
    node.db.psql(
        "CREATE TEMP TABLE copy AS SELECT * FROM node_documents WHERE reference = 'ACME0021'; \
         UPDATE copy SET reference = 'FAKE0001'; \
         INSERT INTO node_documents SELECT * FROM copy",
    )?;
    tokio::task::block_in_place(|| -> Result<()> {
        node.process.kill_9()?;
        node.process.spawn()?;
        node.wait_for_documents(expected.len() as u64)
    })?;
    assert_eq!(
        node.db
            .psql("SELECT * FROM node_documents ORDER BY reference")?,
        before
    );

    // A chain whose rows were damaged by hand: a clear page, never a wrong chain.
    let transfer = sql_number(
        &node.db,
        "SELECT min(idx) FROM replica_entries WHERE document_ref = 'OCNL2026000101' AND idx > (SELECT min(idx) FROM replica_entries WHERE document_ref = 'OCNL2026000101')",
    )?;
    node.db.psql(&format!(
        "DELETE FROM replica_entries WHERE idx = {transfer}"
    ))?;
    let mut browser = node.browser()?;
    browser.sign_in("vera", "vera-password-1").await?;
    let damaged = browser.get("/bills/OCNL2026000101").await?;
    assert_eq!(damaged.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(damaged.body.contains("Chain damaged"), "{}", damaged.body);
    assert!(!damaged.body.contains("Verified on the ledger"));
    Ok(())
}

fn acme_container(expected: &BTreeMap<String, Expected>, reference: &str) -> String {
    expected[reference].doc.container_numbers()[0]
        .as_str()
        .to_owned()
}

/// The bill's page once its badge is earned (the latest entry covered by a checkpoint the
/// node verified); fails on a failed badge.
async fn wait_for_badge(browser: &mut Browser, path: &str) -> Result<Page> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let page = browser.get(path).await?;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(!page.body.contains("Not verified"), "{}", page.body);
        if page.body.contains("Verified on the ledger") {
            return Ok(page);
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "no badge on {path}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
