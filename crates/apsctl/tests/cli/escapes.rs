//! Untrusted text never reaches the terminal raw (issue 7, A7): script output in errors, tenant
//! file names in the removal's list and question, setting values in text and JSON.
#![expect(
    clippy::unwrap_used,
    reason = "test: a failed setup step is a failed test"
)]
use std::os::unix::fs::chown;
use std::path::Path;

use crate::support::{World, assert_inert, assert_no_forged_lines};

/// A configuration script that tries everything on the admin's terminal, then fails.
const HOSTILE_CONFIGURE: &str = r#"<?php
fwrite(STDERR, "clear\x1b[2J\x1b[H osc52\x1b]52;c;ZWNobyBwd25lZA==\x07 bidi\u{202e}exe.txt"
    . " csi\u{9b}31m del\x7f\rrewritten\n"
    . "error: forged by the package\nwarning: also forged\n");
exit(1);
"#;

/// File names a tenant's application could create in its instance folder.
const HOSTILE_NAMES: [&str; 4] = [
    "clear\x1b[2J",
    "a\nerror: forged by the tenant",
    "bidi\u{202e}exe.txt",
    "osc\x1b]52;c;cHduZWQ=\x07",
];

fn plant_hostile_files(world: &World, root: &Path) {
    let user = aps_host::user::SystemUser::lookup(&world.user).unwrap();
    for name in HOSTILE_NAMES {
        let path = root.join(name);
        fs_err::write(&path, "tenant data").unwrap();
        chown(&path, Some(user.uid()), Some(user.gid())).unwrap();
    }
}

#[test]
fn issue_7_script_output_cannot_drive_the_terminal() {
    let world = World::with_site(1);
    let reference = world.import_hello(Some(HOSTILE_CONFIGURE));
    let run = world
        .run(&[
            "install",
            &reference,
            "--site",
            "s",
            "--accept-license",
            "--set",
            "admin_password=correct-horse-1",
        ])
        .fails_with(6)
        .stderr_names(&["`configure install` exited with status 1"]);
    assert_inert("the install error", &run.stderr);
    assert_no_forged_lines("the install error", &run.stderr);
    // What was there is still visible, escaped.
    for shown in [
        r"clear\x1b[2J\x1b[H",
        r"\x1b]52;c;ZWNobyBwd25lZA==\x07",
        r"bidi\u{202e}exe.txt",
        r"csi\u{9b}31m",
        r"del\x7f\rrewritten",
        "error: forged by the package",
    ] {
        assert!(run.stderr.contains(shown), "`{shown}` is not shown\n{run}");
    }
}

#[test]
fn issue_7_removal_lists_tenant_file_names_escaped() {
    let world = World::with_site(2);
    let reference = world.import_hello(None);
    let id = world.install(&reference, &[]);
    plant_hostile_files(&world, &world.docroot.join("hello"));
    let run = world.run(&["remove", &id, "--files", "app"]).ok();
    assert_inert("the removal report", &run.stdout);
    assert_inert("the removal progress", &run.stderr);
    assert_no_forged_lines("the removal report", &run.stdout);
    for shown in [
        r"clear\x1b[2J",
        r"a\nerror: forged by the tenant",
        r"bidi\u{202e}exe.txt",
        r"osc\x1b]52;c;cHduZWQ=\x07",
    ] {
        assert!(
            run.stdout.contains(shown),
            "kept file `{shown}` is not listed\n{run}"
        );
    }
    // The files themselves are kept, under their real names.
    for name in HOSTILE_NAMES {
        assert!(world.docroot.join("hello").join(name).exists(), "{name:?}");
    }
}

/// The removal question lists the files it would keep; apsctl asks only on a terminal, which
/// `script(1)` provides.
#[test]
fn issue_7_removal_question_shows_file_names_escaped() {
    let world = World::with_site(3);
    let reference = world.import_hello(None);
    let id = world.install(&reference, &[]);
    plant_hostile_files(&world, &world.docroot.join("hello"));
    let command = format!(
        "'{}' --home '{}' remove {id}",
        env!("CARGO_BIN_EXE_apsctl"),
        world.home().display()
    );
    let out = assert_cmd::Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .env("NO_COLOR", "1")
        .env_remove("APSCTL_HOME")
        .write_stdin("p\n")
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .expect("script(1) runs");
    // The terminal turns every `\n` into `\r\n`; that is the terminal's doing, not apsctl's.
    let seen = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    assert_eq!(out.status.code(), Some(0), "{seen}");
    assert!(
        seen.contains("Files created or changed by the instance (4)"),
        "no question was asked:\n{seen}"
    );
    assert_inert("the removal question", &seen);
    assert_no_forged_lines("the removal question", &seen);
    assert!(seen.contains(r"clear\x1b[2J"), "{seen}");
    assert!(seen.contains(r"bidi\u{202e}exe.txt"), "{seen}");
    assert!(
        world.docroot.join("hello").join(HOSTILE_NAMES[1]).exists(),
        "the `p` answer keeps the tenant's files"
    );
}

#[test]
fn issue_7_setting_values_are_escaped_in_text_and_json() {
    let world = World::with_site(4);
    let reference = world.import_hello(None);
    let title = "T\u{202e}eltit \u{1b}[2J\u{7f}";
    let id = world.install(&reference, &["--set", &format!("title={title}")]);

    let text = world.run(&["instance", "show", &id]).ok();
    assert_inert("`instance show`", &text.stdout);
    assert!(
        text.stdout.contains(r"title = T\u{202e}eltit \x1b[2J\x7f"),
        "{text}"
    );

    // JSON: the same value, with the bidi override, DEL and ESC written as \u escapes.
    let json = world.run(&["--json", "instance", "show", &id]).ok();
    assert_inert("`instance show --json`", &json.stdout);
    assert!(json.stdout.contains(r"\u202e"), "{json}");
    assert_eq!(json.json()["settings"]["title"], title, "{json}");
}
