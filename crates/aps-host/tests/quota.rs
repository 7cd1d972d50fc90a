//! `aps_host::quota::user_quota_left` against real file systems: tmpfs mounts made by the test on
//! temporary folders (with and without user quotas) and the file system of the temporary folder.
//!
//! Main decision: mounting is part of what is tested, so these tests need root and fail without
//! it, never skip; every mount is undone by a guard, whatever the test's outcome.
//!
//! Known gap: the kernel of this project's test machine (6.18, `CONFIG_TMPFS_QUOTA`,
//! `CONFIG_QFMT_V2` and `CONFIG_XFS_QUOTA` unset) cannot mount any file system with user quotas,
//! so the figures of a real enforced quota are not tested here (the arithmetic is unit-tested in
//! `quota.rs`).
use std::path::Path;

use aps_host::env::Env;
use aps_host::quota::{QuotaError, user_quota_left};

/// A uid for quota figures: quotas are kept per uid, so no user needs to exist.
const QUOTA_UID: u32 = 61_907;

/// A tmpfs mounted on a fresh temporary folder; unmounted (lazily, so a busy mount cannot stay
/// behind) when dropped.
struct TmpfsMount {
    env: Env,
    dir: tempfile::TempDir,
}

impl TmpfsMount {
    /// Mounts a tmpfs with `options` (`-o`); panics with the reason when mounting fails.
    fn new(options: &str) -> Self {
        let env = Env::from_process();
        assert!(
            env.is_root(),
            "these tests mount file systems and must run as root"
        );
        let dir = tempfile::Builder::new()
            .prefix("apsctl-quota-")
            .tempdir()
            .expect("create the mount point");
        let output = env
            .command("mount")
            .args(["-t", "tmpfs", "-o", options, "apsctl-quota"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            output.status.success(),
            "cannot mount a tmpfs with `-o {options}` on `{}`: {}",
            dir.path().display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Self { env, dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let unmounted = self
            .env
            .command("umount")
            .arg("--lazy")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        // A second panic while unwinding would abort and hide the first failure.
        assert!(
            unmounted || std::thread::panicking(),
            "cannot unmount `{}`",
            self.dir.path().display()
        );
    }
}

/// Issue 7 (D20): a file system without quotas limits nobody: `None`, for folders and files.
#[test]
fn issue_7_no_quota_on_a_tmpfs_without_quotas() {
    let mount = TmpfsMount::new("size=64m");
    let file = mount.path().join("data");
    fs_err::write(&file, vec![7u8; 1 << 20]).unwrap();
    std::os::unix::fs::chown(&file, Some(QUOTA_UID), Some(QUOTA_UID)).unwrap();
    for path in [mount.path(), file.as_path()] {
        for uid in [QUOTA_UID, 0] {
            let left =
                user_quota_left(path, uid).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(left, None, "{}", path.display());
        }
    }
}

/// Issue 7 (D20): the file system of the temporary folder (ext4 without quotas here) has no
/// limit for a uid that owns nothing: `None`, not an error.
#[test]
fn issue_7_no_quota_on_the_temporary_folders_file_system() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(user_quota_left(dir.path(), QUOTA_UID).unwrap(), None);
}

/// Issue 7 (D20): a path that does not exist is an error naming it.
#[test]
fn issue_7_a_missing_path_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-folder");
    let err = user_quota_left(&missing, QUOTA_UID).unwrap_err();
    assert!(matches!(err, QuotaError::Open { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&format!("`{}`", missing.display())),
        "{message}"
    );
}
