//! What the HTTP faces write to the log about requests.
//!
//! A registry is read far more than it is written: every replica polls its feed and its
//! checkpoint twice a second, portals and forwarders list and read documents. A line per read
//! at INFO buried the lines an operator looks for. So:
//!
//! | answer | level |
//! |---|---|
//! | a read (`GET`, `HEAD`) answered 1xx–3xx | DEBUG |
//! | a write (any other method) answered 1xx–3xx | INFO |
//! | a client error (4xx) | INFO, at most [`ClientErrors::PER_SECOND`] lines a second |
//! | unavailable for now (503: busy, standing by, no database primary) | INFO, under the same limit |
//! | any other server error (5xx) | WARN (its cause is logged at ERROR where it arose) |
//!
//! Client errors are limited because a client chooses how many it makes: a burst of bad
//! requests, or of failed sign-ins, must not be able to fill the disk or hide everything else.
//! What the limit holds back is counted, and the next line that is written says how many
//! (`suppressed`), so the log still tells that a burst happened and how large it was.
//!
//! A `503` is limited too: it answers every retry of every client while a registry stands by
//! or its database fails over, and the cause is logged once where it arose (the lease lost,
//! the database unreachable), not once a request.

use std::sync::Mutex;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;

/// An access-log middleware writing to `$target`.
macro_rules! access_log {
    ($(#[$doc:meta])* $name:ident, $target:literal, $face:literal) => {
        $(#[$doc])*
        pub async fn $name(
            req: ServiceRequest,
            next: Next<impl MessageBody>,
        ) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
            let seen = Seen::of(&req);
            let res = next.call(req).await?;
            let status = res.status().as_u16();
            lading_metrics::global().http_request($face, status);
            let (request, ms) = (&seen.request, seen.millis());
            match seen.kind(status) {
                Kind::Read => tracing::debug!(target: $target, %request, status, ms, "answered"),
                Kind::Write => tracing::info!(target: $target, %request, status, ms, "answered"),
                Kind::ClientError => {
                    if let Some(suppressed) = CLIENT_ERRORS.admit() {
                        tracing::info!(target: $target, %request, status, ms, suppressed, "client error");
                    }
                }
                Kind::Unavailable => {
                    if let Some(suppressed) = CLIENT_ERRORS.admit() {
                        tracing::info!(target: $target, %request, status, ms, suppressed, "unavailable");
                    }
                }
                Kind::ServerError => {
                    tracing::warn!(target: $target, %request, status, ms, "server error")
                }
            }
            Ok(res)
        }
    };
}

access_log!(
    /// The access log of the registry's API (target `lading::http`), as middleware:
    /// `.wrap(actix_web::middleware::from_fn(lading_weblog::api))`.
    api,
    "lading::http",
    "api"
);

access_log!(
    /// The access log of a node's portal (target `lading::portal`), as [`api`].
    portal,
    "lading::portal",
    "portal"
);

/// What is logged of a request, taken before it is handled: its method and path (never its
/// query: search words and cursors are the caller's business), and when it came.
struct Seen {
    request: String,
    read: bool,
    at: Instant,
}

impl Seen {
    fn of(req: &ServiceRequest) -> Self {
        Self {
            request: format!("{} {}", req.method(), req.path()),
            read: matches!(*req.method(), Method::GET | Method::HEAD),
            at: Instant::now(),
        }
    }

    fn kind(&self, status: u16) -> Kind {
        match status {
            503 => Kind::Unavailable,
            500.. => Kind::ServerError,
            400..=499 => Kind::ClientError,
            _ if self.read => Kind::Read,
            _ => Kind::Write,
        }
    }

    /// Milliseconds since the request came, to the microsecond.
    fn millis(&self) -> f64 {
        (self.at.elapsed().as_secs_f64() * 1e6).round() / 1e3
    }
}

/// How an answer is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
    ClientError,
    Unavailable,
    ServerError,
}

/// The process's limit on client-error lines, shared by every face and by other lines a client
/// can make at will (a failed sign-in: [`client_error_admitted`]).
static CLIENT_ERRORS: ClientErrors = ClientErrors::new();

/// Whether a line about a client's mistake may be written now, under the same limit as the
/// access log's client errors: `Some(n)` with the number of such lines held back since the
/// last one written, `None` when this one is to be held back too.
pub fn client_error_admitted() -> Option<u64> {
    CLIENT_ERRORS.admit()
}

/// At most [`ClientErrors::PER_SECOND`] lines in each second; the rest counted.
#[derive(Debug)]
pub struct ClientErrors {
    window: Mutex<Window>,
}

/// The second being counted: when it began (none before the first line), the lines written
/// in it, and the lines held back since the last one written.
#[derive(Debug)]
struct Window {
    start: Option<Instant>,
    written: u32,
    held_back: u64,
}

impl ClientErrors {
    /// Lines written at most in one second.
    pub const PER_SECOND: u32 = 20;

    pub const fn new() -> Self {
        Self {
            window: Mutex::new(Window {
                start: None,
                written: 0,
                held_back: 0,
            }),
        }
    }

    /// `Some(held back so far)` when a line may be written now (and the count starts again),
    /// `None` when it is held back (and counted).
    pub fn admit(&self) -> Option<u64> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Option<u64> {
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if w.start
            .is_none_or(|start| now.saturating_duration_since(start).as_secs() >= 1)
        {
            w.start = Some(now);
            w.written = 0;
        }
        if w.written >= Self::PER_SECOND {
            w.held_back += 1;
            return None;
        }
        w.written += 1;
        Some(std::mem::take(&mut w.held_back))
    }
}

impl Default for ClientErrors {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_is_cut_to_the_limit_and_the_next_line_counts_what_was_held_back() {
        let limit = ClientErrors::new();
        let start = Instant::now();
        let admitted: Vec<Option<u64>> = (0..100).map(|_| limit.admit_at(start)).collect();
        assert_eq!(
            admitted.iter().filter(|a| a.is_some()).count(),
            ClientErrors::PER_SECOND as usize
        );
        assert!(admitted[..ClientErrors::PER_SECOND as usize]
            .iter()
            .all(|a| *a == Some(0)));
        // A second later the window opens again, and its first line tells of the 80.
        let later = start + Duration::from_millis(1_001);
        assert_eq!(limit.admit_at(later), Some(80));
        assert_eq!(limit.admit_at(later), Some(0));
    }

    #[test]
    fn a_read_is_debug_a_write_info_and_errors_by_their_class() {
        let seen = |read| Seen {
            request: String::new(),
            read,
            at: Instant::now(),
        };
        assert_eq!(seen(true).kind(200), Kind::Read);
        assert_eq!(seen(true).kind(304), Kind::Read);
        assert_eq!(seen(false).kind(201), Kind::Write);
        assert_eq!(seen(true).kind(404), Kind::ClientError);
        assert_eq!(seen(false).kind(429), Kind::ClientError);
        assert_eq!(seen(true).kind(500), Kind::ServerError);
        assert_eq!(seen(false).kind(502), Kind::ServerError);
        assert_eq!(seen(false).kind(503), Kind::Unavailable);
        assert_eq!(seen(true).kind(503), Kind::Unavailable);
    }
}
