-- The state delivery workers keep per lane, apart from the lane itself.
--
-- A change inserts a `delivery_lanes` row (ON CONFLICT DO NOTHING) when it
-- queues the first delivery of a lane; workers never update that row, only
-- lock it and delete it when the lane empties. Were workers to rewrite it at
-- every claim, a SERIALIZABLE change would find a row version newer than its
-- snapshot and be aborted. The lane's moving parts live here instead: once a
-- worker has claimed a lane, its `head_id` and `due_at` override the lane
-- row's, and `lease_until` says until when the claim holds.
CREATE TABLE delivery_lane_state (
    integration_id  TEXT NOT NULL,
    lane            TEXT NOT NULL,
    head_id         BIGINT NOT NULL,
    due_at          BIGINT NOT NULL,
    lease_until     BIGINT,
    PRIMARY KEY (integration_id, lane)
);
ALTER TABLE delivery_lanes DROP COLUMN lease_until;

-- Rows rewritten by every change or claim keep room on their page for the
-- new version, so the update need not touch the indexes (a HOT update):
-- fewer index writes, and fewer false conflicts between serializable
-- transactions that read neighbouring index entries.
ALTER TABLE channels SET (fillfactor = 50);
ALTER TABLE integrations SET (fillfactor = 50);
ALTER TABLE delivery_lane_state SET (fillfactor = 50);
