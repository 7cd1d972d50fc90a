//! Database servers: create, check, dump, load and drop the databases and logins of instances.
//!
//! Main decision: one object-safe trait, [`DatabaseServer`], implemented once per server type
//! (`MySQL`/`MariaDB`, `PostgreSQL`, `SQLite`) and chosen by [`open`]. A trait rather than an enum so
//! that `aps-ops` can hand its journal/undo tests a fake server that fails at a chosen step, and
//! so that each implementation keeps its own quoting rules private. `MySQL` and `PostgreSQL` are
//! driven through their standard client programs (`mariadb`/`mysql`, `mariadb-dump`/`mysqldump`,
//! `psql`, `pg_dump`, `pg_restore`): no client library in the binary and dumps in the formats
//! administrators know. Every rule from REFERENCE §9 holds here:
//! - credentials reach the clients only through temporary 0600 files (`MySQL` option file,
//!   libpq password file), never through argv or environment values;
//! - SQL goes to the clients on stdin with every identifier and literal quoted by this module;
//! - creation fails when the database or the login exists; nothing is dropped before a create;
//! - dumps and loads stream between the client and a file, never through memory;
//! - a dump is loaded as the instance's own login, with the client's sandbox (`MySQL`) or through
//!   `pg_restore` (`PostgreSQL`), so a tampered backup cannot reach other databases or the shell.
//!
//! Second decision: what [`DatabaseServer::create_database`] makes carries a proof of its
//! creator, so that an undo or a crash recovery never drops a database or login that appeared
//! under the same name from someone else (between the existence check and the creation, or
//! while apsctl was down). The proof is the caller's [`DbSpec::marker`], unique per operation
//! and resource, or a secret only the creator knows, and it is laid down atomically with the
//! resource wherever the server allows:
//! - `MariaDB` ≥ 10.5: the database's schema comment is the marker (`CREATE DATABASE … COMMENT`);
//! - `MySQL`/`MariaDB` logins: the generated password (a login is ours when it authenticates
//!   with [`DbSpec::password`]);
//! - `PostgreSQL`: the role's comment is the marker (`COMMENT ON ROLE` in the `CREATE ROLE`
//!   transaction), and a database is ours when its owner is that role;
//! - `SQLite`: the database folder, made without `-p`, holds a `.apsctl-owner` file with the
//!   marker, written before the database file.
//!
//! [`DatabaseServer::ownership`] reads the proofs back as an [`Ownership`]; [`Owner::may_drop`]
//! is the rule an undo follows. Between the two halves of every creation sits the fault point
//! `db-create` ([`aps_failpoint`]), so tests can fail or crash a creation half-way.
//!
//! All child processes are started by one function in the private `client` module.
//!
//! Known gaps: no TLS options for remote servers; `MySQL` accounts get the host parts in
//! [`ServerConfig::login_hosts`] (default `localhost` and `127.0.0.1` for a local server, `%`
//! otherwise) and nothing finer; the `SQLite` version reported is apsctl's bundled library, not the
//! one inside the site's PHP; `drop_database` on `MySQL` leaves the login's grant on that name
//! until `drop_login` (callers drop both, §8.10); the `MySQL` existence check compares names
//! case-insensitively (conservative for create). `MySQL` and `MariaDB` before 10.5 have no schema
//! comments, so their databases carry no proof ([`Owner::Unknown`]): a database left by a creation
//! that crashed before the journal recorded it complete is never dropped, and leaks. The `db::`
//! clients do not yet go through [`crate::env::Env`]; `client::client_command` is the one place to
//! switch.

mod client;
mod mysql;
mod postgres;
mod sqlite;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use crate::names::NameError;

/// A secret string (password): kept out of `Debug` output and never `Display`ed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself; call only where it is handed to its one consumer.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

/// The database server types of `db:server-type` that apsctl supports (D9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerType {
    /// `MySQL` or `MariaDB` (`mysql`).
    Mysql,
    /// `PostgreSQL` (`postgresql`).
    Postgresql,
    /// `SQLite` database files in apsctl's private storage (`sqlite`).
    Sqlite,
}

