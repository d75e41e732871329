//! What parties read: documents they are entitled to, and their chains.
//!
//! Entitlement is decided in the query, so a document a party may not see is never loaded for
//! it: the carrier, shipper, consignee, notify parties and everyone the chain named are in
//! `document_access`; a customs authority sees documents whose port of loading or discharge is
//! in its jurisdiction.

use diesel::pg::PgConnection;
use diesel::prelude::*;

use crate::models::{DocumentRow, EntryRow, TransitionRow};
use diesel::sql_types::Text;

use crate::schema::{events, ledger_entries, transitions};
use crate::StoreError;

/// The ports of party `$1`'s jurisdiction when it is a customs authority, else NULL: an
/// uncorrelated subquery, so PostgreSQL looks it up once per statement, not once per row. Uses
/// the alias `p`.
macro_rules! jurisdiction {
    () => {
        "CAST((SELECT p.ports FROM parties p \
               WHERE p.id = $1 AND p.role = 'customs_authority') AS text[])"
    };
}

pub(crate) use jurisdiction;

/// Whether party `$1` may read the document whose reference is the SQL expression `$document`:
/// named in it or its chain, or the customs authority of its port of loading or discharge (the
/// rule of [`document_for_party`]). The expression must not use the aliases `a`, `d` and `p`
/// this one does: `d.reference` would name the inner row and make the rule true for any
/// document in the authority's ports.
///
/// Written so that it costs one or two index probes per row, whatever the party holds: the
/// `OFFSET 0` keeps PostgreSQL from turning each `EXISTS` into a hashed subplan, which reads
/// the party's whole `document_access` (or the whole `documents` table, for customs) on every
/// execution — per page of the feed or of a subscription, that grew with the ledger. The
/// party's [`jurisdiction!`] is looked up once per statement, and a party that has none skips
/// the documents probe.
macro_rules! may_read {
    ($document:literal) => {
        concat!(
            "(EXISTS (SELECT 1 FROM document_access a WHERE a.document_ref = ",
            $document,
            " AND a.party_id = $1 OFFSET 0) OR (COALESCE(cardinality(",
            $crate::reads::jurisdiction!(),
            "), 0) > 0 AND EXISTS (SELECT 1 FROM documents d WHERE d.reference = ",
            $document,
            " AND (d.port_of_loading = ANY(",
            $crate::reads::jurisdiction!(),
            ") OR d.port_of_discharge = ANY(",
            $crate::reads::jurisdiction!(),
            ")) OFFSET 0)))"
        )
    };
}

pub(crate) use may_read;

/// [`may_read!`] for a `documents` row at hand, `$doc` (its alias): the same rule, with the
/// party's [`jurisdiction!`] looked up once per statement. A page of `GET /v1/documents` tests
/// hundreds of rows.
macro_rules! may_read_row {
    ($doc:literal) => {
        concat!(
            "(EXISTS (SELECT 1 FROM document_access a WHERE a.document_ref = ",
            $doc,
            ".reference AND a.party_id = $1) OR ",
            $doc,
            ".port_of_loading = ANY(",
            $crate::reads::jurisdiction!(),
            ") OR ",
            $doc,
            ".port_of_discharge = ANY(",
            $crate::reads::jurisdiction!(),
            "))"
        )
    };
}

pub(crate) use may_read_row;

/// The document, if it exists and `party` is entitled to it. `None` for both "no such
/// document" and "not yours", so a caller cannot tell them apart. The rule is `may_read!`'s,
/// the one every read of a document uses (this, the feed, and the search of
/// [`crate::search`]).
pub fn document_for_party(
    conn: &mut PgConnection,
    reference: &str,
    party: &str,
) -> Result<Option<DocumentRow>, StoreError> {
    Ok(diesel::sql_query(concat!(
        "SELECT doc.reference, doc.checksum, doc.carrier, doc.port_of_loading, \
                doc.port_of_discharge, doc.status, doc.possessor, doc.head_checksum, \
                doc.head_idx, doc.issued_idx, doc.state \
         FROM documents doc WHERE doc.reference = $2 AND ",
        may_read!("doc.reference")
    ))
    .bind::<Text, _>(party)
    .bind::<Text, _>(reference)
    .get_result(conn)
    .optional()?)
}

/// The signed chain of a document, oldest first.
pub fn chain(
    conn: &mut PgConnection,
    reference: &str,
) -> Result<Vec<(EntryRow, TransitionRow)>, StoreError> {
    Ok(ledger_entries::table
        .inner_join(transitions::table)
        .filter(transitions::document_ref.eq(reference))
        .order(ledger_entries::idx.asc())
        .select((EntryRow::as_select(), TransitionRow::as_select()))
        .load(conn)?)
}

