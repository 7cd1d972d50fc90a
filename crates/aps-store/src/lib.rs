//! apsctl's persistent state in one `SQLite` database (WAL) under the controller's home.
//!
//! [`Store::open`] opens (creating it with mode 0600) `<home>/store.sqlite3`, sets the connection
//! up and applies the append-only migrations of `migrate.rs`. Each table group has a handle with
//! its queries: [`Store::packages`], [`Store::sites`], [`Store::db_servers`],
//! [`Store::instances`], [`Store::global_settings`], [`Store::jobs`] and [`Store::journal`]. Records go in and
//! out as plain structs; no `rusqlite` type appears in the API, and errors are one
//! [`StoreError`] whose [`StoreError::kind`] callers map to exit codes.
//!
//! Main decisions:
//! * **One file, WAL, one connection per [`Store`].** Readers never block the writer, so a
//!   `serve` daemon and CLI commands share the file; `busy_timeout` is 5 s. A [`Store`] is `Send`
//!   but not `Sync`: open one per thread.
//! * **`synchronous = FULL` for the whole connection.** The journal must survive a power loss,
//!   because its steps act on the outside world (files, databases, web-server configuration) and
//!   `recover` can only undo what was recorded. Per-statement settings would be easy to get
//!   wrong, and apsctl writes little (a few dozen commits per operation; bulk records are one
//!   transaction), so the cost of one WAL fsync per commit is accepted for every table.
//! * **Every write method is one transaction** (`BEGIN IMMEDIATE`, so it waits for the lock
//!   instead of failing on upgrade). [`Store::atomically`] groups several calls into one
//!   transaction; inside it, write methods become savepoints.
//! * **`foreign_keys = ON`**: instances reference their site and package, instance databases
//!   their server; deleting one of those while in use is refused (with a message listing the
//!   instances), and deleting an instance removes its records by `ON DELETE CASCADE`.
//! * **The store never reads the clock**: times are [`Timestamp`]s given by the caller.
//!
//! Known gaps: secrets are stored as given (see `instances.rs`); the journal is never pruned;
//! [`Packages::list`] orders versions as text, not by the D2 version order (that needs
//! `aps-meta`).

#![deny(missing_docs)]

mod error;
pub mod globals;
pub mod instances;
pub mod jobs;
pub mod journal;
pub mod kept;
mod migrate;
pub mod packages;
pub mod pool;
pub mod schedules;
pub mod servers;
pub mod sites;
mod sql;
pub mod time;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

pub use error::{StoreError, StoreErrorKind};
pub use globals::{GlobalSetting, GlobalSettings};
pub use instances::{
    FileKind, Instance, InstanceDatabase, InstanceFile, InstanceState, InstanceSummary, Instances,
    NewInstance, NewSystemChange, OwnerScope, PackageKey, Setting, SettingUse, SettingValuesQuery,
    SystemChange,
};
pub use jobs::{JobOutcome, JobRecord, JobState, Jobs};
pub use journal::{Journal, NewOperation, Operation, OperationId, Outcome, Step, StepState};
pub use kept::{KeptDatabase, KeptDatabases};
pub use packages::{Package, PackageSummary, Packages};
pub use pool::{PooledStore, StorePool};
pub use schedules::{Schedule, Schedules};
pub use servers::{DbKind, DbServer, DbServers};
pub use sites::{Site, Sites, WebKind};
pub use time::Timestamp;

use error::{Failure, Repr};

/// The file name of the store inside the controller's home.
pub const STORE_FILE_NAME: &str = "store.sqlite3";

/// How long a statement waits for another process's lock before failing with
/// [`StoreErrorKind::Busy`].
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema version this binary writes (the number of migrations it knows).
pub const SCHEMA_VERSION: usize = migrate::MIGRATIONS.len();

