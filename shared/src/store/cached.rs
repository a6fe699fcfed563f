//! Prepared statements kept for the length of one transaction. The processor runs the same dozen
//! statements for every event of a batch; preparing each one once instead of per call took SQL parsing off
//! the top of the profile.

use std::collections::HashMap;

use libsql::params::IntoParams;

use super::Result;

pub(super) struct Cached<'c> {
    conn: &'c libsql::Connection,
    statements: HashMap<&'static str, libsql::Statement>,
}

impl<'c> Cached<'c> {
    pub fn new(conn: &'c libsql::Connection) -> Self {
        Self {
            conn,
            statements: HashMap::new(),
        }
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

    /// Runs a statement; returns the number of rows it changed.
    pub async fn execute(&mut self, sql: &'static str, params: impl IntoParams) -> Result<u64> {
        Ok(self.statement(sql).await?.execute(params).await? as u64)
    }

    /// The first row's columns as values, if there is a row.
    pub async fn first_row(
        &mut self,
        sql: &'static str,
        params: impl IntoParams,
    ) -> Result<Option<Vec<libsql::Value>>> {
        let statement = self.statement(sql).await?;
        let mut rows = statement.query(params).await?;
        let values = match rows.next().await? {
            Some(row) => Some(
                (0..row.column_count())
                    .map(|i| row.get_value(i))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => None,
        };
        drop(rows);
        // A statement left mid-result would keep the transaction from committing.
        statement.reset();
        Ok(values)
    }

    pub fn last_insert_rowid(&self) -> i64 {
        self.conn.last_insert_rowid()
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
