//! Well-formed packages: scanning, reading single files, extracting and verifying listings.

use std::num::NonZeroUsize;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use aps_archive::{
    Archive, ArchiveError, ErrorKind, Limits, ListingProblem, Md5Digests, ScanOptions, extract,
    extract_all, read_file, scan, verify_listing,
};
use aps_meta::applist::parse_app_list;
use aps_test_support::{ListDigest, PackageBuilder, bench_package, minimal_meta_xml};
use sha2::{Digest as _, Sha256};

fn package() -> PackageBuilder {
    PackageBuilder::new()
        .app_meta(minimal_meta_xml("demo", "1.0", "1"))
        .file("scripts/configure", "<?php exit(0);\n")
        .dir("htdocs")
        .file("htdocs/index.php", "<?php echo 'hello';\n")
        .file("htdocs/lib/util.php", "<?php function f() {}\n".repeat(100))
        .dir("htdocs/tmp")
        .file("images/icon.png", vec![0x89, b'P', b'N', b'G', 0, 1, 2, 3])
}

fn write(builder: &PackageBuilder) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("test setup");
    let path = builder
        .write(&dir.path().join("demo.app.zip"))
        .expect("test setup");
    (dir, path)
}

fn sha256(bytes: impl AsRef<[u8]>) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[test]
fn scan_reports_every_file_with_size_and_sha256() {
    let (_dir, zip) = write(&package());
    let scanned = scan(&zip, &Limits::default()).unwrap();
    let names: Vec<&str> = scanned.files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "APP-LIST.xml",
            "APP-META.xml",
            "htdocs/index.php",
            "htdocs/lib/util.php",
            "images/icon.png",
            "scripts/configure"
        ]
    );
    let util = &scanned.files["htdocs/lib/util.php"];
    let content = "<?php function f() {}\n".repeat(100);
    assert_eq!(util.size, content.len() as u64);
    assert_eq!(util.sha256, sha256(&content));
    assert_eq!(util.md5, None);
    let dirs: Vec<&str> = scanned.dirs.iter().map(String::as_str).collect();
    assert_eq!(dirs, ["htdocs", "htdocs/tmp"]);
}

#[test]
fn scan_and_verify_a_generated_listing() {
    for builder in [package(), package().stored()] {
        let (_dir, zip) = write(&builder);
        let mut archive = Archive::open(&zip, &Limits::default()).unwrap();
        assert!(archive.contains_file("APP-META.xml"));
        assert!(!archive.contains_file("htdocs"));
        assert_eq!(archive.dirs().collect::<Vec<_>>(), ["htdocs", "htdocs/tmp"]);
        let list_bytes = archive.read_file("APP-LIST.xml", 1 << 20).unwrap();
        let list = parse_app_list(&list_bytes, "APP-LIST.xml").unwrap();
        assert_eq!(list.entries.len(), 5);
        let options = ScanOptions::for_list(&list);
        assert_eq!(options.md5, Md5Digests::Skip);
        let scanned = archive.scan(&options).unwrap();
        verify_listing(&scanned.files, &list).unwrap();
    }
}

#[test]
fn md5_only_listing_needs_md5_digests() {
    let (_dir, zip) = write(&package().list_digest(ListDigest::Md5));
    let mut archive = Archive::open(&zip, &Limits::default()).unwrap();
    let list = parse_app_list(
        &archive.read_file("APP-LIST.xml", 1 << 20).unwrap(),
        "APP-LIST.xml",
    )
    .unwrap();
    assert!(list.has_md5_entries());
    let without = archive.scan(&ScanOptions::default()).unwrap();
    let problems = verify_listing(&without.files, &list).unwrap_err().problems;
    assert_eq!(problems.len(), 5);
    assert!(
        problems
            .iter()
            .all(|p| matches!(p, ListingProblem::Md5NotComputed { .. }))
    );
    let options = ScanOptions::for_list(&list);
    assert_eq!(options.md5, Md5Digests::Compute);
    let with = archive.scan(&options).unwrap();
    verify_listing(&with.files, &list).unwrap();
}

#[test]
fn read_file_returns_content_and_refuses_missing_or_large_entries() {
    let meta = minimal_meta_xml("demo", "1.0", "1");
    let (_dir, zip) = write(&package());
    assert_eq!(
        read_file(&zip, "APP-META.xml", 1 << 20).unwrap(),
        meta.as_bytes()
    );
    let error = read_file(&zip, "missing.xml", 1 << 20).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Missing);
    assert!(
        error.to_string().ends_with("`missing.xml` is missing"),
        "{error}"
    );
    let error = read_file(&zip, "htdocs", 1 << 20).unwrap_err();
    assert!(matches!(error, ArchiveError::NotFound { .. }), "{error}");
    let error = read_file(&zip, "APP-META.xml", 10).unwrap_err();
    assert!(
        matches!(error, ArchiveError::EntryTooLarge { limit: 10, .. }),
        "{error}"
    );
}

