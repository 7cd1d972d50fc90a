//! Errors of archive reading and extraction, each naming the archive and the entry.
//!
//! Main decision: one enum for the crate, one sentence per variant, with [`ArchiveError::kind`]
//! sorting them into the few categories a caller maps to exit codes or HTTP statuses. Entry
//! names in messages are escaped (control characters) so a hostile name cannot forge output.

use std::io;
use std::path::PathBuf;

/// Why an entry name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameProblem {
    /// The name is empty.
    #[error("has an empty name")]
    Empty,
    /// The name starts with `/`.
    #[error("is an absolute path")]
    Absolute,
    /// A `..` segment.
    #[error("escapes the package")]
    ParentSegment,
    /// A `.` segment.
    #[error("has a `.` path segment")]
    DotSegment,
    /// Two consecutive `/`.
    #[error("has an empty path segment")]
    EmptySegment,
    /// A `\`, a path separator on Windows.
    #[error("contains a backslash")]
    Backslash,
    /// A leading `X:`, a drive on Windows.
    #[error("starts with a drive letter")]
    DriveLetter,
    /// NUL or another control character.
    #[error("contains a control character")]
    ControlCharacter,
}

/// The category of an [`ArchiveError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file could not be opened, read or written for reasons outside the archive.
    Io,
    /// The file is not a zip archive, is corrupt or uses an unsupported feature.
    Malformed,
    /// The archive contains something dangerous: an unsafe name, a link, a special file, a
    /// duplicate or a header that lies about sizes.
    Hostile,
    /// The archive passes a configured limit (entries, size, compression ratio).
    Limit,
    /// An entry the caller asked for is absent.
    Missing,
    /// The caller passed an unusable argument (a non-empty destination, an unsafe target path).
    Usage,
}

