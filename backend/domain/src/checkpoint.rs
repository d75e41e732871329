//! The registry's signed checkpoint: "the ledger had `size` entries and Merkle root `root`".
//!
//! A checkpoint is a compact JWS (see [`crate::jws`]) signed with the registry's key, `typ`
//! `"lading-checkpoint+jws"`, whose payload is the RFC 8785 canonical JSON
//! `{"blockSize":B,"root":"<64 hex>","size":S,"time":"YYYY-MM-DDTHH:MM:SS.mmmZ"}` (exactly
//! these members). `root` is the ledger root of the first `size` entries computed with block
//! size `blockSize` as described in [`crate::merkle`]; `blockSize` ≥ 1; `size` < 2^53 (JSON
//! numbers are doubles). Two valid checkpoints of one registry with the same size and
//! different roots prove that the registry equivocated.

use serde::{Deserialize, Serialize};

use crate::canonical::canonical_bytes_of;
use crate::digest::Digest;
use crate::ids::{KeyId, Timestamp};
use crate::jws::{open_envelope, CompactJws, EnvelopeError, SigningKey, VerifyingKey};

/// The JWS `typ` of a checkpoint.
pub const CHECKPOINT_TYP: &str = "lading-checkpoint+jws";

/// Largest size a checkpoint can state exactly in JSON (2^53).
pub const MAX_CHECKPOINT_SIZE: u64 = 1 << 53;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Checkpoint {
    pub size: u64,
    pub root: Digest,
    pub time: Timestamp,
    pub block_size: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The JWS, its `typ` or its payload's canonical form.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("invalid checkpoint: {0}")]
    Invalid(String),
}

impl CheckpointError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Envelope(e) => e.code(),
            Self::Invalid(_) => "invalid_checkpoint",
        }
    }
}

impl Checkpoint {
    fn check(&self) -> Result<(), CheckpointError> {
        if self.block_size == 0 {
            return Err(CheckpointError::Invalid(
                "blockSize must be at least 1".into(),
            ));
        }
        if self.size >= MAX_CHECKPOINT_SIZE {
            return Err(CheckpointError::Invalid("size must be below 2^53".into()));
        }
        Ok(())
    }

    /// The canonical payload bytes.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        canonical_bytes_of(self)
    }

    /// Signs as a compact JWS with `typ` `lading-checkpoint+jws`.
    pub fn sign(&self, key: &SigningKey) -> String {
        key.sign_compact(&self.canonical_bytes(), CHECKPOINT_TYP)
    }
}

/// A parsed checkpoint JWS; its content is only trustworthy after [`SignedCheckpoint::verify`].
#[derive(Debug, Clone, PartialEq)]
pub struct SignedCheckpoint {
    jws: CompactJws,
    checkpoint: Checkpoint,
}

impl SignedCheckpoint {
    pub fn parse(compact: &str) -> Result<Self, CheckpointError> {
        let (jws, value) = open_envelope(compact, CHECKPOINT_TYP)?;
        let checkpoint: Checkpoint =
            serde_json::from_value(value).map_err(|e| CheckpointError::Invalid(e.to_string()))?;
        checkpoint.check()?;
        Ok(Self { jws, checkpoint })
    }

    /// Verifies the registry's signature and returns the checkpoint.
    pub fn verify(&self, key: &VerifyingKey) -> Result<Checkpoint, CheckpointError> {
        key.verify(&self.jws).map_err(EnvelopeError::from)?;
        Ok(self.checkpoint)
    }

    /// The content, signature not checked.
    pub fn unverified(&self) -> &Checkpoint {
        &self.checkpoint
    }

    pub fn kid(&self) -> &KeyId {
        self.jws.kid()
    }

    pub fn jws(&self) -> &CompactJws {
        &self.jws
    }

    pub fn as_str(&self) -> &str {
        self.jws.as_str()
    }

    /// SHA-256 of the compact JWS bytes.
    pub fn checksum(&self) -> Digest {
        self.jws.checksum()
    }
}

/// A checkpoint as the registry signed it: its content, and the compact JWS that carries it.
///
/// On the wire (`proof-answer.json#/properties/checkpoint`) the payload's members and `signed`
/// side by side — what `GET /v1/checkpoints/latest` and `/{size}` answer, and the checkpoint of
/// every proof answer, at the registry and at a replica alike. Read from outside, the members
/// are a claim: only `signed`, parsed and verified ([`SignedCheckpoint`]), says anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishedCheckpoint {
    #[serde(flatten)]
    pub checkpoint: Checkpoint,
    /// The compact JWS over the canonical checkpoint payload, signed by the registry key.
    pub signed: String,
}

