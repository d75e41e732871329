//! The one writer. Submissions arrive already verified (form, key, signature); the sequencer
//! checks each against the ledger as it stands — duplicates, chain heads, the state machine —
//! orders the accepted ones, and writes them in one transaction per batch (group commit).
//! Nothing is acknowledged before its batch is durable.
//!
//! Two threads share the work so that checking and writing overlap. The drafter checks
//! submissions and builds the next batch while the writer makes the previous one durable; the
//! drafter hands a batch over only when the writer is idle, so a batch holds everything that
//! arrived during the previous write (group commits do not shrink), and at most one batch is
//! in flight. The drafter's memory (document heads, the Merkle accumulator) therefore runs at
//! most one batch ahead of the disk:
//! - a checkpoint is signed only when no batch is in flight, so it covers durable entries only;
//! - a check that must read the database first waits for the batch in flight;
//! - when a write fails, the batch being drafted on top of it is refused as well (transient:
//!   resubmit), and memory is reloaded from the database.
//!
//! A refusal is decided from memory too; what it may still need from the database (is it an
//! exact resubmission? a double spend? may the signer be told?) is asked by the resolver
//! thread once the batch is handed over (see [`crate::resolver`]), never by the drafter.

// foldhash: seeded per process like std's SipHash, at a fraction of its cost per key.
use foldhash::{HashMap, HashMapExt, HashSet};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::Utc;
use crossbeam_channel::{select, Receiver, RecvTimeoutError, Sender};
use diesel::pg::PgConnection;
use lading_domain::checkpoint::Checkpoint;
use lading_domain::document::TransportDocument;
use lading_domain::event::{DocumentView, SignedEvent};
use lading_domain::ids::PartyId;
use lading_domain::ids::Timestamp;
use lading_domain::jws::SigningKey;
use lading_domain::merkle::LedgerTree;
use lading_domain::state::{DocumentState, RuleViolation};
use lading_domain::transition::{Action, IssuedDocument, SignedTransition};
use lading_domain::Digest;
use lading_store::json::JsonText;
use lading_store::ledger::{self, AppendBatch};
use lading_store::models::{
    AccessRow, CheckpointRow, DocumentHead, DocumentRow, DocumentStateUpdate, EntryKind, EntryRow,
    EventRow, MembershipRow, OperatorKeyRow, PartyKeyRow, PartyRow, SealedBlockRow, TransitionRow,
};
use lading_store::{to_i64, Store, StoreError};
use tokio::sync::oneshot;

use crate::checkpoints::CheckpointBook;
use crate::lease::Lease;
use crate::load::{Running, Threads, Ticket, WritePathThread};
use crate::parties::PartyBook;
use crate::refusal::Refusal;
use crate::resolver::{Ask, Pending, ResolverLink};
use crate::verify::{Verified, VerifiedBody};
use crate::{Receipt, RegistryConfig, RegistryError};
use lading_domain::membership::{PartyStatement, SignedPartyStatement, Statement};

pub(crate) type Outcome = Result<Receipt, Refusal>;

/// The sequencer's connections, as `pg_stat_activity.application_name` shows them.
pub const DRAFTER: &str = "lading-sequencer";
pub const WRITER: &str = "lading-writer";

/// One request's submissions, answered together.
pub(crate) struct Job {
    pub items: Vec<Result<Verified, Refusal>>,
    pub origin: crate::Origin,
    /// The party whose credential handed the job in, recorded with each entry
    /// (`submitted_by`); `None` when no party's credential did.
    pub submitter: Option<String>,
    pub reply: oneshot::Sender<Vec<Outcome>>,
    /// The request's place in the queue, given up when it is answered (dropped).
    pub ticket: Ticket,
}

impl Job {
    /// A party statement: the registry sends each one as a job of its own.
    fn is_party_statement(&self) -> bool {
        self.items
            .iter()
            .any(|item| matches!(item, Ok(v) if matches!(v.body, VerifiedBody::Party(_))))
    }
}

/// What the sequencer remembers of a document between batches.
#[derive(Debug, Clone)]
struct DocEntry {
    state: DocumentState,
    head_idx: i64,
    /// What no transition changes, shared by every version of the entry.
    fixed: Arc<DocFixed>,
}

#[derive(Debug)]
struct DocFixed {
    carrier: String,
    port_of_loading: String,
    port_of_discharge: String,
    /// The transport document, when known in memory (needed only to judge events).
    document: Option<Arc<TransportDocument>>,
}

pub(crate) struct Sequencer {
    store: Store,
    /// The drafter's own connection: look-ups and checkpoints (the writer has another).
    conn: Option<PgConnection>,
    book: PartyBook,
    checkpoints: CheckpointBook,
    signer: SigningKey,
    config: RegistryConfig,
    /// Document heads as of the last batch handed to the writer (durable, or in flight).
    docs: HashMap<String, DocEntry>,
    /// The Merkle accumulator, likewise.
    acc: LedgerTree,
    last_checkpoint: Instant,
    writer: WriterLink,
    /// A batch is with the writer.
    in_flight: bool,
    /// A write failed: memory is ahead of the disk and the open batch was drafted on entries
    /// that will never be there.
    poisoned: bool,
    /// Where requests with refusals to finish go (dropped at the end, to stop the resolver).
    resolver: Option<ResolverLink>,
    resolver_thread: Option<JoinHandle<()>>,
    /// Which process sequences; when this one takes the lease again, memory is reloaded.
    lease: Arc<Lease>,
    /// [`Lease::taken`] as of the ledger state in memory.
    lease_seen: u64,
    /// The submissions' queue (set by [`Sequencer::run`]), to refuse what waits in it while
    /// the ledger cannot be read.
    jobs: Option<Receiver<Job>>,
}

/// The drafter's end of the writer thread.
struct WriterLink {
    orders: Option<Sender<Order>>,
    /// One message per order: whether it was made durable.
    done: Receiver<bool>,
    thread: Option<JoinHandle<()>>,
}

/// The changes one batch makes, kept apart from the sequencer's state until it is handed over.
#[derive(Default)]
struct Draft {
    rows: AppendBatch,
    docs: HashMap<String, DocEntry>,
    /// Documents issued in this batch, with the ISSUE's index.
    new_docs: HashMap<String, i64>,
    /// The document state after each transition of this batch, by index: answered to the
    /// submitter, and the last one of each document is written to `documents`.
    states: HashMap<i64, JsonText>,
    /// Checksums of the transitions accepted in this batch, with their position in
    /// `rows.transitions` (to spot double spends within one batch).
    checksums: HashMap<Digest, usize>,
    access: HashSet<(String, String)>,
    leaves: HashMap<Digest, usize>,
    /// Leaf hashes of the accepted entries, in ledger order.
    leaf_order: Vec<Digest>,
    /// (actor, event id) of the events accepted in this batch.
    event_ids: HashSet<(String, String)>,
    /// The party statement of this batch (a batch holds at most one), with its index: applied
    /// to the membership once durable.
    statement: Option<AppliedStatement>,
}

