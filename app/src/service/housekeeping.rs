//! Periodic clean-up of what anonymous clients and time leave behind: expired sessions, expired SSO flows and
//! stale rate-limit counters. Every node runs the loop; a lease in the database lets one node at a time do a pass.
use super::{new_id, now_ms, ServiceResult};
use crate::repo;
use crate::state::{AppState, Db};
use std::time::Duration;

/// Rate-limit counters older than this are gone (the longest window is one hour).
const RATE_LIMIT_KEEP_MS: i64 = 2 * 3600 * 1000;

/// What one pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub sessions: u64,
    pub flows: u64,
    pub rate_limits: u64,
}

/// One pass, if this node gets the lease (`holder` names the node). `None` when another node holds it.
pub async fn run_once(db: &Db, holder: &str, lease_ms: i64) -> ServiceResult<Option<Purged>> {
    let now = now_ms();
    if !repo::leases::claim(db, "housekeeping", holder, now, now + lease_ms).await? {
        return Ok(None);
    }
    let sessions = repo::sessions::purge_expired(db, now).await?;
    let flows = repo::flows::purge(db, now).await? + repo::sso_tokens::purge(db, now).await? + repo::connections::purge_assertions(db, now).await?;
    let rate_limits = repo::rate_limits::purge(db, now - RATE_LIMIT_KEEP_MS).await?;
    Ok(Some(Purged { sessions, flows, rate_limits }))
}

/// Starts the loop on this node: a pass every `period` (the lease lasts a little less, so the next pass may run
/// on any node).
pub fn spawn(state: AppState, period: Duration) {
    let holder = new_id();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let lease_ms = (period.as_millis() as i64 * 9 / 10).max(1);
        loop {
            tick.tick().await;
            match run_once(&state.db, &holder, lease_ms).await {
                Ok(Some(p)) => {
                    if p != Purged::default() {
                        tracing::info!(sessions = p.sessions, flows = p.flows, rate_limits = p.rate_limits, "housekeeping purged");
                    }
                    // The lease holder also keeps SAML metadata and certificate warnings current.
                    if let Err(e) = super::sso_connections::saml_upkeep(&state).await {
                        tracing::warn!(error = %e, "SAML upkeep failed");
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "housekeeping failed"),
            }
        }
    });
}
