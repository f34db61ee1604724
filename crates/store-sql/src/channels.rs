//! Channels, members and typing indicators.

use std::collections::HashSet;

use crate::db::Db;
use async_trait::async_trait;
use switchboard_domain::{
    Actor, ChannelId, CompanyId, EventId, UnixMicros, UserId, now_micros, rules,
};
use switchboard_protocol::events::{ChannelDeletedData, ChannelEventData};
use switchboard_protocol::{Channel, EventType, MemberRole};
use switchboard_store::{
    ChannelDetails, ChannelPatch, ChannelStore, DirectPeer, Invitee, Members, NewChannel, Page,
    PersonEvent, StoreError, StoreResult, Typing,
};

use crate::backend::{Backend, SqlStore};
use crate::events::{self, Recipients};
use crate::failure::Outcome;
use crate::load;
use crate::rows::{CHANNEL_COLUMNS, ChannelRow};
use crate::users::find_or_create_person;

#[async_trait]
impl<B: Backend> ChannelStore for SqlStore<B> {
    async fn create_channel(&self, actor: &Actor, new: NewChannel) -> StoreResult<ChannelDetails> {
        change!(self, (actor, new), |tx| {
            load::ensure_actor(tx, actor).await?;
            let others = resolve_members(tx, &actor.company, &new.members, &new.invitees).await?;
            let id = ChannelId::generate();
            let now = now_micros();
            tx.execute(
                "INSERT INTO channels (id, company_id, channel_type, subject, description, access, \
                 last_activity_at, created_at, updated_at) VALUES ($1, $2, 'group', $3, $4, $5, $6, $7, $8)",
                args![
                    id.as_str(),
                    actor.company.as_str(),
                    &new.subject,
                    &new.description,
                    new.access.as_str(),
                    now,
                    now,
                    now,
                ],
            )
            .await?;
            insert_member(tx, &id, &actor.user, &MemberRole::Owner, now).await?;
            for member in others.iter().filter(|member| **member != actor.user) {
                insert_member(tx, &id, member, &MemberRole::Member, now).await?;
            }
            refresh_member_count(tx, &id).await?;
            let row = load::channel_row(tx, id.as_str()).await?;
            let details = load::channel_details(tx, row).await?;
            announce_channel(tx, &actor.company, &id, EventType::ChannelCreated, &details).await?;
            Ok(details)
        })
    }

    async fn direct_channel(&self, actor: &Actor, peer: DirectPeer) -> StoreResult<ChannelDetails> {
        change!(self, (actor, peer), |tx| {
            // Each run of the transaction starts from the request as it came.
            let peer = peer.clone();
            load::ensure_actor(tx, actor).await?;
            let (peer, field) = match peer {
                DirectPeer::User(user) => (user, "memberId"),
                DirectPeer::Invite(invitee) => {
                    let user = find_or_create_person(tx, &actor.company, &invitee).await?;
                    (UserId::from_stored(user.id), "memberToInvite")
                }
            };
            resolve_members(tx, &actor.company, std::slice::from_ref(&peer), &[])
                .await
                .map_err(|_| {
                    StoreError::unknown_reference(
                        field,
                        format!("user `{peer}` was not found in this company"),
                    )
                })?;
            if peer == actor.user {
                return Err(StoreError::invalid(
                    field,
                    "a direct channel needs another user than yourself",
                )
                .into());
            }
            let mut pair = [actor.user.as_str(), peer.as_str()];
            pair.sort_unstable();
            let direct_key = pair.join(" ");
            let existing: Option<String> = tx.optional_scalar(
                "SELECT id FROM channels WHERE company_id = $1 AND direct_key = $2 AND deleted_at IS NULL",
                args![actor.company.as_str(), &direct_key],
            )
            .await?;
            let mut created = false;
            let id = match existing {
                Some(id) => ChannelId::from_stored(id),
                None => {
                    let id = ChannelId::generate();
                    let now = now_micros();
                    tx.execute(
                        "INSERT INTO channels (id, company_id, channel_type, access, direct_key, \
                         last_activity_at, created_at, updated_at) VALUES ($1, $2, 'direct', 'private', $3, $4, $5, $6)",
                        args![id.as_str(), actor.company.as_str(), &direct_key, now, now, now],
                    )
                    .await?;
                    // Both people of a direct channel own it: either may delete it.
                    insert_member(tx, &id, &actor.user, &MemberRole::Owner, now).await?;
                    insert_member(tx, &id, &peer, &MemberRole::Owner, now).await?;
                    refresh_member_count(tx, &id).await?;
                    created = true;
                    id
                }
            };
            let row = load::channel_row(tx, id.as_str()).await?;
            let details = load::channel_details(tx, row).await?;
            if created {
                announce_channel(tx, &actor.company, &id, EventType::ChannelCreated, &details)
                    .await?;
            }
            Ok(details)
        })
    }

