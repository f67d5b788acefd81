//! The security policy (`/settings/security` and its SSO view `/sso/enforcement`), the org's sessions, and the
//! caller's second factor under `/api/auth/mfa`.
use super::caller::{Caller, PartialCaller};
use super::envelope::{ok, ApiError, Json, Path};
use app::service::{mfa, policy};
use app::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use super::openapi::{Done, Envelope, OrgItemPath, OrgPath};
use app::model::{MfaEnrollment, MfaStatus, OrgSessionInfo, SecurityPolicy, SsoEnforcement};
use serde::Deserialize;

#[utoipa::path(
    get, path = "/user/organizations/{org_id}/settings/security", tag = "security", summary = "The sign-in policy: any method, MFA required, or SSO only",
    params(OrgPath),
    responses((status = 200, description = "The policy", body = Envelope<SecurityPolicy>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn get_security(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", policy::get_security(&state, &c.principal, &org_id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecurityBody {
    auth_required: String,
    require_mfa: bool,
    #[serde(default)]
    exempt_roles: Vec<String>,
}

#[utoipa::path(
    put, path = "/user/organizations/{org_id}/settings/security", tag = "security", summary = "Set the sign-in policy (owners; the lockout guard refuses a policy that would lock every owner out)",
    params(OrgPath), request_body = SecurityBody,
    responses((status = 200, description = "The policy", body = Envelope<SecurityPolicy>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn put_security(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>, Json(b): Json<SecurityBody>) -> Result<Response, ApiError> {
    let s = policy::put_security(&state, &c.principal, &org_id, &b.auth_required, b.require_mfa, &b.exempt_roles, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Security policy saved", s))
}

#[utoipa::path(
    get, path = "/user/organizations/{org_id}/sso/enforcement", tag = "security", summary = "SSO enforcement: the SSO-only view of the policy",
    params(OrgPath),
    responses((status = 200, description = "The enforcement", body = Envelope<SsoEnforcement>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn get_enforcement(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", policy::get_enforcement(&state, &c.principal, &org_id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnforcementBody {
    enforced: bool,
    #[serde(default)]
    exempt_roles: Vec<String>,
}

#[utoipa::path(
    put, path = "/user/organizations/{org_id}/sso/enforcement", tag = "security", summary = "Turn SSO enforcement on or off (owners; the lockout guard applies)",
    params(OrgPath), request_body = EnforcementBody,
    responses((status = 200, description = "The enforcement", body = Envelope<SsoEnforcement>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn put_enforcement(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>, Json(b): Json<EnforcementBody>) -> Result<Response, ApiError> {
    let s = policy::put_enforcement(&state, &c.principal, &org_id, b.enforced, &b.exempt_roles, &c.meta).await?;
    Ok(ok(StatusCode::OK, "SSO enforcement saved", s))
}

#[utoipa::path(
    get, path = "/user/organizations/{org_id}/sso/sessions", tag = "security", summary = "The members' sessions in this organization",
    params(OrgPath),
    responses((status = 200, description = "The sessions", body = Envelope<Vec<OrgSessionInfo>>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn sessions(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", policy::org_sessions(&state, &c.principal, &org_id).await?))
}

#[utoipa::path(
    delete, path = "/user/organizations/{org_id}/sso/sessions/{id}", tag = "security", summary = "Sign a member's session out",
    params(OrgItemPath),
    responses((status = 200, description = "Revoked", body = Done)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn revoke_session(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    policy::revoke_org_session(&state, &c.principal, &org_id, &id, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Session revoked: that browser is signed out at its next request", ()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    code: String,
}

#[utoipa::path(
    get, path = "/auth/mfa", tag = "mfa", summary = "Whether the caller has a second factor, and whether this session has passed it",
    responses((status = 200, description = "The status", body = Envelope<MfaStatus>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn mfa_status(State(state): State<AppState>, c: PartialCaller) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", mfa::status(&state, &c.principal).await?))
}

#[utoipa::path(
    post, path = "/auth/mfa/enroll", tag = "mfa", summary = "Start TOTP enrolment: a new key to add to an authenticator app",
    responses((status = 200, description = "The key and its otpauth URL", body = Envelope<MfaEnrollment>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn mfa_enroll(State(state): State<AppState>, c: Caller) -> Result<Response, ApiError> {
    let e = mfa::begin_enrollment(&state, &c.principal, None).await?.0;
    Ok(ok(StatusCode::OK, "Add this key to your authenticator app, then confirm with a code", e))
}

#[utoipa::path(
    post, path = "/auth/mfa/enroll/confirm", tag = "mfa", summary = "Finish enrolment with a code from the app: answers the recovery codes, shown once",
    request_body = CodeBody,
    responses((status = 200, description = "The recovery codes", body = Envelope<Vec<String>>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn mfa_confirm(State(state): State<AppState>, c: Caller, Json(b): Json<CodeBody>) -> Result<Response, ApiError> {
    let codes = mfa::confirm_enrollment(&state, &c.principal, &b.code, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Two-factor authentication is on. Store these recovery codes now: they are shown once.", codes))
}

#[utoipa::path(
    post, path = "/auth/mfa/challenge", tag = "mfa", summary = "Pass the second factor for this session (a TOTP or a recovery code); rate limited",
    request_body = CodeBody,
    responses((status = 200, description = "Accepted", body = Done)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn mfa_challenge(State(state): State<AppState>, c: PartialCaller, Json(b): Json<CodeBody>) -> Result<Response, ApiError> {
    mfa::challenge(&state, &c.principal, &b.code, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Second factor accepted", ()))
}

#[utoipa::path(
    post, path = "/auth/mfa/disable", tag = "mfa", summary = "Turn the second factor off (needs a current code)",
    request_body = CodeBody,
    responses((status = 200, description = "Off", body = Done)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn mfa_disable(State(state): State<AppState>, c: Caller, Json(b): Json<CodeBody>) -> Result<Response, ApiError> {
    mfa::disable(&state, &c.principal, &b.code, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Two-factor authentication is off", ()))
}
