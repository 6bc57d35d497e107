-- The client's address is an entry's own, as its path is (0080), not part of its shape:
-- an API is called from many addresses, and while each one made a shape of its own, the
-- entries of clients the writer no longer remembered (it names a bounded number of
-- shapes) each cost a new shape's row, several times an entry's cost. Existing entries
-- take their shape's client; the shapes' table is rebuilt without it (the same ids: the
-- entries name them).
ALTER TABLE verifications ADD COLUMN client TEXT;
UPDATE verifications
SET client = (SELECT s.client FROM verification_shapes s WHERE s.id = verifications.shape);
CREATE TABLE verification_shapes_0090 (
    id         INTEGER PRIMARY KEY,
    created    REAL NOT NULL,
    outcome    TEXT NOT NULL,
    masked     TEXT,
    method     TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    scopes     TEXT
);
INSERT INTO verification_shapes_0090 (id, created, outcome, masked, method, user_agent, scopes)
SELECT id, created, outcome, masked, method, user_agent, scopes FROM verification_shapes;
DROP TABLE verification_shapes;
ALTER TABLE verification_shapes_0090 RENAME TO verification_shapes;
