//! Remove: the removal scenario of the seed document, step by step (REFERENCE §8.10; D11).
//!
//! Main decision: the order is fixed by the seed. (1) Access to the instance is disabled and its
//! URL mapping removed; (2) `configure remove` runs — if it cannot run or fails, removal stops,
//! access is given back, the error is shown and everything is kept; (3) the two file trees
//! (application files as deployed, files created or changed by the instance) are built and the
//! user's choice applied; (4) resources are freed and every recorded system change rolled back —
//! a root that existed before the install (an empty folder, the document root) is emptied by the
//! choice and given back its owner and mode, never removed.
//! A successful `configure remove` is the commit point (without a configuration script, the
//! disabled access is): later steps are rolled forward, and what could not be done is reported
//! and left for a second `apsctl remove`, which resumes there without running `configure
//! remove` again (§11 Q27) — also after a crash, as `apsctl recover` would. A removal
//! interrupted before its commit point is rolled back by the next one, which then runs
//! `configure remove` again.
//!
//! Account termination: providers delete the system user first. With `--force`, a removal
//! whose `configure remove` cannot run (the site's user, the package or the private copy is
//! gone) or keeps failing frees everything it can without it — files (as root, through
//! descriptors), databases, logins, system changes, store rows — and says what it skipped.
//!
//! Kept databases (`--keep-databases`) stay known: they are recorded with their sealed
//! credentials (`apsctl database kept`), so they can be reached and dropped later.
//!
//! "Disabling access" for a site apsctl does not configure a web server for (`--web none`) means
//! making the instance's root folder private to its owner (mode 0700): a web server running as
//! another user then answers 403. Known gap: nginx and Apache sites get no server-side block yet.
use std::collections::BTreeMap;
use std::fmt::Write as _;

use aps_host::safedir::{Entry, EntryKind, Phase, SafeDir};
use aps_store::instances::{FileKind, InstanceState};
use serde::Serialize;

use crate::change::{Change, Stage};
use crate::context::Context;
use crate::error::Error;
use crate::instance::Loaded;
use crate::journal::{Journal, Outcome};
use crate::placement::{Place, split_last};
use crate::report::{FileChoice, Reporter};

/// Whether to drop the instance's databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Databases {
    /// Drop databases and logins (the default).
    #[default]
    Drop,
    /// Keep them (`--keep-databases`); they are listed in the report.
    Keep,
}

/// What `remove` needs.
#[derive(Debug, Clone, Default)]
pub struct RemoveOptions {
    /// Instance id.
    pub instance: String,
    /// The file choice; `None` asks through the reporter (refused when nobody can be asked).
    pub files: Option<FileChoice>,
    /// Drop or keep databases.
    pub databases: Databases,
    /// `--force`: go on without `configure remove` when it cannot run or fails.
    pub force: Force,
}

/// Whether a removal may go on without `configure remove` (account termination).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Force {
    /// Stop when `configure remove` cannot run or fails (the seed's sub-step 2.4).
    #[default]
    No,
    /// Free everything apsctl can without it, and report what was skipped.
    Yes,
}

/// What `remove` did and kept.
#[derive(Debug, Clone, Serialize)]
pub struct RemoveReport {
    /// Instance id.
    pub instance: String,
    /// The file choice applied.
    pub files: FileChoice,
    /// Number of files and folders removed.
    pub removed: usize,
    /// Files and folders kept (relative to the instance root): instance files, and changed
    /// application files, with the reason.
    pub kept_files: Vec<KeptFile>,
    /// Databases dropped (`db:id` and name).
    pub databases_dropped: Vec<String>,
    /// Databases kept, with their login.
    pub databases_kept: Vec<String>,
    /// What `--force` went on without (e.g. `configure remove`, with the reason).
    pub skipped: Vec<String>,
    /// Things left for an administrator that do not affect the result.
    pub warnings: Vec<String>,
}

/// A file the removal left in place.
#[derive(Debug, Clone, Serialize)]
pub struct KeptFile {
    /// Path relative to the instance root.
    pub path: String,
    /// `instance` (created by the instance) or `modified` (an application file that changed).
    pub reason: &'static str,
}

