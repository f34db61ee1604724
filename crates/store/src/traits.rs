//! The storage traits. A backend implements all of them; the API holds one
//! `Arc<dyn Store>`.

use async_trait::async_trait;
use switchboard_domain::credentials::CredentialHash;
use switchboard_domain::{
    Actor, ChannelId, CompanyId, CredentialId, MessageId, Principal, UnixMicros, UserId,
};
use switchboard_protocol::{Channel, Message, User};

use crate::delivery::{DeliveryStore, IntegrationStore};
use crate::error::StoreResult;
use crate::files::FileStore;
use crate::model::*;

/// Companies and credentials.
#[async_trait]
pub trait TenancyStore: Send + Sync {
    /// How many companies exist (bootstrapping happens on zero).
    async fn company_count(&self) -> StoreResult<u64>;

    /// Creates a company with its first company key.
    async fn create_company(
        &self,
        name: &str,
        first_key: NewCredentialRecord,
    ) -> StoreResult<(Company, CredentialInfo)>;

    /// Creates a company with its first company key only when the database
    /// has no company yet (bootstrapping); `None` when one exists — also when
    /// another instance created one at the same moment.
    async fn create_first_company(
        &self,
        name: &str,
        first_key: NewCredentialRecord,
    ) -> StoreResult<Option<(Company, CredentialInfo)>>;

    /// Every company, oldest first (for operators at the command line).
    async fn list_companies(&self) -> StoreResult<Vec<Company>>;

    /// The company with this id.
    async fn get_company(&self, id: &CompanyId) -> StoreResult<Company>;

    /// The principal a presented credential stands for; `None` when it is
    /// unknown or revoked, or its owner was deleted.
    async fn authenticate(&self, hash: &CredentialHash) -> StoreResult<Option<Principal>>;

    /// Stores a new credential. The owner must exist in the company: a bot for
    /// bot keys, a person for user tokens.
    async fn create_credential(
        &self,
        company: &CompanyId,
        record: NewCredentialRecord,
    ) -> StoreResult<CredentialInfo>;

    /// The live credentials of an owner.
    async fn list_credentials(
        &self,
        company: &CompanyId,
        owner: &CredentialOwner,
    ) -> StoreResult<Vec<CredentialInfo>>;

    /// Revokes a credential of this owner; revoking twice is not an error.
    async fn revoke_credential(
        &self,
        company: &CompanyId,
        owner: &CredentialOwner,
        id: &CredentialId,
    ) -> StoreResult<()>;
}

/// People and bots.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates a person. An email or phone already used in the company is a conflict.
    async fn create_user(&self, company: &CompanyId, profile: UserProfile) -> StoreResult<User>;

    /// A person or bot of the company.
    async fn get_user(&self, company: &CompanyId, id: &UserId) -> StoreResult<User>;

    /// People and bots of the company, optionally only the one with this
    /// normalised email, by creation.
    async fn list_users(
        &self,
        company: &CompanyId,
        email: Option<&str>,
        page: Page,
    ) -> StoreResult<Vec<User>>;

    /// Changes a person's profile.
    async fn update_user(
        &self,
        company: &CompanyId,
        id: &UserId,
        patch: UserPatch,
    ) -> StoreResult<User>;

    /// Finds each invitee by email (then phone) or creates them, in order.
    async fn invite(&self, company: &CompanyId, invitees: Vec<Invitee>) -> StoreResult<Vec<User>>;

    /// Creates a bot.
    async fn create_bot(&self, company: &CompanyId, profile: BotProfile) -> StoreResult<User>;

    /// The company's bots, by creation.
    async fn list_bots(&self, company: &CompanyId) -> StoreResult<Vec<User>>;

    /// One bot (a person's id is not found here).
    async fn get_bot(&self, company: &CompanyId, id: &UserId) -> StoreResult<User>;

    /// Replaces a bot's profile.
    async fn replace_bot(
        &self,
        company: &CompanyId,
        id: &UserId,
        profile: BotProfile,
    ) -> StoreResult<User>;

    /// Deletes a bot, revokes its keys and removes it from its channels.
    async fn delete_bot(&self, company: &CompanyId, id: &UserId) -> StoreResult<()>;
}

/// Channels, members and typing.
#[async_trait]
pub trait ChannelStore: Send + Sync {
    /// Creates a group channel with the actor as owner.
    async fn create_channel(
        &self,
        actor: &Actor,
        channel: NewChannel,
    ) -> StoreResult<ChannelDetails>;

    /// The direct channel of the actor and the peer, created on first use.
    async fn direct_channel(&self, actor: &Actor, peer: DirectPeer) -> StoreResult<ChannelDetails>;

