//! The switchboard end-to-end benchmark.
//!
//! Starts the release server on a fresh SQLite file per scenario — or, with
//! `--database postgres`, on a fresh PostgreSQL database shared by
//! `--instances` processes, requests spread over them — with a fast webhook
//! receiver on loopback, and measures:
//! - **api**: `SendMessage` alone with N in flight, no integration to deliver
//!   to: accepted messages/s and the API's answer time;
//! - **throughput**: messages sent through the API with N in flight until all
//!   are delivered: API requests/s, deliveries/s, delivery latency;
//! - **fixed rate**: latency while sending at a fixed rate, whatever the
//!   answers (open loop); requests the server refuses with 503 because it
//!   cannot keep up (its database connections stayed busy past
//!   `database.acquire_timeout`) are counted as refused, not retried;
//! - **overload**: `SendMessage` alone from four times as many clients at
//!   once as the server takes requests in flight: accepted, refused (503),
//!   the answer time of what was accepted, peak memory;
//! - **backlog**: events queued while the receiver answers 503, then the
//!   seconds to deliver them all once it recovers;
//! - **sqs**: throughput to an SQS queue of moto's server, read by consumers,
//!   with batching (`SendMessageBatch`) on and then off;
//! - the server's peak memory in each.
//!
//! Latency is end to end (except in **api**): from the start of the `SendMessage` request to the
//! first arrival of its `chat:message:new` at the receiver.

mod ceilings;
mod receiver;
mod recovery;
mod server;
mod soak;
mod sqs;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use serde::Serialize;
use serde_json::json;

use receiver::Receipts;
use server::{Backend, Server, Setup};

#[derive(Parser, Clone)]
#[command(about = "The switchboard end-to-end benchmark")]
struct Args {
    /// The switchboard binary to measure.
    #[arg(long)]
    server: String,
    /// Messages in the throughput scenario.
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    /// Requests in flight in the throughput and backlog scenarios.
    #[arg(long, default_value_t = 64)]
    in_flight: usize,
    /// Messages per second in the fixed-rate scenario, one run each.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000")]
    rates: Vec<u64>,
    /// Clients sending at once in the overload scenario.
    #[arg(long, default_value_t = 1_024)]
    overload_in_flight: usize,
    /// Seconds of the fixed-rate scenario (and of overload, at most 10).
    #[arg(long, default_value_t = 20)]
    rate_seconds: u64,
    /// Events in the backlog scenario.
    #[arg(long, default_value_t = 100_000)]
    backlog: usize,
    /// Channels the messages are spread over (each is one ordered lane).
    #[arg(long, default_value_t = 64)]
    channels: usize,
    /// `SWITCHBOARD_DATABASE__SQLITE_DURABILITY` for the server (`full` or `normal`).
    #[arg(long, default_value = "full")]
    durability: String,
    /// `sqlite` (one process on a file) or `postgres` (a fresh database on
    /// `--postgres-server`, shared by `--instances` processes).
    #[arg(long, default_value = "sqlite")]
    database: String,
    /// The PostgreSQL server the bench creates its databases on.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres_server: String,
    /// Server processes sharing the PostgreSQL database.
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// Which scenarios to run: any of ceilings, idle, api, throughput,
    /// rate, overload, backlog, recovery, sqs, soak (not run unless named).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ceilings,idle,api,throughput,rate,overload,backlog,recovery,sqs"
    )]
    scenarios: Vec<String>,
    /// moto's `moto_server`, for the sqs scenario.
    #[arg(long, default_value = "moto_server")]
    moto: String,
    /// Messages in each run of the sqs scenario.
    #[arg(long, default_value_t = 1_000)]
    sqs_messages: usize,
    /// Seconds of the soak scenario.
    #[arg(long, default_value_t = 300)]
    soak_seconds: u64,
    /// Messages per second in the soak scenario.
    #[arg(long, default_value_t = 1_000)]
    soak_rate: u64,
    /// Retention of delivered events and dead letters in the soak, seconds.
    #[arg(long, default_value_t = 60)]
    soak_retention: u64,
    /// Where to write the JSON results.
    #[arg(long, default_value = "bench/results")]
    out: String,
}

