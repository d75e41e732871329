//! Reads from a hot standby (`database.read_url`), bounded by the checkpoint it holds.
//!
//! A standby replays the primary's WAL: it may hold entries the primary has not acknowledged
//! yet (their commit still waits for the synchronous standby, or this standby is an
//! asynchronous one that is ahead of it). The registry signs a checkpoint only over entries it
//! acknowledged, so every entry below the size of a checkpoint stored on the standby was
//! acknowledged. A read served from the standby is therefore bounded by that size, and by the
//! checkpoint the caller knows was published (`cap`), whichever is smaller: the **bound**. A
//! read that cannot be answered within it (the caller's closure says `None`) or that fails on
//! the standby (unreachable, a recovery conflict) is answered from the primary instead, by the
//! caller's own code, exactly as without a standby.
//!
//! The bound and the read are taken in one `REPEATABLE READ, READ ONLY` transaction: one
//! snapshot of the standby, which holds every entry below the bound (a checkpoint row is
//! committed after the entries it covers, and WAL is replayed in commit order).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool};

use crate::schema::checkpoints;
use crate::{PgConnection, PgPool, StoreError};

/// After a connection to the standby fails, reads go straight to the primary this long before
/// the standby is tried again (so an unreachable standby costs one connection timeout, not one
/// per request).
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// How long a read waits for a standby connection before it asks the primary instead.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A pool of connections to a hot standby, and what the reads made of it.
pub struct Standby {
    pool: PgPool,
    down_until: Mutex<Option<Instant>>,
    served: AtomicU64,
    fell_back: AtomicU64,
}

impl std::fmt::Debug for Standby {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL holds a password: never print it.
        f.debug_struct("Standby")
            .field("pool_size", &self.pool.max_size())
            .field("served", &self.served.load(Ordering::Relaxed))
            .field("fell_back", &self.fell_back.load(Ordering::Relaxed))
            .finish()
    }
}

/// How many reads a standby answered, and how many it passed to the primary (out of the
/// bound, a failure, or while it was held down after one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StandbyCounts {
    pub served: u64,
    pub fell_back: u64,
}

impl Standby {
    /// A pool of `size` connections to `url`. Nothing is connected yet: a registry starts
    /// (and serves from the primary) while its standby is down.
    pub fn connect(url: &str, size: u32) -> Result<Arc<Self>, StoreError> {
        let manager = ConnectionManager::<PgConnection>::new(url);
        let pool = Pool::builder()
            .error_handler(Box::new(crate::QuietConnectErrors))
            .max_size(size.max(1))
            .min_idle(Some(0))
            .connection_timeout(CONNECT_TIMEOUT)
            .build_unchecked(manager);
        Ok(Arc::new(Self {
            pool,
            down_until: Mutex::new(None),
            served: AtomicU64::new(0),
            fell_back: AtomicU64::new(0),
        }))
    }

    pub fn counts(&self) -> StandbyCounts {
        StandbyCounts {
            served: self.served.load(Ordering::Relaxed),
            fell_back: self.fell_back.load(Ordering::Relaxed),
        }
    }

    /// The pool's connections now (open, of which idle) and its maximum size.
    pub fn pool_state(&self) -> (u32, u32, u32) {
        let state = self.pool.state();
        (
            state.connections,
            state.idle_connections,
            self.pool.max_size(),
        )
    }

    fn held_down(&self) -> bool {
        let mut down = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
        match *down {
            Some(until) if Instant::now() < until => true,
            Some(_) => {
                *down = None;
                false
            }
            None => false,
        }
    }

    fn hold_down(&self, error: &StoreError) {
        let mut down = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
        if down.is_none() {
            tracing::warn!(%error, "the hot standby (database.read_url) cannot be read: reads go to the primary");
        }
        *down = Some(Instant::now() + RETRY_AFTER);
    }

    /// Runs `read` on the standby with the bound (see the module): `Some` is the answer,
    /// `None` means "ask the primary" — because `read` said the bound does not allow an
    /// answer, the bound is 0, or the standby failed.
    pub fn bounded<T>(
        &self,
        cap: u64,
        read: impl FnOnce(&mut PgConnection, u64) -> Result<Option<T>, StoreError>,
    ) -> Option<T> {
        let answer = if cap == 0 || self.held_down() {
            None
        } else {
            match self.try_bounded(cap, read) {
                Ok(answer) => answer,
                Err(error) => {
                    if error.is_unavailable() {
                        self.hold_down(&error);
                    } else {
                        // A recovery conflict ("canceling statement due to conflict with
                        // recovery") or another failure of this one read.
                        tracing::debug!(%error, "a read on the hot standby failed: asking the primary");
                    }
                    None
                }
            }
        };
        let counter = if answer.is_some() {
            &self.served
        } else {
            &self.fell_back
        };
        counter.fetch_add(1, Ordering::Relaxed);
        answer
    }

    fn try_bounded<T>(
        &self,
        cap: u64,
        read: impl FnOnce(&mut PgConnection, u64) -> Result<Option<T>, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let mut conn = self.pool.get()?;
        conn.build_transaction()
            .repeatable_read()
            .read_only()
            .run(|conn| {
                let bound = latest_checkpoint_size(conn)?.min(cap);
                if bound == 0 {
                    return Ok(None);
                }
                read(conn, bound)
            })
    }
}

/// The size of the latest checkpoint stored on this server (0 without one).
pub fn latest_checkpoint_size(conn: &mut PgConnection) -> Result<u64, StoreError> {
    let size: Option<i64> = checkpoints::table
        .select(diesel::dsl::max(checkpoints::size))
        .first(conn)?;
    Ok(size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0))
}
