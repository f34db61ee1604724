//! People and bots.

use crate::db::Db;
use async_trait::async_trait;
use switchboard_domain::{CompanyId, UserId, now_micros};
use switchboard_protocol::events::ChannelEventData;
use switchboard_protocol::{ChannelMember, EventType, MemberRole, Timestamp, User};
use switchboard_store::{
    BotProfile, Invitee, Page, StoreError, StoreResult, UserPatch, UserProfile, UserStore,
};

use crate::backend::{Backend, SqlStore};
use crate::events::{self, Recipients};
use crate::failure::Outcome;
use crate::load;
use crate::rows::{USER_COLUMNS, UserRow};

#[async_trait]
impl<B: Backend> UserStore for SqlStore<B> {
    async fn create_user(&self, company: &CompanyId, profile: UserProfile) -> StoreResult<User> {
        change!(self, (company, profile), |tx| {
            let user = insert_person(tx, company, profile).await?;
            Ok(user)
        })
    }

    async fn get_user(&self, company: &CompanyId, id: &UserId) -> StoreResult<User> {
        query!(self, (company, id), |conn| {
            live_user(conn, company, id, None).await
        })
    }

    async fn list_users(
        &self,
        company: &CompanyId,
        email: Option<&str>,
        page: Page,
    ) -> StoreResult<Vec<User>> {
        let email = email.map(str::to_owned);
        query!(self, (company, email, page), |conn| {
            let sql = format!(
                "SELECT {USER_COLUMNS} FROM users u WHERE company_id = $1 AND deleted_at IS NULL \
             AND ($2 IS NULL OR email = $3) ORDER BY created_at, id LIMIT $4 OFFSET $5"
            );
            let rows = conn
                .fetch_all::<UserRow>(
                    &sql,
                    args![
                        company.as_str(),
                        email,
                        email,
                        i64::from(page.limit),
                        i64::from(page.offset)
                    ],
                )
                .await?;
            Ok(rows.into_iter().map(UserRow::into_user).collect())
        })
    }

    async fn update_user(
        &self,
        company: &CompanyId,
        id: &UserId,
        patch: UserPatch,
    ) -> StoreResult<User> {
        change!(self, (company, id, patch), |tx| {
            // Each run of the transaction starts from the request as it came.
            let patch = patch.clone();
            let current = live_user(tx, company, id, Some(false)).await?;
            let mut profile = profile_of(&current);
            merge(&mut profile, patch.set);
            for field in &patch.unset {
                clear(&mut profile, field);
            }
            ensure_contact_free(tx, company, &profile, Some(id)).await?;
            write_profile(tx, id, &profile).await?;
            let user = load::user(tx, id.as_str()).await?;
            Ok(user)
        })
    }

    async fn invite(&self, company: &CompanyId, invitees: Vec<Invitee>) -> StoreResult<Vec<User>> {
        change!(self, (company, invitees), |tx| {
            let mut users = Vec::with_capacity(invitees.len());
            for invitee in invitees {
                users.push(find_or_create_person(tx, company, invitee).await?);
            }
            Ok(users)
        })
    }

