//! Traffic for the tests that run server processes: messages sent through
//! one or several instances, and what the bot's receiver made of them.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use super::TestServer;
use super::receiver::Received;

/// Sends `count` messages to each channel, one sender per channel so each
/// channel's acceptance order is known; message `k` of a channel goes through
/// instance `k % bases.len()`. Returns each channel's accepted message ids.
pub async fn send_round(
    bases: &[String],
    token: &str,
    channels: &[String],
    round: usize,
    count: usize,
) -> HashMap<String, Vec<String>> {
    let client = reqwest::Client::new();
    let mut senders = Vec::new();
    for channel in channels {
        let urls: Vec<String> = bases
            .iter()
            .map(|base| format!("{base}/v2/conversations/channels/{channel}/messages"))
            .collect();
        let (client, token, channel) = (client.clone(), token.to_owned(), channel.clone());
        senders.push(tokio::spawn(async move {
            let mut accepted = Vec::new();
            for index in 0..count {
                let response = client
                    .post(&urls[index % urls.len()])
                    .bearer_auth(&token)
                    .json(&json!({"text": format!("round {round} message {index}")}))
                    .send()
                    .await
                    .expect("the server answers");
                assert!(response.status().is_success(), "{}", response.status());
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

/// A person with a token, a bot with a webhook integration to `url`, and
/// `count` channels of both.
pub async fn bot_channels(api: &TestServer, url: &str, count: usize) -> (String, Vec<String>) {
    let (_, token) = api.person("Alice").await;
    let (bot, _) = api.bot("Busy bot").await;
    api.webhook(&bot, url, json!({})).await;
    let mut channels = Vec::new();
    for _ in 0..count {
        channels.push(api.channel(&token, &[&bot]).await);
    }
    (token, channels)
}

fn new_messages(received: &[Received]) -> impl Iterator<Item = &Received> {
    received
        .iter()
        .filter(|r| r.json["type"] == "chat:message:new")
}

fn message_id(received: &Received) -> String {
    received.json["data"]["message"]["messageId"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The messages whose `chat:message:new` arrived at least once.
pub fn delivered_messages(received: &[Received]) -> HashSet<String> {
    new_messages(received).map(message_id).collect()
}

/// How many times each message's `chat:message:new` arrived.
pub fn arrivals(received: &[Received]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for r in new_messages(received) {
        *counts.entry(message_id(r)).or_insert(0) += 1;
    }
    counts
}

/// Checks that each channel's first deliveries came in the order the API
/// accepted its messages, each with a positive `channelSeq`.
pub fn assert_channel_order(received: &[Received], accepted: &HashMap<String, Vec<String>>) {
    for (channel, ids) in accepted {
        let mut firsts = Vec::new();
        for r in new_messages(received) {
            if r.json["data"]["channel"]["channelId"] == channel.as_str() {
                assert!(r.json["channelSeq"].as_i64().is_some_and(|seq| seq > 0));
                let id = message_id(r);
                if !firsts.contains(&id) {
                    firsts.push(id);
                }
            }
        }
        assert_eq!(&firsts, ids, "channel {channel}: first deliveries in order");
    }
}
