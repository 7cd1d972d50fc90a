//! The world of one lifecycle test: a controller home, a site with its own system user and
//! document root, the MariaDB test server, and a log of every apsctl output for the secrets check.
//!
//! Main decision: every test gets a fixed user `apsctl-life-N` and database names starting with
//! `gblN_` (variants of the guestbook rename `db:default-name`), so tests can run in parallel and
//! compare the server's state before and after an operation without seeing each other. Other test
//! areas that use this fixture ([`World::in_area`]) get their own user and database name stems.
//! Whatever a test creates is dropped when its `World` is dropped, also when the test fails.
#![expect(
    clippy::unwrap_used,
    reason = "test fixture: a failed setup or inspection step is a failed test"
)]
use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use aps_test_support::PackageBuilder;
use serde_json::Value;

/// Where `.ci/services.sh` writes the test servers' settings.
const CI_ENV: &str = "/var/lib/apsctl-ci/env";
/// The example package under test.
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/guestbook");

/// useradd/userdel lock /etc/passwd; tests of this binary take turns.
static ACCOUNTS: Mutex<()> = Mutex::new(());

/// The output of one command.
#[derive(Debug)]
pub struct Run {
    /// What the command was (for assertion messages).
    pub what: String,
    /// Exit status; `None` when killed by a signal.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Asserts exit status 0 and returns itself.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code,
            Some(0),
            "`{}` failed\nstdout:\n{}\nstderr:\n{}",
            self.what,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts exit status `code` and returns itself.
    #[track_caller]
    pub fn fails_with(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "`{}` should exit with {code}\nstdout:\n{}\nstderr:\n{}",
            self.what,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Stdout parsed as the one JSON document `--json` promises.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`{}` printed no JSON ({e}):\n{}\nstderr:\n{}",
                self.what, self.stdout, self.stderr
            )
        })
    }
}

/// The MariaDB test server, used as its administrator through the `mariadb` client.
#[derive(Debug)]
pub struct Mysql {
    /// Host apsctl and the sites reach it on.
    pub host: String,
    /// Its port.
    pub port: String,
    /// The administrator login.
    pub user: String,
    /// The file holding the administrator password (given to `db-server add`).
    pub password_file: PathBuf,
    /// The administrator password (a secret the outputs must never show).
    pub password: String,
    /// A 0600 client option file with the admin login (never on a command line).
    option_file: PathBuf,
}

