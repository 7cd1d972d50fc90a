//! The world of one attack test: apsctl's home, real tenants with their own folders and sites,
//! packages built in code, and the real `apsctl` binary run as root.
//!
//! Main decision: test number N gets its own tenants `apsctl-atkNa`, `apsctl-atkNb`, … (login
//! accounts made by `aps_host::user::ensure_test_user`, deleted with their processes when the
//! world is dropped, also when the test fails) and its own temporary folder laid out like a
//! hosting server: `<dir>/home` is apsctl's home and `<dir>/<user>/domains/<site>.example/
//! public_html` a tenant's document root, every folder from `<dir>/<user>` down the tenant's own
//! (as `/home/u1/domains/…` is). `<dir>` itself is root's, so every site passes `site add`'s
//! rules. Every child process — apsctl, the tenant's commands — starts through
//! [`Env::command`], so nothing of the test runner's environment (fault points, `APSCTL_HOME`)
//! leaks in; a test adds what it means to.
//!
//! Known gap: the packages are small and built here (no PHP application); the attacks need only
//! a configuration script, in `sh` or `perl`.
#![expect(
    clippy::unwrap_used,
    reason = "test fixture: a failed setup or inspection step is a failed test"
)]
use std::collections::BTreeMap;
use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use aps_host::env::Env;
use aps_host::user::SystemUser;
use aps_test_support::PackageBuilder;

/// userdel locks `/etc/passwd`; the tests of this binary take turns.
static ACCOUNTS: Mutex<()> = Mutex::new(());

/// A child process through the project's one door to child processes.
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    Env::from_process().command(program)
}

/// What one command printed.
#[derive(Debug)]
pub struct Run {
    /// What was run (for assertion messages).
    pub what: String,
    /// Exit status; `None` when killed by a signal.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "command: {}\nexit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what, self.code, self.stdout, self.stderr
        )
    }
}

impl Run {
    fn from_output(what: String, out: &std::process::Output) -> Self {
        Self {
            what,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts exit status 0.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, Some(0), "the command failed\n{self}");
        self
    }

    /// Asserts that the command failed with a reason (`error: …`) and no panic.
    #[track_caller]
    pub fn refused(&self) -> &Self {
        assert!(
            self.code.is_some_and(|c| c != 0),
            "the command should have failed\n{self}"
        );
        assert!(
            self.stderr.contains("error: "),
            "no `error:` reason on stderr\n{self}"
        );
        assert!(!self.stderr.contains("panicked"), "{self}");
        self
    }

    /// Asserts that stderr names every one of `names` in backticks.
    #[track_caller]
    pub fn names(&self, names: &[&str]) -> &Self {
        for name in names {
            assert!(
                self.stderr.contains(&format!("`{name}`")),
                "stderr does not name `{name}`\n{self}"
            );
        }
        self
    }

    /// Stdout as the one JSON document of `--json`.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e})\n{self}"))
    }
}

/// A package built in code: `htdocs/index.html`, `htdocs/data/README.txt` and one configuration
/// script.
#[derive(Debug, Clone, Copy)]
pub struct Package<'a> {
    /// Application name (also the default prefix).
    pub name: &'a str,
    /// `script-language` of `scripts/configure` (`sh`, `perl`).
    pub language: &'a str,
    /// The text of `scripts/configure`.
    pub configure: &'a str,
    /// Whether the service needs a SQLite database (`db:id` `main`).
    pub sqlite: bool,
}

