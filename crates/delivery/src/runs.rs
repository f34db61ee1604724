//! The lane runs this process has open, which deliveries queued behind
//! them join.
//!
//! A run is one lane's deliveries sent one after another under one lease
//! and one in-flight slot (see [`crate::dispatcher`]). Without joining, a
//! message queued on a lane whose run is sending waits for that run's
//! outcomes to be stored (a commit) and for the lane to be claimed again.
//! Instead, the store hands such a delivery to this process with the pending
//! delivery it comes right after ([`HandedLane::Behind`]); when that is the
//! open run's last, the delivery joins the run and is sent right after it.
//!
//! A run is open from its dispatch until its last outcome is taken to be
//! stored. Its sending task goes on to whatever has joined; when nothing
//! has, the run *parks* on its last outcome: the slot stays with the run,
//! and a delivery that joins meanwhile starts a new sending task at once.
//! The recorder, as it takes that outcome to store it, [closes](OpenRuns::settle)
//! a run still parked on it (the outcome releases the lane) or finds that
//! the run went on (the outcome keeps the lane's lease). Both happen under
//! one lock, so a delivery either joins before the close or stays pending
//! and is claimed after the outcome is stored: never both.
//!
//! The order of a lane holds because a delivery joins only behind the run's
//! last: a run starts as a prefix of the lane's pending deliveries (a claim
//! takes them in order) and each joining delivery is the one right after it.
//! A run stops taking deliveries after [`LANE_RUN_TIME`]: the lane's next
//! deliveries are then claimed in turn with other lanes of its integration.
//! Where this process alone sends the lanes (SQLite, which hands deliveries
//! off), a run goes on past that time while no lane can be waiting for its
//! place: a slot is free and the integration has fewer runs open than its
//! in-flight limit, so any other due lane is claimed at once anyway.
//!
//! [`HandedLane::Behind`]: switchboard_store::HandedLane::Behind

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard_store::ClaimedDelivery;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::leases::{HeldLane, Leases};

/// How long a run goes on to its next event while other lanes may wait for
/// its place: a slow bot's lanes then take turns at the integration's
/// places every event or two, as without runs, while a fast bot's runs are
/// sent whole and deliveries joining a busy lane go out without a claim.
pub const LANE_RUN_TIME: Duration = Duration::from_millis(25);

/// The runs open in this process, by integration and lane.
pub struct OpenRuns {
    runs: Mutex<Runs>,
    /// The lanes' holds: a run that closes releases its own.
    leases: Arc<Leases>,
    /// Where this process alone sends the lanes, what tells whether a lane
    /// may be waiting for a place (else a run always stops at
    /// [`LANE_RUN_TIME`]).
    places: Option<Places>,
}

/// The places of in-flight deliveries a lane waits for.
pub struct Places {
    /// The workers' slots.
    pub slots: Arc<Semaphore>,
    /// The in-flight limit of an integration that sets none.
    pub default_max_in_flight: u32,
}

struct OpenRun {
    /// The run's hold on its lane: which run this is (a lease lost and
    /// claimed again leaves an older run of the lane behind).
    lane: Arc<HeldLane>,
    /// The last delivery of the run, sent or not: the one a joining
    /// delivery must come right after.
    last: i64,
    began: Instant,
    /// The in-flight limit of the run's integration.
    integration_limit: usize,
    /// Deliveries of the run not sent yet, in order.
    waiting: VecDeque<ClaimedDelivery>,
    state: RunState,
}

enum RunState {
    /// A task is sending the run.
    Sending,
    /// No task is: the outcome of `after` waits to be stored, and the run
    /// holds its slot until then.
    Parked {
        after: i64,
        slot: OwnedSemaphorePermit,
    },
}

/// Where a run stands after an outcome, as the outcome goes to the recorder.
pub enum RunEnd {
    /// The run goes on: the lane stays leased.
    Continues,
    /// The run parked on this outcome: the recorder [settles](OpenRuns::settle) it.
    Parked,
    /// The run is over: the lane is released and this slot freed once the
    /// outcome is stored.
    Closed(OwnedSemaphorePermit),
}

/// What the recorder stores for a run's outcome that parked it.
pub enum Settled {
    /// The run went on: the lane stays leased.
    WentOn,
    /// The run is closed: the lane is released and its slot freed.
    Closed(OwnedSemaphorePermit),
}

/// A parked run that a joining delivery set going again.
pub struct Resumed {
    pub lane: Arc<HeldLane>,
    pub first: ClaimedDelivery,
    pub slot: OwnedSemaphorePermit,
}

