#!/usr/bin/env bash
# Benchmark: `apsctl package import` (full verification) against `unzip` + `sha256sum` of every
# extracted file, on the same generated package and the same file system. See bench/README.md.
#
# Each round imports into a fresh controller home and unzips into a fresh folder; both are
# warmed up once before the timed rounds, and dirty pages are flushed before every timed run.
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
rm -rf "$WORK/home-warm" "$WORK/unzip-warm"

times_a="" times_b=""
for round in $(seq 1 "$ROUNDS"); do
    settle
    time_ms ta import_once "$WORK/home-$round"
    settle
    time_ms tb unzip_and_hash "$WORK/unzip-$round"
    times_a+=" $ta" times_b+=" $tb"
    log "round $round/$ROUNDS: import $ta ms, unzip+sha256sum $tb ms"
    rm -rf "$WORK/home-$round" "$WORK/unzip-$round"
done

echo "apsctl package import vs unzip + sha256sum ($FILES files, ~$MEGABYTES MB, $(stat -c %s "$PKG") bytes zipped, $ROUNDS rounds)"
report "apsctl package import" "unzip + sha256sum" 1.0 "$times_a" "$times_b"
