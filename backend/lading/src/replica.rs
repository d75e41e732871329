//! `lading replica`: a party's replica. It follows the registry's feed over mutual TLS, checks
//! every entry and checkpoint (`lading_domain::follow`), and keeps what it checked in its own
//! PostgreSQL database (the embedded default, or `database.url`).
//!
//! On start it judges again everything its database holds — it trusts its own rows no more
//! than the feed — then polls the registry every `replica.poll_interval_ms`. A refused entry or
//! checkpoint becomes an incident row with its evidence, and nothing after it is taken until
//! the registry sends something that checks.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use lading_domain::follow::{FeedEntry, Follower, Incident};
use lading_domain::ids::DocumentReference;
use lading_domain::jws::Jwk;
use lading_domain::Digest;
use lading_replica::{FeedClient, Keeper, ReplicaError};
use lading_store::replica::{self, ReplicaCheckpointRow, ReplicaEntryRow};
use lading_store::Store;

use crate::config::Config;
use crate::database::Database;

/// Rows read back per query when the replica restores itself.
const RESTORE_PAGE: i64 = 10_000;

pub fn replica(config: Config) -> Result<()> {
    let section = &config.replica;
    let need = |what: &str, value: &Option<std::path::PathBuf>| {
        value
            .clone()
            .with_context(|| format!("replica.{what} is required for `lading replica`"))
    };
    let registry = section.registry.clone().context(
        "replica.registry (or LADING_REPLICA_REGISTRY) must name the registry's https:// URL",
    )?;
    let read = |path: std::path::PathBuf| {
        std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
    };
    let client = FeedClient::new(
        &registry,
        &read(need("ca", &section.ca)?)?,
        &read(need("cert", &section.cert)?)?,
        &read(need("key", &section.key)?)?,
    )?;
    let parties = String::from_utf8(read(need("parties", &section.parties)?)?)
        .context("the party registry is not UTF-8")?;
    let keys = lading_replica::party_keys(&parties)?;
    let registry_key: Jwk = crate::cli::read_json(&need("registry_key", &section.registry_key)?)?;
    if registry_key.is_private() {
        bail!("replica.registry_key must be the registry's public JWK, not its private key");
    }
    let registry_key = registry_key.verifying_key()?;

    let db = Database::open(&config)?;
    let result = (|| {
        let store = Store::connect(&db.url, 4).context("cannot connect to the database")?;
        store.migrate()?;
        let new_follower = || {
            Follower::new(
                config.registry.block_size,
                registry_key.clone(),
                keys.clone(),
            )
            .context("the follower's block size")
        };
        let mut follower = new_follower()?;
        restore(&store, &mut follower)?;
        tracing::info!(size = follower.size(), "replica restored from its database");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        runtime.block_on(follow(
            &client,
            &store,
            &mut follower,
            new_follower,
            &registry,
            section.poll_interval_ms,
            section.page_size,
        ))
    })();
    let closed = db.close();
    result.and(closed)
}

/// Polls the registry until SIGINT or SIGTERM.
async fn follow(
    client: &FeedClient,
    store: &Store,
    follower: &mut Follower,
    new_follower: impl Fn() -> Result<Follower>,
    registry: &str,
    poll_interval_ms: u64,
    page_size: u64,
) -> Result<()> {
    // One machine-readable line on stdout, for supervisors and tests.
    println!("following {registry}");
    let mut keeper = PgKeeper {
        store: store.clone(),
        last_incident: None,
    };
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        match lading_replica::catch_up(client, follower, &mut keeper, page_size).await {
            Ok(done) if done.full + done.hash_only + done.backfilled > 0 => {
                tracing::info!(size = follower.size(), ?done, "followed the registry");
            }
            Ok(_) => {}
            Err(ReplicaError::Incident(_)) => {
                // Recorded by catch_up; the follower is as it was. Try again later: a registry
                // that sends something else next time is followed from here.
            }
            Err(e @ (ReplicaError::Http(_) | ReplicaError::Refused { .. })) => {
                tracing::warn!(error = %e, "the registry is not reachable; retrying");
            }
            Err(e) => {
                // Keeping failed: memory may be ahead of the database. Rebuild from it.
                tracing::error!(error = %e, "could not keep what was checked; restoring");
                *follower = new_follower()?;
                restore(store, follower)?;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(poll_interval_ms)) => {}
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
        }
    }
    tracing::info!(size = follower.size(), "replica stopped");
    Ok(())
}