impl Args {
    fn backend(&self) -> anyhow::Result<Backend> {
        match self.database.as_str() {
            "sqlite" => {
                anyhow::ensure!(self.instances == 1, "--instances needs --database postgres");
                Ok(Backend::Sqlite {
                    durability: self.durability.clone(),
                })
            }
            "postgres" => Ok(Backend::Postgres {
                server: self.postgres_server.clone(),
                instances: self.instances,
            }),
            other => anyhow::bail!("--database must be sqlite or postgres, not {other}"),
        }
    }
}

#[derive(Serialize, Default, Clone)]
struct Latency {
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

#[derive(Serialize, Default, Clone)]
struct Outcome {
    scenario: String,
    messages: usize,
    api_requests_per_second: f64,
    deliveries_per_second: f64,
    latency: Latency,
    /// How long the API took to answer, where the scenario's latency is
    /// send-to-bot (fixed rate): the part of the tail spent accepting.
    api_latency: Option<Latency>,
    /// From the API's answer to the bot receiving the event (fixed rate):
    /// the part of the tail spent delivering.
    after_answer: Option<Latency>,
    drain_seconds: Option<f64>,
    peak_memory_mib: Option<f64>,
    /// CPU time per message of the server (and of PostgreSQL's backends
    /// for its database), in µs, over the scenario's sending and delivery.
    cpu_us_per_message: Option<f64>,
    seconds: f64,
    /// Requests answered 503 because the server was overloaded (fixed rate
    /// and overload).
    refused: usize,
    /// CPU time the hypervisor took from this machine's cores while the
    /// scenario ran (all its rows share it), in seconds: a shared machine's
    /// other tenants lower rates and lengthen tails, and a run with seconds
    /// stolen is not comparable with one without.
    stolen_seconds: f64,
}

/// What a `SendMessage` request came to.
enum Sent {
    /// Stored: the message id, when the request started and how long it took.
    Accepted(String, Instant, Duration),
    /// Answered 503: the server could not take it now.
    Refused,
}

/// Sends one message.
async fn send(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    text: String,
) -> anyhow::Result<Sent> {
    let started = Instant::now();
    let response = client
        .post(url)
        .bearer_auth(token)
        .json(&json!({"text": text}))
        .send()
        .await?;
    if response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
        return Ok(Sent::Refused);
    }
    anyhow::ensure!(
        response.status().is_success(),
        "SendMessage answered {}",
        response.status()
    );
    let answer: SendAnswer = response.json().await.context("SendMessage's answer")?;
    Ok(Sent::Accepted(
        answer.message.message_id,
        started,
        started.elapsed(),
    ))
}

/// The one field of SendMessage's answer the load generator reads: the rest
/// is skipped unparsed, so that the generator spends little of the cores it
/// shares with the server.
#[derive(serde::Deserialize)]
struct SendAnswer {
    message: SentMessage,
}

#[derive(serde::Deserialize)]
struct SentMessage {
    #[serde(rename = "messageId")]
    message_id: String,
}

/// The SendMessage URL of every channel through every instance, so that
/// consecutive requests go to different instances.
fn message_urls(bases: &[String], channels: &[String]) -> Vec<String> {
    channels
        .iter()
        .flat_map(|c| {
            bases
                .iter()
                .map(move |base| format!("{base}/v2/conversations/channels/{c}/messages"))
        })
        .collect()
}

