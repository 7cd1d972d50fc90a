//! Install: provision a new instance of a package on a site (REFERENCE §8.3; D4–D10, D13).
//!
//! Main decision: everything that can be checked is checked before the first change — license,
//! placement, every setting, interpreters, every requirement, free space and quota, the size of
//! the scripts' environment — and reported at once. Then, under the site's lock, the place is
//! reserved: the placement is checked again and the instance is recorded in state `installing`
//! (other installs see it from then on, so the site lock is released at once). Each change after
//! that is journaled before it is made ([`crate::journal`]): private folder, databases, private
//! copy of metadata and scripts, the instance root (created or claimed) and its files,
//! `configure install`, opening access, and the commit (the instance `ready` and the operation's
//! outcome in one transaction). A failure or a crash at any point is undone from the journal;
//! a `configure install` that ran is answered by `configure remove` first (§11 Q27).
//!
//! Known gaps: child services are not provisioned (only the root service); add-on packages
//! (`master-package`) are refused (§11 Q32); sites served by nginx or Apache are not configured
//! yet — access is opened and closed through the instance root's permissions only.
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use aps_host::user::SystemUser;
use aps_host::web::Access;
use aps_meta::model::{Service, Setting};
use aps_meta::value::{SettingValue, ValidationMode};
use aps_store::instances::{InstanceDatabase, InstanceState, NewInstance};
use aps_store::sites::Site;
use serde::Serialize;

use crate::change::Change;
use crate::context::Context;
use crate::deploy::{self, DeployPlan};
use crate::error::Error;
use crate::journal::Journal;
use crate::package::{self, StoredPackage};
use crate::placement::{Place, Target};
use crate::report::Reporter;
use crate::runtime::{self, DbChoice};
use crate::script::ConfigScript;
use crate::site::SiteUrl;
use crate::vars::{InstallOnly, VarSet};

/// Whether the caller accepted the package's license.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum License {
    /// `--accept-license` was given.
    Accepted,
    /// It was not.
    #[default]
    NotAccepted,
}

impl License {
    /// [`License::Accepted`] when `accepted` (a flag or a request field) says so.
    pub fn accepted_if(accepted: bool) -> Self {
        if accepted {
            Self::Accepted
        } else {
            Self::NotAccepted
        }
    }
}

/// Whether to change anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunMode {
    /// Install.
    #[default]
    Apply,
    /// Only check and print the plan (`--dry-run`).
    DryRun,
}

/// What `install` needs.
#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    /// Package reference.
    pub package: String,
    /// Site name.
    pub site: String,
    /// Installation path below the site root; `None` takes the package's default prefix.
    pub path: Option<String>,
    /// Setting values by id, as typed by the user.
    pub settings: BTreeMap<String, String>,
    /// License acceptance.
    pub license: License,
    /// The database server to use (else apsctl picks one per requirement).
    pub db_server: Option<String>,
    /// Table prefixes by `db:id` (`--db-prefix ID=PREFIX`; only where `db:can-use-tables-prefix`).
    pub table_prefixes: BTreeMap<String, String>,
    /// Databases of other instances of the same site owner to install into, by `db:id`
    /// (`--use-database ID=INSTANCE[:DBID]`); each needs a table prefix.
    pub shared_databases: BTreeMap<String, crate::database::SharedDatabase>,
    /// Apply or dry run.
    pub mode: RunMode,
}

/// A database the plan creates.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedDatabase {
    /// `db:id`.
    pub id: String,
    /// `mysql`, `postgresql` or `sqlite`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The registered server chosen.
    pub server: String,
    /// Table prefix, when one was given.
    pub prefix: Option<String>,
    /// The instance whose database is reused, when sharing.
    pub shared_with: Option<String>,
}

/// What an install does (printed by `--dry-run`, returned by every install).
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Site.
    pub site: String,
    /// Installation path below the site root (empty for the root).
    pub path: String,
    /// The instance's URL.
    pub url: String,
    /// The instance's root directory.
    pub root: PathBuf,
    /// Databases and logins to create.
    pub databases: Vec<PlannedDatabase>,
    /// Alternatives chosen among `choice` requirements.
    pub choices: Vec<String>,
    /// Files deployed.
    pub files: u64,
    /// Bytes deployed.
    pub bytes: u64,
    /// Names of the variables the configuration script receives.
    pub variables: Vec<String>,
    /// Script runs, in order.
    pub scripts: Vec<String>,
}

