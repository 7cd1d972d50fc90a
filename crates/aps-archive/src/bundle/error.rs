//! Errors of writing and reading backup bundles, each naming the archive and the entry.
//!
//! Main decision: one enum for the bundle format, one sentence per variant, sorted by
//! [`BundleError::kind`] into the categories a caller maps to exit codes. Every name is shown
//! escaped, so a hostile name cannot forge output. A writer made with
//! [`BundleWriter::new`](super::BundleWriter::new) does not know its file; its messages say
//! "the backup archive" and the caller adds the path.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use super::Digest;
use crate::error::NameProblem;

/// The category of a [`BundleError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleErrorKind {
    /// Reading or writing failed for reasons outside the archive's content (a file system error,
    /// a source file that changed while it was read, a failure reported by the caller's visitor).
    Io,
    /// The archive is not a readable zstd-compressed tar archive, is truncated or corrupt, or has
    /// no manifest.
    Malformed,
    /// The archive contains something dangerous: an unsafe or misplaced name, a link, a special
    /// file, a duplicate, chunks out of order or data hidden after its end.
    Hostile,
    /// The archive passes one of the configured [`BundleLimits`](super::BundleLimits).
    Limit,
    /// The archive's content differs from what its manifest claims.
    Mismatch,
    /// The caller passed an unusable argument (options, an entry name the format does not allow).
    Usage,
}

/// One difference between an archive and its manifest, found by [`verify`](super::verify).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The manifest lists an entry the archive does not hold.
    Missing {
        /// The entry (a file, stream or folder name).
        entry: String,
    },
    /// The archive holds an entry the manifest does not list.
    Extra {
        /// The entry.
        entry: String,
    },
    /// Size or SHA-256 differ.
    Differs {
        /// The entry.
        entry: String,
        /// What the manifest claims.
        expected: Digest,
        /// What was read.
        found: Digest,
    },
    /// The manifest lists the entry as another kind (file, stream or folder) than the archive
    /// holds.
    WrongKind {
        /// The entry.
        entry: String,
        /// The kind the manifest claims.
        expected: &'static str,
        /// The kind in the archive.
        found: &'static str,
    },
    /// The manifest lists the same entry twice.
    Repeated {
        /// The entry.
        entry: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing { entry } => write!(f, "`{}` is missing", esc(entry)),
            Problem::Extra { entry } => write!(f, "`{}` is not in the manifest", esc(entry)),
            Problem::Differs {
                entry,
                expected,
                found,
            } => write!(
                f,
                "`{}` is {found}, the manifest says {expected}",
                esc(entry)
            ),
            Problem::WrongKind {
                entry,
                expected,
                found,
            } => write!(
                f,
                "`{}` is a {found}, the manifest says a {expected}",
                esc(entry)
            ),
            Problem::Repeated { entry } => write!(f, "`{}` is listed twice", esc(entry)),
        }
    }
}

/// How many problems a [`BundleError::Mismatch`] message shows (the field holds them all).
const SHOWN_PROBLEMS: usize = 20;

/// The list of problems of a [`BundleError::Mismatch`], shown as one sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.0.iter().take(SHOWN_PROBLEMS).enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        if self.0.len() > SHOWN_PROBLEMS {
            write!(f, "; and {} more", self.0.len() - SHOWN_PROBLEMS)?;
        }
        Ok(())
    }
}

/// How a source file differed from the size it was announced with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeChange {
    /// The data ended after this many bytes.
    Shorter(u64),
    /// The data went on past the announced size.
    Longer,
}

impl fmt::Display for SizeChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeChange::Shorter(read) => write!(f, "ended after {read} bytes"),
            SizeChange::Longer => f.write_str("grew"),
        }
    }
}