/// An open store: one `SQLite` connection to `<home>/store.sqlite3`.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens the store at `path`, creating the file (mode 0600) if it is missing, and brings its
    /// schema up to date.
    ///
    /// The parent directory must exist (the caller owns the home). An existing file readable by
    /// group or others is tightened to 0600, since the store holds secrets. A database written by
    /// a newer apsctl is refused ([`StoreErrorKind::Incompatible`]); a file that is not an `SQLite`
    /// database gives [`StoreErrorKind::Corrupt`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        create_private(path).map_err(|source| {
            StoreError::new(Repr::Create {
                path: path.to_owned(),
                source,
            })
        })?;
        let open_error = |failure: Failure| match failure {
            Failure::Store(e) => e,
            Failure::Sqlite(source) => StoreError::new(Repr::Open {
                path: path.to_owned(),
                source,
            }),
        };
        let store = Self::connect(path)?;
        migrate::migrate(&store.conn, migrate::MIGRATIONS, path).map_err(open_error)?;
        Ok(store)
    }

    /// Opens one more connection to a store that [`Store::open`] already created and migrated.
    pub(crate) fn connect(path: &Path) -> Result<Self, StoreError> {
        let open_error = |failure: Failure| match failure {
            Failure::Store(e) => e,
            Failure::Sqlite(source) => StoreError::new(Repr::Open {
                path: path.to_owned(),
                source,
            }),
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_error(e.into()))?;
        configure(&conn, path).map_err(open_error)?;
        Ok(Self {
            conn,
            path: path.to_owned(),
        })
    }

    /// The path this store was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// SQLite's `PRAGMA data_version` on this connection: it changes whenever another
    /// connection (of this process or another) committed since this one last asked. A cache of
    /// query results keyed by it, on a connection that never writes, is never stale.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        self.read("read the data version", |c| {
            Ok(c.query_row("PRAGMA data_version", [], |row| row.get(0))?)
        })
    }

    /// The repository of imported packages.
    pub fn packages(&self) -> Packages<'_> {
        Packages::new(self)
    }

    /// The registered web sites.
    pub fn sites(&self) -> Sites<'_> {
        Sites::new(self)
    }

    /// The registered database servers.
    pub fn db_servers(&self) -> DbServers<'_> {
        DbServers::new(self)
    }

    /// The saved values of packages' global settings, by package identity.
    pub fn global_settings(&self) -> GlobalSettings<'_> {
        GlobalSettings::new(self)
    }

    /// Application instances and everything recorded about them.
    pub fn instances(&self) -> Instances<'_> {
        Instances::new(self)
    }

    /// Periodic backups.
    pub fn schedules(&self) -> Schedules<'_> {
        Schedules::new(self)
    }

    /// Databases kept after their instance was removed.
    pub fn kept_databases(&self) -> KeptDatabases<'_> {
        KeptDatabases::new(self)
    }

    /// The operation journal (REFERENCE §8.0, D13).
    pub fn journal(&self) -> Journal<'_> {
        Journal::new(self)
    }

    /// The HTTP service's operations.
    pub fn jobs(&self) -> Jobs<'_> {
        Jobs::new(self)
    }

    /// Runs `f` in one transaction: everything it writes through `store` is committed together
    /// when it returns `Ok`, and nothing is when it returns `Err` (or panics).
    ///
    /// Use it for REFERENCE §8.0 step 4, "commit the new instance state and the operation record
    /// in one store transaction". Journal writes made inside are durable only at the commit.
    /// Calls nest: an inner `atomically` is a savepoint.
    pub fn atomically<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, E>,
    ) -> Result<T, E> {
        let action = "begin a transaction";
        let tx = Tx::begin(&self.conn, TxBehavior::Immediate)
            .map_err(|e| self.error(action, e.into()))?;
        let value = f(self)?;
        tx.commit()
            .map_err(|e| self.error("commit a transaction", e.into()))?;
        Ok(value)
    }

    /// Runs a read in one (deferred) transaction, so that its queries see one snapshot.
    pub(crate) fn read<T>(
        &self,
        action: &str,
        f: impl FnOnce(&Connection) -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        self.run(TxBehavior::Deferred, action, f)
    }

    /// Runs a write in one IMMEDIATE transaction (or a savepoint inside [`Self::atomically`]).
    pub(crate) fn write<T>(
        &self,
        action: &str,
        f: impl FnOnce(&Connection) -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        self.run(TxBehavior::Immediate, action, f)
    }

    fn run<T>(
        &self,
        behavior: TxBehavior,
        action: &str,
        f: impl FnOnce(&Connection) -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        let inner = || {
            let tx = Tx::begin(&self.conn, behavior)?;
            let value = f(&self.conn)?;
            tx.commit()?;
            Ok(value)
        };
        inner().map_err(|failure| self.error(action, failure))
    }

    /// Gives a failure its context: what the store was doing, and where.
    fn error(&self, action: &str, failure: Failure) -> StoreError {
        match failure {
            Failure::Store(e) => e,
            Failure::Sqlite(source) => StoreError::new(Repr::Sqlite {
                action: action.to_owned(),
                path: self.path.clone(),
                source,
            }),
        }
    }
}

