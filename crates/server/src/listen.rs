//! `switchboard listen --forward-to URL`: a bot's live events on a
//! developer's machine with no public URL and no tunnel. It fetches the
//! bot's events from a server over the pull transport and forwards each to
//! the local URL as a webhook would come — signed (Standard Webhooks and
//! `x-signature`) with a local secret it prints — then acknowledges it when
//! the local bot answers 2xx, and releases it otherwise (it comes back).
//!
//! With a company key and `--bot`, a bot without a pull integration gets one
//! for the session, deleted when `listen` stops (Ctrl-C); with a bot key the
//! bot must have one already. The bot answers through the API as usual.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_domain::credentials::new_webhook_secret;
use switchboard_protocol::api::PulledEventsResponse;
use switchboard_protocol::signing::{WebhookSecret, standard_signature_header};

use crate::output;

/// What `listen` is told.
pub struct Listen {
    /// The switchboard server, such as `http://127.0.0.1:8080`.
    pub server: String,
    /// A bot key, or a company key with `bot`.
    pub key: String,
    pub bot: Option<String>,
    /// Where each event goes.
    pub forward_to: String,
    /// The secret events are signed with (a new one when absent).
    pub secret: Option<String>,
    /// How long the local bot has to answer.
    pub timeout: Duration,
}

/// Seconds a fetch waits for events.
const WAIT_SECONDS: u32 = 20;
/// Seconds each fetched event stays held: enough for the local bot to answer.
const VISIBILITY_SECONDS: u32 = 60;
/// Longest pause between two tries to reach an unreachable server.
const MOST_BACKOFF: Duration = Duration::from_secs(5);

/// Forwards events until Ctrl-C.
pub async fn run(listen: Listen) -> anyhow::Result<()> {
    let secret = match &listen.secret {
        Some(text) => {
            WebhookSecret::parse(text).map_err(|err| anyhow::anyhow!("--secret: {err}"))?
        }
        None => new_webhook_secret(),
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(u64::from(WAIT_SECONDS) + 10))
        .build()
        .context("making the HTTP client")?;
    let api = Api {
        client: client.clone(),
        server: listen.server.trim_end_matches('/').to_owned(),
        key: listen.key.clone(),
        bot: listen.bot.clone(),
    };
    let session = api.ensure_pull_integration().await?;
    output::say(&format!(
        "forwarding the events of bot {} to {}\nsigning secret (verify with it): {}\nCtrl-C to stop",
        listen.bot.as_deref().unwrap_or("of this key"),
        listen.forward_to,
        secret.expose()
    ));
    let forwarding = forward_until_stopped(&api, &listen, &secret);
    let outcome = tokio::select! {
        outcome = forwarding => outcome,
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    if let Some(integration) = session {
        api.delete_integration(&integration).await?;
        output::say(&format!(
            "deleted the session's pull integration {integration}"
        ));
    }
    outcome
}

async fn forward_until_stopped(
    api: &Api,
    listen: &Listen,
    secret: &WebhookSecret,
) -> anyhow::Result<()> {
    let forwarder = reqwest::Client::builder()
        .timeout(listen.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("making the HTTP client")?;
    let mut backoff = Duration::from_millis(250);
    loop {
        let events = match api.fetch().await {
            Ok(events) => {
                backoff = Duration::from_millis(250);
                events
            }
            Err(Failure::Fatal(err)) => return Err(err),
            Err(Failure::Passing(why)) => {
                output::say(&format!(
                    "{} server unreachable ({why}); trying again",
                    now()
                ));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MOST_BACKOFF);
                continue;
            }
        };
        for pulled in events.events {
            let started = Instant::now();
            let body = serde_json::to_vec(&pulled.event).context("encoding an event")?;
            let id = pulled.event["id"].as_str().unwrap_or_default();
            let timestamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_secs() as i64)
                .unwrap_or(0);
            let sent = forwarder
                .post(&listen.forward_to)
                .header("content-type", "application/json")
                .header("webhook-id", id)
                .header("webhook-timestamp", timestamp.to_string())
                .header(
                    "webhook-signature",
                    standard_signature_header(&[secret], id, timestamp, &body),
                )
                .header("x-signature", secret.sign_body(&body))
                .body(body)
                .send()
                .await;
            let millis = started.elapsed().as_millis();
            let (status, delivered, retry_after) = match &sent {
                Ok(answer) => (
                    answer.status().as_u16().to_string(),
                    answer.status().is_success(),
                    answer
                        .headers()
                        .get("retry-after")
                        .and_then(|value| value.to_str().ok()?.parse::<u32>().ok()),
                ),
                Err(err) if err.is_timeout() => ("timeout".to_owned(), false, None),
                Err(_) => ("unreachable".to_owned(), false, None),
            };
            output::say(&format!(
                "{}  {:<22} {:<36} {:>11}  {millis} ms",
                now(),
                pulled.event["type"].as_str().unwrap_or("?"),
                pulled.event["data"]["channel"]["channelId"]
                    .as_str()
                    .unwrap_or("-"),
                status
            ));
            let settled = if delivered {
                api.settle("ack", json!({"receipts": [pulled.receipt]}))
                    .await
            } else {
                api.settle(
                    "release",
                    json!({"receipts": [pulled.receipt], "retryAfterSeconds": retry_after.unwrap_or(1).min(3_600)}),
                )
                .await
            };
            if let Err(err) = settled {
                output::say(&format!("{} could not settle {id}: {err:#}", now()));
            }
        }
    }
}

