//! The transaction trait the store's logic is written against, and the values
//! that cross it.
//!
//! Every function of this crate takes `&mut impl Db`: a connection with a
//! transaction open (a change) or a read connection (a query). A backend
//! implements [`Db`] for its connection:
//!
//! - PostgreSQL (sqlx on tokio): each call sends the statement and awaits the
//!   answer.
//! - SQLite (rusqlite on the store's own threads): each call runs the
//!   statement at once and returns a future that is already complete, so the
//!   writer thread runs a whole transaction without yielding.
//!
//! SQL is written once, in PostgreSQL's dialect (`$1` placeholders, `= ANY($1)`
//! for a list parameter, `LEAST`/`GREATEST`); the SQLite backend translates
//! the few constructs SQLite spells otherwise when it first prepares a
//! statement (see its `dialect` module). Row locks and lane tables, which only
//! PostgreSQL has, are backend hooks, not SQL here.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use switchboard_protocol::EventType;

use crate::failure::{Failure, Outcome};

/// A statement parameter. Nulls carry their type: PostgreSQL types each
/// parameter of a prepared statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg<'a> {
    Int(Option<i64>),
    Real(Option<f64>),
    Bool(Option<bool>),
    Text(Option<&'a str>),
    Blob(Option<&'a [u8]>),
    /// A list, compared with `= ANY($n)`.
    TextList(Vec<&'a str>),
    /// A list, compared with `= ANY($n)`.
    IntList(&'a [i64]),
}

/// A value that binds as a statement parameter.
pub trait ToArg {
    /// The null of this type (for `None`).
    const NULL: Arg<'static>;
    fn to_arg(&self) -> Arg<'_>;
}

macro_rules! int_arg {
    ($($ty:ty),*) => {$(
        impl ToArg for $ty {
            const NULL: Arg<'static> = Arg::Int(None);
            fn to_arg(&self) -> Arg<'_> {
                Arg::Int(Some(i64::from(*self)))
            }
        }
    )*};
}
int_arg!(i64, i32, u32, u16);

impl ToArg for bool {
    const NULL: Arg<'static> = Arg::Bool(None);
    fn to_arg(&self) -> Arg<'_> {
        Arg::Bool(Some(*self))
    }
}

impl ToArg for f64 {
    const NULL: Arg<'static> = Arg::Real(None);
    fn to_arg(&self) -> Arg<'_> {
        Arg::Real(Some(*self))
    }
}

impl ToArg for str {
    const NULL: Arg<'static> = Arg::Text(None);
    fn to_arg(&self) -> Arg<'_> {
        Arg::Text(Some(self))
    }
}

impl ToArg for String {
    const NULL: Arg<'static> = Arg::Text(None);
    fn to_arg(&self) -> Arg<'_> {
        Arg::Text(Some(self))
    }
}

impl ToArg for [u8] {
    const NULL: Arg<'static> = Arg::Blob(None);
    fn to_arg(&self) -> Arg<'_> {
        Arg::Blob(Some(self))
    }
}

impl ToArg for Vec<u8> {
    const NULL: Arg<'static> = Arg::Blob(None);
    fn to_arg(&self) -> Arg<'_> {
        Arg::Blob(Some(self))
    }
}

impl ToArg for [String] {
    const NULL: Arg<'static> = Arg::TextList(Vec::new());
    fn to_arg(&self) -> Arg<'_> {
        Arg::TextList(self.iter().map(String::as_str).collect())
    }
}

impl ToArg for Vec<String> {
    const NULL: Arg<'static> = Arg::TextList(Vec::new());
    fn to_arg(&self) -> Arg<'_> {
        self.as_slice().to_arg()
    }
}

impl ToArg for [&str] {
    const NULL: Arg<'static> = Arg::TextList(Vec::new());
    fn to_arg(&self) -> Arg<'_> {
        Arg::TextList(self.to_vec())
    }
}

impl ToArg for Vec<&str> {
    const NULL: Arg<'static> = Arg::TextList(Vec::new());
    fn to_arg(&self) -> Arg<'_> {
        Arg::TextList(self.clone())
    }
}

impl ToArg for [i64] {
    const NULL: Arg<'static> = Arg::IntList(&[]);
    fn to_arg(&self) -> Arg<'_> {
        Arg::IntList(self)
    }
}

impl ToArg for Vec<i64> {
    const NULL: Arg<'static> = Arg::IntList(&[]);
    fn to_arg(&self) -> Arg<'_> {
        Arg::IntList(self)
    }
}

