//! Where the registry's database is: a configured URL, or the embedded default — a private
//! PostgreSQL cluster in `<data_dir>/postgres`, started from the machine's server binaries and
//! stopped with the binary.
//!
//! Either way two roles are meant (`lading_store::roles`): the application connects as one that
//! owns nothing ([`Urls::url`]), migrations run as the tables' owner ([`Urls::owner_url`]). The
//! embedded cluster makes its application role, `lading_writer`, itself: a login role with a
//! random password kept in `<data_dir>/postgres/role-lading_writer.password` (0600), created —
//! also in a data directory made by a version without it — at every start when missing.

use anyhow::{bail, Context, Result};
use lading_pgcluster::{Cluster, ClusterOptions, LoginRole};
use lading_store::roles::{self, WRITER_ROLE};

use crate::config::Config;

/// The database the binary talks to, and the cluster it runs when it runs one.
#[derive(Debug)]
pub struct Database {
    pub urls: Urls,
    pub cluster: Option<Cluster>,
    /// The embedded cluster's application role.
    writer: Option<LoginRole>,
}

/// How to reach one database: as the application, and as the tables' owner.
#[derive(Clone)]
pub struct Urls {
    /// What the application connects with.
    pub url: String,
    /// What migrations run as; `None`: `url` (one role for both).
    pub owner_url: Option<String>,
}

impl std::fmt::Debug for Urls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // URLs hold passwords: never print them.
        f.debug_struct("Urls")
            .field("owner_url", &self.owner_url.is_some())
            .finish_non_exhaustive()
    }
}

impl Urls {
    /// Applies pending migrations as the owner and grants the application's role what it
    /// needs; warns when the application's role could disable the append-only triggers.
    pub fn migrate(&self) -> Result<usize> {
        let migrated = roles::migrate_for(&self.url, self.owner_url.as_deref()).with_context(
            || match &self.owner_url {
                Some(_) => "cannot migrate the database as database.owner_url".to_owned(),
                None => "cannot migrate the database as database.url (if that role does not own \
                         the tables, set database.owner_url to the role that does)"
                    .to_owned(),
            },
        )?;
        let writer = &migrated.writer;
        if writer.can_bypass_triggers() {
            tracing::warn!(
                role = %writer.role,
                superuser = writer.superuser,
                owns_ledger = writer.owns_ledger,
                "the application connects as a role that owns ledger_entries (or is a superuser): \
                 the ledger's append-only guarantee rests on triggers this role could disable. \
                 Connect database.url as a role that owns nothing and set database.owner_url to \
                 the owner (README: Database roles)"
            );
        }
        Ok(migrated.applied)
    }

    /// A pool as the application, knowing the owner for maintenance (`Store::maintain`).
    pub fn store(&self, pool_size: u32) -> Result<lading_store::Store> {
        Ok(lading_store::Store::connect(&self.url, pool_size)
            .context("cannot connect to the database")?
            .with_owner_url(self.owner_url.clone()))
    }
}

pub const EMBEDDED_DATABASE: &str = "lading";

impl Database {
    pub fn open(config: &Config) -> Result<Self> {
        if let Some(url) = &config.database.url {
            return Ok(Self {
                urls: Urls {
                    url: url.clone(),
                    owner_url: config.database.owner_url.clone(),
                },
                cluster: None,
                writer: None,
            });
        }
        if config.database.owner_url.is_some() {
            bail!("database.owner_url is set without database.url: set both, or neither for the embedded PostgreSQL");
        }
        if config.database.read_url.is_some() {
            bail!("database.read_url is set without database.url: a hot standby is one of the primary named by database.url (the embedded PostgreSQL has none)");
        }
        Self::embedded(config, EMBEDDED_DATABASE)
    }

