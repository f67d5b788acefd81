//! `/api/user/organizations` and members.
use super::caller::Caller;
use super::envelope::{ok, ApiError, Json, Path};
use app::service::orgs;
use app::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

pub async fn list(State(state): State<AppState>, c: Caller) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", orgs::list_mine(&state, &c.principal).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrg {
    name: String,
    #[serde(default)]
    slug: Option<String>,
}

pub async fn create(State(state): State<AppState>, c: Caller, Json(body): Json<NewOrg>) -> Result<Response, ApiError> {
    let org = orgs::create(&state, &c.principal, &body.name, body.slug.as_deref(), &c.meta).await?;
    Ok(ok(StatusCode::CREATED, "Organization created", org))
}

pub async fn detail(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", orgs::detail(&state, &c.principal, &org_id).await?))
}

pub async fn members(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", orgs::members(&state, &c.principal, &org_id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    role: String,
}

pub async fn set_role(
    State(state): State<AppState>,
    c: Caller,
    Path((org_id, user_id)): Path<(String, String)>,
    Json(body): Json<RoleChange>,
) -> Result<Response, ApiError> {
    let m = orgs::set_member_role(&state, &c.principal, &org_id, &user_id, &body.role, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Role updated", m))
}

pub async fn remove(State(state): State<AppState>, c: Caller, Path((org_id, user_id)): Path<(String, String)>) -> Result<Response, ApiError> {
    orgs::remove_member(&state, &c.principal, &org_id, &user_id, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Member removed", ()))
}
