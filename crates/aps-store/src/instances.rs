//! Application instances and what apsctl recorded for each: settings, databases, deployed files
//! and system changes (REFERENCE §8.3 step 13, §8.10, D10, D11).
//!
//! Main decision: an instance and all its records are written in ONE transaction
//! ([`Instances::commit`], [`Instances::replace`]) and deleted in one ([`Instances::delete`],
//! by `ON DELETE CASCADE`), so the store never holds half an instance. File records are
//! inserted with one prepared statement inside that transaction (thousands of rows per install).
//! Paths of file records are relative to the instance root, `/`-separated, as the caller gives
//! them.
//!
//! **Known gap: secrets are stored in clear.** Setting values (including password-type ones,
//! marked [`Setting::secret`]) and database passwords ([`InstanceDatabase::password`]) are kept
//! exactly as given. REFERENCE §11 Q31 proposes encrypting password-type values at rest; that is
//! not built (no key management decided yet). Until then the only protection is the store file's
//! mode 0600 (set by [`Store::open`](crate::Store::open)) and the home's permissions. Callers must
//! still never print secrets (`instance show` prints `"***"` for values with `secret` set).

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::{Failure, Object, Repr, StoreError};
use crate::servers::DbKind;
use crate::sql::{enum_at, int, text_enum};
use crate::{Store, Timestamp};

text_enum! {
    /// Where an instance is in its life cycle.
    pub enum InstanceState in "instances.state" {
        /// Being installed.
        Installing = "installing",
        /// Installed and serving.
        Ready = "ready",
        /// Disabled (`configure disable`; its URLs answer 503).
        Disabled = "disabled",
        /// Being removed.
        Removing = "removing",
        /// An operation failed and left it needing attention.
        Failed = "failed",
    }
}

text_enum! {
    /// What a file record is.
    pub enum FileKind in "instance_files.kind" {
        /// A regular file.
        File = "file",
        /// A directory created by the deployment.
        Dir = "dir",
    }
}

/// An instance's own row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Instance {
    /// The instance id (chosen by the caller); unique.
    pub id: String,
    /// The site it is installed on.
    pub site: String,
    /// Its prefix under the site's document root (`/` or empty for the root, as the caller
    /// normalises it).
    pub prefix: String,
    /// Its public URL.
    pub url: String,
    /// The package version it runs.
    pub package_ref: String,
    /// Its life-cycle state.
    pub state: InstanceState,
    /// The `choice` alternatives selected at install (opaque JSON for the store).
    pub choices_json: String,
    /// When it was committed first.
    pub created_at: Timestamp,
    /// When its row or settings last changed.
    pub updated_at: Timestamp,
}

/// The package columns shown with an instance in lists.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PackageKey {
    /// The package reference.
    pub package_ref: String,
    /// The package identity.
    pub identity: String,
    /// The application name.
    pub name: String,
    /// The application version.
    pub version: String,
    /// The package release.
    pub release: String,
}

/// An instance as `instance list` shows it: its row joined with its package.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InstanceSummary {
    /// The instance id.
    pub id: String,
    /// The site it is installed on.
    pub site: String,
    /// Its prefix under the site's document root.
    pub prefix: String,
    /// Its public URL.
    pub url: String,
    /// Its life-cycle state.
    pub state: InstanceState,
    /// The package version it runs.
    pub package: PackageKey,
    /// When it was committed first.
    pub created_at: Timestamp,
    /// When its row or settings last changed.
    pub updated_at: Timestamp,
}

/// One stored setting value of an instance (installation-only values are never stored).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Setting {
    /// The setting id from APP-META.xml.
    pub setting_id: String,
    /// The value, as passed to scripts (REFERENCE D6).
    pub value: String,
    /// Whether the value is a secret (password type): never shown, printed as `"***"`.
    pub secret: bool,
}

/// A database an instance uses (one per `db:db` requirement, REFERENCE D9).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InstanceDatabase {
    /// The requirement's `db:id`; unique within the instance.
    pub db_id: String,
    /// The database type.
    pub kind: DbKind,
    /// The registered server it lives on (`None` when it is on no registered server).
    pub server: Option<String>,
    /// The database name (for `SQLite`: the database file's absolute path).
    pub name: String,
    /// The login (empty for `SQLite`).
    pub login: String,
    /// The login's password (empty for `SQLite`). A secret; see the module doc.
    pub password: String,
    /// The host scripts connect to (empty for `SQLite`).
    pub host: String,
    /// The port scripts connect to (`None` for `SQLite`).
    pub port: Option<u16>,
    /// The server version exported to scripts.
    pub version: String,
    /// The table prefix, when the instance was given one.
    pub prefix: Option<String>,
    /// Whether it lives in a pre-existing database shared through the table `prefix` (so removal
    /// must drop only the prefixed tables, never the database).
    pub shared: bool,
}

