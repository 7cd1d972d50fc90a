//! The store's error type: one opaque [`StoreError`] whose [`kind`](StoreError::kind) tells the
//! caller what to do with it (exit code, HTTP status).
//!
//! Main decision: the error is opaque (a boxed private enum) so that no `rusqlite` type leaks into
//! the public API; the `SQLite` error stays reachable through [`std::error::Error::source`]. Every
//! message is one sentence naming the object ("site `a` already exists") or, for `SQLite` failures,
//! the action and the store's path.

use std::fmt;
use std::path::PathBuf;

use rusqlite::ErrorCode;

/// What kind of failure a [`StoreError`] is; callers map this to exit codes and HTTP statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreErrorKind {
    /// The named object (package, site, server, instance, operation, step) does not exist.
    NotFound,
    /// The change would break a rule of the store: a duplicate name or key, an object still in use,
    /// a journal step in the wrong state.
    Conflict,
    /// Another process held the database lock for longer than the busy timeout; retrying may work.
    Busy,
    /// The caller passed a value the store cannot keep (a non-UTF-8 path, a size above `i64::MAX`).
    Invalid,
    /// The database was written by a newer apsctl whose schema this binary does not know.
    Incompatible,
    /// The file is not an `SQLite` database, is damaged, or holds a value this binary cannot read.
    Corrupt,
    /// The file could not be created, opened, read or written (permissions, disk full, I/O error).
    Io,
    /// Anything else (an `SQLite` failure that fits none of the kinds above).
    Other,
}

/// An error from the store. Its message names the object or the store's path; see
/// [`kind`](Self::kind) for its category.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct StoreError(Box<Repr>);

impl StoreError {
    /// The category of this error.
    pub fn kind(&self) -> StoreErrorKind {
        match &*self.0 {
            Repr::Create { .. } | Repr::NoWal { .. } => StoreErrorKind::Io,
            Repr::Open { source, .. } | Repr::Sqlite { source, .. } => sqlite_kind(source),
            Repr::NewerSchema { .. } => StoreErrorKind::Incompatible,
            Repr::NotFound(_) => StoreErrorKind::NotFound,
            Repr::AlreadyExists(_)
            | Repr::InUse { .. }
            | Repr::DuplicateRecord { .. }
            | Repr::StepState { .. }
            | Repr::OperationFinished { .. } => StoreErrorKind::Conflict,
            Repr::NotUtf8 { .. } | Repr::TooLarge { .. } => StoreErrorKind::Invalid,
        }
    }

    pub(crate) fn new(repr: Repr) -> Self {
        Self(Box::new(repr))
    }

    pub(crate) fn not_found(object: Object) -> Self {
        Self::new(Repr::NotFound(object))
    }

    pub(crate) fn already_exists(object: Object) -> Self {
        Self::new(Repr::AlreadyExists(object))
    }

    pub(crate) fn in_use(object: Object, users: Vec<String>) -> Self {
        Self::new(Repr::InUse { object, users })
    }
}

