//! A SQLite connection as the store's [`Db`]: every statement runs at once
//! on the calling thread (the writer's or a reader's), from a cache of
//! prepared statements, and its future is complete when returned.

use std::collections::HashMap;
use std::future::{Future, ready};
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use rusqlite::types::{Null, ValueRef};
use rusqlite::{Connection, ErrorCode};
use switchboard_store::{HandOff, StoreError};
use switchboard_store_sql::{
    Arg, DatabaseErrorKind, Db, Effects, Failure, HandOffTerms, Outcome, Row, Value,
};

use crate::dialect;

/// How many prepared statements each connection keeps.
const STATEMENT_CACHE: usize = 256;

/// A connection of the writer or of a reader.
pub struct SqliteConn {
    conn: Connection,
    /// Each statement text as SQLite reads it, and its columns. Every
    /// statement run looks its text up here, so the texts (up to a few
    /// hundred bytes) are hashed with foldhash: the standard library's
    /// SipHash was 3 % of the instructions of a delivered message.
    statements: Statements,
    effects: Effects,
    /// Where the writer hands deliveries off to, once the workers ask.
    hand_off: Arc<OnceLock<HandOff>>,
}

type Statements = HashMap<Box<str>, Statement, foldhash::fast::RandomState>;

struct Statement {
    sql: Box<str>,
    columns: Option<Arc<[Box<str>]>>,
    /// For an `UPDATE` run by [`Db::update_returning`]: the column read
    /// back, and the query that reads it from the updated row, as SQLite
    /// reads it.
    read_back: Option<(Box<str>, Box<str>)>,
}

impl SqliteConn {
    pub fn new(conn: Connection) -> Self {
        Self::handing_off(conn, Arc::default())
    }

    /// The writer's connection: its changes hand deliveries off to where
    /// `hand_off` is set to.
    pub fn handing_off(conn: Connection, hand_off: Arc<OnceLock<HandOff>>) -> Self {
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        SqliteConn {
            conn,
            statements: Statements::default(),
            effects: Effects::default(),
            hand_off,
        }
    }

    /// Where committed hand-offs go, once the workers asked for them.
    pub fn hand_off_target(&self) -> Option<&HandOff> {
        self.hand_off.get()
    }

    /// The connection itself, for statements that bind nothing.
    pub fn raw(&self) -> &Connection {
        &self.conn
    }

    /// Runs one statement that binds nothing (`BEGIN`, `SAVEPOINT …`), from
    /// the cache of prepared statements.
    pub fn control(&self, sql: &str) -> Outcome<()> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut statement| statement.raw_execute())
            .map(drop)
            .map_err(failure)
    }

    /// Where the effects of the open transaction stand, to rewind to.
    pub fn effects_mark(&self) -> (usize, bool, usize) {
        (
            self.effects.events.len(),
            self.effects.queued_deliveries,
            self.effects.handed_off.len(),
        )
    }

    /// Forgets the effects recorded since `mark` (a change rolled back).
    pub fn rewind_effects(&mut self, (events, queued, handed_off): (usize, bool, usize)) {
        self.effects.events.truncate(events);
        self.effects.queued_deliveries = queued;
        self.effects.handed_off.truncate(handed_off);
    }

    /// What the open transaction did so far, taken away.
    pub fn take_effects(&mut self) -> Effects {
        std::mem::take(&mut self.effects)
    }

    fn execute_now(&mut self, sql: &str, args: Vec<Arg<'_>>) -> Outcome<u64> {
        let translated = &*statement_of(&mut self.statements, sql).sql;
        execute_translated(&self.conn, translated, args)
    }

    fn fetch_now(&mut self, sql: &str, args: Vec<Arg<'_>>) -> Outcome<Vec<Row>> {
        let entry = statement_of(&mut self.statements, sql);
        let translated = &*entry.sql;
        let mut statement = self.conn.prepare_cached(translated).map_err(failure)?;
        let columns = entry
            .columns
            .get_or_insert_with(|| {
                statement
                    .column_names()
                    .into_iter()
                    .map(Box::from)
                    .collect()
            })
            .clone();
        bind(&mut statement, args)?;
        let mut rows = statement.raw_query();
        let mut read = Vec::new();
        while let Some(row) = rows.next().map_err(failure)? {
            let mut values = Vec::with_capacity(columns.len());
            for index in 0..columns.len() {
                values.push(value(row.get_ref(index).map_err(failure)?)?);
            }
            read.push(Row::new(columns.clone(), values));
        }
        Ok(read)
    }

    fn update_returning_now(
        &mut self,
        update: &str,
        column: &str,
        args: Vec<Arg<'_>>,
    ) -> Outcome<i64> {
        let entry = statement_of(&mut self.statements, update);
        let read_back = match &entry.read_back {
            Some((read, query)) if &**read == column => query,
            _ => {
                let query = read_back_of(update, column)?.into();
                &entry.read_back.insert((column.into(), query)).1
            }
        };
        let changed = execute_translated(&self.conn, &entry.sql, args.clone())?;
        if changed != 1 {
            return Err(Failure::backend(format!(
                "the update of one row changed {changed}"
            )));
        }
        let mut statement = self.conn.prepare_cached(read_back).map_err(failure)?;
        // The key's parameters only: SQLite refuses a parameter beyond the
        // last one a statement has.
        let parameters = statement.parameter_count();
        bind(&mut statement, args.into_iter().take(parameters).collect())?;
        let mut rows = statement.raw_query();
        match rows.next().map_err(failure)? {
            Some(row) => row.get::<_, i64>(0).map_err(failure),
            None => Err(Failure::backend("the updated row was not found again")),
        }
    }
}