impl ServerType {
    /// The `db:server-type` spelling: `mysql`, `postgresql` or `sqlite`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mysql => "mysql",
            Self::Postgresql => "postgresql",
            Self::Sqlite => "sqlite",
        }
    }

    /// The port a server of this type listens on unless configured otherwise (`None` for `SQLite`).
    pub fn default_port(self) -> Option<u16> {
        match self {
            Self::Mysql => Some(3306),
            Self::Postgresql => Some(5432),
            Self::Sqlite => None,
        }
    }
}

impl fmt::Display for ServerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `db:server-type` value apsctl does not support.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("database server type `{given}` is not supported (expected mysql, postgresql or sqlite)")]
pub struct UnknownServerType {
    /// The value as given.
    pub given: String,
}

impl FromStr for ServerType {
    type Err = UnknownServerType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mysql" => Ok(Self::Mysql),
            "postgresql" => Ok(Self::Postgresql),
            "sqlite" => Ok(Self::Sqlite),
            _ => Err(UnknownServerType {
                given: s.to_owned(),
            }),
        }
    }
}

/// How to reach a database server as its administrator (from `apsctl db-server add`).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Server type.
    pub kind: ServerType,
    /// Host name or address (`MySQL`, `PostgreSQL`). For `MySQL`, `localhost` means the Unix socket.
    pub host: String,
    /// TCP port; `None` takes the type's default (3306, 5432).
    pub port: Option<u16>,
    /// Administrator login: creates and drops databases and logins (`MySQL`: all privileges
    /// with grant option; `PostgreSQL`: `CREATEDB CREATEROLE`).
    pub admin_user: String,
    /// Administrator password.
    pub admin_password: Secret,
    /// `SQLite` only: the private directory holding one subdirectory per database.
    pub sqlite_dir: Option<PathBuf>,
    /// `MySQL` only: host parts of the accounts created for a login. Empty means `localhost` and
    /// `127.0.0.1` when [`Self::host`] is local, `%` otherwise.
    pub login_hosts: Vec<String>,
}

impl ServerConfig {
    /// A `SQLite` "server" keeping its databases under `dir`.
    pub fn sqlite(dir: impl Into<PathBuf>) -> Self {
        Self {
            kind: ServerType::Sqlite,
            host: String::new(),
            port: None,
            admin_user: String::new(),
            admin_password: Secret::default(),
            sqlite_dir: Some(dir.into()),
            login_hosts: Vec::new(),
        }
    }

    /// The configured port, or the type's default (0 for `SQLite`).
    pub fn effective_port(&self) -> u16 {
        self.port.or(self.kind.default_port()).unwrap_or(0)
    }
}

/// A database to create: its name, the login that owns it, that login's password, and the
/// marker that proves who created them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbSpec {
    /// Database name (see [`crate::names`]). For `SQLite`, the name of the file's directory.
    pub name: String,
    /// Login that gets full privileges on this database only (empty for `SQLite`).
    pub login: String,
    /// The login's password (empty for `SQLite`). For `MySQL` it is also the proof that the
    /// login is ours, so it must be generated per creation and never reused.
    pub password: Secret,
    /// The proof of creator, left on what [`DatabaseServer::create_database`] makes (see the
    /// module doc). An opaque token the caller makes unique per operation and resource, e.g.
    /// `apsctl:op12:3f9c…`: 1 to [`MARKER_LIMIT`] visible ASCII characters (`!` to `~`) without
    /// quotes (`'`, `"`, `` ` ``) or backslashes. Not a secret.
    pub marker: String,
}

/// Longest [`DbSpec::marker`], in bytes (well below `MariaDB`'s 1024-character schema comments).
pub const MARKER_LIMIT: usize = 200;