/// Shipment events tied to a document, oldest first.
pub fn document_events(
    conn: &mut PgConnection,
    reference: &str,
) -> Result<Vec<EntryRow>, StoreError> {
    Ok(ledger_entries::table
        .inner_join(events::table)
        .filter(events::document_ref.eq(reference))
        .order(ledger_entries::idx.asc())
        .select(EntryRow::as_select())
        .load(conn)?)
}

/// One entry of the replication feed as one party may receive it: the signed bytes only when
/// the party is entitled to them, otherwise the leaf hash alone.
#[derive(Debug, Clone, QueryableByName)]
pub struct FeedEntry {
    #[diesel(sql_type = diesel::sql_types::Int8)]
    pub idx: i64,
    #[diesel(sql_type = diesel::sql_types::Bytea)]
    pub leaf_hash: Vec<u8>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Bytea>)]
    pub signed: Option<Vec<u8>>,
}

/// Whether party `$1` is entitled to the entry `e` of `ledger_entries` (see [`feed_for_party`]):
/// a party statement (public to every member), an entry it signed, or one of a document it may
/// read.
macro_rules! entitled {
    () => {
        concat!(
            "(e.kind = 'party' OR e.actor = $1 OR ",
            may_read!("e.document_ref"),
            ")"
        )
    };
}

pub(crate) use entitled;

/// An entry as `$1` may receive it (see [`feed_for_party`]).
const FEED_SELECT: &str = concat!(
    "SELECT e.idx, e.leaf_hash, CASE WHEN ",
    entitled!(),
    " THEN e.signed END AS signed FROM ledger_entries e"
);

/// One entry as one party may read it by its index: everything when the party is entitled to
/// it, otherwise the leaf hash alone (kind and time would tell what and when).
#[derive(Debug, Clone, QueryableByName)]
pub struct EntryForParty {
    #[diesel(sql_type = diesel::sql_types::Int8)]
    pub idx: i64,
    #[diesel(sql_type = diesel::sql_types::Bytea)]
    pub leaf_hash: Vec<u8>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Bytea>)]
    pub signed: Option<Vec<u8>>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub kind: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    pub received_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Who handed the entry in (NULL too for entries without a submitting party).
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub submitted_by: Option<String>,
}

/// Entry `index` for `party`, by the rule of [`feed_for_party`]; `None` past the ledger's end.
pub fn entry_for_party(
    conn: &mut PgConnection,
    party: &str,
    index: u64,
) -> Result<Option<EntryForParty>, StoreError> {
    let Ok(index) = i64::try_from(index) else {
        return Ok(None);
    };
    Ok(diesel::sql_query(concat!(
        "SELECT e.idx, e.leaf_hash, \
                CASE WHEN ent.yes THEN e.signed END AS signed, \
                CASE WHEN ent.yes THEN e.kind END AS kind, \
                CASE WHEN ent.yes THEN e.received_at END AS received_at, \
                CASE WHEN ent.yes THEN e.submitted_by END AS submitted_by \
         FROM ledger_entries e CROSS JOIN LATERAL (SELECT ",
        entitled!(),
        " AS yes) ent WHERE e.idx = $2"
    ))
    .bind::<Text, _>(party)
    .bind::<diesel::sql_types::Int8, _>(index)
    .get_result(conn)
    .optional()?)
}

/// Whether party `$1` may read document `$2`.
const MAY_READ_DOCUMENT: &str = may_read!("$2");

/// Entries `[from, from + limit)` for `party`, in index order.
///
/// Every member receives party statements in full. A party is entitled to an entry it signed
/// itself, and to every entry of a document it may
/// read (the same rule as [`document_for_party`]: named in the document or its chain, or the
/// customs authority of its port of loading or discharge). Entitlement is decided per read, so
/// a party that joins a document's chain later receives its earlier entries in full from then
/// on. An event tied only to a container is full to its actor alone.
pub fn feed_for_party(
    conn: &mut PgConnection,
    party: &str,
    from: u64,
    limit: u64,
) -> Result<Vec<FeedEntry>, StoreError> {
    // Past i64::MAX there is nothing to read.
    let from = i64::try_from(from).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    Ok(diesel::sql_query(format!(
        "{FEED_SELECT} WHERE e.idx >= $2 ORDER BY e.idx LIMIT $3"
    ))
    .bind::<Text, _>(party)
    .bind::<diesel::sql_types::Int8, _>(from)
    .bind::<diesel::sql_types::Int8, _>(limit)
    .load(conn)?)
}

