#!/usr/bin/env bash
# Benchmark: serving a PHP instance through the web server configuration apsctl generates
# (issue 9) against a hand-written minimal configuration of the same server serving the same
# folder, for nginx and for Apache httpd (mpm_event + proxy_fcgi), each with one PHP-FPM pool
# running as the site's user; and the share of `apsctl install` spent on the web server steps.
# See bench/README.md.
#
# For each server: a private main configuration in the scratch folder (as
# `aps_test_support::web` does: loopback port, pid file, logs and `web.d/*.conf` include of its
# own; the system's nginx/Apache on port 80 are not touched), a fresh apsctl home and site
# (`--web … --web-dir … --web-test … --web-reload … --php-fastcgi unix:…`), a small PHP package
# installed at /app. Then ROUNDS rounds alternate (a) apsctl's generated
# `apsctl-instance-<id>.conf` and (b) a hand-written `hand.conf` (the generated file moved
# aside), reloading between them (order a b, b a, a b, …), each measured with `wrk` on
# `GET /app/`. Finally ROUNDS installs to /app2, /app3, … are timed, their stderr lines
# time-stamped (the web server share is the time from the "web server: …" step message to the
# next one, "instance … is ready", over the whole command), and the server's test and reload
# commands are timed alone with the same `sh -c` lines. Needs root. Aim: (a)/(b) >= 0.95 in requests/second.
#
# Settings (environment): ROUNDS (default 3), DURATION (wrk seconds per measurement, default 5),
# THREADS / CONNECTIONS (wrk -t / -c, default 2 / 16), FPM_CHILDREN (default 4), SERVERS
# (default "nginx apache"), SITE_USER (default apsbench), APSCTL, BENCH_TMPDIR.
ROUNDS=${ROUNDS:-3}
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

SITE_USER=${SITE_USER:-apsbench}
DURATION=${DURATION:-5}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-16}
FPM_CHILDREN=${FPM_CHILDREN:-4}
SERVERS=${SERVERS:-nginx apache}

[ "$(id -u)" -eq 0 ] || die "web.sh must run as root (it starts web server masters and creates a system user)"
[ -x /usr/sbin/nginx ] || die "/usr/sbin/nginx is missing (apt-get install nginx)"
[ -x /usr/sbin/apache2 ] || die "/usr/sbin/apache2 is missing (apt-get install apache2)"
PHP_FPM=$(find /usr/sbin -maxdepth 1 -name 'php-fpm*' | sort -V | tail -n 1)
[ -n "$PHP_FPM" ] || die "no /usr/sbin/php-fpm* (apt-get install php-fpm)"
if ! command -v wrk >/dev/null 2>&1; then
    log "installing wrk…"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
fi
for tool in wrk curl python3 cargo; do
    command -v "$tool" >/dev/null 2>&1 || die "\`$tool\` is needed and was not found"
done
build_apsctl

# --- scratch folder and cleanup -------------------------------------------------------------

WORK=$(mktemp -d -p "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}" apsctl-webbench.XXXXXX)
# The workers (www-data) and the pool (SITE_USER) must reach the docroots, sockets and temp paths.
chmod 755 "$WORK"
log "scratch folder: $WORK"
MASTERS=()   # pid files of the web server masters started here
FPM_PIDS=()  # php-fpm masters started here (foreground children of this shell)
HOMES=()     # apsctl homes whose instances are removed on exit

