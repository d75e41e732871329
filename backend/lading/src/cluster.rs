//! `lading cluster`: a local PostgreSQL primary and its synchronous standby, made from the
//! machine's server binaries, for trying failover and for tests of it. Production runs the
//! same settings on two machines, or a managed PostgreSQL with a synchronous standby (README:
//! "Replicated PostgreSQL").

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use lading_pgcluster::{failover_url, Cluster, ClusterOptions};
use lading_store::roles::WRITER_ROLE;

use crate::database::{absolute, EMBEDDED_DATABASE};

/// The standby's replication slot on the primary.
pub const STANDBY_SLOT: &str = "lading_standby";

/// What `lading cluster` writes beside the clusters: the registry's `[database]` section.
pub const DATABASE_TOML: &str = "database.toml";

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Start (making them on first use) a primary in <DIR>/primary and a streaming standby of
    /// it in <DIR>/standby, made with pg_basebackup and a replication slot; every commit on the
    /// primary waits for the standby (synchronous_standby_names). Writes <DIR>/database.toml
    /// (the registry's [database] section: multi-host URLs that follow a promotion) and runs
    /// until SIGINT or SIGTERM.
    Run {
        /// Where the two clusters live.
        #[arg(long, default_value = "lading-cluster")]
        dir: PathBuf,
    },
    /// Promote the standby in <DIR>/standby to primary (after the primary was lost).
    Promote {
        #[arg(long, default_value = "lading-cluster")]
        dir: PathBuf,
    },
}

impl ClusterCommand {
    pub fn run(&self) -> Result<()> {
        match self {
            Self::Run { dir } => run(&absolute(dir)?),
            Self::Promote { dir } => promote(&absolute(dir)?),
        }
    }
}

fn run(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    make_traversable(dir)?;
    let primary = Cluster::start(ClusterOptions::new(dir.join("primary")))
        .context("cannot start the primary")?;
    if primary.is_standby()? {
        bail!(
            "{} is a standby (it was not promoted?); start from a fresh --dir",
            dir.join("primary").display()
        );
    }
    let standby = primary
        .start_standby(ClusterOptions::new(dir.join("standby")), STANDBY_SLOT)
        .context("cannot start the standby")?;
    primary.require_synchronous_standby()?;
    primary.wait_for_synchronous_standby(std::time::Duration::from_secs(60))?;
    let exists = primary.psql(
        "postgres",
        &format!("SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DATABASE}'"),
    )?;
    if exists.trim() != "1" {
        primary.create_database(EMBEDDED_DATABASE)?;
    }
    let writer = primary.ensure_login_role(WRITER_ROLE)?;
    let hosts = [&primary, &standby];
    let toml = format!(
        "# Written by `lading cluster run`: the primary, then its synchronous standby; libpq\n\
         # connects to whichever takes writes.\n[database]\nurl = \"{}\"\nowner_url = \"{}\"\n",
        failover_url(&hosts, Some(&writer), EMBEDDED_DATABASE),
        failover_url(&hosts, None, EMBEDDED_DATABASE),
    );
    let path = dir.join(DATABASE_TOML);
    write_secret(&path, &toml)?;
    tracing::info!(
        primary = primary.port(),
        standby = standby.port(),
        "primary and synchronous standby running"
    );
    println!("primary 127.0.0.1:{}", primary.port());
    println!("standby 127.0.0.1:{}", standby.port());
    println!("database settings in {}", path.display());
    wait_for_stop()?;
    // The standby first: stopping the primary first would leave the standby retrying.
    standby.stop().context("stopping the standby")?;
    primary.stop().context("stopping the primary")?;
    Ok(())
}

fn promote(dir: &Path) -> Result<()> {
    let root = dir.join("standby");
    let port = std::fs::read_to_string(root.join(lading_pgcluster::PORT_FILE))
        .with_context(|| format!("{} holds no standby", root.display()))?;
    let password = std::fs::read_to_string(root.join(lading_pgcluster::PASSWORD_FILE))
        .with_context(|| format!("cannot read {}'s password", root.display()))?;
    let psql = lading_pgcluster::find_bin_dir()?.join("psql");
    let psql = if psql.exists() {
        psql
    } else {
        PathBuf::from("/usr/bin/psql")
    };
    let out = std::process::Command::new(psql)
        .args([
            "-X",
            "-q",
            "-t",
            "-A",
            "-h",
            "127.0.0.1",
            "-U",
            "lading",
            "-p",
        ])
        .arg(port.trim())
        .args(["-d", "postgres", "-c", "SELECT pg_promote(true, 60)"])
        .env("PGPASSWORD", password.trim())
        .output()
        .context("cannot run psql")?;
    if !out.status.success() || String::from_utf8_lossy(&out.stdout).trim() != "t" {
        bail!(
            "the standby was not promoted: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    println!("promoted {}", root.display());
    Ok(())
}

/// The `postgres` account must reach both roots when we run as root.
fn make_traversable(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o001 == 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o711))?;
    }
    Ok(())
}

fn write_secret(path: &Path, content: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(content.as_bytes())?;
    Ok(())
}

fn wait_for_stop() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        Ok::<_, anyhow::Error>(())
    })
}
