//! The admin commands against a real server: bots, integrations, the
//! delivery log and replay, as tables and as JSON; refusals name what went
//! wrong and exit non-zero; shell completions.

use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;

use crate::support::TestServer;
use crate::support::process::BINARY;

/// Runs `switchboard ARGS` against `server` with its company key:
/// (success, stdout, stderr).
async fn run(server: &TestServer, args: &[&str]) -> (bool, String, String) {
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new(BINARY)
            .args(args)
            .args(["--server", &server.base])
            .env("SWITCHBOARD_KEY", &server.company_key)
            .env("SWITCHBOARD_LOG__FILTER", "warn")
            .output(),
    )
    .await
    .expect("the command finishes")
    .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn json(server: &TestServer, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let (ok, printed, errors) = run(server, &args).await;
    assert!(ok, "{args:?}: {errors}");
    serde_json::from_str(&printed).unwrap_or_else(|_| panic!("{args:?} printed {printed}"))
}

#[tokio::test]
async fn operators_manage_bots_integrations_deliveries_and_replay_from_the_command_line() {
    let server = TestServer::start().await;
    let bot = json(&server, &["bots", "create", "--name", "CLI bot"]).await;
    let bot = bot["id"].as_str().unwrap().to_owned();
    let (ok, listed, _) = run(&server, &["bots", "list"]).await;
    assert!(ok);
    assert!(
        listed.starts_with("ID") && listed.contains("CLI bot") && listed.contains(&bot),
        "{listed}"
    );
    let (ok, key, _) = run(&server, &["bots", "new-key", "--bot", &bot]).await;
    assert!(ok && key.contains("bot key (shown once): "), "{key}");

    let created = json(
        &server,
        &["integrations", "create", "--bot", &bot, "--pull"],
    )
    .await;
    let integration = created["integration"]["integrationId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    let (ok, paused, _) = run(
        &server,
        &["integrations", "pause", "--bot", &bot, "--id", &integration],
    )
    .await;
    assert!(
        ok && paused.contains("paused") && paused.contains("pull"),
        "{paused}"
    );
    let (ok, resumed, _) = run(
        &server,
        &[
            "integrations",
            "resume",
            "--bot",
            &bot,
            "--id",
            &integration,
        ],
    )
    .await;
    assert!(ok && resumed.contains("active"), "{resumed}");
    let (ok, tested, _) = run(
        &server,
        &["integrations", "test", "--bot", &bot, "--id", &integration],
    )
    .await;
    assert!(ok && tested.starts_with("queued test event "), "{tested}");

    // The test event waits to be fetched: the log shows it pending.
    let (ok, log, _) = run(
        &server,
        &["deliveries", "--bot", &bot, "--id", &integration],
    )
    .await;
    assert!(
        ok && log.contains("integration:test") && log.contains("pending"),
        "{log}"
    );
    let (ok, dead, _) = run(
        &server,
        &[
            "deliveries",
            "--bot",
            &bot,
            "--id",
            &integration,
            "--status",
            "dead",
        ],
    )
    .await;
    assert!(ok && !dead.contains("integration:test"), "{dead}");
    let (ok, replayed, _) = run(
        &server,
        &[
            "replay",
            "--bot",
            &bot,
            "--id",
            &integration,
            "--since",
            "2020-01-01T00:00:00Z",
        ],
    )
    .await;
    assert!(ok && replayed.starts_with("queued "), "{replayed}");

    // People, their tokens, company keys.
    let (ok, made, _) = run(
        &server,
        &[
            "people",
            "create",
            "--name",
            "Carol",
            "--email",
            "carol+cli@example.com",
        ],
    )
    .await;
    assert!(ok && made.starts_with("created "), "{made}");
    let found = json(
        &server,
        &["people", "list", "--email", "carol+cli@example.com"],
    )
    .await;
    let carol = found["users"][0]["id"].as_str().unwrap().to_owned();
    let (ok, token, _) = run(&server, &["people", "new-token", "--user", &carol]).await;
    assert!(ok && token.contains("user token (shown once): "), "{token}");
    let (ok, key, _) = run(
        &server,
        &["company-keys", "create", "--name", "ci", "--read-only"],
    )
    .await;
    assert!(
        ok && key.contains("company key (shown once): wsk-v1-"),
        "{key}"
    );
    let (ok, keys, _) = run(&server, &["company-keys", "list"]).await;
    assert!(ok && keys.contains("ci") && keys.contains("true"), "{keys}");
    let company = json(&server, &["company-keys", "company"]).await;
    assert!(
        company["company"]["id"]
            .as_str()
            .unwrap()
            .starts_with("co_")
    );
    let (ok, shown, _) = run(&server, &["company-keys", "company"]).await;
    assert!(
        ok && shown.contains("NAME") && shown.contains("co_"),
        "{shown}"
    );

    // A refusal says what the server said, and fails.
    let (ok, _, errors) = run(&server, &["integrations", "list", "--bot", "usr_nobody"]).await;
    assert!(!ok);
    assert!(
        errors.contains("404 NotFoundException") && errors.contains("request"),
        "{errors}"
    );
    let completions = Command::new(BINARY)
        .args(["completions", "bash"])
        .output()
        .await
        .unwrap();
    let script = String::from_utf8_lossy(&completions.stdout);
    assert!(
        completions.status.success()
            && script.contains("_switchboard")
            && script.contains("integrations")
    );
    server.stop().await;
}
