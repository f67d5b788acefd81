//! SQLite statements run on the calling thread, on a connection of this module's own.
//!
//! Why: sqlx-sqlite runs every statement on its connection's worker thread and hands the rows back through a
//! channel, so each statement costs two thread switches (and the async worker's wake-up); with eight pooled
//! connections, every commit also empties the page cache of the seven others, which then read their pages
//! again. Profiled, those switches and re-reads were the largest CPU cost of a sign-in on SQLite. Here a
//! statement of `&Db` (see `db.rs`) runs on one connection opened with rusqlite on the same file, on the thread
//! that asks, under a mutex: a statement is microseconds, and nothing waits on I/O but the disk. One connection,
//! not one per async worker: measured, two connections emptied each other's page cache at every commit and their
//! writes collided (the loser went to the pool), which cost more than the brief waits for the one mutex.
//!
//! The rules that keep it equivalent to sqlx:
//! - A statement never holds the connection longer than `BUDGET_MICROS`: SQLite's progress handler interrupts it,
//!   which rolls it back, and it runs on the pool instead (a purge of many rows, a large export).
//! - No statement here ever waits for SQLite's write lock (`busy_timeout` 0; only the checkpointer does, on a
//!   blocking thread). A statement that finds the database locked (a transaction on sqlx's pool, another
//!   process, a checkpoint) is handed to sqlx, which waits on its own thread.
//!   SQLite rolls back a statement that failed, so the same holds for every other failure: sqlx runs it again
//!   and answers with its own error, exactly as before. A write runs inside its own `BEGIN IMMEDIATE` … `COMMIT`
//!   and the commit is never interrupted, so a write handed over was never committed here (SQLite can report an
//!   interrupt after an autocommit statement committed). `OR FAIL` (after which SQLite keeps a failed statement's
//!   earlier changes) never runs here; no table or trigger of the schema declares FAIL.
//! - Values come back as sqlx-sqlite maps them for the `Any` driver: by the value's storage class (INTEGER as
//!   BIGINT, REAL as DOUBLE, TEXT, BLOB, NULL), and `$N` binds the N-th argument.
//! - The connection is always left outside a transaction; a batch is `BEGIN IMMEDIATE` … `COMMIT` or rolled back.
//! - Its automatic checkpoints are off: a checkpoint syncs the disk, which must not happen on an async worker.
//!   Every `CHECKPOINT_EVERY` commits, a passive checkpoint runs on a blocking thread instead
//!   (`Db::checkpoint_wal`), on a connection of its own. SQLite starts the WAL over only when a write finds every
//!   frame copied back, which a passive checkpoint beside a steady stream of writes here never leaves it: the WAL
//!   grew by 100 KB per sign-in (to 100 MB in a 1,000-sign-in benchmark, never cut back). So once the WAL holds
//!   `RESTART_FRAMES`, the checkpoint is followed by a RESTART one: it waits up to `CHECKPOINT_WAIT` for the write
//!   lock and for readers of the WAL, then holds the write lock while it copies the last frames back and syncs the
//!   disk (writes here meanwhile find the database locked and run on the pool, which waits), so that the next
//!   write starts the WAL over; the checkpointer makes that write itself, so that the sync of the new WAL header
//!   is not an inline commit's. Not on every checkpoint: measured, holding the write lock through the syncs every
//!   200 commits stalled writers more than the shorter WAL saved. The WAL file is cut back to
//!   `JOURNAL_SIZE_LIMIT` when it starts over.
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags};
use sqlx::any::{AnyArguments, AnyQueryResult, AnyRow};
use sqlx::{Any, Database, Either};
use sqlx_core::any::{AnyColumn, AnyTypeInfo, AnyTypeInfoKind, AnyValue, AnyValueKind};
use sqlx_core::ext::ustr::UStr;
use std::borrow::Cow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub(super) type Item = Either<<Any as Database>::QueryResult, <Any as Database>::Row>;

/// Commits between two checkpoints (at a few pages per commit, about SQLite's default of 1,000 pages).
const CHECKPOINT_EVERY: u64 = 200;

/// WAL frames (of 4 KiB pages: 16 MiB) from which a checkpoint also makes the WAL start over.
const RESTART_FRAMES: i64 = 4096;

/// How long after a RESTART checkpoint gave up the next one is tried.
const RESTART_BACKOFF: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a checkpoint waits for the write lock and for readers of the WAL: while it holds the write lock,
/// writes here find the database locked and run on the pool, which waits.
const CHECKPOINT_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

/// What the WAL file is cut back to when it starts over (it grows past this only while a checkpoint cannot run).
pub(super) const JOURNAL_SIZE_LIMIT: u64 = 64 << 20;

/// A statement still running after this long (a purge of many rows, a large export) is interrupted, which rolls
/// it back, and runs on the pool instead: an async worker is never held longer than that.
/// (20 ms in this module's tests, which assert where each statement ran: a test machine busy with other tests can
/// pause a thread for longer than 2 ms mid-statement; the long statements they send take far longer than 20 ms.)
const BUDGET_MICROS: u64 = if cfg!(test) { 20_000 } else { 2_000 };

