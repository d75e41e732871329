//! `lading user`: the people who sign in to this node's web portal (`[portal]`). Every user
//! acts for the node's party — the party its certificate names (`replica.cert`); against a
//! registry's configuration (`registry.signing_key`, no `replica.cert`), for the registry's
//! operators ([`lading_portal::site::OPERATOR_PARTY`]), who sign in to its operator view. Passwords
//! are read from standard input (first line) or `--password-file`, never from the command
//! line (where other users of the machine could read them), and only their argon2id hash is
//! kept.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use lading_portal::auth::Role;

use crate::config::Config;
use crate::database::Database;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user: `viewer` (reads), `clerk` (drafts), `signer` (signs and submits) or
    /// `admin` (users). The password is the first line of standard input or of
    /// --password-file (at least 10 characters).
    Add {
        #[arg(long)]
        username: String,
        #[arg(long)]
        role: Role,
        /// A file whose first line is the password (default: standard input).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// List the users: name, role, disabled or not, when created.
    List,
    /// Disable a user; its sessions end at once.
    Disable { username: String },
    /// Set a user's password (read as for `add`); its sessions end at once.
    Passwd {
        username: String,
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
}

/// The password: the first line of `file`, or of standard input.
fn read_password(file: Option<&Path>) -> Result<String> {
    let mut line = String::new();
    match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            line = text.lines().next().unwrap_or_default().to_owned();
        }
        None => {
            if std::io::stdin().is_terminal() {
                eprintln!("password (the line is shown as you type it; prefer --password-file or a pipe):");
            }
            std::io::stdin().lock().read_line(&mut line)?;
        }
    }
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("no password given (first line of standard input or --password-file)");
    }
    Ok(password)
}

/// The party a new user acts for: the node's (the one its certificate names), or on a
/// registry its operators'.
fn node_party(config: &Config) -> Result<String> {
    let Some(cert) = config.replica.cert.as_ref() else {
        if config.registry.signing_key.is_some() {
            return Ok(lading_portal::site::OPERATOR_PARTY.to_owned());
        }
        bail!("replica.cert (a party's node) or registry.signing_key (the registry) is needed: a user acts for the party the node's certificate names, or for the registry's operators");
    };
    let pem = std::fs::read(cert).with_context(|| format!("cannot read {}", cert.display()))?;
    let party = lading_pki::party_of(
        lading_pki::parse_certs(&pem)?
            .first()
            .context("replica.cert holds no certificate")?,
    )
    .context("replica.cert must be a party's certificate")?;
    Ok(party.to_string())
}

impl UserCommand {
    pub fn run(&self, config: &Config) -> Result<()> {
        // Read before the database starts: a bad password file fails fast.
        let password = match self {
            Self::Add { password_file, .. } | Self::Passwd { password_file, .. } => {
                Some(read_password(password_file.as_deref())?)
            }
            Self::List | Self::Disable { .. } => None,
        };
        let party = match self {
            Self::Add { .. } => Some(node_party(config)?),
            _ => None,
        };
        let db = Database::open(config)?;
        let result = (|| -> Result<()> {
            db.urls.migrate()?;
            let store = db.urls.store(1)?;
            let mut conn = store.conn()?;
            match self {
                Self::Add { username, role, .. } => {
                    let party = party.unwrap_or_default();
                    let user = lading_portal::users::add(
                        &mut conn,
                        username,
                        &party,
                        *role,
                        password.as_deref().unwrap_or_default(),
                    )?;
                    if user.party == lading_portal::site::OPERATOR_PARTY {
                        println!(
                            "added {} ({}) for the registry's operator view",
                            user.username, user.role
                        );
                    } else {
                        println!("added {} ({}) for {}", user.username, user.role, user.party);
                    }
                }
                Self::List => {
                    for user in lading_portal::users::list(&mut conn)? {
                        println!(
                            "{}\t{}\t{}\t{}\t{}",
                            user.username,
                            user.role,
                            user.party,
                            if user.disabled { "disabled" } else { "active" },
                            user.created_at.to_rfc3339()
                        );
                    }
                }
                Self::Disable { username } => {
                    lading_portal::users::disable(&mut conn, username)?;
                    println!("disabled {username}; its sessions ended");
                }
                Self::Passwd { username, .. } => {
                    lading_portal::users::set_password(
                        &mut conn,
                        username,
                        password.as_deref().unwrap_or_default(),
                    )?;
                    println!("changed the password of {username}; its sessions ended");
                }
            }
            Ok(())
        })();
        let closed = db.close();
        result.and(closed)
    }
}
