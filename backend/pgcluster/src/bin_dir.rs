//! Locating the PostgreSQL server binaries.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::ClusterError;

/// Environment variable that overrides the search for server binaries.
pub const PG_BIN_ENV: &str = "LADING_PG_BIN";

/// Finds the directory holding `initdb` and `postgres`.
///
/// Order: `$LADING_PG_BIN` (must then be right: a wrong explicit choice is an
/// error, not something to silently route around); the server directory
/// `pg_config --bindir` reports, if it really has the server binaries
/// (Debian's `pg_config` comes with libpq and may name a version whose server
/// is not installed); the highest version under `/usr/lib/postgresql/*/bin`.
pub fn find_bin_dir() -> Result<PathBuf, ClusterError> {
    find_bin_dir_with(
        std::env::var_os(PG_BIN_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
    )
}

fn find_bin_dir_with(explicit: Option<PathBuf>) -> Result<PathBuf, ClusterError> {
    if let Some(dir) = explicit {
        if has_server_binaries(&dir) {
            return Ok(dir);
        }
        return Err(ClusterError::BinariesNotFound {
            searched: format!("{PG_BIN_ENV}={} has no initdb and postgres", dir.display()),
        });
    }
    let mut searched = Vec::new();
    match pg_config_bindir() {
        Some(dir) if has_server_binaries(&dir) => return Ok(dir),
        Some(dir) => searched.push(format!("pg_config --bindir = {}", dir.display())),
        None => searched.push("pg_config not found".to_owned()),
    }
    if let Some(dir) = highest_versioned_bin_dir(Path::new("/usr/lib/postgresql")) {
        return Ok(dir);
    }
    searched.push("/usr/lib/postgresql/*/bin".to_owned());
    Err(ClusterError::BinariesNotFound {
        searched: searched.join("; "),
    })
}

pub(crate) fn has_server_binaries(dir: &Path) -> bool {
    ["initdb", "postgres"]
        .iter()
        .all(|b| is_executable(&dir.join(b)))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn pg_config_bindir() -> Option<PathBuf> {
    let out = Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| PathBuf::from(text))
}

/// `<base>/<version>/bin` with the highest version that has the server
/// binaries; versions compare numerically ("15" > "9.6").
pub(crate) fn highest_versioned_bin_dir(base: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(base).ok()?;
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = parse_version(e.file_name().to_str()?)?;
            let bin = e.path().join("bin");
            has_server_binaries(&bin).then_some((version, bin))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, bin)| bin)
}

fn parse_version(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|p| p.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn fake_server(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        for b in ["initdb", "postgres"] {
            let p = dir.join(b);
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    #[test]
    fn versions_compare_numerically_and_need_server_binaries() {
        let base = tempfile::tempdir().unwrap();
        fake_server(&base.path().join("9.6/bin"));
        fake_server(&base.path().join("15/bin"));
        // Higher but client-only: must be skipped.
        std::fs::create_dir_all(base.path().join("17/bin")).unwrap();
        std::fs::create_dir_all(base.path().join("notaversion/bin")).unwrap();
        assert_eq!(
            highest_versioned_bin_dir(base.path()),
            Some(base.path().join("15/bin"))
        );
    }

    #[test]
    fn empty_base_finds_nothing() {
        let base = tempfile::tempdir().unwrap();
        assert_eq!(highest_versioned_bin_dir(base.path()), None);
        assert_eq!(
            highest_versioned_bin_dir(&base.path().join("missing")),
            None
        );
    }

    #[test]
    fn non_executable_files_do_not_count() {
        let base = tempfile::tempdir().unwrap();
        let bin = base.path().join("bin");
        fake_server(&bin);
        std::fs::set_permissions(bin.join("postgres"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        assert!(!has_server_binaries(&bin));
    }

    #[test]
    fn a_wrong_explicit_dir_is_an_error_naming_the_fix() {
        let base = tempfile::tempdir().unwrap();
        let err = find_bin_dir_with(Some(base.path().to_path_buf())).unwrap_err();
        assert_eq!(err.code(), "pg_binaries_not_found");
        let msg = err.to_string();
        assert!(msg.contains("LADING_PG_BIN"), "{msg}");
        assert!(msg.contains("deploy/ensure-deps.sh"), "{msg}");
    }

    #[test]
    fn a_right_explicit_dir_wins() {
        let base = tempfile::tempdir().unwrap();
        fake_server(base.path());
        assert_eq!(
            find_bin_dir_with(Some(base.path().to_path_buf())).unwrap(),
            base.path()
        );
    }

    #[test]
    fn finds_the_machine_binaries() {
        // The machine this project runs on has them (deploy/ensure-deps.sh).
        let dir = find_bin_dir().unwrap();
        assert!(has_server_binaries(&dir), "{}", dir.display());
    }
}
