//! Disk quotas: how many bytes and inodes a user may still use on the file system holding a path.
//!
//! apsctl writes a site's files as root and then hands them to the site user, so the kernel never
//! stops an install at the user's quota, and free space on the file system says nothing about the
//! user's share of it. [`user_quota_left`] answers that question before anything is written.
//!
//! Main decision: the quota is read with `quotactl_fd(2)` (Linux 5.14+) on a descriptor of the
//! path itself, which works for every file system that has quota operations, those without a
//! block device (tmpfs) included. Only when the kernel or file system answers `ENOSYS` does the
//! code fall back to `quotactl(2)` (through `nix`) with the block device named in
//! `/proc/self/mountinfo`, for kernels older than 5.14. The one `unsafe` block is that system call,
//! which no well-kept crate wraps yet. "Quotas are not enabled", "this file system has no
//! quotas" and "no limit is set for this user" all mean `None`: nothing limits the user there.
//!
//! Known gaps: user quotas only (group and project quotas are not read); on a kernel older than
//! 5.14 a file system whose device cannot be found in `/proc/self/mountinfo` (or whose device node
//! is missing, as in some containers) is taken as having no quota; this project's test machine
//! runs a kernel without tmpfs, ext4 (`QFMT_V2`) or XFS quota support, so the figures of a real
//! enforced quota are only checked by an ignored test (`tests/quota.rs`) until a machine with one
//! is available.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::FileTypeExt as _;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use rustix::fs::{Mode, OFlags};

/// The size of one quota block (`QIF_DQBLKSIZE` in `<linux/quota.h>`): block limits count these.
pub const QUOTA_BLOCK_SIZE: u64 = 1024;

/// What a user has left under its quota on one file system. A limit that is not set is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaLeft {
    /// Bytes the user may still use before reaching its hard space limit (0 when at or over it).
    pub bytes_hard: Option<u64>,
    /// Bytes before the soft space limit, past which writes work only until the grace time ends.
    pub bytes_soft: Option<u64>,
    /// Files and folders the user may still create before reaching its hard inode limit.
    pub inodes_hard: Option<u64>,
    /// Files and folders before the soft inode limit.
    pub inodes_soft: Option<u64>,
}

impl QuotaLeft {
    /// Bytes that can be used without passing any limit: the smaller of the two, if any is set.
    pub fn bytes(&self) -> Option<u64> {
        smaller(self.bytes_hard, self.bytes_soft)
    }

    /// Inodes that can be used without passing any limit: the smaller of the two, if any is set.
    pub fn inodes(&self) -> Option<u64> {
        smaller(self.inodes_hard, self.inodes_soft)
    }
}

/// Limits to set with [`set_user_quota`]: space in bytes (rounded up to whole
/// [`QUOTA_BLOCK_SIZE`] blocks), inodes in files and folders; 0 means no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaLimits {
    /// Hard space limit in bytes.
    pub bytes_hard: u64,
    /// Soft space limit in bytes.
    pub bytes_soft: u64,
    /// Hard inode limit.
    pub inodes_hard: u64,
    /// Soft inode limit.
    pub inodes_soft: u64,
}

