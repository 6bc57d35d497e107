-- Client addresses a key may be used from: canonical IP networks separated by spaces
-- (empty: anywhere), read into integer ranges when the key is read.
ALTER TABLE keys ADD COLUMN allowed_ips TEXT NOT NULL DEFAULT '';
