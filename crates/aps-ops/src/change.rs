//! What apsctl changes on the system: the one vocabulary of the journal's undo data and of the
//! system changes an instance keeps (REFERENCE §8.0 undo table, §8.10 step 4.2).
//!
//! Main decision: a [`Change`] says what was done, not how to undo it. The journal records each
//! change before it is made and marks it done after; `undo.rs` turns a change and how far
//! it got (its [`Stage`]) into the undo, checking before it destroys anything that what it finds
//! is what the change made (see `undo.rs` for the proofs). The changes an instance keeps
//! after its install (folders created above its root, and later web-server configuration) are
//! the same values, stored with the instance and rolled back by its removal through the same
//! code. New kinds of change (a restored database, a web-server configuration file, a replaced
//! file) are new variants here and new arms in `undo.rs`.
//!
//! Known gap: journal rows written by apsctl before this vocabulary existed are not read; an
//! operation such a version left unfinished is reported by `recover` for manual action.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// One change apsctl makes to the system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum Change {
    /// A folder apsctl created in its own home (an instance's private folder). Undo: remove it.
    HomeFolder {
        /// The folder.
        path: PathBuf,
    },
    /// The instance's row in the store, in state `installing` until the install commits. Undo:
    /// delete the row and its records.
    InstanceRecord {
        /// The instance id.
        instance: String,
    },
    /// A folder apsctl created in a site for an instance root: made by root with mode 0700, and
    /// handed to the site's user only once filled. Undo: remove it with everything in it.
    SiteFolder {
        /// The site's document root.
        docroot: PathBuf,
        /// The folder, relative to the document root.
        rel: String,
    },
    /// An existing empty folder of a site (an empty folder, or the document root itself) that
    /// apsctl claimed for an instance root: made root's and 0700 while it is filled, so that
    /// nobody sees or plants anything in it. Undo: remove what is in it (it was empty) and give
    /// it back its owner and mode. Kept by the instance as a system change: its removal empties
    /// the folder by the file choice and gives it back, never removes it.
    ClaimedFolder {
        /// The site's document root.
        docroot: PathBuf,
        /// The folder, relative to the document root (empty for the document root).
        rel: String,
        /// Its owner before.
        uid: u32,
        /// Its group before.
        gid: u32,
        /// Its permission bits before.
        mode: u32,
    },
    /// A folder created above an instance root for a nested path (kept by the instance as a
    /// system change). Undo: remove it when it is empty.
    ParentFolder {
        /// The site's document root.
        docroot: PathBuf,
        /// The folder, relative to the document root.
        rel: String,
    },
    /// A site folder whose permission bits apsctl changed (access closed during a removal).
    /// Undo: give it its mode back.
    FolderMode {
        /// The site's document root.
        docroot: PathBuf,
        /// The folder, relative to the document root (empty for the document root).
        rel: String,
        /// Its permission bits before.
        mode: u32,
    },
    /// A database and its login on a registered server, carrying `marker` as the proof that
    /// this operation made them. Undo: drop whichever of the two is proven ours.
    Database {
        /// The registered server (`db-server add` name).
        server: String,
        /// The database (for SQLite the database's name, not the file's path).
        name: String,
        /// The login (empty where the server has none).
        login: String,
        /// The proof left on what the creation made.
        marker: String,
        /// The login's password, sealed ([`crate::vault`]): authenticating with it proves a
        /// login ours.
        password: String,
    },
    /// A file apsctl creates for the length of an operation (a backup archive being written
    /// beside its destination, the `BACKUP_FILE` of a backup script). Undo: remove it.
    TempFile {
        /// The file.
        path: PathBuf,
    },
    /// The instance's web server configuration file (`<web-dir>/apsctl-instance-<id>.conf`) set
    /// to a new text: served by its mapping, or closed with 503. Undo: put `previous` back (none:
    /// remove the file) and reload the server. Kept by the instance (from its install) as a system
    /// change, whose undo removes the file.
    WebConfig {
        /// The site (its web server folder, test and reload commands).
        site: String,
        /// The instance.
        instance: String,
        /// The file's text before; `None` when there was no file.
        previous: Option<String>,
    },
    /// The instance's configuration file in a web server folder named here rather than through
    /// a site (`site update` moves a file between servers while the site record still names the
    /// old one). Undo: put `previous` back in `dir` (none: remove the file) and run `reload`.
    WebConfigIn {
        /// The web server folder (`--web-dir`).
        dir: PathBuf,
        /// The server's reload command there, when it has one.
        reload: Option<String>,
        /// The instance.
        instance: String,
        /// The file's text before; `None` when there was no file.
        previous: Option<String>,
    },
    /// The files and databases of an instance being updated, with the safety backup that holds
    /// them as they were and its root's owner and mode before. Undo: the instance put back in
    /// place from the archive (`upgrade.rs`).
    UpgradeData {
        /// The instance.
        instance: String,
        /// The safety backup.
        archive: PathBuf,
        /// The root's owner before.
        uid: u32,
        /// The root's group before.
        gid: u32,
        /// The root's permission bits before.
        mode: u32,
    },
    /// The private `meta/` and `scripts/` of an instance replaced by a new package's (the old
    /// ones kept as `meta.old`, `scripts.old` until the commit). Undo: the old ones put back.
    PrivateCopy {
        /// The instance's private folder.
        private: PathBuf,
    },
    /// A run of the instance's configuration script. Undo: for `install`, `configure remove`
    /// (§11 Q27); for `configure`, `configure configure` again with the stored values, so that
    /// the application agrees with the store; `remove` is never undone (it is the removal's
    /// commit point).
    Script {
        /// The instance.
        instance: String,
        /// `install`, `configure`, `remove`, …
        action: String,
    },
}