/// Why a quota could not be read or set.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    /// The path could not be opened (it does not exist or cannot be reached).
    #[error("cannot open `{}` to read its file system's disk quotas", .path.display())]
    Open {
        /// The path given.
        path: PathBuf,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// The kernel refused the quota request (for example: not allowed to read another user's
    /// quota, or a uid the kernel cannot map).
    #[error("cannot read the disk quota of uid {uid} on the file system holding `{}`", .path.display())]
    Query {
        /// The path given.
        path: PathBuf,
        /// The user.
        uid: u32,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// The mount table could not be read while looking for the device holding the path.
    #[error("cannot read `/proc/self/mountinfo` to find the device holding `{}`", .path.display())]
    Mounts {
        /// The path given.
        path: PathBuf,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// Setting a quota failed.
    #[error("cannot set the disk quota of uid {uid} on the file system holding `{}`", .path.display())]
    Set {
        /// The path given.
        path: PathBuf,
        /// The user.
        uid: u32,
        /// The system error.
        #[source]
        source: io::Error,
    },
}

/// What the user `uid` has left under its quota on the file system holding `path` (a file or a
/// folder), or `None` when no quota limits that user there: the file system has no quotas, user
/// quotas are not enabled on it, or no limit is set for `uid`.
///
/// Reading another user's quota needs root (`CAP_SYS_ADMIN`), which apsctl has when it installs.
pub fn user_quota_left(path: &Path, uid: u32) -> Result<Option<QuotaLeft>, QuotaError> {
    let fd = open(path)?;
    let query = |source: io::Error| QuotaError::Query {
        path: path.to_owned(),
        uid,
        source,
    };
    let usage = match get_quota_fd(&fd, uid) {
        Ok(usage) => usage,
        Err(errno) if means_no_quota(errno) => return Ok(None),
        // No `quotactl_fd` (kernel before 5.14), or a file system without quota operations.
        Err(Errno::ENOSYS) => match block_device(&fd, path)? {
            None => return Ok(None),
            Some(device) => match get_quota_device(&device, uid) {
                Ok(usage) => usage,
                Err(errno) if means_no_quota(errno) || no_device(errno) => return Ok(None),
                Err(errno) => return Err(query(errno.into())),
            },
        },
        Err(errno) => return Err(query(errno.into())),
    };
    Ok(usage.left())
}

/// Sets the user quota of `uid` on the file system holding `path` (which must have user quotas
/// enabled). Needs root.
///
/// Public so that tests can give a test user a quota; apsctl itself never sets quotas.
pub fn set_user_quota(path: &Path, uid: u32, limits: &QuotaLimits) -> Result<(), QuotaError> {
    let fd = open(path)?;
    let blocks = |bytes: u64| bytes.div_ceil(QUOTA_BLOCK_SIZE);
    let mut block = libc::dqblk {
        dqb_bhardlimit: blocks(limits.bytes_hard),
        dqb_bsoftlimit: blocks(limits.bytes_soft),
        dqb_curspace: 0,
        dqb_ihardlimit: limits.inodes_hard,
        dqb_isoftlimit: limits.inodes_soft,
        dqb_curinodes: 0,
        dqb_btime: 0,
        dqb_itime: 0,
        dqb_valid: libc::QIF_LIMITS,
    };
    quotactl_fd(&fd, libc::Q_SETQUOTA, uid, &mut block).map_err(|errno| QuotaError::Set {
        path: path.to_owned(),
        uid,
        source: errno.into(),
    })
}

/// A descriptor of `path` that only names it (`O_PATH`): no read permission is needed, and
/// `quotactl_fd` accepts it.
fn open(path: &Path) -> Result<OwnedFd, QuotaError> {
    rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).map_err(|e| {
        QuotaError::Open {
            path: path.to_owned(),
            source: e.into(),
        }
    })
}

/// Errors that mean "no quota applies": user quotas are off (`ESRCH`), or the file system does
/// not support this kind of request.
fn means_no_quota(errno: Errno) -> bool {
    matches!(errno, Errno::ESRCH | Errno::EOPNOTSUPP)
}

/// Errors of `quotactl(2)` that mean the device cannot be used to ask (no such node, not a
/// block device, no file system on it).
fn no_device(errno: Errno) -> bool {
    matches!(
        errno,
        Errno::ENOENT | Errno::ENOTBLK | Errno::ENODEV | Errno::ENOSYS
    )
}

/// One user's usage and limits, in the units of `struct if_dqblk`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Usage {
    /// Hard space limit in [`QUOTA_BLOCK_SIZE`] blocks; 0: none.
    blocks_hard: u64,
    /// Soft space limit in blocks; 0: none.
    blocks_soft: u64,
    /// Space in use, in bytes.
    bytes_used: u64,
    /// Hard inode limit; 0: none.
    inodes_hard: u64,
    /// Soft inode limit; 0: none.
    inodes_soft: u64,
    /// Inodes in use.
    inodes_used: u64,
}

impl Usage {
    /// What is left under each limit; `None` when no limit is set.
    fn left(&self) -> Option<QuotaLeft> {
        let bytes = |blocks: u64| {
            (blocks != 0).then(|| {
                blocks
                    .saturating_mul(QUOTA_BLOCK_SIZE)
                    .saturating_sub(self.bytes_used)
            })
        };
        let inodes = |limit: u64| (limit != 0).then(|| limit.saturating_sub(self.inodes_used));
        let left = QuotaLeft {
            bytes_hard: bytes(self.blocks_hard),
            bytes_soft: bytes(self.blocks_soft),
            inodes_hard: inodes(self.inodes_hard),
            inodes_soft: inodes(self.inodes_soft),
        };
        (left.bytes().is_some() || left.inodes().is_some()).then_some(left)
    }
}

