//! An echo bot with no public URL: it fetches its events over the pull
//! transport and answers each person's message in the same channel.
//!
//! SWITCHBOARD_SERVER=http://127.0.0.1:8080 SWITCHBOARD_BOT_KEY=… cargo run -p switchboard-bot-sdk --example pull-bot

use switchboard_bot_sdk::{Client, EventPayload, Reply, is_own, pull::Consumer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = std::env::var("SWITCHBOARD_SERVER").unwrap_or("http://127.0.0.1:8080".into());
    let client = Client::new(&server, &std::env::var("SWITCHBOARD_BOT_KEY")?);
    let replies = client.clone();
    Consumer::new(client)
        .run(move |event| {
            let client = replies.clone();
            async move {
                let Ok(EventPayload::MessageNew(new)) = event.payload() else {
                    return Reply::Handled;
                };
                if is_own(&event) {
                    return Reply::Handled;
                }
                let text = new.message.text.unwrap_or_default();
                match client.reply(&event, &format!("echo: {text}")).await {
                    Ok(_) => Reply::Handled,
                    Err(_) => Reply::RetryLater(std::time::Duration::from_secs(5)),
                }
            }
        })
        .await?;
    Ok(())
}
