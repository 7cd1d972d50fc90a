#!/usr/bin/env bash
# Benchmark (issue 8): `apsctl backup` and `apsctl restore` of an installed instance against the
# plain tools doing the same work, in the same run. See bench/README.md.
#
# The instance: the generated package (FILES files, ~MEGABYTES MB; bench/genpkg.py --mysql) with
# a MariaDB database of ~DB_MB MB (rows of text and binary blobs, made on the server). Then
#   (a) apsctl backup ID --to FILE              vs  (b) tar -cf - ROOT | zstd -3 -T0 > F.tar.zst
#                                                     plus mariadb-dump --single-transaction > F.sql
#   (a) apsctl restore --from FILE --site … --path rN
#                                               vs  (b) zstd -dc F.tar.zst | tar -x  plus loading
#                                                     F.sql with the mariadb client into an empty db
# each ROUNDS times (medians, aim (a)/(b) <= 1.1x), and the peak memory (max RSS, GNU time) of
# `apsctl backup` (aim: under 64 MiB, independent of the data size).
#
# Needs root (site user, ownership) and the CI database server (`bash .ci/services.sh`).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

SITE_USER=${SITE_USER:-apsbench}
DB_MB=${DB_MB:-50}
ENV_FILE=/var/lib/apsctl-ci/env

[ "$(id -u)" -eq 0 ] || die "backup.sh must run as root"
[ -r "$ENV_FILE" ] || die "$ENV_FILE not found: run \`bash .ci/services.sh\` first"
for tool in zstd tar mariadb mariadb-dump; do
    command -v "$tool" >/dev/null 2>&1 || die "\`$tool\` is needed and was not found"
done
[ -x /usr/bin/time ] || { log "installing GNU time…"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }
setting() { sed -n "s/^$1=//p" "$ENV_FILE" | head -n 1; }
DB_HOST=$(setting APSCTL_TEST_MYSQL_HOST)
DB_PORT=$(setting APSCTL_TEST_MYSQL_PORT)
DB_USER=$(setting APSCTL_TEST_MYSQL_USER)
DB_PASSWORD_FILE=$(setting APSCTL_TEST_MYSQL_PASSWORD_FILE)

need_tools
build_apsctl
WORK=$(mktemp -d -p "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}" apsctl-bench.XXXXXX)
trap 'cleanup_all' EXIT
chmod 755 "$WORK"
log "generating the package source ($FILES files, ~$MEGABYTES MB, with a MariaDB database)…"
python3 "$BENCH_DIR/genpkg.py" "$WORK/src" --files "$FILES" --megabytes "$MEGABYTES" --seed "$SEED" --mysql >&2
"$APSCTL" --quiet package build "$WORK/src" -o "$WORK/pkg.app.zip" >/dev/null

OPTIONS="$WORK/client.cnf"
( umask 077; printf '[client]\nuser=%s\npassword="%s"\nhost=%s\nport=%s\nprotocol=tcp\n' \
    "$DB_USER" "$(head -n 1 "$DB_PASSWORD_FILE")" "$DB_HOST" "$DB_PORT" >"$OPTIONS" )
sql() { mariadb --defaults-extra-file="$OPTIONS" --batch --skip-column-names "$@"; }

HOME_DIR="$WORK/home"
DOCROOT="$WORK/site/docroot"
if ! id "$SITE_USER" >/dev/null 2>&1; then
    useradd --no-create-home --shell /usr/sbin/nologin "$SITE_USER"
fi
mkdir -p "$DOCROOT" "$WORK/out" "$WORK/plain"
chmod 755 "$WORK/site"
chown "$SITE_USER:" "$DOCROOT"
A() { "$APSCTL" --home "$HOME_DIR" --quiet "$@"; }
REF=$(A --json package import "$WORK/pkg.app.zip" | python3 -c 'import json,sys; print(json.load(sys.stdin)["package"])')
A site add bench --docroot "$DOCROOT" --url http://localhost:8080/ --user "$SITE_USER" >/dev/null
A db-server add benchdb --type mysql --host "$DB_HOST" --port "$DB_PORT" --admin-user "$DB_USER" \
    --admin-password-file "$DB_PASSWORD_FILE" >/dev/null
printf '{"admin_password": "bench-password"}' \
    | A install "$REF" --site bench --path app --settings-file - --accept-license >/dev/null
ID=1
SHOW=$(A --json instance show "$ID")
DB=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["databases"][0]["name"])' <<<"$SHOW")
ROOT="$DOCROOT/app"

