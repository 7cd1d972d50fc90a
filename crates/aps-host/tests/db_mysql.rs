//! `MySQL`/`MariaDB` database server against the real server `.ci/services.sh` starts.
#![expect(
    clippy::disallowed_methods,
    reason = "the test drives the real database clients directly, outside the product's Env"
)]

mod db_common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use aps_host::db::{
    DatabaseServer, DbError, DbErrorKind, DbSpec, Owner, Ownership, Proof, ServerConfig, ServerType,
};
use aps_host::names::{self, NameParts};
use db_common::{Cleanup, Client, LifecycleNames, OWN_MARK, Stranger};

const KIND: ServerType = ServerType::Mysql;

struct MysqlClient {
    config: ServerConfig,
    program: PathBuf,
}

impl MysqlClient {
    fn new() -> Self {
        let program = ["/usr/bin/mariadb", "/usr/bin/mysql"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .expect("mariadb or mysql client in /usr/bin");
        Self {
            config: db_common::server_config(KIND),
            program,
        }
    }

    /// Runs `sql` as `user`; Ok(stdout) or Err(stderr).
    fn try_run(
        &self,
        user: &str,
        password: &str,
        database: &str,
        sql: &str,
    ) -> Result<String, String> {
        let (key, value) = OWN_MARK.split_once('=').expect("split_once");
        let mut child = Command::new(&self.program)
            .arg("--no-defaults")
            .arg(format!("--host={}", self.config.host))
            .arg(format!("--port={}", self.config.effective_port()))
            .arg(format!("--user={user}"))
            .arg(format!("--database={database}"))
            .args([
                "--batch",
                "--skip-column-names",
                "--default-character-set=utf8mb4",
            ])
            .env_clear()
            .env("MYSQL_PWD", password)
            .env(key, value)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin pipe"), sql.as_bytes())
            .expect("write stdin");
        let out = child.wait_with_output().expect("wait_with_output");
        if out.status.success() {
            Ok(String::from_utf8(out.stdout).expect("from_utf8"))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

impl MysqlClient {
    /// Runs `sql` as the administrator; panics on failure.
    fn admin(&self, sql: &str) -> String {
        let password = self.config.admin_password.expose();
        self.try_run(&self.config.admin_user, password, "mysql", sql)
            .unwrap_or_else(|e| panic!("test client failed as the administrator: {e}"))
    }
}

/// A MySQL string literal for the test's own SQL (names here are plain).
fn quoted(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl Stranger for MysqlClient {
    fn create_database(&self, name: &str) {
        self.admin(&format!("CREATE DATABASE `{}`;", name.replace('`', "``")));
    }

    fn create_login(&self, login: &str) {
        self.admin(&format!(
            "CREATE USER {}@'%' IDENTIFIED BY 'a stranger''s password';",
            quoted(login)
        ));
    }
}

impl Client for MysqlClient {
    fn run(&self, spec: &DbSpec, sql: &str) -> String {
        self.try_run(&spec.login, spec.password.expose(), &spec.name, sql)
            .unwrap_or_else(|e| panic!("test client failed as {}: {e}", spec.login))
    }

    fn setup_sql(&self) -> &'static str {
        r"
CREATE TABLE items (id INT PRIMARY KEY AUTO_INCREMENT, label VARCHAR(200) NOT NULL, data LONGBLOB)
  DEFAULT CHARSET=utf8mb4;
CREATE TABLE audit (item INT NOT NULL);
CREATE TRIGGER items_ai AFTER INSERT ON items FOR EACH ROW INSERT INTO audit VALUES (NEW.id);
CREATE VIEW item_labels AS SELECT id, label FROM items;
CREATE PROCEDURE item_count() SELECT COUNT(*) FROM items;
INSERT INTO items (label, data) VALUES
  ('héllo wörld 日本語 🎉', UNHEX('00FF0A0D27225C60')),
  ('quote '' backslash \\ backtick ` tab\t', NULL),
  ('big', REPEAT(UNHEX('00FF7F80'), 250000));
"
    }

    fn snapshot_sql(&self) -> &'static str {
        "
SELECT id, label, MD5(data), LENGTH(data), HEX(LEFT(data, 8)) FROM items ORDER BY id;
SELECT COUNT(*) FROM audit;
SELECT id, label FROM item_labels ORDER BY id;
CALL item_count();
"
    }

    fn insert_sql(&self) -> &'static str {
        "INSERT INTO items (label) VALUES ('after load'); SELECT COUNT(*) FROM audit;"
    }

    fn tables_sql(&self) -> &'static str {
        "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY 1;"
    }
}

fn names_for(base: &str, server: &dyn DatabaseServer) -> LifecycleNames {
    let limits = server.name_limits().expect("name_limits");
    let spec = |id: &str| DbSpec {
        name: names::derive_name(base, id, limits.database).expect("derive_name"),
        login: names::derive_name(base, id, limits.login.expect("login limit"))
            .expect("derive_name"),
        password: names::generate_password(),
        marker: db_common::marker(),
    };
    LifecycleNames {
        first: spec(&db_common::unique_id()),
        second: spec(&db_common::unique_id()),
    }
}

#[test]
fn lifecycle_create_check_dump_drop_create_load_compare() {
    let server = db_common::open_server(KIND);
    let client = MysqlClient::new();
    db_common::lifecycle(
        server.as_ref(),
        &client,
        &names_for("WordPress", server.as_ref()),
    );
}

#[test]
fn hostile_names_and_password_work_and_never_reach_argv() {
    let server = db_common::open_server(KIND);
    let client = MysqlClient::new();
    let id = db_common::unique_id();
    let hostile = |n: &str| DbSpec {
        name: format!("d'\"\\`%_ {n}{id}"),
        login: format!("u'\"\\`%{n}{}", &id[id.len() - 6..]),
        password: aps_host::db::Secret::new(format!("p'\"\\` #;:=$(id) {n}{id}")),
        marker: db_common::marker(),
    };
    let names = LifecycleNames {
        first: hostile("1"),
        second: hostile("2"),
    };
    let admin = db_common::server_config(KIND).admin_password;
    let secrets = [
        names.first.password.expose(),
        names.second.password.expose(),
        admin.expose(),
    ];
    let watcher =
        db_common::ProcWatcher::start(&["mariadb", "mysql", "mariadb-dump", "mysqldump"], &secrets);
    db_common::lifecycle(server.as_ref(), &client, &names);
    let seen = watcher.finish();
    db_common::assert_no_leaks(&seen, "--defaults-file=");
    // Every client that logs in does so through an option file (`--help` is the sandbox probe).
    for argv in seen
        .client_cmdlines
        .iter()
        .filter(|a| !a.contains("--help"))
    {
        assert!(
            argv.contains("--defaults-file="),
            "client without option file: {argv}"
        );
    }
}

#[test]
fn create_refuses_an_existing_database_or_login_and_leaves_nothing_behind() {
    let server = db_common::open_server(KIND);
    let mut cleanup = Cleanup::new(server.as_ref());
    let names = names_for("exists", server.as_ref());
    let (first, second) = (&names.first, &names.second);
    for spec in [first, second] {
        cleanup.database(&spec.name);
        cleanup.login(&spec.login);
    }
    server.create_database(first).unwrap();

    // Same login, new database: refused before the database is created.
    let reuse_login = DbSpec {
        login: first.login.clone(),
        ..second.clone()
    };
    let err = server.create_database(&reuse_login).unwrap_err();
    assert!(matches!(err, DbError::LoginExists { .. }), "{err}");
    assert_eq!(err.kind(), DbErrorKind::AlreadyExists);
    assert!(!server.database_exists(&second.name).unwrap());

    // Same database, new login: refused, the new login is not created, the old one still works.
    let reuse_db = DbSpec {
        name: first.name.clone(),
        ..second.clone()
    };
    let err = server.create_database(&reuse_db).unwrap_err();
    assert!(matches!(err, DbError::DatabaseExists { .. }), "{err}");
    assert!(!server.login_exists(&second.login).unwrap());
    server.check_login(first).unwrap();
}

#[test]
fn colliding_derived_names_get_a_counter() {
    let server = db_common::open_server(KIND);
    let mut cleanup = Cleanup::new(server.as_ref());
    let limits = server.name_limits().unwrap();
    let id = db_common::unique_id();
    let parts = NameParts::new("collide", &id).unwrap();
    let mut created = Vec::new();
    for _ in 0..2 {
        let taken = |n: &str| -> Result<bool, DbError> {
            Ok(server.database_exists(n)? || server.login_exists(n)?)
        };
        let limit = limits.database.min(limits.login.unwrap());
        let name = names::unique_name(&parts, limit, taken).unwrap();
        cleanup.database(&name);
        cleanup.login(&name);
        let spec = DbSpec {
            name: name.clone(),
            login: name.clone(),
            password: names::generate_password(),
            marker: db_common::marker(),
        };
        server.create_database(&spec).unwrap();
        server.check_login(&spec).unwrap();
        created.push(name);
    }
    assert_eq!(created[0], format!("collide_{id}"));
    assert_eq!(created[1], format!("collide_{id}_2"));
}

#[test]
fn names_at_the_limits_work_and_longer_ones_are_refused() {
    let server = db_common::open_server(KIND);
    let mut cleanup = Cleanup::new(server.as_ref());
    let limits = server.name_limits().unwrap();
    // 32: every name of that length still fits the 64-byte limit once `_` is escaped for GRANT.
    assert_eq!(limits.database, 32);
    let id = db_common::unique_id();
    let base = "x".repeat(300);
    let spec = DbSpec {
        name: names::derive_name(&base, &id, limits.database).unwrap(),
        login: names::derive_name(&base, &id, limits.login.unwrap()).unwrap(),
        password: names::generate_password(),
        marker: db_common::marker(),
    };
    assert_eq!(spec.name.len(), 32);
    assert_eq!(spec.login.len(), limits.login.unwrap());
    cleanup.database(&spec.name);
    cleanup.login(&spec.login);
    server.create_database(&spec).unwrap();
    server.check_login(&spec).unwrap();

    // The server's own limit, 64, is reachable by names without escaped characters.
    let full = DbSpec {
        name: format!("f{id}").repeat(10)[..64].to_owned(),
        login: format!("f{}", &id[id.len() - 8..]),
        password: names::generate_password(),
        marker: db_common::marker(),
    };
    assert!(!full.name.contains('_'));
    cleanup.database(&full.name);
    cleanup.login(&full.login);
    server.create_database(&full).unwrap();
    server.check_login(&full).unwrap();

    let too_long = DbSpec {
        name: format!("{}y", full.name),
        login: format!("o{id}"),
        password: names::generate_password(),
        marker: db_common::marker(),
    };
    cleanup.database(&too_long.name);
    cleanup.login(&too_long.login);
    let err = server.create_database(&too_long).unwrap_err();
    assert!(
        matches!(
            err,
            DbError::InvalidName {
                what: "database name",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.kind(), DbErrorKind::InvalidInput);
    // 64 characters, but with `_` the GRANT pattern would be 65.
    let escaped_too_long = DbSpec {
        name: format!("{}_", &full.name[..63]),
        ..too_long.clone()
    };
    cleanup.database(&escaped_too_long.name);
    let err = server.create_database(&escaped_too_long).unwrap_err();
    assert!(err.to_string().contains("GRANT pattern"), "{err}");
    let too_long_login = DbSpec {
        name: format!("o{id}"),
        login: "l".repeat(limits.login.unwrap() + 1),
        password: names::generate_password(),
        marker: db_common::marker(),
    };
    cleanup.database(&too_long_login.name);
    cleanup.login(&too_long_login.login);
    let err = server.create_database(&too_long_login).unwrap_err();
    assert!(
        matches!(err, DbError::InvalidName { what: "login", .. }),
        "{err}"
    );
    assert!(!server.database_exists(&too_long_login.name).unwrap());
}

#[test]
fn a_login_reaches_only_its_own_database_not_lookalikes() {
    // `_` is a wildcard in GRANT patterns: `a_b` must not grant access to `aXb`.
    let server = db_common::open_server(KIND);
    let client = MysqlClient::new();
    let mut cleanup = Cleanup::new(server.as_ref());
    let id = db_common::unique_id();
    let spec = DbSpec {
        name: format!("look_{id}"),
        login: format!("l_{}", &id[id.len() - 8..]),
        password: names::generate_password(),
        marker: db_common::marker(),
    };
    let lookalike = DbSpec {
        name: format!("lookX{id}"),
        login: format!("m_{}", &id[id.len() - 8..]),
        password: names::generate_password(),
        marker: db_common::marker(),
    };
    for s in [&spec, &lookalike] {
        cleanup.database(&s.name);
        cleanup.login(&s.login);
        server.create_database(s).unwrap();
    }
    client.run(&spec, "CREATE TABLE t (a INT); INSERT INTO t VALUES (1);");
    let denied = client
        .try_run(
            &spec.login,
            spec.password.expose(),
            &lookalike.name,
            "SELECT 1;",
        )
        .unwrap_err();
    assert!(denied.contains("Access denied"), "{denied}");
}

#[test]
fn load_runs_no_client_shell_commands_from_a_tampered_dump() {
    let server = db_common::open_server(KIND);
    let mut cleanup = Cleanup::new(server.as_ref());
    let names = names_for("tamper", server.as_ref());
    let spec = &names.first;
    cleanup.database(&spec.name);
    cleanup.login(&spec.login);
    server.create_database(spec).unwrap();

    let dir = db_common::temp_dir();
    let marker = db_common::path_in(&dir, "pwned");
    let dump = db_common::path_in(&dir, "evil.sql");
    fs_err::write(
        &dump,
        format!(
            "CREATE TABLE t (a INT);\n\\! touch {}\nINSERT INTO t VALUES (1);\n",
            marker.display()
        ),
    )
    .unwrap();
    let err = server.load(spec, &dump).unwrap_err();
    assert!(!marker.exists(), "the dump ran a shell command");
    assert!(err.to_string().contains("sandbox"), "{err}");
}

#[test]
fn dump_and_load_of_missing_things_fail_clearly() {
    let server = db_common::open_server(KIND);
    let dir = db_common::temp_dir();
    let out = db_common::path_in(&dir, "none.sql");
    let missing = format!("missing_{}", db_common::unique_id());
    let err = server.dump(&missing, &out).unwrap_err();
    assert_eq!(err.kind(), DbErrorKind::NotFound, "{err}");
    assert!(!out.exists());
    let spec = DbSpec {
        name: missing.clone(),
        login: missing,
        password: names::generate_password(),
        marker: db_common::marker(),
    };
    let err = server
        .load(&spec, &db_common::path_in(&dir, "no-such-dump"))
        .unwrap_err();
    assert_eq!(err.kind(), DbErrorKind::NotFound, "{err}");
    assert!(!server.drop_database(&spec.name).unwrap());
    assert!(!server.drop_login(&spec.login).unwrap());
}

#[test]
fn version_is_reported_raw_and_comparable() {
    let server = db_common::open_server(KIND);
    let version = server.version().unwrap();
    assert!(version.raw.starts_with(&version.number), "{version:?}");
    assert!(version.components().len() >= 2, "{version:?}");
    assert!(version.at_least(&[5, 0]), "{version:?}");
    if version.product == "MariaDB" {
        assert!(version.raw.contains("MariaDB"));
        assert_eq!(server.name_limits().unwrap().login, Some(80));
    }
    let spec = DbSpec {
        name: "n".into(),
        login: "l".into(),
        password: names::generate_password(),
        marker: db_common::marker(),
    };
    let values = server.connection_values(&spec);
    assert_eq!((values.name.as_str(), values.login.as_str()), ("n", "l"));
    assert_eq!(
        values.port,
        db_common::server_config(KIND).effective_port().to_string()
    );
}

#[test]
fn an_unreachable_server_is_an_error_not_a_hang() {
    let mut config = db_common::server_config(KIND);
    config.port = Some(1);
    let server = aps_host::db::open(config).unwrap();
    let err = server.version().unwrap_err();
    assert!(matches!(err, DbError::ClientFailed { .. }), "{err}");
    let config = db_common::server_config(KIND);
    let admin_password = config.admin_password.expose().to_owned();
    assert!(!err.to_string().contains(&admin_password));
}

/// Issue 7 (B9): a database or login another owner made under apsctl's chosen name is refused
/// and reads as foreign, so an undo never drops it.
#[test]
fn issue_7_a_strangers_database_or_login_is_refused_and_foreign() {
    let server = db_common::open_server(KIND);
    let names = names_for("stranger", server.as_ref());
    db_common::foreign_names_are_refused_and_never_ours(
        server.as_ref(),
        &MysqlClient::new(),
        &names.first,
        &names.second,
    );
}

/// Issue 7: on MariaDB ≥ 10.5 the database carries the marker as its schema comment, and the
/// login is proven by its password.
#[test]
fn issue_7_creation_proves_database_and_login_ours() {
    let server = db_common::open_server(KIND);
    let version = server.version().unwrap();
    assert!(
        version.product == "MariaDB" && version.at_least(&[10, 5]),
        "these tests expect MariaDB 10.5 or later (schema comments), got {version:?}"
    );
    let spec = names_for("proof", server.as_ref()).first;
    db_common::creation_leaves_proofs(
        server.as_ref(),
        &spec,
        Ownership {
            database: Owner::Ours(Proof::SchemaComment),
            login: Owner::Ours(Proof::Password),
        },
    );
}

/// Issue 7: the comment is really on the server, seen by the test's own client, and a login of
/// ours with a changed password is no longer provably ours.
#[test]
fn issue_7_the_schema_comment_is_the_marker() {
    let server = db_common::open_server(KIND);
    let client = MysqlClient::new();
    let mut cleanup = Cleanup::new(server.as_ref());
    let spec = names_for("comment", server.as_ref()).first;
    cleanup.database(&spec.name);
    cleanup.login(&spec.login);
    server.create_database(&spec).unwrap();
    let comment = client.admin(&format!(
        "SELECT SCHEMA_COMMENT FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {};",
        quoted(&spec.name)
    ));
    assert_eq!(comment.trim_end(), spec.marker);

    for host in ["localhost", "127.0.0.1"] {
        client.admin(&format!(
            "SET PASSWORD FOR {}@{} = PASSWORD('changed by someone');",
            quoted(&spec.login),
            quoted(host)
        ));
    }
    assert_eq!(server.ownership(&spec).unwrap().login, Owner::Foreign);
}
