//! The retry policy: pure functions from an attempt's outcome to the verdict,
//! with the randomness (jitter) passed in so they are tested exactly.

use std::time::Duration;

use rand::Rng;
use switchboard_domain::UnixMicros;
use switchboard_store::Verdict;

/// When to try again and when to give up.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Delays between attempts: after the first failed attempt wait
    /// `schedule[0]`, after the second `schedule[1]`… After the last one the
    /// event is dead-lettered.
    pub schedule: Vec<Duration>,
    /// Each delay is multiplied by a random factor in `1 ± jitter`.
    pub jitter: f64,
    /// The longest `Retry-After` honoured; longer ones are cut to this.
    pub max_retry_after: Duration,
    /// An integration that has only failed for this long is disabled.
    pub disable_after: Duration,
}

impl RetryPolicy {
    /// About 24 h in all: 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h, 8 h.
    pub fn default_schedule() -> Vec<Duration> {
        [5, 30, 120, 600, 1_800, 3_600, 7_200, 14_400, 28_800, 28_800]
            .into_iter()
            .map(Duration::from_secs)
            .collect()
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            schedule: Self::default_schedule(),
            jitter: 0.2,
            max_retry_after: Duration::from_secs(3_600),
            disable_after: Duration::from_secs(5 * 24 * 3_600),
        }
    }
}

/// What one attempt came to, as far as the policy cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptResult {
    /// A 2xx answer.
    Delivered,
    /// `410 Gone`: the receiver wants no more events.
    Gone,
    /// The event can never be taken as it is (larger than the queue allows,
    /// or its stored data makes no envelope): dead-lettered at once, with
    /// the reason, and its lane moves on.
    Rejected { reason: String },
    /// Anything else: a non-2xx answer, a timeout, a refused or failed connection.
    Failed {
        /// What went wrong, for the delivery log.
        reason: String,
        /// The receiver's `Retry-After` (on 429 and 503).
        retry_after: Option<Duration>,
    },
}

impl RetryPolicy {
    /// The wait before the next attempt after `attempts` failed ones (1 for
    /// the first failure); `None` once the schedule is used up.
    pub fn next_delay(
        &self,
        attempts: u32,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Option<Duration> {
        let index = usize::try_from(attempts.checked_sub(1)?).ok()?;
        let scheduled = *self.schedule.get(index)?;
        if let Some(asked) = retry_after {
            return Some(asked.min(self.max_retry_after));
        }
        let spread = self.jitter.clamp(0.0, 1.0);
        let factor = if spread > 0.0 {
            rng.gen_range(1.0 - spread..=1.0 + spread)
        } else {
            1.0
        };
        Some(scheduled.mul_f64(factor))
    }

    /// The verdict on an attempt: `attempts` counts it, `failing_since` is when
    /// the integration's current run of failures began.
    pub fn verdict(
        &self,
        attempts: u32,
        result: &AttemptResult,
        now: UnixMicros,
        failing_since: Option<UnixMicros>,
        rng: &mut impl Rng,
    ) -> Verdict {
        match result {
            AttemptResult::Delivered => Verdict::Delivered,
            AttemptResult::Gone => Verdict::Disable {
                reason: "the receiver answered 410 Gone".to_owned(),
            },
            AttemptResult::Rejected { reason } => Verdict::DeadLetter {
                reason: reason.clone(),
            },
            AttemptResult::Failed {
                reason,
                retry_after,
            } => {
                let failing_for =
                    failing_since.map(|since| Duration::from_micros((now - since).max(0) as u64));
                if failing_for.is_some_and(|failing_for| failing_for >= self.disable_after) {
                    return Verdict::Disable {
                        reason: format!(
                            "no successful delivery for {} s; last error: {reason}",
                            self.disable_after.as_secs()
                        ),
                    };
                }
                match self.next_delay(attempts, *retry_after, rng) {
                    Some(delay) => Verdict::Retry {
                        at: now + delay.as_micros() as i64,
                    },
                    None => Verdict::DeadLetter {
                        reason: format!("gave up after {attempts} attempts; last error: {reason}"),
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            schedule: vec![Duration::from_secs(1), Duration::from_secs(10)],
            jitter: 0.2,
            max_retry_after: Duration::from_secs(60),
            disable_after: Duration::from_secs(3_600),
        }
    }

    fn failed(retry_after: Option<Duration>) -> AttemptResult {
        AttemptResult::Failed {
            reason: "HTTP 500".into(),
            retry_after,
        }
    }

    #[test]
    fn delays_follow_the_schedule_within_the_jitter_then_stop() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..100 {
            let first = policy().next_delay(1, None, &mut rng).unwrap();
            assert!((800..=1_200).contains(&first.as_millis()), "{first:?}");
            let second = policy().next_delay(2, None, &mut rng).unwrap();
            assert!((8_000..=12_000).contains(&second.as_millis()), "{second:?}");
        }
        assert_eq!(policy().next_delay(3, None, &mut rng), None);
        assert_eq!(policy().next_delay(0, None, &mut rng), None);
        let exact = RetryPolicy {
            jitter: 0.0,
            ..policy()
        };
        assert_eq!(
            exact.next_delay(2, None, &mut rng),
            Some(Duration::from_secs(10))
        );
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_bound_but_not_past_the_horizon() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(
            policy().next_delay(1, Some(Duration::from_secs(30)), &mut rng),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            policy().next_delay(1, Some(Duration::from_secs(600)), &mut rng),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            policy().next_delay(3, Some(Duration::from_secs(1)), &mut rng),
            None
        );
    }

    #[test]
    fn verdicts() {
        let mut rng = StdRng::seed_from_u64(3);
        let now = 1_000_000_000;
        assert_eq!(
            policy().verdict(1, &AttemptResult::Delivered, now, Some(0), &mut rng),
            Verdict::Delivered
        );
        assert!(matches!(
            policy().verdict(1, &AttemptResult::Gone, now, None, &mut rng),
            Verdict::Disable { .. }
        ));
        match policy().verdict(1, &failed(None), now, Some(now), &mut rng) {
            Verdict::Retry { at } => assert!((now + 800_000..=now + 1_200_000).contains(&at)),
            other => panic!("{other:?}"),
        }
        match policy().verdict(3, &failed(None), now, Some(now), &mut rng) {
            Verdict::DeadLetter { reason } => {
                assert!(reason.contains("3 attempts") && reason.contains("HTTP 500"))
            }
            other => panic!("{other:?}"),
        }
        let too_large = AttemptResult::Rejected {
            reason: "the event is too large".into(),
        };
        assert_eq!(
            policy().verdict(1, &too_large, now, None, &mut rng),
            Verdict::DeadLetter {
                reason: "the event is too large".into()
            }
        );
        let long_ago = now - 3_600 * 1_000_000;
        assert!(matches!(
            policy().verdict(1, &failed(None), now, Some(long_ago), &mut rng),
            Verdict::Disable { .. }
        ));
    }

    #[test]
    fn the_default_schedule_spans_about_a_day() {
        let total: Duration = RetryPolicy::default_schedule().iter().sum();
        assert!(
            (20 * 3_600..=26 * 3_600).contains(&total.as_secs()),
            "{total:?}"
        );
    }
}
