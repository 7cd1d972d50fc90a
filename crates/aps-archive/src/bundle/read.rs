//! Reading an untrusted backup bundle in one streaming pass: checking, hashing, handing entries
//! to a visitor and comparing the result with the manifest.
//!
//! Main decision: one engine ([`walk`]) serves [`verify`], [`read_entries`] and
//! [`read_verified`]. It iterates the tar stream raw (GNU long names are resolved here, with a
//! cap, because the tar crate would read a long-name or PAX header of any declared size into
//! memory) and checks each entry from its header alone (type, name, place, limits, duplicates)
//! before any of its data is read. Chunks of a stream are joined into one reader that pulls the
//! next entry when a chunk ends, so a visitor sees a dump as one stream. After the tar end the
//! rest of the zstd stream is read to its end, so zstd's content checksum is checked and no data
//! can hide behind the end marker.
//!
//! Known gaps: the comparison with the manifest needs every name and digest read so far, so
//! memory grows with the number of entries (bounded by [`BundleLimits::max_entries`]); PAX
//! headers are refused, not interpreted.

use std::collections::{HashMap, HashSet};
use std::io::{self, BufReader, Read};
use std::path::Path;

use sha2::{Digest as _, Sha256};
use tar::EntryType;

use super::names::{self, Conflict, NameSet, Role};
use super::{
    BundleEntry, BundleError, BundleLimits, Digest, Expected, Problem, Problems, Verified,
};
use crate::name::RawNameError;

/// Largest zstd window a decoder may allocate (8 MiB, what level 19 uses): a hostile frame
/// cannot make the reader reserve more.
const WINDOW_LOG_MAX: u32 = 23;
/// Longest GNU long name accepted (`PATH_MAX`).
const MAX_LONG_NAME: u64 = 4096;
/// Most padding accepted after the tar end marker (GNU tar pads to its record size).
const MAX_TRAILING: u64 = 1 << 20;
/// Buffer between the decompressor and the tar reader, which reads headers 512 bytes at a time.
const READ_BUFFER: usize = 64 * 1024;
/// Buffer for reading what a visitor leaves unread.
const DRAIN_BUFFER: usize = 256 * 1024;

/// The decompressed archive as the tar reader sees it.
type Source = BufReader<zstd::stream::read::Decoder<'static, BufReader<fs_err::File>>>;

/// Reads the archive `path` once, checking every entry (see the [module documentation](super))
/// and hashing each file and stream; at the end hands the manifest to `expected`, which returns
/// what the manifest claims, and compares every claim with what was read. All missing, extra and
/// mismatching entries are reported together in [`BundleError::Mismatch`].
pub fn verify(
    path: &Path,
    limits: &BundleLimits,
    expected: &mut dyn FnMut(&[u8]) -> Result<Expected, String>,
) -> Result<Verified, BundleError> {
    read_verified(path, limits, expected, &mut |_| Ok(()))
}

