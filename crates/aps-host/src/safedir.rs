//! Folders in places other users control, handled through file descriptors.
//!
//! Main decision: apsctl runs as root but deploys into, and removes from, document roots that
//! belong to site users, who may swap any folder for a symbolic link at any moment. Every such
//! operation therefore goes through an open directory descriptor: each path component is opened
//! with `O_NOFOLLOW`, new entries are created with `mkdirat`, moved with `renameat` and removed
//! with `unlinkat` relative to descriptors, and modes and owners change with `fchmod`/`fchown`.
//! A swapped-in link makes the operation fail instead of reaching outside the site. Code that
//! needs a path (the archive extractor) gets `/proc/self/fd/N`, which names the opened folder
//! itself whatever happens to its name.
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags};

mod walk;
pub use walk::{Entry, EntryKind, MAX_OPEN, Phase};

/// A folder opened without following symbolic links.
#[derive(Debug)]
pub struct SafeDir {
    pub(crate) fd: OwnedFd,
    pub(crate) path: PathBuf,
}

/// A failed folder operation, naming the path.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} `{}`", path.display())]
pub struct SafeDirError {
    /// What was attempted.
    pub action: &'static str,
    /// The path (for messages; the operation used descriptors).
    pub path: PathBuf,
    /// The cause (`ELOOP`/`ENOTDIR` when a symbolic link was in the way).
    #[source]
    pub source: std::io::Error,
}

impl SafeDirError {
    /// Whether the cause is "no such file or directory".
    pub fn is_not_found(&self) -> bool {
        self.source.kind() == std::io::ErrorKind::NotFound
    }

    /// Whether the cause is "directory not empty".
    pub fn is_not_empty(&self) -> bool {
        self.source.kind() == std::io::ErrorKind::DirectoryNotEmpty
    }
}

pub(crate) const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

pub(crate) fn err<'p>(
    action: &'static str,
    path: &'p Path,
) -> impl Fn(rustix::io::Errno) -> SafeDirError + 'p {
    move |e| SafeDirError {
        action,
        path: path.to_path_buf(),
        source: e.into(),
    }
}

/// One plain name (no `/`, `.` or `..`).
fn check_name<'a>(name: &'a str, path: &Path) -> Result<&'a str, SafeDirError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(SafeDirError {
            action: "use the name",
            path: path.join(name),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a plain file name"),
        });
    }
    Ok(name)
}

impl SafeDir {
    /// Opens `path`; its last component must be a real folder, not a link. The components above
    /// it are trusted (they belong to the administrator, like a site's document root's parents).
    pub fn open(path: &Path) -> Result<Self, SafeDirError> {
        let fd =
            rustix::fs::open(path, DIR_FLAGS, Mode::empty()).map_err(err("open folder", path))?;
        Ok(Self {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The path this folder was reached by (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path naming this very folder while it stays open: `/proc/self/fd/N`.
    pub fn proc_path(&self) -> PathBuf {
        use std::os::fd::AsRawFd;
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }

    /// Opens the sub-folder `name` (no link followed).
    pub fn open_dir(&self, name: &str) -> Result<Self, SafeDirError> {
        self.open_dir_os(std::ffi::OsStr::new(name))
    }

    /// Opens the folder `name` of this one (checked by the caller) without following a link;
    /// a link in the way is refused as such, naming it.
    pub(crate) fn open_child(
        &self,
        name: &std::ffi::OsStr,
        path: &Path,
    ) -> Result<OwnedFd, SafeDirError> {
        rustix::fs::openat(&self.fd, name, DIR_FLAGS, Mode::empty()).map_err(|e| {
            let is_link =
                rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|st| {
                    rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Symlink
                });
            if is_link {
                err("walk through the symbolic link", path)(rustix::io::Errno::LOOP)
            } else {
                err("open folder", path)(e)
            }
        })
    }

    /// Opens the folder `rel` below this one, component by component (no link followed).
    pub fn open_rel(&self, rel: &Path) -> Result<Self, SafeDirError> {
        let mut dir = self.try_clone()?;
        for part in rel.components() {
            let Component::Normal(name) = part else {
                return Err(SafeDirError {
                    action: "walk to",
                    path: self.path.join(rel),
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "only plain relative paths are walked",
                    ),
                });
            };
            dir = dir.open_dir(&name.to_string_lossy())?;
        }
        Ok(dir)
    }

    /// Creates the folder `name` with `mode` and opens it, checking that it is the folder this
    /// process just made (owned by the effective user, not reachable by others).
    pub fn create_dir(&self, name: &str, mode: u32) -> Result<Self, SafeDirError> {
        let path = self.path.join(check_name(name, &self.path)?);
        rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(mode))
            .map_err(err("create folder", &path))?;
        let dir = self.open_dir(name)?;
        let stat = rustix::fs::fstat(&dir.fd).map_err(err("inspect folder", &path))?;
        if stat.st_uid != nix::unistd::geteuid().as_raw() || stat.st_mode & 0o022 != 0 {
            return Err(SafeDirError {
                action: "trust folder",
                path,
                source: std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "it was replaced by someone else",
                ),
            });
        }
        Ok(dir)
    }

