//! `upgrade` of the guestbook (real PHP, real MariaDB, a real site user): the data and the
//! owner's files carried over, D10 for the application files, `configure upgrade <old-version>
//! <old-release>`, and the automatic rollback after a failing script and after a crash.
use std::path::{Path, PathBuf};

use crate::gb::{Snapshot, Variant, World};

/// The guestbook example copied into `into`, with `extra` files added (archive path, content)
/// and `without` files left out.
fn example(into: &Path, extra: &[(&str, &str)], without: &[&str]) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/guestbook");
    World::run_tool(
        "cp",
        &[
            "-a",
            &source.display().to_string(),
            &into.display().to_string(),
        ],
    );
    for (rel, content) in extra {
        fs_err::write(into.join(rel), content).unwrap();
    }
    for rel in without {
        fs_err::remove_file(into.join(rel)).unwrap();
    }
    into.to_path_buf()
}

/// Version 1.1.0 with an upgrade rule from anything older, and `wrapper` as its configure
/// script (around the real one).
fn version_1_1(w: &World, dir: &Path, wrapper: &str) -> String {
    let edits = [
        ("<version>1.0.0</version>", "<version>1.1.0</version>"),
        (
            "  <service id=\"guestbook\">",
            "  <upgrade match=\"/application/version &lt; '1.1.0'\"/>\n  <service id=\"guestbook\">",
        ),
    ];
    let zip = w.package_from(
        dir,
        "guestbook",
        &Variant {
            release: "1",
            wrapper: Some(wrapper),
            meta_edits: &edits,
        },
    );
    let moved = w.dir.join("guestbook-1.1.0.app.zip");
    fs_err::rename(&zip, &moved).unwrap();
    w.import(&moved)
}

/// A wrapper that records how it was called, then runs the real script.
const RECORDING: &str = r#"<?php
file_put_contents(getenv('WEB___DIR') . '/calls.txt', implode(' ', array_slice($argv, 1)) . "\n", FILE_APPEND);
require __DIR__ . '/configure.real';
"#;

/// A wrapper whose `upgrade` writes to the database, then fails.
const FAILING: &str = r#"<?php
if (($argv[1] ?? '') === 'upgrade') {
    require __DIR__ . '/lib.php';
    $db = gb_db_settings();
    $pdo = gb_connect($db);
    $pdo->exec("INSERT INTO `" . $db['prefix'] . "entries` (created_at, message) VALUES (NOW(), 'written by the failed upgrade')");
    $pdo->exec("CREATE TABLE made_by_the_failed_upgrade (x INT)");
    file_put_contents(getenv('WEB___DIR') . '/index.php', "<?php echo 'broken';");
    fwrite(STDERR, "the new version refuses to start\n");
    exit(1);
}
require __DIR__ . '/configure.real';
"#;

/// Installs 1.0.0 (with a stale file and one the owner will change, both absent from 1.1.0),
/// signs it, and has the owner change an application file and add a file of its own.
fn installed(w: &World) -> (String, PathBuf) {
    let v1_dir = example(
        &w.dir.join("v1"),
        &[
            ("htdocs/stale.txt", "stale\n"),
            ("htdocs/changed-stale.txt", "as shipped\n"),
        ],
        &[],
    );
    let zip = w.package_from(&v1_dir, "guestbook", &Variant::default());
    let v1 = w.import(&zip);
    let id = w.install(&v1, &[]);
    let root = w.root(&id);
    w.php_as_site_user(&root, &["add.php", "written before the upgrade"])
        .ok();
    let as_owner = |rel: &str, text: &str| {
        World::run_tool(
            "runuser",
            &[
                "-u",
                &w.user,
                "--",
                "sh",
                "-c",
                &format!("printf '{text}' > '{}'", root.join(rel).display()),
            ],
        );
    };
    as_owner("changed-stale.txt", "changed by the owner\\n");
    as_owner("common.php.note", "the owner file\\n");
    (id, root)
}

/// The front page as the site's PHP renders it.
fn front_page(w: &World, root: &Path) -> String {
    let run = w.php_as_site_user(root, &["index.php"]);
    run.ok();
    run.stdout.clone()
}

