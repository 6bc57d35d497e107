-- The scopes each logged request needed (space-separated; NULL for entries written before
-- this column): what least-privilege suggestions (keyturn.suggestions) are made from.
ALTER TABLE verifications ADD COLUMN scopes TEXT;
