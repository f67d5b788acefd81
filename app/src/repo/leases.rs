//! Named leases: one node at a time runs a periodic job (housekeeping) until its lease runs out.
use super::Any;
use sqlx::Executor;

/// Takes the lease `name` for `holder` until `until`, if it is free or expired at `now`. True when taken.
pub async fn claim<'e>(ex: impl Executor<'e, Database = Any>, name: &str, holder: &str, now: i64, until: i64) -> sqlx::Result<bool> {
    let row: Option<String> = sqlx::query_scalar(
        "INSERT INTO leases (name, holder, until_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET holder = $2, until_ms = $3 WHERE leases.until_ms <= $4 \
         RETURNING holder",
    )
    .bind(name)
    .bind(holder)
    .bind(until)
    .bind(now)
    .fetch_optional(ex)
    .await?;
    Ok(row.is_some())
}
