//! Channels, members and typing indicators.

use std::collections::HashSet;

use async_trait::async_trait;
use sqlx::SqliteConnection;
use switchboard_domain::{Actor, ChannelId, CompanyId, UnixMicros, UserId, now_micros, rules};
use switchboard_protocol::events::{ChannelDeletedData, ChannelEventData};
use switchboard_protocol::{Channel, EventType, MemberRole};
use switchboard_store::{
    ChannelDetails, ChannelPatch, ChannelStore, DirectPeer, Invitee, Members, NewChannel, Page,
    StoreError, StoreResult, Typing,
};

use crate::SqliteStore;
use crate::events::{self, Recipients};
use crate::failure::{Failure, Outcome};
use crate::load;
use crate::rows::{CHANNEL_COLUMNS, ChannelRow};
use crate::users::find_or_create_person;

#[async_trait]
impl ChannelStore for SqliteStore {
    async fn create_channel(&self, actor: &Actor, new: NewChannel) -> StoreResult<ChannelDetails> {
        let mut tx = self.writer.begin().await.map_err(Failure::from)?;
        load::ensure_actor(&mut tx, actor).await?;
        let others = resolve_members(&mut tx, &actor.company, &new.members, &new.invitees).await?;
        let id = ChannelId::generate();
        let now = now_micros();
        sqlx::query(
            "INSERT INTO channels (id, company_id, channel_type, subject, description, access, \
             last_activity_at, created_at, updated_at) VALUES (?, ?, 'group', ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.as_str())
        .bind(actor.company.as_str())
        .bind(&new.subject)
        .bind(&new.description)
        .bind(new.access.as_str())
        .bind(now)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(Failure::from)?;
        insert_member(&mut tx, &id, &actor.user, &MemberRole::Owner, now).await?;
        for member in others.iter().filter(|member| **member != actor.user) {
            insert_member(&mut tx, &id, member, &MemberRole::Member, now).await?;
        }
        refresh_member_count(&mut tx, &id).await?;
        let row = load::channel_row(&mut tx, id.as_str()).await?;
        let details = load::channel_details(&mut tx, row).await?;
        let queued = announce_channel(
            &mut tx,
            &actor.company,
            &id,
            EventType::ChannelCreated,
            &details,
        )
        .await?;
        tx.commit().await.map_err(Failure::from)?;
        self.wake_workers_if(queued);
        Ok(details)
    }

    async fn direct_channel(&self, actor: &Actor, peer: DirectPeer) -> StoreResult<ChannelDetails> {
        let mut tx = self.writer.begin().await.map_err(Failure::from)?;
        load::ensure_actor(&mut tx, actor).await?;
        let (peer, field) = match peer {
            DirectPeer::User(user) => (user, "memberId"),
            DirectPeer::Invite(invitee) => {
                let user = find_or_create_person(&mut tx, &actor.company, &invitee).await?;
                (UserId::from_stored(user.id), "memberToInvite")
            }
        };
        resolve_members(&mut tx, &actor.company, std::slice::from_ref(&peer), &[])
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
            ));
        }
        let mut pair = [actor.user.as_str(), peer.as_str()];
        pair.sort_unstable();
        let direct_key = pair.join(" ");
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT id FROM channels WHERE company_id = ? AND direct_key = ? AND deleted_at IS NULL",
        )
        .bind(actor.company.as_str())
        .bind(&direct_key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(Failure::from)?;
        let mut created = false;
        let id = match existing {
            Some(id) => ChannelId::from_stored(id),
            None => {
                let id = ChannelId::generate();
                let now = now_micros();
                sqlx::query(
                    "INSERT INTO channels (id, company_id, channel_type, access, direct_key, \
                     last_activity_at, created_at, updated_at) VALUES (?, ?, 'direct', 'private', ?, ?, ?, ?)",
                )
                .bind(id.as_str())
                .bind(actor.company.as_str())
                .bind(&direct_key)
                .bind(now)
                .bind(now)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(Failure::from)?;
                // Both people of a direct channel own it: either may delete it.
                insert_member(&mut tx, &id, &actor.user, &MemberRole::Owner, now).await?;
                insert_member(&mut tx, &id, &peer, &MemberRole::Owner, now).await?;
                refresh_member_count(&mut tx, &id).await?;
                created = true;
                id
            }
        };
        let row = load::channel_row(&mut tx, id.as_str()).await?;
        let details = load::channel_details(&mut tx, row).await?;
        let mut queued = false;
        if created {
            queued = announce_channel(
                &mut tx,
                &actor.company,
                &id,
                EventType::ChannelCreated,
                &details,
            )
            .await?;
        }
        tx.commit().await.map_err(Failure::from)?;
        self.wake_workers_if(queued);
        Ok(details)
    }

    async fn list_channels(&self, actor: &Actor, page: Page) -> StoreResult<Vec<Channel>> {
        let mut conn = self.reader.acquire().await.map_err(Failure::from)?;
        load::ensure_actor(&mut conn, actor).await?;
        let sql = format!(
            "SELECT {CHANNEL_COLUMNS} FROM channel_members m JOIN channels c ON c.id = m.channel_id \
             WHERE m.user_id = ? AND c.company_id = ? AND c.deleted_at IS NULL \
             ORDER BY c.last_activity_at DESC, c.id DESC LIMIT ? OFFSET ?"
        );
        let rows = sqlx::query_as::<_, ChannelRow>(&sql)
            .bind(actor.user.as_str())
            .bind(actor.company.as_str())
            .bind(page.limit)
            .bind(page.offset)
            .fetch_all(&mut *conn)
            .await
            .map_err(Failure::from)?;
        Ok(rows.into_iter().map(ChannelRow::into_channel).collect())
    }

    async fn get_channel(&self, actor: &Actor, channel: &ChannelId) -> StoreResult<ChannelDetails> {
        let mut conn = self.reader.acquire().await.map_err(Failure::from)?;
        let (row, _) = load::channel_as_member(&mut conn, actor, channel).await?;
        Ok(load::channel_details(&mut conn, row).await?)
    }

    async fn update_channel(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        patch: ChannelPatch,
    ) -> StoreResult<Channel> {
        let mut tx = self.writer.begin().await.map_err(Failure::from)?;
        let (row, role) = load::channel_as_member(&mut tx, actor, channel).await?;
        if !rules::may_update_channel(&role) {
            return Err(StoreError::Forbidden(
                "you may not change this channel".into(),
            ));
        }
        let mut next = row.clone();
        apply(&mut next, patch);
        let changed = !same_settings(&row, &next);
        if changed {
            sqlx::query(
                "UPDATE channels SET subject = ?, description = ?, access = ?, service = ?, service_title = ?, \
                 broadcast = ?, external = ?, updated_at = ? WHERE id = ?",
            )
            .bind(&next.subject)
            .bind(&next.description)
            .bind(&next.access)
            .bind(&next.service)
            .bind(&next.service_title)
            .bind(next.broadcast)
            .bind(next.external)
            .bind(now_micros())
            .bind(channel.as_str())
            .execute(&mut *tx)
            .await
            .map_err(Failure::from)?;
        }
        let updated = load::channel_row(&mut tx, channel.as_str()).await?;
        let mut queued = false;
        if changed {
            let details = load::channel_details(&mut tx, updated.clone()).await?;
            queued = announce_channel(
                &mut tx,
                &actor.company,
                channel,
                EventType::ChannelUpdated,
                &details,
            )
            .await?;
        }
        tx.commit().await.map_err(Failure::from)?;
        self.wake_workers_if(queued);
        Ok(updated.into_channel())
    }

    async fn delete_channel(&self, actor: &Actor, channel: &ChannelId) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(Failure::from)?;
        load::ensure_actor(&mut tx, actor).await?;
        let found: Option<(Option<i64>, String)> = sqlx::query_as(
            "SELECT c.deleted_at, m.role FROM channels c \
             JOIN channel_members m ON m.channel_id = c.id AND m.user_id = ? \
             WHERE c.id = ? AND c.company_id = ?",
        )
        .bind(actor.user.as_str())
        .bind(channel.as_str())
        .bind(actor.company.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(Failure::from)?;
        let Some((deleted_at, role)) = found else {
            return Err(StoreError::not_found("channel", channel));
        };
        if deleted_at.is_some() {
            return Ok(());
        }
        if !rules::may_delete_channel(&MemberRole::from(role.as_str())) {
            return Err(StoreError::Forbidden(
                "only the channel's owners and supervisors may delete it".into(),
            ));
        }
        let now = now_micros();
        sqlx::query(
            "UPDATE channels SET deleted_at = ?, updated_at = ?, direct_key = NULL WHERE id = ?",
        )
        .bind(now)
        .bind(now)
        .bind(channel.as_str())
        .execute(&mut *tx)
        .await
        .map_err(Failure::from)?;
        sqlx::query("DELETE FROM typing WHERE channel_id = ?")
            .bind(channel.as_str())
            .execute(&mut *tx)
            .await
            .map_err(Failure::from)?;
        let queued = events::announce(
            &mut tx,
            actor.company.as_str(),
            channel.as_str(),
            EventType::ChannelDeleted,
            Recipients::BotMembers,
            |channel| ChannelDeletedData { channel },
        )
        .await?;
        tx.commit().await.map_err(Failure::from)?;
        self.wake_workers_if(queued);
        Ok(())
    }

    async fn list_members(&self, actor: &Actor, channel: &ChannelId) -> StoreResult<Members> {
        let mut conn = self.reader.acquire().await.map_err(Failure::from)?;
        load::channel_as_member(&mut conn, actor, channel).await?;
        Ok(load::members(&mut conn, channel.as_str()).await?)
    }

    async fn add_members(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        members: Vec<UserId>,
        invitees: Vec<Invitee>,
        _silent: bool,
    ) -> StoreResult<Members> {
        let mut tx = self.writer.begin().await.map_err(Failure::from)?;
        let (row, _) = load::channel_as_member(&mut tx, actor, channel).await?;
        if row.is_direct() {
            return Err(StoreError::Conflict(
                "members cannot be added to a direct channel".into(),
            ));
        }
        let users = resolve_members(&mut tx, &actor.company, &members, &invitees).await?;
        let now = now_micros();
        let mut added = Vec::new();
        for user in &users {
            if insert_member(&mut tx, channel, user, &MemberRole::Member, now).await? {
                added.push(user.as_str());
            }
        }
        let mut queued = false;
        if !added.is_empty() {
            refresh_member_count(&mut tx, channel).await?;
            touch(&mut tx, channel, now).await?;
            let all = load::members(&mut tx, channel.as_str()).await?;
            queued = events::announce(
                &mut tx,
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
        let members = load::members(&mut tx, channel.as_str()).await?;
        tx.commit().await.map_err(Failure::from)?;
        self.wake_workers_if(queued);
        Ok(members)
    }

    async fn remove_member(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        member: &UserId,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(Failure::from)?;
        let (row, role) = load::channel_as_member(&mut tx, actor, channel).await?;
        if row.is_direct() {
            return Err(StoreError::Conflict(
                "members cannot be removed from a direct channel".into(),
            ));
        }
        if !rules::may_remove_member(&role, *member == actor.user) {
            return Err(StoreError::Forbidden(
                "only the channel's owners and supervisors may remove other members".into(),
            ));
        }
        let before = load::members(&mut tx, channel.as_str()).await?;
        let Some(removed_member) = before.members.into_iter().find(|m| m.id == member.as_str())
        else {
            return Err(StoreError::not_found("member", member));
        };
        let removed_user = before
            .users
            .into_iter()
            .filter(|u| u.id == member.as_str())
            .collect();
        sqlx::query("DELETE FROM channel_members WHERE channel_id = ? AND user_id = ?")
            .bind(channel.as_str())
            .bind(member.as_str())
            .execute(&mut *tx)
            .await
            .map_err(Failure::from)?;
        sqlx::query("DELETE FROM typing WHERE channel_id = ? AND user_id = ?")
            .bind(channel.as_str())
            .bind(member.as_str())
            .execute(&mut *tx)
            .await
            .map_err(Failure::from)?;
        refresh_member_count(&mut tx, channel).await?;
        let now = now_micros();
        touch(&mut tx, channel, now).await?;
        let gone = [member.as_str()];
        let queued = events::announce(
            &mut tx,
            actor.company.as_str(),
            channel.as_str(),
            EventType::MemberRemoved,
            Recipients::BotMembersAnd(&gone),
            |channel| ChannelEventData {
                channel,
                members: vec![removed_member],
                users: removed_user,
            },
        )
        .await?;
        tx.commit().await.map_err(Failure::from)?;
        self.wake_workers_if(queued);
        Ok(())
    }

    async fn start_typing(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        expires_at: UnixMicros,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(Failure::from)?;
        load::channel_as_member(&mut tx, actor, channel).await?;
        sqlx::query(
            "INSERT INTO typing (channel_id, user_id, expires_at) VALUES (?, ?, ?) \
             ON CONFLICT (channel_id, user_id) DO UPDATE SET expires_at = excluded.expires_at",
        )
        .bind(channel.as_str())
        .bind(actor.user.as_str())
        .bind(expires_at)
        .execute(&mut *tx)
        .await
        .map_err(Failure::from)?;
        tx.commit().await.map_err(Failure::from)?;
        Ok(())
    }

    async fn stop_typing(&self, actor: &Actor, channel: &ChannelId) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(Failure::from)?;
        load::channel_as_member(&mut tx, actor, channel).await?;
        clear_typing(&mut tx, channel, &actor.user).await?;
        tx.commit().await.map_err(Failure::from)?;
        Ok(())
    }

    async fn list_typing(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        now: UnixMicros,
    ) -> StoreResult<Vec<Typing>> {
        let mut conn = self.reader.acquire().await.map_err(Failure::from)?;
        load::channel_as_member(&mut conn, actor, channel).await?;
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT user_id, expires_at FROM typing WHERE channel_id = ? AND expires_at > ? ORDER BY user_id",
        )
        .bind(channel.as_str())
        .bind(now)
        .fetch_all(&mut *conn)
        .await
        .map_err(Failure::from)?;
        Ok(rows
            .into_iter()
            .map(|(user, expires_at)| Typing {
                user: UserId::from_stored(user),
                expires_at,
            })
            .collect())
    }
}

