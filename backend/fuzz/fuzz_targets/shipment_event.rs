//! Parsing a shipment event (`lading_domain::event`): its JSON payload and its signed form.
//!
//! Input: a mode byte (see `lading_fuzz::split`), then a compact JWS or a payload. A payload
//! is judged by the thorough path (`ShipmentEvent::from_json`) and, wrapped as a JWS, by
//! `SignedEvent::parse`, whose fast path must accept exactly the canonical payloads the
//! thorough path accepts, with the same event.
#![no_main]

use lading_domain::canonical::{canonicalize, parse_canonical};
use lading_domain::digest::Digest;
use lading_domain::event::{ShipmentEvent, SignedEvent, EVENT_TYP};
use lading_fuzz::{split, unsigned_compact, Input};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| match split(data) {
    Some(Input::Compact(text)) => {
        if let Ok(signed) = SignedEvent::parse(text) {
            check_signed(&signed, text);
        }
    }
    Some(Input::Payload(payload)) => payload_agrees(payload),
    None => {}
});

fn payload_agrees(payload: &[u8]) {
    let compact = unsigned_compact("carrier-oceanic:test-2026", EVENT_TYP, payload);
    let signed = SignedEvent::parse(&compact);
    let Ok(value) = serde_json::from_slice::<Value>(payload) else {
        assert!(signed.is_err(), "accepted a payload that is not JSON");
        return;
    };
    let thorough = ShipmentEvent::from_json(&value);
    assert_eq!(
        serde_json::from_slice::<ShipmentEvent>(payload).is_ok(),
        thorough.is_ok()
    );
    let canonical = parse_canonical(payload).is_ok();
    assert_eq!(
        signed.is_ok(),
        canonical && thorough.is_ok(),
        "SignedEvent::parse and from_json disagree: {:?} / {:?}",
        signed.as_ref().err(),
        thorough.as_ref().err()
    );
    let Ok(event) = thorough else {
        return;
    };
    assert_eq!(
        event.canonical_bytes(),
        canonicalize(&value),
        "not in normal form"
    );
    assert_eq!(
        ShipmentEvent::from_json(&event.to_json()).as_ref(),
        Ok(&event)
    );
    assert_eq!(event.event_kind(), event.event_code().kind());
    assert!(event.document_reference().is_some() || event.equipment_reference().is_some());
    if let Ok(signed) = signed {
        assert_eq!(signed.event(), &event);
        check_signed(&signed, &compact);
    }
}

fn check_signed(signed: &SignedEvent, text: &str) {
    assert_eq!(signed.as_str(), text);
    assert_eq!(signed.checksum(), Digest::of(text.as_bytes()));
    assert_eq!(signed.jws().typ(), Some(EVENT_TYP));
    assert_eq!(signed.kid(), signed.jws().kid());
    let payload = signed.jws().payload_bytes();
    assert_eq!(signed.event().canonical_bytes(), payload);
    // The thorough path agrees with whichever path accepted it.
    let value = parse_canonical(payload).expect("an accepted payload is canonical");
    assert_eq!(
        ShipmentEvent::from_json(&value).as_ref(),
        Ok(signed.event())
    );
}