/// Removes an instance.
pub fn remove(
    ctx: &Context,
    opts: &RemoveOptions,
    reporter: &dyn Reporter,
) -> Result<RemoveReport, Error> {
    let id = &opts.instance;
    if opts.files.is_none() && !reporter.can_ask() {
        return Err(Error::Invalid(format!(
            "removing instance {id} needs a choice for its files: give `--files all` (remove every file) or `--files app` (keep files the application created or changed)"
        )));
    }
    ctx.store()?.instances().get(id)?;
    let _lock = crate::lock::instance(ctx, id, "removal")?;
    let loaded = Loaded::load_lenient(ctx, id)?;
    if loaded.instance.state == InstanceState::Installing {
        return Err(Error::Conflict(format!(
            "instance {id} is not installed yet (its install is running or was interrupted: run `apsctl recover`)"
        )));
    }
    if opts.force == Force::No {
        if let Some(missing) = loaded.missing.first() {
            return Err(Error::Failed(format!(
                "instance {id} cannot run `configure remove`: {missing}\nNothing was changed. `apsctl remove {id} --force` frees what it can without it."
            )));
        }
    }
    let params = serde_json::json!({
        "files": opts.files, "databases": opts.databases, "force": opts.force,
    });
    // A removal that passed its commit point and stopped halfway resumes where it stopped.
    if let Some((previous, interrupted)) = committed_removal(ctx, &loaded)? {
        let mut journal = Journal::begin(ctx, Some(id), "remove", &params)?;
        journal.commit_point()?;
        reporter.step(&format!(
            "instance {id}: resuming removal {} (its `configure remove` had succeeded)",
            previous.id()
        ));
        let choice = choose(opts, &loaded, reporter);
        let access = access_changes(&previous);
        if interrupted {
            // Ended here, so that `recover` does not take it up again.
            let note = format!(
                "interrupted after its commit point; resumed by removal {}",
                journal.id()
            );
            previous.finish(Outcome::Failed, Some(&note))?;
        }
        return finish(
            ctx,
            journal,
            &loaded,
            choice,
            opts.databases,
            &access,
            Vec::new(),
        );
    }
    undo_interrupted_removal(ctx, &loaded, reporter)?;
    let mut journal = Journal::begin(ctx, Some(id), "remove", &params)?;
    let mut skipped = Vec::new();
    // Step 1: disable access and remove the URL mapping. Step 2: configure remove (2.1
    // interpreter check, 2.2 environment, 2.3 run, 2.4 stop on failure).
    let steps = disable_access(&mut journal, &loaded, reporter)
        .and_then(|()| run_configure_remove(ctx, &mut journal, &loaded, reporter));
    match steps {
        Ok(()) => {}
        // The application already ran its removal logic: that is the commit point (§11 Q27),
        // also when the store write marking it is what failed.
        Err(e) if journal.is_committed() || removal_script_done(&journal) => {
            reporter.warn(&format!(
                "{}; `configure remove` had succeeded, so the removal goes on",
                crate::error::chain(&e)
            ));
        }
        Err(e) if opts.force == Force::Yes => {
            let e = crate::error::chain(&e);
            reporter.warn(&format!("{e}; --force: going on without it"));
            skipped.push(format!("`configure remove`: {e}"));
        }
        Err(e) => {
            let e = journal.rollback(reporter, e);
            return Err(Error::Failed(format!(
                "{e}\nInstance {id} was not removed: its files, databases and records are kept and its access was restored. When the script cannot succeed any more, `apsctl remove {id} --force` removes the instance without it."
            )));
        }
    }
    if !journal.is_committed() {
        journal.commit_point()?;
    }
    let choice = choose(opts, &loaded, reporter);
    let access = access_changes(&journal);
    finish(
        ctx,
        journal,
        &loaded,
        choice,
        opts.databases,
        &access,
        skipped,
    )
}

/// The file choice: given, or asked (seed sub-step 3.2).
fn choose(opts: &RemoveOptions, loaded: &Loaded, reporter: &dyn Reporter) -> FileChoice {
    opts.files.unwrap_or_else(|| {
        reporter
            .ask_file_choice(&preview(loaded))
            .unwrap_or_else(|| {
                reporter.warn("no answer: keeping the files the application created or changed");
                FileChoice::App
            })
    })
}

