//! Deliveries queued for stored events: their rows, the lanes they open, and
//! their hand-off to this process's workers at commit (SQLite).

use crate::db::{Db, HandOffTerms, statement_text, value_rows};
use crate::failure::{Failure, Outcome};
use crate::integration_rows::in_flight_limit;
use switchboard_store::{HandedLane, HandedOff};

/// Queues one delivery of a stored event, opening its lane when it has none.
pub(crate) async fn enqueue(
    conn: &mut impl Db,
    event: &str,
    integration: &str,
    lane: &str,
    seq: i64,
    now: i64,
) -> Outcome<()> {
    let delivery = QueuedDelivery {
        event,
        integration,
        lane,
        seq,
    };
    enqueue_many(conn, &[delivery], now).await
}

/// A delivery for [`enqueue_many`].
pub(crate) struct QueuedDelivery<'a> {
    pub event: &'a str,
    pub integration: &'a str,
    pub lane: &'a str,
    pub seq: i64,
}

/// Queues deliveries of stored events, opening each lane that has none with
/// its first delivery here: one statement for the deliveries and one for the
/// lanes, however many there are. Deliveries of one lane come in
/// `channelSeq` order.
pub(crate) async fn enqueue_many(
    conn: &mut impl Db,
    deliveries: &[QueuedDelivery<'_>],
    now: i64,
) -> Outcome<()> {
    if deliveries.is_empty() {
        return Ok(());
    }
    let ids = insert_deliveries(conn, deliveries, now).await?;
    // Each lane opened with its first delivery here; the lanes that exist
    // already keep their head.
    let mut firsts: Vec<usize> = Vec::new();
    for (index, delivery) in deliveries.iter().enumerate() {
        if !firsts.iter().any(|&first| {
            deliveries[first].integration == delivery.integration
                && deliveries[first].lane == delivery.lane
        }) {
            firsts.push(index);
        }
    }
    let mut args = Vec::with_capacity(firsts.len() * 4);
    for &index in &firsts {
        let delivery = &deliveries[index];
        args.extend(args![delivery.integration, delivery.lane, ids[index], now]);
    }
    let insert = statement_text("open lanes", firsts.len(), || {
        format!(
            "INSERT INTO delivery_lanes (integration_id, lane, head_id, due_at) VALUES {} \
             ON CONFLICT (integration_id, lane) DO NOTHING",
            value_rows(firsts.len(), 4)
        )
    });
    let Some(terms) = conn.hand_off() else {
        conn.execute(&insert, args).await?;
        conn.effects().queued_deliveries = true;
        return Ok(());
    };
    // Handing off needs to know which lanes this opened.
    let opened: Vec<usize> = if let [index] = firsts[..] {
        if conn.execute(&insert, args).await? == 1 {
            vec![index]
        } else {
            Vec::new()
        }
    } else {
        let rows: Vec<(String, String)> = conn
            .fetch_all(&format!("{insert} RETURNING integration_id, lane"), args)
            .await?;
        firsts
            .into_iter()
            .filter(|&index| {
                let delivery = &deliveries[index];
                rows.iter()
                    .any(|(i, l)| i == delivery.integration && l == delivery.lane)
            })
            .collect()
    };
    for (index, delivery) in deliveries.iter().enumerate() {
        let handed_off = if opened.contains(&index) {
            hand_off(
                conn,
                delivery.integration,
                delivery.lane,
                ids[index],
                now,
                terms,
            )
            .await?
        } else {
            // This delivery and those queued here after it on its lane are
            // not what it may come right after.
            let from_here: Vec<i64> = deliveries
                .iter()
                .zip(&ids)
                .skip(index)
                .filter(|(d, _)| d.integration == delivery.integration && d.lane == delivery.lane)
                .map(|(_, id)| *id)
                .collect();
            hand_off_behind(conn, delivery, ids[index], &from_here, now).await?;
            false
        };
        // A delivery handed off on its own lease needs no worker to look for
        // it; one behind a held lane may still be left to the claims.
        if !handed_off {
            conn.effects().queued_deliveries = true;
        }
    }
    Ok(())
}

/// Inserts the deliveries, pending; their ids, in the same order.
async fn insert_deliveries(
    conn: &mut impl Db,
    deliveries: &[QueuedDelivery<'_>],
    now: i64,
) -> Outcome<Vec<i64>> {
    let mut args = Vec::with_capacity(deliveries.len() * 6);
    for delivery in deliveries {
        args.extend(args![
            delivery.event,
            delivery.integration,
            delivery.lane,
            delivery.seq,
            "pending",
            now
        ]);
    }
    let insert = statement_text("queue deliveries", deliveries.len(), || {
        format!(
            "INSERT INTO deliveries (event_id, integration_id, lane, channel_seq, state, created_at) VALUES {}",
            value_rows(deliveries.len(), 6)
        )
    });
    if deliveries.len() == 1 {
        return Ok(vec![conn.insert_returning_id(&insert, args).await?]);
    }
    // The order of `RETURNING` rows is not promised: each is matched by its
    // event and integration, one delivery's key.
    let rows: Vec<(String, String, i64)> = conn
        .fetch_all(
            &format!("{insert} RETURNING event_id, integration_id, id"),
            args,
        )
        .await?;
    deliveries
        .iter()
        .map(|delivery| {
            rows.iter()
                .find(|(event, integration, _)| {
                    event == delivery.event && integration == delivery.integration
                })
                .map(|(.., id)| *id)
                .ok_or_else(|| Failure::backend("a queued delivery was not returned by its insert"))
        })
        .collect()
}

/// Hands off a delivery queued on a lane this process's workers hold, with
/// the lane's pending delivery it comes right after, so that the run
/// sending the lane can go on to it (see [`HandedLane::Behind`]). Only a
/// delivery that is the lane's last in `channelSeq` order is: a replayed
/// event queued behind later ones is left to the claims, which send it in
/// its place.
async fn hand_off_behind(
    conn: &mut impl Db,
    queued: &QueuedDelivery<'_>,
    delivery: i64,
    not_before: &[i64],
    now: i64,
) -> Outcome<()> {
    let previous: Option<(i64, i64)> = conn
        .fetch_optional(
            "SELECT d.id, d.channel_seq \
             FROM delivery_lanes l JOIN integrations i ON i.id = l.integration_id \
             JOIN deliveries d ON d.integration_id = l.integration_id AND d.lane = l.lane \
             WHERE l.integration_id = $1 AND l.lane = $2 AND l.lease_until >= $4 \
               AND i.state = 'active' AND i.deleted_at IS NULL AND i.kind <> 'pull' \
               AND d.state = 'pending' AND NOT (d.id = ANY($3)) \
             ORDER BY d.channel_seq DESC, d.id DESC LIMIT 1",
            args![queued.integration, queued.lane, not_before, now],
        )
        .await?;
    if let Some((previous, previous_seq)) = previous
        && (previous_seq, previous) < (queued.seq, delivery)
    {
        conn.effects().handed_off.push(HandedOff {
            delivery_id: delivery,
            lane: HandedLane::Behind { previous },
        });
    }
    Ok(())
}

/// Leases a lane just opened for this process's workers, when its
/// integration is active, sent by the workers (not pulled) and under its
/// in-flight limit, and notes the
/// delivery to hand them after the commit; whether it did.
async fn hand_off(
    conn: &mut impl Db,
    integration: &str,
    lane: &str,
    delivery: i64,
    now: i64,
    terms: HandOffTerms,
) -> Outcome<bool> {
    let room: Option<(i64, Option<i64>)> = conn
        .fetch_optional(
            "SELECT (SELECT COUNT(*) FROM delivery_lanes \
                     WHERE integration_id = $1 AND lease_until IS NOT NULL AND lease_until >= $2), \
                    max_in_flight \
             FROM integrations WHERE id = $1 AND state = 'active' AND deleted_at IS NULL AND kind <> 'pull'",
            args![integration, now],
        )
        .await?;
    let Some((busy, max)) = room else {
        return Ok(false);
    };
    if busy >= in_flight_limit(max, terms.default_max_in_flight) {
        return Ok(false);
    }
    let lease_until = now + terms.lease_micros;
    conn.execute(
        "UPDATE delivery_lanes SET lease_until = $1 WHERE integration_id = $2 AND lane = $3",
        args![lease_until, integration, lane],
    )
    .await?;
    conn.effects().handed_off.push(HandedOff {
        delivery_id: delivery,
        lane: HandedLane::Leased { lease_until },
    });
    Ok(true)
}