/// Sends `count` messages round-robin over the channels (and instances) with
/// `in_flight` at once: when each request started, and how long it took.
async fn send_many(
    client: &reqwest::Client,
    bases: &[String],
    setup: &Setup,
    count: usize,
    in_flight: usize,
) -> anyhow::Result<HashMap<String, (Instant, Duration)>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..in_flight {
        let (client, next) = (client.clone(), next.clone());
        let token = setup.token.clone();
        let urls = message_urls(bases, &setup.channels);
        workers.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= count {
                    return anyhow::Ok(sent);
                }
                let text = format!("message {index}");
                match send(&client, &urls[index % urls.len()], &token, text).await? {
                    Sent::Accepted(id, started, took) => sent.push((id, (started, took))),
                    Sent::Refused => anyhow::bail!("SendMessage answered 503 Service Unavailable"),
                }
            }
        }));
    }
    let mut all = HashMap::with_capacity(count);
    for worker in workers {
        all.extend(worker.await??);
    }
    Ok(all)
}

async fn wait_for(receipts: &Receipts, count: usize, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while receipts.messages_seen() < count {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {count} messages were delivered within {limit:?}",
            receipts.messages_seen()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// From the start of each request to its message's arrival at the bot.
fn latency(sent: &HashMap<String, (Instant, Duration)>, receipts: &Receipts) -> Latency {
    until_the_bot(sent, receipts, |started, _| started)
}

/// From the API's answer to each message's first arrival at the bot.
fn after_answer(sent: &HashMap<String, (Instant, Duration)>, receipts: &Receipts) -> Latency {
    until_the_bot(sent, receipts, |started, took| started + took)
}

/// From `since(request start, answer time)` of each request to its
/// message's first arrival at the bot.
fn until_the_bot(
    sent: &HashMap<String, (Instant, Duration)>,
    receipts: &Receipts,
    since: impl Fn(Instant, Duration) -> Instant,
) -> Latency {
    let seen = receipts.first_seen.lock().unwrap();
    percentiles(
        sent.iter()
            .filter_map(|(id, (started, took))| {
                seen.get(id)
                    .map(|at| at.saturating_duration_since(since(*started, *took)))
            })
            .collect(),
    )
}

/// How long the API took to answer each request.
fn api_latency(sent: &HashMap<String, (Instant, Duration)>) -> Latency {
    percentiles(sent.values().map(|(_, took)| *took).collect())
}

fn percentiles(durations: Vec<Duration>) -> Latency {
    let mut millis: Vec<f64> = durations.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    millis.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| {
        millis
            .get(((millis.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(0.0)
    };
    Latency {
        p50_ms: at(0.50),
        p95_ms: at(0.95),
        p99_ms: at(0.99),
        max_ms: millis.last().copied().unwrap_or(0.0),
    }
}

/// Starts the server and a webhook receiver; the bot's integration is a webhook.
async fn start(
    args: &Args,
    env: &[(String, String)],
) -> anyhow::Result<(Server, Arc<Receipts>, Setup, reqwest::Client)> {
    let receipts = Arc::new(Receipts::default());
    let hook = receiver::start(receipts.clone()).await?;
    let (server, setup, client) =
        start_with(args, env, Some(json!({"type": "webhook", "url": hook}))).await?;
    Ok((server, receipts, setup, client))
}

/// Starts the server with this integration for the bot.
async fn start_with(
    args: &Args,
    env: &[(String, String)],
    integration: Option<serde_json::Value>,
) -> anyhow::Result<(Server, Setup, reqwest::Client)> {
    let server = Server::start(&args.server, &args.backend()?, env).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.in_flight * 2)
        .build()?;
    let setup = server.prepare(&client, integration, args.channels).await?;
    Ok((server, setup, client))
}

async fn throughput(args: &Args) -> anyhow::Result<Outcome> {
    let (server, receipts, setup, client) = start(args, &[]).await?;
    let scenario = format!("throughput ({} in flight)", args.in_flight);
    let outcome = measure_throughput(
        args,
        &server,
        &receipts,
        &setup,
        &client,
        args.messages,
        scenario,
    )
    .await;
    server.stop().await;
    outcome
}

/// Sends `messages` with `args.in_flight` at once and waits until every one
/// was received: API requests/s, deliveries/s, latency, peak memory.
async fn measure_throughput(
    args: &Args,
    server: &Server,
    receipts: &Receipts,
    setup: &Setup,
    client: &reqwest::Client,
    messages: usize,
    scenario: String,
) -> anyhow::Result<Outcome> {
    let cpu_before = server.cpu_seconds();
    let began = Instant::now();
    let sent = send_many(client, &server.bases, setup, messages, args.in_flight).await?;
    let api_seconds = began.elapsed().as_secs_f64();
    wait_for(receipts, messages, Duration::from_secs(900)).await?;
    let cpu_us_per_message = per_message_us(server.cpu_seconds() - cpu_before, messages);
    // Until the last message arrived (for SQS: was accepted by the queue).
    let last = receipts.first_seen.lock().unwrap().values().max().copied();
    let seconds = last
        .map(|at| at.saturating_duration_since(began))
        .unwrap_or_else(|| began.elapsed())
        .as_secs_f64();
    Ok(Outcome {
        scenario,
        messages,
        api_requests_per_second: messages as f64 / api_seconds,
        deliveries_per_second: messages as f64 / seconds,
        latency: latency(&sent, receipts),
        api_latency: None,
        after_answer: None,
        drain_seconds: None,
        peak_memory_mib: server.peak_memory_mib(),
        cpu_us_per_message,
        seconds,
        refused: 0,
        stolen_seconds: 0.0,
    })
}

/// CPU seconds spent on `messages`, in µs per message.
fn per_message_us(cpu_seconds: f64, messages: usize) -> Option<f64> {
    (messages > 0).then(|| cpu_seconds * 1e6 / messages as f64)
}

/// SendMessage alone, with no integration to deliver to: what the API and
/// the store accept. Latency is the API's answer time.
async fn api_only(args: &Args) -> anyhow::Result<Outcome> {
    let server = Server::start(&args.server, &args.backend()?, &[]).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.in_flight * 2)
        .build()?;
    let setup = server.prepare(&client, None, args.channels).await?;
    let cpu_before = server.cpu_seconds();
    let began = Instant::now();
    let sent = send_many(
        &client,
        &server.bases,
        &setup,
        args.messages,
        args.in_flight,
    )
    .await?;
    let seconds = began.elapsed().as_secs_f64();
    let cpu_us_per_message = per_message_us(server.cpu_seconds() - cpu_before, args.messages);
    let outcome = Outcome {
        scenario: format!("api only ({} in flight)", args.in_flight),
        messages: args.messages,
        api_requests_per_second: args.messages as f64 / seconds,
        deliveries_per_second: 0.0,
        latency: api_latency(&sent),
        api_latency: None,
        after_answer: None,
        drain_seconds: None,
        peak_memory_mib: server.peak_memory_mib(),
        cpu_us_per_message,
        seconds,
        refused: 0,
        stolen_seconds: 0.0,
    };
    server.stop().await;
    Ok(outcome)
}

/// What sending on a schedule came to: the accepted messages (when each
/// request started, how long it took), how many were refused with 503, how
/// many got no answer (the connection failed), and the seconds it took.
struct Paced {
    sent: HashMap<String, (Instant, Duration)>,
    refused: usize,
    unanswered: usize,
    seconds: f64,
}

/// Sends `rate` messages a second for `seconds`, each on its schedule
/// whatever the answers (open loop), round-robin over the channels.
async fn send_at_rate(
    client: &reqwest::Client,
    urls: &[String],
    token: &str,
    rate: u64,
    seconds: u64,
) -> anyhow::Result<Paced> {
    let total = (rate * seconds) as usize;
    let began = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    for index in 0..total {
        let due = began + period.mul_f64(index as f64);
        tokio::time::sleep_until(due.into()).await;
        let (client, url, token) = (
            client.clone(),
            urls[index % urls.len()].clone(),
            token.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            send(&client, &url, &token, format!("paced {index}")).await
        }));
    }
    let mut sent = HashMap::with_capacity(total);
    let (mut refused, mut unanswered) = (0, 0);
    for task in tasks {
        match task.await? {
            Ok(Sent::Accepted(id, started, took)) => {
                sent.insert(id, (started, took));
            }
            Ok(Sent::Refused) => refused += 1,
            Err(err) if err.downcast_ref::<reqwest::Error>().is_some() => unanswered += 1,
            Err(err) => return Err(err),
        }
    }
    Ok(Paced {
        sent,
        refused,
        unanswered,
        seconds: began.elapsed().as_secs_f64(),
    })
}

async fn fixed_rate(args: &Args, rate: u64) -> anyhow::Result<Outcome> {
    let (server, receipts, setup, client) = start(args, &[]).await?;
    let urls = message_urls(&server.bases, &setup.channels);
    let began = Instant::now();
    let paced = send_at_rate(&client, &urls, &setup.token, rate, args.rate_seconds).await?;
    anyhow::ensure!(
        paced.unanswered == 0,
        "{} requests got no answer",
        paced.unanswered
    );
    wait_for(&receipts, paced.sent.len(), Duration::from_secs(600)).await?;
    let seconds = began.elapsed().as_secs_f64();
    let outcome = Outcome {
        scenario: format!("fixed rate ({rate}/s for {} s)", args.rate_seconds),
        messages: (rate * args.rate_seconds) as usize,
        api_requests_per_second: paced.sent.len() as f64 / paced.seconds,
        deliveries_per_second: paced.sent.len() as f64 / seconds,
        latency: latency(&paced.sent, &receipts),
        api_latency: Some(api_latency(&paced.sent)),
        after_answer: Some(after_answer(&paced.sent, &receipts)),
        drain_seconds: None,
        peak_memory_mib: server.peak_memory_mib(),
        cpu_us_per_message: None,
        seconds,
        refused: paced.refused,
        stolen_seconds: 0.0,
    };
    server.stop().await;
    Ok(outcome)
}

/// Overload: SendMessage alone from `--overload-in-flight` clients at once
/// (four times the server's default limit of requests in flight), each
/// sending again as soon as it is answered, for `--rate-seconds` (at most
/// 10): what the server accepts, what it refuses with 503 (or, past its
/// connection limit, by closing), the answer time of what it accepts, and
/// its peak memory.
async fn overload(args: &Args) -> anyhow::Result<Outcome> {
    let server = Server::start(&args.server, &args.backend()?, &[]).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.overload_in_flight)
        .build()?;
    let setup = server.prepare(&client, None, args.channels).await?;
    let urls = Arc::new(message_urls(&server.bases, &setup.channels));
    let seconds = Duration::from_secs(args.rate_seconds.min(10));
    let began = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..args.overload_in_flight {
        let (client, urls, next, token) = (
            client.clone(),
            urls.clone(),
            next.clone(),
            setup.token.clone(),
        );
        clients.push(tokio::spawn(async move {
            let (mut sent, mut refused) = (Vec::new(), 0usize);
            while began.elapsed() < seconds {
                let index = next.fetch_add(1, Ordering::Relaxed);
                match send(
                    &client,
                    &urls[index % urls.len()],
                    &token,
                    format!("overload {index}"),
                )
                .await
                {
                    Ok(Sent::Accepted(id, started, took)) => sent.push((id, (started, took))),
                    Ok(Sent::Refused) => refused += 1,
                    // A connection closed beyond the server's limit.
                    Err(err) if err.downcast_ref::<reqwest::Error>().is_some() => refused += 1,
                    Err(err) => return Err(err),
                }
            }
            anyhow::Ok((sent, refused))
        }));
    }
    let (mut sent, mut refused) = (HashMap::new(), 0);
    for client in clients {
        let (accepted, refusals) = client.await??;
        sent.extend(accepted);
        refused += refusals;
    }
    let took = began.elapsed().as_secs_f64();
    let outcome = Outcome {
        scenario: format!("overload ({} clients)", args.overload_in_flight),
        messages: sent.len() + refused,
        api_requests_per_second: sent.len() as f64 / took,
        deliveries_per_second: 0.0,
        latency: api_latency(&sent),
        api_latency: None,
        after_answer: None,
        drain_seconds: None,
        peak_memory_mib: server.peak_memory_mib(),
        cpu_us_per_message: None,
        seconds: took,
        refused,
        stolen_seconds: 0.0,
    };
    server.stop().await;
    Ok(outcome)
}

