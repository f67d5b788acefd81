//! `/api/user/organizations` and members.
use super::caller::Caller;
use super::envelope::{ok, ApiError, Json, Path};
use app::service::orgs;
use app::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use super::openapi::{Done, Envelope, OrgPath};
use app::model::{Member, OrgDetail, OrgSummary};
use serde::Deserialize;

#[utoipa::path(
    get, path = "/user/organizations", tag = "orgs", summary = "The organizations the caller belongs to",
    responses((status = 200, description = "The organizations", body = Envelope<Vec<OrgSummary>>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn list(State(state): State<AppState>, c: Caller) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", orgs::list_mine(&state, &c.principal).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrg {
    name: String,
    #[serde(default)]
    slug: Option<String>,
}

#[utoipa::path(
    post, path = "/user/organizations", tag = "orgs", summary = "Create an organization; the caller becomes its owner",
    request_body = NewOrg,
    responses((status = 201, description = "The organization", body = Envelope<OrgSummary>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn create(State(state): State<AppState>, c: Caller, Json(body): Json<NewOrg>) -> Result<Response, ApiError> {
    let org = orgs::create(&state, &c.principal, &body.name, body.slug.as_deref(), &c.meta).await?;
    Ok(ok(StatusCode::CREATED, "Organization created", org))
}

#[utoipa::path(
    get, path = "/user/organizations/{org_id}", tag = "orgs", summary = "One organization",
    params(OrgPath),
    responses((status = 200, description = "The organization", body = Envelope<OrgDetail>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn detail(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", orgs::detail(&state, &c.principal, &org_id).await?))
}

#[utoipa::path(
    get, path = "/user/organizations/{org_id}/members", tag = "orgs", summary = "The organization's members",
    params(OrgPath),
    responses((status = 200, description = "The members", body = Envelope<Vec<Member>>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn members(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", orgs::members(&state, &c.principal, &org_id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    role: String,
}

#[utoipa::path(
    patch, path = "/user/organizations/{org_id}/members/{user_id}", tag = "orgs", summary = "Change a member's role (owners; the last owner stays)",
    params(("org_id" = String, Path, description = "The organization's id"), ("user_id" = String, Path, description = "The member's user id")), request_body = RoleChange,
    responses((status = 200, description = "The member", body = Envelope<Member>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn set_role(
    State(state): State<AppState>,
    c: Caller,
    Path((org_id, user_id)): Path<(String, String)>,
    Json(body): Json<RoleChange>,
) -> Result<Response, ApiError> {
    let m = orgs::set_member_role(&state, &c.principal, &org_id, &user_id, &body.role, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Role updated", m))
}

#[utoipa::path(
    delete, path = "/user/organizations/{org_id}/members/{user_id}", tag = "orgs", summary = "Remove a member",
    params(("org_id" = String, Path, description = "The organization's id"), ("user_id" = String, Path, description = "The member's user id")),
    responses((status = 200, description = "Removed", body = Done)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn remove(State(state): State<AppState>, c: Caller, Path((org_id, user_id)): Path<(String, String)>) -> Result<Response, ApiError> {
    orgs::remove_member(&state, &c.principal, &org_id, &user_id, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Member removed", ()))
}