/// A second pass for restore, after [`verify`]: calls `visit` for each entry in order (for a
/// stream once, at its first chunk, with a reader over all its chunks). Every structural check
/// of [`verify`] applies again; checksums are not computed.
pub fn read_entries(
    path: &Path,
    limits: &BundleLimits,
    visit: &mut dyn FnMut(BundleEntry<'_>) -> Result<(), BundleError>,
) -> Result<(), BundleError> {
    walk(path, limits, Hashing::Skip, visit).map(|_| ())
}

/// [`verify`] and [`read_entries`] in one pass: `visit` sees every entry as it is read, and the
/// manifest is compared at the end, so the caller must be able to undo what its visitor did
/// when this fails.
pub fn read_verified(
    path: &Path,
    limits: &BundleLimits,
    expected: &mut dyn FnMut(&[u8]) -> Result<Expected, String>,
    visit: &mut dyn FnMut(BundleEntry<'_>) -> Result<(), BundleError>,
) -> Result<Verified, BundleError> {
    let walked = walk(path, limits, Hashing::Compute, visit)?;
    let claims = expected(&walked.manifest).map_err(|detail| BundleError::Manifest {
        archive: path.to_path_buf(),
        detail,
    })?;
    let problems = compare(&walked.found, &claims);
    if !problems.is_empty() {
        return Err(BundleError::Mismatch {
            archive: path.to_path_buf(),
            problems: Problems(problems),
        });
    }
    Ok(Verified {
        manifest: walked.manifest,
        entries: walked.entries,
        bytes: walked.bytes,
    })
}

/// Whether the engine hashes content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hashing {
    Compute,
    Skip,
}

/// An entry found, for the comparison with the manifest.
#[derive(Debug)]
enum Found {
    Dir(String),
    File(String, Digest),
    Stream(String, Digest),
}

impl Found {
    fn name(&self) -> &str {
        match self {
            Found::Dir(name) | Found::File(name, _) | Found::Stream(name, _) => name,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Found::Dir(_) => "folder",
            Found::File(..) => "file",
            Found::Stream(..) => "stream",
        }
    }

    fn digest(&self) -> Option<&Digest> {
        match self {
            Found::Dir(_) => None,
            Found::File(_, digest) | Found::Stream(_, digest) => Some(digest),
        }
    }
}

/// What one pass read.
struct Walked {
    manifest: Vec<u8>,
    entries: usize,
    bytes: u64,
    /// In archive order; empty without hashing.
    found: Vec<Found>,
}

/// The engine: one pass over `path`, see the module documentation.
fn walk(
    path: &Path,
    limits: &BundleLimits,
    hashing: Hashing,
    visit: &mut dyn FnMut(BundleEntry<'_>) -> Result<(), BundleError>,
) -> Result<Walked, BundleError> {
    let corrupt = |near: Option<String>| {
        move |source| BundleError::Corrupt {
            archive: path.to_path_buf(),
            near,
            source,
        }
    };
    let file = fs_err::File::open(path).map_err(|source| BundleError::Open {
        archive: path.to_path_buf(),
        source,
    })?;
    let mut decoder = zstd::stream::read::Decoder::new(file).map_err(corrupt(None))?;
    decoder
        .window_log_max(WINDOW_LOG_MAX)
        .map_err(corrupt(None))?;
    let mut archive = tar::Archive::new(BufReader::with_capacity(READ_BUFFER, decoder));
    let (walked, last) = {
        let entries = archive.entries().map_err(corrupt(None))?.raw(true);
        let mut walker = Walker {
            archive: path,
            limits,
            entries,
            names: NameSet::default(),
            pending: None,
            entries_seen: 0,
            bytes: 0,
            last: None,
            manifest_seen: false,
        };
        let read = run(&mut walker, hashing, visit)?;
        (read, walker.last)
    };
    check_trailing(archive.into_inner(), path, last)?;
    Ok(walked)
}

/// The main loop of [`walk`].
fn run(
    walker: &mut Walker<'_, '_>,
    hashing: Hashing,
    visit: &mut dyn FnMut(BundleEntry<'_>) -> Result<(), BundleError>,
) -> Result<Walked, BundleError> {
    let archive = walker.archive;
    let mut visit = |entry: BundleEntry<'_>| visit(entry).map_err(|error| fill(error, archive));
    let mut found = Vec::new();
    let mut scratch = vec![0u8; DRAIN_BUFFER];
    let mut manifest = None;
    while let Some(item) = walker.next_item()? {
        match item {
            Item::Dir { name, mode } => {
                visit(BundleEntry::Dir { name: &name, mode })?;
                if hashing == Hashing::Compute {
                    found.push(Found::Dir(name));
                }
            }
            Item::File {
                name,
                mode,
                size,
                entry,
            } => {
                let mut reader = EntryReader {
                    archive,
                    name: &name,
                    data: Data::new(entry, size),
                    hasher: (hashing == Hashing::Compute).then(Sha256::new),
                    failure: None,
                };
                let visited = visit(BundleEntry::File {
                    name: &name,
                    mode,
                    size,
                    data: &mut reader,
                });
                let hasher = finish_reader(&mut reader, &mut scratch, visited)?;
                if let Some(hasher) = hasher {
                    found.push(Found::File(name, digest(size, hasher)));
                }
            }
            Item::Chunk {
                name,
                base,
                index,
                size,
                entry,
            } => {
                if index != 0 {
                    return Err(BundleError::ChunkOrder {
                        archive: archive.to_path_buf(),
                        entry: name,
                        detail: format!(
                            "does not follow `{}`; a stream starts at `{}`",
                            crate::name::display(names::chunk_name(&base, index - 1).as_bytes()),
                            crate::name::display(names::chunk_name(&base, 0).as_bytes())
                        ),
                    });
                }
                let mut reader = ChunkReader {
                    walker: &mut *walker,
                    base: &base,
                    chunk: name,
                    index,
                    data: Some(Data::new(entry, size)),
                    hasher: (hashing == Hashing::Compute).then(Sha256::new),
                    declared: size,
                    size: 0,
                    failure: None,
                };
                let visited = visit(BundleEntry::Stream {
                    name: &base,
                    data: &mut reader,
                });
                let hasher = finish_reader(&mut reader, &mut scratch, visited)?;
                let size = reader.size;
                if let Some(hasher) = hasher {
                    found.push(Found::Stream(base, digest(size, hasher)));
                }
            }
            Item::Manifest { size, entry } => {
                manifest = Some(read_manifest(archive, Data::new(entry, size))?);
                visit(BundleEntry::Manifest)?;
            }
        }
    }
    let manifest = manifest.ok_or_else(|| BundleError::NoManifest {
        archive: archive.to_path_buf(),
    })?;
    Ok(Walked {
        manifest,
        entries: walker.entries_seen,
        bytes: walker.bytes,
        found,
    })
}

/// Names the archive in a visitor's [`BundleError::Visit`].
fn fill(error: BundleError, archive: &Path) -> BundleError {
    match error {
        BundleError::Visit {
            archive: shown,
            entry,
            source,
        } if shown.as_os_str().is_empty() => BundleError::Visit {
            archive: archive.to_path_buf(),
            entry,
            source,
        },
        other => other,
    }
}

fn digest(size: u64, hasher: Sha256) -> Digest {
    Digest {
        size,
        sha256: hasher.finalize().into(),
    }
}

/// The manifest's bytes.
fn read_manifest(archive: &Path, mut data: Data<'_>) -> Result<Vec<u8>, BundleError> {
    let mut bytes = Vec::with_capacity(usize::try_from(data.declared).unwrap_or(0));
    data.entry
        .read_to_end(&mut bytes)
        .map_err(|source| BundleError::Corrupt {
            archive: archive.to_path_buf(),
            near: Some(names::MANIFEST.to_owned()),
            source,
        })?;
    data.read = bytes.len() as u64;
    data.complete(archive, names::MANIFEST)?;
    Ok(bytes)
}

/// After the visitor's result `visited`, reads what it left of `reader` and returns the hasher.
/// A failure of the reader itself (kept in it) wins over the visitor's, which it probably
/// caused.
fn finish_reader<R: Kept>(
    reader: &mut R,
    scratch: &mut [u8],
    visited: Result<(), BundleError>,
) -> Result<Option<Sha256>, BundleError> {
    if let Some(failure) = reader.failure() {
        return Err(failure);
    }
    visited?;
    loop {
        match reader.read(scratch) {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            // Every other error of these readers is kept in them.
            Err(_) => break,
        }
    }
    match reader.failure() {
        Some(failure) => Err(failure),
        None => Ok(reader.hasher()),
    }
}

/// A reader that keeps the [`BundleError`] behind an `io::Error` it returned, and maybe hashes.
trait Kept: Read {
    /// Takes the kept failure.
    fn failure(&mut self) -> Option<BundleError>;
    /// Takes the hasher.
    fn hasher(&mut self) -> Option<Sha256>;
}

/// One checked entry, before its data is read.
enum Item<'a> {
    Dir {
        name: String,
        mode: u32,
    },
    File {
        name: String,
        mode: u32,
        size: u64,
        entry: tar::Entry<'a, Source>,
    },
    Chunk {
        name: String,
        base: String,
        index: u32,
        size: u64,
        entry: tar::Entry<'a, Source>,
    },
    Manifest {
        size: u64,
        entry: tar::Entry<'a, Source>,
    },
}

/// The tar iterator with the checks of every entry.
struct Walker<'a, 'p> {
    archive: &'p Path,
    limits: &'p BundleLimits,
    entries: tar::Entries<'a, Source>,
    names: NameSet,
    /// An entry read ahead by a [`ChunkReader`] that was not its next chunk.
    pending: Option<Item<'a>>,
    entries_seen: usize,
    bytes: u64,
    /// The last entry read, for messages about damage.
    last: Option<String>,
    manifest_seen: bool,
}

impl<'a> Walker<'a, '_> {
    /// The next entry, checked; `None` at the end of the tar stream.
    fn next_item(&mut self) -> Result<Option<Item<'a>>, BundleError> {
        if let Some(item) = self.pending.take() {
            return Ok(Some(item));
        }
        let mut long_name: Option<Vec<u8>> = None;
        loop {
            let mut entry = match self.entries.next() {
                None if long_name.is_some() => {
                    return Err(self.long_name("a GNU long name is not followed by an entry"));
                }
                None => return Ok(None),
                Some(Err(source)) => return Err(self.corrupt(source)),
                Some(Ok(entry)) => entry,
            };
            let kind = entry.header().entry_type();
            let size = entry.size();
            if kind == EntryType::GNULongName {
                if long_name.is_some() {
                    return Err(self.long_name("two GNU long names describe the same entry"));
                }
                if size > MAX_LONG_NAME {
                    return Err(self.long_name(&format!(
                        "a GNU long name declares {size} bytes, more than the {MAX_LONG_NAME} allowed"
                    )));
                }
                let mut name = Vec::new();
                (&mut entry)
                    .take(size)
                    .read_to_end(&mut name)
                    .map_err(|source| self.corrupt(source))?;
                if (name.len() as u64) < size {
                    return Err(BundleError::Truncated {
                        archive: self.archive.to_path_buf(),
                        entry: "a GNU long name".to_owned(),
                        declared: size,
                        actual: name.len() as u64,
                    });
                }
                while name.last() == Some(&0) {
                    name.pop();
                }
                long_name = Some(name);
                continue;
            }
            let raw = long_name
                .take()
                .unwrap_or_else(|| entry.header().path_bytes().into_owned());
            let item = self.check(&raw, kind, size, entry)?;
            return Ok(Some(item));
        }
    }

    /// Every check an entry must pass before its data is read.
    fn check(
        &mut self,
        raw: &[u8],
        kind: EntryType,
        size: u64,
        entry: tar::Entry<'a, Source>,
    ) -> Result<Item<'a>, BundleError> {
        self.entries_seen += 1;
        if self.entries_seen > self.limits.max_entries {
            return Err(BundleError::TooManyEntries {
                archive: self.archive.to_path_buf(),
                limit: self.limits.max_entries,
            });
        }
        let (name, is_dir, role) = self.place(raw, kind)?;
        self.account(&name, is_dir, &role, size)?;
        let mode = entry
            .header()
            .mode()
            .map_err(|source| self.corrupt(source))?
            & 0o777;
        self.last = Some(name.clone());
        Ok(match role {
            Role::Dir => Item::Dir { name, mode },
            Role::File => Item::File {
                name,
                mode,
                size,
                entry,
            },
            Role::Chunk { base, index } => Item::Chunk {
                name,
                base,
                index,
                size,
                entry,
            },
            Role::Manifest => {
                self.manifest_seen = true;
                Item::Manifest { size, entry }
            }
        })
    }

    /// The checks of type, name and place: the checked name, whether it is a folder, its role.
    fn place(&self, raw: &[u8], kind: EntryType) -> Result<(String, bool, Role), BundleError> {
        let archive = || self.archive.to_path_buf();
        let shown = String::from_utf8_lossy(raw).into_owned();
        let is_dir = match kind {
            EntryType::Regular => false,
            EntryType::Directory => true,
            other => {
                return Err(BundleError::Special {
                    archive: archive(),
                    entry: shown,
                    what: describe(other),
                });
            }
        };
        let checked = names::check_raw(raw).map_err(|error| match error {
            RawNameError::NotUtf8 => BundleError::NameNotUtf8 {
                archive: archive(),
                entry: shown.clone(),
            },
            RawNameError::Unsafe(problem) => BundleError::UnsafeName {
                archive: archive(),
                entry: shown.clone(),
                problem,
            },
        })?;
        if self.manifest_seen {
            return Err(BundleError::AfterManifest {
                archive: archive(),
                entry: shown,
            });
        }
        let misplaced = |reason| BundleError::Misplaced {
            archive: archive(),
            entry: shown.clone(),
            reason,
        };
        if checked.has_trailing_slash && !is_dir {
            return Err(misplaced("is a file whose name ends in `/`"));
        }
        let role = names::role(&checked.path, is_dir).map_err(misplaced)?;
        Ok((checked.path, is_dir, role))
    }

    /// The checks of sizes and of the name against the names before it.
    fn account(
        &mut self,
        name: &str,
        is_dir: bool,
        role: &Role,
        size: u64,
    ) -> Result<(), BundleError> {
        let archive = || self.archive.to_path_buf();
        if is_dir && size > 0 {
            return Err(BundleError::FolderWithData {
                archive: archive(),
                entry: name.to_owned(),
            });
        }
        let limit = if *role == Role::Manifest {
            self.limits.max_manifest_bytes
        } else {
            self.limits.max_entry_bytes
        };
        if size > limit {
            return Err(BundleError::EntryTooLarge {
                archive: archive(),
                entry: name.to_owned(),
                size,
                limit,
            });
        }
        self.bytes = match self.bytes.checked_add(size) {
            Some(total) if total <= self.limits.max_total_bytes => total,
            _ => {
                return Err(BundleError::TooLarge {
                    archive: archive(),
                    entry: name.to_owned(),
                    limit: self.limits.max_total_bytes,
                });
            }
        };
        self.names
            .insert(name, is_dir)
            .map_err(|conflict| match conflict {
                Conflict::Duplicate => BundleError::Duplicate {
                    archive: archive(),
                    entry: name.to_owned(),
                },
                Conflict::InsideFile(parent) => BundleError::InsideFile {
                    archive: archive(),
                    entry: name.to_owned(),
                    parent,
                },
                Conflict::FileOverFolder => BundleError::FileOverFolder {
                    archive: archive(),
                    entry: name.to_owned(),
                },
            })
    }

    fn corrupt(&self, source: io::Error) -> BundleError {
        BundleError::Corrupt {
            archive: self.archive.to_path_buf(),
            near: self.last.clone(),
            source,
        }
    }

    fn long_name(&self, detail: &str) -> BundleError {
        BundleError::LongName {
            archive: self.archive.to_path_buf(),
            detail: detail.to_owned(),
        }
    }
}

