//! Crashes inside a removal, for `--files all` and `--files app`, with and without
//! `--keep-databases`. Every instance removed gets an entry with an attachment first (a file the
//! instance created, which `--files app` keeps).
//!
//! Invariant after `recover`: either the instance is `ready`, works and everything is as before
//! the removal (rolled back), or nothing of it remains (rolled forward) but what the removal
//! keeps on purpose: with `--files app` the attachment and its folders, exactly as they were;
//! with `--keep-databases` the database and login, listed once by `database kept`. The harness
//! then drops and deletes those and checks that the state is the one before the install.
#![expect(
    clippy::unwrap_used,
    reason = "test harness: a failed setup or inspection step is a failed test"
)]
use std::path::Path;

use serde_json::Value;

use crate::harness::{Bench, Point, State, Stop, assert_same};

/// Journal writes of one removal: the operation, the access change (recorded, marked), the
/// script (recorded, marked), the commit point, the final transaction.
const JOURNAL_WRITES: usize = 7;
/// The journal write of the removal's commit point (after the operation, the access change and
/// the script, each recorded and marked).
const COMMIT_POINT_WRITE: usize = 6;
/// The removal's steps with an `after:` point.
const STEPS: [&str; 3] = ["disable-access", "configure-remove", "forget"];

/// A removal's options.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// `--files app` (else `--files all`).
    pub app_files: bool,
    /// `--keep-databases`.
    pub keep_databases: bool,
}

impl Options {
    /// The operation's label in the harness output.
    pub fn label(self) -> String {
        format!(
            "remove --files {}{}",
            if self.app_files { "app" } else { "all" },
            if self.keep_databases {
                " --keep-databases"
            } else {
                ""
            }
        )
    }
}

/// An installed instance and the state with it.
struct Installed {
    id: String,
    database: String,
    login: String,
    /// Paths (relative to the document root) that `--files app` keeps.
    instance_files: Vec<String>,
    before: State,
}

/// Runs every kill point of a removal with `opts` on bench `n`; returns the bench and the
/// number of points that must have fired.
pub fn run(n: u32, opts: Options) -> (Bench, usize) {
    let mut b = Bench::guestbook(n);
    let note = b.w.dir.join("note.txt");
    fs_err::write(&note, "attached by the crash harness\n").unwrap();
    let empty = b.state();
    let label = opts.label();
    let mut points: Vec<Point> = STEPS.iter().map(|s| Point::after(s)).collect();
    points.extend(Point::scripts("remove"));
    let fixed = points.len();
    let mut current = None;
    for point in &points {
        one(&mut b, &label, opts, &empty, &mut current, point);
    }
    for k in 1..=40 {
        let point = Point::fault(format!("journal-write@{k}"));
        if one(&mut b, &label, opts, &empty, &mut current, &point) == Some(Stop::Completed) {
            break;
        }
    }
    if let Some(installed) = current {
        b.w.apsctl(&["remove", &installed.id, "--files", "all"])
            .ok();
    }
    (b, fixed + JOURNAL_WRITES)
}

