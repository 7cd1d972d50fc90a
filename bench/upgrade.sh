#!/usr/bin/env bash
# Benchmark (issue 10): `apsctl upgrade` of an installed instance to the next version of its
# package against `apsctl install` of the old version, and the share of the upgrade spent on its
# safety backup. See bench/README.md.
#
# Two versions of the generated package (FILES files, ~MEGABYTES MB, bench/genpkg.py --mysql),
# same identity: n (1.0.0-1) and n+1 (1.0.1-1), whose APP-META.xml declares
# `<upgrade match="/application/version &lt; '1.0.1'"/>` and in which CHANGED_PERCENT % of the
# files under htdocs/ have other contents (same sizes). Both are built and imported. Then, each
# of ROUNDS rounds (after one untimed warm-up of each command):
#   (a) apsctl install n --path iN                        (a fresh path, timed)
#   (b) apsctl upgrade ID --to n+1 --accept-license       of an instance installed at n just
#       before (untimed, its database then filled with ~DB_MB MB of rows), timed; its stderr
#       step lines are time-stamped: the safety backup is the time from `instance ID: safety
#       backup …` to the next step line that is not the backup's own `dumping database …`
#   (c) apsctl backup ID --to FILE                        of the same instance just before (b),
#       timed, as a cross-check of the safety backup's time
# and prints the medians, the ratio (b)/(a) and the safety backup's share of the upgrade.
#
# Needs root (site user, ownership) and the CI database server (`bash .ci/services.sh`).
# Everything (instances with their databases and logins, the scratch folder) is removed on exit.
ROUNDS=${ROUNDS:-3}
# shellcheck source=bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

SITE_USER=${SITE_USER:-apsbench}
DB_MB=${DB_MB:-50}
CHANGED_PERCENT=${CHANGED_PERCENT:-10}
ENV_FILE=/var/lib/apsctl-ci/env

[ "$(id -u)" -eq 0 ] || die "upgrade.sh must run as root"
[ -r "$ENV_FILE" ] || die "$ENV_FILE not found: run \`bash .ci/services.sh\` first"
command -v mariadb >/dev/null 2>&1 || die "\`mariadb\` is needed and was not found"
[ -n "${EPOCHREALTIME:-}" ] || die "bash 5 or later is needed (EPOCHREALTIME)"
setting() { sed -n "s/^$1=//p" "$ENV_FILE" | head -n 1; }
DB_HOST=$(setting APSCTL_TEST_MYSQL_HOST)
DB_PORT=$(setting APSCTL_TEST_MYSQL_PORT)
DB_USER=$(setting APSCTL_TEST_MYSQL_USER)
DB_PASSWORD_FILE=$(setting APSCTL_TEST_MYSQL_PASSWORD_FILE)

need_tools
build_apsctl

# Every instance made and its database are listed in WORK/instances and WORK/databases (files:
# the timed installs run in a subshell), removed on exit.
cleanup_all() {
    local id db
    if [ -n "${HOME_DIR:-}" ] && [ -d "$HOME_DIR" ]; then
        while read -r id; do
            "$APSCTL" --home "$HOME_DIR" --quiet remove "$id" --files all --yes </dev/null >/dev/null 2>&1 \
                || "$APSCTL" --home "$HOME_DIR" --quiet remove "$id" --files all --yes --force </dev/null >/dev/null 2>&1 \
                || log "warning: removing instance $id failed"
        done < <(cat "$WORK/instances" 2>/dev/null)
    fi
    if [ -n "${OPTIONS:-}" ] && [ -r "$OPTIONS" ]; then
        while read -r db; do
            sql -e "DROP DATABASE IF EXISTS \`$db\`" </dev/null 2>/dev/null || true
        done < <(cat "$WORK/databases" 2>/dev/null)
    fi
    cleanup
}
WORK=$(mktemp -d -p "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}" apsctl-bench.XXXXXX)
trap cleanup_all EXIT
trap 'exit 130' INT TERM
chmod 755 "$WORK"
log "scratch folder: $WORK ($(findmnt -n -o FSTYPE -T "$WORK" 2>/dev/null || stat -f -c %T "$WORK") file system)"

log "generating version 1.0.0 ($FILES files, ~$MEGABYTES MB, with a MariaDB database)…"
python3 "$BENCH_DIR/genpkg.py" "$WORK/src1" --files "$FILES" --megabytes "$MEGABYTES" --seed "$SEED" --mysql >&2
log "deriving version 1.0.1 ($CHANGED_PERCENT % of the files changed, an upgrade rule)…"
cp -a "$WORK/src1" "$WORK/src2"
python3 - "$WORK/src2" "$CHANGED_PERCENT" "$SEED" <<'EOF' >&2
import os, random, re, sys
root, percent, seed = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(os.path.join(root, "htdocs")) for f in fs)
rng = random.Random(seed + 1)
picked = rng.sample(files, round(len(files) * percent / 100))
changed = 0
for path in picked:
    with open(path, "rb") as f:
        data = f.read()
    # Other contents, same size and about the same compressibility: a marker, then the old
    # bytes rotated by a random offset.
    k = rng.randrange(1, max(2, len(data)))
    marker = b"/* 1.0.1 */\n"
    new = (marker + data[k:] + data[:k])[:len(data)]
    if new == data:
        new = bytes(b ^ 0xFF for b in data)
    with open(path, "wb") as f:
        f.write(new)
    changed += 1
