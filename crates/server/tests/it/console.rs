//! The web console in a real browser: Debian's Chromium driven by Playwright
//! for Python (both installed by `scripts/browser`, which names the Python
//! in `TEST_BROWSER_PYTHON`), against a real `switchboard demo` process and
//! its echo bot. The browser steps are in `tests/console/console_test.py`;
//! they write the README's screenshots to `docs/screenshots/`.

use std::time::Duration;

use crate::demo::Demo;
use tokio::process::Command;

/// Where the browser steps are, and where their screenshots go.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/console/console_test.py");
const SCREENSHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/screenshots");

#[tokio::test]
async fn a_person_chats_with_the_echo_bot_and_an_operator_replays_in_a_real_browser() {
    let python = std::env::var("TEST_BROWSER_PYTHON").expect(
        "TEST_BROWSER_PYTHON names the Python with Playwright: run ./scripts/test, which installs it",
    );
    let chromium = std::env::var("TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let tmpdir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&[], tmpdir.path()).await;

    // The demo prints links that sign people and the operator in.
    let base = demo.get("BASE").to_owned();
    for link in [
        format!("{base}/#token={}", demo.get("ALICE_TOKEN")),
        format!("{base}/#key={}", demo.get("COMPANY_KEY")),
    ] {
        assert!(
            demo.lines.iter().any(|line| line.contains(&link)),
            "the demo prints {link}: {:?}",
            demo.lines
        );
    }

    std::fs::create_dir_all(SCREENSHOTS).unwrap();
    let mut command = Command::new(python);
    command
        .arg(SCRIPT)
        .env("CHROMIUM", chromium)
        .env("SCREENSHOTS", SCREENSHOTS)
        .kill_on_drop(true);
    for name in [
        "BASE",
        "ALICE_TOKEN",
        "COMPANY_KEY",
        "CHANNEL",
        "BOT",
        "INTEGRATION",
    ] {
        command.env(name, demo.get(name));
    }
    let run = tokio::time::timeout(Duration::from_secs(240), command.output())
        .await
        .expect("the browser steps finish within 4 minutes")
        .expect("the browser steps start");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "the browser steps failed:\n{report}");
    demo.stop().await;
}
