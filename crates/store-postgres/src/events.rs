//! Events and their deliveries, written inside the transaction of the change
//! that causes them.
//!
//! A change first asks for its [`targets`] (the integrations that should hear
//! of it). Only when there are some does it build the event's data and
//! [`record`] it: one `events` row with the channel's next `channelSeq`, one
//! `deliveries` row per target, and the target's lane if it had none.

use serde::Serialize;
use sqlx::PgConnection;
use switchboard_domain::{EventId, now_micros};
use switchboard_protocol::{Channel, EventType};

use crate::failure::Outcome;
use crate::load;
use switchboard_store_sql::created_events;
use switchboard_store_sql::integration_rows::subscribes;

/// Who hears of an event, besides the event-type filter of each integration.
pub(crate) enum Recipients<'a> {
    /// The integrations of the channel's bot members.
    BotMembers,
    /// The bot members and these users (who just left the channel).
    BotMembersAnd(&'a [&'a str]),
    /// The integrations of this bot, if it is a member.
    MemberBot(&'a str),
}

/// The live, enabled integrations that should receive `event_type` from `channel`.
pub(crate) async fn targets(
    conn: &mut PgConnection,
    company: &str,
    channel: &str,
    event_type: &EventType,
    recipients: Recipients<'_>,
) -> Outcome<Vec<String>> {
    let rows: Vec<(String, Option<String>)> = match recipients {
        Recipients::BotMembers | Recipients::BotMembersAnd(_) => {
            let extra: &[&str] = match recipients {
                Recipients::BotMembersAnd(users) => users,
                _ => &[],
            };
            sqlx::query_as(
                "SELECT id, event_types FROM integrations \
                 WHERE company_id = $1 AND deleted_at IS NULL AND state != 'disabled' \
                 AND (bot_id IN (SELECT user_id FROM channel_members WHERE channel_id = $2) \
                      OR bot_id = ANY($3)) \
                 ORDER BY id",
            )
            .bind(company)
            .bind(channel)
            .bind(extra)
            .fetch_all(&mut *conn)
            .await?
        }
        Recipients::MemberBot(bot) => {
            sqlx::query_as(
                "SELECT id, event_types FROM integrations \
                 WHERE company_id = $1 AND deleted_at IS NULL AND state != 'disabled' AND bot_id = $2 \
                 AND bot_id IN (SELECT user_id FROM channel_members WHERE channel_id = $3) ORDER BY id",
            )
            .bind(company)
            .bind(bot)
            .bind(channel)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    let mut wanted = Vec::with_capacity(rows.len());
    for (id, filter) in rows {
        if subscribes(filter.as_deref(), event_type)? {
            wanted.push(id);
        }
    }
    Ok(wanted)
}

/// Queues an event about `channel` for `recipients`, with data built from the
/// channel as it is now; `true` when some integration will receive it (the
/// data is built only then).
pub(crate) async fn announce<D: Serialize>(
    conn: &mut PgConnection,
    company: &str,
    channel: &str,
    event: EventType,
    recipients: Recipients<'_>,
    build: impl FnOnce(Channel) -> D,
) -> Outcome<bool> {
    let wanted = targets(conn, company, channel, &event, recipients).await?;
    if wanted.is_empty() {
        return Ok(false);
    }
    let data = build(load::channel_row(conn, channel).await?.into_channel());
    record(
        conn,
        company,
        Some(channel),
        &event,
        &data,
        &wanted,
        now_micros(),
    )
    .await?;
    Ok(true)
}

/// Stores the event and one delivery per target. Channel events take the
/// channel's next `channelSeq`.
pub(crate) async fn record(
    conn: &mut PgConnection,
    company: &str,
    channel: Option<&str>,
    event_type: &EventType,
    data: &impl Serialize,
    targets: &[String],
    now: i64,
) -> Outcome<EventId> {
    let id = EventId::generate();
    let seq: i64 =
        match channel {
            Some(channel) => sqlx::query_scalar(
                "UPDATE channels SET event_seq = event_seq + 1 WHERE id = $1 RETURNING event_seq",
            )
            .bind(channel)
            .fetch_one(&mut *conn)
            .await?,
            None => 0,
        };
    sqlx::query(
        "INSERT INTO events (id, company_id, channel_id, channel_seq, event_type, data, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id.as_str())
    .bind(company)
    .bind(channel)
    .bind(channel.map(|_| seq))
    .bind(event_type.as_str())
    // In JavaScript's key order: bodies re-serialized by a receiver stay the signed bytes.
    .bind(switchboard_protocol::js_json::to_string(data)?)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    created_events::recorded(event_type);
    let lane = channel.unwrap_or(id.as_str());
    for integration in targets {
        enqueue(conn, id.as_str(), integration, lane, seq, now).await?;
    }
    Ok(id)
}

/// Queues one delivery of a stored event, opening its lane when it has none.
pub(crate) async fn enqueue(
    conn: &mut PgConnection,
    event: &str,
    integration: &str,
    lane: &str,
    seq: i64,
    now: i64,
) -> Outcome<()> {
    let delivery: i64 = sqlx::query_scalar(
        "INSERT INTO deliveries (event_id, integration_id, lane, channel_seq, state, created_at) \
         VALUES ($1, $2, $3, $4, 'pending', $5) RETURNING id",
    )
    .bind(event)
    .bind(integration)
    .bind(lane)
    .bind(seq)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO delivery_lanes (integration_id, lane, head_id, due_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (integration_id, lane) DO NOTHING",
    )
    .bind(integration)
    .bind(lane)
    .bind(delivery)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
