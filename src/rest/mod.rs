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
pub mod envelope;
mod orgs;
mod saml;
mod security;
mod sso;
mod webhooks;

use app::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::Router;

/// Largest JSON body any endpoint takes.
pub const BODY_LIMIT: usize = 64 * 1024;
/// The ACS form: a base64 Response of up to 256 KiB, and its RelayState.
const SAML_BODY_LIMIT: usize = 360 * 1024;

/// Plain browser routes outside `/api` (no envelope).
pub fn browser_routes() -> Router<AppState> {
    Router::new()
        .route("/signin/continue", get(domains::continue_sign_in))
        .route("/.well-known/jwks.json", get(handoff::jwks))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/signup", post(auth::sign_up))
        .route("/auth/signin", post(auth::sign_in))
        .route("/auth/signout", post(auth::sign_out))
        .route("/user/me", get(account::me))
        .route("/user/api-keys", get(account::list_keys).post(account::create_key))
        .route("/user/api-keys/{id}", delete(account::revoke_key))
        .route("/user/sessions", get(account::list_sessions))
        .route("/user/sessions/{id}", delete(account::revoke_session))
        .route("/user/organizations", get(orgs::list).post(orgs::create))
        .route("/user/organizations/{org_id}", get(orgs::detail))
        .route("/user/organizations/{org_id}/members", get(orgs::members))
        .route("/user/organizations/{org_id}/audit-events", get(audit::list))
        .route("/user/organizations/{org_id}/audit-events/export", get(audit::export))
        .route("/user/organizations/{org_id}/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/user/organizations/{org_id}/webhooks/{id}", get(webhooks::get).patch(webhooks::update).delete(webhooks::delete))
        .route("/user/organizations/{org_id}/webhooks/{id}/secrets", post(webhooks::rotate))
        .route("/user/organizations/{org_id}/webhooks/{id}/test", post(webhooks::test))
        .route("/user/organizations/{org_id}/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route("/user/organizations/{org_id}/webhooks/{id}/deliveries/{delivery_id}/resend", post(webhooks::resend))
        .route("/user/organizations/{org_id}/members/{user_id}", axum::routing::patch(orgs::set_role).delete(orgs::remove))
        .route("/user/organizations/{org_id}/settings/sso", get(sso::get_settings).put(sso::put_settings).delete(sso::delete_settings))
        .route("/user/organizations/{org_id}/settings/sso/test", post(sso::test_settings))
        .route("/user/organizations/{org_id}/sso/connections", get(connections::list).post(connections::create))
        .route("/user/organizations/{org_id}/sso/connections/{id}", get(connections::get).patch(connections::update).delete(connections::delete))
        .route("/user/organizations/{org_id}/sso/connections/{id}/test", post(connections::test))
        .route("/user/organizations/{org_id}/domains", get(domains::list).post(domains::add))
        .route("/user/organizations/{org_id}/domains/{id}", get(domains::get).delete(domains::delete))
        .route("/user/organizations/{org_id}/domains/{id}/verify", post(domains::verify))
        .route("/user/organizations/{org_id}/domains/{id}/settings", axum::routing::put(domains::settings))
        .route("/user/organizations/{org_id}/join-requests", get(domains::join_requests))
        .route("/user/organizations/{org_id}/join-requests/{id}/approve", post(domains::approve))
        .route("/user/organizations/{org_id}/join-requests/{id}/deny", post(domains::deny))
        .route("/user/join-requests", get(domains::my_join_requests))
        .route("/auth/discover", post(domains::discover))
        .route("/user/organizations/{org_id}/settings/security", get(security::get_security).put(security::put_security))
        .route("/user/organizations/{org_id}/sso/enforcement", get(security::get_enforcement).put(security::put_enforcement))
        .route("/user/organizations/{org_id}/sso/sessions", get(security::sessions))
        .route("/user/organizations/{org_id}/sso/sessions/{id}", delete(security::revoke_session))
        .route("/auth/mfa", get(security::mfa_status))
        .route("/auth/mfa/enroll", post(security::mfa_enroll))
        .route("/auth/mfa/enroll/confirm", post(security::mfa_confirm))
        .route("/auth/mfa/challenge", post(security::mfa_challenge))
        .route("/auth/mfa/disable", post(security::mfa_disable))
        .route("/admin/applications", get(admin::list).post(admin::create))
        .route("/admin/applications/{id}", get(admin::get).patch(admin::update).delete(admin::delete))
        .route("/admin/applications/{id}/secrets", post(admin::rotate))
        .route("/auth/sso/callback", get(sso::callback))
        .route("/auth/sso/handoff", get(handoff::resume))
        .route("/auth/sso/authenticate", post(handoff::authenticate))
        .route("/auth/sso/login-url", post(handoff::login_url))
        .route("/auth/sessions/authenticate", post(handoff::check_session))
        .route("/auth/sessions/revoke", post(handoff::revoke_session))
        .route("/auth/mfa/totp/authenticate", post(handoff::totp))
        .route("/auth/sso/{slug}/login", get(sso::login))
        .route("/auth/sso/saml/metadata/{id}", get(saml::metadata))
        .route("/auth/sso/saml/acs", post(saml::acs).layer(DefaultBodyLimit::max(SAML_BODY_LIMIT)))
        .route("/auth/sso/saml/finish", get(saml::finish))
        .route("/auth/sso/ldap", post(ldap::sign_in))
        .fallback(envelope::not_found)
        .method_not_allowed_fallback(envelope::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}