/// Why a backup bundle could not be written, read or verified.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The options are unusable.
    #[error("backup archive options are unusable: {detail}")]
    Options {
        /// What is wrong.
        detail: String,
    },
    /// The archive file cannot be created or opened.
    #[error("cannot open {}", shown(.archive))]
    Open {
        /// The archive.
        archive: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// The zstd compressor cannot be set up.
    #[error("cannot set up the zstd compressor for {}", shown(.archive))]
    Compressor {
        /// The archive.
        archive: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// The caller asked to write an entry name the format does not allow.
    #[error("{}: cannot add entry `{entry_shown}`: {reason}", shown(.archive), entry_shown = esc(.entry))]
    BadName {
        /// The archive.
        archive: PathBuf,
        /// The name (messages escape it).
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// Reading the data of an entry to be added failed.
    #[error("{}: cannot read the data of entry `{entry_shown}`", shown(.archive), entry_shown = esc(.entry))]
    Source {
        /// The archive.
        archive: PathBuf,
        /// The entry.
        entry: String,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// A file to be added did not have the announced size (it changed while the instance stayed
    /// online). When `retryable`, nothing of it was written and the caller may add it again.
    #[error(
        "{}: file `{entry_shown}` changed while it was added: it was announced as {size} bytes but {change}",
        shown(.archive), entry_shown = esc(.entry))]
    Changed {
        /// The archive.
        archive: PathBuf,
        /// The entry.
        entry: String,
        /// The announced size.
        size: u64,
        /// What was found instead.
        change: SizeChange,
        /// Whether the archive is still usable (see [`BundleError::is_retryable`]).
        retryable: bool,
    },
    /// Writing into the archive failed.
    #[error("{}: cannot write entry `{entry_shown}`", shown(.archive), entry_shown = esc(.entry))]
    Write {
        /// The archive.
        archive: PathBuf,
        /// The entry being written.
        entry: String,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// An earlier failure left the archive unusable; nothing more can be added to it.
    #[error(
        "{}: cannot add entry `{entry_shown}`: the archive was left unusable by the failure of `{failed_shown}`",
        shown(.archive), entry_shown = esc(.entry), failed_shown = esc(.failed))]
    Unusable {
        /// The archive.
        archive: PathBuf,
        /// The entry that was to be added.
        entry: String,
        /// The entry whose failure broke the archive.
        failed: String,
    },
    /// A stream grew past the number of chunks the naming scheme allows.
    #[error(
        "{}: stream `{entry_shown}` needs more than {chunks} chunks; raise the chunk size",
        shown(.archive), entry_shown = esc(.entry))]
    TooManyChunks {
        /// The archive.
        archive: PathBuf,
        /// The stream.
        entry: String,
        /// The limit.
        chunks: u32,
    },
    /// The archive is not a readable zstd-compressed tar archive at some point.
    #[error("{} is corrupt {}", shown(.archive), position(.near.as_deref()))]
    Corrupt {
        /// The archive.
        archive: PathBuf,
        /// The entry being read, or the last one read, when the damage was found.
        near: Option<String>,
        /// The decompressor's or tar reader's diagnosis.
        #[source]
        source: io::Error,
    },
    /// An entry holds fewer bytes than its header declares (a truncated archive).
    #[error(
        "{}: entry `{entry_shown}` holds {actual} bytes, fewer than the {declared} its header declares",
        shown(.archive), entry_shown = esc(.entry))]
    Truncated {
        /// The archive.
        archive: PathBuf,
        /// The entry.
        entry: String,
        /// The declared size.
        declared: u64,
        /// The bytes found.
        actual: u64,
    },
    /// An entry name is not valid UTF-8.
    #[error("{}: entry name `{entry_shown}` is not valid UTF-8", shown(.archive), entry_shown = esc(.entry))]
    NameNotUtf8 {
        /// The archive.
        archive: PathBuf,
        /// The name with invalid bytes replaced.
        entry: String,
    },
    /// An entry name is not a plain relative path.
    #[error("{}: entry `{entry_shown}` {problem}", shown(.archive), entry_shown = esc(.entry))]
    UnsafeName {
        /// The archive.
        archive: PathBuf,
        /// The name (messages escape it).
        entry: String,
        /// What is wrong with it.
        problem: NameProblem,
    },
    /// An entry lies outside the format's places (`files/`, `resources/`, `script/`, the final
    /// `manifest.json`), or a file stands where only chunks may.
    #[error("{}: entry `{entry_shown}` {reason}", shown(.archive), entry_shown = esc(.entry))]
    Misplaced {
        /// The archive.
        archive: PathBuf,
        /// The entry.
        entry: String,
        /// Why it is misplaced.
        reason: &'static str,
    },
    /// An entry is not a regular file or folder (link, hard link, device, FIFO, sparse file,
    /// extended header, unknown type).
    #[error("{}: entry `{entry_shown}` is {what}; backups hold only regular files and folders", shown(.archive), entry_shown = esc(.entry))]
    Special {
        /// The archive.
        archive: PathBuf,
        /// The entry.
        entry: String,
        /// What it is.
        what: String,
    },
    /// Two entries have the same name.
    #[error("{}: duplicate entry `{entry_shown}`", shown(.archive), entry_shown = esc(.entry))]
    Duplicate {
        /// The archive.
        archive: PathBuf,
        /// The name.
        entry: String,
    },
    /// An entry lies below an entry that is a file.
    #[error("{}: entry `{entry_shown}` lies inside `{parent_shown}`, which is a file", shown(.archive), entry_shown = esc(.entry), parent_shown = esc(.parent))]
    InsideFile {
        /// The archive.
        archive: PathBuf,
        /// The entry.
        entry: String,
        /// The file it would be inside.
        parent: String,
    },
    /// A file entry has the name of a folder that earlier entries lie in.
    #[error("{}: file entry `{entry_shown}` has the name of a folder that earlier entries lie in", shown(.archive), entry_shown = esc(.entry))]
    FileOverFolder {
        /// The archive.
        archive: PathBuf,
        /// The entry.
        entry: String,
    },
    /// A folder entry declares content.
    #[error("{}: folder entry `{entry_shown}` has content", shown(.archive), entry_shown = esc(.entry))]
    FolderWithData {
        /// The archive.
        archive: PathBuf,
        /// The entry.
        entry: String,
    },
    /// A GNU long-name header is too long, repeated or not followed by an entry.
    #[error("{}: {detail}", shown(.archive))]
    LongName {
        /// The archive.
        archive: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// A chunk of a stream is missing or out of order.
    #[error("{}: chunk `{entry_shown}` {detail}", shown(.archive), entry_shown = esc(.entry))]
    ChunkOrder {
        /// The archive.
        archive: PathBuf,
        /// The chunk.
        entry: String,
        /// What was expected instead.
        detail: String,
    },
    /// An entry follows `manifest.json`, which must be last.
    #[error("{}: entry `{entry_shown}` follows `manifest.json`, which must be the last entry", shown(.archive), entry_shown = esc(.entry))]
    AfterManifest {
        /// The archive.
        archive: PathBuf,
        /// The entry.
        entry: String,
    },
    /// The archive has no `manifest.json`.
    #[error("{} has no `manifest.json`; it is not a complete apsctl backup", shown(.archive))]
    NoManifest {
        /// The archive.
        archive: PathBuf,
    },
    /// Data other than end-of-archive padding follows the end of the tar archive.
    #[error("{}: {detail} after the end of the tar archive", shown(.archive))]
    TrailingData {
        /// The archive.
        archive: PathBuf,
        /// What was found.
        detail: String,
    },
    /// More entries than [`BundleLimits::max_entries`](super::BundleLimits::max_entries).
    #[error("{} has more than {limit} entries", shown(.archive))]
    TooManyEntries {
        /// The archive.
        archive: PathBuf,
        /// The limit.
        limit: usize,
    },
    /// The entries add up to more than
    /// [`BundleLimits::max_total_bytes`](super::BundleLimits::max_total_bytes).
    #[error("{}: entry `{entry_shown}` takes the content past the limit of {limit} bytes", shown(.archive), entry_shown = esc(.entry))]
    TooLarge {
        /// The archive.
        archive: PathBuf,
        /// The entry that passed the limit.
        entry: String,
        /// The limit.
        limit: u64,
    },
    /// One entry is larger than its limit ([`BundleLimits::max_entry_bytes`](super::BundleLimits::max_entry_bytes),
    /// or [`BundleLimits::max_manifest_bytes`](super::BundleLimits::max_manifest_bytes) for the manifest).
    #[error("{}: entry `{entry_shown}` declares {size} bytes, more than the {limit} allowed", shown(.archive), entry_shown = esc(.entry))]
    EntryTooLarge {
        /// The archive.
        archive: PathBuf,
        /// The entry.
        entry: String,
        /// Its declared size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The caller's reading of `manifest.json` failed.
    #[error("{}: `manifest.json` is unusable: {detail}", shown(.archive))]
    Manifest {
        /// The archive.
        archive: PathBuf,
        /// The caller's diagnosis.
        detail: String,
    },
    /// The archive's content differs from its manifest.
    #[error("{} does not match its manifest ({} problems): {problems}", shown(.archive), .problems.0.len())]
    Mismatch {
        /// The archive.
        archive: PathBuf,
        /// Every difference found.
        problems: Problems,
    },
    /// The caller's visitor failed on an entry (see [`BundleError::visit`]).
    #[error("{}: restoring entry `{entry_shown}` failed", shown(.archive), entry_shown = esc(.entry))]
    Visit {
        /// The archive (filled in by the reader).
        archive: PathBuf,
        /// The entry.
        entry: String,
        /// The caller's failure.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl BundleError {
    /// The category of this error.
    pub fn kind(&self) -> BundleErrorKind {
        match self {
            BundleError::Open { .. }
            | BundleError::Compressor { .. }
            | BundleError::Source { .. }
            | BundleError::Changed { .. }
            | BundleError::Write { .. }
            | BundleError::Unusable { .. }
            | BundleError::Visit { .. } => BundleErrorKind::Io,
            BundleError::Corrupt { .. }
            | BundleError::Truncated { .. }
            | BundleError::NoManifest { .. }
            | BundleError::Manifest { .. } => BundleErrorKind::Malformed,
            BundleError::NameNotUtf8 { .. }
            | BundleError::UnsafeName { .. }
            | BundleError::Misplaced { .. }
            | BundleError::Special { .. }
            | BundleError::Duplicate { .. }
            | BundleError::InsideFile { .. }
            | BundleError::FileOverFolder { .. }
            | BundleError::FolderWithData { .. }
            | BundleError::LongName { .. }
            | BundleError::ChunkOrder { .. }
            | BundleError::AfterManifest { .. }
            | BundleError::TrailingData { .. } => BundleErrorKind::Hostile,
            BundleError::TooManyEntries { .. }
            | BundleError::TooLarge { .. }
            | BundleError::EntryTooLarge { .. }
            | BundleError::TooManyChunks { .. } => BundleErrorKind::Limit,
            BundleError::Mismatch { .. } => BundleErrorKind::Mismatch,
            BundleError::Options { .. } | BundleError::BadName { .. } => BundleErrorKind::Usage,
        }
    }

    /// Whether the failed call left the writer usable, so the caller may try the same entry
    /// again (a small file that changed while it was read, or a source read error before any of
    /// its bytes were written).
    pub fn is_retryable(&self) -> bool {
        match self {
            BundleError::Changed { retryable, .. } => *retryable,
            BundleError::BadName { .. } | BundleError::Options { .. } => true,
            _ => false,
        }
    }

    /// An error for a visitor of [`read_entries`](super::read_entries) to return when it cannot
    /// restore `entry`; the reader fills in the archive's path.
    pub fn visit(entry: &str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        BundleError::Visit {
            archive: PathBuf::new(),
            entry: entry.to_owned(),
            source: source.into(),
        }
    }
}

impl BundleError {
    /// [`BundleError::visit`] for an I/O failure of the visitor on `entry` (writing a restored
    /// file, say).
    pub fn io(entry: &str, error: io::Error) -> Self {
        Self::visit(entry, error)
    }

    /// [`BundleError::visit`] for a failure the visitor describes in words (a database that
    /// refused its dump, say).
    pub fn other(entry: &str, message: &str) -> Self {
        Self::visit(entry, message.to_owned())
    }
}

/// The archive as messages show it: its path in backticks, or "the backup archive" for a writer
/// that was not told its path.
fn shown(archive: &Path) -> String {
    if archive.as_os_str().is_empty() {
        "the backup archive".to_owned()
    } else {
        format!("`{}`", archive.display())
    }
}

/// A name as messages show it: control characters escaped, so a hostile name cannot forge
/// output.
fn esc(name: &str) -> String {
    crate::name::display(name.as_bytes())
}

/// Where in the archive the damage is.
fn position(near: Option<&str>) -> String {
    match near {
        Some(entry) => format!("near entry `{}`", esc(entry)),
        None => "before its first entry".to_owned(),
    }
}