/// Whether one party is entitled to one entry (see [`entitlements`]).
#[derive(Debug, Clone, Copy, QueryableByName)]
pub struct Entitlement {
    #[diesel(sql_type = diesel::sql_types::Int8)]
    pub idx: i64,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub yes: bool,
}

/// Whether `party` is entitled to each of the entries `[from, from + limit)`, by the rule of
/// [`feed_for_party`], without reading the entries themselves: the webhook deliverer asks this
/// for each subscription and reads each entry once for all of them ([`signed_entries`]).
pub fn entitlements(
    conn: &mut PgConnection,
    party: &str,
    from: u64,
    limit: u64,
) -> Result<Vec<Entitlement>, StoreError> {
    let from = i64::try_from(from).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    Ok(diesel::sql_query(concat!(
        "SELECT e.idx, ",
        entitled!(),
        " AS yes FROM ledger_entries e WHERE e.idx >= $2 ORDER BY e.idx LIMIT $3"
    ))
    .bind::<Text, _>(party)
    .bind::<diesel::sql_types::Int8, _>(from)
    .bind::<diesel::sql_types::Int8, _>(limit)
    .load(conn)?)
}

/// An entry's index, leaf hash and signed bytes (see [`signed_entries`]).
pub type SignedEntry = (i64, Vec<u8>, Vec<u8>);

/// The entries at `indices`, whole, with no regard to who may read them: only for a caller that
/// decided that already ([`entitlements`]). In index order.
pub fn signed_entries(
    conn: &mut PgConnection,
    indices: &[u64],
) -> Result<Vec<SignedEntry>, StoreError> {
    let indices: Vec<i64> = indices.iter().map(|i| crate::ledger::to_i64(*i)).collect();
    Ok(ledger_entries::table
        .filter(ledger_entries::idx.eq_any(indices))
        .order(ledger_entries::idx)
        .select((
            ledger_entries::idx,
            ledger_entries::leaf_hash,
            ledger_entries::signed,
        ))
        .load(conn)?)
}

/// The entries at `indices` for `party`, by the same rule as [`feed_for_party`] (the originals
/// that reconciliation puts back into a replica).
pub fn feed_at(
    conn: &mut PgConnection,
    party: &str,
    indices: &[u64],
) -> Result<Vec<FeedEntry>, StoreError> {
    let indices: Vec<i64> = indices.iter().map(|i| crate::ledger::to_i64(*i)).collect();
    Ok(diesel::sql_query(format!(
        "{FEED_SELECT} WHERE e.idx = ANY($2) ORDER BY e.idx"
    ))
    .bind::<Text, _>(party)
    .bind::<diesel::sql_types::Array<diesel::sql_types::Int8>, _>(indices)
    .load(conn)?)
}

/// The transitions of one document for `party`, by the same rule as [`feed_for_party`], in
/// index order: what a replica back-fills when its party joined the chain late, read in
/// proportion to the document rather than to the ledger.
///
/// Only a party that may read the document gets anything: for any other the answer is the
/// empty list, exactly as for a document that does not exist (nothing about its existence,
/// length or timing leaks).
pub fn feed_of_document(
    conn: &mut PgConnection,
    party: &str,
    reference: &str,
) -> Result<Vec<FeedEntry>, StoreError> {
    Ok(diesel::sql_query(format!(
        "{FEED_SELECT} WHERE e.idx IN (SELECT t.idx FROM transitions t WHERE t.document_ref = $2) \
           AND {MAY_READ_DOCUMENT} \
         ORDER BY e.idx"
    ))
    .bind::<Text, _>(party)
    .bind::<Text, _>(reference)
    .load(conn)?)
}

/// The transitions and shipment events of `[from, to)` that `party` is entitled to by the rule
/// of [`feed_for_party`], at most `limit` of them from `from` on, in index order: what a customs
/// export from the registry holds (party statements are the consortium's, not a document's).
pub fn entitled_statements(
    conn: &mut PgConnection,
    party: &str,
    from: u64,
    to: u64,
    limit: u64,
) -> Result<Vec<FeedEntry>, StoreError> {
    Ok(diesel::sql_query(concat!(
        "SELECT e.idx, e.leaf_hash, e.signed FROM ledger_entries e \
         WHERE e.idx >= $2 AND e.idx < $3 AND e.kind IN ('transition', 'event') AND ",
        entitled!(),
        " ORDER BY e.idx LIMIT $4"
    ))
    .bind::<Text, _>(party)
    .bind::<diesel::sql_types::Int8, _>(crate::ledger::to_i64(from))
    .bind::<diesel::sql_types::Int8, _>(crate::ledger::to_i64(to))
    .bind::<diesel::sql_types::Int8, _>(crate::ledger::to_i64(limit))
    .load(conn)?)
}

