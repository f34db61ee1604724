//! `switchboard demo`: a demo company with people, a bot and a channel to try
//! the API with at once.

use switchboard_domain::credentials::{self, CredentialKind};
use switchboard_domain::{Actor, CompanyId, UserId};
use switchboard_protocol::ChannelAccess;

use crate::echo_bot;
use switchboard_store::{
    BotProfile, CredentialOwner, NewChannel, NewCredentialRecord, NewMessage, Store, UserProfile,
};

/// The credentials and ids the demo prints.
pub struct DemoData {
    pub integration_id: String,
    pub company_key: String,
    pub alice_id: String,
    pub alice_token: String,
    pub bob_id: String,
    pub bot_id: String,
    pub bot_key: String,
    pub channel_id: String,
}

/// Fills the (fresh) company with Alice, Bob, an echo bot and a welcome
/// channel, and starts the echo bot with a webhook integration.
pub async fn prepare(
    store: &dyn Store,
    base: &str,
    company: &CompanyId,
    company_key: String,
) -> anyhow::Result<DemoData> {
    let person = |name: &str, email: &str| UserProfile {
        name: Some(name.to_owned()),
        email: Some(email.to_owned()),
        locale: Some("en".to_owned()),
        time_zone: Some("Europe/London".to_owned()),
        ..UserProfile::default()
    };
    let alice = store
        .create_user(company, person("Alice Johnson", "alice@example.com"))
        .await?;
    let bob = store
        .create_user(company, person("Bob Smith", "bob@example.com"))
        .await?;
    let bot = store
        .create_bot(
            company,
            BotProfile {
                name: "Echo Bot".to_owned(),
                picture: None,
                locale: Some("en".to_owned()),
                time_zone: None,
            },
        )
        .await?;
    let alice_id = UserId::from_stored(alice.id.clone());
    let bot_id = UserId::from_stored(bot.id.clone());
    let alice_token = issue(
        store,
        company,
        CredentialOwner::User(alice_id.clone()),
        CredentialKind::User,
    )
    .await?;
    let bot_key = issue(
        store,
        company,
        CredentialOwner::Bot(bot_id.clone()),
        CredentialKind::Bot,
    )
    .await?;
    // The echo bot is set up through the API, as an operator would.
    let (hook_url, listener) = echo_bot::listen().await?;
    let created: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/v2/users/bots/{}/integrations", bot.id))
        .bearer_auth(&company_key)
        .json(&serde_json::json!({"type": "webhook", "url": hook_url}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let secret = created["secret"].as_str().unwrap_or_default().to_owned();
    let integration_id = created["integration"]["integrationId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let echo_key = bot_key.clone();
    let api = base.to_owned();
    tokio::spawn(async move {
        if let Err(err) = echo_bot::serve(listener, api, echo_key, &secret).await {
            tracing::error!(error = %err, "the echo bot stopped");
        }
    });
    let actor = Actor {
        company: company.clone(),
        user: alice_id,
    };
    let channel = store
        .create_channel(
            &actor,
            NewChannel {
                subject: Some("Welcome".to_owned()),
                description: Some("Say hello to the echo bot".to_owned()),
                access: ChannelAccess::Private,
                members: vec![UserId::from_stored(bob.id.clone()), bot_id],
                invitees: Vec::new(),
            },
        )
        .await?;
    let channel_id = switchboard_domain::ChannelId::from_stored(channel.channel.channel_id.clone());
    store
        .send_message(
            &actor,
            &channel_id,
            NewMessage {
                text: Some("Hello everyone!".to_owned()),
                elements: Vec::new(),
                attachments: Vec::new(),
                quote: None,
                mentions: Vec::new(),
                silent: false,
            },
            None,
        )
        .await?;
    Ok(DemoData {
        integration_id,
        company_key,
        alice_id: alice.id,
        alice_token,
        bob_id: bob.id,
        bot_id: bot.id,
        bot_key,
        channel_id: channel.channel.channel_id,
    })
}

async fn issue(
    store: &dyn Store,
    company: &CompanyId,
    owner: CredentialOwner,
    kind: CredentialKind,
) -> anyhow::Result<String> {
    let made = credentials::generate(kind);
    store
        .create_credential(
            company,
            NewCredentialRecord {
                owner,
                hash: made.hash.clone(),
                last_four: made.last_four.clone(),
                name: Some("demo".to_owned()),
                read_only: false,
            },
        )
        .await?;
    Ok(made.reveal().to_owned())
}

impl DemoData {
    /// What the demo prints: where to find it and how to try it.
    pub fn instructions(&self, base: &str) -> String {
        format!(
            r#"
switchboard demo is running at {base}

  company key   {company_key}
  Alice         {alice_id}   token {alice_token}
  Bob           {bob_id}
  Echo Bot      {bot_id}   bot key {bot_key}
  channel       {channel_id}   ("Welcome": Alice, Bob, Echo Bot)

Try it:
  curl -s {base}/v2/conversations/channels -H 'Authorization: Bearer {alice_token}'
  curl -s {base}/v2/conversations/channels/{channel_id}/messages -H 'Authorization: Bearer {alice_token}'
  curl -s -X POST {base}/v2/conversations/channels/{channel_id}/messages \
       -H 'Authorization: Bearer {bot_key}' -H 'Content-Type: application/json' \
       -d '{{"text": "Hi, I am the echo bot"}}'
  curl -s '{base}/v2/conversations/channels?userId={bob_id}' -H 'Authorization: Bearer {company_key}'
  curl -s {base}/openapi.json

Watch the echo bot answer (it receives each message by signed webhook, shows
typing and replies quoting it):
  curl -s -X POST {base}/v2/conversations/channels/{channel_id}/messages \
       -H 'Authorization: Bearer {alice_token}' -H 'Content-Type: application/json' -d '{{"text": "Hello bot"}}'
  curl -s {base}/v2/conversations/channels/{channel_id}/typing -H 'Authorization: Bearer {alice_token}'
  sleep 1; curl -s '{base}/v2/conversations/channels/{channel_id}/messages?limit=2' -H 'Authorization: Bearer {alice_token}'
  curl -s {base}/v2/users/bots/{bot_id}/integrations/{integration_id}/deliveries -H 'Authorization: Bearer {company_key}'


The data lives in a fresh SQLite file and is gone when the demo stops (Ctrl-C).
"#,
            company_key = self.company_key,
            alice_id = self.alice_id,
            alice_token = self.alice_token,
            bob_id = self.bob_id,
            bot_id = self.bot_id,
            integration_id = self.integration_id,
            bot_key = self.bot_key,
            channel_id = self.channel_id,
        )
    }
}
