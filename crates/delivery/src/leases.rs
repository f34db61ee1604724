//! The leases of the deliveries this process is sending. A claim leases a
//! lane for `lease` (seconds); while the send is in flight the lease is
//! extended every third of it, so a slow receiver never loses its lane to
//! another worker, and a worker that dies (SIGKILL, a lost machine) lets its
//! lanes go within one lease instead of after the longest send could take.
//! An extension that finds the lease no longer ours (it ran out and another
//! worker took the lane) leaves it: that worker's attempt wins, and this
//! one's outcome is dropped by the store as a lost lease.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use switchboard_domain::now_micros;
use switchboard_store::{ClaimedDelivery, HeldLease, Store};
use tokio::sync::Mutex;

/// The leases held, by delivery id.
pub struct Leases {
    held: Mutex<HashMap<i64, HeldLease>>,
    lease: Duration,
}

impl Leases {
    pub fn new(lease: Duration) -> Arc<Self> {
        Arc::new(Leases {
            held: Mutex::new(HashMap::new()),
            lease,
        })
    }

    /// Starts holding the leases of these claimed deliveries.
    pub async fn hold(&self, claimed: &[ClaimedDelivery]) {
        let mut held = self.held.lock().await;
        for delivery in claimed {
            held.insert(
                delivery.delivery_id,
                HeldLease {
                    integration: delivery.integration.id.as_str().to_owned(),
                    lane: delivery.lane().to_owned(),
                    lease_until: delivery.lease_until,
                },
            );
        }
    }

    /// Stops holding these deliveries' leases (their sends are over); when
    /// each lease ends now, by delivery id.
    pub async fn release(&self, deliveries: &[i64]) -> HashMap<i64, i64> {
        let mut held = self.held.lock().await;
        deliveries
            .iter()
            .filter_map(|id| held.remove(id).map(|lease| (*id, lease.lease_until)))
            .collect()
    }

    /// Extends every held lease each third of the lease, until the task is
    /// dropped.
    pub async fn keep(self: Arc<Self>, store: Arc<dyn Store>) {
        let mut ticks = tokio::time::interval(self.lease / 3);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.extend(store.as_ref()).await;
        }
    }

    async fn extend(&self, store: &dyn Store) {
        // Held across the store call, so a send that ends meanwhile takes its
        // lease as extended.
        let mut held = self.held.lock().await;
        if held.is_empty() {
            return;
        }
        let (ids, leases): (Vec<i64>, Vec<HeldLease>) =
            held.iter().map(|(id, lease)| (*id, lease.clone())).unzip();
        let until = now_micros() + self.lease.as_micros() as i64;
        match store.extend_leases(&leases, until).await {
            Ok(extended) => {
                for (id, kept) in ids.iter().zip(extended) {
                    if kept && let Some(lease) = held.get_mut(id) {
                        lease.lease_until = until;
                    }
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, count = ids.len(), "could not extend delivery leases; trying again shortly")
            }
        }
    }
}
