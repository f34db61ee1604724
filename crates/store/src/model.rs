//! What goes into and comes out of the store besides the wire resources.
//!
//! Resources (channels, users, messages) come back as the wire types of
//! `switchboard-protocol`: they are the one representation of a resource, so
//! nothing is converted twice.

use switchboard_domain::credentials::{CredentialHash, CredentialKind};
use switchboard_domain::{CompanyId, CredentialId, MessageId, UnixMicros, UserId};
use switchboard_protocol::{ChannelAccess, ChannelMember, Element, Timestamp, User};

pub use switchboard_domain::validation::Page;

/// A company (tenant).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Company {
    pub id: CompanyId,
    pub name: String,
    pub created_at: Timestamp,
}

/// Who a credential belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialOwner {
    /// A company key.
    Company,
    /// A bot key of this bot.
    Bot(UserId),
    /// A user token of this person.
    User(UserId),
}

impl CredentialOwner {
    /// The credential kind this owner holds.
    pub fn kind(&self) -> CredentialKind {
        match self {
            CredentialOwner::Company => CredentialKind::Company,
            CredentialOwner::Bot(_) => CredentialKind::Bot,
            CredentialOwner::User(_) => CredentialKind::User,
        }
    }
}

/// A credential to store: only its hash and a hint, never the secret.
#[derive(Clone, Debug)]
pub struct NewCredentialRecord {
    pub owner: CredentialOwner,
    pub hash: CredentialHash,
    pub last_four: String,
    pub name: Option<String>,
    pub read_only: bool,
}

/// A stored credential, without its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialInfo {
    pub id: CredentialId,
    pub owner: CredentialOwner,
    pub name: Option<String>,
    pub read_only: bool,
    pub last_four: String,
    pub created_at: Timestamp,
}

/// Profile fields of a person; `None` leaves a field empty (on create) or
/// unchanged (in a [`UserPatch`]). Emails and phones arrive normalised.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserProfile {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub picture: Option<String>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    pub pbx_domain: Option<String>,
    pub pbx_port: Option<String>,
    pub pbx_extension: Option<String>,
    pub pbx_serial: Option<String>,
    pub pbx_user_id: Option<String>,
}

/// A change to a person: `set` fields change, `unset` fields are cleared.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserPatch {
    pub set: UserProfile,
    /// Wire names of fields to clear (`name`, `email`, `pbxPort`, …).
    pub unset: Vec<String>,
}

/// A bot's profile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BotProfile {
    pub name: String,
    pub picture: Option<String>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    /// x-bees' directory fields, kept as sent.
    pub access: Option<String>,
    pub integration_type: Option<String>,
    pub searchable: Option<bool>,
}

/// A person to find by email or phone, or to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitee {
    /// Normalised (lower case).
    pub email: Option<String>,
    /// E.164.
    pub phone: Option<String>,
    pub name: Option<String>,
}

/// A new group channel.
#[derive(Clone, Debug, PartialEq)]
pub struct NewChannel {
    pub subject: Option<String>,
    pub description: Option<String>,
    pub access: ChannelAccess,
    pub members: Vec<UserId>,
    pub invitees: Vec<Invitee>,
}

/// The other member of a direct channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirectPeer {
    User(UserId),
    Invite(Invitee),
}

/// A change to a channel's settings. `None` leaves a field as it is; for
/// optional fields `Some(None)` clears it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChannelPatch {
    pub subject: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub access: Option<ChannelAccess>,
    pub service: Option<Option<String>>,
    pub service_title: Option<Option<String>>,
    pub broadcast: Option<bool>,
    pub external: Option<bool>,
}

/// `{channel, members, users}`
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelDetails {
    pub channel: switchboard_protocol::Channel,
    pub members: Vec<ChannelMember>,
    pub users: Vec<User>,
}

/// `{members, users}`
#[derive(Clone, Debug, PartialEq)]
pub struct Members {
    pub members: Vec<ChannelMember>,
    pub users: Vec<User>,
}

/// A new message's content, already checked for shape and limits.
#[derive(Clone, Debug, PartialEq)]
pub struct NewMessage {
    pub text: Option<String>,
    pub elements: Vec<Element>,
    /// File ids of uploaded files of the same channel.
    pub attachments: Vec<String>,
    pub quote: Option<MessageId>,
    pub mentions: Vec<UserId>,
    pub silent: bool,
    /// Sizes of attached files whose uploads the caller confirmed in the
    /// object storage (see [`crate::StoreError::UploadsUnconfirmed`]).
    pub confirmed_uploads: Vec<ConfirmedUpload>,
}

/// The `Idempotency-Key` of a send and a fingerprint of the request, so that a
/// key reused with a different request is refused rather than answered wrongly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub key: String,
    pub request_fingerprint: Vec<u8>,
}

/// A change to a message's content. `None` leaves a part as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MessagePatch {
    pub text: Option<Option<String>>,
    pub elements: Option<Vec<Element>>,
    pub attachments: Option<Vec<String>>,
    pub mentions: Option<Vec<UserId>>,
    pub silent: Option<bool>,
    /// As in [`NewMessage::confirmed_uploads`].
    pub confirmed_uploads: Vec<ConfirmedUpload>,
}

/// A file's upload, seen in the object storage: the file id and its size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfirmedUpload {
    pub file: String,
    pub size: u64,
}

/// Someone typing in a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Typing {
    pub user: UserId,
    pub expires_at: UnixMicros,
}

/// The wire names of a person's fields that a [`UserPatch`] may unset.
pub const USER_PROFILE_FIELDS: &[&str] = &[
    "name",
    "email",
    "phone",
    "picture",
    "locale",
    "timeZone",
    "pbxDomain",
    "pbxPort",
    "pbxExtension",
    "pbxSerial",
    "pbxUserId",
];

/// One event of a channel the person is a member of, as their live feed
/// carries it (`GET /v2/conversations/events`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonEvent {
    /// The event's id: the same one its deliveries to bots carry.
    pub id: switchboard_domain::EventId,
    pub event_type: switchboard_protocol::EventType,
    pub channel: switchboard_domain::ChannelId,
    pub channel_seq: i64,
    /// The JSON of the event's `data`, as stored (and delivered to bots).
    pub data: String,
    pub created_at: UnixMicros,
}
