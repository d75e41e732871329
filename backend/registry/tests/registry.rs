//! The registry's write path against a real PostgreSQL: ordering, idempotency, double spends,
//! refusals that leave the ledger untouched, group commit under concurrency, checkpoints and
//! proofs, and restart.

// Integration tests: clippy.toml allows unwrap/expect/panic in test code.
#![cfg(test)]

mod common;
use common::*;

use std::time::Duration;

use lading_domain::checkpoint::SignedCheckpoint;
use lading_domain::event::{EventCode, EventDraft, ShipmentEvent};
use lading_domain::jws::Jwk;
use lading_domain::merkle::{leaf_hash, verify_inclusion};
use lading_domain::transition::{Action, TransitionPayload};
use lading_registry::{Expect, Receipt, Refusal, Registry};

async fn submit(w: &World, jws: &str) -> Result<Receipt, Refusal> {
    w.registry
        .submit_one(jws.to_owned(), Expect::Transition)
        .await
}

#[tokio::test]
async fn transitions_are_ordered_and_answered_with_the_state_after_them() {
    let w = world();
    let (issued, state) = issue(&w, "BL-ORDER-1");
    let (transfer, _) = next(
        &state,
        &w.shipper,
        Action::Transfer,
        "shipper-acme",
        Some("consignee-globex"),
        1,
    );
    let first = submit(&w, &issued).await.unwrap();
    let second = submit(&w, &transfer).await.unwrap();
    assert_eq!((first.index, second.index), (0, 1));
    assert!(!first.duplicate && !second.duplicate);
    assert_eq!(first.leaf_hash, leaf_hash(issued.as_bytes()));
    let state: serde_json::Value = second.state.unwrap().parse().unwrap();
    assert_eq!(state["possessor"], "consignee-globex");
    assert_eq!(size(&w), 2);
}

#[tokio::test]
async fn the_same_bytes_twice_are_one_entry() {
    let w = world();
    let (issued, _) = issue(&w, "BL-DUP-1");
    let first = submit(&w, &issued).await.unwrap();
    let again = submit(&w, &issued).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.index, first.index);
    assert_eq!(again.state, first.state);
    // A transition sent again after its document moved on answers the state right after
    // it, as first answered, not the document's state now.
    let (_, state) = issue(&w, "BL-DUP-1");
    let (to_consignee, state) = next(
        &state,
        &w.shipper,
        Action::Transfer,
        "shipper-acme",
        Some("consignee-globex"),
        1,
    );
    let moved = submit(&w, &to_consignee).await.unwrap();
    let (back, _) = next(
        &state,
        &w.consignee,
        Action::Transfer,
        "consignee-globex",
        Some("carrier-oceanic"),
        2,
    );
    let latest = submit(&w, &back).await.unwrap();
    assert_ne!(latest.state, moved.state);
    let again = submit(&w, &to_consignee).await.unwrap();
    assert!(again.duplicate);
    assert_eq!((again.index, &again.state), (moved.index, &moved.state));
    // Twice in one batch: one entry, two identical answers.
    let (other, _) = issue(&w, "BL-DUP-2");
    let answers = w
        .registry
        .submit(vec![other.clone(), other], Expect::Transition)
        .await;
    let a = answers[0].as_ref().unwrap();
    let b = answers[1].as_ref().unwrap();
    assert_eq!(a.index, b.index);
    assert!(!a.duplicate && b.duplicate);
    assert_eq!(size(&w), 4);
}

