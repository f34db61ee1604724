//! People and bots.

use async_trait::async_trait;
use sqlx::SqliteConnection;
use switchboard_domain::{CompanyId, UserId, now_micros};
use switchboard_protocol::events::ChannelEventData;
use switchboard_protocol::{ChannelMember, EventType, MemberRole, Timestamp, User};
use switchboard_store::{
    BotProfile, Invitee, Page, StoreError, StoreResult, UserPatch, UserProfile, UserStore,
};

use crate::SqliteStore;
use crate::events::{self, Recipients};
use crate::failure::{Failure, Outcome};
use crate::load;
use crate::rows::{USER_COLUMNS, UserRow};

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, company: &CompanyId, profile: UserProfile) -> StoreResult<User> {
        let mut tx = self.writer.begin().await.map_err(Failure::from)?;
        let user = insert_person(&mut tx, company, &profile).await?;
        tx.commit().await.map_err(Failure::from)?;
        Ok(user)
    }

    async fn get_user(&self, company: &CompanyId, id: &UserId) -> StoreResult<User> {
        let mut conn = self.reader.acquire().await.map_err(Failure::from)?;
        Ok(live_user(&mut conn, company, id, None).await?)
    }

    async fn list_users(
        &self,
        company: &CompanyId,
        email: Option<&str>,
        page: Page,
    ) -> StoreResult<Vec<User>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE company_id = ? AND deleted_at IS NULL \
             AND (? IS NULL OR email = ?) ORDER BY created_at, id LIMIT ? OFFSET ?"
        );
        let rows = sqlx::query_as::<_, UserRow>(&sql)
            .bind(company.as_str())
            .bind(email)
            .bind(email)
            .bind(page.limit)
            .bind(page.offset)
            .fetch_all(&self.reader)
            .await
            .map_err(Failure::from)?;
        Ok(rows.into_iter().map(UserRow::into_user).collect())
    }

    async fn update_user(
        &self,
        company: &CompanyId,
        id: &UserId,
        patch: UserPatch,
    ) -> StoreResult<User> {
        let mut tx = self.writer.begin().await.map_err(Failure::from)?;
        let current = live_user(&mut tx, company, id, Some(false)).await?;
        let mut profile = profile_of(&current);
        merge(&mut profile, patch.set);
        for field in &patch.unset {
            clear(&mut profile, field);
        }
        ensure_contact_free(&mut tx, company, &profile, Some(id)).await?;
        write_profile(&mut tx, id, &profile).await?;
        let user = load::user(&mut tx, id.as_str()).await?;
        tx.commit().await.map_err(Failure::from)?;
        Ok(user)
    }

    async fn invite(&self, company: &CompanyId, invitees: Vec<Invitee>) -> StoreResult<Vec<User>> {
        let mut tx = self.writer.begin().await.map_err(Failure::from)?;
        let mut users = Vec::with_capacity(invitees.len());
        for invitee in &invitees {
            users.push(find_or_create_person(&mut tx, company, invitee).await?);
        }
        tx.commit().await.map_err(Failure::from)?;
        Ok(users)
    }

    async fn create_bot(&self, company: &CompanyId, profile: BotProfile) -> StoreResult<User> {
        let mut tx = self.writer.begin().await.map_err(Failure::from)?;
        let id = UserId::generate();
        let now = now_micros();
        sqlx::query(
            "INSERT INTO users (id, company_id, is_bot, name, picture, locale, time_zone, bot_access, \
             bot_integration_type, bot_searchable, created_at, updated_at) \
             VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.as_str())
        .bind(company.as_str())
        .bind(&profile.name)
        .bind(&profile.picture)
        .bind(&profile.locale)
        .bind(&profile.time_zone)
        .bind(&profile.access)
        .bind(&profile.integration_type)
        .bind(profile.searchable)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(Failure::from)?;
        let user = load::user(&mut tx, id.as_str()).await?;
        tx.commit().await.map_err(Failure::from)?;
        Ok(user)
    }

    async fn list_bots(&self, company: &CompanyId) -> StoreResult<Vec<User>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE company_id = ? AND is_bot = 1 AND deleted_at IS NULL \
             ORDER BY created_at, id"
        );
        let rows = sqlx::query_as::<_, UserRow>(&sql)
            .bind(company.as_str())
            .fetch_all(&self.reader)
            .await
            .map_err(Failure::from)?;
        Ok(rows.into_iter().map(UserRow::into_user).collect())
    }

    async fn get_bot(&self, company: &CompanyId, id: &UserId) -> StoreResult<User> {
        let mut conn = self.reader.acquire().await.map_err(Failure::from)?;
        Ok(live_user(&mut conn, company, id, Some(true)).await?)
    }

    async fn replace_bot(
        &self,
        company: &CompanyId,
        id: &UserId,
        profile: BotProfile,
    ) -> StoreResult<User> {
        let mut tx = self.writer.begin().await.map_err(Failure::from)?;
        live_user(&mut tx, company, id, Some(true)).await?;
        sqlx::query(
            "UPDATE users SET name = ?, picture = ?, locale = ?, time_zone = ?, bot_access = ?, \
             bot_integration_type = ?, bot_searchable = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&profile.name)
        .bind(&profile.picture)
        .bind(&profile.locale)
        .bind(&profile.time_zone)
        .bind(&profile.access)
        .bind(&profile.integration_type)
        .bind(profile.searchable)
        .bind(now_micros())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(Failure::from)?;
        let user = load::user(&mut tx, id.as_str()).await?;
        tx.commit().await.map_err(Failure::from)?;
        Ok(user)
    }

    async fn delete_bot(&self, company: &CompanyId, id: &UserId) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(Failure::from)?;
        live_user(&mut tx, company, id, Some(true)).await?;
        let now = now_micros();
        let integrations: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM integrations WHERE bot_id = ? AND deleted_at IS NULL",
        )
        .bind(id.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(Failure::from)?;
        for integration in &integrations {
            crate::integrations::retire(&mut tx, integration, now).await?;
        }
        sqlx::query(
            "UPDATE credentials SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(Failure::from)?;
        // The bot leaves its channels; the other bots there hear of it.
        let memberships: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT m.channel_id, m.role, m.joined_at FROM channel_members m \
             JOIN channels c ON c.id = m.channel_id WHERE m.user_id = ? AND c.deleted_at IS NULL",
        )
        .bind(id.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(Failure::from)?;
        let user = load::user(&mut tx, id.as_str()).await?;
        sqlx::query("DELETE FROM channel_members WHERE user_id = ?")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(Failure::from)?;
        sqlx::query("DELETE FROM typing WHERE user_id = ?")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(Failure::from)?;
        let mut queued = false;
        for (channel, role, joined_at) in memberships {
            sqlx::query(
                "UPDATE channels SET member_count = (SELECT COUNT(*) FROM channel_members WHERE channel_id = ?) \
                 WHERE id = ?",
            )
            .bind(&channel)
            .bind(&channel)
            .execute(&mut *tx)
            .await
            .map_err(Failure::from)?;
            let removed = ChannelMember {
                id: id.as_str().to_owned(),
                created_at: Timestamp::from_unix_micros(joined_at),
                role: MemberRole::from(role.as_str()),
                extra: Default::default(),
            };
            queued |= events::announce(
                &mut tx,
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
        sqlx::query("UPDATE users SET deleted_at = ?, updated_at = ? WHERE id = ?")
            .bind(now)
            .bind(now)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(Failure::from)?;
        tx.commit().await.map_err(Failure::from)?;
        self.wake_workers_if(queued);
        Ok(())
    }
}

/// A live user of the company; `bot` narrows to bots (`Some(true)`) or people (`Some(false)`).
pub(crate) async fn live_user(
    conn: &mut SqliteConnection,
    company: &CompanyId,
    id: &UserId,
    bot: Option<bool>,
) -> Outcome<User> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = ? AND company_id = ? AND deleted_at IS NULL \
         AND (? IS NULL OR is_bot = ?)"
    );
    let row = sqlx::query_as::<_, UserRow>(&sql)
        .bind(id.as_str())
        .bind(company.as_str())
        .bind(bot)
        .bind(bot)
        .fetch_optional(&mut *conn)
        .await?;
    let what = if bot == Some(true) { "bot" } else { "user" };
    row.map(UserRow::into_user)
        .ok_or_else(|| StoreError::not_found(what, id).into())
}

