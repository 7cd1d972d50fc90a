//! Databases kept on their server after their instance was removed (`remove --keep-databases`).
//!
//! Main decision: a kept database stays known. Its connection values (the password sealed by the
//! caller, like every secret in the store) outlive the instance, so the administrator can list
//! it, reach it, and drop it with its login later; a database server holding kept databases
//! cannot be unregistered.

use rusqlite::{OptionalExtension, Row, params};

use crate::error::{Failure, Object, StoreError};
use crate::servers::DbKind;
use crate::sql::enum_at;
use crate::{Store, Timestamp};

/// A database kept after its instance was removed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeptDatabase {
    /// Its id in the store (assigned on insert; ignored by [`KeptDatabases::insert`]).
    pub id: i64,
    /// The removed instance it belonged to.
    pub instance: String,
    /// That instance's site.
    pub site: String,
    /// The `db:id` it served.
    pub db_id: String,
    /// Its type.
    pub kind: DbKind,
    /// The registered server holding it (`None` for none).
    pub server: Option<String>,
    /// Database name (`SQLite`: the file's path).
    pub name: String,
    /// Its login.
    pub login: String,
    /// The login's password, sealed by the caller.
    pub password: String,
    /// Host.
    pub host: String,
    /// Port.
    pub port: Option<u16>,
    /// When the instance was removed.
    pub kept_at: Timestamp,
}

/// The kept-database queries; from [`Store::kept_databases`].
#[derive(Debug, Clone, Copy)]
pub struct KeptDatabases<'s> {
    store: &'s Store,
}

const COLUMNS: &str =
    "id, instance, site, db_id, kind, server, name, login, password, host, port, kept_at";

impl<'s> KeptDatabases<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Self { store }
    }

    /// Records a kept database and returns its id.
    pub fn insert(&self, kept: &KeptDatabase) -> Result<i64, StoreError> {
        let action = format!("record kept database `{}`", kept.name);
        self.store.write(&action, |c| {
            c.execute(
                "INSERT INTO kept_databases (instance, site, db_id, kind, server, name, login, \
                 password, host, port, kept_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    kept.instance,
                    kept.site,
                    kept.db_id,
                    kept.kind.as_str(),
                    kept.server,
                    kept.name,
                    kept.login,
                    kept.password,
                    kept.host,
                    kept.port,
                    kept.kept_at.unix_millis(),
                ],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Every kept database, oldest first.
    pub fn list(&self) -> Result<Vec<KeptDatabase>, StoreError> {
        self.store.read("list kept databases", |c| {
            let mut stmt =
                c.prepare(&format!("SELECT {COLUMNS} FROM kept_databases ORDER BY id"))?;
            let rows = stmt.query_map([], from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// The kept database `id`; [`StoreErrorKind::NotFound`](crate::StoreErrorKind::NotFound) if absent.
    pub fn get(&self, id: i64) -> Result<KeptDatabase, StoreError> {
        let action = format!("read kept database {id}");
        self.store.read(&action, |c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM kept_databases WHERE id = ?1"),
                [id],
                from_row,
            )
            .optional()?
            .ok_or_else(|| StoreError::not_found(Object::KeptDatabase(id)).into())
        })
    }

    /// Forgets the kept database `id` (after dropping it).
    pub fn delete(&self, id: i64) -> Result<(), StoreError> {
        let action = format!("forget kept database {id}");
        self.store.write(&action, |c| {
            if c.execute("DELETE FROM kept_databases WHERE id = ?1", [id])? == 0 {
                return Err(StoreError::not_found(Object::KeptDatabase(id)).into());
            }
            Ok(())
        })
    }
}

/// The ids of the kept databases on server `name`, as "kept database N" (for in-use refusals).
pub(crate) fn on_server(c: &rusqlite::Connection, name: &str) -> Result<Vec<String>, Failure> {
    let mut stmt = c.prepare("SELECT id FROM kept_databases WHERE server = ?1 ORDER BY id")?;
    let ids = stmt
        .query_map([name], |row| row.get::<_, i64>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ids
        .into_iter()
        .map(|id| format!("kept database {id}"))
        .collect())
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<KeptDatabase> {
    Ok(KeptDatabase {
        id: row.get(0)?,
        instance: row.get(1)?,
        site: row.get(2)?,
        db_id: row.get(3)?,
        kind: enum_at(row, 4)?,
        server: row.get(5)?,
        name: row.get(6)?,
        login: row.get(7)?,
        password: row.get(8)?,
        host: row.get(9)?,
        port: row.get(10)?,
        kept_at: Timestamp::from_unix_millis(row.get(11)?),
    })
}
