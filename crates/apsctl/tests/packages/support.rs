//! Helpers of the `packages` test area: one sandbox per test, running the real `apsctl` binary,
//! checking its output contract and snapshotting the file system around the home.
//!
//! Main decision: every sandbox is one temporary root holding the home, a work folder for the
//! archives under test, and the `TMPDIR` and `HOME` handed to apsctl, so "nothing is written
//! outside the home" is a comparison of two snapshots of that root (home excluded).
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tempfile::TempDir;

/// The system user owning the site of this area's instance tests.
pub const SITE_USER: &str = "apsctl-itpkg";

/// The example package shipped with apsctl.
pub fn hello_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello")
}

/// The corpus of real APS 1.x metadata files.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/aps1")
}

/// A temporary root for one test: `home/` (the controller's home), `work/` (archives), `tmp/`
/// and `user-home/` (apsctl's `TMPDIR` and `HOME`).
pub struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    /// A fresh sandbox; the home is not created yet (apsctl creates it).
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("apsctl-itpkg-")
            .tempdir()
            .expect("create the sandbox");
        for sub in ["work", "tmp", "user-home"] {
            fs_err::create_dir(dir.path().join(sub)).expect("create a sandbox folder");
        }
        Self { dir }
    }

    /// The sandbox root.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The controller's home.
    pub fn home(&self) -> PathBuf {
        self.root().join("home")
    }

    /// A path in the work folder.
    pub fn work(&self, name: &str) -> PathBuf {
        self.root().join("work").join(name)
    }

    /// `apsctl --home HOME` with a clean, sandboxed environment.
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
        cmd.env("TMPDIR", self.root().join("tmp"))
            .env("HOME", self.root().join("user-home"))
            .env("NO_COLOR", "1");
        cmd
    }

    /// Runs apsctl with `args` (after `--home`).
    pub fn run<I, S>(&self, args: I) -> Outcome
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.cmd();
        cmd.args(args);
        let shown = format!("{cmd:?}");
        let output = cmd.output().expect("run apsctl");
        let outcome = Outcome {
            command: shown,
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        assert!(
            outcome.code.is_some(),
            "apsctl was killed by a signal\n{outcome}"
        );
        assert!(
            !outcome.stderr.contains("panicked"),
            "apsctl panicked\n{outcome}"
        );
        outcome
    }

    /// `package list --json` → the references in the repository.
    pub fn package_refs(&self) -> Vec<String> {
        let list = self.run(["--json", "package", "list"]).ok().json();
        packages_of(&list)
            .iter()
            .map(|p| {
                p["package"]
                    .as_str()
                    .expect("`package` is a string")
                    .to_owned()
            })
            .collect()
    }

    /// Builds `examples/hello` into the work folder with `apsctl package build`.
    pub fn build_hello(&self) -> PathBuf {
        let out = self.work("hello.app.zip");
        let src = hello_source();
        self.run([
            OsStr::new("package"),
            OsStr::new("build"),
            src.as_os_str(),
            OsStr::new("-o"),
            out.as_os_str(),
        ])
        .ok();
        assert!(out.is_file(), "`package build` wrote no archive");
        out
    }

    /// Every path below the root (the home excluded) with its size (`None` for folders).
    pub fn snapshot_outside_home(&self) -> BTreeMap<PathBuf, Option<u64>> {
        let mut map = BTreeMap::new();
        walk(self.root(), &self.home(), &mut map);
        map
    }
}

fn walk(dir: &Path, skip: &Path, map: &mut BTreeMap<PathBuf, Option<u64>>) {
    for entry in fs_err::read_dir(dir).expect("list a sandbox folder") {
        let path = entry.expect("read a folder entry").path();
        if path == skip {
            continue;
        }
        let meta = fs_err::symlink_metadata(&path).expect("stat a sandbox path");
        if meta.is_dir() {
            map.insert(path.clone(), None);
            walk(&path, skip, map);
        } else {
            map.insert(path, Some(meta.len()));
        }
    }
}

/// The files (recursively) below `dir`; empty when `dir` does not exist.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    if !dir.exists() {
        return Vec::new();
    }
    let mut map = BTreeMap::new();
    walk(dir, Path::new(""), &mut map);
    map.into_iter()
        .filter_map(|(p, size)| size.map(|_| p))
        .collect()
}

/// The package objects of a `package list --json` document (a list or `{"packages": [...]}`).
pub fn packages_of(list: &Value) -> Vec<Value> {
    let array = list
        .get("packages")
        .unwrap_or(list)
        .as_array()
        .unwrap_or_else(|| panic!("`package list --json` is not a list: {list}"));
    array.clone()
}

/// What one run of apsctl produced.
pub struct Outcome {
    command: String,
    /// The exit status.
    pub code: Option<i32>,
    /// Everything printed on stdout.
    pub stdout: String,
    /// Everything printed on stderr.
    pub stderr: String,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "command: {}\nexit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command, self.code, self.stdout, self.stderr
        )
    }
}

impl Outcome {
    /// Asserts success.
    pub fn ok(self) -> Self {
        assert_eq!(self.code, Some(0), "apsctl failed\n{self}");
        self
    }

    /// Asserts failure with a plain-sentence reason on stderr and no data on stdout beyond (at
    /// most) one JSON document.
    pub fn failed(self) -> Self {
        assert_ne!(self.code, Some(0), "apsctl succeeded unexpectedly\n{self}");
        let reason = self.stderr.trim();
        assert!(!reason.is_empty(), "no reason on stderr\n{self}");
        assert!(
            reason.starts_with("error: "),
            "stderr does not start with `error: `\n{self}"
        );
        assert!(
            !reason.contains("Error {") && !reason.contains("Os {") && !reason.contains("kind:"),
            "stderr shows a debug rendering, not a sentence\n{self}"
        );
        if !self.stdout.trim().is_empty() {
            let _ = self.json();
        }
        self
    }

    /// Asserts that stderr contains every one of `needles` (case-insensitively).
    pub fn stderr_names(self, needles: &[&str]) -> Self {
        let haystack = self.stderr.to_lowercase();
        for needle in needles {
            assert!(
                haystack.contains(&needle.to_lowercase()),
                "stderr does not name `{needle}`\n{self}"
            );
        }
        self
    }

    /// stdout as exactly one JSON document.
    pub fn json(&self) -> Value {
        let mut docs = serde_json::Deserializer::from_str(&self.stdout).into_iter::<Value>();
        let first = docs
            .next()
            .unwrap_or_else(|| panic!("no JSON document on stdout\n{self}"))
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{self}"));
        assert!(
            docs.next().is_none(),
            "more than one JSON document (or trailing text) on stdout\n{self}"
        );
        first
    }
}