/// The transitions of document `reference` below index `before`, oldest first, as signed: the
/// ISSUE and earlier state an export needs for a document whose range starts mid-chain.
pub fn chain_before(
    conn: &mut PgConnection,
    reference: &str,
    before: u64,
) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
    Ok(ledger_entries::table
        .inner_join(transitions::table)
        .filter(transitions::document_ref.eq(reference))
        .filter(ledger_entries::idx.lt(crate::ledger::to_i64(before)))
        .order(ledger_entries::idx.asc())
        .select((ledger_entries::idx, ledger_entries::signed))
        .load(conn)?)
}

// Reads bounded by an index, for a hot standby (`crate::standby`): each reads nothing at or
// past the index it is given.

/// [`feed_for_party`], with entries below `bound` only.
pub fn feed_for_party_below(
    conn: &mut PgConnection,
    party: &str,
    from: u64,
    limit: u64,
    bound: u64,
) -> Result<Vec<FeedEntry>, StoreError> {
    let from = i64::try_from(from).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    Ok(diesel::sql_query(format!(
        "{FEED_SELECT} WHERE e.idx >= $2 AND e.idx < $4 ORDER BY e.idx LIMIT $3"
    ))
    .bind::<Text, _>(party)
    .bind::<diesel::sql_types::Int8, _>(from)
    .bind::<diesel::sql_types::Int8, _>(limit)
    .bind::<diesel::sql_types::Int8, _>(crate::ledger::to_i64(bound))
    .load(conn)?)
}

/// [`feed_of_document`], with the document's transitions up to index `upto` only.
pub fn feed_of_document_upto(
    conn: &mut PgConnection,
    party: &str,
    reference: &str,
    upto: i64,
) -> Result<Vec<FeedEntry>, StoreError> {
    Ok(diesel::sql_query(format!(
        "{FEED_SELECT} WHERE e.idx IN (SELECT t.idx FROM transitions t WHERE t.document_ref = $2 \
                                         AND t.idx <= $3) \
           AND {MAY_READ_DOCUMENT} \
         ORDER BY e.idx"
    ))
    .bind::<Text, _>(party)
    .bind::<Text, _>(reference)
    .bind::<diesel::sql_types::Int8, _>(upto)
    .load(conn)?)
}

/// [`chain`], up to index `upto` (the document's head as the primary has it).
pub fn chain_upto(
    conn: &mut PgConnection,
    reference: &str,
    upto: i64,
) -> Result<Vec<(EntryRow, TransitionRow)>, StoreError> {
    Ok(ledger_entries::table
        .inner_join(transitions::table)
        .filter(transitions::document_ref.eq(reference))
        .filter(ledger_entries::idx.le(upto))
        .order(ledger_entries::idx.asc())
        .select((EntryRow::as_select(), TransitionRow::as_select()))
        .load(conn)?)
}

/// [`document_events`], up to index `upto`.
pub fn document_events_upto(
    conn: &mut PgConnection,
    reference: &str,
    upto: i64,
) -> Result<Vec<EntryRow>, StoreError> {
    Ok(ledger_entries::table
        .inner_join(events::table)
        .filter(events::document_ref.eq(reference))
        .filter(ledger_entries::idx.le(upto))
        .order(ledger_entries::idx.asc())
        .select(EntryRow::as_select())
        .load(conn)?)
}

/// The index of the latest shipment event tied to a document (one probe of the index
/// `events_document`); `None` without one.
pub fn latest_event_index(
    conn: &mut PgConnection,
    reference: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(events::table
        .filter(events::document_ref.eq(reference))
        .select(diesel::dsl::max(events::idx))
        .first(conn)?)
}

/// The head index of a document (its latest transition), on the primary: whether a read of it
/// can be answered below a standby's bound.
pub fn document_head(conn: &mut PgConnection, reference: &str) -> Result<Option<i64>, StoreError> {
    use crate::schema::documents;
    Ok(documents::table
        .find(reference)
        .select(documents::head_idx)
        .first(conn)
        .optional()?)
}
