//! Events sent to bots: the envelope and the `data` of each event type.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Timestamp;
use crate::open_enum;
use crate::resources::{Channel, ChannelMember, ExtraFields, Message, User};

open_enum!(
    /// The `type` of an event.
    EventType {
        ChannelCreated = "chat:channel:created",
        ChannelUpdated = "chat:channel:updated",
        ChannelDeleted = "chat:channel:deleted",
        MemberAdded = "chat:member:added",
        MemberRemoved = "chat:member:removed",
        MessageNew = "chat:message:new",
        MessageUpdated = "chat:message:updated",
        MessageDeleted = "chat:message:deleted",
        ReactionNew = "chat:reaction:new",
        ReactionDeleted = "chat:reaction:deleted",
        MessageAction = "chat:message:action",
        IntegrationTest = "integration:test",
    }
);

/// What every delivery carries around the event's `data`: the one
/// definition of the envelope, for bots that read it and for the server that
/// writes it.
///
/// `D` is the type of `data`: a parsed [`Value`] by default (what a bot
/// reads), or the stored JSON text as a `&RawValue` (what the server sends:
/// an event's data is serialized once, when the event is committed, and every
/// attempt wraps that text without parsing it into values again).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<D = Value> {
    /// Unique, and the same across retries and replays: bots dedupe on it.
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// The company (tenant) id.
    pub company: String,
    /// When the event happened, in milliseconds since the Unix epoch.
    pub time: i64,
    pub integration_id: String,
    /// The bot's user id; a switchboard addition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_id: Option<String>,
    /// Per-channel event sequence, strictly increasing; a switchboard
    /// addition, absent on events outside channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_seq: Option<u64>,
    pub data: D,
    /// Fields this version does not know, kept so that what was read is
    /// written back unchanged.
    #[serde(flatten)]
    pub extra: ExtraFields,
}

/// `data` of channel and member events: the channel with members and users.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelEventData {
    pub channel: Channel,
    #[serde(default)]
    pub members: Vec<ChannelMember>,
    #[serde(default)]
    pub users: Vec<User>,
}

/// `data` of `chat:channel:deleted`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelDeletedData {
    pub channel: Channel,
}

/// `data` of `chat:message:new`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageNewData {
    pub channel: Channel,
    #[serde(default)]
    pub members: Vec<ChannelMember>,
    #[serde(default)]
    pub users: Vec<User>,
    pub message: Message,
}

/// `data` of `chat:message:updated` and `chat:message:deleted`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageChangedData {
    pub channel: Channel,
    pub message: Message,
}

/// `data` of `chat:reaction:new` and `chat:reaction:deleted`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReactionEventData {
    pub channel: Channel,
    pub message: Message,
    pub reaction: EventReaction,
}

/// The reaction in a reaction event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EventReaction {
    #[serde(rename = "type")]
    pub reaction_type: String,
    pub user_id: String,
    pub created_at: Timestamp,
}

/// `data` of `chat:message:action`: a person pressed a button of the bot's message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageActionData {
    pub channel: Channel,
    pub message: Message,
    /// The person who pressed.
    pub user: User,
    pub action: PressedAction,
}

/// The `{action: {id}}` handler that was pressed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PressedAction {
    pub id: String,
}

/// An event's `data`, typed by the envelope's `type`.
#[derive(Clone, Debug, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per event and matched by value; boxing would only burden bot authors"
)]
pub enum EventPayload {
    ChannelCreated(ChannelEventData),
    ChannelUpdated(ChannelEventData),
    ChannelDeleted(ChannelDeletedData),
    MemberAdded(ChannelEventData),
    MemberRemoved(ChannelEventData),
    MessageNew(MessageNewData),
    MessageUpdated(MessageChangedData),
    MessageDeleted(MessageChangedData),
    ReactionNew(ReactionEventData),
    ReactionDeleted(ReactionEventData),
    MessageAction(MessageActionData),
    IntegrationTest,
    /// An event type this version does not know; its data as received.
    Unknown(Value),
}

impl Envelope<Value> {
    /// The typed `data` of this event. Unknown event types give
    /// [`EventPayload::Unknown`]; known types with malformed data are an error.
    pub fn payload(&self) -> Result<EventPayload, serde_json::Error> {
        use serde_json::from_value as parse;
        let data = self.data.clone();
        Ok(match self.event_type {
            EventType::ChannelCreated => EventPayload::ChannelCreated(parse(data)?),
            EventType::ChannelUpdated => EventPayload::ChannelUpdated(parse(data)?),
            EventType::ChannelDeleted => EventPayload::ChannelDeleted(parse(data)?),
            EventType::MemberAdded => EventPayload::MemberAdded(parse(data)?),
            EventType::MemberRemoved => EventPayload::MemberRemoved(parse(data)?),
            EventType::MessageNew => EventPayload::MessageNew(parse(data)?),
            EventType::MessageUpdated => EventPayload::MessageUpdated(parse(data)?),
            EventType::MessageDeleted => EventPayload::MessageDeleted(parse(data)?),
            EventType::ReactionNew => EventPayload::ReactionNew(parse(data)?),
            EventType::ReactionDeleted => EventPayload::ReactionDeleted(parse(data)?),
            EventType::MessageAction => EventPayload::MessageAction(parse(data)?),
            EventType::IntegrationTest => EventPayload::IntegrationTest,
            EventType::Other(_) => EventPayload::Unknown(data),
        })
    }
}
