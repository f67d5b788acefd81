//! `/api/admin/*`: instance administration, operators only (403 for everyone else, org owners included).
use super::caller::Caller;
use super::envelope::{ok, ApiError, Json, Path};
use app::service::applications::{self, ApplicationInput};
use app::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use super::openapi::{Done, Envelope, IdPath};
use app::model::{ApplicationInfo, ApplicationWithSecret};
use serde::Deserialize;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApplicationBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    redirect_uris: Option<Vec<String>>,
    #[serde(default)]
    session_duration_minutes: Option<i64>,
    #[serde(default)]
    max_session_minutes: Option<i64>,
    #[serde(default)]
    mfa_handling: Option<String>,
}

impl From<ApplicationBody> for ApplicationInput {
    fn from(b: ApplicationBody) -> Self {
        ApplicationInput {
            name: b.name,
            redirect_uris: b.redirect_uris,
            session_duration_minutes: b.session_duration_minutes,
            max_session_minutes: b.max_session_minutes,
            mfa_handling: b.mfa_handling,
        }
    }
}

#[utoipa::path(
    post, path = "/admin/applications", tag = "admin", summary = "Register an application (operators only); the client secret is shown once",
    request_body = ApplicationBody,
    responses((status = 201, description = "The application and its client secret", body = Envelope<ApplicationWithSecret>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn create(State(state): State<AppState>, c: Caller, Json(b): Json<ApplicationBody>) -> Result<Response, ApiError> {
    let created = applications::create(&state, &c.principal, &b.into(), &c.meta).await?;
    Ok(ok(StatusCode::CREATED, "Application registered. Store the client secret now: it is shown only once.", created))
}

#[utoipa::path(
    get, path = "/admin/applications", tag = "admin", summary = "Registered applications (operators only)",
    responses((status = 200, description = "The applications", body = Envelope<Vec<ApplicationInfo>>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn list(State(state): State<AppState>, c: Caller) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", applications::list(&state, &c.principal).await?))
}

#[utoipa::path(
    get, path = "/admin/applications/{id}", tag = "admin", summary = "One application (operators only)",
    params(IdPath),
    responses((status = 200, description = "The application", body = Envelope<ApplicationInfo>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn get(State(state): State<AppState>, c: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", applications::get(&state, &c.principal, &id).await?))
}

#[utoipa::path(
    patch, path = "/admin/applications/{id}", tag = "admin", summary = "Change an application: any subset of the fields (operators only)",
    params(IdPath), request_body = ApplicationBody,
    responses((status = 200, description = "The application", body = Envelope<ApplicationInfo>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn update(State(state): State<AppState>, c: Caller, Path(id): Path<String>, Json(b): Json<ApplicationBody>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "Application updated", applications::update(&state, &c.principal, &id, &b.into(), &c.meta).await?))
}

#[utoipa::path(
    delete, path = "/admin/applications/{id}", tag = "admin", summary = "Delete an application and end its sessions (operators only)",
    params(IdPath),
    responses((status = 200, description = "Deleted", body = Done)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn delete(State(state): State<AppState>, c: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    applications::delete(&state, &c.principal, &id, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Application deleted", ()))
}

#[utoipa::path(
    post, path = "/admin/applications/{id}/secrets", tag = "admin", summary = "A new client secret (shown once); the previous ones keep working for 24 hours",
    params(IdPath),
    responses((status = 201, description = "The application and its new secret", body = Envelope<ApplicationWithSecret>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn rotate(State(state): State<AppState>, c: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    let r = applications::rotate_secret(&state, &c.principal, &id, &c.meta).await?;
    Ok(ok(StatusCode::CREATED, "New client secret created; shown only once. The previous secrets keep working for 24 hours.", r))
}