/// The removal that passed its commit point (or whose `configure remove` was done when the
/// commit point could not be written) and stopped, if there is one, with whether it was
/// interrupted (no outcome yet: its process is gone, since this one holds the instance's lock):
/// its `configure remove` already ran and must not run again.
fn committed_removal<'c>(
    ctx: &'c Context,
    loaded: &Loaded,
) -> Result<Option<(Journal<'c>, bool)>, Error> {
    let latest = ctx
        .store()?
        .journal()
        .latest_operation(&loaded.instance.id, "remove")?;
    // Stopped by a failure (the instance is `failed`), or interrupted by a crash.
    let Some(op) =
        latest.filter(|op| op.outcome.is_none() || loaded.instance.state == InstanceState::Failed)
    else {
        return Ok(None);
    };
    let journal = Journal::resume(ctx, op.id)?;
    if op.committed_at.is_some() || removal_script_done(&journal) {
        Ok(Some((journal, op.outcome.is_none())))
    } else {
        Ok(None)
    }
}

/// Rolls back a removal of this instance interrupted before its commit point (a crash while it
/// closed access or ran `configure remove`; it has no outcome, and its process is gone since
/// this one holds the instance's lock), so that the next removal finds the instance as it was
/// and runs its script again.
fn undo_interrupted_removal(
    ctx: &Context,
    loaded: &Loaded,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    let id = &loaded.instance.id;
    let latest = ctx.store()?.journal().latest_operation(id, "remove")?;
    let Some(op) = latest.filter(|op| op.committed_at.is_none() && op.outcome.is_none()) else {
        return Ok(());
    };
    let mut previous = Journal::resume(ctx, op.id)?;
    reporter.step(&format!(
        "instance {id}: undoing removal {}, interrupted before its commit point",
        op.id
    ));
    let (_, leftovers) = previous.undo_all(reporter);
    if !leftovers.is_empty() {
        return Err(Error::Failed(format!(
            "instance {id}: interrupted removal {} could not be undone:\n  {}\nNothing else was changed; run `apsctl recover` once this is fixed.",
            op.id,
            leftovers.join("\n  ")
        )));
    }
    previous.finish(
        Outcome::RolledBack,
        Some("interrupted before its commit point; rolled back by the next removal"),
    )
}

/// The access changes (step 1) a removal's journal recorded.
pub(crate) fn access_changes(journal: &Journal<'_>) -> Vec<Change> {
    journal
        .entries()
        .iter()
        .filter(|e| {
            matches!(
                e.change,
                Change::FolderMode { .. } | Change::WebConfig { .. }
            )
        })
        .map(|e| e.change.clone())
        .collect()
}

/// Whether this removal's `configure remove` succeeded (its commit point may be missing when
/// the store write after the script failed).
fn removal_script_done(journal: &Journal<'_>) -> bool {
    journal.entries().iter().any(|e| {
        matches!(&e.change, Change::Script { action, .. } if action == "remove")
            && e.stage == Some(Stage::Done)
    })
}

/// Seed step 2, journaled before it runs. Success is the commit point (marked by the caller).
fn run_configure_remove(
    ctx: &Context,
    journal: &mut Journal<'_>,
    loaded: &Loaded,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    let Some(script) = loaded.config_script(ctx)? else {
        return Ok(());
    };
    let vars = loaded.variables(None);
    journal.step("configure-remove", |j| {
        script.run_recorded(j, &loaded.instance.id, "remove", &[], &vars, reporter)?;
        j.commit_point()
    })
}

