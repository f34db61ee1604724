//! The pull transport over HTTP: a bot fetches its events with its key,
//! acknowledges or releases them, and gets again what it did not
//! acknowledge in time; channel order, two consumers, pause, dead letters
//! and a server killed while events are held.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_domain::credentials::{self, CredentialKind};

use crate::support::TestServer;
use crate::support::process::ServerProcess;
use crate::support::store::TestStore;

/// A bot with a pull integration in a channel with Alice: (Alice's token,
/// bot id, bot key, integration id, channel).
async fn pulling_bot(server: &TestServer) -> (String, String, String, String, String) {
    let (_, alice) = server.person("Alice").await;
    let (bot, key) = server.bot("Puller").await;
    let integration = server.pull_integration(&bot).await;
    let channel = server.channel(&alice, &[&bot]).await;
    (alice, bot, key, integration, channel)
}

/// One fetch; its events.
async fn fetch(server: &TestServer, key: &str, query: &str) -> Vec<Value> {
    let answer = server
        .get(&format!("/v2/bot/events?{query}"), key)
        .await
        .expect(200);
    answer["events"].as_array().unwrap().clone()
}

async fn acknowledge(server: &TestServer, key: &str, receipts: &[&Value]) -> Value {
    server
        .post("/v2/bot/events/ack", key, json!({"receipts": receipts}))
        .await
        .expect(200)
}

/// Fetches and acknowledges until nothing is left (the channel's own events).
async fn drain(server: &TestServer, key: &str) {
    for _ in 0..100 {
        let events = fetch(server, key, "wait=0").await;
        if events.is_empty() {
            return;
        }
        let receipts: Vec<&Value> = events.iter().map(|item| &item["receipt"]).collect();
        acknowledge(server, key, &receipts).await;
    }
    panic!("events kept coming");
}

