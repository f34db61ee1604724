//! The demo's echo bot: a real webhook receiver that answers every person's
//! message through the API, as any bot would.
//!
//! It verifies each delivery's Standard Webhooks signature, ignores its own
//! messages and everything but regular ones, shows typing, then replies
//! quoting the message.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::json;
use switchboard_protocol::events::MessageNewData;
use switchboard_protocol::signing::{DEFAULT_TOLERANCE_SECONDS, WebhookSecret, verify_standard};
use switchboard_protocol::{Envelope, EventType, MessageType};
use tokio::net::TcpListener;

struct EchoBot {
    api: String,
    bot_key: String,
    secret: WebhookSecret,
    client: reqwest::Client,
}

/// Binds the bot's webhook listener on a free loopback port; returns its URL
/// and the listener.
pub async fn listen() -> anyhow::Result<(String, TcpListener)> {
    listen_on("127.0.0.1:0").await
}

/// Binds the bot's webhook listener on `address`; returns its URL and the
/// listener.
pub async fn listen_on(address: &str) -> anyhow::Result<(String, TcpListener)> {
    let listener = TcpListener::bind(address).await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    Ok((url, listener))
}

/// Serves the bot on `listener` until the process ends.
pub async fn serve(
    listener: TcpListener,
    api: String,
    bot_key: String,
    secret: &str,
) -> anyhow::Result<()> {
    let bot = Arc::new(EchoBot {
        api,
        bot_key,
        secret: WebhookSecret::parse(secret)
            .map_err(|err| anyhow::anyhow!("echo bot secret: {err}"))?,
        client: reqwest::Client::new(),
    });
    let app = Router::new().route("/hook", post(receive)).with_state(bot);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn receive(State(bot): State<Arc<EchoBot>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0);
    let verified = verify_standard(
        &bot.secret,
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
        &body,
        now,
        DEFAULT_TOLERANCE_SECONDS,
    );
    if verified.is_err() {
        tracing::warn!("echo bot: a delivery with a bad signature was refused");
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(envelope) = serde_json::from_slice::<Envelope>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    if envelope.event_type != EventType::MessageNew {
        return StatusCode::NO_CONTENT;
    }
    let Ok(data) = serde_json::from_value::<MessageNewData>(envelope.data) else {
        return StatusCode::BAD_REQUEST;
    };
    let own = envelope.bot_id.as_deref() == Some(data.message.user.id.as_str());
    if own || data.message.message_type != MessageType::Regular {
        return StatusCode::NO_CONTENT;
    }
    // Answer the delivery at once; reply in the background like a real bot.
    tokio::spawn(async move {
        if let Err(err) = reply(&bot, &data).await {
            tracing::warn!(error = %err, "echo bot: could not reply");
        }
    });
    StatusCode::OK
}

async fn reply(bot: &EchoBot, data: &MessageNewData) -> Result<(), reqwest::Error> {
    let channel = format!(
        "{}/v2/conversations/channels/{}",
        bot.api, data.channel.channel_id
    );
    bot.client
        .post(format!("{channel}/typing/start"))
        .bearer_auth(&bot.bot_key)
        .json(&json!({"ttlSeconds": 5}))
        .send()
        .await?
        .error_for_status()?;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let text = data.message.text.as_deref().unwrap_or("(no text)");
    bot.client
        .post(format!("{channel}/messages"))
        .bearer_auth(&bot.bot_key)
        .header("Idempotency-Key", format!("echo-{}", data.message.message_id))
        .json(&json!({"text": format!("Echo: {text}"), "quote": {"messageId": data.message.message_id}}))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}
