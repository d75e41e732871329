//! The write path's queries: one batch per transaction, and the look-ups the sequencer makes
//! before it orders a batch.
//!
//! A batch is written with `COPY` (entries, transitions) and a few set-based statements, inside
//! one transaction committed with `synchronous_commit = on`: when [`append`] returns `Ok`, every
//! row of the batch is on disk. The `ledger_head` row is moved with a compare-and-set, so a
//! second writer on the same database fails instead of interleaving indexes.

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, Bytea, Int8, Text};

use crate::json::JsonText;

use crate::models::{
    AccessRow, BlockRow, CheckpointRow, DocumentHead, DocumentRow, DocumentStateUpdate, EntryRow,
    EventRow, SealedBlockRow, TransitionRow,
};
use crate::schema::{
    blocks, checkpoints, document_access, documents, events, ledger_entries, ledger_head,
    transitions,
};
use crate::StoreError;

/// Everything one batch writes, in one transaction.
#[derive(Debug, Default)]
pub struct AppendBatch {
    /// The ledger size the writer built this batch on.
    pub expected_size: u64,
    pub entries: Vec<EntryRow>,
    pub transitions: Vec<TransitionRow>,
    pub events: Vec<EventRow>,
    /// Documents issued in this batch, with their state at the end of the batch.
    pub new_documents: Vec<DocumentRow>,
    /// What a search filters on, for each document issued in this batch.
    pub new_searchable: Vec<crate::models::DocumentSearchRow>,
    /// Documents that existed before this batch and moved in it (one row per document).
    pub updated_documents: Vec<DocumentStateUpdate>,
    /// Access to documents issued in this batch: new rows, written with COPY.
    pub new_access: Vec<AccessRow>,
    /// Access to documents that existed before: rows that may exist already.
    pub access: Vec<AccessRow>,
    pub sealed_blocks: Vec<SealedBlockRow>,
    /// What this batch's party statements change in `parties`, `party_keys`, `operator_keys`.
    pub membership: Vec<crate::models::MembershipRow>,
}

/// Session settings for the sequencer's connections.
///
/// - Durability is not negotiable: `synchronous_commit = on`.
/// - Custom plans always: diesel prepares its look-ups once (`reference = ANY($1)`, …), and
///   PostgreSQL would otherwise settle on a generic plan made while the tables were small —
///   a sequential scan — and keep it as they grow.
pub fn prepare_writer_session(
    conn: &mut PgConnection,
    application_name: &str,
) -> Result<(), StoreError> {
    Ok(writer_session(conn, application_name)?)
}

/// [`prepare_writer_session`] with diesel's own error (for a pool's connection customizer).
pub(crate) fn writer_session(
    conn: &mut PgConnection,
    application_name: &str,
) -> diesel::QueryResult<()> {
    diesel::sql_query("SELECT set_config('application_name', $1, false)")
        .bind::<Text, _>(application_name)
        .execute(conn)?;
    diesel::sql_query("SET synchronous_commit = on").execute(conn)?;
    diesel::sql_query("SET plan_cache_mode = force_custom_plan").execute(conn)?;
    Ok(())
}

pub fn ledger_size(conn: &mut PgConnection) -> Result<u64, StoreError> {
    let size: i64 = ledger_head::table.select(ledger_head::size).first(conn)?;
    u64::try_from(size).map_err(|_| StoreError::corrupt("ledger_head", "negative size"))
}

/// The ledger's block size: the one stored with it, or — for a ledger that has none yet —
/// `configured`, which is stored now and fixed from then on (a trigger refuses a change). The
/// caller compares the answer with `configured`.
pub fn claim_block_size(conn: &mut PgConnection, configured: u64) -> Result<u64, StoreError> {
    let configured = i32::try_from(configured)
        .map_err(|_| StoreError::corrupt("ledger_head", "block size beyond 2^31"))?;
    diesel::update(ledger_head::table)
        .filter(ledger_head::block_size.is_null())
        .set(ledger_head::block_size.eq(configured))
        .execute(conn)?;
    let stored: Option<i32> = ledger_head::table
        .select(ledger_head::block_size)
        .first(conn)?;
    stored
        .and_then(|b| u64::try_from(b).ok())
        .ok_or_else(|| StoreError::corrupt("ledger_head", "no block size"))
}

