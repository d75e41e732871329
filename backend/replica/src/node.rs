//! The replica as a running node: one [`Node`] shared by the loop that follows the registry,
//! the loop that forwards the party's submissions, the loop that exchanges checkpoints with
//! other replicas, and the HTTPS face that serves the party and answers reconciliation.
//!
//! The follower (what was verified) lives in memory behind a mutex; the rows live in the
//! replica's PostgreSQL database. Reads are served from the database and checked against the
//! follower: each row against the leaf verified at its index, and a document's chain as a
//! whole against the state verified for it (its length and head, every link), so a row
//! changed, deleted or moved to another document by hand is never served as if it were
//! verified — the read answers that the chain is damaged, and the damage is an incident.
//! Every method that touches the database blocks: call it off the async workers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use lading_domain::event::SignedEvent;
use lading_domain::follow::{Chain, FeedEntry, Follower, Incident, Judged};
use lading_domain::ids::{DocumentReference, PartyId};
use lading_domain::merkle::leaf_hash;
use lading_domain::transition::{Action, SignedTransition};
use lading_domain::Digest;
use lading_store::replica::{self, ReplicaCheckpointRow, ReplicaEntryRow};
use lading_store::{
    incidents, node_documents, outbox, reconciliations, PgConnection, Store, StoreError,
};
use serde::Serialize;

use crate::answer::Sessions;
use crate::projection::{self, Projector};
use crate::{FeedClient, Keeper, ReplicaError};

/// Rows read back per query when the replica restores itself.
const RESTORE_PAGE: i64 = 10_000;

/// Rows of a damaged chain kept in its incident's evidence (the rest are counted).
const EVIDENCE_ROWS: usize = 64;

/// Bytes of what a peer served kept in its incident's evidence.
const EVIDENCE_BYTES: usize = 4096;

/// The incident of a document whose rows do not make the chain that was verified.
pub const CHAIN_DAMAGED: &str = "chain_damaged";

/// The incident of rows that named another document than their signed bytes, put back on
/// start.
pub const DOCUMENT_REFS_REPAIRED: &str = "document_refs_repaired";

/// The incident of a peer that served a checkpoint the registry did not sign.
pub const PEER_BAD_CHECKPOINT: &str = "peer_bad_checkpoint";

/// How a node runs.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    pub party: PartyId,
    /// The registry's base URL, for the status page.
    pub registry: String,
    pub page_size: u64,
    pub poll_interval: Duration,
    /// How long the registry may keep answering one submission as unavailable before it is
    /// parked and the queue moves on past it.
    pub park_after: Duration,
    /// How often the node asks the registry for its party's webhook subscriptions, to tell
    /// its users (status, portal) when one is failing; zero: never.
    pub subscriptions_interval: Duration,
}

/// A party's replica; cheap to clone.
#[derive(Clone)]
pub struct Node(Arc<Inner>);

struct Inner {
    settings: NodeSettings,
    store: Store,
    client: FeedClient,
    follower: Mutex<Follower>,
    /// Builds an empty follower with the consortium's keys (to restore into).
    new_follower: Box<dyn Fn() -> Follower + Send + Sync>,
    /// The registry's size as of the last page read (for the lag).
    registry_size: AtomicU64,
    /// When the registry last answered the follow loop, and since when it has not.
    contact: Mutex<RegistryContact>,
    /// The party's failing subscriptions as the registry last told them (asked in the
    /// background, never on a request's path).
    subscriptions: Mutex<SubscriptionsStatus>,
    /// How the node's scheduled customs exports fare (none: not scheduled).
    exports: Mutex<Option<ExportsStatus>>,
    /// Wakes the forwarder when a submission was taken.
    submitted: tokio::sync::Notify,
    pub(crate) sessions: Sessions,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("party", &self.0.settings.party)
            .finish()
    }
}

/// What the node errs with: the store, or something it refuses.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Refused(Incident),
    /// The rows of a document held here do not make the chain this replica verified (a row
    /// altered, missing, or moved to or from another document); recorded as an incident.
    #[error("the chain of {reference} held here is not the one this replica verified: {detail}; an incident is open, and reconciliation with the registry puts back rows that were lost or altered")]
    ChainDamaged {
        reference: DocumentReference,
        detail: String,
    },
    /// Transitions of the document were taken whose earlier entries did not come in full: its
    /// chain is being fetched again, or (`given_up`) could not be, an incident.
    #[error("{}", if *given_up {
        format!("the chain of {reference} is not verified: its earlier entries did not come in full from the registry (an incident is open); it is served once a later back-fill completes it")
    } else {
        format!("the chain of {reference} is not verified yet: its earlier entries are being fetched in full")
    })]
    ChainUnverified {
        reference: DocumentReference,
        given_up: bool,
    },
    #[error("{0}")]
    Reconcile(String),
    /// A submission sent to the other kind's endpoint: refused before anything is kept.
    #[error("this is a {is}; submit it to its own endpoint")]
    WrongKind { is: &'static str },
    /// A store whose sessions keep the database's default durability (see [`open_store`]).
    #[error("a replica keeps what it checked and the submissions it took only on a store whose every commit is durable (open it with lading_replica::node::open_store)")]
    NotDurable,
}

/// The replica's database as a pool of `size` connections whose every session commits with
/// `synchronous_commit = on`, whatever the database's default: an entry kept, or a submission
/// answered `202 Accepted`, survives a crash of the machine (see
/// `lading_store::Store::connect_durable`).
pub fn open_store(url: &str, size: u32) -> Result<Store, NodeError> {
    Ok(Store::connect_durable(url, size, "lading-replica")?)
}

/// What a submission endpoint takes: `/v1/transitions` or `/v1/events` (the ledger's own two
/// kinds of submission, named as the registry names them).
pub use lading_store::search::SubmissionKind;

impl Node {
    /// Builds the node and restores its follower from the database (see [`Node::restore`]).
    /// `store` must be durable ([`open_store`]): every write of a replica is one it may be
    /// asked to show after a crash.
    pub fn start(
        settings: NodeSettings,
        store: Store,
        client: FeedClient,
        new_follower: impl Fn() -> Follower + Send + Sync + 'static,
    ) -> Result<Self, NodeError> {
        if !store.is_durable() {
            return Err(NodeError::NotDurable);
        }
        let node = Self(Arc::new(Inner {
            follower: Mutex::new(new_follower()),
            new_follower: Box::new(new_follower),
            settings,
            store,
            client,
            registry_size: AtomicU64::new(0),
            contact: Mutex::new(RegistryContact::default()),
            subscriptions: Mutex::new(SubscriptionsStatus::default()),
            exports: Mutex::new(None),
            submitted: tokio::sync::Notify::new(),
            sessions: Sessions::default(),
        }));
        node.restore()?;
        Ok(node)
    }

    pub fn party(&self) -> &PartyId {
        &self.0.settings.party
    }

    /// Records how the scheduled customs exports fare (shown in the status).
    pub fn set_exports_status(&self, status: ExportsStatus) {
        *self
            .0
            .exports
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(status);
    }

    /// How the follow loop last fared with the registry.
    pub fn registry_contact(&self) -> RegistryContact {
        self.contact().clone()
    }

