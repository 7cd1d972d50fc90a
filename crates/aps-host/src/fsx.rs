//! Small filesystem helpers shared by the operations: atomic writes, ownership changes that never
//! follow symlinks, path containment, emptiness and free space.
//!
//! Main decision (§9 lessons): containment is decided on canonical paths compared component by
//! component ([`Path::starts_with`]), never by string prefix (`htdocs` must not contain
//! `htdocsX`), and symlinks are resolved before the comparison so a link cannot lead out of the
//! root. [`chown_tree`] uses `lchown` and never descends through a symlink.
//!
//! Known gaps: [`ensure_inside`] answers for the moment it runs; a path changed afterwards (a
//! symlink swapped in by the site user) is not covered, so callers act on paths the site user
//! cannot write, or re-check. [`chown_tree`] does not stop at mount points.
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// A filesystem operation failed; the message names the path.
#[derive(Debug, thiserror::Error)]
pub enum FsxError {
    /// An I/O error on a path.
    #[error("cannot {action} `{}`", path.display())]
    Io {
        /// What was being done (`write`, `change the owner of`, …).
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A path is outside the root it must stay in.
    #[error("`{}` is outside `{}`", path.display(), root.display())]
    Outside {
        /// The path (as resolved).
        path: PathBuf,
        /// The root.
        root: PathBuf,
    },
    /// A path uses `..` below a part that does not exist yet, so it cannot be resolved safely.
    #[error("`{}` contains `..` in a part that does not exist", path.display())]
    Unresolvable {
        /// The path.
        path: PathBuf,
    },
    /// A recursive operation was asked for a relative path or the filesystem root.
    #[error("refusing to work recursively on `{}`", path.display())]
    RefusedRoot {
        /// The path.
        path: PathBuf,
    },
}

/// Maps an I/O error to [`FsxError::Io`] for `action` on `path`.
fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FsxError {
    let path = path.to_path_buf();
    move |source| FsxError::Io {
        action,
        path,
        source,
    }
}

/// Mode given to a file [`write_atomic`] creates (it keeps the mode of a file it replaces).
pub const NEW_FILE_MODE: u32 = 0o600;

/// Replaces `path` with `bytes` atomically: writes a temporary file in the same folder, flushes it
/// to disk, renames it over `path` and flushes the folder. Readers see the old or the new content,
/// never a mix. A replaced file's permission bits are kept; a new file gets [`NEW_FILE_MODE`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FsxError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mode = match fs_err::metadata(path) {
        Ok(meta) => meta.permissions().mode() & 0o7777,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => NEW_FILE_MODE,
        Err(source) => {
            return Err(FsxError::Io {
                action: "read the metadata of",
                path: path.into(),
                source,
            });
        }
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".apsctl-tmp-")
        .tempfile_in(dir)
        .map_err(io_error("create a temporary file in", dir))?;
    temp.write_all(bytes)
        .map_err(io_error("write", temp.path()))?;
    temp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io_error("set the permissions of", path))?;
    temp.as_file().sync_all().map_err(io_error("flush", path))?;
    temp.persist(path).map_err(|e| FsxError::Io {
        action: "replace",
        path: path.to_path_buf(),
        source: e.error,
    })?;
    fs_err::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("flush the folder", dir))?;
    Ok(())
}

/// Sets owner `uid` and group `gid` on `path` and everything below it, without following
/// symlinks: a symlink itself gets the new owner, its target does not, and a symlinked folder is
/// not entered. Returns how many entries were changed. Refuses relative paths and `/`.
pub fn chown_tree(path: &Path, uid: u32, gid: u32) -> Result<u64, FsxError> {
    if !path.is_absolute() || path.parent().is_none() {
        return Err(FsxError::RefusedRoot {
            path: path.to_path_buf(),
        });
    }
    let mut count = 0u64;
    let mut stack = vec![path.to_path_buf()];
    while let Some(current) = stack.pop() {
        let meta = fs_err::symlink_metadata(&current)
            .map_err(io_error("read the metadata of", &current))?;
        std::os::unix::fs::lchown(&current, Some(uid), Some(gid))
            .map_err(io_error("change the owner of", &current))?;
        count += 1;
        if meta.is_dir() {
            for entry in fs_err::read_dir(&current).map_err(io_error("list", &current))? {
                stack.push(entry.map_err(io_error("list", &current))?.path());
            }
        }
    }
    Ok(count)
}