/// A refusal as the drafter decides it from memory, with what the resolver must still ask.
struct Refuse {
    /// The answer as it stands (provisional when there is something to ask).
    refusal: Refusal,
    ask: Option<Box<Ask>>,
}

impl Refuse {
    fn asking(ask: Ask) -> Self {
        Self {
            refusal: ask.provisional(),
            ask: Some(Box::new(ask)),
        }
    }
}

impl From<Refusal> for Refuse {
    fn from(refusal: Refusal) -> Self {
        Self { refusal, ask: None }
    }
}

/// A party statement to apply to the membership when its batch is durable.
struct AppliedStatement {
    index: u64,
    kid: lading_domain::KeyId,
    statement: PartyStatement,
}

/// The batch being drafted: the requests it answers and what has been decided for each item.
#[derive(Default)]
struct Open {
    draft: Draft,
    jobs: Vec<Job>,
    outcomes: Vec<Vec<Option<Outcome>>>,
    items: usize,
    /// (job, item, position in the batch) of each accepted entry, and of in-batch repeats.
    accepted: Vec<(usize, usize, usize)>,
    repeats: Vec<(usize, usize, usize)>,
    /// (job, refused item) of the refusals the resolver may still change: perhaps exact
    /// resubmissions of entries on the ledger, perhaps told only to readers.
    pending: Vec<(usize, Pending)>,
    started: Option<Instant>,
}

/// A drafted batch, for the writer to make durable and answer.
struct Order {
    rows: AppendBatch,
    jobs: Vec<Job>,
    outcomes: Vec<Vec<Option<Outcome>>>,
    accepted: Vec<(usize, usize, usize)>,
    repeats: Vec<(usize, usize, usize)>,
    pending: Vec<(usize, Pending)>,
    /// Roots of the blocks this batch seals, published once it is durable.
    sealed: Vec<Digest>,
    /// Document states after the batch's transitions, by index.
    states: HashMap<i64, JsonText>,
    statement: Option<AppliedStatement>,
    drafted: Duration,
}

impl Sequencer {
    pub(crate) fn start(
        store: Store,
        book: PartyBook,
        checkpoints: CheckpointBook,
        signer: SigningKey,
        config: RegistryConfig,
        threads: &Arc<Threads>,
        lease: Arc<Lease>,
    ) -> Result<Self, RegistryError> {
        let lease_seen = lease.taken();
        let mut conn = store.dedicated_connection(DRAFTER)?;
        let acc = load_accumulator(&mut conn, config.block_size)?;
        if let Some(latest) = checkpoints.latest() {
            check_latest_checkpoint(&mut conn, &acc, &latest.checkpoint)?;
        }
        checkpoints.set_sealed_roots(acc.sealed_roots().to_vec());
        let (resolver, resolver_thread) = crate::resolver::start(store.clone(), threads)
            .map_err(|e| RegistryError::Threads(e.to_string()))?;
        let (orders, orders_rx) = crossbeam_channel::bounded::<Order>(1);
        let (done_tx, done) = crossbeam_channel::bounded::<bool>(1);
        let writer = Writer {
            conn: None,
            checkpoints: checkpoints.clone(),
            book: book.clone(),
            resolver: resolver.clone(),
            threads: Arc::clone(threads),
            lease: Arc::clone(&lease),
        };
        let running = threads.guard(WritePathThread::Writer);
        let thread = std::thread::Builder::new()
            .name("lading-writer".into())
            .spawn(move || writer.run(orders_rx, done_tx, running))
            .map_err(|e| RegistryError::Threads(e.to_string()))?;
        Ok(Self {
            store,
            conn: Some(conn),
            book,
            checkpoints,
            signer,
            config,
            docs: HashMap::new(),
            acc,
            last_checkpoint: Instant::now(),
            writer: WriterLink {
                orders: Some(orders),
                done,
                thread: Some(thread),
            },
            in_flight: false,
            poisoned: false,
            resolver: Some(resolver),
            resolver_thread: Some(resolver_thread),
            lease,
            lease_seen,
            jobs: None,
        })
    }

