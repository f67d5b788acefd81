//! `/healthz` (the process answers) and `/readyz` (the database answers too).
use crate::rest::envelope::{ok, ApiError};
use app::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

pub async fn healthz() -> Response {
    ok(StatusCode::OK, "alive", serde_json::json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> Result<Response, ApiError> {
    sqlx::query("SELECT 1").execute(&state.db).await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check: database unavailable");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "NOT_READY", "The database is not reachable.")
    })?;
    Ok(ok(StatusCode::OK, "ready", serde_json::json!({"status": "ready"})))
}
