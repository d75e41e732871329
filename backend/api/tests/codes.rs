//! The one table of refusal codes ([`lading_api::codes::Code`]) against what the code answers
//! and what the README says.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use lading_api::codes::Code;

const BEGIN: &str = "<!-- codes:begin (generated from backend/api/src/codes.rs) -->\n";
const END: &str = "<!-- codes:end -->";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn every_code_is_named_once_with_a_status_and_a_sentence() {
    let mut seen = BTreeSet::new();
    for code in Code::ALL {
        assert!(seen.insert(code.as_str()), "{} twice", code.as_str());
        assert_eq!(Code::parse(code.as_str()), Some(*code));
        assert!((400..600).contains(&code.status()), "{}", code.as_str());
        assert!(code.sentence().ends_with('.'), "{}", code.as_str());
    }
}

/// The README's table is generated from the enum: `LADING_BLESS=1` writes it again.
#[test]
fn the_readme_table_is_the_enum() {
    let path = repo().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme
        .find(BEGIN)
        .expect("the README has the codes markers")
        + BEGIN.len();
    let end = start + readme[start..].find(END).expect("the README's end marker");
    let table = Code::markdown_table();
    if readme[start..end] != table {
        if std::env::var("LADING_BLESS").as_deref() == Ok("1") {
            let mut fixed = readme.clone();
            fixed.replace_range(start..end, &table);
            std::fs::write(&path, fixed).unwrap();
        } else {
            panic!(
                "README.md's table of codes differs from backend/api/src/codes.rs; \
                 run LADING_BLESS=1 cargo test -p lading-api --test codes"
            );
        }
    }
}

/// The codes a library names where it refuses something: `code: "..."` and the arms of each
/// `fn code(&self)`.
fn codes_in(source: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let quoted = |text: &str, found: &mut BTreeSet<String>| {
        for piece in text.split('"').skip(1).step_by(2) {
            if !piece.is_empty()
                && piece
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
                && piece.contains('_')
            {
                found.insert(piece.to_owned());
            }
        }
    };
    for (i, _) in source.match_indices("code: \"") {
        let rest = &source[i + "code: ".len()..];
        let literal = &rest[..rest[1..].find('"').map_or(0, |e| e + 2)];
        quoted(literal, &mut found);
    }
    for (i, _) in source.match_indices("fn code(&self) -> &'static str {") {
        let body = &source[i..];
        let end = body.find("\n    }\n").unwrap_or(body.len());
        quoted(&body[..end], &mut found);
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every code the registry, a replica or their faces can answer is in the table, so every
/// refusal has the status written there.
#[test]
fn every_code_the_server_names_is_in_the_table() {
    // Codes of errors that never reach an HTTP answer: the verifiers' own (a client's tools
    // print them), keys and canonical JSON inside the process, and values wrapped into
    // invalid_payload by the payload's parser.
    let internal = |code: &str| {
        code.starts_with("merkle_")
            || code.starts_with("proof_")
            || (code.starts_with("consistency_") && code != "consistency_from_after_to")
            || matches!(
                code,
                "invalid_checkpoint"
                    | "invalid_jwk"
                    | "missing_private_key"
                    | "non_canonical_json"
                    | "unrepresentable_json"
                    | "invalid_json"
                    | "checkpoint_size_mismatch"
            )
    };
    let mut files = Vec::new();
    for crate_dir in ["domain", "registry", "api", "replica"] {
        rust_files(
            &repo().join("backend").join(crate_dir).join("src"),
            &mut files,
        );
    }
    let mut missing = BTreeSet::new();
    for file in files {
        if file.ends_with("codes.rs") {
            continue;
        }
        for code in codes_in(&std::fs::read_to_string(&file).unwrap()) {
            if Code::parse(&code).is_none() && !internal(&code) {
                missing.insert(format!("{code} ({})", file.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "codes missing from backend/api/src/codes.rs: {missing:#?}"
    );
}
