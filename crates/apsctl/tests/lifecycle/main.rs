//! Instance lifecycle on real sites: install, reconfigure and remove the guestbook example with
//! the real `php` CLI and the real MariaDB server (REFERENCE §8.0, §8.3, §8.4, §8.10, §8.12).
//!
//! Main decision: every test drives the `apsctl` binary as a control panel would and checks the
//! result where it lands — the application run as the site's user, the database server queried
//! as its administrator, the store through `instance list/show` and the `sqlite3` CLI. Each test
//! has its own site user, document root, home and database names (see `world.rs`), and every
//! test ends with the secrets check: no password it used or apsctl generated appears in any
//! output or in the journal.
//!
//! Needs root, `php` with `pdo_mysql`, `runuser`, `mariadb`, `sqlite3` and the MariaDB server
//! of `.ci/services.sh`; a missing server fails the tests with a message saying so.
//!
//! Known gaps: sites served by nginx or Apache (only `--web none` access through folder modes)
//! are not exercised; PostgreSQL and SQLite instances, table prefixes and shared databases are
//! the `databases` area's.
mod world;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use world::{Variant, World};

/// Exit statuses of CLI.md / `output::exit_code_for`.
const INVALID: i32 = 2;
const NOT_FOUND: i32 = 3;
const BUSY: i32 = 5;
const FAILED: i32 = 6;

/// Every journaled step of an install, in order (REFERENCE §8.3).
const INSTALL_STEPS: [&str; 8] = [
    "private-dir",
    "record",
    "database",
    "private-copy",
    "deploy",
    "configure-install",
    "open-access",
    "commit",
];

fn mode(path: &Path) -> u32 {
    fs_err::metadata(path)
        .expect("the path exists")
        .permissions()
        .mode()
        & 0o7777
}

fn instances(w: &World) -> Vec<Value> {
    let run = w.apsctl(&["--json", "instance", "list"]);
    run.ok();
    let list = run.json();
    list.get("instances")
        .unwrap_or(&list)
        .as_array()
        .expect("a list of instances")
        .clone()
}

/// (name, login) of the instance's only database.
fn database_of(w: &World, id: &str) -> (String, String) {
    let show = w.show(id);
    let db = &show["databases"][0];
    (
        db["name"].as_str().expect("database name").to_owned(),
        db["login"].as_str().expect("database login").to_owned(),
    )
}

/// The front page as the site's PHP renders it.
#[track_caller]
fn front_page(w: &World, root: &Path) -> String {
    let run = w.php_as_site_user(root, &["index.php"]);
    run.ok();
    run.stdout.clone()
}

/// Asserts that the instance, its files, database, login and private folder are all gone.
#[track_caller]
fn assert_gone(w: &World, id: &str, root: &Path, db: &(String, String)) {
    assert!(!root.exists(), "`{}` is still there", root.display());
    assert!(
        !w.mysql.databases().contains(&db.0),
        "database {} kept",
        db.0
    );
    assert!(!w.mysql.login_exists(&db.1), "login {} kept", db.1);
    assert!(instances(w).is_empty(), "the instance record is kept");
    w.apsctl(&["instance", "show", id]).fails_with(NOT_FOUND);
    assert!(
        !w.home.join("instances").join(id).exists(),
        "the private folder is kept"
    );
}

