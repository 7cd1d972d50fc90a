//! Creating and freeing an instance's databases (REFERENCE §6.3, D9).
//!
//! Main decision: names come from `db:default-name` plus the instance id, made unique on the
//! server and kept within its limits; creation fails rather than reuse an existing database
//! (§9); the new login is verified before any script runs (§8.3 step 6). Creation is a journaled
//! change carrying a marker that the server keeps with what it creates (`aps_host::db`): the undo
//! drops only what carries it, never a database or login that someone else made meanwhile.
use aps_host::db::DbSpec;
use aps_host::names::{NameParts, generate_password, unique_name};
use aps_store::instances::InstanceDatabase;

use crate::change::Change;
use crate::context::Context;
use crate::error::Error;
use crate::journal::Journal;
use crate::report::Reporter;
use crate::runtime::DbChoice;
use crate::server;

/// Creates the database and login for one `db:db` requirement of instance `instance`, with
/// `prefix` as its table prefix, journaled with the marker that proves this operation made
/// them, and records it with the instance.
pub(crate) fn create(
    ctx: &Context,
    journal: &mut Journal<'_>,
    choice: &DbChoice,
    instance: &str,
    prefix: Option<String>,
    owner: &aps_host::user::SystemUser,
    reporter: &dyn Reporter,
) -> Result<InstanceDatabase, Error> {
    let req = &choice.requirement;
    let record = ctx.store()?.db_servers().get(&choice.server)?;
    let server = server::connect_record(ctx, &record)?;
    let fail = |e: aps_host::db::DbError| {
        Error::Failed(format!(
            "database server `{}`: {}",
            choice.server,
            crate::error::chain(&e)
        ))
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
        marker: marker(journal, &req.id),
    };
    reporter.step(&format!(
        "creating {} database `{name}` on `{}`",
        req.server_type, choice.server
    ));
    let change = Change::Database {
        server: choice.server.clone(),
        name,
        login,
        marker: spec.marker.clone(),
        password: ctx.vault.seal(spec.password.expose())?,
    };
    journal.step("database", |j| {
        j.change(change, || {
            server.create_database(&spec).map_err(fail)?;
            server.check_login(&spec).map_err(fail)
        })
    })?;
    let version = server.version().map_err(fail)?;
    let values = server.connection_values(&spec);
    if record.kind == aps_store::servers::DbKind::Sqlite {
        // The application opens the file (and makes its journal files) as the site's user.
        if let Some(dir) = std::path::Path::new(&values.name).parent() {
            aps_host::safedir::SafeDir::open(dir)
                .and_then(|d| d.chown_tree(owner.uid(), owner.gid()))
                .map_err(Error::Site)?;
        }
    }
    let db = InstanceDatabase {
        db_id: req.id.clone(),
        kind: record.kind,
        server: Some(choice.server.clone()),
        name: values.name,
        login: values.login,
        password: spec.password.expose().to_owned(),
        host: values.host,
        port: values.port.parse().ok(),
        version: version.number,
        prefix,
        shared: false,
    };
    let sealed = sealed(ctx, vec![db.clone()])?;
    for record in &sealed {
        ctx.store()?.instances().add_database(instance, record)?;
    }
    Ok(db)
}

/// The proof-of-creator token of one database creation: the operation and a random part, so
/// no other creation (of this or any other controller) carries the same.
fn marker(journal: &Journal<'_>, db_id: &str) -> String {
    use rand::Rng as _;
    let random: u64 = rand::rngs::OsRng.r#gen();
    let id: String = db_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(32)
        .collect();
    format!("apsctl:op{}:{id}:{random:016x}", journal.id())
}

/// Drops an instance's database and login (removal step 4.1). The caller decides whether the
/// database may go: a shared one is dropped only by the last instance recorded in it.
pub(crate) fn drop(ctx: &Context, db: &InstanceDatabase) -> Result<(), Error> {
    let Some(server_name) = &db.server else {
        return Ok(());
    };
    let server = server::connect(ctx, server_name)?;
    server::drop_database_and_login(server.as_ref(), &server_name_of(db), &db.login)
}

/// The server of `db` (an instance's database, its password in clear) and the spec that logs in
/// to it; `marker` is the proof a database created again from it carries (`empty_database`).
pub(crate) fn connect_recorded(
    ctx: &Context,
    db: &InstanceDatabase,
    marker: &str,
) -> Result<(Box<dyn aps_host::db::DatabaseServer>, DbSpec), Error> {
    let server = server::connect(ctx, db.server.as_deref().unwrap_or_default())?;
    let spec = DbSpec {
        name: server_name_of(db),
        login: db.login.clone(),
        password: aps_host::db::Secret::new(db.password.clone()),
        marker: marker.to_owned(),
    };
    Ok((server, spec))
}

