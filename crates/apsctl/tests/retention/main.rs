//! Data retention (issue 8) end to end: backup, `backup verify`, restore over an instance and
//! into a new place, migration, rotation, schedules, and the failure exits of the backup scenario
//! (`../shared/seeds/000_ecab05694b04d6af.txt`), each driven through the real `apsctl` binary
//! against the real MariaDB server and the real `php` CLI, with real system users.
//!
//! Main decision: the tests reuse the lifecycle area's [`World`] (user `apsctl-ret-N`, site,
//! home, database names `gbrN_…`) and check results where they land: the application's front
//! page rendered by PHP as the site user (an entry written before the backup must be shown again
//! after a restore), the database server, the archive itself read with `zstd -dc | tar -x`, and
//! the folders a failed backup must leave untouched.
//!
//! Known gaps: PostgreSQL and SQLite instances and packages with a backup script are not
//! exercised here (the streaming dumps of every server type are tested in `aps-host`).
#![expect(
    clippy::unwrap_used,
    reason = "test code: a failed setup or inspection step is a failed test"
)]

#[path = "../lifecycle/world.rs"]
#[expect(
    dead_code,
    reason = "the lifecycle area's fixture; this area uses part of it"
)]
mod world;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use serde_json::Value;
use world::{Variant, World};

/// Exit statuses of CLI.md / `output::exit_code_for`.
const INVALID: i32 = 2;
const NOT_FOUND: i32 = 3;
const FAILED: i32 = 6;

fn world(n: u32) -> World {
    World::in_area("ret", "gbr", n)
}

/// A world with the guestbook installed; returns it, the package reference and the instance id.
fn installed(n: u32) -> (World, String, String) {
    let w = world(n);
    let reference = w.import(&w.variant_package(&Variant::default()));
    let id = w.install(&reference, &[]);
    (w, reference, id)
}

/// The front page as the site's PHP renders it.
#[track_caller]
fn front_page(w: &World, root: &Path) -> String {
    let run = w.php_as_site_user(root, &["index.php"]);
    run.ok();
    run.stdout.clone()
}

/// Signs the guestbook with `text`, as the application does.
fn sign(w: &World, root: &Path, text: &str) {
    w.php_as_site_user(root, &["add.php", text]).ok();
}

