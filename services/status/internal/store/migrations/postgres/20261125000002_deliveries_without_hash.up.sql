-- A message's hash is its position encrypted (libs/hashid): ingress decodes
-- it, so the table is keyed by position and no longer stores hashes.
ALTER TABLE deliveries DROP COLUMN IF EXISTS hash;

--bun:split

ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_pos_key;

--bun:split

ALTER TABLE deliveries ADD PRIMARY KEY (pos);
