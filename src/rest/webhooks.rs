//! An org's webhooks (owner only): `…/webhooks` CRUD, `…/{id}/secrets` (rotate), `…/{id}/test`, and the delivery
//! log with resend.
use super::caller::Caller;
use super::envelope::{ok, ApiError, Json, Path};
use app::service::webhooks::{self, WebhookInput};
use app::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

#[derive(Deserialize)]
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

pub async fn create(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>, Json(b): Json<WebhookBody>) -> Result<Response, ApiError> {
    let created = webhooks::create(&state, &c.principal, &org_id, &b.into(), &c.meta).await?;
    Ok(ok(StatusCode::CREATED, "Webhook created. Store the signing secret now: it is shown only once.", created))
}

pub async fn list(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", webhooks::list(&state, &c.principal, &org_id).await?))
}

pub async fn get(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", webhooks::get(&state, &c.principal, &org_id, &id).await?))
}

pub async fn update(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>, Json(b): Json<WebhookBody>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "Webhook updated", webhooks::update(&state, &c.principal, &org_id, &id, &b.into(), &c.meta).await?))
}

pub async fn delete(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    webhooks::delete(&state, &c.principal, &org_id, &id, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Webhook deleted", ()))
}

pub async fn rotate(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    let r = webhooks::rotate(&state, &c.principal, &org_id, &id, &c.meta).await?;
    Ok(ok(StatusCode::CREATED, "New signing secret created; shown only once. For 24 hours messages carry a signature with the previous secret too.", r))
}

pub async fn test(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    let d = webhooks::test(&state, &c.principal, &org_id, &id, &c.meta).await?;
    Ok(ok(StatusCode::ACCEPTED, "Test message queued: the delivery log shows what the endpoint answered.", d))
}

pub async fn deliveries(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", webhooks::deliveries(&state, &c.principal, &org_id, &id).await?))
}

pub async fn resend(State(state): State<AppState>, c: Caller, Path((org_id, id, delivery_id)): Path<(String, String, String)>) -> Result<Response, ApiError> {
    let d = webhooks::resend(&state, &c.principal, &org_id, &id, &delivery_id, &c.meta).await?;
    Ok(ok(StatusCode::ACCEPTED, "Queued again as a new delivery.", d))
}
