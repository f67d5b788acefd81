//! Writes collected to commit together: `&mut Batch` is an sqlx executor that records statements instead of
//! running them, so any repo function that only writes can add to a batch unchanged (one that reads gets an
//! error, never a made-up row). [`super::db::Db::write_all`] then commits the batch as one transaction.
//!
//! Why: on SQLite every statement is a round trip to the connection's worker thread (sqlx-sqlite), and a
//! transaction adds two more (BEGIN, COMMIT). Profiled, those thread switches were the largest CPU cost of a
//! sign-in. A batch goes to the worker as one script (`BEGIN IMMEDIATE; …; COMMIT`): one round trip for the whole
//! transaction. PostgreSQL cannot take several statements with parameters in one message, so there the batch
//! runs statement by statement in an ordinary transaction.
use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream};
use sqlx::any::{AnyArguments, AnyQueryResult};
use sqlx_core::any::AnyValueKind;
use sqlx::{Any, Database, Describe, Either, Error, Execute, Executor};
use std::borrow::Cow;

/// Statements to commit together, each with its own arguments.
#[derive(Default)]
pub struct Batch {
    pub(super) stmts: Vec<(String, AnyArguments<'static>)>,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Statements only: arguments can be secrets.
        f.debug_list().entries(self.stmts.iter().map(|(sql, _)| sql)).finish()
    }
}

impl Batch {
    pub fn len(&self) -> usize {
        self.stmts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stmts.is_empty()
    }

    /// Records one write. Refused: anything that would read (a SELECT, RETURNING), and parameters other than
    /// `$1`…`$N` with exactly N arguments (the script numbers them across statements).
    fn record<'q>(&mut self, mut query: impl Execute<'q, Any>) -> Result<(), Error> {
        let sql = query.sql();
        let verb = sql.trim_start().split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
        if !["INSERT", "UPDATE", "DELETE"].contains(&verb.as_str()) || sql.to_ascii_uppercase().contains("RETURNING") {
            return Err(no_reads());
        }
        let args = query.take_arguments().map_err(Error::Encode)?.map(owned).transpose()?.unwrap_or_default();
        match params(sql) {
            Some(n) if n == args.values.0.len() => {}
            _ => return Err(Error::Protocol("a batched statement numbers its parameters $1…$N, one argument each".into())),
        }
        self.stmts.push((sql.to_string(), args));
        Ok(())
    }

    /// The whole batch as one SQLite script: `BEGIN IMMEDIATE`, each statement with its parameters renumbered
    /// after those of the statements before it (sqlx-sqlite binds `$N` to the N-th argument of the whole
    /// script), `COMMIT`.
    pub(super) fn into_script(self) -> (String, AnyArguments<'static>) {
        let mut sql = String::from("BEGIN IMMEDIATE;\n");
        let mut all = AnyArguments::default();
        for (stmt, args) in self.stmts {
            sql.push_str(&renumber(&stmt, all.values.0.len()));
            sql.push_str(";\n");
            all.values.0.extend(args.values.0);
        }
        sql.push_str("COMMIT");
        (sql, all)
    }
}

