//! Prepared statements kept for the length of one transaction. The processor runs the same dozen
//! statements for every event of a batch; preparing each one once instead of per call took SQL parsing off
//! the top of the profile.
//!
//! On a libSQL server every statement is a round trip (Hrana over HTTP), and libsql's client has no call
//! that sends several statements with their parameters at once. There, writes whose result nobody reads
//! ([`Cached::write`]) wait in a buffer with their values written into the SQL ([`literal`]), and leave
//! with the next read ([`Cached::reads`] sends several) as one Hrana batch on the
//! connection's stream: in order, inside the same transaction, so the database ends the same as with one
//! request per statement. The transaction's BEGIN waits in that buffer too ([`Cached::begin_on_server`]),
//! so it leaves with the first reads, and [`Cached::send_with_commit`] sends the last writes with COMMIT:
//! a batch that reads everything it needs at once ([`Cached::read_ahead`]) takes two requests in all.

use std::collections::HashMap;

use libsql::params::{IntoParams, Params};

use super::{Result, StoreError};

pub(crate) struct Cached {
    /// The transaction's connection (a clone shares it: statements run inside the transaction).
    conn: libsql::Connection,
    statements: HashMap<&'static str, libsql::Statement>,
    /// On a server: the writes not sent yet, each a complete statement. `None` on a local file.
    pending: Option<Vec<String>>,
    /// On a server: reads sent ahead, by their statement, each answered once from here.
    ahead: HashMap<String, Rows>,
    /// On a server: BEGIN has been sent and neither COMMIT nor ROLLBACK yet.
    open: bool,
}

/// A read's rows, as values.
pub(crate) type Rows = Vec<Vec<libsql::Value>>;

impl Cached {
    /// Every statement runs when it is called (a local file: a call costs no round trip).
    pub fn new(conn: &libsql::Connection) -> Self {
        Self {
            conn: conn.clone(),
            statements: HashMap::new(),
            pending: None,
            ahead: HashMap::new(),
            open: false,
        }
    }

    /// A write transaction on a libSQL server, on `conn`'s own stream (a connection of its own: nothing
    /// else may run on it meanwhile). BEGIN IMMEDIATE waits with the writes and leaves with the first
    /// reads; writes wait for the next read or the commit. Dropped before
    /// [`Cached::send_with_commit`], the transaction is rolled back.
    pub fn begin_on_server(conn: &libsql::Connection) -> Self {
        let mut cached = Self::new(conn);
        cached.pending = Some(vec!["BEGIN IMMEDIATE".into()]);
        cached
    }

    async fn statement(&mut self, sql: &'static str) -> Result<&libsql::Statement> {
        if !self.statements.contains_key(sql) {
            let statement = self.conn.prepare(sql).await?;
            self.statements.insert(sql, statement);
        }
        let statement = &self.statements[sql];
        statement.reset();
        Ok(statement)
    }

    /// A write whose result is not needed: on a server it waits for the next read or the commit.
    pub async fn write(&mut self, sql: &'static str, params: impl IntoParams) -> Result<()> {
        match &mut self.pending {
            Some(pending) => pending.push(with_values(sql, params)?),
            None => {
                self.statement(sql).await?.execute(params).await?;
            }
        }
        Ok(())
    }

    /// On a server, sends the waiting writes and COMMIT in one request, closing the transaction's stream:
    /// the transaction's own `commit()` then has nothing left to send. On a local file, nothing (the
    /// caller commits).
    pub async fn send_with_commit(mut self) -> Result<()> {
        if let Some(pending) = &mut self.pending {
            pending.push("COMMIT".into());
            self.send(Vec::new()).await?;
            // Sent whole, the COMMIT ended the transaction; a failed step before it skips it, and closing
            // the stream (libsql closes it with a COMMIT) rolls it back.
            self.open = false;
        }
        Ok(())
    }

