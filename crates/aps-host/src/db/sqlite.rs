//! `SQLite` "server": database files in apsctl's private storage, handled with rusqlite.
//!
//! Main decision: each database gets its own directory, `<sqlite_dir>/<name>/<name>.sqlite`
//! (mode 0700 / 0600). `SQLite` writes its `-journal`/`-wal` files beside the database, so the site
//! user needs write access to the directory that holds it; a directory per database lets the
//! caller hand exactly that directory to the site user and nothing of other instances. There are
//! no logins: login, password, host and port are empty (§11 Q24), and "creating the login" is a
//! no-op. Dump and load use `SQLite`'s online backup API, so a dump is itself a database file and
//! is consistent even while the application writes.
//!
//! Proof of creator: the folder is made with `mkdir` (never `-p`: an existing folder is
//! [`DbError::DatabaseExists`]), and the first file in it is `.apsctl-owner` holding the
//! marker, written before the database file; the fault point `db-create` sits between the two.
//! So a folder whose `.apsctl-owner` holds the marker is the one that creation made. Folders
//! are handled through [`SafeDir`]: the marker is read without following links, and a drop
//! removes the folder with everything in it (the application's `-journal`/`-wal` files, or
//! anything the site user put there, since the folder is theirs) without following links.
//!
//! Known gaps: ownership of the directory and file is left to the caller (they are created
//! owned by apsctl's user; once the caller gives the folder to the site user, that user can
//! delete the marker, which makes the folder read as [`Owner::Foreign`] and leak on undo); the
//! version reported is the `SQLite` bundled into apsctl, not the one in the site's PHP.

use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::client;
use super::{
    ConnectionValues, DatabaseServer, DbError, DbSpec, MARKER_LIMIT, NameLimits, Owner, Ownership,
    Proof, ServerConfig, ServerType, ServerVersion,
};
use crate::safedir::{SafeDir, SafeDirError};

const KIND: ServerType = ServerType::Sqlite;

/// File name suffix of database files.
const SUFFIX: &str = ".sqlite";

/// Longest database name. Far below the file-name limit (255 bytes for `<name>.sqlite-journal`)
/// so the whole path stays within `SQLite`'s own path limit (512 bytes, [`PATH_LIMIT`]).
const NAME_LIMIT: usize = 64;

/// Longest path the `SQLite` Unix VFS opens (`MAX_PATHNAME`).
const PATH_LIMIT: usize = 512;

/// Longest companion file suffix (`-journal`).
const COMPANION_LIMIT: usize = 8;

/// The file in a database folder that holds the marker of the creation that made the folder.
const MARKER_FILE: &str = ".apsctl-owner";

/// Pages copied per backup step, and how long to wait when the source is busy.
const PAGES_PER_STEP: i32 = 1024;
const BUSY_PAUSE: Duration = Duration::from_millis(10);
/// Consecutive busy steps tolerated (about 30 seconds).
const BUSY_LIMIT: u32 = 3000;

/// Databases as files under one private directory.
pub(super) struct Sqlite {
    dir: PathBuf,
}

impl Sqlite {
    pub(super) fn new(config: &ServerConfig) -> Result<Self, DbError> {
        let dir = config
            .sqlite_dir
            .clone()
            .filter(|dir| dir.is_absolute())
            .ok_or_else(|| DbError::Config {
                server: KIND,
                reason: "an absolute directory for the database files is required".to_owned(),
            })?;
        // `<dir>/<name>/<name>.sqlite-journal` must fit in SQLite's path limit.
        let longest = dir.as_os_str().len() + 2 + 2 * NAME_LIMIT + SUFFIX.len() + COMPANION_LIMIT;
        if longest > PATH_LIMIT {
            return Err(DbError::Config {
                server: KIND,
                reason: format!(
                    "directory `{}` is too long for SQLite's {PATH_LIMIT}-byte path limit",
                    dir.display()
                ),
            });
        }
        Ok(Self { dir })
    }

    /// The directory of database `name`.
    fn db_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The database file of `name`.
    fn db_file(&self, name: &str) -> PathBuf {
        self.db_dir(name).join(format!("{name}{SUFFIX}"))
    }

    fn check_name(name: &str) -> Result<(), DbError> {
        super::check_common(KIND, "database name", name)?;
        super::check_length(KIND, "database name", name, NAME_LIMIT)?;
        if name.contains('/') || name.starts_with('.') {
            return Err(DbError::InvalidName {
                server: KIND,
                what: "database name",
                value: name.to_owned(),
                reason: "it must be a plain file name (no `/`, not starting with `.`)".to_owned(),
            });
        }
        Ok(())
    }

