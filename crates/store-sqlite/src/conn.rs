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
        let mut statement = self.conn.prepare_cached(translated).map_err(failure)?;
        bind(&mut statement, args)?;
        let changed = statement.raw_execute().map_err(failure)?;
        Ok(changed as u64)
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

    fn leased_heads(&self, integration: &str) -> String {
        format!(
            "SELECT head_id FROM delivery_lanes WHERE integration_id = {integration} AND lease_until IS NOT NULL"
        )
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
        Poll::Pending => Err(Failure::Store(StoreError::Backend(
            "a store function waited on SQLite, where every statement completes at once".into(),
        ))),
    }
}