    /// The actor's channels, latest activity first.
    async fn list_channels(&self, actor: &Actor, page: Page) -> StoreResult<Vec<Channel>>;

    /// A channel of which the actor is a member.
    async fn get_channel(&self, actor: &Actor, channel: &ChannelId) -> StoreResult<ChannelDetails>;

    /// Changes a channel's settings.
    async fn update_channel(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        patch: ChannelPatch,
    ) -> StoreResult<Channel>;

    /// Deletes a channel (moderators only); deleting it again is not an error.
    async fn delete_channel(&self, actor: &Actor, channel: &ChannelId) -> StoreResult<()>;

    /// The members of a channel.
    async fn list_members(&self, actor: &Actor, channel: &ChannelId) -> StoreResult<Members>;

    /// Adds members of the company and invitees; members already there stay as they are.
    async fn add_members(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        members: Vec<UserId>,
        invitees: Vec<Invitee>,
        silent: bool,
    ) -> StoreResult<Members>;

    /// Removes a member (the actor themself, or anyone for moderators).
    async fn remove_member(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        member: &UserId,
    ) -> StoreResult<()>;

    /// Shows the actor as typing until `expires_at` (or their next message).
    async fn start_typing(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        expires_at: UnixMicros,
    ) -> StoreResult<()>;

    /// Stops the actor's typing indicator.
    async fn stop_typing(&self, actor: &Actor, channel: &ChannelId) -> StoreResult<()>;

    /// Who is typing in the channel at `now`.
    async fn list_typing(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        now: UnixMicros,
    ) -> StoreResult<Vec<Typing>>;

    /// The events of the channels the actor is a member of now, and each
    /// `chat:member:removed` that took the actor out of a channel, recorded
    /// at or after `since`, oldest first, at most `limit`; events meant for
    /// one bot only (`chat:message:action`) are left out. What a person's
    /// live feed reads.
    async fn person_events(
        &self,
        actor: &Actor,
        since: UnixMicros,
        limit: u32,
    ) -> StoreResult<Vec<PersonEvent>>;
}

/// Messages, reactions and buttons.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Sends a message as the actor. With an idempotency record, a repeat of
    /// the same key by the same actor within 24 h returns the first message.
    async fn send_message(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        message: NewMessage,
        idempotency: Option<IdempotencyRecord>,
    ) -> StoreResult<Message>;

    /// Messages of a channel, newest first.
    async fn list_messages(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        page: Page,
    ) -> StoreResult<Vec<Message>>;

    /// One message.
    async fn get_message(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        message: &MessageId,
    ) -> StoreResult<Message>;

    /// Changes a message's content (author only). A change to the same content
    /// changes nothing, `updatedAt` included.
    async fn update_message(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        message: &MessageId,
        patch: MessagePatch,
    ) -> StoreResult<Message>;

    /// Deletes a message (author or moderators); again is not an error.
    async fn delete_message(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        message: &MessageId,
    ) -> StoreResult<()>;

    /// Adds the actor's reaction; adding it again changes nothing.
    async fn add_reaction(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        message: &MessageId,
        reaction: &str,
    ) -> StoreResult<Message>;

    /// Removes the actor's reaction; removing an absent one changes nothing.
    async fn remove_reaction(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        message: &MessageId,
        reaction: &str,
    ) -> StoreResult<Message>;

    /// Records that the actor pressed the button whose handler is `{action: {id}}`.
    async fn press_button(
        &self,
        actor: &Actor,
        channel: &ChannelId,
        message: &MessageId,
        action_id: &str,
    ) -> StoreResult<()>;
}

/// Housekeeping and health.
#[async_trait]
pub trait MaintenanceStore: Send + Sync {
    /// Answers when the database is reachable.
    async fn ping(&self) -> StoreResult<()>;

    /// Forgets idempotency keys and typing indicators that expired before `now`.
    /// Returns how many rows went.
    async fn purge_expired(&self, now: UnixMicros) -> StoreResult<u64>;
}

/// Everything a backend provides.
pub trait Store:
    TenancyStore
    + UserStore
    + ChannelStore
    + MessageStore
    + FileStore
    + IntegrationStore
    + DeliveryStore
    + MaintenanceStore
    + crate::RetentionStore
{
}

impl<T> Store for T where
    T: TenancyStore
        + UserStore
        + ChannelStore
        + MessageStore
        + FileStore
        + IntegrationStore
        + DeliveryStore
        + MaintenanceStore
        + crate::RetentionStore
{
}
