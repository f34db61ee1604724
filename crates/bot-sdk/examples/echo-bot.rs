//! An echo bot behind a webhook: it verifies each delivery with the
//! integration's secret and answers each person's message in its channel.
//!
//! SWITCHBOARD_SERVER=… SWITCHBOARD_BOT_KEY=… SWITCHBOARD_SECRET=whsec_… cargo run -p switchboard-bot-sdk --example echo-bot

use switchboard_bot_sdk::{Client, EventPayload, Reply, Verifier, is_own, webhook};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = std::env::var("SWITCHBOARD_SERVER").unwrap_or("http://127.0.0.1:8080".into());
    let client = Client::new(&server, &std::env::var("SWITCHBOARD_BOT_KEY")?);
    let verifier = Verifier::new(&[&std::env::var("SWITCHBOARD_SECRET")?])?;
    let app = webhook::router("/hook", verifier, move |event| {
        let client = client.clone();
        async move {
            let Ok(EventPayload::MessageNew(new)) = event.payload() else {
                return Reply::Handled;
            };
            if !is_own(&event) {
                let text = new.message.text.unwrap_or_default();
                // Answer at once; the reply goes out in its own task.
                tokio::spawn(async move { client.reply(&event, &format!("echo: {text}")).await });
            }
            Reply::Handled
        }
    });
    let listen = std::env::var("LISTEN").unwrap_or("127.0.0.1:3000".into());
    axum::serve(tokio::net::TcpListener::bind(listen).await?, app).await?;
    Ok(())
}
