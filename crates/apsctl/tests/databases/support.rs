//! Helpers of the database tests: the real servers of `.ci/services.sh` seen as their
//! administrator (to check what apsctl did), a fixture with its own home, site user, document
//! root and database name base, and package variants built from `examples/notes`.
//!
//! Admin credentials reach the test's own clients through files (a `MySQL` option file and a
//! libpq password file), never argv or environment values, so secret watchers of other test
//! binaries running at the same time see nothing.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aps_host::env::Env;
use assert_cmd::Command;
use rand::Rng as _;
use serde_json::Value;
use tempfile::TempDir;

/// Where `.ci/services.sh` describes the servers.
const CI_ENV_FILE: &str = "/var/lib/apsctl-ci/env";

/// The result byte string of the blob the notes example writes, as its front page prints it.
pub const BLOB_HEX: &str = "00ff41505301";

/// The first note of the notes example (its `first_note` default).
pub const FIRST_NOTE: &str = "Grüße, 世界 — ünïcødé ✓";

/// A database server type as apsctl names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Mysql,
    Postgresql,
    Sqlite,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Mysql, Kind::Postgresql, Kind::Sqlite];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Mysql => "mysql",
            Kind::Postgresql => "postgresql",
            Kind::Sqlite => "sqlite",
        }
    }

    /// The name the fixtures register this server under.
    pub fn server_name(self) -> &'static str {
        match self {
            Kind::Mysql => "my",
            Kind::Postgresql => "pg",
            Kind::Sqlite => "lite",
        }
    }
}

/// How to reach one real server as its administrator.
#[derive(Debug)]
pub struct Admin {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// The password file `apsctl db-server add` reads.
    pub password_file: PathBuf,
    password: String,
}

impl Admin {
    /// A credentials file for one client run (`MySQL` option file or libpq password file),
    /// mode 0600, deleted when dropped.
    fn client_file(&self, kind: Kind) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        let content = match kind {
            Kind::Mysql => format!("[client]\npassword=\"{}\"\n", self.password),
            _ => format!(
                "{}:{}:*:{}:{}\n",
                self.host, self.port, self.user, self.password
            ),
        };
        std::io::Write::write_all(&mut file, content.as_bytes()).unwrap();
        file
    }
}

/// Both real servers.
#[derive(Debug)]
pub struct Servers {
    pub mysql: Admin,
    pub pg: Admin,
}

/// The servers from the `APSCTL_TEST_*` variables, else from the CI env file; panics with a
/// clear message when they are not configured or do not answer.
pub fn servers() -> &'static Servers {
    static SERVERS: OnceLock<Servers> = OnceLock::new();
    SERVERS.get_or_init(|| {
        let env = Env::from_process();
        let file = fs_err::read_to_string(CI_ENV_FILE).unwrap_or_default();
        let get = |key: &str| -> String {
            if let Some(v) = env.var(key) {
                return v.to_owned();
            }
            file.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map_or_else(
                    || {
                        panic!(
                            "the database tests need the real MariaDB and PostgreSQL servers: {key} \
                             is neither set nor in {CI_ENV_FILE}; run `bash .ci/services.sh` as root"
                        )
                    },
                    |v| v.trim().to_owned(),
                )
        };
        let admin = |prefix: &str| {
            let password_file = PathBuf::from(get(&format!("APSCTL_TEST_{prefix}_PASSWORD_FILE")));
            let password = fs_err::read_to_string(&password_file)
                .unwrap_or_else(|e| {
                    panic!("{prefix} admin password unreadable ({e}); rerun .ci/services.sh")
                })
                .trim()
                .to_owned();
            let host = get(&format!("APSCTL_TEST_{prefix}_HOST"));
            let port: u16 = get(&format!("APSCTL_TEST_{prefix}_PORT")).parse().unwrap();
            let user = get(&format!("APSCTL_TEST_{prefix}_USER"));
            Admin {
                host,
                port,
                user,
                password_file,
                password,
            }
        };
        let servers = Servers {
            mysql: admin("MYSQL"),
            pg: admin("PG"),
        };
        for kind in [Kind::Mysql, Kind::Postgresql] {
            let out = servers.query_raw(kind, "SELECT 1");
            assert!(
                out.is_ok(),
                "the {} test server does not answer ({}); run `bash .ci/services.sh` as root",
                kind.as_str(),
                out.unwrap_err()
            );
        }
        servers
    })
}

