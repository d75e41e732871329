//! Customs export bundles, written and verified on a ledger made in memory from the signed
//! samples of `fixtures/` (the registry's and the parties' TEST keys): the writer and the
//! offline verifier of `lading-export`, without a database.
//!
//! What must hold:
//! - an export of `customs-nl`'s entries verifies clean: manifest signature and hashes, every
//!   entry's signature by a key its actor held, every proof against the signed checkpoint, the
//!   CSV tables exactly what the signed entries say;
//! - it holds exactly the entries the entitlement rule gives `customs-nl`;
//! - each tampering is caught with its own rule: a CSV cell changed, an entry removed, a proof
//!   altered, a file added, the manifest re-signed by another party's key, and a CSV cell
//!   changed by an insider who re-hashed and re-signed the manifest with the authority's key;
//! - consecutive exports chain: the second names the first, and a gap or an overlap is caught;
//! - an interrupted export leaves no bundle behind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use anyhow::Result;
use lading_e2e::export_ledger::{export, key, resign, rezip, rules, unzip, Ledger, AUTHORITY};
use lading_export::{verify_bundle, write_bundle, ExportError, ExportRequest, PreviousExport};

#[test]
fn an_export_verifies_clean_and_holds_exactly_what_the_authority_is_entitled_to() -> Result<()> {
    let ledger = Ledger::new()?;
    let dir = tempfile::tempdir()?;
    let (path, summary) = export(&ledger, dir.path(), "nl.zip", 0..ledger.size(), None)?;
    let verdict = verify_bundle(&path, None);
    assert!(verdict.is_clean(), "{:#?}", verdict.findings);

    let wanted = ledger.entitled(AUTHORITY, 0..ledger.size());
    assert!(!wanted.is_empty() && (wanted.len() as u64) < ledger.size());
    assert_eq!(verdict.entries_checked, wanted.len() as u64);
    assert_eq!(summary.manifest.counts.entries, wanted.len() as u64);
    let files = unzip(&path)?;
    let held: Vec<u64> = String::from_utf8(files["entries.jsonl"].clone())?
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["index"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(held, wanted.iter().map(|(i, _)| *i).collect::<Vec<_>>());
    assert!(
        summary.manifest.counts.blocks > 1,
        "the samples span several blocks"
    );
    assert!(verdict.documents_checked > 0);

    // The tables load with an ordinary CSV reader, a header and one row per item.
    let transitions = csv::Reader::from_reader(&files["transitions.csv"][..])
        .records()
        .count() as u64;
    assert_eq!(transitions, summary.manifest.counts.transitions);
    let documents = csv::Reader::from_reader(&files["documents.csv"][..])
        .records()
        .count() as u64;
    assert_eq!(documents, summary.manifest.counts.documents);
    assert!(summary.manifest.counts.events > 0);
    Ok(())
}

#[test]
fn each_tampering_is_caught_by_its_own_rule() -> Result<()> {
    let ledger = Ledger::new()?;
    let dir = tempfile::tempdir()?;
    let (path, _) = export(&ledger, dir.path(), "nl.zip", 0..ledger.size(), None)?;
    let clean = unzip(&path)?;
    let tampered = dir.path().join("tampered.zip");
    let check = |files: &BTreeMap<String, Vec<u8>>| -> Result<Vec<&'static str>> {
        rezip(&tampered, files)?;
        Ok(rules(&verify_bundle(&tampered, None)))
    };

    // Rezipped untouched: still clean (the check is of contents, not of the zip's bytes).
    assert_eq!(check(&clean)?, Vec::<&str>::new());

    // A CSV cell changed.
    let mut files = clean.clone();
    let text = String::from_utf8(files["transitions.csv"].clone())?;
    files.insert(
        "transitions.csv".into(),
        text.replacen(",TRANSFER,", ",SURRENDER_FOR_DELIVERY,", 1)
            .into_bytes(),
    );
    assert_ne!(files["transitions.csv"], clean["transitions.csv"]);
    assert_eq!(
        check(&files)?,
        ["hash_mismatch", "row_differs_from_entries"]
    );

    // An entry removed (its line, and its proof's).
    let mut files = clean.clone();
    let entries = String::from_utf8(files["entries.jsonl"].clone())?;
    let mut lines: Vec<&str> = entries.lines().collect();
    lines.remove(3);
    files.insert(
        "entries.jsonl".into(),
        (lines.join("\n") + "\n").into_bytes(),
    );
    let found = check(&files)?;
    assert!(
        found.contains(&"hash_mismatch") && found.contains(&"count_mismatch"),
        "{found:?}"
    );

    // A proof altered: one hash of a block's proof changed (a lemma where the bundle leaves
    // some of the block out, else a step of its path to the checkpoint, else its root).
    let mut files = clean.clone();
    let proofs = String::from_utf8(files["proofs.jsonl"].clone())?;
    let mut lines: Vec<String> = proofs.lines().map(str::to_owned).collect();
    let mut line: serde_json::Value = serde_json::from_str(&lines[0])?;
    let zeros = serde_json::json!("00".repeat(32));
    if line["lemmas"].as_array().is_some_and(|l| !l.is_empty()) {
        line["lemmas"][0] = zeros;
    } else if line["path"].as_array().is_some_and(|p| !p.is_empty()) {
        line["path"][0] = zeros;
    } else {
        line["root"] = zeros;
    }
    lines[0] = line.to_string();
    files.insert(
        "proofs.jsonl".into(),
        (lines.join("\n") + "\n").into_bytes(),
    );
    assert_eq!(check(&files)?, ["hash_mismatch", "proof_invalid"]);

    // A file added.
    let mut files = clean.clone();
    files.insert("notes.txt".into(), b"nothing to see".to_vec());
    assert_eq!(check(&files)?, ["unexpected_file"]);

    // The manifest re-signed by another party's key.
    let mut files = clean.clone();
    resign(&mut files, &key("shipper-acme")?)?;
    // (index.html names the signer the manifest named: it differs too.)
    assert_eq!(
        check(&files)?,
        ["manifest_signer_not_allowed", "report_differs_from_entries"]
    );

    // An insider with the authority's key changes a cell and signs again: the tables no
    // longer say what the signed entries say.
    let mut files = clean.clone();
    let text = String::from_utf8(files["documents.csv"].clone())?;
    files.insert(
        "documents.csv".into(),
        text.replacen("NLRTM", "BEANR", 1).into_bytes(),
    );
    resign(&mut files, &key(AUTHORITY)?)?;
    // (index.html counts documents per port from documents.csv: it differs too.)
    assert_eq!(
        check(&files)?,
        ["report_differs_from_entries", "row_differs_from_entries"]
    );
    Ok(())
}