#[test]
fn extract_all_writes_files_and_dirs_with_fixed_modes_and_hashes() {
    let (_dir, zip) = write(&package());
    let dest = tempfile::tempdir().unwrap();
    let extracted = extract_all(&zip, dest.path(), &Limits::default()).unwrap();
    let scanned = scan(&zip, &Limits::default()).unwrap();
    assert_eq!(extracted.files, scanned.files);
    assert_eq!(extracted.dirs, scanned.dirs);
    assert_eq!(
        fs_err::read_to_string(dest.path().join("htdocs/index.php")).unwrap(),
        "<?php echo 'hello';\n"
    );
    let mode = |path: &Path| {
        fs_err::symlink_metadata(dest.path().join(path))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode(Path::new("scripts/configure")), 0o644);
    assert_eq!(mode(Path::new("htdocs/tmp")), 0o755);
    assert_eq!(mode(Path::new("htdocs/lib")), 0o755);
    assert_eq!(
        extracted.targets["htdocs/lib/util.php"],
        PathBuf::from("htdocs/lib/util.php")
    );
}

#[test]
fn extract_with_a_filter_maps_and_skips_entries() {
    let (_dir, zip) = write(&package());
    let dest = tempfile::tempdir().unwrap();
    let web_root = |name: &str| name.strip_prefix("htdocs/").map(PathBuf::from);
    let extracted = extract(&zip, dest.path(), &web_root, &Limits::default()).unwrap();
    let names: Vec<&str> = extracted.files.keys().map(String::as_str).collect();
    assert_eq!(names, ["htdocs/index.php", "htdocs/lib/util.php"]);
    assert_eq!(extracted.dirs.iter().collect::<Vec<_>>(), ["htdocs/tmp"]);
    assert!(dest.path().join("index.php").is_file());
    assert!(dest.path().join("lib/util.php").is_file());
    assert!(dest.path().join("tmp").is_dir());
    assert!(!dest.path().join("htdocs").exists());
    assert!(!dest.path().join("APP-META.xml").exists());
}

#[test]
fn extract_refuses_a_destination_that_is_not_empty() {
    let (_dir, zip) = write(&package());
    let dest = tempfile::tempdir().unwrap();
    fs_err::write(dest.path().join("existing"), "mine").unwrap();
    let error = extract_all(&zip, dest.path(), &Limits::default()).unwrap_err();
    assert!(
        matches!(error, ArchiveError::DestinationNotEmpty { .. }),
        "{error}"
    );
    assert_eq!(error.kind(), ErrorKind::Usage);
    assert_eq!(
        fs_err::read_to_string(dest.path().join("existing")).unwrap(),
        "mine"
    );
    let missing = dest.path().join("absent");
    let error = extract_all(&zip, &missing, &Limits::default()).unwrap_err();
    assert!(matches!(error, ArchiveError::Destination { .. }), "{error}");
}

#[test]
fn extract_refuses_unsafe_targets_and_collisions_and_cleans_up() {
    let (_dir, zip) = write(&package());
    let parent = tempfile::tempdir().unwrap();
    let dest = parent.path().join("stage");
    fs_err::create_dir(&dest).unwrap();
    let escape = |name: &str| Some(PathBuf::from(format!("../{name}")));
    let error = extract(&zip, &dest, &escape, &Limits::default()).unwrap_err();
    assert!(
        matches!(error, ArchiveError::UnsafeTarget { .. }),
        "{error}"
    );
    let absolute = |_: &str| Some(PathBuf::from("/tmp/x"));
    assert!(matches!(
        extract(&zip, &dest, &absolute, &Limits::default()).unwrap_err(),
        ArchiveError::UnsafeTarget { .. }
    ));
    // Two files mapped to the same target: the second cannot be created.
    let flatten = |name: &str| {
        Path::new(name)
            .extension()
            .is_some_and(|e| e == "php")
            .then(|| PathBuf::from("same.php"))
    };
    let error = extract(&zip, &dest, &flatten, &Limits::default()).unwrap_err();
    assert!(matches!(error, ArchiveError::Write { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("cannot write entry `htdocs/lib/util.php`"),
        "{error}"
    );
    assert_eq!(fs_err::read_dir(&dest).unwrap().count(), 0);
    assert_eq!(fs_err::read_dir(parent.path()).unwrap().count(), 1);
}

#[test]
fn parallel_and_sequential_scans_agree() {
    let (_dir, zip) = write(&bench_package(300, 6 << 20));
    let mut archive = Archive::open(&zip, &Limits::default()).unwrap();
    let mut results = Vec::new();
    for threads in [1, 2, 3] {
        let options = ScanOptions {
            md5: Md5Digests::Compute,
            threads: NonZeroUsize::new(threads),
        };
        results.push(archive.scan(&options).unwrap());
    }
    assert_eq!(results[0].files.len(), 303);
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0], results[2]);
    let list = parse_app_list(
        &archive.read_file("APP-LIST.xml", 1 << 20).unwrap(),
        "APP-LIST.xml",
    )
    .unwrap();
    verify_listing(&results[1].files, &list).unwrap();
}
