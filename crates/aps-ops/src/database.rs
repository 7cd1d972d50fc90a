//! Creating and freeing an instance's databases (REFERENCE §6.3, D9).
//!
//! Main decision: names come from `db:default-name` plus the instance id, made unique on the
//! server and kept within its limits; creation fails rather than reuse an existing database
//! (§9); the new login is verified before any script runs (§8.3 step 6). Creation is a journaled
//! step whose undo drops exactly the database and login it named.
use aps_host::db::DbSpec;
use aps_host::names::{NameParts, generate_password, unique_name};
use aps_store::instances::InstanceDatabase;

use crate::context::Context;
use crate::error::Error;
use crate::journal::{Journal, Undo};
use crate::report::Reporter;
use crate::runtime::DbChoice;
use crate::server;

/// Creates the database and login for one `db:db` requirement of instance `instance`.
pub(crate) fn create(
    ctx: &Context,
    journal: &mut Journal<'_>,
    choice: &DbChoice,
    instance: &str,
    owner: &aps_host::user::SystemUser,
    reporter: &dyn Reporter,
) -> Result<InstanceDatabase, Error> {
    let req = &choice.requirement;
    let record = ctx.store.db_servers().get(&choice.server)?;
    let server = server::connect_record(ctx, &record)?;
    let fail = |e: aps_host::db::DbError| {
        Error::Failed(format!("database server `{}`: {e}", choice.server))
    };
    let limits = server.name_limits().map_err(fail)?;
    let base = req.default_name.clone().unwrap_or_else(|| req.id.clone());
    let parts = NameParts::new(&base, instance).map_err(|e| Error::Failed(e.to_string()))?;
    let name: String =
        unique_name(&parts, limits.database, |n| server.database_exists(n)).map_err(fail)?;
    let login: String = match limits.login {
        Some(limit) => unique_name(&parts, limit, |l| server.login_exists(l)).map_err(fail)?,
        None => String::new(),
    };
    let password = if limits.login.is_some() {
        generate_password()
    } else {
        aps_host::db::Secret::default()
    };
    let spec = DbSpec {
        name: name.clone(),
        login: login.clone(),
        password,
    };
    reporter.step(&format!(
        "creating {} database `{name}` on `{}`",
        req.server_type, choice.server
    ));
    let undo = Undo::DropDatabase {
        server: choice.server.clone(),
        name: name.clone(),
        login: login.clone(),
    };
    journal.step("database", undo, || {
        server.create_database(&spec).map_err(fail)?;
        server.check_login(&spec).map_err(fail)
    })?;
    let version = server.version().map_err(fail)?;
    let values = server.connection_values(&spec);
    if record.kind == aps_store::servers::DbKind::Sqlite {
        // The application opens the file as the site's user.
        if let Some(dir) = std::path::Path::new(&values.name).parent() {
            aps_host::fsx::chown_tree(dir, owner.uid(), owner.gid())
                .map_err(|e| Error::Failed(e.to_string()))?;
        }
    }
    Ok(InstanceDatabase {
        db_id: req.id.clone(),
        kind: record.kind,
        server: Some(choice.server.clone()),
        name: values.name,
        login: values.login,
        password: spec.password.expose().to_owned(),
        host: values.host,
        port: values.port.parse().ok(),
        version: version.number,
        prefix: None,
        shared: false,
    })
}

/// Drops an instance's database and login (removal step 4.1), unless it is a shared database.
pub(crate) fn drop(ctx: &Context, db: &InstanceDatabase) -> Result<(), Error> {
    if db.shared {
        return Ok(());
    }
    let Some(server_name) = &db.server else {
        return Ok(());
    };
    let server = server::connect(ctx, server_name)?;
    // SQLite's NAME is the file's path; the server wants the database's name.
    let name = if db.kind == aps_store::servers::DbKind::Sqlite {
        std::path::Path::new(&db.name)
            .file_stem()
            .map_or_else(|| db.name.clone(), |s| s.to_string_lossy().into_owned())
    } else {
        db.name.clone()
    };
    server::drop_database_and_login(server.as_ref(), &name, &db.login)
}
