//! The delivery workers' side of the outbox, on every backend: claims with
//! leases, lanes in channel order, each verdict, and in-flight limits.

use std::sync::Arc;

use switchboard_domain::{Actor, ChannelId, CompanyId, IntegrationId, UserId, now_micros};
use switchboard_protocol::EventType;

use super::{company, group, person, text};
use crate::*;

pub(super) const SECOND: i64 = 1_000_000;
const LEASE: i64 = 60 * SECOND;

/// A company with a person, a bot subscribed to new messages by webhook,
/// and `channels` channels of both.
pub(super) struct Setup {
    pub(super) company: CompanyId,
    pub(super) alice: Actor,
    pub(super) bot: UserId,
    pub(super) integration: IntegrationId,
    pub(super) channels: Vec<ChannelId>,
}

pub(super) async fn setup(store: &dyn Store, channels: usize, max_in_flight: Option<u32>) -> Setup {
    let (company, _) = company(store, "A").await;
    let alice = person(store, &company, "alice@example.com").await;
    let bot = store
        .create_bot(
            &company,
            BotProfile {
                name: "Bot".to_owned(),
                picture: None,
                locale: None,
                time_zone: None,
                access: None,
                integration_type: None,
                searchable: None,
            },
        )
        .await
        .expect("bot");
    let bot = UserId::from_stored(bot.id);
    let integration = store
        .create_integration(
            &company,
            NewIntegration {
                bot: bot.clone(),
                target: Target::Webhook {
                    url: "http://127.0.0.1:9/hook".to_owned(),
                },
                sealed_aws_secret: None,
                event_types: Some(vec![EventType::MessageNew]),
                sealed_secret: "sealed".to_owned(),
                settings: DeliverySettings {
                    max_in_flight,
                    ..DeliverySettings::default()
                },
            },
        )
        .await
        .expect("integration");
    let mut ids = Vec::new();
    for _ in 0..channels {
        ids.push(group(store, &alice, vec![bot.clone()]).await);
    }
    Setup {
        company,
        alice,
        bot,
        integration: integration.id,
        channels: ids,
    }
}

pub(super) async fn say(store: &dyn Store, setup: &Setup, channel: usize, words: &str) -> String {
    store
        .send_message(&setup.alice, &setup.channels[channel], text(words), None)
        .await
        .expect("message")
        .message_id
}

/// The message a claimed `chat:message:new` carries.
fn message_of(claimed: &ClaimedDelivery) -> String {
    let data: serde_json::Value = serde_json::from_str(&claimed.data).expect("event data");
    data["message"]["messageId"]
        .as_str()
        .expect("message id")
        .to_owned()
}

pub(super) fn finished(claimed: &ClaimedDelivery, verdict: Verdict) -> Finished {
    Finished {
        claimed: claimed.clone(),
        attempt: Attempt {
            attempted_at: now_micros(),
            duration_us: 1_000,
            status_code: Some(if verdict == Verdict::Delivered {
                200
            } else {
                503
            }),
            outcome: if verdict == Verdict::Delivered {
                "delivered"
            } else {
                "failed"
            }
            .to_owned(),
            error: (verdict != Verdict::Delivered).then(|| "the bot answered 503".to_owned()),
            response_snippet: None,
        },
        verdict,
        lane_continues: false,
    }
}

/// A claim at `now` of up to `limit` heads, leased for `lease_micros`.
pub(super) fn asking(now: i64, limit: u32, lease_micros: i64) -> Claim {
    Claim {
        now,
        limit,
        lease_micros,
        default_max_in_flight: 8,
        run: 1,
    }
}

async fn claim(store: &dyn Store, at: i64, limit: u32) -> Vec<ClaimedDelivery> {
    store.claim(asking(at, limit, LEASE)).await.expect("claim")
}

async fn log(store: &dyn Store, setup: &Setup) -> Vec<DeliveryRecord> {
    log_since(store, setup, None).await.expect("delivery log")
}

