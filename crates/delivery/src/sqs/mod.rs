//! The SQS transport: each event is one message on the integration's queue,
//! with the envelope as the body and the String attributes `X-SIGNATURE`
//! (hex HMAC-SHA256 of the body keyed by the integration's AWS secret access
//! key, as x-bees signs SQS messages and its consumers verify them),
//! `eventType`, `eventId`, and the Standard Webhooks `webhook-id`,
//! `webhook-timestamp` and `webhook-signature` (keyed by the `whsec_`
//! secret; both during a rotation) for consumers that want a signing secret
//! apart from their AWS credentials. FIFO queues get `MessageGroupId` = the
//! channel id and `MessageDeduplicationId` = the event id.
//!
//! Several due events of one queue go in one `SendMessageBatch` (up to 10
//! entries and 256 KiB); an entry that fails is retried on its own. A message
//! larger than the queue's `MaximumMessageSize` is dead-lettered with that
//! reason, never dropped.

mod clients;
mod errors;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use secrecy::ExposeSecret;
use switchboard_domain::secret_box::SecretBox;
use switchboard_protocol::signing::body_signature;
use switchboard_store::{ClaimedDelivery, SqsQueue, Target};

use crate::policy::AttemptResult;
use crate::target_guard::TargetGuard;
use crate::transport::{OpenedSecrets, Outgoing, Sent, Signers, Transport};
use clients::{QueueClient, QueueClients};
use errors::{classify_code, is_batch_too_long, sent_from_error};

/// Most entries SQS takes in one `SendMessageBatch`.
pub const MAX_BATCH_ENTRIES: usize = 10;
/// Most bytes of all entries of one batch (SQS's classic limit, which every
/// SQS-compatible server honours).
pub const MAX_BATCH_BYTES: usize = 262_144;

/// How the SQS transport runs.
#[derive(Clone, Debug)]
pub struct SqsSettings {
    /// The timeout of one request when the integration sets none.
    pub default_timeout: Duration,
    /// The bound on every integration's own timeout.
    pub max_timeout: Duration,
    /// Send several due events of a queue in one `SendMessageBatch`.
    pub batching: bool,
}

/// Sends deliveries to SQS queues.
pub struct SqsTransport {
    clients: QueueClients,
    secrets: OpenedSecrets,
    settings: SqsSettings,
}

/// One message, signed and sized.
struct Message {
    /// Its place in the group handed to [`SqsTransport::send`].
    index: usize,
    body: String,
    attributes: HashMap<String, MessageAttributeValue>,
    group_id: Option<String>,
    deduplication_id: Option<String>,
    /// What SQS counts against its limits: the body and every attribute's
    /// name, type and value.
    size: usize,
}

impl SqsTransport {
    pub fn new(secrets: SecretBox, guard: TargetGuard, settings: SqsSettings) -> Self {
        SqsTransport {
            clients: QueueClients::new(secrets.clone(), guard),
            secrets: OpenedSecrets::new(secrets),
            settings,
        }
    }