/// A deployed application file or directory (REFERENCE D10).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InstanceFile {
    /// Path relative to the instance root, `/`-separated; unique within the instance.
    pub path: String,
    /// File or directory.
    pub kind: FileKind,
    /// Size in bytes (0 for directories).
    pub size: u64,
    /// Lowercase hex SHA-256 of the content (`None` for directories).
    pub sha256: Option<String>,
}

/// A change apsctl made on the system for an instance, with what is needed to roll it back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SystemChange {
    /// Its position in the order the changes were made (from 1); rollback goes in reverse.
    pub seq: u32,
    /// What kind of change it is (defined by the caller, e.g. `web-config`, `chmod`).
    pub kind: String,
    /// The change and its previous state (opaque JSON for the store).
    pub data_json: String,
}

/// A system change to record; the store gives it the next `seq`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewSystemChange {
    /// What kind of change it is.
    pub kind: String,
    /// The change and its previous state (opaque JSON for the store).
    pub data_json: String,
}

/// Everything stored about an instance, written in one transaction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewInstance {
    /// The instance id.
    pub id: String,
    /// The site it is installed on (must be registered).
    pub site: String,
    /// Its prefix under the site's document root.
    pub prefix: String,
    /// Its public URL.
    pub url: String,
    /// The package version it runs (must be in the repository).
    pub package_ref: String,
    /// Its life-cycle state.
    pub state: InstanceState,
    /// The `choice` alternatives selected (opaque JSON for the store).
    pub choices_json: String,
    /// Its settings (without installation-only values).
    pub settings: Vec<Setting>,
    /// Its databases (their servers, if any, must be registered).
    pub databases: Vec<InstanceDatabase>,
    /// Its deployed files and directories.
    pub files: Vec<InstanceFile>,
    /// The system changes made for it, in the order they were made (numbered from 1).
    pub system_changes: Vec<NewSystemChange>,
    /// The time of the commit: `created_at` for a new instance, `updated_at` always.
    pub at: Timestamp,
}

/// Which instances a `uniq` check compares with (REFERENCE §3.5.1, §11 Q13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerScope<'a> {
    /// `uniq="global"`: every instance of the package identity in this controller.
    Global,
    /// Only instances on this site.
    Site(&'a str),
    /// Only instances on sites of this system user (`uniq="owner"` when the owner is the user).
    SystemUser(&'a str),
}

/// The question behind a `uniq` check: which values does `setting_id` have elsewhere?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingValuesQuery<'a> {
    /// Instances of packages with this identity (any version) are compared.
    pub package_identity: &'a str,
    /// The setting compared.
    pub setting_id: &'a str,
    /// Which instances count.
    pub scope: OwnerScope<'a>,
    /// The instance being configured, left out of the answer (`None` at install).
    pub exclude_instance: Option<&'a str>,
}

/// A value a setting has in another instance (an answer to [`SettingValuesQuery`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SettingUse {
    /// The instance holding the value.
    pub instance: String,
    /// Its site.
    pub site: String,
    /// The value.
    pub value: String,
}

/// The instance queries; from [`Store::instances`].
#[derive(Debug, Clone, Copy)]
pub struct Instances<'s> {
    store: &'s Store,
}

const COLUMNS: &str =
    "id, site, prefix, url, package_ref, state, choices_json, created_at, updated_at";

