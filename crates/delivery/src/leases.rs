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
    lease_until: AtomicI64,
}

impl HeldLane {
    pub fn integration(&self) -> &str {
        &self.integration
    }

    pub fn lane(&self) -> &str {
        &self.lane
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

/// The lanes held, by integration and lane: one hold a lane. A lane claimed
/// again (its lease ran out while a run was still sending it) is held anew,
/// and the old run's release leaves the new hold alone.
pub struct Leases {
    held: std::sync::Mutex<HashMap<(String, String), Arc<HeldLane>>>,
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

    /// Starts holding the lane of a run, whose first delivery is `head`
    /// (in place of any hold of the lane before).
    pub fn hold(&self, head: &ClaimedDelivery) -> Arc<HeldLane> {
        self.hold_lane(head.integration.id.as_str(), head.lane(), head.lease_until)
    }

    fn hold_lane(&self, integration: &str, lane: &str, lease_until: i64) -> Arc<HeldLane> {
        let lane = Arc::new(HeldLane {
            integration: integration.to_owned(),
            lane: lane.to_owned(),
            lease_until: AtomicI64::new(lease_until),
        });
        let key = (lane.integration.clone(), lane.lane.clone());
        self.held
            .lock()
            .expect("held leases")
            .insert(key, lane.clone());
        lane
    }

    /// Stops extending `lane` (its run's sends are over), if it is still
    /// the lane's hold.
    pub fn release(&self, lane: &Arc<HeldLane>) {
        let mut held = self.held.lock().expect("held leases");
        let key = (lane.integration.clone(), lane.lane.clone());
        if held
            .get(&key)
            .is_some_and(|current| Arc::ptr_eq(current, lane))
        {
            held.remove(&key);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn held(leases: &Leases) -> Vec<Arc<HeldLane>> {
        leases.held.lock().unwrap().values().cloned().collect()
    }

    #[test]
    fn a_run_that_lost_its_lane_releases_only_its_own_hold() {
        let leases = Leases::new(Duration::from_secs(9));
        let lost = leases.hold_lane("int_1", "ch_1", 10);
        let other = leases.hold_lane("int_1", "ch_2", 10);
        // The lease ran out and the lane was claimed again from the same head.
        let again = leases.hold_lane("int_1", "ch_1", 20);
        leases.release(&lost);
        let kept = held(&leases);
        assert_eq!(kept.len(), 2);
        assert!(kept.iter().any(|lane| Arc::ptr_eq(lane, &again)));
        leases.release(&again);
        leases.release(&other);
        assert!(held(&leases).is_empty());
    }
}
