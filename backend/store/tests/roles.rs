//! The two roles (`lading_store::roles`) on a real PostgreSQL: the writer the application
//! connects as appends to the ledger and cannot change, remove or unprotect what it holds; the
//! owner migrates and grants.

// Integration tests: clippy.toml allows unwrap/expect/panic in test code.
#![cfg(test)]

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use lading_store::roles::{self, APPEND_ONLY, TABLES, WRITER_ROLE};
use lading_store::testing::TestDatabase;
use lading_store::{replica, run_migrations, Store, StoreError};

/// One row in each append-only table, written as the writer (INSERT is all it needs).
const APPEND: &[&str] = &[
    "INSERT INTO ledger_entries (idx, kind, signed, leaf_hash, actor, kid, received_at) \
     VALUES (0, 'transition', 'signed-0', decode(repeat('00', 32), 'hex'), 'carrier-a', 'k', now())",
    "INSERT INTO transitions (idx, document_ref, checksum, action, actor) \
     VALUES (0, 'BL-1', decode(repeat('01', 32), 'hex'), 'ISSUE', 'carrier-a')",
    "INSERT INTO events (idx, actor, event_id, event_code) VALUES (1, 'carrier-a', 'ev-1', 'ARRI')",
    "INSERT INTO blocks (block_no, block_size, root) VALUES (0, 1, decode(repeat('02', 32), 'hex'))",
    "INSERT INTO checkpoints (size, root, block_size, signed, created_at) \
     VALUES (1, decode(repeat('03', 32), 'hex'), 1, 'checkpoint-1', now())",
];

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(conn: &mut PgConnection, table: &str) -> i64 {
    diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
        .get_result::<Count>(conn)
        .unwrap()
        .n
}

