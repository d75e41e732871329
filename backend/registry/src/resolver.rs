//! Finishes the refusals the drafter cannot decide from memory, on a thread of its own.
//!
//! The drafter judges every submission from memory (document heads, the open batch). A refusal
//! may still need the database: the refused bytes may be an exact resubmission of an entry on
//! the ledger (then the answer is that entry's, `duplicate`); a transition whose previous
//! checksum is not its document's head is a double spend if that checksum names an earlier
//! transition of the chain; and a signer memory does not know as a reader of the document is
//! told only `unknown_document` unless the database names it. Asking those questions on the
//! drafter would make every submission wait for them — a stream of resubmitted refused bytes
//! would stall the ledger for everyone — so the drafter answers provisionally and the request
//! comes here once its batch has been handed to the writer, when every entry memory knew of is
//! durable (or has failed). Requests with nothing to ask never come here.
//!
//! A request waiting here keeps its place in the queue (see `RegistryConfig::max_queue`), so
//! a flood of resubmissions is shed at the door like any other overload.

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use diesel::pg::PgConnection;
use foldhash::{HashMap, HashMapExt};
use lading_domain::state::DocumentState;
use lading_domain::transition::SignedTransition;
use lading_domain::Digest;
use lading_store::json::JsonText;
use lading_store::ledger;
use lading_store::models::EntryKind;
use lading_store::{Store, StoreError};

use crate::load::{Threads, WritePathThread};
use crate::refusal::Refusal;
use crate::sequencer::{reply, Job, Outcome};
use crate::verify::VerifiedBody;
use crate::Receipt;

/// The resolver's connection, as `pg_stat_activity.application_name` shows it.
pub const RESOLVER: &str = "lading-resolver";

/// Requests answered together: their look-ups share queries.
const RESOLVE_BATCH: usize = 256;

/// A refused item of a request whose answer may still change.
#[derive(Debug)]
pub(crate) struct Pending {
    /// The item's position in its request.
    pub item: usize,
    /// What else to ask beyond "are these exact bytes on the ledger?".
    pub ask: Option<Box<Ask>>,
}

/// A transition refused by its document's rules, whose refusal depends on the chain.
#[derive(Debug)]
pub(crate) struct Ask {
    pub reference: String,
    /// The refusal to tell a signer who may read the document.
    pub refusal: Refusal,
    /// Its `previousTransitionChecksum`, when that is not the head: a double spend if it
    /// names a transition of the chain.
    pub parent: Option<Digest>,
    /// The signer, when memory does not know it as a reader: unless the database names it in
    /// the document's chain, the answer stays `unknown_document`.
    pub reader: Option<String>,
}

impl Ask {
    /// What the request is answered if nothing more can be learnt: nothing a stranger to the
    /// document may not be told.
    pub(crate) fn provisional(&self) -> Refusal {
        if self.reader.is_some() {
            Refusal::UnknownDocument {
                reference: self.reference.clone(),
            }
        } else {
            self.refusal.clone()
        }
    }
}

/// A request with refusals to finish.
struct Unresolved {
    job: Job,
    outcomes: Vec<Option<Outcome>>,
    pending: Vec<Pending>,
}

/// How the write path answers a request: straight away, or through the resolver when some of
/// its refusals are pending.
#[derive(Clone)]
pub(crate) struct ResolverLink {
    requests: Sender<Unresolved>,
}

impl ResolverLink {
    pub(crate) fn finish(&self, job: Job, outcomes: Vec<Option<Outcome>>, pending: Vec<Pending>) {
        if pending.is_empty() {
            return reply(job, outcomes);
        }
        let unresolved = Unresolved {
            job,
            outcomes,
            pending,
        };
        if let Err(crossbeam_channel::SendError(u)) = self.requests.send(unresolved) {
            // The resolver is gone: the provisional answers are the safe ones.
            tracing::error!("the resolver thread is gone; answering refusals as they stand");
            reply(u.job, u.outcomes);
        }
    }
}

/// Starts the resolver thread.
pub(crate) fn start(
    store: Store,
    threads: &Arc<Threads>,
) -> std::io::Result<(ResolverLink, std::thread::JoinHandle<()>)> {
    let (requests, incoming) = crossbeam_channel::unbounded();
    let running = threads.guard(WritePathThread::Resolver);
    let resolver = Resolver { store, conn: None };
    let thread = std::thread::Builder::new()
        .name("lading-resolve".into())
        .spawn(move || resolver.run(incoming, running))?;
    Ok((ResolverLink { requests }, thread))
}

struct Resolver {
    store: Store,
    conn: Option<PgConnection>,
}

