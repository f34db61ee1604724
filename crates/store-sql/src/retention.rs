//! Pruning what retention no longer keeps, and the horizons that tell replay
//! and the delivery log what is gone.
//!
//! Events and messages are walked in id order, which is their creation
//! order (ids are UUIDv7), so no index beyond the primary key is needed and
//! each batch looks at a bounded number of rows.

use async_trait::async_trait;
use switchboard_domain::UnixMicros;
use switchboard_protocol::Timestamp;
use switchboard_store::{
    PrunedEvents, PrunedMessages, Retention, RetentionStore, StorageStats, StoreError, StoreResult,
};

use crate::backend::{Backend, SqlStore};
use crate::db::Db;
use crate::failure::Outcome;

/// The horizon of pruned events: events created before it may be gone.
const EVENTS: &str = "events";
/// The horizon of pruned messages.
const MESSAGES: &str = "messages";

/// The tables whose rows go (pruned or purged) or are rewritten by every
/// change, whose space is reclaimed as rows go; the backend adds its lane
/// tables.
const RECLAIMED_TABLES: &[&str] = &[
    "events",
    "deliveries",
    "delivery_attempts",
    "messages",
    "reactions",
    "idempotency_keys",
    "typing",
    "channels",
    "integrations",
];

#[async_trait]
impl<B: Backend> RetentionStore for SqlStore<B> {
    async fn prune_events(
        &self,
        now: UnixMicros,
        rules: Retention,
        after: Option<String>,
        limit: u32,
    ) -> StoreResult<PrunedEvents> {
        let delivered_before = cutoff(now, rules.delivered);
        let dead_before = cutoff(now, rules.dead_letters);
        let looked_before = delivered_before.max(dead_before);
        if looked_before == i64::MIN || limit == 0 {
            return Ok(PrunedEvents::default());
        }
        change!(self, (after, limit), |tx| {
            let after = after.as_deref().unwrap_or("");
            // Most passes find the oldest event still inside every window:
            // they stop at one row instead of reading a batch.
            let oldest: Option<i64> = tx
                .optional_scalar(
                    "SELECT created_at FROM events WHERE id > $1 ORDER BY id LIMIT 1",
                    args![after],
                )
                .await?;
            if oldest.is_none_or(|created_at| created_at >= looked_before) {
                return Ok(PrunedEvents::default());
            }
            let rows: Vec<(String, i64, bool, bool)> = tx
                .fetch_all(
                    "SELECT e.id, e.created_at, \
                     EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.state = 'pending'), \
                     EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.state = 'dead') \
                     FROM events e WHERE e.id > $1 ORDER BY e.id LIMIT $2",
                    args![after, i64::from(*limit)],
                )
                .await?;
            // Every event from the first inside all windows on is too: the
            // pass ends there.
            let examined: Vec<&(String, i64, bool, bool)> = rows
                .iter()
                .take_while(|(_, created_at, _, _)| *created_at < looked_before)
                .collect();
            let mut batch = PrunedEvents {
                examined: examined.len() as u32,
                next: examined.last().map(|(id, ..)| id.clone()),
                ..PrunedEvents::default()
            };
            let mut gone = Vec::new();
            let mut newest_gone = i64::MIN;
            for (id, created_at, pending, dead) in examined {
                let kept_until = if *dead { dead_before } else { delivered_before };
                if !pending && *created_at < kept_until {
                    gone.push(id.as_str());
                    newest_gone = newest_gone.max(*created_at);
                }
            }
            if !gone.is_empty() {
                batch.attempts = tx
                    .execute(
                        "DELETE FROM delivery_attempts WHERE delivery_id IN \
                         (SELECT id FROM deliveries WHERE event_id = ANY($1))",
                        args![&gone],
                    )
                    .await?;
                batch.deliveries = tx
                    .execute(
                        "DELETE FROM deliveries WHERE event_id = ANY($1)",
                        args![&gone],
                    )
                    .await?;
                batch.events = tx
                    .execute("DELETE FROM events WHERE id = ANY($1)", args![&gone])
                    .await?;
                raise_horizon(tx, EVENTS, newest_gone + 1).await?;
            }
            Ok(batch)
        })
    }

