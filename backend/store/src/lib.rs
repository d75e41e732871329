//! PostgreSQL storage for the Lading registry, through diesel.
//!
//! The store knows tables and queries, not rules: the registry decides what may be written and
//! hands the store whole batches, which are written in one short transaction. Values cross this
//! boundary as plain rows (strings, bytes, JSON); the registry turns them back into domain types.
//!
//! Diesel is blocking: callers run these functions on a thread of their own (the sequencer's
//! thread, or `web::block` in the HTTP face), never on an async worker.

pub mod credentials;
pub mod error;
pub mod export_series;
pub mod incidents;
pub mod json;
pub mod lease;
pub mod ledger;
pub mod ledger_time;
pub mod models;
pub mod node_documents;
pub mod operator;
pub mod outbox;
pub mod parties;
pub mod portal;
mod prepared;
pub mod reads;
pub mod reconciliations;
pub mod replica;
pub mod roles;
pub mod schema;
pub mod search;
pub mod standby;
pub mod submitters;
pub mod subscriptions;
#[cfg(feature = "testing")]
pub mod testing;

use std::time::Duration;

use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub use diesel::pg::PgConnection;
pub use error::StoreError;
pub use ledger::to_i64;

/// The migrations, compiled into the binary and run at start.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

pub type PgPool = Pool<ConnectionManager<PgConnection>>;
pub type PgPooled = PooledConnection<ConnectionManager<PgConnection>>;

/// A pool of connections to the registry database.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    url: String,
    /// Whether every session of the pool was prepared as a writer's
    /// ([`ledger::prepare_writer_session`]).
    durable: bool,
    /// The tables' owner, for maintenance the application's role may not do ([`Store::maintain`]).
    owner_url: Option<String>,
    /// A hot standby that bounded reads may be served from ([`Store::on_standby`]).
    standby: Option<std::sync::Arc<standby::Standby>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL holds a password: never print it.
        f.debug_struct("Store")
            .field("pool_size", &self.pool.max_size())
            .field("durable", &self.durable)
            .field("owner", &self.owner_url.is_some())
            .field("standby", &self.standby)
            .finish()
    }
}

/// r2d2 logs every failed attempt to open a connection at ERROR, several a second while a
/// database fails over. The failure reaches whoever asked for the connection, who logs it once
/// where it matters (the sequencer's lease, readiness); here it is DEBUG.
#[derive(Debug)]
pub(crate) struct QuietConnectErrors;

impl<E: std::fmt::Display> diesel::r2d2::HandleError<E> for QuietConnectErrors {
    fn handle_error(&self, error: E) {
        tracing::debug!(%error, "a pool connection could not be opened");
    }
}

/// Prepares each new session of a pool as a writer's (see [`Store::connect_durable`]).
#[derive(Debug)]
struct WriterSessions {
    application_name: String,
}

impl diesel::r2d2::CustomizeConnection<PgConnection, diesel::r2d2::Error> for WriterSessions {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        ledger::writer_session(conn, &self.application_name)
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

impl Store {
    /// Connects a pool of `size` connections; fails fast if the database cannot be reached.
    /// Its sessions keep the database's defaults: for reads, and for writes whose durability
    /// the caller settles itself (the registry's sequencer writes on
    /// [`Store::dedicated_connection`]s).
    pub fn connect(url: &str, size: u32) -> Result<Self, StoreError> {
        Self::build(url, size, None)
    }

    /// [`Store::connect`], with every session prepared as a writer's when it is opened
    /// ([`ledger::prepare_writer_session`]: `synchronous_commit = on` whatever the database's or
    /// the role's default, and `application_name`), so that a commit on any connection of the
    /// pool is durable when it returns. For a replica, whose every write (the entries it
    /// checked, the submissions it answered `202 Accepted` for) must survive a crash.
    pub fn connect_durable(
        url: &str,
        size: u32,
        application_name: &str,
    ) -> Result<Self, StoreError> {
        Self::build(url, size, Some(application_name))
    }

    fn build(url: &str, size: u32, writer: Option<&str>) -> Result<Self, StoreError> {
        let manager = ConnectionManager::<PgConnection>::new(url);
        let mut builder = Pool::builder()
            .error_handler(Box::new(QuietConnectErrors))
            .max_size(size)
            // While the database has no primary, a request waits this long before its 503.
            .connection_timeout(Duration::from_secs(5));
        if let Some(name) = writer {
            builder = builder.connection_customizer(Box::new(WriterSessions {
                application_name: name.to_owned(),
            }));
        }
        let pool = builder.build(manager)?;
        Ok(Self {
            pool,
            url: url.to_owned(),
            durable: writer.is_some(),
            owner_url: None,
            standby: None,
        })
    }