/// Finds a live person by email, then phone; creates one when neither matches.
pub(crate) async fn find_or_create_person(
    conn: &mut SqliteConnection,
    company: &CompanyId,
    invitee: &Invitee,
) -> Outcome<User> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users WHERE company_id = ? AND deleted_at IS NULL \
         AND ((? IS NOT NULL AND email = ?) OR (? IS NOT NULL AND phone = ?)) \
         ORDER BY (email = ?) DESC LIMIT 1"
    );
    let found = sqlx::query_as::<_, UserRow>(&sql)
        .bind(company.as_str())
        .bind(&invitee.email)
        .bind(&invitee.email)
        .bind(&invitee.phone)
        .bind(&invitee.phone)
        .bind(&invitee.email)
        .fetch_optional(&mut *conn)
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
    conn: &mut SqliteConnection,
    company: &CompanyId,
    profile: &UserProfile,
) -> Outcome<User> {
    ensure_contact_free(conn, company, profile, None).await?;
    let id = UserId::generate();
    let now = now_micros();
    sqlx::query(
        "INSERT INTO users (id, company_id, is_bot, created_at, updated_at) VALUES (?, ?, 0, ?, ?)",
    )
    .bind(id.as_str())
    .bind(company.as_str())
    .bind(now)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    write_profile(conn, &id, profile).await?;
    load::user(conn, id.as_str()).await
}

/// Conflicts when another live user of the company has the profile's email or phone.
async fn ensure_contact_free(
    conn: &mut SqliteConnection,
    company: &CompanyId,
    profile: &UserProfile,
    except: Option<&UserId>,
) -> Outcome<()> {
    for (field, value) in [("email", &profile.email), ("phone", &profile.phone)] {
        let Some(value) = value else { continue };
        let sql = format!(
            "SELECT id FROM users WHERE company_id = ? AND {field} = ? AND deleted_at IS NULL AND id IS NOT ?"
        );
        let taken: Option<String> = sqlx::query_scalar(&sql)
            .bind(company.as_str())
            .bind(value)
            .bind(except.map(UserId::as_str))
            .fetch_optional(&mut *conn)
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

async fn write_profile(conn: &mut SqliteConnection, id: &UserId, p: &UserProfile) -> Outcome<()> {
    sqlx::query(
        "UPDATE users SET name = ?, email = ?, phone = ?, picture = ?, locale = ?, time_zone = ?, \
         pbx_domain = ?, pbx_port = ?, pbx_extension = ?, pbx_serial = ?, pbx_user_id = ?, updated_at = ? \
         WHERE id = ?",
    )
    .bind(&p.name)
    .bind(&p.email)
    .bind(&p.phone)
    .bind(&p.picture)
    .bind(&p.locale)
    .bind(&p.time_zone)
    .bind(&p.pbx_domain)
    .bind(&p.pbx_port)
    .bind(&p.pbx_extension)
    .bind(&p.pbx_serial)
    .bind(&p.pbx_user_id)
    .bind(now_micros())
    .bind(id.as_str())
    .execute(&mut *conn)
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
