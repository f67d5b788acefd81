//! The Latchkey server: configuration, start-up, the REST API, health checks and the CSRF guard. The rules
//! live in the `app` crate's service layer.
#![recursion_limit = "256"]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod cli;
pub mod config;
pub mod csrf;
pub mod health;
pub mod metrics;
pub mod rest;
pub mod startup;