/// What an entry type that is not a regular file or folder is, for messages.
fn describe(kind: EntryType) -> String {
    match kind {
        EntryType::Symlink => "a symbolic link".to_owned(),
        EntryType::Link => "a hard link".to_owned(),
        EntryType::Char => "a character device".to_owned(),
        EntryType::Block => "a block device".to_owned(),
        EntryType::Fifo => "a FIFO".to_owned(),
        EntryType::Continuous => "a contiguous file".to_owned(),
        EntryType::GNUSparse => "a sparse file".to_owned(),
        EntryType::GNULongLink => "a GNU long link name".to_owned(),
        EntryType::XHeader | EntryType::XGlobalHeader => "a PAX extended header".to_owned(),
        other => format!("of the unknown type `{}`", other.as_byte().escape_ascii()),
    }
}

/// An entry's data with the count of bytes read.
struct Data<'a> {
    entry: tar::Entry<'a, Source>,
    declared: u64,
    read: u64,
}

impl<'a> Data<'a> {
    fn new(entry: tar::Entry<'a, Source>, declared: u64) -> Self {
        Self {
            entry,
            declared,
            read: 0,
        }
    }

    /// Refuses an entry that ended before its declared size.
    fn complete(&self, archive: &Path, name: &str) -> Result<(), BundleError> {
        if self.read < self.declared {
            return Err(BundleError::Truncated {
                archive: archive.to_path_buf(),
                entry: name.to_owned(),
                declared: self.declared,
                actual: self.read,
            });
        }
        Ok(())
    }
}

