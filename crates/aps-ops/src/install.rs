//! Install: provision a new instance of a package on a site (REFERENCE §8.3; D4–D10, D13).
//!
//! Main decision: everything that can be checked is checked before the first change — license,
//! placement, every setting, interpreters, every requirement, free space — and reported at once.
//! Then each change is a journaled step with its undo: private folder, databases, private copy
//! of metadata and scripts, deployed files, `configure install`, opening access, and the store
//! commit. A failure at any step undoes the completed ones in reverse; when `configure install`
//! had already succeeded, `configure remove` runs first (§11 Q27).
//!
//! Known gaps: child services are not provisioned (only the root service); add-on packages
//! (`master-package`) are refused (§11 Q32); sites served by nginx or Apache are not configured
//! yet — access is opened and closed through the instance root's permissions only.
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use aps_host::lock::OpLock;
use aps_host::user::SystemUser;
use aps_meta::model::{Service, Setting};
use aps_meta::value::{SettingValue, ValidateOptions, ValidationMode};
use aps_store::instances::{
    InstanceDatabase, InstanceState, NewInstance, OwnerScope, SettingValuesQuery,
};
use aps_store::sites::Site;
use serde::Serialize;

use crate::context::Context;
use crate::deploy::{self, DeployPlan};
use crate::error::Error;
use crate::journal::{Journal, Undo};
use crate::package::{self, StoredPackage};
use crate::report::Reporter;
use crate::runtime::{self, DbChoice};
use crate::script::ConfigScript;
use crate::site::SiteUrl;
use crate::vars::VarSet;

/// Whether the caller accepted the package's license.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum License {
    /// `--accept-license` was given.
    Accepted,
    /// It was not.
    #[default]
    NotAccepted,
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

/// Everything checked before the first change.
struct Checked<'p> {
    site: Site,
    user: SystemUser,
    url: SiteUrl,
    prefix: String,
    root: PathBuf,
    service: &'p Service,
    values: BTreeMap<String, SettingValue>,
    /// The package, for its global settings.
    package: &'p aps_meta::model::Package,
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
    let pkg = package::load(ctx, &opts.package)?;
    let site = ctx.store.sites().get(&opts.site)?;
    let user = SystemUser::lookup(&site.system_user)
        .map_err(|e| Error::Invalid(format!("site `{}`: {e}", site.name)))?;
    let mut checked = check(ctx, &pkg, opts, site, &user)?;
    let plan = plan(ctx, &pkg, &checked)?;
    if checked.site.web != aps_store::sites::WebKind::None {
        reporter.warn(&format!(
            "site `{}` is served by {}, whose configuration apsctl does not write yet: handlers and access are left to the server's own configuration, and access is closed only through the instance folder's permissions",
            checked.site.name,
            checked.site.web.as_str()
        ));
    }
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
    let _site_lock = OpLock::acquire(
        &ctx.home
            .staging()
            .join(format!("site-{}.lock", checked.site.name)),
        &format!(
            "install on site {} (pid {})",
            checked.site.name,
            std::process::id()
        ),
    )
    .map_err(|e| Error::Busy(format!("site `{}`: {e}", checked.site.name)))?;
    let id = allocate_id(ctx)?;
    let private = ctx.home.instance(&id);
    if let Some(script) = &mut checked.script {
        script.scripts_dir = crate::script::scripts_dir(&private);
    }
    let _lock = OpLock::acquire(
        &private.join("lock"),
        &format!("install of instance {id} (pid {})", std::process::id()),
    )
    .map_err(|e| Error::Busy(e.to_string()))?;
    let params = serde_json::json!({
        "package": pkg.summary.package, "site": checked.site.name, "path": checked.prefix,
        "settings": checked.values.iter().filter(|(_, v)| !v.is_secret()).map(|(k, _)| k).collect::<Vec<_>>(),
    });
    let mut journal = Journal::begin(ctx, Some(&id), "install", &params)?;
    if let Err(error) = journal.step(
        "private-dir",
        Undo::RemoveTree {
            path: private.clone(),
        },
        || Ok(()),
    ) {
        return Err(journal.rollback(reporter, error));
    }
    let mut progress = Progress::default();
    // §8.3 step 13 / §8.0 step 4: the instance and the operation's outcome in one transaction.
    let result = apply(
        ctx,
        &pkg,
        &checked,
        &id,
        &private,
        &mut journal,
        &mut progress,
        reporter,
    )
    .and_then(|record| {
        journal.finish_with("commit", crate::journal::Outcome::Done, |store| {
            Ok(store.instances().commit(&record)?)
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
        Err(error) => {
            if progress.script_done {
                undo_script(ctx, &checked, &progress.databases, reporter);
            }
            Err(journal.rollback(reporter, error))
        }
    }
}

/// The checks of §8.3 steps 2–5, before any change.
fn check<'p>(
    ctx: &Context,
    pkg: &'p StoredPackage,
    opts: &InstallOptions,
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
    if let Some(license) = &service.license {
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
    let (prefix, root) = placement(ctx, &site, opts.path.as_deref().unwrap_or(&default_prefix))?;

    let settings = service.all_settings();
    let values = validate_settings(
        ctx,
        pkg,
        &site,
        &settings,
        &opts.settings,
        None,
        ValidationMode::Install,
    )?;

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
        site,
        user: user.clone(),
        url,
        prefix,
        root,
        service,
        values,
        package: meta,
        satisfied,
        provisions,
        script,
        deploy,
    })
}