    async fn prune_messages(&self, before: UnixMicros, limit: u32) -> StoreResult<PrunedMessages> {
        change!(self, (before, limit), |tx| {
            let rows: Vec<(String, i64)> = tx
                .fetch_all(
                    "SELECT id, created_at FROM messages ORDER BY id LIMIT $1",
                    args![i64::from(*limit)],
                )
                .await?;
            let old: Vec<&(String, i64)> = rows
                .iter()
                .take_while(|(_, created_at)| created_at < before)
                .collect();
            let Some(newest) = old.iter().map(|(_, created_at)| *created_at).max() else {
                return Ok(PrunedMessages::default());
            };
            let ids: Vec<&str> = old.iter().map(|(id, _)| id.as_str()).collect();
            let reactions = tx
                .execute(
                    "DELETE FROM reactions WHERE message_id = ANY($1)",
                    args![&ids],
                )
                .await?;
            tx.execute(
                "DELETE FROM idempotency_keys WHERE message_id = ANY($1)",
                args![&ids],
            )
            .await?;
            let messages = tx
                .execute("DELETE FROM messages WHERE id = ANY($1)", args![&ids])
                .await?;
            raise_horizon(tx, MESSAGES, newest + 1).await?;
            Ok(PrunedMessages {
                messages,
                reactions,
            })
        })
    }

    async fn reclaim_space(&self) -> StoreResult<()> {
        self.backend.reclaim_space(RECLAIMED_TABLES).await
    }

    async fn storage_stats(&self) -> StoreResult<StorageStats> {
        query!(self, (), |conn| {
            let sql = conn.storage_size_query();
            let (database_bytes, free_bytes): (i64, i64) = conn.fetch_one(sql, args![]).await?;
            let oldest_event_at = conn
                .optional_scalar("SELECT created_at FROM events ORDER BY id LIMIT 1", args![])
                .await?;
            let oldest_message_at = conn
                .optional_scalar(
                    "SELECT created_at FROM messages ORDER BY id LIMIT 1",
                    args![],
                )
                .await?;
            Ok(StorageStats {
                database_bytes: database_bytes.max(0) as u64,
                free_bytes: free_bytes.max(0) as u64,
                oldest_event_at,
                oldest_message_at,
            })
        })
    }
}

/// Rows created before this are outside a window of `keep`; `i64::MIN`
/// (nothing) when the window keeps forever.
fn cutoff(now: UnixMicros, keep: Option<i64>) -> i64 {
    match keep {
        Some(keep) => now.saturating_sub(keep.max(0)),
        None => i64::MIN,
    }
}

async fn raise_horizon(conn: &mut impl Db, kind: &str, kept_from: i64) -> Outcome<()> {
    conn.execute(
        "INSERT INTO retention_horizons (kind, kept_from) VALUES ($1, $2) \
         ON CONFLICT (kind) DO UPDATE SET kept_from = excluded.kept_from \
         WHERE retention_horizons.kept_from < excluded.kept_from",
        args![kind, kept_from],
    )
    .await?;
    Ok(())
}

/// The time from which every event is still kept, once any was pruned.
pub(crate) async fn events_kept_from(conn: &mut impl Db) -> Outcome<Option<i64>> {
    conn.optional_scalar(
        "SELECT kept_from FROM retention_horizons WHERE kind = $1",
        args![EVENTS],
    )
    .await
}

/// Refuses a query for events since `since` when some of them were pruned.
pub(crate) async fn ensure_events_kept(conn: &mut impl Db, field: &str, since: i64) -> Outcome<()> {
    match events_kept_from(conn).await? {
        Some(kept_from) if since < kept_from => Err(StoreError::invalid(
            field,
            format!(
                "events before {} are no longer kept (retention); ask from that time on",
                Timestamp::from_unix_micros(kept_from)
            ),
        )
        .into()),
        _ => Ok(()),
    }
}
