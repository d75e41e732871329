//! The portal's signing key (`[portal] signing_key`): loaded once at start, and refused unless
//! it is a private OKP JWK readable by its owner only (mode 0600 or stricter), not a TEST key
//! (unless `[portal] allow_test_keys`), and a live key of the node's own party in the
//! membership the node follows.

use std::path::Path;

use anyhow::{bail, Context, Result};
use lading_domain::jws::{Jwk, SigningKey};
use lading_domain::membership::Membership;
use lading_domain::PartyId;

/// Reads the key file and checks what can be checked without the membership.
pub fn load(path: &Path, allow_test_keys: bool) -> Result<SigningKey> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("cannot read portal.signing_key {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "portal.signing_key {} is readable by others (mode {:o}): it must be mode 0600 \
                 (chmod 600)",
                path.display(),
                mode & 0o777
            );
        }
    }
    let jwk: Jwk = crate::cli::read_json(path)?;
    if !jwk.is_private() {
        bail!(
            "portal.signing_key {} is a public key: the portal needs the party's private key",
            path.display()
        );
    }
    if jwk.is_test_key() && !allow_test_keys {
        bail!(
            "portal.signing_key {} is a TEST key (published with Lading's fixtures, it proves \
             nothing); set portal.allow_test_keys only for demos and tests",
            path.display()
        );
    }
    Ok(jwk.signing_key()?)
}

/// Refuses a key that is not a live key of `party` in `membership`.
pub fn check_owner(key: &SigningKey, party: &PartyId, membership: &Membership) -> Result<()> {
    let Some(record) = membership.key(&key.kid) else {
        bail!(
            "portal.signing_key: the membership knows no key {} (the node's party is {party})",
            key.kid
        );
    };
    if record.owner.party() != Some(party) {
        bail!(
            "portal.signing_key: key {} is not a key of the node's party {party}",
            key.kid
        );
    }
    if record.revoked_at.is_some() {
        bail!("portal.signing_key: key {} was revoked", key.kid);
    }
    if record.key != key.verifying_key() {
        bail!(
            "portal.signing_key: key {} is not the key the membership holds under that kid",
            key.kid
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn fixtures() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
    }

    fn copy_key(dir: &Path, party: &str, mode: u32) -> std::path::PathBuf {
        let to = dir.join(format!("{party}.jwk"));
        std::fs::copy(fixtures().join(format!("keys/{party}.jwk")), &to).unwrap();
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode)).unwrap();
        to
    }

    fn membership() -> Membership {
        let text = std::fs::read_to_string(fixtures().join("parties.json")).unwrap();
        let file = lading_domain::party::PartyRegistryFile::parse(&text).unwrap();
        Membership::genesis(&file).unwrap()
    }

    #[test]
    fn a_key_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = copy_key(dir.path(), "carrier-oceanic", 0o644);
        let err = load(&path, true).unwrap_err().to_string();
        assert!(err.contains("must be mode 0600"), "{err}");
        let path = copy_key(dir.path(), "carrier-oceanic", 0o600);
        assert!(load(&path, true).is_ok());
    }

    #[test]
    fn a_test_key_needs_allow_test_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = copy_key(dir.path(), "carrier-oceanic", 0o600);
        let err = load(&path, false).unwrap_err().to_string();
        assert!(err.contains("TEST key"), "{err}");
    }

    #[test]
    fn a_public_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = copy_key(dir.path(), "carrier-oceanic", 0o600);
        let jwk: Jwk = crate::cli::read_json(&path).unwrap();
        std::fs::write(&path, serde_json::to_vec(&jwk.to_public()).unwrap()).unwrap();
        let err = load(&path, true).unwrap_err().to_string();
        assert!(err.contains("public key"), "{err}");
    }

    #[test]
    fn the_key_must_be_the_node_partys() {
        let dir = tempfile::tempdir().unwrap();
        let key = load(&copy_key(dir.path(), "carrier-oceanic", 0o600), true).unwrap();
        let members = membership();
        check_owner(&key, &"carrier-oceanic".parse().unwrap(), &members).unwrap();
        let err = check_owner(&key, &"carrier-polaris".parse().unwrap(), &members)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a key of the node's party"), "{err}");
    }
}
