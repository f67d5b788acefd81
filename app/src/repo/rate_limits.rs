//! Fixed-window rate-limit counters in the database, so every node sees the same count.
use super::Any;
use sqlx::{Executor, Row};

/// Counts one hit for each `(key, window_ms)` in one statement (one write instead of one per key) and returns, in
/// the order given, (hits in that key's current window, window start). The keys must differ.
pub async fn hit_all<'e>(ex: impl Executor<'e, Database = Any>, keys: &[(&str, i64)], now: i64) -> sqlx::Result<Vec<(i64, i64)>> {
    // $1 is now; key i is $(2i+2), its window $(2i+3). A key's window is picked by key in the update.
    let values: Vec<String> = (0..keys.len()).map(|i| format!("(${}, $1, 1)", 2 * i + 2)).collect();
    let windows: String = (0..keys.len()).map(|i| format!(" WHEN ${} THEN ${}", 2 * i + 2, 2 * i + 3)).collect();
    let expired = format!("rate_limits.window_start <= $1 - (CASE rate_limits.key{windows} END)");
    let sql = format!(
        "INSERT INTO rate_limits (key, window_start, hits) VALUES {} \
         ON CONFLICT (key) DO UPDATE SET \
           hits = CASE WHEN {expired} THEN 1 ELSE rate_limits.hits + 1 END, \
           window_start = CASE WHEN {expired} THEN $1 ELSE rate_limits.window_start END \
         RETURNING key, hits, window_start",
        values.join(", ")
    );
    // Bound in key order: two requests that count overlapping keys lock their rows in the same order
    // (PostgreSQL), so they cannot deadlock.
    let mut sorted: Vec<&(&str, i64)> = keys.iter().collect();
    sorted.sort_by_key(|(key, _)| *key);
    let mut q = sqlx::query(&sql).bind(now);
    for (key, window_ms) in sorted {
        q = q.bind(*key).bind(*window_ms);
    }
    let rows = q.fetch_all(ex).await?;
    keys.iter()
        .map(|(key, _)| {
            let row = rows.iter().find(|r| r.try_get::<String, _>(0).is_ok_and(|k| k == *key)).ok_or(sqlx::Error::RowNotFound)?;
            Ok((row.try_get(1)?, row.try_get(2)?))
        })
        .collect()
}

/// Forgets the counters of `keys` (one statement).
pub async fn clear<'e>(ex: impl Executor<'e, Database = Any>, keys: &[&str]) -> sqlx::Result<()> {
    let list: Vec<String> = (1..=keys.len()).map(|i| format!("${i}")).collect();
    let sql = format!("DELETE FROM rate_limits WHERE key IN ({})", list.join(", "));
    let mut q = sqlx::query(&sql);
    for key in keys {
        q = q.bind(*key);
    }
    q.execute(ex).await.map(|_| ())
}

/// Deletes counters whose window started before `before` (housekeeping): keys typed by anyone never pile up.
pub async fn purge<'e>(ex: impl Executor<'e, Database = Any>, before: i64) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM rate_limits WHERE window_start < $1").bind(before).execute(ex).await.map(|r| r.rows_affected())
}