/// Fetches and acknowledges until `wanted` message texts have come (bounded),
/// checking that no fetch holds two events of one channel and that each
/// channel's events come in `channelSeq` order; the texts in the order seen.
async fn drain_messages(server: &TestServer, key: &str, wanted: usize) -> Vec<String> {
    let mut texts = Vec::new();
    let mut last_seq: HashMap<String, u64> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while texts.len() < wanted {
        assert!(Instant::now() < deadline, "only {texts:?} came");
        let events = fetch(server, key, "wait=2&limit=10").await;
        let mut channels: Vec<&str> = Vec::new();
        for item in &events {
            let event = &item["event"];
            let channel = event["data"]["channel"]["channelId"].as_str().unwrap();
            assert!(
                !channels.contains(&channel),
                "two events of {channel} at once"
            );
            channels.push(channel);
            let seq = event["channelSeq"].as_u64().unwrap();
            let before = last_seq.insert(channel.to_owned(), seq);
            assert!(
                before.is_none_or(|before| before < seq),
                "{channel}: {before:?} then {seq}"
            );
            if event["type"] == "chat:message:new" {
                texts.push(
                    event["data"]["message"]["text"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                );
            }
        }
        let receipts: Vec<&Value> = events.iter().map(|item| &item["receipt"]).collect();
        if !receipts.is_empty() {
            let acked = acknowledge(server, key, &receipts).await;
            assert_eq!(acked["acknowledged"], receipts.len(), "{acked}");
        }
    }
    texts
}

#[tokio::test]
async fn a_bot_fetches_its_events_in_channel_order_and_acknowledged_ones_are_delivered() {
    let server = TestServer::start().await;
    let (alice, bot, key, integration, channel) = pulling_bot(&server).await;
    let second = server.channel(&alice, &[&bot]).await;
    for n in 0..3 {
        server.say(&alice, &channel, &format!("first {n}")).await;
        server.say(&alice, &second, &format!("second {n}")).await;
    }
    let texts = drain_messages(&server, &key, 6).await;
    let in_channel = |prefix: &str| {
        texts
            .iter()
            .filter(|text| text.starts_with(prefix))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(in_channel("first"), ["first 0", "first 1", "first 2"]);
    assert_eq!(in_channel("second"), ["second 0", "second 1", "second 2"]);
    assert!(fetch(&server, &key, "wait=0").await.is_empty());

    // The envelope is the contract's, as webhooks carry it.
    server.say(&alice, &channel, "look").await;
    let events = fetch(&server, &key, "wait=5").await;
    let event = &events[0]["event"];
    assert_eq!(event["integrationId"], integration.as_str());
    assert_eq!(event["botId"], bot.as_str());
    assert_eq!(event["type"], "chat:message:new");
    assert!(event["id"].as_str().is_some() && event["time"].as_i64().is_some());
    assert!(events[0]["receiptExpiresAt"].as_str().is_some());
    acknowledge(&server, &key, &[&events[0]["receipt"]]).await;

    // The delivery log shows each hand-out and its acknowledgement.
    let log = server
        .get(
            &format!("/v2/users/bots/{bot}/integrations/{integration}/deliveries?limit=1"),
            &server.company_key,
        )
        .await
        .expect(200);
    let latest = &log["deliveries"][0];
    assert_eq!(latest["status"], "delivered", "{log}");
    let outcomes: Vec<&str> = latest["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attempt| attempt["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["fetched", "acknowledged"]);

    // Replay hands the same event out again, with its id.
    let replayed = server
        .replay(&bot, &integration, json!({"eventIds": [event["id"]]}))
        .await
        .expect(200);
    assert_eq!(replayed["queued"], 1);
    let again = fetch(&server, &key, "wait=5").await;
    assert_eq!(again[0]["event"]["id"], event["id"]);
    server.stop().await;
}

#[tokio::test]
async fn an_event_not_acknowledged_in_time_comes_back_and_two_consumers_never_hold_it_at_once() {
    let server = TestServer::start().await;
    let (alice, _, key, _, channel) = pulling_bot(&server).await;
    drain(&server, &key).await;
    server.say(&alice, &channel, "once").await;
    server.say(&alice, &channel, "twice").await;

    let first = fetch(&server, &key, "wait=5&visibilityTimeout=1").await;
    assert_eq!(first.len(), 1, "one event of the channel at a time");
    assert_eq!(first[0]["event"]["data"]["message"]["text"], "once");
    // A second consumer gets nothing while the first holds the channel's head.
    assert!(fetch(&server, &key, "wait=0").await.is_empty());
    // Once the visibility timeout passes, the same event comes back.
    let second = fetch(&server, &key, "wait=10&visibilityTimeout=30").await;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0]["event"]["id"], first[0]["event"]["id"]);
    assert_ne!(second[0]["receipt"], first[0]["receipt"]);
    // The first consumer's receipt no longer holds it.
    let late = acknowledge(&server, &key, &[&first[0]["receipt"]]).await;
    assert_eq!(late["acknowledged"], 0);
    assert_eq!(late["expired"], json!([first[0]["receipt"]]));
    let acked = acknowledge(&server, &key, &[&second[0]["receipt"]]).await;
    assert_eq!(acked["acknowledged"], 1);
    // A release hands the next one out again.
    let next = fetch(&server, &key, "wait=5").await;
    assert_eq!(next[0]["event"]["data"]["message"]["text"], "twice");
    let released = server
        .post(
            "/v2/bot/events/release",
            &key,
            json!({"receipts": [next[0]["receipt"]]}),
        )
        .await
        .expect(200);
    assert_eq!(released["released"], 1);
    let again = fetch(&server, &key, "wait=5").await;
    assert_eq!(again[0]["event"]["id"], next[0]["event"]["id"]);
    server.stop().await;
}

