//! The delivery loop: a thread of its own that takes every subscription in turn, reads the
//! ledger from its place as its party may read it (the replication feed's rule), and posts
//! what its filter takes, one entry at a time, in order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use lading_domain::Digest;
use lading_store::subscriptions::{self, NewDelivery, SubscriptionRow};
use lading_store::Store;
use rand::Rng;

use crate::event::{cloud_event, Notice};
use crate::filter::Filter;
use crate::signature::sign;
use crate::target::check_target;
use crate::NotifyError;

/// How deliveries are made (`[notifications]`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// How often subscriptions with nothing to deliver look again.
    pub poll: Duration,
    /// Let callbacks reach loopback and private addresses (tests; a receiver on the host).
    pub allow_private_targets: bool,
    /// Roots (PEM) trusted for callbacks besides the public ones.
    pub extra_roots: Option<Vec<u8>>,
    /// Failing this long marks a subscription `failing` (it is still retried).
    pub failing_after: Duration,
    /// The first retry's wait; each failure doubles it, up to `max_retry`.
    pub first_retry: Duration,
    pub max_retry: Duration,
    /// How long a receiver has to answer.
    pub timeout: Duration,
    /// Entries read from the ledger at once, per subscription.
    pub page: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(500),
            allow_private_targets: false,
            extra_roots: None,
            failing_after: Duration::from_secs(24 * 3600),
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(3600),
            timeout: Duration::from_secs(10),
            page: 500,
        }
    }
}

