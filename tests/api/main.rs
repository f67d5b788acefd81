//! Integration tests: the whole app on port 0 with its own database, over HTTP.
#![recursion_limit = "256"]
mod accounts;
mod api_keys;
mod dns_server;
mod domains;
mod errors;
mod helpers;
mod orgs;
mod peers;
mod security;
mod sso_login;
mod sso_settings;