# Stops a master named by its pid file: SIGTERM, SIGKILL after 10 s (no configuration parsed).
stop_master() {
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 0
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
    set +e
    local home id file pid
    for home in "${HOMES[@]}"; do
        # Put the generated files back where apsctl expects them, then remove every instance.
        for file in "$home"/saved/apsctl-instance-*.conf; do
            [ -e "$file" ] && mv -f "$file" "$(cat "$home/web-dir")/"
        done
        rm -f "$(cat "$home/web-dir")/hand.conf"
        for id in $("$APSCTL" --home "$home" --json instance list 2>/dev/null \
            | python3 -c 'import json, sys; [print(i["instance"]) for i in json.load(sys.stdin)["instances"]]' 2>/dev/null); do
            "$APSCTL" --home "$home" --quiet remove "$id" --files all --yes >/dev/null 2>&1 \
                || log "warning: removing instance $id of $home failed"
        done
    done
    for file in "${MASTERS[@]}"; do stop_master "$file"; done
    for pid in "${FPM_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    rm -rf -- "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! id "$SITE_USER" >/dev/null 2>&1; then
    log "creating user $SITE_USER (left in place)…"
    useradd --no-create-home --shell /usr/sbin/nologin "$SITE_USER"
fi

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- the package ----------------------------------------------------------------------------

PKG_SRC="$WORK/pkg"
mkdir -p "$PKG_SRC/htdocs" "$PKG_SRC/scripts"
cat >"$PKG_SRC/APP-META.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<application xmlns="http://apstandard.com/ns/1" version="1.2">
  <id>http://example.invalid/aps/webbench</id>
  <name>webbench</name>
  <version>1.0</version>
  <release>1</release>
  <presentation>
    <summary>webbench: a PHP front page for bench/web.sh</summary>
    <categories><category>Test</category></categories>
  </presentation>
  <service id="main">
    <presentation><name>webbench</name></presentation>
    <settings>
      <setting id="title" type="string" default-value="Hello"><name>Title</name></setting>
    </settings>
    <provision>
      <url-mapping>
        <default-prefix>webbench</default-prefix>
        <mapping url="/" path="htdocs" xmlns:php="http://apstandard.com/ns/1/php">
          <php:handler><php:extension>php</php:extension></php:handler>
        </mapping>
      </url-mapping>
      <configuration-script name="configure">
        <script-language>sh</script-language>
      </configuration-script>
    </provision>
  </service>
</application>
EOF
cat >"$PKG_SRC/htdocs/index.php" <<'EOF'
<?php include __DIR__ . '/config.php'; ?>
<!DOCTYPE html>
<html><head><title><?= htmlspecialchars($title) ?></title></head>
<body><h1><?= htmlspecialchars($title) ?> served by <?= PHP_SAPI ?></h1><p>webbench</p></body></html>
EOF
cat >"$PKG_SRC/scripts/configure" <<'EOF'
#!/bin/sh
set -e
case "$1" in
install|configure)
    printf '<?php $title = %s;\n' "'$SETTINGS_title'" > "$WEB___DIR/config.php"
    ;;
esac
EOF
PKG="$WORK/webbench.app.zip"
"$APSCTL" --quiet package build "$PKG_SRC" -o "$PKG" >/dev/null

# --- servers --------------------------------------------------------------------------------

# start_fpm DIR: one pool as SITE_USER on DIR/php-fpm.sock (www-data may connect); sets SOCK.
start_fpm() {
    local dir=$1
    SOCK="$dir/php-fpm.sock"
    cat >"$dir/php-fpm.conf" <<EOF
[global]
pid = $dir/php-fpm.pid
error_log = $dir/php-fpm.log
daemonize = no

[bench]
user = $SITE_USER
group = $(id -gn "$SITE_USER")
listen = $SOCK
listen.owner = www-data
listen.group = www-data
listen.mode = 0660
pm = static
pm.max_children = $FPM_CHILDREN
EOF
    "$PHP_FPM" -F -y "$dir/php-fpm.conf" -p "$dir" </dev/null >"$dir/php-fpm.out" 2>&1 &
    FPM_PID=$!
    FPM_PIDS+=("$FPM_PID")
    for _ in $(seq 100); do [ -S "$SOCK" ] && return; sleep 0.1; done
    cat "$dir/php-fpm.log" "$dir/php-fpm.out" >&2
    die "php-fpm made no socket within 10 s"
}

# start_server KIND DIR PORT DOCROOT: private main configuration, `DIR/web.d/*.conf` included in
# the server block / virtual host; sets TEST_CMD, RELOAD_CMD, PID_FILE.
start_server() {
    local kind=$1 dir=$2 port=$3 docroot=$4 start
    mkdir -p "$dir/web.d"
    PID_FILE="$dir/$kind.pid"
    case $kind in
    nginx)
        cat >"$dir/nginx.conf" <<EOF