/// The ledger's block size as stored with it (`None` before the registry first started), for
/// readers that rebuild its trees.
pub fn block_size(conn: &mut PgConnection) -> Result<Option<u64>, StoreError> {
    let stored: Option<i32> = ledger_head::table
        .select(ledger_head::block_size)
        .first(conn)?;
    Ok(stored.and_then(|b| u64::try_from(b).ok()))
}

/// Writes a batch durably, or nothing at all.
pub fn append(conn: &mut PgConnection, batch: &AppendBatch) -> Result<(), StoreError> {
    let new_size = batch.expected_size + batch.entries.len() as u64;
    conn.transaction::<_, StoreError, _>(|conn| {
        let moved = diesel::update(ledger_head::table)
            .filter(ledger_head::size.eq(to_i64(batch.expected_size)))
            .set(ledger_head::size.eq(to_i64(new_size)))
            .execute(conn)?;
        if moved != 1 {
            let found = ledger_size(conn)?;
            return Err(StoreError::HeadMoved {
                expected: batch.expected_size,
                found,
            });
        }
        if !batch.entries.is_empty() {
            diesel::copy_from(ledger_entries::table)
                .from_insertable(&batch.entries)
                .execute(conn)?;
        }
        if !batch.new_documents.is_empty() {
            diesel::copy_from(documents::table)
                .from_insertable(&batch.new_documents)
                .execute(conn)?;
        }
        if !batch.new_searchable.is_empty() {
            diesel::copy_from(crate::schema::document_search::table)
                .from_insertable(&batch.new_searchable)
                .execute(conn)?;
        }
        if !batch.transitions.is_empty() {
            diesel::copy_from(transitions::table)
                .from_insertable(&batch.transitions)
                .execute(conn)?;
        }
        if !batch.events.is_empty() {
            diesel::copy_from(events::table)
                .from_insertable(&batch.events)
                .execute(conn)?;
        }
        if !batch.updated_documents.is_empty() {
            update_documents(conn, &batch.updated_documents)?;
            move_access(conn, &batch.updated_documents)?;
        }
        if !batch.new_access.is_empty() {
            diesel::copy_from(document_access::table)
                .from_insertable(&batch.new_access)
                .execute(conn)?;
        }
        if !batch.access.is_empty() {
            grant_access(conn, &batch.access)?;
        }
        if !batch.sealed_blocks.is_empty() {
            diesel::insert_into(blocks::table)
                .values(&batch.sealed_blocks)
                .execute(conn)?;
        }
        crate::parties::apply(conn, &batch.membership)?;
        Ok(())
    })
}

/// Access rows that may exist already (a party named again later in a chain). One statement
/// with array parameters, rather than a VALUES list PostgreSQL would parse and plan anew for
/// every batch size. A row that exists was moved to the document's new head by
/// [`move_access`], which runs first.
fn grant_access(conn: &mut PgConnection, access: &[AccessRow]) -> Result<(), StoreError> {
    let documents: Vec<&str> = access.iter().map(|a| a.document_ref.as_str()).collect();
    let parties: Vec<&str> = access.iter().map(|a| a.party_id.as_str()).collect();
    let heads: Vec<i64> = access.iter().map(|a| a.head_idx).collect();
    diesel::sql_query(
        "INSERT INTO document_access (document_ref, party_id, head_idx) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::int8[]) ON CONFLICT DO NOTHING",
    )
    .bind::<Array<Text>, _>(documents)
    .bind::<Array<Text>, _>(parties)
    .bind::<Array<Int8>, _>(heads)
    .execute(conn)?;
    Ok(())
}

/// Every access row of the moved documents follows its document's head, so that each party's
/// documents stay ordered by their last change (`document_access_recent`, which a page of
/// `GET /v1/documents` reads). Found by the primary key's leading `document_ref`.
fn move_access(conn: &mut PgConnection, moved: &[DocumentStateUpdate]) -> Result<(), StoreError> {
    let references: Vec<&str> = moved.iter().map(|u| u.reference.as_str()).collect();
    let heads: Vec<i64> = moved.iter().map(|u| u.head_idx).collect();
    diesel::sql_query(
        "UPDATE document_access AS a SET head_idx = v.head_idx \
         FROM unnest($1::text[], $2::int8[]) AS v(reference, head_idx) \
         WHERE a.document_ref = v.reference",
    )
    .bind::<Array<Text>, _>(references)
    .bind::<Array<Int8>, _>(heads)
    .execute(conn)?;
    Ok(())
}

