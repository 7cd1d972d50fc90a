//! Registered web sites (`site add/list/show/remove`): where instances are installed.
//!
//! Main decision: a site row is what the administrator registered, nothing probed; `aps-host`
//! turns it into a live site adapter. Removing a site is refused while instances are on it;
//! [`Sites::update`] changes its URL, PHP and web server, never its document root or user.

use std::path::PathBuf;

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::{Failure, Object, StoreError};
use crate::sql::{enum_at, opt_path_at, opt_path_text, path_at, path_text, text_enum};
use crate::{Store, Timestamp};

text_enum! {
    /// How a site's web server is configured (`--web`).
    pub enum WebKind in "sites.web_kind" {
        /// apsctl writes no web-server configuration.
        None = "none",
        /// nginx: apsctl writes `*.conf` files into the site's `web_dir`.
        Nginx = "nginx",
        /// Apache httpd: apsctl writes `*.conf` files into the site's `web_dir`.
        Apache = "apache",
    }
}

/// A registered web site.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Site {
    /// The site's name; unique.
    pub name: String,
    /// Its document root; the directory tree is the URL structure.
    pub docroot: PathBuf,
    /// Its public URL (scheme, host, optional port and path).
    pub url: String,
    /// The system user its files belong to and its scripts run as.
    pub system_user: String,
    /// The PHP CLI its scripts use; `None` for the default one.
    pub php: Option<PathBuf>,
    /// How its web server is configured.
    pub web: WebKind,
    /// The folder of `*.conf` files the site's server block / virtual host includes (owned by
    /// apsctl); set when `web` is not [`WebKind::None`].
    pub web_dir: Option<PathBuf>,
    /// The command that makes the web server reload.
    pub web_reload: Option<String>,
    /// The command that runs the web server's own configuration test (exit 0: valid).
    #[serde(default)]
    pub web_test: Option<String>,
    /// Where PHP-FPM listens for this site: `unix:/path` or `host:port`.
    pub php_fastcgi: Option<String>,
    /// When the site was registered.
    pub created_at: Timestamp,
}

/// The site queries; from [`Store::sites`].
#[derive(Debug, Clone, Copy)]
pub struct Sites<'s> {
    store: &'s Store,
}

const COLUMNS: &str = "name, docroot, url, system_user, php, web_kind, web_dir, web_reload, php_fastcgi, created_at, web_test";

impl<'s> Sites<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Self { store }
    }

    /// Registers `site`; [`StoreErrorKind::Conflict`](crate::StoreErrorKind::Conflict) if its name is taken.
    pub fn insert(&self, site: &Site) -> Result<(), StoreError> {
        let action = format!("add site `{}`", site.name);
        self.store.write(&action, |c| {
            if exists(c, &site.name)? {
                return Err(StoreError::already_exists(Object::Site(site.name.clone())).into());
            }
            c.execute(
                &format!(
                    "INSERT INTO sites ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                ),
                params![
                    site.name,
                    path_text(&site.docroot)?,
                    site.url,
                    site.system_user,
                    opt_path_text(site.php.as_deref())?,
                    site.web.as_str(),
                    opt_path_text(site.web_dir.as_deref())?,
                    site.web_reload,
                    site.php_fastcgi,
                    site.created_at.unix_millis(),
                    site.web_test,
                ],
            )?;
            Ok(())
        })
    }

    /// The site `name`; [`StoreErrorKind::NotFound`](crate::StoreErrorKind::NotFound) if absent.
    pub fn get(&self, name: &str) -> Result<Site, StoreError> {
        let action = format!("read site `{name}`");
        self.store.read(&action, |c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM sites WHERE name = ?1"),
                [name],
                from_row,
            )
            .optional()?
            .ok_or_else(|| StoreError::not_found(Object::Site(name.to_owned())).into())
        })
    }

    /// Every site, ordered by name.
    pub fn list(&self) -> Result<Vec<Site>, StoreError> {
        self.store.read("list sites", |c| {
            let mut stmt = c.prepare(&format!("SELECT {COLUMNS} FROM sites ORDER BY name"))?;
            let rows = stmt.query_map([], from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Replaces what can change of the registered site `site.name` (`site update`): its URL, PHP
    /// and web server fields. Its document root, user and `created_at` stay as registered.
    /// [`StoreErrorKind::NotFound`](crate::StoreErrorKind::NotFound) if absent.
    pub fn update(&self, site: &Site) -> Result<(), StoreError> {
        let action = format!("update site `{}`", site.name);
        self.store.write(&action, |c| {
            let changed = c.execute(
                "UPDATE sites SET url = ?2, php = ?3, web_kind = ?4, web_dir = ?5, \
                 web_reload = ?6, php_fastcgi = ?7, web_test = ?8 WHERE name = ?1",
                params![
                    site.name,
                    site.url,
                    opt_path_text(site.php.as_deref())?,
                    site.web.as_str(),
                    opt_path_text(site.web_dir.as_deref())?,
                    site.web_reload,
                    site.php_fastcgi,
                    site.web_test,
                ],
            )?;
            if changed == 0 {
                return Err(StoreError::not_found(Object::Site(site.name.clone())).into());
            }
            Ok(())
        })
    }

    /// Unregisters the site `name`.
    ///
    /// Refused ([`StoreErrorKind::Conflict`](crate::StoreErrorKind::Conflict), naming the instances) while
    /// instances are on it; [`StoreErrorKind::NotFound`](crate::StoreErrorKind::NotFound) if absent.
    pub fn delete(&self, name: &str) -> Result<(), StoreError> {
        let action = format!("remove site `{name}`");
        self.store.write(&action, |c| {
            let object = || Object::Site(name.to_owned());
            if !exists(c, name)? {
                return Err(StoreError::not_found(object()).into());
            }
            let users = crate::instances::ids_where(c, "site", name)?;
            if !users.is_empty() {
                return Err(StoreError::in_use(object(), users).into());
            }
            c.execute("DELETE FROM sites WHERE name = ?1", [name])?;
            Ok(())
        })
    }
}

/// Whether the site `name` exists.
pub(crate) fn exists(c: &Connection, name: &str) -> Result<bool, Failure> {
    Ok(c.query_row(
        "SELECT EXISTS (SELECT 1 FROM sites WHERE name = ?1)",
        [name],
        |row| row.get(0),
    )?)
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Site> {
    Ok(Site {
        name: row.get(0)?,
        docroot: path_at(row, 1)?,
        url: row.get(2)?,
        system_user: row.get(3)?,
        php: opt_path_at(row, 4)?,
        web: enum_at(row, 5)?,
        web_dir: opt_path_at(row, 6)?,
        web_reload: row.get(7)?,
        php_fastcgi: row.get(8)?,
        created_at: Timestamp::from_unix_millis(row.get(9)?),
        web_test: row.get(10)?,
    })
}
