//! Bot integrations: create, read, change, pause, rotate, test, the delivery
//! log and replay.

use crate::db::Db;
use async_trait::async_trait;
use switchboard_domain::{CompanyId, EventId, IntegrationId, UserId, now_micros};
use switchboard_protocol::{EventType, Timestamp};
use switchboard_store::{
    Attempt, DeliveryLogQuery, DeliveryRecord, DeliveryState, Integration, IntegrationPatch,
    IntegrationState, IntegrationStore, NewIntegration, PulledDelivery, ReplaySelection,
    StoreError, StoreResult, Target,
};

use crate::backend::{Backend, SqlStore};
use crate::events;
use crate::failure::Outcome;
use crate::integration_rows::{INTEGRATION_COLUMNS, IntegrationRow, target_columns, types_json};
use crate::retention;

/// Most events one replay request may queue.
pub const MAX_REPLAY_EVENTS: usize = 100_000;

/// The live integration of a live bot of the company.
async fn integration(
    conn: &mut impl Db,
    company: &CompanyId,
    bot: &UserId,
    id: &IntegrationId,
) -> Outcome<Integration> {
    let sql = format!(
        "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE id = $1 AND company_id = $2 AND bot_id = $3 \
         AND deleted_at IS NULL"
    );
    let row = conn
        .fetch_optional::<IntegrationRow>(&sql, args![id.as_str(), company.as_str(), bot.as_str()])
        .await?;
    row.ok_or_else(|| StoreError::not_found("integration", id))?
        .into_integration()
}

async fn ensure_bot(conn: &mut impl Db, company: &CompanyId, bot: &UserId) -> Outcome<()> {
    crate::users::live_user(conn, company, bot, Some(true))
        .await
        .map(|_| ())
}

#[async_trait]
impl<B: Backend> IntegrationStore for SqlStore<B> {
    async fn pulled_deliveries(
        &self,
        company: &CompanyId,
        bot: &UserId,
        ids: &[i64],
    ) -> StoreResult<Vec<PulledDelivery>> {
        let ids = ids.to_vec();
        query!(self, (company, bot, ids), |conn| {
            crate::pulled::deliveries(conn, company.as_str(), bot.as_str(), ids).await
        })
    }

    async fn log_fetches(&self, ids: &[i64], at: i64) -> StoreResult<Vec<u32>> {
        let ids = ids.to_vec();
        change!(self, (ids, at), |tx| crate::pulled::log_fetches(
            tx, ids, *at
        )
        .await)
    }

    async fn create_integration(
        &self,
        company: &CompanyId,
        new: NewIntegration,
    ) -> StoreResult<Integration> {
        change!(self, (company, new), |tx| {
            ensure_bot(tx, company, &new.bot).await?;
            let id = IntegrationId::generate();
            let now = now_micros();
            let (kind, url, region, access_key_id, endpoint_url) = target_columns(&new.target);
            tx.execute(
                "INSERT INTO integrations (id, company_id, bot_id, kind, url, sqs_region, sqs_access_key_id, \
                 sqs_secret_access_key, sqs_endpoint_url, event_types, secret, timeout_ms, \
                 retry_schedule, max_in_flight, full_member_lists, state, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 'active', $16, $17)",
                args![
                    id.as_str(),
                    company.as_str(),
                    new.bot.as_str(),
                    kind,
                    url,
                    region,
                    access_key_id,
                    &new.sealed_aws_secret,
                    endpoint_url,
                    types_json(&new.event_types),
                    &new.sealed_secret,
                    new.settings.timeout_ms.map(i64::from),
                    new.settings.retry_schedule_ms.as_ref().map(|s| serde_json::to_string(s).unwrap_or_default()),
                    new.settings.max_in_flight.map(i64::from),
                    new.settings.full_member_lists,
                    now,
                    now,
                ],
            )
            .await?;
            let created = integration(tx, company, &new.bot, &id).await?;
            Ok(created)
        })
    }

    async fn list_integrations(
        &self,
        company: &CompanyId,
        bot: &UserId,
    ) -> StoreResult<Vec<Integration>> {
        query!(self, (company, bot), |conn| {
            ensure_bot(conn, company, bot).await?;
            let sql = format!(
                "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE company_id = $1 AND bot_id = $2 \
             AND deleted_at IS NULL ORDER BY created_at, id"
            );
            let rows = conn
                .fetch_all::<IntegrationRow>(&sql, args![company.as_str(), bot.as_str()])
                .await?;
            rows.into_iter()
                .map(IntegrationRow::into_integration)
                .collect::<Outcome<_>>()
        })
    }

