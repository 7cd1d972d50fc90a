//! Walking a folder tree through descriptors: every entry below a [`SafeDir`], visited with the
//! open folder that holds it, so callers act with `*at` calls and never by path.
//!
//! Main decision: a tree a tenant controls may be arbitrarily deep (2,500 nested folders are
//! made in a second) and have names that are not UTF-8, so the walk never builds a path for a
//! system call and never converts a name: names are `OsString`s, and each folder is opened
//! relative to its parent with `O_NOFOLLOW | O_DIRECTORY`, its device and inode checked against
//! what `fstatat` reported. At most [`MAX_OPEN`] folders stay open; deeper, the walk closes the
//! outer ones and, on its way back up, reopens each through `..` of its child, accepting it only
//! when device and inode are the ones recorded on the way down. A tree rearranged under the walk
//! (a folder moved elsewhere meanwhile) therefore stops it with an error instead of sending it
//! somewhere else.
//!
//! Known gap: entries created or removed in a folder after the walk listed it are not seen or
//! are reported as missing (the walk skips entries that vanished).
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode};

use super::{DIR_FLAGS, SafeDir, SafeDirError, err};

/// Folders kept open at once by a walk; deeper ones are reopened through `..`.
pub const MAX_OPEN: usize = 64;

/// What an entry met by a walk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A folder (not a link to one).
    Dir,
    /// A regular file.
    File,
    /// A symbolic link (never followed).
    Symlink,
    /// Anything else (FIFO, socket, device).
    Other,
}

/// When a walk calls its visitor for an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A folder, before its entries.
    Enter,
    /// A folder, after its entries.
    Leave,
    /// Anything that is not a folder.
    Leaf,
}

/// One entry met by [`SafeDir::walk`].
#[derive(Debug)]
pub struct Entry<'w> {
    /// The open folder holding the entry: act on the entry with `*at` calls relative to it.
    pub parent: &'w SafeDir,
    /// The entry's name in `parent` (not necessarily UTF-8).
    pub name: &'w OsStr,
    /// The entry's path relative to the walked folder (for records and messages only).
    pub rel: &'w Path,
    /// What it is.
    pub kind: EntryKind,
    /// Its size in bytes (regular files; 0 otherwise).
    pub size: u64,
    /// Its owner.
    pub uid: u32,
    /// Its group.
    pub gid: u32,
    /// Its permission bits.
    pub mode: u32,
    /// How many folders lie between the walked folder and the entry (0 for its own entries).
    pub depth: usize,
}

/// One folder on the walk's way down.
struct Frame {
    /// The open folder, or `None` while closed to stay under [`MAX_OPEN`].
    dir: Option<SafeDir>,
    /// Device and inode, checked when the folder is reopened.
    dev: u64,
    ino: u64,
    /// Its name in its parent (empty for the walked folder).
    name: OsString,
    /// Its path relative to the walked folder.
    rel: PathBuf,
    /// The names still to visit, last first.
    pending: Vec<OsString>,
    /// The stat of the folder itself (for the `Leave` visit).
    uid: u32,
    gid: u32,
    mode: u32,
}

fn kind_of(mode: u32) -> EntryKind {
    match FileType::from_raw_mode(mode) {
        FileType::Directory => EntryKind::Dir,
        FileType::RegularFile => EntryKind::File,
        FileType::Symlink => EntryKind::Symlink,
        _ => EntryKind::Other,
    }
}

