//! The security policy (`/settings/security` and its SSO view `/sso/enforcement`), the org's sessions, and the
//! caller's second factor under `/api/auth/mfa`.
use super::caller::{Caller, PartialCaller};
use super::envelope::{ok, ApiError, Json, Path};
use app::service::{mfa, policy};
use app::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

pub async fn get_security(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", policy::get_security(&state, &c.principal, &org_id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecurityBody {
    auth_required: String,
    require_mfa: bool,
    #[serde(default)]
    exempt_roles: Vec<String>,
}

pub async fn put_security(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>, Json(b): Json<SecurityBody>) -> Result<Response, ApiError> {
    let s = policy::put_security(&state, &c.principal, &org_id, &b.auth_required, b.require_mfa, &b.exempt_roles, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Security policy saved", s))
}

pub async fn get_enforcement(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", policy::get_enforcement(&state, &c.principal, &org_id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnforcementBody {
    enforced: bool,
    #[serde(default)]
    exempt_roles: Vec<String>,
}

pub async fn put_enforcement(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>, Json(b): Json<EnforcementBody>) -> Result<Response, ApiError> {
    let s = policy::put_enforcement(&state, &c.principal, &org_id, b.enforced, &b.exempt_roles, &c.meta).await?;
    Ok(ok(StatusCode::OK, "SSO enforcement saved", s))
}

pub async fn sessions(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", policy::org_sessions(&state, &c.principal, &org_id).await?))
}

pub async fn revoke_session(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    policy::revoke_org_session(&state, &c.principal, &org_id, &id, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Session revoked: that browser is signed out at its next request", ()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    code: String,
}

pub async fn mfa_status(State(state): State<AppState>, c: PartialCaller) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", mfa::status(&state, &c.principal).await?))
}

pub async fn mfa_enroll(State(state): State<AppState>, c: Caller) -> Result<Response, ApiError> {
    let e = mfa::begin_enrollment(&state, &c.principal, None).await?.0;
    Ok(ok(StatusCode::OK, "Add this key to your authenticator app, then confirm with a code", e))
}

pub async fn mfa_confirm(State(state): State<AppState>, c: Caller, Json(b): Json<CodeBody>) -> Result<Response, ApiError> {
    let codes = mfa::confirm_enrollment(&state, &c.principal, &b.code, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Two-factor authentication is on. Store these recovery codes now: they are shown once.", codes))
}

pub async fn mfa_challenge(State(state): State<AppState>, c: PartialCaller, Json(b): Json<CodeBody>) -> Result<Response, ApiError> {
    mfa::challenge(&state, &c.principal, &b.code, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Second factor accepted", ()))
}

pub async fn mfa_disable(State(state): State<AppState>, c: Caller, Json(b): Json<CodeBody>) -> Result<Response, ApiError> {
    mfa::disable(&state, &c.principal, &b.code, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Two-factor authentication is off", ()))
}
