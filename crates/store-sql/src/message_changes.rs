//! Messages, reactions and button presses.

use std::collections::HashSet;

use async_trait::async_trait;

use crate::db::Db;
use switchboard_domain::limits::IDEMPOTENCY_WINDOW_MICROS;
use switchboard_domain::{Actor, ChannelId, MessageId, UserId, now_micros, rules};
use switchboard_protocol::events::{
    EventReaction, MessageActionData, MessageChangedData, PressedAction, ReactionEventData,
};
use switchboard_protocol::{
    Element, EventType, Message, MessageAttachment, MessageQuote, Timestamp,
};
use switchboard_store::{
    IdempotencyRecord, MessagePatch, MessageStore, NewMessage, Page, StoreError, StoreResult,
};

use crate::backend::{Backend, SqlStore};
use crate::events::{self, Recipients};
use crate::failure::Outcome;
use crate::files::resolve_attachments;
use crate::load;
use crate::rows::{MESSAGE_COLUMNS, MessageRow};
use crate::send::{SendRequest, send_alone};

#[async_trait]
impl<B: Backend> MessageStore for SqlStore<B> {
    async fn send_message(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        new: NewMessage,
        idempotency: Option<IdempotencyRecord>,
    ) -> StoreResult<Message> {
        let request = SendRequest {
            actor: actor.clone(),
            channel: channel.clone(),
            new,
            idempotency,
        };
        match &self.sends {
            Some(groups) if request.groups() => groups.send(request).await,
            _ => send_alone(&*self.backend, request).await,
        }
    }

