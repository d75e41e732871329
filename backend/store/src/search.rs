//! Finding bills: the documents and shipment events a party is entitled to, and the entries it
//! submitted itself, newest first, a page at a time (`GET /v1/documents`, `GET /v1/events`,
//! `GET /v1/submissions`).
//!
//! Entitlement is the rule every other read of a document uses (`may_read!`, `may_read_row!`
//! and `entitled!` of [`crate::reads`]), decided in the query: a row the party may not see is
//! never loaded, so neither a page nor its cursor can tell anything about it.
//!
//! Pages are keyset pages, never offsets. Documents are ordered by their last change (the
//! ledger index of their head transition, unique per document) and then reference; a page
//! starts strictly below the cursor it was asked with. A document that changes while a client
//! pages moves to the front, above every cursor already handed out, so it is never listed twice
//! in one walk; every document that did not change during the walk is listed exactly once.
//! Events never change, so their order (the ledger index) is fixed.
//!
//! Cost: a party's page reads its own rows of `document_access`, newest head first, along
//! one index (every transition moves the rows of its document to the new head), and stops
//! once it has a page of matches: about `limit` rows with no other filter, whatever the
//! party's share of the ledger; a filter that matches few of the party's documents reads
//! further, at most all of them. A customs authority, entitled by its ports, walks the
//! ledger's transitions backwards instead and reads in proportion to how rare its documents
//! are. See BENCHMARKS.md.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, Bytea, Int8, Nullable, Text, Timestamptz};

use crate::prepared::{Prepared, Value};
use crate::reads::{entitled, may_read, may_read_row};
use crate::StoreError;

/// A party's relation to a document, as `role=` filters on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Carrier,
    Shipper,
    Consignee,
    Notify,
    Endorsee,
    Possessor,
    Customs,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Carrier,
        Role::Shipper,
        Role::Consignee,
        Role::Notify,
        Role::Endorsee,
        Role::Possessor,
        Role::Customs,
    ];

    /// The name the API takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Carrier => "carrier",
            Role::Shipper => "shipper",
            Role::Consignee => "consignee",
            Role::Notify => "notify",
            Role::Endorsee => "endorsee",
            Role::Possessor => "possessor",
            Role::Customs => "customs",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// The condition that party `$1` has this role in document `doc` (search row `s`).
    fn condition(self) -> &'static str {
        match self {
            Role::Carrier => "doc.carrier = $1",
            Role::Shipper => "s.shipper = $1",
            Role::Consignee => "s.consignee = $1",
            Role::Notify => "$1 = ANY(s.notify_parties)",
            // The endorsee moves with the chain: it is read from the document's state.
            Role::Endorsee => "(doc.state::jsonb ->> 'endorsee') = $1",
            Role::Possessor => "doc.possessor = $1",
            Role::Customs => {
                "EXISTS (SELECT 1 FROM parties cp WHERE cp.id = $1 \
                 AND cp.role = 'customs_authority' \
                 AND (doc.port_of_loading = ANY(cp.ports) OR doc.port_of_discharge = ANY(cp.ports)))"
            }
        }
    }
}

/// What `GET /v1/documents` asks for; `None` filters nothing.
#[derive(Debug, Clone, Default)]
pub struct DocumentQuery {
    pub status: Option<String>,
    pub role: Option<Role>,
    /// Vessel name, compared without regard to case.
    pub vessel: Option<String>,
    pub voyage: Option<String>,
    pub port_of_loading: Option<String>,
    pub port_of_discharge: Option<String>,
    pub container: Option<String>,
    /// Another party named in the document or its chain.
    pub party: Option<String>,
    /// Only documents whose last change is at or after this ledger index.
    pub changed_from: Option<u64>,
    /// Words that must all appear in the reference, vessel, voyage, containers or parties.
    pub words: Vec<String>,
    /// Start strictly below this (last change index, reference).
    pub after: Option<(i64, String)>,
    pub limit: u32,
}

