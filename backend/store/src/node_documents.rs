//! A node's documents as the portal lists and searches them: one row per document whose chain
//! the node verified whole (`node_documents`), derived from its entries and its verified
//! state — never the source of truth. The node keeps it in the transaction that keeps the
//! entries, and makes it again from the verified chains when it restores itself
//! (`lading_replica::projection`).
//!
//! The list reads it with keyset pagination (never `OFFSET`): each page starts after the last
//! row of the one before, by the sort key and the reference, so a page costs the same on the
//! first page as on the thousandth.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::dsl::sql;
use diesel::pg::{Pg, PgConnection};
use diesel::prelude::*;
use diesel::sql_types::{Bool, Integer, Text, Timestamptz};

use crate::schema::node_documents;
use crate::StoreError;

/// One document as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = node_documents, primary_key(reference), treat_none_as_null = true)]
pub struct NodeDocumentRow {
    pub reference: String,
    pub state: String,
    pub type_code: String,
    pub is_to_order: bool,
    pub carrier: String,
    pub shipper: String,
    pub consignee: Option<String>,
    pub notify_parties: Vec<Option<String>>,
    pub possessor: String,
    pub endorsee: Option<String>,
    pub vessel: String,
    pub voyage: String,
    pub port_of_loading: String,
    pub port_of_discharge: String,
    pub containers: Vec<Option<String>>,
    pub party_roles: Vec<Option<String>>,
    pub issue_date: NaiveDate,
    pub issued_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub issued_index: i64,
    pub last_index: i64,
    pub last_action: String,
    pub last_actor: String,
    pub length: i64,
    pub head: Vec<u8>,
    pub search: String,
}

/// Writes a document's whole row (its ISSUE, or a row made again), over the one held.
pub fn upsert(conn: &mut PgConnection, row: &NodeDocumentRow) -> Result<(), StoreError> {
    diesel::insert_into(node_documents::table)
        .values(row)
        .on_conflict(node_documents::reference)
        .do_update()
        .set(row)
        .execute(conn)?;
    Ok(())
}

/// Writes whole rows, each over the one held (a page's changes, in one statement).
pub fn upsert_many(conn: &mut PgConnection, rows: &[NodeDocumentRow]) -> Result<(), StoreError> {
    use diesel::upsert::excluded;
    use node_documents as d;
    for chunk in rows.chunks(500) {
        diesel::insert_into(d::table)
            .values(chunk)
            .on_conflict(d::reference)
            .do_update()
            .set((
                (
                    d::state.eq(excluded(d::state)),
                    d::type_code.eq(excluded(d::type_code)),
                    d::is_to_order.eq(excluded(d::is_to_order)),
                    d::carrier.eq(excluded(d::carrier)),
                    d::shipper.eq(excluded(d::shipper)),
                    d::consignee.eq(excluded(d::consignee)),
                    d::notify_parties.eq(excluded(d::notify_parties)),
                    d::possessor.eq(excluded(d::possessor)),
                    d::endorsee.eq(excluded(d::endorsee)),
                    d::vessel.eq(excluded(d::vessel)),
                    d::voyage.eq(excluded(d::voyage)),
                    d::port_of_loading.eq(excluded(d::port_of_loading)),
                ),
                (
                    d::port_of_discharge.eq(excluded(d::port_of_discharge)),
                    d::containers.eq(excluded(d::containers)),
                    d::party_roles.eq(excluded(d::party_roles)),
                    d::issue_date.eq(excluded(d::issue_date)),
                    d::issued_at.eq(excluded(d::issued_at)),
                    d::updated_at.eq(excluded(d::updated_at)),
                    d::issued_index.eq(excluded(d::issued_index)),
                    d::last_index.eq(excluded(d::last_index)),
                    d::last_action.eq(excluded(d::last_action)),
                    d::last_actor.eq(excluded(d::last_actor)),
                    d::length.eq(excluded(d::length)),
                    d::head.eq(excluded(d::head)),
                    d::search.eq(excluded(d::search)),
                ),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The rows of `references` held (in no particular order).
pub fn get_many(
    conn: &mut PgConnection,
    references: &[String],
) -> Result<Vec<NodeDocumentRow>, StoreError> {
    Ok(node_documents::table
        .filter(node_documents::reference.eq_any(references))
        .select(NodeDocumentRow::as_select())
        .load(conn)?)
}

/// Takes a document out of the list (its chain is no longer one the node can vouch for).
pub fn remove(conn: &mut PgConnection, references: &[String]) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(node_documents::table.filter(node_documents::reference.eq_any(references)))
            .execute(conn)?,
    )
}

/// What a restore compares of a row with the chain it verified.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct Head {
    pub reference: String,
    pub length: i64,
    pub head: Vec<u8>,
}

/// Every row's reference, chain length and head: what a restore compares with the chains it
/// verified.
pub fn heads(conn: &mut PgConnection) -> Result<Vec<Head>, StoreError> {
    Ok(node_documents::table
        .select((
            node_documents::reference,
            node_documents::length,
            node_documents::head,
        ))
        .load(conn)?)
}

/// One document's row.
pub fn get(
    conn: &mut PgConnection,
    reference: &str,
) -> Result<Option<NodeDocumentRow>, StoreError> {
    Ok(node_documents::table
        .find(reference)
        .select(NodeDocumentRow::as_select())
        .first(conn)
        .optional()?)
}

/// How the list is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// By the time of the last entry.
    #[default]
    Updated,
    /// By the time of the ISSUE.
    Issued,
    /// By reference alone.
    Reference,
}