impl Mysql {
    fn from_ci_env(dir: &Path) -> Self {
        let text = fs_err::read_to_string(CI_ENV).unwrap_or_else(|e| {
            panic!("the MariaDB test server is not set up ({e}); run `bash .ci/services.sh` first")
        });
        let get = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .map_or_else(
                    || panic!("{CI_ENV} has no {key}; run `bash .ci/services.sh`"),
                    |v| v.trim().trim_matches('"').to_owned(),
                )
        };
        let password_file = PathBuf::from(get("APSCTL_TEST_MYSQL_PASSWORD_FILE"));
        let password = fs_err::read_to_string(&password_file)
            .expect("MariaDB admin password file")
            .trim_end_matches(['\r', '\n'])
            .to_owned();
        let mysql = Self {
            host: get("APSCTL_TEST_MYSQL_HOST"),
            port: get("APSCTL_TEST_MYSQL_PORT"),
            user: get("APSCTL_TEST_MYSQL_USER"),
            password_file,
            password,
            option_file: dir.join("admin.cnf"),
        };
        fs_err::write(
            &mysql.option_file,
            format!(
                "[client]\nuser={}\npassword={}\nhost={}\nport={}\n",
                mysql.user, mysql.password, mysql.host, mysql.port
            ),
        )
        .unwrap();
        fs_err::set_permissions(&mysql.option_file, std::fs::Permissions::from_mode(0o600))
            .unwrap();
        if let Err(e) = mysql.try_query("SELECT 1") {
            panic!(
                "the MariaDB test server at {}:{} does not answer: {e}; run `bash .ci/services.sh`",
                mysql.host, mysql.port
            );
        }
        mysql
    }

    fn try_query(&self, sql: &str) -> Result<Vec<String>, String> {
        let out = assert_cmd::Command::new("mariadb")
            .arg(format!(
                "--defaults-extra-file={}",
                self.option_file.display()
            ))
            .args(["--batch", "--skip-column-names", "-e", sql])
            .output()
            .map_err(|e| format!("cannot run the `mariadb` client: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect())
    }

    /// Runs SQL as the administrator; one string per result row (tab-separated columns).
    #[track_caller]
    pub fn query(&self, sql: &str) -> Vec<String> {
        self.try_query(sql)
            .unwrap_or_else(|e| panic!("MariaDB refused `{sql}`: {e}"))
    }

    /// Database names.
    pub fn databases(&self) -> BTreeSet<String> {
        self.query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")
            .into_iter()
            .collect()
    }

    /// Logins as `user@host`.
    pub fn logins(&self) -> BTreeSet<String> {
        self.query("SELECT CONCAT(User, '@', Host) FROM mysql.user")
            .into_iter()
            .collect()
    }

    /// Whether a login of this name exists (for any host).
    pub fn login_exists(&self, login: &str) -> bool {
        self.logins()
            .iter()
            .any(|l| l.rsplit_once('@').is_some_and(|(u, _)| u == login))
    }

    /// Drops a database and every login of that name (idempotent; for cleanup).
    fn drop_all(&self, databases: &[String], logins: &[String]) {
        for db in databases {
            let _ = self.try_query(&format!("DROP DATABASE IF EXISTS `{db}`"));
        }
        let logins: BTreeSet<&String> = logins.iter().collect();
        for entry in self.logins() {
            if let Some((user, host)) = entry.rsplit_once('@') {
                if logins.iter().any(|l| l.as_str() == user) {
                    let _ = self.try_query(&format!("DROP USER IF EXISTS '{user}'@'{host}'"));
                }
            }
        }
    }
}

/// A package variant built from the example's files.
#[derive(Debug, Default, Clone, Copy)]
pub struct Variant<'a> {
    /// `<release>` (distinct releases can live in one repository).
    pub release: &'a str,
    /// A PHP wrapper replacing `scripts/configure`; the original is kept as
    /// `scripts/configure.real`, which the wrapper may `require` to do the real work.
    pub wrapper: Option<&'a str>,
    /// Textual replacements in APP-META.xml.
    pub meta_edits: &'a [(&'a str, &'a str)],
}

/// What a test compares before and after an operation that must leave no trace.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Every path below the document root (the root itself as an empty path) with mode and owner.
    pub docroot: Vec<(String, u32, u32)>,
    /// This test's databases on the server.
    pub databases: BTreeSet<String>,
    /// This test's logins on the server.
    pub logins: BTreeSet<String>,
    /// `instance list --json`.
    pub instances: Value,
    /// `package list --json`.
    pub packages: Value,
    /// The private instance folders in the home.
    pub private: BTreeSet<String>,
}

/// One test's world; see the module documentation.
#[derive(Debug)]
pub struct World {
    /// The site's system user (`apsctl-<area>-N`).
    pub user: String,
    /// The site's name.
    pub site: String,
    /// Start of this test's database and login names (`gblN` in the lifecycle area).
    pub db_base: String,
    /// The test's folder (home, docroot, packages).
    pub dir: PathBuf,
    /// The controller home.
    pub home: PathBuf,
    /// The site's document root.
    pub docroot: PathBuf,
    /// The database server.
    pub mysql: Mysql,
    /// The application administrator password this test installs with.
    pub admin_password: String,
    _tmp: tempfile::TempDir,
    /// Every output of every apsctl run, for [`World::finish`].
    log: Mutex<Vec<(String, String)>>,
    /// Values that must never appear in an output or in the journal.
    secrets: Mutex<Vec<String>>,
    /// Databases and logins with names outside `db_base` (the stock example) to drop at the end.
    extra: Mutex<Vec<String>>,
    /// Whether apsctl gets `--home home` (relative) instead of the absolute path.
    relative_home: Mutex<bool>,
}

