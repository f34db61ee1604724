//! `switchboard demo`: the command a new user runs first. It prints `export`
//! lines the README's examples use, its echo bot answers, a kept demo starts
//! again with the same credentials, and a closed standard output or Ctrl-C
//! ends it cleanly without leaving its temporary directory behind.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::process::BINARY;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The names the README's examples use; the demo exports each.
const EXPORTED: &[&str] = &[
    "BASE",
    "COMPANY_KEY",
    "ALICE",
    "ALICE_TOKEN",
    "BOB",
    "BOB_TOKEN",
    "BOT",
    "BOT_KEY",
    "CHANNEL",
    "INTEGRATION",
];

/// A running demo and what it printed.
pub(crate) struct Demo {
    child: Child,
    pub(crate) lines: Vec<String>,
    /// The values of its `export NAME=value` lines.
    exports: HashMap<String, String>,
    /// What it logged on standard error so far (drained in the background).
    logged: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Demo {
    /// Starts `demo --listen 127.0.0.1:0` with `args` and waits (bounded)
    /// until it has printed everything.
    pub(crate) async fn start(args: &[&str], tmpdir: &std::path::Path) -> Demo {
        let mut child = Command::new(BINARY)
            .args(["demo", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("TMPDIR", tmpdir)
            .env_remove("NO_COLOR")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut output = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut errors = BufReader::new(child.stderr.take().unwrap()).lines();
        let logged = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = logged.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = errors.next_line().await {
                let mut sink = sink.lock().unwrap();
                sink.push_str(&line);
                sink.push('\n');
            }
        });
        let mut lines = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = output.next_line().await.unwrap() {
                let done = line.contains("when the demo stops") || line.contains("is kept in");
                lines.push(line);
                if done {
                    return;
                }
            }
            panic!("the demo exited early: {lines:?}");
        })
        .await
        .expect("the demo starts within 30 s");
        tokio::spawn(async move { while let Ok(Some(_)) = output.next_line().await {} });
        let exports = lines
            .iter()
            .filter_map(|line| line.strip_prefix("export "))
            .filter_map(|pair| pair.split_once('='))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        Demo {
            child,
            lines,
            exports,
            logged,
        }
    }

    pub(crate) fn get(&self, name: &str) -> &str {
        self.exports
            .get(name)
            .unwrap_or_else(|| panic!("the demo exports no {name}: {:?}", self.lines))
    }

    /// SIGTERM (what Ctrl-C's SIGINT also does) and the exit status.
    pub(crate) async fn stop(mut self) -> std::process::ExitStatus {
        stop(&mut self.child, "-TERM").await
    }
}

async fn stop(child: &mut Child, signal: &str) -> std::process::ExitStatus {
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("the demo stops")
        .unwrap()
}

/// Alice writes in the channel; the echo bot answers quoting her (bounded).
async fn echo_bot_answers(demo: &Demo, text: &str) {
    let client = reqwest::Client::new();
    let messages = format!(
        "{}/v2/conversations/channels/{}/messages",
        demo.get("BASE"),
        demo.get("CHANNEL")
    );
    let token = demo.get("ALICE_TOKEN");
    let sent: Value = client
        .post(&messages)
        .bearer_auth(token)
        .json(&json!({"text": text}))
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
            .bearer_auth(token)
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
            assert_eq!(reply["text"], format!("Echo: {text}"));
            assert_eq!(reply["user"]["bot"], true);
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the echo bot did not answer: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn is_empty_dir(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

#[tokio::test]
async fn the_demo_prints_how_to_try_it_and_its_echo_bot_answers() {
    let tmpdir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&[], tmpdir.path()).await;
    for name in EXPORTED {
        assert!(!demo.get(name).is_empty());
    }
    assert!(demo.get("BASE").starts_with("http://127.0.0.1:"));
    assert!(demo.get("COMPANY_KEY").starts_with("wsk-v1-"));
    assert!(demo.get("BOT_KEY").starts_with("wsb-v1-"));
    assert!(
        demo.lines.iter().any(|line| line.contains("curl")),
        "it shows curl commands"
    );
    // The commands use the exported names, and only those.
    for line in demo.lines.iter().filter(|line| line.contains("curl")) {
        for word in line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$')) {
            if let Some(name) = word.strip_prefix('$') {
                assert!(EXPORTED.contains(&name), "`{line}` uses ${name}");
            }
        }
    }
    echo_bot_answers(&demo, "ping from the test").await;
    let logged = demo.logged.clone();
    assert!(demo.stop().await.success());
    assert!(
        !logged.lock().unwrap().contains('\u{1b}'),
        "no colour codes in logs that go to a pipe"
    );
    assert!(is_empty_dir(tmpdir.path()), "the temporary data is removed");
}

#[tokio::test]
async fn a_kept_demo_starts_again_with_the_same_credentials() {
    let tmpdir = tempfile::tempdir().unwrap();
    let kept = tempfile::tempdir().unwrap();
    let dir = kept.path().join("demo");
    let dir_arg = dir.to_str().unwrap();
    let first = Demo::start(&["--data-dir", dir_arg], tmpdir.path()).await;
    assert!(
        first.lines.iter().any(|line| line.contains("is kept in")),
        "{:?}",
        first.lines
    );
    let first_exports = first.exports.clone();
    assert!(first.stop().await.success());

    let again = Demo::start(&["--data-dir", dir_arg], tmpdir.path()).await;
    for name in EXPORTED.iter().filter(|name| **name != "BASE") {
        assert_eq!(again.get(name), first_exports[*name], "{name} is the same");
    }
    // The echo bot of the restarted demo answers on its new address.
    echo_bot_answers(&again, "are you still there?").await;
    assert!(again.stop().await.success());
    assert!(dir.join("switchboard.db").exists(), "the data is kept");

    // A data directory that is not a demo's is refused with what to do.
    let other = kept.path().join("not-a-demo");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("switchboard.db"), b"").unwrap();
    let refused = Command::new(BINARY)
        .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&other)
        .output()
        .await
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("not a demo's") && said.contains("serve --data-dir"),
        "{said}"
    );
}

#[tokio::test]
async fn a_closed_standard_output_and_ctrl_c_end_the_demo_cleanly() {
    let tmpdir = tempfile::tempdir().unwrap();
    let port = crate::support::free_port().await;
    // Standard output is a pipe nobody reads: every write fails.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = Command::new(BINARY)
        .args(["demo", "--listen", &format!("127.0.0.1:{port}")])
        .env("TMPDIR", tmpdir.path())
        .env("SWITCHBOARD_LOG__FILTER", "info")
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // It logs that it is ready once it has printed (into the closed pipe).
    let mut logged = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = logged.next_line().await.unwrap() {
            if line.contains("the demo is ready") {
                return;
            }
            seen.push(line);
        }
        panic!("the demo exited while its output was closed: {seen:?}");
    })
    .await
    .expect("the demo starts within 30 s");
    tokio::spawn(async move { while let Ok(Some(_)) = logged.next_line().await {} });
    let health = reqwest::get(format!("http://127.0.0.1:{port}/health"))
        .await
        .unwrap();
    assert!(health.status().is_success());
    let status = stop(&mut child, "-INT").await;
    assert!(status.success(), "a clean exit after Ctrl-C: {status}");
    assert!(is_empty_dir(tmpdir.path()), "the temporary data is removed");
}
