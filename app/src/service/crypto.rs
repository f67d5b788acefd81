//! Secrets: the secret box (XChaCha20-Poly1305 with the operator's key file) for secrets at rest, argon2id
//! password hashes, random tokens and constant-time comparison.
use super::error::{ServiceError, ServiceResult};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::path::Path;

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;

/// Encrypts secrets at rest. Ciphertext = nonce ‖ AEAD(plaintext, aad); the `aad` binds a ciphertext to its
/// row and column so a value copied to another row does not decrypt.
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    pub fn from_key(key: &[u8; KEY_LEN]) -> Self {
        Self { cipher: XChaCha20Poly1305::new(key.into()) }
    }

    /// Reads the hex key at `path`, or creates one (mode 0600) when the file does not exist.
    /// Returns whether a new key was generated, so the caller can say so loudly.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), String> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let bytes = hex::decode(text.trim()).map_err(|_| format!("key file {} is not hex", path.display()))?;
                let key: [u8; KEY_LEN] = bytes
                    .try_into()
                    .map_err(|_| format!("key file {} must hold {KEY_LEN} bytes (64 hex digits)", path.display()))?;
                Ok((Self::from_key(&key), false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; KEY_LEN];
                rand::rngs::OsRng.fill_bytes(&mut key);
                write_private(path, &hex::encode(key)).map_err(|e| format!("cannot write key file {}: {e}", path.display()))?;
                Ok((Self::from_key(&key), true))
            }
            Err(e) => Err(format!("cannot read key file {}: {e}", path.display())),
        }
    }

    pub fn seal(&self, plaintext: &[u8], aad: &str) -> ServiceResult<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: aad.as_bytes() })
            .map_err(|_| ServiceError::Internal("secret box: encryption failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    pub fn open(&self, sealed: &[u8], aad: &str) -> ServiceResult<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return Err(ServiceError::Internal("secret box: ciphertext too short".into()));
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: aad.as_bytes() })
            .map_err(|_| ServiceError::Internal("secret box: decryption failed (wrong key file?)".into()))
    }
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

pub fn hash_password(password: &str) -> ServiceResult<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ServiceError::internal("argon2", e))
}

/// Verifies `password` against a PHC string. With no hash it still spends the same work, so the time taken
/// does not tell whether an account exists.
pub fn verify_password(password: &str, phc: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("dummy-password-for-timing").unwrap_or_default());
    let (hash, real) = match phc {
        Some(h) => (h, true),
        None => (dummy.as_str(), false),
    };
    let ok = PasswordHash::new(hash)
        .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false);
    ok && real
}

type Job = Box<dyn FnOnce() + Send>;

/// Password hashing runs on a few dedicated threads, one per core: the async workers keep answering (health
/// checks, other requests) while sign-ins queue here, and the memory argon2 takes (19 MiB a hash) stays with
/// these threads instead of spreading over the blocking pool's many (glibc keeps an arena per thread).
fn argon_pool() -> &'static std::sync::Mutex<std::sync::mpsc::Sender<Job>> {
    static POOL: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<Job>>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2) {
            let rx = rx.clone();
            let _ = std::thread::Builder::new().name(format!("argon2-{i}")).spawn(move || loop {
                let job = match rx.lock() {
                    Ok(guard) => guard.recv(),
                    Err(_) => return,
                };
                match job {
                    Ok(job) => job(),
                    Err(_) => return,
                }
            });
        }
        std::sync::Mutex::new(tx)
    })
}

async fn off_the_workers<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> ServiceResult<T> {
    let (done, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = done.send(f());
    });
    argon_pool()
        .lock()
        .map_err(|_| ServiceError::internal("argon2 pool", "poisoned"))?
        .send(job)
        .map_err(|e| ServiceError::internal("argon2 pool", e))?;
    result.await.map_err(|e| ServiceError::internal("argon2 job", e))
}

/// `hash_password` on the password-hashing threads.
pub async fn hash_password_blocking(password: String) -> ServiceResult<String> {
    off_the_workers(move || hash_password(&password)).await?
}

/// `verify_password` on the password-hashing threads.
pub async fn verify_password_blocking(password: String, phc: Option<String>) -> ServiceResult<bool> {
    off_the_workers(move || verify_password(&password, phc.as_deref())).await
}

/// `n` random bytes, base64url without padding.
pub fn random_token(n: usize) -> String {
    let mut buf = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

pub fn sha256_hex(data: &str) -> String {
    hex::encode(Sha256::digest(data.as_bytes()))
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_box_round_trips_and_binds_aad() {
        let sb = SecretBox::from_key(&[7u8; 32]);
        let sealed = sb.seal(b"client-secret", "connection:1").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"client"), "plaintext must not appear in the ciphertext");
        assert_eq!(sb.open(&sealed, "connection:1").unwrap(), b"client-secret");
        assert!(sb.open(&sealed, "connection:2").is_err(), "a ciphertext moved to another row must not open");
        assert!(SecretBox::from_key(&[8u8; 32]).open(&sealed, "connection:1").is_err(), "wrong key must fail");
    }

    #[test]
    fn key_file_is_created_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("lk-key-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key");
        let (a, created) = SecretBox::load_or_create(&path).unwrap();
        assert!(created);
        let (b, created_again) = SecretBox::load_or_create(&path).unwrap();
        assert!(!created_again);
        let sealed = a.seal(b"x", "t").unwrap();
        assert_eq!(b.open(&sealed, "t").unwrap(), b"x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn passwords_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", Some(&h)));
        assert!(!verify_password("wrong", Some(&h)));
        assert!(!verify_password("dummy-password-for-timing", None));
    }
}