/// The result of `install`.
#[derive(Debug, Clone, Serialize)]
pub struct InstallReport {
    /// The new instance's id (`None` for a dry run).
    pub instance: Option<String>,
    /// Its URL.
    pub url: String,
    /// Its state: `ready`, or `planned` for a dry run.
    pub state: String,
    /// The plan.
    pub plan: Plan,
}

/// What an instance is made from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source<'a> {
    /// The package's files and `configure install` (an install).
    Package,
    /// A backup archive's files and databases, then the backup script's `restore` and
    /// `configure configure` (a restore, and the second half of a migration:
    /// `crate::restore`), under the given instance id when one is given (a restore over an
    /// instance keeps its id) or a new one.
    Backup(&'a crate::restore::Backup, Option<&'a str>),
}

/// Everything checked before the first change.
struct Checked<'p> {
    source: Source<'p>,
    site: Site,
    user: SystemUser,
    url: SiteUrl,
    prefix: String,
    root: PathBuf,
    target: Target,
    service: &'p Service,
    values: BTreeMap<String, SettingValue>,
    /// The package, for its global settings.
    package: &'p aps_meta::model::Package,
    /// The global setting values saved for the package's identity (unsealed).
    globals: BTreeMap<String, String>,
    satisfied: runtime::Satisfied,
    provisions: BTreeMap<String, crate::database::Provision>,
    script: Option<ConfigScript<'p>>,
    deploy: Option<DeployPlan>,
}

/// Installs (or plans) an instance.
pub fn install(
    ctx: &Context,
    opts: &InstallOptions,
    reporter: &dyn Reporter,
) -> Result<InstallReport, Error> {
    install_from(ctx, opts, Source::Package, reporter)
}

/// Makes a new instance of `opts.package` from `source`, with every check, journaled step and
/// crash semantic of an install.
pub(crate) fn install_from(
    ctx: &Context,
    opts: &InstallOptions,
    source: Source<'_>,
    reporter: &dyn Reporter,
) -> Result<InstallReport, Error> {
    let pkg = package::load(ctx, &opts.package)?;
    let site = ctx.store()?.sites().get(&opts.site)?;
    let user = SystemUser::lookup(&site.system_user)
        .map_err(|e| Error::Invalid(format!("site `{}`: {e}", site.name)))?;
    let mut checked = check(ctx, &pkg, opts, source, site, &user)?;
    let plan = plan(ctx, &pkg, &checked)?;
    for (n, choice) in checked.satisfied.choices.iter().enumerate() {
        reporter.step(&format!("requirement choice {}: alternative `{choice}` selected (the first one this site satisfies)", n + 1));
    }
    for db in &plan.databases {
        reporter.step(&format!(
            "db:id `{}` will use {} server `{}`",
            db.id, db.kind, db.server
        ));
    }
    if opts.mode == RunMode::DryRun {
        return Ok(InstallReport {
            instance: None,
            url: plan.url.clone(),
            state: "planned".into(),
            plan,
        });
    }
    // Reserve the place under the site's lock: placement again (another install may have taken
    // it meanwhile), the id, and the instance's record, which later installs see.
    let site_lock = crate::lock::site(ctx, &checked.site.name)?;
    let (_, _, target) = placement(ctx, &checked.site, &checked.prefix)?;
    checked.target = target;
    let (id, _lock) = match source {
        Source::Backup(_, Some(id)) => reuse_id(ctx, id)?,
        _ => allocate_id(ctx)?,
    };
    let private = ctx.home.instance(&id);
    if let Some(script) = &mut checked.script {
        script.scripts_dir = crate::script::scripts_dir(&private);
    }
    let params = serde_json::json!({
        "package": pkg.summary.package, "site": checked.site.name, "path": checked.prefix,
        "settings": checked.values.iter().filter(|(_, v)| !v.is_secret()).map(|(k, _)| k).collect::<Vec<_>>(),
    });
    let kind = match source {
        Source::Package => "install",
        Source::Backup(..) => "restore",
    };
    let mut journal = Journal::begin(ctx, Some(&id), kind, &params)?;
    let reserved = reserve(ctx, &pkg, &checked, &id, &private, &mut journal);
    drop(site_lock);
    // §8.3 step 13 / §8.0 step 4: the instance and the operation's outcome in one transaction.
    let result = reserved
        .and_then(|()| apply(ctx, &pkg, &checked, &id, &private, &mut journal, reporter))
        .and_then(|record| {
            journal.finish_with("commit", crate::journal::Outcome::Done, |store| {
                Ok(store.instances().replace(&record)?)
            })
        });
    match result {
        Ok(()) => {
            reporter.step(&format!("instance {id} is ready at {}", plan.url));
            Ok(InstallReport {
                instance: Some(id),
                url: plan.url.clone(),
                state: "ready".into(),
                plan,
            })
        }
        Err(error) => Err(journal.rollback(reporter, error)),
    }
}

