# Shared helpers of the apsctl benchmarks (sourced by import.sh and install.sh; not run alone).
#
# Settings (environment): ROUNDS (timed rounds, default 5), FILES (default 3000), MEGABYTES
# (default 50), SEED, BENCH_TMPDIR (where the one scratch folder goes; default
# $TMPDIR or /tmp), APSCTL (use this binary instead of building one).

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$BENCH_DIR")
ROUNDS=${ROUNDS:-5}
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
    log "scratch folder: $WORK ($(stat -f -c %T "$WORK") file system)"
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
settle() { sync; }

# time_ms OUTVAR CMD...: runs CMD (stdout discarded) and stores its wall time in milliseconds.
time_ms() {
    local out=$1 start end
    shift
    start=$(date +%s%N)
    "$@" >/dev/null
    end=$(date +%s%N)
    printf -v "$out" '%d.%03d' $(((end - start) / 1000000)) $(((end - start) / 1000 % 1000))
}

# report NAME_A NAME_B AIM "A times" "B times": prints the per-round table, median and best of
# each, and the ratios A/B.
report() {
    python3 - "$@" <<'EOF'
import statistics, sys
name_a, name_b, aim, a, b = sys.argv[1:6]
a = [float(x) for x in a.split()]
b = [float(x) for x in b.split()]
width = max(len(name_a), len(name_b))
print()
print(f"{'round':<7}{'(a) ' + name_a:>{width + 6}}  {'(b) ' + name_b:>{width + 6}}  {'a/b':>6}")
for i, (x, y) in enumerate(zip(a, b), 1):
    print(f"{i:<7}{x:>{width + 3}.1f} ms  {y:>{width + 3}.1f} ms  {x / y:>6.2f}")
ma, mb = statistics.median(a), statistics.median(b)
ba, bb = min(a), min(b)
print(f"{'median':<7}{ma:>{width + 3}.1f} ms  {mb:>{width + 3}.1f} ms  {ma / mb:>6.2f}")
print(f"{'best':<7}{ba:>{width + 3}.1f} ms  {bb:>{width + 3}.1f} ms  {ba / bb:>6.2f}")
print()
verdict = "meets" if ma / mb <= float(aim) else "MISSES"
print(f"ratio (a)/(b): median {ma / mb:.2f}x, best {ba / bb:.2f}x (aim <= {aim}x: {verdict} it)")
EOF
}
