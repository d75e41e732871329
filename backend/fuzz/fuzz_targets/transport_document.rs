//! Parsing a transport document from JSON bytes (`lading_domain::document`).
//!
//! Input: arbitrary bytes, read as JSON. A document is reached two ways and on canonical bytes
//! (all a signed ISSUE can carry) they must agree: the thorough path (`from_json` on the parsed
//! bytes, which `SignedTransition::parse` takes to name a refusal) and the fast path (the
//! fields straight from the bytes, then `TransportDocument::new`, kept only when they
//! serialise back to those bytes). A document accepted from any JSON is in normal form: its
//! canonical bytes are the input's canonical bytes, and it round-trips.
//!
//! (`from_json` on a non-canonical spelling may refuse what its canonical form passes: `5.0`
//! for a count is refused as a float, though RFC 8785 writes it `5`. Signed payloads are
//! canonical, so the fast path never sees `5.0`.)
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
    let reparsed: Value = serde_json::from_slice(&canonical).expect("canonical bytes are JSON");
    let on_canonical = TransportDocument::from_json(&reparsed);
    assert_eq!(
        on_canonical.as_ref().ok(),
        fast.as_ref(),
        "the fast and thorough paths disagree on canonical bytes ({:?})",
        on_canonical.as_ref().err()
    );

    let doc = match thorough {
        Ok(doc) => doc,
        Err(e) => {
            assert!(
                via_serde.is_err(),
                "Deserialize accepted what from_json refused"
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
