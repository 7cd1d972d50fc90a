//! The backup archive format: one self-describing `.tar.zst`, written and read in one streaming
//! pass each.
//!
//! Main decision: the archive is a plain GNU tar stream inside one zstd stream (with its content
//! checksum), so a person without apsctl restores it with `zstd -dc FILE | tar -x`. Layout:
//! `files/<path below the instance root>` (regular files and folders only),
//! `resources/<kind>/<name>.NNNN` (a stream of unknown length, such as a database dump, cut into
//! chunks of a fixed size so that no dump needs a temporary file: `cat resources/db/main.sql.*`
//! gives it back), `script/backup-file`, and `manifest.json` last, carrying the checksums of
//! everything before it. [`BundleWriter`] hashes every entry while it writes it; memory stays
//! bounded by one chunk buffer plus the compressor's, whatever the data size. The reader
//! ([`verify`], [`read_entries`], [`read_verified`]) treats the archive as hostile: it classifies
//! and checks each entry from its header before reading its data, enforces [`BundleLimits`] on
//! declared sizes (so a compression bomb is refused without being inflated), and refuses names
//! that are not plain, relative and in their place, links, special files, duplicates, chunks out
//! of order, anything after the manifest and anything but padding after the end of the tar
//! stream.
//!
//! Known gaps: chunk numbers have four digits so that `cat name.*` always joins them in order,
//! which caps a stream at 10,000 chunks (78 GiB at the default 8 MiB; a larger dump fails the
//! backup with [`BundleError::TooManyChunks`], naming the option to raise). A file larger than
//! the chunk size is streamed into the archive, so when it changes size while being added the
//! archive cannot take it back: the writer is then unusable and the whole backup must start
//! again (smaller files are buffered and can be retried, see [`BundleError::is_retryable`]). [`read_entries`] repeats every structural check but compares
//! no checksum; a caller that wants one pass uses [`read_verified`], which checks the manifest
//! at the end (after the visitor has seen every entry). Modes are stored with their
//! `0o7777` bits and handed to readers masked to `0o777`. The reader accepts GNU long names but
//! no PAX headers (the writer never writes them).

mod error;
mod names;
mod read;
mod write;

use std::fmt;
use std::io::Read;

pub use error::{BundleError, BundleErrorKind, Problem, Problems, SizeChange};
pub use read::{read_entries, read_verified, verify};
pub use write::{BundleWriter, StreamWriter};

/// How [`BundleWriter`] compresses and cuts streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleOptions {
    /// zstd compression level, from zstd's fastest negative levels to 19 (default 3). Levels 20
    /// to 22 are refused: their windows exceed what [`verify`] lets a decoder allocate.
    pub level: i32,
    /// Compression worker threads; 0 (default) uses every available core like `zstd -T0`, at
    /// most 16. Memory grows by about 2 MiB per worker beyond 16.
    pub threads: u32,
    /// Size of each chunk of a stream, and the largest file that is buffered before it is
    /// written (so that a change while it is read leaves the archive untouched); default 8 MiB,
    /// at most 1 GiB. Memory use grows with it.
    pub chunk_size: u64,
}

impl Default for BundleOptions {
    fn default() -> Self {
        Self {
            level: 3,
            threads: 0,
            chunk_size: 8 << 20,
        }
    }
}

/// Size and SHA-256 of an entry or of a whole stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest {
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content.
    pub sha256: [u8; 32],
}

impl Digest {
    /// The SHA-256 as 64 lowercase hex digits, as manifests write it.
    pub fn sha256_hex(&self) -> String {
        use fmt::Write as _;
        self.sha256
            .iter()
            .fold(String::with_capacity(64), |mut out, byte| {
                // Writing into a String cannot fail.
                let _ = write!(out, "{byte:02x}");
                out
            })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes with SHA-256 {}", self.size, self.sha256_hex())
    }
}

/// Caps that protect a reader against hostile archives; sizes are those the tar headers declare,
/// checked before any data of the entry is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleLimits {
    /// Maximum number of entries, folders and chunks included (default 1,000,000).
    pub max_entries: usize,
    /// Maximum sum of all entry sizes (default 1 TiB).
    pub max_total_bytes: u64,
    /// Maximum size of one entry, a whole stream included (default 128 GiB: above the 78 GiB a
    /// stream of 10,000 chunks of the default 8 MiB can hold, so the reader takes whatever the
    /// default writer makes).
    pub max_entry_bytes: u64,
    /// Maximum size of `manifest.json`, which is read into memory (default 256 MiB).
    pub max_manifest_bytes: u64,
}

impl Default for BundleLimits {
    fn default() -> Self {
        Self {
            max_entries: 1_000_000,
            max_total_bytes: 1 << 40,
            max_entry_bytes: 128 << 30,
            max_manifest_bytes: 256 << 20,
        }
    }
}

/// What a manifest claims the archive holds, as the caller of [`verify`] reads it from the
/// manifest. Names are archive names: `files/…` and `script/…` for files, the stream name
/// without the chunk number (`resources/db/main.sql`) for streams, and folder names without a
/// trailing `/`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    /// Regular files with their digests.
    pub files: Vec<(String, Digest)>,
    /// Streams with the digest of all their chunks together.
    pub streams: Vec<(String, Digest)>,
    /// Folders.
    pub dirs: Vec<String>,
}

/// What [`verify`] (or [`read_verified`]) read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The bytes of `manifest.json`.
    pub manifest: Vec<u8>,
    /// Entries read: folders, files, chunks and the manifest.
    pub entries: usize,
    /// Bytes of entry content read, the manifest included.
    pub bytes: u64,
}

/// One entry as [`read_entries`] hands it to its visitor, in archive order.
pub enum BundleEntry<'a> {
    /// A folder.
    Dir {
        /// Its archive name, without a trailing `/`.
        name: &'a str,
        /// Its permission bits (`0o777` at most).
        mode: u32,
    },
    /// A regular file below `files/` or `script/`.
    File {
        /// Its archive name.
        name: &'a str,
        /// Its permission bits (`0o777` at most).
        mode: u32,
        /// Its size.
        size: u64,
        /// Its content; whatever the visitor leaves unread is skipped.
        data: &'a mut dyn Read,
    },
    /// A whole stream, handed once at its first chunk.
    Stream {
        /// The stream name (without the chunk number).
        name: &'a str,
        /// All its chunks, one after the other; whatever the visitor leaves unread is skipped.
        data: &'a mut dyn Read,
    },
    /// `manifest.json`, the last entry (its bytes come from [`verify`]).
    Manifest,
}

impl fmt::Debug for BundleEntry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleEntry::Dir { name, mode } => f
                .debug_struct("Dir")
                .field("name", name)
                .field("mode", mode)
                .finish(),
            BundleEntry::File {
                name, mode, size, ..
            } => f
                .debug_struct("File")
                .field("name", name)
                .field("mode", mode)
                .field("size", size)
                .finish_non_exhaustive(),
            BundleEntry::Stream { name, .. } => f
                .debug_struct("Stream")
                .field("name", name)
                .finish_non_exhaustive(),
            BundleEntry::Manifest => f.write_str("Manifest"),
        }
    }
}
