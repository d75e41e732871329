//! SHA-256 digests as a type: 32 bytes that travel as 64 lowercase hex characters.
//!
//! Every checksum in Lading (document checksum, transition checksum, leaf hash, Merkle node)
//! is a [`Digest`]. Parsing refuses anything but exactly 64 lowercase hex digits, so two
//! spellings of one digest can never both be accepted.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Digest(pub [u8; 32]);

/// Why a digest did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a SHA-256 digest is 64 lowercase hexadecimal characters")]
pub struct DigestParseError;

impl Digest {
    /// SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// SHA-256 of the concatenation of `parts`, without building the concatenation.
    pub fn of_parts(parts: &[&[u8]]) -> Self {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        Self(hasher.finalize().into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Builds a digest from a 32-byte slice (as stored in the database).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DigestParseError> {
        <[u8; 32]>::try_from(bytes)
            .map(Self)
            .map_err(|_| DigestParseError)
    }

    pub fn to_hex(&self) -> String {
        self.hex_buffer().as_str().to_owned()
    }

    /// The lowercase hex form on the stack: digests are written on every hot path (payloads,
    /// states, answers), and this spares an allocation and `hex::encode`'s per-char iterator.
    fn hex_buffer(&self) -> HexBuffer {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (i, byte) in self.0.iter().enumerate() {
            out[2 * i] = DIGITS[usize::from(byte >> 4)];
            out[2 * i + 1] = DIGITS[usize::from(byte & 0x0f)];
        }
        HexBuffer(out)
    }
}

/// 64 ASCII hex digits.
struct HexBuffer([u8; 64]);

impl HexBuffer {
    fn as_str(&self) -> &str {
        // Only ASCII digits and a-f are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The value of each lower-case hexadecimal digit; 0x80 for every other byte.
const NIBBLE: [u8; 256] = {
    let mut table = [0x80u8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

impl FromStr for Digest {
    type Err = DigestParseError;

    /// Checked and decoded in one pass through a table (every transition carries two digests;
    /// an exporter or a verifier reads millions).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(DigestParseError);
        }
        let mut out = [0u8; 32];
        let mut bad = 0u8;
        for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            let (high, low) = (NIBBLE[usize::from(pair[0])], NIBBLE[usize::from(pair[1])]);
            bad |= high | low;
            *o = (high << 4) | (low & 0x0f);
        }
        if bad & 0x80 != 0 {
            return Err(DigestParseError);
        }
        Ok(Self(out))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hex_buffer().as_str())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.hex_buffer().as_str())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::ids::deserialize_from_str(deserializer)
    }
}

/// In the API's contract a digest is what it serializes to: 64 lowercase hexadecimal characters.
impl utoipa::PartialSchema for Digest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[0-9a-f]{64}$"))
            .description(Some("A SHA-256 digest, in lowercase hexadecimal"))
            .into()
    }
}

impl utoipa::ToSchema for Digest {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_64_lower_case_hex_digits_parse() {
        let hex = Digest::of(b"abc").to_hex();
        assert_eq!(hex.parse::<Digest>(), Ok(Digest::of(b"abc")));
        assert!(hex.to_uppercase().parse::<Digest>().is_err());
        assert!(hex[..62].parse::<Digest>().is_err());
        assert!(format!("{hex}00").parse::<Digest>().is_err());
        for bad in ['g', '/', ':', '`', 'G', ' ', '\u{e9}'] {
            let mut text = hex[..63].to_owned();
            text.push(bad);
            if text.len() == 64 {
                assert!(text.parse::<Digest>().is_err(), "{text}");
            }
            let mut text = String::from(bad);
            text.push_str(&hex[1..]);
            if text.len() == 64 {
                assert!(text.parse::<Digest>().is_err(), "{text}");
            }
        }
        assert_eq!("0".repeat(64).parse::<Digest>(), Ok(Digest([0; 32])));
        assert_eq!("f".repeat(64).parse::<Digest>(), Ok(Digest([0xff; 32])));
    }

    #[test]
    fn sha256_of_abc_matches_fips_180_2() {
        assert_eq!(
            Digest::of(b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn parts_hash_like_the_concatenation() {
        assert_eq!(Digest::of_parts(&[b"a", b"bc"]), Digest::of(b"abc"));
    }

    #[test]
    fn parse_refuses_uppercase_short_and_non_hex() {
        let good = Digest::of(b"x").to_hex();
        assert_eq!(good, hex::encode(Digest::of(b"x").0));
        assert_eq!(good.parse::<Digest>(), Ok(Digest::of(b"x")));
        assert!(good.to_uppercase().parse::<Digest>().is_err());
        assert!(good[..63].parse::<Digest>().is_err());
        assert!(format!("{}g", &good[..63]).parse::<Digest>().is_err());
    }
}