    /// Runs until every sender is gone, then writes what is left and seals a last checkpoint.
    pub(crate) fn run(mut self, jobs: Receiver<Job>, running: Running) {
        self.jobs = Some(jobs.clone());
        let done = self.writer.done.clone();
        let mut open = Open::default();
        loop {
            running.woke();
            self.resume_if_taken(&mut open);
            if !self.in_flight && !open.jobs.is_empty() {
                self.hand_over(std::mem::take(&mut open));
            }
            if self.in_flight {
                if open.items >= self.config.max_batch {
                    self.settle();
                } else {
                    select! {
                        recv(jobs) -> job => match job {
                            Ok(job) => self.draft_arrivals(&mut open, job, &jobs),
                            Err(_) => break,
                        },
                        recv(done) -> written => self.finished(written.unwrap_or(false)),
                    }
                }
            } else {
                match jobs.recv_timeout(self.config.checkpoint_interval) {
                    Ok(job) => self.draft_arrivals(&mut open, job, &jobs),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            self.after_failure(&mut open);
            self.checkpoint_if_due(false);
            self.after_failure(&mut open);
        }
        self.settle();
        self.after_failure(&mut open);
        if !open.jobs.is_empty() {
            self.hand_over(open);
            self.settle();
            self.after_failure(&mut Open::default());
        }
        self.checkpoint_if_due(true);
        self.writer.orders.take();
        if let Some(thread) = self.writer.thread.take() {
            let _ = thread.join();
        }
        // The writer and the answerer are gone with their links: the resolver finishes.
        self.resolver.take();
        if let Some(thread) = self.resolver_thread.take() {
            let _ = thread.join();
        }
        tracing::info!(size = self.acc.size(), "sequencer stopped");
        drop(running);
    }

    /// Waits for the batch in flight, if any.
    fn settle(&mut self) {
        if self.in_flight {
            let written = self.writer.done.recv().unwrap_or(false);
            self.finished(written);
        }
    }

    fn finished(&mut self, written: bool) {
        self.in_flight = false;
        if !written {
            self.poisoned = true;
        }
    }

    /// After a failed write: refuse the batch drafted on top of it (its items may resubmit)
    /// and reload memory from the database.
    fn after_failure(&mut self, open: &mut Open) {
        if !self.poisoned {
            return;
        }
        let open = std::mem::take(open);
        if !open.jobs.is_empty() {
            Self::refuse_all(open);
        }
        if self.recover() {
            self.poisoned = false;
        }
    }

    /// Refuses (as transient) the jobs waiting while the ledger cannot be read; false once
    /// every sender is gone (the registry is stopping).
    fn refuse_waiting(&mut self) -> bool {
        let Some(jobs) = &self.jobs else {
            return true;
        };
        loop {
            match jobs.try_recv() {
                Ok(job) => {
                    let refusal = Refusal::standing_by();
                    let outcomes = job
                        .items
                        .iter()
                        .map(|_| Some(Err(refusal.clone())))
                        .collect();
                    reply(job, outcomes);
                }
                Err(crossbeam_channel::TryRecvError::Empty) => return true,
                Err(crossbeam_channel::TryRecvError::Disconnected) => return false,
            }
        }
    }

    /// Refuses every item of a batch drafted on memory that turned out stale (resubmitting
    /// is safe).
    fn refuse_all(open: Open) {
        let refusal = Refusal::unavailable("an earlier batch could not be made durable; resubmit");
        for (job, mut outcomes) in open.jobs.into_iter().zip(open.outcomes) {
            for (slot, item) in outcomes.iter_mut().zip(&job.items) {
                if item.is_ok() {
                    *slot = Some(Err(refusal.clone()));
                }
            }
            reply(job, outcomes);
        }
    }

    /// When this process has taken the sequencer's lease again since memory was loaded (it
    /// stood by, or lost its connection), another process may have written meanwhile: refuse
    /// what was drafted (resubmitting is safe) and read the ledger, its parties and its latest
    /// checkpoint again.
    fn resume_if_taken(&mut self, open: &mut Open) {
        let taken = self.lease.taken();
        if taken == self.lease_seen {
            return;
        }
        self.lease_seen = taken;
        self.poisoned = true;
        self.after_failure(open);
        if let Err(e) = self.book.reload() {
            tracing::error!(error = %e, "cannot read the party registry again");
        }
        let latest = self
            .conn()
            .and_then(ledger::latest_checkpoint)
            .and_then(|row| {
                row.map(|row| crate::checkpoints::published(&row))
                    .transpose()
            });
        match latest {
            Ok(Some(latest)) => {
                let shown = self.checkpoints.latest().map(|c| c.checkpoint.size);
                if shown.is_none_or(|size| size < latest.checkpoint.size) {
                    self.checkpoints.publish(latest);
                }
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "cannot read the latest checkpoint"),
        }
        tracing::info!(
            size = self.acc.size(),
            "sequencing from the ledger as stored"
        );
    }

    /// Takes the job that arrived and whatever else is waiting, up to the batch limit, and
    /// drafts them into the open batch.
    fn draft_arrivals(&mut self, open: &mut Open, mut first: Job, jobs: &Receiver<Job>) {
        // Taken again while waiting for this job: what it is judged by must be read first.
        self.resume_if_taken(open);
        first.ticket.taken();
        let mut count = open.items + first.items.len();
        let mut arrived = vec![first];
        while count < self.config.max_batch {
            match jobs.try_recv() {
                Ok(mut job) => {
                    job.ticket.taken();
                    count += job.items.len();
                    arrived.push(job);
                }
                Err(_) => break,
            }
        }
        // A party statement changes who may sign what follows it: it is written alone, after
        // everything that arrived before it and before anything after it is judged.
        let mut batch = Vec::new();
        for job in arrived {
            if job.is_party_statement() {
                if !batch.is_empty() {
                    self.draft_batch(open, std::mem::take(&mut batch));
                }
                self.sequence_alone(open, job);
            } else {
                batch.push(job);
            }
        }
        if !batch.is_empty() {
            self.draft_batch(open, batch);
        }
    }

    fn draft_batch(&mut self, open: &mut Open, jobs: Vec<Job>) {
        if let Err(e) = self.draft_jobs(open, jobs) {
            tracing::error!(error = %e, "cannot read the ledger; refusing the open batch");
            self.poisoned = true;
        }
    }

    /// Makes everything drafted so far durable, then drafts and writes `job` on its own, and
    /// waits for it: the membership it changes is in place before the next job is judged.
    fn sequence_alone(&mut self, open: &mut Open, job: Job) {
        self.settle();
        self.after_failure(open);
        if !open.jobs.is_empty() {
            self.hand_over(std::mem::take(open));
            self.settle();
            self.after_failure(open);
        }
        let mut alone = Open::default();
        self.draft_batch(&mut alone, vec![job]);
        self.after_failure(&mut alone);
        if !alone.jobs.is_empty() {
            self.hand_over(alone);
            self.settle();
        }
        self.after_failure(open);
    }

    /// The drafter's connection, opened again after a failure dropped it.
    fn conn(&mut self) -> Result<&mut PgConnection, StoreError> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => self.store.dedicated_connection(DRAFTER)?,
        };
        Ok(self.conn.insert(conn))
    }

    /// A connection for a look-up whose answer must include every batch already handed over:
    /// waits for the batch in flight first.
    fn settled_conn(&mut self) -> Result<&mut PgConnection, Refusal> {
        self.settle();
        self.conn().map_err(Refusal::unavailable)
    }

    /// Checks `arrived` against the ledger as memory holds it and adds them to the open batch.
    fn draft_jobs(&mut self, open: &mut Open, arrived: Vec<Job>) -> Result<(), StoreError> {
        if open.jobs.is_empty() {
            open.draft.rows.expected_size = self.acc.size();
            open.started = Some(Instant::now());
        }
        let first_job = open.jobs.len();
        for job in arrived {
            let outcomes = job
                .items
                .iter()
                .map(|item| item.as_ref().err().map(|refusal| Err(refusal.clone())))
                .collect();
            open.items += job.items.len();
            open.outcomes.push(outcomes);
            open.jobs.push(job);
        }
        let Open {
            draft,
            jobs,
            outcomes,
            accepted,
            repeats,
            pending,
            ..
        } = open;
        let items: Vec<(usize, usize, &Verified)> = jobs
            .iter()
            .enumerate()
            .skip(first_job)
            .flat_map(|(j, job)| {
                job.items
                    .iter()
                    .enumerate()
                    .filter_map(move |(i, item)| item.as_ref().ok().map(|v| (j, i, v)))
            })
            .collect();
        self.preload_documents(&items)?;
        let now = Utc::now();
        for (j, i, v) in items {
            if let Some(&pos) = draft.leaves.get(&v.leaf) {
                repeats.push((j, i, pos));
                continue;
            }
            // Refused from memory, perhaps the same bytes accepted earlier: a duplicate then.
            let resubmission = Pending { item: i, ask: None };
            if let Some(refusal) = &v.stale_key {
                pending.push((j, resubmission));
                outcomes[j][i] = Some(Err(refusal.clone()));
                continue;
            }
            if let Err(refusal) = self.check_time(v, &jobs[j].origin, now) {
                pending.push((j, resubmission));
                outcomes[j][i] = Some(Err(refusal));
                continue;
            }
            // A party statement since the key was checked: is it still valid?
            if v.generation != self.book.generation() {
                if let Err(refusal) = self.book.signer_key(&v.kid, v.body.signer()) {
                    if !refusal.is_transient() {
                        pending.push((j, resubmission));
                    }
                    outcomes[j][i] = Some(Err(refusal));
                    continue;
                }
            }
            let idx = draft.rows.expected_size + draft.rows.entries.len() as u64;
            let result = match &v.body {
                VerifiedBody::Transition(t) => self.draft_transition(draft, t, idx),
                VerifiedBody::Event(e) => self.draft_event(draft, v, e, idx).map_err(Refuse::from),
                VerifiedBody::Party(p) => self.draft_party(draft, p, idx).map_err(Refuse::from),
            };
            match result {
                Ok(()) => {
                    let pos = draft.rows.entries.len();
                    draft
                        .rows
                        .entries
                        .push(entry_row(v, idx, now, jobs[j].submitter.as_deref()));
                    draft.leaves.insert(v.leaf, pos);
                    draft.leaf_order.push(v.leaf);
                    accepted.push((j, i, pos));
                }
                Err(Refuse { refusal, ask }) => {
                    if !refusal.is_transient() {
                        pending.push((j, Pending { item: i, ask }));
                    }
                    outcomes[j][i] = Some(Err(refusal));
                }
            }
        }
        Ok(())
    }

