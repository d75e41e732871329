//! The registry's write path and its proofs.
//!
//! A submission goes through two stages:
//! 1. [`verify`]: stateless checks — the JWS parses, the payload is canonical and valid, the
//!    kid is registered to the payload's actor and the signature verifies. These run in
//!    parallel on a pool of threads the size of the machine.
//! 2. [`sequencer`]: one thread checks the verified submissions against the ledger, orders them,
//!    and writes each batch in one transaction. A submission is answered only after its batch
//!    has committed with `synchronous_commit = on` (group commit).
//!
//! Checkpoints are signed by the sequencer (see [`checkpoints`]); proofs are built on demand
//! from stored block roots and leaf hashes.
//!
//! [`reconcile`]: the registry compares each replica with its ledger and repairs it.

pub mod checkpoints;
pub mod lease;
mod load;
pub mod parties;
pub mod reconcile;
pub mod refusal;
mod resolver;
mod search;
mod sequencer;
mod submitters;
pub mod verify;

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use lading_domain::jws::SigningKey;
use lading_domain::Digest;
use lading_store::models::EntryKind;
use lading_store::{ledger, Store, StoreError};
use tokio::sync::oneshot;

pub use checkpoints::{CheckpointBook, ConsistencyAnswer, ProofAnswer, PublishedCheckpoint};
pub use load::{Queue, WritePathThread};
pub use parties::PartyBook;
pub use refusal::Refusal;
pub use resolver::RESOLVER;
pub use sequencer::{DRAFTER, WRITER};
pub use verify::Expect;

use load::{Admission, Threads};
use sequencer::{Job, Sequencer};

/// Largest compact JWS the registry takes (an ISSUE carries the whole transport document).
pub const MAX_ITEM_BYTES: usize = 1 << 20;

/// How the registry batches and seals.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Entries per Merkle block. Fixed for the life of a ledger.
    pub block_size: u64,
    /// Largest number of submissions written in one transaction.
    pub max_batch: usize,
    /// Most submissions held at once (being verified, queued, sequenced or answered); past it a
    /// request is refused as `server_busy` (transient) before any work is done for it.
    pub max_queue: usize,
    /// How often a new checkpoint is signed while the ledger grows.
    pub checkpoint_interval: Duration,
    /// Documents kept in the sequencer's memory before it starts over.
    pub document_cache: usize,
    /// Threads verifying signatures (0 = one per core).
    pub verify_threads: usize,
    /// How far a statement's `time` may be from the registry's clock (or, for a statement a
    /// party's own node took while the registry was away, from when the node took it).
    pub max_clock_skew: Duration,
    /// How long ago a party's node may have taken a statement it forwards: an old signature
    /// cannot be brought in as "taken offline" years later.
    pub max_offline: Duration,
    /// Whether party statements may add keys marked as TEST keys (`lading_test_key`): the
    /// demo's and the tests' registries only.
    pub allow_test_keys: bool,
}

/// Where a submission comes from, for the time rule (see [`RegistryConfig::max_clock_skew`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Straight from a client: judged against the registry's clock.
    Direct,
    /// Forwarded by a party's own node (its client certificate names `party`), which took it
    /// at `received_at`: the party's own statements are judged against that time, which must
    /// itself be within [`RegistryConfig::max_offline`] of the registry's clock.
    Node {
        party: lading_domain::PartyId,
        received_at: lading_domain::Timestamp,
    },
    /// The operator's own import of statements signed in the past (the demo's samples, a
    /// migration from another platform): the time rule is waived, the chain rule is not.
    Import,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            block_size: lading_domain::merkle::BLOCK_SIZE,
            max_batch: 4096,
            max_queue: 32_768,
            checkpoint_interval: Duration::from_millis(500),
            document_cache: 500_000,
            verify_threads: 0,
            max_clock_skew: Duration::from_secs(5 * 60),
            max_offline: Duration::from_secs(7 * 24 * 3600),
            allow_test_keys: false,
        }
    }
}