#[test]
fn the_example_installs_works_and_is_removed_completely() {
    let w = World::new(1);
    let reference = w.import(&w.example_package());
    let id = w.install(&reference, &[]);
    let root = w.root(&id);
    assert_eq!(root, w.docroot.join("guestbook"), "the default prefix");

    // The application works as the site's PHP runs it: title, welcome row, a new entry.
    let page = front_page(&w, &root);
    assert!(page.contains("<h1>My Guestbook</h1>"), "{page}");
    assert!(
        page.contains("Welcome to My Guestbook! This is the first entry"),
        "{page}"
    );
    let added = w.php_as_site_user(&root, &["add.php", "Signed by the lifecycle test"]);
    added.ok();
    assert!(front_page(&w, &root).contains("Signed by the lifecycle test"));

    // What the store says: settings (the installation-only password is never kept) and databases.
    let show = w.show(&id);
    assert_eq!(show["state"], "ready");
    assert_eq!(
        show["settings"],
        json!({"admin_email": "owner@example.com", "entries_per_page": "10", "title": "My Guestbook"})
    );
    let dbs = show["databases"].as_array().expect("databases");
    assert_eq!(dbs.len(), 1, "{show}");
    let db = &dbs[0];
    assert_eq!(db["id"], "main");
    assert_eq!(db["type"], "mysql");
    assert_eq!(db["host"], w.mysql.host.as_str());
    assert_eq!(db["port"], json!(w.mysql.port.parse::<u16>().unwrap()));
    let (name, login) = database_of(&w, &id);
    assert!(
        name.starts_with("guestbook"),
        "named after db:default-name: {name}"
    );

    // What the server says: the database with the application's table and rows, and the login.
    assert!(w.mysql.databases().contains(&name));
    assert!(w.mysql.login_exists(&login));
    assert_eq!(
        w.mysql
            .query(&format!("SELECT COUNT(*) FROM `{name}`.`entries`")),
        ["2"]
    );

    let run = w.apsctl(&["--json", "remove", &id, "--files", "all"]);
    run.ok();
    let report = run.json();
    assert_eq!(report["files"], "all");
    assert_eq!(report["kept_files"], json!([]));
    assert_eq!(report["databases_kept"], json!([]));
    assert_eq!(report["databases_dropped"].as_array().unwrap().len(), 1);
    assert_gone(&w, &id, &root, &(name, login));
    assert_eq!(fs_err::read_dir(&w.docroot).unwrap().count(), 0);
    w.finish();
}

#[test]
fn configure_rewrites_the_configuration_and_refuses_bad_values() {
    let w = World::new(2);
    let reference = w.import(&w.variant_package(&Variant::default()));
    let id = w.install(&reference, &["--set", "title=First Title"]);
    let root = w.root(&id);
    assert!(front_page(&w, &root).contains("<h1>First Title</h1>"));
    w.php_as_site_user(&root, &["add.php", "The newest entry"])
        .ok();

    let run = w.apsctl(&[
        "--json",
        "configure",
        &id,
        "--set",
        "title=Second Title",
        "--set",
        "entries_per_page=1",
    ]);
    run.ok();
    assert_eq!(run.json()["changed"], json!(["entries_per_page", "title"]));
    // The configuration file was rewritten: new title, one entry per page.
    let page = front_page(&w, &root);
    assert!(page.contains("<h1>Second Title</h1>"), "{page}");
    assert!(page.contains("The newest entry"), "{page}");
    assert!(!page.contains("Welcome to"), "one entry per page: {page}");
    let settings = w.show(&id)["settings"].clone();
    assert_eq!(settings["title"], "Second Title");
    assert_eq!(settings["entries_per_page"], "1");

    // Invalid values: every bad setting is named, nothing is stored or rewritten.
    let config = fs_err::read(root.join("config.php")).unwrap();
    let run = w.apsctl(&[
        "configure",
        &id,
        "--set",
        "entries_per_page=0",
        "--set",
        "admin_email=not-an-address",
        "--set",
        "title=Third Title",
    ]);
    run.fails_with(INVALID);
    for bad in ["entries_per_page", "admin_email"] {
        assert!(run.stderr.contains(bad), "{bad} not named: {}", run.stderr);
    }
    let run = w.apsctl(&["configure", &id, "--set", "entries_per_page=101"]);
    run.fails_with(INVALID);
    assert!(run.stderr.contains("entries_per_page"), "{}", run.stderr);
    assert_eq!(w.show(&id)["settings"], settings);
    assert_eq!(fs_err::read(root.join("config.php")).unwrap(), config);
    assert!(front_page(&w, &root).contains("<h1>Second Title</h1>"));

    // An installation-only setting cannot be changed later.
    let new_password = "Another-Pa55-2-qzx";
    w.add_secret(new_password);
    let run = w.apsctl(&[
        "configure",
        &id,
        "--set",
        &format!("admin_password={new_password}"),
    ]);
    run.fails_with(INVALID);
    assert!(
        run.stderr.contains("admin_password") && run.stderr.contains("installation"),
        "{}",
        run.stderr
    );
    assert_eq!(w.show(&id)["settings"], settings);
    assert_eq!(fs_err::read(root.join("config.php")).unwrap(), config);
    w.finish();
}

