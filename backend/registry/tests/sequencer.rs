//! The registry's own state and the sequencer's race paths, against a real PostgreSQL: the
//! block size and the checkpoints a restart must agree with, what is published, readiness,
//! backpressure, and what happens to batches drafted on top of one in flight.
//!
//! A batch is held "in flight" by a test that locks `ledger_head` (the writer's first write):
//! the writer waits for the lock with the batch, while the drafter drafts the next one on top.

// Integration tests: clippy.toml allows unwrap/expect/panic in test code.
#![cfg(test)]

mod common;
use common::*;

use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use lading_domain::checkpoint::Checkpoint;
use lading_domain::jws::Jwk;
use lading_domain::merkle::{leaf_hash, LedgerTree};
use lading_domain::state::DocumentState;
use lading_domain::transition::{Action, TransitionPayload};
use lading_registry::{
    Expect, PublishedCheckpoint, Receipt, Refusal, Registry, RegistryConfig, RegistryError,
};
use lading_store::models::CheckpointRow;
use lading_store::PgConnection;

/// For tests that draft several jobs on top of a batch in flight: a checkpoint due would make
/// the drafter wait for that batch first (it signs durable entries only).
fn no_checkpoint_due() -> RegistryConfig {
    RegistryConfig {
        checkpoint_interval: Duration::from_secs(3600),
        ..config()
    }
}

async fn submit(registry: &Registry, jws: &str) -> Result<Receipt, Refusal> {
    registry
        .submit_one(jws.to_owned(), Expect::Transition)
        .await
}

