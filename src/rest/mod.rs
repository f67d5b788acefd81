//! The REST API under `/api` (SPEC §2). Each handler parses input, calls one service function with the
//! caller, and wraps the result in the envelope.
mod account;
mod audit;
mod admin;
mod auth;
pub mod caller;
mod connections;
mod domains;
mod handoff;
mod ldap;
pub mod openapi;
mod reference;
pub mod envelope;
mod orgs;
mod providers;
mod saml;
mod security;
mod sso;
mod webhooks;
mod workspace;

use app::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Largest JSON body any endpoint takes.
pub const BODY_LIMIT: usize = 64 * 1024;
/// The ACS form: a base64 Response of up to 256 KiB, and its RelayState.
const SAML_BODY_LIMIT: usize = 360 * 1024;

/// Whether a request's body is an HTML form (`application/x-www-form-urlencoded`, any case, parameters allowed):
/// the endpoints that read forms themselves (the SAML ACS, the LDAP sign-in).
fn is_form(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// Plain browser routes outside `/api` (no envelope), and the health checks.
fn browser_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(domains::continue_sign_in))
        .routes(routes!(handoff::jwks))
        .routes(routes!(crate::health::healthz))
        .routes(routes!(crate::health::readyz))
}

/// The REST API under `/api`. Every route goes through `routes!`, which takes only handlers with their
/// `#[utoipa::path]` description: the OpenAPI document cannot miss a route.
fn api_routes() -> OpenApiRouter<AppState> {
    let acs = OpenApiRouter::new().routes(routes!(saml::acs)).layer(DefaultBodyLimit::max(SAML_BODY_LIMIT));
    OpenApiRouter::new()
        .routes(routes!(auth::sign_up))
        .routes(routes!(auth::sign_in))
        .routes(routes!(auth::sign_out))
        .routes(routes!(domains::discover))
        .routes(routes!(account::me))
        .routes(routes!(account::list_keys, account::create_key))
        .routes(routes!(account::revoke_key))
        .routes(routes!(account::list_sessions))
        .routes(routes!(account::revoke_session))
        .routes(routes!(domains::my_join_requests))
        .routes(routes!(security::mfa_status))
        .routes(routes!(security::mfa_enroll))
        .routes(routes!(security::mfa_confirm))
        .routes(routes!(security::mfa_challenge))
        .routes(routes!(security::mfa_disable))
        .routes(routes!(orgs::list, orgs::create))
        .routes(routes!(orgs::detail))
        .routes(routes!(orgs::members))
        .routes(routes!(orgs::set_role, orgs::remove))
        .routes(routes!(domains::list, domains::add))
        .routes(routes!(domains::get, domains::delete))
        .routes(routes!(domains::verify))
        .routes(routes!(domains::settings))
        .routes(routes!(domains::join_requests))
        .routes(routes!(domains::approve))
        .routes(routes!(domains::deny))
        .routes(routes!(sso::get_settings, sso::put_settings, sso::delete_settings))
        .routes(routes!(sso::test_settings))
        .routes(routes!(connections::list, connections::create))
        .routes(routes!(connections::get, connections::update, connections::delete))
        .routes(routes!(connections::test))
        .routes(routes!(workspace::get, workspace::put, workspace::delete))
        .routes(routes!(security::get_security, security::put_security))
        .routes(routes!(security::get_enforcement, security::put_enforcement))
        .routes(routes!(security::sessions))
        .routes(routes!(security::revoke_session))
        .routes(routes!(audit::list))
        .routes(routes!(audit::export))
        .routes(routes!(webhooks::list, webhooks::create))
        .routes(routes!(webhooks::get, webhooks::update, webhooks::delete))
        .routes(routes!(webhooks::rotate))
        .routes(routes!(webhooks::test))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::resend))
        .routes(routes!(admin::list, admin::create))
        .routes(routes!(admin::get, admin::update, admin::delete))
        .routes(routes!(admin::rotate))
        .routes(routes!(providers::list, providers::create))
        .routes(routes!(providers::get, providers::update, providers::delete))
        .routes(routes!(providers::test))
        .routes(routes!(handoff::authenticate))
        .routes(routes!(handoff::login_url))
        .routes(routes!(handoff::check_session))
        .routes(routes!(handoff::revoke_session))
        .routes(routes!(handoff::totp))
        .routes(routes!(sso::login))
        .routes(routes!(workspace::buttons))
        .routes(routes!(workspace::login))
        .routes(routes!(sso::callback))
        .routes(routes!(handoff::resume))
        .routes(routes!(saml::metadata))
        .merge(acs)
        .routes(routes!(saml::finish))
        .routes(routes!(ldap::sign_in))
}

/// The API router (to nest under `/api`), the routes outside it, and the OpenAPI document of both.
pub fn routers() -> (Router<AppState>, Router<AppState>, utoipa::openapi::OpenApi) {
    let (api, api_doc) = api_routes().split_for_parts();
    let (outside, mut doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi()).merge(browser_routes()).split_for_parts();
    for (path, item) in api_doc.paths.paths {
        doc.paths.paths.insert(format!("/api{path}"), item);
    }
    if let (Some(into), Some(from)) = (doc.components.as_mut(), api_doc.components) {
        into.schemas.extend(from.schemas);
    }
    doc.paths.paths.insert("/api/openapi.json".into(), openapi::document_path_item());
    doc.paths.paths.insert("/api/reference".into(), openapi::reference_path_item());
    openapi::finish(&mut doc);
    let value = serde_json::to_value(&doc).unwrap_or_default();
    let json: std::sync::Arc<str> = value.to_string().into();
    let html: std::sync::Arc<str> = reference::render(&value).into();
    let api = api
        .route("/openapi.json", get(move || openapi::document(json.clone())))
        .route("/reference", get(move || reference::page(html.clone())))
        .fallback(envelope::not_found)
        .method_not_allowed_fallback(envelope::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT));
    (api, outside, doc)
}
