//! The one typed configuration tree.
//!
//! Layers, later ones winning: built-in defaults → a TOML file
//! (`switchboard.toml`, or the one named by `--config`) → environment
//! variables `SWITCHBOARD_…` with `__` between levels
//! (`SWITCHBOARD_HTTP__LISTEN=0.0.0.0:8080`). Unknown keys are refused so a
//! typo cannot go unnoticed; [`Config::validate`] checks what types cannot.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use switchboard_delivery::TargetGuard;
use switchboard_domain::credentials::{self, CredentialKind};
use switchboard_domain::secret_box::SecretBox;

/// Everything the server can be told.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The HTTP listener.
    pub http: HttpConfig,
    /// Where the embedded database and local files live.
    pub data_dir: PathBuf,
    /// The database.
    pub database: DatabaseConfig,
    /// The first company, created on an empty database.
    pub bootstrap: BootstrapConfig,
    /// Event delivery to bots.
    pub delivery: DeliveryConfig,
    /// Files shared in channels.
    pub files: FilesConfig,
    /// How long the database keeps events, deliveries and messages.
    pub retention: RetentionConfig,
    /// Keys of the server itself.
    pub secrets: SecretsConfig,
    /// Logging.
    pub log: LogConfig,
}

/// `delivery.*`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Whether this process runs delivery workers.
    pub enabled: bool,
    /// Comma-separated CIDRs that deliveries may reach although they are
    /// private, loopback or link-local (`127.0.0.1/32,10.0.0.0/8`).
    pub allow_targets: String,
    /// Comma-separated delays between attempts (`5s,30s,2m,…`); after the last
    /// the event is dead-lettered. Integrations may set their own.
    pub retry_schedule: String,
    /// Each delay is varied randomly by up to this fraction (0–1).
    pub jitter: f64,
    /// Request timeout of a delivery (integrations may set 1–60 s).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// The longest `Retry-After` of a receiver that is honoured.
    #[serde(with = "humantime_serde")]
    pub max_retry_after: Duration,
    /// An integration that has only failed for this long is disabled.
    #[serde(with = "humantime_serde")]
    pub disable_after: Duration,
    /// Most deliveries in flight in this process.
    pub max_in_flight: usize,
    /// Most deliveries of one integration in flight (integrations may set
    /// their own). A delivery counts from its claim until its outcome is
    /// stored, a commit after the bot answers, so under load the count is
    /// above the requests the bot is actually serving: 16 let a bot in 64
    /// busy channels have only a few requests open while each message waited
    /// tens of milliseconds for a place (fixed 2,500/s: send-to-bot p50 26 ms
    /// with 16, 4.7 ms with 64, the API itself 4.4 ms). 64 is one busy
    /// channel each for a bot in 64 channels; a bot that must see fewer
    /// requests at once sets `maxInFlight`.
    pub max_in_flight_per_integration: u32,
    /// How long a claim holds a delivery's lane; extended every third of it
    /// while the send is in flight, so a crashed worker's deliveries are sent
    /// again within it (at least one second).
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// How often workers look for due deliveries when nothing wakes them.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Send several due events of one SQS queue in one `SendMessageBatch`
    /// (up to 10); off sends one `SendMessage` per event.
    pub sqs_batching: bool,
}

/// `retention.*`: each a duration such as `12h` or `7d`, counted from a
/// row's creation, or `off` to keep forever. An event is pruned whole, with
/// its deliveries and their attempts, and never while one of them is
/// pending. Why the defaults are what they are: README, "Retention".
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Events whose deliveries all reached their bots: their delivery log
    /// and the window a replay by time reaches back over.
    pub delivered: String,
    /// Events with a dead-lettered delivery (kept longer: they are what an
    /// operator comes back to, to replay once the bot is fixed).
    pub dead_letters: String,
    /// Chat messages with their reactions: the company's history.
    pub messages: String,
    /// Most events (or messages) one pruning transaction deletes.
    pub batch: u32,
}

