//! Compact JWS (RFC 7515) with EdDSA over Ed25519 (RFC 8037), and Ed25519 JWKs.
//!
//! What Lading accepts as a signed object (`CompactJws::parse`):
//! - exactly three parts separated by `.`: `BASE64URL(header) . BASE64URL(payload) .
//!   BASE64URL(signature)`, base64url without padding and with zero trailing bits (RFC 4648
//!   §3.5), so each byte string has one spelling;
//! - the header is a JSON object without duplicate `alg`/`kid`/`typ` members, whose `alg` is
//!   `"EdDSA"` (else `unsupported_algorithm`) and whose `kid` is a key id (1 to 128 of
//!   `[A-Za-z0-9._:-]`); `typ`, when present, is a string; `crit` and `b64` are refused (no
//!   extensions, no unencoded payloads);
//! - the payload is not empty (no detached payloads);
//! - the signature decodes to exactly 64 bytes.
//!
//! Verification is Ed25519 over the ASCII bytes `BASE64URL(header) "." BASE64URL(payload)`
//! with the key named by `kid`, under the rule of [`crate::ed25519`]: RFC 8032's cofactored
//! equation, with non-canonical `S` and small-order keys or `R` refused. Keys of small order
//! are refused when they are built.
//!
//! The checksum of a signed object is SHA-256 over the ASCII bytes of its compact form.
//!
//! - the header is at most [`MAX_HEADER_BYTES`] bytes of JSON (else `header_too_large`).
//!
//! Lading signs with the protected header `{"alg":"EdDSA","kid":<kid>,"typ":<typ>}` written in
//! RFC 8785 canonical form. Typed payloads (transitions, events, checkpoints) add three rules,
//! checked when they are opened: `typ` must be the expected media type (`wrong_type`), the
//! header bytes must be exactly that canonical header — those three members, in that order,
//! no whitespace, nothing else (`non_canonical_header`) — and the payload bytes must be RFC
//! 8785 canonical JSON (`non_canonical_payload`). With deterministic Ed25519 signatures, a
//! (key, payload) pair then has exactly one compact form, so a client that serialises its
//! header again on a retry sends the same bytes and gets `duplicate`, not `double_spend`.
//!
//! JWK (RFC 7517/8037): `{"kty":"OKP","crv":"Ed25519","x":b64url(32 bytes),"d"?:b64url(32
//! bytes),"kid":...,"use"?:"sig","alg"?:"EdDSA","lading_test_key"?:bool}`. Other members are
//! ignored. When `d` is present, `x` must be its public key. Keys marked
//! `"lading_test_key": true` are fixtures: production configurations refuse them.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::Signer as _;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::canonical::{canonicalize, parse_canonical};
use crate::digest::Digest;
use crate::ed25519;
use crate::ids::KeyId;

/// Largest protected header, in bytes of JSON: Lading's own is under 200 (a 128-character
/// kid and a short typ).
pub const MAX_HEADER_BYTES: usize = 512;

/// Why a compact JWS was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("malformed JWS: {0}")]
    Malformed(String),
    #[error("the protected header is larger than {MAX_HEADER_BYTES} bytes")]
    HeaderTooLarge,
    #[error("unsupported JWS algorithm {0:?} (only EdDSA)")]
    UnsupportedAlgorithm(String),
    #[error("the signature does not verify")]
    BadSignature,
    #[error("no usable key for kid {0:?}")]
    UnknownKey(String),
}

impl JwsError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed_jws",
            Self::HeaderTooLarge => "header_too_large",
            Self::UnsupportedAlgorithm(_) => "unsupported_algorithm",
            Self::BadSignature => "bad_signature",
            Self::UnknownKey(_) => "unknown_key",
        }
    }
}

/// Why a JWK was refused or cannot serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwkError {
    #[error("invalid JWK: {0}")]
    Invalid(String),
    #[error("the JWK has no private part (d)")]
    MissingPrivateKey,
}

impl JwkError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid_jwk",
            Self::MissingPrivateKey => "missing_private_key",
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(part: &str, what: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| format!("{what} is not unpadded base64url: {e}"))
}

fn unb64_32(s: &str, what: &str) -> Result<[u8; 32], JwkError> {
    let bytes = unb64(s, what).map_err(JwkError::Invalid)?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| JwkError::Invalid(format!("{what} must be 32 bytes")))
}

