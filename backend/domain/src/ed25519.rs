//! Ed25519 signature verification as Lading defines it, one at a time or in batches.
//!
//! The rule (RFC 8032 §5.1.7, in its cofactored form) for a signature `R ‖ S` by public key `A`
//! over message `M`:
//!
//! 1. `A` decodes to a curve point that is not of small order (weak keys are refused when a
//!    key is registered and again here);
//! 2. `S`, read little-endian, is below the group order `L` (no malleable encodings);
//! 3. `R` decodes to a curve point that is not of small order;
//! 4. with `k = SHA-512(R ‖ A ‖ M) mod L`, the point `[8]([S]B − R − [k]A)` is the identity.
//!
//! Every signature made by a standard Ed25519 signer passes, and so does its check by a
//! "strict" cofactorless verifier. The cofactored equation is chosen because it is the one a
//! batch can check: a batch of `n` signatures is accepted when `[8] Σ zᵢ([Sᵢ]B − Rᵢ − [kᵢ]Aᵢ)`
//! is the identity for random 128-bit `zᵢ`, which holds (except with probability about 2⁻¹²⁸)
//! exactly when every signature passes on its own. Batches cost about half as much per
//! signature as single checks. The registry verifies in batches; replicas and third-party
//! verifiers may check one at a time and always reach the same verdict.

use std::collections::HashMap;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use rand_core::{OsRng, RngCore};
use sha2::{Digest as _, Sha512};

/// One signature to check: the signer's key, the signed message and the 64 signature bytes.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    pub key: &'a ed25519_dalek::VerifyingKey,
    pub message: &'a [u8],
    pub signature: &'a [u8; 64],
}