user www-data;
worker_processes 1;
daemon on;
pid "$PID_FILE";
error_log "$dir/error.log" warn;
events { worker_connections 256; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path "$dir/client_body";
    proxy_temp_path "$dir/proxy";
    fastcgi_temp_path "$dir/fastcgi";
    uwsgi_temp_path "$dir/uwsgi";
    scgi_temp_path "$dir/scgi";
    server {
        listen 127.0.0.1:$port;
        server_name _;
        root "$docroot";
        include "$dir/web.d/*.conf";
    }
}
EOF
        local args="-p '$dir/' -c '$dir/nginx.conf' -e '$dir/error.log'"
        start="/usr/sbin/nginx $args"
        TEST_CMD="/usr/sbin/nginx -t $args"
        RELOAD_CMD="/usr/sbin/nginx -s reload $args"
        ;;
    apache)
        {
            printf 'ServerRoot "%s"\nServerName localhost\n' "$dir"
            local m
            for m in mpm_event authz_core authz_host dir mime alias rewrite proxy proxy_fcgi setenvif headers; do
                printf 'LoadModule %s_module /usr/lib/apache2/modules/mod_%s.so\n' "$m" "$m"
            done
            cat <<EOF
User www-data
Group www-data
Listen 127.0.0.1:$port
PidFile "$PID_FILE"
ErrorLog "$dir/error.log"
LogLevel warn
StartServers 1
MinSpareThreads 1
MaxSpareThreads 26
ThreadsPerChild 25
Mutex file:$dir default
DefaultRuntimeDir "$dir"
TypesConfig /etc/mime.types
<Directory />
    Require all denied
    AllowOverride None
</Directory>
<VirtualHost 127.0.0.1:$port>
    ServerName localhost
    DocumentRoot "$docroot"
    <Directory "$docroot">
        Require all granted
        AllowOverride None
    </Directory>
    IncludeOptional "$dir/web.d/*.conf"
</VirtualHost>
EOF
        } >"$dir/apache2.conf"
        local args="-f '$dir/apache2.conf'"
        start="/usr/sbin/apache2 -k start $args"
        TEST_CMD="/usr/sbin/apache2 -t $args"
        RELOAD_CMD="/usr/sbin/apache2 -k graceful $args"
        ;;
    esac
    MASTERS+=("$PID_FILE")
    sh -c "$start" >"$dir/output.log" 2>&1 || { cat "$dir/output.log" "$dir/error.log" >&2; die "cannot start $kind"; }
    for _ in $(seq 100); do
        [ -s "$PID_FILE" ] && curl -s -o /dev/null "http://127.0.0.1:$port/" && return
        sleep 0.1
    done
    cat "$dir/output.log" "$dir/error.log" >&2
    die "$kind did not answer on 127.0.0.1:$port within 10 s"
}

# settled PIDFILE: waits (at most 10 s) until the master runs one child again after a reload.
settled() {
    local pid
    pid=$(cat "$1")
    for _ in $(seq 100); do
        [ "$(pgrep -c -P "$pid")" -eq 1 ] && return
        sleep 0.1
    done
    log "warning: the master $pid still runs $(pgrep -c -P "$pid") children"
}

# check_page URL: the PHP front page answers 200 with the application's content.
check_page() {
    local body
    body=$(curl -s -f "$1") || die "GET $1 failed"
    [[ $body == *"Hello served by fpm-fcgi"* ]] || die "GET $1 did not run PHP: $body"
}

# cpu_ticks PID...: user + system clock ticks of the processes' children (the web server's
# worker, PHP-FPM's pool), read from /proc/PID/stat (fields 14 and 15, after the name).
cpu_ticks() {
    local parent child total=0 rest
    for parent in "$@"; do
        for child in $(pgrep -P "$parent"); do
            rest=$(sed 's/^.*) //' "/proc/$child/stat" 2>/dev/null) || continue
            # After the name: state is field 3, utime 14 and stime 15 of the whole line.
            total=$(( total + $(awk '{ print $12 + $13 }' <<<"$rest") ))
        done
    done
    echo "$total"
}

