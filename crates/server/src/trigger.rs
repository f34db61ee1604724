//! `switchboard trigger EVENT_TYPE --to URL`: one signed sample event of
//! any type of the contract, posted to a URL as a webhook delivery is (the
//! same headers, body and signatures), with the answer printed — to try a
//! bot's handler without a server or a person typing. Samples are built
//! from the protocol's own types, so they have every field a real event has.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Value, json};
use switchboard_domain::credentials::new_webhook_secret;
use switchboard_domain::now_micros;
use switchboard_protocol::events::{
    ChannelDeletedData, ChannelEventData, EventReaction, MessageActionData, MessageChangedData,
    MessageNewData, PressedAction, ReactionEventData,
};
use switchboard_protocol::signing::{WebhookSecret, standard_signature_header};
use switchboard_protocol::{
    Channel, ChannelAccess, ChannelMember, ChannelType, Envelope, EventType, ExtraFields,
    MemberRole, Message, MessageType, Timestamp, User, js_json,
};

use crate::output;

/// Every event type of the contract, in the contract's order.
pub const EVENT_TYPES: &[EventType] = &[
    EventType::ChannelCreated,
    EventType::ChannelUpdated,
    EventType::ChannelDeleted,
    EventType::MemberAdded,
    EventType::MemberRemoved,
    EventType::MessageNew,
    EventType::MessageUpdated,
    EventType::MessageDeleted,
    EventType::ReactionNew,
    EventType::ReactionDeleted,
    EventType::MessageAction,
    EventType::IntegrationTest,
];

