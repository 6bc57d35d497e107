#!/usr/bin/env bash
# The main job on SQLite: issue a key, then check requests carrying it, right and wrong.
set -euo pipefail
bin="$(dirname "$0")/../.venv/bin"
db="sqlite:///keyturn.db"
key=$("$bin/keyturn" keys create --name "demo key" --scope read --db "$db" --format json \
      | "$bin/python" -c 'import json,sys; print(json.load(sys.stdin)["key"])')
echo "Issued a key with scope 'read' into ./keyturn.db (shown once, stored as a hash)."
echo
echo '$ keyturn check -H "Authorization: Bearer <key>" --scope read'
"$bin/keyturn" check -H "Authorization: Bearer $key" --scope read --db "$db" || true
echo
echo '$ keyturn check -H "Authorization: Token <key>"'
"$bin/keyturn" check -H "Authorization: Token $key" --db "$db" || true
echo
echo '$ keyturn check -H "Authorization: Bearer <key>" --scope write'
"$bin/keyturn" check -H "Authorization: Bearer $key" --scope write --db "$db" || true
