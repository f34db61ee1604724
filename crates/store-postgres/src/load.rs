//! Reads shared by the trait implementations: access checks and the loading of
//! whole resources (a channel with its members and users, messages with their
//! authors, mentions and reactions). Each takes a connection so it works inside
//! a write transaction as well as on a reader.

use std::collections::{BTreeMap, HashMap};

use sqlx::PgConnection;
use switchboard_domain::{Actor, ChannelId, MessageId};
use switchboard_protocol::{
    Element, MemberRole, Message, MessageAttachment, MessageQuote, MessageType, Reaction,
    Timestamp, User,
};
use switchboard_store::{ChannelDetails, Members, StoreError};

use crate::failure::Outcome;
use crate::rows::*;

/// How many of a message's reactions `latestReactions` shows.
const LATEST_REACTIONS: usize = 10;

/// Fails with "user not found" unless the actor is a live user of its company.
pub(crate) async fn ensure_actor(conn: &mut PgConnection, actor: &Actor) -> Outcome<()> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT 1::BIGINT FROM users WHERE id = $1 AND company_id = $2 AND deleted_at IS NULL",
    )
    .bind(actor.user.as_str())
    .bind(actor.company.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    match found {
        Some(_) => Ok(()),
        None => Err(StoreError::not_found("user", &actor.user).into()),
    }
}

/// The live channel and the actor's role in it. Not a member, another
/// company's channel, a deleted one and an unknown id all read "not found".
pub(crate) async fn channel_as_member(
    conn: &mut PgConnection,
    actor: &Actor,
    channel: &ChannelId,
) -> Outcome<(ChannelRow, MemberRole)> {
    let sql = format!(
        "SELECT {CHANNEL_COLUMNS}, m.role AS role FROM channels c \
         JOIN channel_members m ON m.channel_id = c.id AND m.user_id = $1 \
         WHERE c.id = $2 AND c.company_id = $3 AND c.deleted_at IS NULL"
    );
    let found = sqlx::query_as::<_, ChannelRowWithRole>(&sql)
        .bind(actor.user.as_str())
        .bind(channel.as_str())
        .bind(actor.company.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    match found {
        Some(found) => Ok((found.channel, MemberRole::from(found.role.as_str()))),
        None => {
            // Say which is missing: the acting user, or the channel for them.
            ensure_actor(conn, actor).await?;
            Err(StoreError::not_found("channel", channel).into())
        }
    }
}

#[derive(sqlx::FromRow)]
struct ChannelRowWithRole {
    #[sqlx(flatten)]
    channel: ChannelRow,
    role: String,
}

/// The users with these ids, by id.
pub(crate) async fn users_by_id(
    conn: &mut PgConnection,
    ids: &[&str],
) -> Outcome<HashMap<String, User>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ANY($1)");
    let rows = sqlx::query_as::<_, UserRow>(&sql)
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.id.clone(), row.into_user()))
        .collect())
}

/// One user by id, or "not found".
pub(crate) async fn user(conn: &mut PgConnection, id: &str) -> Outcome<User> {
    users_by_id(conn, &[id])
        .await?
        .remove(id)
        .ok_or_else(|| StoreError::not_found("user", id).into())
}

/// The members of a channel, by joining time, with their users.
pub(crate) async fn members(conn: &mut PgConnection, channel: &str) -> Outcome<Members> {
    let rows = sqlx::query_as::<_, MemberRow>(
        "SELECT user_id, role, joined_at FROM channel_members WHERE channel_id = $1 ORDER BY joined_at, user_id",
    )
    .bind(channel)
    .fetch_all(&mut *conn)
    .await?;
    let ids: Vec<&str> = rows.iter().map(|row| row.user_id.as_str()).collect();
    let mut users = users_by_id(conn, &ids).await?;
    let users = ids.iter().filter_map(|id| users.remove(*id)).collect();
    Ok(Members {
        members: rows.into_iter().map(MemberRow::into_member).collect(),
        users,
    })
}

/// A channel row with its members and users.
pub(crate) async fn channel_details(
    conn: &mut PgConnection,
    channel: ChannelRow,
) -> Outcome<ChannelDetails> {
    let Members { members, users } = members(conn, &channel.id).await?;
    Ok(ChannelDetails {
        channel: channel.into_channel(),
        members,
        users,
    })
}

