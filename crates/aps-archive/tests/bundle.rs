//! Backup bundles written and read back (issue 8, data retention): a round trip through the
//! writer, `verify`, `read_entries` and the real `zstd -dc | tar -x` a person without apsctl
//! would use; files that change while they are added; and the writer's peak memory, measured in
//! a child process.

#[path = "bundle_support/mod.rs"]
#[expect(
    dead_code,
    reason = "the raw tar helpers serve the hostile-archive tests"
)]
mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use aps_archive::bundle::{
    BundleEntry, BundleError, BundleErrorKind, BundleLimits, BundleOptions, BundleWriter, Digest,
    Expected, SizeChange, read_entries, verify,
};
use support::{Noise, digest_of, manifest_of, parse_manifest, pour};

/// A new archive file as backups create them (mode 0600).
fn create_archive(path: &Path) -> fs_err::File {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .expect("test setup");
    fs_err::File::from_parts(file, path)
}

/// Runs `script` with `sh -c`, failing the test with its stderr when it fails.
fn sh(script: &str) -> String {
    let out = assert_cmd::Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "`{script}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The files of the round trip: relative path → (content, mode).
fn tree() -> BTreeMap<String, (Vec<u8>, u32)> {
    let mut files = BTreeMap::new();
    for i in 0..997u64 {
        let mut data = Vec::new();
        Noise::new(i + 1, (i * 37) % 20_000)
            .read_to_end(&mut data)
            .expect("test setup");
        let mode = if i % 7 == 0 { 0o755 } else { 0o644 };
        files.insert(format!("dir-{:02}/f-{i:03}.txt", i % 20), (data, mode));
    }
    // A name longer than the 100 bytes of a tar header, a name of Linux-legal oddities, and a
    // file larger than the chunk size (written streamed, not buffered).
    let long = format!("dir-00/{}.php", "long-name-".repeat(15));
    files.insert(long, (b"<?php echo 'long';".to_vec(), 0o640));
    files.insert("dir-01/a\\b c:d.txt".to_owned(), (b"odd".to_vec(), 0o600));
    let mut big = Vec::new();
    Noise::new(99, 9 << 20)
        .read_to_end(&mut big)
        .expect("test setup");
    files.insert("dir-02/big.bin".to_owned(), (big, 0o644));
    assert_eq!(files.len(), 1000);
    files
}

/// What the round trip wrote.
struct Written {
    archive: PathBuf,
    files: BTreeMap<String, (Vec<u8>, u32)>,
    expected: Expected,
    manifest: Vec<u8>,
    dump: Digest,
    script: Vec<u8>,
}

/// Writes the round trip's archive into `tmp` as a backup does: folders and files from a real
/// tree on disk, a 30 MiB dump poured in 64 KiB pieces, the script's file, the manifest.
fn write_round_trip(tmp: &Path) -> Written {
    let setup = "test setup";
    let src = tmp.join("root");
    let files = tree();
    for (rel, (data, mode)) in &files {
        let path = src.join(rel);
        fs_err::create_dir_all(path.parent().expect(setup)).expect(setup);
        fs_err::write(&path, data).expect(setup);
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(*mode)).expect(setup);
    }
    let archive = tmp.join("backup.tar.zst");
    let mut writer =
        BundleWriter::new(create_archive(&archive), &BundleOptions::default()).expect(setup);
    let mut expected = Expected::default();
    let mut current_dir = "";
    for (rel, (data, mode)) in &files {
        let dir = rel.split('/').next().expect(setup);
        if dir != current_dir {
            writer.add_dir(&format!("files/{dir}"), 0o750).expect(setup);
            expected.dirs.push(format!("files/{dir}"));
            current_dir = dir;
        }
        let mut file = fs_err::File::open(src.join(rel)).expect(setup);
        let size = file.metadata().expect(setup).len();
        let name = format!("files/{rel}");
        let digest = writer
            .add_file(&name, &mut file, size, *mode, 1_700_000_000)
            .expect(setup);
        assert_eq!(digest, digest_of(data), "{rel}");
        expected.files.push((name, digest));
    }
    let mut stream = writer.stream("resources/db/main.sql").expect(setup);
    assert_eq!(pour(&mut Noise::new(7, 30 << 20), &mut stream), 30 << 20);
    let (dump, chunks) = stream.finish().expect(setup);
    let mut dump_bytes = Vec::new();
    Noise::new(7, 30 << 20)
        .read_to_end(&mut dump_bytes)
        .expect(setup);
    assert_eq!(dump, digest_of(&dump_bytes));
    let four: Vec<String> = (0..4)
        .map(|i| format!("resources/db/main.sql.{i:04}"))
        .collect();
    assert_eq!(chunks, four, "30 MiB in chunks of 8 MiB");
    expected
        .streams
        .push(("resources/db/main.sql".to_owned(), dump));
    let script = b"the backup script's own file".to_vec();
    let size = script.len() as u64;
    let digest = writer
        .add_file("script/backup-file", &mut &script[..], size, 0o600, 0)
        .expect(setup);
    expected
        .files
        .push(("script/backup-file".to_owned(), digest));
    let manifest = manifest_of(&expected);
    writer
        .finish(&manifest)
        .expect(setup)
        .sync_all()
        .expect(setup);
    Written {
        archive,
        files,
        expected,
        manifest,
        dump,
        script,
    }
}