/// Judges again every entry and checkpoint the database holds.
fn restore(store: &Store, follower: &mut Follower) -> Result<()> {
    let mut conn = store.conn()?;
    let mut from = 0u64;
    loop {
        let rows = replica::entries(&mut conn, from, RESTORE_PAGE)?;
        let Some(last) = rows.last() else {
            break;
        };
        from = last.idx as u64 + 1;
        let entries = rows
            .into_iter()
            .map(|row| {
                Ok(FeedEntry {
                    index: row.idx as u64,
                    leaf_hash: Digest::from_slice(&row.leaf_hash)?,
                    signed: row.signed.map(String::from_utf8).transpose()?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        lading_replica::restore(follower, &entries, std::iter::empty())
            .map_err(|incident| held_incident(store, incident))?;
    }
    let checkpoints = replica::checkpoints(&mut conn)?
        .into_iter()
        .map(|row| row.signed);
    lading_replica::restore(follower, &[], checkpoints)
        .map_err(|incident| held_incident(store, incident))?;
    Ok(())
}

/// The database holds something that does not check: recorded, and the replica stops (the
/// rows must be repaired from the registry's signed originals first).
fn held_incident(store: &Store, incident: Incident) -> anyhow::Error {
    let detail = format!("in this replica's own database: {incident}");
    if let Ok(mut conn) = store.conn() {
        let _ = lading_store::incidents::open(
            &mut conn,
            None,
            incident.code(),
            &detail,
            &serde_json::json!({ "incident": incident.to_string() }),
        );
    }
    anyhow::anyhow!(detail)
}

/// Keeps what the follower checked in the replica's database. Diesel is blocking: each call
/// runs on a worker that may block (`block_in_place`).
struct PgKeeper {
    store: Store,
    /// The last incident recorded, so a registry that keeps sending the same bad entry does
    /// not fill the table with copies.
    last_incident: Option<String>,
}

impl PgKeeper {
    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut lading_store::PgConnection) -> Result<T, lading_store::StoreError>,
    ) -> Result<T, ReplicaError> {
        tokio::task::block_in_place(|| {
            let mut conn = self.store.conn().map_err(store_error)?;
            f(&mut conn).map_err(store_error)
        })
    }
}

fn store_error(e: lading_store::StoreError) -> ReplicaError {
    ReplicaError::Keep(e.to_string())
}

impl Keeper for PgKeeper {
    fn keep_entries(
        &mut self,
        entries: &[(FeedEntry, Option<DocumentReference>)],
    ) -> Result<(), ReplicaError> {
        let rows: Vec<ReplicaEntryRow> = entries
            .iter()
            .map(|(entry, document)| ReplicaEntryRow {
                idx: entry.index as i64,
                leaf_hash: entry.leaf_hash.0.to_vec(),
                signed: entry.signed.as_ref().map(|s| s.as_bytes().to_vec()),
                document_ref: document.as_ref().map(ToString::to_string),
            })
            .collect();
        self.with_conn(|conn| replica::append(conn, &rows))
    }

    fn keep_backfill(
        &mut self,
        index: u64,
        leaf_hash: &Digest,
        signed: &str,
        document: Option<&DocumentReference>,
    ) -> Result<(), ReplicaError> {
        let document = document.map(ToString::to_string);
        self.with_conn(|conn| {
            replica::backfill(
                conn,
                index,
                &leaf_hash.0,
                signed.as_bytes(),
                document.as_deref(),
            )
        })
    }

    fn keep_checkpoint(&mut self, signed: &str, verified: bool) -> Result<(), ReplicaError> {
        let checkpoint = lading_domain::SignedCheckpoint::parse(signed)
            .map_err(|e| ReplicaError::Keep(e.to_string()))?;
        let row = ReplicaCheckpointRow {
            size: checkpoint.unverified().size as i64,
            root: checkpoint.unverified().root.0.to_vec(),
            signed: signed.to_owned(),
            verified,
        };
        self.with_conn(|conn| replica::keep_checkpoint(conn, &row))
    }

    fn incident(&mut self, incident: &Incident) -> Result<(), ReplicaError> {
        let detail = incident.to_string();
        if self.last_incident.as_deref() == Some(detail.as_str()) {
            return Ok(());
        }
        let evidence = match incident {
            Incident::ConflictingCheckpoints {
                size,
                first,
                second,
            } => serde_json::json!({ "size": size, "first": first, "second": second }),
            other => serde_json::json!({ "incident": other.to_string() }),
        };
        self.with_conn(|conn| {
            lading_store::incidents::open(conn, None, incident.code(), &detail, &evidence)
                .map(|_| ())
        })?;
        self.last_incident = Some(detail);
        Ok(())
    }
}