/// Arguments that outlive the statement that bound them (a batch runs after the repo function returned).
fn owned(args: AnyArguments<'_>) -> Result<AnyArguments<'static>, Error> {
    let mut out = AnyArguments::default();
    for v in args.values.0 {
        out.values.0.push(match v {
            AnyValueKind::Null(kind) => AnyValueKind::Null(kind),
            AnyValueKind::Bool(b) => AnyValueKind::Bool(b),
            AnyValueKind::SmallInt(i) => AnyValueKind::SmallInt(i),
            AnyValueKind::Integer(i) => AnyValueKind::Integer(i),
            AnyValueKind::BigInt(i) => AnyValueKind::BigInt(i),
            AnyValueKind::Real(f) => AnyValueKind::Real(f),
            AnyValueKind::Double(f) => AnyValueKind::Double(f),
            AnyValueKind::Text(t) => AnyValueKind::Text(Cow::Owned(t.into_owned())),
            AnyValueKind::Blob(b) => AnyValueKind::Blob(Cow::Owned(b.into_owned())),
            // (Not the value: arguments can be secrets.)
            _ => return Err(Error::Protocol("a batch cannot carry an argument of this kind".into())),
        });
    }
    Ok(out)
}

/// The highest `$N` of a statement, outside quoted literals and identifiers; `None` when it has `?`, `:name` or
/// `@name` parameters, or a comment (neither is renumbered).
fn params(sql: &str) -> Option<usize> {
    let mut highest = 0;
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '?' | ':' | '@') => return None,
            (None, '-') if chars.peek() == Some(&'-') => return None,
            (None, '/') if chars.peek() == Some(&'*') => return None,
            (None, '$') => {
                let mut n = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    n.push(d);
                    chars.next();
                }
                highest = highest.max(n.parse::<usize>().ok()?);
            }
            _ => {}
        }
    }
    Some(highest)
}

/// `$N` → `$(N + offset)` outside quoted literals and identifiers.
fn renumber(sql: &str, offset: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        out.push(c);
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '$') if chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut n = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    n.push(d);
                    chars.next();
                }
                out.push_str(&(n.parse::<usize>().unwrap_or(0) + offset).to_string());
            }
            _ => {}
        }
    }
    out
}

fn no_reads() -> Error {
    Error::Protocol("a batch only collects writes: read before it, or outside it".into())
}

type Item = Either<<Any as Database>::QueryResult, <Any as Database>::Row>;

impl<'c> Executor<'c> for &'c mut Batch {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Item, Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        // Recorded, not run: nothing is affected yet.
        let done = self.record(query).map(|()| Either::Left(AnyQueryResult { rows_affected: 0, last_insert_id: None }));
        Box::pin(stream::iter([done]))
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, _query: E) -> BoxFuture<'e, Result<Option<<Any as Database>::Row>, Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        Box::pin(async { Err(no_reads()) })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        _sql: &'q str,
        _parameters: &'e [<Any as Database>::TypeInfo],
    ) -> BoxFuture<'e, Result<<Any as Database>::Statement<'q>, Error>>
    where
        'c: 'e,
    {
        Box::pin(async { Err(no_reads()) })
    }

    fn describe<'e, 'q: 'e>(self, _sql: &'q str) -> BoxFuture<'e, Result<Describe<Any>, Error>>
    where
        'c: 'e,
    {
        Box::pin(async { Err(no_reads()) })
    }
}

#[cfg(test)]
mod tests {
    use super::renumber;

    #[test]
    fn parameters_are_renumbered_outside_literals() {
        assert_eq!(renumber("INSERT INTO t (a, b) VALUES ($1, $2)", 3), "INSERT INTO t (a, b) VALUES ($4, $5)");
        assert_eq!(renumber("SELECT $1 || '$1', \"$2\" FROM t WHERE x = $10", 2), "SELECT $3 || '$1', \"$2\" FROM t WHERE x = $12");
        assert_eq!(renumber("a = $1 AND b LIKE '%it''s $3%' AND c = $2", 1), "a = $2 AND b LIKE '%it''s $3%' AND c = $3");
        assert_eq!(renumber("no parameters, $ alone", 5), "no parameters, $ alone");
    }

    #[test]
    fn only_numbered_parameters_outside_literals_are_accepted() {
        use super::params;
        assert_eq!(params("INSERT INTO t VALUES ($1, $2, $2 || '$9?')"), Some(2));
        assert_eq!(params("DELETE FROM t"), Some(0));
        assert_eq!(params("DELETE FROM t WHERE a = ?"), None);
        assert_eq!(params("DELETE FROM t WHERE a = :a"), None);
        assert_eq!(params("DELETE FROM t WHERE a = $1 -- $2"), None);
        assert_eq!(params("DELETE FROM t WHERE a = $"), None);
    }
}
