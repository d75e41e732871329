//! The command line.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use lading_domain::checkpoint::SignedCheckpoint;
use lading_domain::jws::Jwk;
use lading_domain::merkle::{leaf_hash, verify_inclusion};
use lading_domain::Digest;

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "lading",
    version,
    about = "A registry of electronic bills of lading with Merkle checkpoints"
)]
pub struct Cli {
    /// Configuration file (TOML). Default: ./lading.toml when it exists.
    #[arg(long, global = true, env = "LADING_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the registry over HTTPS (needs a signing key and a TLS certificate).
    Serve,
    /// Run a party's replica: follow the registry over mutual TLS, check every entry and
    /// checkpoint, keep them in the replica's own database (settings: [replica]).
    Replica,
    /// Reconcile replicas now, through the running registry, as its operator (the registry's
    /// consortium certificate, [reconcile] cert/key): each replica compared from the top of
    /// the Merkle tree down, what it lost or had altered put back, findings kept as incidents.
    Reconcile {
        /// The registry's base URL (default: https://<server.bind>).
        #[arg(long)]
        registry: Option<String>,
        /// Only this party's replica (default: every replica in [reconcile] replicas).
        #[arg(long)]
        party: Option<String>,
    },
    /// Run a complete local registry with sample parties and bills of lading: embedded
    /// PostgreSQL, self-signed TLS, TEST keys from fixtures/. Data is kept in --data-dir.
    Demo {
        /// Where the demo keeps its database and TLS material.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Address to serve on (loopback only by default).
        #[arg(long, default_value = "127.0.0.1:8443")]
        bind: std::net::SocketAddr,
    },
    /// Apply the database migrations and exit.
    Migrate,
    /// Import a party registry (parties.json with public JWKs) and optional API tokens.
    ImportParties {
        file: PathBuf,
        /// JSON object: party id -> bearer token.
        #[arg(long)]
        tokens: Option<PathBuf>,
    },
    /// Generate an Ed25519 key pair as OKP JWKs: <out> (private, 0600) and <out>.pub.
    Keygen {
        /// The key id (kid) to put in the JWKs and in every JWS header.
        #[arg(long)]
        kid: String,
        /// Where to write the private JWK; the public one goes to <out>.pub.
        #[arg(long)]
        out: PathBuf,
        /// Mark the key as a TEST key (refused by non-demo registries).
        #[arg(long)]
        test: bool,
    },
    /// Sign a transition or event payload (JSON file, or - for stdin) with a private JWK.
    /// Prints the compact JWS. The payload is checked and canonicalised (RFC 8785) first.
    Sign {
        #[arg(long)]
        key: PathBuf,
        #[arg(long, value_enum, default_value_t = Kind::Transition)]
        kind: Kind,
        payload: PathBuf,
    },
    /// The consortium's certificates for mutual TLS between the registry and the replicas:
    /// `ca init` makes the CA, `ca issue` a party's certificate and key.
    Ca {
        #[command(subcommand)]
        command: crate::ca::CaCommand,
    },
    /// Verify an inclusion proof offline: the proof answer of GET /v1/entries/{i}/proof, the
    /// registry's public JWK, and the entry (its compact JWS) or its leaf hash.
    VerifyProof {
        /// The JSON answer of GET /v1/entries/{index}/proof.
        #[arg(long)]
        proof: PathBuf,
        /// The registry's public key (GET /v1/registry/key).
        #[arg(long)]
        registry_key: PathBuf,
        /// File holding the entry's compact JWS.
        #[arg(long, conflicts_with = "leaf_hash")]
        entry: Option<PathBuf>,
        /// The entry's leaf hash, hex.
        #[arg(long)]
        leaf_hash: Option<String>,
    },
    /// Verify that the ledger only grows: two signed checkpoints and the consistency proof
    /// between them, fetched from GET /v1/checkpoints/consistency (--registry, --from or
    /// --old, optional --to) or read from a saved answer (--answer). Exits non-zero when
    /// anything fails to verify.
    VerifyConsistency(crate::consistency::VerifyConsistency),
    /// A customs authority's export from its own node: every entry of a range it is entitled
    /// to, with proofs, as one signed bundle (a zip). Signed with [portal] signing_key.
    Export(crate::export::ExportArgs),
    /// Check an export bundle offline: the manifest's signature and hashes, every entry's
    /// signature and proof, the CSV tables against the signed entries, and the chain to the
    /// previous export (--previous); with --against-replica, also against the authority's own
    /// replica (nothing omitted). Exits non-zero on any failure, naming file, line and rule.
    VerifyBundle(crate::export::VerifyBundleArgs),
    /// A party's API credentials (bearer secrets with scopes): `issue` (prints the secret
    /// once), `list`, `revoke`. Run on the registry's host, against its database.
    Token {
        #[command(subcommand)]
        command: crate::token::TokenCommand,
    },
    /// Which parties may submit statements another party signed (a forwarder submitting for
    /// its customer): `add`, `list`, `remove`. Run on the registry's host, against its
    /// database; the party's admin does the same over the API (/v1/submitters).
    Submitter {
        #[command(subcommand)]
        command: crate::submitter::SubmitterCommand,
    },
    /// The people who sign in to this node's web portal ([portal]): `add`, `list`, `disable`,
    /// `passwd`. Passwords come from standard input or --password-file, never the command line.
    User {
        #[command(subcommand)]
        command: crate::user::UserCommand,
    },
    /// A local PostgreSQL primary and its synchronous standby for trying failover: `run` (makes
    /// and runs both, writes the registry's [database] settings), `promote` (the standby).
    Cluster {
        #[command(subcommand)]
        command: crate::cluster::ClusterCommand,
    },
    /// The consortium's membership on the ledger: `add` and `remove` a party (the operator),
    /// `add-key` and `revoke-key` (the party itself, or the operator), `list`.
    Party {
        #[command(subcommand)]
        command: crate::party::PartyCommand,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Kind {
    Transition,
    Event,
}

impl Cli {
    pub fn run(self) -> Result<()> {
        let config = || Config::load(self.config.as_deref());
        match &self.command {
            Command::Serve => crate::serve::serve(config()?),
            Command::Party { command } => command.run(),
            Command::Cluster { command } => command.run(),
            Command::User { command } => command.run(&config()?),
            Command::Token { command } => command.run(&config()?),
            Command::Submitter { command } => command.run(&config()?),
            Command::Replica => crate::replica::replica(config()?),
            Command::Reconcile { registry, party } => {
                crate::reconcile::run(&config()?, registry.as_deref(), party.as_deref())
            }
            Command::Demo { data_dir, bind } => {
                let mut config = config()?;
                if let Some(dir) = data_dir {
                    config.data_dir = dir.clone();
                }
                config.server.bind = *bind;
                crate::demo::run(config)
            }
            Command::Migrate => {
                let config = config()?;
                let db = crate::database::Database::open(&config)?;
                let applied = db.urls.migrate()?;
                println!("applied {applied} migration(s)");
                db.close()
            }
            Command::ImportParties { file, tokens } => {
                let config = config()?;
                let db = crate::database::Database::open(&config)?;
                db.urls.migrate()?;
                let store = db.urls.store(1)?;
                let parties: crate::parties::PartyFile = read_json(file)?;
                let tokens = match tokens {
                    Some(path) => read_json(path)?,
                    None => Default::default(),
                };
                let n = crate::parties::import(
                    &store,
                    &parties,
                    &tokens,
                    config.registry.allow_test_keys,
                )?;
                println!("imported {n} parties");
                drop(store);
                db.close()
            }
            Command::Keygen { kid, out, test } => keygen(kid, out, *test),
            Command::Sign { key, kind, payload } => sign(key, *kind, payload),
            Command::Ca { command } => crate::ca::run(command),
            Command::VerifyProof {
                proof,
                registry_key,
                entry,
                leaf_hash,
            } => verify_proof(proof, registry_key, entry.as_deref(), leaf_hash.as_deref()),
            Command::VerifyConsistency(args) => args.run(),
            Command::Export(args) => args.run(&config()?),
            Command::VerifyBundle(args) => args.run(&config),
        }
    }
}

pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = read_input(path)?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON of the expected shape", path.display()))
}

pub fn read_input(path: &Path) -> Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn keygen(kid: &str, out: &Path, test: bool) -> Result<()> {
    let kid = kid
        .parse()
        .map_err(|e| anyhow::anyhow!("invalid kid {kid:?}: {e}"))?;
    let jwk = Jwk::generate(kid, test);
    let public_path = PathBuf::from(format!("{}.pub", out.display()));
    for path in [out, public_path.as_path()] {
        if path.exists() {
            bail!("{} exists; refusing to overwrite a key", path.display());
        }
    }
    crate::tls::write_private(out, serde_json::to_string_pretty(&jwk)?.as_bytes())?;
    std::fs::write(
        &public_path,
        serde_json::to_string_pretty(&jwk.to_public())?,
    )?;
    println!(
        "private key: {}\npublic key:  {}",
        out.display(),
        public_path.display()
    );
    Ok(())
}

fn sign(key: &Path, kind: Kind, payload: &Path) -> Result<()> {
    let jwk: Jwk = read_json(key)?;
    let signer = jwk
        .signing_key()
        .context("the JWK cannot sign (is it the private key?)")?;
    let value: serde_json::Value = read_json(payload)?;
    let compact = match kind {
        Kind::Transition => {
            let payload = lading_domain::transition::TransitionPayload::from_json(&value)
                .context("not a valid transition payload")?;
            payload.sign(&signer)
        }
        Kind::Event => {
            let payload = lading_domain::event::ShipmentEvent::from_json(&value)
                .context("not a valid shipment event")?;
            payload.sign(&signer)
        }
    };
    println!("{compact}");
    Ok(())
}

fn verify_proof(
    proof: &Path,
    registry_key: &Path,
    entry: Option<&Path>,
    leaf: Option<&str>,
) -> Result<()> {
    let answer: lading_domain::ProofAnswer = read_json(proof)?;
    let jwk: Jwk = read_json(registry_key)?;
    let key = jwk
        .verifying_key()
        .context("the registry key is not a valid Ed25519 JWK")?;
    let leaf = match (entry, leaf) {
        (Some(path), _) => leaf_hash(read_input(path)?.trim().as_bytes()),
        (None, Some(hex)) => hex
            .parse::<Digest>()
            .map_err(|e| anyhow::anyhow!("--leaf-hash: {e}"))?,
        (None, None) => bail!("give the entry (--entry) or its leaf hash (--leaf-hash)"),
    };
    let signed = SignedCheckpoint::parse(&answer.checkpoint.signed)
        .context("the checkpoint is not a valid JWS")?;
    let checkpoint = signed
        .verify(&key)
        .context("the checkpoint's signature does not verify with the registry key")?;
    if checkpoint.size != answer.proof.size || checkpoint.block_size != answer.proof.block_size {
        bail!(
            "the proof is for size {} (block size {}), the checkpoint is of size {} (block size {})",
            answer.proof.size,
            answer.proof.block_size,
            checkpoint.size,
            checkpoint.block_size
        );
    }
    verify_inclusion(&answer.proof, leaf, checkpoint.root)
        .context("the inclusion proof does not verify")?;
    println!(
        "OK: entry {} (leaf {leaf}) is in the ledger of {} entries, root {}, signed {} by {}",
        answer.proof.index,
        checkpoint.size,
        checkpoint.root,
        checkpoint.time,
        jwk.kid()
    );
    Ok(())
}

/// An HTTPS client (rustls) trusting its built-in roots, and `cacert` (PEM) when given.
pub fn https_client(cacert: Option<&Path>) -> Result<reqwest::blocking::Client> {
    let mut http = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .timeout(std::time::Duration::from_secs(60));
    if let Some(ca) = cacert {
        let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
        http = http.add_root_certificate(
            reqwest::Certificate::from_pem(&pem)
                .with_context(|| format!("{} is not a PEM certificate", ca.display()))?,
        );
    }
    Ok(http.build()?)
}
