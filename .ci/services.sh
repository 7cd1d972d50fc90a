#!/usr/bin/env bash
# Brings up the real database servers and tools the apsctl test suites use, on Debian.
#
# What it does (idempotent; safe to rerun where everything already runs):
#   1. installs the missing packages with apt-get (`apt-get update` only when something is missing),
#      not letting their postinst scripts start services (nginx/apache2 would want port 80);
#   2. starts MariaDB on 127.0.0.1:3306 and PostgreSQL (newest installed major) on 127.0.0.1 if they
#      are not running, without needing systemd (works as root in a container);
#   3. creates the test admin logins `apsctl_admin` (MariaDB: @localhost and @127.0.0.1, ALL
#      PRIVILEGES WITH GRANT OPTION; PostgreSQL: LOGIN CREATEDB CREATEROLE) with random passwords
#      kept in /var/lib/apsctl-ci/{mysql,pg}-admin.pw (mode 0600, reused on reruns);
#   4. installs openapi-spec-validator (PyPI) into /var/lib/apsctl-ci/venv for the OpenAPI gate;
#   5. writes /var/lib/apsctl-ci/env (KEY=VALUE lines) describing both servers and the validator.
#
# Run it (`bash .ci/services.sh`) or source it (`. .ci/services.sh`): when sourced it runs itself
# in a child bash (so `set -e` never leaks into the caller) and then exports the variables of
# /var/lib/apsctl-ci/env into the calling shell. It prints no secret.
#
# Needs root, or a user with passwordless sudo.

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    # Sourced: do the work in a child process, then export the result here.
    bash "${BASH_SOURCE[0]}" || return $?
    set -a
    # shellcheck disable=SC1091
    . /var/lib/apsctl-ci/env
    set +a
    return 0
fi

set -euo pipefail

STATE_DIR=/var/lib/apsctl-ci
MYSQL_PW_FILE="$STATE_DIR/mysql-admin.pw"
PG_PW_FILE="$STATE_DIR/pg-admin.pw"
ENV_FILE="$STATE_DIR/env"
ADMIN=apsctl_admin
MYSQL_HOST=127.0.0.1
MYSQL_PORT=3306
PG_HOST=127.0.0.1
# nginx, apache2 and php-fpm are only installed: the tests start their own instances on free
# ports (aps-test-support's `web` module), never the system services.
PACKAGES=(mariadb-server mariadb-client postgresql php-cli php-mysql php-pgsql php-sqlite3
    php-mbstring unzip zip sqlite3 zstd nginx apache2 php-fpm curl chromium chromium-driver
    python3-venv systemd)

log() { echo "services.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

if [[ $EUID -eq 0 ]]; then
    SUDO=()
else
    command -v sudo >/dev/null || die "run as root or install sudo"
    SUDO=(sudo -n)
fi
as_root() { "${SUDO[@]}" "$@"; }
as_postgres() {
    # psql wants a readable working directory; run from / as the postgres system user.
    if [[ $EUID -eq 0 ]]; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && sudo -n -u postgres -- "$@")
    fi
}

# Waits until the command succeeds, at most $1 seconds.
wait_for() {
    local timeout=$1
    shift
    local i
    for ((i = 0; i < timeout * 2; i++)); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.5
    done
    return 1
}

# 48 hex characters (192 bits) from the kernel CSPRNG; no pipe that could SIGPIPE under pipefail.
new_password() { od -An -tx1 -N24 /dev/urandom | tr -d ' \n'; }

# Reads the password file $1, creating it with a fresh password when absent or empty.
password_file() {
    local file=$1
    if ! as_root test -s "$file"; then
        as_root install -d -m 0700 "$STATE_DIR"
        new_password | as_root tee "$file" >/dev/null
    fi
    # Owned by whoever runs this script (root, or the sudo-capable CI user) so tests can read it.
    as_root chown "$(id -u):$(id -g)" "$file"
    as_root chmod 0600 "$file"
    cat "$file"
}

# ---------------------------------------------------------------- 1. packages
missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$pkg")
    fi