    async fn list_channels(&self, actor: &Actor, page: Page) -> StoreResult<Vec<Channel>> {
        query!(self, (actor, page), |conn| {
            load::ensure_actor(conn, actor).await?;
            let sql = format!(
                "SELECT {CHANNEL_COLUMNS} FROM channel_members m JOIN channels c ON c.id = m.channel_id \
             WHERE m.user_id = $1 AND c.company_id = $2 AND c.deleted_at IS NULL \
             ORDER BY c.last_activity_at DESC, c.id DESC LIMIT $3 OFFSET $4"
            );
            let rows = conn
                .fetch_all::<ChannelRow>(
                    &sql,
                    args![
                        actor.user.as_str(),
                        actor.company.as_str(),
                        i64::from(page.limit),
                        i64::from(page.offset)
                    ],
                )
                .await?;
            Ok(rows.into_iter().map(ChannelRow::into_channel).collect())
        })
    }

    async fn get_channel(&self, actor: &Actor, channel: &ChannelId) -> StoreResult<ChannelDetails> {
        query!(self, (actor, channel), |conn| {
            let (row, _) = load::channel_as_member(conn, actor, channel).await?;
            load::channel_details(conn, row).await
        })
    }

    async fn update_channel(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        patch: ChannelPatch,
    ) -> StoreResult<Channel> {
        change!(self, (actor, channel, patch), |tx| {
            // Each run of the transaction starts from the request as it came.
            let patch = patch.clone();
            let (row, role) = load::channel_as_member(tx, actor, channel).await?;
            if !rules::may_update_channel(&role) {
                return Err(StoreError::Forbidden("you may not change this channel".into()).into());
            }
            let mut next = row.clone();
            apply(&mut next, patch);
            let changed = !same_settings(&row, &next);
            if changed {
                tx.execute(
                    "UPDATE channels SET subject = $1, description = $2, access = $3, service = $4, service_title = $5, \
                     broadcast = $6, external = $7, updated_at = $8 WHERE id = $9",
                    args![
                        &next.subject,
                        &next.description,
                        &next.access,
                        &next.service,
                        &next.service_title,
                        next.broadcast,
                        next.external,
                        now_micros(),
                        channel.as_str(),
                    ],
                )
                .await?;
            }
            let updated = load::channel_row(tx, channel.as_str()).await?;
            if changed {
                let details = load::channel_details(tx, updated.clone()).await?;
                announce_channel(
                    tx,
                    &actor.company,
                    channel,
                    EventType::ChannelUpdated,
                    &details,
                )
                .await?;
            }
            Ok(updated.into_channel())
        })
    }

