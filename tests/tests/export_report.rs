//! The customs bundle's human summary, `index.html`: written into every bundle from the data
//! the writer streams, opened offline in a real headless Chromium, and made again by the
//! verifier so that it cannot say what the signed entries do not.
//!
//! What must hold:
//! - the page loads nothing from the network, and the counts it shows are the manifest's;
//! - its per-port, per-day and per-state tables add up to the documents and entries of the
//!   bundle, and it lists the customs events of `events.csv`;
//! - axe-core finds no serious or critical accessibility violation on it;
//! - a page changed by an insider (re-hashed and re-signed with the authority's key) fails
//!   `verify_bundle` with rule `report_differs_from_entries`.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use lading_e2e::browser::Browser;
use lading_e2e::export_ledger::{export, key, resign, rezip, rules, unzip, Ledger, AUTHORITY};
use lading_export::{verify_bundle, Manifest};

/// The rows of a bundle's CSV table.
fn csv_rows(files: &BTreeMap<String, Vec<u8>>, name: &str) -> Result<Vec<csv::StringRecord>> {
    let mut reader = csv::Reader::from_reader(files[name].as_slice());
    Ok(reader.records().collect::<Result<_, _>>()?)
}

/// A number as the page shows it (`1,234`).
fn number(text: &str) -> Result<u64> {
    text.trim()
        .replace(',', "")
        .parse()
        .with_context(|| format!("{text:?} is not a number"))
}

/// The sum of column `column` (1 = the first after the row header) of the table `id`.
async fn column_sum(browser: &Browser, id: &str, column: usize) -> Result<u64> {
    let mut sum = 0;
    for cell in browser
        .find_all(&format!("#{id} tbody tr td:nth-of-type({column})"))
        .await?
    {
        sum += number(&cell.text().await?)?;
    }
    Ok(sum)
}

#[tokio::test]
async fn the_summary_page_opens_offline_and_shows_the_manifests_counts() -> Result<()> {
    let ledger = Ledger::new()?;
    let dir = tempfile::tempdir()?;
    let (path, summary) = export(&ledger, dir.path(), "nl.zip", 0..ledger.size(), None)?;
    let files = unzip(&path)?;
    let manifest: Manifest = serde_json::from_slice(&files["manifest.json"])?;
    assert_eq!(manifest, summary.manifest);
    let page = String::from_utf8(files["index.html"].clone())?;
    assert!(
        manifest.files.contains_key("index.html"),
        "the manifest hashes the page"
    );
    // Nothing from the network: no URL at all, no script.
    assert!(!page.contains("://"), "the page names a URL");
    assert!(!page.contains("<script"), "the page has a script");
    let datapackage: serde_json::Value = serde_json::from_slice(&files["datapackage.json"])?;
    assert!(
        datapackage["resources"]
            .as_array()
            .context("resources")?
            .iter()
            .any(|r| r["path"] == "index.html"),
        "datapackage.json describes index.html"
    );

    let customs: Vec<csv::StringRecord> = csv_rows(&files, "events.csv")?
        .into_iter()
        .filter(|r| r.get(3) == Some("CUSTOMS"))
        .collect();
    assert!(
        !customs.is_empty(),
        "the samples hold customs events for {AUTHORITY}"
    );

    let browser = Browser::start("export_report", &[]).await?;
    let checked = async {
        browser.goto_html("index", &page).await?;
        assert!(
            browser.title().await?.contains(AUTHORITY),
            "the title names the authority"
        );
        browser.look("export-report").await?;
        let counts = manifest.counts;
        for (id, want) in [
            ("entries", counts.entries),
            ("transitions", counts.transitions),
            ("events", counts.events),
            ("documents", counts.documents),
            ("blocks", counts.blocks),
            ("customs", customs.len() as u64),
        ] {
            let shown = number(&browser.text(&format!("#count-{id}")).await?)?;
            assert_eq!(
                shown, want,
                "the page shows {shown} {id}, the bundle has {want}"
            );
        }
        assert_eq!(browser.text("#count-authority").await?, AUTHORITY);
        // Every document has one port of loading and one of discharge, one state; every entry
        // one day.
        assert_eq!(
            column_sum(&browser, "ports-table", 1).await?,
            counts.documents
        );
        assert_eq!(
            column_sum(&browser, "ports-table", 2).await?,
            counts.documents
        );
        assert_eq!(
            column_sum(&browser, "states-table", 1).await?,
            counts.documents
        );
        assert_eq!(column_sum(&browser, "days-table", 3).await?, counts.entries);
        let listed = browser.find_all("#customs-table tbody tr").await?;
        assert_eq!(listed.len(), customs.len(), "every customs event is listed");
        for id in ["ports-chart", "days-chart", "states-chart"] {
            let bars = browser.find_all(&format!("#{id} rect")).await?;
            assert!(!bars.is_empty(), "{id} draws its bars");
        }
        // The rest of the page, for a look.
        for section in ["ports", "days", "customs"] {
            browser
                .client()
                .execute(
                    &format!("document.getElementById('{section}').scrollIntoView();"),
                    vec![],
                )
                .await?;
            browser
                .screenshot(&format!("export-report-{section}"))
                .await?;
        }
        anyhow::Ok(())
    }
    .await;
    browser.close().await?;
    checked
}

#[test]
fn a_summary_page_that_says_something_else_fails_verification() -> Result<()> {
    let ledger = Ledger::new()?;
    let dir = tempfile::tempdir()?;
    let (path, _) = export(&ledger, dir.path(), "nl.zip", 0..ledger.size(), None)?;
    let clean = unzip(&path)?;
    assert_eq!(rules(&verify_bundle(&path, None)), Vec::<&str>::new());

    // An insider changes a count on the page, re-hashes and re-signs the manifest with the
    // authority's key: every hash and signature holds, the page does not.
    let mut files = clean.clone();
    let page = String::from_utf8(files["index.html"].clone())?;
    let entries = ledger.entitled(AUTHORITY, 0..ledger.size()).len();
    let shown = format!("<td id=\"count-entries\">{entries}</td>");
    assert!(page.contains(&shown), "the page shows {entries} entries");
    files.insert(
        "index.html".into(),
        page.replace(&shown, "<td id=\"count-entries\">3</td>")
            .into_bytes(),
    );
    resign(&mut files, &key(AUTHORITY)?)?;
    let tampered = dir.path().join("tampered.zip");
    rezip(&tampered, &files)?;
    let verdict = verify_bundle(&tampered, None);
    assert_eq!(rules(&verdict), vec!["report_differs_from_entries"]);
    let finding = &verdict.findings[0];
    assert_eq!(finding.file, "index.html");
    assert!(
        finding.line.is_some(),
        "the finding names the line that differs"
    );

    // A page with a holds list cut short is caught the same way.
    let mut files = clean;
    let page = String::from_utf8(files["index.html"].clone())?;
    let start = page.find("<tbody>\n<tr><td>").context("the customs list")?;
    let end = start + page[start..].find("</tr>\n").context("a row")? + "</tr>\n".len();
    let cut = format!("{}<tbody>\n{}", &page[..start], &page[end..]);
    files.insert("index.html".into(), cut.into_bytes());
    resign(&mut files, &key(AUTHORITY)?)?;
    rezip(&tampered, &files)?;
    assert_eq!(
        rules(&verify_bundle(&tampered, None)),
        vec!["report_differs_from_entries"]
    );
    Ok(())
}
