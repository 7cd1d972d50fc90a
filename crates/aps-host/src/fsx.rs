//! Small filesystem helpers for paths apsctl owns (its home): atomic writes and free space.
//!
//! Main decision: only paths no site user can change are handled by path here. Everything in a
//! site's document root (and every tree walk, ownership change or removal there) goes through
//! folder descriptors ([`crate::safedir`]), because a tenant may swap any folder for a link.
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

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
    use std::os::unix::fs::MetadataExt;

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
    fn free_space_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(free_space(dir.path()).expect("statvfs") > 0);
        assert!(free_space(Path::new("/no/such/dir")).is_err());
    }
}
