//! The output contract of the package commands (CLI.md "General"): `--json`, before or after the
//! command, prints exactly one JSON document on stdout; reasons go to stderr as sentences.
use std::ffi::OsStr;

use crate::support::Sandbox;

/// Runs `args` with `--json` before the command: it must succeed with exactly one JSON document
/// on stdout and no JSON on stderr. Returns the document.
fn one_document(sandbox: &Sandbox, args: &[&OsStr]) -> serde_json::Value {
    let mut before = vec![OsStr::new("--json")];
    before.extend_from_slice(args);
    let out = sandbox.run(&before).ok();
    let doc = out.json();
    assert!(
        !out.stderr.trim_start().starts_with('{'),
        "JSON on stderr\n{out}"
    );
    doc
}

/// Runs `args` with `--json` after the command; returns its one JSON document.
fn json_last(sandbox: &Sandbox, args: &[&OsStr]) -> serde_json::Value {
    let mut after = args.to_vec();
    after.push(OsStr::new("--json"));
    sandbox.run(&after).ok().json()
}

#[test]
fn every_package_command_prints_one_json_document() {
    let sandbox = Sandbox::new();
    let src = crate::support::hello_source();
    let zip = sandbox.work("hello.app.zip");
    let build = one_document(
        &sandbox,
        &[
            OsStr::new("package"),
            OsStr::new("build"),
            src.as_os_str(),
            OsStr::new("-o"),
            zip.as_os_str(),
        ],
    );
    assert!(build.is_object(), "{build}");

    let lint_args = [OsStr::new("package"), OsStr::new("lint"), zip.as_os_str()];
    assert_eq!(
        one_document(&sandbox, &lint_args),
        json_last(&sandbox, &lint_args)
    );

    let import = one_document(
        &sandbox,
        &[OsStr::new("package"), OsStr::new("import"), zip.as_os_str()],
    );
    let reference = import["package"].as_str().unwrap().to_owned();
    let reference = OsStr::new(&reference);

    let list_args = [OsStr::new("package"), OsStr::new("list")];
    assert_eq!(
        one_document(&sandbox, &list_args),
        json_last(&sandbox, &list_args)
    );

    let show_args = [OsStr::new("package"), OsStr::new("show"), reference];
    assert_eq!(
        one_document(&sandbox, &show_args),
        json_last(&sandbox, &show_args)
    );

    let removed = json_last(
        &sandbox,
        &[OsStr::new("package"), OsStr::new("remove"), reference],
    );
    assert!(removed.is_object() || removed.is_null(), "{removed}");
}

#[test]
fn lint_with_errors_still_prints_one_document() {
    let sandbox = Sandbox::new();
    let path = crate::support::corpus_dir().join("dolibarr-template-aps1.2/APP-META.xml");
    let out = sandbox.run([
        OsStr::new("package"),
        OsStr::new("lint"),
        path.as_os_str(),
        OsStr::new("--json"),
    ]);
    assert_eq!(out.code, Some(1), "{out}");
    let doc = out.json();
    assert!(!doc["errors"].as_array().unwrap().is_empty());
}

#[test]
fn text_lint_names_rule_and_location() {
    let sandbox = Sandbox::new();
    let path = crate::support::corpus_dir().join("dolibarr-template-aps1.2/APP-META.xml");
    let out = sandbox.run([OsStr::new("package"), OsStr::new("lint"), path.as_os_str()]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stdout.contains("[meta-unfilled-template]") && out.stdout.contains("__VERSION__"),
        "{out}"
    );
    assert!(
        serde_json::from_str::<serde_json::Value>(&out.stdout).is_err(),
        "text mode printed JSON\n{out}"
    );
}

#[test]
fn unknown_references_are_refused_with_a_sentence() {
    let sandbox = Sandbox::new();
    for command in ["show", "remove"] {
        for json in [true, false] {
            let mut args = vec!["package", command, "no-such-package-1.0-1"];
            if json {
                args.push("--json");
            }
            let out = sandbox
                .run(&args)
                .failed()
                .stderr_names(&["`no-such-package-1.0-1`"]);
            assert!(
                out.stdout.trim().is_empty(),
                "data on stdout for a failure\n{out}"
            );
            let reason = out.stderr.trim();
            assert_eq!(reason.lines().count(), 1, "one sentence expected\n{out}");
        }
    }
    // The repository is still empty and usable.
    assert!(sandbox.package_refs().is_empty());
}

#[test]
fn import_failure_with_json_keeps_stdout_clean() {
    let sandbox = Sandbox::new();
    let path = sandbox.work("junk.app.zip");
    fs_err::write(&path, "junk").unwrap();
    let out = sandbox
        .run([
            OsStr::new("package"),
            OsStr::new("import"),
            path.as_os_str(),
            OsStr::new("--json"),
        ])
        .failed();
    assert!(out.stdout.trim().is_empty(), "{out}");
}
