//! The switchboard API for a bot: its key, the commands of the contract,
//! retries that honour `Retry-After`, and typed errors.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use switchboard_protocol::api::{
    AddMembersRequest, AttachmentRef, ChannelDetailsResponse, ChannelResponse,
    DirectChannelRequest, MembersResponse, MessageResponse, PartialUpdateMessageRequest,
    PulledEventsResponse, QuoteRef, SendMessageRequest, UpdateMessageRequest, UploadFileRequest,
    UploadFileResponse,
};
use switchboard_protocol::{Channel, Element, Message};

use crate::Event;

/// Tries of one call answered 429 or 503, or not answered at all.
const TRIES: u32 = 5;
/// Longest wait between two tries, whatever `Retry-After` says.
const LONGEST_WAIT: Duration = Duration::from_secs(30);

/// A refusal or failure of a call: the contract's error body, or what kept
/// the call from being answered.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server answered with an error body.
    #[error("{status} {error_type}: {message} (request {request_id})")]
    Refused {
        status: u16,
        /// `ValidationException`, `NotFoundException`, …
        error_type: String,
        message: String,
        request_id: String,
    },
    /// The server could not be reached, or its answer not read.
    #[error("the call did not go through: {0}")]
    Transport(#[from] reqwest::Error),
}

impl ApiError {
    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Refused { status, .. } => Some(*status),
            ApiError::Transport(_) => None,
        }
    }
}

