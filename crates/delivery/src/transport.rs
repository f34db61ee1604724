//! What every transport does: take deliveries of one integration, send them,
//! and say what became of each. Transports never fail as a whole; every
//! problem is an [`AttemptResult`] with a reason for the delivery log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use secrecy::ExposeSecret;
use switchboard_domain::secret_box::SecretBox;
use switchboard_protocol::signing::{WebhookSecret, standard_signature_header};
use switchboard_store::{ClaimedDelivery, ClaimedIntegration, Target};

use crate::policy::AttemptResult;
use crate::sqs::SqsTransport;
use crate::webhook::WebhookTransport;

/// One claimed delivery and the envelope body to send (shared, not copied,
/// by the request that carries it).
pub struct Outgoing {
    pub delivery: ClaimedDelivery,
    pub body: Bytes,
}

/// What one attempt came to.
#[derive(Clone, Debug)]
pub struct Sent {
    pub result: AttemptResult,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    pub duration: Duration,
    /// The start of the receiver's answer (a webhook's body, SQS's message id).
    pub snippet: Option<String>,
}

impl Sent {
    /// A failure before or without an answer, to be retried.
    pub fn failed(reason: String, duration: Duration) -> Self {
        Sent {
            result: AttemptResult::Failed {
                reason,
                retry_after: None,
            },
            status: None,
            duration,
            snippet: None,
        }
    }
}

/// Sends deliveries to one kind of target.
#[async_trait]
pub trait Transport: Send + Sync {
    /// How many deliveries of one integration may go in one call to [`send`](Self::send).
    fn max_batch(&self) -> usize;

    /// Sends deliveries of one integration (at most [`max_batch`](Self::max_batch))
    /// and returns one [`Sent`] per delivery, in the same order.
    async fn send(&self, group: &[Outgoing]) -> Vec<Sent>;
}

/// The transports of this process, chosen by each integration's target.
pub struct Transports {
    pub webhook: WebhookTransport,
    pub sqs: SqsTransport,
}

impl Transports {
    /// The transport for a target.
    pub fn for_target(&self, target: &Target) -> &dyn Transport {
        match target {
            Target::Webhook { .. } => &self.webhook,
            Target::Sqs(_) => &self.sqs,
            Target::Pull => &FetchedByTheBot,
        }
    }
}

/// The "transport" of pull integrations, whose events the bot fetches: the
/// workers' claims never take their lanes, so nothing reaches it; were
/// something to, it is failed and retried, and so left for the bot.
struct FetchedByTheBot;

#[async_trait]
impl Transport for FetchedByTheBot {
    fn max_batch(&self) -> usize {
        1
    }

    async fn send(&self, group: &[Outgoing]) -> Vec<Sent> {
        group
            .iter()
            .map(|_| {
                Sent::failed(
                    "a pull integration's events are fetched by the bot, not sent".to_owned(),
                    Duration::ZERO,
                )
            })
            .collect()
    }
}

/// Integrations' signing secrets, opened once and kept by their sealed form.
///
/// Opening a sealed secret is a decryption; done for every attempt, it was
/// about a tenth of a webhook attempt's CPU. A secret that is rotated or
/// replaced is sealed anew, under another key here, so nothing kept goes
/// stale; what is kept is dropped whole once it holds [`MOST_KEPT_SECRETS`].
pub(crate) struct OpenedSecrets {
    secrets: SecretBox,
    opened: Mutex<HashMap<Box<str>, Arc<WebhookSecret>>>,
}

/// How many opened secrets are kept at most (two per integration during a
/// rotation).
const MOST_KEPT_SECRETS: usize = 4_096;

impl OpenedSecrets {
    pub(crate) fn new(secrets: SecretBox) -> Self {
        OpenedSecrets {
            secrets,
            opened: Mutex::new(HashMap::new()),
        }
    }

    fn open(&self, sealed: &str) -> Result<Arc<WebhookSecret>, String> {
        if let Some(kept) = self.kept().get(sealed) {
            return Ok(kept.clone());
        }
        let opened = Arc::new(signing_secret(&self.secrets, sealed)?);
        let mut kept = self.kept();
        if kept.len() >= MOST_KEPT_SECRETS {
            kept.clear();
        }
        kept.insert(sealed.into(), opened.clone());
        Ok(opened)
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Arc<WebhookSecret>>> {
        // A panic while holding the map cannot leave it half-changed.
        self.opened
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// An integration's signing secrets for one delivery: the current one and,
/// while a rotation's overlap lasts, the previous one.
pub(crate) struct Signers {
    current: Arc<WebhookSecret>,
    previous: Option<Arc<WebhookSecret>>,
}

impl Signers {
    pub(crate) fn open(
        secrets: &OpenedSecrets,
        integration: &ClaimedIntegration,
    ) -> Result<Signers, String> {
        Ok(Signers {
            current: secrets.open(&integration.sealed_secret)?,
            previous: integration
                .sealed_previous_secret
                .as_deref()
                .map(|sealed| secrets.open(sealed))
                .transpose()?,
        })
    }

    /// `webhook-id`, `webhook-timestamp` and `webhook-signature` (signed by
    /// both secrets during a rotation) of one event, timestamped now.
    pub(crate) fn standard(&self, event_id: &str, body: &[u8]) -> [(&'static str, String); 3] {
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs() as i64)
            .unwrap_or(0);
        let mut signers = vec![&*self.current];
        signers.extend(self.previous.as_deref());
        [
            ("webhook-id", event_id.to_owned()),
            ("webhook-timestamp", timestamp.to_string()),
            (
                "webhook-signature",
                standard_signature_header(&signers, event_id, timestamp, body),
            ),
        ]
    }

    /// The one-value `x-signature`: keyed by the previous secret while it is
    /// valid (what deployed receivers still know), then by the new one.
    pub(crate) fn body_signature(&self, body: &[u8]) -> String {
        self.previous
            .as_ref()
            .unwrap_or(&self.current)
            .sign_body(body)
    }
}

/// Opens an integration's sealed signing secret.
fn signing_secret(secrets: &SecretBox, sealed: &str) -> Result<WebhookSecret, String> {
    let text = secrets
        .open(sealed)
        .map_err(|err| format!("the integration's secret cannot be opened: {err}"))?;
    WebhookSecret::parse(text.expose_secret())
        .map_err(|err| format!("the integration's secret: {err}"))
}