    /// Hands the open batch to the (idle) writer, or answers it at once when it writes
    /// nothing. Memory moves forward now; a failed write reloads it.
    fn hand_over(&mut self, mut open: Open) {
        debug_assert!(!self.in_flight, "one batch in flight at most");
        let mut draft = std::mem::take(&mut open.draft);
        if draft.rows.entries.is_empty() {
            finish_jobs(
                self.resolver.as_ref(),
                open.jobs,
                open.outcomes,
                open.pending,
            );
            return;
        }
        let now = Utc::now();
        let mut sealed = Vec::new();
        for leaf in &draft.leaf_order {
            // The block's leaves are kept with its root: gathered before the push seals it.
            let sealing = self.acc.open_leaves().len() as u64 + 1 == self.config.block_size;
            let leaves = sealing.then(|| {
                let mut bytes = Vec::with_capacity(self.config.block_size as usize * 32);
                for open in self.acc.open_leaves() {
                    bytes.extend_from_slice(&open.0);
                }
                bytes.extend_from_slice(&leaf.0);
                bytes
            });
            if let Some(root) = self.acc.push(*leaf) {
                let block_no = self.acc.sealed_roots().len() as u64 - 1;
                sealed.push(root);
                draft.rows.sealed_blocks.push(SealedBlockRow {
                    block_no: to_i64(block_no),
                    block_size: i32::try_from(self.config.block_size).unwrap_or(i32::MAX),
                    root: root.0.to_vec(),
                    sealed_at: now,
                    leaves: leaves.unwrap_or_default(),
                });
            }
        }
        if let Err(e) = self.finish_rows(&mut draft) {
            tracing::error!(error = %e, "cannot build the batch's rows; refusing it");
            open.draft = draft;
            self.poisoned = true;
            self.after_failure(&mut open);
            return;
        }
        if self.docs.len() > self.config.document_cache {
            self.docs.clear();
        }
        self.docs.extend(std::mem::take(&mut draft.docs));
        let order = Order {
            rows: std::mem::take(&mut draft.rows),
            jobs: open.jobs,
            outcomes: open.outcomes,
            accepted: open.accepted,
            repeats: open.repeats,
            pending: open.pending,
            sealed,
            states: std::mem::take(&mut draft.states),
            statement: draft.statement.take(),
            drafted: open.started.map(|s| s.elapsed()).unwrap_or_default(),
        };
        let Some(orders) = self.writer.orders.as_ref() else {
            order.fail(
                &Refusal::unavailable("the registry's writer stopped"),
                self.resolver.as_ref(),
            );
            self.poisoned = true;
            return;
        };
        match orders.send(order) {
            Ok(()) => self.in_flight = true,
            Err(crossbeam_channel::SendError(order)) => {
                tracing::error!("the writer thread is gone");
                order.fail(
                    &Refusal::unavailable("the registry's writer stopped"),
                    self.resolver.as_ref(),
                );
                self.poisoned = true;
            }
        }
    }

    /// Loads the heads of the batch's documents that are not in memory yet.
    fn preload_documents(&mut self, items: &[(usize, usize, &Verified)]) -> Result<(), StoreError> {
        let missing: Vec<&str> = items
            .iter()
            .filter_map(|(_, _, v)| match &v.body {
                VerifiedBody::Transition(t) => Some(t.payload().document_reference().as_str()),
                VerifiedBody::Event(e) => e.event().document_reference().map(|r| r.as_str()),
                VerifiedBody::Party(_) => None,
            })
            .filter(|r| !self.docs.contains_key(*r))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let heads: Vec<DocumentHead> = {
            let conn = self.conn()?;
            ledger::document_heads(conn, &missing)?
        };
        for head in heads {
            let state: DocumentState = head.state.parse().map_err(|e| StoreError::Corrupt {
                table: "documents",
                detail: e.to_string(),
            })?;
            self.docs.insert(
                head.reference,
                DocEntry {
                    state,
                    head_idx: head.head_idx,
                    fixed: Arc::new(DocFixed {
                        carrier: head.carrier,
                        port_of_loading: head.port_of_loading,
                        port_of_discharge: head.port_of_discharge,
                        document: None,
                    }),
                },
            );
        }
        Ok(())
    }

    fn doc<'a>(&'a self, draft: &'a Draft, reference: &str) -> Option<&'a DocEntry> {
        draft
            .docs
            .get(reference)
            .or_else(|| self.docs.get(reference))
    }

    fn draft_transition(
        &mut self,
        draft: &mut Draft,
        t: &SignedTransition,
        idx: u64,
    ) -> Result<(), Refuse> {
        let payload = t.payload();
        let reference = payload.document_reference().as_str().to_owned();
        let checksum = t.checksum();
        let entry = if payload.action() == Action::Issue {
            if self.doc(draft, &reference).is_some() {
                return Err(Refusal::DocumentExists { reference }.into());
            }
            let document = payload
                .transport_document()
                .ok_or_else(|| Refusal::Malformed {
                    code: "invalid_payload",
                    detail: "ISSUE carries the transport document".into(),
                })?;
            let state = DocumentState::issue(payload, checksum).map_err(rule_refusal)?;
            for party in document.named_parties() {
                draft.access.insert((reference.clone(), party.to_string()));
            }
            draft.new_docs.insert(reference.clone(), to_i64(idx));
            DocEntry {
                state,
                head_idx: to_i64(idx),
                fixed: Arc::new(DocFixed {
                    carrier: document.carrier().to_string(),
                    port_of_loading: document.port_of_loading().to_string(),
                    port_of_discharge: document.port_of_discharge().to_string(),
                    document: Some(Arc::new(document.clone())),
                }),
            }
        } else {
            let current = self
                .doc(draft, &reference)
                .ok_or_else(|| Refusal::UnknownDocument {
                    reference: reference.clone(),
                })?;
            let state = match current.state.apply(payload, checksum) {
                Ok(state) => state,
                Err(violation) => {
                    // Every actor the rules let through may read the document; a refusal is
                    // explained only to a signer who may, so nobody learns of a document
                    // from being refused about it. What memory cannot tell, the resolver asks.
                    let (refusal, parent) =
                        self.transition_refusal(draft, payload, &reference, violation);
                    let reader =
                        (!self.known_reader(draft, &reference, &current.fixed, payload.actor()))
                            .then(|| payload.actor().to_string());
                    if parent.is_none() && reader.is_none() {
                        return Err(refusal.into());
                    }
                    return Err(Refuse::asking(Ask {
                        reference,
                        refusal,
                        parent,
                        reader,
                    }));
                }
            };
            DocEntry {
                state,
                head_idx: to_i64(idx),
                fixed: Arc::clone(&current.fixed),
            }
        };
        // Only the recipient can be new to the document: every actor the rules allow (carrier,
        // possessor, holder) was named by the document or received it earlier.
        if let Some(recipient) = payload.recipient() {
            draft
                .access
                .insert((reference.clone(), recipient.to_string()));
        }
        let state_after = JsonText::of(&entry.state).map_err(Refusal::unavailable)?;
        draft.states.insert(to_i64(idx), state_after);
        draft.rows.transitions.push(TransitionRow {
            idx: to_i64(idx),
            document_ref: reference.clone(),
            checksum: checksum.0.to_vec(),
            previous_checksum: payload.previous_transition_checksum().map(|d| d.0.to_vec()),
            action: payload.action().as_str().to_owned(),
            actor: payload.actor().to_string(),
            recipient: payload.recipient().map(|r| r.to_string()),
        });
        draft
            .checksums
            .insert(checksum, draft.rows.transitions.len() - 1);
        draft.docs.insert(reference, entry);
        Ok(())
    }

