//! Request and response bodies of the HTTP API (`/v2/…`).
//!
//! Requests ignore fields they do not know; responses follow the resource
//! shapes of [`crate::resources`]. Names follow the x-bees Conversations API.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::resources::{
    Channel, ChannelAccess, ChannelMember, ChannelType, Element, Message, MessageAttachment, User,
};

/// The fields `unset` may name in a channel `PATCH`.
pub const CHANNEL_UNSETTABLE: &[&str] = &["subject", "description", "service", "serviceTitle"];
/// The parts `unset` may name in a message `PATCH`.
pub const MESSAGE_UNSETTABLE: &[&str] = &["text", "elements", "attachments", "mentions"];
/// The settings `unset` may return to their defaults on a webhook integration.
pub const WEBHOOK_INTEGRATION_UNSETTABLE: &[&str] = &[
    "eventTypes",
    "timeoutMs",
    "retryScheduleMs",
    "maxInFlight",
    "fullMemberLists",
];
/// The settings `unset` may return to their defaults on an SQS integration.
pub const SQS_INTEGRATION_UNSETTABLE: &[&str] = &[
    "eventTypes",
    "timeoutMs",
    "retryScheduleMs",
    "maxInFlight",
    "fullMemberLists",
    "endpointUrl",
];

/// The settings `unset` may return to their defaults on a pull integration.
pub const PULL_INTEGRATION_UNSETTABLE: &[&str] = &["eventTypes", "maxInFlight", "fullMemberLists"];

/// An `unset` list's schema: an array of these names.
#[cfg(feature = "openapi")]
fn unset_schema(names: &[&str]) -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(names.iter().copied())),
        )
        .build()
}

#[cfg(feature = "openapi")]
fn channel_unset_schema() -> utoipa::openapi::schema::Array {
    unset_schema(CHANNEL_UNSETTABLE)
}

#[cfg(feature = "openapi")]
fn message_unset_schema() -> utoipa::openapi::schema::Array {
    unset_schema(MESSAGE_UNSETTABLE)
}

/// Webhook and SQS integrations' names together (`endpointUrl` is SQS's).
#[cfg(feature = "openapi")]
fn integration_unset_schema() -> utoipa::openapi::schema::Array {
    unset_schema(SQS_INTEGRATION_UNSETTABLE)
}