#[test]
fn remove_app_files_keeps_what_the_instance_created_or_changed() {
    let w = World::new(3);
    let reference = w.import(&w.variant_package(&Variant::default()));
    let id = w.install(&reference, &[]);
    let root = w.root(&id);
    let db = database_of(&w, &id);
    let root_mode = mode(&root);

    // The application stores an attachment; the owner edits an application file.
    let note = w.dir.join("note.txt");
    fs_err::write(&note, "attached by the lifecycle test\n").unwrap();
    fs_err::set_permissions(&note, std::fs::Permissions::from_mode(0o644)).unwrap();
    let added = w.php_as_site_user(
        &root,
        &["add.php", "With an attachment", &note.display().to_string()],
    );
    added.ok();
    let upload = root.join("uploads/2-note.txt");
    assert!(upload.is_file(), "the application wrote its upload");
    let mut index = fs_err::read_to_string(root.join("index.php")).unwrap();
    index.push_str("// edited by the site owner\n");
    fs_err::write(root.join("index.php"), &index).unwrap();
    // A hostile owner puts a FIFO where an application file was: apsctl, reading it as root to
    // compare checksums, must neither block on it nor remove it.
    let fifo = root.join("uploads/README.txt");
    fs_err::remove_file(&fifo).unwrap();
    World::run_tool("mkfifo", &[&fifo.display().to_string()]);

    let run = w.apsctl(&["--json", "remove", &id, "--files", "app"]);
    run.ok();
    let report = run.json();
    assert_eq!(report["files"], "app");
    let kept: BTreeSet<(String, String)> = report["kept_files"]
        .as_array()
        .expect("kept_files")
        .iter()
        .map(|k| {
            (
                k["path"].as_str().unwrap().to_owned(),
                k["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("index.php".to_owned(), "modified".to_owned()),
        ("uploads/2-note.txt".to_owned(), "instance".to_owned()),
        ("uploads/README.txt".to_owned(), "modified".to_owned()),
    ]
    .into();
    assert_eq!(kept, expected);
    assert!(
        fs_err::symlink_metadata(&fifo).is_ok(),
        "the FIFO is kept as a changed file"
    );
    // Kept files are untouched; unchanged application files are gone (and config.php, which
    // the application's own `configure remove` deleted).
    assert_eq!(
        fs_err::read_to_string(root.join("index.php")).unwrap(),
        index
    );
    assert_eq!(
        fs_err::read_to_string(&upload).unwrap(),
        "attached by the lifecycle test\n"
    );
    for gone in ["add.php", "common.php", "config.php"] {
        assert!(!root.join(gone).exists(), "{gone} was not removed");
    }
    // It keeps files: closed to the web server (issue 9), never served as text.
    assert_eq!(
        mode(&root),
        root_mode & !0o077,
        "the surviving root stays closed while it keeps files"
    );
    assert!(!w.mysql.databases().contains(&db.0));
    assert!(!w.mysql.login_exists(&db.1));
    assert!(instances(&w).is_empty());
    assert!(!w.home.join("instances").join(&id).exists());
    w.finish();
}

#[test]
fn remove_keep_databases_keeps_and_lists_them() {
    let w = World::new(4);
    let reference = w.import(&w.variant_package(&Variant::default()));
    let id = w.install(&reference, &[]);
    let root = w.root(&id);
    let (name, login) = database_of(&w, &id);

    let run = w.apsctl(&[
        "--json",
        "remove",
        &id,
        "--files",
        "all",
        "--keep-databases",
    ]);
    run.ok();
    let report = run.json();
    assert_eq!(report["databases_dropped"], json!([]));
    let kept = report["databases_kept"].as_array().expect("databases_kept");
    assert_eq!(kept.len(), 1, "{report}");
    let line = kept[0].to_string();
    assert!(line.contains(&name) && line.contains(&login), "{line}");
    assert!(w.mysql.databases().contains(&name), "the database was kept");
    assert!(w.mysql.login_exists(&login), "the login was kept");
    assert!(!root.exists());
    assert!(instances(&w).is_empty());
    w.finish();
}

#[test]
fn remove_without_a_file_choice_and_no_terminal_changes_nothing() {
    let w = World::new(5);
    let reference = w.import(&w.variant_package(&Variant::default()));
    let id = w.install(&reference, &[]);
    let root = w.root(&id);
    let before = w.snapshot();

    let run = w.apsctl(&["remove", &id]);
    run.fails_with(INVALID);
    assert!(run.stderr.contains("--files"), "{}", run.stderr);
    assert_eq!(w.snapshot(), before);
    assert!(front_page(&w, &root).contains("<h1>My Guestbook</h1>"));
    w.finish();
}

#[test]
fn refused_installs_change_nothing() {
    let w = World::new(6);
    let reference = w.import(&w.variant_package(&Variant::default()));
    let before = w.snapshot();
    let site = w.site.clone();

    // Every bad setting is reported at once, before any change.
    let run = w.apsctl(&[
        "install",
        &reference,
        "--site",
        &site,
        "--accept-license",
        "--set",
        "admin_email=nobody",
        "--set",
        "admin_password=Tiny7",
        "--set",
        "entries_per_page=500",
    ]);
    run.fails_with(INVALID);
    for bad in ["admin_email", "admin_password", "entries_per_page"] {
        assert!(run.stderr.contains(bad), "{bad} not named: {}", run.stderr);
    }
    assert!(!run.stderr.contains("Tiny7"), "a refused password is shown");
    // A required setting without a value.
    let password = format!("admin_password={}", w.admin_password);
    let run = w.apsctl(&[
        "install",
        &reference,
        "--site",
        &site,
        "--accept-license",
        "--set",
        &password,
    ]);
    run.fails_with(INVALID);
    assert!(run.stderr.contains("admin_email"), "{}", run.stderr);

    // The license must be accepted.
    let run = w.apsctl(&[
        "install",
        &reference,
        "--site",
        &site,
        "--set",
        "admin_email=owner@example.com",
        "--set",
        &password,
    ]);
    run.fails_with(INVALID);
    assert!(run.stderr.contains("--accept-license"), "{}", run.stderr);
    assert_eq!(w.snapshot(), before);
    assert_eq!(
        w.sql("SELECT COUNT(*) FROM operations WHERE kind = 'install'"),
        ["0"],
        "refused before the journal"
    );

    w.finish();
}

#[test]
fn a_dry_run_prints_the_plan_and_changes_nothing() {
    let w = World::new(17);
    let reference = w.import(&w.variant_package(&Variant::default()));
    let before = w.snapshot();

    // The plan: databases, files and bytes, variable names, script runs.
    let (files, bytes) =
        htdocs_size(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/guestbook/htdocs"));
    let args = w.install_args(&reference, &["--dry-run"]);
    let text_args: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    let run = w.apsctl(&text_args);
    run.ok();
    for expected in [
        "nothing was changed".to_owned(),
        "main (mysql) on `my`".to_owned(),
        format!("{files} ({bytes} bytes)"),
        "configure install".to_owned(),
        "DB_main_PASSWORD".to_owned(),
        "SETTINGS_admin_password".to_owned(),
        "WEB__uploads_DIR".to_owned(),
    ] {
        assert!(
            run.stdout.contains(&expected),
            "no `{expected}` in:\n{}",
            run.stdout
        );
    }
    let json_args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = w.apsctl(&json_args);
    run.ok();
    let report = run.json();
    assert_eq!(report["instance"], Value::Null);
    assert_eq!(report["state"], "planned");
    let plan = &report["plan"];
    assert_eq!(plan["databases"][0]["id"], "main");
    assert_eq!(plan["databases"][0]["type"], "mysql");
    assert_eq!(plan["files"], files);
    assert_eq!(plan["bytes"], bytes);
    assert_eq!(plan["scripts"], json!(["configure install"]));
    let vars: Vec<&str> = plan["variables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for var in [
        "BASE_URL_PATH",
        "WEB___DIR",
        "WEB__uploads_DIR",
        "DB_main_NAME",
        "DB_main_LOGIN",
        "DB_main_PASSWORD",
        "DB_main_HOST",
        "DB_main_PORT",
        "SETTINGS_title",
        "SETTINGS_admin_email",
        "SETTINGS_admin_password",
        "SETTINGS_entries_per_page",
    ] {
        assert!(vars.contains(&var), "{var} missing from {vars:?}");
    }
    assert!(!vars.contains(&"DB_main_PREFIX"), "no prefix was given");
    assert_eq!(w.snapshot(), before);
    w.finish();
}

/// Number of files and their bytes below `dir`.
fn htdocs_size(dir: &Path) -> (u64, u64) {
    let mut total = (0, 0);
    for entry in fs_err::read_dir(dir).expect("a readable folder") {
        let entry = entry.expect("a readable entry");
        let meta = entry.metadata().expect("readable metadata");
        if meta.is_dir() {
            let (f, b) = htdocs_size(&entry.path());
            total = (total.0 + f, total.1 + b);
        } else {
            total = (total.0 + 1, total.1 + meta.len());
        }
    }
    total
}

/// A `configure` whose `install` does the real work, then fails with its own message (which
/// quotes secrets, to check they are redacted).
const FAILING_INSTALL: &str = r#"<?php
if (($argv[1] ?? '') === 'install') {
    require __DIR__ . '/lib.php';
    gb_install();
    fwrite(STDERR, 'guestbook-test: the mail server refused ' . getenv('SETTINGS_admin_email')
        . ' (db password ' . getenv('DB_main_PASSWORD')
        . ', admin password ' . getenv('SETTINGS_admin_password') . ")\n");
    exit(1);
}
require __DIR__ . '/configure.real';
"#;

#[test]
fn a_failing_configure_install_leaves_nothing_behind() {
    let w = World::new(7);
    let reference = w.import(&w.variant_package(&Variant {
        wrapper: Some(FAILING_INSTALL),
        ..Variant::default()
    }));
    let before = w.snapshot();
    let args = w.install_args(&reference, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = w.apsctl(&args);
    run.fails_with(FAILED);
    assert!(
        run.stderr
            .contains("guestbook-test: the mail server refused owner@example.com"),
        "the script's own message: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("db password ***") && run.stderr.contains("admin password ***"),
        "secrets in script output are redacted: {}",
        run.stderr
    );
    assert_eq!(w.snapshot(), before);
    assert_eq!(
        w.sql("SELECT outcome FROM operations WHERE kind = 'install'"),
        ["rolled_back"]
    );
    w.finish();
}

/// A failure right after a successful `configure install` runs `configure remove` before the
/// files and databases go (REFERENCE §8.3 failure, §11 Q27), also when the failure comes from
/// the journal after the script (here the test hook).
#[test]
fn a_failure_right_after_configure_install_runs_configure_remove() {
    let w = World::new(19);
    let marks = w.dir.join("marks");
    fs_err::create_dir(&marks).unwrap();
    World::run_tool(
        "chown",
        &[&format!("{}:", w.user), &marks.display().to_string()],
    );
    let marker = marks.join("actions");
    let wrapper = format!(
        "<?php\nfile_put_contents('{}', ($argv[1] ?? '') . \"\\n\", FILE_APPEND);\nrequire __DIR__ . '/configure.real';\n",
        marker.display()
    );
    let reference = w.import(&w.variant_package(&Variant {
        wrapper: Some(&wrapper),
        ..Variant::default()
    }));
    let before = w.snapshot();
    let args = w.install_args(&reference, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = w.apsctl_env(&args, &[("APSCTL_TEST_FAIL_AFTER", "configure-install")]);
    run.fails_with(FAILED);
    assert_eq!(
        fs_err::read_to_string(&marker).unwrap_or_default(),
        "install\nremove\n",
        "the script's runs: {}",
        run.stderr
    );
    assert_eq!(w.snapshot(), before);
    w.finish();
}

/// A `configure` whose `remove` fails while the title is `Sticky`.
const STICKY_REMOVE: &str = r#"<?php
if (($argv[1] ?? '') === 'remove' && getenv('SETTINGS_title') === 'Sticky') {
    fwrite(STDERR, "guestbook-test: a guestbook titled Sticky cannot be removed\n");
    exit(1);
}
require __DIR__ . '/configure.real';
"#;

#[test]
fn a_failing_configure_remove_keeps_a_working_instance() {
    let w = World::new(8);
    let reference = w.import(&w.variant_package(&Variant {
        wrapper: Some(STICKY_REMOVE),
        ..Variant::default()
    }));
    let id = w.install(&reference, &["--set", "title=Sticky"]);
    let root = w.root(&id);
    let root_mode = mode(&root);
    let before = w.snapshot();

    let run = w.apsctl(&["remove", &id, "--files", "all"]);
    run.fails_with(FAILED);
    assert!(
        run.stderr
            .contains("guestbook-test: a guestbook titled Sticky cannot be removed"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("was not removed"), "{}", run.stderr);
    // Files, modes (access restored), database, login and record are as before.
    assert_eq!(w.snapshot(), before);
    assert_eq!(mode(&root), root_mode);
    assert!(front_page(&w, &root).contains("<h1>Sticky</h1>"));

    // The instance keeps working: it can be reconfigured, and then removed.
    w.apsctl(&["configure", &id, "--set", "title=Free"]).ok();
    assert!(front_page(&w, &root).contains("<h1>Free</h1>"));
    let db = database_of(&w, &id);
    w.apsctl(&["remove", &id, "--files", "all"]).ok();
    assert_gone(&w, &id, &root, &db);
    w.finish();
}

#[test]
fn every_failing_install_step_is_rolled_back() {
    let w = World::new(9);
    let reference = w.import(&w.variant_package(&Variant::default()));
    let before = w.snapshot();
    let args = w.install_args(&reference, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    for kind in INSTALL_STEPS {
        let run = w.apsctl_env(&args, &[("APSCTL_TEST_FAIL_AFTER", kind)]);
        run.fails_with(FAILED);
        assert!(
            run.stderr
                .contains(&format!("injected failure at fault point `after:{kind}`")),
            "{kind}: {}",
            run.stderr
        );
        assert_eq!(w.snapshot(), before, "after a failure after step `{kind}`");
    }
    assert_eq!(
        w.sql("SELECT COUNT(*) FROM operations WHERE kind = 'install' AND outcome = 'rolled_back'"),
        [INSTALL_STEPS.len().to_string()]
    );
    // Nothing is left in the way of a real install.
    let id = w.install(&reference, &[]);
    assert!(front_page(&w, &w.root(&id)).contains("Welcome to My Guestbook!"));
    w.finish();
}

#[test]
fn a_failure_after_disabling_access_restores_it() {
    let w = World::new(10);
    let reference = w.import(&w.variant_package(&Variant::default()));
    let id = w.install(&reference, &[]);
    let root = w.root(&id);
    let root_mode = mode(&root);
    let before = w.snapshot();

    let run = w.apsctl_env(
        &["remove", &id, "--files", "all"],
        &[("APSCTL_TEST_FAIL_AFTER", "disable-access")],
    );
    run.fails_with(FAILED);
    assert!(
        run.stderr
            .contains("injected failure at fault point `after:disable-access`"),
        "{}",
        run.stderr
    );
    assert_eq!(w.snapshot(), before);
    assert_eq!(mode(&root), root_mode);
    assert!(front_page(&w, &root).contains("<h1>My Guestbook</h1>"));
    w.finish();
}

#[test]
fn a_failure_after_a_successful_configure_remove_completes_the_removal() {
    let w = World::new(18);
    let reference = w.import(&w.variant_package(&Variant::default()));
    let id = w.install(&reference, &[]);
    let root = w.root(&id);
    let db = database_of(&w, &id);

    // The application has run its removal logic: that is the commit point, so apsctl rolls
    // forward instead of "keeping" an instance whose table and configuration are gone.
    let run = w.apsctl_env(
        &["--json", "remove", &id, "--files", "all"],
        &[("APSCTL_TEST_FAIL_AFTER", "configure-remove")],
    );
    run.ok();
    assert!(
        run.stderr
            .contains("injected failure at fault point `after:configure-remove`"),
        "the failure is reported as a warning: {}",
        run.stderr
    );
    assert_eq!(
        run.json()["databases_dropped"].as_array().map(Vec::len),
        Some(1)
    );
    assert_gone(&w, &id, &root, &db);
    assert_eq!(
        w.sql("SELECT outcome FROM operations WHERE kind = 'remove'"),
        ["rolled_forward"]
    );
    w.finish();
}

#[test]
fn recover_rolls_back_an_install_that_crashed() {
    let w = World::new(11);
    let reference = w.import(&w.variant_package(&Variant::default()));
    let before = w.snapshot();
    let args = w.install_args(&reference, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let run = w.apsctl_env(&args, &[("APSCTL_TEST_CRASH_AFTER", "deploy")]);
    assert_eq!(run.code, None, "apsctl was aborted: {run:?}");
    assert!(
        w.docroot.join("guestbook").exists(),
        "the crash left deployed files"
    );
    assert_ne!(w.snapshot(), before);

    let run = w.apsctl(&["--json", "recover"]);
    run.ok();
    let ops = run.json()["operations"].clone();
    assert_eq!(ops.as_array().map(Vec::len), Some(1), "{ops}");
    assert_eq!(ops[0]["kind"], "install");
    assert_eq!(ops[0]["outcome"], "rolled_back");
    assert_eq!(w.snapshot(), before);
    let run = w.apsctl(&["--json", "recover"]);
    run.ok();
    assert_eq!(
        run.json()["operations"],
        json!([]),
        "nothing left to recover"
    );
    w.finish();
}

#[test]
fn recover_completes_a_removal_that_crashed_after_configure_remove() {
    let w = World::new(12);
    let reference = w.import(&w.variant_package(&Variant::default()));
    let id = w.install(&reference, &[]);
    let root = w.root(&id);
    let db = database_of(&w, &id);

    let run = w.apsctl_env(
        &["remove", &id, "--files", "all"],
        &[("APSCTL_TEST_CRASH_AFTER", "configure-remove")],
    );
    assert_eq!(run.code, None, "apsctl was aborted: {run:?}");
    assert_eq!(instances(&w).len(), 1, "the crash left the record");
    assert!(root.exists(), "the crash left the files");

    let run = w.apsctl(&["--json", "recover"]);
    run.ok();
    let ops = run.json()["operations"].clone();
    assert_eq!(ops.as_array().map(Vec::len), Some(1), "{ops}");
    assert_eq!(ops[0]["kind"], "remove");
    assert_eq!(ops[0]["outcome"], "rolled_forward");
    assert_gone(&w, &id, &root, &db);
    w.finish();
}

/// A `configure` whose `configure` action takes three seconds.
const SLOW_CONFIGURE: &str = r"<?php
if (($argv[1] ?? '') === 'configure') {
    sleep(3);
}
require __DIR__ . '/configure.real';
";

#[test]
fn a_second_operation_on_a_busy_instance_is_refused_at_once() {
    let w = World::new(13);
    let reference = w.import(&w.variant_package(&Variant {
        wrapper: Some(SLOW_CONFIGURE),
        ..Variant::default()
    }));
    let id = w.install(&reference, &[]);
    let root = w.root(&id);

    let child = w
        .apsctl_background(&["configure", &id, "--set", "title=Slow Title"])
        .spawn()
        .expect("apsctl starts");
    // Wait until the configure holds the instance's lock.
    let lock = w.home.join("locks").join(format!("instance-{id}.lock"));
    let holder = format!("(pid {})", child.id());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !fs_err::read_to_string(&lock).is_ok_and(|t| t.contains(&holder)) {
        assert!(
            Instant::now() < deadline,
            "the configure never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let mut child = child;
    let run = w.apsctl(&["remove", &id, "--files", "all"]);
    let still_running = child.try_wait().unwrap().is_none();
    run.fails_with(BUSY);
    assert!(
        run.stderr.contains("reconfiguration of instance"),
        "names the operation in progress: {}",
        run.stderr
    );
    assert!(still_running, "the remove waited for the configure");

    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    w.log_output("apsctl configure (background)", &stdout, &stderr);
    assert!(out.status.success(), "the first operation failed: {stderr}");
    assert!(front_page(&w, &root).contains("<h1>Slow Title</h1>"));
    let db = database_of(&w, &id);
    w.apsctl(&["remove", &id, "--files", "all"]).ok();
    assert_gone(&w, &id, &root, &db);
    w.finish();
}

/// A `configure` whose `install` starts a background child and never ends.
const ENDLESS_INSTALL: &str = r"<?php
if (($argv[1] ?? '') === 'install') {
    exec('sleep 300 > /dev/null 2>&1 &');
    sleep(300);
}
require __DIR__ . '/configure.real';
";

#[test]
fn a_script_past_its_timeout_is_killed_with_its_children_and_rolled_back() {
    let w = World::new(14);
    let reference = w.import(&w.variant_package(&Variant {
        wrapper: Some(ENDLESS_INSTALL),
        ..Variant::default()
    }));
    let before = w.snapshot();
    let mut args = vec!["--script-timeout".to_owned(), "2".to_owned()];
    args.extend(w.install_args(&reference, &[]));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let started = Instant::now();
    let run = w.apsctl(&args);
    run.fails_with(FAILED);
    assert!(
        run.stderr.contains("ran longer than 2 seconds"),
        "{}",
        run.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    // Neither the script nor its background child survive.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = world::processes_of(&w.user);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "processes of the site user survived the timeout: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(w.snapshot(), before);
    w.finish();
}

#[test]
fn password_settings_are_masked_and_secrets_never_leak() {
    let w = World::new(15);
    // A variant that keeps the administrator password (not installation-only).
    let reference = w.import(&w.variant_package(&Variant {
        meta_edits: &[(
            r#"type="password" min-length="8" installation-only="true""#,
            r#"type="password" min-length="8""#,
        )],
        ..Variant::default()
    }));
    let id = w.install(&reference, &[]);
    let show = w.show(&id);
    assert_eq!(show["settings"]["admin_password"], "***");
    let run = w.apsctl(&["instance", "show", &id]);
    run.ok();
    assert!(
        run.stdout.contains("admin_password = ***"),
        "{}",
        run.stdout
    );

    let new_password = "Changed-Pa55-15-qzx";
    w.add_secret(new_password);
    let run = w.apsctl(&[
        "--json",
        "configure",
        &id,
        "--set",
        &format!("admin_password={new_password}"),
    ]);
    run.ok();
    assert_eq!(run.json()["changed"], json!(["admin_password"]));
    assert_eq!(w.show(&id)["settings"]["admin_password"], "***");
    w.apsctl(&["remove", &id, "--files", "all"]).ok();
    // `finish` checks every output of this test and the journal for the three passwords.
    w.finish();
}

#[test]
fn a_relative_home_works_for_the_whole_life_cycle() {
    let w = World::new(16);
    w.use_relative_home();
    let reference = w.import(&w.variant_package(&Variant::default()));
    let id = w.install(&reference, &[]);
    let root = w.root(&id);
    assert!(front_page(&w, &root).contains("Welcome to My Guestbook!"));
    w.apsctl(&["configure", &id, "--set", "title=Relative"])
        .ok();
    assert!(front_page(&w, &root).contains("<h1>Relative</h1>"));
    let db = database_of(&w, &id);
    w.apsctl(&["remove", &id, "--files", "all"]).ok();
    assert_gone(&w, &id, &root, &db);
    w.finish();
}

#[test]
fn folders_created_for_a_nested_path_are_rolled_back_on_removal() {
    let w = World::new(40);
    let reference = w.import(&w.variant_package(&Variant::default()));
    let before = w.snapshot();
    let id = w.install(&reference, &["--path", "a/b/c"]);
    assert_eq!(w.root(&id), w.docroot.join("a/b/c"));
    // The folders above the instance root are recorded system changes (D11 rolls them back).
    assert_eq!(
        w.show(&id)["system_changes"],
        json!([
            {"kind": "parent-folder", "data": {"change": "parent-folder", "docroot": w.docroot, "rel": "a"}},
            {"kind": "parent-folder", "data": {"change": "parent-folder", "docroot": w.docroot, "rel": "a/b"}}
        ])
    );
    w.apsctl(&["remove", &id, "--files", "all"]).ok();
    assert_eq!(
        w.snapshot(),
        before,
        "nothing of the instance is left, `a` and `a/b` included"
    );
    w.finish();
}

#[test]
fn a_failed_reconfiguration_keeps_the_stored_values() {
    let w = World::new(41);
    let reference = w.import(&w.variant_package(&Variant::default()));
    let id = w.install(&reference, &["--set", "title=Kept Title"]);
    let before = w.show(&id)["settings"].clone();
    // A failure right after `configure configure`, and one just before the final commit: in
    // both, the store keeps the old values (REFERENCE §8.4).
    for hook in ["configure-configure", "commit"] {
        w.apsctl_env(
            &["configure", &id, "--set", "title=Lost Title"],
            &[("APSCTL_TEST_FAIL_AFTER", hook)],
        )
        .fails_with(6);
        assert_eq!(
            w.show(&id)["settings"],
            before,
            "after a failure at `{hook}`"
        );
    }
    w.apsctl(&["configure", &id, "--set", "title=New Title"])
        .ok();
    assert_eq!(w.show(&id)["settings"]["title"], "New Title");
    w.apsctl(&["remove", &id, "--files", "all"]).ok();
    w.finish();
}