#[test]
fn consecutive_exports_chain_with_no_gap_and_no_overlap() -> Result<()> {
    let ledger = Ledger::new()?;
    let dir = tempfile::tempdir()?;
    let middle = ledger.size() / 2;
    let (first, summary) = export(&ledger, dir.path(), "1.zip", 0..middle, None)?;
    let previous = PreviousExport {
        manifest_sha256: summary.manifest_sha256.clone(),
        range: summary.manifest.range,
    };
    let (second, _) = export(
        &ledger,
        dir.path(),
        "2.zip",
        middle..ledger.size(),
        Some(previous.clone()),
    )?;
    let verdict = verify_bundle(&second, Some(&first));
    assert!(verdict.is_clean(), "{:#?}", verdict.findings);
    // Documents issued in the first export and changed in the second: their as-issued columns
    // come from before the range.
    assert!(verdict.documents_issued_before > 0 || verdict.documents_checked > 0);

    let (gap, _) = export(
        &ledger,
        dir.path(),
        "gap.zip",
        middle + 1..ledger.size(),
        Some(previous.clone()),
    )?;
    assert_eq!(rules(&verify_bundle(&gap, Some(&first))), ["series_gap"]);
    let (overlap, _) = export(
        &ledger,
        dir.path(),
        "overlap.zip",
        middle - 1..ledger.size(),
        Some(previous),
    )?;
    assert_eq!(
        rules(&verify_bundle(&overlap, Some(&first))),
        ["series_overlap"]
    );
    let (unchained, _) = export(
        &ledger,
        dir.path(),
        "unchained.zip",
        middle..ledger.size(),
        None,
    )?;
    assert_eq!(
        rules(&verify_bundle(&unchained, Some(&first))),
        ["series_broken"]
    );
    Ok(())
}

