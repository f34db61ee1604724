-- Pull integrations: a bot's events kept for it to fetch.
ALTER TABLE integrations DROP CONSTRAINT integrations_kind_check;
ALTER TABLE integrations ADD CONSTRAINT integrations_kind_check CHECK (kind IN ('webhook', 'sqs', 'pull'));
