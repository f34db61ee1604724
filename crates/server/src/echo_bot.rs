//! The demo's echo bot, written on the bot SDK as any bot would be: a
//! webhook route that verifies each delivery's signature, ignores its own
//! messages and everything but regular ones, shows typing, then replies
//! quoting the message (once per event, however often it is delivered).

use std::time::Duration;

use switchboard_bot_sdk::protocol::MessageType;
use switchboard_bot_sdk::protocol::events::MessageNewData;
use switchboard_bot_sdk::{
    ApiError, Client, Event, EventPayload, Reply, Verifier, is_own, webhook,
};
use tokio::net::TcpListener;

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
    let verifier =
        Verifier::new(&[secret]).map_err(|err| anyhow::anyhow!("echo bot secret: {err}"))?;
    let client = Client::new(&api, &bot_key);
    let app = webhook::router("/hook", verifier, move |event| {
        let client = client.clone();
        async move {
            if let Ok(EventPayload::MessageNew(data)) = event.payload()
                && !is_own(&event)
                && data.message.message_type == MessageType::Regular
            {
                // Answer the delivery at once; reply in the background.
                tokio::spawn(async move {
                    if let Err(err) = echo(&client, &event, &data).await {
                        tracing::warn!(error = %err, "echo bot: could not reply");
                    }
                });
            }
            Reply::Handled
        }
    });
    axum::serve(listener, app).await?;
    Ok(())
}

async fn echo(client: &Client, event: &Event, data: &MessageNewData) -> Result<(), ApiError> {
    client.typing_start(&data.channel.channel_id, 5).await?;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let text = data.message.text.as_deref().unwrap_or("(no text)");
    client.reply(event, &format!("Echo: {text}")).await?;
    Ok(())
}