/// The reader of a file handed to a visitor: hashes what passes.
struct EntryReader<'a, 'n> {
    archive: &'n Path,
    name: &'n str,
    data: Data<'a>,
    hasher: Option<Sha256>,
    failure: Option<BundleError>,
}

impl Read for EntryReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(failure) = &self.failure {
            return Err(io::Error::other(failure.to_string()));
        }
        match self.data.entry.read(buf) {
            Ok(0) => {
                if let Err(error) = self.data.complete(self.archive, self.name) {
                    return Err(keep(&mut self.failure, error));
                }
                Ok(0)
            }
            Ok(read) => {
                if let Some(hasher) = &mut self.hasher {
                    hasher.update(&buf[..read]);
                }
                self.data.read += read as u64;
                Ok(read)
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => Err(error),
            Err(source) => {
                let error = BundleError::Corrupt {
                    archive: self.archive.to_path_buf(),
                    near: Some(self.name.to_owned()),
                    source,
                };
                Err(keep(&mut self.failure, error))
            }
        }
    }
}

impl Kept for EntryReader<'_, '_> {
    fn failure(&mut self) -> Option<BundleError> {
        self.failure.take()
    }

    fn hasher(&mut self) -> Option<Sha256> {
        self.hasher.take()
    }
}

/// The reader of a whole stream: reads its chunks one after the other, pulling each next one
/// from the walker when the current one ends.
struct ChunkReader<'w, 'a, 'p, 'n> {
    walker: &'w mut Walker<'a, 'p>,
    base: &'n str,
    /// The current chunk's name.
    chunk: String,
    index: u32,
    /// The current chunk; `None` after the last.
    data: Option<Data<'a>>,
    hasher: Option<Sha256>,
    /// Bytes the stream's chunks so far declare.
    declared: u64,
    /// Bytes of the stream read so far.
    size: u64,
    failure: Option<BundleError>,
}

