//! Standard output closed early or failing, and `--quiet` (issue 7: D17 and the quiet flag).
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::process::Stdio;

use crate::support::{World, hello_source};

/// Runs apsctl with `args` and `stdout` as its standard output; returns (exit status, stderr).
fn run_with_stdout(world: &World, args: &[&OsStr], stdout: Stdio) -> (Option<i32>, String) {
    let env = aps_ops::Env::from_process();
    let output = env
        .command(env!("CARGO_BIN_EXE_apsctl"))
        .arg("--home")
        .arg(world.home())
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .expect("apsctl runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A standard output whose reader is already gone, as for `apsctl … | head -3` once `head` has
/// read its lines: every write fails with EPIPE. (A connected socket whose peer was closed
/// behaves like a pipe without a reader, and needs no extra crate.)
fn closed_stdout() -> Stdio {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().expect("a socket pair");
    drop(ours);
    Stdio::from(OwnedFd::from(theirs))
}

/// D17: `apsctl … | head` must end like `cat` does: no panic, no message, its own exit status.
#[test]
fn issue_7_closed_stdout_ends_quietly() {
    let world = World::bare();
    let reference = world.import_hello(None);
    let lint_target = hello_source();
    let cases: [(Vec<&OsStr>, i32); 4] = [
        (
            vec![
                OsStr::new("package"),
                OsStr::new("show"),
                OsStr::new(&reference),
            ],
            0,
        ),
        (
            vec![
                OsStr::new("--json"),
                OsStr::new("package"),
                OsStr::new("show"),
                OsStr::new(&reference),
            ],
            0,
        ),
        (vec![OsStr::new("package"), OsStr::new("list")], 0),
        (
            vec![
                OsStr::new("package"),
                OsStr::new("lint"),
                lint_target.as_os_str(),
            ],
            0,
        ),
    ];
    for (args, expected) in cases {
        let (code, stderr) = run_with_stdout(&world, &args, closed_stdout());
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "apsctl {args:?} did not end quietly on a closed stdout:\n{stderr}"
        );
        assert_eq!(
            stderr.trim(),
            "",
            "apsctl {args:?} printed on stderr for a closed stdout"
        );
        assert_eq!(code, Some(expected), "apsctl {args:?}: {stderr}");
    }
}

/// Any other failure to write the result is an error with a sentence, not a panic.
#[test]
fn issue_7_unwritable_stdout_is_a_reported_error() {
    let world = World::bare();
    world.import_hello(None);
    let full = fs_err::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full");
    let (code, stderr) = run_with_stdout(
        &world,
        &[OsStr::new("package"), OsStr::new("list")],
        Stdio::from(std::fs::File::from(full)),
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(code, Some(70), "{stderr}");
    assert!(
        stderr.starts_with("error: cannot write the result to standard output"),
        "{stderr}"
    );
}

/// `--quiet` promises "no progress and no warnings": `package lint` shows errors only.
#[test]
fn issue_7_quiet_silences_lint_warnings() {
    let world = World::bare();
    let folder = hello_source();
    let folder = folder.to_str().expect("a UTF-8 path");
    // The source folder has no APP-LIST.xml yet: one warning.
    let loud = world.run(&["package", "lint", folder]).ok();
    assert!(loud.stdout.contains(": warning: "), "{loud}");
    for args in [
        ["-q", "package", "lint", folder],
        ["package", "lint", folder, "--quiet"],
    ] {
        let quiet = world.run(&args).ok();
        assert!(
            !quiet.stdout.contains("warning:") && !quiet.stderr.contains("warning"),
            "--quiet still shows warnings\n{quiet}"
        );
        assert!(
            quiet.stdout.contains("0 error(s), 1 warning(s)"),
            "the summary line is kept\n{quiet}"
        );
    }
    // Errors are still shown.
    let meta = world.dir.join("APP-META.xml");
    fs_err::write(&meta, "<application").unwrap();
    let broken = world.run(&[
        OsStr::new("-q"),
        OsStr::new("package"),
        OsStr::new("lint"),
        meta.as_os_str(),
    ]);
    assert_eq!(broken.code, Some(1), "{broken}");
    assert!(broken.stdout.contains(": error: "), "{broken}");
}
