-- The client's address is an entry's own, as its path is (0080), not part of its shape:
-- an API is called from many addresses, and while each one made a shape of its own, the
-- entries of clients the writer no longer remembered (it names a bounded number of
-- shapes) each cost a new shape's row, several times an entry's cost. Existing entries
-- take their shape's client, and the shapes lose it.
ALTER TABLE verifications ADD COLUMN client text;
UPDATE verifications v SET client = s.client
FROM verification_shapes s
WHERE s.id = v.shape AND s.client IS NOT NULL;
ALTER TABLE verification_shapes DROP COLUMN client;
