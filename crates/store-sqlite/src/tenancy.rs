//! Companies and credentials.

use async_trait::async_trait;
use sqlx::SqliteConnection;
use switchboard_domain::credentials::{CredentialHash, CredentialKind};
use switchboard_domain::{CompanyId, CredentialId, Principal, PrincipalKind, UserId, now_micros};
use switchboard_protocol::Timestamp;
use switchboard_store::{
    Company, CredentialInfo, CredentialOwner, NewCredentialRecord, StoreError, StoreResult,
    TenancyStore,
};

use crate::SqliteStore;
use crate::failure::Outcome;
use switchboard_store_sql::rows::{self, CompanyRow};

#[async_trait]
impl TenancyStore for SqliteStore {
    async fn company_count(&self) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM companies")
            .fetch_one(&self.reader)
            .await
            .map_err(crate::Failure::from)?;
        Ok(count as u64)
    }

    async fn create_company(
        &self,
        name: &str,
        first_key: NewCredentialRecord,
    ) -> StoreResult<(Company, CredentialInfo)> {
        let mut tx = self.writer.begin().await.map_err(crate::Failure::from)?;
        let created = insert_company(&mut tx, name, first_key).await?;
        tx.commit().await.map_err(crate::Failure::from)?;
        Ok(created)
    }

    async fn create_first_company(
        &self,
        name: &str,
        first_key: NewCredentialRecord,
    ) -> StoreResult<Option<(Company, CredentialInfo)>> {
        // The one writer connection makes the count and the insert one step.
        let mut tx = self.writer.begin().await.map_err(crate::Failure::from)?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM companies")
            .fetch_one(&mut *tx)
            .await
            .map_err(crate::Failure::from)?;
        if count > 0 {
            return Ok(None);
        }
        let created = insert_company(&mut tx, name, first_key).await?;
        tx.commit().await.map_err(crate::Failure::from)?;
        Ok(Some(created))
    }

    async fn list_companies(&self) -> StoreResult<Vec<Company>> {
        let rows: Vec<CompanyRow> = sqlx::query_as(rows::LIST_COMPANIES)
            .fetch_all(&self.reader)
            .await
            .map_err(crate::Failure::from)?;
        Ok(rows.into_iter().map(CompanyRow::into_company).collect())
    }

    async fn get_company(&self, id: &CompanyId) -> StoreResult<Company> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT name, created_at FROM companies WHERE id = ?")
                .bind(id.as_str())
                .fetch_optional(&self.reader)
                .await
                .map_err(crate::Failure::from)?;
        let (name, created_at) = row.ok_or_else(|| StoreError::not_found("company", id))?;
        Ok(Company {
            id: id.clone(),
            name,
            created_at: Timestamp::from_unix_micros(created_at),
        })
    }

    async fn authenticate(&self, hash: &CredentialHash) -> StoreResult<Option<Principal>> {
        let row: Option<(String, String, String, Option<String>, bool)> = sqlx::query_as(
            "SELECT k.id, k.company_id, k.kind, k.user_id, k.read_only FROM credentials k \
             LEFT JOIN users u ON u.id = k.user_id \
             WHERE k.secret_hash = ? AND k.revoked_at IS NULL \
               AND (k.user_id IS NULL OR u.deleted_at IS NULL)",
        )
        .bind(&hash.0[..])
        .fetch_optional(&self.reader)
        .await
        .map_err(crate::Failure::from)?;
        let Some((id, company, kind, user, read_only)) = row else {
            return Ok(None);
        };
        let kind = match (CredentialKind::from_stored(&kind), user) {
            (Some(CredentialKind::Company), None) => PrincipalKind::Company { read_only },
            (Some(CredentialKind::Bot), Some(user)) => {
                PrincipalKind::Bot(UserId::from_stored(user))
            }
            (Some(CredentialKind::User), Some(user)) => {
                PrincipalKind::User(UserId::from_stored(user))
            }
            _ => return Ok(None),
        };
        Ok(Some(Principal {
            company: CompanyId::from_stored(company),
            credential: CredentialId::from_stored(id),
            kind,
        }))
    }

    async fn create_credential(
        &self,
        company: &CompanyId,
        record: NewCredentialRecord,
    ) -> StoreResult<CredentialInfo> {
        let mut tx = self.writer.begin().await.map_err(crate::Failure::from)?;
        if let CredentialOwner::Bot(user) | CredentialOwner::User(user) = &record.owner {
            let wants_bot = matches!(record.owner, CredentialOwner::Bot(_));
            ensure_owner(&mut tx, company, user, wants_bot).await?;
        }
        let info = insert_credential(&mut tx, company, record).await?;
        tx.commit().await.map_err(crate::Failure::from)?;
        Ok(info)
    }

    async fn list_credentials(
        &self,
        company: &CompanyId,
        owner: &CredentialOwner,
    ) -> StoreResult<Vec<CredentialInfo>> {
        let rows: Vec<(String, Option<String>, bool, String, i64)> = sqlx::query_as(
            "SELECT id, name, read_only, last_four, created_at FROM credentials \
             WHERE company_id = ? AND kind = ? AND user_id IS ? AND revoked_at IS NULL ORDER BY created_at, id",
        )
        .bind(company.as_str())
        .bind(owner.kind().as_str())
        .bind(owner_user(owner))
        .fetch_all(&self.reader)
        .await
        .map_err(crate::Failure::from)?;
        Ok(rows
            .into_iter()
            .map(
                |(id, name, read_only, last_four, created_at)| CredentialInfo {
                    id: CredentialId::from_stored(id),
                    owner: owner.clone(),
                    name,
                    read_only,
                    last_four,
                    created_at: Timestamp::from_unix_micros(created_at),
                },
            )
            .collect())
    }

    async fn revoke_credential(
        &self,
        company: &CompanyId,
        owner: &CredentialOwner,
        id: &CredentialId,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(crate::Failure::from)?;
        let found: Option<Option<i64>> = sqlx::query_scalar(
            "SELECT revoked_at FROM credentials WHERE id = ? AND company_id = ? AND kind = ? AND user_id IS ?",
        )
        .bind(id.as_str())
        .bind(company.as_str())
        .bind(owner.kind().as_str())
        .bind(owner_user(owner))
        .fetch_optional(&mut *tx)
        .await
        .map_err(crate::Failure::from)?;
        match found {
            None => return Err(StoreError::not_found("key", id)),
            Some(Some(_)) => return Ok(()),
            Some(None) => {}
        }
        if matches!(owner, CredentialOwner::Company) {
            let live: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM credentials WHERE company_id = ? AND kind = 'company' \
                 AND revoked_at IS NULL AND read_only = 0 AND id != ?",
            )
            .bind(company.as_str())
            .bind(id.as_str())
            .fetch_one(&mut *tx)
            .await
            .map_err(crate::Failure::from)?;
            if live == 0 {
                return Err(StoreError::Conflict(
                    "this is the company's last read-write company key; create another before revoking it".into(),
                ));
            }
        }
        sqlx::query("UPDATE credentials SET revoked_at = ? WHERE id = ?")
            .bind(now_micros())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(crate::Failure::from)?;
        tx.commit().await.map_err(crate::Failure::from)?;
        Ok(())
    }
}