pub(super) struct Inline {
    slot: Slot,
    started: Instant,
    commits: AtomicU64,
    /// Statements answered here (for tests).
    served: AtomicU64,
    checkpointing: Arc<AtomicBool>,
    /// The connection checkpoints run on, on a blocking thread (`Db::checkpoint_wal`): it waits at most
    /// `CHECKPOINT_WAIT` for SQLite's locks, and then copies back what it can without them.
    checkpointer: Mutex<Option<Checkpointer>>,
}

struct Checkpointer {
    conn: Connection,
    /// When a RESTART last gave up (a long statement on the pool kept reading the WAL): the next one waits
    /// `RESTART_BACKOFF`, rather than stalling writers for `CHECKPOINT_WAIT` at every checkpoint.
    gave_up: Option<Instant>,
}

struct Slot {
    /// `None` once closed: after `Db::close`, or when it could not be brought back outside a transaction.
    conn: Mutex<Option<Connection>>,
    /// Microseconds after `Inline::started` at which the progress handler interrupts the running statement.
    deadline: Arc<AtomicU64>,
}

/// The statement did not run here (or ran and was rolled back): run it through sqlx.
#[derive(Debug)]
pub(super) struct Elsewhere;

impl From<rusqlite::Error> for Elsewhere {
    fn from(_: rusqlite::Error) -> Self {
        Elsewhere
    }
}