impl From<libc::dqblk> for Usage {
    fn from(d: libc::dqblk) -> Self {
        // Fields the kernel did not fill (`dqb_valid`) count as "no limit" / "nothing used".
        let valid = |flag: u32, value: u64| if d.dqb_valid & flag == 0 { 0 } else { value };
        Usage {
            blocks_hard: valid(libc::QIF_BLIMITS, d.dqb_bhardlimit),
            blocks_soft: valid(libc::QIF_BLIMITS, d.dqb_bsoftlimit),
            bytes_used: valid(libc::QIF_SPACE, d.dqb_curspace),
            inodes_hard: valid(libc::QIF_ILIMITS, d.dqb_ihardlimit),
            inodes_soft: valid(libc::QIF_ILIMITS, d.dqb_isoftlimit),
            inodes_used: valid(libc::QIF_INODES, d.dqb_curinodes),
        }
    }
}

/// `Q_GETQUOTA` for `uid` through `quotactl_fd(2)`.
fn get_quota_fd(fd: &OwnedFd, uid: u32) -> Result<Usage, Errno> {
    let mut block = libc::dqblk {
        dqb_bhardlimit: 0,
        dqb_bsoftlimit: 0,
        dqb_curspace: 0,
        dqb_ihardlimit: 0,
        dqb_isoftlimit: 0,
        dqb_curinodes: 0,
        dqb_btime: 0,
        dqb_itime: 0,
        dqb_valid: 0,
    };
    quotactl_fd(fd, libc::Q_GETQUOTA, uid, &mut block)?;
    Ok(block.into())
}

/// `Q_GETQUOTA` for `uid` through `quotactl(2)` on the block device `device`.
fn get_quota_device(device: &Path, uid: u32) -> Result<Usage, Errno> {
    use nix::sys::quota::{QuotaType, quotactl_get};
    // `quotactl(2)` takes the id as a C int; a uid above `i32::MAX` is passed bit for bit.
    let id = libc::c_int::from_ne_bytes(uid.to_ne_bytes());
    let d = quotactl_get(QuotaType::USRQUOTA, device, id)?;
    Ok(Usage {
        blocks_hard: d.blocks_hard_limit().unwrap_or(0),
        blocks_soft: d.blocks_soft_limit().unwrap_or(0),
        bytes_used: d.occupied_space().unwrap_or(0),
        inodes_hard: d.inodes_hard_limit().unwrap_or(0),
        inodes_soft: d.inodes_soft_limit().unwrap_or(0),
        inodes_used: d.allocated_inodes().unwrap_or(0),
    })
}

/// One user-quota command (`Q_GETQUOTA` or `Q_SETQUOTA`) through `quotactl_fd(2)`.
fn quotactl_fd(
    fd: &OwnedFd,
    subcmd: libc::c_int,
    uid: u32,
    block: &mut libc::dqblk,
) -> Result<(), Errno> {
    let cmd = libc::QCMD(subcmd, libc::USRQUOTA);
    let raw_fd = libc::c_uint::try_from(fd.as_raw_fd()).map_err(|_| Errno::EBADF)?;
    // The kernel declares `cmd` as `unsigned int`: the bits are passed as they are.
    let cmd = libc::c_uint::from_ne_bytes(cmd.to_ne_bytes());
    let addr: *mut libc::dqblk = block;
    #[expect(
        unsafe_code,
        reason = "quotactl_fd(2) has no wrapper in nix, rustix or libc; it is called directly"
    )]
    // SAFETY: `SYS_quotactl_fd` takes (unsigned int fd, unsigned int cmd, qid_t id, void *addr).
    // `raw_fd` is an open descriptor borrowed for the duration of the call. For `Q_GETQUOTA` and
    // `Q_SETQUOTA` the kernel reads or writes exactly one `struct if_dqblk` at `addr`, which
    // `libc::dqblk` mirrors field for field; `addr` points to a live, aligned, exclusively
    // borrowed value of that type until the call returns. No other memory is touched.
    let rc = unsafe { libc::syscall(libc::SYS_quotactl_fd, raw_fd, cmd, uid, addr) };
    if rc == -1 { Err(Errno::last()) } else { Ok(()) }
}

/// The block device holding the file system of `fd`, from `/proc/self/mountinfo`; `None` when
/// that file system has no block device (tmpfs, network and virtual file systems).
fn block_device(fd: &OwnedFd, path: &Path) -> Result<Option<PathBuf>, QuotaError> {
    let stat = rustix::fs::fstat(fd).map_err(|e| QuotaError::Open {
        path: path.to_owned(),
        source: e.into(),
    })?;
    let wanted = (
        rustix::fs::major(stat.st_dev),
        rustix::fs::minor(stat.st_dev),
    );
    let table = fs_err::read("/proc/self/mountinfo").map_err(|source| QuotaError::Mounts {
        path: path.to_owned(),
        source,
    })?;
    let Some(source) = mount_source(&table, wanted) else {
        return Ok(None);
    };
    let source = PathBuf::from(source);
    let is_block = fs_err::metadata(&source).is_ok_and(|m| m.file_type().is_block_device());
    Ok(is_block.then_some(source))
}

