#!/usr/bin/env bash
# Benchmark (issue 11): reads of the HTTP service and of the CLI with 1,000 instances in the
# store. See bench/README.md.
#
# One real install of the example package `hello` (examples/hello) on a `--web none` site, then
# 999 more instances of it as store rows (instances and their settings copied in SQL with new ids
# and paths: the reads measured here touch the store only, so the instances need no files).
# Then, in the same run:
#   (a) `GET /v1/instances` (1,000 instances, ~250 KB of JSON) from `apsctl serve` under 100
#       concurrent keep-alive clients (`ab -k -c 100 -n REQUESTS`), after one untimed warm-up
#       pass: p50 and p99 latency and requests per second;
#   (b) `apsctl --json instance list` against `sqlite3 store.sqlite3 'SELECT …'` of the same
#       rows (the query `instance list` runs, printed as JSON by sqlite3's `-json`), medians of
#       ROUNDS runs each after one warm-up; the ratio (b)/(raw).
# Aims: p99 < 50 ms; list ≤ 2x the raw query.
#
# Needs root (the site user) and `ab` (apache2-utils, installed with apache2 by .ci/services.sh).
ROUNDS=${ROUNDS:-15}
REQUESTS=${REQUESTS:-5000}
INSTANCES=${INSTANCES:-1000}
# shellcheck source=bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

SITE_USER=${SITE_USER:-apsbench}
[ "$(id -u)" -eq 0 ] || die "service.sh must run as root"
for tool in ab sqlite3 php python3; do
    command -v "$tool" >/dev/null 2>&1 || die "\`$tool\` is needed and was not found (bash .ci/services.sh installs it)"
done
build_apsctl

WORK=$(mktemp -d -p "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}" apsctl-bench.XXXXXX)
SERVE_PID=
finish() {
    if [ -n "$SERVE_PID" ]; then kill -TERM "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true; fi
    cleanup
}
trap finish EXIT
trap 'exit 130' INT TERM
chmod 755 "$WORK"

if ! id "$SITE_USER" >/dev/null 2>&1; then
    log "creating user $SITE_USER (left in place)…"
    useradd --no-create-home --shell /usr/sbin/nologin "$SITE_USER"
fi
HOME_DIR="$WORK/home"
DOCROOT="$WORK/site"
mkdir -p "$DOCROOT"
chown "$SITE_USER:" "$DOCROOT"
A=("$APSCTL" --home "$HOME_DIR" --quiet)
"${A[@]}" site add bench --docroot "$DOCROOT" --url http://localhost:8080/ --user "$SITE_USER" >/dev/null
"${A[@]}" package build "$REPO_DIR/examples/hello" --out "$WORK/hello.app.zip" >/dev/null
REF=$("${A[@]}" --json package import "$WORK/hello.app.zip" | python3 -c 'import json,sys; print(json.load(sys.stdin)["package"])')
FIRST=$("${A[@]}" --json install "$REF" --site bench --path i1 --accept-license \
    --set admin_password=Bench-passw0rd | python3 -c 'import json,sys; print(json.load(sys.stdin)["instance"])')
STORE="$HOME_DIR/store.sqlite3"
log "copying instance $FIRST into $INSTANCES instances in the store…"
sqlite3 "$STORE" <<SQL
PRAGMA foreign_keys = ON;
BEGIN;
WITH RECURSIVE n(k) AS (SELECT 2 UNION ALL SELECT k + 1 FROM n WHERE k < $INSTANCES)
INSERT INTO instances (id, site, prefix, url, package_ref, state, choices_json, created_at, updated_at)
SELECT 'b' || k, site, 'i' || k, replace(url, '/i1/', '/i' || k || '/'), package_ref, state,
       choices_json, created_at, updated_at
FROM instances, n WHERE id = '$FIRST';
INSERT INTO instance_settings (instance, setting_id, value, is_secret)
SELECT i.id, s.setting_id, s.value, s.is_secret
FROM instances AS i, instance_settings AS s WHERE i.id LIKE 'b%' AND s.instance = '$FIRST';
COMMIT;
SQL
count=$(sqlite3 "$STORE" 'SELECT count(*) FROM instances')
[ "$count" -eq "$INSTANCES" ] || die "the store has $count instances, not $INSTANCES"

