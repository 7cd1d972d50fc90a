//! The text output of the package commands (issue 7): `package show` presents the settings form,
//! requirements, license and entry points; `package build` does not warn about the listing it
//! writes; a stale listing's thousands of findings are capped in text and complete in JSON.
use std::ffi::OsStr;
use std::path::PathBuf;

use aps_test_support::PackageBuilder;

use crate::support::{Sandbox, corpus_dir};

/// Imports `zip`; returns its reference.
fn import(sandbox: &Sandbox, zip: &std::path::Path) -> String {
    let imported = sandbox
        .run([
            OsStr::new("--json"),
            OsStr::new("package"),
            OsStr::new("import"),
            zip.as_os_str(),
        ])
        .ok()
        .json();
    imported["package"]
        .as_str()
        .expect("a reference")
        .to_owned()
}

/// The corpus's `wordpress-5.2.3` metadata with the files it references, as an importable archive;
/// `list` replaces the generated APP-LIST.xml.
fn wordpress(sandbox: &Sandbox, list: Option<Vec<u8>>) -> PathBuf {
    let meta = fs_err::read_to_string(corpus_dir().join("wordpress-5.2.3/APP-META.xml"))
        .expect("the corpus has WordPress");
    let mut builder = PackageBuilder::new()
        .app_meta(meta)
        .file(
            "htdocs/license.txt",
            "GNU GENERAL PUBLIC LICENSE\nVersion 2, June 1991\n",
        )
        .file("htdocs/index.php", "<?php\n")
        .file("scripts/configure", "<?php exit(0);\n");
    if let Some(list) = list {
        builder = builder.app_list_xml(list);
    }
    builder
        .write(&sandbox.work("wordpress-5.2.3-282.app.zip"))
        .expect("write the package")
}

#[test]
fn issue_7_package_show_text_presents_the_form_and_the_license() {
    let sandbox = Sandbox::new();
    let reference = import(&sandbox, &sandbox.build_hello());
    let out = sandbox.run(["package", "show", &reference]).ok();
    let text = &out.stdout;
    for needle in [
        "Hello APS 1.0.0-1 (APS 1.2)",
        "reference: hello-aps-1.0.0-1",
        // The license: name, kind, must-accept, and its text from LICENSE.txt.
        "license: MIT License (free; must be accepted: install with --accept-license)",
        "| Permission is hereby granted, free of charge",
        // Entry points and requirements.
        "/ (frontpage): Front page",
        "php: version >= 7.0",
        // The form: groups, ids, types, constraints, defaults, required, installation-only.
        "group \"Administrator\" (authn):",
        "admin_name: string (1–32 characters) matching `^[a-zA-Z0-9_]+$`, default `admin` — Administrator login",
        "admin_password: password (at least 8 characters), required, installation-only — Administrator password",
        "title: string (at most 80 characters), default `Hello from APS` — Site title",
        "greeting: enum of hello (Hello) | welcome (Welcome), default `hello` — Greeting",
        "show_time: boolean, default `false`",
    ] {
        assert!(text.contains(needle), "`{needle}` is missing\n{out}");
    }
    // The group's settings are indented below it.
    assert!(
        text.contains("    group \"Administrator\" (authn):\n      admin_name: "),
        "{out}"
    );

    // `--json` keeps what it had (CLI.md) and adds the license text.
    let doc = sandbox
        .run(["--json", "package", "show", &reference])
        .ok()
        .json();
    for field in [
        "package",
        "name",
        "version",
        "release",
        "aps_version",
        "metadata",
    ] {
        assert!(doc.get(field).is_some(), "`{field}` is missing: {doc}");
    }
    let service = &doc["metadata"]["services"][0];
    assert_eq!(service["license"]["must_accept"], true);
    assert!(service["settings"].is_array());
    assert!(
        doc["license_texts"]["hello"]
            .as_str()
            .is_some_and(|t| t.contains("Permission is hereby granted")),
        "{doc}"
    );
}

