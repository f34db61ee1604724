//! Changes as serializable transactions, run again when PostgreSQL aborts
//! them for a conflict with a concurrent one; queries on pooled connections.

use std::time::Duration;

use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};

use switchboard_store::StoreResult;
use switchboard_store_sql::{Backend, BoxFuture, Effects, Failure, Outcome};

use crate::PgBackend;
use crate::db::{PgReader, PgTx};

/// How many times a transaction aborted by a serialization failure or a
/// deadlock is run again before the request fails as unavailable.
pub const RETRIES: u32 = 30;

/// Opens a `SERIALIZABLE` transaction.
pub(crate) async fn begin(pool: &PgPool) -> Outcome<Transaction<'static, Postgres>> {
    Ok(pool
        .begin_with("BEGIN ISOLATION LEVEL SERIALIZABLE")
        .await?)
}

/// Opens a `READ COMMITTED` transaction of the delivery workers (claiming
/// and finishing lane heads), whose statements are planned afresh each time.
///
/// PostgreSQL may keep one generic plan per prepared statement and
/// connection. One made while the tables were nearly empty (a new database)
/// went on scanning the whole `events` table for each claim once it held
/// thousands of events: 30 ms instead of 0.1, and drains slowed as the tables
/// grew. The workers' statements run a few times per batch of deliveries, so
/// planning each costs little; the API's statements keep the cached plans.
pub(crate) async fn begin_delivery(pool: &PgPool) -> Outcome<Transaction<'static, Postgres>> {
    Ok(pool
        .begin_with(
            "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL plan_cache_mode = force_custom_plan",
        )
        .await?)
}

/// Waits before the `attempt`th run: a random pause that grows with the
/// attempts (up to ~50 ms), so the transactions that collided do not collide again.
pub(crate) async fn backoff(attempt: u32) {
    let ceiling_us = (500u64 << attempt.min(7)).min(50_000);
    let pause = rand::Rng::gen_range(&mut rand::thread_rng(), ceiling_us / 4..=ceiling_us);
    tokio::time::sleep(Duration::from_micros(pause)).await;
}

impl Backend for PgBackend {
    type Writer = PgTx;
    type Reader = PgReader;

    async fn write<T, F>(&self, change: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'t> Fn(&'t mut PgTx) -> BoxFuture<'t, Outcome<T>> + Send + Sync + 'static,
    {
        let mut attempt = 0u32;
        loop {
            match self.run_once(&change).await {
                Ok((value, effects)) => {
                    effects.count_events();
                    if effects.queued_deliveries {
                        self.wake_workers().await;
                    }
                    return Ok(value);
                }
                Err(failure) if failure.is_retryable() && attempt < RETRIES => {
                    attempt += 1;
                    metrics::counter!("switchboard_store_transaction_retries_total").increment(1);
                    backoff(attempt).await;
                }
                Err(failure) => return Err(failure.into()),
            }
        }
    }

    async fn read<T, F>(&self, query: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut PgReader) -> BoxFuture<'t, Outcome<T>> + Send + 'static,
    {
        let mut reader = PgReader::new(self.pool.acquire().await.map_err(Failure::from)?);
        Ok(query(&mut reader).await?)
    }

    async fn close(&self) {
        self.listener.stop();
        self.pool.close().await;
    }
}

impl PgBackend {
    /// One run of a change: a serializable transaction, committed.
    async fn run_once<T, F>(&self, change: &F) -> Outcome<(T, Effects)>
    where
        F: for<'t> Fn(&'t mut PgTx) -> BoxFuture<'t, Outcome<T>>,
    {
        let mut tx = PgTx::new(begin(&self.pool).await?);
        let value = change(&mut tx).await?;
        tx.conn.commit().await?;
        Ok((value, tx.effects))
    }
}