impl Servers {
    pub fn admin(&self, kind: Kind) -> &Admin {
        match kind {
            Kind::Mysql => &self.mysql,
            Kind::Postgresql => &self.pg,
            Kind::Sqlite => panic!("SQLite has no server"),
        }
    }

    fn query_raw(&self, kind: Kind, sql: &str) -> Result<Vec<String>, String> {
        self.query_in(kind, "postgres", sql)
    }

    /// Runs SQL as the administrator (for `PostgreSQL` connected to database `db`).
    fn query_in(&self, kind: Kind, db: &str, sql: &str) -> Result<Vec<String>, String> {
        let admin = match kind {
            Kind::Mysql => &self.mysql,
            Kind::Postgresql => &self.pg,
            Kind::Sqlite => return Err("SQLite has no server".into()),
        };
        let creds = admin.client_file(kind);
        let mut cmd = match kind {
            Kind::Mysql => {
                let a = &self.mysql;
                let mut c = Command::new("mariadb");
                c.arg(format!("--defaults-extra-file={}", creds.path().display()))
                    .args(["--protocol=tcp", "-N", "-B", "-h", &a.host])
                    .arg(format!("--port={}", a.port))
                    .arg(format!("--user={}", a.user));
                c
            }
            Kind::Postgresql => {
                let a = &self.pg;
                let mut c = Command::new("psql");
                c.env("PGPASSFILE", creds.path())
                    .args([
                        "-X",
                        "-A",
                        "-t",
                        "-q",
                        "-v",
                        "ON_ERROR_STOP=1",
                        "-h",
                        &a.host,
                    ])
                    .args(["-p", &a.port.to_string(), "-U", &a.user, "-d", db]);
                c
            }
            Kind::Sqlite => return Err("SQLite has no server".into()),
        };
        let out = cmd
            .current_dir("/")
            .write_stdin(format!("{sql};\n"))
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "{} failed: {}",
                kind.as_str(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .filter(|l| !l.is_empty())
            .collect())
    }

    /// Runs SQL as the administrator; the output rows (tab-separated for `MySQL`, `|` for psql).
    pub fn query(&self, kind: Kind, sql: &str) -> Vec<String> {
        self.query_raw(kind, sql)
            .unwrap_or_else(|e| panic!("{e}\nSQL: {sql}"))
    }

    /// Every database on the server.
    pub fn databases(&self, kind: Kind) -> BTreeSet<String> {
        let sql = match kind {
            Kind::Mysql => "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA",
            _ => "SELECT datname FROM pg_catalog.pg_database",
        };
        self.query(kind, sql).into_iter().collect()
    }

    /// Every login on the server (`MySQL`: user names without host parts).
    pub fn logins(&self, kind: Kind) -> BTreeSet<String> {
        let sql = match kind {
            Kind::Mysql => "SELECT DISTINCT User FROM mysql.user",
            _ => "SELECT rolname FROM pg_catalog.pg_roles",
        };
        self.query(kind, sql).into_iter().collect()
    }

    pub fn database_exists(&self, kind: Kind, name: &str) -> bool {
        self.databases(kind).contains(name)
    }

    pub fn login_exists(&self, kind: Kind, login: &str) -> bool {
        self.logins(kind).contains(login)
    }

    /// Creates a database as the administrator (names here are plain `[a-z0-9_]`).
    pub fn create_database(&self, kind: Kind, name: &str) {
        assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        match kind {
            Kind::Mysql => self.query(kind, &format!("CREATE DATABASE `{name}`")),
            _ => self.query(kind, &format!("CREATE DATABASE \"{name}\"")),
        };
    }

