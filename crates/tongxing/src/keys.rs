//! `tongxing keys`: the keys that sign passes and lists, in a folder of their own.
//!
//! ```text
//! DIR/keys.json              the manifest: signing keys (id, algorithm, file, created, retired)
//! DIR/signing-<kid>.pem      a signing key (PKCS#8, mode 0600)
//! DIR/list-signing.pem       the list-signing key (mode 0600): signs the trust and revocation lists
//! DIR/trust-anchor.pem       its public half: give it to every checkpoint (--trust-anchor)
//! DIR/person-ref.key         the key of the pseudonymous person references (mode 0600)
//! ```
//!
//! Private keys never leave these files: not into the database, a log or an answer. Every
//! server of a deployment that issues passes is given a copy of the folder.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use clap::Subcommand;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use tongxing_app::signing::PassKeys;
use tongxing_pass::keyfile;
use tongxing_pass::{Algorithm, Signer, TrustList};

/// The longest a pass may be valid (the policy's limit): a retired key verifies this long after
/// it stopped signing, so that every pass it signed expires first.
const MAX_PASS_LIFETIME_SECS: i64 = 24 * 3600;

#[derive(Subcommand)]
pub enum KeysCmd {
    /// Make a new key folder: a signing key, the list-signing key and its public half (the
    /// checkpoints' trust anchor), and the person-reference key.
    Generate {
        /// The folder to create (must not exist, or be empty).
        #[arg(long)]
        dir: PathBuf,
        /// es256 (default) or ed25519.
        #[arg(long, default_value = "es256")]
        algorithm: String,
    },
    /// Start signing with a new key; the current one is retired (it keeps verifying until the
    /// last pass it signed has expired).
    Rotate {
        /// The key folder.
        #[arg(long)]
        dir: PathBuf,
        /// es256 (default) or ed25519.
        #[arg(long, default_value = "es256")]
        algorithm: String,
    },
    /// List the signing keys: id, algorithm, created, retired.
    List {
        /// The key folder.
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Serialize, Deserialize)]
struct Manifest {
    /// Bumped on every change: the trust list's version.
    version: u64,
    signing: Vec<KeyEntry>,
}

#[derive(Serialize, Deserialize)]
struct KeyEntry {
    kid: String,
    algorithm: String,
    file: String,
    created_at: DateTime<Utc>,
    retired_at: Option<DateTime<Utc>>,
}

fn manifest_path(dir: &Path) -> PathBuf {
    dir.join("keys.json")
}

fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = manifest_path(dir);
    let text = fs::read_to_string(&path)
        .with_context(|| format!("{}: not a key folder (make one with `tongxing keys generate`)", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is damaged", path.display()))
}

fn write_manifest(dir: &Path, m: &Manifest) -> Result<()> {
    let path = manifest_path(dir);
    let tmp = dir.join("keys.json.new");
    fs::write(&tmp, serde_json::to_string_pretty(m)?).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
}

fn algorithm(s: &str) -> Result<Algorithm> {
    match s.trim().to_ascii_lowercase().as_str() {
        "es256" => Ok(Algorithm::Es256),
        "ed25519" => Ok(Algorithm::Ed25519),
        other => bail!("--algorithm: {other:?} is not one of: es256, ed25519"),
    }
}

fn new_signing_key(dir: &Path, alg: Algorithm, now: DateTime<Utc>) -> Result<KeyEntry> {
    let (signer, pkcs8) = Signer::generate(alg).map_err(|e| anyhow::anyhow!("making a key: {e}"))?;
    let kid = signer.kid().to_hex();
    let file = format!("signing-{kid}.pem");
    keyfile::write_private_key(&dir.join(&file), &pkcs8)?;
    Ok(KeyEntry { kid, algorithm: alg.as_str().into(), file, created_at: now, retired_at: None })
}

/// Makes a new key folder; refuses one that holds anything.
pub fn generate(dir: &Path, alg: Algorithm, now: DateTime<Utc>) -> Result<()> {
    if dir.exists() && fs::read_dir(dir)?.next().is_some() {
        bail!("{} is not empty: keys are never overwritten (use `tongxing keys rotate`)", dir.display());
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    let (list_signer, pkcs8) = Signer::generate(Algorithm::Es256).map_err(|e| anyhow::anyhow!("making a key: {e}"))?;
    keyfile::write_private_key(&dir.join("list-signing.pem"), &pkcs8)?;
    keyfile::write_public_key(&dir.join("trust-anchor.pem"), list_signer.public_key())?;
    let mut secret = [0u8; 32];
    SystemRandom::new().fill(&mut secret).map_err(|_| anyhow::anyhow!("no system randomness"))?;
    write_secret(&dir.join("person-ref.key"), &secret)?;
    let entry = new_signing_key(dir, alg, now)?;
    write_manifest(dir, &Manifest { version: 1, signing: vec![entry] })
}

/// Retires the current signing key and makes a new one.
pub fn rotate(dir: &Path, alg: Algorithm, now: DateTime<Utc>) -> Result<String> {
    let mut m = read_manifest(dir)?;
    for k in m.signing.iter_mut().filter(|k| k.retired_at.is_none()) {
        k.retired_at = Some(now);
    }
    let entry = new_signing_key(dir, alg, now)?;
    let kid = entry.kid.clone();
    m.signing.push(entry);
    m.version += 1;
    write_manifest(dir, &m)?;
    Ok(kid)
}

fn write_secret(path: &Path, secret: &[u8]) -> Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(secret)?;
    f.sync_all()?;
    Ok(())
}

fn read_secret(path: &Path) -> Result<Vec<u8>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.permissions().mode();
        if mode & 0o077 != 0 {
            bail!(
                "{} is readable or writable by others (mode {:o}): run chmod 600 on it",
                path.display(),
                mode & 0o777
            );
        }
    }
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() < 32 {
        bail!("{} is damaged (a 32-byte key is expected)", path.display());
    }
    Ok(bytes)
}

