//! Safe reading of untrusted `.app.zip` packages.
//!
//! Main decision: an archive is read entry by entry and never extracted blindly. Every entry name
//! is checked before use, only regular files and directories are accepted, sizes are capped, and
//! each file is hashed in the same streaming pass that writes it into a private staging folder,
//! so APP-LIST.xml is verified without reading anything twice. A refusal removes the staging
//! folder before it returns.
//!
//! Layout: [`Archive::open`] performs every check that needs only the central directory (names,
//! entry types, duplicates, entry count, declared sizes, compression ratios) before any file data
//! is read; [`Archive::scan`] hashes files without writing them, [`Archive::extract`] writes a
//! selection into an empty staging folder, and [`verify_listing`] compares either result with a
//! parsed APP-LIST.xml. The free functions [`scan`], [`read_file`], [`extract`] and
//! [`extract_all`] open the archive themselves.
//!
//! Known gaps: extraction creates parent folders by path (checking that no symlink is in the
//! way) rather than through directory handles, so it relies on the staging folder being private
//! to the caller.
//!
//! Backup archives (`.tar.zst`) are the other format of this crate, in [`bundle`]: written by
//! apsctl, read back as untrusted input under the same rules.
#![deny(missing_docs)]

mod archive;
pub mod bundle;
mod error;
mod extract;
mod listing;
mod name;
mod pack;
mod reader;

use std::path::{Path, PathBuf};

pub use archive::{Archive, FileInfo, Limits, Md5Digests, Scan, ScanOptions};
pub use error::{ArchiveError, ErrorKind, NameProblem};
pub use extract::Extracted;
pub use listing::{ListingProblem, ListingProblems, verify_listing};
pub use pack::{PackError, Packed, pack_folder};

/// Opens `zip_path`, checks it under `limits` and hashes every file (SHA-256 only).
///
/// Use [`Archive::open`] and [`Archive::scan`] with [`ScanOptions::for_list`] when the listing
/// carries MD5 entries.
pub fn scan(zip_path: &Path, limits: &Limits) -> Result<Scan, ArchiveError> {
    Archive::open(zip_path, limits)?.scan(&ScanOptions::default())
}

/// Opens `zip_path`, checks it under the default [`Limits`] and returns the content of the file
/// entry `name`, refusing one larger than `max_bytes`.
pub fn read_file(zip_path: &Path, name: &str, max_bytes: u64) -> Result<Vec<u8>, ArchiveError> {
    Archive::open(zip_path, &Limits::default())?.read_file(name, max_bytes)
}

/// Opens `zip_path`, checks it under `limits` and extracts the entries `filter` selects into the
/// empty directory `dest` (see [`Archive::extract`]).
pub fn extract(
    zip_path: &Path,
    dest: &Path,
    filter: &dyn Fn(&str) -> Option<PathBuf>,
    limits: &Limits,
) -> Result<Extracted, ArchiveError> {
    Archive::open(zip_path, limits)?.extract(dest, filter)
}

/// Opens `zip_path`, checks it under `limits` and extracts every entry into the empty directory
/// `dest` under its own name.
pub fn extract_all(
    zip_path: &Path,
    dest: &Path,
    limits: &Limits,
) -> Result<Extracted, ArchiveError> {
    extract(zip_path, dest, &|name| Some(PathBuf::from(name)), limits)
}
