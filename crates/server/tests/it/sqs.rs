//! Event delivery to SQS queues, end to end: a real server, a real SQLite
//! file and a real SQS-compatible server (moto), read the way a bot would.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::support::TestServer;
use crate::support::process::ServerProcess;
use crate::support::sqs::{self, Moto, QueueMessage, SlowProxy};
use aws_sdk_sqs::types::QueueAttributeName;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use switchboard_domain::credentials::{self, CredentialKind};
use switchboard_protocol::signing::{WebhookSecret, verify_standard};

const WAIT: Duration = Duration::from_secs(20);

/// `X-SIGNATURE` is the hex HMAC-SHA256 of the body keyed by the AWS secret
/// access key (computed here rather than by the server's code), and the
/// Standard Webhooks attributes verify with the integration's `whsec_` secret.
fn assert_signed(message: &QueueMessage, secret: &str) {
    let mut mac = Hmac::<Sha256>::new_from_slice(sqs::SECRET_ACCESS_KEY.as_bytes()).unwrap();
    mac.update(message.body.as_bytes());
    assert_eq!(
        message.attribute("X-SIGNATURE"),
        hex::encode(mac.finalize().into_bytes()),
        "X-SIGNATURE of {}",
        message.body
    );
    for name in [
        "X-SIGNATURE",
        "eventType",
        "eventId",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    ] {
        assert_eq!(
            message.attributes[name].0, "String",
            "{name} is a String attribute"
        );
    }
    assert_eq!(message.attribute("eventType"), message.json["type"]);
    assert_eq!(message.attribute("eventId"), message.json["id"]);
    assert_eq!(message.attribute("webhook-id"), message.json["id"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    verify_standard(
        &WebhookSecret::parse(secret).unwrap(),
        message.attribute("webhook-id"),
        message.attribute("webhook-timestamp"),
        message.attribute("webhook-signature"),
        message.body.as_bytes(),
        now,
        300,
    )
    .expect("the Standard Webhooks attributes verify with the whsec_ secret");
}

fn messages_of_type<'a>(received: &'a [QueueMessage], kind: &str) -> Vec<&'a QueueMessage> {
    received.iter().filter(|m| m.json["type"] == kind).collect()
}