/// §8.3 step 4: the checked prefix and the instance root, which overlaps no other instance of
/// the site and is absent or an empty folder inside the document root.
fn placement(ctx: &Context, site: &Site, path: &str) -> Result<(String, PathBuf), Error> {
    let prefix = deploy::check_prefix(path)?;
    for other in ctx.store.instances().list()? {
        if other.site == site.name && deploy::prefixes_overlap(&other.prefix, &prefix) {
            return Err(Error::Conflict(format!(
                "path `/{prefix}` of site `{}` overlaps instance {} at `/{}`",
                site.name, other.id, other.prefix
            )));
        }
    }
    let root = if prefix.is_empty() {
        site.docroot.clone()
    } else {
        site.docroot.join(&prefix)
    };
    check_target(site, &root)?;
    Ok((prefix, root))
}

/// The target must lie inside the document root and be absent or an empty folder.
fn check_target(site: &Site, root: &Path) -> Result<(), Error> {
    let mut existing = root.to_path_buf();
    while !existing.exists() {
        if !existing.pop() {
            break;
        }
    }
    aps_host::fsx::ensure_inside(&site.docroot, &existing).map_err(|e| {
        Error::Invalid(format!(
            "installation directory `{}` is not inside the site's document root: {e}",
            root.display()
        ))
    })?;
    if root.exists() {
        let meta = fs_err::symlink_metadata(root)?;
        if !meta.is_dir() {
            return Err(Error::Conflict(format!(
                "installation directory `{}` exists and is not a folder",
                root.display()
            )));
        }
        if fs_err::read_dir(root)?.next().is_some() {
            return Err(Error::Conflict(format!(
                "installation directory `{}` is not empty; choose another --path or empty it first",
                root.display()
            )));
        }
    }
    Ok(())
}

/// Validates user input against the service's settings (all errors at once).
pub(crate) fn validate_settings(
    ctx: &Context,
    pkg: &StoredPackage,
    site: &Site,
    settings: &[&Setting],
    input: &BTreeMap<String, String>,
    instance: Option<&str>,
    mode: ValidationMode,
) -> Result<BTreeMap<String, SettingValue>, Error> {
    let mut taken = BTreeMap::new();
    for s in settings {
        let Some(uniq) = s.uniq else { continue };
        let scope = match uniq {
            aps_meta::model::Uniq::Global => OwnerScope::Global,
            aps_meta::model::Uniq::Owner => OwnerScope::SystemUser(&site.system_user),
        };
        let uses = ctx.store.instances().setting_values(&SettingValuesQuery {
            package_identity: &pkg.summary.identity,
            setting_id: &s.id,
            scope,
            exclude_instance: instance,
        })?;
        let values = uses
            .into_iter()
            .map(|u| ctx.vault.unseal(&u.value))
            .collect::<Result<_, _>>()?;
        taken.insert(s.id.clone(), values);
    }
    let opts = ValidateOptions {
        mode,
        taken,
        inherited: BTreeMap::new(),
    };
    aps_meta::value::validate(settings, input, &opts).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        Error::Invalid(format!(
            "the settings were refused:\n  {}",
            lines.join("\n  ")
        ))
    })
}

fn plan(ctx: &Context, pkg: &StoredPackage, c: &Checked<'_>) -> Result<Plan, Error> {
    let (mut files, mut bytes) = (0, 0);
    if let Some(deploy) = &c.deploy {
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
        scripts: name
            .map(|n| vec![format!("{n} install")])
            .unwrap_or_default(),
    })
}

