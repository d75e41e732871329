//! The store's one error type. Callers map `NotFound` to their own "not found" and treat the
//! rest as unexpected (logged, answered as 500/503 without details).

/// What went wrong talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("cannot connect to the database: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error("no database connection available: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("migration failed: {0}")]
    Migration(String),
    /// The ledger's size in the database is not what the writer expected: another writer is
    /// using this database, or the writer's view is stale. Nothing was written.
    #[error("ledger head moved: expected size {expected}, the database has {found}")]
    HeadMoved { expected: u64, found: u64 },
    /// Tables that `roles::TABLES` does not name: what the application's role may do with them
    /// is undecided, so none of the grants were made.
    #[error("no grant for the application role is defined for table(s) {}: name them in lading_store::roles::TABLES", .0.join(", "))]
    UngrantedTables(Vec<String>),
    /// A stored value does not parse back into its type: the row was altered outside Lading.
    #[error("corrupt row in {table}: {detail}")]
    Corrupt { table: &'static str, detail: String },
    /// This process does not hold the sequencer's lease ([`crate::lease`]): another registry
    /// process sequences this ledger, or this one lost its lock with its connection. Nothing
    /// was written.
    #[error("this registry process does not hold the sequencer's lease")]
    NoLease,
}

impl StoreError {
    /// Whether the database could not be asked at all, or could not take a write now (no
    /// primary: being failed over, read-only, restarting): the same request may succeed
    /// shortly, and nothing was done. Everything else is a real answer or a defect.
    pub fn is_unavailable(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        match self {
            Self::Connect(_) | Self::Pool(_) | Self::NoLease => true,
            Self::Query(Error::DatabaseError(kind, info)) => {
                matches!(
                    kind,
                    DatabaseErrorKind::ClosedConnection
                        | DatabaseErrorKind::UnableToSendCommand
                        | DatabaseErrorKind::ReadOnlyTransaction
                ) || {
                    // Server going away or not yet a primary (SQLSTATE 57P01-57P03, 25006);
                    // diesel names no kind for these, so their messages tell.
                    let message = info.message();
                    message.starts_with("terminating connection")
                        || message.starts_with("the database system is")
                        || message.contains("read-only transaction")
                        || message.contains("server closed the connection")
                }
            }
            Self::Query(Error::BrokenTransactionManager) => true,
            _ => false,
        }
    }

    pub fn corrupt(table: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Corrupt {
            table,
            detail: detail.to_string(),
        }
    }
}
