//! Database servers apsctl may create databases and logins on (CLI.md `db-server …`).
//!
//! Main decision: the administrator password is read once from the file the caller names and
//! kept as apsctl's own copy (`<home>/servers/<name>.pw`, mode 0600); it never enters the store,
//! argv, output or logs. A server is contacted at registration, so a wrong password or an
//! unreachable host is refused before anything is recorded.
use std::path::{Path, PathBuf};

pub use aps_host::db::ServerType;
use aps_host::db::{DatabaseServer, Secret, ServerConfig};
use aps_store::servers::{DbKind, DbServer};
use serde::Serialize;

use crate::context::Context;
use crate::error::Error;

/// What `db-server add` needs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The server's name in apsctl.
    pub name: String,
    /// Its type.
    pub kind: ServerType,
    /// Host (MySQL, PostgreSQL); default `localhost`.
    pub host: Option<String>,
    /// Port; default the type's.
    pub port: Option<u16>,
    /// Administrator login.
    pub admin_user: Option<String>,
    /// File holding the administrator password (its first line).
    pub admin_password_file: Option<PathBuf>,
}

/// A server as `db-server list` shows it (never its password).
#[derive(Debug, Clone, Serialize)]
pub struct ServerView {
    /// Name.
    pub name: String,
    /// `mysql`, `postgresql` or `sqlite`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Host.
    pub host: Option<String>,
    /// Port.
    pub port: Option<u16>,
    /// Administrator login.
    pub admin_user: Option<String>,
    /// Version reported when it was registered.
    pub version: Option<String>,
}

impl From<DbServer> for ServerView {
    fn from(s: DbServer) -> Self {
        Self {
            name: s.name,
            kind: s.kind.as_str().to_owned(),
            host: s.host,
            port: s.port,
            admin_user: s.admin_user,
            version: s.version,
        }
    }
}

fn to_store_kind(kind: ServerType) -> DbKind {
    match kind {
        ServerType::Mysql => DbKind::Mysql,
        ServerType::Postgresql => DbKind::Postgresql,
        ServerType::Sqlite => DbKind::Sqlite,
    }
}

/// The host crate's type for a stored kind.
pub(crate) fn host_kind(kind: DbKind) -> ServerType {
    match kind {
        DbKind::Mysql => ServerType::Mysql,
        DbKind::Postgresql => ServerType::Postgresql,
        DbKind::Sqlite => ServerType::Sqlite,
    }
}

/// Registers a server after connecting to it as its administrator.
pub fn add(ctx: &Context, opts: &ServerOptions) -> Result<ServerView, Error> {
    crate::site::check_name(&opts.name, "database server")?;
    if ctx
        .store()?
        .db_servers()
        .list()?
        .iter()
        .any(|s| s.name == opts.name)
    {
        return Err(Error::Conflict(format!(
            "database server `{}` is already registered",
            opts.name
        )));
    }
    let sqlite = opts.kind == ServerType::Sqlite;
    let password = match (&opts.admin_password_file, sqlite) {
        (Some(file), false) => read_password(file)?,
        (None, _) => Secret::default(),
        (Some(_), true) => {
            return Err(Error::Invalid(
                "a sqlite server takes no admin password".into(),
            ));
        }
    };
    let admin_user = if sqlite {
        None
    } else {
        Some(opts.admin_user.clone().ok_or_else(|| {
            Error::Invalid(format!(
                "database server `{}` needs `--admin-user`",
                opts.name
            ))
        })?)
    };
    let host = (!sqlite).then(|| opts.host.clone().unwrap_or_else(|| "localhost".into()));
    let config = ServerConfig {
        kind: opts.kind,
        host: host.clone().unwrap_or_default(),
        port: opts.port,
        admin_user: admin_user.clone().unwrap_or_default(),
        admin_password: password.clone(),
        sqlite_dir: Some(ctx.home.databases()),
        login_hosts: Vec::new(),
    };
    let server = aps_host::db::open(config)
        .map_err(|e| Error::Invalid(format!("database server `{}`: {e}", opts.name)))?;
    let version = server.version().map_err(|e| {
        Error::Invalid(format!(
            "cannot reach database server `{}` as its administrator: {e}",
            opts.name
        ))
    })?;
    let password_file = if sqlite {
        None
    } else {
        let path = ctx.home.servers().join(format!("{}.pw", opts.name));
        aps_host::fsx::write_atomic(&path, password.expose().as_bytes())
            .map_err(|e| Error::Failed(e.to_string()))?;
        Some(path)
    };
    let record = DbServer {
        name: opts.name.clone(),
        kind: to_store_kind(opts.kind),
        host,
        port: opts
            .port
            .or((!sqlite).then(|| opts.kind.default_port()).flatten()),
        admin_user,
        admin_password_file: password_file.clone(),
        version: Some(version.raw),
        created_at: crate::now(ctx),
    };
    if let Err(e) = ctx.store()?.db_servers().insert(&record) {
        if let Some(path) = password_file {
            let _ = fs_err::remove_file(path);
        }
        return Err(e.into());
    }
    Ok(record.into())
}

fn read_password(file: &Path) -> Result<Secret, Error> {
    let text = fs_err::read_to_string(file)?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(Error::Invalid(format!(
            "password file `{}` is empty",
            file.display()
        )));
    }
    Ok(Secret::new(line))
}

/// Every registered server.
pub fn list(ctx: &Context) -> Result<Vec<ServerView>, Error> {
    Ok(ctx
        .store()?
        .db_servers()
        .list()?
        .into_iter()
        .map(ServerView::from)
        .collect())
}

/// Forgets a server; refused while an instance database lives on it.
pub fn remove(ctx: &Context, name: &str) -> Result<ServerView, Error> {
    let server = ctx.store()?.db_servers().get(name)?;
    ctx.store()?.db_servers().delete(name)?;
    if let Some(path) = &server.admin_password_file {
        let _ = fs_err::remove_file(path);
    }
    Ok(server.into())
}

/// The administrator connection to the registered server `name`.
pub fn connect(ctx: &Context, name: &str) -> Result<Box<dyn DatabaseServer>, Error> {
    let record = ctx.store()?.db_servers().get(name)?;
    connect_record(ctx, &record)
}

/// The administrator connection to a stored server record.
pub(crate) fn connect_record(
    ctx: &Context,
    record: &DbServer,
) -> Result<Box<dyn DatabaseServer>, Error> {
    let password = match &record.admin_password_file {
        Some(file) => read_password(file)?,
        None => Secret::default(),
    };
    let config = ServerConfig {
        kind: host_kind(record.kind),
        host: record.host.clone().unwrap_or_default(),
        port: record.port,
        admin_user: record.admin_user.clone().unwrap_or_default(),
        admin_password: password,
        sqlite_dir: Some(ctx.home.databases()),
        login_hosts: Vec::new(),
    };
    aps_host::db::open(config)
        .map_err(|e| Error::Failed(format!("database server `{}`: {e}", record.name)))
}

/// Drops a database and its login when they exist (idempotent undo and removal step).
pub(crate) fn drop_database_and_login(
    server: &dyn DatabaseServer,
    name: &str,
    login: &str,
) -> Result<(), Error> {
    let fail = |e: aps_host::db::DbError| Error::Failed(crate::error::chain(&e));
    if server.database_exists(name).map_err(fail)? {
        server.drop_database(name).map_err(fail)?;
    }
    if !login.is_empty() && server.login_exists(login).map_err(fail)? {
        server.drop_login(login).map_err(fail)?;
    }
    Ok(())
}