    /// Whether `name` exists here (a link counts as existing; it is not followed).
    pub fn contains(&self, name: &str) -> bool {
        rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW).is_ok()
    }

    /// Whether the folder has no entries.
    pub fn is_empty(&self) -> Result<bool, SafeDirError> {
        let mut entries = fs_err::read_dir(self.proc_path()).map_err(|e| SafeDirError {
            action: "list folder",
            path: self.path.clone(),
            source: e,
        })?;
        Ok(entries.next().is_none())
    }

    /// The names of the entries.
    pub fn names(&self) -> Result<Vec<String>, SafeDirError> {
        let list = |e| SafeDirError {
            action: "list folder",
            path: self.path.clone(),
            source: e,
        };
        let mut names = Vec::new();
        for entry in fs_err::read_dir(self.proc_path()).map_err(list)? {
            names.push(
                entry
                    .map_err(list)?
                    .file_name()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        names.sort();
        Ok(names)
    }

    /// Moves the entry `name` of this folder to `to` / `to_name` (same file system).
    pub fn rename(&self, name: &str, to: &SafeDir, to_name: &str) -> Result<(), SafeDirError> {
        let path = self.path.join(check_name(name, &self.path)?);
        check_name(to_name, &to.path)?;
        rustix::fs::renameat(&self.fd, name, &to.fd, to_name).map_err(err("move", &path))
    }

    /// Removes the file (or link) `name`.
    pub fn remove_file(&self, name: &str) -> Result<(), SafeDirError> {
        self.remove_file_os(std::ffi::OsStr::new(name))
    }

    /// Removes the empty folder `name`.
    pub fn remove_dir(&self, name: &str) -> Result<(), SafeDirError> {
        self.remove_dir_os(std::ffi::OsStr::new(name))
    }

    /// Removes the entry `name` and, for a folder, everything below it, without following any
    /// link (a link is removed, its target left alone). Absent is fine. Works through
    /// descriptors at any depth and with any names ([`SafeDir::walk`]).
    pub fn remove_tree(&self, name: &str) -> Result<(), SafeDirError> {
        self.remove_tree_os(std::ffi::OsStr::new(name))
    }

    /// [`SafeDir::remove_tree`] for a name that need not be UTF-8.
    pub fn remove_tree_os(&self, name: &std::ffi::OsStr) -> Result<(), SafeDirError> {
        let path = self.path.join(walk::check_os_name(name, &self.path)?);
        let stat = match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(rustix::io::Errno::NOENT) => return Ok(()),
            Err(e) => return Err(err("inspect", &path)(e)),
        };
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Directory {
            self.open_dir_os(name)?.clear()?;
            rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR)
                .map_err(err("remove folder", &path))
        } else {
            rustix::fs::unlinkat(&self.fd, name, AtFlags::empty())
                .map_err(err("remove file", &path))
        }
    }

    /// Opens the regular file `name` for reading (no link followed). Anything else is refused
    /// without blocking: a FIFO planted in its place would otherwise hang the opener.
    pub fn open_file(
        &self,
        name: impl AsRef<std::ffi::OsStr>,
    ) -> Result<std::fs::File, SafeDirError> {
        let name = name.as_ref();
        let path = self.path.join(walk::check_os_name(name, &self.path)?);
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .map_err(err("open file", &path))?;
        let stat = rustix::fs::fstat(&fd).map_err(err("inspect file", &path))?;
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
            return Err(SafeDirError {
                action: "open file",
                path,
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
            });
        }
        // Back to blocking reads for the caller.
        rustix::fs::fcntl_setfl(&fd, OFlags::empty()).map_err(err("open file", &path))?;
        Ok(std::fs::File::from(fd))
    }

    /// The folder's permission bits.
    pub fn mode(&self) -> Result<u32, SafeDirError> {
        let stat = rustix::fs::fstat(&self.fd).map_err(err("inspect folder", &self.path))?;
        Ok(stat.st_mode & 0o7777)
    }

    /// Sets the folder's permission bits.
    pub fn set_mode(&self, mode: u32) -> Result<(), SafeDirError> {
        rustix::fs::fchmod(&self.fd, Mode::from_raw_mode(mode))
            .map_err(err("change the mode of", &self.path))
    }

    /// Gives the folder to `uid`:`gid`.
    pub fn chown(&self, uid: u32, gid: u32) -> Result<(), SafeDirError> {
        rustix::fs::fchown(
            self.fd.as_fd(),
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        )
        .map_err(err("change the owner of", &self.path))
    }
}