impl PublishedCheckpoint {
    /// A checkpoint as it was parsed from its JWS.
    pub fn of(signed: &SignedCheckpoint) -> Self {
        Self {
            checkpoint: *signed.unverified(),
            signed: signed.as_str().to_owned(),
        }
    }
}

/// An inclusion proof with everything needed to check it offline (`proof-answer.json`): the
/// entry's leaf hash, its path, and the signed checkpoint the path leads to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProofAnswer {
    pub leaf_hash: Digest,
    pub proof: crate::merkle::InclusionProof,
    pub checkpoint: PublishedCheckpoint,
}

/// A consistency proof with the two signed checkpoints it links (`consistency-answer.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsistencyAnswer {
    pub from: PublishedCheckpoint,
    pub to: PublishedCheckpoint,
    pub proof: crate::merkle::ConsistencyProof,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::{canonicalize, to_canonical_vec};
    use crate::jws::Jwk;

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            size: 2500,
            root: Digest::of(b"root"),
            time: "2026-11-23T12:00:00.000Z".parse().unwrap(),
            block_size: 1024,
        }
    }

    fn key() -> SigningKey {
        Jwk::generate("registry:1".parse().unwrap(), true)
            .signing_key()
            .unwrap()
    }

    #[test]
    fn payload_is_the_documented_canonical_json() {
        let expected = format!(
            r#"{{"blockSize":1024,"root":"{}","size":2500,"time":"2026-11-23T12:00:00.000Z"}}"#,
            Digest::of(b"root").to_hex()
        );
        assert_eq!(
            String::from_utf8(checkpoint().canonical_bytes()).unwrap(),
            expected
        );
        // Written straight to canonical bytes, not through the fallback.
        assert_eq!(
            to_canonical_vec(&checkpoint()).unwrap(),
            expected.into_bytes()
        );
    }

    #[test]
    fn a_published_checkpoint_is_its_members_and_its_jws() {
        let signed = checkpoint().sign(&key());
        let published = PublishedCheckpoint::of(&SignedCheckpoint::parse(&signed).unwrap());
        let v = serde_json::to_value(&published).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "size": 2500,
                "root": Digest::of(b"root").to_hex(),
                "time": "2026-11-23T12:00:00.000Z",
                "blockSize": 1024,
                "signed": signed,
            })
        );
        assert_eq!(
            serde_json::from_value::<PublishedCheckpoint>(v).unwrap(),
            published
        );
    }

    #[test]
    fn sign_parse_verify() {
        let key = key();
        let compact = checkpoint().sign(&key);
        let signed = SignedCheckpoint::parse(&compact).unwrap();
        assert_eq!(signed.unverified(), &checkpoint());
        assert_eq!(signed.verify(&key.verifying_key()), Ok(checkpoint()));
        assert_eq!(signed.kid(), &key.kid);
        let impostor = Jwk::generate("registry:1".parse().unwrap(), true)
            .signing_key()
            .unwrap();
        assert_eq!(
            signed.verify(&impostor.verifying_key()).unwrap_err().code(),
            "bad_signature"
        );
    }

    #[test]
    fn refuses_wrong_type_extra_members_and_zero_block_size() {
        let key = key();
        let other = key.sign_compact(&checkpoint().canonical_bytes(), "lading-event+jws");
        assert_eq!(
            SignedCheckpoint::parse(&other).unwrap_err().code(),
            "wrong_type"
        );
        let mut v = serde_json::to_value(checkpoint()).unwrap();
        v["extra"] = serde_json::json!(1);
        let extra = key.sign_compact(&canonicalize(&v), CHECKPOINT_TYP);
        assert_eq!(
            SignedCheckpoint::parse(&extra).unwrap_err().code(),
            "invalid_checkpoint"
        );
        let zero = Checkpoint {
            block_size: 0,
            ..checkpoint()
        }
        .sign(&key);
        assert_eq!(
            SignedCheckpoint::parse(&zero).unwrap_err().code(),
            "invalid_checkpoint"
        );
        let huge = Checkpoint {
            size: MAX_CHECKPOINT_SIZE,
            ..checkpoint()
        }
        .sign(&key);
        assert_eq!(
            SignedCheckpoint::parse(&huge).unwrap_err().code(),
            "invalid_checkpoint"
        );
    }
}
