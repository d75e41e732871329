//! `lading export` (on a customs authority's node) and `lading verify-bundle` (anywhere):
//! customs batch exports, written by `lading_export` and checked offline.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use lading_export::node::{export_from_database, fold_membership, NodeDatabase, Wanted};

use crate::config::Config;
use crate::database::Database;
use crate::replica::NodeInputs;

/// `lading export`: the authority's entries from its own node, as one signed bundle.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The customs authority (the node's own party).
    #[arg(long)]
    party: String,
    /// The first ledger index (default: where the last export ended with --since-last, else 0).
    #[arg(long)]
    from: Option<u64>,
    /// One past the last ledger index (default: the latest checkpoint the node verified).
    #[arg(long)]
    to: Option<u64>,
    /// Start where this node's last export for the party ended, and chain to it.
    #[arg(long)]
    since_last: bool,
    /// A time window instead of indexes (RFC 3339, half-open [since, until)): the entries
    /// sequenced from this time, as far as the checkpoints the node verified tell.
    #[arg(long, value_parser = rfc3339, conflicts_with_all = ["from", "to", "since_last"])]
    since: Option<chrono::DateTime<chrono::Utc>>,
    /// The end of the time window (default: the latest checkpoint the node verified).
    #[arg(long, value_parser = rfc3339, conflicts_with_all = ["from", "to", "since_last"])]
    until: Option<chrono::DateTime<chrono::Utc>>,
    /// Where to write the bundle (a .zip); it appears only when whole.
    #[arg(long)]
    out: PathBuf,
}

impl ExportArgs {
    pub fn run(&self, config: &Config) -> Result<()> {
        let authority = self
            .party
            .parse()
            .map_err(|e| anyhow::anyhow!("--party {:?}: {e}", self.party))?;
        if self.out.exists() {
            bail!(
                "{} exists; refusing to overwrite an export",
                self.out.display()
            );
        }
        let key_path = config.portal.signing_key.as_deref().context(
            "the export is signed with the party's key: set [portal] signing_key (LADING_PORTAL_SIGNING_KEY)",
        )?;
        let signer = crate::custody::load(key_path, config.portal.allow_test_keys)?;
        let inputs = NodeInputs::load(config)?;
        let db = Database::open(config)?;
        let result = (|| {
            // The node's database read as it is: no restore, a page at a time (the rows are
            // checked against the checkpoint the node verified).
            db.urls.migrate()?;
            let store = lading_replica::node::open_store(&db.urls.url, 2)
                .context("cannot connect to the node's database")?;
            let size = {
                let mut conn = store.conn()?;
                lading_store::replica::latest_verified_checkpoint(&mut conn)?
                    .map_or(0, |row| row.size as u64)
            };
            let membership = fold_membership(&store, &inputs.genesis, size)?;
            crate::custody::check_owner(&signer, &inputs.party, &membership)?;
            // A time window is the range between the checkpoints signed before its ends.
            let (from, to) = if self.since.is_some() || self.until.is_some() {
                let (from, to) = lading_export::window::node_range(
                    &store,
                    &inputs.registry_jwk,
                    self.since,
                    self.until,
                )?;
                (Some(from), to)
            } else {
                (self.from, self.to)
            };
            let database = NodeDatabase {
                store: &store,
                party: inputs.party.clone(),
                membership,
                registry_key: inputs.registry_jwk.clone(),
                block_size: inputs.block_size,
            };
            let bar = progress_bar("exporting");
            let summary = export_from_database(
                &database,
                &signer,
                &authority,
                &Wanted {
                    from,
                    to,
                    since_last: self.since_last,
                },
                &self.out,
                &mut |p| {
                    bar.set_length(p.range.end - p.range.start);
                    bar.set_position(p.reached - p.range.start);
                    bar.set_message(format!("{} entries", p.entries));
                },
            );
            bar.finish_and_clear();
            let summary = summary?;
            let m = &summary.manifest;
            println!(
                "{}: {} entries ({} transitions, {} events, {} documents) of indexes {}..{} for {}, proved against the checkpoint of size {}; manifest SHA-256 {}{}",
                summary.path.display(),
                m.counts.entries,
                m.counts.transitions,
                m.counts.events,
                m.counts.documents,
                m.range.from,
                m.range.to,
                m.authority,
                m.checkpoint.size,
                summary.manifest_sha256,
                m.previous
                    .as_ref()
                    .map(|p| format!(", after the export of {}..{}", p.range.from, p.range.to))
                    .unwrap_or_default()
            );
            Ok(())
        })();
        let closed = db.close();
        result.and(closed)
    }
}

/// A progress bar on standard error for a long export or verification; indicatif draws
/// nothing when standard error is not a terminal (a pipe, a log, a test), and the bar is
/// cleared before the result is printed.
fn progress_bar(what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{prefix} [{bar:30}] {percent:>3}% {msg} ({elapsed}, {eta} left)",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(what.to_owned());
    bar
}

/// An RFC 3339 time on the command line.
fn rfc3339(raw: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("not an RFC 3339 time (2026-01-01T00:00:00Z): {e}"))
}