impl SafeDir {
    /// The names of the entries, as they are (not necessarily UTF-8), sorted.
    pub fn entries(&self) -> Result<Vec<OsString>, SafeDirError> {
        let list = |e| SafeDirError {
            action: "list folder",
            path: self.path.clone(),
            source: e,
        };
        // A duplicate descriptor keeps this folder's own offset untouched.
        let fd = rustix::fs::openat(&self.fd, ".", DIR_FLAGS, Mode::empty())
            .map_err(err("list folder", &self.path))?;
        let mut dir = rustix::fs::Dir::read_from(&fd).map_err(err("list folder", &self.path))?;
        let mut names = Vec::new();
        while let Some(entry) = dir.read() {
            let entry = entry.map_err(|e| list(e.into()))?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(OsStr::from_bytes(name).to_os_string());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Visits every entry below this folder, depth first: a folder with [`Phase::Enter`] before
    /// its entries and [`Phase::Leave`] after them, anything else with [`Phase::Leaf`]. Links are
    /// reported, never followed. The visitor may remove the entry it is given (on `Leaf` and
    /// `Leave`). An entry that vanished before it was visited is skipped.
    pub fn walk<E: From<SafeDirError>>(
        &self,
        visit: &mut dyn FnMut(&Entry<'_>, Phase) -> Result<(), E>,
    ) -> Result<(), E> {
        let me = rustix::fs::fstat(&self.fd).map_err(err("inspect folder", &self.path))?;
        let mut stack = vec![Frame {
            dir: Some(self.try_clone()?),
            dev: me.st_dev,
            ino: me.st_ino,
            name: OsString::new(),
            rel: PathBuf::new(),
            pending: reversed(self.entries()?),
            uid: me.st_uid,
            gid: me.st_gid,
            mode: me.st_mode & 0o7777,
        }];
        loop {
            let depth = stack.len() - 1;
            let Some(frame) = stack.last_mut() else { break };
            let Some(name) = frame.pending.pop() else {
                if leave_frame(&mut stack, visit)? {
                    continue;
                }
                break;
            };
            let dir = frame
                .dir
                .as_ref()
                .unwrap_or_else(|| unreachable!("the top frame is always open"));
            let rel = frame.rel.join(&name);
            let stat =
                match rustix::fs::statat(&dir.fd, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(stat) => stat,
                    Err(rustix::io::Errno::NOENT) => continue,
                    Err(e) => return Err(err("inspect", &dir.path.join(&name))(e).into()),
                };
            let kind = kind_of(stat.st_mode);
            let entry = Entry {
                parent: dir,
                name: &name,
                rel: &rel,
                kind,
                size: if kind == EntryKind::File {
                    u64::try_from(stat.st_size).unwrap_or(0)
                } else {
                    0
                },
                uid: stat.st_uid,
                gid: stat.st_gid,
                mode: stat.st_mode & 0o7777,
                depth,
            };
            if kind != EntryKind::Dir {
                visit(&entry, Phase::Leaf)?;
                continue;
            }
            visit(&entry, Phase::Enter)?;
            let child = match dir.open_dir_os(&name) {
                Ok(child) => child,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.into()),
            };
            let opened =
                rustix::fs::fstat(&child.fd).map_err(err("inspect folder", &child.path))?;
            if (opened.st_dev, opened.st_ino) != (stat.st_dev, stat.st_ino) {
                return Err(changed(&child.path).into());
            }
            let pending = reversed(child.entries()?);
            stack.push(Frame {
                dir: Some(child),
                dev: opened.st_dev,
                ino: opened.st_ino,
                name,
                rel,
                pending,
                uid: opened.st_uid,
                gid: opened.st_gid,
                mode: opened.st_mode & 0o7777,
            });
            // Stay under the descriptor budget: close the outermost folder still open (never
            // the walked folder's own frame, which is cheap to keep and anchors messages).
            if stack.len() > MAX_OPEN {
                let close = stack.len() - MAX_OPEN;
                if close > 0 {
                    stack[close].dir = None;
                }
            }
        }
        Ok(())
    }

    /// Gives every entry below this folder, and the folder itself, to `uid`:`gid` (links
    /// themselves, never their targets).
    pub fn chown_tree(&self, uid: u32, gid: u32) -> Result<u64, SafeDirError> {
        self.chown(uid, gid)?;
        let mut count = 1;
        self.walk(&mut |entry: &Entry<'_>, phase| {
            if phase != Phase::Leave {
                entry.parent.chown_entry(entry.name, uid, gid)?;
                count += 1;
            }
            Ok::<(), SafeDirError>(())
        })?;
        Ok(count)
    }

    /// Removes everything below this folder (the folder itself stays), without following links.
    /// Returns how many entries went.
    pub fn clear(&self) -> Result<u64, SafeDirError> {
        let mut count = 0;
        self.walk(&mut |entry: &Entry<'_>, phase| {
            let flags = match phase {
                Phase::Enter => return Ok(()),
                Phase::Leave => AtFlags::REMOVEDIR,
                Phase::Leaf => AtFlags::empty(),
            };
            match rustix::fs::unlinkat(&entry.parent.fd, entry.name, flags) {
                Ok(()) | Err(rustix::io::Errno::NOENT) => {
                    count += 1;
                    Ok(())
                }
                Err(e) => Err(err("remove", &entry.parent.path.join(entry.name))(e)),
            }
        })?;
        Ok(count)
    }

