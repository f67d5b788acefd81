//! `/api/user/me`, API keys and the caller's own sessions.
use super::caller::{Caller, PartialCaller};
use super::envelope::{ok, ApiError, Json, Path};
use app::service::{api_keys, auth, sessions};
use app::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use super::openapi::{Done, Envelope, IdPath};
use app::model::{ApiKeyInfo, CreatedApiKey, Me, SessionInfo};
use serde::Deserialize;

#[utoipa::path(
    get, path = "/user/me", tag = "account", summary = "The signed-in user (also while a second factor is still owed)",
    responses((status = 200, description = "The user", body = Envelope<Me>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn me(State(state): State<AppState>, c: PartialCaller) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", auth::me(&state, &c.principal).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewKey {
    name: String,
    #[serde(default)]
    organization_id: Option<String>,
}

#[utoipa::path(
    post, path = "/user/api-keys", tag = "account", summary = "Create a personal API key (shown once)",
    request_body = NewKey,
    responses((status = 201, description = "The key, shown only this once", body = Envelope<CreatedApiKey>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn create_key(State(state): State<AppState>, c: Caller, Json(body): Json<NewKey>) -> Result<Response, ApiError> {
    let created = api_keys::create(&state, &c.principal, &body.name, body.organization_id.as_deref(), &c.meta).await?;
    Ok(ok(StatusCode::CREATED, "API key created. Store it now: it is shown only once.", created))
}

#[utoipa::path(
    get, path = "/user/api-keys", tag = "account", summary = "The caller's API keys (never the secret)",
    responses((status = 200, description = "The keys", body = Envelope<Vec<ApiKeyInfo>>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn list_keys(State(state): State<AppState>, c: Caller) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", api_keys::list(&state, &c.principal).await?))
}

#[utoipa::path(
    delete, path = "/user/api-keys/{id}", tag = "account", summary = "Revoke one of the caller's API keys",
    params(IdPath),
    responses((status = 200, description = "Revoked", body = Done)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn revoke_key(State(state): State<AppState>, c: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    api_keys::revoke(&state, &c.principal, &id, &c.meta).await?;
    Ok(ok(StatusCode::OK, "API key revoked", ()))
}

#[utoipa::path(
    get, path = "/user/sessions", tag = "account", summary = "The caller's signed-in sessions",
    responses((status = 200, description = "The sessions", body = Envelope<Vec<SessionInfo>>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn list_sessions(State(state): State<AppState>, c: Caller) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", sessions::list_mine(&state, &c.principal).await?))
}

#[utoipa::path(
    delete, path = "/user/sessions/{id}", tag = "account", summary = "Sign out one of the caller's sessions",
    params(IdPath),
    responses((status = 200, description = "Revoked", body = Done)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn revoke_session(State(state): State<AppState>, c: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    sessions::revoke_mine(&state, &c.principal, &id, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Session revoked", ()))
}
