//! The demo's echo bot, written on the bot SDK as any bot would be: a
//! webhook route that verifies each delivery's signature, ignores its own
//! messages and everything but regular ones, shows typing, then replies
//! quoting the message (once per event, however often it is delivered),
//! with three buttons: one the bot answers (`chat:message:action`: "You
//! pressed …"), one that replies as the person, and a link to the API reference.

use std::time::Duration;

use switchboard_bot_sdk::protocol::api::{QuoteRef, SendMessageRequest};
use switchboard_bot_sdk::protocol::events::{MessageActionData, MessageNewData};
use switchboard_bot_sdk::protocol::{
    ActionHandler, Button, ButtonHandler, Element, ElementAction, LinkHandler, MessageType,
    ReplyHandler,
};
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
    let reference = format!("{}/openapi.json", api.trim_end_matches('/'));
    let app = webhook::router("/hook", verifier, move |event| {
        let client = client.clone();
        let reference = reference.clone();
        async move {
            match event.payload() {
                Ok(EventPayload::MessageNew(data))
                    if !is_own(&event) && data.message.message_type == MessageType::Regular =>
                {
                    // Answer the delivery at once; reply in the background.
                    tokio::spawn(async move {
                        if let Err(err) = echo(&client, &event, &data, &reference).await {
                            tracing::warn!(error = %err, "echo bot: could not reply");
                        }
                    });
                }
                Ok(EventPayload::MessageAction(data)) => {
                    tokio::spawn(async move {
                        if let Err(err) = pressed(&client, &event, &data).await {
                            tracing::warn!(error = %err, "echo bot: could not answer a button");
                        }
                    });
                }
                _ => {}
            }
            Reply::Handled
        }
    });
    axum::serve(listener, app).await?;
    Ok(())
}

/// The id of the button the echo bot answers.
pub const AGAIN_ACTION: &str = "echo-again";

async fn echo(
    client: &Client,
    event: &Event,
    data: &MessageNewData,
    reference: &str,
) -> Result<(), ApiError> {
    client.typing_start(&data.channel.channel_id, 5).await?;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let text = data.message.text.as_deref().unwrap_or("(no text)");
    let channel = &data.channel.channel_id;
    let quote = data.message.message_id.clone();
    let message = SendMessageRequest {
        text: Some(format!("Echo: {text}")),
        elements: Some(vec![buttons(reference)]),
        quote: Some(QuoteRef { message_id: quote }),
        ..SendMessageRequest::default()
    };
    client
        .send_message_once(channel, &message, &format!("reply-{}", event.id))
        .await?;
    Ok(())
}

/// A row of the three kinds of buttons; the link opens `reference`.
fn buttons(reference: &str) -> Element {
    let button = |text: &str, handler: ButtonHandler| ElementAction {
        button: Some(Button {
            text: text.to_owned(),
            handler: Some(handler),
            ..Button::default()
        }),
        ..ElementAction::default()
    };
    Element {
        actions: Some(vec![
            button(
                "Echo again",
                ButtonHandler {
                    action: Some(ActionHandler {
                        id: AGAIN_ACTION.to_owned(),
                    }),
                    ..ButtonHandler::default()
                },
            ),
            button(
                "Say thanks",
                ButtonHandler {
                    reply: Some(ReplyHandler {
                        text: Some("Thanks, echo bot!".to_owned()),
                    }),
                    ..ButtonHandler::default()
                },
            ),
            button(
                "API reference",
                ButtonHandler {
                    link: Some(LinkHandler {
                        url: reference.to_owned(),
                    }),
                    ..ButtonHandler::default()
                },
            ),
        ]),
        ..Element::default()
    }
}

/// A person pressed the bot's button: it says so, quoting its message
/// (once per event).
async fn pressed(client: &Client, event: &Event, data: &MessageActionData) -> Result<(), ApiError> {
    let name = data.user.name.as_deref().unwrap_or("someone");
    let message = SendMessageRequest {
        text: Some(format!("You pressed “{}”, {name}.", data.action.id)),
        quote: Some(QuoteRef {
            message_id: data.message.message_id.clone(),
        }),
        ..SendMessageRequest::default()
    };
    client
        .send_message_once(
            &data.channel.channel_id,
            &message,
            &format!("pressed-{}", event.id),
        )
        .await?;
    Ok(())
}
