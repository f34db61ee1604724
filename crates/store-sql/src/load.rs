//! Reads shared by the trait implementations: access checks and the loading of
//! whole resources (a channel with its members and users, messages with their
//! authors, mentions and reactions). Each takes a connection so it works inside
//! a write transaction as well as on a reader.

use std::collections::HashMap;

use crate::db::{Arg, Db, FromRow, Row, statement_text};
use switchboard_domain::{Actor, ChannelId, MessageId};
use switchboard_protocol::{ChannelMember, MemberRole, Message, User};
use switchboard_store::{ChannelDetails, Members, StoreError};

use crate::failure::{Failure, Outcome};
use crate::messages as assembly;
use crate::rows::*;

/// Fails with "user not found" unless the actor is a live user of its company.
pub(crate) async fn ensure_actor(conn: &mut impl Db, actor: &Actor) -> Outcome<()> {
    let found: Option<i64> = conn
        .optional_scalar(
            "SELECT 1 FROM users WHERE id = $1 AND company_id = $2 AND deleted_at IS NULL",
            args![actor.user.as_str(), actor.company.as_str()],
        )
        .await?;
    match found {
        Some(_) => Ok(()),
        None => Err(StoreError::not_found("user", &actor.user).into()),
    }
}

/// The live channel and the actor's role in it. Not a member, another
/// company's channel, a deleted one and an unknown id all read "not found".
pub(crate) async fn channel_as_member(
    conn: &mut impl Db,
    actor: &Actor,
    channel: &ChannelId,
) -> Outcome<(ChannelRow, MemberRole)> {
    let sql = format!(
        "SELECT {CHANNEL_COLUMNS}, m.role AS role FROM channels c \
         JOIN channel_members m ON m.channel_id = c.id AND m.user_id = $1 \
         WHERE c.id = $2 AND c.company_id = $3 AND c.deleted_at IS NULL"
    );
    let found: ChannelRowWithRole = as_member(conn, actor, channel, &sql).await?;
    Ok((found.channel, MemberRole::from(found.role.as_str())))
}

/// The one row `sql` reads of the channel for the actor, with the actor's
/// user id, the channel's id and the company's id as `$1`, `$2` and `$3`.
/// No row is "user not found" when the actor is gone, else "channel not
/// found".
async fn as_member<R: FromRow + Send>(
    conn: &mut impl Db,
    actor: &Actor,
    channel: &ChannelId,
    sql: &str,
) -> Outcome<R> {
    let (user, company) = (actor.user.as_str(), actor.company.as_str());
    match conn
        .fetch_optional::<R>(sql, args![user, channel.as_str(), company])
        .await?
    {
        Some(found) => Ok(found),
        None => Err(not_a_member(conn, actor, channel).await?),
    }
}

/// Why the actor read nothing of the channel as a member: "user not found"
/// when the actor is gone, else "channel not found" (another company's
/// channel, a deleted one, one the actor is not in, an unknown id). `Err`
/// only for a database error.
async fn not_a_member(conn: &mut impl Db, actor: &Actor, channel: &ChannelId) -> Outcome<Failure> {
    match ensure_actor(conn, actor).await {
        Ok(()) => Ok(StoreError::not_found("channel", channel).into()),
        Err(Failure::Store(refused)) => Ok(Failure::Store(refused)),
        Err(database) => Err(database),
    }
}

/// A channel row followed by the actor's `role`.
struct ChannelRowWithRole {
    channel: ChannelRow,
    role: String,
}

impl FromRow for ChannelRowWithRole {
    fn from_row(row: &mut Row) -> Outcome<Self> {
        Ok(ChannelRowWithRole {
            channel: ChannelRow::from_row(row)?,
            role: row.named("role")?,
        })
    }
}

/// What sending a message reads of its channel and author, as one row.
#[derive(Clone)]
pub(crate) struct Sender {
    pub channel: ChannelRow,
    /// The author's membership of the channel.
    pub membership: ChannelMember,
    pub user: User,
    /// Whether the author has a typing indicator in the channel (sending
    /// clears it).
    pub typing: bool,
}

