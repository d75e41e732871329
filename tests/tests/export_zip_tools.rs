//! A customs export bundle is an ordinary zip: the writer makes the container itself (its
//! entries deflated on several threads), so what ordinary tools make of it is checked here on
//! a bundle of the fixtures' samples.
//!
//! What must hold:
//! - Info-ZIP's `unzip -t` finds no error (every CRC checked);
//! - Python's `zipfile` reads exactly the bundle's files, in the format's order, each with the
//!   SHA-256 the signed manifest gives it; and `unzip` extracts them as regular files;
//! - `lading-export`'s verifier (the `zip` crate) finds the bundle clean.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use anyhow::Result;
use lading_e2e::export_ledger::{export, Ledger};
use lading_export::{verify_bundle, FILES};

#[test]
fn python_zipfile_and_unzip_open_a_bundle_and_find_the_manifests_hashes() -> Result<()> {
    let ledger = Ledger::new()?;
    let dir = tempfile::tempdir()?;
    let (path, summary) = export(&ledger, dir.path(), "nl.zip", 0..ledger.size(), None)?;
    let verdict = verify_bundle(&path, None);
    assert!(verdict.is_clean(), "{:#?}", verdict.findings);

    let unzip = Command::new("unzip").arg("-t").arg(&path).output()?;
    let said = String::from_utf8_lossy(&unzip.stdout);
    assert!(unzip.status.success(), "unzip -t: {said}");
    assert!(said.contains("No errors detected"), "unzip -t: {said}");

    let python = Command::new("python3")
        .arg("-c")
        .arg(
            "import hashlib, sys, zipfile\n\
             z = zipfile.ZipFile(sys.argv[1])\n\
             assert z.testzip() is None\n\
             for i in z.infolist():\n    \
             print(i.filename, hashlib.sha256(z.read(i)).hexdigest())\n",
        )
        .arg(&path)
        .output()?;
    assert!(
        python.status.success(),
        "python zipfile: {}",
        String::from_utf8_lossy(&python.stderr)
    );
    let listed: Vec<(String, String)> = String::from_utf8(python.stdout)?
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(name, sha)| (name.to_owned(), sha.to_owned()))
        .collect();
    assert_eq!(
        listed.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        FILES.to_vec()
    );
    for (name, sha) in &listed {
        if let Some(signed) = summary.manifest.files.get(name) {
            assert_eq!(sha, signed, "{name}");
        }
    }
    assert_eq!(summary.manifest.files.len(), FILES.len() - 2);

    // Extracted, each is a regular file a person can read.
    let out = dir.path().join("out");
    let extract = Command::new("unzip")
        .arg("-q")
        .arg(&path)
        .arg("-d")
        .arg(&out)
        .output()?;
    assert!(extract.status.success());
    for name in FILES {
        let meta = std::fs::metadata(out.join(name))?;
        assert!(meta.is_file(), "{name}");
    }
    Ok(())
}