/// One set-based UPDATE for all moved documents, instead of a round trip per document.
fn update_documents(
    conn: &mut PgConnection,
    updates: &[DocumentStateUpdate],
) -> Result<(), StoreError> {
    let references: Vec<&str> = updates.iter().map(|u| u.reference.as_str()).collect();
    let statuses: Vec<&str> = updates.iter().map(|u| u.status.as_str()).collect();
    let possessors: Vec<&str> = updates.iter().map(|u| u.possessor.as_str()).collect();
    let heads: Vec<&[u8]> = updates.iter().map(|u| u.head_checksum.as_slice()).collect();
    let head_idxs: Vec<i64> = updates.iter().map(|u| u.head_idx).collect();
    let states: Vec<&JsonText> = updates.iter().map(|u| &u.state).collect();
    let updated = diesel::sql_query(
        "UPDATE documents AS d SET status = v.status, possessor = v.possessor, \
         head_checksum = v.head_checksum, head_idx = v.head_idx, state = v.state \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::int8[], $6::text[]) \
         AS v(reference, status, possessor, head_checksum, head_idx, state) \
         WHERE d.reference = v.reference",
    )
    .bind::<Array<Text>, _>(references)
    .bind::<Array<Text>, _>(statuses)
    .bind::<Array<Text>, _>(possessors)
    .bind::<Array<Bytea>, _>(heads)
    .bind::<Array<Int8>, _>(head_idxs)
    .bind::<Array<Text>, _>(states)
    .execute(conn)?;
    if updated != updates.len() {
        return Err(StoreError::corrupt(
            "documents",
            format!(
                "expected to move {} documents, moved {updated}",
                updates.len()
            ),
        ));
    }
    Ok(())
}

/// An entry already on the ledger: what an exact resubmission answers once its leaf hash
/// matches.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ledger_entries)]
pub struct ExistingEntry {
    pub idx: i64,
    pub leaf_hash: Vec<u8>,
    pub kind: String,
    pub document_ref: Option<String>,
    pub submitted_by: Option<String>,
}

/// The transitions of these documents with these checksums (SHA-256 of their signed bytes),
/// through the `(document_ref, …)` index; the caller matches exact pairs by leaf hash.
pub fn transitions_by_checksum(
    conn: &mut PgConnection,
    documents: &[&str],
    checksums: &[Vec<u8>],
) -> Result<Vec<ExistingEntry>, StoreError> {
    if checksums.is_empty() {
        return Ok(Vec::new());
    }
    Ok(ledger_entries::table
        .inner_join(transitions::table)
        .filter(transitions::document_ref.eq_any(documents))
        .filter(transitions::checksum.eq_any(checksums))
        .select(ExistingEntry::as_select())
        .load(conn)?)
}

/// The events `actor` reported with one of these ids, through `events (actor, event_id)`.
pub fn events_by_id(
    conn: &mut PgConnection,
    actor: &str,
    event_ids: &[&str],
) -> Result<Vec<ExistingEntry>, StoreError> {
    if event_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(ledger_entries::table
        .inner_join(events::table)
        .filter(events::actor.eq(actor))
        .filter(events::event_id.eq_any(event_ids))
        .select(ExistingEntry::as_select())
        .load(conn)?)
}

/// The party statements with these leaf hashes (resubmissions of statements on the ledger).
pub fn party_statements_by_leaf(
    conn: &mut PgConnection,
    leaves: &[Vec<u8>],
) -> Result<Vec<ExistingEntry>, StoreError> {
    if leaves.is_empty() {
        return Ok(Vec::new());
    }
    Ok(ledger_entries::table
        .filter(ledger_entries::leaf_hash.eq_any(leaves))
        .filter(ledger_entries::kind.eq("party"))
        .select(ExistingEntry::as_select())
        .load(conn)?)
}