meta_path = os.path.join(root, "APP-META.xml")
with open(meta_path, encoding="utf-8") as f:
    meta = f.read()
meta, n = re.subn(r"<version>1\.0\.0</version>", "<version>1.0.1</version>", meta, count=1)
assert n == 1, "no <version>1.0.0</version> in APP-META.xml"
meta, n = re.subn(r"(\n\s*)<service ", "\\1<upgrade match=\"/application/version &lt; '1.0.1'\"/>\\1<service ", meta, count=1)
assert n == 1, "no <service in APP-META.xml"
with open(meta_path, "w", encoding="utf-8") as f:
    f.write(meta)
print(f"{root}: {changed} of {len(files)} files under htdocs/ changed, version 1.0.1")
EOF
"$APSCTL" --quiet package build "$WORK/src1" -o "$WORK/v1.app.zip" >/dev/null
"$APSCTL" --quiet package build "$WORK/src2" -o "$WORK/v2.app.zip" >/dev/null
log "packages: $(stat -c %s "$WORK/v1.app.zip") and $(stat -c %s "$WORK/v2.app.zip") bytes compressed"

OPTIONS="$WORK/client.cnf"
( umask 077; printf '[client]\nuser=%s\npassword="%s"\nhost=%s\nport=%s\nprotocol=tcp\n' \
    "$DB_USER" "$(head -n 1 "$DB_PASSWORD_FILE")" "$DB_HOST" "$DB_PORT" >"$OPTIONS" )
sql() { mariadb --defaults-extra-file="$OPTIONS" --batch --skip-column-names "$@"; }

HOME_DIR="$WORK/home"
DOCROOT="$WORK/site/docroot"
if ! id "$SITE_USER" >/dev/null 2>&1; then
    log "creating user $SITE_USER (left in place)…"
    useradd --no-create-home --shell /usr/sbin/nologin "$SITE_USER"
fi
mkdir -p "$DOCROOT" "$WORK/out" "$WORK/logs"
chmod 755 "$WORK/site"
chown "$SITE_USER:" "$DOCROOT"
A() { "$APSCTL" --home "$HOME_DIR" --quiet "$@"; }
json() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }
REF1=$(A --json package import "$WORK/v1.app.zip" | json '["package"]')
REF2=$(A --json package import "$WORK/v2.app.zip" | json '["package"]')
if [ -z "$REF1" ] || [ -z "$REF2" ] || [ "$REF1" = "$REF2" ]; then
    die "package import printed no reference (or the same for both versions)"
fi
A site add bench --docroot "$DOCROOT" --url http://localhost:8080/ --user "$SITE_USER" >/dev/null
A db-server add benchdb --type mysql --host "$DB_HOST" --port "$DB_PORT" --admin-user "$DB_USER" \
    --admin-password-file "$DB_PASSWORD_FILE" >/dev/null

# install_n PATH: installs version n at PATH (its JSON report into WORK/out/PATH.json).
install_n() {
    A --json install "$REF1" --site bench --path "$1" --accept-license \
        --set admin_password=bench-password >"$WORK/out/$1.json"
}
# installed PATH: sets ID and DB (its database) of the instance install_n PATH made and lists them.
installed() {
    ID=$(json '["instance"]' <"$WORK/out/$1.json")
    echo "$ID" >>"$WORK/instances"
    DB=$(A --json instance show "$ID" | json '["databases"][0]["name"]')
    echo "$DB" >>"$WORK/databases"
}
# fill DB: ~DB_MB MB of rows, made on the server (as backup.sh does).
fill() {
    [ "$DB_MB" -gt 0 ] || return 0
    sql "$1" >/dev/null <<SQL
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
FROM seq_1_to_$((DB_MB * 500));
SQL
}
backup_alone() { A backup "$1" --to "$WORK/out/$2.tar.zst"; }
# upgrade_stamped ID LOG: the upgrade, its stderr lines written to LOG as `SECONDS LINE`
# (EPOCHREALTIME: no process per line), between a `start` and an `end` line.
upgrade_stamped() {
    local id=$1 logf=$2 line status=0
    printf '%s start\n' "$EPOCHREALTIME" >"$logf"
    { "$APSCTL" --home "$HOME_DIR" upgrade "$id" --to "$REF2" --accept-license 2>&1 >/dev/null \
        || echo "apsctl-failed $?"; } \
        | while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done >>"$logf"
    printf '%s end\n' "$EPOCHREALTIME" >>"$logf"
    if grep -q ' apsctl-failed ' "$logf"; then status=1; fi
    return "$status"
}
# check_upgrade LOG: dies with the log when the upgrade failed.
check_upgrade() {
    if grep -q ' apsctl-failed ' "$1" || ! grep -q ' end$' "$1"; then
        cat "$1" >&2
        die "the upgrade failed"
    fi
}
# phases LOG: prints `TOTAL_MS SAFETY_MS` from a time-stamped log.
phases() {
    awk '
        NR == 1 { start = $1 }
        /safety backup/ && !s { s = $1; next }
        s && !e && $0 !~ /dumping database/ && $2 != "end" { e = $1 }
        $2 == "end" { end = $1 }
        END {
            if (!s || !e) { print "error: no safety backup step in the log" > "/dev/stderr"; exit 1 }
            printf "%.1f %.1f\n", (end - start) * 1000, (e - s) * 1000
        }' "$1"
}

