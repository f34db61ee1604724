-- An integration that asks for the full `members` and `users` lists in
-- message and reaction events (by default they hold at most 50 entries).
ALTER TABLE integrations ADD COLUMN full_member_lists BOOLEAN;