    /// The waiting writes, then `reads`, in one request; the rows of each of `reads`.
    async fn send(&mut self, reads: Vec<String>) -> Result<Vec<Rows>> {
        let mut statements = self
            .pending
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        // From here the server may hold the write lock until the transaction ends.
        self.open |= statements.first().is_some_and(|s| s.starts_with("BEGIN"));
        let writes = statements.len();
        statements.extend(reads);
        // A newline before each `;`: a statement ending in a `--` comment would swallow it.
        let mut results = self.conn.execute_batch(&statements.join("\n;\n")).await?;
        let mut out = Vec::new();
        let mut step = 0;
        while let Some(rows) = results.next_stmt_row() {
            if step >= writes {
                out.push(match rows {
                    Some(rows) => collect(rows).await?,
                    None => Vec::new(),
                });
            }
            step += 1;
        }
        Ok(out)
    }

    /// Runs a statement; returns the number of rows it changed.
    pub async fn execute(&mut self, sql: &'static str, params: impl IntoParams) -> Result<u64> {
        if let Some(pending) = &mut self.pending {
            pending.push(with_values(sql, params)?);
            let changed = self.send(vec!["SELECT changes()".into()]).await?;
            let first = changed.first().and_then(|rows| rows.first());
            return Ok(match first.and_then(|row| row.first()) {
                Some(libsql::Value::Integer(n)) => *n as u64,
                _ => 0,
            });
        }
        Ok(self.statement(sql).await?.execute(params).await? as u64)
    }

    /// Reads whose answers the transaction will ask for later, sent now (on a server, with the waiting
    /// writes, in one request): a later identical read is answered from here, once, without a request. Only
    /// for reads that nothing written in between changes. On a local file, nothing (a read costs no trip).
    pub async fn read_ahead(
        &mut self,
        queries: Vec<(&'static str, Vec<libsql::Value>)>,
    ) -> Result<()> {
        if self.pending.is_none() || queries.is_empty() {
            return Ok(());
        }
        let statements = statements(queries)?;
        let rows = self.send(statements.clone()).await?;
        self.ahead.extend(statements.into_iter().zip(rows));
        Ok(())
    }

    /// Several reads at once (on a server, in one request with the waiting writes, less those read
    /// ahead); each one's rows.
    pub async fn reads(
        &mut self,
        queries: Vec<(&'static str, Vec<libsql::Value>)>,
    ) -> Result<Vec<Rows>> {
        if self.pending.is_some() && !queries.is_empty() {
            let statements = statements(queries)?;
            let unanswered: Vec<String> = statements
                .iter()
                .filter(|s| !self.ahead.contains_key(*s))
                .cloned()
                .collect();
            let mut sent = match unanswered.is_empty() {
                // Every answer is here: the waiting writes keep waiting.
                true => Vec::new(),
                false => self.send(unanswered).await?,
            }
            .into_iter();
            return Ok(statements
                .iter()
                .map(|s| match self.ahead.remove(s) {
                    Some(rows) => rows,
                    None => sent.next().unwrap_or_default(),
                })
                .collect());
        }
        let mut all = Vec::with_capacity(queries.len());
        for (sql, params) in queries {
            all.push(self.local_rows(sql, params).await?);
        }
        Ok(all)
    }

    /// Every row a statement returns, as values (on a server, sent with the waiting writes).
    pub async fn rows(&mut self, sql: &'static str, params: impl IntoParams) -> Result<Rows> {
        if self.pending.is_some() {
            let read = vec![(sql, positional(params)?)];
            return Ok(self.reads(read).await?.pop().unwrap_or_default());
        }
        self.local_rows(sql, params).await
    }

    /// Every row of a statement run now (a local file).
    async fn local_rows(&mut self, sql: &'static str, params: impl IntoParams) -> Result<Rows> {
        let statement = self.statement(sql).await?;
        let rows = collect(statement.query(params).await?).await;
        // A statement left mid-result would keep the transaction from committing.
        statement.reset();
        rows
    }

    /// The first row's columns as values, if there is a row.
    pub async fn first_row(
        &mut self,
        sql: &'static str,
        params: impl IntoParams,
    ) -> Result<Option<Vec<libsql::Value>>> {
        Ok(self.rows(sql, params).await?.into_iter().next())
    }

    /// The first row's first column as an integer, if there is a row.
    pub async fn first_i64(
        &mut self,
        sql: &'static str,
        params: impl IntoParams,
    ) -> Result<Option<i64>> {
        Ok(
            match self
                .first_row(sql, params)
                .await?
                .and_then(|row| row.into_iter().next())
            {
                Some(libsql::Value::Integer(n)) => Some(n),
                _ => None,
            },
        )
    }
}

/// A transaction left open on the server (an error before its commit) is rolled back now rather than when
/// the server expires its stream, which would hold the write lock until then. Best effort, as libsql's own
/// transactions do it: the stream's expiry rolls it back anyway.
impl Drop for Cached {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let conn = self.conn.clone();
            runtime.spawn(async move {
                let _ = conn.execute("ROLLBACK", ()).await;
            });
        }
    }
}

