//! The delivery workers: claim due lane heads, send each without a
//! transaction open, record the outcome. Woken at once by commits that queue
//! deliveries; polling is the fallback that keeps it correct.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_domain::now_micros;
use switchboard_store::{
    Claim, ClaimedDelivery, Finished, HandOff, HandedLane, HandedOff, Store, Verdict,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

use crate::attempt::attempt;
use crate::idle::IdleReporter;
use crate::leases::{HeldLane, Leases};
use crate::policy::RetryPolicy;
use crate::recorder::record;
use crate::runs::{HELD_LANE, IDLE_LANE, OpenRuns, Places, RunEnd, count_handed_off};
use crate::transport::Transports;

/// How the workers run. The defaults are the server's configuration's
/// (`delivery.*`), set there once.
#[derive(Clone, Debug)]
pub struct DispatchSettings {
    /// Most deliveries in flight in this process.
    pub max_in_flight: usize,
    /// Most deliveries of one integration in flight (unless it sets its own).
    pub max_in_flight_per_integration: u32,
    /// How long a claim holds a lane; extended while its send is in flight,
    /// so a dead worker's lanes move again after it (see [`crate::leases`]).
    pub lease: Duration,
    /// How often to look for due deliveries when nothing wakes the workers.
    pub poll_interval: Duration,
}

/// Most deliveries of one lane claimed at once and sent one after another
/// under its lease (see [`Claim::run`]): a busy lane then costs one claim per
/// run, not per event, while every lane still has one send in flight at a
/// time and the lanes of an integration take turns at its in-flight places.
/// Deliveries queued behind an open run join it (see [`crate::runs`]).
pub const LANE_RUN: u32 = 16;

/// An outcome on its way to the store: the lane it holds, and where its run
/// stands (a closed run's slot stays taken until the outcome is stored).
pub(crate) type Recorded = (Finished, Arc<HeldLane>, RunEnd);

/// What every send needs: the store, the transports, the retry policy, where
/// outcomes go to be stored, the leases held and the slots of in-flight
/// deliveries.
pub(crate) struct Workers {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) senders: Senders,
    settings: DispatchSettings,
    slots: Arc<Semaphore>,
}

/// What a task sending deliveries takes along.
#[derive(Clone)]
pub(crate) struct Senders {
    transports: Arc<Transports>,
    policy: Arc<RetryPolicy>,
    outcomes: mpsc::UnboundedSender<Recorded>,
    pub(crate) leases: Arc<Leases>,
    pub(crate) runs: Arc<OpenRuns>,
}

impl Workers {
    /// A claim of up to `limit` lanes, now.
    pub(crate) fn claim(&self, limit: usize) -> Claim {
        Claim {
            now: now_micros(),
            limit: limit as u32,
            lease_micros: self.settings.lease.as_micros() as i64,
            default_max_in_flight: self.settings.max_in_flight_per_integration,
            run: LANE_RUN,
        }
    }

    /// `wanted` slots, from `permits` when they hold enough, else as they
    /// come free; `None` once the workers stop.
    async fn slots_for(
        &self,
        permits: &mut Option<OwnedSemaphorePermit>,
        wanted: usize,
    ) -> Option<OwnedSemaphorePermit> {
        let held = permits.as_mut().and_then(|permits| {
            (permits.num_permits() >= wanted)
                .then(|| permits.split(wanted))
                .flatten()
        });
        match held {
            Some(held) => Some(held),
            None => self
                .slots
                .clone()
                .acquire_many_owned(wanted as u32)
                .await
                .ok(),
        }
    }

    /// Sends claimed deliveries: each lane's run one event after another
    /// (one slot per lane), or, for a transport that batches, the lanes'
    /// heads in batches of one integration (the rest of each run stays
    /// pending and is claimed again after its head). Every outcome goes to
    /// the recorder. How many lanes the deliveries hold (a slot each).
    pub(crate) async fn dispatch(
        &self,
        claimed: Vec<ClaimedDelivery>,
        mut permits: Option<OwnedSemaphorePermit>,
    ) -> usize {
        // Every lane is held at once, so that its lease is extended while
        // it waits for a slot.
        let runs = runs(claimed);
        let lane_count = runs.len();
        let mut lane_runs = Vec::new();
        let (mut heads_to_batch, mut batch_lanes) = (Vec::new(), Vec::new());
        for run in runs {
            let lane = self.senders.leases.hold(&run[0]);
            let batches = self
                .senders
                .transports
                .for_target(&run[0].integration.target)
                .max_batch()
                > 1;
            if batches {
                heads_to_batch.extend(run.into_iter().next());
                batch_lanes.push(lane);
            } else {
                lane_runs.push((run, lane));
            }
        }
        // No slot comes once the workers stop: the lanes not sent are let go
        // with the rest (their leases run out, or the next start releases them).
        for (run, lane) in lane_runs {
            let Some(slot) = self.slots_for(&mut permits, 1).await else {
                return lane_count;
            };
            let mut run = run.into_iter();
            let first = run.next().expect("a run has a head");
            self.senders.runs.open(&lane, &first, run.collect());
            let senders = self.senders.clone();
            tokio::spawn(async move { send_run(&senders, lane, first, slot).await });
        }
        for group in groups(heads_to_batch, &self.senders.transports) {
            let Some(mut group_slots) = self.slots_for(&mut permits, group.len()).await else {
                return lane_count;
            };
            let lanes: Vec<Arc<HeldLane>> = batch_lanes
                .iter()
                .filter(|lane| group.iter().any(|delivery| lane.holds(delivery)))
                .cloned()
                .collect();
            let senders = self.senders.clone();
            tokio::spawn(async move {
                let results = attempt(&senders.transports, &senders.policy, group).await;
                for lane in &lanes {
                    senders.leases.release(lane);
                }
                for finished in results {
                    let Some(lane) = lanes
                        .iter()
                        .find(|lane| lane.holds(&finished.claimed))
                        .cloned()
                    else {
                        continue;
                    };
                    let slot = group_slots
                        .split(1)
                        .expect("a slot for each delivery of the group");
                    let _ = senders
                        .outcomes
                        .send((finished, lane, RunEnd::Closed(slot)));
                }
            });
        }
        lane_count
    }
}

