//! A party's replica of the ledger: it follows the registry's replication feed over mutual
//! TLS and lets nothing in that [`lading_domain::follow::Follower`] has not checked.
//!
//! - [`FeedClient`]: the HTTPS client. It presents the party's certificate from the consortium
//!   CA and trusts only a registry whose certificate chains to that CA *and names the registry*
//!   (`urn:lading:registry`, `lading_pki::ServerIdentity`): a party's certificate issued for the
//!   registry's host name is refused in the handshake, before a submission is sent to it.
//! - [`catch_up`]: pages through the feed from the follower's size to the registry's, judging
//!   every entry, back-fills the chains of documents the party joined late, then checks the
//!   registry's latest signed checkpoint against the leaves held.
//! - [`party_keys`]: the party registry (`parties.json`, as the consortium publishes it) as the
//!   keys the follower checks signatures with.
//!
//! - [`Keeper`]: where the checked entries, checkpoints and incidents go (the `lading replica`
//!   process keeps them in its PostgreSQL database); [`restore`] rebuilds a follower from them.
//!
//! - [`node::Node`]: the running replica — follows, forwards its party's submissions, serves
//!   its party's reads, and answers the registry's reconciliation ([`answer`]; the registry's
//!   side, which drives it, is `lading_registry::reconcile`).

pub mod answer;
pub mod node;
pub mod projection;

use std::sync::Arc;
use std::sync::{Mutex, PoisonError};

use lading_domain::follow::{CheckpointStatus, FeedEntry, Follower, Incident, Judged};
use lading_domain::ids::{DocumentReference, PartyId};
use lading_domain::membership::Membership;
use lading_domain::Digest;
use rayon::prelude::*;
use serde::Deserialize;

/// What can stop a catch-up.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error("TLS material: {0}")]
    Pki(#[from] lading_pki::PkiError),
    #[error("talking to the registry: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the registry answered {status} to {what}: {body}")]
    Refused {
        what: String,
        status: u16,
        body: String,
    },
    #[error("the registry sent something this replica does not accept: {0}")]
    Incident(#[from] Incident),
    #[error("the party registry: {0}")]
    Parties(String),
    /// What was checked could not be kept (the replica's database).
    #[error("keeping what was checked: {0}")]
    Keep(String),
}

/// The HTTPS client over a consortium TLS configuration.
fn http_client(tls: Arc<rustls::ClientConfig>) -> Result<reqwest::Client, ReplicaError> {
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(Arc::unwrap_or_clone(tls))
        .timeout(std::time::Duration::from_secs(60))
        // Small requests, one after another: none may wait for a delayed ACK.
        .tcp_nodelay(true)
        // The server's certificate, to name a peer by the party it is.
        .tls_info(true)
        .build()?)
}

/// A subscription of the party's, as `GET /v1/subscriptions` shows it (what the node needs of
/// it; the registry's answer has more).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrySubscription {
    pub id: String,
    pub url: String,
    /// `active`, or `failing`.
    pub status: String,
    #[serde(default)]
    pub failures: i64,
    #[serde(default)]
    pub failing_since: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    pub last_error: Option<String>,
    /// The first ledger index not yet delivered: where a redelivery would start.
    #[serde(default)]
    pub next_index: u64,
}

/// One page of `GET /v1/replication/entries` (`schemas/feed-page.json`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FeedPage {
    pub party: PartyId,
    pub size: u64,
    pub entries: Vec<FeedItem>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FeedItem {
    pub index: u64,
    pub leaf_hash: Digest,
    #[serde(default)]
    pub signed: Option<String>,
}

impl From<FeedItem> for FeedEntry {
    fn from(item: FeedItem) -> Self {
        Self {
            index: item.index,
            leaf_hash: item.leaf_hash,
            signed: item.signed,
        }
    }
}

/// The registry's feed, read as one party (or another replica's checkpoints, as a peer).
#[derive(Debug, Clone)]
pub struct FeedClient {
    base: String,
    http: reqwest::Client,
    /// Whom the server's certificate named when it last answered.
    server: Arc<Mutex<Option<lading_pki::Subject>>>,
}