/// The checks of §8.3 steps 2–5, before any change.
fn check<'p>(
    ctx: &Context,
    pkg: &'p StoredPackage,
    opts: &InstallOptions,
    source: Source<'p>,
    site: Site,
    user: &'p SystemUser,
) -> Result<Checked<'p>, Error> {
    let meta = &pkg.meta;
    if let Some(master) = &meta.master_package {
        return Err(Error::Invalid(format!(
            "`{}` is an add-on of `{}`; installing add-ons is not supported yet",
            pkg.summary.package, master.id
        )));
    }
    let service = meta.root_service().ok_or_else(|| {
        Error::Invalid(format!("package `{}` has no service", pkg.summary.package))
    })?;
    // A restore brings back an instance whose license was accepted at its install.
    let restoring = matches!(source, Source::Backup(..));
    if let Some(license) = service.license.as_ref().filter(|_| !restoring) {
        if license.must_accept && opts.license != License::Accepted {
            let name = license.text_name.as_deref().unwrap_or("its license");
            return Err(Error::Invalid(format!(
                "package `{}` requires accepting {name}; read it (`apsctl package show {}`) and install with --accept-license",
                pkg.summary.package, pkg.summary.package
            )));
        }
    }
    user.ensure_not_root()
        .map_err(|e| Error::Invalid(format!("site `{}`: {e}", site.name)))?;
    if service.provision.configuration_script.is_some() {
        ctx.home.check_reachable()?;
    }
    let url = SiteUrl::parse(&site.url)?;
    let mapping = service.provision.url_mapping.as_ref();
    let default_prefix = mapping
        .and_then(|m| m.default_prefix.clone())
        .unwrap_or_default();
    let (prefix, root, target) =
        placement(ctx, &site, opts.path.as_deref().unwrap_or(&default_prefix))?;

    // A restore has the stored settings only (installation-only ones are never stored).
    let (settings, mode) = if restoring {
        let stored: Vec<&Setting> = service
            .all_settings()
            .into_iter()
            .filter(|s| !s.installation_only)
            .collect();
        (stored, ValidationMode::Reconfigure)
    } else {
        (service.all_settings(), ValidationMode::Install)
    };
    let values =
        crate::settings::validate(ctx, pkg, Some(&site), &settings, &opts.settings, None, mode)?;

    let script = match &service.provision.configuration_script {
        Some(decl) => Some(ConfigScript {
            decl,
            interpreter: runtime::interpreter(ctx, &site, user, decl)?,
            // Set once the instance has an id and a private folder.
            scripts_dir: PathBuf::new(),
            user,
        }),
        None => None,
    };
    let satisfied = runtime::check(
        ctx,
        &site,
        user,
        &service.requirements,
        opts.db_server.as_deref(),
        &opts.shared_databases,
    )?;
    let provisions = crate::database::plan(
        ctx,
        &site,
        &satisfied,
        &opts.table_prefixes,
        &opts.shared_databases,
    )?;
    let deploy = mapping.map(DeployPlan::new).transpose()?;
    // What the site's web server cannot serve is refused before anything changes.
    let web = crate::web::instance_web(&site, "0", &prefix, service, &satisfied.php_values)?;
    for access in [Access::Enabled, Access::Disabled] {
        crate::web::render(&site, &web, access)?;
    }
    if let Some(size) = mapping.and_then(|m| m.installed_size) {
        let free =
            aps_host::fsx::free_space(&site.docroot).map_err(|e| Error::Failed(e.to_string()))?;
        if free < size {
            return Err(Error::Invalid(format!(
                "site `{}` has {free} bytes free, the package needs {size} (installed-size)",
                site.name
            )));
        }
    }
    Ok(Checked {
        source,
        site,
        user: user.clone(),
        url,
        prefix,
        root,
        target,
        service,
        values,
        package: meta,
        globals: crate::global::saved(ctx, &pkg.summary.identity)?,
        satisfied,
        provisions,
        script,
        deploy,
    })
}

