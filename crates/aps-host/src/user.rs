//! System users that sites belong to and package scripts run as.
//!
//! Main decision: a [`SystemUser`] is looked up once from the user database (NSS, so LDAP users
//! work) with all its groups, and carries everything needed to switch to it in a child process.
//! apsctl never runs anything for a site as root: [`SystemUser::ensure_not_root`] is the single
//! refusal that the runner applies before every spawn. Sites go further
//! ([`SystemUser::ensure_login_account`]): their users must be login accounts, with a uid at or
//! above the start of the login range (`UID_MIN` in `/etc/login.defs`, [`login_uid_min`]), so a
//! site can never run as `mysql`, `www-data` or another service account.
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
    /// The user is a system account (uid below the login range); sites need login accounts.
    #[error(
        "system user `{name}` (uid {uid}) is a system account: a site's user needs a uid of at least {min} (the login range, `UID_MIN` in /etc/login.defs or --min-site-uid)"
    )]
    SystemAccount {
        /// The user's name.
        name: String,
        /// Its uid.
        uid: u32,
        /// The lowest uid accepted.
        min: u32,
    },
    /// `/etc/login.defs` could not be read.
    #[error("cannot read `{}`", path.display())]
    ReadLoginDefs {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `/etc/login.defs` holds a `UID_MIN` that is not a number.
    #[error("`{}` line {line}: `UID_MIN` value `{value}` is not a uid", path.display())]
    BadLoginDefs {
        /// The file.
        path: PathBuf,
        /// The line number (from 1).
        line: usize,
        /// The value found.
        value: String,
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

    /// Refuses root and system accounts: a site's user must have a uid of at least `min_uid`
    /// (normally [`login_uid_min`]). Root is refused whatever `min_uid` says.
    pub fn ensure_login_account(&self, min_uid: u32) -> Result<(), UserError> {
        self.ensure_not_root()?;
        if self.uid < min_uid {
            return Err(UserError::SystemAccount {
                name: self.name.clone(),
                uid: self.uid,
                min: min_uid,
            });
        }
        Ok(())
    }

    /// The user's primary group when it is the user's own (a "user private group": named like
    /// the user and listing no other member), else `None`. Such a group gives nobody else
    /// write access to the folders it may write to.
    pub fn private_group(&self) -> Result<Option<u32>, UserError> {
        let group = nix::unistd::Group::from_gid(Gid::from_raw(self.gid)).map_err(|source| {
            UserError::Lookup {
                name: self.name.clone(),
                source,
            }
        })?;
        Ok(group
            .filter(|g| g.name == self.name && g.mem.iter().all(|m| *m == self.name))
            .map(|_| self.gid))
    }
}

/// The name of group `gid`, when the group database has it (for messages).
pub fn group_name(gid: u32) -> Option<String> {
    nix::unistd::Group::from_gid(Gid::from_raw(gid))
        .ok()
        .flatten()
        .map(|g| g.name)
}

/// The name of user `uid`, when the user database has it (for messages).
pub fn user_name(uid: u32) -> Option<String> {
    User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// Where the start of the login range is configured.
pub const LOGIN_DEFS: &str = "/etc/login.defs";

/// The start of the login range when `/etc/login.defs` does not set `UID_MIN` (shadow's default).
pub const DEFAULT_UID_MIN: u32 = 1000;

/// The lowest uid of a login account: `UID_MIN` from `login_defs` (normally [`LOGIN_DEFS`]),
/// [`DEFAULT_UID_MIN`] when the file is missing or does not set it. Values are read as
/// `login.defs` writes numbers: decimal, `0x…` hexadecimal or `0…` octal.
pub fn login_uid_min(login_defs: &Path) -> Result<u32, UserError> {
    let text = match fs_err::read_to_string(login_defs) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DEFAULT_UID_MIN),
        Err(source) => {
            return Err(UserError::ReadLoginDefs {
                path: login_defs.to_path_buf(),
                source,
            });
        }
    };
    let mut found = None;
    for (n, line) in text.lines().enumerate() {
        let mut words = line.split_whitespace();
        if words.next() != Some("UID_MIN") {
            continue;
        }
        let value = words.next().unwrap_or_default();
        let parsed = if let Some(hex) = value.strip_prefix("0x").or(value.strip_prefix("0X")) {
            u32::from_str_radix(hex, 16).ok()
        } else if value.len() > 1 && value.starts_with('0') {
            u32::from_str_radix(&value[1..], 8).ok()
        } else {
            value.parse().ok()
        };
        // Like shadow's getdef, the last setting wins.
        found = Some(parsed.ok_or_else(|| UserError::BadLoginDefs {
            path: login_defs.to_path_buf(),
            line: n + 1,
            value: value.to_owned(),
        })?);
    }
    Ok(found.unwrap_or(DEFAULT_UID_MIN))
}

