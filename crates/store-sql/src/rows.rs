//! Rows as read from the tables, and their wire form.

use switchboard_protocol::{Channel, ChannelMember, MemberRole, Timestamp, User};

/// Every company, oldest first, as [`CompanyRow`]s.
pub const LIST_COMPANIES: &str =
    "SELECT id, name, created_at FROM companies ORDER BY created_at, id";

stored_row! {
pub struct CompanyRow {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}
}

impl CompanyRow {
    pub fn into_company(self) -> switchboard_store::Company {
        switchboard_store::Company {
            id: switchboard_domain::CompanyId::from_stored(self.id),
            name: self.name,
            created_at: Timestamp::from_unix_micros(self.created_at),
        }
    }
}

/// The columns of `users u` that [`UserRow`] reads.
pub const USER_COLUMNS: &str = "u.id, u.company_id, u.is_bot, u.name, u.email, u.phone, u.picture, \
     u.locale, u.time_zone, u.pbx_domain, u.pbx_port, u.pbx_extension, u.pbx_serial, u.pbx_user_id, \
     u.bot_access, u.bot_integration_type, u.bot_searchable, u.created_at, u.updated_at";

stored_row! {
pub struct UserRow {
    pub id: String,
    pub company_id: String,
    pub is_bot: bool,
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
    pub bot_access: Option<String>,
    pub bot_integration_type: Option<String>,
    pub bot_searchable: Option<bool>,
    pub created_at: i64,
    pub updated_at: i64,
}
}

impl UserRow {
    pub fn into_user(self) -> User {
        User {
            id: self.id,
            name: self.name,
            email: self.email,
            phone: self.phone,
            picture: self.picture,
            locale: self.locale,
            time_zone: self.time_zone,
            company: Some(self.company_id),
            bot: self.is_bot,
            pbx_domain: self.pbx_domain,
            pbx_port: self.pbx_port,
            pbx_extension: self.pbx_extension,
            pbx_serial: self.pbx_serial,
            pbx_user_id: self.pbx_user_id,
            access: self.bot_access,
            integration_type: self.bot_integration_type,
            searchable: self.bot_searchable,
            created_at: Timestamp::from_unix_micros(self.created_at),
            updated_at: Timestamp::from_unix_micros(self.updated_at),
            extra: Default::default(),
        }
    }
}

/// The columns of `channels` that [`ChannelRow`] reads.
pub const CHANNEL_COLUMNS: &str = "c.id, c.company_id, c.channel_type, c.subject, c.description, c.access, \
     c.service, c.service_title, c.broadcast, c.external, c.member_count, c.created_at, c.updated_at";

stored_row! {
#[derive(Clone)]
pub struct ChannelRow {
    pub id: String,
    pub company_id: String,
    pub channel_type: String,
    pub subject: Option<String>,
    pub description: Option<String>,
    pub access: String,
    pub service: Option<String>,
    pub service_title: Option<String>,
    pub broadcast: bool,
    pub external: bool,
    pub member_count: i64,
    pub created_at: i64,
    pub updated_at: i64,
}
}

impl ChannelRow {
    pub fn into_channel(self) -> Channel {
        Channel {
            channel_id: self.id,
            channel_type: self.channel_type.as_str().into(),
            member_count: self.member_count.max(0) as u64,
            subject: self.subject,
            description: self.description,
            access: self.access.as_str().into(),
            company: self.company_id,
            service: self.service,
            service_title: self.service_title,
            broadcast: self.broadcast,
            external: self.external,
            created_at: Timestamp::from_unix_micros(self.created_at),
            updated_at: Timestamp::from_unix_micros(self.updated_at),
            extra: Default::default(),
        }
    }

    pub fn is_direct(&self) -> bool {
        self.channel_type == "direct"
    }
}

stored_row! {
pub struct MemberRow {
    pub user_id: String,
    pub role: String,
    pub joined_at: i64,
}
}

impl MemberRow {
    pub fn into_member(self) -> ChannelMember {
        ChannelMember {
            id: self.user_id,
            created_at: Timestamp::from_unix_micros(self.joined_at),
            role: MemberRole::from(self.role.as_str()),
            extra: Default::default(),
        }
    }
}

/// The columns of `messages` that [`MessageRow`] reads.
pub const MESSAGE_COLUMNS: &str = "id, channel_id, user_id, message_type, text, elements, attachments, \
     mentions, quote, silent, created_at, updated_at, deleted_at";

stored_row! {
#[derive(Clone)]
pub struct MessageRow {
    pub id: String,
    pub channel_id: String,
    pub user_id: String,
    pub message_type: String,
    pub text: Option<String>,
    pub elements: String,
    pub attachments: String,
    pub mentions: String,
    pub quote: Option<String>,
    pub silent: bool,
    pub created_at: i64,
    pub updated_at: Option<i64>,
    pub deleted_at: Option<i64>,
}
}
