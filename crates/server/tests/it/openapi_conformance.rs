//! The server against its own OpenAPI document, by schemathesis (installed
//! from PyPI by `scripts/schemathesis`, named by `TEST_SCHEMATHESIS`): every
//! phase (examples, coverage, fuzzing, stateful) with a company key, a user
//! token and a bot key at once, each for a bounded time. A run fails on any
//! 5xx, any answer off the document (status, content type, headers, body
//! schema), any request the document admits that the server refuses, and
//! the authentication and use-after-delete checks.

use std::time::Duration;

use crate::support::TestServer;
use serde_json::json;
use tokio::process::Command;

/// How long schemathesis tests with each credential.
const BUDGET_SECONDS: u64 = 45;

/// A schemathesis hook module working around a CPython 3.11 bug (gh-106905,
/// "AST constructor recursion depth mismatch") that Hypothesis hits when it
/// parses a module's source to describe a lambda deep in a recursion. The
/// descriptions only name strategies in Hypothesis' own messages.
const HOOKS: &str = "import hypothesis.internal.lambda_sources as lambda_sources\n\
                     lambda_sources.lambda_description = lambda f: 'lambda'\n";

/// The checks a run does not fail on, of schemathesis' "all":
/// - `negative_data_rejection`: schemathesis' own mutations are not always
///   outside the schema (it took `0@0.com*` for a violation of the email
///   pattern, which it matches), and a request the server takes although the
///   document refuses it harms no client;
/// - `ensure_resource_availability`: it follows links it infers between
///   operations, and people and bots are both users with ids of one form, so
///   it takes the 404 of `DELETE /v2/users/bots/{botId}` for a person's id
///   (rightly: a person is not a bot) for "the created resource is gone".
const EXCLUDED_CHECKS: &str = "negative_data_rejection,ensure_resource_availability";

/// The operations schemathesis does not call: a person's live feed is a
/// stream that does not end, which it would wait on until its timeout (the
/// feed's answers, refusals included, are tested in `person_events`).
const EXCLUDED_PATH: &str = "/v2/conversations/events";

/// One schemathesis run with `key`; `settings` is its configuration file.
async fn schemathesis(server: &TestServer, who: &str, key: &str, settings: &str) -> (bool, String) {
    let program = std::env::var("TEST_SCHEMATHESIS").expect(
        "TEST_SCHEMATHESIS names schemathesis' `st`: run ./scripts/test, which installs it",
    );
    let directory = tempfile::tempdir().unwrap();
    let config = directory.path().join("schemathesis.toml");
    std::fs::write(&config, settings).unwrap();
    std::fs::write(directory.path().join("switchboard_hooks.py"), HOOKS).unwrap();
    let run = Command::new(program)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{}/openapi.json", server.base))
        .args(["--header", &format!("Authorization: Bearer {key}")])
        .args(["--checks", "all", "--exclude-checks", EXCLUDED_CHECKS])
        .args(["--exclude-path", EXCLUDED_PATH])
        .args(["--workers", "1", "--no-color"])
        .args(["--max-time", &BUDGET_SECONDS.to_string()])
        .args(["--request-timeout", "20"])
        .current_dir(directory.path())
        .env("PYTHONPATH", directory.path())
        .env("SCHEMATHESIS_HOOKS", "switchboard_hooks")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(BUDGET_SECONDS + 240), run)
        .await
        .unwrap_or_else(|_| panic!("schemathesis ({who}) ran past its budget"))
        .expect("schemathesis starts");
    let report = format!(
        "== schemathesis with {who}\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), report)
}

#[tokio::test]
async fn schemathesis_finds_every_answer_as_the_document_says() {
    let server = TestServer::start_with(|config| {
        // Nothing generated is delivered anywhere, and no request is
        // refused for its rate.
        config.delivery.enabled = false;
        config.http.rate_limit_per_second = 0;
    })
    .await;
    let (alice, alice_token) = server.person("Alice").await;
    let (bob, _) = server.person("Bob").await;
    let (bot, bot_key) = server.bot("Fuzz bot").await;
    let channel = server.channel(&alice_token, &[&bob, &bot]).await;
    server.say(&alice_token, &channel, "hello").await;
    server
        .webhook(&bot, "https://receiver.example/hook", json!({}))
        .await;
    // A company key acts in conversations as the person it names in
    // `userId`, and fetches the events of the bot it names in `botId`, as
    // the document says; schemathesis names Alice and the bot.
    let as_alice =
        format!("[parameters]\n\"query.userId\" = \"{alice}\"\n\"query.botId\" = \"{bot}\"\n");
    let (company, user, bot_run) = tokio::join!(
        schemathesis(&server, "a company key", &server.company_key, &as_alice),
        schemathesis(&server, "a user token", &alice_token, ""),
        schemathesis(&server, "a bot key", &bot_key, ""),
    );
    let failed: Vec<String> = [company, user, bot_run]
        .into_iter()
        .filter(|(passed, _)| !passed)
        .map(|(_, report)| report)
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
