//! Events and their deliveries, written inside the transaction of the change
//! that causes them.
//!
//! A change asks for its [`targets`] (the integrations that should hear of
//! it), builds the event's data and [`record`]s it: one `events` row with the
//! channel's next `channelSeq`, one `deliveries` row per target, and the
//! target's lane if it had none. A channel event is recorded even when no
//! bot hears of it: the members' live feeds (`person_events`) read it too
//! (all but those meant for one bot, which are recorded only for it), and a
//! person removed from a channel reads the event that removed them.

use crate::db::{Db, HandOffTerms};
use serde::Serialize;
use switchboard_domain::{EventId, now_micros};
use switchboard_protocol::{Channel, EventType};
use switchboard_store::{HandedLane, HandedOff};

use crate::failure::Outcome;
use crate::integration_rows::{in_flight_limit, subscribes};
use crate::load;

/// Who hears of an event, besides the event-type filter of each integration.
pub(crate) enum Recipients<'a> {
    /// The integrations of the channel's bot members.
    BotMembers,
    /// The bot members and this user, who was just removed from the channel
    /// (their integrations hear of it, and so does their feed).
    BotMembersAndRemoved(&'a str),
    /// The integrations of this bot, if it is a member.
    MemberBot(&'a str),
}

/// The live, enabled integrations that should receive `event_type` from `channel`.
pub(crate) async fn targets(
    conn: &mut impl Db,
    company: &str,
    channel: &str,
    event_type: &EventType,
    recipients: Recipients<'_>,
) -> Outcome<Vec<String>> {
    // The company's integrations (a handful), each checked against the
    // channel's members by key: neither every company's integrations nor a
    // large channel's members are read.
    const LIVE: &str = "SELECT id, event_types FROM integrations i \
         WHERE company_id = $1 AND deleted_at IS NULL AND state != 'disabled' AND ";
    const MEMBER: &str =
        "EXISTS (SELECT 1 FROM channel_members m WHERE m.channel_id = $2 AND m.user_id = i.bot_id)";
    let rows: Vec<(String, Option<String>)> = match recipients {
        Recipients::BotMembers => {
            conn.fetch_all(
                &format!("{LIVE}{MEMBER} ORDER BY id"),
                args![company, channel],
            )
            .await?
        }
        Recipients::BotMembersAndRemoved(user) => {
            conn.fetch_all(
                &format!("{LIVE}({MEMBER} OR bot_id = $3) ORDER BY id"),
                args![company, channel, user],
            )
            .await?
        }
        Recipients::MemberBot(bot) => {
            conn.fetch_all(
                &format!("{LIVE}bot_id = $3 AND {MEMBER} ORDER BY id"),
                args![company, channel, bot],
            )
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

/// Records an event about `channel` for its members' feeds and queues it for
/// `recipients`, with data built from the channel as it is now.
pub(crate) async fn announce<D: Serialize>(
    conn: &mut impl Db,
    company: &str,
    channel: &str,
    event: EventType,
    recipients: Recipients<'_>,
    build: impl FnOnce(Channel) -> D,
) -> Outcome<()> {
    // An event for one bot (a button pressed) is no member's news: with no
    // integration to hear it, there is nothing to record.
    let for_one_bot = matches!(recipients, Recipients::MemberBot(_));
    let removed = match recipients {
        Recipients::BotMembersAndRemoved(user) => Some(user),
        _ => None,
    };
    let wanted = targets(conn, company, channel, &event, recipients).await?;
    if for_one_bot && wanted.is_empty() {
        return Ok(());
    }
    let data = build(load::channel_row(conn, channel).await?.into_channel());
    let id = record(
        conn,
        company,
        Some(channel),
        &event,
        &data,
        &wanted,
        now_micros(),
    )
    .await?;
    if let Some(user) = removed {
        // No longer a member, the person removed reads this one on their feed.
        conn.execute(
            "UPDATE events SET removed_user_id = $1 WHERE id = $2",
            args![user, id.as_str()],
        )
        .await?;
    }
    Ok(())
}

/// Stores the event and one delivery per target. Channel events take the
/// channel's next `channelSeq`; a new message also marks the channel's
/// activity (it moves to the top of its members' lists) in the same
/// statement, which its sending would otherwise make on its own.
pub(crate) async fn record(
    conn: &mut impl Db,
    company: &str,
    channel: Option<&str>,
    event_type: &EventType,
    data: &impl Serialize,
    targets: &[String],
    now: i64,
) -> Outcome<EventId> {
    let id = EventId::generate();
    let seq: i64 = match channel {
        Some(channel) if *event_type == EventType::MessageNew => {
            conn.update_returning(
                "UPDATE channels SET event_seq = event_seq + 1, last_activity_at = $2 WHERE id = $1",
                "event_seq",
                args![channel, now],
            )
            .await?
        }
        Some(channel) => {
            conn.update_returning(
                "UPDATE channels SET event_seq = event_seq + 1 WHERE id = $1",
                "event_seq",
                args![channel],
            )
            .await?
        }
        None => 0,
    };
    // In JavaScript's key order: bodies re-serialized by a receiver stay the signed bytes.
    let data = switchboard_protocol::js_json::to_string(data)?;
    conn.execute(
        "INSERT INTO events (id, company_id, channel_id, channel_seq, event_type, data, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        args![id.as_str(), company, channel, channel.map(|_| seq), event_type.as_str(), data, now],
    )
    .await?;
    conn.effects().events.push(event_type.clone());
    let lane = channel.unwrap_or(id.as_str());
    for integration in targets {
        enqueue(conn, id.as_str(), integration, lane, seq, now).await?;
    }
    Ok(id)
}

/// Queues one delivery of a stored event, opening its lane when it has none.
pub(crate) async fn enqueue(
    conn: &mut impl Db,
    event: &str,
    integration: &str,
    lane: &str,
    seq: i64,
    now: i64,
) -> Outcome<()> {
    let delivery = conn
        .insert_returning_id(
            "INSERT INTO deliveries (event_id, integration_id, lane, channel_seq, state, created_at) \
             VALUES ($1, $2, $3, $4, 'pending', $5)",
            args![event, integration, lane, seq, now],
        )
        .await?;
    let opened = conn
        .execute(
            "INSERT INTO delivery_lanes (integration_id, lane, head_id, due_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (integration_id, lane) DO NOTHING",
            args![integration, lane, delivery, now],
        )
        .await?
        == 1;
    let handed_off = match conn.hand_off() {
        Some(terms) if opened => hand_off(conn, integration, lane, delivery, now, terms).await?,
        Some(_) => {
            hand_off_behind(conn, integration, lane, delivery, seq, now).await?;
            false
        }
        None => false,
    };
    // A delivery handed off on its own lease needs no worker to look for it;
    // one behind a held lane may still be left to the claims.
    if !handed_off {
        conn.effects().queued_deliveries = true;
    }
    Ok(())
}

/// Hands off a delivery queued on a lane this process's workers hold, with
/// the lane's pending delivery it comes right after, so that the run
/// sending the lane can go on to it (see [`HandedLane::Behind`]). Only a
/// delivery that is the lane's last in `channelSeq` order is: a replayed
/// event queued behind later ones is left to the claims, which send it in
/// its place.
async fn hand_off_behind(
    conn: &mut impl Db,
    integration: &str,
    lane: &str,
    delivery: i64,
    seq: i64,
    now: i64,
) -> Outcome<()> {
    let previous: Option<(i64, i64)> = conn
        .fetch_optional(
            "SELECT d.id, d.channel_seq \
             FROM delivery_lanes l JOIN integrations i ON i.id = l.integration_id \
             JOIN deliveries d ON d.integration_id = l.integration_id AND d.lane = l.lane \
             WHERE l.integration_id = $1 AND l.lane = $2 AND l.lease_until >= $4 \
               AND i.state = 'active' AND i.deleted_at IS NULL AND i.kind <> 'pull' \
               AND d.state = 'pending' AND d.id <> $3 \
             ORDER BY d.channel_seq DESC, d.id DESC LIMIT 1",
            args![integration, lane, delivery, now],
        )
        .await?;
    if let Some((previous, previous_seq)) = previous
        && (previous_seq, previous) < (seq, delivery)
    {
        conn.effects().handed_off.push(HandedOff {
            delivery_id: delivery,
            lane: HandedLane::Behind { previous },
        });
    }
    Ok(())
}

/// Leases a lane just opened for this process's workers, when its
/// integration is active, sent by the workers (not pulled) and under its
/// in-flight limit, and notes the
/// delivery to hand them after the commit; whether it did.
async fn hand_off(
    conn: &mut impl Db,
    integration: &str,
    lane: &str,
    delivery: i64,
    now: i64,
    terms: HandOffTerms,
) -> Outcome<bool> {
    let room: Option<(i64, Option<i64>)> = conn
        .fetch_optional(
            "SELECT (SELECT COUNT(*) FROM delivery_lanes \
                     WHERE integration_id = $1 AND lease_until IS NOT NULL AND lease_until >= $2), \
                    max_in_flight \
             FROM integrations WHERE id = $1 AND state = 'active' AND deleted_at IS NULL AND kind <> 'pull'",
            args![integration, now],
        )
        .await?;
    let Some((busy, max)) = room else {
        return Ok(false);
    };
    if busy >= in_flight_limit(max, terms.default_max_in_flight) {
        return Ok(false);
    }
    let lease_until = now + terms.lease_micros;
    conn.execute(
        "UPDATE delivery_lanes SET lease_until = $1 WHERE integration_id = $2 AND lane = $3",
        args![lease_until, integration, lane],
    )
    .await?;
    conn.effects().handed_off.push(HandedOff {
        delivery_id: delivery,
        lane: HandedLane::Leased { lease_until },
    });
    Ok(true)
}
