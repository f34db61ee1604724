//! Companies and credentials.

use crate::db::Db;
use async_trait::async_trait;
use switchboard_domain::credentials::{CredentialHash, CredentialKind};
use switchboard_domain::{CompanyId, CredentialId, Principal, PrincipalKind, UserId, now_micros};
use switchboard_protocol::Timestamp;
use switchboard_store::{
    Company, CredentialInfo, CredentialOwner, NewCredentialRecord, StoreError, StoreResult,
    TenancyStore,
};

use crate::backend::{Backend, SqlStore};
use crate::failure::Outcome;
use crate::rows::{self, CompanyRow};

#[async_trait]
impl<B: Backend> TenancyStore for SqlStore<B> {
    async fn company_count(&self) -> StoreResult<u64> {
        let count: i64 = query!(self, (), |conn| conn
            .scalar("SELECT COUNT(*) FROM companies", args![])
            .await)?;
        Ok(count as u64)
    }

    async fn create_company(
        &self,
        name: &str,
        first_key: NewCredentialRecord,
    ) -> StoreResult<(Company, CredentialInfo)> {
        change!(self, (name, first_key), |tx| insert_company(
            tx,
            name,
            first_key.clone()
        )
        .await)
    }

    async fn create_first_company(
        &self,
        name: &str,
        first_key: NewCredentialRecord,
    ) -> StoreResult<Option<(Company, CredentialInfo)>> {
        // On PostgreSQL, of instances bootstrapping at once one commits and
        // the others are run again and find its company.
        change!(self, (name, first_key), |tx| {
            let count: i64 = tx.scalar("SELECT COUNT(*) FROM companies", args![]).await?;
            if count > 0 {
                return Ok(None);
            }
            Ok(Some(insert_company(tx, name, first_key.clone()).await?))
        })
    }

    async fn list_companies(&self) -> StoreResult<Vec<Company>> {
        let rows: Vec<CompanyRow> = query!(self, (), |conn| conn
            .fetch_all(rows::LIST_COMPANIES, args![])
            .await)?;
        Ok(rows.into_iter().map(CompanyRow::into_company).collect())
    }

    async fn get_company(&self, id: &CompanyId) -> StoreResult<Company> {
        let row: Option<(String, i64)> = query!(self, (id), |conn| conn
            .fetch_optional(
                "SELECT name, created_at FROM companies WHERE id = $1",
                args![id.as_str()]
            )
            .await)?;
        let (name, created_at) = row.ok_or_else(|| StoreError::not_found("company", id))?;
        Ok(Company {
            id: id.clone(),
            name,
            created_at: Timestamp::from_unix_micros(created_at),
        })
    }

    async fn authenticate(&self, hash: &CredentialHash) -> StoreResult<Option<Principal>> {
        if let Some(principal) = self.auth.get(&hash.0) {
            return Ok(Some(principal));
        }
        let changes = self.auth.changes();
        let secret_hash = hash.0.to_vec();
        let row: Option<(String, String, String, Option<String>, bool)> = self
            .backend
            .read_by_key(move |conn| {
                Box::pin(async move {
                    conn.fetch_optional(
                        "SELECT k.id, k.company_id, k.kind, k.user_id, k.read_only FROM credentials k \
                         LEFT JOIN users u ON u.id = k.user_id \
                         WHERE k.secret_hash = $1 AND k.revoked_at IS NULL \
                           AND (k.user_id IS NULL OR u.deleted_at IS NULL)",
                        args![&secret_hash],
                    )
                    .await
                })
            })
            .await?;
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
        let principal = Principal {
            company: CompanyId::from_stored(company),
            credential: CredentialId::from_stored(id),
            kind,
        };
        self.auth.keep(hash.0, principal.clone(), changes);
        Ok(Some(principal))
    }