/// Restore's pass over `w.archive`: every entry in order, the stream once as one reader, the
/// manifest last; the content is the tree's.
fn check_read_entries(w: &Written) {
    let setup = "test setup";
    let mut files = BTreeMap::new();
    let mut dirs = Vec::new();
    let mut streams = Vec::new();
    let mut order = Vec::new();
    read_entries(&w.archive, &BundleLimits::default(), &mut |entry| {
        match entry {
            BundleEntry::Dir { name, mode } => {
                assert_eq!(mode, 0o750);
                dirs.push(name.to_owned());
                order.push("dir");
            }
            BundleEntry::File {
                name,
                mode,
                size,
                data,
            } => {
                let mut bytes = Vec::new();
                data.read_to_end(&mut bytes)
                    .map_err(|e| BundleError::io(name, e))?;
                assert_eq!(bytes.len() as u64, size);
                files.insert(name.to_owned(), (bytes, mode));
                order.push("file");
            }
            BundleEntry::Stream { name, data } => {
                let mut bytes = Vec::new();
                data.read_to_end(&mut bytes)
                    .map_err(|e| BundleError::io(name, e))?;
                streams.push((name.to_owned(), digest_of(&bytes)));
                order.push("stream");
            }
            BundleEntry::Manifest => order.push("manifest"),
        }
        Ok(())
    })
    .expect(setup);
    assert_eq!(dirs, w.expected.dirs);
    assert_eq!(streams, w.expected.streams);
    assert_eq!(order.last(), Some(&"manifest"));
    assert_eq!(order.len(), 20 + 1000 + 1 + 1 + 1);
    for (rel, (data, mode)) in &w.files {
        let (bytes, seen_mode) = &files[&format!("files/{rel}")];
        assert!(bytes == data, "{rel} differs");
        assert_eq!(seen_mode, mode, "{rel}");
    }
    assert_eq!(files["script/backup-file"].0, w.script);
}

