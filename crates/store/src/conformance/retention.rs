//! Retention on every backend: what is outside its window goes whole and in
//! batches, what is pending never goes, dead letters keep their own window,
//! and queries reaching back past what was pruned are refused.

use std::sync::Arc;

use switchboard_domain::{MessageId, now_micros};

use super::delivery::{Setup, asking, finished, log_since, say, setup};
use super::page;
use crate::*;

const SECOND: i64 = 1_000_000;
const HOUR: i64 = 3_600 * SECOND;

/// Delivered events after a microsecond, dead letters after an hour.
const SHORT: Retention = Retention {
    delivered: Some(1),
    dead_letters: Some(HOUR),
    messages: None,
};

/// Prunes whole passes, a batch of `limit` at a time, until one falls short.
async fn prune_all(store: &dyn Store, now: i64, rules: Retention, limit: u32) -> PrunedEvents {
    let mut total = PrunedEvents::default();
    let mut after = None;
    loop {
        let batch = store
            .prune_events(now, rules, after.clone(), limit)
            .await
            .expect("prune");
        assert!(
            batch.examined <= limit,
            "a batch looks at most at its limit"
        );
        total.examined += batch.examined;
        total.events += batch.events;
        total.deliveries += batch.deliveries;
        total.attempts += batch.attempts;
        if batch.examined < limit {
            return total;
        }
        after = batch.next;
    }
}

fn states(records: &[DeliveryRecord]) -> Vec<DeliveryState> {
    let mut states: Vec<DeliveryState> = records.iter().map(|record| record.state).collect();
    states.sort_by_key(|state| state.as_str());
    states
}

pub async fn retention_prunes_finished_events_whole_and_never_pending_ones(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let setup: Setup = setup(store, 3, None).await;
    say(store, &setup, 0, "delivered").await;
    say(store, &setup, 1, "dead-lettered").await;
    say(store, &setup, 2, "in flight").await;
    say(store, &setup, 0, "waiting behind the first").await;
    let now = now_micros() + SECOND;
    let claimed = store.claim(asking(now, 10, 60 * SECOND)).await.unwrap();
    assert_eq!(claimed.len(), 3, "the head of each lane");
    let of = |channel: usize| {
        claimed
            .iter()
            .find(|c| c.lane() == setup.channels[channel].as_str())
            .expect("a head of the channel")
    };
    store
        .finish(&[
            finished(of(0), Verdict::Delivered),
            finished(
                of(1),
                Verdict::DeadLetter {
                    reason: "gave up".to_owned(),
                },
            ),
        ])
        .await
        .unwrap();
    let before = log_since(store, &setup, None).await.unwrap();
    assert_eq!(before.len(), 4);

    // Keeping everything prunes nothing.
    assert_eq!(
        prune_all(store, now, Retention::FOREVER, 10).await,
        PrunedEvents::default()
    );

    // In batches of one: the delivered event goes with its delivery and
    // attempt, and so do the channels' creations, which no bot heard of
    // (recorded for the members' feeds only); the dead letter (inside its
    // hour), the one in flight and the one waiting stay.
    let pruned = prune_all(store, now, SHORT, 1).await;
    assert_eq!(
        (pruned.events, pruned.deliveries, pruned.attempts),
        (3 + 1, 1, 1)
    );
    assert_eq!(pruned.examined, 3 + 4);
    let kept = log_since(store, &setup, None).await.unwrap();
    assert_eq!(
        states(&kept),
        vec![
            DeliveryState::Dead,
            DeliveryState::Pending,
            DeliveryState::Pending
        ]
    );
    // The in-flight delivery is still finished as usual.
    store
        .finish(&[finished(of(2), Verdict::Delivered)])
        .await
        .unwrap();

    // Past what was pruned, the log and a replay by time are refused and
    // say from when events are kept; after it they answer.
    let too_early = before.iter().map(|r| r.created_at).min().unwrap();
    match log_since(store, &setup, Some(too_early)).await {
        Err(StoreError::Invalid(err)) => {
            assert_eq!(err.field, "since");
            assert!(err.message.contains("no longer kept"), "{}", err.message);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let replay = store
        .replay(
            &setup.company,
            &setup.bot,
            &setup.integration,
            ReplaySelection::Range {
                since: too_early,
                until: now,
            },
        )
        .await;
    assert!(
        matches!(&replay, Err(StoreError::Invalid(err)) if err.field == "since"),
        "{replay:?}"
    );
    let recent = kept.iter().map(|r| r.created_at).min().unwrap();
    assert_eq!(
        log_since(store, &setup, Some(recent)).await.unwrap().len(),
        3
    );

    // The one finished since goes at the next pass; dead letters go once
    // their own window is over; the waiting one never does.
    let pruned = prune_all(store, now, SHORT, 10).await;
    assert_eq!(pruned.events, 1);
    let pruned = prune_all(store, now + 2 * HOUR, SHORT, 10).await;
    assert_eq!(pruned.events, 1);
    let left = log_since(store, &setup, None).await.unwrap();
    assert_eq!(states(&left), vec![DeliveryState::Pending]);
    assert_eq!(left[0].attempts.len(), 0);
    store
        .reclaim_space()
        .await
        .expect("the space of pruned rows is made reusable");
    let stats = store.storage_stats().await.unwrap();
    assert!(stats.database_bytes > 0);
    assert_eq!(stats.oldest_event_at, Some(left[0].created_at));
    // Still sent: its lane is intact.
    let next = store
        .claim(asking(now + 2 * HOUR, 10, 60 * SECOND))
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
}

pub async fn retention_prunes_old_messages_with_their_reactions(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let setup: Setup = setup(store, 1, None).await;
    let channel = &setup.channels[0];
    let old = say(store, &setup, 0, "old").await;
    store
        .add_reaction(&setup.alice, channel, &MessageId::from_stored(old), "like")
        .await
        .unwrap();
    say(store, &setup, 0, "old too").await;
    let boundary = now_micros() + 1;
    while now_micros() <= boundary {
        tokio::task::yield_now().await;
    }
    let kept = say(store, &setup, 0, "recent").await;
    let pruned = store.prune_messages(boundary, 1).await.unwrap();
    assert_eq!((pruned.messages, pruned.reactions), (1, 1), "one per batch");
    let pruned = store.prune_messages(boundary, 10).await.unwrap();
    assert_eq!(pruned.messages, 1);
    assert_eq!(
        store.prune_messages(boundary, 10).await.unwrap(),
        PrunedMessages::default()
    );
    let left = store
        .list_messages(&setup.alice, channel, page())
        .await
        .unwrap();
    assert_eq!(
        left.iter()
            .map(|m| m.message_id.as_str())
            .collect::<Vec<_>>(),
        vec![kept.as_str()]
    );
}
