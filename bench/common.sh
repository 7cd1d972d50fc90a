# Shared helpers of the apsctl benchmarks (sourced by import.sh and install.sh; not run alone).
#
# Settings (environment): ROUNDS (timed rounds, default 7), FILES (default 3000), MEGABYTES
# (default 50), SEED, BENCH_TMPDIR (where the one scratch folder goes; default $TMPDIR or /tmp),
# APSCTL (use this binary instead of building one).

set -euo pipefail
# `time` prints with the locale's decimal point; the parsing below wants a dot.
export LC_ALL=C

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$BENCH_DIR")
ROUNDS=${ROUNDS:-7}
FILES=${FILES:-3000}
MEGABYTES=${MEGABYTES:-50}
SEED=${SEED:-20240601}

log() { printf '%s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Installs unzip (and checks the other tools) on a fresh Debian machine.
need_tools() {
    if ! command -v unzip >/dev/null 2>&1; then
        log "installing unzip…"
        if [ "$(id -u)" -eq 0 ]; then
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq unzip >/dev/null \
                || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq unzip >/dev/null; }
        else
            sudo apt-get install -y -qq unzip >/dev/null
        fi
    fi
    local tool
    for tool in python3 php sha256sum cargo; do
        command -v "$tool" >/dev/null 2>&1 || die "\`$tool\` is needed and was not found"
    done
}

# Builds apsctl in release mode and sets APSCTL to the binary (unless APSCTL is already set).
build_apsctl() {
    if [ -n "${APSCTL:-}" ]; then
        [ -x "$APSCTL" ] || die "APSCTL=\`$APSCTL\` is not an executable"
        return
    fi
    log "building apsctl (release)…"
    (cd "$REPO_DIR" && cargo build --release -p apsctl --quiet)
    local target
    target=$(cd "$REPO_DIR" && cargo metadata --format-version 1 --no-deps \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
    APSCTL="$target/release/apsctl"
    [ -x "$APSCTL" ] || die "the build did not produce \`$APSCTL\`"
}

# Creates the one scratch folder WORK (removed on exit) and generates and builds the package
# WORK/pkg.app.zip from WORK/src.
setup_work() {
    WORK=$(mktemp -d -p "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}" apsctl-bench.XXXXXX)
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    # The site user of install.sh must be able to reach its document root inside WORK.
    chmod 755 "$WORK"
    local fstype
    fstype=$(findmnt -n -o FSTYPE -T "$WORK" 2>/dev/null || stat -f -c %T "$WORK")
    log "scratch folder: $WORK ($fstype file system)"
    log "generating the package source ($FILES files, ~$MEGABYTES MB, seed $SEED)…"
    python3 "$BENCH_DIR/genpkg.py" "$WORK/src" --files "$FILES" --megabytes "$MEGABYTES" --seed "$SEED" >&2
    "$APSCTL" --quiet package build "$WORK/src" -o "$WORK/pkg.app.zip" >/dev/null
    PKG="$WORK/pkg.app.zip"
    log "package: $(stat -c %s "$PKG") bytes compressed"
}

cleanup() {
    if [ -n "${WORK:-}" ] && [ -d "$WORK" ]; then
        rm -rf -- "$WORK"
    fi
}

# Flushes dirty pages, so that one round's writeback does not land in the next round's time.
# (Nothing is deleted between rounds either: see "Method" in bench/README.md.)
settle() { sync; }

# time_ms WALLVAR CPUVAR CMD...: runs CMD (stdout discarded) and stores its wall time and its CPU
# time (user + system, CMD and the children it waited for) in milliseconds.
time_ms() {
    local wall_var=$1 cpu_var=$2 times real user sys TIMEFORMAT='%3R %3U %3S'
    shift 2
    # `time` reports on fd 2, which goes into $( ); CMD's own stderr goes to fd 4 (the real one).
    times=$( { time "$@" >/dev/null 2>&4; } 4>&2 2>&1 )
    read -r real user sys <<<"$times"
    printf -v "$wall_var" '%s' "$(awk -v r="$real" 'BEGIN { printf "%.1f", r * 1000 }')"
    printf -v "$cpu_var" '%s' "$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.1f", (u + s) * 1000 }')"
}

# report NAME_A NAME_B AIM "A wall" "B wall" "A cpu" "B cpu": prints the per-round table, the
# median and best of each side, and the ratios A/B of the wall times (the figure compared with
# AIM) and of the CPU times.
report() {
    python3 - "$@" <<'EOF'
import statistics, sys
name_a, name_b, aim = sys.argv[1:4]
wa, wb, ca, cb = ([float(x) for x in arg.split()] for arg in sys.argv[4:8])
label_a, label_b = f"(a) {name_a}", f"(b) {name_b}"
w = max(len(label_a), len(label_b), 12)
print()
print(f"{'':<8}{label_a:>{w}}  {label_b:>{w}}  {'a/b':>6}  {'cpu (a)':>10}  {'cpu (b)':>10}  {'a/b':>6}")
def row(label, xa, xb, ya, yb):
    print(f"{label:<8}{xa:>{w - 3}.1f} ms  {xb:>{w - 3}.1f} ms  {xa / xb:>6.2f}  "
          f"{ya:>7.1f} ms  {yb:>7.1f} ms  {ya / yb:>6.2f}")
for i, values in enumerate(zip(wa, wb, ca, cb), 1):
    row(f"round {i}", *values)
med = statistics.median
row("median", med(wa), med(wb), med(ca), med(cb))
row("best", min(wa), min(wb), min(ca), min(cb))
print()
ratio, best = med(wa) / med(wb), min(wa) / min(wb)
verdict = "meets" if ratio <= float(aim) else "MISSES"
print(f"wall-time ratio (a)/(b): median {ratio:.2f}x, best {best:.2f}x "
      f"(aim <= {aim}x: {verdict} it)")
print(f"cpu-time ratio (a)/(b): median {med(ca) / med(cb):.2f}x, best {min(ca) / min(cb):.2f}x")
EOF
}
