-- An owner's shared limits kept on each of its keys' rows (store.sql.OWNER_LIMITS), so the
-- verifier's read of a key is one row of one table: the owner's rate limits, and whether
-- it has a credit balance. Written with the key (created, or given another owner) and
-- by every change to the owner's limits, in the same transaction.
ALTER TABLE keys ADD COLUMN owner_rate_limits text NOT NULL DEFAULT '';
ALTER TABLE keys ADD COLUMN owner_credits boolean NOT NULL DEFAULT false;
UPDATE keys SET
    owner_rate_limits = COALESCE((SELECT o.rate_limits FROM owners o WHERE o.owner = keys.owner), ''),
    owner_credits = EXISTS (SELECT 1 FROM owners o WHERE o.owner = keys.owner AND o.credits IS NOT NULL)
WHERE owner IN (SELECT owner FROM owners);