    async fn delete_channel(&self, actor: &Actor, channel: &ChannelId) -> StoreResult<()> {
        change!(self, (actor, channel), |tx| {
            load::ensure_actor(tx, actor).await?;
            let found: Option<(Option<i64>, String)> = tx
                .fetch_optional(
                    "SELECT c.deleted_at, m.role FROM channels c \
                 JOIN channel_members m ON m.channel_id = c.id AND m.user_id = $1 \
                 WHERE c.id = $2 AND c.company_id = $3",
                    args![
                        actor.user.as_str(),
                        channel.as_str(),
                        actor.company.as_str()
                    ],
                )
                .await?;
            let Some((deleted_at, role)) = found else {
                return Err(StoreError::not_found("channel", channel).into());
            };
            if deleted_at.is_some() {
                return Ok(());
            }
            if !rules::may_delete_channel(&MemberRole::from(role.as_str())) {
                return Err(StoreError::Forbidden(
                    "only the channel's owners and supervisors may delete it".into(),
                )
                .into());
            }
            let now = now_micros();
            tx.execute(
                "UPDATE channels SET deleted_at = $1, updated_at = $2, direct_key = NULL WHERE id = $3",
                args![now, now, channel.as_str()],
            )
            .await?;
            tx.execute(
                "DELETE FROM typing WHERE channel_id = $1",
                args![channel.as_str()],
            )
            .await?;
            events::announce(
                tx,
                actor.company.as_str(),
                channel.as_str(),
                EventType::ChannelDeleted,
                Recipients::BotMembers,
                |channel| ChannelDeletedData { channel },
            )
            .await?;
            Ok(())
        })
    }

    async fn list_members(&self, actor: &Actor, channel: &ChannelId) -> StoreResult<Members> {
        query!(self, (actor, channel), |conn| {
            load::channel_as_member(conn, actor, channel).await?;
            load::members(conn, channel.as_str()).await
        })
    }

    async fn add_members(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        members: Vec<UserId>,
        invitees: Vec<Invitee>,
        _silent: bool,
    ) -> StoreResult<Members> {
        change!(self, (actor, channel, members, invitees, _silent), |tx| {
            let (row, _) = load::channel_as_member(tx, actor, channel).await?;
            if row.is_direct() {
                return Err(StoreError::Conflict(
                    "members cannot be added to a direct channel".into(),
                )
                .into());
            }
            let users = resolve_members(tx, &actor.company, members, invitees).await?;
            let now = now_micros();
            let mut added = Vec::new();
            for user in &users {
                if insert_member(tx, channel, user, &MemberRole::Member, now).await? {
                    added.push(user.as_str());
                }
            }
            if !added.is_empty() {
                refresh_member_count(tx, channel).await?;
                touch(tx, channel, now).await?;
                let all = load::members(tx, channel.as_str()).await?;
                events::announce(
                    tx,
                    actor.company.as_str(),
                    channel.as_str(),
                    EventType::MemberAdded,
                    Recipients::BotMembers,
                    |channel| ChannelEventData {
                        channel,
                        members: all
                            .members
                            .into_iter()
                            .filter(|m| added.contains(&m.id.as_str()))
                            .collect(),
                        users: all
                            .users
                            .into_iter()
                            .filter(|u| added.contains(&u.id.as_str()))
                            .collect(),
                    },
                )
                .await?;
            }
            let members = load::members(tx, channel.as_str()).await?;
            Ok(members)
        })
    }

    async fn remove_member(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        member: &UserId,
    ) -> StoreResult<()> {
        change!(self, (actor, channel, member), |tx| {
            let (row, role) = load::channel_as_member(tx, actor, channel).await?;
            if row.is_direct() {
                return Err(StoreError::Conflict(
                    "members cannot be removed from a direct channel".into(),
                )
                .into());
            }
            if !rules::may_remove_member(&role, *member == actor.user) {
                return Err(StoreError::Forbidden(
                    "only the channel's owners and supervisors may remove other members".into(),
                )
                .into());
            }
            let before = load::members(tx, channel.as_str()).await?;
            let Some(removed_member) = before.members.into_iter().find(|m| m.id == member.as_str())
            else {
                return Err(StoreError::not_found("member", member).into());
            };
            let removed_user = before
                .users
                .into_iter()
                .filter(|u| u.id == member.as_str())
                .collect();
            tx.execute(
                "DELETE FROM channel_members WHERE channel_id = $1 AND user_id = $2",
                args![channel.as_str(), member.as_str()],
            )
            .await?;
            tx.execute(
                "DELETE FROM typing WHERE channel_id = $1 AND user_id = $2",
                args![channel.as_str(), member.as_str()],
            )
            .await?;
            refresh_member_count(tx, channel).await?;
            let now = now_micros();
            touch(tx, channel, now).await?;
            events::announce(
                tx,
                actor.company.as_str(),
                channel.as_str(),
                EventType::MemberRemoved,
                Recipients::BotMembersAndRemoved(member.as_str()),
                |channel| ChannelEventData {
                    channel,
                    members: vec![removed_member],
                    users: removed_user,
                },
            )
            .await?;
            Ok(())
        })
    }