#[test]
fn an_interrupted_export_leaves_no_bundle_behind() -> Result<()> {
    let ledger = Ledger::new()?;
    let dir = tempfile::tempdir()?;
    let signer = key(AUTHORITY)?;
    let checkpoint = ledger.checkpoint()?;
    let request = ExportRequest {
        authority: AUTHORITY.parse()?,
        range: 0..ledger.size(),
        signer: &signer,
        previous: None,
        created_at: chrono::Utc::now(),
        membership: &ledger.membership,
    };
    // The entries stop with an error halfway, as a failing database read would.
    let wanted = ledger.entitled(AUTHORITY, 0..ledger.size());
    let half = wanted.len() / 2;
    let entries = wanted.into_iter().enumerate().map(|(n, e)| {
        if n == half {
            Err(ExportError::Source("the database went away".into()))
        } else {
            Ok(e)
        }
    });
    let out = dir.path().join("nl.zip");
    let mut source = &ledger;
    let failed = write_bundle(&out, &request, &checkpoint, entries, &mut source);
    assert!(matches!(failed, Err(ExportError::Source(_))), "{failed:?}");
    let left: Vec<_> = std::fs::read_dir(dir.path())?.collect::<Result<_, _>>()?;
    assert!(left.is_empty(), "nothing left behind: {left:?}");

    // Entries out of order are refused, and leave nothing either.
    let mut reversed = ledger.entitled(AUTHORITY, 0..ledger.size());
    reversed.reverse();
    let refused = write_bundle(
        &out,
        &request,
        &checkpoint,
        reversed.into_iter().map(Ok),
        &mut source,
    );
    assert!(
        matches!(refused, Err(ExportError::Order { .. })),
        "{refused:?}"
    );
    assert_eq!(std::fs::read_dir(dir.path())?.count(), 0);
    Ok(())
}

#[test]
fn the_bundles_json_files_match_their_published_schemas() -> Result<()> {
    let ledger = Ledger::new()?;
    let dir = tempfile::tempdir()?;
    let (path, _) = export(&ledger, dir.path(), "nl.zip", 0..ledger.size(), None)?;
    let files = unzip(&path)?;
    let check = |schema: &str, value: &serde_json::Value| -> Result<()> {
        let validator = lading_e2e::schemas::validator(schema)?;
        let errors: Vec<String> = validator
            .iter_errors(value)
            .map(|e| e.to_string())
            .collect();
        anyhow::ensure!(errors.is_empty(), "{schema}: {errors:?}\n{value}");
        Ok(())
    };
    check(
        "export-manifest.json",
        &serde_json::from_slice(&files["manifest.json"])?,
    )?;
    check(
        "export-parties.json",
        &serde_json::from_slice(&files["parties.json"])?,
    )?;
    check("jwk.json", &serde_json::from_slice(&files["registry.jwk"])?)?;
    let mut lines = 0;
    for (file, schema) in [
        ("entries.jsonl", "export-entry-line.json"),
        ("proofs.jsonl", "export-proof-line.json"),
    ] {
        for line in String::from_utf8(files[file].clone())?.lines() {
            check(schema, &serde_json::from_str(line)?)?;
            lines += 1;
        }
    }
    assert!(lines > 20);
    // And a manifest with a member the format does not have is refused by the schema.
    let mut manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"])?;
    manifest["note"] = serde_json::json!("extra");
    assert!(check("export-manifest.json", &manifest).is_err());
    Ok(())
}

#[test]
fn progress_is_told_as_the_export_and_the_verification_go() -> Result<()> {
    let ledger = Ledger::new()?;
    let dir = tempfile::tempdir()?;
    let signer = key(AUTHORITY)?;
    let size = ledger.size();
    let request = ExportRequest {
        authority: AUTHORITY.parse()?,
        range: 0..size,
        signer: &signer,
        previous: None,
        created_at: chrono::Utc::now(),
        membership: &ledger.membership,
    };
    let wanted = ledger.entitled(AUTHORITY, 0..size);
    let last_index = wanted.last().map(|(i, _)| *i).expect("entitled entries");
    let path = dir.path().join("nl.zip");
    let mut told: Vec<(u64, u64)> = Vec::new();
    let mut source = &ledger;
    lading_export::write_bundle_with_progress(
        &path,
        &request,
        &ledger.checkpoint()?,
        wanted.clone().into_iter().map(Ok),
        &mut source,
        &mut |entries, reached| told.push((entries, reached)),
    )?;
    assert!(!told.is_empty());
    assert!(told
        .windows(2)
        .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
    assert_eq!(told.last(), Some(&(wanted.len() as u64, last_index + 1)));

    let mut checked: Vec<(u64, u64)> = Vec::new();
    let verdict = lading_export::verify_bundle_with_progress(&path, None, &mut |n, total| {
        checked.push((n, total))
    });
    assert!(verdict.is_clean(), "{:#?}", verdict.findings);
    assert_eq!(
        checked.last(),
        Some(&(wanted.len() as u64, wanted.len() as u64))
    );
    Ok(())
}