/// Whether a resource of a [`DbSpec`] exists and who made it, as far as its proof tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Nothing of that name exists.
    Absent,
    /// It exists and carries the spec's proof: the creation that holds the marker made it.
    Ours(Proof),
    /// It exists without the spec's proof: another owner's, never to be dropped.
    Foreign,
    /// It exists, but this server cannot carry a proof for it (a database on `MySQL`, or on
    /// `MariaDB` before 10.5): only the journal can tell.
    Unknown,
}

/// What showed a resource to be [`Owner::Ours`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// `MariaDB` ≥ 10.5: the database's schema comment is the marker.
    SchemaComment,
    /// `MySQL`/`MariaDB`: the login authenticates with the spec's password.
    Password,
    /// `PostgreSQL`: the role's comment is the marker.
    RoleComment,
    /// `PostgreSQL`: the database is owned by the spec's role, which carries the marker.
    OwnerRole,
    /// `SQLite`: the database folder's `.apsctl-owner` file holds the marker.
    MarkerFile,
}

/// How far the journal saw a creation get, for [`Owner::may_drop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creation {
    /// `create_database` returned `Ok` and the journal recorded it.
    Completed,
    /// The creation failed, or the process died before the journal recorded its end.
    Unfinished,
}

impl Owner {
    /// Whether the resource is proven ours.
    pub fn is_ours(self) -> bool {
        matches!(self, Self::Ours(_))
    }

    /// Whether an undo may drop the resource: when it is proven ours, or when it cannot carry a
    /// proof and the journal recorded the creation as completed. Never a foreign resource, and
    /// never an unprovable one after a creation that failed (the name may have appeared from
    /// another owner between the existence check and the creation).
    pub fn may_drop(self, creation: Creation) -> bool {
        match self {
            Self::Ours(_) => true,
            Self::Unknown => creation == Creation::Completed,
            Self::Absent | Self::Foreign => false,
        }
    }
}

/// What [`DatabaseServer::ownership`] found for the database and for the login of a spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ownership {
    /// The database [`DbSpec::name`].
    pub database: Owner,
    /// The login [`DbSpec::login`]; always [`Owner::Absent`] for `SQLite` (no logins).
    pub login: Owner,
}

/// Refuses to go on unless `spec`'s login, with its password, can use its database: the proof
/// that the database is the one the store records for an instance (its marker is the install's
/// and is not kept).
pub(crate) fn require_login(server: &dyn DatabaseServer, spec: &DbSpec) -> Result<(), DbError> {
    server.check_login(spec).map_err(|_| DbError::NotOurs {
        server: server.kind(),
        name: spec.name.clone(),
    })
}

/// A server's version as reported and in comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerVersion {
    /// Exactly what the server reports, e.g. `10.11.6-MariaDB-0+deb12u1`.
    pub raw: String,
    /// The leading dotted number, for D2 comparison and `DB_<id>_VERSION`, e.g. `10.11.6`.
    pub number: String,
    /// The product: `MariaDB`, `MySQL`, `PostgreSQL` or `SQLite`.
    pub product: &'static str,
}

impl ServerVersion {
    /// Builds a version from the raw string, taking the leading `digits(.digits)*` as number.
    pub fn parse(raw: &str, product: &'static str) -> Self {
        let trimmed = raw.trim();
        let mut end = 0;
        let bytes = trimmed.as_bytes();
        while end < bytes.len() {
            let c = bytes[end];
            let dot_then_digit =
                c == b'.' && end > 0 && bytes.get(end + 1).is_some_and(u8::is_ascii_digit);
            if !(c.is_ascii_digit() || dot_then_digit) {
                break;
            }
            end += 1;
        }
        Self {
            raw: trimmed.to_owned(),
            number: trimmed[..end].to_owned(),
            product,
        }
    }

    /// The numeric components of [`Self::number`] (`10.11.6` → `[10, 11, 6]`).
    pub fn components(&self) -> Vec<u64> {
        self.number
            .split('.')
            .filter_map(|part| part.parse().ok())
            .collect()
    }

