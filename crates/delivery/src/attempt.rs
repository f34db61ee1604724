//! One attempt at a group of deliveries: sent with their transport, and the
//! verdict on each, logged and counted.

use std::time::Duration;

use switchboard_domain::now_micros;
use switchboard_store::{Attempt, ClaimedDelivery, Finished, Verdict, envelope};

use crate::policy::{AttemptResult, RetryPolicy};
use crate::transport::{Outgoing, Sent, Transports};

/// Sends a group of deliveries of one integration and decides each one's
/// verdict: one outcome per delivery. A delivery whose stored data makes no
/// envelope is not sent: it is rejected, so dead-lettered at once.
pub(crate) async fn attempt(
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
    let mut unsendable = Vec::new();
    for delivery in group {
        match envelope::body(&delivery) {
            Ok(body) => outgoing.push(Outgoing {
                delivery,
                body: body.into(),
            }),
            Err(err) => {
                tracing::error!(event = %delivery.event_id, error = %err, "stored event data is not JSON");
                let reason = format!("the stored event data cannot be sent: {err}");
                let sent = Sent {
                    result: AttemptResult::Rejected { reason },
                    status: None,
                    duration: Duration::ZERO,
                    snippet: None,
                };
                unsendable.push(judge(policy, delivery, sent, attempted_at));
            }
        }
    }
    let results = transport.send(&outgoing).await;
    outgoing
        .into_iter()
        .zip(results)
        .map(|(outgoing, sent)| judge(policy, outgoing.delivery, sent, attempted_at))
        .chain(unsendable)
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
        &mut rand::thread_rng(),
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
        lane_continues: false,
    }
}
