//! The delivery workers' side of the outbox: claim lane heads with a lease,
//! finish them with a verdict.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::PgConnection;
use switchboard_domain::{CompanyId, EventId, IntegrationId, UserId};
use switchboard_protocol::EventType;
use switchboard_store::{
    ClaimedDelivery, ClaimedIntegration, DeliveryStore, Finished, OutboxStats, StoreResult, Verdict,
};

use crate::PgStore;
use crate::failure::{Failure, Outcome};
use crate::integrations::{settings, target};

#[derive(sqlx::FromRow)]
struct ClaimRow {
    delivery_id: i64,
    event_id: String,
    channel_seq: i64,
    attempts: i64,
    event_type: String,
    company_id: String,
    channel_id: Option<String>,
    data: String,
    event_time: i64,
    queued_at: i64,
    integration_id: String,
    bot_id: String,
    kind: String,
    url: Option<String>,
    sqs_region: Option<String>,
    sqs_access_key_id: Option<String>,
    sqs_secret_access_key: Option<String>,
    sqs_endpoint_url: Option<String>,
    secret: String,
    previous_secret: Option<String>,
    previous_secret_until: Option<i64>,
    timeout_ms: Option<i64>,
    retry_schedule: Option<String>,
    max_in_flight: Option<i64>,
    failing_since: Option<i64>,
    last_success_at: Option<i64>,
}

