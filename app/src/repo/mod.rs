//! Repositories: the only modules that write SQL, one per aggregate. Every query runs unchanged on SQLite and
//! PostgreSQL through sqlx's `Any` driver (`$n` placeholders, BIGINT millisecond times, TEXT ids).
pub mod api_keys;
pub mod applications;
pub mod audit;
pub mod batch;
pub mod connections;
pub mod db;
pub mod domains;
pub mod flows;
mod inline;
pub mod jwt_keys;
pub mod leases;
pub mod mfa;
pub mod orgs;
pub mod policies;
pub mod providers;
pub mod rate_limits;
pub mod sessions;
pub mod sso_tokens;
pub mod users;
pub mod webhooks;

pub use sqlx::Any;

/// Connects and runs the migrations of the backend the URL names.
pub async fn connect(url: &str) -> Result<crate::state::Db, String> {
    sqlx::any::install_default_drivers();
    let is_sqlite = url.starts_with("sqlite:");
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(if is_sqlite { 8 } else { 16 })
        // While PostgreSQL is unreachable a request fails within about a second (503 with Retry-After) instead
        // of queueing for the default 30 s. SQLite only waits for its own pool under load, so it gets longer.
        .acquire_timeout(std::time::Duration::from_millis(if is_sqlite { 3000 } else { 1000 }))
        // No ping before every use: on SQLite each ping is a round trip to the connection's worker thread, on
        // PostgreSQL a network round trip; profiled, thread switches were the largest CPU cost of a sign-in. A
        // connection that died meanwhile (PostgreSQL restarted) fails its next query, which answers 503 and is
        // closed; the next request gets a fresh one.
        .test_before_acquire(false)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if is_sqlite {
                    // WAL with synchronous=NORMAL: a commit no longer waits for fsync. After a power cut the file
                    // stays consistent; the last commits before the cut may be lost. (SQLite is the one-node
                    // default; PostgreSQL keeps its own durability settings.)
                    sqlx::Executor::execute(&mut *conn, "PRAGMA journal_mode = WAL").await?;
                    sqlx::Executor::execute(&mut *conn, "PRAGMA synchronous = NORMAL").await?;
                    // The WAL file is cut back by whichever connection starts it over (`repo::inline`).
                    let limit = format!("PRAGMA journal_size_limit = {}", inline::JOURNAL_SIZE_LIMIT);
                    sqlx::Executor::execute(&mut *conn, limit.as_str()).await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await
        .map_err(|e| format!("cannot connect to the database: {e}"))?;
    // The two directories hold the same SQL today; they are separate so that each backend can diverge.
    #[allow(clippy::if_same_then_else)]
    let migrator = if is_sqlite { sqlx::migrate!("../migrations/sqlite") } else { sqlx::migrate!("../migrations/postgres") };
    migrator.run(&pool).await.map_err(|e| format!("database migration failed: {e}"))?;
    Ok(db::Db::new(pool))
}

/// Starts a write transaction (`BEGIN IMMEDIATE` on SQLite: see `Db::begin`).
pub async fn begin(db: &crate::state::Db) -> sqlx::Result<sqlx::Transaction<'static, Any>> {
    db.begin().await
}