#[test]
fn issue_7_package_show_text_of_a_corpus_package() {
    let sandbox = Sandbox::new();
    let reference = import(&sandbox, &wordpress(&sandbox, None));
    let out = sandbox.run(["package", "show", &reference]).ok();
    let text = &out.stdout;
    for needle in [
        "WordPress 5.2.3-282 (APS 1.2)",
        "service `wordpress`: WordPress",
        "license: GPLv2 (must be accepted: install with --accept-license)",
        "| GNU GENERAL PUBLIC LICENSE",
        "/wp-login.php [POST] (control-panel): Administrative interface",
        "php: extension `mysqli`",
        "database `main`: mysql >= 5.0, table prefix allowed (--db-prefix)",
        "group \"Administrator's preferences\" (authn):",
        "admin_password: password (at least 1 characters), required — Password",
        "admin_email: email, required — Administrator's email",
        "locale: enum of zh-CN (Chinese Simplified) |",
        "default `en-US` — Interface language",
    ] {
        assert!(text.contains(needle), "`{needle}` is missing\n{out}");
    }
    // Names are shown in one language (English), not in all of them.
    assert_eq!(text.matches("Interface language").count(), 1, "{out}");
}

#[test]
fn issue_7_build_does_not_warn_about_the_listing_it_writes() {
    let sandbox = Sandbox::new();
    let src = crate::support::hello_source();
    let zip = sandbox.work("hello.app.zip");
    let out = sandbox
        .run([
            OsStr::new("package"),
            OsStr::new("build"),
            src.as_os_str(),
            OsStr::new("-o"),
            zip.as_os_str(),
        ])
        .ok();
    assert_eq!(out.stderr, "", "build warned\n{out}");
    let zip2 = sandbox.work("hello2.app.zip");
    let doc = sandbox
        .run([
            OsStr::new("--json"),
            OsStr::new("package"),
            OsStr::new("build"),
            src.as_os_str(),
            OsStr::new("-o"),
            zip2.as_os_str(),
        ])
        .ok()
        .json();
    assert_eq!(doc["warnings"], serde_json::json!([]), "{doc}");
}

/// A stale APP-LIST.xml yields one finding per listed file (2,332 for the `wordpress-5.2.3`
/// listing without its files). Text output shows 20 of them and counts the rest, on a terminal
/// or not; `--json` lists them all.
#[test]
fn issue_7_stale_listing_findings_are_capped_in_text() {
    let sandbox = Sandbox::new();
    let folder = corpus_dir().join("wordpress-5.2.3");
    let text = sandbox.run([
        OsStr::new("package"),
        OsStr::new("lint"),
        folder.as_os_str(),
    ]);
    assert_eq!(text.code, Some(1), "{text}");
    let shown = text.stdout.matches("[list-mismatch]").count();
    assert_eq!(shown, 20, "{text}");
    assert!(
        text.stdout.contains(
            "… and 2312 more error(s) of rule `list-mismatch` not shown (`--json` lists them all)"
        ),
        "{text}"
    );
    assert!(
        text.stdout.ends_with("2335 error(s), 4 warning(s)\n"),
        "{text}"
    );

    let json = sandbox.run([
        OsStr::new("--json"),
        OsStr::new("package"),
        OsStr::new("lint"),
        folder.as_os_str(),
    ]);
    let doc = json.json();
    let mismatches = doc["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter(|f| f["rule"] == "list-mismatch")
        .count();
    assert_eq!(mismatches, 2332);

    // The refusal of an import is capped the same way.
    let list = fs_err::read(folder.join("APP-LIST.xml")).expect("the corpus listing");
    let zip = wordpress(&sandbox, Some(list));
    let refused = sandbox
        .run([OsStr::new("package"), OsStr::new("import"), zip.as_os_str()])
        .failed();
    assert!(
        refused.stderr.matches("[list-mismatch]").count() <= 20,
        "{refused}"
    );
    assert!(
        refused.stderr.contains("more `list-mismatch` finding(s)"),
        "{refused}"
    );
    assert!(refused.stderr.lines().count() < 40, "{refused}");
}