/// Statements with their values written in, as a server receives them.
fn statements(queries: Vec<(&'static str, Vec<libsql::Value>)>) -> Result<Vec<String>> {
    queries
        .into_iter()
        .map(|(sql, params)| with_values(sql, params))
        .collect()
}

/// The lake registers a batch's files in the batch's own transaction, its writes batched with the rest.
impl crate::lake::CatalogTx for Cached {
    async fn write(
        &mut self,
        sql: &'static str,
        params: impl IntoParams + Send,
    ) -> Result<(), crate::lake::LakeError> {
        Ok(Cached::write(self, sql, params).await?)
    }

    async fn reads(
        &mut self,
        queries: Vec<(&'static str, Vec<libsql::Value>)>,
    ) -> Result<Vec<Rows>, crate::lake::LakeError> {
        Ok(Cached::reads(self, queries).await?)
    }
}

async fn collect(mut rows: libsql::Rows) -> Result<Rows> {
    let mut all = Vec::new();
    while let Some(row) = rows.next().await? {
        all.push(
            (0..row.column_count())
                .map(|i| row.get_value(i))
                .collect::<Result<Vec<_>, _>>()?,
        );
    }
    Ok(all)
}

/// The values of positional parameters (the only kind a batched statement takes).
fn positional(params: impl IntoParams) -> Result<Vec<libsql::Value>> {
    match params.into_params()? {
        Params::None => Ok(Vec::new()),
        Params::Positional(values) => Ok(values),
        Params::Named(_) => Err(StoreError::Invalid(
            "named parameters in a batched statement".into(),
        )),
    }
}

/// `sql` with each `?N` (or bare `?`) replaced by its value as an SQL literal. Quoted text and comments in
/// `sql` (always Splat's own constant text) are copied as they are.
fn with_values(sql: &str, params: impl IntoParams) -> Result<String> {
    let values = positional(params)?;
    let mut out = String::with_capacity(sql.len() + 64);
    let (mut chars, mut previous) = (sql.chars().peekable(), 0usize);
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push(c);
                for inner in chars.by_ref() {
                    out.push(inner);
                    if inner == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for inner in chars.by_ref() {
                    out.push(inner);
                    if inner == '\n' {
                        break;
                    }
                }
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.next_if(char::is_ascii_digit) {
                    digits.push(d);
                }
                let index = if digits.is_empty() {
                    previous + 1
                } else {
                    digits.parse().unwrap_or(0)
                };
                let value = index
                    .checked_sub(1)
                    .and_then(|i| values.get(i))
                    .ok_or_else(|| {
                        StoreError::Invalid(format!("no value for parameter {index} of {sql}"))
                    })?;
                literal(value, &mut out);
                previous = previous.max(index);
            }
            _ => out.push(c),
        }
    }
    Ok(out)
}