/// A person without apsctl: `zstd -dc | tar -x` gives the tree with its modes, `cat` of the
/// chunks gives the dump, and nothing else comes out.
fn check_by_hand(w: &Written, out: &Path) {
    let setup = "test setup";
    fs_err::create_dir(out).expect(setup);
    sh(&format!(
        "zstd -dc '{}' | tar -x -C '{}'",
        w.archive.display(),
        out.display()
    ));
    for (rel, (data, mode)) in &w.files {
        let path = out.join("files").join(rel);
        assert!(fs_err::read(&path).expect(setup) == *data, "{rel} differs");
        let found = fs_err::metadata(&path).expect(setup).permissions().mode();
        assert_eq!(found & 0o7777, *mode, "{rel}");
    }
    let listed = sh(&format!("cd '{}' && ls resources/db", out.display()));
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        [
            "main.sql.0000",
            "main.sql.0001",
            "main.sql.0002",
            "main.sql.0003"
        ]
    );
    let sum = sh(&format!(
        "cd '{}' && cat resources/db/main.sql.* | sha256sum",
        out.display()
    ));
    assert_eq!(sum.split_whitespace().next(), Some(&*w.dump.sha256_hex()));
    assert_eq!(
        fs_err::read(out.join("script/backup-file")).expect(setup),
        w.script
    );
    assert_eq!(
        fs_err::read(out.join("manifest.json")).expect(setup),
        w.manifest
    );
    let count = sh(&format!("cd '{}' && find . -type f | wc -l", out.display()));
    assert_eq!(count.trim(), "1006", "only what was archived comes out");
}

/// Issue 8: the archive a backup writes holds the instance's files, a database dump in chunks
/// and the script's file, and reads back identically with apsctl's reader and with
/// `zstd -dc | tar -x`; `cat` of the chunks is the dump.
#[test]
fn issue_8_round_trip_of_1000_files_and_a_chunked_30_mib_stream_also_with_zstd_and_tar() {
    let tmp = tempfile::tempdir().unwrap();
    let w = write_round_trip(tmp.path());
    assert_eq!(
        fs_err::metadata(&w.archive).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let verified = verify(&w.archive, &BundleLimits::default(), &mut parse_manifest).unwrap();
    assert_eq!(verified.manifest, w.manifest);
    assert_eq!(verified.entries, 20 + 1000 + 4 + 1 + 1);
    let content: u64 = w.files.values().map(|(d, _)| d.len() as u64).sum();
    let others = (30 << 20) + w.script.len() as u64 + w.manifest.len() as u64;
    assert_eq!(verified.bytes, content + others);
    check_read_entries(&w);
    check_by_hand(&w, &tmp.path().join("by-hand"));
}

/// An empty stream (an empty database's dump) still has its chunk `0000`, and `verify` accepts
/// it against its digest.
#[test]
fn issue_8_an_empty_stream_has_one_empty_chunk() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("b.tar.zst");
    let mut writer =
        BundleWriter::new(create_archive(&archive), &BundleOptions::default()).unwrap();
    let (digest, chunks) = writer
        .stream("resources/db/empty.sql")
        .unwrap()
        .finish()
        .unwrap();
    assert_eq!(digest, digest_of(b""));
    assert_eq!(chunks, ["resources/db/empty.sql.0000"]);
    let expected = Expected {
        streams: vec![("resources/db/empty.sql".to_owned(), digest)],
        ..Expected::default()
    };
    writer.finish(&manifest_of(&expected)).unwrap();
    verify(&archive, &BundleLimits::default(), &mut parse_manifest).unwrap();
}

