-- Pull integrations: a bot's events kept for it to fetch. SQLite cannot
-- change a CHECK constraint in place, so the table is made again with
-- `pull` among the kinds, its rows copied as they are. Foreign keys to it
-- are checked at commit (`defer_foreign_keys`): the rows every delivery
-- points at are back by then.
PRAGMA defer_foreign_keys = ON;

CREATE TEMP TABLE integrations_before AS SELECT * FROM integrations;
DROP TABLE integrations;

CREATE TABLE integrations (
    id                        TEXT PRIMARY KEY,
    company_id                TEXT NOT NULL REFERENCES companies(id),
    bot_id                    TEXT NOT NULL REFERENCES users(id),
    kind                      TEXT NOT NULL CHECK (kind IN ('webhook', 'sqs', 'pull')),
    url                       TEXT,     -- the webhook URL or the SQS queue URL; NULL for pull
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
    deleted_at                INTEGER,
    sqs_region                TEXT,
    sqs_access_key_id         TEXT,
    sqs_secret_access_key     TEXT,     -- sealed
    sqs_endpoint_url          TEXT,
    full_member_lists         INTEGER
);

INSERT INTO integrations (id, company_id, bot_id, kind, url, event_types, secret, previous_secret,
    previous_secret_until, timeout_ms, retry_schedule, max_in_flight, state, disabled_reason,
    failing_since, last_success_at, created_at, updated_at, deleted_at, sqs_region,
    sqs_access_key_id, sqs_secret_access_key, sqs_endpoint_url, full_member_lists)
SELECT id, company_id, bot_id, kind, url, event_types, secret, previous_secret,
    previous_secret_until, timeout_ms, retry_schedule, max_in_flight, state, disabled_reason,
    failing_since, last_success_at, created_at, updated_at, deleted_at, sqs_region,
    sqs_access_key_id, sqs_secret_access_key, sqs_endpoint_url, full_member_lists
FROM integrations_before;

DROP TABLE integrations_before;
CREATE INDEX integrations_bot ON integrations(bot_id) WHERE deleted_at IS NULL;