/// Seed steps 3 and 4, past the commit point (also used by `recover`): files by `choice`,
/// databases, access and system changes, then the instance is forgotten.
pub(crate) fn finish(
    ctx: &Context,
    journal: Journal<'_>,
    loaded: &Loaded,
    choice: FileChoice,
    databases: Databases,
    access: &[Change],
    skipped: Vec<String>,
) -> Result<RemoveReport, Error> {
    let id = &loaded.instance.id;
    let mut problems = Vec::new();
    let (removed, kept_files) = match remove_files(loaded, choice) {
        Ok(x) => x,
        Err(e) => {
            problems.push(format!("files: {}", crate::error::chain(&e)));
            (0, Vec::new())
        }
    };
    let (dropped, kept_dbs) = free_databases(ctx, loaded, databases, &mut problems);
    let mut warnings = Vec::new();
    // Kept files never become downloadable: with the PHP handler gone a kept `wp-config.php`
    // would be served as text, so the root stays closed to the web server.
    let keep_closed = !kept_files.is_empty();
    if keep_closed {
        warnings.push(format!(
            "the {} kept file(s) in `{}` stay closed to the web server (folder mode 0700): the site's user `{}` reaches them over SSH or SFTP; open the folder again once nothing secret is left in it",
            kept_files.len(),
            aps_host::shown::path(&loaded.root),
            loaded.site.system_user
        ));
    }
    // Step 4.2: the access changes of step 1 (the 503 configuration goes; a root that survives
    // gets its mode back unless it keeps files), then the recorded system changes, newest first,
    // through the journal's undo executor.
    for change in access {
        let result = match change {
            Change::WebConfig { site, instance, .. } => {
                crate::web::restore(ctx, site, instance, None)
            }
            Change::FolderMode { .. } if keep_closed => Ok(()),
            change => {
                crate::undo::undo(ctx, change, Stage::Done, &crate::report::Silent).map(|_| ())
            }
        };
        if let Err(e) = result {
            problems.push(format!("access: {e}"));
        }
    }
    for stored in loaded.system_changes.iter().rev() {
        let result =
            Change::from_system_change(&stored.kind, &stored.data_json, &loaded.site.docroot)
                .and_then(|change| match change {
                    // The folder was there before the instance: it stays, emptied by the file
                    // choice above, with its owner and mode of before.
                    Change::ClaimedFolder {
                        docroot,
                        rel,
                        uid,
                        gid,
                        mode,
                    } => give_back(
                        &docroot,
                        &rel,
                        (uid, gid),
                        if keep_closed { mode & !0o077 } else { mode },
                    ),
                    change => crate::undo::undo(ctx, &change, Stage::Done, &crate::report::Silent),
                });
        match result {
            Ok(crate::undo::Undone::Reverted) => {}
            Ok(crate::undo::Undone::Kept(why)) => warnings.push(why),
            Err(e) => problems.push(format!(
                "system change {} ({}): {e}",
                stored.seq, stored.kind
            )),
        }
    }
    if !problems.is_empty() {
        let _ = ctx
            .store()?
            .instances()
            .set_state(id, InstanceState::Failed, crate::now(ctx));
        let note = problems.join("\n  ");
        let _ = journal.finish(Outcome::Failed, Some(&note));
        return Err(Error::Failed(format!(
            "instance {id} ran `configure remove` but could not be removed completely:\n  {note}\nRun `apsctl remove {id}` again once this is fixed; it resumes here."
        )));
    }
    // Forget the instance and record the outcome in one transaction; only then remove the private
    // folder (its metadata is what a retried removal or `recover` would need).
    journal.finish_with("forget", Outcome::RolledForward, |store| {
        Ok(store.instances().delete(id)?)
    })?;
    if let Err(e) = crate::undo::undo(
        ctx,
        &Change::HomeFolder {
            path: loaded.private.clone(),
        },
        Stage::Done,
        &crate::report::Silent,
    ) {
        warnings.push(format!(
            "the private folder of instance {id} is left over: {e}"
        ));
    }
    Ok(RemoveReport {
        warnings,
        instance: id.clone(),
        files: choice,
        removed,
        kept_files,
        databases_dropped: dropped,
        databases_kept: kept_dbs,
        skipped,
    })
}

/// Gives a claimed instance root (an existing empty folder, or the document root) back its owner
/// and mode of before the install; a folder that is gone needs nothing.
fn give_back(
    docroot: &std::path::Path,
    rel: &str,
    (uid, gid): (u32, u32),
    mode: u32,
) -> Result<crate::undo::Undone, Error> {
    if let Some(dir) = (Place {
        docroot,
        prefix: rel,
    })
    .open_root_if_present()?
    {
        dir.chown(uid, gid).map_err(Error::Site)?;
        dir.set_mode(mode).map_err(Error::Site)?;
    }
    Ok(crate::undo::Undone::Reverted)
}