/// What the registry answers for an accepted (or already accepted) submission.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub index: u64,
    pub leaf_hash: Digest,
    pub kind: EntryKind,
    pub document_reference: Option<String>,
    /// The document's state right after this transition (transitions only).
    pub state: Option<lading_store::json::JsonText>,
    /// The party whose credential handed the entry in (for a duplicate, the first time), when
    /// it was a party's.
    pub submitted_by: Option<String>,
    /// True when these exact bytes were already on the ledger: nothing new was written.
    pub duplicate: bool,
}

/// Who hands a submission to the registry, as against who signed it (the kid's party).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Submitter {
    /// No party's credential: an anonymous write where the configuration allows one, the
    /// consortium's own certificate, the operator's import. Nothing to check, nothing recorded.
    #[default]
    Unchecked,
    /// A party's credential (bearer token or client certificate): it may hand in the party's
    /// own statements, and another party's only where that party has authorised it
    /// (`submitters`); recorded with each entry as `submitted_by`.
    Party(lading_domain::PartyId),
}

/// Why the registry could not start.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot start the verifier pool: {0}")]
    Threads(String),
    #[error("the ledger and its stored checkpoints disagree: {0}")]
    Inconsistent(String),
    /// Every stored block and checkpoint root depends on the block size: a ledger keeps the
    /// one it began with.
    #[error(
        "the ledger was built with blocks of {stored} entries, but the configuration says \
         {configured}: set registry.block_size = {stored}"
    )]
    BlockSize { stored: u64, configured: u64 },
}

