-- A message's hash is its position encrypted (libs/hashid): the table no
-- longer stores hashes nor keeps their index. Messages stored before this
-- are handed out under their position's hash from now on.
ALTER TABLE messages DROP COLUMN IF EXISTS hash;
