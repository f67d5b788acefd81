//! Fixed-window rate-limit counters in the database, so every node sees the same count.
use super::Any;
use sqlx::Executor;

/// Counts one hit for `key` and returns (hits in the current window, window start).
pub async fn hit<'e>(ex: impl Executor<'e, Database = Any>, key: &str, window_ms: i64, now: i64) -> sqlx::Result<(i64, i64)> {
    sqlx::query_as::<_, (i64, i64)>(
        "INSERT INTO rate_limits (key, window_start, hits) VALUES ($1, $2, 1) \
         ON CONFLICT (key) DO UPDATE SET \
           hits = CASE WHEN rate_limits.window_start <= $2 - $3 THEN 1 ELSE rate_limits.hits + 1 END, \
           window_start = CASE WHEN rate_limits.window_start <= $2 - $3 THEN $2 ELSE rate_limits.window_start END \
         RETURNING hits, window_start",
    )
    .bind(key)
    .bind(now)
    .bind(window_ms)
    .fetch_one(ex)
    .await
}

pub async fn clear<'e>(ex: impl Executor<'e, Database = Any>, key: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM rate_limits WHERE key = $1").bind(key).execute(ex).await.map(|_| ())
}

/// Deletes counters whose window started before `before` (housekeeping): keys typed by anyone never pile up.
pub async fn purge<'e>(ex: impl Executor<'e, Database = Any>, before: i64) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM rate_limits WHERE window_start < $1").bind(before).execute(ex).await.map(|r| r.rows_affected())
}