/// How far a journaled change got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Recorded before acting; the act may have happened partly, wholly or not at all (a crash).
    Started,
    /// The act completed.
    Done,
    /// The act reported failure; it may have left part of its work.
    Failed,
}

impl Change {
    /// The change as the JSON kept in the journal and in an instance's system changes.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// Reads a change written by [`Change::to_json`].
    pub fn from_json(json: &str) -> Result<Self, Error> {
        serde_json::from_str(json).map_err(|e| {
            Error::Failed(format!(
                "journal entry `{json}` is not a change this apsctl knows: {e}"
            ))
        })
    }

    /// The tag naming the variant (`home-folder`, `database`, …), also the kind of an
    /// instance's system change.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::HomeFolder { .. } => "home-folder",
            Self::InstanceRecord { .. } => "instance-record",
            Self::SiteFolder { .. } => "site-folder",
            Self::ClaimedFolder { .. } => "claimed-folder",
            Self::ParentFolder { .. } => "parent-folder",
            Self::FolderMode { .. } => "folder-mode",
            Self::Database { .. } => "database",
            Self::TempFile { .. } => "temp-file",
            Self::UpgradeData { .. } => "upgrade-data",
            Self::PrivateCopy { .. } => "private-copy",
            Self::WebConfig { .. } => "web-config",
            Self::WebConfigIn { .. } => "web-config-in",
            Self::Script { .. } => "script",
        }
    }

    /// Reads an instance's stored system change. Besides [`Change::to_json`] rows it reads the
    /// `created-folder` rows (`{"path": rel}`) of stores written by apsctl 0.1.
    pub fn from_system_change(
        kind: &str,
        data_json: &str,
        docroot: &std::path::Path,
    ) -> Result<Self, Error> {
        if kind == LEGACY_CREATED_FOLDER {
            let data: serde_json::Value = serde_json::from_str(data_json).unwrap_or_default();
            return match data["path"].as_str() {
                Some(rel) => Ok(Self::ParentFolder {
                    docroot: docroot.to_path_buf(),
                    rel: rel.to_owned(),
                }),
                None => Err(Error::Failed(format!(
                    "system change `{kind}` `{data_json}` names no folder"
                ))),
            };
        }
        Self::from_json(data_json)
    }
}

/// The system-change kind apsctl 0.1 wrote for a folder created above an instance root.
const LEGACY_CREATED_FOLDER: &str = "created-folder";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_and_old_rows_are_read() {
        let change = Change::ClaimedFolder {
            docroot: "/srv/www".into(),
            rel: String::new(),
            uid: 1001,
            gid: 1001,
            mode: 0o750,
        };
        assert_eq!(Change::from_json(&change.to_json()).unwrap(), change);
        assert!(change.to_json().contains(r#""change":"claimed-folder""#));
        assert_eq!(change.kind(), "claimed-folder");
        assert_eq!(
            Change::from_system_change(
                "created-folder",
                r#"{"path":"a/b"}"#,
                std::path::Path::new("/srv/www")
            )
            .unwrap(),
            Change::ParentFolder {
                docroot: "/srv/www".into(),
                rel: "a/b".into()
            }
        );
        assert!(Change::from_json(r#"{"undo":"remove-tree","path":"/x"}"#).is_err());
    }
}
