//! The package repository's records: one row per imported package version (REFERENCE §2.6, §8.1).
//!
//! Main decision: the store does not interpret packages. The parsed `aps-meta` model and the lint
//! findings are opaque JSON text written and read by the caller; only what the store must search
//! or refuse on is kept in columns (identity and version key, unique together).
//!
//! Known gap: [`Packages::list`] orders versions as text (so `10` sorts before `9`); callers that
//! need the D2 version order sort with `aps-meta`.

use std::path::PathBuf;

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::{Failure, Object, StoreError};
use crate::sql::{path_at, path_text};
use crate::{Store, Timestamp};

/// A package in the repository, without its (large) metadata and lint JSON.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PackageSummary {
    /// The stable reference `package import` printed; chosen by the caller, unique.
    pub package_ref: String,
    /// The package identity (REFERENCE §2.6): the 1.2 `id`, else name plus packager URI, as the
    /// caller encodes it. Identity, version and release are unique together.
    pub identity: String,
    /// The application name from APP-META.xml.
    pub name: String,
    /// The application version.
    pub version: String,
    /// The package release.
    pub release: String,
    /// The APS format version of the package (`1.0`, `1.1`, `1.2`).
    pub aps_version: String,
    /// The 1.2 application `id`, when present.
    pub app_id: Option<String>,
    /// The packager URI, when present.
    pub packager_uri: Option<String>,
    /// Where the repository keeps the package's archive.
    pub archive_path: PathBuf,
    /// When the package was imported.
    pub imported_at: Timestamp,
}

/// A package in the repository with its metadata and lint findings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Package {
    /// The searchable columns.
    #[serde(flatten)]
    pub summary: PackageSummary,
    /// The serialized `aps-meta` package model (opaque to the store).
    pub meta_json: String,
    /// The serialized lint findings from import (opaque to the store).
    pub lint_json: String,
}

/// The repository's queries; from [`Store::packages`].
#[derive(Debug, Clone, Copy)]
pub struct Packages<'s> {
    store: &'s Store,
}

const SUMMARY_COLUMNS: &str = "ref, identity, name, version, release, aps_version, app_id, \
                               packager_uri, archive_path, imported_at";

