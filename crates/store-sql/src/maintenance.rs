//! Health and housekeeping: the database answers; expired idempotency keys
//! and typing indicators are deleted.

use async_trait::async_trait;
use switchboard_domain::UnixMicros;
use switchboard_domain::limits::IDEMPOTENCY_WINDOW_MICROS;
use switchboard_store::{DeliveryStore, MaintenanceStore, StoreResult};

use crate::backend::{Backend, SqlStore};
use crate::db::Db;

#[async_trait]
impl<B: Backend> MaintenanceStore for SqlStore<B> {
    async fn ping(&self) -> StoreResult<()> {
        query!(self, (), |conn| conn
            .scalar::<i64>("SELECT 1", args![])
            .await)?;
        Ok(())
    }

    async fn purge_expired(&self, now: UnixMicros) -> StoreResult<u64> {
        change!(self, (now), |tx| {
            let keys = tx
                .execute(
                    "DELETE FROM idempotency_keys WHERE created_at < $1",
                    args![*now - IDEMPOTENCY_WINDOW_MICROS],
                )
                .await?;
            let typing = tx
                .execute("DELETE FROM typing WHERE expires_at <= $1", args![now])
                .await?;
            Ok(keys + typing)
        })
    }
}

/// The delivery workers' side is the backend's own.
#[async_trait]
impl<B: Backend> DeliveryStore for SqlStore<B> {
    async fn claim(
        &self,
        claim: switchboard_store::Claim,
    ) -> StoreResult<Vec<switchboard_store::ClaimedDelivery>> {
        self.backend.claim(claim).await
    }

    async fn finish_and_claim(
        &self,
        finished: &[switchboard_store::Finished],
        claim: switchboard_store::Claim,
    ) -> StoreResult<Vec<switchboard_store::ClaimedDelivery>> {
        self.backend.finish_and_claim(finished, claim).await
    }

    fn hand_off_to(&self, hand_off: switchboard_store::HandOff) -> bool {
        self.backend.hand_off_to(hand_off)
    }

    async fn handed_off(
        &self,
        handed: &[switchboard_store::HandedOff],
    ) -> StoreResult<Vec<switchboard_store::ClaimedDelivery>> {
        self.backend.handed_off(handed).await
    }

    async fn extend_leases(
        &self,
        held: &[switchboard_store::HeldLease],
        until: UnixMicros,
    ) -> StoreResult<Vec<bool>> {
        self.backend.extend_leases(held, until).await
    }

    async fn next_due(&self) -> StoreResult<Option<UnixMicros>> {
        self.backend.next_due().await
    }

    async fn outbox_stats(&self, now: UnixMicros) -> StoreResult<switchboard_store::OutboxStats> {
        self.backend.outbox_stats(now).await
    }

    async fn claim_pulled(
        &self,
        scope: &switchboard_store::PullScope,
        claim: switchboard_store::Claim,
    ) -> StoreResult<Vec<switchboard_store::ClaimedDelivery>> {
        if claim.limit == 0 {
            return Ok(Vec::new());
        }
        // A consumer holds a lane's head alone, whatever the claim asked.
        let claim = switchboard_store::Claim { run: 1, ..claim };
        self.backend.claim_pulled(scope, claim).await
    }

    fn outbox_signal(&self) -> std::sync::Arc<switchboard_store::OutboxSignal> {
        self.backend.outbox_signal()
    }
}
