//! Domains (`/api/user/organizations/{orgId}/domains…`), join requests, and email-first discovery.
use super::caller::Caller;
use super::envelope::{ok, ApiError, Json, Path};
use app::service::domains;
use app::state::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

pub async fn list(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", domains::list(&state, &c.principal, &org_id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDomain {
    domain: String,
}

pub async fn add(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>, Json(b): Json<NewDomain>) -> Result<Response, ApiError> {
    let d = domains::add(&state, &c.principal, &org_id, &b.domain, &c.meta).await?;
    let message = format!("Domain added. Publish the TXT record {} with the value {}, then verify.", d.txt_record.name, d.txt_record.value);
    Ok(ok(StatusCode::CREATED, &message, d))
}

pub async fn get(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", domains::get(&state, &c.principal, &org_id, &id).await?))
}

pub async fn delete(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    domains::delete(&state, &c.principal, &org_id, &id, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Domain removed", ()))
}

pub async fn verify(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    let d = domains::verify_now(&state, &c.principal, &org_id, &id, &c.meta).await?;
    let message = d.last_message.clone().unwrap_or_default();
    Ok(ok(StatusCode::OK, &message, d))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DomainSettings {
    auto_join: String,
}

pub async fn settings(
    State(state): State<AppState>,
    c: Caller,
    Path((org_id, id)): Path<(String, String)>,
    Json(b): Json<DomainSettings>,
) -> Result<Response, ApiError> {
    let d = domains::set_auto_join(&state, &c.principal, &org_id, &id, &b.auto_join, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Auto-join updated", d))
}

pub async fn join_requests(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", domains::join_requests(&state, &c.principal, &org_id).await?))
}

pub async fn my_join_requests(State(state): State<AppState>, c: Caller) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", domains::my_join_requests(&state, &c.principal).await?))
}

pub async fn approve(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    let r = domains::decide(&state, &c.principal, &org_id, &id, true, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Join request approved: the user is now a member", r))
}

pub async fn deny(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    let r = domains::decide(&state, &c.principal, &org_id, &id, false, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Join request denied", r))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoverBody {
    email: String,
}

pub async fn discover(State(state): State<AppState>, Json(b): Json<DiscoverBody>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", domains::discover(&state, &b.email).await?))
}

#[derive(Deserialize)]
pub struct ContinueQuery {
    email: Option<String>,
    /// An application's hosted sign-in: carried on to the IdP or to the password step.
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    organization: Option<String>,
}

fn app_params(q: Option<&ContinueQuery>) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    if let Some(q) = q {
        for (k, v) in [("client_id", &q.client_id), ("redirect_uri", &q.redirect_uri), ("state", &q.state), ("organization", &q.organization)] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                out.append_pair(k, v);
            }
        }
    }
    out.finish()
}

/// The console's email step (a plain GET form, so it works without JavaScript): to the IdP when the domain
/// routes to SSO, else to the password step.
pub async fn continue_sign_in(State(state): State<AppState>, q: Result<Query<ContinueQuery>, axum::extract::rejection::QueryRejection>) -> Response {
    let q = q.map(|Query(q)| q).ok();
    let email = q.as_ref().and_then(|q| q.email.clone()).unwrap_or_default();
    // The application's parameters, passed along untouched (they are checked where the sign-in ends).
    let app = app_params(q.as_ref());
    let with_app = |url: &str| if app.is_empty() { url.to_string() } else { format!("{url}&{app}") };
    let password_step = || {
        let enc: String = url::form_urlencoded::byte_serialize(email.trim().as_bytes()).collect();
        Redirect::to(&with_app(&format!("/signin?email={enc}"))).into_response()
    };
    match domains::discover(&state, &email).await {
        Ok(d) if d.method == "sso" => Redirect::to(&with_app(d.url.as_deref().unwrap_or("/signin?"))).into_response(),
        Ok(_) => password_step(),
        Err(_) if email.trim().is_empty() => Redirect::to("/signin").into_response(),
        Err(_) => password_step(),
    }
}
