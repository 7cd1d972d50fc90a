//! Update an instance to a newer package (REFERENCE §7, §8.6; D8, D9, D10): a patch or an
//! upgrade, with a safety backup first and, on any failure, the instance put back on its old
//! version with its files and databases as they were.
//!
//! Main decisions:
//! - The rollback is the safety backup itself. It is taken under the instance's lock (the D12
//!   archive, in apsctl's staging folder), and one journal change, [`Change::UpgradeData`], is
//!   recorded before anything of the instance changes: its undo puts the archive back **in
//!   place** — the instance root emptied and refilled from the archive, every database emptied
//!   and its dump loaded again (`DatabaseServer::empty_database`) — so what the new files, the
//!   new scripts and `configure upgrade` did to the files and the databases is undone whatever
//!   it was. The other changes undo themselves as everywhere: new databases dropped, the private
//!   copy swapped back, the web server configuration put back. `recover` runs the same undo
//!   after a crash, so an interrupted upgrade ends on the old version.
//! - For the length of the upgrade the instance is closed (503 through the web adapter, or its
//!   root closed on a `--web none` site) and its root is root's, so nobody writes into what the
//!   rollback would restore.
//! - Files (D10): the new package is deployed into a closed staging folder inside the root and
//!   merged by renames through descriptors: a new application file replaces the old one; an old
//!   application file the owner changed is kept beside it as `<name>.before-upgrade` (reported);
//!   a file of the instance's own (not an application file) is never touched, and the new file
//!   of that name is not placed (reported); old application files absent from the new package
//!   are deleted when unchanged, kept and reported when changed.
//! - Settings: the stored values carry over; new settings take `--set` values or their defaults;
//!   settings the new package no longer has are dropped at commit. A patch must not change the
//!   databases (`db:id`s) or the URL mapping tree, nor add a setting without default (§11 Q25);
//!   an upgrade with a licence needs `--accept-license`.
//! - `configure upgrade <old-version> <old-release>` runs from the new scripts with the new
//!   metadata's environment (D8).
//!
//! Known gaps: instances whose databases are shared with other instances are refused (emptying
//! a shared database would take the other instances' tables with it); an instance holding
//! entries a backup cannot keep (links, names that are not UTF-8) is refused; the site user's own
//! processes (cron jobs, shells) can still write into the databases during the upgrade, and
//! those writes are undone by a rollback; where the new package has a folder in place of an
//! old application file (or the reverse) the merge keeps the owner's entry and reports it;
//! `upgrade --all` files an incomplete rollback under `rolled_back` (its reason says so) and walks
//! instances one at a time.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use aps_host::safedir::{EntryKind, Phase, SafeDir};
use aps_host::web::Access;
use aps_meta::model::Service;
use aps_meta::value::ValidationMode;
use aps_store::instances::{FileKind, InstanceDatabase, InstanceFile, InstanceState, NewInstance};
use serde::Serialize;

use crate::change::Change;
use crate::context::Context;
use crate::error::Error;
use crate::install::License;
use crate::instance::Loaded;
use crate::journal::{Journal, Outcome};
use crate::placement::{Place, Target};
use crate::report::Reporter;
use crate::updates::Kind;

/// What `upgrade` needs.
#[derive(Debug, Clone, Default)]
pub struct UpgradeOptions {
    /// The instance.
    pub instance: String,
    /// The package to update to (its reference in the repository).
    pub to: String,
    /// Values for new settings (and changes of carried-over ones), by id.
    pub settings: BTreeMap<String, String>,
    /// Whether the new package's licence is accepted.
    pub license: License,
}

/// A version and release.
#[derive(Debug, Clone, Serialize)]
pub struct VersionRelease {
    /// Version.
    pub version: String,
    /// Release.
    pub release: String,
}

/// What an upgrade did (CLI.md: `{"instance", "from", "to", "kind"}`).
#[derive(Debug, Clone, Serialize)]
pub struct UpgradeReport {
    /// The instance.
    pub instance: String,
    /// Its package version before.
    pub from: VersionRelease,
    /// Its package version now.
    pub to: VersionRelease,
    /// Patch or upgrade.
    pub kind: Kind,
    /// Files the owner changed or created that were kept, with what happened to them.
    pub kept_files: Vec<String>,
    /// Old application files deleted (unchanged and absent from the new package).
    pub removed_files: usize,
}

