//! API credentials: what a bearer secret may do (its scopes), how secrets and ids are made,
//! and the bookkeeping every request with one does (its last use, its rate).
//!
//! A secret is 256 bits from the operating system's generator, so storing its SHA-256 is
//! enough: a slow password hash (argon2, bcrypt) defends low-entropy secrets against guessing,
//! and there is nothing here to guess — while a fast hash lets every request be checked with
//! one indexed look-up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use rand_core::{OsRng, RngCore};

/// What a credential may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The read routes: documents, their transitions and events, checkpoints, proofs, exports.
    Read,
    /// Submissions: transitions, events, party statements.
    Submit,
    /// Notifications: `/v1/subscriptions` and `/v1/notifications` (long-poll, stream).
    Subscribe,
    /// The party's credentials themselves (`/v1/tokens`).
    Admin,
}

impl Scope {
    /// Every scope: what an imported token (`import-parties --tokens`) has.
    pub const ALL: &'static [Scope] = &[Scope::Read, Scope::Submit, Scope::Subscribe, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Submit => "submit",
            Scope::Subscribe => "subscribe",
            Scope::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = CredentialError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .iter()
            .copied()
            .find(|scope| scope.as_str() == s.trim())
            .ok_or_else(|| CredentialError::UnknownScope(s.to_owned()))
    }
}

/// Why a scope list or an expiry does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialError {
    #[error("unknown scope {0:?} (the scopes are read, submit, subscribe, admin)")]
    UnknownScope(String),
    #[error("a credential needs at least one scope")]
    NoScope,
    #[error("expiry {0:?} is not a duration like 90d, 12h, 30m or 45s")]
    BadDuration(String),
}

/// `read,submit` → the scopes, each once, in [`Scope::ALL`]'s order.
pub fn parse_scopes<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Scope>, CredentialError> {
    let mut wanted = Vec::new();
    for name in names {
        for part in name.split(',').filter(|p| !p.trim().is_empty()) {
            wanted.push(part.parse::<Scope>()?);
        }
    }
    let scopes: Vec<Scope> = Scope::ALL
        .iter()
        .copied()
        .filter(|s| wanted.contains(s))
        .collect();
    if scopes.is_empty() {
        return Err(CredentialError::NoScope);
    }
    Ok(scopes)
}

/// `90d`, `12h`, `30m`, `45s` → the duration.
pub fn parse_duration(text: &str) -> Result<chrono::Duration, CredentialError> {
    let bad = || CredentialError::BadDuration(text.to_owned());
    let text = text.trim();
    let unit = text.chars().last().ok_or_else(bad)?;
    let count: i64 = text[..text.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| bad())?;
    if count <= 0 {
        return Err(bad());
    }
    let duration = match unit {
        'd' => chrono::Duration::try_days(count),
        'h' => chrono::Duration::try_hours(count),
        'm' => chrono::Duration::try_minutes(count),
        's' => chrono::Duration::try_seconds(count),
        _ => None,
    };
    duration.ok_or_else(bad)
}

/// A new secret: `lading_` and 256 random bits, base64url.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!(
        "lading_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// A new credential id: `tok_` and 64 random bits, hex. Random, so that an id says nothing
/// about how many credentials exist.
pub fn new_id() -> String {
    let mut bytes = [0u8; 8];
    OsRng.fill_bytes(&mut bytes);
    format!("tok_{}", hex::encode(bytes))
}

/// How often a credential's `last_used_at` is written at most: a request does not cost a
/// write, only the first in each such span does.
pub const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// Rate limits, as configured (`[registry]`): at most `per_credential` requests per `period`
/// from one bearer credential and `per_address` from one client address; 0 is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub per_credential: u32,
    pub per_address: u32,
    pub period: Duration,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            per_credential: 0,
            per_address: 0,
            period: Duration::from_secs(60),
        }
    }
}

/// What the HTTP face keeps about credentials between requests.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// Whether a write needs a credential (bearer token with `submit`, or a client certificate
    /// from the consortium's CA): `registry.require_write_credential`.
    pub require_write_credential: bool,
    pub limits: RateLimits,
    touched: Arc<Mutex<HashMap<String, Instant>>>,
    buckets: Arc<Mutex<HashMap<BucketKey, Bucket>>>,
}

