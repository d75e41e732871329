//! The delivery loop. A thread of its own runs a small asynchronous runtime: a supervisor
//! looks at the due subscriptions and runs up to [`Settings::concurrency`] of them at once,
//! each owned by one task at a time (so a slow receiver holds back only its own subscription).
//! A task reads a page of the ledger from the subscription's place as its party may read it
//! (the replication feed's rule) and posts what its filter takes over kept-alive connections,
//! with up to [`Settings::in_flight`] requests at once, each about another document: an entry
//! is posted only after its document's previous one was acknowledged, so every document's
//! order is kept. Then the attempts and the new place are recorded in one transaction.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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
    /// Subscriptions delivered to at the same time.
    pub concurrency: usize,
    /// Requests in flight at once to one subscription (each about another document).
    pub in_flight: usize,
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
            concurrency: 16,
            in_flight: 8,
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
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("lading-notify-io")
            .max_blocking_threads(settings.concurrency.max(1) + 2)
            .enable_all()
            .build()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("lading-notify".into())
            .spawn(move || {
                runtime.block_on(run(store, Arc::new(settings), stopping));
                // Tasks still waiting on a receiver are dropped with the runtime: what they
                // had not recorded is delivered again after the restart.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
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

/// A callback's client, kept between rounds so its connections stay open.
struct Callback {
    url: String,
    client: reqwest::Client,
    made: Instant,
}

/// The client is made again this often, so that a callback's host is looked up again.
const CLIENT_LIFETIME: Duration = Duration::from_secs(300);

/// Notices made from ledger entries, shared by every subscription: an entry is parsed and its
/// CloudEvent serialised once, however many subscriptions it goes to.
#[derive(Default)]
struct Notices {
    by_index: Mutex<BTreeMap<u64, Option<Arc<Made>>>>,
}

/// A notice with its body as sent.
struct Made {
    notice: Notice,
    body: Vec<u8>,
}

/// Entries kept in [`Notices`]: enough for every subscription within a few pages of the head.
const NOTICES_KEPT: usize = 20_000;

impl Notices {
    /// The notice of entry `index` when it is known: `Some(None)` for an entry that is no
    /// notice (a party statement).
    fn get(&self, index: u64) -> Option<Option<Arc<Made>>> {
        self.lock().get(&index).cloned()
    }

    fn make(&self, index: u64, leaf: &[u8], signed: &[u8]) -> Option<Arc<Made>> {
        let made = std::str::from_utf8(signed).ok().and_then(|signed| {
            let leaf = Digest::from_slice(leaf).ok()?;
            let notice = cloud_event(index, &leaf, signed)?;
            let body = serde_json::to_vec(&notice.event).ok()?;
            Some(Arc::new(Made { notice, body }))
        });
        let mut kept = self.lock();
        kept.insert(index, made.clone());
        while kept.len() > NOTICES_KEPT {
            kept.pop_first();
        }
        made
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Option<Arc<Made>>>> {
        self.by_index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What a subscription's task came back with.
struct Done {
    id: String,
    /// Whether anything was delivered or tried (else it waits for the next poll).
    worked: bool,
    client: Option<Callback>,
}

async fn run(store: Store, settings: Arc<Settings>, stop: Arc<AtomicBool>) {
    let notices = Arc::new(Notices::default());
    let mut running: HashSet<String> = HashSet::new();
    let mut idle_until: HashMap<String, Instant> = HashMap::new();
    let mut clients: HashMap<String, Callback> = HashMap::new();
    let mut last_started: HashMap<String, Instant> = HashMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut next_look = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() >= next_look {
            next_look = Instant::now() + settings.poll;
            let now = Instant::now();
            idle_until.retain(|_, until| *until > now);
            match due(&store).await {
                Ok(mut due) => {
                    // The least recently started first, so that none waits on the others
                    // when there are more due than may run at once.
                    due.sort_by_key(|s| last_started.get(&s.id).copied());
                    let known: HashSet<&str> = due.iter().map(|s| s.id.as_str()).collect();
                    clients.retain(|id, _| known.contains(id.as_str()));
                    last_started.retain(|id, _| known.contains(id.as_str()));
                    for subscription in due {
                        if running.len() >= settings.concurrency.max(1) {
                            break;
                        }
                        if running.contains(&subscription.id)
                            || idle_until.contains_key(&subscription.id)
                        {
                            continue;
                        }
                        running.insert(subscription.id.clone());
                        last_started.insert(subscription.id.clone(), Instant::now());
                        let client = clients.remove(&subscription.id);
                        tasks.spawn(deliver(
                            store.clone(),
                            settings.clone(),
                            notices.clone(),
                            subscription,
                            client,
                        ));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "notifications: the due subscriptions could not be read");
                }
            }
        }
        // Until a task ends (then look again at once), the next look, or a stop.
        let wait = next_look
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(50));
        match tokio::time::timeout(wait, tasks.join_next()).await {
            Ok(Some(Ok(done))) => {
                running.remove(&done.id);
                // A place is free: look again at once (an idle one waits for the next poll).
                next_look = Instant::now();
                if !done.worked {
                    idle_until.insert(done.id.clone(), Instant::now() + settings.poll);
                }
                if let Some(client) = done.client {
                    clients.insert(done.id, client);
                }
            }
            Ok(Some(Err(e))) => {
                tracing::warn!(error = %e, "notifications: a delivery task failed");
                // Its subscription is unknown here: start again from the database's view.
                running.clear();
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
            }
            Ok(None) => tokio::time::sleep(wait).await,
            Err(_) => {}
        }
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}

async fn due(store: &Store) -> Result<Vec<SubscriptionRow>, NotifyError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = store.conn()?;
        Ok(subscriptions::due(&mut conn, Utc::now())?)
    })
    .await
    .map_err(|e| NotifyError::Http(format!("a blocking task: {e}")))?
}

/// One round for `subscription`: a page of its ledger delivered, its place moved and its
/// attempts recorded. Never fails: what went wrong is logged and the subscription retried.
async fn deliver(
    store: Store,
    settings: Arc<Settings>,
    notices: Arc<Notices>,
    subscription: SubscriptionRow,
    client: Option<Callback>,
) -> Done {
    let id = subscription.id.clone();
    let mut client =
        client.filter(|c| c.url == subscription.url && c.made.elapsed() < CLIENT_LIFETIME);
    let worked = match round(&store, &settings, &notices, &subscription, &mut client).await {
        Ok(worked) => worked,
        Err(e) => {
            tracing::warn!(subscription = %id, error = %e, "notifications: a round of deliveries failed");
            false
        }
    };
    Done { id, worked, client }
}

/// One entry of a page: its index and, when the subscription is to be told of it, its notice.
type PageEntry = (u64, Option<Arc<Made>>);

/// The outcome of one post: of one event (`index`), or of a batch (`index` its first entry,
/// `last` its last, `events` how many it held).
struct Attempt {
    index: u64,
    last: u64,
    events: Option<usize>,
    sent: Result<u16, NotifyError>,
    millis: i32,
}

async fn round(
    store: &Store,
    settings: &Arc<Settings>,
    notices: &Arc<Notices>,
    subscription: &SubscriptionRow,
    client: &mut Option<Callback>,
) -> Result<bool, NotifyError> {
    let first = u64::try_from(subscription.next_index).unwrap_or(0);
    let batch_max = batch_max(subscription);
    // A batched subscription reads further, so that its batches are not cut short by the
    // page's end more than they need be.
    let limit = batch_max.map_or(settings.page, |max| {
        settings.page.max(2 * u64::try_from(max).unwrap_or(1))
    });
    let page = read_page(store, notices, subscription, first, limit).await?;
    if page.is_empty() {
        return Ok(false);
    }
    let to_send: Vec<(u64, Arc<Made>)> = page
        .iter()
        .filter_map(|(i, made)| made.clone().map(|m| (*i, m)))
        .collect();
    let attempts = if to_send.is_empty() {
        Vec::new()
    } else {
        let c = match client.take() {
            Some(c) => c,
            None => {
                let (made_with, url) = (settings.clone(), subscription.url.clone());
                match tokio::task::spawn_blocking(move || callback_client(&made_with, &url))
                    .await
                    .map_err(|e| NotifyError::Http(format!("a blocking task: {e}")))?
                {
                    Ok(made) => Callback {
                        url: subscription.url.clone(),
                        client: made,
                        made: Instant::now(),
                    },
                    // The callback cannot be reached at all: its first entry failed.
                    Err(e) => {
                        let index = to_send[0].0;
                        return settle(
                            store,
                            settings,
                            subscription,
                            first,
                            &page,
                            vec![Attempt {
                                index,
                                last: index,
                                events: None,
                                sent: Err(e),
                                millis: 0,
                            }],
                        )
                        .await;
                    }
                }
            }
        };
        let attempts = match batch_max {
            Some(max) => post_batches(&c.client, subscription, to_send, max).await,
            None => post_in_order(&c.client, settings, subscription, to_send).await,
        };
        *client = Some(c);
        attempts
    };
    settle(store, settings, subscription, first, &page, attempts).await
}

/// The page from `first` as the subscription's party may read it, with the notices its filter
/// takes.
async fn read_page(
    store: &Store,
    notices: &Arc<Notices>,
    subscription: &SubscriptionRow,
    first: u64,
    limit: u64,
) -> Result<Vec<PageEntry>, NotifyError> {
    let filter: Filter = serde_json::from_str(&subscription.filter)
        .map_err(|e| NotifyError::Entry(format!("the subscription's filter: {e}")))?;
    let (store, notices, party) = (
        store.clone(),
        notices.clone(),
        subscription.party_id.clone(),
    );
    tokio::task::spawn_blocking(move || {
        let mut conn = store.conn()?;
        // What the party may read, decided by the database (the feed's rule); the entries
        // themselves read once for every subscription.
        let entitled = lading_store::reads::entitlements(&mut conn, &party, first, limit)?;
        let mut page: Vec<(u64, Option<Option<Arc<Made>>>)> = entitled
            .iter()
            .map(|e| {
                let index = u64::try_from(e.idx).unwrap_or(0);
                (index, e.yes.then(|| notices.get(index)).flatten())
            })
            .collect();
        let missing: Vec<u64> = entitled
            .iter()
            .zip(&page)
            .filter(|(e, (_, known))| e.yes && known.is_none())
            .map(|(_, (index, _))| *index)
            .collect();
        if !missing.is_empty() {
            let read: HashMap<u64, Option<Arc<Made>>> =
                lading_store::reads::signed_entries(&mut conn, &missing)?
                    .into_iter()
                    .map(|(idx, leaf, signed)| {
                        let index = u64::try_from(idx).unwrap_or(0);
                        (index, notices.make(index, &leaf, &signed))
                    })
                    .collect();
            for (index, known) in &mut page {
                if known.is_none() {
                    if let Some(made) = read.get(index) {
                        *known = Some(made.clone());
                    }
                }
            }
        }
        drop(conn);
        Ok(page
            .into_iter()
            .map(|(index, known)| {
                let made = known.flatten().filter(|m| filter.takes(&m.notice.seen()));
                (index, made)
            })
            .collect())
    })
    .await
    .map_err(|e| NotifyError::Http(format!("a blocking task: {e}")))?
}

/// Posts `to_send` (in ledger order) with up to `in_flight` requests at once: each entry
/// only after the previous entry of its document was acknowledged, the earliest ready entry
/// first. One document held up by its receiver holds up no other. After a failure nothing more
/// is started (the place cannot move past the failed entry, so whatever came after it would be
/// sent again anyway): the requests in flight end, and the round with them. Every attempt made.
async fn post_in_order(
    client: &reqwest::Client,
    settings: &Settings,
    subscription: &SubscriptionRow,
    to_send: Vec<(u64, Arc<Made>)>,
) -> Vec<Attempt> {
    use futures::stream::{FuturesUnordered, StreamExt};
    use std::collections::VecDeque;

    // Each document's entries, in ledger order; the documents ready to send, by their next
    // entry's index.
    let mut queues: HashMap<String, VecDeque<(u64, Arc<Made>)>> = HashMap::new();
    for (index, made) in to_send {
        queues
            .entry(document_key(&made.notice))
            .or_default()
            .push_back((index, made));
    }
    let mut ready: BTreeMap<u64, String> = queues
        .iter()
        .filter_map(|(key, q)| q.front().map(|(i, _)| (*i, key.clone())))
        .collect();
    let mut flying = FuturesUnordered::new();
    let mut attempts = Vec::new();
    let mut failed = false;
    loop {
        while !failed && flying.len() < settings.in_flight.max(1) {
            let Some((_, key)) = ready.pop_first() else {
                break;
            };
            let Some((index, made)) = queues.get_mut(&key).and_then(VecDeque::pop_front) else {
                continue;
            };
            flying.push(async move {
                let started = Instant::now();
                // The same id on every attempt, so a receiver can drop a delivery it already
                // took.
                let id = format!("{}_{}", subscription.id, index);
                let sent = post(client, subscription, &id, STRUCTURED, made.body.clone()).await;
                let millis = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
                (
                    key,
                    Attempt {
                        index,
                        last: index,
                        events: None,
                        sent,
                        millis,
                    },
                )
            });
        }
        let Some((key, attempt)) = flying.next().await else {
            break;
        };
        if attempt.sent.is_ok() {
            if let Some((next, _)) = queues.get(&key).and_then(VecDeque::front) {
                ready.insert(*next, key);
            }
        } else {
            failed = true;
        }
        attempts.push(attempt);
    }
    attempts
}

/// A subscription's batch size, when it asked for batches.
fn batch_max(subscription: &SubscriptionRow) -> Option<usize> {
    subscription
        .batch_max
        .and_then(|m| usize::try_from(m).ok())
        .map(|m| m.max(1))
}

/// Cuts `to_send` (in ledger order) into batches of at most `max`. When the subscription's
/// last batch failed (`batch_end`), the first batch is that one again, up to the same entry,
/// so that its retry is the same request (the same `webhook-id`).
fn batches(
    to_send: Vec<(u64, Arc<Made>)>,
    max: usize,
    batch_end: Option<u64>,
) -> Vec<Vec<(u64, Arc<Made>)>> {
    let mut out = Vec::new();
    let mut current: Vec<(u64, Arc<Made>)> = Vec::new();
    let mut end = batch_end;
    for (index, made) in to_send {
        let past_end = end.is_some_and(|e| index > e);
        if !current.is_empty() && (current.len() >= max || past_end) {
            out.push(std::mem::take(&mut current));
        }
        if past_end {
            end = None;
        }
        current.push((index, made));
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Posts `to_send` as CloudEvents batches of at most `max` events, one at a time in ledger
/// order (so every document's order is kept), until one fails. Every attempt made.
async fn post_batches(
    client: &reqwest::Client,
    subscription: &SubscriptionRow,
    to_send: Vec<(u64, Arc<Made>)>,
    max: usize,
) -> Vec<Attempt> {
    let batch_end = subscription.batch_end.and_then(|e| u64::try_from(e).ok());
    let mut attempts = Vec::new();
    for batch in batches(to_send, max, batch_end) {
        let (Some((index, _)), Some((last, _))) = (batch.first(), batch.last()) else {
            continue;
        };
        let (index, last) = (*index, *last);
        // The array of the events as structured mode sends them, their bytes made once.
        let size = batch.iter().map(|(_, m)| m.body.len() + 1).sum::<usize>() + 1;
        let mut body = Vec::with_capacity(size);
        body.push(b'[');
        for (n, (_, made)) in batch.iter().enumerate() {
            if n > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&made.body);
        }
        body.push(b']');
        // Stable for the same batch: a receiver drops a batch it already took by this id.
        let id = format!("{}_{index}-{last}", subscription.id);
        let started = Instant::now();
        let sent = post(client, subscription, &id, BATCHED, body).await;
        let millis = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        let failed = sent.is_err();
        attempts.push(Attempt {
            index,
            last,
            events: Some(batch.len()),
            sent,
            millis,
        });
        if failed {
            break;
        }
    }
    attempts
}

/// What keeps one order: a notice's document (or, for an event tied to a container alone,
/// its subject).
fn document_key(notice: &Notice) -> String {
    match &notice.document {
        Some(document) => format!("d:{document}"),
        None => format!("s:{}", notice.event["subject"].as_str().unwrap_or_default()),
    }
}

/// Records the round: every attempt, the place moved past everything acknowledged or passed
/// over up to the first entry that was not acknowledged, and the failure if there was one.
async fn settle(
    store: &Store,
    settings: &Arc<Settings>,
    subscription: &SubscriptionRow,
    first: u64,
    page: &[PageEntry],
    mut attempts: Vec<Attempt>,
) -> Result<bool, NotifyError> {
    attempts.sort_by_key(|a| a.index);
    // What was acknowledged: each attempt's entries from its first to its last (one entry,
    // or a batch's, which hold every entry to tell between them). The ranges do not overlap.
    let acknowledged: Vec<(u64, u64)> = attempts
        .iter()
        .filter(|a| a.sent.is_ok())
        .map(|a| (a.index, a.last))
        .collect();
    let is_acknowledged = |i: u64| {
        let after = acknowledged.partition_point(|(from, _)| *from <= i);
        after > 0 && acknowledged[after - 1].1 >= i
    };
    // The first entry to tell that was not acknowledged (failed, or behind a failure of its
    // document): the place stops there; past the page's end when there is none.
    let stuck = page
        .iter()
        .find(|(i, made)| made.is_some() && !is_acknowledged(*i))
        .map(|(i, _)| *i);
    let next = stuck.unwrap_or_else(|| page.last().map_or(first, |(i, _)| i + 1));
    // A failed batch is retried as it was: up to the same last entry.
    let failure = attempts.iter().find_map(|a| {
        a.sent
            .as_ref()
            .err()
            .map(|e| (a.index, e.to_string(), a.events.map(|_| a.last)))
    });
    let log: Vec<NewDelivery> = attempts
        .iter()
        .map(|a| {
            let (status_code, error) = match &a.sent {
                Ok(status) => (Some(i32::from(*status)), None),
                Err(NotifyError::Status(status)) => (Some(i32::from(*status)), None),
                Err(e) => (None, Some(e.to_string())),
            };
            NewDelivery {
                subscription_id: subscription.id.clone(),
                entry_index: lading_store::to_i64(a.index),
                // The entry that failed last time is tried once more than it failed.
                attempt: if a.index == first {
                    subscription.failures.saturating_add(1)
                } else {
                    1
                },
                status_code,
                error,
                millis: a.millis,
                last_index: a.events.map(|_| lading_store::to_i64(a.last)),
                events: a.events.map(|n| i32::try_from(n).unwrap_or(i32::MAX)),
            }
        })
        .collect();
    let wait = backoff(settings, subscription.failures);
    tracing::debug!(
        subscription = %subscription.id,
        first,
        next,
        attempts = ?attempts.iter().map(|a| (a.index, a.sent.is_ok())).collect::<Vec<_>>(),
        "notifications: a round"
    );
    if let Some((index, error, _)) = &failure {
        tracing::info!(subscription = %subscription.id, index, %error, ?wait, "notification not delivered; retrying later");
    }
    let retry_at =
        Utc::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
    let failing_after =
        chrono::Duration::from_std(settings.failing_after).unwrap_or(chrono::Duration::hours(24));
    let (store, id) = (store.clone(), subscription.id.clone());
    tokio::task::spawn_blocking(move || {
        let mut conn = store.conn()?;
        subscriptions::settle(
            &mut conn,
            &id,
            &log,
            first,
            next,
            failure
                .as_ref()
                .map(|(_, error, batch_end)| subscriptions::Failure {
                    retry_at,
                    error,
                    failing_after,
                    batch_end: *batch_end,
                }),
        )?;
        Ok::<_, NotifyError>(())
    })
    .await
    .map_err(|e| NotifyError::Http(format!("a blocking task: {e}")))??;
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
/// between the check and the connection), no redirects, the configured roots, and up to
/// `in_flight` connections kept alive.
fn callback_client(settings: &Settings, raw: &str) -> Result<reqwest::Client, NotifyError> {
    let (url, addrs) = check_target(raw, settings.allow_private_targets)?;
    let host = url.host_str().unwrap_or_default().to_owned();
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.timeout)
        .pool_max_idle_per_host(settings.in_flight.max(1))
        .pool_idle_timeout(Duration::from_secs(60))
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

/// The content type of one event (CloudEvents structured JSON mode).
const STRUCTURED: &str = "application/cloudevents+json; charset=utf-8";
/// The content type of a batch (CloudEvents batched JSON mode).
const BATCHED: &str = "application/cloudevents-batch+json; charset=utf-8";

/// Posts a body (one notice's, or a batch's) as `id`, signed over the whole body; the status
/// when it is a success (2xx).
async fn post(
    client: &reqwest::Client,
    subscription: &SubscriptionRow,
    id: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Result<u16, NotifyError> {
    let timestamp = Utc::now().timestamp();
    let signature = sign(&subscription.secret, id, timestamp, &body).ok_or_else(|| {
        NotifyError::Entry("the subscription's secret is not a whsec_ secret".into())
    })?;
    let answer = client
        .post(&subscription.url)
        .header("content-type", content_type)
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(|e| NotifyError::Http(e.to_string()))?;
    let status = answer.status().as_u16();
    // Read the answer to its end, so that the connection can be used again.
    let _ = answer.bytes().await;
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        Err(NotifyError::Status(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn made(index: u64) -> (u64, Arc<Made>) {
        let notice = Notice {
            index,
            document: Some("BL1".into()),
            what: "TRANSFER".into(),
            is_transition: true,
            event: serde_json::json!({ "id": format!("lading-entry-{index}") }),
        };
        (
            index,
            Arc::new(Made {
                body: serde_json::to_vec(&notice.event).unwrap_or_default(),
                notice,
            }),
        )
    }

    fn cut(indexes: &[u64], max: usize, end: Option<u64>) -> Vec<Vec<u64>> {
        batches(indexes.iter().map(|i| made(*i)).collect(), max, end)
            .into_iter()
            .map(|b| b.into_iter().map(|(i, _)| i).collect())
            .collect()
    }

    #[test]
    fn batches_hold_at_most_max_in_order_and_a_failed_one_is_cut_again_as_it_was() {
        let page = [3, 4, 7, 8, 9, 12, 15];
        assert_eq!(
            cut(&page, 3, None),
            [vec![3, 4, 7], vec![8, 9, 12], vec![15]]
        );
        assert_eq!(cut(&page, 10, None), [page.to_vec()]);
        // The batch that failed ended at 7 (the page then ended there): the retry stops there
        // too, and the rest is cut from after it.
        assert_eq!(cut(&page, 10, Some(7)), [vec![3, 4, 7], vec![8, 9, 12, 15]]);
        assert_eq!(
            cut(&page, 2, Some(4)),
            [vec![3, 4], vec![7, 8], vec![9, 12], vec![15]]
        );
        assert!(cut(&[], 3, Some(4)).is_empty());
    }
}
