//! Fixed-window rate-limit counters in the database, so every node sees the same count.
use super::Any;
use sqlx::{Executor, Row};

/// Counts one hit for each `(key, window_ms)` in one statement (one write instead of one per key) and returns, in
/// the order given, (hits in that key's current window, window start). The keys must differ.
pub async fn hit_all<'e>(ex: impl Executor<'e, Database = Any>, keys: &[(&str, i64)], now: i64) -> sqlx::Result<Vec<(i64, i64)>> {
    let sql = format!("{} RETURNING key, hits, window_start", upsert(keys.len()));
    let rows = bind_keys(sqlx::query(&sql), keys, now).fetch_all(ex).await?;
    keys.iter()
        .map(|(key, _)| {
            let row = rows.iter().find(|r| r.try_get::<String, _>(0).is_ok_and(|k| k == *key)).ok_or(sqlx::Error::RowNotFound)?;
            Ok((row.try_get(1)?, row.try_get(2)?))
        })
        .collect()
}

/// `hit_all` without reading the counts back: a write that can go into a batch (a sign-in's success counts its
/// attempt in the session's transaction).
pub async fn count<'e>(ex: impl Executor<'e, Database = Any>, keys: &[(&str, i64)], now: i64) -> sqlx::Result<()> {
    let sql = upsert(keys.len());
    bind_keys(sqlx::query(&sql), keys, now).execute(ex).await.map(|_| ())
}

/// One hit for each of `n` keys. $1 is now; key i is $(2i+2), its window $(2i+3). A key's window is picked by key
/// in the update.
fn upsert(n: usize) -> String {
    let values: Vec<String> = (0..n).map(|i| format!("(${}, $1, 1)", 2 * i + 2)).collect();
    let windows: String = (0..n).map(|i| format!(" WHEN ${} THEN ${}", 2 * i + 2, 2 * i + 3)).collect();
    let expired = format!("rate_limits.window_start <= $1 - (CASE rate_limits.key{windows} END)");
    format!(
        "INSERT INTO rate_limits (key, window_start, hits) VALUES {} \
         ON CONFLICT (key) DO UPDATE SET \
           hits = CASE WHEN {expired} THEN 1 ELSE rate_limits.hits + 1 END, \
           window_start = CASE WHEN {expired} THEN $1 ELSE rate_limits.window_start END",
        values.join(", ")
    )
}

/// Binds `upsert`'s parameters. In key order: two requests that count overlapping keys lock their rows in the same
/// order (PostgreSQL), so they cannot deadlock.
fn bind_keys<'q>(q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>, keys: &[(&'q str, i64)], now: i64) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    let mut sorted: Vec<&(&str, i64)> = keys.iter().collect();
    sorted.sort_by_key(|(key, _)| *key);
    let mut q = q.bind(now);
    for (key, window_ms) in sorted {
        q = q.bind(*key).bind(*window_ms);
    }
    q
}

/// An SQL condition (the arguments are parameters such as `$4`): the counter `key` holds fewer than `max` hits in
/// its window of `window` ms ending at `now` (a counter whose window ended counts as none, as `hit_all` resets it).
pub fn under(key: &str, max: &str, window: &str, now: &str) -> String {
    format!("COALESCE((SELECT r.hits FROM rate_limits r WHERE r.key = {key} AND r.window_start > {now} - {window}), 0) < {max}")
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
