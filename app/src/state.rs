//! `AppState`: what every handler and server function reaches (pool, secret box, settings, Leptos options).
use crate::service::crypto::SecretBox;
use leptos::config::LeptosOptions;
use std::sync::Arc;

pub use crate::repo::db::Db;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Base URL people and IdPs reach us at, without a trailing slash.
    pub public_url: String,
    /// Cookies are `Secure` whenever the public URL is https.
    pub secure_cookies: bool,
    /// Proxies whose `X-Forwarded-For` names the client (`--trusted-proxies`); empty: the TCP peer is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// SSO sign-in starts and callbacks allowed per client address per minute (`--sso-rate-limit`).
    pub sso_rate_limit_per_minute: i64,
    /// Audit events are kept this many days (`--audit-retention-days`).
    pub audit_retention_days: i64,
    /// One unit of the webhook retry schedule (`send::SCHEDULE`), in milliseconds; a second in production.
    pub webhook_retry_unit_ms: i64,
    /// Where `google` instance providers discover Google (`https://accounts.google.com`; tests use their own IdP).
    pub google_issuer: String,
}

#[derive(Clone, axum::extract::FromRef)]
pub struct AppState {
    pub db: Db,
    pub secrets: Arc<SecretBox>,
    pub settings: Arc<Settings>,
    pub sso: Arc<crate::service::oidc::SsoRuntime>,
    pub dns: Arc<crate::service::domains::DnsChecker>,
    pub leptos_options: LeptosOptions,
}