/// Updates an instance (see the module doc).
pub fn upgrade(
    ctx: &Context,
    opts: &UpgradeOptions,
    reporter: &dyn Reporter,
) -> Result<UpgradeReport, Error> {
    let id = &opts.instance;
    ctx.store()?.instances().get(id)?;
    let _lock = crate::lock::instance(ctx, id, "upgrade")?;
    let loaded = Loaded::load(ctx, id)?;
    if loaded.instance.state != InstanceState::Ready {
        return Err(Error::Conflict(format!(
            "instance {id} is {}, not ready: it cannot be updated",
            loaded.instance.state
        )));
    }
    if let Some(op) = ctx.store()?.journal().latest_operation(id, "upgrade")? {
        if op.outcome.is_none() {
            return Err(Error::Conflict(format!(
                "an upgrade of instance {id} was interrupted (operation {}): run `apsctl recover` first",
                op.id.0
            )));
        }
    }
    // What a crash between an earlier upgrade's commit and its clean-up left.
    finish_private(&loaded.private);
    let plan = plan(ctx, &loaded, opts)?;
    reporter.step(&format!(
        "instance {id}: {} {}-{} → {}-{} ({})",
        match plan.kind {
            Kind::Patch => "patch",
            Kind::Upgrade => "upgrade",
        },
        plan.from.version,
        plan.from.release,
        plan.to.version,
        plan.to.release,
        plan.new.summary.package
    ));
    let safety = safety_path(ctx, id);
    let params = serde_json::json!({
        "to": plan.new.summary.package, "kind": plan.kind, "safety": safety,
    });
    let mut journal = Journal::begin(ctx, Some(id), "upgrade", &params)?;
    let result = apply(ctx, &mut journal, &loaded, &plan, &safety, reporter);
    match result {
        Ok((record, report)) => {
            journal.finish_with("commit", Outcome::Done, |store| {
                Ok(store.instances().replace(&record)?)
            })?;
            finish_private(&loaded.private);
            let _ = fs_err::remove_file(&safety);
            Ok(report)
        }
        Err(e) => {
            let (e, complete) = journal.rollback_reporting(reporter, e);
            finish_private_rollback(&loaded.private);
            let text = e.to_string();
            if complete {
                let _ = fs_err::remove_file(&safety);
                Err(Error::Failed(format!(
                    "{text}\nInstance {id} is back on {} {}-{}, with its files and databases as they were.",
                    loaded.instance.package_ref, plan.from.version, plan.from.release
                )))
            } else {
                // Not served half put back: closed again, and marked for the administrator.
                let _ = ctx.store().map(|store| {
                    store
                        .instances()
                        .set_state(id, InstanceState::Failed, crate::now(ctx))
                });
                if let Ok(Some(text)) =
                    crate::web::render(&loaded.site, &crate::web::closed(&loaded), Access::Disabled)
                {
                    let _ = crate::web::restore(ctx, &loaded.site.name, id, Some(&text));
                }
                Err(Error::Failed(format!(
                    "{text}\nInstance {id} could not be put back completely and is closed and marked failed. Its safety backup is kept: `{}` (`apsctl restore {id} --from {}` puts it back).",
                    safety.display(),
                    safety.display()
                )))
            }
        }
    }
}

/// Everything checked before anything changes (§8.6 steps 1–3).
struct Plan {
    new: crate::package::StoredPackage,
    kind: Kind,
    from: VersionRelease,
    to: VersionRelease,
    /// New settings' encoded values and secrecy (what the new package declares, except
    /// installation-only ones).
    values: BTreeMap<String, (String, bool)>,
    /// Databases for `db:id`s the installed package did not have.
    new_databases: Vec<crate::runtime::DbChoice>,
    satisfied: crate::runtime::Satisfied,
}

