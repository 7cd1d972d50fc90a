//! The crash bench: one test's world (see `../lifecycle/world.rs`) with a package whose
//! configuration script can be held asleep, a way to run the real `apsctl` stopped at one kill
//! point, `apsctl recover`, and the state that the invariant compares.
//!
//! Main decision: a kill point is either a fault point of the test build armed with `crash`
//! (`APSCTL_TEST_FAULT=point=crash`: the process aborts there, as a power cut would stop it) or a
//! `kill -9` from the test while a package script sleeps (the script says so through a file in
//! the bench's control folder; its own process, which apsctl leaves in a process group of its
//! own, is killed too, so that nothing of the interrupted run goes on behind `recover`'s back).
//! Each point is checked inside [`Bench::attempt`]: a violated invariant is recorded with the
//! point and the next points still run, from a state the bench restores and checks first.
//!
//! Known gap: the fault points count hits per process, and `deploy-file` is also passed by the
//! private copy of the package's scripts (it extracts through the same code), so
//! `deploy-file@1` stops in the `private-copy` step; the install tests pick their N knowing that.
#![expect(
    clippy::unwrap_used,
    reason = "test harness: a failed setup or inspection step is a failed test"
)]
use std::cell::Cell;
use std::collections::BTreeSet;
use std::fmt::{self, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::ExitStatusExt as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::world::{Snapshot, Variant, World};

/// Signal numbers on Linux.
const SIGABRT: i32 = 6;
const SIGKILL: i32 = 9;

/// How long a held script may take to say it is asleep.
const HOLD_WAIT: Duration = Duration::from_secs(60);

/// A place where the harness stops apsctl.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Point {
    /// A fault point armed to abort: `after:deploy`, `journal-write@3`, `deploy-file@1`,
    /// `db-create`.
    Fault(String),
    /// `kill -9` of apsctl while `configure <action>` sleeps, before or after its work.
    Script {
        /// The script's action (`install`, `configure`, `remove`).
        action: &'static str,
        /// Whether the script did its work before it fell asleep.
        when: When,
    },
}

/// When a held script sleeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Before it does anything.
    Before,
    /// After its work, just before it would exit (a shutdown function).
    After,
}

impl Point {
    /// A fault point.
    pub fn fault(point: impl Into<String>) -> Self {
        Self::Fault(point.into())
    }

    /// `after:<step>`.
    pub fn after(step: &str) -> Self {
        Self::Fault(format!("after:{step}"))
    }

    /// Both script points of `action`.
    pub fn scripts(action: &'static str) -> [Self; 2] {
        [When::Before, When::After].map(|when| Self::Script { action, when })
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fault(point) => f.write_str(point),
            Self::Script {
                action,
                when: When::Before,
            } => write!(
                f,
                "kill -9 while `configure {action}` sleeps before its work"
            ),
            Self::Script {
                action,
                when: When::After,
            } => write!(
                f,
                "kill -9 while `configure {action}` sleeps after its work"
            ),
        }
    }
}

/// How a run at a kill point ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// apsctl died there (aborted, or killed by the test).
    Died,
    /// The point was not reached: the operation completed (exit 0).
    Completed,
}

/// A `configure` wrapper that sleeps while `<control>/hold-<action>-before|after` exists,
/// after writing `<control>/ready-<action>-before|after`.
fn holding_wrapper(control: &Path) -> String {
    format!(
        r#"<?php
// Crash harness: `hold-<action>-before` makes `configure <action>` sleep before its work,
// `hold-<action>-after` once its work is done; the script first says so in `ready-…`.
$action = $argv[1] ?? '';
$control = '{control}';
if (is_file("$control/hold-$action-before")) {{
    touch("$control/ready-$action-before");
    sleep(600);
}}
if (is_file("$control/hold-$action-after")) {{
    register_shutdown_function(function () use ($control, $action) {{
        touch("$control/ready-$action-after");
        sleep(600);
    }});
}}
require __DIR__ . '/configure.real';
"#,
        control = control.display()
    )
}

/// Everything the invariant compares: what [`World::snapshot`] sees (document root with modes
/// and owners, this bench's MariaDB databases and logins, instance and package lists, private
/// folders), plus the store's instance rows, the unfinished operations, the kept databases,
/// the SQLite database folders and this bench's PostgreSQL databases and roles.
#[derive(Debug, PartialEq, Eq)]
pub struct State {
    /// The world's snapshot.
    pub snapshot: Snapshot,
    /// `table=count` for every instance table of the store.
    pub rows: Vec<String>,
    /// Operations without an outcome.
    pub unfinished: Vec<String>,
    /// `database kept --json`.
    pub kept: Value,
    /// The entries of `<home>/databases` (SQLite databases).
    pub sqlite: BTreeSet<String>,
    /// PostgreSQL databases and roles named like this bench's (empty without a `pg` server).
    pub pg: BTreeSet<String>,
}

