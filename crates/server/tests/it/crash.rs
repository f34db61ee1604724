//! Nothing is lost: the server is a separate process, killed with SIGKILL in
//! the middle of delivering, then started again on the same database (the
//! run's backend: SQLite, or PostgreSQL in the test command's second pass).
//! Also here, because it too needs the server stopped and started again: a
//! stored event damaged while the server was down does not stop its lane.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;

use crate::support::TestServer;
use crate::support::process::ServerProcess;
use crate::support::receiver::Receiver;
use crate::support::store::TestStore;
use crate::support::traffic::{assert_channel_order, bot_channels, delivered_messages, send_round};
use switchboard_domain::credentials::{self, CredentialKind};

const CHANNELS: usize = 4;
const MESSAGES_PER_PHASE: usize = 160;

fn settings(company_key: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SWITCHBOARD_BOOTSTRAP__COMPANY_KEY", company_key.to_owned()),
        (
            "SWITCHBOARD_DELIVERY__ALLOW_TARGETS",
            "127.0.0.1/32".to_owned(),
        ),
        ("SWITCHBOARD_DELIVERY__TIMEOUT", "1s".to_owned()),
        ("SWITCHBOARD_DELIVERY__LEASE", "3s".to_owned()),
        ("SWITCHBOARD_DELIVERY__POLL_INTERVAL", "100ms".to_owned()),
        (
            "SWITCHBOARD_DELIVERY__RETRY_SCHEDULE",
            "50ms,100ms,200ms,400ms,800ms".to_owned(),
        ),
        ("SWITCHBOARD_HTTP__RATE_LIMIT_PER_SECOND", "0".to_owned()),
    ]
}