fn plan(ctx: &Context, loaded: &Loaded, opts: &UpgradeOptions) -> Result<Plan, Error> {
    let id = &loaded.instance.id;
    let installed = ctx.store()?.packages().get(&loaded.instance.package_ref)?;
    let new = crate::package::load(ctx, &opts.to)?;
    if new.summary.identity != installed.summary.identity {
        return Err(Error::Invalid(format!(
            "package `{}` is not a version of the package of instance {id} (`{}`)",
            opts.to, installed.summary.identity
        )));
    }
    let from = VersionRelease {
        version: installed.summary.version.clone(),
        release: installed.summary.release.clone(),
    };
    let to = VersionRelease {
        version: new.meta.version.clone(),
        release: new.meta.release.clone(),
    };
    let kinds = crate::updates::kinds(
        &new.meta,
        (&from.version, &from.release),
        &loaded.private_meta_text()?,
    );
    if kinds.is_empty() {
        return Err(Error::Invalid(format!(
            "package `{}` cannot update instance {id}: it is not newer than {}-{} or none of its `patch`/`upgrade` rules matches the installed metadata (see `apsctl instance updates {id}`)",
            opts.to, from.version, from.release
        )));
    }
    if let Some(shared) = loaded
        .databases
        .iter()
        .find(|d| d.shared || d.prefix.is_some())
    {
        return Err(Error::Invalid(format!(
            "instance {id} shares database `{}` with other instances; apsctl cannot update it (its rollback would empty the shared database)",
            shared.name
        )));
    }
    let old_service = loaded.service()?;
    let new_service = new
        .meta
        .root_service()
        .ok_or_else(|| Error::Invalid(format!("package `{}` has no service", opts.to)))?;
    let patch_problem = patch_problem(old_service, new_service);
    let kind = if kinds.iter().any(|(k, _)| *k == Kind::Patch) && patch_problem.is_none() {
        Kind::Patch
    } else if kinds.iter().any(|(k, _)| *k == Kind::Upgrade) {
        Kind::Upgrade
    } else {
        return Err(Error::Invalid(format!(
            "package `{}` declares itself a patch of instance {id}, but {}: it cannot be applied as a patch",
            opts.to,
            patch_problem.unwrap_or_default()
        )));
    };
    if kind == Kind::Upgrade {
        if let Some(license) = &new_service.license {
            if license.must_accept && opts.license != License::Accepted {
                return Err(Error::Invalid(format!(
                    "the licence of package `{}` must be accepted: give --accept-license",
                    opts.to
                )));
            }
        }
    }
    let user = loaded.user()?;
    let satisfied = crate::runtime::check(
        ctx,
        &loaded.site,
        user,
        &new_service.requirements,
        None,
        &BTreeMap::new(),
    )?;
    let existing: BTreeSet<&str> = loaded.databases.iter().map(|d| d.db_id.as_str()).collect();
    let new_databases = satisfied
        .databases
        .iter()
        .filter(|c| !existing.contains(c.requirement.id.as_str()))
        .cloned()
        .collect();
    let values = new_values(ctx, loaded, &new, new_service, opts)?;
    Ok(Plan {
        new,
        kind,
        from,
        to,
        values,
        new_databases,
        satisfied,
    })
}

/// The new package's setting values (encoded, with their secrecy): the stored ones it still
/// has, `--set` values, defaults for the rest; validated as a reconfiguration validates.
fn new_values(
    ctx: &Context,
    loaded: &Loaded,
    new: &crate::package::StoredPackage,
    service: &Service,
    opts: &UpgradeOptions,
) -> Result<BTreeMap<String, (String, bool)>, Error> {
    let settings: Vec<_> = service
        .all_settings()
        .into_iter()
        .filter(|s| !s.installation_only)
        .collect();
    let known: BTreeSet<&str> = settings.iter().map(|s| s.id.as_str()).collect();
    let mut input: BTreeMap<String, String> = loaded
        .settings
        .iter()
        .filter(|s| known.contains(s.setting_id.as_str()))
        .map(|s| (s.setting_id.clone(), s.value.clone()))
        .collect();
    input.extend(opts.settings.clone());
    Ok(crate::settings::validate(
        ctx,
        new,
        Some(&loaded.site),
        &settings,
        &input,
        Some(&loaded.instance.id),
        ValidationMode::Reconfigure,
    )?
    .iter()
    .map(|(k, v)| (k.clone(), (v.encode(), v.is_secret())))
    .collect())
}

/// Why `new` is not a valid patch of `old` (§11 Q25), if it is not.
fn patch_problem(old: &Service, new: &Service) -> Option<String> {
    // Every `db:id` the service may ask for, directly or in a `choice` alternative.
    let db_ids = |s: &Service| -> BTreeSet<String> {
        let reqs = &s.requirements;
        reqs.items
            .iter()
            .chain(
                reqs.choices
                    .iter()
                    .flat_map(|c| c.alternatives.iter().flat_map(|a| &a.items)),
            )
            .filter_map(|r| match r {
                aps_meta::model::Requirement::Db(db) => Some(db.id.clone()),
                _ => None,
            })
            .collect()
    };
    if db_ids(old) != db_ids(new) {
        return Some("it changes the databases (`db:id`s)".into());
    }
    let urls = |s: &Service| -> Vec<String> {
        s.provision
            .url_mapping
            .as_ref()
            .map(|m| m.entries().into_iter().map(|e| e.url_path).collect())
            .unwrap_or_default()
    };
    if urls(old) != urls(new) {
        return Some("it changes the URL mapping tree".into());
    }
    let old_ids: BTreeSet<String> = old.all_settings().iter().map(|s| s.id.clone()).collect();
    new.all_settings()
        .iter()
        .find(|s| !old_ids.contains(&s.id) && s.default_value.is_none())
        .map(|s| format!("it adds setting `{}` without a default", s.id))
}

