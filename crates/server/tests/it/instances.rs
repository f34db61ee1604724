//! Several server processes on one PostgreSQL database, as behind a load
//! balancer: every event is delivered once, in channel order, whichever
//! instance accepted it and whichever delivers it; an instance killed with
//! SIGKILL leaves its leased deliveries to the others.
//!
//! These always run on PostgreSQL (a fresh database each), whatever the
//! run's backend; the test command runs them in its first pass only.

use std::collections::HashSet;
use std::time::Duration;

use crate::person_events::Feed;
use crate::support::TestServer;
use crate::support::process::ServerProcess;
use crate::support::receiver::Receiver;
use crate::support::store::TestStore;
use crate::support::traffic::{
    arrivals, assert_channel_order, bot_channels, delivered_messages, send_round,
};
use switchboard_domain::credentials::{self, CredentialKind};
use switchboard_domain::secret_box::SecretBox;

/// What every instance of one deployment shares: the database, the company
/// key and the key that seals integration secrets.
struct Deployment {
    store: TestStore,
    company_key: String,
    settings: Vec<(&'static str, String)>,
    data_dir: tempfile::TempDir,
}

impl Deployment {
    /// Instances whose delivery leases last `lease`: the time a lane of a
    /// killed instance waits before another takes it, and the longest a
    /// worker may take over an attempt and its outcome before the lane is
    /// claimed again (and the event sent twice) — on a loaded 2-core machine
    /// running three instances, several seconds.
    async fn new(lease: &str) -> Deployment {
        let store = TestStore::postgres().await;
        let company_key = credentials::generate(CredentialKind::Company)
            .reveal()
            .to_owned();
        let mut settings = vec![
            ("SWITCHBOARD_BOOTSTRAP__COMPANY_KEY", company_key.clone()),
            ("SWITCHBOARD_SECRETS__KEY", SecretBox::generate_key()),
            ("SWITCHBOARD_DELIVERY__ALLOW_TARGETS", "127.0.0.1/32".into()),
            ("SWITCHBOARD_DELIVERY__TIMEOUT", "1s".into()),
            ("SWITCHBOARD_DELIVERY__LEASE", lease.into()),
            ("SWITCHBOARD_DELIVERY__POLL_INTERVAL", "200ms".into()),
            (
                "SWITCHBOARD_DELIVERY__RETRY_SCHEDULE",
                "50ms,100ms,200ms,400ms".into(),
            ),
            ("SWITCHBOARD_HTTP__RATE_LIMIT_PER_SECOND", "0".into()),
        ];
        settings.extend(store.env());
        Deployment {
            store,
            company_key,
            settings,
            data_dir: tempfile::tempdir().unwrap(),
        }
    }

