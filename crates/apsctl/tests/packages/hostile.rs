//! Hostile and broken archives through `package import`: each is refused with a reason naming
//! the problem, nothing enters the repository, and nothing is written outside the home.
use std::ffi::OsStr;
use std::path::Path;

use aps_test_support::{PackageBuilder, minimal_meta_xml};

use crate::support::{Sandbox, files_below};

/// A valid package: the base every hostile variant starts from.
fn base() -> PackageBuilder {
    PackageBuilder::new()
        .app_meta(minimal_meta_xml("demo", "1.0", "1"))
        .file("htdocs/index.php", "<?php echo 'hi';")
        .file("scripts/configure", "<?php exit(0);")
}

/// Writes `builder` as `name` in a fresh sandbox's work folder.
fn write(builder: &PackageBuilder, name: &str) -> (Sandbox, std::path::PathBuf) {
    let sandbox = Sandbox::new();
    let path = builder
        .write(&sandbox.work(name))
        .expect("write the archive");
    (sandbox, path)
}

/// Imports `archive` with `extra` global flags and checks that it is refused without a trace:
/// non-zero exit, stderr naming every one of `needles`, an empty repository listing, unchanged
/// files outside the home and no leftovers in the home's `repository/` and `staging/`.
fn assert_refused(sandbox: &Sandbox, archive: &Path, extra: &[&str], needles: &[&str]) {
    let before = sandbox.snapshot_outside_home();
    let mut args: Vec<&OsStr> = vec![OsStr::new("--json")];
    args.extend(extra.iter().map(OsStr::new));
    args.extend([
        OsStr::new("package"),
        OsStr::new("import"),
        archive.as_os_str(),
    ]);
    sandbox.run(&args).failed().stderr_names(needles);
    assert_eq!(
        sandbox.snapshot_outside_home(),
        before,
        "files outside the home changed"
    );
    assert!(
        sandbox.package_refs().is_empty(),
        "a refused package is listed"
    );
    for dir in ["repository", "staging"] {
        let left = files_below(&sandbox.home().join(dir));
        assert!(left.is_empty(), "leftovers in the home's {dir}/: {left:?}");
    }
}

/// Builds `builder` as `demo-1.0-1.app.zip` and asserts that import refuses it naming `needles`.
fn refuses(builder: &PackageBuilder, needles: &[&str]) {
    let (sandbox, path) = write(builder, "demo-1.0-1.app.zip");
    assert_refused(&sandbox, &path, &[], needles);
}

#[test]
fn the_base_package_is_accepted() {
    let (sandbox, path) = write(&base(), "demo-1.0-1.app.zip");
    sandbox
        .run([
            OsStr::new("package"),
            OsStr::new("import"),
            path.as_os_str(),
        ])
        .ok();
    assert_eq!(sandbox.package_refs().len(), 1);
}

#[test]
fn zip_slip_entry() {
    refuses(
        &base().raw_entry("../evil.php", "<?php system($_GET['c']);"),
        &["`../evil.php`", "escapes the package"],
    );
}

#[test]
fn zip_slip_entry_below_a_folder() {
    refuses(
        &base().raw_entry("htdocs/../../evil.php", "<?php"),
        &["htdocs/../../evil.php"],
    );
}

#[test]
fn absolute_entry() {
    refuses(
        &base().raw_entry("/etc/evil.conf", "x"),
        &["`/etc/evil.conf`", "absolute"],
    );
}

#[test]
fn backslash_entry() {
    refuses(
        &base().raw_entry("htdocs\\..\\..\\evil.php", "x"),
        &["backslash"],
    );
}

#[test]
fn dot_segment_entry() {
    refuses(
        &base().raw_entry("htdocs/./evil.php", "x"),
        &["`htdocs/./evil.php`"],
    );
}

#[test]
fn control_character_entry() {
    refuses(
        &base().raw_entry("htdocs/a\nb.php", "x"),
        &["control character"],
    );
}

