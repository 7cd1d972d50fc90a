//! The import happy path with `examples/hello`: build, import, list, show, duplicate, remove.
use std::ffi::OsStr;

use serde_json::Value;

use crate::support::{Sandbox, files_below, packages_of};

/// Every object below `value` (itself included) for which `pred` holds.
fn find_all<'a>(value: &'a Value, pred: &dyn Fn(&Value) -> bool, out: &mut Vec<&'a Value>) {
    if pred(value) {
        out.push(value);
    }
    match value {
        Value::Array(items) => items.iter().for_each(|v| find_all(v, pred, out)),
        Value::Object(map) => map.values().for_each(|v| find_all(v, pred, out)),
        _ => {}
    }
}

/// The one setting object with `id` in a `package show` document.
fn setting<'a>(show: &'a Value, id: &str) -> &'a Value {
    let mut found = Vec::new();
    find_all(
        show,
        &|v| v["id"] == id && v.get("kind").is_some(),
        &mut found,
    );
    assert_eq!(found.len(), 1, "setting `{id}` not found once in {show}");
    found[0]
}

/// The text of the first `names`/`labels` entry of `value`.
fn first_text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key][0]["text"].as_str().unwrap_or_default()
}

/// The settings of `examples/hello` as `package show` prints them: types, defaults, the group.
fn assert_hello_settings(show: &Value) {
    let title = setting(show, "title");
    assert_eq!(title["kind"]["type"], "string", "{title}");
    assert_eq!(title["default_value"], "Hello from APS");
    assert_eq!(title["kind"]["max_length"], 80);
    assert_eq!(first_text(title, "names"), "Site title");
    let greeting = setting(show, "greeting");
    assert_eq!(greeting["kind"]["type"], "enum");
    assert_eq!(greeting["default_value"], "hello");
    let choices: Vec<&str> = greeting["kind"]["choices"]
        .as_array()
        .expect("enum choices")
        .iter()
        .map(|c| c["id"].as_str().expect("a choice id"))
        .collect();
    assert_eq!(choices, ["hello", "welcome"]);
    let show_time = setting(show, "show_time");
    assert_eq!(show_time["kind"]["type"], "boolean");
    assert_eq!(show_time["default_value"], "false");
    let password = setting(show, "admin_password");
    assert_eq!(password["kind"]["type"], "password");
    assert_eq!(password["kind"]["min_length"], 8);
    assert_eq!(password["installation_only"], true);
    let login = setting(show, "admin_name");
    assert_eq!(login["kind"]["regex"], "^[a-zA-Z0-9_]+$");
    assert_eq!(login["default_value"], "admin");
    // Group "Administrator" (class authn) holds the two admin settings, and only those.
    let mut groups = Vec::new();
    find_all(
        show,
        &|v| v.get("items").is_some() && v.get("names").is_some(),
        &mut groups,
    );
    assert_eq!(groups.len(), 1, "one settings group expected: {groups:?}");
    let group = groups[0];
    assert_eq!(first_text(group, "names"), "Administrator");
    assert_eq!(group["class"], "authn");
    let mut members = Vec::new();
    find_all(
        group,
        &|v| v.get("kind").is_some() && v["id"].is_string(),
        &mut members,
    );
    let ids: Vec<&str> = members
        .iter()
        .map(|s| s["id"].as_str().expect("a setting id"))
        .collect();
    assert_eq!(ids, ["admin_name", "admin_password"]);
}

