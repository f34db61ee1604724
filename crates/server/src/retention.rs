//! Pruning in the background: what `retention.*` no longer keeps goes in
//! small batches, one transaction each (through the writer, on SQLite), as
//! fast as it piles up; and the gauges that show the database staying
//! bounded.
//!
//! Events are walked oldest first. A pass goes on from where the last one
//! ended, so each batch looks at events it has not seen; events it kept
//! because a delivery was still pending (or dead-lettered inside its
//! window) are looked at again by a full pass from the oldest event, once
//! per the shortest window (at least a second, at most ten minutes).
//!
//! While rows go, their space is made reusable every [`RECLAIM_EVERY`]
//! (on PostgreSQL a `VACUUM` of the pruned tables, which does not depend on
//! autovacuum being on: with it off, the database grew for ever).

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_domain::now_micros;
use switchboard_store::{Retention, Store};
use tokio::sync::watch;

/// The pause after a pass that found nothing more to prune.
const IDLE_PAUSE: Duration = Duration::from_secs(1);
/// How often the database's size and the oldest rows' ages are measured.
const STATS_EVERY: Duration = Duration::from_secs(10);
/// How often, while rows are being pruned, their space is made reusable
/// where the database does not do it by itself (PostgreSQL's `VACUUM`).
const RECLAIM_EVERY: Duration = Duration::from_secs(60);

/// What the pruner is told.
#[derive(Clone, Copy, Debug)]
pub struct Pruning {
    pub rules: Retention,
    /// Most events (or messages) per transaction.
    pub batch: u32,
}

impl Pruning {
    /// How often a pass starts again from the oldest event.
    fn full_pass_every(&self) -> Duration {
        let shortest = [self.rules.delivered, self.rules.dead_letters]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(i64::MAX);
        Duration::from_micros(shortest.max(0) as u64).clamp(IDLE_PAUSE, Duration::from_secs(600))
    }
}

/// Prunes until `stop` turns true.
pub async fn prune_continuously(
    store: Arc<dyn Store>,
    pruning: Pruning,
    mut stop: watch::Receiver<bool>,
) {
    let mut position: Option<String> = None;
    let mut last_full_pass = Instant::now();
    let mut last_stats: Option<Instant> = None;
    let mut last_reclaim = Instant::now();
    let mut pruned_since_reclaim = false;
    loop {
        if last_stats.is_none_or(|at| at.elapsed() >= STATS_EVERY) {
            measure(store.as_ref()).await;
            last_stats = Some(Instant::now());
        }
        let mut more = false;
        match store
            .prune_events(now_micros(), pruning.rules, position.clone(), pruning.batch)
            .await
        {
            Ok(pruned) => {
                count("events", pruned.events);
                count("deliveries", pruned.deliveries);
                count("delivery_attempts", pruned.attempts);
                pruned_since_reclaim |= pruned.events > 0;
                if pruned.next.is_some() {
                    position = pruned.next;
                }
                more = pruned.examined >= pruning.batch;
                if !more && last_full_pass.elapsed() >= pruning.full_pass_every() {
                    position = None;
                    last_full_pass = Instant::now();
                }
            }
            Err(err) => tracing::warn!(error = %err, "could not prune events"),
        }
        if let Some(window) = pruning.rules.messages {
            match store
                .prune_messages(now_micros() - window, pruning.batch)
                .await
            {
                Ok(pruned) => {
                    count("messages", pruned.messages);
                    count("reactions", pruned.reactions);
                    pruned_since_reclaim |= pruned.messages > 0;
                    more |= pruned.messages >= u64::from(pruning.batch);
                }
                Err(err) => tracing::warn!(error = %err, "could not prune messages"),
            }
        }
        if pruned_since_reclaim && last_reclaim.elapsed() >= RECLAIM_EVERY {
            if let Err(err) = store.reclaim_space().await {
                tracing::warn!(error = %err, "could not make the space of pruned rows reusable");
            }
            last_reclaim = Instant::now();
            pruned_since_reclaim = false;
        }
        if *stop.borrow() {
            return;
        }
        if !more {
            tokio::select! {
                () = tokio::time::sleep(IDLE_PAUSE) => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
        }
    }
}

fn count(table: &'static str, rows: u64) {
    if rows > 0 {
        metrics::counter!("switchboard_retention_pruned_rows_total", "table" => table)
            .increment(rows);
    }
}

/// Sets the gauges of the database's size and of the oldest rows' ages.
async fn measure(store: &dyn Store) {
    match store.storage_stats().await {
        Ok(stats) => {
            metrics::gauge!("switchboard_database_size_bytes").set(stats.database_bytes as f64);
            metrics::gauge!("switchboard_database_free_bytes").set(stats.free_bytes as f64);
            let now = now_micros();
            for (table, oldest) in [
                ("events", stats.oldest_event_at),
                ("messages", stats.oldest_message_at),
            ] {
                let age = oldest.map_or(0.0, |at| (now - at).max(0) as f64 / 1e6);
                metrics::gauge!("switchboard_retention_oldest_row_age_seconds", "table" => table)
                    .set(age);
            }
        }
        Err(err) => tracing::debug!(error = %err, "could not measure the database"),
    }
}
