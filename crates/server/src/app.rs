//! Wiring: open the store, bootstrap, serve the API until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use switchboard_delivery::{
    DispatchSettings, IdleReporter, IdleWatch, RetryPolicy, SqsSettings, SqsTransport, TargetGuard,
    Transports, WebhookTransport,
};
use switchboard_domain::secret_box::SecretBox;
use switchboard_files::{
    FileSettings, Files, LocalDisk, ObjectStorage, S3Settings, S3Storage, UrlSigner,
};
use switchboard_http_api::rate_limit::{RateLimitSettings, RateLimits};
use switchboard_http_api::{ApiLimits, AppState};
use switchboard_store::Store;
use switchboard_store_postgres::{MigrationPolicy, PgOptions, PgStore};
use switchboard_store_sqlite::{Durability, SqliteOptions, SqliteStore};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::bootstrap::{self, Bootstrap};
use crate::config::{Config, FilesBackend, SqliteDurability};

/// How often expired idempotency keys and typing indicators are purged.
const PURGE_INTERVAL: Duration = Duration::from_secs(600);

/// What opening the database is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// `switchboard migrate`: apply migrations.
    Migrate,
    /// Administering: on PostgreSQL the schema must already be this build's
    /// (`switchboard migrate` first); the embedded SQLite default migrates
    /// itself.
    Use,
    /// Serving: as [`Purpose::Use`], and on SQLite the server holds the file
    /// alone (a second server on it is refused) and releases the delivery
    /// leases left by the process before it.
    Serve,
}

/// The configured database.
#[derive(Clone, Debug)]
pub enum Database {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Database {
    /// The store behind the API and the delivery workers.
    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            Database::Sqlite(store) => Arc::new(store.clone()),
            Database::Postgres(store) => Arc::new(store.clone()),
        }
    }

    /// Closes every connection.
    pub async fn close(&self) {
        match self {
            Database::Sqlite(store) => store.close().await,
            Database::Postgres(store) => store.close().await,
        }
    }
}

/// Opens the configured database: SQLite (migrated at open) or PostgreSQL
/// (migrated only for [`Purpose::Migrate`], else checked).
pub async fn open_database(config: &Config, purpose: Purpose) -> anyhow::Result<Database> {
    if config.uses_postgres() {
        let url = config.database.url.clone().unwrap_or_default();
        let options = PgOptions {
            url,
            max_connections: config.database.max_connections,
            acquire_timeout: config.database.acquire_timeout,
        };
        let policy = match purpose {
            Purpose::Migrate => MigrationPolicy::Apply,
            Purpose::Use | Purpose::Serve => MigrationPolicy::Require,
        };
        let store = switchboard_store_postgres::open(&options, policy)
            .await
            .map_err(|err| anyhow::anyhow!(switchboard_domain::error_chain(&err)))
            .context("could not open the PostgreSQL database (database.url)")?;
        return Ok(Database::Postgres(store));
    }
    let mut options = SqliteOptions::new(config.sqlite_path());
    options.durability = match config.database.sqlite_durability {
        SqliteDurability::Full => Durability::Full,
        SqliteDurability::Normal => Durability::Normal,
    };
    options.read_connections = config.database.read_connections;
    options.serve = purpose == Purpose::Serve;
    let store = switchboard_store_sqlite::open(&options)
        .await
        .with_context(|| format!("could not open the database {}", options.path.display()))?;
    Ok(Database::Sqlite(store))
}

/// A server running in this process.
pub struct RunningServer {
    /// The address it listens on (the real port when port 0 was asked for).
    pub addr: SocketAddr,
    /// What bootstrapping did on start.
    pub bootstrap: Bootstrap,
    /// The store it serves, for callers that prepare data (the demo).
    pub store: Arc<dyn Store>,
    /// Whether its delivery workers are idle (`None` when `delivery.enabled`
    /// is off).
    deliveries: Option<IdleWatch>,
    stop: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// Completes once this server's delivery workers have attempted every
    /// delivery due by now (and any retry due within `horizon`) and stored
    /// each outcome: what a caller needs before it reads the delivery log or
    /// shows that something was not delivered. Completes at once when this
    /// server runs no workers; never completes while another instance holds
    /// a lease this one waits on, so bound it with a timeout.
    pub async fn deliveries_settled(&self, horizon: Duration) {
        if let Some(deliveries) = &self.deliveries {
            deliveries.settled(horizon).await;
        }
    }

    /// Asks the server to stop and waits until it has.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.task.await.context("the server task failed")?
    }

    /// Waits until the server stops by itself or `signal` completes, then stops it.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
        let stop = self.stop.clone();
        let mut task = self.task;
        tokio::select! {
            result = &mut task => return result.context("the server task failed")?,
            () = signal => {}
        }
        tracing::info!("shutting down");
        let _ = stop.send(true);
        task.await.context("the server task failed")?
    }
}

