-- The check on a delivery's state, written as equalities. SQLite checks
-- `state IN ('pending', 'delivered', 'dead')` by building a temporary index
-- of the three values for every statement that writes a delivery (each
-- queued event and each recorded outcome): about 3 µs each, the same again
-- as the rest of the insert. The same rule as equalities costs nothing.
--
-- SQLite cannot change a CHECK constraint in place, so the table is made
-- again and its rows copied as they are, ids included. The next id stays
-- past every id ever given (AUTOINCREMENT), also when the newest deliveries
-- were pruned: the sequence is carried over. Foreign keys to it (each
-- attempt's delivery) are checked at commit (`defer_foreign_keys`): the rows
-- they point at are back by then.
PRAGMA defer_foreign_keys = ON;

CREATE TEMP TABLE deliveries_before AS SELECT * FROM deliveries;
CREATE TEMP TABLE deliveries_sequence AS
    SELECT seq FROM sqlite_sequence WHERE name = 'deliveries';
DROP TABLE deliveries;

CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT NOT NULL REFERENCES events(id),
    integration_id  TEXT NOT NULL REFERENCES integrations(id),
    lane            TEXT NOT NULL,      -- the channel id, or the event id outside channels
    channel_seq     INTEGER NOT NULL,
    state           TEXT NOT NULL CHECK (state = 'pending' OR state = 'delivered' OR state = 'dead'),
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    finished_at     INTEGER,
    last_error      TEXT
);

INSERT INTO deliveries (id, event_id, integration_id, lane, channel_seq, state, attempts,
    created_at, finished_at, last_error)
SELECT id, event_id, integration_id, lane, channel_seq, state, attempts,
    created_at, finished_at, last_error
FROM deliveries_before;

-- The copy set the sequence to the largest id copied; the old one may be
-- larger (its newest rows pruned).
DELETE FROM sqlite_sequence WHERE name = 'deliveries';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'deliveries', MAX(COALESCE((SELECT seq FROM deliveries_sequence), 0),
                         COALESCE((SELECT MAX(id) FROM deliveries), 0))
WHERE EXISTS (SELECT 1 FROM deliveries_sequence) OR EXISTS (SELECT 1 FROM deliveries);

DROP TABLE deliveries_before;
DROP TABLE deliveries_sequence;

CREATE INDEX deliveries_lane_pending ON deliveries(integration_id, lane, channel_seq, id) WHERE state = 'pending';
CREATE INDEX deliveries_integration_log ON deliveries(integration_id, id);
CREATE INDEX deliveries_event ON deliveries(event_id);