/// An Ed25519 JSON Web Key, public or private.
#[derive(Clone, PartialEq, Eq)]
pub struct Jwk {
    kid: KeyId,
    x: [u8; 32],
    d: Option<[u8; 32]>,
    test_key: bool,
}

impl Jwk {
    /// A fresh private key from the operating system's random source.
    pub fn generate(kid: KeyId, test_key: bool) -> Self {
        let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
        Self::from_signing_key(&SigningKey { kid, key }, test_key)
    }

    pub fn from_signing_key(key: &SigningKey, test_key: bool) -> Self {
        Self {
            kid: key.kid.clone(),
            x: key.key.verifying_key().to_bytes(),
            d: Some(key.key.to_bytes()),
            test_key,
        }
    }

    pub fn from_verifying_key(key: &VerifyingKey, test_key: bool) -> Self {
        Self {
            kid: key.kid.clone(),
            x: key.key.to_bytes(),
            d: None,
            test_key,
        }
    }

    /// The same key without its private part.
    pub fn to_public(&self) -> Self {
        Self {
            d: None,
            ..self.clone()
        }
    }

    pub fn kid(&self) -> &KeyId {
        &self.kid
    }

    pub fn is_private(&self) -> bool {
        self.d.is_some()
    }

    /// True for fixture keys (`"lading_test_key": true`), which production must refuse.
    pub fn is_test_key(&self) -> bool {
        self.test_key
    }

    pub fn public_key_bytes(&self) -> &[u8; 32] {
        &self.x
    }

    pub fn signing_key(&self) -> Result<SigningKey, JwkError> {
        let d = self.d.ok_or(JwkError::MissingPrivateKey)?;
        Ok(SigningKey {
            kid: self.kid.clone(),
            key: ed25519_dalek::SigningKey::from_bytes(&d),
        })
    }

    pub fn verifying_key(&self) -> Result<VerifyingKey, JwkError> {
        VerifyingKey::from_bytes(self.kid.clone(), &self.x)
    }

    /// RFC 7638 thumbprint: base64url(SHA-256(`{"crv":"Ed25519","kty":"OKP","x":...}`)).
    pub fn thumbprint(&self) -> String {
        let members = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64(&self.x));
        b64(Digest::of(members.as_bytes()).as_bytes())
    }
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .field("x", &b64(&self.x))
            .field("private", &self.d.is_some())
            .field("test_key", &self.test_key)
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct RawJwk {
    kty: String,
    crv: String,
    x: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    d: Option<String>,
    kid: String,
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    use_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lading_test_key: Option<bool>,
}

impl TryFrom<RawJwk> for Jwk {
    type Error = JwkError;

    fn try_from(raw: RawJwk) -> Result<Self, JwkError> {
        if raw.kty != "OKP" || raw.crv != "Ed25519" {
            return Err(JwkError::Invalid("only kty OKP with crv Ed25519".into()));
        }
        if raw.use_.as_deref().is_some_and(|u| u != "sig") {
            return Err(JwkError::Invalid("use must be \"sig\"".into()));
        }
        if raw.alg.as_deref().is_some_and(|a| a != "EdDSA") {
            return Err(JwkError::Invalid("alg must be \"EdDSA\"".into()));
        }
        let kid: KeyId = raw
            .kid
            .parse()
            .map_err(|e: crate::ids::IdError| JwkError::Invalid(e.to_string()))?;
        let x = unb64_32(&raw.x, "x")?;
        ed25519_dalek::VerifyingKey::from_bytes(&x)
            .map_err(|_| JwkError::Invalid("x is not an Ed25519 public key".into()))?;
        let d = raw.d.as_deref().map(|d| unb64_32(d, "d")).transpose()?;
        if let Some(d) = d {
            let derived = ed25519_dalek::SigningKey::from_bytes(&d)
                .verifying_key()
                .to_bytes();
            if derived != x {
                return Err(JwkError::Invalid("x is not the public key of d".into()));
            }
        }
        Ok(Self {
            kid,
            x,
            d,
            test_key: raw.lading_test_key.unwrap_or(false),
        })
    }
}

