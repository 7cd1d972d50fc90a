//! The naming rules of the bundle format, shared by the writer and the reader.
//!
//! Main decision: an entry's role follows from its name and type alone, so the reader can
//! classify every entry the moment it sees it, long before the manifest (the last entry) says
//! what to expect: folders anywhere below `files/`, `resources/` and `script/`; regular files
//! below `files/` and `script/`; below `resources/` only chunks `<stream>.NNNN`; and
//! `manifest.json`. The writer refuses to produce anything the reader would refuse.

use std::collections::HashMap;

use crate::error::NameProblem;
use crate::name::{EntryName, RawNameError};

/// The instance's files.
pub(crate) const FILES: &str = "files";
/// Resource dumps, as chunked streams.
pub(crate) const RESOURCES: &str = "resources";
/// The backup script's own file.
pub(crate) const SCRIPT: &str = "script";
/// The manifest, the last entry.
pub(crate) const MANIFEST: &str = "manifest.json";
/// Digits of a chunk number: `cat name.*` concatenates chunks in order only while every
/// number has the same width.
const CHUNK_DIGITS: usize = 4;
/// Chunks a stream may have (`0000` to `9999`).
pub(crate) const MAX_CHUNKS: u32 = 10_000;

/// Checks a raw entry name read from a tar header (see [`check`]).
pub(crate) fn check_raw(raw: &[u8]) -> Result<EntryName, RawNameError> {
    let name = std::str::from_utf8(raw).map_err(|_| RawNameError::NotUtf8)?;
    check(name).map_err(RawNameError::Unsafe)
}

/// Checks an entry name: relative, `/`-separated, no `..`, `.` or empty segment, no NUL.
///
/// Unlike package names, backup names may hold backslashes, colons and other control
/// characters: they are the names of an instance's files on Linux, where all of these are plain
/// name bytes, and a backup must not fail because a visitor uploaded `a\b.jpg`. Messages show
/// names escaped ([`crate::name::display`]).
pub(crate) fn check(name: &str) -> Result<EntryName, NameProblem> {
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    if name.contains('\0') {
        return Err(NameProblem::ControlCharacter);
    }
    if name.starts_with('/') {
        return Err(NameProblem::Absolute);
    }
    let (path, has_trailing_slash) = match name.strip_suffix('/') {
        Some(path) => (path, true),
        None => (name, false),
    };
    for segment in path.split('/') {
        match segment {
            "" => return Err(NameProblem::EmptySegment),
            "." => return Err(NameProblem::DotSegment),
            ".." => return Err(NameProblem::ParentSegment),
            _ => {}
        }
    }
    Ok(EntryName {
        path: path.to_owned(),
        has_trailing_slash,
    })
}

/// What an entry is, by its name and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Role {
    /// A folder.
    Dir,
    /// A regular file below `files/` or `script/`.
    File,
    /// Chunk `index` of the stream `base`.
    Chunk {
        /// The stream's name (the chunk name without `.NNNN`).
        base: String,
        /// The chunk number.
        index: u32,
    },
    /// `manifest.json`.
    Manifest,
}

/// Why a checked name has no place in the format.
pub(crate) type Misplacement = &'static str;

/// The role of the checked (plain, relative) name `name` of a folder (`is_dir`) or regular file.
pub(crate) fn role(name: &str, is_dir: bool) -> Result<Role, Misplacement> {
    if name == MANIFEST {
        return if is_dir {
            Err("is a folder named like the manifest")
        } else {
            Ok(Role::Manifest)
        };
    }
    let (top, rest) = match name.split_once('/') {
        Some((top, rest)) => (top, Some(rest)),
        None => (name, None),
    };
    if ![FILES, RESOURCES, SCRIPT].contains(&top) {
        return Err("is outside `files/`, `resources/` and `script/`");
    }
    if is_dir {
        return Ok(Role::Dir);
    }
    if rest.is_none() {
        return Err("is a file where the format has a folder");
    }
    if top != RESOURCES {
        return Ok(Role::File);
    }
    match parse_chunk(name) {
        Some((base, index)) => Ok(Role::Chunk {
            base: base.to_owned(),
            index,
        }),
        None => Err("is a file below `resources/` that is not a stream chunk `NAME.NNNN`"),
    }
}

/// The name of chunk `index` of stream `base`.
pub(crate) fn chunk_name(base: &str, index: u32) -> String {
    format!("{base}.{index:0CHUNK_DIGITS$}")
}

/// Splits `resources/…/NAME.NNNN` into the stream name and the chunk number.
fn parse_chunk(name: &str) -> Option<(&str, u32)> {
    let (base, digits) = name.rsplit_once('.')?;
    if digits.len() != CHUNK_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if base.ends_with('/') || !base.contains('/') {
        return None;
    }
    Some((base, digits.parse().ok()?))
}

/// How a name already seen is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// An explicit folder entry.
    Dir,
    /// A folder that some entry lies in, without an entry of its own (yet).
    Implied,
    /// A file, chunk or the manifest.
    Leaf,
}

