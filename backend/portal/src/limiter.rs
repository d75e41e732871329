//! Sign-in rate limits, per account and per client address, in bounded memory.
//!
//! Each key counts its failed sign-ins in a window that starts at its first failure; past the
//! limit every attempt is refused — right password or not — until the window ends. A success
//! clears the account's count (not the address's). Each map holds at most [`MAX_KEYS`] keys:
//! when full, expired windows are dropped first, then the oldest, so a flood of made-up
//! usernames costs bounded memory (and can, at worst, forget an old window early).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Failed sign-ins of one account allowed per window.
pub const ACCOUNT_FAILURES: u32 = 5;
/// Failed sign-ins from one address allowed per window.
pub const ADDRESS_FAILURES: u32 = 20;
/// How long a window lasts from its first failure.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Keys kept per map at most.
pub const MAX_KEYS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    failures: u32,
}

#[derive(Debug)]
struct Counter<K> {
    windows: HashMap<K, Window>,
    limit: u32,
}

impl<K: Hash + Eq + Clone> Counter<K> {
    fn new(limit: u32) -> Self {
        Self {
            windows: HashMap::new(),
            limit,
        }
    }

    /// How long `key` must wait, when it is over its limit.
    fn blocked(&self, key: &K, now: Instant) -> Option<Duration> {
        let window = self.windows.get(key)?;
        let ends = window.start + WINDOW;
        (window.failures >= self.limit && now < ends).then(|| ends - now)
    }

    fn fail(&mut self, key: &K, now: Instant) {
        if !self.windows.contains_key(key) && self.windows.len() >= MAX_KEYS {
            self.windows.retain(|_, w| now < w.start + WINDOW);
            if self.windows.len() >= MAX_KEYS {
                if let Some(oldest) = self
                    .windows
                    .iter()
                    .min_by_key(|(_, w)| w.start)
                    .map(|(k, _)| k.clone())
                {
                    self.windows.remove(&oldest);
                }
            }
        }
        let window = self.windows.entry(key.clone()).or_insert(Window {
            start: now,
            failures: 0,
        });
        if now >= window.start + WINDOW {
            *window = Window {
                start: now,
                failures: 0,
            };
        }
        window.failures += 1;
    }

    fn clear(&mut self, key: &K) {
        self.windows.remove(key);
    }
}

#[derive(Debug)]
struct Counters {
    accounts: Counter<String>,
    addresses: Counter<IpAddr>,
}

/// The sign-in counters of one portal.
#[derive(Debug)]
pub struct LoginLimiter(Mutex<Counters>);

impl Default for LoginLimiter {
    fn default() -> Self {
        Self(Mutex::new(Counters {
            accounts: Counter::new(ACCOUNT_FAILURES),
            addresses: Counter::new(ADDRESS_FAILURES),
        }))
    }
}

/// The key of an account: its name as typed, lower-cased and cut to the longest username.
fn account_key(username: &str) -> String {
    username.trim().to_lowercase().chars().take(64).collect()
}

impl LoginLimiter {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `Err(wait)` when sign-ins to `username` or from `address` are refused for now.
    pub fn check(&self, username: &str, address: Option<IpAddr>) -> Result<(), Duration> {
        let now = Instant::now();
        let counters = self.lock();
        let account = counters.accounts.blocked(&account_key(username), now);
        let address = address.and_then(|a| counters.addresses.blocked(&a, now));
        match account.max(address) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Counts a failed sign-in.
    pub fn failed(&self, username: &str, address: Option<IpAddr>) {
        let now = Instant::now();
        let mut counters = self.lock();
        counters.accounts.fail(&account_key(username), now);
        if let Some(address) = address {
            counters.addresses.fail(&address, now);
        }
    }

    /// Clears an account's count after it signed in.
    pub fn succeeded(&self, username: &str) {
        self.lock().accounts.clear(&account_key(username));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_refused_after_its_limit_and_a_success_clears_it() {
        let limiter = LoginLimiter::default();
        let here: Option<IpAddr> = "127.0.0.1".parse().ok();
        for _ in 0..ACCOUNT_FAILURES {
            assert!(limiter.check("alice", here).is_ok());
            limiter.failed("Alice", here);
        }
        let wait = limiter.check("alice", here).unwrap_err();
        assert!(wait <= WINDOW);
        assert!(limiter.check("bob", here).is_ok(), "another account");
        limiter.succeeded("alice");
        assert!(limiter.check("alice", here).is_ok());
    }

    #[test]
    fn an_address_is_refused_after_its_limit_whatever_the_account() {
        let limiter = LoginLimiter::default();
        let here: Option<IpAddr> = "10.0.0.1".parse().ok();
        for i in 0..ADDRESS_FAILURES {
            limiter.failed(&format!("user{i}"), here);
        }
        assert!(limiter.check("someone-else", here).is_err());
        assert!(limiter
            .check("someone-else", "10.0.0.2".parse().ok())
            .is_ok());
    }

    #[test]
    fn the_maps_stay_bounded() {
        let mut counter: Counter<u32> = Counter::new(1);
        let now = Instant::now();
        for key in 0..(MAX_KEYS as u32 + 100) {
            counter.fail(&key, now);
        }
        assert!(counter.windows.len() <= MAX_KEYS);
    }
}
