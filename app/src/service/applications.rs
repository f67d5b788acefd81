//! Registered applications (operators only): the B2B apps that deploy Latchkey and receive the signed-in user.
//! `clientId` is public; client secrets are 256-bit random values shown once and stored as SHA-256 digests, so
//! checking one is a digest lookup and a constant-time comparison (never a password hash per API call).
//! Rotation: a new secret works at once and the previous ones keep working for `SECRET_GRACE_MS` (24 hours).
use super::audit::{self, Event, Outcome};
use super::crypto::{constant_time_eq, random_token, sha256_hex};
use super::domain::{parse_id, parse_name};
use super::error::{ServiceError, ServiceResult};
use super::{new_id, now_ms, rfc3339, Principal, RequestMeta};
use crate::model::{ApplicationInfo, ApplicationSecretInfo, ApplicationWithSecret};
use crate::repo::{self, applications::ApplicationRow};
use crate::state::AppState;

pub const CLIENT_ID_PREFIX: &str = "app_";
pub const SECRET_PREFIX: &str = "lks_";
/// How long a rotated secret keeps working: long enough to roll the new one out to every instance of the app.
pub const SECRET_GRACE_MS: i64 = 24 * 3600 * 1000;
const MAX_REDIRECT_URIS: usize = 20;
const MIN_SESSION_MINUTES: i64 = 5;
const MAX_SESSION_MINUTES: i64 = 30 * 24 * 60;

/// What an operator sends to create or change an application; `None` keeps the current value on update.
#[derive(Debug, Default, Clone)]
pub struct ApplicationInput {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub session_duration_minutes: Option<i64>,
    pub max_session_minutes: Option<i64>,
    pub mfa_handling: Option<String>,
}

/// One redirect URI: absolute https (http only on a loopback host), no fragment, no credentials, no wildcard.
/// Stored as given; the browser is sent back only on an exact, case-sensitive match.
pub fn parse_redirect_uri(raw: &str) -> ServiceResult<String> {
    let field = "redirectUris";
    let s = raw.trim();
    if s.is_empty() || s.len() > 2048 || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ServiceError::validation(field, format!("{s:?} is not a URL: give the full address, like https://app.example.com/callback.")));
    }
    if s.contains('*') {
        return Err(ServiceError::validation(field, format!("{s}: wildcards are not allowed; list every redirect URI exactly.")));
    }
    let url = url::Url::parse(s).map_err(|_| ServiceError::validation(field, format!("{s} is not a full URL, like https://app.example.com/callback.")))?;
    let loopback = super::domain::is_loopback_host(&url);
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(ServiceError::validation(field, format!("{s} must use https (http is allowed only for 127.0.0.1, [::1] or localhost)."))),
    }
    if url.fragment().is_some() || s.contains('#') {
        return Err(ServiceError::validation(field, format!("{s}: a redirect URI cannot have a #fragment.")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ServiceError::validation(field, format!("{s}: a redirect URI cannot contain credentials.")));
    }
    Ok(s.to_string())
}

fn parse_redirect_uris(raw: &[String]) -> ServiceResult<Vec<String>> {
    if raw.is_empty() {
        return Err(ServiceError::validation("redirectUris", "Register at least one redirect URI: where your application receives the signed-in user."));
    }
    if raw.len() > MAX_REDIRECT_URIS {
        return Err(ServiceError::validation("redirectUris", format!("At most {MAX_REDIRECT_URIS} redirect URIs.")));
    }
    let mut out: Vec<String> = Vec::new();
    for r in raw {
        let u = parse_redirect_uri(r)?;
        if !out.contains(&u) {
            out.push(u);
        }
    }
    Ok(out)
}

fn parse_mfa_handling(raw: &str) -> ServiceResult<&'static str> {
    match raw.trim() {
        "latchkey" => Ok("latchkey"),
        "app" => Ok("app"),
        _ => Err(ServiceError::validation("mfaHandling", "mfaHandling must be latchkey (Latchkey's pages challenge) or app (your app runs the challenge).")),
    }
}

fn check_minutes(field: &'static str, v: i64) -> ServiceResult<i64> {
    if !(MIN_SESSION_MINUTES..=MAX_SESSION_MINUTES).contains(&v) {
        return Err(ServiceError::validation(field, format!("{field} must be between {MIN_SESSION_MINUTES} and {MAX_SESSION_MINUTES} minutes (30 days).")));
    }
    Ok(v)
}

