//! A4: operation locks the tenant would like to hold. A tenant holding an instance's lock would
//! block every operation on it, and `recover` would take a crashed operation for a live one.
#![expect(
    clippy::unwrap_used,
    reason = "test: a failed setup step is a failed test"
)]
use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};

use crate::world::{Package, World, finish, show, spawn_python_as};

/// The tenant's holder: opens every path given (read-only, never blocking on a FIFO), `flock`s
/// what it opened, prints one JSON object `{path: outcome}` and holds everything until the stop
/// file (the first argument) exists.
const HOLDER: &str = r"
import fcntl, json, os, sys, time
stop, held, seen = sys.argv[1], [], {}
for p in sys.argv[2:]:
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        seen[p] = 'open: ' + os.strerror(e.errno)
        continue
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.append(fd)
        seen[p] = 'locked'
    except OSError as e:
        seen[p] = 'flock: ' + os.strerror(e.errno)
print(json.dumps(seen), flush=True)
while not os.path.exists(stop):
    time.sleep(0.05)
";

/// Every path below `dir` (folders too), as root sees them.
fn all_paths(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs_err::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let is_dir = fs_err::symlink_metadata(&path).unwrap().is_dir();
        out.push(path.clone());
        if is_dir {
            all_paths(&path, out);
        }
    }
}

/// A4: the tenant opens and `flock`s every file and folder of apsctl's home (each path handed to
/// it, plus where lock files are or used to be); the lock files themselves are refused to it, and
/// with everything else held an operation, a crashed operation's recovery, an install and a
/// removal all go through. (When the lock was `instances/<id>/lock`, mode 0644, the tenant held
/// it and every operation on the instance was refused as busy.)
#[test]
fn issue_7_a4_the_tenant_can_hold_no_lock_of_apsctl() {
    let world = World::new(4);
    let a = world.tenant("a");
    world.site(&a, "s");
    let reference = world.package(&Package {
        name: "plain",
        language: "sh",
        configure: "exit 0\n",
        sqlite: false,
    });
    let id = world.install(&reference, "s", "app");
    let instance_lock = world.home.join(format!("locks/instance-{id}.lock"));
    let site_lock = world.home.join("locks/site-s.lock");
    let mut paths = vec![
        world.home.clone(),
        instance_lock.clone(),
        site_lock.clone(),
        // Where the instance lock used to be (a file the tenant could open).
        world.private(&id).join("lock"),
    ];
    all_paths(&world.home, &mut paths);
    paths.sort();
    paths.dedup();
    let stop = world.dir.join("stop-holding");
    let mut args = vec![show(&stop)];
    args.extend(paths.iter().map(|p| show(p)));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut holder = spawn_python_as(&a, HOLDER, &args);
    let mut line = String::new();
    std::io::BufReader::new(holder.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let seen: BTreeMap<String, String> = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("the holder printed no report ({e}): {line}"));

    // Operations while the tenant holds all it could; a lock that is held makes them fail within
    // five seconds instead of waiting.
    let run = |args: &[&str], env: &[(&str, &str)]| {
        world.apsctl_env(&[&["--wait", "5"], args].concat(), env)
    };
    let configured = run(&["configure", &id, "--set", "title=held"], &[]);
    let crashed = run(
        &["configure", &id, "--set", "title=crashed"],
        &[("APSCTL_TEST_FAULT", "after:configure-configure=crash")],
    );
    let recovered = run(&["--json", "recover"], &[]);
    let installed = run(
        &["install", &reference, "--site", "s", "--path", "more"],
        &[],
    );
    let removed = run(&["remove", &id, "--files", "all"], &[]);
    fs_err::write(&stop, "").unwrap();
    finish(holder);

    configured.ok();
    assert_eq!(
        crashed.code, None,
        "the fault point did not crash apsctl\n{crashed}"
    );
    recovered.ok();
    let operations = recovered.json()["operations"].clone();
    let configure = operations
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "configure")
        .unwrap_or_else(|| panic!("the crashed configure was not recovered\n{recovered}"));
    assert_eq!(configure["outcome"], "rolled_back", "{recovered}");
    installed.ok();
    removed.ok();
    let locked: Vec<&String> = seen
        .iter()
        .filter(|(p, o)| o.as_str() == "locked" && p.contains("lock"))
        .map(|(p, _)| p)
        .collect();
    assert!(locked.is_empty(), "the tenant holds {locked:?}");
    for lock in [&instance_lock, &site_lock] {
        let outcome = seen.get(&show(lock)).map_or("(not tried)", String::as_str);
        assert_eq!(
            outcome,
            "open: Permission denied",
            "the tenant could open `{}`",
            show(lock)
        );
    }
}
