#!/usr/bin/env bash
# Benchmark: apsctl's MySQL/MariaDB dump against a plain `mariadb-dump --single-transaction`.
#
# apsctl dumps a database through aps_host::db::DatabaseServer::dump (mariadb-dump with a 0600
# option file, --single-transaction --routines --triggers --hex-blob, streamed to a 0600 file).
# apsctl has no dump command yet, so this script runs the example program
# crates/aps-host/examples/dump.rs, built in release mode, which calls exactly that function.
#
# What it does, in one run:
#   1. creates a MariaDB database of about SIZE MB (default 100): rows with random text and
#      random binary blobs, written through the mariadb client as the CI administrator;
#   2. builds the example (`cargo build --release -p aps-host --example dump`, the binary that
#      `cargo run --release -p aps-host --example dump` runs);
#   3. dumps the database ROUNDS times (default 5) with each tool, rotating which goes first,
#      after one untimed warm-up dump of each: apsctl; `mariadb-dump --single-transaction`
#      (the reference); and, for information, mariadb-dump with the same options as apsctl
#      (which isolates apsctl's own overhead from the effect of its options: --hex-blob writes
#      larger dumps but is much faster than escaping binary data);
#   4. prints every time, the best and the median of each, and the ratio apsctl / mariadb-dump
#      of the medians (target: at most 1.10);
#   5. drops the database and deletes the dumps (unless --keep).
#
# Run on a machine where .ci/services.sh ran (it reads /var/lib/apsctl-ci/env and the admin
# password file named there), from anywhere inside the repository:
#   bench/dump.sh [--size-mb N] [--rounds N] [--keep]
# Dumps are written under $TMPDIR (default /tmp): it needs about 3 x SIZE MB free.
# Exit status: 0 when the benchmark ran (whatever the ratio), 1 on error.

set -euo pipefail

SIZE_MB=100
ROUNDS=5
KEEP=0
ENV_FILE=/var/lib/apsctl-ci/env
TARGET_RATIO=1.10

die() { echo "dump.sh: error: $*" >&2; exit 1; }
log() { echo "dump.sh: $*" >&2; }

while (($#)); do
    case $1 in
        --size-mb) SIZE_MB=${2:?--size-mb needs a number}; shift 2 ;;
        --rounds) ROUNDS=${2:?--rounds needs a number}; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h | --help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[[ $SIZE_MB =~ ^[1-9][0-9]*$ ]] || die "--size-mb must be a positive number"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive number"

# ------------------------------------------------------------------ settings of the CI server
[[ -r $ENV_FILE ]] || die "$ENV_FILE not found: run \`bash .ci/services.sh\` first"
setting() { sed -n "s/^$1=//p" "$ENV_FILE" | head -n 1; }
HOST=$(setting APSCTL_TEST_MYSQL_HOST)
PORT=$(setting APSCTL_TEST_MYSQL_PORT)
USER_NAME=$(setting APSCTL_TEST_MYSQL_USER)
PASSWORD_FILE=$(setting APSCTL_TEST_MYSQL_PASSWORD_FILE)
[[ -n $HOST && -n $PORT && -n $USER_NAME && -r $PASSWORD_FILE ]] ||
    die "incomplete MySQL settings in $ENV_FILE (rerun .ci/services.sh)"

CLIENT=$(command -v mariadb || command -v mysql) || die "no mariadb/mysql client installed"
DUMPER=$(command -v mariadb-dump || command -v mysqldump) || die "no mariadb-dump/mysqldump installed"
command -v cargo >/dev/null || die "cargo not found"

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/apsctl-dump-bench.XXXXXX")
DB="apsctl_bench_dump_$$"

# The password reaches the clients through a 0600 option file, never argv or the environment.
OPTIONS="$WORK/client.cnf"
(
    umask 077
    printf '[client]\nuser=%s\npassword="%s"\nhost=%s\nport=%s\nprotocol=tcp\n' \
        "$USER_NAME" "$(head -n 1 "$PASSWORD_FILE")" "$HOST" "$PORT" >"$OPTIONS"
)

sql() { "$CLIENT" --defaults-extra-file="$OPTIONS" --batch --skip-column-names "$@"; }