/// Creates `path` with mode 0600 if missing; tightens an existing file to 0600.
///
/// An existing file is never opened here: closing a descriptor of the database file would drop
/// every POSIX lock this process holds on it, including those of its live `SQLite` connections
/// (a service's pool), and another process could then checkpoint and reset the WAL under them —
/// the classic way to corrupt an `SQLite` database. Its mode is fixed by path instead.
fn create_private(path: &Path) -> std::io::Result<()> {
    use fs_err::os::unix::fs::OpenOptionsExt as _;
    use std::os::unix::fs::PermissionsExt as _;

    match fs_err::symlink_metadata(path) {
        Ok(meta) => {
            if meta.permissions().mode() & 0o077 != 0 {
                fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A new file: no connection of this process can have it open yet.
            fs_err::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map(drop)
                .or_else(|e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
        }
        Err(e) => Err(e),
    }
}

/// Sets the connection's pragmas: busy timeout, WAL, foreign keys, FULL synchronous.
fn configure(conn: &Connection, path: &Path) -> Result<(), Failure> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Repr::NoWal {
            path: path.to_owned(),
            mode,
        }
        .into());
    }
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
}

/// How a transaction takes the database lock.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TxBehavior {
    /// Lock when first needed (reads).
    Deferred,
    /// Take the write lock at once, waiting up to the busy timeout (writes).
    Immediate,
    /// Take the write lock and keep readers out (migrations).
    Exclusive,
}

/// A transaction, or a savepoint when one is already open; rolled back on drop unless committed.
pub(crate) struct Tx<'c> {
    conn: &'c Connection,
    nested: bool,
    open: bool,
}

impl<'c> Tx<'c> {
    /// Begins a transaction with `behavior`, or a savepoint inside an open transaction.
    pub(crate) fn begin(conn: &'c Connection, behavior: TxBehavior) -> rusqlite::Result<Self> {
        let nested = !conn.is_autocommit();
        let sql = if nested {
            "SAVEPOINT aps_store"
        } else {
            match behavior {
                TxBehavior::Deferred => "BEGIN DEFERRED",
                TxBehavior::Immediate => "BEGIN IMMEDIATE",
                TxBehavior::Exclusive => "BEGIN EXCLUSIVE",
            }
        };
        conn.execute_batch(sql)?;
        Ok(Self {
            conn,
            nested,
            open: true,
        })
    }