    async fn start_typing(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        expires_at: UnixMicros,
    ) -> StoreResult<()> {
        change!(self, (actor, channel, expires_at), |tx| {
            load::channel_as_member(tx, actor, channel).await?;
            tx.execute(
                "INSERT INTO typing (channel_id, user_id, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (channel_id, user_id) DO UPDATE SET expires_at = excluded.expires_at",
                args![channel.as_str(), actor.user.as_str(), expires_at],
            )
            .await?;
            Ok(())
        })
    }

    async fn stop_typing(&self, actor: &Actor, channel: &ChannelId) -> StoreResult<()> {
        change!(self, (actor, channel), |tx| {
            load::channel_as_member(tx, actor, channel).await?;
            clear_typing(tx, channel, &actor.user).await?;
            Ok(())
        })
    }

    async fn list_typing(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        now: UnixMicros,
    ) -> StoreResult<Vec<Typing>> {
        query!(self, (actor, channel, now), |conn| {
            load::channel_as_member(conn, actor, channel).await?;
            let rows: Vec<(String, i64)> = conn.fetch_all(
                "SELECT user_id, expires_at FROM typing WHERE channel_id = $1 AND expires_at > $2 ORDER BY user_id",
                args![channel.as_str(), now],
            )
        .await?;
            Ok(rows
                .into_iter()
                .map(|(user, expires_at)| Typing {
                    user: UserId::from_stored(user),
                    expires_at,
                })
                .collect())
        })
    }

    async fn person_events(
        &self,
        actor: &Actor,
        since: UnixMicros,
        limit: u32,
    ) -> StoreResult<Vec<PersonEvent>> {
        query!(self, (actor, since, limit), |conn| {
            load::ensure_actor(conn, actor).await?;
            let rows: Vec<(String, String, String, Option<i64>, String, i64)> = conn
                .fetch_all(
                    "SELECT e.id, e.event_type, e.channel_id, e.channel_seq, e.data, e.created_at FROM events e \
                     WHERE e.company_id = $1 AND e.created_at >= $2 AND e.event_type <> $3 \
                     AND (e.channel_id IN (SELECT channel_id FROM channel_members WHERE user_id = $4) \
                          OR e.removed_user_id = $4) \
                     ORDER BY e.created_at, e.id LIMIT $5",
                    args![
                        actor.company.as_str(),
                        *since,
                        EventType::MessageAction.as_str(),
                        actor.user.as_str(),
                        i64::from(*limit),
                    ],
                )
                .await?;
            Ok(rows
                .into_iter()
                .map(
                    |(id, event_type, channel, seq, data, created_at)| PersonEvent {
                        id: EventId::from_stored(id),
                        event_type: EventType::from(event_type.as_str()),
                        channel: ChannelId::from_stored(channel),
                        channel_seq: seq.unwrap_or_default(),
                        data,
                        created_at,
                    },
                )
                .collect())
        })
    }
}

/// Queues a `{channel, members, users}` event for the channel's bot members.
async fn announce_channel(
    conn: &mut impl Db,
    company: &CompanyId,
    channel: &ChannelId,
    event: EventType,
    details: &ChannelDetails,
) -> Outcome<()> {
    events::announce(
        conn,
        company.as_str(),
        channel.as_str(),
        event,
        Recipients::BotMembers,
        |channel| ChannelEventData {
            channel,
            members: details.members.clone(),
            users: details.users.clone(),
        },
    )
    .await
}

