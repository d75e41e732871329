//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): the receiver checks
//! `webhook-signature` = `v1,` + base64(HMAC-SHA256(secret, id.timestamp.body)) with any of that
//! specification's libraries.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;

/// The signature scheme's version tag.
pub const SIGNATURE_VERSION: &str = "v1";

/// The prefix of a Standard Webhooks secret.
const SECRET_PREFIX: &str = "whsec_";

/// A new random secret, `whsec_` + base64 of 32 bytes.
pub fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The `webhook-signature` header for message `id`, sent at `timestamp` (Unix seconds), with
/// `body`; `None` for a secret that is not one [`new_secret`] makes.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!(
        "{SIGNATURE_VERSION},{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference implementations.
    #[test]
    fn signs_as_the_specification_s_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let signed = sign(
            secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            signed.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    #[test]
    fn a_new_secret_signs_and_differs_each_time() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert!(sign(&a, "id", 1, b"x").is_some());
        assert_ne!(sign(&a, "id", 1, b"x"), sign(&b, "id", 1, b"x"));
        assert_eq!(sign("not-a-secret", "id", 1, b"x"), None);
    }
}
