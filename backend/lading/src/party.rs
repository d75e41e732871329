//! `lading party`: make, sign and submit the party statements that change the consortium's
//! membership (add or remove a party, add or revoke a key), and list it.
//!
//! The statement is signed here, with the private JWK given (`--key`: the operator's, or a key
//! of the party itself), and sent to the registry's `POST /v1/party-statements`; the registry
//! sequences it and every replica applies it as it follows the ledger.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use lading_domain::jws::Jwk;
use lading_domain::membership::{PartyStatement, Principal, Statement};
use lading_domain::party::{Party, Role};
use lading_domain::Timestamp;

use crate::cli::read_json;

#[derive(Debug, Subcommand)]
pub enum PartyCommand {
    /// Add a party with its first keys (signed by the operator).
    Add {
        #[command(flatten)]
        signer: Signer,
        /// The new party's id (lowercase letters, digits and '-').
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// carrier, shipper, freight_forwarder, bank, consignee or customs_authority.
        #[arg(long)]
        role: String,
        /// A UN/LOCODE under a customs authority (repeat for several).
        #[arg(long = "port")]
        ports: Vec<String>,
        /// A public JWK of the party, kid `<id>:<label>` (repeat for several).
        #[arg(long = "public-key", required = true)]
        public_keys: Vec<PathBuf>,
    },
    /// Remove a party: it signs nothing after this statement (signed by the operator).
    Remove {
        #[command(flatten)]
        signer: Signer,
        #[arg(long)]
        id: String,
    },
    /// Add a key to a party (signed by one of its valid keys, or by the operator). `--party
    /// operator` adds a key of the operator's.
    AddKey {
        #[command(flatten)]
        signer: Signer,
        #[arg(long)]
        party: String,
        /// The new public JWK, kid `<party>:<label>`.
        #[arg(long = "public-key")]
        public_key: PathBuf,
    },
    /// Revoke a key: it signs nothing after this statement (signed by one of the party's valid
    /// keys — the revoked one itself too — or by the operator).
    RevokeKey {
        #[command(flatten)]
        signer: Signer,
        #[arg(long)]
        party: String,
        #[arg(long)]
        kid: String,
    },
    /// The membership as the registry holds it: every party and key with the ledger indexes
    /// where it was added, removed or revoked.
    List {
        #[command(flatten)]
        registry: RegistryArgs,
        /// A party's bearer token.
        #[arg(long, env = "LADING_TOKEN")]
        token: String,
    },
}

#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// The registry's base URL, e.g. https://registry.example:8443.
    #[arg(long)]
    registry: String,
    /// PEM CA certificate to trust for the registry's TLS (e.g. consortium/ca/ca.crt.pem).
    #[arg(long)]
    cacert: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct Signer {
    /// The signer's private JWK: the operator's, or a key of the party itself.
    #[arg(long)]
    key: PathBuf,
    /// Who signs: `operator`, or a party id. Default: the operator for add and remove, the
    /// party itself for add-key and revoke-key.
    #[arg(long)]
    actor: Option<String>,
    /// Print the signed statement instead of submitting it.
    #[arg(long)]
    dry_run: bool,
    /// A bearer credential with the `submit` scope, for a registry whose writes need one
    /// (`registry.require_write_credential`).
    #[arg(long, env = "LADING_TOKEN")]
    token: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
}

impl PartyCommand {
    pub fn run(&self) -> Result<()> {
        let (signer, statement, default_actor) = match self {
            Self::List { registry, token } => return list(registry, token),
            Self::Add {
                signer,
                id,
                name,
                role,
                ports,
                public_keys,
            } => {
                let party = Party {
                    id: id.parse()?,
                    name: name.parse()?,
                    role: role.parse::<Role>().map_err(anyhow::Error::msg)?,
                    ports: ports.iter().map(|p| p.parse()).collect::<Result<_, _>>()?,
                };
                let keys = public_keys
                    .iter()
                    .map(|path| public_jwk(path))
                    .collect::<Result<_>>()?;
                (
                    signer,
                    Statement::AddParty { party, keys },
                    Principal::Operator,
                )
            }
            Self::Remove { signer, id } => (
                signer,
                Statement::RemoveParty { party: id.parse()? },
                Principal::Operator,
            ),
            Self::AddKey {
                signer,
                party,
                public_key,
            } => {
                let subject: Principal = party.parse()?;
                let key = public_jwk(public_key)?;
                (
                    signer,
                    Statement::AddKey {
                        subject: subject.clone(),
                        key,
                    },
                    subject,
                )
            }
            Self::RevokeKey { signer, party, kid } => {
                let subject: Principal = party.parse()?;
                (
                    signer,
                    Statement::RevokeKey {
                        subject: subject.clone(),
                        kid: kid.parse()?,
                    },
                    subject,
                )
            }
        };
        let actor = match &signer.actor {
            Some(actor) => actor.parse()?,
            None => default_actor,
        };
        let jwk: Jwk = read_json(&signer.key)?;
        let key = jwk
            .signing_key()
            .with_context(|| format!("{} is not a private JWK", signer.key.display()))?;
        let signed = PartyStatement {
            actor,
            time: Timestamp::now(),
            statement,
        }
        .sign(&key);
        if signer.dry_run {
            println!("{signed}");
            return Ok(());
        }
        let mut request = client(&signer.registry)?
            .post(format!(
                "{}/v1/party-statements",
                signer.registry.registry.trim_end_matches('/')
            ))
            .header("content-type", "application/jose")
            .body(signed);
        if let Some(token) = &signer.token {
            request = request.bearer_auth(token);
        }
        let answer = request
            .send()
            .with_context(|| format!("cannot reach {}", signer.registry.registry))?;
        let status = answer.status();
        let body = answer.text()?;
        println!("{body}");
        if !status.is_success() {
            bail!("the registry refused the statement ({status})");
        }
        Ok(())
    }
}

fn list(registry: &RegistryArgs, token: &str) -> Result<()> {
    let answer = client(registry)?
        .get(format!(
            "{}/v1/parties",
            registry.registry.trim_end_matches('/')
        ))
        .bearer_auth(token)
        .send()
        .with_context(|| format!("cannot reach {}", registry.registry))?;
    let status = answer.status();
    let body = answer.text()?;
    if !status.is_success() {
        bail!("{status}: {body}");
    }
    let value: serde_json::Value = serde_json::from_str(&body)?;
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(())
}

/// A public JWK from `path`; a private one is refused rather than published.
fn public_jwk(path: &Path) -> Result<Jwk> {
    let jwk: Jwk = read_json(path)?;
    if jwk.is_private() {
        bail!(
            "{} holds a private key; give the public JWK (keygen writes it to <out>.pub)",
            path.display()
        );
    }
    Ok(jwk)
}

fn client(registry: &RegistryArgs) -> Result<reqwest::blocking::Client> {
    crate::cli::https_client(registry.cacert.as_deref())
}
