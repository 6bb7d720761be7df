//! The only file I/O of the crate: private keys as PKCS#8 PEM files of mode 0600, public keys
//! (a trust anchor) as SubjectPublicKeyInfo PEM. A private key file that group or others may
//! read is refused, like ssh does: a key that others could have copied is not a key to sign with.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::Path;

use crate::keys::{KeyError, PrivateKeyDer, PublicKey, Signer, pem_decode, pem_encode};

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path} is readable or writable by others (mode {mode:o}): run chmod 600 {path}, or make a new key")]
    TooOpen { path: String, mode: u32 },
    #[error("{path}: {source}")]
    Key { path: String, source: KeyError },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io { path: path.display().to_string(), source }
}

/// Writes a new private key file (PEM `PRIVATE KEY`) with mode 0600. An existing file is not
/// overwritten.
pub fn write_private_key(path: &Path, key: &PrivateKeyDer) -> Result<(), KeyFileError> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(io(path))?;
    let pem = zeroing(pem_encode("PRIVATE KEY", key.as_bytes()));
    f.write_all(pem.as_bytes()).and_then(|_| f.sync_all()).map_err(io(path))
}

/// Reads a private key file (PEM `PRIVATE KEY` or DER PKCS#8), refusing one that group or
/// others may read or write.
pub fn read_private_key(path: &Path) -> Result<Signer, KeyFileError> {
    let meta = fs::metadata(path).map_err(io(path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::TooOpen { path: path.display().to_string(), mode });
        }
    }
    let bytes = zeroing_bytes(fs::read(path).map_err(io(path))?);
    let der = match std::str::from_utf8(&bytes.0) {
        Ok(text) if text.contains("-----BEGIN") => PrivateKeyDer(
            pem_decode(text, "PRIVATE KEY")
                .map_err(|e| KeyFileError::Key { path: path.display().to_string(), source: KeyError::Invalid(e) })?,
        ),
        _ => PrivateKeyDer(bytes.0.clone()),
    };
    Signer::from_pkcs8(der.as_bytes()).map_err(|source| KeyFileError::Key { path: path.display().to_string(), source })
}

/// Writes a public key (PEM `PUBLIC KEY`), e.g. the list-signing key's public half.
pub fn write_public_key(path: &Path, key: &PublicKey) -> Result<(), KeyFileError> {
    fs::write(path, key.to_pem()).map_err(io(path))
}

/// Reads a public key (PEM `PUBLIC KEY` or DER SubjectPublicKeyInfo), e.g. `--trust-anchor FILE`.
pub fn read_public_key(path: &Path) -> Result<PublicKey, KeyFileError> {
    let bytes = fs::read(path).map_err(io(path))?;
    let key = match std::str::from_utf8(&bytes) {
        Ok(text) if text.contains("-----BEGIN") => PublicKey::from_pem(text),
        _ => PublicKey::from_spki_der(&bytes),
    };
    key.map_err(|source| KeyFileError::Key { path: path.display().to_string(), source })
}

/// A string that is wiped when dropped.
struct Zeroing(String);
impl std::ops::Deref for Zeroing {
    type Target = String;
    fn deref(&self) -> &String {
        &self.0
    }
}
impl Drop for Zeroing {
    fn drop(&mut self) {
        let mut v = std::mem::take(&mut self.0).into_bytes();
        v.fill(0);
        std::hint::black_box(&v);
    }
}
fn zeroing(s: String) -> Zeroing {
    Zeroing(s)
}

struct ZeroingBytes(Vec<u8>);
impl Drop for ZeroingBytes {
    fn drop(&mut self) {
        self.0.fill(0);
        std::hint::black_box(&self.0);
    }
}
fn zeroing_bytes(v: Vec<u8>) -> ZeroingBytes {
    ZeroingBytes(v)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::keys::Algorithm;
    use std::os::unix::fs::PermissionsExt as _;

    fn tmp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("tongxing-pass-keyfile-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn private_key_file_is_0600_and_reads_back() {
        let dir = tmp("rw");
        for alg in [Algorithm::Es256, Algorithm::Ed25519] {
            let path = dir.join(format!("{alg}.pem"));
            let (signer, der) = Signer::generate(alg).unwrap();
            write_private_key(&path, &der).unwrap();
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(read_private_key(&path).unwrap().kid(), signer.kid());
            // Never overwritten.
            assert!(matches!(write_private_key(&path, &der), Err(KeyFileError::Io { .. })));
            let pubpath = dir.join(format!("{alg}.pub.pem"));
            write_public_key(&pubpath, signer.public_key()).unwrap();
            assert_eq!(read_public_key(&pubpath).unwrap(), *signer.public_key());
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_key_readable_by_others_is_refused() {
        let dir = tmp("open");
        let path = dir.join("k.pem");
        let (_, der) = Signer::generate(Algorithm::Es256).unwrap();
        write_private_key(&path, &der).unwrap();
        for mode in [0o640, 0o604, 0o660, 0o644] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let e = read_private_key(&path).unwrap_err();
            assert!(matches!(e, KeyFileError::TooOpen { .. }), "{e}");
            assert!(e.to_string().contains("chmod 600"));
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        assert!(read_private_key(&path).is_ok());
        fs::remove_dir_all(&dir).unwrap();
    }
}