/// The delivery log of events since `since`.
pub(super) async fn log_since(
    store: &dyn Store,
    setup: &Setup,
    since: Option<i64>,
) -> StoreResult<Vec<DeliveryRecord>> {
    store
        .list_deliveries(
            &setup.company,
            &setup.bot,
            &setup.integration,
            DeliveryLogQuery {
                state: None,
                before: None,
                since,
                limit: 100,
            },
        )
        .await
}

pub async fn lanes_are_claimed_in_channel_order_under_a_lease(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let setup = setup(store, 2, None).await;
    let first = say(store, &setup, 0, "one").await;
    let second = say(store, &setup, 0, "two").await;
    let elsewhere = say(store, &setup, 1, "elsewhere").await;
    let now = now_micros() + SECOND;

    // One head per lane: the first message of each channel.
    let heads = claim(store, now, 10).await;
    let mut claimed: Vec<String> = heads.iter().map(message_of).collect();
    claimed.sort();
    let mut expected = vec![first.clone(), elsewhere.clone()];
    expected.sort();
    assert_eq!(
        claimed, expected,
        "the head of each lane, and nothing behind it"
    );
    for head in &heads {
        assert_eq!(head.lease_until, now + LEASE);
        assert_eq!(head.attempts, 0);
        assert_eq!(head.integration.id, setup.integration);
        assert_eq!(head.event_type, EventType::MessageNew);
    }
    assert!(
        claim(store, now, 10).await.is_empty(),
        "leased lanes are not claimed twice"
    );

    // Delivered: the lane moves to its next event, due at once.
    let head = heads.iter().find(|h| message_of(h) == first).unwrap();
    store
        .finish(&[finished(head, Verdict::Delivered)])
        .await
        .unwrap();
    let next = claim(store, now + 1, 10).await;
    assert_eq!(
        next.iter().map(message_of).collect::<Vec<_>>(),
        vec![second.clone()]
    );
    assert!(next[0].channel_seq > head.channel_seq, "channel order");
    store
        .finish(&[finished(&next[0], Verdict::Delivered)])
        .await
        .unwrap();
    let other = heads.iter().find(|h| message_of(h) == elsewhere).unwrap();
    store
        .finish(&[finished(other, Verdict::Delivered)])
        .await
        .unwrap();
    assert!(
        claim(store, now + 2, 10).await.is_empty(),
        "every lane is closed"
    );
    assert_eq!(store.next_due().await.unwrap(), None);

    let records = log(store, &setup).await;
    assert_eq!(records.len(), 3);
    for record in &records {
        assert_eq!(record.state, DeliveryState::Delivered);
        assert_eq!(record.attempts.len(), 1);
        assert_eq!(record.attempts[0].status_code, Some(200));
    }
}

