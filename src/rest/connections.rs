//! The connections API (reference 001): `/api/user/organizations/{orgId}/sso/connections[/{id}[/test]]`, owner only.
use super::caller::Caller;
use super::envelope::{ok, ApiError, Json, Path};
use app::model::ConnectionInput;
use app::service::sso_connections as svc;
use app::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

pub async fn list(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", svc::list(&state, &c.principal, &org_id).await?))
}

pub async fn create(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>, Json(b): Json<ConnectionInput>) -> Result<Response, ApiError> {
    let info = svc::create(&state, &c.principal, &org_id, &b, &c.meta).await?;
    Ok(ok(StatusCode::CREATED, "Connection created. Test it before relying on it: a test sign-in that succeeds makes it active.", info))
}

pub async fn get(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", svc::get(&state, &c.principal, &org_id, &id).await?))
}

pub async fn update(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>, Json(b): Json<ConnectionInput>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "Connection saved.", svc::update(&state, &c.principal, &org_id, &id, &b, &c.meta).await?))
}

pub async fn delete(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    svc::delete(&state, &c.principal, &org_id, &id, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Connection deleted; the sessions it signed in have ended.", ()))
}

pub async fn test(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    let r = svc::test(&state, &c.principal, &org_id, &id, &c.meta).await?;
    let message = r.message.clone();
    Ok(ok(StatusCode::OK, &message, r))
}
