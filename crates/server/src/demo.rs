//! `switchboard demo`: a demo company with people, a bot and a channel to try
//! the API with at once.
//!
//! Without `--data-dir` the demo lives in a temporary directory removed at
//! exit. With `--data-dir DIR` it stays there, and what the demo printed is
//! kept in `DIR/demo.json` (readable by its owner only, beside `secret.key`),
//! so a later `demo --data-dir DIR` starts on the same data, prints the same
//! credentials and points the echo bot's integration at its new address.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use switchboard_domain::credentials::{self, CredentialKind};
use switchboard_domain::{Actor, CompanyId, UserId};
use switchboard_protocol::ChannelAccess;

use crate::app::{self, shutdown_signal};
use crate::bootstrap::Bootstrap;
use crate::config::Config;
use crate::{echo_bot, output};
use switchboard_store::{BotProfile, CredentialOwner, NewChannel, NewMessage, Store, UserProfile};

/// The credentials and ids the demo prints (and keeps in `demo.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DemoData {
    pub integration_id: String,
    pub company_key: String,
    pub alice_id: String,
    pub alice_token: String,
    pub bob_id: String,
    pub bob_token: String,
    pub bot_id: String,
    pub bot_key: String,
    pub channel_id: String,
    /// The echo bot's webhook signing secret.
    pub echo_secret: String,
    /// Where the echo bot listens (its integration's URL).
    pub echo_url: String,
}

/// Where a kept demo's data is described.
const DEMO_FILE: &str = "demo.json";

/// `switchboard demo`: serves a demo until Ctrl-C or SIGTERM.
pub async fn run(
    mut config: Config,
    listen: SocketAddr,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let temporary = match data_dir {
        Some(dir) => {
            config.data_dir = dir;
            None
        }
        None => {
            let dir = tempfile::Builder::new()
                .prefix("switchboard-demo-")
                .tempdir()
                .context("could not make a temporary directory for the demo")?;
            config.data_dir = dir.path().to_owned();
            Some(dir)
        }
    };
    config.http.listen = listen;
    config.database.url = None;
    config.bootstrap.company_key = None;
    config.bootstrap.company_name = "Demo Company".to_owned();
    // The demo's echo bot listens on loopback.
    config.delivery.allow_targets = "127.0.0.0/8,::1/128".to_owned();
    let kept = temporary.is_none();
    let result = serve(&config, kept).await;
    // The temporary directory is removed here, also after a failure.
    drop(temporary);
    result
}

async fn serve(config: &Config, kept: bool) -> anyhow::Result<()> {
    let described = config.data_dir.join(DEMO_FILE);
    if kept && !described.exists() && config.sqlite_path().exists() {
        anyhow::bail!(
            "{} holds switchboard data that is not a demo's (no {DEMO_FILE}): run \
             `switchboard serve --data-dir {}` to use it, or give `demo --data-dir` an empty or \
             new directory to start afresh",
            config.data_dir.display(),
            config.data_dir.display()
        );
    }
    let server = app::start(config).await?;
    let stop = shutdown_signal();
    let base = format!("http://{}", server.addr);
    let data = match &server.bootstrap {
        Bootstrap::CreatedWithGeneratedKey(company, key) => {
            let data = prepare(
                server.store.as_ref(),
                &base,
                &company.id,
                key.reveal().to_owned(),
            )
            .await?;
            if kept {
                save(&described, &data)?;
            }
            data
        }
        _ => {
            let mut data = load(&described)?;
            resume(&base, &mut data).await?;
            save(&described, &data)?;
            data
        }
    };
    output::say(&data.instructions(&base));
    if kept {
        output::say(&format!(
            "The data is kept in {}: `switchboard demo --data-dir {}` starts it again with these \
             credentials; remove the directory to start afresh.",
            config.data_dir.display(),
            config.data_dir.display()
        ));
    } else {
        output::say(
            "The data lives in a temporary directory and is gone when the demo stops (Ctrl-C); \
             `--data-dir DIR` keeps it.",
        );
    }
    tracing::info!(data_dir = %config.data_dir.display(), "the demo is ready");
    server.run_until(stop).await
}

/// Writes the demo's description, readable by its owner only.
fn save(path: &Path, data: &DemoData) -> anyhow::Result<()> {
    let text = serde_json::to_vec_pretty(data)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("could not write {}", path.display()))?;
    std::io::Write::write_all(&mut file, &text)
        .with_context(|| format!("could not write {}", path.display()))
}

fn load(path: &Path) -> anyhow::Result<DemoData> {
    let text = std::fs::read(path).with_context(|| {
        format!(
            "could not read {}: remove its directory to start the demo afresh",
            path.display()
        )
    })?;
    serde_json::from_slice(&text).with_context(|| {
        format!(
            "{} is not a demo description: remove its directory to start the demo afresh",
            path.display()
        )
    })
}