/// `files.*`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    /// `local`: files under `files.directory`, uploaded to and served by this
    /// server; `s3`: an S3-compatible bucket (`files.s3`), uploaded to and
    /// downloaded from it directly with presigned URLs.
    pub backend: FilesBackend,
    /// Largest file in bytes; a larger upload is cut off.
    pub max_bytes: u64,
    /// How long an upload URL may be used (`15m`).
    #[serde(with = "humantime_serde")]
    pub upload_url_ttl: Duration,
    /// How long a download URL may be used (`10m`).
    #[serde(with = "humantime_serde")]
    pub download_url_ttl: Duration,
    /// `local`: where files are kept; unset means `files` in the data directory.
    pub directory: Option<PathBuf>,
    /// `s3`: the bucket.
    pub s3: S3FilesConfig,
}

/// See [`FilesConfig::backend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FilesBackend {
    Local,
    S3,
}

/// `files.s3.*`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct S3FilesConfig {
    /// The bucket (it must exist).
    pub bucket: String,
    pub region: String,
    /// Another S3-compatible service than AWS (`http://127.0.0.1:9000`);
    /// clients must be able to reach it too.
    pub endpoint_url: Option<String>,
    /// Address the bucket in the path (`host/bucket/key`), as most
    /// S3-compatible services need.
    pub force_path_style: bool,
    pub access_key_id: String,
    #[serde(serialize_with = "redacted")]
    pub secret_access_key: Option<SecretString>,
}

/// `secrets.*`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// The base64 of 32 bytes that seals integration secrets in the database.
    /// Unset: kept in `secret.key` in the data directory, made on first start.
    /// Every instance sharing a database needs the same key.
    #[serde(serialize_with = "redacted")]
    pub key: Option<SecretString>,
}

/// `http.*`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The address the API listens on (`127.0.0.1:8080`; port 0 picks a free port).
    pub listen: SocketAddr,
    /// How clients reach this server (`https://chat.example.com`): the file
    /// URLs it hands out start with it. Unset: `http://` and the listen address.
    pub public_url: Option<String>,
    /// Largest request body in bytes; larger ones answer 413.
    pub max_body_bytes: usize,
    /// Longest a request may take before it answers 503 (`30s`).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// How long shutdown waits for requests in flight (`10s`).
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Requests per second allowed per credential and operation, on average
    /// (0 turns rate limiting off).
    pub rate_limit_per_second: u32,
    /// Requests a credential may make at once to one operation before the
    /// average applies.
    pub rate_limit_burst: u32,
    /// API requests handled at once; beyond it a request is answered 503
    /// with `Retry-After` at once instead of waiting (which also bounds the
    /// changes waiting for the database). `/health` and `/metrics` are not
    /// counted.
    pub max_requests_in_flight: usize,
    /// Connections open at once; a connection beyond it is answered 503 and
    /// closed.
    pub max_connections: usize,
    /// How long a connection may take to send a request's headers, counted
    /// from when the server starts waiting for them: on a new connection, and
    /// on a kept-alive one after each answer, so it is also how long an idle
    /// kept-alive connection stays open (`10s`).
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
}

/// `database.*`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (the embedded default) or `postgres://USER@HOST:PORT/DB`
    /// (several instances sharing one database); unset means `switchboard.db`
    /// in the data directory.
    pub url: Option<String>,
    /// PostgreSQL: connections this instance keeps at most.
    pub max_connections: u32,
    /// PostgreSQL: how long a request waits for a connection before it fails
    /// with 503 (also while the database is down or restarting).
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// SQLite commit durability: `full` (fsync every commit) or `normal`
    /// (survives a process crash, may lose the last commits on power loss).
    pub sqlite_durability: SqliteDurability,
    /// SQLite reader connections.
    pub read_connections: u32,
}

/// See [`DatabaseConfig::sqlite_durability`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteDurability {
    Full,
    Normal,
}

