//! Packages and setting values that used to pass every check and then fail after deploying
//! (hardening issue 7, D16) are refused up front: at `package import` for metadata, before any
//! step of `install` (dry run included) for values.
//!
//! Main decision: each package is the test-support minimal package with one defect planted in
//! its APP-META.xml, so a refusal can only come from that defect; `package lint --json` of the
//! same archive shows the stable rule id that the import message does not carry.
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use aps_test_support::{PackageBuilder, minimal_meta_xml};

use crate::support::{SITE_USER, Sandbox, files_below};

/// The minimal `demo` package, whose APP-META.xml is `meta`.
fn demo(meta: String) -> PackageBuilder {
    PackageBuilder::new()
        .app_meta(meta)
        .file("htdocs/index.php", "<?php echo 'hi';")
        .file("scripts/configure", "<?php exit(0);")
}

/// The minimal `demo` package with `from` replaced by `to` in its APP-META.xml.
fn demo_with(from: &str, to: &str) -> PackageBuilder {
    let meta = minimal_meta_xml("demo", "1.0", "1");
    assert_eq!(
        meta.matches(from).count(),
        1,
        "`{from}` is not in the metadata once"
    );
    demo(meta.replace(from, to))
}

/// Writes `builder` as `demo-1.0-1.app.zip` into the sandbox's work folder.
fn write(sandbox: &Sandbox, builder: &PackageBuilder) -> PathBuf {
    builder
        .write(&sandbox.work("demo-1.0-1.app.zip"))
        .expect("write the archive")
}

/// Asserts that `package import` refuses `archive` naming every one of `named`, that nothing
/// enters the repository, and that `package lint --json` reports exactly one error, of `rule`,
/// whose message names `named[0]`.
fn assert_import_refused(sandbox: &Sandbox, archive: &Path, rule: &str, named: &[&str]) {
    sandbox
        .run([
            OsStr::new("package"),
            OsStr::new("import"),
            archive.as_os_str(),
        ])
        .failed()
        .stderr_names(named);
    assert!(
        sandbox.package_refs().is_empty(),
        "a refused package is listed"
    );
    assert!(files_below(&sandbox.home().join("repository")).is_empty());

    let linted = sandbox.run([
        OsStr::new("--json"),
        OsStr::new("package"),
        OsStr::new("lint"),
        archive.as_os_str(),
    ]);
    assert_eq!(linted.code, Some(1), "lint must fail\n{linted}");
    let report = linted.json();
    let errors = report["errors"].as_array().expect("an errors list");
    assert_eq!(errors.len(), 1, "{report}");
    assert_eq!(errors[0]["rule"], rule, "{report}");
    assert_eq!(errors[0]["file"], "APP-META.xml", "{report}");
    assert!(errors[0]["line"].is_u64(), "{report}");
    let message = errors[0]["message"].as_str().unwrap_or_default();
    assert!(message.contains(named[0]), "{report}");
}

