//! `package lint`: every file of the real-world corpus, a package folder and a built archive.
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{Sandbox, corpus_dir, files_below, hello_source};

/// One lint run: exit status and the JSON report, checked against the CLI.md shape.
struct Linted {
    code: i32,
    errors: Vec<Value>,
    warnings: Vec<Value>,
}

impl Linted {
    fn rules(list: &[Value]) -> Vec<&str> {
        list.iter()
            .map(|f| f["rule"].as_str().unwrap_or_default())
            .collect()
    }

    fn error_rules(&self) -> Vec<&str> {
        Self::rules(&self.errors)
    }

    fn warning_rules(&self) -> Vec<&str> {
        Self::rules(&self.warnings)
    }
}

/// Runs `package lint --json PATH`: never a crash, exit 0 or 1 matching the errors, and every
/// finding shaped `{rule, message, file, line, column}`.
fn lint(sandbox: &Sandbox, path: &Path) -> Linted {
    let out = sandbox.run([
        OsStr::new("--json"),
        OsStr::new("package"),
        OsStr::new("lint"),
        path.as_os_str(),
    ]);
    let code = out.code.expect("an exit status");
    assert!(
        code == 0 || code == 1,
        "lint must exit 0 or 1, got {code}\n{out}"
    );
    let report = out.json();
    let mut lists = Vec::new();
    for key in ["errors", "warnings"] {
        let list = report[key]
            .as_array()
            .unwrap_or_else(|| panic!("`{key}` is not an array\n{out}"))
            .clone();
        for f in &list {
            for field in ["rule", "message", "file"] {
                let text = f[field].as_str().unwrap_or_default();
                assert!(!text.is_empty(), "finding without `{field}`: {f}\n{out}");
            }
            for field in ["line", "column"] {
                let v = &f[field];
                assert!(
                    f.get(field).is_some() && (v.is_null() || v.as_u64().is_some_and(|n| n > 0)),
                    "finding `{field}` must be present, null or a positive number: {f}\n{out}"
                );
            }
        }
        lists.push(list);
    }
    let warnings = lists.pop().unwrap_or_default();
    let errors = lists.pop().unwrap_or_default();
    assert_eq!(
        code == 0,
        errors.is_empty(),
        "exit status and errors disagree\n{out}"
    );
    Linted {
        code,
        errors,
        warnings,
    }
}

/// The APP-META.xml of corpus entry `name`.
fn meta(name: &str) -> PathBuf {
    corpus_dir().join(name).join("APP-META.xml")
}

#[test]
fn every_corpus_file_lints_without_a_crash() {
    let dir = corpus_dir();
    assert!(
        dir.is_dir(),
        "the APS corpus is missing: expected it at `{}`",
        dir.display()
    );
    let sandbox = Sandbox::new();
    let files = files_below(&dir);
    assert!(files.len() >= 17, "the corpus looks truncated: {files:?}");
    let mut results = BTreeMap::new();
    for file in &files {
        results.insert(file.clone(), lint(&sandbox, file));
    }
    // Lone metadata files: every finding names the linted file.
    for (file, linted) in &results {
        if file.file_name() == Some(OsStr::new("APP-META.xml")) {
            for f in linted.errors.iter().chain(&linted.warnings) {
                assert_eq!(
                    f["file"].as_str(),
                    Some(file.to_str().expect("UTF-8 path")),
                    "finding names another file: {f}"
                );
            }
        }
    }
    assert!(
        results
            .keys()
            .any(|p| p.ends_with("wordpress-5.2.3/APP-META.xml")),
        "the walk missed the corpus packages"
    );
}

#[test]
fn released_corpus_packages_have_no_errors() {
    let sandbox = Sandbox::new();
    for name in [
        "wordpress-5.2.3",
        "phpmyfaq-2.6.16",
        "ocstore-1.5.5.1.2",
        "contenido-4.9.7",
        "composr-10.0.25",
    ] {
        let path = meta(name);
        assert!(
            path.is_file(),
            "corpus file `{}` is missing",
            path.display()
        );
        let linted = lint(&sandbox, &path);
        assert_eq!(linted.code, 0, "{name}: {:?}", linted.errors);
        assert!(linted.errors.is_empty(), "{name}: {:?}", linted.errors);
    }
}

