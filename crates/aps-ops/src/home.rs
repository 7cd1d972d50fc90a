//! The controller's home: where every file apsctl owns lives.
//!
//! ```text
//! <home>/
//!   store.sqlite3            the store (aps-store): repository index, sites, servers, instances, journal
//!   repository/<ref>.app.zip the original archive of every imported package
//!   staging/                 private scratch folders of running operations (removed on exit)
//!   locks/                   operation locks: instance-<id>.lock, site-<name>.lock (root only, 0700)
//!   instances/<id>/          per-instance private folder (REFERENCE §4.3): meta/, scripts/, tmp/, lock
//!   servers/<name>.pw        apsctl's own 0600 copy of a database server's admin password
//!   databases/               SQLite databases of instances (never inside a web root)
//!   probes/                  root's probe scripts a site's PHP-FPM runs for a moment (0711, files 0644)
//!   last-instance-id         the highest instance id handed out (ids are never reused)
//!   secret.key               the key sealing password-type values in the store (crate::vault)
//! ```
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Environment variable naming the home (CLI.md); `--home` wins over it.
pub const HOME_VAR: &str = "APSCTL_HOME";

/// Default home for root (a system service) and for other users.
pub fn default_home(is_root: bool, user_home: Option<&Path>) -> PathBuf {
    if is_root {
        PathBuf::from("/var/lib/apsctl")
    } else {
        user_home.map_or_else(
            || PathBuf::from(".apsctl"),
            |h| h.join(".local/share/apsctl"),
        )
    }
}

/// The layout of a controller home.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// Opens (creating when missing) the home at `root`, with mode 0700 on the folders apsctl creates.
    pub fn open(root: &Path) -> Result<Self, Error> {
        // Absolute, because scripts run in their private folder: every path apsctl derives from
        // the home (script, working directory, SQLite files) must mean the same there.
        let home = Self {
            root: std::path::absolute(root).map_err(|e| Error::io(root, e))?,
        };
        // Site users must traverse the home to reach their instance's private scripts and their
        // SQLite databases (0711: no listing); everything else stays private to apsctl.
        for dir in [
            home.root.clone(),
            home.instances(),
            home.databases(),
            home.probes(),
        ] {
            create_dir_with_mode(&dir, 0o711)?;
        }
        for dir in [
            home.repository(),
            home.staging(),
            home.servers(),
            home.locks(),
        ] {
            create_dir_with_mode(&dir, 0o700)?;
        }
        Ok(home)
    }

    /// Checks that site users can reach the home's instance folders: every folder from `/` to
    /// the home must be searchable by others (scripts run as the site's user, with their private
    /// copy below the home as the working directory).
    pub fn check_reachable(&self) -> Result<(), Error> {
        use std::os::unix::fs::PermissionsExt;
        for dir in self.root.ancestors() {
            let mode = fs_err::metadata(dir)?.permissions().mode();
            if mode & 0o001 == 0 {
                return Err(Error::Invalid(format!(
                    "site users cannot reach apsctl's home `{}`: folder `{}` (mode {:o}) is not searchable by others; \
                     give it `o+x` or use a home such as /var/lib/apsctl",
                    self.root.display(),
                    dir.display(),
                    mode & 0o7777
                )));
            }
        }
        Ok(())
    }

    /// The home folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// The store file.
    pub fn store(&self) -> PathBuf {
        self.root.join("store.sqlite3")
    }
    /// The highest instance id handed out so far.
    pub fn last_instance_id(&self) -> PathBuf {
        self.root.join("last-instance-id")
    }
    /// The key that seals secrets in the store (0600).
    pub fn secret_key(&self) -> PathBuf {
        self.root.join("secret.key")
    }
    /// The package repository folder.
    pub fn repository(&self) -> PathBuf {
        self.root.join("repository")
    }
    /// Scratch folders of running operations.
    pub fn staging(&self) -> PathBuf {
        self.root.join("staging")
    }

    /// An archive apsctl keeps for the length of an operation on instance `id`, named by its
    /// `purpose` (`safety`, `upgrade`) and the time (UTC, to the second) it is made `at`.
    pub fn staging_archive(&self, purpose: &str, id: &str, at: std::time::SystemTime) -> PathBuf {
        let stamp = humantime::format_rfc3339_seconds(at)
            .to_string()
            .replace([':', '-'], "");
        self.staging()
            .join(format!("{purpose}-instance-{id}-{stamp}.tar.zst"))
    }

    /// Where probe scripts for a site's PHP-FPM are written (0711: the pool's user reads the one
    /// file it is asked to run, and can neither list nor write anything).
    pub fn probes(&self) -> PathBuf {
        self.root.join("probes")
    }
    /// Operation locks (only root may open them: a site user holding one could block every
    /// operation on the instance).
    pub fn locks(&self) -> PathBuf {
        self.root.join("locks")
    }
    /// The operation lock of an instance.
    pub fn instance_lock(&self, id: &str) -> PathBuf {
        self.locks().join(format!("instance-{id}.lock"))
    }
    /// The lock an install holds on its site while it reserves its place.
    pub fn site_lock(&self, site: &str) -> PathBuf {
        self.locks().join(format!("site-{site}.lock"))
    }
    /// Per-instance private folders.
    pub fn instances(&self) -> PathBuf {
        self.root.join("instances")
    }
    /// The private folder of one instance.
    pub fn instance(&self, id: &str) -> PathBuf {
        self.instances().join(id)
    }
    /// apsctl's copies of database admin passwords.
    pub fn servers(&self) -> PathBuf {
        self.root.join("servers")
    }
    /// SQLite databases of instances.
    pub fn databases(&self) -> PathBuf {
        self.root.join("databases")
    }
}

/// Creates `dir` (and parents) when it does not exist yet, and gives it exactly `mode` (whatever
/// the umask; an existing folder of the home is set back to it).
fn create_dir_with_mode(dir: &Path, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(dir)
            .map_err(|source| Error::io(dir, source))?;
    }
    fs_err::set_permissions(dir, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}