log "warming up…"
install_n warm-i; installed warm-i
install_n warm-u; installed warm-u; fill "$DB"
backup_alone "$ID" warm >/dev/null
upgrade_stamped "$ID" "$WORK/logs/warm.log" || true
check_upgrade "$WORK/logs/warm.log"
log "upgrade steps (warm-up round, ms since start):"
awk 'NR == 1 { t = $1; next } { $1 = sprintf("%8.1f", ($1 - t) * 1000); print "  " $0 }' "$WORK/logs/warm.log" >&2

inst="" upg="" upg_cpu="" safe="" alone="" inst_cpu=""
# shellcheck disable=SC2154 # ti ci tu cu tb cb: set by time_ms (printf -v)
for round in $(seq 1 "$ROUNDS"); do
    settle; time_ms ti ci install_n "i$round"
    installed "i$round"
    install_n "u$round"; installed "u$round"; fill "$DB"
    settle; time_ms tb cb backup_alone "$ID" "r$round"
    settle; time_ms tu cu upgrade_stamped "$ID" "$WORK/logs/r$round.log" || true
    check_upgrade "$WORK/logs/r$round.log"
    read -r total ts <<<"$(phases "$WORK/logs/r$round.log")"
    inst+=" $ti" inst_cpu+=" $ci" upg+=" $tu" upg_cpu+=" $cu" safe+=" $ts" alone+=" $tb"
    log "round $round/$ROUNDS: install $ti ms (cpu $ci), upgrade $tu ms (cpu $cu; stamped $total), safety backup $ts ms, backup alone $tb ms (cpu $cb)"
done
log "upgrade steps (last round, ms since start):"
awk 'NR == 1 { t = $1; next } { $1 = sprintf("%8.1f", ($1 - t) * 1000); print "  " $0 }' "$WORK/logs/r$ROUNDS.log" >&2

echo "apsctl upgrade vs install ($FILES files, ~$MEGABYTES MB, $CHANGED_PERCENT % changed, ~$DB_MB MB database; $ROUNDS rounds)"
python3 - "$inst" "$inst_cpu" "$upg" "$upg_cpu" "$safe" "$alone" "$WORK/logs" "$ROUNDS" <<'EOF'
import statistics, sys
inst, inst_cpu, upg, upg_cpu, safe, alone = ([float(x) for x in a.split()] for a in sys.argv[1:7])
logs, rounds = sys.argv[7], int(sys.argv[8])
med = statistics.median
print(f"install (1.0.0, fresh path)       median {med(inst):8.1f} ms  (cpu {med(inst_cpu):.1f} ms)")
print(f"upgrade (1.0.0 -> 1.0.1)          median {med(upg):8.1f} ms  (cpu {med(upg_cpu):.1f} ms)")
print(f"ratio upgrade/install             {med(upg) / med(inst):.2f}x wall, {med(upg_cpu) / med(inst_cpu):.2f}x cpu")
shares = [s / u * 100 for s, u in zip(safe, upg)]
print(f"safety backup inside the upgrade  median {med(safe):8.1f} ms  = {med(safe) / med(upg) * 100:.0f} % of the upgrade "
      f"(per round {', '.join(f'{x:.0f}' for x in shares)} %)")
print(f"apsctl backup alone (cross-check) median {med(alone):8.1f} ms")
# The upgrade's phases, from its time-stamped step lines (medians over the rounds).
names = [("start", "checks and plan (to `safety backup`)"),
         ("safety backup", "safety backup (to `deploying`)"),
         ("deploying", "new files, D10 merge (to `running configure`)"),
         ("running `configure", "configure upgrade, web, commit (to the end)")]
keys = [k for k, _ in names] + ["end"]
spans = {label: [] for _, label in names}
for r in range(1, rounds + 1):
    stamps = {}
    with open(f"{logs}/r{r}.log", encoding="utf-8") as f:
        for line in f:
            t, _, text = line.rstrip("\n").partition(" ")
            for key in keys:
                hit = text == key if key in ("start", "end") else key in text
                if hit and key not in stamps:
                    stamps[key] = float(t)
    for (key, label), following in zip(names, keys[1:]):
        if key in stamps and following in stamps:
            spans[label].append((stamps[following] - stamps[key]) * 1000)
print("upgrade phases (medians):")
total = sum(med(v) for v in spans.values() if v)
for _, label in names:
    if spans[label]:
        print(f"  {label:<48} {med(spans[label]):8.1f} ms  {med(spans[label]) / total * 100:4.0f} %")
EOF
