//! Typing indicators: start (with a time-to-live), stop, and who is typing.
//! The next message from the same user clears the indicator.

use std::time::Duration;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::Json;
use axum::extract::State;
use switchboard_domain::{now_micros, validation};
use switchboard_protocol::Timestamp;
use switchboard_protocol::api::*;

use super::{ok, tags};
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Acting, ActingAs, ActingJson};
use crate::paths::ChannelPath;

/// Shows the caller as typing for `ttlSeconds` (1–120, default 10) or until
/// their next message or a stop.
#[utoipa::path(post, path = "/v2/conversations/channels/{channelId}/typing/start", tag = tags::MESSAGES,
    params(("channelId" = String, Path), ActingAs), request_body = TypingStartRequest,
    responses((status = 200, body = OkResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn start_typing(
    State(app): State<AppState>,
    ChannelPath { channel }: ChannelPath,
    ActingJson { actor, body }: ActingJson<TypingStartRequest>,
) -> ApiResult<Json<OkResponse>> {
    let ttl = validation::typing_ttl("ttlSeconds", body.ttl_seconds)?;
    let expires_at = now_micros() + Duration::from_secs(u64::from(ttl)).as_micros() as i64;
    app.store.start_typing(&actor, &channel, expires_at).await?;
    app.feeds.typing_changed(&actor.company, &channel);
    Ok(ok())
}

/// Stops the caller's typing indicator.
#[utoipa::path(post, path = "/v2/conversations/channels/{channelId}/typing/stop", tag = tags::MESSAGES,
    params(("channelId" = String, Path), ActingAs),
    responses((status = 200, body = OkResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn stop_typing(
    State(app): State<AppState>,
    ChannelPath { channel }: ChannelPath,
    ActingJson { actor, body: _ }: ActingJson<serde_json::Value>,
) -> ApiResult<Json<OkResponse>> {
    app.store.stop_typing(&actor, &channel).await?;
    app.feeds.typing_changed(&actor.company, &channel);
    Ok(ok())
}

/// Who is typing in the channel now (a switchboard addition, used by the console).
#[utoipa::path(get, path = "/v2/conversations/channels/{channelId}/typing", tag = tags::MESSAGES,
    params(("channelId" = String, Path), ActingAs),
    responses((status = 200, body = TypingResponse), (status = "4XX", body = switchboard_protocol::ErrorBody),
        (status = "5XX", description = "The server failed (500) or the database is unavailable (503); retry later", body = switchboard_protocol::ErrorBody)))]
pub async fn list_typing(
    State(app): State<AppState>,
    Acting(actor): Acting,
    ChannelPath { channel }: ChannelPath,
) -> ApiResult<Json<TypingResponse>> {
    let typing = app
        .store
        .list_typing(&actor, &channel, now_micros())
        .await?;
    Ok(Json(TypingResponse {
        typing: indicators(typing),
    }))
}

/// Who is typing, as the API shows it.
pub(crate) fn indicators(typing: Vec<switchboard_store::Typing>) -> Vec<TypingIndicator> {
    typing
        .into_iter()
        .map(|entry| TypingIndicator {
            user_id: entry.user.into_string(),
            expires_at: Timestamp::from_unix_micros(entry.expires_at),
        })
        .collect()
}

/// The routes of this module, for [`crate::router`].
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_typing))
        .routes(routes!(stop_typing))
        .routes(routes!(list_typing))
}
