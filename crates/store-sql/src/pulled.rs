//! Pull integrations, the side their consumers see: which handed-out
//! deliveries belong to a bot (for acknowledgements) and the log of each
//! hand-out. Claims are the backend's, as for the workers.

use switchboard_store::{DeliveryState, PulledDelivery};

use crate::db::Db;
use crate::failure::Outcome;
use crate::integration_rows::claim_rows;

/// These deliveries of the bot's pull integrations, as they are now.
pub(crate) async fn deliveries(
    conn: &mut impl Db,
    company: &str,
    bot: &str,
    ids: &[i64],
) -> Outcome<Vec<PulledDelivery>> {
    let states: Vec<(i64, String)> = conn
        .fetch_all(
            "SELECT d.id, d.state FROM deliveries d JOIN integrations i ON i.id = d.integration_id \
             WHERE d.id = ANY($1) AND i.company_id = $2 AND i.bot_id = $3 AND i.kind = 'pull' \
             ORDER BY d.id",
            args![ids.to_vec(), company, bot],
        )
        .await?;
    if states.is_empty() {
        return Ok(Vec::new());
    }
    let rows = claim_rows(conn, states.iter().map(|(id, _)| *id).collect()).await?;
    let now = switchboard_domain::now_micros();
    rows.into_iter()
        .zip(states)
        .map(|(row, (_, state))| {
            Ok(PulledDelivery {
                claimed: row.into_claimed(0, now)?,
                state: DeliveryState::from_stored(&state),
            })
        })
        .collect()
}

/// Logs a `fetched` attempt for each delivery; how many fetches each had before.
pub(crate) async fn log_fetches(conn: &mut impl Db, ids: &[i64], at: i64) -> Outcome<Vec<u32>> {
    let mut before = Vec::with_capacity(ids.len());
    for id in ids {
        let fetched: i64 = conn
            .scalar(
                "SELECT COUNT(*) FROM delivery_attempts WHERE delivery_id = $1 AND outcome = 'fetched'",
                args![*id],
            )
            .await?;
        conn.execute(
            "INSERT INTO delivery_attempts (delivery_id, attempted_at, duration_us, outcome) \
             VALUES ($1, $2, 0, 'fetched')",
            args![*id, at],
        )
        .await?;
        before.push(u32::try_from(fetched).unwrap_or(u32::MAX));
    }
    Ok(before)
}