    /// Creates the new empty regular file `name` with `mode` (an existing entry, a link
    /// included, is refused) and returns it open for writing.
    pub fn create_file(&self, name: &str, mode: u32) -> Result<std::fs::File, SafeDirError> {
        let os = OsStr::new(name);
        let path = self.path.join(check_os_name(os, &self.path)?);
        let fd = rustix::fs::openat(
            &self.fd,
            os,
            rustix::fs::OFlags::CREATE
                | rustix::fs::OFlags::EXCL
                | rustix::fs::OFlags::WRONLY
                | rustix::fs::OFlags::NOFOLLOW
                | rustix::fs::OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )
        .map_err(err("create file", &path))?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
            .map_err(err("change the mode of", &path))?;
        Ok(std::fs::File::from(fd))
    }

    /// Removes the file (or link) `name`, any bytes but `/` and NUL.
    pub fn remove_file_os(&self, name: &OsStr) -> Result<(), SafeDirError> {
        let path = self.path.join(check_os_name(name, &self.path)?);
        rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()).map_err(err("remove file", &path))
    }

    /// Removes the empty folder `name`, any bytes but `/` and NUL.
    pub fn remove_dir_os(&self, name: &OsStr) -> Result<(), SafeDirError> {
        let path = self.path.join(check_os_name(name, &self.path)?);
        rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR)
            .map_err(err("remove folder", &path))
    }

    /// Makes the folder this process's own with mode 0700, so that nobody else can enter it or
    /// change anything in it (a site folder apsctl fills).
    pub fn take_over(&self) -> Result<(), SafeDirError> {
        self.chown(
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )?;
        self.set_mode(0o700)
    }

    /// Sets the permission bits of the entry `name` (which must not be a link: `fchmodat`
    /// follows links, so use it only in folders nobody else can write to).
    pub fn set_entry_mode(&self, name: &OsStr, mode: u32) -> Result<(), SafeDirError> {
        rustix::fs::chmodat(&self.fd, name, Mode::from_raw_mode(mode), AtFlags::empty())
            .map_err(err("change the mode of", &self.path.join(name)))
    }

    /// Gives the entry `name` (a link itself, never its target) to `uid`:`gid`.
    pub fn chown_entry(&self, name: &OsStr, uid: u32, gid: u32) -> Result<(), SafeDirError> {
        rustix::fs::chownat(
            &self.fd,
            name,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(err("change the owner of", &self.path.join(name)))
    }

    /// A second descriptor for this folder.
    pub fn try_clone(&self) -> Result<Self, SafeDirError> {
        Ok(Self {
            fd: self.fd.try_clone().map_err(|e| SafeDirError {
                action: "duplicate",
                path: self.path.clone(),
                source: e,
            })?,
            path: self.path.clone(),
        })
    }

    /// Opens the sub-folder `name` (any bytes but `/` and NUL; no link followed).
    pub fn open_dir_os(&self, name: &OsStr) -> Result<Self, SafeDirError> {
        let path = self.path.join(check_os_name(name, &self.path)?);
        let fd = self.open_child(name, &path)?;
        Ok(Self { fd, path })
    }
}

/// One plain name as raw bytes (no `/`, NUL, `.` or `..`).
pub(crate) fn check_os_name<'a>(name: &'a OsStr, path: &Path) -> Result<&'a OsStr, SafeDirError> {
    let bytes = name.as_bytes();
    if bytes.is_empty()
        || bytes == b"."
        || bytes == b".."
        || bytes.contains(&b'/')
        || bytes.contains(&0)
    {
        return Err(SafeDirError {
            action: "use the name",
            path: path.join(name),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a plain file name"),
        });
    }
    Ok(name)
}

