//! Integrations as stored: their row, the JSON of their filters and
//! schedules, their target's columns, a claimed delivery's row, the
//! in-flight limits a claim leases lanes within, and the outbox's reads.

use switchboard_domain::{CompanyId, EventId, IntegrationId, UserId};
use switchboard_protocol::EventType;
use switchboard_store::{
    ClaimedDelivery, ClaimedIntegration, DeliverySettings, Integration, IntegrationState,
    OutboxStats, SqsQueue, Target,
};

use std::collections::HashMap;

use crate::db::Db;
use crate::failure::Outcome;

/// The columns of `integrations` that [`IntegrationRow`] reads.
pub const INTEGRATION_COLUMNS: &str = "id, company_id, bot_id, kind, url, sqs_region, sqs_access_key_id, sqs_endpoint_url, event_types, timeout_ms, retry_schedule, \
     max_in_flight, full_member_lists, state, disabled_reason, previous_secret_until, failing_since, last_success_at, \
     created_at, updated_at";

stored_row! {
pub struct IntegrationRow {
    pub id: String,
    pub company_id: String,
    pub bot_id: String,
    pub kind: String,
    pub url: Option<String>,
    pub sqs_region: Option<String>,
    pub sqs_access_key_id: Option<String>,
    pub sqs_endpoint_url: Option<String>,
    pub event_types: Option<String>,
    pub timeout_ms: Option<i64>,
    pub retry_schedule: Option<String>,
    pub max_in_flight: Option<i64>,
    pub full_member_lists: Option<bool>,
    pub state: String,
    pub disabled_reason: Option<String>,
    pub previous_secret_until: Option<i64>,
    pub failing_since: Option<i64>,
    pub last_success_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}
}

impl IntegrationRow {
    pub fn into_integration(self) -> Outcome<Integration> {
        Ok(Integration {
            id: IntegrationId::from_stored(self.id),
            company: CompanyId::from_stored(self.company_id),
            bot: UserId::from_stored(self.bot_id),
            target: target(
                &self.kind,
                self.url,
                self.sqs_region,
                self.sqs_access_key_id,
                self.sqs_endpoint_url,
            ),
            event_types: self.event_types.as_deref().map(parse_types).transpose()?,
            settings: settings(
                self.timeout_ms,
                self.retry_schedule.as_deref(),
                self.max_in_flight,
                self.full_member_lists,
            )?,
            state: IntegrationState::from_stored(&self.state),
            disabled_reason: self.disabled_reason,
            previous_secret_until: self.previous_secret_until,
            failing_since: self.failing_since,
            last_success_at: self.last_success_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// A stored event-type filter.
pub fn parse_types(text: &str) -> Outcome<Vec<EventType>> {
    let names: Vec<String> = serde_json::from_str(text)?;
    Ok(names
        .iter()
        .map(|name| EventType::from(name.as_str()))
        .collect())
}

/// An event-type filter as stored.
pub fn types_json(types: &Option<Vec<EventType>>) -> Option<String> {
    types.as_ref().map(|types| {
        serde_json::to_string(&types.iter().map(EventType::as_str).collect::<Vec<_>>())
            .unwrap_or_default()
    })
}

/// An integration's target from its columns.
pub fn target(
    kind: &str,
    url: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    endpoint_url: Option<String>,
) -> Target {
    let url = url.unwrap_or_default();
    match kind {
        "pull" => Target::Pull,
        "sqs" => Target::Sqs(SqsQueue {
            queue_url: url,
            region: region.unwrap_or_default(),
            access_key_id: access_key_id.unwrap_or_default(),
            endpoint_url,
        }),
        _ => Target::Webhook { url },
    }
}

/// The columns a target is stored in: kind, url, region, access key id, endpoint.
pub type TargetColumns<'a> = (
    &'static str,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
);

/// The columns a target is stored in.
pub fn target_columns(target: &Target) -> TargetColumns<'_> {
    match target {
        Target::Webhook { url } => ("webhook", Some(url), None, None, None),
        Target::Pull => ("pull", None, None, None, None),
        Target::Sqs(queue) => (
            "sqs",
            Some(&queue.queue_url),
            Some(&queue.region),
            Some(&queue.access_key_id),
            queue.endpoint_url.as_deref(),
        ),
    }
}

/// Delivery settings from their columns.
pub fn settings(
    timeout_ms: Option<i64>,
    schedule: Option<&str>,
    max_in_flight: Option<i64>,
    full_member_lists: Option<bool>,
) -> Outcome<DeliverySettings> {
    Ok(DeliverySettings {
        timeout_ms: timeout_ms.map(|ms| ms as u32),
        retry_schedule_ms: schedule.map(serde_json::from_str).transpose()?,
        max_in_flight: max_in_flight.map(|n| n as u32),
        full_member_lists,
    })
}

/// Whether an integration's stored type filter lets `event_type` through.
pub fn subscribes(filter: Option<&str>, event_type: &EventType) -> Outcome<bool> {
    let Some(filter) = filter else {
        return Ok(true);
    };
    let types: Vec<String> = serde_json::from_str(filter)?;
    Ok(types.iter().any(|wanted| wanted == event_type.as_str()))
}

/// An integration's in-flight limit: its own, else the server's default,
/// and never below one.
pub fn in_flight_limit(own: Option<i64>, default: u32) -> i64 {
    own.unwrap_or(i64::from(default)).max(1)
}

/// The condition on the integration `i` that keeps a claim to its own
/// lanes: the workers' claims (`None`) take every integration but pull
/// ones; a consumer's takes its scope's pull integrations, whose company,
/// bot and integration (or NULL) are the placeholders from `$first` on.
pub fn claim_scope_condition(pulled: bool, first: usize) -> String {
    if pulled {
        format!(
            "i.kind = 'pull' AND i.company_id = ${first} AND i.bot_id = ${} AND i.id = COALESCE(${}, i.id)",
            first + 1,
            first + 2
        )
    } else {
        "i.kind <> 'pull'".to_owned()
    }
}

/// A lane a claim found due: `(integration, lane, head delivery, the
/// integration's own in-flight limit)`.
pub type DueLane = (String, String, i64, Option<i64>);

/// The due lanes a claim leases, in the order found: at most `limit`, and
/// each integration within its in-flight limit. `in_flight` holds each
/// integration's leases before the claim and counts the new ones.
pub fn within_limits<'a>(
    due: &'a [DueLane],
    in_flight: &mut HashMap<String, i64>,
    limit: u32,
    default_max_in_flight: u32,
) -> Vec<&'a DueLane> {
    let mut leased = Vec::new();
    for lane in due {
        if leased.len() as u32 >= limit {
            break;
        }
        let busy = in_flight.entry(lane.0.clone()).or_insert(0);
        if *busy >= in_flight_limit(lane.3, default_max_in_flight) {
            continue;
        }
        *busy += 1;
        leased.push(lane);
    }
    leased
}

