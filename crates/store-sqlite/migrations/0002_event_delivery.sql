-- Event delivery: the event log, bot integrations, the outbox of deliveries,
-- the per-(integration, channel) lanes that keep channel order, and the log
-- of every attempt.

-- The last channelSeq given to an event of the channel.
ALTER TABLE channels ADD COLUMN event_seq INTEGER NOT NULL DEFAULT 0;

CREATE TABLE events (
    id           TEXT PRIMARY KEY,
    company_id   TEXT NOT NULL REFERENCES companies(id),
    channel_id   TEXT,                  -- NULL for integration:test
    channel_seq  INTEGER,
    event_type   TEXT NOT NULL,
    data         TEXT NOT NULL,         -- the JSON of the envelope's `data`
    created_at   INTEGER NOT NULL
);
CREATE INDEX events_company_time ON events(company_id, created_at);

CREATE TABLE integrations (
    id                        TEXT PRIMARY KEY,
    company_id                TEXT NOT NULL REFERENCES companies(id),
    bot_id                    TEXT NOT NULL REFERENCES users(id),
    kind                      TEXT NOT NULL CHECK (kind IN ('webhook', 'sqs')),
    url                       TEXT,
    event_types               TEXT,     -- JSON array; NULL means every type
    secret                    TEXT NOT NULL,   -- sealed with the server's secret key
    previous_secret           TEXT,            -- sealed; still signs until previous_secret_until
    previous_secret_until     INTEGER,
    timeout_ms                INTEGER,
    retry_schedule            TEXT,     -- JSON array of milliseconds; NULL means the server's
    max_in_flight             INTEGER,
    state                     TEXT NOT NULL CHECK (state IN ('active', 'paused', 'disabled')),
    disabled_reason           TEXT,
    failing_since             INTEGER,
    last_success_at           INTEGER,
    created_at                INTEGER NOT NULL,
    updated_at                INTEGER NOT NULL,
    deleted_at                INTEGER
);
CREATE INDEX integrations_bot ON integrations(bot_id) WHERE deleted_at IS NULL;

CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT NOT NULL REFERENCES events(id),
    integration_id  TEXT NOT NULL REFERENCES integrations(id),
    lane            TEXT NOT NULL,      -- the channel id, or the event id outside channels
    channel_seq     INTEGER NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    finished_at     INTEGER,
    last_error      TEXT
);
CREATE INDEX deliveries_lane_pending ON deliveries(integration_id, lane, channel_seq, id) WHERE state = 'pending';
CREATE INDEX deliveries_integration_log ON deliveries(integration_id, id);
CREATE INDEX deliveries_event ON deliveries(event_id);

-- One row per (integration, lane) with pending deliveries: its head is the
-- pending delivery with the lowest channelSeq, the only one that may be sent.
CREATE TABLE delivery_lanes (
    integration_id  TEXT NOT NULL,
    lane            TEXT NOT NULL,
    head_id         INTEGER NOT NULL,
    due_at          INTEGER NOT NULL,
    lease_until     INTEGER,
    PRIMARY KEY (integration_id, lane)
) WITHOUT ROWID;
CREATE INDEX delivery_lanes_due ON delivery_lanes(due_at);

CREATE TABLE delivery_attempts (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id       INTEGER NOT NULL REFERENCES deliveries(id),
    attempted_at      INTEGER NOT NULL,
    duration_us       INTEGER NOT NULL,
    status_code       INTEGER,
    outcome           TEXT NOT NULL,
    error             TEXT,
    response_snippet  TEXT
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts(delivery_id, id);
