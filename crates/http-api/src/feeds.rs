//! What the people's live feeds of one process share
//! ([`crate::routes::person_events`]): news of typing changes, which the
//! store keeps but records no event for, and the signal that the server is
//! stopping, which ends every feed so that shutdown does not wait for them.
//!
//! Typing news reaches only the feeds of this process: a feed on another
//! instance sees the change when its person's console next asks who is
//! typing (`GET …/channels/{id}/typing`).

use switchboard_domain::{ChannelId, CompanyId};
use tokio::sync::{broadcast, watch};

/// Typing changes buffered for a slow feed before it skips some (it then
/// misses only typing news, never an event).
const TYPING_BUFFER: usize = 256;

/// The hub of this process's feeds; clones share it.
#[derive(Clone)]
pub struct Feeds {
    typing: broadcast::Sender<TypingChange>,
    closing: watch::Sender<bool>,
}

/// Someone started or stopped typing in a channel.
#[derive(Clone, Debug)]
pub struct TypingChange {
    pub company: CompanyId,
    pub channel: ChannelId,
}

impl Default for Feeds {
    fn default() -> Self {
        Feeds {
            typing: broadcast::channel(TYPING_BUFFER).0,
            closing: watch::channel(false).0,
        }
    }
}

impl Feeds {
    /// Tells every feed that typing changed in `channel`.
    pub fn typing_changed(&self, company: &CompanyId, channel: &ChannelId) {
        let _ = self.typing.send(TypingChange {
            company: company.clone(),
            channel: channel.clone(),
        });
    }

    /// Typing changes from now on.
    pub fn typing_changes(&self) -> broadcast::Receiver<TypingChange> {
        self.typing.subscribe()
    }

    /// Ends every feed, open and to come: the server is stopping.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Becomes true when the server is stopping.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }
}
