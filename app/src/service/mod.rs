//! The service layer: every rule of the product lives here, behind `ssr`. REST handlers and server functions
//! call these functions with the caller (`Principal`) and parsed input; nothing here knows HTTP.
pub mod api_keys;
pub mod applications;
pub mod audit;
pub mod auth;
pub mod connections;
pub mod crypto;
pub mod domain;
pub mod domains;
pub mod error;
pub mod jwt;
pub mod ldap;
pub mod metrics;
pub mod mfa;
pub mod orgs;
pub mod policy;
pub mod oidc;
pub mod oidc_key;
pub mod operators;
pub mod principal;
pub mod providers;
pub mod safe_http;
pub mod saml;
pub mod session_store;
pub mod sessions;
pub mod webhooks;
pub mod workspace_sso;
pub mod sso_connections;
pub mod signin;
pub mod housekeeping;

pub use error::{ServiceError, ServiceResult};
pub use principal::{Principal, RequestMeta, Via};

/// Milliseconds since the Unix epoch: the one time type stored in the database.
pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}

/// RFC 3339 UTC, the time format of every JSON response.
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

pub fn new_id() -> String {
    ulid::Ulid::new().to_string()
}
