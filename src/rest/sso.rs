//! `/settings/sso` (the org's primary OIDC connection) and the browser endpoints of OIDC sign-in: the
//! per-org login entry and the one shared callback. Sign-in endpoints answer with redirects: to the IdP, to
//! the console, or to the sign-in error page with a stable code.
use super::caller::{Caller, Meta};
use super::envelope::{ok, ApiError, Json, Path};
use app::service::{connections, oidc};
use app::state::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use super::openapi::{Done, Envelope, OrgPath};
use app::model::{SsoSettings, SsoTestResult};
use serde::Deserialize;
use tower_sessions::Session;

#[utoipa::path(
    get, path = "/user/organizations/{org_id}/settings/sso", tag = "connections", summary = "The organization's primary OIDC connection (reference 000's view)",
    params(OrgPath),
    responses((status = 200, description = "The settings", body = Envelope<SsoSettings>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn get_settings(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", connections::get_sso(&state, &c.principal, &org_id).await?))
}

/// Exactly the four fields of reference 000; anything else is a 422 naming it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SsoBody {
    provider: String,
    issuer_url: String,
    client_id: String,
    client_secret: String,
}

#[utoipa::path(
    put, path = "/user/organizations/{org_id}/settings/sso", tag = "connections", summary = "Create or replace the primary OIDC connection",
    params(OrgPath), request_body = SsoBody,
    responses((status = 200, description = "The settings", body = Envelope<SsoSettings>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn put_settings(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>, Json(b): Json<SsoBody>) -> Result<Response, ApiError> {
    let s = connections::put_sso(&state, &c.principal, &org_id, &b.provider, &b.issuer_url, &b.client_id, Some(&b.client_secret), &c.meta).await?;
    Ok(ok(StatusCode::OK, "SSO configuration saved. Run the test before relying on it.", s))
}

#[utoipa::path(
    delete, path = "/user/organizations/{org_id}/settings/sso", tag = "connections", summary = "Remove the primary OIDC connection (the lockout guard applies)",
    params(OrgPath),
    responses((status = 200, description = "Removed", body = Done)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn delete_settings(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>) -> Result<Response, ApiError> {
    connections::delete_sso(&state, &c.principal, &org_id, &c.meta).await?;
    Ok(ok(StatusCode::OK, "SSO configuration removed", ()))
}

#[utoipa::path(
    post, path = "/user/organizations/{org_id}/settings/sso/test", tag = "connections", summary = "Test the primary OIDC connection: discovery and keys",
    params(OrgPath),
    responses((status = 200, description = "The outcome (see `success`)", body = Envelope<SsoTestResult>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn test_settings(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>) -> Result<Response, ApiError> {
    let r = connections::test_sso(&state, &c.principal, &org_id, &c.meta).await?;
    let message = r.message.clone();
    Ok(ok(StatusCode::OK, &message, r))
}

/// The value of cookie `name`, if the browser sent it.
pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The flow's binding cookie: `__Host-` (Secure, Path=/) on https; on plain-http loopback only under the SSO paths.
pub(super) fn binding_cookie(state: &AppState, name: &str, value: &str, max_age: i64) -> Option<HeaderValue> {
    let attrs = if state.settings.secure_cookies { "Path=/; Secure" } else { "Path=/api/auth/sso" };
    HeaderValue::from_str(&format!("{name}={value}; {attrs}; HttpOnly; SameSite=Lax; Max-Age={max_age}")).ok()
}

pub(super) fn error_page(code: &str) -> Response {
    Redirect::to(&format!("/auth/error?code={code}")).into_response()
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LoginQuery {
    #[serde(default, rename = "returnTo")]
    pub(super) return_to: Option<String>,
    #[serde(default)]
    pub(super) login_hint: Option<String>,
    /// A sign-in started by a registered application: where to hand the user back.
    #[serde(default)]
    pub(super) client_id: Option<String>,
    #[serde(default)]
    pub(super) redirect_uri: Option<String>,
    #[serde(default)]
    pub(super) state: Option<String>,
    /// An explicit connection of the org (the owner's test sign-in, or what login-url answered).
    #[serde(default)]
    pub(super) connection_id: Option<String>,
}

impl LoginQuery {
    pub(super) fn app(&self) -> Option<app::service::signin::handoff::AppRequest> {
        self.client_id.as_ref().map(|client_id| app::service::signin::handoff::AppRequest {
            client_id: client_id.clone(),
            redirect_uri: self.redirect_uri.clone().unwrap_or_default(),
            state: self.state.clone(),
        })
    }
}

/// The answer to a sign-in start: to the IdP with the flow's binding cookie, or to the error page.
pub(super) fn to_idp(state: &AppState, started: Result<oidc::LoginRedirect, oidc::SsoFailure>) -> Response {
    match started {
        Ok(start) => {
            let mut resp = Redirect::to(&start.url).into_response();
            let cookie = (!start.cookie_name.is_empty()).then(|| binding_cookie(state, &start.cookie_name, &start.browser_token, oidc::FLOW_TTL_MS / 1000));
            if let Some(v) = cookie.flatten() {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Err(f) => {
            tracing::warn!(code = f.code, detail = %f.detail, "SSO login could not start");
            error_page(f.code)
        }
    }
}

#[utoipa::path(
    get, path = "/auth/sso/{slug}/login", tag = "sign-in", summary = "Start SSO for an organization: redirects to its identity provider (or to the error page with a code)",
    params(("slug" = String, Path, description = "The organization's slug"), LoginQuery),
    responses((status = 303, description = "To the IdP, or to /auth/error?code=…")),
    security(())
)]
pub async fn login(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    q: Result<Query<LoginQuery>, QueryRejection>,
    Meta(meta): Meta,
) -> Response {
    let Ok(Query(q)) = q else {
        return error_page("invalid_request");
    };
    let app = q.app();
    let start = app::service::signin::Start {
        return_to: q.return_to.as_deref(),
        login_hint: q.login_hint.as_deref(),
        connection_id: q.connection_id.as_deref(),
        app: app.as_ref(),
    };
    to_idp(&state, oidc::begin_login(&state, &slug, &start, &meta).await)
}

#[utoipa::path(
    get, path = "/auth/sso/callback", tag = "sign-in", summary = "The one OIDC callback of every organization",
    params(app::service::oidc::CallbackParams),
    responses((status = 303, description = "To the console, the application's redirect_uri, the second-factor step, or /auth/error?code=…")),
    security(())
)]
pub async fn callback(
    State(state): State<AppState>,
    session: Session,
    params: Result<Query<oidc::CallbackParams>, QueryRejection>,
    headers: HeaderMap,
    Meta(meta): Meta,
) -> Response {
    // A malformed query (e.g. a repeated parameter) is an unusable state, like a missing one.
    let params = params.map(|Query(p)| p).unwrap_or_default();
    let name = params.state.as_deref().map(|s| oidc::binding_cookie_name(state.settings.secure_cookies, s));
    let token = name.as_deref().and_then(|n| cookie(&headers, n));
    let mut resp = match oidc::finish_login(&state, &session, params, token.as_deref(), &meta).await {
        Ok(to) => Redirect::to(&to).into_response(),
        Err(f) => error_page(f.code),
    };
    // The binding has done its job (or the flow is dead): the browser forgets it.
    if let (Some(n), Some(_)) = (&name, &token) {
        if let Some(v) = binding_cookie(&state, n, "", 0) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}
