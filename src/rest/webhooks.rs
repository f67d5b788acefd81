//! An org's webhooks (owner only): `…/webhooks` CRUD, `…/{id}/secrets` (rotate), `…/{id}/test`, and the delivery
//! log with resend.
use super::caller::Caller;
use super::envelope::{ok, ApiError, Json, Path};
use app::service::webhooks::{self, WebhookInput};
use app::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use super::openapi::{Done, Envelope, OrgItemPath, OrgPath};
use app::model::{WebhookDelivery, WebhookInfo, WebhookWithSecret};
use serde::Deserialize;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookBody {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    event_types: Option<Vec<String>>,
    #[serde(default)]
    enabled: Option<bool>,
}

impl From<WebhookBody> for WebhookInput {
    fn from(b: WebhookBody) -> Self {
        WebhookInput { url: b.url, description: b.description, event_types: b.event_types, enabled: b.enabled }
    }
}

#[utoipa::path(
    post, path = "/user/organizations/{org_id}/webhooks", tag = "webhooks", summary = "Add a webhook endpoint (owner only); the signing secret is shown once",
    params(OrgPath), request_body = WebhookBody,
    responses((status = 201, description = "The webhook and its signing secret", body = Envelope<WebhookWithSecret>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn create(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>, Json(b): Json<WebhookBody>) -> Result<Response, ApiError> {
    let created = webhooks::create(&state, &c.principal, &org_id, &b.into(), &c.meta).await?;
    Ok(ok(StatusCode::CREATED, "Webhook created. Store the signing secret now: it is shown only once.", created))
}

#[utoipa::path(
    get, path = "/user/organizations/{org_id}/webhooks", tag = "webhooks", summary = "The organization's webhooks (owner only)",
    params(OrgPath),
    responses((status = 200, description = "The webhooks", body = Envelope<Vec<WebhookInfo>>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn list(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", webhooks::list(&state, &c.principal, &org_id).await?))
}

#[utoipa::path(
    get, path = "/user/organizations/{org_id}/webhooks/{id}", tag = "webhooks", summary = "One webhook",
    params(OrgItemPath),
    responses((status = 200, description = "The webhook", body = Envelope<WebhookInfo>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn get(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", webhooks::get(&state, &c.principal, &org_id, &id).await?))
}

#[utoipa::path(
    patch, path = "/user/organizations/{org_id}/webhooks/{id}", tag = "webhooks", summary = "Change a webhook: any subset of the fields",
    params(OrgItemPath), request_body = WebhookBody,
    responses((status = 200, description = "The webhook", body = Envelope<WebhookInfo>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn update(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>, Json(b): Json<WebhookBody>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "Webhook updated", webhooks::update(&state, &c.principal, &org_id, &id, &b.into(), &c.meta).await?))
}

#[utoipa::path(
    delete, path = "/user/organizations/{org_id}/webhooks/{id}", tag = "webhooks", summary = "Delete a webhook and its delivery log",
    params(OrgItemPath),
    responses((status = 200, description = "Deleted", body = Done)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn delete(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    webhooks::delete(&state, &c.principal, &org_id, &id, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Webhook deleted", ()))
}

#[utoipa::path(
    post, path = "/user/organizations/{org_id}/webhooks/{id}/secrets", tag = "webhooks", summary = "A new signing secret (shown once); for 24 hours messages are signed with both",
    params(OrgItemPath),
    responses((status = 201, description = "The webhook and its new secret", body = Envelope<WebhookWithSecret>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn rotate(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    let r = webhooks::rotate(&state, &c.principal, &org_id, &id, &c.meta).await?;
    Ok(ok(StatusCode::CREATED, "New signing secret created; shown only once. For 24 hours messages carry a signature with the previous secret too.", r))
}

#[utoipa::path(
    post, path = "/user/organizations/{org_id}/webhooks/{id}/test", tag = "webhooks", summary = "Queue a test message; the delivery log shows what the endpoint answered",
    params(OrgItemPath),
    responses((status = 202, description = "The queued delivery", body = Envelope<WebhookDelivery>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn test(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    let d = webhooks::test(&state, &c.principal, &org_id, &id, &c.meta).await?;
    Ok(ok(StatusCode::ACCEPTED, "Test message queued: the delivery log shows what the endpoint answered.", d))
}

#[utoipa::path(
    get, path = "/user/organizations/{org_id}/webhooks/{id}/deliveries", tag = "webhooks", summary = "The delivery log, newest first",
    params(OrgItemPath),
    responses((status = 200, description = "The deliveries", body = Envelope<Vec<WebhookDelivery>>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn deliveries(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", webhooks::deliveries(&state, &c.principal, &org_id, &id).await?))
}

#[utoipa::path(
    post, path = "/user/organizations/{org_id}/webhooks/{id}/deliveries/{delivery_id}/resend", tag = "webhooks", summary = "Send a delivery again, as a new delivery",
    params(("org_id" = String, Path, description = "The organization's id"), ("id" = String, Path, description = "The webhook's id"), ("delivery_id" = String, Path, description = "The delivery's id")),
    responses((status = 202, description = "The new delivery", body = Envelope<WebhookDelivery>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn resend(State(state): State<AppState>, c: Caller, Path((org_id, id, delivery_id)): Path<(String, String, String)>) -> Result<Response, ApiError> {
    let d = webhooks::resend(&state, &c.principal, &org_id, &id, &delivery_id, &c.meta).await?;
    Ok(ok(StatusCode::ACCEPTED, "Queued again as a new delivery.", d))
}