impl ChunkReader<'_, '_, '_, '_> {
    /// Moves to the next chunk if the next entry is one; otherwise leaves that entry to the
    /// walker and ends the stream.
    fn advance(&mut self) -> Result<(), BundleError> {
        if let Some(data) = self.data.take() {
            data.complete(self.walker.archive, &self.chunk)?;
        }
        match self.walker.next_item()? {
            Some(Item::Chunk {
                name,
                base,
                index,
                size,
                entry,
            }) if base == self.base => {
                if Some(index) != self.index.checked_add(1) {
                    return Err(BundleError::ChunkOrder {
                        archive: self.walker.archive.to_path_buf(),
                        entry: name,
                        detail: format!(
                            "follows `{}`; chunks must be consecutive",
                            crate::name::display(self.chunk.as_bytes())
                        ),
                    });
                }
                let limit = self.walker.limits.max_entry_bytes;
                self.declared = self.declared.saturating_add(size);
                if self.declared > limit {
                    return Err(BundleError::EntryTooLarge {
                        archive: self.walker.archive.to_path_buf(),
                        entry: self.base.to_owned(),
                        size: self.declared,
                        limit,
                    });
                }
                self.index = index;
                self.chunk = name;
                self.data = Some(Data::new(entry, size));
            }
            other => self.walker.pending = other,
        }
        Ok(())
    }
}