/// Serialises user creation inside one test process (`useradd` locks `/etc/passwd`).
static CREATE_LOCK: Mutex<()> = Mutex::new(());

/// Test support: returns system user `name`, creating it first when missing as a login account
/// (uid in the login range, so it may own a site) with a home folder and no login shell
/// (`useradd --create-home --shell /usr/sbin/nologin`). Needs root.
///
/// An account of that name left as a system account by an older version of the tests (uid below
/// [`login_uid_min`]) is deleted with its home and created again.
///
/// Public so that integration tests of other crates can share it; never called by apsctl itself.
/// Safe against concurrent callers in other test processes: a lost race is detected by looking
/// the user up again, and a busy `/etc/passwd` lock is retried.
pub fn ensure_test_user(env: &Env, name: &str) -> Result<SystemUser, UserError> {
    let _guard = CREATE_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let min_uid = login_uid_min(Path::new(LOGIN_DEFS))?;
    let mut last_detail = String::new();
    for attempt in 0..20u32 {
        let (program, args): (&str, &[&str]) = match SystemUser::lookup(name) {
            Ok(user) if user.uid() >= min_uid => return Ok(user),
            Ok(_) => ("userdel", &["--remove", "--"]),
            Err(UserError::NotFound { .. }) => (
                "useradd",
                &["--create-home", "--shell", "/usr/sbin/nologin", "--"],
            ),
            Err(e) => return Err(e),
        };
        let output = env
            .command(program)
            .args(args)
            .arg(name)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|source| UserError::Spawn {
                name: name.to_owned(),
                source,
            })?;
        if output.status.success() {
            continue;
        }
        String::from_utf8_lossy(&output.stderr)
            .trim()
            .clone_into(&mut last_detail);
        // useradd exit 9 / userdel exit 6: another process won the race; 10: /etc/passwd is
        // locked (both tools).
        match (program, output.status.code()) {
            ("useradd", Some(9 | 10)) | ("userdel", Some(6 | 10)) => {
                std::thread::sleep(Duration::from_millis(50 * u64::from(attempt + 1)));
            }
            _ => break,
        }
    }
    match SystemUser::lookup(name) {
        Ok(user) if user.uid() >= min_uid => Ok(user),
        Ok(_) | Err(UserError::NotFound { .. }) => Err(UserError::Create {
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
    fn login_range_start_is_read_from_login_defs() {
        let tmp = tempfile::tempdir().unwrap();
        let defs = tmp.path().join("login.defs");
        assert_eq!(
            login_uid_min(&defs).unwrap(),
            DEFAULT_UID_MIN,
            "missing file"
        );
        for (text, want) in [
            ("# UID_MIN 5\nUID_MAX 60000\n", DEFAULT_UID_MIN),
            ("UID_MIN\t\t\t 2000\n", 2000),
            ("UID_MIN 0x400\n", 1024),
            ("UID_MIN 0100\n", 64),
            ("UID_MIN 10\nUID_MIN 500\n", 500),
        ] {
            fs_err::write(&defs, text).unwrap();
            assert_eq!(login_uid_min(&defs).unwrap(), want, "{text:?}");
        }
        fs_err::write(&defs, "MAIL_DIR /var/mail\nUID_MIN many\n").unwrap();
        let err = login_uid_min(&defs).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("`many`"), "{err}");
    }

    #[test]
    fn system_accounts_and_root_are_no_site_users() {
        let root = SystemUser::lookup("root").unwrap();
        assert!(matches!(
            root.ensure_login_account(0),
            Err(UserError::Root { .. })
        ));
        let daemon = SystemUser::lookup("daemon").unwrap();
        let err = daemon.ensure_login_account(1000).unwrap_err().to_string();
        assert!(err.contains("`daemon`") && err.contains("1000"), "{err}");
        daemon.ensure_login_account(1).unwrap();
    }

    #[test]
    fn test_user_is_created_once_and_not_root() {
        let env = Env::from_process();
        let user = ensure_test_user(&env, "apsctl-test").expect("create test user");
        assert_ne!(user.uid(), 0);
        user.ensure_not_root().expect("not root");
        assert!(user.groups().contains(&user.gid()));
        assert_eq!(user.home(), Path::new("/home/apsctl-test"));
        let min = login_uid_min(Path::new(LOGIN_DEFS)).unwrap();
        user.ensure_login_account(min).expect("a login account");
        // Second call finds it.
        let again = ensure_test_user(&env, "apsctl-test").expect("find test user");
        assert_eq!(again, user);
    }
}