cleanup_all() {
    for db in $(sql -e "SHOW DATABASES" 2>/dev/null | grep -E "^(bench|plain_restore_)" || true); do
        sql -e "DROP DATABASE IF EXISTS \`$db\`" 2>/dev/null || true
    done
    for login in $(sql -e "SELECT DISTINCT user FROM mysql.user WHERE user LIKE 'bench%'" 2>/dev/null || true); do
        sql -e "DROP USER IF EXISTS '$login'@'localhost', '$login'@'127.0.0.1', '$login'@'%'" 2>/dev/null || true
    done
    cleanup
}

ROWS=$((DB_MB * 500))
log "filling database \`$DB\` with $ROWS rows (~$DB_MB MB)…"
sql "$DB" >/dev/null <<SQL
CREATE TABLE notes (id INT UNSIGNED NOT NULL PRIMARY KEY, title VARCHAR(200) NOT NULL,
    body TEXT NOT NULL, data BLOB NOT NULL) ENGINE=InnoDB;
INSERT INTO notes SELECT seq, CONCAT('Note ', seq, ' ünïcødé'),
    REPEAT(CONCAT(MD5(RAND()), ' ', SHA1(RAND()), ' '), 13),
    CONCAT(UNHEX(SHA2(RAND(), 512)), UNHEX(SHA2(RAND(), 512)), UNHEX(SHA2(RAND(), 512)),
           UNHEX(SHA2(RAND(), 512)), UNHEX(SHA2(RAND(), 512)), UNHEX(SHA2(RAND(), 512)),
           UNHEX(SHA2(RAND(), 512)), UNHEX(SHA2(RAND(), 512)), UNHEX(SHA2(RAND(), 512)),
           UNHEX(SHA2(RAND(), 512)), UNHEX(SHA2(RAND(), 512)), UNHEX(SHA2(RAND(), 512)),
           UNHEX(SHA2(RAND(), 512)), UNHEX(SHA2(RAND(), 512)), UNHEX(SHA2(RAND(), 512)),
           UNHEX(SHA2(RAND(), 512)))
FROM seq_1_to_$ROWS;
SQL

backup_once() { A backup "$ID" --to "$WORK/out/$1.tar.zst"; }
plain_backup_once() {
    tar -cf - -C "$ROOT" . | zstd -q -3 -T0 -o "$WORK/plain/$1.tar.zst" \
        && mariadb-dump --defaults-extra-file="$OPTIONS" --single-transaction "$DB" >"$WORK/plain/$1.sql"
}
restore_once() { A restore --from "$WORK/out/$1.tar.zst" --site bench --path "restored-$1"; }
plain_restore_once() {
    mkdir -p "$WORK/plain/tree-$1" \
        && zstd -q -dc "$WORK/plain/$1.tar.zst" | tar -x -C "$WORK/plain/tree-$1" \
        && sql "plain_restore_$1" <"$WORK/plain/$1.sql"
}

log "warming up…"
backup_once warm; plain_backup_once warm

bw_a="" bw_b="" bc_a="" bc_b=""
for round in $(seq 1 "$ROUNDS"); do
    settle; time_ms ta ca backup_once "r$round"
    settle; time_ms tb cb plain_backup_once "r$round"
    bw_a+=" $ta" bw_b+=" $tb" bc_a+=" $ca" bc_b+=" $cb"
    log "backup round $round/$ROUNDS: apsctl $ta ms, tar|zstd + mariadb-dump $tb ms"
done
rw_a="" rw_b="" rc_a="" rc_b=""
for round in $(seq 1 "$ROUNDS"); do
    sql -e "CREATE DATABASE plain_restore_r$round"
    settle; time_ms ta ca restore_once "r$round"
    settle; time_ms tb cb plain_restore_once "r$round"
    rw_a+=" $ta" rw_b+=" $tb" rc_a+=" $ca" rc_b+=" $cb"
    log "restore round $round/$ROUNDS: apsctl $ta ms, zstd|tar + mariadb $tb ms"
done
peak_kb=$( { /usr/bin/time -f '%M' "$APSCTL" --home "$HOME_DIR" --quiet backup "$ID" --to "$WORK/out/peak.tar.zst" >/dev/null; } 2>&1 | tail -n 1)

size=$(stat -c %s "$WORK/out/r1.tar.zst")
echo "apsctl backup vs tar | zstd -3 -T0 + mariadb-dump ($FILES files, ~$MEGABYTES MB, ~$DB_MB MB database; archive $size bytes; $ROUNDS rounds)"
report "apsctl backup" "tar|zstd+dump" 1.1 "$bw_a" "$bw_b" "$bc_a" "$bc_b"
echo
echo "apsctl restore vs zstd -dc | tar -x + mariadb < dump"
report "apsctl restore" "zstd|tar+load" 1.1 "$rw_a" "$rw_b" "$rc_a" "$rc_b"
echo
echo "peak memory of apsctl backup (max RSS): $((peak_kb / 1024)) MiB (aim: under 64 MiB)"
