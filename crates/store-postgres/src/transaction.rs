//! Serializable transactions, run again when PostgreSQL aborts them for a
//! conflict with a concurrent one.

use std::time::Duration;

use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};

use crate::failure::Outcome;

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

/// Runs `$body` as one serializable transaction on `$store`'s pool, again
/// from the start when it is aborted for a conflict (see [`RETRIES`]).
///
/// Each run counts the events it records only if it succeeds (see
/// [`switchboard_store_sql::created_events`]).
///
/// The body sees the open transaction as `$tx`, must commit it itself, and
/// evaluates to an `Outcome`; returning early without committing rolls the
/// transaction back. Its value becomes a `StoreResult`.
macro_rules! transaction {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let mut attempt = 0u32;
        loop {
            let outcome: $crate::failure::Outcome<_> =
                switchboard_store_sql::created_events::count_if_committed(async {
                    #[allow(unused_mut)]
                    let mut $tx = $crate::transaction::begin(&$store.pool).await?;
                    $body
                })
                .await;
            match outcome {
                Err(failure)
                    if failure.is_retryable() && attempt < $crate::transaction::RETRIES =>
                {
                    attempt += 1;
                    metrics::counter!("switchboard_store_transaction_retries_total").increment(1);
                    $crate::transaction::backoff(attempt).await;
                }
                outcome => break outcome.map_err(switchboard_store::StoreError::from),
            }
        }
    }};
}