impl<T: ToArg + ?Sized> ToArg for &T {
    const NULL: Arg<'static> = T::NULL;
    fn to_arg(&self) -> Arg<'_> {
        (**self).to_arg()
    }
}

impl<T: ToArg> ToArg for Option<T> {
    const NULL: Arg<'static> = T::NULL;
    fn to_arg(&self) -> Arg<'_> {
        match self {
            Some(value) => value.to_arg(),
            None => T::NULL,
        }
    }
}

/// The parameters of a statement, in the order of `$1`, `$2`, …
#[macro_export]
macro_rules! args {
    ($($arg:expr),* $(,)?) => {
        vec![$($crate::db::ToArg::to_arg(&$arg)),*]
    };
}

/// The text of a statement whose SQL depends on a count (the rows of a
/// multi-row insert, one key or a list of them), built the first time and
/// then kept: `kind` names the statement, `shape` the variable part (the
/// number of rows, or which lists hold one key). A statement runs at every
/// send; building its text each time (formatting and allocating) showed in
/// the SQLite writer's profile, which every change waits for. Shapes past
/// [`KEPT_SHAPES`] are built each time.
pub(crate) fn statement_text(
    kind: &'static str,
    shape: usize,
    build: impl FnOnce() -> String,
) -> Arc<str> {
    static TEXTS: LazyLock<Mutex<StatementTexts>> = LazyLock::new(Default::default);
    if shape > KEPT_SHAPES {
        return build().into();
    }
    let mut texts = TEXTS.lock().unwrap_or_else(PoisonError::into_inner);
    texts
        .entry((kind, shape))
        .or_insert_with(|| build().into())
        .clone()
}

/// Statement texts by kind and shape.
type StatementTexts = HashMap<(&'static str, usize), Arc<str>>;

/// The most shapes of one statement whose texts are kept (a group of sends
/// has at most 64 messages; their deliveries are more where channels have
/// several bots).
pub(crate) const KEPT_SHAPES: usize = 512;

/// `rows` parenthesized rows of `width` placeholders each, numbered on:
/// `($1, $2), ($3, $4)`.
pub(crate) fn value_rows(rows: usize, width: usize) -> String {
    use std::fmt::Write;
    let mut sql = String::with_capacity(rows * width * 5);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..width {
            if column > 0 {
                sql.push_str(", ");
            }
            let _ = write!(sql, "${}", row * width + column + 1);
        }
        sql.push(')');
    }
    sql
}

/// A value read from a row.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// One row of an answer: its values in column order, read one after another.
#[derive(Debug)]
pub struct Row {
    columns: Arc<[Box<str>]>,
    values: std::vec::IntoIter<Value>,
    next: usize,
}

impl Row {
    pub fn new(columns: Arc<[Box<str>]>, values: Vec<Value>) -> Self {
        Row {
            columns,
            values: values.into_iter(),
            next: 0,
        }
    }

    /// The next column's value.
    pub fn column<T: FromValue>(&mut self) -> Outcome<T> {
        let column = self.next;
        self.next += 1;
        let value = self
            .values
            .next()
            .ok_or_else(|| decode_error(format!("the row has no column {}", column + 1)))?;
        T::from_value(value).map_err(|err| {
            decode_error(format!(
                "column {:?}: {err}",
                self.columns.get(column).map_or("?", |name| name)
            ))
        })
    }

    /// The next column's value, which must be the column `name` (rows read
    /// into structs check that their query selects their fields in order).
    pub fn named<T: FromValue>(&mut self, name: &str) -> Outcome<T> {
        match self.columns.get(self.next) {
            Some(column) if &**column == name => self.column(),
            other => Err(decode_error(format!(
                "expected column {name:?} at position {}, found {other:?}",
                self.next + 1
            ))),
        }
    }
}

fn decode_error(message: String) -> Failure {
    Failure::backend(message)
}

/// A type read from one column.
pub trait FromValue: Sized {
    fn from_value(value: Value) -> Result<Self, String>;
}

impl FromValue for i64 {
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Int(n) => Ok(n),
            other => Err(format!("expected an integer, found {other:?}")),
        }
    }
}

