//! Restore and migrate (REFERENCE §8.8, §8.9; D12): an instance made again from a backup
//! archive, into a new place, and a migration as backup + restore + removal of the old place.
//!
//! Main decision: a restore into a new instance IS an install from another source
//! (`install::install_from` with `Source::Backup`): the same checks (site, placement, every
//! requirement, interpreters — the backup script's too), the same reservation of the place, the
//! same journaled changes and crash semantics, with three differences: the settings are the
//! manifest's (the license was accepted at the original install), the files and the databases'
//! contents come from the archive (`fill`, one pass that writes files into the closed instance
//! root and streams each dump into its new database), and the scripts are the backup script's
//! `restore` (when there is one; with `<sufficient/>` apsctl made the databases empty and the
//! script fills them) followed by `configure configure`, so that the application learns its new
//! URL and database names. The archive is verified end to end first, and the package it names
//! must be in the repository.
//!
//! A migration backs the instance up into apsctl's staging folder, restores it at the new
//! site/path, and only once the new instance works removes the old one (its `configure remove`,
//! files and databases); `--keep-source` keeps it (§8.9 left this open; issue 8 decides it). The
//! old instance is untouched until the new one is ready; if its removal then fails, the new
//! instance stays, the old one is left `failed`, and `apsctl remove` resumes it.
//!
//! A restore over an existing instance (`restore ID --from`) makes a safety backup of it first,
//! removes it, and restores the archive at its place under the same id; when that fails, the
//! safety backup is restored there the same way, so the instance comes back as it was.
//!
//! Known gap: the replacement is three journaled operations (backup, removal, restore), not one;
//! a crash between them leaves the instance removed and its safety backup in `<home>/staging`,
//! from which `apsctl restore --from … --site … --path …` brings it back (the error says so).
use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use aps_archive::bundle::{BundleEntry, BundleError, BundleLimits};
use aps_host::safedir::Phase;
use aps_host::user::SystemUser;
use aps_meta::model::Service;
use aps_store::instances::{FileKind, InstanceDatabase, InstanceFile};
use aps_store::sites::Site;
use serde::Serialize;

use crate::backup::{Manifest, SCRIPT_FILE};
use crate::context::Context;
use crate::deploy::{Deployed, Root};
use crate::error::Error;
use crate::install::{InstallOptions, InstallReport, License, RunMode, Source};
use crate::journal::Journal;
use crate::placement::{Place, Target};
use crate::report::{Progress, Reporter};
use crate::script::ConfigScript;
use crate::vars::VarSet;

/// A verified backup archive and its manifest.
#[derive(Debug, Clone)]
pub struct Backup {
    /// The archive.
    pub archive: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
}

/// Where a restore goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreTarget {
    /// Over this existing instance, at its place (`restore ID --from`).
    Instance(String),
    /// A new instance on `site` at `path` (default: the backed-up instance's path).
    New {
        /// The site.
        site: String,
        /// The path below the site root.
        path: Option<String>,
    },
}

/// What `restore` needs.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The archive.
    pub from: PathBuf,
    /// Where it goes.
    pub to: RestoreTarget,
}

/// What `restore` made.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    /// The restored instance.
    pub instance: String,
    /// Its URL.
    pub url: String,
    /// `ready`.
    pub state: String,
    /// The instance the archive was made of.
    pub from_instance: String,
    /// The package restored.
    pub package: String,
    /// The instance that was replaced (`restore ID --from`), when there was one.
    pub replaced: Option<String>,
}

/// Restores an archive (see the module doc).
pub fn restore(
    ctx: &Context,
    opts: &RestoreOptions,
    reporter: &dyn Reporter,
) -> Result<RestoreReport, Error> {
    match &opts.to {
        RestoreTarget::New { site, path } => {
            let backup = open(ctx, &opts.from, reporter)?;
            let made = restore_new(ctx, &backup, site, path.clone(), None, reporter)?;
            Ok(report(&backup, made, None))
        }
        RestoreTarget::Instance(id) => replace(ctx, &opts.from, id, reporter),
    }
}