/// The instance's database name.
fn database_of(w: &World, id: &str) -> String {
    w.show(id)["databases"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A folder of the test's own (outside every web root), empty.
fn folder(w: &World, name: &str) -> PathBuf {
    let dir = w.dir.join(name);
    fs_err::create_dir_all(&dir).unwrap();
    dir
}

/// The names in a folder.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs_err::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Unpacks an archive the way a person without apsctl would.
fn unpack(archive: &Path, into: &Path) {
    fs_err::create_dir_all(into).unwrap();
    World::run_tool(
        "sh",
        &[
            "-c",
            &format!(
                "zstd -q -dc '{}' | tar -x -C '{}'",
                archive.display(),
                into.display()
            ),
        ],
    );
}

/// Packs a folder back into a `.tar.zst`, in the order apsctl writes (manifest last).
fn repack(from: &Path, archive: &Path) {
    World::run_tool(
        "sh",
        &[
            "-c",
            &format!(
                "cd '{}' && tar -cf - $(ls -d files resources script 2>/dev/null) manifest.json | zstd -q -f -o '{}'",
                from.display(),
                archive.display()
            ),
        ],
    );
}

/// Issue 8: backup, damage (rows deleted, an application file deleted), restore over the
/// instance: the application shows its data again, under the same instance id.
#[test]
fn issue_8_a_damaged_instance_is_restored_from_its_backup() {
    let (w, _, id) = installed(1);
    let root = w.root(&id);
    sign(&w, &root, "Written before the backup");
    assert!(front_page(&w, &root).contains("Written before the backup"));
    let out = folder(&w, "backups");
    let archive = out.join("b.tar.zst");
    let run = w.apsctl(&[
        "--json",
        "backup",
        &id,
        "--to",
        &archive.display().to_string(),
    ]);
    run.ok();
    let report = run.json();
    assert_eq!(report["backup"], archive.display().to_string());
    assert!(report["bytes"].as_u64().unwrap() > 0);
    let mode = fs_err::metadata(&archive).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "archives are secret material");

    // A person without apsctl can read it.
    let plain = w.dir.join("plain");
    unpack(&archive, &plain);
    assert!(plain.join("files/index.php").is_file());
    assert!(plain.join("manifest.json").is_file());
    let dumps: Vec<String> = names(&plain.join("resources/db"));
    assert!(
        dumps.iter().any(|d| d.starts_with("main.sql.")),
        "{dumps:?}"
    );
    let manifest: Value =
        serde_json::from_slice(&fs_err::read(plain.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"], "apsctl-backup/1");
    assert_eq!(manifest["instance"]["id"], id.as_str());
    // The database password apsctl keeps is never in the manifest.
    let password = World::run_tool(
        "php",
        &[
            "-r",
            "$c = require $argv[1]; echo $c['db']['password'];",
            &root.join("config.php").display().to_string(),
        ],
    );
    assert!(password.len() >= 8);
    assert!(
        !fs_err::read_to_string(plain.join("manifest.json"))
            .unwrap()
            .contains(&password)
    );

    // Damage: every row deleted, an application file deleted.
    let db = database_of(&w, &id);
    for table in w.mysql.query(&format!("SHOW TABLES FROM `{db}`")) {
        w.mysql.query(&format!("DELETE FROM `{db}`.`{table}`"));
    }
    fs_err::remove_file(root.join("add.php")).unwrap();
    assert!(!front_page(&w, &root).contains("Written before the backup"));

    w.apsctl(&["restore", &id, "--from", &archive.display().to_string()])
        .ok();
    let root = w.root(&id);
    assert!(root.join("add.php").is_file(), "the deleted file is back");
    assert!(
        front_page(&w, &root).contains("Written before the backup"),
        "the deleted rows are back"
    );
    w.adopt(&id);
    // The safety backup of the replaced instance is gone once the restore succeeded.
    assert!(names(&w.home.join("staging")).is_empty());
    w.finish();
}

/// Issue 8: a restore into a new site and path, and a migration: the application runs at its new
/// URL with its own database; the migrated instance's old place is gone; `--keep-source` keeps it.
#[test]
fn issue_8_restores_and_migrations_make_working_instances_elsewhere() {
    let (w, _, id) = installed(2);
    let root = w.root(&id);
    sign(&w, &root, "Travelling entry");
    let other = w.dir.join("www2");
    fs_err::create_dir(&other).unwrap();
    World::run_tool(
        "chown",
        &[&format!("{}:", w.user), &other.display().to_string()],
    );
    w.apsctl(&[
        "site",
        "add",
        "other",
        "--docroot",
        &other.display().to_string(),
        "--url",
        "https://other.example/",
        "--user",
        &w.user,
    ])
    .ok();
    let archive = folder(&w, "backups").join("b.tar.zst");
    w.apsctl(&["backup", &id, "--to", &archive.display().to_string()])
        .ok();

    // Into a new instance.
    let run = w.apsctl(&[
        "--json",
        "restore",
        "--from",
        &archive.display().to_string(),
        "--site",
        "other",
        "--path",
        "copy",
    ]);
    run.ok();
    let copy = run.json()["instance"].as_str().unwrap().to_owned();
    w.adopt(&copy);
    assert_ne!(copy, id);
    let show = w.show(&copy);
    assert_eq!(show["url"], "https://other.example/copy/");
    let copy_db = database_of(&w, &copy);
    assert_ne!(copy_db, database_of(&w, &id), "a database of its own");
    let copy_root = other.join("copy");
    assert!(front_page(&w, &copy_root).contains("Travelling entry"));
    let config = fs_err::read_to_string(copy_root.join("config.php")).unwrap();
    assert!(
        config.contains(&copy_db),
        "configure configure gave it its database"
    );

    // Migration, keeping the source.
    let run = w.apsctl(&[
        "--json",
        "migrate",
        &id,
        "--site",
        "other",
        "--path",
        "kept",
        "--keep-source",
    ]);
    run.ok();
    let kept = run.json()["instance"].as_str().unwrap().to_owned();
    w.adopt(&kept);
    assert_eq!(run.json()["source_removed"], false);
    assert!(front_page(&w, &root).contains("Travelling entry"));
    assert!(front_page(&w, &other.join("kept")).contains("Travelling entry"));

    // Migration: the old place is gone.
    let old_db = database_of(&w, &id);
    let run = w.apsctl(&[
        "--json", "migrate", &id, "--site", "other", "--path", "moved",
    ]);
    run.ok();
    let moved = run.json()["instance"].as_str().unwrap().to_owned();
    w.adopt(&moved);
    assert_eq!(run.json()["source_removed"], true);
    assert!(front_page(&w, &other.join("moved")).contains("Travelling entry"));
    assert!(!root.exists(), "the old files are gone");
    assert!(
        !w.mysql.databases().contains(&old_db),
        "the old database is gone"
    );
    w.apsctl(&["instance", "show", &id]).fails_with(NOT_FOUND);
    assert!(names(&w.home.join("staging")).is_empty(), "no archive left");
    w.finish();
}

/// Issue 8, the seed's failure exits: an unwritable destination is refused before any work, a
/// dump that fails stops the backup; neither leaves a destination file or a temporary file.
#[test]
fn issue_8_failed_backups_leave_no_file_behind() {
    let (w, _, id) = installed(3);
    let out = folder(&w, "backups");
    let tmp = w.home.join("instances").join(&id).join("tmp");
    let leftovers = |w: &World| (names(&out), names(&tmp), names(&w.home.join("staging")));
    let before = leftovers(&w);
    // A missing folder.
    let missing = w.dir.join("no-such-folder/b.tar.zst");
    let run = w.apsctl(&["backup", &id, "--to", &missing.display().to_string()]);
    run.fails_with(INVALID);
    assert!(run.stderr.contains("no-such-folder"), "{}", run.stderr);
    // A folder inside a site's document root, where visitors could download the archive.
    let inside = w.root(&id).join("b.tar.zst");
    let run = w.apsctl(&["backup", &id, "--to", &inside.display().to_string()]);
    run.fails_with(INVALID);
    assert!(run.stderr.contains("document root"), "{}", run.stderr);
    assert!(!inside.exists());
    // A dump that fails: the database is gone behind apsctl's back.
    let db = database_of(&w, &id);
    w.mysql.query(&format!("DROP DATABASE `{db}`"));
    let run = w.apsctl(&["backup", &id, "--to-dir", &out.display().to_string()]);
    run.fails_with(FAILED);
    assert!(
        run.stderr.contains(&db),
        "the error names the database: {}",
        run.stderr
    );
    assert_eq!(
        leftovers(&w),
        before,
        "no destination and no temporary file"
    );
    assert_eq!(
        w.sql("SELECT outcome FROM operations WHERE kind = 'backup'"),
        ["rolled_back"]
    );
    w.finish();
}

/// Issue 8: `--to-dir DIR --keep N` keeps the newest N backups of this instance only, and
/// `backup verify` passes a sound archive and names what is wrong in a tampered one.
#[test]
fn issue_8_rotation_and_verification() {
    let (w, _, id) = installed(4);
    let out = folder(&w, "backups");
    fs_err::write(
        out.join("apsctl-instance-99-20260101T000000000Z.tar.zst"),
        "other",
    )
    .unwrap();
    fs_err::write(out.join("notes.txt"), "mine").unwrap();
    let mut made = Vec::new();
    for _ in 0..3 {
        let run = w.apsctl(&[
            "--json",
            "backup",
            &id,
            "--to-dir",
            &out.display().to_string(),
            "--keep",
            "2",
        ]);
        run.ok();
        made.push(run.json()["backup"].as_str().unwrap().to_owned());
        // Names carry the time in milliseconds: keep them apart.
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let left = names(&out);
    assert_eq!(left.len(), 4, "{left:?}");
    assert!(!Path::new(&made[0]).exists(), "the oldest went");
    assert!(Path::new(&made[1]).exists() && Path::new(&made[2]).exists());
    assert!(left.contains(&"notes.txt".to_owned()));
    assert!(left.contains(&"apsctl-instance-99-20260101T000000000Z.tar.zst".to_owned()));

    let sound = PathBuf::from(&made[2]);
    w.apsctl(&["backup", "verify", &sound.display().to_string()])
        .ok();
    // A byte changed in a file.
    let plain = w.dir.join("tampered");
    unpack(&sound, &plain);
    let index = plain.join("files/index.php");
    let mut bytes = fs_err::read(&index).unwrap();
    bytes[0] ^= 0x20;
    fs_err::write(&index, bytes).unwrap();
    let tampered = w.dir.join("tampered.tar.zst");
    repack(&plain, &tampered);
    let run = w.apsctl(&["backup", "verify", &tampered.display().to_string()]);
    run.fails_with(INVALID);
    assert!(run.stderr.contains("files/index.php"), "{}", run.stderr);
    // A format from a newer apsctl.
    let manifest = plain.join("manifest.json");
    let text = fs_err::read_to_string(&manifest)
        .unwrap()
        .replace("apsctl-backup/1", "apsctl-backup/99");
    fs_err::write(&manifest, text).unwrap();
    let newer = w.dir.join("newer.tar.zst");
    repack(&plain, &newer);
    let run = w.apsctl(&["backup", "verify", &newer.display().to_string()]);
    run.fails_with(INVALID);
    assert!(run.stderr.contains("version 99"), "{}", run.stderr);
    // A restore refuses a tampered archive before any change.
    let before = w.snapshot();
    w.apsctl(&["restore", &id, "--from", &tampered.display().to_string()])
        .fails_with(INVALID);
    assert_eq!(w.snapshot(), before);
    w.finish();
}

/// Issue 8: periodic backups for panels without a scheduler of their own.
#[test]
fn issue_8_schedules_back_up_when_due() {
    let (w, _, id) = installed(5);
    let out = folder(&w, "scheduled");
    let run = w.apsctl(&[
        "--json",
        "schedule",
        "add",
        &id,
        "--every",
        "1h",
        "--to-dir",
        &out.display().to_string(),
        "--keep",
        "2",
    ]);
    run.ok();
    let sid = run.json()["schedule"].as_i64().unwrap().to_string();
    let list = w.apsctl(&["--json", "schedule", "list"]);
    list.ok();
    let entry = &list.json()["schedules"][0];
    for field in [
        "schedule", "instance", "every", "to_dir", "keep", "last", "next",
    ] {
        assert!(entry.get(field).is_some(), "`{field}` is listed: {entry}");
    }
    assert_eq!(entry["last"], Value::Null);
    w.apsctl(&["schedule", "run"]).ok();
    assert_eq!(names(&out).len(), 1, "the due schedule ran");
    w.apsctl(&["schedule", "run"]).ok();
    assert_eq!(names(&out).len(), 1, "not due again for an hour");
    let list = w.apsctl(&["--json", "schedule", "list"]);
    assert!(list.json()["schedules"][0]["last"].is_string());
    w.apsctl(&[
        "schedule",
        "add",
        &id,
        "--every",
        "1s",
        "--to-dir",
        &out.display().to_string(),
    ])
    .fails_with(INVALID);
    w.apsctl(&["schedule", "remove", &sid]).ok();
    let list = w.apsctl(&["--json", "schedule", "list"]);
    assert_eq!(list.json()["schedules"], Value::Array(Vec::new()));
    w.finish();
}

/// Issue 8: an archive whose package is not in the repository is refused, naming the package.
#[test]
fn issue_8_a_restore_needs_the_package_in_the_repository() {
    let (w, reference, id) = installed(6);
    let archive = folder(&w, "backups").join("b.tar.zst");
    w.apsctl(&["backup", &id, "--to", &archive.display().to_string()])
        .ok();
    let db = database_of(&w, &id);
    w.apsctl(&["remove", &id, "--files", "all"]).ok();
    w.apsctl(&["package", "remove", &reference]).ok();
    let run = w.apsctl(&[
        "restore",
        "--from",
        &archive.display().to_string(),
        "--site",
        &w.site,
    ]);
    run.fails_with(NOT_FOUND);
    assert!(
        run.stderr.contains("not in the repository"),
        "{}",
        run.stderr
    );
    assert!(!w.mysql.databases().contains(&db));
    w.finish();
}

/// The package's configuration script doubles as its backup script: `backup` writes a line into
/// `BACKUP_FILE`; `restore` copies `BACKUP_FILE` into the instance root; `hold` in the test's
/// folder makes `backup` wait (a backup that takes its time).
const BACKUP_SCRIPT: &str = r"<?php
$action = $argv[1] ?? '';
if ($action === 'backup') {
    $hold = getenv('SETTINGS_title');
    file_put_contents(getenv('BACKUP_FILE'), 'kept by the backup script of ' . getenv('BASE_URL_PATH') . PHP_EOL);
    if ($hold !== false && is_dir($hold)) {
        touch($hold . '/running');
        while (!file_exists($hold . '/go')) { usleep(20000); }
    }
    exit(0);
}
if ($action === 'restore') {
    copy(getenv('BACKUP_FILE'), getenv('WEB___DIR') . '/restored-by-script.txt');
    exit(0);
}
require __DIR__ . '/configure.real';
";

/// A guestbook whose configuration script is also its backup script.
fn with_backup_script(w: &World, sufficient: bool, release: &'static str) -> String {
    let decl = if sufficient {
        "</configuration-script>\n      <backup-script name=\"configure\"><script-language>php</script-language><sufficient/></backup-script>"
    } else {
        "</configuration-script>\n      <backup-script name=\"configure\"><script-language>php</script-language></backup-script>"
    };
    let edits = [("</configuration-script>", decl)];
    w.import(&w.variant_package(&Variant {
        release,
        wrapper: Some(BACKUP_SCRIPT),
        meta_edits: &edits,
    }))
}

/// Issue 8, seed steps 1.1 and 3: with a backup script the archive holds its `BACKUP_FILE`;
/// without `<sufficient/>` apsctl dumps the databases too, with it it does not, and a restore
/// creates empty databases and lets the script's `restore` fill the instance.
#[test]
fn issue_8_backup_scripts_with_and_without_sufficient() {
    let w = world(7);
    for (sufficient, release, path) in [(false, "2", "plain"), (true, "3", "sufficient")] {
        let reference = with_backup_script(&w, sufficient, release);
        let id = w.install(&reference, &["--path", path]);
        let archive = folder(&w, "backups").join(format!("{path}.tar.zst"));
        let run = w.apsctl(&[
            "--json",
            "backup",
            &id,
            "--to",
            &archive.display().to_string(),
        ]);
        run.ok();
        assert_eq!(run.json()["backup_script"], true);
        let plain = w.dir.join(format!("plain-{path}"));
        unpack(&archive, &plain);
        let saved = fs_err::read_to_string(plain.join("script/backup-file")).unwrap();
        assert!(saved.contains(&format!("/{path}/")), "{saved}");
        assert_eq!(
            plain.join("resources").exists(),
            !sufficient,
            "apsctl dumps the databases unless the script is sufficient"
        );
        let run = w.apsctl(&[
            "--json",
            "restore",
            "--from",
            &archive.display().to_string(),
            "--site",
            &w.site,
            "--path",
            &format!("{path}-copy"),
        ]);
        run.ok();
        let copy = run.json()["instance"].as_str().unwrap().to_owned();
        w.adopt(&copy);
        let copy_root = w.root(&copy);
        assert_eq!(
            fs_err::read_to_string(copy_root.join("restored-by-script.txt")).unwrap(),
            saved,
            "the script's restore got BACKUP_FILE"
        );
        let db = database_of(&w, &copy);
        let tables = w.mysql.query(&format!("SHOW TABLES FROM `{db}`"));
        assert_eq!(
            tables.is_empty(),
            sufficient,
            "with <sufficient/> the databases are created empty for the script: {tables:?}"
        );
        // No BACKUP_FILE is left in either private tmp/.
        for instance in [&id, &copy] {
            let tmp = w.home.join("instances").join(instance).join("tmp");
            assert!(names(&tmp).is_empty(), "{}", tmp.display());
        }
    }
    w.finish();
}

/// Issue 8: a second backup of an instance while one runs is refused clearly; the instance stays
/// served meanwhile; a backup killed while its script runs leaves nothing after `recover`.
#[test]
fn issue_8_a_running_backup_holds_the_instance_and_a_killed_one_leaves_nothing() {
    let w = world(8);
    let reference = with_backup_script(&w, false, "2");
    let hold = folder(&w, "hold");
    World::run_tool("chmod", &["777", &hold.display().to_string()]);
    let hold_text = hold.display().to_string();
    let id = w.install(&reference, &["--set", &format!("title={hold_text}")]);
    let root = w.root(&id);
    let out = folder(&w, "backups");
    let archive = out.join("slow.tar.zst");
    let mut slow = w
        .apsctl_background(&["backup", &id, "--to", &archive.display().to_string()])
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !hold.join("running").exists() {
        assert!(
            started.elapsed().as_secs() < 120,
            "the backup script never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let run = w.apsctl(&[
        "backup",
        &id,
        "--to",
        &out.join("second.tar.zst").display().to_string(),
    ]);
    run.fails_with(5);
    assert!(run.stderr.contains("backup of instance"), "{}", run.stderr);
    assert!(front_page(&w, &root).contains(&hold_text), "still served");
    // Killed while its script waits: nothing is left once `recover` ran.
    slow.kill().unwrap();
    slow.wait().unwrap();
    fs_err::write(hold.join("go"), "").unwrap();
    w.apsctl(&["recover"]).ok();
    assert!(names(&out).is_empty(), "{:?}", names(&out));
    let tmp = w.home.join("instances").join(&id).join("tmp");
    assert!(names(&tmp).is_empty(), "{:?}", names(&tmp));
    w.finish();
}

/// A backup script that fails with a message of its own.
const FAILING: &str = r"<?php
if (($argv[1] ?? '') === 'backup') {
    file_put_contents(getenv('BACKUP_FILE'), 'half');
    fwrite(STDERR, 'the application refuses to be backed up today' . PHP_EOL);
    exit(3);
}
require __DIR__ . '/configure.real';
";

/// Issue 8, the seed's other failure exits: a backup script in a language the site cannot run is
/// refused before anything runs (1.2); a backup script that fails is shown and leaves nothing
/// (3.3).
#[test]
fn issue_8_a_backup_script_that_cannot_run_or_fails_leaves_nothing() {
    let w = world(9);
    let out = folder(&w, "backups");
    // The script's language has no interpreter in apsctl's registry.
    let edits = [(
        "</configuration-script>",
        "</configuration-script>\n      <backup-script name=\"configure\"><script-language>tcl</script-language></backup-script>",
    )];
    let reference = w.import(&w.variant_package(&Variant {
        release: "4",
        meta_edits: &edits,
        ..Variant::default()
    }));
    let id = w.install(&reference, &["--path", "tcl"]);
    let run = w.apsctl(&["backup", &id, "--to-dir", &out.display().to_string()]);
    run.fails_with(INVALID);
    assert!(run.stderr.contains("tcl"), "{}", run.stderr);
    assert!(
        w.sql("SELECT count(*) FROM operations WHERE kind = 'backup'") == ["0"],
        "refused before anything ran"
    );
    // The script fails: its own message is shown.
    let edits = [(
        "</configuration-script>",
        "</configuration-script>\n      <backup-script name=\"configure\"><script-language>php</script-language></backup-script>",
    )];
    let reference = w.import(&w.variant_package(&Variant {
        release: "5",
        wrapper: Some(FAILING),
        meta_edits: &edits,
    }));
    let id = w.install(&reference, &["--path", "failing"]);
    let run = w.apsctl(&["backup", &id, "--to-dir", &out.display().to_string()]);
    run.fails_with(FAILED);
    assert!(
        run.stderr
            .contains("the application refuses to be backed up today"),
        "{}",
        run.stderr
    );
    assert!(names(&out).is_empty(), "{:?}", names(&out));
    let tmp = w.home.join("instances").join(&id).join("tmp");
    assert!(names(&tmp).is_empty(), "{:?}", names(&tmp));
    w.finish();
}