/// One document of a page.
#[derive(Debug, Clone, QueryableByName)]
pub struct DocumentHit {
    #[diesel(sql_type = Text)]
    pub reference: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Text)]
    pub possessor: String,
    #[diesel(sql_type = Text)]
    pub carrier: String,
    #[diesel(sql_type = Text)]
    pub port_of_loading: String,
    #[diesel(sql_type = Text)]
    pub port_of_discharge: String,
    #[diesel(sql_type = Int8)]
    pub head_idx: i64,
    #[diesel(sql_type = Bytea)]
    pub head_checksum: Vec<u8>,
    #[diesel(sql_type = Int8)]
    pub issued_idx: i64,
    /// When the registry sequenced the last change.
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub vessel: String,
    #[diesel(sql_type = Text)]
    pub voyage: String,
    #[diesel(sql_type = Text)]
    pub shipper: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub consignee: Option<String>,
    #[diesel(sql_type = Array<Nullable<Text>>)]
    pub notify_parties: Vec<Option<String>>,
    #[diesel(sql_type = Array<Nullable<Text>>)]
    pub containers: Vec<Option<String>>,
}

/// A query whose binds are added as its conditions are: `$1` is always the reading party. The
/// statement it makes is kept prepared per connection ([`Prepared`]): its text depends only on
/// which filters are asked for, never on their values.
struct Builder {
    sql: String,
    values: Vec<Value>,
}

impl Builder {
    fn new(party: &str) -> Self {
        Self {
            sql: String::new(),
            values: vec![Value::Text(party.to_owned())],
        }
    }

    /// The placeholder of a new bind of `value`.
    fn bind(&mut self, value: Value) -> String {
        self.values.push(value);
        format!("${}", self.values.len())
    }

    /// Adds `AND <condition>`, with `?` in it standing for the next bind.
    fn text(&mut self, condition: &str, value: String) {
        let placeholder = self.bind(Value::Text(value));
        self.sql += &format!(" AND {}", condition.replace('?', &placeholder));
    }

    fn int(&mut self, condition: &str, value: i64) {
        let placeholder = self.bind(Value::Int(value));
        self.sql += &format!(" AND {}", condition.replace('?', &placeholder));
    }

    /// The whole statement: `head`, the conditions, then `tail`.
    fn finish(self, head: &str, tail: &str) -> Prepared {
        Prepared::numbered(&format!("{head}{}{tail}", self.sql), self.values)
    }
}

