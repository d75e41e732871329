//! The RFC 8785 canonicaliser and the canonical-input check (`lading_domain::canonical`).
//!
//! Input: arbitrary bytes. The invariants:
//! - `parse_canonical` accepts exactly the JSON texts that are their own canonical form, and
//!   `is_canonical` agrees with it;
//! - what `canonicalize` writes is canonical (accepted by `parse_canonical`), and canonicalising
//!   it again changes nothing;
//! - the serde path (`to_canonical_vec`) writes the same bytes as `canonicalize`, and so does an
//!   independent implementation (`serde_json_canonicalizer`).
#![no_main]

use lading_domain::canonical::{
    canonicalize, is_canonical, parse_canonical, to_canonical_vec, CanonicalError,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let strict = parse_canonical(data);
    assert_eq!(is_canonical(data), strict.is_ok());
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        assert!(
            matches!(strict, Err(CanonicalError::NotJson(_))),
            "not JSON, yet {strict:?}"
        );
        return;
    };
    let canonical = canonicalize(&value);
    match &strict {
        Ok(parsed) => {
            assert_eq!(canonical, data, "accepted bytes that are not canonical");
            assert_eq!(parsed, &value);
        }
        Err(e) => {
            assert_eq!(e, &CanonicalError::NotCanonical);
            assert_ne!(canonical, data, "refused bytes that are canonical");
        }
    }

    assert!(std::str::from_utf8(&canonical).is_ok());
    let again = match parse_canonical(&canonical) {
        Ok(v) => v,
        Err(e) => panic!("canonicalize wrote bytes parse_canonical refuses: {e}"),
    };
    assert_eq!(
        canonicalize(&again),
        canonical,
        "canonicalize is not idempotent"
    );

    assert_eq!(
        to_canonical_vec(&value).as_ref(),
        Ok(&canonical),
        "the serde path disagrees"
    );
    let reference = serde_json_canonicalizer::to_vec(&value).expect("a JSON value canonicalises");
    assert_eq!(
        reference, canonical,
        "disagrees with serde_json_canonicalizer"
    );
});
