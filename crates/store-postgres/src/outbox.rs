//! The delivery workers' side of the outbox: claim lane heads with a lease,
//! finish them with a verdict.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use switchboard_store::{
    Claim, ClaimedDelivery, DeliveryStore, Finished, HeldLease, OutboxSignal, OutboxStats,
    PullScope, StoreResult,
};

use crate::PgBackend;
use crate::failure::{Failure, Outcome};
use sqlx::PgConnection;
use switchboard_store_sql::Backend;
use switchboard_store_sql::FromRow;
use switchboard_store_sql::integration_rows::{
    self, CLAIM_COLUMNS, ClaimRow, DueLane, claim_scope_condition, within_limits,
};

#[async_trait]
impl DeliveryStore for PgBackend {
    async fn claim(&self, claim: Claim) -> StoreResult<Vec<ClaimedDelivery>> {
        if claim.limit == 0 {
            return Ok(Vec::new());
        }
        let mut tx = crate::transaction::begin_delivery(&self.pool).await?;
        let claimed = claim_lanes(&mut tx, claim, None).await?;
        tx.commit().await.map_err(Failure::from)?;
        Ok(claimed)
    }

    async fn claim_pulled(
        &self,
        scope: &PullScope,
        claim: Claim,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let mut tx = crate::transaction::begin_delivery(&self.pool).await?;
        let claimed = claim_lanes(&mut tx, claim, Some(scope)).await?;
        tx.commit().await.map_err(Failure::from)?;
        Ok(claimed)
    }

    /// One `READ COMMITTED` transaction: the outcomes, then the claim.
    async fn finish_and_claim(
        &self,
        finished: &[Finished],
        claim: Claim,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        if finished.is_empty() {
            return self.claim(claim).await;
        }
        // Lanes are locked in one order by every finishing instance, so two
        // batches never wait on each other in a circle.
        let mut ordered: Vec<&Finished> = finished.iter().collect();
        ordered.sort_by(|a, b| a.lane().cmp(&b.lane()));
        let mut reruns = crate::transaction::Reruns::start();
        loop {
            let outcome: Outcome<Vec<ClaimedDelivery>> = async {
                let mut tx = crate::transaction::begin_delivery(&self.pool).await?;
                crate::finish::record(&mut tx, &ordered).await?;
                let claimed = if claim.limit == 0 {
                    Vec::new()
                } else {
                    claim_lanes(&mut tx, claim, None).await?
                };
                tx.commit().await?;
                Ok(claimed)
            }
            .await;
            match outcome {
                // A deadlock with a change that touched the same lanes: once more.
                Err(failure) if failure.is_retryable() && reruns.again().await => {}
                outcome => return outcome.map_err(Into::into),
            }
        }
    }