pub async fn each_verdict_is_recorded_and_applied(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let setup = setup(store, 1, None).await;
    let first = say(store, &setup, 0, "one").await;
    let second = say(store, &setup, 0, "two").await;
    let now = now_micros() + SECOND;

    // Retry: the head stays, due at the given time, attempts counted.
    let head = claim(store, now, 10).await.remove(0);
    let retry_at = now + 10 * SECOND;
    store
        .finish(&[finished(&head, Verdict::Retry { at: retry_at })])
        .await
        .unwrap();
    assert!(
        claim(store, retry_at - 1, 10).await.is_empty(),
        "not before its time"
    );
    assert_eq!(store.next_due().await.unwrap(), Some(retry_at));
    let again = claim(store, retry_at, 10).await.remove(0);
    assert_eq!(message_of(&again), first);
    assert_eq!(again.attempts, 1);

    // Dead letter: recorded with its reason, and the lane moves on.
    store
        .finish(&[finished(
            &again,
            Verdict::DeadLetter {
                reason: "gave up after 2 attempts".to_owned(),
            },
        )])
        .await
        .unwrap();
    let next = claim(store, retry_at + 1, 10).await.remove(0);
    assert_eq!(message_of(&next), second);
    let records = log(store, &setup).await;
    let dead = records
        .iter()
        .find(|r| r.state == DeliveryState::Dead)
        .expect("a dead letter");
    assert_eq!(dead.attempts.len(), 2);
    assert_eq!(dead.last_error.as_deref(), Some("gave up after 2 attempts"));
    assert_eq!(store.outbox_stats(retry_at + 1).await.unwrap().dead, 1);

    // Disable: the integration stops; its head waits, claimed again once resumed.
    store
        .finish(&[finished(
            &next,
            Verdict::Disable {
                reason: "the bot's URL answers 410".to_owned(),
            },
        )])
        .await
        .unwrap();
    let integration = store
        .get_integration(&setup.company, &setup.bot, &setup.integration)
        .await
        .unwrap();
    assert_eq!(integration.state, IntegrationState::Disabled);
    assert_eq!(
        integration.disabled_reason.as_deref(),
        Some("the bot's URL answers 410")
    );
    assert!(
        claim(store, retry_at + 2, 10).await.is_empty(),
        "a disabled integration is not sent to"
    );
    store
        .set_integration_state(
            &setup.company,
            &setup.bot,
            &setup.integration,
            IntegrationState::Active,
        )
        .await
        .unwrap();
    let resumed = claim(store, now_micros() + 20 * SECOND, 10).await;
    assert_eq!(
        resumed.iter().map(message_of).collect::<Vec<_>>(),
        vec![second]
    );
    assert_eq!(resumed[0].attempts, 1);
}

pub async fn an_expired_lease_is_claimed_again_and_its_late_outcome_dropped(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let setup = setup(store, 1, None).await;
    let message = say(store, &setup, 0, "one").await;
    let now = now_micros() + SECOND;
    let lost = store
        .claim(asking(now, 10, SECOND))
        .await
        .unwrap()
        .remove(0);

    // The worker died: once its lease ran out the head is claimed again.
    assert!(
        store
            .claim(asking(now + SECOND / 2, 10, SECOND))
            .await
            .unwrap()
            .is_empty()
    );
    let taken = store
        .claim(asking(now + 2 * SECOND, 10, LEASE))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(message_of(&taken), message);
    assert!(taken.lease_until > lost.lease_until);

    // The first worker's outcome comes late: it is not recorded.
    store
        .finish(&[finished(&lost, Verdict::Delivered)])
        .await
        .unwrap();
    let records = log(store, &setup).await;
    assert_eq!(records[0].state, DeliveryState::Pending);
    assert!(
        records[0].attempts.is_empty(),
        "an outcome without the lease is dropped"
    );
    store
        .finish(&[finished(&taken, Verdict::Delivered)])
        .await
        .unwrap();
    let records = log(store, &setup).await;
    assert_eq!(records[0].state, DeliveryState::Delivered);
    assert_eq!(records[0].attempts.len(), 1);
}

pub async fn a_lease_still_held_is_extended_and_a_lost_one_is_not(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let setup = setup(store, 1, None).await;
    let message = say(store, &setup, 0, "one").await;
    let now = now_micros() + SECOND;
    let claimed = store
        .claim(asking(now, 10, SECOND))
        .await
        .unwrap()
        .remove(0);
    let held = HeldLease {
        integration: setup.integration.as_str().to_owned(),
        lane: setup.channels[0].as_str().to_owned(),
        lease_until: claimed.lease_until,
    };
    let stale = HeldLease {
        lease_until: claimed.lease_until - 1,
        ..held.clone()
    };
    let extended_until = now + 10 * SECOND;
    assert_eq!(
        store
            .extend_leases(&[stale, held.clone()], extended_until)
            .await
            .unwrap(),
        vec![false, true],
        "only the lease as it stands is extended"
    );
    // Past the first lease, the lane is still held.
    assert!(
        store
            .claim(asking(now + 2 * SECOND, 10, SECOND))
            .await
            .unwrap()
            .is_empty()
    );
    // The outcome under the extended lease is recorded.
    let extended = ClaimedDelivery {
        lease_until: extended_until,
        ..claimed
    };
    assert_eq!(message_of(&extended), message);
    store
        .finish(&[finished(&extended, Verdict::Delivered)])
        .await
        .unwrap();
    let records = log(store, &setup).await;
    assert_eq!(records[0].state, DeliveryState::Delivered);
    // A lease that was finished is not extended again.
    assert_eq!(
        store
            .extend_leases(
                &[HeldLease {
                    lease_until: extended_until,
                    ..held
                }],
                extended_until + SECOND
            )
            .await
            .unwrap(),
        vec![false]
    );
}

