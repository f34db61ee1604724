//! Makes an empty database usable: the first company and its company key.

use secrecy::ExposeSecret;
use switchboard_domain::credentials::{self, CredentialKind, NewCredential};
use switchboard_store::{Company, CredentialOwner, NewCredentialRecord, Store};

use crate::config::BootstrapConfig;

/// What bootstrapping did.
pub enum Bootstrap {
    /// The database already had companies.
    AlreadyDone,
    /// The first company was created with the configured key.
    CreatedWithConfiguredKey(Company),
    /// The first company was created with a generated key, to be shown once.
    CreatedWithGeneratedKey(Company, NewCredential),
}

/// Creates the first company when the database has none. Instances that
/// start at once on an empty database create one company between them.
pub async fn run(store: &dyn Store, config: &BootstrapConfig) -> anyhow::Result<Bootstrap> {
    if store.company_count().await? > 0 {
        return Ok(Bootstrap::AlreadyDone);
    }
    let (key, configured) = match &config.company_key {
        Some(text) => (
            credentials::from_configured(CredentialKind::Company, text.expose_secret())?,
            true,
        ),
        None => (credentials::generate(CredentialKind::Company), false),
    };
    let Some((company, _)) = store
        .create_first_company(&config.company_name, first_key_record(&key))
        .await?
    else {
        return Ok(Bootstrap::AlreadyDone);
    };
    tracing::info!(company = %company.id, "created the first company");
    Ok(if configured {
        Bootstrap::CreatedWithConfiguredKey(company)
    } else {
        Bootstrap::CreatedWithGeneratedKey(company, key)
    })
}

/// Creates a company with the given first company key.
pub async fn create_company(
    store: &dyn Store,
    name: &str,
    key: &NewCredential,
) -> anyhow::Result<(Company, switchboard_store::CredentialInfo)> {
    Ok(store.create_company(name, first_key_record(key)).await?)
}

/// What is stored of a company's first key.
fn first_key_record(key: &NewCredential) -> NewCredentialRecord {
    key_record(CredentialOwner::Company, key, "first key")
}

/// What is stored of a new read-write credential of `owner`, named `name`.
pub fn key_record(owner: CredentialOwner, key: &NewCredential, name: &str) -> NewCredentialRecord {
    NewCredentialRecord {
        owner,
        hash: key.hash.clone(),
        last_four: key.last_four.clone(),
        name: Some(name.to_owned()),
        read_only: false,
    }
}
