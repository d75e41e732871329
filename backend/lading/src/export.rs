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
            let database = NodeDatabase {
                store: &store,
                party: inputs.party.clone(),
                membership,
                registry_key: inputs.registry_jwk.clone(),
                block_size: inputs.block_size,
            };
            let summary = export_from_database(
                &database,
                &signer,
                &authority,
                &Wanted {
                    from: self.from,
                    to: self.to,
                    since_last: self.since_last,
                },
                &self.out,
            )?;
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

/// `lading verify-bundle`: checks a bundle with nothing but the file.
#[derive(Debug, clap::Args)]
pub struct VerifyBundleArgs {
    /// The bundle (.zip).
    file: PathBuf,
    /// The export before it in its series: the chain between the two is checked too.
    #[arg(long)]
    previous: Option<PathBuf>,
}

impl VerifyBundleArgs {
    pub fn run(&self) -> Result<()> {
        let verdict = lading_export::verify_bundle(&self.file, self.previous.as_deref());
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