    /// The time rule: a statement's `time` is within `max_clock_skew` of the registry's clock
    /// — or, for a party's own statement forwarded by its node, of when the node took it,
    /// which must be within `max_offline` of the registry's clock.
    fn check_time(
        &self,
        v: &Verified,
        origin: &crate::Origin,
        now: chrono::DateTime<Utc>,
    ) -> Result<(), Refusal> {
        let time = match &v.body {
            VerifiedBody::Transition(t) => t.payload().time(),
            VerifiedBody::Event(e) => e.event().time(),
            VerifiedBody::Party(p) => p.statement().time,
        };
        let actor = v.body.signer();
        let skew =
            chrono::Duration::from_std(self.config.max_clock_skew).unwrap_or(chrono::Duration::MAX);
        let reference = match origin {
            crate::Origin::Import => return Ok(()),
            crate::Origin::Node { party, received_at } if party.as_str() == actor => {
                let received = received_at.as_datetime();
                let offline = chrono::Duration::from_std(self.config.max_offline)
                    .unwrap_or(chrono::Duration::MAX);
                if received > now + skew || received < now - offline {
                    return Err(Refusal::Rule {
                        code: "time_skew",
                        detail: format!(
                            "the node says it took the statement at {received_at}, which is not \
                             within {} s ahead of or {} s behind the registry's clock",
                            skew.num_seconds(),
                            offline.num_seconds()
                        ),
                    });
                }
                received
            }
            _ => now,
        };
        let off = (time.as_datetime() - reference).abs();
        if off > skew {
            return Err(Refusal::Rule {
                code: "time_skew",
                detail: format!(
                    "time {time} is more than {} s from {} ({})",
                    skew.num_seconds(),
                    if reference == now {
                        "the registry's clock"
                    } else {
                        "when the party's node took it"
                    },
                    lading_domain::Timestamp::from_datetime_truncated(reference)
                ),
            });
        }
        Ok(())
    }

    /// Why a transition of a document that exists breaks its rules: a double spend when its
    /// parent is already in the chain, else the rule itself. Memory holds the open batch's
    /// transitions and each document's head only: for a parent elsewhere, the rule is
    /// answered with the parent to ask about (a double spend if the chain holds it).
    fn transition_refusal(
        &self,
        draft: &Draft,
        payload: &lading_domain::transition::TransitionPayload,
        reference: &str,
        violation: RuleViolation,
    ) -> (Refusal, Option<Digest>) {
        if !matches!(violation, RuleViolation::WrongPreviousChecksum { .. }) {
            return (rule_refusal(violation), None);
        }
        let given = payload
            .previous_transition_checksum()
            .copied()
            .unwrap_or_default();
        let in_batch = draft
            .checksums
            .get(&given)
            .is_some_and(|&pos| draft.rows.transitions[pos].document_ref == reference);
        if in_batch {
            let refusal = Refusal::DoubleSpend {
                reference: reference.to_owned(),
                given: given.to_hex(),
            };
            return (refusal, None);
        }
        (rule_refusal(violation), Some(given))
    }

    /// Whether memory knows `party` may read document `reference` (the rule of document
    /// reads): named in this batch, or the customs authority of its port of loading or
    /// discharge. Otherwise only the database can tell (named earlier in the chain), which
    /// the resolver asks. Asked only on the way to a refusal, so the hot path never pays.
    fn known_reader(
        &self,
        draft: &Draft,
        reference: &str,
        fixed: &DocFixed,
        party: &PartyId,
    ) -> bool {
        if draft
            .access
            .contains(&(reference.to_owned(), party.to_string()))
        {
            return true;
        }
        self.book.party(party.as_str()).is_some_and(|p| {
            p.role == lading_domain::Role::CustomsAuthority
                && p.ports.iter().any(|port| {
                    port.as_str() == fixed.port_of_loading
                        || port.as_str() == fixed.port_of_discharge
                })
        })
    }

    fn draft_event(
        &mut self,
        draft: &mut Draft,
        v: &Verified,
        e: &SignedEvent,
        idx: u64,
    ) -> Result<(), Refusal> {
        let payload = e.event();
        let key = (payload.actor().to_string(), payload.event_id().to_owned());
        let taken = draft.event_ids.contains(&key)
            || ledger::event_id_taken(self.settled_conn()?, &key.0, &key.1)
                .map_err(Refusal::unavailable)?;
        if taken {
            return Err(Refusal::Rule {
                code: "duplicate_event_id",
                detail: format!("{} already reported an event with id {:?}", key.0, key.1),
            });
        }
        let actor = self
            .book
            .party(payload.actor().as_str())
            .ok_or_else(|| Refusal::UnknownKey { kid: v.kid.clone() })?;
        let context = match payload.document_reference() {
            Some(reference) => Some(self.event_context(draft, reference.as_str())?),
            None => None,
        };
        let view = context.as_ref().map(|(document, parties)| DocumentView {
            document,
            chain_parties: parties,
        });
        // An event about a document its actor may not read is refused as one about a document
        // that does not exist.
        if let (Some(reference), Some(view)) = (payload.document_reference(), &view) {
            if !lading_domain::entitled(&actor, view.document, view.chain_parties) {
                return Err(Refusal::UnknownDocument {
                    reference: reference.to_string(),
                });
            }
        }
        payload
            .check_actor(&actor, view.as_ref())
            .map_err(|violation| match violation.path() {
                Some(pointer) => Refusal::InvalidField {
                    code: violation.code(),
                    pointer: pointer.to_owned(),
                    detail: violation.to_string(),
                },
                None => Refusal::Rule {
                    code: violation.code(),
                    detail: violation.to_string(),
                },
            })?;
        draft.rows.events.push(EventRow {
            idx: to_i64(idx),
            actor: key.0.clone(),
            event_id: key.1.clone(),
            event_code: payload.event_code().as_str().to_owned(),
            document_ref: payload.document_reference().map(|r| r.to_string()),
            equipment_ref: payload.equipment_reference().map(|c| c.to_string()),
            location: Some(payload.location().to_string()),
        });
        draft.event_ids.insert(key);
        Ok(())
    }

