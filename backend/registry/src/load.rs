//! What the write path can take, and whether it still can: the bounded queue of submissions
//! (backpressure) and the liveness of the threads every submission needs (readiness).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// The submissions the registry holds, counted per request in two atomics (never per item).
///
/// A request is admitted while fewer than `limit` submissions are held — being verified,
/// waiting for the sequencer, drafted, written, or waiting for their answer — and refused as
/// `server_busy` otherwise, so an overload is shed at the door instead of queueing without
/// bound. One request may take the count past `limit` by its own size: a batch larger than the
/// limit still goes through an idle registry.
#[derive(Debug)]
pub(crate) struct Admission {
    limit: usize,
    held: AtomicUsize,
    waiting: AtomicUsize,
}

impl Admission {
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            held: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
        })
    }

    /// A ticket for `count` submissions, or `None` when the registry holds too many.
    pub(crate) fn admit(self: &Arc<Self>, count: usize) -> Option<Ticket> {
        let before = self.held.fetch_add(count, Ordering::Relaxed);
        if before >= self.limit {
            self.held.fetch_sub(count, Ordering::Relaxed);
            return None;
        }
        self.waiting.fetch_add(count, Ordering::Relaxed);
        Some(Ticket {
            admission: Arc::clone(self),
            count,
            waiting: true,
        })
    }

    pub(crate) fn queue(&self) -> Queue {
        Queue {
            held: self.held.load(Ordering::Relaxed),
            waiting: self.waiting.load(Ordering::Relaxed),
        }
    }
}

/// How many submissions the registry holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queue {
    /// Admitted and not yet answered (what `max_queue` bounds).
    pub held: usize,
    /// Of those, the ones the sequencer has not taken yet (being verified, or queued for it).
    pub waiting: usize,
}

/// Holds a request's place in the queue until it is answered (dropped).
#[derive(Debug)]
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    count: usize,
    waiting: bool,
}

impl Ticket {
    /// The sequencer has taken the request.
    pub(crate) fn taken(&mut self) {
        if std::mem::take(&mut self.waiting) {
            self.admission
                .waiting
                .fetch_sub(self.count, Ordering::Relaxed);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.taken();
        self.admission.held.fetch_sub(self.count, Ordering::Relaxed);
    }
}

/// The threads of the write path. A submission needs every one of them: the drafter checks
/// and orders it, the writer makes it durable, the answerer answers it, the resolver finishes
/// refusals that need the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WritePathThread {
    Drafter,
    Writer,
    Answerer,
    Resolver,
}

impl WritePathThread {
    const ALL: [Self; 4] = [Self::Drafter, Self::Writer, Self::Answerer, Self::Resolver];

    pub fn name(self) -> &'static str {
        match self {
            Self::Drafter => "drafter",
            Self::Writer => "writer",
            Self::Answerer => "answerer",
            Self::Resolver => "resolver",
        }
    }
}

/// Which write-path threads are running: each clears its flag when it ends, by returning or by
/// a panic (the flag is cleared by a guard's `Drop`, which unwinding runs).
#[derive(Debug)]
pub(crate) struct Threads {
    running: [AtomicBool; 4],
    #[cfg(feature = "testing")]
    doomed: [AtomicBool; 4],
}

impl Threads {
    /// Every thread counts as running until its guard is dropped (or never handed out because
    /// its spawn failed, which drops the guard with the closure).
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            running: std::array::from_fn(|_| AtomicBool::new(true)),
            #[cfg(feature = "testing")]
            doomed: std::array::from_fn(|_| AtomicBool::new(false)),
        })
    }

    /// The guard a thread holds for as long as it runs.
    pub(crate) fn guard(self: &Arc<Self>, thread: WritePathThread) -> Running {
        Running {
            threads: Arc::clone(self),
            thread,
        }
    }

    /// The first thread of the write path that is not running.
    pub(crate) fn stopped(&self) -> Option<WritePathThread> {
        WritePathThread::ALL
            .into_iter()
            .find(|t| !self.running[*t as usize].load(Ordering::SeqCst))
    }

    /// TEST ONLY: makes `thread` panic the next time it wakes (there is no real way to kill
    /// one thread of a process from outside).
    #[cfg(feature = "testing")]
    pub(crate) fn doom(&self, thread: WritePathThread) {
        self.doomed[thread as usize].store(true, Ordering::SeqCst);
    }
}

/// Clears its thread's running flag when dropped.
#[derive(Debug)]
pub(crate) struct Running {
    threads: Arc<Threads>,
    thread: WritePathThread,
}

impl Running {
    /// Where a thread wakes. Does nothing, except in test builds where the thread may have
    /// been doomed ([`Threads::doom`]).
    #[inline]
    pub(crate) fn woke(&self) {
        #[cfg(feature = "testing")]
        if self.threads.doomed[self.thread as usize].swap(false, Ordering::SeqCst) {
            // A panic in a test build only: the hook exists to see a thread die.
            #[allow(clippy::panic)]
            {
                panic!(
                    "the {} thread was made to die by a test",
                    self.thread.name()
                );
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.threads.running[self.thread as usize].store(false, Ordering::SeqCst);
    }
}