    /// Starts (initialising on first use) the private cluster, makes sure `database` and the
    /// application's role exist: the application connects as `lading_writer`, migrations run
    /// as the cluster's superuser.
    pub fn embedded(config: &Config, database: &str) -> Result<Self> {
        let root = absolute(&config.data_dir)?.join("postgres");
        tracing::info!(dir = %root.display(), "starting the embedded PostgreSQL");
        let cluster = Cluster::start(ClusterOptions::new(&root)).with_context(|| {
            format!("cannot start the embedded PostgreSQL in {}", root.display())
        })?;
        let writer = cluster
            .ensure_login_role(WRITER_ROLE)
            .with_context(|| format!("cannot make the role {WRITER_ROLE}"))?;
        let mut db = Self {
            urls: Urls {
                url: String::new(),
                owner_url: None,
            },
            cluster: Some(cluster),
            writer: Some(writer),
        };
        db.urls = db.sibling(database)?;
        Ok(db)
    }

    /// A database in the embedded cluster (created when missing): the registry's, and the
    /// demo's replicas' each their own. The binary owns the cluster: it talks to it over the
    /// Unix socket.
    pub fn sibling(&self, database: &str) -> Result<Urls> {
        let (Some(cluster), Some(writer)) = (&self.cluster, &self.writer) else {
            bail!("only the embedded cluster holds sibling databases");
        };
        let exists = cluster.psql(
            "postgres",
            &format!("SELECT 1 FROM pg_database WHERE datname = '{database}'"),
        )?;
        if exists.trim() != "1" {
            cluster
                .create_database(database)
                .with_context(|| format!("cannot create database {database}"))?;
        }
        Ok(Urls {
            url: cluster.local_url_as(writer, database),
            owner_url: Some(cluster.local_url(database)),
        })
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    use lading_pgcluster::ROLE_PASSWORD_PREFIX;
    use lading_store::roles::RoleCheck;

    use super::*;

    /// A data directory the `postgres` account can traverse when the tests run as root.
    fn data_dir() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("lading-embedded-")
            .permissions(std::fs::Permissions::from_mode(0o755))
            .tempdir()
            .unwrap()
    }

    fn config(dir: &Path) -> Config {
        Config {
            data_dir: dir.to_path_buf(),
            ..Config::default()
        }
    }

    fn password_file(dir: &Path) -> PathBuf {
        dir.join("postgres")
            .join(format!("{ROLE_PASSWORD_PREFIX}{WRITER_ROLE}.password"))
    }

    /// Migrates as a start does, then asks the application's pool who it is.
    fn started(db: &Database) -> RoleCheck {
        db.urls.migrate().unwrap();
        let store = db.urls.store(1).unwrap();
        let mut conn = store.conn().unwrap();
        roles::check(&mut conn).unwrap()
    }

    #[test]
    fn the_embedded_default_connects_the_application_as_lading_writer_across_restarts() {
        let dir = data_dir();
        let db = Database::open(&config(dir.path())).unwrap();
        let who = started(&db);
        assert_eq!(who.role, WRITER_ROLE);
        assert!(!who.can_bypass_triggers(), "{who:?}");
        let file = password_file(dir.path());
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let password = std::fs::read_to_string(&file).unwrap();
        db.close().unwrap();

        // The next start reuses the role and its password.
        let db = Database::open(&config(dir.path())).unwrap();
        assert_eq!(started(&db).role, WRITER_ROLE);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), password);
        db.close().unwrap();
    }

    #[test]
    fn a_data_dir_made_before_the_writer_gets_it_at_its_next_start() {
        let dir = data_dir();
        // What an older version left: its cluster, the database migrated and used by the
        // superuser, no writer.
        let cluster = Cluster::start(ClusterOptions::new(dir.path().join("postgres"))).unwrap();
        cluster.create_database(EMBEDDED_DATABASE).unwrap();
        let old = lading_store::Store::connect(&cluster.local_url(EMBEDDED_DATABASE), 1).unwrap();
        old.migrate().unwrap();
        drop(old);
        cluster.stop().unwrap();
        assert!(!password_file(dir.path()).exists());

        let db = Database::open(&config(dir.path())).unwrap();
        let who = started(&db);
        assert_eq!(who.role, WRITER_ROLE);
        assert!(!who.can_bypass_triggers(), "{who:?}");
        assert!(password_file(dir.path()).exists());
        db.close().unwrap();
    }
}
