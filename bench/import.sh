#!/usr/bin/env bash
# Benchmark: `apsctl package import` (full verification) against `unzip` + `sha256sum` of every
# extracted file, on the same generated package and the same file system. See bench/README.md.
#
# Each round imports into a fresh controller home and unzips into a fresh folder; both are
# warmed up once before the timed rounds, dirty pages are flushed before every timed run, and
# nothing is deleted before the end (see "Method" in bench/README.md).
# Aim: (a)/(b) <= 1.0.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

need_tools
build_apsctl
setup_work

import_once() { "$APSCTL" --home "$1" --quiet package import "$PKG"; }
unzip_and_hash() {
    unzip -q "$PKG" -d "$1"
    find "$1" -type f -print0 | xargs -0 sha256sum >/dev/null
}

log "warming up…"
import_once "$WORK/home-warm" >/dev/null
unzip_and_hash "$WORK/unzip-warm"

wall_a="" wall_b="" cpu_a="" cpu_b=""
for round in $(seq 1 "$ROUNDS"); do
    settle
    time_ms ta ca import_once "$WORK/home-$round"
    settle
    time_ms tb cb unzip_and_hash "$WORK/unzip-$round"
    wall_a+=" $ta" wall_b+=" $tb" cpu_a+=" $ca" cpu_b+=" $cb"
    log "round $round/$ROUNDS: import $ta ms (cpu $ca ms), unzip+sha256sum $tb ms (cpu $cb ms)"
done

echo "apsctl package import vs unzip + sha256sum ($FILES files, ~$MEGABYTES MB, $(stat -c %s "$PKG") bytes zipped, $ROUNDS rounds)"
report "apsctl package import" "unzip + sha256sum" 1.0 "$wall_a" "$wall_b" "$cpu_a" "$cpu_b"
