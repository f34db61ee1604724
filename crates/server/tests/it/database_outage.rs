//! The database goes away while messages flow (every connection to
//! PostgreSQL cut, new ones refused) and comes back: API calls during the
//! outage fail quickly with 503 and say why; afterwards the same server,
//! not restarted, accepts again and delivers everything it ever accepted.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::support::TestServer;
use crate::support::proxy::Proxy;
use crate::support::receiver::Receiver;
use crate::support::store::TestStore;
use crate::support::traffic::{bot_channels, delivered_messages, send_round};
use reqwest::Url;
use serde_json::json;

#[tokio::test]
async fn an_outage_answers_503_quickly_and_loses_nothing_after_recovery() {
    let store = TestStore::postgres().await;
    let direct = Url::parse(store.url.as_deref().unwrap()).unwrap();
    let target = format!(
        "{}:{}",
        direct.host_str().unwrap(),
        direct.port().unwrap_or(5432)
    );
    let proxy = Proxy::start(target.parse().expect("PostgreSQL on a literal address")).await;
    let mut proxied = direct.clone();
    proxied.set_port(Some(proxy.addr.port())).unwrap();
    let acquire_timeout = Duration::from_secs(2);
    let server = TestServer::start_with(|config| {
        config.database.url = Some(proxied.to_string());
        config.database.acquire_timeout = acquire_timeout;
        // The calls below come as fast as the server answers: with the key
        // known from before the outage, the rate limit (which needs no
        // database) would answer 429 first.
        config.http.rate_limit_per_second = 0;
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.delay(Duration::from_millis(10));
    let (token, channels) = bot_channels(&server, &receiver.url, 2).await;
    let bases = [server.base.clone()];

    // A backlog is being delivered when the database goes away.
    let mut accepted = send_round(&bases, &token, &channels, 1, 60).await;
    proxy.cut();
    let outage = Instant::now();
    let path = format!("/v2/conversations/channels/{}/messages", channels[0]);
    // Three seconds without a database: every call fails, none hangs.
    let mut calls = 0;
    while outage.elapsed() < Duration::from_secs(3) {
        calls += 1;
        let started = Instant::now();
        server
            .post(&path, &token, json!({"text": "during the outage"}))
            .await
            .expect_error(503, "InternalServerException", "database is unavailable");
        let took = started.elapsed();
        assert!(
            took < acquire_timeout + Duration::from_secs(3),
            "a call during the outage took {took:?}"
        );
        server.get(&path, &token).await.expect_error(
            503,
            "InternalServerException",
            "database is unavailable",
        );
    }
    assert!(calls >= 2);
    proxy.restore();

    // The same server comes back by itself: calls succeed again within a bound.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = server.get(&path, &token).await;
        if reply.status == 200 {
            break;
        }
        assert_eq!(reply.status, 503, "{}", reply.body);
        assert!(Instant::now() < deadline, "no recovery within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (channel, ids) in send_round(&bases, &token, &channels, 2, 20).await {
        accepted.get_mut(&channel).unwrap().extend(ids);
    }
    let everything: HashSet<String> = accepted.values().flatten().cloned().collect();
    receiver
        .wait_until("every accepted message", Duration::from_secs(60), |r| {
            delivered_messages(r).is_superset(&everything)
        })
        .await;
    server.stop().await;
}
