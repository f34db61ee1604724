//! Messages: list, send (with `Idempotency-Key`), get, update, partial update,
//! delete; reactions; button presses.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use switchboard_domain::limits::{MAX_ATTACHMENTS, MAX_MENTIONS};
use switchboard_domain::{Actor, UserId, validation};
use switchboard_protocol::api::*;
use switchboard_store::{IdempotencyRecord, MessagePatch, NewMessage, StoreError};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::files::{check_file_ids, with_confirmed_uploads};
use super::{check_unset, ok, tags};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Acting, ActingAs, ActingJson, ApiQuery, ListParams, user_id_field};
use crate::paths::{ChannelPath, MessagePath, ReactionPath};

/// The header that makes a send safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Messages of a channel, newest first.
#[utoipa::path(get, path = "/v2/conversations/channels/{channelId}/messages", tag = tags::MESSAGES,
    params(("channelId" = String, Path), ListParams),
    responses((status = 200, body = MessageListResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn list_messages(
    State(app): State<AppState>,
    Acting(actor): Acting,
    ChannelPath { channel }: ChannelPath,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<MessageListResponse>> {
    let messages = app
        .store
        .list_messages(&actor, &channel, params.page()?)
        .await?;
    Ok(Json(MessageListResponse { messages }))
}

/// Sends a message. With an `Idempotency-Key` header, repeating the same
/// request with the same key within 24 h answers the first message and
/// creates nothing; the same key with a different request is a 409.
#[utoipa::path(post, path = "/v2/conversations/channels/{channelId}/messages", tag = tags::MESSAGES,
    params(("channelId" = String, Path), ActingAs,
        ("Idempotency-Key" = Option<String>, Header, description = "1–255 visible ASCII characters")),
    request_body = SendMessageRequest,
    responses((status = 200, body = MessageResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn send_message(
    State(app): State<AppState>,
    ChannelPath { channel }: ChannelPath,
    headers: HeaderMap,
    ActingJson { actor, body }: ActingJson<SendMessageRequest>,
) -> ApiResult<Json<MessageResponse>> {
    let idempotency = match headers.get(IDEMPOTENCY_KEY) {
        None => None,
        Some(value) => {
            let key = value.to_str().map_err(|_| {
                ApiError::validation("Idempotency-Key: must be visible ASCII characters")
            })?;
            validation::idempotency_key("Idempotency-Key", key)?;
            Some(IdempotencyRecord {
                key: key.to_owned(),
                request_fingerprint: fingerprint(&actor, channel.as_str(), &body),
            })
        }
    };
    let text = body.text.clone();
    if let Some(text) = &text {
        validation::message_text("text", text)?;
    }
    let elements = body.elements.clone().unwrap_or_default();
    validation::elements("elements", &elements)?;
    let attachments = attachment_ids(body.attachments.as_deref().unwrap_or_default())?;
    let mentions = mention_ids(body.mentions.as_deref().unwrap_or_default())?;
    if is_blank(&text) && elements.is_empty() && attachments.is_empty() {
        return Err(ApiError::validation(
            "text: a message needs text, elements or attachments",
        ));
    }
    let quote = body
        .quote
        .as_ref()
        .map(|quote| {
            switchboard_domain::MessageId::parse(&quote.message_id).ok_or_else(|| {
                ApiError::validation(format!(
                    "quote.messageId: `{}` is not a message id",
                    quote.message_id
                ))
            })
        })
        .transpose()?;
    check_file_ids("attachments", &attachments)?;
    let new = NewMessage {
        text,
        elements,
        attachments,
        quote,
        mentions,
        silent: body.silent.unwrap_or(false),
        confirmed_uploads: Vec::new(),
    };
    let message = with_confirmed_uploads(&app, |confirmed_uploads| {
        let new = NewMessage {
            confirmed_uploads,
            ..new.clone()
        };
        app.store
            .send_message(&actor, &channel, new, idempotency.clone())
    })
    .await?;
    Ok(Json(MessageResponse { message }))
}

/// One message.
#[utoipa::path(get, path = "/v2/conversations/channels/{channelId}/messages/{messageId}", tag = tags::MESSAGES,
    params(("channelId" = String, Path), ("messageId" = String, Path), ActingAs),
    responses((status = 200, body = MessageResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn get_message(
    State(app): State<AppState>,
    Acting(actor): Acting,
    MessagePath { channel, message }: MessagePath,
) -> ApiResult<Json<MessageResponse>> {
    let message = app.store.get_message(&actor, &channel, &message).await?;
    Ok(Json(MessageResponse { message }))
}

/// Replaces the message's content (author only); absent parts are cleared.
/// The same content again changes nothing.
#[utoipa::path(put, path = "/v2/conversations/channels/{channelId}/messages/{messageId}", tag = tags::MESSAGES,
    params(("channelId" = String, Path), ("messageId" = String, Path), ActingAs),
    request_body = UpdateMessageRequest,
    responses((status = 200, body = MessageResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn update_message(
    State(app): State<AppState>,
    MessagePath { channel, message }: MessagePath,
    ActingJson { actor, body }: ActingJson<UpdateMessageRequest>,
) -> ApiResult<Json<MessageResponse>> {
    check_content("", &body)?;
    let attachments = attachment_ids(body.attachments.as_deref().unwrap_or_default())?;
    check_file_ids("attachments", &attachments)?;
    let patch = MessagePatch {
        text: Some(body.text),
        elements: Some(body.elements.unwrap_or_default()),
        attachments: Some(attachments),
        mentions: Some(mention_ids(body.mentions.as_deref().unwrap_or_default())?),
        silent: None,
        confirmed_uploads: Vec::new(),
    };
    let message = update_with_uploads(&app, &actor, &channel, &message, patch, "").await?;
    Ok(Json(MessageResponse { message }))
}

/// Changes the parts in `set` and clears those named in `unset`
/// (`text`, `elements`, `attachments`, `mentions`).
#[utoipa::path(patch, path = "/v2/conversations/channels/{channelId}/messages/{messageId}", tag = tags::MESSAGES,
    params(("channelId" = String, Path), ("messageId" = String, Path), ActingAs),
    request_body = PartialUpdateMessageRequest,
    responses((status = 200, body = MessageResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn patch_message(
    State(app): State<AppState>,
    MessagePath { channel, message }: MessagePath,
    ActingJson { actor, body }: ActingJson<PartialUpdateMessageRequest>,
) -> ApiResult<Json<MessageResponse>> {
    let PartialUpdateMessageRequest { set, unset } = body;
    let set = set.unwrap_or(UpdateMessageRequest {
        text: None,
        elements: None,
        attachments: None,
        mentions: None,
    });
    check_content("set.", &set)?;
    let unset = check_unset(
        &unset,
        MESSAGE_UNSETTABLE,
        &[
            ("text", set.text.is_some()),
            ("elements", set.elements.is_some()),
            ("attachments", set.attachments.is_some()),
            ("mentions", set.mentions.is_some()),
        ],
    )?;
    let cleared = |name: &str| unset.iter().any(|field| field == name);
    let patch = MessagePatch {
        text: set
            .text
            .map(Some)
            .or_else(|| cleared("text").then_some(None)),
        elements: set.elements.or_else(|| cleared("elements").then(Vec::new)),
        attachments: match set.attachments {
            Some(list) => {
                let attachments = attachment_ids(&list)?;
                check_file_ids("set.attachments", &attachments)?;
                Some(attachments)
            }
            None => cleared("attachments").then(Vec::new),
        },
        mentions: match set.mentions {
            Some(list) => Some(mention_ids(&list)?),
            None => cleared("mentions").then(Vec::new),
        },
        silent: None,
        confirmed_uploads: Vec::new(),
    };
    let message = update_with_uploads(&app, &actor, &channel, &message, patch, "set.").await?;
    Ok(Json(MessageResponse { message }))
}

/// Deletes the message (author, owners, supervisors). Deleting it again answers 200.
#[utoipa::path(delete, path = "/v2/conversations/channels/{channelId}/messages/{messageId}", tag = tags::MESSAGES,
    params(("channelId" = String, Path), ("messageId" = String, Path), ActingAs),
    responses((status = 200, body = OkResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn delete_message(
    State(app): State<AppState>,
    Acting(actor): Acting,
    MessagePath { channel, message }: MessagePath,
) -> ApiResult<Json<OkResponse>> {
    app.store.delete_message(&actor, &channel, &message).await?;
    Ok(ok())
}

/// Adds the caller's reaction; adding it again changes nothing.
#[utoipa::path(post, path = "/v2/conversations/channels/{channelId}/messages/{messageId}/reactions",
    tag = tags::MESSAGES, params(("channelId" = String, Path), ("messageId" = String, Path), ActingAs),
    request_body = ReactionRequest,
    responses((status = 200, body = MessageResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn add_reaction(
    State(app): State<AppState>,
    MessagePath { channel, message }: MessagePath,
    ActingJson { actor, body }: ActingJson<ReactionRequest>,
) -> ApiResult<Json<MessageResponse>> {
    validation::reaction_type("type", &body.reaction_type)?;
    let message = app
        .store
        .add_reaction(&actor, &channel, &message, &body.reaction_type)
        .await?;
    Ok(Json(MessageResponse { message }))
}

/// Removes the caller's reaction of this type; removing an absent one changes nothing.
#[utoipa::path(delete, path = "/v2/conversations/channels/{channelId}/messages/{messageId}/reactions/{type}",
    tag = tags::MESSAGES,
    params(("channelId" = String, Path), ("messageId" = String, Path), ("type" = String, Path), ActingAs),
    responses((status = 200, body = MessageResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn remove_reaction(
    State(app): State<AppState>,
    Acting(actor): Acting,
    ReactionPath {
        channel,
        message,
        reaction,
    }: ReactionPath,
) -> ApiResult<Json<MessageResponse>> {
    validation::reaction_type("type", &reaction)?;
    let message = app
        .store
        .remove_reaction(&actor, &channel, &message, &reaction)
        .await?;
    Ok(Json(MessageResponse { message }))
}

/// Presses the button whose handler is `{action: {id: actionId}}`; the bot
/// that sent the message is told with `chat:message:action`. Several buttons
/// of a message may share an action id: the press is refused (409) only when
/// every one of them is disabled.
#[utoipa::path(post, path = "/v2/conversations/channels/{channelId}/messages/{messageId}/actions",
    tag = tags::MESSAGES, params(("channelId" = String, Path), ("messageId" = String, Path), ActingAs),
    request_body = PressButtonRequest,
    responses((status = 200, body = OkResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn press_button(
    State(app): State<AppState>,
    MessagePath { channel, message }: MessagePath,
    ActingJson { actor, body }: ActingJson<PressButtonRequest>,
) -> ApiResult<Json<OkResponse>> {
    if body.action_id.is_empty() {
        return Err(ApiError::validation("actionId: must not be empty"));
    }
    app.store
        .press_button(&actor, &channel, &message, &body.action_id)
        .await?;
    Ok(ok())
}

fn is_blank(text: &Option<String>) -> bool {
    text.as_deref().is_none_or(validation::is_blank)
}

fn check_content(prefix: &str, body: &UpdateMessageRequest) -> Result<(), ApiError> {
    if let Some(text) = &body.text {
        validation::message_text(&format!("{prefix}text"), text)?;
    }
    validation::elements(
        &format!("{prefix}elements"),
        body.elements.as_deref().unwrap_or_default(),
    )?;
    Ok(())
}

/// Changes a message, confirming its new attachments' uploads as needed; the
/// store names the body's fields as in a full update, and `prefix` (`set.`
/// for a partial one) is put before them.
async fn update_with_uploads(
    app: &AppState,
    actor: &Actor,
    channel: &switchboard_domain::ChannelId,
    message: &switchboard_domain::MessageId,
    patch: MessagePatch,
    prefix: &str,
) -> ApiResult<switchboard_protocol::Message> {
    let prefixed = |err: StoreError| match err {
        StoreError::UnknownReference { field, message } => StoreError::UnknownReference {
            field: format!("{prefix}{field}"),
            message,
        },
        StoreError::UploadsUnconfirmed(files) => StoreError::UploadsUnconfirmed(
            files
                .into_iter()
                .map(|(at, file)| (format!("{prefix}{at}"), file))
                .collect(),
        ),
        StoreError::Invalid(invalid) => StoreError::Invalid(invalid.within(prefix)),
        other => other,
    };
    with_confirmed_uploads(app, |confirmed_uploads| {
        let patch = MessagePatch {
            confirmed_uploads,
            ..patch.clone()
        };
        let change = app.store.update_message(actor, channel, message, patch);
        async move { change.await.map_err(prefixed) }
    })
    .await
}

fn attachment_ids(list: &[AttachmentRef]) -> Result<Vec<String>, ApiError> {
    if list.len() > MAX_ATTACHMENTS {
        return Err(ApiError::validation(format!(
            "attachments: has {} attachments; the limit is {MAX_ATTACHMENTS}",
            list.len()
        )));
    }
    Ok(list
        .iter()
        .map(|attachment| attachment.id.clone())
        .collect())
}

fn mention_ids(list: &[String]) -> Result<Vec<UserId>, ApiError> {
    if list.len() > MAX_MENTIONS {
        return Err(ApiError::validation(format!(
            "mentions: has {} users; the limit is {MAX_MENTIONS}",
            list.len()
        )));
    }
    let mut ids: Vec<UserId> = Vec::with_capacity(list.len());
    for (index, id) in list.iter().enumerate() {
        let id = user_id_field(&format!("mentions[{index}]"), id)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// Identifies a send request, so a reused `Idempotency-Key` can be told apart
/// from a retry of the same request.
fn fingerprint(actor: &Actor, channel: &str, body: &SendMessageRequest) -> Vec<u8> {
    let mut hash = Sha256::new();
    hash.update(actor.user.as_str());
    hash.update([0]);
    hash.update(channel);
    hash.update([0]);
    hash.update(serde_json::to_vec(body).unwrap_or_default());
    hash.finalize().to_vec()
}

/// The routes of this module, for [`crate::router`].
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_messages, send_message))
        .routes(routes!(
            get_message,
            update_message,
            patch_message,
            delete_message
        ))
        .routes(routes!(add_reaction))
        .routes(routes!(remove_reaction))
        .routes(routes!(press_button))
}