/// A position in the list: the sort value and reference of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The sort value (absent when sorting by reference).
    pub at: Option<DateTime<Utc>>,
    pub reference: String,
}

/// One word of a search, as the list matches it.
///
/// A word with a run of three letters or digits matches anywhere in the search text (the
/// trigram index finds it); a shorter one matches the start of a word there (`NL` finds
/// `NLRTM`, not every reference with an `nl` inside), which the trigram index also answers —
/// a two-letter substring would read every row. A word may also stand for parties (whose
/// names matched it): then a document naming one of them matches too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchWord {
    text: String,
    parties: Vec<String>,
}

impl SearchWord {
    /// A word as typed (any case). `None` for one with no letter or digit, which no index can
    /// look up and no search text holds on its own.
    pub fn new(word: &str) -> Option<Self> {
        let text = word.trim().to_lowercase();
        (!text.contains(char::is_whitespace) && text.chars().any(char::is_alphanumeric)).then_some(
            Self {
                text,
                parties: Vec::new(),
            },
        )
    }

    /// The words of a search box, and those left out (no letter or digit).
    pub fn parse(text: &str) -> (Vec<Self>, Vec<String>) {
        let mut words = Vec::new();
        let mut left_out = Vec::new();
        for word in text.split_whitespace() {
            match Self::new(word) {
                Some(w) if !words.contains(&w) => words.push(w),
                Some(_) => {}
                None => left_out.push(word.to_owned()),
            }
        }
        (words, left_out)
    }

    /// The word as matched (lower case).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether `text` (a party's name, say) holds the word as the list matches it: anywhere,
    /// or at the start of one of its words (any case).
    pub fn found_in(&self, text: &str) -> bool {
        let text = text.to_lowercase();
        if self.anywhere() {
            text.contains(&self.text)
        } else {
            text.split_whitespace().any(|w| w.starts_with(&self.text))
        }
    }

    /// Documents naming any of `parties` (party ids) match this word as well.
    pub fn or_parties(mut self, parties: Vec<String>) -> Self {
        self.parties = parties;
        self
    }

    /// Whether the word matches anywhere (a run of three letters or digits), rather than at
    /// the start of a word.
    fn anywhere(&self) -> bool {
        let mut run = 0;
        self.text.chars().any(|c| {
            run = if c.is_alphanumeric() { run + 1 } else { 0 };
            run >= 3
        })
    }

    /// The SQL condition, on the trigram-indexed `search` column only (so that PostgreSQL can
    /// answer each alternative from the index and OR the bitmaps).
    fn condition(&self) -> Box<dyn BoxableExpression<node_documents::table, Pg, SqlType = Bool>> {
        let search = node_documents::search;
        let escaped = like_escape(&self.text);
        let mut condition: Box<dyn BoxableExpression<node_documents::table, Pg, SqlType = Bool>> =
            if self.anywhere() {
                Box::new(search.like(format!("%{escaped}%")))
            } else {
                Box::new(
                    search
                        .like(format!("{escaped}%"))
                        .or(search.like(format!("% {escaped}%"))),
                )
            };
        for party in &self.parties {
            condition = Box::new(
                condition.or(search.like(format!("%{}%", like_escape(&party.to_lowercase())))),
            );
        }
        condition
    }
}