/// §8.3 step 4: the checked prefix, the instance root and what is there now. The root overlaps
/// no other instance of the site (installing ones included) and is absent or an empty folder
/// inside the document root.
fn placement(ctx: &Context, site: &Site, path: &str) -> Result<(String, PathBuf, Target), Error> {
    let prefix = crate::placement::check_prefix(path)?;
    for other in ctx.store()?.instances().list()? {
        if other.site == site.name && crate::placement::prefixes_overlap(&other.prefix, &prefix) {
            return Err(Error::Conflict(format!(
                "path `/{prefix}` of site `{}` overlaps instance {} at `/{}`",
                site.name, other.id, other.prefix
            )));
        }
    }
    let place = Place {
        docroot: &site.docroot,
        prefix: &prefix,
    };
    let (root, target) = (place.root(), place.target()?);
    Ok((prefix, root, target))
}

fn plan(ctx: &Context, pkg: &StoredPackage, c: &Checked<'_>) -> Result<Plan, Error> {
    let (mut files, mut bytes) = (0, 0);
    if let Source::Backup(backup, _) = c.source {
        for f in &backup.manifest.files {
            if let Some(d) = &f.digest {
                files += 1;
                bytes += d.size;
            }
        }
    } else if let Some(deploy) = &c.deploy {
        let archive = aps_archive::Archive::open(&pkg.archive, &ctx.config.archive_limits)
            .map_err(|e| Error::Failed(e.to_string()))?;
        for (name, size) in archive.files() {
            if deploy.target_of(name).is_some() {
                files += 1;
                bytes += size;
            }
        }
    }
    let dbs: Vec<InstanceDatabase> = c
        .satisfied
        .databases
        .iter()
        .map(|d| placeholder_db(ctx, d))
        .collect();
    let vars = variables(c, &c.root, &dbs, true);
    vars.check_size()?;
    check_quota(c, files, bytes)?;
    let name = c.script.as_ref().map(|s| s.decl.name.clone());
    Ok(Plan {
        site: c.site.name.clone(),
        path: c.prefix.clone(),
        url: c.url.instance_url(&c.prefix),
        root: c.root.clone(),
        databases: c
            .satisfied
            .databases
            .iter()
            .map(|d| {
                let id = &d.requirement.id;
                let (prefix, shared_with) = match c.provisions.get(id) {
                    Some(crate::database::Provision::New { prefix }) => (prefix.clone(), None),
                    Some(crate::database::Provision::Shared { db, instance }) => {
                        (db.prefix.clone(), Some(instance.clone()))
                    }
                    None => (None, None),
                };
                PlannedDatabase {
                    id: id.clone(),
                    kind: d.requirement.server_type.clone(),
                    server: d.server.clone(),
                    prefix,
                    shared_with,
                }
            })
            .collect(),
        choices: c.satisfied.choices.clone(),
        files,
        bytes,
        variables: vars.names(),
        scripts: match c.source {
            Source::Package => name
                .map(|n| vec![format!("{n} install")])
                .unwrap_or_default(),
            Source::Backup(backup, _) => backup
                .manifest
                .backup_script
                .iter()
                .map(|s| format!("{} restore", s.name))
                .chain(name.map(|n| format!("{n} configure")))
                .collect(),
        },
    })
}

