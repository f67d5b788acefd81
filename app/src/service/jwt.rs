//! Session JWTs: EdDSA (Ed25519) signatures with keys every node shares. A key pair lives in `signing_keys`, the
//! private half sealed with the secret box; nodes cache what they read, but the database decides. The JWKS lists
//! the current key and every retired key whose tokens may still be alive (retired less than `JWT_TTL_SECS` ago).
use super::error::{ServiceError, ServiceResult};
use super::{now_ms, ServiceError as E};
use crate::repo::{self, jwt_keys::KeyRow};
use crate::state::AppState;
use base64::Engine;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// Lifetime of a session JWT; an app refreshes it with `POST /api/auth/sessions/authenticate`.
pub const JWT_TTL_SECS: i64 = 5 * 60;
/// Claims Latchkey sets; a custom claim may not use these names.
pub const REGISTERED: [&str; 13] = ["iss", "aud", "sub", "sid", "org_id", "org_slug", "role", "amr", "connection_id", "iat", "nbf", "exp", "jti"];
/// The largest set of custom claims, as JSON.
pub const MAX_CUSTOM_CLAIMS_BYTES: usize = 4096;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn aad(kid: &str) -> String {
    format!("signing_key:{kid}")
}

/// The jsonwebtoken crypto backend (RustCrypto), installed once per process.
fn provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    });
}

/// The key to sign with: the newest unretired one, created when there is none (two nodes racing both insert a
/// key; both are valid and listed, and the newest signs from then on).
async fn current_key(state: &AppState) -> ServiceResult<KeyRow> {
    if let Some(k) = repo::jwt_keys::current(&state.db).await? {
        return Ok(k);
    }
    rotate(&state.db, &state.secrets).await
}

/// Creates a new signing key and retires the previous one (its public key stays in the JWKS until its tokens
/// have expired). Returns the new key.
pub async fn rotate(db: &crate::state::Db, secrets: &super::crypto::SecretBox) -> ServiceResult<KeyRow> {
    let signing = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let der = signing.to_pkcs8_der().map_err(|e| E::internal("pkcs8", e))?;
    let kid = super::new_id();
    let now = now_ms();
    let row = KeyRow {
        kid: kid.clone(),
        alg: "EdDSA".into(),
        public_key: signing.verifying_key().to_bytes().to_vec(),
        private_key: secrets.seal(der.as_bytes(), &aad(&kid))?,
        created_at: now,
        retired_at: None,
    };
    let mut tx = repo::begin(db).await?;
    repo::jwt_keys::retire_all(&mut *tx, now).await?;
    repo::jwt_keys::insert(&mut *tx, &row).await?;
    tx.commit().await?;
    Ok(row)
}

/// Signs `claims` (registered and custom, already merged) as a compact JWS with key `kid`, which the caller read
/// as the current one in the same statement as its own rows (`repo::jwt_keys::CURRENT_KID`); `None` (no key yet
/// when it read) takes the current key now, creating the first one. A key never changes once written, so the opened key is kept per
/// node by key id: callgrind showed opening it on every call (PKCS#8 parse, which derives the public key with a
/// base-point multiplication) was a quarter of a session check's instructions. Only which key is current is read
/// from the database each time, so a rotation on another node takes effect at once.
pub async fn sign(state: &AppState, kid: Option<String>, claims: &Map<String, Value>) -> ServiceResult<String> {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    use ed25519_dalek::Signer;
    let (kid, created) = match kid {
        Some(kid) => (kid, None),
        None => {
            let row = current_key(state).await?;
            (row.kid.clone(), Some(row))
        }
    };
    let cached = state.sso.jwt_key.lock().ok().and_then(|c| c.as_ref().filter(|(k, _)| *k == kid).map(|(_, key)| key.clone()));
    let key = match cached {
        Some(k) => k,
        None => {
            let row = match created {
                Some(row) => row,
                None => repo::jwt_keys::by_kid(&state.db, &kid).await?.ok_or_else(|| E::internal("signing key", "the current key vanished"))?,
            };
            let der = state.secrets.open(&row.private_key, &aad(&row.kid))?;
            let k = ed25519_dalek::SigningKey::from_pkcs8_der(&der).map_err(|e| E::internal("signing key", e))?;
            if let Ok(mut c) = state.sso.jwt_key.lock() {
                *c = Some((row.kid.clone(), k.clone()));
            }
            k
        }
    };
    let header = serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": kid});
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(Value::Object(claims.clone()).to_string().as_bytes()));
    let signature = key.sign(input.as_bytes());
    Ok(format!("{input}.{}", b64(&signature.to_bytes())))
}

/// Verifies a session JWT of application `audience`: signature by a listed key, `iss`, `aud`, `exp`, `nbf`.
/// Returns the claims.
pub async fn verify(state: &AppState, token: &str, audience: &str) -> ServiceResult<Map<String, Value>> {
    provider();
    let invalid = |why: &str| ServiceError::InvalidToken(format!("The session JWT is not valid: {why}."));
    let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed"))?;
    if header.alg != Algorithm::EdDSA {
        return Err(invalid("wrong algorithm"));
    }
    let kid = header.kid.ok_or_else(|| invalid("no key id"))?;
    let key = repo::jwt_keys::listed(&state.db, now_ms() - JWT_TTL_SECS * 1000)
        .await?
        .into_iter()
        .find(|k| k.kid == kid)
        .ok_or_else(|| invalid("unknown key"))?;
    let mut v = Validation::new(Algorithm::EdDSA);
    v.set_audience(&[audience]);
    v.set_issuer(&[state.settings.public_url.as_str()]);
    v.validate_nbf = true;
    v.leeway = 0;
    v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &DecodingKey::from_ed_components(&b64(&key.public_key)).map_err(|e| E::internal("jwk", e))?, &v)
        .map_err(|e| invalid(&e.to_string()))?;
    Ok(data.claims)
}

/// `GET /.well-known/jwks.json`: the keys whose tokens may still be alive.
pub async fn jwks(state: &AppState) -> ServiceResult<Value> {
    current_key(state).await?;
    let keys = repo::jwt_keys::listed(&state.db, now_ms() - JWT_TTL_SECS * 1000).await?;
    Ok(serde_json::json!({
        "keys": keys.iter().map(|k| serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "x": b64(&k.public_key), "kid": k.kid, "alg": "EdDSA", "use": "sig",
        })).collect::<Vec<_>>()
    }))
}

/// Checks an application's custom claims: an object, no registered name, at most `MAX_CUSTOM_CLAIMS_BYTES`.
pub fn check_custom_claims(raw: Option<&Value>) -> ServiceResult<Map<String, Value>> {
    let field = "sessionCustomClaims";
    let Some(v) = raw.filter(|v| !v.is_null()) else { return Ok(Map::new()) };
    let obj = v.as_object().ok_or_else(|| ServiceError::validation(field, "sessionCustomClaims must be a JSON object."))?;
    if let Some(bad) = obj.keys().find(|k| REGISTERED.contains(&k.as_str())) {
        return Err(ServiceError::validation(field, format!("The claim \"{bad}\" is set by Latchkey and cannot be overridden; choose another name.")));
    }
    if v.to_string().len() > MAX_CUSTOM_CLAIMS_BYTES {
        return Err(ServiceError::validation(field, format!("sessionCustomClaims is larger than {MAX_CUSTOM_CLAIMS_BYTES} bytes as JSON.")));
    }
    Ok(obj.clone())
}