fn same_lane(a: &ClaimedDelivery, b: &ClaimedDelivery) -> bool {
    a.integration.id == b.integration.id && a.lane() == b.lane()
}

/// Claimed deliveries as lane runs: consecutive deliveries of one lane.
fn runs(claimed: Vec<ClaimedDelivery>) -> Vec<Vec<ClaimedDelivery>> {
    let mut runs: Vec<Vec<ClaimedDelivery>> = Vec::new();
    for delivery in claimed {
        match runs.last_mut() {
            Some(run) if same_lane(&run[0], &delivery) => run.push(delivery),
            _ => runs.push(vec![delivery]),
        }
    }
    runs
}

/// Sends one lane's run in order, from `first`, while each event is
/// delivered (or dead-lettered) and the run may go on (see [`crate::runs`]):
/// what waits in the run, then what joins it; a failure ends the run, and
/// the lane waits for its retry. Events of the run not sent stay pending and
/// are claimed again.
async fn send_run(
    senders: &Senders,
    lane: Arc<HeldLane>,
    first: ClaimedDelivery,
    slot: OwnedSemaphorePermit,
) {
    let mut next = Some((first, slot));
    while let Some((delivery, slot)) = next.take() {
        let sent = delivery.delivery_id;
        let mut finished = attempt(&senders.transports, &senders.policy, vec![delivery])
            .await
            .pop()
            .expect("an outcome for each delivery attempted");
        let may_go_on = matches!(
            finished.verdict,
            Verdict::Delivered | Verdict::DeadLetter { .. }
        );
        // A parked run is settled by the recorder, or set going again by a
        // delivery that joins it.
        let record = |end: RunEnd| {
            finished.lane_continues = matches!(end, RunEnd::Continues);
            let _ = senders.outcomes.send((finished, lane.clone(), end));
        };
        next = senders
            .runs
            .after_send(&lane, sent, may_go_on, slot, record);
    }
}

