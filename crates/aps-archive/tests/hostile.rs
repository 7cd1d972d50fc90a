//! Hostile and broken archives: each is refused by `scan` and by `extract` with an error that
//! names the problem and the entry, and a refused extraction leaves its destination empty and
//! writes nothing outside it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use aps_archive::{
    Archive, ArchiveError, ErrorKind, Limits, ListingProblem, NameProblem, ScanOptions,
    extract_all, scan, verify_listing,
};
use aps_meta::applist::parse_app_list;
use aps_test_support::{PackageBuilder, minimal_meta_xml};

/// A package with valid metadata and one web file, to which each test adds its poison.
fn base() -> PackageBuilder {
    PackageBuilder::new()
        .app_meta(minimal_meta_xml("victim", "1.0", "1"))
        .file("htdocs/index.php", "<?php echo 'ok';")
}

/// Every path under `dir`, relative, sorted.
fn tree(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in fs_err::read_dir(&current).expect("test setup") {
            let path = entry.expect("test setup").path();
            out.insert(path.strip_prefix(dir).expect("test setup").to_path_buf());
            if fs_err::symlink_metadata(&path)
                .expect("test setup")
                .is_dir()
            {
                stack.push(path);
            }
        }
    }
    out
}

/// Writes `builder`'s archive, checks that `scan` and `extract_all` refuse it with the same
/// message, that the destination is left empty and its parent unchanged, and returns the error.
fn refused_with(builder: &PackageBuilder, limits: &Limits) -> ArchiveError {
    let archives = tempfile::tempdir().expect("test setup");
    let zip = builder
        .write(&archives.path().join("evil.app.zip"))
        .expect("test setup");
    refused_file(&zip, limits)
}

fn refused_file(zip: &Path, limits: &Limits) -> ArchiveError {
    let scan_error = scan(zip, limits).expect_err("the archive must be refused");
    let parent = tempfile::tempdir().expect("test setup");
    fs_err::write(parent.path().join("sibling.txt"), "keep").expect("test setup");
    let dest = parent.path().join("stage");
    fs_err::create_dir(&dest).expect("test setup");
    let before = tree(parent.path());
    let extract_error = extract_all(zip, &dest, limits).expect_err("the archive must be refused");
    assert_eq!(extract_error.to_string(), scan_error.to_string());
    assert_eq!(tree(&dest), BTreeSet::new(), "destination not emptied");
    assert_eq!(
        tree(parent.path()),
        before,
        "something was written outside the destination"
    );
    assert_eq!(
        fs_err::read_to_string(parent.path().join("sibling.txt")).expect("test setup"),
        "keep"
    );
    scan_error
}

fn refused(builder: &PackageBuilder) -> ArchiveError {
    refused_with(builder, &Limits::default())
}

fn assert_message(error: &ArchiveError, parts: &[&str]) {
    let message = error.to_string();
    assert!(message.contains("evil.app.zip"), "{message}");
    for part in parts {
        assert!(message.contains(part), "`{part}` not in: {message}");
    }
}

