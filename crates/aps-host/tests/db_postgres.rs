//! `PostgreSQL` database server against the real server `.ci/services.sh` starts.
#![expect(
    clippy::disallowed_methods,
    reason = "the test drives the real database clients directly, outside the product's Env"
)]

mod db_common;

use std::process::{Command, Stdio};

use aps_host::db::{
    DatabaseServer, DbError, DbErrorKind, DbSpec, Owner, Ownership, Proof, Secret, ServerConfig,
    ServerType,
};
use aps_host::names::{self, NameParts};
use db_common::{Cleanup, Client, LifecycleNames, OWN_MARK, Stranger};

const KIND: ServerType = ServerType::Postgresql;

struct PgClient {
    config: ServerConfig,
}

/// A libpq connection-string value.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl PgClient {
    fn new() -> Self {
        Self {
            config: db_common::server_config(KIND),
        }
    }

    /// Runs `sql` as `user` on `database`; Ok(stdout) or Err(stderr).
    fn try_run(
        &self,
        user: &str,
        password: &str,
        database: &str,
        sql: &str,
    ) -> Result<String, String> {
        let (key, value) = OWN_MARK.split_once('=').expect("split_once");
        let conninfo = format!(
            "host={} port={} user={} dbname={}",
            quote(&self.config.host),
            self.config.effective_port(),
            quote(user),
            quote(database)
        );
        let mut child = Command::new("/usr/bin/psql")
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &conninfo,
            ])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("PGPASSWORD", password)
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

impl PgClient {
    /// Runs `sql` as the administrator on the maintenance database; panics on failure.
    fn admin(&self, sql: &str) -> String {
        let password = self.config.admin_password.expose();
        self.try_run(&self.config.admin_user, password, "postgres", sql)
            .unwrap_or_else(|e| panic!("test client failed as the administrator: {e}"))
    }
}

/// A PostgreSQL identifier for the test's own SQL.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A PostgreSQL string literal for the test's own SQL (names here have no backslash).
fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

impl Stranger for PgClient {
    fn create_database(&self, name: &str) {
        self.admin(&format!("CREATE DATABASE {};", ident(name)));
    }

    fn create_login(&self, login: &str) {
        self.admin(&format!(
            "CREATE ROLE {} LOGIN PASSWORD 'a stranger''s password';",
            ident(login)
        ));
    }
}

impl Client for PgClient {
    fn run(&self, spec: &DbSpec, sql: &str) -> String {
        self.try_run(&spec.login, spec.password.expose(), &spec.name, sql)
            .unwrap_or_else(|e| panic!("test client failed as {}: {e}", spec.login))
    }

    fn setup_sql(&self) -> &'static str {
        r"
CREATE TABLE items (id serial PRIMARY KEY, label text NOT NULL, data bytea);
CREATE TABLE audit (item int NOT NULL);
CREATE FUNCTION log_item() RETURNS trigger LANGUAGE plpgsql
  AS $$ BEGIN INSERT INTO audit VALUES (NEW.id); RETURN NEW; END $$;
CREATE TRIGGER items_ai AFTER INSERT ON items FOR EACH ROW EXECUTE FUNCTION log_item();
CREATE VIEW item_labels AS SELECT id, label FROM items;
INSERT INTO items (label, data) VALUES
  ('héllo wörld 日本語 🎉', '\x00ff0a0d27225c60'),
  ('quote '' backslash \ backtick ` tab	', NULL),
  ('big', decode(repeat('00ff7f80', 250000), 'hex'));
"
    }

    fn snapshot_sql(&self) -> &'static str {
        "
SELECT id, label, md5(data), length(data), encode(substring(data from 1 for 8), 'hex')
  FROM items ORDER BY id;
SELECT count(*) FROM audit;
SELECT id, label FROM item_labels ORDER BY id;
"
    }

    fn insert_sql(&self) -> &'static str {
        "INSERT INTO items (label) VALUES ('after load'); SELECT count(*) FROM audit;"
    }

    fn tables_sql(&self) -> &'static str {
        "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = 'public' ORDER BY 1;"
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
    let client = PgClient::new();
    db_common::lifecycle(
        server.as_ref(),
        &client,
        &names_for("WordPress", server.as_ref()),
    );
}

