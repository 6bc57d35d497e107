-- The verification log in blocks (keyturn.store.verification_blocks): a batch's entries
-- sharing a key, shape and request-id head are one row, their ids consecutive
-- from the block's `id`, `at` the newest entry's time, each entry's time, request-id tail,
-- path and client address packed in `times`, `tails`, `paths` and `clients` (JSON arrays;
-- an address not known is null). A row and its index entries were most of what an entry
-- cost the writer; a block pays them once for all its entries.
-- Existing entries become blocks of one entry each: the same id, time, key and shape,
-- `clients` the array of the entry's client, the request id split as split_request_id
-- splits it (its last two characters are the tail; an id of two characters or fewer is
-- all head), no packed times (a block of one is dated by `at`).
-- Ids are taken by the writer from verification_ids, `count` at a time, in its writing
-- transaction: the table goes on after every id ever given (the old table's
-- AUTOINCREMENT sequence, also when its newest entries were deleted).
CREATE TABLE verifications_0100 (
    id     INTEGER PRIMARY KEY,
    at     REAL NOT NULL,
    count  INTEGER NOT NULL,
    key_id TEXT,
    shape  INTEGER NOT NULL,
    head   TEXT NOT NULL,
    tails  TEXT NOT NULL,
    times  BLOB,
    paths  TEXT NOT NULL,
    clients TEXT NOT NULL
);
INSERT INTO verifications_0100 (id, at, count, key_id, shape, head, tails, times, paths,
                                clients)
SELECT id, at, 1, key_id, shape,
       CASE WHEN length(request_id) <= 2 THEN request_id
            ELSE substr(request_id, 1, length(request_id) - 2) END,
       json_array(CASE WHEN length(request_id) <= 2 THEN ''
                       ELSE substr(request_id, length(request_id) - 1) END),
       NULL, json_array(path), json_array(client)
FROM verifications
ORDER BY id;
CREATE TABLE verification_ids (
    next INTEGER NOT NULL
);
INSERT INTO verification_ids (next)
SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'verifications'), 0),
           COALESCE((SELECT MAX(id) FROM verifications), 0)) + 1;
-- Late entries (written a minute or more after their time) are noted by their block. The
-- writer stored a note's time through a datetime, rounded to the microsecond, and the
-- entry's as it was: they are matched to within a microsecond.
CREATE TABLE verification_late_0100 (
    block INTEGER NOT NULL,
    at    REAL NOT NULL
);
INSERT INTO verification_late_0100 (block, at)
SELECT DISTINCT v.id, l.at
FROM verification_late l JOIN verifications v
  ON v.request_id = l.request_id AND abs(v.at - l.at) < 0.000001;
DROP TABLE verification_late;
ALTER TABLE verification_late_0100 RENAME TO verification_late;
DROP TABLE verifications;
DELETE FROM sqlite_sequence WHERE name = 'verifications';
ALTER TABLE verifications_0100 RENAME TO verifications;
CREATE INDEX verifications_request ON verifications (head);
CREATE INDEX verifications_key ON verifications (key_id, id) WHERE key_id IS NOT NULL;
-- A loose entry (one whose key, shape and request-id head no other entry of its batch
-- shares: a trusted proxy's random request ids) is in a block of its key and shape whose
-- head is '' and whose tails are whole request ids; its id is found by its request id
-- here. No request id but '' has the head '', so an existing entry of that id is one.
CREATE TABLE verification_requests (
    id         INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL
);
INSERT INTO verification_requests (id, request_id)
SELECT id, '' FROM verifications WHERE head = '';
CREATE INDEX verification_requests_request ON verification_requests (request_id)
