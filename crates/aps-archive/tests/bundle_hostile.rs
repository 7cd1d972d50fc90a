//! Hostile and broken backup archives (issue 8, data retention), built byte by byte: each is
//! refused by `verify` (and, unless only checksums are wrong, by `read_entries`) with an error
//! that names the problem and the entry, before a visitor sees anything past the bad entry.

#[path = "bundle_support/mod.rs"]
#[expect(dead_code, reason = "the writing helpers serve the round-trip tests")]
mod support;

use std::io::{self, Write};
use std::path::PathBuf;

use aps_archive::NameProblem;
use aps_archive::bundle::{
    BundleEntry, BundleError, BundleErrorKind, BundleLimits, BundleOptions, BundleWriter, Expected,
    Problem, read_entries, verify,
};
use support::{Raw, digest_of, header_of, manifest_of, parse_manifest, tar_of, write_zst};
use tar::EntryType;

/// A temporary folder with the archive of `entries` in it.
struct Case {
    _tmp: tempfile::TempDir,
    path: PathBuf,
}

fn case(entries: &[Raw]) -> Case {
    let tmp = tempfile::tempdir().expect("test setup");
    let path = tmp.path().join("hostile.tar.zst");
    write_zst(&path, &tar_of(entries));
    Case { _tmp: tmp, path }
}

/// `verify` with `limits` must refuse the archive; `read_entries` must refuse it the same way
/// unless only checksums are wrong.
/// Returns `verify`'s error, and checks that its message names the archive.
fn refused_with(entries: &[Raw], limits: &BundleLimits) -> BundleError {
    let case = case(entries);
    let error = verify(&case.path, limits, &mut parse_manifest).expect_err("verify refuses");
    assert!(
        error.to_string().contains(&case.path.display().to_string()),
        "{error}"
    );
    let again = read_entries(&case.path, limits, &mut |_| Ok(()));
    if error.kind() == BundleErrorKind::Mismatch {
        // The second pass repeats the structural checks only; checksums are `verify`'s.
        again.expect("the structure is sound");
        return error;
    }
    let again = again.expect_err("read_entries refuses");
    assert_eq!(again.kind(), error.kind(), "{again} / {error}");
    assert_eq!(
        std::mem::discriminant(&again),
        std::mem::discriminant(&error),
        "{again} / {error}"
    );
    error
}

fn refused(entries: &[Raw]) -> BundleError {
    refused_with(entries, &BundleLimits::default())
}

/// Asserts the message contains every one of `parts`.
fn says(error: &BundleError, parts: &[&str]) {
    let message = error.to_string();
    for part in parts {
        assert!(message.contains(part), "`{part}` not in: {message}");
    }
}

fn with_link(mut raw: Raw, target: &[u8]) -> Raw {
    raw.link = Some(target.to_vec());
    raw
}

