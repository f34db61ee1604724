//! The conformance suite every backend must pass, at the store level.
//!
//! Each check takes a fresh, empty store. A backend runs them all with
//! [`conformance_tests!`](crate::conformance_tests), given a future that makes
//! `(guard, store)`: the guard (a temporary directory, a database to drop) is
//! dropped after the check.
//!
//! ```ignore
//! switchboard_store::conformance_tests!(fresh_store());
//! ```

use std::collections::HashSet;
use std::sync::Arc;

use switchboard_domain::credentials::{self, CredentialKind};
use switchboard_domain::limits::IDEMPOTENCY_WINDOW_MICROS;
use switchboard_domain::{Actor, ChannelId, CompanyId, FileId, PrincipalKind, UserId, now_micros};
use switchboard_protocol::{ChannelAccess, MemberRole};

use crate::*;

mod delivery;
mod pull;
mod retention;
pub use delivery::*;
pub use pull::*;
pub use retention::*;

/// Generates one `#[tokio::test]` per check, each on a store made by `$fresh`.
#[macro_export]
macro_rules! conformance_tests {
    ($fresh:expr) => {
        $crate::conformance_tests!(@each $fresh;
            credentials_authenticate_and_revoke,
            companies_are_isolated,
            failed_writes_leave_nothing_behind,
            idempotency_keys_expire_after_the_window,
            concurrent_direct_channels_are_one,
            typing_indicators_expire_and_are_purged,
            a_person_reads_the_events_of_their_own_channels_only,
            members_and_counts_stay_consistent,
            files_are_reached_only_through_their_channel_and_live_messages,
            the_first_company_is_created_once_however_many_try,
            lanes_are_claimed_in_channel_order_under_a_lease,
            each_verdict_is_recorded_and_applied,
            an_expired_lease_is_claimed_again_and_its_late_outcome_dropped,
            a_lease_still_held_is_extended_and_a_lost_one_is_not,
            in_flight_limits_bound_the_leases_of_an_integration,
            finishing_claims_the_next_heads_in_the_order_lanes_became_due,
            a_lane_is_claimed_as_a_run_sent_under_one_lease,
            a_delivery_queued_on_an_idle_lane_is_handed_off_leased,
            sends_made_at_once_are_answered_each_and_delivered_in_channel_order,
            retention_prunes_finished_events_whole_and_never_pending_ones,
            retention_prunes_old_messages_with_their_reactions,
            pull_lanes_are_claimed_by_their_consumers_alone,
        );
    };
    (@each $fresh:expr; $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let (guard, store) = $fresh.await;
                $crate::conformance::$check(std::sync::Arc::new(store)).await;
                drop(guard);
            }
        )+
    };
}

async fn company(store: &dyn Store, name: &str) -> (CompanyId, String) {
    let key = credentials::generate(CredentialKind::Company);
    let record = NewCredentialRecord {
        owner: CredentialOwner::Company,
        hash: key.hash.clone(),
        last_four: key.last_four.clone(),
        name: None,
        read_only: false,
    };
    let (company, _) = store.create_company(name, record).await.expect("company");
    (company.id, key.reveal().to_owned())
}

/// A new key for `bot`: the key itself, and what the store answered.
async fn new_bot_key(
    store: &dyn Store,
    company: &CompanyId,
    bot: &UserId,
) -> (credentials::NewCredential, CredentialInfo) {
    let key = credentials::generate(CredentialKind::Bot);
    let info = store
        .create_credential(
            company,
            NewCredentialRecord {
                owner: CredentialOwner::Bot(bot.clone()),
                hash: key.hash.clone(),
                last_four: key.last_four.clone(),
                name: None,
                read_only: false,
            },
        )
        .await
        .unwrap();
    (key, info)
}

async fn person(store: &dyn Store, company: &CompanyId, email: &str) -> Actor {
    let user = store
        .create_user(
            company,
            UserProfile {
                email: Some(email.to_owned()),
                ..UserProfile::default()
            },
        )
        .await
        .expect("person");
    Actor {
        company: company.clone(),
        user: UserId::from_stored(user.id),
    }
}

pub(crate) fn text(text: &str) -> NewMessage {
    NewMessage {
        text: Some(text.to_owned()),
        elements: Vec::new(),
        attachments: Vec::new(),
        quote: None,
        mentions: Vec::new(),
        silent: false,
        confirmed_uploads: Vec::new(),
    }
}