/// Every party statement, oldest first: the ledger's changes to the membership.
pub fn party_statements(conn: &mut PgConnection) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
    Ok(ledger_entries::table
        .filter(ledger_entries::kind.eq("party"))
        .order(ledger_entries::idx.asc())
        .select((ledger_entries::idx, ledger_entries::signed))
        .load(conn)?)
}

/// The sequencer's view of these documents, for those that exist.
pub fn document_heads(
    conn: &mut PgConnection,
    references: &[&str],
) -> Result<Vec<DocumentHead>, StoreError> {
    if references.is_empty() {
        return Ok(Vec::new());
    }
    Ok(documents::table
        .filter(documents::reference.eq_any(references))
        .select(DocumentHead::as_select())
        .load(conn)?)
}

/// Whether `checksum` names a transition of `reference` (used to tell a double spend from a
/// transition that names an unknown parent).
pub fn is_transition_of(
    conn: &mut PgConnection,
    reference: &str,
    checksum: &[u8],
) -> Result<bool, StoreError> {
    use diesel::dsl::exists;
    Ok(diesel::select(exists(
        transitions::table
            .filter(transitions::document_ref.eq(reference))
            .filter(transitions::checksum.eq(checksum)),
    ))
    .get_result(conn)?)
}

/// Whether `party` is named in document `reference` or its chain (`document_access`).
pub fn is_named_in(
    conn: &mut PgConnection,
    reference: &str,
    party: &str,
) -> Result<bool, StoreError> {
    use diesel::dsl::exists;
    Ok(diesel::select(exists(
        document_access::table
            .filter(document_access::document_ref.eq(reference))
            .filter(document_access::party_id.eq(party)),
    ))
    .get_result(conn)?)
}

/// Whether `actor` already has an event with this id on the ledger.
pub fn event_id_taken(
    conn: &mut PgConnection,
    actor: &str,
    event_id: &str,
) -> Result<bool, StoreError> {
    use diesel::dsl::exists;
    Ok(diesel::select(exists(
        events::table
            .filter(events::actor.eq(actor))
            .filter(events::event_id.eq(event_id)),
    ))
    .get_result(conn)?)
}

/// Roots of all sealed blocks, in order.
pub fn block_roots(conn: &mut PgConnection) -> Result<Vec<BlockRow>, StoreError> {
    block_roots_from(conn, 0)
}

/// The sealed blocks from block `first` on, in order (a reader that holds the earlier ones).
pub fn block_roots_from(conn: &mut PgConnection, first: u64) -> Result<Vec<BlockRow>, StoreError> {
    Ok(blocks::table
        .filter(blocks::block_no.ge(to_i64(first)))
        .order(blocks::block_no.asc())
        .select(BlockRow::as_select())
        .load(conn)?)
}

/// Leaf hashes of entries `[from, to)`, in order.
pub fn leaf_hashes(
    conn: &mut PgConnection,
    from: u64,
    to: u64,
) -> Result<Vec<Vec<u8>>, StoreError> {
    Ok(ledger_entries::table
        .filter(ledger_entries::idx.ge(to_i64(from)))
        .filter(ledger_entries::idx.lt(to_i64(to)))
        .order(ledger_entries::idx.asc())
        .select(ledger_entries::leaf_hash)
        .load(conn)?)
}

/// The leaf hashes kept with sealed blocks (32 bytes each, in order), for those of `blocks`
/// that have them (blocks sealed before they were kept have none).
pub fn sealed_block_leaves(
    conn: &mut PgConnection,
    blocks: &[u64],
) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
    let wanted: Vec<i64> = blocks.iter().map(|b| to_i64(*b)).collect();
    Ok(blocks::table
        .filter(blocks::block_no.eq_any(wanted))
        .filter(blocks::leaves.is_not_null())
        .select((blocks::block_no, blocks::leaves.assume_not_null()))
        .load(conn)?)
}

