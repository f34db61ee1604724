-- Chat core: companies, credentials, people and bots, channels, members,
-- messages, reactions, typing indicators and idempotency keys.
-- Instants are INTEGER microseconds since the Unix epoch.

CREATE TABLE companies (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id                TEXT PRIMARY KEY,
    company_id        TEXT NOT NULL REFERENCES companies(id),
    is_bot            INTEGER NOT NULL,
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
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    deleted_at        INTEGER
);
CREATE UNIQUE INDEX users_company_email ON users(company_id, email) WHERE email IS NOT NULL AND deleted_at IS NULL;
CREATE UNIQUE INDEX users_company_phone ON users(company_id, phone) WHERE phone IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX users_company ON users(company_id, is_bot, created_at);

CREATE TABLE credentials (
    id           TEXT PRIMARY KEY,
    company_id   TEXT NOT NULL REFERENCES companies(id),
    kind         TEXT NOT NULL CHECK (kind IN ('company', 'bot', 'user')),
    user_id      TEXT REFERENCES users(id),
    secret_hash  BLOB NOT NULL UNIQUE,
    last_four    TEXT NOT NULL,
    name         TEXT,
    read_only    INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
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
    broadcast         INTEGER NOT NULL DEFAULT 0,
    external          INTEGER NOT NULL DEFAULT 0,
    -- "userA userB" (sorted) for direct channels: one per pair.
    direct_key        TEXT,
    member_count      INTEGER NOT NULL DEFAULT 0,
    last_activity_at  INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    deleted_at        INTEGER
);
CREATE UNIQUE INDEX channels_direct ON channels(company_id, direct_key) WHERE direct_key IS NOT NULL;

CREATE TABLE channel_members (
    channel_id  TEXT NOT NULL REFERENCES channels(id),
    user_id     TEXT NOT NULL REFERENCES users(id),
    role        TEXT NOT NULL,
    joined_at   INTEGER NOT NULL,
    PRIMARY KEY (channel_id, user_id)
) WITHOUT ROWID;
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
    silent        INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER,
    deleted_at    INTEGER
);
CREATE INDEX messages_channel_newest ON messages(channel_id, created_at DESC, id DESC);

CREATE TABLE reactions (
    message_id     TEXT NOT NULL REFERENCES messages(id),
    user_id        TEXT NOT NULL REFERENCES users(id),
    reaction_type  TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (message_id, user_id, reaction_type)
) WITHOUT ROWID;

CREATE TABLE typing (
    channel_id  TEXT NOT NULL REFERENCES channels(id),
    user_id     TEXT NOT NULL REFERENCES users(id),
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (channel_id, user_id)
) WITHOUT ROWID;
CREATE INDEX typing_expiry ON typing(expires_at);

CREATE TABLE idempotency_keys (
    company_id           TEXT NOT NULL,
    caller_id            TEXT NOT NULL,
    idempotency_key      TEXT NOT NULL,
    request_fingerprint  BLOB NOT NULL,
    message_id           TEXT NOT NULL REFERENCES messages(id),
    created_at           INTEGER NOT NULL,
    PRIMARY KEY (company_id, caller_id, idempotency_key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_age ON idempotency_keys(created_at);
