//! Throwaway databases for tests, on a real PostgreSQL.
//!
//! One private cluster per test process (see `lading_pgcluster::shared_test_cluster`); the
//! migrations run once into a template database, and each test gets a fresh copy of it
//! (`CREATE DATABASE ... TEMPLATE`), so tests run in parallel without seeing each other.
//!
//! Like a deployment, a test database has two roles (see [`crate::roles`]): the cluster's
//! superuser, which ran the migrations and owns the tables ([`TestDatabase::url`],
//! [`TestDatabase::connection`]: to reach behind the application), and the writer
//! ([`crate::roles::WRITER_ROLE`], granted in the template), which [`TestDatabase::store`]
//! connects as, so every test of the crates above runs the application's queries with the
//! application's privileges.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

use diesel::pg::PgConnection;
use diesel::prelude::*;

use crate::roles::{grant_writer, WRITER_ROLE};
use crate::{run_migrations, Store, StoreError};

const TEMPLATE: &str = "lading_template";

/// A database that exists for one test and is dropped with it.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    writer_url: String,
    admin_url: String,
}

impl TestDatabase {
    /// A fresh, migrated database.
    pub fn new() -> Result<Self, StoreError> {
        Self::create(true)
    }

    /// A fresh database with no tables (to test migrations themselves).
    pub fn empty() -> Result<Self, StoreError> {
        Self::create(false)
    }

    fn create(migrated: bool) -> Result<Self, StoreError> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let cluster = lading_pgcluster::shared_test_cluster()
            .map_err(|e| StoreError::Migration(format!("test cluster: {e}")))?;
        let admin_url = cluster.url("postgres");
        let writer = writer_role(cluster)?;
        if migrated {
            ensure_template(&admin_url, &cluster.url(TEMPLATE))?;
        }
        let name = format!(
            "test_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = PgConnection::establish(&admin_url)?;
        let template = if migrated { TEMPLATE } else { "template0" };
        // CREATE DATABASE ... TEMPLATE needs the template to have no other sessions; creations
        // from parallel tests are serialised here.
        static CREATE: Mutex<()> = Mutex::new(());
        let _guard = CREATE.lock().unwrap_or_else(|e| e.into_inner());
        diesel::sql_query(format!(
            "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""
        ))
        .execute(&mut admin)?;
        Ok(Self {
            url: cluster.url(&name),
            writer_url: cluster.url_as(&writer, &name),
            name,
            admin_url,
        })
    }

    /// As the superuser, the tables' owner.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// As the writer, the application's role.
    pub fn writer_url(&self) -> &str {
        &self.writer_url
    }

    /// A pool as the writer, the application's role.
    pub fn store(&self, pool_size: u32) -> Result<Store, StoreError> {
        Store::connect(&self.writer_url, pool_size)
    }

    /// As the superuser, the tables' owner.
    pub fn connection(&self) -> Result<PgConnection, StoreError> {
        Ok(PgConnection::establish(&self.url)?)
    }

    /// As the writer, the application's role.
    pub fn writer_connection(&self) -> Result<PgConnection, StoreError> {
        Ok(PgConnection::establish(&self.writer_url)?)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin);
        }
    }
}

fn ensure_template(admin_url: &str, template_url: &str) -> Result<(), StoreError> {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    READY
        .get_or_init(|| {
            let build = || -> Result<(), StoreError> {
                let mut admin = PgConnection::establish(admin_url)?;
                diesel::sql_query(format!(
                    "DROP DATABASE IF EXISTS \"{TEMPLATE}\" WITH (FORCE)"
                ))
                .execute(&mut admin)?;
                diesel::sql_query(format!("CREATE DATABASE \"{TEMPLATE}\"")).execute(&mut admin)?;
                let mut conn = PgConnection::establish(template_url)?;
                run_migrations(&mut conn)?;
                // Copied with the template: every test database grants the writer the same.
                grant_writer(&mut conn, WRITER_ROLE)?;
                Ok(())
            };
            build().map_err(|e| e.to_string())
        })
        .clone()
        .map_err(StoreError::Migration)
}

/// The writer's login role in the test cluster, made once per process.
fn writer_role(
    cluster: &lading_pgcluster::Cluster,
) -> Result<lading_pgcluster::LoginRole, StoreError> {
    static ROLE: OnceLock<Result<lading_pgcluster::LoginRole, String>> = OnceLock::new();
    ROLE.get_or_init(|| {
        cluster
            .ensure_login_role(WRITER_ROLE)
            .map_err(|e| format!("test cluster: {e}"))
    })
    .clone()
    .map_err(StoreError::Migration)
}