#[test]
fn entry_name_not_utf8() {
    refuses(
        &base().raw_entry(b"htdocs/caf\xe9.php", "x"),
        &["not valid UTF-8"],
    );
}

#[test]
fn symlink_entry() {
    refuses(
        &base().symlink("htdocs/passwd", "/etc/passwd"),
        &["`htdocs/passwd`", "symbolic link"],
    );
}

#[test]
fn special_file_entry() {
    refuses(
        &base().special_entry("htdocs/fifo", 0o010_644),
        &["`htdocs/fifo`", "not a regular file"],
    );
}

#[test]
fn tampered_file() {
    refuses(
        &base().tampered_file("htdocs/evil.php", "<?php echo 'tampered';"),
        &["`htdocs/evil.php`", "APP-LIST.xml lists"],
    );
}

#[test]
fn unlisted_file() {
    refuses(
        &base().unlisted_file("htdocs/extra.php", "<?php"),
        &["`htdocs/extra.php`", "not listed"],
    );
}

#[test]
fn listed_but_missing_file() {
    refuses(
        &base().listed_but_missing("htdocs/gone.php", 10),
        &["`htdocs/gone.php`", "missing from the archive"],
    );
}

#[test]
fn entry_lying_about_its_size() {
    refuses(
        &base().lying_entry("htdocs/liar.txt", "0123456789abcdef", 4),
        &["`htdocs/liar.txt`"],
    );
}

#[test]
fn zip_bomb_beyond_the_size_limit() {
    let (sandbox, path) = write(
        &base().bomb("htdocs/zeros.bin", 4 << 20),
        "demo-1.0-1.app.zip",
    );
    assert!(
        fs_err::metadata(&path).unwrap().len() < 64 * 1024,
        "the bomb should be small on disk"
    );
    assert_refused(
        &sandbox,
        &path,
        &["--max-package-size", "1048576"],
        &["exceeds the limit", "1048576"],
    );
}

#[test]
fn not_a_zip() {
    let sandbox = Sandbox::new();
    let path = sandbox.work("text.app.zip");
    fs_err::write(&path, "this is a text file, not a zip archive\n").unwrap();
    assert_refused(&sandbox, &path, &[], &["text.app.zip", "not a zip archive"]);
}

#[test]
fn empty_file() {
    let sandbox = Sandbox::new();
    let path = sandbox.work("empty.app.zip");
    fs_err::write(&path, "").unwrap();
    assert_refused(
        &sandbox,
        &path,
        &[],
        &["empty.app.zip", "not a zip archive"],
    );
}

#[test]
fn no_app_meta() {
    refuses(
        &PackageBuilder::new()
            .file("htdocs/index.php", "<?php")
            .file("scripts/configure", "<?php"),
        &["no `APP-META.xml`"],
    );
}

#[test]
fn app_meta_in_a_subfolder_only() {
    refuses(
        &PackageBuilder::new()
            .file("demo/APP-META.xml", minimal_meta_xml("demo", "1.0", "1"))
            .file("demo/htdocs/index.php", "<?php"),
        &["no `APP-META.xml`"],
    );
}

#[test]
fn oversized_app_meta() {
    let mut xml = minimal_meta_xml("demo", "1.0", "1");
    xml.push_str("<!--");
    xml.push_str(&" ".repeat(17 << 20));
    xml.push_str("-->\n");
    refuses(&base_with_meta(&xml), &["`APP-META.xml`", "larger than"]);
}

#[test]
fn app_meta_not_utf8() {
    let latin1 = minimal_meta_xml("demo", "1.0", "1")
        .replace("demo test package", "caf\u{e9}")
        .chars()
        .map(|c| u8::try_from(u32::from(c)).expect("Latin-1 text"))
        .collect::<Vec<u8>>();
    assert!(std::str::from_utf8(&latin1).is_err());
    refuses(
        &PackageBuilder::new()
            .file("APP-META.xml", latin1)
            .file("htdocs/index.php", "<?php")
            .file("scripts/configure", "<?php"),
        &["UTF-8"],
    );
}

