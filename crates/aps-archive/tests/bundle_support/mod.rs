//! Shared helpers of the bundle tests: a line-based test manifest, and tar archives built byte by
//! byte (so that hostile ones can hold what the writer would never write).
//!
//! Main decision: the manifest here is not apsctl's (`aps-ops` owns that); the tests only need
//! something `verify`'s `expected` callback can read back, so one line per claim will do.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::path::Path;

use aps_archive::bundle::{Digest, Expected};

/// The test manifest claiming `expected`: one line per claim, `file|stream <sha> <size> <name>`
/// or `dir <name>`.
pub fn manifest_of(expected: &Expected) -> Vec<u8> {
    let mut out = String::new();
    for (name, d) in &expected.files {
        writeln!(out, "file {} {} {name}", d.sha256_hex(), d.size).expect("test setup");
    }
    for (name, d) in &expected.streams {
        writeln!(out, "stream {} {} {name}", d.sha256_hex(), d.size).expect("test setup");
    }
    for name in &expected.dirs {
        writeln!(out, "dir {name}").expect("test setup");
    }
    out.into_bytes()
}

/// Reads a test manifest back (the `expected` callback of `verify`).
pub fn parse_manifest(bytes: &[u8]) -> Result<Expected, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    let mut expected = Expected::default();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("dir ") {
            expected.dirs.push(name.to_owned());
            continue;
        }
        let mut parts = line.splitn(4, ' ');
        let (Some(kind), Some(sha), Some(size), Some(name)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("bad line `{line}`"));
        };
        let digest = Digest {
            size: size.parse().map_err(|_| format!("bad size in `{line}`"))?,
            sha256: unhex(sha).ok_or_else(|| format!("bad digest in `{line}`"))?,
        };
        match kind {
            "file" => expected.files.push((name.to_owned(), digest)),
            "stream" => expected.streams.push((name.to_owned(), digest)),
            _ => return Err(format!("bad kind in `{line}`")),
        }
    }
    Ok(expected)
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The digest of `data`.
pub fn digest_of(data: &[u8]) -> Digest {
    use sha2::Digest as _;
    Digest {
        size: data.len() as u64,
        sha256: sha2::Sha256::digest(data).into(),
    }
}

/// One tar member as written raw: any name bytes, any type, any declared size.
pub struct Raw {
    pub name: Vec<u8>,
    pub kind: tar::EntryType,
    pub data: Vec<u8>,
    /// The size the header declares (the data's length unless set).
    pub declared: Option<u64>,
    /// A link target (for link entries).
    pub link: Option<Vec<u8>>,
}

impl Raw {
    /// A regular file.
    pub fn file(name: &str, data: &[u8]) -> Self {
        Self::of(name.as_bytes(), tar::EntryType::Regular, data)
    }

    /// A folder.
    pub fn dir(name: &str) -> Self {
        Self::of(name.as_bytes(), tar::EntryType::Directory, b"")
    }

    /// Any entry.
    pub fn of(name: &[u8], kind: tar::EntryType, data: &[u8]) -> Self {
        Self {
            name: name.to_vec(),
            kind,
            data: data.to_vec(),
            declared: None,
            link: None,
        }
    }

    /// The manifest claiming nothing.
    pub fn empty_manifest() -> Self {
        Self::file("manifest.json", b"")
    }
}

/// The 512-byte GNU header of `raw` (name bytes copied as they are, up to 100).
pub fn header_of(raw: &Raw) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(raw.kind);
    header.set_size(raw.declared.unwrap_or(raw.data.len() as u64));
    header.set_mode(0o644);
    header.set_mtime(0);
    let old = header.as_old_mut();
    old.name[..raw.name.len()].copy_from_slice(&raw.name);
    if let Some(link) = &raw.link {
        old.linkname[..link.len()].copy_from_slice(link);
    }
    header.set_cksum();
    header
}

/// The tar stream of `entries` (with the end marker), each padded to its block.
pub fn tar_of(entries: &[Raw]) -> Vec<u8> {
    let mut out = Vec::new();
    for raw in entries {
        out.extend_from_slice(header_of(raw).as_bytes());
        out.extend_from_slice(&raw.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0; 1024]);
    out
}

/// Compresses `tar` into the file `path` as a backup would be.
pub fn write_zst(path: &Path, tar: &[u8]) {
    fs_err::write(path, zstd::encode_all(tar, 3).expect("test setup")).expect("test setup");
}

/// A reader of `size` pseudo-random bytes (xorshift; compresses poorly, like real data).
pub struct Noise {
    state: u64,
    left: u64,
}

impl Noise {
    pub fn new(seed: u64, size: u64) -> Self {
        Self {
            state: seed | 1,
            left: size,
        }
    }
}

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        for chunk in buf[..n].chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            chunk.copy_from_slice(&self.state.to_le_bytes()[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Copies `data` into `out` in pieces of at most 64 KiB, as a dumper writes.
pub fn pour(data: &mut dyn Read, out: &mut dyn Write) -> u64 {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        let n = data.read(&mut buf).expect("test setup");
        if n == 0 {
            return total;
        }
        out.write_all(&buf[..n]).expect("test setup");
        total += n as u64;
    }
}
