//! The delivery workers: claim due lane heads, send each without a
//! transaction open, record the outcome. Woken at once by commits that queue
//! deliveries; polling is the fallback that keeps it correct.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use switchboard_domain::now_micros;
use switchboard_store::{Attempt, ClaimedDelivery, Finished, Store, StoreError, Verdict};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

use crate::envelope;
use crate::idle::IdleReporter;
use crate::leases::Leases;
use crate::policy::{AttemptResult, RetryPolicy};
use crate::transport::{Outgoing, Sent, Transports};

/// How the workers run.
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

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            max_in_flight: 256,
            max_in_flight_per_integration: 16,
            lease: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// Runs the workers until `stop` turns true; deliveries in flight then finish.
/// Each look for due deliveries that finds nothing to do is told to `idle`.
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
    let recorder = tokio::spawn(record(store.clone(), recorded));
    let leases = Leases::new(settings.lease);
    let keeper = tokio::spawn(leases.clone().keep(store.clone()));
    tracing::info!(
        max_in_flight = settings.max_in_flight,
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
            match store
                .claim(
                    now_micros(),
                    free as u32,
                    settings.lease.as_micros() as i64,
                    settings.max_in_flight_per_integration,
                )
                .await
            {
                Ok(found) => claimed = found,
                Err(err) => {
                    claim_failed = true;
                    tracing::warn!(error = %err, "could not claim deliveries; retrying")
                }
            }
        }
        let full_batch = free > 0 && claimed.len() == free;
        let idle_pass = nothing_in_flight && !claim_failed && claimed.is_empty();
        for group in groups(claimed, &transports) {
            let Ok(permits) = slots.clone().acquire_many_owned(group.len() as u32).await else {
                break;
            };
            let (transports, policy, outcomes, leases) = (
                transports.clone(),
                policy.clone(),
                outcomes.clone(),
                leases.clone(),
            );
            leases.hold(&group).await;
            tokio::spawn(async move {
                let mut permits = permits;
                let ids: Vec<i64> = group.iter().map(|delivery| delivery.delivery_id).collect();
                let results = attempt(&transports, &policy, group).await;
                let lease_ends = leases.release(&ids).await;
                for mut finished in results {
                    // The lease as last extended: the store checks it.
                    if let Some(until) = lease_ends.get(&finished.claimed.delivery_id) {
                        finished.claimed.lease_until = *until;
                    }
                    // Each slot stays taken until its outcome is stored.
                    let Some(permit) = permits.split(1) else {
                        break;
                    };
                    let _ = outcomes.send((finished, permit));
                }
            });
        }
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
            () = wake.notified() => {}
            () = tokio::time::sleep(sleep.max(Duration::from_millis(1))) => {}
            _ = stop.changed() => {}
        }
    }
    // Let deliveries in flight record their outcome.
    let _ = slots.acquire_many(settings.max_in_flight as u32).await;
    keeper.abort();
    drop(outcomes);
    let _ = recorder.await;
    tracing::info!("delivery workers stopped");
}

/// Most outcomes stored in one transaction.
const RECORD_BATCH: usize = 256;

/// Stores outcomes as they come, many per transaction, then frees their slots
/// and wakes the workers (a lane whose head was delivered has a next one due).
async fn record(
    store: Arc<dyn Store>,
    mut outcomes: mpsc::UnboundedReceiver<(Finished, OwnedSemaphorePermit)>,
) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    let mut slots = Vec::with_capacity(RECORD_BATCH);
    while let Some((finished, slot)) = outcomes.recv().await {
        batch.push(finished);
        slots.push(slot);
        while batch.len() < RECORD_BATCH {
            match outcomes.try_recv() {
                Ok((finished, slot)) => {
                    batch.push(finished);
                    slots.push(slot);
                }
                Err(_) => break,
            }
        }
        store_outcomes(store.as_ref(), &batch).await;
        batch.clear();
        slots.clear();
        store.outbox_signal().notify_one();
    }
}