/// Requirements, license and entry points of `examples/hello` in `package show`.
fn assert_hello_requirements_license_entries(show: &Value) {
    // Requirements: PHP 7.0 or later.
    let text = show.to_string();
    let mut requirements = Vec::new();
    find_all(
        show,
        &|v| v.get("requirements").is_some(),
        &mut requirements,
    );
    assert_eq!(requirements.len(), 1, "{text}");
    let req = requirements[0]["requirements"].to_string();
    assert!(
        req.contains("\"min\":\"7.0\"") && req.to_lowercase().contains("php"),
        "PHP >= 7.0 requirement missing: {req}"
    );
    // License: free, must be accepted, MIT text in LICENSE.txt.
    let mut licenses = Vec::new();
    find_all(show, &|v| v.get("license").is_some(), &mut licenses);
    assert_eq!(licenses.len(), 1, "{text}");
    let license = &licenses[0]["license"];
    assert_eq!(license["must_accept"], true, "{license}");
    assert_eq!(license["text_name"], "MIT License");
    assert_eq!(license["text_file"], "LICENSE.txt");
    assert_eq!(license["kind"], "free");
    // Entry points: the front page at `/`.
    let mut entries = Vec::new();
    find_all(show, &|v| v.get("dst").is_some(), &mut entries);
    assert_eq!(entries.len(), 1, "{text}");
    assert_eq!(entries[0]["dst"], "/");
    assert_eq!(entries[0]["class"], "frontpage");
    assert_eq!(first_text(entries[0], "labels"), "Front page");
}

#[test]
fn hello_imports_lists_shows_and_removes() {
    let sandbox = Sandbox::new();
    let zip = sandbox.build_hello();
    let original = fs_err::read(&zip).unwrap();

    // import
    let imported = sandbox
        .run([
            OsStr::new("--json"),
            OsStr::new("package"),
            OsStr::new("import"),
            zip.as_os_str(),
        ])
        .ok()
        .json();
    assert_eq!(imported["name"], "Hello APS", "{imported}");
    assert_eq!(imported["version"], "1.0.0");
    assert_eq!(imported["release"], "1");
    assert_eq!(imported["aps_version"], "1.2");
    let reference = imported["package"]
        .as_str()
        .expect("a reference")
        .to_owned();
    assert!(!reference.is_empty());

    // list
    let list = sandbox.run(["--json", "package", "list"]).ok().json();
    let packages = packages_of(&list);
    assert_eq!(packages.len(), 1, "{list}");
    for key in ["package", "name", "version", "release", "aps_version"] {
        assert_eq!(packages[0][key], imported[key], "`{key}` differs: {list}");
    }
    // The text list names the reference too.
    let text = sandbox.run(["package", "list"]).ok();
    assert!(text.stdout.contains(&reference), "{text}");

    // show
    let show = sandbox
        .run(["package", "show", &reference, "--json"])
        .ok()
        .json();
    for key in ["package", "name", "version", "release", "aps_version"] {
        assert_eq!(show[key], imported[key], "`{key}` differs: {show}");
    }
    assert_hello_settings(&show);
    assert_hello_requirements_license_entries(&show);

    // The original archive is kept, byte for byte, in the repository.
    let repository = sandbox.home().join("repository");
    let stored = files_below(&repository);
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(fs_err::read(&stored[0]).unwrap(), original);

    // A second import of the same package is refused and changes nothing.
    sandbox
        .run([
            OsStr::new("--json"),
            OsStr::new("package"),
            OsStr::new("import"),
            zip.as_os_str(),
        ])
        .failed()
        .stderr_names(&["already in the repository", "Hello APS"]);
    assert_eq!(files_below(&repository), stored);
    assert_eq!(fs_err::read(&stored[0]).unwrap(), original);
    assert_eq!(sandbox.package_refs(), std::slice::from_ref(&reference));
    assert!(files_below(&sandbox.home().join("staging")).is_empty());
    let show_again = sandbox
        .run(["package", "show", &reference, "--json"])
        .ok()
        .json();
    assert_eq!(
        show_again, show,
        "a refused import changed the stored package"
    );

    // remove, then remove again
    sandbox.run(["package", "remove", &reference]).ok();
    assert!(sandbox.package_refs().is_empty());
    assert!(
        files_below(&repository).is_empty(),
        "the archive stays after remove"
    );
    sandbox
        .run(["package", "remove", &reference])
        .failed()
        .stderr_names(&[&reference]);
    // It can be imported again after removal.
    sandbox
        .run([OsStr::new("package"), OsStr::new("import"), zip.as_os_str()])
        .ok();
    assert_eq!(sandbox.package_refs().len(), 1);
}

