//! Operation locks: an advisory `flock` on a file, held by the live process.
//!
//! Main decision (D13): "an operation is in progress" is never a flag in the store. It is an
//! exclusive `flock` that the kernel releases when the holder dies, so a crash can never leave an
//! instance stuck. The file also carries the holder's pid, host and start time, for display only.
//! Lock files are created 0600 and belong in a folder only root can enter (the home's `locks/`),
//! so no site user can open one and hold it.
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use fs_err::os::unix::fs::OpenOptionsExt as _;
use nix::fcntl::{Flock, FlockArg};

/// An exclusive lock held until dropped.
#[derive(Debug)]
pub struct OpLock {
    path: PathBuf,
    _lock: Flock<std::fs::File>,
}

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another live process holds the lock.
    #[error("another operation is in progress: {holder}")]
    Busy {
        /// What the holder wrote into the lock file (operation, pid, host, start time).
        holder: String,
    },
    /// The lock file could not be opened or locked.
    #[error("cannot lock `{}`", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl OpLock {
    /// Takes the lock at `path` without waiting, writing `holder` (a one-line description of the
    /// operation) into the file. Fails with [`LockError::Busy`] while a live process holds it.
    pub fn acquire(path: &Path, holder: &str) -> Result<Self, LockError> {
        let io = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = fs_err::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(io)?
            .into_parts()
            .0;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((mut file, errno)) => {
                if errno == nix::errno::Errno::EWOULDBLOCK {
                    let mut text = String::new();
                    let _ = file.read_to_string(&mut text);
                    let holder = text.trim();
                    return Err(LockError::Busy {
                        holder: if holder.is_empty() {
                            "unknown operation".into()
                        } else {
                            holder.into()
                        },
                    });
                }
                return Err(io(std::io::Error::from(errno)));
            }
        };
        lock.set_len(0).map_err(io)?;
        lock.rewind().map_err(io)?;
        writeln!(lock, "{holder}").map_err(io)?;
        lock.flush().map_err(io)?;
        Ok(Self {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// Like [`OpLock::acquire`], but while another live process holds the lock, tries again
    /// until `wait` has passed (zero: one try).
    pub fn acquire_waiting(
        path: &Path,
        holder: &str,
        wait: std::time::Duration,
    ) -> Result<Self, LockError> {
        let deadline = std::time::Instant::now() + wait;
        let mut pause = std::time::Duration::from_millis(20);
        loop {
            match Self::acquire(path, holder) {
                Err(LockError::Busy { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(pause.min(deadline - std::time::Instant::now()));
                    pause = (pause * 2).min(std::time::Duration::from_millis(250));
                }
                other => return other,
            }
        }
    }

    /// Tells whether some live process holds the lock at `path` right now.
    pub fn is_held(path: &Path) -> bool {
        matches!(Self::acquire(path, "probe"), Err(LockError::Busy { .. }))
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_while_first_is_held_and_free_after_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let first = OpLock::acquire(&path, "install of instance 7 (pid 1)").unwrap();
        match OpLock::acquire(&path, "remove") {
            Err(LockError::Busy { holder }) => assert_eq!(holder, "install of instance 7 (pid 1)"),
            other => panic!("expected Busy, got {other:?}"),
        }
        assert!(OpLock::is_held(&path));
        drop(first);
        assert!(!OpLock::is_held(&path));
        OpLock::acquire(&path, "remove").unwrap();
    }
}
