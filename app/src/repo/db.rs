//! The database handle every query goes through: sqlx's pool, plus the connections this node keeps between uses.
//!
//! Why: sqlx-core 0.8.6 pings every connection it takes back into its pool (`pool/connection.rs`, from a task it
//! spawns on drop; no setting turns it off). On SQLite that ping is a round trip to the connection's worker
//! thread, on PostgreSQL a network round trip: each statement run on the pool cost two. Profiled, thread
//! switches were the largest CPU cost of a session check. So a connection whose last use succeeded goes back
//! into `kept` instead, and the next use takes it from there without a ping. One that failed, or whose future
//! was dropped mid-statement, goes back through sqlx's own release (ping, closed when broken), as before.
//!
//! Every way to a connection goes through `take`, which prefers a kept connection and otherwise waits on sqlx's
//! pool. While anyone waits there, no connection is kept: each goes back through sqlx, whose queue serves
//! waiters in order. (Checked and changed under one lock, so a connection is never parked while a waiter is
//! stuck behind sqlx's acquire timeout.)
//!
//! On SQLite, a statement of `&Db` and a batch first try the connection of `inline.rs`, on the calling thread;
//! what cannot run there goes to the pool as described above.
use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream};
use futures_util::TryStreamExt;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Database, Describe, Either, Error, Execute, Executor, Transaction};
use std::sync::{Arc, Mutex};

/// The pool handle in `AppState`. `&Db` is an sqlx executor; it derefs to the sqlx pool for everything else.
#[derive(Clone)]
pub struct Db(Arc<Inner>);

struct Inner {
    pool: AnyPool,
    sqlite: bool,
    /// Off only for measuring the difference (`LATCHKEY_BENCH_NO_KEEP=1`): every connection goes back to sqlx.
    keeping: bool,
    /// Off only for measuring the difference (`LATCHKEY_BENCH_NO_SCRIPT=1`): a batch runs statement by statement
    /// on SQLite too.
    scripts: bool,
    kept: Mutex<Kept>,
    /// SQLite on disk: the connection statements run on without a thread hop (`inline.rs`). Off only for
    /// measuring the difference (`LATCHKEY_BENCH_NO_INLINE=1`).
    inline: Option<super::inline::Inline>,
    /// PostgreSQL: a write chain as one statement. Off only for measuring the difference
    /// (`LATCHKEY_BENCH_NO_CHAIN_STATEMENT=1`): one statement per write.
    chain_statement: bool,
}

#[derive(Default)]
struct Kept {
    conns: Vec<PoolConnection<Any>>,
    /// Tasks waiting on sqlx's pool right now.
    waiting: usize,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Db(sqlite={}, kept={})", self.0.sqlite, self.kept_count())
    }
}

impl std::ops::Deref for Db {
    type Target = AnyPool;
    fn deref(&self) -> &AnyPool {
        &self.0.pool
    }
}

impl Db {
    pub fn new(pool: AnyPool) -> Self {
        let sqlite = pool.connect_options().database_url.scheme() == "sqlite";
        let keeping = std::env::var_os("LATCHKEY_BENCH_NO_KEEP").is_none();
        let scripts = std::env::var_os("LATCHKEY_BENCH_NO_SCRIPT").is_none();
        let inline = if sqlite && std::env::var_os("LATCHKEY_BENCH_NO_INLINE").is_none() {
            super::inline::Inline::open(pool.connect_options().database_url.as_str())
        } else {
            None
        };
        let chain_statement = std::env::var_os("LATCHKEY_BENCH_NO_CHAIN_STATEMENT").is_none();
        Db(Arc::new(Inner { pool, sqlite, keeping, scripts, kept: Mutex::new(Kept::default()), inline, chain_statement }))
    }

    /// Statements and batches the inline SQLite connections answered so far (`None`: there are none).
    pub fn inline_served(&self) -> Option<u64> {
        self.0.inline.as_ref().map(|i| i.served())
    }

