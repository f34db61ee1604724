-- Retention: how far pruning has reached. Rows of `kind` ('events' or
-- 'messages') created before `kept_from` may be gone, so a replay or a
-- delivery log query reaching back before it is refused with that time.
CREATE TABLE retention_horizons (
    kind       TEXT PRIMARY KEY,
    kept_from  BIGINT NOT NULL
);