    /// One signed message: `X-SIGNATURE` keyed by the client's AWS secret
    /// access key, the Standard Webhooks attributes by the `whsec_` secrets.
    fn message(
        queue: &SqsQueue,
        client: &QueueClient,
        signers: &Signers,
        index: usize,
        outgoing: &Outgoing,
    ) -> Result<Message, String> {
        let delivery = &outgoing.delivery;
        let body = std::str::from_utf8(&outgoing.body)
            .map_err(|_| "the envelope is not UTF-8".to_owned())?
            .to_owned();
        let standard = signers.standard(delivery.event_id.as_str(), body.as_bytes());
        let attributes = [
            (
                "X-SIGNATURE",
                body_signature(
                    client.aws_secret.expose_secret().as_bytes(),
                    body.as_bytes(),
                ),
            ),
            ("eventType", delivery.event_type.as_str().to_owned()),
            ("eventId", delivery.event_id.as_str().to_owned()),
        ]
        .into_iter()
        .chain(standard);
        let mut size = body.len();
        let mut values = HashMap::new();
        for (name, value) in attributes {
            size += name.len() + "String".len() + value.len();
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|err| format!("the message attribute {name} could not be built: {err}"))?;
            values.insert(name.to_owned(), value);
        }
        let (group_id, deduplication_id) = if queue.is_fifo() {
            (
                Some(fifo_group(delivery)),
                Some(delivery.event_id.as_str().to_owned()),
            )
        } else {
            (None, None)
        };
        Ok(Message {
            index,
            body,
            attributes: values,
            group_id,
            deduplication_id,
            size,
        })
    }

    /// One `SendMessage`.
    async fn send_one(&self, client: &QueueClient, queue: &SqsQueue, message: Message) -> Sent {
        let started = Instant::now();
        metrics::counter!("switchboard_sqs_requests_total", "operation" => "SendMessage")
            .increment(1);
        let sent = client
            .sdk
            .send_message()
            .queue_url(&queue.queue_url)
            .message_body(message.body)
            .set_message_attributes(Some(message.attributes))
            .set_message_group_id(message.group_id)
            .set_message_deduplication_id(message.deduplication_id)
            .send()
            .await;
        match sent {
            Ok(out) => delivered(out.message_id(), started.elapsed()),
            Err(err) => sent_from_error(&err, &queue.queue_url, client.timeout, started.elapsed()),
        }
    }

    /// One `SendMessage` per message, when a batch was refused as a whole.
    async fn send_each(
        &self,
        client: &QueueClient,
        queue: &SqsQueue,
        messages: Vec<Message>,
    ) -> Vec<(usize, Sent)> {
        let mut results = Vec::with_capacity(messages.len());
        for message in messages {
            let index = message.index;
            results.push((index, self.send_one(client, queue, message).await));
        }
        results
    }

    /// One `SendMessageBatch`; the result of each message by its index.
    async fn send_batch(
        &self,
        client: &QueueClient,
        queue: &SqsQueue,
        messages: Vec<Message>,
    ) -> Vec<(usize, Sent)> {
        let started = Instant::now();
        let mut entries = Vec::with_capacity(messages.len());
        for message in &messages {
            let entry = SendMessageBatchRequestEntry::builder()
                .id(message.index.to_string())
                .message_body(message.body.clone())
                .set_message_attributes(Some(message.attributes.clone()))
                .set_message_group_id(message.group_id.clone())
                .set_message_deduplication_id(message.deduplication_id.clone())
                .build();
            match entry {
                Ok(entry) => entries.push(entry),
                Err(err) => {
                    let reason = format!("the batch entry could not be built: {err}");
                    return messages
                        .iter()
                        .map(|m| (m.index, Sent::failed(reason.clone(), started.elapsed())))
                        .collect();
                }
            }
        }
        metrics::counter!("switchboard_sqs_requests_total", "operation" => "SendMessageBatch")
            .increment(1);
        metrics::counter!("switchboard_sqs_batch_entries_total").increment(messages.len() as u64);
        let answer = client
            .sdk
            .send_message_batch()
            .queue_url(&queue.queue_url)
            .set_entries(Some(entries))
            .send()
            .await;
        let out = match answer {
            Ok(out) => out,
            Err(err) if is_batch_too_long(&err) => {
                return self.send_each(client, queue, messages).await;
            }
            Err(err) => {
                let sent =
                    sent_from_error(&err, &queue.queue_url, client.timeout, started.elapsed());
                if !matches!(sent.result, AttemptResult::Rejected { .. }) {
                    return messages.iter().map(|m| (m.index, sent.clone())).collect();
                }
                // Some servers refuse a whole batch for one oversized entry:
                // send each alone so only that one is dead-lettered.
                return self.send_each(client, queue, messages).await;
            }
        };
        let duration = started.elapsed();
        messages
            .iter()
            .map(|message| {
                let id = message.index.to_string();
                let sent = if let Some(ok) = out.successful().iter().find(|entry| entry.id() == id)
                {
                    delivered(Some(ok.message_id()), duration)
                } else if let Some(failed) = out.failed().iter().find(|entry| entry.id() == id) {
                    Sent {
                        result: classify_code(failed.code(), failed.message(), &queue.queue_url),
                        status: None,
                        duration,
                        snippet: None,
                    }
                } else {
                    Sent::failed(
                        "SQS did not report on this message of the batch".to_owned(),
                        duration,
                    )
                };
                (message.index, sent)
            })
            .collect()
    }
}

#[async_trait]
impl Transport for SqsTransport {
    fn max_batch(&self) -> usize {
        if self.settings.batching {
            MAX_BATCH_ENTRIES
        } else {
            1
        }
    }

