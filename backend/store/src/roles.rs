//! The two roles a Lading database is used with.
//!
//! The append-only triggers on the ledger (`ledger_entries`, `transitions`, `events`, `blocks`,
//! `checkpoints`) refuse UPDATE, DELETE and TRUNCATE whatever the client — except a client that
//! may drop or disable them: the tables' owner, or a superuser. So the guarantee holds only
//! when the application is neither:
//!
//! - the **owner** runs the migrations and owns every table;
//! - the **writer** (by default [`WRITER_ROLE`]) is what the application connects as. It owns
//!   nothing and is granted exactly what the code does ([`TABLES`]): SELECT and INSERT on the
//!   append-only tables, UPDATE or DELETE only on the tables the code updates or deletes in,
//!   and USAGE on the sequences behind `BIGSERIAL` columns.
//!
//! The grants are made by [`grant_writer`], run as the owner after the migrations at every
//! start ([`migrate_for`]). A table the list does not name makes it fail, so a migration that
//! adds a table cannot ship without deciding what the writer may do with it.

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};

use crate::{run_migrations, StoreError};

/// The application's role, as the embedded default creates it and the README's setup names it.
pub const WRITER_ROLE: &str = "lading_writer";

/// The tables whose rows a trigger keeps append-only.
pub const APPEND_ONLY: &[&str] = &[
    "ledger_entries",
    "transitions",
    "events",
    "blocks",
    "checkpoints",
];

/// Every table of the schema and what the writer may do with it; none of them TRUNCATE,
/// REFERENCES or TRIGGER. An empty list: the owner's alone.
pub const TABLES: &[(&str, &[&str])] = &[
    // The ledger: written once, never changed (see `APPEND_ONLY`).
    ("ledger_entries", &["SELECT", "INSERT"]),
    ("transitions", &["SELECT", "INSERT"]),
    ("events", &["SELECT", "INSERT"]),
    ("blocks", &["SELECT", "INSERT"]),
    ("checkpoints", &["SELECT", "INSERT"]),
    // Its projections, moved by every batch.
    ("ledger_head", &["SELECT", "UPDATE"]),
    ("documents", &["SELECT", "INSERT", "UPDATE"]),
    // Rows only added, but each moved to its document's new head (`head_idx`).
    ("document_access", &["SELECT", "INSERT", "UPDATE"]),
    // What a search of documents filters on: written once at ISSUE.
    ("document_search", &["SELECT", "INSERT"]),
    ("parties", &["SELECT", "INSERT", "UPDATE"]),
    ("party_keys", &["SELECT", "INSERT", "UPDATE"]),
    ("operator_keys", &["SELECT", "INSERT", "UPDATE"]),
    // API credentials: issued, revoked and marked used (UPDATE), never deleted.
    ("api_credentials", &["SELECT", "INSERT", "UPDATE"]),
    // Who may submit for a party: authorised and withdrawn (DELETE) by its admin.
    ("submitters", &["SELECT", "INSERT", "DELETE"]),
    // A replica's: repaired and cut back by reconciliation (UPDATE, DELETE).
    ("replica_entries", &["SELECT", "INSERT", "UPDATE", "DELETE"]),
    ("replica_checkpoints", &["SELECT", "INSERT", "UPDATE"]),
    ("replica_outbox", &["SELECT", "INSERT", "UPDATE"]),
    // Both sides: incidents are closed, reconciliations only recorded.
    ("incidents", &["SELECT", "INSERT", "UPDATE"]),
    ("reconciliations", &["SELECT", "INSERT"]),
    // A node's portal: its users (disabled, passwords changed), their sessions (touched,
    // ended), the audit log (only ever appended), and the documents the list searches (rows
    // replaced as chains move, remade from the verified rows on restart).
    ("portal_users", &["SELECT", "INSERT", "UPDATE"]),
    ("portal_sessions", &["SELECT", "INSERT", "UPDATE", "DELETE"]),
    ("portal_audit", &["SELECT", "INSERT"]),
    // Drafts are written, then marked submitted or discarded; never deleted.
    ("portal_drafts", &["SELECT", "INSERT", "UPDATE"]),
    // A node's customs exports: recorded once each, never changed.
    ("export_series", &["SELECT", "INSERT"]),
    ("node_documents", &["SELECT", "INSERT", "UPDATE", "DELETE"]),
    // The registry's webhook subscriptions (moved on as deliveries succeed, marked deleted,
    // never removed) and the log of every delivery attempt (only ever appended).
    ("subscriptions", &["SELECT", "INSERT", "UPDATE"]),
    ("subscription_deliveries", &["SELECT", "INSERT"]),
    // Diesel's migration history: migrations run as the owner.
    ("__diesel_schema_migrations", &[]),
];

