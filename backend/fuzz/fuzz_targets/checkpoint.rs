//! `SignedCheckpoint::parse` and verification against the registry's fixture key
//! (`lading_domain::checkpoint`).
//!
//! Input: a mode byte (see `lading_fuzz::split`), then a compact JWS or a payload.
//! - A compact JWS that parses is verified with the registry key. If it verifies, its content
//!   is what was parsed, and the same JWS with one signature bit flipped must not verify.
//! - A payload is wrapped with a placeholder signature first (cheap); when that parses, the
//!   checkpoint is signed with the key for real: the signature must verify, the placeholder
//!   must not, another party's key must not, and signing the parsed checkpoint again must give
//!   the very same JWS (canonical payload, deterministic Ed25519).
#![no_main]

use std::sync::OnceLock;

use lading_domain::canonical::parse_canonical;
use lading_domain::checkpoint::{SignedCheckpoint, CHECKPOINT_TYP, MAX_CHECKPOINT_SIZE};
use lading_domain::digest::Digest;
use lading_domain::jws::{SigningKey, VerifyingKey};
use lading_fuzz::{b64, other_key, registry_key, split, unsigned_compact, Input};
use libfuzzer_sys::fuzz_target;

struct Keys {
    signing: SigningKey,
    verifying: VerifyingKey,
    other: VerifyingKey,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let signing = registry_key()
            .signing_key()
            .expect("the registry fixture key is private");
        let other = other_key()
            .verifying_key()
            .expect("the carrier fixture key is valid");
        Keys {
            verifying: signing.verifying_key(),
            signing,
            other,
        }
    })
}

fuzz_target!(|data: &[u8]| match split(data) {
    Some(Input::Compact(text)) => {
        if let Ok(checkpoint) = SignedCheckpoint::parse(text) {
            check_parsed(&checkpoint, text);
            verify_compact(&checkpoint);
        }
    }
    Some(Input::Payload(payload)) => {
        let kid = keys().signing.kid.as_str();
        let unsigned = unsigned_compact(kid, CHECKPOINT_TYP, payload);
        if let Ok(checkpoint) = SignedCheckpoint::parse(&unsigned) {
            check_parsed(&checkpoint, &unsigned);
            sign_and_verify(&checkpoint, payload);
        }
    }
    None => {}
});

fn check_parsed(checkpoint: &SignedCheckpoint, text: &str) {
    assert_eq!(checkpoint.as_str(), text);
    assert_eq!(checkpoint.checksum(), Digest::of(text.as_bytes()));
    assert_eq!(checkpoint.kid(), checkpoint.jws().kid());
    assert_eq!(checkpoint.jws().typ(), Some(CHECKPOINT_TYP));
    let content = checkpoint.unverified();
    assert!(content.block_size >= 1);
    assert!(content.size < MAX_CHECKPOINT_SIZE);
    let payload = checkpoint.jws().payload_bytes();
    assert!(parse_canonical(payload).is_ok());
    assert_eq!(content.canonical_bytes(), payload);
}

/// A JWS from the wire: whatever verifies is the registry's, and only with its signature.
fn verify_compact(checkpoint: &SignedCheckpoint) {
    let keys = keys();
    let Ok(verified) = checkpoint.verify(&keys.verifying) else {
        return;
    };
    assert_eq!(&verified, checkpoint.unverified());
    assert_eq!(checkpoint.kid(), &keys.verifying.kid);
    assert!(checkpoint.verify(&keys.other).is_err());
    let mut signature = *checkpoint.jws().signature();
    signature[usize::from(signature[0]) % 64] ^= 1;
    let text = checkpoint.as_str();
    let signing_input = &text[..text.rfind('.').expect("a JWS has dots")];
    let tampered = format!("{signing_input}.{}", b64(&signature));
    let tampered = SignedCheckpoint::parse(&tampered).expect("only the signature changed");
    assert!(tampered.verify(&keys.verifying).is_err());
}

/// A checkpoint that parsed under a placeholder signature, signed for real.
fn sign_and_verify(unsigned: &SignedCheckpoint, payload: &[u8]) {
    let keys = keys();
    assert!(unsigned.verify(&keys.verifying).is_err());
    let signed_text = keys.signing.sign_compact(payload, CHECKPOINT_TYP);
    let signed = SignedCheckpoint::parse(&signed_text).expect("the same payload, signed");
    assert_eq!(signed.unverified(), unsigned.unverified());
    assert_eq!(
        signed.verify(&keys.verifying).as_ref(),
        Ok(unsigned.unverified())
    );
    assert!(signed.verify(&keys.other).is_err());
    assert_eq!(unsigned.unverified().sign(&keys.signing), signed_text);
    verify_compact(&signed);
}
