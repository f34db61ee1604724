//! What this machine can do at all, measured in the same run as the
//! server, so each figure can be read as a share of it:
//! - **SQLite group commit**: a message, its event, one delivery and the
//!   channel's sequence (4 statements) per message, 64 messages per commit,
//!   `synchronous=FULL` in WAL mode, on one thread with prepared statements —
//!   the most the store's write path could take on this disk and core;
//! - **loopback HTTP**: the harness's own client posting an event-sized body
//!   to its own receiver with 64 in flight — the most requests per second the
//!   load generator and the receiver take between them, before any server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::receiver::{self, Receipts};

/// Messages per commit in the SQLite ceiling.
const GROUP: usize = 64;

/// Messages per second that SQLite commits, 64 to a commit.
pub fn sqlite_group_commit(messages: usize) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let conn = rusqlite::Connection::open(dir.path().join("ceiling.db"))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(
        "CREATE TABLE channels (id TEXT PRIMARY KEY, event_seq INTEGER NOT NULL);
         CREATE TABLE messages (id TEXT PRIMARY KEY, channel_id TEXT NOT NULL, text TEXT NOT NULL, created_at INTEGER NOT NULL);
         CREATE INDEX messages_channel ON messages(channel_id, created_at);
         CREATE TABLE events (id TEXT PRIMARY KEY, channel_id TEXT, channel_seq INTEGER, data TEXT NOT NULL, created_at INTEGER NOT NULL);
         CREATE TABLE deliveries (id INTEGER PRIMARY KEY, event_id TEXT NOT NULL, lane TEXT NOT NULL, channel_seq INTEGER NOT NULL, state TEXT NOT NULL);
         CREATE INDEX deliveries_lane ON deliveries(lane, channel_seq) WHERE state = 'pending';",
    )?;
    for channel in 0..64 {
        conn.execute(
            "INSERT INTO channels (id, event_seq) VALUES (?1, 0)",
            [format!("ch_{channel}")],
        )?;
    }
    let data = "x".repeat(1_200);
    let began = Instant::now();
    let mut written = 0;
    while written < messages {
        let tx = conn.unchecked_transaction()?;
        for _ in 0..GROUP.min(messages - written) {
            let channel = format!("ch_{}", written % 64);
            let seq: i64 = tx
                .prepare_cached("UPDATE channels SET event_seq = event_seq + 1 WHERE id = ?1 RETURNING event_seq")?
                .query_row([&channel], |row| row.get(0))?;
            let id = format!("{written:032x}");
            tx.prepare_cached(
                "INSERT INTO messages (id, channel_id, text, created_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(rusqlite::params![
                format!("msg_{id}"),
                channel,
                "hello",
                written as i64
            ])?;
            tx.prepare_cached("INSERT INTO events (id, channel_id, channel_seq, data, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
                .execute(rusqlite::params![format!("evt_{id}"), channel, seq, data, written as i64])?;
            tx.prepare_cached("INSERT INTO deliveries (event_id, lane, channel_seq, state) VALUES (?1, ?2, ?3, 'pending')")?
                .execute(rusqlite::params![format!("evt_{id}"), channel, seq])?;
            written += 1;
        }
        tx.commit()?;
    }
    Ok(messages as f64 / began.elapsed().as_secs_f64())
}

/// Requests per second from the harness's client to its own receiver.
pub async fn loopback_http(requests: usize, in_flight: usize) -> anyhow::Result<f64> {
    let receipts = Arc::new(Receipts::default());
    let url = receiver::start(receipts).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(in_flight * 2)
        .build()?;
    let body = bytes_of_an_event();
    let next = Arc::new(AtomicUsize::new(0));
    let began = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..in_flight {
        let (client, url, body, next) = (client.clone(), url.clone(), body.clone(), next.clone());
        senders.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < requests {
                let answer = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await?;
                anyhow::ensure!(
                    answer.status().is_success(),
                    "the receiver answered {}",
                    answer.status()
                );
            }
            anyhow::Ok(())
        }));
    }
    for sender in senders {
        sender.await??;
    }
    Ok(requests as f64 / began.elapsed().as_secs_f64())
}

/// A body the size of a `chat:message:new` to a bot in a channel of two.
fn bytes_of_an_event() -> bytes::Bytes {
    let data = serde_json::json!({"type": "chat:message:new", "data": {"text": "x".repeat(1_400)}});
    bytes::Bytes::from(serde_json::to_vec(&data).unwrap_or_default())
}