/// Seed step 4.1: drops the instance's databases and logins, or keeps them (recorded, with
/// their sealed credentials). A database other instances still use stays. Returns what was
/// dropped and what was kept; failures go to `problems`.
fn free_databases(
    ctx: &Context,
    loaded: &Loaded,
    databases: Databases,
    problems: &mut Vec<String>,
) -> (Vec<String>, Vec<String>) {
    let mut dropped = Vec::new();
    let mut kept = Vec::new();
    for db in &loaded.databases {
        let label = match &db.prefix {
            Some(prefix) => format!(
                "{} ({} `{}`, table prefix `{prefix}`)",
                db.db_id,
                db.kind.as_str(),
                db.name
            ),
            None => format!("{} ({} `{}`)", db.db_id, db.kind.as_str(), db.name),
        };
        // Other instances (with table prefixes) may live in this database too. The last instance
        // recorded in a database apsctl created drops it, even one that came to share it.
        let sharers = crate::database::users_of(ctx, db).map_or(2, |u| u.len());
        if sharers > 1 {
            let why = if db.shared {
                "shared database; the standard gives no way to tell which tables are this instance's (its table prefix is the only hint)"
            } else {
                "other instances keep their tables in it"
            };
            kept.push(format!("{label}, login `{}`: {why}", db.login));
            continue;
        }
        if databases == Databases::Keep {
            match crate::database::keep(ctx, loaded, db) {
                Ok(kept_id) => kept.push(format!(
                    "{label}, login `{}`: kept on request as kept database {kept_id} (`apsctl database kept`)",
                    db.login
                )),
                Err(e) => problems.push(format!("database {label}: {e}")),
            }
            continue;
        }
        match crate::database::drop(ctx, db) {
            Ok(()) => dropped.push(label),
            Err(e) => problems.push(format!("database {label}: {e}")),
        }
    }
    (dropped, kept)
}

/// Seed step 1: the web server answers 503 for every URL of the instance (its mapping is
/// replaced), then the instance root becomes private to its owner; each previous state is
/// journaled first. A root that is gone needs no mode change.
fn disable_access(
    journal: &mut Journal<'_>,
    loaded: &Loaded,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    crate::web::apply(
        journal,
        "disable-web",
        &loaded.site,
        &crate::web::closed(loaded),
        aps_host::web::Access::Disabled,
        reporter,
    )?;
    crate::web::close_root(journal, "disable-access", loaded, reporter)
}

/// Seed sub-step 3.1: the two file trees of an instance.
#[derive(Debug, Default)]
struct Trees {
    /// How many unchanged application files (and emptied deployed folders) there are — or,
    /// when the walk removes them, how many went.
    unchanged: usize,
    /// The unchanged application files' paths (only when the walk removes nothing).
    application: Vec<String>,
    /// Changed application files and files created by the instance.
    kept: Vec<KeptFile>,
}

/// What the removal dialog shows (seed 003 sub-steps 3.1–3.2): the two file trees of an
/// instance and the databases a removal drops or keeps.
#[derive(Debug, Clone, Serialize)]
pub struct FileTrees {
    /// The instance.
    pub instance: String,
    /// The application's own files, unchanged since they were deployed (both choices remove
    /// them), relative to the instance root.
    pub application: Vec<String>,
    /// The files the instance created or changed (`--files app` keeps them).
    pub instance_files: Vec<KeptFile>,
    /// The instance's databases (`db:id` → name).
    pub databases: BTreeMap<String, String>,
}

/// The two file trees of instance `id` as a removal would see them now (nothing changes).
pub fn file_trees(ctx: &Context, id: &str) -> Result<FileTrees, Error> {
    let loaded = Loaded::load_lenient(ctx, id)?;
    let trees = match loaded.place().open_root_if_present()? {
        Some(root) => trees(&loaded, &root, false)?,
        None => Trees::default(),
    };
    Ok(FileTrees {
        instance: id.to_owned(),
        application: trees.application,
        instance_files: trees.kept,
        databases: loaded
            .databases
            .iter()
            .map(|d| (d.db_id.clone(), d.name.clone()))
            .collect(),
    })
}