/// Starts the echo bot of a kept demo on its old address when that is free
/// (so what was queued for it goes out at once), else on a new port that its
/// integration is pointed at, through the API as an operator would.
async fn resume(base: &str, data: &mut DemoData) -> anyhow::Result<()> {
    let old_address = data
        .echo_url
        .trim_start_matches("http://")
        .trim_end_matches("/hook");
    if let Ok((_, listener)) = echo_bot::listen_on(old_address).await {
        spawn_echo_bot(listener, base, data);
        return Ok(());
    }
    let (hook_url, listener) = echo_bot::listen().await?;
    reqwest::Client::new()
        .patch(format!(
            "{base}/v2/users/bots/{}/integrations/{}",
            data.bot_id, data.integration_id
        ))
        .bearer_auth(&data.company_key)
        .json(&serde_json::json!({"set": {"url": hook_url}}))
        .send()
        .await?
        .error_for_status()
        .context("could not point the echo bot's integration at its new address")?;
    data.echo_url = hook_url;
    spawn_echo_bot(listener, base, data);
    Ok(())
}

fn spawn_echo_bot(listener: tokio::net::TcpListener, base: &str, data: &DemoData) {
    let (api, key, secret) = (
        base.to_owned(),
        data.bot_key.clone(),
        data.echo_secret.clone(),
    );
    tokio::spawn(async move {
        if let Err(err) = echo_bot::serve(listener, api, key, &secret).await {
            tracing::error!(error = %err, "the echo bot stopped");
        }
    });
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
                ..BotProfile::default()
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
    let echo_secret = created["secret"].as_str().unwrap_or_default().to_owned();
    let integration_id = created["integration"]["integrationId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
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
                confirmed_uploads: Vec::new(),
            },
            None,
        )
        .await?;
    let bob_token = issue(
        store,
        company,
        CredentialOwner::User(UserId::from_stored(bob.id.clone())),
        CredentialKind::User,
    )
    .await?;
    let data = DemoData {
        integration_id,
        company_key,
        alice_id: alice.id,
        alice_token,
        bob_id: bob.id,
        bob_token,
        bot_id: bot.id,
        bot_key,
        channel_id: channel.channel.channel_id,
        echo_secret,
        echo_url: hook_url,
    };
    spawn_echo_bot(listener, base, &data);
    Ok(data)
}

async fn issue(
    store: &dyn Store,
    company: &CompanyId,
    owner: CredentialOwner,
    kind: CredentialKind,
) -> anyhow::Result<String> {
    let made = credentials::generate(kind);
    store
        .create_credential(company, crate::bootstrap::key_record(owner, &made, "demo"))
        .await?;
    Ok(made.reveal().to_owned())
}

impl DemoData {
    /// What the demo prints: where to find it, `export` lines to paste into
    /// a shell (the names the README's examples use), and commands to try.
    pub fn instructions(&self, base: &str) -> String {
        format!(
            r#"
switchboard demo is running at {base}

Open the web console in a browser (each link signs one in):
  Alice, to chat with the echo bot   {base}/#token={alice_token}
  Bob, to chat                       {base}/#token={bob_token}
  the operator, to watch deliveries  {base}/#key={company_key}

  company key   {company_key}
  Alice         {alice_id}   token {alice_token}
  Bob           {bob_id}   token {bob_token}
  Echo Bot      {bot_id}   bot key {bot_key}
  channel       {channel_id}   ("Welcome": Alice, Bob, Echo Bot)

Paste these into a shell; the commands below and in the README use them:

export BASE={base}
export COMPANY_KEY={company_key}
export ALICE={alice_id}
export ALICE_TOKEN={alice_token}
export BOB={bob_id}
export BOB_TOKEN={bob_token}
export BOT={bot_id}
export BOT_KEY={bot_key}
export CHANNEL={channel_id}
export INTEGRATION={integration_id}

Try it:
  curl -s $BASE/v2/conversations/channels -H "Authorization: Bearer $ALICE_TOKEN"
  curl -s $BASE/v2/conversations/channels/$CHANNEL/messages -H "Authorization: Bearer $ALICE_TOKEN"
  curl -s -X POST $BASE/v2/conversations/channels/$CHANNEL/messages \
       -H "Authorization: Bearer $BOT_KEY" -H 'Content-Type: application/json' \
       -d '{{"text": "Hi, I am the echo bot"}}'
  curl -s "$BASE/v2/conversations/channels?userId=$BOB" -H "Authorization: Bearer $COMPANY_KEY"
  curl -s $BASE/openapi.json

Watch the echo bot answer (it receives each message by signed webhook, shows
typing and replies quoting it):
  curl -s -X POST $BASE/v2/conversations/channels/$CHANNEL/messages \
       -H "Authorization: Bearer $ALICE_TOKEN" -H 'Content-Type: application/json' -d '{{"text": "Hello bot"}}'
  curl -s $BASE/v2/conversations/channels/$CHANNEL/typing -H "Authorization: Bearer $ALICE_TOKEN"
  sleep 1; curl -s "$BASE/v2/conversations/channels/$CHANNEL/messages?limit=2" -H "Authorization: Bearer $ALICE_TOKEN"
  curl -s $BASE/v2/users/bots/$BOT/integrations/$INTEGRATION/deliveries -H "Authorization: Bearer $COMPANY_KEY"
"#,
            company_key = self.company_key,
            alice_id = self.alice_id,
            alice_token = self.alice_token,
            bob_id = self.bob_id,
            bob_token = self.bob_token,
            bot_id = self.bot_id,
            integration_id = self.integration_id,
            bot_key = self.bot_key,
            channel_id = self.channel_id,
        )
    }
}