macro_rules! narrow_int_value {
    ($($ty:ty),*) => {$(
        impl FromValue for $ty {
            fn from_value(value: Value) -> Result<Self, String> {
                let wide = i64::from_value(value)?;
                <$ty>::try_from(wide).map_err(|_| format!("{wide} is out of range"))
            }
        }
    )*};
}
narrow_int_value!(i32, u32, u16, u64);

impl FromValue for bool {
    fn from_value(value: Value) -> Result<Self, String> {
        Ok(i64::from_value(value)? != 0)
    }
}

impl FromValue for f64 {
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Real(x) => Ok(x),
            Value::Int(n) => Ok(n as f64),
            other => Err(format!("expected a number, found {other:?}")),
        }
    }
}

impl FromValue for String {
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Text(text) => Ok(text),
            other => Err(format!("expected text, found {other:?}")),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Blob(bytes) => Ok(bytes),
            Value::Text(text) => Ok(text.into_bytes()),
            other => Err(format!("expected bytes, found {other:?}")),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Null => Ok(None),
            value => T::from_value(value).map(Some),
        }
    }
}

/// A type read from a whole row.
pub trait FromRow: Sized {
    fn from_row(row: &mut Row) -> Outcome<Self>;
}

macro_rules! tuple_row {
    ($($name:ident),+) => {
        impl<$($name: FromValue),+> FromRow for ($($name,)+) {
            fn from_row(row: &mut Row) -> Outcome<Self> {
                Ok(($(row.column::<$name>()?,)+))
            }
        }
    };
}
tuple_row!(A);
tuple_row!(A, B);
tuple_row!(A, B, C);
tuple_row!(A, B, C, D);
tuple_row!(A, B, C, D, E);
tuple_row!(A, B, C, D, E, F);
tuple_row!(A, B, C, D, E, F, G);
tuple_row!(A, B, C, D, E, F, G, H);
tuple_row!(A, B, C, D, E, F, G, H, I);
tuple_row!(A, B, C, D, E, F, G, H, I, J);

