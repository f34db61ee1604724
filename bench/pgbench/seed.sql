-- One company, a person and a bot, both members of 64 channels, and the
-- bot's webhook integration: what bench/pgbench/run sends messages into.
INSERT INTO companies (id, name, created_at) VALUES ('co_1', 'Co', 0);
INSERT INTO users (id, company_id, is_bot, name, created_at, updated_at) VALUES ('u_1', 'co_1', false, 'Person', 0, 0), ('b_1', 'co_1', true, 'Bot', 0, 0);
INSERT INTO channels (id, company_id, channel_type, access, last_activity_at, created_at, updated_at)
  SELECT 'ch_' || g, 'co_1', 'group', 'private', 0, 0, 0 FROM generate_series(1, 64) g;
INSERT INTO channel_members (channel_id, user_id, role, joined_at)
  SELECT 'ch_' || g, u, 'member', 0 FROM generate_series(1, 64) g, (VALUES ('u_1'), ('b_1')) AS v(u);
INSERT INTO integrations (id, company_id, bot_id, kind, url, secret, state, created_at, updated_at)
  VALUES ('int_1', 'co_1', 'b_1', 'webhook', 'http://127.0.0.1:9/', 'sealed', 'active', 0, 0);