    /// One more instance; each has its own data directory.
    async fn instance(&self, name: &str) -> ServerProcess {
        let data_dir = self.data_dir.path().join(name);
        std::fs::create_dir_all(&data_dir).unwrap();
        let env: Vec<(&str, &str)> = self
            .settings
            .iter()
            .map(|(key, value)| (*key, value.as_str()))
            .collect();
        ServerProcess::start(&data_dir, &env).await
    }
}

#[tokio::test]
async fn three_instances_deliver_every_event_once_in_channel_order() {
    const CHANNELS: usize = 12;
    const PER_CHANNEL: usize = 250;
    let deployment = Deployment::new("30s").await;
    // The first instance bootstraps the company; the others find it.
    let first = deployment.instance("a").await;
    let second = deployment.instance("b").await;
    let third = deployment.instance("c").await;
    let receiver = Receiver::start().await;
    let api = TestServer::attach(&first.base, &deployment.company_key);
    let (token, channels) = bot_channels(&api, &receiver.url, CHANNELS).await;

    let bases = [first.base.clone(), second.base.clone(), third.base.clone()];
    let accepted = send_round(&bases, &token, &channels, 1, PER_CHANNEL).await;
    let everything: HashSet<String> = accepted.values().flatten().cloned().collect();
    assert_eq!(everything.len(), CHANNELS * PER_CHANNEL);
    let received = receiver
        .wait_until("every accepted message", Duration::from_secs(120), |r| {
            delivered_messages(r).is_superset(&everything)
        })
        .await;
    let twice: Vec<_> = arrivals(&received)
        .into_iter()
        .filter(|(_, count)| *count > 1)
        .collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_channel_order(&received, &accepted);

    // Every instance took part in delivering.
    for instance in [&first, &second, &third] {
        let metrics = reqwest::get(format!("{}/metrics", instance.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics
                .lines()
                .any(|line| line.starts_with("switchboard_delivery_attempts_total")),
            "{} delivered nothing",
            instance.base
        );
    }
    for instance in [first, second, third] {
        assert!(instance.terminate().await.success());
    }
    drop(deployment.store);
}

#[tokio::test]
async fn deliveries_leased_by_a_killed_instance_are_made_by_the_others() {
    const CHANNELS: usize = 4;
    const PER_CHANNEL: usize = 60;
    let deployment = Deployment::new("3s").await;
    let doomed = deployment.instance("doomed").await;
    let survivor = deployment.instance("survivor").await;
    let receiver = Receiver::start().await;
    receiver.delay(Duration::from_millis(15));
    let api = TestServer::attach(&survivor.base, &deployment.company_key);
    let (token, channels) = bot_channels(&api, &receiver.url, CHANNELS).await;

    // Both instances accept and deliver; the slow bot keeps a backlog.
    let bases = [doomed.base.clone(), survivor.base.clone()];
    let mut accepted = send_round(&bases, &token, &channels, 1, PER_CHANNEL).await;
    receiver
        .wait_until("deliveries to be under way", Duration::from_secs(30), |r| {
            delivered_messages(r).len() >= 20
        })
        .await;
    doomed.kill_hard().await;
    let at_kill = delivered_messages(&receiver.received()).len();
    assert!(
        at_kill < CHANNELS * PER_CHANNEL,
        "the kill came mid-delivery"
    );

    // The survivor goes on accepting; the lanes the dead instance held come
    // back to it when their leases (3 s) run out.
    let bases = [survivor.base.clone()];
    for (channel, ids) in send_round(&bases, &token, &channels, 2, 20).await {
        accepted.get_mut(&channel).unwrap().extend(ids);
    }
    let everything: HashSet<String> = accepted.values().flatten().cloned().collect();
    let received = receiver
        .wait_until("every accepted message", Duration::from_secs(90), |r| {
            delivered_messages(r).is_superset(&everything)
        })
        .await;
    assert_channel_order(&received, &accepted);
    // Only what the killed instance had in flight (one head per lane at
    // most) may have arrived twice.
    let twice = arrivals(&received)
        .into_iter()
        .filter(|(_, count)| *count > 1)
        .count();
    assert!(twice <= CHANNELS, "{twice} messages arrived twice");
    assert!(survivor.terminate().await.success());
}

#[tokio::test]
async fn a_person_hears_live_what_another_instance_accepted() {
    let deployment = Deployment::new("3s").await;
    let first = deployment.instance("first").await;
    let second = deployment.instance("second").await;
    let on_first = TestServer::attach(&first.base, &deployment.company_key);
    let on_second = TestServer::attach(&second.base, &deployment.company_key);
    let (alice, alice_token) = on_first.person("Alice").await;
    let (_, bob_token) = on_first.person("Bob").await;
    let channel = on_first.channel(&bob_token, &[&alice]).await;

    let mut feed = Feed::open(&on_first, &alice_token, None).await;
    assert_eq!(feed.next().await.name, "ready");
    let message = on_second
        .say(&bob_token, &channel, "from the other instance")
        .await;
    // The other instance's commit wakes no feed here: the feed's look every
    // second finds it.
    let event = feed.next_named("chat:message:new").await;
    assert_eq!(event.data["data"]["message"]["messageId"], message.as_str());
    // An open feed does not hold the server's shutdown: it is ended at once.
    let stopping = std::time::Instant::now();
    assert!(first.terminate().await.success());
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "the stop waited {:?} for the open feed",
        stopping.elapsed()
    );
    assert!(second.terminate().await.success());
}

#[tokio::test]
async fn instances_starting_together_on_an_empty_database_create_one_company() {
    let store = TestStore::postgres().await;
    let url = store.url.clone().unwrap();
    let key = SecretBox::generate_key();
    let data_dir = tempfile::tempdir().unwrap();
    let env = [
        ("SWITCHBOARD_DATABASE__URL", url.as_str()),
        ("SWITCHBOARD_SECRETS__KEY", key.as_str()),
    ];
    let dirs: Vec<_> = (0..3)
        .map(|i| data_dir.path().join(i.to_string()))
        .collect();
    let (a, b, c) = tokio::join!(
        ServerProcess::start(&dirs[0], &env),
        ServerProcess::start(&dirs[1], &env),
        ServerProcess::start(&dirs[2], &env),
    );
    let instances = [a, b, c];
    let printed: Vec<String> = instances
        .iter()
        .flat_map(|instance| instance.printed.clone())
        .filter_map(|line| {
            line.split_whitespace()
                .find(|word| word.starts_with("wsk-v1-"))
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        printed.len(),
        1,
        "one instance creates the company and shows its key"
    );
    // That key is the company's on every instance.
    for instance in &instances {
        let api = TestServer::attach(&instance.base, &printed[0]);
        api.get("/v2/users", &printed[0]).await.expect(200);
    }
    for instance in instances {
        assert!(instance.terminate().await.success());
    }
}