/// The API, as one bot (bot key) or for a company (company key).
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Client {
    /// A client of the server at `base` (`http://127.0.0.1:8080`) with `key`.
    pub fn new(base: &str, key: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(40))
            .build()
            .unwrap_or_default();
        Client {
            http,
            base: base.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
        }
    }

    /// Sends a message; the `Idempotency-Key` it carries makes a retry of
    /// the same send never post it twice.
    pub async fn send_message(
        &self,
        channel: &str,
        message: &SendMessageRequest,
    ) -> Result<Message, ApiError> {
        let key = uuid::Uuid::new_v4().to_string();
        self.send_message_once(channel, message, &key).await
    }

    /// Sends a message under an `Idempotency-Key` of the caller's: a send
    /// with a key already used (within 24 hours) answers the message it made
    /// then, and posts nothing.
    pub async fn send_message_once(
        &self,
        channel: &str,
        message: &SendMessageRequest,
        idempotency_key: &str,
    ) -> Result<Message, ApiError> {
        let sent: MessageResponse = self
            .call(
                Method::POST,
                &format!("/v2/conversations/channels/{channel}/messages"),
                Some(message),
                Some(idempotency_key),
            )
            .await?;
        Ok(sent.message)
    }

    /// Sends a text message.
    pub async fn say(&self, channel: &str, text: &str) -> Result<Message, ApiError> {
        self.send_message(channel, &text_message(text)).await
    }

    /// Answers a message event in its channel, quoting the message. The
    /// answer is keyed by the event: an event delivered again (delivery is
    /// at least once) is answered once.
    pub async fn reply(&self, event: &Event, text: &str) -> Result<Message, ApiError> {
        let channel = event.data["channel"]["channelId"]
            .as_str()
            .unwrap_or_default();
        let quoted = event.data["message"]["messageId"]
            .as_str()
            .map(|id| QuoteRef {
                message_id: id.to_owned(),
            });
        let message = SendMessageRequest {
            quote: quoted,
            ..text_message(text)
        };
        self.send_message_once(channel, &message, &format!("reply-{}", event.id))
            .await
    }

    /// Sends a message with buttons (or other elements).
    pub async fn send_elements(
        &self,
        channel: &str,
        text: &str,
        elements: Vec<Element>,
    ) -> Result<Message, ApiError> {
        let message = SendMessageRequest {
            elements: Some(elements),
            ..text_message(text)
        };
        self.send_message(channel, &message).await
    }

    /// Replaces a message's content.
    pub async fn update_message(
        &self,
        channel: &str,
        message: &str,
        content: &UpdateMessageRequest,
    ) -> Result<Message, ApiError> {
        let path = format!("/v2/conversations/channels/{channel}/messages/{message}");
        let updated: MessageResponse = self.call(Method::PUT, &path, Some(content), None).await?;
        Ok(updated.message)
    }

    /// Changes some parts of a message (`set`) and clears others (`unset`:
    /// `text`, `elements`, `attachments`, `mentions`); the rest stays.
    pub async fn patch_message(
        &self,
        channel: &str,
        message: &str,
        change: &PartialUpdateMessageRequest,
    ) -> Result<Message, ApiError> {
        let path = format!("/v2/conversations/channels/{channel}/messages/{message}");
        let updated: MessageResponse = self.call(Method::PATCH, &path, Some(change), None).await?;
        Ok(updated.message)
    }

    /// Replaces a message's text only, keeping its buttons and files (as a
    /// bot does when it marks a question answered).
    pub async fn edit_text(
        &self,
        channel: &str,
        message: &str,
        text: &str,
    ) -> Result<Message, ApiError> {
        let change = PartialUpdateMessageRequest {
            set: Some(UpdateMessageRequest {
                text: Some(text.to_owned()),
                elements: None,
                attachments: None,
                mentions: None,
            }),
            unset: Vec::new(),
        };
        self.patch_message(channel, message, &change).await
    }

    pub async fn delete_message(&self, channel: &str, message: &str) -> Result<(), ApiError> {
        let path = format!("/v2/conversations/channels/{channel}/messages/{message}");
        self.call::<Value>(Method::DELETE, &path, None::<&()>, None)
            .await
            .map(drop)
    }

    pub async fn add_reaction(
        &self,
        channel: &str,
        message: &str,
        reaction: &str,
    ) -> Result<Message, ApiError> {
        let path = format!("/v2/conversations/channels/{channel}/messages/{message}/reactions");
        let body = json!({"type": reaction});
        let answer: MessageResponse = self.call(Method::POST, &path, Some(&body), None).await?;
        Ok(answer.message)
    }

    pub async fn remove_reaction(
        &self,
        channel: &str,
        message: &str,
        reaction: &str,
    ) -> Result<Message, ApiError> {
        let path =
            format!("/v2/conversations/channels/{channel}/messages/{message}/reactions/{reaction}");
        let answer: MessageResponse = self.call(Method::DELETE, &path, None::<&()>, None).await?;
        Ok(answer.message)
    }

    /// Shows the bot typing for `ttl_seconds` (1–120), or until [`Client::typing_stop`].
    pub async fn typing_start(&self, channel: &str, ttl_seconds: u32) -> Result<(), ApiError> {
        let path = format!("/v2/conversations/channels/{channel}/typing/start");
        let body = json!({"ttlSeconds": ttl_seconds});
        self.call::<Value>(Method::POST, &path, Some(&body), None)
            .await
            .map(drop)
    }

    pub async fn typing_stop(&self, channel: &str) -> Result<(), ApiError> {
        let path = format!("/v2/conversations/channels/{channel}/typing/stop");
        self.call::<Value>(Method::POST, &path, Some(&json!({})), None)
            .await
            .map(drop)
    }

    pub async fn channel(&self, channel: &str) -> Result<ChannelDetailsResponse, ApiError> {
        let path = format!("/v2/conversations/channels/{channel}");
        self.call(Method::GET, &path, None::<&()>, None).await
    }

    pub async fn members(&self, channel: &str) -> Result<MembersResponse, ApiError> {
        let path = format!("/v2/conversations/channels/{channel}/members");
        self.call(Method::GET, &path, None::<&()>, None).await
    }

    /// Adds users to a channel (adding a member twice changes nothing).
    pub async fn add_members(
        &self,
        channel: &str,
        users: &[&str],
    ) -> Result<MembersResponse, ApiError> {
        let path = format!("/v2/conversations/channels/{channel}/members");
        let body = AddMembersRequest {
            members: Some(users.iter().map(|user| (*user).to_owned()).collect()),
            members_to_invite: None,
            silent: None,
        };
        self.call(Method::POST, &path, Some(&body), None).await
    }

    /// The direct channel of the bot and `user`, made when there is none.
    pub async fn direct_channel(&self, user: &str) -> Result<Channel, ApiError> {
        let body = DirectChannelRequest {
            member_id: Some(user.to_owned()),
            member_to_invite: None,
        };
        let answer: ChannelResponse = self
            .call(
                Method::POST,
                "/v2/conversations/channels/direct",
                Some(&body),
                None,
            )
            .await?;
        Ok(answer.channel)
    }

    /// Uploads a file to a channel (announce, then `PUT` the bytes to the
    /// presigned URL); attach it to a message by the [`AttachmentRef`] returned.
    pub async fn upload_file(
        &self,
        channel: &str,
        name: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<AttachmentRef, ApiError> {
        let path = format!("/v2/conversations/channels/{channel}/files");
        let announce = UploadFileRequest {
            name: name.to_owned(),
            content_type: Some(content_type.to_owned()),
            size: Some(bytes.len() as u64),
        };
        let upload: UploadFileResponse = self
            .call(Method::POST, &path, Some(&announce), None)
            .await?;
        let answer = self
            .http
            .put(&upload.presigned_upload_url)
            .header("content-type", content_type)
            .body(bytes)
            .send()
            .await?;
        refusal(answer).await?;
        Ok(AttachmentRef { id: upload.file_id })
    }

    /// The bot's next events over the pull transport (see [`crate::pull`]).
    pub async fn fetch_events(
        &self,
        wait_seconds: u32,
        limit: u32,
        visibility_seconds: u32,
    ) -> Result<PulledEventsResponse, ApiError> {
        let path = format!(
            "/v2/bot/events?wait={wait_seconds}&limit={limit}&visibilityTimeout={visibility_seconds}"
        );
        self.call(Method::GET, &path, None::<&()>, None).await
    }

    /// Acknowledges pulled events by their receipts.
    pub async fn acknowledge(&self, receipts: &[String]) -> Result<Value, ApiError> {
        self.call(
            Method::POST,
            "/v2/bot/events/ack",
            Some(&json!({"receipts": receipts})),
            None,
        )
        .await
    }

    /// Releases pulled events to come again after `retry_after_seconds`.
    pub async fn release(
        &self,
        receipts: &[String],
        retry_after_seconds: u32,
    ) -> Result<Value, ApiError> {
        let body = json!({"receipts": receipts, "retryAfterSeconds": retry_after_seconds});
        self.call(Method::POST, "/v2/bot/events/release", Some(&body), None)
            .await
    }

    /// One call, tried again after a 429 or 503 (as long as `Retry-After`
    /// says, within bounds) or a connection failure, up to [`TRIES`] times.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
        idempotency_key: Option<&str>,
    ) -> Result<T, ApiError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .bearer_auth(&self.key);
            if let Some(body) = body {
                request = request.json(body);
            }
            if let Some(key) = idempotency_key {
                request = request.header("idempotency-key", key);
            }
            let wait = match request.send().await {
                Ok(answer)
                    if matches!(
                        answer.status(),
                        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                    ) && tries < TRIES =>
                {
                    retry_after(&answer).unwrap_or(Duration::from_millis(200 << tries))
                }
                Ok(answer) => return Ok(refusal(answer).await?.json().await?),
                Err(err) if tries < TRIES && (err.is_connect() || err.is_timeout()) => {
                    Duration::from_millis(200 << tries)
                }
                Err(err) => return Err(err.into()),
            };
            tracing::debug!(path, ?wait, "switchboard asked to retry later");
            tokio::time::sleep(wait.min(LONGEST_WAIT)).await;
        }
    }
}

fn text_message(text: &str) -> SendMessageRequest {
    SendMessageRequest {
        text: Some(text.to_owned()),
        elements: None,
        attachments: None,
        quote: None,
        mentions: None,
        silent: None,
    }
}

fn retry_after(answer: &reqwest::Response) -> Option<Duration> {
    let seconds: u64 = answer
        .headers()
        .get("retry-after")?
        .to_str()
        .ok()?
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

/// The answer when it is 2xx, else its error body as an [`ApiError`].
async fn refusal(answer: reqwest::Response) -> Result<reqwest::Response, ApiError> {
    let status = answer.status();
    if status.is_success() {
        return Ok(answer);
    }
    let body: Value = answer.json().await.unwrap_or(Value::Null);
    let text = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
    Err(ApiError::Refused {
        status: status.as_u16(),
        error_type: text("type"),
        message: text("message"),
        request_id: text("requestId"),
    })
}