impl OpenRuns {
    /// No run open; the runs' lanes are held in `leases`, and `places`
    /// are given where this process alone sends the lanes.
    pub fn new(leases: Arc<Leases>, places: Option<Places>) -> Self {
        OpenRuns {
            runs: Mutex::default(),
            leases,
            places,
        }
    }

    /// Opens the run held by `lane`, whose first delivery is being sent and
    /// whose `rest` waits, in order.
    pub fn open(&self, lane: &Arc<HeldLane>, first: &ClaimedDelivery, rest: Vec<ClaimedDelivery>) {
        self.open_since(lane, first, rest, Instant::now());
    }

    fn open_since(
        &self,
        lane: &Arc<HeldLane>,
        first: &ClaimedDelivery,
        rest: Vec<ClaimedDelivery>,
        began: Instant,
    ) {
        let default_limit = self
            .places
            .as_ref()
            .map_or(1, |places| places.default_max_in_flight);
        let integration_limit = first
            .integration
            .settings
            .max_in_flight
            .unwrap_or(default_limit)
            .max(1) as usize;
        let run = OpenRun {
            last: rest.last().unwrap_or(first).delivery_id,
            began,
            integration_limit,
            waiting: rest.into(),
            state: RunState::Sending,
            lane: lane.clone(),
        };
        self.runs
            .lock()
            .expect("open runs")
            .entry(lane.integration().to_owned())
            .or_default()
            .insert(lane.lane().to_owned(), run);
    }

    /// After the run held by `lane` sent `sent`: its next delivery, with the
    /// slot, when the run `may_go_on` and one is waiting; else the run parks
    /// (when it may go on: the slot stays with it) or closes. `record` takes
    /// where the run stands to the recorder with the outcome, under the
    /// lock, so that the outcome is on its way before the run can be settled
    /// or set going again.
    pub fn after_send(
        &self,
        lane: &Arc<HeldLane>,
        sent: i64,
        may_go_on: bool,
        slot: OwnedSemaphorePermit,
        record: impl FnOnce(RunEnd),
    ) -> Option<(ClaimedDelivery, OwnedSemaphorePermit)> {
        let mut runs = self.runs.lock().expect("open runs");
        let open = open_in(&runs, lane.integration());
        match find(&mut runs, lane) {
            Some(run) if may_go_on && self.goes_on(run, open) => match run.waiting.pop_front() {
                Some(next) => {
                    record(RunEnd::Continues);
                    Some((next, slot))
                }
                None => {
                    run.state = RunState::Parked { after: sent, slot };
                    record(RunEnd::Parked);
                    None
                }
            },
            // Or not found: claimed again after a lost lease, this run is over.
            _ => {
                remove(&mut runs, lane);
                self.leases.release(lane);
                record(RunEnd::Closed(slot));
                None
            }
        }
    }

    /// Joins `delivery` to its lane's open run when it comes right after
    /// the run's last (`previous`) and the run may still go on; it takes
    /// the run's lease. Returns the parked run it set going again, for a
    /// new task to send. A delivery that cannot join stays pending for the
    /// claims.
    pub fn join(&self, mut delivery: ClaimedDelivery, previous: i64) -> Option<Resumed> {
        let mut runs = self.runs.lock().expect("open runs");
        let open = open_in(&runs, delivery.integration.id.as_str());
        let run = runs
            .get_mut(delivery.integration.id.as_str())
            .and_then(|lanes| lanes.get_mut(delivery.lane()))
            .filter(|run| run.last == previous && self.goes_on(run, open))?;
        delivery.lease_until = run.lane.lease_until();
        run.last = delivery.delivery_id;
        count_handed_off(HELD_LANE);
        match std::mem::replace(&mut run.state, RunState::Sending) {
            RunState::Sending => {
                run.waiting.push_back(delivery);
                None
            }
            RunState::Parked { slot, .. } => Some(Resumed {
                lane: run.lane.clone(),
                first: delivery,
                slot,
            }),
        }
    }

    /// Whether `run`, one of `open` runs of its integration, may take one
    /// more delivery: within [`LANE_RUN_TIME`], or after it while no lane
    /// can be waiting for its place.
    fn goes_on(&self, run: &OpenRun, open: usize) -> bool {
        run.began.elapsed() < LANE_RUN_TIME
            || self.places.as_ref().is_some_and(|places| {
                places.slots.available_permits() > 0 && open < run.integration_limit
            })
    }