/// Opens the store, binds the listener, checks the file storage, then
/// bootstraps and serves in a task. Bootstrapping comes last of all that can
/// fail, so an empty database never gets a first company whose generated key
/// a failed start could not show.
pub async fn start(config: &Config) -> anyhow::Result<RunningServer> {
    let database = open_database(config, Purpose::Serve).await?;
    let shared = database.store();
    let listener = TcpListener::bind(config.http.listen)
        .await
        .with_context(|| listen_failure(config.http.listen))?;
    let addr = listener.local_addr()?;
    let secrets = load_secret_box(config)?;
    let files = open_files(config, &secrets, addr).await?;
    let state = AppState::new(
        shared.clone(),
        ApiLimits {
            max_body_bytes: config.http.max_body_bytes,
            request_timeout: config.http.request_timeout,
            transfer_timeout: config
                .files
                .upload_url_ttl
                .max(config.files.download_url_ttl),
            rate_limit: RateLimitSettings {
                per_second: config.http.rate_limit_per_second,
                burst: config.http.rate_limit_burst,
            },
            max_requests_in_flight: config.http.max_requests_in_flight,
        },
        secrets.clone(),
        crate::telemetry::metrics(),
        files,
    );
    let rate_limits = state.rate_limits.clone();
    let feeds = state.feeds.clone();
    let app = switchboard_http_api::router(state);
    let (stop, mut stopped) = watch::channel(false);
    let grace = config.http.shutdown_grace;
    let connection_limits = crate::http_server::ConnectionLimits {
        max_connections: config.http.max_connections,
        header_read_timeout: config.http.header_read_timeout,
    };
    let (workers, deliveries) = if config.delivery.enabled {
        let (idle, deliveries) = switchboard_delivery::idle_signal(shared.outbox_signal());
        let workers = delivery_workers(config, shared.clone(), secrets, idle, stop.subscribe())?;
        (Some(workers), Some(deliveries))
    } else {
        (None, None)
    };
    let pruning = crate::retention::Pruning {
        rules: config.retention()?,
        batch: config.retention.batch,
    };
    let bootstrap = bootstrap::run(shared.as_ref(), &config.bootstrap).await?;
    let workers = workers.map(tokio::spawn);
    let janitor = tokio::spawn(purge_periodically(
        shared.clone(),
        rate_limits,
        stop.subscribe(),
    ));
    let pruner = tokio::spawn(crate::retention::prune_continuously(
        shared.clone(),
        pruning,
        stop.subscribe(),
    ));
    let task = tokio::spawn(async move {
        let mut graceful = stopped.clone();
        let serve = tokio::spawn(crate::http_server::serve(
            listener,
            app,
            connection_limits,
            async move {
                let _ = graceful.wait_for(|stop| *stop).await;
            },
        ));
        let _ = stopped.wait_for(|stop| *stop).await;
        feeds.close();
        match tokio::time::timeout(grace, serve).await {
            Ok(result) => result.context("the HTTP server panicked")?,
            Err(_) => tracing::warn!(
                ?grace,
                "requests still running after the shutdown grace period"
            ),
        }
        janitor.abort();
        pruner.abort();
        if let Some(workers) = workers {
            let _ = workers.await;
        }
        database.close().await;
        tracing::info!("stopped");
        Ok(())
    });
    tracing::info!(%addr, "listening");
    Ok(RunningServer {
        addr,
        bootstrap,
        store: shared,
        deliveries,
        stop,
        task,
    })
}

/// What to say when the listener cannot be bound.
fn listen_failure(addr: SocketAddr) -> String {
    format!(
        "could not listen on {addr} (http.listen, or --listen): is another server using that \
         port? Stop it or choose another address"
    )
}