#[test]
fn another_release_of_the_same_package_coexists() {
    let sandbox = Sandbox::new();
    let build = |release: &str| {
        aps_test_support::PackageBuilder::new()
            .app_meta(aps_test_support::minimal_meta_xml("demo", "1.0", release))
            .file("htdocs/index.php", "<?php echo 'hi';")
            .file("scripts/configure", "<?php exit(0);")
            .write(&sandbox.work(&format!("demo-1.0-{release}.app.zip")))
            .unwrap()
    };
    let first = build("1");
    let second = build("2");
    let mut refs = Vec::new();
    for zip in [&first, &second] {
        let json = sandbox
            .run([
                OsStr::new("--json"),
                OsStr::new("package"),
                OsStr::new("import"),
                zip.as_os_str(),
            ])
            .ok()
            .json();
        refs.push(json["package"].as_str().unwrap().to_owned());
    }
    assert_ne!(refs[0], refs[1], "references must differ");
    let mut listed = sandbox.package_refs();
    listed.sort();
    refs.sort();
    assert_eq!(listed, refs);
}

/// Regression: concurrent imports of one package used to share one partial file name, and the
/// losers deleted the winner's archive after their store insert failed, leaving a package whose
/// archive was gone.
#[test]
fn concurrent_imports_of_one_package_keep_its_archive() {
    for _round in 0..8 {
        let sandbox = Sandbox::new();
        let zip = sandbox.build_hello();
        let original = fs_err::read(&zip).unwrap();
        sandbox.run(["package", "list"]).ok(); // create the home first
        let outcomes: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..6)
                .map(|_| {
                    scope.spawn(|| {
                        sandbox.run([OsStr::new("package"), OsStr::new("import"), zip.as_os_str()])
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners = outcomes.iter().filter(|o| o.code == Some(0)).count();
        assert_eq!(winners, 1, "exactly one import must succeed");
        for lost in outcomes.into_iter().filter(|o| o.code != Some(0)) {
            lost.failed().stderr_names(&["already"]);
        }
        let refs = sandbox.package_refs();
        assert_eq!(refs.len(), 1, "{refs:?}");
        let stored = files_below(&sandbox.home().join("repository"));
        assert_eq!(stored.len(), 1, "one archive expected: {stored:?}");
        assert_eq!(fs_err::read(&stored[0]).unwrap(), original);
        assert!(files_below(&sandbox.home().join("staging")).is_empty());
    }
}

/// A leftover file with the package's archive name (a crash between copy and store) neither
/// blocks the import nor is mistaken for the package.
#[test]
fn leftover_archive_name_does_not_block_import() {
    let sandbox = Sandbox::new();
    let zip = sandbox.build_hello();
    let original = fs_err::read(&zip).unwrap();
    sandbox.run(["package", "list"]).ok(); // create the home first
    let leftover = sandbox.home().join("repository/hello-aps-1.0.0-1.app.zip");
    fs_err::write(&leftover, "leftover").unwrap();
    let imported = sandbox
        .run([
            OsStr::new("--json"),
            OsStr::new("package"),
            OsStr::new("import"),
            zip.as_os_str(),
        ])
        .ok()
        .json();
    assert_eq!(imported["name"], "Hello APS");
    let stored = files_below(&sandbox.home().join("repository"));
    assert!(
        stored.iter().any(|p| fs_err::read(p).unwrap() == original),
        "the archive is not in the repository: {stored:?}"
    );
    let reference = imported["package"].as_str().unwrap().to_owned();
    sandbox.run(["package", "remove", &reference]).ok();
    let left = files_below(&sandbox.home().join("repository"));
    assert_eq!(
        left,
        [leftover],
        "remove must delete the package's own archive only"
    );
}
