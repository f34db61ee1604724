//! The leases of the lanes this process is sending. A claim leases a lane
//! for `lease` (seconds); while its run of deliveries is being sent the lease
//! is extended every third of it, so a slow receiver never loses its lane to
//! another worker, and a worker that dies (SIGKILL, a lost machine) lets its
//! lanes go within one lease instead of after the longest send could take.
//! An extension that finds the lease no longer ours (it ran out and another
//! worker took the lane) leaves it: that worker's attempt wins, and this
//! one's outcomes are dropped by the store as a lost lease.
//!
//! The store accepts an outcome only with the lease as it stands, so the
//! lease of every outcome waiting to be stored is read from its lane's
//! [`HeldLane`] while no extension can run ([`Leases::stable`]). Holding and
//! releasing a lane never waits for either.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use switchboard_domain::now_micros;
use switchboard_store::{ClaimedDelivery, HeldLease, Store};
use tokio::sync::{Mutex, MutexGuard};

/// One lane's lease as this process holds it, shared by the outcomes of its
/// run that wait to be stored.
#[derive(Debug)]
pub struct HeldLane {
    integration: String,
    lane: String,
    /// The delivery the run holding the lane began with.
    head: i64,
    lease_until: AtomicI64,
}

impl HeldLane {
    pub fn integration(&self) -> &str {
        &self.integration
    }

    pub fn lane(&self) -> &str {
        &self.lane
    }

    /// The delivery the run holding the lane began with (the key it is
    /// [released](Leases::release) by).
    pub fn head(&self) -> i64 {
        self.head
    }

    /// Whether this is the lane of `delivery`.
    pub fn holds(&self, delivery: &ClaimedDelivery) -> bool {
        self.integration == delivery.integration.id.as_str() && self.lane == delivery.lane()
    }

    /// When the lease ends, as last extended.
    pub fn lease_until(&self) -> i64 {
        self.lease_until.load(Ordering::Relaxed)
    }
}

/// The lanes held, by the delivery id of the head their run started with.
pub struct Leases {
    held: std::sync::Mutex<HashMap<i64, Arc<HeldLane>>>,
    /// Taken by an extension and by the storing of outcomes, so that one
    /// never runs while the other does.
    gate: Mutex<()>,
    lease: Duration,
}

impl Leases {
    pub fn new(lease: Duration) -> Arc<Self> {
        Arc::new(Leases {
            held: std::sync::Mutex::new(HashMap::new()),
            gate: Mutex::new(()),
            lease,
        })
    }

    /// Starts holding the lane of a run, whose first delivery is `head`.
    pub fn hold(&self, head: &ClaimedDelivery) -> Arc<HeldLane> {
        let lane = Arc::new(HeldLane {
            integration: head.integration.id.as_str().to_owned(),
            lane: head.lane().to_owned(),
            head: head.delivery_id,
            lease_until: AtomicI64::new(head.lease_until),
        });
        self.held
            .lock()
            .expect("held leases")
            .insert(head.delivery_id, lane.clone());
        lane
    }

    /// Stops extending the lane of the run that started with `head` (its
    /// sends are over).
    pub fn release(&self, head: i64) {
        self.held.lock().expect("held leases").remove(&head);
    }

    /// Keeps extensions out while the guard lives: the leases read meanwhile
    /// stay those the store holds.
    pub async fn stable(&self) -> MutexGuard<'_, ()> {
        self.gate.lock().await
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
        // The gate is held across the store call, so that outcomes are
        // stored with the lease as extended, not as it was just before.
        let _gate = self.gate.lock().await;
        let lanes: Vec<Arc<HeldLane>> = self
            .held
            .lock()
            .expect("held leases")
            .values()
            .cloned()
            .collect();
        if lanes.is_empty() {
            return;
        }
        let leases: Vec<HeldLease> = lanes
            .iter()
            .map(|lane| HeldLease {
                integration: lane.integration.clone(),
                lane: lane.lane.clone(),
                lease_until: lane.lease_until(),
            })
            .collect();
        let until = now_micros() + self.lease.as_micros() as i64;
        match store.extend_leases(&leases, until).await {
            Ok(extended) => {
                for (lane, kept) in lanes.iter().zip(extended) {
                    if kept {
                        lane.lease_until.store(until, Ordering::Relaxed);
                    }
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, count = lanes.len(), "could not extend delivery leases; trying again shortly")
            }
        }
    }
}