/// The running delivery loop; stopped (and joined) by [`Deliverer::stop`] or when dropped.
#[derive(Debug)]
pub struct Deliverer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Deliverer {
    pub fn start(store: Store, settings: Settings) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("lading-notify".into())
            .spawn(move || run(&store, &settings, &stopping))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Deliverer {
    fn drop(&mut self) {
        self.halt();
    }
}

fn run(store: &Store, settings: &Settings, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let worked = match round(store, settings, stop) {
            Ok(worked) => worked,
            Err(e) => {
                tracing::warn!(error = %e, "notifications: a round of deliveries failed");
                false
            }
        };
        if !worked {
            let until = Instant::now() + settings.poll;
            while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// One look at every subscription that is due; whether anything was delivered or tried.
fn round(store: &Store, settings: &Settings, stop: &AtomicBool) -> Result<bool, NotifyError> {
    let due = {
        let mut conn = store.conn()?;
        subscriptions::due(&mut conn, Utc::now())?
    };
    let mut worked = false;
    for subscription in due {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        worked |= deliver(store, settings, &subscription)?;
    }
    Ok(worked)
}

/// Delivers what is new for `subscription`, in order, until its page ends or a delivery fails.
fn deliver(
    store: &Store,
    settings: &Settings,
    subscription: &SubscriptionRow,
) -> Result<bool, NotifyError> {
    let mut conn = store.conn()?;
    let first = u64::try_from(subscription.next_index).unwrap_or(0);
    let mut from = first;
    let page = lading_store::reads::feed_for_party(
        &mut conn,
        &subscription.party_id,
        first,
        settings.page,
    )?;
    let Some(last) = page.last().map(|e| e.idx) else {
        return Ok(false);
    };
    let filter: Filter = serde_json::from_str(&subscription.filter)
        .map_err(|e| NotifyError::Entry(format!("the subscription's filter: {e}")))?;
    let mut client = None;
    let mut next = first;
    for entry in &page {
        let index = u64::try_from(entry.idx).unwrap_or(0);
        let notice = entry.signed.as_deref().and_then(|signed| {
            let signed = std::str::from_utf8(signed).ok()?;
            let leaf = Digest::from_slice(&entry.leaf_hash).ok()?;
            cloud_event(index, &leaf, signed)
        });
        if let Some(notice) = notice.filter(|n| filter.takes(&n.seen())) {
            let attempt = if index == first {
                subscription.failures.saturating_add(1)
            } else {
                1
            };
            let started = Instant::now();
            let sent = match &client {
                Some(c) => post(c, subscription, &notice),
                None => match callback_client(settings, &subscription.url) {
                    Ok(c) => {
                        let sent = post(&c, subscription, &notice);
                        client = Some(c);
                        sent
                    }
                    Err(e) => Err(e),
                },
            };
            let millis = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
            let (status_code, error) = match &sent {
                Ok(status) => (Some(i32::from(*status)), None),
                Err(NotifyError::Status(status)) => (Some(i32::from(*status)), None),
                Err(e) => (None, Some(e.to_string())),
            };
            subscriptions::log_delivery(
                &mut conn,
                &NewDelivery {
                    subscription_id: subscription.id.clone(),
                    entry_index: entry.idx,
                    attempt,
                    status_code,
                    error,
                    millis,
                },
            )?;
            if let Err(e) = sent {
                // What was passed over before it is done with; this one is tried again later.
                if next > from && !subscriptions::advance(&mut conn, &subscription.id, from, next)?
                {
                    return Ok(true);
                }
                let wait = backoff(settings, subscription.failures);
                let retry_at = Utc::now()
                    + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
                subscriptions::failed(
                    &mut conn,
                    &subscription.id,
                    retry_at,
                    &e.to_string(),
                    chrono::Duration::from_std(settings.failing_after)
                        .unwrap_or(chrono::Duration::hours(24)),
                )?;
                tracing::info!(subscription = %subscription.id, index, error = %e, ?wait, "notification not delivered; retrying later");
                return Ok(true);
            }
            // Acknowledged: move past it before anything else can fail.
            if !subscriptions::advance(&mut conn, &subscription.id, from, index + 1)? {
                // Moved meanwhile (a redelivery was asked): start again from its new place.
                return Ok(true);
            }
            from = index + 1;
        }
        next = index + 1;
    }
    let end = u64::try_from(last).unwrap_or(0) + 1;
    if end > from {
        subscriptions::advance(&mut conn, &subscription.id, from, end)?;
    }
    Ok(true)
}

/// The wait before the next try after `failures` failures: doubling from the first, capped,
/// and spread by a random half so that many subscriptions do not retry in step.
fn backoff(settings: &Settings, failures: i32) -> Duration {
    let doubled = settings
        .first_retry
        .saturating_mul(1u32 << failures.clamp(0, 20))
        .min(settings.max_retry);
    doubled.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
}

/// A client for one callback: its host pinned to the addresses checked (no second lookup
/// between the check and the connection), no redirects, the configured roots.
fn callback_client(
    settings: &Settings,
    raw: &str,
) -> Result<reqwest::blocking::Client, NotifyError> {
    let (url, addrs) = check_target(raw, settings.allow_private_targets)?;
    let host = url.host_str().unwrap_or_default().to_owned();
    let mut builder = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.timeout)
        .resolve_to_addrs(&host, &addrs);
    if let Some(pem) = &settings.extra_roots {
        for cert in reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| NotifyError::Http(format!("the configured roots: {e}")))?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| NotifyError::Http(e.to_string()))
}

/// Posts one notice; the status when it is a success (2xx).
fn post(
    client: &reqwest::blocking::Client,
    subscription: &SubscriptionRow,
    notice: &Notice,
) -> Result<u16, NotifyError> {
    let body = serde_json::to_vec(&notice.event).map_err(|e| NotifyError::Entry(e.to_string()))?;
    // The same id on every attempt, so a receiver can drop a delivery it already took.
    let id = format!("{}_{}", subscription.id, notice.index);
    let timestamp = Utc::now().timestamp();
    let signature = sign(&subscription.secret, &id, timestamp, &body).ok_or_else(|| {
        NotifyError::Entry("the subscription's secret is not a whsec_ secret".into())
    })?;
    let answer = client
        .post(&subscription.url)
        .header(
            "content-type",
            "application/cloudevents+json; charset=utf-8",
        )
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .map_err(|e| NotifyError::Http(e.to_string()))?;
    let status = answer.status().as_u16();
    if answer.status().is_success() {
        Ok(status)
    } else {
        Err(NotifyError::Status(status))
    }
}
