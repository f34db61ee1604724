-- What x-bees clients send about a bot and read back: who may find it
-- (`access`), how it is integrated (`integrationType`), whether it shows in
-- search (`searchable`). Open values, kept as sent; unset for people.
ALTER TABLE users
    ADD COLUMN bot_access TEXT,
    ADD COLUMN bot_integration_type TEXT,
    ADD COLUMN bot_searchable BOOLEAN;
