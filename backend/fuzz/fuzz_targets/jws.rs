//! `CompactJws::parse` on arbitrary text, and on JWS built from arbitrary parts.
//!
//! Input: a mode byte, then either the compact text (even) or `header 0xFF payload 0xFF
//! signature` as raw bytes (odd), each base64url-encoded here so that mutations reach the
//! header's JSON. Whatever parses must keep the text exactly and re-serialise to it: each byte
//! string has one base64url spelling, so `parse` is a bijection on what it accepts.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use lading_domain::digest::Digest;
use lading_domain::jws::CompactJws;
use lading_fuzz::b64;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        if let Ok(text) = std::str::from_utf8(rest) {
            check(text, None);
        }
    } else {
        let mut parts = rest.splitn(3, |&b| b == 0xff);
        let header = parts.next().unwrap_or_default();
        let payload = parts.next().unwrap_or_default();
        let signature = parts.next().unwrap_or_default();
        let text = format!("{}.{}.{}", b64(header), b64(payload), b64(signature));
        check(&text, Some((header, payload, signature)));
    }
});

fn check(text: &str, parts: Option<(&[u8], &[u8], &[u8])>) {
    let Ok(jws) = CompactJws::parse(text) else {
        return;
    };
    assert_eq!(jws.as_str(), text);
    assert_eq!(jws.to_string(), text);
    assert_eq!(jws.checksum(), Digest::of(text.as_bytes()));

    let pieces: Vec<&str> = text.split('.').collect();
    assert_eq!(pieces.len(), 3, "a JWS has three parts");
    let (h, p, s) = (pieces[0], pieces[1], pieces[2]);
    assert_eq!(jws.signing_input(), format!("{h}.{p}").as_bytes());
    assert!(!jws.payload_bytes().is_empty(), "no detached payloads");
    // One spelling per byte string: re-encoding gives the very text.
    assert_eq!(b64(jws.payload_bytes()), p);
    assert_eq!(b64(jws.signature()), s);
    let header = URL_SAFE_NO_PAD
        .decode(h)
        .expect("a parsed header is base64url");
    assert_eq!(b64(&header), h);
    if let Some((header_in, payload_in, signature_in)) = parts {
        assert_eq!(header, header_in);
        assert_eq!(jws.payload_bytes(), payload_in);
        assert_eq!(jws.signature().as_slice(), signature_in);
    }

    // The header said what the accessors say.
    let header = std::str::from_utf8(&header).expect("a parsed header is UTF-8");
    assert!(
        header.trim_start().starts_with('{'),
        "a parsed header is an object"
    );
    let members: Map<String, Value> = match serde_json::from_str(header) {
        Ok(members) => members,
        // A member the parser ignores is skipped by grammar alone: a lone surrogate (`\ud800`)
        // or a number beyond f64 (`1E400`) there is valid JSON, which a `Value` refuses to
        // hold. The header must still be JSON by grammar.
        Err(_) => {
            serde_json::from_str::<Box<serde_json::value::RawValue>>(header)
                .expect("a parsed header is JSON by grammar");
            return;
        }
    };
    assert_eq!(members.get("alg"), Some(&Value::from("EdDSA")));
    assert_eq!(
        members.get("kid").and_then(Value::as_str),
        Some(jws.kid().as_str())
    );
    assert_eq!(members.get("typ").and_then(Value::as_str), jws.typ());
    assert!(!members.contains_key("crit") && !members.contains_key("b64"));

    // Parsing its own text gives the same value back.
    assert_eq!(CompactJws::parse(jws.as_str()).as_ref(), Ok(&jws));
    let _ = format!("{jws:?}");
}
