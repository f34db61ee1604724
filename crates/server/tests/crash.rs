//! Nothing is lost: the server is a separate process, killed with SIGKILL in
//! the middle of delivering, then started again on the same database.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::{Value, json};
use support::process::ServerProcess;
use support::receiver::{Received, Receiver};
use switchboard_domain::credentials::{self, CredentialKind};

const CHANNELS: usize = 4;
const MESSAGES_PER_PHASE: usize = 160;

struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, key: &str, body: Value) -> Value {
        let response = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .expect("the server answers");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }
}

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

/// Sends `count` messages to each channel, one sender per channel so each
/// channel's acceptance order is known. Returns the accepted message ids.
async fn send_round(
    api: &Api,
    token: &str,
    channels: &[String],
    round: usize,
    count: usize,
) -> HashMap<String, Vec<String>> {
    let mut senders = Vec::new();
    for channel in channels {
        let client = api.client.clone();
        let url = format!("{}/v2/conversations/channels/{channel}/messages", api.base);
        let (token, channel) = (token.to_owned(), channel.clone());
        senders.push(tokio::spawn(async move {
            let mut accepted = Vec::new();
            for index in 0..count {
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"text": format!("round {round} message {index}")}))
                    .send()
                    .await
                    .expect("the server answers");
                assert!(response.status().is_success());
                let body: Value = response.json().await.unwrap();
                accepted.push(body["message"]["messageId"].as_str().unwrap().to_owned());
            }
            (channel, accepted)
        }));
    }
    let mut accepted = HashMap::new();
    for sender in senders {
        let (channel, ids) = sender.await.unwrap();
        accepted.insert(channel, ids);
    }
    accepted
}

fn delivered_messages(received: &[Received]) -> HashSet<String> {
    received
        .iter()
        .filter(|r| r.json["type"] == "chat:message:new")
        .map(|r| {
            r.json["data"]["message"]["messageId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_server_killed_mid_delivery_loses_nothing_and_keeps_channel_order() {
    let data_dir = tempfile::tempdir().unwrap();
    let company_key = credentials::generate(CredentialKind::Company)
        .reveal()
        .to_owned();
    let settings = settings(&company_key);
    let receiver = Receiver::start().await;
    receiver.delay(Duration::from_millis(15));

    let first = start(data_dir.path(), &settings).await;
    let api = Api {
        client: reqwest::Client::new(),
        base: first.base.clone(),
    };
    let person = api
        .call(
            reqwest::Method::POST,
            "/v2/users",
            &company_key,
            json!({"name": "Alice"}),
        )
        .await;
    let alice = person["user"]["id"].as_str().unwrap().to_owned();
    let token = api
        .call(
            reqwest::Method::POST,
            &format!("/v2/users/{alice}/tokens"),
            &company_key,
            json!({}),
        )
        .await;
    let token = token["token"].as_str().unwrap().to_owned();
    let bot = api
        .call(
            reqwest::Method::POST,
            "/v2/users/bots",
            &company_key,
            json!({"name": "Slow bot"}),
        )
        .await;
    let bot = bot["bot"]["id"].as_str().unwrap().to_owned();
    api.call(
        reqwest::Method::POST,
        &format!("/v2/users/bots/{bot}/integrations"),
        &company_key,
        json!({"type": "webhook", "url": receiver.url}),
    )
    .await;
    let mut channels = Vec::new();
    for _ in 0..CHANNELS {
        let created = api
            .call(
                reqwest::Method::POST,
                "/v2/conversations/channels",
                &token,
                json!({"members": [bot]}),
            )
            .await;
        channels.push(created["channel"]["channelId"].as_str().unwrap().to_owned());
    }

    // Phase 1: messages pile up faster than the slow receiver takes them; kill mid-delivery.
    let mut accepted = send_round(&api, &token, &channels, 1, MESSAGES_PER_PHASE / CHANNELS).await;
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
    let api = Api {
        client: reqwest::Client::new(),
        base: second.base.clone(),
    };
    for (channel, ids) in
        send_round(&api, &token, &channels, 2, MESSAGES_PER_PHASE / CHANNELS).await
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

    // Each channel's first deliveries follow the order the API accepted them in.
    for (channel, ids) in &accepted {
        let mut firsts = Vec::new();
        for r in &received {
            if r.json["type"] == "chat:message:new"
                && r.json["data"]["channel"]["channelId"] == channel.as_str()
            {
                let id = r.json["data"]["message"]["messageId"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                if !firsts.contains(&id) {
                    firsts.push(id);
                }
            }
        }
        assert_eq!(&firsts, ids, "channel {channel}: first deliveries in order");
    }
    let seqs_ok = received
        .iter()
        .filter(|r| r.json["type"] == "chat:message:new")
        .all(|r| r.json["channelSeq"].as_i64().is_some_and(|seq| seq > 0));
    assert!(seqs_ok);
    assert!(second.terminate().await.success());
}
