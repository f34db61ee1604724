//! The SDK's example bots (`crates/bot-sdk/examples/`), run as the programs
//! a bot author copies: each one, started with only the environment its
//! docs name, answers a person's message in the channel — by webhook, over
//! the pull transport, and from an SQS queue (moto's server).
//!
//! `cargo test` and `cargo nextest` build every example with the tests; the
//! binaries are found beside this test binary (`target/<profile>/examples`).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::TestServer;
use crate::support::sqs::{self, Moto};
use tokio::process::{Child, Command};

/// The example's binary, built with this test binary.
fn example(name: &str) -> PathBuf {
    let test_binary = std::env::current_exe().unwrap();
    // target/<profile>/deps/it-… → target/<profile>/examples/<name>
    let path = test_binary
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} is not built: `cargo test` / `cargo nextest run` build the examples with the tests",
        path.display()
    );
    path
}

fn start(name: &str, env: &[(&str, &str)]) -> Child {
    Command::new(example(name))
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Alice writes `text`; waits (bounded) until the bot's `echo: text` is in
/// the channel, quoting her message.
async fn answered(server: &TestServer, token: &str, channel: &str, text: &str) {
    let sent = server.say(token, channel, text).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let messages = server.messages(token, channel).await;
        let answered = messages.iter().any(|message| {
            message["text"] == format!("echo: {text}")
                && message["quote"]["messageId"] == sent.as_str()
        });
        if answered {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no answer to `{text}` within 30 s: {messages:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (bounded) until something listens on `address`.
async fn listening(address: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(address).await.is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {address}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_webhook_example_bot_answers_a_person() {
    let server = TestServer::start().await;
    let (_, alice_token) = server.person("Alice").await;
    let (bot, bot_key) = server.bot("Example webhook bot").await;
    let port = crate::support::free_port().await;
    let address = format!("127.0.0.1:{port}");
    let (_, secret) = server
        .webhook(
            &bot,
            &format!("http://{address}/hook"),
            serde_json::json!({}),
        )
        .await;
    let mut bot_process = start(
        "echo-bot",
        &[
            ("SWITCHBOARD_SERVER", &server.base),
            ("SWITCHBOARD_BOT_KEY", &bot_key),
            ("SWITCHBOARD_SECRET", &secret),
            ("LISTEN", &address),
        ],
    );
    listening(&address).await;
    let channel = server.channel(&alice_token, &[&bot]).await;
    answered(&server, &alice_token, &channel, "hello webhook").await;
    bot_process.kill().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn the_pull_example_bot_answers_a_person_with_no_public_url() {
    let server = TestServer::start().await;
    let (_, alice_token) = server.person("Alice").await;
    let (bot, bot_key) = server.bot("Example pull bot").await;
    server.pull_integration(&bot).await;
    let mut bot_process = start(
        "pull-bot",
        &[
            ("SWITCHBOARD_SERVER", &server.base),
            ("SWITCHBOARD_BOT_KEY", &bot_key),
        ],
    );
    let channel = server.channel(&alice_token, &[&bot]).await;
    answered(&server, &alice_token, &channel, "hello pull").await;
    bot_process.kill().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn the_sqs_example_bot_answers_a_person_from_its_queue() {
    let server = TestServer::start().await;
    let moto = Moto::start().await;
    let queue = moto.create_queue("example-bot", &[]).await;
    let (_, alice_token) = server.person("Alice").await;
    let (bot, bot_key) = server.bot("Example SQS bot").await;
    server
        .sqs_integration(&bot, &queue, &moto.endpoint, serde_json::json!({}))
        .await;
    let mut bot_process = start(
        "sqs-bot",
        &[
            ("SWITCHBOARD_SERVER", &server.base),
            ("SWITCHBOARD_BOT_KEY", &bot_key),
            ("QUEUE_URL", &queue),
            ("AWS_REGION", sqs::REGION),
            ("AWS_ACCESS_KEY_ID", sqs::ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", sqs::SECRET_ACCESS_KEY),
            ("SQS_ENDPOINT", &moto.endpoint),
        ],
    );
    let channel = server.channel(&alice_token, &[&bot]).await;
    answered(&server, &alice_token, &channel, "hello queue").await;
    bot_process.kill().await.unwrap();
    server.stop().await;
}