    async fn create_bot(&self, company: &CompanyId, profile: BotProfile) -> StoreResult<User> {
        change!(self, (company, profile), |tx| {
            let id = UserId::generate();
            let now = now_micros();
            tx.execute(
                "INSERT INTO users (id, company_id, is_bot, name, picture, locale, time_zone, bot_access, \
                 bot_integration_type, bot_searchable, created_at, updated_at) \
                 VALUES ($1, $2, TRUE, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                args![
                    id.as_str(),
                    company.as_str(),
                    &profile.name,
                    &profile.picture,
                    &profile.locale,
                    &profile.time_zone,
                    &profile.access,
                    &profile.integration_type,
                    profile.searchable,
                    now,
                    now,
                ],
            )
            .await?;
            let user = load::user(tx, id.as_str()).await?;
            Ok(user)
        })
    }

    async fn list_bots(&self, company: &CompanyId) -> StoreResult<Vec<User>> {
        query!(self, (company), |conn| {
            let sql = format!(
                "SELECT {USER_COLUMNS} FROM users u WHERE company_id = $1 AND is_bot AND deleted_at IS NULL \
             ORDER BY created_at, id"
            );
            let rows = conn
                .fetch_all::<UserRow>(&sql, args![company.as_str()])
                .await?;
            Ok(rows.into_iter().map(UserRow::into_user).collect())
        })
    }

    async fn get_bot(&self, company: &CompanyId, id: &UserId) -> StoreResult<User> {
        query!(self, (company, id), |conn| {
            live_user(conn, company, id, Some(true)).await
        })
    }

    async fn replace_bot(
        &self,
        company: &CompanyId,
        id: &UserId,
        profile: BotProfile,
    ) -> StoreResult<User> {
        change!(self, (company, id, profile), |tx| {
            live_user(tx, company, id, Some(true)).await?;
            tx.execute(
                "UPDATE users SET name = $1, picture = $2, locale = $3, time_zone = $4, bot_access = $5, \
                 bot_integration_type = $6, bot_searchable = $7, updated_at = $8 WHERE id = $9",
                args![
                    &profile.name,
                    &profile.picture,
                    &profile.locale,
                    &profile.time_zone,
                    &profile.access,
                    &profile.integration_type,
                    profile.searchable,
                    now_micros(),
                    id.as_str(),
                ],
            )
                .await?;
            let user = load::user(tx, id.as_str()).await?;
            Ok(user)
        })
    }

    async fn delete_bot(&self, company: &CompanyId, id: &UserId) -> StoreResult<()> {
        change!(self, (company, id), |tx| {
            live_user(tx, company, id, Some(true)).await?;
            let now = now_micros();
            let integrations: Vec<String> = tx
                .scalars(
                    "SELECT id FROM integrations WHERE bot_id = $1 AND deleted_at IS NULL",
                    args![id.as_str()],
                )
                .await?;
            for integration in &integrations {
                crate::integrations::retire(tx, integration, now).await?;
            }
            tx.execute(
                "UPDATE credentials SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
                args![now, id.as_str()],
            )
            .await?;
            // The bot leaves its channels; the other bots there hear of it.
            let memberships: Vec<(String, String, i64)> = tx.fetch_all(
                "SELECT m.channel_id, m.role, m.joined_at FROM channel_members m \
                 JOIN channels c ON c.id = m.channel_id WHERE m.user_id = $1 AND c.deleted_at IS NULL",
                args![id.as_str()],
            )
            .await?;
            let user = load::user(tx, id.as_str()).await?;
            tx.execute(
                "DELETE FROM channel_members WHERE user_id = $1",
                args![id.as_str()],
            )
            .await?;
            tx.execute("DELETE FROM typing WHERE user_id = $1", args![id.as_str()])
                .await?;
            for (channel, role, joined_at) in memberships {
                tx.execute(
                    "UPDATE channels SET member_count = (SELECT COUNT(*) FROM channel_members WHERE channel_id = $1) \
                     WHERE id = $2",
                    args![&channel, &channel],
                )
                .await?;
                let removed = ChannelMember {
                    id: id.as_str().to_owned(),
                    created_at: Timestamp::from_unix_micros(joined_at),
                    role: MemberRole::from(role.as_str()),
                    extra: Default::default(),
                };
                events::announce(
                    tx,
                    company.as_str(),
                    &channel,
                    EventType::MemberRemoved,
                    Recipients::BotMembers,
                    |channel| ChannelEventData {
                        channel,
                        members: vec![removed],
                        users: vec![user.clone()],
                    },
                )
                .await?;
            }
            tx.execute(
                "UPDATE users SET deleted_at = $1, updated_at = $2 WHERE id = $3",
                args![now, now, id.as_str()],
            )
            .await?;
            Ok(())
        })?;
        // Its keys no longer authenticate, here or in another process.
        self.credentials_changed().await;
        Ok(())
    }
}

/// A live user of the company; `bot` narrows to bots (`Some(true)`) or people (`Some(false)`).
pub(crate) async fn live_user(
    conn: &mut impl Db,
    company: &CompanyId,
    id: &UserId,
    bot: Option<bool>,
) -> Outcome<User> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE id = $1 AND company_id = $2 AND deleted_at IS NULL \
         AND ($3 IS NULL OR is_bot = $4)"
    );
    let row = conn
        .fetch_optional::<UserRow>(&sql, args![id.as_str(), company.as_str(), bot, bot])
        .await?;
    let what = if bot == Some(true) { "bot" } else { "user" };
    row.map(UserRow::into_user)
        .ok_or_else(|| StoreError::not_found(what, id).into())
}

/// Finds a live person by email, then phone; creates one when neither matches.
pub(crate) async fn find_or_create_person(
    conn: &mut impl Db,
    company: &CompanyId,
    invitee: &Invitee,
) -> Outcome<User> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE company_id = $1 AND deleted_at IS NULL \
         AND (($2 IS NOT NULL AND email = $3) OR ($4 IS NOT NULL AND phone = $5)) \
         ORDER BY (email = $6) DESC LIMIT 1"
    );
    let found = conn
        .fetch_optional::<UserRow>(
            &sql,
            args![
                company.as_str(),
                &invitee.email,
                &invitee.email,
                &invitee.phone,
                &invitee.phone,
                &invitee.email
            ],
        )
        .await?;
    if let Some(row) = found {
        return Ok(row.into_user());
    }
    let profile = UserProfile {
        name: invitee.name.clone(),
        email: invitee.email.clone(),
        phone: invitee.phone.clone(),
        ..UserProfile::default()
    };
    insert_person(conn, company, &profile).await
}