async fn wait_for_checkpoint(registry: &Registry, size: u64) -> PublishedCheckpoint {
    for _ in 0..1000 {
        if let Some(c) = registry
            .latest_checkpoint()
            .filter(|c| c.checkpoint.size == size)
        {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no checkpoint of size {size} was signed");
}

/// Runs `sql` as the superuser with the append-only triggers off: an attacker (or an accident)
/// with the database's own rights.
fn behind_the_registrys_back(w: &World, sql: &str) {
    let mut conn = w.conn();
    diesel::sql_query("SET session_replication_role = replica")
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query(sql).execute(&mut conn).unwrap();
}

// ---------------------------------------------------------------------------------------------
// The registry's own state

#[tokio::test]
async fn a_ledger_keeps_the_block_size_it_began_with() {
    let w = world();
    for i in 0..3 {
        submit(&w.registry, &issue(&w, &format!("BL-BS-{i}")).0)
            .await
            .unwrap();
    }
    wait_for_checkpoint(&w.registry, 3).await;
    w.registry.shutdown();

    // Three entries fit in one open block of 4 or of 8 alike: nothing else would notice, and
    // the registry would go on to sign roots that match neither tree.
    let err = w
        .restart(RegistryConfig {
            block_size: 8,
            ..config()
        })
        .unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::BlockSize {
                stored: 4,
                configured: 8
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("registry.block_size = 4"), "{err}");

    // With its own block size it carries on.
    let registry = w.restart(config()).unwrap();
    let receipt = submit(&registry, &issue(&w, "BL-BS-3").0).await.unwrap();
    assert_eq!(receipt.index, 3);
    registry.shutdown();
}

#[tokio::test]
async fn a_registry_does_not_start_on_a_ledger_its_latest_checkpoint_does_not_match() {
    let w = world();
    let mut leaves = Vec::new();
    for i in 0..7 {
        let (jws, _) = issue(&w, &format!("BL-TAMPER-{i}"));
        submit(&w.registry, &jws).await.unwrap();
        leaves.push(leaf_hash(jws.as_bytes()));
    }
    let signed = wait_for_checkpoint(&w.registry, 7).await;
    w.registry.shutdown();

    // An entry of the open block altered behind the registry's back.
    behind_the_registrys_back(
        &w,
        "UPDATE ledger_entries SET leaf_hash = sha256(leaf_hash) WHERE idx = 5",
    );
    let err = w.restart(config()).unwrap_err();
    assert!(matches!(err, RegistryError::Inconsistent(_)), "{err}");
    assert!(
        err.to_string().contains(&signed.checkpoint.root.to_hex()),
        "names the signed root: {err}"
    );

    // Put back, it starts again.
    behind_the_registrys_back(
        &w,
        &format!(
            "UPDATE ledger_entries SET leaf_hash = '\\x{}' WHERE idx = 5",
            leaves[5].to_hex()
        ),
    );
    w.restart(config()).unwrap().shutdown();

    // A checkpoint that covers entries the database does not hold.
    let beyond = Checkpoint {
        size: 9,
        root: signed.checkpoint.root,
        time: time(0),
        block_size: 4,
    };
    lading_store::ledger::insert_checkpoint(
        &mut w.conn(),
        &CheckpointRow {
            size: 9,
            root: beyond.root.0.to_vec(),
            block_size: 4,
            signed: beyond.sign(&w.registry_key.signing_key().unwrap()),
            created_at: Utc::now(),
        },
    )
    .unwrap();
    let err = w.restart(config()).unwrap_err();
    assert!(matches!(err, RegistryError::Inconsistent(_)), "{err}");
    assert!(err.to_string().contains("covers 9 entries"), "{err}");
}

#[tokio::test]
async fn the_registry_publishes_the_checkpoint_it_stored() {
    let w = world();
    let items: Vec<String> = (0..3)
        .map(|i| issue(&w, &format!("BL-PUB-{i}")).0)
        .collect();
    // A checkpoint of size 3 is already stored, signed at another time — as after an attempt
    // whose answer was lost. Its root is the one the three entries make.
    let mut tree = LedgerTree::new(4).unwrap();
    for item in &items {
        tree.push(leaf_hash(item.as_bytes()));
    }
    let earlier = Checkpoint {
        size: 3,
        root: tree.root(),
        time: time(-3600),
        block_size: 4,
    };
    let earlier_signed = earlier.sign(&w.registry_key.signing_key().unwrap());
    lading_store::ledger::insert_checkpoint(
        &mut w.conn(),
        &CheckpointRow {
            size: 3,
            root: earlier.root.0.to_vec(),
            block_size: 4,
            signed: earlier_signed.clone(),
            created_at: Utc::now(),
        },
    )
    .unwrap();

    // One batch of three: the next checkpoint is of size 3.
    let answers = w.registry.submit(items, Expect::Transition).await;
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    let published = wait_for_checkpoint(&w.registry, 3).await;
    assert_eq!(
        published.signed, earlier_signed,
        "the registry shows the signature it stored, not one it never will again"
    );
    let stored = lading_store::ledger::checkpoint_at(&mut w.conn(), 3)
        .unwrap()
        .unwrap();
    assert_eq!(stored.signed, published.signed);
}

// ---------------------------------------------------------------------------------------------
// Helpers to hold the write path at a known point

/// An ACCESS EXCLUSIVE lock on some tables, held by a transaction of the test until released
/// (or dropped): whoever reads or writes them waits.
struct Locked(PgConnection);

fn lock(w: &World, tables: &str) -> Locked {
    let mut conn = w.conn();
    diesel::sql_query("BEGIN").execute(&mut conn).unwrap();
    diesel::sql_query(format!("LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE"))
        .execute(&mut conn)
        .unwrap();
    Locked(conn)
}

impl Locked {
    fn release(mut self) {
        diesel::sql_query("COMMIT").execute(&mut self.0).unwrap();
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// How many of the registry's sessions named `name` wait for a lock.
fn waiting_for_a_lock(w: &World, name: &str) -> i64 {
    diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
         AND application_name = $1 AND wait_event_type = 'Lock'",
    )
    .bind::<diesel::sql_types::Text, _>(name)
    .get_result::<Count>(&mut w.conn())
    .unwrap()
    .n
}

/// Ends the sessions named `name`, as a failing database would.
fn terminate_sessions(w: &World, name: &str) -> i64 {
    diesel::sql_query(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = $1",
    )
    .bind::<diesel::sql_types::Text, _>(name)
    .get_result::<Count>(&mut w.conn())
    .unwrap()
    .n
}

/// Waits until `condition` holds; fails the test if it never does (a hang, not a timing
/// assertion: the bound is minutes of polling).
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..12_000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

/// Bounds a wait that must end: a stalled registry fails the test instead of hanging it.
async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), future)
        .await
        .unwrap_or_else(|_| panic!("stalled: {what}"))
}

/// Submits in the background.
fn spawn_submit(
    registry: &Registry,
    items: Vec<String>,
    expect: Expect,
) -> tokio::task::JoinHandle<Vec<Result<Receipt, Refusal>>> {
    let registry = registry.clone();
    tokio::spawn(async move { registry.submit(items, expect).await })
}

/// The registry holds `held` submissions, all taken by the sequencer.
fn all_taken(registry: &Registry, held: usize) -> impl FnMut() -> bool + '_ {
    move || {
        let queue = registry.queue();
        queue.held == held && queue.waiting == 0
    }
}

fn single(outcomes: Vec<Result<Receipt, Refusal>>) -> Result<Receipt, Refusal> {
    assert_eq!(outcomes.len(), 1);
    outcomes.into_iter().next().unwrap()
}

