//! Authentications kept in memory: every request presents a key, and
//! looking it up was a tenth of the server's work per message on SQLite (a
//! read transaction on a connection whose page cache every commit empties)
//! and two of the ten round trips of a message on PostgreSQL.
//!
//! A key that was found is kept for [`KEEP_FOR`]; a key that was not is
//! never kept (it is looked up every time). What a kept answer depends on —
//! the key not revoked, its user not deleted — changes only in
//! `revoke_credential` and `delete_bot` (the store's tenancy and user
//! changes), and after such a change commits, before it is answered, every
//! kept answer is dropped; so once a revocation is answered, this process
//! refuses the key. Other processes on the same PostgreSQL database hear of
//! it through the backend ([`crate::Backend::credential_changes_elsewhere`],
//! a `NOTIFY` on PostgreSQL) within milliseconds; were that notification
//! lost, a kept answer still ends after [`KEEP_FOR`].
//!
//! A lookup that ran while a revocation committed could keep what it read
//! before the revocation: so each kept answer carries the count of
//! credential changes seen before its lookup began, and is used only while
//! that count holds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard_domain::Principal;

/// How long a found key's answer is kept.
pub const KEEP_FOR: Duration = Duration::from_secs(10);

/// The most keys kept; past it, the expired ones go, and if that is not
/// enough, all of them.
const MOST_KEPT: usize = 10_000;

pub(crate) struct AuthCache {
    kept: Mutex<HashMap<[u8; 32], Kept>>,
    /// Credential changes made through this store.
    changes_here: AtomicU64,
    /// Credential changes other processes made, as the backend hears of them.
    changes_elsewhere: Option<Arc<AtomicU64>>,
}

struct Kept {
    principal: Principal,
    changes: u64,
    at: Instant,
}

impl AuthCache {
    pub(crate) fn new(changes_elsewhere: Option<Arc<AtomicU64>>) -> Self {
        AuthCache {
            kept: Mutex::new(HashMap::new()),
            changes_here: AtomicU64::new(0),
            changes_elsewhere,
        }
    }

    /// The count of credential changes known so far; a lookup notes it
    /// before it begins.
    pub(crate) fn changes(&self) -> u64 {
        let elsewhere = self
            .changes_elsewhere
            .as_ref()
            .map_or(0, |changes| changes.load(Ordering::SeqCst));
        self.changes_here
            .load(Ordering::SeqCst)
            .wrapping_add(elsewhere)
    }

    /// The kept answer for `hash`, if it is still good.
    pub(crate) fn get(&self, hash: &[u8; 32]) -> Option<Principal> {
        let changes = self.changes();
        let kept = self.kept.lock().expect("auth cache");
        kept.get(hash)
            .filter(|kept| kept.changes == changes && kept.at.elapsed() < KEEP_FOR)
            .map(|kept| kept.principal.clone())
    }

    /// Keeps what a lookup that began at `changes` found, unless credentials
    /// changed since.
    pub(crate) fn keep(&self, hash: [u8; 32], principal: Principal, changes: u64) {
        let mut kept = self.kept.lock().expect("auth cache");
        if self.changes() != changes {
            return;
        }
        if kept.len() >= MOST_KEPT {
            kept.retain(|_, kept| kept.at.elapsed() < KEEP_FOR);
            if kept.len() >= MOST_KEPT {
                kept.clear();
            }
        }
        kept.insert(
            hash,
            Kept {
                principal,
                changes,
                at: Instant::now(),
            },
        );
    }

    /// After a committed change to credentials: no kept answer is used again.
    pub(crate) fn credentials_changed(&self) {
        self.changes_here.fetch_add(1, Ordering::SeqCst);
        self.kept.lock().expect("auth cache").clear();
    }
}