    /// The party's failing subscriptions as the registry last told them.
    pub fn subscriptions_status(&self) -> SubscriptionsStatus {
        self.subscriptions().clone()
    }

    fn subscriptions(&self) -> MutexGuard<'_, SubscriptionsStatus> {
        self.0
            .subscriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn contact(&self) -> MutexGuard<'_, RegistryContact> {
        self.0
            .contact
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub fn client(&self) -> &FeedClient {
        &self.0.client
    }

    pub fn settings(&self) -> &NodeSettings {
        &self.0.settings
    }

    /// The follower. Held briefly: the follow loop takes it for each page.
    pub fn follower(&self) -> MutexGuard<'_, Follower> {
        self.0
            .follower
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn sessions(&self) -> &Sessions {
        &self.0.sessions
    }

    pub(crate) fn conn(&self) -> Result<lading_store::PgPooled, NodeError> {
        Ok(self.0.store.conn()?)
    }

    /// Rebuilds the follower from the database, judging every row and checkpoint again: the
    /// replica trusts its own rows no more than the feed. Rows that do not check — a payload
    /// changed by hand, or leaves that no longer give a checkpoint's root — are recorded as an
    /// incident with their evidence and set aside from the first one that cannot be trusted
    /// on; the follow loop fetches them again from the registry and checks them as new. A row
    /// that names another document than its signed bytes is put back as the bytes say
    /// (`document_refs_repaired`).
    pub fn restore(&self) -> Result<(), NodeError> {
        loop {
            let mut follower = (self.0.new_follower)();
            match restore_into(&self.0.store, &mut follower)? {
                None => {
                    *self.follower() = follower;
                    return self.sync_documents();
                }
                Some((incident, from)) => {
                    let mut conn = self.conn()?;
                    let set_aside = replica::discard_from(&mut conn, from)?;
                    let evidence = serde_json::json!({
                        "incident": incident.to_string(),
                        "setAsideFrom": from,
                        "setAside": set_aside.len(),
                        "firstRows": set_aside.iter().take(4).map(row_evidence).collect::<Vec<_>>(),
                    });
                    let detail = format!(
                        "this replica's own rows did not check ({incident}); {} rows from {from} set aside to be fetched again",
                        set_aside.len()
                    );
                    tracing::error!(%detail, "restoring");
                    incidents::open(&mut conn, None, incident.code(), &detail, &evidence)?;
                }
            }
        }
    }

    /// Makes the list of documents (`node_documents`) agree with the chains the follower
    /// verified: rows of documents it does not vouch for are taken out, and rows missing, or
    /// whose chain length or head is not the verified state's, are made again from the
    /// document's rows — checked whole against what was verified first, as a read checks them
    /// (a damaged chain is left out, and its reads say so). A node that kept its list as it
    /// followed finds nothing to do; a database from before the list, or rows set aside on
    /// restore, are made whole here.
    fn sync_documents(&self) -> Result<(), NodeError> {
        let (projector, verified, size) = {
            let follower = self.follower();
            let verified: HashMap<String, (u64, Digest)> = follower
                .verified_documents()
                .map(|state| (state.reference.to_string(), (state.length, state.head)))
                .collect();
            (
                Projector::of(self.party(), &follower),
                verified,
                follower.size(),
            )
        };
        let mut conn = self.conn()?;
        let mut seen = std::collections::HashSet::new();
        let mut stale = Vec::new();
        let mut remake = Vec::new();
        for node_documents::Head {
            reference,
            length,
            head,
        } in node_documents::heads(&mut conn)?
        {
            match verified.get(&reference) {
                Some((l, h)) if *l as i64 == length && h.0.as_slice() == head.as_slice() => {
                    seen.insert(reference);
                }
                Some(_) => {
                    seen.insert(reference.clone());
                    remake.push(reference);
                }
                None => stale.push(reference),
            }
        }
        remake.extend(verified.keys().filter(|r| !seen.contains(*r)).cloned());
        for chunk in stale.chunks(1000) {
            node_documents::remove(&mut conn, chunk)?;
        }
        if !stale.is_empty() || !remake.is_empty() {
            tracing::info!(
                removed = stale.len(),
                remade = remake.len(),
                "made the list of documents agree with the verified chains"
            );
        }
        remake.sort();
        for chunk in remake.chunks(500) {
            let rows = replica::documents_entries(&mut conn, chunk, size)?;
            let mut made = Vec::with_capacity(chunk.len());
            let follower = self.follower();
            for (reference, rows) in group_by_document(&rows) {
                let Ok(parsed) = reference.parse::<DocumentReference>() else {
                    continue;
                };
                let Chain::Verified(state) = follower.chain(&parsed) else {
                    continue;
                };
                match check_chain(&follower, &parsed, state, rows) {
                    Ok(entries) => {
                        let entries: Vec<(u64, &str)> = entries
                            .iter()
                            .map(|e| (e.index, e.signed.as_str()))
                            .collect();
                        made.extend(projector.rebuilt(&entries, state));
                    }
                    Err(detail) => {
                        tracing::warn!(%reference, %detail, "a document's rows do not make its verified chain; left out of the list");
                    }
                }
            }
            drop(follower);
            node_documents::upsert_many(&mut conn, &made)?;
        }
        Ok(())
    }

    /// Starts the node's loops on `runtime`: following the registry, forwarding submissions,
    /// and, with peers, comparing checkpoints with them every `peer_interval`.
    pub fn spawn_loops(
        &self,
        runtime: &tokio::runtime::Handle,
        peers: Vec<FeedClient>,
        peer_interval: Duration,
    ) {
        let node = self.clone();
        runtime.spawn(async move { node.follow().await });
        let node = self.clone();
        runtime.spawn(async move { node.forward().await });
        if !peers.is_empty() {
            let node = self.clone();
            runtime.spawn(async move { node.exchange(peers, peer_interval).await });
        }
        if !self.0.settings.subscriptions_interval.is_zero() {
            let node = self.clone();
            runtime.spawn(async move { node.watch_subscriptions().await });
        }
    }

    /// Asks the registry for the party's subscriptions every `subscriptions_interval`, for
    /// ever, and keeps the answer: the status and the portal read it from here, so a page
    /// never waits for the registry, and what they show is dated by when it was asked.
    pub async fn watch_subscriptions(&self) {
        loop {
            let answer = self.0.client.subscriptions().await;
            let now = chrono::Utc::now();
            match answer {
                Ok(list) => self.subscriptions().answered(now, list),
                Err(e) => {
                    if self.subscriptions().failed(now, &e) {
                        tracing::warn!(error = %e, "cannot ask the registry for the party's subscriptions; retrying");
                    } else {
                        tracing::debug!(error = %e, "still cannot ask the registry for the party's subscriptions");
                    }
                }
            }
            tokio::time::sleep(self.0.settings.subscriptions_interval).await;
        }
    }

