//! The store's transaction trait on PostgreSQL: statements sent through sqlx
//! on a pooled connection, answers decoded by column type.

use std::ops::DerefMut;
use std::sync::Arc;

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{Column, PgConnection, Postgres, Row as _, Transaction, TypeInfo, ValueRef};
use switchboard_store_sql::{Arg, Db, Effects, Failure, Outcome, Row, Value};

/// A connection the store's logic runs on: a pooled connection, or a
/// transaction open on one.
pub struct PgConn<C> {
    pub(crate) conn: C,
    pub(crate) effects: Effects,
}

/// A change's connection: a transaction open on a pooled connection.
pub type PgTx = PgConn<Transaction<'static, Postgres>>;

/// A query's connection.
pub type PgReader = PgConn<sqlx::pool::PoolConnection<Postgres>>;

impl<C> PgConn<C> {
    pub(crate) fn new(conn: C) -> Self {
        PgConn {
            conn,
            effects: Effects::default(),
        }
    }
}

impl<C: DerefMut<Target = PgConnection> + Send> Db for PgConn<C> {
    fn lane_tables(&self) -> &'static [&'static str] {
        LANE_TABLES
    }

    /// Every lane's row with its moving parts: its `delivery_lane_state`
    /// row, there once a worker has claimed the lane, whose head and due time
    /// come before the lane row's.
    fn lanes(&self) -> &'static str {
        "(SELECT k.integration_id, k.lane, COALESCE(s.head_id, k.head_id) AS head_id, \
           COALESCE(s.due_at, k.due_at) AS due_at, s.lease_until \
         FROM delivery_lanes k LEFT JOIN delivery_lane_state s \
           ON s.integration_id = k.integration_id AND s.lane = k.lane) l"
    }

    fn storage_size_query(&self) -> &'static str {
        "SELECT pg_database_size(current_database()), 0::bigint"
    }

    fn execute(
        &mut self,
        sql: &str,
        args: Vec<Arg<'_>>,
    ) -> impl Future<Output = Outcome<u64>> + Send {
        execute(&mut self.conn, sql, args)
    }

    fn fetch(
        &mut self,
        sql: &str,
        args: Vec<Arg<'_>>,
    ) -> impl Future<Output = Outcome<Vec<Row>>> + Send {
        fetch(&mut self.conn, sql, args)
    }

    fn effects(&mut self) -> &mut Effects {
        &mut self.effects
    }

    fn lock_channels(&mut self, channels: &[&str]) -> impl Future<Output = Outcome<()>> + Send {
        lock_channels(&mut self.conn, channels.to_vec())
    }
}

/// A lane's row in `delivery_lanes`, which changes insert and workers only
/// lock, and its moving parts in `delivery_lane_state` (see migration 0002).
pub(crate) const LANE_TABLES: &[&str] = &["delivery_lanes", "delivery_lane_state"];

async fn lock_channels(conn: &mut PgConnection, channels: Vec<&str>) -> Outcome<()> {
    if !channels.is_empty() {
        sqlx::query("SELECT 1 FROM channels WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE")
            .bind(channels)
            .execute(conn)
            .await?;
    }
    Ok(())
}

fn bind<'q>(
    query: Query<'q, Postgres, PgArguments>,
    arg: Arg<'q>,
) -> Query<'q, Postgres, PgArguments> {
    match arg {
        Arg::Int(value) => query.bind(value),
        Arg::Real(value) => query.bind(value),
        Arg::Bool(value) => query.bind(value),
        Arg::Text(value) => query.bind(value),
        Arg::Blob(value) => query.bind(value),
        Arg::TextList(values) => query.bind(values),
        Arg::IntList(values) => query.bind(values),
    }
}

fn prepare<'q>(sql: &'q str, args: Vec<Arg<'q>>) -> Query<'q, Postgres, PgArguments> {
    args.into_iter().fold(sqlx::query(sql), bind)
}

async fn execute(conn: &mut PgConnection, sql: &str, args: Vec<Arg<'_>>) -> Outcome<u64> {
    Ok(prepare(sql, args).execute(conn).await?.rows_affected())
}

async fn fetch(conn: &mut PgConnection, sql: &str, args: Vec<Arg<'_>>) -> Outcome<Vec<Row>> {
    let rows = prepare(sql, args).fetch_all(conn).await?;
    decode(rows)
}

/// Rows as the store reads them, by column type.
pub(crate) fn decode(rows: Vec<PgRow>) -> Outcome<Vec<Row>> {
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let columns: Arc<[Box<str>]> = first
        .columns()
        .iter()
        .map(|column| column.name().into())
        .collect();
    rows.iter()
        .map(|row| {
            let values = (0..columns.len())
                .map(|index| value(row, index))
                .collect::<Outcome<Vec<Value>>>()?;
            Ok(Row::new(columns.clone(), values))
        })
        .collect()
}

fn value(row: &PgRow, index: usize) -> Outcome<Value> {
    if row.try_get_raw(index)?.is_null() {
        return Ok(Value::Null);
    }
    let column = &row.columns()[index];
    Ok(match column.type_info().name() {
        "INT8" => Value::Int(row.try_get::<i64, _>(index)?),
        "INT4" => Value::Int(row.try_get::<i32, _>(index)?.into()),
        "INT2" => Value::Int(row.try_get::<i16, _>(index)?.into()),
        "BOOL" => Value::Int(row.try_get::<bool, _>(index)?.into()),
        "FLOAT8" => Value::Real(row.try_get::<f64, _>(index)?),
        "FLOAT4" => Value::Real(row.try_get::<f32, _>(index)?.into()),
        "TEXT" | "VARCHAR" | "NAME" | "BPCHAR" => Value::Text(row.try_get::<String, _>(index)?),
        "BYTEA" => Value::Blob(row.try_get::<Vec<u8>, _>(index)?),
        "VOID" => Value::Null,
        other => {
            return Err(Failure::backend(format!(
                "column {:?} has type {other}, which the store does not read",
                column.name()
            )));
        }
    })
}