pub async fn in_flight_limits_bound_the_leases_of_an_integration(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let setup = setup(store, 3, Some(2)).await;
    for channel in 0..3 {
        say(store, &setup, channel, "hello").await;
    }
    let now = now_micros() + SECOND;
    let heads = claim(store, now, 10).await;
    assert_eq!(heads.len(), 2, "at most max_in_flight lanes leased at once");
    assert!(claim(store, now, 10).await.is_empty());
    store
        .finish(&[finished(&heads[0], Verdict::Delivered)])
        .await
        .unwrap();
    assert_eq!(
        claim(store, now + 1, 10).await.len(),
        1,
        "a finished lease frees a place"
    );
    let stats = store.outbox_stats(now + 1).await.unwrap();
    assert_eq!(stats.dead, 0);
    assert_eq!(stats.disabled_integrations, 0);
}

pub async fn finishing_claims_the_next_heads_in_the_order_lanes_became_due(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let setup = setup(store, 2, Some(1)).await;
    let first = say(store, &setup, 0, "one").await;
    let waiting = say(store, &setup, 1, "waiting since before").await;
    let second = say(store, &setup, 0, "two").await;
    let now = now_micros() + SECOND;

    // One lease at a time for this integration: the first lane to become due.
    let head = claim(store, now, 10).await.remove(0);
    assert_eq!(message_of(&head), first);

    // Finishing it frees the place; the lane that waited longer gets it,
    // not the finished lane's next event.
    let next = store
        .finish_and_claim(
            &[finished(&head, Verdict::Delivered)],
            asking(now + 1, 1, LEASE),
        )
        .await
        .unwrap();
    assert_eq!(
        next.iter().map(message_of).collect::<Vec<_>>(),
        vec![waiting]
    );
    assert_eq!(next[0].lease_until, now + 1 + LEASE);
    let then = store
        .finish_and_claim(
            &[finished(&next[0], Verdict::Delivered)],
            asking(now + 2, 1, LEASE),
        )
        .await
        .unwrap();
    assert_eq!(
        then.iter().map(message_of).collect::<Vec<_>>(),
        vec![second]
    );
    assert!(then[0].channel_seq > head.channel_seq, "channel order");

    // Nothing left: the outcome is stored and nothing is claimed.
    let none = store
        .finish_and_claim(
            &[finished(&then[0], Verdict::Delivered)],
            asking(now + 3, 1, LEASE),
        )
        .await
        .unwrap();
    assert!(none.is_empty());
    let records = log(store, &setup).await;
    assert_eq!(records.len(), 3);
    assert!(
        records
            .iter()
            .all(|record| record.state == DeliveryState::Delivered)
    );
    assert_eq!(store.next_due().await.unwrap(), None);
}

