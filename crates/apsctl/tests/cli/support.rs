//! Helpers of the `cli` test area: one world per test (home, document root, site user, site) and
//! the real `apsctl` binary run inside it.
//!
//! Main decision: the site user is created per test and deleted when the world is dropped, also
//! when the test fails; its name carries the test's number, so parallel tests never share one.
#![expect(
    clippy::unwrap_used,
    reason = "test fixture: a failed setup step is a failed test"
)]
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The example package the tests install.
pub fn hello_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello")
}

/// The output of one run of apsctl.
#[derive(Debug)]
pub struct Run {
    /// What was run (for assertion messages).
    pub what: String,
    /// The exit status; `None` when killed by a signal.
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
    /// Asserts exit status 0.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.code, Some(0), "apsctl failed\n{self}");
        self
    }

    /// Asserts exit status `code` with a reason on stderr.
    #[track_caller]
    pub fn fails_with(self, code: i32) -> Self {
        assert_eq!(self.code, Some(code), "unexpected exit status\n{self}");
        assert!(
            self.stderr.lines().any(|l| l.starts_with("error: ")),
            "no `error:` reason on stderr\n{self}"
        );
        self
    }

    /// Asserts that stderr contains every one of `needles`.
    #[track_caller]
    pub fn stderr_names(self, needles: &[&str]) -> Self {
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "stderr does not name `{needle}`\n{self}"
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

/// Asserts that `text` holds no character that acts on a terminal (ESC, BEL, CR, C1 controls,
/// DEL) and no bidi override, isolate or mark.
#[track_caller]
pub fn assert_inert(what: &str, text: &str) {
    let bad: Vec<String> = text
        .chars()
        .filter(|&c| c != '\n' && c != '\t' && aps_host::shown::is_unsafe(c))
        .map(|c| format!("U+{:04X}", u32::from(c)))
        .collect();
    assert!(
        bad.is_empty(),
        "{what} carries raw terminal controls {bad:?}:\n{text}"
    );
}

/// Asserts that no line of `text` after the first starts with `error:` or `warning:` (only
/// apsctl writes such lines, one per diagnostic).
#[track_caller]
pub fn assert_no_forged_lines(what: &str, text: &str) {
    let tags: Vec<&str> = text
        .lines()
        .map(|l| l.trim_start_matches('\r'))
        .filter(|l| l.starts_with("error:") || l.starts_with("warning:"))
        .collect();
    assert!(
        tags.len() <= 1,
        "{what} has lines that look like apsctl's own diagnostics: {tags:?}\n{text}"
    );
}

/// One test's world: a home, a document root owned by a fresh site user and a registered site.
pub struct World {
    /// The site user's name.
    pub user: String,
    /// The test's folder.
    pub dir: PathBuf,
    /// The site's document root.
    pub docroot: PathBuf,
    _tmp: tempfile::TempDir,
}

impl World {
    /// A world without a site (for commands that need no site).
    pub fn bare() -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("apsctl-itcli-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        Self {
            user: String::new(),
            docroot: dir.join("www"),
            dir,
            _tmp: tmp,
        }
    }

    /// World `n`: site user `apsctl-itcli-N`, its document root, and the site `s` on it.
    pub fn with_site(n: u32) -> Self {
        let mut world = Self::bare();
        world.user = format!("apsctl-itcli-{n}");
        delete_user(&world.user);
        let env = aps_ops::Env::from_process();
        let user = aps_host::user::ensure_test_user(&env, &world.user).unwrap();
        // The site user traverses to its document root and its instance's private scripts.
        fs_err::set_permissions(&world.dir, std::fs::Permissions::from_mode(0o711)).unwrap();
        fs_err::create_dir(&world.docroot).unwrap();
        std::os::unix::fs::chown(&world.docroot, Some(user.uid()), Some(user.gid())).unwrap();
        let docroot = world.docroot.display().to_string();
        world
            .run(&[
                "site",
                "add",
                "s",
                "--docroot",
                &docroot,
                "--url",
                "http://localhost:8080/",
                "--user",
                &world.user,
            ])
            .ok();
        world
    }

    /// The controller's home.
    pub fn home(&self) -> PathBuf {
        self.dir.join("home")
    }

    /// `apsctl --home HOME` with a clean environment and no colours.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_apsctl"));
        cmd.arg("--home").arg(self.home());
        for var in [
            "APSCTL_HOME",
            "APSCTL_MAX_PACKAGE_SIZE",
            "APSCTL_SCRIPT_TIMEOUT",
            "APSCTL_TEST_FAIL_AFTER",
            "APSCTL_TEST_CRASH_AFTER",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("NO_COLOR", "1")
            .current_dir(&self.dir)
            .timeout(Duration::from_secs(120));
        cmd
    }

    /// Runs apsctl with `args` and an empty standard input.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Run {
        self.run_stdin(args, b"")
    }

    /// Runs apsctl with `args`, feeding `input` on standard input.
    pub fn run_stdin<S: AsRef<OsStr>>(&self, args: &[S], input: &[u8]) -> Run {
        let mut cmd = self.cmd();
        cmd.args(args).write_stdin(input.to_vec());
        let what = format!("{cmd:?}");
        let out = cmd.output().expect("apsctl runs");
        let run = Run {
            what,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(run.code.is_some(), "apsctl was killed by a signal\n{run}");
        assert!(!run.stderr.contains("panicked"), "apsctl panicked\n{run}");
        run
    }

    /// Builds (`package build`) and imports a copy of `examples/hello`, with `configure` as its
    /// configuration script when given; returns the package reference.
    pub fn import_hello(&self, configure: Option<&str>) -> String {
        let src = self.dir.join("hello-src");
        copy_tree(&hello_source(), &src);
        if let Some(script) = configure {
            fs_err::write(src.join("scripts/configure"), script).unwrap();
        }
        let zip = self.dir.join("hello.app.zip");
        self.run(&[
            OsStr::new("package"),
            OsStr::new("build"),
            src.as_os_str(),
            OsStr::new("-o"),
            zip.as_os_str(),
        ])
        .ok();
        let imported = self
            .run(&[
                OsStr::new("--json"),
                OsStr::new("package"),
                OsStr::new("import"),
                zip.as_os_str(),
            ])
            .ok()
            .json();
        imported["package"].as_str().unwrap().to_owned()
    }

    /// Installs `reference` on the site; returns the instance id. (`--set` for the password:
    /// these tests are not about `--settings-file`, which `settings_input` covers.)
    pub fn install(&self, reference: &str, extra: &[&str]) -> String {
        let mut args = vec![
            "--json",
            "install",
            reference,
            "--site",
            "s",
            "--accept-license",
            "--set",
            "admin_password=correct-horse-1",
        ];
        args.extend_from_slice(extra);
        let installed = self.run(&args).ok().json();
        installed["instance"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| installed["instance"].as_u64().map(|n| n.to_string()))
            .unwrap_or_else(|| panic!("no instance id in {installed}"))
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if !self.user.is_empty() {
            delete_user(&self.user);
        }
    }
}

/// Deletes a site user of this area, if it exists (leftover of an interrupted run, or cleanup).
fn delete_user(user: &str) {
    if aps_host::user::SystemUser::lookup(user).is_ok() {
        let _ = assert_cmd::Command::new("userdel")
            .args(["--remove", user])
            .timeout(Duration::from_secs(60))
            .output();
    }
}

/// Copies the folder tree `from` to `to` (regular files and folders).
pub fn copy_tree(from: &Path, to: &Path) {
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
