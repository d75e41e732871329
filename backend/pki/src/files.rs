//! Writing PKI material: new files only, keys readable by their owner only.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::PkiError;

/// Creates `dir` (and its parents) when missing. A directory we create is owner-only (0700)
/// because it is about to hold a private key; an existing one is left as it is.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), PkiError> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(PkiError::io(dir))
}

/// Writes a certificate and its key as a pair of new files, the key first.
///
/// Both must be absent: a new certificate next to an old key (or the reverse) would be a pair
/// that does not match. The key is created with `create_new`, so of two runs racing for the same
/// name one loses before writing anything; if the certificate then cannot be written, the key we
/// just made is removed again so no half pair is left.
pub(crate) fn write_pair(
    cert_path: &Path,
    cert_pem: &str,
    key_path: &Path,
    key_pem: &str,
) -> Result<(), PkiError> {
    for path in [cert_path, key_path] {
        if path.exists() {
            return Err(PkiError::Exists(path.to_owned()));
        }
    }
    write_new(key_path, key_pem.as_bytes(), 0o600)?;
    if let Err(e) = write_new(cert_path, cert_pem.as_bytes(), 0o644) {
        // Ours: created by write_new above, so removing it destroys nothing that was there.
        let _ = std::fs::remove_file(key_path);
        return Err(e);
    }
    Ok(())
}

/// Writes `bytes` into a new file with exactly `mode` (the umask is not allowed to widen or
/// narrow it: a certificate is meant to be readable by all, a key by its owner only), and
/// flushes it to disk before returning.
pub(crate) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => PkiError::Exists(path.to_owned()),
            _ => PkiError::Io {
                path: path.to_owned(),
                source,
            },
        })?;
    let written = file
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .and_then(|()| file.write_all(bytes))
        .and_then(|()| file.sync_all());
    if let Err(source) = written {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(PkiError::Io {
            path: path.to_owned(),
            source,
        });
    }
    Ok(())
}

pub(crate) fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(PkiError::io(path))
}
