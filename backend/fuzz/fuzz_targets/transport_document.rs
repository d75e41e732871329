//! Parsing a transport document from JSON bytes (`lading_domain::document`).
//!
//! Input: arbitrary bytes, read as JSON. A document is reached two ways and they must agree:
//! the thorough path (`TransportDocument::from_json`, used on refusals and by `Deserialize`)
//! and the fast path a signed ISSUE takes (the fields straight from the canonical bytes, then
//! `TransportDocument::new`, kept only when they serialise back to those bytes). An accepted
//! document is in normal form: its canonical bytes are the input's, and it round-trips.
#![no_main]

use lading_domain::canonical::canonicalize;
use lading_domain::digest::Digest;
use lading_domain::document::{DocumentFields, TransportDocument};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        assert!(serde_json::from_slice::<TransportDocument>(data).is_err());
        return;
    };
    let thorough = TransportDocument::from_json(&value);
    let via_serde = serde_json::from_slice::<TransportDocument>(data);
    let canonical = canonicalize(&value);
    let fast = serde_json::from_slice::<DocumentFields>(&canonical)
        .ok()
        .and_then(|fields| TransportDocument::new(fields).ok())
        .filter(|doc| doc.canonical_bytes() == canonical);

    let doc = match thorough {
        Ok(doc) => doc,
        Err(e) => {
            assert!(
                via_serde.is_err(),
                "Deserialize accepted what from_json refused"
            );
            assert_eq!(
                fast, None,
                "the fast path accepted what from_json refused: {e}"
            );
            let _ = (e.code(), e.to_string());
            return;
        }
    };
    assert_eq!(via_serde.as_ref().ok(), Some(&doc));
    assert_eq!(
        fast.as_ref(),
        Some(&doc),
        "the fast path refused an accepted document"
    );

    assert_eq!(
        doc.canonical_bytes(),
        canonical,
        "accepted outside normal form"
    );
    assert_eq!(doc.checksum(), Digest::of(&canonical));
    assert_eq!(canonicalize(&doc.to_json()), canonical);
    assert_eq!(
        TransportDocument::from_json(&doc.to_json()).as_ref(),
        Ok(&doc)
    );
    assert_eq!(
        TransportDocument::new(doc.clone().into_fields()).as_ref(),
        Ok(&doc)
    );

    // Accessors agree with the fields.
    let fields = doc.fields();
    assert_eq!(doc.reference(), &fields.transport_document_reference);
    assert_eq!(doc.carrier(), &fields.carrier);
    assert_eq!(doc.shipper(), &fields.shipper);
    assert_eq!(
        doc.container_numbers().len(),
        fields.utilized_transport_equipments.len()
    );
    let parties = doc.named_parties();
    assert_eq!(parties.first(), Some(&doc.carrier()));
    assert!(parties.contains(&doc.shipper()));
    for (i, p) in parties.iter().enumerate() {
        assert!(!parties[..i].contains(p), "named_parties repeats {p:?}");
    }
    let _ = (
        doc.hs_codes(),
        doc.type_code(),
        doc.is_to_order(),
        doc.carrier_code(),
        doc.consignee(),
        doc.endorsee(),
        doc.notify_parties(),
        doc.vessel_name(),
        doc.voyage_number(),
        doc.port_of_loading(),
        doc.port_of_discharge(),
        doc.place_of_receipt(),
        doc.place_of_delivery(),
        doc.issue_date(),
        doc.shipped_on_board_date(),
    );
});