impl<'s> Packages<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Self { store }
    }

    /// Adds `package` to the repository.
    ///
    /// [`StoreErrorKind::Conflict`](crate::StoreErrorKind::Conflict) when its reference is taken or a
    /// package with the same identity, version and release is already there.
    pub fn insert(&self, package: &Package) -> Result<(), StoreError> {
        let s = &package.summary;
        let action = format!("import package `{}`", s.package_ref);
        self.store.write(&action, |c| {
            if exists(c, &s.package_ref)? {
                return Err(StoreError::already_exists(Object::Package(s.package_ref.clone())).into());
            }
            let same: Option<String> = c
                .query_row(
                    "SELECT ref FROM packages WHERE identity = ?1 AND version = ?2 AND release = ?3",
                    params![s.identity, s.version, s.release],
                    |row| row.get(0),
                )
                .optional()?;
            if same.is_some() {
                return Err(StoreError::already_exists(Object::PackageVersion {
                    identity: s.identity.clone(),
                    version: s.version.clone(),
                    release: s.release.clone(),
                })
                .into());
            }
            c.execute(
                "INSERT INTO packages (ref, identity, name, version, release, aps_version, \
                 app_id, packager_uri, archive_path, imported_at, meta_json, lint_json) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    s.package_ref,
                    s.identity,
                    s.name,
                    s.version,
                    s.release,
                    s.aps_version,
                    s.app_id,
                    s.packager_uri,
                    path_text(&s.archive_path)?,
                    s.imported_at.unix_millis(),
                    package.meta_json,
                    package.lint_json,
                ],
            )?;
            Ok(())
        })
    }

    /// The package `package_ref`; [`StoreErrorKind::NotFound`](crate::StoreErrorKind::NotFound) if absent.
    pub fn get(&self, package_ref: &str) -> Result<Package, StoreError> {
        let action = format!("read package `{package_ref}`");
        self.store.read(&action, |c| {
            c.query_row(
                &format!(
                    "SELECT {SUMMARY_COLUMNS}, meta_json, lint_json FROM packages WHERE ref = ?1"
                ),
                [package_ref],
                |row| {
                    Ok(Package {
                        summary: summary_from_row(row)?,
                        meta_json: row.get(10)?,
                        lint_json: row.get(11)?,
                    })
                },
            )
            .optional()?
            .ok_or_else(|| StoreError::not_found(Object::Package(package_ref.to_owned())).into())
        })
    }

    /// Every package, ordered by name, then version and release (as text).
    pub fn list(&self) -> Result<Vec<PackageSummary>, StoreError> {
        self.store.read("list packages", |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {SUMMARY_COLUMNS} FROM packages ORDER BY name, version, release, ref"
            ))?;
            let rows = stmt.query_map([], summary_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// The package with `identity`, `version` and `release`, if it is in the repository.
    pub fn find(
        &self,
        identity: &str,
        version: &str,
        release: &str,
    ) -> Result<Option<PackageSummary>, StoreError> {
        let action = format!("look up package `{identity}` {version}-{release}");
        self.store.read(&action, |c| {
            Ok(c.query_row(
                &format!(
                    "SELECT {SUMMARY_COLUMNS} FROM packages \
                     WHERE identity = ?1 AND version = ?2 AND release = ?3"
                ),
                params![identity, version, release],
                summary_from_row,
            )
            .optional()?)
        })
    }

    /// Every version of the package with `identity`, ordered by version and release (as text).
    pub fn find_by_identity(&self, identity: &str) -> Result<Vec<PackageSummary>, StoreError> {
        let action = format!("find the versions of package `{identity}`");
        self.store.read(&action, |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {SUMMARY_COLUMNS} FROM packages WHERE identity = ?1 \
                 ORDER BY version, release, ref"
            ))?;
            let rows = stmt.query_map([identity], summary_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Removes the package `package_ref` from the repository.
    ///
    /// Refused ([`StoreErrorKind::Conflict`](crate::StoreErrorKind::Conflict), naming the instances) while an
    /// instance uses it; [`StoreErrorKind::NotFound`](crate::StoreErrorKind::NotFound) if absent.
    pub fn delete(&self, package_ref: &str) -> Result<(), StoreError> {
        let action = format!("remove package `{package_ref}`");
        self.store.write(&action, |c| {
            let object = || Object::Package(package_ref.to_owned());
            if !exists(c, package_ref)? {
                return Err(StoreError::not_found(object()).into());
            }
            let users = crate::instances::ids_where(c, "package_ref", package_ref)?;
            if !users.is_empty() {
                return Err(StoreError::in_use(object(), users).into());
            }
            c.execute("DELETE FROM packages WHERE ref = ?1", [package_ref])?;
            Ok(())
        })
    }
}

/// Whether the package `package_ref` exists.
pub(crate) fn exists(c: &Connection, package_ref: &str) -> Result<bool, Failure> {
    Ok(c.query_row(
        "SELECT EXISTS (SELECT 1 FROM packages WHERE ref = ?1)",
        [package_ref],
        |row| row.get(0),
    )?)
}

fn summary_from_row(row: &Row<'_>) -> rusqlite::Result<PackageSummary> {
    Ok(PackageSummary {
        package_ref: row.get(0)?,
        identity: row.get(1)?,
        name: row.get(2)?,
        version: row.get(3)?,
        release: row.get(4)?,
        aps_version: row.get(5)?,
        app_id: row.get(6)?,
        packager_uri: row.get(7)?,
        archive_path: path_at(row, 8)?,
        imported_at: Timestamp::from_unix_millis(row.get(9)?),
    })
}