/// Declares a struct read from a row whose columns are its fields, in order.
#[macro_export]
macro_rules! stored_row {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$field_meta:meta])* pub $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        pub struct $name { $($(#[$field_meta])* pub $field: $ty),* }

        impl $crate::db::FromRow for $name {
            fn from_row(row: &mut $crate::db::Row) -> $crate::failure::Outcome<Self> {
                Ok($name { $($field: row.named(stringify!($field))?),* })
            }
        }
    };
}

/// What a transaction did that matters once it commits: the events it
/// recorded (counted then) and whether it queued deliveries (the workers
/// are woken then).
#[derive(Debug, Default)]
pub struct Effects {
    pub events: Vec<EventType>,
    pub queued_deliveries: bool,
    /// Deliveries leased for this process's workers as they were queued.
    pub handed_off: Vec<switchboard_store::HandedOff>,
}

/// On what terms a connection's changes hand deliveries off to this
/// process's workers (see `DeliveryStore::hand_off_to`).
#[derive(Clone, Copy, Debug)]
pub struct HandOffTerms {
    pub lease_micros: i64,
    pub default_max_in_flight: u32,
}

impl Effects {
    /// Counts the events of a committed transaction.
    pub fn count_events(&self) {
        for event_type in &self.events {
            metrics::counter!("switchboard_events_created_total", "type" => event_type.as_str().to_owned())
                .increment(1);
        }
    }
}

/// A connection the store's logic runs statements on.
pub trait Db: Send {
    /// Runs a statement; the number of rows it changed.
    fn execute(
        &mut self,
        sql: &str,
        args: Vec<Arg<'_>>,
    ) -> impl Future<Output = Outcome<u64>> + Send;

    /// Runs a query; its rows.
    fn fetch(
        &mut self,
        sql: &str,
        args: Vec<Arg<'_>>,
    ) -> impl Future<Output = Outcome<Vec<Row>>> + Send;

    /// Runs `insert`, an `INSERT` of one row into a table whose key is an
    /// integer `id` the database numbers, and returns the new row's `id`.
    ///
    /// PostgreSQL appends `RETURNING id`. SQLite runs `RETURNING` through
    /// its trigger machinery, with a statement journal copying every page
    /// the statement touches: it reads the row id the insert just used
    /// instead (with `RETURNING`, the insert of a delivery took more of the
    /// writer's time than the insert of the message, a larger row with more
    /// indexes).
    fn insert_returning_id(
        &mut self,
        insert: &str,
        args: Vec<Arg<'_>>,
    ) -> impl Future<Output = Outcome<i64>> + Send {
        let returning = format!("{insert} RETURNING id");
        async move { self.scalar(&returning, args).await }
    }

    /// Runs `update`, an `UPDATE table SET … WHERE key` of one row whose
    /// key it does not change, and returns `column` of the row as updated.
    ///
    /// PostgreSQL appends `RETURNING column` (one round trip). SQLite's
    /// `RETURNING` gathers its rows in a temporary table made and dropped
    /// for every statement, about 19,000 instructions: on the channel's
    /// sequence, taken by every event, a tenth of the writer's work for a
    /// message with no bot. SQLite reads the row back by its key instead
    /// (about a third of that).
    fn update_returning(
        &mut self,
        update: &str,
        column: &str,
        args: Vec<Arg<'_>>,
    ) -> impl Future<Output = Outcome<i64>> + Send {
        let returning = format!("{update} RETURNING {column}");
        async move { self.scalar(&returning, args).await }
    }

    /// What the open transaction did so far.
    fn effects(&mut self) -> &mut Effects;

    /// Whether deliveries queued on idle lanes are leased and handed to this
    /// process's workers, and on what terms; `None` when they are not.
    fn hand_off(&self) -> Option<HandOffTerms> {
        None
    }

    /// Locks the rows of `channels` (ids in ascending order) until the
    /// transaction ends, as a change to them does. On a database with one
    /// writer at a time this does nothing.
    fn lock_channels(&mut self, channels: &[&str]) -> impl Future<Output = Outcome<()>> + Send;

    /// The tables holding a lane's state: rows of each are keyed by
    /// `(integration_id, lane)` and carry `due_at`.
    fn lane_tables(&self) -> &'static [&'static str];

    /// Every lane as one row, a `FROM` item named `l` with the columns
    /// `integration_id`, `lane`, `head_id`, `due_at` and `lease_until` (a
    /// lane's state is one row on SQLite, two tables on PostgreSQL).
    fn lanes(&self) -> &'static str;

    /// A query of one row: the bytes the database takes on disk, and how
    /// many of them are free for reuse.
    fn storage_size_query(&self) -> &'static str;

    fn fetch_all<T: FromRow + Send>(
        &mut self,
        sql: &str,
        args: Vec<Arg<'_>>,
    ) -> impl Future<Output = Outcome<Vec<T>>> + Send {
        async move {
            self.fetch(sql, args)
                .await?
                .into_iter()
                .map(|mut row| T::from_row(&mut row))
                .collect()
        }
    }

    fn fetch_optional<T: FromRow + Send>(
        &mut self,
        sql: &str,
        args: Vec<Arg<'_>>,
    ) -> impl Future<Output = Outcome<Option<T>>> + Send {
        async move {
            match self.fetch(sql, args).await?.into_iter().next() {
                Some(mut row) => T::from_row(&mut row).map(Some),
                None => Ok(None),
            }
        }
    }

    fn fetch_one<T: FromRow + Send>(
        &mut self,
        sql: &str,
        args: Vec<Arg<'_>>,
    ) -> impl Future<Output = Outcome<T>> + Send {
        async move {
            self.fetch_optional(sql, args)
                .await?
                .ok_or_else(|| decode_error("the query answered no row".to_owned()))
        }
    }

    /// The first column of every row.
    fn scalars<T: FromValue + Send>(
        &mut self,
        sql: &str,
        args: Vec<Arg<'_>>,
    ) -> impl Future<Output = Outcome<Vec<T>>> + Send {
        async move {
            let rows: Vec<(T,)> = self.fetch_all(sql, args).await?;
            Ok(rows.into_iter().map(|(value,)| value).collect())
        }
    }

    /// The first column of the first row, if there is a row.
    fn optional_scalar<T: FromValue + Send>(
        &mut self,
        sql: &str,
        args: Vec<Arg<'_>>,
    ) -> impl Future<Output = Outcome<Option<T>>> + Send {
        async move {
            let row: Option<(T,)> = self.fetch_optional(sql, args).await?;
            Ok(row.map(|(value,)| value))
        }
    }

    /// The first column of the one row.
    fn scalar<T: FromValue + Send>(
        &mut self,
        sql: &str,
        args: Vec<Arg<'_>>,
    ) -> impl Future<Output = Outcome<T>> + Send {
        async move {
            let (value,): (T,) = self.fetch_one(sql, args).await?;
            Ok(value)
        }
    }
}