cleanup() {
    if ((KEEP)); then
        log "kept database \`$DB\` and $WORK"
    else
        sql -e "DROP DATABASE IF EXISTS \`$DB\`" 2>/dev/null || true
        rm -rf -- "$WORK"
    fi
}
trap cleanup EXIT

# ------------------------------------------------------------------ 1. the database
# A row holds ~1 KiB of text and a 1 KiB blob of random bytes (SHA-512 of random numbers), so
# ~500 rows make 1 MB. Generated on the server from MariaDB's sequence engine (seq_1_to_N).
ROWS=$((SIZE_MB * 500))
log "creating database \`$DB\` with $ROWS rows (~$SIZE_MB MB) on $HOST:$PORT"
sql -e "CREATE DATABASE \`$DB\` CHARACTER SET utf8mb4"
sql "$DB" -e "SELECT 1 FROM seq_1_to_1" >/dev/null 2>&1 ||
    die "the server has no sequence engine (seq_1_to_N); this benchmark needs MariaDB"
sql "$DB" >/dev/null <<SQL
CREATE TABLE notes (
    id INT UNSIGNED NOT NULL PRIMARY KEY,
    title VARCHAR(200) NOT NULL,
    body TEXT NOT NULL,
    data BLOB NOT NULL,
    created DATETIME NOT NULL
) ENGINE=InnoDB;
CREATE TABLE tags (
    note_id INT UNSIGNED NOT NULL,
    tag VARCHAR(64) NOT NULL,
    PRIMARY KEY (note_id, tag)
) ENGINE=InnoDB;
SET SESSION max_heap_table_size = 1073741824;
INSERT INTO notes
SELECT seq,
       CONCAT('Note ', seq, ' — ', LEFT(MD5(RAND()), 12), ' ünïcødé'),
       CONCAT_WS(' ', REPEAT(CONCAT(MD5(RAND()), ' ', SHA1(RAND()), ' '), 13),
                 'quote '' backslash \\\\ newline\nend'),
       CONCAT(UNHEX(SHA2(RAND(), 512)), UNHEX(SHA2(RAND(), 512)), UNHEX(SHA2(RAND(), 512)),
              UNHEX(SHA2(RAND(), 512)), UNHEX(SHA2(RAND(), 512)), UNHEX(SHA2(RAND(), 512)),
              UNHEX(SHA2(RAND(), 512)), UNHEX(SHA2(RAND(), 512)), UNHEX(SHA2(RAND(), 512)),
              UNHEX(SHA2(RAND(), 512)), UNHEX(SHA2(RAND(), 512)), UNHEX(SHA2(RAND(), 512)),
              UNHEX(SHA2(RAND(), 512)), UNHEX(SHA2(RAND(), 512)), UNHEX(SHA2(RAND(), 512)),
              UNHEX(SHA2(RAND(), 512))),
       NOW() - INTERVAL seq MINUTE
FROM seq_1_to_$ROWS;
INSERT INTO tags SELECT id, CONCAT('tag', id % 50) FROM notes;
INSERT INTO tags SELECT id, CONCAT('topic', id % 7) FROM notes;
ANALYZE TABLE notes, tags;
SQL
SIZE_BYTES=$(sql -e "SELECT SUM(data_length + index_length) FROM information_schema.TABLES WHERE table_schema = '$DB'")
log "database size on the server: $((SIZE_BYTES / 1048576)) MiB"

# ------------------------------------------------------------------ 2. the example program
log "building the dump example (release)"
(cd "$REPO" && cargo build --quiet --release -p aps-host --example dump)
TARGET_DIR=$(cd "$REPO" && cargo metadata --format-version 1 --no-deps |
    grep -o '"target_directory":"[^"]*"' | sed 's/^"target_directory":"//; s/"$//')
EXAMPLE="${TARGET_DIR:-$REPO/target}/release/examples/dump"
[[ -x $EXAMPLE ]] || die "the build did not produce $EXAMPLE"

# ------------------------------------------------------------------ 3. the rounds
now() { date +%s%N; }

