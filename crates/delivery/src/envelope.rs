//! The envelope around an event's stored `data`, written without re-parsing it.

use serde::Serialize;
use serde_json::value::RawValue;
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

/// The compact JSON body of one delivery.
pub fn body(delivery: &ClaimedDelivery) -> Result<Vec<u8>, serde_json::Error> {
    let data: &RawValue = serde_json::from_str(&delivery.data)?;
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
