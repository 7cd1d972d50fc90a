//! Extraction of checked archive entries into an empty staging directory, hashing while
//! writing.
//!
//! Main decision: the destination must exist and be empty, so that on any failure everything
//! inside it is ours to remove; every target is computed and checked before the first write;
//! files are created with `create_new` (`O_CREAT|O_EXCL`, which never follows a symlink and
//! never overwrites) and get mode 0644, directories 0755, whatever the archive says.
//!
//! Known gaps: parent directories are created and checked by path, not through directory
//! handles (`openat`), which is safe only because the staging directory is private to the
//! caller; timestamps are not restored.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::archive::{Archive, DATA_BUFFER, EntryKind, FileInfo, stream_entry};
use crate::error::ArchiveError;

/// Mode of extracted files.
const FILE_MODE: u32 = 0o644;
/// Mode of extracted directories.
const DIR_MODE: u32 = 0o755;

/// What [`Archive::extract`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    /// Written files by archive name, with the size and SHA-256 of what was written (`md5` is
    /// always `None`).
    pub files: BTreeMap<String, FileInfo>,
    /// Written directory entries by archive name.
    pub dirs: BTreeSet<String>,
    /// Where each written file or directory entry went, relative to the destination, by
    /// archive name.
    pub targets: BTreeMap<String, PathBuf>,
}

impl Archive {
    /// Extracts the entries that `filter` selects into `dest`, which must be an existing, empty
    /// directory private to the caller. `filter` receives each archive name (directories
    /// without their trailing `/`) and returns the target path relative to `dest`, or `None`
    /// to skip the entry. On any error, everything written under `dest` is removed.
    pub fn extract(
        &mut self,
        dest: &Path,
        filter: &dyn Fn(&str) -> Option<PathBuf>,
    ) -> Result<Extracted, ArchiveError> {
        let mut listing = fs_err::read_dir(dest).map_err(|source| ArchiveError::Destination {
            dest: dest.to_path_buf(),
            source,
        })?;
        if listing.next().is_some() {
            return Err(ArchiveError::DestinationNotEmpty {
                dest: dest.to_path_buf(),
            });
        }
        match self.extract_into(dest, filter) {
            Ok(extracted) => Ok(extracted),
            Err(error) => match empty_directory(dest) {
                Ok(()) => Err(error),
                Err(source) => Err(ArchiveError::Cleanup {
                    dest: dest.to_path_buf(),
                    error: Box::new(error),
                    source,
                }),
            },
        }
    }

    fn extract_into(
        &mut self,
        dest: &Path,
        filter: &dyn Fn(&str) -> Option<PathBuf>,
    ) -> Result<Extracted, ArchiveError> {
        let mut plan = Vec::new();
        for (position, entry) in self.entries.iter().enumerate() {
            let Some(target) = filter(&entry.name) else {
                continue;
            };
            if !is_plain_relative(&target) {
                return Err(ArchiveError::UnsafeTarget {
                    archive: self.path.clone(),
                    entry: entry.name.clone(),
                    target,
                });
            }
            plan.push((position, target));
        }
        let mut extracted = Extracted::default();
        let mut made = HashSet::new();
        let mut buf = vec![0; DATA_BUFFER];
        for (position, target) in plan {
            let entry = &self.entries[position];
            let write_error = |path: &Path, source| ArchiveError::Write {
                archive: self.path.clone(),
                entry: entry.name.clone(),
                path: path.to_path_buf(),
                source,
            };
            match entry.kind {
                EntryKind::Dir => {
                    make_dirs(dest, &target, &mut made)
                        .map_err(|(path, e)| write_error(&path, e))?;
                    extracted.dirs.insert(entry.name.clone());
                }
                EntryKind::File => {
                    if let Some(parent) = target.parent() {
                        make_dirs(dest, parent, &mut made)
                            .map_err(|(path, e)| write_error(&path, e))?;
                    }
                    let path = dest.join(&target);
                    let mut file = OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(FILE_MODE)
                        .open(&path)
                        .map_err(|e| write_error(&path, e))?;
                    file.set_permissions(Permissions::from_mode(FILE_MODE))
                        .map_err(|e| write_error(&path, e))?;
                    let mut sha256 = Sha256::new();
                    stream_entry(&mut self.zip, &self.path, entry, &mut buf, |chunk| {
                        sha256.update(chunk);
                        file.write_all(chunk).map_err(|e| write_error(&path, e))
                    })?;
                    extracted.files.insert(
                        entry.name.clone(),
                        FileInfo {
                            size: entry.size,
                            sha256: sha256.finalize().into(),
                            md5: None,
                        },
                    );
                    // Test builds: stop after the N-th file (`deploy-file@N=fail|crash`).
                    aps_failpoint::hit("deploy-file")?;
                }
            }
            extracted.targets.insert(entry.name.clone(), target);
        }
        Ok(extracted)
    }
}

