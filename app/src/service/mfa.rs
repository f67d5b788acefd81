//! TOTP second factor (RFC 6238 via totp-rs): enrol (QR code as server-rendered SVG plus the manual key),
//! confirm with a code, ten one-time recovery codes stored hashed, challenge, disable with a code. The secret is
//! sealed with the secret box; a step already accepted is refused (no replay); attempts are rate limited.
use super::audit::{self, Event, Outcome};
use super::crypto::{constant_time_eq, random_token, sha256_hex};
use super::error::{ServiceError, ServiceResult};
use super::{now_ms, Principal, RequestMeta};
use crate::model::{MfaEnrollment, MfaStatus};
use crate::repo;
use crate::state::AppState;

const ISSUER: &str = "Latchkey";
const RECOVERY_CODES: usize = 10;
/// Wrong codes allowed per user per window, across every node.
const ATTEMPTS: i64 = 5;
const ATTEMPT_WINDOW_MS: i64 = 5 * 60 * 1000;

fn aad(user_id: &str) -> String {
    format!("totp:{user_id}")
}

fn totp(secret: Vec<u8>, email: &str) -> ServiceResult<totp_rs::Totp> {
    totp_rs::Builder::new()
        .with_secret(secret)
        .with_account_name(email.to_string())
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|e| ServiceError::internal("totp", e))
}

/// Whether the user has a confirmed second factor.
pub async fn enrolled(state: &AppState, user_id: &str) -> ServiceResult<bool> {
    Ok(repo::mfa::get(&state.db, user_id).await?.is_some_and(|t| t.confirmed_at.is_some()))
}

pub async fn status(state: &AppState, p: &Principal) -> ServiceResult<MfaStatus> {
    p.require_unpinned()?;
    let row = repo::mfa::get(&state.db, &p.user_id).await?;
    Ok(MfaStatus {
        enabled: row.as_ref().is_some_and(|t| t.confirmed_at.is_some()),
        recovery_codes_left: repo::mfa::recovery_codes_left(&state.db, &p.user_id).await?,
        session_verified: p.mfa_done(),
    })
}

fn session_only(p: &Principal) -> ServiceResult<&str> {
    p.session_id().ok_or_else(|| ServiceError::Forbidden("Second factors are managed in a browser session, not with an API key.".into()))
}