# measure URL: sets RPS (requests/second that wrk measures; error answers make it fail) and
# CPU_US (CPU microseconds per request of the web server's worker and the PHP-FPM pool together;
# the steadier figure on a busy machine).
measure() {
    local out before after requests
    before=$(cpu_ticks "$(cat "$PID_FILE")" "$FPM_PID")
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" "$1")
    after=$(cpu_ticks "$(cat "$PID_FILE")" "$FPM_PID")
    if grep -q 'Non-2xx' <<<"$out"; then
        log "$out"
        die "wrk got error answers from $1"
    fi
    RPS=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    requests=$(awk '/ requests in / { print $1 }' <<<"$out")
    CPU_US=$(awk -v t=$((after - before)) -v n="$requests" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
}

# hand_config KIND DOCROOT: the minimal configuration an administrator would write for /app/.
hand_config() {
    case $1 in
    nginx)
        cat <<EOF
location ^~ /app/ {
    root $2;
    index index.php;
    location ~ \.php\$ {
        fastcgi_pass unix:$SOCK;
        include /etc/nginx/fastcgi_params;
        fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
    }
}
EOF
        ;;
    apache)
        cat <<EOF
<Directory "$2/app">
    DirectoryIndex index.php
    <FilesMatch "\.php\$">
        SetHandler "proxy:unix:$SOCK|fcgi://localhost/"
    </FilesMatch>
</Directory>
EOF
        ;;
    esac
}