/// `%text%` for LIKE, with LIKE's own characters taken literally.
fn contains(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// A page of the documents `party` may read that match `query`, newest change first, found
/// the cheaper way for that party ([`walk_for`], as `walks` remembers it).
pub fn documents(
    conn: &mut PgConnection,
    walks: &WalkCache,
    party: &str,
    query: &DocumentQuery,
) -> Result<Vec<DocumentHit>, StoreError> {
    let walk = walks.walk_for(conn, party)?;
    documents_by(conn, party, query, walk)
}

/// Which walk each party's pages take, remembered for [`WalkCache::KEEP`]: it saves each page
/// a round trip to ask whether the party is a customs authority, which changes rarely. Either
/// walk gives the same page: a choice a little out of date costs time, never a wrong answer.
#[derive(Debug, Default)]
pub struct WalkCache {
    chosen: std::sync::Mutex<std::collections::HashMap<String, (Walk, std::time::Instant)>>,
}

impl WalkCache {
    /// How long a choice is kept.
    pub const KEEP: std::time::Duration = std::time::Duration::from_secs(60);
    /// Parties remembered at most (then the map starts again).
    const MAX: usize = 100_000;

    /// [`walk_for`], from memory when chosen less than [`WalkCache::KEEP`] ago.
    pub fn walk_for(&self, conn: &mut PgConnection, party: &str) -> Result<Walk, StoreError> {
        let now = std::time::Instant::now();
        let remembered = self
            .chosen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(party)
            .filter(|(_, at)| now.saturating_duration_since(*at) < Self::KEEP)
            .map(|(walk, _)| *walk);
        if let Some(walk) = remembered {
            return Ok(walk);
        }
        let walk = walk_for(conn, party)?;
        let mut chosen = self.chosen.lock().unwrap_or_else(|e| e.into_inner());
        if chosen.len() >= Self::MAX {
            chosen.clear();
        }
        chosen.insert(party.to_owned(), (walk, now));
        Ok(walk)
    }
}

/// [`documents`] found by the given walk; both give the same page.
pub fn documents_by(
    conn: &mut PgConnection,
    party: &str,
    query: &DocumentQuery,
    walk: Walk,
) -> Result<Vec<DocumentHit>, StoreError> {
    let mut b = Builder::new(party);
    if let Some(status) = &query.status {
        b.text("doc.status = ?", status.clone());
    }
    if let Some(role) = query.role {
        b.sql += &format!(" AND {}", role.condition());
    }
    if let Some(vessel) = &query.vessel {
        b.text("lower(s.vessel) = lower(?)", vessel.clone());
    }
    if let Some(voyage) = &query.voyage {
        b.text("s.voyage = ?", voyage.clone());
    }
    if let Some(pol) = &query.port_of_loading {
        b.text("doc.port_of_loading = ?", pol.clone());
    }
    if let Some(pod) = &query.port_of_discharge {
        b.text("doc.port_of_discharge = ?", pod.clone());
    }
    if let Some(container) = &query.container {
        b.text("s.containers @> ARRAY[?]::text[]", container.clone());
    }
    if let Some(other) = &query.party {
        b.text(
            "EXISTS (SELECT 1 FROM document_access o \
             WHERE o.document_ref = doc.reference AND o.party_id = ?)",
            other.clone(),
        );
    }
    if let Some(from) = query.changed_from {
        b.int("tr.idx >= ?", crate::to_i64(from));
    }
    for word in &query.words {
        b.text("s.search LIKE ?", contains(&word.to_lowercase()));
    }
    if let Some((idx, reference)) = &query.after {
        let idx = b.bind(Value::Int(*idx));
        b.text(
            &format!("tr.idx <= {idx} AND (tr.idx < {idx} OR tr.document_ref < ?)"),
            reference.clone(),
        );
    }
    // The limit is written in, not bound: a plan made for an unknown limit is costed for a
    // tenth of the rows and gives up the walk that stops after a page.
    let tail = format!(
        " ORDER BY tr.idx DESC, tr.document_ref DESC LIMIT {}",
        query.limit
    );
    // `tr` is, either way, the document's head transition: (idx, document_ref).
    let head = match walk {
        // The head is matched by a scalar subquery rather than a join condition: as a second
        // join condition (`doc.head_idx = tr.idx`) PostgreSQL multiplies its selectivity with
        // the first, expects one row, and plans nested loops over whole tables (minutes at
        // 200,000 documents). As a filter it walks `transitions` backwards and stops after a
        // page.
        Walk::Ledger => concat!(
            "SELECT doc.reference, doc.status, doc.possessor, doc.carrier, doc.port_of_loading, \
                    doc.port_of_discharge, doc.head_idx, doc.head_checksum, doc.issued_idx, \
                    le.received_at AS updated_at, s.vessel, s.voyage, s.shipper, s.consignee, \
                    s.notify_parties, s.containers \
             FROM transitions tr \
             JOIN documents doc ON doc.reference = tr.document_ref \
             JOIN document_search s ON s.reference = doc.reference \
             JOIN ledger_entries le ON le.idx = tr.idx \
             WHERE tr.idx = (SELECT h.head_idx FROM documents h WHERE h.reference = tr.document_ref) \
               AND ",
            may_read_row!("doc")
        ),
        // From the party's own rows, newest head first along `document_access_recent`: a
        // page reads its 50 rows of one index range, whatever the party's share of the
        // ledger. For a party that is not a customs authority these rows are exactly
        // `may_read!` (its customs clause needs the customs role), so the rule stays the one
        // every read uses.
        Walk::OwnDocuments => {
            "SELECT doc.reference, doc.status, doc.possessor, doc.carrier, doc.port_of_loading, \
                    doc.port_of_discharge, doc.head_idx, doc.head_checksum, doc.issued_idx, \
                    le.received_at AS updated_at, s.vessel, s.voyage, s.shipper, s.consignee, \
                    s.notify_parties, s.containers \
             FROM (SELECT a.head_idx AS idx, a.document_ref \
                   FROM document_access a \
                   WHERE a.party_id = $1 \
                     AND NOT EXISTS (SELECT 1 FROM parties p \
                                     WHERE p.id = $1 AND p.role = 'customs_authority')) tr \
             JOIN documents doc ON doc.reference = tr.document_ref \
             JOIN document_search s ON s.reference = doc.reference \
             JOIN ledger_entries le ON le.idx = tr.idx \
             WHERE TRUE"
        }
    };
    let statement = b.finish(head, &tail);
    without_jit(
        conn,
        plan_for(walk, query),
        |conn| Ok(statement.load(conn)?),
    )
}

/// How a page of documents is planned. Planning a page for its values costs about as much
/// PostgreSQL time as running it (0.9 ms of a 1.8 ms page at 1,000,000 documents), so the
/// connection's generic plan is reused wherever the plan cannot depend on the values:
///
/// - either walk with no filter but the cursor: read back along the ledger, or along the
///   party's index, until the page is full;
/// - the party's own rows filtered by `state` or `role`: no index serves those columns, so
///   every plan reads the party's rows in order and tests each.
///
/// Every filter an index serves (vessel, voyage, ports, container, another party, the time,
/// words) may be rare or common and is planned for its values each time; so is any filter on
/// the ledger walk — a generic plan for `role=notify` there read the whole search table (2.1 s
/// a page).
fn plan_for(walk: Walk, query: &DocumentQuery) -> Plan {
    let by_index = query.vessel.is_some()
        || query.voyage.is_some()
        || query.port_of_loading.is_some()
        || query.port_of_discharge.is_some()
        || query.container.is_some()
        || query.party.is_some()
        || query.changed_from.is_some()
        || !query.words.is_empty();
    let by_row = query.status.is_some() || query.role.is_some();
    if by_index || (by_row && walk == Walk::Ledger) {
        Plan::ForTheValues
    } else {
        Plan::Generic
    }
}

/// Whether a prepared search statement is planned for each run's values or once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    ForTheValues,
    Generic,
}