async fn insert_person(
    conn: &mut impl Db,
    company: &CompanyId,
    profile: &UserProfile,
) -> Outcome<User> {
    ensure_contact_free(conn, company, profile, None).await?;
    let id = UserId::generate();
    let now = now_micros();
    conn.execute(
        "INSERT INTO users (id, company_id, is_bot, created_at, updated_at) VALUES ($1, $2, FALSE, $3, $4)",
        args![id.as_str(), company.as_str(), now, now],
    )
    .await?;
    write_profile(conn, &id, profile).await?;
    load::user(conn, id.as_str()).await
}

/// Conflicts when another live user of the company has the profile's email or phone.
async fn ensure_contact_free(
    conn: &mut impl Db,
    company: &CompanyId,
    profile: &UserProfile,
    except: Option<&UserId>,
) -> Outcome<()> {
    for (field, value) in [("email", &profile.email), ("phone", &profile.phone)] {
        let Some(value) = value else { continue };
        let sql = format!(
            "SELECT id FROM users WHERE company_id = $1 AND {field} = $2 AND deleted_at IS NULL AND id IS DISTINCT FROM $3"
        );
        let taken: Option<String> = conn
            .optional_scalar(
                &sql,
                args![company.as_str(), value, except.map(UserId::as_str)],
            )
            .await?;
        if let Some(other) = taken {
            return Err(StoreError::Conflict(format!(
                "{field} `{value}` already belongs to user `{other}`"
            ))
            .into());
        }
    }
    Ok(())
}

async fn write_profile(conn: &mut impl Db, id: &UserId, p: &UserProfile) -> Outcome<()> {
    conn.execute(
        "UPDATE users SET name = $1, email = $2, phone = $3, picture = $4, locale = $5, time_zone = $6, \
         pbx_domain = $7, pbx_port = $8, pbx_extension = $9, pbx_serial = $10, pbx_user_id = $11, updated_at = $12 \
         WHERE id = $13",
        args![
            &p.name,
            &p.email,
            &p.phone,
            &p.picture,
            &p.locale,
            &p.time_zone,
            &p.pbx_domain,
            &p.pbx_port,
            &p.pbx_extension,
            &p.pbx_serial,
            &p.pbx_user_id,
            now_micros(),
            id.as_str(),
        ],
    )
    .await?;
    Ok(())
}

fn profile_of(user: &User) -> UserProfile {
    UserProfile {
        name: user.name.clone(),
        email: user.email.clone(),
        phone: user.phone.clone(),
        picture: user.picture.clone(),
        locale: user.locale.clone(),
        time_zone: user.time_zone.clone(),
        pbx_domain: user.pbx_domain.clone(),
        pbx_port: user.pbx_port.clone(),
        pbx_extension: user.pbx_extension.clone(),
        pbx_serial: user.pbx_serial.clone(),
        pbx_user_id: user.pbx_user_id.clone(),
    }
}

fn merge(profile: &mut UserProfile, set: UserProfile) {
    let fields = [
        (&mut profile.name, set.name),
        (&mut profile.email, set.email),
        (&mut profile.phone, set.phone),
        (&mut profile.picture, set.picture),
        (&mut profile.locale, set.locale),
        (&mut profile.time_zone, set.time_zone),
        (&mut profile.pbx_domain, set.pbx_domain),
        (&mut profile.pbx_port, set.pbx_port),
        (&mut profile.pbx_extension, set.pbx_extension),
        (&mut profile.pbx_serial, set.pbx_serial),
        (&mut profile.pbx_user_id, set.pbx_user_id),
    ];
    for (current, new) in fields {
        if new.is_some() {
            *current = new;
        }
    }
}

fn clear(profile: &mut UserProfile, wire_name: &str) {
    let field = match wire_name {
        "name" => &mut profile.name,
        "email" => &mut profile.email,
        "phone" => &mut profile.phone,
        "picture" => &mut profile.picture,
        "locale" => &mut profile.locale,
        "timeZone" => &mut profile.time_zone,
        "pbxDomain" => &mut profile.pbx_domain,
        "pbxPort" => &mut profile.pbx_port,
        "pbxExtension" => &mut profile.pbx_extension,
        "pbxSerial" => &mut profile.pbx_serial,
        "pbxUserId" => &mut profile.pbx_user_id,
        _ => return,
    };
    *field = None;
}