impl World {
    /// Sets up test number `n` of the lifecycle area: user, document root, home, the site and the
    /// database server.
    pub fn new(n: u32) -> Self {
        Self::in_area("life", "gbl", n)
    }

    /// Sets up test number `n` of test area `area`: user `apsctl-<area>-N`, site `<area>-N`,
    /// database and login names starting with `<db_stem>N_`.
    pub fn in_area(area: &str, db_stem: &str, n: u32) -> Self {
        let tmp = tempfile::Builder::new()
            .prefix(&format!("apsctl-{area}-{n}-"))
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        // The site user traverses to its document root and to its instance's private scripts.
        fs_err::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mysql = Mysql::from_ci_env(&dir);
        let user = format!("apsctl-{area}-{n}");
        let db_base = format!("{db_stem}{n}");
        let world = Self {
            site: format!("{area}-{n}"),
            home: dir.join("home"),
            docroot: dir.join("www"),
            admin_password: format!("Adm1n-Pa55-{n}-qzx"),
            user,
            db_base,
            dir,
            mysql,
            _tmp: tmp,
            log: Mutex::new(Vec::new()),
            secrets: Mutex::new(Vec::new()),
            extra: Mutex::new(Vec::new()),
            relative_home: Mutex::new(false),
        };
        world.add_secret(&world.admin_password.clone());
        world.add_secret(&world.mysql.password.clone());
        // Leftovers of an earlier, interrupted run of the same test.
        world.drop_own_databases();
        delete_user(&world.user);
        create_user(&world.user);
        fs_err::create_dir(&world.docroot).unwrap();
        Self::run_tool(
            "chown",
            &[
                &format!("{}:", world.user),
                &world.docroot.display().to_string(),
            ],
        );
        world
            .apsctl(&[
                "site",
                "add",
                &world.site,
                "--docroot",
                &world.docroot.display().to_string(),
                "--url",
                &format!("http://{}.test:8080/", world.site),
                "--user",
                &world.user,
            ])
            .ok();
        world
            .apsctl(&[
                "db-server",
                "add",
                "my",
                "--type",
                "mysql",
                "--host",
                &world.mysql.host,
                "--port",
                &world.mysql.port,
                "--admin-user",
                &world.mysql.user,
                "--admin-password-file",
                &world.mysql.password_file.display().to_string(),
            ])
            .ok();
        world
    }

    /// Remembers a value that must never be printed or journaled.
    pub fn add_secret(&self, secret: &str) {
        assert!(
            secret.len() >= 8,
            "a secret to look for must be distinctive"
        );
        self.secrets.lock().unwrap().push(secret.to_owned());
    }

    /// Runs apsctl with this world's home.
    pub fn apsctl(&self, args: &[&str]) -> Run {
        self.apsctl_env(args, &[])
    }

    /// Runs apsctl with this world's home and extra environment variables, in the test's folder.
    pub fn apsctl_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = assert_cmd::Command::cargo_bin("apsctl").unwrap();
        cmd.arg("--home").arg(self.home_arg()).args(args);
        for var in [
            "APSCTL_HOME",
            "APSCTL_SCRIPT_TIMEOUT",
            "APSCTL_MAX_PACKAGE_SIZE",
            "APSCTL_TEST_FAIL_AFTER",
            "APSCTL_TEST_CRASH_AFTER",
            "NO_COLOR",
        ] {
            cmd.env_remove(var);
        }
        // An aborted apsctl (APSCTL_TEST_CRASH_AFTER) leaves any core file here, not in the crate.
        cmd.current_dir(&self.dir)
            .envs(env.iter().copied())
            .write_stdin(Vec::new())
            .timeout(Duration::from_secs(120));
        let out = cmd.output().expect("apsctl runs");
        let run = Run {
            what: format!("apsctl {}", args.join(" ")),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        self.log_output(&run.what, &run.stdout, &run.stderr);
        run
    }

    /// From now on pass `--home home`, relative to the test's folder (the working directory).
    pub fn use_relative_home(&self) {
        *self.relative_home.lock().unwrap() = true;
    }