/// Applies `input` over `row` (a new row has the defaults), validating every field it sets.
fn apply(row: &mut ApplicationRow, input: &ApplicationInput) -> ServiceResult<()> {
    if let Some(name) = &input.name {
        row.name = parse_name("name", name, 100, true)?;
    }
    if let Some(uris) = &input.redirect_uris {
        row.redirect_uris = serde_json::to_string(&parse_redirect_uris(uris)?).map_err(|e| ServiceError::internal("json", e))?;
    }
    if let Some(m) = &input.mfa_handling {
        row.mfa_handling = parse_mfa_handling(m)?.into();
    }
    if let Some(v) = input.session_duration_minutes {
        row.session_duration_minutes = check_minutes("sessionDurationMinutes", v)?;
    }
    if let Some(v) = input.max_session_minutes {
        row.max_session_minutes = check_minutes("maxSessionMinutes", v)?;
    }
    if row.session_duration_minutes > row.max_session_minutes {
        return Err(ServiceError::validation("sessionDurationMinutes", "sessionDurationMinutes cannot be longer than maxSessionMinutes."));
    }
    Ok(())
}

pub fn redirect_uris(row: &ApplicationRow) -> Vec<String> {
    serde_json::from_str(&row.redirect_uris).unwrap_or_default()
}

async fn info(state: &AppState, row: ApplicationRow) -> ServiceResult<ApplicationInfo> {
    let secrets = repo::applications::live_secrets(&state.db, &row.id, now_ms()).await?;
    Ok(ApplicationInfo {
        redirect_uris: redirect_uris(&row),
        id: row.id,
        client_id: row.client_id,
        name: row.name,
        session_duration_minutes: row.session_duration_minutes,
        max_session_minutes: row.max_session_minutes,
        mfa_handling: row.mfa_handling,
        secrets: secrets
            .into_iter()
            .map(|s| ApplicationSecretInfo { id: s.id, prefix: s.prefix, created_at: rfc3339(s.created_at), expires_at: s.expires_at.map(rfc3339) })
            .collect(),
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
    })
}

fn not_found() -> ServiceError {
    ServiceError::NotFound("No application with that id.".into())
}

async fn load(state: &AppState, id: &str) -> ServiceResult<ApplicationRow> {
    let id = parse_id("id", id).map_err(|_| not_found())?;
    repo::applications::by_id(&state.db, &id).await?.ok_or_else(not_found)
}

/// A fresh secret for `app_id`, inserted in `tx`; returns the whole secret (shown once).
async fn new_secret(tx: &mut sqlx::Transaction<'static, sqlx::Any>, app_id: &str, now: i64) -> ServiceResult<String> {
    let secret = format!("{SECRET_PREFIX}{}", random_token(32));
    let row = repo::applications::SecretRow {
        id: new_id(),
        application_id: app_id.to_string(),
        prefix: secret.chars().take(10).collect(),
        created_at: now,
        expires_at: None,
    };
    repo::applications::insert_secret(&mut **tx, &row, &sha256_hex(&secret)).await?;
    Ok(secret)
}

pub async fn create(state: &AppState, p: &Principal, input: &ApplicationInput, meta: &RequestMeta) -> ServiceResult<ApplicationWithSecret> {
    super::operators::require(&state.db, p).await?;
    if input.name.is_none() {
        return Err(ServiceError::validation("name", "Enter the application's name."));
    }
    if input.redirect_uris.is_none() {
        return Err(ServiceError::validation("redirectUris", "Register at least one redirect URI."));
    }
    let now = now_ms();
    let mut row = ApplicationRow {
        id: new_id(),
        client_id: format!("{CLIENT_ID_PREFIX}{}", random_token(16)),
        name: String::new(),
        redirect_uris: "[]".into(),
        session_duration_minutes: 60,
        max_session_minutes: 24 * 60,
        mfa_handling: "latchkey".into(),
        created_at: now,
        updated_at: now,
    };
    apply(&mut row, input)?;
    let mut tx = repo::begin(&state.db).await?;
    repo::applications::insert(&mut *tx, &row).await?;
    let secret = new_secret(&mut tx, &row.id, now).await?;
    audit::record(&mut *tx, p, meta, Event {
        org_id: None,
        action: "application.create",
        target: Some(&row.id),
        outcome: Outcome::Success,
        detail: Some(format!("name={} client_id={} redirect_uris={}", row.name, row.client_id, row.redirect_uris)),
    })
    .await?;
    tx.commit().await?;
    Ok(ApplicationWithSecret { application: info(state, row).await?, client_secret: secret })
}

pub async fn list(state: &AppState, p: &Principal) -> ServiceResult<Vec<ApplicationInfo>> {
    super::operators::require(&state.db, p).await?;
    let mut out = Vec::new();
    for row in repo::applications::list(&state.db).await? {
        out.push(info(state, row).await?);
    }
    Ok(out)
}

