//! The webhook transport: one signed `POST` per event.
//!
//! It owns the request timeout, the refusal of internal targets (on the
//! resolved addresses), the no-redirect policy and the cap on how much of the
//! receiver's answer is read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER, USER_AGENT};
use switchboard_domain::secret_box::SecretBox;
use switchboard_store::{ClaimedDelivery, Target};

use crate::policy::AttemptResult;
use crate::target_guard::{GuardedResolver, RefusedTarget, TargetGuard, literal_ip};
use crate::transport::{OpenedSecrets, Outgoing, Sent, Signers, Transport};

/// Most bytes of a receiver's answer kept for the delivery log.
pub const RESPONSE_SNIPPET_BYTES: usize = 1_024;

/// Sends deliveries by HTTP.
pub struct WebhookTransport {
    client: reqwest::Client,
    secrets: OpenedSecrets,
    guard: Arc<TargetGuard>,
    default_timeout: Duration,
    max_timeout: Duration,
}

impl WebhookTransport {
    /// `max_timeout` bounds every integration's own timeout (it must stay under the lease).
    pub fn new(
        secrets: SecretBox,
        guard: TargetGuard,
        default_timeout: Duration,
        max_timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let guard = Arc::new(guard);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                guard: guard.clone(),
            }))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()?;
        Ok(WebhookTransport {
            client,
            secrets: OpenedSecrets::new(secrets),
            guard,
            default_timeout,
            max_timeout,
        })
    }

    /// Posts one delivery and reports what happened. Never fails: every
    /// problem is an [`AttemptResult::Failed`] with a reason for the log.
    pub async fn post(&self, delivery: &ClaimedDelivery, body: Bytes) -> Sent {
        let started = Instant::now();
        let failed = |reason: String| Sent::failed(reason, started.elapsed());
        let Target::Webhook { url } = &delivery.integration.target else {
            return failed("the integration is not a webhook".to_owned());
        };
        let url = match reqwest::Url::parse(url) {
            Ok(url) => url,
            Err(err) => return failed(format!("the integration's url is not valid: {err}")),
        };
        if let Some(ip) = literal_ip(url.host_str())
            && !self.guard.permits(ip)
        {
            return failed(RefusedTarget(ip.to_string()).to_string());
        }
        let headers = match self.signed_headers(delivery, &body) {
            Ok(headers) => headers,
            Err(reason) => return failed(reason),
        };
        let timeout = delivery
            .integration
            .settings
            .timeout_ms
            .map(|ms| Duration::from_millis(u64::from(ms)))
            .unwrap_or(self.default_timeout)
            .min(self.max_timeout);
        let request = self
            .client
            .post(url)
            .timeout(timeout)
            .headers(headers)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(
                USER_AGENT,
                HeaderValue::from_static(concat!("switchboard/", env!("CARGO_PKG_VERSION"))),
            )
            .body(body);
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(err) => return failed(describe(&err, timeout)),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|text| text.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut snippet = Vec::new();
        while snippet.len() < RESPONSE_SNIPPET_BYTES {
            match tokio::time::timeout(timeout, response.chunk()).await {
                Ok(Ok(Some(chunk))) => snippet.extend_from_slice(
                    &chunk[..chunk.len().min(RESPONSE_SNIPPET_BYTES - snippet.len())],
                ),
                _ => break,
            }
        }
        let snippet = (!snippet.is_empty()).then(|| String::from_utf8_lossy(&snippet).into_owned());
        let result = if status.is_success() {
            AttemptResult::Delivered
        } else if status == StatusCode::GONE {
            AttemptResult::Gone
        } else {
            let throttled = matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            );
            AttemptResult::Failed {
                reason: if status.is_redirection() {
                    format!("the receiver answered {status}; redirects are not followed")
                } else {
                    format!("the receiver answered {status}")
                },
                retry_after: if throttled { retry_after } else { None },
            }
        };
        Sent {
            result,
            status: Some(status.as_u16()),
            duration: started.elapsed(),
            snippet,
        }
    }

    /// `webhook-id`, `webhook-timestamp`, `webhook-signature` (both secrets
    /// during a rotation) and `x-signature` (the previous secret's during a
    /// rotation).
    fn signed_headers(
        &self,
        delivery: &ClaimedDelivery,
        body: &[u8],
    ) -> Result<reqwest::header::HeaderMap, String> {
        let signers = Signers::open(&self.secrets, &delivery.integration)?;
        let mut headers = reqwest::header::HeaderMap::new();
        let standard = signers.standard(delivery.event_id.as_str(), body);
        let x_signature = ("x-signature", signers.body_signature(body));
        for (name, value) in standard.into_iter().chain([x_signature]) {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        Ok(headers)
    }
}

#[async_trait]
impl Transport for WebhookTransport {
    /// One event per `POST`.
    fn max_batch(&self) -> usize {
        1
    }

    async fn send(&self, group: &[Outgoing]) -> Vec<Sent> {
        let mut sent = Vec::with_capacity(group.len());
        for outgoing in group {
            sent.push(self.post(&outgoing.delivery, outgoing.body.clone()).await);
        }
        sent
    }
}

/// A reason for the delivery log, with the cause chain.
fn describe(err: &reqwest::Error, timeout: Duration) -> String {
    if err.is_timeout() {
        return format!("no answer within {} ms", timeout.as_millis());
    }
    let mut text = if err.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
