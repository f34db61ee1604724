-- What a batched write path for SendMessage would ask of PostgreSQL: the
-- statements of send_bot.sql, each written once for 16 messages (to 16
-- channels, one message each) instead of once per message, in one
-- transaction. Not what switchboard does today: a measure of what that
-- redesign could gain (bench/pgbench/run prints messages/s, 16 a
-- transaction). Each client owns 16 of the 64 channels; run with 4 clients.
-- Event ids are made by the client, as the server makes them; each lane's
-- head is left as a placeholder (the server would take it from the
-- deliveries' RETURNING).
\set base (:client_id * 16) % 64
\set r random(1, 1000000000000)
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT c.id, c.company_id, c.channel_type, c.subject, c.access, c.event_seq, m.role, m.joined_at, EXISTS (SELECT 1 FROM typing t WHERE t.channel_id = c.id AND t.user_id = m.user_id) AS typing, u.name, u.email FROM channels c JOIN channel_members m ON m.channel_id = c.id AND m.user_id = 'u_1' JOIN users u ON u.id = m.user_id WHERE c.id = ANY(ARRAY(SELECT 'ch_' || (:base + g + 1) FROM generate_series(0, 15) g)) AND c.deleted_at IS NULL;
SELECT i.id, i.event_types, m.channel_id FROM integrations i JOIN channel_members m ON m.user_id = i.bot_id WHERE i.company_id = 'co_1' AND i.deleted_at IS NULL AND i.state != 'disabled' AND m.channel_id = ANY(ARRAY(SELECT 'ch_' || (:base + g + 1) FROM generate_series(0, 15) g)) ORDER BY m.channel_id, i.id;
INSERT INTO messages (id, company_id, channel_id, user_id, message_type, text, elements, attachments, mentions, quote, silent, created_at) SELECT gen_random_uuid()::text, 'co_1', 'ch_' || (:base + g + 1), 'u_1', 'regular', 'hello there, a message of some length', '[]', '[]', '[]', NULL, false, 1 FROM generate_series(0, 15) g;
SELECT m.channel_id, m.user_id, m.role, m.joined_at, u.id, u.company_id, u.is_bot, u.name, u.email, u.created_at FROM channel_members m JOIN users u ON u.id = m.user_id WHERE m.channel_id = ANY(ARRAY(SELECT 'ch_' || (:base + g + 1) FROM generate_series(0, 15) g)) ORDER BY m.channel_id, m.joined_at, m.user_id;
UPDATE channels SET event_seq = event_seq + 1, last_activity_at = 2 WHERE id = ANY(ARRAY(SELECT 'ch_' || (:base + g + 1) FROM generate_series(0, 15) g)) RETURNING id, event_seq;
INSERT INTO events (id, company_id, channel_id, channel_seq, event_type, data, created_at) SELECT 'e' || :r || '_' || g, 'co_1', 'ch_' || (:base + g + 1), 1, 'message.new', repeat('x', 1500), 1 FROM generate_series(0, 15) g;
INSERT INTO deliveries (event_id, integration_id, lane, channel_seq, state, created_at) SELECT 'e' || :r || '_' || g, 'int_1', 'ch_' || (:base + g + 1), 1, 'pending', 1 FROM generate_series(0, 15) g RETURNING id;
INSERT INTO delivery_lanes (integration_id, lane, head_id, due_at) SELECT 'int_1', 'ch_' || (:base + g + 1), 1, 1 FROM generate_series(0, 15) g ON CONFLICT (integration_id, lane) DO NOTHING;
COMMIT;
