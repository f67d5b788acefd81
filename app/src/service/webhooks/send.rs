//! Delivering webhook messages. Every node runs `spawn_worker`; a delivery is sent by the node whose conditional
//! update claimed it (the row is the lock), on a task of its own with a 10-second timeout, so a slow or hanging
//! endpoint holds neither a request nor a sign-in, and at most `CONCURRENCY` sends run per node.
//!
//! Standard Webhooks: headers `webhook-id` (the delivery id, the same on every attempt), `webhook-timestamp`
//! (Unix seconds of this attempt) and `webhook-signature` (`v1,` + base64 HMAC-SHA256 over `id.timestamp.body`
//! with the base64-decoded secret after `whsec_`; during a rotation's grace period a second signature with the
//! previous secret follows after one space). Any 2xx is delivered; anything else (including a redirect, a
//! timeout, a refused connection) is retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h (27 h in all),
//! then the delivery is `failed`.
use super::super::error::ServiceResult;
use super::super::now_ms;
use super::super::error::ServiceError;
use super::super::safe_http::FetchError;
use crate::repo::{self, webhooks::Attempt, webhooks::DeliveryRow};
use crate::state::AppState;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};

/// Waits before the 2nd, 3rd, … attempt, in retry units (one unit is a second by default).
pub const SCHEDULE: &[i64] = &[5, 300, 1800, 7200, 18000, 36000, 36000];
/// Sends in flight per node.
const CONCURRENCY: usize = 8;
/// How long a claim lasts: longer than a send can take (10 s timeout), so no other node sends the same attempt.
const CLAIM_MS: i64 = 60_000;

/// `v1,<base64 HMAC-SHA256>` of `id.timestamp.body` under a `whsec_…` secret.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = base64::engine::general_purpose::STANDARD.decode(secret.strip_prefix(super::SECRET_PREFIX)?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Some(format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())))
}

/// What happens after a failed attempt number `attempts` (1-based): the next try at, or `None` to give up.
pub fn next_try(attempts: i64, now: i64, unit_ms: i64) -> Option<i64> {
    let wait = *SCHEDULE.get(usize::try_from(attempts - 1).ok()?)?;
    Some(now + wait * unit_ms)
}

/// One pass: claims what is due and starts sending it. Returns how many this node claimed.
pub async fn run_due(state: &AppState, permits: &Arc<Semaphore>, done: &Arc<Notify>) -> ServiceResult<usize> {
    let now = now_ms();
    let free = permits.available_permits();
    if free == 0 {
        return Ok(0);
    }
    let ids = repo::webhooks::due(&state.db, now, free as i64).await?;
    let mut claimed = 0;
    for id in ids {
        let Ok(permit) = permits.clone().try_acquire_owned() else { break };
        let claim = now + CLAIM_MS;
        if !repo::webhooks::claim(&state.db, &id, now, claim).await? {
            continue;
        }
        claimed += 1;
        let (state, done) = (state.clone(), done.clone());
        tokio::spawn(async move {
            if let Err(e) = deliver(&state, &id, claim).await {
                tracing::warn!(delivery = %id, error = %e, "webhook delivery could not be recorded");
            }
            drop(permit);
            // The endpoint's next message (one is in flight per endpoint) goes now, not at the next tick.
            done.notify_one();
        });
    }
    Ok(claimed)
}

/// One attempt of a claimed delivery, and its record. Whatever goes wrong is recorded as the attempt's outcome, so
/// every attempt counts towards the schedule.
async fn deliver(state: &AppState, id: &str, claim: i64) -> ServiceResult<()> {
    let Some(d) = repo::webhooks::delivery(&state.db, id).await? else { return Ok(()) };
    let now = now_ms();
    let attempts = d.attempts + 1;
    let outcome = attempt(state, &d, now).await;
    let at = now_ms();
    let (status, code, error, next) = match &outcome {
        Ok(code) => ("delivered", Some(i64::from(*code)), None, at),
        Err((code, e)) => match next_try(attempts, at, state.settings.webhook_retry_unit_ms) {
            Some(next) => ("pending", code.map(i64::from), Some(e.as_str()), next),
            None => ("failed", code.map(i64::from), Some(e.as_str()), at),
        },
    };
    super::super::metrics::webhook_attempt(status);
    let a = Attempt { status, attempts, next_attempt_at: next, last_status: code, last_error: error, at };
    repo::webhooks::record_attempt(&state.db, id, claim, &a).await?;
    Ok(())
}

/// Signs and sends one attempt: Ok(status) when a 2xx came back; Err((status if any, what went wrong)). The error
/// shown to the owner says no more than "unreachable" about the network, so the log is no scanner of the inside.
async fn attempt(state: &AppState, d: &DeliveryRow, now: i64) -> Result<u16, (Option<u16>, String)> {
    let w = match repo::webhooks::by_id(&state.db, &d.webhook_id).await {
        Ok(Some(w)) => w,
        Ok(None) => return Err((None, "the webhook was deleted".into())),
        Err(e) => return Err((None, format!("database unavailable: {}", ServiceError::from(e).code()))),
    };
    let timestamp = now / 1000;
    let secrets = super::secrets(state, &w, now).map_err(|_| (None, "the signing secret could not be opened (was the key file changed?)".to_string()))?;
    let signatures: Vec<String> = secrets.iter().filter_map(|s| sign(s, &d.id, timestamp, &d.payload)).collect();
    if signatures.is_empty() {
        return Err((None, "no usable signing secret: rotate the secret".into()));
    }
    let headers = [
        ("content-type", "application/json".to_string()),
        ("webhook-id", d.id.clone()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signatures.join(" ")),
    ];
    match state.sso.webhook_http.post(&w.url, &headers, d.payload.clone()).await {
        Ok(code) if (200..300).contains(&code) => Ok(code),
        Ok(code) => Err((Some(code), format!("the endpoint answered HTTP {code}"))),
        Err(FetchError::Blocked(_)) => Err((None, "refused: the host resolves to a non-public address".into())),
        Err(FetchError::Tls(..)) => Err((None, "TLS handshake failed (is the certificate valid for this host?)".into())),
        Err(_) => Err((None, "unreachable: no connection, no DNS answer, or no answer within 10 s".into())),
    }
}

/// Starts the sender on this node: a pass every retry unit (at most every second, at least every 20 ms), and
/// another as soon as a send finishes.
pub fn spawn_worker(state: AppState) {
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let done = Arc::new(Notify::new());
    tokio::spawn(async move {
        let period = Duration::from_millis(state.settings.webhook_retry_unit_ms.clamp(20, 1000) as u64);
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = done.notified() => {}
            }
            if let Err(e) = run_due(&state, &permits, &done).await {
                tracing::warn!(error = %e, "webhook pass failed");
            }
        }
    });
}