/// D20 of the hardening issue: apsctl writes the files as root and gives them to the site's
/// user, which no disk quota stops, so where the site's user has a quota the plan's bytes (or
/// `installed-size`, when larger) and files must fit in what the user has left.
fn check_quota(c: &Checked<'_>, files: u64, bytes: u64) -> Result<(), Error> {
    let left = aps_host::quota::user_quota_left(&c.site.docroot, c.user.uid())
        .map_err(|e| Error::Failed(crate::error::chain(&e)))?;
    let Some(left) = left else { return Ok(()) };
    let installed = c
        .service
        .provision
        .url_mapping
        .as_ref()
        .and_then(|m| m.installed_size)
        .unwrap_or(0);
    let need_bytes = bytes.max(installed);
    // Every file and folder takes an inode; folders are at most as many as files.
    let need_inodes = files.saturating_mul(2);
    let short_bytes = left.bytes().is_some_and(|have| have < need_bytes);
    let short_inodes = left.inodes().is_some_and(|have| have < need_inodes);
    if short_bytes || short_inodes {
        let shown = |v: Option<u64>| v.map_or_else(|| "no limit".to_owned(), |v| v.to_string());
        return Err(Error::Invalid(format!(
            "user `{}` of site `{}` has {} bytes and {} files left under its disk quota; the install needs {need_bytes} bytes and up to {need_inodes} files",
            c.user.name(),
            c.site.name,
            shown(left.bytes()),
            shown(left.inodes())
        )));
    }
    Ok(())
}

fn placeholder_db(ctx: &Context, d: &DbChoice) -> InstanceDatabase {
    let kind = ctx
        .store()
        .ok()
        .and_then(|store| store.db_servers().get(&d.server).ok())
        .map_or(aps_store::servers::DbKind::Mysql, |s| s.kind);
    InstanceDatabase {
        db_id: d.requirement.id.clone(),
        kind,
        server: Some(d.server.clone()),
        name: String::new(),
        login: String::new(),
        password: String::new(),
        host: String::new(),
        port: None,
        version: String::new(),
        prefix: None,
        shared: false,
    }
}

/// The environment of `configure install` (`with_install_only`) or of later runs.
fn variables(
    c: &Checked<'_>,
    root: &Path,
    dbs: &[InstanceDatabase],
    with_install_only: bool,
) -> VarSet {
    let mut vars = VarSet::default();
    vars.url(&c.url, &c.prefix);
    vars.web(c.service.provision.url_mapping.as_ref(), root);
    vars.databases(dbs);
    let settings = c.service.all_settings();
    let encoded: Vec<(String, String, bool)> = settings
        .iter()
        .filter(|s| with_install_only || !s.installation_only)
        .filter_map(|s| {
            c.values
                .get(&s.id)
                .map(|v| (s.id.clone(), v.encode(), v.is_secret()))
        })
        .collect();
    vars.global_settings(
        c.package,
        &c.globals,
        if with_install_only {
            InstallOnly::Passed
        } else {
            InstallOnly::Left
        },
    );
    vars.settings(encoded.iter().map(|(k, v, s)| (k.as_str(), v.as_str(), *s)));
    vars
}

/// Takes instance id `id` again for a restore over the instance that had it (removed just
/// before): its lock, then its private folder, which must not exist.
fn reuse_id(ctx: &Context, id: &str) -> Result<(String, aps_host::lock::OpLock), Error> {
    let lock = crate::lock::instance(ctx, id, "restore")?;
    let dir = ctx.home.instance(id);
    std::fs::DirBuilder::new()
        .mode(0o711)
        .create(&dir)
        .map_err(|e| Error::io(&dir, e))?;
    fs_err::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))?;
    Ok((id.to_owned(), lock))
}