impl FeedClient {
    /// The registry at `base` (`https://host:port`); `ca_pem` the consortium CA, which must
    /// have issued both the registry's server certificate and `cert_pem`/`key_pem`. The
    /// server's certificate must name the registry (`urn:lading:registry`): a party's
    /// certificate is refused in the handshake whatever server names it carries, so no member
    /// can pose as the registry to collect the party's signed submissions.
    pub fn new(
        base: &str,
        ca_pem: &[u8],
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<Self, ReplicaError> {
        Self::to(
            base,
            ca_pem,
            cert_pem,
            key_pem,
            lading_pki::ServerIdentity::Registry,
        )
    }

    /// Another party's replica at `base`, to compare checkpoints with: its certificate must
    /// name a party of the consortium (the one it names is [`Self::server`]).
    pub fn peer(
        base: &str,
        ca_pem: &[u8],
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<Self, ReplicaError> {
        Self::to(
            base,
            ca_pem,
            cert_pem,
            key_pem,
            lading_pki::ServerIdentity::AnyParty,
        )
    }

    fn to(
        base: &str,
        ca_pem: &[u8],
        cert_pem: &[u8],
        key_pem: &[u8],
        server: lading_pki::ServerIdentity,
    ) -> Result<Self, ReplicaError> {
        let tls = lading_pki::client_config_for(ca_pem, cert_pem, key_pem, server)?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            http: http_client(tls)?,
            server: Arc::default(),
        })
    }

