//! The end-to-end test harness: a real switchboard server on a free loopback
//! port, on its own SQLite file or PostgreSQL database (see [`store`]),
//! spoken to over HTTP.

#![allow(dead_code)]

pub mod process;
pub mod proxy;
pub mod receiver;
pub mod s3;
pub mod sqs;
pub mod store;
pub mod traffic;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard_domain::credentials::{self, CredentialKind};
use switchboard_server::Config;
use switchboard_server::app::{self, RunningServer};
use switchboard_server::bootstrap;

pub struct TestServer {
    pub base: String,
    /// The bootstrapped company's key.
    pub company_key: String,
    pub client: reqwest::Client,
    pub data_dir: tempfile::TempDir,
    server: Option<RunningServer>,
    /// Dropped after the server (fields drop in order).
    store: Option<store::TestStore>,
}

/// A response: status and JSON body (`Value::Null` when the body is empty or not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    /// Fails the test unless the status is `expected`; returns the body.
    #[track_caller]
    pub fn expect(self, expected: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            expected,
            "unexpected status; body: {}",
            self.body
        );
        self.body
    }

    /// Fails unless this is the contract's error body with this status and
    /// type, and the message mentions `needle`.
    #[track_caller]
    pub fn expect_error(self, status: u16, error_type: &str, needle: &str) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        assert_eq!(self.body["type"], error_type, "body: {}", self.body);
        let message = self.body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(needle),
            "message `{message}` does not mention `{needle}`"
        );
        assert!(
            self.body["requestId"]
                .as_str()
                .is_some_and(|id| !id.is_empty()),
            "requestId missing: {}",
            self.body
        );
        self.body
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Starts a server; `adjust` may change the test configuration first.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let data_dir = tempfile::tempdir().expect("temporary directory");
        let company_key = credentials::generate(CredentialKind::Company)
            .reveal()
            .to_owned();
        let mut config = Config::default();
        config.http.listen = "127.0.0.1:0".parse().unwrap();
        config.data_dir = data_dir.path().to_owned();
        config.bootstrap.company_key = Some(company_key.clone().into());
        config.bootstrap.company_name = "Test Company".into();
        config.database.sqlite_durability = switchboard_server::config::SqliteDurability::Normal;
        config.delivery.allow_targets = "127.0.0.1/32".into();
        config.delivery.retry_schedule = "20ms,50ms,100ms".into();
        config.delivery.poll_interval = Duration::from_millis(200);
        config.delivery.timeout = Duration::from_secs(2);
        config.delivery.lease = Duration::from_secs(5);
        let store = store::TestStore::create().await;
        store.configure(&mut config);
        adjust(&mut config);
        let server = app::start(&config).await.expect("server starts");
        TestServer {
            base: format!("http://{}", server.addr),
            company_key,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            data_dir,
            server: Some(server),
            store: Some(store),
        }
    }

    /// The helpers of this harness for a server running elsewhere (a
    /// separate process) at `base`.
    pub fn attach(base: &str, company_key: &str) -> TestServer {
        TestServer {
            base: base.to_owned(),
            company_key: company_key.to_owned(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            data_dir: tempfile::tempdir().expect("temporary directory"),
            server: None,
            store: None,
        }
    }

    /// The environment that points another process (the CLI) at this
    /// server's database, when it is not the data directory's SQLite file.
    pub fn database_env(&self) -> Vec<(&'static str, String)> {
        self.store
            .as_ref()
            .map(store::TestStore::env)
            .unwrap_or_default()
    }

    /// Waits (bounded) until this server's delivery workers have attempted
    /// every delivery due by now and stored each outcome: before reading the
    /// delivery log or metrics after a receiver saw a request (it sees it
    /// before the server has the answer), and before showing that something
    /// was *not* delivered. Retries due later are not waited for.
    pub async fn settle(&self) {
        let server = self
            .server
            .as_ref()
            .expect("settle needs a server in this process");
        tokio::time::timeout(
            Duration::from_secs(15),
            server.deliveries_settled(Duration::ZERO),
        )
        .await
        .expect("the delivery workers settled within 15 s");
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("server stops cleanly");
        }
    }

    /// Any request; `body` is sent as JSON when given.
    pub async fn call(&self, method: Method, path: &str, key: &str, body: Option<Value>) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if !key.is_empty() {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request reaches the server");
        reply(response).await
    }

    /// The deliveries of the log at `log` (a delivery-log path with its
    /// query, read with the company key) once `done` holds of them, read
    /// every 50 ms for at most `within`; `what` names what is waited for.
    pub async fn wait_for_log(
        &self,
        log: &str,
        what: &str,
        within: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let listed = self.get(log, &self.company_key).await.expect(200);
            let deliveries = listed["deliveries"].as_array().unwrap().clone();
            if done(&deliveries) {
                return deliveries;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "waited {within:?} for {what}; the log holds {deliveries:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("request reaches the server")
            .text()
            .await
            .expect("the metrics are text")
    }

    /// `POST …/replay` of the bot's integration, with the company key.
    pub async fn replay(&self, bot: &str, integration: &str, body: Value) -> Reply {
        self.post(
            &format!("/v2/users/bots/{bot}/integrations/{integration}/replay"),
            &self.company_key,
            body,
        )
        .await
    }

    pub async fn get(&self, path: &str, key: &str) -> Reply {
        self.call(Method::GET, path, key, None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Reply {
        self.call(Method::POST, path, key, Some(body)).await
    }

    pub async fn put(&self, path: &str, key: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, key, Some(body)).await
    }

    pub async fn patch(&self, path: &str, key: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, key, Some(body)).await
    }

    pub async fn delete(&self, path: &str, key: &str) -> Reply {
        self.call(Method::DELETE, path, key, None).await
    }

    /// A new person of the bootstrapped company and a user token for them.
    pub async fn person(&self, name: &str) -> (String, String) {
        let email = format!("{}@example.com", name.to_lowercase().replace(' ', "."));
        let user = self
            .post(
                "/v2/users",
                &self.company_key,
                json!({"name": name, "email": email}),
            )
            .await
            .expect(200);
        let id = user["user"]["id"].as_str().unwrap().to_owned();
        let token = self
            .post(
                &format!("/v2/users/{id}/tokens"),
                &self.company_key,
                json!({}),
            )
            .await
            .expect(200);
        (id, token["token"].as_str().unwrap().to_owned())
    }

    /// A new bot of the bootstrapped company and a bot key.
    pub async fn bot(&self, name: &str) -> (String, String) {
        let bot = self
            .post("/v2/users/bots", &self.company_key, json!({"name": name}))
            .await
            .expect(200);
        let id = bot["id"].as_str().unwrap().to_owned();
        let key = self
            .post(
                &format!("/v2/users/bots/{id}/keys"),
                &self.company_key,
                json!({}),
            )
            .await
            .expect(200);
        (id, key["key"].as_str().unwrap().to_owned())
    }

    /// A group channel created by the token's user with these other members.
    pub async fn channel(&self, token: &str, members: &[&str]) -> String {
        let created = self
            .post(
                "/v2/conversations/channels",
                token,
                json!({"subject": "Test", "members": members}),
            )
            .await
            .expect(200);
        created["channel"]["channelId"].as_str().unwrap().to_owned()
    }

    /// Sends a text message and returns its id.
    pub async fn say(&self, token: &str, channel: &str, text: &str) -> String {
        let sent = self
            .post(
                &format!("/v2/conversations/channels/{channel}/messages"),
                token,
                json!({"text": text}),
            )
            .await
            .expect(200);
        sent["message"]["messageId"].as_str().unwrap().to_owned()
    }

    /// The channel's latest 100 messages, newest first, as this token's user reads them.
    pub async fn messages(&self, token: &str, channel: &str) -> Vec<Value> {
        let mut listed = self
            .get(
                &format!("/v2/conversations/channels/{channel}/messages?limit=100"),
                token,
            )
            .await
            .expect(200);
        match listed["messages"].take() {
            Value::Array(messages) => messages,
            other => panic!("no message list: {other}"),
        }
    }

    /// How many messages the channel lists for this token's user.
    pub async fn message_count(&self, token: &str, channel: &str) -> usize {
        self.messages(token, channel).await.len()
    }

    /// A webhook integration of the bot to `url`; returns (integration id, secret).
    pub async fn webhook(&self, bot: &str, url: &str, extra: Value) -> (String, String) {
        self.integration(bot, json!({"type": "webhook", "url": url}), extra)
            .await
    }

    /// A pull integration of the bot (its events are fetched with its key); its id.
    pub async fn pull_integration(&self, bot: &str) -> String {
        self.integration(bot, json!({"type": "pull"}), json!({}))
            .await
            .0
    }

    /// An SQS integration of the bot to a queue of the moto server at
    /// `endpoint`; returns (integration id, signing secret).
    pub async fn sqs_integration(
        &self,
        bot: &str,
        queue_url: &str,
        endpoint: &str,
        extra: Value,
    ) -> (String, String) {
        let body = json!({
            "type": "sqs",
            "queueUrl": queue_url,
            "region": sqs::REGION,
            "accessKeyId": sqs::ACCESS_KEY_ID,
            "secretAccessKey": sqs::SECRET_ACCESS_KEY,
            "endpointUrl": endpoint,
        });
        self.integration(bot, body, extra).await
    }

    /// Creates an integration from `body` with the fields of `extra` added;
    /// returns (integration id, signing secret).
    async fn integration(&self, bot: &str, mut body: Value, extra: Value) -> (String, String) {
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        let created = self
            .post(
                &format!("/v2/users/bots/{bot}/integrations"),
                &self.company_key,
                body,
            )
            .await
            .expect(200);
        (
            created["integration"]["integrationId"]
                .as_str()
                .unwrap()
                .to_owned(),
            created["secret"].as_str().unwrap().to_owned(),
        )
    }

    /// A second company in the same database, with its company key.
    pub async fn second_company(&self) -> String {
        let key = credentials::generate(CredentialKind::Company);
        let server = self.server.as_ref().unwrap();
        bootstrap::create_company(server.store.as_ref(), "Other Company", &key)
            .await
            .expect("second company");
        key.reveal().to_owned()
    }
}

/// A loopback port that was free a moment ago (for peers that take a port
/// number rather than a listener).
pub async fn free_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

pub async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        body,
        headers,
    }
}
