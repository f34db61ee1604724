-- Files uploaded to channels. The bytes are in object storage under
-- `object_key` (random; it names nothing); `size` is set once the upload is
-- known to be complete. Files are never removed: deleting the message that
-- carries one ends access to it through that message.
CREATE TABLE files (
    id                 TEXT PRIMARY KEY,
    company_id         TEXT NOT NULL REFERENCES companies(id),
    channel_id         TEXT NOT NULL REFERENCES channels(id),
    uploader_id        TEXT NOT NULL REFERENCES users(id),
    object_key         TEXT NOT NULL UNIQUE,
    name               TEXT NOT NULL,
    content_type       TEXT NOT NULL,
    max_bytes          INTEGER NOT NULL,
    declared           INTEGER NOT NULL,   -- 1: the upload must be exactly max_bytes
    size               INTEGER,
    created_at         INTEGER NOT NULL,
    upload_expires_at  INTEGER NOT NULL,
    uploaded_at        INTEGER
);
CREATE INDEX files_channel ON files(channel_id, created_at);
