//! Which of several registry processes on one database sequences: the one holding the
//! sequencer's lease ([`lading_store::lease`]). The others stand by: they serve reads, refuse
//! submissions as `ledger_unavailable` (503, resubmitting is safe), follow the ledger's
//! checkpoints and party registry, and try the lease every [`TRY_EVERY`]. A process killed
//! (or cut off from the database) releases it with its connection; the first to try after
//! that takes over within [`TRY_EVERY`] plus the time to reload the ledger's state.
//!
//! The lease is taken on a fresh connection which is then handed to the writer: every batch is
//! written on the session that holds the lock. Should that session die, the write fails, the
//! process stands by, and the lease is taken again (by this process or another) before
//! anything more is written; the ledger's head check (`ledger_head`) refuses a batch drafted
//! on a stale view whichever process writes it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use diesel::pg::PgConnection;
use lading_store::{ledger, Store, StoreError};

use crate::checkpoints::CheckpointBook;
use crate::parties::PartyBook;
use crate::sequencer::WRITER;

/// How often a standing-by process tries the lease and follows the ledger.
pub const TRY_EVERY: Duration = Duration::from_millis(100);

/// How often a standing-by process reads the party registry again.
const PARTIES_EVERY: Duration = Duration::from_secs(2);

/// Shared by the registry's front (may it take submissions?), the drafter (has the lease been
/// taken again since it last loaded the ledger?) and the writer (the lease's connection).
pub(crate) struct Lease {
    active: AtomicBool,
    /// The sequencer cannot read the ledger (the database is away): submissions are refused
    /// until it can, even while the lease is held.
    recovering: AtomicBool,
    /// How many times this process has taken the lease.
    taken: AtomicU64,
    /// The connection that holds the lock, until the writer takes it.
    handed: Mutex<Option<PgConnection>>,
    /// Wakes the keeper when the lease is lost, to try again at once.
    wake: Sender<()>,
}

impl Lease {
    /// A lease not yet taken, and the keeper's end of its wake-up line.
    pub(crate) fn new() -> (Self, Receiver<()>) {
        let (wake, woken) = crossbeam_channel::bounded(1);
        let lease = Self {
            active: AtomicBool::new(false),
            recovering: AtomicBool::new(false),
            taken: AtomicU64::new(0),
            handed: Mutex::new(None),
            wake,
        };
        (lease, woken)
    }

    /// Tries to take the lease on a new connection, handing it to the writer if taken.
    pub(crate) fn try_take(&self, store: &Store) -> Result<bool, StoreError> {
        let mut conn = store.dedicated_connection(WRITER)?;
        if !lading_store::lease::try_take(&mut conn)? {
            return Ok(false);
        }
        *self.handed.lock().unwrap_or_else(|e| e.into_inner()) = Some(conn);
        self.taken.fetch_add(1, Ordering::SeqCst);
        self.active.store(true, Ordering::SeqCst);
        Ok(true)
    }

    /// This process sequences (as far as it knows: a cut connection is found at the next
    /// write).
    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::SeqCst)
    }

    /// Whether submissions are taken now: the lease is held and the ledger can be read.
    pub(crate) fn takes_submissions(&self) -> bool {
        self.is_active() && !self.recovering.load(Ordering::SeqCst)
    }

    pub(crate) fn set_recovering(&self, recovering: bool) {
        self.recovering.store(recovering, Ordering::SeqCst);
    }

    /// How many times the lease was taken: the drafter reloads when this moves.
    pub(crate) fn taken(&self) -> u64 {
        self.taken.load(Ordering::SeqCst)
    }

    /// The connection holding the lock, for the writer (once per taking).
    pub(crate) fn connection(&self) -> Result<PgConnection, StoreError> {
        self.handed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or(StoreError::NoLease)
    }

    /// The writer's connection is gone (a failed write drops it), and the lock with it.
    pub(crate) fn lost(&self) {
        if self.active.swap(false, Ordering::SeqCst) {
            tracing::warn!("the sequencer's lease is lost with its connection; standing by");
        }
        let _ = self.wake.try_send(());
    }
}

/// The thread that, while this process stands by, follows the ledger and tries the lease.
pub(crate) struct Keeper {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Keeper {
    pub(crate) fn start(
        lease: Arc<Lease>,
        store: Store,
        checkpoints: CheckpointBook,
        book: PartyBook,
        woken: Receiver<()>,
    ) -> std::io::Result<Self> {
        let (stop, stopped) = crossbeam_channel::bounded(0);
        let thread = std::thread::Builder::new()
            .name("lading-lease".into())
            .spawn(move || keep(&lease, &store, &checkpoints, &book, &stopped, &woken))?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub(crate) fn stop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.stop();
    }
}

fn keep(
    lease: &Lease,
    store: &Store,
    checkpoints: &CheckpointBook,
    book: &PartyBook,
    stopped: &Receiver<()>,
    woken: &Receiver<()>,
) {
    let mut follower: Option<PgConnection> = None;
    let mut parties_read = Instant::now();
    let mut failing = false;
    loop {
        crossbeam_channel::select! {
            recv(stopped) -> _ => return,
            recv(woken) -> _ => {}
            default(TRY_EVERY) => {}
        }
        if lease.is_active() {
            follower = None;
            continue;
        }
        let followed = follow(&mut follower, store, checkpoints);
        if parties_read.elapsed() >= PARTIES_EVERY {
            parties_read = Instant::now();
            if let Err(e) = book.reload() {
                tracing::debug!(error = %e, "standing by: cannot read the party registry");
            }
        }
        match followed.and_then(|()| lease.try_take(store)) {
            Ok(true) => {
                failing = false;
                tracing::info!("took the sequencer's lease: this registry now sequences");
            }
            Ok(false) => failing = false,
            Err(e) => {
                follower = None;
                // Once per outage, not every quarter second.
                if !failing {
                    tracing::warn!(error = %e, "standing by: the database cannot be reached");
                }
                failing = true;
            }
        }
    }
}

/// Publishes the latest stored checkpoint (and the block roots its proofs need) when it is
/// newer than the one shown: a standing-by process answers reads as of the ledger's last
/// checkpoint.
fn follow(
    follower: &mut Option<PgConnection>,
    store: &Store,
    checkpoints: &CheckpointBook,
) -> Result<(), StoreError> {
    let conn = match follower {
        Some(conn) => conn,
        None => follower.insert(store.dedicated_connection("lading-standby")?),
    };
    let Some(row) = ledger::latest_checkpoint(conn)? else {
        return Ok(());
    };
    let shown = checkpoints.latest().map(|c| c.checkpoint.size);
    if shown.is_some_and(|size| i64::try_from(size).unwrap_or(i64::MAX) >= row.size) {
        return Ok(());
    }
    let published = crate::checkpoints::published(&row)?;
    // Roots read after the checkpoint cover at least the blocks it needs; only the blocks
    // sealed since the last look are read (the ledger only grows).
    let roots = crate::sequencer::sealed_roots(conn, checkpoints.sealed_count())?;
    checkpoints.extend_sealed_roots(&roots);
    checkpoints.publish(published);
    Ok(())
}