impl Serialize for Jwk {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RawJwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: b64(&self.x),
            d: self.d.map(|d| b64(&d)),
            kid: self.kid.to_string(),
            use_: Some("sig".into()),
            alg: Some("EdDSA".into()),
            lading_test_key: self.test_key.then_some(true),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Jwk {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawJwk::deserialize(deserializer)?;
        Self::try_from(raw).map_err(serde::de::Error::custom)
    }
}

/// A private Ed25519 key with the `kid` it signs under.
#[derive(Debug, Clone)]
pub struct SigningKey {
    pub kid: KeyId,
    pub key: ed25519_dalek::SigningKey,
}

impl SigningKey {
    pub fn new(kid: KeyId, key: ed25519_dalek::SigningKey) -> Self {
        Self { kid, key }
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey {
            kid: self.kid.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// Signs `payload` under Lading's canonical header `{"alg":"EdDSA","kid":..,"typ":..}`.
    pub fn sign_compact(&self, payload: &[u8], typ: &str) -> String {
        let header = serde_json::json!({"alg": "EdDSA", "kid": self.kid.as_str(), "typ": typ});
        self.sign_with_header(&canonicalize(&header), payload)
    }

    /// Signs with the header bytes given verbatim (for test vectors; no checks on the header).
    pub fn sign_with_header(&self, header_json: &[u8], payload: &[u8]) -> String {
        let mut out = b64(header_json);
        out.push('.');
        out.push_str(&b64(payload));
        let signature = self.key.sign(out.as_bytes());
        out.push('.');
        out.push_str(&b64(&signature.to_bytes()));
        out
    }
}

/// A public Ed25519 key with its `kid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    pub kid: KeyId,
    pub key: ed25519_dalek::VerifyingKey,
}

impl VerifyingKey {
    pub fn new(kid: KeyId, key: ed25519_dalek::VerifyingKey) -> Self {
        Self { kid, key }
    }

    /// A key from its 32 raw bytes (as stored by the registry); refuses bytes that are not a
    /// valid Ed25519 point.
    pub fn from_bytes(kid: KeyId, bytes: &[u8]) -> Result<Self, JwkError> {
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| JwkError::Invalid("an Ed25519 public key is 32 bytes".into()))?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map_err(|_| JwkError::Invalid("not an Ed25519 public key".into()))?;
        if key.is_weak() {
            // A small-order key "verifies" signatures on almost any message.
            return Err(JwkError::Invalid("a weak (small-order) Ed25519 key".into()));
        }
        Ok(Self { kid, key })
    }

    /// Checks that `jws` names this key and that its signature verifies (strictly).
    pub fn verify(&self, jws: &CompactJws) -> Result<(), JwsError> {
        if jws.kid() != &self.kid {
            return Err(JwsError::UnknownKey(jws.kid().to_string()));
        }
        self.verify_signature(jws.signing_input(), jws.signature())
    }

    /// Raw Ed25519 verification ([`crate::ed25519`]), ignoring any `kid`.
    pub fn verify_signature(&self, message: &[u8], signature: &[u8; 64]) -> Result<(), JwsError> {
        let item = ed25519::Item {
            key: &self.key,
            message,
            signature,
        };
        if ed25519::verify(&item) {
            Ok(())
        } else {
            Err(JwsError::BadSignature)
        }
    }
}

/// Verifies many signed objects at once, each with the key it names. `true` only if every
/// signature verifies (and every `kid` matches its key); on `false`, verify them one by one
/// with [`VerifyingKey::verify`] to learn which failed.
pub fn verify_batch(items: &[(&VerifyingKey, &CompactJws)]) -> bool {
    if items.iter().any(|(key, jws)| jws.kid() != &key.kid) {
        return false;
    }
    let items: Vec<ed25519::Item<'_>> = items
        .iter()
        .map(|(key, jws)| ed25519::Item {
            key: &key.key,
            message: jws.signing_input(),
            signature: jws.signature(),
        })
        .collect();
    ed25519::verify_batch(&items)
}

/// Header members Lading interprets; parsing into a struct also refuses duplicates of them.
#[derive(Deserialize)]
struct KnownHeader {
    alg: Option<Value>,
    kid: Option<Value>,
    typ: Option<Value>,
    crit: Option<IgnoredAny>,
    b64: Option<IgnoredAny>,
}

