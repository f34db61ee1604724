//! Messages, reactions, buttons, typing and idempotent sends through the HTTP API.

use std::time::{Duration, Instant};

use crate::support::TestServer;
use serde_json::{Value, json};

fn messages_path(channel: &str) -> String {
    format!("/v2/conversations/channels/{channel}/messages")
}

#[tokio::test]
async fn send_with_elements_quote_and_mentions_then_list_newest_first() {
    let server = TestServer::start().await;
    let (alice, alice_token) = server.person("Alice").await;
    let (bot, bot_key) = server.bot("Helper").await;
    let channel = server.channel(&alice_token, &[&bot]).await;
    let first = server.say(&alice_token, &channel, "Can you help?").await;

    let elements = json!([{"actions": [
        {"button": {"text": "Yes", "variant": "primary", "handler": {"action": {"id": "yes"}}}},
        {"button": {"text": "Docs", "handler": {"link": {"url": "https://example.com/docs"}}}},
        {"button": {"text": "Later", "handler": {"reply": {"text": "later"}}}}
    ]}]);
    let sent = server
        .post(
            &messages_path(&channel),
            &bot_key,
            json!({"text": "Sure, @Alice", "elements": elements, "quote": {"messageId": first}, "mentions": [alice]}),
        )
        .await
        .expect(200);
    let message = &sent["message"];
    assert_eq!(message["type"], "regular");
    assert_eq!(message["channelId"], channel.as_str());
    assert_eq!(message["user"]["id"], bot.as_str());
    assert_eq!(message["user"]["bot"], true);
    assert_eq!(message["elements"], elements);
    assert_eq!(message["quote"]["messageId"], first.as_str());
    assert_eq!(message["quote"]["text"], "Can you help?");
    assert_eq!(message["quote"]["user"]["id"], alice.as_str());
    assert_eq!(message["mentions"][0]["id"], alice.as_str());
    for key in ["giphy", "forward", "event"] {
        assert_eq!(message[key], Value::Null, "{key}");
    }
    assert_eq!(message["attachments"], json!([]));
    assert_eq!(message["reactionCounts"], json!({}));
    assert!(message.get("updatedAt").is_none(), "never edited");

    let third = server.say(&alice_token, &channel, "Thanks").await;
    let listed = server
        .get(&messages_path(&channel), &alice_token)
        .await
        .expect(200);
    let ids: Vec<&str> = listed["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["messageId"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            third.as_str(),
            message["messageId"].as_str().unwrap(),
            first.as_str()
        ]
    );
    let page = server
        .get(
            &format!("{}?limit=1&offset=2", messages_path(&channel)),
            &alice_token,
        )
        .await
        .expect(200);
    assert_eq!(page["messages"][0]["messageId"], first.as_str());
    let fetched = server
        .get(&format!("{}/{third}", messages_path(&channel)), &bot_key)
        .await
        .expect(200);
    assert_eq!(fetched["message"]["text"], "Thanks");

    server
        .post(
            &messages_path(&channel),
            &alice_token,
            json!({"text": "x", "quote": {"messageId": "msg_nope"}}),
        )
        .await
        .expect_error(409, "ConflictException", "quote.messageId");
    let (outsider, _) = server.person("Outsider").await;
    server
        .post(
            &messages_path(&channel),
            &alice_token,
            json!({"text": "x", "mentions": [outsider]}),
        )
        .await
        .expect_error(409, "ConflictException", "mentions[0]");
    assert_eq!(server.message_count(&alice_token, &channel).await, 3);
}

#[tokio::test]
async fn update_is_idempotent_author_only_and_patch_sets_and_unsets() {
    let server = TestServer::start().await;
    let (_, alice_token) = server.person("Alice").await;
    let (bob, bob_token) = server.person("Bob").await;
    let channel = server.channel(&alice_token, &[&bob]).await;
    let id = server.say(&alice_token, &channel, "draft").await;
    let path = format!("{}/{id}", messages_path(&channel));

    let first = server
        .put(&path, &alice_token, json!({"text": "final"}))
        .await
        .expect(200);
    assert_eq!(first["message"]["text"], "final");
    let updated_at = first["message"]["updatedAt"].clone();
    assert!(updated_at.is_string());
    let second = server
        .put(&path, &alice_token, json!({"text": "final"}))
        .await
        .expect(200);
    assert_eq!(
        second["message"]["updatedAt"], updated_at,
        "the same update changes nothing"
    );

    server
        .put(&path, &bob_token, json!({"text": "mine now"}))
        .await
        .expect_error(403, "ForbiddenException", "author");
    server
        .patch(&path, &bob_token, json!({"set": {"text": "x"}}))
        .await
        .expect_error(403, "ForbiddenException", "author");

    let buttons = json!([{"actions": [{"button": {"text": "Go"}}]}]);
    let patched = server
        .patch(&path, &alice_token, json!({"set": {"elements": buttons}}))
        .await
        .expect(200);
    assert_eq!(patched["message"]["text"], "final");
    assert_eq!(patched["message"]["elements"], buttons);
    let unset = server
        .patch(&path, &alice_token, json!({"unset": ["text"]}))
        .await
        .expect(200);
    assert_eq!(unset["message"]["text"], Value::Null);
    server
        .patch(&path, &alice_token, json!({"unset": ["elements"]}))
        .await
        .expect_error(
            409,
            "ConflictException",
            "must keep text, elements or attachments",
        );
    let current = server.get(&path, &alice_token).await.expect(200);
    assert_eq!(
        current["message"]["elements"], buttons,
        "a refused patch changes nothing"
    );
}

