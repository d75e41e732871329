//! What a search of documents (`GET /v1/documents`) filters on, taken from the transport
//! document at ISSUE: it never changes afterwards (an amendment voids the document).

use lading_domain::TransportDocument;
use lading_store::models::DocumentSearchRow;

/// The search row of `document`, issued as `reference`.
pub(crate) fn search_row(reference: &str, document: &TransportDocument) -> DocumentSearchRow {
    let containers: Vec<String> = document
        .container_numbers()
        .into_iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    let notify_parties: Vec<String> = document
        .notify_parties()
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut words: Vec<String> = vec![
        reference.to_owned(),
        document.vessel_name().to_owned(),
        document.voyage_number().to_owned(),
    ];
    words.extend(containers.iter().cloned());
    words.extend(
        document
            .named_parties()
            .into_iter()
            .map(ToString::to_string),
    );
    DocumentSearchRow {
        reference: reference.to_owned(),
        vessel: document.vessel_name().to_owned(),
        voyage: document.voyage_number().to_owned(),
        shipper: document.shipper().to_string(),
        consignee: document.consignee().map(ToString::to_string),
        notify_parties: notify_parties.into_iter().map(Some).collect(),
        containers: containers.into_iter().map(Some).collect(),
        search: words.join(" ").to_lowercase(),
    }
}