/// `bootstrap.*`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapConfig {
    /// A fixed company key (`wsk-v1-` + 93 letters and digits) for the first
    /// company; unset means one is generated and printed once.
    #[serde(serialize_with = "redacted")]
    pub company_key: Option<SecretString>,
    /// The first company's name.
    pub company_name: String,
}

/// `log.*`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` for people, `json` for log collectors.
    pub format: LogFormat,
    /// A `tracing` filter such as `info,switchboard=debug`; `RUST_LOG` overrides it.
    pub filter: String,
}

/// See [`LogConfig::format`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

fn redacted<S: serde::Serializer>(
    value: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => serializer.serialize_some("[redacted]"),
        None => serializer.serialize_none(),
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http: HttpConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
                public_url: None,
                max_body_bytes: 256 * 1024,
                request_timeout: Duration::from_secs(30),
                shutdown_grace: Duration::from_secs(10),
                rate_limit_per_second: 100,
                rate_limit_burst: 200,
                max_requests_in_flight: 256,
                max_connections: 4096,
                header_read_timeout: Duration::from_secs(10),
            },
            data_dir: PathBuf::from("./switchboard-data"),
            database: DatabaseConfig {
                url: None,
                max_connections: 16,
                acquire_timeout: Duration::from_secs(5),
                sqlite_durability: SqliteDurability::Full,
                read_connections: 4,
            },
            bootstrap: BootstrapConfig {
                company_key: None,
                company_name: "My Company".to_owned(),
            },
            delivery: DeliveryConfig {
                enabled: true,
                allow_targets: String::new(),
                retry_schedule: "5s,30s,2m,10m,30m,1h,2h,4h,8h,8h".to_owned(),
                jitter: 0.2,
                timeout: Duration::from_secs(10),
                max_retry_after: Duration::from_secs(3_600),
                disable_after: Duration::from_secs(5 * 24 * 3_600),
                max_in_flight: 256,
                max_in_flight_per_integration: 64,
                lease: Duration::from_secs(10),
                poll_interval: Duration::from_secs(1),
                sqs_batching: true,
            },
            files: FilesConfig {
                backend: FilesBackend::Local,
                max_bytes: 100 * 1024 * 1024,
                upload_url_ttl: Duration::from_secs(15 * 60),
                download_url_ttl: Duration::from_secs(10 * 60),
                directory: None,
                s3: S3FilesConfig {
                    bucket: String::new(),
                    region: "us-east-1".to_owned(),
                    endpoint_url: None,
                    force_path_style: false,
                    access_key_id: String::new(),
                    secret_access_key: None,
                },
            },
            retention: RetentionConfig {
                delivered: "7d".to_owned(),
                dead_letters: "30d".to_owned(),
                messages: "off".to_owned(),
                batch: 500,
            },
            secrets: SecretsConfig { key: None },
            log: LogConfig {
                format: LogFormat::Text,
                filter: "info,sqlx=warn".to_owned(),
            },
        }
    }
}

/// Where the default configuration file is looked for.
pub const DEFAULT_FILE: &str = "switchboard.toml";

/// `SWITCHBOARD_…` variables that are not server settings: those of the
/// commands that talk to a server (`listen`), without the prefix.
pub const CLIENT_VARIABLES: &[&str] = &["server", "key"];

