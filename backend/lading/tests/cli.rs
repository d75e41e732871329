//! The binary's command line as an operator meets it: every command listed, and a refusal that
//! names its reason and exits non-zero. (Being the package's own integration test, it also makes
//! `cargo test --workspace` build `target/<profile>/lading` with the workspace's features, which
//! the end-to-end tests then run — `tests/run.sh` passes it on as `LADING_BIN`.)

use std::process::Command;

fn lading() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lading"))
}

#[test]
fn help_lists_every_command() {
    let out = lading().arg("--help").output().expect("run lading --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for command in [
        "serve",
        "replica",
        "reconcile",
        "demo",
        "migrate",
        "import-parties",
        "keygen",
        "sign",
        "ca",
        "verify-proof",
        "verify-consistency",
        "export",
        "verify-bundle",
        "user",
        "party",
    ] {
        assert!(
            help.lines()
                .any(|line| line.trim_start().starts_with(&format!("{command} "))),
            "`{command}` missing from --help:\n{help}"
        );
    }
}

#[test]
fn an_unknown_command_is_refused_with_usage() {
    let out = lading().arg("frobnicate").output().expect("run lading");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unrecognized subcommand 'frobnicate'"),
        "{err}"
    );
}

#[test]
fn verifying_a_missing_bundle_names_the_file_and_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-bundle.zip");
    let out = lading()
        .arg("verify-bundle")
        .arg(&missing)
        .output()
        .expect("run lading verify-bundle");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("[not_a_bundle]"), "{stdout}");
    assert!(stdout.contains("no-such-bundle.zip"), "{stdout}");
}
