//! Recording a batch of delivery outcomes: every attempt logged and every
//! verdict applied with a handful of set-based statements per batch, in one
//! `READ COMMITTED` transaction that holds the batch's lanes.

use std::collections::{HashMap, HashSet};

use sqlx::PgConnection;
use switchboard_store::{Finished, Verdict};

use crate::failure::Outcome;

/// Records a batch sorted by lane. Outcomes whose lease was lost (the lane
/// was claimed again after the lease ran out) are dropped: the event is
/// sent again by the new holder.
pub(crate) async fn record(conn: &mut PgConnection, batch: &[&Finished]) -> Outcome<()> {
    let held = hold_lanes(conn, batch).await?;
    if held.is_empty() {
        return Ok(());
    }
    log_attempts(conn, &held).await?;
    update_integrations(conn, &held).await?;
    move_lanes(conn, &held).await
}

/// Waits until the changes now queuing deliveries in these channels (whose
/// lanes this batch is about to close) have committed, and keeps new ones
/// waiting until this batch commits.
///
/// A change holds its channel's row from taking the next `channelSeq` to its
/// commit. Without this wait a lane could be closed as empty while a change
/// had just added a delivery to it, not yet visible: that delivery would have
/// no lane and never be sent. Only the channels of lanes found empty are
/// waited for, after their lanes are held: a lane that moves on to its next
/// delivery needs no wait, and the changes to a busy channel are not held up
/// by every batch of outcomes. A change never waits for a lane held here (its
/// insert of a lane that exists does nothing), so the order lanes, then
/// channels cannot close a circle with it.
async fn wait_out_changes(conn: &mut PgConnection, channels: &[&str]) -> Outcome<()> {
    let mut channels = channels.to_vec();
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

/// Locks the batch's lanes (in order) and keeps the outcomes whose lease
/// still holds. The lane state is read after the lock: whoever changes it
/// holds the lane.
async fn hold_lanes<'a>(
    conn: &mut PgConnection,
    batch: &[&'a Finished],
) -> Outcome<Vec<&'a Finished>> {
    let (integrations, lanes): (Vec<&str>, Vec<&str>) =
        batch.iter().map(|item| item.lane()).unzip();
    sqlx::query(
        "SELECT 1 FROM delivery_lanes l \
         JOIN UNNEST($1::text[], $2::text[]) AS k(integration_id, lane) USING (integration_id, lane) \
         ORDER BY l.integration_id, l.lane FOR UPDATE OF l",
    )
    .bind(&integrations)
    .bind(&lanes)
    .execute(&mut *conn)
    .await?;
    let leases: HashMap<(String, String), i64> = sqlx::query_as::<_, (String, String, i64)>(
        "SELECT s.integration_id, s.lane, s.lease_until FROM delivery_lane_state s \
         JOIN delivery_lanes l USING (integration_id, lane) \
         JOIN UNNEST($1::text[], $2::text[]) AS k(integration_id, lane) USING (integration_id, lane) \
         WHERE s.lease_until IS NOT NULL",
    )
    .bind(&integrations)
    .bind(&lanes)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|(integration, lane, lease)| ((integration, lane), lease))
    .collect();
    Ok(batch
        .iter()
        .copied()
        .filter(|item| {
            let (integration, lane) = item.lane();
            let held = leases.get(&(integration.to_owned(), lane.to_owned()))
                == Some(&item.claimed.lease_until);
            if !held {
                tracing::info!(
                    delivery = item.claimed.delivery_id,
                    "lease lost before the outcome was recorded"
                );
            }
            held
        })
        .collect())
}