/// What the list is asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Words that must all match (see [`SearchWord`]) in the reference, parties, vessel,
    /// voyage, ports and container numbers.
    pub words: Vec<SearchWord>,
    pub state: Option<String>,
    /// One of the party's roles (`party_roles`).
    pub role: Option<String>,
    /// The document's issue date, inclusive.
    pub issued_from: Option<NaiveDate>,
    pub issued_to: Option<NaiveDate>,
    pub sort: SortKey,
    pub descending: bool,
    /// Rows after this one in the list's order (the next page)...
    pub after: Option<Cursor>,
    /// ... or before it (the previous page).
    pub before: Option<Cursor>,
    pub limit: i64,
}

/// Escapes `%`, `_` and `\` for a `LIKE` pattern.
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

type Boxed<'a> = node_documents::BoxedQuery<'a, Pg>;

/// The filters of `query` (not its order or position).
fn filtered(query: &ListQuery) -> Boxed<'static> {
    let mut q = node_documents::table.into_boxed();
    for word in &query.words {
        q = q.filter(word.condition());
    }
    if let Some(state) = &query.state {
        q = q.filter(node_documents::state.eq(state.clone()));
    }
    if let Some(role) = &query.role {
        q = q.filter(
            sql::<Bool>("party_roles @> ARRAY[")
                .bind::<Text, _>(role.clone())
                .sql("]::text[]"),
        );
    }
    if let Some(from) = query.issued_from {
        q = q.filter(node_documents::issue_date.ge(from));
    }
    if let Some(to) = query.issued_to {
        q = q.filter(node_documents::issue_date.le(to));
    }
    q
}

/// A row comparison `(sort column, reference) <op> (cursor)`, which PostgreSQL answers from the
/// sort's index.
fn beyond(q: Boxed<'static>, sort: SortKey, op: &'static str, cursor: &Cursor) -> Boxed<'static> {
    let column = match sort {
        SortKey::Updated => "updated_at",
        SortKey::Issued => "issued_at",
        SortKey::Reference => {
            return q.filter(
                sql::<Bool>(&format!("reference {op} ")).bind::<Text, _>(cursor.reference.clone()),
            );
        }
    };
    let at = cursor.at.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    q.filter(
        sql::<Bool>(&format!("({column}, reference) {op} ("))
            .bind::<Timestamptz, _>(at)
            .sql(", ")
            .bind::<Text, _>(cursor.reference.clone())
            .sql(")"),
    )
}

/// The rows of one page of the list, in the list's order, at most `limit` (1 to 500).
pub fn list(
    conn: &mut PgConnection,
    query: &ListQuery,
) -> Result<Vec<NodeDocumentRow>, StoreError> {
    let limit = query.limit.clamp(1, 500);
    // Going back a page reads the other way from the cursor, then turns the rows round.
    let backwards = query.before.is_some();
    let descending = query.descending != backwards;
    let mut q = filtered(query);
    let (op_after, op_before) = if query.descending {
        ("<", ">")
    } else {
        (">", "<")
    };
    if let Some(cursor) = &query.before {
        q = beyond(q, query.sort, op_before, cursor);
    } else if let Some(cursor) = &query.after {
        q = beyond(q, query.sort, op_after, cursor);
    }
    q = match (query.sort, descending) {
        (SortKey::Updated, true) => q.order((
            node_documents::updated_at.desc(),
            node_documents::reference.desc(),
        )),
        (SortKey::Updated, false) => q.order((
            node_documents::updated_at.asc(),
            node_documents::reference.asc(),
        )),
        (SortKey::Issued, true) => q.order((
            node_documents::issued_at.desc(),
            node_documents::reference.desc(),
        )),
        (SortKey::Issued, false) => q.order((
            node_documents::issued_at.asc(),
            node_documents::reference.asc(),
        )),
        (SortKey::Reference, true) => q.order(node_documents::reference.desc()),
        (SortKey::Reference, false) => q.order(node_documents::reference.asc()),
    };
    let mut rows = q
        .limit(limit)
        .select(NodeDocumentRow::as_select())
        .load(conn)?;
    if backwards {
        rows.reverse();
    }
    Ok(rows)
}