impl Read for ChunkReader<'_, '_, '_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(failure) = &self.failure {
            return Err(io::Error::other(failure.to_string()));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let Some(data) = &mut self.data else {
                return Ok(0);
            };
            match data.entry.read(buf) {
                Ok(0) => {
                    if let Err(error) = self.advance() {
                        return Err(keep(&mut self.failure, error));
                    }
                }
                Ok(read) => {
                    data.read += read as u64;
                    self.size += read as u64;
                    if let Some(hasher) = &mut self.hasher {
                        hasher.update(&buf[..read]);
                    }
                    return Ok(read);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => return Err(error),
                Err(source) => {
                    let error = BundleError::Corrupt {
                        archive: self.walker.archive.to_path_buf(),
                        near: Some(self.chunk.clone()),
                        source,
                    };
                    return Err(keep(&mut self.failure, error));
                }
            }
        }
    }
}

impl Kept for ChunkReader<'_, '_, '_, '_> {
    fn failure(&mut self) -> Option<BundleError> {
        self.failure.take()
    }

    fn hasher(&mut self) -> Option<Sha256> {
        self.hasher.take()
    }
}

/// Keeps `error` in `slot` and returns it as an `io::Error`.
fn keep(slot: &mut Option<BundleError>, error: BundleError) -> io::Error {
    let io_error = io::Error::other(error.to_string());
    *slot = Some(error);
    io_error
}