/// Verifies the archive (§8.8 step 2) and finds its package (step 3).
pub(crate) fn open(ctx: &Context, file: &Path, reporter: &dyn Reporter) -> Result<Backup, Error> {
    reporter.step(&format!("verifying backup `{}`", file.display()));
    let verified = crate::backup::verify(file)?;
    let manifest = verified.manifest;
    let package = &manifest.package;
    if ctx
        .store()?
        .packages()
        .find(&package.identity, &package.version, &package.release)?
        .is_none()
    {
        return Err(Error::NotFound(format!(
            "backup `{}` is of package {} {}-{} (`{}`), which is not in the repository: import it first",
            file.display(),
            package.name,
            package.version,
            package.release,
            package.identity
        )));
    }
    Ok(Backup {
        archive: file.to_path_buf(),
        manifest,
    })
}

/// An instance made from `backup` on `site` at `path`, under id `id` when given, else a new one.
fn restore_new(
    ctx: &Context,
    backup: &Backup,
    site: &str,
    path: Option<String>,
    id: Option<&str>,
    reporter: &dyn Reporter,
) -> Result<InstallReport, Error> {
    let m = &backup.manifest;
    let reference = ctx
        .store()?
        .packages()
        .find(&m.package.identity, &m.package.version, &m.package.release)?
        .map(|p| p.package_ref)
        .unwrap_or_default();
    let opts = InstallOptions {
        package: reference,
        site: site.to_owned(),
        path: Some(path.unwrap_or_else(|| m.instance.path.clone())),
        settings: m.settings.clone(),
        license: License::Accepted,
        db_server: None,
        table_prefixes: m
            .resources
            .iter()
            .filter_map(|r| r.prefix.clone().map(|p| (r.id.clone(), p)))
            .collect(),
        shared_databases: BTreeMap::new(),
        mode: RunMode::Apply,
    };
    crate::install::install_from(ctx, &opts, Source::Backup(backup, id), reporter)
}

fn report(backup: &Backup, made: InstallReport, replaced: Option<String>) -> RestoreReport {
    RestoreReport {
        instance: made.instance.unwrap_or_default(),
        url: made.url,
        state: made.state,
        from_instance: backup.manifest.instance.id.clone(),
        package: backup.manifest.package.reference.clone(),
        replaced,
    }
}

/// `restore ID --from`: the instance is replaced by the archive's contents at its place, under
/// its id. The archive is verified and its package found first; the instance is backed up into
/// apsctl's staging folder (a safety copy), removed, and the archive restored at its place; when
/// the restore fails, the safety copy is restored there instead, so the instance comes back as
/// it was, and the error is shown.
fn replace(
    ctx: &Context,
    from: &Path,
    id: &str,
    reporter: &dyn Reporter,
) -> Result<RestoreReport, Error> {
    let backup = open(ctx, from, reporter)?;
    let instance = ctx.store()?.instances().get(id)?;
    let site = instance.site.clone();
    let path = instance.prefix.clone();
    let safety = safety_path(ctx, id);
    reporter.step(&format!("instance {id}: making a safety backup first"));
    crate::backup::backup(
        ctx,
        &crate::backup::BackupOptions {
            instance: id.to_owned(),
            to: crate::backup::BackupTarget::File(safety.clone()),
        },
        reporter,
    )?;
    let result = (|| {
        crate::remove::remove(
            ctx,
            &crate::remove::RemoveOptions {
                instance: id.to_owned(),
                files: Some(crate::report::FileChoice::All),
                databases: crate::remove::Databases::Drop,
                force: crate::remove::Force::No,
            },
            reporter,
        )?;
        match restore_new(ctx, &backup, &site, Some(path.clone()), Some(id), reporter) {
            Ok(made) => Ok(made),
            Err(e) => {
                reporter.warn(&format!(
                    "restoring `{}` failed: {e}; putting instance {id} back from its safety backup",
                    from.display()
                ));
                let safe = open(ctx, &safety, reporter)?;
                match restore_new(ctx, &safe, &site, Some(path.clone()), Some(id), reporter) {
                    Ok(_) => {
                        let _ = fs_err::remove_file(&safety);
                        Err(Error::Failed(format!(
                            "{e}\nInstance {id} was put back as it was from its safety backup."
                        )))
                    }
                    Err(again) => Err(Error::Failed(format!(
                        "{e}\nPutting instance {id} back failed too: {again}\nIts safety backup is `{}`: `apsctl restore --from {} --site {site} --path /{path}`",
                        safety.display(),
                        safety.display()
                    ))),
                }
            }
        }
    })();
    match result {
        Ok(made) => {
            let _ = fs_err::remove_file(&safety);
            Ok(report(&backup, made, Some(id.to_owned())))
        }
        Err(e) => Err(e),
    }
}

