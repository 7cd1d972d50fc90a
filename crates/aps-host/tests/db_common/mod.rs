//! Shared helpers of the database integration tests: server settings, unique names, cleanup, a
//! watcher that looks for secrets in the argv and environment of running processes, and the
//! checks of creation proofs (hardening issue 7) that run the same for every server type.
//!
//! The servers are the real ones `.ci/services.sh` starts. Settings come from the
//! `APSCTL_TEST_*` variables, else from `/var/lib/apsctl-ci/env`; when neither has them the test
//! fails (never skips) and says how to start the servers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};

use aps_host::db::{
    DatabaseServer, DbError, DbSpec, Owner, Ownership, Secret, ServerConfig, ServerType,
};
use aps_host::env::Env;
use rand::Rng as _;

/// Where `.ci/services.sh` writes the test settings.
pub(crate) const CI_ENV_FILE: &str = "/var/lib/apsctl-ci/env";

/// The test settings: variables first, then the CI env file.
fn settings() -> BTreeMap<String, String> {
    let mut all = BTreeMap::new();
    if let Ok(text) = fs_err::read_to_string(CI_ENV_FILE) {
        for line in text.lines() {
            if let Some((k, v)) = line.split_once('=') {
                all.insert(k.trim().to_owned(), v.trim().to_owned());
            }
        }
    }
    let env = Env::from_process();
    let keys: Vec<String> = all.keys().cloned().collect();
    for key in keys.into_iter().chain(["MYSQL", "PG"].iter().flat_map(|p| {
        ["HOST", "PORT", "USER", "PASSWORD_FILE"]
            .iter()
            .map(move |k| format!("APSCTL_TEST_{p}_{k}"))
    })) {
        if let Some(v) = env.var(&key) {
            all.insert(key, v.to_owned());
        }
    }
    all
}

/// The configuration of the real test server `prefix` (`MYSQL` or `PG`); panics with a clear
/// message when the settings are missing.
pub(crate) fn server_config(kind: ServerType) -> ServerConfig {
    let prefix = match kind {
        ServerType::Mysql => "MYSQL",
        ServerType::Postgresql => "PG",
        ServerType::Sqlite => unreachable!("SQLite needs no server"),
    };
    let all = settings();
    let get = |key: &str| -> String {
        let name = format!("APSCTL_TEST_{prefix}_{key}");
        all.get(&name).cloned().unwrap_or_else(|| {
            panic!(
                "{kind} test server not configured: {name} is neither set nor in {CI_ENV_FILE}; \
                 run `bash .ci/services.sh` (as root) to start MariaDB and PostgreSQL"
            )
        })
    };
    let password_file = get("PASSWORD_FILE");
    let password = fs_err::read_to_string(&password_file).unwrap_or_else(|e| {
        panic!("{kind} admin password unreadable ({e}); rerun .ci/services.sh")
    });
    ServerConfig {
        kind,
        host: get("HOST"),
        port: Some(get("PORT").parse().expect("numeric port")),
        admin_user: get("USER"),
        admin_password: Secret::new(password.trim()),
        sqlite_dir: None,
        login_hosts: Vec::new(),
    }
}

/// Opens the real test server of `kind` and checks it answers, failing loudly if not.
pub(crate) fn open_server(kind: ServerType) -> Box<dyn DatabaseServer> {
    let server = aps_host::db::open(server_config(kind)).expect("client programs installed");
    if let Err(e) = server.version() {
        panic!("{kind} test server does not answer ({e}); run `bash .ci/services.sh` to start it");
    }
    server
}

/// A fresh instance-id-like token, unique across test runs and parallel tests.
pub(crate) fn unique_id() -> String {
    format!(
        "t{}x{:08x}",
        std::process::id(),
        rand::thread_rng().r#gen::<u32>()
    )
}