#[test]
fn hostile_names_and_password_work_and_never_reach_argv() {
    let server = db_common::open_server(KIND);
    let client = PgClient::new();
    let id = db_common::unique_id();
    let hostile = |n: &str| DbSpec {
        name: format!("d'\"\\`%_ ={n}{id}"),
        login: format!("u'\"\\`:{n}{id}"),
        password: Secret::new(format!("p'\"\\` #;:=*$(id) {n}{id}")),
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
    let watcher = db_common::ProcWatcher::start(&["psql", "pg_dump", "pg_restore"], &secrets);
    db_common::lifecycle(server.as_ref(), &client, &names);
    let seen = watcher.finish();
    db_common::assert_no_leaks(&seen, "PGPASSFILE=");
    for env in &seen.client_environs {
        assert!(!env.contains("PGPASSWORD"), "client got PGPASSWORD: {env}");
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

    let reuse_login = DbSpec {
        login: first.login.clone(),
        ..second.clone()
    };
    let err = server.create_database(&reuse_login).unwrap_err();
    assert!(matches!(err, DbError::LoginExists { .. }), "{err}");
    assert_eq!(err.kind(), DbErrorKind::AlreadyExists);
    assert!(!server.database_exists(&second.name).unwrap());

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
        let name = names::unique_name(&parts, limits.database, taken).unwrap();
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
fn names_at_the_limit_work_and_longer_ones_are_refused() {
    // PostgreSQL would silently truncate a 64-byte name to 63, so such names must be refused.
    let server = db_common::open_server(KIND);
    let mut cleanup = Cleanup::new(server.as_ref());
    let limits = server.name_limits().unwrap();
    assert_eq!((limits.database, limits.login), (63, Some(63)));
    let id = db_common::unique_id();
    let base = "x".repeat(300);
    let spec = DbSpec {
        name: names::derive_name(&base, &id, 63).unwrap(),
        login: names::derive_name(&format!("l{base}"), &id, 63).unwrap(),
        password: names::generate_password(),
        marker: db_common::marker(),
    };
    assert_eq!(spec.name.len(), 63);
    cleanup.database(&spec.name);
    cleanup.login(&spec.login);
    server.create_database(&spec).unwrap();
    server.check_login(&spec).unwrap();

    let too_long = DbSpec {
        name: format!("{}y", spec.name),
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
    assert!(!server.login_exists(&too_long.login).unwrap());
    // Multi-byte characters count in bytes: 32 × `é` = 64 bytes.
    let unicode = DbSpec {
        name: "é".repeat(32),
        ..too_long.clone()
    };
    let err = server.create_database(&unicode).unwrap_err();
    assert!(err.to_string().contains("64 bytes"), "{err}");
}

#[test]
fn a_login_cannot_connect_to_another_instance_database() {
    let server = db_common::open_server(KIND);
    let client = PgClient::new();
    let mut cleanup = Cleanup::new(server.as_ref());
    let names = names_for("neighbour", server.as_ref());
    for s in [&names.first, &names.second] {
        cleanup.database(&s.name);
        cleanup.login(&s.login);
        server.create_database(s).unwrap();
    }
    let first = &names.first;
    let denied = client
        .try_run(
            &first.login,
            first.password.expose(),
            &names.second.name,
            "SELECT 1;",
        )
        .unwrap_err();
    assert!(denied.contains("permission denied"), "{denied}");
}

#[test]
fn load_runs_no_psql_commands_from_a_tampered_dump() {
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
            "CREATE TABLE t (a int);\n\\! touch {}\nINSERT INTO t VALUES (1);\n",
            marker.display()
        ),
    )
    .unwrap();
    let err = server.load(spec, &dump).unwrap_err();
    assert!(!marker.exists(), "the dump ran a shell command");
    assert!(matches!(err, DbError::ClientFailed { .. }), "{err}");
}

#[test]
fn dump_and_load_of_missing_things_fail_clearly() {
    let server = db_common::open_server(KIND);
    let dir = db_common::temp_dir();
    let out = db_common::path_in(&dir, "none.dump");
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
fn drop_database_ends_open_sessions() {
    let server = db_common::open_server(KIND);
    let mut cleanup = Cleanup::new(server.as_ref());
    let names = names_for("busy", server.as_ref());
    let spec = &names.first;
    cleanup.database(&spec.name);
    cleanup.login(&spec.login);
    server.create_database(spec).unwrap();
    // An application session that stays connected while the instance is removed.
    let conninfo = format!(
        "host={} port={} user={} dbname={}",
        quote(&db_common::server_config(KIND).host),
        db_common::server_config(KIND).effective_port(),
        quote(&spec.login),
        quote(&spec.name)
    );
    let (key, value) = OWN_MARK.split_once('=').unwrap();
    let mut session = Command::new("/usr/bin/psql")
        .args(["-X", "-q", "-d", &conninfo, "-c", "SELECT pg_sleep(30)"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("PGPASSWORD", spec.password.expose())
        .env(key, value)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(server.drop_database(&spec.name).unwrap());
    assert!(server.drop_login(&spec.login).unwrap());
    assert!(
        !session.wait().unwrap().success(),
        "the session was not ended"
    );
}

#[test]
fn version_is_reported_raw_and_comparable() {
    let server = db_common::open_server(KIND);
    let version = server.version().unwrap();
    assert_eq!(version.product, "PostgreSQL");
    assert!(version.raw.starts_with(&version.number), "{version:?}");
    assert!(version.at_least(&[9]), "{version:?}");
    let spec = DbSpec {
        name: "n".into(),
        login: "l".into(),
        password: names::generate_password(),
        marker: db_common::marker(),
    };
    let values = server.connection_values(&spec);
    assert_eq!(values.host, db_common::server_config(KIND).host);
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
}

/// Issue 7 (B9): a database or login another owner made under apsctl's chosen name is refused
/// and reads as foreign, so an undo never drops it.
#[test]
fn issue_7_a_strangers_database_or_login_is_refused_and_foreign() {
    let server = db_common::open_server(KIND);
    let names = names_for("stranger", server.as_ref());
    db_common::foreign_names_are_refused_and_never_ours(
        server.as_ref(),
        &PgClient::new(),
        &names.first,
        &names.second,
    );
}

/// Issue 7: the role carries the marker as its comment, and the database is owned by that role.
#[test]
fn issue_7_creation_proves_database_and_login_ours() {
    let server = db_common::open_server(KIND);
    let spec = names_for("proof", server.as_ref()).first;
    db_common::creation_leaves_proofs(
        server.as_ref(),
        &spec,
        Ownership {
            database: Owner::Ours(Proof::OwnerRole),
            login: Owner::Ours(Proof::RoleComment),
        },
    );
}

/// Issue 7: the comment is really on the role, seen by the test's own client; a database of our
/// name owned by another role is foreign even when our role exists.
#[test]
fn issue_7_the_role_comment_is_the_marker_and_the_owner_proves_the_database() {
    let server = db_common::open_server(KIND);
    let client = PgClient::new();
    let mut cleanup = Cleanup::new(server.as_ref());
    let names = names_for("comment", server.as_ref());
    let spec = &names.first;
    cleanup.database(&spec.name);
    cleanup.login(&spec.login);
    server.create_database(spec).unwrap();
    let comment = client.admin(&format!(
        "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = {};",
        literal(&spec.login)
    ));
    assert_eq!(comment.trim_end(), spec.marker);

    // Our role, someone else's database of the name: the database is not ours.
    let theirs = DbSpec {
        name: names.second.name.clone(),
        ..spec.clone()
    };
    cleanup.database(&theirs.name);
    client.create_database(&theirs.name);
    assert_eq!(
        server.ownership(&theirs).unwrap(),
        Ownership {
            database: Owner::Foreign,
            login: Owner::Ours(Proof::RoleComment),
        }
    );
}
