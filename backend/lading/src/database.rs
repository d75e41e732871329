//! Where the registry's database is: a configured URL, or the embedded default — a private
//! PostgreSQL cluster in `<data_dir>/postgres`, started from the machine's server binaries and
//! stopped with the binary.

use anyhow::{Context, Result};
use lading_pgcluster::{Cluster, ClusterOptions};

use crate::config::Config;

/// The database the binary talks to, and the cluster it runs when it runs one.
#[derive(Debug)]
pub struct Database {
    pub url: String,
    pub cluster: Option<Cluster>,
}

pub const EMBEDDED_DATABASE: &str = "lading";

impl Database {
    pub fn open(config: &Config) -> Result<Self> {
        if let Some(url) = &config.database.url {
            return Ok(Self {
                url: url.clone(),
                cluster: None,
            });
        }
        Self::embedded(config, EMBEDDED_DATABASE)
    }

    /// Starts (initialising on first use) the private cluster and makes sure `database` exists.
    pub fn embedded(config: &Config, database: &str) -> Result<Self> {
        let root = absolute(&config.data_dir)?.join("postgres");
        tracing::info!(dir = %root.display(), "starting the embedded PostgreSQL");
        let cluster = Cluster::start(ClusterOptions::new(&root)).with_context(|| {
            format!("cannot start the embedded PostgreSQL in {}", root.display())
        })?;
        let exists = cluster
            .psql(
                "postgres",
                &format!("SELECT 1 FROM pg_database WHERE datname = '{database}'"),
            )
            .context("cannot query the embedded PostgreSQL")?;
        if exists.trim() != "1" {
            cluster
                .create_database(database)
                .with_context(|| format!("cannot create database {database}"))?;
        }
        Ok(Self {
            // The registry owns the cluster: it talks to it over the Unix socket.
            url: cluster.local_url(database),
            cluster: Some(cluster),
        })
    }

    /// Another database in the embedded cluster (created when missing): the demo's replicas
    /// each have their own.
    pub fn sibling(&self, database: &str) -> Result<String> {
        let cluster = self
            .cluster
            .as_ref()
            .context("only the embedded cluster holds sibling databases")?;
        let exists = cluster.psql(
            "postgres",
            &format!("SELECT 1 FROM pg_database WHERE datname = '{database}'"),
        )?;
        if exists.trim() != "1" {
            cluster
                .create_database(database)
                .with_context(|| format!("cannot create database {database}"))?;
        }
        Ok(cluster.local_url(database))
    }

    /// Stops the embedded cluster cleanly (a fast shutdown with a checkpoint).
    pub fn close(self) -> Result<()> {
        if let Some(cluster) = self.cluster {
            cluster.stop().context("stopping the embedded PostgreSQL")?;
        }
        Ok(())
    }
}

pub fn absolute(path: &std::path::Path) -> Result<std::path::PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    Ok(std::env::current_dir()?.join(path))
}
