#!/usr/bin/env bash
# A pg_dump of posada's database in the custom format, checked, kept BACKUP_KEEP_DAYS days
# (docs/deploy.md, "Backups"). Run nightly by systemd/posada-backup.timer.
#
# Reads the replicas' environment file: POSADA_DATABASE_DIRECT_URL (the server itself,
# past PgBouncer: pg_dump holds one session for the whole dump), else POSADA_DATABASE_URL.
# Needs pg_dump, pg_restore and psql of the server's major version or newer
# (PG_DUMP, PG_RESTORE and PSQL name other binaries).
#
# A password in the URL shows in `ps` while pg_dump runs: on a shared machine leave it out
# of the URL and put it in ~/.pgpass (0600) of the user running this (and posada).
#
# Restore: docs/deploy.md, "Restoring".
set -euo pipefail

url="${POSADA_DATABASE_DIRECT_URL:-${POSADA_DATABASE_URL:-}}"
if [ -z "$url" ]; then
    echo "posada-backup: set POSADA_DATABASE_DIRECT_URL or POSADA_DATABASE_URL" >&2
    exit 2
fi
dir="${BACKUP_DIR:-/var/backups/posada}"
keep="${BACKUP_KEEP_DAYS:-14}"
pg_dump="${PG_DUMP:-pg_dump}"
pg_restore="${PG_RESTORE:-pg_restore}"
psql="${PSQL:-psql}"

umask 077
mkdir -p "$dir"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
file="$dir/posada-$stamp.dump"
partial="$file.partial"
trap 'rm -f "$partial"' EXIT

# One consistent snapshot of every table (a dump never blocks posada's reads or writes).
"$pg_dump" --dbname="$url" --format=custom --file="$partial"
# A dump that pg_restore cannot read is no backup: list its contents before keeping it.
"$pg_restore" --list "$partial" >/dev/null
mv "$partial" "$file"

# What a restore must be served with: the embedding size and models of the stored vectors
# (posada refuses a database of another size or model; docs/deploy.md, "Restoring").
"$psql" --dbname="$url" --no-psqlrc --tuples-only --no-align --quiet --command="
    SELECT 'embedding_dim=' || value FROM posada_meta WHERE key = 'embedding_dim'
    UNION ALL
    SELECT 'embedding_model=' || m FROM (SELECT DISTINCT embedding_model AS m FROM chunks
                                         UNION SELECT embedding_model FROM faq) s" \
    >"$file.meta"

find "$dir" -maxdepth 1 -name 'posada-*.dump*' -mtime +"$keep" -delete
echo "posada-backup: $file ($(du -h "$file" | cut -f1)); $(tr '\n' ' ' <"$file.meta")"