/// Runs a statement already in SQLite's dialect; the number of rows it changed.
fn execute_translated(conn: &Connection, translated: &str, args: Vec<Arg<'_>>) -> Outcome<u64> {
    let mut statement = conn.prepare_cached(translated).map_err(failure)?;
    bind(&mut statement, args)?;
    let changed = statement.raw_execute().map_err(failure)?;
    Ok(changed as u64)
}

/// The query that reads `column` of the row `update` (`UPDATE table SET …
/// WHERE key`) changed, by the same key, as SQLite reads it.
fn read_back_of(update: &str, column: &str) -> Outcome<String> {
    let shape = || {
        let table = update.strip_prefix("UPDATE ")?.split(' ').next()?;
        let (_, key) = update.rsplit_once(" WHERE ")?;
        Some(format!("SELECT {column} FROM {table} WHERE {key}"))
    };
    let query = shape().ok_or_else(|| {
        Failure::backend(format!("not an update of one row by its key: {update}"))
    })?;
    Ok(dialect::translate(&query))
}

/// The statement `sql` as SQLite reads it, translated the first time.
fn statement_of<'a>(statements: &'a mut Statements, sql: &str) -> &'a mut Statement {
    if !statements.contains_key(sql) {
        let translated = dialect::translate(sql);
        statements.insert(
            sql.into(),
            Statement {
                sql: translated.into(),
                columns: None,
                read_back: None,
            },
        );
    }
    statements.get_mut(sql).expect("inserted above")
}

impl Db for SqliteConn {
    fn execute(
        &mut self,
        sql: &str,
        args: Vec<Arg<'_>>,
    ) -> impl Future<Output = Outcome<u64>> + Send {
        ready(self.execute_now(sql, args))
    }

    fn fetch(
        &mut self,
        sql: &str,
        args: Vec<Arg<'_>>,
    ) -> impl Future<Output = Outcome<Vec<Row>>> + Send {
        ready(self.fetch_now(sql, args))
    }

    /// The row id the insert used: the `id` of a table whose key is an
    /// `INTEGER PRIMARY KEY`.
    fn insert_returning_id(
        &mut self,
        insert: &str,
        args: Vec<Arg<'_>>,
    ) -> impl Future<Output = Outcome<i64>> + Send {
        ready(
            self.execute_now(insert, args)
                .map(|_| self.conn.last_insert_rowid()),
        )
    }

    /// Runs the update, then reads the row back by its key: see
    /// [`Db::update_returning`].
    fn update_returning(
        &mut self,
        update: &str,
        column: &str,
        args: Vec<Arg<'_>>,
    ) -> impl Future<Output = Outcome<i64>> + Send {
        ready(self.update_returning_now(update, column, args))
    }

    fn effects(&mut self) -> &mut Effects {
        &mut self.effects
    }

    fn hand_off(&self) -> Option<HandOffTerms> {
        self.hand_off.get().map(|hand_off| HandOffTerms {
            lease_micros: hand_off.lease_micros,
            default_max_in_flight: hand_off.default_max_in_flight,
        })
    }

    /// One writer at a time: a change holds the whole database.
    fn lock_channels(&mut self, _channels: &[&str]) -> impl Future<Output = Outcome<()>> + Send {
        ready(Ok(()))
    }

    fn lane_tables(&self) -> &'static [&'static str] {
        &["delivery_lanes"]
    }

    fn lanes(&self) -> &'static str {
        "delivery_lanes l"
    }

    fn storage_size_query(&self) -> &'static str {
        "SELECT c.page_count * s.page_size, f.freelist_count * s.page_size \
         FROM pragma_page_count() c, pragma_page_size() s, pragma_freelist_count() f"
    }
}

