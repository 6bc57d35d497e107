-- The verification log, cheaper to write: what repeats from request to request (outcome,
-- mask, client, method, user agent, scopes: a request's "shape") is stored once in
-- verification_shapes, and each entry is its time, request id, key id, shape and path (a
-- path often differs from request to request: ids in it). The
-- index on `at` goes: the purge walks the entries in id order (ids grow with time) and
-- deletes by request id those written late (verification_late), and a `since` filter
-- reads the entries newest first. The key index leaves out entries of no key (an
-- unknown key, a request without one), which no key's query reads.
-- Existing entries keep their ids and read as before; each distinct shape among them is
-- numbered in one order by both queries below (DENSE_RANK), so no join is needed.
-- No foreign key on `shape`: checking it would cost every insert a lookup, and a shape is
-- deleted only when no entry can name it (keyturn._verifications, the purge).
CREATE TABLE verification_shapes (
    id         INTEGER PRIMARY KEY,
    created    REAL NOT NULL,
    outcome    TEXT NOT NULL,
    masked     TEXT,
    client     TEXT,
    method     TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    scopes     TEXT
);
INSERT INTO verification_shapes
    (id, created, outcome, masked, client, method, user_agent, scopes)
SELECT DENSE_RANK() OVER (
           ORDER BY outcome, masked, client, method, user_agent, scopes
       ),
       MAX(at), outcome, masked, client, method, user_agent, scopes
FROM verifications
GROUP BY outcome, masked, client, method, user_agent, scopes;
CREATE TABLE verifications_0080 (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         REAL NOT NULL,
    request_id TEXT NOT NULL,
    key_id     TEXT,
    shape      INTEGER NOT NULL,
    path       TEXT NOT NULL
);
INSERT INTO verifications_0080 (id, at, request_id, key_id, shape, path)
SELECT id, at, request_id, key_id,
       DENSE_RANK() OVER (ORDER BY outcome, masked, client, method, user_agent, scopes), path
FROM verifications
ORDER BY id;
-- Ids are never handed out twice: the new table goes on from the old one's last id, also
-- when its newest entries were deleted.
INSERT INTO sqlite_sequence (name, seq)
SELECT 'verifications_0080', seq FROM sqlite_sequence
WHERE name = 'verifications'
  AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'verifications_0080');
UPDATE sqlite_sequence
SET seq = MAX(seq, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'verifications'), 0))
WHERE name = 'verifications_0080';
DROP TABLE verifications;
ALTER TABLE verifications_0080 RENAME TO verifications;
CREATE INDEX verifications_request ON verifications (request_id);
CREATE INDEX verifications_key ON verifications (key_id, id) WHERE key_id IS NOT NULL;
-- Entries written a minute or more after their time (the store was down): the purge
-- deletes them by request id, as walking the ids it would reach them late. Among existing entries, those older by a minute than
-- one written before them.
CREATE TABLE verification_late (
    request_id TEXT NOT NULL,
    at         REAL NOT NULL
);
INSERT INTO verification_late (request_id, at)
SELECT request_id, at FROM (
    SELECT request_id, at, MAX(at) OVER (
               ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
           ) AS newest_before
    FROM verifications
) w
WHERE at < newest_before - 60;