#[tokio::test]
async fn delete_hides_the_message_and_follows_the_rules() {
    let server = TestServer::start().await;
    let (_, alice_token) = server.person("Alice").await;
    let (bob, bob_token) = server.person("Bob").await;
    let channel = server.channel(&alice_token, &[&bob]).await;
    let by_alice = server.say(&alice_token, &channel, "owner speaking").await;
    let by_bob = server.say(&bob_token, &channel, "member speaking").await;

    server
        .delete(
            &format!("{}/{by_alice}", messages_path(&channel)),
            &bob_token,
        )
        .await
        .expect_error(403, "ForbiddenException", "delete");
    server
        .delete(&format!("{}/{by_bob}", messages_path(&channel)), &bob_token)
        .await
        .expect(200);
    server
        .delete(&format!("{}/{by_bob}", messages_path(&channel)), &bob_token)
        .await
        .expect(200);
    // The owner moderates: she may delete Bob's messages too.
    let another = server.say(&bob_token, &channel, "again").await;
    server
        .delete(
            &format!("{}/{another}", messages_path(&channel)),
            &alice_token,
        )
        .await
        .expect(200);

    server
        .get(
            &format!("{}/{by_bob}", messages_path(&channel)),
            &alice_token,
        )
        .await
        .expect_error(404, "NotFoundException", &by_bob);
    server
        .put(
            &format!("{}/{by_bob}", messages_path(&channel)),
            &bob_token,
            json!({"text": "revive"}),
        )
        .await
        .expect_error(404, "NotFoundException", "message");
    assert_eq!(server.message_count(&alice_token, &channel).await, 1);
}

