//! Messages, reactions and button presses.

use std::collections::HashSet;

use async_trait::async_trait;

use sqlx::SqliteConnection;
use switchboard_domain::limits::IDEMPOTENCY_WINDOW_MICROS;
use switchboard_domain::{Actor, ChannelId, MessageId, UserId, now_micros, rules};
use switchboard_protocol::events::{
    EventReaction, MessageActionData, MessageChangedData, MessageNewData, PressedAction,
    ReactionEventData,
};
use switchboard_protocol::{
    Element, EventType, Message, MessageAttachment, MessageQuote, Timestamp,
};
use switchboard_store::{
    IdempotencyRecord, MessagePatch, MessageStore, NewMessage, Page, StoreError, StoreResult,
};

use crate::SqliteStore;
use crate::channels::{clear_typing, touch};
use crate::events::{self, Recipients};
use crate::failure::{Failure, Outcome};
use crate::files::resolve_attachments;
use crate::load;
use crate::rows::{MESSAGE_COLUMNS, MessageRow};

#[async_trait]
impl MessageStore for SqliteStore {
    async fn send_message(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        new: NewMessage,
        idempotency: Option<IdempotencyRecord>,
    ) -> StoreResult<Message> {
        let mut tx = self.writer.begin().await.map_err(Failure::from)?;
        load::channel_as_member(&mut tx, actor, channel).await?;
        let now = now_micros();
        if let Some(record) = &idempotency
            && let Some(first) = remembered_send(&mut tx, actor, record, now).await?
        {
            return Ok(load::message(&mut tx, first).await?);
        }
        ensure_members(&mut tx, channel, &new.mentions).await?;
        let attachments =
            resolve_attachments(&mut tx, actor, channel, "attachments", &new.attachments).await?;
        let quote = match &new.quote {
            Some(quoted) => Some(quote_of(&mut tx, channel, quoted).await?),
            None => None,
        };
        let row = MessageRow {
            id: MessageId::generate().into_string(),
            channel_id: channel.as_str().to_owned(),
            user_id: actor.user.as_str().to_owned(),
            message_type: "regular".to_owned(),
            text: new.text,
            elements: serde_json::to_string(&new.elements).map_err(Failure::from)?,
            attachments: serde_json::to_string(&attachments).map_err(Failure::from)?,
            mentions: serde_json::to_string(&new.mentions).map_err(Failure::from)?,
            quote: quote
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(Failure::from)?,
            silent: new.silent,
            created_at: now,
            updated_at: None,
            deleted_at: None,
        };
        sqlx::query(
            "INSERT INTO messages (id, company_id, channel_id, user_id, message_type, text, elements, attachments, \
             mentions, quote, silent, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&row.id)
        .bind(actor.company.as_str())
        .bind(&row.channel_id)
        .bind(&row.user_id)
        .bind(&row.message_type)
        .bind(&row.text)
        .bind(&row.elements)
        .bind(&row.attachments)
        .bind(&row.mentions)
        .bind(&row.quote)
        .bind(row.silent)
        .bind(row.created_at)
        .execute(&mut *tx)
        .await
        .map_err(Failure::from)?;
        clear_typing(&mut tx, channel, &actor.user).await?;
        touch(&mut tx, channel, now).await?;
        if let Some(record) = &idempotency {
            sqlx::query(
                "INSERT INTO idempotency_keys (company_id, caller_id, idempotency_key, request_fingerprint, \
                 message_id, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(actor.company.as_str())
            .bind(actor.user.as_str())
            .bind(&record.key)
            .bind(&record.request_fingerprint)
            .bind(&row.id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(Failure::from)?;
        }
        let message = load::message(&mut tx, row).await?;
        let event = EventType::MessageNew;
        let company = actor.company.as_str();
        let targets = events::targets(
            &mut tx,
            company,
            channel.as_str(),
            &event,
            Recipients::BotMembers,
        )
        .await?;
        if !targets.is_empty() {
            let channel_row = load::channel_row(&mut tx, channel.as_str()).await?;
            let details = load::channel_details(&mut tx, channel_row).await?;
            let data = MessageNewData {
                channel: details.channel,
                members: details.members,
                users: details.users,
                message: message.clone(),
            };
            events::record(
                &mut tx,
                company,
                Some(channel.as_str()),
                &event,
                &data,
                &targets,
                now,
            )
            .await?;
        }
        tx.commit().await.map_err(Failure::from)?;
        self.wake_workers_if(!targets.is_empty());
        Ok(message)
    }

    async fn list_messages(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        page: Page,
    ) -> StoreResult<Vec<Message>> {
        let mut conn = self.reader.acquire().await.map_err(Failure::from)?;
        load::channel_as_member(&mut conn, actor, channel).await?;
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE channel_id = ? AND deleted_at IS NULL \
             ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
        );
        let rows = sqlx::query_as::<_, MessageRow>(&sql)
            .bind(channel.as_str())
            .bind(page.limit)
            .bind(page.offset)
            .fetch_all(&mut *conn)
            .await
            .map_err(Failure::from)?;
        Ok(load::messages(&mut conn, rows).await?)
    }

    async fn get_message(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        message: &MessageId,
    ) -> StoreResult<Message> {
        let mut conn = self.reader.acquire().await.map_err(Failure::from)?;
        load::channel_as_member(&mut conn, actor, channel).await?;
        let row = load::live_message_row(&mut conn, channel, message).await?;
        Ok(load::message(&mut conn, row).await?)
    }

    async fn update_message(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        message: &MessageId,
        patch: MessagePatch,
    ) -> StoreResult<Message> {
        let mut tx = self.writer.begin().await.map_err(Failure::from)?;
        load::channel_as_member(&mut tx, actor, channel).await?;
        let row = load::live_message_row(&mut tx, channel, message).await?;
        if !rules::may_edit_message(row.user_id == actor.user.as_str()) {
            return Err(StoreError::Forbidden(
                "only the author of a message may change it".into(),
            ));
        }
        let text = patch.text.unwrap_or_else(|| row.text.clone());
        let elements: Vec<Element> = match patch.elements {
            Some(elements) => elements,
            None => serde_json::from_str(&row.elements).map_err(Failure::from)?,
        };
        let attachments: Vec<MessageAttachment> = match &patch.attachments {
            Some(ids) => resolve_attachments(&mut tx, actor, channel, "attachments", ids).await?,
            None => serde_json::from_str(&row.attachments).map_err(Failure::from)?,
        };
        let mentions: Vec<UserId> = match patch.mentions {
            Some(mentions) => {
                ensure_members(&mut tx, channel, &mentions).await?;
                mentions
            }
            None => serde_json::from_str(&row.mentions).map_err(Failure::from)?,
        };
        let silent = patch.silent.unwrap_or(row.silent);
        if text
            .as_deref()
            .is_none_or(switchboard_domain::validation::is_blank)
            && elements.is_empty()
            && attachments.is_empty()
        {
            return Err(StoreError::Conflict(
                "text: a message must keep text, elements or attachments".into(),
            ));
        }
        let elements_json = serde_json::to_string(&elements).map_err(Failure::from)?;
        let attachments_json = serde_json::to_string(&attachments).map_err(Failure::from)?;
        let mentions_json = serde_json::to_string(&mentions).map_err(Failure::from)?;
        let unchanged = text == row.text
            && elements_json == row.elements
            && attachments_json == row.attachments
            && mentions_json == row.mentions
            && silent == row.silent;
        if !unchanged {
            sqlx::query(
                "UPDATE messages SET text = ?, elements = ?, attachments = ?, mentions = ?, silent = ?, \
                 updated_at = ? WHERE id = ?",
            )
            .bind(&text)
            .bind(&elements_json)
            .bind(&attachments_json)
            .bind(&mentions_json)
            .bind(silent)
            .bind(now_micros())
            .bind(message.as_str())
            .execute(&mut *tx)
            .await
            .map_err(Failure::from)?;
        }
        let row = load::live_message_row(&mut tx, channel, message).await?;
        let updated = load::message(&mut tx, row).await?;
        let mut queued = false;
        if !unchanged {
            queued = events::announce(
                &mut tx,
                actor.company.as_str(),
                channel.as_str(),
                EventType::MessageUpdated,
                Recipients::BotMembers,
                |channel| MessageChangedData {
                    channel,
                    message: updated.clone(),
                },
            )
            .await?;
        }
        tx.commit().await.map_err(Failure::from)?;
        self.wake_workers_if(queued);
        Ok(updated)
    }

    async fn delete_message(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        message: &MessageId,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(Failure::from)?;
        let (_, role) = load::channel_as_member(&mut tx, actor, channel).await?;
        let row = load::message_row(&mut tx, channel, message).await?;
        if row.deleted_at.is_some() {
            return Ok(());
        }
        if !rules::may_delete_message(&role, row.user_id == actor.user.as_str()) {
            return Err(StoreError::Forbidden(
                "only the author, the channel's owners and its supervisors may delete a message"
                    .into(),
            ));
        }
        let now = now_micros();
        let deleted = load::message(&mut tx, row).await?;
        sqlx::query("UPDATE messages SET deleted_at = ?, updated_at = ? WHERE id = ?")
            .bind(now)
            .bind(now)
            .bind(message.as_str())
            .execute(&mut *tx)
            .await
            .map_err(Failure::from)?;
        let queued = events::announce(
            &mut tx,
            actor.company.as_str(),
            channel.as_str(),
            EventType::MessageDeleted,
            Recipients::BotMembers,
            |channel| MessageChangedData {
                channel,
                message: deleted,
            },
        )
        .await?;
        tx.commit().await.map_err(Failure::from)?;
        self.wake_workers_if(queued);
        Ok(())
    }

    async fn add_reaction(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        message: &MessageId,
        reaction: &str,
    ) -> StoreResult<Message> {
        let mut tx = self.writer.begin().await.map_err(Failure::from)?;
        load::channel_as_member(&mut tx, actor, channel).await?;
        let row = load::live_message_row(&mut tx, channel, message).await?;
        let now = now_micros();
        let inserted = sqlx::query(
            "INSERT INTO reactions (message_id, user_id, reaction_type, created_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(message.as_str())
        .bind(actor.user.as_str())
        .bind(reaction)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(Failure::from)?;
        let updated = load::message(&mut tx, row).await?;
        let mut queued = false;
        if inserted.rows_affected() == 1 {
            let reacted = reaction_of(actor, reaction, now);
            queued = events::announce(
                &mut tx,
                actor.company.as_str(),
                channel.as_str(),
                EventType::ReactionNew,
                Recipients::BotMembers,
                |channel| ReactionEventData {
                    channel,
                    message: updated.clone(),
                    reaction: reacted,
                },
            )
            .await?;
        }
        tx.commit().await.map_err(Failure::from)?;
        self.wake_workers_if(queued);
        Ok(updated)
    }

    async fn remove_reaction(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        message: &MessageId,
        reaction: &str,
    ) -> StoreResult<Message> {
        let mut tx = self.writer.begin().await.map_err(Failure::from)?;
        load::channel_as_member(&mut tx, actor, channel).await?;
        let row = load::live_message_row(&mut tx, channel, message).await?;
        let removed: Option<i64> = sqlx::query_scalar(
            "DELETE FROM reactions WHERE message_id = ? AND user_id = ? AND reaction_type = ? \
             RETURNING created_at",
        )
        .bind(message.as_str())
        .bind(actor.user.as_str())
        .bind(reaction)
        .fetch_optional(&mut *tx)
        .await
        .map_err(Failure::from)?;
        let updated = load::message(&mut tx, row).await?;
        let mut queued = false;
        if let Some(created_at) = removed {
            let reacted = reaction_of(actor, reaction, created_at);
            queued = events::announce(
                &mut tx,
                actor.company.as_str(),
                channel.as_str(),
                EventType::ReactionDeleted,
                Recipients::BotMembers,
                |channel| ReactionEventData {
                    channel,
                    message: updated.clone(),
                    reaction: reacted,
                },
            )
            .await?;
        }
        tx.commit().await.map_err(Failure::from)?;
        self.wake_workers_if(queued);
        Ok(updated)
    }

    async fn press_button(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        message: &MessageId,
        action_id: &str,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(Failure::from)?;
        load::channel_as_member(&mut tx, actor, channel).await?;
        let row = load::live_message_row(&mut tx, channel, message).await?;
        let elements: Vec<Element> = serde_json::from_str(&row.elements).map_err(Failure::from)?;
        let button = elements
            .iter()
            .flat_map(Element::buttons)
            .find(|button| {
                button
                    .handler
                    .as_ref()
                    .and_then(|handler| handler.action.as_ref())
                    .is_some_and(|action| action.id == action_id)
            })
            .ok_or_else(|| {
                StoreError::unknown_reference(
                    "actionId",
                    format!("the message has no button with action id `{action_id}`"),
                )
            })?;
        if button.disabled == Some(true) {
            return Err(StoreError::Conflict(format!(
                "actionId: the button `{action_id}` is disabled"
            )));
        }
        let author = row.user_id.clone();
        let pressed = load::message(&mut tx, row).await?;
        let presser = load::user(&mut tx, actor.user.as_str()).await?;
        let action = PressedAction {
            id: action_id.to_owned(),
        };
        let queued = events::announce(
            &mut tx,
            actor.company.as_str(),
            channel.as_str(),
            EventType::MessageAction,
            Recipients::MemberBot(&author),
            |channel| MessageActionData {
                channel,
                message: pressed,
                user: presser,
                action,
            },
        )
        .await?;
        tx.commit().await.map_err(Failure::from)?;
        self.wake_workers_if(queued);
        Ok(())
    }
}

fn reaction_of(actor: &Actor, reaction: &str, created_at: i64) -> EventReaction {
    EventReaction {
        reaction_type: reaction.to_owned(),
        user_id: actor.user.as_str().to_owned(),
        created_at: Timestamp::from_unix_micros(created_at),
    }
}

/// The message a fresh `Idempotency-Key` of this caller created; forgets a
/// stale one. A key reused for a different request is a conflict.
async fn remembered_send(
    conn: &mut SqliteConnection,
    actor: &Actor,
    record: &IdempotencyRecord,
    now: i64,
) -> Outcome<Option<MessageRow>> {
    let found: Option<(Vec<u8>, String, i64)> = sqlx::query_as(
        "SELECT request_fingerprint, message_id, created_at FROM idempotency_keys \
         WHERE company_id = ? AND caller_id = ? AND idempotency_key = ?",
    )
    .bind(actor.company.as_str())
    .bind(actor.user.as_str())
    .bind(&record.key)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((fingerprint, message_id, created_at)) = found else {
        return Ok(None);
    };
    if created_at < now - IDEMPOTENCY_WINDOW_MICROS {
        sqlx::query("DELETE FROM idempotency_keys WHERE company_id = ? AND caller_id = ? AND idempotency_key = ?")
            .bind(actor.company.as_str())
            .bind(actor.user.as_str())
            .bind(&record.key)
            .execute(&mut *conn)
            .await?;
        return Ok(None);
    }
    if fingerprint != record.request_fingerprint {
        return Err(StoreError::Conflict(
            "this Idempotency-Key was already used for a different request".into(),
        )
        .into());
    }
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?");
    Ok(Some(
        sqlx::query_as::<_, MessageRow>(&sql)
            .bind(message_id)
            .fetch_one(&mut *conn)
            .await?,
    ))
}

/// Fails unless every mentioned user is a member of the channel.
async fn ensure_members(
    conn: &mut SqliteConnection,
    channel: &ChannelId,
    users: &[UserId],
) -> Outcome<()> {
    if users.is_empty() {
        return Ok(());
    }
    let wanted: Vec<&str> = users.iter().map(UserId::as_str).collect();
    let members: HashSet<String> = sqlx::query_scalar(
        "SELECT user_id FROM channel_members WHERE channel_id = ? AND user_id IN (SELECT value FROM json_each(?))",
    )
    .bind(channel.as_str())
    .bind(serde_json::to_string(&wanted)?)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    match wanted
        .iter()
        .enumerate()
        .find(|(_, id)| !members.contains(**id))
    {
        Some((index, id)) => Err(StoreError::unknown_reference(
            format!("mentions[{index}]"),
            format!("user `{id}` is not a member of this channel"),
        )
        .into()),
        None => Ok(()),
    }
}

/// A snapshot of a live message of the channel, for a quote.
async fn quote_of(
    conn: &mut SqliteConnection,
    channel: &ChannelId,
    quoted: &MessageId,
) -> Outcome<MessageQuote> {
    let row = load::live_message_row(conn, channel, quoted)
        .await
        .map_err(|_| {
            StoreError::unknown_reference(
                "quote.messageId",
                format!("message `{quoted}` was not found in this channel"),
            )
        })?;
    let attachments: Vec<MessageAttachment> = serde_json::from_str(&row.attachments)?;
    Ok(MessageQuote {
        message_id: row.id,
        channel_id: row.channel_id,
        user: load::user(conn, &row.user_id).await?,
        created_at: Timestamp::from_unix_micros(row.created_at),
        text: row.text,
        attachments: (!attachments.is_empty()).then_some(attachments),
        extra: Default::default(),
    })
}
