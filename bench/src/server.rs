//! The server under test: the release binary, on a fresh SQLite file, or on
//! a fresh PostgreSQL database (created here, migrated with `switchboard
//! migrate`, dropped after) with one or several instances sharing it.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Where the server keeps its data.
#[derive(Clone, Debug)]
pub enum Backend {
    /// A SQLite file with this durability (`full` or `normal`).
    Sqlite { durability: String },
    /// A fresh database on this PostgreSQL server (`postgres://user@host:port`),
    /// shared by `instances` server processes.
    Postgres { server: String, instances: usize },
}

impl Backend {
    pub fn describe(&self) -> String {
        match self {
            Backend::Sqlite { durability } => format!("SQLite ({durability} durability)"),
            Backend::Postgres { instances, .. } => format!(
                "PostgreSQL, {instances} instance{}",
                if *instances == 1 { "" } else { "s" }
            ),
        }
    }
}

pub struct Server {
    children: Vec<Child>,
    /// Every instance's base URL; requests are spread over them.
    pub bases: Vec<String>,
    pub company_key: String,
    /// The PostgreSQL server and the database to drop at the end.
    database: Option<(String, String)>,
    data: tempfile::TempDir,
    /// How the instances were started, to start one again.
    binary: String,
    env: Vec<(String, String)>,
}

/// A person's token, the channels they share with the bot, and the client.
pub struct Setup {
    pub token: String,
    pub channels: Vec<String>,
}

impl Server {
    pub async fn start(
        binary: &str,
        backend: &Backend,
        extra_env: &[(String, String)],
    ) -> anyhow::Result<Server> {
        let data = tempfile::tempdir()?;
        let company_key = switchboard_domain::credentials::generate(
            switchboard_domain::credentials::CredentialKind::Company,
        )
        .reveal()
        .to_owned();
        let mut env: Vec<(String, String)> = vec![
            (
                "SWITCHBOARD_BOOTSTRAP__COMPANY_KEY".into(),
                company_key.clone(),
            ),
            (
                "SWITCHBOARD_DELIVERY__ALLOW_TARGETS".into(),
                "127.0.0.1/32".into(),
            ),
            ("SWITCHBOARD_HTTP__RATE_LIMIT_PER_SECOND".into(), "0".into()),
            ("SWITCHBOARD_LOG__FILTER".into(), "warn".into()),
            (
                "SWITCHBOARD_SECRETS__KEY".into(),
                switchboard_domain::secret_box::SecretBox::generate_key(),
            ),
        ];
        let (instances, database) = match backend {
            Backend::Sqlite { durability } => {
                env.push((
                    "SWITCHBOARD_DATABASE__SQLITE_DURABILITY".into(),
                    durability.clone(),
                ));
                (1, None)
            }
            Backend::Postgres { server, instances } => {
                let name = format!("switchboard_bench_{}", std::process::id());
                psql(
                    server,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                )?;
                psql(server, &format!("CREATE DATABASE {name}"))?;
                env.push((
                    "SWITCHBOARD_DATABASE__URL".into(),
                    format!("{server}/{name}"),
                ));
                let migrated = std::process::Command::new(binary)
                    .arg("migrate")
                    .envs(env.iter().map(|(k, v)| (k, v)))
                    .env("SWITCHBOARD_DATA_DIR", data.path())
                    .status()?;
                anyhow::ensure!(migrated.success(), "switchboard migrate failed");
                (*instances, Some((server.clone(), name)))
            }
        };
        env.extend(extra_env.iter().cloned());
        let mut children = Vec::new();
        let mut bases = Vec::new();
        for instance in 0..instances.max(1) {
            let dir = data.path().join(format!("instance-{instance}"));
            std::fs::create_dir_all(&dir)?;
            let (child, base) = spawn(binary, &dir, &env).await?;
            children.push(child);
            bases.push(base);
        }
        Ok(Server {
            children,
            bases,
            company_key,
            database,
            data,
            binary: binary.to_owned(),
            env,
        })
    }

    /// The first instance's base URL (setup and metrics go there).
    pub fn base(&self) -> &str {
        &self.bases[0]
    }

    /// The largest peak resident memory (VmHWM) among the instances, in MiB.
    pub fn peak_memory_mib(&self) -> Option<f64> {
        self.children
            .iter()
            .filter_map(|child| {
                let pid = child.id()?;
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
                let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
                let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
                Some(kib / 1024.0)
            })
            .reduce(f64::max)
    }

    /// The CPU time used so far, in seconds, by the instances and, on
    /// PostgreSQL, by the database's processes serving this database (its
    /// connections' backends; the server's background processes are left
    /// out). A difference of two readings over the messages of a scenario
    /// is its CPU per message, which CPU stolen by other tenants of a shared
    /// machine does not lower as it lowers a rate.
    pub fn cpu_seconds(&self) -> f64 {
        let mut pids: Vec<u32> = self.children.iter().filter_map(Child::id).collect();
        if let Some((server, name)) = &self.database {
            pids.extend(backend_pids(server, name));
        }
        pids.into_iter().filter_map(process_cpu_seconds).sum()
    }