/// The owner and permission bits of an opened folder ([`SafeDir::info`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderInfo {
    /// The owner's uid.
    pub uid: u32,
    /// The group's gid.
    pub gid: u32,
    /// The permission bits, set-id and sticky bits included (`st_mode & 0o7777`).
    pub mode: u32,
}

impl SafeDirError {
    /// Whether the cause is a symbolic link met where none is followed (`ELOOP`).
    pub fn is_link(&self) -> bool {
        self.source.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error())
    }

    /// Whether what was to be opened as a folder is not one: a link (never followed) or
    /// something else (`ENOTDIR`).
    pub fn is_not_a_folder(&self) -> bool {
        self.is_link()
            || self.source.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error())
    }
}

/// Whole absolute paths opened without following a link anywhere in them.
///
/// [`SafeDir::open`] trusts the components above the last one. A site's document root, though,
/// may lie below folders its user owns (`/home/u1/domains/a.example/public_html`), and the user
/// can replace any of them with a link to another tenant's folder. These functions refuse a link
/// in any component: [`SafeDir::open_no_links`] asks the kernel (`openat2` with
/// `RESOLVE_NO_SYMLINKS`), [`SafeDir::open_ancestry`] walks from `/` one `O_NOFOLLOW` component
/// at a time and hands back every folder on the way, so callers can check who may write to them.
impl SafeDir {
    /// Opens the absolute `path`, refusing a symbolic link in any of its components.
    ///
    /// Uses `openat2(RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`; when that fails (the kernel
    /// lacks it, `ENOSYS`, or the path is refused) the component walk of [`Self::open_ancestry`]
    /// runs instead, which also names the component at fault: a link gives an error whose
    /// [`SafeDirError::is_link`] holds and whose path is the link itself. `..` is refused.
    pub fn open_no_links(path: &Path) -> Result<Self, SafeDirError> {
        let path = plain_absolute(path)?;
        let resolve =
            rustix::fs::ResolveFlags::NO_SYMLINKS | rustix::fs::ResolveFlags::NO_MAGICLINKS;
        match rustix::fs::openat2(rustix::fs::CWD, &path, DIR_FLAGS, Mode::empty(), resolve) {
            Ok(fd) => Ok(Self { fd, path }),
            // The walk either names the component at fault or, if the tree changed meanwhile,
            // opens the folder with the same guarantee.
            Err(_) => Self::walk_from_root(&path, |_| {}),
        }
    }