/// Picks the next free numeric instance id: takes its lock, then creates its private folder
/// (atomic: a taken id fails and the next is tried). The lock comes first so that `recover`,
/// which removes private folders nobody owns, never takes a folder an install just made.
///
/// Ids are never reused: the highest id handed out is kept in `<home>/last-instance-id` (like a
/// database sequence, it does not go back when an install is rolled back), so a new instance
/// never takes the id, and the journal history, of a removed one.
fn allocate_id(ctx: &Context) -> Result<(String, aps_host::lock::OpLock), Error> {
    let last_file = ctx.home.last_instance_id();
    let mut next = match fs_err::read_to_string(&last_file) {
        Ok(text) => text.trim().parse::<u64>().map_or(1, |n| n + 1),
        Err(_) => 1,
    };
    for entry in fs_err::read_dir(ctx.home.instances())? {
        if let Ok(n) = entry?.file_name().to_string_lossy().parse::<u64>() {
            next = next.max(n + 1);
        }
    }
    for inst in ctx.store()?.instances().list()? {
        if let Ok(n) = inst.id.parse::<u64>() {
            next = next.max(n + 1);
        }
    }
    loop {
        let id = next.to_string();
        let Some(lock) = crate::lock::try_instance(ctx, &id, "install")? else {
            next += 1;
            continue;
        };
        let dir = ctx.home.instance(&id);
        match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => {
                fs_err::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))?;
                aps_host::fsx::write_atomic(&last_file, id.as_bytes())
                    .map_err(|e| Error::Failed(e.to_string()))?;
                return Ok((id, lock));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => next += 1,
            Err(e) => return Err(Error::io(&dir, e)),
        }
    }
}

use std::os::unix::fs::DirBuilderExt;

/// The first changes, made under the site's lock: the private folder (made by
/// [`allocate_id`]) and the instance's record in state `installing`, which reserves its place.
fn reserve(
    ctx: &Context,
    pkg: &StoredPackage,
    c: &Checked<'_>,
    id: &str,
    private: &Path,
    journal: &mut Journal<'_>,
) -> Result<(), Error> {
    journal.step("private-dir", |j| {
        j.change(
            Change::HomeFolder {
                path: private.to_path_buf(),
            },
            || Ok(()),
        )
    })?;
    let record = instance_record(ctx, pkg, c, id, InstanceState::Installing)?;
    journal.step("record", |j| {
        j.change(
            Change::InstanceRecord {
                instance: id.to_owned(),
            },
            || Ok(ctx.store()?.instances().commit(&record)?),
        )
    })
}

/// The instance's record in `state`, with its settings and without databases, files or system
/// changes.
fn instance_record(
    ctx: &Context,
    pkg: &StoredPackage,
    c: &Checked<'_>,
    id: &str,
    state: InstanceState,
) -> Result<NewInstance, Error> {
    Ok(NewInstance {
        id: id.to_owned(),
        site: c.site.name.clone(),
        prefix: c.prefix.clone(),
        url: c.url.instance_url(&c.prefix),
        package_ref: pkg.summary.package.clone(),
        state,
        choices_json: serde_json::to_string(&c.satisfied.choices).unwrap_or_else(|_| "[]".into()),
        settings: stored_settings(ctx, c)?,
        databases: Vec::new(),
        system_changes: Vec::new(),
        files: Vec::new(),
        at: crate::now(ctx),
    })
}

/// The settings as stored: installation-only ones left out, secrets sealed.
fn stored_settings(
    ctx: &Context,
    c: &Checked<'_>,
) -> Result<Vec<aps_store::instances::Setting>, Error> {
    let mut settings = Vec::new();
    for s in c
        .service
        .all_settings()
        .into_iter()
        .filter(|s| !s.installation_only)
    {
        if let Some(v) = c.values.get(&s.id) {
            let value = if v.is_secret() {
                ctx.vault.seal(&v.encode())?
            } else {
                v.encode()
            };
            settings.push(aps_store::instances::Setting {
                setting_id: s.id.clone(),
                value,
                secret: v.is_secret(),
            });
        }
    }
    Ok(settings)
}