/// The mount source (fifth field after the ` - ` separator's first) of the first
/// `/proc/self/mountinfo` line whose `major:minor` is `wanted`, with its octal escapes decoded.
fn mount_source(table: &[u8], wanted: (u32, u32)) -> Option<OsString> {
    let wanted = format!("{}:{}", wanted.0, wanted.1);
    table.split(|&b| b == b'\n').find_map(|line| {
        let mut fields = line.split(|&b| b == b' ');
        if fields.nth(2)? != wanted.as_bytes() {
            return None;
        }
        // After the optional fields comes `-`, then the file system type and the source.
        let mut after = fields.skip_while(|f| *f != b"-").skip(1);
        let _fs_type = after.next()?;
        Some(unescape(after.next()?))
    })
}

/// Decodes the `\NNN` octal escapes mountinfo uses for spaces, tabs, newlines and backslashes.
fn unescape(field: &[u8]) -> OsString {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|d| field[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        if let Some(byte) = octal {
            out.push(byte);
            i += 4;
        } else {
            out.push(field[i]);
            i += 1;
        }
    }
    OsStr::from_bytes(&out).to_owned()
}

fn smaller(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_becomes_what_is_left_under_each_limit() {
        let usage = Usage {
            blocks_hard: 2048,
            blocks_soft: 1024,
            bytes_used: 1000,
            inodes_hard: 20,
            inodes_soft: 10,
            inodes_used: 3,
        };
        let left = usage.left().unwrap();
        assert_eq!(
            left,
            QuotaLeft {
                bytes_hard: Some(2048 * 1024 - 1000),
                bytes_soft: Some(1024 * 1024 - 1000),
                inodes_hard: Some(17),
                inodes_soft: Some(7),
            }
        );
        assert_eq!(left.bytes(), Some(1024 * 1024 - 1000));
        assert_eq!(left.inodes(), Some(7));
        // Over a limit: nothing left, never a wrap-around.
        let over = Usage {
            blocks_hard: 1,
            bytes_used: 5000,
            ..Usage::default()
        };
        let left = over.left().unwrap();
        assert_eq!((left.bytes_hard, left.bytes_soft), (Some(0), None));
        assert_eq!((left.bytes(), left.inodes()), (Some(0), None));
        // Only an inode limit.
        let files = Usage {
            inodes_soft: 5,
            bytes_used: 1 << 30,
            ..Usage::default()
        };
        assert_eq!(files.left().unwrap().inodes(), Some(5));
        // Usage without any limit is no quota.
        let free = Usage {
            bytes_used: 1 << 30,
            inodes_used: 100,
            ..Usage::default()
        };
        assert_eq!(free.left(), None);
    }

    #[test]
    fn fields_the_kernel_did_not_fill_are_ignored() {
        let d = libc::dqblk {
            dqb_bhardlimit: 10,
            dqb_bsoftlimit: 5,
            dqb_curspace: 100,
            dqb_ihardlimit: 7,
            dqb_isoftlimit: 6,
            dqb_curinodes: 1,
            dqb_btime: 0,
            dqb_itime: 0,
            dqb_valid: libc::QIF_BLIMITS | libc::QIF_SPACE,
        };
        let usage = Usage::from(d);
        assert_eq!((usage.blocks_hard, usage.bytes_used), (10, 100));
        assert_eq!((usage.inodes_hard, usage.inodes_used), (0, 0));
    }

    #[test]
    fn mount_sources_are_found_by_device_number() {
        let table = b"22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
36 22 0:41 / /tmp/a\\040b rw master:2 shared:3 - tmpfs tmpfs rw,size=65536k\n\
37 22 7:0 / /mnt rw - ext4 /dev/loop\\0400 rw,usrquota\n";
        assert_eq!(mount_source(table, (254, 0)), Some("/dev/vda".into()));
        assert_eq!(mount_source(table, (0, 41)), Some("tmpfs".into()));
        assert_eq!(mount_source(table, (7, 0)), Some("/dev/loop 0".into()));
        assert_eq!(mount_source(table, (8, 1)), None);
        assert_eq!(unescape(b"a\\134b\\011"), OsString::from("a\\b\t"));
        assert_eq!(unescape(b"trailing\\"), OsString::from("trailing\\"));
    }
}