impl<'s> Instances<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Self { store }
    }

    /// Stores a new instance with all its records in one transaction.
    ///
    /// [`StoreErrorKind::Conflict`](crate::StoreErrorKind::Conflict) if the id is taken or two records share
    /// a key; [`StoreErrorKind::NotFound`](crate::StoreErrorKind::NotFound) if its site, package or a
    /// database server is not registered.
    pub fn commit(&self, instance: &NewInstance) -> Result<(), StoreError> {
        let action = format!("store instance `{}`", instance.id);
        self.store.write(&action, |c| {
            if exists(c, &instance.id)? {
                return Err(
                    StoreError::already_exists(Object::Instance(instance.id.clone())).into(),
                );
            }
            check_references(c, instance)?;
            c.execute(
                &format!(
                    "INSERT INTO instances ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)"
                ),
                params![
                    instance.id,
                    instance.site,
                    instance.prefix,
                    instance.url,
                    instance.package_ref,
                    instance.state.as_str(),
                    instance.choices_json,
                    instance.at.unix_millis(),
                ],
            )?;
            insert_records(c, instance)
        })
    }

    /// Replaces an existing instance's row and all its records in one transaction (after an
    /// update or a restore over it); `created_at` is kept.
    ///
    /// [`StoreErrorKind::NotFound`](crate::StoreErrorKind::NotFound) if the instance, its site, package or
    /// a database server does not exist.
    pub fn replace(&self, instance: &NewInstance) -> Result<(), StoreError> {
        let action = format!("replace instance `{}`", instance.id);
        self.store.write(&action, |c| {
            require(c, &instance.id)?;
            check_references(c, instance)?;
            c.execute(
                "UPDATE instances SET site = ?2, prefix = ?3, url = ?4, package_ref = ?5, \
                 state = ?6, choices_json = ?7, updated_at = ?8 WHERE id = ?1",
                params![
                    instance.id,
                    instance.site,
                    instance.prefix,
                    instance.url,
                    instance.package_ref,
                    instance.state.as_str(),
                    instance.choices_json,
                    instance.at.unix_millis(),
                ],
            )?;
            for table in CHILD_TABLES {
                c.execute(
                    &format!("DELETE FROM {table} WHERE instance = ?1"),
                    [&instance.id],
                )?;
            }
            insert_records(c, instance)
        })
    }

    /// The instance `id`'s row; [`StoreErrorKind::NotFound`](crate::StoreErrorKind::NotFound) if absent.
    pub fn get(&self, id: &str) -> Result<Instance, StoreError> {
        let action = format!("read instance `{id}`");
        self.store.read(&action, |c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM instances WHERE id = ?1"),
                [id],
                from_row,
            )
            .optional()?
            .ok_or_else(|| StoreError::not_found(Object::Instance(id.to_owned())).into())
        })
    }

    /// Every instance with its package, ordered by site, prefix and id.
    pub fn list(&self) -> Result<Vec<InstanceSummary>, StoreError> {
        self.store.read("list instances", |c| {
            let mut stmt = c.prepare(
                "SELECT i.id, i.site, i.prefix, i.url, i.state, i.created_at, i.updated_at, \
                 p.ref, p.identity, p.name, p.version, p.release \
                 FROM instances AS i JOIN packages AS p ON p.ref = i.package_ref \
                 ORDER BY i.site, i.prefix, i.id",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok(InstanceSummary {
                    id: row.get(0)?,
                    site: row.get(1)?,
                    prefix: row.get(2)?,
                    url: row.get(3)?,
                    state: enum_at(row, 4)?,
                    created_at: Timestamp::from_unix_millis(row.get(5)?),
                    updated_at: Timestamp::from_unix_millis(row.get(6)?),
                    package: PackageKey {
                        package_ref: row.get(7)?,
                        identity: row.get(8)?,
                        name: row.get(9)?,
                        version: row.get(10)?,
                        release: row.get(11)?,
                    },
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// The instance's settings, ordered by id.
    pub fn settings(&self, id: &str) -> Result<Vec<Setting>, StoreError> {
        self.children(
            id,
            "settings",
            "SELECT setting_id, value, is_secret FROM instance_settings WHERE instance = ?1 \
             ORDER BY setting_id",
            |row| {
                Ok(Setting {
                    setting_id: row.get(0)?,
                    value: row.get(1)?,
                    secret: row.get(2)?,
                })
            },
        )
    }

    /// The instance's databases, ordered by `db:id`.
    pub fn databases(&self, id: &str) -> Result<Vec<InstanceDatabase>, StoreError> {
        self.children(
            id,
            "databases",
            "SELECT db_id, kind, server, name, login, password, host, port, version, prefix, \
             shared FROM instance_databases WHERE instance = ?1 ORDER BY db_id",
            |row| {
                Ok(InstanceDatabase {
                    db_id: row.get(0)?,
                    kind: enum_at(row, 1)?,
                    server: row.get(2)?,
                    name: row.get(3)?,
                    login: row.get(4)?,
                    password: row.get(5)?,
                    host: row.get(6)?,
                    port: row.get(7)?,
                    version: row.get(8)?,
                    prefix: row.get(9)?,
                    shared: row.get(10)?,
                })
            },
        )
    }

    /// The instance's file records, ordered by path.
    pub fn files(&self, id: &str) -> Result<Vec<InstanceFile>, StoreError> {
        self.children(
            id,
            "file records",
            "SELECT path, kind, size, sha256 FROM instance_files WHERE instance = ?1 \
             ORDER BY path",
            |row| {
                Ok(InstanceFile {
                    path: row.get(0)?,
                    kind: enum_at(row, 1)?,
                    size: row.get(2)?,
                    sha256: row.get(3)?,
                })
            },
        )
    }

    /// The instance's system changes, in the order they were made.
    pub fn system_changes(&self, id: &str) -> Result<Vec<SystemChange>, StoreError> {
        self.children(
            id,
            "system changes",
            "SELECT seq, kind, data_json FROM system_changes WHERE instance = ?1 ORDER BY seq",
            |row| {
                Ok(SystemChange {
                    seq: row.get(0)?,
                    kind: row.get(1)?,
                    data_json: row.get(2)?,
                })
            },
        )
    }

    /// Sets each of `settings` on the instance (adding or replacing it; other settings stay) and
    /// its `updated_at`, in one transaction.
    pub fn update_settings(
        &self,
        id: &str,
        settings: &[Setting],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let action = format!("update the settings of instance `{id}`");
        self.store.write(&action, |c| {
            touch(c, id, at)?;
            let mut stmt = c.prepare_cached(
                "INSERT INTO instance_settings (instance, setting_id, value, is_secret) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (instance, setting_id) \
                 DO UPDATE SET value = excluded.value, is_secret = excluded.is_secret",
            )?;
            for s in settings {
                stmt.execute(params![id, s.setting_id, s.value, s.secret])?;
            }
            Ok(())
        })
    }

    /// Sets the instance's public URL and `updated_at` (its site's URL changed).
    pub fn set_url(&self, id: &str, url: &str, at: Timestamp) -> Result<(), StoreError> {
        let action = format!("set the URL of instance `{id}`");
        self.store.write(&action, |c| {
            touch(c, id, at)?;
            c.execute(
                "UPDATE instances SET url = ?2 WHERE id = ?1",
                params![id, url],
            )?;
            Ok(())
        })
    }

    /// Records one more database of the instance (an install records each as it creates it).
    pub fn add_database(&self, id: &str, db: &InstanceDatabase) -> Result<(), StoreError> {
        let action = format!("record database `{}` of instance `{id}`", db.db_id);
        self.store.write(&action, |c| {
            require(c, id)?;
            let inserted = insert_database(c, id, db);
            once(inserted, id, "database", &db.db_id)?;
            Ok(())
        })
    }

    /// Sets the instance's state and `updated_at`.
    pub fn set_state(
        &self,
        id: &str,
        state: InstanceState,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let action = format!("set the state of instance `{id}`");
        self.store.write(&action, |c| {
            touch(c, id, at)?;
            c.execute(
                "UPDATE instances SET state = ?2 WHERE id = ?1",
                params![id, state.as_str()],
            )?;
            Ok(())
        })
    }

    /// Records one more system change for the instance (e.g. the 503 block of `disable`) and
    /// returns its `seq`.
    pub fn append_system_change(
        &self,
        id: &str,
        change: &NewSystemChange,
        at: Timestamp,
    ) -> Result<u32, StoreError> {
        let action = format!("record a system change of instance `{id}`");
        self.store.write(&action, |c| {
            touch(c, id, at)?;
            let seq: u32 = c.query_row(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM system_changes WHERE instance = ?1",
                [id],
                |row| row.get(0),
            )?;
            c.execute(
                "INSERT INTO system_changes (instance, seq, kind, data_json) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![id, seq, change.kind, change.data_json],
            )?;
            Ok(seq)
        })
    }

    /// Forgets the database record `db_id` of the instance (a database an update created and
    /// its rollback dropped); nothing when there is none.
    pub fn delete_database(&self, id: &str, db_id: &str, at: Timestamp) -> Result<(), StoreError> {
        let action = format!("forget database `{db_id}` of instance `{id}`");
        self.store.write(&action, |c| {
            touch(c, id, at)?;
            c.execute(
                "DELETE FROM instance_databases WHERE instance = ?1 AND db_id = ?2",
                params![id, db_id],
            )?;
            Ok(())
        })
    }

    /// Forgets the system change `seq` of the instance (after rolling it back).
    /// [`StoreErrorKind::NotFound`](crate::StoreErrorKind::NotFound) if the instance or the change is absent.
    pub fn delete_system_change(
        &self,
        id: &str,
        seq: u32,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let action = format!("forget system change {seq} of instance `{id}`");
        self.store.write(&action, |c| {
            touch(c, id, at)?;
            let deleted = c.execute(
                "DELETE FROM system_changes WHERE instance = ?1 AND seq = ?2",
                params![id, seq],
            )?;
            if deleted == 0 {
                return Err(StoreError::not_found(Object::SystemChange {
                    instance: id.to_owned(),
                    seq,
                })
                .into());
            }
            Ok(())
        })
    }

    /// Deletes the instance and all its records in one transaction.
    /// [`StoreErrorKind::NotFound`](crate::StoreErrorKind::NotFound) if absent.
    pub fn delete(&self, id: &str) -> Result<(), StoreError> {
        let action = format!("delete instance `{id}`");
        self.store.write(&action, |c| {
            if c.execute("DELETE FROM instances WHERE id = ?1", [id])? == 0 {
                return Err(StoreError::not_found(Object::Instance(id.to_owned())).into());
            }
            Ok(())
        })
    }

    /// The values `query.setting_id` has in the other instances of the package identity within
    /// the scope, for `uniq` checks; ordered by instance id. The caller compares the values.
    pub fn setting_values(
        &self,
        query: &SettingValuesQuery<'_>,
    ) -> Result<Vec<SettingUse>, StoreError> {
        let action = format!(
            "look up the values of setting `{}` of package `{}`",
            query.setting_id, query.package_identity
        );
        let (site, user) = match query.scope {
            OwnerScope::Global => (None, None),
            OwnerScope::Site(site) => (Some(site), None),
            OwnerScope::SystemUser(user) => (None, Some(user)),
        };
        self.store.read(&action, |c| {
            let mut stmt = c.prepare(
                "SELECT i.id, i.site, s.value FROM instance_settings AS s \
                 JOIN instances AS i ON i.id = s.instance \
                 JOIN packages AS p ON p.ref = i.package_ref \
                 JOIN sites AS t ON t.name = i.site \
                 WHERE p.identity = ?1 AND s.setting_id = ?2 \
                 AND (?3 IS NULL OR i.site = ?3) AND (?4 IS NULL OR t.system_user = ?4) \
                 AND (?5 IS NULL OR i.id <> ?5) \
                 ORDER BY i.id",
            )?;
            let rows = stmt.query_map(
                params![
                    query.package_identity,
                    query.setting_id,
                    site,
                    user,
                    query.exclude_instance
                ],
                |row| {
                    Ok(SettingUse {
                        instance: row.get(0)?,
                        site: row.get(1)?,
                        value: row.get(2)?,
                    })
                },
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Reads rows of a child table of an existing instance.
    fn children<T>(
        self,
        id: &str,
        what: &str,
        sql: &str,
        from_row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let action = format!("read the {what} of instance `{id}`");
        self.store.read(&action, |c| {
            require(c, id)?;
            let mut stmt = c.prepare(sql)?;
            let rows = stmt.query_map([id], from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}

/// The tables holding an instance's records.
const CHILD_TABLES: [&str; 4] = [
    "instance_settings",
    "instance_databases",
    "instance_files",
    "system_changes",
];

/// The ids of the instances whose `column` (`site` or `package_ref`) is `value`, sorted.
pub(crate) fn ids_where(
    c: &Connection,
    column: &'static str,
    value: &str,
) -> Result<Vec<String>, Failure> {
    let mut stmt = c.prepare(&format!(
        "SELECT id FROM instances WHERE {column} = ?1 ORDER BY id"
    ))?;
    let ids = stmt.query_map([value], |row| row.get(0))?;
    Ok(ids.collect::<Result<_, _>>()?)
}

/// Whether the instance `id` exists.
fn exists(c: &Connection, id: &str) -> Result<bool, Failure> {
    Ok(c.query_row(
        "SELECT EXISTS (SELECT 1 FROM instances WHERE id = ?1)",
        [id],
        |row| row.get(0),
    )?)
}

/// Fails with `NotFound` unless the instance `id` exists.
fn require(c: &Connection, id: &str) -> Result<(), Failure> {
    if exists(c, id)? {
        Ok(())
    } else {
        Err(StoreError::not_found(Object::Instance(id.to_owned())).into())
    }
}

/// Sets the instance's `updated_at`; `NotFound` if it does not exist.
fn touch(c: &Connection, id: &str, at: Timestamp) -> Result<(), Failure> {
    let changed = c.execute(
        "UPDATE instances SET updated_at = ?2 WHERE id = ?1",
        params![id, at.unix_millis()],
    )?;
    if changed == 0 {
        return Err(StoreError::not_found(Object::Instance(id.to_owned())).into());
    }
    Ok(())
}

/// Fails with `NotFound` naming the first missing site, package or database server.
fn check_references(c: &Connection, instance: &NewInstance) -> Result<(), Failure> {
    if !crate::sites::exists(c, &instance.site)? {
        return Err(StoreError::not_found(Object::Site(instance.site.clone())).into());
    }
    if !crate::packages::exists(c, &instance.package_ref)? {
        return Err(StoreError::not_found(Object::Package(instance.package_ref.clone())).into());
    }
    for server in instance.databases.iter().filter_map(|d| d.server.as_ref()) {
        if !crate::servers::exists(c, server)? {
            return Err(StoreError::not_found(Object::DbServer(server.clone())).into());
        }
    }
    Ok(())
}

/// Inserts the settings, databases, files and system changes of `instance`.
fn insert_records(c: &Connection, instance: &NewInstance) -> Result<(), Failure> {
    let id = &instance.id;
    let mut stmt = c.prepare_cached(
        "INSERT INTO instance_settings (instance, setting_id, value, is_secret) \
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for s in &instance.settings {
        let inserted = stmt.execute(params![id, s.setting_id, s.value, s.secret]);
        once(inserted, id, "setting", &s.setting_id)?;
    }
    for d in &instance.databases {
        once(insert_database(c, id, d), id, "database", &d.db_id)?;
    }
    let mut stmt = c.prepare_cached(
        "INSERT INTO instance_files (instance, path, kind, size, sha256) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for f in &instance.files {
        let inserted = stmt.execute(params![
            id,
            f.path,
            f.kind.as_str(),
            int("file size", f.size)?,
            f.sha256,
        ]);
        once(inserted, id, "file", &f.path)?;
    }
    let mut stmt = c.prepare_cached(
        "INSERT INTO system_changes (instance, seq, kind, data_json) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (seq, change) in (1_i64..).zip(&instance.system_changes) {
        stmt.execute(params![id, seq, change.kind, change.data_json])?;
    }
    Ok(())
}

/// Inserts one database record of instance `id`.
fn insert_database(c: &Connection, id: &str, d: &InstanceDatabase) -> rusqlite::Result<usize> {
    c.prepare_cached(
        "INSERT INTO instance_databases (instance, db_id, kind, server, name, login, password, \
         host, port, version, prefix, shared) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        id,
        d.db_id,
        d.kind.as_str(),
        d.server,
        d.name,
        d.login,
        d.password,
        d.host,
        d.port,
        d.version,
        d.prefix,
        d.shared,
    ])
}

/// Turns a primary-key violation of an instance record into a message naming the record.
fn once(
    inserted: rusqlite::Result<usize>,
    instance: &str,
    what: &'static str,
    key: &str,
) -> Result<(), Failure> {
    match inserted {
        Ok(_) => Ok(()),
        Err(e)
            if e.sqlite_error().is_some_and(|e| {
                e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            }) =>
        {
            Err(Repr::DuplicateRecord {
                instance: instance.to_owned(),
                what,
                key: key.to_owned(),
            }
            .into())
        }
        Err(e) => Err(e.into()),
    }
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Instance> {
    Ok(Instance {
        id: row.get(0)?,
        site: row.get(1)?,
        prefix: row.get(2)?,
        url: row.get(3)?,
        package_ref: row.get(4)?,
        state: enum_at(row, 5)?,
        choices_json: row.get(6)?,
        created_at: Timestamp::from_unix_millis(row.get(7)?),
        updated_at: Timestamp::from_unix_millis(row.get(8)?),
    })
}