impl Package<'_> {
    pub fn meta_xml(&self) -> String {
        let Package { name, language, .. } = *self;
        let requirements = if self.sqlite {
            r#"<requirements xmlns:db="http://apstandard.com/ns/1/db">
      <db:db><db:id>main</db:id><db:server-type>sqlite</db:server-type></db:db>
    </requirements>"#
        } else {
            ""
        };
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<application xmlns="http://apstandard.com/ns/1" version="1.2">
  <id>http://example.invalid/aps/{name}</id>
  <name>{name}</name>
  <version>1.0</version>
  <release>1</release>
  <presentation>
    <summary>{name}: a package of the tenant-attack tests</summary>
    <categories><category>Test</category></categories>
  </presentation>
  <service id="main">
    <presentation><name>{name}</name></presentation>
    <settings>
      <setting id="title" type="string" default-value="Hello"><name>Title</name></setting>
    </settings>
    {requirements}
    <provision>
      <url-mapping>
        <default-prefix>{name}</default-prefix>
        <mapping url="/" path="htdocs"/>
      </url-mapping>
      <configuration-script name="configure">
        <script-language>{language}</script-language>
      </configuration-script>
    </provision>
  </service>
</application>
"#
        )
    }
}

/// One test's world; see the module documentation.
#[derive(Debug)]
pub struct World {
    n: u32,
    /// The test's folder (root's, mode 0755).
    pub dir: PathBuf,
    /// apsctl's home.
    pub home: PathBuf,
    /// The umask apsctl runs under (`None`: the test runner's).
    umask: Mutex<Option<String>>,
    tenants: Mutex<Vec<String>>,
    _tmp: tempfile::TempDir,
}

impl World {
    /// Test number `n`'s world, with no tenant yet.
    pub fn new(n: u32) -> Self {
        let tmp = tempfile::Builder::new()
            .prefix(&format!("apsctl-atk{n}-"))
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        // Tenants traverse it to their folders and to their instances' private scripts.
        fs_err::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self {
            n,
            home: dir.join("home"),
            dir,
            umask: Mutex::new(None),
            tenants: Mutex::new(Vec::new()),
            _tmp: tmp,
        }
    }

    /// The tenant `tag` (`a`, `b`) of this test, created on first use.
    pub fn tenant(&self, tag: &str) -> SystemUser {
        let name = format!("apsctl-atk{}{tag}", self.n);
        let user = aps_host::user::ensure_test_user(&Env::from_process(), &name)
            .unwrap_or_else(|e| panic!("cannot create the tenant `{name}`: {e}"));
        let mut tenants = self.tenants.lock().unwrap();
        if !tenants.contains(&name) {
            tenants.push(name);
        }
        user
    }

    /// Makes every later apsctl run start under `umask` (e.g. `000`).
    pub fn set_umask(&self, umask: &str) {
        *self.umask.lock().unwrap() = Some(umask.to_owned());
    }

    /// Creates `tenant`'s document root `<dir>/<user>/domains/<site>.example/public_html` (every
    /// folder from `<dir>/<user>` down the tenant's, mode 0755) and registers it as site `site`.
    pub fn site(&self, tenant: &SystemUser, site: &str) -> PathBuf {
        let path = self.site_folder(tenant, site);
        self.apsctl(&[
            "site",
            "add",
            site,
            "--docroot",
            &show(&path),
            "--url",
            &format!("http://{site}.example/"),
            "--user",
            tenant.name(),
        ])
        .ok();
        path
    }

    /// Creates `tenant`'s document root for `site` (see [`World::site`]) without registering it.
    pub fn site_folder(&self, tenant: &SystemUser, site: &str) -> PathBuf {
        let rel = format!("{}/domains/{site}.example/public_html", tenant.name());
        let mut path = self.dir.clone();
        for part in Path::new(&rel).components() {
            path.push(part);
            if !path.exists() {
                fs_err::create_dir(&path).unwrap();
                fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
                std::os::unix::fs::lchown(&path, Some(tenant.uid()), Some(tenant.gid())).unwrap();
            }
        }
        path
    }

