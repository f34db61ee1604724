//! The command line as an operator meets it: a failed first start keeps the
//! bootstrap key for the next, a lost company key is replaced from the
//! command line, flags win over the environment, and start-up errors are one
//! clear line.

use std::time::Duration;

use crate::support::TestServer;
use crate::support::process::{BINARY, ServerProcess};
use tokio::process::Command;

/// Runs the binary with `args` on `data_dir` (bounded) and returns (success,
/// standard output, standard error).
async fn run(
    args: &[&str],
    data_dir: &std::path::Path,
    env: &[(&str, String)],
) -> (bool, String, String) {
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new(BINARY)
            .args(args)
            .env("SWITCHBOARD_DATA_DIR", data_dir)
            .env("SWITCHBOARD_LOG__FILTER", "warn")
            .envs(env.iter().map(|(key, value)| (*key, value.as_str())))
            .output(),
    )
    .await
    .expect("the command ends within 30 s")
    .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn printed_key(text: &str) -> String {
    text.split_whitespace()
        .find(|word| word.starts_with("wsk-v1-"))
        .unwrap_or_else(|| panic!("no company key in {text:?}"))
        .to_owned()
}

#[tokio::test]
async fn a_failed_first_start_creates_nothing_and_the_next_start_shows_the_key() {
    let data_dir = tempfile::tempdir().unwrap();
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let (started, stdout, stderr) = run(
        &["serve", "--listen", &address],
        data_dir.path(),
        &[("RUST_BACKTRACE", "1".to_owned())],
    )
    .await;
    assert!(!started);
    assert!(!stdout.contains("wsk-v1-"), "no key for nothing: {stdout}");
    assert!(
        stderr.contains(&format!("could not listen on {address}")),
        "{stderr}"
    );
    assert_eq!(
        stderr
            .lines()
            .filter(|line| line.starts_with("error: "))
            .count(),
        1,
        "one line says why: {stderr}"
    );
    assert!(!stderr.to_lowercase().contains("backtrace"), "{stderr}");
    let (_, companies, _) = run(&["company", "list"], data_dir.path(), &[]).await;
    assert!(companies.contains("no company yet"), "{companies}");
    drop(taken);

    let server = ServerProcess::start(data_dir.path(), &[]).await;
    let key = printed_key(&server.printed.join("\n"));
    let users = reqwest::Client::new()
        .get(format!("{}/v2/users", server.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        users.status(),
        200,
        "the key shown on the second start works"
    );
    assert!(server.terminate().await.success());
}

#[tokio::test]
async fn a_lost_company_key_is_replaced_from_the_command_line() {
    let server = TestServer::start().await;
    let env = server.database_env();
    let dir = server.data_dir.path();
    let (listed, companies, stderr) = run(&["company", "list"], dir, &env).await;
    assert!(listed, "{stderr}");
    let company = companies
        .split_whitespace()
        .next()
        .expect("a company is listed")
        .to_owned();
    assert!(companies.contains("Test Company"), "{companies}");

    // With one company, --company may be left out.
    let (made, printed, stderr) = run(&["company", "new-key"], dir, &env).await;
    assert!(made, "{stderr}");
    let key = printed_key(&printed);
    assert!(printed.contains(&company), "{printed}");
    let users = server.get("/v2/users", &key).await;
    assert_eq!(users.status, 200, "the new key works at once");

    // With two, the command asks which; an unknown id is named.
    server.second_company().await;
    let (made, _, stderr) = run(&["company", "new-key"], dir, &env).await;
    assert!(!made);
    assert!(stderr.contains("--company"), "{stderr}");
    let (made, _, stderr) = run(
        &["company", "new-key", "--company", "cmp_unknown"],
        dir,
        &env,
    )
    .await;
    assert!(!made);
    assert!(stderr.contains("cmp_unknown"), "{stderr}");
    let (made, printed, stderr) = run(
        &["company", "new-key", "--company", &company, "--name", "ops"],
        dir,
        &env,
    )
    .await;
    assert!(made, "{stderr}");
    let keys = server
        .get("/v2/company/keys", &printed_key(&printed))
        .await
        .expect(200);
    assert!(
        keys.to_string().contains("\"ops\""),
        "the key is listed by its name: {keys}"
    );
}

#[tokio::test]
async fn serve_flags_win_over_the_environment() {
    let flagged = tempfile::tempdir().unwrap();
    let from_env = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_with_args(
        from_env.path(),
        &[],
        &["--data-dir", flagged.path().to_str().unwrap()],
    )
    .await;
    assert!(flagged.path().join("switchboard.db").exists());
    assert!(!from_env.path().join("switchboard.db").exists());
    assert!(server.terminate().await.success());
}

#[tokio::test]
async fn on_postgres_an_unreachable_database_is_named_in_one_line() {
    let data_dir = tempfile::tempdir().unwrap();
    let port = crate::support::free_port().await;
    let (started, _, stderr) = run(
        &["serve"],
        data_dir.path(),
        &[
            (
                "SWITCHBOARD_DATABASE__URL",
                format!("postgres://postgres@127.0.0.1:{port}/nowhere"),
            ),
            ("SWITCHBOARD_DATABASE__ACQUIRE_TIMEOUT", "2s".to_owned()),
            ("RUST_BACKTRACE", "1".to_owned()),
        ],
    )
    .await;
    assert!(!started);
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}")) && stderr.contains("is it running"),
        "{stderr}"
    );
    assert!(!stderr.contains("pool timed out"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}

#[tokio::test]
async fn on_postgres_a_wrong_role_is_said_once() {
    let server = switchboard_store_postgres::test_database::server_url();
    let data_dir = tempfile::tempdir().unwrap();
    let url = format!(
        "{}/postgres",
        server.replacen("://postgres@", "://no_such_role@", 1)
    );
    let (started, _, stderr) = run(
        &["serve"],
        data_dir.path(),
        &[("SWITCHBOARD_DATABASE__URL", url)],
    )
    .await;
    assert!(!started);
    assert_eq!(
        stderr
            .matches("role \"no_such_role\" does not exist")
            .count(),
        1,
        "{stderr}"
    );
}

#[tokio::test]
async fn a_sigterm_right_after_the_ready_line_stops_the_server_gracefully() {
    let data_dir = tempfile::tempdir().unwrap();
    // The signal handlers are in place before the line is printed; a signal
    // sent at once must never find the default action (death by SIGTERM).
    for _ in 0..10 {
        let server = ServerProcess::start(data_dir.path(), &[]).await;
        let status = server.terminate().await;
        assert!(status.success(), "{status}");
    }
}
