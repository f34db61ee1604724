//! The delivery workers' side of the outbox: claim lane heads with a lease,
//! finish them with a verdict.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::SqliteConnection;
use switchboard_store::{
    ClaimedDelivery, DeliveryStore, Finished, OutboxStats, StoreResult, Verdict,
};

use crate::SqliteStore;
use crate::failure::{Failure, Outcome};
use switchboard_store_sql::integration_rows::{CLAIM_COLUMNS, ClaimRow};

#[async_trait]
impl DeliveryStore for SqliteStore {
    async fn claim(
        &self,
        now: i64,
        limit: u32,
        lease_micros: i64,
        default_max_in_flight: u32,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.writer.begin().await.map_err(Failure::from)?;
        let due: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT l.integration_id, l.lane, l.head_id, i.max_in_flight FROM delivery_lanes l \
             JOIN integrations i ON i.id = l.integration_id \
             WHERE l.due_at <= ? AND (l.lease_until IS NULL OR l.lease_until < ?) \
               AND i.state = 'active' AND i.deleted_at IS NULL \
             ORDER BY l.due_at LIMIT ?",
        )
        .bind(now)
        .bind(now)
        .bind(i64::from(limit) * 4)
        .fetch_all(&mut *tx)
        .await
        .map_err(Failure::from)?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let mut in_flight: HashMap<String, i64> = sqlx::query_as(
            "SELECT integration_id, COUNT(*) FROM delivery_lanes WHERE lease_until >= ? GROUP BY integration_id",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(Failure::from)?
        .into_iter()
        .collect();
        let lease_until = now + lease_micros;
        let mut heads = Vec::new();
        for (integration, lane, head, max) in due {
            if heads.len() as u32 >= limit {
                break;
            }
            let cap = max.unwrap_or(i64::from(default_max_in_flight)).max(1);
            let busy = in_flight.entry(integration.clone()).or_insert(0);
            if *busy >= cap {
                continue;
            }
            *busy += 1;
            sqlx::query(
                "UPDATE delivery_lanes SET lease_until = ? WHERE integration_id = ? AND lane = ?",
            )
            .bind(lease_until)
            .bind(&integration)
            .bind(&lane)
            .execute(&mut *tx)
            .await
            .map_err(Failure::from)?;
            heads.push(head);
        }
        let rows = sqlx::query_as::<_, ClaimRow>(&format!(
            "SELECT {CLAIM_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id \
             JOIN integrations i ON i.id = d.integration_id WHERE d.id IN (SELECT value FROM json_each(?)) ORDER BY d.id"
        ))
        .bind(serde_json::to_string(&heads).map_err(Failure::from)?)
        .fetch_all(&mut *tx)
        .await
        .map_err(Failure::from)?;
        tx.commit().await.map_err(Failure::from)?;
        rows.into_iter()
            .map(|row| row.into_claimed(lease_until, now))
            .collect::<Outcome<Vec<_>>>()
            .map_err(Into::into)
    }

    async fn finish(&self, finished: &[Finished]) -> StoreResult<()> {
        if finished.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer.begin().await.map_err(Failure::from)?;
        for item in finished {
            finish_one(&mut tx, item).await?;
        }
        tx.commit().await.map_err(Failure::from)?;
        Ok(())
    }

    async fn next_due(&self) -> StoreResult<Option<i64>> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(COALESCE(l.lease_until, l.due_at)) FROM delivery_lanes l \
             JOIN integrations i ON i.id = l.integration_id WHERE i.state = 'active' AND i.deleted_at IS NULL",
        )
        .fetch_one(&self.reader)
        .await
        .map_err(Failure::from)?;
        Ok(next)
    }

    async fn outbox_stats(&self, now: i64) -> StoreResult<OutboxStats> {
        let (due, waiting, held, dead, disabled): (i64, i64, i64, i64, i64) = sqlx::query_as(
            "SELECT \
               (SELECT COUNT(*) FROM delivery_lanes l JOIN integrations i ON i.id = l.integration_id \
                 WHERE i.state = 'active' AND l.due_at <= ?), \
               (SELECT COUNT(*) FROM deliveries d JOIN integrations i ON i.id = d.integration_id \
                 WHERE d.state = 'pending' AND i.state = 'active'), \
               (SELECT COUNT(*) FROM deliveries d JOIN integrations i ON i.id = d.integration_id \
                 WHERE d.state = 'pending' AND i.state != 'active'), \
               (SELECT COUNT(*) FROM deliveries WHERE state = 'dead'), \
               (SELECT COUNT(*) FROM integrations WHERE state = 'disabled' AND deleted_at IS NULL)",
        )
        .bind(now)
        .fetch_one(&self.reader)
        .await
        .map_err(Failure::from)?;
        Ok(OutboxStats {
            due: due as u64,
            waiting: (waiting - due).max(0) as u64,
            held: held as u64,
            dead: dead as u64,
            disabled_integrations: disabled as u64,
        })
    }

    fn outbox_signal(&self) -> Arc<tokio::sync::Notify> {
        self.outbox.clone()
    }
}