    /// The tables of database `name`.
    pub fn tables(&self, kind: Kind, name: &str) -> BTreeSet<String> {
        let sql = match kind {
            Kind::Mysql => format!(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{name}'"
            ),
            _ => {
                return self.pg_in(
                    name,
                    "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = 'public'",
                );
            }
        };
        self.query(kind, &sql).into_iter().collect()
    }

    /// Runs SQL as the administrator inside `PostgreSQL` database `db`.
    pub fn pg_in(&self, db: &str, sql: &str) -> BTreeSet<String> {
        self.query_in(Kind::Postgresql, db, sql)
            .unwrap_or_else(|e| panic!("{e}\nSQL: {sql}"))
            .into_iter()
            .collect()
    }

    /// Drops every database and login whose name starts with `base` (test cleanup).
    pub fn drop_everything_named(&self, base: &str) {
        for kind in [Kind::Mysql, Kind::Postgresql] {
            let Ok(dbs) = self.query_raw(kind, &list_sql(kind, "db")) else {
                continue;
            };
            for db in dbs.iter().filter(|d| d.starts_with(base)) {
                let sql = match kind {
                    Kind::Mysql => format!("DROP DATABASE IF EXISTS `{db}`"),
                    _ => format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"),
                };
                let _ = self.query_raw(kind, &sql);
            }
            let Ok(logins) = self.query_raw(kind, &list_sql(kind, "login")) else {
                continue;
            };
            for login in logins.iter().filter(|l| l.starts_with(base)) {
                let sql = match kind {
                    Kind::Mysql => {
                        let hosts = self
                            .query_raw(
                                kind,
                                &format!("SELECT Host FROM mysql.user WHERE User = '{login}'"),
                            )
                            .unwrap_or_default();
                        hosts
                            .iter()
                            .map(|h| format!("DROP USER IF EXISTS '{login}'@'{h}'"))
                            .collect::<Vec<_>>()
                            .join(";\n")
                    }
                    _ => format!("DROP ROLE IF EXISTS \"{login}\""),
                };
                if !sql.is_empty() {
                    let _ = self.query_raw(kind, &sql);
                }
            }
        }
    }
}

fn list_sql(kind: Kind, what: &str) -> String {
    match (kind, what) {
        (Kind::Mysql, "db") => "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA".into(),
        (Kind::Mysql, _) => "SELECT DISTINCT User FROM mysql.user".into(),
        (_, "db") => "SELECT datname FROM pg_catalog.pg_database".into(),
        (_, _) => "SELECT rolname FROM pg_catalog.pg_roles".into(),
    }
}

/// A short random lowercase token.
pub fn token() -> String {
    let n: u32 = rand::thread_rng().r#gen();
    format!("{n:08x}")
}

/// What one apsctl run printed.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// One test's world: its own apsctl home, site user, document root (site `s`) and database
/// name base; on drop it removes whatever databases and logins carry its base, and the user.
pub struct Fixture {
    pub tmp: TempDir,
    pub home: PathBuf,
    pub docroot: PathBuf,
    pub user: String,
    /// Unique `db:default-name` for this test's packages (lowercase, short).
    pub base: String,
    /// Users of further sites ([`Self::add_site`]), deleted on drop.
    extra_users: std::cell::RefCell<Vec<String>>,
}

impl Fixture {
    pub fn new() -> Self {
        assert!(
            Env::from_process().is_root(),
            "the database tests create system users and run PHP as them: run them as root"
        );
        let _ = servers();
        let tmp = tempfile::Builder::new()
            .prefix("apsctl-db-")
            .tempdir()
            .unwrap();
        fs_err::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let t = token();
        let user = format!("apsdb{t}");
        // A login account (uid in the login range): `site add` refuses system accounts.
        retry_ok(Command::new("useradd").args([
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            &user,
        ]));
        let home = tmp.path().join("home");
        let docroot = tmp.path().join("www");
        fs_err::create_dir_all(&docroot).unwrap();
        run_ok(Command::new("chown").arg(format!("{user}:")).arg(&docroot));
        let fx = Self {
            tmp,
            home,
            docroot,
            user,
            base: format!("nt{t}"),
            extra_users: std::cell::RefCell::default(),
        };
        let docroot = fx.docroot.display().to_string();
        fx.ok(&[
            "site",
            "add",
            "s",
            "--docroot",
            &docroot,
            "--url",
            "http://localhost:8080/",
            "--user",
            &fx.user,
        ]);
        fx
    }

