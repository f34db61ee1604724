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

#[cfg(test)]
mod tests {
    use super::*;

    const DELIVERY_STATES_BY_EQUALITY: &str =
        include_str!("../migrations/0012_delivery_states_checked_by_equality.sql");

    const QUEUE: &str = "INSERT INTO deliveries (event_id, integration_id, lane, channel_seq, state, created_at) \
                         VALUES ('evt_1', 'int_1', 'ch_1', ?1, ?2, 0)";

    fn migrated() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        apply(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO companies (id, name, created_at) VALUES ('co_1', 'Company', 0);
             INSERT INTO users (id, company_id, is_bot, name, created_at, updated_at)
                 VALUES ('usr_bot', 'co_1', 1, 'Bot', 0, 0);
             INSERT INTO integrations (id, company_id, bot_id, kind, url, secret, state, created_at, updated_at)
                 VALUES ('int_1', 'co_1', 'usr_bot', 'webhook', 'http://127.0.0.1:9/', 'sealed', 'active', 0, 0);
             INSERT INTO events (id, company_id, channel_id, channel_seq, event_type, data, created_at)
                 VALUES ('evt_1', 'co_1', NULL, NULL, 'chat:message:new', '{}', 0);",
        )
        .unwrap();
        conn
    }

    fn next_delivery_id(conn: &Connection) -> i64 {
        conn.execute(QUEUE, params![99, "pending"]).unwrap();
        conn.last_insert_rowid()
    }

    #[test]
    fn rebuilding_the_deliveries_keeps_every_row_and_never_gives_an_id_again() {
        let mut conn = migrated();
        for seq in 1..=5 {
            conn.execute(QUEUE, params![seq, "delivered"]).unwrap();
            conn.execute(
                "INSERT INTO delivery_attempts (delivery_id, attempted_at, duration_us, outcome) \
                 VALUES (?1, 0, 0, 'delivered')",
                params![conn.last_insert_rowid()],
            )
            .unwrap();
        }
        // The newest delivery pruned: its id must still not come again.
        conn.execute_batch(
            "DELETE FROM delivery_attempts WHERE delivery_id = 5; DELETE FROM deliveries WHERE id = 5;",
        )
        .unwrap();
        let rows = |conn: &Connection| -> Vec<(i64, i64, String)> {
            conn.prepare("SELECT id, channel_seq, state FROM deliveries ORDER BY id")
                .unwrap()
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let before = rows(&conn);

        let tx = conn.transaction().unwrap();
        tx.execute_batch(DELIVERY_STATES_BY_EQUALITY).unwrap();
        tx.commit().unwrap();

        assert_eq!(rows(&conn), before);
        let attempts: i64 = conn
            .query_row("SELECT COUNT(*) FROM delivery_attempts", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(attempts, 4);
        assert_eq!(next_delivery_id(&conn), 6);
        let refused = conn.execute(QUEUE, params![100, "lost"]).unwrap_err();
        assert!(
            refused.to_string().contains("CHECK constraint failed"),
            "{refused}"
        );
    }

    #[test]
    fn rebuilding_empty_deliveries_starts_their_ids_at_one() {
        let mut conn = migrated();
        let tx = conn.transaction().unwrap();
        tx.execute_batch(DELIVERY_STATES_BY_EQUALITY).unwrap();
        tx.commit().unwrap();
        assert_eq!(next_delivery_id(&conn), 1);
    }

    #[test]
    fn writing_a_delivery_builds_no_temporary_table_for_its_state_check() {
        let conn = migrated();
        for statement in [
            QUEUE,
            "UPDATE deliveries SET state = ?2, attempts = attempts + 1 WHERE id = ?1",
        ] {
            let operations: Vec<String> = conn
                .prepare(&format!("EXPLAIN {statement}"))
                .unwrap()
                .query_map(params![1, "delivered"], |row| row.get(1))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(
                !operations.iter().any(|op| op == "OpenEphemeral"),
                "{statement}: {operations:?}"
            );
        }
    }
}