/// Issue 7: setting id `a=b` was imported and then broke every install (its variable
/// `SETTINGS_a=b` reaches the script as `SETTINGS_a`).
#[test]
fn issue_7_import_refuses_a_setting_id_with_equals() {
    let sandbox = Sandbox::new();
    let archive = write(&sandbox, &demo_with(r#"id="title""#, r#"id="a=b""#));
    assert_import_refused(
        &sandbox,
        &archive,
        "meta-variable-name",
        &["setting id `a=b`", "`SETTINGS_a=b`", "APP-META.xml"],
    );
}

/// Issue 7: a `db:id` with `=` is refused the same way.
#[test]
fn issue_7_import_refuses_a_db_id_with_equals() {
    let sandbox = Sandbox::new();
    let db = r#"<php:version min="5.6"/>
      <db:db xmlns:db="http://apstandard.com/ns/1/db">
        <db:id>main=1</db:id>
        <db:server-type>mysql</db:server-type>
      </db:db>"#;
    let archive = write(&sandbox, &demo_with(r#"<php:version min="5.6"/>"#, db));
    assert_import_refused(
        &sandbox,
        &archive,
        "meta-variable-name",
        &["db:id `main=1`", "`DB_main=1_NAME`"],
    );
}

/// Issue 7: mapping path `htdocs/../scripts` was imported and then broke every install; so do
/// absolute paths and paths with `.` or empty segments.
#[test]
fn issue_7_import_refuses_mapping_paths_that_are_not_plain_folders() {
    for (path, why) in [
        ("htdocs/../scripts", "has a `..` segment"),
        ("./htdocs", "has a `.` segment"),
        ("htdocs//www", "has an empty segment"),
        ("/htdocs", "is absolute"),
    ] {
        let sandbox = Sandbox::new();
        let planted = format!(r#"path="{path}""#);
        let archive = write(&sandbox, &demo_with(r#"path="htdocs""#, &planted));
        assert_import_refused(
            &sandbox,
            &archive,
            "meta-mapping-path",
            &[&format!("mapping `/` has path `{path}`"), why],
        );
    }
}

/// Issue 7: a child mapping URL that is absolute is refused under the mapping rule.
#[test]
fn issue_7_import_refuses_an_absolute_child_mapping_url() {
    let sandbox = Sandbox::new();
    let child = r#"<php:handler><php:extension>php</php:extension></php:handler>
          <mapping url="/tmp"/>"#;
    let archive = write(
        &sandbox,
        &demo_with(
            "<php:handler><php:extension>php</php:extension></php:handler>",
            child,
        ),
    );
    assert_import_refused(
        &sandbox,
        &archive,
        "meta-mapping",
        &["mapping url `/tmp` is absolute"],
    );
}

/// Issue 7: a 1 MiB `title` (here 512 KiB, under the settings file's own bound) passed
/// `install --dry-run` and the real install failed after deploying ("cannot start /usr/bin/php": one environment string is capped at 128 KiB). Both
/// are now refused at validation, naming the setting and both sizes, with nothing deployed.
#[test]
fn issue_7_install_refuses_a_value_too_large_for_the_environment() {
    let env = aps_ops::Env::from_process();
    let user = aps_host::user::ensure_test_user(&env, SITE_USER).expect("create the site user");
    let sandbox = Sandbox::new();
    fs_err::set_permissions(sandbox.root(), std::fs::Permissions::from_mode(0o711)).unwrap();
    fs_err::set_permissions(
        sandbox.root().join("work"),
        std::fs::Permissions::from_mode(0o711),
    )
    .unwrap();
    let docroot = sandbox.work("docroot");
    fs_err::create_dir(&docroot).unwrap();
    std::os::unix::fs::chown(&docroot, Some(user.uid()), Some(user.gid())).unwrap();

    // The demo package's `title` declares no max-length: only the cap can refuse it.
    let archive = write(&sandbox, &demo(minimal_meta_xml("demo", "1.0", "1")));
    let imported = sandbox
        .run([
            OsStr::new("--json"),
            OsStr::new("package"),
            OsStr::new("import"),
            archive.as_os_str(),
        ])
        .ok()
        .json();
    let reference = imported["package"]
        .as_str()
        .expect("a reference")
        .to_owned();
    sandbox
        .run([
            OsStr::new("site"),
            OsStr::new("add"),
            OsStr::new("bigsite"),
            OsStr::new("--docroot"),
            docroot.as_os_str(),
            OsStr::new("--url"),
            OsStr::new("http://localhost:8080/"),
            OsStr::new("--user"),
            OsStr::new(SITE_USER),
        ])
        .ok();
    // Too large for a command line (MAX_ARG_STRLEN is 128 KiB): a settings file carries it,
    // within the settings file's own 1 MiB bound.
    let settings = sandbox.work("settings.json");
    let title = "t".repeat(512 << 10);
    fs_err::write(&settings, serde_json::json!({ "title": title }).to_string()).unwrap();

    let install = |extra: &[&str]| {
        let mut args = vec![
            OsStr::new("install"),
            OsStr::new(&reference),
            OsStr::new("--site"),
            OsStr::new("bigsite"),
            OsStr::new("--settings-file"),
            settings.as_os_str(),
        ];
        args.extend(extra.iter().map(OsStr::new));
        sandbox
            .run(&args)
            .failed()
            .stderr_names(&["`title`", "524288 bytes", "65536 bytes"])
    };
    let dry = install(&["--dry-run"]);
    assert!(!dry.stderr.contains("tttt"), "the value is echoed\n{dry}");
    install(&[]);
    assert!(
        files_below(&docroot).is_empty(),
        "files were deployed: {:?}",
        files_below(&docroot)
    );
    let list = sandbox.run(["--json", "instance", "list"]).ok().json();
    let instances = list.get("instances").unwrap_or(&list);
    assert_eq!(instances.as_array().map(Vec::len), Some(0), "{list}");

    // A value at the cap installs for real: its environment string starts the script.
    let at_cap = "t".repeat(aps_meta::value::MAX_VALUE_BYTES);
    fs_err::write(
        &settings,
        serde_json::json!({ "title": at_cap }).to_string(),
    )
    .unwrap();
    let installed = sandbox
        .run([
            OsStr::new("--json"),
            OsStr::new("install"),
            OsStr::new(&reference),
            OsStr::new("--site"),
            OsStr::new("bigsite"),
            OsStr::new("--settings-file"),
            settings.as_os_str(),
        ])
        .ok()
        .json();
    assert!(docroot.join("demo/index.php").is_file(), "not deployed");
    let instance = installed["instance"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| installed["instance"].as_u64().map(|n| n.to_string()))
        .unwrap_or_else(|| panic!("no instance id in {installed}"));
    sandbox.run(["remove", &instance, "--files", "all"]).ok();
}