/// §8.6 steps 5–9, journaled; returns the instance's new record and the report.
fn apply(
    ctx: &Context,
    journal: &mut Journal<'_>,
    loaded: &Loaded,
    plan: &Plan,
    safety: &Path,
    reporter: &dyn Reporter,
) -> Result<(NewInstance, UpgradeReport), Error> {
    let id = &loaded.instance.id;
    let user = loaded.user()?;
    let root_info = prepare(journal, loaded, safety, reporter)?;
    // §8.6 step 5: databases for new db:ids; the existing ones are kept.
    let mut databases = loaded.databases.clone();
    for choice in &plan.new_databases {
        databases.push(crate::database::create(
            ctx, journal, choice, id, None, user, reporter,
        )?);
    }
    // Step 8 (before the files, which need the new plan): the private copy swapped.
    let swap = Change::PrivateCopy {
        private: loaded.private.clone(),
    };
    journal.step("private-copy", |j| {
        j.change(swap, || swap_private(ctx, &plan.new, &loaded.private, user))
    })?;
    // Step 6 (D10).
    let merged = journal.step("files", |j| merge_files(ctx, j, loaded, plan, reporter))?;
    // The script works in the root as the site's user (still closed to everyone else).
    journal.step("hand-over", |_| {
        loaded
            .place()
            .open_root()?
            .chown(user.uid(), user.gid())
            .map_err(Error::Site)
    })?;
    // Step 9: `configure upgrade <old-version> <old-release>` from the new scripts.
    let upgraded = Loaded::load(ctx, id)?;
    if let Some(script) = upgraded.config_script(ctx)? {
        let mut vars = upgraded.variables(Some(&plan.values));
        vars.databases(&databases[loaded.databases.len()..]);
        vars.check_size()?;
        let args = [plan.from.version.clone(), plan.from.release.clone()];
        script.run_step(journal, id, "upgrade", &args, &vars, reporter)?;
    }
    // Step 7: handlers and mapping from the new metadata; the root handed back, open.
    let new_service = plan.new.meta.root_service().ok_or_else(|| {
        Error::Invalid(format!(
            "package `{}` has no service",
            plan.new.summary.package
        ))
    })?;
    let web = crate::web::instance_web(
        &loaded.site,
        id,
        &loaded.instance.prefix,
        new_service,
        &plan.satisfied.php_values,
    )?;
    crate::web::apply(
        journal,
        "web-config",
        &loaded.site,
        &web,
        Access::Enabled,
        reporter,
    )?;
    journal.step("open", |_| {
        let root = loaded.place().open_root()?;
        root.chown(root_info.uid, root_info.gid)
            .map_err(Error::Site)?;
        root.set_mode(root_info.mode).map_err(Error::Site)
    })?;
    let record = new_record(ctx, loaded, plan, databases, merged.files)?;
    let report = UpgradeReport {
        instance: id.clone(),
        from: plan.from.clone(),
        to: plan.to.clone(),
        kind: plan.kind,
        kept_files: merged.kept,
        removed_files: merged.removed,
    };
    Ok((record, report))
}