    async fn get_integration(
        &self,
        company: &CompanyId,
        bot: &UserId,
        id: &IntegrationId,
    ) -> StoreResult<Integration> {
        query!(self, (company, bot, id), |conn| {
            integration(conn, company, bot, id).await
        })
    }

    async fn update_integration(
        &self,
        company: &CompanyId,
        bot: &UserId,
        id: &IntegrationId,
        patch: IntegrationPatch,
    ) -> StoreResult<Integration> {
        change!(self, (company, bot, id, patch), |tx| {
            // Each run of the transaction starts from the request as it came.
            let patch = patch.clone();
            let mut current = integration(tx, company, bot, id).await?;
            match &mut current.target {
                Target::Webhook { url } => {
                    if let Some(new_url) = patch.url {
                        *url = new_url;
                    }
                }
                Target::Pull => {}
                Target::Sqs(queue) => {
                    if let Some(url) = patch.url {
                        queue.queue_url = url;
                    }
                    if let Some(region) = patch.sqs_region {
                        queue.region = region;
                    }
                    if let Some(key_id) = patch.sqs_access_key_id {
                        queue.access_key_id = key_id;
                    }
                    if let Some(endpoint) = patch.sqs_endpoint_url {
                        queue.endpoint_url = endpoint;
                    }
                }
            }
            if let Some(types) = patch.event_types {
                current.event_types = types;
            }
            if let Some(timeout) = patch.timeout_ms {
                current.settings.timeout_ms = timeout;
            }
            if let Some(schedule) = patch.retry_schedule_ms {
                current.settings.retry_schedule_ms = schedule;
            }
            if let Some(max) = patch.max_in_flight {
                current.settings.max_in_flight = max;
            }
            if let Some(full) = patch.full_member_lists {
                current.settings.full_member_lists = full;
            }
            let (_, url, region, access_key_id, endpoint_url) = target_columns(&current.target);
            tx.execute(
                "UPDATE integrations SET url = $1, sqs_region = $2, sqs_access_key_id = $3, \
                 sqs_secret_access_key = COALESCE($4, sqs_secret_access_key), sqs_endpoint_url = $5, \
                 event_types = $6, timeout_ms = $7, retry_schedule = $8, max_in_flight = $9, full_member_lists = $10, \
                 updated_at = $11 WHERE id = $12",
                args![
                    url,
                    region,
                    access_key_id,
                    &patch.sealed_aws_secret,
                    endpoint_url,
                    types_json(&current.event_types),
                    current.settings.timeout_ms.map(i64::from),
                    current .settings .retry_schedule_ms .as_ref() .map(|s| serde_json::to_string(s).unwrap_or_default()),
                    current.settings.max_in_flight.map(i64::from),
                    current.settings.full_member_lists,
                    now_micros(),
                    id.as_str(),
                ],
            )
            .await?;
            let updated = integration(tx, company, bot, id).await?;
            Ok(updated)
        })
    }

    async fn delete_integration(
        &self,
        company: &CompanyId,
        bot: &UserId,
        id: &IntegrationId,
    ) -> StoreResult<()> {
        change!(self, (company, bot, id), |tx| {
            integration(tx, company, bot, id).await?;
            retire(tx, id.as_str(), now_micros()).await?;
            Ok(())
        })
    }

    async fn set_integration_state(
        &self,
        company: &CompanyId,
        bot: &UserId,
        id: &IntegrationId,
        state: IntegrationState,
    ) -> StoreResult<Integration> {
        change!(self, (company, bot, id, state), |tx| {
            integration(tx, company, bot, id).await?;
            let now = now_micros();
            tx.execute(
                "UPDATE integrations SET state = $1, disabled_reason = NULL, \
                 failing_since = CASE WHEN $2 = 'active' THEN NULL ELSE failing_since END, updated_at = $3 WHERE id = $4",
                args![state.as_str(), state.as_str(), now, id.as_str()],
            )
            .await?;
            if *state == IntegrationState::Active {
                // What waited during the pause is due at once.
                for table in tx.lane_tables() {
                    tx.execute(
                        &format!(
                        "UPDATE {table} SET due_at = LEAST(due_at, $1) WHERE integration_id = $2"
                    ),
                        args![now, id.as_str()],
                    )
                    .await?;
                }
            }
            let updated = integration(tx, company, bot, id).await?;

            Ok(updated)
        })
    }