#[tokio::test]
async fn a_waiting_fetch_wakes_for_a_new_event_and_a_paused_integration_hands_out_nothing() {
    let server = TestServer::start().await;
    let (alice, bot, key, integration, channel) = pulling_bot(&server).await;
    drain(&server, &key).await;
    let waiting = {
        let (base, key) = (server.base.clone(), key.clone());
        tokio::spawn(async move {
            let answer: Value = reqwest::Client::new()
                .get(format!("{base}/v2/bot/events?wait=15"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            answer
        })
    };
    server.say(&alice, &channel, "wake up").await;
    let answer = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the waiting fetch answers once the event is there")
        .unwrap();
    assert_eq!(
        answer["events"][0]["event"]["data"]["message"]["text"],
        "wake up"
    );
    acknowledge(&server, &key, &[&answer["events"][0]["receipt"]]).await;

    let path = format!("/v2/users/bots/{bot}/integrations/{integration}");
    server
        .post(&format!("{path}/pause"), &server.company_key, json!({}))
        .await
        .expect(200);
    server.say(&alice, &channel, "held").await;
    assert!(fetch(&server, &key, "wait=1").await.is_empty());
    server
        .post(&format!("{path}/resume"), &server.company_key, json!({}))
        .await
        .expect(200);
    // A company key fetches for the bot it names.
    let resumed = fetch(&server, &server.company_key, &format!("wait=5&botId={bot}")).await;
    assert_eq!(resumed[0]["event"]["data"]["message"]["text"], "held");
    server.stop().await;
}

#[tokio::test]
async fn an_event_handed_out_too_often_without_an_acknowledgement_is_dead_lettered() {
    let server = TestServer::start().await;
    let (alice, bot, key, integration, channel) = pulling_bot(&server).await;
    drain(&server, &key).await;
    server.say(&alice, &channel, "never acknowledged").await;
    server.say(&alice, &channel, "after it").await;
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut fetches = 0;
    let next = loop {
        assert!(
            Instant::now() < deadline,
            "still handed out after {fetches} fetches"
        );
        let events = fetch(&server, &key, "wait=3&visibilityTimeout=1").await;
        let Some(item) = events.first() else { continue };
        if item["event"]["data"]["message"]["text"] == "after it" {
            break item.clone();
        }
        fetches += 1;
    };
    assert_eq!(fetches, 10, "handed out ten times, then dead-lettered");
    acknowledge(&server, &key, &[&next["receipt"]]).await;
    let dead = server
        .get(
            &format!("/v2/users/bots/{bot}/integrations/{integration}/deliveries?status=dead"),
            &server.company_key,
        )
        .await
        .expect(200);
    let record = &dead["deliveries"][0];
    assert!(
        record["lastError"]
            .as_str()
            .unwrap()
            .contains("never acknowledged"),
        "{dead}"
    );
    server.stop().await;
}

#[tokio::test]
async fn fetches_are_refused_plainly_when_there_is_nothing_to_fetch_from() {
    let server = TestServer::start().await;
    let (_, alice) = server.person("Alice").await;
    let (bot, key) = server.bot("Pusher").await;
    server.get("/v2/bot/events", &key).await.expect_error(
        404,
        "NotFoundException",
        "no pull integration",
    );
    server
        .get("/v2/bot/events", &alice)
        .await
        .expect_error(403, "ForbiddenException", "bot key");
    server
        .get("/v2/bot/events", &server.company_key)
        .await
        .expect_error(400, "ValidationException", "botId");
    server
        .get(
            &format!("/v2/bot/events?wait=21&botId={bot}"),
            &server.company_key,
        )
        .await
        .expect_error(400, "ValidationException", "wait");
    server
        .post("/v2/bot/events/ack", &key, json!({"receipts": []}))
        .await
        .expect_error(400, "ValidationException", "receipts");
    let nonsense = server
        .post(
            "/v2/bot/events/ack",
            &key,
            json!({"receipts": ["nonsense"]}),
        )
        .await
        .expect(200);
    assert_eq!(nonsense["expired"], json!(["nonsense"]));
    // Another company's key finds no such bot.
    let other = server.second_company().await;
    server
        .get(&format!("/v2/bot/events?botId={bot}"), &other)
        .await
        .expect_error(404, "NotFoundException", "");
    // A pull integration takes none of a pushed one's fields.
    server
        .post(
            &format!("/v2/users/bots/{bot}/integrations"),
            &server.company_key,
            json!({"type": "pull", "url": "https://example.com/hook"}),
        )
        .await
        .expect_error(
            400,
            "ValidationException",
            "url: is not a field of a pull integration",
        );
    server.stop().await;
}

#[tokio::test]
async fn events_held_when_the_server_is_killed_are_still_held_and_acknowledged_after_it_starts_again()
 {
    let data_dir = tempfile::tempdir().unwrap();
    let store = TestStore::create().await;
    let company_key = credentials::generate(CredentialKind::Company)
        .reveal()
        .to_owned();
    let mut settings = vec![
        ("SWITCHBOARD_BOOTSTRAP__COMPANY_KEY", company_key.clone()),
        ("SWITCHBOARD_HTTP__RATE_LIMIT_PER_SECOND", "0".to_owned()),
    ];
    settings.extend(store.env());
    let env: Vec<(&str, &str)> = settings
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    let first = ServerProcess::start(data_dir.path(), &env).await;
    let api = TestServer::attach(&first.base, &company_key);
    let (alice, _, key, _, channel) = pulling_bot(&api).await;
    drain(&api, &key).await;
    api.say(&alice, &channel, "held across a crash").await;
    let held = fetch(&api, &key, "wait=5&visibilityTimeout=60").await;
    assert_eq!(held.len(), 1);
    first.kill_hard().await;

    let second = ServerProcess::start(data_dir.path(), &env).await;
    let api = TestServer::attach(&second.base, &company_key);
    // Still held for its consumer: nobody else gets it.
    assert!(fetch(&api, &key, "wait=0").await.is_empty());
    let acked = acknowledge(&api, &key, &[&held[0]["receipt"]]).await;
    assert_eq!(acked["acknowledged"], 1, "{acked}");
    second.terminate().await;
}