fn event(actor: &str, id: &str, document: Option<&str>) -> lading_domain::event::ShipmentEvent {
    lading_domain::event::ShipmentEvent::new(lading_domain::event::EventDraft {
        event_id: id.parse().unwrap(),
        event_code: lading_domain::event::EventCode::Load,
        actor: party(actor),
        time: time(10),
        location: "NLRTM".parse().unwrap(),
        document_reference: document.map(|d| d.parse().unwrap()),
        equipment_reference: Some("CSQU3054383".parse().unwrap()),
        vessel_name: None,
        voyage_number: None,
        remarks: None,
    })
    .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Readiness

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_is_not_ready_once_any_write_path_thread_has_died() {
    use lading_registry::WritePathThread;
    for thread in [
        WritePathThread::Writer,
        WritePathThread::Answerer,
        WritePathThread::Resolver,
        WritePathThread::Drafter,
    ] {
        let w = world();
        let (issued, _) = issue(&w, "BL-READY-0");
        submit(&w.registry, &issued).await.unwrap();
        assert!(w.registry.is_sequencing());
        assert_eq!(w.registry.stopped_thread(), None);

        w.registry.doom_thread(thread);
        // Wake it: a new entry reaches the writer and the answerer, a resubmission the
        // resolver; the drafter wakes by itself.
        let (fresh, _) = issue(&w, "BL-READY-1");
        let _ = within("a submission", submit(&w.registry, &fresh)).await;
        let _ = within("a resubmission", submit(&w.registry, &issued)).await;
        eventually("the registry says it is not sequencing", || {
            !w.registry.is_sequencing()
        })
        .await;
        assert_eq!(w.registry.stopped_thread(), Some(thread), "{thread:?}");

        // Nothing hangs: a submission is still answered, if only to say "not now".
        let (later, _) = issue(&w, "BL-READY-2");
        let answer = within("a submission after the death", submit(&w.registry, &later)).await;
        if thread != WritePathThread::Answerer && thread != WritePathThread::Resolver {
            assert!(
                answer.as_ref().is_err_and(Refusal::is_transient),
                "{answer:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Backpressure

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_registry_sheds_requests_as_busy_instead_of_queueing_them() {
    let w = world_with(RegistryConfig {
        max_batch: 2,
        max_queue: 4,
        ..no_checkpoint_due()
    });
    let items: Vec<String> = (0..8)
        .map(|i| issue(&w, &format!("BL-BUSY-{i}")).0)
        .collect();
    // The writer waits for the lock with the first request; the drafter drafts the next two
    // (a full batch) and waits for the writer; the fourth waits for the drafter.
    let held = lock(&w, "ledger_head");
    let mut admitted = vec![spawn_submit(
        &w.registry,
        vec![items[0].clone()],
        Expect::Transition,
    )];
    eventually("the writer waits", || {
        waiting_for_a_lock(&w, lading_registry::WRITER) == 1
    })
    .await;
    for item in &items[1..3] {
        admitted.push(spawn_submit(
            &w.registry,
            vec![item.clone()],
            Expect::Transition,
        ));
    }
    eventually("three taken", all_taken(&w.registry, 3)).await;
    admitted.push(spawn_submit(
        &w.registry,
        vec![items[3].clone()],
        Expect::Transition,
    ));
    eventually("four held", || w.registry.queue().held == 4).await;

    // Full: a request is refused at once, whole, and nothing of it is kept.
    let refused = within("a request past the bound", submit(&w.registry, &items[4]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "server_busy", "{refused}");
    assert!(refused.is_transient());
    let batch = within(
        "a batch past the bound",
        w.registry.submit(items[4..7].to_vec(), Expect::Transition),
    )
    .await;
    assert!(
        batch
            .iter()
            .all(|o| o.as_ref().is_err_and(|r| r.code() == "server_busy")),
        "{batch:?}"
    );
    assert_eq!(w.registry.queue().held, 4);

    // Once the writer moves, everything admitted is sequenced, and the refused may come back.
    held.release();
    let mut indexes = Vec::new();
    for request in admitted {
        indexes.push(
            single(within("admitted", request).await.unwrap())
                .unwrap()
                .index,
        );
    }
    indexes.sort_unstable();
    assert_eq!(indexes, vec![0, 1, 2, 3]);
    assert_eq!(submit(&w.registry, &items[4]).await.unwrap().index, 4);
    assert_eq!(w.registry.queue().held, 0);
}

/// A party's key that no registry knows, and an ISSUE it signed.
fn junk(n: usize) -> String {
    let stranger = Jwk::generate(format!("stranger-{n}#k1").parse().unwrap(), true)
        .signing_key()
        .unwrap();
    let payload = TransitionPayload::issue(
        document(&format!("BL-JUNK-{n}")),
        party("carrier-oceanic"),
        party("shipper-acme"),
        time(0),
    )
    .unwrap();
    payload.sign(&stranger)
}

fn all_unknown_keys(outcomes: &[Result<Receipt, Refusal>]) -> bool {
    outcomes
        .iter()
        .all(|o| o.as_ref().is_err_and(|r| r.code() == "unknown_key"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kid_found_unknown_is_answered_without_the_database_for_a_while() {
    let w = world();
    let items: Vec<String> = (0..50).map(junk).collect();
    let first = w.registry.submit(items.clone(), Expect::Transition).await;
    assert!(all_unknown_keys(&first), "{first:?}");

    // The key tables are locked: asking the database would wait.
    let held = lock(&w, "party_keys, operator_keys");
    let again = within(
        "junk kids answered from memory",
        w.registry.submit(items.clone(), Expect::Transition),
    )
    .await;
    assert!(all_unknown_keys(&again), "{again:?}");
    let one = within(
        "one junk kid answered from memory",
        submit(&w.registry, &items[7]),
    )
    .await;
    assert_eq!(one.unwrap_err().code(), "unknown_key");
    held.release();

    // Known kids are not affected.
    let (issued, _) = issue(&w, "BL-KNOWN-1");
    submit(&w.registry, &issued).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_junk_kids_costs_one_database_look_up() {
    let World { registry, db, .. } = world();
    let w_items: Vec<String> = (0..100).map(junk).collect();
    let first = registry.submit(w_items.clone(), Expect::Transition).await;
    assert!(all_unknown_keys(&first));
    let again = registry.submit(w_items.clone(), Expect::Transition).await;
    assert!(all_unknown_keys(&again));
    for item in w_items.iter().take(20) {
        assert_eq!(
            registry
                .submit_one(item.clone(), Expect::Transition)
                .await
                .unwrap_err()
                .code(),
            "unknown_key"
        );
    }
    // The registry's sessions end, and with them PostgreSQL's own count of what they read.
    drop(registry);
    let others = || {
        diesel::sql_query(
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .get_result::<Count>(&mut db.connection().unwrap())
        .unwrap()
        .n
    };
    eventually("the registry's sessions are gone", || others() == 0).await;
    let mut conn = db.connection().unwrap();
    let scans = diesel::sql_query(
        "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) AS n FROM pg_stat_user_tables \
         WHERE relname = 'operator_keys'",
    )
    .get_result::<Count>(&mut conn)
    .unwrap()
    .n;
    // One read at start (the membership), one for the first batch's 100 unknown kids, none
    // for the rest.
    assert_eq!(scans, 2, "operator_keys was read {scans} times");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubmitted_refused_bytes_do_not_stall_the_ledger_for_everyone() {
    let w = world();
    let (issued, state) = issue(&w, "BL-RESUB-1");
    let (to_consignee, state) = next(
        &state,
        &w.shipper,
        Action::Transfer,
        "shipper-acme",
        Some("consignee-globex"),
        1,
    );
    let (back, _) = next(
        &state,
        &w.consignee,
        Action::Transfer,
        "consignee-globex",
        Some("carrier-oceanic"),
        2,
    );
    let mut first = Vec::new();
    for jws in [&issued, &to_consignee, &back] {
        first.push(submit(&w.registry, jws).await.unwrap());
    }

    // Whoever reads `transitions` now waits. Neither events about containers alone nor the
    // drafter's judgement of a resubmission need it; what the resubmissions are (duplicates)
    // only the database can tell.
    let held = lock(&w, "transitions");
    let resubmitted = spawn_submit(
        &w.registry,
        vec![issued.clone(), to_consignee.clone()],
        Expect::Transition,
    );
    eventually("the resubmissions are taken", all_taken(&w.registry, 2)).await;
    for n in 0..3 {
        let loaded = event("carrier-oceanic", &format!("ev-resub-{n}"), None).sign(&w.carrier);
        let receipt = within(
            "a fresh event while resubmissions wait",
            w.registry.submit_one(loaded, Expect::Event),
        )
        .await
        .unwrap();
        assert_eq!(receipt.index, 3 + n);
    }
    assert!(!resubmitted.is_finished(), "answered without the database?");
    held.release();

    // The resubmissions are answered as the duplicates they are.
    let answers = within("the resubmissions", resubmitted).await.unwrap();
    for (answer, original) in answers.iter().zip(&first) {
        let answer = answer.as_ref().unwrap();
        assert!(answer.duplicate);
        assert_eq!(
            (answer.index, &answer.state),
            (original.index, &original.state)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Race paths: a batch in flight while the next is drafted on top of it

/// Holds the writer with the next batch: returns once the writer waits for `ledger_head`.
async fn hold_the_writer(w: &World) -> Locked {
    let held = lock(w, "ledger_head");
    assert_eq!(waiting_for_a_lock(w, lading_registry::WRITER), 0);
    held
}

/// After the writer's session died with the sequencer's lease: the registry stands by until
/// it has taken the lease again on a new session.
async fn sequencing_again(registry: &Registry) {
    eventually("the registry takes its lease again", || {
        !registry.is_standing_by()
    })
    .await;
}

async fn writer_waits(w: &World) {
    eventually("the writer waits with a batch", || {
        waiting_for_a_lock(w, lading_registry::WRITER) == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_drafted_on_top_of_one_that_fails_is_refused_with_it_and_the_ledger_carries_on() {
    let w = world();
    let (issued, state) = issue(&w, "BL-ONTOP-1");
    let (transfer, _) = next(
        &state,
        &w.shipper,
        Action::Transfer,
        "shipper-acme",
        Some("consignee-globex"),
        1,
    );
    let held = hold_the_writer(&w).await;
    let first = spawn_submit(&w.registry, vec![issued.clone()], Expect::Transition);
    writer_waits(&w).await;
    // Drafted on top of the ISSUE in flight: its parent is known only to memory.
    let second = spawn_submit(&w.registry, vec![transfer.clone()], Expect::Transition);
    eventually("the transfer is drafted", all_taken(&w.registry, 2)).await;

    // The write fails: the writer's session ends while it waits.
    assert_eq!(terminate_sessions(&w, lading_registry::WRITER), 1);
    held.release();
    for request in [first, second] {
        let answer = single(within("an answer", request).await.unwrap());
        assert!(
            answer.as_ref().is_err_and(Refusal::is_transient),
            "{answer:?}"
        );
    }
    assert_eq!(size(&w), 0, "nothing of either batch is on the ledger");
    sequencing_again(&w.registry).await;

    // Memory was read again from the database: the document is not there.
    let unknown = submit(&w.registry, &transfer).await.unwrap_err();
    assert_eq!(unknown.code(), "unknown_document", "{unknown}");
    assert_eq!(submit(&w.registry, &issued).await.unwrap().index, 0);
    assert_eq!(submit(&w.registry, &transfer).await.unwrap().index, 1);
    let checkpoint = wait_for_checkpoint(&w.registry, 2).await;
    assert_checkpoints_match_the_ledger(&w, &checkpoint);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transition_whose_parent_is_in_flight_is_sequenced_and_its_sibling_is_a_double_spend() {
    let w = world_with(no_checkpoint_due());
    let (issued, state) = issue(&w, "BL-INFLIGHT-1");
    let (transfer, after) = next(
        &state,
        &w.shipper,
        Action::Transfer,
        "shipper-acme",
        Some("consignee-globex"),
        1,
    );
    let (fork, _) = next(
        &state,
        &w.shipper,
        Action::Transfer,
        "shipper-acme",
        Some("carrier-oceanic"),
        2,
    );
    let held = hold_the_writer(&w).await;
    let parent = spawn_submit(&w.registry, vec![issued], Expect::Transition);
    writer_waits(&w).await;
    let child = spawn_submit(&w.registry, vec![transfer], Expect::Transition);
    eventually("the child is drafted", all_taken(&w.registry, 2)).await;
    let sibling = spawn_submit(&w.registry, vec![fork], Expect::Transition);
    eventually("the sibling is drafted", all_taken(&w.registry, 3)).await;
    held.release();

    assert_eq!(single(parent.await.unwrap()).unwrap().index, 0);
    let child = single(child.await.unwrap()).unwrap();
    assert_eq!(child.index, 1);
    let state: DocumentState = child.state.unwrap().parse().unwrap();
    assert_eq!(state, after);
    let refused = single(sibling.await.unwrap()).unwrap_err();
    assert_eq!(refused.code(), "double_spend", "{refused}");
    assert_eq!(size(&w), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_about_a_document_issued_in_flight_waits_for_it() {
    let w = world();
    // Made durable: the event is sequenced after it.
    let (issued, _) = issue(&w, "BL-EVFLIGHT-1");
    let held = hold_the_writer(&w).await;
    let document = spawn_submit(&w.registry, vec![issued], Expect::Transition);
    writer_waits(&w).await;
    let loaded = event("carrier-oceanic", "ev-flight-1", Some("BL-EVFLIGHT-1")).sign(&w.carrier);
    let about = spawn_submit(&w.registry, vec![loaded.clone()], Expect::Event);
    eventually("the event is taken", all_taken(&w.registry, 2)).await;
    held.release();
    assert_eq!(single(document.await.unwrap()).unwrap().index, 0);
    let receipt = single(about.await.unwrap()).unwrap();
    assert_eq!(
        (receipt.index, receipt.document_reference.as_deref()),
        (1, Some("BL-EVFLIGHT-1"))
    );

    // Never made durable: the event goes with it.
    let (issued, _) = issue(&w, "BL-EVFLIGHT-2");
    let held = hold_the_writer(&w).await;
    let document = spawn_submit(&w.registry, vec![issued.clone()], Expect::Transition);
    writer_waits(&w).await;
    let loaded = event("carrier-oceanic", "ev-flight-2", Some("BL-EVFLIGHT-2")).sign(&w.carrier);
    let about = spawn_submit(&w.registry, vec![loaded.clone()], Expect::Event);
    eventually("the event is taken", all_taken(&w.registry, 2)).await;
    assert_eq!(terminate_sessions(&w, lading_registry::WRITER), 1);
    held.release();
    for request in [document, about] {
        let answer = single(within("an answer", request).await.unwrap());
        assert!(
            answer.as_ref().is_err_and(Refusal::is_transient),
            "{answer:?}"
        );
    }
    assert_eq!(size(&w), 2);
    sequencing_again(&w.registry).await;
    let refused = w
        .registry
        .submit_one(loaded.clone(), Expect::Event)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "unknown_document", "{refused}");
    assert_eq!(submit(&w.registry, &issued).await.unwrap().index, 2);
    let receipt = w.registry.submit_one(loaded, Expect::Event).await.unwrap();
    assert_eq!(receipt.index, 3);
}

/// Every stored checkpoint covers stored entries only, and its root is theirs.
fn assert_checkpoints_match_the_ledger(w: &World, latest: &PublishedCheckpoint) {
    use lading_store::schema::checkpoints;
    let mut conn = w.conn();
    let stored: Vec<CheckpointRow> = checkpoints::table
        .order(checkpoints::size.asc())
        .select(CheckpointRow::as_select())
        .load(&mut conn)
        .unwrap();
    assert_eq!(stored.last().unwrap().signed, latest.signed);
    let size = lading_store::ledger::ledger_size(&mut conn).unwrap();
    let leaves = lading_registry::checkpoints::leaf_digests(&mut conn, 0, size).unwrap();
    for row in stored {
        let covered = u64::try_from(row.size).unwrap();
        assert!(
            covered <= size,
            "checkpoint {covered} beyond the ledger ({size})"
        );
        let mut tree = LedgerTree::new(4).unwrap();
        for leaf in &leaves[..covered as usize] {
            tree.push(*leaf);
        }
        assert_eq!(
            tree.root().0.to_vec(),
            row.root,
            "checkpoint {covered} does not match the stored entries"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_checkpoint_covers_entries_in_flight() {
    let w = world();
    for i in 0..2 {
        submit(&w.registry, &issue(&w, &format!("BL-CPFLIGHT-{i}")).0)
            .await
            .unwrap();
    }
    wait_for_checkpoint(&w.registry, 2).await;
    let held = hold_the_writer(&w).await;
    let in_flight = spawn_submit(
        &w.registry,
        vec![issue(&w, "BL-CPFLIGHT-2").0],
        Expect::Transition,
    );
    writer_waits(&w).await;
    // A checkpoint is due meanwhile, several times over; the drafter wakes with the next job.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let drafted = spawn_submit(
        &w.registry,
        vec![issue(&w, "BL-CPFLIGHT-3").0],
        Expect::Transition,
    );
    eventually("the next job is drafted", all_taken(&w.registry, 2)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        w.registry.latest_checkpoint().unwrap().checkpoint.size,
        2,
        "a checkpoint covers an entry in flight"
    );

    // The batch in flight fails: nothing ever signed covers it.
    assert_eq!(terminate_sessions(&w, lading_registry::WRITER), 1);
    held.release();
    for request in [in_flight, drafted] {
        let answer = single(within("an answer", request).await.unwrap());
        assert!(
            answer.as_ref().is_err_and(Refusal::is_transient),
            "{answer:?}"
        );
    }
    sequencing_again(&w.registry).await;
    for i in 4..6 {
        submit(&w.registry, &issue(&w, &format!("BL-CPFLIGHT-{i}")).0)
            .await
            .unwrap();
    }
    let latest = wait_for_checkpoint(&w.registry, 4).await;
    assert_checkpoints_match_the_ledger(&w, &latest);
}

// ---------------------------------------------------------------------------------------------
// The sequencer's own path under random interleavings of conflicting transfers

mod interleavings {
    use super::*;
    use lading_domain::Digest;
    use proptest::prelude::*;

    /// What one round does to one document.
    #[derive(Debug, Clone)]
    pub(super) struct DocRound {
        /// Transfers from the head, each a child of the same parent: one at most may win.
        siblings: usize,
        /// Whether each sibling is followed, in the same request, by a transfer of its own.
        grandchildren: [bool; 3],
        /// An earlier transition of the document sent again.
        resubmit: Option<prop::sample::Index>,
        /// A new child of the head's parent, which has a child already.
        stale_fork: bool,
    }

    #[derive(Debug, Clone)]
    pub(super) struct Round {
        docs: [DocRound; 3],
        /// Orders the round's requests and cuts them.
        seed: u64,
    }

    fn doc_round() -> impl Strategy<Value = DocRound> {
        (
            1usize..=3,
            any::<[bool; 3]>(),
            proptest::option::of(any::<prop::sample::Index>()),
            any::<bool>(),
        )
            .prop_map(|(siblings, grandchildren, resubmit, stale_fork)| DocRound {
                siblings,
                grandchildren,
                resubmit,
                stale_fork,
            })
    }

    pub(super) fn round() -> impl Strategy<Value = Round> {
        ([doc_round(), doc_round(), doc_round()], any::<u64>())
            .prop_map(|(docs, seed)| Round { docs, seed })
    }

    /// What a submitted item is, and so what its answer must be.
    #[derive(Debug, Clone)]
    enum Role {
        Sibling { doc: usize, sibling: usize },
        Grandchild { doc: usize, sibling: usize },
        Resubmission { index: u64 },
        StaleFork,
    }

    #[derive(Debug)]
    struct Item {
        role: Role,
        jws: String,
        /// The document's state after it, if it is sequenced.
        after: DocumentState,
    }

    /// A transition of `state` by its possessor to the `n`-th recipient the rules allow.
    fn transfer(
        w: &World,
        state: &DocumentState,
        n: usize,
        t: i64,
    ) -> Option<(String, DocumentState)> {
        let actor = state.possessor.clone();
        let key = &w.keys.iter().find(|(id, _)| id == actor.as_str())?.1;
        let allowed: Vec<(String, DocumentState)> = PARTIES
            .iter()
            .filter(|(id, _, _)| *id != actor.as_str())
            .filter_map(|(id, _, _)| {
                let draft = state.draft(Action::Transfer, actor.clone(), Some(party(id)), time(t));
                let payload = TransitionPayload::new(draft).ok()?;
                let jws = payload.sign(key);
                let after = state.apply(&payload, Digest::of(jws.as_bytes())).ok()?;
                Some((jws, after))
            })
            .collect();
        if allowed.is_empty() {
            return None;
        }
        Some(allowed[n % allowed.len()].clone())
    }

    /// A simple generator for the round's shuffles and cuts.
    fn xorshift(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    pub(super) async fn run(rounds: Vec<Round>, docs: usize, max_batch: usize) {
        let w = world_with(RegistryConfig {
            max_batch,
            ..config()
        });
        // The model: each document's chain, as the sequential rules make it.
        let mut heads: Vec<DocumentState> = Vec::new();
        let mut chains: Vec<Vec<(String, DocumentState, u64)>> = Vec::new();
        let mut issues = Vec::new();
        for d in 0..docs {
            let (jws, state) = issue(&w, &format!("BL-PROP-{d}"));
            issues.push(jws.clone());
            heads.push(state.clone());
            chains.push(vec![(jws, state, 0)]);
        }
        let receipts = w.registry.submit(issues, Expect::Transition).await;
        for (d, receipt) in receipts.into_iter().enumerate() {
            chains[d][0].2 = receipt.unwrap().index;
        }
        let mut sequenced = docs as u64;

        for (r, round) in rounds.iter().enumerate() {
            let t = 10 + r as i64 * 100;
            // Requests are built from units that keep their order: a sibling and its child.
            let mut units: Vec<Vec<Item>> = Vec::new();
            for (d, spec) in round.docs.iter().enumerate().take(docs) {
                for sibling in 0..spec.siblings {
                    let Some((jws, after)) = transfer(&w, &heads[d], sibling, t + sibling as i64)
                    else {
                        break;
                    };
                    let mut unit = vec![Item {
                        role: Role::Sibling { doc: d, sibling },
                        jws,
                        after: after.clone(),
                    }];
                    if spec.grandchildren[sibling] {
                        if let Some((jws, after)) = transfer(&w, &after, 0, t + 50) {
                            unit.push(Item {
                                role: Role::Grandchild { doc: d, sibling },
                                jws,
                                after,
                            });
                        }
                    }
                    units.push(unit);
                }
                if let Some(pick) = spec.resubmit {
                    let (jws, after, index) = pick.get(&chains[d]).clone();
                    units.push(vec![Item {
                        role: Role::Resubmission { index },
                        jws,
                        after,
                    }]);
                }
                if spec.stale_fork && chains[d].len() >= 2 {
                    let parent = &chains[d][chains[d].len() - 2].1;
                    if let Some((jws, after)) = transfer(&w, parent, 1, t + 70) {
                        if jws != chains[d][chains[d].len() - 1].0 {
                            units.push(vec![Item {
                                role: Role::StaleFork,
                                jws,
                                after,
                            }]);
                        }
                    }
                }
            }
            // Shuffle the units and cut them into requests, sent all at once.
            let mut seed = round.seed | 1;
            for i in (1..units.len()).rev() {
                let j = (xorshift(&mut seed) % (i as u64 + 1)) as usize;
                units.swap(i, j);
            }
            let mut requests: Vec<Vec<Item>> = vec![Vec::new()];
            for unit in units {
                if !requests.last().unwrap().is_empty() && xorshift(&mut seed) % 2 == 0 {
                    requests.push(Vec::new());
                }
                requests.last_mut().unwrap().extend(unit);
            }
            let tasks: Vec<_> = requests
                .iter()
                .map(|items| {
                    spawn_submit(
                        &w.registry,
                        items.iter().map(|i| i.jws.clone()).collect(),
                        Expect::Transition,
                    )
                })
                .collect();
            let mut answered: Vec<(Item, Result<Receipt, Refusal>)> = Vec::new();
            for (items, task) in requests.into_iter().zip(tasks) {
                answered.extend(
                    items
                        .into_iter()
                        .zip(within("a round", task).await.unwrap()),
                );
            }

            // At most one sibling of each document wins; its child follows it.
            for d in 0..docs {
                let won: Vec<&(Item, Result<Receipt, Refusal>)> = answered
                    .iter()
                    .filter(|(i, o)| {
                        matches!(i.role, Role::Sibling { doc, .. } if doc == d) && o.is_ok()
                    })
                    .collect();
                let siblings = answered
                    .iter()
                    .filter(|(i, _)| matches!(i.role, Role::Sibling { doc, .. } if doc == d))
                    .count();
                assert_eq!(
                    won.len(),
                    usize::from(siblings > 0),
                    "document {d}: {won:?}"
                );
                let Some((winner, receipt)) = won.first().map(|(i, o)| (i, o.as_ref().unwrap()))
                else {
                    continue;
                };
                let Role::Sibling {
                    sibling: winning, ..
                } = winner.role
                else {
                    unreachable!()
                };
                assert!(!receipt.duplicate);
                let mut head = (winner.jws.clone(), winner.after.clone(), receipt.index);
                for (item, outcome) in &answered {
                    match item.role {
                        Role::Sibling { doc, sibling } if doc == d && sibling != winning => {
                            let refused = outcome.as_ref().unwrap_err();
                            assert_eq!(refused.code(), "double_spend", "{refused}");
                        }
                        Role::Grandchild { doc, sibling } if doc == d => {
                            if sibling == winning {
                                let receipt = outcome.as_ref().unwrap();
                                assert!(receipt.index > head.2);
                                head = (item.jws.clone(), item.after.clone(), receipt.index);
                            } else {
                                let refused = outcome.as_ref().unwrap_err();
                                assert_eq!(refused.code(), "wrong_previous_checksum", "{refused}");
                            }
                        }
                        _ => {}
                    }
                }
                chains[d].push((winner.jws.clone(), winner.after.clone(), receipt.index));
                if head.0 != winner.jws {
                    chains[d].push(head.clone());
                }
                heads[d] = head.1;
            }
            for (item, outcome) in &answered {
                match item.role {
                    Role::Resubmission { index } => {
                        let receipt = outcome.as_ref().unwrap();
                        assert!(receipt.duplicate);
                        assert_eq!(receipt.index, index);
                        let state: DocumentState = receipt.state.as_ref().unwrap().parse().unwrap();
                        assert_eq!(state, item.after, "the state right after it");
                    }
                    Role::StaleFork => {
                        let refused = outcome.as_ref().unwrap_err();
                        assert_eq!(refused.code(), "double_spend", "{refused}");
                    }
                    _ => {}
                }
                if outcome.as_ref().is_ok_and(|r| !r.duplicate) {
                    sequenced += 1;
                }
            }
        }

        // The ledger is the model's chains, gapless, and no parent has two children.
        assert!(sequenced > docs as u64, "no transfer was sequenced");
        let mut conn = w.conn();
        assert_eq!(
            lading_store::ledger::ledger_size(&mut conn).unwrap(),
            sequenced
        );
        let forks = diesel::sql_query(
            "SELECT count(*) AS n FROM (SELECT previous_checksum FROM transitions \
             WHERE previous_checksum IS NOT NULL GROUP BY previous_checksum \
             HAVING count(*) > 1) AS f",
        )
        .get_result::<Count>(&mut conn)
        .unwrap()
        .n;
        assert_eq!(forks, 0, "a parent with two children");
        for (d, chain) in chains.iter().enumerate() {
            let reference = format!("BL-PROP-{d}");
            let stored = lading_store::reads::chain(&mut conn, &reference).unwrap();
            let stored: Vec<(Vec<u8>, i64)> =
                stored.into_iter().map(|(e, _)| (e.signed, e.idx)).collect();
            let modelled: Vec<(Vec<u8>, i64)> = chain
                .iter()
                .map(|(jws, _, index)| (jws.as_bytes().to_vec(), *index as i64))
                .collect();
            assert_eq!(stored, modelled, "the chain of {reference}");
            let document = lading_store::ledger::document_heads(&mut conn, &[&reference])
                .unwrap()
                .pop()
                .unwrap();
            let state: DocumentState = document.state.parse().unwrap();
            assert_eq!(&state, &heads[d], "the stored state of {reference}");
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 24,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Random interleavings of conflicting transfers, cut into concurrent requests and small
    /// batches (so some wait for a batch in flight), through the sequencer's own path: every
    /// parent has at most one child, exactly one of the conflicting transfers wins, exact
    /// resubmissions are duplicates, and the ledger equals the sequential model.
    #[test]
    fn conflicting_transfers_through_the_sequencer_follow_the_sequential_model(
        rounds in proptest::collection::vec(interleavings::round(), 1..4),
        docs in 1usize..=3,
        max_batch in 1usize..=4,
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(interleavings::run(rounds, docs, max_batch));
    }
}
