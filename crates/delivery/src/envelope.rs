//! The envelope around an event's stored `data`, written without re-parsing it.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use switchboard_protocol::{EventType, js_json};
use switchboard_store::ClaimedDelivery;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EnvelopeOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    company: &'a str,
    time: i64,
    integration_id: &'a str,
    bot_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel_seq: Option<i64>,
    data: &'a RawValue,
}

/// Most entries of `members` and of `users` in an event, unless the
/// integration asks for full lists: a channel of hundreds of people would
/// otherwise pass the 100 kB that common JSON body parsers accept.
pub const MEMBER_LIST_LIMIT: usize = 50;

/// Stored data shorter than this cannot hold more than [`MEMBER_LIST_LIMIT`]
/// members (each entry takes more than 80 bytes), so it is sent as stored.
const SHORTEST_DATA_TO_BOUND: usize = MEMBER_LIST_LIMIT * 80;

/// The compact JSON body of one delivery.
pub fn body(delivery: &ClaimedDelivery) -> Result<Vec<u8>, serde_json::Error> {
    let bounded = bounded_data(delivery)?;
    let data: &RawValue = serde_json::from_str(bounded.as_deref().unwrap_or(&delivery.data))?;
    serde_json::to_vec(&EnvelopeOut {
        id: delivery.event_id.as_str(),
        event_type: delivery.event_type.as_str(),
        company: delivery.company.as_str(),
        time: delivery.event_time / 1_000,
        integration_id: delivery.integration.id.as_str(),
        bot_id: delivery.integration.bot.as_str(),
        channel_seq: delivery.channel_id.as_ref().map(|_| delivery.channel_seq),
        data,
    })
}

/// The event's data with `members` and `users` cut to [`MEMBER_LIST_LIMIT`]
/// entries each, when they hold more and the integration did not ask for
/// full lists; `None` when the stored data goes out as it is. Kept always:
/// the message's author, the users it mentions, the user who reacted or
/// pressed a button, and the receiving bot; then the first others, in the
/// order stored. `channel.memberCount` keeps the true count.
fn bounded_data(delivery: &ClaimedDelivery) -> Result<Option<String>, serde_json::Error> {
    let full = delivery.integration.settings.full_member_lists == Some(true);
    // Channel and member events carry what they are about: never cut.
    let about_a_message = matches!(
        delivery.event_type,
        EventType::MessageNew
            | EventType::MessageUpdated
            | EventType::MessageDeleted
            | EventType::MessageAction
            | EventType::ReactionNew
            | EventType::ReactionDeleted
    );
    if full || !about_a_message || delivery.data.len() < SHORTEST_DATA_TO_BOUND {
        return Ok(None);
    }
    let mut data: Value = serde_json::from_str(&delivery.data)?;
    let too_long = |name: &str| {
        data.get(name)
            .and_then(Value::as_array)
            .is_some_and(|list| list.len() > MEMBER_LIST_LIMIT)
    };
    if !too_long("members") && !too_long("users") {
        return Ok(None);
    }
    let mut wanted: HashSet<String> = HashSet::new();
    wanted.insert(delivery.integration.bot.as_str().to_owned());
    let mut want = |id: Option<&str>| {
        if let Some(id) = id {
            wanted.insert(id.to_owned());
        }
    };
    want(data.pointer("/message/user/id").and_then(Value::as_str));
    want(data.pointer("/user/id").and_then(Value::as_str));
    want(data.pointer("/reaction/userId").and_then(Value::as_str));
    for mention in data
        .pointer("/message/mentions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        want(mention.get("id").and_then(Value::as_str));
    }
    // Then the first others, in the order the members are listed.
    for name in ["members", "users"] {
        for entry in data
            .get(name)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if wanted.len() >= MEMBER_LIST_LIMIT {
                break;
            }
            if let Some(id) = entry.get("id").and_then(Value::as_str) {
                wanted.insert(id.to_owned());
            }
        }
    }
    for name in ["members", "users"] {
        if let Some(list) = data.get_mut(name).and_then(Value::as_array_mut) {
            list.retain(|entry| {
                entry
                    .get("id")
                    .and_then(Value::as_str)
                    .is_some_and(|id| wanted.contains(id))
            });
        }
    }
    js_json::to_string(&data).map(Some)
}