    async fn extend_leases(&self, held: &[HeldLease], until: i64) -> StoreResult<Vec<bool>> {
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let integrations: Vec<&str> = held
            .iter()
            .map(|lease| lease.integration.as_str())
            .collect();
        let lanes: Vec<&str> = held.iter().map(|lease| lease.lane.as_str()).collect();
        let ends: Vec<i64> = held.iter().map(|lease| lease.lease_until).collect();
        // One statement, autocommitted: a lane is extended only while its
        // lease is still the one this worker holds.
        let extended: Vec<(String, String, i64)> = sqlx::query_as(
            "UPDATE delivery_lane_state s SET lease_until = $1 \
             FROM UNNEST($2::text[], $3::text[], $4::bigint[]) AS h(integration_id, lane, lease_until) \
             WHERE s.integration_id = h.integration_id AND s.lane = h.lane AND s.lease_until = h.lease_until \
             RETURNING s.integration_id, s.lane, h.lease_until",
        )
        .bind(until)
        .bind(&integrations)
        .bind(&lanes)
        .bind(&ends)
        .fetch_all(&self.pool)
        .await
        .map_err(Failure::from)?;
        Ok(held
            .iter()
            .map(|lease| {
                extended.iter().any(|(integration, lane, until)| {
                    *integration == lease.integration
                        && *lane == lease.lane
                        && *until == lease.lease_until
                })
            })
            .collect())
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

/// The advisory-lock key space of claims (with the integration's hash as the second key).
const CLAIM_LOCK_SPACE: i32 = 0x5342; // "SB"

/// Leases up to `claim.limit` due lanes with up to `claim.run` deliveries
/// each, in the open `READ COMMITTED` transaction: the workers' lanes, or
/// those of a consumer's `pulled` scope.
async fn claim_lanes(
    conn: &mut PgConnection,
    claim: Claim,
    pulled: Option<&PullScope>,
) -> Outcome<Vec<ClaimedDelivery>> {
    let Claim {
        now,
        limit,
        lease_micros,
        default_max_in_flight,
        run,
    } = claim;
    // READ COMMITTED: each statement sees what other instances committed
    // before it, and the locks below keep two of them off one lane.
    // Lanes another instance is claiming or finishing right now are
    // locked by it and skipped; those it claimed before carry a lease.
    let candidates = format!(
        "SELECT l.integration_id, l.lane FROM delivery_lanes l \
         JOIN integrations i ON i.id = l.integration_id \
         LEFT JOIN delivery_lane_state s ON s.integration_id = l.integration_id AND s.lane = l.lane \
         WHERE COALESCE(s.due_at, l.due_at) <= $1 AND (s.lease_until IS NULL OR s.lease_until < $1) \
           AND i.state = 'active' AND i.deleted_at IS NULL AND {} \
         ORDER BY COALESCE(s.due_at, l.due_at) LIMIT $2 FOR UPDATE OF l SKIP LOCKED",
        claim_scope_condition(pulled.is_some(), 3)
    );
    let mut candidates = sqlx::query_as::<_, (String, String)>(&candidates)
        .bind(now)
        .bind(i64::from(limit) * 4);
    if let Some(scope) = pulled {
        candidates = candidates
            .bind(scope.company.as_str())
            .bind(scope.bot.as_str())
            .bind(scope.integration.as_ref().map(|id| id.as_str()));
    }
    let candidates: Vec<(String, String)> = candidates
        .fetch_all(&mut *conn)
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
    let due: Vec<DueLane> = sqlx::query_as(
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
    .fetch_all(&mut *conn)
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
            .execute(&mut *conn)
            .await
            .map_err(Failure::from)?;
    }
    let mut in_flight: HashMap<String, i64> = sqlx::query_as(
        "SELECT integration_id, COUNT(*) FROM delivery_lane_state \
         WHERE lease_until >= $1 AND integration_id = ANY($2) GROUP BY integration_id",
    )
    .bind(now)
    .bind(&integrations)
    .fetch_all(&mut *conn)
    .await
    .map_err(Failure::from)?
    .into_iter()
    .collect();
    let lease_until = now + lease_micros;
    let leased = within_limits(&due, &mut in_flight, limit, default_max_in_flight);
    let leased_integrations: Vec<&str> = leased.iter().map(|lane| lane.0.as_str()).collect();
    let leased_lanes: Vec<&str> = leased.iter().map(|lane| lane.1.as_str()).collect();
    let heads: Vec<i64> = leased.iter().map(|lane| lane.2).collect();
    // The leases, and each lane's head then up to `run - 1` pending
    // deliveries behind it, lane after lane, in the order they are to be
    // sent: one statement.
    let rows = sqlx::query(&format!(
        "WITH leased AS (INSERT INTO delivery_lane_state (integration_id, lane, head_id, due_at, lease_until) \
           SELECT integration_id, lane, head_id, $1, $2 \
           FROM UNNEST($3::text[], $4::text[], $5::bigint[]) AS leased(integration_id, lane, head_id) \
           ON CONFLICT (integration_id, lane) DO UPDATE SET lease_until = EXCLUDED.lease_until) \
         SELECT {CLAIM_COLUMNS} FROM UNNEST($3::text[], $4::text[], $5::bigint[]) \
           WITH ORDINALITY AS h(integration_id, lane, head_id, n) \
         CROSS JOIN LATERAL ( \
           (SELECT d.*, 0 AS place FROM deliveries d WHERE d.id = h.head_id) \
           UNION ALL \
           (SELECT d.*, 1 AS place FROM deliveries d \
            WHERE d.integration_id = h.integration_id AND d.lane = h.lane AND d.state = 'pending' \
              AND d.id <> h.head_id AND $6 > 1 \
            ORDER BY d.channel_seq, d.id LIMIT GREATEST($6 - 1, 0))) AS d \
         JOIN events e ON e.id = d.event_id JOIN integrations i ON i.id = d.integration_id \
         ORDER BY h.n, d.place, d.channel_seq, d.id"
    ))
    .bind(now)
    .bind(lease_until)
    .bind(&leased_integrations)
    .bind(&leased_lanes)
    .bind(&heads)
    .bind(i64::from(run))
    .fetch_all(&mut *conn)
    .await
    .map_err(Failure::from)?;
    let rows = crate::db::decode(rows)?
        .into_iter()
        .map(|mut row| ClaimRow::from_row(&mut row))
        .collect::<Outcome<Vec<_>>>()?;
    rows.into_iter()
        .map(|row| row.into_claimed(lease_until, now))
        .collect::<Outcome<Vec<_>>>()
}