/// What [`Sender`] holds for each of `sends` (an actor sending to a
/// channel), read with one statement for them all, in the same order. An
/// actor who is not a live member of the live channel reads "not found" as
/// for [`channel_as_member`].
pub(crate) async fn senders(
    conn: &mut impl Db,
    sends: &[(&Actor, &ChannelId)],
) -> Outcome<Vec<Outcome<Sender>>> {
    let users: Vec<&str> = distinct(sends.iter().map(|(actor, _)| actor.user.as_str()));
    let channels: Vec<&str> = distinct(sends.iter().map(|(_, channel)| channel.as_str()));
    let shape = usize::from(users.len() == 1) | usize::from(channels.len() == 1) << 1;
    let sql = statement_text("senders", shape, || {
        format!(
            "SELECT {CHANNEL_COLUMNS}, m.role AS role, m.joined_at AS joined_at, \
             EXISTS (SELECT 1 FROM typing t WHERE t.channel_id = c.id AND t.user_id = m.user_id) AS typing, \
             {USER_COLUMNS} FROM channels c \
             JOIN channel_members m ON m.channel_id = c.id AND m.user_id {} \
             JOIN users u ON u.id = m.user_id AND u.deleted_at IS NULL \
             WHERE c.id {} AND c.deleted_at IS NULL",
            one_or_any(&users, 1),
            one_or_any(&channels, 2),
        )
    });
    let found: Vec<Sender> = conn
        .fetch_all(&sql, vec![key_arg(&users), key_arg(&channels)])
        .await?;
    let mut answers = Vec::with_capacity(sends.len());
    for (actor, channel) in sends {
        let matching = found.iter().position(|sender| {
            sender.user.id == actor.user.as_str()
                && sender.channel.id == channel.as_str()
                && sender.channel.company_id == actor.company.as_str()
        });
        answers.push(match matching {
            // The same author may send to the same channel twice.
            Some(index) => Ok(found[index].clone()),
            None => Err(not_a_member(conn, actor, channel).await?),
        });
    }
    Ok(answers)
}

/// The values once each, in their first order.
pub(crate) fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen: Vec<&str> = Vec::new();
    for value in values {
        if !seen.contains(&value) {
            seen.push(value);
        }
    }
    seen
}

/// The comparison of a column with the keys `$number`: `= $n` for one key
/// (a plain index lookup; a list costs SQLite a table-valued function),
/// `= ANY($n)` for several. Bind the keys with [`key_arg`].
pub(crate) fn one_or_any(keys: &[&str], number: usize) -> String {
    if keys.len() == 1 {
        format!("= ${number}")
    } else {
        format!("= ANY(${number})")
    }
}

/// The parameter of keys compared by [`one_or_any`].
pub(crate) fn key_arg<'a>(keys: &[&'a str]) -> Arg<'a> {
    match keys {
        [key] => Arg::Text(Some(key)),
        keys => Arg::TextList(keys.to_vec()),
    }
}

impl FromRow for Sender {
    fn from_row(row: &mut Row) -> Outcome<Self> {
        let channel = ChannelRow::from_row(row)?;
        let role: String = row.named("role")?;
        let joined_at = row.named("joined_at")?;
        let typing = row.named("typing")?;
        let user = UserRow::from_row(row)?;
        let membership = MemberRow {
            user_id: user.id.clone(),
            role,
            joined_at,
        };
        Ok(Sender {
            channel,
            membership: membership.into_member(),
            user: user.into_user(),
            typing,
        })
    }
}

/// The users with these ids, by id.
pub(crate) async fn users_by_id(
    conn: &mut impl Db,
    ids: &[&str],
) -> Outcome<HashMap<String, User>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    // One id (a message's author, most often) is looked up as one key: the
    // list form costs SQLite a table-valued function for a single row.
    let rows = if let [id] = ids {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE id = $1");
        conn.fetch_all::<UserRow>(&sql, args![*id]).await?
    } else {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE id = ANY($1)");
        conn.fetch_all::<UserRow>(&sql, args![ids]).await?
    };
    Ok(rows
        .into_iter()
        .map(|row| (row.id.clone(), row.into_user()))
        .collect())
}

/// One user by id, or "not found".
pub(crate) async fn user(conn: &mut impl Db, id: &str) -> Outcome<User> {
    users_by_id(conn, &[id])
        .await?
        .remove(id)
        .ok_or_else(|| StoreError::not_found("user", id).into())
}

/// The members of a channel, by joining time, with their users (one
/// statement).
pub(crate) async fn members(conn: &mut impl Db, channel: &str) -> Outcome<Members> {
    Ok(members_of(conn, &[channel]).await?.remove(0))
}