/// Issue 10: 1.0.0 → 1.1.0 keeps the database rows and the owner's files, deletes the stale
/// unchanged file, keeps the changed one, places the new one, and calls
/// `configure upgrade 1.0.0 1`; a patch of 1.1.0 is found only after the upgrade.
#[test]
fn issue_10_upgrade_keeps_data_and_owner_files_and_calls_configure_upgrade() {
    let w = World::in_area("upg", "gbu", 1);
    let (id, root) = installed(&w);
    let v2_dir = example(
        &w.dir.join("v2"),
        &[("htdocs/new.txt", "new in 1.1.0\n")],
        &[],
    );
    let v2 = version_1_1(&w, &v2_dir, RECORDING);
    // A patch of 1.1.0, which 1.0.0 does not match.
    let patch_edits = [
        ("<version>1.0.0</version>", "<version>1.1.0</version>"),
        (
            "  <service id=\"guestbook\">",
            "  <patch match=\"/application/version = '1.1.0'\"/>\n  <service id=\"guestbook\">",
        ),
    ];
    let patch = w.import(&w.package_from(
        &v2_dir,
        "guestbook",
        &Variant {
            release: "2",
            wrapper: None,
            meta_edits: &patch_edits,
        },
    ));
    let updates = |w: &World| {
        let run = w.apsctl(&["--json", "instance", "updates", &id]);
        run.ok();
        run.json()["updates"].clone()
    };
    let before: Vec<String> = updates(&w)
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["package"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        before,
        std::slice::from_ref(&v2),
        "only the upgrade applies to 1.0.0"
    );

    let run = w.apsctl(&["--json", "upgrade", &id, "--to", &v2, "--accept-license"]);
    run.ok();
    let report = run.json();
    assert_eq!(report["kind"], "upgrade");
    assert_eq!(report["from"]["version"], "1.0.0");
    assert_eq!(report["to"]["version"], "1.1.0");
    assert_eq!(w.show(&id)["package"]["version"], "1.1.0");
    // Data and the owner's files.
    let page = front_page(&w, &root);
    assert!(page.contains("written before the upgrade"), "{page}");
    assert_eq!(
        fs_err::read_to_string(root.join("common.php.note")).unwrap(),
        "the owner file\n"
    );
    // D10.
    assert!(
        !root.join("stale.txt").exists(),
        "the stale unchanged file was kept"
    );
    assert_eq!(
        fs_err::read_to_string(root.join("changed-stale.txt")).unwrap(),
        "changed by the owner\n"
    );
    assert_eq!(
        fs_err::read_to_string(root.join("new.txt")).unwrap(),
        "new in 1.1.0\n"
    );
    let kept = report["kept_files"].to_string();
    assert!(kept.contains("changed-stale.txt"), "{kept}");
    // D8: from the new scripts, with the old version and release.
    assert_eq!(
        fs_err::read_to_string(root.join("calls.txt")).unwrap(),
        "upgrade 1.0.0 1\n"
    );
    // Now the patch of 1.1.0 is offered.
    let after: Vec<String> = updates(&w)
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["package"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(after, [patch]);
}

/// A failing `configure upgrade` that had already written to the database and to the files:
/// after it, the old version runs with the database and files as before, and the user sees the
/// script's own message.
#[test]
fn issue_10_a_failing_upgrade_script_is_rolled_back_completely() {
    let w = World::in_area("upg", "gbu", 2);
    let (id, root) = installed(&w);
    let v2 = version_1_1(&w, &example(&w.dir.join("v2"), &[], &[]), FAILING);
    let before: Snapshot = w.snapshot();
    let page_before = front_page(&w, &root);
    let db = w.show(&id)["databases"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let tables = |w: &World| {
        w.mysql.query(&format!(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = '{db}' ORDER BY 1"
        ))
    };
    let entries = |w: &World| {
        w.mysql
            .query(&format!("SELECT message FROM `{db}`.`entries` ORDER BY id"))
    };
    let tables_before = tables(&w);
    let entries_before = entries(&w);
    let run = w.apsctl(&["upgrade", &id, "--to", &v2, "--accept-license"]);
    assert_ne!(run.code, Some(0), "{run:?}");
    assert!(
        run.stderr.contains("the new version refuses to start"),
        "{run:?}"
    );
    assert!(run.stderr.contains("back on"), "{run:?}");
    assert_eq!(w.snapshot(), before, "the instance is not as it was");
    assert_eq!(front_page(&w, &root), page_before);
    assert_eq!(tables(&w), tables_before);
    assert_eq!(entries(&w), entries_before);
    assert_eq!(w.show(&id)["package"]["version"], "1.0.0");
    assert!(!front_page(&w, &root).contains("failed upgrade"));
}

/// A crash at every step of an upgrade (and inside its file deployment and between two of its
/// store writes), each followed by `recover`: every time the old version, working, exactly as
/// before, and nothing left in staging.
#[test]
fn issue_10_a_crashed_upgrade_is_rolled_back_by_recover() {
    let w = World::in_area("upg", "gbu", 3);
    let (id, root) = installed(&w);
    let v2 = version_1_1(&w, &example(&w.dir.join("v2"), &[], &[]), RECORDING);
    let before = w.snapshot();
    let page_before = front_page(&w, &root);
    for fault in [
        "after:upgrade-data",
        "after:private-copy",
        "deploy-file@3",
        "after:files",
        "after:hand-over",
        "after:configure-upgrade",
        "after:open",
        "journal-write@12",
    ] {
        let run = w.apsctl_env(
            &["upgrade", &id, "--to", &v2, "--accept-license"],
            &[("APSCTL_TEST_FAULT", &format!("{fault}=crash"))],
        );
        assert_eq!(run.code, None, "apsctl did not stop at {fault}\n{run:?}");
        w.apsctl(&["recover"]).ok();
        let staging: Vec<_> = fs_err::read_dir(w.home.join("staging"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(staging.is_empty(), "{fault}: left in staging: {staging:?}");
        assert_eq!(w.snapshot(), before, "after a crash at {fault} and recover");
        assert_eq!(front_page(&w, &root), page_before, "{fault}");
        assert_eq!(w.show(&id)["package"]["version"], "1.0.0", "{fault}");
    }
    // And then the upgrade goes through.
    w.apsctl(&["upgrade", &id, "--to", &v2, "--accept-license"])
        .ok();
    assert_eq!(w.show(&id)["package"]["version"], "1.1.0");
}

/// A patch wrapper whose `upgrade` fails (after writing to the database) for the instance at
/// path `bad` only.
const FAILS_FOR_BAD: &str = r#"<?php
if (($argv[1] ?? '') === 'upgrade' && basename(getenv('WEB___DIR')) === 'bad') {
    require __DIR__ . '/lib.php';
    $db = gb_db_settings();
    gb_connect($db)->exec("INSERT INTO `" . $db['prefix'] . "entries` (created_at, message) VALUES (NOW(), 'written by the failed patch')");
    fwrite(STDERR, "this instance cannot take the patch\n");
    exit(1);
}
require __DIR__ . '/configure.real';
"#;

/// Issue 10: `upgrade --all --patches-only` over three instances where one fails: `--dry-run`
/// changes nothing; then the other two are patched, the failed one is back on its old version
/// with its database as before, and the report (and the exit status) says so.
#[test]
fn issue_10_upgrade_all_patches_the_fleet_and_rolls_back_the_one_that_fails() {
    let w = World::in_area("upg", "gbu", 4);
    let v1 = w.import(&w.package_from(
        &example(&w.dir.join("v1"), &[], &[]),
        "guestbook",
        &Variant::default(),
    ));
    let ids: Vec<String> = ["one", "bad", "two"]
        .iter()
        .map(|path| w.install(&v1, &["--path", path]))
        .collect();
    let edits = [(
        "  <service id=\"guestbook\">",
        "  <patch match=\"/application/version = '1.0.0'\" recommended=\"true\"/>\n  <service id=\"guestbook\">",
    )];
    let patch = w.import(&w.package_from(
        &example(&w.dir.join("v1p"), &[], &[]),
        "guestbook",
        &Variant {
            release: "2",
            wrapper: Some(FAILS_FOR_BAD),
            meta_edits: &edits,
        },
    ));
    let release = |id: &str| {
        w.show(id)["package"]["release"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    let run = w.apsctl(&["--json", "upgrade", "--all", "--patches-only", "--dry-run"]);
    run.ok();
    assert_eq!(
        run.json()["updated"].as_array().unwrap().len(),
        3,
        "{run:?}"
    );
    assert!(ids.iter().all(|id| release(id) == "1"));

    let bad_root = w.root(&ids[1]);
    let page_before = front_page(&w, &bad_root);
    let run = w.apsctl(&["--json", "upgrade", "--all", "--patches-only"]);
    assert_eq!(run.code, Some(6), "{run:?}");
    let report = run.json();
    let instances = |key: &str| -> Vec<String> {
        report[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["instance"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(instances("updated"), [ids[0].clone(), ids[2].clone()]);
    assert_eq!(instances("rolled_back"), [ids[1].clone()]);
    let reason = report["rolled_back"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("this instance cannot take the patch"),
        "{reason}"
    );
    assert_eq!(report["updated"][0]["package"], patch.as_str());
    assert_eq!(release(&ids[0]), "2");
    assert_eq!(release(&ids[2]), "2");
    assert_eq!(release(&ids[1]), "1");
    let page = front_page(&w, &bad_root);
    assert_eq!(page, page_before);
    assert!(!page.contains("failed patch"), "{page}");
}

/// A package that says it is a patch but adds a setting without a default is not applied as a
/// patch (§11 Q25), naming why; an upgrade whose licence is not accepted is refused; a package
/// whose rule does not hold is refused. None of them changes anything.
#[test]
fn issue_10_invalid_patches_and_unaccepted_licences_are_refused() {
    let w = World::in_area("upg", "gbu", 5);
    let v1 = w.import(&w.package_from(
        &example(&w.dir.join("v1"), &[], &[]),
        "guestbook",
        &Variant::default(),
    ));
    let id = w.install(&v1, &[]);
    let bad_patch_edits = [
        (
            "  <service id=\"guestbook\">",
            "  <patch match=\"/application/version = '1.0.0'\"/>\n  <service id=\"guestbook\">",
        ),
        (
            "    <settings>",
            "    <settings>\n      <setting id=\"motto\" type=\"string\"><name>Motto</name></setting>",
        ),
    ];
    let bad_patch = w.import(&w.package_from(
        &example(&w.dir.join("p"), &[], &[]),
        "guestbook",
        &Variant {
            release: "2",
            wrapper: None,
            meta_edits: &bad_patch_edits,
        },
    ));
    let v2 = version_1_1(&w, &example(&w.dir.join("v2"), &[], &[]), RECORDING);
    let before = w.snapshot();
    for (args, expected) in [
        (
            vec!["upgrade", &id, "--to", &bad_patch],
            "adds setting `motto` without a default",
        ),
        (vec!["upgrade", &id, "--to", &v2], "--accept-license"),
        (vec!["upgrade", &id, "--to", &v1], "not newer"),
    ] {
        let run = w.apsctl(&args);
        assert_eq!(run.code, Some(2), "{args:?}: {run:?}");
        assert!(run.stderr.contains(expected), "{args:?}: {run:?}");
        assert_eq!(w.snapshot(), before, "{args:?} changed something");
    }
}

/// Review findings: a failed upgrade that had created a database for a new `db:id` leaves
/// neither the database nor its record (a later backup and upgrade still work), and an owner's
/// `.before-upgrade` file is never overwritten.
#[test]
fn issue_10_a_failed_upgrade_forgets_its_new_database_and_keeps_aside_copies() {
    let w = World::in_area("upg", "gbu", 6);
    let (id, root) = installed(&w);
    let edits = [
        ("<version>1.0.0</version>", "<version>1.1.0</version>"),
        (
            "  <service id=\"guestbook\">",
            "  <upgrade match=\"/application/version &lt; '1.1.0'\"/>\n  <service id=\"guestbook\">",
        ),
        (
            "      </db:db>\n    </requirements>",
            "      </db:db>\n      <db:db><db:id>extra</db:id><db:default-name>gbu6x</db:default-name><db:server-type>mysql</db:server-type></db:db>\n    </requirements>",
        ),
    ];
    let zip = w.package_from(
        &example(&w.dir.join("v2"), &[], &[]),
        "guestbook",
        &Variant {
            release: "1",
            wrapper: Some(FAILING),
            meta_edits: &edits,
        },
    );
    let moved = w.dir.join("guestbook-1.1.0-extra.app.zip");
    fs_err::rename(&zip, &moved).unwrap();
    let v2 = w.import(&moved);
    let before = w.snapshot();
    let run = w.apsctl(&["upgrade", &id, "--to", &v2, "--accept-license"]);
    assert_ne!(run.code, Some(0), "{run:?}");
    assert_eq!(
        w.snapshot(),
        before,
        "the new database or its record is left over"
    );
    let dbs = w.show(&id)["databases"].as_array().unwrap().len();
    assert_eq!(dbs, 1);
    w.apsctl(&[
        "backup",
        &id,
        "--to",
        &w.dir.join("after.tar.zst").display().to_string(),
    ])
    .ok();

    // An owner's aside copy of an earlier upgrade is kept, the new one gets another name.
    fs_err::write(root.join("common.php.before-upgrade"), "precious\n").unwrap();
    World::run_tool(
        "chown",
        &[
            &w.user,
            &root.join("common.php.before-upgrade").display().to_string(),
        ],
    );
    World::run_tool(
        "runuser",
        &[
            "-u",
            &w.user,
            "--",
            "sh",
            "-c",
            &format!(
                "echo '// changed' >> '{}'",
                root.join("common.php").display()
            ),
        ],
    );
    let v3_edits = [
        ("<version>1.0.0</version>", "<version>1.1.0</version>"),
        (
            "  <service id=\"guestbook\">",
            "  <upgrade match=\"/application/version &lt; '1.1.0'\"/>\n  <service id=\"guestbook\">",
        ),
    ];
    let v3 = w.import(&w.package_from(
        &example(&w.dir.join("v3"), &[], &[]),
        "guestbook",
        &Variant {
            release: "2",
            wrapper: Some(RECORDING),
            meta_edits: &v3_edits,
        },
    ));
    w.apsctl(&["upgrade", &id, "--to", &v3, "--accept-license"])
        .ok();
    assert_eq!(
        fs_err::read_to_string(root.join("common.php.before-upgrade")).unwrap(),
        "precious\n"
    );
    let aside = fs_err::read_to_string(root.join("common.php.before-upgrade-2")).unwrap();
    assert!(aside.contains("// changed"), "{aside}");
}
