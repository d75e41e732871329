//! The customs bundle as a Frictionless Data Package, checked with other people's tools: the
//! `frictionless` validator (PyPI) accepts `datapackage.json` and every table against its
//! schema, and Python's `csv` module loads each CSV with the rows the manifest counts.
//!
//! The tools run from the virtual environment `deploy/ensure-deps.sh --dev` makes
//! (`LADING_PY_VENV`, default `~/.cache/lading/venv`); without it these tests fail, naming
//! the script, rather than pass unchecked.
//!
//! What must hold:
//! - `frictionless validate datapackage.json` says valid for an unzipped bundle;
//! - it says invalid when a table's cell breaks its column's type (so the check checks);
//! - `csv.DictReader` reads every table with the header `datapackage.json` gives and the
//!   manifest's row counts.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use anyhow::{Context, Result};
use lading_e2e::export_ledger::{export, unzip, Ledger};
use lading_e2e::harness::py_venv;
use lading_export::Manifest;

/// A whole export of the in-memory ledger, unzipped into `dir`; its manifest.
fn unzipped_bundle(dir: &Path) -> Result<(Manifest, BTreeMap<String, Vec<u8>>)> {
    let ledger = Ledger::new()?;
    let (path, summary) = export(&ledger, dir, "nl.zip", 0..ledger.size(), None)?;
    let files = unzip(&path)?;
    let out = dir.join("bundle");
    std::fs::create_dir_all(&out)?;
    for (name, bytes) in &files {
        std::fs::write(out.join(name), bytes)?;
    }
    Ok((summary.manifest, files))
}

fn run(command: &mut Command) -> Result<Output> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    Ok(output)
}

/// `frictionless validate --json datapackage.json` in `bundle`: its report.
fn validate(venv: &Path, bundle: &Path) -> Result<serde_json::Value> {
    let output = run(Command::new(venv.join("bin/frictionless"))
        .args(["validate", "--json", "datapackage.json"])
        .current_dir(bundle))?;
    serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "frictionless printed no JSON report (status {}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[test]
fn the_data_package_validates_with_frictionless() -> Result<()> {
    let venv = py_venv(&["frictionless", "python"])?;
    let dir = tempfile::tempdir()?;
    unzipped_bundle(dir.path())?;
    let bundle = dir.path().join("bundle");
    let report = validate(&venv, &bundle)?;
    assert_eq!(
        report["valid"],
        serde_json::json!(true),
        "frictionless finds the data package invalid:\n{}",
        serde_json::to_string_pretty(&report)?
    );
    // Each of the three tables was read as a table, with rows.
    let tasks = report["tasks"].as_array().context("the report's tasks")?;
    for table in ["documents", "transitions", "events"] {
        let task = tasks
            .iter()
            .find(|t| t["name"] == table)
            .with_context(|| format!("frictionless did not validate {table}"))?;
        assert_eq!(task["valid"], serde_json::json!(true), "{table}");
        assert!(
            task["stats"]["rows"].as_u64().unwrap_or(0) > 0,
            "{table} was read with no rows: {task}"
        );
    }
    Ok(())
}

#[test]
fn frictionless_catches_a_cell_that_breaks_its_type() -> Result<()> {
    let venv = py_venv(&["frictionless", "python"])?;
    let dir = tempfile::tempdir()?;
    unzipped_bundle(dir.path())?;
    let bundle = dir.path().join("bundle");
    // The second row's time (a datetime column) becomes a word.
    let path = bundle.join("transitions.csv");
    let text = std::fs::read_to_string(&path)?;
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut cells: Vec<&str> = lines[2].split(',').collect();
    cells[1] = "yesterday";
    lines[2] = cells.join(",");
    std::fs::write(&path, lines.join("\n") + "\n")?;
    let report = validate(&venv, &bundle)?;
    assert_eq!(report["valid"], serde_json::json!(false), "{report}");
    let text = report.to_string();
    assert!(
        text.contains("type-error") && text.contains("yesterday"),
        "the report names the cell: {text}"
    );
    Ok(())
}

/// Loads every table of `datapackage.json` with `csv.DictReader`: `{name: [header, rows]}`.
const LOAD_CSV: &str = r#"
import csv, json, sys
package = json.load(open("datapackage.json", encoding="utf-8"))
out = {}
for resource in package["resources"]:
    if resource.get("format") != "csv":
        continue
    with open(resource["path"], newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        header = reader.fieldnames
    want = [field["name"] for field in resource["schema"]["fields"]]
    if header != want:
        sys.exit(f"{resource['path']}: header {header}, datapackage.json says {want}")
    for n, row in enumerate(rows, start=2):
        if None in row or any(v is None for v in row.values()):
            sys.exit(f"{resource['path']}:{n}: not as many cells as columns")
    out[resource["name"]] = [header, len(rows)]
print(json.dumps(out))
"#;

#[test]
fn pythons_csv_module_loads_every_table_with_the_manifests_counts() -> Result<()> {
    let venv = py_venv(&["frictionless", "python"])?;
    let dir = tempfile::tempdir()?;
    let (manifest, _) = unzipped_bundle(dir.path())?;
    let output = run(Command::new(venv.join("bin/python"))
        .args(["-c", LOAD_CSV])
        .current_dir(dir.path().join("bundle")))?;
    assert!(
        output.status.success(),
        "python's csv module could not load the tables: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let loaded: BTreeMap<String, (Vec<String>, u64)> = serde_json::from_slice(&output.stdout)?;
    let counts = manifest.counts;
    let rows: BTreeMap<&str, u64> = loaded.iter().map(|(k, v)| (k.as_str(), v.1)).collect();
    assert_eq!(
        rows,
        BTreeMap::from([
            ("documents", counts.documents),
            ("events", counts.events),
            ("transitions", counts.transitions),
        ])
    );
    assert!(counts.documents > 0 && counts.events > 0 && counts.transitions > 0);
    assert_eq!(loaded["documents"].0[0], "reference");
    Ok(())
}