/// A file of the instance (which stays online) that shrinks or grows between its `fstat` and
/// its reading is refused naming it; a small file leaves nothing in the archive, so the backup
/// can add it again and the archive verifies.
#[test]
fn issue_8_a_file_that_changes_size_while_being_added_is_refused_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("b.tar.zst");
    let live = tmp.path().join("live.log");
    fs_err::write(&live, vec![b'x'; 1000]).unwrap();
    let mut writer =
        BundleWriter::new(create_archive(&archive), &BundleOptions::default()).unwrap();

    // Shrinks: announced as 1000 bytes, truncated to 400 before it is read.
    let mut data = fs_err::File::open(&live).unwrap();
    let size = data.metadata().unwrap().len();
    fs_err::OpenOptions::new()
        .write(true)
        .open(&live)
        .unwrap()
        .set_len(400)
        .unwrap();
    let error = writer
        .add_file("files/live.log", &mut data, size, 0o644, 0)
        .unwrap_err();
    assert!(
        matches!(
            error,
            BundleError::Changed {
                size: 1000,
                change: SizeChange::Shorter(400),
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("`files/live.log`"), "{error}");
    assert!(error.is_retryable());

    // Grows: announced as 400 bytes, 500 more appended before it is read.
    let mut data = fs_err::File::open(&live).unwrap();
    let size = data.metadata().unwrap().len();
    fs_err::OpenOptions::new()
        .append(true)
        .open(&live)
        .unwrap()
        .write_all(&[b'y'; 500])
        .unwrap();
    let error = writer
        .add_file("files/live.log", &mut data, size, 0o644, 0)
        .unwrap_err();
    assert!(
        matches!(
            error,
            BundleError::Changed {
                size: 400,
                change: SizeChange::Longer,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("`files/live.log`"), "{error}");

    // Added again once it holds still: the archive holds it once, as it is now.
    let mut data = fs_err::File::open(&live).unwrap();
    let size = data.metadata().unwrap().len();
    let digest = writer
        .add_file("files/live.log", &mut data, size, 0o644, 0)
        .unwrap();
    assert_eq!(digest.size, 900);
    let expected = Expected {
        files: vec![("files/live.log".to_owned(), digest)],
        ..Expected::default()
    };
    writer.finish(&manifest_of(&expected)).unwrap();
    verify(&archive, &BundleLimits::default(), &mut parse_manifest).unwrap();
}

/// A file larger than the chunk size is streamed: when it shrinks, its entry cannot be taken
/// back, so the writer refuses everything after it and names the file that broke it.
#[test]
fn issue_8_a_large_file_that_shrinks_while_streamed_leaves_the_writer_unusable() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("b.tar.zst");
    let live = tmp.path().join("big.bin");
    fs_err::write(&live, vec![b'z'; 1 << 20]).unwrap();
    let opts = BundleOptions {
        chunk_size: 64 << 10,
        ..BundleOptions::default()
    };
    let mut writer = BundleWriter::new(create_archive(&archive), &opts).unwrap();
    let mut data = fs_err::File::open(&live).unwrap();
    let size = data.metadata().unwrap().len();
    fs_err::OpenOptions::new()
        .write(true)
        .open(&live)
        .unwrap()
        .set_len(300_000)
        .unwrap();
    let error = writer
        .add_file("files/big.bin", &mut data, size, 0o644, 0)
        .unwrap_err();
    assert!(
        matches!(
            error,
            BundleError::Changed {
                change: SizeChange::Shorter(300_000),
                retryable: false,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("`files/big.bin`"), "{error}");
    let next = writer.add_dir("files/later", 0o755).unwrap_err();
    assert!(matches!(next, BundleError::Unusable { .. }), "{next:?}");
    assert!(next.to_string().contains("`files/big.bin`"), "{next}");
    assert_eq!(next.kind(), BundleErrorKind::Io);
}

/// The writer refuses names the reader would refuse, so a backup never makes an archive its
/// own restore rejects.
#[test]
fn issue_8_the_writer_refuses_names_outside_the_format() {
    let mut writer = BundleWriter::new(Vec::new(), &BundleOptions::default()).unwrap();
    for name in [
        "files/../etc/passwd",
        "/etc/passwd",
        "etc/passwd",
        "manifest.json",
        "resources/db/main.sql.0000",
        "files/a/",
    ] {
        let error = writer
            .add_file(name, &mut &b"x"[..], 1, 0o644, 0)
            .unwrap_err();
        assert_eq!(error.kind(), BundleErrorKind::Usage, "{name}: {error}");
        assert!(error.to_string().contains(name), "{error}");
    }
    writer
        .add_file("files/a", &mut &b"x"[..], 1, 0o644, 0)
        .unwrap();
    let error = writer
        .add_file("files/a", &mut &b"x"[..], 1, 0o644, 0)
        .unwrap_err();
    assert!(
        error.to_string().contains("already in the archive"),
        "{error}"
    );
    let error = writer.add_dir("files/a/b", 0o755).unwrap_err();
    assert!(
        error.to_string().contains("inside the file `files/a`"),
        "{error}"
    );
    assert!(writer.stream("files/dump.sql").is_err());
    // Refused names leave the writer usable.
    writer.add_dir("files/b", 0o755).unwrap();
    writer.finish(b"").unwrap();
}

/// The child of [`issue_8_writing_a_200_mib_stream_keeps_peak_memory_bounded`]: writes one
/// stream of `mib` MiB of incompressible data through a default writer (every core) into
/// `/dev/null`, then returns its peak resident memory as the line the parent reads.
fn write_stream_and_measure_peak(mib: u64) -> String {
    let setup = "test setup";
    let sink = fs_err::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .expect(setup);
    let out = std::io::BufWriter::with_capacity(1 << 20, sink);
    let mut writer = BundleWriter::new(out, &BundleOptions::default()).expect(setup);
    let mut stream = writer.stream("resources/db/main.sql").expect(setup);
    assert_eq!(pour(&mut Noise::new(5, mib << 20), &mut stream), mib << 20);
    let (digest, chunks) = stream.finish().expect(setup);
    assert_eq!(digest.size, mib << 20);
    assert_eq!(chunks.len() as u64, mib.div_ceil(8));
    writer.finish(b"{}").expect(setup);
    let status = fs_err::read_to_string("/proc/self/status").expect(setup);
    let peak = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .expect("Linux reports VmHWM");
    format!("peak-kib {}", peak.trim().trim_end_matches(" kB"))
}

#[test]
#[ignore = "run as a child process by issue_8_writing_a_200_mib_stream_keeps_peak_memory_bounded"]
fn issue_8_child_writes_a_100_mib_stream() {
    println!("{}", write_stream_and_measure_peak(100));
}

#[test]
#[ignore = "run as a child process by issue_8_writing_a_200_mib_stream_keeps_peak_memory_bounded"]
fn issue_8_child_writes_a_200_mib_stream() {
    println!("{}", write_stream_and_measure_peak(200));
}

/// Peak memory (`VmHWM`) of a child process that runs `test`, in KiB.
fn peak_of(test: &str) -> u64 {
    let exe: PathBuf = std::env::current_exe().expect("test setup");
    let out = assert_cmd::Command::new(exe)
        .args([
            "--exact",
            test,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .expect("test setup");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{test} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .split_whitespace()
        .skip_while(|word| *word != "peak-kib")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{test} printed no peak: {stdout}"))
}

/// Writing an archive streams: a 200 MiB dump costs no more memory than a 100 MiB one, and the
/// peak stays under the issue's 64 MiB aim (one 8 MiB chunk buffer plus zstd's job buffers).
#[test]
fn issue_8_writing_a_200_mib_stream_keeps_peak_memory_bounded() {
    let small = peak_of("issue_8_child_writes_a_100_mib_stream");
    let large = peak_of("issue_8_child_writes_a_200_mib_stream");
    assert!(
        large < 56 << 10,
        "peak memory writing 200 MiB: {large} KiB (100 MiB: {small} KiB)"
    );
    assert!(
        large <= small + (4 << 10),
        "peak memory grows with the data: {small} KiB for 100 MiB, {large} KiB for 200 MiB"
    );
}

/// `Digest` is what manifests carry: its hex form is the one `sha256sum` prints.
#[test]
fn issue_8_digest_hex_is_sha256sum_s() {
    let digest: Digest = digest_of(b"abc");
    assert_eq!(
        digest.sha256_hex(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}
