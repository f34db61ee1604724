-- The whole schema as of SQLite migrations 0001–0004 (chat core, event
-- delivery, SQS integrations, files), for PostgreSQL. Instants are BIGINT
-- microseconds since the Unix epoch and JSON documents are TEXT, as on
-- SQLite, so both backends read and write the same values.

CREATE TABLE companies (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id                TEXT PRIMARY KEY,
    company_id        TEXT NOT NULL REFERENCES companies(id),
    is_bot            BOOLEAN NOT NULL,
    name              TEXT,
    email             TEXT,
    phone             TEXT,
    picture           TEXT,
    locale            TEXT,
    time_zone         TEXT,
    pbx_domain        TEXT,
    pbx_port          TEXT,
    pbx_extension     TEXT,
    pbx_serial        TEXT,
    pbx_user_id       TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    deleted_at        BIGINT
);
CREATE UNIQUE INDEX users_company_email ON users(company_id, email) WHERE email IS NOT NULL AND deleted_at IS NULL;
CREATE UNIQUE INDEX users_company_phone ON users(company_id, phone) WHERE phone IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX users_company ON users(company_id, is_bot, created_at);

CREATE TABLE credentials (
    id           TEXT PRIMARY KEY,
    company_id   TEXT NOT NULL REFERENCES companies(id),
    kind         TEXT NOT NULL CHECK (kind IN ('company', 'bot', 'user')),
    user_id      TEXT REFERENCES users(id),
    secret_hash  BYTEA NOT NULL UNIQUE,
    last_four    TEXT NOT NULL,
    name         TEXT,
    read_only    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    CHECK ((kind = 'company') = (user_id IS NULL))
);
CREATE INDEX credentials_owner ON credentials(company_id, kind, user_id);

CREATE TABLE channels (
    id                TEXT PRIMARY KEY,
    company_id        TEXT NOT NULL REFERENCES companies(id),
    channel_type      TEXT NOT NULL,
    subject           TEXT,
    description       TEXT,
    access            TEXT NOT NULL,
    service           TEXT,
    service_title     TEXT,
    broadcast         BOOLEAN NOT NULL DEFAULT FALSE,
    external          BOOLEAN NOT NULL DEFAULT FALSE,
    -- "userA userB" (sorted) for direct channels: one per pair.
    direct_key        TEXT,
    member_count      BIGINT NOT NULL DEFAULT 0,
    -- The last channelSeq given to an event of the channel.
    event_seq         BIGINT NOT NULL DEFAULT 0,
    last_activity_at  BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    deleted_at        BIGINT
);
CREATE UNIQUE INDEX channels_direct ON channels(company_id, direct_key) WHERE direct_key IS NOT NULL;