/// Walks the instance root through descriptors and sorts every entry into the two trees; with
/// `remove`, deletes the unchanged application files and the deployed folders left empty as it
/// goes (seed sub-step 3.3 for `--files app`).
fn trees(loaded: &Loaded, root: &SafeDir, remove: bool) -> Result<Trees, Error> {
    let recorded: BTreeMap<&str, &aps_store::instances::InstanceFile> =
        loaded.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut out = Trees::default();
    root.walk(&mut |entry: &Entry<'_>, phase| {
        // A name that is not UTF-8 was never deployed: an instance file.
        let rel = entry.rel.to_str().map(str::to_owned);
        let record = rel.as_deref().and_then(|r| recorded.get(r));
        match (phase, record) {
            (Phase::Leave, Some(f)) if f.kind == FileKind::Dir => {
                if remove {
                    match entry.parent.remove_dir_os(entry.name) {
                        Ok(()) => out.unchanged += 1,
                        Err(e) if e.is_not_empty() => {}
                        Err(e) => return Err(Error::Site(e)),
                    }
                }
            }
            (Phase::Enter | Phase::Leave, _) => {}
            (Phase::Leaf, Some(f)) if f.kind == FileKind::File => {
                if entry.kind == EntryKind::File && same_content(entry, f) {
                    if remove {
                        entry
                            .parent
                            .remove_file_os(entry.name)
                            .map_err(Error::Site)?;
                    } else {
                        out.application.push(shown(entry));
                    }
                    out.unchanged += 1;
                } else {
                    out.kept.push(KeptFile {
                        path: shown(entry),
                        reason: "modified",
                    });
                }
            }
            (Phase::Leaf, _) => out.kept.push(KeptFile {
                path: shown(entry),
                reason: "instance",
            }),
        }
        Ok(())
    })?;
    Ok(out)
}

/// An entry's path for the report (a name that is not UTF-8 is shown with replacement
/// characters; the entry itself is left as it is).
fn shown(entry: &Entry<'_>) -> String {
    entry.rel.to_string_lossy().into_owned()
}

/// Whether the regular file of `entry` still has its recorded size and SHA-256 (read through
/// its folder's descriptor: a planted link is "changed", never followed).
pub(crate) fn same_content(entry: &Entry<'_>, record: &aps_store::instances::InstanceFile) -> bool {
    entry.size == record.size && crate::instance::is_unchanged(entry.parent, entry.name, record)
}

/// What the question shows: the instance files that an `app` removal would keep.
pub(crate) fn preview(loaded: &Loaded) -> String {
    let listed = loaded
        .place()
        .open_root_if_present()
        .and_then(|root| match root {
            Some(root) => trees(loaded, &root, false),
            None => Ok(Trees::default()),
        });
    match listed {
        Ok(t) if t.kept.is_empty() => "The instance created or changed no files.".into(),
        Ok(Trees { kept, .. }) => {
            let mut text = format!("Files created or changed by the instance ({}):", kept.len());
            for k in kept.iter().take(20) {
                let _ = write!(
                    text,
                    "\n  {} ({})",
                    aps_host::shown::name(&k.path),
                    k.reason
                );
            }
            if kept.len() > 20 {
                text.push_str("\n  …");
            }
            text
        }
        Err(e) => format!("(cannot list the instance's files: {e})"),
    }
}

/// Seed sub-step 3.3: removes the files by `choice`; returns how many entries went and the
/// files kept.
fn remove_files(loaded: &Loaded, choice: FileChoice) -> Result<(usize, Vec<KeptFile>), Error> {
    let place = loaded.place();
    let Some(root) = place.open_root_if_present()? else {
        return Ok((0, Vec::new()));
    };
    let prefix = &loaded.instance.prefix;
    // A root the install claimed (an existing folder) is emptied, never removed.
    let created = !prefix.is_empty() && !claimed_root(loaded);
    match choice {
        FileChoice::All => {
            let mut count = root.clear().map_err(Error::Site)?;
            if created {
                drop(root);
                if let Some((parent, name)) = Place::open_parent_of(&loaded.site.docroot, prefix)? {
                    parent.remove_dir(name).map_err(Error::Site)?;
                    count += 1;
                }
            }
            Ok((usize::try_from(count).unwrap_or(usize::MAX), Vec::new()))
        }
        FileChoice::App => {
            let Trees {
                unchanged, kept, ..
            } = trees(loaded, &root, true)?;
            let mut count = unchanged;
            if created && root.is_empty().map_err(Error::Site)? {
                drop(root);
                let (parent, name) = split_last(prefix);
                (Place {
                    docroot: &loaded.site.docroot,
                    prefix: parent,
                })
                .open_root()?
                .remove_dir(name)
                .map_err(Error::Site)?;
                count += 1;
            }
            Ok((count, kept))
        }
    }
}

/// Whether the instance's root existed before its install (it keeps the claim as a system
/// change).
fn claimed_root(loaded: &Loaded) -> bool {
    loaded.system_changes.iter().any(|stored| {
        matches!(
            Change::from_system_change(&stored.kind, &stored.data_json, &loaded.site.docroot),
            Ok(Change::ClaimedFolder { .. })
        )
    })
}