async fn backlog(args: &Args) -> anyhow::Result<Outcome> {
    // Short retries, so the drain measures the workers and not the retry wait.
    let schedule = vec!["250ms"; 800].join(",");
    let env = [("SWITCHBOARD_DELIVERY__RETRY_SCHEDULE".to_owned(), schedule)];
    let (server, receipts, setup, client) = start(args, &env).await?;
    receipts.down.store(true, Ordering::Relaxed);
    let began = Instant::now();
    send_many(&client, &server.bases, &setup, args.backlog, args.in_flight).await?;
    let queued_seconds = began.elapsed().as_secs_f64();
    let recovered = Instant::now();
    receipts.down.store(false, Ordering::Relaxed);
    wait_for(&receipts, args.backlog, Duration::from_secs(900)).await?;
    let drain = recovered.elapsed().as_secs_f64();
    let outcome = Outcome {
        scenario: format!("backlog of {} after 503s", args.backlog),
        messages: args.backlog,
        api_requests_per_second: args.backlog as f64 / queued_seconds,
        deliveries_per_second: args.backlog as f64 / drain,
        latency: Latency::default(),
        api_latency: None,
        after_answer: None,
        drain_seconds: Some(drain),
        peak_memory_mib: server.peak_memory_mib(),
        cpu_us_per_message: None,
        seconds: began.elapsed().as_secs_f64(),
        refused: 0,
        stolen_seconds: 0.0,
    };
    server.stop().await;
    Ok(outcome)
}