    /// Opens a database file without following a link in its last component (the folders of
    /// instance databases belong to their site users, who could plant a link to another
    /// database — apsctl's own store — in place of the file).
    fn open(path: &Path, flags: OpenFlags) -> Result<Connection, DbError> {
        Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NOFOLLOW).map_err(
            |source| DbError::Sqlite {
                action: "open",
                path: path.to_owned(),
                source,
            },
        )
    }

    /// The folder holding every database folder, created if missing.
    fn parent(&self) -> Result<SafeDir, DbError> {
        fs_err::create_dir_all(&self.dir).map_err(|source| DbError::Io {
            action: "create the SQLite database directory".to_owned(),
            source,
        })?;
        SafeDir::open(&self.dir)
            .map_err(|e| DbError::folder("open the SQLite database directory".to_owned(), e))
    }

    /// Creates the folder (refusing an existing one), the marker file, then the empty database
    /// file. On failure, removes the folder it made with whatever is in it.
    fn create_files(&self, spec: &DbSpec) -> Result<(), DbError> {
        let name = &spec.name;
        let parent = self.parent()?;
        let dir = parent.create_dir(name, 0o700).map_err(|e| {
            if e.source.kind() == io::ErrorKind::AlreadyExists {
                DbError::DatabaseExists {
                    server: KIND,
                    name: name.clone(),
                }
            } else {
                DbError::folder(format!("create the folder of SQLite database `{name}`"), e)
            }
        })?;
        let filled = write_new(&dir, MARKER_FILE, spec.marker.as_bytes())
            .and_then(|()| aps_failpoint::hit("db-create").map_err(DbError::from))
            .and_then(|()| write_new(&dir, &format!("{name}{SUFFIX}"), b""));
        if let Err(e) = filled {
            drop(dir);
            // The folder is the one this call just made; the original error is the one to report.
            let _ = parent.remove_tree(name);
            return Err(e);
        }
        Ok(())
    }

    /// Who made the folder of database `name`: whether its marker file holds `marker`.
    fn folder_owner(&self, name: &str, marker: &str) -> Result<Owner, DbError> {
        let action = || format!("read the marker of SQLite database `{name}`");
        let parent = match SafeDir::open(&self.dir) {
            Ok(parent) => parent,
            Err(e) if e.is_not_found() => return Ok(Owner::Absent),
            Err(e) => return Err(DbError::folder(action(), e)),
        };
        let dir = match parent.open_dir(name) {
            Ok(dir) => dir,
            Err(e) if e.is_not_found() => return Ok(Owner::Absent),
            // A file or a link in place of the folder: not what a creation makes.
            Err(e) if is_wrong_kind(&e) => return Ok(Owner::Foreign),
            Err(e) => return Err(DbError::folder(action(), e)),
        };
        let file = match dir.open_file(MARKER_FILE) {
            Ok(file) => file,
            Err(e) if e.is_not_found() || is_wrong_kind(&e) => return Ok(Owner::Foreign),
            // Something other than a regular file (a FIFO, a folder).
            Err(e) if e.source.kind() == io::ErrorKind::InvalidInput => return Ok(Owner::Foreign),
            Err(e) => return Err(DbError::folder(action(), e)),
        };
        let mut found = Vec::new();
        let limit = u64::try_from(MARKER_LIMIT).unwrap_or(u64::MAX) + 1;
        file.take(limit)
            .read_to_end(&mut found)
            .map_err(|source| DbError::Io {
                action: format!("read `{}`", dir.path().join(MARKER_FILE).display()),
                source,
            })?;
        Ok(if found == marker.as_bytes() {
            Owner::Ours(Proof::MarkerFile)
        } else {
            Owner::Foreign
        })
    }
}

/// Creates the file `name` in `dir` (failing if it exists), mode 0600, with `contents`, synced.
fn write_new(dir: &SafeDir, name: &str, contents: &[u8]) -> Result<(), DbError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    // `/proc/self/fd/N/<name>`: inside the folder just opened, whatever happens to its path.
    // Plain `std` so the error names the folder's real path (`shown`), not the `/proc` one.
    let path = dir.proc_path().join(name);
    let shown = dir.path().join(name);
    let io_err = |source| DbError::Io {
        action: format!("create `{}`", shown.display()),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io_err)?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(io_err)
}

/// Whether a folder operation failed because a link or a non-folder was in the way.
fn is_wrong_kind(error: &SafeDirError) -> bool {
    matches!(
        error.source.raw_os_error(),
        Some(libc::ELOOP | libc::ENOTDIR)
    )
}

