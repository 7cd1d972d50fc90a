#!/usr/bin/env bash
# Benchmark: `apsctl install` of a generated package on a local site against `unzip` of the same
# package, on the same file system. See bench/README.md.
#
# The package is imported once; each round installs it under a fresh path (`--path rN`) and
# unzips it into a fresh folder; both are warmed up once before the timed rounds, dirty pages
# are flushed before every timed run, and nothing is deleted before the end (see "Method" in
# bench/README.md). Needs root (system user, ownership of deployed files). Aim: (a)/(b) <= 1.2.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

SITE_USER=${SITE_USER:-apsbench}

[ "$(id -u)" -eq 0 ] || die "install.sh must run as root (it creates a system user and installs as it)"
need_tools
build_apsctl
setup_work

HOME_DIR="$WORK/home"
DOCROOT="$WORK/site/docroot"
# A login account: `site add` refuses system accounts (uid below UID_MIN of /etc/login.defs).
if ! id "$SITE_USER" >/dev/null 2>&1; then
    log "creating user $SITE_USER (left in place)…"
    useradd --no-create-home --shell /usr/sbin/nologin "$SITE_USER"
fi
uid_min=$(( $(awk '$1 == "UID_MIN" { v = $2 } END { print v ? v : 1000 }' /etc/login.defs 2>/dev/null || echo 1000) ))
[ "$(id -u "$SITE_USER")" -ge "$uid_min" ] \
    || die "user $SITE_USER is a system account (uid $(id -u "$SITE_USER") < $uid_min), which apsctl refuses as a site's user; remove it (userdel $SITE_USER) or set SITE_USER"
mkdir -p "$DOCROOT"
chmod 755 "$WORK/site"
chown "$SITE_USER:" "$DOCROOT"
REF=$("$APSCTL" --home "$HOME_DIR" --json package import "$PKG" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["package"])')
[ -n "$REF" ] || die "package import printed no reference"
"$APSCTL" --home "$HOME_DIR" --quiet site add bench --docroot "$DOCROOT" \
    --url http://localhost:8080/ --user "$SITE_USER" >/dev/null

install_once() {
    "$APSCTL" --home "$HOME_DIR" --quiet install "$REF" --site bench --path "$1" \
        --set admin_password=bench-password --accept-license
}
unzip_once() { unzip -q "$PKG" -d "$1"; }

log "warming up…"
install_once warm >/dev/null
unzip_once "$WORK/unzip-warm"

wall_a="" wall_b="" cpu_a="" cpu_b=""
for round in $(seq 1 "$ROUNDS"); do
    settle
    time_ms ta ca install_once "r$round"
    settle
    time_ms tb cb unzip_once "$WORK/unzip-$round"
    wall_a+=" $ta" wall_b+=" $tb" cpu_a+=" $ca" cpu_b+=" $cb"
    log "round $round/$ROUNDS: install $ta ms (cpu $ca ms), unzip $tb ms (cpu $cb ms)"
done

echo "apsctl install vs unzip ($FILES files, ~$MEGABYTES MB, $(stat -c %s "$PKG") bytes zipped, $ROUNDS rounds)"
report "apsctl install" "unzip" 1.2 "$wall_a" "$wall_b" "$cpu_a" "$cpu_b"
