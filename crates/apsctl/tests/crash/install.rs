//! Crashes inside an install, for the three ways an instance root comes to be: a new nested
//! path (`a/b/c`: two parent folders and the root created), the site root of an empty document
//! root (`--path /`: the document root claimed), and an existing empty folder (claimed).
//!
//! Invariant after `recover`: either the instance is `ready` and works (then the harness
//! removes it), or nothing of it remains — the document root, the databases and logins, the
//! store's instance rows, the private folders and the operation journal are as before.
//!
//! Main decision: the `after:` points and the script kills are listed; `journal-write@N` runs
//! for N = 1, 2, … until an install completes without reaching N, so every store write of the
//! journal is a kill point, whatever their number. `deploy-file@N` runs the same way for the
//! nested path (N counts the scripts of the private copy first, see `harness.rs`); the other
//! placements take the first hit, the first and the last deployed file.
#![expect(
    clippy::unwrap_used,
    reason = "test harness: a failed setup or inspection step is a failed test"
)]
use std::os::unix::fs::PermissionsExt as _;

use crate::harness::{Bench, Point, State, Stop, assert_same};
use crate::world::World;

/// Every journaled step of an install, in order.
const STEPS: [&str; 8] = [
    "private-dir",
    "record",
    "database",
    "private-copy",
    "deploy",
    "configure-install",
    "open-access",
    "commit",
];

/// Files the private copy extracts (`configure`, `configure.real`, `lib.php`) before the
/// deploy passes `deploy-file`.
const PRIVATE_COPY_FILES: u32 = 3;
/// Files the guestbook deploys (`add.php`, `common.php`, `index.php`, `uploads/README.txt`).
const DEPLOYED_FILES: u32 = 4;

/// Where the instance goes.
#[derive(Debug, Clone, Copy)]
pub enum Placement {
    /// `--path a/b/c` on an empty document root.
    Nested,
    /// `--path /` on an empty document root.
    SiteRoot,
    /// `--path blog`, an existing empty folder (mode 0750) of the site's user.
    EmptyFolder,
}

impl Placement {
    fn path(self) -> &'static str {
        match self {
            Self::Nested => "a/b/c",
            Self::SiteRoot => "/",
            Self::EmptyFolder => "blog",
        }
    }

    /// The operation's label in the harness output.
    pub fn label(self) -> &'static str {
        match self {
            Self::Nested => "install --path a/b/c",
            Self::SiteRoot => "install --path /",
            Self::EmptyFolder => "install --path blog (existing empty folder)",
        }
    }

    /// Journal writes of one install: the operation, two per change (recorded, then marked),
    /// the commit. Changes: private folder, record, database, the folders of the root (the
    /// parents and the root for a new path, the claim of an existing folder), the script.
    fn journal_writes(self) -> u32 {
        let folders = match self {
            Self::Nested => 3,
            Self::SiteRoot | Self::EmptyFolder => 1,
        };
        1 + 2 * (3 + folders + 1) + 1
    }
}

/// The `deploy-file@N` points of the placements other than [`Placement::Nested`] (which runs
/// every N): the first hit (in the private copy), the first and the last deployed file.
const DEPLOY_FILE_POINTS: [u32; 3] = [
    1,
    PRIVATE_COPY_FILES + 1,
    PRIVATE_COPY_FILES + DEPLOYED_FILES,
];

/// Runs every kill point of an install at `placement` on bench `n`; returns the bench and the
/// number of points that must have fired.
pub fn run(n: u32, placement: Placement) -> (Bench, usize) {
    let mut b = Bench::guestbook(n);
    if let Placement::EmptyFolder = placement {
        let blog = b.w.docroot.join("blog");
        fs_err::create_dir(&blog).unwrap();
        World::run_tool(
            "chown",
            &[&format!("{}:", b.w.user), &blog.display().to_string()],
        );
        fs_err::set_permissions(&blog, std::fs::Permissions::from_mode(0o750)).unwrap();
    }
    let args =
        b.w.install_args(&b.reference, &["--path", placement.path()]);
    let baseline = b.state();
    let op = placement.label();

    let mut points: Vec<Point> = STEPS.iter().map(|s| Point::after(s)).collect();
    points.push(Point::fault("db-create"));
    points.extend(Point::scripts("install"));
    if !matches!(placement, Placement::Nested) {
        points.extend(
            DEPLOY_FILE_POINTS
                .iter()
                .map(|k| Point::fault(format!("deploy-file@{k}"))),
        );
    }
    for point in &points {
        one(&mut b, op, &args, &baseline, point);
    }
    let mut families = vec!["journal-write"];
    if let Placement::Nested = placement {
        families.push("deploy-file");
    }
    for family in families {
        for k in 1..=40 {
            let point = Point::fault(format!("{family}@{k}"));
            if one(&mut b, op, &args, &baseline, &point) == Some(Stop::Completed) {
                break;
            }
        }
    }
    let deploy_files = match placement {
        Placement::Nested => PRIVATE_COPY_FILES + DEPLOYED_FILES,
        _ => u32::try_from(DEPLOY_FILE_POINTS.len()).unwrap(),
    };
    let expected = STEPS.len() + 1 + 2 + (placement.journal_writes() + deploy_files) as usize;
    (b, expected)
}

/// One kill point: run, recover, check, restore.
fn one(b: &mut Bench, op: &str, args: &[String], baseline: &State, point: &Point) -> Option<Stop> {
    let stop = b.attempt(op, point, |b| {
        let stop = b.run(args, point);
        let ops = b.recover();
        let instances = b.instances();
        match instances.as_slice() {
            [] => {
                assert_eq!(stop, Stop::Died, "a completed install left no instance");
                for op in &ops {
                    assert_eq!(op["outcome"], "rolled_back", "{op}");
                }
                assert_same(&b.state(), baseline, "nothing of the install remains");
            }
            [instance] => {
                if stop == Stop::Completed {
                    assert!(ops.is_empty(), "recover after a completed install: {ops:?}");
                }
                let id = instance["instance"].as_str().expect("an id").to_owned();
                b.guestbook_works(&id);
                b.w.apsctl(&["remove", &id, "--files", "all"]).ok();
                assert_same(
                    &b.state(),
                    baseline,
                    "the removal of the installed instance",
                );
            }
            more => panic!("one install made {} instances: {more:?}", more.len()),
        }
        stop
    });
    if stop.is_none() {
        b.restore_or_stop(|b| b.restore_to(baseline));
    }
    // How the run ended, also when a check failed: the enumerations stop at a completed run.
    b.last_stop()
}