/// Queues a `{channel, members, users}` event for the channel's bot members;
/// `true` when some integration will receive it.
async fn announce_channel(
    conn: &mut SqliteConnection,
    company: &CompanyId,
    channel: &ChannelId,
    event: EventType,
    details: &ChannelDetails,
) -> Outcome<bool> {
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
    conn: &mut SqliteConnection,
    channel: &ChannelId,
    user: &UserId,
) -> Outcome<()> {
    sqlx::query("DELETE FROM typing WHERE channel_id = ? AND user_id = ?")
        .bind(channel.as_str())
        .bind(user.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Marks activity in a channel (it moves to the top of its members' lists).
pub(crate) async fn touch(
    conn: &mut SqliteConnection,
    channel: &ChannelId,
    now: UnixMicros,
) -> Outcome<()> {
    sqlx::query("UPDATE channels SET last_activity_at = ? WHERE id = ?")
        .bind(now)
        .bind(channel.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The live users named by id (each must be in the company) followed by the
/// invitees (found or created), without repeats, in the order given.
async fn resolve_members(
    conn: &mut SqliteConnection,
    company: &CompanyId,
    ids: &[UserId],
    invitees: &[Invitee],
) -> Outcome<Vec<UserId>> {
    let wanted: Vec<&str> = ids.iter().map(UserId::as_str).collect();
    let found: HashSet<String> = sqlx::query_scalar(
        "SELECT id FROM users WHERE company_id = ? AND deleted_at IS NULL \
         AND id IN (SELECT value FROM json_each(?))",
    )
    .bind(company.as_str())
    .bind(serde_json::to_string(&wanted)?)
    .fetch_all(&mut *conn)
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
    conn: &mut SqliteConnection,
    channel: &ChannelId,
    user: &UserId,
    role: &MemberRole,
    now: UnixMicros,
) -> Outcome<bool> {
    let inserted = sqlx::query(
        "INSERT INTO channel_members (channel_id, user_id, role, joined_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (channel_id, user_id) DO NOTHING",
    )
    .bind(channel.as_str())
    .bind(user.as_str())
    .bind(role.as_str())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

async fn refresh_member_count(conn: &mut SqliteConnection, channel: &ChannelId) -> Outcome<()> {
    sqlx::query(
        "UPDATE channels SET member_count = (SELECT COUNT(*) FROM channel_members WHERE channel_id = ?) WHERE id = ?",
    )
    .bind(channel.as_str())
    .bind(channel.as_str())
    .execute(&mut *conn)
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