/// §8.3 steps 6–11 after the place is reserved; returns the record the commit stores.
fn apply(
    ctx: &Context,
    pkg: &StoredPackage,
    c: &Checked<'_>,
    id: &str,
    private: &Path,
    journal: &mut Journal<'_>,
    reporter: &dyn Reporter,
) -> Result<NewInstance, Error> {
    // Resources: one database and login per db:db, verified before going on (§8.3 step 6).
    let mut dbs = Vec::new();
    for choice in &c.satisfied.databases {
        let db = match c.provisions.get(&choice.requirement.id) {
            Some(crate::database::Provision::Shared { db, .. }) => {
                reporter.step(&format!(
                    "using database `{}` with table prefix `{}` for db:id `{}`",
                    db.name,
                    db.prefix.as_deref().unwrap_or(""),
                    db.db_id
                ));
                journal.step("database-shared", |_| {
                    let sealed = crate::database::sealed(ctx, vec![db.clone()])?;
                    for record in &sealed {
                        ctx.store()?.instances().add_database(id, record)?;
                    }
                    Ok(db.clone())
                })?
            }
            Some(crate::database::Provision::New { prefix }) => crate::database::create(
                ctx,
                journal,
                choice,
                id,
                prefix.clone(),
                &c.user,
                reporter,
            )?,
            None => crate::database::create(ctx, journal, choice, id, None, &c.user, reporter)?,
        };
        dbs.push(db);
    }
    // Private copy of the metadata and the scripts (§4.3), inside the private folder.
    journal.step("private-copy", |_| private_copy(ctx, pkg, private, &c.user))?;
    // Files (§8.3 step 8): the package's, or a backup's (with its databases' contents).
    let deployed = place_files(ctx, pkg, c, private, &dbs, journal, reporter)?;
    match c.source {
        // configure install (§8.3 step 10): journaled before it runs, so that a crash while it
        // runs is answered by `configure remove` too.
        Source::Package => {
            if let Some(script) = &c.script {
                let vars = variables(c, &c.root, &dbs, true);
                script.run_step(journal, id, "install", &[], &vars, reporter)?;
            }
        }
        // §8.8 step 8: the backup script's `restore`; then `configure configure`, so that the
        // application learns its (maybe new) URL and databases (D12).
        Source::Backup(..) => {
            let scripts = crate::restore::Scripts {
                service: c.service,
                config: c.script.as_ref(),
                vars: variables(c, &c.root, &dbs, false),
                private,
                user: &c.user,
                site: &c.site,
            };
            crate::restore::run_scripts(ctx, journal, &scripts, reporter)?;
        }
    }
    open_access(journal, c, id, deployed.as_ref(), reporter)?;
    // The record committed by the caller (§8.3 step 13).
    let (files, system_changes) = match deployed {
        Some(d) => (
            d.files,
            d.created_parents
                .iter()
                .chain(&d.claimed)
                .chain(web_change(c, id).as_ref())
                .map(|change| aps_store::instances::NewSystemChange {
                    kind: change.kind().to_owned(),
                    data_json: change.to_json(),
                })
                .collect(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    Ok(NewInstance {
        databases: crate::database::sealed(ctx, dbs)?,
        system_changes,
        files,
        ..instance_record(ctx, pkg, c, id, InstanceState::Ready)?
    })
}

/// §8.3 step 11, open access: the web server's configuration (with the instance's own PHP
/// settings), then the instance root's mode.
fn open_access(
    journal: &mut Journal<'_>,
    c: &Checked<'_>,
    id: &str,
    deployed: Option<&deploy::Deployed>,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    let web = crate::web::instance_web(&c.site, id, &c.prefix, c.service, &c.satisfied.php_values)?;
    for (name, value) in &web.php_values {
        reporter.step(&format!(
            "PHP setting `{name}` = `{value}` for this instance (the site's PHP-FPM has less)"
        ));
    }
    crate::web::apply(
        journal,
        "web-config",
        &c.site,
        &web,
        Access::Enabled,
        reporter,
    )?;
    if let Some(d) = deployed {
        journal.step("open-access", |_| {
            deploy::open_access(
                Place {
                    docroot: &c.site.docroot,
                    prefix: &c.prefix,
                },
                d.open_mode,
            )
        })?;
    }
    Ok(())
}

/// The system change an instance keeps for its web server configuration (its removal removes
/// the file); none when apsctl configures no web server for the site.
fn web_change(c: &Checked<'_>, id: &str) -> Option<Change> {
    crate::web::config_dir(&c.site).map(|_| Change::WebConfig {
        site: c.site.name.clone(),
        instance: id.to_owned(),
        previous: None,
    })
}

/// §8.3 step 8: the files of the new instance — the package's, deployed, or a backup's,
/// restored together with its databases' contents.
fn place_files(
    ctx: &Context,
    pkg: &StoredPackage,
    c: &Checked<'_>,
    private: &Path,
    dbs: &[InstanceDatabase],
    journal: &mut Journal<'_>,
    reporter: &dyn Reporter,
) -> Result<Option<deploy::Deployed>, Error> {
    let place = Place {
        docroot: &c.site.docroot,
        prefix: &c.prefix,
    };
    Ok(match (c.source, &c.deploy) {
        (Source::Backup(backup, _), _) => {
            reporter.step(&format!("restoring files to `{}`", c.root.display()));
            let input = crate::restore::FillInput {
                backup,
                place,
                target: &c.target,
                user: &c.user,
                databases: dbs,
                tmp: &private.join("tmp"),
            };
            Some(journal.step("restore-data", |j| {
                crate::restore::fill(ctx, j, &input, reporter)
            })?)
        }
        (Source::Package, Some(plan)) => {
            reporter.step(&format!("deploying files to `{}`", c.root.display()));
            let input = deploy::DeployInput {
                archive: &pkg.archive,
                plan,
                place,
                target: &c.target,
                user: &c.user,
                limits: &ctx.config.archive_limits,
            };
            Some(journal.step("deploy", |j| deploy::deploy(j, &input))?)
        }
        (Source::Package, None) => None,
    })
}

/// Copies `APP-META.xml` and `scripts/` from the archive into the private folder: root-owned,
/// readable by the site user (files 0644, folders 0755, whatever the umask), and a `tmp/` folder
/// owned by the site user (0700).
pub(crate) fn private_copy(
    ctx: &Context,
    pkg: &StoredPackage,
    private: &Path,
    user: &SystemUser,
) -> Result<(), Error> {
    let mkdir = |dir: &Path, mode: u32| -> Result<(), Error> {
        std::fs::DirBuilder::new()
            .mode(mode)
            .create(dir)
            .map_err(|e| Error::io(dir, e))?;
        fs_err::set_permissions(dir, std::fs::Permissions::from_mode(mode))?;
        Ok(())
    };
    let meta_dir = private.join("meta");
    mkdir(&meta_dir, 0o755)?;
    // One opening (central directory checks) serves both copies.
    let mut archive = aps_archive::Archive::open(&pkg.archive, &ctx.config.archive_limits)
        .map_err(|e| Error::Failed(e.to_string()))?;
    let bytes = archive
        .read_file(package::APP_META, 16 << 20)
        .map_err(|e| Error::Failed(e.to_string()))?;
    let meta_file = meta_dir.join(package::APP_META);
    aps_host::fsx::write_atomic(&meta_file, &bytes).map_err(|e| Error::Failed(e.to_string()))?;
    fs_err::set_permissions(&meta_file, std::fs::Permissions::from_mode(0o644))?;
    let scripts = crate::script::scripts_dir(private);
    mkdir(&scripts, 0o755)?;
    archive
        .extract(&scripts, &|name| {
            name.strip_prefix("scripts/")
                .filter(|r| !r.is_empty())
                .map(PathBuf::from)
        })
        .map_err(|e| Error::Failed(e.to_string()))?;
    let tmp = private.join("tmp");
    mkdir(&tmp, 0o700)?;
    aps_host::safedir::SafeDir::open(&tmp)
        .and_then(|dir| dir.chown(user.uid(), user.gid()))
        .map_err(Error::Site)?;
    Ok(())
}
