//! The recorder: it stores the workers' outcomes, many per transaction, and
//! claims the next lanes with the slots they free in the same step.

use std::sync::Arc;
use std::time::Duration;

use switchboard_domain::now_micros;
use switchboard_store::{ClaimedDelivery, Finished, StoreError};
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};

use crate::dispatcher::{Recorded, Workers};
use crate::runs::{RunEnd, Settled};

/// Most outcomes stored in one transaction.
const RECORD_BATCH: usize = 256;

/// Stores outcomes as they come, many per transaction, claiming with the
/// slots they free and sending what it claimed; slots it could not use are
/// freed and the claiming loop woken (a retry may have fallen due). After
/// `stopping` turns true it only stores.
pub(crate) async fn record(
    workers: Arc<Workers>,
    mut outcomes: mpsc::UnboundedReceiver<Recorded>,
    stopping: watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    let mut lanes = Vec::with_capacity(RECORD_BATCH);
    while let Some(first) = outcomes.recv().await {
        let mut slots: Option<OwnedSemaphorePermit> = None;
        let mut next = Some(first);
        while let Some((mut finished, lane, end)) = next.take() {
            let freed = match end {
                RunEnd::Continues => None,
                RunEnd::Closed(slot) => Some(slot),
                RunEnd::Parked => match workers
                    .senders
                    .runs
                    .settle(&lane, finished.claimed.delivery_id)
                {
                    Settled::WentOn => {
                        finished.lane_continues = true;
                        None
                    }
                    Settled::Closed(slot) => Some(slot),
                },
            };
            batch.push(finished);
            lanes.push(lane);
            match (&mut slots, freed) {
                (Some(slots), Some(slot)) => slots.merge(slot),
                (free @ None, slot) => *free = slot,
                (Some(_), None) => {}
            }
            if batch.len() < RECORD_BATCH {
                next = outcomes.try_recv().ok();
            }
        }
        let freed = slots.as_ref().map_or(0, OwnedSemaphorePermit::num_permits);
        let limit = if *stopping.borrow() { 0 } else { freed };
        let claimed = {
            // Each outcome with its lane's lease as it stands now.
            let _stable = workers.senders.leases.stable().await;
            for (finished, lane) in batch.iter_mut().zip(&lanes) {
                finished.claimed.lease_until = lane.lease_until();
            }
            store_outcomes(&workers, &batch, limit).await
        };
        batch.clear();
        lanes.clear();
        if workers.dispatch(claimed, slots).await < freed {
            workers.store.outbox_signal().workers.notify_one();
        }
    }
}

/// Stores a batch of outcomes and claims up to `limit` due heads. While the
/// database is unavailable (a restart, a network cut) it tries again, as
/// long as the batch's leases hold: an outcome stored in time spares the
/// receiver a second copy. When the leases run out first, the deliveries
/// are sent again: at least once.
async fn store_outcomes(
    workers: &Workers,
    batch: &[Finished],
    limit: usize,
) -> Vec<ClaimedDelivery> {
    let leases_end = batch
        .iter()
        .map(|finished| finished.claimed.lease_until)
        .min()
        .unwrap_or_default();
    let mut pause = Duration::from_millis(100);
    loop {
        match workers
            .store
            .finish_and_claim(batch, workers.claim(limit))
            .await
        {
            Ok(claimed) => return claimed,
            Err(StoreError::Unavailable(_))
                if now_micros() + (pause.as_micros() as i64) < leases_end =>
            {
                tracing::warn!(
                    count = batch.len(),
                    "database unavailable; storing delivery outcomes again shortly"
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(err) => {
                tracing::warn!(error = %err, count = batch.len(), "could not record delivery outcomes; they will be sent again");
                return Vec::new();
            }
        }
    }
}