/// The name the server knows a database by: for SQLite, whose `DB_<id>_NAME` is the file's
/// path, the database's own name (the file's stem).
pub(crate) fn server_name_of(db: &InstanceDatabase) -> String {
    if db.kind == aps_store::servers::DbKind::Sqlite {
        std::path::Path::new(&db.name)
            .file_stem()
            .map_or_else(|| db.name.clone(), |s| s.to_string_lossy().into_owned())
    } else {
        db.name.clone()
    }
}

/// Records `db` of `loaded`'s instance as kept after its removal (`--keep-databases`), with its
/// sealed password, and returns its kept-database id. A removal completed again (by `recover`
/// or a second `remove` after a crash) finds the record its first run made and returns it.
pub(crate) fn keep(
    ctx: &Context,
    loaded: &crate::instance::Loaded,
    db: &InstanceDatabase,
) -> Result<i64, Error> {
    let recorded = ctx.store()?.kept_databases().list()?.into_iter().find(|k| {
        k.instance == loaded.instance.id
            && k.db_id == db.db_id
            && k.server == db.server
            && k.name == db.name
    });
    if let Some(kept) = recorded {
        return Ok(kept.id);
    }
    Ok(ctx
        .store()?
        .kept_databases()
        .insert(&aps_store::kept::KeptDatabase {
            id: 0,
            instance: loaded.instance.id.clone(),
            site: loaded.site.name.clone(),
            db_id: db.db_id.clone(),
            kind: db.kind,
            server: db.server.clone(),
            name: db.name.clone(),
            login: db.login.clone(),
            password: ctx.vault.seal(&db.password)?,
            host: db.host.clone(),
            port: db.port,
            kept_at: crate::now(ctx),
        })?)
}

/// A kept database as `database kept` shows it (never its password).
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeptView {
    /// Its id (for `database drop`).
    pub id: i64,
    /// The removed instance it belonged to.
    pub instance: String,
    /// That instance's site.
    pub site: String,
    /// The `db:id` it served.
    pub db_id: String,
    /// `mysql`, `postgresql` or `sqlite`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The registered server.
    pub server: Option<String>,
    /// Database name (SQLite: the file's path).
    pub name: String,
    /// Its login.
    pub login: String,
    /// Host.
    pub host: String,
    /// Port.
    pub port: Option<u16>,
}

impl From<aps_store::kept::KeptDatabase> for KeptView {
    fn from(k: aps_store::kept::KeptDatabase) -> Self {
        Self {
            id: k.id,
            instance: k.instance,
            site: k.site,
            db_id: k.db_id,
            kind: k.kind.as_str().to_owned(),
            server: k.server,
            name: k.name,
            login: k.login,
            host: k.host,
            port: k.port,
        }
    }
}

/// Every database kept after its instance was removed.
pub fn kept(ctx: &Context) -> Result<Vec<KeptView>, Error> {
    Ok(ctx
        .store()?
        .kept_databases()
        .list()?
        .into_iter()
        .map(KeptView::from)
        .collect())
}

/// Drops kept database `id` and its login, then forgets it.
pub fn drop_kept(ctx: &Context, id: i64) -> Result<KeptView, Error> {
    let kept = ctx.store()?.kept_databases().get(id)?;
    let db = InstanceDatabase {
        db_id: kept.db_id.clone(),
        kind: kept.kind,
        server: kept.server.clone(),
        name: kept.name.clone(),
        login: kept.login.clone(),
        password: String::new(),
        host: kept.host.clone(),
        port: kept.port,
        version: String::new(),
        prefix: None,
        shared: false,
    };
    drop(ctx, &db)?;
    ctx.store()?.kept_databases().delete(id)?;
    Ok(kept.into())
}

/// `--use-database ID=INSTANCE[:DBID]`: the database of another instance to share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedDatabase {
    /// The instance whose database is reused.
    pub instance: String,
    /// Its `db:id`.
    pub db_id: String,
}

/// How one `db:db` requirement of a new instance is provided.
#[derive(Debug, Clone)]
pub(crate) enum Provision {
    /// A new database and login, with an optional table prefix.
    New {
        /// `DB_<id>_PREFIX`, when given.
        prefix: Option<String>,
    },
    /// The database of another instance of the same owner, with a table prefix.
    Shared {
        /// The record the new instance gets (prefix set, `shared`).
        db: InstanceDatabase,
        /// The instance whose database it is.
        instance: String,
    },
}