/// Resolves `path` (relative paths are taken relative to `root`) and returns it canonical when it
/// lies inside `root` (or is `root`); otherwise [`FsxError::Outside`].
///
/// `root` must exist. `path` need not: its longest existing ancestor is canonicalised (resolving
/// every symlink) and the missing rest is appended; `..` in the missing rest is refused.
pub fn ensure_inside(root: &Path, path: &Path) -> Result<PathBuf, FsxError> {
    let root_canon = fs_err::canonicalize(root).map_err(io_error("resolve", root))?;
    let joined = root_canon.join(path);
    let resolved = resolve_partially(&joined)?;
    if resolved.starts_with(&root_canon) {
        Ok(resolved)
    } else {
        Err(FsxError::Outside {
            path: resolved,
            root: root_canon,
        })
    }
}

/// Canonicalises the longest existing ancestor of the absolute `path` and appends the rest.
fn resolve_partially(path: &Path) -> Result<PathBuf, FsxError> {
    let mut existing = path.to_path_buf();
    let mut missing: Vec<std::ffi::OsString> = Vec::new();
    loop {
        match fs_err::canonicalize(&existing) {
            Ok(mut canon) => {
                for part in missing.iter().rev() {
                    canon.push(part);
                }
                return Ok(canon);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let last = existing.components().next_back();
                match last {
                    Some(Component::Normal(name)) => {
                        missing.push(name.to_os_string());
                        existing.pop();
                    }
                    Some(Component::CurDir) => {
                        existing.pop();
                    }
                    _ => {
                        return Err(FsxError::Unresolvable {
                            path: path.to_path_buf(),
                        });
                    }
                }
            }
            Err(source) => {
                return Err(FsxError::Io {
                    action: "resolve",
                    path: existing,
                    source,
                });
            }
        }
    }
}

/// Tells whether `path` is absent or an empty folder. A non-empty folder, a file or a symlink
/// (even to an empty folder) gives `false`.
pub fn dir_is_empty_or_absent(path: &Path) -> Result<bool, FsxError> {
    let meta = match fs_err::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(source) => {
            return Err(FsxError::Io {
                action: "read the metadata of",
                path: path.into(),
                source,
            });
        }
    };
    if !meta.is_dir() {
        return Ok(false);
    }
    let mut entries = fs_err::read_dir(path).map_err(io_error("list", path))?;
    Ok(entries.next().is_none())
}