impl DatabaseServer for Sqlite {
    fn kind(&self) -> ServerType {
        KIND
    }

    fn version(&self) -> Result<ServerVersion, DbError> {
        Ok(ServerVersion::parse(rusqlite::version(), "SQLite"))
    }

    fn name_limits(&self) -> Result<NameLimits, DbError> {
        Ok(NameLimits {
            database: NAME_LIMIT,
            login: None,
        })
    }

    fn database_exists(&self, name: &str) -> Result<bool, DbError> {
        Self::check_name(name)?;
        let dir = self.db_dir(name);
        match fs_err::symlink_metadata(&dir) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(DbError::Io {
                action: "look for the SQLite database directory".to_owned(),
                source,
            }),
        }
    }

    fn login_exists(&self, _login: &str) -> Result<bool, DbError> {
        Ok(false)
    }

    fn create_database(&self, spec: &DbSpec) -> Result<(), DbError> {
        Self::check_name(&spec.name)?;
        super::check_marker(KIND, &spec.marker)?;
        self.create_files(spec)?;
        let file = self.db_file(&spec.name);
        // Opening and reading the schema proves the file is a usable database.
        let checked = Self::open(&file, OpenFlags::SQLITE_OPEN_READ_WRITE).and_then(|conn| {
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |row| {
                row.get::<_, i64>(0)
            })
            .map_err(|source| DbError::Sqlite {
                action: "read the schema of",
                path: file.clone(),
                source,
            })
        });
        if let Err(e) = checked {
            let _ = self.drop_database(&spec.name);
            return Err(e);
        }
        Ok(())
    }

    fn empty_database(&self, spec: &DbSpec) -> Result<(), DbError> {
        Self::check_name(&spec.name)?;
        let file = self.db_file(&spec.name);
        if !is_plain_file(&file) {
            return Err(DbError::DatabaseMissing {
                server: KIND,
                name: spec.name.clone(),
            });
        }
        let mut target =
            Self::open(&file, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(|_| DbError::NotOurs {
                server: KIND,
                name: spec.name.clone(),
            })?;
        let empty = Connection::open_in_memory().map_err(|source| DbError::Sqlite {
            action: "open an empty database for",
            path: file.clone(),
            source,
        })?;
        copy(&empty, &mut target, &file)
    }

    fn ownership(&self, spec: &DbSpec) -> Result<Ownership, DbError> {
        Self::check_name(&spec.name)?;
        super::check_marker(KIND, &spec.marker)?;
        Ok(Ownership {
            database: self.folder_owner(&spec.name, &spec.marker)?,
            login: Owner::Absent,
        })
    }

    fn check_login(&self, spec: &DbSpec) -> Result<(), DbError> {
        Self::check_name(&spec.name)?;
        let file = self.db_file(&spec.name);
        if !is_plain_file(&file) {
            return Err(DbError::DatabaseMissing {
                server: KIND,
                name: spec.name.clone(),
            });
        }
        let conn = Self::open(&file, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |row| {
            row.get::<_, i64>(0)
        })
        .map(drop)
        .map_err(|source| DbError::Sqlite {
            action: "read the schema of",
            path: file,
            source,
        })
    }

    fn drop_database(&self, name: &str) -> Result<bool, DbError> {
        if !self.database_exists(name)? {
            return Ok(false);
        }
        // The folder is the site user's (the application writes its journal files there):
        // everything in it goes, and no link in it is followed.
        SafeDir::open(&self.dir)
            .and_then(|parent| parent.remove_tree(name))
            .map_err(|e| DbError::folder(format!("remove SQLite database `{name}`"), e))?;
        Ok(true)
    }

    fn drop_login(&self, _login: &str) -> Result<bool, DbError> {
        Ok(false)
    }

    fn dump_into(&self, name: &str, sink: &mut dyn io::Write) -> Result<u64, DbError> {
        Self::check_name(name)?;
        let file = self.db_file(name);
        if !is_plain_file(&file) {
            return Err(DbError::DatabaseMissing {
                server: KIND,
                name: name.to_owned(),
            });
        }
        // The online backup API needs a file: a copy in a folder of apsctl's own (0700).
        let scratch = private_scratch()?;
        let copy_path = scratch.path().join("dump.sqlite");
        let source = Self::open(&file, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        drop(client::create_dump_file(&copy_path)?);
        Self::open(&copy_path, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .and_then(|mut target| copy(&source, &mut target, &copy_path))?;
        let io_err = |source| DbError::Io {
            action: format!("stream the dump of SQLite database `{name}`"),
            source,
        };
        let mut copied = fs_err::File::open(&copy_path).map_err(io_err)?;
        io::copy(&mut copied, sink).map_err(io_err)
    }

    fn load_from(&self, spec: &DbSpec, source: &mut dyn io::Read) -> Result<(), DbError> {
        Self::check_name(&spec.name)?;
        let file = self.db_file(&spec.name);
        if !is_plain_file(&file) {
            return Err(DbError::DatabaseMissing {
                server: KIND,
                name: spec.name.clone(),
            });
        }
        let scratch = private_scratch()?;
        let from = scratch.path().join("load.sqlite");
        let io_err = |source| DbError::Io {
            action: format!("receive the dump for SQLite database `{}`", spec.name),
            source,
        };
        let mut received = client::create_dump_file(&from)?;
        io::copy(source, &mut received).map_err(io_err)?;
        drop(received);
        let dump = Self::open(&from, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        check_integrity(&dump, &from)?;
        let mut target = Self::open(&file, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        copy(&dump, &mut target, &file)
    }

    fn dump_extension(&self) -> &'static str {
        "sqlite"
    }

    fn connection_values(&self, spec: &DbSpec) -> ConnectionValues {
        ConnectionValues {
            name: self.db_file(&spec.name).to_string_lossy().into_owned(),
            login: String::new(),
            host: String::new(),
            port: String::new(),
        }
    }
}

/// Whether `path` is a regular file itself (not a link to one) with no other name (a hard link
/// to a file elsewhere would let writes through it reach that file).
fn is_plain_file(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    fs_err::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file() && m.nlink() == 1)
}

/// A temporary folder only apsctl can enter (the system's temporary folder, mode 0700), removed
/// when dropped.
fn private_scratch() -> Result<tempfile::TempDir, DbError> {
    tempfile::Builder::new()
        .prefix("apsctl-sqlite-")
        .tempdir()
        .map_err(|source| DbError::Io {
            action: "create a private temporary folder".to_owned(),
            source,
        })
}

/// Refuses a received dump that is not a sound SQLite database (`PRAGMA integrity_check`).
fn check_integrity(dump: &Connection, path: &Path) -> Result<(), DbError> {
    let answer: String = dump
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .map_err(|source| DbError::Sqlite {
            action: "check the integrity of",
            path: path.to_owned(),
            source,
        })?;
    if answer == "ok" {
        Ok(())
    } else {
        Err(DbError::UnexpectedOutput {
            program: path.to_owned(),
            action: "check the received SQLite dump".to_owned(),
            output: answer.chars().take(200).collect(),
        })
    }
}

/// Copies every page of `source` into `target` with the online backup API.
fn copy(source: &Connection, target: &mut Connection, target_path: &Path) -> Result<(), DbError> {
    let err = |source| DbError::Sqlite {
        action: "copy pages into",
        path: target_path.to_owned(),
        source,
    };
    let backup = Backup::new(source, target).map_err(err)?;
    let mut busy = 0;
    loop {
        match backup.step(PAGES_PER_STEP).map_err(err)? {
            StepResult::Done => return Ok(()),
            StepResult::More => busy = 0,
            StepResult::Busy | StepResult::Locked => {
                busy += 1;
                if busy > BUSY_LIMIT {
                    return Err(err(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                        Some("the database stayed locked for 30 seconds".to_owned()),
                    )));
                }
                thread::sleep(BUSY_PAUSE);
            }
            _ => thread::sleep(BUSY_PAUSE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_plain_file_names() {
        assert!(Sqlite::check_name("wp_1").is_ok());
        assert!(Sqlite::check_name(r#"it's "odd" \ `x`"#).is_ok());
        for bad in ["", "a/b", ".hidden", "..", "a\0b"] {
            assert!(Sqlite::check_name(bad).is_err(), "{bad:?}");
        }
        assert!(Sqlite::check_name(&"a".repeat(NAME_LIMIT)).is_ok());
        assert!(Sqlite::check_name(&"a".repeat(NAME_LIMIT + 1)).is_err());
    }

    #[test]
    fn relative_directories_are_refused() {
        assert!(Sqlite::new(&ServerConfig::sqlite("relative/dir")).is_err());
        assert!(Sqlite::new(&ServerConfig::sqlite("/abs/dir")).is_ok());
        let deep = format!("/{}", "d".repeat(400));
        assert!(Sqlite::new(&ServerConfig::sqlite(deep)).is_err());
    }
}