impl Resolver {
    /// Answers requests until every link is gone.
    fn run(mut self, incoming: Receiver<Unresolved>, running: crate::load::Running) {
        while let Ok(first) = incoming.recv() {
            running.woke();
            let mut batch = vec![first];
            while batch.len() < RESOLVE_BATCH {
                match incoming.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            if let Err(e) = self.resolve(&mut batch) {
                // Nothing is known for sure: resubmitting is safe, so say that.
                tracing::error!(error = %e, "cannot finish refusals; answering them as transient");
                self.conn = None;
                let refusal = Refusal::unavailable(e);
                for u in &mut batch {
                    for p in &u.pending {
                        u.outcomes[p.item] = Some(Err(refusal.clone()));
                    }
                }
            }
            for u in batch {
                reply(u.job, u.outcomes);
            }
        }
    }

    fn conn(&mut self) -> Result<&mut PgConnection, StoreError> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => self.store.dedicated_connection(RESOLVER)?,
        };
        Ok(self.conn.insert(conn))
    }

    fn resolve(&mut self, batch: &mut [Unresolved]) -> Result<(), StoreError> {
        let existing = self.existing(batch)?;
        let conn = self.conn()?;
        for u in batch.iter_mut() {
            for p in &mut u.pending {
                let Ok(v) = &u.job.items[p.item] else {
                    continue;
                };
                if let Some(found) = existing.get(&v.leaf) {
                    let state = match (&v.body, &found.document_ref) {
                        (VerifiedBody::Transition(_), Some(reference)) => {
                            Some(replayed_state(conn, reference, found.idx)?)
                        }
                        _ => None,
                    };
                    u.outcomes[p.item] = Some(Ok(Receipt {
                        index: found.idx as u64,
                        leaf_hash: v.leaf,
                        kind: EntryKind::parse(&found.kind).unwrap_or(EntryKind::Event),
                        document_reference: found.document_ref.clone(),
                        state,
                        submitted_by: found.submitted_by.clone(),
                        duplicate: true,
                    }));
                    continue;
                }
                let Some(ask) = p.ask.take() else {
                    continue;
                };
                let Ask {
                    reference,
                    mut refusal,
                    parent,
                    reader,
                } = *ask;
                if let Some(reader) = &reader {
                    if !ledger::is_named_in(conn, &reference, reader)? {
                        // The provisional answer, unknown_document, stands.
                        continue;
                    }
                }
                if let Some(given) = parent {
                    if ledger::is_transition_of(conn, &reference, &given.0)? {
                        refusal = Refusal::DoubleSpend {
                            reference,
                            given: given.to_hex(),
                        };
                    }
                }
                u.outcomes[p.item] = Some(Err(refusal));
            }
        }
        Ok(())
    }

    /// The entries on the ledger with the same bytes as a pending item, by leaf hash. They are
    /// looked up through the keys that make entries unique (a transition's checksum, an
    /// event's actor and id, a party statement's leaf) and must then have the same leaf hash.
    fn existing(
        &mut self,
        batch: &[Unresolved],
    ) -> Result<HashMap<Digest, ledger::ExistingEntry>, StoreError> {
        let mut documents = Vec::new();
        let mut checksums = Vec::new();
        let mut event_ids: HashMap<&str, Vec<&str>> = HashMap::new();
        let mut statements = Vec::new();
        for u in batch {
            for p in &u.pending {
                let Ok(v) = &u.job.items[p.item] else {
                    continue;
                };
                match &v.body {
                    VerifiedBody::Party(_) => statements.push(v.leaf.0.to_vec()),
                    VerifiedBody::Transition(t) => {
                        documents.push(t.payload().document_reference().as_str());
                        checksums.push(t.checksum().0.to_vec());
                    }
                    VerifiedBody::Event(e) => event_ids
                        .entry(e.event().actor().as_str())
                        .or_default()
                        .push(e.event().event_id()),
                }
            }
        }
        let conn = self.conn()?;
        let mut found = ledger::transitions_by_checksum(conn, &documents, &checksums)?;
        for (actor, ids) in &event_ids {
            found.extend(ledger::events_by_id(conn, actor, ids)?);
        }
        found.extend(ledger::party_statements_by_leaf(conn, &statements)?);
        Ok(found
            .into_iter()
            .filter_map(|e| Digest::from_slice(&e.leaf_hash).ok().map(|d| (d, e)))
            .collect())
    }
}

/// The state of document `reference` right after its transition at `idx`, recomputed from its
/// signed chain (the ledger keeps the chain, not every intermediate state).
fn replayed_state(
    conn: &mut PgConnection,
    reference: &str,
    idx: i64,
) -> Result<JsonText, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        table: "transitions",
        detail: format!("chain of {reference}: {detail}"),
    };
    let mut state: Option<DocumentState> = None;
    for (entry, _) in lading_store::reads::chain(conn, reference)? {
        if entry.idx > idx {
            break;
        }
        let text = std::str::from_utf8(&entry.signed).map_err(|e| corrupt(e.to_string()))?;
        let signed = SignedTransition::parse(text).map_err(|e| corrupt(e.to_string()))?;
        let next = match &state {
            None => DocumentState::issue(signed.payload(), signed.checksum()),
            Some(state) => state.apply(signed.payload(), signed.checksum()),
        };
        state = Some(next.map_err(|e| corrupt(e.to_string()))?);
    }
    let state = state.ok_or_else(|| corrupt(format!("no transition at {idx}")))?;
    JsonText::of(&state).map_err(|e| corrupt(e.to_string()))
}
