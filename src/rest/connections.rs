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

/// Optional body of a test: an LDAP connection searches for `username` (a sample name the owner types).
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TestBody {
    username: Option<String>,
}

pub async fn test(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let b: TestBody = if body.iter().all(u8::is_ascii_whitespace) {
        TestBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR", format!("The body is optional; when given it is {{\"username\": \"a sample name\"}}: {e}")))?
    };
    let r = svc::test(&state, &c.principal, &org_id, &id, b.username.as_deref(), &c.meta).await?;
    let message = r.message.clone();
    Ok(ok(StatusCode::OK, &message, r))
}
