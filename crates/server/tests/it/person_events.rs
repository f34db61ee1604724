//! A person's live feed, `GET /v2/conversations/events`: the events of their
//! own channels as Server-Sent Events, live, resumable, and nobody else's.

use std::time::Duration;

use crate::support::TestServer;
use serde_json::{Value, json};

/// One Server-Sent Event.
#[derive(Debug)]
pub(crate) struct Sse {
    pub(crate) name: String,
    pub(crate) id: Option<String>,
    pub(crate) data: Value,
}

/// An open feed, read event by event.
pub(crate) struct Feed {
    response: reqwest::Response,
    buffer: String,
}

impl Feed {
    pub(crate) async fn open(
        server: &TestServer,
        token: &str,
        last_event_id: Option<&str>,
    ) -> Feed {
        let mut request = server
            .client
            .get(format!("{}/v2/conversations/events", server.base))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Feed {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped), within 10 s.
    pub(crate) async fn next(&mut self) -> Sse {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    let mut event = Sse {
                        name: "message".into(),
                        id: None,
                        data: Value::Null,
                    };
                    let mut data = None;
                    for line in block.lines() {
                        if let Some(value) = line.strip_prefix("event: ") {
                            event.name = value.to_owned();
                        } else if let Some(value) = line.strip_prefix("id: ") {
                            event.id = Some(value.to_owned());
                        } else if let Some(value) = line.strip_prefix("data: ") {
                            data = Some(value.to_owned());
                        }
                    }
                    if let Some(data) = data {
                        event.data = serde_json::from_str(&data).unwrap();
                        return event;
                    }
                    continue;
                }
                let chunk = self
                    .response
                    .chunk()
                    .await
                    .unwrap()
                    .expect("the feed is open");
                self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
            }
        })
        .await
        .expect("an event within 10 s")
    }

    /// The next event named `name`. A feed that starts (or resumes) reads
    /// from a little earlier, so it may first send events from just before,
    /// such as the channel's creation: those are passed over.
    pub(crate) async fn next_named(&mut self, name: &str) -> Sse {
        loop {
            let event = self.next().await;
            if event.name == name {
                return event;
            }
        }
    }
}

#[tokio::test]
async fn a_person_hears_their_channels_live_and_nobody_elses() {
    let server = TestServer::start().await;
    let (alice, alice_token) = server.person("Alice").await;
    let (bob, bob_token) = server.person("Bob").await;
    let (_, carol_token) = server.person("Carol").await;
    let shared = server.channel(&bob_token, &[&alice]).await;
    let bob_and_carol = server.channel(&carol_token, &[&bob]).await;

    let mut feed = Feed::open(&server, &alice_token, None).await;
    let ready = feed.next().await;
    assert_eq!(ready.name, "ready");
    assert_eq!(ready.data["userId"], alice.as_str());
    assert!(ready.id.is_some());

    // Another company's person, in a channel of their own, is never heard.
    let other_key = server.second_company().await;
    let (_, other_token) = {
        let other = TestServer::attach(&server.base, &other_key);
        other.person("Mallory").await
    };
    let other_channel = server.channel(&other_token, &[]).await;
    server
        .say(&other_token, &other_channel, "other company")
        .await;
    server
        .say(&carol_token, &bob_and_carol, "not for Alice")
        .await;
    let message = server.say(&bob_token, &shared, "hello Alice").await;

    let event = feed.next_named("chat:message:new").await;
    assert_eq!(event.data["type"], "chat:message:new");
    assert_eq!(event.data["channelId"], shared.as_str());
    assert_eq!(event.data["data"]["message"]["messageId"], message.as_str());
    assert_eq!(event.data["data"]["message"]["text"], "hello Alice");
    assert!(event.data["channelSeq"].as_i64().unwrap() >= 1);

    // Typing in her channel reaches her as it starts.
    server
        .post(
            &format!("/v2/conversations/channels/{shared}/typing/start"),
            &bob_token,
            json!({"ttlSeconds": 5}),
        )
        .await
        .expect(200);
    let typing = feed.next_named("typing").await;
    assert_eq!(typing.data["channelId"], shared.as_str());
    assert_eq!(typing.data["typing"][0]["userId"], bob.as_str());

    // Edits and reactions come as their events, in order.
    server
        .patch(
            &format!("/v2/conversations/channels/{shared}/messages/{message}"),
            &bob_token,
            json!({"set": {"text": "hello again"}}),
        )
        .await
        .expect(200);
    let updated = feed.next_named("chat:message:updated").await;
    assert_eq!(updated.data["data"]["message"]["text"], "hello again");
}

#[tokio::test]
async fn a_feed_resumes_from_its_last_event_id_without_losing_any() {
    let server = TestServer::start().await;
    let (alice, alice_token) = server.person("Alice").await;
    let (_, bob_token) = server.person("Bob").await;
    let channel = server.channel(&bob_token, &[&alice]).await;

    let mut feed = Feed::open(&server, &alice_token, None).await;
    assert_eq!(feed.next().await.name, "ready");
    server.say(&bob_token, &channel, "one").await;
    let first = feed.next_named("chat:message:new").await;
    assert_eq!(first.data["data"]["message"]["text"], "one");
    let cursor = first.id.clone().unwrap();
    drop(feed);

    // Away: two more messages.
    server.say(&bob_token, &channel, "two").await;
    server.say(&bob_token, &channel, "three").await;

    let mut resumed = Feed::open(&server, &alice_token, Some(&cursor)).await;
    assert_eq!(resumed.next().await.name, "ready");
    let mut texts = Vec::new();
    let mut ids = std::collections::HashSet::new();
    while !texts.contains(&"three".to_owned()) {
        let event = resumed.next_named("chat:message:new").await;
        assert!(
            ids.insert(event.data["id"].to_string()),
            "sent twice on one stream"
        );
        texts.push(
            event.data["data"]["message"]["text"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // The event resumed from may come again (dedupe on its id); none is lost.
    texts.retain(|text| text != "one");
    assert_eq!(texts, ["two", "three"]);
}

#[tokio::test]
async fn a_feed_refuses_a_bad_cursor_and_a_missing_credential() {
    let server = TestServer::start().await;
    let (_, alice_token) = server.person("Alice").await;
    server
        .get("/v2/conversations/events?cursor=yesterday", &alice_token)
        .await
        .expect_error(400, "ValidationException", "cursor");
    let refused = server
        .client
        .get(format!("{}/v2/conversations/events", server.base))
        .header("last-event-id", "-5")
        .bearer_auth(&alice_token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    server
        .get("/v2/conversations/events", "")
        .await
        .expect_error(401, "UnauthorizedException", "");
    // A company key names the person whose feed it reads.
    server
        .get("/v2/conversations/events", &server.company_key)
        .await
        .expect_error(400, "ValidationException", "userId is required");
}