async fn start(data_dir: &std::path::Path, settings: &[(&'static str, String)]) -> ServerProcess {
    let env: Vec<(&str, &str)> = settings
        .iter()
        .map(|(key, value)| (*key, value.as_str()))
        .collect();
    ServerProcess::start(data_dir, &env).await
}

#[tokio::test]
async fn a_server_killed_mid_delivery_loses_nothing_and_keeps_channel_order() {
    let data_dir = tempfile::tempdir().unwrap();
    let store = TestStore::create().await;
    let company_key = credentials::generate(CredentialKind::Company)
        .reveal()
        .to_owned();
    let mut settings = settings(&company_key);
    settings.extend(store.env());
    let receiver = Receiver::start().await;
    receiver.delay(Duration::from_millis(15));

    let first = start(data_dir.path(), &settings).await;
    let api = TestServer::attach(&first.base, &company_key);
    let (token, channels) = bot_channels(&api, &receiver.url, CHANNELS).await;

    // Phase 1: messages pile up faster than the slow receiver takes them; kill mid-delivery.
    let bases = [first.base.clone()];
    let mut accepted =
        send_round(&bases, &token, &channels, 1, MESSAGES_PER_PHASE / CHANNELS).await;
    receiver
        .wait_until("deliveries to be under way", Duration::from_secs(30), |r| {
            delivered_messages(r).len() >= 20
        })
        .await;
    let before_kill = delivered_messages(&receiver.received()).len();
    first.kill_hard().await;
    assert!(
        before_kill < MESSAGES_PER_PHASE,
        "the kill came mid-delivery ({before_kill} delivered)"
    );

    // Phase 2: start again on the same database and keep sending.
    let second = start(data_dir.path(), &settings).await;
    let bases = [second.base.clone()];
    for (channel, ids) in
        send_round(&bases, &token, &channels, 2, MESSAGES_PER_PHASE / CHANNELS).await
    {
        accepted.get_mut(&channel).unwrap().extend(ids);
    }
    let everything: HashSet<String> = accepted.values().flatten().cloned().collect();
    assert_eq!(everything.len(), 2 * MESSAGES_PER_PHASE);
    let received = receiver
        .wait_until("every accepted message", Duration::from_secs(90), |r| {
            delivered_messages(r).is_superset(&everything)
        })
        .await;
    assert_channel_order(&received, &accepted);
    assert!(second.terminate().await.success());
}

/// Every message of a channel, by id (pages of 100).
async fn channel_messages(api: &TestServer, token: &str, channel: &str) -> Vec<String> {
    let mut ids = Vec::new();
    loop {
        let page = api
            .get(
                &format!(
                    "/v2/conversations/channels/{channel}/messages?limit=100&offset={}",
                    ids.len()
                ),
                token,
            )
            .await
            .expect(200);
        let listed = page["messages"].as_array().unwrap();
        ids.extend(
            listed
                .iter()
                .map(|m| m["messageId"].as_str().unwrap().to_owned()),
        );
        if listed.len() < 100 {
            return ids;
        }
    }
}

/// The SQLite writer's commits so far, and the changes they held (from the
/// group-size histogram of `/metrics`).
async fn group_commits(base: &str) -> (f64, f64) {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let read = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        read("switchboard_store_group_commit_changes_count"),
        read("switchboard_store_group_commit_changes_sum"),
    )
}

/// One `SendMessage` with an `Idempotency-Key`: the message id, or `None`
/// when no answer came (the server was killed).
async fn send_keyed(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    channel: &str,
    key: &str,
) -> Option<String> {
    let response = client
        .post(format!(
            "{base}/v2/conversations/channels/{channel}/messages"
        ))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&serde_json::json!({"text": key}))
        .send()
        .await
        .ok()?;
    let status = response.status();
    if !status.is_success() {
        panic!(
            "{key}: {status} {}",
            response.text().await.unwrap_or_default()
        );
    }
    let body: serde_json::Value = response.json().await.ok()?;
    Some(body["message"]["messageId"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_server_killed_while_committing_loses_no_answered_message_and_duplicates_none() {
    const SENDERS: usize = 32;
    const ANSWERED_BEFORE_KILL: usize = 400;
    let data_dir = tempfile::tempdir().unwrap();
    let store = TestStore::create().await;
    let company_key = credentials::generate(CredentialKind::Company)
        .reveal()
        .to_owned();
    let mut settings = settings(&company_key);
    settings.extend(store.env());
    let first = start(data_dir.path(), &settings).await;
    let api = TestServer::attach(&first.base, &company_key);
    let (_, token) = api.person("Alice").await;
    let mut channels = Vec::new();
    for _ in 0..CHANNELS {
        channels.push(api.channel(&token, &[]).await);
    }

    // Many senders at once, so that changes are committed in groups; each
    // key is tried once, and the server is killed while requests are open.
    let client = reqwest::Client::new();
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut senders = Vec::new();
    for sender in 0..SENDERS {
        let (client, base, token) = (client.clone(), first.base.clone(), token.clone());
        let channel = channels[sender % CHANNELS].clone();
        let answered = answered.clone();
        senders.push(tokio::spawn(async move {
            let mut tried = Vec::new();
            for n in 0..10_000 {
                let key = format!("sender-{sender}-{n}");
                let outcome = send_keyed(&client, &base, &token, &channel, &key).await;
                let stop = outcome.is_none();
                tried.push((channel.clone(), key, outcome));
                if stop {
                    break;
                }
                answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            tried
        }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while answered.load(std::sync::atomic::Ordering::Relaxed) < ANSWERED_BEFORE_KILL {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the senders stalled"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if store.url.is_none() {
        let (commits, changes) = group_commits(&first.base).await;
        assert!(
            changes > commits,
            "changes were committed in groups ({changes} in {commits} commits)"
        );
    }
    first.kill_hard().await;
    let mut tried = Vec::new();
    for sender in senders {
        tried.extend(sender.await.unwrap());
    }
    let unanswered = tried.iter().filter(|(.., id)| id.is_none()).count();
    assert_eq!(
        unanswered, SENDERS,
        "each sender's last request went unanswered"
    );

    // Every key again, after the restart: an answered one gets its message
    // back, an unanswered one the message it made if it was committed, else
    // a new one.
    let second = start(data_dir.path(), &settings).await;
    let api = TestServer::attach(&second.base, &company_key);
    let mut by_key = HashSet::new();
    for (channel, key, first_answer) in &tried {
        let again = send_keyed(&client, &second.base, &token, channel, key)
            .await
            .expect("the restarted server answers");
        if let Some(first_answer) = first_answer {
            assert_eq!(&again, first_answer, "{key}: an answered message was kept");
        }
        assert!(by_key.insert(again), "{key}: one message per key");
    }
    let mut stored = HashSet::new();
    for channel in &channels {
        for id in channel_messages(&api, &token, channel).await {
            assert!(stored.insert(id), "a message is listed once");
        }
    }
    assert_eq!(
        stored, by_key,
        "the channels hold one message per key, no more"
    );
    assert!(second.terminate().await.success());
}

/// A company key, and the settings with this delivery timeout and lease on
/// `store`.
fn with_lease(
    store: &TestStore,
    timeout: &str,
    lease: &str,
) -> (String, Vec<(&'static str, String)>) {
    let company_key = credentials::generate(CredentialKind::Company)
        .reveal()
        .to_owned();
    let mut settings = settings(&company_key);
    settings.retain(|(key, _)| {
        *key != "SWITCHBOARD_DELIVERY__LEASE" && *key != "SWITCHBOARD_DELIVERY__TIMEOUT"
    });
    settings.push(("SWITCHBOARD_DELIVERY__TIMEOUT", timeout.to_owned()));
    settings.push(("SWITCHBOARD_DELIVERY__LEASE", lease.to_owned()));
    settings.extend(store.env());
    (company_key, settings)
}

/// On SQLite one server holds the database: a second one on the same file
/// is refused with one line that says why, and starts once the first is gone.
#[tokio::test]
async fn a_second_server_on_the_same_sqlite_database_is_refused() {
    if crate::support::store::postgres_run() {
        return; // several instances share PostgreSQL by design
    }
    let data_dir = tempfile::tempdir().unwrap();
    let first = ServerProcess::start(data_dir.path(), &[]).await;
    let second = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(crate::support::process::BINARY)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("SWITCHBOARD_DATA_DIR", data_dir.path())
            .env("SWITCHBOARD_LOG__FILTER", "warn")
            .output(),
    )
    .await
    .expect("the second server ends within 30 s")
    .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{stderr}");
    assert!(
        stderr.contains("another switchboard server is running on the database"),
        "{stderr}"
    );
    assert!(first.terminate().await.success());
    let again = ServerProcess::start(data_dir.path(), &[]).await;
    assert!(again.terminate().await.success());
}

/// After SIGKILL with a delivery in flight on every lane, the next server
/// sends them again soon. On SQLite at once: it holds the file alone, so it
/// releases the dead process's leases at start instead of waiting them out
/// (here 90 s), and every lane moves within 2 s of the restart. On
/// PostgreSQL the dead instance's leases are no longer extended, and every
/// lane moves within one lease (here 3 s) of the kill.
#[tokio::test]
async fn after_a_kill_every_lane_in_flight_moves_again_soon() {
    let postgres = crate::support::store::postgres_run();
    let lease = if postgres { "3s" } else { "90s" };
    let data_dir = tempfile::tempdir().unwrap();
    let store = TestStore::create().await;
    let (company_key, settings) = with_lease(&store, "30s", lease);
    let receiver = Receiver::start().await;
    receiver.hold();

    let first = start(data_dir.path(), &settings).await;
    let api = TestServer::attach(&first.base, &company_key);
    let (token, channels) = bot_channels(&api, &receiver.url, CHANNELS).await;
    let bases = [first.base.clone()];
    let accepted = send_round(&bases, &token, &channels, 1, 1).await;
    let sent: HashSet<String> = accepted.values().flatten().cloned().collect();
    receiver
        .wait_until(
            "a delivery in flight on every lane",
            Duration::from_secs(30),
            |r| {
                let lanes: HashSet<&str> = r
                    .iter()
                    .filter_map(|r| r.json["data"]["channel"]["channelId"].as_str())
                    .collect();
                lanes.len() == CHANNELS
            },
        )
        .await;
    let held = receiver.received().len();
    first.kill_hard().await;
    let killed = std::time::Instant::now();
    receiver.release();

    let second = start(data_dir.path(), &settings).await;
    let restarted = std::time::Instant::now();
    receiver
        .wait_until("every lane sent again", Duration::from_secs(30), |r| {
            delivered_messages(&r[held..]).is_superset(&sent)
        })
        .await;
    if postgres {
        let resumed = killed.elapsed();
        assert!(
            resumed < Duration::from_secs(3 + 3),
            "every lane moved again {resumed:?} after the kill, with a 3 s lease"
        );
    } else {
        let resumed = restarted.elapsed();
        assert!(
            resumed < Duration::from_secs(2),
            "every lane moved again {resumed:?} after the restart"
        );
    }
    assert!(second.terminate().await.success());
}

/// A send that takes longer than the lease keeps its lane: the lease is
/// extended while the send is in flight, so no other worker sends the event
/// again and each arrives once.
#[tokio::test]
async fn a_send_longer_than_the_lease_keeps_its_lane_and_arrives_once() {
    let data_dir = tempfile::tempdir().unwrap();
    let store = TestStore::create().await;
    let (company_key, settings) = with_lease(&store, "20s", "1s");
    let receiver = Receiver::start().await;
    receiver.delay(Duration::from_millis(3_500));

    let server = start(data_dir.path(), &settings).await;
    let api = TestServer::attach(&server.base, &company_key);
    let (token, channels) = bot_channels(&api, &receiver.url, 2).await;
    let bases = [server.base.clone()];
    // Two messages per channel: a lane sends its second only once the first
    // is finished, so when the seconds have arrived, a second copy of a
    // first (sent after its lease ran out, about a second in) would be here.
    let accepted = send_round(&bases, &token, &channels, 1, 2).await;
    let sent: HashSet<String> = accepted.values().flatten().cloned().collect();
    let received = receiver
        .wait_until("every message", Duration::from_secs(60), |r| {
            delivered_messages(r).is_superset(&sent)
        })
        .await;
    let counts = crate::support::traffic::arrivals(&received);
    for ids in accepted.values() {
        assert_eq!(counts[&ids[0]], 1, "message {} arrived once", ids[0]);
    }
    assert!(server.terminate().await.success());
}

/// An event whose stored data no longer makes an envelope (damaged by hand
/// while the server was down) can never be sent: it is dead-lettered at
/// once with the reason, and the events behind it in its lane go on.
#[tokio::test]
async fn a_stored_event_that_cannot_be_sent_is_dead_lettered_and_its_lane_goes_on() {
    let data_dir = tempfile::tempdir().unwrap();
    let store = TestStore::create().await;
    let (company_key, settings) = with_lease(&store, "5s", "5s");
    let receiver = Receiver::start().await;
    let first = start(data_dir.path(), &settings).await;
    let api = TestServer::attach(&first.base, &company_key);
    let (_, token) = api.person("Alice").await;
    let (bot, _) = api.bot("Bot").await;
    let (integration, _) = api.webhook(&bot, &receiver.url, json!({})).await;
    let channel = api.channel(&token, &[&bot]).await;
    receiver
        .wait_until("the channel's creation", Duration::from_secs(30), |r| {
            !r.is_empty()
        })
        .await;
    let path = format!("/v2/users/bots/{bot}/integrations/{integration}");
    api.post(&format!("{path}/pause"), &company_key, json!({}))
        .await
        .expect(200);
    let damaged = api.say(&token, &channel, "damaged").await;
    let behind = api.say(&token, &channel, "behind it").await;
    assert!(first.terminate().await.success());

    let changed = store
        .tamper(
            data_dir.path(),
            &format!(
                "UPDATE events SET data = '{{\"message\": ' \
                 WHERE event_type = 'chat:message:new' AND data LIKE '%{damaged}%'"
            ),
        )
        .await;
    assert_eq!(changed, 1);
    let second = start(data_dir.path(), &settings).await;
    let api = TestServer::attach(&second.base, &company_key);
    api.post(&format!("{path}/resume"), &company_key, json!({}))
        .await
        .expect(200);
    let received = receiver
        .wait_until("the message behind it", Duration::from_secs(30), |r| {
            delivered_messages(r).contains(&behind)
        })
        .await;
    assert!(!delivered_messages(&received).contains(&damaged));
    // The run went on to the next event at once; the dead letter's outcome
    // is stored beside it.
    let dead = api
        .wait_for_log(
            &format!("{path}/deliveries?status=dead"),
            "the dead letter",
            Duration::from_secs(30),
            |d| !d.is_empty(),
        )
        .await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["eventType"], "chat:message:new");
    let attempts = dead[0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0]["outcome"], "rejected");
    let error = dead[0]["lastError"].as_str().unwrap();
    assert!(
        error.contains("stored event data cannot be sent"),
        "{error}"
    );
    assert!(second.terminate().await.success());
}
