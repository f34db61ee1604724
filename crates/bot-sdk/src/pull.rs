//! A consumer of the pull transport: for a bot with a `pull` integration
//! and no public URL. It long-polls the bot's events, runs the handler on
//! each, and acknowledges it when handled or releases it to come again.
//! Events of one channel come one at a time, in order (the server holds a
//! channel's next event until the one before is settled).
//!
//! ```no_run
//! use switchboard_bot_sdk::{Client, Reply, is_own, pull::Consumer};
//!
//! # async fn run() -> Result<(), switchboard_bot_sdk::ApiError> {
//! let client = Client::new("http://127.0.0.1:8080", "BOT_KEY");
//! Consumer::new(client.clone())
//!     .run(move |event| {
//!         let client = client.clone();
//!         async move {
//!             if event.event_type.as_str() == "chat:message:new" && !is_own(&event) {
//!                 if client.reply(&event, "hello").await.is_err() {
//!                     return Reply::RetryLater(std::time::Duration::from_secs(5));
//!                 }
//!             }
//!             Reply::Handled
//!         }
//!     })
//!     .await
//! # }
//! ```

use std::future::Future;
use std::time::Duration;

use crate::{ApiError, Client, Event, Reply};

/// Seconds a fetch waits for events.
const WAIT_SECONDS: u32 = 20;

/// Fetches the bot's events and hands each to a handler.
pub struct Consumer {
    client: Client,
    batch: u32,
    visibility_seconds: u32,
}

impl Consumer {
    pub fn new(client: Client) -> Self {
        Consumer {
            client,
            batch: 10,
            visibility_seconds: 60,
        }
    }

    /// How long each event stays held for the handler before it is handed
    /// out again (default 60 s): longer than the handler takes.
    pub fn visibility(mut self, seconds: u32) -> Self {
        self.visibility_seconds = seconds.clamp(1, 43_200);
        self
    }

    /// Runs `handler` on every event, forever; returns only when the server
    /// refuses the fetch (a revoked key, no pull integration).
    pub async fn run<F, Fut>(self, handler: F) -> Result<(), ApiError>
    where
        F: Fn(Event) -> Fut,
        Fut: Future<Output = Reply>,
    {
        loop {
            self.once(&handler).await?;
        }
    }

    /// One fetch (waiting up to 20 s) and its events handled; how many.
    pub async fn once<F, Fut>(&self, handler: &F) -> Result<usize, ApiError>
    where
        F: Fn(Event) -> Fut,
        Fut: Future<Output = Reply>,
    {
        let fetched = match self
            .client
            .fetch_events(WAIT_SECONDS, self.batch, self.visibility_seconds)
            .await
        {
            Ok(fetched) => fetched,
            Err(ApiError::Transport(err)) => {
                tracing::warn!(error = %err, "fetching events failed; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
                return Ok(0);
            }
            Err(refused) => return Err(refused),
        };
        let count = fetched.events.len();
        for pulled in fetched.events {
            let event: Event = match serde_json::from_value(pulled.event) {
                Ok(event) => event,
                Err(err) => {
                    tracing::error!(error = %err, "an event that is not an envelope; acknowledged");
                    self.client.acknowledge(&[pulled.receipt]).await?;
                    continue;
                }
            };
            match handler(event).await {
                Reply::Handled => self.client.acknowledge(&[pulled.receipt]).await?,
                Reply::RetryLater(after) => {
                    self.client
                        .release(&[pulled.receipt], after.as_secs().min(43_200) as u32)
                        .await?
                }
            };
        }
        Ok(count)
    }
}