/// `lading verify-bundle`: checks a bundle with nothing but the file.
#[derive(Debug, clap::Args)]
pub struct VerifyBundleArgs {
    /// The bundle (.zip).
    file: PathBuf,
    /// The export before it in its series: the chain between the two is checked too.
    #[arg(long)]
    previous: Option<PathBuf>,
    /// Cross-check the bundle against the authority's own replica (its face, replica.listen):
    /// every entry on the replica with the same leaf, every transition and event the replica
    /// holds in the range in the bundle, the checkpoint one the replica verified or extends.
    #[arg(long, value_name = "URL")]
    against_replica: Option<String>,
    /// The authority's consortium certificate (PEM) for the replica (default: [replica] cert).
    #[arg(long, requires = "against_replica")]
    cert: Option<PathBuf>,
    /// Its private key (default: [replica] key).
    #[arg(long, requires = "against_replica")]
    key: Option<PathBuf>,
    /// The consortium CA (default: [replica] ca).
    #[arg(long, requires = "against_replica")]
    ca: Option<PathBuf>,
}

impl VerifyBundleArgs {
    pub fn run(&self, config: &dyn Fn() -> Result<Config>) -> Result<()> {
        let offline = self.verify_offline();
        let crossed = match &self.against_replica {
            Some(url) => Some(self.cross_check(url, config)?),
            None => None,
        };
        match (offline, crossed) {
            (Ok(()), None | Some(true)) => Ok(()),
            (Err(e), _) => Err(e),
            (Ok(()), Some(false)) => bail!(
                "{} does not agree with the authority's replica",
                self.file.display()
            ),
        }
    }

    /// The cross-check against the replica at `url`; whether it is clean.
    fn cross_check(&self, url: &str, config: &dyn Fn() -> Result<Config>) -> Result<bool> {
        let (ca, cert, key) = match (&self.ca, &self.cert, &self.key) {
            (Some(ca), Some(cert), Some(key)) => (ca.clone(), cert.clone(), key.clone()),
            (ca, cert, key) => {
                let config = config()?;
                let pick = |given: &Option<PathBuf>, configured: &Option<PathBuf>, what: &str| {
                    given
                        .clone()
                        .or_else(|| configured.clone())
                        .with_context(|| {
                            format!("--against-replica needs --{what} (or [replica] {what})")
                        })
                };
                (
                    pick(ca, &config.replica.ca, "ca")?,
                    pick(cert, &config.replica.cert, "cert")?,
                    pick(key, &config.replica.key, "key")?,
                )
            }
        };
        let authority = lading_export::crosscheck::authority_of(&self.file).map_err(|e| {
            anyhow::anyhow!("cannot read the authority of {}: {e}", self.file.display())
        })?;
        let mut replica = crate::crosscheck::HttpReplica::new(url, &authority, &ca, &cert, &key)?;
        let result = lading_export::crosscheck::cross_check(&self.file, &mut replica);
        println!(
            "against the replica at {url}: indexes {}..{}, checkpoint of size {} ({}); {} entries of the bundle on the replica with the same leaf, {} transitions and events held there in the range",
            result.from,
            result.to,
            result.checkpoint_size,
            if result.checkpoint_held {
                "one the replica verified"
            } else {
                "its root recomputed from the replica's verified leaves"
            },
            result.entries_matched,
            result.replica_held
        );
        if result.is_clean() {
            println!("AGREES: the replica holds every entry of the bundle, and the bundle every entry of the replica in its range.");
            return Ok(true);
        }
        println!(
            "DISAGREES: {} finding(s) against the replica",
            result.findings.len()
        );
        for finding in &result.findings {
            println!("  {finding}");
        }
        Ok(false)
    }

    fn verify_offline(&self) -> Result<()> {
        let bar = progress_bar("verifying");
        let verdict = lading_export::verify_bundle_with_progress(
            &self.file,
            self.previous.as_deref(),
            &mut |checked, total| {
                bar.set_length(total);
                bar.set_position(checked);
            },
        );
        bar.finish_and_clear();
        if let Some(m) = &verdict.manifest {
            println!(
                "{}: export for {} of ledger indexes {}..{}, made {} by {}",
                self.file.display(),
                m.authority,
                m.range.from,
                m.range.to,
                m.created_at,
                m.exporter
            );
            println!(
                "  {} entries ({} transitions, {} events), {} documents, proved against the registry's checkpoint of size {} (root {})",
                m.counts.entries,
                m.counts.transitions,
                m.counts.events,
                m.counts.documents,
                m.checkpoint.size,
                m.checkpoint.root
            );
            println!(
                "  checked: {} signatures and inclusion proofs; {} documents whole, {} (issued before the range) by their changes in it",
                verdict.entries_checked, verdict.documents_checked, verdict.documents_issued_before
            );
        }
        if verdict.is_clean() {
            println!("VERIFIED: every rule holds.");
            return Ok(());
        }
        println!("FAILED: {} finding(s)", verdict.findings.len());
        for finding in &verdict.findings {
            println!("  {finding}");
        }
        bail!("{} does not verify", self.file.display())
    }
}
