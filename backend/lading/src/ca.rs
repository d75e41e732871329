//! `lading ca`: the consortium's certificates for mutual TLS between the registry and the
//! replicas (see `lading_pki`). Nothing is copied in by hand: `init` makes the CA once,
//! `issue` makes each party's certificate and key.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use lading_domain::ids::PartyId;
use lading_pki::{Ca, Subject, CA_CERT_FILE, CA_KEY_FILE};

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create the consortium CA in --dir: ca.crt.pem (the trust anchor every party and the
    /// registry configure) and ca.key.pem (0600). Refuses if the directory already has a CA.
    Init {
        /// Directory for the CA (created owner-only when missing).
        #[arg(long)]
        dir: PathBuf,
        /// The CA certificate's subject common name.
        #[arg(long, default_value = "Lading consortium CA")]
        name: String,
    },
    /// Issue a party's certificate with the CA of --dir: <party>.crt.pem and <party>.key.pem
    /// (0600) in --out, with a copy of ca.crt.pem. A TLS client certificate, and a server
    /// certificate too when --server-name is given.
    Issue {
        /// The CA directory (made by `lading ca init`).
        #[arg(long)]
        dir: PathBuf,
        /// The party id, as in parties.json; the certificate names it as urn:lading:party:<id>.
        #[arg(
            long,
            required_unless_present = "registry",
            conflicts_with = "registry"
        )]
        party: Option<String>,
        /// Issue the registry's certificate instead (urn:lading:registry, registry.crt.pem):
        /// its server certificate, and the client certificate replicas require of whoever
        /// reconciles them.
        #[arg(long)]
        registry: bool,
        /// A DNS name or IP address the party serves on (repeatable); makes the certificate a
        /// server certificate for those names as well.
        #[arg(long = "server-name", value_name = "NAME")]
        server_names: Vec<String>,
        /// Directory for the party's files (created owner-only when missing).
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(command: &CaCommand) -> Result<()> {
    match command {
        CaCommand::Init { dir, name } => init(dir, name),
        CaCommand::Issue {
            dir,
            party,
            registry,
            server_names,
            out,
        } => {
            let subject = match (party, registry) {
                (Some(party), false) => Subject::Party(
                    party
                        .parse::<PartyId>()
                        .map_err(|e| anyhow::anyhow!("--party: {e}"))?,
                ),
                (None, true) => Subject::Registry,
                _ => bail!("give exactly one of --party and --registry"),
            };
            issue(dir, &subject, server_names, out)
        }
    }
}

fn init(dir: &Path, name: &str) -> Result<()> {
    Ca::create(dir, name)
        .with_context(|| format!("cannot create the consortium CA in {}", dir.display()))?;
    println!(
        "CA certificate: {} (the trust anchor: give it to the registry and every party)",
        dir.join(CA_CERT_FILE).display()
    );
    println!(
        "CA private key: {} (0600; needed only to issue certificates, keep it off the servers)",
        dir.join(CA_KEY_FILE).display()
    );
    Ok(())
}

fn issue(dir: &Path, subject: &Subject, server_names: &[String], out: &Path) -> Result<()> {
    let ca = Ca::load(dir)
        .with_context(|| format!("cannot load the consortium CA of {}", dir.display()))?;
    // The party's directory gets the trust anchor too, so it holds all the replica needs. A
    // different CA certificate already there means --out is some other consortium's: stop
    // before writing anything.
    let ca_copy = out.join(CA_CERT_FILE);
    let copy_ca = match std::fs::read_to_string(&ca_copy) {
        Ok(existing) if existing == ca.cert_pem() => false,
        Ok(_) => bail!(
            "{} holds a different CA certificate; refusing to mix two consortiums",
            ca_copy.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", ca_copy.display())),
    };
    let cert = ca
        .issue(subject, server_names)
        .with_context(|| format!("cannot issue a certificate for {subject}"))?;
    let files = cert.write(out)?;
    if copy_ca {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&ca_copy)
            .and_then(|mut file| file.write_all(ca.cert_pem().as_bytes()))
            .with_context(|| format!("cannot write {}", ca_copy.display()))?;
    }
    let usage = if server_names.is_empty() {
        "TLS client".to_owned()
    } else {
        format!("TLS client, and server for {}", server_names.join(", "))
    };
    println!(
        "subject:        {subject} ({}); {usage}; valid for one year",
        subject.uri()
    );
    println!("certificate:    {}", files.cert.display());
    println!("private key:    {} (0600)", files.key.display());
    println!("CA certificate: {}", ca_copy.display());
    Ok(())
}