/// Bytes available to unprivileged users on the filesystem holding `path`.
pub fn free_space(path: &Path) -> Result<u64, FsxError> {
    let stat = nix::sys::statvfs::statvfs(path).map_err(|errno| FsxError::Io {
        action: "measure the free space of",
        path: path.to_path_buf(),
        source: errno.into(),
    })?;
    Ok(stat.blocks_available().saturating_mul(stat.fragment_size()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, symlink};

    use super::*;

    #[test]
    fn write_atomic_creates_private_and_keeps_mode_on_replace() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("meta.json");
        write_atomic(&file, b"one").expect("create");
        assert_eq!(fs_err::read(&file).expect("read"), b"one");
        assert_eq!(fs_err::metadata(&file).expect("meta").mode() & 0o777, 0o600);
        fs_err::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        write_atomic(&file, b"two").expect("replace");
        assert_eq!(fs_err::read(&file).expect("read"), b"two");
        assert_eq!(fs_err::metadata(&file).expect("meta").mode() & 0o777, 0o640);
        // No temporary file is left behind.
        let names: Vec<_> = fs_err::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("e").file_name())
            .collect();
        assert_eq!(names, ["meta.json"]);
    }

    #[test]
    fn write_atomic_names_a_missing_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = write_atomic(&dir.path().join("no/such/file"), b"x").expect_err("missing dir");
        assert!(err.to_string().contains("no/such"), "{err}");
    }

    #[test]
    fn chown_tree_does_not_follow_symlinks() {
        let outside = tempfile::tempdir().expect("outside");
        let victim = outside.path().join("victim");
        fs_err::write(&victim, "x").expect("victim");
        let before = fs_err::metadata(&victim).expect("meta").uid();

        let dir = tempfile::tempdir().expect("tempdir");
        let tree = dir.path().join("tree");
        fs_err::create_dir_all(tree.join("a/b")).expect("mkdir");
        fs_err::write(tree.join("a/b/file"), "x").expect("file");
        symlink(&victim, tree.join("a/link-to-file")).expect("symlink");
        symlink(outside.path(), tree.join("link-to-dir")).expect("symlink");

        let count = chown_tree(&tree, 4242, 4343).expect("chown");
        // tree, a, a/b, a/b/file, a/link-to-file, link-to-dir
        assert_eq!(count, 6);
        for p in ["", "a", "a/b", "a/b/file"] {
            let m = fs_err::metadata(tree.join(p)).expect("meta");
            assert_eq!((m.uid(), m.gid()), (4242, 4343), "{p}");
        }
        let link = fs_err::symlink_metadata(tree.join("a/link-to-file")).expect("link");
        assert_eq!(link.uid(), 4242);
        assert_eq!(fs_err::metadata(&victim).expect("meta").uid(), before);
        assert_eq!(
            fs_err::metadata(outside.path()).expect("meta").uid(),
            before
        );
    }

    #[test]
    fn chown_tree_refuses_root_and_relative() {
        assert!(matches!(
            chown_tree(Path::new("/"), 1, 1),
            Err(FsxError::RefusedRoot { .. })
        ));
        assert!(matches!(
            chown_tree(Path::new("rel"), 1, 1),
            Err(FsxError::RefusedRoot { .. })
        ));
    }

    #[test]
    fn containment_compares_components_not_prefixes() {
        let base = tempfile::tempdir().expect("tempdir");
        let root = base.path().join("htdocs");
        fs_err::create_dir_all(root.join("blog")).expect("mkdir");
        fs_err::create_dir_all(base.path().join("htdocsX")).expect("mkdir");
        let root_canon = fs_err::canonicalize(&root).expect("canon");

        assert_eq!(
            ensure_inside(&root, Path::new("blog")).expect("inside"),
            root_canon.join("blog")
        );
        assert_eq!(
            ensure_inside(&root, &root).expect("root itself"),
            root_canon
        );
        // Not existing yet is fine.
        assert_eq!(
            ensure_inside(&root, Path::new("blog/new/dir")).expect("new"),
            root_canon.join("blog/new/dir")
        );
        // A sibling sharing the string prefix is outside.
        let err = ensure_inside(&root, &base.path().join("htdocsX")).expect_err("sibling");
        assert!(matches!(err, FsxError::Outside { .. }), "{err}");
        // `..` that resolves outside is refused; `..` into a missing part cannot be resolved.
        assert!(matches!(
            ensure_inside(&root, Path::new("blog/../..")),
            Err(FsxError::Outside { .. })
        ));
        assert!(matches!(
            ensure_inside(&root, Path::new("missing/../../etc")),
            Err(FsxError::Unresolvable { .. })
        ));
        assert!(matches!(
            ensure_inside(&root, Path::new("/etc")),
            Err(FsxError::Outside { .. })
        ));
    }

    #[test]
    fn containment_resolves_escaping_symlinks() {
        let base = tempfile::tempdir().expect("tempdir");
        let root = base.path().join("root");
        fs_err::create_dir_all(&root).expect("mkdir");
        symlink("/etc", root.join("escape")).expect("symlink");
        symlink(".", root.join("self")).expect("symlink");
        let err = ensure_inside(&root, Path::new("escape/passwd")).expect_err("escapes");
        assert!(matches!(err, FsxError::Outside { .. }), "{err}");
        let err = ensure_inside(&root, Path::new("escape/not-there")).expect_err("escapes");
        assert!(matches!(err, FsxError::Outside { .. }), "{err}");
        assert!(ensure_inside(&root, Path::new("self/x")).is_ok());
    }

    #[test]
    fn emptiness() {
        let base = tempfile::tempdir().expect("tempdir");
        let p = base.path();
        assert!(dir_is_empty_or_absent(&p.join("absent")).expect("absent"));
        fs_err::create_dir(p.join("empty")).expect("mkdir");
        assert!(dir_is_empty_or_absent(&p.join("empty")).expect("empty"));
        fs_err::write(p.join("empty/f"), "").expect("file");
        assert!(!dir_is_empty_or_absent(&p.join("empty")).expect("full"));
        assert!(!dir_is_empty_or_absent(&p.join("empty/f")).expect("file"));
        fs_err::create_dir(p.join("e2")).expect("mkdir");
        symlink(p.join("e2"), p.join("link")).expect("symlink");
        assert!(!dir_is_empty_or_absent(&p.join("link")).expect("link"));
    }

    #[test]
    fn free_space_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(free_space(dir.path()).expect("statvfs") > 0);
        assert!(free_space(Path::new("/no/such/dir")).is_err());
    }
}