    async fn rotate_secret(
        &self,
        company: &CompanyId,
        bot: &UserId,
        id: &IntegrationId,
        sealed_secret: String,
        previous_until: i64,
    ) -> StoreResult<Integration> {
        change!(
            self,
            (company, bot, id, sealed_secret, previous_until),
            |tx| {
                integration(tx, company, bot, id).await?;
                tx.execute(
                    "UPDATE integrations SET previous_secret = secret, previous_secret_until = $1, secret = $2, updated_at = $3 \
                 WHERE id = $4",
                    args![previous_until, &sealed_secret, now_micros(), id.as_str()],
                )
            .await?;
                let updated = integration(tx, company, bot, id).await?;
                Ok(updated)
            }
        )
    }

    async fn send_test_event(
        &self,
        company: &CompanyId,
        bot: &UserId,
        id: &IntegrationId,
    ) -> StoreResult<EventId> {
        change!(self, (company, bot, id), |tx| {
            integration(tx, company, bot, id).await?;
            let targets = [id.as_str().to_owned()];
            let event = events::record(
                tx,
                company.as_str(),
                None,
                &EventType::IntegrationTest,
                &serde_json::json!({}),
                &targets,
                now_micros(),
            )
            .await?;
            Ok(event)
        })
    }

    async fn list_deliveries(
        &self,
        company: &CompanyId,
        bot: &UserId,
        id: &IntegrationId,
        page: DeliveryLogQuery,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        query!(self, (company, bot, id, page), |conn| {
            integration(conn, company, bot, id).await?;
            let DeliveryLogQuery {
                state,
                before,
                since,
                limit,
            } = *page;
            if let Some(since) = since {
                retention::ensure_events_kept(conn, "since", since).await?;
            }
            let rows: Vec<(i64, String, String, Option<String>, i64, String, i64, Option<i64>, Option<String>)> =
            conn.fetch_all(
                "SELECT d.id, d.event_id, e.event_type, e.channel_id, d.channel_seq, d.state, d.created_at, \
                 d.finished_at, d.last_error FROM deliveries d JOIN events e ON e.id = d.event_id \
                 WHERE d.integration_id = $1 AND ($2 IS NULL OR d.state = $3) AND ($4 IS NULL OR d.id < $5) \
                 AND ($6 IS NULL OR e.created_at >= $7) \
                 ORDER BY d.id DESC LIMIT $8",
                args![
                    id.as_str(),
                    state.map(DeliveryState::as_str),
                    state.map(DeliveryState::as_str),
                    before,
                    before,
                    since,
                    since,
                    i64::from(limit),
                ],
            )
            .await?;
            let ids: Vec<i64> = rows.iter().map(|row| row.0).collect();
            let attempts: Vec<(i64, i64, i64, Option<i32>, String, Option<String>, Option<String>)> = conn.fetch_all(
                "SELECT delivery_id, attempted_at, duration_us, status_code, outcome, error, response_snippet \
             FROM delivery_attempts WHERE delivery_id = ANY($1) ORDER BY id",
                args![&ids],
            )
        .await?;
            let mut by_delivery: std::collections::HashMap<i64, Vec<Attempt>> =
                std::collections::HashMap::new();
            for (
                delivery,
                attempted_at,
                duration_us,
                status_code,
                outcome,
                error,
                response_snippet,
            ) in attempts
            {
                by_delivery.entry(delivery).or_default().push(Attempt {
                    attempted_at,
                    duration_us,
                    status_code: status_code.map(|code| code as u16),
                    outcome,
                    error,
                    response_snippet,
                });
            }
            Ok(rows
                .into_iter()
                .map(
                    |(
                        delivery,
                        event_id,
                        event_type,
                        channel_id,
                        channel_seq,
                        state,
                        created_at,
                        finished_at,
                        last_error,
                    )| {
                        DeliveryRecord {
                            id: delivery,
                            event_id: EventId::from_stored(event_id),
                            event_type: EventType::from(event_type.as_str()),
                            channel_id,
                            channel_seq,
                            state: DeliveryState::from_stored(&state),
                            created_at,
                            finished_at,
                            last_error,
                            attempts: by_delivery.remove(&delivery).unwrap_or_default(),
                        }
                    },
                )
                .collect())
        })
    }