fn install(b: &Bench) -> Installed {
    let id = b.w.install(&b.reference, &[]);
    let root = b.w.root(&id);
    let note = b.w.dir.join("note.txt");
    b.w.php_as_site_user(
        &root,
        &["add.php", "With an attachment", &note.display().to_string()],
    )
    .ok();
    let show = b.w.show(&id);
    let db = &show["databases"][0];
    let prefix = root
        .strip_prefix(&b.w.docroot)
        .expect("the root is in the document root")
        .to_owned();
    let uploads = prefix.join("uploads");
    let attachments: Vec<String> = fs_err::read_dir(root.join("uploads"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with("-note.txt"))
        .collect();
    assert_eq!(
        attachments.len(),
        1,
        "the application stored its attachment"
    );
    let shown = |p: &Path| p.display().to_string();
    Installed {
        database: db["name"].as_str().expect("database name").to_owned(),
        login: db["login"].as_str().expect("database login").to_owned(),
        instance_files: vec![
            shown(&prefix),
            shown(&uploads),
            shown(&uploads.join(&attachments[0])),
        ],
        before: b.state(),
        id,
    }
}

fn one(
    b: &mut Bench,
    label: &str,
    opts: Options,
    empty: &State,
    current: &mut Option<Installed>,
    point: &Point,
) -> Option<Stop> {
    let installed = match current.take() {
        Some(installed) => installed,
        None => install(b),
    };
    let mut args: Vec<String> = ["remove", &installed.id, "--files"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    args.push(if opts.app_files { "app" } else { "all" }.to_owned());
    if opts.keep_databases {
        args.push("--keep-databases".to_owned());
    }
    let mut rolled_back = false;
    let stop = b.attempt(label, point, |b| {
        let stop = b.run(&args, point);
        let recovered = b.recover();
        if stop == Stop::Completed {
            assert!(
                recovered.is_empty(),
                "recover after a completed removal: {recovered:?}"
            );
        }
        let instances = b.instances();
        if instances.is_empty() {
            for op in &recovered {
                assert_eq!(op["outcome"], "rolled_forward", "{op}");
            }
            rolled_forward(b, opts, &installed, empty);
        } else {
            assert_eq!(stop, Stop::Died, "a completed removal left the instance");
            for op in &recovered {
                assert_eq!(op["outcome"], "rolled_back", "{op}");
            }
            b.guestbook_works(&installed.id);
            assert_same(&b.state(), &installed.before, "the removal rolled back");
            rolled_back = true;
        }
        stop
    });
    if rolled_back {
        *current = Some(installed);
    } else if stop.is_none() {
        b.restore_or_stop(|b| b.restore_to(empty));
    }
    // How the run ended, also when a check failed: the enumerations stop at a completed run.
    b.last_stop()
}

/// Checks what a rolled-forward removal left, removes what it kept on purpose, and checks that
/// nothing else is left.
fn rolled_forward(b: &Bench, opts: Options, installed: &Installed, empty: &State) {
    let now = b.state();
    let added = crate::harness::docroot_added(&now.snapshot, &empty.snapshot);
    if opts.app_files {
        // The attachment, its folder and the root as they were before the removal, the root
        // closed to the web server because it keeps files (issue 9).
        let expected: Vec<(String, u32, u32)> = installed
            .before
            .snapshot
            .docroot
            .iter()
            .filter(|(path, _, _)| installed.instance_files.contains(path))
            .map(|(path, mode, uid)| {
                let closed = if *path == installed.instance_files[0] {
                    mode & !0o077
                } else {
                    *mode
                };
                (path.clone(), closed, *uid)
            })
            .collect();
        assert_eq!(
            added, expected,
            "--files app keeps the instance's own files"
        );
        fs_err::remove_dir_all(b.w.docroot.join(&installed.instance_files[0])).unwrap();
    } else {
        assert_eq!(added, [], "--files all leaves no file");
    }
    let kept = kept_databases(b);
    if opts.keep_databases {
        assert_eq!(kept.len(), 1, "one kept database: {kept:?}");
        assert_eq!(kept[0]["name"], installed.database.as_str(), "{kept:?}");
        assert_eq!(kept[0]["login"], installed.login.as_str(), "{kept:?}");
        assert!(
            b.w.mysql.databases().contains(&installed.database),
            "the kept database {} is gone",
            installed.database
        );
        assert!(
            b.w.mysql.login_exists(&installed.login),
            "the kept login {} is gone",
            installed.login
        );
        b.w.apsctl(&["database", "drop", &kept[0]["id"].to_string()])
            .ok();
    } else {
        assert_eq!(kept, [] as [Value; 0], "no database is kept");
    }
    assert_same(&b.state(), empty, "nothing of the removed instance remains");
}

fn kept_databases(b: &Bench) -> Vec<Value> {
    let run = b.w.apsctl(&["--json", "database", "kept"]);
    run.ok();
    run.json()["databases"]
        .as_array()
        .expect("database kept lists databases")
        .clone()
}

/// Removes an instance on bench `n` with the store write of the commit point failing (`fail`,
/// not `crash`): the removal goes on, and nothing of the instance remains.
pub fn failed_commit_point(n: u32) -> Bench {
    let b = Bench::guestbook(n);
    let empty = b.state();
    let id = b.w.install(&b.reference, &[]);
    let fault = format!("journal-write@{COMMIT_POINT_WRITE}=fail");
    let run = b.w.apsctl_env(
        &["remove", &id, "--files", "all"],
        &[("APSCTL_TEST_FAULT", &fault)],
    );
    run.ok();
    assert!(
        run.stderr
            .contains("injected failure at fault point `journal-write`"),
        "the failure is reported as a warning: {}",
        run.stderr
    );
    assert_eq!(
        b.w.sql("SELECT outcome FROM operations WHERE kind = 'remove'"),
        ["rolled_forward"]
    );
    assert_same(
        &b.state(),
        &empty,
        "nothing of the removed instance remains",
    );
    b
}