async fn group(store: &dyn Store, owner: &Actor, members: Vec<UserId>) -> ChannelId {
    let details = store
        .create_channel(
            owner,
            NewChannel {
                subject: None,
                description: None,
                access: ChannelAccess::Private,
                members,
                invitees: Vec::new(),
            },
        )
        .await
        .expect("channel");
    ChannelId::from_stored(details.channel.channel_id)
}

/// Two stores on one database (instances of a shared PostgreSQL): a key
/// revoked through one is refused by the other within `within`, though the
/// other just accepted it (and keeps what it accepted for longer than that).
pub async fn credentials_revoked_on_another_instance(
    first: Arc<dyn Store>,
    second: Arc<dyn Store>,
    within: std::time::Duration,
) {
    let (company, key) = company(first.as_ref(), "A").await;
    let (_, company_hash) = credentials::parse_presented(&key).unwrap();
    let bot = first
        .create_bot(
            &company,
            BotProfile {
                name: "b".into(),
                ..BotProfile::default()
            },
        )
        .await
        .unwrap();
    let bot_id = UserId::from_stored(bot.id);
    let (bot_key, info) = new_bot_key(first.as_ref(), &company, &bot_id).await;
    assert!(second.authenticate(&bot_key.hash).await.unwrap().is_some());
    assert!(second.authenticate(&company_hash).await.unwrap().is_some());
    first
        .revoke_credential(&company, &CredentialOwner::Bot(bot_id), &info.id)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + within;
    while second.authenticate(&bot_key.hash).await.unwrap().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the other instance still accepts the revoked key after {within:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        second.authenticate(&company_hash).await.unwrap().is_some(),
        "the company's own key still works"
    );
}

pub(crate) fn page() -> Page {
    Page {
        limit: 100,
        offset: 0,
    }
}