/// Reads the rest of the decompressed stream after the tar end marker: only zero padding, at
/// most [`MAX_TRAILING`] bytes; reading to the end makes zstd check its content checksum.
fn check_trailing(
    mut rest: impl Read,
    archive: &Path,
    last: Option<String>,
) -> Result<(), BundleError> {
    let mut buf = vec![0u8; READ_BUFFER];
    let mut total = 0u64;
    loop {
        let read = match rest.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(BundleError::Corrupt {
                    archive: archive.to_path_buf(),
                    near: last,
                    source,
                });
            }
        };
        if buf[..read].iter().any(|&byte| byte != 0) {
            return Err(BundleError::TrailingData {
                archive: archive.to_path_buf(),
                detail: "data".to_owned(),
            });
        }
        total += read as u64;
        if total > MAX_TRAILING {
            return Err(BundleError::TrailingData {
                archive: archive.to_path_buf(),
                detail: format!("more than {MAX_TRAILING} bytes of padding"),
            });
        }
    }
}

/// Every difference between what was read and what the manifest claims: claims in the
/// manifest's order, then unclaimed entries in archive order.
fn compare(found: &[Found], claims: &Expected) -> Vec<Problem> {
    let by_name: HashMap<&str, &Found> = found.iter().map(|f| (f.name(), f)).collect();
    let mut claimed: HashSet<&str> = HashSet::new();
    let mut problems = Vec::new();
    let all = claims
        .files
        .iter()
        .map(|(name, digest)| (name.as_str(), "file", Some(digest)))
        .chain(
            claims
                .streams
                .iter()
                .map(|(name, digest)| (name.as_str(), "stream", Some(digest))),
        )
        .chain(
            claims
                .dirs
                .iter()
                .map(|name| (name.as_str(), "folder", None)),
        );
    for (name, kind, digest) in all {
        if !claimed.insert(name) {
            problems.push(Problem::Repeated {
                entry: name.to_owned(),
            });
            continue;
        }
        let Some(entry) = by_name.get(name) else {
            problems.push(Problem::Missing {
                entry: name.to_owned(),
            });
            continue;
        };
        if entry.kind() != kind {
            problems.push(Problem::WrongKind {
                entry: name.to_owned(),
                expected: kind,
                found: entry.kind(),
            });
            continue;
        }
        if let (Some(expected), Some(found)) = (digest, entry.digest()) {
            if expected != found {
                problems.push(Problem::Differs {
                    entry: name.to_owned(),
                    expected: *expected,
                    found: *found,
                });
            }
        }
    }
    for entry in found {
        if !claimed.contains(entry.name()) {
            problems.push(Problem::Extra {
                entry: entry.name().to_owned(),
            });
        }
    }
    problems
}