    /// A WAL checkpoint now, on a blocking thread: every 200 inline commits, and at each housekeeping pass (a node
    /// that went quiet would otherwise keep its WAL until the next burst). Passive, and RESTART when the WAL has
    /// grown large, so that it starts over (see `inline`).
    pub async fn checkpoint_wal(&self) {
        if self.0.inline.is_some() {
            let db = self.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || db.checkpoint_here()).await {
                tracing::warn!("SQLite checkpoint: {e}");
            }
        }
    }

    /// `checkpoint_wal` on the calling thread, which it blocks.
    fn checkpoint_here(&self) {
        if let Some(Err(e)) = self.0.inline.as_ref().map(|i| i.checkpoint_now()) {
            tracing::warn!("SQLite checkpoint: {e}");
        }
    }

    /// `checkpoint_wal` in the background, for the inline connection (which does not checkpoint itself);
    /// `running` is cleared when it is done, so one runs at a time.
    fn checkpoint(&self, running: Arc<std::sync::atomic::AtomicBool>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            running.store(false, std::sync::atomic::Ordering::Release);
            return;
        };
        /// Clears the flag however the task ends (also when it is dropped before it ran).
        struct Done(Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Done {
            fn drop(&mut self) {
                self.0.store(false, std::sync::atomic::Ordering::Release);
            }
        }
        let done = Done(running);
        let db = self.clone();
        rt.spawn_blocking(move || {
            let _done = done;
            db.checkpoint_here();
        });
    }

    /// Runs one statement and collects what it returns: on the inline connection when there is one and the
    /// statement can run there, otherwise on a pooled connection.
    async fn run<'q>(&self, mut query: impl Execute<'q, Any> + 'q) -> sqlx::Result<Vec<Item>> {
        if let Some(inline) = &self.0.inline {
            let sql = query.sql();
            let args = query.take_arguments().map_err(Error::Encode)?.unwrap_or_default();
            return match inline.run(sql, &args, |r| self.checkpoint(r)) {
                Ok(done) => done,
                Err(super::inline::Elsewhere) => self.pooled(sqlx::query_with(sql, args)).await,
            };
        }
        self.pooled(query).await
    }

    async fn pooled<'q>(&self, query: impl Execute<'q, Any> + 'q) -> sqlx::Result<Vec<Item>> {
        let mut c = self.take().await?;
        let all = (&mut *c).fetch_many(query).try_collect::<Vec<Item>>().await;
        self.settle(c, all)
    }

    /// How a write transaction starts: on SQLite with the write lock at once (`BEGIN IMMEDIATE`); `None`: the
    /// driver's own `BEGIN`.
    fn begin_statement(&self) -> Option<std::borrow::Cow<'static, str>> {
        self.0.sqlite.then_some("BEGIN IMMEDIATE".into())
    }

    /// Connections parked here right now (for tests and the debug view).
    pub fn kept_count(&self) -> usize {
        self.0.kept.lock().map(|k| k.conns.len()).unwrap_or(0)
    }

    /// Hands every kept connection back to sqlx.
    fn drain(&self) {
        let kept: Vec<_> = self.0.kept.lock().map(|mut k| k.conns.drain(..).collect()).unwrap_or_default();
        drop(kept);
    }

    async fn take(&self) -> sqlx::Result<PoolConnection<Any>> {
        {
            let Ok(mut kept) = self.0.kept.lock() else { return self.0.pool.acquire().await };
            if let Some(c) = kept.conns.pop() {
                return Ok(c);
            }
            kept.waiting += 1;
        }
        // Counted as waiting until the acquire ends (or this future is dropped): meanwhile `keep` hands
        // connections to sqlx, whose queue serves waiters in order.
        struct Waiting<'a>(&'a Db);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                if let Ok(mut kept) = self.0 .0.kept.lock() {
                    kept.waiting -= 1;
                }
            }
        }
        let _waiting = Waiting(self);
        self.0.pool.acquire().await
    }

    /// A connection whose last use succeeded: kept for the next use (no ping), unless someone is waiting on
    /// sqlx's pool, who gets it through sqlx's release.
    fn keep(&self, c: PoolConnection<Any>) {
        if !self.0.keeping {
            return;
        }
        if let Ok(mut kept) = self.0.kept.lock() {
            if kept.waiting == 0 {
                kept.conns.push(c);
            }
        }
    }

    /// After a statement: a connection that served it is kept. One that failed goes back through sqlx (its ping
    /// closes it when broken); when the failure says the connection or the server is gone (PostgreSQL restarted),
    /// every kept connection goes that way too, so none of them fails a later request.
    fn settle<T>(&self, c: PoolConnection<Any>, r: sqlx::Result<T>) -> sqlx::Result<T> {
        match r {
            Ok(v) => {
                self.keep(c);
                Ok(v)
            }
            Err(e) => {
                drop(c);
                if matches!(e, Error::Io(_) | Error::Tls(_) | Error::Protocol(_) | Error::WorkerCrashed | Error::PoolTimedOut | Error::PoolClosed) {
                    self.drain();
                }
                Err(e)
            }
        }
    }

    /// One connection for several statements. `release()` it after the last one succeeded; dropped instead (an
    /// error, a cancelled request), it goes back through sqlx's checked release.
    pub async fn acquire(&self) -> sqlx::Result<Conn<'_>> {
        Ok(Conn { db: self, conn: self.take().await? })
    }

    /// A write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`): a deferred transaction
    /// that reads first cannot wait for the lock when it later writes, and fails under concurrency. After commit
    /// or rollback its connection goes back through sqlx's release.
    pub async fn begin(&self) -> sqlx::Result<Transaction<'static, Any>> {
        let c = self.take().await?;
        Transaction::begin(c, self.begin_statement()).await
    }

    /// Commits the statements of `batch` as one write transaction (see `repo::batch`), in a task of its own: a
    /// request dropped meanwhile neither leaves a connection inside the transaction nor changes the outcome (on
    /// both databases a batch that started runs to its end). On SQLite a failed script is rolled back; a
    /// connection that cannot roll back, or whose script ended without every statement's result (its worker
    /// thread died), is closed, never reused.
    pub async fn write_all(&self, batch: super::batch::Batch) -> sqlx::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        if let Some(inline) = &self.0.inline {
            if inline.run_all(&batch.stmts, |r| self.checkpoint(r)).is_ok() {
                return Ok(());
            }
        }
        let db = self.clone();
        let run = tokio::spawn(async move {
            if !(db.0.sqlite && db.0.scripts) {
                let mut c = db.acquire().await?;
                let mut tx = c.begin().await?;
                for (sql, args) in batch.stmts {
                    sqlx::query_with(&sql, args).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                c.release();
                return Ok(());
            }
            let expected = batch.len() + 2;
            let (sql, args) = batch.into_script();
            let mut c = Closing(Some(db.take().await?));
            let conn = c.conn()?;
            // Several statements with arguments in one query: sqlx-sqlite 0.8 runs them in order (sqlx marks
            // this deprecated for its next major version, issue 3108; the batch test fails if it stops working,
            // and LATCHKEY_BENCH_NO_SCRIPT is the statement-by-statement way).
            let results = sqlx::Executor::fetch_many(&mut **conn, sqlx::query_with(&sql, args)).try_collect::<Vec<_>>().await;
            let result = match results {
                // BEGIN, each statement and COMMIT each report a result: fewer means the script stopped short.
                Ok(items) if items.iter().filter(|i| i.is_left()).count() == expected => Ok(()),
                Ok(_) => return Err(Error::Protocol("the SQLite script ended before its COMMIT".into())),
                Err(e) => Err(e),
            };
            if result.is_err() {
                match sqlx::Executor::execute(&mut **conn, "ROLLBACK").await {
                    // Rolled back, or the script failed before its BEGIN took effect.
                    Ok(_) => {}
                    Err(e) if e.to_string().contains("no transaction is active") => {}
                    Err(_) => return result,
                }
            }
            db.settle(c.keep()?, result)
        });
        run.await.map_err(|e| Error::Protocol(format!("batch task: {e}")))?
    }

    /// Writes of `batch` in order, each only when the one before changed a row (an insert that found its row
    /// already there stops the rest); returns the rows each changed (0 for those not run). On SQLite's inline
    /// connection they commit together, and on PostgreSQL they are one statement (`Batch::chain_statement`: a
    /// later write does not see an earlier one's rows). Otherwise (SQLite while the pool holds the write lock, or
    /// a statement that cannot be rewritten) each commits on its own, so a caller must accept that the first ones
    /// stay when a later one fails.
    pub async fn write_chain(&self, batch: super::batch::Batch) -> sqlx::Result<Vec<u64>> {
        if let Some(inline) = &self.0.inline {
            if let Ok(changed) = inline.run_chain(&batch.stmts, |r| self.checkpoint(r)) {
                return Ok(changed);
            }
        }
        if !self.0.sqlite && self.0.chain_statement && batch.len() > 1 {
            if let Some(sql) = batch.chain_statement() {
                use sqlx::Row;
                let n = batch.len();
                let row = sqlx::query_with(&sql, batch.into_arguments()).fetch_one(self).await?;
                return (0..n).map(|i| row.try_get::<i64, _>(i).map(|n| n as u64)).collect();
            }
        }
        let mut changed = vec![0; batch.len()];
        for ((sql, args), n) in batch.stmts.into_iter().zip(changed.iter_mut()) {
            *n = self.run(sqlx::query_with(&sql, args)).await?.iter().filter_map(|i| i.as_ref().left()).map(|r| r.rows_affected()).sum();
            if *n == 0 {
                break;
            }
        }
        Ok(changed)
    }

    /// Closes the pool, kept connections included.
    pub async fn close(&self) {
        if let Some(inline) = &self.0.inline {
            inline.close();
        }
        self.drain();
        self.0.pool.close().await;
    }
}