/// Starts enrolment: a new secret (replacing an unconfirmed one). Refused when a factor is already on.
/// Starts enrolment with a new secret, or, with `resume`, shows again the pending secret this same browser was shown
/// (the console's page is rendered anew after a mistyped code). `resume` is the fingerprint this function returned
/// to that browser; a pending secret anyone else began (another session that knew the password) never matches, so
/// it is replaced, never shown to the person who confirms it. Returns the enrolment and its fingerprint.
pub async fn begin_enrollment(state: &AppState, p: &Principal, resume: Option<&str>) -> ServiceResult<(MfaEnrollment, String)> {
    session_only(p)?;
    let current = repo::mfa::get(&state.db, &p.user_id).await?;
    if current.as_ref().is_some_and(|row| row.confirmed_at.is_some()) {
        return Err(ServiceError::Conflict("Two-factor authentication is already on. Disable it first to enrol a new device.".into()));
    }
    let fingerprint = |sealed: &[u8]| super::crypto::sha256_hex(&hex::encode(sealed));
    let pending = match (current, resume) {
        (Some(row), Some(fp)) if super::crypto::constant_time_eq(fingerprint(&row.secret).as_bytes(), fp.as_bytes()) => {
            state.secrets.open(&row.secret, &aad(&p.user_id)).ok().map(|secret| (secret, fp.to_string()))
        }
        _ => None,
    };
    let (secret, fp) = match pending {
        Some(found) => found,
        None => {
            let mut secret = vec![0u8; 20];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
            let sealed = state.secrets.seal(&secret, &aad(&p.user_id))?;
            repo::mfa::put_unconfirmed(&state.db, &p.user_id, &sealed, now_ms()).await?;
            (secret, fingerprint(&sealed))
        }
    };
    let t = totp(secret, &p.email)?;
    let uri = t.to_url().map_err(|e| ServiceError::internal("otpauth url", e))?;
    let qr = qrcode::QrCode::new(uri.as_bytes()).map_err(|e| ServiceError::internal("qr", e))?;
    let svg = qr
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .dark_color(qrcode::render::svg::Color("#111111"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build();
    Ok((MfaEnrollment { secret: t.secret().to_base32(), otpauth_uri: uri, qr_svg: svg }, fp))
}

/// Checks a TOTP code against the stored secret and claims its step (never twice); or a recovery code.
/// Whose code is checked: a signed-in caller, or the user of an application's intermediate session.
pub(crate) struct UserRef<'a> {
    pub user_id: &'a str,
    pub email: &'a str,
}

impl<'a> UserRef<'a> {
    fn of(p: &'a Principal) -> Self {
        Self { user_id: &p.user_id, email: &p.email }
    }
}

pub(crate) async fn check_code(state: &AppState, p: &UserRef<'_>, code: &str, allow_unconfirmed: bool, allow_recovery: bool) -> ServiceResult<&'static str> {
    let key = format!("mfa:user:{}", p.user_id);
    super::auth::limit(state, &key, ATTEMPTS, ATTEMPT_WINDOW_MS).await?;
    let row = repo::mfa::get(&state.db, &p.user_id)
        .await?
        .filter(|t| allow_unconfirmed || t.confirmed_at.is_some())
        .ok_or_else(|| ServiceError::validation("code", "Two-factor authentication is not set up for this account."))?;
    let secret = state.secrets.open(&row.secret, &aad(&p.user_id))?;
    let t = totp(secret, &p.email)?;
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let now = (now_ms() / 1000) as u64;
    if digits.len() == 6 && digits.chars().all(|c| c.is_ascii_digit()) {
        if let Some(step) = t.check(&digits, now) {
            if !repo::mfa::claim_step(&state.db, &p.user_id, step as i64).await? {
                return Err(ServiceError::validation("code", "This code was already used. Wait for the next one (every 30 seconds) and enter it."));
            }
            repo::rate_limits::clear(&state.db, &[&key]).await?;
            return Ok("totp");
        }
    } else if allow_recovery && row.confirmed_at.is_some() {
        let normalized = digits.to_ascii_lowercase();
        let hash = sha256_hex(&normalized);
        for candidate in repo::mfa::unused_recovery_hashes(&state.db, &p.user_id).await? {
            if constant_time_eq(candidate.as_bytes(), hash.as_bytes()) && repo::mfa::use_recovery_code(&state.db, &p.user_id, &candidate, now_ms()).await? {
                repo::rate_limits::clear(&state.db, &[&key]).await?;
                return Ok("recovery_code");
            }
        }
    }
    Err(ServiceError::validation("code", "That code is not right. Enter the 6-digit code your authenticator app shows now, or a recovery code."))
}

/// Confirms enrolment with a first code: the factor is on, this session counts as verified, and the ten
/// recovery codes are returned (once).
pub async fn confirm_enrollment(state: &AppState, p: &Principal, code: &str, meta: &RequestMeta) -> ServiceResult<Vec<String>> {
    let sid = session_only(p)?.to_string();
    if enrolled(state, &p.user_id).await? {
        return Err(ServiceError::Conflict("Two-factor authentication is already on.".into()));
    }
    check_code(state, &UserRef::of(p), code, true, false).await?;
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| {
            let raw = random_token(8).to_ascii_lowercase().replace(['-', '_'], "x");
            format!("{}-{}", &raw[..5], &raw[5..10])
        })
        .collect();
    let mut tx = crate::repo::begin(&state.db).await?;
    repo::mfa::confirm(&mut *tx, &p.user_id, now_ms()).await?;
    repo::mfa::replace_recovery_codes(&mut tx, &p.user_id, &codes.iter().map(|c| sha256_hex(c)).collect::<Vec<_>>()).await?;
    repo::sessions::set_mfa_done(&mut *tx, &sid).await?;
    audit::record(&mut *tx, p, meta, Event { org_id: None, action: "mfa.enable", target: Some(&p.user_id), outcome: Outcome::Success, detail: None }).await?;
    tx.commit().await?;
    Ok(codes)
}

/// The challenge after sign-in: a TOTP or recovery code makes this session verified.
pub async fn challenge(state: &AppState, p: &Principal, code: &str, meta: &RequestMeta) -> ServiceResult<()> {
    let sid = session_only(p)?.to_string();
    match check_code(state, &UserRef::of(p), code, false, true).await {
        Ok(kind) => {
            repo::sessions::set_mfa_done(&state.db, &sid).await?;
            super::metrics::mfa_challenge(true, "console");
            audit::record(&state.db, p, meta, Event { org_id: None, action: "mfa.challenge", target: Some(&sid), outcome: Outcome::Success, detail: Some(kind.into()) }).await?;
            Ok(())
        }
        Err(e) => {
            super::metrics::mfa_challenge(false, "console");
            audit::record(&state.db, p, meta, Event { org_id: None, action: "mfa.challenge", target: Some(&sid), outcome: Outcome::Failure, detail: Some(e.code().into()) }).await?;
            Err(e)
        }
    }
}

/// Turns the factor off after a valid code.
pub async fn disable(state: &AppState, p: &Principal, code: &str, meta: &RequestMeta) -> ServiceResult<()> {
    session_only(p)?;
    if !enrolled(state, &p.user_id).await? {
        return Err(ServiceError::NotFound("Two-factor authentication is not on.".into()));
    }
    check_code(state, &UserRef::of(p), code, false, true).await?;
    let mut tx = crate::repo::begin(&state.db).await?;
    repo::mfa::delete(&mut tx, &p.user_id).await?;
    audit::record(&mut *tx, p, meta, Event { org_id: None, action: "mfa.disable", target: Some(&p.user_id), outcome: Outcome::Success, detail: None }).await?;
    tx.commit().await?;
    Ok(())
}
