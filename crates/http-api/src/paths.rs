//! Typed path extractors: each route's path parameters parsed into typed ids
//! once, before the handler runs. An id that cannot exist answers 404 as an
//! unknown one does; a path that cannot be read (a segment that is not
//! UTF-8) answers 400 in the contract's error body.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use switchboard_domain::{ChannelId, FileId, IntegrationId, MessageId, UserId};

use crate::error::{ApiError, excerpt};
use crate::extract::{channel_id, file_id, message_id, user_id};

/// Declares path structs: each field is read from the named parameter with
/// the given parser.
macro_rules! paths {
    ($($(#[$doc:meta])* $name:ident { $($field:ident: $ty:ty = $param:literal by $parse:expr),+ $(,)? })+) => {
        $(
            $(#[$doc])*
            pub struct $name { $(pub $field: $ty),+ }

            impl<S: Send + Sync> FromRequestParts<S> for $name {
                type Rejection = ApiError;

                async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
                    let params = parameters(parts, state).await?;
                    let get = |name: &str| params.get(name).map(String::as_str).unwrap_or_default();
                    Ok($name { $($field: $parse(get($param))?),+ })
                }
            }
        )+
    };
}

async fn parameters<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
) -> Result<HashMap<String, String>, ApiError> {
    Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map(|Path(params)| params)
        .map_err(|rejection| {
            ApiError::validation(format!("the path is not valid: {}", rejection.body_text()))
        })
}

/// A bot id: one that cannot exist is a bot not found.
pub fn bot_id(text: &str) -> Result<UserId, ApiError> {
    user_id(text).map_err(|_| ApiError::not_found(format!("bot `{}` was not found", excerpt(text))))
}

/// An integration id: one that cannot exist is an integration not found.
pub fn integration_id(text: &str) -> Result<IntegrationId, ApiError> {
    IntegrationId::parse(text).ok_or_else(|| {
        ApiError::not_found(format!("integration `{}` was not found", excerpt(text)))
    })
}

/// A parameter kept as text (key ids, reaction types).
fn text(value: &str) -> Result<String, ApiError> {
    Ok(value.to_owned())
}

paths! {
    /// `/v2/conversations/channels/{channelId}…`
    ChannelPath { channel: ChannelId = "channelId" by channel_id }
    /// `…/channels/{channelId}/messages/{messageId}`
    MessagePath {
        channel: ChannelId = "channelId" by channel_id,
        message: MessageId = "messageId" by message_id,
    }
    /// `…/messages/{messageId}/reactions/{type}`
    ReactionPath {
        channel: ChannelId = "channelId" by channel_id,
        message: MessageId = "messageId" by message_id,
        reaction: String = "type" by text,
    }
    /// `…/channels/{channelId}/members/{memberId}`
    MemberPath {
        channel: ChannelId = "channelId" by channel_id,
        member: UserId = "memberId" by user_id,
    }
    /// `…/channels/{channelId}/files/{fileId}`
    FilePath {
        channel: ChannelId = "channelId" by channel_id,
        file: FileId = "fileId" by file_id,
    }
    /// `…/messages/{messageId}/files/{fileId}`
    MessageFilePath {
        channel: ChannelId = "channelId" by channel_id,
        message: MessageId = "messageId" by message_id,
        file: FileId = "fileId" by file_id,
    }
    /// `/v2/users/{userId}…`
    UserPath { user: UserId = "userId" by user_id }
    /// `/v2/users/{userId}/tokens/{tokenId}`
    UserTokenPath {
        user: UserId = "userId" by user_id,
        token: String = "tokenId" by text,
    }
    /// `/v2/users/bots/{botId}…`
    BotPath { bot: UserId = "botId" by bot_id }
    /// `/v2/users/bots/{botId}/keys/{keyId}`
    BotKeyPath {
        bot: UserId = "botId" by bot_id,
        key: String = "keyId" by text,
    }
    /// `/v2/users/bots/{botId}/integrations/{integrationId}…`
    IntegrationPath {
        bot: UserId = "botId" by bot_id,
        id: IntegrationId = "integrationId" by integration_id,
    }
}