/// The store tables that hold an instance.
const INSTANCE_TABLES: [&str; 5] = [
    "instances",
    "instance_settings",
    "instance_databases",
    "instance_files",
    "system_changes",
];

/// One test's bench; see the module documentation.
pub struct Bench {
    /// The PostgreSQL test server, when the bench registered it (dropped before the world,
    /// whose folder holds its password file).
    pub pg: Option<crate::pg::Pg>,
    /// The world.
    pub w: World,
    /// The imported package.
    pub reference: String,
    /// Where held scripts look for `hold-…` and write `ready-…`.
    control: PathBuf,
    /// Points that fired, as (operation, point).
    covered: Vec<(String, String)>,
    /// Violations, one text per point.
    failures: Vec<String>,
    /// How the last run at a kill point ended (a point that fired counts as covered even when
    /// the check after it failed).
    last_stop: Cell<Option<Stop>>,
    started: Instant,
}

impl Bench {
    /// Test `n`'s world with the guestbook example (databases `gblN_…`) whose configuration
    /// script can be held asleep.
    pub fn guestbook(n: u32) -> Self {
        let w = World::new(n);
        let control = Self::control_folder(&w);
        let wrapper = holding_wrapper(&control);
        let reference = w.import(&w.variant_package(&Variant {
            wrapper: Some(&wrapper),
            ..Variant::default()
        }));
        Self::with(w, reference, control)
    }

    /// A bench around `w` (whose package the caller imports).
    pub fn around(w: World) -> Self {
        let control = Self::control_folder(&w);
        Self::with(w, String::new(), control)
    }

    fn with(w: World, reference: String, control: PathBuf) -> Self {
        Self {
            w,
            reference,
            control,
            pg: None,
            covered: Vec::new(),
            failures: Vec::new(),
            last_stop: Cell::new(None),
            started: Instant::now(),
        }
    }

    fn control_folder(w: &World) -> PathBuf {
        let control = w.dir.join("control");
        fs_err::create_dir(&control).unwrap();
        World::run_tool(
            "chown",
            &[&format!("{}:", w.user), &control.display().to_string()],
        );
        fs_err::set_permissions(&control, std::fs::Permissions::from_mode(0o755)).unwrap();
        control
    }

    /// Runs apsctl with `args` stopped at `point`; panics when it neither died there nor
    /// completed.
    pub fn run(&self, args: &[String], point: &Point) -> Stop {
        let stop = match point {
            Point::Fault(fault) => self.run_armed(args, fault),
            Point::Script { action, when } => self.run_held(args, action, *when),
        };
        self.last_stop.set(Some(stop));
        stop
    }

    fn run_armed(&self, args: &[String], fault: &str) -> Stop {
        let mut cmd = assert_cmd::Command::cargo_bin("apsctl").unwrap();
        cmd.arg("--home").arg(&self.w.home).args(args);
        for var in [
            "APSCTL_HOME",
            "APSCTL_SCRIPT_TIMEOUT",
            "APSCTL_TEST_FAIL_AFTER",
            "APSCTL_TEST_CRASH_AFTER",
        ] {
            cmd.env_remove(var);
        }
        // An aborted apsctl may leave a core file: in the test's folder, not in the crate.
        cmd.current_dir(&self.w.dir)
            .env("APSCTL_TEST_FAULT", format!("{fault}=crash"))
            .write_stdin(Vec::new())
            .timeout(Duration::from_secs(120));
        let out = cmd.output().expect("apsctl runs");
        let what = format!("APSCTL_TEST_FAULT={fault}=crash apsctl {}", args.join(" "));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        self.w.log_output(&what, &stdout, &stderr);
        match (out.status.signal(), out.status.code()) {
            (Some(SIGABRT), _) => Stop::Died,
            (_, Some(0)) => Stop::Completed,
            (signal, code) => panic!(
                "`{what}` neither aborted at the point nor completed (exit {code:?}, signal {signal:?})\nstdout:\n{stdout}\nstderr:\n{stderr}"
            ),
        }
    }