/// Runs the workers until `stop` turns true; deliveries in flight then finish.
/// Each look for due deliveries that finds nothing to do is told to `idle`.
///
/// Two loops keep the slots busy. The recorder stores each batch of
/// outcomes and, in the same step, claims as many due lane heads as the
/// batch frees (one commit per batch on SQLite), and sends them at once:
/// under load, a lane's next event goes out as soon as the outcome before it
/// is stored. This loop claims with the slots left free: when commits wake
/// it, when a retry falls due, and on every poll.
pub async fn run(
    store: Arc<dyn Store>,
    transports: Arc<Transports>,
    policy: Arc<RetryPolicy>,
    settings: DispatchSettings,
    idle: IdleReporter,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(settings.max_in_flight));
    let wake = store.outbox_signal();
    let (outcomes, recorded) = mpsc::unbounded_channel();
    let leases = Leases::new(settings.lease);
    let keeper = tokio::spawn(leases.clone().keep(store.clone()));
    let (handed, handed_off) = mpsc::unbounded_channel();
    let handing_off = store.hand_off_to(HandOff {
        lease_micros: settings.lease.as_micros() as i64,
        default_max_in_flight: settings.max_in_flight_per_integration,
        deliveries: handed,
    });
    // A store that hands deliveries off is sent by this process alone: its
    // places tell whether a lane waits for one.
    let places = handing_off.then(|| Places {
        slots: slots.clone(),
        default_max_in_flight: settings.max_in_flight_per_integration,
    });
    let workers = Arc::new(Workers {
        store: store.clone(),
        senders: Senders {
            transports,
            policy,
            outcomes,
            runs: Arc::new(OpenRuns::new(leases.clone(), places)),
            leases,
        },
        settings: settings.clone(),
        slots: slots.clone(),
    });
    let (recorder_stop, recorder_stopped) = watch::channel(false);
    let recorder = tokio::spawn(record(workers.clone(), recorded, recorder_stopped));
    let receiver = tokio::spawn(receive_hand_offs(workers.clone(), handed_off));
    tracing::info!(
        max_in_flight = settings.max_in_flight,
        handing_off,
        "delivery workers started"
    );
    loop {
        if *stop.borrow() {
            break;
        }
        let began = Instant::now();
        let free = slots.available_permits();
        // Every slot free: nothing is being sent and every outcome is stored.
        let nothing_in_flight = free == settings.max_in_flight;
        let mut claimed = Vec::new();
        let mut claim_failed = false;
        if free > 0 {
            match store.claim(workers.claim(free)).await {
                Ok(found) => claimed = found,
                Err(err) => {
                    claim_failed = true;
                    tracing::warn!(error = %err, "could not claim deliveries; retrying")
                }
            }
        }
        let idle_pass = nothing_in_flight && !claim_failed && claimed.is_empty();
        let full_batch = free > 0 && workers.dispatch(claimed, None).await == free;
        if full_batch {
            tokio::task::yield_now().await;
            continue;
        }
        let next_due = store.next_due().await;
        if idle_pass && let Ok(next_due) = next_due {
            idle.idle(began, next_due);
        }
        let sleep = match next_due {
            Ok(Some(due)) => Duration::from_micros((due - now_micros()).max(0) as u64)
                .min(settings.poll_interval),
            Ok(None) | Err(_) => settings.poll_interval,
        };
        tokio::select! {
            () = wake.workers.notified() => {}
            () = tokio::time::sleep(sleep.max(Duration::from_millis(1))) => {}
            _ = stop.changed() => {}
        }
    }
    // Let deliveries in flight record their outcome; the recorder claims
    // nothing more.
    let _ = recorder_stop.send(true);
    let _ = slots.acquire_many(settings.max_in_flight as u32).await;
    // Every slot back: every outcome is stored, and the recorder waits for
    // more that will not come.
    keeper.abort();
    recorder.abort();
    receiver.abort();
    let _ = recorder.await;
    tracing::info!("delivery workers stopped");
}

/// Sends the deliveries the store handed off at commit: from a message to
/// its bot without a claim. Those leased on lanes that were idle start
/// runs; those behind a lane this process holds join its run when they
/// come right after its last, and otherwise stay pending for the claims.
async fn receive_hand_offs(
    workers: Arc<Workers>,
    mut handed_off: mpsc::UnboundedReceiver<Vec<HandedOff>>,
) {
    while let Some(mut handed) = handed_off.recv().await {
        while let Ok(more) = handed_off.try_recv() {
            handed.extend(more);
        }
        let claimed = match workers.store.handed_off(&handed).await {
            Ok(claimed) => claimed,
            // Their leases run out and a claim finds them.
            Err(err) => {
                tracing::warn!(error = %err, count = handed.len(), "could not read handed-off deliveries; they are claimed after their lease");
                continue;
            }
        };
        let mut by_id: std::collections::HashMap<i64, ClaimedDelivery> = claimed
            .into_iter()
            .map(|delivery| (delivery.delivery_id, delivery))
            .collect();
        // Runs that start here, each in order.
        let mut starting: Vec<Vec<ClaimedDelivery>> = Vec::new();
        for item in &handed {
            let Some(delivery) = by_id.remove(&item.delivery_id) else {
                continue;
            };
            match item.lane {
                HandedLane::Leased { .. } => {
                    count_handed_off(IDLE_LANE);
                    starting.push(vec![delivery]);
                }
                HandedLane::Behind { previous } => {
                    if let Some(run) = starting
                        .iter_mut()
                        .find(|run| run.last().is_some_and(|last| last.delivery_id == previous))
                    {
                        count_handed_off(HELD_LANE);
                        run.push(delivery);
                    } else if let Some(resumed) = workers.senders.runs.join(delivery, previous) {
                        let senders = workers.senders.clone();
                        tokio::spawn(async move {
                            send_run(&senders, resumed.lane, resumed.first, resumed.slot).await
                        });
                    }
                }
            }
        }
        workers.dispatch(starting.concat(), None).await;
    }
}

/// Splits claimed deliveries into what one transport call sends: deliveries
/// of one integration, as many as its transport batches.
fn groups(claimed: Vec<ClaimedDelivery>, transports: &Transports) -> Vec<Vec<ClaimedDelivery>> {
    let mut by_integration: Vec<Vec<ClaimedDelivery>> = Vec::new();
    for delivery in claimed {
        match by_integration
            .iter_mut()
            .find(|group| group[0].integration.id == delivery.integration.id)
        {
            Some(group) => group.push(delivery),
            None => by_integration.push(vec![delivery]),
        }
    }
    let mut groups = Vec::new();
    for mut deliveries in by_integration {
        let size = transports
            .for_target(&deliveries[0].integration.target)
            .max_batch()
            .max(1);
        while deliveries.len() > size {
            let rest = deliveries.split_off(size);
            groups.push(std::mem::replace(&mut deliveries, rest));
        }
        groups.push(deliveries);
    }
    groups
}