fn placeholder_db(ctx: &Context, d: &DbChoice) -> InstanceDatabase {
    let kind = ctx
        .store
        .db_servers()
        .get(&d.server)
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
    vars.global_settings(c.package);
    vars.settings(encoded.iter().map(|(k, v, s)| (k.as_str(), v.as_str(), *s)));
    vars
}

/// Picks the next free numeric instance id by creating its private folder (atomic).
///
/// Ids are never reused: the highest id handed out is kept in `<home>/last-instance-id` (like a
/// database sequence, it does not go back when an install is rolled back), so a new instance
/// never takes the id, and the journal history, of a removed one.
fn allocate_id(ctx: &Context) -> Result<String, Error> {
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
    for inst in ctx.store.instances().list()? {
        if let Ok(n) = inst.id.parse::<u64>() {
            next = next.max(n + 1);
        }
    }
    loop {
        let dir = ctx.home.instance(&next.to_string());
        match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => {
                aps_host::fsx::write_atomic(&last_file, next.to_string().as_bytes())
                    .map_err(|e| Error::Failed(e.to_string()))?;
                return Ok(next.to_string());
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => next += 1,
            Err(e) => return Err(Error::io(&dir, e)),
        }
    }
}

use std::os::unix::fs::DirBuilderExt;

/// System change: a folder created above an instance root (`{"path": rel}` below the docroot).
pub(crate) const CREATED_FOLDER: &str = "created-folder";

/// What [`apply`] has done so far, for the rollback.
#[derive(Debug, Default)]
struct Progress {
    /// Databases created.
    databases: Vec<InstanceDatabase>,
    /// Whether `configure install` succeeded.
    script_done: bool,
}