    /// The first instance's resident memory now (VmRSS), in MiB.
    pub fn memory_mib(&self) -> Option<f64> {
        let pid = self.children.first()?.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    /// On SQLite, the bytes of the database file and of its WAL.
    pub fn sqlite_bytes(&self) -> Option<(u64, u64)> {
        if self.database.is_some() {
            return None;
        }
        let dir = self.data.path().join("instance-0");
        let size = |name: &str| std::fs::metadata(dir.join(name)).map_or(0, |m| m.len());
        Some((size("switchboard.db"), size("switchboard.db-wal")))
    }

    /// A value of the first instance's `/metrics` (see [`metric`]).
    pub async fn metric(&self, name: &str) -> Option<f64> {
        metric(self.base(), name).await
    }

    /// SIGKILL to the (one) instance; it has exited when this returns.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.children.len() == 1, "a restart needs one instance");
        let mut child = self.children.remove(0);
        child.kill().await?;
        Ok(())
    }

    /// Starts the instance killed by [`Server::kill`] again, on its data and
    /// with its settings (its base URL changes).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        let (child, base) = spawn(
            &self.binary,
            &self.data.path().join("instance-0"),
            &self.env,
        )
        .await?;
        self.children.push(child);
        self.bases = vec![base];
        Ok(())
    }

    pub async fn stop(mut self) {
        for child in &self.children {
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
        }
        for child in &mut self.children {
            let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
        }
        if let Some((server, name)) = &self.database {
            let _ = psql(
                server,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
        }
    }

    async fn call(
        &self,
        client: &reqwest::Client,
        path: &str,
        key: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let response = client
            .post(format!("{}{path}", self.base()))
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
        integration: Option<Value>,
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
        let bot = bot["id"].as_str().context("bot id")?.to_owned();
        if let Some(integration) = integration {
            self.call(
                client,
                &format!("/v2/users/bots/{bot}/integrations"),
                &key,
                integration,
            )
            .await?;
        }
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

/// Starts one `serve` process and waits (bounded) until it listens.
async fn spawn(
    binary: &str,
    data_dir: &std::path::Path,
    env: &[(String, String)],
) -> anyhow::Result<(Child, String)> {
    let mut command = Command::new(binary);
    command
        .arg("serve")
        .env("SWITCHBOARD_HTTP__LISTEN", "127.0.0.1:0")
        .env("SWITCHBOARD_DATA_DIR", data_dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
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
    Ok((child, base))
}

/// The backends of the connections to database `name` (none when psql
/// cannot tell).
fn backend_pids(server: &str, name: &str) -> Vec<u32> {
    let query = format!("SELECT pid FROM pg_stat_activity WHERE datname = '{name}'");
    psql(server, &query)
        .map(|pids| {
            pids.lines()
                .filter_map(|line| line.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Writes every file's pending data to disk (`sync`), so that what one
/// scenario left in the page cache (a database of hundreds of MiB, deleted
/// or not) is not written back while the next one measures: straight after
/// the throughput scenario, the fixed 5,000/s run's p99 was 0.2-1.2 s instead
/// of 50-120 ms. A `sync` that cannot run is skipped.
pub fn flush_disk_writes() {
    let _ = std::process::Command::new("sync").status();
}

/// CPU time the machine's cores had taken away by the hypervisor so far
/// (the `steal` column of `/proc/stat`'s `cpu` line, in 100 ticks a second,
/// summed over cores), in seconds; 0 where the kernel does not say.
pub fn machine_stolen_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0.0;
    };
    stat.lines()
        .find(|line| line.starts_with("cpu "))
        .and_then(|line| line.split_whitespace().nth(8))
        .and_then(|ticks| ticks.parse::<f64>().ok())
        .map_or(0.0, |ticks| ticks / 100.0)
}

/// A process's user and system CPU time, in seconds (`/proc/PID/stat`, in
/// the kernel's 100 ticks a second), or `None` once it is gone.
fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses: the
    // state is the first of them, user time the 12th and system time the 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / 100.0)
}

/// Runs one statement on the PostgreSQL server's `postgres` database; what
/// it printed (its messages go to the harness's stderr).
fn psql(server: &str, statement: &str) -> anyhow::Result<String> {
    let output = std::process::Command::new("psql")
        .arg(format!("{server}/postgres"))
        .args(["-Atqc", statement])
        .stderr(Stdio::inherit())
        .output()
        .context("could not run psql")?;
    anyhow::ensure!(output.status.success(), "psql failed: {statement}");
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A value of the `/metrics` of the instance at `base`: that of the first
/// line that starts with `name`.
pub async fn metric(base: &str, name: &str) -> Option<f64> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|line| line.starts_with(name))?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}
