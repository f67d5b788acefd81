//! Domains (`/api/user/organizations/{orgId}/domains…`), join requests, and email-first discovery.
use super::caller::Caller;
use super::envelope::{ok, ApiError, Json, Path};
use app::service::domains;
use app::state::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use super::openapi::{Done, Envelope, OrgItemPath, OrgPath};
use app::model::{Discovery, DomainInfo, JoinRequestInfo};
use serde::Deserialize;

#[utoipa::path(
    get, path = "/user/organizations/{org_id}/domains", tag = "domains", summary = "The organization's domains with their DNS status",
    params(OrgPath),
    responses((status = 200, description = "The domains", body = Envelope<Vec<DomainInfo>>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn list(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", domains::list(&state, &c.principal, &org_id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDomain {
    domain: String,
}

#[utoipa::path(
    post, path = "/user/organizations/{org_id}/domains", tag = "domains", summary = "Add a domain to verify: the answer has the TXT record to publish",
    params(OrgPath), request_body = NewDomain,
    responses((status = 201, description = "The domain, pending", body = Envelope<DomainInfo>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn add(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>, Json(b): Json<NewDomain>) -> Result<Response, ApiError> {
    let d = domains::add(&state, &c.principal, &org_id, &b.domain, &c.meta).await?;
    let message = format!("Domain added. Publish the TXT record {} with the value {}, then verify.", d.txt_record.name, d.txt_record.value);
    Ok(ok(StatusCode::CREATED, &message, d))
}

#[utoipa::path(
    get, path = "/user/organizations/{org_id}/domains/{id}", tag = "domains", summary = "One domain",
    params(OrgItemPath),
    responses((status = 200, description = "The domain", body = Envelope<DomainInfo>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn get(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", domains::get(&state, &c.principal, &org_id, &id).await?))
}

#[utoipa::path(
    delete, path = "/user/organizations/{org_id}/domains/{id}", tag = "domains", summary = "Remove a domain",
    params(OrgItemPath),
    responses((status = 200, description = "Removed", body = Done)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn delete(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    domains::delete(&state, &c.principal, &org_id, &id, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Domain removed", ()))
}

#[utoipa::path(
    post, path = "/user/organizations/{org_id}/domains/{id}/verify", tag = "domains", summary = "Look up the TXT record now",
    params(OrgItemPath),
    responses((status = 200, description = "The domain after the lookup; the message says what DNS answered", body = Envelope<DomainInfo>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn verify(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    let d = domains::verify_now(&state, &c.principal, &org_id, &id, &c.meta).await?;
    let message = d.last_message.clone().unwrap_or_default();
    Ok(ok(StatusCode::OK, &message, d))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DomainSettings {
    auto_join: String,
}

#[utoipa::path(
    put, path = "/user/organizations/{org_id}/domains/{id}/settings", tag = "domains", summary = "Auto-join for people at a verified domain: off, auto or approval",
    params(OrgItemPath), request_body = DomainSettings,
    responses((status = 200, description = "The domain", body = Envelope<DomainInfo>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn settings(
    State(state): State<AppState>,
    c: Caller,
    Path((org_id, id)): Path<(String, String)>,
    Json(b): Json<DomainSettings>,
) -> Result<Response, ApiError> {
    let d = domains::set_auto_join(&state, &c.principal, &org_id, &id, &b.auto_join, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Auto-join updated", d))
}

#[utoipa::path(
    get, path = "/user/organizations/{org_id}/join-requests", tag = "domains", summary = "Pending requests to join (owners and admins)",
    params(OrgPath),
    responses((status = 200, description = "The requests", body = Envelope<Vec<JoinRequestInfo>>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn join_requests(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", domains::join_requests(&state, &c.principal, &org_id).await?))
}

#[utoipa::path(
    get, path = "/user/join-requests", tag = "account", summary = "The caller's own requests to join organizations",
    responses((status = 200, description = "The requests", body = Envelope<Vec<JoinRequestInfo>>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn my_join_requests(State(state): State<AppState>, c: Caller) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", domains::my_join_requests(&state, &c.principal).await?))
}

#[utoipa::path(
    post, path = "/user/organizations/{org_id}/join-requests/{id}/approve", tag = "domains", summary = "Approve a join request: the user becomes a member",
    params(OrgItemPath),
    responses((status = 200, description = "The request", body = Envelope<JoinRequestInfo>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn approve(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    let r = domains::decide(&state, &c.principal, &org_id, &id, true, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Join request approved: the user is now a member", r))
}

#[utoipa::path(
    post, path = "/user/organizations/{org_id}/join-requests/{id}/deny", tag = "domains", summary = "Deny a join request",
    params(OrgItemPath),
    responses((status = 200, description = "The request", body = Envelope<JoinRequestInfo>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn deny(State(state): State<AppState>, c: Caller, Path((org_id, id)): Path<(String, String)>) -> Result<Response, ApiError> {
    let r = domains::decide(&state, &c.principal, &org_id, &id, false, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Join request denied", r))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscoverBody {
    email: String,
}

#[utoipa::path(
    post, path = "/auth/discover", tag = "auth", summary = "Email-first routing: whether an email signs in with SSO (and where) or with a password",
    request_body = DiscoverBody,
    responses((status = 200, description = "The sign-in method for this email", body = Envelope<Discovery>)),
    security(())
)]
pub async fn discover(State(state): State<AppState>, Json(b): Json<DiscoverBody>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", domains::discover(&state, &b.email).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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
#[utoipa::path(
    get, path = "/signin/continue", tag = "sign-in", summary = "The console's email step as a plain GET form: redirects to the IdP or to the password step",
    params(ContinueQuery),
    responses((status = 303, description = "To the IdP or to /signin")),
    security(())
)]
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
