//! `SignedTransition::parse` (`lading_domain::transition`).
//!
//! Input: a mode byte (see `lading_fuzz::split`), then a compact JWS or a payload. When the
//! mode byte has bit 1 set too, a payload that is a JSON object with a `transportDocument` gets
//! its `documentChecksum` recomputed (and is written canonically) before it is wrapped, so that
//! mutated documents get past the checksum rule to the document's own rules.
//!
//! The fast path of `parse` must accept exactly the canonical payloads the thorough path
//! (`TransitionPayload::from_json`) accepts, with the same payload; an accepted transition's
//! payload serialises back to the signed bytes.
#![no_main]

use lading_domain::canonical::{canonicalize, parse_canonical};
use lading_domain::digest::Digest;
use lading_domain::transition::{SignedTransition, TransitionPayload, TRANSITION_TYP};
use lading_fuzz::{split, unsigned_compact, Input};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| match split(data) {
    Some(Input::Compact(text)) => {
        if let Ok(signed) = SignedTransition::parse(text) {
            check_signed(&signed, text);
        }
    }
    Some(Input::Payload(payload)) => {
        if data[0] & 2 == 0 {
            payload_agrees(payload);
        } else if let Some(fixed) = with_document_checksum(payload) {
            payload_agrees(&fixed);
        }
    }
    None => {}
});

/// The payload written canonically, its `documentChecksum` that of its `transportDocument`.
fn with_document_checksum(payload: &[u8]) -> Option<Vec<u8>> {
    let mut value: Value = serde_json::from_slice(payload).ok()?;
    let object = value.as_object_mut()?;
    let document = object.get("transportDocument")?;
    let checksum = Digest::of(&canonicalize(document)).to_hex();
    object.insert("documentChecksum".into(), Value::from(checksum));
    Some(canonicalize(&value))
}

fn payload_agrees(payload: &[u8]) {
    let compact = unsigned_compact("carrier-oceanic:test-2026", TRANSITION_TYP, payload);
    let signed = SignedTransition::parse(&compact);
    let Ok(value) = serde_json::from_slice::<Value>(payload) else {
        assert!(signed.is_err(), "accepted a payload that is not JSON");
        return;
    };
    let thorough = TransitionPayload::from_json(&value);
    assert_eq!(
        serde_json::from_slice::<TransitionPayload>(payload).is_ok(),
        thorough.is_ok()
    );
    let canonical = parse_canonical(payload).is_ok();
    assert_eq!(
        signed.is_ok(),
        canonical && thorough.is_ok(),
        "SignedTransition::parse and from_json disagree: {:?} / {:?}",
        signed.as_ref().err(),
        thorough.as_ref().err()
    );
    let Ok(parsed) = thorough else {
        return;
    };
    assert_eq!(
        parsed.canonical_bytes(),
        canonicalize(&value),
        "not in normal form"
    );
    assert_eq!(
        TransitionPayload::from_json(&parsed.to_json()).as_ref(),
        Ok(&parsed)
    );
    assert_eq!(
        TransitionPayload::new(parsed.clone().into_draft()).as_ref(),
        Ok(&parsed)
    );
    if let Some(document) = parsed.transport_document() {
        assert_eq!(&document.checksum(), parsed.document_checksum());
        assert_eq!(document.reference(), parsed.document_reference());
    }
    assert_eq!(
        parsed.recipient().is_some(),
        parsed.action().has_recipient()
    );
    let _ = (parsed.parties(), parsed.is_switch_to_paper(), parsed.time());
    if let Ok(signed) = signed {
        assert_eq!(signed.payload(), &parsed);
        check_signed(&signed, &compact);
    }
}

fn check_signed(signed: &SignedTransition, text: &str) {
    assert_eq!(signed.as_str(), text);
    assert_eq!(signed.checksum(), Digest::of(text.as_bytes()));
    assert_eq!(signed.jws().typ(), Some(TRANSITION_TYP));
    assert_eq!(signed.kid(), signed.jws().kid());
    let payload = signed.jws().payload_bytes();
    assert_eq!(signed.payload().canonical_bytes(), payload);
    // The thorough path agrees with whichever path accepted it.
    let value = parse_canonical(payload).expect("an accepted payload is canonical");
    assert_eq!(
        TransitionPayload::from_json(&value).as_ref(),
        Ok(signed.payload())
    );
}