    /// Follows the registry for ever: catches up, then waits `poll_interval`.
    pub async fn follow(&self) {
        let projector = Projector::of(self.party(), &self.follower());
        let mut keeper = PgKeeper::new(self.0.store.clone()).with_projector(projector);
        // Rows appended since the table was last settled (see below).
        let mut unsettled = 0u64;
        loop {
            match crate::catch_up(
                &self.0.client,
                &self.0.follower,
                &mut keeper,
                self.0.settings.page_size,
            )
            .await
            {
                Ok(done) => {
                    if let Some(size) = done.registry_size {
                        self.0.registry_size.store(size, Ordering::Relaxed);
                    }
                    self.contact().answered(chrono::Utc::now());
                    if done.full + done.hash_only + done.backfilled > 0 {
                        // Polling: twice a second while the registry takes writes.
                        tracing::debug!(
                            size = self.follower().size(),
                            ?done,
                            "followed the registry"
                        );
                    }
                    // After a large catch-up, and once it is over, settle the new rows so that
                    // reconciliation reads the leaves from the index alone (autovacuum would,
                    // later; a reconciliation meanwhile would visit every new row). VACUUM
                    // needs the table's owner: the store runs it as the owner when it knows one.
                    unsettled += done.full + done.hash_only;
                    if unsettled >= 100_000 && done.full + done.hash_only < 1_000 {
                        let settled =
                            tokio::task::block_in_place(|| self.0.store.maintain(replica::settle));
                        match settled {
                            Ok(()) => unsettled = 0,
                            Err(e) => tracing::warn!(error = %e, "could not settle new rows"),
                        }
                    }
                }
                Err(ReplicaError::Incident(_)) => {
                    // Recorded by catch_up; the follower is as it was. A registry that sends
                    // something else next time is followed from here.
                }
                Err(e @ (ReplicaError::Http(_) | ReplicaError::Refused { .. })) => {
                    // Said once when it starts, not at every poll while it lasts.
                    if self.contact().failed(chrono::Utc::now(), &e) {
                        tracing::warn!(error = %e, "the registry is not reachable; retrying");
                    } else {
                        tracing::debug!(error = %e, "the registry is still not reachable");
                    }
                }
                Err(e) => {
                    // Keeping failed: memory may be ahead of the database. Rebuild from it.
                    tracing::error!(error = %e, "could not keep what was checked; restoring");
                    if let Err(e) = tokio::task::block_in_place(|| self.restore()) {
                        tracing::error!(error = %e, "restoring failed");
                    }
                }
            }
            tokio::time::sleep(self.0.settings.poll_interval).await;
        }
    }

    /// What this replica is and holds (`GET /v1/status`).
    pub fn status(&self) -> Result<Status, NodeError> {
        let (size, root, checkpoint) = {
            let follower = self.follower();
            let checkpoint = follower
                .latest_verified_checkpoint()
                .map(|c| HeldCheckpoint {
                    size: c.unverified().size,
                    root: c.unverified().root.to_hex(),
                });
            (follower.size(), follower.root().to_hex(), checkpoint)
        };
        let registry_size = self.0.registry_size.load(Ordering::Relaxed).max(size);
        let contact = self.contact().clone();
        let mut conn = self.conn()?;
        let last = reconciliations::last(&mut conn, self.party().as_str())?;
        let open = incidents::open_incidents(&mut conn, None)?;
        let counts = outbox::counts(&mut conn)?;
        Ok(Status {
            party: self.party().to_string(),
            registry: self.0.settings.registry.clone(),
            size,
            root,
            registry_size,
            lag: registry_size - size,
            registry_contact: contact,
            checkpoint,
            last_reconciliation: last.map(|r| LastReconciliation {
                at: r.finished_at.to_rfc3339(),
                outcome: r.outcome,
                registry_size: r.registry_size as u64,
                differences: r.differences as u64,
            }),
            open_incidents: open.into_iter().map(IncidentView::from).collect(),
            submissions: SubmissionCounts {
                pending: counts.pending,
                sequenced: counts.sequenced,
                refused: counts.refused,
                parked: counts.parked,
            },
            subscriptions: self.subscriptions_status(),
            exports: self
                .0
                .exports
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        })
    }

    /// The signed entries of a document the party holds (its transitions and events), as rows of
    /// this replica's database that check whole against what it verified: each row the leaf
    /// verified at its index, and the transitions exactly the chain of the verified state —
    /// `length` of them from the ISSUE, each naming the one before, the last its head — with
    /// nothing of another document among them. `None` when it holds no such document;
    /// [`NodeError::ChainDamaged`] (recorded as an incident) when the rows do not check, and
    /// [`NodeError::ChainUnverified`] when the chain itself was not verified.
    pub fn document_entries(
        &self,
        reference: &DocumentReference,
    ) -> Result<Option<(lading_domain::DocumentState, Vec<HeldEntry>)>, NodeError> {
        // The state and the size it was verified at, in one moment. Pages and back-fills are
        // kept under the follower's lock, so every row below that size was written before it
        // was read here: one missing is damage, never a race with the follow loop.
        let (state, size) = {
            let follower = self.follower();
            match follower.chain(reference) {
                Chain::Verified(state) => (state.clone(), follower.size()),
                Chain::Unverified { given_up } => {
                    return Err(NodeError::ChainUnverified {
                        reference: reference.clone(),
                        given_up,
                    })
                }
                Chain::Unknown => return Ok(None),
            }
        };
        let mut conn = self.conn()?;
        let rows = replica::document_entries(&mut conn, reference.as_str(), size)?;
        let checked = check_chain(&self.follower(), reference, &state, &rows);
        match checked {
            Ok(entries) => Ok(Some((state, entries))),
            Err(detail) => {
                self.chain_damaged(&mut conn, reference, &state, &rows, &detail)?;
                Err(NodeError::ChainDamaged {
                    reference: reference.clone(),
                    detail,
                })
            }
        }
    }

    /// Records a damaged chain as an incident with the rows as evidence: one while it is open,
    /// however often the document is read (a repair closes it; a read that still finds damage
    /// opens another).
    fn chain_damaged(
        &self,
        conn: &mut PgConnection,
        reference: &DocumentReference,
        state: &lading_domain::DocumentState,
        rows: &[ReplicaEntryRow],
        detail: &str,
    ) -> Result<(), NodeError> {
        let evidence = serde_json::json!({
            "document": reference,
            "verified": { "length": state.length, "head": state.head.to_hex() },
            "reason": detail,
            "rowCount": rows.len(),
            "rows": rows.iter().take(EVIDENCE_ROWS).map(row_evidence).collect::<Vec<_>>(),
        });
        let opened = incidents::open_unless_open(
            conn,
            None,
            CHAIN_DAMAGED,
            &format!(
                "document {reference}: the rows held here are not the chain this replica verified ({detail}); its reads answer 503 until they are repaired"
            ),
            &evidence,
            &serde_json::json!({ "document": reference }),
        )?;
        if let Some(id) = opened {
            tracing::error!(incident = id, %reference, %detail, "a document's rows do not make its verified chain");
        }
        Ok(())
    }