#[test]
fn declared_configure_script_missing() {
    refuses(
        &PackageBuilder::new()
            .app_meta(minimal_meta_xml("demo", "1.0", "1"))
            .file("htdocs/index.php", "<?php"),
        &["scripts/configure"],
    );
}

#[test]
fn mapped_folder_missing() {
    refuses(
        &PackageBuilder::new()
            .app_meta(minimal_meta_xml("demo", "1.0", "1"))
            .file("web/index.php", "<?php")
            .file("scripts/configure", "<?php"),
        &["htdocs"],
    );
}

#[test]
fn aps2_package() {
    let aps2 = r#"<?xml version="1.0" encoding="UTF-8"?>
<application xmlns="http://aps-standard.org/ns/2" version="2.0">
  <id>http://example.invalid/aps2/demo</id>
  <name>demo</name>
  <version>1.0</version>
  <release>1</release>
  <presentation><summary>APS 2 demo</summary></presentation>
</application>
"#;
    refuses(
        &PackageBuilder::new()
            .app_meta(aps2)
            .file("htdocs/index.php", "<?php"),
        &["APS 2"],
    );
}

#[test]
fn dtd_with_entities() {
    let xml = minimal_meta_xml("demo", "1.0", "1")
        .replacen(
            "<application",
            "<!DOCTYPE application [<!ENTITY boom \"boom\">]>\n<application",
            1,
        )
        .replace("demo test package", "&boom;&boom;");
    refuses(&base_with_meta(&xml), &["DTD"]);
}

#[test]
fn external_entity() {
    let xml = minimal_meta_xml("demo", "1.0", "1")
        .replacen(
            "<application",
            "<!DOCTYPE application [<!ENTITY leak SYSTEM \"file:///etc/passwd\">]>\n<application",
            1,
        )
        .replace("demo test package", "&leak;");
    refuses(&base_with_meta(&xml), &["DTD"]);
}

/// The base package with `xml` as its APP-META.xml.
fn base_with_meta(xml: &str) -> PackageBuilder {
    PackageBuilder::new()
        .app_meta(xml)
        .file("htdocs/index.php", "<?php echo 'hi';")
        .file("scripts/configure", "<?php exit(0);")
}

#[test]
fn duplicate_entry_names() {
    refuses(
        &base().duplicate_entry("htdocs/index.php", "<?php echo 'other';"),
        &["duplicate", "`htdocs/index.php`"],
    );
}

#[test]
fn duplicate_app_meta() {
    refuses(
        &base().duplicate_entry("APP-META.xml", minimal_meta_xml("other", "9.9", "9")),
        &["duplicate", "APP-META.xml"],
    );
}

#[test]
fn wrong_file_name() {
    let (sandbox, path) = write(&base(), "demo-1.0-1.zip");
    assert_refused(&sandbox, &path, &[], &["demo-1.0-1.zip", ".app.zip"]);
}

#[test]
fn unfilled_template() {
    let xml = minimal_meta_xml("demo", "__VERSION__", "1");
    refuses(&base_with_meta(&xml), &["__VERSION__"]);
}

#[test]
fn missing_file() {
    let sandbox = Sandbox::new();
    let path = sandbox.work("absent.app.zip");
    assert_refused(&sandbox, &path, &[], &["absent.app.zip"]);
}

/// The guard itself: a file written to apsctl's `TMPDIR` or the work folder shows up in the
/// snapshot, one written in the home does not.
#[test]
fn snapshot_sees_writes_outside_the_home_only() {
    let sandbox = Sandbox::new();
    sandbox.run(["package", "list"]).ok();
    let before = sandbox.snapshot_outside_home();
    fs_err::write(sandbox.home().join("repository/inside"), "x").unwrap();
    assert_eq!(sandbox.snapshot_outside_home(), before);
    fs_err::write(sandbox.root().join("tmp/stray"), "x").unwrap();
    assert_ne!(sandbox.snapshot_outside_home(), before);
    assert!(!files_below(&sandbox.home().join("repository")).is_empty());
}
