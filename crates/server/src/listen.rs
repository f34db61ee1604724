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

use anyhow::Context;
use reqwest::Method;
use serde_json::{Value, json};
use switchboard_bot_sdk::{ApiError, Client};
use switchboard_domain::credentials::new_webhook_secret;
use switchboard_protocol::api::PulledEventsResponse;
use switchboard_protocol::signing::WebhookSecret;

use crate::output;
use crate::trigger::post_signed;

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
    let api = Api {
        client: Client::new(&listen.server, &listen.key),
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
            let sent = post_signed(&forwarder, &listen.forward_to, secret, id, body).await;
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

/// The server's API, as `listen` uses it: the bot SDK's client, with the
/// bot named for a company key.
struct Api {
    client: Client,
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
        let path = format!(
            "/v2/bot/events?wait={WAIT_SECONDS}&limit=10&visibilityTimeout={VISIBILITY_SECONDS}{}",
            self.bot_query()
        );
        match self
            .client
            .call(Method::GET, &path, None::<&()>, None)
            .await
        {
            Ok(events) => Ok(events),
            Err(ApiError::Transport(err)) => Err(Failure::Passing(err.to_string())),
            Err(refused)
                if refused
                    .status()
                    .is_some_and(|status| status >= 500 || status == 429) =>
            {
                Err(Failure::Passing(refused.to_string()))
            }
            Err(refused) => Err(Failure::Fatal(refused.into())),
        }
    }

    async fn settle(&self, what: &str, body: Value) -> anyhow::Result<()> {
        let path = format!("/v2/bot/events/{what}?{}", self.bot_query());
        self.client
            .call::<Value>(Method::POST, &path, Some(&body), None)
            .await?;
        Ok(())
    }

    /// Makes a pull integration for the session when the bot (named, with a
    /// company key) has none; its id, to delete at the end. With a bot key
    /// nothing is made: the first fetch says whether the bot has one.
    async fn ensure_pull_integration(&self) -> anyhow::Result<Option<String>> {
        let Some(bot) = &self.bot else {
            return Ok(None);
        };
        let integrations = format!("/v2/users/bots/{bot}/integrations");
        let listed: Value = self
            .client
            .call(Method::GET, &integrations, None::<&()>, None)
            .await?;
        let pulled = listed["integrations"]
            .as_array()
            .is_some_and(|list| list.iter().any(|kept| kept["type"] == "pull"));
        if pulled {
            return Ok(None);
        }
        let made: Value = self
            .client
            .call(
                Method::POST,
                &integrations,
                Some(&json!({"type": "pull"})),
                None,
            )
            .await?;
        let id = made["integration"]["integrationId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        output::say(&format!("made pull integration {id} for this session"));
        Ok(Some(id))
    }

    async fn delete_integration(&self, id: &str) -> anyhow::Result<()> {
        let bot = self.bot.as_deref().unwrap_or_default();
        let path = format!("/v2/users/bots/{bot}/integrations/{id}");
        self.client
            .call::<Value>(Method::DELETE, &path, None::<&()>, None)
            .await?;
        Ok(())
    }
}
