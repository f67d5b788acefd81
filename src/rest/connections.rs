//! The connections API (reference 001): `/api/user/organizations/{orgId}/sso/connections[/{id}[/test]]`, owner only.
use super::caller::Caller;
use super::envelope::{ok, ApiError, Json, Path};
use super::openapi::{Done, Envelope, OrgItemPath, OrgPath};
use app::model::{ConnectionInfo, ConnectionInput, ConnectionTest};
use app::service::sso_connections as svc;
use app::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

#[utoipa::path(
    get, path = "/user/organizations/{org_id}/sso/connections", tag = "connections", summary = "The organization's connections (owner only); secrets never come back",
    params(OrgPath),
    responses((status = 200, description = "The connections", body = Envelope<Vec<ConnectionInfo>>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn list(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", svc::list(&state, &c.principal, &org_id).await?))
}

#[utoipa::path(
    post, path = "/user/organizations/{org_id}/sso/connections", tag = "connections", summary = "Add an OIDC, SAML or LDAP connection (owner only)",
    params(OrgPath), request_body = ConnectionInput,
    responses((status = 201, description = "The connection, not yet tested", body = Envelope<ConnectionInfo>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn create(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>, Json(b): Json<ConnectionInput>) -> Result<Response, ApiError> {
    let info = svc::create(&state, &c.principal, &org_id, &b, &c.meta).await?;
    Ok(ok(StatusCode::CREATED, "Connection created. Test it before relying on it: a test sign-in that succeeds makes it active.", info))
}

#[utoipa::path(
    get, path = "/user/organizations/{org_id}/sso/connections/{id}", tag = "connections", summary = "One connection (owner only)",
    params(OrgItemPath),
    responses((status = 200, description = "The connection", body = Envelope<ConnectionInfo>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn get(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", svc::get(&state, &c.principal, &org_id, &id).await?))
}

#[utoipa::path(
    patch, path = "/user/organizations/{org_id}/sso/connections/{id}", tag = "connections", summary = "Change a connection: any subset of the fields (owner only)",
    params(OrgItemPath), request_body = ConnectionInput,
    responses((status = 200, description = "The connection", body = Envelope<ConnectionInfo>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn update(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>, Json(b): Json<ConnectionInput>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "Connection saved.", svc::update(&state, &c.principal, &org_id, &id, &b, &c.meta).await?))
}

#[utoipa::path(
    delete, path = "/user/organizations/{org_id}/sso/connections/{id}", tag = "connections", summary = "Delete a connection and end the sessions it signed in (owner only; the lockout guard applies)",
    params(OrgItemPath),
    responses((status = 200, description = "Deleted", body = Done)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn delete(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    svc::delete(&state, &c.principal, &org_id, &id, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Connection deleted; the sessions it signed in have ended.", ()))
}

/// Optional body of a test: an LDAP connection searches for `username` (a sample name the owner types).
#[derive(serde::Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestBody {
    username: Option<String>,
}

#[utoipa::path(
    post, path = "/user/organizations/{org_id}/sso/connections/{id}/test", tag = "connections", summary = "Test a connection: discovery or metadata, or for LDAP connect, bind and search with each step timed",
    params(OrgItemPath), request_body(content = Option<TestBody>, description = "Optional: a sample user name for an LDAP search"),
    responses((status = 200, description = "The outcome (also when the test failed: see `success`)", body = Envelope<ConnectionTest>)),
    security(("session" = []), ("apiKey" = []))
)]
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
