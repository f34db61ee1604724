//! The bot SDK against a real server: its webhook route verifies real
//! deliveries and its client answers through the API; its pull consumer
//! gets a bot's events with no public URL and answers them; its client
//! says what a refusal was.

use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_bot_sdk::{ApiError, Client, EventPayload, Reply, Verifier, is_own, pull, webhook};

use crate::support::TestServer;

/// Waits (bounded) until the channel, as Alice reads it, has a message
/// with this text.
async fn wait_for_text(server: &TestServer, alice: &str, channel: &str, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let texts = texts(server, alice, channel).await;
        if texts.iter().any(|found| found == text) {
            return;
        }
        assert!(Instant::now() < deadline, "no `{text}` in {texts:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The texts of the channel's messages as this token's user reads them, newest first.
async fn texts(server: &TestServer, token: &str, channel: &str) -> Vec<String> {
    server
        .messages(token, channel)
        .await
        .iter()
        .filter_map(|message| message["text"].as_str().map(str::to_owned))
        .collect()
}

/// What an echo bot does with an event, on the SDK.
async fn echo(client: Client, event: switchboard_bot_sdk::Event) -> Reply {
    let Ok(EventPayload::MessageNew(new)) = event.payload() else {
        return Reply::Handled;
    };
    if is_own(&event) {
        return Reply::Handled;
    }
    let text = new.message.text.unwrap_or_default();
    match client.reply(&event, &format!("echo: {text}")).await {
        Ok(_) => Reply::Handled,
        Err(_) => Reply::RetryLater(Duration::from_secs(1)),
    }
}

#[tokio::test]
async fn the_webhook_route_verifies_real_deliveries_and_the_bot_answers_through_the_client() {
    let server = TestServer::start().await;
    let (_, alice) = server.person("Alice").await;
    let (bot, bot_key) = server.bot("SDK webhook bot").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (_, secret) = server.webhook(&bot, &url, json!({})).await;
    let client = Client::new(&server.base, &bot_key);
    let app = webhook::router("/hook", Verifier::new(&[&secret]).unwrap(), move |event| {
        echo(client.clone(), event)
    });
    let serving = tokio::spawn(async move { axum::serve(listener, app).await });
    let channel = server.channel(&alice, &[&bot]).await;
    server.say(&alice, &channel, "hi SDK").await;
    wait_for_text(&server, &alice, &channel, "echo: hi SDK").await;

    // A delivery not signed by the secret never reaches the handler.
    let forged = reqwest::Client::new()
        .post(&url)
        .header("webhook-id", "evt_forged")
        .header("webhook-timestamp", "1")
        .header("webhook-signature", "v1,AAAA")
        .body(r#"{"id":"evt_forged"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    serving.abort();
    server.stop().await;
}

#[tokio::test]
async fn the_pull_consumer_answers_a_persons_message_with_no_public_url() {
    let server = TestServer::start().await;
    let (_, alice) = server.person("Alice").await;
    let (bot, bot_key) = server.bot("SDK pull bot").await;
    server.pull_integration(&bot).await;
    let channel = server.channel(&alice, &[&bot]).await;
    server.say(&alice, &channel, "hi puller").await;
    let client = Client::new(&server.base, &bot_key);
    let consumer = pull::Consumer::new(client.clone());
    let handler = move |event| echo(client.clone(), event);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut handled = 0;
    while handled < 3 {
        // The channel's creation, the bot's addition, the message.
        assert!(Instant::now() < deadline, "only {handled} events came");
        handled += consumer.once(&handler).await.unwrap();
    }
    wait_for_text(&server, &alice, &channel, "echo: hi puller").await;
    server.stop().await;
}

#[tokio::test]
async fn the_client_speaks_every_conversation_command_to_a_real_server() {
    let server = TestServer::start().await;
    let (alice, alice_token) = server.person("Alice").await;
    let (bob, _) = server.person("Bob").await;
    let (bot, bot_key) = server.bot("SDK commands bot").await;
    let channel = server.channel(&alice_token, &[&bot]).await;
    let client = Client::new(&server.base, &bot_key);

    let said = client.say(&channel, "first").await.unwrap();
    let edited = client
        .edit_text(&channel, &said.message_id, "first, edited")
        .await
        .unwrap();
    assert_eq!(edited.text.as_deref(), Some("first, edited"));
    let buttons = vec![switchboard_bot_sdk::protocol::Element {
        actions: Some(vec![switchboard_bot_sdk::protocol::ElementAction {
            button: Some(switchboard_bot_sdk::protocol::Button {
                text: "OK".into(),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        ..Default::default()
    }];
    let with_buttons = client
        .send_elements(&channel, "choose", buttons)
        .await
        .unwrap();
    // Editing the text keeps the buttons; a patch that unsets them clears them.
    let kept = client
        .edit_text(&channel, &with_buttons.message_id, "choose now")
        .await
        .unwrap();
    assert_eq!(kept.elements.as_ref().map(Vec::len), Some(1));
    let cleared = client
        .patch_message(
            &channel,
            &with_buttons.message_id,
            &switchboard_bot_sdk::protocol::api::PartialUpdateMessageRequest {
                set: None,
                unset: vec!["elements".into()],
            },
        )
        .await
        .unwrap();
    assert!(cleared.elements.as_deref().unwrap_or_default().is_empty());
    let reacted = client
        .add_reaction(&channel, &said.message_id, "like")
        .await
        .unwrap();
    assert_eq!(reacted.reaction_counts.get("like"), Some(&1));
    let unreacted = client
        .remove_reaction(&channel, &said.message_id, "like")
        .await
        .unwrap();
    assert_eq!(
        unreacted.reaction_counts.get("like").copied().unwrap_or(0),
        0
    );
    client.typing_start(&channel, 5).await.unwrap();
    client.typing_stop(&channel).await.unwrap();
    let added = client.add_members(&channel, &[&bob]).await.unwrap();
    assert!(added.members.iter().any(|member| member.id == bob));
    assert_eq!(client.members(&channel).await.unwrap().members.len(), 3);
    assert_eq!(
        client.channel(&channel).await.unwrap().channel.member_count,
        3
    );
    let direct = client.direct_channel(&alice).await.unwrap();
    assert_eq!(direct.member_count, 2);
    let file = client
        .upload_file(&channel, "notes.txt", "text/plain", b"hello".to_vec())
        .await
        .unwrap();
    let with_file = client
        .send_message(
            &channel,
            &switchboard_bot_sdk::protocol::api::SendMessageRequest {
                attachments: Some(vec![file]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(with_file.attachments[0].name, "notes.txt");
    client
        .delete_message(&channel, &said.message_id)
        .await
        .unwrap();
    // Alice sees what the bot did: the edited, deleted and sent messages.
    assert_eq!(texts(&server, &alice_token, &channel).await, ["choose now"]);
    server.stop().await;
}

#[tokio::test]
async fn the_client_says_what_a_refusal_was() {
    let server = TestServer::start().await;
    let (_, bot_key) = server.bot("SDK client bot").await;
    let client = Client::new(&server.base, &bot_key);
    let refused = client
        .say("ch_0123456789abcdef0123456789abcdef", "hello")
        .await;
    match refused {
        Err(ApiError::Refused {
            status,
            error_type,
            request_id,
            ..
        }) => {
            assert_eq!(status, 404);
            assert_eq!(error_type, "NotFoundException");
            assert!(!request_id.is_empty());
        }
        other => panic!("{other:?}"),
    }
    let revoked = Client::new(&server.base, "wsk-v1-nothing");
    assert_eq!(
        revoked.say("ch_x", "x").await.unwrap_err().status(),
        Some(401)
    );
    server.stop().await;
}

#[tokio::test]
async fn the_sqs_consumer_verifies_real_messages_keeps_channel_order_and_deletes_what_it_handled() {
    use crate::support::sqs::{self, Moto};
    use switchboard_bot_sdk::sqs::{Consumer, Signature};
    let moto = Moto::start().await;
    let queue = moto.create_queue("sdk-bot.fifo", &[]).await;
    let server = TestServer::start().await;
    let (_, alice) = server.person("Alice").await;
    let (bot, bot_key) = server.bot("SDK queue bot").await;
    let (_, secret) = server
        .sqs_integration(
            &bot,
            &queue,
            &moto.endpoint,
            json!({"eventTypes": ["chat:message:new"]}),
        )
        .await;
    let channel = server.channel(&alice, &[&bot]).await;
    for n in 0..3 {
        server.say(&alice, &channel, &format!("queued {n}")).await;
    }
    server.settle().await;
    let client = Client::new(&server.base, &bot_key);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    // Both signatures verify: x-bees' X-SIGNATURE, then the whsec_ one.
    let signatures = [
        Signature::AwsSecret(sqs::SECRET_ACCESS_KEY.to_owned()),
        Signature::Webhook(Verifier::new(&[&secret]).unwrap()),
    ];
    for (round, signature) in signatures.into_iter().enumerate() {
        let sent = round * 3..round * 3 + 3;
        if round > 0 {
            for n in sent.clone() {
                server.say(&alice, &channel, &format!("queued {n}")).await;
            }
            server.settle().await;
        }
        let consumer = Consumer::new(sqs::client(&moto.endpoint), &queue, signature).visibility(5);
        let (client, recorded) = (client.clone(), seen.clone());
        let handler = move |event: switchboard_bot_sdk::Event| {
            let (client, seen) = (client.clone(), recorded.clone());
            async move {
                let text = event.data["message"]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if !is_own(&event) {
                    seen.lock().unwrap().push(text);
                }
                echo(client, event).await
            }
        };
        let wanted = sent.end;
        let deadline = Instant::now() + Duration::from_secs(30);
        while seen.lock().unwrap().len() < wanted {
            assert!(
                Instant::now() < deadline,
                "only {:?} came",
                seen.lock().unwrap()
            );
            consumer.once(&handler, 1).await.unwrap();
        }
        // The echoes come back as the bot's own messages: handled, not answered.
        for n in sent {
            wait_for_text(&server, &alice, &channel, &format!("echo: queued {n}")).await;
        }
        server.settle().await;
        while consumer.once(&handler, 1).await.unwrap() > 0 {}
        assert_eq!(moto.depth(&queue).await, 0, "handled messages are deleted");
    }
    let seen = seen.lock().unwrap().clone();
    let expected: Vec<String> = (0..6).map(|n| format!("queued {n}")).collect();
    assert_eq!(seen, expected, "one channel's events in order");
    server.stop().await;
}