/// The configured file storage, checked to be usable, with URLs signed by a
/// key derived from the server's secret key (so every instance sharing that
/// key accepts the others' URLs).
async fn open_files(
    config: &Config,
    secrets: &SecretBox,
    addr: SocketAddr,
) -> anyhow::Result<Files> {
    let public_url = match &config.http.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            if addr.ip().is_unspecified() {
                tracing::warn!(%addr, "http.public_url is unset while listening on every interface;                     file URLs will name this unspecified address, so set http.public_url");
            }
            format!("http://{addr}")
        }
    };
    let signer = UrlSigner::new(&secrets.derive_key("file-urls"));
    let settings = &config.files;
    let storage: Arc<dyn ObjectStorage> = match settings.backend {
        FilesBackend::Local => {
            let directory = config.files_directory();
            Arc::new(
                LocalDisk::open(&directory, signer.clone(), &public_url)
                    .await
                    .with_context(|| {
                        format!(
                            "could not open the file store {} (files.directory)",
                            directory.display()
                        )
                    })?,
            )
        }
        FilesBackend::S3 => {
            let s3 = &settings.s3;
            Arc::new(S3Storage::new(&S3Settings {
                bucket: s3.bucket.clone(),
                region: s3.region.clone(),
                endpoint_url: s3.endpoint_url.clone(),
                force_path_style: s3.force_path_style,
                access_key_id: s3.access_key_id.clone(),
                secret_access_key: s3.secret_access_key.clone().unwrap_or_default(),
            }))
        }
    };
    storage
        .check()
        .await
        .map_err(|err| anyhow::anyhow!("the file storage cannot be used (files.*): {err}"))?;
    Ok(Files::new(
        storage,
        signer,
        &public_url,
        FileSettings {
            max_bytes: settings.max_bytes,
            upload_url_ttl: settings.upload_url_ttl,
            download_url_ttl: settings.download_url_ttl,
        },
    ))
}

/// The delivery workers, ready to run until `stop`.
fn delivery_workers(
    config: &Config,
    store: Arc<dyn Store>,
    secrets: SecretBox,
    idle: IdleReporter,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<impl Future<Output = ()> + use<>> {
    let delivery = &config.delivery;
    let guard = TargetGuard::new(
        TargetGuard::parse_list(&delivery.allow_targets).map_err(|err| anyhow::anyhow!(err))?,
    );
    // A send may outlast the lease: its lease is extended while it runs.
    let max_timeout = MAX_INTEGRATION_TIMEOUT;
    let webhook = WebhookTransport::new(
        secrets.clone(),
        guard.clone(),
        delivery.timeout,
        max_timeout,
    )
    .context("could not build the webhook client")?;
    let sqs = SqsTransport::new(
        secrets,
        guard,
        SqsSettings {
            default_timeout: delivery.timeout,
            max_timeout,
            batching: delivery.sqs_batching,
        },
    );
    let policy = RetryPolicy {
        schedule: config.retry_schedule()?,
        jitter: delivery.jitter,
        max_retry_after: delivery.max_retry_after,
        disable_after: delivery.disable_after,
    };
    let settings = DispatchSettings {
        max_in_flight: delivery.max_in_flight,
        max_in_flight_per_integration: delivery.max_in_flight_per_integration,
        lease: delivery.lease,
        poll_interval: delivery.poll_interval,
    };
    Ok(switchboard_delivery::run(
        store,
        Arc::new(Transports { webhook, sqs }),
        Arc::new(policy),
        settings,
        idle,
        stop,
    ))
}

/// The longest timeout an integration may set.
const MAX_INTEGRATION_TIMEOUT: Duration = Duration::from_secs(60);

/// The key that seals integration secrets: from `secrets.key`, or from
/// `secret.key` in the data directory (made on first start, readable by the
/// owner only).
pub fn load_secret_box(config: &Config) -> anyhow::Result<SecretBox> {
    if let Some(key) = &config.secrets.key {
        return Ok(SecretBox::from_base64(key.expose_secret())?);
    }
    let path = config.data_dir.join("secret.key");
    if !path.exists() {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("could not create {}", config.data_dir.display()))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&path) {
            Ok(mut file) => {
                std::io::Write::write_all(&mut file, SecretBox::generate_key().as_bytes())
                    .with_context(|| format!("could not write {}", path.display()))?
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => {
                return Err(err).with_context(|| format!("could not create {}", path.display()));
            }
        }
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("could not read {}", path.display()))?;
    SecretBox::from_base64(&text)
        .with_context(|| format!("{} does not hold a valid key", path.display()))
}

async fn purge_periodically(
    store: Arc<dyn Store>,
    rate_limits: Arc<RateLimits>,
    mut stop: watch::Receiver<bool>,
) {
    let mut interval = tokio::time::interval(PURGE_INTERVAL);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        rate_limits.forget_idle();
        match store.purge_expired(switchboard_domain::now_micros()).await {
            Ok(purged) => tracing::debug!(
                purged,
                "purged expired idempotency keys and typing indicators"
            ),
            Err(err) => tracing::warn!(error = %err, "could not purge expired rows"),
        }
    }
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM. The handlers are installed when
/// this is called, not when it is first awaited: call it before announcing
/// that the server is ready, so a signal sent right after the announcement
/// stops the server gracefully instead of killing it.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                // Without handlers, the default action of each signal applies.
                _ => std::future::pending::<()>().await,
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
