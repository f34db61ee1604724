//! The commands for bot developers: `switchboard listen` forwards a bot's
//! live events from a real server to a local receiver, signed with the
//! local secret, over the pull transport, and the bot answers through the
//! API as usual; `switchboard trigger` posts signed sample events that the
//! Standard Webhooks library verifies.

use std::process::Stdio;
use std::time::Duration;

use switchboard_domain::credentials::new_webhook_secret;
use switchboard_protocol::signing::{verify_body, verify_standard};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{ChildStdout, Command};

use crate::support::TestServer;
use crate::support::process::BINARY;
use crate::support::receiver::Receiver;

/// Reads printed lines (bounded) until one has every one of `needles`.
async fn line_with(lines: &mut Lines<BufReader<ChildStdout>>, needles: &[&str]) -> String {
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if needles.iter().all(|needle| line.contains(needle)) {
                return line;
            }
        }
        panic!("listen stopped before printing {needles:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("listen printed no line with {needles:?}"))
}

#[tokio::test]
async fn listen_forwards_a_bots_live_events_signed_and_the_bot_answers_through_the_api() {
    let server = TestServer::start().await;
    let (_, alice) = server.person("Alice").await;
    let (bot, bot_key) = server.bot("Laptop bot").await;
    let channel = server.channel(&alice, &[&bot]).await;
    let receiver = Receiver::start().await;
    let secret = new_webhook_secret();
    let mut listen = Command::new(BINARY)
        .args([
            "listen",
            "--forward-to",
            &receiver.url,
            "--server",
            &server.base,
        ])
        .args(["--bot", &bot, "--secret", secret.expose()])
        .env("SWITCHBOARD_KEY", &server.company_key)
        .env("SWITCHBOARD_LOG__FILTER", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("listen starts");
    let mut lines = BufReader::new(listen.stdout.take().unwrap()).lines();
    line_with(&mut lines, &["made pull integration"]).await;
    line_with(&mut lines, &["Ctrl-C to stop"]).await;

    server.say(&alice, &channel, "hello, local bot").await;
    let received = receiver
        .wait_until("the message", Duration::from_secs(20), |all| {
            all.iter().any(|r| r.json["type"] == "chat:message:new")
        })
        .await;
    let event = received
        .iter()
        .find(|r| r.json["type"] == "chat:message:new")
        .unwrap();
    assert_eq!(event.json["data"]["message"]["text"], "hello, local bot");
    assert_eq!(
        event.header("webhook-id"),
        event.json["id"].as_str().unwrap()
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    verify_standard(
        &secret,
        event.header("webhook-id"),
        event.header("webhook-timestamp"),
        event.header("webhook-signature"),
        &event.body,
        now,
        300,
    )
    .expect("signed with the local secret");
    verify_body(&secret, &event.body, event.header("x-signature")).expect("x-signature");
    let line = line_with(&mut lines, &["chat:message:new", &channel, "200"]).await;
    assert!(line.ends_with(" ms"), "{line}");

    // The bot answers through the API; the acknowledged event is delivered.
    server.say(&bot_key, &channel, "hello, Alice").await;
    assert_eq!(server.message_count(&alice, &channel).await, 2);
    let integrations = server
        .get(
            &format!("/v2/users/bots/{bot}/integrations"),
            &server.company_key,
        )
        .await
        .expect(200);
    let integration = integrations["integrations"][0]["integrationId"]
        .as_str()
        .unwrap();
    let log = server
        .get(
            &format!("/v2/users/bots/{bot}/integrations/{integration}/deliveries?status=delivered"),
            &server.company_key,
        )
        .await
        .expect(200);
    assert!(!log["deliveries"].as_array().unwrap().is_empty(), "{log}");

    // A local bot that fails gets the event again.
    receiver.script(&[(500, None)]);
    server.say(&alice, &channel, "again").await;
    line_with(&mut lines, &["chat:message:new", "500"]).await;
    receiver
        .wait_until(
            "an event sent again after a 500",
            Duration::from_secs(20),
            |all| {
                all.iter().any(|one| {
                    all.iter()
                        .filter(|other| other.json["id"] == one.json["id"])
                        .count()
                        > 1
                })
            },
        )
        .await;
    listen.kill().await.unwrap();
    server.stop().await;
}

/// Runs `switchboard trigger` with these arguments: (success, stdout, stderr).
async fn trigger(args: &[&str]) -> (bool, String, String) {
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new(BINARY)
            .arg("trigger")
            .args(args)
            .env("SWITCHBOARD_LOG__FILTER", "warn")
            .output(),
    )
    .await
    .expect("trigger finishes")
    .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn trigger_posts_signed_samples_of_every_type_that_the_standard_webhooks_library_verifies() {
    let (listed, types, _) = trigger(&["--list"]).await;
    assert!(listed);
    let types: Vec<&str> = types.lines().collect();
    assert_eq!(types.len(), 12, "{types:?}");
    assert!(types.contains(&"chat:message:action") && types.contains(&"integration:test"));

    let receiver = Receiver::start().await;
    let secret = new_webhook_secret();
    for event_type in &types {
        let (sent, printed, errors) = trigger(&[
            event_type,
            "--to",
            &receiver.url,
            "--secret",
            secret.expose(),
        ])
        .await;
        assert!(sent, "{printed}{errors}");
        assert!(printed.contains("200 OK"), "{printed}");
    }
    let received = receiver.received();
    assert_eq!(received.len(), types.len());
    let moto_server = std::env::var("TEST_MOTO_SERVER")
        .expect("TEST_MOTO_SERVER names moto_server: run ./scripts/test, which installs it");
    let python = std::path::Path::new(&moto_server).with_file_name("python");
    for (delivery, event_type) in received.iter().zip(&types) {
        assert_eq!(delivery.json["type"], *event_type);
        assert_eq!(
            delivery.header("webhook-id"),
            delivery.json["id"].as_str().unwrap()
        );
        let headers = serde_json::json!({
            "webhook-id": delivery.header("webhook-id"),
            "webhook-timestamp": delivery.header("webhook-timestamp"),
            "webhook-signature": delivery.header("webhook-signature"),
        });
        let verified = Command::new(&python)
            .args([
                "-c",
                "import sys, json\nfrom standardwebhooks.webhooks import Webhook\n\
                 Webhook(sys.argv[1]).verify(sys.argv[2], json.loads(sys.argv[3]))\nprint('verified')",
                secret.expose(),
                std::str::from_utf8(&delivery.body).unwrap(),
                &headers.to_string(),
            ])
            .output()
            .await
            .unwrap();
        assert!(
            String::from_utf8_lossy(&verified.stdout).contains("verified"),
            "{event_type}: {}",
            String::from_utf8_lossy(&verified.stderr)
        );
        verify_body(&secret, &delivery.body, delivery.header("x-signature")).expect("x-signature");
    }

    // What is not 2xx, or not an event type, fails the command plainly.
    receiver.script(&[(500, Some("broken"))]);
    let (sent, printed, errors) = trigger(&["chat:message:new", "--to", &receiver.url]).await;
    assert!(!sent, "{printed}");
    assert!(
        printed.contains("signing secret") && printed.contains("500"),
        "{printed}"
    );
    assert!(errors.contains("answered 500"), "{errors}");
    let (sent, _, errors) = trigger(&["chat:nothing", "--to", &receiver.url]).await;
    assert!(!sent);
    assert!(errors.contains("is not an event type"), "{errors}");
}