/// The instance's record after the update (stored by the commit).
fn new_record(
    ctx: &Context,
    loaded: &Loaded,
    plan: &Plan,
    databases: Vec<InstanceDatabase>,
    files: Vec<InstanceFile>,
) -> Result<NewInstance, Error> {
    let settings = plan
        .values
        .iter()
        .map(|(k, (v, secret))| {
            Ok(aps_store::instances::Setting {
                setting_id: k.clone(),
                value: if *secret {
                    ctx.vault.seal(v)?
                } else {
                    v.clone()
                },
                secret: *secret,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(NewInstance {
        id: loaded.instance.id.clone(),
        site: loaded.instance.site.clone(),
        prefix: loaded.instance.prefix.clone(),
        url: loaded.instance.url.clone(),
        package_ref: plan.new.summary.package.clone(),
        state: InstanceState::Ready,
        choices_json: serde_json::to_string(&plan.satisfied.choices)
            .unwrap_or_else(|_| "[]".into()),
        settings,
        databases: crate::database::sealed(ctx, databases)?,
        files,
        system_changes: loaded
            .system_changes
            .iter()
            .map(|c| aps_store::instances::NewSystemChange {
                kind: c.kind.clone(),
                data_json: c.data_json.clone(),
            })
            .collect(),
        at: crate::now(ctx),
    })
}

/// The instance closed (503 / its root taken over), [`Change::UpgradeData`] recorded, and the
/// safety backup taken while nobody else can change the files (the undo finds no archive until
/// it is complete: the archive is renamed into place last). Returns the root's owner and mode
/// of before.
fn prepare(
    journal: &mut Journal<'_>,
    loaded: &Loaded,
    safety: &Path,
    reporter: &dyn Reporter,
) -> Result<aps_host::safedir::FolderInfo, Error> {
    let ctx = journal.context();
    let id = &loaded.instance.id;
    // Closed for the length of the upgrade.
    if crate::web::config_dir(&loaded.site).is_some() {
        crate::web::apply(
            journal,
            "close-web",
            &loaded.site,
            &crate::web::closed(loaded),
            Access::Disabled,
            reporter,
        )?;
    }
    let root_info = loaded.place().open_root()?.info().map_err(Error::Site)?;
    // From here on, whatever happens to the files and databases is undone from the archive.
    let data = Change::UpgradeData {
        instance: id.clone(),
        archive: safety.to_path_buf(),
        uid: root_info.uid,
        gid: root_info.gid,
        mode: root_info.mode,
    };
    // Closed to the web server while the site's user (and its backup script) can still work in
    // it; taken over by root once the safety backup is complete.
    journal.step("upgrade-data", |j| {
        j.change(data, || {
            loaded
                .place()
                .open_root()?
                .set_mode(0o700)
                .map_err(Error::Site)
        })
    })?;
    // §8.6 step 4: the safety backup, taken while nobody else can change the files (its undo
    // above finds no archive until it is complete: the archive is renamed into place last).
    reporter.step(&format!(
        "instance {id}: safety backup `{}`",
        safety.display()
    ));
    let backup = crate::backup::backup_loaded(ctx, loaded, safety, reporter)?;
    if !backup.skipped.is_empty() {
        // Without the archive the rollback only gives the root back: nothing else changed.
        let _ = fs_err::remove_file(safety);
        return Err(Error::Invalid(format!(
            "instance {id} holds entries a backup cannot keep, so an upgrade could not be rolled back without losing them: {}\nRemove or replace them, then upgrade again.",
            backup.skipped.join(", ")
        )));
    }
    journal.step("take-over", |_| {
        loaded.place().open_root()?.take_over().map_err(Error::Site)
    })?;
    Ok(root_info)
}

/// Where the safety backup of instance `id` goes (apsctl's own staging folder, 0700).
fn safety_path(ctx: &Context, id: &str) -> PathBuf {
    ctx.home.staging_archive("upgrade", id, ctx.env.now())
}

/// The new private copy in `<private>/.upgrade`, then swapped in: `meta` and `scripts` become
/// `meta.old` and `scripts.old` (kept until the commit) and the new ones take their place.
fn swap_private(
    ctx: &Context,
    new: &crate::package::StoredPackage,
    private: &Path,
    user: &aps_host::user::SystemUser,
) -> Result<(), Error> {
    let staged = private.join(".upgrade");
    if staged.exists() {
        fs_err::remove_dir_all(&staged)?;
    }
    fs_err::create_dir(&staged)?;
    crate::install::private_copy(ctx, new, &staged, user)?;
    for name in ["meta", "scripts"] {
        fs_err::rename(private.join(name), private.join(format!("{name}.old")))?;
        fs_err::rename(staged.join(name), private.join(name))?;
    }
    fs_err::remove_dir_all(&staged)?;
    Ok(())
}

/// Undoes [`swap_private`] as far as it got: every `<name>.old` put back.
pub(crate) fn unswap_private(private: &Path) -> Result<(), Error> {
    for name in ["meta", "scripts"] {
        let old = private.join(format!("{name}.old"));
        if old.exists() {
            let current = private.join(name);
            if current.exists() {
                fs_err::remove_dir_all(&current)?;
            }
            fs_err::rename(&old, &current)?;
        }
    }
    let staged = private.join(".upgrade");
    if staged.exists() {
        fs_err::remove_dir_all(&staged)?;
    }
    Ok(())
}

/// After the commit: the old private copy goes.
fn finish_private(private: &Path) {
    for name in ["meta.old", "scripts.old", ".upgrade"] {
        let _ = fs_err::remove_dir_all(private.join(name));
    }
}

/// After a rollback: nothing of the new private copy is left over.
fn finish_private_rollback(private: &Path) {
    let _ = fs_err::remove_dir_all(private.join(".upgrade"));
}

/// What the D10 merge did.
struct Merged {
    files: Vec<InstanceFile>,
    kept: Vec<String>,
    removed: usize,
}

/// The name of the staging folder inside the root.
const STAGING: &str = ".apsctl-upgrade";

/// D10: the new package deployed into a closed staging folder inside the (closed) root and
/// merged into the root by renames; old application files handled as the module doc says.
fn merge_files(
    ctx: &Context,
    journal: &mut Journal<'_>,
    loaded: &Loaded,
    plan: &Plan,
    reporter: &dyn Reporter,
) -> Result<Merged, Error> {
    let user = loaded.user()?;
    let service = plan
        .new
        .meta
        .root_service()
        .ok_or_else(|| Error::Invalid("the new package has no service".into()))?;
    let Some(mapping) = service.provision.url_mapping.as_ref() else {
        return Ok(Merged {
            files: Vec::new(),
            kept: Vec::new(),
            removed: 0,
        });
    };
    let root = loaded.place().open_root()?;
    let _ = root.remove_tree(STAGING);
    let prefix = if loaded.instance.prefix.is_empty() {
        STAGING.to_owned()
    } else {
        format!("{}/{STAGING}", loaded.instance.prefix)
    };
    let place = Place {
        docroot: &loaded.site.docroot,
        prefix: &prefix,
    };
    let deploy_plan = crate::deploy::DeployPlan::new(mapping)?;
    reporter.step("deploying the new package's files");
    let deployed = crate::deploy::deploy(
        journal,
        &crate::deploy::DeployInput {
            archive: &plan.new.archive,
            plan: &deploy_plan,
            place,
            target: &Target::Missing {
                first_missing: prefix.clone(),
            },
            user,
            limits: &ctx.config.archive_limits,
        },
    )?;
    let staged = root.open_dir(STAGING).map_err(Error::Site)?;
    let old: BTreeMap<&str, &InstanceFile> =
        loaded.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let new_paths: BTreeSet<&str> = deployed.files.iter().map(|f| f.path.as_str()).collect();
    let (mut kept, not_placed) = place_new(&root, &staged, &deployed.files, &old)?;
    root.remove_tree(STAGING).map_err(Error::Site)?;
    let removed = remove_stale(&root, &new_paths, &old, &mut kept)?;
    let files = deployed
        .files
        .into_iter()
        .filter(|f| {
            !not_placed
                .iter()
                .any(|n| f.path == *n || f.path.starts_with(&format!("{n}/")))
        })
        .collect();
    Ok(Merged {
        files,
        kept,
        removed,
    })
}

/// Moves the staged new files and folders into the root (see the module doc); returns what was
/// kept and the paths of the new package that were not placed.
fn place_new(
    root: &SafeDir,
    staged: &SafeDir,
    files: &[InstanceFile],
    old: &BTreeMap<&str, &InstanceFile>,
) -> Result<(Vec<String>, BTreeSet<String>), Error> {
    let mut kept = Vec::new();
    // Folders placed whole (their content moved with them) or not placed at all.
    let mut done: Vec<String> = Vec::new();
    let mut not_placed: BTreeSet<String> = BTreeSet::new();
    for file in files {
        if done.iter().any(|d| file.path.starts_with(&format!("{d}/"))) {
            continue;
        }
        let rel = Path::new(&file.path);
        let (Some(parent_rel), Some(name)) = (rel.parent(), rel.file_name()) else {
            continue;
        };
        let name = name.to_string_lossy().into_owned();
        let live = root.open_rel(parent_rel).map_err(Error::Site)?;
        let from = staged.open_rel(parent_rel).map_err(Error::Site)?;
        if file.kind == FileKind::Dir {
            if !live.contains(&name) {
                from.rename(&name, &live, &name).map_err(Error::Site)?;
                done.push(file.path.clone());
            } else if live.open_dir(&name).is_err() {
                kept.push(format!(
                    "{} (the instance's own file; the new package's folder of that name was not placed)",
                    file.path
                ));
                not_placed.insert(file.path.clone());
                done.push(file.path.clone());
            }
            continue;
        }
        if live.contains(&name) {
            match old.get(file.path.as_str()) {
                Some(record) if crate::instance::is_unchanged(&live, name.as_ref(), record) => {}
                Some(_) => {
                    let aside = (1..10_000u32)
                        .map(|n| match n {
                            1 => format!("{name}.before-upgrade"),
                            n => format!("{name}.before-upgrade-{n}"),
                        })
                        .find(|candidate| !live.contains(candidate))
                        .unwrap_or_default();
                    live.rename(&name, &live, &aside).map_err(Error::Site)?;
                    kept.push(format!(
                        "{} (changed by the owner; kept as `{aside}`)",
                        file.path
                    ));
                }
                None => {
                    kept.push(format!(
                        "{} (the instance's own file; the new package's version was not placed)",
                        file.path
                    ));
                    not_placed.insert(file.path.clone());
                    continue;
                }
            }
        }
        from.rename(&name, &live, &name).map_err(Error::Site)?;
    }
    Ok((kept, not_placed))
}

/// Old application files the new package does not have: unchanged ones deleted (and folders
/// left empty), changed ones kept and added to `kept`. Returns how many went.
fn remove_stale(
    root: &SafeDir,
    new_paths: &BTreeSet<&str>,
    old: &BTreeMap<&str, &InstanceFile>,
    kept: &mut Vec<String>,
) -> Result<usize, Error> {
    let mut removed = 0;
    root.walk(&mut |entry, phase| {
        let Some(rel) = entry.rel.to_str() else {
            return Ok(());
        };
        if new_paths.contains(rel) {
            return Ok(());
        }
        let Some(record) = old.get(rel) else {
            return Ok(());
        };
        match (phase, record.kind) {
            (Phase::Leave, FileKind::Dir) => match entry.parent.remove_dir_os(entry.name) {
                Ok(()) => removed += 1,
                Err(e) if e.is_not_empty() => {}
                Err(e) => return Err(Error::Site(e)),
            },
            (Phase::Leaf, FileKind::File) => {
                if entry.kind == EntryKind::File && crate::remove::same_content(entry, record) {
                    entry
                        .parent
                        .remove_file_os(entry.name)
                        .map_err(Error::Site)?;
                    removed += 1;
                } else {
                    kept.push(format!(
                        "{rel} (changed by the owner; the new package no longer has it)"
                    ));
                }
            }
            _ => {}
        }
        Ok::<(), Error>(())
    })?;
    Ok(removed)
}

/// The undo of [`Change::UpgradeData`]: the instance put back in place from its safety backup —
/// its root emptied and refilled from the archive, each database emptied and its dump loaded —
/// and the root given its owner and mode of before. Repeatable: `recover` runs it again after a
/// crash inside it.
pub(crate) fn restore_in_place(
    ctx: &Context,
    instance: &str,
    archive: &Path,
    (uid, gid, mode): (u32, u32, u32),
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    let loaded = Loaded::load_lenient(ctx, instance)?;
    let root = loaded.place().open_root()?;
    // No archive: the upgrade stopped before its safety backup was complete, so nothing of the
    // instance changed but the root's owner and mode.
    if archive.exists() {
        let restored = put_back(ctx, &loaded, &root, archive, reporter);
        if let Err(e) = restored {
            let _ = ctx.store().map(|store| {
                store
                    .instances()
                    .set_state(instance, InstanceState::Failed, crate::now(ctx))
            });
            return Err(e);
        }
    }
    root.chown(uid, gid).map_err(Error::Site)?;
    root.set_mode(mode).map_err(Error::Site)
}

/// The files and databases of `loaded` put back from `archive`, and the database records the
/// upgrade added forgotten.
fn put_back(
    ctx: &Context,
    loaded: &Loaded,
    root: &SafeDir,
    archive: &Path,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    let backup = crate::restore::open(ctx, archive, reporter)?;
    let user = loaded.user()?;
    root.take_over().map_err(Error::Site)?;
    root.clear().map_err(Error::Site)?;
    let tmp = loaded.private.join("tmp");
    crate::restore::unpack(
        root,
        &backup,
        &tmp,
        user,
        &mut |db_id, data| reload_database(ctx, &loaded.databases, db_id, data),
        reporter,
    )?;
    let had: BTreeSet<&str> = backup
        .manifest
        .resources
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    for db in &loaded.databases {
        if !had.contains(db.db_id.as_str()) {
            ctx.store()?.instances().delete_database(
                &loaded.instance.id,
                &db.db_id,
                crate::now(ctx),
            )?;
        }
    }
    Ok(())
}

/// Empties the instance database of `db_id` and loads `data` (its dump) into it.
fn reload_database(
    ctx: &Context,
    databases: &[InstanceDatabase],
    db_id: &str,
    data: &mut dyn std::io::Read,
) -> Result<(), Error> {
    let Some(db) = databases.iter().find(|d| d.db_id == db_id) else {
        return Ok(());
    };
    let (server, spec) = crate::database::connect_recorded(ctx, db, "apsctl:upgrade-rollback")?;
    server
        .empty_database(&spec)
        .and_then(|()| server.load_from(&spec, data))
        .map_err(|e| {
            Error::Failed(format!(
                "putting database `{}` (db:id `{db_id}`) back failed: {}",
                db.name,
                crate::error::chain(&e)
            ))
        })
}

/// What `upgrade --all` walks with.
#[derive(Debug, Clone, Copy, Default)]
pub struct FleetOptions {
    /// Only patches.
    pub patches_only: bool,
    /// Only recommended patches.
    pub recommended_only: bool,
    /// Say what would be done, change nothing.
    pub dry_run: bool,
}

/// One instance's outcome in `upgrade --all`.
#[derive(Debug, Clone, Serialize)]
pub struct FleetEntry {
    /// The instance.
    pub instance: String,
    /// The package it was (or would be) updated to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// Patch or upgrade.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    /// Why it was skipped or rolled back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The report of `upgrade --all`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FleetReport {
    /// Updated (with `--dry-run`: would be updated).
    pub updated: Vec<FleetEntry>,
    /// Tried and put back on their old version, with the reason.
    pub rolled_back: Vec<FleetEntry>,
    /// Not tried, with the reason.
    pub skipped: Vec<FleetEntry>,
}

/// `upgrade --all`: every instance, one at a time, each with its own safety backup and
/// rollback; one instance's failure never stops the others. Each takes its newest candidate
/// the options allow (patches before upgrades of the same version). Upgrades that need new
/// settings or a licence acceptance fail their checks and are reported, changing nothing.
pub fn upgrade_all(
    ctx: &Context,
    opts: &FleetOptions,
    reporter: &dyn Reporter,
) -> Result<FleetReport, Error> {
    let mut report = FleetReport::default();
    for summary in crate::instance::list(ctx)? {
        let id = summary.instance.clone();
        let entry =
            |package: Option<String>, kind: Option<Kind>, reason: Option<String>| FleetEntry {
                instance: id.clone(),
                package,
                kind,
                reason,
            };
        let candidates = match crate::updates::updates(ctx, &id) {
            Ok(c) => c,
            Err(e) => {
                report
                    .skipped
                    .push(entry(None, None, Some(crate::error::chain(&e))));
                continue;
            }
        };
        let mut allowed = candidates.into_iter().filter(|c| {
            (!opts.patches_only && !opts.recommended_only || c.kind == Kind::Patch)
                && (!opts.recommended_only || c.recommended)
        });
        let Some(pick) = allowed.next() else {
            report.skipped.push(entry(
                None,
                None,
                Some("no update the options allow".into()),
            ));
            continue;
        };
        if opts.dry_run {
            report
                .updated
                .push(entry(Some(pick.package), Some(pick.kind), None));
            continue;
        }
        reporter.step(&format!("instance {id}: updating to `{}`", pick.package));
        let one = UpgradeOptions {
            instance: id.clone(),
            to: pick.package.clone(),
            ..UpgradeOptions::default()
        };
        match upgrade(ctx, &one, reporter) {
            Ok(done) => report
                .updated
                .push(entry(Some(pick.package), Some(done.kind), None)),
            Err(e) => {
                let reason = Some(crate::error::chain(&e));
                if matches!(
                    e.kind(),
                    crate::ErrorKind::Invalid | crate::ErrorKind::Busy | crate::ErrorKind::Conflict
                ) {
                    report
                        .skipped
                        .push(entry(Some(pick.package), Some(pick.kind), reason));
                } else {
                    report
                        .rolled_back
                        .push(entry(Some(pick.package), Some(pick.kind), reason));
                }
            }
        }
    }
    Ok(report)
}