done
POLICY_RC=/usr/sbin/policy-rc.d
if ((${#missing[@]})); then
    log "installing: ${missing[*]}"
    # Debian's nginx and apache2 start their services on port 80 from their postinst scripts, and
    # nginx's fails the whole install when that port is taken (say, by the other one). The tests
    # need neither service, so service starts are refused during the install with a policy-rc.d
    # (exit 101, honoured by invoke-rc.d and deb-systemd-invoke), removed again afterwards. An
    # existing policy-rc.d is left as it is, and so are services that already run.
    if ! as_root test -e "$POLICY_RC"; then
        printf '#!/bin/sh\n# Written by apsctl .ci/services.sh during apt-get install.\nexit 101\n' |
            as_root tee "$POLICY_RC" >/dev/null
        as_root chmod 0755 "$POLICY_RC"
        trap 'as_root rm -f "$POLICY_RC"' EXIT
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
    if [[ "$(trap -p EXIT)" ]]; then
        as_root rm -f "$POLICY_RC"
        trap - EXIT
    fi
fi

# ---------------------------------------------------------------- 2a. MariaDB
mysql_alive() { as_root mariadb-admin --protocol=socket -uroot ping; }
if ! mysql_alive >/dev/null 2>&1; then
    log "starting MariaDB"
    # In its own session, so the server outlives the shell (or agent) session that started it.
    if ! as_root setsid service mariadb start </dev/null >/dev/null 2>&1; then
        log "service mariadb start failed; starting mysqld_safe directly"
        as_root install -d -o mysql -g mysql -m 0755 /run/mysqld
        as_root setsid nohup mysqld_safe --bind-address="$MYSQL_HOST" --port="$MYSQL_PORT" \
            </dev/null >/dev/null 2>&1 &
    fi
    wait_for 60 mysql_alive || die "MariaDB did not answer mariadb-admin ping within 60 s"
fi
# The server must listen on TCP where the tests expect it.
wait_for 30 mariadb-admin --protocol=tcp -h "$MYSQL_HOST" -P "$MYSQL_PORT" ping ||
    die "MariaDB does not listen on $MYSQL_HOST:$MYSQL_PORT"

mysql_pw=$(password_file "$MYSQL_PW_FILE")
# Statements go on stdin (never argv); the password is hex, so it needs no escaping.
as_root mariadb --protocol=socket -uroot <<SQL
CREATE USER IF NOT EXISTS '$ADMIN'@'localhost' IDENTIFIED BY '$mysql_pw';
CREATE USER IF NOT EXISTS '$ADMIN'@'127.0.0.1' IDENTIFIED BY '$mysql_pw';
ALTER USER '$ADMIN'@'localhost' IDENTIFIED BY '$mysql_pw';
ALTER USER '$ADMIN'@'127.0.0.1' IDENTIFIED BY '$mysql_pw';
GRANT ALL PRIVILEGES ON *.* TO '$ADMIN'@'localhost' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO '$ADMIN'@'127.0.0.1' WITH GRANT OPTION;
SQL

# ---------------------------------------------------------------- 2b. PostgreSQL
pg_version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null |
    sort -n | tail -n 1)
[[ -n "$pg_version" ]] || die "no PostgreSQL server under /usr/lib/postgresql"
if ! pg_lsclusters -h | awk -v v="$pg_version" '$1 == v && $2 == "main" { found = 1 } END { exit !found }'; then
    log "creating PostgreSQL $pg_version cluster main"
    as_root pg_createcluster "$pg_version" main >/dev/null
fi
pg_port=$(pg_lsclusters -h | awk -v v="$pg_version" '$1 == v && $2 == "main" { print $3 }')
pg_status=$(pg_lsclusters -h | awk -v v="$pg_version" '$1 == v && $2 == "main" { print $4 }')
if [[ "$pg_status" != online* ]]; then
    log "starting PostgreSQL $pg_version"
    as_root pg_ctlcluster "$pg_version" main start
fi
wait_for 60 pg_isready -q -h "$PG_HOST" -p "$pg_port" ||
    die "PostgreSQL $pg_version did not answer pg_isready on $PG_HOST:$pg_port within 60 s"

pg_pw=$(password_file "$PG_PW_FILE")
as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$pg_port" -d postgres <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '$ADMIN') THEN
    CREATE ROLE $ADMIN;
  END IF;
END
\$\$;
ALTER ROLE $ADMIN WITH LOGIN CREATEDB CREATEROLE PASSWORD '$pg_pw';
SQL

# ---------------------------------------------------------------- 2c. OpenAPI validator
# The CI gate validates the service's OpenAPI document with openapi-spec-validator (PyPI; Debian
# has no package of it), installed once into a virtual environment of Debian's Python.
VENV=$STATE_DIR/venv
if ! as_root test -x "$VENV/bin/openapi-spec-validator"; then
    log "installing openapi-spec-validator into $VENV"
    as_root install -d -m 0755 "$STATE_DIR"
    as_root /usr/bin/python3 -m venv "$VENV"
    as_root "$VENV/bin/pip" install -q --disable-pip-version-check 'openapi-spec-validator>=0.7,<0.9'
fi

# ---------------------------------------------------------------- 3. environment for the tests
tmp_env=$(mktemp)
cat >"$tmp_env" <<ENV
APSCTL_TEST_MYSQL_HOST=$MYSQL_HOST
APSCTL_TEST_MYSQL_PORT=$MYSQL_PORT
APSCTL_TEST_MYSQL_USER=$ADMIN
APSCTL_TEST_MYSQL_PASSWORD_FILE=$MYSQL_PW_FILE
APSCTL_TEST_PG_HOST=$PG_HOST
APSCTL_TEST_PG_PORT=$pg_port
APSCTL_TEST_PG_USER=$ADMIN
APSCTL_TEST_PG_PASSWORD_FILE=$PG_PW_FILE
APSCTL_OPENAPI_VALIDATOR=$VENV/bin/openapi-spec-validator
ENV
as_root install -m 0644 "$tmp_env" "$ENV_FILE"
rm -f "$tmp_env"
# The tests may run as another user than this script: let them read the password files' directory.
as_root chmod 0755 "$STATE_DIR"

log "MariaDB $(mariadb-admin --version | sed -n 's/.*Distrib \([^ ,]*\).*/\1/p') on $MYSQL_HOST:$MYSQL_PORT, PostgreSQL $pg_version on $PG_HOST:$pg_port; test settings in $ENV_FILE"
