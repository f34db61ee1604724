//! The server under test: the release binary on a fresh SQLite file.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct Server {
    child: Child,
    pub base: String,
    pub company_key: String,
    _data: tempfile::TempDir,
}

/// A person's token, the channels they share with the bot, and the client.
pub struct Setup {
    pub token: String,
    pub channels: Vec<String>,
}

impl Server {
    pub async fn start(binary: &str, extra_env: &[(String, String)]) -> anyhow::Result<Server> {
        let data = tempfile::tempdir()?;
        let company_key = switchboard_domain::credentials::generate(
            switchboard_domain::credentials::CredentialKind::Company,
        )
        .reveal()
        .to_owned();
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .env("SWITCHBOARD_HTTP__LISTEN", "127.0.0.1:0")
            .env("SWITCHBOARD_DATA_DIR", data.path())
            .env("SWITCHBOARD_BOOTSTRAP__COMPANY_KEY", &company_key)
            .env("SWITCHBOARD_DELIVERY__ALLOW_TARGETS", "127.0.0.1/32")
            .env("SWITCHBOARD_HTTP__RATE_LIMIT_PER_SECOND", "0")
            .env("SWITCHBOARD_LOG__FILTER", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (key, value) in extra_env {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("could not start {binary}"))?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let base = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(address) = line.strip_prefix("switchboard is listening on ") {
                    return Ok(address.to_owned());
                }
            }
            anyhow::bail!("the server exited before listening")
        })
        .await
        .context("the server did not listen within 30 s")??;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Server {
            child,
            base,
            company_key,
            _data: data,
        })
    }

    /// The server's peak resident memory (VmHWM), in MiB.
    pub fn peak_memory_mib(&self) -> Option<f64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
    }

    async fn call(
        &self,
        client: &reqwest::Client,
        path: &str,
        key: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let response = client
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "{path} answered {}",
            response.status()
        );
        Ok(response.json().await?)
    }

    /// A person, a bot with this integration (the body of CreateIntegration),
    /// and `channels` channels of both.
    pub async fn prepare(
        &self,
        client: &reqwest::Client,
        integration: Value,
        channels: usize,
    ) -> anyhow::Result<Setup> {
        let key = self.company_key.clone();
        let person = self
            .call(client, "/v2/users", &key, json!({"name": "Bench person"}))
            .await?;
        let person = person["user"]["id"].as_str().context("user id")?.to_owned();
        let token = self
            .call(
                client,
                &format!("/v2/users/{person}/tokens"),
                &key,
                json!({}),
            )
            .await?;
        let token = token["token"].as_str().context("token")?.to_owned();
        let bot = self
            .call(client, "/v2/users/bots", &key, json!({"name": "Bench bot"}))
            .await?;
        let bot = bot["bot"]["id"].as_str().context("bot id")?.to_owned();
        self.call(
            client,
            &format!("/v2/users/bots/{bot}/integrations"),
            &key,
            integration,
        )
        .await?;
        let mut ids = Vec::with_capacity(channels);
        for index in 0..channels {
            let created = self
                .call(
                    client,
                    "/v2/conversations/channels",
                    &token,
                    json!({"subject": format!("bench {index}"), "members": [bot]}),
                )
                .await?;
            ids.push(
                created["channel"]["channelId"]
                    .as_str()
                    .context("channel id")?
                    .to_owned(),
            );
        }
        Ok(Setup {
            token,
            channels: ids,
        })
    }
}