#[async_trait]
impl DeliveryStore for PgStore {
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
        // READ COMMITTED: each statement sees what other instances committed
        // before it, and the locks below keep two of them off one lane.
        let mut tx = self.pool.begin().await.map_err(Failure::from)?;
        // Lanes another instance is claiming or finishing right now are
        // locked by it and skipped; those it claimed before carry a lease.
        let candidates: Vec<(String, String)> = sqlx::query_as(
            "SELECT l.integration_id, l.lane FROM delivery_lanes l \
             JOIN integrations i ON i.id = l.integration_id \
             LEFT JOIN delivery_lane_state s ON s.integration_id = l.integration_id AND s.lane = l.lane \
             WHERE COALESCE(s.due_at, l.due_at) <= $1 AND (s.lease_until IS NULL OR s.lease_until < $1) \
               AND i.state = 'active' AND i.deleted_at IS NULL \
             ORDER BY COALESCE(s.due_at, l.due_at) LIMIT $2 FOR UPDATE OF l SKIP LOCKED",
        )
        .bind(now)
        .bind(i64::from(limit) * 4)
        .fetch_all(&mut *tx)
        .await
        .map_err(Failure::from)?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        // The lanes are now ours; read their state again: what the statement
        // above saw may predate a finish that committed just before we locked.
        let (integrations, lanes): (Vec<&str>, Vec<&str>) = candidates
            .iter()
            .map(|(integration, lane)| (integration.as_str(), lane.as_str()))
            .unzip();
        let due: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT l.integration_id, l.lane, COALESCE(s.head_id, l.head_id), i.max_in_flight \
             FROM UNNEST($2::text[], $3::text[]) AS locked(integration_id, lane) \
             JOIN delivery_lanes l ON l.integration_id = locked.integration_id AND l.lane = locked.lane \
             JOIN integrations i ON i.id = l.integration_id \
             LEFT JOIN delivery_lane_state s ON s.integration_id = l.integration_id AND s.lane = l.lane \
             WHERE COALESCE(s.due_at, l.due_at) <= $1 AND (s.lease_until IS NULL OR s.lease_until < $1) \
             ORDER BY COALESCE(s.due_at, l.due_at)",
        )
        .bind(now)
        .bind(&integrations)
        .bind(&lanes)
        .fetch_all(&mut *tx)
        .await
        .map_err(Failure::from)?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        // Count each integration's leases only while no other instance is
        // claiming for it, so in-flight limits hold across instances. Locks
        // are taken in id order: two claims never wait on each other in a circle.
        let mut integrations: Vec<&str> = due.iter().map(|row| row.0.as_str()).collect();
        integrations.sort_unstable();
        integrations.dedup();
        for integration in &integrations {
            sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                .bind(CLAIM_LOCK_SPACE)
                .bind(integration)
                .execute(&mut *tx)
                .await
                .map_err(Failure::from)?;
        }
        let mut in_flight: HashMap<String, i64> = sqlx::query_as(
            "SELECT integration_id, COUNT(*) FROM delivery_lane_state \
             WHERE lease_until >= $1 AND integration_id = ANY($2) GROUP BY integration_id",
        )
        .bind(now)
        .bind(&integrations)
        .fetch_all(&mut *tx)
        .await
        .map_err(Failure::from)?
        .into_iter()
        .collect();
        let lease_until = now + lease_micros;
        let mut heads = Vec::new();
        let (mut leased_integrations, mut leased_lanes) = (Vec::new(), Vec::new());
        for (integration, lane, head, max) in &due {
            if heads.len() as u32 >= limit {
                break;
            }
            let cap = max.unwrap_or(i64::from(default_max_in_flight)).max(1);
            let busy = in_flight.entry(integration.clone()).or_insert(0);
            if *busy >= cap {
                continue;
            }
            *busy += 1;
            leased_integrations.push(integration.as_str());
            leased_lanes.push(lane.as_str());
            heads.push(*head);
        }
        sqlx::query(
            "INSERT INTO delivery_lane_state (integration_id, lane, head_id, due_at, lease_until) \
             SELECT integration_id, lane, head_id, $1, $2 \
             FROM UNNEST($3::text[], $4::text[], $5::bigint[]) AS leased(integration_id, lane, head_id) \
             ON CONFLICT (integration_id, lane) DO UPDATE SET lease_until = EXCLUDED.lease_until",
        )
        .bind(now)
        .bind(lease_until)
        .bind(&leased_integrations)
        .bind(&leased_lanes)
        .bind(&heads)
        .execute(&mut *tx)
        .await
        .map_err(Failure::from)?;
        let rows = sqlx::query_as::<_, ClaimRow>(
            "SELECT d.id AS delivery_id, d.event_id, d.channel_seq, d.attempts, e.event_type, e.company_id, \
             e.channel_id, e.data, e.created_at AS event_time, d.created_at AS queued_at, i.id AS integration_id, i.bot_id, i.kind, i.url, \
             i.sqs_region, i.sqs_access_key_id, i.sqs_secret_access_key, i.sqs_endpoint_url, i.secret, \
             i.previous_secret, i.previous_secret_until, i.timeout_ms, i.retry_schedule, i.max_in_flight, \
             i.failing_since, i.last_success_at FROM deliveries d JOIN events e ON e.id = d.event_id \
             JOIN integrations i ON i.id = d.integration_id \
             WHERE d.id = ANY($1) ORDER BY d.id",
        )
        .bind(&heads)
        .fetch_all(&mut *tx)
        .await
        .map_err(Failure::from)?;
        tx.commit().await.map_err(Failure::from)?;
        rows.into_iter()
            .map(|row| {
                let previous = match (row.previous_secret, row.previous_secret_until) {
                    (Some(secret), Some(until)) if until > now => Some(secret),
                    _ => None,
                };
                Ok(ClaimedDelivery {
                    delivery_id: row.delivery_id,
                    lease_until,
                    event_id: EventId::from_stored(row.event_id),
                    event_type: EventType::from(row.event_type.as_str()),
                    company: CompanyId::from_stored(row.company_id),
                    channel_id: row.channel_id,
                    channel_seq: row.channel_seq,
                    event_time: row.event_time,
                    queued_at: row.queued_at,
                    data: row.data,
                    attempts: row.attempts as u32,
                    integration: ClaimedIntegration {
                        id: IntegrationId::from_stored(row.integration_id),
                        bot: UserId::from_stored(row.bot_id),
                        target: target(
                            &row.kind,
                            row.url,
                            row.sqs_region,
                            row.sqs_access_key_id,
                            row.sqs_endpoint_url,
                        ),
                        sealed_secret: row.secret,
                        sealed_aws_secret: row.sqs_secret_access_key,
                        sealed_previous_secret: previous,
                        settings: settings(
                            row.timeout_ms,
                            row.retry_schedule.as_deref(),
                            row.max_in_flight,
                        )?,
                        failing_since: row.failing_since,
                        last_success_at: row.last_success_at,
                    },
                })
            })
            .collect::<Outcome<Vec<_>>>()
            .map_err(Into::into)
    }

    async fn finish(&self, finished: &[Finished]) -> StoreResult<()> {
        if finished.is_empty() {
            return Ok(());
        }
        // Lanes are locked in one order by every finishing instance, so two
        // batches never wait on each other in a circle.
        let mut ordered: Vec<&Finished> = finished.iter().collect();
        ordered.sort_by(|a, b| lane_of(&a.claimed).cmp(&lane_of(&b.claimed)));
        let mut attempt = 0;
        loop {
            let outcome: Outcome<()> = async {
                let mut tx = self.pool.begin().await?;
                wait_out_changes(&mut tx, &ordered).await?;
                for item in &ordered {
                    finish_one(&mut tx, item).await?;
                }
                tx.commit().await?;
                Ok(())
            }
            .await;
            match outcome {
                // A deadlock with a change that touched the same lanes: once more.
                Err(failure) if failure.is_retryable() && attempt < crate::RETRIES => {
                    attempt += 1;
                    crate::transaction::backoff(attempt).await;
                }
                outcome => return outcome.map_err(Into::into),
            }
        }
    }

    async fn next_due(&self) -> StoreResult<Option<i64>> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(COALESCE(s.lease_until, s.due_at, l.due_at)) FROM delivery_lanes l \
             JOIN integrations i ON i.id = l.integration_id \
             LEFT JOIN delivery_lane_state s ON s.integration_id = l.integration_id AND s.lane = l.lane \
             WHERE i.state = 'active' AND i.deleted_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(Failure::from)?;
        Ok(next)
    }

    async fn outbox_stats(&self, now: i64) -> StoreResult<OutboxStats> {
        let (due, waiting, held, dead, disabled): (i64, i64, i64, i64, i64) = sqlx::query_as(
            "SELECT \
               (SELECT COUNT(*) FROM delivery_lanes l JOIN integrations i ON i.id = l.integration_id \
                 LEFT JOIN delivery_lane_state s ON s.integration_id = l.integration_id AND s.lane = l.lane \
                 WHERE i.state = 'active' AND COALESCE(s.due_at, l.due_at) <= $1), \
               (SELECT COUNT(*) FROM deliveries d JOIN integrations i ON i.id = d.integration_id \
                 WHERE d.state = 'pending' AND i.state = 'active'), \
               (SELECT COUNT(*) FROM deliveries d JOIN integrations i ON i.id = d.integration_id \
                 WHERE d.state = 'pending' AND i.state != 'active'), \
               (SELECT COUNT(*) FROM deliveries WHERE state = 'dead'), \
               (SELECT COUNT(*) FROM integrations WHERE state = 'disabled' AND deleted_at IS NULL)",
        )
        .bind(now)
        .fetch_one(&self.pool)
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

/// Waits until the changes now queuing deliveries in the channels whose
/// lanes this batch may close have committed, and keeps new ones waiting
/// until this batch commits.
///
/// A change holds its channel's row from taking the next `channelSeq` to its
/// commit. Without this wait a lane could be closed as empty while a change
/// had just added a delivery to it, not yet visible: that delivery would have
/// no lane and never be sent. Channels are locked before lanes, as changes
/// do, and in id order.
async fn wait_out_changes(conn: &mut PgConnection, batch: &[&Finished]) -> Outcome<()> {
    let mut channels: Vec<&str> = batch
        .iter()
        .filter(|item| {
            matches!(
                item.verdict,
                Verdict::Delivered | Verdict::DeadLetter { .. }
            )
        })
        .filter_map(|item| item.claimed.channel_id.as_deref())
        .collect();
    if channels.is_empty() {
        return Ok(());
    }
    channels.sort_unstable();
    channels.dedup();
    sqlx::query("SELECT 1 FROM channels WHERE id = ANY($1) ORDER BY id FOR SHARE")
        .bind(&channels)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The advisory-lock key space of claims (with the integration's hash as the second key).
const CLAIM_LOCK_SPACE: i32 = 0x5342; // "SB"

/// The (integration, lane) of a claimed delivery.
fn lane_of(claimed: &ClaimedDelivery) -> (&str, &str) {
    let lane = claimed
        .channel_id
        .as_deref()
        .unwrap_or(claimed.event_id.as_str());
    (claimed.integration.id.as_str(), lane)
}

/// Records one attempt and applies its verdict, unless the lease was lost.
async fn finish_one(conn: &mut PgConnection, item: &Finished) -> Outcome<()> {
    let claimed = &item.claimed;
    let attempt = &item.attempt;
    let (integration, lane) = lane_of(claimed);
    // Only the holder of the lane's lease may record: a worker whose lease ran
    // out has been replaced and its outcome is dropped (the event is re-sent).
    // The lane stays locked until the commit.
    let lane_exists: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM delivery_lanes WHERE integration_id = $1 AND lane = $2 FOR UPDATE",
    )
    .bind(integration)
    .bind(lane)
    .fetch_optional(&mut *conn)
    .await?;
    let lease: Option<Option<i64>> = match lane_exists {
        Some(_) => sqlx::query_scalar(
            "SELECT lease_until FROM delivery_lane_state WHERE integration_id = $1 AND lane = $2",
        )
        .bind(integration)
        .bind(lane)
        .fetch_optional(&mut *conn)
        .await?,
        None => None,
    };
    if lease.flatten() != Some(claimed.lease_until) {
        tracing::info!(
            delivery = claimed.delivery_id,
            "lease lost before the outcome was recorded"
        );
        return Ok(());
    }
    let now = attempt.attempted_at + attempt.duration_us;
    let (state, finished_at, error) = match &item.verdict {
        Verdict::Delivered => ("delivered", Some(now), None),
        Verdict::Retry { .. } => ("pending", None, attempt.error.as_deref()),
        Verdict::DeadLetter { reason } => ("dead", Some(now), Some(reason.as_str())),
        Verdict::Disable { reason } => ("pending", None, Some(reason.as_str())),
    };
    sqlx::query(
        "UPDATE deliveries SET state = $1, attempts = attempts + 1, finished_at = $2, last_error = $3 WHERE id = $4",
    )
    .bind(state)
    .bind(finished_at)
    .bind(error)
    .bind(claimed.delivery_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO delivery_attempts (delivery_id, attempted_at, duration_us, status_code, outcome, error, \
         response_snippet) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(claimed.delivery_id)
    .bind(attempt.attempted_at)
    .bind(attempt.duration_us)
    .bind(attempt.status_code.map(i32::from))
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
                sqlx::query("UPDATE integrations SET last_success_at = $1, failing_since = NULL WHERE id = $2")
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
            sqlx::query("UPDATE integrations SET state = 'disabled', disabled_reason = $1, updated_at = $2 WHERE id = $3")
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
async fn mark_failing(conn: &mut PgConnection, claimed: &ClaimedDelivery, now: i64) -> Outcome<()> {
    if claimed.integration.failing_since.is_none() {
        sqlx::query(
            "UPDATE integrations SET failing_since = COALESCE(failing_since, $1) WHERE id = $2",
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
    conn: &mut PgConnection,
    integration: &str,
    lane: &str,
    due_at: i64,
) -> Outcome<()> {
    sqlx::query(
        "UPDATE delivery_lane_state SET due_at = $1, lease_until = NULL WHERE integration_id = $2 AND lane = $3",
    )
    .bind(due_at)
    .bind(integration)
    .bind(lane)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Points the lane at its next pending delivery (due at once), or closes it.
async fn advance_lane(
    conn: &mut PgConnection,
    integration: &str,
    lane: &str,
    now: i64,
) -> Outcome<()> {
    let head: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM deliveries WHERE integration_id = $1 AND lane = $2 AND state = 'pending' \
         ORDER BY channel_seq, id LIMIT 1",
    )
    .bind(integration)
    .bind(lane)
    .fetch_optional(&mut *conn)
    .await?;
    match head {
        Some(head) => {
            sqlx::query(
                "UPDATE delivery_lane_state SET head_id = $1, due_at = $2, lease_until = NULL \
                 WHERE integration_id = $3 AND lane = $4",
            )
            .bind(head)
            .bind(now)
            .bind(integration)
            .bind(lane)
            .execute(&mut *conn)
            .await?;
        }
        None => {
            for table in ["delivery_lane_state", "delivery_lanes"] {
                sqlx::query(&format!(
                    "DELETE FROM {table} WHERE integration_id = $1 AND lane = $2"
                ))
                .bind(integration)
                .bind(lane)
                .execute(&mut *conn)
                .await?;
            }
        }
    }
    Ok(())
}
