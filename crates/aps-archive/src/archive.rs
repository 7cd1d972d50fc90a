//! Opening an untrusted zip archive, checking its central directory, hashing its files and
//! reading single files.
//!
//! Main decision: [`Archive::open`] refuses the archive on anything suspicious found in the
//! central directory and local headers (names, entry types, duplicates, overlapping data, entry
//! count, declared sizes, compression ratios) before a single byte of file data is decompressed.
//! Data is then streamed in fixed buffers and its real size must equal the declared size, so a
//! lying header cannot get past the limits. [`Archive::scan`] splits the files into contiguous
//! runs hashed by up to a few threads, each with its own reader on the shared file handle.
//!
//! Known gaps: duplicate names are found by walking the central directory a second time,
//! because the zip crate keeps only the last of several entries with the same name; when
//! several threads fail at once, the error reported is the one with the lowest entry index
//! among those that were reached.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{self, Read, Seek, SeekFrom};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aps_meta::applist::AppList;
use md5::Md5;
use sha2::{Digest as _, Sha256};
use zip::{CompressionMethod, ZipArchive};

use crate::error::ArchiveError;
use crate::name::{self, RawNameError};
use crate::reader::PosReader;

/// Buffer of the reader used for the central directory and local headers: metadata reads are
/// small, and data reads (8 KiB from the zip crate's own buffer, or our large chunks) bypass it.
const HEADER_BUFFER: usize = 4 * 1024;
/// Chunk size for streaming file data.
pub(crate) const DATA_BUFFER: usize = 256 * 1024;
/// Below this many bytes of file data, scanning stays on one thread.
const PARALLEL_THRESHOLD: u64 = 4 * 1024 * 1024;
/// Default upper bound on scanning threads.
const MAX_AUTO_THREADS: usize = 4;
/// Signature of a central directory file header.
const CENTRAL_HEADER_SIGNATURE: u32 = 0x0201_4b50;
/// Mask and values of the file type bits of a Unix mode.
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

/// Caps that protect against archive bombs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum sum of the uncompressed sizes of all files (default 1 GiB).
    pub max_total_uncompressed: u64,
    /// Maximum number of entries, directories included (default 100 000).
    pub max_entries: usize,
    /// Maximum ratio of uncompressed to compressed size of one entry (default 1000, i.e.
    /// 1000:1), checked for entries larger than [`Limits::ratio_floor`].
    pub max_ratio: u64,
    /// Entries of at most this many uncompressed bytes are exempt from the ratio check
    /// (default 1 MiB): small files of repetitive text compress very well and are harmless.
    pub ratio_floor: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_total_uncompressed: 1 << 30,
            max_entries: 100_000,
            max_ratio: 1000,
            ratio_floor: 1 << 20,
        }
    }
}

/// Size and digests of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileInfo {
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content.
    pub sha256: [u8; 32],
    /// MD5 of the content, when it was asked for.
    pub md5: Option<[u8; 16]>,
}

/// The result of [`Archive::scan`]: every file with its size and digests, and every directory
/// entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// Files by archive name.
    pub files: BTreeMap<String, FileInfo>,
    /// Explicit directory entries, without the trailing `/` (parents implied by file names
    /// are not added).
    pub dirs: BTreeSet<String>,
}

/// Whether to compute MD5 digests besides SHA-256.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Md5Digests {
    /// SHA-256 only.
    #[default]
    Skip,
    /// SHA-256 and MD5 (needed when APP-LIST.xml has MD5-only entries).
    Compute,
}

/// Options of [`Archive::scan`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanOptions {
    /// Whether to compute MD5 too.
    pub md5: Md5Digests,
    /// How many threads may hash files; `None` picks up to four from the available
    /// parallelism, and small archives always use one.
    pub threads: Option<NonZeroUsize>,
}

impl ScanOptions {
    /// The options needed to verify `list`: MD5 is computed only if some entry has no SHA-256.
    pub fn for_list(list: &AppList) -> Self {
        Self {
            md5: if list.has_md5_entries() {
                Md5Digests::Compute
            } else {
                Md5Digests::Skip
            },
            threads: None,
        }
    }
}

/// Whether an entry is a file or a directory (nothing else passes [`Archive::open`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    File,
    Dir,
}

/// One checked entry.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Index in the zip crate's archive.
    pub(crate) index: usize,
    /// Checked name without the trailing `/` of a directory.
    pub(crate) name: String,
    pub(crate) kind: EntryKind,
    /// Declared uncompressed size.
    pub(crate) size: u64,
}