/// Loads a key folder for a server at `now`: the newest unretired signing key signs; every key
/// still verifying is on the trust list, signed by the list-signing key.
pub fn load(dir: &Path, now: DateTime<Utc>) -> Result<Arc<PassKeys>> {
    let m = read_manifest(dir)?;
    let mut trust = TrustList::new(m.version, now.timestamp());
    let mut signer = None;
    for k in &m.signing {
        let s = keyfile::read_private_key(&dir.join(&k.file))?;
        if s.kid().to_hex() != k.kid {
            bail!("{}: the key's id is {}, not {} as keys.json says", k.file, s.kid(), k.kid);
        }
        trust.add(s.public_key().clone(), k.created_at.timestamp()).map_err(|e| anyhow::anyhow!("{e}"))?;
        match k.retired_at {
            // Passes are stamped in whole seconds: the key signed until the end of the second
            // it was retired in.
            Some(at) => trust
                .retire(&s.kid(), at.timestamp() + 1, MAX_PASS_LIFETIME_SECS)
                .map_err(|e| anyhow::anyhow!("{e}"))?,
            None => signer = Some(s),
        }
    }
    trust.prune(now.timestamp());
    let signer = signer.context("no signing key is in use (all are retired): run `tongxing keys rotate`")?;
    let list_signer = keyfile::read_private_key(&dir.join("list-signing.pem"))?;
    let person_key = hmac::Key::new(hmac::HMAC_SHA256, &read_secret(&dir.join("person-ref.key"))?);
    let trust_list = trust.sign(&list_signer);
    tracing::info!(kid = %signer.kid(), keys = trust.len(), version = m.version, "pass keys loaded");
    Ok(Arc::new(PassKeys { signer, list_signer, trust, trust_list, person_key }))
}

pub fn run(cmd: KeysCmd) -> Result<()> {
    let now = Utc::now();
    match cmd {
        KeysCmd::Generate { dir, algorithm: alg } => {
            generate(&dir, algorithm(&alg)?, now)?;
            println!(
                "made {}: give {} to every checkpoint (--trust-anchor)",
                dir.display(),
                dir.join("trust-anchor.pem").display()
            );
        }
        KeysCmd::Rotate { dir, algorithm: alg } => {
            let kid = rotate(&dir, algorithm(&alg)?, now)?;
            println!("now signing with {kid}; restart (or reload) the servers using {}", dir.display());
        }
        KeysCmd::List { dir } => {
            let m = read_manifest(&dir)?;
            println!("{:<16}  {:<7}  {:<25}  retired", "key id", "alg", "created");
            for k in &m.signing {
                println!(
                    "{:<16}  {:<7}  {:<25}  {}",
                    k.kid,
                    k.algorithm,
                    tongxing_domain::time::rfc3339(k.created_at),
                    k.retired_at.map(tongxing_domain::time::rfc3339).unwrap_or_else(|| "-".into())
                );
            }
        }
    }
    Ok(())
}
