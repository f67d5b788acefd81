//! An org's webhook endpoints and their deliveries (rows any node may claim and send).
use super::Any;
use sqlx::{Executor, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct WebhookRow {
    pub id: String,
    pub org_id: String,
    pub url: String,
    pub description: String,
    /// A JSON array of event types.
    pub event_types: String,
    pub enabled: i64,
    pub secret: Vec<u8>,
    pub previous_secret: Option<Vec<u8>>,
    pub previous_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLS: &str = "id, org_id, url, description, event_types, enabled, secret, previous_secret, previous_until, created_at, updated_at";

pub async fn insert<'e>(ex: impl Executor<'e, Database = Any>, w: &WebhookRow) -> sqlx::Result<()> {
    sqlx::query(&format!("INSERT INTO webhooks ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"))
        .bind(&w.id)
        .bind(&w.org_id)
        .bind(&w.url)
        .bind(&w.description)
        .bind(&w.event_types)
        .bind(w.enabled)
        .bind(&w.secret)
        .bind(&w.previous_secret)
        .bind(w.previous_until)
        .bind(w.created_at)
        .bind(w.updated_at)
        .execute(ex)
        .await
        .map(|_| ())
}

/// Saves every editable field (URL, description, event types, enabled, secrets).
pub async fn update<'e>(ex: impl Executor<'e, Database = Any>, w: &WebhookRow) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE webhooks SET url = $1, description = $2, event_types = $3, enabled = $4, secret = $5, previous_secret = $6, \
         previous_until = $7, updated_at = $8 WHERE id = $9 AND org_id = $10",
    )
    .bind(&w.url)
    .bind(&w.description)
    .bind(&w.event_types)
    .bind(w.enabled)
    .bind(&w.secret)
    .bind(&w.previous_secret)
    .bind(w.previous_until)
    .bind(w.updated_at)
    .bind(&w.id)
    .bind(&w.org_id)
    .execute(ex)
    .await
    .map(|_| ())
}

pub async fn get<'e>(ex: impl Executor<'e, Database = Any>, org_id: &str, id: &str) -> sqlx::Result<Option<WebhookRow>> {
    sqlx::query_as(&format!("SELECT {COLS} FROM webhooks WHERE id = $1 AND org_id = $2")).bind(id).bind(org_id).fetch_optional(ex).await
}

pub async fn by_id<'e>(ex: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<WebhookRow>> {
    sqlx::query_as(&format!("SELECT {COLS} FROM webhooks WHERE id = $1")).bind(id).fetch_optional(ex).await
}

pub async fn list<'e>(ex: impl Executor<'e, Database = Any>, org_id: &str) -> sqlx::Result<Vec<WebhookRow>> {
    sqlx::query_as(&format!("SELECT {COLS} FROM webhooks WHERE org_id = $1 ORDER BY created_at, id")).bind(org_id).fetch_all(ex).await
}

pub async fn count<'e>(ex: impl Executor<'e, Database = Any>, org_id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM webhooks WHERE org_id = $1").bind(org_id).fetch_one(ex).await
}

pub async fn delete<'e>(ex: impl Executor<'e, Database = Any>, org_id: &str, id: &str) -> sqlx::Result<bool> {
    sqlx::query("DELETE FROM webhooks WHERE id = $1 AND org_id = $2").bind(id).bind(org_id).execute(ex).await.map(|r| r.rows_affected() > 0)
}

#[derive(Debug, Clone, FromRow)]
pub struct DeliveryRow {
    pub id: String,
    pub webhook_id: String,
    pub org_id: String,
    pub event_type: String,
    pub payload: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub claimed_until: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<i64>,
    pub created_at: i64,
}

const DCOLS: &str = "id, webhook_id, org_id, event_type, payload, status, attempts, next_attempt_at, claimed_until, last_status, last_error, last_attempt_at, created_at";

/// An endpoint with this many deliveries waiting gets no new ones until some are sent or given up (a dead
/// endpoint, or a flood of failed sign-ins, cannot grow the table without bound).
pub const MAX_PENDING: i64 = 1000;

/// One delivery of `payload` to every enabled endpoint of `org_id` subscribed to `event_type` (matched on the
/// quoted type inside the JSON array). Each delivery's id is `id_prefix` + the endpoint's id. Returns how many.
///
/// The match is `replace(…) <>`, an exact substring test on both databases, not `LIKE $6`: SQLite marks a
/// statement whose LIKE pattern is a parameter for re-preparation whenever that parameter's value changes (its
/// LIKE optimisation), so a sign-in's two event types re-parsed this statement on every call (3% of a sign-in's
/// CPU, profiled). `LIKE` also read `_` in a type name as a wildcard.
pub async fn enqueue<'e>(ex: impl Executor<'e, Database = Any>, org_id: &str, event_type: &str, id_prefix: &str, payload: &str, now: i64) -> sqlx::Result<u64> {
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, webhook_id, org_id, event_type, payload, status, attempts, next_attempt_at, created_at) \
         SELECT $1 || w.id, w.id, w.org_id, $2, $3, 'pending', 0, $4, $4 FROM webhooks w \
         WHERE w.org_id = $5 AND w.enabled = 1 AND replace(w.event_types, $6, '') <> w.event_types \
         AND (SELECT COUNT(*) FROM webhook_deliveries x WHERE x.webhook_id = w.id AND x.status = 'pending') < $7",
    )
    .bind(id_prefix)
    .bind(event_type)
    .bind(payload)
    .bind(now)
    .bind(org_id)
    .bind(format!("\"{event_type}\""))
    .bind(MAX_PENDING)
    .execute(ex)
    .await
    .map(|r| r.rows_affected())
}

