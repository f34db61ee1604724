//! Changes as serializable transactions, run again when PostgreSQL aborts
//! them for a conflict with a concurrent one; queries on pooled connections.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};

use switchboard_store::StoreResult;
use switchboard_store_sql::{Backend, BoxFuture, Effects, Failure, Outcome};

use crate::PgBackend;
use crate::db::{PgReader, PgTx};

/// How long a transaction aborted by serialization failures or deadlocks is
/// run again before the request fails as unavailable (503).
///
/// A budget of time, not of runs: changes to one channel all update its row
/// (its next `channelSeq`), so under load each run of a busy channel's
/// change may collide with a newer one, and a count of runs that suffices on
/// an idle machine runs out on a loaded one. Runs that keep colliding are
/// spread out by random pauses that grow with the runs.
pub const RERUN_BUDGET: Duration = Duration::from_secs(10);

/// The reruns of one change: when to stop, and the pause before the next.
pub(crate) struct Reruns {
    started: std::time::Instant,
    runs: u32,
}

impl Reruns {
    pub(crate) fn start() -> Self {
        Reruns {
            started: std::time::Instant::now(),
            runs: 0,
        }
    }

    /// After a run that collided: false once [`RERUN_BUDGET`] is spent,
    /// else true after a random pause that grows with the runs to at most
    /// 10 ms (short, so that a change that collided does not wait longer
    /// than the new ones it collides with).
    pub(crate) async fn again(&mut self) -> bool {
        if self.started.elapsed() >= RERUN_BUDGET {
            return false;
        }
        self.runs += 1;
        metrics::counter!("switchboard_store_transaction_retries_total").increment(1);
        let ceiling_us = (250u64 << self.runs.min(6)).min(10_000);
        let pause = rand::Rng::gen_range(&mut rand::thread_rng(), 0..=ceiling_us);
        tokio::time::sleep(Duration::from_micros(pause)).await;
        true
    }
}

/// Opens a `SERIALIZABLE` transaction.
pub(crate) async fn begin(pool: &PgPool) -> Outcome<Transaction<'static, Postgres>> {
    Ok(pool
        .begin_with("BEGIN ISOLATION LEVEL SERIALIZABLE")
        .await?)
}

/// Opens a `READ COMMITTED` transaction of the delivery workers (claiming
/// and finishing lane heads), in which no plan scans a table whole.
///
/// PostgreSQL keeps one generic plan per prepared statement and connection
/// once its cost looks no worse than the plans made for the first values.
/// One made while the tables were nearly empty (a new database) chose to
/// scan the whole `events` table for each claim, and went on doing so once
/// it held thousands of events: 30 ms instead of 0.1, and drains slowed as
/// the tables grew. Planning every statement afresh
/// (`plan_cache_mode = force_custom_plan`) avoided that, but cost a fifth
/// of the database's CPU under load. With sequential scans off, every plan
/// a worker's statement can get reads through the indexes (each statement
/// finds its rows by key, or by a lane's index), so a plan kept from an
/// empty database stays right as the tables grow, and each is made once
/// per connection. Measured side by side on the throughput benchmark: the
/// same rate at 20,000 messages, 2,733 against 2,363 deliveries/s at
/// 60,000, and a fixed 3,000/s held with 0–344 of 30,000 refused against
/// 2,213–6,846.
pub(crate) async fn begin_delivery(pool: &PgPool) -> Outcome<Transaction<'static, Postgres>> {
    Ok(pool
        .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL enable_seqscan = off")
        .await?)
}

impl Backend for PgBackend {
    type Writer = PgTx;
    type Reader = PgReader;

    async fn write<T, F>(&self, change: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'t> Fn(&'t mut PgTx) -> BoxFuture<'t, Outcome<T>> + Send + Sync + 'static,
    {
        let mut reruns = Reruns::start();
        loop {
            match self.run_once(&change).await {
                Ok((value, effects)) => {
                    effects.count_events();
                    if effects.queued_deliveries {
                        self.wake_workers();
                    }
                    if !effects.events.is_empty() {
                        self.outbox.events_recorded();
                    }
                    return Ok(value);
                }
                Err(failure) if failure.is_retryable() && reruns.again().await => {}
                Err(failure) => return Err(failure.into()),
            }
        }
    }

    fn groups_sends(&self) -> bool {
        true
    }

    async fn read<T, F>(&self, query: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut PgReader) -> BoxFuture<'t, Outcome<T>> + Send + 'static,
    {
        let mut reader = PgReader::new(self.pool.acquire().await.map_err(Failure::from)?);
        Ok(query(&mut reader).await?)
    }

    /// `VACUUM` of the tables and of the lanes' (a lane's rows come and go
    /// with its deliveries), whether or not autovacuum is on: pruning
    /// deletes rows as fast as they are written, and a database with
    /// autovacuum off (or behind) would otherwise grow for ever. `VACUUM`
    /// runs beside the other transactions, without locking them out.
    async fn reclaim_space(&self, tables: &[&str]) -> StoreResult<()> {
        let tables: Vec<&str> = tables
            .iter()
            .chain(crate::db::LANE_TABLES)
            .copied()
            .collect();
        sqlx::query(&format!("VACUUM {}", tables.join(", ")))
            .execute(&self.pool)
            .await
            .map_err(Failure::from)?;
        Ok(())
    }

    fn credential_changes_elsewhere(&self) -> Option<Arc<AtomicU64>> {
        Some(self.credential_changes.clone())
    }

    async fn tell_credentials_changed(&self) {
        crate::listener::tell_credentials_changed(&self.pool).await;
    }

    async fn close(&self) {
        self.listener.stop();
        self.notifier.stop();
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
