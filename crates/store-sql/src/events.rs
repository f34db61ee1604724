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

use crate::db::{Arg, Db, ToArg, statement_text, value_rows};
use serde::Serialize;
use switchboard_domain::{EventId, now_micros};
use switchboard_protocol::{Channel, EventType};

use crate::failure::{Failure, Outcome};
use crate::integration_rows::subscribes;
use crate::{load, queue};

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

/// An integration `i` that may be sent events: not deleted, not turned off.
const LIVE_INTEGRATION: &str = "i.deleted_at IS NULL AND i.state != 'disabled'";

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
    const MEMBER: &str =
        "EXISTS (SELECT 1 FROM channel_members m WHERE m.channel_id = $2 AND m.user_id = i.bot_id)";
    let live = format!(
        "SELECT id, event_types FROM integrations i WHERE company_id = $1 AND {LIVE_INTEGRATION} AND "
    );
    let rows: Vec<(String, Option<String>)> = match recipients {
        Recipients::BotMembers => {
            let channels = [(company, channel)];
            return Ok(bot_member_targets(conn, &channels, event_type)
                .await?
                .remove(0));
        }
        Recipients::BotMembersAndRemoved(user) => {
            conn.fetch_all(
                &format!("{live}({MEMBER} OR bot_id = $3) ORDER BY id"),
                args![company, channel, user],
            )
            .await?
        }
        Recipients::MemberBot(bot) => {
            conn.fetch_all(
                &format!("{live}bot_id = $3 AND {MEMBER} ORDER BY id"),
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

/// The live, enabled integrations of the bot members of each of
/// `channels` (a company and a channel of it) that should receive
/// `event_type`, by id; with one statement for them all, in the same order.
pub(crate) async fn bot_member_targets(
    conn: &mut impl Db,
    channels: &[(&str, &str)],
    event_type: &EventType,
) -> Outcome<Vec<Vec<String>>> {
    let companies = load::distinct(channels.iter().map(|(company, _)| *company));
    let ids = load::distinct(channels.iter().map(|(_, channel)| *channel));
    // As in [`targets`], by the companies' integrations and the members' keys.
    let shape = usize::from(ids.len() == 1) | usize::from(companies.len() == 1) << 1;
    let sql = statement_text("bot member targets", shape, || {
        format!(
            "SELECT i.company_id, m.channel_id, i.id, i.event_types FROM integrations i \
             JOIN channel_members m ON m.user_id = i.bot_id AND m.channel_id {} \
             WHERE i.company_id {} AND {LIVE_INTEGRATION} ORDER BY i.id",
            load::one_or_any(&ids, 1),
            load::one_or_any(&companies, 2),
        )
    });
    let rows: Vec<(String, String, String, Option<String>)> = conn
        .fetch_all(&sql, vec![load::key_arg(&ids), load::key_arg(&companies)])
        .await?;
    let mut wanted = vec![Vec::new(); channels.len()];
    for (company, channel, id, filter) in rows {
        if !subscribes(filter.as_deref(), event_type)? {
            continue;
        }
        for (index, of) in channels.iter().enumerate() {
            if *of == (company.as_str(), channel.as_str()) {
                wanted[index].push(id.clone());
            }
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
    let event = NewEvent {
        company,
        channel,
        event_type,
        data: switchboard_protocol::js_json::to_string(data)?,
        targets,
    };
    Ok(record_many(conn, std::slice::from_ref(&event), now)
        .await?
        .remove(0))
}

/// An event for [`record_many`].
pub(crate) struct NewEvent<'a> {
    pub company: &'a str,
    pub channel: Option<&'a str>,
    pub event_type: &'a EventType,
    /// The data, serialized in JavaScript's key order (bodies re-serialized
    /// by a receiver stay the signed bytes): see `js_json`.
    pub data: String,
    /// The integrations that hear of it.
    pub targets: &'a [String],
}

/// Stores events, as [`record`] does each, with one statement per table for
/// them all: a group of messages sent together costs the database about
/// what one does. The events of one channel take its next `channelSeq`s in
/// the order given. Their ids, in the same order.
pub(crate) async fn record_many(
    conn: &mut impl Db,
    events: &[NewEvent<'_>],
    now: i64,
) -> Outcome<Vec<EventId>> {
    let seqs = take_channel_seqs(conn, events, now).await?;
    let ids: Vec<EventId> = events.iter().map(|_| EventId::generate()).collect();
    let columns = "(id, company_id, channel_id, channel_seq, event_type, data, created_at)";
    let mut args = Vec::with_capacity(events.len() * 7);
    for ((event, id), seq) in events.iter().zip(&ids).zip(&seqs) {
        args.extend([
            Arg::Text(Some(id.as_str())),
            Arg::Text(Some(event.company)),
            Arg::Text(event.channel),
            Arg::Int(event.channel.map(|_| *seq)),
            Arg::Text(Some(event.event_type.as_str())),
            Arg::Text(Some(&event.data)),
            Arg::Int(Some(now)),
        ]);
    }
    let insert = statement_text("insert events", events.len(), || {
        format!(
            "INSERT INTO events {columns} VALUES {}",
            value_rows(events.len(), 7)
        )
    });
    conn.execute(&insert, args).await?;
    let mut queued = Vec::new();
    for ((event, id), seq) in events.iter().zip(&ids).zip(&seqs) {
        conn.effects().events.push(event.event_type.clone());
        let lane = event.channel.unwrap_or(id.as_str());
        queued.extend(
            event
                .targets
                .iter()
                .map(|integration| queue::QueuedDelivery {
                    event: id.as_str(),
                    integration,
                    lane,
                    seq: *seq,
                }),
        );
    }
    queue::enqueue_many(conn, &queued, now).await?;
    Ok(ids)
}

/// Raises the `event_seq` of each channel the events are about by the
/// number of its events (and marks the activity of those with a new
/// message); the `channelSeq` of each event, 0 for events of no channel.
async fn take_channel_seqs(
    conn: &mut impl Db,
    events: &[NewEvent<'_>],
    now: i64,
) -> Outcome<Vec<i64>> {
    // Each channel with its count of events and whether one is a new message,
    // in the order of their first event.
    let mut channels: Vec<(&str, i64, bool)> = Vec::new();
    for event in events {
        let Some(channel) = event.channel else {
            continue;
        };
        let new_message = *event.event_type == EventType::MessageNew;
        match channels.iter_mut().find(|(id, ..)| *id == channel) {
            Some((_, count, activity)) => {
                *count += 1;
                *activity |= new_message;
            }
            None => channels.push((channel, 1, new_message)),
        }
    }
    let mut last_seq: Vec<(&str, i64)> = Vec::with_capacity(channels.len());
    if let [(channel, count, activity)] = channels[..] {
        // One channel: its new sequence read back by the update.
        let seq = conn
            .update_returning(
                &statement_text("take a sequence", seq_shape(count, activity), || {
                    seq_update(count, activity, "= $1")
                }),
                "event_seq",
                seq_args(channel.to_arg(), activity, now),
            )
            .await?;
        last_seq.push((channel, seq));
    } else if !channels.is_empty() {
        // One update per distinct (count, activity), most often one, which
        // reads back the new sequences. Its rows are locked in the order of
        // their ids first, as every change and worker locks channels:
        // locked in the order the database finds them, two transactions
        // could each hold a row the other waits for.
        let mut kinds: Vec<(i64, bool)> = channels.iter().map(|(_, n, a)| (*n, *a)).collect();
        kinds.sort_unstable();
        kinds.dedup();
        if kinds.len() > 1 {
            // Several updates: all their rows first, in one order.
            let mut ordered: Vec<&str> = channels.iter().map(|(id, ..)| *id).collect();
            ordered.sort_unstable();
            conn.lock_channels(&ordered).await?;
        }
        for (count, activity) in kinds {
            let ids: Vec<&str> = channels
                .iter()
                .filter(|(_, n, a)| (*n, *a) == (count, activity))
                .map(|(id, ..)| *id)
                .collect();
            let filter =
                "IN (SELECT id FROM channels WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE)";
            let update = statement_text("take sequences", seq_shape(count, activity), || {
                format!(
                    "{} RETURNING id, event_seq",
                    seq_update(count, activity, filter)
                )
            });
            let updated: Vec<(String, i64)> = conn
                .fetch_all(&update, seq_args(ids.to_arg(), activity, now))
                .await?;
            last_seq.extend(
                updated
                    .into_iter()
                    .filter_map(|(id, seq)| Some((*ids.iter().find(|c| **c == id)?, seq))),
            );
        }
    }
    // Each channel's events take its sequences from the first, in order.
    let mut next: Vec<(&str, i64)> = channels
        .iter()
        .map(|(id, count, _)| {
            let last = last_seq.iter().find(|(c, _)| c == id).map(|(_, seq)| *seq);
            let last = last.ok_or_else(|| {
                Failure::backend(format!("channel {id} was not found to take its sequence"))
            })?;
            Ok((*id, last - count + 1))
        })
        .collect::<Outcome<_>>()?;
    Ok(events
        .iter()
        .map(|event| match event.channel {
            Some(channel) => {
                let slot = next.iter_mut().find(|(id, _)| *id == channel);
                slot.map_or(0, |(_, seq)| {
                    *seq += 1;
                    *seq - 1
                })
            }
            None => 0,
        })
        .collect())
}

/// The update of channels `id {filter}` (with `$1`, the ids) taking
/// `count` more sequences, and marking activity at `$2` when `activity`.
fn seq_update(count: i64, activity: bool, filter: &str) -> String {
    let activity = if activity {
        ", last_activity_at = $2"
    } else {
        ""
    };
    format!("UPDATE channels SET event_seq = event_seq + {count}{activity} WHERE id {filter}")
}

/// The shape of a [`seq_update`] for [`statement_text`].
fn seq_shape(count: i64, activity: bool) -> usize {
    usize::try_from(count).unwrap_or(usize::MAX / 4) * 2 + usize::from(activity)
}

/// The arguments of [`seq_update`]: `$2` is bound only when it is used
/// (PostgreSQL types every parameter it is given).
fn seq_args<'a>(ids: Arg<'a>, activity: bool, now: i64) -> Vec<Arg<'a>> {
    if activity {
        vec![ids, Arg::Int(Some(now))]
    } else {
        vec![ids]
    }
}
