//! Pull integrations on every backend: their lanes are claimed by the
//! bot's consumers only, a head at a time, and never by the workers.

use std::sync::Arc;

use switchboard_domain::now_micros;
use switchboard_protocol::EventType;

use super::company;
use super::delivery::{SECOND, asking, finished, say, setup};
use crate::*;

pub async fn pull_lanes_are_claimed_by_their_consumers_alone(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let setup = setup(store, 1, None).await;
    let pull = store
        .create_integration(
            &setup.company,
            NewIntegration {
                bot: setup.bot.clone(),
                target: Target::Pull,
                sealed_aws_secret: None,
                event_types: Some(vec![EventType::MessageNew]),
                sealed_secret: "sealed".to_owned(),
                settings: DeliverySettings::default(),
            },
        )
        .await
        .expect("pull integration");
    assert_eq!(pull.target, Target::Pull);
    say(store, &setup, 0, "one").await;
    say(store, &setup, 0, "two").await;
    let now = now_micros() + SECOND;

    let sent = store.claim(asking(now, 10, 60 * SECOND)).await.unwrap();
    assert!(
        sent.iter().all(|c| c.integration.id == setup.integration),
        "the workers take the webhook's lane only"
    );
    assert_eq!(sent.len(), 1);

    let scope = PullScope {
        company: setup.company.clone(),
        bot: setup.bot.clone(),
        integration: None,
    };
    let visibility = 30 * SECOND;
    let pulled = store
        .claim_pulled(
            &scope,
            Claim {
                run: 16,
                ..asking(now, 10, visibility)
            },
        )
        .await
        .unwrap();
    assert_eq!(
        pulled.len(),
        1,
        "the lane's head alone, whatever the run asked"
    );
    let head = &pulled[0];
    assert_eq!(head.integration.id, pull.id);
    assert_eq!(head.integration.target, Target::Pull);
    assert_eq!(head.lease_until, now + visibility);
    assert!(
        store
            .claim_pulled(&scope, asking(now, 10, visibility))
            .await
            .unwrap()
            .is_empty(),
        "a held head holds its lane"
    );

    // Another company's consumer naming the same bot finds nothing.
    let (other, _) = company(store, "B").await;
    let foreign = PullScope {
        company: other.clone(),
        ..scope.clone()
    };
    let later = now + visibility + SECOND;
    assert!(
        store
            .claim_pulled(&foreign, asking(later, 10, visibility))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .pulled_deliveries(&other, &setup.bot, &[head.delivery_id])
            .await
            .unwrap()
            .is_empty()
    );

    // Hand-outs are logged and counted.
    assert_eq!(
        store.log_fetches(&[head.delivery_id], now).await.unwrap(),
        vec![0]
    );
    assert_eq!(
        store.log_fetches(&[head.delivery_id], now).await.unwrap(),
        vec![1]
    );
    let found = store
        .pulled_deliveries(
            &setup.company,
            &setup.bot,
            &[head.delivery_id, sent[0].delivery_id],
        )
        .await
        .unwrap();
    assert_eq!(
        found.len(),
        1,
        "a pushed integration's delivery is not a pulled one"
    );
    assert_eq!(found[0].state, DeliveryState::Pending);

    // Acknowledged under its lease: the lane moves to the next event.
    store
        .finish(&[finished(head, Verdict::Delivered)])
        .await
        .unwrap();
    let next = store
        .claim_pulled(&scope, asking(now, 10, visibility))
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
    assert!(next[0].channel_seq > head.channel_seq, "channel order");
    let found = store
        .pulled_deliveries(&setup.company, &setup.bot, &[head.delivery_id])
        .await
        .unwrap();
    assert_eq!(found[0].state, DeliveryState::Delivered);

    // Not acknowledged in time: handed out again, to this integration's scope.
    let scoped = PullScope {
        integration: Some(pull.id.clone()),
        ..scope.clone()
    };
    let again = store
        .claim_pulled(&scoped, asking(later, 10, visibility))
        .await
        .unwrap();
    assert_eq!(
        again.iter().map(|c| c.delivery_id).collect::<Vec<_>>(),
        vec![next[0].delivery_id]
    );
    assert_eq!(
        store.next_due().await.unwrap().filter(|due| *due <= later),
        None,
        "the workers are never due for a pull lane"
    );
}