# ---------------------------------------------------------------- (a) the service
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$APSCTL" --home "$HOME_DIR" serve --listen "127.0.0.1:$PORT" --token-file "$WORK/token" \
    2>"$WORK/serve.log" &
SERVE_PID=$!
for _ in $(seq 100); do
    grep -q "listening on" "$WORK/serve.log" 2>/dev/null && break
    sleep 0.1
done
grep -q "listening on" "$WORK/serve.log" || die "serve did not start: $(cat "$WORK/serve.log")"
TOKEN=$(cat "$WORK/token")
URL="http://127.0.0.1:$PORT/v1/instances"
bytes=$(curl -fsS -H "Authorization: Bearer $TOKEN" "$URL" | wc -c)
listed=$(curl -fsS -H "Authorization: Bearer $TOKEN" "$URL" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["instances"]))')
[ "$listed" -eq "$INSTANCES" ] || die "GET /v1/instances listed $listed instances"
log "GET /v1/instances: $listed instances, $bytes bytes; warm-up…"
ab -k -q -c 100 -n 1000 -H "Authorization: Bearer $TOKEN" "$URL" >/dev/null
ab -k -q -c 100 -n "$REQUESTS" -H "Authorization: Bearer $TOKEN" "$URL" >"$WORK/ab.txt"
failed=$(sed -n 's/^Failed requests: *//p' "$WORK/ab.txt")
non2xx=$(sed -n 's/^Non-2xx responses: *//p' "$WORK/ab.txt")
[ "${failed:-0}" -eq 0 ] && [ "${non2xx:-0}" -eq 0 ] || die "failed requests: $(cat "$WORK/ab.txt")"
p50=$(awk '$1 == "50%" {print $2}' "$WORK/ab.txt")
p99=$(awk '$1 == "99%" {print $2}' "$WORK/ab.txt")
rps=$(sed -n 's/^Requests per second: *\([0-9.]*\).*/\1/p' "$WORK/ab.txt")

# ---------------------------------------------------------------- (b) the CLI against sqlite3
QUERY="SELECT i.id, i.site, i.prefix, i.url, i.state, i.created_at, i.updated_at, p.ref, p.identity, p.name, p.version, p.release FROM instances AS i JOIN packages AS p ON p.ref = i.package_ref ORDER BY i.site, i.prefix, i.id"
run_cli() { "$APSCTL" --home "$HOME_DIR" --json instance list >/dev/null; }
run_raw() { sqlite3 -json "$STORE" "$QUERY" >/dev/null; }
cli_rows=$("$APSCTL" --home "$HOME_DIR" --json instance list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["instances"]))')
raw_rows=$(sqlite3 -json "$STORE" "$QUERY" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$cli_rows" -eq "$raw_rows" ] || die "instance list printed $cli_rows rows, the query $raw_rows"
time_of() { local t0=$EPOCHREALTIME; "$@"; echo "$EPOCHREALTIME - $t0" | bc -l; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
run_cli; run_raw
cli_times=(); raw_times=()
for _ in $(seq "$ROUNDS"); do
    cli_times+=("$(time_of run_cli)")
    raw_times+=("$(time_of run_raw)")
done
cli_median=$(printf '%s\n' "${cli_times[@]}" | median)
raw_median=$(printf '%s\n' "${raw_times[@]}" | median)
ratio=$(echo "$cli_median / $raw_median" | bc -l)

printf '\n== issue 11: reads with %d instances in the store\n' "$INSTANCES"
printf 'GET /v1/instances, 100 concurrent clients, %d requests: p50 %s ms, p99 %s ms, %s req/s (aim: p99 < 50 ms)\n' \
    "$REQUESTS" "$p50" "$p99" "$rps"
printf 'apsctl instance list: median %.1f ms; sqlite3 of the same rows: median %.1f ms; ratio %.2fx (aim: <= 2x)\n' \
    "$(echo "$cli_median * 1000" | bc -l)" "$(echo "$raw_median * 1000" | bc -l)" "$ratio"
