//! Whether the delivery workers have anything left to do: for a caller that
//! must know that every delivery due by now was attempted and its outcome
//! stored — a test that reads the delivery log after a bot received an
//! event, or shows that something was *not* delivered.
//!
//! The workers report an **idle pass**: a look for due deliveries that began
//! with nothing in flight (every outcome stored) and claimed nothing. A
//! waiter asks after its own changes committed, wakes the workers and waits
//! for an idle pass that *began after it asked*, so a change committed before
//! the question can never be missed; with a horizon it also waits out
//! retries due within it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_domain::now_micros;
use switchboard_store::OutboxSignal;
use tokio::sync::watch;

/// One idle pass of the workers.
#[derive(Clone, Copy, Debug)]
struct IdlePass {
    /// When the pass began.
    began: Instant,
    /// When the next delivery falls due (a retry waiting), if any (µs).
    next_due: Option<i64>,
}

/// The workers' side: reports idle passes.
#[derive(Debug)]
pub struct IdleReporter {
    passes: watch::Sender<Option<IdlePass>>,
}

/// The waiters' side: cheap to clone.
#[derive(Clone, Debug)]
pub struct IdleWatch {
    passes: watch::Receiver<Option<IdlePass>>,
    wake: Arc<OutboxSignal>,
}

/// A connected reporter and watch; `wake` is what wakes the workers (the
/// store's outbox signal).
pub fn idle_signal(wake: Arc<OutboxSignal>) -> (IdleReporter, IdleWatch) {
    let (passes, watching) = watch::channel(None);
    (
        IdleReporter { passes },
        IdleWatch {
            passes: watching,
            wake,
        },
    )
}

impl IdleReporter {
    /// A pass that began at `began` with nothing in flight found nothing to
    /// claim; the next delivery is due at `next_due`.
    pub(crate) fn idle(&self, began: Instant, next_due: Option<i64>) {
        self.passes.send_replace(Some(IdlePass { began, next_due }));
    }
}

impl IdleWatch {
    /// Completes once the workers, after this call, found nothing due and
    /// nothing in flight, and no retry is due within `horizon` of the call.
    /// Waits forever if the workers have stopped: bound it with a timeout.
    pub async fn settled(&self, horizon: Duration) {
        let asked = Instant::now();
        let horizon_end = now_micros().saturating_add(horizon.as_micros() as i64);
        let mut passes = self.passes.clone();
        self.wake.workers.notify_one();
        let _ = passes
            .wait_for(|pass| {
                pass.is_some_and(|pass| {
                    pass.began >= asked && pass.next_due.is_none_or(|due| due > horizon_end)
                })
            })
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `settled(horizon)` completes once `report` has run.
    async fn completes(horizon: Duration, report: impl FnOnce(&IdleReporter, Instant)) -> bool {
        let (reporter, watch) = idle_signal(Arc::new(OutboxSignal::default()));
        let before = Instant::now();
        let waiter = tokio::spawn(async move { watch.settled(horizon).await });
        tokio::task::yield_now().await;
        report(&reporter, before);
        tokio::time::timeout(Duration::from_millis(200), waiter)
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn only_a_pass_begun_after_the_question_settles_it() {
        assert!(
            !completes(Duration::ZERO, |reporter, before| reporter
                .idle(before, None))
            .await,
            "a pass that began before the question may have missed a change"
        );
        assert!(
            completes(Duration::ZERO, |reporter, _| reporter
                .idle(Instant::now(), None))
            .await
        );
    }

    #[tokio::test]
    async fn a_retry_due_within_the_horizon_is_waited_for() {
        let soon = now_micros() + 1_000_000;
        assert!(
            !completes(Duration::from_secs(5), |reporter, _| {
                reporter.idle(Instant::now(), Some(soon))
            })
            .await
        );
        assert!(
            completes(Duration::ZERO, |reporter, _| {
                reporter.idle(Instant::now(), Some(soon))
            })
            .await
        );
    }
}
