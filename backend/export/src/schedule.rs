//! Scheduled exports on a customs authority's node: every interval, what is new since the last
//! export, written into a folder, the oldest bundles beyond the retention deleted. A failed
//! attempt is retried sooner (after a minute, doubling up to the interval) and shows in the
//! node's status until one works.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use lading_domain::{Jwk, SigningKey};
use lading_replica::node::{ExportsStatus, Node};

use crate::node::{export_from_node, plan, Wanted};
use crate::ExportError;

/// When and where.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub dir: PathBuf,
    pub interval: Duration,
    /// Bundles kept in `dir` (0: every one).
    pub retention: usize,
}

/// The first retry after a failure; it doubles up to the interval.
const FIRST_RETRY: Duration = Duration::from_secs(60);

/// Runs the schedule on a thread of its own, for the life of the process.
pub fn spawn(
    node: Node,
    registry_key: Jwk,
    signer: SigningKey,
    schedule: Schedule,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("lading-export".into())
        .spawn(move || run(&node, &registry_key, &signer, &schedule))
}

fn run(node: &Node, registry_key: &Jwk, signer: &SigningKey, schedule: &Schedule) {
    let mut status = ExportsStatus {
        dir: schedule.dir.display().to_string(),
        ..ExportsStatus::default()
    };
    // The first attempt soon after start (the node restored itself; a short wait lets its
    // follow loop take what is new).
    let mut wait = Duration::from_secs(1).min(schedule.interval);
    loop {
        status.next_at = chrono::Duration::from_std(wait)
            .ok()
            .map(|w| Utc::now() + w);
        node.set_exports_status(status.clone());
        std::thread::sleep(wait);
        match once(node, registry_key, signer, schedule) {
            Ok(written) => {
                if let Some((file, range)) = written {
                    tracing::info!(file = %file.display(), from = range.start, to = range.end, "scheduled export written");
                    status.last_file = Some(file.display().to_string());
                    status.last_range = Some([range.start, range.end]);
                    status.last_at = Some(Utc::now());
                }
                status.last_error = None;
                status.failures = 0;
                wait = schedule.interval;
            }
            Err(e) => {
                status.failures += 1;
                status.last_error = Some(e.to_string());
                tracing::warn!(error = %e, failures = status.failures, "scheduled export failed; retrying");
                let factor = 1u32 << status.failures.min(16).saturating_sub(1);
                wait = FIRST_RETRY.saturating_mul(factor).min(schedule.interval);
            }
        }
    }
}

/// One scheduled export: the file written and its range, or nothing when nothing is new.
fn once(
    node: &Node,
    registry_key: &Jwk,
    signer: &SigningKey,
    schedule: &Schedule,
) -> Result<Option<(PathBuf, std::ops::Range<u64>)>, ExportError> {
    let authority = node.party().clone();
    let since_last = Wanted {
        since_last: true,
        ..Wanted::default()
    };
    let range = plan(node.store(), &authority, &since_last)?;
    if range.is_empty() {
        return Ok(None);
    }
    std::fs::create_dir_all(&schedule.dir)?;
    let file = schedule.dir.join(bundle_name(authority.as_str(), &range));
    let wanted = Wanted {
        to: Some(range.end),
        ..since_last
    };
    let summary = export_from_node(node, registry_key, signer, &authority, &wanted, &file)?;
    prune(&schedule.dir, authority.as_str(), schedule.retention)?;
    let written = summary.manifest.range;
    Ok(Some((file, written.from..written.to)))
}

/// `<authority>-<from>-<to>.zip`, the indexes zero-padded so that names sort as the series.
pub fn bundle_name(authority: &str, range: &std::ops::Range<u64>) -> String {
    format!("{authority}-{:012}-{:012}.zip", range.start, range.end)
}

/// Deletes the oldest of `authority`'s bundles in `dir` beyond the `keep` newest.
fn prune(dir: &Path, authority: &str, keep: usize) -> Result<(), ExportError> {
    if keep == 0 {
        return Ok(());
    }
    let prefix = format!("{authority}-");
    let mut bundles: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".zip"))
        })
        .collect();
    bundles.sort();
    let excess = bundles.len().saturating_sub(keep);
    for old in &bundles[..excess] {
        std::fs::remove_file(old)?;
        tracing::info!(file = %old.display(), "an old scheduled export deleted (retention)");
    }
    Ok(())
}