/// Where the safety backup of instance `id` goes (apsctl's own staging folder, 0700).
fn safety_path(ctx: &Context, id: &str) -> PathBuf {
    ctx.home.staging_archive("safety", id, ctx.env.now())
}

/// What [`fill`] needs.
#[derive(Debug)]
pub(crate) struct FillInput<'a> {
    /// The archive.
    pub backup: &'a Backup,
    /// Where the instance lives.
    pub place: Place<'a>,
    /// What is there now.
    pub target: &'a Target,
    /// The site's user.
    pub user: &'a SystemUser,
    /// The new instance's databases (created empty, passwords in clear).
    pub databases: &'a [InstanceDatabase],
    /// The instance's private `tmp/` (for `BACKUP_FILE` and SQLite's scratch files).
    pub tmp: &'a Path,
}

/// §8.8 steps 5 and 7 in one pass over the archive: the instance root created or claimed (as an
/// install does), every file written into it while it is closed, every dump streamed into its
/// new database, the backup script's file put at `BACKUP_FILE`; then modes and owners, and the
/// root handed to the site's user, still closed.
pub(crate) fn fill(
    ctx: &Context,
    journal: &mut Journal<'_>,
    input: &FillInput<'_>,
    reporter: &dyn Reporter,
) -> Result<Deployed, Error> {
    let Root {
        dir: root,
        created_parents,
        claimed,
        open_mode,
        hand_to,
    } = crate::deploy::make_root(journal, input.place, input.target, input.user)?;
    let manifest = &input.backup.manifest;
    unpack(
        &root,
        input.backup,
        input.tmp,
        input.user,
        &mut |db_id, data| load(ctx, input, db_id, data),
        reporter,
    )?;
    root.chown(hand_to.0, hand_to.1).map_err(Error::Site)?;
    Ok(Deployed {
        files: application_files(manifest),
        created_parents,
        claimed,
        open_mode,
    })
}

/// Writes the archive's files into `root` (root's and 0700: nobody else can enter it, so paths
/// below it are safe), streams each dump to `load` (with its db:id), puts the backup script's
/// file at `BACKUP_FILE` in `tmp`; then gives every entry its archived mode (no set-id or sticky
/// bits) and the site's user as owner, through descriptors. The root itself is left as it is.
pub(crate) fn unpack(
    root: &aps_host::safedir::SafeDir,
    backup: &Backup,
    tmp: &Path,
    user: &SystemUser,
    load: &mut dyn FnMut(&str, &mut dyn std::io::Read) -> Result<(), Error>,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    let base = root.proc_path();
    let manifest = &backup.manifest;
    let by_entry: BTreeMap<&str, &str> = manifest
        .resources
        .iter()
        .filter_map(|r| r.dump.as_ref().map(|d| (d.entry.as_str(), r.id.as_str())))
        .collect();
    let (mut files, mut bytes) = (0u64, 0u64);
    let bundle = |e: std::io::Error, what: &str| BundleError::io(what, e);
    aps_archive::bundle::read_entries(&backup.archive, &BundleLimits::default(), &mut |entry| {
        match entry {
            BundleEntry::Dir { name, .. } => {
                if let Some(rel) = name.strip_prefix("files/") {
                    make_dirs(&base, rel.trim_end_matches('/')).map_err(|e| bundle(e, name))?;
                }
            }
            BundleEntry::File { name, data, .. } => {
                if let Some(rel) = name.strip_prefix("files/") {
                    if let Some(parent) = Path::new(rel).parent() {
                        make_dirs(&base, &parent.to_string_lossy()).map_err(|e| bundle(e, name))?;
                    }
                    let mut out = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(base.join(rel))
                        .map_err(|e| bundle(e, name))?;
                    bytes += std::io::copy(data, &mut out).map_err(|e| bundle(e, name))?;
                    files += 1;
                    reporter.progress(&Progress {
                        phase: "files",
                        files,
                        bytes,
                        total_bytes: None,
                    });
                } else if name == SCRIPT_FILE {
                    let mut out = crate::script::user_file(tmp, "backup-file", user)
                        .map_err(|e| BundleError::other(name, &e.to_string()))?;
                    std::io::copy(data, &mut out).map_err(|e| bundle(e, name))?;
                    out.flush().map_err(|e| bundle(e, name))?;
                }
            }
            BundleEntry::Stream { name, data } => {
                if let Some(db_id) = by_entry.get(name) {
                    reporter.step(&format!("loading database of db:id `{db_id}`"));
                    load(db_id, data).map_err(|e| BundleError::other(name, &e.to_string()))?;
                }
            }
            BundleEntry::Manifest => {}
        }
        Ok(())
    })
    .map_err(|e| Error::Failed(crate::error::chain(&e)))?;
    reporter.progress_done();
    // Modes as archived (no set-id or sticky bits), owner the site's user, through descriptors.
    let modes: BTreeMap<&str, u32> = manifest
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.mode & 0o777))
        .collect();
    root.walk(&mut |entry, phase| {
        if phase == Phase::Leave {
            return Ok(());
        }
        let rel = entry.rel.to_string_lossy();
        if let Some(mode) = modes.get(rel.as_ref()) {
            entry
                .parent
                .set_entry_mode(entry.name, *mode)
                .map_err(Error::Site)?;
        }
        entry
            .parent
            .chown_entry(entry.name, user.uid(), user.gid())
            .map_err(Error::Site)?;
        Ok::<(), Error>(())
    })?;
    Ok(())
}