/// A zip archive whose central directory passed every check; see the module documentation.
#[derive(Debug)]
pub struct Archive {
    pub(crate) path: PathBuf,
    pub(crate) zip: ZipArchive<PosReader>,
    /// Entries in central directory order.
    pub(crate) entries: Vec<Entry>,
    /// File entries by name, as positions in `entries`.
    files: HashMap<String, usize>,
}

impl Archive {
    /// Opens `path` and checks every entry's name, type and declared size against `limits`
    /// without decompressing anything.
    pub fn open(path: &Path, limits: &Limits) -> Result<Archive, ArchiveError> {
        let archive = path.to_path_buf();
        let open_error = |source| ArchiveError::Open {
            archive: archive.clone(),
            source,
        };
        let file = fs_err::File::open(path).map_err(open_error)?.into_file();
        let len = file.metadata().map_err(open_error)?.len();
        let file = Arc::new(file);
        let reader = PosReader::new(Arc::clone(&file), len, HEADER_BUFFER);
        let mut zip = ZipArchive::new(reader).map_err(|source| ArchiveError::NotZip {
            archive: archive.clone(),
            source,
        })?;
        if zip.len() > limits.max_entries {
            return Err(ArchiveError::TooManyEntries {
                archive,
                limit: limits.max_entries,
            });
        }
        let mut walker = PosReader::new(file, len, HEADER_BUFFER);
        let raw_names =
            central_names(&mut walker, zip.central_directory_start(), limits).map_err(|error| {
                match error {
                    WalkError::TooMany => ArchiveError::TooManyEntries {
                        archive: archive.clone(),
                        limit: limits.max_entries,
                    },
                    WalkError::Io(source) => ArchiveError::Inconsistent {
                        archive: archive.clone(),
                        detail: source.to_string(),
                    },
                }
            })?;
        let names = check_names(&archive, &raw_names)?;
        if names.len() != zip.len() {
            return Err(ArchiveError::Inconsistent {
                archive,
                detail: format!(
                    "{} entries in the central directory, {} read",
                    names.len(),
                    zip.len()
                ),
            });
        }
        let entries = check_entries(&archive, &mut zip, &raw_names, names, limits)?;
        check_inside_files(&archive, &entries)?;
        let files = entries
            .iter()
            .enumerate()
            .filter(|(_, entry)| entry.kind == EntryKind::File)
            .map(|(position, entry)| (entry.name.clone(), position))
            .collect();
        Ok(Archive {
            path: archive,
            zip,
            entries,
            files,
        })
    }

    /// The archive's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// File entries as (name, declared size), in archive order.
    pub fn files(&self) -> impl Iterator<Item = (&str, u64)> {
        self.entries
            .iter()
            .filter(|entry| entry.kind == EntryKind::File)
            .map(|entry| (entry.name.as_str(), entry.size))
    }

    /// Directory entries without their trailing `/`, in archive order.
    pub fn dirs(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter(|entry| entry.kind == EntryKind::Dir)
            .map(|entry| entry.name.as_str())
    }

    /// Whether the archive has a file entry named `name`.
    pub fn contains_file(&self, name: &str) -> bool {
        self.files.contains_key(name)
    }

    /// Reads the file entry `name` (for example `APP-META.xml`), refusing one whose size is
    /// above `max_bytes`.
    pub fn read_file(&mut self, name: &str, max_bytes: u64) -> Result<Vec<u8>, ArchiveError> {
        let Some(&position) = self.files.get(name) else {
            return Err(ArchiveError::NotFound {
                archive: self.path.clone(),
                entry: name::display(name.as_bytes()),
            });
        };
        let entry = &self.entries[position];
        if entry.size > max_bytes {
            return Err(ArchiveError::EntryTooLarge {
                archive: self.path.clone(),
                entry: entry.name.clone(),
                limit: max_bytes,
            });
        }
        let mut content = Vec::with_capacity(usize::try_from(entry.size).unwrap_or(0));
        let mut buf = vec![0; DATA_BUFFER];
        stream_entry(&mut self.zip, &self.path, entry, &mut buf, |chunk| {
            content.extend_from_slice(chunk);
            Ok(())
        })?;
        Ok(content)
    }