/// A fresh marker, unique per test as a caller makes one unique per operation and resource.
pub(crate) fn marker() -> String {
    format!("apsctl:test:{}", unique_id())
}

/// Drops the listed databases and logins when the test ends, even on panic.
pub(crate) struct Cleanup<'a> {
    server: &'a dyn DatabaseServer,
    databases: Vec<String>,
    logins: Vec<String>,
}

impl<'a> Cleanup<'a> {
    pub(crate) fn new(server: &'a dyn DatabaseServer) -> Self {
        Self {
            server,
            databases: Vec::new(),
            logins: Vec::new(),
        }
    }

    pub(crate) fn database(&mut self, name: &str) {
        self.databases.push(name.to_owned());
    }

    pub(crate) fn login(&mut self, login: &str) {
        self.logins.push(login.to_owned());
    }
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for name in &self.databases {
            let _ = self.server.drop_database(name);
        }
        for login in &self.logins {
            let _ = self.server.drop_login(login);
        }
    }
}

/// Environment marker of the test's own client processes, which the watcher ignores.
pub(crate) const OWN_MARK: &str = "APSCTL_TEST_OWN_CLIENT=1";

/// What the process watcher saw.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// Command lines (NUL replaced by space) of processes whose program matched.
    pub(crate) client_cmdlines: Vec<String>,
    /// Environments (NUL-separated, as one string) of those processes.
    pub(crate) client_environs: Vec<String>,
    /// Any command line or environment, of any process, that contained a secret.
    pub(crate) leaks: Vec<String>,
}

/// Polls `/proc` while it runs, recording client processes (whose argv[0] ends with one of
/// `programs`) and any process whose argv or environment contains one of `secrets`.
pub(crate) struct ProcWatcher {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Seen>,
}

/// Whether process `pid` is `ancestor` or a descendant of it (walking the parent ids; a
/// process gone in between counts as not).
fn descends_from(pid: &str, ancestor: &str) -> bool {
    let mut current = pid.to_owned();
    for _ in 0..64 {
        if current == ancestor {
            return true;
        }
        let Ok(stat) = fs_err::read_to_string(format!("/proc/{current}/stat")) else {
            return false;
        };
        let Some(parent) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
        else {
            return false;
        };
        if parent == "0" || parent == "1" {
            return false;
        }
        parent.clone_into(&mut current);
    }
    false
}

