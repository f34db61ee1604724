//! The delivery workers' side of the outbox: claim lane heads with a lease,
//! finish them with a verdict.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use switchboard_store::{
    Claim, ClaimedDelivery, DeliveryStore, Finished, HandOff, HandedOff, HeldLease, OutboxSignal,
    OutboxStats, PullScope, StoreResult, Verdict,
};
use switchboard_store_sql::integration_rows::{
    self, CLAIM_COLUMNS, ClaimRow, DueLane, claim_rows, claim_scope_condition, within_limits,
};
use switchboard_store_sql::{Backend, Db, Outcome, args};

use crate::SqliteBackend;

#[async_trait]
impl DeliveryStore for SqliteBackend {
    async fn claim(&self, claim: Claim) -> StoreResult<Vec<ClaimedDelivery>> {
        if claim.limit == 0 {
            return Ok(Vec::new());
        }
        self.write(move |tx| Box::pin(claim_heads(tx, claim, None)))
            .await
    }

    async fn claim_pulled(
        &self,
        scope: &PullScope,
        claim: Claim,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let scope = scope.clone();
        self.write(move |tx| {
            let scope = scope.clone();
            Box::pin(async move { claim_heads(tx, claim, Some(&scope)).await })
        })
        .await
    }

    /// One change on the writer: the outcomes, then the claim, committed
    /// together.
    async fn finish_and_claim(
        &self,
        finished: &[Finished],
        claim: Claim,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let finished: Arc<[Finished]> = finished.into();
        self.write(move |tx| {
            let finished = finished.clone();
            Box::pin(async move {
                for item in finished.iter() {
                    finish_one(tx, item).await?;
                }
                if claim.limit == 0 {
                    return Ok(Vec::new());
                }
                claim_heads(tx, claim, None).await
            })
        })
        .await
    }

    fn hand_off_to(&self, hand_off: HandOff) -> bool {
        self.hand_off.set(hand_off).is_ok()
    }

    async fn handed_off(&self, handed: &[HandedOff]) -> StoreResult<Vec<ClaimedDelivery>> {
        if handed.is_empty() {
            return Ok(Vec::new());
        }
        let handed: Vec<HandedOff> = handed.to_vec();
        self.read_by_key(move |conn| {
            Box::pin(async move {
                let ids: Vec<i64> = handed.iter().map(|h| h.delivery_id).collect();
                let now = switchboard_domain::now_micros();
                claim_rows(conn, ids)
                    .await?
                    .into_iter()
                    .filter_map(|row| {
                        let lease = handed.iter().find(|h| h.delivery_id == row.delivery_id)?;
                        Some(row.into_claimed(lease.lease_until(), now))
                    })
                    .collect()
            })
        })
        .await
    }

    async fn extend_leases(&self, held: &[HeldLease], until: i64) -> StoreResult<Vec<bool>> {
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let held: Arc<[HeldLease]> = held.into();
        self.write(move |tx| {
            let held = held.clone();
            Box::pin(async move {
                let mut extended = Vec::with_capacity(held.len());
                for lease in held.iter() {
                    let changed = tx
                        .execute(
                            "UPDATE delivery_lanes SET lease_until = $1 \
                             WHERE integration_id = $2 AND lane = $3 AND lease_until = $4",
                            args![until, &lease.integration, &lease.lane, lease.lease_until],
                        )
                        .await?;
                    extended.push(changed == 1);
                }
                Ok(extended)
            })
        })
        .await
    }

    async fn next_due(&self) -> StoreResult<Option<i64>> {
        self.read(|conn| Box::pin(integration_rows::next_due(conn)))
            .await
    }

    async fn outbox_stats(&self, now: i64) -> StoreResult<OutboxStats> {
        self.read(move |conn| Box::pin(integration_rows::outbox_stats(conn, now)))
            .await
    }

    fn outbox_signal(&self) -> Arc<OutboxSignal> {
        self.outbox.clone()
    }
}

/// Releases every lease of the workers: run at the start of a server that
/// holds the file alone, when every such lease belongs to a process that is
/// gone. Leases of pull integrations are held by the bots' consumers, which
/// outlive the server, and are kept. How many lanes were released.
pub fn release_leases(conn: &rusqlite::Connection) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE delivery_lanes SET lease_until = NULL WHERE lease_until IS NOT NULL \
         AND integration_id NOT IN (SELECT id FROM integrations WHERE kind = 'pull')",
        [],
    )
}