    /// Decompresses every file without writing it and returns its size and digests.
    pub fn scan(&mut self, options: &ScanOptions) -> Result<Scan, ArchiveError> {
        let files: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|entry| entry.kind == EntryKind::File)
            .collect();
        let dirs = self.dirs().map(str::to_owned).collect();
        let total: u64 = files.iter().map(|entry| entry.size).sum();
        let threads = match options.threads {
            Some(threads) => threads.get(),
            None if total < PARALLEL_THRESHOLD => 1,
            None => std::thread::available_parallelism()
                .map_or(1, NonZeroUsize::get)
                .min(MAX_AUTO_THREADS),
        }
        .clamp(1, files.len().max(1));
        let md5 = options.md5 == Md5Digests::Compute;
        let stop = AtomicBool::new(false);
        let runs = split_by_size(&files, threads);
        let results: Vec<RunResult> = if runs.len() <= 1 {
            vec![hash_run(&mut self.zip, &self.path, &files, 0, md5, &stop)]
        } else {
            let (path, zip) = (&self.path, &self.zip);
            std::thread::scope(|scope| {
                let handles: Vec<_> = runs
                    .iter()
                    .map(|run| {
                        let mut zip = zip.clone();
                        let (files, stop) = (&files, &stop);
                        scope.spawn(move || {
                            hash_run(&mut zip, path, &files[run.clone()], run.start, md5, stop)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|handle| {
                        handle
                            .join()
                            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                    })
                    .collect()
            })
        };
        let mut scan = Scan {
            files: BTreeMap::new(),
            dirs,
        };
        let mut first_error: Option<(usize, ArchiveError)> = None;
        for result in results {
            match result {
                Ok(hashed) => scan.files.extend(hashed),
                Err((position, error)) => {
                    if first_error
                        .as_ref()
                        .is_none_or(|(first, _)| position < *first)
                    {
                        first_error = Some((position, error));
                    }
                }
            }
        }
        match first_error {
            Some((_, error)) => Err(error),
            None => Ok(scan),
        }
    }
}

/// The files hashed by one run, or the position of the failing file and its error.
type RunResult = Result<Vec<(String, FileInfo)>, (usize, ArchiveError)>;

/// Splits `files` into at most `parts` contiguous runs of roughly equal total size.
fn split_by_size(files: &[&Entry], parts: usize) -> Vec<std::ops::Range<usize>> {
    // Small files cost a fixed overhead, so each counts at least 4 KiB.
    let weight = |entry: &&Entry| entry.size.max(4096);
    let total: u64 = files.iter().map(weight).sum();
    let share = total.div_ceil(parts.max(1) as u64).max(1);
    let mut runs = Vec::with_capacity(parts);
    let (mut start, mut cumulative) = (0, 0u64);
    for (position, entry) in files.iter().enumerate() {
        let entry_weight = weight(entry);
        // Cut before the file whose middle passes the end of the current run's share.
        let middle = cumulative + entry_weight / 2;
        cumulative += entry_weight;
        let boundary = share * (runs.len() as u64 + 1);
        if runs.len() + 1 < parts && position > start && middle >= boundary {
            runs.push(start..position);
            start = position;
        }
    }
    if start < files.len() {
        runs.push(start..files.len());
    }
    runs
}

/// Hashes a run of files. On failure returns the failing file's position (`offset` + index in
/// the run) and sets `stop`; stops early without error when another run has set `stop`.
fn hash_run(
    zip: &mut ZipArchive<PosReader>,
    archive: &Path,
    files: &[&Entry],
    offset: usize,
    md5: bool,
    stop: &AtomicBool,
) -> RunResult {
    let mut buf = vec![0; DATA_BUFFER];
    let mut hashed = Vec::with_capacity(files.len());
    for (index, entry) in files.iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let mut sha256 = Sha256::new();
        let mut md5_hasher = md5.then(Md5::new);
        let result = stream_entry(zip, archive, entry, &mut buf, |chunk| {
            sha256.update(chunk);
            if let Some(hasher) = md5_hasher.as_mut() {
                hasher.update(chunk);
            }
            Ok(())
        });
        if let Err(error) = result {
            stop.store(true, Ordering::Relaxed);
            return Err((offset + index, error));
        }
        hashed.push((
            entry.name.clone(),
            FileInfo {
                size: entry.size,
                sha256: sha256.finalize().into(),
                md5: md5_hasher.map(|hasher| hasher.finalize().into()),
            },
        ));
    }
    Ok(hashed)
}

/// Decompresses one file entry through `buf`, passing each chunk to `sink`, and checks that
/// the real size equals the declared one (the zip crate checks the CRC at the end).
pub(crate) fn stream_entry(
    zip: &mut ZipArchive<PosReader>,
    archive: &Path,
    entry: &Entry,
    buf: &mut [u8],
    mut sink: impl FnMut(&[u8]) -> Result<(), ArchiveError>,
) -> Result<(), ArchiveError> {
    let read_error = |source| ArchiveError::Read {
        archive: archive.to_path_buf(),
        entry: entry.name.clone(),
        source,
    };
    let mut file = zip
        .by_index(entry.index)
        .map_err(|error| read_error(io::Error::other(error)))?;
    let mut total: u64 = 0;
    loop {
        let count = match file.read(buf) {
            Ok(0) => break,
            Ok(count) => count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(read_error(error)),
        };
        total += count as u64;
        if total > entry.size {
            return Err(ArchiveError::LongerThanDeclared {
                archive: archive.to_path_buf(),
                entry: entry.name.clone(),
                declared: entry.size,
            });
        }
        sink(&buf[..count])?;
    }
    if total < entry.size {
        return Err(ArchiveError::ShorterThanDeclared {
            archive: archive.to_path_buf(),
            entry: entry.name.clone(),
            declared: entry.size,
            actual: total,
        });
    }
    Ok(())
}

enum WalkError {
    TooMany,
    Io(io::Error),
}

impl From<io::Error> for WalkError {
    fn from(error: io::Error) -> Self {
        WalkError::Io(error)
    }
}

/// Reads every raw name of the central directory starting at `start`, duplicates included.
fn central_names(
    reader: &mut PosReader,
    start: u64,
    limits: &Limits,
) -> Result<Vec<Box<[u8]>>, WalkError> {
    reader.seek(SeekFrom::Start(start))?;
    let mut names = Vec::new();
    loop {
        let mut header = [0u8; 46];
        match reader.read_exact(&mut header) {
            Ok(()) => {}
            // The end-of-central-directory record may be shorter than a file header.
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(error) => return Err(error.into()),
        }
        let field = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
        if u32::from_le_bytes([header[0], header[1], header[2], header[3]])
            != CENTRAL_HEADER_SIGNATURE
        {
            break;
        }
        if names.len() == limits.max_entries {
            return Err(WalkError::TooMany);
        }
        let mut name = vec![0; usize::from(field(28))].into_boxed_slice();
        reader.read_exact(&mut name)?;
        reader.seek(SeekFrom::Current(
            i64::from(field(30)) + i64::from(field(32)),
        ))?;
        names.push(name);
    }
    Ok(names)
}

/// Checks every raw name and refuses duplicates (`x` and `x/` count as the same name).
fn check_names(
    archive: &Path,
    raw_names: &[Box<[u8]>],
) -> Result<Vec<name::EntryName>, ArchiveError> {
    let mut seen = HashSet::with_capacity(raw_names.len());
    let mut names = Vec::with_capacity(raw_names.len());
    for raw in raw_names {
        let checked = name::check_raw(raw).map_err(|error| match error {
            RawNameError::NotUtf8 => ArchiveError::NameNotUtf8 {
                archive: archive.to_path_buf(),
                entry: name::display(raw),
            },
            RawNameError::Unsafe(problem) => ArchiveError::UnsafeName {
                archive: archive.to_path_buf(),
                entry: name::display(raw),
                problem,
            },
        })?;
        if !seen.insert(checked.path.clone()) {
            return Err(ArchiveError::Duplicate {
                archive: archive.to_path_buf(),
                entry: checked.path,
            });
        }
        names.push(checked);
    }
    Ok(names)
}

/// Checks each entry's type, encryption, compression method, declared sizes and data range.
fn check_entries(
    archive: &Path,
    zip: &mut ZipArchive<PosReader>,
    raw_names: &[Box<[u8]>],
    names: Vec<name::EntryName>,
    limits: &Limits,
) -> Result<Vec<Entry>, ArchiveError> {
    let path = || archive.to_path_buf();
    let mut entries = Vec::with_capacity(names.len());
    let mut ranges = Vec::with_capacity(names.len());
    let mut total: u64 = 0;
    for (index, checked) in names.into_iter().enumerate() {
        let file = zip
            .by_index_raw(index)
            .map_err(|error| ArchiveError::Read {
                archive: path(),
                entry: checked.path.clone(),
                source: io::Error::other(error),
            })?;
        if *file.name_raw() != *raw_names[index] {
            return Err(ArchiveError::Inconsistent {
                archive: path(),
                detail: format!("entry {index} is not `{}`", checked.path),
            });
        }
        let entry_name = || checked.path.clone();
        let mode = file.unix_mode().unwrap_or(0);
        let kind = match mode & S_IFMT {
            0 | S_IFREG if checked.has_trailing_slash => EntryKind::Dir,
            0 | S_IFREG => EntryKind::File,
            S_IFDIR => EntryKind::Dir,
            S_IFLNK => {
                return Err(ArchiveError::Symlink {
                    archive: path(),
                    entry: entry_name(),
                });
            }
            _ => {
                return Err(ArchiveError::SpecialFile {
                    archive: path(),
                    entry: entry_name(),
                    mode,
                });
            }
        };
        if file.encrypted() {
            return Err(ArchiveError::Encrypted {
                archive: path(),
                entry: entry_name(),
            });
        }
        let method = file.compression();
        if !matches!(
            method,
            CompressionMethod::Stored | CompressionMethod::Deflated
        ) {
            return Err(ArchiveError::UnsupportedCompression {
                archive: path(),
                entry: entry_name(),
                method: method.to_string(),
            });
        }
        let (size, compressed) = (file.size(), file.compressed_size());
        match kind {
            EntryKind::Dir if size > 0 || compressed > 2 => {
                // An empty deflate stream takes two bytes.
                return Err(ArchiveError::DirectoryWithData {
                    archive: path(),
                    entry: entry_name(),
                });
            }
            EntryKind::Dir => {}
            EntryKind::File => {
                total = total.saturating_add(size);
                if total > limits.max_total_uncompressed {
                    return Err(ArchiveError::TooLarge {
                        archive: path(),
                        limit: limits.max_total_uncompressed,
                    });
                }
                if size > limits.ratio_floor {
                    let ratio = size / compressed.max(1);
                    if ratio > limits.max_ratio {
                        return Err(ArchiveError::SuspiciousRatio {
                            archive: path(),
                            entry: entry_name(),
                            ratio,
                            limit: limits.max_ratio,
                        });
                    }
                }
            }
        }
        ranges.push((file.header_start(), file.data_start() + compressed, index));
        drop(file);
        entries.push(Entry {
            index,
            name: checked.path,
            kind,
            size,
        });
    }
    check_overlaps(archive, &mut ranges, &entries)?;
    Ok(entries)
}

/// Refuses entries whose local header and data overlap another entry's: the building block of
/// overlapping-entry zip bombs.
fn check_overlaps(
    archive: &Path,
    ranges: &mut [(u64, u64, usize)],
    entries: &[Entry],
) -> Result<(), ArchiveError> {
    ranges.sort_unstable();
    for pair in ranges.windows(2) {
        let ((_, end, first), (start, _, second)) = (pair[0], pair[1]);
        if start < end {
            return Err(ArchiveError::Overlap {
                archive: archive.to_path_buf(),
                entry: entries[second].name.clone(),
                other: entries[first].name.clone(),
            });
        }
    }
    Ok(())
}

/// Refuses an entry below a file entry (`a` a file and `a/b` another entry).
fn check_inside_files(archive: &Path, entries: &[Entry]) -> Result<(), ArchiveError> {
    let files: HashSet<&str> = entries
        .iter()
        .filter(|entry| entry.kind == EntryKind::File)
        .map(|entry| entry.name.as_str())
        .collect();
    for entry in entries {
        if let Some(parent) = name::ancestors(&entry.name).find(|parent| files.contains(parent)) {
            return Err(ArchiveError::InsideFile {
                archive: archive.to_path_buf(),
                entry: entry.name.clone(),
                parent: parent.to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(size: u64) -> Entry {
        Entry {
            index: 0,
            name: String::new(),
            kind: EntryKind::File,
            size,
        }
    }

    #[test]
    fn split_by_size_makes_contiguous_balanced_runs() {
        let entries: Vec<Entry> = [100_000, 100_000, 100_000, 100_000, 10, 10]
            .into_iter()
            .map(entry)
            .collect();
        let refs: Vec<&Entry> = entries.iter().collect();
        assert_eq!(split_by_size(&refs, 1), vec![0..6]);
        assert_eq!(split_by_size(&refs, 2), vec![0..2, 2..6]);
        let runs = split_by_size(&refs, 4);
        assert_eq!(runs.first().map(|r| r.start), Some(0));
        assert_eq!(runs.last().map(|r| r.end), Some(6));
        assert!(runs.windows(2).all(|w| w[0].end == w[1].start));
        assert!(runs.len() <= 4);
        assert!(split_by_size(&[], 2).is_empty());
    }

    #[test]
    fn default_limits_are_as_documented() {
        let limits = Limits::default();
        assert_eq!(limits.max_total_uncompressed, 1 << 30);
        assert_eq!(limits.max_entries, 100_000);
        assert_eq!(limits.max_ratio, 1000);
    }
}
