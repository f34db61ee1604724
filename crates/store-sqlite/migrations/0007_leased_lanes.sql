-- The lanes a worker holds, by integration: counted by every claim and
-- hand-off against the integration's in-flight limit, which then reads the
-- leased lanes only, not every lane of the integration.
CREATE INDEX delivery_lanes_leased ON delivery_lanes(integration_id, lease_until) WHERE lease_until IS NOT NULL;