/// How a page of documents is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// Backwards through the ledger's transitions, keeping the entitled heads, until a page is
    /// full: a page reads about `limit / share` transitions. Only for a customs authority,
    /// which is entitled by its ports and so has no rows of its own for most of what it reads.
    Ledger,
    /// Through the party's own `document_access` rows, newest head first
    /// (`document_access_recent`): a page reads about `limit` rows when nothing else filters.
    /// Never for a customs authority.
    OwnDocuments,
}

/// The walk for `party`: the ledger for a customs authority, else its own rows. One probe of
/// the party's row.
pub fn walk_for(conn: &mut PgConnection, party: &str) -> Result<Walk, StoreError> {
    #[derive(QueryableByName)]
    struct Shape {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        customs: bool,
    }
    let shape: Shape = diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM parties WHERE id = $1 AND role = 'customs_authority') \
         AS customs",
    )
    .bind::<Text, _>(party)
    .get_result(conn)?;
    Ok(if shape.customs {
        Walk::Ledger
    } else {
        Walk::OwnDocuments
    })
}

/// Runs `read` in a transaction without JIT compilation and without parallel workers: a
/// page's plan is costed as if it read the whole ledger (the LIMIT stops it early), which
/// would make PostgreSQL spend ~150 ms compiling it for a query that then takes 3, or start
/// background workers (a millisecond or more each, on the cores the other pages need) for a
/// page of 50 rows. The settings go in one round trip.
fn without_jit<T>(
    conn: &mut PgConnection,
    plan: Plan,
    read: impl FnOnce(&mut PgConnection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    use diesel::connection::SimpleConnection;
    conn.transaction(|conn| {
        conn.batch_execute(match plan {
            // Planned for the values at hand each time (a generic plan, costed for the
            // average party, may walk far for a rare one); what being prepared saves is the
            // parsing.
            Plan::ForTheValues => {
                "SET LOCAL jit = off; SET LOCAL max_parallel_workers_per_gather = 0; \
                 SET LOCAL plan_cache_mode = force_custom_plan"
            }
            Plan::Generic => {
                "SET LOCAL jit = off; SET LOCAL max_parallel_workers_per_gather = 0; \
                 SET LOCAL plan_cache_mode = force_generic_plan"
            }
        })?;
        read(conn)
    })
}

/// What `GET /v1/events` asks for; `None` filters nothing.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub event_code: Option<String>,
    pub document: Option<String>,
    pub container: Option<String>,
    pub location: Option<String>,
    /// Only events signed by this party.
    pub actor: Option<String>,
    /// Only events at or after this ledger index.
    pub from: Option<u64>,
    /// Start strictly below this ledger index.
    pub before: Option<i64>,
    pub limit: u32,
}