/// Declares request/response structs with the derives every API body shares.
macro_rules! bodies {
    ($($(#[$meta:meta])* pub struct $name:ident { $($body:tt)* })+) => {
        $(
            $(#[$meta])*
            #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
            #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
            #[serde(rename_all = "camelCase")]
            pub struct $name { $($body)* }
        )+
    };
}

bodies! {
    /// A person to find or create by email or phone.
    pub struct UserToInvite {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub email: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub phone: Option<String>,
        /// Used only when the person is created.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
    }

    /// CreateChannel. The caller becomes the channel's owner and first member.
    pub struct CreateChannelRequest {
        /// `group` (default) or `direct` (then exactly one other member).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub channel_type: Option<ChannelType>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub subject: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub description: Option<String>,
        /// `private` (default) or `public`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub access: Option<ChannelAccess>,
        /// User ids of the company to add as members.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub members: Option<Vec<String>>,
        /// People to find or create by email/phone and add.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub members_to_invite: Option<Vec<UserToInvite>>,
    }

    /// GetOrCreateDirectChannel: one of `memberId` or `memberToInvite`.
    pub struct DirectChannelRequest {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub member_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub member_to_invite: Option<UserToInvite>,
    }

    /// UpdateChannel (`PUT`): the full set of editable fields; absent optional
    /// fields are cleared, absent flags and `access` return to their defaults.
    pub struct UpdateChannelRequest {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub subject: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub description: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub access: Option<ChannelAccess>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub service: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub service_title: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub broadcast: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub external: Option<bool>,
    }

    /// PartialUpdateChannel (`PATCH`): fields in `set` change, fields named in
    /// `unset` (`subject`, `description`, `service`, `serviceTitle`) are cleared.
    pub struct PartialUpdateChannelRequest {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub set: Option<UpdateChannelRequest>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[cfg_attr(feature = "openapi", schema(schema_with = channel_unset_schema))]
        pub unset: Vec<String>,
    }

    /// `{channel}`
    pub struct ChannelResponse {
        pub channel: Channel,
    }

    /// `{channel, members, users}`
    pub struct ChannelDetailsResponse {
        pub channel: Channel,
        pub members: Vec<ChannelMember>,
        pub users: Vec<User>,
    }

    /// `{channels}`, newest activity first.
    pub struct ChannelListResponse {
        pub channels: Vec<Channel>,
    }

    /// AddChannelMembers: user ids and/or people to invite. Adding a member
    /// twice changes nothing.
    pub struct AddMembersRequest {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub members: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub members_to_invite: Option<Vec<UserToInvite>>,
        /// Do not announce the change in the channel.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub silent: Option<bool>,
    }

    /// `{members, users}`
    pub struct MembersResponse {
        pub members: Vec<ChannelMember>,
        pub users: Vec<User>,
    }

    /// An uploaded file of the same channel to attach, by its `id` (the `fileId`).
    pub struct AttachmentRef {
        pub id: String,
    }

    /// The message a new message answers.
    pub struct QuoteRef {
        pub message_id: String,
    }

    /// SendMessage: at least one of `text`, `elements`, `attachments`.
    #[derive(Default)]
    pub struct SendMessageRequest {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub elements: Option<Vec<Element>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub attachments: Option<Vec<AttachmentRef>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub quote: Option<QuoteRef>,
        /// User ids of channel members the message mentions.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub mentions: Option<Vec<String>>,
        /// Deliver without notifying people.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub silent: Option<bool>,
    }

    /// UpdateMessage (`PUT`): the whole content; absent parts are cleared.
    /// Sending the same content again changes nothing.
    pub struct UpdateMessageRequest {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub elements: Option<Vec<Element>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub attachments: Option<Vec<AttachmentRef>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub mentions: Option<Vec<String>>,
    }

    /// PartialUpdateMessage (`PATCH`): `set` changes the given parts, `unset`
    /// clears `text`, `elements`, `attachments` or `mentions`.
    pub struct PartialUpdateMessageRequest {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub set: Option<UpdateMessageRequest>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[cfg_attr(feature = "openapi", schema(schema_with = message_unset_schema))]
        pub unset: Vec<String>,
    }

    /// `{message}`
    pub struct MessageResponse {
        pub message: Message,
    }

    /// `{messages}`, newest first.
    pub struct MessageListResponse {
        pub messages: Vec<Message>,
    }

    /// AddReaction.
    pub struct ReactionRequest {
        #[serde(rename = "type")]
        #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
        pub reaction_type: String,
    }

    /// PressButton: the `id` of a button's `{action: {id}}` handler.
    pub struct PressButtonRequest {
        #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 128))]
        pub action_id: String,
    }

    /// SendTypingStart.
    pub struct TypingStartRequest {
        /// How long the indicator lasts unless renewed or stopped (1–120, default 10).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 120))]
        pub ttl_seconds: Option<u32>,
    }

    /// One member who is typing.
    pub struct TypingIndicator {
        pub user_id: String,
        pub expires_at: Timestamp,
    }

    /// `{typing}`: who is typing in a channel now.
    pub struct TypingResponse {
        pub typing: Vec<TypingIndicator>,
    }

    /// One event of a person's live feed (`GET /v2/conversations/events`,
    /// the `data:` of each Server-Sent Event): the event's envelope as bots
    /// get it, without the integration's fields, with the channel's id.
    pub struct PersonEventBody {
        /// The event's id; the same event may come twice across a reconnection: dedupe on it.
        pub id: String,
        #[serde(rename = "type")]
        pub event_type: String,
        pub company: String,
        /// When the event happened, in milliseconds since the Unix epoch.
        pub time: i64,
        pub channel_id: String,
        pub channel_seq: i64,
        /// The event's `data`, as bots get it (see the event types).
        pub data: serde_json::Value,
    }

    /// The `data:` of a feed's `typing` event: who is typing in one of the
    /// person's channels, sent when it changes.
    pub struct TypingChangeBody {
        pub channel_id: String,
        pub typing: Vec<TypingIndicator>,
    }

    /// The editable profile fields of a person.
    pub struct UserFields {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
        pub name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub email: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub phone: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub picture: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub locale: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub time_zone: Option<String>,
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
    }

    /// PATCH a person: `set` changes fields, `unset` clears them by name.
    pub struct PatchUserRequest {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub set: Option<UserFields>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub unset: Vec<String>,
    }

    /// `{user}`
    pub struct UserResponse {
        pub user: User,
    }

    /// `{users}`
    pub struct UsersResponse {
        pub users: Vec<User>,
    }

    /// Invite: find or create people by email or phone.
    pub struct InviteRequest {
        pub invitees: Vec<UserToInvite>,
    }

    /// Create or replace a bot. Unlike other requests, a field the server
    /// does not know is refused (400 naming it), never dropped: bot
    /// administration code sends x-bees' directory fields and reads them back.
    pub struct BotRequest {
        #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
        pub name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub picture: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub locale: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub time_zone: Option<String>,
        /// Who may find the bot (an open value, kept as sent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub access: Option<String>,
        /// How the bot is integrated (an open value, kept as sent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub integration_type: Option<String>,
        /// Whether people find the bot in search.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub searchable: Option<bool>,
        /// Fields the server does not know; refused.
        #[serde(flatten, default, skip_serializing)]
        #[cfg_attr(feature = "openapi", schema(ignore))]
        pub unknown: serde_json::Map<String, serde_json::Value>,
    }

    /// `{bots}`
    pub struct BotListResponse {
        pub bots: Vec<User>,
    }

    /// A new credential. `secret` text is shown here once and never again.
    pub struct CreatedKeyResponse {
        pub key_id: String,
        /// The key itself: keep it, it cannot be shown again.
        pub key: String,
        pub created_at: Timestamp,
    }

    /// A new user token, shown once.
    pub struct CreatedTokenResponse {
        pub token_id: String,
        /// The token itself: keep it, it cannot be shown again.
        pub token: String,
        pub user_id: String,
        pub created_at: Timestamp,
    }

    /// Create a company key.
    pub struct CreateCompanyKeyRequest {
        /// A label for people, such as "ci" or "crm sync".
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
        /// Read-only keys may only call `GET` routes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub read_only: Option<bool>,
    }

    /// What is known of a credential without its secret.
    pub struct KeyInfo {
        pub key_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
        pub read_only: bool,
        /// The last four characters, to tell keys apart.
        pub last_four: String,
        pub created_at: Timestamp,
    }

    /// A company (tenant) as its company key sees it.
    pub struct CompanyView {
        pub id: String,
        pub name: String,
        pub created_at: Timestamp,
    }

    /// `{company}`
    pub struct CompanyResponse {
        pub company: CompanyView,
    }

    /// `{keys}`
    pub struct KeyListResponse {
        pub keys: Vec<KeyInfo>,
    }

    /// `GET /health`
    pub struct HealthResponse {
        /// `ok`, or `unavailable` when the database cannot be reached.
        pub status: String,
        pub version: String,
    }

    /// A request that succeeded with nothing to say.
    pub struct OkResponse {
        pub ok: bool,
    }

    /// GetUploadedFileInfo: the file as an attachment; absent until its bytes
    /// were uploaded.
    pub struct FileResponse {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub file: Option<MessageAttachment>,
    }

    /// UploadFile: announce a file of the channel, then `PUT` its bytes to the
    /// `presignedUploadUrl` answered.
    pub struct UploadFileRequest {
        /// The file name people see (no `/` or `\\`).
        #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
        pub name: String,
        /// Its media type; unset, it is guessed from the name's extension
        /// (`application/octet-stream` when unknown).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub content_type: Option<String>,
        /// Its size in bytes: the upload must then have exactly this many.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub size: Option<u64>,
    }

    /// Where to upload the file's bytes: one `PUT`, no `Authorization` header.
    pub struct UploadFileResponse {
        pub file_id: String,
        pub presigned_upload_url: String,
        /// When the upload URL stops working; a switchboard addition.
        pub expires_at: Timestamp,
    }

    /// GetMessageFileDownloadUrl: a short-lived URL that downloads the file
    /// while the message carries it.
    pub struct FileUrlResponse {
        pub url: String,
        pub expires_at: Timestamp,
    }
}

bodies! {
    /// Create an integration: where a bot's events go.
    pub struct CreateIntegrationRequest {
        /// `webhook` or `sqs`.
        #[serde(rename = "type")]
        pub integration_type: String,
        /// Webhook: the receiver's `https://` (or `http://`) URL.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub url: Option<String>,
        /// SQS: the queue's URL (a FIFO queue's ends in `.fifo`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub queue_url: Option<String>,
        /// SQS: the queue's AWS region, such as `eu-west-1`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub region: Option<String>,
        /// SQS: the access key id of credentials allowed `sqs:SendMessage` on the queue.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub access_key_id: Option<String>,
        /// SQS: the secret access key; stored encrypted, never returned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub secret_access_key: Option<String>,
        /// SQS: an SQS-compatible server to use instead of AWS's regional endpoint.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub endpoint_url: Option<String>,
        /// Event types to deliver; absent means all.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub event_types: Option<Vec<String>>,
        /// Request timeout in milliseconds, 1000–60000 (default: the server's, 10 s).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub timeout_ms: Option<u32>,
        /// Delays between attempts in milliseconds (default: the server's, about 24 h in all).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub retry_schedule_ms: Option<Vec<u64>>,
        /// Most deliveries in flight at once, 1–256 (default: the server's, 64).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_in_flight: Option<u32>,
        /// Full `members` and `users` lists in message, reaction and action
        /// events; by default each holds at most 50 entries (the author, the
        /// mentioned users and this bot always among them).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub full_member_lists: Option<bool>,
    }

    /// The changeable fields of an integration.
    #[derive(Default)]
    pub struct IntegrationFields {
        /// Webhook only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub url: Option<String>,
        /// SQS only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub queue_url: Option<String>,
        /// SQS only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub region: Option<String>,
        /// SQS only; give `secretAccessKey` with it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub access_key_id: Option<String>,
        /// SQS only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub secret_access_key: Option<String>,
        /// SQS only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub endpoint_url: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub event_types: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub timeout_ms: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub retry_schedule_ms: Option<Vec<u64>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_in_flight: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub full_member_lists: Option<bool>,
    }

    /// PATCH an integration: `set` changes fields, `unset` returns
    /// `eventTypes`, `timeoutMs`, `retryScheduleMs`, `maxInFlight`,
    /// `fullMemberLists` (and, for SQS, `endpointUrl`) to their defaults.
    pub struct UpdateIntegrationRequest {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub set: Option<IntegrationFields>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[cfg_attr(feature = "openapi", schema(schema_with = integration_unset_schema))]
        pub unset: Vec<String>,
    }

    /// An integration, without its secret.
    pub struct IntegrationView {
        pub integration_id: String,
        pub bot_id: String,
        /// `webhook` or `sqs`.
        #[serde(rename = "type")]
        pub integration_type: String,
        /// Webhook: the receiver's URL.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub url: Option<String>,
        /// SQS: the queue's URL.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub queue_url: Option<String>,
        /// SQS: the queue's region.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub region: Option<String>,
        /// SQS: the access key id (the secret access key is never returned).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub access_key_id: Option<String>,
        /// SQS: the SQS-compatible endpoint, when one is set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub endpoint_url: Option<String>,
        /// SQS: whether the queue is FIFO (`MessageGroupId` = channel id).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub fifo: Option<bool>,
        /// Absent: every event type.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub event_types: Option<Vec<String>>,
        /// `active`, `paused` or `disabled` (by the server: 410 Gone, or failing too long).
        pub state: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub disabled_reason: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub timeout_ms: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub retry_schedule_ms: Option<Vec<u64>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_in_flight: Option<u32>,
        /// Full `members`/`users` lists in message and reaction events.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub full_member_lists: Option<bool>,
        /// Until when the previous secret also signs, during a rotation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub previous_secret_expires_at: Option<Timestamp>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_success_at: Option<Timestamp>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub failing_since: Option<Timestamp>,
        pub created_at: Timestamp,
        pub updated_at: Timestamp,
    }

    /// `{integration, secret?}`: the secret only when it was just made.
    pub struct IntegrationResponse {
        pub integration: IntegrationView,
        /// The signing secret (`whsec_…`) of `webhook-signature`,
        /// `x-signature` and the SQS `X-SIGNATURE` attribute: shown on create
        /// and rotate only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub secret: Option<String>,
    }

    /// `{integrations}`
    pub struct IntegrationListResponse {
        pub integrations: Vec<IntegrationView>,
    }

    /// Rotate the signing secret.
    pub struct RotateSecretRequest {
        /// How long the previous secret keeps signing too, 0–604800 (default 86400).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 604800))]
        pub previous_secret_valid_seconds: Option<u64>,
    }

    /// The test event that was queued.
    pub struct TestEventResponse {
        pub event_id: String,
    }

    /// One attempt in the delivery log.
    pub struct AttemptView {
        pub attempted_at: Timestamp,
        pub duration_ms: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub status_code: Option<u16>,
        /// `delivered`, `failed`, `throttled`, `gone` or `rejected` (the
        /// event can never be taken as it is: dead at once); for a pull
        /// integration `fetched` (handed to a consumer), `acknowledged`,
        /// `released` or `dead`.
        pub outcome: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub error: Option<String>,
        /// The start of the receiver's answer (at most 1 KiB).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub response_snippet: Option<String>,
    }

    /// One delivery of one event to the integration, with its attempts.
    pub struct DeliveryView {
        pub delivery_id: String,
        pub event_id: String,
        pub event_type: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub channel_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub channel_seq: Option<i64>,
        /// `pending`, `delivered` or `dead` (given up; replay sends it again).
        pub status: String,
        pub created_at: Timestamp,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub finished_at: Option<Timestamp>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_error: Option<String>,
        pub attempts: Vec<AttemptView>,
    }

    /// `{deliveries, nextCursor?}`, newest first.
    pub struct DeliveryListResponse {
        pub deliveries: Vec<DeliveryView>,
        /// Pass as `cursor` for the next (older) page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub next_cursor: Option<String>,
    }

    /// Replay: `{since, until}` or `{eventIds}`.
    pub struct ReplayRequest {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub since: Option<Timestamp>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub until: Option<Timestamp>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub event_ids: Option<Vec<String>>,
    }

    /// How many events were queued again.
    pub struct ReplayResponse {
        pub queued: u64,
    }
}

bodies! {
    /// The events handed to this consumer of a pull integration, oldest
    /// first; empty when none came within `wait`.
    pub struct PulledEventsResponse {
        pub events: Vec<PulledEvent>,
    }

    /// One event handed to a consumer. It is held for this consumer until
    /// `receiptExpiresAt`: acknowledge it by its `receipt` once handled, or
    /// release it to have it again later; else it is handed out again
    /// after that time. Other events of its channel wait until then.
    pub struct PulledEvent {
        /// Names this hand-out of the event in an acknowledgement or a
        /// release; opaque.
        pub receipt: String,
        /// Until when the event is held for this consumer (the visibility timeout).
        pub receipt_expires_at: Timestamp,
        /// The event, in the envelope webhooks and SQS carry (`id`, `type`,
        /// `company`, `time`, `integrationId`, `botId`, `channelSeq`, `data`).
        #[cfg_attr(feature = "openapi", schema(value_type = Object))]
        pub event: serde_json::Value,
    }

    /// Acknowledge handled events: they are delivered and go no further.
    pub struct AcknowledgeEventsRequest {
        /// The `receipt` of each, 1–100.
        #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 100))]
        pub receipts: Vec<String>,
    }

    /// What an acknowledgement came to.
    pub struct AcknowledgeEventsResponse {
        /// Events now delivered.
        pub acknowledged: u64,
        /// Receipts that hold no event: its visibility timeout passed and it
        /// was handed out again (the bot sees it once more), or the receipt
        /// is not one of this bot's.
        pub expired: Vec<String>,
    }

    /// Release events the bot could not handle now: each is handed out again
    /// after `retryAfterSeconds`, its channel's later events still waiting.
    pub struct ReleaseEventsRequest {
        /// The `receipt` of each, 1–100.
        #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 100))]
        pub receipts: Vec<String>,
        /// Seconds until they are handed out again, 0–43200 (default 0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 43200))]
        pub retry_after_seconds: Option<u32>,
    }

    /// What a release came to.
    pub struct ReleaseEventsResponse {
        /// Events that will be handed out again.
        pub released: u64,
        /// Receipts that no longer held their event (see acknowledgements).
        pub expired: Vec<String>,
    }
}
