//! The store's schema as an append-only list of migrations, tracked by `PRAGMA user_version`.
//!
//! Main decision (after cargo's `src/util/sqlite.rs`): [`MIGRATIONS`] is an ordered list of SQL
//! batches; `user_version` holds how many have been applied. [`migrate`] applies the missing ones
//! in one EXCLUSIVE transaction, so a crash or a concurrent apsctl never sees half a schema, and
//! refuses a database whose `user_version` is larger than this list (written by a newer apsctl).
//!
//! Rules for changing the schema:
//! * Never edit, reorder or remove a shipped entry: append a new one.
//! * Never make a change an older apsctl could misread (no dropped or renamed columns); new
//!   columns need a default.
//! * Tables are `STRICT`. Enum columns have no SQL `CHECK`: `SQLite` cannot alter one without
//!   rebuilding the table, so values are checked in Rust (see `sql.rs`).
//!
//! Known gap: every migration is plain SQL. A migration that must rebuild a table (`SQLite`'s
//! twelve-step `ALTER`) needs `foreign_keys` off, which cannot change inside a transaction; add a
//! Rust-function variant to this list when the first such migration arrives.

use std::path::Path;

use rusqlite::Connection;

use crate::error::{Failure, Repr};
use crate::{Tx, TxBehavior};

/// Every schema change in order; entry `i` takes the database from `user_version` `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6];

/// Version 1: packages, sites, database servers, instances and their records, the journal.
///
/// Times are INTEGER milliseconds since the Unix epoch (see `time.rs`); `*_json` columns are
/// opaque text for the store; booleans are INTEGER 0/1.
const V1: &str = r"
CREATE TABLE packages (
    ref          TEXT NOT NULL PRIMARY KEY,
    identity     TEXT NOT NULL,
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    release      TEXT NOT NULL,
    aps_version  TEXT NOT NULL,
    app_id       TEXT,
    packager_uri TEXT,
    archive_path TEXT NOT NULL,
    meta_json    TEXT NOT NULL,
    lint_json    TEXT NOT NULL,
    imported_at  INTEGER NOT NULL,
    UNIQUE (identity, version, release)
) STRICT;