pub async fn a_lane_is_claimed_as_a_run_sent_under_one_lease(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let setup = setup(store, 2, Some(1)).await;
    let mut words = Vec::new();
    for n in 0..4 {
        words.push(say(store, &setup, 0, &format!("run {n}")).await);
    }
    let other = say(store, &setup, 1, "other lane").await;
    let now = now_micros() + SECOND;

    // The first lane's head and the two behind it, in channel order; the
    // other lane waits for the integration's one place.
    let run = store
        .claim(Claim {
            run: 3,
            ..asking(now, 10, LEASE)
        })
        .await
        .unwrap();
    assert_eq!(
        run.iter().map(message_of).collect::<Vec<_>>(),
        words[..3].to_vec()
    );
    assert!(
        run.windows(2)
            .all(|pair| pair[0].channel_seq < pair[1].channel_seq)
    );
    assert!(
        run.iter()
            .all(|delivery| delivery.lease_until == now + LEASE)
    );

    // Each outcome but the last keeps the lane leased: nothing is claimed
    // meanwhile, neither this lane's next event nor the other lane.
    for (index, delivery) in run.iter().enumerate() {
        let mut outcome = finished(delivery, Verdict::Delivered);
        outcome.lane_continues = index + 1 < run.len();
        store.finish(&[outcome]).await.unwrap();
        if index + 1 < run.len() {
            assert!(
                claim(store, now + 1, 10).await.is_empty(),
                "the lane is still held by its run"
            );
        }
    }
    // The run is over: the lane that waited longest goes first.
    let next = claim(store, now + 2, 10).await;
    assert_eq!(next.iter().map(message_of).collect::<Vec<_>>(), vec![other]);
    store
        .finish(&[finished(&next[0], Verdict::Delivered)])
        .await
        .unwrap();
    let last = claim(store, now + 3, 10).await;
    assert_eq!(
        last.iter().map(message_of).collect::<Vec<_>>(),
        vec![words[3].clone()]
    );

    // A run cut short by a failure releases its lane for the retry.
    store
        .finish(&[finished(
            &last[0],
            Verdict::Retry {
                at: now + 10 * SECOND,
            },
        )])
        .await
        .unwrap();
    assert_eq!(store.next_due().await.unwrap(), Some(now + 10 * SECOND));
    let records = log(store, &setup).await;
    assert_eq!(
        records
            .iter()
            .filter(|record| record.state == DeliveryState::Delivered)
            .count(),
        4
    );
}

pub async fn a_delivery_queued_on_an_idle_lane_is_handed_off_leased(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let setup = setup(store, 2, Some(1)).await;
    let (sender, mut handed) = tokio::sync::mpsc::unbounded_channel();
    if !store.hand_off_to(HandOff {
        lease_micros: LEASE,
        default_max_in_flight: 8,
        deliveries: sender,
    }) {
        // This store's claims find every delivery.
        return;
    }
    let first = say(store, &setup, 0, "one").await;
    let second = say(store, &setup, 0, "two").await;
    let third = say(store, &setup, 0, "three").await;
    let elsewhere = say(store, &setup, 1, "the integration's one place is taken").await;

    // The first leased; the second and third behind the lane's last pending
    // delivery, each; nothing of the other channel, whose lane would pass
    // the integration's in-flight limit.
    let batches: Vec<Vec<HandedOff>> = std::iter::from_fn(|| handed.try_recv().ok()).collect();
    assert_eq!(batches.len(), 3, "{batches:?}");
    let batch = &batches[0];
    assert_eq!(batch.len(), 1);
    assert!(matches!(batch[0].lane, HandedLane::Leased { .. }));
    let claimed = store.handed_off(batch).await.unwrap();
    assert_eq!(
        claimed.iter().map(message_of).collect::<Vec<_>>(),
        vec![first]
    );
    assert_eq!(claimed[0].lease_until, batch[0].lease_until());
    let behind = store.handed_off(&batches[1..].concat()).await.unwrap();
    assert_eq!(
        behind.iter().map(message_of).collect::<Vec<_>>(),
        vec![second.clone(), third]
    );
    assert_eq!(
        batches[1][0].lane,
        HandedLane::Behind {
            previous: claimed[0].delivery_id
        }
    );
    assert_eq!(
        batches[2][0].lane,
        HandedLane::Behind {
            previous: behind[0].delivery_id
        }
    );
    assert_eq!(
        behind[0].lease_until, 0,
        "it takes the lease of the run it joins"
    );

    let now = now_micros() + SECOND;
    assert!(
        claim(store, now, 10).await.is_empty(),
        "the handed-off lane is leased, and the integration is at its limit"
    );

    // Its outcome is stored as a claimed one's, and the lanes move on.
    let next = store
        .finish_and_claim(
            &[finished(&claimed[0], Verdict::Delivered)],
            asking(now, 10, LEASE),
        )
        .await
        .unwrap();
    let got: Vec<String> = next.iter().map(message_of).collect();
    assert_eq!(got.len(), 1, "one place: {got:?}");
    assert!([second, elsewhere].contains(&got[0]));
}

