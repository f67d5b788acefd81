//! The application side of the hand-off: token exchange, session checks and revocation, the TOTP step of an
//! intermediate session (all with HTTP Basic client credentials), the browser's return from `/mfa`, and the JWKS.
use super::caller::Meta;
use super::envelope::{ok, ApiError, Json};
use app::repo::applications::ApplicationRow;
use app::service::signin::handoff;
use app::service::{applications, jwt, ServiceError};
use app::state::AppState;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use super::openapi::{Done, Envelope, JwkSet};
use handoff::{Authenticated, LoginUrl, SessionCheck};
use serde::Deserialize;
use tower_sessions::Session;

/// The calling application, authenticated by HTTP Basic `clientId:secret`.
pub struct AppClient(pub ApplicationRow);

impl FromRequestParts<AppState> for AppClient {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let BasicClient(c) = BasicClient::from_request_parts(parts, state).await?;
        Ok(AppClient(applications::authenticate_client(state, &c.id, &c.secret).await?))
    }
}

/// HTTP Basic `clientId:secret`, read but not yet checked (the session check checks them in its own statement).
pub struct BasicClient(pub applications::ClientCredentials);

impl FromRequestParts<AppState> for BasicClient {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, ApiError> {
        let basic = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
            .and_then(|raw| String::from_utf8(raw).ok())
            .ok_or(ServiceError::InvalidClient)?;
        let (id, secret) = basic.split_once(':').ok_or(ServiceError::InvalidClient)?;
        Ok(BasicClient(applications::ClientCredentials { id: id.to_string(), secret: secret.to_string() }))
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RedeemBody {
    sso_token: String,
    #[serde(default)]
    session_duration_minutes: Option<i64>,
    #[serde(default)]
    session_custom_claims: Option<serde_json::Value>,
}

#[utoipa::path(
    post, path = "/auth/sso/authenticate", tag = "applications", summary = "Redeem a one-time sso_token for a session token and a session JWT (or an intermediate session when a second factor is owed)",
    request_body = RedeemBody,
    responses((status = 200, description = "The member and the session", body = Envelope<Authenticated>)),
    security(("application" = []))
)]
pub async fn authenticate(State(state): State<AppState>, AppClient(app): AppClient, Meta(meta): Meta, Json(b): Json<RedeemBody>) -> Result<Response, ApiError> {
    let r = handoff::redeem(&state, &app, &b.sso_token, b.session_duration_minutes, b.session_custom_claims.as_ref(), &meta).await?;
    let message = if r.member_authenticated { "Member authenticated" } else { "Second factor required: complete the intermediate session" };
    Ok(ok(StatusCode::OK, message, r))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SessionBody {
    #[serde(default)]
    session_token: Option<String>,
    #[serde(default)]
    session_jwt: Option<String>,
}

#[utoipa::path(
    post, path = "/auth/sessions/authenticate", tag = "applications", summary = "Check a session token or JWT: answers the session and a fresh JWT",
    request_body = SessionBody,
    responses((status = 200, description = "The session is active", body = Envelope<SessionCheck>)),
    security(("application" = []))
)]
pub async fn check_session(State(state): State<AppState>, BasicClient(client): BasicClient, body: Result<Json<SessionBody>, ApiError>) -> Result<Response, ApiError> {
    // A body that cannot be read is answered after the client is checked, as on every application endpoint.
    let b = match body {
        Ok(Json(b)) => b,
        Err(e) => {
            applications::authenticate_client(&state, &client.id, &client.secret).await?;
            return Err(e);
        }
    };
    let r = handoff::check(&state, &client, b.session_token.as_deref(), b.session_jwt.as_deref()).await?;
    Ok(ok(StatusCode::OK, "Session is active", r))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RevokeBody {
    session_token: String,
}

#[utoipa::path(
    post, path = "/auth/sessions/revoke", tag = "applications", summary = "Revoke a session",
    request_body = RevokeBody,
    responses((status = 200, description = "Revoked", body = Done)),
    security(("application" = []))
)]
pub async fn revoke_session(State(state): State<AppState>, AppClient(app): AppClient, Meta(meta): Meta, Json(b): Json<RevokeBody>) -> Result<Response, ApiError> {
    handoff::revoke(&state, &app, &b.session_token, &meta).await?;
    Ok(ok(StatusCode::OK, "Session revoked", ()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TotpBody {
    intermediate_session_token: String,
    code: String,
}

#[utoipa::path(
    post, path = "/auth/mfa/totp/authenticate", tag = "applications", summary = "The TOTP step of an intermediate session (mfaHandling = app)",
    request_body = TotpBody,
    responses((status = 200, description = "The member and the session", body = Envelope<Authenticated>)),
    security(("application" = []))
)]
pub async fn totp(State(state): State<AppState>, AppClient(app): AppClient, Meta(meta): Meta, Json(b): Json<TotpBody>) -> Result<Response, ApiError> {
    let r = handoff::totp(&state, &app, &b.intermediate_session_token, &b.code, &meta).await?;
    Ok(ok(StatusCode::OK, "Member authenticated", r))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResumeQuery {
    h: String,
}

/// The browser comes back from `/mfa`: the waiting hand-off of this session goes on to the application.
#[utoipa::path(
    get, path = "/auth/sso/handoff", tag = "sign-in", summary = "The browser's return from the second-factor page: the waiting hand-off goes on to the application",
    params(ResumeQuery),
    responses((status = 303, description = "To the application's redirect_uri, or /auth/error?code=…")),
    security(())
)]
pub async fn resume(State(state): State<AppState>, session: Session, q: Result<Query<ResumeQuery>, axum::extract::rejection::QueryRejection>) -> Response {
    let Ok(Query(q)) = q else { return Redirect::to("/auth/error?code=sso_state_invalid").into_response() };
    let result = match app::service::sessions::current(&state, &session).await {
        Ok(current) => handoff::resume(&state, &q.h, current.as_ref().map(|s| s.id.as_str()), current.as_ref().is_some_and(|s| s.mfa_done != 0)).await,
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(to) => Redirect::to(&to).into_response(),
        Err(f) => {
            tracing::warn!(code = f.code, detail = %f.detail, "hand-off could not resume");
            Redirect::to(&format!("/auth/error?code={}", f.code)).into_response()
        }
    }
}

/// `GET /.well-known/jwks.json`: cacheable for five minutes (a rotated key stays listed longer than that).
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "meta", summary = "The public keys that verify session JWTs (cacheable for five minutes)",
    responses((status = 200, description = "The key set", body = JwkSet)),
    security(())
)]
pub async fn jwks(State(state): State<AppState>) -> Result<Response, ApiError> {
    let keys = jwt::jwks(&state).await?;
    let mut resp = axum::Json(keys).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    Ok(resp)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoginUrlBody {
    domain: String,
    #[serde(default)]
    redirect_uri: Option<String>,
    #[serde(default)]
    state: Option<String>,
}

#[utoipa::path(
    post, path = "/auth/sso/login-url", tag = "applications", summary = "Where to send a browser to sign in someone at a verified domain",
    request_body = LoginUrlBody,
    responses((status = 200, description = "The authorize URL and the connection", body = Envelope<LoginUrl>)),
    security(("application" = []))
)]
pub async fn login_url(State(state): State<AppState>, AppClient(app): AppClient, Json(b): Json<LoginUrlBody>) -> Result<Response, ApiError> {
    let r = handoff::login_url(&state, &app, &b.domain, b.redirect_uri.as_deref(), b.state.as_deref()).await?;
    Ok(ok(StatusCode::OK, "Send the browser to authorizeUrl", r))
}