/// The parts of a signature that pass rules 2 and 3, and its challenge `k`.
struct Decoded {
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

/// The signer's key as a point, if it passes rule 1.
fn key_point(key: &ed25519_dalek::VerifyingKey) -> Option<EdwardsPoint> {
    let a = key.to_edwards();
    (!a.is_small_order()).then_some(a)
}

fn decode(item: &Item<'_>) -> Option<Decoded> {
    let mut r_bytes = [0u8; 32];
    r_bytes.copy_from_slice(&item.signature[..32]);
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(&item.signature[32..]);
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
    let r = CompressedEdwardsY(r_bytes).decompress()?;
    if r.is_small_order() {
        return None;
    }
    let mut hash = Sha512::new();
    hash.update(r_bytes);
    hash.update(item.key.as_bytes());
    hash.update(item.message);
    let k = Scalar::from_bytes_mod_order_wide(&hash.finalize().into());
    Some(Decoded { r, s, k })
}

/// Checks one signature under the rule of this module.
pub fn verify(item: &Item<'_>) -> bool {
    let (Some(a), Some(d)) = (key_point(item.key), decode(item)) else {
        return false;
    };
    // [k](−A) + [S]B − R, times the cofactor.
    let p = EdwardsPoint::vartime_double_scalar_mul_basepoint(&d.k, &-a, &d.s) - d.r;
    p.mul_by_cofactor().is_identity()
}

/// Checks all signatures at once: `true` only if every one of them passes [`verify`] (up to
/// a 2⁻¹²⁸ chance of accepting a bad batch). On `false`, check them one by one to find which.
///
/// The terms of signatures made with the same key are gathered into one,
/// `(Σ zᵢkᵢ)·A`, so the multiscalar multiplication has one point per signature (its `R`) and
/// one per distinct key rather than two per signature: real batches come from a handful of
/// parties, and this nearly halves the cost.
pub fn verify_batch(items: &[Item<'_>]) -> bool {
    let mut rng = OsRng;
    let mut b_coefficient = Scalar::ZERO;
    let mut scalars = Vec::with_capacity(1 + items.len() + 8);
    let mut points = Vec::with_capacity(1 + items.len() + 8);
    // The keys' coefficients, accumulated apart and appended after the R terms.
    let mut keys: Vec<(&[u8; 32], EdwardsPoint, Scalar)> = Vec::new();
    let mut key_slots: HashMap<&[u8; 32], usize> = HashMap::new();
    scalars.push(Scalar::ZERO); // the basepoint's coefficient, filled in below
    points.push(ED25519_BASEPOINT_POINT);
    for item in items {
        let slot = match key_slots.get(item.key.as_bytes()) {
            Some(&slot) => slot,
            None => {
                let Some(a) = key_point(item.key) else {
                    return false;
                };
                keys.push((item.key.as_bytes(), a, Scalar::ZERO));
                key_slots.insert(item.key.as_bytes(), keys.len() - 1);
                keys.len() - 1
            }
        };
        let Some(d) = decode(item) else {
            return false;
        };
        let mut z = [0u8; 16];
        rng.fill_bytes(&mut z);
        let z = Scalar::from(u128::from_le_bytes(z));
        b_coefficient += z * d.s;
        scalars.push(-z);
        points.push(d.r);
        keys[slot].2 -= z * d.k;
    }
    scalars[0] = b_coefficient;
    for (_, a, coefficient) in keys {
        scalars.push(coefficient);
        points.push(a);
    }
    EdwardsPoint::vartime_multiscalar_mul(scalars, points)
        .mul_by_cofactor()
        .is_identity()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Signer;
    use proptest::prelude::*;

    fn signed(seed: u8, message: &[u8]) -> (ed25519_dalek::VerifyingKey, [u8; 64]) {
        let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        (key.verifying_key(), key.sign(message).to_bytes())
    }

    #[test]
    fn rfc8032_test_1_verifies() {
        // RFC 8032 §7.1, TEST 1: empty message.
        let public: [u8; 32] =
            hex::decode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
                .unwrap()
                .try_into()
                .unwrap();
        let signature: [u8; 64] = hex::decode(
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        )
        .unwrap()
        .try_into()
        .unwrap();
        let key = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
        let item = Item {
            key: &key,
            message: b"",
            signature: &signature,
        };
        assert!(verify(&item));
        assert!(verify_batch(&[item]));
        let mut bad = signature;
        bad[0] ^= 1;
        assert!(!verify(&Item {
            signature: &bad,
            ..item
        }));
    }

    #[test]
    fn a_non_canonical_s_is_refused() {
        let (key, mut signature) = signed(7, b"m");
        // S + L has the same value mod L but is not the canonical encoding.
        let l: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = u16::from(signature[32 + i]) + u16::from(l[i]) + carry;
            signature[32 + i] = (sum & 0xff) as u8;
            carry = sum >> 8;
        }
        let item = Item {
            key: &key,
            message: b"m",
            signature: &signature,
        };
        assert!(!verify(&item));
        assert!(!verify_batch(&[item]));
    }

    #[test]
    fn a_small_order_r_is_refused() {
        let (key, mut signature) = signed(9, b"m");
        // The identity point encodes as y = 1.
        signature[..32].copy_from_slice(&{
            let mut id = [0u8; 32];
            id[0] = 1;
            id
        });
        assert!(!verify(&Item {
            key: &key,
            message: b"m",
            signature: &signature
        }));
    }

    #[test]
    fn one_bad_signature_fails_the_whole_batch() {
        let messages: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 10 + usize::from(i)]).collect();
        let signed: Vec<_> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| signed(i as u8 % 5, m))
            .collect();
        let items: Vec<Item<'_>> = signed
            .iter()
            .zip(&messages)
            .map(|((key, sig), m)| Item {
                key,
                message: m,
                signature: sig,
            })
            .collect();
        assert!(verify_batch(&items));
        let wrong = b"another message".to_vec();
        let mut tampered = items.clone();
        tampered[17].message = &wrong;
        assert!(!verify_batch(&tampered));
        assert!(!verify(&tampered[17]));
    }

    proptest! {
        #[test]
        fn agrees_with_strict_verification_on_honest_and_corrupted_signatures(
            seed in any::<u8>(),
            message in proptest::collection::vec(any::<u8>(), 0..200),
            flip in proptest::option::of(0usize..(64 * 8)),
        ) {
            let (key, mut signature) = signed(seed, &message);
            if let Some(bit) = flip {
                signature[bit / 8] ^= 1 << (bit % 8);
            }
            let strict = key
                .verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&signature))
                .is_ok();
            let item = Item { key: &key, message: &message, signature: &signature };
            prop_assert_eq!(verify(&item), strict);
            prop_assert_eq!(verify_batch(&[item]), strict);
        }
    }
}