#[expect(
    clippy::too_many_arguments,
    reason = "internal step runner of install; all state is one operation's"
)]
fn apply(
    ctx: &Context,
    pkg: &StoredPackage,
    c: &Checked<'_>,
    id: &str,
    private: &Path,
    journal: &mut Journal<'_>,
    progress: &mut Progress,
    reporter: &dyn Reporter,
) -> Result<NewInstance, Error> {
    // Resources: one database and login per db:db, verified before going on (§8.3 step 6).
    for choice in &c.satisfied.databases {
        let db = match c.provisions.get(&choice.requirement.id) {
            Some(crate::database::Provision::Shared { db, .. }) => {
                reporter.step(&format!(
                    "using database `{}` with table prefix `{}` for db:id `{}`",
                    db.name,
                    db.prefix.as_deref().unwrap_or(""),
                    db.db_id
                ));
                journal.step("database-shared", Undo::Nothing, || Ok(db.clone()))?
            }
            Some(crate::database::Provision::New { prefix }) => {
                let mut db = crate::database::create(ctx, journal, choice, id, &c.user, reporter)?;
                db.prefix.clone_from(prefix);
                db
            }
            None => crate::database::create(ctx, journal, choice, id, &c.user, reporter)?,
        };
        progress.databases.push(db);
    }
    let dbs = progress.databases.clone();
    // Private copy of the metadata and the scripts (§4.3).
    journal.step("private-copy", Undo::Nothing, || {
        private_copy(ctx, pkg, private, &c.user)
    })?;
    // Files.
    let deployed = match &c.deploy {
        Some(plan) => Some(deploy_files(ctx, pkg, c, plan, id, journal, reporter)?),
        None => None,
    };
    // configure install (§8.3 step 10).
    if let Some(script) = &c.script {
        let vars = variables(c, &c.root, &dbs, true);
        // Marked inside the step: a failure after the run (journal, test hook) must still run
        // `configure remove` on rollback.
        journal.step("configure-install", Undo::Nothing, || {
            script.run(ctx, "install", &[], &vars, reporter)?;
            progress.script_done = true;
            Ok(())
        })?;
    }
    // Open access (§8.3 step 11).
    if deployed.as_ref().is_some_and(|d| d.created_root) {
        journal.step("open-access", Undo::Nothing, || {
            deploy::open_access(deploy::Place {
                docroot: &c.site.docroot,
                prefix: &c.prefix,
            })
        })?;
    }
    // The record committed by the caller (§8.3 step 13).
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
    let dbs = crate::database::sealed(ctx, dbs)?;
    let record = NewInstance {
        id: id.to_owned(),
        site: c.site.name.clone(),
        prefix: c.prefix.clone(),
        url: c.url.instance_url(&c.prefix),
        package_ref: pkg.summary.package.clone(),
        state: InstanceState::Ready,
        choices_json: serde_json::to_string(&c.satisfied.choices).unwrap_or_else(|_| "[]".into()),
        settings,
        databases: dbs,
        system_changes: deployed
            .as_ref()
            .map(|d| {
                d.created_parents
                    .iter()
                    .map(|rel| aps_store::instances::NewSystemChange {
                        kind: CREATED_FOLDER.to_owned(),
                        data_json: serde_json::json!({ "path": rel }).to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        files: deployed.map(|d| d.files).unwrap_or_default(),
        at: crate::now(ctx),
    };
    Ok(record)
}

/// §8.3 step 8: stage, deploy and journal the files of the root mapping.
fn deploy_files(
    ctx: &Context,
    pkg: &StoredPackage,
    c: &Checked<'_>,
    plan: &DeployPlan,
    id: &str,
    journal: &mut Journal<'_>,
    reporter: &dyn Reporter,
) -> Result<deploy::Deployed, Error> {
    reporter.step(&format!("deploying files to `{}`", c.root.display()));
    let docroot = c.site.docroot.clone();
    let staging_name = format!(".apsctl-staging-{id}");
    let place = deploy::Place {
        docroot: &docroot,
        prefix: &c.prefix,
    };
    let first_missing = place.first_missing();
    let undo = Undo::RemoveInSite {
        docroot: docroot.clone(),
        rel: staging_name.clone(),
    };
    let staging = journal.step("stage", undo, || {
        deploy::create_staging(&docroot, &staging_name)
    })?;
    let undo = match &first_missing {
        Some(rel) => Undo::RemoveInSite {
            docroot: docroot.clone(),
            rel: rel.clone(),
        },
        None => Undo::RemoveEntries {
            docroot: docroot.clone(),
            rel: c.prefix.clone(),
            entries: Vec::new(),
        },
    };
    let done = journal.step("deploy", undo, || {
        deploy::deploy(
            &pkg.archive,
            plan,
            &staging,
            place,
            &c.user,
            &ctx.config.archive_limits,
        )
    })?;
    if first_missing.is_none() {
        journal.refine_last(Undo::RemoveEntries {
            docroot: docroot.clone(),
            rel: c.prefix.clone(),
            entries: done.entries.clone(),
        })?;
    }
    // The staging folder is empty now; a leftover is removed by the journal's undo only on failure.
    if let Ok(site) = aps_host::safedir::SafeDir::open(&docroot) {
        let _ = site.remove_dir(&staging_name);
    }
    Ok(done)
}

/// Copies `APP-META.xml` and `scripts/` from the archive into the private folder: root-owned,
/// readable by the site user, and a `tmp/` folder owned by the site user.
fn private_copy(
    ctx: &Context,
    pkg: &StoredPackage,
    private: &Path,
    user: &SystemUser,
) -> Result<(), Error> {
    let meta_dir = private.join("meta");
    fs_err::create_dir_all(&meta_dir)?;
    // One opening (central directory checks) serves both copies.
    let mut archive = aps_archive::Archive::open(&pkg.archive, &ctx.config.archive_limits)
        .map_err(|e| Error::Failed(e.to_string()))?;
    let bytes = archive
        .read_file(package::APP_META, 16 << 20)
        .map_err(|e| Error::Failed(e.to_string()))?;
    fs_err::write(meta_dir.join(package::APP_META), bytes)?;
    fs_err::set_permissions(&meta_dir, std::fs::Permissions::from_mode(0o755))?;
    let scripts = crate::script::scripts_dir(private);
    fs_err::create_dir_all(&scripts)?;
    archive
        .extract(&scripts, &|name| {
            name.strip_prefix("scripts/")
                .filter(|r| !r.is_empty())
                .map(PathBuf::from)
        })
        .map_err(|e| Error::Failed(e.to_string()))?;
    fs_err::set_permissions(&scripts, std::fs::Permissions::from_mode(0o755))?;
    let tmp = private.join("tmp");
    fs_err::create_dir_all(&tmp)?;
    fs_err::set_permissions(&tmp, std::fs::Permissions::from_mode(0o700))?;
    aps_host::fsx::chown_tree(&tmp, user.uid(), user.gid())
        .map_err(|e| Error::Failed(e.to_string()))?;
    Ok(())
}

/// §11 Q27: after a successful `configure install`, a later failure runs `configure remove`
/// before the files and databases go.
fn undo_script(ctx: &Context, c: &Checked<'_>, dbs: &[InstanceDatabase], reporter: &dyn Reporter) {
    let Some(script) = &c.script else { return };
    let vars = variables(c, &c.root, dbs, false);
    if let Err(e) = script.run(ctx, "remove", &[], &vars, reporter) {
        reporter.warn(&format!("rolling back: {e}"));
    }
}