/// Whether the process of `/proc/<pid>` still runs (a zombie's `environ` reads empty).
fn is_live(dir: &Path) -> bool {
    fs_err::read_to_string(dir.join("stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

impl ProcWatcher {
    pub(crate) fn start(programs: &[&str], secrets: &[&str]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let programs: Vec<String> = programs.iter().map(|s| (*s).to_owned()).collect();
        let secrets: Vec<Vec<u8>> = secrets.iter().map(|s| s.as_bytes().to_vec()).collect();
        let me = std::process::id().to_string();
        let flag = Arc::clone(&stop);
        let handle = thread::spawn(move || {
            let mut seen = Seen::default();
            // Per client process, its longest argv seen: a read that races the client's start
            // can show a truncated one.
            let mut clients: BTreeMap<String, (Vec<u8>, Vec<u8>)> = BTreeMap::new();
            while !flag.load(Ordering::Relaxed) {
                let Ok(entries) = fs_err::read_dir("/proc") else {
                    break;
                };
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if !name.bytes().all(|b| b.is_ascii_digit()) || name == me {
                        continue;
                    }
                    let dir = entry.path();
                    let cmdline = fs_err::read(dir.join("cmdline")).unwrap_or_default();
                    let environ = fs_err::read(dir.join("environ")).unwrap_or_default();
                    // Only this test process's own children and their descendants: other test
                    // binaries running on the machine at the same time are not this test's.
                    if !descends_from(&name, &me) {
                        continue;
                    }
                    if environ.is_empty() && !is_live(&dir) {
                        // It exited between the two reads: whose it was cannot be told.
                        continue;
                    }
                    if contains(&environ, OWN_MARK.as_bytes()) {
                        // The test's own client (it passes passwords by environment on purpose).
                        continue;
                    }
                    for secret in &secrets {
                        for (what, bytes) in [("argv", &cmdline), ("environ", &environ)] {
                            if contains(bytes, secret) {
                                seen.leaks.push(format!(
                                    "{what} of pid {name}: {}",
                                    String::from_utf8_lossy(&cmdline).replace('\0', " ")
                                ));
                            }
                        }
                    }
                    // argv[0], or argv[1] behind an interpreter (Debian's pg_wrapper is Perl).
                    let is_client = cmdline.split(|b| *b == 0).take(2).any(|arg| {
                        let arg = String::from_utf8_lossy(arg);
                        Path::new(arg.as_ref())
                            .file_name()
                            .is_some_and(|f| programs.iter().any(|p| f == p.as_str()))
                    });
                    if is_client {
                        let known = clients.entry(name).or_default();
                        if cmdline.len() > known.0.len() {
                            *known = (cmdline, environ);
                        }
                    }
                }
                thread::yield_now();
            }
            for (cmdline, environ) in clients.into_values() {
                seen.client_cmdlines
                    .push(String::from_utf8_lossy(&cmdline).replace('\0', " "));
                seen.client_environs
                    .push(String::from_utf8_lossy(&environ).replace('\0', "\n"));
            }
            seen
        });
        Self { stop, handle }
    }

    pub(crate) fn finish(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("watcher thread")
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// A private temporary directory for dumps.
pub(crate) fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// `dir/<file>`.
pub(crate) fn path_in(dir: &tempfile::TempDir, file: &str) -> PathBuf {
    dir.path().join(file)
}

/// The test's own SQL client for one server type (independent of the code under test).
pub(crate) trait Client {
    /// Runs `sql` as `spec`'s login in `spec`'s database; returns stdout, panics on failure.
    fn run(&self, spec: &DbSpec, sql: &str) -> String;
    /// Creates tables, a trigger and a view, and inserts unicode text and binary blobs.
    fn setup_sql(&self) -> &'static str;
    /// Reads back everything `setup_sql` made, in a stable order.
    fn snapshot_sql(&self) -> &'static str;
    /// Inserts one row (the trigger adds an audit row) and prints the audit count.
    fn insert_sql(&self) -> &'static str;
    /// Prints the names of the database's tables.
    fn tables_sql(&self) -> &'static str;
}

/// Names and password for one [`lifecycle`] run.
pub(crate) struct LifecycleNames {
    pub(crate) first: DbSpec,
    pub(crate) second: DbSpec,
}

/// Emptied (what an application did after the dump is gone, the login still works) and the dump
/// loaded back: as it was at the dump; a spec whose login cannot prove itself is refused.
fn empty_and_load(
    server: &dyn DatabaseServer,
    client: &dyn Client,
    first: &DbSpec,
    dump: &Path,
    before: &str,
) {
    client.run(
        first,
        "CREATE TABLE made_after_the_dump (x INTEGER); INSERT INTO made_after_the_dump VALUES (1);",
    );
    server.empty_database(first).expect("empty_database");
    server
        .check_login(first)
        .expect("check_login after empty_database");
    server
        .create_database(first)
        .expect_err("create_database after empty_database");
    server
        .load(first, dump)
        .expect("load into the emptied database");
    assert_eq!(client.run(first, client.snapshot_sql()), before);
    let tables = client.run(first, client.tables_sql());
    assert!(!tables.contains("made_after_the_dump"), "{tables}");
    // A spec whose proof does not match is refused and changes nothing.
    let mut stranger = first.clone();
    stranger.marker = marker();
    stranger.password = aps_host::db::Secret::new("not-the-password-123");
    let refused = server
        .empty_database(&stranger)
        .expect_err("empty_database without the proof");
    assert!(matches!(refused, DbError::NotOurs { .. }), "{refused}");
    assert_eq!(client.run(first, client.snapshot_sql()), before);
}

/// The full life of an instance database: create, verify, refuse a second create, fill, dump,
/// drop, create another, load, compare, use, drop.
pub(crate) fn lifecycle(server: &dyn DatabaseServer, client: &dyn Client, names: &LifecycleNames) {
    let LifecycleNames { first, second } = names;
    let mut cleanup = Cleanup::new(server);
    for spec in [first, second] {
        cleanup.database(&spec.name);
        cleanup.login(&spec.login);
        assert!(
            !server.database_exists(&spec.name).expect("database_exists"),
            "{} pre-exists",
            spec.name
        );
        assert!(
            !server.login_exists(&spec.login).expect("login_exists"),
            "{} pre-exists",
            spec.login
        );
    }

    server.create_database(first).expect("create_database");
    assert!(
        server
            .database_exists(&first.name)
            .expect("database_exists")
    );
    assert!(server.login_exists(&first.login).expect("login_exists"));
    server.check_login(first).expect("check_login");
    let again = server
        .create_database(first)
        .expect_err("create_database should fail");
    assert!(
        matches!(again, DbError::DatabaseExists { ref name, .. } if *name == first.name),
        "{again}"
    );

    client.run(first, client.setup_sql());
    let before = client.run(first, client.snapshot_sql());
    assert!(before.contains("héllo wörld 日本語 🎉"), "{before}");

    let dir = temp_dir();
    let dump = path_in(&dir, "dump");
    server.dump(&first.name, &dump).expect("dump");
    let meta = fs_err::metadata(&dump).expect("metadata");
    assert!(meta.len() > 1000, "dump is {} bytes", meta.len());
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );

    empty_and_load(server, client, first, &dump, &before);

    assert!(server.drop_database(&first.name).expect("drop_database"));
    assert!(server.drop_login(&first.login).expect("drop_login"));
    assert!(
        !server.drop_database(&first.name).expect("drop_database"),
        "second drop finds nothing"
    );
    assert!(
        !server.drop_login(&first.login).expect("drop_login"),
        "second drop finds nothing"
    );
    assert!(
        !server
            .database_exists(&first.name)
            .expect("database_exists")
    );
    assert!(!server.login_exists(&first.login).expect("login_exists"));
    assert!(
        server.check_login(first).is_err(),
        "dropped login still connects"
    );

    server.create_database(second).expect("create_database");
    server.check_login(second).expect("check_login");
    server.load(second, &dump).expect("load");
    let after = client.run(second, client.snapshot_sql());
    assert_eq!(before, after, "restored data differs");
    // The trigger still works after the load, now as the second login.
    let audit = client.run(second, client.insert_sql());
    assert_eq!(audit.trim(), "4", "audit rows after one more insert");

    assert!(server.drop_database(&second.name).expect("drop_database"));
    assert!(server.drop_login(&second.login).expect("drop_login"));
    assert!(
        !server
            .database_exists(&second.name)
            .expect("database_exists")
    );
    assert!(!server.login_exists(&second.login).expect("login_exists"));
}

/// Checks the process watcher saw the clients run (so it was really looking) and no secret in
/// any argv or environment.
pub(crate) fn assert_no_leaks(seen: &Seen, credential_marker: &str) {
    assert!(
        !seen.client_cmdlines.is_empty(),
        "the watcher saw no client process, so it proves nothing"
    );
    assert!(seen.leaks.is_empty(), "secrets visible: {:#?}", seen.leaks);
    let with_marker = seen
        .client_cmdlines
        .iter()
        .zip(&seen.client_environs)
        .filter(|(argv, env)| argv.contains(credential_marker) || env.contains(credential_marker))
        .count();
    assert!(
        with_marker > 0,
        "no client got its credentials through {credential_marker}: {:#?}",
        seen.client_cmdlines
    );
}

/// Makes databases and logins the way another owner would: directly, without apsctl's marker.
pub(crate) trait Stranger {
    /// Creates database `name` (for `SQLite`: its folder with a database file).
    fn create_database(&self, name: &str);
    /// Creates login `login` with a password of its own (never called for `SQLite`).
    fn create_login(&self, login: &str);
}

/// Whether the server has logins at all (`SQLite` has none).
fn has_logins(server: &dyn DatabaseServer) -> bool {
    server.name_limits().expect("name_limits").login.is_some()
}

/// Issue 7 (item B9): a database or login someone else made under the name apsctl wants makes
/// the creation fail, reads as `Foreign` (so no undo drops it), and the creation leaves
/// nothing of its own. `first` and `second` have distinct names.
pub(crate) fn foreign_names_are_refused_and_never_ours(
    server: &dyn DatabaseServer,
    stranger: &dyn Stranger,
    first: &DbSpec,
    second: &DbSpec,
) {
    let mut cleanup = Cleanup::new(server);
    for spec in [first, second] {
        cleanup.database(&spec.name);
        cleanup.login(&spec.login);
    }
    let logins = has_logins(server);
    let absent = Ownership {
        database: Owner::Absent,
        login: Owner::Absent,
    };
    assert_eq!(server.ownership(first).expect("ownership"), absent);

    stranger.create_database(&first.name);
    let err = server
        .create_database(first)
        .expect_err("create_database over a stranger's database");
    assert!(
        matches!(err, DbError::DatabaseExists { ref name, .. } if *name == first.name),
        "{err}"
    );
    assert_eq!(
        server.ownership(first).expect("ownership"),
        Ownership {
            database: Owner::Foreign,
            login: Owner::Absent
        },
        "the stranger's database is foreign and no login was made"
    );
    assert!(
        server
            .database_exists(&first.name)
            .expect("database_exists")
    );

    if logins {
        stranger.create_login(&second.login);
        let err = server
            .create_database(second)
            .expect_err("create_database over a stranger's login");
        assert!(
            matches!(err, DbError::LoginExists { ref login, .. } if *login == second.login),
            "{err}"
        );
        assert_eq!(
            server.ownership(second).expect("ownership"),
            Ownership {
                database: Owner::Absent,
                login: Owner::Foreign
            },
            "the stranger's login is foreign and no database was made"
        );
        assert!(server.login_exists(&second.login).expect("login_exists"));
    }
}

/// Issue 7: after a normal creation `ownership` proves both resources ours (`expected`); the same
/// names under another marker and password are foreign; after the drop both are absent.
pub(crate) fn creation_leaves_proofs(
    server: &dyn DatabaseServer,
    spec: &DbSpec,
    expected: Ownership,
) {
    let mut cleanup = Cleanup::new(server);
    cleanup.database(&spec.name);
    cleanup.login(&spec.login);
    assert!(expected.database.is_ours(), "{expected:?}");
    server.create_database(spec).expect("create_database");
    assert_eq!(server.ownership(spec).expect("ownership"), expected);

    let logins = has_logins(server);
    let other = DbSpec {
        password: if logins {
            aps_host::names::generate_password()
        } else {
            Secret::default()
        },
        marker: marker(),
        ..spec.clone()
    };
    assert_eq!(
        server.ownership(&other).expect("ownership"),
        Ownership {
            database: Owner::Foreign,
            login: if logins {
                Owner::Foreign
            } else {
                Owner::Absent
            },
        },
        "another creation's proof does not match"
    );

    assert!(server.drop_database(&spec.name).expect("drop_database"));
    server.drop_login(&spec.login).expect("drop_login");
    assert_eq!(
        server.ownership(spec).expect("ownership"),
        Ownership {
            database: Owner::Absent,
            login: Owner::Absent
        }
    );
}