    /// Registers another site `name` with its own new system user and document root.
    pub fn add_site(&self, name: &str) {
        let user = format!("apsdb{}", token());
        // A login account (uid in the login range): `site add` refuses system accounts.
        retry_ok(Command::new("useradd").args([
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            &user,
        ]));
        self.extra_users.borrow_mut().push(user.clone());
        let docroot = self.tmp.path().join(format!("www-{name}"));
        fs_err::create_dir_all(&docroot).unwrap();
        run_ok(Command::new("chown").arg(format!("{user}:")).arg(&docroot));
        let docroot = docroot.display().to_string();
        self.ok(&[
            "site",
            "add",
            name,
            "--docroot",
            &docroot,
            "--url",
            "http://localhost:8081/",
            "--user",
            &user,
        ]);
    }

    /// apsctl with this fixture's home.
    pub fn apsctl(&self) -> Command {
        let mut c = Command::cargo_bin("apsctl").unwrap();
        c.arg("--home").arg(&self.home).env("NO_COLOR", "1");
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.apsctl().args(args).output().unwrap();
        Run {
            ok: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs apsctl and insists on success.
    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert!(
            run.ok,
            "apsctl {args:?} failed ({:?}):\nstdout:\n{}\nstderr:\n{}",
            run.code, run.stdout, run.stderr
        );
        run
    }

    /// Registers the real server of `kind` as [`Kind::server_name`].
    pub fn add_server(&self, kind: Kind) {
        let name = kind.server_name();
        if kind == Kind::Sqlite {
            self.ok(&["db-server", "add", name, "--type", "sqlite"]);
            return;
        }
        let a = servers().admin(kind);
        let port = a.port.to_string();
        let file = a.password_file.display().to_string();
        self.ok(&[
            "db-server",
            "add",
            name,
            "--type",
            kind.as_str(),
            "--host",
            &a.host,
            "--port",
            &port,
            "--admin-user",
            &a.user,
            "--admin-password-file",
            &file,
        ]);
    }

    /// Copies the notes example with this fixture's database base (and `edit` applied to its
    /// APP-META.xml; a non-empty `variant` also changes the package id) and returns the folder.
    pub fn notes_source(&self, variant: &str, edit: impl Fn(String) -> String) -> PathBuf {
        let src = self.tmp.path().join(format!("src-{variant}"));
        copy_tree(&examples_notes(), &src);
        let meta_path = src.join("APP-META.xml");
        let meta = fs_err::read_to_string(&meta_path).unwrap();
        let meta = meta.replace(
            "<db:default-name>notes</db:default-name>",
            &format!("<db:default-name>{}</db:default-name>", self.base),
        );
        let meta = if variant.is_empty() {
            meta
        } else {
            meta.replace(
                "<id>https://apsctl.example/packages/notes</id>",
                &format!("<id>https://apsctl.example/packages/notes-{variant}</id>"),
            )
        };
        fs_err::write(&meta_path, edit(meta)).unwrap();
        src
    }

    /// Builds (with `apsctl package build`) and imports a [`Self::notes_source`] variant;
    /// returns the package reference.
    pub fn import_notes(&self, variant: &str, edit: impl Fn(String) -> String) -> String {
        let src = self.notes_source(variant, edit);
        let zip = self.tmp.path().join(format!("notes-{variant}.app.zip"));
        let src_s = src.display().to_string();
        let zip_s = zip.display().to_string();
        self.ok(&["package", "build", &src_s, "-o", &zip_s]);
        let run = self.ok(&["--json", "package", "import", &zip_s]);
        run.json()["package"].as_str().unwrap().to_owned()
    }

    /// Zips a package folder without `apsctl package build` (which refuses packages with lint
    /// errors), with a fresh APP-LIST.xml.
    pub fn zip_unchecked(&self, src: &Path, name: &str) -> PathBuf {
        let mut builder = aps_test_support::PackageBuilder::new();
        for rel in Self::tree(src) {
            let path = src.join(&rel);
            if path.is_file() {
                builder = builder.file(&rel, fs_err::read(&path).unwrap());
            }
        }
        builder.write(&self.tmp.path().join(name)).unwrap()
    }

    /// Installs and returns the new instance id and the run (stderr carries the progress).
    pub fn install(&self, reference: &str, extra: &[&str]) -> (String, Run) {
        let mut args = vec!["install", reference, "--site", "s"];
        args.extend_from_slice(extra);
        let run = self.ok(&args);
        let id = run
            .stdout
            .split_whitespace()
            .nth(1)
            .filter(|_| run.stdout.starts_with("instance "))
            .unwrap_or_else(|| panic!("unexpected install output: {}", run.stdout))
            .to_owned();
        (id, run)
    }

    pub fn show(&self, id: &str) -> Value {
        self.ok(&["instance", "show", id, "--json"]).json()
    }

    /// The single database of an instance's `instance show`.
    pub fn database(&self, id: &str, db_id: &str) -> Value {
        let shown = self.show(id);
        shown["databases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == db_id)
            .unwrap_or_else(|| panic!("instance {id} has no database `{db_id}`: {shown:#}"))
            .clone()
    }

    /// Runs the instance's front page with the PHP CLI as the site user.
    pub fn front_page(&self, id: &str) -> String {
        let root = PathBuf::from(self.show(id)["root"].as_str().unwrap());
        let out = Command::new("runuser")
            .args(["-u", &self.user, "--", "php", "index.php"])
            .current_dir(&root)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "index.php of instance {id} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    pub fn instance_count(&self) -> usize {
        self.ok(&["instance", "list", "--json"]).json()["instances"]
            .as_array()
            .unwrap()
            .len()
    }

    /// Every path below `dir` (relative), or empty when it does not exist.
    pub fn tree(dir: &Path) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(entries) = fs_err::read_dir(&d) else {
                continue;
            };
            for e in entries {
                let p = e.unwrap().path();
                out.insert(p.strip_prefix(dir).unwrap().display().to_string());
                if p.is_dir() && !p.is_symlink() {
                    stack.push(p);
                }
            }
        }
        out
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        servers().drop_everything_named(&self.base);
        let _ = retry(Command::new("userdel").arg(&self.user));
        for user in self.extra_users.borrow().iter() {
            let _ = retry(Command::new("userdel").arg(user));
        }
    }
}

/// Runs a user-database command, retrying while another test holds the `/etc/passwd` lock;
/// the error output of the last failure.
fn retry(cmd: &mut Command) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..100 {
        let out = cmd.output().map_err(|e| e.to_string())?;
        if out.status.success() {
            return Ok(());
        }
        last = String::from_utf8_lossy(&out.stderr).into_owned();
        if !last.contains("lock") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Err(format!("{cmd:?} failed: {last}"))
}

fn retry_ok(cmd: &mut Command) {
    if let Err(e) = retry(cmd) {
        panic!("{e}");
    }
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The example package folder.
pub fn examples_notes() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/notes")
}

fn copy_tree(from: &Path, to: &Path) {
    fs_err::create_dir_all(to).unwrap();
    for entry in fs_err::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs_err::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Replaces the whole `<requirements …>` element of the notes metadata with `xml`.
pub fn with_requirements(meta: &str, xml: &str) -> String {
    let start = meta.find("<requirements xmlns:php").unwrap();
    let end = meta.find("<provision>").unwrap();
    format!("{}{xml}\n    {}", &meta[..start], &meta[end..])
}
