//! System users that sites belong to and package scripts run as.
//!
//! Main decision: a [`SystemUser`] is looked up once from the user database (NSS, so LDAP users
//! work) with all its groups, and carries everything needed to switch to it in a child process.
//! apsctl never runs anything for a site as root: [`SystemUser::ensure_not_root`] is the single
//! refusal that the runner applies before every spawn.
//!
//! Known gaps: the lookup is a snapshot; a user changed after lookup keeps its old groups until
//! looked up again. [`ensure_test_user`] exists for tests only.
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use nix::unistd::{Gid, User};

use crate::env::Env;

/// A system account with its numeric identity and supplementary groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemUser {
    name: String,
    uid: u32,
    gid: u32,
    home: PathBuf,
    groups: Vec<u32>,
}

/// Why a system user could not be found or used.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The user database has no such user.
    #[error("system user `{name}` does not exist")]
    NotFound {
        /// The name looked up.
        name: String,
    },
    /// The user database could not be read.
    #[error("cannot look up system user `{name}`")]
    Lookup {
        /// The name looked up.
        name: String,
        /// The system error.
        #[source]
        source: nix::Error,
    },
    /// The name cannot be a user name (it contains a NUL byte or is empty).
    #[error("`{name}` is not a valid user name")]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// The user is root (uid 0); apsctl never runs site work as root.
    #[error("system user `{name}` has uid 0; apsctl never runs site scripts as root")]
    Root {
        /// The user's name.
        name: String,
    },
    /// Creating a test user failed.
    #[error("cannot create system user `{name}`: {detail}")]
    Create {
        /// The user that was to be created.
        name: String,
        /// What `useradd` reported.
        detail: String,
    },
    /// `useradd` could not be started.
    #[error("cannot run `useradd` to create system user `{name}`")]
    Spawn {
        /// The user that was to be created.
        name: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl SystemUser {
    /// Looks up the user with id `uid` (e.g. the owner of a site's document root).
    pub fn by_uid(uid: u32) -> Result<Self, UserError> {
        let user = User::from_uid(nix::unistd::Uid::from_raw(uid))
            .map_err(|source| UserError::Lookup {
                name: format!("#{uid}"),
                source,
            })?
            .ok_or_else(|| UserError::NotFound {
                name: format!("#{uid}"),
            })?;
        Self::lookup(&user.name)
    }

    /// Looks up `name` in the user database, with its primary and supplementary groups.
    pub fn lookup(name: &str) -> Result<Self, UserError> {
        let invalid = || UserError::InvalidName {
            name: name.to_owned(),
        };
        if name.is_empty() {
            return Err(invalid());
        }
        let c_name = CString::new(name).map_err(|_| invalid())?;
        let user = User::from_name(name)
            .map_err(|source| UserError::Lookup {
                name: name.to_owned(),
                source,
            })?
            .ok_or_else(|| UserError::NotFound {
                name: name.to_owned(),
            })?;
        let groups =
            nix::unistd::getgrouplist(&c_name, user.gid).map_err(|source| UserError::Lookup {
                name: name.to_owned(),
                source,
            })?;
        let mut groups: Vec<u32> = groups.into_iter().map(Gid::as_raw).collect();
        groups.sort_unstable();
        groups.dedup();
        Ok(Self {
            name: user.name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            home: user.dir,
            groups,
        })
    }

    /// The login name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The numeric user id.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The primary group id.
    pub fn gid(&self) -> u32 {
        self.gid
    }

    /// The home folder from the user database (it need not exist).
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// All group ids the user belongs to, the primary group included, sorted.
    pub fn groups(&self) -> &[u32] {
        &self.groups
    }

    /// Refuses root: the error names the user.
    pub fn ensure_not_root(&self) -> Result<(), UserError> {
        if self.uid == 0 {
            return Err(UserError::Root {
                name: self.name.clone(),
            });
        }
        Ok(())
    }
}

/// Serialises user creation inside one test process (`useradd` locks `/etc/passwd`).
static CREATE_LOCK: Mutex<()> = Mutex::new(());

/// Test support: returns system user `name`, creating it first when missing as a system account
/// with a home folder and no login shell (`useradd --system --create-home --shell
/// /usr/sbin/nologin`). Needs root.
///
/// Public so that integration tests of other crates can share it; never called by apsctl itself.
/// Safe against concurrent callers in other test processes: a lost race is detected by looking
/// the user up again, and a busy `/etc/passwd` lock is retried.
pub fn ensure_test_user(env: &Env, name: &str) -> Result<SystemUser, UserError> {
    let _guard = CREATE_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut last_detail = String::new();
    for attempt in 0..20u32 {
        match SystemUser::lookup(name) {
            Ok(user) => return Ok(user),
            Err(UserError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let output = env
            .command("useradd")
            .args([
                "--system",
                "--create-home",
                "--shell",
                "/usr/sbin/nologin",
                "--",
            ])
            .arg(name)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|source| UserError::Spawn {
                name: name.to_owned(),
                source,
            })?;
        if output.status.success() {
            return SystemUser::lookup(name);
        }
        String::from_utf8_lossy(&output.stderr)
            .trim()
            .clone_into(&mut last_detail);
        // Exit 9: the name exists (another process won the race); 10: /etc/passwd is locked.
        match output.status.code() {
            Some(9 | 10) => std::thread::sleep(Duration::from_millis(50 * u64::from(attempt + 1))),
            _ => break,
        }
    }
    match SystemUser::lookup(name) {
        Ok(user) => Ok(user),
        Err(UserError::NotFound { .. }) => Err(UserError::Create {
            name: name.to_owned(),
            detail: last_detail,
        }),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_found_and_refused() {
        let root = SystemUser::lookup("root").expect("root exists");
        assert_eq!(root.uid(), 0);
        assert!(root.groups().contains(&0));
        let err = root.ensure_not_root().expect_err("root must be refused");
        assert!(err.to_string().contains("`root`"), "{err}");
    }

    #[test]
    fn unknown_and_invalid_names() {
        assert!(matches!(
            SystemUser::lookup("apsctl-no-such-user"),
            Err(UserError::NotFound { .. })
        ));
        assert!(matches!(
            SystemUser::lookup("a\0b"),
            Err(UserError::InvalidName { .. })
        ));
        assert!(matches!(
            SystemUser::lookup(""),
            Err(UserError::InvalidName { .. })
        ));
    }

    #[test]
    fn test_user_is_created_once_and_not_root() {
        let env = Env::from_process();
        let user = ensure_test_user(&env, "apsctl-test").expect("create test user");
        assert_ne!(user.uid(), 0);
        user.ensure_not_root().expect("not root");
        assert!(user.groups().contains(&user.gid()));
        assert_eq!(user.home(), Path::new("/home/apsctl-test"));
        // Second call finds it.
        let again = ensure_test_user(&env, "apsctl-test").expect("find test user");
        assert_eq!(again, user);
    }
}