    /// This store, serving bounded reads from the hot standby at `read_url` (a pool of `size`
    /// connections, opened as reads need them): see [`standby`] and [`Store::on_standby`].
    pub fn with_standby(mut self, read_url: Option<&str>, size: u32) -> Result<Self, StoreError> {
        self.standby = match read_url {
            Some(url) => Some(standby::Standby::connect(url, size)?),
            None => None,
        };
        Ok(self)
    }

    /// The hot standby, when reads may be served from one.
    pub fn standby(&self) -> Option<&standby::Standby> {
        self.standby.as_deref()
    }

    /// Runs `read` on the hot standby with the bound — the size of the latest checkpoint stored
    /// on it, at most `cap` (the checkpoint the caller knows was published) — in one
    /// `REPEATABLE READ, READ ONLY` transaction. `None`: the caller reads the primary as it
    /// would without a standby (there is none, the bound allows no answer, or the standby
    /// failed). See [`standby`].
    pub fn on_standby<T>(
        &self,
        cap: u64,
        read: impl FnOnce(&mut PgConnection, u64) -> Result<Option<T>, StoreError>,
    ) -> Option<T> {
        self.standby.as_ref()?.bounded(cap, read)
    }

    /// This store, knowing the tables' owner (see [`roles`]): [`Store::maintain`] runs as it.
    pub fn with_owner_url(mut self, owner_url: Option<String>) -> Self {
        self.owner_url = owner_url;
        self
    }

    /// Runs `f` — maintenance such as `VACUUM`, which PostgreSQL 15 lets only a table's owner
    /// (or a superuser) do, and skips with a warning for anyone else — on a connection of its
    /// own as the tables' owner when the store knows one ([`Store::with_owner_url`]), else on
    /// one of the pool's. Autovacuum runs either way.
    pub fn maintain<T>(
        &self,
        f: impl FnOnce(&mut PgConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match &self.owner_url {
            Some(owner) => f(&mut PgConnection::establish(owner)?),
            None => f(&mut *self.conn()?),
        }
    }

    /// Whether every session of this pool commits durably ([`Store::connect_durable`]).
    pub fn is_durable(&self) -> bool {
        self.durable
    }

    /// The pool's connections now (open, of which idle) and its maximum size: what the
    /// metrics show of it.
    pub fn pool_state(&self) -> (u32, u32, u32) {
        let state = self.pool.state();
        (
            state.connections,
            state.idle_connections,
            self.pool.max_size(),
        )
    }

    pub fn conn(&self) -> Result<PgPooled, StoreError> {
        Ok(self.pool.get()?)
    }

    /// [`Store::conn`], waiting at most `timeout` for a connection: for a probe (readiness)
    /// that must answer quickly while the database is away, rather than after the pool's wait.
    pub fn conn_within(&self, timeout: Duration) -> Result<PgPooled, StoreError> {
        Ok(self.pool.get_timeout(timeout)?)
    }

    /// A connection of its own, outside the pool, for one of the sequencer's threads; it shows
    /// in `pg_stat_activity` as `application_name`.
    pub fn dedicated_connection(&self, application_name: &str) -> Result<PgConnection, StoreError> {
        let mut conn = PgConnection::establish(&self.url)?;
        ledger::prepare_writer_session(&mut conn, application_name)?;
        Ok(conn)
    }

    /// Applies every pending migration, as the role the pool connects as (which must own the
    /// tables); safe to call at each start. The binary migrates as the owner and connects the
    /// application as another role instead ([`roles::migrate_for`]).
    pub fn migrate(&self) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        run_migrations(&mut conn)
    }
}

/// Applies every pending migration on `conn` and returns how many ran.
pub fn run_migrations(conn: &mut PgConnection) -> Result<usize, StoreError> {
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map_err(|e| StoreError::Migration(e.to_string()))?;
    Ok(applied.len())
}

/// Runs `f` in one transaction on `conn` (a savepoint when one is open already): all of its
/// writes or none. For callers above the store that write with several of its functions.
pub fn in_transaction<T>(
    conn: &mut PgConnection,
    f: impl FnOnce(&mut PgConnection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.transaction(f)
}
