//! `lading verify-consistency`: check that the registry's ledger only grows, from two signed
//! checkpoints and a consistency proof — fetched from the registry's public
//! `GET /v1/checkpoints/consistency`, or read from a saved answer (which a forwarder can keep,
//! pass on, and have anyone re-check offline).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use lading_domain::checkpoint::{Checkpoint, SignedCheckpoint};
use lading_domain::jws::Jwk;
use lading_domain::merkle::verify_consistency;
use serde::Deserialize;

use crate::cli::read_json;

/// Where the two checkpoints and the proof come from, and what to check them against.
#[derive(Debug, clap::Args)]
pub struct VerifyConsistency {
    /// The registry's public key (GET /v1/registry/key).
    #[arg(long)]
    registry_key: PathBuf,
    /// A saved answer of GET /v1/checkpoints/consistency (offline; - for stdin).
    #[arg(long, conflicts_with_all = ["registry", "from", "to"])]
    answer: Option<PathBuf>,
    /// The registry's base URL, to fetch the answer (e.g. https://registry.example:8443).
    #[arg(long)]
    registry: Option<String>,
    /// The older checkpoint's size.
    #[arg(long, conflicts_with = "old")]
    from: Option<u64>,
    /// The newer checkpoint's size (default: the registry's latest checkpoint).
    #[arg(long)]
    to: Option<u64>,
    /// A checkpoint kept earlier (its JSON from GET /v1/checkpoint, or its compact JWS): the
    /// proof must start from exactly this checkpoint. Gives --from when fetching.
    #[arg(long)]
    old: Option<PathBuf>,
    /// PEM CA certificate to trust for the registry's TLS (e.g. consortium/ca/ca.crt.pem).
    #[arg(long)]
    cacert: Option<PathBuf>,
    /// Write the fetched answer here, to keep or forward it.
    #[arg(long, requires = "registry")]
    save: Option<PathBuf>,
}

impl VerifyConsistency {
    pub fn run(&self) -> Result<()> {
        let jwk: Jwk = read_json(&self.registry_key)?;
        let key = jwk
            .verifying_key()
            .context("the registry key is not a valid Ed25519 JWK")?;
        let old = self.old.as_deref().map(kept_checkpoint).transpose()?;
        let text = match (&self.answer, &self.registry) {
            (Some(path), _) => crate::cli::read_input(path)?,
            (None, Some(base)) => {
                let from = self
                    .from
                    .or(old.as_ref().map(|c| c.unverified().size))
                    .context("give --from or --old")?;
                let text = self.fetch(base, from)?;
                if let Some(path) = &self.save {
                    std::fs::write(path, &text)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
                text
            }
            (None, None) => bail!("give a saved answer (--answer) or a registry (--registry)"),
        };
        let answer: lading_domain::ConsistencyAnswer =
            serde_json::from_str(&text).context("not an answer of /v1/checkpoints/consistency")?;
        let verify = |which: &str, signed: &str| -> Result<Checkpoint> {
            SignedCheckpoint::parse(signed)
                .with_context(|| format!("the {which} checkpoint is not a valid JWS"))?
                .verify(&key)
                .with_context(|| {
                    format!(
                        "the {which} checkpoint's signature does not verify with the registry key"
                    )
                })
        };
        let from = verify("old", &answer.from.signed)?;
        let to = verify("new", &answer.to.signed)?;
        if let Some(kept) = &old {
            if kept.unverified() != &from {
                bail!(
                    "the answer starts from the checkpoint of size {} root {}, not from the kept one of size {} root {}",
                    from.size,
                    from.root,
                    kept.unverified().size,
                    kept.unverified().root
                );
            }
        }
        if from.block_size != to.block_size {
            bail!(
                "the checkpoints have different block sizes ({} and {})",
                from.block_size,
                to.block_size
            );
        }
        verify_consistency(
            &answer.proof,
            from.size,
            from.root,
            to.size,
            to.root,
            to.block_size,
        )
        .map_err(|e| anyhow::anyhow!("{} ({})", e, e.code()))
        .context("INCONSISTENT: the consistency proof does not verify")?;
        {
            println!(
                "OK: the ledger of {} entries (root {}, signed {}) extends the ledger of {} entries (root {}, signed {}); both checkpoints signed by {}",
                to.size,
                to.root,
                to.time,
                from.size,
                from.root,
                from.time,
                jwk.kid()
            );
        }
        Ok(())
    }

    fn fetch(&self, base: &str, from: u64) -> Result<String> {
        let http = crate::cli::https_client(self.cacert.as_deref())?;
        let base = base.trim_end_matches('/');
        let get = |url: String| -> Result<String> {
            let response = http
                .get(&url)
                .send()
                .with_context(|| format!("cannot reach {base}"))?;
            let status = response.status();
            let body = response.text()?;
            if !status.is_success() {
                bail!("{url} answered {status}: {body}");
            }
            Ok(body)
        };
        let to = match self.to {
            Some(to) => to,
            None => {
                let latest: serde_json::Value =
                    serde_json::from_str(&get(format!("{base}/v1/checkpoint"))?)?;
                latest["size"]
                    .as_u64()
                    .context("the latest checkpoint has no size")?
            }
        };
        get(format!(
            "{base}/v1/checkpoints/consistency?from={from}&to={to}"
        ))
    }
}

/// The member of a kept checkpoint answer that is read (the rest may be left out).
#[derive(Debug, Deserialize)]
struct SignedField {
    signed: String,
}

/// A checkpoint the caller kept: a checkpoint answer (JSON with `signed`) or a compact JWS.
fn kept_checkpoint(path: &Path) -> Result<SignedCheckpoint> {
    let text = crate::cli::read_input(path)?;
    let text = text.trim();
    let compact = if text.starts_with('{') {
        let field: SignedField = serde_json::from_str(text)
            .with_context(|| format!("{} holds no signed checkpoint", path.display()))?;
        field.signed
    } else {
        text.to_owned()
    };
    SignedCheckpoint::parse(&compact)
        .with_context(|| format!("{} is not a signed checkpoint", path.display()))
}