/// A connection that is closed, not returned to the pool, unless it is taken out (a SQLite script's connection
/// until its outcome is known: sqlx's release cannot see a transaction the script opened).
struct Closing(Option<PoolConnection<Any>>);

impl Closing {
    fn conn(&mut self) -> sqlx::Result<&mut PoolConnection<Any>> {
        self.0.as_mut().ok_or(Error::PoolClosed)
    }

    /// The outcome is known: the connection goes on to `settle` instead of being closed.
    fn keep(mut self) -> sqlx::Result<PoolConnection<Any>> {
        self.0.take().ok_or(Error::PoolClosed)
    }
}

impl Drop for Closing {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            c.close_on_drop();
        }
    }
}

/// A connection taken from [`Db::acquire`]; derefs to the sqlx connection (`&mut *conn` is an executor).
pub struct Conn<'a> {
    db: &'a Db,
    conn: PoolConnection<Any>,
}

impl Conn<'_> {
    /// A write transaction on this connection (`BEGIN IMMEDIATE` on SQLite); after its commit, `release()` keeps
    /// the connection, which a transaction from [`Db::begin`] cannot.
    pub async fn begin(&mut self) -> sqlx::Result<Transaction<'_, Any>> {
        Transaction::begin(&mut *self.conn as &mut AnyConnection, self.db.begin_statement()).await
    }

    /// Its statements succeeded: keep it for the next use.
    pub fn release(self) {
        self.db.keep(self.conn);
    }
}