/// Whose requests a bucket counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BucketKey {
    /// A bearer secret, by the first 16 bytes of its SHA-256.
    Credential([u8; 16]),
    Address(std::net::IpAddr),
}

/// A token bucket: `limit` requests at once, refilled at `limit` per period.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets kept before the full ones are forgotten (a full bucket is the same as none).
const MAX_BUCKETS: usize = 100_000;

impl Credentials {
    pub fn new(require_write_credential: bool, limits: RateLimits) -> Self {
        Self {
            require_write_credential,
            limits,
            ..Self::default()
        }
    }

    /// Whether credential `id` should have its last use written now: true at most once per
    /// [`TOUCH_EVERY`] per credential in this process.
    pub fn should_touch(&self, id: &str, now: Instant) -> bool {
        let mut touched = self.touched.lock().unwrap_or_else(|e| e.into_inner());
        match touched.get(id) {
            Some(at) if now.saturating_duration_since(*at) < TOUCH_EVERY => false,
            _ => {
                if touched.len() >= MAX_BUCKETS {
                    touched.retain(|_, at| now.saturating_duration_since(*at) < TOUCH_EVERY);
                }
                touched.insert(id.to_owned(), now);
                true
            }
        }
    }

    /// Takes one request from `key`'s bucket: `Err(wait)` when it is empty, with how long until
    /// it holds one again.
    pub fn take(&self, key: BucketKey, now: Instant) -> Result<(), Duration> {
        let limit = match key {
            BucketKey::Credential(_) => self.limits.per_credential,
            BucketKey::Address(_) => self.limits.per_address,
        };
        if limit == 0 {
            return Ok(());
        }
        let limit = f64::from(limit);
        let per_second = limit / self.limits.period.as_secs_f64().max(f64::MIN_POSITIVE);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_second < limit
            });
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: limit,
            at: now,
        });
        let refilled =
            bucket.tokens + now.saturating_duration_since(bucket.at).as_secs_f64() * per_second;
        bucket.tokens = refilled.min(limit);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_in_order_and_refuse_unknown_ones() {
        assert_eq!(
            parse_scopes(["submit,read", "read"]).unwrap(),
            vec![Scope::Read, Scope::Submit]
        );
        assert_eq!(
            parse_scopes(["write"]),
            Err(CredentialError::UnknownScope("write".into()))
        );
        assert_eq!(parse_scopes([""]), Err(CredentialError::NoScope));
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90d").unwrap(), chrono::Duration::days(90));
        assert_eq!(parse_duration("12h").unwrap(), chrono::Duration::hours(12));
        assert!(parse_duration("0d").is_err());
        assert!(parse_duration("90").is_err());
        assert!(parse_duration("d").is_err());
    }

    #[test]
    fn secrets_and_ids_differ_each_time() {
        assert_ne!(new_secret(), new_secret());
        assert_ne!(new_id(), new_id());
        assert_eq!(new_secret().len(), "lading_".len() + 43);
    }

    #[test]
    fn a_credential_is_touched_once_a_minute() {
        let credentials = Credentials::default();
        let start = Instant::now();
        assert!(credentials.should_touch("a", start));
        assert!(!credentials.should_touch("a", start + Duration::from_secs(59)));
        assert!(credentials.should_touch("b", start));
        assert!(credentials.should_touch("a", start + TOUCH_EVERY));
    }

    #[test]
    fn buckets_refill_at_the_configured_rate() {
        let credentials = Credentials::new(
            false,
            RateLimits {
                per_credential: 2,
                per_address: 0,
                period: Duration::from_secs(60),
            },
        );
        let key = BucketKey::Credential([1; 16]);
        let start = Instant::now();
        assert!(credentials.take(key.clone(), start).is_ok());
        assert!(credentials.take(key.clone(), start).is_ok());
        let wait = credentials.take(key.clone(), start).unwrap_err();
        assert_eq!(wait, Duration::from_secs(30));
        assert!(credentials
            .take(key.clone(), start + Duration::from_secs(30))
            .is_ok());
        // Another key has its own bucket; addresses are not limited here.
        assert!(credentials
            .take(BucketKey::Credential([2; 16]), start)
            .is_ok());
        let address = BucketKey::Address(std::net::Ipv4Addr::LOCALHOST.into());
        for _ in 0..10 {
            assert!(credentials.take(address.clone(), start).is_ok());
        }
    }
}
