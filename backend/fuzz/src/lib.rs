//! What the fuzz targets share: how an input is read, and the fixture keys the targets sign
//! with.
//!
//! Typed signed objects (transitions, events, checkpoints) are base64url inside a JWS, which
//! byte-level mutation barely gets through. So their targets read the first byte of an input as
//! a mode: even, the rest is a whole compact JWS (as it arrives on the wire); odd, the rest is
//! the payload alone, which the target wraps in Lading's own header. Parsing never checks a
//! signature, so the wrapped form carries a placeholder one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use lading_domain::canonical::canonicalize;
use lading_domain::jws::Jwk;
use serde_json::json;

/// One input of a typed target, by its mode byte.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// A whole compact JWS.
    Compact(&'a str),
    /// A payload, to be wrapped with [`unsigned_compact`].
    Payload(&'a [u8]),
}

/// Reads the mode byte; `None` for an empty input or a compact JWS that is not UTF-8 (a `&str`
/// is what the parsers take).
pub fn split(data: &[u8]) -> Option<Input<'_>> {
    let (&mode, rest) = data.split_first()?;
    if mode % 2 == 0 {
        std::str::from_utf8(rest).ok().map(Input::Compact)
    } else {
        Some(Input::Payload(rest))
    }
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The canonical header Lading signs under.
pub fn header(kid: &str, typ: &str) -> Vec<u8> {
    canonicalize(&json!({"alg": "EdDSA", "kid": kid, "typ": typ}))
}

/// `payload` as a compact JWS under [`header`], with 64 zero bytes as its signature.
pub fn unsigned_compact(kid: &str, typ: &str, payload: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(&header(kid, typ)),
        b64(payload),
        b64(&[0u8; 64])
    )
}

/// The registry's TEST key from `fixtures/keys/registry.jwk` (kid `registry:test-2026`).
pub fn registry_key() -> Jwk {
    const JWK: &str = include_str!("../../../fixtures/keys/registry.jwk");
    match serde_json::from_str(JWK) {
        Ok(jwk) => jwk,
        Err(e) => panic!("fixtures/keys/registry.jwk does not parse: {e}"),
    }
}

/// A key of another party (`fixtures/keys/carrier-oceanic.jwk`), which must verify nothing the
/// registry signed.
pub fn other_key() -> Jwk {
    const JWK: &str = include_str!("../../../fixtures/keys/carrier-oceanic.jwk");
    match serde_json::from_str(JWK) {
        Ok(jwk) => jwk,
        Err(e) => panic!("fixtures/keys/carrier-oceanic.jwk does not parse: {e}"),
    }
}

/// A fixture key (`fixtures/keys/*.jwk`), from the text of its file.
pub fn fixture_key(name: &str, jwk: &str) -> Jwk {
    match serde_json::from_str(jwk) {
        Ok(jwk) => jwk,
        Err(e) => panic!("fixtures/keys/{name}.jwk does not parse: {e}"),
    }
}

/// The consortium operator's TEST key (`fixtures/keys/operator.jwk`, kid `operator:test-2026`),
/// which signs party statements.
pub fn operator_key() -> Jwk {
    fixture_key(
        "operator",
        include_str!("../../../fixtures/keys/operator.jwk"),
    )
}
