//! Integration tests: the whole app on port 0 with its own database, over HTTP.
#![recursion_limit = "256"]
mod abuse;
mod audit;
mod accounts;
mod api_keys;
mod console;
mod applications;
mod db_outage;
mod dns_server;
mod domains;
mod errors;
mod handoff;
mod hardening;
mod metrics;
mod openapi;
mod helpers;
mod ldap;
mod orgs;
mod providers;
mod provider_signin;
mod own_postgres;
mod peers;
mod saml;
mod security;
mod sso_login;
mod sso_settings;
mod webhooks;