/// Records one attempt and applies its verdict, unless the lease was lost.
async fn finish_one(conn: &mut SqliteConnection, item: &Finished) -> Outcome<()> {
    let claimed = &item.claimed;
    let attempt = &item.attempt;
    let integration = claimed.integration.id.as_str();
    let lane = claimed
        .channel_id
        .as_deref()
        .unwrap_or(claimed.event_id.as_str());
    let now = attempt.attempted_at + attempt.duration_us;
    let (state, finished_at, error) = match &item.verdict {
        Verdict::Delivered => ("delivered", Some(now), None),
        Verdict::Retry { .. } => ("pending", None, attempt.error.as_deref()),
        Verdict::DeadLetter { reason } => ("dead", Some(now), Some(reason.as_str())),
        Verdict::Disable { reason } => ("pending", None, Some(reason.as_str())),
    };
    // Only the holder of the lane's lease may record: a worker whose lease ran
    // out has been replaced and its outcome is dropped (the event is re-sent).
    let updated = sqlx::query(
        "UPDATE deliveries SET state = ?, attempts = attempts + 1, finished_at = ?, last_error = ? \
         WHERE id = ? AND EXISTS (SELECT 1 FROM delivery_lanes \
                                  WHERE integration_id = ? AND lane = ? AND lease_until = ?)",
    )
    .bind(state)
    .bind(finished_at)
    .bind(error)
    .bind(claimed.delivery_id)
    .bind(integration)
    .bind(lane)
    .bind(claimed.lease_until)
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        tracing::info!(
            delivery = claimed.delivery_id,
            "lease lost before the outcome was recorded"
        );
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO delivery_attempts (delivery_id, attempted_at, duration_us, status_code, outcome, error, \
         response_snippet) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(claimed.delivery_id)
    .bind(attempt.attempted_at)
    .bind(attempt.duration_us)
    .bind(attempt.status_code.map(i64::from))
    .bind(&attempt.outcome)
    .bind(&attempt.error)
    .bind(&attempt.response_snippet)
    .execute(&mut *conn)
    .await?;
    match &item.verdict {
        Verdict::Delivered => {
            // `last_success_at` is kept to the second: a busy integration is not rewritten per event.
            let stale = claimed
                .integration
                .last_success_at
                .is_none_or(|at| now - at > 1_000_000);
            if claimed.integration.failing_since.is_some() || stale {
                sqlx::query("UPDATE integrations SET last_success_at = ?, failing_since = NULL WHERE id = ?")
                    .bind(now)
                    .bind(integration)
                    .execute(&mut *conn)
                    .await?;
            }
            advance_lane(conn, integration, lane, now).await?;
        }
        Verdict::Retry { at } => {
            mark_failing(conn, claimed, now).await?;
            release_lane(conn, integration, lane, *at).await?;
        }
        Verdict::DeadLetter { .. } => {
            mark_failing(conn, claimed, now).await?;
            advance_lane(conn, integration, lane, now).await?;
        }
        Verdict::Disable { reason } => {
            sqlx::query("UPDATE integrations SET state = 'disabled', disabled_reason = ?, updated_at = ? WHERE id = ?")
                .bind(reason)
                .bind(now)
                .bind(integration)
                .execute(&mut *conn)
                .await?;
            release_lane(conn, integration, lane, now).await?;
        }
    }
    Ok(())
}

/// Notes when the integration's run of failures began (once per run).
async fn mark_failing(
    conn: &mut SqliteConnection,
    claimed: &ClaimedDelivery,
    now: i64,
) -> Outcome<()> {
    if claimed.integration.failing_since.is_none() {
        sqlx::query(
            "UPDATE integrations SET failing_since = COALESCE(failing_since, ?) WHERE id = ?",
        )
        .bind(now)
        .bind(claimed.integration.id.as_str())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Keeps the lane's head and makes it due at `due_at`.
async fn release_lane(
    conn: &mut SqliteConnection,
    integration: &str,
    lane: &str,
    due_at: i64,
) -> Outcome<()> {
    sqlx::query("UPDATE delivery_lanes SET due_at = ?, lease_until = NULL WHERE integration_id = ? AND lane = ?")
        .bind(due_at)
        .bind(integration)
        .bind(lane)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Points the lane at its next pending delivery (due at once), or closes it.
async fn advance_lane(
    conn: &mut SqliteConnection,
    integration: &str,
    lane: &str,
    now: i64,
) -> Outcome<()> {
    let head: Option<i64> = sqlx::query_scalar(
        "UPDATE delivery_lanes SET lease_until = NULL, due_at = ?1, head_id = COALESCE( \
           (SELECT id FROM deliveries WHERE integration_id = ?2 AND lane = ?3 AND state = 'pending' \
            ORDER BY channel_seq, id LIMIT 1), 0) \
         WHERE integration_id = ?2 AND lane = ?3 RETURNING head_id",
    )
    .bind(now)
    .bind(integration)
    .bind(lane)
    .fetch_optional(&mut *conn)
    .await?;
    if head == Some(0) {
        sqlx::query(
            "DELETE FROM delivery_lanes WHERE integration_id = ? AND lane = ? AND head_id = 0",
        )
        .bind(integration)
        .bind(lane)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