/// Sends made at once, to several channels and some refused, are each
/// answered as if made alone (a backend may write them in one change), and
/// each channel's events are delivered in the order its messages are listed,
/// once each.
pub async fn sends_made_at_once_are_answered_each_and_delivered_in_channel_order(
    store: Arc<dyn Store>,
) {
    const PER_CHANNEL: usize = 20;
    let setup = Arc::new(setup(store.as_ref(), 3, None).await);
    let outsider = person(store.as_ref(), &setup.company, "outsider@example.com").await;
    let mut sends = tokio::task::JoinSet::new();
    for round in 0..PER_CHANNEL {
        for channel in 0..setup.channels.len() {
            let (store, setup) = (store.clone(), setup.clone());
            sends.spawn(async move {
                let words = format!("{channel}:{round}");
                let sent = store
                    .send_message(&setup.alice, &setup.channels[channel], text(&words), None)
                    .await;
                (true, sent)
            });
        }
        // Refused amid the others: not a member, and no such channel.
        let (store, setup, outsider) = (store.clone(), setup.clone(), outsider.clone());
        sends.spawn(async move {
            let channel = if round % 2 == 0 {
                setup.channels[0].clone()
            } else {
                ChannelId::from_stored(format!("ch_unknown{round}"))
            };
            let refused = store
                .send_message(&outsider, &channel, text("no"), None)
                .await;
            (false, refused)
        });
    }
    let mut sent = 0;
    while let Some(answer) = sends.join_next().await {
        match answer.expect("the send ran") {
            (true, answer) => {
                answer.expect("a member's send is accepted");
                sent += 1;
            }
            (false, answer) => assert!(
                matches!(answer, Err(StoreError::NotFound { .. })),
                "{answer:?}"
            ),
        }
    }
    assert_eq!(sent, PER_CHANNEL * setup.channels.len());

    // Each lane, drained head by head, gives its channel's messages in the
    // order they are listed, with rising channelSeq.
    let mut delivered: Vec<Vec<(i64, String)>> = vec![Vec::new(); setup.channels.len()];
    let mut now = now_micros() + SECOND;
    loop {
        let heads = claim(store.as_ref(), now, 10).await;
        if heads.is_empty() {
            break;
        }
        for head in &heads {
            let channel = setup
                .channels
                .iter()
                .position(|id| Some(id.as_str()) == head.channel_id.as_deref())
                .expect("a delivery of one of the channels");
            delivered[channel].push((head.channel_seq, message_of(head)));
        }
        let verdicts: Vec<Finished> = heads
            .iter()
            .map(|head| finished(head, Verdict::Delivered))
            .collect();
        store.finish(&verdicts).await.unwrap();
        now += 1;
    }
    for (index, channel) in setup.channels.iter().enumerate() {
        let mut listed = store
            .list_messages(&setup.alice, channel, super::page())
            .await
            .unwrap();
        listed.reverse();
        let listed: Vec<String> = listed.into_iter().map(|m| m.message_id).collect();
        let order: Vec<String> = delivered[index].iter().map(|(_, id)| id.clone()).collect();
        assert_eq!(order, listed, "channel {index}: delivered as listed");
        let seqs: Vec<i64> = delivered[index].iter().map(|(seq, _)| *seq).collect();
        assert!(
            seqs.windows(2).all(|pair| pair[0] < pair[1]),
            "channel {index}: channelSeq rises: {seqs:?}"
        );
    }
}