/// Why an archive was refused or could not be read or extracted.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The archive file cannot be opened or its size read.
    #[error("cannot open `{}`", .archive.display())]
    Open {
        /// The archive.
        archive: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// The file is not a readable zip archive.
    #[error("`{}` is not a zip archive", .archive.display())]
    NotZip {
        /// The archive.
        archive: PathBuf,
        /// The zip reader's diagnosis.
        #[source]
        source: zip::result::ZipError,
    },
    /// The central directory could not be read consistently.
    #[error("`{}`: the central directory is inconsistent ({detail})", .archive.display())]
    Inconsistent {
        /// The archive.
        archive: PathBuf,
        /// What did not match.
        detail: String,
    },
    /// An entry name is not UTF-8.
    #[error("`{}`: entry name `{entry}` is not valid UTF-8", .archive.display())]
    NameNotUtf8 {
        /// The archive.
        archive: PathBuf,
        /// The name with invalid bytes replaced.
        entry: String,
    },
    /// An entry name is not a safe relative path.
    #[error("`{}`: entry `{entry}` {problem}", .archive.display())]
    UnsafeName {
        /// The archive.
        archive: PathBuf,
        /// The name, escaped for display.
        entry: String,
        /// What is wrong with it.
        problem: NameProblem,
    },
    /// An entry is a symbolic link.
    #[error("`{}`: entry `{entry}` is a symbolic link", .archive.display())]
    Symlink {
        /// The archive.
        archive: PathBuf,
        /// The entry.
        entry: String,
    },
    /// An entry is neither a regular file nor a directory (device, FIFO, socket, …).
    #[error("`{}`: entry `{entry}` is not a regular file or directory (mode {mode:o})", .archive.display())]
    SpecialFile {
        /// The archive.
        archive: PathBuf,
        /// The entry.
        entry: String,
        /// Its Unix mode.
        mode: u32,
    },
    /// Two entries have the same name (a directory entry `x/` and a file `x` count as the same).
    #[error("`{}`: duplicate entry `{entry}`", .archive.display())]
    Duplicate {
        /// The archive.
        archive: PathBuf,
        /// The duplicated name.
        entry: String,
    },
    /// An entry lies below another entry that is a file.
    #[error("`{}`: entry `{entry}` lies inside `{parent}`, which is a file", .archive.display())]
    InsideFile {
        /// The archive.
        archive: PathBuf,
        /// The entry.
        entry: String,
        /// The file it would have to be inside.
        parent: String,
    },
    /// The data of two entries overlap (the building block of overlapping zip bombs).
    #[error("`{}`: entry `{entry}` overlaps the data of entry `{other}`", .archive.display())]
    Overlap {
        /// The archive.
        archive: PathBuf,
        /// The later entry.
        entry: String,
        /// The entry it overlaps.
        other: String,
    },
    /// A directory entry declares content.
    #[error("`{}`: directory entry `{entry}` has content", .archive.display())]
    DirectoryWithData {
        /// The archive.
        archive: PathBuf,
        /// The entry.
        entry: String,
    },
    /// An entry is encrypted.
    #[error("`{}`: entry `{entry}` is encrypted", .archive.display())]
    Encrypted {
        /// The archive.
        archive: PathBuf,
        /// The entry.
        entry: String,
    },
    /// An entry uses a compression method other than stored or deflate.
    #[error("`{}`: entry `{entry}` uses the unsupported compression method {method}", .archive.display())]
    UnsupportedCompression {
        /// The archive.
        archive: PathBuf,
        /// The entry.
        entry: String,
        /// The method as the zip crate names it.
        method: String,
    },
    /// More entries than [`crate::Limits::max_entries`].
    #[error("`{}` has more than {limit} entries", .archive.display())]
    TooManyEntries {
        /// The archive.
        archive: PathBuf,
        /// The limit.
        limit: usize,
    },
    /// The declared sizes add up to more than [`crate::Limits::max_total_uncompressed`].
    #[error("`{}`: uncompressed size exceeds the limit of {limit} bytes", .archive.display())]
    TooLarge {
        /// The archive.
        archive: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// An entry compresses better than [`crate::Limits::max_ratio`] allows (a zip bomb).
    #[error(
        "`{}`: compression ratio of entry `{entry}` is suspicious ({ratio}:1, limit {limit}:1)"
    , .archive.display())]
    SuspiciousRatio {
        /// The archive.
        archive: PathBuf,
        /// The entry.
        entry: String,
        /// Its uncompressed size divided by its compressed size.
        ratio: u64,
        /// The limit.
        limit: u64,
    },
    /// An entry decompresses to more bytes than its header declares.
    #[error("`{}`: entry `{entry}` holds more than the {declared} bytes its header declares", .archive.display())]
    LongerThanDeclared {
        /// The archive.
        archive: PathBuf,
        /// The entry.
        entry: String,
        /// The declared uncompressed size.
        declared: u64,
    },
    /// An entry decompresses to fewer bytes than its header declares.
    #[error(
        "`{}`: entry `{entry}` holds {actual} bytes, fewer than the {declared} its header declares"
    , .archive.display())]
    ShorterThanDeclared {
        /// The archive.
        archive: PathBuf,
        /// The entry.
        entry: String,
        /// The declared uncompressed size.
        declared: u64,
        /// The bytes actually found.
        actual: u64,
    },
    /// An entry's data cannot be read: corrupt deflate stream, CRC mismatch or I/O error.
    #[error("`{}`: entry `{entry}` cannot be read", .archive.display())]
    Read {
        /// The archive.
        archive: PathBuf,
        /// The entry.
        entry: String,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// The requested entry is not a file in the archive.
    #[error("`{}`: `{entry}` is missing", .archive.display())]
    NotFound {
        /// The archive.
        archive: PathBuf,
        /// The requested name.
        entry: String,
    },
    /// The requested entry is larger than the caller allows.
    #[error("`{}`: entry `{entry}` is larger than the {limit} bytes allowed for it", .archive.display())]
    EntryTooLarge {
        /// The archive.
        archive: PathBuf,
        /// The entry.
        entry: String,
        /// The caller's limit.
        limit: u64,
    },
    /// The extraction destination is missing, not a directory or not empty.
    #[error("extraction destination `{}` is not an empty directory", .dest.display())]
    DestinationNotEmpty {
        /// The destination.
        dest: PathBuf,
    },
    /// The extraction destination cannot be inspected.
    #[error("cannot read extraction destination `{}`", .dest.display())]
    Destination {
        /// The destination.
        dest: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// The extraction filter mapped an entry to a path that is not plain and relative.
    #[error("`{}`: entry `{entry}` is mapped to the unsafe target `{}`", .archive.display(), .target.display())]
    UnsafeTarget {
        /// The archive.
        archive: PathBuf,
        /// The entry.
        entry: String,
        /// The path the filter returned.
        target: PathBuf,
    },
    /// Writing an extracted entry failed (including a target that already exists).
    #[error("`{}`: cannot write entry `{entry}` to `{}`", .archive.display(), .path.display())]
    Write {
        /// The archive.
        archive: PathBuf,
        /// The entry.
        entry: String,
        /// The file or directory being written.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// Extraction failed and removing what it had written failed too.
    #[error("cannot remove the partial extraction in `{}` after this failure: {error}", .dest.display())]
    Cleanup {
        /// The destination.
        dest: PathBuf,
        /// The extraction failure.
        error: Box<ArchiveError>,
        /// The removal failure.
        #[source]
        source: io::Error,
    },
    /// A test build's fault point stopped the extraction (`aps_failpoint`).
    #[error(transparent)]
    Injected(#[from] aps_failpoint::Injected),
}

impl ArchiveError {
    /// The category of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ArchiveError::Open { .. }
            | ArchiveError::Write { .. }
            | ArchiveError::Destination { .. }
            | ArchiveError::Cleanup { .. }
            | ArchiveError::Injected(_) => ErrorKind::Io,
            ArchiveError::NotZip { .. }
            | ArchiveError::Inconsistent { .. }
            | ArchiveError::Encrypted { .. }
            | ArchiveError::UnsupportedCompression { .. }
            | ArchiveError::Read { .. } => ErrorKind::Malformed,
            ArchiveError::NameNotUtf8 { .. }
            | ArchiveError::UnsafeName { .. }
            | ArchiveError::Symlink { .. }
            | ArchiveError::SpecialFile { .. }
            | ArchiveError::Duplicate { .. }
            | ArchiveError::InsideFile { .. }
            | ArchiveError::Overlap { .. }
            | ArchiveError::DirectoryWithData { .. }
            | ArchiveError::LongerThanDeclared { .. }
            | ArchiveError::ShorterThanDeclared { .. } => ErrorKind::Hostile,
            ArchiveError::TooManyEntries { .. }
            | ArchiveError::TooLarge { .. }
            | ArchiveError::SuspiciousRatio { .. }
            | ArchiveError::EntryTooLarge { .. } => ErrorKind::Limit,
            ArchiveError::NotFound { .. } => ErrorKind::Missing,
            ArchiveError::DestinationNotEmpty { .. } | ArchiveError::UnsafeTarget { .. } => {
                ErrorKind::Usage
            }
        }
    }
}
