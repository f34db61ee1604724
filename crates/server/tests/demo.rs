//! `switchboard demo`: the command a new user runs first. Its echo bot answers.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::process::BINARY;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// The value after `label` on the printed line that has it.
fn printed_value(lines: &[String], label: &str, after: &str) -> String {
    let line = lines
        .iter()
        .find(|line| line.contains(label))
        .unwrap_or_else(|| panic!("no `{label}` in {lines:?}"));
    let rest = &line[line
        .find(after)
        .unwrap_or_else(|| panic!("no `{after}` in `{line}`"))
        + after.len()..];
    rest.split_whitespace().next().unwrap().to_owned()
}

#[tokio::test]
async fn the_demo_prints_how_to_try_it_and_its_echo_bot_answers() {
    let mut child = Command::new(BINARY)
        .args(["demo", "--listen", "127.0.0.1:0"])
        .env("SWITCHBOARD_LOG__FILTER", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut output = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut lines = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = output.next_line().await.unwrap() {
            let done = line.contains("gone when the demo stops");
            lines.push(line);
            if done {
                return;
            }
        }
        panic!("the demo exited early: {lines:?}");
    })
    .await
    .expect("the demo starts within 30 s");
    let base = printed_value(&lines, "is running at", "running at ");
    let token = printed_value(&lines, "Alice", "token ");
    let channel = printed_value(&lines, "channel ", "channel ");
    assert!(
        lines.iter().any(|line| line.contains("curl")),
        "it shows curl commands"
    );

    let client = reqwest::Client::new();
    let messages = format!("{base}/v2/conversations/channels/{channel}/messages");
    let sent: Value = client
        .post(&messages)
        .bearer_auth(&token)
        .json(&json!({"text": "ping from the test"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sent_id = sent["message"]["messageId"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let listed: Value = client
            .get(&messages)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let reply = listed["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["quote"]["messageId"] == sent_id.as_str())
            .cloned();
        if let Some(reply) = reply {
            assert_eq!(reply["text"], "Echo: ping from the test");
            assert_eq!(reply["user"]["bot"], true);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the echo bot did not answer: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A clean stop removes the demo's temporary data.
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("the demo stops")
        .unwrap();
    assert!(status.success());
}
