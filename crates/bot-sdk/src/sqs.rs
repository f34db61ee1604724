//! A consumer of an `sqs` integration's queue: long polling, each message's
//! signature checked, the handler run, and the message deleted only once
//! the handler succeeded. While a slow handler runs, the message's
//! visibility is extended, so no other consumer takes it meanwhile. Messages
//! are handled one after another in the order received, so a FIFO queue's
//! groups (one per channel) stay in order.
//!
//! The caller builds the `aws_sdk_sqs::Client` (region, credentials, an
//! endpoint for an SQS-compatible server) as for any SQS program.
//!
//! ```no_run
//! use switchboard_bot_sdk::{Reply, sqs::{Consumer, Signature}};
//!
//! # async fn run(sqs: aws_sdk_sqs::Client) -> Result<(), switchboard_bot_sdk::sqs::SqsError> {
//! let queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/bot-events";
//! Consumer::new(sqs, queue, Signature::AwsSecret("the AWS secret access key".into()))
//!     .run(|event| async move {
//!         println!("{} {}", event.event_type.as_str(), event.id);
//!         Reply::Handled
//!     })
//!     .await
//! # }
//! ```

use std::future::Future;
use std::time::Duration;

use aws_sdk_sqs::types::Message;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use switchboard_protocol::signing::verify_body_keyed;

use crate::{Event, Reply, Verifier};

/// How a message's signature is checked.
#[derive(Clone, Debug)]
pub enum Signature {
    /// `X-SIGNATURE`: the HMAC of the body keyed by the integration's AWS
    /// secret access key, as x-bees signs SQS messages.
    AwsSecret(String),
    /// The Standard Webhooks attributes, with the integration's `whsec_` secrets.
    Webhook(Verifier),
}

/// What kept the consumer from going on.
#[derive(Debug, thiserror::Error)]
pub enum SqsError {
    #[error("SQS refused a call: {0}")]
    Sqs(String),
}

/// Reads an integration's queue and hands each event to a handler.
pub struct Consumer {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    signature: Signature,
    visibility_seconds: i32,
}

impl Consumer {
    pub fn new(sqs: aws_sdk_sqs::Client, queue_url: &str, signature: Signature) -> Self {
        Consumer {
            sqs,
            queue_url: queue_url.to_owned(),
            signature,
            visibility_seconds: 30,
        }
    }

    /// The visibility each message gets while handled, renewed at half of it
    /// while the handler runs (default 30 s).
    pub fn visibility(mut self, seconds: u32) -> Self {
        self.visibility_seconds = seconds.clamp(2, 43_200) as i32;
        self
    }

    /// Handles messages forever; returns when SQS refuses a receive.
    pub async fn run<F, Fut>(self, handler: F) -> Result<(), SqsError>
    where
        F: Fn(Event) -> Fut,
        Fut: Future<Output = Reply>,
    {
        loop {
            self.once(&handler, 20).await?;
        }
    }

    /// One receive (waiting up to `wait_seconds`) and its messages handled;
    /// how many events the handler saw.
    pub async fn once<F, Fut>(&self, handler: &F, wait_seconds: i32) -> Result<usize, SqsError>
    where
        F: Fn(Event) -> Fut,
        Fut: Future<Output = Reply>,
    {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_seconds)
            .visibility_timeout(self.visibility_seconds)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|err| {
                SqsError::Sqs(aws_sdk_sqs::error::DisplayErrorContext(err).to_string())
            })?;
        let mut handled = 0;
        for message in received.messages() {
            let Some(receipt) = message.receipt_handle() else {
                continue;
            };
            let Some(event) = self.verified(message) else {
                // Left on the queue: after its receive count it goes to the
                // queue's dead-letter queue, where an operator can look.
                tracing::warn!(message = ?message.message_id(), "an SQS message that does not verify was left alone");
                continue;
            };
            handled += 1;
            let reply = self.while_visible(receipt, handler(event)).await;
            let settled = match reply {
                Reply::Handled => self
                    .sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|err| aws_sdk_sqs::error::DisplayErrorContext(err).to_string()),
                Reply::RetryLater(after) => self.extend(receipt, after).await,
            };
            if let Err(err) = settled {
                tracing::warn!(error = %err, "an SQS message could not be settled; it comes again");
            }
        }
        Ok(handled)
    }

    /// The message's event, when its signature holds.
    fn verified(&self, message: &Message) -> Option<Event> {
        let body = message.body()?;
        let attribute = |name: &str| {
            message
                .message_attributes()
                .and_then(|attributes| attributes.get(name))
                .and_then(|value| value.string_value())
        };
        match &self.signature {
            Signature::AwsSecret(secret) => {
                verify_body_keyed(
                    secret.as_bytes(),
                    body.as_bytes(),
                    attribute("X-SIGNATURE")?,
                )
                .ok()?;
                serde_json::from_str(body).ok()
            }
            Signature::Webhook(verifier) => {
                let mut headers = HeaderMap::new();
                for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
                    let value = HeaderValue::from_str(attribute(name)?).ok()?;
                    headers.insert(HeaderName::from_static(name), value);
                }
                verifier.verify(&headers, body.as_bytes()).ok()
            }
        }
    }

    /// Runs `work`, keeping the message invisible to others until it ends.
    async fn while_visible<T>(&self, receipt: &str, work: impl Future<Output = T>) -> T {
        let renew = Duration::from_secs((self.visibility_seconds / 2).max(1) as u64);
        tokio::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => return done,
                () = tokio::time::sleep(renew) => {
                    let visibility = Duration::from_secs(self.visibility_seconds as u64);
                    if let Err(err) = self.extend(receipt, visibility).await {
                        tracing::warn!(error = %err, "could not extend a message's visibility");
                    }
                }
            }
        }
    }

    /// Makes the message visible again after `after`.
    async fn extend(&self, receipt: &str, after: Duration) -> Result<(), String> {
        self.sqs
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(after.as_secs().min(43_200) as i32)
            .send()
            .await
            .map(drop)
            .map_err(|err| aws_sdk_sqs::error::DisplayErrorContext(err).to_string())
    }
}
