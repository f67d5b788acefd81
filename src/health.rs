//! `/healthz` (the process answers) and `/readyz` (the database answers too).
use crate::rest::envelope::{ok, ApiError};
use app::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use crate::rest::openapi::Envelope;

/// `data` of the health checks.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` or `ready`.
    pub status: &'static str,
}

#[utoipa::path(
    get, path = "/healthz", tag = "meta", summary = "Liveness: the process answers",
    responses((status = 200, description = "Alive", body = Envelope<Health>)),
    security(())
)]
pub async fn healthz() -> Response {
    ok(StatusCode::OK, "alive", Health { status: "ok" })
}

#[utoipa::path(
    get, path = "/readyz", tag = "meta", summary = "Readiness: the database answers too (503 NOT_READY otherwise)",
    responses((status = 200, description = "Ready", body = Envelope<Health>)),
    security(())
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Response, ApiError> {
    sqlx::query("SELECT 1").execute(&state.db).await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check: database unavailable");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "NOT_READY", "The database is not reachable.")
    })?;
    Ok(ok(StatusCode::OK, "ready", Health { status: "ready" }))
}