impl Config {
    /// Loads defaults, then `file` (or `switchboard.toml` when present), then
    /// the environment, and validates the result.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                anyhow::ensure!(
                    path.exists(),
                    "the configuration file {} does not exist",
                    path.display()
                );
                figment = figment.merge(Toml::file_exact(path));
            }
            None => figment = figment.merge(Toml::file(DEFAULT_FILE)),
        }
        Self::from_figment(
            figment.merge(
                Env::prefixed("SWITCHBOARD_")
                    .ignore(CLIENT_VARIABLES)
                    .split("__"),
            ),
        )
    }

    /// Extracts and validates a configuration from any set of layers.
    pub fn from_figment(figment: Figment) -> anyhow::Result<Config> {
        let config: Config = figment
            .extract()
            .map_err(|err| anyhow::anyhow!("invalid configuration: {}", describe(err)))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what the types cannot; each message names the field.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.http.max_body_bytes >= 1024,
            "invalid configuration: http.max_body_bytes must be at least 1024"
        );
        anyhow::ensure!(
            !self.http.request_timeout.is_zero(),
            "invalid configuration: http.request_timeout must be more than 0"
        );
        anyhow::ensure!(
            self.http.rate_limit_per_second == 0 || self.http.rate_limit_burst >= 1,
            "invalid configuration: http.rate_limit_burst must be at least 1"
        );
        anyhow::ensure!(
            self.database.read_connections >= 1,
            "invalid configuration: database.read_connections must be at least 1"
        );
        if let Some(url) = &self.database.url {
            anyhow::ensure!(
                url.starts_with("sqlite:")
                    || url.starts_with("postgres://")
                    || url.starts_with("postgresql://"),
                "invalid configuration: database.url must be sqlite://PATH or postgres://USER@HOST:PORT/DATABASE \
                 (got a URL of another kind)"
            );
        }
        anyhow::ensure!(
            self.http.max_requests_in_flight >= 1 && self.http.max_connections >= 1,
            "invalid configuration: http.max_requests_in_flight and http.max_connections must be at least 1"
        );
        anyhow::ensure!(
            !self.http.header_read_timeout.is_zero(),
            "invalid configuration: http.header_read_timeout must be more than 0"
        );
        anyhow::ensure!(
            self.database.max_connections >= 1,
            "invalid configuration: database.max_connections must be at least 1"
        );
        anyhow::ensure!(
            !self.database.acquire_timeout.is_zero(),
            "invalid configuration: database.acquire_timeout must be more than 0"
        );
        if let Some(key) = &self.bootstrap.company_key {
            credentials::from_configured(CredentialKind::Company, key.expose_secret()).map_err(
                |err| anyhow::anyhow!("invalid configuration: bootstrap.company_key {err}"),
            )?;
        }
        TargetGuard::parse_list(&self.delivery.allow_targets).map_err(|err| {
            anyhow::anyhow!("invalid configuration: delivery.allow_targets: {err}")
        })?;
        self.retry_schedule()?;
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.delivery.jitter),
            "invalid configuration: delivery.jitter must be between 0 and 1"
        );
        anyhow::ensure!(
            self.delivery.max_in_flight >= 1 && self.delivery.max_in_flight_per_integration >= 1,
            "invalid configuration: delivery.max_in_flight and delivery.max_in_flight_per_integration must be at least 1"
        );
        anyhow::ensure!(
            self.delivery.lease >= Duration::from_secs(1),
            "invalid configuration: delivery.lease must be at least one second"
        );
        anyhow::ensure!(
            !self.delivery.poll_interval.is_zero(),
            "invalid configuration: delivery.poll_interval must be more than 0"
        );
        self.validate_files()?;
        self.retention()?;
        anyhow::ensure!(
            (1..=10_000).contains(&self.retention.batch),
            "invalid configuration: retention.batch must be between 1 and 10000"
        );
        if let Some(key) = &self.secrets.key {
            SecretBox::from_base64(key.expose_secret())
                .map_err(|err| anyhow::anyhow!("invalid configuration: secrets.key: {err}"))?;
        }
        anyhow::ensure!(
            !self.bootstrap.company_name.trim().is_empty(),
            "invalid configuration: bootstrap.company_name must not be empty"
        );
        Ok(())
    }

    fn validate_files(&self) -> anyhow::Result<()> {
        if let Some(url) = &self.http.public_url {
            switchboard_domain::validation::url("http.public_url", url)
                .map_err(|err| anyhow::anyhow!("invalid configuration: {err}"))?;
            anyhow::ensure!(
                !url.contains(['?', '#']),
                "invalid configuration: http.public_url must have no query or fragment"
            );
        }
        let files = &self.files;
        anyhow::ensure!(
            files.max_bytes >= 1,
            "invalid configuration: files.max_bytes must be at least 1"
        );
        anyhow::ensure!(
            files.upload_url_ttl >= Duration::from_secs(1)
                && files.download_url_ttl >= Duration::from_secs(1),
            "invalid configuration: files.upload_url_ttl and files.download_url_ttl must be at least 1s"
        );
        // S3 presigned URLs live at most 7 days.
        anyhow::ensure!(
            files.upload_url_ttl <= Duration::from_secs(7 * 24 * 3600)
                && files.download_url_ttl <= Duration::from_secs(7 * 24 * 3600),
            "invalid configuration: files.upload_url_ttl and files.download_url_ttl must be at most 7 days"
        );
        if files.backend == FilesBackend::S3 {
            let s3 = &files.s3;
            anyhow::ensure!(
                !s3.bucket.trim().is_empty(),
                "invalid configuration: files.s3.bucket is needed when files.backend is s3"
            );
            anyhow::ensure!(
                !s3.access_key_id.trim().is_empty() && s3.secret_access_key.is_some(),
                "invalid configuration: files.s3.access_key_id and files.s3.secret_access_key are needed when files.backend is s3"
            );
            switchboard_domain::validation::aws_region("files.s3.region", &s3.region)
                .map_err(|err| anyhow::anyhow!("invalid configuration: {err}"))?;
            if let Some(endpoint) = &s3.endpoint_url {
                switchboard_domain::validation::url("files.s3.endpoint_url", endpoint)
                    .map_err(|err| anyhow::anyhow!("invalid configuration: {err}"))?;
            }
        }
        Ok(())
    }

    /// The directory of the local file store.
    pub fn files_directory(&self) -> PathBuf {
        self.files
            .directory
            .clone()
            .unwrap_or_else(|| self.data_dir.join("files"))
    }

    /// The delays of `delivery.retry_schedule`.
    pub fn retry_schedule(&self) -> anyhow::Result<Vec<Duration>> {
        let delays = self
            .delivery
            .retry_schedule
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                humantime_serde::re::humantime::parse_duration(part)
                    .ok()
                    .filter(|delay| !delay.is_zero())
                    .ok_or_else(|| anyhow::anyhow!(
                        "invalid configuration: delivery.retry_schedule: `{part}` is not a delay such as 100ms, 5s or 2h"
                    ))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(delays)
    }

    /// The windows of `retention.*`, in microseconds (`None`: kept forever).
    pub fn retention(&self) -> anyhow::Result<switchboard_store::Retention> {
        let window = |name: &str, text: &str| -> anyhow::Result<Option<i64>> {
            let text = text.trim();
            if text.eq_ignore_ascii_case("off") || text == "0" {
                return Ok(None);
            }
            humantime_serde::re::humantime::parse_duration(text)
                .ok()
                .filter(|window| !window.is_zero())
                .map(|window| Some(i64::try_from(window.as_micros()).unwrap_or(i64::MAX)))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "invalid configuration: retention.{name}: `{text}` is not a duration such as 12h or 7d, nor `off`"
                    )
                })
        };
        Ok(switchboard_store::Retention {
            delivered: window("delivered", &self.retention.delivered)?,
            dead_letters: window("dead_letters", &self.retention.dead_letters)?,
            messages: window("messages", &self.retention.messages)?,
        })
    }

    /// Whether `database.url` names a PostgreSQL database.
    pub fn uses_postgres(&self) -> bool {
        self.database
            .url
            .as_deref()
            .is_some_and(|url| url.starts_with("postgres://") || url.starts_with("postgresql://"))
    }

    /// The SQLite database file.
    pub fn sqlite_path(&self) -> PathBuf {
        match &self.database.url {
            Some(url) => switchboard_store_sqlite::SqliteOptions::from_url(url).path,
            None => self.data_dir.join("switchboard.db"),
        }
    }
}

