//! Nothing is lost: the server is a separate process, killed with SIGKILL in
//! the middle of delivering, then started again on the same database (the
//! run's backend: SQLite, or PostgreSQL in the test command's second pass).

use std::collections::HashSet;
use std::time::Duration;

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
