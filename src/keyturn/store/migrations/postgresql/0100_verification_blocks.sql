-- The verification log in blocks (keyturn.store.verification_blocks): a batch's entries
-- sharing a key, shape and request-id head are one row, their ids consecutive
-- from the block's `id`, `at` the newest entry's time, each entry's time, request-id tail,
-- path and client address packed in `times` (little-endian doubles, Unix seconds),
-- `tails`, `paths` and `clients` (JSON arrays; an address not known is null). A row and
-- its index entries were most of what an entry cost the writer; a block pays them once
-- for all its entries.
-- Existing entries become blocks of one entry each: the same id, time, key and shape,
-- `clients` the array of the entry's client, the request id split as split_request_id
-- splits it (its last two characters are the tail; an id of two characters or fewer is
-- all head), no packed times (a block of one is dated by `at`).
-- Ids are taken by the writer from verification_ids, `count` at a time, in its writing
-- transaction (the row's lock serialises the writers of several instances): the table
-- goes on after every id ever given (the old identity's sequence, also when its newest
-- entries were deleted).
CREATE TABLE verifications_0100 (
    id     bigint PRIMARY KEY,
    at     timestamptz NOT NULL,
    count  integer NOT NULL,
    key_id text,
    shape  bigint NOT NULL,
    head   text NOT NULL,
    tails  text NOT NULL,
    times  bytea,
    paths  text NOT NULL,
    clients text NOT NULL
);
INSERT INTO verifications_0100 (id, at, count, key_id, shape, head, tails, times, paths,
                                clients)
SELECT id, at, 1, key_id, shape,
       CASE WHEN length(request_id) <= 2 THEN request_id
            ELSE substr(request_id, 1, length(request_id) - 2) END,
       json_build_array(CASE WHEN length(request_id) <= 2 THEN ''
                             ELSE substr(request_id, length(request_id) - 1) END)::text,
       NULL, json_build_array(path)::text, json_build_array(client)::text
FROM verifications
ORDER BY id;
CREATE TABLE verification_ids (
    next bigint NOT NULL
);
INSERT INTO verification_ids (next)
SELECT GREATEST(
           COALESCE(pg_sequence_last_value(
               pg_get_serial_sequence('verifications', 'id')::regclass), 0),
           COALESCE((SELECT MAX(id) FROM verifications), 0)
       ) + 1;
-- Late entries (written a minute or more after their time) are noted by their block.
CREATE TABLE verification_late_0100 (
    block bigint NOT NULL,
    at    timestamptz NOT NULL
);
INSERT INTO verification_late_0100 (block, at)
SELECT DISTINCT v.id, l.at
FROM verification_late l JOIN verifications v ON v.request_id = l.request_id AND v.at = l.at;
DROP TABLE verification_late;
ALTER TABLE verification_late_0100 RENAME TO verification_late;
DROP TABLE verifications;
ALTER TABLE verifications_0100 RENAME TO verifications;
CREATE INDEX verifications_request ON verifications (head);
CREATE INDEX verifications_key ON verifications (key_id, id) WHERE key_id IS NOT NULL;
-- A loose entry (one whose key, shape and request-id head no other entry of its batch
-- shares: a trusted proxy's random request ids) is in a block of its key and shape whose
-- head is '' and whose tails are whole request ids; its id is found by its request id
-- here. No request id but '' has the head '', so an existing entry of that id is one.
CREATE TABLE verification_requests (
    id         bigint PRIMARY KEY,
    request_id text NOT NULL
);
INSERT INTO verification_requests (id, request_id)
SELECT id, '' FROM verifications WHERE head = '';
CREATE INDEX verification_requests_request ON verification_requests (request_id);
-- The table was rewritten: without fresh statistics the planner reads a busy key's blocks
-- by a scan of the whole table (hundreds of milliseconds) until autovacuum analyzes it.
ANALYZE verifications;
