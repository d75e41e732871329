//! `lading submitter`: which parties may submit statements another party signed (a forwarder
//! submitting for its customer), on the registry's host (its database). The same over the
//! API, for the party's admin credential: `/v1/submitters`.

use anyhow::{bail, Result};
use chrono::Utc;
use clap::Subcommand;

use crate::config::Config;
use crate::database::Database;

#[derive(Debug, Subcommand)]
pub enum SubmitterCommand {
    /// Let --submitter submit statements --party signed.
    Add {
        #[arg(long)]
        party: String,
        #[arg(long)]
        submitter: String,
    },
    /// List the parties --party lets submit for it: submitter, since.
    List {
        #[arg(long)]
        party: String,
    },
    /// Withdraw --submitter's authorisation to submit for --party: refused from the next
    /// submission on.
    Remove {
        #[arg(long)]
        party: String,
        #[arg(long)]
        submitter: String,
    },
}

impl SubmitterCommand {
    pub fn run(&self, config: &Config) -> Result<()> {
        let db = Database::open(config)?;
        let result = (|| -> Result<()> {
            db.urls.migrate()?;
            let store = db.urls.store(1)?;
            let mut conn = store.conn()?;
            match self {
                Self::Add { party, submitter } => {
                    if party == submitter {
                        bail!("a party submits its own statements without authorising itself");
                    }
                    for id in [party, submitter] {
                        let known = lading_store::parties::party(&mut conn, id)?;
                        if known.is_none_or(|p| p.removed_idx.is_some()) {
                            bail!("{id} is not a registered party");
                        }
                    }
                    let (_, added) = lading_store::submitters::authorise(
                        &mut conn,
                        party,
                        submitter,
                        Utc::now(),
                    )?;
                    if added {
                        println!("{submitter} may now submit for {party}");
                    } else {
                        println!("{submitter} already may submit for {party}");
                    }
                }
                Self::List { party } => {
                    println!("submitter\tsince");
                    for row in lading_store::submitters::list(&mut conn, party)? {
                        println!(
                            "{}\t{}",
                            row.submitter_id,
                            row.created_at
                                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                        );
                    }
                }
                Self::Remove { party, submitter } => {
                    if !lading_store::submitters::remove(&mut conn, party, submitter)? {
                        bail!("{submitter} was not authorised to submit for {party}");
                    }
                    println!("{submitter} may no longer submit for {party}");
                }
            }
            Ok(())
        })();
        let closed = db.close();
        result.and(closed)
    }
}