/// The server's resident memory once it has started and answered
/// `/health`, with a bot and its channels set up and nothing sent.
async fn idle(args: &Args) -> anyhow::Result<Outcome> {
    let (server, _receipts, _setup, client) = start(args, &[]).await?;
    let health = client
        .get(format!("{}/health", server.base()))
        .send()
        .await?;
    anyhow::ensure!(
        health.status().is_success(),
        "/health answered {}",
        health.status()
    );
    let outcome = Outcome {
        scenario: "idle after start".to_owned(),
        peak_memory_mib: server.memory_mib(),
        cpu_us_per_message: None,
        ..Outcome::default()
    };
    server.stop().await;
    Ok(outcome)
}

/// SIGKILL while delivering to a slow bot with events queued in every
/// channel, then a restart on the same database: seconds to the first
/// delivery (in the p50 column) and until every channel had one (p99 and
/// drain columns).
async fn restart_recovery(args: &Args) -> anyhow::Result<Outcome> {
    anyhow::ensure!(
        matches!(args.backend()?, Backend::Sqlite { .. }),
        "the recovery scenario restarts one SQLite server"
    );
    let (mut server, receipts, setup, client) = start(args, &[]).await?;
    let recovered =
        recovery::measure(&mut server, &receipts, &setup, &client, args.messages).await?;
    let outcome = Outcome {
        scenario: "restart after SIGKILL (seconds)".to_owned(),
        messages: args.messages,
        latency: Latency {
            p50_ms: recovered.first_delivery * 1e3,
            p99_ms: recovered.every_lane * 1e3,
            ..Latency::default()
        },
        api_latency: None,
        after_answer: None,
        drain_seconds: Some(recovered.every_lane),
        peak_memory_mib: server.peak_memory_mib(),
        cpu_us_per_message: None,
        ..Outcome::default()
    };
    server.stop().await;
    Ok(outcome)
}

