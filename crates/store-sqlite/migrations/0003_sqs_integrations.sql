-- SQS integrations: `url` holds the queue URL; the customer's credentials
-- and an optional SQS-compatible endpoint sit beside it. The secret access
-- key is sealed with the server's secret key, like the signing secret.
ALTER TABLE integrations ADD COLUMN sqs_region TEXT;
ALTER TABLE integrations ADD COLUMN sqs_access_key_id TEXT;
ALTER TABLE integrations ADD COLUMN sqs_secret_access_key TEXT;
ALTER TABLE integrations ADD COLUMN sqs_endpoint_url TEXT;