    /// Whether this version is at least `minimum` (compared component by component).
    pub fn at_least(&self, minimum: &[u64]) -> bool {
        let mine = self.components();
        for (i, want) in minimum.iter().enumerate() {
            let have = mine.get(i).copied().unwrap_or(0);
            if have != *want {
                return have > *want;
            }
        }
        true
    }
}

/// The longest names a server accepts, in bytes (names from [`crate::names`] are ASCII).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameLimits {
    /// Longest database name.
    pub database: usize,
    /// Longest login name; `None` when the server has no logins (`SQLite`).
    pub login: Option<usize>,
}

/// What an application script is told about its database (`DB_<id>_NAME/LOGIN/HOST/PORT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionValues {
    /// Database name; for `SQLite` the absolute path of the database file (§11 Q24).
    pub name: String,
    /// Login (empty for `SQLite`).
    pub login: String,
    /// Host (empty for `SQLite`).
    pub host: String,
    /// Port as text (empty for `SQLite`).
    pub port: String,
}

/// What went wrong, as a category the CLI maps to an exit code and the API to a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbErrorKind {
    /// The database or login already exists.
    AlreadyExists,
    /// The database does not exist, or a file to load is missing.
    NotFound,
    /// A name, password or configuration value is not acceptable.
    InvalidInput,
    /// A client program is missing, or the client does not offer a required safety option.
    Unavailable,
    /// The server or a client failed.
    Failed,
}

