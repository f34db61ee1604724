//! Event delivery to bots by webhook, end to end: a real server, a real
//! SQLite file and a real HTTP receiver.

use std::collections::HashMap;
use std::time::Duration;

use crate::support::TestServer;
use crate::support::receiver::{Received, Receiver};
use crate::support::store::postgres_run;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use switchboard_protocol::signing::{WebhookSecret, verify_standard};

const WAIT: Duration = Duration::from_secs(15);

fn fixture(name: &str) -> Value {
    let path = format!("{}/../../testdata/xbees/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Fields of a User that x-bees leaves out when empty.
const OPTIONAL_USER_FIELDS: &[&str] = &[
    "name",
    "email",
    "picture",
    "locale",
    "timeZone",
    "company",
    "pbxDomain",
    "pbxPort",
    "pbxExtension",
    "pbxSerial",
    "pbxUserId",
];

/// Text fields switchboard sends as `null` while they are unset.
const NULLABLE_TEXT_FIELDS: &[&str] =
    &["subject", "description", "service", "serviceTitle", "text"];

/// Every key of the official example is in ours with a value of the same JSON
/// type (optional user fields may be absent, unset text fields are `null`).
fn same_shape(path: &str, official: &Value, ours: &Value) {
    match (official, ours) {
        (Value::Object(expected), Value::Object(actual)) => {
            for (key, value) in expected {
                let here = format!("{path}.{key}");
                match actual.get(key) {
                    Some(Value::Null)
                        if NULLABLE_TEXT_FIELDS.contains(&key.as_str()) && value.is_string() => {}
                    Some(found) => same_shape(&here, value, found),
                    None if OPTIONAL_USER_FIELDS.contains(&key.as_str()) => {}
                    None => panic!("{here} is missing from our delivery"),
                }
            }
        }
        (Value::Array(expected), Value::Array(actual)) => {
            if let (Some(first), Some(ours_first)) = (expected.first(), actual.first()) {
                same_shape(&format!("{path}[0]"), first, ours_first);
            }
        }
        (Value::String(_), Value::String(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Null, Value::Null) => {}
        (expected, actual) => panic!("{path}: the example has {expected}, we sent {actual}"),
    }
}

/// Checks both signatures of a delivery with `secret`, the x-signature with an
/// HMAC computed here rather than by the server's code.
fn assert_signed(received: &Received, secret: &str) {
    let parsed = WebhookSecret::parse(secret).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    verify_standard(
        &parsed,
        received.header("webhook-id"),
        received.header("webhook-timestamp"),
        received.header("webhook-signature"),
        &received.body,
        now,
        300,
    )
    .expect("webhook-signature verifies");
    assert_eq!(
        received.header("x-signature"),
        body_signature(secret, &received.body)
    );
    assert_eq!(received.header("content-type"), "application/json");
    assert_eq!(
        received.header("webhook-id"),
        received.json["id"].as_str().unwrap()
    );
}

#[tokio::test]
async fn deliveries_are_signed_and_shaped_like_the_official_examples() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    let (alice, alice_token) = server.person("Alice").await;
    let (bot, _) = server.bot("Helper").await;
    let (integration, secret) = server.webhook(&bot, &receiver.url, json!({})).await;
    let channel = server.channel(&alice_token, &[&bot]).await;
    let message = server.say(&alice_token, &channel, "Hi").await;

    let received = receiver
        .wait_until("two events", WAIT, |r| r.len() >= 2)
        .await;
    let created = &received[0];
    let new = &received[1];
    assert_signed(created, &secret);
    assert_signed(new, &secret);
    same_shape("$", &fixture("chat-channel-created.json"), &created.json);
    same_shape("$", &fixture("chat-message-new.json"), &new.json);

    assert_eq!(new.json["type"], "chat:message:new");
    assert_eq!(new.json["integrationId"], integration.as_str());
    assert_eq!(new.json["botId"], bot.as_str());
    assert_eq!(new.json["data"]["message"]["messageId"], message.as_str());
    assert_eq!(new.json["data"]["message"]["user"]["id"], alice.as_str());
    assert_eq!(new.json["data"]["channel"]["channelId"], channel.as_str());
    assert_eq!(new.json["data"]["members"].as_array().unwrap().len(), 2);
    assert_eq!(created.json["channelSeq"], 1);
    assert_eq!(new.json["channelSeq"], 2);
    let sent_at = new.json["time"].as_i64().unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(
        (now_ms - 60_000..=now_ms).contains(&sent_at),
        "time is epoch milliseconds: {sent_at}"
    );
    assert!(
        std::str::from_utf8(&new.body).unwrap().find('\n').is_none(),
        "compact JSON"
    );
}

#[tokio::test]
async fn every_event_type_goes_to_exactly_the_bots_the_contract_names() {
    let server = TestServer::start().await;
    let (alice, alice_token) = server.person("Alice").await;
    let (dana, _) = server.person("Dana").await;
    let member_bot = Receiver::start().await;
    let late_bot = Receiver::start().await;
    let filtered_bot = Receiver::start().await;
    let outsider = Receiver::start().await;
    let (a, a_key) = server.bot("Member").await;
    let (b, _) = server.bot("Late").await;
    let (c, _) = server.bot("Filtered").await;
    let (d, _) = server.bot("Outsider").await;
    server.webhook(&a, &member_bot.url, json!({})).await;
    server.webhook(&b, &late_bot.url, json!({})).await;
    server
        .webhook(
            &c,
            &filtered_bot.url,
            json!({"eventTypes": ["chat:message:new"]}),
        )
        .await;
    server.webhook(&d, &outsider.url, json!({})).await;

    let channel = server.channel(&alice_token, &[&a, &c]).await;
    let base = format!("/v2/conversations/channels/{channel}");
    server
        .put(&base, &alice_token, json!({"subject": "Renamed"}))
        .await
        .expect(200);
    server
        .post(
            &format!("{base}/members"),
            &alice_token,
            json!({"members": [dana, b]}),
        )
        .await
        .expect(200);
    let hello = server.say(&alice_token, &channel, "hello").await;
    let messages = format!("{base}/messages");
    server
        .put(
            &format!("{messages}/{hello}"),
            &alice_token,
            json!({"text": "hello!"}),
        )
        .await
        .expect(200);
    server
        .post(
            &format!("{messages}/{hello}/reactions"),
            &alice_token,
            json!({"type": "like"}),
        )
        .await
        .expect(200);
    server
        .delete(&format!("{messages}/{hello}/reactions/like"), &alice_token)
        .await
        .expect(200);
    let question = server
        .post(&messages, &a_key, json!({"text": "OK?", "elements": [{"actions": [{"button": {"text": "OK", "handler": {"action": {"id": "ok"}}}}]}]}))
        .await
        .expect(200);
    let question = question["message"]["messageId"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .post(
            &format!("{messages}/{question}/actions"),
            &alice_token,
            json!({"actionId": "ok"}),
        )
        .await
        .expect(200);
    server
        .delete(&format!("{messages}/{hello}"), &alice_token)
        .await
        .expect(200);
    server
        .delete(&format!("{base}/members/{b}"), &alice_token)
        .await
        .expect(200);
    server.delete(&base, &alice_token).await.expect(200);

    let member_expected = [
        "chat:channel:created",
        "chat:channel:updated",
        "chat:member:added",
        "chat:message:new",
        "chat:message:updated",
        "chat:reaction:new",
        "chat:reaction:deleted",
        "chat:message:new",
        "chat:message:action",
        "chat:message:deleted",
        "chat:member:removed",
        "chat:channel:deleted",
    ];
    let received = member_bot
        .wait_until("all events for the member bot", WAIT, |r| {
            r.len() >= member_expected.len()
        })
        .await;
    assert_eq!(member_bot.event_types(), member_expected);
    let seqs: Vec<i64> = received
        .iter()
        .map(|r| r.json["channelSeq"].as_i64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|pair| pair[0] < pair[1]),
        "channelSeq strictly increases: {seqs:?}"
    );
    let action = &received[8].json["data"];
    assert_eq!(action["user"]["id"], alice.as_str());
    assert_eq!(action["action"]["id"], "ok");
    assert_eq!(action["message"]["messageId"], question.as_str());
    let added = &received[2].json["data"];
    let added_ids: Vec<&str> = added["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(added_ids.len(), 2, "only the added members: {added_ids:?}");
    assert_eq!(
        received[5].json["data"]["reaction"]["userId"],
        alice.as_str()
    );

    // The late bot hears from its own addition until its removal, which is its last event.
    let late = late_bot
        .wait_until("the late bot's events", WAIT, |r| r.len() >= 7)
        .await;
    assert_eq!(
        late_bot.event_types(),
        [
            "chat:member:added",
            "chat:message:new",
            "chat:message:updated",
            "chat:reaction:new",
            "chat:reaction:deleted",
            "chat:message:new",
            "chat:message:deleted",
            "chat:member:removed"
        ][..late.len()]
            .to_vec()
    );
    late_bot
        .wait_until("the late bot's removal", WAIT, |r| r.len() >= 8)
        .await;
    assert_eq!(
        late_bot.received().last().unwrap().json["data"]["members"][0]["id"],
        b.as_str()
    );

    filtered_bot
        .wait_until("the filtered bot's messages", WAIT, |r| r.len() >= 2)
        .await;
    // Every delivery made and recorded: nothing more is on its way.
    server.settle().await;
    assert_eq!(
        filtered_bot.event_types(),
        ["chat:message:new", "chat:message:new"]
    );
    assert!(
        outsider.received().is_empty(),
        "a bot outside the channel hears nothing"
    );
}

#[tokio::test]
async fn a_failing_receiver_holds_back_only_its_channel_and_order_is_kept() {
    let server = TestServer::start().await;
    let (_, token) = server.person("Alice").await;
    let (bot, _) = server.bot("Bot").await;
    let receiver = Receiver::start().await;
    let (_, _) = server
        .webhook(
            &bot,
            &receiver.url,
            json!({"retryScheduleMs": [30, 30, 30, 30, 30, 30, 30, 30]}),
        )
        .await;
    let channels: [String; 2] = channels_heard_by(&server, &token, &bot, &receiver).await;
    // The receiver fails the next five requests, then recovers.
    receiver.script(&[
        (503, Some("0")),
        (500, None),
        (502, None),
        (429, None),
        (500, None),
    ]);
    let mut sent: HashMap<String, Vec<String>> = HashMap::new();
    for round in 0..10 {
        for channel in &channels {
            let id = server.say(&token, channel, &format!("m{round}")).await;
            sent.entry(channel.clone()).or_default().push(id);
        }
    }
    receiver
        .wait_until("every message", WAIT, |r| {
            r.iter()
                .filter(|x| x.json["type"] == "chat:message:new")
                .map(|x| &x.json["id"])
                .collect::<std::collections::HashSet<_>>()
                .len()
                >= 20
        })
        .await;
    for channel in &channels {
        let firsts = first_delivery_order(&receiver.received(), channel);
        assert_eq!(&firsts, &sent[channel], "channel {channel} in order");
    }
}

/// Messages sent while their channel's previous one is being delivered
/// join the run sending the lane (no claim, counted as handed off on a held
/// lane), and every one arrives once, in `channelSeq` order.
#[tokio::test]
async fn messages_behind_a_lane_being_sent_join_its_run_in_order_once() {
    let server = TestServer::start().await;
    let (_, token) = server.person("Alice").await;
    let (bot, _) = server.bot("Bot").await;
    let receiver = Receiver::start().await;
    server.webhook(&bot, &receiver.url, json!({})).await;
    let channels: [String; 2] = channels_heard_by(&server, &token, &bot, &receiver).await;
    // Each request takes a while, so that the next message of the channel
    // is queued while its lane is being sent.
    receiver.delay(Duration::from_millis(4));
    let joined = |metrics: &str| -> f64 {
        metrics
            .lines()
            .find(|line| line.starts_with("switchboard_delivery_handed_off_total{lane=\"held\"}"))
            .map_or(0.0, |line| {
                line.rsplit(' ').next().unwrap().parse().unwrap()
            })
    };
    let mut sent = 0;
    for _burst in 0..10 {
        // Concurrently, in both channels: the server decides each channel's order.
        let says = (0..16).map(|n| {
            let channel = &channels[n % 2];
            let words = format!("m{sent}-{n}");
            let (server, token) = (&server, &token);
            async move { server.say(token, channel, &words).await }
        });
        futures_util::future::join_all(says).await;
        sent += 16;
        receiver
            .wait_until("every message so far", WAIT, |r| {
                r.iter()
                    .filter(|x| x.json["type"] == "chat:message:new")
                    .count()
                    >= sent
            })
            .await;
        // PostgreSQL hands nothing off: every delivery is claimed.
        if postgres_run() || joined(&server.metrics().await) > 0.0 {
            break;
        }
    }
    assert!(
        postgres_run() || joined(&server.metrics().await) > 0.0,
        "no message joined a lane's run in {sent} messages"
    );
    let received = receiver.received();
    let messages: Vec<&Received> = received
        .iter()
        .filter(|r| r.json["type"] == "chat:message:new")
        .collect();
    assert_eq!(messages.len(), sent, "each message once");
    for channel in &channels {
        let seqs: Vec<i64> = messages
            .iter()
            .filter(|r| r.json["data"]["channel"]["channelId"] == channel.as_str())
            .map(|r| r.json["channelSeq"].as_i64().unwrap())
            .collect();
        assert!(
            seqs.windows(2).all(|pair| pair[0] < pair[1]),
            "channel {channel} in channelSeq order: {seqs:?}"
        );
    }
}

/// `N` new channels of `token`'s person with `bot`, once `receiver` (the
/// bot's only integration) has had each one's creation event.
async fn channels_heard_by<const N: usize>(
    server: &TestServer,
    token: &str,
    bot: &str,
    receiver: &Receiver,
) -> [String; N] {
    let mut channels = Vec::with_capacity(N);
    for _ in 0..N {
        channels.push(server.channel(token, &[bot]).await);
    }
    receiver
        .wait_until("the channel creations", WAIT, |r| r.len() >= N)
        .await;
    channels.try_into().expect("N channels")
}

/// Message ids of a channel in the order they were first delivered.
fn first_delivery_order(received: &[Received], channel: &str) -> Vec<String> {
    let mut seen = Vec::new();
    for r in received {
        if r.json["type"] == "chat:message:new" && r.json["data"]["channel"]["channelId"] == channel
        {
            let id = r.json["data"]["message"]["messageId"]
                .as_str()
                .unwrap()
                .to_owned();
            if !seen.contains(&id) {
                seen.push(id);
            }
        }
    }
    seen
}

#[tokio::test]
async fn gone_disables_and_resume_delivers_what_waited() {
    let server = TestServer::start().await;
    let (_, token) = server.person("Alice").await;
    let (bot, _) = server.bot("Bot").await;
    let receiver = Receiver::start().await;
    let (integration, _) = server.webhook(&bot, &receiver.url, json!({})).await;
    receiver.script(&[(410, None)]);
    let channel = server.channel(&token, &[&bot]).await;
    let path = format!("/v2/users/bots/{bot}/integrations/{integration}");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let state = server.get(&path, &server.company_key).await.expect(200);
        if state["integration"]["state"] == "disabled" {
            assert!(
                state["integration"]["disabledReason"]
                    .as_str()
                    .unwrap()
                    .contains("410")
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the integration was not disabled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // While disabled nothing new is queued for it; the one that got 410 waits.
    server.say(&token, &channel, "while disabled").await;
    server.settle().await;
    assert_eq!(receiver.received().len(), 1);

    let resumed = server
        .post(&format!("{path}/resume"), &server.company_key, json!({}))
        .await
        .expect(200);
    assert_eq!(resumed["integration"]["state"], "active");
    let received = receiver
        .wait_until("the waiting event", WAIT, |r| r.len() >= 2)
        .await;
    assert_eq!(received[1].json["type"], "chat:channel:created");
    assert_eq!(
        received[1].json["id"], received[0].json["id"],
        "the same event id again"
    );
}

#[tokio::test]
async fn dead_letters_are_logged_with_every_attempt_and_replayed_with_their_ids() {
    let server = TestServer::start().await;
    let (_, token) = server.person("Alice").await;
    let (bot, _) = server.bot("Bot").await;
    let receiver = Receiver::start().await;
    receiver.answer_with(500);
    let (integration, _) = server
        .webhook(&bot, &receiver.url, json!({"retryScheduleMs": [10, 10]}))
        .await;
    let channel = server.channel(&token, &[&bot]).await;
    let log = format!("/v2/users/bots/{bot}/integrations/{integration}/deliveries");
    let dead = server
        .wait_for_log(&format!("{log}?status=dead"), "a dead letter", WAIT, |d| {
            !d.is_empty()
        })
        .await[0]
        .clone();
    assert_eq!(dead["eventType"], "chat:channel:created");
    assert_eq!(dead["channelId"], channel.as_str());
    let attempts = dead["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3, "one attempt and two retries: {dead}");
    for attempt in attempts {
        assert_eq!(attempt["statusCode"], 500);
        assert_eq!(attempt["outcome"], "failed");
        assert_eq!(attempt["responseSnippet"], "ok");
        assert!(attempt["durationMs"].as_f64().unwrap() >= 0.0);
    }
    assert!(
        dead["lastError"]
            .as_str()
            .unwrap()
            .contains("gave up after 3 attempts")
    );

    receiver.answer_with(200);
    let replayed = server
        .replay(&bot, &integration, json!({"eventIds": [dead["eventId"]]}))
        .await
        .expect(200);
    assert_eq!(replayed["queued"], 1);
    let received = receiver
        .wait_until("the replayed event", WAIT, |r| r.len() >= 4)
        .await;
    assert_eq!(received[3].json["id"], dead["eventId"]);
    // The receiver saw the request before the server had its answer.
    server.settle().await;
    let delivered = server
        .get(&format!("{log}?status=delivered"), &server.company_key)
        .await
        .expect(200);
    assert_eq!(delivered["deliveries"][0]["eventId"], dead["eventId"]);

    // A range replay sends it once more; unknown event ids are refused.
    let ranged = server
        .replay(&bot, &integration, json!({"since": "2020-01-01T00:00:00Z"}))
        .await
        .expect(200);
    assert_eq!(ranged["queued"], 1);
    receiver
        .wait_until("the range replay", WAIT, |r| r.len() >= 5)
        .await;
    server
        .replay(&bot, &integration, json!({"eventIds": ["evt_unknown"]}))
        .await
        .expect_error(409, "ConflictException", "eventIds[0]");
}

/// Replay means "send again": an event whose attempt reached the bot is
/// sent again by a range replay even while the outcome of that attempt is
/// not recorded yet.
#[tokio::test]
async fn a_range_replay_sends_again_an_event_whose_attempt_is_in_flight() {
    let server = TestServer::start().await;
    let (_, token) = server.person("Alice").await;
    let (bot, _) = server.bot("Bot").await;
    let receiver = Receiver::start().await;
    let (integration, _) = server.webhook(&bot, &receiver.url, json!({})).await;
    let channel = server.channel(&token, &[&bot]).await;
    receiver
        .wait_until("the channel event", WAIT, |r| !r.is_empty())
        .await;
    server.settle().await;
    receiver.hold();
    server.say(&token, &channel, "in flight").await;
    let held = receiver
        .wait_until("the message, held by the bot", WAIT, |r| r.len() >= 2)
        .await;
    let in_flight = held[1].json["id"].clone();
    let ranged = server
        .replay(&bot, &integration, json!({"since": "2020-01-01T00:00:00Z"}))
        .await
        .expect(200);
    assert_eq!(
        ranged["queued"], 2,
        "the channel event and the message in flight"
    );
    receiver.release();
    let received = receiver
        .wait_until("both sent again", WAIT, |r| r.len() >= 4)
        .await;
    let again: Vec<&serde_json::Value> = received[2..].iter().map(|r| &r.json["id"]).collect();
    assert!(
        again.contains(&&in_flight),
        "the message in flight is sent again: {again:?}"
    );
}

#[tokio::test]
async fn internal_targets_are_refused_unless_allowed() {
    let server =
        TestServer::start_with(|config| config.delivery.allow_targets = String::new()).await;
    let (_, token) = server.person("Alice").await;
    let (bot, _) = server.bot("Bot").await;
    let receiver = Receiver::start().await;
    let localhost_url = receiver.url.replace("127.0.0.1", "localhost");
    let (by_ip, _) = server
        .webhook(&bot, &receiver.url, json!({"retryScheduleMs": [3_600_000]}))
        .await;
    let (by_name, _) = server
        .webhook(
            &bot,
            &localhost_url,
            json!({"retryScheduleMs": [3_600_000]}),
        )
        .await;
    server.channel(&token, &[&bot]).await;
    for integration in [by_ip, by_name] {
        let log = format!("/v2/users/bots/{bot}/integrations/{integration}/deliveries");
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let listed = server.get(&log, &server.company_key).await.expect(200);
            let attempts = listed["deliveries"][0]["attempts"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if let Some(attempt) = attempts.first() {
                let error = attempt["error"].as_str().unwrap();
                assert!(error.contains("private, loopback or link-local"), "{error}");
                assert!(attempt["statusCode"].is_null());
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no attempt was logged"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(
        receiver.received().is_empty(),
        "nothing reached the internal address"
    );
}

#[tokio::test]
async fn rotation_signs_with_both_secrets_and_pause_holds_deliveries() {
    let server = TestServer::start().await;
    let (_, token) = server.person("Alice").await;
    let (bot, _) = server.bot("Bot").await;
    let receiver = Receiver::start().await;
    let (integration, old_secret) = server.webhook(&bot, &receiver.url, json!({})).await;
    let path = format!("/v2/users/bots/{bot}/integrations/{integration}");
    let rotated = server
        .post(
            &format!("{path}/rotate-secret"),
            &server.company_key,
            json!({}),
        )
        .await
        .expect(200);
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, old_secret);
    assert!(rotated["integration"]["previousSecretExpiresAt"].is_string());
    let fetched = server.get(&path, &server.company_key).await.expect(200);
    assert!(
        fetched.get("secret").is_none() && !fetched.to_string().contains(&new_secret),
        "shown once"
    );

    server
        .post(&format!("{path}/test"), &server.company_key, json!({}))
        .await
        .expect(200);
    let received = receiver
        .wait_until("the test event", WAIT, |r| !r.is_empty())
        .await;
    assert_eq!(received[0].json["type"], "integration:test");
    assert_eq!(received[0].json["data"], json!({}));
    assert!(received[0].json.get("channelSeq").is_none());
    assert_eq!(
        received[0].header("webhook-signature").split(' ').count(),
        2
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for secret in [&old_secret, &new_secret] {
        verify_standard(
            &WebhookSecret::parse(secret).unwrap(),
            received[0].header("webhook-id"),
            received[0].header("webhook-timestamp"),
            received[0].header("webhook-signature"),
            &received[0].body,
            now,
            300,
        )
        .expect("each secret verifies during the rotation");
    }
    assert_eq!(
        received[0].header("x-signature"),
        body_signature(&old_secret, &received[0].body),
        "x-signature uses the previous secret while it is valid"
    );

    server
        .post(&format!("{path}/pause"), &server.company_key, json!({}))
        .await
        .expect(200);
    server.channel(&token, &[&bot]).await;
    server.settle().await;
    assert_eq!(receiver.received().len(), 1, "nothing while paused");
    server
        .post(&format!("{path}/resume"), &server.company_key, json!({}))
        .await
        .expect(200);
    let received = receiver
        .wait_until("the held event", WAIT, |r| r.len() >= 2)
        .await;
    assert_eq!(received[1].json["type"], "chat:channel:created");

    // A rotation without overlap: the new secret signs at once, alone.
    let rotated = server
        .post(
            &format!("{path}/rotate-secret"),
            &server.company_key,
            json!({"previousSecretValidSeconds": 0}),
        )
        .await
        .expect(200);
    let newest = rotated["secret"].as_str().unwrap().to_owned();
    server
        .post(&format!("{path}/test"), &server.company_key, json!({}))
        .await
        .expect(200);
    let received = receiver
        .wait_until("the second test event", WAIT, |r| r.len() >= 3)
        .await;
    assert_eq!(
        received[2].header("x-signature"),
        body_signature(&newest, &received[2].body)
    );
    assert_eq!(
        received[2].header("webhook-signature").split(' ').count(),
        1
    );
}

/// The hex HMAC-SHA256 of `body` keyed by the whole secret text, computed
/// here rather than by the server's code.
fn body_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn integrations_are_managed_with_checked_input() {
    let server = TestServer::start().await;
    let (bot, bot_key) = server.bot("Bot").await;
    let base = format!("/v2/users/bots/{bot}/integrations");
    let key = &server.company_key;
    for (body, needle) in [
        (json!({"type": "webhook"}), "url"),
        (json!({"type": "webhook", "url": "ftp://x"}), "url"),
        (
            json!({"type": "carrier-pigeon", "url": "https://x.example"}),
            "type",
        ),
        (
            json!({"type": "webhook", "url": "https://x.example", "eventTypes": ["chat:nothing"]}),
            "eventTypes[0]",
        ),
        (
            json!({"type": "webhook", "url": "https://x.example", "timeoutMs": 61_000}),
            "timeoutMs",
        ),
        (
            json!({"type": "webhook", "url": "https://x.example", "maxInFlight": 0}),
            "maxInFlight",
        ),
        (
            json!({"type": "webhook", "url": "https://x.example", "retryScheduleMs": [0]}),
            "retryScheduleMs",
        ),
    ] {
        server
            .post(&base, key, body)
            .await
            .expect_error(400, "ValidationException", needle);
    }
    server
        .post(
            &base,
            &bot_key,
            json!({"type": "webhook", "url": "https://x.example"}),
        )
        .await
        .expect_error(403, "ForbiddenException", "company key");
    assert!(
        server.get(&base, key).await.expect(200)["integrations"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let (id, _) = server
        .webhook(
            &bot,
            "https://bot.example/hook",
            json!({"eventTypes": ["chat:message:new"], "timeoutMs": 5000}),
        )
        .await;
    let path = format!("{base}/{id}");
    let updated = server
        .patch(
            &path,
            key,
            json!({"set": {"url": "https://bot.example/v2"}, "unset": ["eventTypes", "timeoutMs"]}),
        )
        .await
        .expect(200);
    assert_eq!(updated["integration"]["url"], "https://bot.example/v2");
    assert!(
        updated["integration"].get("eventTypes").is_none()
            && updated["integration"].get("timeoutMs").is_none()
    );
    assert_eq!(
        server.get(&base, key).await.expect(200)["integrations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let other = server.second_company().await;
    server
        .get(&path, &other)
        .await
        .expect_error(404, "NotFoundException", "was not found");
    server.delete(&path, key).await.expect(200);
    server
        .get(&path, key)
        .await
        .expect_error(404, "NotFoundException", &id);
}

#[tokio::test]
async fn a_receiver_down_for_a_while_gets_everything_in_order_when_it_recovers() {
    let server = TestServer::start().await;
    let (_, token) = server.person("Alice").await;
    let (bot, _) = server.bot("Bot").await;
    let receiver = Receiver::start().await;
    // Many short retries: the receiver stays down for longer than a few of them.
    server
        .webhook(
            &bot,
            &receiver.url,
            json!({"retryScheduleMs": vec![100; 50]}),
        )
        .await;
    let channels: [String; 3] = channels_heard_by(&server, &token, &bot, &receiver).await;
    receiver.answer_with(503);
    let mut sent: HashMap<String, Vec<String>> = HashMap::new();
    for round in 0..40 {
        for channel in &channels {
            let id = server.say(&token, channel, &format!("m{round}")).await;
            sent.entry(channel.clone()).or_default().push(id);
        }
    }
    receiver
        .wait_until("six attempts while the receiver is down", WAIT, |r| {
            r.len() >= 3 + 6
        })
        .await;
    receiver.answer_with(200);
    receiver
        .wait_until("all 120 messages after recovery", WAIT, |r| {
            let ok: Vec<&Received> = r.iter().skip(3).collect();
            let ids: std::collections::HashSet<_> = ok
                .iter()
                .filter(|x| x.json["type"] == "chat:message:new")
                .map(|x| x.json["id"].clone())
                .collect();
            ids.len() >= 120
        })
        .await;
    for channel in &channels {
        assert_eq!(
            &first_delivery_order(&receiver.received(), channel),
            &sent[channel]
        );
    }
}

#[tokio::test]
async fn a_slow_bot_does_not_slow_another_bot() {
    let server = TestServer::start().await;
    let (_, token) = server.person("Alice").await;
    let (slow_bot, _) = server.bot("Slow").await;
    let (fast_bot, _) = server.bot("Fast").await;
    let slow = Receiver::start().await;
    let fast = Receiver::start().await;
    // The slow bot answers nothing until released.
    slow.hold();
    server
        .webhook(&slow_bot, &slow.url, json!({"maxInFlight": 2}))
        .await;
    server.webhook(&fast_bot, &fast.url, json!({})).await;
    // Many channels, so the slow bot has many lanes that could fill every worker slot.
    let mut channels = Vec::new();
    for _ in 0..8 {
        channels.push(server.channel(&token, &[&slow_bot, &fast_bot]).await);
    }
    for channel in &channels {
        server.say(&token, channel, "hello").await;
    }
    fast.wait_until("the fast bot's 16 events", WAIT, |r| r.len() >= 16)
        .await;
    assert!(
        slow.received().len() <= 2,
        "the slow bot had at most its 2 in flight"
    );
    slow.release();
    slow.wait_until("the slow bot's 16 events once it answers", WAIT, |r| {
        r.len() >= 16
    })
    .await;
}

#[tokio::test]
async fn metrics_count_events_attempts_latency_and_the_outbox() {
    let server = TestServer::start().await;
    let (_, token) = server.person("Alice").await;
    let (bot, _) = server.bot("Bot").await;
    let receiver = Receiver::start().await;
    server.webhook(&bot, &receiver.url, json!({})).await;
    let channel = server.channel(&token, &[&bot]).await;
    server.say(&token, &channel, "measured").await;
    receiver
        .wait_until("two deliveries", WAIT, |r| r.len() >= 2)
        .await;
    // Attempts are counted once the receiver's answer is in.
    server.settle().await;

    let response = server
        .client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    let value = |prefix: &str| -> f64 {
        text.lines()
            .find(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in:\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(value("switchboard_events_created_total{type=\"chat:message:new\"}") >= 1.0);
    assert!(value("switchboard_delivery_attempts_total{outcome=\"delivered\"}") >= 2.0);
    assert!(value("switchboard_delivery_latency_seconds_count") >= 2.0);
    assert!(text.contains("switchboard_delivery_latency_seconds_bucket{le=\"0.1\"}"));
    assert!(value("switchboard_outbox_deliveries{state=\"due\"}") >= 0.0);
    assert!(value("switchboard_outbox_deliveries{state=\"dead\"}") >= 0.0);
    assert!(value("switchboard_integrations_disabled") >= 0.0);
}

#[tokio::test]
async fn redirects_timeouts_and_long_failure_are_handled_as_the_contract_says() {
    let server =
        TestServer::start_with(|config| config.delivery.disable_after = Duration::from_millis(400))
            .await;
    let (_, token) = server.person("Alice").await;
    let (bot, _) = server.bot("Bot").await;
    let receiver = Receiver::start().await;
    let (integration, _) = server
        .webhook(
            &bot,
            &receiver.url,
            json!({"timeoutMs": 1000, "retryScheduleMs": vec![100; 50]}),
        )
        .await;
    let path = format!("/v2/users/bots/{bot}/integrations/{integration}");
    // A redirect is a failure, not followed; then a receiver too slow for the timeout.
    receiver.script(&[(302, None)]);
    server.channel(&token, &[&bot]).await;
    receiver
        .wait_until("the redirect", WAIT, |r| !r.is_empty())
        .await;
    receiver.delay(Duration::from_millis(1_500));
    let deadline = std::time::Instant::now() + WAIT;
    let (attempts, state) = loop {
        // The state first: once it says disabled, the log holds every attempt.
        let state = server.get(&path, &server.company_key).await.expect(200)["integration"].clone();
        let log = server
            .get(&format!("{path}/deliveries"), &server.company_key)
            .await
            .expect(200);
        let attempts = log["deliveries"][0]["attempts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if state["state"] == "disabled" && attempts.len() >= 2 {
            break (attempts, state);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not disabled: {state} {attempts:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(attempts[0]["statusCode"], 302);
    assert!(
        attempts[0]["error"]
            .as_str()
            .unwrap()
            .contains("redirects are not followed")
    );
    assert!(attempts[1]["statusCode"].is_null());
    assert!(
        attempts[1]["error"]
            .as_str()
            .unwrap()
            .contains("no answer within 1000 ms"),
        "{}",
        attempts[1]
    );
    assert!(
        state["disabledReason"]
            .as_str()
            .unwrap()
            .contains("no successful delivery"),
        "{state}"
    );
    assert!(state["failingSince"].is_string());
    // Only the redirect and the timed-out attempts reached the receiver.
    server.settle().await;
    assert!(receiver.received().len() <= attempts.len());
}

#[tokio::test]
async fn a_failing_event_holds_back_only_its_own_channel() {
    let server = TestServer::start().await;
    let (_, token) = server.person("Alice").await;
    let (bot, _) = server.bot("Bot").await;
    let receiver = Receiver::start().await;
    server
        .webhook(
            &bot,
            &receiver.url,
            json!({"retryScheduleMs": vec![50; 50]}),
        )
        .await;
    let [blocked, flowing] = channels_heard_by(&server, &token, &bot, &receiver).await;
    receiver.refuse_containing(Some("poison"));

    let poison = server.say(&token, &blocked, "poison").await;
    let mut behind = vec![poison.clone()];
    let mut others = Vec::new();
    for index in 0..5 {
        behind.push(
            server
                .say(&token, &blocked, &format!("after {index}"))
                .await,
        );
        others.push(
            server
                .say(&token, &flowing, &format!("other {index}"))
                .await,
        );
    }
    // The other channel flows while the poisoned one is held at its head.
    receiver
        .wait_until("the other channel's messages", WAIT, |r| {
            first_delivery_order(r, &flowing).len() == 5
        })
        .await;
    assert_eq!(first_delivery_order(&receiver.received(), &flowing), others);
    let delivered_blocked: Vec<String> = receiver
        .received()
        .iter()
        .filter(|r| {
            r.json["type"] == "chat:message:new"
                && r.json["data"]["channel"]["channelId"] == blocked.as_str()
        })
        .map(|r| {
            r.json["data"]["message"]["messageId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        delivered_blocked.iter().all(|id| *id == poison),
        "only the head was tried: {delivered_blocked:?}"
    );

    receiver.refuse_containing(None);
    receiver
        .wait_until("the held channel after recovery", WAIT, |r| {
            first_delivery_order(r, &blocked).len() == 6
        })
        .await;
    assert_eq!(first_delivery_order(&receiver.received(), &blocked), behind);
}
