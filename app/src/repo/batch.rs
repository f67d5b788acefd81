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
        for stmt in self.renumbered() {
            sql.push_str(&stmt);
            sql.push_str(";\n");
        }
        sql.push_str("COMMIT");
        (sql, self.into_arguments())
    }

    /// Each statement with its parameters numbered after those of the statements before it.
    fn renumbered(&self) -> impl Iterator<Item = String> + '_ {
        let mut offset = 0;
        self.stmts.iter().map(move |(stmt, args)| {
            let out = renumber(stmt, offset);
            offset += args.values.0.len();
            out
        })
    }

    /// The arguments of every statement, in order: those of the renumbered statements together.
    pub(super) fn into_arguments(self) -> AnyArguments<'static> {
        let mut all = AnyArguments::default();
        for (_, args) in self.stmts {
            all.values.0.extend(args.values.0);
        }
        all
    }

    /// The batch as one PostgreSQL statement that runs each write only when the one before changed a row, and
    /// answers how many rows each changed: `WITH c1 AS (s1 RETURNING 1), c2 AS (s2, guarded by c1 RETURNING 1) …
    /// SELECT (SELECT count(*) FROM c1), …`, with `into_arguments` as its arguments. One round trip instead of one
    /// per write, and all or nothing.
    ///
    /// A later write does not see the rows an earlier one wrote (PostgreSQL runs the parts of one statement on one
    /// snapshot); a chain whose writes depend on each other's rows must not use it. `None` when a statement has a
    /// form this does not rewrite (then the writes run one by one): an INSERT must have exactly one `VALUES (…)`
    /// row, and an UPDATE or DELETE at most one top-level `WHERE`.
    pub(super) fn chain_statement(&self) -> Option<String> {
        // Writes that touch a table an earlier one wrote would not see its rows: not rewritten.
        let targets: Vec<String> = self.stmts.iter().map(|(stmt, _)| target(stmt)).collect::<Option<_>>()?;
        for (i, (stmt, _)) in self.stmts.iter().enumerate().skip(1) {
            let later = stmt.to_ascii_lowercase();
            let mut words = later.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
            if words.any(|w| targets[..i].iter().any(|t| t == w)) {
                return None;
            }
        }
        let mut parts = Vec::with_capacity(self.stmts.len());
        for (i, stmt) in self.renumbered().enumerate() {
            let part = if i == 0 { stmt } else { guarded(&stmt, &format!("EXISTS (SELECT 1 FROM c{i})"))? };
            parts.push(format!("c{} AS ({part} RETURNING 1)", i + 1));
        }
        let counts: Vec<String> = (1..=self.stmts.len()).map(|i| format!("(SELECT count(*) FROM c{i})")).collect();
        Some(format!("WITH {} SELECT {}", parts.join(", "), counts.join(", ")))
    }
}

/// The table a write changes (lower case): the word after `INSERT INTO`, `UPDATE` or `DELETE FROM`.
fn target(stmt: &str) -> Option<String> {
    let words: Vec<&str> = stmt.split_whitespace().take(3).collect();
    let table = match words.iter().map(|w| w.to_ascii_uppercase()).collect::<Vec<_>>()[..] {
        [ref a, ref b, _] if a == "INSERT" && b == "INTO" => words[2],
        [ref a, ref b, _] if a == "DELETE" && b == "FROM" => words[2],
        [ref a, _, ..] if a == "UPDATE" => words[1],
        _ => return None,
    };
    // `"schema"."t"(a, b)` → t
    let table = table.split('(').next().unwrap_or_default().rsplit('.').next().unwrap_or_default().trim_matches('"').to_ascii_lowercase();
    (!table.is_empty()).then_some(table)
}

/// The bytes of `sql` outside quoted literals and identifiers, each with its offset and the parenthesis depth it
/// sits at (a `(` and its `)` at the depth outside them).
fn unquoted(sql: &str) -> impl Iterator<Item = (usize, u8, usize)> + '_ {
    let (mut depth, mut quote) = (0usize, None::<u8>);
    sql.bytes().enumerate().filter_map(move |(i, c)| match (quote, c) {
        (Some(q), c) if c == q => {
            quote = None;
            None
        }
        (Some(_), _) => None,
        (None, b'\'' | b'"') => {
            quote = Some(c);
            None
        }
        (None, b'(') => {
            depth += 1;
            Some((i, c, depth - 1))
        }
        (None, b')') => {
            depth = depth.saturating_sub(1);
            Some((i, c, depth))
        }
        (None, c) => Some((i, c, depth)),
    })
}

/// Byte offsets of the keyword `word` (ASCII) in `sql` outside quotes and parentheses: after whitespace, and
/// before whitespace or `(`.
fn top_level(sql: &str, word: &str) -> Vec<usize> {
    let bytes = sql.as_bytes();
    let is_word = |at: usize| {
        bytes.get(at..at + word.len()).is_some_and(|w| w.eq_ignore_ascii_case(word.as_bytes()))
            && bytes.get(at + word.len()).is_some_and(|n| n.is_ascii_whitespace() || *n == b'(')
    };
    unquoted(sql).filter(|&(i, c, depth)| depth == 0 && c.is_ascii_whitespace() && is_word(i + 1)).map(|(i, _, _)| i + 1).collect()
}

