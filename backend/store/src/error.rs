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
}

impl StoreError {
    pub fn corrupt(table: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Corrupt {
            table,
            detail: detail.to_string(),
        }
    }
}