/// The application files and folders of the backed-up instance, as its install recorded them.
fn application_files(manifest: &Manifest) -> Vec<InstanceFile> {
    manifest
        .files
        .iter()
        .filter_map(|f| match (&*f.kind, &*f.class, &f.recorded) {
            ("dir", "application", _) => Some(InstanceFile {
                path: f.path.clone(),
                kind: FileKind::Dir,
                size: 0,
                sha256: None,
            }),
            ("file", "application" | "application-modified", Some(r)) => Some(InstanceFile {
                path: f.path.clone(),
                kind: FileKind::File,
                size: r.size,
                sha256: Some(r.sha256.clone()),
            }),
            _ => None,
        })
        .collect()
}

/// Creates the folders of `rel` below `base` (a folder only apsctl can enter) with mode 0755.
fn make_dirs(base: &Path, rel: &str) -> std::io::Result<()> {
    let mut path = base.to_path_buf();
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        path.push(part);
        match std::fs::DirBuilder::new().mode(0o755).create(&path) {
            Ok(()) => std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Streams one dump into the new database of `db_id`.
fn load(
    ctx: &Context,
    input: &FillInput<'_>,
    db_id: &str,
    data: &mut dyn std::io::Read,
) -> Result<(), Error> {
    let db = input
        .databases
        .iter()
        .find(|d| d.db_id == db_id)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "the backup holds a dump for db:id `{db_id}`, which the package does not declare"
            ))
        })?;
    let (server, spec) = crate::database::connect_recorded(ctx, db, "apsctl:restore")?;
    server.load_from(&spec, data).map_err(|e| {
        Error::Failed(format!(
            "loading database `{}` (db:id `{db_id}`) on `{}` failed: {}",
            db.name,
            db.server.as_deref().unwrap_or_default(),
            crate::error::chain(&e)
        ))
    })
}

/// What [`run_scripts`] needs.
pub(crate) struct Scripts<'a> {
    /// The package's root service (its backup script declaration).
    pub service: &'a Service,
    /// The configuration script, checked.
    pub config: Option<&'a ConfigScript<'a>>,
    /// The new instance's environment (without installation-only settings).
    pub vars: VarSet,
    /// The instance's private folder.
    pub private: &'a Path,
    /// The site's user.
    pub user: &'a SystemUser,
    /// The site.
    pub site: &'a Site,
}

