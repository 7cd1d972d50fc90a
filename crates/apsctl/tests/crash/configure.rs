//! Crashes inside a reconfiguration: every point changes the title to a new value.
//!
//! Invariant after `recover`: the instance is `ready`, works, and the title its front page
//! shows is the stored one (`instance show`), old or new — new when the run completed.
use crate::harness::{Bench, Point, Stop};

/// Journal writes of one reconfiguration: the operation, the script (recorded, marked), the
/// commit.
const JOURNAL_WRITES: usize = 4;

/// The operation's label in the harness output.
pub const LABEL: &str = "configure";

/// Runs every kill point of a reconfiguration on bench `n`; returns the bench and the number
/// of points that must have fired.
pub fn run(n: u32) -> (Bench, usize) {
    let mut b = Bench::guestbook(n);
    let id = b.w.install(&b.reference, &["--set", "title=Title 0"]);
    let mut points = vec![Point::after("configure-configure"), Point::after("commit")];
    points.extend(Point::scripts("configure"));
    let fixed = points.len();
    let mut k = 0;
    for point in &points {
        k += 1;
        one(&mut b, &id, k, point);
    }
    for n in 1..=40 {
        k += 1;
        let point = Point::fault(format!("journal-write@{n}"));
        if one(&mut b, &id, k, &point) == Some(Stop::Completed) {
            break;
        }
    }
    (b, fixed + JOURNAL_WRITES)
}

fn one(b: &mut Bench, id: &str, k: usize, point: &Point) -> Option<Stop> {
    let stop = b.attempt(LABEL, point, |b| {
        let old = b.w.show(id)["settings"]["title"]
            .as_str()
            .expect("a stored title")
            .to_owned();
        let new = format!("Title {k}");
        let args: Vec<String> = ["configure", id, "--set", &format!("title={new}")]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let stop = b.run(&args, point);
        let ops = b.recover();
        if stop == Stop::Completed {
            assert!(
                ops.is_empty(),
                "recover after a completed configure: {ops:?}"
            );
        }
        for op in &ops {
            assert_eq!(op["outcome"], "rolled_back", "{op}");
        }
        // `guestbook_works` checks that the page shows the stored title.
        let stored = b.guestbook_works(id);
        match stop {
            Stop::Completed => assert_eq!(stored, new, "a completed configure stores its value"),
            Stop::Died => assert!(
                stored == old || stored == new,
                "stored title `{stored}` is neither `{old}` nor `{new}`"
            ),
        }
        stop
    });
    if stop.is_none() {
        b.restore_or_stop(|b| {
            b.recover();
            b.guestbook_works(id);
        });
    }
    // How the run ended, also when a check failed: the enumerations stop at a completed run.
    b.last_stop()
}
