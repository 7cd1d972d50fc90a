//! Registered database servers (`db-server add/list/remove`) that apsctl may create databases and
//! logins on.
//!
//! Main decision: the admin password is never stored here; the row keeps the path of apsctl's own
//! 0600 copy of the password file, which the caller writes and deletes. Removing a server is
//! refused while an instance database lives on it.

use std::path::PathBuf;

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::{Failure, Object, StoreError};
use crate::sql::{enum_at, opt_path_at, opt_path_text, text_enum};
use crate::{Store, Timestamp};

text_enum! {
    /// A database server type (REFERENCE D9); also the type of an instance database.
    pub enum DbKind in "db_servers.kind" {
        /// `MySQL` or `MariaDB`.
        Mysql = "mysql",
        /// `PostgreSQL`.
        Postgresql = "postgresql",
        /// `SQLite`: database files in apsctl's private storage, no host.
        Sqlite = "sqlite",
    }
}

/// A registered database server.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DbServer {
    /// The server's name; unique.
    pub name: String,
    /// Its type.
    pub kind: DbKind,
    /// Host name or address (`None` for `SQLite`, or the client default).
    pub host: Option<String>,
    /// TCP port (`None` for the type's default).
    pub port: Option<u16>,
    /// The administrative login apsctl uses.
    pub admin_user: Option<String>,
    /// The path of apsctl's own 0600 copy of the admin password (never the password itself).
    pub admin_password_file: Option<PathBuf>,
    /// The server version found when it was registered, if probed.
    pub version: Option<String>,
    /// When the server was registered.
    pub created_at: Timestamp,
}

/// The database-server queries; from [`Store::db_servers`].
#[derive(Debug, Clone, Copy)]
pub struct DbServers<'s> {
    store: &'s Store,
}

const COLUMNS: &str =
    "name, kind, host, port, admin_user, admin_password_file, version, created_at";

impl<'s> DbServers<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Self { store }
    }

    /// Registers `server`; [`StoreErrorKind::Conflict`](crate::StoreErrorKind::Conflict) if its name is
    /// taken.
    pub fn insert(&self, server: &DbServer) -> Result<(), StoreError> {
        let action = format!("add database server `{}`", server.name);
        self.store.write(&action, |c| {
            if exists(c, &server.name)? {
                return Err(
                    StoreError::already_exists(Object::DbServer(server.name.clone())).into(),
                );
            }
            c.execute(
                &format!(
                    "INSERT INTO db_servers ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ),
                params![
                    server.name,
                    server.kind.as_str(),
                    server.host,
                    server.port,
                    server.admin_user,
                    opt_path_text(server.admin_password_file.as_deref())?,
                    server.version,
                    server.created_at.unix_millis(),
                ],
            )?;
            Ok(())
        })
    }

    /// The server `name`; [`StoreErrorKind::NotFound`](crate::StoreErrorKind::NotFound) if absent.
    pub fn get(&self, name: &str) -> Result<DbServer, StoreError> {
        let action = format!("read database server `{name}`");
        self.store.read(&action, |c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM db_servers WHERE name = ?1"),
                [name],
                from_row,
            )
            .optional()?
            .ok_or_else(|| StoreError::not_found(Object::DbServer(name.to_owned())).into())
        })
    }

    /// Every server, ordered by name.
    pub fn list(&self) -> Result<Vec<DbServer>, StoreError> {
        self.store.read("list database servers", |c| {
            let mut stmt = c.prepare(&format!("SELECT {COLUMNS} FROM db_servers ORDER BY name"))?;
            let rows = stmt.query_map([], from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Unregisters the server `name`.
    ///
    /// Refused ([`StoreErrorKind::Conflict`](crate::StoreErrorKind::Conflict), naming the instances) while
    /// an instance database uses it; [`StoreErrorKind::NotFound`](crate::StoreErrorKind::NotFound) if absent.
    pub fn delete(&self, name: &str) -> Result<(), StoreError> {
        let action = format!("remove database server `{name}`");
        self.store.write(&action, |c| {
            let object = || Object::DbServer(name.to_owned());
            if !exists(c, name)? {
                return Err(StoreError::not_found(object()).into());
            }
            let mut stmt = c.prepare(
                "SELECT DISTINCT instance FROM instance_databases WHERE server = ?1 \
                 ORDER BY instance",
            )?;
            let mut users = stmt
                .query_map([name], |row| row.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            users.extend(crate::kept::on_server(c, name)?);
            if !users.is_empty() {
                return Err(StoreError::in_use(object(), users).into());
            }
            c.execute("DELETE FROM db_servers WHERE name = ?1", [name])?;
            Ok(())
        })
    }
}

/// Whether the server `name` exists.
pub(crate) fn exists(c: &Connection, name: &str) -> Result<bool, Failure> {
    Ok(c.query_row(
        "SELECT EXISTS (SELECT 1 FROM db_servers WHERE name = ?1)",
        [name],
        |row| row.get(0),
    )?)
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<DbServer> {
    Ok(DbServer {
        name: row.get(0)?,
        kind: enum_at(row, 1)?,
        host: row.get(2)?,
        port: row.get(3)?,
        admin_user: row.get(4)?,
        admin_password_file: opt_path_at(row, 5)?,
        version: row.get(6)?,
        created_at: Timestamp::from_unix_millis(row.get(7)?),
    })
}