/// The time of day, for the line printed per event.
fn now() -> String {
    let micros = switchboard_domain::now_micros();
    let text = switchboard_protocol::Timestamp::from_unix_micros(micros).to_string();
    // `2026-12-02T14:06:43.386258Z` → `14:06:43.386`
    text.get(11..23).unwrap_or(&text).to_owned()
}

/// A failed call: worth retrying (the server is away), or not (the key is refused).
enum Failure {
    Passing(String),
    Fatal(anyhow::Error),
}

/// The server's API, as `listen` uses it.
struct Api {
    client: reqwest::Client,
    server: String,
    key: String,
    bot: Option<String>,
}

impl Api {
    fn bot_query(&self) -> String {
        self.bot
            .as_ref()
            .map(|bot| format!("&botId={bot}"))
            .unwrap_or_default()
    }

    async fn fetch(&self) -> Result<PulledEventsResponse, Failure> {
        let url = format!(
            "{}/v2/bot/events?wait={WAIT_SECONDS}&limit=10&visibilityTimeout={VISIBILITY_SECONDS}{}",
            self.server,
            self.bot_query()
        );
        let answer = self
            .client
            .get(url)
            .bearer_auth(&self.key)
            .send()
            .await
            .map_err(|err| Failure::Passing(err.to_string()))?;
        let status = answer.status();
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(Failure::Passing(format!("it answered {status}")));
        }
        let body: Value = answer
            .json()
            .await
            .map_err(|err| Failure::Passing(err.to_string()))?;
        if !status.is_success() {
            return Err(Failure::Fatal(refused(status, &body)));
        }
        serde_json::from_value(body).map_err(|err| Failure::Fatal(err.into()))
    }

    async fn settle(&self, what: &str, body: Value) -> anyhow::Result<()> {
        let answer = self
            .client
            .post(format!(
                "{}/v2/bot/events/{what}?{}",
                self.server,
                self.bot_query()
            ))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await?;
        let status = answer.status();
        if !status.is_success() {
            bail!(refused(status, &answer.json().await.unwrap_or(Value::Null)));
        }
        Ok(())
    }

    /// Makes a pull integration for the session when the bot (named, with a
    /// company key) has none; its id, to delete at the end. With a bot key
    /// nothing is made: the first fetch says whether the bot has one.
    async fn ensure_pull_integration(&self) -> anyhow::Result<Option<String>> {
        let Some(bot) = &self.bot else {
            return Ok(None);
        };
        let integrations = format!("{}/v2/users/bots/{bot}/integrations", self.server);
        let answer = self
            .client
            .get(&integrations)
            .bearer_auth(&self.key)
            .send()
            .await
            .with_context(|| format!("reaching {}", self.server))?;
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(refused(status, &body));
        }
        let pulled = body["integrations"]
            .as_array()
            .is_some_and(|list| list.iter().any(|kept| kept["type"] == "pull"));
        if pulled {
            return Ok(None);
        }
        let answer = self
            .client
            .post(&integrations)
            .bearer_auth(&self.key)
            .json(&json!({"type": "pull"}))
            .send()
            .await?;
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(refused(status, &body));
        }
        let id = body["integration"]["integrationId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        output::say(&format!("made pull integration {id} for this session"));
        Ok(Some(id))
    }

    async fn delete_integration(&self, id: &str) -> anyhow::Result<()> {
        let bot = self.bot.as_deref().unwrap_or_default();
        let answer = self
            .client
            .delete(format!(
                "{}/v2/users/bots/{bot}/integrations/{id}",
                self.server
            ))
            .bearer_auth(&self.key)
            .send()
            .await?;
        if !answer.status().is_success() {
            let status = answer.status();
            bail!(refused(status, &answer.json().await.unwrap_or(Value::Null)));
        }
        Ok(())
    }
}

/// The server's refusal as an error: its status, error type and message.
fn refused(status: StatusCode, body: &Value) -> anyhow::Error {
    anyhow::anyhow!(
        "the server answered {status}: {} {}",
        body["type"].as_str().unwrap_or_default(),
        body["message"].as_str().unwrap_or_default()
    )
}