/// The ceilings of the machine, measured in this run (see [`ceilings`]):
/// messages/s and requests/s in the api column.
async fn machine_ceilings(args: &Args) -> anyhow::Result<Vec<Outcome>> {
    let messages = args.messages.max(20_000);
    let sqlite =
        tokio::task::spawn_blocking(move || ceilings::sqlite_group_commit(messages)).await??;
    let loopback = ceilings::loopback_http(messages, args.in_flight).await?;
    Ok(vec![
        Outcome {
            scenario: "ceiling: SQLite, 64 msgs/commit".to_owned(),
            messages,
            api_requests_per_second: sqlite,
            ..Outcome::default()
        },
        Outcome {
            scenario: "ceiling: loopback HTTP".to_owned(),
            messages,
            api_requests_per_second: loopback,
            ..Outcome::default()
        },
    ])
}

/// Deliveries the server's instances have made, from their metrics.
async fn delivered(bases: &[String]) -> f64 {
    let mut total = 0.0;
    for base in bases {
        total += server::metric(
            base,
            "switchboard_delivery_attempts_total{outcome=\"delivered\"}",
        )
        .await
        .unwrap_or(0.0);
    }
    total
}

/// Throughput to an SQS queue, with `SendMessageBatch` on or off.
async fn sqs_throughput(args: &Args, moto: &sqs::Moto, batching: bool) -> anyhow::Result<Outcome> {
    let queue = moto
        .create_queue(&format!(
            "bench-{}",
            if batching { "batched" } else { "single" }
        ))
        .await?;
    let integration = json!({
        "type": "sqs", "queueUrl": queue, "region": sqs::REGION,
        "accessKeyId": sqs::ACCESS_KEY_ID, "secretAccessKey": sqs::SECRET_ACCESS_KEY,
        "endpointUrl": moto.endpoint, "maxInFlight": 64,
    });
    let env = [(
        "SWITCHBOARD_DELIVERY__SQS_BATCHING".to_owned(),
        batching.to_string(),
    )];
    let (server, setup, client) = start_with(args, &env, Some(integration)).await?;
    let receipts = Arc::new(Receipts::default());
    let stop = Arc::new(AtomicBool::new(false));
    // The consumers start once the server has sent everything, so they do not
    // compete with it for moto's one Python thread; arrival times come from
    // each message's SentTimestamp.
    let expected = (args.sqs_messages + args.channels) as f64;
    let (bases, consumer_moto, consumer_queue) =
        (server.bases.clone(), moto.handle(), queue.clone());
    let (consumer_receipts, consumer_stop) = (receipts.clone(), stop.clone());
    tokio::spawn(async move {
        while delivered(&bases).await < expected {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sqs::consume(
            &consumer_moto,
            &consumer_queue,
            consumer_receipts,
            2,
            consumer_stop,
        );
    });
    let scenario = format!("sqs, batching {}", if batching { "on" } else { "off" });
    let outcome = measure_throughput(
        args,
        &server,
        &receipts,
        &setup,
        &client,
        args.sqs_messages,
        scenario,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    server.stop().await;
    outcome
}

/// Each scenario's rates as a share of the ceilings measured in this run:
/// messages the API accepted against SQLite's group-commit rate, and the
/// HTTP requests the harness made and received (each message is a
/// `SendMessage` and, when delivered, a webhook) against its loopback rate.
fn print_shares(outcomes: &[Outcome]) {
    let ceiling = |name: &str| {
        outcomes
            .iter()
            .find(|o| o.scenario.starts_with(name))
            .map(|o| o.api_requests_per_second)
    };
    let (Some(sqlite), Some(loopback)) = (ceiling("ceiling: SQLite"), ceiling("ceiling: loopback"))
    else {
        return;
    };
    println!(
        "\nas a share of this machine's ceilings (SQLite {sqlite:.0} msgs/s, loopback HTTP {loopback:.0} req/s):"
    );
    for o in outcomes {
        if o.scenario.starts_with("ceiling") || o.api_requests_per_second == 0.0 {
            continue;
        }
        println!(
            "  {:<34} accepted {:>5.1}% of SQLite's rate, HTTP {:>5.1}% of the loopback rate",
            o.scenario,
            100.0 * o.api_requests_per_second / sqlite,
            100.0 * (o.api_requests_per_second + o.deliveries_per_second) / loopback,
        );
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut outcomes = Vec::new();
    let mut soaked = None;
    for scenario in &args.scenarios {
        eprintln!("running {scenario}…");
        server::flush_disk_writes();
        let (first_row, stolen_before) = (outcomes.len(), server::machine_stolen_seconds());
        match scenario.as_str() {
            "api" => outcomes.push(api_only(&args).await?),
            "throughput" => outcomes.push(throughput(&args).await?),
            "rate" => {
                for rate in &args.rates {
                    server::flush_disk_writes();
                    outcomes.push(fixed_rate(&args, *rate).await?);
                }
            }
            "idle" => outcomes.push(idle(&args).await?),
            "recovery" => outcomes.push(restart_recovery(&args).await?),
            "ceilings" => outcomes.extend(machine_ceilings(&args).await?),
            "overload" => outcomes.push(overload(&args).await?),
            "backlog" => outcomes.push(backlog(&args).await?),
            "soak" => {
                let found = soak::soak(&args).await?;
                outcomes.push(found.outcome.clone());
                soaked = Some(found);
            }
            "sqs" => {
                let moto = sqs::Moto::start(&args.moto).await?;
                outcomes.push(sqs_throughput(&args, &moto, true).await?);
                outcomes.push(sqs_throughput(&args, &moto, false).await?);
            }
            other => {
                anyhow::bail!(
                    "unknown scenario `{other}`; use ceilings, idle, api, throughput, rate, overload, backlog, recovery, sqs or soak"
                )
            }
        }
        let stolen = server::machine_stolen_seconds() - stolen_before;
        for outcome in &mut outcomes[first_row..] {
            outcome.stolen_seconds = stolen;
        }
    }
    println!(
        "\nswitchboard benchmark — {}, {} channels, {} cores",
        args.backend()?.describe(),
        args.channels,
        std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(0)
    );
    println!(
        "{:<34} {:>8} {:>8} {:>10} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11} {:>9}",
        "scenario",
        "messages",
        "refused",
        "api req/s",
        "deliveries/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "drain s",
        "peak MiB",
        "CPU µs/msg",
        "stolen s"
    );
    for o in &outcomes {
        println!(
            "{:<34} {:>8} {:>8} {:>10.0} {:>12.0} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9} {:>9.1} {:>11} {:>9.1}",
            o.scenario,
            o.messages,
            o.refused,
            o.api_requests_per_second,
            o.deliveries_per_second,
            o.latency.p50_ms,
            o.latency.p95_ms,
            o.latency.p99_ms,
            o.latency.max_ms,
            o.drain_seconds
                .map(|s| format!("{s:.1}"))
                .unwrap_or_else(|| "-".into()),
            o.peak_memory_mib.unwrap_or(0.0),
            o.cpu_us_per_message
                .map(|us| format!("{us:.0}"))
                .unwrap_or_else(|| "-".into()),
            o.stolen_seconds,
        );
    }
    for o in &outcomes {
        if let Some(api) = &o.api_latency {
            println!(
                "  {}: the API answered in p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                o.scenario, api.p50_ms, api.p95_ms, api.p99_ms, api.max_ms
            );
        }
        if let Some(after) = &o.after_answer {
            println!(
                "  {}: the bot had it after the answer in p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                o.scenario, after.p50_ms, after.p95_ms, after.p99_ms, after.max_ms
            );
        }
    }
    print_shares(&outcomes);
    if let Some(soaked) = &soaked {
        println!(
            "\nsoak: {:.0} bytes on disk per delivered message before pruning\n{}",
            soaked.bytes_per_message,
            soak::chart(&soaked.samples)
        );
    }
    std::fs::create_dir_all(&args.out)?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let path = format!("{}/bench-{stamp}.json", args.out);
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&json!({
            "backend": args.backend()?.describe(),
            "results": outcomes,
            "soak": soaked.as_ref().map(|s| json!({
                "bytes_per_message": s.bytes_per_message,
                "samples": s.samples,
            })),
        }))?,
    )?;
    println!("\nresults written to {path}");
    Ok(())
}
