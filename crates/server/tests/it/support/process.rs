//! The switchboard binary as a separate process, for tests that stop or kill it.

#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const BINARY: &str = env!("CARGO_BIN_EXE_switchboard");

/// A running `switchboard serve`.
pub struct ServerProcess {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// What it printed before it listened.
    pub printed: Vec<String>,
}

impl ServerProcess {
    /// Starts `serve` on a free port on this data directory with these
    /// environment settings, and waits (bounded) until it listens.
    pub async fn start(data_dir: &std::path::Path, env: &[(&str, &str)]) -> ServerProcess {
        Self::start_with_args(data_dir, env, &[]).await
    }

    /// [`ServerProcess::start`] with these arguments after `serve`.
    pub async fn start_with_args(
        data_dir: &std::path::Path,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> ServerProcess {
        let mut command = Command::new(BINARY);
        command
            .arg("serve")
            .args(args)
            .env("SWITCHBOARD_HTTP__LISTEN", "127.0.0.1:0")
            .env("SWITCHBOARD_DATA_DIR", data_dir)
            .env("SWITCHBOARD_LOG__FILTER", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("the binary starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut errors = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut printed = Vec::new();
        let base = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(address) = line.strip_prefix("switchboard is listening on ") {
                    return address.to_owned();
                }
                printed.push(line);
            }
            let mut complaints = Vec::new();
            while let Ok(Some(line)) = errors.next_line().await {
                complaints.push(line);
            }
            panic!("the server exited before listening; it printed {printed:?} and {complaints:?}");
        })
        .await
        .expect("the server listens within 30 s");
        // Keep draining its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        tokio::spawn(async move { while let Ok(Some(_)) = errors.next_line().await {} });
        ServerProcess {
            child,
            base,
            printed,
        }
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("still running").to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// SIGTERM, then waits (bounded) for the exit.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        self.signal("-TERM");
        tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("the server stops within 20 s of SIGTERM")
            .unwrap()
    }

    /// SIGKILL: no chance to clean up.
    pub async fn kill_hard(mut self) {
        self.signal("-KILL");
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}