/// Errors of the database servers.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A database to empty is not provably the one its spec describes.
    #[error(
        "database `{name}` on the {server} server is not provably apsctl's for this instance; it is left as it is"
    )]
    NotOurs {
        /// Server type.
        server: ServerType,
        /// Database name.
        name: String,
    },
    /// `create_database` found the database already there.
    #[error("database `{name}` already exists on the {server} server")]
    DatabaseExists {
        /// Server type.
        server: ServerType,
        /// Database name.
        name: String,
    },
    /// `create_database` found the login already there.
    #[error("login `{login}` already exists on the {server} server")]
    LoginExists {
        /// Server type.
        server: ServerType,
        /// Login name.
        login: String,
    },
    /// The database to dump, load or check does not exist.
    #[error("database `{name}` does not exist on the {server} server")]
    DatabaseMissing {
        /// Server type.
        server: ServerType,
        /// Database name.
        name: String,
    },
    /// A database name, login or password is not usable on this server.
    #[error("{what} `{value}` is not usable on the {server} server: {reason}")]
    InvalidName {
        /// Server type.
        server: ServerType,
        /// `database name`, `login` or `password` (a password's value is never shown).
        what: &'static str,
        /// The rejected value (`***` for passwords).
        value: String,
        /// Why.
        reason: String,
    },
    /// The server configuration lacks something this server type needs.
    #[error("the {server} server configuration is not usable: {reason}")]
    Config {
        /// Server type.
        server: ServerType,
        /// What is missing or wrong.
        reason: String,
    },
    /// None of the client programs for a task is installed.
    #[error("no `{candidates}` client program found in {searched}")]
    ClientMissing {
        /// Program names tried, joined with `` `/` ``.
        candidates: String,
        /// Directories searched.
        searched: String,
    },
    /// The installed `MySQL` client cannot be told to refuse shell and file commands in a dump.
    #[error(
        "`{program}` has no sandbox option (--sandbox or --commands=OFF), so dump `{file}` is not loaded"
    )]
    NoSandbox {
        /// The client program.
        program: PathBuf,
        /// The dump that was to be loaded.
        file: PathBuf,
    },
    /// A client program could not be started or fed.
    #[error("could not run `{program}` to {action}")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// What it was to do.
        action: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A client program exited with failure; `stderr` is redacted of every secret involved.
    #[error("`{program}` failed to {action} ({status}): {stderr}")]
    ClientFailed {
        /// The program.
        program: PathBuf,
        /// What it was to do.
        action: String,
        /// Its exit status.
        status: String,
        /// The start of its standard error, secrets replaced by `***`.
        stderr: String,
    },
    /// A client program answered something this module cannot read.
    #[error("`{program}` gave unexpected output when asked to {action}: `{output}`")]
    UnexpectedOutput {
        /// The program.
        program: PathBuf,
        /// What it was asked.
        action: String,
        /// The output (shortened).
        output: String,
    },
    /// A file operation failed (the source names the path).
    #[error("could not {action}")]
    Io {
        /// What was being done.
        action: String,
        /// The cause, naming the path.
        #[source]
        source: io::Error,
    },
    /// `SQLite` refused an operation on a database file.
    #[error("SQLite could not {action} `{path}`")]
    Sqlite {
        /// What was being done.
        action: &'static str,
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// A folder operation on the `SQLite` databases failed; the message carries the cause, since
    /// callers often show only the top message.
    #[error("could not {action}: {cause}")]
    Folder {
        /// What was being done, naming the database.
        action: String,
        /// The cause as text: the folder operation, its path and the system's reason.
        cause: String,
        /// The cause.
        #[source]
        source: crate::safedir::SafeDirError,
    },
    /// A test fault point stopped the operation (test builds only).
    #[error(transparent)]
    Fault(#[from] aps_failpoint::Injected),
    /// A name could not be derived.
    #[error("could not derive a database or login name")]
    Name(#[from] NameError),
}

impl DbError {
    /// The category of this error.
    pub fn kind(&self) -> DbErrorKind {
        match self {
            Self::DatabaseExists { .. } | Self::LoginExists { .. } => DbErrorKind::AlreadyExists,
            Self::DatabaseMissing { .. } => DbErrorKind::NotFound,
            Self::InvalidName { .. } | Self::Config { .. } | Self::Name(_) => {
                DbErrorKind::InvalidInput
            }
            Self::ClientMissing { .. } | Self::NoSandbox { .. } => DbErrorKind::Unavailable,
            Self::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                DbErrorKind::NotFound
            }
            Self::Spawn { .. }
            | Self::NotOurs { .. }
            | Self::ClientFailed { .. }
            | Self::UnexpectedOutput { .. }
            | Self::Io { .. }
            | Self::Sqlite { .. }
            | Self::Folder { .. }
            | Self::Fault(_) => DbErrorKind::Failed,
        }
    }

    /// A [`Self::Folder`] error for `action`, keeping the folder error's reason in the message.
    pub(crate) fn folder(action: String, source: crate::safedir::SafeDirError) -> Self {
        Self::Folder {
            action,
            cause: format!("{source}: {}", source.source),
            source,
        }
    }
}

/// One database server apsctl may create databases and logins on.
///
/// Methods that take a `name` or `login` expect the exact name (not a pattern). "Drop if it
/// exists and is ours" is the caller's decision, taken with [`Self::ownership`]: the `drop_*`
/// methods drop whatever has that name.
pub trait DatabaseServer: Send + Sync {
    /// The server type.
    fn kind(&self) -> ServerType;

    /// The server's version (asked once, then remembered).
    fn version(&self) -> Result<ServerVersion, DbError>;

    /// The longest database and login names this server accepts.
    fn name_limits(&self) -> Result<NameLimits, DbError>;

    /// Whether a database of that name exists.
    fn database_exists(&self, name: &str) -> Result<bool, DbError>;

    /// Whether a login of that name exists (for `MySQL`: with any host part). Always `false` for
    /// `SQLite`.
    fn login_exists(&self, login: &str) -> Result<bool, DbError>;

    /// Creates the database and its login, the login getting full privileges on this database
    /// only, and leaves the proof of [`DbSpec::marker`] on them (see the module doc). Fails with
    /// [`DbError::DatabaseExists`] or [`DbError::LoginExists`] when either is already there; on
    /// any failure, whatever this call created is removed again (and only that). Passes the
    /// fault point `db-create` between its two halves; a crash there leaves the first half.
    fn create_database(&self, spec: &DbSpec) -> Result<(), DbError>;

    /// Whether the database and the login of `spec` exist and carry `spec`'s proof, each on its
    /// own: [`Owner::Ours`] only with the proof, [`Owner::Foreign`] when something of that name
    /// exists without it, [`Owner::Unknown`] where the server cannot carry one. Changes nothing.
    fn ownership(&self, spec: &DbSpec) -> Result<Ownership, DbError>;

    /// Connects as the spec's login to its database and runs a trivial query (§8.3 step 6).
    fn check_login(&self, spec: &DbSpec) -> Result<(), DbError>;

    /// Drops the database (`SQLite`: its folder with everything in it, no link followed);
    /// `Ok(false)` when there was none.
    fn drop_database(&self, name: &str) -> Result<bool, DbError>;

    /// Makes the database empty again, as [`DatabaseServer::create_database`] left it: dropped
    /// and created anew under the same name and owner, its login and the login's rights kept
    /// (`MySQL`: database grants survive a drop, the schema comment is `spec`'s marker;
    /// `PostgreSQL`: owned by the login; `SQLite`: an empty database copied over the file). For
    /// putting a backup's dump back over what an application did to its database (the rollback
    /// of a failed upgrade). Refused ([`DbError::NotOurs`]) unless `spec`'s login, with its
    /// password, can use the database (`SQLite`, without logins: the file must be a database).
    fn empty_database(&self, spec: &DbSpec) -> Result<(), DbError>;

    /// Drops the login (for `MySQL`: every host part of it); `Ok(false)` when there was none.
    fn drop_login(&self, login: &str) -> Result<bool, DbError>;

    /// Writes a consistent dump of the database to `out` (created or truncated, mode 0600),
    /// streaming. `MySQL`: SQL text; `PostgreSQL`: `pg_dump` custom format; `SQLite`: a database file.
    /// On failure `out` is removed.
    fn dump(&self, name: &str, out: &Path) -> Result<(), DbError> {
        let mut file = client::create_dump_file(out)?;
        self.dump_into(name, &mut file)
            .and_then(|_| {
                file.sync_all().map_err(|source| DbError::Io {
                    action: "write the dump file".to_owned(),
                    source,
                })
            })
            .map_err(|e| client::discard_partial(out, e))
    }

    /// Dumps database `name` into `sink` as it is produced (a consistent snapshot, as
    /// [`DatabaseServer::dump`]) and returns the bytes written: no temporary file and no whole
    /// copy in memory, except for `SQLite`, whose online backup needs a file (a private
    /// temporary copy, removed). A failing `sink` (a full disk) stops the dumper and is the error.
    fn dump_into(&self, name: &str, sink: &mut dyn io::Write) -> Result<u64, DbError>;

    /// Loads a dump made by [`Self::dump_into`] on a server of the same type from `source` into
    /// the existing (empty) database of `spec`, as `spec`'s login, streaming.
    fn load_from(&self, spec: &DbSpec, source: &mut dyn io::Read) -> Result<(), DbError>;

    /// The file extension of this server type's dumps (`sql`, `pgdump`, `sqlite`).
    fn dump_extension(&self) -> &'static str;

    /// Loads a dump made by [`Self::dump`] on a server of the same type into the existing (empty)
    /// database of `spec`, as `spec`'s login, streaming.
    fn load(&self, spec: &DbSpec, from: &Path) -> Result<(), DbError> {
        let mut source = fs_err::File::open(from)
            .map_err(|source| DbError::Io {
                action: "open the dump to load".to_owned(),
                source,
            })?
            .into_parts()
            .0;
        self.load_from(spec, &mut source)
    }

    /// The values an application is given for this database (`DB_<id>_NAME` etc.).
    fn connection_values(&self, spec: &DbSpec) -> ConnectionValues;
}

/// Turns a client failure whose server error carries `database_marker` or `login_marker` (the
/// server's code for "already exists": MySQL `ERROR 1007`/`ERROR 1396`, PostgreSQL SQLSTATE
/// `42P04`/`42710`) into the matching typed error.
pub(crate) fn classify_exists(
    error: DbError,
    spec: &DbSpec,
    server: ServerType,
    database_marker: &str,
    login_marker: &str,
) -> DbError {
    if let DbError::ClientFailed { stderr, .. } = &error {
        if stderr.contains(database_marker) {
            return DbError::DatabaseExists {
                server,
                name: spec.name.clone(),
            };
        }
        if stderr.contains(login_marker) {
            return DbError::LoginExists {
                server,
                login: spec.login.clone(),
            };
        }
    }
    error
}

/// Opens the server described by `config`, checking the configuration and finding the client
/// programs it needs. Does not connect yet.
pub fn open(config: ServerConfig) -> Result<Box<dyn DatabaseServer>, DbError> {
    Ok(match config.kind {
        ServerType::Mysql => Box::new(mysql::Mysql::new(config)?),
        ServerType::Postgresql => Box::new(postgres::Postgres::new(config)?),
        ServerType::Sqlite => Box::new(sqlite::Sqlite::new(&config)?),
    })
}

/// Checks the parts of a name every server type refuses: empty, NUL, control characters.
fn check_common(server: ServerType, what: &'static str, value: &str) -> Result<(), DbError> {
    let reason = if value.is_empty() {
        "it is empty"
    } else if value.chars().any(char::is_control) {
        "it contains a control character"
    } else {
        return Ok(());
    };
    Err(DbError::InvalidName {
        server,
        what,
        value: value.to_owned(),
        reason: reason.to_owned(),
    })
}

/// Checks a [`DbSpec::marker`]: 1 to [`MARKER_LIMIT`] visible ASCII characters, no quotes or
/// backslashes (it is quoted anyway; the rule keeps it the same in every server's catalogue).
fn check_marker(server: ServerType, marker: &str) -> Result<(), DbError> {
    let reason = if marker.is_empty() {
        "it is empty".to_owned()
    } else if marker.len() > MARKER_LIMIT {
        format!(
            "it is {} bytes long, the limit is {MARKER_LIMIT}",
            marker.len()
        )
    } else if let Some(c) = marker.chars().find(|c| !c.is_ascii_graphic()) {
        format!("it contains {c:?}, which is not visible ASCII")
    } else if let Some(c) = marker
        .chars()
        .find(|c| matches!(c, '\'' | '"' | '`' | '\\'))
    {
        format!("it contains `{c}`; quotes and backslashes are not allowed")
    } else {
        return Ok(());
    };
    Err(DbError::InvalidName {
        server,
        what: "marker",
        value: marker.escape_default().to_string(),
        reason,
    })
}

/// Checks that a password can be handed to a client: no NUL, and (`lines`) no line break.
fn check_password(server: ServerType, password: &Secret, lines: Lines) -> Result<(), DbError> {
    let value = password.expose();
    let reason = if value.is_empty() {
        "it is empty"
    } else if value.contains('\0') {
        "it contains a NUL character"
    } else if lines == Lines::Refused && value.contains(['\n', '\r']) {
        "it contains a line break"
    } else {
        return Ok(());
    };
    Err(DbError::InvalidName {
        server,
        what: "password",
        value: "***".to_owned(),
        reason: reason.to_owned(),
    })
}

/// Whether a password may contain line breaks for a given client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lines {
    Allowed,
    Refused,
}

