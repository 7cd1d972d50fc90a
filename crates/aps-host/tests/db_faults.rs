//! The `db-create` fault point of every server type: a creation failed half-way leaves nothing,
//! one crashed half-way leaves its first half, proven ours (hardening issue 7).
//!
//! A binary of its own because the fault points are process-global: armed here, they would
//! make the creations of unrelated tests running in parallel threads fail. Inside this binary a
//! mutex serialises the tests. A crash is made in a child process: this binary again, running
//! only [`crash_child`] with the fault point armed to abort.
#![expect(
    clippy::disallowed_methods,
    reason = "the crash test starts this test binary itself as the child process to abort"
)]

#[expect(
    dead_code,
    reason = "the fault tests use the servers and names, not the clients and the watcher"
)]
mod db_common;

use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};

use aps_host::db::{
    self, Creation, DatabaseServer, DbError, DbSpec, Owner, Ownership, Proof, Secret, ServerConfig,
    ServerType,
};
use aps_host::env::Env;
use aps_host::names;
use db_common::Cleanup;

/// Serialises the tests of this binary (the fault points are global to the process).
static FAULTS: Mutex<()> = Mutex::new(());

/// Holds [`FAULTS`]; disarms every point when the test ends, even on panic.
struct Armed(#[expect(dead_code, reason = "held for its lock only")] MutexGuard<'static, ()>);

impl Armed {
    fn new(spec: &str) -> Self {
        let guard = FAULTS.lock().unwrap_or_else(PoisonError::into_inner);
        aps_failpoint::configure(spec).expect("fault specification");
        Self(guard)
    }
}

/// Disarms every point while the caller still holds the lock.
fn disarm(_held: &Armed) {
    aps_failpoint::configure("").expect("empty fault specification");
}

impl Drop for Armed {
    fn drop(&mut self) {
        let _ = aps_failpoint::configure("");
    }
}

/// The variable that makes [`crash_child`] run: the server and spec as JSON.
const CHILD_VAR: &str = "APSCTL_TEST_DB_CRASH_CHILD";

/// A spec with fresh names for `server`.
fn fresh_spec(server: &dyn DatabaseServer, base: &str) -> DbSpec {
    let limits = server.name_limits().expect("name_limits");
    let id = db_common::unique_id();
    let login = limits
        .login
        .map(|limit| names::derive_name(base, &id, limit).expect("derive_name"));
    DbSpec {
        name: names::derive_name(base, &id, limits.database).expect("derive_name"),
        password: login
            .as_ref()
            .map_or_else(Secret::default, |_| names::generate_password()),
        login: login.unwrap_or_default(),
        marker: db_common::marker(),
    }
}

/// A `SQLite` "server" in `dir`.
fn sqlite_server(dir: &Path) -> Box<dyn DatabaseServer> {
    db::open(ServerConfig::sqlite(dir)).expect("open the SQLite server")
}

/// Issue 7: an injected failure between the two halves of a creation runs the creation's own
/// cleanup: nothing of the spec is left, and the same spec can be created afterwards.
fn failed_creation_leaves_nothing(server: &dyn DatabaseServer) {
    let spec = fresh_spec(server, "fault");
    let mut cleanup = Cleanup::new(server);
    cleanup.database(&spec.name);
    cleanup.login(&spec.login);
    let armed = Armed::new("db-create=fail");
    let err = server
        .create_database(&spec)
        .expect_err("the fault point fails the creation");
    disarm(&armed);
    assert!(matches!(err, DbError::Fault(_)), "{err}");
    assert!(err.to_string().contains("`db-create`"), "{err}");
    assert!(!server.database_exists(&spec.name).expect("database_exists"));
    if !spec.login.is_empty() {
        assert!(!server.login_exists(&spec.login).expect("login_exists"));
    }
    assert_eq!(
        server.ownership(&spec).expect("ownership"),
        Ownership {
            database: Owner::Absent,
            login: Owner::Absent
        }
    );
    server
        .create_database(&spec)
        .expect("create after the failure");
    server.check_login(&spec).expect("check_login");
}

#[test]
fn issue_7_a_failure_at_db_create_leaves_nothing_mysql() {
    failed_creation_leaves_nothing(db_common::open_server(ServerType::Mysql).as_ref());
}

#[test]
fn issue_7_a_failure_at_db_create_leaves_nothing_postgresql() {
    failed_creation_leaves_nothing(db_common::open_server(ServerType::Postgresql).as_ref());
}

#[test]
fn issue_7_a_failure_at_db_create_leaves_nothing_sqlite() {
    let tmp = tempfile::tempdir().expect("temp dir");
    failed_creation_leaves_nothing(sqlite_server(tmp.path()).as_ref());
}

/// What the child needs to repeat the creation: the server type, the `SQLite` folder, the spec.
fn child_request(kind: ServerType, sqlite_dir: Option<&Path>, spec: &DbSpec) -> String {
    serde_json::json!({
        "kind": kind,
        "sqlite_dir": sqlite_dir,
        "name": spec.name,
        "login": spec.login,
        "password": spec.password.expose(),
        "marker": spec.marker,
    })
    .to_string()
}

/// The child process of the crash tests: creates the spec it is given with `db-create` armed to
/// abort. Run only by [`crash_creation`].
#[test]
#[ignore = "the child process of the issue_7 crash tests, which start it themselves"]
fn crash_child() {
    let env = Env::from_process();
    let request: serde_json::Value = serde_json::from_str(
        env.var(CHILD_VAR)
            .expect("started by a crash test, which sets the request"),
    )
    .expect("request JSON");
    let text = |key: &str| request[key].as_str().expect("string field").to_owned();
    let kind: ServerType = serde_json::from_value(request["kind"].clone()).expect("kind");
    let server = match kind {
        ServerType::Sqlite => sqlite_server(Path::new(&text("sqlite_dir"))),
        _ => db_common::open_server(kind),
    };
    let spec = DbSpec {
        name: text("name"),
        login: text("login"),
        password: Secret::new(text("password")),
        marker: text("marker"),
    };
    let _armed = Armed::new("db-create=crash");
    let result = server.create_database(&spec);
    panic!("the fault point did not abort the creation: {result:?}");
}

/// Runs the creation of `spec` in a child process that aborts at `db-create`.
fn crash_creation(kind: ServerType, sqlite_dir: Option<&Path>, spec: &DbSpec) {
    // An abort may leave a core file in the working directory: a temporary one.
    let work = tempfile::tempdir().expect("temp dir");
    let me = std::env::current_exe().expect("the test binary");
    let output = Command::new(me)
        .args(["--ignored", "--exact", "crash_child", "--test-threads=1"])
        .env(CHILD_VAR, child_request(kind, sqlite_dir, spec))
        .current_dir(work.path())
        .stdin(Stdio::null())
        .output()
        .expect("run the child");
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGABRT),
        "the child was to abort at the fault point: {:?}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Issue 7: after a crash half-way through a creation, `ownership` proves the half that was
/// made ours, so recovery may drop it although the journal never saw the creation complete.
fn crash_leaves_the_first_half_proven_ours(
    server: &dyn DatabaseServer,
    kind: ServerType,
    sqlite_dir: Option<&Path>,
    expected: Ownership,
    half_made: &dyn Fn(&DbSpec),
) {
    let _serial = Armed::new("");
    let spec = fresh_spec(server, "crash");
    let mut cleanup = Cleanup::new(server);
    cleanup.database(&spec.name);
    cleanup.login(&spec.login);
    crash_creation(kind, sqlite_dir, &spec);
    let found = server.ownership(&spec).expect("ownership");
    assert_eq!(found, expected);
    half_made(&spec);
    // What recovery does with an unfinished creation: drop what is proven ours, nothing else.
    if found.database.may_drop(Creation::Unfinished) {
        assert!(server.drop_database(&spec.name).expect("drop_database"));
    }
    if found.login.may_drop(Creation::Unfinished) {
        assert!(server.drop_login(&spec.login).expect("drop_login"));
    }
    assert_eq!(
        server.ownership(&spec).expect("ownership"),
        Ownership {
            database: Owner::Absent,
            login: Owner::Absent
        }
    );
}

#[test]
fn issue_7_a_crash_at_db_create_leaves_a_database_proven_ours_mysql() {
    let kind = ServerType::Mysql;
    crash_leaves_the_first_half_proven_ours(
        db_common::open_server(kind).as_ref(),
        kind,
        None,
        Ownership {
            database: Owner::Ours(Proof::SchemaComment),
            login: Owner::Absent,
        },
        &|_| {},
    );
}

#[test]
fn issue_7_a_crash_at_db_create_leaves_a_role_proven_ours_postgresql() {
    let kind = ServerType::Postgresql;
    crash_leaves_the_first_half_proven_ours(
        db_common::open_server(kind).as_ref(),
        kind,
        None,
        Ownership {
            database: Owner::Absent,
            login: Owner::Ours(Proof::RoleComment),
        },
        &|_| {},
    );
}

#[test]
fn issue_7_a_crash_at_db_create_leaves_a_folder_proven_ours_sqlite() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir: PathBuf = tmp.path().join("databases");
    let server = sqlite_server(&dir);
    let marker_but_no_database = |spec: &DbSpec| {
        let folder = dir.join(&spec.name);
        assert!(folder.join(".apsctl-owner").is_file());
        assert!(!folder.join(format!("{}.sqlite", spec.name)).exists());
    };
    crash_leaves_the_first_half_proven_ours(
        server.as_ref(),
        ServerType::Sqlite,
        Some(&dir),
        Ownership {
            database: Owner::Ours(Proof::MarkerFile),
            login: Owner::Absent,
        },
        &marker_but_no_database,
    );
}