/// A running registry. Cloning shares it; dropping the last clone (or [`Registry::shutdown`])
/// lets the sequencer finish its batch, sign a last checkpoint and stop.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    jobs: Mutex<Option<crossbeam_channel::Sender<Job>>>,
    sequencer: Mutex<Option<JoinHandle<()>>>,
    admission: Arc<Admission>,
    threads: Arc<Threads>,
    verifiers: rayon::ThreadPool,
    book: PartyBook,
    checkpoints: CheckpointBook,
    store: Store,
    lease: Arc<lease::Lease>,
    keeper: Mutex<Option<lease::Keeper>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("checkpoints", &self.inner.checkpoints)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Loads the party registry and the ledger's Merkle state, and starts the sequencer.
    ///
    /// Refuses to start on a ledger built with another block size ([`RegistryError::BlockSize`])
    /// or whose latest stored checkpoint is not what its stored entries give
    /// ([`RegistryError::Inconsistent`]): either way it would sign roots that match neither.
    pub fn start(
        store: Store,
        signer: SigningKey,
        config: RegistryConfig,
    ) -> Result<Self, RegistryError> {
        let stored = {
            let mut conn = store.conn()?;
            ledger::claim_block_size(&mut conn, config.block_size)?
        };
        if stored != config.block_size {
            return Err(RegistryError::BlockSize {
                stored,
                configured: config.block_size,
            });
        }
        let book = PartyBook::load(store.clone())?;
        let latest = {
            let mut conn = store.conn()?;
            ledger::latest_checkpoint(&mut conn)?
                .map(|row| checkpoints::published(&row))
                .transpose()?
        };
        let checkpoints = CheckpointBook::new(config.block_size, latest);
        let verifiers = rayon::ThreadPoolBuilder::new()
            .num_threads(config.verify_threads)
            .thread_name(|i| format!("lading-verify-{i}"))
            .build()
            .map_err(|e| RegistryError::Threads(e.to_string()))?;
        let admission = Admission::new(config.max_queue.max(1));
        let threads = Threads::new();
        let (lease, woken) = lease::Lease::new();
        let lease = Arc::new(lease);
        if !lease.try_take(&store)? {
            tracing::info!(
                "another registry process sequences this ledger: standing by, serving reads"
            );
        }
        let sequencer = Sequencer::start(
            store.clone(),
            book.clone(),
            checkpoints.clone(),
            signer,
            config,
            &threads,
            Arc::clone(&lease),
        )?;
        let keeper = lease::Keeper::start(
            Arc::clone(&lease),
            store.clone(),
            checkpoints.clone(),
            book.clone(),
            woken,
        )
        .map_err(|e| RegistryError::Threads(e.to_string()))?;
        // Unbounded as a channel, bounded by admission: every job in it holds a ticket.
        let (tx, rx) = crossbeam_channel::unbounded();
        let running = threads.guard(WritePathThread::Drafter);
        let handle = std::thread::Builder::new()
            .name("lading-sequencer".into())
            .spawn(move || sequencer.run(rx, running))
            .map_err(|e| RegistryError::Threads(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                jobs: Mutex::new(Some(tx)),
                sequencer: Mutex::new(Some(handle)),
                admission,
                threads,
                verifiers,
                book,
                checkpoints,
                store,
                lease,
                keeper: Mutex::new(Some(keeper)),
            }),
        })
    }

    /// Verifies and sequences `items` (each a compact JWS); one outcome per item, in order.
    /// A refused item refuses nothing else.
    pub async fn submit(
        &self,
        items: Vec<String>,
        expect: Expect,
    ) -> Vec<Result<Receipt, Refusal>> {
        self.submit_from(items, expect, Origin::Direct).await
    }

    /// [`Self::submit`] for submissions of the given origin.
    pub async fn submit_from(
        &self,
        items: Vec<String>,
        expect: Expect,
        origin: Origin,
    ) -> Vec<Result<Receipt, Refusal>> {
        self.submit_as(items, expect, origin, Submitter::Unchecked)
            .await
    }

    /// [`Self::submit_from`] handed in by `submitter`: an item signed by another party than the
    /// submitter's is refused (`submitter_not_authorised`) unless that party has authorised it,
    /// before the ledger is consulted, so the refusal says nothing about any document.
    pub async fn submit_as(
        &self,
        items: Vec<String>,
        expect: Expect,
        origin: Origin,
        submitter: Submitter,
    ) -> Vec<Result<Receipt, Refusal>> {
        if expect == Expect::Party && items.len() > 1 {
            // Each statement changes the membership the next is judged by: one job each.
            let mut outcomes = Vec::with_capacity(items.len());
            for item in items {
                outcomes.extend(
                    self.submit_job(vec![item], expect, origin.clone(), submitter.clone())
                        .await,
                );
            }
            return outcomes;
        }
        self.submit_job(items, expect, origin, submitter).await
    }

    /// Verifies `items` and sends them to the sequencer as one job.
    async fn submit_job(
        &self,
        items: Vec<String>,
        expect: Expect,
        origin: Origin,
        submitter: Submitter,
    ) -> Vec<Result<Receipt, Refusal>> {
        let count = items.len();
        if !self.inner.lease.takes_submissions() {
            return vec![Err(Refusal::standing_by()); count];
        }
        let Some(ticket) = self.inner.admission.admit(count) else {
            return vec![Err(Refusal::busy()); count];
        };
        let verified = self.verify_all(items, expect, submitter.clone()).await;
        let submitter = match submitter {
            Submitter::Party(party) => Some(party.to_string()),
            Submitter::Unchecked => None,
        };
        let (reply, answer) = oneshot::channel();
        let sent = {
            let jobs = self.inner.jobs.lock().unwrap_or_else(|e| e.into_inner());
            match jobs.as_ref() {
                Some(jobs) => jobs
                    .send(Job {
                        items: verified,
                        origin,
                        submitter,
                        reply,
                        ticket,
                    })
                    .is_ok(),
                None => false,
            }
        };
        let stopped = || vec![Err(Refusal::unavailable("the registry is shutting down")); count];
        if !sent {
            return stopped();
        }
        answer.await.unwrap_or_else(|_| stopped())
    }

    /// [`Self::submit`] for one item.
    pub async fn submit_one(&self, item: String, expect: Expect) -> Result<Receipt, Refusal> {
        self.submit_one_from(item, expect, Origin::Direct).await
    }

    /// [`Self::submit_from`] for one item.
    pub async fn submit_one_from(
        &self,
        item: String,
        expect: Expect,
        origin: Origin,
    ) -> Result<Receipt, Refusal> {
        self.submit_one_as(item, expect, origin, Submitter::Unchecked)
            .await
    }

    /// [`Self::submit_as`] for one item.
    pub async fn submit_one_as(
        &self,
        item: String,
        expect: Expect,
        origin: Origin,
        submitter: Submitter,
    ) -> Result<Receipt, Refusal> {
        self.submit_as(vec![item], expect, origin, submitter)
            .await
            .pop()
            .unwrap_or_else(|| Err(Refusal::unavailable("no answer")))
    }

    async fn verify_all(
        &self,
        items: Vec<String>,
        expect: Expect,
        submitter: Submitter,
    ) -> Vec<Result<verify::Verified, Refusal>> {
        let (tx, rx) = oneshot::channel();
        let book = self.inner.book.clone();
        let store = self.inner.store.clone();
        self.inner.verifiers.spawn(move || {
            let mut verified = if items.len() == 1 {
                items
                    .into_iter()
                    .map(|item| verify::verify(&book, item, expect))
                    .collect()
            } else {
                verify::verify_all(&book, items, expect)
            };
            if let Submitter::Party(party) = &submitter {
                submitters::check(&store, party.as_str(), &mut verified);
            }
            let _ = tx.send(verified);
        });
        rx.await
            .unwrap_or_else(|_| vec![Err(Refusal::unavailable("verifier stopped"))])
    }

    /// Whether the sequencer is still taking submissions: false after a shutdown, or once any
    /// thread a submission needs has stopped ([`Self::stopped_thread`]). Readiness depends on it.
    pub fn is_sequencing(&self) -> bool {
        let jobs_open = self
            .inner
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some();
        jobs_open && self.stopped_thread().is_none() && !self.is_standing_by()
    }

    /// Whether this process takes no submissions now, though it runs: another registry process
    /// holds the sequencer's lease (or this one lost it and has not taken it again), or the
    /// database cannot be read (failing over). It serves reads meanwhile (see [`lease`]).
    pub fn is_standing_by(&self) -> bool {
        !self.inner.lease.takes_submissions()
    }

    /// The first thread of the write path that is no longer running (by a crash: a panic
    /// clears its flag as it unwinds), if any.
    pub fn stopped_thread(&self) -> Option<WritePathThread> {
        self.inner.threads.stopped()
    }

    /// How many submissions the registry holds now (see [`RegistryConfig::max_queue`]).
    pub fn queue(&self) -> Queue {
        self.inner.admission.queue()
    }

    /// TEST ONLY (feature `testing`): makes a thread of the write path panic the next time it
    /// wakes, to see what readiness and submissions make of its death.
    #[cfg(feature = "testing")]
    pub fn doom_thread(&self, thread: WritePathThread) {
        self.inner.threads.doom(thread);
    }

    pub fn latest_checkpoint(&self) -> Option<PublishedCheckpoint> {
        self.inner.checkpoints.latest()
    }

    /// Blocking: see [`CheckpointBook::prove`].
    pub fn prove(&self, index: u64, size: Option<u64>) -> Result<ProofAnswer, Refusal> {
        self.inner.checkpoints.prove(&self.inner.store, index, size)
    }

    /// Blocking: see [`CheckpointBook::consistency`].
    pub fn consistency(&self, from: u64, to: u64) -> Result<ConsistencyAnswer, Refusal> {
        self.inner
            .checkpoints
            .consistency(&self.inner.store, from, to)
    }

    /// See [`CheckpointBook::wait_until_covered`].
    pub async fn wait_until_covered(&self, index: u64, timeout: std::time::Duration) -> bool {
        self.inner
            .checkpoints
            .wait_until_covered(index, timeout)
            .await
    }

    pub fn parties(&self) -> &PartyBook {
        &self.inner.book
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Stops taking submissions, lets the sequencer finish and sign a last checkpoint.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }
}

impl Inner {
    fn shutdown(&self) {
        let keeper = self.keeper.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut keeper) = keeper {
            keeper.stop();
        }
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take();
        let handle = self
            .sequencer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

/// The last handle gone, the registry stops as [`Registry::shutdown`] does: no sequencer,
/// writer or answering thread outlives it (a thread still talking to PostgreSQL while the
/// process exits can crash it in the client library's teardown).
impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown();
    }
}