/// Why a name cannot be added to a [`NameSet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Conflict {
    /// The name is already an entry.
    Duplicate,
    /// An ancestor of the name is a file.
    InsideFile(String),
    /// The name, a file, is a folder earlier entries lie in.
    FileOverFolder,
}

/// Every name of an archive so far, with the folders they imply.
#[derive(Debug, Default)]
pub(crate) struct NameSet {
    seen: HashMap<String, Seen>,
}

impl NameSet {
    /// Whether the checked name `name` of a folder (`is_dir`) or leaf could be added.
    pub(crate) fn check(&self, name: &str, is_dir: bool) -> Result<(), Conflict> {
        for ancestor in crate::name::ancestors(name) {
            if self.seen.get(ancestor) == Some(&Seen::Leaf) {
                return Err(Conflict::InsideFile(ancestor.to_owned()));
            }
        }
        match self.seen.get(name) {
            Some(Seen::Dir | Seen::Leaf) => Err(Conflict::Duplicate),
            Some(Seen::Implied) if !is_dir => Err(Conflict::FileOverFolder),
            _ => Ok(()),
        }
    }

    /// Adds the checked name `name` of a folder (`is_dir`) or leaf; on a conflict nothing is
    /// added.
    pub(crate) fn insert(&mut self, name: &str, is_dir: bool) -> Result<(), Conflict> {
        self.check(name, is_dir)?;
        for ancestor in crate::name::ancestors(name) {
            if !self.seen.contains_key(ancestor) {
                self.seen.insert(ancestor.to_owned(), Seen::Implied);
            }
        }
        let kind = if is_dir { Seen::Dir } else { Seen::Leaf };
        self.seen.insert(name.to_owned(), kind);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_relative_paths_of_any_linux_bytes_but_nul() {
        for name in [
            "files/a\\b.jpg",
            "files/c:d",
            "files/tab\there",
            "files/été/日本",
        ] {
            assert_eq!(check(name).unwrap().path, name);
        }
        assert!(check("files/x/").unwrap().has_trailing_slash);
        for (name, problem) in [
            ("", NameProblem::Empty),
            ("/etc/passwd", NameProblem::Absolute),
            ("files/../../etc", NameProblem::ParentSegment),
            ("files/./a", NameProblem::DotSegment),
            ("files//a", NameProblem::EmptySegment),
            ("files/a\0b", NameProblem::ControlCharacter),
        ] {
            assert_eq!(check(name), Err(problem), "{name:?}");
        }
        assert_eq!(check_raw(b"files/\xff"), Err(RawNameError::NotUtf8));
    }

    #[test]
    fn roles_follow_from_names() {
        assert_eq!(role("manifest.json", false), Ok(Role::Manifest));
        assert_eq!(role("files", true), Ok(Role::Dir));
        assert_eq!(role("files/a/b.php", false), Ok(Role::File));
        assert_eq!(role("script/backup-file", false), Ok(Role::File));
        assert_eq!(role("resources/db", true), Ok(Role::Dir));
        assert_eq!(
            role("resources/db/main.sql.0012", false),
            Ok(Role::Chunk {
                base: "resources/db/main.sql".to_owned(),
                index: 12
            })
        );
        for (name, is_dir) in [
            ("manifest.json", true),
            ("etc/passwd", false),
            ("filesx/a", false),
            ("files", false),
            ("resources/db/main.sql", false),
            ("resources/db/main.sql.123", false),
            ("resources/db/main.sql.12345", false),
            ("resources/db/.0000", false),
            ("resources.0000", false),
        ] {
            assert!(role(name, is_dir).is_err(), "{name} {is_dir}");
        }
        assert_eq!(
            role("resources/x.0000", false),
            Ok(Role::Chunk {
                base: "resources/x".to_owned(),
                index: 0
            })
        );
    }

    #[test]
    fn chunk_names_have_four_digits() {
        assert_eq!(
            chunk_name("resources/db/main.sql", 7),
            "resources/db/main.sql.0007"
        );
        assert_eq!(chunk_name("r/x", 9999), "r/x.9999");
    }

    #[test]
    fn name_sets_refuse_duplicates_and_files_around_folders() {
        let mut set = NameSet::default();
        set.insert("files/a/b", false).unwrap();
        set.insert("files/a", true).unwrap();
        assert_eq!(set.insert("files/a", true), Err(Conflict::Duplicate));
        assert_eq!(set.insert("files/a/b", false), Err(Conflict::Duplicate));
        assert_eq!(
            set.insert("files/a/b/c", false),
            Err(Conflict::InsideFile("files/a/b".to_owned()))
        );
        set.insert("files/x/y/z", false).unwrap();
        assert_eq!(
            set.insert("files/x/y", false),
            Err(Conflict::FileOverFolder)
        );
        set.insert("files/x/y", true).unwrap();
    }
}