# ms CMD...: wall milliseconds of CMD (output discarded).
ms() {
    local start=$EPOCHREALTIME
    "$@" >/dev/null 2>&1 || die "\`$*\` failed"
    awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", (b - a) * 1000 }'
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# time-stamps each line of stdin (seconds since the epoch, microseconds).
stamp() { while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done; }

SUMMARY=()

bench_server() {
    local kind=$1 dir="$WORK/$1" port home docroot web_dir ref id conf
    mkdir -p "$dir/fpm"
    chmod 755 "$dir" "$dir/fpm"
    port=$(free_port)
    home="$dir/home"
    docroot="$dir/site/docroot"
    mkdir -p "$docroot" "$home"
    chmod 755 "$dir/site"
    chown "$SITE_USER:" "$docroot"
    start_fpm "$dir/fpm"
    start_server "$kind" "$dir" "$port" "$docroot"
    web_dir="$dir/web.d"
    HOMES+=("$home")
    echo "$web_dir" >"$home/web-dir"
    mkdir -p "$home/saved"
    log "$kind on 127.0.0.1:$port, php-fpm ($FPM_CHILDREN children as $SITE_USER) on $SOCK"

    ref=$("$APSCTL" --home "$home" --json package import "$PKG" \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["package"])')
    "$APSCTL" --home "$home" --quiet site add bench --docroot "$docroot" \
        --url "http://127.0.0.1:$port/" --user "$SITE_USER" --web "$kind" --web-dir "$web_dir" \
        --web-test "$TEST_CMD" --web-reload "$RELOAD_CMD" --php-fastcgi "unix:$SOCK" >/dev/null
    id=$("$APSCTL" --home "$home" --json install "$ref" --site bench --path app \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["instance"])')
    conf="$web_dir/apsctl-instance-$id.conf"
    [ -f "$conf" ] || die "apsctl wrote no $conf"
    local url="http://127.0.0.1:$port/app/"
    settled "$PID_FILE"
    check_page "$url"
    log "warming up…"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "$url" >/dev/null

    # (a) generated / (b) hand-written, alternately, each after a reload.
    use_generated() { rm -f "$web_dir/hand.conf"; mv "$home/saved/$(basename "$conf")" "$conf"; }
    use_hand() { mv "$conf" "$home/saved/"; hand_config "$kind" "$docroot" >"$web_dir/hand.conf"; }
    switch_to() {
        "$1"
        sh -c "$TEST_CMD" >/dev/null 2>&1 || { sh -c "$TEST_CMD"; die "$kind refused the $1 configuration"; }
        sh -c "$RELOAD_CMD" >/dev/null 2>&1 || die "$kind did not reload"
        sleep 0.5
        settled "$PID_FILE"
        check_page "$url"
        wrk -t"$THREADS" -c"$CONNECTIONS" -d1s "$url" >/dev/null
    }
    # Order G H, H G, G H, …: a drift of the machine's load does not favour one side.
    local gen="" hand="" gen_cpu="" hand_cpu="" a b ac bc round
    for round in $(seq 1 "$ROUNDS"); do
        if [ $((round % 2)) -eq 1 ]; then
            measure "$url"; a=$RPS ac=$CPU_US
            switch_to use_hand
            measure "$url"; b=$RPS bc=$CPU_US
        else
            measure "$url"; b=$RPS bc=$CPU_US
            switch_to use_generated
            measure "$url"; a=$RPS ac=$CPU_US
        fi
        gen+=" $a" hand+=" $b" gen_cpu+=" $ac" hand_cpu+=" $bc"
        log "$kind round $round/$ROUNDS: generated $a req/s ($ac µs CPU/request), hand-written $b req/s ($bc µs CPU/request)"
    done
    [ -f "$conf" ] || switch_to use_generated

    # Install wall time and its web server steps.
    local total="" webstep="" alone="" n t0 t1 lines w r
    for round in $(seq 1 "$ROUNDS"); do
        n=$((round + 1))
        sync
        t0=$EPOCHREALTIME
        "$APSCTL" --home "$home" install "$ref" --site bench --path "app$n" 2>&1 >/dev/null \
            | stamp >"$dir/install-$n.log" || { cat "$dir/install-$n.log" >&2; die "install to /app$n failed"; }
        t1=$EPOCHREALTIME
        lines=$(cat "$dir/install-$n.log")
        grep -q ' is ready at ' <<<"$lines" || { log "$lines"; die "install to /app$n failed"; }
        total+=" $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')"
        # From the "web server:" step message to the next one ("instance … is ready"): the
        # journaled write + test + reload, plus opening the folder and the commit.
        webstep+=" $(awk '/ web server: / { s = $1; next } s && !e { e = $1 } END { printf "%.1f", (e - s) * 1000 }' <<<"$lines")"
        settled "$PID_FILE"
        w=$(ms sh -c "$TEST_CMD")
        r=$(ms sh -c "$RELOAD_CMD")
        alone+=" $(awk -v w="$w" -v r="$r" 'BEGIN { printf "%.1f", w + r }')"
        settled "$PID_FILE"
        log "$kind install /app$n: ${total##* } ms, web step ${webstep##* } ms; test + reload alone $w + $r ms"
    done
    curl -s -f -o /dev/null "http://127.0.0.1:$port/app$n/" || die "/app$n/ is not served"

    local mg mh cg ch mt mw ma
    mg=$(median <<<"$gen") mh=$(median <<<"$hand")
    cg=$(median <<<"$gen_cpu") ch=$(median <<<"$hand_cpu")
    mt=$(median <<<"$total") mw=$(median <<<"$webstep") ma=$(median <<<"$alone")
    SUMMARY+=("$(awk -v k="$kind" -v g="$mg" -v h="$mh" -v gs="$gen" -v hs="$hand" -v cg="$cg" -v ch="$ch" \
        -v t="$mt" -v w="$mw" -v a="$ma" 'BEGIN {
        printf "%s: GET /app/ generated %.0f req/s, hand-written %.0f req/s (rounds:%s /%s)\n", k, g, h, gs, hs
        printf "%s: ratio generated/hand-written %.3fx (aim >= 0.95x: %s it)\n", k, g / h, (g / h >= 0.95) ? "meets" : "MISSES"
        printf "%s: CPU per request (server worker + php-fpm): generated %.1f us, hand-written %.1f us, ratio %.3fx\n", k, cg, ch, cg / ch
        printf "%s: install %.0f ms; web server steps %.1f ms (step messages); test + reload run alone %.1f ms\n", k, t, w, a
        printf "%s: web server share of install: %.1f %% (write, test, reload as apsctl runs them, with opening the folder and the commit; the test + reload commands alone: %.1f %%)\n", k, 100 * w / t, 100 * a / t
    }')")
}

for kind in $SERVERS; do
    bench_server "$kind"
done

echo
echo "generated vs hand-written web server configuration, PHP front page (wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $ROUNDS rounds, php-fpm $FPM_CHILDREN children, $(nproc) CPUs)"
printf '%s\n' "${SUMMARY[@]}"