/// Leases up to `claim.limit` lanes that are due, within each
/// integration's in-flight limit, with up to `claim.run` deliveries each:
/// the workers' lanes, or those of a consumer's `pulled` scope.
async fn claim_heads(
    tx: &mut impl Db,
    claim: Claim,
    pulled: Option<&PullScope>,
) -> Outcome<Vec<ClaimedDelivery>> {
    let now = claim.now;
    let candidates = i64::from(claim.limit) * 4;
    let company = pulled.map(|scope| scope.company.as_str());
    let bot = pulled.map(|scope| scope.bot.as_str());
    let integration = pulled.and_then(|scope| scope.integration.as_ref().map(|id| id.as_str()));
    let mut params = args![now, candidates];
    if pulled.is_some() {
        params.extend(args![company, bot, integration]);
    }
    let due: Vec<DueLane> = tx
        .fetch_all(
            &format!(
                "SELECT l.integration_id, l.lane, l.head_id, i.max_in_flight FROM delivery_lanes l \
                 JOIN integrations i ON i.id = l.integration_id \
                 WHERE l.due_at <= $1 AND (l.lease_until IS NULL OR l.lease_until < $1) \
                   AND i.state = 'active' AND i.deleted_at IS NULL AND {} \
                 ORDER BY l.due_at LIMIT $2",
                claim_scope_condition(pulled.is_some(), 3)
            ),
            params,
        )
        .await?;
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let mut in_flight: HashMap<String, i64> = tx
        .fetch_all::<(String, i64)>(
            "SELECT integration_id, COUNT(*) FROM delivery_lanes \
             WHERE lease_until IS NOT NULL AND lease_until >= $1 GROUP BY integration_id",
            args![now],
        )
        .await?
        .into_iter()
        .collect();
    let lease_until = now + claim.lease_micros;
    let heads = within_limits(
        &due,
        &mut in_flight,
        claim.limit,
        claim.default_max_in_flight,
    );
    for (integration, lane, ..) in &heads {
        tx.execute(
            "UPDATE delivery_lanes SET lease_until = $1 WHERE integration_id = $2 AND lane = $3",
            args![lease_until, integration, lane],
        )
        .await?;
    }
    let ids: Vec<i64> = heads.iter().map(|(_, _, head, _)| *head).collect();
    let mut rows: HashMap<i64, ClaimRow> = claim_rows(tx, ids)
        .await?
        .into_iter()
        .map(|row| (row.delivery_id, row))
        .collect();
    let mut claimed = Vec::with_capacity(heads.len());
    for (integration, lane, head, _) in heads {
        let Some(row) = rows.remove(head) else {
            continue;
        };
        claimed.push(row.into_claimed(lease_until, now)?);
        if claim.run > 1 {
            let behind: Vec<ClaimRow> = tx
                .fetch_all(
                    &format!(
                        "SELECT {CLAIM_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id \
                         JOIN integrations i ON i.id = d.integration_id \
                         WHERE d.integration_id = $1 AND d.lane = $2 AND d.state = 'pending' AND d.id != $3 \
                         ORDER BY d.channel_seq, d.id LIMIT $4"
                    ),
                    args![integration, lane, *head, i64::from(claim.run - 1)],
                )
                .await?;
            for row in behind {
                claimed.push(row.into_claimed(lease_until, now)?);
            }
        }
    }
    Ok(claimed)
}