/// A value as an SQL literal that reads back as the same value, whatever the bytes (the values come
/// from the network): text is quoted with its quotes doubled, or hex when it holds a NUL, which would
/// end the statement's text.
fn literal(value: &libsql::Value, out: &mut String) {
    use libsql::Value;
    use std::fmt::Write;
    let hex = |bytes: &[u8], out: &mut String| {
        out.push_str("X'");
        for b in bytes {
            let _ = write!(out, "{b:02X}");
        }
        out.push('\'');
    };
    match value {
        Value::Null => out.push_str("NULL"),
        // i64::MIN has no positive counterpart to negate.
        Value::Integer(i64::MIN) => out.push_str("(-9223372036854775807 - 1)"),
        Value::Integer(n) => {
            let _ = write!(out, "({n})");
        }
        // SQLite binds NaN as NULL; the infinities are what its parser makes of an overflowing literal.
        Value::Real(f) if f.is_nan() => out.push_str("NULL"),
        Value::Real(f) if f.is_infinite() => {
            out.push_str(if *f > 0.0 { "9e999" } else { "(-9e999)" })
        }
        Value::Real(f) => {
            let _ = write!(out, "({f:?})");
        }
        Value::Text(s) if s.contains('\0') => {
            out.push_str("CAST(");
            hex(s.as_bytes(), out);
            out.push_str(" AS TEXT)");
        }
        Value::Text(s) => {
            out.push('\'');
            out.push_str(&s.replace('\'', "''"));
            out.push('\'');
        }
        Value::Blob(b) => hex(b, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libsql::Value;

    #[test]
    fn values_are_written_in_place_of_their_parameters() {
        let sql = with_values(
            "INSERT INTO t VALUES (?1, ?3, '?2 -- it''s', ?2) -- ?9\n ON CONFLICT DO UPDATE SET a = ?",
            libsql::params![7, "o'k; DROP TABLE t", vec![0u8, 255], -1.5],
        )
        .unwrap();
        assert_eq!(
            sql,
            "INSERT INTO t VALUES ((7), X'00FF', '?2 -- it''s', 'o''k; DROP TABLE t') -- ?9\n ON CONFLICT DO UPDATE SET a = (-1.5)"
        );
        let err = with_values("SELECT ?2", [1]).unwrap_err().to_string();
        assert!(err.contains("no value for parameter 2"), "{err}");
    }

    /// Every literal reads back as the value it came from would when bound, in a real SQLite (text with a
    /// NUL reads back cut at the NUL either way).
    #[tokio::test]
    async fn literals_read_back_as_their_values() {
        let db = libsql::Builder::new_local(":memory:")
            .build()
            .await
            .unwrap();
        let conn = db.connect().unwrap();
        let values = [
            Value::Null,
            Value::Integer(i64::MIN),
            Value::Integer(i64::MAX),
            Value::Integer(-3),
            Value::Real(-0.1),
            Value::Real(1e300),
            Value::Real(f64::INFINITY),
            Value::Real(f64::NEG_INFINITY),
            Value::Text("a'b\"c\0d\n-- ;é".into()),
            Value::Text(String::new()),
            Value::Text("it's -- ; \"x\" ?1".into()),
            Value::Blob(vec![]),
            Value::Blob(vec![0, 1, 254, 255]),
        ];
        for value in values {
            let mut sql = String::from("SELECT ?1, ");
            literal(&value, &mut sql);
            let mut rows = conn.query(&sql, [value.clone()]).await.unwrap();
            let row = rows.next().await.unwrap().unwrap();
            let (bound, written) = (row.get_value(0).unwrap(), row.get_value(1).unwrap());
            assert_eq!(written, bound, "{sql}");
            if !matches!(&value, Value::Text(t) if t.contains('\0')) {
                assert_eq!(written, value, "{sql}");
            }
        }
        let mut sql = String::from("SELECT ");
        literal(&Value::Real(f64::NAN), &mut sql);
        assert_eq!(sql, "SELECT NULL");
    }
}