#[test]
fn unfilled_templates_are_errors_that_name_a_rule_and_line() {
    let sandbox = Sandbox::new();
    for (name, placeholder) in [
        ("dolibarr-template-aps1.1", "__VERSION__"),
        ("dolibarr-template-aps1.2", "__VERSION__"),
        ("spamexperts-integration-template", "{VERSION}"),
        ("afterlogic-webmail-template", "%PRODUCT_VERSION%"),
    ] {
        let path = meta(name);
        let linted = lint(&sandbox, &path);
        assert_eq!(linted.code, 1, "{name} must fail lint");
        let unfilled: Vec<&Value> = linted
            .errors
            .iter()
            .filter(|f| f["rule"] == "meta-unfilled-template")
            .collect();
        let version = unfilled
            .iter()
            .find(|f| {
                f["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(placeholder))
            })
            .unwrap_or_else(|| panic!("{name}: no error names `{placeholder}`: {unfilled:?}"));
        // The line points at the placeholder in the file.
        let line = version["line"].as_u64().expect("the finding has a line");
        let text = fs_err::read_to_string(&path).unwrap();
        let at = text
            .lines()
            .nth(usize::try_from(line - 1).unwrap())
            .unwrap();
        assert!(at.contains(placeholder), "{name}:{line} is `{at}`");
    }
    // The 1.1 Dolibarr template uses the 1.0 script-language element.
    let linted = lint(&sandbox, &meta("dolibarr-template-aps1.1"));
    assert!(
        linted.error_rules().contains(&"meta-script-language"),
        "{:?}",
        linted.errors
    );
    // SpamExperts needs aspects apsctl does not support.
    let linted = lint(&sandbox, &meta("spamexperts-integration-template"));
    assert!(
        linted.error_rules().contains(&"aspect-unsupported"),
        "{:?}",
        linted.errors
    );
}

#[test]
fn real_world_quirks_are_warnings() {
    let sandbox = Sandbox::new();
    for (name, rule) in [
        ("composr-10.0.25", "php-post-max-size-underscore"),
        ("composr-10.alpha1", "php-post-max-size-underscore"),
        ("communigate-pro-1.0", "setting-host-port"),
        ("ocstore-1.5.5.1.2", "meta-id-not-uri"),
        ("dolibarr-template-aps1.2", "meta-id-not-uri"),
        ("dolibarr-template-aps1.2", "meta-comment-before-root"),
        ("phpmyfaq-2.6.16", "meta-language-tag"),
        ("afterlogic-webmail-template", "meta-crlf"),
    ] {
        let linted = lint(&sandbox, &meta(name));
        assert!(
            linted.warning_rules().contains(&rule),
            "{name}: warning `{rule}` missing from {:?}",
            linted.warnings
        );
        assert!(
            !linted.error_rules().contains(&rule),
            "{name}: `{rule}` must not be an error"
        );
    }
    // The Composr warning is about post_max_size.
    let linted = lint(&sandbox, &meta("composr-10.0.25"));
    let post = linted
        .warnings
        .iter()
        .find(|f| f["rule"] == "php-post-max-size-underscore")
        .unwrap();
    assert!(
        post["message"].as_str().unwrap().contains("post_max_size"),
        "{post}"
    );
    assert!(post["line"].as_u64().is_some(), "{post}");
}

#[test]
fn lone_app_list_is_not_mistaken_for_a_package() {
    let sandbox = Sandbox::new();
    let linted = lint(
        &sandbox,
        &corpus_dir().join("wordpress-5.2.3").join("APP-LIST.xml"),
    );
    assert_eq!(linted.code, 1);
    assert!(!linted.errors.is_empty());
}

#[test]
fn example_folder_and_built_archive_lint_clean() {
    let sandbox = Sandbox::new();
    let folder = lint(&sandbox, &hello_source());
    assert_eq!(folder.code, 0, "{:?}", folder.errors);
    let zip = sandbox.build_hello();
    let built = lint(&sandbox, &zip);
    assert_eq!(built.code, 0, "{:?}", built.errors);
    assert!(built.errors.is_empty());
    // The built archive carries its listing: nothing is left to warn about it.
    assert!(
        !built.warning_rules().iter().any(|r| r.starts_with("list-")),
        "{:?}",
        built.warnings
    );
}

/// Copies the regular files of `src` into `dst`, recursively.
fn copy_tree(src: &Path, dst: &Path) {
    fs_err::create_dir_all(dst).expect("create a folder");
    for entry in fs_err::read_dir(src).expect("list a folder") {
        let entry = entry.expect("read a folder entry");
        let to = dst.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &to);
        } else {
            fs_err::copy(entry.path(), &to).expect("copy a file");
        }
    }
}

#[test]
fn folder_with_a_missing_script_fails_lint_naming_it() {
    let sandbox = Sandbox::new();
    let folder = sandbox.work("hello-src");
    copy_tree(&hello_source(), &folder);
    fs_err::remove_file(folder.join("scripts/configure")).unwrap();
    let linted = lint(&sandbox, &folder);
    assert_eq!(linted.code, 1);
    assert!(
        linted.errors.iter().any(|f| f["rule"] == "path-missing"
            && f["message"]
                .as_str()
                .is_some_and(|m| m.contains("scripts/configure"))),
        "{:?}",
        linted.errors
    );
}

#[test]
fn tampered_archive_fails_lint_naming_the_file() {
    let sandbox = Sandbox::new();
    let zip = aps_test_support::PackageBuilder::new()
        .app_meta(aps_test_support::minimal_meta_xml("demo", "1.0", "1"))
        .file("scripts/configure", "<?php exit(0);")
        .tampered_file("htdocs/index.php", "<?php echo 'changed';")
        .write(&sandbox.work("demo-1.0-1.app.zip"))
        .unwrap();
    let linted = lint(&sandbox, &zip);
    assert_eq!(linted.code, 1);
    assert!(
        linted.errors.iter().any(|f| f["message"]
            .as_str()
            .is_some_and(|m| m.contains("htdocs/index.php"))),
        "{:?}",
        linted.errors
    );
}

#[test]
fn lint_of_a_missing_path_is_refused() {
    let sandbox = Sandbox::new();
    let missing = sandbox.work("nothing-here.app.zip");
    sandbox
        .run([
            OsStr::new("package"),
            OsStr::new("lint"),
            missing.as_os_str(),
        ])
        .failed()
        .stderr_names(&["nothing-here.app.zip"]);
}