    async fn list_messages(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        page: Page,
    ) -> StoreResult<Vec<Message>> {
        query!(self, (actor, channel, page), |conn| {
            load::channel_as_member(conn, actor, channel).await?;
            let sql = format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE channel_id = $1 AND deleted_at IS NULL \
             ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
            );
            let rows = conn
                .fetch_all::<MessageRow>(
                    &sql,
                    args![
                        channel.as_str(),
                        i64::from(page.limit),
                        i64::from(page.offset)
                    ],
                )
                .await?;
            load::messages(conn, rows).await
        })
    }

    async fn get_message(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        message: &MessageId,
    ) -> StoreResult<Message> {
        query!(self, (actor, channel, message), |conn| {
            load::channel_as_member(conn, actor, channel).await?;
            let row = load::live_message_row(conn, channel, message).await?;
            load::message(conn, row).await
        })
    }

    async fn update_message(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        message: &MessageId,
        patch: MessagePatch,
    ) -> StoreResult<Message> {
        change!(self, (actor, channel, message, patch), |tx| {
            // Each run of the transaction starts from the request as it came.
            let patch = patch.clone();
            load::channel_as_member(tx, actor, channel).await?;
            let row = load::live_message_row(tx, channel, message).await?;
            if !rules::may_edit_message(row.user_id == actor.user.as_str()) {
                return Err(StoreError::Forbidden(
                    "only the author of a message may change it".into(),
                )
                .into());
            }
            let text = patch.text.unwrap_or_else(|| row.text.clone());
            let elements: Vec<Element> = match patch.elements {
                Some(elements) => elements,
                None => serde_json::from_str(&row.elements)?,
            };
            let attachments: Vec<MessageAttachment> = match &patch.attachments {
                Some(ids) => {
                    resolve_attachments(
                        tx,
                        actor,
                        channel,
                        "attachments",
                        ids,
                        &patch.confirmed_uploads,
                    )
                    .await?
                }
                None => serde_json::from_str(&row.attachments)?,
            };
            let mentions: Vec<UserId> = match patch.mentions {
                Some(mentions) => {
                    ensure_members(tx, channel, &mentions).await?;
                    mentions
                }
                None => serde_json::from_str(&row.mentions)?,
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
                )
                .into());
            }
            let elements_json = serde_json::to_string(&elements)?;
            let attachments_json = serde_json::to_string(&attachments)?;
            let mentions_json = serde_json::to_string(&mentions)?;
            let unchanged = text == row.text
                && elements_json == row.elements
                && attachments_json == row.attachments
                && mentions_json == row.mentions
                && silent == row.silent;
            if !unchanged {
                tx.execute(
                    "UPDATE messages SET text = $1, elements = $2, attachments = $3, mentions = $4, silent = $5, \
                     updated_at = $6 WHERE id = $7",
                    args![
                        &text,
                        &elements_json,
                        &attachments_json,
                        &mentions_json,
                        silent,
                        now_micros(),
                        message.as_str(),
                    ],
                )
                .await?;
            }
            let row = load::live_message_row(tx, channel, message).await?;
            let updated = load::message(tx, row).await?;
            if !unchanged {
                events::announce(
                    tx,
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
            Ok(updated)
        })
    }

    async fn delete_message(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        message: &MessageId,
    ) -> StoreResult<()> {
        change!(self, (actor, channel, message), |tx| {
            let (_, role) = load::channel_as_member(tx, actor, channel).await?;
            let row = load::message_row(tx, channel, message).await?;
            if row.deleted_at.is_some() {
                return Ok(());
            }
            if !rules::may_delete_message(&role, row.user_id == actor.user.as_str()) {
                return Err(StoreError::Forbidden(
                    "only the author, the channel's owners and its supervisors may delete a message"
                        .into(),
                ).into());
            }
            let now = now_micros();
            let deleted = load::message(tx, row).await?;
            tx.execute(
                "UPDATE messages SET deleted_at = $1, updated_at = $2 WHERE id = $3",
                args![now, now, message.as_str()],
            )
            .await?;
            events::announce(
                tx,
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
            Ok(())
        })
    }

    async fn add_reaction(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        message: &MessageId,
        reaction: &str,
    ) -> StoreResult<Message> {
        change!(self, (actor, channel, message, reaction), |tx| {
            load::channel_as_member(tx, actor, channel).await?;
            let row = load::live_message_row(tx, channel, message).await?;
            let now = now_micros();
            let inserted = tx.execute(
                "INSERT INTO reactions (message_id, user_id, reaction_type, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT DO NOTHING",
                args![message.as_str(), actor.user.as_str(), reaction, now],
            )
            .await?;
            let updated = load::message(tx, row).await?;
            if inserted == 1 {
                let reacted = reaction_of(actor, reaction, now);
                events::announce(
                    tx,
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
            Ok(updated)
        })
    }

    async fn remove_reaction(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        message: &MessageId,
        reaction: &str,
    ) -> StoreResult<Message> {
        change!(self, (actor, channel, message, reaction), |tx| {
            load::channel_as_member(tx, actor, channel).await?;
            let row = load::live_message_row(tx, channel, message).await?;
            let removed: Option<i64> = tx.optional_scalar(
                "DELETE FROM reactions WHERE message_id = $1 AND user_id = $2 AND reaction_type = $3 \
                 RETURNING created_at",
                args![message.as_str(), actor.user.as_str(), reaction],
            )
            .await?;
            let updated = load::message(tx, row).await?;
            if let Some(created_at) = removed {
                let reacted = reaction_of(actor, reaction, created_at);
                events::announce(
                    tx,
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
            Ok(updated)
        })
    }

    async fn press_button(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        message: &MessageId,
        action_id: &str,
    ) -> StoreResult<()> {
        change!(self, (actor, channel, message, action_id), |tx| {
            load::channel_as_member(tx, actor, channel).await?;
            let row = load::live_message_row(tx, channel, message).await?;
            let elements: Vec<Element> = serde_json::from_str(&row.elements)?;
            // Buttons may share an action id: pressing is refused only when
            // every button with that id is disabled.
            let buttons: Vec<_> = elements
                .iter()
                .flat_map(Element::buttons)
                .filter(|button| {
                    button
                        .handler
                        .as_ref()
                        .and_then(|handler| handler.action.as_ref())
                        .is_some_and(|action| action.id == **action_id)
                })
                .collect();
            if buttons.is_empty() {
                return Err(StoreError::unknown_reference(
                    "actionId",
                    format!("the message has no button with action id `{action_id}`"),
                )
                .into());
            }
            if buttons.iter().all(|button| button.disabled == Some(true)) {
                return Err(StoreError::Conflict(format!(
                    "actionId: the button `{action_id}` is disabled"
                ))
                .into());
            }
            let author = row.user_id.clone();
            let pressed = load::message(tx, row).await?;
            let presser = load::user(tx, actor.user.as_str()).await?;
            let action = PressedAction {
                id: action_id.to_owned(),
            };
            events::announce(
                tx,
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
            Ok(())
        })
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
pub(crate) async fn remembered_send(
    conn: &mut impl Db,
    actor: &Actor,
    record: &IdempotencyRecord,
    now: i64,
) -> Outcome<Option<MessageRow>> {
    let found: Option<(Vec<u8>, String, i64)> = conn
        .fetch_optional(
            "SELECT request_fingerprint, message_id, created_at FROM idempotency_keys \
         WHERE company_id = $1 AND caller_id = $2 AND idempotency_key = $3",
            args![actor.company.as_str(), actor.user.as_str(), &record.key],
        )
        .await?;
    let Some((fingerprint, message_id, created_at)) = found else {
        return Ok(None);
    };
    if created_at < now - IDEMPOTENCY_WINDOW_MICROS {
        conn.execute(
            "DELETE FROM idempotency_keys WHERE company_id = $1 AND caller_id = $2 AND idempotency_key = $3",
            args![actor.company.as_str(), actor.user.as_str(), &record.key],
        )
            .await?;
        return Ok(None);
    }
    if fingerprint != record.request_fingerprint {
        return Err(StoreError::Conflict(
            "this Idempotency-Key was already used for a different request".into(),
        )
        .into());
    }
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1");
    Ok(Some(
        conn.fetch_one::<MessageRow>(&sql, args![message_id])
            .await?,
    ))
}

/// Fails unless every mentioned user is a member of the channel.
pub(crate) async fn ensure_members(
    conn: &mut impl Db,
    channel: &ChannelId,
    users: &[UserId],
) -> Outcome<()> {
    if users.is_empty() {
        return Ok(());
    }
    let wanted: Vec<&str> = users.iter().map(UserId::as_str).collect();
    let members: HashSet<String> = conn
        .scalars(
            "SELECT user_id FROM channel_members WHERE channel_id = $1 AND user_id = ANY($2)",
            args![channel.as_str(), &wanted],
        )
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
pub(crate) async fn quote_of(
    conn: &mut impl Db,
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