/// Records one attempt and applies its verdict, unless the lease was lost.
async fn finish_one(conn: &mut impl Db, item: &Finished) -> Outcome<()> {
    let claimed = &item.claimed;
    let attempt = &item.attempt;
    let (integration, lane) = item.lane();
    let now = item.ended_at();
    let (state, finished_at, error) = item.outcome();
    let state = state.as_str();
    // Only the holder of the lane's lease may record: a worker whose lease ran
    // out has been replaced and its outcome is dropped (the event is re-sent).
    let updated = conn.execute("UPDATE deliveries SET state = $1, attempts = attempts + 1, finished_at = $2, last_error = $3 \
         WHERE id = $4 AND EXISTS (SELECT 1 FROM delivery_lanes \
                                  WHERE integration_id = $5 AND lane = $6 AND lease_until = $7)", args![state, finished_at, error, claimed.delivery_id, integration, lane, claimed.lease_until])
    .await?;
    if updated == 0 {
        tracing::info!(
            delivery = claimed.delivery_id,
            "lease lost before the outcome was recorded"
        );
        return Ok(());
    }
    conn.execute("INSERT INTO delivery_attempts (delivery_id, attempted_at, duration_us, status_code, outcome, error, \
         response_snippet) VALUES ($1, $2, $3, $4, $5, $6, $7)", args![claimed.delivery_id, attempt.attempted_at, attempt.duration_us, attempt.status_code.map(i64::from), &attempt.outcome, &attempt.error, &attempt.response_snippet])
    .await?;
    match &item.verdict {
        Verdict::Delivered => {
            // `last_success_at` is kept to the second: a busy integration is not rewritten per event.
            let stale = claimed
                .integration
                .last_success_at
                .is_none_or(|at| now - at > 1_000_000);
            if claimed.integration.failing_since.is_some() || stale {
                conn.execute(
                    "UPDATE integrations SET last_success_at = $1, failing_since = NULL WHERE id = $2",
                    args![now, integration],
                )
                    .await?;
            }
            advance_lane(conn, integration, lane, now, item.lane_continues).await?;
        }
        Verdict::Retry { at } => {
            mark_failing(conn, claimed, now).await?;
            release_lane(conn, integration, lane, *at).await?;
        }
        Verdict::DeadLetter { .. } => {
            mark_failing(conn, claimed, now).await?;
            advance_lane(conn, integration, lane, now, item.lane_continues).await?;
        }
        Verdict::Disable { reason } => {
            conn.execute(
                "UPDATE integrations SET state = 'disabled', disabled_reason = $1, updated_at = $2 WHERE id = $3",
                args![reason, now, integration],
            )
                .await?;
            release_lane(conn, integration, lane, now).await?;
        }
    }
    Ok(())
}

/// Notes when the integration's run of failures began (once per run).
async fn mark_failing(conn: &mut impl Db, claimed: &ClaimedDelivery, now: i64) -> Outcome<()> {
    if claimed.integration.failing_since.is_none() {
        conn.execute(
            "UPDATE integrations SET failing_since = COALESCE(failing_since, $1) WHERE id = $2",
            args![now, claimed.integration.id.as_str()],
        )
        .await?;
    }
    Ok(())
}

/// Keeps the lane's head and makes it due at `due_at`.
async fn release_lane(
    conn: &mut impl Db,
    integration: &str,
    lane: &str,
    due_at: i64,
) -> Outcome<()> {
    conn.execute(
        "UPDATE delivery_lanes SET due_at = $1, lease_until = NULL WHERE integration_id = $2 AND lane = $3",
        args![due_at, integration, lane],
    )
        .await?;
    Ok(())
}

/// Points the lane at its next pending delivery (due at once), or closes it.
/// The lease is released, or kept when the worker goes on with the lane.
///
/// Two plain statements rather than an `UPDATE … RETURNING` read by the
/// caller: SQLite runs `RETURNING` through its trigger machinery with a
/// statement journal, dearer than the delete by key that finds nothing
/// while the lane has deliveries left.
async fn advance_lane(
    conn: &mut impl Db,
    integration: &str,
    lane: &str,
    now: i64,
    keep_lease: bool,
) -> Outcome<()> {
    conn.execute(
        "UPDATE delivery_lanes SET \
           lease_until = CASE WHEN $4 THEN lease_until ELSE NULL END, due_at = $1, head_id = COALESCE( \
           (SELECT id FROM deliveries WHERE integration_id = $2 AND lane = $3 AND state = 'pending' \
            ORDER BY channel_seq, id LIMIT 1), 0) \
         WHERE integration_id = $2 AND lane = $3",
        args![now, integration, lane, keep_lease],
    )
    .await?;
    conn.execute(
        "DELETE FROM delivery_lanes WHERE integration_id = $1 AND lane = $2 AND head_id = 0",
        args![integration, lane],
    )
    .await?;
    Ok(())
}