impl Inline {
    /// Connections to the SQLite file the pool uses, when there is one on disk and it is opened for writing (an
    /// in-memory database is the pool's own). `None` also when they cannot be opened: everything then goes
    /// through sqlx, as before.
    pub(super) fn open(url: &str) -> Option<Inline> {
        use std::str::FromStr;
        if url.contains("mode=ro") || url.contains("immutable") {
            return None;
        }
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
        let path = options.get_filename();
        if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
            return None;
        }
        let started = Instant::now();
        let deadline = Arc::new(AtomicU64::new(u64::MAX));
        let opened = Self::connect(path, started, deadline.clone()).and_then(|conn| Ok((conn, open(path, CHECKPOINT_WAIT)?)));
        let (conn, checkpointer) = match opened {
            Ok(both) => both,
            Err(e) => {
                tracing::warn!(target: "latchkey::startup", "SQLite statements go through the pool only: {e}");
                return None;
            }
        };
        Some(Inline {
            slot: Slot { conn: Mutex::new(Some(conn)), deadline },
            started,
            commits: AtomicU64::new(0),
            served: AtomicU64::new(0),
            checkpointing: Arc::default(),
            checkpointer: Mutex::new(Some(Checkpointer { conn: checkpointer, gave_up: None })),
        })
    }

    /// A checkpoint (it blocks: call it off the async workers): passive, which waits for nobody, and when the WAL
    /// holds `RESTART_FRAMES` or more, a RESTART after it.
    pub(super) fn checkpoint_now(&self) -> rusqlite::Result<()> {
        let mut guard = self.checkpointer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(c) = guard.as_mut() else { return Ok(()) };
        let checkpoint = |conn: &Connection, mode: &str| {
            conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| Ok((r.get::<_, i64>(0)? != 0, r.get::<_, i64>(1)?)))
        };
        let (_, held) = checkpoint(&c.conn, "PASSIVE")?;
        if held < RESTART_FRAMES || c.gave_up.is_some_and(|t| t.elapsed() < RESTART_BACKOFF) {
            return Ok(());
        }
        let (busy, _) = checkpoint(&c.conn, "RESTART")?;
        if busy {
            tracing::debug!("SQLite checkpoint: the WAL could not start over (its readers or a writer held on past {CHECKPOINT_WAIT:?})");
            c.gave_up = Some(Instant::now());
            return Ok(());
        }
        c.gave_up = None;
        // The first write after a RESTART starts the WAL over and syncs its new header to disk. A write of its own
        // here (the same user_version written back), so that this sync usually happens on this blocking thread
        // rather than in an inline commit on an async worker; an inline write that comes first does it itself.
        let rewrite = c.conn.execute_batch("BEGIN IMMEDIATE").and_then(|()| {
            let v: i64 = c.conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            c.conn.execute_batch(&format!("PRAGMA user_version = {v}; COMMIT"))
        });
        if rewrite.is_err() && !c.conn.is_autocommit() {
            c.conn.execute_batch("ROLLBACK")?;
        }
        Ok(())
    }

    fn connect(path: &Path, started: Instant, deadline: Arc<AtomicU64>) -> rusqlite::Result<Connection> {
        let conn = open(path, std::time::Duration::ZERO)?;
        // sqlx's default foreign_keys=ON, as on the pool.
        conn.execute_batch("PRAGMA foreign_keys = ON")?;
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Without WAL a reader here would block writers and be blocked by them.
            return Err(rusqlite::Error::InvalidQuery);
        }
        conn.set_prepared_statement_cache_capacity(256);
        conn.progress_handler(100, Some(move || started.elapsed().as_micros() as u64 > deadline.load(Ordering::Relaxed)));
        Ok(conn)
    }

    /// Runs one statement: its rows, then its result (as sqlx-sqlite streams them).
    pub(super) fn run(&self, sql: &str, args: &AnyArguments<'_>, checkpoint: impl FnOnce(Arc<AtomicBool>)) -> Result<sqlx::Result<Vec<Item>>, Elsewhere> {
        if not_here(sql) {
            return Err(Elsewhere);
        }
        let out = self.with_conn(|conn, deadline| {
            let budget = Budget { started: self.started, deadline };
            budget.restart();
            run_one(conn, sql, &args.values.0, &budget, true)
        })?;
        if out.as_ref().is_ok_and(|(wrote, _)| *wrote) {
            self.committed(checkpoint);
        }
        Ok(out.map(|(_, items)| items))
    }

    /// Runs writes as one transaction: all commit, or none and sqlx runs them instead.
    pub(super) fn run_all(&self, stmts: &[(String, AnyArguments<'static>)], checkpoint: impl FnOnce(Arc<AtomicBool>)) -> Result<(), Elsewhere> {
        self.run_writes(stmts, false, checkpoint).map(drop)
    }

    /// Runs writes as one transaction, each only when the one before changed a row; returns the rows each
    /// changed (0 for those not run). What ran commits, or nothing does and sqlx runs them instead.
    pub(super) fn run_chain(&self, stmts: &[(String, AnyArguments<'static>)], checkpoint: impl FnOnce(Arc<AtomicBool>)) -> Result<Vec<u64>, Elsewhere> {
        self.run_writes(stmts, true, checkpoint)
    }

    fn run_writes(&self, stmts: &[(String, AnyArguments<'static>)], chain: bool, checkpoint: impl FnOnce(Arc<AtomicBool>)) -> Result<Vec<u64>, Elsewhere> {
        if stmts.iter().any(|(sql, _)| not_here(sql)) {
            return Err(Elsewhere);
        }
        let changed = self.with_conn(|conn, deadline| {
            let budget = Budget { started: self.started, deadline };
            budget.restart();
            conn.prepare_cached("BEGIN IMMEDIATE")?.raw_execute()?;
            let mut changed = vec![0; stmts.len()];
            for ((sql, args), n) in stmts.iter().zip(changed.iter_mut()) {
                if run_one(conn, sql, &args.values.0, &budget, false)?.is_err() {
                    return Err(Elsewhere);
                }
                *n = conn.changes();
                if chain && *n == 0 {
                    break;
                }
            }
            commit(conn, &budget)?;
            Ok(changed)
        })?;
        self.committed(checkpoint);
        Ok(changed)
    }

    /// Calls `f` on the first free connection, then makes sure the connection is outside any transaction (a
    /// failed batch, a BEGIN or SAVEPOINT sent to `&Db`: transactions are the pool's). Whatever had to be rolled
    /// back goes to the pool. A connection that cannot roll back, or whose user panicked, is closed (closing
    /// rolls back and releases its locks) and not used again.
    fn with_conn<T>(&self, f: impl FnOnce(&Connection, &AtomicU64) -> Result<T, Elsewhere>) -> Result<T, Elsewhere> {
        // The connection, once the statement before is done (a statement is microseconds, and none runs past the
        // budget).
        let slot = &self.slot;
        let mut guard = slot.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if slot.conn.is_poisoned() {
            // Whoever held it panicked, maybe inside a transaction: closing rolls back and releases the locks.
            guard.take();
            slot.conn.clear_poison();
            tracing::error!("an inline SQLite connection was closed after a panic");
            return Err(Elsewhere);
        }
        let Some(conn) = guard.as_ref() else { return Err(Elsewhere) };
        let out = f(conn, &slot.deadline);
        slot.deadline.store(u64::MAX, Ordering::Relaxed);
        if conn.is_autocommit() {
            if out.is_ok() {
                self.served.fetch_add(1, Ordering::Relaxed);
            }
            return out;
        }
        if conn.execute_batch("ROLLBACK").is_err() || !conn.is_autocommit() {
            guard.take();
            tracing::error!("an inline SQLite connection could not roll back and was closed");
        }
        Err(Elsewhere)
    }

    fn committed(&self, checkpoint: impl FnOnce(Arc<AtomicBool>)) {
        if self.commits.fetch_add(1, Ordering::Relaxed) % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1
            && !self.checkpointing.swap(true, Ordering::AcqRel)
        {
            // The flag is cleared by whoever runs the checkpoint, when it is done.
            checkpoint(self.checkpointing.clone());
        }
    }

    /// Statements answered here so far.
    pub(super) fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Closes the connections: from now on everything goes to the pool.
    pub(super) fn close(&self) {
        self.slot.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        self.checkpointer.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    }
}

/// A connection of this module's own to the pool's file, which waits `busy` for SQLite's locks: the pool's
/// settings (`repo::connect`'s synchronous=NORMAL and WAL size limit), no automatic checkpoints.
fn open(path: &Path, busy: std::time::Duration) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(busy)?;
    conn.execute_batch(&format!("PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}"))?;
    Ok(conn)
}

/// What only sqlx runs: a script of several statements (sqlx-sqlite runs them one by one), and the `FAIL` conflict
/// resolution (`OR FAIL`, `RAISE(FAIL)`), the one failure after which SQLite keeps what the statement had already
/// changed, so that running it again elsewhere would repeat those changes.
fn not_here(sql: &str) -> bool {
    several_statements(sql) || has_word(sql, b"FAIL")
}

fn has_word(sql: &str, word: &[u8]) -> bool {
    let b = sql.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let first = word[0].to_ascii_lowercase();
    b.iter().enumerate().any(|(i, c)| {
        c.to_ascii_lowercase() == first
            && b.get(i..i + word.len()).is_some_and(|w| w.eq_ignore_ascii_case(word))
            && (i == 0 || !ident(b[i - 1]))
            && b.get(i + word.len()).is_none_or(|c| !ident(*c))
    })
}

/// A `;` before the end: sqlx-sqlite runs such a script statement by statement, so it goes there.
fn several_statements(sql: &str) -> bool {
    sql.trim_end().trim_end_matches(';').contains(';')
}

/// When the running statement is interrupted (see `Inline::connect`'s progress handler).
struct Budget<'a> {
    started: Instant,
    deadline: &'a AtomicU64,
}

impl Budget<'_> {
    fn restart(&self) {
        self.deadline.store(self.started.elapsed().as_micros() as u64 + BUDGET_MICROS, Ordering::Relaxed);
    }

    fn over(&self) -> bool {
        self.started.elapsed().as_micros() as u64 > self.deadline.load(Ordering::Relaxed)
    }

    /// Nothing interrupts what follows.
    fn lift(&self) {
        self.deadline.store(u64::MAX, Ordering::Relaxed);
    }
}

/// Commits the transaction the connection is in, never interrupted: SQLite can report an interrupt after a
/// statement's changes were committed (the progress handler runs again after `OP_Halt`), so nothing may interrupt
/// a commit; an interrupt before it leaves the transaction open, and `with_conn` rolls it back.
fn commit(conn: &Connection, budget: &Budget<'_>) -> Result<(), Elsewhere> {
    budget.lift();
    conn.prepare_cached("COMMIT")?.raw_execute()?;
    Ok(())
}

/// `Err`: SQLite refused, failed or interrupted the statement, so nothing of it remains (a write alone runs inside
/// its own `BEGIN IMMEDIATE` … `COMMIT`, which `with_conn` rolls back when it is left open). `Ok(Err)`: it ran, and
/// its rows cannot be handed over as sqlx would (not UTF-8 text): an error, never a second run.
/// `Ok(Ok((wrote, items)))`. `alone`: a statement of its own, which may read rows and writes in a transaction of
/// its own; `false` inside a batch, which has its transaction and reads no rows.
fn run_one(conn: &Connection, sql: &str, args: &[AnyValueKind<'_>], budget: &Budget<'_>, alone: bool) -> Result<sqlx::Result<(bool, Vec<Item>)>, Elsewhere> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut next = 0;
    let mut highest = 0;
    for i in 1..=stmt.parameter_count() {
        // As sqlx-sqlite binds: `$N` or `?N` is the N-th argument, a bare `?` the next one.
        let n = match stmt.parameter_name(i) {
            Some(name) => name.strip_prefix(['$', '?']).and_then(|d| d.parse::<usize>().ok()).ok_or(Elsewhere)?,
            None => {
                next += 1;
                next
            }
        };
        highest = highest.max(n);
        stmt.raw_bind_parameter(i, ToSqlOutput::Borrowed(value_ref(args.get(n.wrapping_sub(1)).ok_or(Elsewhere)?)?))?;
    }
    if highest != args.len() {
        // sqlx answers an argument count that does not match with its own error.
        return Err(Elsewhere);
    }
    let wrote = !stmt.readonly();
    let own_transaction = alone && wrote;
    if own_transaction {
        conn.prepare_cached("BEGIN IMMEDIATE")?.raw_execute()?;
    }
    let mut items = Vec::new();
    if alone && stmt.column_count() > 0 {
        let names: Vec<UStr> = stmt.column_names().into_iter().map(|n| UStr::from(n.to_string())).collect();
        let mut index = sqlx_core::HashMap::<UStr, usize>::default();
        for (i, n) in names.iter().enumerate() {
            index.insert(n.clone(), i);
        }
        let index = Arc::new(index);
        let mut rows = stmt.raw_query();
        let mut bad = None;
        while let Some(row) = rows.next()? {
            let mut columns = Vec::with_capacity(names.len());
            let mut values = Vec::with_capacity(names.len());
            for (i, name) in names.iter().enumerate() {
                let Ok(value) = row.get_ref(i) else {
                    bad.get_or_insert(sqlx::Error::ColumnIndexOutOfBounds { index: i, len: names.len() });
                    continue;
                };
                let kind = match value {
                    ValueRef::Null => AnyValueKind::Null(AnyTypeInfoKind::Null),
                    ValueRef::Integer(v) => AnyValueKind::BigInt(v),
                    ValueRef::Real(v) => AnyValueKind::Double(v),
                    ValueRef::Text(t) => match std::str::from_utf8(t) {
                        Ok(s) => AnyValueKind::Text(Cow::Owned(s.to_string())),
                        Err(e) => {
                            bad.get_or_insert(sqlx::Error::Decode(Box::new(e)));
                            AnyValueKind::Null(AnyTypeInfoKind::Null)
                        }
                    },
                    ValueRef::Blob(b) => AnyValueKind::Blob(Cow::Owned(b.to_vec())),
                };
                let type_info = AnyTypeInfo { kind: kind_of(&kind) };
                columns.push(AnyColumn { ordinal: i, name: name.clone(), type_info });
                values.push(AnyValue { kind });
            }
            items.push(Either::Right(AnyRow { column_names: index.clone(), columns, values }));
            if budget.over() {
                // Converting rows is not SQLite's work, which the progress handler bounds: a large result set
                // goes to the pool too (a write's transaction is rolled back by `with_conn`).
                return Err(Elsewhere);
            }
        }
        drop(rows);
        if let Some(e) = bad {
            return Ok(Err(e));
        }
    } else if stmt.column_count() > 0 {
        // A batch statement (recorded writes only, see `batch.rs`): no rows are expected.
        return Err(Elsewhere);
    } else {
        stmt.raw_execute()?;
    }
    items.push(Either::Left(AnyQueryResult { rows_affected: conn.changes(), last_insert_id: None }));
    if own_transaction {
        commit(conn, budget)?;
    }
    Ok(Ok((wrote, items)))
}

fn value_ref<'a>(v: &'a AnyValueKind<'_>) -> Result<ValueRef<'a>, Elsewhere> {
    Ok(match v {
        AnyValueKind::Null(_) => ValueRef::Null,
        AnyValueKind::Bool(b) => ValueRef::Integer(i64::from(*b)),
        AnyValueKind::SmallInt(i) => ValueRef::Integer(i64::from(*i)),
        AnyValueKind::Integer(i) => ValueRef::Integer(i64::from(*i)),
        AnyValueKind::BigInt(i) => ValueRef::Integer(*i),
        AnyValueKind::Real(f) => ValueRef::Real(f64::from(*f)),
        AnyValueKind::Double(f) => ValueRef::Real(*f),
        AnyValueKind::Text(t) => ValueRef::Text(t.as_bytes()),
        AnyValueKind::Blob(b) => ValueRef::Blob(b),
        _ => return Err(Elsewhere),
    })
}

fn kind_of(v: &AnyValueKind<'_>) -> AnyTypeInfoKind {
    match v {
        AnyValueKind::BigInt(_) => AnyTypeInfoKind::BigInt,
        AnyValueKind::Double(_) => AnyTypeInfoKind::Double,
        AnyValueKind::Text(_) => AnyTypeInfoKind::Text,
        AnyValueKind::Blob(_) => AnyTypeInfoKind::Blob,
        _ => AnyTypeInfoKind::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::super::batch::Batch;
    use super::super::db::Db;
    use sqlx::Row;
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    /// A SQLite file in WAL mode with one table, removed afterwards.
    struct File(PathBuf);

    impl Drop for File {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
            }
        }
    }

    async fn file_db() -> (Db, File) {
        sqlx::any::install_default_drivers();
        let file = File(std::env::temp_dir().join(format!("latchkey-inline-{}.db", ulid::Ulid::new())));
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(4)
            .connect(&format!("sqlite://{}?mode=rwc", file.0.display()))
            .await
            .unwrap();
        sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await.unwrap();
        sqlx::query("CREATE TABLE t (id TEXT PRIMARY KEY, n BIGINT NOT NULL, x REAL, b BLOB, note TEXT)").execute(&pool).await.unwrap();
        let db = Db::new(pool);
        assert_eq!(db.inline_served(), Some(0), "a SQLite file in WAL mode gets the inline connections");
        (db, file)
    }

    /// Runs `f` and asserts that the inline connections answered it (`true`) or the pool did (`false`).
    async fn served<T>(db: &Db, inline: bool, f: impl std::future::Future<Output = T>) -> T {
        let before = db.inline_served().unwrap();
        let out = f.await;
        assert_eq!(db.inline_served().unwrap() > before, inline, "answered inline: expected {inline}");
        out
    }

    #[tokio::test]
    async fn rows_come_back_as_they_do_through_the_pool() {
        let (db, _file) = file_db().await;
        let insert = "INSERT INTO t (id, n, x, b, note) VALUES ($1, $2, $3, $4, $5)";
        let q = sqlx::query(insert).bind("a").bind(7_i64).bind(1.5_f64).bind(vec![0_u8, 255]).bind(None::<String>);
        let done = served(&db, true, q.execute(&db)).await.unwrap();
        assert_eq!(done.rows_affected(), 1);
        let q = sqlx::query(insert).bind("b").bind(-3_i64).bind(None::<f64>).bind(None::<Vec<u8>>).bind("it's ü");
        served(&db, true, q.execute(&db)).await.unwrap();
        let select = "SELECT id, n, x, b, note, n * 2 AS twice, COUNT(*) OVER () AS total, id AS n2, note AS n2 FROM t ORDER BY id";
        let inline = served(&db, true, sqlx::query(select).fetch_all(&db)).await.unwrap();
        let pooled = sqlx::query(select).fetch_all(&*db).await.unwrap();
        assert_eq!(inline.len(), 2);
        for (a, b) in inline.iter().zip(&pooled) {
            assert_eq!(a.get::<String, _>("id"), b.get::<String, _>("id"));
            assert_eq!(a.get::<i64, _>("n"), b.get::<i64, _>("n"));
            assert_eq!(a.get::<Option<f64>, _>("x"), b.get::<Option<f64>, _>("x"));
            assert_eq!(a.get::<Option<Vec<u8>>, _>("b"), b.get::<Option<Vec<u8>>, _>("b"));
            assert_eq!(a.get::<Option<String>, _>("note"), b.get::<Option<String>, _>("note"));
            assert_eq!(a.get::<i64, _>(5), b.get::<i64, _>("twice"));
            assert_eq!(a.get::<i64, _>("total"), 2);
            // Two columns of one name: the last one wins on both paths.
            assert_eq!(a.get::<Option<String>, _>("n2"), b.get::<Option<String>, _>("n2"));
            assert!(a.try_get::<String, _>("n").is_err() && b.try_get::<String, _>("n").is_err(), "an integer is no text on either path");
        }
        assert_eq!(inline[0].get::<Option<Vec<u8>>, _>("b"), Some(vec![0, 255]));
        assert_eq!(inline[1].get::<Option<String>, _>("note").as_deref(), Some("it's ü"));
        assert_eq!(inline[1].get::<Option<String>, _>("n2").as_deref(), Some("it's ü"));
        let none = served(&db, true, sqlx::query("SELECT id FROM t WHERE id = $1").bind("zzz").fetch_optional(&db)).await.unwrap();
        assert!(none.is_none());
        let q = sqlx::query_as::<_, (i64,)>("SELECT n FROM t WHERE id = ?1").bind("b");
        assert_eq!(served(&db, true, q.fetch_one(&db)).await.unwrap().0, -3);
        let q = sqlx::query_as::<_, (i64,)>("SELECT n FROM t WHERE id = ? AND n < ?").bind("a").bind(100_i64);
        assert_eq!(served(&db, true, q.fetch_one(&db)).await.unwrap().0, 7, "bare ? take the arguments in order");
        // Scripts and the FAIL conflict clause go to the pool.
        served(&db, false, sqlx::query("UPDATE t SET n = n; UPDATE t SET n = n").execute(&db)).await.unwrap();
        served(&db, false, sqlx::query("UPDATE OR FAIL t SET n = n + 1 WHERE id = 'a'").execute(&db)).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT n FROM t WHERE id = 'a'").fetch_one(&db).await.unwrap();
        assert_eq!(n, 8);
    }

    /// A write with RETURNING runs once, and a failing one answers with sqlx's own error and leaves nothing.
    #[tokio::test]
    async fn writes_run_once_and_failures_answer_as_sqlx_does() {
        let (db, _file) = file_db().await;
        sqlx::query("INSERT INTO t (id, n) VALUES ('a', 0)").execute(&db).await.unwrap();
        for expected in 1..=3_i64 {
            let q = sqlx::query_scalar::<_, i64>("UPDATE t SET n = n + 1 WHERE id = $1 RETURNING n").bind("a");
            assert_eq!(served(&db, true, q.fetch_one(&db)).await.unwrap(), expected);
        }
        let n: i64 = sqlx::query_scalar("SELECT n FROM t WHERE id = 'a'").fetch_one(&*db).await.unwrap();
        assert_eq!(n, 3, "each RETURNING write ran exactly once");

        let dup = served(&db, false, sqlx::query("INSERT INTO t (id, n) VALUES ('a', 9)").execute(&db)).await.unwrap_err();
        assert!(dup.as_database_error().is_some_and(|e| e.is_unique_violation()), "{dup}");

        let mut batch = Batch::default();
        sqlx::query("INSERT INTO t (id, n) VALUES ($1, $2)").bind("c").bind(1_i64).execute(&mut batch).await.unwrap();
        sqlx::query("INSERT INTO t (id, n) VALUES ($1, $2)").bind("a").bind(2_i64).execute(&mut batch).await.unwrap();
        assert!(served(&db, false, db.write_all(batch)).await.is_err());
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(&*db).await.unwrap();
        assert_eq!(count, 1, "nothing of the failed batch stays");

        // A transaction statement sent to `&Db` does not leave an inline connection inside a transaction: the
        // next write is answered inline at once and committed, visible to the pool.
        let _ = sqlx::query("BEGIN").execute(&db).await;
        let t = Instant::now();
        served(&db, true, sqlx::query("INSERT INTO t (id, n) VALUES ('d', 4)").execute(&db)).await.unwrap();
        assert!(t.elapsed() < Duration::from_secs(1), "no wait for a lock left behind");
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(&*db).await.unwrap();
        assert_eq!(count, 2, "the next write is committed and visible to the pool");

        let mut ok = Batch::default();
        sqlx::query("INSERT INTO t (id, n) VALUES ($1, $2)").bind("e").bind(5_i64).execute(&mut ok).await.unwrap();
        sqlx::query("UPDATE t SET n = $1 WHERE id = $2").bind(40_i64).bind("d").execute(&mut ok).await.unwrap();
        served(&db, true, db.write_all(ok)).await.unwrap();
        let sum: i64 = sqlx::query_scalar("SELECT SUM(n) FROM t").fetch_one(&*db).await.unwrap();
        assert_eq!(sum, 3 + 40 + 5);
    }

    /// While a transaction on the pool holds the write lock, reads are answered inline without waiting, and a
    /// write through `&Db` neither fails nor holds the async worker: it goes to the pool, which waits for the
    /// lock, and lands after the commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_locked_database_sends_the_write_to_the_pool() {
        let (db, _file) = file_db().await;
        let mut tx = db.begin().await.unwrap();
        sqlx::query("INSERT INTO t (id, n) VALUES ('tx', 1)").execute(&mut *tx).await.unwrap();
        let t = Instant::now();
        let seen: i64 = served(&db, true, sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(&db)).await.unwrap();
        assert_eq!(seen, 0, "the uncommitted row is not seen");
        assert!(t.elapsed() < Duration::from_millis(500));
        let before = db.inline_served().unwrap();
        let other = db.clone();
        let write = tokio::spawn(async move { sqlx::query("INSERT INTO t (id, n) VALUES ('after', 2)").execute(&other).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!write.is_finished(), "the write waits for the lock, on the pool");
        tx.commit().await.unwrap();
        write.await.unwrap().unwrap();
        assert_eq!(db.inline_served().unwrap(), before, "it was not answered inline");
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM t ORDER BY n").fetch_all(&db).await.unwrap();
        assert_eq!(ids, ["tx", "after"]);
    }

    /// A chain of writes: each runs only when the one before changed a row, they commit together inline, and
    /// while the pool holds the write lock the same chain runs there statement by statement, with the same counts.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_chain_stops_at_the_first_write_that_changed_nothing() {
        let (db, _file) = file_db().await;
        let chain = |id: &'static str, n: i64| async move {
            let mut b = Batch::default();
            sqlx::query("INSERT INTO t (id, n) VALUES ($1, $2) ON CONFLICT DO NOTHING").bind(id).bind(n).execute(&mut b).await.unwrap();
            sqlx::query("UPDATE t SET note = $2 WHERE id = $1 AND note IS NULL").bind("a").bind(id).execute(&mut b).await.unwrap();
            b
        };
        sqlx::query("INSERT INTO t (id, n) VALUES ('a', 0)").execute(&db).await.unwrap();
        assert_eq!(served(&db, true, db.write_chain(chain("x", 1).await)).await.unwrap(), [1, 1]);
        assert_eq!(served(&db, true, db.write_chain(chain("y", 2).await)).await.unwrap(), [1, 0], "the second ran and changed nothing");
        assert_eq!(served(&db, true, db.write_chain(chain("x", 3).await)).await.unwrap(), [0, 0], "the second did not run");
        let rows: Vec<(String, i64, Option<String>)> = sqlx::query_as("SELECT id, n, note FROM t ORDER BY id").fetch_all(&*db).await.unwrap();
        assert_eq!(rows, [("a".into(), 0, Some("x".into())), ("x".into(), 1, None), ("y".into(), 2, None)]);

        sqlx::query("UPDATE t SET note = NULL WHERE id = 'a'").execute(&db).await.unwrap();
        let mut tx = db.begin().await.unwrap();
        sqlx::query("INSERT INTO t (id, n) VALUES ('tx', 9)").execute(&mut *tx).await.unwrap();
        let other = db.clone();
        let locked = tokio::spawn(async move { other.write_chain(chain("z", 4).await).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!locked.is_finished(), "the chain waits for the lock, on the pool");
        tx.commit().await.unwrap();
        assert_eq!(locked.await.unwrap().unwrap(), [1, 1]);
        assert_eq!(db.write_chain(chain("z", 5).await).await.unwrap(), [0, 0]);
        let note: Option<String> = sqlx::query_scalar("SELECT note FROM t WHERE id = 'a'").fetch_one(&*db).await.unwrap();
        assert_eq!(note.as_deref(), Some("z"));
    }

    /// A statement that runs past the budget is interrupted (rolled back) and answered by the pool instead.
    #[tokio::test]
    async fn a_long_statement_goes_to_the_pool() {
        let (db, _file) = file_db().await;
        let slow = "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 1000000) SELECT COUNT(*) FROM c";
        let n: i64 = served(&db, false, sqlx::query_scalar(slow).fetch_one(&db)).await.unwrap();
        assert_eq!(n, 1_000_000);
        served(&db, true, sqlx::query("SELECT 1").execute(&db)).await.unwrap();
    }

    /// A write past the budget is interrupted, rolled back, and applied once, by the pool; the next short write is
    /// answered inline again (its connection was left outside any transaction).
    #[tokio::test]
    async fn a_long_write_goes_to_the_pool_and_is_applied_once() {
        let (db, _file) = file_db().await;
        let fill = "INSERT INTO t (id, n) WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200000) \
                    SELECT 'r' || i, i FROM c";
        sqlx::query(fill).execute(&*db).await.unwrap();
        let done = served(&db, false, sqlx::query("UPDATE t SET n = n + 1").execute(&db)).await.unwrap();
        assert_eq!(done.rows_affected(), 200_000);
        let wrong: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t WHERE n <> CAST(substr(id, 2) AS INTEGER) + 1").fetch_one(&*db).await.unwrap();
        assert_eq!(wrong, 0, "every row was incremented exactly once");
        served(&db, true, sqlx::query("UPDATE t SET n = n + 1 WHERE id = 'r1'").execute(&db)).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT n FROM t WHERE id = 'r1'").fetch_one(&*db).await.unwrap();
        assert_eq!(n, 3);
    }

    /// Under a steady stream of writes the WAL starts over once it is large, again and again, instead of growing
    /// with every commit (a passive checkpoint beside the writes never let it: 100 KB more per sign-in).
    ///
    /// Rounds of writes until the WAL has started over twice, not a fixed number of commits: a RESTART that finds
    /// a writer holding the lock past `CHECKPOINT_WAIT` (a busy machine deschedules it) is tried again only after
    /// `RESTART_BACKOFF`, so how many commits that takes depends on the machine (CI once saw none in 5,000 commits
    /// made in 0.4 s, all inside one backoff).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_starts_over_under_steady_writes() {
        let (db, file) = file_db().await;
        const ROUND: usize = 500;
        let wal_restarts = || {
            // The WAL header's checkpoint sequence number (bytes 12..16) counts the times the WAL started over.
            let wal = std::fs::read(format!("{}-wal", file.0.display())).unwrap();
            u32::from_be_bytes(wal[12..16].try_into().unwrap())
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut rounds = 0;
        while wal_restarts() < 2 {
            assert!(Instant::now() < deadline, "the WAL started over {} times in {} commits", wal_restarts(), 2 * ROUND * rounds);
            let writers: Vec<_> = (0..2)
                .map(|w| {
                    let db = db.clone();
                    tokio::spawn(async move {
                        for i in 0..ROUND {
                            sqlx::query("INSERT INTO t (id, n, note) VALUES ($1, $2, $3)")
                                .bind(format!("r{rounds}-w{w}-{i}"))
                                .bind(i as i64)
                                .bind("x".repeat(200))
                                .execute(&db)
                                .await
                                .unwrap();
                        }
                    })
                })
                .collect();
            for w in writers {
                w.await.unwrap();
            }
            rounds += 1;
        }
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(&*db).await.unwrap();
        assert_eq!(rows, (2 * ROUND * rounds) as i64, "every write applied once, here or on the pool");
        let version: i64 = sqlx::query_scalar("PRAGMA user_version").fetch_one(&*db).await.unwrap();
        assert_eq!(version, 0, "the checkpointer's own write leaves user_version as it was");
        // Each commit appends two pages or more (the row's and its key's), so a WAL that never started over would
        // hold at least twice as many frames as there were commits.
        let frames = std::fs::metadata(format!("{}-wal", file.0.display())).unwrap().len() / (4096 + 24);
        assert!(frames < (2 * 2 * ROUND * rounds) as u64, "the WAL grew to {frames} frames over {} commits", 2 * ROUND * rounds);
    }

    #[tokio::test]
    async fn an_in_memory_database_has_no_inline_connection() {
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new().max_connections(1).connect("sqlite::memory:").await.unwrap();
        assert_eq!(Db::new(pool).inline_served(), None);
    }

    #[test]
    fn fail_is_found_as_a_word_only() {
        assert!(super::not_here("UPDATE OR FAIL t SET n = 1"));
        assert!(super::not_here("INSERT INTO t VALUES (1) ON CONFLICT(id) DO NOTHING; SELECT 1"));
        assert!(super::not_here("SELECT RAISE(fail, 'x')"));
        assert!(!super::not_here("SELECT failed_at, fail_count FROM t WHERE status <> 'failed';"));
    }
}