/// Stores a batch of outcomes. While the database is unavailable (a restart,
/// a network cut) it tries again, as long as the batch's leases hold: an
/// outcome stored in time spares the receiver a second copy. When the leases
/// run out first, the deliveries are sent again: at least once.
async fn store_outcomes(store: &dyn Store, batch: &[Finished]) {
    let leases_end = batch
        .iter()
        .map(|finished| finished.claimed.lease_until)
        .min()
        .unwrap_or_default();
    let mut pause = Duration::from_millis(100);
    loop {
        match store.finish(batch).await {
            Ok(()) => return,
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
                return;
            }
        }
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

/// Sends a group of deliveries of one integration and decides each one's
/// verdict. A delivery whose stored data cannot be sent at all is left out;
/// its lease runs out and it is tried again.
async fn attempt(
    transports: &Transports,
    policy: &RetryPolicy,
    group: Vec<ClaimedDelivery>,
) -> Vec<Finished> {
    let Some(first) = group.first() else {
        return Vec::new();
    };
    let transport = transports.for_target(&first.integration.target);
    let attempted_at = now_micros();
    let mut outgoing = Vec::with_capacity(group.len());
    for delivery in group {
        match envelope::body(&delivery) {
            Ok(body) => outgoing.push(Outgoing {
                delivery,
                body: body.into(),
            }),
            Err(err) => {
                tracing::error!(event = %delivery.event_id, error = %err, "stored event data is not JSON")
            }
        }
    }
    let results = transport.send(&outgoing).await;
    outgoing
        .into_iter()
        .zip(results)
        .map(|(outgoing, sent)| judge(policy, outgoing.delivery, sent, attempted_at))
        .collect()
}

/// The verdict on one attempt, logged and counted.
fn judge(
    policy: &RetryPolicy,
    delivery: ClaimedDelivery,
    sent: Sent,
    attempted_at: i64,
) -> Finished {
    let attempts = delivery.attempts + 1;
    let now = now_micros();
    let own_schedule;
    let policy = match &delivery.integration.settings.retry_schedule_ms {
        Some(delays) => {
            own_schedule = RetryPolicy {
                schedule: delays.iter().copied().map(Duration::from_millis).collect(),
                ..policy.clone()
            };
            &own_schedule
        }
        None => policy,
    };
    let verdict = policy.verdict(
        attempts,
        &sent.result,
        now,
        delivery.integration.failing_since,
        &mut StdRng::from_entropy(),
    );
    let (outcome, error) = match &sent.result {
        AttemptResult::Delivered => ("delivered", None),
        AttemptResult::Gone => ("gone", Some("the receiver answered 410 Gone".to_owned())),
        AttemptResult::Rejected { reason } => ("rejected", Some(reason.clone())),
        AttemptResult::Failed {
            reason,
            retry_after: Some(_),
        } => ("throttled", Some(reason.clone())),
        AttemptResult::Failed { reason, .. } => ("failed", Some(reason.clone())),
    };
    match &verdict {
        Verdict::Delivered => {
            tracing::debug!(event = %delivery.event_id, integration = %delivery.integration.id, "delivered")
        }
        Verdict::Retry { .. } => tracing::info!(
            event = %delivery.event_id, integration = %delivery.integration.id, attempts,
            error = error.as_deref().unwrap_or_default(), "delivery failed; will retry"
        ),
        Verdict::DeadLetter { reason } => tracing::warn!(
            event = %delivery.event_id, integration = %delivery.integration.id, %reason, "delivery dead-lettered"
        ),
        Verdict::Disable { reason } => tracing::warn!(
            integration = %delivery.integration.id, %reason, "integration disabled"
        ),
    }
    metrics::counter!("switchboard_delivery_attempts_total", "outcome" => outcome).increment(1);
    if verdict == Verdict::Delivered {
        let waited = (now - delivery.queued_at).max(0) as f64 / 1_000_000.0;
        metrics::histogram!("switchboard_delivery_latency_seconds").record(waited);
    }
    let attempt = Attempt {
        attempted_at,
        duration_us: sent.duration.as_micros() as i64,
        status_code: sent.status,
        outcome: outcome.to_owned(),
        error,
        response_snippet: sent.snippet,
    };
    Finished {
        claimed: delivery,
        attempt,
        verdict,
    }
}