CREATE TABLE sites (
    name        TEXT NOT NULL PRIMARY KEY,
    docroot     TEXT NOT NULL,
    url         TEXT NOT NULL,
    system_user TEXT NOT NULL,
    php         TEXT,
    web_kind    TEXT NOT NULL,
    web_dir     TEXT,
    web_reload  TEXT,
    php_fastcgi TEXT,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE db_servers (
    name                TEXT NOT NULL PRIMARY KEY,
    kind                TEXT NOT NULL,
    host                TEXT,
    port                INTEGER,
    admin_user          TEXT,
    admin_password_file TEXT,
    version             TEXT,
    created_at          INTEGER NOT NULL
) STRICT;

CREATE TABLE instances (
    id           TEXT NOT NULL PRIMARY KEY,
    site         TEXT NOT NULL REFERENCES sites (name),
    prefix       TEXT NOT NULL,
    url          TEXT NOT NULL,
    package_ref  TEXT NOT NULL REFERENCES packages (ref),
    state        TEXT NOT NULL,
    choices_json TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX instances_by_site ON instances (site);
CREATE INDEX instances_by_package ON instances (package_ref);

CREATE TABLE instance_settings (
    instance   TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    setting_id TEXT NOT NULL,
    value      TEXT NOT NULL,
    is_secret  INTEGER NOT NULL,
    PRIMARY KEY (instance, setting_id)
) STRICT;
CREATE INDEX instance_settings_by_setting ON instance_settings (setting_id);

CREATE TABLE instance_databases (
    instance TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    db_id    TEXT NOT NULL,
    kind     TEXT NOT NULL,
    server   TEXT REFERENCES db_servers (name),
    name     TEXT NOT NULL,
    login    TEXT NOT NULL,
    password TEXT NOT NULL,
    host     TEXT NOT NULL,
    port     INTEGER,
    version  TEXT NOT NULL,
    prefix   TEXT,
    shared   INTEGER NOT NULL,
    PRIMARY KEY (instance, db_id)
) STRICT;
CREATE INDEX instance_databases_by_server ON instance_databases (server);

CREATE TABLE instance_files (
    instance TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    path     TEXT NOT NULL,
    kind     TEXT NOT NULL,
    size     INTEGER NOT NULL,
    sha256   TEXT,
    PRIMARY KEY (instance, path)
) STRICT;

CREATE TABLE system_changes (
    instance  TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    data_json TEXT NOT NULL,
    PRIMARY KEY (instance, seq)
) STRICT;

-- `instance` is not a foreign key: the record of a removal outlives the instance.
CREATE TABLE operations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    instance    TEXT,
    kind        TEXT NOT NULL,
    params_json TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    pid         INTEGER NOT NULL,
    host        TEXT NOT NULL,
    outcome     TEXT,
    finished_at INTEGER,
    error       TEXT
) STRICT;
CREATE INDEX operations_unfinished ON operations (id) WHERE outcome IS NULL;
CREATE INDEX operations_by_instance ON operations (instance);

CREATE TABLE operation_steps (
    op        INTEGER NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    undo_json TEXT NOT NULL,
    state     TEXT NOT NULL,
    PRIMARY KEY (op, seq)
) STRICT;
";

/// Version 2: commit points of operations, and databases kept after their instance was removed.
///
/// `operation_steps` rows are now changes (see the journal's doc): their `state` may also be
/// `failed` (the act reported failure), and `undo_json` holds the change made. `committed_at`
/// is set when an operation passes its commit point (after it, `recover` rolls forward).
/// `kept_databases` keeps the connection values of databases that `remove --keep-databases`
/// left on their server (the password sealed by the caller), so they can be listed and dropped.
const V2: &str = r"
ALTER TABLE operations ADD COLUMN committed_at INTEGER;

CREATE TABLE kept_databases (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    instance  TEXT NOT NULL,
    site      TEXT NOT NULL,
    db_id     TEXT NOT NULL,
    kind      TEXT NOT NULL,
    server    TEXT REFERENCES db_servers (name),
    name      TEXT NOT NULL,
    login     TEXT NOT NULL,
    password  TEXT NOT NULL,
    host      TEXT NOT NULL,
    port      INTEGER,
    kept_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX kept_databases_by_server ON kept_databases (server);
";

/// Version 3: periodic backups (`apsctl schedule …`).
///
/// `instance` is not a foreign key: a schedule of a removed instance is reported by `schedule
/// run` and removed by the caller. Times are INTEGER milliseconds; `every_secs` the period.
const V3: &str = r"
CREATE TABLE schedules (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    instance    TEXT NOT NULL,
    every_secs  INTEGER NOT NULL,
    to_dir      TEXT NOT NULL,
    keep        INTEGER,
    created_at  INTEGER NOT NULL,
    last_at     INTEGER,
    last_error  TEXT,
    next_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX schedules_by_next ON schedules (next_at);
";

/// Version 4: the web server's own configuration test of a site (`site add --web-test`).
const V4: &str = r"
ALTER TABLE sites ADD COLUMN web_test TEXT;
";

/// Version 5: the saved values of packages' global settings (REFERENCE §8.2).
///
/// Keyed by package identity, not by reference: every version of a package, imported before or
/// after the values were saved, sees them. `identity` is not a foreign key (it is not unique in
/// `packages`), so the values outlive the removal of every version. Secrets are sealed by the
/// caller, as in `instance_settings`.
const V5: &str = r"
CREATE TABLE global_settings (
    identity   TEXT NOT NULL,
    setting_id TEXT NOT NULL,
    value      TEXT NOT NULL,
    is_secret  INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (identity, setting_id)
) STRICT;
";

/// Version 6: the HTTP service's operations (`apsctl serve` jobs) and their outcomes.
///
/// A job is what a control panel polls (`GET /v1/operations/{id}`); the journal still records
/// every step of the operation it runs. `instance` is not a foreign key: a job outlives the
/// instance it removed. `progress`, `result` and `error` are JSON documents written by the
/// service (secrets already masked).
const V6: &str = r"
CREATE TABLE jobs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL,
    instance   TEXT,
    state      TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
    progress   TEXT NOT NULL,
    result     TEXT,
    error      TEXT,
    started_at INTEGER NOT NULL,
    ended_at   INTEGER
) STRICT;
CREATE INDEX jobs_by_instance ON jobs (instance, id);
";

/// Brings the database on `conn` up to `migrations.len()`; `path` is for error messages.
///
/// Refuses a database whose `user_version` is above `migrations.len()`.
pub(crate) fn migrate(conn: &Connection, migrations: &[&str], path: &Path) -> Result<(), Failure> {
    let tx = Tx::begin(conn, TxBehavior::Exclusive)?;
    let found = user_version(conn)?;
    let applied = usize::try_from(found)
        .ok()
        .filter(|v| *v <= migrations.len())
        .ok_or_else(|| Repr::NewerSchema {
            path: path.to_owned(),
            found,
            known: migrations.len(),
        })?;
    if applied < migrations.len() {
        for migration in &migrations[applied..] {
            conn.execute_batch(migration)?;
        }
        conn.pragma_update(None, "user_version", migrations.len())?;
    }
    tx.commit()?;
    Ok(())
}

/// The database's `PRAGMA user_version`.
pub(crate) fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT user_version FROM pragma_user_version", [], |row| {
        row.get(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreErrorKind;

    fn schema(conn: &Connection) -> Vec<(String, String)> {
        let mut stmt = conn
            .prepare("SELECT name, sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn migrate_twice() {
        // A second, longer list applies only the new step and keeps the data.
        let conn = Connection::open_in_memory().unwrap();
        let path = Path::new(":memory:");
        let mut migrations = vec!["CREATE TABLE foo (a, b, c)"];
        migrate(&conn, &migrations, path).unwrap();
        conn.execute("INSERT INTO foo VALUES (1, 2, 3)", [])
            .unwrap();
        migrate(&conn, &migrations, path).unwrap();
        migrations.push("ALTER TABLE foo ADD COLUMN d");
        migrate(&conn, &migrations, path).unwrap();
        conn.execute("INSERT INTO foo VALUES (1, 2, 3, 4)", [])
            .unwrap();
        assert_eq!(user_version(&conn).unwrap(), 2);
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM foo", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 2);
    }

    #[test]
    fn the_real_list_applies_twice() {
        let conn = Connection::open_in_memory().unwrap();
        let path = Path::new(":memory:");
        migrate(&conn, MIGRATIONS, path).unwrap();
        let first = schema(&conn);
        migrate(&conn, MIGRATIONS, path).unwrap();
        assert_eq!(schema(&conn), first);
        assert_eq!(
            user_version(&conn).unwrap(),
            i64::try_from(MIGRATIONS.len()).unwrap()
        );
    }

    #[test]
    fn every_earlier_version_upgrades_to_the_fresh_schema() {
        let fresh = Connection::open_in_memory().unwrap();
        migrate(&fresh, MIGRATIONS, Path::new(":memory:")).unwrap();
        for start in 0..MIGRATIONS.len() {
            let conn = Connection::open_in_memory().unwrap();
            migrate(&conn, &MIGRATIONS[..start], Path::new(":memory:")).unwrap();
            assert_eq!(user_version(&conn).unwrap(), i64::try_from(start).unwrap());
            migrate(&conn, MIGRATIONS, Path::new(":memory:")).unwrap();
            assert_eq!(
                schema(&conn),
                schema(&fresh),
                "upgrade from version {start}"
            );
        }
    }

    #[test]
    fn v5_adds_global_settings_to_a_v4_store_and_keeps_its_rows() {
        let conn = Connection::open_in_memory().unwrap();
        let path = Path::new(":memory:");
        migrate(&conn, &MIGRATIONS[..4], path).unwrap();
        conn.execute(
            "INSERT INTO sites (name, docroot, url, system_user, web_kind, created_at, web_test) \
             VALUES ('s', '/srv/s', 'http://s/', 'u', 'none', 1, 'true')",
            [],
        )
        .unwrap();
        migrate(&conn, &MIGRATIONS[..5], path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 5);
        let sites: i64 = conn
            .query_row("SELECT count(*) FROM sites", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sites, 1, "the V4 rows are kept");
        conn.execute(
            "INSERT INTO global_settings VALUES ('id:x', 'motto', 'hi', 0, 2)",
            [],
        )
        .unwrap();
        let twice = conn.execute(
            "INSERT INTO global_settings VALUES ('id:x', 'motto', 'again', 0, 3)",
            [],
        );
        assert!(twice.is_err(), "one value per identity and setting");
    }

    #[test]
    fn a_failing_migration_leaves_the_database_untouched() {
        let conn = Connection::open_in_memory().unwrap();
        let path = Path::new(":memory:");
        migrate(&conn, &["CREATE TABLE foo (a)"], path).unwrap();
        let err = migrate(
            &conn,
            &[
                "CREATE TABLE foo (a)",
                "CREATE TABLE bar (b)",
                "SYNTAX ERROR",
            ],
            path,
        )
        .unwrap_err();
        assert!(matches!(err, Failure::Sqlite(_)));
        assert_eq!(user_version(&conn).unwrap(), 1);
        let bar: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'bar'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(bar, 0, "the exclusive transaction rolled `bar` back");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 7).unwrap();
        let Err(Failure::Store(err)) = migrate(&conn, &["CREATE TABLE foo (a)"], Path::new("/h/s"))
        else {
            panic!("a newer schema must be refused");
        };
        assert_eq!(err.kind(), StoreErrorKind::Incompatible);
        assert_eq!(
            err.to_string(),
            "store `/h/s` was written by a newer apsctl (schema 7 > 1)"
        );
    }
}
