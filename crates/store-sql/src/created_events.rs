//! The `switchboard_events_created_total` counter, moved only by events that
//! were stored.
//!
//! An event is recorded inside the transaction of the change that causes it,
//! and that transaction may still roll back: PostgreSQL aborts a serializable
//! transaction that conflicts with another and the backend runs it again from
//! the start. A backend that re-runs transactions runs each attempt inside
//! [`count_if_committed`], which counts the events the attempt recorded only
//! when it succeeds. Outside such a scope (the SQLite file, whose single
//! writer never re-runs a transaction) an event is counted when recorded.

use std::cell::RefCell;
use std::future::Future;

use switchboard_protocol::EventType;

tokio::task_local! {
    /// The events recorded by the running attempt, not yet counted.
    static RECORDED: RefCell<Vec<EventType>>;
}

/// Notes that the current transaction stored an event of `event_type`.
pub fn recorded(event_type: &EventType) {
    let held = RECORDED.try_with(|recorded| recorded.borrow_mut().push(event_type.clone()));
    if held.is_err() {
        count(event_type);
    }
}

/// Runs one attempt of a transaction; the events it recorded are counted
/// when it returns `Ok` (it committed) and forgotten when it fails.
pub async fn count_if_committed<T, E>(attempt: impl Future<Output = Result<T, E>>) -> Result<T, E> {
    RECORDED
        .scope(RefCell::new(Vec::new()), async move {
            let outcome = attempt.await;
            if outcome.is_ok() {
                RECORDED.with(|recorded| recorded.take().iter().for_each(count));
            }
            outcome
        })
        .await
}

fn count(event_type: &EventType) {
    metrics::counter!("switchboard_events_created_total", "type" => event_type.as_str().to_owned())
        .increment(1);
}

#[cfg(test)]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;

    /// How many events the recorder has counted (the tests record only
    /// `chat:message:new`, so one counter holds them all).
    fn counted(recorder: &DebuggingRecorder) -> u64 {
        recorder
            .snapshotter()
            .snapshot()
            .into_vec()
            .into_iter()
            .find_map(|(key, _, _, value)| match value {
                DebugValue::Counter(n)
                    if key.key().name() == "switchboard_events_created_total" =>
                {
                    Some(n)
                }
                _ => None,
            })
            .unwrap_or(0)
    }

    fn run<F: Future>(recorder: &DebuggingRecorder, attempt: F) -> F::Output {
        metrics::with_local_recorder(recorder, || {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime")
                .block_on(attempt)
        })
    }

    #[test]
    fn events_of_a_failed_attempt_are_not_counted_and_of_a_committed_one_are() {
        let recorder = DebuggingRecorder::new();
        let failed: Result<(), &str> = run(
            &recorder,
            count_if_committed(async {
                recorded(&EventType::MessageNew);
                Err("serialization failure")
            }),
        );
        assert!(failed.is_err());
        assert_eq!(counted(&recorder), 0);

        let committed: Result<(), &str> = run(
            &recorder,
            count_if_committed(async {
                recorded(&EventType::MessageNew);
                recorded(&EventType::MessageNew);
                Ok(())
            }),
        );
        assert!(committed.is_ok());
        assert_eq!(counted(&recorder), 2);
    }

    #[test]
    fn outside_an_attempt_an_event_is_counted_at_once() {
        let recorder = DebuggingRecorder::new();
        metrics::with_local_recorder(&recorder, || recorded(&EventType::MessageNew));
        assert_eq!(counted(&recorder), 1);
    }
}
