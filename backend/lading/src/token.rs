//! `lading token`: a party's API credentials, on the registry's host (its database): `issue`
//! prints the secret once (only its SHA-256 is kept), `list` shows them without it, `revoke`
//! ends one at once. The same over the API, for a party's admin credential: `/v1/tokens`.

use anyhow::{bail, Context, Result};
use chrono::Utc;
use clap::Subcommand;

use crate::config::Config;
use crate::database::Database;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a credential of a party and print its secret (shown this once).
    Issue {
        #[arg(long)]
        party: String,
        /// Comma-separated: read, submit, subscribe, admin.
        #[arg(long, required = true, value_delimiter = ',')]
        scope: Vec<String>,
        /// How long it is valid: 90d, 12h, 30m, 45s (default: until revoked).
        #[arg(long)]
        expires: Option<String>,
        /// What it is for ("TMS prod").
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List credentials (every party's, or --party's): id, party, scopes, label, created,
    /// expires, last use, revoked. Never a secret.
    List {
        #[arg(long)]
        party: Option<String>,
    },
    /// Revoke a credential by its id: refused from the next request on.
    Revoke { id: String },
}

impl TokenCommand {
    pub fn run(&self, config: &Config) -> Result<()> {
        let db = Database::open(config)?;
        let result = (|| -> Result<()> {
            db.urls.migrate()?;
            let store = db.urls.store(1)?;
            let mut conn = store.conn()?;
            match self {
                Self::Issue {
                    party,
                    scope,
                    expires,
                    label,
                } => {
                    let known = lading_store::parties::party(&mut conn, party)?;
                    if known.is_none_or(|p| p.removed_idx.is_some()) {
                        bail!("{party} is not a registered party");
                    }
                    let (row, secret) = lading_api::routes::tokens::new_credential(
                        party,
                        scope,
                        label,
                        expires.as_deref(),
                        Utc::now(),
                    )?;
                    lading_store::credentials::insert(&mut conn, &row)?;
                    eprintln!(
                        "issued {} for {party} ({}); the secret is shown this once:",
                        row.id,
                        row.scope_names().collect::<Vec<_>>().join(",")
                    );
                    println!("{secret}");
                }
                Self::List { party } => {
                    let rows = lading_store::credentials::list(&mut conn, party.as_deref())?;
                    println!("id\tparty\tscopes\tlabel\tcreated\texpires\tlast_used\trevoked");
                    let time = |t: Option<chrono::DateTime<Utc>>| {
                        t.map_or("-".to_owned(), |t| {
                            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                        })
                    };
                    for row in rows {
                        println!(
                            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                            row.id,
                            row.party_id,
                            row.scope_names().collect::<Vec<_>>().join(","),
                            if row.label.is_empty() {
                                "-"
                            } else {
                                &row.label
                            },
                            time(Some(row.created_at)),
                            time(row.expires_at),
                            time(row.last_used_at),
                            time(row.revoked_at),
                        );
                    }
                }
                Self::Revoke { id } => {
                    let row = lading_store::credentials::revoke(&mut conn, id, None, Utc::now())?
                        .with_context(|| format!("no credential {id}"))?;
                    println!("revoked {} of {}", row.id, row.party_id);
                }
            }
            Ok(())
        })();
        let closed = db.close();
        result.and(closed)
    }
}