/// One event of a page.
#[derive(Debug, Clone, QueryableByName)]
pub struct EventHit {
    #[diesel(sql_type = Int8)]
    pub idx: i64,
    #[diesel(sql_type = Bytea)]
    pub leaf_hash: Vec<u8>,
    #[diesel(sql_type = Text)]
    pub actor: String,
    #[diesel(sql_type = Timestamptz)]
    pub received_at: DateTime<Utc>,
    #[diesel(sql_type = Bytea)]
    pub signed: Vec<u8>,
    #[diesel(sql_type = Text)]
    pub event_code: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub document_ref: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub equipment_ref: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub location: Option<String>,
}

/// A page of the shipment events `party` is entitled to (by the rule of the replication feed:
/// its own, and those of documents it may read) that match `query`, newest first.
pub fn events(
    conn: &mut PgConnection,
    party: &str,
    query: &EventQuery,
) -> Result<Vec<EventHit>, StoreError> {
    let mut b = Builder::new(party);
    if let Some(code) = &query.event_code {
        b.text("ev.event_code = ?", code.clone());
    }
    if let Some(document) = &query.document {
        b.text("ev.document_ref = ?", document.clone());
    }
    if let Some(container) = &query.container {
        b.text("ev.equipment_ref = ?", container.clone());
    }
    if let Some(location) = &query.location {
        b.text("ev.location = ?", location.clone());
    }
    if let Some(actor) = &query.actor {
        b.text("ev.actor = ?", actor.clone());
    }
    if let Some(from) = query.from {
        b.int("ev.idx >= ?", crate::to_i64(from));
    }
    if let Some(before) = query.before {
        b.int("ev.idx < ?", before);
    }
    let tail = format!(" ORDER BY ev.idx DESC LIMIT {}", query.limit);
    let statement = b.finish(
        concat!(
            "SELECT e.idx, e.leaf_hash, e.actor, e.received_at, e.signed, ev.event_code, \
                    ev.document_ref, ev.equipment_ref, ev.location \
             FROM events ev JOIN ledger_entries e ON e.idx = ev.idx \
             WHERE e.kind = 'event' AND ",
            entitled!()
        ),
        &tail,
    );
    without_jit(conn, Plan::ForTheValues, |conn| Ok(statement.load(conn)?))
}

/// A submission's kind: a transition or a shipment event. What `GET /v1/submissions` filters
/// on, and what a node's outbox records of each submission it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmissionKind {
    Transition,
    Event,
}

impl SubmissionKind {
    /// The name the API takes and `ledger_entries.kind` holds.
    pub fn as_str(self) -> &'static str {
        match self {
            SubmissionKind::Transition => "transition",
            SubmissionKind::Event => "event",
        }
    }

    pub fn parse(name: &str) -> Option<SubmissionKind> {
        [SubmissionKind::Transition, SubmissionKind::Event]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

/// What `GET /v1/submissions` asks for; `None` filters nothing.
#[derive(Debug, Clone, Default)]
pub struct SubmissionQuery {
    pub kind: Option<SubmissionKind>,
    /// A transition's action (`ISSUE`, `TRANSFER`, …).
    pub action: Option<String>,
    pub event_code: Option<String>,
    pub document: Option<String>,
    /// Only entries signed by this party.
    pub signer: Option<String>,
    /// Only entries at or after this ledger index.
    pub from: Option<u64>,
    /// Start strictly below this ledger index.
    pub before: Option<i64>,
    pub limit: u32,
}

/// One entry of a page of submissions.
#[derive(Debug, Clone, QueryableByName)]
pub struct SubmissionHit {
    #[diesel(sql_type = Int8)]
    pub idx: i64,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Bytea)]
    pub leaf_hash: Vec<u8>,
    /// The signer.
    #[diesel(sql_type = Text)]
    pub actor: String,
    #[diesel(sql_type = Text)]
    pub submitted_by: String,
    #[diesel(sql_type = Timestamptz)]
    pub received_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Text>)]
    pub action: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub event_code: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub document_ref: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub equipment_ref: Option<String>,
}

