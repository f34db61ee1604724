//! The soak scenario: a fixed rate well inside capacity for minutes, with a
//! short retention, sampled every ten seconds: the database's size, the
//! server's memory and the send-to-bot p99 of each interval. Once the first
//! window is full, all three should stay flat: pruning keeps up and the
//! space it frees is reused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::server::Server;
use crate::{Args, Latency, Outcome, Sent, message_urls, percentiles, send, start};

/// How often the soak samples.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);

/// One sample of the soak.
#[derive(serde::Serialize, Clone)]
pub struct Sample {
    pub second: u64,
    /// The database on disk (on SQLite: the file and its WAL).
    pub database_mib: f64,
    /// Of which the SQLite WAL.
    pub wal_mib: f64,
    pub memory_mib: f64,
    pub delivered: usize,
    /// Of the messages sent in the ten seconds before this sample.
    pub p99_ms: f64,
}

/// What the soak found, besides its samples.
pub struct Soak {
    pub outcome: Outcome,
    pub samples: Vec<Sample>,
    /// Bytes on disk per delivered message while nothing was pruned yet
    /// (the database's growth, without the WAL, whose size is bounded).
    pub bytes_per_message: f64,
}

pub async fn soak(args: &Args) -> anyhow::Result<Soak> {
    let window = args.soak_retention;
    let env = vec![
        (
            "SWITCHBOARD_RETENTION__DELIVERED".to_owned(),
            format!("{window}s"),
        ),
        (
            "SWITCHBOARD_RETENTION__DEAD_LETTERS".to_owned(),
            format!("{window}s"),
        ),
        // Messages too, so that everything the load writes has a window.
        (
            "SWITCHBOARD_RETENTION__MESSAGES".to_owned(),
            format!("{window}s"),
        ),
    ];
    let (server, receipts, setup, client) = start(args, &env).await?;
    let urls = message_urls(&server.bases, &setup.channels);
    let rate = args.soak_rate;
    let total = (rate * args.soak_seconds) as usize;
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let began = Instant::now();
    let (base_bytes, _) = database_bytes(&server).await;

    let sender = {
        let (sent, refused, token) = (sent.clone(), refused.clone(), setup.token.clone());
        tokio::spawn(async move {
            let period = Duration::from_secs_f64(1.0 / rate as f64);
            let mut tasks = tokio::task::JoinSet::new();
            for index in 0..total {
                tokio::time::sleep_until((began + period.mul_f64(index as f64)).into()).await;
                let (client, url, token) = (
                    client.clone(),
                    urls[index % urls.len()].clone(),
                    token.clone(),
                );
                let (sent, refused) = (sent.clone(), refused.clone());
                tasks.spawn(async move {
                    match send(&client, &url, &token, format!("soak {index}")).await {
                        Ok(Sent::Accepted(id, started, _)) => {
                            sent.lock().unwrap().insert(id, started);
                        }
                        Ok(Sent::Refused) | Err(_) => {
                            refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
                while tasks.try_join_next().is_some() {}
            }
            while tasks.join_next().await.is_some() {}
        })
    };

    let mut samples = Vec::new();
    let mut bytes_per_message = 0.0;
    let mut tick = tokio::time::interval_at((began + SAMPLE_EVERY).into(), SAMPLE_EVERY);
    loop {
        tick.tick().await;
        let second = began.elapsed().as_secs();
        let (bytes, wal) = database_bytes(&server).await;
        let delivered = receipts.messages_seen();
        let p99_ms = interval_p99(&sent, &receipts, began, second);
        if second <= window {
            // Nothing is older than the window yet: all of it is kept.
            bytes_per_message = (bytes - wal - base_bytes) / delivered.max(1) as f64;
        }
        let sample = Sample {
            second,
            database_mib: bytes / (1024.0 * 1024.0),
            wal_mib: wal / (1024.0 * 1024.0),
            memory_mib: server.memory_mib().unwrap_or(0.0),
            delivered,
            p99_ms,
        };
        eprintln!(
            "  soak {:>4} s: database {:>7.1} MiB (WAL {:>5.1}), memory {:>6.1} MiB, delivered {:>8}, p99 {:>8.1} ms",
            sample.second,
            sample.database_mib,
            sample.wal_mib,
            sample.memory_mib,
            sample.delivered,
            sample.p99_ms
        );
        samples.push(sample);
        if sender.is_finished() && second >= args.soak_seconds {
            break;
        }
    }
    sender.await?;
    let seconds = began.elapsed().as_secs_f64();
    let accepted: HashMap<String, Instant> = sent.lock().unwrap().clone();
    let latency: Latency = {
        let seen = receipts.first_seen.lock().unwrap();
        percentiles(
            accepted
                .iter()
                .filter_map(|(id, started)| {
                    seen.get(id)
                        .map(|at| at.saturating_duration_since(*started))
                })
                .collect(),
        )
    };
    let outcome = Outcome {
        scenario: format!("soak ({rate}/s, {window} s retention)"),
        messages: total,
        api_requests_per_second: accepted.len() as f64 / seconds,
        deliveries_per_second: receipts.messages_seen() as f64 / seconds,
        latency,
        api_latency: None,
        after_answer: None,
        drain_seconds: None,
        peak_memory_mib: server.peak_memory_mib(),
        cpu_us_per_message: None,
        seconds,
        refused: refused.load(std::sync::atomic::Ordering::Relaxed),
        stolen_seconds: 0.0,
    };
    server.stop().await;
    Ok(Soak {
        outcome,
        samples,
        bytes_per_message,
    })
}

/// The p99 from send to bot of the messages sent in the interval before
/// `second`, among those that arrived.
fn interval_p99(
    sent: &Mutex<HashMap<String, Instant>>,
    receipts: &crate::receiver::Receipts,
    began: Instant,
    second: u64,
) -> f64 {
    let from = began + Duration::from_secs(second.saturating_sub(SAMPLE_EVERY.as_secs()));
    let to = began + Duration::from_secs(second);
    let sent = sent.lock().unwrap();
    let seen = receipts.first_seen.lock().unwrap();
    percentiles(
        sent.iter()
            .filter(|(_, started)| **started >= from && **started < to)
            .filter_map(|(id, started)| {
                seen.get(id)
                    .map(|at| at.saturating_duration_since(*started))
            })
            .collect(),
    )
    .p99_ms
}

/// The database's size on disk and the WAL's part of it: the SQLite file
/// with its WAL, or what the PostgreSQL server reports for the database.
async fn database_bytes(server: &Server) -> (f64, f64) {
    match server.sqlite_bytes() {
        Some((file, wal)) => ((file + wal) as f64, wal as f64),
        None => (
            server
                .metric("switchboard_database_size_bytes")
                .await
                .unwrap_or(0.0),
            0.0,
        ),
    }
}

/// The samples as a chart of the database's size and the p99 over time.
pub fn chart(samples: &[Sample]) -> String {
    let widest = samples
        .iter()
        .map(|s| s.database_mib)
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let mut out = String::from(
        "  second  database MiB                                        memory MiB   p99 ms\n",
    );
    for s in samples {
        let bar = "#".repeat(((s.database_mib / widest) * 40.0).round() as usize);
        out.push_str(&format!(
            "  {:>6}  {:>7.1} {:<40} {:>10.1} {:>8.1}\n",
            s.second, s.database_mib, bar, s.memory_mib, s.p99_ms
        ));
    }
    out
}
