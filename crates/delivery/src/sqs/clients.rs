//! SQS clients, one per integration, built once and kept until the
//! integration's queue, credentials or timeout change. All share one HTTP
//! connection pool whose resolver refuses internal addresses like the webhook
//! transport's.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region, SharedHttpClient};
use aws_sdk_sqs::types::QueueAttributeName;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDns, ResolveDnsError};
use secrecy::{ExposeSecret, SecretString};
use switchboard_domain::IntegrationId;
use switchboard_domain::secret_box::SecretBox;
use switchboard_store::{ClaimedIntegration, SqsQueue};

use crate::target_guard::{RefusedTarget, TargetGuard, literal_ip, permitted_addresses};

/// Most clients kept; past it the cache starts afresh (integrations deleted
/// long ago must not pile up).
const MAX_CACHED_CLIENTS: usize = 10_000;
/// How long to wait before asking a queue's size limit again after it could
/// not be read (credentials may allow only `sqs:SendMessage`).
const SIZE_LOOKUP_RETRY: Duration = Duration::from_secs(300);

/// The client of one integration's queue.
pub(crate) struct QueueClient {
    fingerprint: u64,
    pub sdk: aws_sdk_sqs::Client,
    pub timeout: Duration,
    /// The integration's AWS secret access key, opened once with the client:
    /// it also keys each message's `X-SIGNATURE`.
    pub aws_secret: SecretString,
    max_message: Mutex<MaxMessage>,
}

#[derive(Clone, Copy)]
enum MaxMessage {
    Known(usize),
    Unknown { ask_after: Instant },
}

impl QueueClient {
    /// The queue's `MaximumMessageSize` in bytes, asked of SQS once; `None`
    /// when it cannot be read (SQS then refuses an oversized message itself).
    pub async fn max_message_bytes(&self, queue_url: &str) -> Option<usize> {
        let known = *self.max_message.lock().unwrap_or_else(|e| e.into_inner());
        match known {
            MaxMessage::Known(bytes) => return Some(bytes),
            MaxMessage::Unknown { ask_after } if Instant::now() < ask_after => return None,
            MaxMessage::Unknown { .. } => {}
        }
        let asked = self
            .sdk
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::MaximumMessageSize)
            .send()
            .await;
        let found = asked.ok().and_then(|out| {
            out.attributes()?
                .get(&QueueAttributeName::MaximumMessageSize)?
                .parse::<usize>()
                .ok()
        });
        *self.max_message.lock().unwrap_or_else(|e| e.into_inner()) = match found {
            Some(bytes) => MaxMessage::Known(bytes),
            None => MaxMessage::Unknown {
                ask_after: Instant::now() + SIZE_LOOKUP_RETRY,
            },
        };
        found
    }
}

/// The cache of clients.
pub(crate) struct QueueClients {
    http: SharedHttpClient,
    guard: Arc<TargetGuard>,
    secrets: SecretBox,
    cache: Mutex<HashMap<IntegrationId, Arc<QueueClient>>>,
}

impl QueueClients {
    pub fn new(secrets: SecretBox, guard: TargetGuard) -> Self {
        let guard = Arc::new(guard);
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_with_resolver(GuardedDns {
                guard: guard.clone(),
            });
        QueueClients {
            http,
            guard,
            secrets,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The client for an integration's queue, built if it is new or changed.
    pub fn client(
        &self,
        integration: &ClaimedIntegration,
        queue: &SqsQueue,
        timeout: Duration,
    ) -> Result<Arc<QueueClient>, String> {
        let fingerprint = fingerprint(integration, queue, timeout);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = cache.get(&integration.id)
            && client.fingerprint == fingerprint
        {
            return Ok(client.clone());
        }
        let client = Arc::new(self.build(integration, queue, timeout, fingerprint)?);
        if cache.len() >= MAX_CACHED_CLIENTS {
            cache.clear();
        }
        cache.insert(integration.id.clone(), client.clone());
        Ok(client)
    }

    fn build(
        &self,
        integration: &ClaimedIntegration,
        queue: &SqsQueue,
        timeout: Duration,
        fingerprint: u64,
    ) -> Result<QueueClient, String> {
        let sealed = integration
            .sealed_aws_secret
            .as_deref()
            .ok_or("the integration has no secret access key")?;
        let secret = self.secrets.open(sealed).map_err(|err| {
            format!("the integration's secret access key cannot be opened: {err}")
        })?;
        if let Some(endpoint) = &queue.endpoint_url {
            let url = reqwest::Url::parse(endpoint)
                .map_err(|err| format!("the integration's endpointUrl is not valid: {err}"))?;
            if let Some(ip) = literal_ip(url.host_str())
                && !self.guard.permits(ip)
            {
                return Err(RefusedTarget(ip.to_string()).to_string());
            }
        }
        let mut config = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(queue.region.clone()))
            .credentials_provider(Credentials::new(
                queue.access_key_id.clone(),
                secret.expose_secret().to_owned(),
                None,
                None,
                "switchboard-integration",
            ))
            .http_client(self.http.clone())
            // One attempt is one request: the delivery engine retries, and logs each.
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(timeout)
                    .operation_timeout(timeout)
                    .build(),
            );
        if let Some(endpoint) = &queue.endpoint_url {
            config = config.endpoint_url(endpoint.clone());
        }
        Ok(QueueClient {
            fingerprint,
            sdk: aws_sdk_sqs::Client::from_conf(config.build()),
            timeout,
            aws_secret: secret,
            max_message: Mutex::new(MaxMessage::Unknown {
                ask_after: Instant::now(),
            }),
        })
    }
}

/// Changes whenever anything the client is built from changes (a new secret
/// access key is sealed afresh, so its sealed text changes too).
fn fingerprint(integration: &ClaimedIntegration, queue: &SqsQueue, timeout: Duration) -> u64 {
    let mut hasher = DefaultHasher::new();
    queue.hash(&mut hasher);
    integration.sealed_aws_secret.hash(&mut hasher);
    timeout.hash(&mut hasher);
    hasher.finish()
}

/// The SDK's resolver: only addresses the guard permits.
#[derive(Clone, Debug)]
struct GuardedDns {
    guard: Arc<TargetGuard>,
}

impl ResolveDns for GuardedDns {
    fn resolve_dns<'a>(&'a self, name: &'a str) -> DnsFuture<'a> {
        DnsFuture::new(async move {
            permitted_addresses(&self.guard, name)
                .await
                .map(|addresses| addresses.into_iter().map(|addr| addr.ip()).collect())
                .map_err(ResolveDnsError::new)
        })
    }
}