/// A new company with its first company key.
async fn insert_company(
    conn: &mut SqliteConnection,
    name: &str,
    first_key: NewCredentialRecord,
) -> Outcome<(Company, CredentialInfo)> {
    let id = CompanyId::generate();
    let now = now_micros();
    sqlx::query("INSERT INTO companies (id, name, created_at) VALUES (?, ?, ?)")
        .bind(id.as_str())
        .bind(name)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    let key = insert_credential(conn, &id, first_key).await?;
    let company = Company {
        id,
        name: name.to_owned(),
        created_at: Timestamp::from_unix_micros(now),
    };
    Ok((company, key))
}

fn owner_user(owner: &CredentialOwner) -> Option<&str> {
    match owner {
        CredentialOwner::Company => None,
        CredentialOwner::Bot(user) | CredentialOwner::User(user) => Some(user.as_str()),
    }
}

/// Fails unless `user` is a live bot (`wants_bot`) or person of the company.
async fn ensure_owner(
    conn: &mut SqliteConnection,
    company: &CompanyId,
    user: &UserId,
    wants_bot: bool,
) -> Outcome<()> {
    let found: Option<bool> = sqlx::query_scalar(
        "SELECT is_bot FROM users WHERE id = ? AND company_id = ? AND deleted_at IS NULL",
    )
    .bind(user.as_str())
    .bind(company.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    match found {
        Some(is_bot) if is_bot == wants_bot => Ok(()),
        _ => Err(StoreError::not_found(if wants_bot { "bot" } else { "user" }, user).into()),
    }
}

pub(crate) async fn insert_credential(
    conn: &mut SqliteConnection,
    company: &CompanyId,
    record: NewCredentialRecord,
) -> Outcome<CredentialInfo> {
    let id = CredentialId::generate();
    let now = now_micros();
    sqlx::query(
        "INSERT INTO credentials (id, company_id, kind, user_id, secret_hash, last_four, name, read_only, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(id.as_str())
    .bind(company.as_str())
    .bind(record.owner.kind().as_str())
    .bind(owner_user(&record.owner))
    .bind(&record.hash.0[..])
    .bind(&record.last_four)
    .bind(&record.name)
    .bind(record.read_only)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(CredentialInfo {
        id,
        owner: record.owner,
        name: record.name,
        read_only: record.read_only,
        last_four: record.last_four,
        created_at: Timestamp::from_unix_micros(now),
    })
}