fn refused(conn: &mut PgConnection, sql: &str) -> String {
    match diesel::sql_query(sql).execute(conn) {
        Ok(n) => panic!("{sql} was allowed ({n} rows)"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_writer_appends_to_the_ledger_but_cannot_update_delete_truncate_or_unprotect_it() {
    let db = TestDatabase::new().unwrap();
    let mut writer = db.writer_connection().unwrap();
    for sql in APPEND {
        diesel::sql_query(*sql).execute(&mut writer).unwrap();
    }
    for table in APPEND_ONLY {
        assert_eq!(count(&mut writer, table), 1, "{table}");
        // Refused by the privileges, before the trigger is even asked.
        for sql in [
            format!("UPDATE {table} SET {} = {0}", first_column(table)),
            format!("DELETE FROM {table}"),
            format!("TRUNCATE {table}"),
        ] {
            let err = refused(&mut writer, &sql);
            assert!(err.contains("permission denied"), "{sql}: {err}");
        }
        for sql in [
            format!("ALTER TABLE {table} DISABLE TRIGGER {table}_append_only"),
            format!("ALTER TABLE {table} DISABLE TRIGGER ALL"),
            format!("DROP TRIGGER {table}_append_only ON {table}"),
            format!("ALTER TABLE {table} OWNER TO {WRITER_ROLE}"),
        ] {
            let err = refused(&mut writer, &sql);
            assert!(err.contains("must be owner"), "{sql}: {err}");
        }
    }
    // Nor can it switch every trigger off for its session, or give itself the owner's role.
    let err = refused(&mut writer, "SET session_replication_role = replica");
    assert!(err.contains("permission denied"), "{err}");
    let err = refused(
        &mut writer,
        "DO $$ BEGIN EXECUTE format('SET ROLE %I', \
         (SELECT relowner::regrole::text FROM pg_class WHERE oid = 'ledger_entries'::regclass)); END $$",
    );
    assert!(err.contains("permission denied"), "{err}");
    // The triggers are all still there and enabled ('O'), and the rows as written.
    #[derive(QueryableByName)]
    struct Enabled {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let enabled = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_trigger \
         WHERE tgname LIKE '%\\_append\\_only' AND tgenabled = 'O'",
    )
    .get_result::<Enabled>(&mut writer)
    .unwrap();
    assert_eq!(enabled.n, APPEND_ONLY.len() as i64);
    let signed: Vec<u8> = lading_store::schema::ledger_entries::table
        .select(lading_store::schema::ledger_entries::signed)
        .first(&mut writer)
        .unwrap();
    assert_eq!(signed, b"signed-0");
}

/// A column of `table` to name in an UPDATE.
fn first_column(table: &str) -> &'static str {
    match table {
        "blocks" => "block_no",
        "checkpoints" => "size",
        _ => "idx",
    }
}

/// Every table of the schema is named in `TABLES`, and the writer holds exactly what it says:
/// a table added by a migration without its grant fails here.
#[test]
fn the_writer_holds_exactly_the_privileges_tables_lists_on_every_table() {
    let db = TestDatabase::new().unwrap();
    let mut owner = db.connection().unwrap();
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        name: String,
    }
    let tables: Vec<String> = diesel::sql_query(
        "SELECT tablename::text AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    )
    .load::<Name>(&mut owner)
    .unwrap()
    .into_iter()
    .map(|n| n.name)
    .collect();
    assert!(tables.len() > 10, "{tables:?}");
    #[derive(QueryableByName)]
    struct Has {
        #[diesel(sql_type = Bool)]
        has: bool,
    }
    for table in &tables {
        let granted = roles::privileges(table).unwrap_or_else(|| {
            panic!("table {table} has no grant for {WRITER_ROLE}: name it in lading_store::roles::TABLES")
        });
        for privilege in [
            "SELECT",
            "INSERT",
            "UPDATE",
            "DELETE",
            "TRUNCATE",
            "REFERENCES",
            "TRIGGER",
        ] {
            let has = diesel::sql_query(format!(
                "SELECT has_table_privilege('{WRITER_ROLE}', 'public.{table}', '{privilege}') AS has"
            ))
            .get_result::<Has>(&mut owner)
            .unwrap()
            .has;
            assert_eq!(
                has,
                granted.contains(&privilege),
                "{WRITER_ROLE} {privilege} on {table}"
            );
        }
    }
    for table in APPEND_ONLY {
        assert_eq!(roles::privileges(table), Some(&["SELECT", "INSERT"][..]));
    }
    // Every table TABLES names exists: the list says nothing stale.
    for (table, _) in TABLES {
        assert!(tables.iter().any(|t| t == table), "{table} is not a table");
    }
    // The sequences behind BIGSERIAL columns: the writer draws from them.
    let sequences = diesel::sql_query(
        "SELECT bool_and(has_sequence_privilege('lading_writer', c.oid, 'USAGE')) AS has \
         FROM pg_class c WHERE c.relkind = 'S' AND c.relnamespace = 'public'::regnamespace",
    )
    .get_result::<Has>(&mut owner)
    .unwrap();
    assert!(sequences.has);
}

#[test]
fn a_table_no_grant_is_defined_for_fails_the_grants() {
    let db = TestDatabase::new().unwrap();
    let mut owner = db.connection().unwrap();
    diesel::sql_query("CREATE TABLE added_later (id BIGINT PRIMARY KEY)")
        .execute(&mut owner)
        .unwrap();
    let err = roles::grant_writer(&mut owner, WRITER_ROLE).unwrap_err();
    assert!(
        matches!(&err, StoreError::UngrantedTables(t) if t == &["added_later".to_owned()]),
        "{err}"
    );
    assert!(err.to_string().contains("roles::TABLES"), "{err}");
}

#[test]
fn migrations_run_as_the_owner_and_grant_the_writer_whom_the_check_tells_apart() {
    let db = TestDatabase::empty().unwrap();
    let all = run_migrations(&mut db.connection().unwrap()).unwrap();
    // What a fresh database needs: pending migrations as the owner, then the grants.
    let fresh = TestDatabase::empty().unwrap();
    let migrated = roles::migrate_for(fresh.writer_url(), Some(fresh.url())).unwrap();
    assert_eq!(migrated.applied, all);
    assert!(migrated.granted);
    assert_eq!(migrated.writer.role, WRITER_ROLE);
    assert!(!migrated.writer.can_bypass_triggers());
    let mut writer = fresh.writer_connection().unwrap();
    diesel::sql_query(APPEND[0]).execute(&mut writer).unwrap();
    assert_eq!(count(&mut writer, "ledger_entries"), 1);
    // Again at the next start: nothing to apply, the same grants.
    let again = roles::migrate_for(fresh.writer_url(), Some(fresh.url())).unwrap();
    assert_eq!((again.applied, again.granted), (0, true));

    // One role for both (a deployment from before the two roles): no grants, and the check
    // says the application could disable the triggers (the binary warns).
    let one = roles::migrate_for(fresh.url(), None).unwrap();
    assert!(!one.granted);
    assert!(one.writer.superuser && one.writer.owns_ledger);
    assert!(one.writer.can_bypass_triggers());
    // The same role given as both is not granted anything either.
    let same = roles::migrate_for(fresh.url(), Some(fresh.url())).unwrap();
    assert!(!same.granted && same.writer.can_bypass_triggers());

    // The writer alone cannot migrate: it may create nothing.
    let other = TestDatabase::empty().unwrap();
    let err = roles::migrate_for(other.writer_url(), None).unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
}

/// The caveat of the writer: VACUUM needs the table's owner in PostgreSQL 15. As the writer it
/// is skipped (a warning, not an error); `Store::maintain` runs it as the owner.
#[test]
fn settling_replica_rows_runs_as_the_owner() {
    let db = TestDatabase::new().unwrap();
    let mut writer = db.writer_connection().unwrap();
    // Committed durably, as a replica commits (the test cluster's default is asynchronous):
    // VACUUM marks a page visible only once the commit that wrote its rows is flushed.
    diesel::sql_query("SET synchronous_commit = on")
        .execute(&mut writer)
        .unwrap();
    diesel::sql_query(
        "INSERT INTO replica_entries (idx, leaf_hash) \
         SELECT i, sha256(int8send(i)) FROM generate_series(0, 199) AS i",
    )
    .execute(&mut writer)
    .unwrap();
    drop(writer);
    #[derive(QueryableByName)]
    struct Visible {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pages: i32,
    }
    let visible = |conn: &mut PgConnection| {
        diesel::sql_query(
            "SELECT relallvisible AS pages FROM pg_class WHERE oid = 'replica_entries'::regclass",
        )
        .get_result::<Visible>(conn)
        .unwrap()
        .pages
    };
    let writer_only = db.store(1).unwrap();
    writer_only.maintain(replica::settle).unwrap();
    assert_eq!(
        visible(&mut db.connection().unwrap()),
        0,
        "skipped as the writer"
    );

    let with_owner = Store::connect(db.writer_url(), 1)
        .unwrap()
        .with_owner_url(Some(db.url().to_owned()));
    // An autovacuum worker analyzing the new rows at that moment holds a snapshot that keeps
    // VACUUM from marking their pages visible: settle again until it can (as the follow loop
    // would, after its next large catch-up), a few seconds at most.
    let mut tries = 0;
    loop {
        with_owner.maintain(replica::settle).unwrap();
        if visible(&mut db.connection().unwrap()) > 0 {
            break;
        }
        tries += 1;
        assert!(
            tries < 50,
            "VACUUM as the owner never marked a page visible"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