#[tokio::test]
async fn reactions_count_once_per_user_and_type() {
    let server = TestServer::start().await;
    let (alice, alice_token) = server.person("Alice").await;
    let (bob, bob_token) = server.person("Bob").await;
    let channel = server.channel(&alice_token, &[&bob]).await;
    let id = server.say(&alice_token, &channel, "vote").await;
    let reactions = format!("{}/{id}/reactions", messages_path(&channel));

    server
        .post(&reactions, &alice_token, json!({"type": "like"}))
        .await
        .expect(200);
    server
        .post(&reactions, &alice_token, json!({"type": "like"}))
        .await
        .expect(200);
    let both = server
        .post(&reactions, &bob_token, json!({"type": "like"}))
        .await
        .expect(200);
    assert_eq!(both["message"]["reactionCounts"], json!({"like": 2}));
    let hearts = server
        .post(&reactions, &bob_token, json!({"type": "❤️"}))
        .await
        .expect(200);
    assert_eq!(
        hearts["message"]["reactionCounts"],
        json!({"like": 2, "❤️": 1})
    );
    assert_eq!(
        hearts["message"]["latestReactions"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(hearts["message"]["latestReactions"][0]["type"], "❤️");
    assert_eq!(
        hearts["message"]["latestReactions"][0]["userId"],
        bob.as_str()
    );

    let removed = server
        .delete(&format!("{reactions}/like"), &alice_token)
        .await
        .expect(200);
    assert_eq!(
        removed["message"]["reactionCounts"],
        json!({"like": 1, "❤️": 1})
    );
    assert!(
        removed["message"]["latestReactions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["userId"] != alice.as_str())
    );
    server
        .delete(&format!("{reactions}/like"), &alice_token)
        .await
        .expect(200);
    server
        .post(&reactions, &alice_token, json!({"type": "two words"}))
        .await
        .expect_error(400, "ValidationException", "type");
    server
        .post(&reactions, &alice_token, json!({}))
        .await
        .expect_error(400, "ValidationException", "type");
}

#[tokio::test]
async fn buttons_are_pressed_by_action_id() {
    let server = TestServer::start().await;
    let (_, alice_token) = server.person("Alice").await;
    let (bot, bot_key) = server.bot("Approver").await;
    let channel = server.channel(&alice_token, &[&bot]).await;
    let sent = server
        .post(
            &messages_path(&channel),
            &bot_key,
            json!({"text": "Approve?", "elements": [{"actions": [
                {"button": {"text": "Approve", "handler": {"action": {"id": "approve"}}}},
                {"button": {"text": "Closed", "disabled": true, "handler": {"action": {"id": "closed"}}}}
            ]}, {"actions": [
                // Buttons may share an action id; one of them enabled is enough.
                {"button": {"text": "Later", "disabled": true, "handler": {"action": {"id": "later"}}}},
                {"button": {"text": "Ask me later", "handler": {"action": {"id": "later"}}}},
                {"button": {"text": "Closed too", "disabled": true, "handler": {"action": {"id": "closed"}}}}
            ]}]}),
        )
        .await
        .expect(200);
    let actions = format!(
        "{}/{}/actions",
        messages_path(&channel),
        sent["message"]["messageId"].as_str().unwrap()
    );
    server
        .post(&actions, &alice_token, json!({"actionId": "approve"}))
        .await
        .expect(200);
    server
        .post(&actions, &alice_token, json!({"actionId": "later"}))
        .await
        .expect(200);
    server
        .post(&actions, &alice_token, json!({"actionId": "reject"}))
        .await
        .expect_error(409, "ConflictException", "reject");
    server
        .post(&actions, &alice_token, json!({"actionId": "closed"}))
        .await
        .expect_error(409, "ConflictException", "disabled");
    server
        .post(&actions, &alice_token, json!({}))
        .await
        .expect_error(400, "ValidationException", "actionId");
}

#[tokio::test]
async fn typing_expires_stops_and_is_cleared_by_the_next_message() {
    let server = TestServer::start().await;
    let (alice, alice_token) = server.person("Alice").await;
    let (bob, bob_token) = server.person("Bob").await;
    let channel = server.channel(&alice_token, &[&bob]).await;
    let typing = format!("/v2/conversations/channels/{channel}/typing");
    let typers = |body: Value| -> Vec<String> {
        body["typing"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["userId"].as_str().unwrap().to_owned())
            .collect()
    };

    server
        .post(&format!("{typing}/start"), &alice_token, json!({}))
        .await
        .expect(200);
    server
        .post(
            &format!("{typing}/start"),
            &bob_token,
            json!({"ttlSeconds": 1}),
        )
        .await
        .expect(200);
    let mut both = typers(server.get(&typing, &alice_token).await.expect(200));
    both.sort();
    let mut expected = vec![alice.clone(), bob.clone()];
    expected.sort();
    assert_eq!(both, expected);

    server.say(&alice_token, &channel, "done typing").await;
    assert_eq!(
        typers(server.get(&typing, &alice_token).await.expect(200)),
        vec![bob.clone()]
    );

    // Bob's one-second indicator runs out on its own.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !typers(server.get(&typing, &alice_token).await.expect(200)).is_empty() {
        assert!(Instant::now() < deadline, "typing indicator did not expire");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    server
        .post(
            &format!("{typing}/start"),
            &bob_token,
            json!({"ttlSeconds": 60}),
        )
        .await
        .expect(200);
    server
        .post(&format!("{typing}/stop"), &bob_token, json!({}))
        .await
        .expect(200);
    assert!(typers(server.get(&typing, &alice_token).await.expect(200)).is_empty());
    server
        .post(
            &format!("{typing}/start"),
            &bob_token,
            json!({"ttlSeconds": 0}),
        )
        .await
        .expect_error(400, "ValidationException", "ttlSeconds");
    server
        .post(
            &format!("{typing}/start"),
            &bob_token,
            json!({"ttlSeconds": 121}),
        )
        .await
        .expect_error(400, "ValidationException", "ttlSeconds");
}

#[tokio::test]
async fn idempotency_key_returns_the_first_message_and_creates_nothing() {
    let server = TestServer::start().await;
    let (_, alice_token) = server.person("Alice").await;
    let (bob, bob_token) = server.person("Bob").await;
    let channel = server.channel(&alice_token, &[&bob]).await;
    let send = |token: String, key: &'static str, text: &'static str| {
        let request = server
            .client
            .post(format!("{}{}", server.base, messages_path(&channel)))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&json!({"text": text}));
        async move { crate::support::reply(request.send().await.unwrap()).await }
    };

    let first = send(alice_token.clone(), "order-1", "hello")
        .await
        .expect(200);
    let again = send(alice_token.clone(), "order-1", "hello")
        .await
        .expect(200);
    assert_eq!(again["message"]["messageId"], first["message"]["messageId"]);
    assert_eq!(server.message_count(&alice_token, &channel).await, 1);

    send(alice_token.clone(), "order-1", "something else")
        .await
        .expect_error(409, "ConflictException", "Idempotency-Key");
    // The key belongs to its caller: Bob's "order-1" is his own message.
    let bobs = send(bob_token.clone(), "order-1", "hello")
        .await
        .expect(200);
    assert_ne!(bobs["message"]["messageId"], first["message"]["messageId"]);
    assert_eq!(server.message_count(&alice_token, &channel).await, 2);

    // Identical concurrent sends with one key create one message.
    let racers = (0..16).map(|_| send(alice_token.clone(), "race", "at once"));
    let replies = futures_join_all(racers).await;
    let ids: std::collections::HashSet<String> = replies
        .into_iter()
        .map(|reply| {
            reply.expect(200)["message"]["messageId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "all concurrent sends answered the same message"
    );
    assert_eq!(server.message_count(&alice_token, &channel).await, 3);
}

/// Runs futures concurrently on the current task set.
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outputs = Vec::new();
    for handle in handles {
        outputs.push(handle.await.expect("task"));
    }
    outputs
}