    async fn create_credential(
        &self,
        company: &CompanyId,
        record: NewCredentialRecord,
    ) -> StoreResult<CredentialInfo> {
        change!(self, (company, record), |tx| {
            if let CredentialOwner::Bot(user) | CredentialOwner::User(user) = &record.owner {
                let wants_bot = matches!(record.owner, CredentialOwner::Bot(_));
                ensure_owner(tx, company, user, wants_bot).await?;
            }
            insert_credential(tx, company, record.clone()).await
        })
    }

    async fn list_credentials(
        &self,
        company: &CompanyId,
        owner: &CredentialOwner,
    ) -> StoreResult<Vec<CredentialInfo>> {
        let rows: Vec<(String, Option<String>, bool, String, i64)> =
            query!(self, (company, owner), |conn| conn
                .fetch_all(
                    "SELECT id, name, read_only, last_four, created_at FROM credentials \
                     WHERE company_id = $1 AND kind = $2 AND user_id IS NOT DISTINCT FROM $3 \
                       AND revoked_at IS NULL ORDER BY created_at, id",
                    args![company.as_str(), owner.kind().as_str(), owner_user(owner)],
                )
                .await)?;
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
        change!(self, (company, owner, id), |tx| {
            let found: Option<Option<i64>> = tx
                .optional_scalar(
                    "SELECT revoked_at FROM credentials WHERE id = $1 AND company_id = $2 AND kind = $3 \
                     AND user_id IS NOT DISTINCT FROM $4",
                    args![id.as_str(), company.as_str(), owner.kind().as_str(), owner_user(owner)],
                )
                .await?;
            match found {
                None => return Err(StoreError::not_found("key", id).into()),
                Some(Some(_)) => return Ok(()),
                Some(None) => {}
            }
            if matches!(owner, CredentialOwner::Company) {
                let live: i64 = tx
                    .scalar(
                        "SELECT COUNT(*) FROM credentials WHERE company_id = $1 AND kind = 'company' \
                         AND revoked_at IS NULL AND NOT read_only AND id != $2",
                        args![company.as_str(), id.as_str()],
                    )
                    .await?;
                if live == 0 {
                    return Err(StoreError::Conflict(
                        "this is the company's last read-write company key; create another before revoking it".into(),
                    )
                    .into());
                }
            }
            tx.execute(
                "UPDATE credentials SET revoked_at = $1 WHERE id = $2",
                args![now_micros(), id.as_str()],
            )
            .await?;
            Ok(())
        })?;
        self.credentials_changed().await;
        Ok(())
    }
}

/// A new company with its first company key.
async fn insert_company(
    conn: &mut impl Db,
    name: &str,
    first_key: NewCredentialRecord,
) -> Outcome<(Company, CredentialInfo)> {
    let id = CompanyId::generate();
    let now = now_micros();
    conn.execute(
        "INSERT INTO companies (id, name, created_at) VALUES ($1, $2, $3)",
        args![id.as_str(), name, now],
    )
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
    conn: &mut impl Db,
    company: &CompanyId,
    user: &UserId,
    wants_bot: bool,
) -> Outcome<()> {
    let found: Option<bool> = conn
        .optional_scalar(
            "SELECT is_bot FROM users WHERE id = $1 AND company_id = $2 AND deleted_at IS NULL",
            args![user.as_str(), company.as_str()],
        )
        .await?;
    match found {
        Some(is_bot) if is_bot == wants_bot => Ok(()),
        _ => Err(StoreError::not_found(if wants_bot { "bot" } else { "user" }, user).into()),
    }
}

pub(crate) async fn insert_credential(
    conn: &mut impl Db,
    company: &CompanyId,
    record: NewCredentialRecord,
) -> Outcome<CredentialInfo> {
    let id = CredentialId::generate();
    let now = now_micros();
    conn.execute(
        "INSERT INTO credentials (id, company_id, kind, user_id, secret_hash, last_four, name, read_only, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        args![
            id.as_str(),
            company.as_str(),
            record.owner.kind().as_str(),
            owner_user(&record.owner),
            &record.hash.0[..],
            &record.last_four,
            &record.name,
            record.read_only,
            now,
        ],
    )
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