async fn metric(server: &TestServer, prefix: &str) -> f64 {
    server
        .metrics()
        .await
        .lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn events_arrive_on_the_queue_signed_with_their_attributes() {
    let moto = Moto::start().await;
    let queue = moto.create_queue("bot-events", &[]).await;
    let server = TestServer::start().await;
    let (_, token) = server.person("Alice").await;
    let (bot, _) = server.bot("Queue bot").await;
    let (integration, secret) = server
        .sqs_integration(&bot, &queue, &moto.endpoint, json!({}))
        .await;
    assert!(secret.starts_with("whsec_"));

    // The integration shows its queue and credentials' id, never the secret key.
    let shown = server
        .get(
            &format!("/v2/users/bots/{bot}/integrations/{integration}"),
            &server.company_key,
        )
        .await
        .expect(200);
    let view = &shown["integration"];
    assert_eq!(view["type"], "sqs");
    assert_eq!(view["queueUrl"], queue.as_str());
    assert_eq!(view["region"], sqs::REGION);
    assert_eq!(view["accessKeyId"], sqs::ACCESS_KEY_ID);
    assert_eq!(view["endpointUrl"], moto.endpoint.as_str());
    assert_eq!(view["fifo"], false);
    assert!(view.get("url").is_none());
    assert!(!shown.to_string().contains(sqs::SECRET_ACCESS_KEY));
    assert!(shown.get("secret").is_none());
    let listed = server
        .get(
            &format!("/v2/users/bots/{bot}/integrations"),
            &server.company_key,
        )
        .await
        .expect(200);
    assert!(!listed.to_string().contains(sqs::SECRET_ACCESS_KEY));

    let channel = server.channel(&token, &[&bot]).await;
    let message = server.say(&token, &channel, "Hello queue").await;
    let received = moto
        .receive_until(&queue, "the channel and the message", WAIT, |r| {
            !messages_of_type(r, "chat:message:new").is_empty()
        })
        .await;
    for message in &received {
        assert_signed(message, &secret);
        assert_eq!(message.json["integrationId"], integration.as_str());
        assert_eq!(message.json["botId"], bot.as_str());
        assert!(message.group_id.is_none(), "a standard queue has no groups");
    }
    let new = messages_of_type(&received, "chat:message:new")[0];
    assert_eq!(new.json["data"]["message"]["messageId"], message.as_str());
    assert_eq!(new.json["data"]["message"]["text"], "Hello queue");
    assert_eq!(new.json["channelSeq"], 2);
    assert_eq!(messages_of_type(&received, "chat:channel:created").len(), 1);

    // The log shows each delivery delivered, with SQS's message id.
    let log = format!("/v2/users/bots/{bot}/integrations/{integration}/deliveries");
    let deliveries = server
        .wait_for_log(&log, "two delivered", WAIT, |d| {
            d.len() == 2 && d.iter().all(|d| d["status"] == "delivered")
        })
        .await;
    let attempt = &deliveries[0]["attempts"][0];
    assert_eq!(attempt["outcome"], "delivered");
    assert!(
        attempt["responseSnippet"]
            .as_str()
            .unwrap()
            .starts_with("MessageId: ")
    );

    // The test event goes to the queue too.
    let tested = server
        .post(
            &format!("/v2/users/bots/{bot}/integrations/{integration}/test"),
            &server.company_key,
            json!({}),
        )
        .await
        .expect(200);
    let received = moto
        .receive_until(&queue, "the test event", WAIT, |r| !r.is_empty())
        .await;
    assert_eq!(received[0].json["type"], "integration:test");
    assert_eq!(received[0].json["id"], tested["eventId"]);
    assert_signed(&received[0], &secret);
}

#[tokio::test]
async fn fifo_queues_get_groups_and_deduplication_ids_and_keep_channel_order_in_batches() {
    let moto = Moto::start().await;
    let queue = moto.create_queue("bot-events.fifo", &[]).await;
    let server = TestServer::start().await;
    let (_, token) = server.person("Alice").await;
    let (bot, _) = server.bot("Fifo bot").await;
    let (integration, secret) = server
        .sqs_integration(&bot, &queue, &moto.endpoint, json!({"maxInFlight": 64}))
        .await;
    let base = format!("/v2/users/bots/{bot}/integrations/{integration}");
    let shown = server.get(&base, &server.company_key).await.expect(200);
    assert_eq!(shown["integration"]["fifo"], true);

    // Paused, the events of 12 channels pile up; resumed, their heads are due
    // together and go out in batches.
    server
        .post(&format!("{base}/pause"), &server.company_key, json!({}))
        .await
        .expect(200);
    const CHANNELS: usize = 12;
    const PER_CHANNEL: usize = 5;
    let mut channels = Vec::new();
    for _ in 0..CHANNELS {
        channels.push(server.channel(&token, &[&bot]).await);
    }
    let mut sent: HashMap<String, Vec<String>> = HashMap::new();
    for round in 0..PER_CHANNEL {
        for channel in &channels {
            let id = server
                .say(&token, channel, &format!("message {round}"))
                .await;
            sent.entry(channel.clone()).or_default().push(id);
        }
    }
    server
        .post(&format!("{base}/resume"), &server.company_key, json!({}))
        .await
        .expect(200);
    let total = CHANNELS * (PER_CHANNEL + 1);
    let received = moto
        .receive_until(&queue, "every event", WAIT, |r| r.len() >= total)
        .await;
    assert_eq!(received.len(), total, "each event once");

    let mut order: HashMap<String, Vec<String>> = HashMap::new();
    for message in &received {
        assert_signed(message, &secret);
        let channel = message.json["data"]["channel"]["channelId"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(message.group_id.as_deref(), Some(channel.as_str()));
        assert_eq!(
            message.deduplication_id.as_deref(),
            message.json["id"].as_str()
        );
        if message.json["type"] == "chat:message:new" {
            order.entry(channel).or_default().push(
                message.json["data"]["message"]["messageId"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    assert_eq!(
        order, sent,
        "each channel's messages in the order they were sent"
    );

    // Requests are counted once SQS has answered them.
    server.settle().await;
    let batches = metric(
        &server,
        "switchboard_sqs_requests_total{operation=\"SendMessageBatch\"}",
    )
    .await;
    let entries = metric(&server, "switchboard_sqs_batch_entries_total").await;
    assert!(batches >= 1.0, "no SendMessageBatch was made");
    assert!(
        entries / batches >= 2.0,
        "batches held {entries} entries in {batches} requests"
    );
}

#[tokio::test]
async fn a_missing_queue_shows_as_failed_attempts_until_it_exists() {
    let moto = Moto::start().await;
    let server = TestServer::start().await;
    let (_, token) = server.person("Alice").await;
    let (bot, _) = server.bot("Early bot").await;
    let queue = moto.queue_url("not-yet");
    let (integration, _) = server
        .sqs_integration(
            &bot,
            &queue,
            &moto.endpoint,
            json!({"retryScheduleMs": [100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]}),
        )
        .await;
    let channel = server.channel(&token, &[&bot]).await;
    let log = format!("/v2/users/bots/{bot}/integrations/{integration}/deliveries");
    let deliveries = server
        .wait_for_log(&log, "failed attempts", WAIT, |d| {
            d.first()
                .is_some_and(|d| d["attempts"].as_array().unwrap().len() >= 2)
        })
        .await;
    let pending = &deliveries[0];
    assert_eq!(pending["status"], "pending");
    let error = pending["attempts"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("does not exist") && error.contains(&queue),
        "the operator is told the queue is missing: {error}"
    );
    assert_eq!(pending["attempts"][0]["outcome"], "failed");

    // Once the queue exists, the waiting event and new ones arrive.
    moto.create_queue("not-yet", &[]).await;
    server.say(&token, &channel, "after").await;
    let received = moto
        .receive_until(&queue, "the waiting events", WAIT, |r| r.len() >= 2)
        .await;
    let kinds: HashSet<&str> = received
        .iter()
        .map(|m| m.json["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        HashSet::from(["chat:channel:created", "chat:message:new"])
    );
}

#[tokio::test]
async fn an_event_too_large_for_the_queue_is_dead_lettered_with_the_reason() {
    let moto = Moto::start().await;
    let queue = moto
        .create_queue("small", &[(QueueAttributeName::MaximumMessageSize, "4096")])
        .await;
    let server = TestServer::start().await;
    let (_, token) = server.person("Alice").await;
    let (bot, _) = server.bot("Small bot").await;
    let (integration, _) = server
        .sqs_integration(
            &bot,
            &queue,
            &moto.endpoint,
            json!({"eventTypes": ["chat:message:new"]}),
        )
        .await;
    let channel = server.channel(&token, &[&bot]).await;
    server.say(&token, &channel, &"x".repeat(6_000)).await;
    let small = server.say(&token, &channel, "small").await;
    let log = format!("/v2/users/bots/{bot}/integrations/{integration}/deliveries?status=dead");
    let dead = server
        .wait_for_log(&log, "the dead letter", WAIT, |d| !d.is_empty())
        .await;
    let received = moto
        .receive_until(&queue, "the small message", WAIT, |r| !r.is_empty())
        .await;
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].json["data"]["message"]["messageId"],
        small.as_str()
    );
    let reason = dead[0]["lastError"].as_str().unwrap();
    assert!(
        reason.contains("4096 bytes"),
        "the reason names the queue's limit: {reason}"
    );
    let attempts = dead[0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "not retried: {attempts:?}");
    assert_eq!(attempts[0]["outcome"], "rejected");
}

#[tokio::test]
async fn sqs_integrations_are_checked_and_changed() {
    let moto = Moto::start().await;
    let server = TestServer::start().await;
    let (bot, _) = server.bot("Checked bot").await;
    let path = format!("/v2/users/bots/{bot}/integrations");
    let key = server.company_key.clone();
    let good = json!({
        "type": "sqs", "queueUrl": moto.queue_url("checked"), "region": sqs::REGION,
        "accessKeyId": sqs::ACCESS_KEY_ID, "secretAccessKey": sqs::SECRET_ACCESS_KEY,
        "endpointUrl": moto.endpoint,
    });
    let with = |field: &str, value: Value| {
        let mut body = good.clone();
        if value.is_null() {
            body.as_object_mut().unwrap().remove(field);
        } else {
            body[field] = value;
        }
        body
    };
    for (body, needle) in [
        (with("queueUrl", Value::Null), "queueUrl: is required"),
        (with("region", Value::Null), "region: is required"),
        (
            with("secretAccessKey", Value::Null),
            "secretAccessKey: is required",
        ),
        (with("queueUrl", json!("not a url")), "queueUrl"),
        (
            with("queueUrl", json!("https://sqs.eu-west-1.amazonaws.com")),
            "queueUrl",
        ),
        (with("region", json!("Europe West")), "region"),
        (with("accessKeyId", json!("AKIA-bad")), "accessKeyId"),
        (
            with("url", json!("https://example.com/hook")),
            "url: is not a field of an SQS",
        ),
        (with("endpointUrl", json!("ftp://x")), "endpointUrl"),
        (with("type", json!("kafka")), "type"),
    ] {
        server
            .post(&path, &key, body)
            .await
            .expect_error(400, "ValidationException", needle);
    }
    server
        .post(&path, &key, json!({"type": "webhook", "url": "https://example.com/hook", "queueUrl": moto.queue_url("x")}))
        .await
        .expect_error(400, "ValidationException", "queueUrl: is not a field of a webhook");
    let listed = server.get(&path, &key).await.expect(200);
    assert_eq!(
        listed["integrations"],
        json!([]),
        "bad input created nothing"
    );

    let created = server.post(&path, &key, good.clone()).await.expect(200);
    let id = created["integration"]["integrationId"].as_str().unwrap();
    let one = format!("{path}/{id}");
    server
        .patch(&one, &key, json!({"set": {"accessKeyId": "AKIANEW"}}))
        .await
        .expect_error(400, "ValidationException", "secretAccessKey");
    server
        .patch(&one, &key, json!({"set": {"url": "https://example.com"}}))
        .await
        .expect_error(
            409,
            "ConflictException",
            "set.url: is not a field of an SQS",
        );
    let changed = server
        .patch(
            &one,
            &key,
            json!({"set": {"queueUrl": moto.queue_url("other.fifo"), "region": "eu-west-1",
                   "accessKeyId": "AKIANEW", "secretAccessKey": "new/secret"}, "unset": ["endpointUrl"]}),
        )
        .await
        .expect(200);
    let view = &changed["integration"];
    assert_eq!(view["queueUrl"], moto.queue_url("other.fifo").as_str());
    assert_eq!(view["region"], "eu-west-1");
    assert_eq!(view["accessKeyId"], "AKIANEW");
    assert_eq!(view["fifo"], true);
    assert!(view.get("endpointUrl").is_none());
    assert!(!changed.to_string().contains("new/secret"));
}

/// Nothing lost with SQS either: the server process is killed with SIGKILL
/// while it sends to a FIFO queue through a slow link, started again on the
/// same database, and every message reaches the queue, each channel in order.
#[tokio::test]
async fn a_server_killed_mid_delivery_to_sqs_loses_nothing() {
    const CHANNELS: usize = 4;
    const PER_CHANNEL: usize = 40;
    let moto = Moto::start().await;
    let queue = moto.create_queue("crash.fifo", &[]).await;
    let slow = SlowProxy::start(&moto.endpoint, Duration::from_millis(20)).await;
    let data_dir = tempfile::tempdir().unwrap();
    let company_key = credentials::generate(CredentialKind::Company)
        .reveal()
        .to_owned();
    let env = [
        ("SWITCHBOARD_BOOTSTRAP__COMPANY_KEY", company_key.as_str()),
        ("SWITCHBOARD_DELIVERY__ALLOW_TARGETS", "127.0.0.1/32"),
        ("SWITCHBOARD_DELIVERY__TIMEOUT", "1s"),
        ("SWITCHBOARD_DELIVERY__LEASE", "3s"),
        ("SWITCHBOARD_DELIVERY__POLL_INTERVAL", "100ms"),
        (
            "SWITCHBOARD_DELIVERY__RETRY_SCHEDULE",
            "50ms,100ms,200ms,400ms,800ms",
        ),
        ("SWITCHBOARD_HTTP__RATE_LIMIT_PER_SECOND", "0"),
    ];
    let first = ServerProcess::start(data_dir.path(), &env).await;
    let api = TestServer::attach(&first.base, &company_key);
    let (_, token) = api.person("Alice").await;
    let (bot, _) = api.bot("Queue bot").await;
    let (integration, _) = api
        .sqs_integration(&bot, &queue, &slow.endpoint, json!({"maxInFlight": 2}))
        .await;
    let base = format!("/v2/users/bots/{bot}/integrations/{integration}");
    api.post(&format!("{base}/pause"), &company_key, json!({}))
        .await
        .expect(200);
    let mut channels = Vec::new();
    for _ in 0..CHANNELS {
        channels.push(api.channel(&token, &[&bot]).await);
    }
    let mut sent: HashMap<String, Vec<String>> = HashMap::new();
    for round in 0..PER_CHANNEL {
        for channel in &channels {
            let id = api.say(&token, channel, &format!("round {round}")).await;
            sent.entry(channel.clone()).or_default().push(id);
        }
    }
    api.post(&format!("{base}/resume"), &company_key, json!({}))
        .await
        .expect(200);
    let total = CHANNELS * (PER_CHANNEL + 1);
    let deadline = std::time::Instant::now() + WAIT;
    while moto.depth(&queue).await < 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "deliveries did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill_hard().await;
    let before_restart = moto.depth(&queue).await;
    assert!(
        before_restart < total,
        "the kill came mid-delivery ({before_restart} of {total} on the queue)"
    );

    let second = ServerProcess::start(data_dir.path(), &env).await;
    let received = moto
        .receive_until(&queue, "every event", Duration::from_secs(60), |r| {
            let ids: HashSet<&str> = r.iter().filter_map(|m| m.json["id"].as_str()).collect();
            ids.len() >= total
        })
        .await;
    let mut order: HashMap<String, Vec<String>> = HashMap::new();
    for message in &received {
        if message.json["type"] == "chat:message:new" {
            let channel = message.json["data"]["channel"]["channelId"]
                .as_str()
                .unwrap()
                .to_owned();
            let id = message.json["data"]["message"]["messageId"]
                .as_str()
                .unwrap()
                .to_owned();
            let seen = order.entry(channel).or_default();
            if !seen.contains(&id) {
                seen.push(id);
            }
        }
    }
    assert_eq!(order, sent, "every message, each channel in order");
    assert!(second.terminate().await.success());
}
