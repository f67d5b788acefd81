//! Periodic clean-up of what anonymous clients and time leave behind: expired sessions, expired SSO flows and
//! stale rate-limit counters. Every node runs the loop; a lease in the database lets one node at a time do a pass.
use super::{new_id, now_ms, ServiceResult};
use crate::repo;
use crate::state::{AppState, Db};
use std::time::Duration;

/// Rate-limit counters older than this are gone (the longest window is one hour).
const RATE_LIMIT_KEEP_MS: i64 = 2 * 3600 * 1000;

/// Finished webhook deliveries (the delivery log) are kept this long.
const DELIVERY_KEEP_MS: i64 = 30 * 86_400_000;

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
    repo::webhooks::purge(db, now - DELIVERY_KEEP_MS, now - 7 * 86_400_000).await?;
    db.checkpoint_wal().await;
    Ok(Some(Purged { sessions, flows, rate_limits }))
}

/// Deletes audit events older than `days` days (run by the housekeeping lease holder only).
pub async fn purge_audit(db: &Db, days: i64) -> ServiceResult<u64> {
    Ok(repo::audit::purge(db, now_ms() - days * 86_400_000).await?)
}

/// How far behind a background job is: what is due now, and how long the oldest due item has waited.
pub struct JobLag {
    pub job: &'static str,
    pub due: i64,
    pub seconds: f64,
}

/// The lag of every background job, for `/metrics` (read from the database, so any node reports the cluster's).
pub async fn job_lag(state: &AppState) -> ServiceResult<Vec<JobLag>> {
    let now = now_ms();
    let (due, oldest) = repo::domains::due_summary(&state.db, now).await?;
    let seconds = oldest.map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0);
    let (hooks_due, hooks_oldest) = repo::webhooks::due_summary(&state.db, now).await?;
    let hooks_seconds = hooks_oldest.map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0);
    Ok(vec![JobLag { job: "domain_checks", due, seconds }, JobLag { job: "webhook_deliveries", due: hooks_due, seconds: hooks_seconds }])
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
            let started = std::time::Instant::now();
            let pass = run_once(&state.db, &holder, lease_ms).await;
            super::metrics::job_pass("housekeeping", pass.is_ok(), started.elapsed().as_secs_f64());
            match pass {
                Ok(Some(p)) => {
                    if p != Purged::default() {
                        tracing::info!(sessions = p.sessions, flows = p.flows, rate_limits = p.rate_limits, "housekeeping purged");
                    }
                    // The lease holder also purges audit events past the retention, and keeps SAML metadata and
                    // certificate warnings current.
                    match purge_audit(&state.db, state.settings.audit_retention_days).await {
                        Ok(n) if n > 0 => tracing::info!(events = n, days = state.settings.audit_retention_days, "audit events past retention purged"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "audit purge failed"),
                    }
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