    /// Keeps a submission signed by this replica's own party, durably, to forward in order.
    /// Everything is checked before anything is kept: a refused submission is never
    /// forwarded.
    pub fn take_submission(
        &self,
        signed: &str,
        expect: SubmissionKind,
    ) -> Result<outbox::OutboxRow, NodeError> {
        let checked = self
            .follower()
            .check_submission(self.party(), signed)
            .map_err(NodeError::Refused)?;
        let kind = if checked.is_transition {
            SubmissionKind::Transition
        } else {
            SubmissionKind::Event
        };
        if kind != expect {
            return Err(NodeError::WrongKind { is: kind.as_str() });
        }
        let row = outbox::take(
            &mut *self.conn()?,
            kind.as_str(),
            signed,
            &leaf_hash(signed.as_bytes()).0,
            checked.document.as_ref().map(DocumentReference::as_str),
        )?;
        self.0.submitted.notify_one();
        Ok(row)
    }

    /// Forwards taken submissions to the registry for ever, oldest first, one at a time: the
    /// registry orders them as they arrive, so none may overtake another. A refusal is kept
    /// as the registry's problem+json. An unreachable registry is tried again later, from the
    /// same submission, for as long as it takes. A submission the registry answers but keeps
    /// refusing as unavailable for longer than `park_after` is parked with the reason, and the
    /// queue moves on; later submissions of its document are parked behind it, so none
    /// overtakes another of its document.
    pub async fn forward(&self) {
        loop {
            let stalled = match self.forward_pending().await {
                Ok(stalled) => stalled,
                Err(e) => {
                    tracing::error!(error = %e, "could not read or update the outbox");
                    true
                }
            };
            let wait = if stalled {
                self.0.settings.poll_interval
            } else {
                Duration::from_secs(30)
            };
            tokio::select! {
                () = self.0.submitted.notified(), if !stalled => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One pass over the pending submissions; whether it stopped at one to try again later.
    async fn forward_pending(&self) -> Result<bool, NodeError> {
        let rows = self.with_outbox(|conn| outbox::pending(conn, 100))?;
        let documents: Vec<&str> = rows
            .iter()
            .filter_map(|r| r.document_ref.as_deref())
            .collect();
        let mut parked: HashMap<String, i64> = self
            .with_outbox(|conn| outbox::parked_before(conn, &documents))?
            .into_iter()
            .collect();
        for row in &rows {
            if let Some(&first) = row.document_ref.as_ref().and_then(|d| parked.get(d)) {
                let why = serde_json::json!({
                    "code": "parked_behind",
                    "detail": format!(
                        "waits behind submission {first} of the same document, which is parked"
                    ),
                    "behind": first,
                });
                self.with_outbox(|conn| outbox::park(conn, row.seq, &why))?;
                tracing::warn!(
                    seq = row.seq,
                    behind = first,
                    "parked behind a parked submission"
                );
                continue;
            }
            let taken_at = lading_domain::Timestamp::from_datetime_truncated(row.taken_at);
            match self.0.client.submit(&row.kind, &row.signed, taken_at).await {
                Ok((sequenced, answer)) => {
                    self.with_outbox(|conn| outbox::answer(conn, row.seq, sequenced, &answer))?;
                    tracing::info!(seq = row.seq, sequenced, "forwarded a submission");
                }
                Err(crate::ReplicaError::Refused { status, body, .. }) => {
                    // The registry answered, but not about the submission: count it.
                    let since = self.with_outbox(|conn| outbox::failed(conn, row.seq))?;
                    let failing = (chrono::Utc::now() - since).to_std().unwrap_or_default();
                    if failing < self.0.settings.park_after {
                        tracing::warn!(
                            seq = row.seq,
                            status,
                            "the registry could not take a submission; retrying"
                        );
                        return Ok(true);
                    }
                    let answer = serde_json::from_str::<serde_json::Value>(&body)
                        .unwrap_or(serde_json::Value::String(body));
                    let why = serde_json::json!({
                        "code": "parked",
                        "detail": format!(
                            "the registry answered {status} to every attempt for {} s; parked so \
                             that later submissions go on (POST /v1/submissions/{}/retry to try \
                             it again)",
                            failing.as_secs(),
                            row.seq
                        ),
                        "status": status,
                        "attempts": row.attempts + 1,
                        "registryAnswer": answer,
                    });
                    self.with_outbox(|conn| outbox::park(conn, row.seq, &why))?;
                    tracing::error!(
                        seq = row.seq,
                        status,
                        "parked a submission the registry keeps refusing as unavailable"
                    );
                    if let Some(document) = &row.document_ref {
                        parked.entry(document.clone()).or_insert(row.seq);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, seq = row.seq, "the registry did not answer a submission; retrying");
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Runs `f` on a connection of the node's database, off the async workers' hands.
    fn with_outbox<T>(
        &self,
        f: impl FnOnce(&mut PgConnection) -> Result<T, StoreError>,
    ) -> Result<T, NodeError> {
        tokio::task::block_in_place(|| Ok(f(&mut *self.conn()?)?))
    }

    /// Puts a parked submission back in the queue, with those of its document parked behind
    /// it (`POST /v1/submissions/{seq}/retry`).
    pub fn retry_submission(&self, seq: i64) -> Result<outbox::Requeued, NodeError> {
        let requeued = outbox::requeue(&mut *self.conn()?, seq)?;
        if matches!(requeued, outbox::Requeued::Done(_)) {
            self.0.submitted.notify_one();
        }
        Ok(requeued)
    }

    /// Submissions from `from` on (`GET /v1/submissions`).
    pub fn submissions(&self, from: i64, limit: i64) -> Result<Vec<outbox::OutboxRow>, NodeError> {
        Ok(outbox::list(&mut *self.conn()?, from, limit)?)
    }

    pub fn submission(&self, seq: i64) -> Result<Option<outbox::OutboxRow>, NodeError> {
        Ok(outbox::get(&mut *self.conn()?, seq)?)
    }

    /// Signed checkpoints held, of size above `after` (what other replicas compare).
    pub fn checkpoints_after(&self, after: u64, limit: usize) -> Result<Vec<String>, NodeError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = replica::checkpoints_after(&mut *self.conn()?, Some(after), limit)?;
        Ok(rows.into_iter().map(|row| row.signed).collect())
    }

    /// Compares checkpoints with other replicas for ever, every `every`: each one they hold
    /// is judged as if the registry had sent it, so a registry that signed two histories —
    /// one shown to them, one to this replica — is caught with both signatures as evidence.
    ///
    /// What a peer serves is judged as the peer's first: a checkpoint the registry did not sign
    /// (or no checkpoint at all) is the peer's doing, never evidence against the registry. It
    /// is recorded against that peer — one open `peer_bad_checkpoint` incident per peer, named
    /// by the party its certificate names, however often it repeats — and nothing more is read
    /// from that peer until the next round.
    pub async fn exchange(&self, peers: Vec<FeedClient>, every: Duration) {
        let mut seen = vec![0u64; peers.len()];
        loop {
            for (peer, seen) in peers.iter().zip(seen.iter_mut()) {
                match peer.checkpoints_after(*seen, 1000).await {
                    Ok(held) => {
                        // Sizes this replica holds are judged against its own leaves. A
                        // checkpoint ahead of it is checked against the registry's own word
                        // (`check_ahead`), then waits for the entries.
                        let size_held = self.follower().size();
                        for signed in held {
                            let judged = self.follower().registry_signed(&signed);
                            let size = match judged {
                                Ok(size) => size,
                                Err(refused) => {
                                    self.peer_fault(peer, &signed, &refused);
                                    break;
                                }
                            };
                            if size > size_held {
                                if let Err(e) = self.check_ahead(&signed, size).await {
                                    tracing::error!(peer = peer.base(), error = %e, "a peer's checkpoint ahead of this replica does not fit");
                                }
                                break;
                            }
                            match tokio::task::block_in_place(|| self.compare_checkpoint(&signed)) {
                                Ok(()) => {}
                                Err(NodeError::Refused(incident)) => {
                                    tracing::error!(peer = peer.base(), %incident, "a peer holds a checkpoint that does not fit");
                                }
                                Err(e) => {
                                    tracing::warn!(peer = peer.base(), error = %e, "comparing a checkpoint");
                                    break;
                                }
                            }
                            *seen = (*seen).max(size);
                        }
                    }
                    Err(e) => tracing::debug!(peer = peer.base(), error = %e, "peer not reachable"),
                }
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Records that `peer` served `served`, which is not a checkpoint the registry signed: an
    /// incident about the peer (its party, as its certificate names it), opened once while open.
    fn peer_fault(&self, peer: &FeedClient, served: &str, refused: &Incident) {
        let party = match peer.server() {
            Some(lading_pki::Subject::Party(party)) => Some(party.to_string()),
            _ => None,
        };
        let who = party.as_deref().unwrap_or("a peer");
        let evidence = serde_json::json!({
            "peer": peer.base(),
            "party": party,
            "refused": refused.to_string(),
            "served": served.chars().take(EVIDENCE_BYTES).collect::<String>(),
            "servedBytes": served.len(),
        });
        let detail = format!(
            "{who} at {} served a checkpoint the registry did not sign ({refused}); its checkpoints are not compared until it serves the registry's own, and nothing is held against the registry",
            peer.base()
        );
        let opened = tokio::task::block_in_place(|| {
            Ok::<_, NodeError>(incidents::open_unless_open(
                &mut *self.conn()?,
                party.as_deref(),
                PEER_BAD_CHECKPOINT,
                &detail,
                &evidence,
                &serde_json::json!({ "peer": peer.base() }),
            )?)
        });
        match opened {
            Ok(Some(id)) => {
                tracing::error!(incident = id, peer = peer.base(), %refused, "a peer served a checkpoint the registry did not sign")
            }
            Ok(None) => {
                tracing::debug!(peer = peer.base(), %refused, "a peer served a checkpoint the registry did not sign (again)")
            }
            Err(e) => {
                tracing::warn!(peer = peer.base(), error = %e, "could not record a peer's bad checkpoint")
            }
        }
    }

    /// A peer's checkpoint of `size`, ahead of what this replica holds: the registry must
    /// acknowledge a checkpoint of that size and prove that it extends the latest one this
    /// replica verified (a consistency proof); then the registry's and the peer's checkpoints
    /// are judged like any other, so two roots of one size are caught before the entries come.
    async fn check_ahead(&self, peer_signed: &str, size: u64) -> Result<(), NodeError> {
        let Some(mine) = self.follower().latest_verified_checkpoint().cloned() else {
            return Ok(());
        };
        let (from_size, from_root) = (mine.unverified().size, mine.unverified().root);
        // Asked once per size: after that the follower holds a checkpoint of that size, and
        // the peer's is compared with it.
        if self.follower().holds_checkpoint(size) {
            return tokio::task::block_in_place(|| self.compare_checkpoint(peer_signed));
        }
        let answer = match self.0.client.consistency(from_size, size).await {
            Ok(answer) => answer,
            Err(e) => {
                tracing::debug!(error = %e, "the registry did not answer a consistency proof");
                return Ok(());
            }
        };
        let keeper = || PgKeeper::new(self.0.store.clone());
        let Some(answer) = answer else {
            let incident = Incident::UnacknowledgedCheckpoint {
                size,
                signed: peer_signed.to_owned(),
            };
            let refused = self.record(keeper(), incident);
            // Kept, waiting for its entries: it is the registry's signature all the same, and
            // this size is not asked about again.
            tokio::task::block_in_place(|| self.compare_checkpoint(peer_signed))?;
            return Err(refused);
        };
        tokio::task::block_in_place(|| self.compare_checkpoint(&answer.to.signed))?;
        let to = lading_domain::SignedCheckpoint::parse(&answer.to.signed)
            .map_err(|e| NodeError::Reconcile(e.to_string()))?;
        let checked = lading_domain::merkle::verify_consistency(
            &answer.proof,
            from_size,
            from_root,
            size,
            to.unverified().root,
            to.unverified().block_size,
        );
        if let Err(e) = checked {
            let incident = Incident::InconsistentCheckpoints {
                from_size,
                to_size: size,
                from: mine.as_str().to_owned(),
                to: answer.to.signed.clone(),
                detail: e.to_string(),
            };
            return Err(self.record(keeper(), incident));
        }
        tokio::task::block_in_place(|| self.compare_checkpoint(peer_signed))
    }

    /// Keeps `incident` (with its evidence) and returns it as the refusal it is.
    fn record(&self, mut keeper: PgKeeper, incident: Incident) -> NodeError {
        if let Err(e) = tokio::task::block_in_place(|| keeper.incident(&incident)) {
            return NodeError::Reconcile(e.to_string());
        }
        NodeError::Refused(incident)
    }

    /// Takes a checkpoint another replica holds: kept when it checks; two of one size are an
    /// incident with both as evidence.
    pub fn compare_checkpoint(&self, signed: &str) -> Result<(), NodeError> {
        let mut keeper = PgKeeper::new(self.0.store.clone());
        let judged = self.follower().checkpoint(signed);
        // Of a size verified earlier (no longer in the follower's memory): the checkpoint of
        // that size held here makes the pair of signatures that proves two histories.
        let judged = match judged {
            Err(Incident::CheckpointRoot { size, .. }) => {
                let held = replica::largest_checkpoint_within(
                    &mut *self.conn()?,
                    size.saturating_sub(1),
                    size,
                )?;
                match held {
                    Some(row) if row.verified && row.size as u64 == size => {
                        Err(Incident::ConflictingCheckpoints {
                            size,
                            first: row.signed,
                            second: signed.to_owned(),
                        })
                    }
                    _ => judged,
                }
            }
            other => other,
        };
        match judged {
            Ok(status) => {
                let verified = status.checked();
                keeper
                    .keep_checkpoint(signed, verified)
                    .map_err(|e| NodeError::Reconcile(e.to_string()))
            }
            Err(incident) => {
                keeper
                    .incident(&incident)
                    .map_err(|e| NodeError::Reconcile(e.to_string()))?;
                Err(NodeError::Refused(incident))
            }
        }
    }
}

/// `GET /v1/status` of a replica.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub party: String,
    pub registry: String,
    /// Entries verified and held.
    pub size: u64,
    pub root: String,
    /// The registry's size when it was last asked.
    pub registry_size: u64,
    pub lag: u64,
    /// Whether the registry answers the follow loop: the lag above is as of `lastHeard`.
    pub registry_contact: RegistryContact,
    pub checkpoint: Option<HeldCheckpoint>,
    pub last_reconciliation: Option<LastReconciliation>,
    pub open_incidents: Vec<IncidentView>,
    pub submissions: SubmissionCounts,
    /// The party's webhook subscriptions that are failing, as the registry said when last
    /// asked (`checkedAt`).
    pub subscriptions: SubscriptionsStatus,
    /// The scheduled customs exports, when the node makes them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exports: Option<ExportsStatus>,
}

/// How a node's scheduled customs exports fare.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportsStatus {
    /// Where they are written.
    pub dir: String,
    /// The last bundle written, its range and when.
    pub last_file: Option<String>,
    pub last_range: Option<[u64; 2]>,
    pub last_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Why the last attempt failed, and how many failed in a row (0: the last one worked).
    pub last_error: Option<String>,
    pub failures: u64,
    /// When the next attempt is due.
    pub next_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// How the follow loop last fared with the registry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistryContact {
    /// When the registry last answered a poll (none since the node started: `None`).
    pub last_heard: Option<chrono::DateTime<chrono::Utc>>,
    /// Since when every poll has failed (`None` while it answers).
    pub unreachable_since: Option<chrono::DateTime<chrono::Utc>>,
    /// Why the last poll failed.
    pub last_error: Option<String>,
}

impl RegistryContact {
    fn answered(&mut self, at: chrono::DateTime<chrono::Utc>) {
        self.last_heard = Some(at);
        self.unreachable_since = None;
        self.last_error = None;
    }

    /// Records a failed poll; true when it is the first of a run.
    fn failed(&mut self, at: chrono::DateTime<chrono::Utc>, error: &ReplicaError) -> bool {
        self.last_error = Some(error.to_string());
        let first = self.unreachable_since.is_none();
        self.unreachable_since.get_or_insert(at);
        first
    }

    /// Whether the registry answered the last poll.
    pub fn reachable(&self) -> bool {
        self.unreachable_since.is_none()
    }
}

/// The party's failing webhook subscriptions, as the registry last answered the node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionsStatus {
    /// When the registry last answered (`None`: not yet since the node started); `failing`
    /// is as of then.
    pub checked_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The subscriptions whose status was `failing` then.
    pub failing: Vec<FailingSubscription>,
    /// Since when every ask has failed (`None` while the registry answers).
    pub unanswered_since: Option<chrono::DateTime<chrono::Utc>>,
    /// Why the last ask failed.
    pub last_error: Option<String>,
}

/// A subscription the registry marked `failing`: its deliveries have failed for longer than
/// the registry's `notifications.failing_after_ms` (they are still retried).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailingSubscription {
    pub id: String,
    /// Its callback.
    pub url: String,
    /// Since when its deliveries have failed.
    pub failing_since: Option<chrono::DateTime<chrono::Utc>>,
    /// Failed attempts in a row.
    pub failures: i64,
    /// What the last attempt met (the receiver's status, or why it could not be reached).
    pub last_error: Option<String>,
    /// The first ledger index not delivered yet: where deliveries resume once the receiver
    /// answers.
    pub next_index: u64,
}

impl SubscriptionsStatus {
    fn answered(
        &mut self,
        at: chrono::DateTime<chrono::Utc>,
        list: Vec<crate::RegistrySubscription>,
    ) {
        self.checked_at = Some(at);
        self.failing = list
            .into_iter()
            .filter(|s| s.status == "failing")
            .map(|s| FailingSubscription {
                id: s.id,
                url: s.url,
                failing_since: s.failing_since,
                failures: s.failures,
                last_error: s.last_error,
                next_index: s.next_index,
            })
            .collect();
        self.unanswered_since = None;
        self.last_error = None;
    }

    /// Records a failed ask (what was last answered stays, dated by `checked_at`); true when
    /// it is the first of a run.
    fn failed(&mut self, at: chrono::DateTime<chrono::Utc>, error: &ReplicaError) -> bool {
        self.last_error = Some(error.to_string());
        let first = self.unanswered_since.is_none();
        self.unanswered_since.get_or_insert(at);
        first
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeldCheckpoint {
    pub size: u64,
    pub root: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastReconciliation {
    pub at: String,
    pub outcome: String,
    pub registry_size: u64,
    pub differences: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncidentView {
    pub id: i64,
    pub code: String,
    pub detail: String,
    pub opened_at: String,
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
    /// The party it is about, when not the registry or this replica (a peer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub party: Option<String>,
}

impl From<incidents::IncidentRow> for IncidentView {
    fn from(row: incidents::IncidentRow) -> Self {
        Self {
            id: row.id,
            code: row.code,
            detail: row.detail,
            opened_at: row.opened_at.to_rfc3339(),
            evidence: row.evidence,
            party: row.party,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubmissionCounts {
    pub pending: i64,
    pub sequenced: i64,
    pub refused: i64,
    /// Waiting for an operator: the registry kept refusing them as unavailable (or they wait
    /// behind one of their document that did).
    pub parked: i64,
}

/// An entry served to the party, checked against the verified leaf.
#[derive(Debug, Clone)]
pub struct HeldEntry {
    pub index: u64,
    pub signed: String,
}

/// `rows` (ordered by document) as one slice per document.
fn group_by_document(rows: &[ReplicaEntryRow]) -> Vec<(&str, &[ReplicaEntryRow])> {
    let mut groups = Vec::new();
    let mut start = 0;
    for i in 1..=rows.len() {
        let boundary = i == rows.len() || rows[i].document_ref != rows[start].document_ref;
        if boundary {
            if let Some(reference) = rows[start].document_ref.as_deref() {
                groups.push((reference, &rows[start..i]));
            }
            start = i;
        }
    }
    groups
}

/// The entries of `rows` when they are exactly what this replica verified of `reference`:
/// each the leaf verified at its index; its transitions the whole chain of `state` — from the
/// ISSUE, each naming the one before, `state.length` of them, the last its head — and nothing
/// of another document among them. Otherwise what does not check.
fn check_chain(
    follower: &Follower,
    reference: &DocumentReference,
    state: &lading_domain::DocumentState,
    rows: &[ReplicaEntryRow],
) -> Result<Vec<HeldEntry>, String> {
    let mut entries = Vec::with_capacity(rows.len());
    let mut head: Option<Digest> = None;
    let mut length = 0u64;
    for row in rows {
        let index = u64::try_from(row.idx).unwrap_or(u64::MAX);
        let bytes = row.signed.as_deref().unwrap_or_default();
        if follower.leaf(index) != Some(leaf_hash(bytes)) {
            return Err(format!(
                "entry {index} is not the entry verified at that index"
            ));
        }
        let signed =
            String::from_utf8(bytes.to_vec()).map_err(|_| format!("entry {index} is not text"))?;
        if let Ok(transition) = SignedTransition::parse(&signed) {
            let payload = transition.payload();
            if payload.document_reference() != reference {
                return Err(format!(
                    "entry {index} is a transition of {}",
                    payload.document_reference()
                ));
            }
            match (head, payload.previous_transition_checksum()) {
                (None, None) if payload.action() == Action::Issue => {}
                (Some(previous), Some(named)) if *named == previous => {}
                (None, _) => {
                    return Err(format!(
                        "the chain does not begin with its ISSUE (entry {index} is a {})",
                        payload.action().as_str()
                    ))
                }
                (Some(_), _) => {
                    return Err(format!(
                        "entry {index} does not follow the transition held before it (one is missing between them)"
                    ))
                }
            }
            head = Some(transition.checksum());
            length += 1;
        } else {
            let about = SignedEvent::parse(&signed)
                .ok()
                .and_then(|e| e.event().document_reference().cloned());
            if about.as_ref() != Some(reference) {
                return Err(format!("entry {index} is not an entry of {reference}"));
            }
        }
        entries.push(HeldEntry { index, signed });
    }
    if length != state.length || head != Some(state.head) {
        return Err(format!(
            "its rows make a chain of {length} transitions where {} were verified, up to {}",
            state.length,
            state.head.to_hex()
        ));
    }
    Ok(entries)
}

/// A row as evidence: index, hashes, and the payload as it was.
pub(crate) fn row_evidence(row: &ReplicaEntryRow) -> serde_json::Value {
    serde_json::json!({
        "index": row.idx,
        "leafHash": hex::encode(&row.leaf_hash),
        "signed": row.signed.as_ref().map(|s| String::from_utf8_lossy(s).into_owned()),
        "documentRef": row.document_ref,
    })
}

/// Judges the database's rows and checkpoints into `follower`. `Some((incident, from))` when a
/// row did not check: rows from `from` on cannot be trusted.
fn restore_into(
    store: &Store,
    follower: &mut Follower,
) -> Result<Option<(Incident, u64)>, NodeError> {
    let mut conn = store.conn()?;
    // Checkpoints ahead of the leaves, each checked as the leaves reach its size, so leaves
    // changed by hand are caught at the first checkpoint they break: the latest held, and the
    // largest held within each page — not every one ever stored, so a restore's memory and
    // work do not grow with the ledger's age.
    let mut sizes = Vec::new();
    if let Some(row) = replica::latest_checkpoint(&mut conn)? {
        judge_held_checkpoint(&mut conn, follower, &row, &mut sizes)?;
    }
    let mut from = 0u64;
    loop {
        let page_end = from.saturating_add(RESTORE_PAGE as u64);
        if let Some(row) = replica::largest_checkpoint_within(&mut conn, from, page_end)? {
            judge_held_checkpoint(&mut conn, follower, &row, &mut sizes)?;
        }
        let rows = replica::entries(&mut conn, from, RESTORE_PAGE)?;
        let Some(last) = rows.last() else {
            return Ok(None);
        };
        let next = last.idx as u64 + 1;
        let tags: Vec<(i64, Option<String>)> = rows
            .iter()
            .map(|row| (row.idx, row.document_ref.clone()))
            .collect();
        let entries = rows
            .into_iter()
            .map(|row| FeedEntry {
                index: row.idx as u64,
                leaf_hash: Digest::from_slice(&row.leaf_hash).unwrap_or(Digest([0; 32])),
                signed: row.signed.map(|s| String::from_utf8_lossy(&s).into_owned()),
            })
            .collect::<Vec<_>>();
        let (judged, refusal) = crate::judge_page(follower, &entries);
        retag(&mut conn, &tags, &entries, &judged)?;
        if let Some(incident) = refusal {
            let bad_from = match &incident {
                // Leaves that break a checkpoint: the last checkpoint below it still holds.
                Incident::CheckpointRoot { size, .. } => sizes
                    .iter()
                    .copied()
                    .filter(|s| s < size)
                    .max()
                    .unwrap_or(0),
                _ => follower.size(),
            };
            return Ok(Some((incident, bad_from)));
        }
        from = next;
    }
}

/// Judges a checkpoint row held here into `follower`; its size joins `sizes` when it checks.
/// A row that does not (changed by hand) is kept as evidence in an incident, not used.
fn judge_held_checkpoint(
    conn: &mut PgConnection,
    follower: &mut Follower,
    row: &replica::ReplicaCheckpointRow,
    sizes: &mut Vec<u64>,
) -> Result<(), NodeError> {
    if let Err(incident) = follower.checkpoint(&row.signed) {
        let detail = format!("a checkpoint held here does not check: {incident}");
        tracing::error!(%detail, "restoring");
        incidents::open(
            conn,
            None,
            incident.code(),
            &detail,
            &serde_json::json!({ "size": row.size, "signed": row.signed }),
        )?;
        return Ok(());
    }
    sizes.push(row.size as u64);
    Ok(())
}

/// Puts back, on the rows of `entries` the follower accepted (`judged`), the document each
/// belongs to as its signed bytes say, where the row names another (changed by hand: the
/// leaves are intact, so reconciliation, which compares leaves, cannot see it; the reads
/// answer `chain_damaged` meanwhile). An incident with the rows as they were.
fn retag(
    conn: &mut PgConnection,
    tags: &[(i64, Option<String>)],
    entries: &[FeedEntry],
    judged: &[Judged],
) -> Result<(), NodeError> {
    let mut wrong = Vec::new();
    for (((idx, found), entry), verdict) in tags.iter().zip(entries).zip(judged) {
        let signed = match verdict {
            Judged::Transition(state) => Some(state.reference.to_string()),
            Judged::ChainUnknown(reference) => Some(reference.to_string()),
            Judged::Event => entry
                .signed
                .as_deref()
                .and_then(crate::document_of)
                .map(|d| d.to_string()),
            Judged::HashOnly | Judged::Party => None,
        };
        if *found != signed {
            wrong.push((*idx, found.clone(), signed));
        }
    }
    if wrong.is_empty() {
        return Ok(());
    }
    let fixed: Vec<(i64, Option<String>)> = wrong
        .iter()
        .map(|(idx, _, signed)| (*idx, signed.clone()))
        .collect();
    replica::set_document_refs(conn, &fixed)?;
    let detail = format!(
        "{} rows named another document than their signed bytes do; put back as the bytes say",
        wrong.len()
    );
    tracing::error!(%detail, "restoring");
    incidents::open(
        conn,
        None,
        DOCUMENT_REFS_REPAIRED,
        &detail,
        &serde_json::json!({
            "count": wrong.len(),
            "rows": wrong
                .iter()
                .take(EVIDENCE_ROWS)
                .map(|(idx, found, signed)| serde_json::json!({
                    "index": idx,
                    "documentRef": found,
                    "signedFor": signed,
                }))
                .collect::<Vec<_>>(),
        }),
    )?;
    // Chains read as damaged may be whole again; a read that still finds one is not opens its
    // incident again.
    incidents::close(conn, None, CHAIN_DAMAGED)?;
    Ok(())
}

/// Keeps what the follower checked in the replica's database. Diesel is blocking: each call
/// runs on a worker that may block (`block_in_place`).
#[derive(Debug)]
pub struct PgKeeper {
    store: Store,
    /// The last incident recorded, so a registry that keeps sending the same bad entry does
    /// not fill the table with copies.
    last_incident: Option<String>,
    /// Keeps the node's list of documents with the entries, when set.
    projector: Option<Projector>,
}

impl PgKeeper {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            last_incident: None,
            projector: None,
        }
    }

    /// Also keeps the node's list of documents (`node_documents`), in the transaction that
    /// keeps the entries it follows from.
    pub fn with_projector(mut self, projector: Projector) -> Self {
        self.projector = Some(projector);
        self
    }

    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut PgConnection) -> Result<T, StoreError>,
    ) -> Result<T, ReplicaError> {
        let run = || {
            let mut conn = self.store.conn().map_err(store_error)?;
            f(&mut conn).map_err(store_error)
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(run)
            }
            _ => run(),
        }
    }
}

fn store_error(e: StoreError) -> ReplicaError {
    ReplicaError::Keep(e.to_string())
}

/// The rows of `entries` as `replica_entries` keeps them.
fn entry_rows(entries: &[(FeedEntry, Option<DocumentReference>)]) -> Vec<ReplicaEntryRow> {
    entries
        .iter()
        .map(|(entry, document)| ReplicaEntryRow {
            idx: entry.index as i64,
            leaf_hash: entry.leaf_hash.0.to_vec(),
            signed: entry.signed.as_ref().map(|s| s.as_bytes().to_vec()),
            document_ref: document.as_ref().map(ToString::to_string),
        })
        .collect()
}

/// Writes what `entries` (with the follower's verdicts) change of the list of documents: an
/// ISSUE makes a row, a later transition moves it to the state it led to, a shipment event
/// dates it. Rows are read once, changed in memory in index order, and written back.
fn project(
    conn: &mut PgConnection,
    projector: &Projector,
    entries: &[(FeedEntry, Option<DocumentReference>)],
    judged: &[Judged],
) -> Result<(), StoreError> {
    let touched: Vec<String> = entries
        .iter()
        .zip(judged)
        .filter(|(_, verdict)| matches!(verdict, Judged::Transition(_) | Judged::Event))
        .filter_map(|((_, document), _)| document.as_ref().map(ToString::to_string))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if touched.is_empty() {
        return Ok(());
    }
    let mut rows: HashMap<String, lading_store::node_documents::NodeDocumentRow> =
        node_documents::get_many(conn, &touched)?
            .into_iter()
            .map(|row| (row.reference.clone(), row))
            .collect();
    let mut changed = std::collections::BTreeSet::new();
    for ((entry, _), verdict) in entries.iter().zip(judged) {
        let Some(signed) = entry.signed.as_deref() else {
            continue;
        };
        match verdict {
            Judged::Transition(state) => {
                let Ok(transition) = SignedTransition::parse(signed) else {
                    continue;
                };
                let reference = state.reference.to_string();
                if transition.payload().action() == Action::Issue {
                    if let Some(row) = projector.issued(entry.index, &transition, state) {
                        rows.insert(reference.clone(), row);
                        changed.insert(reference);
                    }
                } else if let Some(row) = rows.get_mut(&reference) {
                    projector.advanced(row, entry.index, &transition, state);
                    changed.insert(reference);
                }
            }
            Judged::Event => {
                let (Some(reference), Some(at)) =
                    (crate::document_of(signed), projection::event_time(signed))
                else {
                    continue;
                };
                let reference = reference.to_string();
                if let Some(row) = rows.get_mut(&reference) {
                    projection::noted(row, entry.index, at);
                    changed.insert(reference);
                }
            }
            _ => {}
        }
    }
    let changed: Vec<_> = changed
        .into_iter()
        .filter_map(|reference| rows.remove(&reference))
        .collect();
    node_documents::upsert_many(conn, &changed)
}

impl Keeper for PgKeeper {
    fn keep_entries(
        &mut self,
        entries: &[(FeedEntry, Option<DocumentReference>)],
    ) -> Result<(), ReplicaError> {
        let rows = entry_rows(entries);
        self.with_conn(|conn| replica::append(conn, &rows))
    }

    fn keep_page(
        &mut self,
        entries: &[(FeedEntry, Option<DocumentReference>)],
        judged: &[Judged],
    ) -> Result<(), ReplicaError> {
        let Some(projector) = self.projector.clone() else {
            return self.keep_entries(entries);
        };
        let rows = entry_rows(entries);
        self.with_conn(|conn| {
            lading_store::in_transaction(conn, |conn| {
                replica::append(conn, &rows)?;
                project(conn, &projector, entries, judged)
            })
        })
    }

    fn keep_backfilled(
        &mut self,
        entry: &FeedEntry,
        document: Option<&DocumentReference>,
        judged: &Judged,
    ) -> Result<(), ReplicaError> {
        let Some(projector) = self.projector.clone() else {
            let signed = entry.signed.as_deref().unwrap_or_default();
            return self.keep_backfill(entry.index, &entry.leaf_hash, signed, document);
        };
        let page = [(entry.clone(), document.cloned())];
        let signed = entry.signed.clone().unwrap_or_default();
        self.with_conn(|conn| {
            lading_store::in_transaction(conn, |conn| {
                replica::backfill(
                    conn,
                    entry.index,
                    &entry.leaf_hash.0,
                    signed.as_bytes(),
                    document.map(DocumentReference::as_str),
                )?;
                project(conn, &projector, &page, std::slice::from_ref(judged))
            })
        })
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
            Incident::UnacknowledgedCheckpoint { size, signed } => {
                serde_json::json!({ "size": size, "signed": signed })
            }
            Incident::InconsistentCheckpoints { from, to, .. } => {
                serde_json::json!({ "from": from, "to": to })
            }
            Incident::ChainUnverified {
                reference,
                late,
                served,
            } => serde_json::json!({
                "document": reference,
                "lateIndex": late,
                "served": served
                    .iter()
                    .map(|(index, full)| serde_json::json!({ "index": index, "full": full }))
                    .collect::<Vec<_>>(),
            }),
            other => serde_json::json!({ "incident": other.to_string() }),
        };
        self.with_conn(|conn| match incident {
            // Given up again at the document's next transition, or after a restart: one
            // incident while it is open.
            Incident::ChainUnverified { reference, .. } => {
                // No longer a chain the node vouches for: out of the list until it is whole.
                node_documents::remove(conn, &[reference.to_string()])?;
                incidents::open_unless_open(
                    conn,
                    None,
                    incident.code(),
                    &detail,
                    &evidence,
                    &serde_json::json!({ "document": reference }),
                )
                .map(|_| ())
            }
            _ => incidents::open(conn, None, incident.code(), &detail, &evidence).map(|_| ()),
        })?;
        self.last_incident = Some(detail);
        Ok(())
    }

    fn chain_verified(&mut self, reference: &DocumentReference) -> Result<(), ReplicaError> {
        let closed = self.with_conn(|conn| {
            incidents::close_matching(
                conn,
                None,
                "chain_unverified",
                &serde_json::json!({ "document": reference }),
            )
        })?;
        if closed > 0 {
            tracing::info!(document = %reference, "a chain given up earlier is verified whole now");
        }
        Ok(())
    }
}