    async fn send(&self, group: &[Outgoing]) -> Vec<Sent> {
        let started = Instant::now();
        let Some(first) = group.first() else {
            return Vec::new();
        };
        let integration = &first.delivery.integration;
        let everyone = |reason: String| -> Vec<Sent> {
            group
                .iter()
                .map(|_| Sent::failed(reason.clone(), started.elapsed()))
                .collect()
        };
        let Target::Sqs(queue) = &integration.target else {
            return everyone("the integration is not an SQS integration".to_owned());
        };
        let timeout = integration
            .settings
            .timeout_ms
            .map(|ms| Duration::from_millis(u64::from(ms)))
            .unwrap_or(self.settings.default_timeout)
            .min(self.settings.max_timeout);
        let client = match self.clients.client(integration, queue, timeout) {
            Ok(client) => client,
            Err(reason) => return everyone(reason),
        };
        // Every delivery of the group belongs to one integration: one set of secrets.
        let signers = match Signers::open(&self.secrets, integration) {
            Ok(signers) => signers,
            Err(reason) => return everyone(reason),
        };
        let max_message = client.max_message_bytes(&queue.queue_url).await;
        let mut results: Vec<Option<Sent>> = vec![None; group.len()];
        let mut ready = Vec::with_capacity(group.len());
        for (index, outgoing) in group.iter().enumerate() {
            match Self::message(queue, &client, &signers, index, outgoing) {
                Ok(message) if max_message.is_some_and(|max| message.size > max) => {
                    results[index] = Some(Sent {
                        result: AttemptResult::Rejected {
                            reason: format!(
                                "the event is {} bytes with its attributes; the queue takes at most {} bytes",
                                message.size,
                                max_message.unwrap_or_default()
                            ),
                        },
                        status: None,
                        duration: started.elapsed(),
                        snippet: None,
                    });
                }
                Ok(message) => ready.push(message),
                Err(reason) => results[index] = Some(Sent::failed(reason, started.elapsed())),
            }
        }
        for batch in batches(ready) {
            if batch.len() == 1 {
                let message = batch.into_iter().next().expect("a batch of one");
                let index = message.index;
                results[index] = Some(self.send_one(&client, queue, message).await);
            } else {
                for (index, sent) in self.send_batch(&client, queue, batch).await {
                    results[index] = Some(sent);
                }
            }
        }
        results
            .into_iter()
            .map(|sent| {
                sent.unwrap_or_else(|| {
                    Sent::failed("the message was not sent".to_owned(), started.elapsed())
                })
            })
            .collect()
    }
}

/// Splits messages into batches of at most [`MAX_BATCH_ENTRIES`] entries and
/// [`MAX_BATCH_BYTES`] bytes; a message too large to share goes alone.
fn batches(messages: Vec<Message>) -> Vec<Vec<Message>> {
    let mut batches: Vec<Vec<Message>> = Vec::new();
    let mut bytes = 0;
    for message in messages {
        let fits = batches.last().is_some_and(|batch| {
            batch.len() < MAX_BATCH_ENTRIES && bytes + message.size <= MAX_BATCH_BYTES
        });
        if fits {
            bytes += message.size;
            batches.last_mut().expect("a batch").push(message);
        } else {
            bytes = message.size;
            batches.push(vec![message]);
        }
    }
    batches
}

/// The FIFO message group: the channel, so each channel keeps its order; an
/// event outside channels (`integration:test`) goes in the integration's own group.
fn fifo_group(delivery: &ClaimedDelivery) -> String {
    delivery
        .channel_id
        .clone()
        .unwrap_or_else(|| delivery.integration.id.as_str().to_owned())
}

fn delivered(message_id: Option<&str>, duration: Duration) -> Sent {
    Sent {
        result: AttemptResult::Delivered,
        status: Some(200),
        duration,
        snippet: message_id.map(|id| format!("MessageId: {id}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(index: usize, size: usize) -> Message {
        Message {
            index,
            body: String::new(),
            attributes: HashMap::new(),
            group_id: None,
            deduplication_id: None,
            size,
        }
    }

    fn shape(batches: &[Vec<Message>]) -> Vec<Vec<usize>> {
        batches
            .iter()
            .map(|batch| batch.iter().map(|m| m.index).collect())
            .collect()
    }

    #[test]
    fn batches_hold_ten_entries_and_256_kib_at_most() {
        let many = batches((0..23).map(|i| message(i, 100)).collect());
        assert_eq!(
            many.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![10, 10, 3]
        );
        let big = batches(vec![
            message(0, 200_000),
            message(1, 100_000),
            message(2, 60_000),
            message(3, 300_000),
            message(4, 10),
        ]);
        assert_eq!(shape(&big), vec![vec![0], vec![1, 2], vec![3], vec![4]]);
        assert!(batches(Vec::new()).is_empty());
    }
}