#[test]
fn issue_8_path_traversal_is_refused() {
    let error = refused(&[
        Raw::file("files/../../etc/cron.d/evil", b"* * * * * root sh"),
        Raw::empty_manifest(),
    ]);
    assert!(
        matches!(
            error,
            BundleError::UnsafeName {
                problem: NameProblem::ParentSegment,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.kind(), BundleErrorKind::Hostile);
    says(&error, &["`files/../../etc/cron.d/evil`"]);
}

#[test]
fn issue_8_an_absolute_path_is_refused() {
    let error = refused(&[
        Raw::file("/etc/passwd", b"root::0:0"),
        Raw::empty_manifest(),
    ]);
    assert!(
        matches!(
            error,
            BundleError::UnsafeName {
                problem: NameProblem::Absolute,
                ..
            }
        ),
        "{error:?}"
    );
    says(&error, &["`/etc/passwd`"]);
}

#[test]
fn issue_8_a_symbolic_link_is_refused() {
    let link = with_link(
        Raw::of(b"files/config.php", EntryType::Symlink, b""),
        b"/etc/shadow",
    );
    let error = refused(&[link, Raw::empty_manifest()]);
    assert!(matches!(error, BundleError::Special { .. }), "{error:?}");
    assert_eq!(error.kind(), BundleErrorKind::Hostile);
    says(&error, &["`files/config.php`", "symbolic link"]);
}

#[test]
fn issue_8_a_hard_link_is_refused() {
    let link = with_link(
        Raw::of(b"files/config.php", EntryType::Link, b""),
        b"etc/shadow",
    );
    let error = refused(&[link, Raw::empty_manifest()]);
    assert!(matches!(error, BundleError::Special { .. }), "{error:?}");
    says(&error, &["`files/config.php`", "hard link"]);
}

#[test]
fn issue_8_devices_and_fifos_are_refused() {
    for (kind, what) in [
        (EntryType::Char, "character device"),
        (EntryType::Block, "block device"),
        (EntryType::Fifo, "FIFO"),
    ] {
        let error = refused(&[Raw::of(b"files/dev", kind, b""), Raw::empty_manifest()]);
        assert!(matches!(error, BundleError::Special { .. }), "{error:?}");
        says(&error, &["`files/dev`", what]);
    }
}

#[test]
fn issue_8_pax_headers_and_sparse_files_are_refused() {
    for (kind, what) in [
        (EntryType::XHeader, "PAX extended header"),
        (EntryType::XGlobalHeader, "PAX extended header"),
        (EntryType::GNUSparse, "sparse file"),
    ] {
        let error = refused(&[
            Raw::of(b"files/x", kind, b"30 path=files/../../etc/passwd\n"),
            Raw::file("files/y", b"y"),
            Raw::empty_manifest(),
        ]);
        assert!(matches!(error, BundleError::Special { .. }), "{error:?}");
        says(&error, &[what]);
    }
}

#[test]
fn issue_8_a_duplicate_entry_is_refused() {
    let error = refused(&[
        Raw::file("files/index.php", b"good"),
        Raw::file("files/index.php", b"evil"),
        Raw::empty_manifest(),
    ]);
    assert!(matches!(error, BundleError::Duplicate { .. }), "{error:?}");
    says(&error, &["`files/index.php`"]);
}

#[test]
fn issue_8_an_entry_inside_a_file_is_refused() {
    let error = refused(&[
        Raw::file("files/a", b"a file"),
        Raw::file("files/a/b", b"inside it"),
        Raw::empty_manifest(),
    ]);
    assert!(matches!(error, BundleError::InsideFile { .. }), "{error:?}");
    says(&error, &["`files/a/b`", "`files/a`"]);
}

#[test]
fn issue_8_a_chunk_gap_is_refused() {
    let error = refused(&[
        Raw::file("resources/db/main.sql.0000", b"part 1"),
        Raw::file("resources/db/main.sql.0002", b"part 3"),
        Raw::empty_manifest(),
    ]);
    assert!(matches!(error, BundleError::ChunkOrder { .. }), "{error:?}");
    assert_eq!(error.kind(), BundleErrorKind::Hostile);
    says(&error, &["`resources/db/main.sql.0002`", "main.sql.0000"]);
}

#[test]
fn issue_8_a_stream_that_does_not_start_at_chunk_0000_is_refused() {
    let error = refused(&[
        Raw::file("resources/db/main.sql.0001", b"part 2"),
        Raw::empty_manifest(),
    ]);
    assert!(matches!(error, BundleError::ChunkOrder { .. }), "{error:?}");
    says(&error, &["`resources/db/main.sql.0001`", "main.sql.0000"]);
}

#[test]
fn issue_8_chunks_of_two_streams_interleaved_are_refused() {
    let error = refused(&[
        Raw::file("resources/db/a.sql.0000", b"a1"),
        Raw::file("resources/db/b.sql.0000", b"b1"),
        Raw::file("resources/db/a.sql.0001", b"a2"),
        Raw::empty_manifest(),
    ]);
    assert!(matches!(error, BundleError::ChunkOrder { .. }), "{error:?}");
    says(&error, &["`resources/db/a.sql.0001`"]);
}

#[test]
fn issue_8_entries_outside_the_layout_are_refused() {
    for name in [
        "etc/passwd",
        "resources/db/main.sql",
        "resources/db/main.sql.12",
        "files",
    ] {
        let error = refused(&[Raw::file(name, b"x"), Raw::empty_manifest()]);
        assert!(matches!(error, BundleError::Misplaced { .. }), "{error:?}");
        says(&error, &[&format!("`{name}`")]);
    }
}

#[test]
fn issue_8_a_name_that_is_not_utf8_is_refused() {
    let error = refused(&[
        Raw::of(b"files/caf\xe9.txt", EntryType::Regular, b"x"),
        Raw::empty_manifest(),
    ]);
    assert!(
        matches!(error, BundleError::NameNotUtf8 { .. }),
        "{error:?}"
    );
}

#[test]
fn issue_8_a_folder_with_content_is_refused() {
    let error = refused(&[
        Raw::of(b"files/dir/", EntryType::Directory, b"hidden"),
        Raw::empty_manifest(),
    ]);
    assert!(
        matches!(error, BundleError::FolderWithData { .. }),
        "{error:?}"
    );
    says(&error, &["`files/dir`"]);
}

#[test]
fn issue_8_a_long_name_longer_than_path_max_is_refused() {
    let mut name = b"files/".to_vec();
    name.resize(5000, b'a');
    let error = refused(&[
        Raw::of(b"././@LongLink", EntryType::GNULongName, &name),
        Raw::file("files/short", b"x"),
        Raw::empty_manifest(),
    ]);
    assert!(matches!(error, BundleError::LongName { .. }), "{error:?}");
    says(&error, &["5000 bytes"]);
}

#[test]
fn issue_8_an_entry_after_the_manifest_is_refused() {
    let error = refused(&[
        Raw::empty_manifest(),
        Raw::file("files/late.php", b"<?php system($_GET['c']);"),
    ]);
    assert!(
        matches!(error, BundleError::AfterManifest { .. }),
        "{error:?}"
    );
    says(&error, &["`files/late.php`"]);
}

#[test]
fn issue_8_an_archive_without_manifest_is_refused() {
    let error = refused(&[Raw::file("files/a", b"a")]);
    assert!(matches!(error, BundleError::NoManifest { .. }), "{error:?}");
    assert_eq!(error.kind(), BundleErrorKind::Malformed);
}

#[test]
fn issue_8_a_file_not_matching_the_manifest_is_refused() {
    let claims = Expected {
        files: vec![("files/index.php".to_owned(), digest_of(b"<?php echo 1;"))],
        ..Expected::default()
    };
    let error = refused(&[
        Raw::file("files/index.php", b"<?php evil();"),
        Raw::file("manifest.json", &manifest_of(&claims)),
    ]);
    let BundleError::Mismatch { problems, .. } = &error else {
        panic!("{error:?}");
    };
    assert!(
        matches!(&problems.0[..], [Problem::Differs { entry, .. }] if entry == "files/index.php"),
        "{problems:?}"
    );
    assert_eq!(error.kind(), BundleErrorKind::Mismatch);
    says(&error, &["`files/index.php`", "the manifest says"]);
}

#[test]
fn issue_8_a_manifest_listing_a_missing_file_is_refused() {
    let claims = Expected {
        files: vec![("files/wp-config.php".to_owned(), digest_of(b"secret"))],
        ..Expected::default()
    };
    let error = refused(&[Raw::file("manifest.json", &manifest_of(&claims))]);
    let BundleError::Mismatch { problems, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(
        problems.0,
        [Problem::Missing {
            entry: "files/wp-config.php".to_owned()
        }]
    );
    says(&error, &["`files/wp-config.php` is missing"]);
}

/// Missing, extra, mismatching and wrongly typed entries are all reported in one error.
#[test]
fn issue_8_every_difference_from_the_manifest_is_reported_together() {
    let claims = Expected {
        files: vec![
            ("files/changed".to_owned(), digest_of(b"before")),
            ("files/gone".to_owned(), digest_of(b"gone")),
            ("files/ok".to_owned(), digest_of(b"ok")),
        ],
        streams: vec![("resources/db/main.sql".to_owned(), digest_of(b"dump"))],
        dirs: vec!["files/sub".to_owned(), "files/was-a-dir".to_owned()],
    };
    let error = refused(&[
        Raw::dir("files/sub/"),
        Raw::file("files/changed", b"after"),
        Raw::file("files/ok", b"ok"),
        Raw::file("files/was-a-dir", b"now a file"),
        Raw::file("files/extra", b"planted"),
        Raw::file("resources/db/main.sql.0000", b"du"),
        Raw::file("resources/db/main.sql.0001", b"mp"),
        Raw::file("manifest.json", &manifest_of(&claims)),
    ]);
    let BundleError::Mismatch { problems, .. } = &error else {
        panic!("{error:?}");
    };
    let found: Vec<(&str, &str)> = problems
        .0
        .iter()
        .map(|p| match p {
            Problem::Missing { entry } => ("missing", entry.as_str()),
            Problem::Extra { entry } => ("extra", entry.as_str()),
            Problem::Differs { entry, .. } => ("differs", entry.as_str()),
            Problem::WrongKind { entry, .. } => ("kind", entry.as_str()),
            Problem::Repeated { entry } => ("repeated", entry.as_str()),
        })
        .collect();
    assert_eq!(
        found,
        [
            ("differs", "files/changed"),
            ("missing", "files/gone"),
            ("kind", "files/was-a-dir"),
            ("extra", "files/extra"),
        ],
        "the stream `dump` matches as a whole; `files/ok` and `files/sub` match"
    );
    says(
        &error,
        &[
            "4 problems",
            "`files/changed`",
            "`files/gone` is missing",
            "`files/was-a-dir` is a file",
            "`files/extra` is not in the manifest",
        ],
    );
}

#[test]
fn issue_8_an_entry_bigger_than_the_limit_is_refused_from_its_header() {
    let limits = BundleLimits {
        max_entry_bytes: 1000,
        ..BundleLimits::default()
    };
    let error = refused_with(
        &[Raw::file("files/big", &[b'x'; 2000]), Raw::empty_manifest()],
        &limits,
    );
    assert!(
        matches!(
            error,
            BundleError::EntryTooLarge {
                size: 2000,
                limit: 1000,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.kind(), BundleErrorKind::Limit);
    says(&error, &["`files/big`"]);
    // A header that declares 200 GiB is refused under the default limits without its data.
    let mut huge = Raw::file("files/huge", b"");
    huge.declared = Some(200 << 30);
    let error = refused(&[huge]);
    assert!(
        matches!(error, BundleError::EntryTooLarge { .. }),
        "{error:?}"
    );
    says(&error, &["`files/huge`"]);
}

#[test]
fn issue_8_a_stream_bigger_than_the_limit_is_refused_as_a_whole() {
    let limits = BundleLimits {
        max_entry_bytes: 1000,
        ..BundleLimits::default()
    };
    let error = refused_with(
        &[
            Raw::file("resources/db/main.sql.0000", &[b'x'; 600]),
            Raw::file("resources/db/main.sql.0001", &[b'x'; 600]),
            Raw::empty_manifest(),
        ],
        &limits,
    );
    assert!(
        matches!(error, BundleError::EntryTooLarge { size: 1200, .. }),
        "{error:?}"
    );
    says(&error, &["`resources/db/main.sql`"]);
}

#[test]
fn issue_8_too_many_entries_and_a_too_large_manifest_are_refused() {
    let limits = BundleLimits {
        max_entries: 3,
        ..BundleLimits::default()
    };
    let entries: Vec<Raw> = (0..5)
        .map(|i| Raw::file(&format!("files/{i}"), b"x"))
        .chain([Raw::empty_manifest()])
        .collect();
    let error = refused_with(&entries, &limits);
    assert!(
        matches!(error, BundleError::TooManyEntries { limit: 3, .. }),
        "{error:?}"
    );
    let limits = BundleLimits {
        max_manifest_bytes: 10,
        ..BundleLimits::default()
    };
    let error = refused_with(&[Raw::file("manifest.json", &[b' '; 100])], &limits);
    assert!(
        matches!(error, BundleError::EntryTooLarge { .. }),
        "{error:?}"
    );
    says(&error, &["`manifest.json`"]);
}

/// A zstd bomb: 1 GiB of zeros in one entry compresses to a few dozen KiB. The entry's header
/// declares its size, so the reader refuses it before inflating a byte of it.
#[test]
fn issue_8_a_zstd_bomb_is_refused_before_it_is_inflated() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bomb.tar.zst");
    let file = fs_err::File::create(&path).unwrap();
    let mut encoder = zstd::stream::write::Encoder::new(file, 1).unwrap();
    encoder.multithread(2).unwrap();
    let mut bomb = Raw::file("files/bomb", b"");
    bomb.declared = Some(1 << 30);
    encoder.write_all(header_of(&bomb).as_bytes()).unwrap();
    io::copy(&mut io::Read::take(io::repeat(0), 1 << 30), &mut encoder).unwrap();
    encoder
        .write_all(&tar_of(&[Raw::empty_manifest()]))
        .unwrap();
    encoder.finish().unwrap();
    let compressed = fs_err::metadata(&path).unwrap().len();
    assert!(compressed < 1 << 20, "a bomb: {compressed} bytes for 1 GiB");
    let limits = BundleLimits {
        max_total_bytes: 256 << 20,
        ..BundleLimits::default()
    };
    let error = verify(&path, &limits, &mut parse_manifest).unwrap_err();
    assert!(matches!(error, BundleError::TooLarge { .. }), "{error:?}");
    assert_eq!(error.kind(), BundleErrorKind::Limit);
    says(&error, &["`files/bomb`"]);
}

/// Data hidden after the tar end marker (where `tar -x` never looks) is refused, and so is a
/// bomb of zero padding there.
#[test]
fn issue_8_data_after_the_end_of_the_tar_archive_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut tar = tar_of(&[Raw::file("files/a", b"a"), Raw::empty_manifest()]);
    let hidden = tmp.path().join("hidden.tar.zst");
    let mut with_data = tar.clone();
    with_data.extend_from_slice(b"#!/bin/sh\nrm -rf /\n");
    write_zst(&hidden, &with_data);
    let limits = BundleLimits::default();
    let error = verify(&hidden, &limits, &mut parse_manifest).unwrap_err();
    assert!(
        matches!(error, BundleError::TrailingData { .. }),
        "{error:?}"
    );
    assert_eq!(error.kind(), BundleErrorKind::Hostile);
    let padded = tmp.path().join("padded.tar.zst");
    tar.resize(tar.len() + (64 << 20), 0);
    write_zst(&padded, &tar);
    let error = verify(&padded, &limits, &mut parse_manifest).unwrap_err();
    assert!(
        matches!(error, BundleError::TrailingData { .. }),
        "{error:?}"
    );
    says(&error, &["padding"]);
    // GNU tar's own padding (to its 10 KiB record) is fine.
    let normal = tmp.path().join("normal.tar.zst");
    let mut record = tar_of(&[Raw::empty_manifest()]);
    record.resize(10240, 0);
    write_zst(&normal, &record);
    verify(&normal, &limits, &mut parse_manifest).unwrap();
}

/// A backup cut short (a full disk, a copy interrupted) is refused as corrupt, whether the cut
/// falls inside an entry or between entries.
#[test]
fn issue_8_a_truncated_archive_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("whole.tar.zst");
    let mut writer = BundleWriter::new(
        fs_err::File::create(&path).unwrap(),
        &BundleOptions::default(),
    )
    .unwrap();
    let data = vec![7u8; 100_000];
    let mut noise = Vec::new();
    io::Read::read_to_end(&mut support::Noise::new(3, 300_000), &mut noise).unwrap();
    writer
        .add_file("files/a", &mut &data[..], data.len() as u64, 0o644, 0)
        .unwrap();
    writer
        .add_file("files/b", &mut &noise[..], noise.len() as u64, 0o644, 0)
        .unwrap();
    writer.finish(b"").unwrap();
    let whole = fs_err::read(&path).unwrap();
    for keep in [whole.len() / 2, whole.len() - 10] {
        let cut = tmp.path().join(format!("cut-{keep}.tar.zst"));
        fs_err::write(&cut, &whole[..keep]).unwrap();
        let error = verify(&cut, &BundleLimits::default(), &mut |_| {
            Ok(Expected::default())
        })
        .unwrap_err();
        assert_eq!(
            error.kind(),
            BundleErrorKind::Malformed,
            "{keep}: {error:?}"
        );
    }
}

#[test]
fn issue_8_a_file_that_is_not_zstd_is_refused_as_malformed() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("notes.tar.zst");
    fs_err::write(&path, "not an archive at all").unwrap();
    let error = verify(&path, &BundleLimits::default(), &mut parse_manifest).unwrap_err();
    assert!(matches!(error, BundleError::Corrupt { .. }), "{error:?}");
    assert_eq!(error.kind(), BundleErrorKind::Malformed);
}

/// Restore's pass stops at the first bad entry: its visitor never sees what follows.
#[test]
fn issue_8_read_entries_hands_nothing_past_a_hostile_entry() {
    let case = case(&[
        Raw::file("files/ok", b"ok"),
        with_link(Raw::of(b"files/link", EntryType::Symlink, b""), b"/etc"),
        Raw::file("files/after", b"after"),
        Raw::empty_manifest(),
    ]);
    let mut seen = Vec::new();
    let error = read_entries(&case.path, &BundleLimits::default(), &mut |entry| {
        if let BundleEntry::File { name, .. } = entry {
            seen.push(name.to_owned());
        }
        Ok(())
    })
    .unwrap_err();
    assert!(matches!(error, BundleError::Special { .. }), "{error:?}");
    assert_eq!(seen, ["files/ok"]);
}

/// A visitor's own failure comes back naming the archive and the entry, with its cause.
#[test]
fn issue_8_a_visitor_failure_names_the_archive_and_the_entry() {
    let case = case(&[
        Raw::file("resources/db/main.sql.0000", b"CREATE TABLE"),
        Raw::empty_manifest(),
    ]);
    let error = read_entries(
        &case.path,
        &BundleLimits::default(),
        &mut |entry| match entry {
            BundleEntry::Stream { name, .. } => {
                Err(BundleError::other(name, "the database refused the dump"))
            }
            _ => Ok(()),
        },
    )
    .unwrap_err();
    assert_eq!(error.kind(), BundleErrorKind::Io);
    says(
        &error,
        &[&case.path.display().to_string(), "`resources/db/main.sql`"],
    );
    let source = std::error::Error::source(&error).map(ToString::to_string);
    assert_eq!(source.as_deref(), Some("the database refused the dump"));
}

/// Names a hostile archive uses to forge output are shown escaped.
#[test]
fn issue_8_control_characters_in_names_are_escaped_in_messages() {
    let error = refused(&[
        Raw::file("files/a\n\u{1b}[31mOK", b"x"),
        Raw::file("files/a\n\u{1b}[31mOK", b"x"),
        Raw::empty_manifest(),
    ]);
    let message = error.to_string();
    assert!(
        !message.contains('\n') && !message.contains('\u{1b}'),
        "{message:?}"
    );
    says(&error, &["files/a\\n\\u{1b}[31mOK"]);
}