#[tokio::test]
async fn a_second_child_of_the_same_parent_is_a_double_spend() {
    let w = world();
    let (issued, state) = issue(&w, "BL-DS-1");
    submit(&w, &issued).await.unwrap();
    let (to_consignee, _) = next(
        &state,
        &w.shipper,
        Action::Transfer,
        "shipper-acme",
        Some("consignee-globex"),
        1,
    );
    let (to_carrier, _) = next(
        &state,
        &w.shipper,
        Action::Transfer,
        "shipper-acme",
        Some("carrier-oceanic"),
        2,
    );
    // Across batches.
    submit(&w, &to_consignee).await.unwrap();
    let refused = submit(&w, &to_carrier).await.unwrap_err();
    assert_eq!(refused.code(), "double_spend", "{refused}");
    // Within one batch: the first to be sequenced wins.
    let (issued2, state2) = issue(&w, "BL-DS-2");
    let (a, _) = next(
        &state2,
        &w.shipper,
        Action::Transfer,
        "shipper-acme",
        Some("consignee-globex"),
        1,
    );
    let (b, _) = next(
        &state2,
        &w.shipper,
        Action::Transfer,
        "shipper-acme",
        Some("carrier-oceanic"),
        2,
    );
    let answers = w
        .registry
        .submit(vec![issued2, a, b], Expect::Transition)
        .await;
    assert!(answers[0].is_ok() && answers[1].is_ok());
    assert_eq!(answers[2].as_ref().unwrap_err().code(), "double_spend");
    assert_eq!(size(&w), 4);
}

#[tokio::test]
async fn refusals_leave_the_ledger_untouched() {
    let w = world();
    let (issued, state) = issue(&w, "BL-REF-1");
    submit(&w, &issued).await.unwrap();
    let before = size(&w);

    // Not the possessor: the consignee tries to move the shipper's bill.
    let (stolen, _) = {
        let draft = state.draft(
            Action::Transfer,
            party("consignee-globex"),
            Some(party("bank-north")),
            time(3),
        );
        let payload = TransitionPayload::new(draft).unwrap();
        (payload.sign(&w.consignee), ())
    };
    assert_eq!(
        submit(&w, &stolen).await.unwrap_err().code(),
        "not_possessor"
    );

    // Signed by a key that is not the actor's.
    let (forged, _) = {
        let draft = state.draft(
            Action::Transfer,
            party("shipper-acme"),
            Some(party("consignee-globex")),
            time(4),
        );
        (
            TransitionPayload::new(draft).unwrap().sign(&w.consignee),
            (),
        )
    };
    assert_eq!(
        submit(&w, &forged).await.unwrap_err().code(),
        "key_not_actor"
    );

    // A tampered signature.
    let (good, _) = next(
        &state,
        &w.shipper,
        Action::Transfer,
        "shipper-acme",
        Some("consignee-globex"),
        5,
    );
    // Change one character inside the signature (not the last, whose low bits must stay zero).
    let mut tampered = good.clone().into_bytes();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(
        submit(&w, &tampered).await.unwrap_err().code(),
        "bad_signature"
    );

    // An unknown key.
    let stranger = Jwk::generate("stranger#k1".parse().unwrap(), true)
        .signing_key()
        .unwrap();
    let (unknown, _) = next(
        &state,
        &stranger,
        Action::Transfer,
        "shipper-acme",
        Some("consignee-globex"),
        6,
    );
    assert_eq!(
        submit(&w, &unknown).await.unwrap_err().code(),
        "unknown_key"
    );

    // Not a JWS at all; an ISSUE of an existing document; a transition of an unknown one.
    assert_eq!(
        submit(&w, "not.a.jws").await.unwrap_err().code(),
        "malformed_jws"
    );
    assert!(submit(&w, &issued).await.unwrap().duplicate);
    let (reissue, _) = {
        let payload = TransitionPayload::issue(
            document("BL-REF-1"),
            party("carrier-oceanic"),
            party("consignee-globex"),
            time(9),
        )
        .unwrap();
        (payload.sign(&w.carrier), ())
    };
    assert_eq!(
        submit(&w, &reissue).await.unwrap_err().code(),
        "document_exists"
    );

    assert_eq!(size(&w), before, "nothing refused reached the ledger");
    // The good one still goes through afterwards.
    assert_eq!(submit(&w, &good).await.unwrap().index, before);
}