/// `stmt` changed so that it writes nothing unless `condition` holds (see `Batch::chain_statement`).
fn guarded(stmt: &str, condition: &str) -> Option<String> {
    let verb = stmt.trim_start().split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
    if verb == "INSERT" {
        // INSERT INTO t (…) VALUES (row) [rest] → INSERT INTO t (…) SELECT row WHERE condition [rest]
        let [at] = top_level(stmt, "VALUES")[..] else { return None };
        let after = stmt[at + "VALUES".len()..].trim_start();
        if !after.starts_with('(') {
            return None;
        }
        // The `)` that closes the row.
        let (end, _, _) = unquoted(after).find(|&(_, c, depth)| c == b')' && depth == 0)?;
        // `DEFAULT` is a VALUES keyword, not a SELECT one.
        if after[1..end].to_ascii_uppercase().contains("DEFAULT") {
            return None;
        }
        let rest = &after[end + 1..];
        // A second row (`VALUES (…), (…)`) is not rewritten.
        if rest.trim_start().starts_with(',') {
            return None;
        }
        return Some(format!("{}SELECT {} WHERE {condition}{rest}", &stmt[..at], &after[1..end]));
    }
    if verb == "UPDATE" || verb == "DELETE" {
        return match top_level(stmt, "WHERE")[..] {
            [] => Some(format!("{stmt} WHERE {condition}")),
            [at] => Some(format!("{}WHERE {condition} AND ({})", &stmt[..at], stmt[at + "WHERE".len()..].trim_start())),
            _ => None,
        };
    }
    None
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
/// `@name` parameters, a comment (neither is renumbered) or a backslash.
fn params(sql: &str) -> Option<usize> {
    // An `E'…'` string can escape a quote with a backslash, which this reading does not follow.
    if sql.contains('\\') {
        return None;
    }
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

    /// The PostgreSQL form of a chain: each later write guarded by the one before, parameters numbered across the
    /// whole statement; forms it does not rewrite give `None` (the writes then run one by one).
    #[test]
    fn a_chain_becomes_one_statement_with_each_write_guarded_by_the_last() {
        use super::{guarded, Batch};
        let g = "EXISTS (SELECT 1 FROM c1)";
        assert_eq!(
            guarded("INSERT INTO t (a, b) VALUES ($1, lower($2)) ON CONFLICT DO NOTHING", g).unwrap(),
            "INSERT INTO t (a, b) SELECT $1, lower($2) WHERE EXISTS (SELECT 1 FROM c1) ON CONFLICT DO NOTHING"
        );
        assert_eq!(guarded("INSERT INTO t (a) VALUES (')''(')", g).unwrap(), "INSERT INTO t (a) SELECT ')''(' WHERE EXISTS (SELECT 1 FROM c1)");
        assert_eq!(guarded("INSERT INTO t (a) VALUES ($1), ($2)", g), None, "two rows");
        assert_eq!(guarded("INSERT INTO t (a) SELECT a FROM u", g), None, "no VALUES");
        assert_eq!(
            guarded("UPDATE t SET a = $2 WHERE b = $1 OR c IS NULL", g).unwrap(),
            "UPDATE t SET a = $2 WHERE EXISTS (SELECT 1 FROM c1) AND (b = $1 OR c IS NULL)"
        );
        assert_eq!(
            guarded("UPDATE t SET a = (SELECT x FROM u WHERE y = 1) WHERE b = ' WHERE '", g).unwrap(),
            "UPDATE t SET a = (SELECT x FROM u WHERE y = 1) WHERE EXISTS (SELECT 1 FROM c1) AND (b = ' WHERE ')"
        );
        assert_eq!(guarded("DELETE FROM t", g).unwrap(), "DELETE FROM t WHERE EXISTS (SELECT 1 FROM c1)");
        assert_eq!(guarded("DELETE FROM t\nWHERE\ta = 'é'", g).unwrap(), "DELETE FROM t\nWHERE EXISTS (SELECT 1 FROM c1) AND (a = 'é')");
        assert_eq!(guarded("INSERT INTO t (a)\nvalues($1)", g).unwrap(), "INSERT INTO t (a)\nSELECT $1 WHERE EXISTS (SELECT 1 FROM c1)");
        assert_eq!(guarded("UPDATE t SET a = 1 WHERE b = 1 WHERE c = 2", g), None, "two WHEREs");
        assert_eq!(guarded("SELECT 1", g), None);
        assert_eq!(guarded("INSERT INTO t (a, b) VALUES ($1, DEFAULT)", g), None, "DEFAULT");
        assert_eq!(super::params("UPDATE t SET a = E'\\'' WHERE b = $1"), None, "a backslash escape");

        let mut batch = Batch::default();
        let args = |n: usize| {
            let mut args = sqlx::any::AnyArguments::default();
            args.values.0.extend((0..n).map(|i| sqlx_core::any::AnyValueKind::BigInt(i as i64)));
            args
        };
        batch.stmts.push(("INSERT INTO a (k) VALUES ($1) ON CONFLICT DO NOTHING".into(), args(1)));
        batch.stmts.push(("UPDATE b SET v = $2 WHERE k = $1".into(), args(2)));
        let sql = batch.chain_statement().unwrap();
        let mut dependent = Batch::default();
        dependent.stmts.push(("INSERT INTO a (k) VALUES ($1) ON CONFLICT DO NOTHING".into(), args(1)));
        dependent.stmts.push(("UPDATE A SET v = $2 WHERE k = $1".into(), args(2)));
        assert!(dependent.chain_statement().is_none(), "the second would not see the first's row");
        assert_eq!(super::target("INSERT INTO \"public\".\"Flows\"(a) VALUES ($1)").as_deref(), Some("flows"));
        assert_eq!(
            sql,
            "WITH c1 AS (INSERT INTO a (k) VALUES ($1) ON CONFLICT DO NOTHING RETURNING 1), \
             c2 AS (UPDATE b SET v = $3 WHERE EXISTS (SELECT 1 FROM c1) AND (k = $2) RETURNING 1) \
             SELECT (SELECT count(*) FROM c1), (SELECT count(*) FROM c2)"
        );
        assert_eq!(batch.into_arguments().values.0.len(), 3);
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