    /// Settles the run held by `lane` as the recorder takes the outcome of
    /// `sent`, which parked it, to store it: closed when it is still parked
    /// on it, else it went on (or was claimed again after a lost lease, and
    /// the store drops the outcome).
    pub fn settle(&self, lane: &Arc<HeldLane>, sent: i64) -> Settled {
        let mut runs = self.runs.lock().expect("open runs");
        let parked_here = find(&mut runs, lane).is_some_and(
            |run| matches!(run.state, RunState::Parked { after, .. } if after == sent),
        );
        if !parked_here {
            return Settled::WentOn;
        }
        match remove(&mut runs, lane).map(|run| run.state) {
            Some(RunState::Parked { slot, .. }) => {
                self.leases.release(lane);
                Settled::Closed(slot)
            }
            _ => unreachable!("the run was parked"),
        }
    }
}

/// A delivery handed off on a lane that was idle: it starts a run.
pub const IDLE_LANE: &str = "idle";
/// A delivery handed off behind a lane this process holds: it joins the run.
pub const HELD_LANE: &str = "held";

/// Counts a delivery the workers took as it was handed off, without a claim.
pub fn count_handed_off(lane: &'static str) {
    metrics::counter!("switchboard_delivery_handed_off_total", "lane" => lane).increment(1);
}

type Runs = HashMap<String, HashMap<String, OpenRun>>;

/// How many runs of `integration` are open.
fn open_in(runs: &Runs, integration: &str) -> usize {
    runs.get(integration).map_or(0, HashMap::len)
}

/// The open run held by `lane`.
fn find<'a>(runs: &'a mut Runs, lane: &Arc<HeldLane>) -> Option<&'a mut OpenRun> {
    runs.get_mut(lane.integration())?
        .get_mut(lane.lane())
        .filter(|run| Arc::ptr_eq(&run.lane, lane))
}

/// Takes out the open run held by `lane`, if it is still open (and not
/// replaced by a later claim of the lane).
fn remove(runs: &mut Runs, lane: &Arc<HeldLane>) -> Option<OpenRun> {
    find(runs, lane)?;
    let lanes = runs.get_mut(lane.integration())?;
    let run = lanes.remove(lane.lane());
    if lanes.is_empty() {
        runs.remove(lane.integration());
    }
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a delivery may join a run of `integration` in channel
    /// `ch_1` that began `age` ago and parked on its first delivery, with
    /// `free` worker slots, `other_lanes` other runs of the integration open
    /// and its in-flight `limit`; `places` as where this process alone
    /// sends the lanes.
    fn joins(places: bool, age: Duration, free: usize, other_lanes: usize, limit: u32) -> bool {
        let slots = Arc::new(Semaphore::new(free + 1 + other_lanes));
        let leases = Leases::new(Duration::from_secs(9));
        let runs = OpenRuns::new(
            leases.clone(),
            places.then(|| Places {
                slots: slots.clone(),
                default_max_in_flight: limit,
            }),
        );
        let began = Instant::now() - age;
        for other in 0..other_lanes {
            let head =
                ClaimedDelivery::sample(100 + other as i64, "int_1", Some(&format!("ch_o{other}")));
            runs.open_since(&leases.hold(&head), &head, Vec::new(), began);
            slots.clone().try_acquire_owned().unwrap().forget();
        }
        let first = ClaimedDelivery::sample(1, "int_1", Some("ch_1"));
        let lane = leases.hold(&first);
        runs.open_since(&lane, &first, Vec::new(), began);
        let slot = slots.clone().try_acquire_owned().unwrap();
        let mut parked = false;
        runs.after_send(&lane, 1, true, slot, |end| {
            parked = matches!(end, RunEnd::Parked)
        });
        let joined = runs
            .join(ClaimedDelivery::sample(2, "int_1", Some("ch_1")), 1)
            .is_some();
        assert_eq!(
            parked, joined,
            "a run parks only when a delivery may join it"
        );
        joined
    }

    #[test]
    fn a_run_takes_deliveries_past_its_time_only_while_no_lane_can_wait_for_its_place() {
        let young = Duration::from_millis(1);
        let old = LANE_RUN_TIME + Duration::from_millis(5);
        assert!(joins(false, young, 0, 0, 64), "within its time, always");
        assert!(joins(true, young, 0, 3, 1), "within its time, always");
        assert!(
            !joins(false, old, 8, 0, 64),
            "other processes' lanes may wait"
        );
        assert!(joins(true, old, 8, 0, 64), "a slot free, under the limit");
        assert!(joins(true, old, 1, 2, 4), "a slot free, under the limit");
        assert!(!joins(true, old, 0, 0, 64), "no slot free");
        assert!(!joins(true, old, 8, 3, 4), "the integration at its limit");
    }
}