#[tokio::test]
async fn concurrent_submissions_get_gapless_unique_indexes() {
    let w = world();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let registry = w.registry.clone();
        let items: Vec<String> = (0..40)
            .map(|i| issue(&w, &format!("BL-C-{t}-{i}")).0)
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut indexes = Vec::new();
            for item in items {
                indexes.push(
                    registry
                        .submit_one(item, Expect::Transition)
                        .await
                        .unwrap()
                        .index,
                );
            }
            indexes
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (0..320).collect::<Vec<u64>>());
    assert_eq!(size(&w), 320);
}

#[tokio::test]
async fn checkpoints_are_signed_and_every_entry_proves_against_them() {
    let w = world();
    let mut leaves = Vec::new();
    for i in 0..11 {
        let (jws, _) = issue(&w, &format!("BL-P-{i}"));
        submit(&w, &jws).await.unwrap();
        leaves.push(leaf_hash(jws.as_bytes()));
    }
    let checkpoint = wait_for_checkpoint(&w, 11).await;
    let signed = SignedCheckpoint::parse(&checkpoint.signed).unwrap();
    let verified = signed
        .verify(&w.registry_key.verifying_key().unwrap())
        .unwrap();
    assert_eq!(verified.size, 11);
    assert_eq!(verified.block_size, 4);
    for (index, leaf) in leaves.iter().enumerate() {
        let registry = w.registry.clone();
        let answer = tokio::task::spawn_blocking(move || registry.prove(index as u64, Some(11)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(answer.leaf_hash, *leaf);
        verify_inclusion(&answer.proof, *leaf, verified.root).unwrap();
        assert!(verify_inclusion(&answer.proof, leaves[(index + 1) % 11], verified.root).is_err());
    }
    // The two sealed blocks keep their leaves, in order, beside their roots.
    let store = w.registry.store().clone();
    let kept = tokio::task::spawn_blocking(move || {
        let mut conn = store.conn().unwrap();
        lading_store::ledger::sealed_block_leaves(&mut conn, &[0, 1, 2]).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(kept.len(), 2, "blocks 0 and 1 are sealed, block 2 is open");
    for (block, bytes) in kept {
        let expected: Vec<u8> = leaves[block as usize * 4..block as usize * 4 + 4]
            .iter()
            .flat_map(|leaf| leaf.0)
            .collect();
        assert_eq!(bytes, expected, "block {block}");
    }
    let registry = w.registry.clone();
    let missing = tokio::task::spawn_blocking(move || registry.prove(0, Some(1000)))
        .await
        .unwrap();
    assert_eq!(missing.unwrap_err().code(), "unknown_checkpoint");
}

async fn wait_for_checkpoint(w: &World, size: u64) -> lading_registry::PublishedCheckpoint {
    for _ in 0..500 {
        if let Some(c) = w
            .registry
            .latest_checkpoint()
            .filter(|c| c.checkpoint.size == size)
        {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no checkpoint of size {size} was signed");
}

#[tokio::test]
async fn a_restarted_registry_continues_the_same_ledger() {
    let w = world();
    let (issued, state) = issue(&w, "BL-RS-1");
    submit(&w, &issued).await.unwrap();
    for i in 0..6 {
        submit(&w, &issue(&w, &format!("BL-RS-X{i}")).0)
            .await
            .unwrap();
    }
    let before = wait_for_checkpoint(&w, 7).await;
    w.registry.shutdown();

    let registry = Registry::start(
        w.db.store(4).unwrap(),
        w.registry_key.signing_key().unwrap(),
        config(),
    )
    .unwrap();
    assert_eq!(
        registry.latest_checkpoint().unwrap().checkpoint.root,
        before.checkpoint.root
    );
    let (transfer, _) = next(
        &state,
        &w.shipper,
        Action::Transfer,
        "shipper-acme",
        Some("consignee-globex"),
        1,
    );
    let receipt = registry
        .submit_one(transfer, Expect::Transition)
        .await
        .unwrap();
    assert_eq!(receipt.index, 7);
    let again = registry
        .submit_one(issued, Expect::Transition)
        .await
        .unwrap();
    assert!(again.duplicate && again.index == 0);
    registry.shutdown();
}

#[tokio::test]
async fn events_are_sequenced_only_from_parties_allowed_to_sign_them() {
    let w = world();
    let (issued, _) = issue(&w, "BL-EV-1");
    submit(&w, &issued).await.unwrap();
    let event = |actor: &str, code: EventCode, id: &str| {
        ShipmentEvent::new(EventDraft {
            event_id: id.parse().unwrap(),
            event_code: code,
            actor: party(actor),
            time: time(10),
            location: "NLRTM".parse().unwrap(),
            document_reference: Some("BL-EV-1".parse().unwrap()),
            equipment_reference: Some("CSQU3054383".parse().unwrap()),
            vessel_name: None,
            voyage_number: None,
            remarks: None,
        })
        .unwrap()
    };
    let loaded = event("carrier-oceanic", EventCode::Load, "ev-1").sign(&w.carrier);
    let receipt = w.registry.submit_one(loaded, Expect::Event).await.unwrap();
    assert_eq!(receipt.index, 1);
    // The same event id again with other content is refused, not stored beside the first.
    let reused = event("carrier-oceanic", EventCode::Disc, "ev-1").sign(&w.carrier);
    let refused = w
        .registry
        .submit_one(reused, Expect::Event)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "duplicate_event_id");
    let by_shipper = event("shipper-acme", EventCode::Load, "ev-2").sign(&w.shipper);
    let refused = w
        .registry
        .submit_one(by_shipper, Expect::Event)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "event_not_allowed");
    // A transition sent as an event is refused for its type.
    let refused = w
        .registry
        .submit_one(issued, Expect::Event)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "wrong_type");
    assert_eq!(size(&w), 2);
}

/// Ends the sessions whose `application_name` is `name`, as a failing database would.
fn terminate_sessions(w: &World, name: &str) -> usize {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Ended {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        ended: bool,
    }
    let store = w.db.store(1).unwrap();
    let mut conn = store.conn().unwrap();
    let ended: Vec<Ended> = diesel::sql_query(
        "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = $1",
    )
    .bind::<diesel::sql_types::Text, _>(name)
    .load(&mut conn)
    .unwrap();
    ended.iter().filter(|e| e.ended).count()
}

/// Submits until the answer is not a transient refusal (as a client does, after Retry-After).
async fn submit_until_sequenced(w: &World, signed: &str) -> Receipt {
    for _ in 0..500 {
        match submit(w, signed).await {
            Err(refused) if refused.is_transient() => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            answer => return answer.unwrap(),
        }
    }
    panic!("still refused as transient after 500 tries");
}

#[tokio::test]
async fn a_batch_that_cannot_be_written_is_refused_and_the_ledger_carries_on() {
    let w = world();
    let (first, _) = issue(&w, "BL-FAIL-1");
    assert_eq!(submit(&w, &first).await.unwrap().index, 0);

    // The writer's session dies: the next batch cannot be made durable.
    assert_eq!(terminate_sessions(&w, lading_registry::WRITER), 1);
    let (second, _) = issue(&w, "BL-FAIL-2");
    let refused = submit(&w, &second).await.unwrap_err();
    assert!(refused.is_transient(), "{refused:?}");
    assert_eq!(size(&w), 1, "nothing of the failed batch is on the ledger");

    // The session held the sequencer's lease: the registry stands by until it has taken it
    // again on a new session (at once: nobody else holds it) and reloaded memory from the
    // database. Meanwhile submissions are refused as transient. Then the same submission
    // takes the next index, and the ledger goes on without a gap.
    let again = submit_until_sequenced(&w, &second).await;
    assert_eq!((again.index, again.duplicate), (1, false));
    let (third, _) = issue(&w, "BL-FAIL-3");
    assert_eq!(submit(&w, &third).await.unwrap().index, 2);

    // The drafter's session dies too: its look-ups reconnect.
    assert_eq!(terminate_sessions(&w, lading_registry::DRAFTER), 1);
    let (fourth, _) = issue(&w, "BL-FAIL-4");
    assert_eq!(submit_until_sequenced(&w, &fourth).await.index, 3);
    assert_eq!(size(&w), 4);
    let checkpoint = wait_for_checkpoint(&w, 4).await;
    assert_eq!(checkpoint.checkpoint.size, 4);
}

/// The highest index of an entry signed with `kid`.
fn last_signed_with(w: &World, kid: &str) -> Option<i64> {
    use diesel::prelude::*;
    use lading_store::schema::ledger_entries;
    let store = w.db.store(1).unwrap();
    let mut conn = store.conn().unwrap();
    ledger_entries::table
        .filter(ledger_entries::kid.eq(kid))
        .select(diesel::dsl::max(ledger_entries::idx))
        .first(&mut conn)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_entry_signed_with_a_key_follows_its_revocation_under_concurrent_submissions() {
    use lading_domain::membership::{PartyStatement, Principal, Statement};
    let w = world();
    let kid = w.carrier.kid.to_string();
    let issues: Vec<String> = (0..1200)
        .map(|n| issue(&w, &format!("BL-REVOKE-{n}")).0)
        .collect();
    // ISSUEs stream in, 50 a request: the revocation is sent once the first 200 are in, and
    // the last 50 only after it was acknowledged. Those between race with it.
    let (started, mut go) = tokio::sync::mpsc::channel::<()>(1);
    let (acked, mut last) = tokio::sync::mpsc::channel::<()>(1);
    let registry = w.registry.clone();
    let stream = tokio::spawn(async move {
        let chunks: Vec<Vec<String>> = issues.chunks(50).map(<[String]>::to_vec).collect();
        let (racing, final_chunk) = chunks.split_at(chunks.len() - 1);
        let mut outcomes = Vec::new();
        for (n, chunk) in racing.iter().enumerate() {
            if n == 4 {
                started.send(()).await.unwrap();
            }
            outcomes.extend(registry.submit(chunk.clone(), Expect::Transition).await);
        }
        last.recv().await.unwrap();
        let after = registry
            .submit(final_chunk[0].clone(), Expect::Transition)
            .await;
        (outcomes, after)
    });
    go.recv().await.unwrap();
    let carrier = Principal::Party(party("carrier-oceanic"));
    let revoke = PartyStatement {
        actor: carrier.clone(),
        time: time(0),
        statement: Statement::RevokeKey {
            subject: carrier,
            kid: w.carrier.kid.clone(),
        },
    }
    .sign(&w.carrier);
    let revoked = w
        .registry
        .submit_one(revoke.clone(), Expect::Party)
        .await
        .unwrap();
    acked.send(()).await.unwrap();
    let (racing, after) = stream.await.unwrap();

    // Nothing signed with the key after its revocation, which is the key's last entry.
    assert_eq!(last_signed_with(&w, &kid), Some(revoked.index as i64));
    for outcome in &racing {
        match outcome {
            Ok(receipt) => assert!(receipt.index < revoked.index),
            Err(refusal) => assert_eq!(refusal.code(), "revoked_key", "{refusal}"),
        }
    }
    assert!(racing.iter().filter(|o| o.is_ok()).count() >= 200);
    assert!(after
        .iter()
        .all(|o| o.as_ref().is_err_and(|r| r.code() == "revoked_key")));
    // The revocation again is the duplicate it is, although its key is revoked now.
    let again = w.registry.submit_one(revoke, Expect::Party).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.index, revoked.index);
}