/// A page of the transitions and events `party` handed in itself (`submitted_by`, whoever
/// signed them) that match `query`, newest first.
///
/// No entitlement rule is needed: a party is shown only what its own credential sent, so it
/// learns nothing it did not already hold, and another party's submissions never enter the
/// query. A page is read backwards along `ledger_entries_submitted_by` and stops after
/// `limit` rows (the filters are checked on the party's own rows only).
pub fn submissions(
    conn: &mut PgConnection,
    party: &str,
    query: &SubmissionQuery,
) -> Result<Vec<SubmissionHit>, StoreError> {
    let mut b = Builder::new(party);
    if let Some(kind) = query.kind {
        b.text("e.kind = ?", kind.as_str().to_owned());
    }
    if let Some(action) = &query.action {
        b.text("t.action = ?", action.clone());
    }
    if let Some(code) = &query.event_code {
        b.text("ev.event_code = ?", code.clone());
    }
    if let Some(document) = &query.document {
        b.text("e.document_ref = ?", document.clone());
    }
    if let Some(signer) = &query.signer {
        b.text("e.actor = ?", signer.clone());
    }
    if let Some(from) = query.from {
        b.int("e.idx >= ?", crate::to_i64(from));
    }
    if let Some(before) = query.before {
        b.int("e.idx < ?", before);
    }
    let tail = format!(" ORDER BY e.idx DESC LIMIT {}", query.limit);
    let statement = b.finish(
        "SELECT e.idx, e.kind, e.leaf_hash, e.actor, e.submitted_by, e.received_at, t.action, \
                ev.event_code, e.document_ref, e.equipment_ref \
         FROM ledger_entries e \
         LEFT JOIN transitions t ON t.idx = e.idx \
         LEFT JOIN events ev ON ev.idx = e.idx \
         WHERE e.submitted_by = $1 AND e.kind IN ('transition', 'event')",
        &tail,
    );
    without_jit(conn, Plan::ForTheValues, |conn| Ok(statement.load(conn)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generic_plan_only_where_no_index_could_serve_a_filter() {
        let plain = DocumentQuery {
            limit: 50,
            ..DocumentQuery::default()
        };
        let role_and_cursor = DocumentQuery {
            role: Some(Role::Shipper),
            after: Some((10, "REF".into())),
            ..plain.clone()
        };
        let status = DocumentQuery {
            status: Some("ISSUED".into()),
            ..plain.clone()
        };
        let cursor = DocumentQuery {
            after: Some((10, "REF".into())),
            ..plain.clone()
        };
        for walk in [Walk::Ledger, Walk::OwnDocuments] {
            assert_eq!(plan_for(walk, &plain), Plan::Generic);
            assert_eq!(plan_for(walk, &cursor), Plan::Generic);
        }
        // Along the party's own rows a role or a state is tested row by row whatever its
        // value; on the ledger walk its rarity decides the plan.
        assert_eq!(
            plan_for(Walk::OwnDocuments, &role_and_cursor),
            Plan::Generic
        );
        assert_eq!(plan_for(Walk::OwnDocuments, &status), Plan::Generic);
        assert_eq!(plan_for(Walk::Ledger, &role_and_cursor), Plan::ForTheValues);
        assert_eq!(plan_for(Walk::Ledger, &status), Plan::ForTheValues);
        let by_index = [
            DocumentQuery {
                vessel: Some("Oceanic Star".into()),
                ..plain.clone()
            },
            DocumentQuery {
                voyage: Some("001W".into()),
                ..plain.clone()
            },
            DocumentQuery {
                port_of_loading: Some("NLRTM".into()),
                ..plain.clone()
            },
            DocumentQuery {
                port_of_discharge: Some("SGSIN".into()),
                ..plain.clone()
            },
            DocumentQuery {
                container: Some("CSQU3054383".into()),
                ..plain.clone()
            },
            DocumentQuery {
                party: Some("bank-harbour".into()),
                ..plain.clone()
            },
            DocumentQuery {
                changed_from: Some(7),
                ..plain.clone()
            },
            DocumentQuery {
                words: vec!["star".into()],
                ..role_and_cursor.clone()
            },
        ];
        for query in &by_index {
            for walk in [Walk::Ledger, Walk::OwnDocuments] {
                assert_eq!(plan_for(walk, query), Plan::ForTheValues, "{query:?}");
            }
        }
    }
}