/// Checks the caller's table prefixes and shared databases (REFERENCE §6.3, D9) before any change.
pub(crate) fn plan(
    ctx: &Context,
    site: &aps_store::sites::Site,
    satisfied: &crate::runtime::Satisfied,
    prefixes: &std::collections::BTreeMap<String, String>,
    shared: &std::collections::BTreeMap<String, SharedDatabase>,
) -> Result<std::collections::BTreeMap<String, Provision>, Error> {
    let mut out = std::collections::BTreeMap::new();
    for id in prefixes.keys().chain(shared.keys()) {
        if !satisfied.databases.iter().any(|d| &d.requirement.id == id) {
            return Err(Error::Invalid(format!(
                "the package has no database requirement with db:id `{id}`"
            )));
        }
    }
    for choice in &satisfied.databases {
        let req = &choice.requirement;
        let prefix = prefixes.get(&req.id);
        if let Some(prefix) = prefix {
            if !req.can_use_tables_prefix {
                return Err(Error::Invalid(format!(
                    "db:id `{}` does not allow a table prefix (db:can-use-tables-prefix is not true)",
                    req.id
                )));
            }
            check_prefix(prefix)?;
        }
        let provision = match (shared.get(&req.id), prefix) {
            (None, prefix) => Provision::New {
                prefix: prefix.cloned(),
            },
            (Some(s), None) => {
                return Err(Error::Invalid(format!(
                    "sharing database `{}` of instance {} needs a table prefix: add --db-prefix {}=PREFIX",
                    s.db_id, s.instance, req.id
                )));
            }
            (Some(s), Some(prefix)) => Provision::Shared {
                db: shared_database(ctx, site, req, s, prefix)?,
                instance: s.instance.clone(),
            },
        };
        out.insert(req.id.clone(), provision);
    }
    Ok(out)
}

/// A table prefix: a letter or `_`, then letters, digits or `_`; at most 32 characters.
fn check_prefix(prefix: &str) -> Result<(), Error> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 32
        && prefix
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "table prefix `{prefix}` is not valid: use up to 32 letters, digits or `_`, not starting with a digit"
        )))
    }
}

/// The database record of `shared`, checked to be of the type `req` needs.
pub(crate) fn shared_record(
    ctx: &Context,
    shared: &SharedDatabase,
    req: &aps_meta::model::DbRequirement,
) -> Result<InstanceDatabase, Error> {
    let db = ctx
        .store()?
        .instances()
        .databases(&shared.instance)?
        .into_iter()
        .find(|d| d.db_id == shared.db_id)
        .ok_or_else(|| {
            Error::NotFound(format!(
                "instance {} has no database with db:id `{}`",
                shared.instance, shared.db_id
            ))
        })?;
    if db.kind.as_str() != req.server_type {
        return Err(Error::Invalid(format!(
            "database `{}` of instance {} is {}, but db:id `{}` needs {}",
            db.name,
            shared.instance,
            db.kind.as_str(),
            req.id,
            req.server_type
        )));
    }
    Ok(db)
}

fn shared_database(
    ctx: &Context,
    site: &aps_store::sites::Site,
    req: &aps_meta::model::DbRequirement,
    shared: &SharedDatabase,
    prefix: &str,
) -> Result<InstanceDatabase, Error> {
    let other = ctx.store()?.instances().get(&shared.instance)?;
    let other_site = ctx.store()?.sites().get(&other.site)?;
    if other_site.system_user != site.system_user {
        return Err(Error::Invalid(format!(
            "instance {} belongs to system user `{}`, not to `{}`, the owner of site `{}`",
            shared.instance, other_site.system_user, site.system_user, site.name
        )));
    }
    let db = shared_record(ctx, shared, req)?;
    for user in users_of(ctx, &db)? {
        if user.prefix.as_deref().unwrap_or("") == prefix {
            return Err(Error::Conflict(format!(
                "table prefix `{prefix}` is already used in database `{}`",
                db.name
            )));
        }
    }
    let password = ctx.vault.unseal(&db.password)?;
    Ok(InstanceDatabase {
        db_id: req.id.clone(),
        password,
        prefix: Some(prefix.to_owned()),
        shared: true,
        ..db
    })
}

/// Every instance database record that lives in the same database as `db`.
pub(crate) fn users_of(
    ctx: &Context,
    db: &InstanceDatabase,
) -> Result<Vec<InstanceDatabase>, Error> {
    let mut out = Vec::new();
    for inst in ctx.store()?.instances().list()? {
        for other in ctx.store()?.instances().databases(&inst.id)? {
            if other.server == db.server && other.name == db.name {
                out.push(other);
            }
        }
    }
    Ok(out)
}

/// The records with their passwords sealed for the store ([`crate::vault`]).
pub(crate) fn sealed(
    ctx: &Context,
    dbs: Vec<InstanceDatabase>,
) -> Result<Vec<InstanceDatabase>, Error> {
    dbs.into_iter()
        .map(|db| {
            let password = if db.password.is_empty() {
                String::new()
            } else {
                ctx.vault.seal(&db.password)?
            };
            Ok(InstanceDatabase { password, ..db })
        })
        .collect()
}

/// The records with their passwords opened ([`crate::vault`]).
pub(crate) fn unsealed(
    ctx: &Context,
    dbs: Vec<InstanceDatabase>,
) -> Result<Vec<InstanceDatabase>, Error> {
    dbs.into_iter()
        .map(|db| {
            Ok(InstanceDatabase {
                password: ctx.vault.unseal(&db.password)?,
                ..db
            })
        })
        .collect()
}