/// The event types, one per line, for `--list`.
pub fn list() -> String {
    EVENT_TYPES
        .iter()
        .map(EventType::as_str)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Posts a sample `event_type` event to `url`, signed with `secret` (a new
/// one, printed, when absent), and prints the answer. Fails unless it is 2xx.
pub async fn run(event_type: &str, url: &str, secret: Option<&str>) -> anyhow::Result<()> {
    let Some(event_type) = EVENT_TYPES.iter().find(|t| t.as_str() == event_type) else {
        bail!("`{event_type}` is not an event type; `switchboard trigger --list` shows them");
    };
    let secret = match secret {
        Some(text) => {
            WebhookSecret::parse(text).map_err(|err| anyhow::anyhow!("--secret: {err}"))?
        }
        None => {
            let secret = new_webhook_secret();
            output::say(&format!(
                "signing secret (verify with it): {}",
                secret.expose()
            ));
            secret
        }
    };
    let id = sample_id("evt");
    let body = sample_body(event_type, &id)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("making the HTTP client")?;
    let started = Instant::now();
    let answer = post_signed(&client, url, &secret, &id, body.clone().into_bytes())
        .await
        .with_context(|| format!("posting to {url}"))?;
    let status = answer.status();
    let text = answer.text().await.unwrap_or_default();
    output::say(&format!(
        "POST {url}  {}  {id}\n{body}\n→ {status} in {} ms\n{}",
        event_type.as_str(),
        started.elapsed().as_millis(),
        text.chars().take(1_024).collect::<String>()
    ));
    if !status.is_success() {
        bail!("{url} answered {status}");
    }
    Ok(())
}

/// Posts `body`, the event `id`, to `url` as a webhook delivery comes: the
/// contract's headers, signed with `secret` (Standard Webhooks, timestamped
/// now, and `x-signature`).
pub async fn post_signed(
    client: &reqwest::Client,
    url: &str,
    secret: &WebhookSecret,
    id: &str,
    body: Vec<u8>,
) -> reqwest::Result<reqwest::Response> {
    let timestamp = now_micros() / 1_000_000;
    client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header(
            "webhook-signature",
            standard_signature_header(&[secret], id, timestamp, &body),
        )
        .header("x-signature", secret.sign_body(&body))
        .body(body)
        .send()
        .await
}

/// The compact JSON body of a sample event with this `id`, in JavaScript's
/// key order as the server sends it.
pub fn sample_body(event_type: &EventType, id: &str) -> anyhow::Result<String> {
    let now = Timestamp::from_unix_micros(now_micros());
    let bot = user("usr_sample_bot", "Sample bot", true, &now);
    let person = user("usr_sample_person", "Alice Example", false, &now);
    let channel = channel(&now);
    let members = vec![
        member(&person.id, MemberRole::Owner, &now),
        member(&bot.id, MemberRole::Member, &now),
    ];
    let users = vec![person.clone(), bot.clone()];
    let message = message(&channel, &person, &now);
    let with_members = ChannelEventData {
        channel: channel.clone(),
        members: members.clone(),
        users: users.clone(),
    };
    let reaction = || ReactionEventData {
        channel: channel.clone(),
        message: message.clone(),
        reaction: EventReaction {
            reaction_type: "like".to_owned(),
            user_id: person.id.clone(),
            created_at: now.clone(),
        },
    };
    let changed = || MessageChangedData {
        channel: channel.clone(),
        message: message.clone(),
    };
    let data = match event_type {
        EventType::ChannelCreated
        | EventType::ChannelUpdated
        | EventType::MemberAdded
        | EventType::MemberRemoved => to_value(&with_members)?,
        EventType::ChannelDeleted => to_value(&ChannelDeletedData {
            channel: channel.clone(),
        })?,
        EventType::MessageNew => to_value(&MessageNewData {
            channel: channel.clone(),
            members,
            users,
            message: message.clone(),
        })?,
        EventType::MessageUpdated | EventType::MessageDeleted => to_value(&changed())?,
        EventType::ReactionNew | EventType::ReactionDeleted => to_value(&reaction())?,
        EventType::MessageAction => to_value(&MessageActionData {
            channel: channel.clone(),
            message: Message {
                user: bot.clone(),
                ..message.clone()
            },
            user: person.clone(),
            action: PressedAction {
                id: "sample-action".to_owned(),
            },
        })?,
        EventType::IntegrationTest | EventType::Other(_) => json!({}),
    };
    let envelope = Envelope {
        id: id.to_owned(),
        event_type: event_type.clone(),
        company: "cmp_sample".to_owned(),
        time: now_micros() / 1_000,
        integration_id: "int_sample".to_owned(),
        bot_id: Some(bot.id.clone()),
        channel_seq: (*event_type != EventType::IntegrationTest).then_some(1),
        data,
        extra: ExtraFields::new(),
    };
    Ok(js_json::to_string(&envelope)?)
}

fn to_value(data: &impl Serialize) -> anyhow::Result<Value> {
    Ok(serde_json::to_value(data)?)
}

/// A unique id with the prefix of its kind.
fn sample_id(prefix: &str) -> String {
    format!("{prefix}_sample_{:x}", now_micros())
}

fn user(id: &str, name: &str, bot: bool, now: &Timestamp) -> User {
    User {
        id: id.to_owned(),
        name: Some(name.to_owned()),
        email: (!bot).then(|| "alice@example.com".to_owned()),
        phone: None,
        picture: None,
        locale: Some("en".to_owned()),
        time_zone: Some("Europe/Paris".to_owned()),
        company: Some("cmp_sample".to_owned()),
        bot,
        pbx_domain: None,
        pbx_port: None,
        pbx_extension: None,
        pbx_serial: None,
        pbx_user_id: None,
        access: None,
        integration_type: None,
        searchable: None,
        created_at: now.clone(),
        updated_at: now.clone(),
        extra: ExtraFields::new(),
    }
}

fn channel(now: &Timestamp) -> Channel {
    Channel {
        channel_id: "ch_sample".to_owned(),
        channel_type: ChannelType::Group,
        member_count: 2,
        subject: Some("Sample channel".to_owned()),
        description: None,
        access: ChannelAccess::Private,
        company: "cmp_sample".to_owned(),
        service: None,
        service_title: None,
        broadcast: false,
        external: false,
        created_at: now.clone(),
        updated_at: now.clone(),
        extra: ExtraFields::new(),
    }
}

fn member(id: &str, role: MemberRole, now: &Timestamp) -> ChannelMember {
    ChannelMember {
        id: id.to_owned(),
        created_at: now.clone(),
        role,
        extra: ExtraFields::new(),
    }
}

fn message(channel: &Channel, author: &User, now: &Timestamp) -> Message {
    Message {
        message_id: "msg_sample".to_owned(),
        channel_id: channel.channel_id.clone(),
        message_type: MessageType::Regular,
        text: Some("Hello from switchboard trigger".to_owned()),
        elements: None,
        attachments: Vec::new(),
        mentions: Vec::new(),
        giphy: None,
        latest_reactions: Vec::new(),
        reaction_counts: Default::default(),
        created_at: now.clone(),
        updated_at: None,
        user: author.clone(),
        quote: None,
        forward: None,
        sms: false,
        silent: false,
        event: None,
        extra: ExtraFields::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_reads_back_as_its_typed_event() {
        for event_type in EVENT_TYPES {
            let body = sample_body(event_type, "evt_sample").unwrap();
            let envelope: Envelope = serde_json::from_str(&body).unwrap();
            assert_eq!(&envelope.event_type, event_type);
            let payload = envelope.payload().unwrap();
            assert!(
                !matches!(payload, switchboard_protocol::EventPayload::Unknown(_)),
                "{body}"
            );
        }
    }
}
