-- The statements of SendMessage's transaction for a channel with a bot:
-- as send.sql, then the delivery and its lane.
-- Each client its own channel, as the bench's round robin over 64 channels
-- gives each message in flight mostly its own.
\set ch :client_id % 64 + 1
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT c.id, c.company_id, c.channel_type, c.subject, c.access, c.event_seq, m.role, m.joined_at, EXISTS (SELECT 1 FROM typing t WHERE t.channel_id = c.id AND t.user_id = m.user_id) AS typing, u.name, u.email FROM channels c JOIN channel_members m ON m.channel_id = c.id AND m.user_id = 'u_1' JOIN users u ON u.id = m.user_id WHERE c.id = 'ch_' || :ch AND c.deleted_at IS NULL;
SELECT id, event_types FROM integrations i WHERE company_id = 'co_1' AND deleted_at IS NULL AND state != 'disabled' AND EXISTS (SELECT 1 FROM channel_members m WHERE m.channel_id = 'ch_' || :ch AND m.user_id = i.bot_id) ORDER BY id;
INSERT INTO messages (id, company_id, channel_id, user_id, message_type, text, elements, attachments, mentions, quote, silent, created_at) VALUES (gen_random_uuid()::text, 'co_1', 'ch_' || :ch, 'u_1', 'regular', 'hello there, a message of some length', '[]', '[]', '[]', NULL, false, 1);
SELECT m.user_id, m.role, m.joined_at, u.id, u.company_id, u.is_bot, u.name, u.email, u.created_at FROM channel_members m JOIN users u ON u.id = m.user_id WHERE m.channel_id = 'ch_' || :ch ORDER BY m.joined_at, m.user_id;
UPDATE channels SET event_seq = event_seq + 1, last_activity_at = 2 WHERE id = 'ch_' || :ch RETURNING event_seq;
INSERT INTO events (id, company_id, channel_id, channel_seq, event_type, data, created_at) VALUES ('e' || gen_random_uuid()::text, 'co_1', 'ch_' || :ch, 1, 'message.new', repeat('x', 1500), 1) RETURNING id \gset ev_

INSERT INTO deliveries (event_id, integration_id, lane, channel_seq, state, created_at) VALUES (:ev_id, 'int_1', 'ch_' || :ch, 1, 'pending', 1) RETURNING id \gset d_
INSERT INTO delivery_lanes (integration_id, lane, head_id, due_at) VALUES ('int_1', 'ch_' || :ch, :d_id, 1) ON CONFLICT (integration_id, lane) DO NOTHING;
COMMIT;