    /// A party statement, checked against the membership as it stands (every earlier entry is
    /// durable: the statement is written alone). It is applied once durable.
    fn draft_party(
        &mut self,
        draft: &mut Draft,
        p: &SignedPartyStatement,
        idx: u64,
    ) -> Result<(), Refusal> {
        if draft.statement.is_some() {
            return Err(Refusal::unavailable("two party statements in one batch"));
        }
        let statement = p.statement();
        let new_keys: &[lading_domain::Jwk] = match &statement.statement {
            Statement::AddParty { keys, .. } => keys,
            Statement::AddKey { key, .. } => std::slice::from_ref(key),
            _ => &[],
        };
        if let Some(test) = new_keys
            .iter()
            .find(|k| k.is_test_key() && !self.config.allow_test_keys)
        {
            return Err(Refusal::Rule {
                code: "test_key",
                detail: format!(
                    "key {} is a TEST key (lading_test_key); this registry does not take test keys",
                    test.kid()
                ),
            });
        }
        self.book.check(idx, p.kid(), statement)?;
        draft
            .rows
            .membership
            .extend(membership_rows(idx, statement));
        draft.statement = Some(AppliedStatement {
            index: idx,
            kid: p.kid().clone(),
            statement: statement.clone(),
        });
        Ok(())
    }

    /// The document an event names and the parties of its chain, from memory or the database.
    fn event_context(
        &mut self,
        draft: &Draft,
        reference: &str,
    ) -> Result<(Arc<TransportDocument>, Vec<PartyId>), Refusal> {
        let unknown = || Refusal::UnknownDocument {
            reference: reference.to_owned(),
        };
        let entry = self.doc(draft, reference).ok_or_else(unknown)?;
        let in_memory = entry.fixed.document.clone();
        let loaded =
            ledger::event_context(self.settled_conn()?, reference).map_err(Refusal::unavailable)?;
        let (document, mut parties) = match (in_memory, loaded) {
            (Some(document), Some(context)) => (document, context.parties),
            (Some(document), None) => (document, Vec::new()),
            (None, Some(context)) => {
                let issued = IssuedDocument::parse(&context.issue).map_err(Refusal::unavailable)?;
                (Arc::new(issued.into_document()), context.parties)
            }
            (None, None) => return Err(unknown()),
        };
        parties.extend(
            draft
                .access
                .iter()
                .filter(|(r, _)| r == reference)
                .map(|(_, p)| p.clone()),
        );
        let parties = parties
            .iter()
            .filter_map(|p| p.parse::<PartyId>().ok())
            .collect();
        Ok((document, parties))
    }

    /// Turns the draft's documents and access set into rows.
    fn finish_rows(&self, draft: &mut Draft) -> Result<(), StoreError> {
        for (reference, entry) in &draft.docs {
            // A drafted entry's head is its last transition in this batch.
            let state =
                draft
                    .states
                    .get(&entry.head_idx)
                    .cloned()
                    .ok_or_else(|| StoreError::Corrupt {
                        table: "documents",
                        detail: format!("{reference} moved without a transition"),
                    })?;
            let head_idx = entry.head_idx;
            if let Some(issued_idx) = draft.new_docs.get(reference) {
                let document =
                    entry
                        .fixed
                        .document
                        .as_deref()
                        .ok_or_else(|| StoreError::Corrupt {
                            table: "documents",
                            detail: format!("{reference} issued without its transport document"),
                        })?;
                draft
                    .rows
                    .new_searchable
                    .push(crate::search::search_row(reference, document));
                draft.rows.new_documents.push(DocumentRow {
                    reference: reference.clone(),
                    checksum: entry.state.document_checksum.0.to_vec(),
                    carrier: entry.fixed.carrier.clone(),
                    port_of_loading: entry.fixed.port_of_loading.clone(),
                    port_of_discharge: entry.fixed.port_of_discharge.clone(),
                    status: entry.state.status.as_str().to_owned(),
                    possessor: entry.state.possessor.to_string(),
                    head_checksum: entry.state.head.0.to_vec(),
                    head_idx,
                    issued_idx: *issued_idx,
                    state,
                });
            } else {
                draft.rows.updated_documents.push(DocumentStateUpdate {
                    reference: reference.clone(),
                    status: entry.state.status.as_str().to_owned(),
                    possessor: entry.state.possessor.to_string(),
                    head_checksum: entry.state.head.0.to_vec(),
                    head_idx,
                    state,
                });
            }
        }
        for (document_ref, party_id) in draft.access.drain() {
            // Every access this batch grants is to a document it moved.
            let head_idx = draft
                .docs
                .get(&document_ref)
                .map(|entry| entry.head_idx)
                .ok_or_else(|| StoreError::Corrupt {
                    table: "document_access",
                    detail: format!("{document_ref} granted without moving"),
                })?;
            let rows = if draft.new_docs.contains_key(&document_ref) {
                &mut draft.rows.new_access
            } else {
                &mut draft.rows.access
            };
            rows.push(AccessRow {
                document_ref,
                party_id,
                head_idx,
            });
        }
        Ok(())
    }

    /// After a failed write: forget what memory holds and read the ledger again. Until it is
    /// read, the registry takes no submissions (they are refused as transient, those already
    /// waiting too) rather than hold them for as long as the database is away. False when the
    /// registry stopped before the ledger could be read.
    fn recover(&mut self) -> bool {
        self.settle();
        self.conn = None;
        self.docs.clear();
        let mut delay = Duration::from_millis(50);
        let mut failures = 0u32;
        loop {
            let block_size = self.config.block_size;
            let reloaded = self
                .conn()
                .and_then(|conn| load_accumulator(conn, block_size));
            match reloaded {
                Ok(acc) => {
                    self.checkpoints
                        .set_sealed_roots(acc.sealed_roots().to_vec());
                    self.acc = acc;
                    self.lease.set_recovering(false);
                    return true;
                }
                Err(e) => {
                    // Once an outage, not once a try: a failover takes seconds.
                    if failures == 0 {
                        tracing::error!(error = %e, "cannot reload the ledger; retrying");
                        self.lease.set_recovering(true);
                    } else {
                        tracing::debug!(error = %e, failures, "cannot reload the ledger yet");
                    }
                    failures += 1;
                    self.conn = None;
                    if !self.refuse_waiting() {
                        return false;
                    }
                    std::thread::sleep(delay);
                    // Short: a promoted standby is sequenced on as soon as it takes writes.
                    delay = (delay * 2).min(Duration::from_millis(100));
                }
            }
        }
    }