CREATE TABLE channel_members (
    channel_id  TEXT NOT NULL REFERENCES channels(id),
    user_id     TEXT NOT NULL REFERENCES users(id),
    role        TEXT NOT NULL,
    joined_at   BIGINT NOT NULL,
    PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX channel_members_user ON channel_members(user_id, channel_id);

CREATE TABLE messages (
    id            TEXT PRIMARY KEY,
    company_id    TEXT NOT NULL REFERENCES companies(id),
    channel_id    TEXT NOT NULL REFERENCES channels(id),
    user_id       TEXT NOT NULL REFERENCES users(id),
    message_type  TEXT NOT NULL,
    text          TEXT,
    elements      TEXT NOT NULL DEFAULT '[]',     -- JSON array of Element
    attachments   TEXT NOT NULL DEFAULT '[]',     -- JSON array of MessageAttachment
    mentions      TEXT NOT NULL DEFAULT '[]',     -- JSON array of user ids
    quote         TEXT,                           -- JSON MessageQuote, as quoted
    silent        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT,
    deleted_at    BIGINT
);
CREATE INDEX messages_channel_newest ON messages(channel_id, created_at DESC, id DESC);

CREATE TABLE reactions (
    message_id     TEXT NOT NULL REFERENCES messages(id),
    user_id        TEXT NOT NULL REFERENCES users(id),
    reaction_type  TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (message_id, user_id, reaction_type)
);

CREATE TABLE typing (
    channel_id  TEXT NOT NULL REFERENCES channels(id),
    user_id     TEXT NOT NULL REFERENCES users(id),
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX typing_expiry ON typing(expires_at);

CREATE TABLE idempotency_keys (
    company_id           TEXT NOT NULL,
    caller_id            TEXT NOT NULL,
    idempotency_key      TEXT NOT NULL,
    request_fingerprint  BYTEA NOT NULL,
    message_id           TEXT NOT NULL REFERENCES messages(id),
    created_at           BIGINT NOT NULL,
    PRIMARY KEY (company_id, caller_id, idempotency_key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys(created_at);

CREATE TABLE events (
    id           TEXT PRIMARY KEY,
    company_id   TEXT NOT NULL REFERENCES companies(id),
    channel_id   TEXT,                  -- NULL for integration:test
    channel_seq  BIGINT,
    event_type   TEXT NOT NULL,
    data         TEXT NOT NULL,         -- the JSON of the envelope's `data`
    created_at   BIGINT NOT NULL
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
    previous_secret_until     BIGINT,
    timeout_ms                BIGINT,
    retry_schedule            TEXT,     -- JSON array of milliseconds; NULL means the server's
    max_in_flight             BIGINT,
    state                     TEXT NOT NULL CHECK (state IN ('active', 'paused', 'disabled')),
    disabled_reason           TEXT,
    failing_since             BIGINT,
    last_success_at           BIGINT,
    sqs_region                TEXT,
    sqs_access_key_id         TEXT,
    sqs_secret_access_key     TEXT,     -- sealed
    sqs_endpoint_url          TEXT,
    created_at                BIGINT NOT NULL,
    updated_at                BIGINT NOT NULL,
    deleted_at                BIGINT
);
CREATE INDEX integrations_bot ON integrations(bot_id) WHERE deleted_at IS NULL;

CREATE TABLE deliveries (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        TEXT NOT NULL REFERENCES events(id),
    integration_id  TEXT NOT NULL REFERENCES integrations(id),
    lane            TEXT NOT NULL,      -- the channel id, or the event id outside channels
    channel_seq     BIGINT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    finished_at     BIGINT,
    last_error      TEXT
);
CREATE INDEX deliveries_lane_pending ON deliveries(integration_id, lane, channel_seq, id) WHERE state = 'pending';
CREATE INDEX deliveries_integration_log ON deliveries(integration_id, id);
CREATE INDEX deliveries_event ON deliveries(event_id);

-- One row per (integration, lane) with pending deliveries: its head is the
-- pending delivery with the lowest channelSeq, the only one that may be sent.
-- Workers claim due lanes with FOR UPDATE SKIP LOCKED and a lease.
CREATE TABLE delivery_lanes (
    integration_id  TEXT NOT NULL,
    lane            TEXT NOT NULL,
    head_id         BIGINT NOT NULL,
    due_at          BIGINT NOT NULL,
    lease_until     BIGINT,
    PRIMARY KEY (integration_id, lane)
);
CREATE INDEX delivery_lanes_due ON delivery_lanes(due_at);

CREATE TABLE delivery_attempts (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id       BIGINT NOT NULL REFERENCES deliveries(id),
    attempted_at      BIGINT NOT NULL,
    duration_us       BIGINT NOT NULL,
    status_code       INTEGER,
    outcome           TEXT NOT NULL,
    error             TEXT,
    response_snippet  TEXT
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts(delivery_id, id);

CREATE TABLE files (
    id                 TEXT PRIMARY KEY,
    company_id         TEXT NOT NULL REFERENCES companies(id),
    channel_id         TEXT NOT NULL REFERENCES channels(id),
    uploader_id        TEXT NOT NULL REFERENCES users(id),
    object_key         TEXT NOT NULL UNIQUE,
    name               TEXT NOT NULL,
    content_type       TEXT NOT NULL,
    max_bytes          BIGINT NOT NULL,
    declared           BOOLEAN NOT NULL,
    size               BIGINT,
    created_at         BIGINT NOT NULL,
    upload_expires_at  BIGINT NOT NULL,
    uploaded_at        BIGINT
);
CREATE INDEX files_channel ON files(channel_id, created_at);