/// What the writer may do with `table`; `None` for a table [`TABLES`] does not name.
pub fn privileges(table: &str) -> Option<&'static [&'static str]> {
    TABLES.iter().find(|(t, _)| *t == table).map(|(_, p)| *p)
}

/// Who a connection is, as far as the append-only guarantee is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleCheck {
    /// `current_user`.
    pub role: String,
    pub superuser: bool,
    /// Whether the role owns `ledger_entries`, or is a member of the role that does (it could
    /// `SET ROLE` to it): either way it may disable the triggers.
    pub owns_ledger: bool,
}

impl RoleCheck {
    /// The role could drop or disable the append-only triggers: the guarantee rests on it not
    /// doing so.
    pub fn can_bypass_triggers(&self) -> bool {
        self.superuser || self.owns_ledger
    }
}

/// Who `conn` is connected as (after the migrations: `ledger_entries` must exist).
pub fn check(conn: &mut PgConnection) -> Result<RoleCheck, StoreError> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        role: String,
        #[diesel(sql_type = Bool)]
        superuser: bool,
        #[diesel(sql_type = Bool)]
        owns_ledger: bool,
    }
    let row: Row = diesel::sql_query(
        "SELECT current_user::text AS role, r.rolsuper AS superuser, \
         pg_has_role(current_user, c.relowner, 'MEMBER') AS owns_ledger \
         FROM pg_roles r, pg_class c \
         WHERE r.rolname = current_user AND c.oid = 'ledger_entries'::regclass",
    )
    .get_result(conn)?;
    Ok(RoleCheck {
        role: row.role,
        superuser: row.superuser,
        owns_ledger: row.owns_ledger,
    })
}

/// Grants `writer` what [`TABLES`] says on every table of the schema, after revoking whatever
/// it had (a table moved to a narrower list loses the rest), and USAGE on the schema's
/// sequences; in one transaction, on a connection as the tables' owner. Fails, granting
/// nothing, when the schema has a table [`TABLES`] does not name.
pub fn grant_writer(owner: &mut PgConnection, writer: &str) -> Result<(), StoreError> {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        name: String,
    }
    let schema = diesel::sql_query("SELECT current_schema()::text AS name")
        .get_result::<Name>(owner)?
        .name;
    let tables: Vec<String> = diesel::sql_query(
        "SELECT tablename::text AS name FROM pg_tables \
         WHERE schemaname = current_schema() ORDER BY 1",
    )
    .load::<Name>(owner)?
    .into_iter()
    .map(|n| n.name)
    .collect();
    let unnamed: Vec<String> = tables
        .iter()
        .filter(|t| privileges(t).is_none())
        .cloned()
        .collect();
    if !unnamed.is_empty() {
        return Err(StoreError::UngrantedTables(unnamed));
    }
    let role = quote_ident(writer);
    let schema = quote_ident(&schema);
    owner.transaction(|conn| {
        for table in &tables {
            let name = quote_ident(table);
            diesel::sql_query(format!("REVOKE ALL ON TABLE {schema}.{name} FROM {role}"))
                .execute(conn)?;
            match privileges(table) {
                Some(list) if !list.is_empty() => {
                    diesel::sql_query(format!(
                        "GRANT {} ON TABLE {schema}.{name} TO {role}",
                        list.join(", ")
                    ))
                    .execute(conn)?;
                }
                _ => {}
            }
        }
        diesel::sql_query(format!(
            "REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {role}"
        ))
        .execute(conn)?;
        diesel::sql_query(format!(
            "GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {role}"
        ))
        .execute(conn)?;
        Ok(())
    })
}

/// What [`migrate_for`] did.
#[derive(Debug, Clone)]
pub struct Migrated {
    /// Migrations applied.
    pub applied: usize,
    /// The role the application connects as.
    pub writer: RoleCheck,
    /// Whether the writer was granted its privileges ([`grant_writer`]).
    pub granted: bool,
}

/// Applies the pending migrations as the tables' owner (`owner_url`; without it `url`, as
/// deployments of one role did) and, when the role `url` connects as is another that cannot
/// bypass the triggers, grants it what the application needs ([`grant_writer`]). The caller
/// warns when [`Migrated::writer`] can bypass the triggers. Both connections are closed on
/// return.
pub fn migrate_for(url: &str, owner_url: Option<&str>) -> Result<Migrated, StoreError> {
    let mut owner = PgConnection::establish(owner_url.unwrap_or(url))?;
    let applied = run_migrations(&mut owner)?;
    let writer = match owner_url {
        Some(_) => check(&mut PgConnection::establish(url)?)?,
        None => check(&mut owner)?,
    };
    let granted = owner_url.is_some() && !writer.can_bypass_triggers();
    if granted {
        grant_writer(&mut owner, &writer.role)?;
    }
    Ok(Migrated {
        applied,
        writer,
        granted,
    })
}

/// `name` as an SQL identifier, quoted.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