/// The members of each of `channels`, as [`members`] reads them, with one
/// statement for them all; in the same order.
pub(crate) async fn members_of(conn: &mut impl Db, channels: &[&str]) -> Outcome<Vec<Members>> {
    let sql = statement_text("members", usize::from(channels.len() == 1), || {
        format!(
            "SELECT m.channel_id, m.user_id, m.role, m.joined_at, {USER_COLUMNS} FROM channel_members m \
             JOIN users u ON u.id = m.user_id WHERE m.channel_id {} \
             ORDER BY m.channel_id, m.joined_at, m.user_id",
            one_or_any(channels, 1)
        )
    });
    let rows = conn
        .fetch_all::<MemberWithUser>(&sql, vec![key_arg(channels)])
        .await?;
    let mut all: Vec<Members> = channels
        .iter()
        .map(|_| Members {
            members: Vec::new(),
            users: Vec::new(),
        })
        .collect();
    for MemberWithUser(channel, member, user) in rows {
        if let Some(index) = channels.iter().position(|id| *id == channel) {
            all[index].members.push(member.into_member());
            all[index].users.push(user.into_user());
        }
    }
    Ok(all)
}

/// A membership's channel, the membership and its user, as one row.
struct MemberWithUser(String, MemberRow, UserRow);

impl FromRow for MemberWithUser {
    fn from_row(row: &mut Row) -> Outcome<Self> {
        Ok(MemberWithUser(
            row.named("channel_id")?,
            MemberRow::from_row(row)?,
            UserRow::from_row(row)?,
        ))
    }
}

/// The memberships of these users in the channel (the author of a message
/// and those it mentions), by when they joined.
pub(crate) async fn memberships(
    conn: &mut impl Db,
    channel: &str,
    users: &[&str],
) -> Outcome<Vec<ChannelMember>> {
    let rows = conn
        .fetch_all::<MemberRow>(
            "SELECT user_id, role, joined_at FROM channel_members WHERE channel_id = $1 AND user_id = ANY($2) \
             ORDER BY joined_at, user_id",
            args![channel, users.to_vec()],
        )
        .await?;
    Ok(rows.into_iter().map(MemberRow::into_member).collect())
}

/// A channel row with its members and users.
pub(crate) async fn channel_details(
    conn: &mut impl Db,
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
pub(crate) async fn channel_row(conn: &mut impl Db, id: &str) -> Outcome<ChannelRow> {
    let sql = format!("SELECT {CHANNEL_COLUMNS} FROM channels c WHERE c.id = $1");
    conn.fetch_one::<ChannelRow>(&sql, args![id]).await
}

/// A message row of the channel, deleted ones included.
pub(crate) async fn message_row(
    conn: &mut impl Db,
    channel: &ChannelId,
    message: &MessageId,
) -> Outcome<MessageRow> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1 AND channel_id = $2");
    conn.fetch_optional::<MessageRow>(&sql, args![message.as_str(), channel.as_str()])
        .await?
        .ok_or_else(|| StoreError::not_found("message", message).into())
}

/// A live message row of the channel.
pub(crate) async fn live_message_row(
    conn: &mut impl Db,
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
pub(crate) async fn messages(conn: &mut impl Db, rows: Vec<MessageRow>) -> Outcome<Vec<Message>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let user_ids = assembly::user_ids(&rows)?;
    let user_ids: Vec<&str> = user_ids.iter().map(String::as_str).collect();
    let users = users_by_id(conn, &user_ids).await?;
    let message_ids: Vec<&str> = rows.iter().map(|row| row.id.as_str()).collect();
    let reactions: Vec<assembly::ReactionRow> = conn
        .fetch_all(
            "SELECT message_id, user_id, reaction_type, created_at FROM reactions \
         WHERE message_id = ANY($1) ORDER BY created_at DESC, user_id",
            args![&message_ids],
        )
        .await?;
    assembly::assemble(rows, &users, reactions)
}

/// A message just written by `author`: with its author and mentions, and no
/// reactions yet. Only the users it mentions are read.
pub(crate) async fn new_message(
    conn: &mut impl Db,
    row: MessageRow,
    author: User,
) -> Outcome<Message> {
    let user_ids = assembly::user_ids(std::slice::from_ref(&row))?;
    let mentioned: Vec<&str> = user_ids
        .iter()
        .map(String::as_str)
        .filter(|id| *id != author.id)
        .collect();
    let mut users = users_by_id(conn, &mentioned).await?;
    users.insert(author.id.clone(), author);
    Ok(assembly::assemble(vec![row], &users, Vec::new())?.remove(0))
}

/// One whole message.
pub(crate) async fn message(conn: &mut impl Db, row: MessageRow) -> Outcome<Message> {
    Ok(messages(conn, vec![row]).await?.remove(0))
}