    fn run_held(&self, args: &[String], action: &str, when: When) -> Stop {
        let when = match when {
            When::Before => "before",
            When::After => "after",
        };
        let hold = self.control.join(format!("hold-{action}-{when}"));
        let ready = self.control.join(format!("ready-{action}-{when}"));
        fs_err::write(&hold, "").unwrap();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = self
            .w
            .apsctl_background(&args)
            .spawn()
            .expect("apsctl starts");
        let deadline = Instant::now() + HOLD_WAIT;
        let asleep = loop {
            if ready.exists() {
                break true;
            }
            if child.try_wait().unwrap().is_some() {
                break false;
            }
            assert!(
                Instant::now() < deadline,
                "`configure {action}` did not reach its hold within {HOLD_WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        if asleep {
            child.kill().unwrap();
        }
        let out = child.wait_with_output().unwrap();
        self.kill_site_processes();
        fs_err::remove_file(&hold).unwrap();
        let _ = fs_err::remove_file(&ready);
        let what = format!("apsctl {} (held {action}-{when})", args.join(" "));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        self.w.log_output(&what, &stdout, &stderr);
        if asleep {
            assert_eq!(
                out.status.signal(),
                Some(SIGKILL),
                "`{what}` was not killed: {stderr}"
            );
            Stop::Died
        } else {
            assert!(
                out.status.success(),
                "`{what}` ended before the script was held ({:?})\nstderr:\n{stderr}",
                out.status
            );
            Stop::Completed
        }
    }

    /// Kills what the site's user still runs (the held script), each by its pid, and waits
    /// until nothing is left.
    fn kill_site_processes(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = crate::world::processes_of(&self.w.user);
            if left.is_empty() {
                return;
            }
            for pid in &left {
                let _ = assert_cmd::Command::new("kill")
                    .args(["-KILL", pid])
                    .output();
            }
            assert!(
                Instant::now() < deadline,
                "processes of {} survive: {left:?}",
                self.w.user
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `apsctl recover`, which must succeed and bring every operation it finds to
    /// `rolled_back` or `rolled_forward`; a second `recover` must find nothing, and no operation
    /// may be left without an outcome. Returns what the first one did.
    pub fn recover(&self) -> Vec<Value> {
        let run = self.w.apsctl(&["--json", "recover"]);
        run.ok();
        let ops = run.json()["operations"]
            .as_array()
            .expect("recover lists operations")
            .clone();
        for op in &ops {
            assert!(
                op["outcome"] == "rolled_back" || op["outcome"] == "rolled_forward",
                "recover could not make an operation consistent: {op}\nstderr:\n{}",
                run.stderr
            );
        }
        let again = self.w.apsctl(&["--json", "recover"]);
        again.ok();
        assert_eq!(
            again.json()["operations"],
            serde_json::json!([]),
            "a second recover found work: {}",
            again.stderr
        );
        let unfinished = self.unfinished();
        assert!(
            unfinished.is_empty(),
            "operations without an outcome after recover: {unfinished:?}"
        );
        ops
    }

    fn unfinished(&self) -> Vec<String> {
        self.w
            .sql("SELECT id || ' ' || kind FROM operations WHERE outcome IS NULL ORDER BY id")
    }

    /// The state the invariant compares.
    pub fn state(&self) -> State {
        let rows = INSTANCE_TABLES
            .iter()
            .map(|t| {
                let n = self.w.sql(&format!("SELECT COUNT(*) FROM {t}"));
                format!("{t}={}", n.join(""))
            })
            .collect();
        let kept = self.w.apsctl(&["--json", "database", "kept"]);
        kept.ok();
        let sqlite = fs_err::read_dir(self.w.home.join("databases"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        State {
            snapshot: self.w.snapshot(),
            rows,
            unfinished: self.unfinished(),
            kept: kept.json(),
            sqlite,
            pg: self
                .pg
                .as_ref()
                .map(crate::pg::Pg::named)
                .unwrap_or_default(),
        }
    }

    /// The instances as `instance list --json` shows them.
    pub fn instances(&self) -> Vec<Value> {
        let run = self.w.apsctl(&["--json", "instance", "list"]);
        run.ok();
        let list = run.json();
        list.get("instances")
            .unwrap_or(&list)
            .as_array()
            .expect("a list of instances")
            .clone()
    }

    /// Asserts that guestbook instance `id` is `ready` and works: its front page, rendered by
    /// the site's PHP as the site's user, shows the stored title and the entries read from its
    /// database, and the database and its login are on the server. Returns the stored title.
    #[track_caller]
    pub fn guestbook_works(&self, id: &str) -> String {
        let show = self.w.show(id);
        assert_eq!(show["state"], "ready", "instance {id}: {show}");
        let title = show["settings"]["title"]
            .as_str()
            .expect("a stored title")
            .to_owned();
        let root = PathBuf::from(show["root"].as_str().expect("show prints the root"));
        let page = self.w.php_as_site_user(&root, &["index.php"]);
        page.ok();
        assert!(
            page.stdout.contains(&format!("<h1>{title}</h1>")),
            "instance {id} does not show its stored title `{title}`:\n{}",
            page.stdout
        );
        assert!(
            page.stdout
                .contains("This is the first entry of your guestbook."),
            "instance {id} shows no entry from its database:\n{}",
            page.stdout
        );
        let databases = self.w.mysql.databases();
        for db in show["databases"].as_array().expect("databases") {
            let (name, login) = (
                db["name"].as_str().expect("name"),
                db["login"].as_str().expect("login"),
            );
            assert!(databases.contains(name), "database {name} is gone");
            assert!(self.w.mysql.login_exists(login), "login {login} is gone");
        }
        title
    }

    /// How the last run at a kill point ended, whether or not the checks after it passed
    /// (`None` when it did not end as it should).
    pub fn last_stop(&self) -> Option<Stop> {
        self.last_stop.get()
    }

    /// Runs `check` for the point `point` of `op`, recording the point as covered when it
    /// fired and a panic as this point's violation. Returns how the run ended, or `None` after
    /// a violation.
    pub fn attempt(
        &mut self,
        op: &str,
        point: &Point,
        check: impl FnOnce(&Self) -> Stop,
    ) -> Option<Stop> {
        self.last_stop.set(None);
        let result = catch_unwind(AssertUnwindSafe(|| check(self)));
        if self.last_stop.get() == Some(Stop::Died) {
            self.covered.push((op.to_owned(), point.to_string()));
        }
        match result {
            Ok(stop) => Some(stop),
            Err(panic) => {
                let text = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "(no message)".into());
                self.failures.push(format!("{op} at `{point}`: {text}"));
                None
            }
        }
    }

    /// Runs `restore` after a violation; when it panics too, later points would start from an
    /// unknown state: the test stops with what it found.
    pub fn restore_or_stop(&mut self, restore: impl FnOnce(&Self)) {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| restore(self))) {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| "(no message)".into());
            self.failures
                .push(format!("the state could not be restored: {text}"));
            self.finish_checks(&[]);
        }
    }

    /// Brings the bench back to `baseline` after a violation, whatever the recovery left:
    /// `recover`, every instance removed with `--force`, kept databases dropped, then (as
    /// root) what is left in the document root, MariaDB and the private folders. Panics when
    /// the state still differs (store rows cannot be mended from outside).
    pub fn restore_to(&self, baseline: &State) {
        self.recover();
        for instance in self.instances() {
            let id = instance["instance"].as_str().unwrap_or_default().to_owned();
            self.w.apsctl(&["remove", &id, "--files", "all", "--force"]);
        }
        let kept = self.w.apsctl(&["--json", "database", "kept"]);
        for db in kept.json()["databases"].as_array().into_iter().flatten() {
            self.w.apsctl(&["database", "drop", &db["id"].to_string()]);
        }
        let now = self.state();
        let docroot = &self.w.docroot;
        let mut added = docroot_added(&now.snapshot, &baseline.snapshot);
        // Shallowest first: removing a folder removes what it holds.
        added.sort_by_key(|(path, _, _)| path.matches('/').count());
        for (path, _, _) in &added {
            let old = baseline.snapshot.docroot.iter().find(|(p, _, _)| p == path);
            let full = docroot.join(path);
            match old {
                Some((_, mode, uid)) => {
                    World::run_tool("chown", &[&uid.to_string(), &full.display().to_string()]);
                    fs_err::set_permissions(&full, std::fs::Permissions::from_mode(mode & 0o7777))
                        .unwrap();
                }
                None if fs_err::symlink_metadata(&full).is_ok_and(|m| m.is_dir()) => {
                    fs_err::remove_dir_all(&full).unwrap();
                }
                None => {
                    let _ = fs_err::remove_file(&full);
                }
            }
        }
        // Folders of the baseline that are gone: made again as they were.
        for (path, mode, uid) in docroot_added(&baseline.snapshot, &now.snapshot) {
            let full = docroot.join(&path);
            if fs_err::symlink_metadata(&full).is_err() && mode & 0o170_000 == 0o040_000 {
                fs_err::create_dir(&full).unwrap();
                World::run_tool("chown", &[&uid.to_string(), &full.display().to_string()]);
                fs_err::set_permissions(&full, std::fs::Permissions::from_mode(mode & 0o7777))
                    .unwrap();
            }
        }
        for db in now
            .snapshot
            .databases
            .difference(&baseline.snapshot.databases)
        {
            self.w
                .mysql
                .query(&format!("DROP DATABASE IF EXISTS `{db}`"));
        }
        for login in now.snapshot.logins.difference(&baseline.snapshot.logins) {
            if let Some((user, host)) = login.rsplit_once('@') {
                self.w
                    .mysql
                    .query(&format!("DROP USER IF EXISTS '{user}'@'{host}'"));
            }
        }
        for private in now.snapshot.private.difference(&baseline.snapshot.private) {
            fs_err::remove_dir_all(self.w.home.join("instances").join(private)).unwrap();
        }
        assert_same(&self.state(), baseline, "restored after a violation");
    }

    /// The points covered for `op`.
    pub fn covered(&self, op: &str) -> Vec<&str> {
        self.covered
            .iter()
            .filter(|(o, _)| o == op)
            .map(|(_, p)| p.as_str())
            .collect()
    }

    /// One line per operation: how many points fired, and the time taken so far.
    pub fn summary(&self) -> String {
        let mut ops: Vec<&str> = self.covered.iter().map(|(o, _)| o.as_str()).collect();
        ops.dedup();
        let mut text = String::new();
        for op in ops {
            let points = self.covered(op);
            let _ = writeln!(
                text,
                "crash harness: {op}: {} kill points: {}",
                points.len(),
                points.join(", ")
            );
        }
        let _ = write!(
            text,
            "crash harness: {} violations, {:.1?} elapsed",
            self.failures.len(),
            self.started.elapsed()
        );
        text
    }

    /// Panics with every violation found, after checking that each operation in `expected`
    /// covered exactly that many kill points.
    pub fn finish_checks(&self, expected: &[(&str, usize)]) {
        let mut problems = self.failures.clone();
        for (op, n) in expected {
            let got = self.covered(op).len();
            if got != *n {
                problems.push(format!(
                    "{op}: {got} kill points fired, the harness expects {n}: {:?}",
                    self.covered(op)
                ));
            }
        }
        assert!(
            problems.is_empty(),
            "{} problem(s):\n\n{}",
            problems.len(),
            problems.join("\n\n")
        );
    }

    /// Checks the violations and counts, then the secrets of every output and of the journal.
    pub fn finish(mut self, expected: &[(&str, usize)]) {
        self.finish_checks(expected);
        drop(self.pg.take());
        self.w.finish();
    }
}

/// The document root entries (path, mode, owner) of `now` that `before` does not have.
pub fn docroot_added(now: &Snapshot, before: &Snapshot) -> Vec<(String, u32, u32)> {
    now.docroot
        .iter()
        .filter(|e| !before.docroot.contains(e))
        .cloned()
        .collect()
}

/// Asserts `now == before`, naming the first part that differs.
#[track_caller]
pub fn assert_same(now: &State, before: &State, what: &str) {
    if now == before {
        return;
    }
    let mut diffs = Vec::new();
    let added = docroot_added(&now.snapshot, &before.snapshot);
    let removed = docroot_added(&before.snapshot, &now.snapshot);
    if !added.is_empty() || !removed.is_empty() {
        diffs.push(format!(
            "document root: added or changed {added:?}, gone or changed {removed:?}"
        ));
    }
    let (n, b) = (&now.snapshot, &before.snapshot);
    if n.databases != b.databases {
        diffs.push(format!(
            "databases {:?} (before {:?})",
            n.databases, b.databases
        ));
    }
    if n.logins != b.logins {
        diffs.push(format!("logins {:?} (before {:?})", n.logins, b.logins));
    }
    if n.instances != b.instances {
        diffs.push(format!(
            "instances {} (before {})",
            n.instances, b.instances
        ));
    }
    if n.packages != b.packages {
        diffs.push("packages differ".to_owned());
    }
    if n.private != b.private {
        diffs.push(format!(
            "private folders {:?} (before {:?})",
            n.private, b.private
        ));
    }
    if now.rows != before.rows {
        diffs.push(format!(
            "store rows {:?} (before {:?})",
            now.rows, before.rows
        ));
    }
    if now.unfinished != before.unfinished {
        diffs.push(format!("unfinished operations {:?}", now.unfinished));
    }
    if now.kept != before.kept {
        diffs.push(format!(
            "kept databases {} (before {})",
            now.kept, before.kept
        ));
    }
    if now.sqlite != before.sqlite {
        diffs.push(format!(
            "SQLite databases {:?} (before {:?})",
            now.sqlite, before.sqlite
        ));
    }
    if now.pg != before.pg {
        diffs.push(format!("PostgreSQL {:?} (before {:?})", now.pg, before.pg));
    }
    panic!("{what}: the state differs:\n  {}", diffs.join("\n  "));
}