/// Leaf hashes of several ranges `[from, to)` in one query, in the order given: one index
/// range scan per range.
pub fn leaf_hashes_of_ranges(
    conn: &mut PgConnection,
    ranges: &[(u64, u64)],
) -> Result<Vec<Vec<Vec<u8>>>, StoreError> {
    let mut held = crate::replica::leaves_in_ranges(conn, "ledger_entries", "leaf_hash", ranges)?;
    ranges
        .iter()
        .map(|(from, to)| {
            (*from..*to)
                .map(|idx| {
                    held.remove(&to_i64(idx)).ok_or_else(|| {
                        StoreError::corrupt("ledger_entries", format!("entry {idx} is missing"))
                    })
                })
                .collect()
        })
        .collect()
}

pub fn entry(conn: &mut PgConnection, idx: u64) -> Result<Option<EntryRow>, StoreError> {
    Ok(ledger_entries::table
        .find(to_i64(idx))
        .select(EntryRow::as_select())
        .first(conn)
        .optional()?)
}

/// Stores a signed checkpoint and answers the row now stored for its size: `row` itself, or
/// the checkpoint of that size stored before (say, by an attempt whose answer was lost). Only
/// the answer may be published: it is the signature the registry will show again.
pub fn insert_checkpoint(
    conn: &mut PgConnection,
    row: &CheckpointRow,
) -> Result<CheckpointRow, StoreError> {
    let inserted = diesel::insert_into(checkpoints::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(conn)?;
    if inserted == 1 {
        return Ok(row.clone());
    }
    let size = u64::try_from(row.size).unwrap_or(0);
    checkpoint_at(conn, size)?.ok_or_else(|| {
        StoreError::corrupt(
            "checkpoints",
            format!("the checkpoint of size {size} was neither inserted nor found"),
        )
    })
}

pub fn latest_checkpoint(conn: &mut PgConnection) -> Result<Option<CheckpointRow>, StoreError> {
    Ok(checkpoints::table
        .order(checkpoints::size.desc())
        .select(CheckpointRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn checkpoint_at(
    conn: &mut PgConnection,
    size: u64,
) -> Result<Option<CheckpointRow>, StoreError> {
    Ok(checkpoints::table
        .find(to_i64(size))
        .select(CheckpointRow::as_select())
        .first(conn)
        .optional()?)
}

/// Checkpoints of size above `after`, smallest first, at most `limit`.
pub fn checkpoints_after(
    conn: &mut PgConnection,
    after: u64,
    limit: i64,
) -> Result<Vec<CheckpointRow>, StoreError> {
    Ok(checkpoints::table
        .filter(checkpoints::size.gt(to_i64(after)))
        .order(checkpoints::size.asc())
        .limit(limit)
        .select(CheckpointRow::as_select())
        .load(conn)?)
}

/// Indexes are u64 in the domain and BIGINT in PostgreSQL; a ledger never reaches 2^63 entries.
/// The one conversion, for every crate that writes an index or a size to a column.
pub fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// What the sequencer needs to judge a shipment event about a document.
#[derive(Debug, Clone)]
pub struct EventContext {
    /// The signed ISSUE, which carries the transport document.
    pub issue: Vec<u8>,
    /// Every party the document or its chain has named.
    pub parties: Vec<String>,
}

pub fn event_context(
    conn: &mut PgConnection,
    reference: &str,
) -> Result<Option<EventContext>, StoreError> {
    let Some(issued_idx) = documents::table
        .find(reference)
        .select(documents::issued_idx)
        .first::<i64>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let issue: Vec<u8> = ledger_entries::table
        .find(issued_idx)
        .select(ledger_entries::signed)
        .first(conn)?;
    let parties = document_access::table
        .filter(document_access::document_ref.eq(reference))
        .select(document_access::party_id)
        .load(conn)?;
    Ok(Some(EventContext { issue, parties }))
}

/// [`checkpoints_after`], of size at most `bound` (a hot standby's, `crate::standby`).
pub fn checkpoints_after_upto(
    conn: &mut PgConnection,
    after: u64,
    limit: i64,
    bound: u64,
) -> Result<Vec<CheckpointRow>, StoreError> {
    Ok(checkpoints::table
        .filter(checkpoints::size.gt(to_i64(after)))
        .filter(checkpoints::size.le(to_i64(bound)))
        .order(checkpoints::size.asc())
        .limit(limit)
        .select(CheckpointRow::as_select())
        .load(conn)?)
}