/// One delivery to one endpoint (a test event, or a resend), due at once.
pub async fn insert_delivery<'e>(ex: impl Executor<'e, Database = Any>, d: &DeliveryRow) -> sqlx::Result<()> {
    sqlx::query(&format!("INSERT INTO webhook_deliveries ({DCOLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"))
        .bind(&d.id)
        .bind(&d.webhook_id)
        .bind(&d.org_id)
        .bind(&d.event_type)
        .bind(&d.payload)
        .bind(&d.status)
        .bind(d.attempts)
        .bind(d.next_attempt_at)
        .bind(d.claimed_until)
        .bind(d.last_status)
        .bind(&d.last_error)
        .bind(d.last_attempt_at)
        .bind(d.created_at)
        .execute(ex)
        .await
        .map(|_| ())
}

/// A delivery is sendable when it is pending and due, nobody holds it, its endpoint is enabled (a paused
/// endpoint's queue waits), and no other delivery to the same endpoint is in flight (one slow endpoint takes one
/// sending slot, never all of them).
const SENDABLE: &str = "d.status = 'pending' AND d.next_attempt_at <= $1 AND (d.claimed_until IS NULL OR d.claimed_until < $1) \
     AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = d.webhook_id AND w.enabled = 1) \
     AND NOT EXISTS (SELECT 1 FROM webhook_deliveries x WHERE x.webhook_id = d.webhook_id AND x.id <> d.id AND x.claimed_until >= $1)";

/// Ids of sendable deliveries, oldest first.
pub async fn due<'e>(ex: impl Executor<'e, Database = Any>, now: i64, limit: i64) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(&format!("SELECT d.id FROM webhook_deliveries d WHERE {SENDABLE} ORDER BY d.next_attempt_at LIMIT $2"))
    .bind(now)
    .bind(limit)
    .fetch_all(ex)
    .await
}

/// Takes a sendable delivery until `until`: true for exactly one node (the conditional update is the lock).
pub async fn claim<'e>(ex: impl Executor<'e, Database = Any>, id: &str, now: i64, until: i64) -> sqlx::Result<bool> {
    // The row's own conditions are top-level, so PostgreSQL re-checks them on the row another node just updated
    // (two claims of one delivery cannot both succeed). The one-in-flight-per-endpoint rule is best effort.
    sqlx::query(
        "UPDATE webhook_deliveries SET claimed_until = $2 WHERE id = $3 AND status = 'pending' AND next_attempt_at <= $1 \
         AND (claimed_until IS NULL OR claimed_until < $1) \
         AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = webhook_deliveries.webhook_id AND w.enabled = 1) \
         AND NOT EXISTS (SELECT 1 FROM webhook_deliveries x WHERE x.webhook_id = webhook_deliveries.webhook_id AND x.id <> webhook_deliveries.id AND x.claimed_until >= $1)",
    )
    .bind(now)
    .bind(until)
    .bind(id)
    .execute(ex)
    .await
    .map(|r| r.rows_affected() == 1)
}

pub async fn delivery<'e>(ex: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<DeliveryRow>> {
    sqlx::query_as(&format!("SELECT {DCOLS} FROM webhook_deliveries WHERE id = $1")).bind(id).fetch_optional(ex).await
}

/// What one attempt found: the new status (`delivered`, `pending` again with `next_attempt_at`, or `failed`).
pub struct Attempt<'a> {
    pub status: &'a str,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<&'a str>,
    pub at: i64,
}

/// Records the attempt of the node that holds the claim `claim` (a node whose claim lapsed records nothing).
pub async fn record_attempt<'e>(ex: impl Executor<'e, Database = Any>, id: &str, claim: i64, a: &Attempt<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE webhook_deliveries SET status = $1, attempts = $2, next_attempt_at = $3, last_status = $4, last_error = $5, \
         last_attempt_at = $6, claimed_until = NULL WHERE id = $7 AND claimed_until = $8",
    )
    .bind(a.status)
    .bind(a.attempts)
    .bind(a.next_attempt_at)
    .bind(a.last_status)
    .bind(a.last_error)
    .bind(a.at)
    .bind(id)
    .bind(claim)
    .execute(ex)
    .await
    .map(|_| ())
}

/// The newest deliveries of one endpoint, for its log.
pub async fn log<'e>(ex: impl Executor<'e, Database = Any>, webhook_id: &str, limit: i64) -> sqlx::Result<Vec<DeliveryRow>> {
    sqlx::query_as(&format!("SELECT {DCOLS} FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"))
        .bind(webhook_id)
        .bind(limit)
        .fetch_all(ex)
        .await
}

/// How many deliveries are due now, and since when the oldest has been due (for `/metrics`).
pub async fn due_summary<'e>(ex: impl Executor<'e, Database = Any>, now: i64) -> sqlx::Result<(i64, Option<i64>)> {
    sqlx::query_as("SELECT COUNT(*), MIN(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1")
        .bind(now)
        .fetch_one(ex)
        .await
}

/// Removes finished deliveries older than `before`, and pending ones older than `stale` (a paused endpoint's queue
/// does not wait forever) (housekeeping).
pub async fn purge<'e>(ex: impl Executor<'e, Database = Any>, before: i64, stale: i64) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM webhook_deliveries WHERE (status <> 'pending' AND created_at < $1) OR (status = 'pending' AND created_at < $2)")
        .bind(before)
        .bind(stale)
        .execute(ex)
        .await
        .map(|r| r.rows_affected())
}