/// Pops the finished top frame and visits it (`Leave`) from its parent, reopening the parent
/// when it was closed. `false` when the walked folder itself is done.
fn leave_frame<E: From<SafeDirError>>(
    stack: &mut Vec<Frame>,
    visit: &mut dyn FnMut(&Entry<'_>, Phase) -> Result<(), E>,
) -> Result<bool, E> {
    let Some(done) = stack.pop() else {
        return Ok(false);
    };
    let depth = stack.len().saturating_sub(1);
    let Some(parent) = stack.last_mut() else {
        return Ok(false);
    };
    if parent.dir.is_none() {
        parent.dir = Some(reopen_parent(&done, parent)?);
    }
    let Some(parent_dir) = parent.dir.as_ref() else {
        return Ok(false);
    };
    let entry = Entry {
        parent: parent_dir,
        name: &done.name,
        rel: &done.rel,
        kind: EntryKind::Dir,
        size: 0,
        uid: done.uid,
        gid: done.gid,
        mode: done.mode,
        depth,
    };
    visit(&entry, Phase::Leave)?;
    Ok(true)
}

fn reversed(mut names: Vec<OsString>) -> Vec<OsString> {
    names.reverse();
    names
}

fn changed(path: &Path) -> SafeDirError {
    SafeDirError {
        action: "walk",
        path: path.to_path_buf(),
        source: std::io::Error::other("the folder tree changed while apsctl walked it"),
    }
}

/// Reopens the closed folder of `parent` through `..` of its finished child `child`, accepting
/// it only when it is the very folder recorded on the way down.
fn reopen_parent(child: &Frame, parent: &Frame) -> Result<SafeDir, SafeDirError> {
    let Some(open_child) = child.dir.as_ref() else {
        return Err(changed(&child.rel));
    };
    let fd = rustix::fs::openat(&open_child.fd, "..", DIR_FLAGS, Mode::empty())
        .map_err(err("reopen folder", &open_child.path))?;
    let stat = rustix::fs::fstat(&fd).map_err(err("inspect folder", &open_child.path))?;
    let path = open_child
        .path
        .parent()
        .map_or_else(PathBuf::new, Path::to_path_buf);
    if (stat.st_dev, stat.st_ino) != (parent.dev, parent.ino) {
        return Err(changed(&path));
    }
    Ok(SafeDir { fd, path })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn deep_trees_and_raw_names_are_walked_and_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let top = SafeDir::open(tmp.path()).unwrap();
        // 400 nested folders: far more than MAX_OPEN, and a path longer than PATH_MAX (4096).
        let mut dir = top.create_dir("deep", 0o755).unwrap();
        for _ in 0..400 {
            dir = dir.create_dir("nested-level", 0o755).unwrap();
        }
        let raw = OsStr::from_bytes(b"caf\xe9\n.txt");
        let fd = rustix::fs::openat(
            &dir.fd,
            raw,
            rustix::fs::OFlags::CREATE | rustix::fs::OFlags::WRONLY,
            Mode::from_raw_mode(0o644),
        )
        .unwrap();
        drop(fd);
        drop(dir);
        let mut leaves = Vec::new();
        let mut deepest = 0;
        top.walk(&mut |e: &Entry<'_>, phase| {
            deepest = deepest.max(e.depth);
            if phase == Phase::Leaf {
                leaves.push(e.name.to_os_string());
            }
            Ok::<(), SafeDirError>(())
        })
        .unwrap();
        assert_eq!(leaves, vec![raw.to_os_string()]);
        assert_eq!(deepest, 401);
        assert_eq!(top.clear().unwrap(), 402);
        assert!(top.entries().unwrap().is_empty());
    }

    #[test]
    fn chown_tree_changes_links_not_their_targets() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs_err::write(&outside, "x").unwrap();
        let tree = tmp.path().join("tree");
        fs_err::create_dir_all(tree.join("a/b")).unwrap();
        std::os::unix::fs::symlink(&outside, tree.join("a/b/link")).unwrap();
        let dir = SafeDir::open(&tree).unwrap();
        let n = dir.chown_tree(4242, 4343).unwrap();
        assert_eq!(n, 4);
        let link = fs_err::symlink_metadata(tree.join("a/b/link")).unwrap();
        assert_eq!((link.uid(), link.gid()), (4242, 4343));
        let target = fs_err::metadata(&outside).unwrap();
        assert_eq!(
            target.uid(),
            nix::unistd::geteuid().as_raw(),
            "the link's target is untouched"
        );
    }
}