    async fn replay(
        &self,
        company: &CompanyId,
        bot: &UserId,
        id: &IntegrationId,
        selection: ReplaySelection,
    ) -> StoreResult<u64> {
        change!(self, (company, bot, id, selection), |tx| {
            integration(tx, company, bot, id).await?;
            // Events meant for this integration before, oldest first, without those
            // still waiting to be sent (they will be anyway). One being sent
            // now is sent again: it may have reached the bot already.
            let candidates: Vec<(String, Option<String>, Option<i64>)> = match &selection {
                ReplaySelection::Range { since, until } => {
                    retention::ensure_events_kept(tx, "since", *since).await?;
                    let sql = format!(
                        "SELECT e.id, e.channel_id, e.channel_seq FROM deliveries d JOIN events e ON e.id = d.event_id \
                         WHERE d.integration_id = $1 AND e.created_at >= $2 AND e.created_at <= $3 \
                         AND NOT EXISTS (SELECT 1 FROM deliveries p WHERE p.event_id = e.id AND p.integration_id = $4 \
                                         AND p.state = 'pending' AND p.id NOT IN ({})) \
                         GROUP BY e.id ORDER BY e.created_at, e.id LIMIT $5",
                        leased_heads(tx, "$4")
                    );
                    tx.fetch_all(
                        &sql,
                        args![
                            id.as_str(),
                            since,
                            until,
                            id.as_str(),
                            (MAX_REPLAY_EVENTS + 1) as i64
                        ],
                    )
                    .await?
                }
                ReplaySelection::Events(ids) => {
                    let wanted: Vec<&str> = ids.iter().map(EventId::as_str).collect();
                    let found: Vec<(String, Option<String>, Option<i64>)> = tx
                        .fetch_all(
                            "SELECT e.id, e.channel_id, e.channel_seq FROM deliveries d \
                         JOIN events e ON e.id = d.event_id \
                         WHERE d.integration_id = $1 AND e.id = ANY($2) \
                         GROUP BY e.id ORDER BY e.created_at, e.id",
                            args![id.as_str(), &wanted],
                        )
                        .await?;
                    if let Some((index, missing)) = wanted
                        .iter()
                        .enumerate()
                        .find(|(_, event)| !found.iter().any(|row| row.0 == **event))
                    {
                        let pruned = match retention::events_kept_from(tx).await? {
                            Some(kept_from) => format!(
                                ", or is no longer kept (retention pruned events before {})",
                                Timestamp::from_unix_micros(kept_from)
                            ),
                            None => String::new(),
                        };
                        return Err(StoreError::unknown_reference(
                            format!("eventIds[{index}]"),
                            format!(
                                "event `{missing}` was never delivered to this integration{pruned}"
                            ),
                        )
                        .into());
                    }
                    found
                }
            };
            if candidates.len() > MAX_REPLAY_EVENTS {
                return Err(StoreError::Conflict(format!(
                "since: the range holds more than {MAX_REPLAY_EVENTS} events; replay a shorter range"
            )).into());
            }
            // Hold the channels as a change to them does, so a delivery worker
            // closing one of their lanes waits for these deliveries.
            let mut channels: Vec<&str> = candidates
                .iter()
                .filter_map(|row| row.1.as_deref())
                .collect();
            channels.sort_unstable();
            channels.dedup();
            tx.lock_channels(&channels).await?;
            let now = now_micros();
            for (event, channel, seq) in &candidates {
                let lane = channel.as_deref().unwrap_or(event);
                crate::queue::enqueue(tx, event, id.as_str(), lane, seq.unwrap_or(0), now).await?;
            }
            Ok(candidates.len() as u64)
        })
    }
}

/// Deletes an integration: its pending deliveries are dead-lettered and its lanes closed.
pub(crate) async fn retire(conn: &mut impl Db, id: &str, now: i64) -> Outcome<()> {
    conn.execute(
        "UPDATE integrations SET deleted_at = $1, updated_at = $2 WHERE id = $3",
        args![now, now, id],
    )
    .await?;
    conn.execute(
        "UPDATE deliveries SET state = 'dead', finished_at = $1, last_error = 'the integration was deleted' \
         WHERE integration_id = $2 AND state = 'pending'",
        args![now, id],
    )
    .await?;
    for table in conn.lane_tables() {
        conn.execute(
            &format!("DELETE FROM {table} WHERE integration_id = $1"),
            args![id],
        )
        .await?;
    }
    Ok(())
}

/// A subquery of the ids of the deliveries of the integration `$N`
/// (`integration`, a placeholder) that are in flight: at the head of a lane
/// a worker leased, so the attempt may have reached the bot while its
/// outcome is not recorded yet.
fn leased_heads(conn: &impl Db, integration: &str) -> String {
    format!(
        "SELECT l.head_id FROM {} WHERE l.integration_id = {integration} AND l.lease_until IS NOT NULL",
        conn.lanes()
    )
}