impl std::ops::Deref for Conn<'_> {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

type Item = Either<<Any as Database>::QueryResult, <Any as Database>::Row>;

impl<'c> Executor<'c> for &'c Db {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Item, Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        // Read to the end before the connection is kept: every caller here collects anyway (execute, fetch_all).
        Box::pin(stream::once(async move { Ok::<_, Error>(stream::iter(self.run(query).await?.into_iter().map(Ok))) }).try_flatten())
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<<Any as Database>::Row>, Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        Box::pin(async move {
            if self.0.inline.is_some() {
                return Ok(self.run(query).await?.into_iter().find_map(Either::right));
            }
            let mut c = self.take().await?;
            let row = (&mut *c).fetch_optional(query).await;
            self.settle(c, row)
        })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [<Any as Database>::TypeInfo],
    ) -> BoxFuture<'e, Result<<Any as Database>::Statement<'q>, Error>>
    where
        'c: 'e,
    {
        Box::pin(async move {
            let mut c = self.take().await?;
            let s = (&mut *c).prepare_with(sql, parameters).await;
            self.settle(c, s)
        })
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, Result<Describe<Any>, Error>>
    where
        'c: 'e,
    {
        Box::pin(async move {
            let mut c = self.take().await?;
            let d = (&mut *c).describe(sql).await;
            self.settle(c, d)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Db;
    use std::time::Duration;

    async fn db(max: u32) -> Db {
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(2))
            .connect("sqlite::memory:")
            .await
            .unwrap();
        Db::new(pool)
    }

    #[tokio::test]
    async fn a_statement_that_succeeds_keeps_its_connection_and_one_that_fails_does_not() {
        let db = db(4).await;
        for _ in 0..5 {
            let one: i64 = sqlx::query_scalar("SELECT 1").fetch_one(&db).await.unwrap();
            assert_eq!(one, 1);
        }
        assert_eq!(db.kept_count(), 1, "one connection serves one statement after another");
        assert_eq!(db.size(), 1, "and no other was opened");
        assert!(sqlx::query("SELEC nonsense").execute(&db).await.is_err());
        assert_eq!(db.kept_count(), 0, "a connection whose statement failed goes back through sqlx");
        let conn = db.acquire().await.unwrap();
        drop(conn);
        assert_eq!(db.kept_count(), 0, "a Conn dropped without release() is not kept");
        let conn = db.acquire().await.unwrap();
        conn.release();
        assert_eq!(db.kept_count(), 1);
    }

    /// A batch commits all of its statements or none: a statement that fails in the middle rolls back those
    /// before it, and the connection is not left inside the script's transaction (the next write on the only
    /// connection goes through). A batch cannot read.
    #[tokio::test]
    async fn a_batch_commits_all_or_nothing_and_leaves_no_transaction_open() {
        use super::super::batch::Batch;
        let db = db(1).await;
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)").execute(&db).await.unwrap();
        async fn insert(b: &mut Batch, id: i64, v: Option<&str>) -> sqlx::Result<()> {
            sqlx::query("INSERT INTO t (id, v) VALUES ($1, $2)").bind(id).bind(v).execute(b).await.map(|_| ())
        }
        let mut ok = Batch::default();
        insert(&mut ok, 1, Some("one")).await.unwrap();
        insert(&mut ok, 2, Some("it's $2")).await.unwrap();
        assert_eq!(ok.len(), 2);
        db.write_all(ok).await.unwrap();
        let rows: Vec<(i64, String)> = sqlx::query_as("SELECT id, v FROM t ORDER BY id").fetch_all(&db).await.unwrap();
        assert_eq!(rows, vec![(1, "one".to_string()), (2, "it's $2".to_string())]);

        let mut bad = Batch::default();
        insert(&mut bad, 3, Some("three")).await.unwrap();
        insert(&mut bad, 4, None).await.unwrap(); // NOT NULL: fails after 3 was inserted
        insert(&mut bad, 5, Some("five")).await.unwrap();
        assert!(db.write_all(bad).await.is_err());
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(&db).await.unwrap();
        assert_eq!(n, 2, "nothing of the failed batch stays");
        sqlx::query("INSERT INTO t (id, v) VALUES (6, 'six')").execute(&db).await.unwrap();
        let mut again = Batch::default();
        insert(&mut again, 7, Some("seven")).await.unwrap();
        db.write_all(again).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(&db).await.unwrap();
        assert_eq!(n, 4);

        let mut reading = Batch::default();
        assert!(sqlx::query_scalar::<_, i64>("SELECT 1").fetch_one(&mut reading).await.is_err(), "a batch does not read");
        assert!(sqlx::query("SELECT 1").fetch_all(&mut reading).await.is_err(), "not even through fetch_all");
        assert!(sqlx::query("DELETE FROM t RETURNING id").execute(&mut reading).await.is_err(), "nor RETURNING");
        assert!(sqlx::query("DELETE FROM t WHERE id = $1").execute(&mut reading).await.is_err(), "$1 without its argument");
        assert!(reading.is_empty());
    }

    /// One connection in all, many tasks: a connection parked in `kept` must reach a task already waiting on
    /// sqlx's pool, or that task would time out (acquire timeout 2 s).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_kept_connection_reaches_a_task_waiting_on_the_pool() {
        let db = db(1).await;
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..16 {
            let db = db.clone();
            tasks.spawn(async move {
                for j in 0..25 {
                    match (i + j) % 3 {
                        0 => {
                            sqlx::query("SELECT 1").execute(&db).await?;
                        }
                        1 => {
                            let mut c = db.acquire().await?;
                            sqlx::query("SELECT 2").execute(&mut *c).await?;
                            c.release();
                        }
                        _ => {
                            let mut tx = db.begin().await?;
                            sqlx::query("SELECT 3").execute(&mut *tx).await?;
                            tx.commit().await?;
                        }
                    }
                }
                Ok::<_, sqlx::Error>(())
            });
        }
        let all = tokio::time::timeout(Duration::from_secs(20), async {
            let mut n = 0;
            while let Some(r) = tasks.join_next().await {
                r.unwrap().unwrap();
                n += 1;
            }
            n
        })
        .await
        .expect("no task waits for a connection that sits unused");
        assert_eq!(all, 16);
        assert!(db.size() <= 1);
    }
}
