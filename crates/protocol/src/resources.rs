//! The chat resources inside events and API responses: Channel, ChannelMember,
//! User, Message and the parts of a message.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Timestamp;
use crate::open_enum;

/// Unknown fields of a resource, kept so that they survive a round trip.
pub type ExtraFields = Map<String, Value>;

open_enum!(
    /// `channelType`: a group conversation or a one-to-one conversation.
    ChannelType { Group = "group", Direct = "direct" }
);

open_enum!(
    /// `access`: whether the channel is visible to members only.
    ChannelAccess { Private = "private", Public = "public" }
);

open_enum!(
    /// A member's `role` in a channel.
    MemberRole { Owner = "owner", Member = "member", Supervisor = "supervisor" }
);

open_enum!(
    /// A message's `type`: `regular` for what people and bots write.
    MessageType { Regular = "regular", System = "system", Deleted = "deleted" }
);

/// A conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    pub channel_id: String,
    pub channel_type: ChannelType,
    pub member_count: u64,
    pub subject: Option<String>,
    pub description: Option<String>,
    pub access: ChannelAccess,
    /// The company (tenant) id.
    pub company: String,
    pub service: Option<String>,
    pub service_title: Option<String>,
    pub broadcast: bool,
    pub external: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub extra: ExtraFields,
}

/// A user's membership of a channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ChannelMember {
    /// The member's user id.
    pub id: String,
    /// When the user joined the channel.
    pub created_at: Timestamp,
    pub role: MemberRole,
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub extra: ExtraFields,
}

/// A person or a bot (`bot: true`). Absent optional fields are omitted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Phone number in E.164 form; a switchboard addition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(default)]
    pub bot: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pbx_domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pbx_port: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pbx_extension: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pbx_serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pbx_user_id: Option<String>,
    /// Bots: who may find the bot, as its administrator set it (an open
    /// value, kept as sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
    /// Bots: how the bot is integrated, as its administrator set it (an open
    /// value, kept as sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_type: Option<String>,
    /// Bots: whether people find it in search, as its administrator set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub searchable: Option<bool>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub extra: ExtraFields,
}

/// A message in a channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub message_id: String,
    pub channel_id: String,
    #[serde(rename = "type")]
    pub message_type: MessageType,
    pub text: Option<String>,
    /// Interactive content (buttons); a switchboard addition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elements: Option<Vec<Element>>,
    #[serde(default)]
    pub attachments: Vec<MessageAttachment>,
    /// The users mentioned in the message.
    #[serde(default)]
    pub mentions: Vec<User>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub giphy: Option<Value>,
    #[serde(default)]
    pub latest_reactions: Vec<Reaction>,
    /// Reaction type → how many users reacted with it.
    #[serde(default)]
    pub reaction_counts: BTreeMap<String, u64>,
    pub created_at: Timestamp,
    /// When the content last changed; a switchboard addition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
    pub user: User,
    pub quote: Option<MessageQuote>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub forward: Option<Value>,
    #[serde(default)]
    pub sms: bool,
    #[serde(default)]
    pub silent: bool,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub event: Option<Value>,
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub extra: ExtraFields,
}

/// A file attached to a message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MessageAttachment {
    pub id: String,
    /// The stored object's id, which x-bees' typed clients require.
    /// switchboard keeps no other id for a file's bytes: it is the file id.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub fs_id: String,
    pub name: String,
    pub mime: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub extra: ExtraFields,
}

/// The message a message answers, as it was when quoted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MessageQuote {
    pub message_id: String,
    pub channel_id: String,
    pub user: User,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachments: Option<Vec<MessageAttachment>>,
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub extra: ExtraFields,
}

/// One user's reaction to a message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Reaction {
    #[serde(rename = "type")]
    pub reaction_type: String,
    pub user_id: String,
    pub created_at: Timestamp,
}

/// One block of interactive content. Exactly one key is set; unknown kinds of
/// element are kept in `extra`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Element {
    /// A row of buttons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<ElementAction>>,
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub extra: ExtraFields,
}

/// One action of an `actions` element. Exactly one key is set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ElementAction {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button: Option<Button>,
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub extra: ExtraFields,
}

/// A button a person can press.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Button {
    pub text: String,
    /// Presentation hint, such as `primary` or `danger`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<ButtonHandler>,
}

/// What pressing a button does. Exactly one key is set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ButtonHandler {
    /// Open a link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<LinkHandler>,
    /// Send a reply into the channel as the person who pressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<ReplyHandler>,
    /// Tell the bot that sent the message (`chat:message:action`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<ActionHandler>,
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub extra: ExtraFields,
}

/// `{link: {url}}`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LinkHandler {
    pub url: String,
}

/// `{reply: {text?}}`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplyHandler {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// `{action: {id}}`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActionHandler {
    pub id: String,
}

impl Element {
    /// Every button in this element, in order.
    pub fn buttons(&self) -> impl Iterator<Item = &Button> {
        self.actions
            .iter()
            .flatten()
            .filter_map(|action| action.button.as_ref())
    }
}
