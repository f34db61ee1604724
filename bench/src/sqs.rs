//! The SQS side of the benchmark: moto's server on a free loopback port, a
//! queue, and consumers that read it the way a bot would. A message "arrived"
//! when the queue accepted it (its `SentTimestamp`), not when a consumer got
//! round to reading it: moto, one Python process, reads far slower than a
//! real queue.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use tokio::process::{Child, Command};

use crate::receiver::{Receipts, message_id};

pub const REGION: &str = "us-east-1";
pub const ACCESS_KEY_ID: &str = "AKIABENCH";
pub const SECRET_ACCESS_KEY: &str = "bench-secret";

/// A client of a running moto server.
#[derive(Clone)]
pub struct MotoHandle {
    pub client: aws_sdk_sqs::Client,
}

/// A running `moto_server`, stopped when dropped.
pub struct Moto {
    _child: Child,
    pub endpoint: String,
    pub client: aws_sdk_sqs::Client,
}

impl Moto {
    pub async fn start(program: &str) -> anyhow::Result<Moto> {
        let port = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await?
            .local_addr()?
            .port();
        let mut child = Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("could not start {program}"))?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            anyhow::ensure!(child.try_wait()?.is_none(), "moto_server exited at start");
            if reqwest::get(format!("{endpoint}/moto-api/"))
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "moto_server did not listen within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new(
                ACCESS_KEY_ID,
                SECRET_ACCESS_KEY,
                None,
                None,
                "bench",
            ))
            .endpoint_url(&endpoint)
            .http_client(http)
            .build();
        Ok(Moto {
            _child: child,
            endpoint,
            client: aws_sdk_sqs::Client::from_conf(config),
        })
    }

    /// What consumers need of the server, to share with tasks.
    pub fn handle(&self) -> MotoHandle {
        MotoHandle {
            client: self.client.clone(),
        }
    }

    pub async fn create_queue(&self, name: &str) -> anyhow::Result<String> {
        let created = self.client.create_queue().queue_name(name).send().await?;
        created.queue_url().context("queue URL").map(str::to_owned)
    }
}

/// Consumers reading the queue until `stop`: each receives up to 10 messages
/// (long polling), notes when the queue accepted each, and deletes them in
/// one batch.
pub fn consume(
    moto: &MotoHandle,
    queue: &str,
    receipts: Arc<Receipts>,
    consumers: usize,
    stop: Arc<AtomicBool>,
) {
    // The wall clock and the monotonic clock, read together, to place each
    // message's SentTimestamp (wall-clock milliseconds) on the monotonic one.
    let wall_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let reference = (Instant::now(), wall_ms);
    for _ in 0..consumers {
        let (client, queue, receipts, stop) = (
            moto.client.clone(),
            queue.to_owned(),
            receipts.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(out) = client
                    .receive_message()
                    .queue_url(&queue)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .message_system_attribute_names(MessageSystemAttributeName::All)
                    .send()
                    .await
                else {
                    continue;
                };
                let read_at = Instant::now();
                let mut done = Vec::new();
                for (index, message) in out.messages().iter().enumerate() {
                    let accepted = message
                        .attributes()
                        .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                        .and_then(|ms| ms.parse::<i64>().ok())
                        .map(|ms| {
                            let offset = ms - reference.1;
                            if offset >= 0 {
                                reference.0 + Duration::from_millis(offset as u64)
                            } else {
                                reference.0
                            }
                        })
                        .unwrap_or(read_at);
                    if let Some(id) = message.body().and_then(message_id) {
                        receipts
                            .first_seen
                            .lock()
                            .unwrap()
                            .entry(id)
                            .or_insert(accepted);
                    }
                    if let Some(handle) = message.receipt_handle()
                        && let Ok(entry) = DeleteMessageBatchRequestEntry::builder()
                            .id(index.to_string())
                            .receipt_handle(handle)
                            .build()
                    {
                        done.push(entry);
                    }
                }
                if !done.is_empty() {
                    let _ = client
                        .delete_message_batch()
                        .queue_url(&queue)
                        .set_entries(Some(done))
                        .send()
                        .await;
                }
            }
        });
    }
}