/// A parsed, well-formed compact JWS whose signature has not been checked yet.
#[derive(Clone, PartialEq, Eq)]
pub struct CompactJws {
    compact: String,
    signing_input_len: usize,
    kid: KeyId,
    typ: Option<String>,
    payload: Vec<u8>,
    signature: [u8; 64],
    /// The header is exactly `{"alg":"EdDSA","kid":..,"typ":..}` in canonical form.
    canonical_header: bool,
}

/// Whether `header` is the one header Lading writes for `kid` and `typ`, in RFC 8785 form.
/// Compared piece by piece, with no allocation: it runs on every submission.
fn is_canonical_header(header: &[u8], kid: &KeyId, typ: &str) -> bool {
    // A kid needs no escaping (see `KeyId`); nor does a typ of printable ASCII without
    // quotes or backslashes, which is every typ Lading uses.
    if !typ
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        let canonical =
            canonicalize(&serde_json::json!({"alg": "EdDSA", "kid": kid.as_str(), "typ": typ}));
        return canonical == header;
    }
    let pieces: [&[u8]; 5] = [
        br#"{"alg":"EdDSA","kid":""#,
        kid.as_str().as_bytes(),
        br#"","typ":""#,
        typ.as_bytes(),
        br#""}"#,
    ];
    let mut rest = header;
    for piece in pieces {
        match rest.strip_prefix(piece) {
            Some(after) => rest = after,
            None => return false,
        }
    }
    rest.is_empty()
}

/// Base64url length of [`MAX_HEADER_BYTES`] bytes.
const MAX_HEADER_B64: usize = MAX_HEADER_BYTES.div_ceil(3) * 4;

impl CompactJws {
    pub fn parse(s: &str) -> Result<Self, JwsError> {
        Self::parse_cow(std::borrow::Cow::Borrowed(s))
    }

    /// [`Self::parse`], keeping `s` itself rather than a copy of it (an exporter parses a
    /// million entries it has just read).
    pub fn parse_owned(s: String) -> Result<Self, JwsError> {
        Self::parse_cow(std::borrow::Cow::Owned(s))
    }

    fn parse_cow(text: std::borrow::Cow<'_, str>) -> Result<Self, JwsError> {
        let s: &str = &text;
        let malformed = |m: &str| JwsError::Malformed(m.to_owned());
        let mut parts = s.split('.');
        let (Some(h), Some(p), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("a compact JWS has exactly three parts"));
        };
        if h.len() > MAX_HEADER_B64 {
            return Err(JwsError::HeaderTooLarge);
        }
        let header_bytes = unb64(h, "header").map_err(JwsError::Malformed)?;
        // JSON text is UTF-8 (RFC 8259 §8.1); serde_json skips members it ignores without
        // checking that, so it is checked here.
        let header =
            std::str::from_utf8(&header_bytes).map_err(|_| malformed("the header is not UTF-8"))?;
        // serde reads a struct from a JSON array too (members by position): only an object is
        // a header.
        if !header
            .trim_start_matches([' ', '\t', '\n', '\r'])
            .starts_with('{')
        {
            return Err(malformed("the header is not a JSON object"));
        }
        let known: KnownHeader = serde_json::from_str(header).map_err(|e| {
            if serde_json::from_str::<Map<String, Value>>(header).is_err() {
                malformed("the header is not a JSON object")
            } else {
                JwsError::Malformed(format!("header: {e}"))
            }
        })?;
        match known.alg {
            Some(Value::String(alg)) if alg == "EdDSA" => {}
            Some(Value::String(alg)) => return Err(JwsError::UnsupportedAlgorithm(alg)),
            Some(_) => return Err(malformed("header alg must be a string")),
            None => return Err(malformed("header has no alg")),
        }
        if known.crit.is_some() {
            return Err(malformed("header crit is not supported"));
        }
        if known.b64.is_some() {
            return Err(malformed("header b64 is not supported"));
        }
        let kid = match known.kid {
            Some(Value::String(kid)) => kid
                .parse::<KeyId>()
                .map_err(|e| JwsError::Malformed(format!("header kid: {e}")))?,
            Some(_) => return Err(malformed("header kid must be a string")),
            None => return Err(malformed("header has no kid")),
        };
        let typ = match known.typ {
            Some(Value::String(typ)) => Some(typ),
            Some(_) => return Err(malformed("header typ must be a string")),
            None => None,
        };
        if p.is_empty() {
            return Err(malformed("detached (empty) payloads are not supported"));
        }
        let payload = unb64(p, "payload").map_err(JwsError::Malformed)?;
        let signature = unb64(sig, "signature").map_err(JwsError::Malformed)?;
        let signature = <[u8; 64]>::try_from(signature.as_slice())
            .map_err(|_| malformed("an Ed25519 signature is 64 bytes"))?;
        if header_bytes.len() > MAX_HEADER_BYTES {
            return Err(JwsError::HeaderTooLarge);
        }
        let canonical_header = typ
            .as_deref()
            .is_some_and(|typ| is_canonical_header(&header_bytes, &kid, typ));
        let signing_input_len = h.len() + 1 + p.len();
        Ok(Self {
            canonical_header,
            compact: text.into_owned(),
            signing_input_len,
            kid,
            typ,
            payload,
            signature,
        })
    }

    pub fn kid(&self) -> &KeyId {
        &self.kid
    }

    pub fn typ(&self) -> Option<&str> {
        self.typ.as_deref()
    }

    /// Whether the protected header is exactly the one Lading writes:
    /// `{"alg":"EdDSA","kid":<kid>,"typ":<typ>}` in RFC 8785 canonical form, nothing else.
    pub fn has_canonical_header(&self) -> bool {
        self.canonical_header
    }

    pub fn payload_bytes(&self) -> &[u8] {
        &self.payload
    }

    /// The bytes the signature covers: `BASE64URL(header) "." BASE64URL(payload)`.
    pub fn signing_input(&self) -> &[u8] {
        &self.compact.as_bytes()[..self.signing_input_len]
    }

    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }

    pub fn as_str(&self) -> &str {
        &self.compact
    }

    /// SHA-256 of the compact serialisation's ASCII bytes.
    pub fn checksum(&self) -> Digest {
        Digest::of(self.compact.as_bytes())
    }

    /// Same as `key.verify(self)`: the key must carry this JWS's `kid`.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), JwsError> {
        key.verify(self)
    }
}