/// A channel row by id (live or deleted), for reading back after a change.
pub(crate) async fn channel_row(conn: &mut PgConnection, id: &str) -> Outcome<ChannelRow> {
    let sql = format!("SELECT {CHANNEL_COLUMNS} FROM channels c WHERE c.id = $1");
    Ok(sqlx::query_as::<_, ChannelRow>(&sql)
        .bind(id)
        .fetch_one(&mut *conn)
        .await?)
}

/// A message row of the channel, deleted ones included.
pub(crate) async fn message_row(
    conn: &mut PgConnection,
    channel: &ChannelId,
    message: &MessageId,
) -> Outcome<MessageRow> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1 AND channel_id = $2");
    sqlx::query_as::<_, MessageRow>(&sql)
        .bind(message.as_str())
        .bind(channel.as_str())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::not_found("message", message).into())
}

/// A live message row of the channel.
pub(crate) async fn live_message_row(
    conn: &mut PgConnection,
    channel: &ChannelId,
    message: &MessageId,
) -> Outcome<MessageRow> {
    let row = message_row(conn, channel, message).await?;
    if row.deleted_at.is_some() {
        return Err(StoreError::not_found("message", message).into());
    }
    Ok(row)
}

/// Whole messages for these rows, in the same order.
pub(crate) async fn messages(
    conn: &mut PgConnection,
    rows: Vec<MessageRow>,
) -> Outcome<Vec<Message>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mentions: Vec<Vec<String>> = rows
        .iter()
        .map(|row| serde_json::from_str(&row.mentions))
        .collect::<Result<_, _>>()?;
    let mut user_ids: Vec<&str> = rows.iter().map(|row| row.user_id.as_str()).collect();
    user_ids.extend(mentions.iter().flatten().map(String::as_str));
    user_ids.sort_unstable();
    user_ids.dedup();
    let users = users_by_id(conn, &user_ids).await?;

    let message_ids: Vec<&str> = rows.iter().map(|row| row.id.as_str()).collect();
    let reaction_rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT message_id, user_id, reaction_type, created_at FROM reactions \
         WHERE message_id = ANY($1) ORDER BY created_at DESC, user_id",
    )
    .bind(&message_ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut reactions: HashMap<String, Vec<Reaction>> = HashMap::new();
    for (message_id, user_id, reaction_type, created_at) in reaction_rows {
        reactions.entry(message_id).or_default().push(Reaction {
            reaction_type,
            user_id,
            created_at: Timestamp::from_unix_micros(created_at),
        });
    }

    rows.into_iter()
        .zip(mentions)
        .map(|(row, mentioned)| {
            let user = users
                .get(&row.user_id)
                .cloned()
                .ok_or_else(|| StoreError::not_found("user", &row.user_id))?;
            let all_reactions = reactions.remove(&row.id).unwrap_or_default();
            let mut reaction_counts = BTreeMap::new();
            for reaction in &all_reactions {
                *reaction_counts
                    .entry(reaction.reaction_type.clone())
                    .or_insert(0u64) += 1;
            }
            let elements: Vec<Element> = serde_json::from_str(&row.elements)?;
            let attachments: Vec<MessageAttachment> = serde_json::from_str(&row.attachments)?;
            let quote: Option<MessageQuote> =
                row.quote.as_deref().map(serde_json::from_str).transpose()?;
            Ok(Message {
                message_id: row.id,
                channel_id: row.channel_id,
                message_type: MessageType::from(row.message_type.as_str()),
                text: row.text,
                elements: Some(elements),
                attachments,
                mentions: mentioned
                    .iter()
                    .filter_map(|id| users.get(id).cloned())
                    .collect(),
                giphy: None,
                latest_reactions: all_reactions.into_iter().take(LATEST_REACTIONS).collect(),
                reaction_counts,
                created_at: Timestamp::from_unix_micros(row.created_at),
                updated_at: row.updated_at.map(Timestamp::from_unix_micros),
                user,
                quote,
                forward: None,
                sms: false,
                silent: row.silent,
                event: None,
                extra: Default::default(),
            })
        })
        .collect()
}

/// One whole message.
pub(crate) async fn message(conn: &mut PgConnection, row: MessageRow) -> Outcome<Message> {
    Ok(messages(conn, vec![row]).await?.remove(0))
}