pub async fn get(state: &AppState, p: &Principal, id: &str) -> ServiceResult<ApplicationInfo> {
    super::operators::require(&state.db, p).await?;
    info(state, load(state, id).await?).await
}

pub async fn update(state: &AppState, p: &Principal, id: &str, input: &ApplicationInput, meta: &RequestMeta) -> ServiceResult<ApplicationInfo> {
    super::operators::require(&state.db, p).await?;
    let mut row = load(state, id).await?;
    apply(&mut row, input)?;
    row.updated_at = now_ms();
    let mut tx = repo::begin(&state.db).await?;
    repo::applications::update(&mut *tx, &row).await?;
    audit::record(&mut *tx, p, meta, Event {
        org_id: None,
        action: "application.update",
        target: Some(&row.id),
        outcome: Outcome::Success,
        detail: Some(format!("name={} redirect_uris={} mfa_handling={}", row.name, row.redirect_uris, row.mfa_handling)),
    })
    .await?;
    tx.commit().await?;
    info(state, row).await
}

pub async fn delete(state: &AppState, p: &Principal, id: &str, meta: &RequestMeta) -> ServiceResult<()> {
    super::operators::require(&state.db, p).await?;
    let row = load(state, id).await?;
    let mut tx = repo::begin(&state.db).await?;
    repo::applications::delete(&mut *tx, &row.id).await?;
    audit::record(&mut *tx, p, meta, Event {
        org_id: None,
        action: "application.delete",
        target: Some(&row.id),
        outcome: Outcome::Success,
        detail: Some(format!("name={} client_id={}", row.name, row.client_id)),
    })
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A new secret, shown once; every older secret keeps working for `SECRET_GRACE_MS` more.
pub async fn rotate_secret(state: &AppState, p: &Principal, id: &str, meta: &RequestMeta) -> ServiceResult<ApplicationWithSecret> {
    super::operators::require(&state.db, p).await?;
    let row = load(state, id).await?;
    let now = now_ms();
    let mut tx = repo::begin(&state.db).await?;
    let expiring = repo::applications::expire_secrets(&mut *tx, &row.id, now + SECRET_GRACE_MS).await?;
    let secret = new_secret(&mut tx, &row.id, now).await?;
    audit::record(&mut *tx, p, meta, Event {
        org_id: None,
        action: "application.secret.rotate",
        target: Some(&row.id),
        outcome: Outcome::Success,
        detail: Some(format!("previous secrets expiring in 24h: {expiring}")),
    })
    .await?;
    tx.commit().await?;
    Ok(ApplicationWithSecret { application: info(state, row).await?, client_secret: secret })
}

/// Authenticates an application by its client id and secret (HTTP Basic). One error for every failure.
pub async fn authenticate_client(state: &AppState, client_id: &str, secret: &str) -> ServiceResult<ApplicationRow> {
    let invalid = || ServiceError::InvalidClient;
    if !plausible(client_id, secret) {
        return Err(invalid());
    }
    let app = repo::applications::by_live_secret(&state.db, &sha256_hex(secret), now_ms()).await?.ok_or_else(invalid)?;
    if !constant_time_eq(app.client_id.as_bytes(), client_id.as_bytes()) {
        return Err(invalid());
    }
    Ok(app)
}

/// The shape of client credentials: anything else is refused before any database work.
fn plausible(client_id: &str, secret: &str) -> bool {
    secret.starts_with(SECRET_PREFIX) && secret.len() <= 128 && client_id.len() <= 128
}

/// HTTP Basic `clientId:secret` as an application sent them, not yet checked: `authenticate_client` checks them
/// alone; the session check checks them in its own statement.
pub struct ClientCredentials {
    pub id: String,
    pub secret: String,
}

impl ClientCredentials {
    pub fn plausible(&self) -> bool {
        plausible(&self.id, &self.secret)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_redirect_uri;

    #[test]
    fn redirect_uris_are_exact_https_or_loopback_http() {
        for ok in ["https://app.example.com/callback", "http://127.0.0.1:8080/cb", "http://localhost:3000/cb", "http://[::1]:9/cb", "https://a.example/cb?x=1"] {
            assert!(parse_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in ["", "app.example.com/cb", "http://app.example.com/cb", "https://*.example.com/cb", "https://app.example.com/cb#frag",
            "https://u:p@app.example.com/cb", "javascript:alert(1)", "https://app.example.com/c b"] {
            assert!(parse_redirect_uri(bad).is_err(), "{bad}");
        }
    }
}