    /// Opens `/` and then each component of the absolute `path` below the previous one with
    /// `O_NOFOLLOW`, returning every folder from `/` to `path` itself, in that order.
    ///
    /// A component that is a symbolic link is refused with an error naming it
    /// ([`SafeDirError::is_link`]); a missing one with an error naming the first missing folder
    /// ([`SafeDirError::is_not_found`]). `..` is refused.
    pub fn open_ancestry(path: &Path) -> Result<Vec<Self>, SafeDirError> {
        let path = plain_absolute(path)?;
        let mut chain = Vec::new();
        let last = Self::walk_from_root(&path, |dir| chain.push(dir))?;
        chain.push(last);
        Ok(chain)
    }

    /// Walks from `/` to `path` (already checked by [`plain_absolute`]); each folder above the
    /// last goes to `keep`, the last is returned.
    fn walk_from_root(path: &Path, mut keep: impl FnMut(Self)) -> Result<Self, SafeDirError> {
        let mut dir = Self::open(Path::new("/"))?;
        for part in path.components() {
            let Component::Normal(name) = part else {
                continue;
            };
            let next_path = dir.path.join(name);
            let fd = dir.open_child(name, &next_path)?;
            keep(std::mem::replace(
                &mut dir,
                Self {
                    fd,
                    path: next_path,
                },
            ));
        }
        Ok(dir)
    }

    /// The folder's owner and permission bits.
    pub fn info(&self) -> Result<FolderInfo, SafeDirError> {
        let stat = rustix::fs::fstat(&self.fd).map_err(err("inspect folder", &self.path))?;
        Ok(FolderInfo {
            uid: stat.st_uid,
            gid: stat.st_gid,
            mode: stat.st_mode & 0o7777,
        })
    }
}