    fn home_arg(&self) -> PathBuf {
        if *self.relative_home.lock().unwrap() {
            PathBuf::from("home")
        } else {
            self.home.clone()
        }
    }

    /// The background `std::process::Command` for apsctl with this world's home.
    pub fn apsctl_background(&self, args: &[&str]) -> std::process::Command {
        use assert_cmd::cargo::CommandCargoExt as _;
        let mut cmd = std::process::Command::cargo_bin("apsctl").unwrap();
        cmd.arg("--home").arg(self.home_arg()).args(args);
        cmd.current_dir(&self.dir);
        for var in [
            "APSCTL_HOME",
            "APSCTL_TEST_FAIL_AFTER",
            "APSCTL_TEST_CRASH_AFTER",
        ] {
            cmd.env_remove(var);
        }
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd
    }

    /// Adds the output of a run made outside [`World::apsctl`] to the secrets log.
    pub fn log_output(&self, what: &str, stdout: &str, stderr: &str) {
        // The command line is input (it may carry a password); only the outputs are checked.
        self.log
            .lock()
            .unwrap()
            .push((what.to_owned(), format!("{stdout}\n{stderr}")));
    }

    /// Runs a helper program as root; panics on failure.
    #[track_caller]
    pub fn run_tool(program: &str, args: &[&str]) -> String {
        let out = assert_cmd::Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run `{program}`: {e}"));
        assert!(
            out.status.success(),
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `php ARGS…` as the site's user in `cwd` (how the site's PHP sees the instance).
    pub fn php_as_site_user(&self, cwd: &Path, args: &[&str]) -> Run {
        let out = assert_cmd::Command::new("runuser")
            .args(["-u", &self.user, "--", "php"])
            .args(args)
            .current_dir(cwd)
            .timeout(Duration::from_secs(60))
            .output()
            .expect("runuser runs");
        Run {
            what: format!("php {} (as {})", args.join(" "), self.user),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The stock example, built with `apsctl package build`.
    pub fn example_package(&self) -> PathBuf {
        let out = self.dir.join("guestbook.app.zip");
        self.apsctl(&[
            "package",
            "build",
            EXAMPLE,
            "-o",
            &out.display().to_string(),
        ])
        .ok();
        out
    }

    /// A variant of the example whose databases are named after this test (`gblN_…`).
    pub fn variant_package(&self, variant: &Variant<'_>) -> PathBuf {
        self.package_from(Path::new(EXAMPLE), "guestbook", variant)
    }

    /// A variant of the example package in folder `example` (whose `db:default-name` is
    /// `default_name`), its databases named after this test.
    pub fn package_from(
        &self,
        example: &Path,
        default_name: &str,
        variant: &Variant<'_>,
    ) -> PathBuf {
        let release = if variant.release.is_empty() {
            "1"
        } else {
            variant.release
        };
        let mut meta = fs_err::read_to_string(example.join("APP-META.xml")).unwrap();
        meta = meta
            .replace(
                &format!("<db:default-name>{default_name}</db:default-name>"),
                &format!("<db:default-name>{}</db:default-name>", self.db_base),
            )
            .replace(
                "<release>1</release>",
                &format!("<release>{release}</release>"),
            );
        for (from, to) in variant.meta_edits {
            assert!(meta.contains(from), "APP-META.xml has no `{from}`");
            meta = meta.replace(from, to);
        }
        let mut builder = PackageBuilder::new().app_meta(meta);
        let mut files = Vec::new();
        collect_files(example, Path::new(""), &mut files);
        for rel in files {
            let rel_text = rel.to_string_lossy().into_owned();
            if rel_text == "APP-META.xml" || rel_text == "APP-LIST.xml" {
                continue;
            }
            let content = fs_err::read(example.join(&rel)).unwrap();
            if rel_text == "scripts/configure" {
                if let Some(wrapper) = variant.wrapper {
                    builder = builder
                        .file("scripts/configure", wrapper)
                        .file("scripts/configure.real", content);
                    continue;
                }
            }
            builder = builder.file(&rel_text, content);
        }
        builder
            .write(
                &self
                    .dir
                    .join(format!("{default_name}-variant-{release}.app.zip")),
            )
            .unwrap()
    }

    /// Imports a package; returns its reference.
    pub fn import(&self, zip: &Path) -> String {
        let run = self.apsctl(&["--json", "package", "import", &zip.display().to_string()]);
        run.ok();
        run.json()["package"]
            .as_str()
            .expect("import prints the reference")
            .to_owned()
    }

    /// The settings every install of the guestbook gets (plus `extra`).
    pub fn install_args<'a>(&'a self, reference: &'a str, extra: &[&'a str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "--json",
            "install",
            reference,
            "--site",
            &self.site,
            "--set",
            "admin_email=owner@example.com",
            "--accept-license",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.push("--set".into());
        args.push(format!("admin_password={}", self.admin_password));
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    }

    /// Installs `reference` with the usual settings; returns the instance id. Remembers the
    /// generated database password (as the application received it) as a secret.
    pub fn install(&self, reference: &str, extra: &[&str]) -> String {
        let args = self.install_args(reference, extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = self.apsctl(&args);
        run.ok();
        let id = run.json()["instance"]
            .as_str()
            .expect("install prints the instance id")
            .to_owned();
        self.adopt(&id);
        id
    }

    /// Takes instance `id`, installed outside [`World::install`], into this world: the names of
    /// its databases on a server are dropped at the end, and its generated database password (as
    /// its `config.php` holds it: the guestbook's `db.password`, or a top-level `password`) is a
    /// secret.
    pub fn adopt(&self, id: &str) {
        let show = self.show(id);
        for db in show["databases"].as_array().expect("databases") {
            for key in ["name", "login"] {
                let name = db[key]
                    .as_str()
                    .expect("database name and login")
                    .to_owned();
                // An SQLite database has no login, and a file path for its name.
                if !name.is_empty()
                    && !name.starts_with('/')
                    && !name.starts_with(&format!("{}_", self.db_base))
                {
                    self.extra.lock().unwrap().push(name);
                }
            }
        }
        let root = PathBuf::from(show["root"].as_str().expect("root"));
        let password = Self::run_tool(
            "php",
            &[
                "-r",
                "$c = require $argv[1]; echo $c['db']['password'] ?? $c['password'] ?? '';",
                &root.join("config.php").display().to_string(),
            ],
        );
        if !password.is_empty() {
            self.add_secret(&password);
        }
    }

    /// `instance show ID --json`.
    pub fn show(&self, id: &str) -> Value {
        let run = self.apsctl(&["--json", "instance", "show", id]);
        run.ok();
        run.json()
    }

    /// Runs read-only SQL on the store with the `sqlite3` CLI; one string per row (`|`-separated).
    pub fn sql(&self, sql: &str) -> Vec<String> {
        let store = self.home.join("store.sqlite3");
        Self::run_tool("sqlite3", &["-readonly", &store.display().to_string(), sql])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The instance's root folder on the site.
    pub fn root(&self, id: &str) -> PathBuf {
        PathBuf::from(
            self.show(id)["root"]
                .as_str()
                .expect("show prints the root"),
        )
    }

    /// What must be unchanged by an operation that failed or was rolled back.
    pub fn snapshot(&self) -> Snapshot {
        let mut docroot = Vec::new();
        let meta = fs_err::symlink_metadata(&self.docroot).unwrap();
        docroot.push((String::new(), meta.mode(), meta.uid()));
        walk(&self.docroot, Path::new(""), &mut docroot);
        let own = format!("{}_", self.db_base);
        let mine = |s: &String| {
            s.starts_with(&own) || self.extra.lock().unwrap().iter().any(|e| s.starts_with(e))
        };
        let instances_dir = self.home.join("instances");
        let private = fs_err::read_dir(&instances_dir)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let list = |args: &[&str]| {
            let run = self.apsctl(args);
            run.ok();
            run.json()
        };
        Snapshot {
            docroot,
            databases: self.mysql.databases().into_iter().filter(mine).collect(),
            logins: self.mysql.logins().into_iter().filter(mine).collect(),
            instances: list(&["--json", "instance", "list"]),
            packages: list(&["--json", "package", "list"]),
            private,
        }
    }

    /// Asserts that no secret appeared in any output or in the journal, then cleans up.
    pub fn finish(self) {
        let secrets = self.secrets.lock().unwrap().clone();
        let log = self.log.lock().unwrap().clone();
        assert!(!log.is_empty());
        for secret in &secrets {
            for (what, output) in &log {
                assert!(
                    !output.contains(secret.as_str()),
                    "a secret appeared in the output of `{what}`"
                );
            }
        }
        let journal = self.sql(
            "SELECT params_json || ' ' || coalesce(error, '') FROM operations \
             UNION ALL SELECT undo_json FROM operation_steps",
        );
        for secret in &secrets {
            for row in &journal {
                assert!(
                    !row.contains(secret.as_str()),
                    "a secret appeared in the journal: {}",
                    row.replace(secret.as_str(), "<SECRET>")
                );
            }
        }
    }

    fn drop_own_databases(&self) {
        let own = format!("{}_", self.db_base);
        let extra = self.extra.lock().unwrap().clone();
        let mine = |s: &String| s.starts_with(&own) || extra.contains(s);
        let dbs: Vec<String> = self
            .mysql
            .databases()
            .into_iter()
            .filter(|d| mine(d))
            .collect();
        let logins: Vec<String> = self
            .mysql
            .logins()
            .into_iter()
            .filter_map(|l| l.rsplit_once('@').map(|(u, _)| u.to_owned()))
            .filter(|u| mine(u))
            .collect();
        self.mysql.drop_all(&dbs, &logins);
    }
}

impl Drop for World {
    fn drop(&mut self) {
        kill_processes_of(&self.user);
        self.drop_own_databases();
        delete_user(&self.user);
    }
}

fn collect_files(base: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs_err::read_dir(base.join(rel))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    entries.sort_by_key(fs_err::DirEntry::file_name);
    for e in entries {
        let child = rel.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            collect_files(base, &child, out);
        } else {
            out.push(child);
        }
    }
}

fn walk(base: &Path, rel: &Path, out: &mut Vec<(String, u32, u32)>) {
    let mut entries: Vec<_> = fs_err::read_dir(base.join(rel))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    entries.sort_by_key(fs_err::DirEntry::file_name);
    for e in entries {
        let child = rel.join(e.file_name());
        let meta = fs_err::symlink_metadata(e.path()).unwrap();
        out.push((child.display().to_string(), meta.mode(), meta.uid()));
        if meta.is_dir() {
            walk(base, &child, out);
        }
    }
}

fn user_exists(user: &str) -> bool {
    assert_cmd::Command::new("id")
        .arg("-u")
        .arg(user)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn account_tool(program: &str, args: &[&str]) -> Result<(), String> {
    let _turn = ACCOUNTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut last = String::new();
    // Another test binary may hold the passwd lock for a moment.
    for _ in 0..20 {
        let out = assert_cmd::Command::new(program)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run `{program}`: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        last = String::from_utf8_lossy(&out.stderr).into_owned();
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(last)
}

fn create_user(user: &str) {
    account_tool(
        "useradd",
        // A login account (uid in the login range): `site add` refuses system accounts.
        &["--create-home", "--shell", "/usr/sbin/nologin", user],
    )
    .unwrap_or_else(|e| panic!("cannot create the site user `{user}`: {e}"));
}

/// Deletes a system user and its home (as an account termination does), ending its processes
/// first; its files elsewhere stay, owned by a uid nobody has.
pub fn delete_user(user: &str) {
    if user_exists(user) {
        kill_processes_of(user);
        let _ = account_tool("userdel", &["--remove", user]);
    }
}

/// Pids of the processes a user runs (only this test's site user has any).
pub fn processes_of(user: &str) -> Vec<String> {
    assert_cmd::Command::new("pgrep")
        .args(["-u", user])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Ends processes left by this test's scripts, each by its pid.
fn kill_processes_of(user: &str) {
    for pid in processes_of(user) {
        let _ = assert_cmd::Command::new("kill")
            .args(["-KILL", &pid])
            .output();
    }
}
