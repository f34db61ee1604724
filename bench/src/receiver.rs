//! A fast local webhook receiver that notes when each message first arrived.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;

#[derive(Default)]
pub struct Receipts {
    /// Message id → when its `chat:message:new` first arrived.
    pub first_seen: Mutex<HashMap<String, Instant>>,
    /// Requests answered 2xx.
    pub delivered: AtomicU64,
    /// Requests answered 503.
    pub refused: AtomicU64,
    /// While true, every request is answered 503.
    pub down: AtomicBool,
    /// Milliseconds each answer waits (a slow bot).
    pub delay_ms: AtomicU64,
    /// Channel id → when a delivery about it first arrived since the last
    /// [`Receipts::forget_channels`].
    pub channel_first_seen: Mutex<HashMap<String, Instant>>,
}

impl Receipts {
    /// Starts noting channels afresh.
    pub fn forget_channels(&self) {
        self.channel_first_seen.lock().unwrap().clear();
    }

    pub fn messages_seen(&self) -> usize {
        self.first_seen.lock().unwrap().len()
    }
}

/// Starts the receiver on a free loopback port; returns its URL.
pub async fn start(receipts: Arc<Receipts>) -> anyhow::Result<String> {
    let app = Router::new().fallback(receive).with_state(receipts);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

async fn receive(State(receipts): State<Arc<Receipts>>, body: Bytes) -> StatusCode {
    if receipts.down.load(Ordering::Relaxed) {
        receipts.refused.fetch_add(1, Ordering::Relaxed);
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let now = Instant::now();
    let delay = receipts.delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    let text = std::str::from_utf8(&body).unwrap_or_default();
    if let Some(id) = message_id(text) {
        receipts.first_seen.lock().unwrap().entry(id).or_insert(now);
    }
    if let Some(channel) = first_string_after(text, "\"channelId\":\"") {
        receipts
            .channel_first_seen
            .lock()
            .unwrap()
            .entry(channel)
            .or_insert(now);
    }
    receipts.delivered.fetch_add(1, Ordering::Relaxed);
    StatusCode::OK
}

/// The id of the message in a `chat:message:new` delivery (its first `messageId`).
pub fn message_id(text: &str) -> Option<String> {
    if !text.contains("\"type\":\"chat:message:new\"") {
        return None;
    }
    first_string_after(text, "\"messageId\":\"")
}

/// The string value that follows the first `key` (`"name":"`) in a body.
fn first_string_after(text: &str, key: &str) -> Option<String> {
    let start = text.find(key)? + key.len();
    let end = start + text[start..].find('"')?;
    Some(text[start..end].to_owned())
}