impl fmt::Debug for CompactJws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompactJws")
            .field("kid", &self.kid)
            .field("typ", &self.typ)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

impl fmt::Display for CompactJws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.compact)
    }
}

/// Why a typed, canonical-JSON signed object (transition, event, checkpoint) could not be
/// opened: the failures they share, each kept once here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error(transparent)]
    Jws(#[from] JwsError),
    #[error("JWS typ must be {expected:?}, found {found:?}")]
    WrongType {
        expected: &'static str,
        found: Option<String>,
    },
    #[error("the payload is not RFC 8785 canonical JSON")]
    NonCanonical,
    #[error(
        "the protected header must be exactly {{\"alg\":\"EdDSA\",\"kid\":..,\"typ\":..}} in RFC 8785 \
         canonical form: no other members, that order, no whitespace"
    )]
    NonCanonicalHeader,
}

impl EnvelopeError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Jws(e) => e.code(),
            Self::WrongType { .. } => "wrong_type",
            Self::NonCanonical => "non_canonical_payload",
            Self::NonCanonicalHeader => "non_canonical_header",
        }
    }
}

/// Parses `compact`, checks its `typ`, that its header is the canonical one and that its
/// payload is canonical JSON, and returns the parsed payload. The signature is not checked.
pub(crate) fn open_envelope(
    compact: &str,
    typ: &'static str,
) -> Result<(CompactJws, Value), EnvelopeError> {
    let jws = CompactJws::parse(compact).map_err(EnvelopeError::Jws)?;
    if jws.typ() != Some(typ) {
        return Err(EnvelopeError::WrongType {
            expected: typ,
            found: jws.typ().map(str::to_owned),
        });
    }
    if !jws.has_canonical_header() {
        return Err(EnvelopeError::NonCanonicalHeader);
    }
    let value = parse_canonical(jws.payload_bytes()).map_err(|_| EnvelopeError::NonCanonical)?;
    Ok((jws, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RFC8037_D: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const RFC8037_X: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const RFC8037_JWS: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

    fn rfc_key() -> SigningKey {
        let mut d = [0u8; 32];
        hex::decode_to_slice(RFC8037_D, &mut d).unwrap();
        SigningKey::new(
            "rfc8037".parse().unwrap(),
            ed25519_dalek::SigningKey::from_bytes(&d),
        )
    }

    fn kid(s: &str) -> KeyId {
        s.parse().unwrap()
    }

    #[test]
    fn rfc8037_a1_keys_and_a3_thumbprint() {
        let key = rfc_key();
        assert_eq!(hex::encode(key.key.verifying_key().to_bytes()), RFC8037_X);
        let jwk = Jwk::from_signing_key(&key, false);
        let v = serde_json::to_value(&jwk).unwrap();
        assert_eq!(v["x"], "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
        assert_eq!(v["d"], "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A");
        assert_eq!(
            jwk.thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn rfc8037_a4_signature() {
        let key = rfc_key();
        let jws = key.sign_with_header(br#"{"alg":"EdDSA"}"#, b"Example of Ed25519 signing");
        assert_eq!(jws, RFC8037_JWS);
        // A.5: verification of the same object.
        let parts: Vec<&str> = RFC8037_JWS.split('.').collect();
        let sig = <[u8; 64]>::try_from(URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).unwrap();
        let input = format!("{}.{}", parts[0], parts[1]);
        assert!(key
            .verifying_key()
            .verify_signature(input.as_bytes(), &sig)
            .is_ok());
        assert_eq!(
            key.verifying_key().verify_signature(b"other", &sig),
            Err(JwsError::BadSignature)
        );
        // That object has no kid, which Lading requires.
        assert_eq!(
            CompactJws::parse(RFC8037_JWS).unwrap_err().code(),
            "malformed_jws"
        );
    }

    #[test]
    fn sign_parse_verify_round_trip() {
        let key = Jwk::generate(kid("shipper-acme:1"), true)
            .signing_key()
            .unwrap();
        let compact = key.sign_compact(b"{\"a\":1}", "lading-test+jws");
        let jws = CompactJws::parse(&compact).unwrap();
        assert_eq!(jws.kid().as_str(), "shipper-acme:1");
        assert_eq!(jws.typ(), Some("lading-test+jws"));
        assert_eq!(jws.payload_bytes(), b"{\"a\":1}");
        assert_eq!(jws.as_str(), compact);
        assert_eq!(jws.checksum(), Digest::of(compact.as_bytes()));
        let header_b64 = compact.split('.').next().unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(header_b64).unwrap(),
            br#"{"alg":"EdDSA","kid":"shipper-acme:1","typ":"lading-test+jws"}"#
        );
        assert!(jws.signing_input().starts_with(header_b64.as_bytes()));
        key.verifying_key().verify(&jws).unwrap();
        jws.verify(&key.verifying_key()).unwrap();

        let other = Jwk::generate(kid("shipper-acme:1"), true)
            .signing_key()
            .unwrap();
        assert_eq!(
            other.verifying_key().verify(&jws),
            Err(JwsError::BadSignature)
        );
        let wrong_kid = Jwk::generate(kid("other"), true).signing_key().unwrap();
        assert_eq!(
            wrong_kid.verifying_key().verify(&jws).unwrap_err().code(),
            "unknown_key"
        );
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let key = Jwk::generate(kid("k1"), false).signing_key().unwrap();
        let compact = key.sign_compact(b"payload-1", "t");
        let mut parts: Vec<String> = compact.split('.').map(str::to_owned).collect();
        parts[1] = b64(b"payload-2");
        let forged = CompactJws::parse(&parts.join(".")).unwrap();
        assert_eq!(
            key.verifying_key().verify(&forged),
            Err(JwsError::BadSignature)
        );
    }

    fn with_header(header: Value) -> String {
        let key = rfc_key();
        key.sign_with_header(&serde_json::to_vec(&header).unwrap(), b"x")
    }

    #[test]
    fn header_rules() {
        let ok = with_header(json!({"alg": "EdDSA", "kid": "k"}));
        assert!(CompactJws::parse(&ok).is_ok());
        let cases = [
            (json!({"alg": "ES256", "kid": "k"}), "unsupported_algorithm"),
            (json!({"alg": "none", "kid": "k"}), "unsupported_algorithm"),
            (json!({"kid": "k"}), "malformed_jws"),
            (json!({"alg": "EdDSA"}), "malformed_jws"),
            (json!({"alg": "EdDSA", "kid": "bad kid"}), "malformed_jws"),
            (
                json!({"alg": "EdDSA", "kid": "k", "crit": ["exp"]}),
                "malformed_jws",
            ),
            (
                json!({"alg": "EdDSA", "kid": "k", "b64": false}),
                "malformed_jws",
            ),
            (
                json!({"alg": "EdDSA", "kid": "k", "typ": 1}),
                "malformed_jws",
            ),
            (json!(["alg"]), "malformed_jws"),
        ];
        for (header, code) in cases {
            let e = CompactJws::parse(&with_header(header.clone())).unwrap_err();
            assert_eq!(e.code(), code, "{header}");
        }
        let dup = rfc_key().sign_with_header(br#"{"alg":"EdDSA","kid":"k","alg":"EdDSA"}"#, b"x");
        assert_eq!(CompactJws::parse(&dup).unwrap_err().code(), "malformed_jws");
    }

    /// Found by the `jws` fuzz target: a member Lading ignores held bytes that are not UTF-8,
    /// and the header was accepted although it is no JSON text.
    #[test]
    fn header_must_be_utf8() {
        let bad =
            rfc_key().sign_with_header(b"{\"alg\":\"EdDSA\",\"kid\":\"k\",\"x\":\"\xc7\"}", b"x");
        assert_eq!(
            CompactJws::parse(&bad),
            Err(JwsError::Malformed("the header is not UTF-8".into()))
        );
        let good = rfc_key().sign_with_header(
            "{\"alg\":\"EdDSA\",\"kid\":\"k\",\"x\":\"é\"}".as_bytes(),
            b"x",
        );
        assert!(CompactJws::parse(&good).is_ok());
    }

    /// Found with the `jws` fuzz target: serde fills a struct from a JSON array by position,
    /// so `["EdDSA","k",null,null,null]` passed for a header naming alg and kid.
    #[test]
    fn header_must_be_an_object() {
        let array = rfc_key().sign_with_header(br#"["EdDSA","k",null,null,null]"#, b"x");
        assert_eq!(
            CompactJws::parse(&array),
            Err(JwsError::Malformed(
                "the header is not a JSON object".into()
            ))
        );
        let spaced = rfc_key().sign_with_header(b" \r\n\t{\"alg\":\"EdDSA\",\"kid\":\"k\"}", b"x");
        assert!(CompactJws::parse(&spaced).is_ok());
    }

    #[test]
    fn a_typed_envelope_has_one_header_form() {
        let key = rfc_key();
        let payload = br#"{"a":1}"#;
        let good = key.sign_compact(payload, "lading-x+jws");
        assert!(CompactJws::parse(&good).unwrap().has_canonical_header());
        assert!(open_envelope(&good, "lading-x+jws").is_ok());
        let other_forms = [
            // Reordered, spaced, an extra member, an escaped spelling of the same string.
            br#"{"kid":"rfc8037","alg":"EdDSA","typ":"lading-x+jws"}"#.to_vec(),
            br#"{"alg": "EdDSA","kid":"rfc8037","typ":"lading-x+jws"}"#.to_vec(),
            br#"{"alg":"EdDSA","kid":"rfc8037","typ":"lading-x+jws","x":1}"#.to_vec(),
            br#"{"alg":"EdDSA","kid":"rfc8037","typ":"lading-x\u002bjws"}"#.to_vec(),
        ];
        for header in other_forms {
            let jws = key.sign_with_header(&header, payload);
            // Still a well-formed JWS, and its signature verifies ...
            let parsed = CompactJws::parse(&jws).unwrap();
            key.verifying_key().verify(&parsed).unwrap();
            // ... but not the one form of a signed statement.
            assert!(
                !parsed.has_canonical_header(),
                "{}",
                String::from_utf8_lossy(&header)
            );
            assert_eq!(
                open_envelope(&jws, "lading-x+jws").unwrap_err().code(),
                "non_canonical_header"
            );
        }
        // The header's size is bounded before it is decoded.
        let huge =
            json!({"alg": "EdDSA", "kid": "rfc8037", "typ": "t", "pad": "x".repeat(700_000)});
        let jws = key.sign_with_header(&canonicalize(&huge), payload);
        assert_eq!(
            CompactJws::parse(&jws).unwrap_err().code(),
            "header_too_large"
        );
        let just_over =
            json!({"alg": "EdDSA", "kid": "rfc8037", "typ": "x".repeat(MAX_HEADER_BYTES)});
        let jws = key.sign_with_header(&canonicalize(&just_over), payload);
        assert_eq!(
            CompactJws::parse(&jws).unwrap_err().code(),
            "header_too_large"
        );
    }

    #[test]
    fn encoding_rules() {
        let ok = with_header(json!({"alg": "EdDSA", "kid": "k"}));
        let parts: Vec<&str> = ok.split('.').collect();
        let bad = [
            format!("{}.{}", parts[0], parts[1]),
            format!("{ok}.x"),
            format!("{}..{}", parts[0], parts[2]),
            format!("{}.{}=.{}", parts[0], parts[1], parts[2]),
            format!("{}.{}.{}", parts[0], parts[1], &parts[2][..80]),
            format!("{}.{}+.{}", parts[0], parts[1], parts[2]),
            // "eA" decodes to "x", "eB" has non-zero trailing bits: a second spelling, refused.
            format!("{}.eB.{}", parts[0], parts[2]),
        ];
        assert_eq!(parts[1], "eA");
        for s in bad {
            assert_eq!(
                CompactJws::parse(&s).unwrap_err().code(),
                "malformed_jws",
                "{s}"
            );
        }
    }

    #[test]
    fn jwk_serde_and_checks() {
        let jwk = Jwk::generate(kid("carrier-oceanic:2026"), true);
        let text = serde_json::to_string(&jwk).unwrap();
        let back: Jwk = serde_json::from_str(&text).unwrap();
        assert_eq!(back, jwk);
        assert!(back.is_test_key());
        assert!(back.is_private());
        let public = jwk.to_public();
        assert!(!public.is_private());
        assert_eq!(
            public.signing_key().unwrap_err().code(),
            "missing_private_key"
        );
        assert_eq!(
            public.verifying_key().unwrap(),
            jwk.signing_key().unwrap().verifying_key()
        );
        let v = serde_json::to_value(&public).unwrap();
        assert!(v.get("d").is_none());
        assert_eq!(v["kty"], "OKP");
        assert_eq!(v["lading_test_key"], true);
        let prod = Jwk::generate(kid("k"), false);
        assert!(serde_json::to_value(&prod)
            .unwrap()
            .get("lading_test_key")
            .is_none());
        assert!(!prod.is_test_key());

        let mut v = serde_json::to_value(&jwk).unwrap();
        v["d"] = json!(b64(&[7u8; 32]));
        let e = serde_json::from_value::<Jwk>(v).unwrap_err();
        assert!(e.to_string().contains("not the public key of d"), "{e}");
        for (member, value) in [
            ("kty", json!("EC")),
            ("crv", json!("X25519")),
            ("x", json!("AAAA")),
            ("use", json!("enc")),
            ("alg", json!("ES256")),
            ("kid", json!("")),
        ] {
            let mut v = serde_json::to_value(&public).unwrap();
            v[member] = value;
            assert!(serde_json::from_value::<Jwk>(v).is_err(), "{member}");
        }
    }

    #[test]
    fn debug_never_prints_the_private_key() {
        let jwk = Jwk::from_signing_key(&rfc_key(), false);
        let printed = format!("{jwk:?}");
        assert!(!printed.contains("nWGxne"));
        assert!(printed.contains("11qYAYKx"));
    }

    #[test]
    fn envelope_checks_type_and_canonical_payload() {
        let key = rfc_key();
        let good = key.sign_compact(br#"{"a":1,"b":2}"#, "lading-x+jws");
        let (jws, value) = open_envelope(&good, "lading-x+jws").unwrap();
        assert_eq!(value, json!({"a": 1, "b": 2}));
        assert_eq!(jws.as_str(), good);
        assert!(matches!(
            open_envelope(&good, "lading-y+jws"),
            Err(EnvelopeError::WrongType { .. })
        ));
        let spaced = key.sign_compact(br#"{"b":2,"a":1}"#, "lading-x+jws");
        assert_eq!(
            open_envelope(&spaced, "lading-x+jws").unwrap_err(),
            EnvelopeError::NonCanonical
        );
    }
}