/// Each delivery's new state and its attempt in the log.
async fn log_attempts(conn: &mut PgConnection, held: &[&Finished]) -> Outcome<()> {
    let mut ids = Vec::with_capacity(held.len());
    let mut states = Vec::with_capacity(held.len());
    let mut finished_at = Vec::with_capacity(held.len());
    let mut errors: Vec<Option<&str>> = Vec::with_capacity(held.len());
    for item in held {
        let (state, at, error) = item.outcome();
        let state = state.as_str();
        ids.push(item.claimed.delivery_id);
        states.push(state);
        finished_at.push(at);
        errors.push(error);
    }
    // One statement: the states, and the attempts logged beside them.
    let attempts: Vec<_> = held.iter().map(|item| &item.attempt).collect();
    sqlx::query(
        "WITH finished AS (UPDATE deliveries d SET state = u.state, attempts = d.attempts + 1, \
           finished_at = u.finished_at, last_error = u.last_error \
           FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[]) AS u(id, state, finished_at, last_error) \
           WHERE d.id = u.id) \
         INSERT INTO delivery_attempts (delivery_id, attempted_at, duration_us, status_code, outcome, \
         error, response_snippet) \
         SELECT * FROM UNNEST($1::bigint[], $5::bigint[], $6::bigint[], $7::int[], $8::text[], $9::text[], $10::text[])",
    )
    .bind(&ids)
    .bind(&states)
    .bind(&finished_at)
    .bind(&errors)
    .bind(attempts.iter().map(|a| a.attempted_at).collect::<Vec<_>>())
    .bind(attempts.iter().map(|a| a.duration_us).collect::<Vec<_>>())
    .bind(
        attempts
            .iter()
            .map(|a| a.status_code.map(i32::from))
            .collect::<Vec<_>>(),
    )
    .bind(attempts.iter().map(|a| a.outcome.as_str()).collect::<Vec<_>>())
    .bind(attempts.iter().map(|a| a.error.as_deref()).collect::<Vec<_>>())
    .bind(
        attempts
            .iter()
            .map(|a| a.response_snippet.as_deref())
            .collect::<Vec<_>>(),
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The integrations' health: the last success (kept to the second, so a busy
/// integration is not rewritten per event), when a run of failures began,
/// and turning one off. Each integration is written once per batch at most
/// for each of these.
async fn update_integrations(conn: &mut PgConnection, held: &[&Finished]) -> Outcome<()> {
    let mut succeeded = HashSet::new();
    let mut failing = HashSet::new();
    for item in held {
        let integration = &item.claimed.integration;
        let now = item.ended_at();
        match &item.verdict {
            Verdict::Delivered => {
                let stale = integration
                    .last_success_at
                    .is_none_or(|at| now - at > 1_000_000);
                if (integration.failing_since.is_some() || stale)
                    && succeeded.insert(integration.id.as_str())
                {
                    sqlx::query(
                        "UPDATE integrations SET last_success_at = $1, failing_since = NULL WHERE id = $2",
                    )
                    .bind(now)
                    .bind(integration.id.as_str())
                    .execute(&mut *conn)
                    .await?;
                }
            }
            Verdict::Retry { .. } | Verdict::DeadLetter { .. } => {
                if integration.failing_since.is_none() && failing.insert(integration.id.as_str()) {
                    sqlx::query(
                        "UPDATE integrations SET failing_since = COALESCE(failing_since, $1) WHERE id = $2",
                    )
                    .bind(now)
                    .bind(integration.id.as_str())
                    .execute(&mut *conn)
                    .await?;
                }
            }
            Verdict::Disable { reason } => {
                sqlx::query(
                    "UPDATE integrations SET state = 'disabled', disabled_reason = $1, updated_at = $2 WHERE id = $3",
                )
                .bind(reason)
                .bind(now)
                .bind(integration.id.as_str())
                .execute(&mut *conn)
                .await?;
            }
        }
    }
    Ok(())
}

/// A lane whose head was delivered or dead-lettered: it moves on to its
/// next pending delivery, due when the last attempt ended.
struct Advancing<'a> {
    integration: &'a str,
    lane: &'a str,
    due: i64,
    /// The run that sent it goes on: the lane keeps its lease.
    keep_lease: bool,
    /// The channel whose changes may still queue a delivery to the lane.
    channel: Option<&'a str>,
}

/// Releases the lanes whose head stays (a retry, at its time; a disabled
/// integration, for a resume) and moves the others to their next pending
/// delivery, due at once, or closes them when none is left.
async fn move_lanes(conn: &mut PgConnection, held: &[&Finished]) -> Outcome<()> {
    let mut kept = (Vec::new(), Vec::new(), Vec::new());
    let mut advancing = Vec::new();
    // A lane's last outcome in the batch decides where it goes (the ones
    // before it continued its run).
    let mut last_of_lane: HashMap<(&str, &str), &Finished> = HashMap::new();
    for item in held {
        last_of_lane.insert(item.lane(), item);
    }
    for item in held {
        let (integration, lane) = item.lane();
        if !std::ptr::eq(last_of_lane[&(integration, lane)], *item) {
            continue;
        }
        let due = match &item.verdict {
            Verdict::Retry { at } => *at,
            Verdict::Disable { .. } => item.ended_at(),
            Verdict::Delivered | Verdict::DeadLetter { .. } => {
                advancing.push(Advancing {
                    integration,
                    lane,
                    due: item.ended_at(),
                    keep_lease: item.lane_continues,
                    channel: item.claimed.channel_id.as_deref(),
                });
                continue;
            }
        };
        kept.0.push(integration);
        kept.1.push(lane);
        kept.2.push(due);
    }
    if !kept.0.is_empty() {
        sqlx::query(
            "UPDATE delivery_lane_state s SET due_at = u.due_at, lease_until = NULL \
             FROM UNNEST($1::text[], $2::text[], $3::bigint[]) AS u(integration_id, lane, due_at) \
             WHERE s.integration_id = u.integration_id AND s.lane = u.lane",
        )
        .bind(&kept.0)
        .bind(&kept.1)
        .bind(&kept.2)
        .execute(&mut *conn)
        .await?;
    }
    if advancing.is_empty() {
        return Ok(());
    }
    let mut empty = advance(conn, advancing).await?;
    if empty.is_empty() {
        return Ok(());
    }
    // The lanes found empty: once the changes to their channels now in
    // progress have committed, those that gained a delivery move on to it.
    let channels: Vec<&str> = empty.iter().filter_map(|lane| lane.channel).collect();
    if !channels.is_empty() {
        wait_out_changes(conn, &channels).await?;
        empty = advance(conn, empty).await?;
    }
    // The lanes left without a pending delivery close.
    if empty.is_empty() {
        return Ok(());
    }
    let integrations: Vec<&str> = empty.iter().map(|lane| lane.integration).collect();
    let lanes: Vec<&str> = empty.iter().map(|lane| lane.lane).collect();
    for table in ["delivery_lane_state", "delivery_lanes"] {
        sqlx::query(&format!(
            "DELETE FROM {table} t USING UNNEST($1::text[], $2::text[]) AS e(integration_id, lane) \
             WHERE t.integration_id = e.integration_id AND t.lane = e.lane"
        ))
        .bind(&integrations)
        .bind(&lanes)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Moves each lane's head to its next pending delivery; the lanes that had
/// none, which did not move.
async fn advance<'a>(
    conn: &mut PgConnection,
    lanes: Vec<Advancing<'a>>,
) -> Outcome<Vec<Advancing<'a>>> {
    let moved: Vec<(String, String)> = sqlx::query_as(
        "UPDATE delivery_lane_state s SET head_id = n.head_id, due_at = u.due_at, \
           lease_until = CASE WHEN u.keep_lease THEN s.lease_until ELSE NULL END \
         FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bool[]) AS u(integration_id, lane, due_at, keep_lease) \
         CROSS JOIN LATERAL (SELECT d.id AS head_id FROM deliveries d \
             WHERE d.integration_id = u.integration_id AND d.lane = u.lane AND d.state = 'pending' \
             ORDER BY d.channel_seq, d.id LIMIT 1) AS n \
         WHERE s.integration_id = u.integration_id AND s.lane = u.lane \
         RETURNING s.integration_id, s.lane",
    )
    .bind(lanes.iter().map(|lane| lane.integration).collect::<Vec<_>>())
    .bind(lanes.iter().map(|lane| lane.lane).collect::<Vec<_>>())
    .bind(lanes.iter().map(|lane| lane.due).collect::<Vec<_>>())
    .bind(lanes.iter().map(|lane| lane.keep_lease).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await?;
    Ok(lanes
        .into_iter()
        .filter(|lane| {
            !moved
                .iter()
                .any(|(integration, name)| integration == lane.integration && name == lane.lane)
        })
        .collect())
}