    /// Signs and stores a checkpoint when the ledger grew and the interval has passed
    /// (or always, with `force`, when the ledger grew).
    fn checkpoint_if_due(&mut self, force: bool) {
        // A process standing by signs nothing: the one sequencing does.
        if !self.lease.is_active() {
            return;
        }
        let size = self.acc.size();
        let published = self.checkpoints.latest().map(|c| c.checkpoint.size);
        if published == Some(size) || (size == 0 && published.is_some()) {
            return;
        }
        if !force && self.last_checkpoint.elapsed() < self.config.checkpoint_interval {
            return;
        }
        // Sign durable entries only.
        self.settle();
        if self.poisoned {
            return;
        }
        self.last_checkpoint = Instant::now();
        let checkpoint = Checkpoint {
            size,
            root: self.acc.root(),
            time: Timestamp::now(),
            block_size: u32::try_from(self.config.block_size).unwrap_or(u32::MAX),
        };
        let signed = checkpoint.sign(&self.signer);
        let row = CheckpointRow {
            size: to_i64(size),
            root: checkpoint.root.0.to_vec(),
            block_size: i32::try_from(self.config.block_size).unwrap_or(i32::MAX),
            signed,
            created_at: Utc::now(),
        };
        // Publish exactly the stored row: if a checkpoint of this size was stored before (an
        // attempt whose answer was lost), that one, so every signature shown is shown again.
        let stored = self
            .conn()
            .and_then(|conn| ledger::insert_checkpoint(conn, &row))
            .and_then(|row| crate::checkpoints::published(&row));
        match stored {
            Ok(stored) if stored.checkpoint.root == checkpoint.root => {
                self.checkpoints.publish(stored);
            }
            Ok(stored) => tracing::error!(
                size,
                stored = %stored.checkpoint.root.to_hex(),
                computed = %checkpoint.root.to_hex(),
                "a stored checkpoint of this size has another root; not publishing"
            ),
            Err(e) => {
                tracing::error!(error = %e, "checkpoint not stored; will retry");
                self.conn = None;
            }
        }
    }
}

/// The writer thread: makes each order durable, then answers its submitters.
struct Writer {
    conn: Option<PgConnection>,
    checkpoints: CheckpointBook,
    book: PartyBook,
    resolver: ResolverLink,
    threads: Arc<Threads>,
    lease: Arc<Lease>,
}

impl Writer {
    /// Writes orders until the drafter hangs up. Durable orders are answered on a thread of
    /// their own: replying and freeing a batch of a few thousand entries takes milliseconds
    /// that the next batch's write should not wait for.
    fn run(mut self, orders: Receiver<Order>, done: Sender<bool>, running: Running) {
        let (answers, to_answer) = crossbeam_channel::unbounded::<Order>();
        let answering = self.threads.guard(WritePathThread::Answerer);
        let resolver = self.resolver.clone();
        let answerer = std::thread::Builder::new()
            .name("lading-answer".into())
            .spawn(move || {
                for order in to_answer {
                    answering.woke();
                    order.answer(Some(&resolver));
                }
            });
        let answerer = match answerer {
            Ok(thread) => Some(thread),
            Err(e) => {
                tracing::error!(error = %e, "no answering thread; the writer answers");
                None
            }
        };
        for order in orders {
            running.woke();
            let written = match self.write(order) {
                Some(order) => {
                    if let Err(crossbeam_channel::SendError(order)) = answers.send(order) {
                        order.answer(Some(&self.resolver));
                    }
                    true
                }
                None => false,
            };
            if done.send(written).is_err() {
                break;
            }
        }
        drop(answers);
        if let Some(thread) = answerer {
            let _ = thread.join();
        }
        drop(running);
    }

    /// Makes the order durable and hands it back to be answered, or answers its failure
    /// (`None`).
    fn write(&mut self, order: Order) -> Option<Order> {
        let started = Instant::now();
        // Only the session holding the lease writes (see crate::lease).
        let conn = match self.conn.take() {
            Some(conn) => Ok(conn),
            None => self.lease.connection(),
        };
        let result = conn.and_then(|mut conn| {
            ledger::append(&mut conn, &order.rows)?;
            Ok(conn)
        });
        match result {
            Ok(conn) => {
                self.conn = Some(conn);
                lading_metrics::global().batch_written(order.rows.entries.len(), started.elapsed());
                tracing::debug!(
                    entries = order.rows.entries.len(),
                    draft_ms = order.drafted.as_millis() as u64,
                    append_ms = started.elapsed().as_millis() as u64,
                    "batch written"
                );
                // Durable: proofs may use the new blocks, a party statement changes who may
                // sign, and the submitters may hear of it.
                self.checkpoints.extend_sealed_roots(&order.sealed);
                if let Some(applied) = &order.statement {
                    self.book
                        .apply(applied.index, &applied.kid, &applied.statement);
                }
                Some(order)
            }
            Err(e) => {
                // The connection is gone with the error, and the lease with it.
                self.lease.lost();
                tracing::error!(error = %e, "batch not written; the ledger state will be reloaded");
                order.fail(
                    &Refusal::unavailable("the batch could not be made durable; resubmit"),
                    Some(&self.resolver),
                );
                None
            }
        }
    }
}

impl Order {
    /// Answers every submitter of a durable batch.
    fn answer(mut self, resolver: Option<&ResolverLink>) {
        let mut states = std::mem::take(&mut self.states);
        let mut receipts: Vec<Option<Receipt>> = std::mem::take(&mut self.rows.entries)
            .into_iter()
            .map(|e| {
                Some(Receipt {
                    index: e.idx as u64,
                    leaf_hash: Digest::from_slice(&e.leaf_hash).unwrap_or_default(),
                    kind: EntryKind::parse(&e.kind).unwrap_or(EntryKind::Event),
                    state: states.remove(&e.idx),
                    document_reference: e.document_ref,
                    submitted_by: e.submitted_by,
                    duplicate: false,
                })
            })
            .collect();
        // Repeats first: they copy a receipt that the accepted item then takes.
        for &(j, i, pos) in &self.repeats {
            if let Some(receipt) = &receipts[pos] {
                self.outcomes[j][i] = Some(Ok(Receipt {
                    duplicate: true,
                    ..receipt.clone()
                }));
            }
        }
        for &(j, i, pos) in &self.accepted {
            self.outcomes[j][i] = receipts[pos].take().map(Ok);
        }
        finish_jobs(resolver, self.jobs, self.outcomes, self.pending);
    }

    /// Answers every submitter of a batch that was not written: its entries are refused
    /// (transient), the rest keeps its answer.
    fn fail(mut self, refusal: &Refusal, resolver: Option<&ResolverLink>) {
        for &(j, i, _) in self.accepted.iter().chain(&self.repeats) {
            self.outcomes[j][i] = Some(Err(refusal.clone()));
        }
        finish_jobs(resolver, self.jobs, self.outcomes, self.pending);
    }
}

/// Answers requests: straight away, or through the resolver for those with refusals to finish
/// (`pending`, by request, in request order).
fn finish_jobs(
    resolver: Option<&ResolverLink>,
    jobs: Vec<Job>,
    outcomes: Vec<Vec<Option<Outcome>>>,
    pending: Vec<(usize, Pending)>,
) {
    let mut pending = pending.into_iter().peekable();
    for (j, (job, outcomes)) in jobs.into_iter().zip(outcomes).enumerate() {
        let mut own = Vec::new();
        while let Some((_, p)) = pending.next_if(|(pj, _)| *pj == j) {
            own.push(p);
        }
        match resolver {
            Some(resolver) => resolver.finish(job, outcomes, own),
            None => reply(job, outcomes),
        }
    }
}

