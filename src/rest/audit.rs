//! The org's audit log: `GET …/audit-events` (filters, cursor pages) and `GET …/audit-events/export` (CSV or JSON
//! lines), owners and admins.
use super::caller::Caller;
use super::envelope::{ok, ApiError, Path};
use super::openapi::{Envelope, OrgPath};
use app::model::{AuditEvent, AuditPage, AuditQuery};
use app::service::audit;
use app::state::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[utoipa::path(
    get, path = "/user/organizations/{org_id}/audit-events", tag = "audit", summary = "The audit log, newest first, with filters and a cursor (owners and admins)",
    params(OrgPath, AuditQuery),
    responses((status = 200, description = "One page of events and the cursor of the next", body = Envelope<AuditPage>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn list(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>, q: Result<Query<AuditQuery>, QueryRejection>) -> Result<Response, ApiError> {
    let Query(q) = q?;
    Ok(ok(StatusCode::OK, "OK", audit::list(&state, &c.principal, &org_id, &q).await?))
}

/// One CSV cell: quoted, and a leading `= + - @` (a spreadsheet formula) neutralized with a quote mark.
fn cell(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{v}") } else { v.to_string() };
    format!("\"{}\"", v.replace('"', "\"\""))
}

fn csv(events: &[AuditEvent]) -> String {
    let mut out = String::from("createdAt,action,outcome,actor,actorUserId,target,errorCode,ip,userAgent,detail\r\n");
    for e in events {
        let row = [
            e.created_at.as_str(),
            &e.action,
            &e.outcome,
            &e.actor,
            e.actor_user_id.as_deref().unwrap_or_default(),
            e.target.as_deref().unwrap_or_default(),
            e.error_code.as_deref().unwrap_or_default(),
            e.ip.as_deref().unwrap_or_default(),
            e.user_agent.as_deref().unwrap_or_default(),
            e.detail.as_deref().unwrap_or_default(),
        ];
        out.push_str(&row.iter().map(|v| cell(v)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

#[utoipa::path(
    get, path = "/user/organizations/{org_id}/audit-events/export", tag = "audit", summary = "The filtered audit log as CSV (`format=csv`, the default) or JSON lines (`format=jsonl`)",
    params(OrgPath, AuditQuery),
    responses((status = 200, description = "A file download", content((String = "text/csv; charset=utf-8"), (String = "application/x-ndjson")))),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn export(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>, q: Result<Query<AuditQuery>, QueryRejection>) -> Result<Response, ApiError> {
    let Query(q) = q?;
    let format = q.format.clone().unwrap_or_else(|| "csv".into());
    let (body, mime, ext) = match format.as_str() {
        "csv" => (csv(&audit::export(&state, &c.principal, &org_id, &q).await?), "text/csv; charset=utf-8", "csv"),
        "jsonl" => {
            let events = audit::export(&state, &c.principal, &org_id, &q).await?;
            let lines: Vec<String> = events.iter().filter_map(|e| serde_json::to_string(e).ok()).collect();
            (lines.join("\n") + "\n", "application/x-ndjson", "jsonl")
        }
        _ => return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR", "format is csv or jsonl.")),
    };
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"audit-{}.{ext}\"", org_id.chars().filter(char::is_ascii_alphanumeric).collect::<String>())) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}
