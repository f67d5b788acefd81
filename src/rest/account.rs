//! `/api/user/me`, API keys and the caller's own sessions.
use super::caller::{Caller, PartialCaller};
use super::envelope::{ok, ApiError, Json, Path};
use app::service::{api_keys, auth, sessions};
use app::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

pub async fn me(State(state): State<AppState>, c: PartialCaller) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", auth::me(&state, &c.principal).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewKey {
    name: String,
    #[serde(default)]
    organization_id: Option<String>,
}

pub async fn create_key(State(state): State<AppState>, c: Caller, Json(body): Json<NewKey>) -> Result<Response, ApiError> {
    let created = api_keys::create(&state, &c.principal, &body.name, body.organization_id.as_deref(), &c.meta).await?;
    Ok(ok(StatusCode::CREATED, "API key created. Store it now: it is shown only once.", created))
}

pub async fn list_keys(State(state): State<AppState>, c: Caller) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", api_keys::list(&state, &c.principal).await?))
}

pub async fn revoke_key(State(state): State<AppState>, c: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    api_keys::revoke(&state, &c.principal, &id, &c.meta).await?;
    Ok(ok(StatusCode::OK, "API key revoked", ()))
}

pub async fn list_sessions(State(state): State<AppState>, c: Caller) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", sessions::list_mine(&state, &c.principal).await?))
}

pub async fn revoke_session(State(state): State<AppState>, c: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    sessions::revoke_mine(&state, &c.principal, &id, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Session revoked", ()))
}