/// Checks `value` against a byte limit.
fn check_length(
    server: ServerType,
    what: &'static str,
    value: &str,
    limit: usize,
) -> Result<(), DbError> {
    if value.len() > limit {
        return Err(DbError::InvalidName {
            server,
            what,
            value: value.to_owned(),
            reason: format!("it is {} bytes long, the limit is {limit}", value.len()),
        });
    }
    Ok(())
}

/// Whether `host` names this machine.
fn is_local_host(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "::1" | "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_type_round_trips() {
        for kind in [
            ServerType::Mysql,
            ServerType::Postgresql,
            ServerType::Sqlite,
        ] {
            assert_eq!(kind.to_string().parse::<ServerType>().unwrap(), kind);
        }
        let err = "microsoft:sqlserver".parse::<ServerType>().unwrap_err();
        assert!(err.to_string().contains("`microsoft:sqlserver`"));
    }

    #[test]
    fn secret_debug_is_redacted() {
        let spec = DbSpec {
            name: "n".into(),
            login: "l".into(),
            password: Secret::new("hunter2"),
            marker: "apsctl:op1:ab".into(),
        };
        let shown = format!("{spec:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("Secret(***)"));
    }

    #[test]
    fn versions_parse_to_comparable_numbers() {
        let v = ServerVersion::parse("10.11.6-MariaDB-0+deb12u1", "MariaDB");
        assert_eq!(v.number, "10.11.6");
        assert_eq!(v.components(), [10, 11, 6]);
        assert!(v.at_least(&[10, 11]) && v.at_least(&[5, 7, 8]) && !v.at_least(&[11]));
        assert_eq!(
            ServerVersion::parse("15.6 (Debian 15.6-0+deb12u1)", "PostgreSQL").number,
            "15.6"
        );
        assert_eq!(ServerVersion::parse("8.0.36", "MySQL").number, "8.0.36");
        assert_eq!(ServerVersion::parse("16beta1", "PostgreSQL").number, "16");
        assert_eq!(ServerVersion::parse("5.7.", "MySQL").number, "5.7");
        assert_eq!(ServerVersion::parse("garbage", "MySQL").number, "");
    }

    #[test]
    fn markers_are_visible_ascii_without_quotes() {
        for good in ["apsctl:op12:3f9c0a", "a", "x-_.~!#$%&()*+,/;<=>?@[]^{|}"] {
            assert!(check_marker(ServerType::Mysql, good).is_ok(), "{good}");
        }
        assert!(check_marker(ServerType::Mysql, &"m".repeat(MARKER_LIMIT)).is_ok());
        for bad in [
            "",
            "with space",
            "tab\there",
            "new\nline",
            "nul\0",
            "quote'",
            "double\"",
            "back`tick",
            "back\\slash",
            "non-ascii-é",
        ] {
            let err = check_marker(ServerType::Postgresql, bad).unwrap_err();
            assert_eq!(err.kind(), DbErrorKind::InvalidInput, "{bad:?}");
            let text = err.to_string();
            assert!(text.starts_with("marker `"), "{text}");
            assert!(!text.contains('\n'), "{text}");
        }
        let long = check_marker(ServerType::Sqlite, &"m".repeat(MARKER_LIMIT + 1)).unwrap_err();
        assert!(long.to_string().contains("201 bytes"), "{long}");
    }

    #[test]
    fn only_proven_or_completed_unprovable_resources_may_be_dropped() {
        use Creation::{Completed, Unfinished};
        for proof in [
            Proof::SchemaComment,
            Proof::Password,
            Proof::RoleComment,
            Proof::OwnerRole,
            Proof::MarkerFile,
        ] {
            assert!(Owner::Ours(proof).may_drop(Unfinished));
            assert!(Owner::Ours(proof).may_drop(Completed));
        }
        assert!(Owner::Unknown.may_drop(Completed));
        assert!(!Owner::Unknown.may_drop(Unfinished));
        for owner in [Owner::Foreign, Owner::Absent] {
            assert!(!owner.may_drop(Completed) && !owner.may_drop(Unfinished));
        }
    }

    #[test]
    fn common_checks_refuse_empty_and_control_characters() {
        assert!(check_common(ServerType::Mysql, "login", "").is_err());
        assert!(check_common(ServerType::Mysql, "login", "a\0b").is_err());
        assert!(check_common(ServerType::Mysql, "login", "a\nb").is_err());
        assert!(check_common(ServerType::Mysql, "login", "a'\"\\`b").is_ok());
        let err = check_password(ServerType::Postgresql, &Secret::new("a\nb"), Lines::Refused)
            .unwrap_err();
        assert!(!err.to_string().contains("a\nb"));
        assert!(check_password(ServerType::Mysql, &Secret::new("a\nb"), Lines::Allowed).is_ok());
    }
}