    /// Commits (or releases the savepoint); on failure the drop rolls back.
    pub(crate) fn commit(mut self) -> rusqlite::Result<()> {
        let sql = if self.nested {
            "RELEASE aps_store"
        } else {
            "COMMIT"
        };
        self.conn.execute_batch(sql)?;
        self.open = false;
        Ok(())
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open {
            let sql = if self.nested {
                "ROLLBACK TO aps_store; RELEASE aps_store"
            } else {
                "ROLLBACK"
            };
            // Nothing useful can be done with a failed rollback here: `SQLite` rolls back an
            // unfinished transaction itself when the connection closes.
            let _ = self.conn.execute_batch(sql);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_transactions_roll_back_only_their_part() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join(STORE_FILE_NAME)).unwrap();
        store.conn.execute_batch("CREATE TABLE t (x)").unwrap();
        let result: Result<(), StoreError> = store.atomically(|s| {
            s.write("insert 1", |c| {
                c.execute("INSERT INTO t VALUES (1)", [])?;
                Ok(())
            })?;
            let inner: Result<(), StoreError> = s.write("insert 2", |c| {
                c.execute("INSERT INTO t VALUES (2)", [])?;
                Err(Repr::NotUtf8 { path: "x".into() }.into())
            });
            assert!(inner.is_err());
            Ok(())
        });
        result.unwrap();
        let rows: Vec<i64> = store
            .conn
            .prepare("SELECT x FROM t")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, [1]);
        assert!(store.conn.is_autocommit());
    }

    #[test]
    fn a_failed_atomically_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join(STORE_FILE_NAME)).unwrap();
        store.conn.execute_batch("CREATE TABLE t (x)").unwrap();
        let result: Result<(), StoreError> = store.atomically(|s| {
            s.write("insert", |c| {
                c.execute("INSERT INTO t VALUES (1)", [])?;
                Ok(())
            })?;
            Err(StoreError::new(Repr::NotUtf8 { path: "x".into() }))
        });
        assert!(result.is_err());
        let count: i64 = store
            .conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 0);
        assert!(store.conn.is_autocommit());
    }

    #[test]
    fn opening_a_database_at_each_earlier_version_upgrades_it() {
        for start in 0..migrate::MIGRATIONS.len() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(STORE_FILE_NAME);
            let old = Connection::open(&path).unwrap();
            migrate::migrate(&old, &migrate::MIGRATIONS[..start], &path).unwrap();
            drop(old);

            let store = Store::open(&path).unwrap();
            assert_eq!(
                migrate::user_version(&store.conn).unwrap(),
                i64::try_from(SCHEMA_VERSION).unwrap(),
                "upgrade from version {start}"
            );
            // The upgraded store is usable: a site and a journal entry round-trip.
            let site = Site {
                name: "a".into(),
                docroot: "/srv/a".into(),
                url: "https://a.test/".into(),
                system_user: "a".into(),
                php: None,
                web: WebKind::None,
                web_dir: None,
                web_reload: None,
                web_test: None,
                php_fastcgi: None,
                created_at: Timestamp::from_unix_millis(1),
            };
            store.sites().insert(&site).unwrap();
            assert_eq!(store.sites().list().unwrap(), [site]);
            let op = store
                .journal()
                .begin_operation(&NewOperation {
                    instance: None,
                    kind: "check".into(),
                    params_json: "{}".into(),
                    started_at: Timestamp::from_unix_millis(2),
                    pid: 1,
                    host: "h".into(),
                })
                .unwrap();
            assert_eq!(store.journal().unfinished_operations().unwrap()[0].id, op);
        }
    }

    #[test]
    fn pragmas_are_set() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join(STORE_FILE_NAME)).unwrap();
        let get = |name: &str| -> String {
            store
                .conn
                .query_row(&format!("PRAGMA {name}"), [], |r| {
                    r.get::<_, rusqlite::types::Value>(0)
                })
                .map(|v| format!("{v:?}"))
                .unwrap()
        };
        assert_eq!(get("journal_mode"), "Text(\"wal\")");
        assert_eq!(get("foreign_keys"), "Integer(1)");
        assert_eq!(get("synchronous"), "Integer(2)"); // FULL
        assert_eq!(get("busy_timeout"), "Integer(5000)");
    }
}