/// A non-empty path made only of normal components (no root, `.`, `..` or prefix).
fn is_plain_relative(path: &Path) -> bool {
    path.components().next().is_some()
        && path
            .components()
            .all(|component| matches!(component, Component::Normal(_)))
}

/// Creates `dest/relative` and its missing parents with mode 0755. An existing component must
/// be a real directory, not a symlink. `made` remembers directories already ensured.
fn make_dirs(
    dest: &Path,
    relative: &Path,
    made: &mut HashSet<PathBuf>,
) -> Result<(), (PathBuf, io::Error)> {
    let mut prefix = PathBuf::new();
    for component in relative.components() {
        prefix.push(component);
        if made.contains(&prefix) {
            continue;
        }
        let path = dest.join(&prefix);
        match DirBuilder::new().mode(DIR_MODE).create(&path) {
            Ok(()) => {
                std::fs::set_permissions(&path, Permissions::from_mode(DIR_MODE))
                    .map_err(|e| (path.clone(), e))?;
            }
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                let metadata = fs_err::symlink_metadata(&path).map_err(|e| (path.clone(), e))?;
                if !metadata.is_dir() {
                    return Err((path, error));
                }
            }
            Err(error) => return Err((path, error)),
        }
        made.insert(prefix.clone());
    }
    Ok(())
}

/// Removes everything inside `dir`, never following symlinks.
fn empty_directory(dir: &Path) -> io::Result<()> {
    for child in fs_err::read_dir(dir)? {
        let path = child?.path();
        if fs_err::symlink_metadata(&path)?.is_dir() {
            fs_err::remove_dir_all(&path)?;
        } else {
            fs_err::remove_file(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_relative_targets() {
        assert!(is_plain_relative(Path::new("a/b.txt")));
        assert!(is_plain_relative(Path::new("a")));
        for bad in ["", "/a", "../a", "a/../b", "./a"] {
            assert!(!is_plain_relative(Path::new(bad)), "{bad}");
        }
        assert!(!is_plain_relative(Path::new(".")));
    }

    #[test]
    fn make_dirs_refuses_a_symlink_in_the_way() {
        let dest = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dest.path().join("link")).unwrap();
        let mut made = HashSet::new();
        let (path, _) = make_dirs(dest.path(), Path::new("link/sub"), &mut made).unwrap_err();
        assert_eq!(path, dest.path().join("link"));
        assert!(fs_err::read_dir(outside.path()).unwrap().next().is_none());
        make_dirs(dest.path(), Path::new("a/b/c"), &mut made).unwrap();
        let permissions = fs_err::metadata(dest.path().join("a/b"))
            .unwrap()
            .permissions();
        assert_eq!(permissions.mode() & 0o777, DIR_MODE);
    }

    #[test]
    fn empty_directory_removes_everything_but_not_link_targets() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs_err::write(outside.path().join("keep"), b"x").unwrap();
        fs_err::create_dir_all(dir.path().join("a/b")).unwrap();
        fs_err::write(dir.path().join("a/b/f"), b"x").unwrap();
        fs_err::write(dir.path().join("g"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        empty_directory(dir.path()).unwrap();
        assert!(fs_err::read_dir(dir.path()).unwrap().next().is_none());
        assert!(outside.path().join("keep").exists());
    }
}