pub async fn credentials_authenticate_and_revoke(store: Arc<dyn Store>) {
    let (company, key) = company(store.as_ref(), "A").await;
    let (_, hash) = credentials::parse_presented(&key).unwrap();
    let principal = store.authenticate(&hash).await.unwrap().expect("known key");
    assert_eq!(principal.company, company);
    assert_eq!(principal.kind, PrincipalKind::Company { read_only: false });

    let bot = store
        .create_bot(
            &company,
            BotProfile {
                name: "b".into(),
                access: Some("company".into()),
                integration_type: Some("webhook".into()),
                searchable: Some(true),
                ..BotProfile::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (
            bot.access.as_deref(),
            bot.integration_type.as_deref(),
            bot.searchable
        ),
        (Some("company"), Some("webhook"), Some(true)),
        "x-bees' directory fields are kept"
    );
    let bot_id = UserId::from_stored(bot.id);
    let (bot_key, info) = new_bot_key(store.as_ref(), &company, &bot_id).await;
    let principal = store.authenticate(&bot_key.hash).await.unwrap().unwrap();
    assert_eq!(principal.kind, PrincipalKind::Bot(bot_id.clone()));
    // A bot key cannot be made for a person, nor a user token for a bot.
    let person = person(store.as_ref(), &company, "p@example.com").await;
    let wrong = store
        .create_credential(
            &company,
            NewCredentialRecord {
                owner: CredentialOwner::Bot(person.user.clone()),
                hash: credentials::generate(CredentialKind::Bot).hash,
                last_four: "xxxx".into(),
                name: None,
                read_only: false,
            },
        )
        .await;
    assert!(
        matches!(wrong, Err(StoreError::NotFound { .. })),
        "{wrong:?}"
    );

    store
        .revoke_credential(&company, &CredentialOwner::Bot(bot_id.clone()), &info.id)
        .await
        .unwrap();
    store
        .revoke_credential(&company, &CredentialOwner::Bot(bot_id.clone()), &info.id)
        .await
        .unwrap();
    assert!(
        store.authenticate(&bot_key.hash).await.unwrap().is_none(),
        "a revoked key is refused at once, though it was just accepted"
    );
    // Deleting a bot ends its keys at once too.
    let (second_key, _) = new_bot_key(store.as_ref(), &company, &bot_id).await;
    assert!(
        store
            .authenticate(&second_key.hash)
            .await
            .unwrap()
            .is_some()
    );
    store.delete_bot(&company, &bot_id).await.unwrap();
    assert!(
        store
            .authenticate(&second_key.hash)
            .await
            .unwrap()
            .is_none(),
        "a deleted bot's key is refused"
    );
    assert!(
        store
            .authenticate(&credentials::generate(CredentialKind::User).hash)
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn companies_are_isolated(store: Arc<dyn Store>) {
    let (a, _) = company(store.as_ref(), "A").await;
    let (b, _) = company(store.as_ref(), "B").await;
    let alice = person(store.as_ref(), &a, "alice@example.com").await;
    let channel = group(store.as_ref(), &alice, vec![]).await;
    // The same email is a different person in another company.
    let other = person(store.as_ref(), &b, "alice@example.com").await;
    assert_ne!(other.user, alice.user);

    let intruder = Actor {
        company: b.clone(),
        user: alice.user.clone(),
    };
    assert!(matches!(
        store.get_channel(&intruder, &channel).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.get_channel(&other, &channel).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.get_user(&b, &alice.user).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        store
            .list_users(&b, None, page())
            .await
            .unwrap()
            .iter()
            .all(|user| user.id != alice.user.as_str())
    );
    let foreign_member = store
        .add_members(
            &alice,
            &channel,
            vec![other.user.clone()],
            Vec::new(),
            false,
        )
        .await;
    assert!(
        matches!(foreign_member, Err(StoreError::UnknownReference { .. })),
        "{foreign_member:?}"
    );
}

pub async fn failed_writes_leave_nothing_behind(store: Arc<dyn Store>) {
    let (company, _) = company(store.as_ref(), "A").await;
    let alice = person(store.as_ref(), &company, "alice@example.com").await;
    let stranger = person(store.as_ref(), &company, "stranger@example.com").await;
    let channel = group(store.as_ref(), &alice, vec![]).await;
    let record = IdempotencyRecord {
        key: "k".into(),
        request_fingerprint: vec![1],
    };

    let mut bad = text("mentions a stranger");
    bad.mentions = vec![stranger.user.clone()];
    let failed = store
        .send_message(&alice, &channel, bad, Some(record.clone()))
        .await;
    assert!(
        matches!(failed, Err(StoreError::UnknownReference { .. })),
        "{failed:?}"
    );
    assert!(
        store
            .list_messages(&alice, &channel, page())
            .await
            .unwrap()
            .is_empty()
    );
    // No idempotency record survived the failed send: the key is still free.
    let sent = store
        .send_message(&alice, &channel, text("ok"), Some(record))
        .await
        .unwrap();
    assert_eq!(
        store.list_messages(&alice, &channel, page()).await.unwrap()[0].message_id,
        sent.message_id
    );

    let taken = store
        .create_user(
            &company,
            UserProfile {
                email: Some("alice@example.com".into()),
                ..UserProfile::default()
            },
        )
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    assert_eq!(
        store
            .list_users(&company, Some("alice@example.com"), page())
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn idempotency_keys_expire_after_the_window(store: Arc<dyn Store>) {
    let (company, _) = company(store.as_ref(), "A").await;
    let alice = person(store.as_ref(), &company, "alice@example.com").await;
    let channel = group(store.as_ref(), &alice, vec![]).await;
    let record = IdempotencyRecord {
        key: "daily".into(),
        request_fingerprint: vec![7],
    };
    let first = store
        .send_message(&alice, &channel, text("a"), Some(record.clone()))
        .await
        .unwrap();
    let repeat = store
        .send_message(&alice, &channel, text("a"), Some(record.clone()))
        .await
        .unwrap();
    assert_eq!(first.message_id, repeat.message_id);
    let reused = store
        .send_message(
            &alice,
            &channel,
            text("b"),
            Some(IdempotencyRecord {
                key: "daily".into(),
                request_fingerprint: vec![8],
            }),
        )
        .await;
    assert!(matches!(reused, Err(StoreError::Conflict(_))), "{reused:?}");

    let purged = store
        .purge_expired(now_micros() + IDEMPOTENCY_WINDOW_MICROS + 1_000_000)
        .await
        .unwrap();
    assert!(purged >= 1);
    let after = store
        .send_message(&alice, &channel, text("a"), Some(record))
        .await
        .unwrap();
    assert_ne!(
        after.message_id, first.message_id,
        "an expired key sends anew"
    );
    assert_eq!(
        store
            .list_messages(&alice, &channel, page())
            .await
            .unwrap()
            .len(),
        2
    );
}

pub async fn concurrent_direct_channels_are_one(store: Arc<dyn Store>) {
    let (company, _) = company(store.as_ref(), "A").await;
    let alice = person(store.as_ref(), &company, "alice@example.com").await;
    let bob = person(store.as_ref(), &company, "bob@example.com").await;
    let mut tasks = Vec::new();
    for index in 0..12 {
        let store = store.clone();
        let (me, peer) = if index % 2 == 0 {
            (alice.clone(), bob.user.clone())
        } else {
            (bob.clone(), alice.user.clone())
        };
        tasks.push(async move { store.direct_channel(&me, DirectPeer::User(peer)).await });
    }
    let mut ids = HashSet::new();
    for task in tasks {
        ids.insert(task.await.unwrap().channel.channel_id);
    }
    assert_eq!(ids.len(), 1);
    let listed = store.list_channels(&alice, page()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].member_count, 2);
}

pub async fn typing_indicators_expire_and_are_purged(store: Arc<dyn Store>) {
    let (company, _) = company(store.as_ref(), "A").await;
    let alice = person(store.as_ref(), &company, "alice@example.com").await;
    let channel = group(store.as_ref(), &alice, vec![]).await;
    let now = now_micros();
    store
        .start_typing(&alice, &channel, now + 5_000_000)
        .await
        .unwrap();
    assert_eq!(
        store
            .list_typing(&alice, &channel, now)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .list_typing(&alice, &channel, now + 6_000_000)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.purge_expired(now + 6_000_000).await.unwrap(), 1);
    store
        .start_typing(&alice, &channel, now + 5_000_000)
        .await
        .unwrap();
    store
        .send_message(&alice, &channel, text("done"), None)
        .await
        .unwrap();
    assert!(
        store
            .list_typing(&alice, &channel, now)
            .await
            .unwrap()
            .is_empty(),
        "a message clears typing"
    );
}

/// A person's feed holds every event of the channels they are in now, with
/// no bot in them, oldest first, and the event that removed them from a
/// channel; none of other channels or companies.
pub async fn a_person_reads_the_events_of_their_own_channels_only(store: Arc<dyn Store>) {
    let (other_company, _) = company(store.as_ref(), "B").await;
    let (company, _) = company(store.as_ref(), "A").await;
    let alice = person(store.as_ref(), &company, "alice@example.com").await;
    let bob = person(store.as_ref(), &company, "bob@example.com").await;
    let mallory = person(store.as_ref(), &other_company, "mallory@example.com").await;
    let start = now_micros();
    let shared = group(store.as_ref(), &alice, vec![bob.user.clone()]).await;
    let bobs_own = group(store.as_ref(), &bob, vec![]).await;
    let elsewhere = group(store.as_ref(), &mallory, vec![]).await;
    let first = store
        .send_message(&bob, &shared, text("one"), None)
        .await
        .unwrap();
    store
        .send_message(&bob, &bobs_own, text("not for Alice"), None)
        .await
        .unwrap();
    store
        .send_message(&mallory, &elsewhere, text("another company"), None)
        .await
        .unwrap();
    store
        .send_message(&alice, &shared, text("two"), None)
        .await
        .unwrap();

    let events = store.person_events(&alice, start, 100).await.unwrap();
    let seen: Vec<(&str, &ChannelId)> = events
        .iter()
        .map(|event| (event.event_type.as_str(), &event.channel))
        .collect();
    assert_eq!(
        seen,
        [
            ("chat:channel:created", &shared),
            ("chat:message:new", &shared),
            ("chat:message:new", &shared),
        ]
    );
    assert!(events[1].data.contains(&first.message_id));
    // No bot hears of it: the event names the author, not the whole channel.
    let data: serde_json::Value = serde_json::from_str(&events[1].data).unwrap();
    assert_eq!(data["channel"]["memberCount"], 2);
    assert_eq!(data["members"].as_array().unwrap().len(), 1);
    assert_eq!(data["users"][0]["id"], bob.user.as_str());
    assert!(events.windows(2).all(|pair| {
        pair[0].created_at <= pair[1].created_at && pair[0].channel_seq < pair[1].channel_seq
    }));
    // From a later time on, and at most `limit`.
    let later = store
        .person_events(&alice, events[2].created_at, 100)
        .await
        .unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].id, events[2].id);
    assert_eq!(
        store.person_events(&alice, start, 1).await.unwrap().len(),
        1
    );

    // Removed from the channel, Alice reads none of its events any more but
    // the one that removed her; the members left read it too.
    store
        .remove_member(&alice, &shared, &alice.user)
        .await
        .unwrap();
    store
        .send_message(&bob, &shared, text("after Alice left"), None)
        .await
        .unwrap();
    let after = store.person_events(&alice, start, 100).await.unwrap();
    let seen: Vec<(&str, &ChannelId)> = after
        .iter()
        .map(|event| (event.event_type.as_str(), &event.channel))
        .collect();
    assert_eq!(seen, [("chat:member:removed", &shared)]);
    let data: serde_json::Value = serde_json::from_str(&after[0].data).unwrap();
    assert_eq!(data["members"][0]["id"], alice.user.as_str());
    let bobs = store.person_events(&bob, start, 100).await.unwrap();
    assert!(bobs.iter().any(|event| event.id == after[0].id));
}

pub async fn members_and_counts_stay_consistent(store: Arc<dyn Store>) {
    let (company, _) = company(store.as_ref(), "A").await;
    let alice = person(store.as_ref(), &company, "alice@example.com").await;
    let bob = person(store.as_ref(), &company, "bob@example.com").await;
    let channel = group(
        store.as_ref(),
        &alice,
        vec![bob.user.clone(), bob.user.clone()],
    )
    .await;
    let details = store.get_channel(&alice, &channel).await.unwrap();
    assert_eq!(details.channel.member_count, 2);
    assert_eq!(details.members.len(), 2);
    assert_eq!(
        details
            .members
            .iter()
            .find(|m| m.id == alice.user.as_str())
            .unwrap()
            .role,
        MemberRole::Owner
    );
    let invited = Invitee {
        email: Some("carol@example.com".into()),
        phone: None,
        name: None,
    };
    let members = store
        .add_members(
            &bob,
            &channel,
            vec![alice.user.clone()],
            vec![invited.clone()],
            false,
        )
        .await
        .unwrap();
    assert_eq!(members.members.len(), 3);
    let again = store
        .add_members(&bob, &channel, vec![], vec![invited], false)
        .await
        .unwrap();
    assert_eq!(again.members.len(), 3);
    store
        .remove_member(&bob, &channel, &bob.user)
        .await
        .unwrap();
    assert!(matches!(
        store.get_channel(&bob, &channel).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        store
            .get_channel(&alice, &channel)
            .await
            .unwrap()
            .channel
            .member_count,
        2
    );
}

fn new_file(name: &str) -> NewFile {
    NewFile {
        id: FileId::generate(),
        object_key: format!(
            "obj_{}",
            FileId::generate().as_str().trim_start_matches("file_")
        ),
        name: name.to_owned(),
        content_type: "text/plain".to_owned(),
        max_bytes: 100,
        declared: false,
        upload_expires_at: now_micros() + 60_000_000,
    }
}

pub async fn files_are_reached_only_through_their_channel_and_live_messages(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let (company, _) = company(store, "A").await;
    let alice = person(store, &company, "alice@example.com").await;
    let bob = person(store, &company, "bob@example.com").await;
    let channel = group(store, &alice, Vec::new()).await;
    let other_channel = group(store, &alice, Vec::new()).await;

    let announced = new_file("notes.txt");
    store
        .create_file(&bob, &channel, new_file("x"))
        .await
        .expect_err("only members announce files");
    let file = store
        .create_file(&alice, &channel, announced.clone())
        .await
        .unwrap();
    assert_eq!(file.size, None);
    assert_eq!(file.attachment(), None);
    assert_eq!(file.object_key, announced.object_key);
    assert!(matches!(
        store.get_file(&alice, &other_channel, &file.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(store.get_file(&bob, &channel, &file.id).await.is_err());

    // Not attachable before the upload is recorded: the change says which
    // files the caller must confirm in the object storage, and stores nothing.
    let mut with_file = text("see");
    with_file.attachments = vec![file.id.as_str().to_owned()];
    match store
        .send_message(&alice, &channel, with_file.clone(), None)
        .await
    {
        Err(StoreError::UploadsUnconfirmed(files)) => {
            assert_eq!(files.len(), 1);
            assert_eq!(files[0].0, "attachments[0].id");
            assert_eq!(files[0].1.id, file.id);
        }
        other => panic!("expected unconfirmed uploads, got {other:?}"),
    }
    let listed = store.list_messages(&alice, &channel, page()).await.unwrap();
    assert!(listed.is_empty(), "a refused change stores nothing");
    // A change with the upload confirmed records it and attaches the file at once.
    let other_file = store
        .create_file(&alice, &channel, new_file("other.txt"))
        .await
        .unwrap();
    let mut confirmed = text("confirmed");
    confirmed.attachments = vec![other_file.id.as_str().to_owned()];
    confirmed.confirmed_uploads = vec![crate::ConfirmedUpload {
        file: other_file.id.as_str().to_owned(),
        size: 7,
    }];
    let sent = store
        .send_message(&alice, &channel, confirmed, None)
        .await
        .unwrap();
    assert_eq!(sent.attachments.len(), 1);
    let other_file = store
        .get_file(&alice, &channel, &other_file.id)
        .await
        .unwrap();
    assert_eq!(other_file.size, Some(7));
    store.record_upload(&file.id, 42).await.unwrap();
    store.record_upload(&file.id, 99).await.unwrap();
    let file = store.get_file(&alice, &channel, &file.id).await.unwrap();
    assert_eq!(file.size, Some(42), "the first recorded size stays");
    assert!(matches!(
        store
            .send_message(&alice, &other_channel, with_file.clone(), None)
            .await,
        Err(StoreError::UnknownReference { .. })
    ));
    let message = store
        .send_message(&alice, &channel, with_file, None)
        .await
        .unwrap();
    assert_eq!(message.attachments, vec![file.attachment().unwrap()]);
    let message_id = switchboard_domain::MessageId::from_stored(message.message_id.clone());

    assert_eq!(
        store
            .message_file(&alice, &channel, &message_id, &file.id)
            .await
            .unwrap(),
        file
    );
    assert!(
        store
            .message_file(&bob, &channel, &message_id, &file.id)
            .await
            .is_err()
    );
    assert!(
        store
            .still_attached(&message_id, &file.object_key)
            .await
            .unwrap()
    );
    assert!(
        !store
            .still_attached(&message_id, "obj_other")
            .await
            .unwrap()
    );

    store
        .delete_message(&alice, &channel, &message_id)
        .await
        .unwrap();
    assert!(
        !store
            .still_attached(&message_id, &file.object_key)
            .await
            .unwrap()
    );
    assert!(
        store
            .message_file(&alice, &channel, &message_id, &file.id)
            .await
            .is_err()
    );
    // The file itself stays.
    assert_eq!(
        store.get_file(&alice, &channel, &file.id).await.unwrap(),
        file
    );
}

/// Bootstrapping: of several concurrent attempts on an empty store, one
/// creates the company; the others find it. A database with a company is
/// left alone.
pub async fn the_first_company_is_created_once_however_many_try(store: Arc<dyn Store>) {
    let mut attempts = Vec::new();
    for index in 0..8 {
        let store = store.clone();
        attempts.push(tokio::spawn(async move {
            let key = credentials::generate(CredentialKind::Company);
            let record = NewCredentialRecord {
                owner: CredentialOwner::Company,
                hash: key.hash.clone(),
                last_four: key.last_four.clone(),
                name: None,
                read_only: false,
            };
            store
                .create_first_company(&format!("First {index}"), record)
                .await
                .expect("bootstrapping succeeds or finds the company")
        }));
    }
    let mut created = Vec::new();
    for attempt in attempts {
        if let Some((company, _)) = attempt.await.unwrap() {
            created.push(company);
        }
    }
    assert_eq!(created.len(), 1);
    assert_eq!(store.company_count().await.unwrap(), 1);
    let listed = store.list_companies().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, created[0].id);
    assert_eq!(listed[0].name, created[0].name);
}
