//! Restart recovery: the server is killed (SIGKILL) while it delivers to a
//! slow bot with events queued in every channel, then started again on the
//! same database; how long from the kill until the first delivery arrives,
//! and until every channel (lane) has received one again.

use std::time::{Duration, Instant};

use crate::receiver::Receipts;
use crate::server::{Server, Setup};

/// Milliseconds the bot takes per event, so that lanes are in flight at the kill.
const SLOW_BOT_MS: u64 = 20;

/// Seconds from the kill to the first delivery after the restart, and to
/// the last channel's first delivery.
pub struct Recovered {
    pub first_delivery: f64,
    pub every_lane: f64,
}

pub async fn measure(
    server: &mut Server,
    receipts: &Receipts,
    setup: &Setup,
    client: &reqwest::Client,
    messages: usize,
) -> anyhow::Result<Recovered> {
    receipts
        .delay_ms
        .store(SLOW_BOT_MS, std::sync::atomic::Ordering::Relaxed);
    crate::send_many(client, &server.bases, setup, messages, 64).await?;
    // Some delivered, most still queued in every channel.
    let deadline = Instant::now() + Duration::from_secs(60);
    while receipts.messages_seen() < setup.channels.len() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "nothing was delivered within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let killed = Instant::now();
    server.kill().await?;
    receipts.forget_channels();
    server.restart().await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let seen = receipts.channel_first_seen.lock().unwrap().clone();
        if seen.len() >= setup.channels.len() {
            let since = |at: &Instant| at.saturating_duration_since(killed).as_secs_f64();
            return Ok(Recovered {
                first_delivery: seen.values().map(since).fold(f64::INFINITY, f64::min),
                every_lane: seen.values().map(since).fold(0.0, f64::max),
            });
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {} channels got a delivery within 120 s of the restart",
            seen.len(),
            setup.channels.len()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