    /// The `Command` running apsctl with this world's home (in the test's folder, where an
    /// aborted apsctl leaves any core file) and `NO_COLOR`.
    pub fn apsctl_command(&self, args: &[&str]) -> Command {
        let mut cmd = match self.umask.lock().unwrap().as_deref() {
            Some(umask) => {
                let mut sh = command("/bin/sh");
                sh.arg("-c")
                    .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
                    .arg(env!("CARGO_BIN_EXE_apsctl"));
                sh
            }
            None => command(env!("CARGO_BIN_EXE_apsctl")),
        };
        cmd.arg("--home")
            .arg(&self.home)
            .args(args)
            .env("NO_COLOR", "1")
            .current_dir(&self.dir)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs apsctl with `args`.
    pub fn apsctl(&self, args: &[&str]) -> Run {
        self.apsctl_env(args, &[])
    }

    /// Runs apsctl with `args` and extra environment variables.
    pub fn apsctl_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let out = self
            .apsctl_command(args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        Run::from_output(format!("apsctl {}", args.join(" ")), &out)
    }

    /// Builds, writes and imports `package`; returns its reference.
    pub fn package(&self, package: &Package<'_>) -> String {
        let zip = self.dir.join(format!("{}.app.zip", package.name));
        PackageBuilder::new()
            .app_meta(package.meta_xml())
            .file("htdocs/index.html", format!("<h1>{}</h1>\n", package.name))
            .file("htdocs/data/README.txt", "Files of the application.\n")
            .file("scripts/configure", package.configure)
            .write(&zip)
            .unwrap();
        let run = self.apsctl(&["--json", "package", "import", &show(&zip)]);
        run.ok();
        run.json()["package"].as_str().unwrap().to_owned()
    }

    /// Registers this world's SQLite database server `lite`.
    pub fn sqlite_server(&self) {
        self.apsctl(&["db-server", "add", "lite", "--type", "sqlite"])
            .ok();
    }

    /// Installs `reference` on `site` at `path`; returns the instance id.
    pub fn install(&self, reference: &str, site: &str, path: &str) -> String {
        let run = self.apsctl(&[
            "--json", "install", reference, "--site", site, "--path", path,
        ]);
        run.ok();
        run.json()["instance"].as_str().unwrap().to_owned()
    }

    /// `instance show ID --json`.
    pub fn show(&self, id: &str) -> serde_json::Value {
        let run = self.apsctl(&["--json", "instance", "show", id]);
        run.ok();
        run.json()
    }

    /// The root folder of instance `id` on its site.
    pub fn root(&self, id: &str) -> PathBuf {
        PathBuf::from(self.show(id)["root"].as_str().unwrap())
    }

    /// The ids of the recorded instances, in numeric order.
    pub fn instances(&self) -> Vec<String> {
        let run = self.apsctl(&["--json", "instance", "list"]);
        run.ok();
        let json = run.json();
        let list = json
            .get("instances")
            .unwrap_or(&json)
            .as_array()
            .unwrap()
            .clone();
        let mut ids: Vec<String> = list
            .iter()
            .map(|i| i["instance"].as_str().unwrap().to_owned())
            .collect();
        ids.sort_by_key(|id| id.parse::<u64>().unwrap_or(u64::MAX));
        ids
    }

    /// The private folder of instance `id` in the home.
    pub fn private(&self, id: &str) -> PathBuf {
        self.home.join("instances").join(id)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _turn = ACCOUNTS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tenants = std::mem::take(
            &mut *self
                .tenants
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for tenant in tenants {
            kill_processes_of(&tenant);
            // Another test binary may hold the passwd lock for a moment (exit 10).
            for _ in 0..20 {
                let out = command("userdel").args(["--remove", &tenant]).output();
                if !matches!(out, Ok(ref o) if o.status.code() == Some(10)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }
}

/// A path as text.
pub fn show(path: &Path) -> String {
    path.display().to_string()
}

/// Runs `script` with `sh -c` as `tenant` (playing the attacker); returns what it printed.
pub fn as_tenant(tenant: &SystemUser, script: &str) -> Run {
    let out = tenant_command(tenant, "/bin/sh")
        .args(["-c", script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run::from_output(format!("`{script}` as {}", tenant.name()), &out)
}

/// Like [`as_tenant`], asserting success.
#[track_caller]
pub fn as_tenant_ok(tenant: &SystemUser, script: &str) {
    let run = as_tenant(tenant, script);
    assert_eq!(run.code, Some(0), "{run}");
}

/// A `Command` running `program` as `tenant` (through `runuser`), in the tenant's home.
pub fn tenant_command(tenant: &SystemUser, program: &str) -> Command {
    let mut cmd = command("runuser");
    cmd.args(["-u", tenant.name(), "--", program])
        .env("HOME", tenant.home())
        .current_dir(tenant.home());
    cmd
}

/// Starts `python3 -c CODE ARGS…` as `tenant` in the background, its stdout piped.
pub fn spawn_python_as(tenant: &SystemUser, code: &str, args: &[&str]) -> Child {
    tenant_command(tenant, "/usr/bin/python3")
        .arg("-c")
        .arg(code)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for `child` (started by this test) to end by itself, reading what is left of its stdout.
pub fn finish(mut child: Child) -> String {
    let mut rest = String::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut rest).unwrap();
    }
    child.wait().unwrap();
    rest
}

/// Every entry below `root` (the root itself as `.`) as `kind mode uid:gid [content|target]`,
/// links not followed: what an attack must leave exactly as it was.
pub fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    describe(root, Path::new("."), &mut out);
    out
}

fn describe(path: &Path, rel: &Path, out: &mut BTreeMap<String, String>) {
    let meta = fs_err::symlink_metadata(path).unwrap();
    let owner = format!("{:o} {}:{}", meta.mode() & 0o7777, meta.uid(), meta.gid());
    let text = if meta.file_type().is_symlink() {
        format!(
            "link {owner} -> {}",
            show(&fs_err::read_link(path).unwrap())
        )
    } else if meta.is_dir() {
        let mut names: Vec<_> = fs_err::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for name in names {
            describe(&path.join(&name), &rel.join(&name), out);
        }
        format!("dir {owner}")
    } else if meta.is_file() {
        format!(
            "file {owner} {:?}",
            String::from_utf8_lossy(&fs_err::read(path).unwrap())
        )
    } else {
        format!("special {owner}")
    };
    out.insert(show(rel), text);
}

/// A root-owned folder `<dir>/<name>` with a file and a sub-folder, the target of the tenant's
/// links; returns its path.
pub fn victim(dir: &Path, name: &str) -> PathBuf {
    let victim = dir.join(name);
    fs_err::create_dir_all(victim.join("inner")).unwrap();
    fs_err::write(victim.join("precious.txt"), "root's own file\n").unwrap();
    fs_err::write(victim.join("inner/deeper.txt"), "root's deeper file\n").unwrap();
    for (path, mode) in [
        (victim.clone(), 0o751),
        (victim.join("inner"), 0o750),
        (victim.join("precious.txt"), 0o640),
        (victim.join("inner/deeper.txt"), 0o600),
    ] {
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    victim
}

/// Whether process `pid` is alive (not a zombie) and runs as `uid`: a stray process of the
/// tenant, not a recycled pid.
pub fn alive_as(pid: u32, uid: u32) -> bool {
    let Ok(status) = fs_err::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    let state = field("State:");
    let real_uid = field("Uid:");
    !state.starts_with('Z')
        && !state.starts_with('X')
        && real_uid.split_whitespace().next() == Some(uid.to_string().as_str())
}

/// Pids of the processes `user` runs (only this test's tenants have any).
pub fn processes_of(user: &str) -> Vec<u32> {
    command("pgrep")
        .args(["-u", user])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Ends the processes left by this test's tenant, each by its pid.
pub fn kill_processes_of(user: &str) {
    for pid in processes_of(user) {
        let _ = command("kill").args(["-KILL", &pid.to_string()]).output();
    }
}