/// §8.8 step 8 and D12: the backup script's `restore` with `BACKUP_FILE`, then `configure
/// configure` with the new instance's URL and databases.
pub(crate) fn run_scripts(
    ctx: &Context,
    journal: &mut Journal<'_>,
    s: &Scripts<'_>,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    if let Some(decl) = &s.service.provision.backup_script {
        let script = ConfigScript {
            decl,
            interpreter: crate::runtime::interpreter(ctx, s.site, s.user, decl)?,
            scripts_dir: crate::script::scripts_dir(s.private),
            user: s.user,
        };
        let file = s.private.join("tmp").join("backup-file");
        let mut vars = VarSet {
            vars: s.vars.vars.clone(),
            secrets: s.vars.secrets.clone(),
        };
        vars.backup_file(&file);
        journal.step("backup-script-restore", |_| {
            script.run(ctx, "restore", &[], &vars, reporter)
        })?;
        let _ = fs_err::remove_file(&file);
    }
    if let Some(script) = s.config {
        journal.step("configure-configure", |_| {
            script.run(ctx, "configure", &[], &s.vars, reporter)
        })?;
    }
    Ok(())
}

/// What `migrate` needs.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// The instance moved.
    pub instance: String,
    /// The site it goes to.
    pub site: String,
    /// The path there (default: its path now).
    pub path: Option<String>,
    /// Keep the old instance (`--keep-source`).
    pub keep_source: bool,
}

/// What `migrate` did.
#[derive(Debug, Clone, Serialize)]
pub struct MigrateReport {
    /// The old instance.
    pub from: String,
    /// The new instance.
    pub instance: String,
    /// Its URL.
    pub url: String,
    /// Whether the old instance was removed.
    pub source_removed: bool,
}

/// Moves an instance (see the module doc).
pub fn migrate(
    ctx: &Context,
    opts: &MigrateOptions,
    reporter: &dyn Reporter,
) -> Result<MigrateReport, Error> {
    let id = &opts.instance;
    let old = ctx.store()?.instances().get(id)?;
    let archive = safety_path(ctx, id).with_file_name(format!(
        "migrate-instance-{id}-{:08x}.tar.zst",
        rand::random::<u32>()
    ));
    reporter.step(&format!("instance {id}: backing it up for the move"));
    crate::backup::backup(
        ctx,
        &crate::backup::BackupOptions {
            instance: id.clone(),
            to: crate::backup::BackupTarget::File(archive.clone()),
        },
        reporter,
    )?;
    let moved = open(ctx, &archive, reporter).and_then(|backup| {
        restore_new(
            ctx,
            &backup,
            &opts.site,
            Some(opts.path.clone().unwrap_or_else(|| old.prefix.clone())),
            None,
            reporter,
        )
    });
    let _ = fs_err::remove_file(&archive);
    let made = moved?;
    let new_id = made.instance.clone().unwrap_or_default();
    let mut source_removed = false;
    if !opts.keep_source {
        reporter.step(&format!(
            "instance {new_id} is ready; removing instance {id}"
        ));
        crate::remove::remove(
            ctx,
            &crate::remove::RemoveOptions {
                instance: id.clone(),
                files: Some(crate::report::FileChoice::All),
                databases: crate::remove::Databases::Drop,
                force: crate::remove::Force::No,
            },
            reporter,
        )
        .map_err(|e| {
            Error::Failed(format!(
                "instance {id} was moved to instance {new_id} ({}), but removing it failed: {e}\n`apsctl remove {id}` resumes the removal.",
                made.url
            ))
        })?;
        source_removed = true;
    }
    Ok(MigrateReport {
        from: id.clone(),
        instance: new_id,
        url: made.url,
        source_removed,
    })
}

/// Opens the file `path` for writing, new, with `mode` (tests of the module).
#[cfg(test)]
fn create(path: &Path, mode: u32) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_made_below_the_base_with_their_mode() {
        let tmp = tempfile::tempdir().unwrap();
        make_dirs(tmp.path(), "a/b/c").unwrap();
        make_dirs(tmp.path(), "a/b").unwrap();
        let mode = fs_err::metadata(tmp.path().join("a/b/c"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        drop(create(&tmp.path().join("a/file"), 0o600).unwrap());
        assert!(make_dirs(tmp.path(), "a/file/x").is_err());
    }
}