/// The private shape of a [`StoreError`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum Repr {
    #[error("could not create the store `{}`", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not open the store `{}`", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "store `{}` cannot use write-ahead logging (SQLite kept journal mode `{mode}`)",
        path.display()
    )]
    NoWal { path: PathBuf, mode: String },
    #[error(
        "store `{}` was written by a newer apsctl (schema {found} > {known})",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: usize,
    },
    #[error("{}", .0.not_found_message())]
    NotFound(Object),
    #[error("{}", .0.exists_message())]
    AlreadyExists(Object),
    #[error("{object} is still used by {}", users_phrase(users))]
    InUse { object: Object, users: Vec<String> },
    #[error("instance `{instance}` lists {what} `{key}` twice")]
    DuplicateRecord {
        instance: String,
        what: &'static str,
        key: String,
    },
    #[error("step {seq} of operation {op} is `{found}`, so it cannot {change}")]
    StepState {
        op: i64,
        seq: u32,
        found: &'static str,
        change: &'static str,
    },
    #[error("operation {op} is already finished (`{outcome}`)")]
    OperationFinished { op: i64, outcome: &'static str },
    #[error("path `{}` is not valid UTF-8; the store keeps paths as text", path.display())]
    NotUtf8 { path: PathBuf },
    #[error(
        "{what} {value} is larger than the store can hold (at most {})",
        i64::MAX
    )]
    TooLarge { what: &'static str, value: u64 },
    #[error("could not {action} in the store `{}`", path.display())]
    Sqlite {
        action: String,
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

/// The object an error is about, displayed as "package `x`", "site `a`", ….
#[derive(Debug, Clone)]
pub(crate) enum Object {
    Package(String),
    PackageVersion {
        identity: String,
        version: String,
        release: String,
    },
    Site(String),
    DbServer(String),
    Instance(String),
    SystemChange {
        instance: String,
        seq: u32,
    },
    Operation(i64),
    KeptDatabase(i64),
    Schedule(i64),
    Step {
        op: i64,
        seq: u32,
    },
}

impl Object {
    fn not_found_message(&self) -> String {
        match self {
            Self::Package(_) | Self::PackageVersion { .. } => {
                format!("{self} is not in the repository")
            }
            Self::Site(_) | Self::DbServer(_) => format!("{self} is not registered"),
            Self::Instance(_) | Self::SystemChange { .. } => format!("{self} does not exist"),
            Self::Operation(_) | Self::Step { .. } => format!("{self} is not in the journal"),
            Self::KeptDatabase(_) | Self::Schedule(_) => format!("{self} is not recorded"),
        }
    }

    fn exists_message(&self) -> String {
        match self {
            Self::PackageVersion { .. } => format!("{self} is already in the repository"),
            _ => format!("{self} already exists"),
        }
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Package(r) => write!(f, "package `{r}`"),
            Self::PackageVersion {
                identity,
                version,
                release,
            } => write!(f, "package `{identity}` {version}-{release}"),
            Self::Site(name) => write!(f, "site `{name}`"),
            Self::DbServer(name) => write!(f, "database server `{name}`"),
            Self::Instance(id) => write!(f, "instance `{id}`"),
            Self::SystemChange { instance, seq } => {
                write!(f, "system change {seq} of instance `{instance}`")
            }
            Self::Operation(op) => write!(f, "operation {op}"),
            Self::KeptDatabase(id) => write!(f, "kept database {id}"),
            Self::Schedule(id) => write!(f, "backup schedule {id}"),
            Self::Step { op, seq } => write!(f, "step {seq} of operation {op}"),
        }
    }
}

/// "instance `a`" / "instances `a`, `b`" for [`Repr::InUse`]; users given as `kept database N`
/// (see `kept.rs`) are named as such.
fn users_phrase(users: &[String]) -> String {
    let (kept, instances): (Vec<&String>, Vec<&String>) =
        users.iter().partition(|u| u.starts_with("kept database "));
    let mut parts = Vec::new();
    if !instances.is_empty() {
        let list = instances
            .iter()
            .map(|u| format!("`{u}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let noun = if instances.len() == 1 {
            "instance"
        } else {
            "instances"
        };
        parts.push(format!("{noun} {list}"));
    }
    parts.extend(kept.into_iter().cloned());
    parts.join(", ")
}

/// Sorts an `SQLite` error into an [`StoreErrorKind`].
fn sqlite_kind(error: &rusqlite::Error) -> StoreErrorKind {
    match error {
        rusqlite::Error::SqliteFailure(e, _) => match e.code {
            ErrorCode::ConstraintViolation => StoreErrorKind::Conflict,
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreErrorKind::Busy,
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => StoreErrorKind::Corrupt,
            ErrorCode::SystemIoFailure
            | ErrorCode::CannotOpen
            | ErrorCode::DiskFull
            | ErrorCode::ReadOnly
            | ErrorCode::PermissionDenied
            | ErrorCode::NoLargeFileSupport => StoreErrorKind::Io,
            _ => StoreErrorKind::Other,
        },
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::Utf8Error(_) => StoreErrorKind::Corrupt,
        _ => StoreErrorKind::Other,
    }
}

/// A failure inside a store method before it is given its context (action and path).
///
/// Internal helpers return this so that `?` works on both `rusqlite` errors and the store's own
/// errors; [`crate::Store`] turns it into a [`StoreError`] at the public boundary.
#[derive(Debug)]
pub(crate) enum Failure {
    Sqlite(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sqlite(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<Repr> for Failure {
    fn from(r: Repr) -> Self {
        Self::Store(StoreError::new(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_object() {
        let e = StoreError::not_found(Object::Package("wp-5.2".into()));
        assert_eq!(e.to_string(), "package `wp-5.2` is not in the repository");
        assert_eq!(e.kind(), StoreErrorKind::NotFound);

        let e = StoreError::already_exists(Object::Site("a".into()));
        assert_eq!(e.to_string(), "site `a` already exists");
        assert_eq!(e.kind(), StoreErrorKind::Conflict);

        let e = StoreError::in_use(
            Object::DbServer("db".into()),
            vec!["i1".into(), "i2".into()],
        );
        assert_eq!(
            e.to_string(),
            "database server `db` is still used by instances `i1`, `i2`"
        );
        assert_eq!(e.kind(), StoreErrorKind::Conflict);
    }

    #[test]
    fn sqlite_errors_are_sorted() {
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert_eq!(sqlite_kind(&busy), StoreErrorKind::Busy);
        let notadb = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_NOTADB),
            None,
        );
        assert_eq!(sqlite_kind(&notadb), StoreErrorKind::Corrupt);
        let unique = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE),
            None,
        );
        assert_eq!(sqlite_kind(&unique), StoreErrorKind::Conflict);
    }
}
