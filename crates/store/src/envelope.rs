//! The body of a delivery: the contract's [`Envelope`] around the event's
//! stored `data`, which is written as stored, not parsed into values again.

use std::collections::HashSet;

use crate::ClaimedDelivery;
use serde_json::Value;
use serde_json::value::RawValue;
use switchboard_protocol::{Envelope, EventType, ExtraFields, js_json};

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
    // The data and room for the envelope's few fields: written without regrowing.
    let mut body = Vec::with_capacity(data.get().len() + ENVELOPE_FIELDS_BYTES);
    serde_json::to_writer(
        &mut body,
        &Envelope {
            id: delivery.event_id.as_str().to_owned(),
            event_type: delivery.event_type.clone(),
            company: delivery.company.as_str().to_owned(),
            time: delivery.event_time / 1_000,
            integration_id: delivery.integration.id.as_str().to_owned(),
            bot_id: Some(delivery.integration.bot.as_str().to_owned()),
            channel_seq: delivery
                .channel_id
                .as_ref()
                .and_then(|_| u64::try_from(delivery.channel_seq).ok()),
            data,
            extra: ExtraFields::new(),
        },
    )?;
    Ok(body)
}

/// Room for the envelope around the data: its ids, type and numbers.
const ENVELOPE_FIELDS_BYTES: usize = 256;

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

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_domain::EventId;

    fn delivery(channel: Option<&str>, data: &str) -> ClaimedDelivery {
        ClaimedDelivery {
            delivery_id: 7,
            event_id: EventId::from_stored("evt_1".to_owned()),
            channel_seq: 42,
            data: data.to_owned(),
            ..ClaimedDelivery::sample(7, "int_1", channel)
        }
    }

    #[test]
    fn the_body_is_the_contract_envelope_around_the_stored_data_as_stored() {
        let data = r#"{"channel":{"channelId":"ch_1"},"message":{"text":"a \u00e9 b","n":1.50}}"#;
        let body = String::from_utf8(body(&delivery(Some("ch_1"), data)).unwrap()).unwrap();
        assert_eq!(
            body,
            format!(
                r#"{{"id":"evt_1","type":"chat:message:new","company":"co_1","time":1719844426953,"integrationId":"int_1","botId":"usr_bot","channelSeq":42,"data":{data}}}"#
            )
        );
        let read: Envelope = serde_json::from_str(&body).unwrap();
        assert_eq!(read.channel_seq, Some(42));
        assert_eq!(read.bot_id.as_deref(), Some("usr_bot"));
        assert!(read.extra.is_empty());
    }

    #[test]
    fn an_event_outside_channels_has_no_channel_seq() {
        let body = body(&delivery(None, "{}")).unwrap();
        let read: Envelope = serde_json::from_slice(&body).unwrap();
        assert_eq!(read.channel_seq, None);
        assert_eq!(read.data, serde_json::json!({}));
    }
}
