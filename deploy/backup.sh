#!/usr/bin/env bash
# A base backup of the registry's PostgreSQL into a dated folder, checked against its manifest.
#
#   deploy/backup.sh [--keep N] [--archive DIR] BACKUP_ROOT [pg_basebackup connection options]
#
#   deploy/backup.sh --keep 7 --archive /srv/wal-archive /srv/backups \
#       -d 'postgres://backup@db.example:5432/postgres'      # password from ~/.pgpass
#
# Makes BACKUP_ROOT/<UTC time>/ with pg_basebackup (plain format, the WAL the copy needs
# streamed into it (-X stream) so it restores by itself, a fast checkpoint, a manifest), first
# as <UTC time>.partial, checked with pg_verifybackup and only then renamed: a folder without
# .partial is a whole, verified backup. The role connecting needs REPLICATION (or is a
# superuser) and a `host replication` line in pg_hba.conf. It prints the folder and the first
# WAL segment a restore of it needs.
#
# With --keep N, the backups beyond the N newest are deleted afterwards; with --archive DIR as
# well, archived WAL older than the oldest kept backup's first segment is removed from DIR
# (pg_archivecleanup). Keep at least two backups: a restore needs one backup and every archived
# segment after its start.
#
# Run it as an account that may write BACKUP_ROOT (and DIR); the backup holds every row of the
# ledger database, role password hashes included: keep it as private as the database. See
# README.md, "Backups and restore", for the settings that fill the archive and for restoring.
set -euo pipefail

keep=""
archive=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --keep) keep="$2"; shift 2 ;;
        --archive) archive="$2"; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) break ;;
    esac
done
if [[ $# -lt 1 ]]; then
    echo "usage: $0 [--keep N] [--archive DIR] BACKUP_ROOT [pg_basebackup connection options]" >&2
    exit 2
fi
if [[ -n "$keep" && ! "$keep" =~ ^[1-9][0-9]*$ ]]; then
    echo "--keep wants a number of backups, at least 1" >&2
    exit 2
fi
if [[ -n "$archive" && -z "$keep" ]]; then
    echo "--archive goes with --keep (the archive is trimmed to the oldest backup kept)" >&2
    exit 2
fi
root="$1"
shift

# The client tools: $LADING_PG_BIN, else the highest /usr/lib/postgresql/*/bin (Debian keeps
# pg_verifybackup only there), else $PATH.
bin="${LADING_PG_BIN:-}"
if [[ -z "$bin" ]]; then
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
fi
tool() {
    if [[ -n "$bin" && -x "$bin/$1" ]]; then echo "$bin/$1"; else command -v "$1"; fi
}
basebackup=$(tool pg_basebackup) || { echo "pg_basebackup not found" >&2; exit 1; }
verifybackup=$(tool pg_verifybackup) || { echo "pg_verifybackup not found" >&2; exit 1; }

mkdir -p "$root"
stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
final="$root/$stamp"
partial="$final.partial"
if [[ -e "$final" ]]; then
    echo "$final exists" >&2
    exit 1
fi
rm -rf "$partial"
"$basebackup" -D "$partial" -F plain -X stream --checkpoint=fast --label "lading $stamp" "$@"
"$verifybackup" "$partial"
mv "$partial" "$final"
sync "$root"
first=$(sed -n 's/^START WAL LOCATION: .* (file \([0-9A-F]*\))$/\1/p' "$final/backup_label")
echo "backup $final (first WAL segment needed: $first)"

if [[ -n "$keep" ]]; then
    # Whole backups only (no .partial), oldest first; the names sort by time.
    mapfile -t backups < <(find "$root" -mindepth 1 -maxdepth 1 -type d \
        -name '[0-9][0-9][0-9][0-9]-*Z' -printf '%f\n' | sort)
    drop=$(( ${#backups[@]} - keep ))
    for (( i = 0; i < drop; i++ )); do
        echo "removing the older backup $root/${backups[$i]}"
        rm -rf -- "${root:?}/${backups[$i]}"
    done
    if [[ -n "$archive" ]]; then
        oldest="${backups[$(( drop > 0 ? drop : 0 ))]}"
        oldest_first=$(sed -n 's/^START WAL LOCATION: .* (file \([0-9A-F]*\))$/\1/p' \
            "$root/$oldest/backup_label")
        "$(tool pg_archivecleanup)" "$archive" "$oldest_first"
        echo "archive $archive trimmed to $oldest_first (the oldest backup kept, $oldest)"
    fi
fi
