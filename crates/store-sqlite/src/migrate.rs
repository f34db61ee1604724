//! The embedded migrations, applied at open.
//!
//! Applied migrations are recorded in `_sqlx_migrations`, the table and
//! checksums of the migrator earlier switchboard releases used, so a database
//! file made by any release opens with this one. A database that has applied
//! a migration this build does not know (written by a newer switchboard), or
//! one that differs from this build's, or one that failed part way, is
//! refused with a message that says so.

use std::time::Instant;

use rusqlite::{Connection, params};

/// The embedded migrations, in order.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Why the database file was refused.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(
        "the database has migrations {0:?} that this build does not know (written by a newer switchboard?); \
         run that version, or restore a matching backup"
    )]
    Unknown(Vec<i64>),
    #[error(
        "migration {0} in the database differs from this build's (edited after it was applied?)"
    )]
    Changed(i64),
    #[error("migration {0} failed part way when it was applied; restore a backup")]
    Dirty(i64),
    #[error("migration {version} ({description}) failed: {source}")]
    Failed {
        version: i64,
        description: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error(transparent)]
    Database(#[from] rusqlite::Error),
}

/// Applies the migrations `conn`'s database lacks, each in a transaction.
pub fn apply(conn: &mut Connection) -> Result<(), MigrationError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            success BOOLEAN NOT NULL,
            checksum BLOB NOT NULL,
            execution_time BIGINT NOT NULL
        );",
    )?;
    let applied: Vec<(i64, bool, Vec<u8>)> = conn
        .prepare("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let known = || {
        MIGRATOR
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
    };
    let unknown: Vec<i64> = applied
        .iter()
        .map(|(version, ..)| *version)
        .filter(|version| !known().any(|m| m.version == *version))
        .collect();
    if !unknown.is_empty() {
        return Err(MigrationError::Unknown(unknown));
    }
    for migration in known() {
        match applied
            .iter()
            .find(|(version, ..)| *version == migration.version)
        {
            Some((_, false, _)) => return Err(MigrationError::Dirty(migration.version)),
            Some((_, true, checksum)) if **checksum != *migration.checksum => {
                return Err(MigrationError::Changed(migration.version));
            }
            Some(_) => {}
            None => {
                let started = Instant::now();
                let tx = conn.transaction()?;
                tx.execute_batch(&migration.sql)
                    .map_err(|source| MigrationError::Failed {
                        version: migration.version,
                        description: migration.description.to_string(),
                        source,
                    })?;
                tx.execute(
                    "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                     VALUES (?1, ?2, TRUE, ?3, ?4)",
                    params![
                        migration.version,
                        &*migration.description,
                        &*migration.checksum,
                        started.elapsed().as_nanos() as i64
                    ],
                )?;
                tx.commit()?;
            }
        }
    }
    Ok(())
}
