-- The integrations of a company, for finding who hears of an event without
-- reading every company's integrations: each is then checked against the
-- channel's members by key.
CREATE INDEX integrations_company ON integrations(company_id, id) WHERE deleted_at IS NULL;