/// Removes a user's typing indicator in a channel.
pub(crate) async fn clear_typing(
    conn: &mut impl Db,
    channel: &ChannelId,
    user: &UserId,
) -> Outcome<()> {
    conn.execute(
        "DELETE FROM typing WHERE channel_id = $1 AND user_id = $2",
        args![channel.as_str(), user.as_str()],
    )
    .await?;
    Ok(())
}

/// Marks activity in a channel (it moves to the top of its members' lists).
pub(crate) async fn touch(conn: &mut impl Db, channel: &ChannelId, now: UnixMicros) -> Outcome<()> {
    conn.execute(
        "UPDATE channels SET last_activity_at = $1 WHERE id = $2",
        args![now, channel.as_str()],
    )
    .await?;
    Ok(())
}

/// The live users named by id (each must be in the company) followed by the
/// invitees (found or created), without repeats, in the order given.
async fn resolve_members(
    conn: &mut impl Db,
    company: &CompanyId,
    ids: &[UserId],
    invitees: &[Invitee],
) -> Outcome<Vec<UserId>> {
    let wanted: Vec<&str> = ids.iter().map(UserId::as_str).collect();
    let found: HashSet<String> = conn
        .scalars(
            "SELECT id FROM users WHERE company_id = $1 AND deleted_at IS NULL \
         AND id = ANY($2)",
            args![company.as_str(), &wanted],
        )
        .await?
        .into_iter()
        .collect();
    if let Some((index, missing)) = wanted
        .iter()
        .enumerate()
        .find(|(_, id)| !found.contains(**id))
    {
        return Err(StoreError::unknown_reference(
            format!("members[{index}]"),
            format!("user `{missing}` was not found in this company"),
        )
        .into());
    }
    let mut seen = HashSet::new();
    let mut users: Vec<UserId> = ids
        .iter()
        .filter(|id| seen.insert((*id).clone()))
        .cloned()
        .collect();
    for invitee in invitees {
        let user = UserId::from_stored(find_or_create_person(conn, company, invitee).await?.id);
        if seen.insert(user.clone()) {
            users.push(user);
        }
    }
    Ok(users)
}

/// Adds a member; `false` when they already were one.
async fn insert_member(
    conn: &mut impl Db,
    channel: &ChannelId,
    user: &UserId,
    role: &MemberRole,
    now: UnixMicros,
) -> Outcome<bool> {
    let inserted = conn.execute(
        "INSERT INTO channel_members (channel_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (channel_id, user_id) DO NOTHING",
        args![channel.as_str(), user.as_str(), role.as_str(), now],
    )
    .await?;
    Ok(inserted == 1)
}

async fn refresh_member_count(conn: &mut impl Db, channel: &ChannelId) -> Outcome<()> {
    conn.execute(
        "UPDATE channels SET member_count = (SELECT COUNT(*) FROM channel_members WHERE channel_id = $1) WHERE id = $2",
        args![channel.as_str(), channel.as_str()],
    )
    .await?;
    Ok(())
}

fn apply(row: &mut ChannelRow, patch: ChannelPatch) {
    if let Some(subject) = patch.subject {
        row.subject = subject;
    }
    if let Some(description) = patch.description {
        row.description = description;
    }
    if let Some(access) = patch.access {
        row.access = access.as_str().to_owned();
    }
    if let Some(service) = patch.service {
        row.service = service;
    }
    if let Some(service_title) = patch.service_title {
        row.service_title = service_title;
    }
    if let Some(broadcast) = patch.broadcast {
        row.broadcast = broadcast;
    }
    if let Some(external) = patch.external {
        row.external = external;
    }
}

fn same_settings(a: &ChannelRow, b: &ChannelRow) -> bool {
    (
        &a.subject,
        &a.description,
        &a.access,
        &a.service,
        &a.service_title,
        a.broadcast,
        a.external,
    ) == (
        &b.subject,
        &b.description,
        &b.access,
        &b.service,
        &b.service_title,
        b.broadcast,
        b.external,
    )
}