fn bind(statement: &mut rusqlite::CachedStatement<'_>, args: Vec<Arg<'_>>) -> Outcome<()> {
    for (index, arg) in args.into_iter().enumerate() {
        let index = index + 1;
        let bound = match arg {
            Arg::Int(Some(n)) => statement.raw_bind_parameter(index, n),
            Arg::Real(Some(x)) => statement.raw_bind_parameter(index, x),
            Arg::Bool(Some(b)) => statement.raw_bind_parameter(index, i64::from(b)),
            Arg::Text(Some(text)) => statement.raw_bind_parameter(index, text),
            Arg::Blob(Some(bytes)) => statement.raw_bind_parameter(index, bytes),
            Arg::Int(None)
            | Arg::Real(None)
            | Arg::Bool(None)
            | Arg::Text(None)
            | Arg::Blob(None) => statement.raw_bind_parameter(index, Null),
            Arg::TextList(values) => {
                statement.raw_bind_parameter(index, serde_json::to_string(&values)?)
            }
            Arg::IntList(values) => {
                statement.raw_bind_parameter(index, serde_json::to_string(values)?)
            }
        };
        bound.map_err(failure)?;
    }
    Ok(())
}

fn value(value: ValueRef<'_>) -> Outcome<Value> {
    Ok(match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::Int(n),
        ValueRef::Real(x) => Value::Real(x),
        ValueRef::Text(bytes) => Value::Text(
            String::from_utf8(bytes.to_vec())
                .map_err(|err| Failure::Store(StoreError::Backend(Box::new(err))))?,
        ),
        ValueRef::Blob(bytes) => Value::Blob(bytes.to_vec()),
    })
}

/// A SQLite error, classified by its code.
pub fn failure(err: rusqlite::Error) -> Failure {
    let kind = match &err {
        rusqlite::Error::SqliteFailure(cause, _) => match cause.code {
            ErrorCode::ConstraintViolation
                if matches!(
                    cause.extended_code,
                    rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                        | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                ) =>
            {
                DatabaseErrorKind::UniqueViolation
            }
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::CannotOpen
            | ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure
            | ErrorCode::OutOfMemory
            | ErrorCode::ReadOnly => DatabaseErrorKind::Unavailable,
            _ => DatabaseErrorKind::Other,
        },
        _ => DatabaseErrorKind::Other,
    };
    Failure::database(kind, err)
}

/// Runs a future of the store's logic on SQLite to its end. Its statements
/// run synchronously, so it completes at the first poll; one that would wait
/// is a fault of the store and fails.
pub fn run_to_end<T>(future: impl Future<Output = Outcome<T>>) -> Outcome<T> {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(outcome) => outcome,
        Poll::Pending => Err(Failure::backend(
            "a store function waited on SQLite, where every statement completes at once",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEXT_SEQ: &str = "UPDATE counters SET seq = seq + 1, touched_at = $2 WHERE id = $1";

    fn counters() -> SqliteConn {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE counters (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, touched_at INTEGER);
             INSERT INTO counters (id, seq) VALUES ('a', 0), ('b', 40);",
        )
        .unwrap();
        SqliteConn::new(conn)
    }

    fn next_seq(conn: &mut SqliteConn, id: &str, at: i64) -> Outcome<i64> {
        run_to_end(conn.update_returning(
            NEXT_SEQ,
            "seq",
            vec![Arg::Text(Some(id)), Arg::Int(Some(at))],
        ))
    }

    #[test]
    fn an_update_returns_the_column_of_the_row_as_updated_and_changes_that_row_only() {
        let mut conn = counters();
        assert_eq!(next_seq(&mut conn, "a", 7).unwrap(), 1);
        assert_eq!(next_seq(&mut conn, "a", 8).unwrap(), 2);
        assert_eq!(next_seq(&mut conn, "b", 9).unwrap(), 41);
        let rows: Vec<(String, i64, i64)> = conn
            .raw()
            .prepare("SELECT id, seq, touched_at FROM counters ORDER BY id")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, [("a".to_owned(), 2, 8), ("b".to_owned(), 41, 9)]);
    }

    #[test]
    fn one_update_may_return_different_columns() {
        let mut conn = counters();
        assert_eq!(next_seq(&mut conn, "a", 7).unwrap(), 1);
        let touched = run_to_end(conn.update_returning(
            NEXT_SEQ,
            "touched_at",
            vec![Arg::Text(Some("a")), Arg::Int(Some(8))],
        ));
        assert_eq!(touched.unwrap(), 8);
        assert_eq!(next_seq(&mut conn, "a", 9).unwrap(), 3);
    }

    #[test]
    fn an_update_that_finds_no_row_fails_as_returning_would() {
        let mut conn = counters();
        let err = next_seq(&mut conn, "missing", 1).unwrap_err();
        assert!(format!("{err:?}").contains("changed 0"), "{err:?}");
    }

    #[test]
    fn the_read_back_selects_the_column_by_the_updates_key() {
        assert_eq!(
            read_back_of(NEXT_SEQ, "seq").unwrap(),
            "SELECT seq FROM counters WHERE id = ?1"
        );
        assert!(read_back_of("DELETE FROM counters WHERE id = $1", "seq").is_err());
        assert!(read_back_of("UPDATE counters SET seq = 0", "seq").is_err());
    }
}