# Each function dumps into $1 and prints the seconds it took.
dump_apsctl() {
    local t0 t1
    t0=$(now)
    "$EXAMPLE" --database "$DB" --out "$1" --host "$HOST" --port "$PORT" --user "$USER_NAME" \
        --password-file "$PASSWORD_FILE" 2>"$WORK/apsctl.err" ||
        { cat "$WORK/apsctl.err" >&2; die "apsctl's dump failed"; }
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 }'
}
dump_plain() {
    local t0 t1
    t0=$(now)
    "$DUMPER" --defaults-extra-file="$OPTIONS" --single-transaction "$DB" >"$1" ||
        die "mariadb-dump failed"
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 }'
}

# mariadb-dump with the options apsctl passes (crates/aps-host/src/db/mysql.rs, `dump`).
dump_same() {
    local t0 t1
    t0=$(now)
    "$DUMPER" --defaults-extra-file="$OPTIONS" --single-transaction --routines --triggers \
        --hex-blob --default-character-set=utf8mb4 --no-tablespaces -- "$DB" >"$1" ||
        die "mariadb-dump (apsctl's options) failed"
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 }'
}

log "warm-up"
dump_apsctl "$WORK/warm-apsctl.sql" >/dev/null
dump_plain "$WORK/warm-plain.sql" >/dev/null
dump_same "$WORK/warm-same.sql" >/dev/null
APSCTL_BYTES=$(stat -c %s "$WORK/warm-apsctl.sql")
PLAIN_BYTES=$(stat -c %s "$WORK/warm-plain.sql")
SAME_BYTES=$(stat -c %s "$WORK/warm-same.sql")
rm -f -- "$WORK"/warm-*.sql

apsctl_times=()
plain_times=()
same_times=()
for ((round = 1; round <= ROUNDS; round++)); do
    case $((round % 3)) in
        1) order=(apsctl plain same) ;;
        2) order=(plain same apsctl) ;;
        0) order=(same apsctl plain) ;;
    esac
    for tool in "${order[@]}"; do
        t=$("dump_$tool" "$WORK/$tool.sql")
        rm -f -- "$WORK/$tool.sql"
        case $tool in
            apsctl) a=$t; apsctl_times+=("$t") ;;
            plain) p=$t; plain_times+=("$t") ;;
            same) m=$t; same_times+=("$t") ;;
        esac
    done
    log "round $round: apsctl ${a}s, mariadb-dump ${p}s, mariadb-dump with apsctl's options ${m}s"
done

# ------------------------------------------------------------------ 4. the figures
best() { printf '%s\n' "$@" | sort -g | head -n 1; }
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR % 2) printf "%.3f\n", v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
A_BEST=$(best "${apsctl_times[@]}")
P_BEST=$(best "${plain_times[@]}")
A_MED=$(median "${apsctl_times[@]}")
P_MED=$(median "${plain_times[@]}")
RATIO=$(awk -v a="$A_MED" -v p="$P_MED" 'BEGIN { printf "%.2f\n", a / p }')
RATIO_BEST=$(awk -v a="$A_BEST" -v p="$P_BEST" 'BEGIN { printf "%.2f\n", a / p }')
S_BEST=$(best "${same_times[@]}")
S_MED=$(median "${same_times[@]}")
RATIO_SAME=$(awk -v a="$A_MED" -v p="$S_MED" 'BEGIN { printf "%.2f\n", a / p }')
VERDICT=$(awk -v r="$RATIO" -v t="$TARGET_RATIO" 'BEGIN { print (r <= t) ? "within" : "ABOVE" }')

cat <<REPORT
database:      $DB, $ROWS rows, $((SIZE_BYTES / 1048576)) MiB on the server ($("$CLIENT" --version | sed 's/^.*Distrib //; s/,.*//'))
dump sizes:    apsctl $((APSCTL_BYTES / 1048576)) MiB, mariadb-dump $((PLAIN_BYTES / 1048576)) MiB, with apsctl's options $((SAME_BYTES / 1048576)) MiB
rounds:        $ROUNDS (after one warm-up each)
apsctl:        best ${A_BEST}s, median ${A_MED}s   (${apsctl_times[*]})
mariadb-dump:  best ${P_BEST}s, median ${P_MED}s   (${plain_times[*]})
  same opts:   best ${S_BEST}s, median ${S_MED}s   (${same_times[*]})
ratio:         ${RATIO}x median, ${RATIO_BEST}x best — $VERDICT the ${TARGET_RATIO}x target
overhead:      ${RATIO_SAME}x the median of mariadb-dump with apsctl's own options
REPORT