/// Sends a request its answers, one per item; an item left undecided is refused.
pub(crate) fn reply(job: Job, outcomes: Vec<Option<Outcome>>) {
    let answers = outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err(Refusal::unavailable("not sequenced"))))
        .collect();
    // Its place in the queue is free before the submitter hears: once answered, it is not held.
    let Job { reply, ticket, .. } = job;
    drop(ticket);
    // The submitter may have gone away; its entries are durable all the same.
    let _ = reply.send(answers);
}

/// The roots of the ledger's sealed blocks from block `first` on, in order.
pub(crate) fn sealed_roots(conn: &mut PgConnection, first: u64) -> Result<Vec<Digest>, StoreError> {
    ledger::block_roots_from(conn, first)?
        .iter()
        .map(|b| Digest::from_slice(&b.root))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StoreError::Corrupt {
            table: "blocks",
            detail: e.to_string(),
        })
}

fn load_accumulator(conn: &mut PgConnection, block_size: u64) -> Result<LedgerTree, StoreError> {
    let size = ledger::ledger_size(conn)?;
    let roots = sealed_roots(conn, 0)?;
    let sealed = roots.len() as u64 * block_size;
    if sealed > size || size - sealed >= block_size {
        return Err(StoreError::Corrupt {
            table: "blocks",
            detail: format!(
                "{} sealed blocks do not match a ledger of {size} entries",
                roots.len()
            ),
        });
    }
    let open = crate::checkpoints::leaf_digests(conn, sealed, size)?;
    LedgerTree::restore(block_size, roots, open).map_err(|e| StoreError::Corrupt {
        table: "blocks",
        detail: e.to_string(),
    })
}

/// The latest stored checkpoint must be what the stored ledger gives: its block size, entries
/// that are all stored, and the root they make. Otherwise the ledger was altered (or its
/// checkpoints came from elsewhere), and whatever the registry signed next would contradict
/// what it signed before.
fn check_latest_checkpoint(
    conn: &mut PgConnection,
    acc: &LedgerTree,
    checkpoint: &Checkpoint,
) -> Result<(), RegistryError> {
    let size = checkpoint.size;
    let block_size = acc.block_size();
    if u64::from(checkpoint.block_size) != block_size {
        return Err(RegistryError::Inconsistent(format!(
            "the latest checkpoint (size {size}) was signed with blocks of {} entries, the \
             ledger's are of {block_size}",
            checkpoint.block_size
        )));
    }
    if size > acc.size() {
        return Err(RegistryError::Inconsistent(format!(
            "the latest checkpoint covers {size} entries, the ledger holds {}",
            acc.size()
        )));
    }
    let root = match acc.root_at(size) {
        Some(root) => root,
        None => {
            // A checkpoint cut inside a block sealed since: that block as it was then.
            let full = size / block_size;
            let leaves = crate::checkpoints::leaf_digests(conn, full * block_size, size)?;
            let mut roots = acc
                .sealed_roots()
                .get(..usize::try_from(full).unwrap_or(usize::MAX))
                .map(<[Digest]>::to_vec)
                .unwrap_or_default();
            roots.push(lading_domain::merkle::merkle_root(&leaves));
            lading_domain::merkle::merkle_root(&roots)
        }
    };
    if root != checkpoint.root {
        return Err(RegistryError::Inconsistent(format!(
            "the latest checkpoint (size {size}) signs the root {}, the stored entries give {}",
            checkpoint.root.to_hex(),
            root.to_hex()
        )));
    }
    Ok(())
}

/// What a party statement at `idx` writes to the registry's projection of the membership.
fn membership_rows(idx: u64, statement: &PartyStatement) -> Vec<MembershipRow> {
    let idx = to_i64(idx);
    let key_row = |owner: &lading_domain::membership::Principal, jwk: &lading_domain::Jwk| {
        match owner.party() {
            Some(party) => MembershipRow::NewKey(PartyKeyRow {
                kid: jwk.kid().to_string(),
                party_id: party.to_string(),
                public_key: jwk.public_key_bytes().to_vec(),
                created_at: Utc::now(),
                revoked_at: None,
                added_idx: Some(idx),
                revoked_idx: None,
            }),
            None => MembershipRow::NewOperatorKey(OperatorKeyRow {
                kid: jwk.kid().to_string(),
                public_key: jwk.public_key_bytes().to_vec(),
                added_idx: Some(idx),
                revoked_idx: None,
            }),
        }
    };
    match &statement.statement {
        Statement::AddParty { party, keys } => {
            let owner = lading_domain::membership::Principal::Party(party.id.clone());
            std::iter::once(MembershipRow::NewParty(PartyRow {
                id: party.id.to_string(),
                name: party.name.to_string(),
                role: party.role.as_str().to_owned(),
                ports: party.ports.iter().map(|p| Some(p.to_string())).collect(),
                created_at: Utc::now(),
                added_idx: Some(idx),
                removed_idx: None,
            }))
            .chain(keys.iter().map(|k| key_row(&owner, k)))
            .collect()
        }
        Statement::RemoveParty { party } => vec![MembershipRow::RemoveParty {
            id: party.to_string(),
            idx,
        }],
        Statement::AddKey { subject, key } => vec![key_row(subject, key)],
        Statement::RevokeKey { kid, .. } => vec![MembershipRow::RevokeKey {
            kid: kid.to_string(),
            idx,
        }],
    }
}

fn entry_row(
    v: &Verified,
    idx: u64,
    now: chrono::DateTime<Utc>,
    submitter: Option<&str>,
) -> EntryRow {
    let (kind, document_ref, equipment_ref, actor) = match &v.body {
        VerifiedBody::Transition(t) => (
            EntryKind::Transition,
            Some(t.payload().document_reference().to_string()),
            None,
            t.payload().actor().to_string(),
        ),
        VerifiedBody::Event(e) => (
            EntryKind::Event,
            e.event().document_reference().map(|r| r.to_string()),
            e.event().equipment_reference().map(|c| c.to_string()),
            e.event().actor().to_string(),
        ),
        VerifiedBody::Party(p) => (
            EntryKind::Party,
            None,
            None,
            p.statement().actor.to_string(),
        ),
    };
    EntryRow {
        idx: to_i64(idx),
        kind: kind.as_str().to_owned(),
        signed: v.signed.as_bytes().to_vec(),
        leaf_hash: v.leaf.0.to_vec(),
        document_ref,
        equipment_ref,
        actor,
        kid: v.kid.clone(),
        received_at: now,
        submitted_by: submitter.map(str::to_owned),
    }
}

fn rule_refusal(violation: RuleViolation) -> Refusal {
    // The same code is a field error of the payload wherever it is found (400 with a pointer).
    if matches!(violation, RuleViolation::DocumentChecksumMismatch) {
        return Refusal::InvalidField {
            code: violation.code(),
            pointer: "/documentChecksum".into(),
            detail: violation.to_string(),
        };
    }
    Refusal::Rule {
        code: violation.code(),
        detail: violation.to_string(),
    }
}
