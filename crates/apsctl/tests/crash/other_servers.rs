//! Crashes while an install creates a PostgreSQL or an SQLite database: the notes example
//! (which runs on all three servers) installed with `--db-server pg` and `--db-server lite`.
//!
//! Invariant after `recover`: nothing of the install remains — in particular no PostgreSQL
//! database or role of the bench and no folder under `<home>/databases`.
//!
//! Main decision: three points per server, all inside or right after the database creation:
//! `db-create` (PostgreSQL: the role made, the database not yet; SQLite: the marker file
//! written, the database file not yet), the journal write that marks the creation done (made
//! completely, not known to be), and `after:database`.
#![expect(
    clippy::unwrap_used,
    reason = "test harness: a failed setup or inspection step is a failed test"
)]
use std::path::{Path, PathBuf};

use aps_test_support::PackageBuilder;

use crate::harness::{Bench, Point, State, Stop, assert_same};
use crate::world::World;

/// The notes example.
const NOTES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/notes");

/// The journal write that marks the database creation done: the operation (1), the private
/// folder (2, 3) and the record (4, 5) come first, then the creation is recorded (6) and, once
/// made, marked (7).
const DATABASE_MARKED: u32 = 7;

/// The operation's label in the harness output.
pub fn label(server: &str) -> String {
    format!("install --db-server {server}")
}

/// The servers and the kill points per server.
pub const SERVERS: [&str; 2] = ["pg", "lite"];

/// Runs the points on bench `n`; returns the bench and the number of points per server.
pub fn run(n: u32) -> (Bench, usize) {
    let w = World::new(n);
    let pg = crate::pg::Pg::from_ci_env(&w.dir, &w.db_base);
    w.apsctl(&[
        "db-server",
        "add",
        "pg",
        "--type",
        "postgresql",
        "--host",
        &pg.host,
        "--port",
        &pg.port,
        "--admin-user",
        &pg.user,
        "--admin-password-file",
        &pg.password_file.display().to_string(),
    ])
    .ok();
    w.apsctl(&["db-server", "add", "lite", "--type", "sqlite"])
        .ok();
    let zip = notes_package(&w);
    let reference = w.import(&zip);
    let mut b = Bench::around(w);
    b.pg = Some(pg);
    b.reference = reference;
    let baseline = b.state();
    let points = [
        Point::fault("db-create"),
        Point::fault(format!("journal-write@{DATABASE_MARKED}")),
        Point::after("database"),
    ];
    for server in SERVERS {
        let args: Vec<String> = [
            "--json",
            "install",
            &b.reference,
            "--site",
            &b.w.site,
            "--db-server",
            server,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        for point in &points {
            one(&mut b, &label(server), &args, &baseline, point);
        }
    }
    (b, points.len())
}

fn one(b: &mut Bench, op: &str, args: &[String], baseline: &State, point: &Point) {
    let stop = b.attempt(op, point, |b| {
        let stop = b.run(args, point);
        assert_eq!(stop, Stop::Died, "the install did not reach `{point}`");
        for op in b.recover() {
            assert_eq!(op["outcome"], "rolled_back", "{op}");
        }
        assert_same(&b.state(), baseline, "nothing of the install remains");
        stop
    });
    if stop.is_none() {
        b.restore_or_stop(|b| b.restore_to(baseline));
    }
}

/// The notes example with databases named after the bench (`gblN…`).
fn notes_package(w: &World) -> PathBuf {
    let example = Path::new(NOTES);
    let meta = fs_err::read_to_string(example.join("APP-META.xml"))
        .unwrap()
        .replace(
            "<db:default-name>notes</db:default-name>",
            &format!("<db:default-name>{}</db:default-name>", w.db_base),
        );
    let mut builder = PackageBuilder::new().app_meta(meta);
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in fs_err::read_dir(example.join(&rel)).unwrap() {
            let entry = entry.unwrap();
            let child = rel.join(entry.file_name());
            let text = child.display().to_string();
            if entry.file_type().unwrap().is_dir() {
                stack.push(child);
            } else if text != "APP-META.xml" && text != "APP-LIST.xml" {
                builder = builder.file(&text, fs_err::read(entry.path()).unwrap());
            }
        }
    }
    builder.write(&w.dir.join("notes-crash.app.zip")).unwrap()
}
