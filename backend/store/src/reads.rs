//! What parties read: documents they are entitled to, and their chains.
//!
//! Entitlement is decided in the query, so a document a party may not see is never loaded for
//! it: the carrier, shipper, consignee, notify parties and everyone the chain named are in
//! `document_access`; a customs authority sees documents whose port of loading or discharge is
//! in its jurisdiction.

use diesel::dsl::exists;
use diesel::pg::PgConnection;
use diesel::prelude::*;

use crate::models::{DocumentRow, EntryRow, TransitionRow};
use diesel::sql_types::{Bool, Text};

use crate::schema::{document_access, documents, events, ledger_entries, transitions};
use crate::StoreError;

/// The document, if it exists and `party` is entitled to it. `None` for both "no such
/// document" and "not yours", so a caller cannot tell them apart.
pub fn document_for_party(
    conn: &mut PgConnection,
    reference: &str,
    party: &str,
) -> Result<Option<DocumentRow>, StoreError> {
    let named = exists(
        document_access::table
            .filter(document_access::document_ref.eq(documents::reference))
            .filter(document_access::party_id.eq(party)),
    );
    let customs = diesel::dsl::sql::<Bool>(
        "EXISTS (SELECT 1 FROM parties p WHERE p.role = 'customs_authority' \
         AND (documents.port_of_loading = ANY(p.ports) \
              OR documents.port_of_discharge = ANY(p.ports)) AND p.id = ",
    )
    .bind::<Text, _>(party.to_owned())
    .sql(")");
    Ok(documents::table
        .filter(documents::reference.eq(reference))
        .filter(named.or(customs))
        .select(DocumentRow::as_select())
        .first(conn)
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
