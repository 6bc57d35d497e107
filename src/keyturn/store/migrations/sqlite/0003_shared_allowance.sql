-- A key and its successors share one allowance (rate-limit counts and credits) while more
-- than one of them works: each key names it by the id of the first key of its rotation
-- chain. Keys rotated before this migration get their chain's first id too.
ALTER TABLE keys ADD COLUMN allowance_id TEXT;
WITH RECURSIVE chain(id, root) AS (
    SELECT id, id FROM keys WHERE replaces IS NULL
    UNION ALL
    SELECT keys.id, chain.root FROM keys JOIN chain ON keys.replaces = chain.id
)
UPDATE keys SET allowance_id = (SELECT root FROM chain WHERE chain.id = keys.id);
UPDATE keys SET allowance_id = id WHERE allowance_id IS NULL;
-- Credits are spent from the newest key of a chain (the one not replaced).
CREATE INDEX keys_allowance ON keys (allowance_id) WHERE replaced_by IS NULL;