/// When the next lane the workers send becomes due (its lease ends, or it
/// is due), if any is waiting.
pub async fn next_due(conn: &mut impl Db) -> Outcome<Option<i64>> {
    let sql = format!(
        "SELECT MIN(COALESCE(l.lease_until, l.due_at)) FROM {} \
         JOIN integrations i ON i.id = l.integration_id \
         WHERE i.state = 'active' AND i.deleted_at IS NULL AND i.kind <> 'pull'",
        conn.lanes()
    );
    conn.scalar(&sql, crate::args![]).await
}

/// The outbox's counts at `now`, for metrics.
pub async fn outbox_stats(conn: &mut impl Db, now: i64) -> Outcome<OutboxStats> {
    let sql = format!(
        "SELECT \
           (SELECT COUNT(*) FROM {} JOIN integrations i ON i.id = l.integration_id \
             WHERE i.state = 'active' AND l.due_at <= $1), \
           (SELECT COUNT(*) FROM deliveries d JOIN integrations i ON i.id = d.integration_id \
             WHERE d.state = 'pending' AND i.state = 'active'), \
           (SELECT COUNT(*) FROM deliveries d JOIN integrations i ON i.id = d.integration_id \
             WHERE d.state = 'pending' AND i.state != 'active'), \
           (SELECT COUNT(*) FROM deliveries WHERE state = 'dead'), \
           (SELECT COUNT(*) FROM integrations WHERE state = 'disabled' AND deleted_at IS NULL)",
        conn.lanes()
    );
    let (due, waiting, held, dead, disabled): (i64, i64, i64, i64, i64) =
        conn.fetch_one(&sql, crate::args![now]).await?;
    Ok(OutboxStats {
        due: due as u64,
        waiting: (waiting - due).max(0) as u64,
        held: held as u64,
        dead: dead as u64,
        disabled_integrations: disabled as u64,
    })
}

/// The claim rows of these deliveries, by id.
pub async fn claim_rows(conn: &mut impl Db, ids: Vec<i64>) -> Outcome<Vec<ClaimRow>> {
    conn.fetch_all(
        &format!(
            "SELECT {CLAIM_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id \
             JOIN integrations i ON i.id = d.integration_id WHERE d.id = ANY($1) ORDER BY d.id"
        ),
        crate::args![ids],
    )
    .await
}

/// The columns a claim reads for each leased lane head.
pub const CLAIM_COLUMNS: &str = "d.id AS delivery_id, d.event_id, d.channel_seq, d.attempts, e.event_type, e.company_id, \
     e.channel_id, e.data, e.created_at AS event_time, d.created_at AS queued_at, i.id AS integration_id, i.bot_id, i.kind, i.url, \
     i.sqs_region, i.sqs_access_key_id, i.sqs_secret_access_key, i.sqs_endpoint_url, i.secret, \
     i.previous_secret, i.previous_secret_until, i.timeout_ms, i.retry_schedule, i.max_in_flight, \
     i.full_member_lists, i.failing_since, i.last_success_at";

stored_row! {
/// A leased lane head with its event and integration
/// ([`CLAIM_COLUMNS`] of `deliveries d`, `events e`, `integrations i`).
pub struct ClaimRow {
    pub delivery_id: i64,
    pub event_id: String,
    pub channel_seq: i64,
    pub attempts: i64,
    pub event_type: String,
    pub company_id: String,
    pub channel_id: Option<String>,
    pub data: String,
    pub event_time: i64,
    pub queued_at: i64,
    pub integration_id: String,
    pub bot_id: String,
    pub kind: String,
    pub url: Option<String>,
    pub sqs_region: Option<String>,
    pub sqs_access_key_id: Option<String>,
    pub sqs_secret_access_key: Option<String>,
    pub sqs_endpoint_url: Option<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<i64>,
    pub timeout_ms: Option<i64>,
    pub retry_schedule: Option<String>,
    pub max_in_flight: Option<i64>,
    pub full_member_lists: Option<bool>,
    pub failing_since: Option<i64>,
    pub last_success_at: Option<i64>,
}
}

impl ClaimRow {
    /// The delivery a worker sends, leased until `lease_until`; the previous
    /// secret comes along only while it still signs at `now`.
    pub fn into_claimed(self, lease_until: i64, now: i64) -> Outcome<ClaimedDelivery> {
        let row = self;
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
                    row.full_member_lists,
                )?,
                failing_since: row.failing_since,
                last_success_at: row.last_success_at,
            },
        })
    }
}