#[test]
fn zip_slip_with_parent_segments_is_refused() {
    for name in ["../evil.php", "htdocs/../../evil.php", "htdocs/.."] {
        let error = refused(&base().raw_entry(name, "<?php system($_GET['c']);"));
        assert!(
            matches!(
                error,
                ArchiveError::UnsafeName {
                    problem: NameProblem::ParentSegment,
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(error.kind(), ErrorKind::Hostile);
        assert_message(&error, &[&format!("entry `{name}` escapes the package")]);
    }
}

#[test]
fn absolute_path_is_refused() {
    let error = refused(&base().raw_entry("/tmp/evil.php", "x"));
    assert!(matches!(
        error,
        ArchiveError::UnsafeName {
            problem: NameProblem::Absolute,
            ..
        }
    ));
    assert_message(&error, &["entry `/tmp/evil.php` is an absolute path"]);
}

#[test]
fn backslash_and_drive_letter_names_are_refused() {
    let error = refused(&base().raw_entry("..\\evil.php", "x"));
    assert_message(&error, &["entry `..\\evil.php` contains a backslash"]);
    let error = refused(&base().raw_entry("C:/evil.php", "x"));
    assert_message(&error, &["entry `C:/evil.php` starts with a drive letter"]);
}

#[test]
fn empty_dot_and_control_segments_are_refused() {
    let error = refused(&base().raw_entry("htdocs//x.php", "x"));
    assert_message(&error, &["entry `htdocs//x.php` has an empty path segment"]);
    let error = refused(&base().raw_entry("./x.php", "x"));
    assert_message(&error, &["entry `./x.php` has a `.` path segment"]);
    let error = refused(&base().raw_entry("a\0b.php", "x"));
    assert_message(
        &error,
        &["entry `a\\u{0}b.php` contains a control character"],
    );
    let error = refused(&base().raw_entry("a\nb.php", "x"));
    assert_message(&error, &["entry `a\\nb.php` contains a control character"]);
}

#[test]
fn name_that_is_not_utf8_is_refused() {
    let error = refused(&base().raw_entry(b"htdocs/caf\xe9.php", "x"));
    assert!(matches!(error, ArchiveError::NameNotUtf8 { .. }), "{error}");
    assert_message(
        &error,
        &["entry name `htdocs/caf\u{fffd}.php` is not valid UTF-8"],
    );
}

#[test]
fn symlink_is_refused() {
    let error = refused(&base().symlink("htdocs/passwd", "/etc/passwd"));
    assert!(matches!(error, ArchiveError::Symlink { .. }), "{error}");
    assert_message(&error, &["entry `htdocs/passwd` is a symbolic link"]);
}

#[test]
fn special_files_are_refused() {
    for (mode, name) in [
        (0o010_644, "fifo"),
        (0o020_644, "tty"),
        (0o140_644, "socket"),
    ] {
        let error = refused(&base().special_entry(name, mode));
        assert!(matches!(error, ArchiveError::SpecialFile { .. }), "{error}");
        assert_message(
            &error,
            &[&format!(
                "entry `{name}` is not a regular file or directory"
            )],
        );
    }
}

#[test]
fn duplicate_names_are_refused() {
    let error = refused(&base().duplicate_entry("htdocs/index.php", "<?php evil();"));
    assert!(matches!(error, ArchiveError::Duplicate { .. }), "{error}");
    assert_message(&error, &["duplicate entry `htdocs/index.php`"]);
    // A file and a directory entry of the same name are duplicates after normalisation.
    let error = refused(&base().dir("htdocs/index.php"));
    assert_message(&error, &["duplicate entry `htdocs/index.php`"]);
    let error = refused(&base().dir("htdocs/x").dir("htdocs/x/"));
    assert_message(&error, &["duplicate entry `htdocs/x`"]);
}

#[test]
fn entry_inside_a_file_is_refused() {
    let error = refused(&base().file("htdocs/index.php/x", "x"));
    assert_message(
        &error,
        &["entry `htdocs/index.php/x` lies inside `htdocs/index.php`, which is a file"],
    );
}

#[test]
fn bomb_is_refused_by_total_size() {
    let limits = Limits {
        max_total_uncompressed: 4 << 20,
        ..Limits::default()
    };
    let error = refused_with(&base().bomb("htdocs/zeros", 8 << 20), &limits);
    assert!(matches!(error, ArchiveError::TooLarge { .. }), "{error}");
    assert_eq!(error.kind(), ErrorKind::Limit);
    assert_message(
        &error,
        &["uncompressed size exceeds the limit of 4194304 bytes"],
    );
}

#[test]
fn bomb_is_refused_by_compression_ratio() {
    let limits = Limits {
        max_ratio: 100,
        ratio_floor: 1 << 20,
        ..Limits::default()
    };
    let error = refused_with(&base().bomb("htdocs/zeros", 8 << 20), &limits);
    assert!(
        matches!(error, ArchiveError::SuspiciousRatio { .. }),
        "{error}"
    );
    assert_message(
        &error,
        &[
            "compression ratio of entry `htdocs/zeros` is suspicious (",
            ":1, limit 100:1)",
        ],
    );
    // Below the floor the same data is accepted.
    let archives = tempfile::tempdir().unwrap();
    let zip = base()
        .bomb("htdocs/zeros", 1 << 20)
        .write(&archives.path().join("ok.app.zip"))
        .unwrap();
    let scanned = scan(&zip, &limits).unwrap();
    assert_eq!(scanned.files["htdocs/zeros"].size, 1 << 20);
}

#[test]
fn header_that_understates_the_size_cannot_bypass_the_cap() {
    // 8 MiB of zeros declared as 1000 bytes: the declared total and ratio pass, the stream
    // does not.
    let limits = Limits {
        max_total_uncompressed: 1 << 20,
        ..Limits::default()
    };
    let builder = base().lying_entry("htdocs/small.txt", vec![0u8; 8 << 20], 1000);
    let error = refused_with(&builder, &limits);
    assert!(
        matches!(error, ArchiveError::LongerThanDeclared { .. }),
        "{error}"
    );
    assert_message(
        &error,
        &["entry `htdocs/small.txt` holds more than the 1000 bytes its header declares"],
    );
}

#[test]
fn header_that_overstates_the_size_is_refused() {
    let error = refused(&base().lying_entry("htdocs/big.txt", "abc", 10));
    assert!(
        matches!(error, ArchiveError::ShorterThanDeclared { .. }),
        "{error}"
    );
    assert_message(
        &error,
        &["entry `htdocs/big.txt` holds 3 bytes, fewer than the 10 its header declares"],
    );
}

#[test]
fn too_many_entries_are_refused() {
    let limits = Limits {
        max_entries: 3,
        ..Limits::default()
    };
    let error = refused_with(&base().file("a", "1").file("b", "2"), &limits);
    assert!(
        matches!(error, ArchiveError::TooManyEntries { .. }),
        "{error}"
    );
    assert_message(&error, &["has more than 3 entries"]);
}

#[test]
fn random_bytes_and_empty_files_are_not_zip_archives() {
    let dir = tempfile::tempdir().unwrap();
    let random: Vec<u8> = (0u32..4096)
        .map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[2])
        .collect();
    for (name, bytes) in [("evil.app.zip", random), ("empty.app.zip", Vec::new())] {
        let path = dir.path().join(name);
        fs_err::write(&path, bytes).unwrap();
        let error = refused_file(&path, &Limits::default());
        assert!(matches!(error, ArchiveError::NotZip { .. }), "{error}");
        assert_eq!(error.kind(), ErrorKind::Malformed);
        assert_eq!(
            error.to_string(),
            format!("`{}` is not a zip archive", path.display())
        );
    }
}

#[test]
fn missing_archive_is_an_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.app.zip");
    let error = scan(&path, &Limits::default()).unwrap_err();
    assert!(matches!(error, ArchiveError::Open { .. }), "{error}");
    assert_eq!(error.kind(), ErrorKind::Io);
}

#[test]
fn corrupt_data_is_refused_after_partial_extraction_is_removed() {
    let content = "0123456789abcdef".repeat(64);
    let mut bytes = base()
        .stored()
        .file("htdocs/z.txt", content.clone())
        .to_bytes()
        .unwrap();
    // Flip one byte of the stored content: the CRC no longer matches.
    let at = bytes
        .windows(content.len())
        .position(|w| w == content.as_bytes())
        .unwrap();
    bytes[at + 100] ^= 0x55;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evil.app.zip");
    fs_err::write(&path, bytes).unwrap();
    // `htdocs/index.php` is written before the corrupt entry is reached.
    let error = refused_file(&path, &Limits::default());
    assert!(matches!(error, ArchiveError::Read { .. }), "{error}");
    assert_message(&error, &["entry `htdocs/z.txt` cannot be read"]);
}

/// Scans `builder`'s archive (which must pass the archive checks) and verifies its listing.
fn listing_problems(builder: &PackageBuilder) -> Vec<ListingProblem> {
    let dir = tempfile::tempdir().expect("test setup");
    let zip = builder
        .write(&dir.path().join("pkg.app.zip"))
        .expect("test setup");
    let mut archive =
        Archive::open(&zip, &Limits::default()).expect("the archive passes its checks");
    let list_bytes = archive
        .read_file("APP-LIST.xml", 1 << 20)
        .expect("test setup");
    let list = parse_app_list(&list_bytes, "APP-LIST.xml").expect("test setup");
    let scanned = archive
        .scan(&ScanOptions::for_list(&list))
        .expect("the archive scans");
    verify_listing(&scanned.files, &list)
        .expect_err("the listing must not match")
        .problems
}

#[test]
fn tampered_file_fails_verification() {
    let problems = listing_problems(&base().tampered_file("htdocs/x.php", "<?php evil();"));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(matches!(
        &problems[0],
        ListingProblem::Digest { name, algorithm: "sha256", .. } if name == "htdocs/x.php"
    ));
}

#[test]
fn unlisted_file_fails_verification() {
    let problems = listing_problems(&base().unlisted_file("htdocs/backdoor.php", "<?php"));
    assert_eq!(
        problems,
        vec![ListingProblem::Unlisted {
            name: "htdocs/backdoor.php".to_owned()
        }]
    );
    assert_eq!(
        problems[0].to_string(),
        "`htdocs/backdoor.php` is in the archive but not listed in APP-LIST.xml"
    );
}

#[test]
fn listed_but_missing_file_fails_verification() {
    let problems = listing_problems(&base().listed_but_missing("htdocs/gone.php", 12));
    assert_eq!(
        problems,
        vec![ListingProblem::Missing {
            name: "htdocs/gone.php".to_owned()
        }]
    );
}

#[test]
fn all_listing_problems_are_reported_together() {
    let builder = base()
        .tampered_file("htdocs/t.php", "t")
        .unlisted_file("htdocs/u.php", "u")
        .listed_but_missing("htdocs/m.php", 1)
        .file_listed_as("htdocs/s.php", "four", 5, &"0".repeat(64));
    let problems = listing_problems(&builder);
    let names: Vec<&str> = problems.iter().map(ListingProblem::name).collect();
    // `s.php` has both a size and a digest problem.
    assert_eq!(
        names,
        [
            "htdocs/m.php",
            "htdocs/s.php",
            "htdocs/s.php",
            "htdocs/t.php",
            "htdocs/u.php"
        ]
    );
}

#[test]
fn corrupt_data_is_reported_by_a_parallel_scan() {
    let content = "fedcba9876543210".repeat(4096);
    let mut bytes = aps_test_support::bench_package(40, 1 << 20)
        .stored()
        .file("htdocs/zz-last.txt", content.clone())
        .to_bytes()
        .unwrap();
    let at = bytes
        .windows(content.len())
        .position(|w| w == content.as_bytes())
        .unwrap();
    bytes[at + 5000] ^= 0x01;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evil.app.zip");
    fs_err::write(&path, bytes).unwrap();
    let mut archive = Archive::open(&path, &Limits::default()).unwrap();
    for threads in [1, 2, 3] {
        let options = ScanOptions {
            threads: std::num::NonZeroUsize::new(threads),
            ..ScanOptions::default()
        };
        let error = archive.scan(&options).unwrap_err();
        assert_message(&error, &["entry `htdocs/zz-last.txt` cannot be read"]);
    }
}
