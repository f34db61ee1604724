//! What every transport does: take deliveries of one integration, send them,
//! and say what became of each. Transports never fail as a whole; every
//! problem is an [`AttemptResult`] with a reason for the delivery log.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use secrecy::ExposeSecret;
use switchboard_domain::secret_box::SecretBox;
use switchboard_protocol::signing::WebhookSecret;
use switchboard_store::{ClaimedDelivery, Target};

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
        }
    }
}

/// Opens an integration's sealed signing secret.
pub(crate) fn signing_secret(secrets: &SecretBox, sealed: &str) -> Result<WebhookSecret, String> {
    let text = secrets
        .open(sealed)
        .map_err(|err| format!("the integration's secret cannot be opened: {err}"))?;
    WebhookSecret::parse(text.expose_secret())
        .map_err(|err| format!("the integration's secret: {err}"))
}
