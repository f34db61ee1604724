//! The operator's commands that work on the database directly (the data
//! directory's SQLite file, or the PostgreSQL database of `database.url`),
//! with no server running: migrations and companies. Each returns what to
//! print.

use anyhow::Context;
use switchboard_domain::CompanyId;
use switchboard_domain::credentials::{self, CredentialKind};
use switchboard_store::CredentialOwner;

use crate::app::{self, Database, Purpose};
use crate::bootstrap;
use crate::config::Config;

/// `switchboard migrate`.
pub async fn migrate(config: &Config) -> anyhow::Result<String> {
    let database = app::open_database(config, Purpose::Migrate).await?;
    database.close().await;
    Ok(match database {
        Database::Postgres(_) => "migrations applied to the PostgreSQL database".to_owned(),
        Database::Sqlite(_) => format!("migrations applied to {}", config.sqlite_path().display()),
    })
}

/// `switchboard company list`: one line per company.
pub async fn list_companies(config: &Config) -> anyhow::Result<String> {
    let database = app::open_database(config, Purpose::Use).await?;
    let companies = database.store().list_companies().await;
    database.close().await;
    let companies = companies.context("could not list the companies")?;
    if companies.is_empty() {
        return Ok(
            "no company yet: `switchboard serve` creates the first, or `switchboard company create`"
                .to_owned(),
        );
    }
    Ok(companies
        .iter()
        .map(|company| {
            format!(
                "{}  {}  (created {})",
                company.id,
                company.name,
                company.created_at.as_str()
            )
        })
        .collect::<Vec<_>>()
        .join("\n"))
}

/// `switchboard company create`.
pub async fn create_company(config: &Config, name: &str) -> anyhow::Result<String> {
    let name = name.trim();
    anyhow::ensure!(!name.is_empty(), "--name must not be empty");
    let database = app::open_database(config, Purpose::Use).await?;
    let key = credentials::generate(CredentialKind::Company);
    let created = bootstrap::create_company(database.store().as_ref(), name, &key).await;
    database.close().await;
    let (company, _) = created.context("could not create the company")?;
    Ok(format!(
        "company {} ({})\ncompany key (shown once, keep it): {}",
        company.id,
        company.name,
        key.reveal()
    ))
}

/// `switchboard company new-key`: another company key for an existing
/// company — the way back in when every key was lost.
pub async fn new_company_key(
    config: &Config,
    company: Option<&str>,
    name: &str,
) -> anyhow::Result<String> {
    let database = app::open_database(config, Purpose::Use).await?;
    let store = database.store();
    let made = async {
        let company = match company {
            Some(id) => store
                .get_company(&CompanyId::from_stored(id.trim().to_owned()))
                .await
                .with_context(|| format!("no company {id} (see `switchboard company list`)"))?,
            None => {
                let mut companies = store.list_companies().await?;
                match companies.len() {
                    0 => anyhow::bail!(
                        "the database has no company yet: `switchboard serve` creates the first"
                    ),
                    1 => companies.remove(0),
                    count => anyhow::bail!(
                        "the database holds {count} companies: say which with --company ID \
                         (see `switchboard company list`)"
                    ),
                }
            }
        };
        let key = credentials::generate(CredentialKind::Company);
        let record = bootstrap::key_record(CredentialOwner::Company, &key, name);
        let info = store
            .create_credential(&company.id, record)
            .await
            .context("could not store the new key")?;
        anyhow::Ok(format!(
            "new company key {} for {} ({}), shown once, keep it:\n\n  {}\n",
            info.id,
            company.id,
            company.name,
            key.reveal()
        ))
    }
    .await;
    database.close().await;
    made
}
