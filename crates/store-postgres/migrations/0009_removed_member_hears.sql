-- The person a `chat:member:removed` event takes out of its channel: no
-- longer a member, they still read that event on their live feed.
ALTER TABLE events ADD COLUMN removed_user_id TEXT;