/// `path` as an absolute path of plain names (`.` and repeated `/` dropped); `..` and relative
/// paths are refused.
fn plain_absolute(path: &Path) -> Result<PathBuf, SafeDirError> {
    let mut plain = PathBuf::new();
    for part in path.components() {
        match part {
            Component::RootDir if plain.as_os_str().is_empty() => plain.push("/"),
            Component::Normal(name) if !plain.as_os_str().is_empty() => plain.push(name),
            Component::CurDir => {}
            _ => {
                return Err(SafeDirError {
                    action: "walk to",
                    path: path.to_path_buf(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "only absolute paths without `..` are walked",
                    ),
                });
            }
        }
    }
    if plain.as_os_str().is_empty() {
        return Err(SafeDirError {
            action: "walk to",
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path is empty"),
        });
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_file_refuses_a_fifo_without_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(&tmp.path().join("pipe"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        fs_err::write(tmp.path().join("plain"), "content").unwrap();
        let dir = SafeDir::open(tmp.path()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(dir.open_file("pipe").is_err());
            let mut text = String::new();
            std::io::Read::read_to_string(&mut dir.open_file("plain").unwrap(), &mut text).unwrap();
            let _ = tx.send(text == "content");
        });
        let wait = std::time::Duration::from_secs(5);
        assert_eq!(rx.recv_timeout(wait), Ok(true), "a FIFO is refused at once");
        assert_eq!(
            rx.recv_timeout(wait),
            Ok(true),
            "a regular file still reads"
        );
    }

    #[test]
    fn links_are_never_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs_err::create_dir(&outside).unwrap();
        let site = tmp.path().join("site");
        fs_err::create_dir(&site).unwrap();
        std::os::unix::fs::symlink(&outside, site.join("link")).unwrap();
        let dir = SafeDir::open(&site).unwrap();
        assert!(dir.open_dir("link").is_err());
        assert!(dir.open_rel(Path::new("link/x")).is_err());
        assert!(SafeDir::open(&site.join("link")).is_err());
        assert!(dir.contains("link"));
        dir.remove_file("link").unwrap();
        assert!(outside.exists(), "removing the link leaves its target");
        // remove_tree removes links inside a tree without following them.
        fs_err::create_dir_all(site.join("tree/sub")).unwrap();
        fs_err::write(outside.join("keep"), "k").unwrap();
        std::os::unix::fs::symlink(&outside, site.join("tree/sub/escape")).unwrap();
        dir.remove_tree("tree").unwrap();
        assert!(!site.join("tree").exists());
        assert!(outside.join("keep").exists());
        dir.remove_tree("absent").unwrap();
    }

    #[test]
    fn created_folders_are_checked_and_usable_through_proc() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SafeDir::open(tmp.path()).unwrap();
        let staging = dir.create_dir("stage", 0o700).unwrap();
        assert_eq!(staging.mode().unwrap(), 0o700);
        fs_err::write(staging.proc_path().join("f"), "x").unwrap();
        // Renaming the folder away does not change what the descriptor names.
        fs_err::rename(tmp.path().join("stage"), tmp.path().join("moved")).unwrap();
        assert_eq!(
            fs_err::read_to_string(staging.proc_path().join("f")).unwrap(),
            "x"
        );
        let target = dir.create_dir("target", 0o755).unwrap();
        staging.rename("f", &target, "g").unwrap();
        assert!(tmp.path().join("target/g").exists());
        assert!(staging.is_empty().unwrap());
        assert_eq!(target.names().unwrap(), vec!["g".to_owned()]);
        assert!(
            dir.create_dir("target", 0o755).is_err(),
            "existing names are refused"
        );
        assert!(dir.open_dir("..").is_err());
    }

    #[test]
    fn whole_paths_are_opened_without_any_link() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("b.example/public_html");
        fs_err::create_dir_all(&real).unwrap();
        fs_err::create_dir_all(tmp.path().join("a.example/public_html")).unwrap();
        let good = tmp.path().join("a.example/public_html");
        let dir = SafeDir::open_no_links(&good).unwrap();
        assert_eq!(dir.path(), good);
        let chain = SafeDir::open_ancestry(&good).unwrap();
        assert_eq!(chain.first().unwrap().path(), Path::new("/"));
        assert_eq!(chain.last().unwrap().path(), good);
        assert_eq!(chain.len(), good.components().count());
        assert_eq!(
            chain.last().unwrap().info().unwrap().uid,
            nix::unistd::geteuid().as_raw()
        );

        // A parent replaced by a link: refused by openat2 and by the walk, naming the link.
        fs_err::remove_dir_all(tmp.path().join("a.example")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("b.example"), tmp.path().join("a.example"))
            .unwrap();
        assert!(SafeDir::open(&good).is_ok(), "open() trusts the parents");
        let link = tmp.path().join("a.example");
        for e in [
            SafeDir::open_no_links(&good).unwrap_err(),
            SafeDir::open_ancestry(&good).unwrap_err(),
            SafeDir::walk_from_root(&good, |_| {}).unwrap_err(),
        ] {
            assert!(e.is_link(), "{e}");
            assert_eq!(e.path, link);
            assert!(
                e.to_string().contains(&format!("`{}`", link.display())),
                "{e}"
            );
        }
        // The kernel itself refuses the link (where it has openat2).
        let resolve = rustix::fs::ResolveFlags::NO_SYMLINKS;
        match rustix::fs::openat2(rustix::fs::CWD, &good, DIR_FLAGS, Mode::empty(), resolve) {
            Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOSYS) => {}
            other => panic!("openat2 followed the link: {other:?}"),
        }
        // The last component as a link.
        assert!(SafeDir::open_no_links(&link).unwrap_err().is_link());

        // Missing folders are named; `..` and relative paths are refused.
        let missing = SafeDir::open_no_links(&tmp.path().join("none/deeper")).unwrap_err();
        assert!(missing.is_not_found());
        assert_eq!(missing.path, tmp.path().join("none"));
        for bad in ["relative/path", "/tmp/../etc", ""] {
            assert!(SafeDir::open_no_links(Path::new(bad)).is_err(), "{bad}");
        }
        assert_eq!(
            SafeDir::open_no_links(Path::new("//tmp/./"))
                .unwrap()
                .path(),
            Path::new("/tmp")
        );
    }
}