/// How many rows match `query`'s filters, counted up to `cap`: past it the count stops, so
/// that a broad search costs about as much as reading `cap` rows, never the whole list.
pub fn count(conn: &mut PgConnection, query: &ListQuery, cap: i64) -> Result<i64, StoreError> {
    // A constant per row: what crosses the wire is at most `cap` small integers.
    let rows: Vec<i32> = filtered(query)
        .select(sql::<Integer>("1"))
        .limit(cap)
        .load(conn)?;
    Ok(rows.len() as i64)
}

/// The number of documents in each state.
pub fn counts_by_state(conn: &mut PgConnection) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(node_documents::table
        .group_by(node_documents::state)
        .select((node_documents::state, diesel::dsl::count_star()))
        .order(node_documents::state.asc())
        .load(conn)?)
}

/// Documents in possession of `party` whose last transition was taken by another party since
/// `since` (received), and documents awaiting `party` as their carrier (a surrender to accept
/// or reject, an accepted amendment to void): newest first, at most `limit` each.
pub fn waiting_for(
    conn: &mut PgConnection,
    party: &str,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<Waiting, StoreError> {
    let select = NodeDocumentRow::as_select();
    let surrenders = node_documents::table
        .filter(node_documents::carrier.eq(party))
        .filter(node_documents::state.eq_any([
            "SURRENDER_FOR_DELIVERY_REQUESTED",
            "SURRENDER_FOR_AMENDMENT_REQUESTED",
        ]))
        .order((
            node_documents::updated_at.desc(),
            node_documents::reference.desc(),
        ))
        .limit(limit)
        .select(select)
        .load(conn)?;
    let to_void = node_documents::table
        .filter(node_documents::carrier.eq(party))
        .filter(node_documents::state.eq("SURRENDERED_FOR_AMENDMENT"))
        .order((
            node_documents::updated_at.desc(),
            node_documents::reference.desc(),
        ))
        .limit(limit)
        .select(select)
        .load(conn)?;
    let received = node_documents::table
        .filter(node_documents::possessor.eq(party))
        .filter(node_documents::last_actor.ne(party))
        .filter(node_documents::updated_at.ge(since))
        .filter(node_documents::state.eq("ACTIVE"))
        .order((
            node_documents::updated_at.desc(),
            node_documents::reference.desc(),
        ))
        .limit(limit)
        .select(select)
        .load(conn)?;
    Ok(Waiting {
        surrenders,
        to_void,
        received,
    })
}

/// What waits for the party ([`waiting_for`]).
#[derive(Debug, Clone, Default)]
pub struct Waiting {
    pub surrenders: Vec<NodeDocumentRow>,
    pub to_void: Vec<NodeDocumentRow>,
    pub received: Vec<NodeDocumentRow>,
}

/// The documents most recently changed, newest first.
pub fn latest(conn: &mut PgConnection, limit: i64) -> Result<Vec<NodeDocumentRow>, StoreError> {
    Ok(node_documents::table
        .order((
            node_documents::updated_at.desc(),
            node_documents::reference.desc(),
        ))
        .limit(limit)
        .select(NodeDocumentRow::as_select())
        .load(conn)?)
}

#[cfg(test)]
mod tests {
    use super::SearchWord;

    #[test]
    fn a_word_with_three_letters_in_a_row_matches_anywhere_a_shorter_one_at_a_word_start() {
        let word = |w: &str| SearchWord::new(w).expect(w);
        assert!(word("NLR").anywhere());
        assert!(word("a-bcd").anywhere());
        assert!(!word("NL").anywhere());
        assert!(!word("a-b").anywhere());
        assert!(!word("x").anywhere());
        assert_eq!(word("NLRTM").text(), "nlrtm");
        assert!(word("CUST").found_in("Netherlands Customs"));
        assert!(word("cu").found_in("Netherlands Customs"));
        assert!(!word("us").found_in("Netherlands Customs"));
    }

    #[test]
    fn words_without_a_letter_or_digit_are_left_out_and_repeats_kept_once() {
        let (words, left_out) = SearchWord::parse("  NL  - nl 100% __ ");
        let texts: Vec<&str> = words.iter().map(SearchWord::text).collect();
        assert_eq!(texts, ["nl", "100%"]);
        assert_eq!(left_out, ["-", "__"]);
        assert_eq!(SearchWord::new("--"), None);
        assert_eq!(SearchWord::new("a b"), None, "one word at a time");
    }
}
