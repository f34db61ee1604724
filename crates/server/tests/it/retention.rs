//! Retention end to end: a server with a window of milliseconds prunes what
//! it delivered, refuses a replay or a log query that reaches back past it
//! with the oldest time kept, and reports it in its metrics.

use std::time::{Duration, Instant};

use crate::support::TestServer;
use crate::support::receiver::Receiver;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn delivered_events_are_pruned_and_queries_past_them_refused() {
    let server = TestServer::start_with(|config| {
        config.retention.delivered = "1ms".to_owned();
        config.retention.dead_letters = "1h".to_owned();
    })
    .await;
    let (_, token) = server.person("Alice").await;
    let (bot, _) = server.bot("Bot").await;
    let receiver = Receiver::start().await;
    let (integration, _) = server.webhook(&bot, &receiver.url, json!({})).await;
    let channel = server.channel(&token, &[&bot]).await;
    server.say(&token, &channel, "soon forgotten").await;
    receiver
        .wait_until("both events", WAIT, |r| r.len() >= 2)
        .await;
    server.settle().await;

    // The pruner runs about once a second: wait, within a bound, for the
    // delivery log to empty.
    let log = format!("/v2/users/bots/{bot}/integrations/{integration}/deliveries");
    let deadline = Instant::now() + WAIT;
    loop {
        let page = server.get(&log, &server.company_key).await.expect(200);
        if page["deliveries"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "still kept: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    server
        .replay(&bot, &integration, json!({"since": "2020-01-01T00:00:00Z"}))
        .await
        .expect_error(400, "ValidationException", "since: events before 20");
    server
        .get(
            &format!("{log}?since=2020-01-01T00:00:00Z"),
            &server.company_key,
        )
        .await
        .expect_error(400, "ValidationException", "no longer kept");

    // What is new is delivered and logged as usual.
    server.say(&token, &channel, "recent").await;
    receiver
        .wait_until("the new one", WAIT, |r| r.len() >= 3)
        .await;

    let metrics = server.metrics().await;
    for name in [
        "switchboard_retention_pruned_rows_total{table=\"events\"}",
        "switchboard_retention_pruned_rows_total{table=\"delivery_attempts\"}",
        "switchboard_database_size_bytes",
        "switchboard_retention_oldest_row_age_seconds{table=\"events\"}",
    ] {
        assert!(
            metrics.lines().any(|line| line.starts_with(name)),
            "{name} is missing from /metrics"
        );
    }
}
