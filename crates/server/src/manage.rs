//! The admin commands against a running server (`--server URL` and a
//! company key from `--key` or `SWITCHBOARD_KEY`): people and their tokens,
//! company keys, bots and their keys,
//! integrations and their operations, the delivery log (`--follow` prints
//! new attempts as they come) and replay. They print a table, or the API's
//! JSON with `--json`; a refusal prints the server's error type, message and
//! request id and exits 1. They speak the API through the bot SDK's client,
//! with its retries.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};
use switchboard_bot_sdk::Client;
use switchboard_protocol::Timestamp;

use crate::output;

/// Where the server is and the credential to use.
#[derive(Args, Clone, Debug)]
#[group(skip)]
pub struct Remote {
    /// The switchboard server.
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_SERVER",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    pub server: String,
    /// A company key.
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub key: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum PeopleCommand {
    /// The company's people and bots, by creation (`--email` finds one).
    List {
        #[arg(long)]
        email: Option<String>,
    },
    /// Add a person.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
    },
    /// Make a user token for a person (shown once): what the person signs in with.
    NewToken {
        #[arg(long, value_name = "ID")]
        user: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum CompanyKeysCommand {
    /// The company the key belongs to (id, name, since when).
    Company,
    /// The company's keys (never the keys themselves).
    List,
    /// Make a company key (shown once).
    Create {
        /// A label, such as "ci".
        #[arg(long)]
        name: Option<String>,
        /// The key may only read.
        #[arg(long)]
        read_only: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum BotsCommand {
    /// The company's bots.
    List,
    /// Create a bot.
    Create {
        #[arg(long)]
        name: String,
    },
    /// Make a key for a bot (shown once).
    NewKey {
        #[arg(long, value_name = "ID")]
        bot: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum IntegrationsCommand {
    /// A bot's integrations.
    List {
        #[arg(long, value_name = "ID")]
        bot: String,
    },
    /// Create a webhook (`--url`) or pull (`--pull`) integration; the
    /// signing secret is shown once.
    Create {
        #[arg(long, value_name = "ID")]
        bot: String,
        /// The webhook receiver's URL.
        #[arg(long, conflicts_with = "pull", required_unless_present = "pull")]
        url: Option<String>,
        /// The bot fetches its events (no URL).
        #[arg(long)]
        pull: bool,
    },
    /// Stop sending; events wait.
    Pause(IntegrationRef),
    /// Send again, what waited first.
    Resume(IntegrationRef),
    /// Queue an `integration:test` event.
    Test(IntegrationRef),
    /// A new signing secret (shown once); the previous one signs for a day more.
    RotateSecret(IntegrationRef),
}

/// One integration of one bot.
#[derive(Args, Debug)]
#[group(skip)]
pub struct IntegrationRef {
    #[arg(long, value_name = "ID")]
    pub bot: String,
    #[arg(long = "id", value_name = "INTEGRATION")]
    pub integration: String,
}

/// `deliveries`: the delivery log of an integration.
#[derive(Args, Debug)]
#[group(skip)]
pub struct Deliveries {
    #[command(flatten)]
    pub integration: IntegrationRef,
    /// Only `pending`, `delivered` or `dead` (dead letters).
    #[arg(long)]
    pub status: Option<String>,
    /// How many of the newest.
    #[arg(long, default_value_t = 25)]
    pub limit: u32,
    /// Keep printing deliveries as their attempts come, until Ctrl-C.
    #[arg(long, short = 'f')]
    pub follow: bool,
}

/// `replay`: deliver events again, with their ids.
#[derive(Args, Debug)]
#[group(skip)]
pub struct Replay {
    #[command(flatten)]
    pub integration: IntegrationRef,
    /// From this time (RFC 3339).
    #[arg(long, required_unless_present = "events")]
    pub since: Option<String>,
    /// Up to this time (default: now).
    #[arg(long)]
    pub until: Option<String>,
    /// These events instead of a time range.
    #[arg(long = "event", value_name = "EVENT_ID")]
    pub events: Vec<String>,
}

impl Remote {
    fn client(&self) -> anyhow::Result<Client> {
        let key = self
            .key
            .as_deref()
            .context("a company key is needed: --key or SWITCHBOARD_KEY")?;
        Ok(Client::new(&self.server, key))
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let answer = self
            .client()?
            .call::<Value>(method, path, body.as_ref(), None)
            .await?;
        Ok(answer)
    }

    /// Prints `answer` as JSON, or the rows `table` makes of it.
    fn show(&self, answer: &Value, table: impl FnOnce(&Value) -> String) {
        if self.json {
            output::say(&serde_json::to_string_pretty(answer).unwrap_or_default());
        } else {
            output::say(&table(answer));
        }
    }
}

pub async fn people(remote: &Remote, command: PeopleCommand) -> anyhow::Result<()> {
    match command {
        PeopleCommand::List { email } => {
            let path = match email {
                Some(email) => format!("/v2/users?limit=100&email={}", query_text(&email)),
                None => "/v2/users?limit=100".to_owned(),
            };
            let answer = remote.call(Method::GET, &path, None).await?;
            let columns = ["id", "name", "email", "bot", "createdAt"];
            remote.show(&answer, |answer| {
                table(
                    &["ID", "NAME", "EMAIL", "BOT", "CREATED"],
                    rows(&answer["users"], &columns),
                )
            });
        }
        PeopleCommand::Create { name, email } => {
            let body = json!({"name": name, "email": email});
            let answer = remote.call(Method::POST, "/v2/users", Some(body)).await?;
            remote.show(&answer, |made| {
                format!(
                    "created {} ({})",
                    text(&made["user"]["id"]),
                    text(&made["user"]["email"])
                )
            });
        }
        PeopleCommand::NewToken { user } => {
            let path = format!("/v2/users/{user}/tokens");
            let answer = remote.call(Method::POST, &path, Some(json!({}))).await?;
            remote.show(&answer, |made| {
                format!("user token (shown once): {}", text(&made["token"]))
            });
        }
    }
    Ok(())
}

pub async fn company_keys(remote: &Remote, command: CompanyKeysCommand) -> anyhow::Result<()> {
    match command {
        CompanyKeysCommand::Company => {
            let answer = remote.call(Method::GET, "/v2/company", None).await?;
            remote.show(&answer, |answer| {
                table(
                    &["ID", "NAME", "CREATED"],
                    rows(&json!([answer["company"]]), &["id", "name", "createdAt"]),
                )
            });
        }
        CompanyKeysCommand::List => {
            let answer = remote.call(Method::GET, "/v2/company/keys", None).await?;
            let columns = ["keyId", "name", "readOnly", "lastFour", "createdAt"];
            remote.show(&answer, |answer| {
                table(
                    &["ID", "NAME", "READ ONLY", "ENDS IN", "CREATED"],
                    rows(&answer["keys"], &columns),
                )
            });
        }
        CompanyKeysCommand::Create { name, read_only } => {
            let body = json!({"name": name, "readOnly": read_only});
            let answer = remote
                .call(Method::POST, "/v2/company/keys", Some(body))
                .await?;
            remote.show(&answer, |made| {
                format!("company key (shown once): {}", text(&made["key"]))
            });
        }
    }
    Ok(())
}

/// `text` for a query string: what a URL may not hold as it is, escaped.
fn query_text(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

pub async fn bots(remote: &Remote, command: BotsCommand) -> anyhow::Result<()> {
    match command {
        BotsCommand::List => {
            let answer = remote.call(Method::GET, "/v2/users/bots", None).await?;
            remote.show(&answer, |answer| {
                table(
                    &["ID", "NAME", "CREATED"],
                    rows(&answer["bots"], &["id", "name", "createdAt"]),
                )
            });
        }
        BotsCommand::Create { name } => {
            let answer = remote
                .call(Method::POST, "/v2/users/bots", Some(json!({"name": name})))
                .await?;
            remote.show(&answer, |bot| {
                format!("created bot {} ({})", text(&bot["id"]), text(&bot["name"]))
            });
        }
        BotsCommand::NewKey { bot } => {
            let path = format!("/v2/users/bots/{bot}/keys");
            let answer = remote.call(Method::POST, &path, Some(json!({}))).await?;
            remote.show(&answer, |made| {
                format!("bot key (shown once): {}", text(&made["key"]))
            });
        }
    }
    Ok(())
}

pub async fn integrations(remote: &Remote, command: IntegrationsCommand) -> anyhow::Result<()> {
    let operation = |integration: &IntegrationRef, what: &str| {
        format!(
            "/v2/users/bots/{}/integrations/{}/{what}",
            integration.bot, integration.integration
        )
    };
    let columns = ["integrationId", "type", "url", "state", "lastSuccessAt"];
    let headers = ["ID", "TYPE", "URL", "STATE", "LAST SUCCESS"];
    let one = |answer: &Value| {
        let mut shown = table(&headers, rows(&json!([answer["integration"]]), &columns));
        if let Some(secret) = answer["secret"].as_str() {
            shown.push_str(&format!("\nsigning secret (shown once): {secret}"));
        }
        shown
    };
    match command {
        IntegrationsCommand::List { bot } => {
            let path = format!("/v2/users/bots/{bot}/integrations");
            let answer = remote.call(Method::GET, &path, None).await?;
            remote.show(&answer, |answer| {
                table(&headers, rows(&answer["integrations"], &columns))
            });
        }
        IntegrationsCommand::Create { bot, url, pull } => {
            let body = match (url, pull) {
                (_, true) => json!({"type": "pull"}),
                (url, false) => json!({"type": "webhook", "url": url}),
            };
            let path = format!("/v2/users/bots/{bot}/integrations");
            let answer = remote.call(Method::POST, &path, Some(body)).await?;
            remote.show(&answer, one);
        }
        IntegrationsCommand::Pause(integration) => {
            let answer = remote
                .call(
                    Method::POST,
                    &operation(&integration, "pause"),
                    Some(json!({})),
                )
                .await?;
            remote.show(&answer, one);
        }
        IntegrationsCommand::Resume(integration) => {
            let answer = remote
                .call(
                    Method::POST,
                    &operation(&integration, "resume"),
                    Some(json!({})),
                )
                .await?;
            remote.show(&answer, one);
        }
        IntegrationsCommand::RotateSecret(integration) => {
            let path = operation(&integration, "rotate-secret");
            let answer = remote.call(Method::POST, &path, Some(json!({}))).await?;
            remote.show(&answer, one);
        }
        IntegrationsCommand::Test(integration) => {
            let answer = remote
                .call(
                    Method::POST,
                    &operation(&integration, "test"),
                    Some(json!({})),
                )
                .await?;
            remote.show(&answer, |queued| {
                format!("queued test event {}", text(&queued["eventId"]))
            });
        }
    }
    Ok(())
}

pub async fn deliveries(remote: &Remote, asked: Deliveries) -> anyhow::Result<()> {
    let integration = &asked.integration;
    let mut path = format!(
        "/v2/users/bots/{}/integrations/{}/deliveries?limit={}",
        integration.bot,
        integration.integration,
        asked.limit.clamp(1, 100)
    );
    if let Some(status) = &asked.status {
        path.push_str(&format!("&status={status}"));
    }
    let headers = ["DELIVERY", "EVENT", "TYPE", "STATUS", "ATTEMPTS", "LAST"];
    // What was printed: (delivery, attempts) — a delivery is printed again
    // when it has a new attempt.
    let mut printed: HashSet<(String, usize)> = HashSet::new();
    loop {
        let answer = remote.call(Method::GET, &path, None).await?;
        let mut fresh: Vec<Value> = answer["deliveries"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|delivery| {
                let attempts = delivery["attempts"].as_array().map_or(0, Vec::len);
                printed.insert((text(&delivery["deliveryId"]), attempts))
            })
            .collect();
        // Oldest first, as a log reads.
        fresh.reverse();
        if remote.json {
            for delivery in &fresh {
                output::say(&delivery.to_string());
            }
        } else if !fresh.is_empty() || !asked.follow {
            let lines: Vec<Vec<String>> = fresh.iter().map(delivery_row).collect();
            output::say(&table(&headers, lines));
        }
        if !asked.follow {
            return Ok(());
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// Slices a range replay is sent in: one request (one transaction on the
/// server) each, so a long range shows its progress, and a range of more
/// events than one request may queue (100,000) is replayed whole.
const REPLAY_SLICES: i64 = 20;

pub async fn replay(remote: &Remote, asked: Replay) -> anyhow::Result<()> {
    let integration = &asked.integration;
    let path = format!(
        "/v2/users/bots/{}/integrations/{}/replay",
        integration.bot, integration.integration
    );
    let answer = match &asked.since {
        Some(since) if asked.events.is_empty() => {
            replay_range(remote, &path, since, asked.until.as_deref()).await?
        }
        _ => {
            let body = json!({"eventIds": asked.events});
            remote.call(Method::POST, &path, Some(body)).await?
        }
    };
    remote.show(&answer, |queued| {
        format!("queued {} events again", queued["queued"])
    });
    Ok(())
}

/// Replays `since`..=`until` (default: the server's now) in
/// [`REPLAY_SLICES`] slices of time, with a progress bar on a terminal;
/// answers `{queued}` for the whole range.
async fn replay_range(
    remote: &Remote,
    path: &str,
    since: &str,
    until: Option<&str>,
) -> anyhow::Result<Value> {
    let parse = |field: &str, text: &str| {
        Timestamp::parse(text)
            .map(|time| time.unix_micros())
            .map_err(|_| anyhow::anyhow!("--{field}: `{text}` is not an RFC 3339 time"))
    };
    let start = parse("since", since)?;
    let end = match until {
        Some(until) => parse("until", until)?,
        None => switchboard_domain::now_micros(),
    };
    let slices = time_slices(start, end, until.is_some());
    let count = slices.len();
    let progress = indicatif::ProgressBar::new(count as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "replaying {bar:30} {pos}/{len} slices of the range, {msg}",
        )
        .expect("the template is valid"),
    );
    let mut queued = 0u64;
    for (done, (from, to)) in slices.into_iter().enumerate() {
        let to = to.map_or(Value::Null, |to| {
            json!(Timestamp::from_unix_micros(to).as_str())
        });
        let body = json!({"since": Timestamp::from_unix_micros(from).as_str(), "until": to});
        let answer = remote.call(Method::POST, path, Some(body)).await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(err) => {
                progress.abandon();
                return Err(err.context(format!(
                    "replayed {done} of {count} slices ({queued} events queued) before this"
                )));
            }
        };
        queued += answer["queued"].as_u64().unwrap_or_default();
        progress.inc(1);
        progress.set_message(format!("{queued} events queued"));
    }
    progress.finish_and_clear();
    Ok(json!({ "queued": queued }))
}

/// `start..=end` cut into at most [`REPLAY_SLICES`] contiguous slices, each
/// `(since, until)` in microseconds; the last one is open (`None`: the
/// server's now) unless the range had an end of its own.
fn time_slices(start: i64, end: i64, has_end: bool) -> Vec<(i64, Option<i64>)> {
    if end < start {
        // An empty range, as the server takes it: one request.
        return vec![(start, has_end.then_some(end))];
    }
    let span = end.saturating_sub(start).saturating_add(1).max(1);
    let slices = REPLAY_SLICES.min(span);
    (0..slices)
        .map(|slice| {
            let from = start + span * slice / slices;
            let to = start + span * (slice + 1) / slices - 1;
            let last = slice + 1 == slices;
            (from, (has_end || !last).then_some(to))
        })
        .collect()
}

fn delivery_row(delivery: &Value) -> Vec<String> {
    let attempts = delivery["attempts"].as_array().cloned().unwrap_or_default();
    let last = attempts.last().map_or(String::new(), |attempt| {
        let status = attempt["statusCode"].as_u64().map(|code| code.to_string());
        let error = attempt["error"].as_str().map(str::to_owned);
        format!(
            "{} {} {}",
            text(&attempt["outcome"]),
            status.unwrap_or_default(),
            error.unwrap_or_default()
        )
        .trim()
        .to_owned()
    });
    vec![
        text(&delivery["deliveryId"]),
        text(&delivery["eventId"]),
        text(&delivery["eventType"]),
        text(&delivery["status"]),
        attempts.len().to_string(),
        last,
    ]
}

/// The fields of each object of `list`, as text.
fn rows(list: &Value, fields: &[&str]) -> Vec<Vec<String>> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| fields.iter().map(|field| text(&item[*field])).collect())
                .collect()
        })
        .unwrap_or_default()
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Columns padded to their widest cell.
fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = vec![line(headers.iter().map(|h| (*h).to_owned()).collect())];
    out.extend(rows.into_iter().map(line));
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_cut_into_contiguous_slices_that_cover_it() {
        let (start, end) = (1_000_000, 1_000_000 + 7 * 24 * 3_600 * 1_000_000);
        let slices = time_slices(start, end, true);
        assert_eq!(slices.len(), REPLAY_SLICES as usize);
        assert_eq!(slices[0].0, start);
        assert_eq!(slices.last().unwrap().1, Some(end));
        for pair in slices.windows(2) {
            assert_eq!(pair[0].1.unwrap() + 1, pair[1].0, "no gap, no overlap");
        }
        // Without an end, the last slice runs to the server's now.
        assert_eq!(time_slices(start, end, false).last().unwrap().1, None);
        // A range shorter than the slices is cut in microseconds.
        assert_eq!(
            time_slices(5, 7, true),
            vec![(5, Some(5)), (6, Some(6)), (7, Some(7))]
        );
        // An end before the start is one request, which queues nothing.
        assert_eq!(time_slices(9, 3, true), vec![(9, Some(3))]);
    }
}