fn describe(err: figment::Error) -> String {
    err.into_iter()
        .map(|err| {
            let path = err.path.join(".");
            let source = err
                .metadata
                .as_ref()
                .map(|metadata| format!(" (from {})", metadata.name))
                .unwrap_or_default();
            if path.is_empty() {
                format!("{}{source}", err.kind)
            } else {
                format!("{path}: {}{source}", err.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
#[allow(
    clippy::result_large_err,
    reason = "figment's Jail API returns its own error type"
)]
mod tests {
    use super::*;
    use figment::providers::Serialized;

    fn with(pairs: &[(&str, &str)]) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        for (key, value) in pairs {
            figment = figment.merge(Serialized::global(key, value));
        }
        Config::from_figment(figment)
    }

    #[test]
    fn defaults_are_valid() {
        let config = with(&[]).unwrap();
        assert_eq!(config.http.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(
            config.sqlite_path(),
            PathBuf::from("./switchboard-data/switchboard.db")
        );
    }

    #[test]
    fn environment_layers_name_the_field_on_error() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SWITCHBOARD_HTTP__LISTEN", "not-an-address");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("http.listen"), "{err}");
            jail.set_env("SWITCHBOARD_HTTP__LISTEN", "127.0.0.1:9999");
            jail.set_env("SWITCHBOARD_DATA_DIR", "/tmp/x");
            jail.set_env("SWITCHBOARD_HTTP__REQUEST_TIMEOUT", "5s");
            let config = Config::load(None).unwrap();
            assert_eq!(config.http.listen.port(), 9999);
            assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
            assert_eq!(config.http.request_timeout, Duration::from_secs(5));
            Ok(())
        });
    }

    #[test]
    fn file_layer_and_unknown_keys() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("switchboard.toml", "[http]\nlisten = \"127.0.0.1:7000\"\n")?;
            assert_eq!(Config::load(None).unwrap().http.listen.port(), 7000);
            jail.create_file("switchboard.toml", "[htp]\nlisten = \"127.0.0.1:7000\"\n")?;
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("htp"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn validation_names_the_field() {
        let err = with(&[("bootstrap.company_key", "wsk-v1-short")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bootstrap.company_key") && !err.contains("short"),
            "{err}"
        );
        let err = with(&[("database.url", "mysql://x")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("database.url"), "{err}");
        let err = with(&[("database.sqlite_durability", "sometimes")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("database.sqlite_durability"), "{err}");
        let err = with(&[("files.backend", "s3")]).unwrap_err().to_string();
        assert!(err.contains("files.s3.bucket"), "{err}");
        let err = with(&[("files.backend", "s3"), ("files.s3.bucket", "b")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("files.s3.secret_access_key"), "{err}");
        let err = with(&[("files.backend", "ftp")]).unwrap_err().to_string();
        assert!(err.contains("files.backend"), "{err}");
        let err = with(&[("http.public_url", "chat.example.com")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("http.public_url"), "{err}");
        let err = with(&[("files.upload_url_ttl", "0s")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("files.upload_url_ttl"), "{err}");
        let err = with(&[("retention.delivered", "a week")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("retention.delivered"), "{err}");
    }

    #[test]
    fn retention_windows_read_durations_and_off() {
        let defaults = with(&[]).unwrap().retention().unwrap();
        assert_eq!(defaults.delivered, Some(7 * 24 * 3_600 * 1_000_000));
        assert_eq!(defaults.dead_letters, Some(30 * 24 * 3_600 * 1_000_000));
        assert_eq!(defaults.messages, None);
        let set = with(&[
            ("retention.delivered", "250ms"),
            ("retention.dead_letters", "0"),
            ("retention.messages", "90d"),
        ])
        .unwrap()
        .retention()
        .unwrap();
        assert_eq!(set.delivered, Some(250_000));
        assert_eq!(set.dead_letters, None);
        assert_eq!(set.messages, Some(90 * 24 * 3_600 * 1_000_000));
    }
}