    /// Whom the server's certificate named when it last answered (`None` before it did).
    pub fn server(&self) -> Option<lading_pki::Subject> {
        self.server
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn note_server(&self, response: &reqwest::Response) {
        let named = response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(reqwest::tls::TlsInfo::peer_certificate)
            .and_then(|der| lading_pki::subject_of(der).ok());
        if let Some(subject) = named {
            *self.server.lock().unwrap_or_else(PoisonError::into_inner) = Some(subject);
        }
    }

    /// Entries from `from`, at most `limit`.
    pub async fn page(&self, from: u64, limit: u64) -> Result<FeedPage, ReplicaError> {
        let what = format!("/v1/replication/entries?from={from}&limit={limit}");
        self.get_json(&what).await
    }

    /// One document's transitions, as the feed gives them to this party (for back-fill).
    pub async fn document_entries(
        &self,
        reference: &DocumentReference,
    ) -> Result<FeedPage, ReplicaError> {
        self.get_json(&format!("/v1/replication/documents/{reference}"))
            .await
    }

    /// The signed checkpoints above size `after`, smallest first, at most `limit` (1 to 1,000;
    /// `GET /v1/checkpoints`): those the registry signed, or those another replica holds when
    /// this client points at a replica.
    pub async fn checkpoints_after(
        &self,
        after: u64,
        limit: u64,
    ) -> Result<Vec<String>, ReplicaError> {
        #[derive(Deserialize)]
        struct Held {
            checkpoints: Vec<String>,
        }
        let held: Held = self
            .get_json(&format!("/v1/checkpoints?after={after}&limit={limit}"))
            .await?;
        Ok(held.checkpoints)
    }

    /// The registry's latest signed checkpoint (`GET /v1/checkpoint`); `None` before the
    /// first.
    pub async fn latest_checkpoint(&self) -> Result<Option<String>, ReplicaError> {
        match self
            .get_json::<lading_domain::PublishedCheckpoint>("/v1/checkpoint")
            .await
        {
            Ok(published) => Ok(Some(published.signed)),
            Err(ReplicaError::Refused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The smallest signed checkpoint of size above `after`, if any: one checkpoint for a page
    /// of a catch-up, rather than every one signed over it.
    pub async fn first_checkpoint_after(&self, after: u64) -> Result<Option<String>, ReplicaError> {
        Ok(self.checkpoints_after(after, 1).await?.into_iter().next())
    }

    /// The registry's signed checkpoints of sizes `from` and `to` and its proof that the second
    /// extends the first (`GET /v1/checkpoints/consistency`); `None` when it signed no
    /// checkpoint of one of the sizes.
    pub async fn consistency(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Option<lading_domain::ConsistencyAnswer>, ReplicaError> {
        let path = format!("/v1/checkpoints/consistency?from={from}&to={to}");
        match self.get_json(&path).await {
            Ok(answer) => Ok(Some(answer)),
            Err(ReplicaError::Refused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The party's webhook subscriptions as the registry shows them (`GET /v1/subscriptions`,
    /// which takes the party's client certificate for reading): the node tells its users
    /// when one is failing.
    pub async fn subscriptions(&self) -> Result<Vec<RegistrySubscription>, ReplicaError> {
        #[derive(Deserialize)]
        struct List {
            subscriptions: Vec<RegistrySubscription>,
        }
        let list: List = self.get_json("/v1/subscriptions").await?;
        Ok(list.subscriptions)
    }

    /// The base URL this client talks to.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Forwards a submission this replica took at `received_at`. `Ok((true, receipt))` when the registry
    /// sequenced it (or had already), `Ok((false, problem))` when it refused it; `Err` when it
    /// could not say (unreachable, overloaded, failing): the submission is tried again later.
    pub async fn submit(
        &self,
        kind: &str,
        signed: &str,
        received_at: lading_domain::Timestamp,
    ) -> Result<(bool, serde_json::Value), ReplicaError> {
        let path = if kind == "event" {
            "/v1/events"
        } else {
            "/v1/transitions"
        };
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/jose")
            // When this node took it: the registry judges the party's own statement's time
            // against that, so what was signed while the registry was away is not refused as
            // stale when it finally arrives.
            .header("lading-received-at", received_at.to_string())
            .body(signed.to_owned())
            .send()
            .await?;
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(ReplicaError::Refused {
                what: path.to_owned(),
                status: status.as_u16(),
                body: response.text().await.unwrap_or_default(),
            });
        }
        let body: serde_json::Value = response.json().await?;
        Ok((status.is_success(), body))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<T, ReplicaError> {
        let response = self.http.get(format!("{}{path}", self.base)).send().await?;
        self.note_server(&response);
        Self::json(response, path).await
    }

    async fn json<T: serde::de::DeserializeOwned>(
        response: reqwest::Response,
        what: &str,
    ) -> Result<T, ReplicaError> {
        let status = response.status();
        if !status.is_success() {
            return Err(ReplicaError::Refused {
                what: what.to_owned(),
                status: status.as_u16(),
                body: response.text().await.unwrap_or_default(),
            });
        }
        Ok(response.json().await?)
    }
}

/// What one catch-up did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatchUp {
    /// Entries accepted, in full and as hashes.
    pub full: u64,
    pub hash_only: u64,
    /// Entries fetched again in full for documents the party joined late.
    pub backfilled: u64,
    /// The size of the checkpoint checked at the end, if the registry had signed one.
    pub checkpoint: Option<u64>,
    /// The registry's size as the last page said.
    pub registry_size: Option<u64>,
    /// Checkpoints whose roots were checked against the leaves as they were taken.
    pub checkpoints_verified: u64,
}

/// Where a replica keeps what its follower accepted. Each call must be durable when it
/// returns; when one fails, the follower is ahead of what was kept and must be rebuilt from it
/// ([`restore`]).
pub trait Keeper {
    /// A page of accepted entries, in index order, each with the document it belongs to (for
    /// entries held in full).
    fn keep_entries(
        &mut self,
        entries: &[(FeedEntry, Option<DocumentReference>)],
    ) -> Result<(), ReplicaError>;
    /// The signed bytes of an entry held until now as its hash.
    fn keep_backfill(
        &mut self,
        index: u64,
        leaf_hash: &Digest,
        signed: &str,
        document: Option<&DocumentReference>,
    ) -> Result<(), ReplicaError>;
    /// A page of accepted entries as [`Keeper::keep_entries`] takes them, with the follower's
    /// verdict on each (same order): the states the page's transitions led to. A keeper that
    /// keeps more than the rows (the node's list of documents, [`projection`]) overrides this
    /// to keep it in the same transaction; by default it keeps the entries.
    fn keep_page(
        &mut self,
        entries: &[(FeedEntry, Option<DocumentReference>)],
        judged: &[Judged],
    ) -> Result<(), ReplicaError> {
        let _ = judged;
        self.keep_entries(entries)
    }
    /// [`Keeper::keep_backfill`], with the follower's verdict on the entry (the state its
    /// chain reached, once replayed from its ISSUE); by default the same.
    fn keep_backfilled(
        &mut self,
        entry: &FeedEntry,
        document: Option<&DocumentReference>,
        judged: &Judged,
    ) -> Result<(), ReplicaError> {
        let _ = judged;
        let signed = entry.signed.as_deref().unwrap_or_default();
        self.keep_backfill(entry.index, &entry.leaf_hash, signed, document)
    }
    /// A signed checkpoint, verified or (ahead of the leaves) not yet.
    fn keep_checkpoint(&mut self, signed: &str, verified: bool) -> Result<(), ReplicaError>;
    /// Something refused, with its evidence.
    fn incident(&mut self, incident: &Incident) -> Result<(), ReplicaError>;
    /// A back-fill completed `reference`'s chain: whatever said it was not verified is over.
    fn chain_verified(&mut self, _reference: &DocumentReference) -> Result<(), ReplicaError> {
        Ok(())
    }
}

/// Keeps nothing: a replica held in memory only (tests, dry runs).
#[derive(Debug, Default, Clone, Copy)]
pub struct InMemory;

impl Keeper for InMemory {
    fn keep_entries(
        &mut self,
        _: &[(FeedEntry, Option<DocumentReference>)],
    ) -> Result<(), ReplicaError> {
        Ok(())
    }
    fn keep_backfill(
        &mut self,
        _: u64,
        _: &Digest,
        _: &str,
        _: Option<&DocumentReference>,
    ) -> Result<(), ReplicaError> {
        Ok(())
    }
    fn keep_checkpoint(&mut self, _: &str, _: bool) -> Result<(), ReplicaError> {
        Ok(())
    }
    fn incident(&mut self, _: &Incident) -> Result<(), ReplicaError> {
        Ok(())
    }
}

/// Rebuilds a follower from what a keeper held: every entry judged again in order, a page at a
/// time (the replica trusts its own database no more than the feed), then every checkpoint.
pub fn restore(
    follower: &mut Follower,
    entries: &[FeedEntry],
    checkpoints: impl IntoIterator<Item = String>,
) -> Result<(), Incident> {
    if let (_, Some(incident)) = judge_page(follower, entries) {
        return Err(incident);
    }
    for signed in checkpoints {
        follower.checkpoint(&signed)?;
    }
    Ok(())
}

/// Judges `entries` in order: parsing and key checks spread over the cores, signatures in one
/// batch. A page that does not pass whole is judged again entry by entry, which keeps what
/// precedes the refused entry and names it. Returns the verdicts of the entries accepted (a
/// prefix of `entries`) and the refusal that stopped it, if any.
pub fn judge_page(
    follower: &mut Follower,
    entries: &[FeedEntry],
) -> (Vec<Judged>, Option<Incident>) {
    let prepared: Result<Vec<_>, Incident> =
        entries.par_iter().map(|e| follower.prepare(e)).collect();
    if let Ok(judged) = prepared.and_then(|p| follower.accept_page(&p)) {
        return (judged, None);
    }
    let mut judged = Vec::with_capacity(entries.len());
    for entry in entries {
        match follower.accept(entry) {
            Ok(verdict) => judged.push(verdict),
            Err(incident) => return (judged, Some(incident)),
        }
    }
    (judged, None)
}

/// The document a signed entry belongs to, if it is a transition or an event about one.
pub fn document_of(signed: &str) -> Option<DocumentReference> {
    if let Ok(t) = lading_domain::transition::SignedTransition::parse(signed) {
        return Some(t.payload().document_reference().clone());
    }
    lading_domain::event::SignedEvent::parse(signed)
        .ok()
        .and_then(|e| e.event().document_reference().cloned())
}

/// Follows the feed from `follower.size()` until the registry's size as of the last page,
/// `page_size` entries at a time (1 to 10,000), keeping each checked page with `keeper`
/// before fetching the next. An entry or checkpoint the follower refuses is recorded as an
/// incident and stops the catch-up there: nothing after it is taken.
pub async fn catch_up(
    client: &FeedClient,
    follower: &Mutex<Follower>,
    keeper: &mut impl Keeper,
    page_size: u64,
) -> Result<CatchUp, ReplicaError> {
    match catch_up_inner(client, follower, keeper, page_size).await {
        Err(ReplicaError::Incident(incident)) => {
            tracing::error!(code = incident.code(), %incident, "refused what the registry sent");
            keeper.incident(&incident)?;
            Err(ReplicaError::Incident(incident))
        }
        other => other,
    }
}

/// The follower, held only between awaits (never across one).
fn lock(follower: &Mutex<Follower>) -> std::sync::MutexGuard<'_, Follower> {
    follower.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn catch_up_inner(
    client: &FeedClient,
    follower: &Mutex<Follower>,
    keeper: &mut impl Keeper,
    page_size: u64,
) -> Result<CatchUp, ReplicaError> {
    let mut done = CatchUp::default();
    // The registry's latest checkpoint first: ahead of the leaves held, it waits in the
    // follower and is checked exactly when the pages bring its last leaf.
    take_latest_checkpoint(client, follower, keeper, &mut done).await?;
    let mut registry_size: Option<u64> = None;
    loop {
        let size = lock(follower).size();
        // Far behind (a catch-up of many pages): one checkpoint per page, the first signed at
        // or after the page's end, so a leaf that does not fit is caught within about a page
        // rather than at the end — without fetching every checkpoint signed over the range.
        let page_end = size.saturating_add(page_size);
        if registry_size.is_some_and(|at| at > page_end)
            && !lock(follower).pending_within(size + 1..=page_end.saturating_add(page_size))
        {
            if let Some(signed) = client.first_checkpoint_after(page_end - 1).await? {
                take_checkpoint(follower, keeper, &mut done, &signed)?;
            }
        }
        let page = client.page(size, page_size).await?;
        registry_size = Some(page.size);
        done.registry_size = Some(page.size);
        let last_page = page.entries.is_empty();
        let entries: Vec<FeedEntry> = page.entries.into_iter().map(FeedEntry::from).collect();
        // Judged and kept under the lock, so no one sees the follower ahead of the rows.
        let mut held = lock(follower);
        if held.size() != size {
            // Restored meanwhile: start this page again.
            continue;
        }
        let (verdicts, refusal) = judge_page(&mut held, &entries);
        let mut accepted = Vec::with_capacity(verdicts.len());
        for (entry, judged) in entries.into_iter().zip(&verdicts) {
            let document = match judged {
                Judged::HashOnly => {
                    done.hash_only += 1;
                    None
                }
                Judged::ChainUnknown(reference) => {
                    done.full += 1;
                    Some(reference.clone())
                }
                Judged::Transition(state) => {
                    done.full += 1;
                    Some(state.reference.clone())
                }
                Judged::Event => {
                    done.full += 1;
                    entry.signed.as_deref().and_then(document_of)
                }
                Judged::Party => {
                    done.full += 1;
                    None
                }
            };
            accepted.push((entry, document));
        }
        keeper.keep_page(&accepted, &verdicts)?;
        // Checkpoints this page completed are kept as checked with it.
        for signed in held.drain_newly_verified() {
            keeper.keep_checkpoint(&signed, true)?;
            done.checkpoints_verified += 1;
            done.checkpoint = lading_domain::SignedCheckpoint::parse(&signed)
                .ok()
                .map(|c| c.unverified().size);
        }
        if let Some(incident) = refusal {
            return Err(incident.into());
        }
        if last_page || held.size() >= page.size {
            break;
        }
    }
    // Documents joined late (the follower remembers them, so a catch-up cut short resumes
    // here): their earlier entries are now served in full. Fetch the ledger up to the late
    // entry again and replay every entry of those documents, oldest first.
    let late = lock(follower).begin_backfill();
    if !late.is_empty() {
        let wanted: std::collections::HashSet<&DocumentReference> =
            late.iter().map(|(r, _)| r).collect();
        // What the registry listed of each document up to its late entry, and whether in
        // full: the evidence when a chain cannot be completed.
        let mut served: std::collections::HashMap<&DocumentReference, Vec<(u64, bool)>> =
            std::collections::HashMap::new();
        for (reference, until) in &late {
            // The document's own entries, not the ledger up to them.
            let page = client.document_entries(reference).await?;
            let listed = served.entry(reference).or_default();
            for item in page.entries {
                if item.index > *until {
                    break;
                }
                listed.push((item.index, item.signed.is_some()));
                let Some(signed) = item.signed else {
                    continue;
                };
                let mut held = lock(follower);
                let judged = held.backfill(item.index, &signed)?;
                let document = document_of(&signed);
                let entry = FeedEntry {
                    index: item.index,
                    leaf_hash: item.leaf_hash,
                    signed: Some(signed),
                };
                keeper.keep_backfilled(&entry, document.as_ref(), &judged)?;
                done.backfilled += 1;
            }
        }
        // A whole pass: a chain still unknown will not come in full; stop asking. That is an
        // incident (the registry withholds entries the party is entitled to), and the chain
        // stays unverified — its reads say so — until a later back-fill completes it.
        let mut held = lock(follower);
        let still: Vec<(DocumentReference, u64)> = held
            .unknown_chains()
            .into_iter()
            .filter(|(r, _)| wanted.contains(r))
            .collect();
        for (reference, _) in &late {
            if !still.iter().any(|(r, _)| r == reference) {
                keeper.chain_verified(reference)?;
            }
        }
        for (reference, late) in still {
            held.give_up_chain(&reference);
            let incident = Incident::ChainUnverified {
                served: served.remove(&reference).unwrap_or_default(),
                reference,
                late,
            };
            tracing::error!(code = incident.code(), %incident, "giving up a chain");
            keeper.incident(&incident)?;
        }
    }
    // The checkpoint signed meanwhile.
    take_latest_checkpoint(client, follower, keeper, &mut done).await?;
    // A poll is not news (the node says at INFO what a poll brought, when it brought something).
    tracing::debug!(
        size = lock(follower).size(),
        full = done.full,
        hash_only = done.hash_only,
        backfilled = done.backfilled,
        "caught up"
    );
    Ok(done)
}

/// Takes the registry's latest checkpoint when it is larger than any the follower holds.
///
/// Only the latest: the registry signs one every checkpoint interval while the ledger grows,
/// and a replica checks each one it takes against its own leaves, so every later checkpoint
/// vouches for the leaves below it as well as the ones between. Taking every one would make
/// each replica download (and store) two a second for ever; taking the latest costs one
/// request per poll, whatever the registry's schedule. A checkpoint ahead of the leaves is
/// kept as not yet checked; the page that completes it keeps it as checked.
async fn take_latest_checkpoint(
    client: &FeedClient,
    follower: &Mutex<Follower>,
    keeper: &mut impl Keeper,
    done: &mut CatchUp,
) -> Result<(), ReplicaError> {
    let Some(signed) = client.latest_checkpoint().await? else {
        return Ok(());
    };
    let size = lading_domain::SignedCheckpoint::parse(&signed)
        .map_err(|e| Incident::BadCheckpoint {
            detail: e.to_string(),
        })?
        .unverified()
        .size;
    if lock(follower).holds_checkpoint(size) {
        return Ok(());
    }
    take_checkpoint(follower, keeper, done, &signed)
}

/// Judges one checkpoint the registry sent and keeps it (as checked, or waiting).
fn take_checkpoint(
    follower: &Mutex<Follower>,
    keeper: &mut impl Keeper,
    done: &mut CatchUp,
    signed: &str,
) -> Result<(), ReplicaError> {
    let status = lock(follower).checkpoint(signed)?;
    if status == CheckpointStatus::Deferred {
        return Ok(());
    }
    keeper.keep_checkpoint(signed, status.checked())?;
    if status.checked() {
        done.checkpoint = lading_domain::SignedCheckpoint::parse(signed)
            .ok()
            .map(|c| c.unverified().size);
        done.checkpoints_verified += 1;
    }
    Ok(())
}

/// The party registry as published (`parties.json`, [`lading_domain::party::PartyRegistryFile`])
/// as the genesis of the membership a follower checks signatures with; the ledger's party
/// statements change it from there. Private key material is refused: a party registry
/// publishes public keys only.
pub fn genesis(parties_json: &str) -> Result<Membership, ReplicaError> {
    lading_domain::party::PartyRegistryFile::parse(parties_json)
        .and_then(|file| Membership::genesis(&file))
        .map_err(|e| ReplicaError::Parties(e.to_string()))
}
