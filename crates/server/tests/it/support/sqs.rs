//! A real SQS-compatible server for tests: moto's `moto_server`, started on a
//! free loopback port and stopped when dropped; and a client that reads
//! queues the way a bot would.
//!
//! `./scripts/test` installs moto and sets `TEST_MOTO_SERVER`;
//! otherwise `moto_server` must be on the `PATH`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

/// The account id moto puts in queue URLs.
pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";
pub const ACCESS_KEY_ID: &str = "AKIATESTSWITCHBOARD";
pub const SECRET_ACCESS_KEY: &str = "test/secret+Key123";

/// A running moto server.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub client: aws_sdk_sqs::Client,
}

impl Moto {
    pub async fn start() -> Moto {
        let program =
            std::env::var("TEST_MOTO_SERVER").unwrap_or_else(|_| "moto_server".to_owned());
        for _ in 0..5 {
            let port = super::free_port().await;
            let mut child = Command::new(&program)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|err| {
                    panic!(
                        "cannot start `{program}` ({err}); run ./scripts/test, which installs moto"
                    )
                });
            let endpoint = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut ready = false;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // it exited: most likely the port was taken; try another
                }
                if let Ok(response) = reqwest::get(format!("{endpoint}/moto-api/")).await
                    && response.status().is_success()
                {
                    ready = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if ready {
                let client = client(&endpoint);
                return Moto {
                    child,
                    endpoint,
                    client,
                };
            }
            let _ = child.kill().await;
        }
        panic!("moto_server did not start listening within 60 s on any of 5 ports");
    }

    /// The URL a queue of this name has (whether or not it exists).
    pub fn queue_url(&self, name: &str) -> String {
        format!("{}/{ACCOUNT}/{name}", self.endpoint)
    }

    /// Creates a queue (FIFO when the name ends in `.fifo`) and returns its URL.
    pub async fn create_queue(
        &self,
        name: &str,
        attributes: &[(QueueAttributeName, &str)],
    ) -> String {
        let mut request = self.client.create_queue().queue_name(name);
        if name.ends_with(".fifo") {
            request = request.attributes(QueueAttributeName::FifoQueue, "true");
        }
        for (attribute, value) in attributes {
            request = request.attributes(attribute.clone(), *value);
        }
        request
            .send()
            .await
            .expect("moto creates the queue")
            .queue_url()
            .expect("a queue URL")
            .to_owned()
    }

    /// How many messages the queue holds (visible ones).
    pub async fn depth(&self, url: &str) -> usize {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .expect("queue attributes");
        out.attributes()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Receives (and deletes) messages until `done` holds for all received so
    /// far, or fails after `within`.
    pub async fn receive_until(
        &self,
        url: &str,
        what: &str,
        within: Duration,
        done: impl Fn(&[QueueMessage]) -> bool,
    ) -> Vec<QueueMessage> {
        let deadline = Instant::now() + within;
        let mut received = Vec::new();
        while !done(&received) {
            assert!(
                Instant::now() < deadline,
                "waited {within:?} for {what}; received {} messages",
                received.len()
            );
            let out = self
                .client
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .expect("receive");
            for message in out.messages() {
                let body = message.body().unwrap_or_default().to_owned();
                let system = message.attributes().cloned().unwrap_or_default();
                received.push(QueueMessage {
                    json: serde_json::from_str(&body).unwrap_or(Value::Null),
                    body,
                    attributes: message
                        .message_attributes()
                        .map(|attributes| {
                            attributes
                                .iter()
                                .map(|(name, value)| {
                                    (
                                        name.clone(),
                                        (
                                            value.data_type().to_owned(),
                                            value.string_value().unwrap_or_default().to_owned(),
                                        ),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    group_id: system
                        .get(&MessageSystemAttributeName::MessageGroupId)
                        .cloned(),
                    deduplication_id: system
                        .get(&MessageSystemAttributeName::MessageDeduplicationId)
                        .cloned(),
                });
                if let Some(handle) = message.receipt_handle() {
                    self.client
                        .delete_message()
                        .queue_url(url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .expect("delete");
                }
            }
        }
        received
    }
}

/// One message read from a queue.
#[derive(Clone, Debug)]
pub struct QueueMessage {
    pub body: String,
    pub json: Value,
    /// name → (data type, string value)
    pub attributes: HashMap<String, (String, String)>,
    pub group_id: Option<String>,
    pub deduplication_id: Option<String>,
}

impl QueueMessage {
    pub fn attribute(&self, name: &str) -> &str {
        self.attributes
            .get(name)
            .map(|(_, value)| value.as_str())
            .unwrap_or_default()
    }
}

/// An SDK client of the moto server, as a bot's consumer would have.
pub fn client(endpoint: &str) -> aws_sdk_sqs::Client {
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
            "test",
        ))
        .endpoint_url(endpoint)
        .http_client(http)
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// A TCP proxy on a free loopback port that holds every chunk from the client
/// for `delay` before passing it on: a slow network in front of a real server.
pub struct SlowProxy {
    pub endpoint: String,
    task: tokio::task::JoinHandle<()>,
}

impl SlowProxy {
    pub async fn start(target: &str, delay: Duration) -> SlowProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let target = target.trim_start_matches("http://").to_owned();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let upstream = async {
                        let mut buffer = vec![0u8; 64 * 1024];
                        while let Ok(read) = client_read.read(&mut buffer).await {
                            if read == 0 {
                                break;
                            }
                            tokio::time::sleep(delay).await;
                            if server_write.write_all(&buffer[..read]).await.is_err() {
                                break;
                            }
                        }
                        let _ = server_write.shutdown().await;
                    };
                    let downstream = async {
                        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                        let _ = client_write.shutdown().await;
                    };
                    tokio::join!(upstream, downstream);
                });
            }
        });
        SlowProxy { endpoint, task }
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
