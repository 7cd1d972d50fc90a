//! Remove: the removal scenario of the seed document, step by step (REFERENCE §8.10; D11).
//!
//! Main decision: the order is fixed by the seed. (1) Access to the instance is disabled and its
//! URL mapping removed; (2) `configure remove` runs — if it cannot run or fails, removal stops,
//! access is given back, the error is shown and everything is kept; (3) the two file trees
//! (application files as deployed, files created or changed by the instance) are built and the
//! user's choice applied; (4) resources are freed and every recorded system change rolled back.
//! A successful `configure remove` is the commit point: later steps are rolled forward, and what
//! could not be done is reported and left for a second `apsctl remove` (§11 Q27).
//!
//! "Disabling access" for a site apsctl does not configure a web server for (`--web none`) means
//! making the instance's root folder private to its owner (mode 0700): a web server running as
//! another user then answers 403. Known gap: nginx and Apache sites get no server-side block yet.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use aps_store::instances::FileKind;
use serde::Serialize;

use crate::context::Context;
use crate::deploy::fs_error;
use crate::error::Error;
use crate::instance::Loaded;
use crate::journal::{self, Journal, Undo};
use crate::report::{FileChoice, Reporter};
use aps_host::safedir::SafeDir;
use sha2::Digest as _;

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
    if opts.files.is_none() && !reporter.can_ask() {
        return Err(Error::Invalid(format!(
            "removing instance {} needs a choice for its files: give `--files all` (remove every file) or `--files app` (keep files the application created or changed)",
            opts.instance
        )));
    }
    let _lock = crate::configure::lock(ctx, &opts.instance, "removal")?;
    let loaded = Loaded::load(ctx, &opts.instance)?;
    let params = serde_json::json!({ "files": opts.files, "databases": opts.databases });
    let mut journal = Journal::begin(ctx, Some(&opts.instance), "remove", &params)?;

    // Step 1: disable access and remove the URL mapping.
    let before = disable_access(&mut journal, &loaded, reporter);
    let previous_mode = before.as_ref().ok().copied().flatten();
    // Step 2: configure remove (2.1 interpreter check, 2.2 environment, 2.3 run, 2.4 stop on failure).
    let mut script_succeeded = false;
    let step2 = (|| {
        before?;
        if let Some(script) = loaded.config_script(ctx)? {
            let vars = loaded.variables(None);
            journal.step("configure-remove", Undo::Nothing, || {
                script.run(ctx, "remove", &[], &vars, reporter)?;
                script_succeeded = true;
                Ok(())
            })?;
        }
        Ok(())
    })();
    match step2 {
        // The application already ran its removal logic: that is the commit point (§11 Q27).
        Err(e) if script_succeeded => reporter.warn(&format!(
            "{e}; `configure remove` had succeeded, so the removal goes on"
        )),
        Err(e) => {
            let e = journal.rollback(reporter, e);
            return Err(Error::Failed(format!(
                "{e}\nInstance {} was not removed: its files, databases and records are kept and its access was restored.",
                opts.instance
            )));
        }
        Ok(()) => {}
    }
    // Past the commit point: roll forward.
    let choice = match opts.files {
        Some(c) => c,
        None => reporter
            .ask_file_choice(&preview(&loaded))
            .unwrap_or_else(|| {
                reporter.warn("no answer: keeping the files the application created or changed");
                FileChoice::App
            }),
    };
    finish(ctx, journal, &loaded, choice, opts.databases, previous_mode)
}

/// Seed steps 3 and 4, after a successful `configure remove` (also used by `recover`).
pub(crate) fn finish(
    ctx: &Context,
    journal: Journal<'_>,
    loaded: &Loaded,
    choice: FileChoice,
    databases: Databases,
    previous_mode: Option<u32>,
) -> Result<RemoveReport, Error> {
    let id = &loaded.instance.id;
    let mut problems = Vec::new();
    let (removed, kept_files) = match remove_files(loaded, choice) {
        Ok(x) => x,
        Err(e) => {
            problems.push(format!("files: {e}"));
            (0, Vec::new())
        }
    };
    let mut dropped = Vec::new();
    let mut kept_dbs = Vec::new();
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
        if databases == Databases::Keep || sharers > 1 {
            let why = if databases == Databases::Keep {
                "kept on request"
            } else if db.shared {
                "shared database; the standard gives no way to tell which tables are this instance's (its table prefix is the only hint)"
            } else {
                "other instances keep their tables in it"
            };
            kept_dbs.push(format!("{label}, login `{}`: {why}", db.login));
            continue;
        }
        match crate::database::drop(ctx, db) {
            Ok(()) => dropped.push(label),
            Err(e) => problems.push(format!("database {label}: {e}")),
        }
    }
    // Step 4.2: roll back recorded system changes (the access change is ours and undone last).
    if let Err(e) = restore_access(loaded, previous_mode) {
        problems.push(format!("access: {e}"));
    }
    for change in loaded.system_changes.iter().rev() {
        if let Err(e) = roll_back_change(loaded, change) {
            problems.push(format!(
                "system change {} ({}): {e}",
                change.seq, change.kind
            ));
        }
    }
    if !problems.is_empty() {
        let _ = ctx.store.instances().set_state(
            id,
            aps_store::instances::InstanceState::Failed,
            crate::now(ctx),
        );
        let note = problems.join("\n  ");
        let _ = journal.rolled_forward(Some(&note));
        return Err(Error::Failed(format!(
            "instance {id} ran `configure remove` but could not be removed completely:
  {note}
Run `apsctl remove {id}` again once this is fixed."
        )));
    }
    // Forget the instance and record the outcome in one transaction; only then remove the private
    // folder (its metadata is what a retried removal or `recover` would need).
    journal.finish_with("forget", crate::journal::Outcome::RolledForward, |store| {
        Ok(store.instances().delete(id)?)
    })?;
    let mut warnings = Vec::new();
    if let Err(e) = journal::remove_tree(&loaded.private) {
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
    })
}

/// Seed step 1: the instance root becomes private to its owner; the previous mode (returned)
/// is the undo.
fn disable_access(
    journal: &mut Journal<'_>,
    loaded: &Loaded,
    reporter: &dyn Reporter,
) -> Result<Option<u32>, Error> {
    let place = loaded.place();
    let Ok(root) = place.open_root() else {
        return Ok(None);
    };
    reporter.step(&format!("disabling access to `{}`", loaded.root.display()));
    let mode = root.mode().map_err(fs_error)?;
    let undo = Undo::RestoreMode {
        docroot: loaded.site.docroot.clone(),
        rel: loaded.instance.prefix.clone(),
        mode,
    };
    journal.step("disable-access", undo, || {
        root.set_mode(0o700).map_err(fs_error)
    })?;
    Ok(Some(mode))
}

/// Step 4.2 for the access change: a root that survives the removal (kept instance files, or
/// the document root itself) gets its previous mode back.
fn restore_access(loaded: &Loaded, previous: Option<u32>) -> Result<(), Error> {
    if let (Ok(root), Some(mode)) = (loaded.place().open_root(), previous) {
        root.set_mode(mode).map_err(fs_error)?;
    }
    Ok(())
}

/// Seed sub-step 3.1: the two file trees of an instance.
#[derive(Debug, Default)]
struct Trees {
    /// Application files whose content is as deployed.
    unchanged: Vec<PathBuf>,
    /// Changed application files and files created by the instance.
    kept: Vec<KeptFile>,
    /// Folders created by the deployment.
    dirs: Vec<String>,
}

fn trees(loaded: &Loaded) -> Result<Trees, Error> {
    let recorded: BTreeMap<&str, &aps_store::instances::InstanceFile> =
        loaded.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut unchanged = Vec::new();
    let mut kept = Vec::new();
    let mut dirs = Vec::new();
    let Ok(root) = loaded.place().open_root() else {
        return Ok(Trees {
            unchanged,
            kept,
            dirs,
        });
    };
    // Walk the opened root (`/proc/self/fd/N`): a root swapped for a link is not walked.
    crate::deploy::walk(&root.proc_path(), Path::new(""), &mut |rel, is_dir| {
        let rel_text = rel.to_string_lossy().into_owned();
        match recorded.get(rel_text.as_str()) {
            Some(f) if f.kind == FileKind::Dir && is_dir => dirs.push(rel_text),
            Some(f) if f.kind == FileKind::File && !is_dir => {
                if same_content(&root, rel, f) {
                    unchanged.push(rel.to_path_buf());
                } else {
                    kept.push(KeptFile {
                        path: rel_text,
                        reason: "modified",
                    });
                }
            }
            _ if is_dir => {}
            _ => kept.push(KeptFile {
                path: rel_text,
                reason: "instance",
            }),
        }
        Ok(())
    })?;
    Ok(Trees {
        unchanged,
        kept,
        dirs,
    })
}

/// Whether the file `rel` below the instance root still has its recorded size and SHA-256
/// (read through folder descriptors: a planted link is "changed", never followed).
fn same_content(root: &SafeDir, rel: &Path, record: &aps_store::instances::InstanceFile) -> bool {
    let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
        return false;
    };
    let Ok(mut file) = root
        .open_rel(parent)
        .and_then(|dir| dir.open_file(&name.to_string_lossy()))
    else {
        return false;
    };
    match file.metadata() {
        Ok(meta) if meta.is_file() && meta.len() == record.size => {}
        _ => return false,
    }
    let mut hasher = sha2::Sha256::new();
    if std::io::copy(&mut file, &mut hasher).is_err() {
        return false;
    }
    record.sha256.as_deref() == Some(hex::encode(hasher.finalize()).as_str())
}

/// What the question shows: the instance files that an `app` removal would keep.
fn preview(loaded: &Loaded) -> String {
    match trees(loaded) {
        Ok(t) if t.kept.is_empty() => "The instance created or changed no files.".into(),
        Ok(Trees { kept, .. }) => {
            let mut text = format!("Files created or changed by the instance ({}):", kept.len());
            for k in kept.iter().take(20) {
                let _ = write!(text, "\n  {} ({})", k.path, k.reason);
            }
            if kept.len() > 20 {
                text.push_str("\n  …");
            }
            text
        }
        Err(e) => format!("(cannot list the instance's files: {e})"),
    }
}

/// Seed sub-step 3.3.
fn remove_files(loaded: &Loaded, choice: FileChoice) -> Result<(usize, Vec<KeptFile>), Error> {
    let place = loaded.place();
    let Ok(root) = place.open_root() else {
        return Ok((0, Vec::new()));
    };
    match choice {
        FileChoice::All => {
            let mut count = 0;
            crate::deploy::walk(&root.proc_path(), Path::new(""), &mut |_, _| {
                count += 1;
                Ok(())
            })?;
            if loaded.instance.prefix.is_empty() {
                for name in root.names().map_err(fs_error)? {
                    root.remove_tree(&name).map_err(fs_error)?;
                }
            } else {
                let (parent, name) = split_last(&loaded.instance.prefix);
                let parent = (crate::deploy::Place {
                    docroot: &loaded.site.docroot,
                    prefix: parent,
                })
                .open_root()?;
                parent.remove_tree(name).map_err(fs_error)?;
            }
            Ok((count, Vec::new()))
        }
        FileChoice::App => {
            let Trees {
                unchanged,
                kept,
                mut dirs,
            } = trees(loaded)?;
            let mut count = 0;
            for rel in &unchanged {
                let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
                    continue;
                };
                root.open_rel(parent)
                    .and_then(|dir| dir.remove_file(&name.to_string_lossy()))
                    .map_err(fs_error)?;
                count += 1;
            }
            // Deepest first; a folder that still holds something is kept.
            dirs.sort_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
            for rel in &dirs {
                let (parent, name) = split_last(rel);
                let dir = root.open_rel(Path::new(parent)).map_err(fs_error)?;
                if dir
                    .open_dir(name)
                    .and_then(|d| d.is_empty())
                    .unwrap_or(false)
                {
                    dir.remove_dir(name).map_err(fs_error)?;
                    count += 1;
                }
            }
            if !loaded.instance.prefix.is_empty() && root.is_empty().map_err(fs_error)? {
                let (parent, name) = split_last(&loaded.instance.prefix);
                (crate::deploy::Place {
                    docroot: &loaded.site.docroot,
                    prefix: parent,
                })
                .open_root()?
                .remove_dir(name)
                .map_err(fs_error)?;
            }
            Ok((count, kept))
        }
    }
}

/// Rolls back one recorded system change. A folder created above the instance root goes when it
/// is empty; one that holds something now (the site user's files) stays.
fn roll_back_change(
    loaded: &Loaded,
    change: &aps_store::instances::SystemChange,
) -> Result<(), Error> {
    if change.kind != crate::install::CREATED_FOLDER {
        return Err(Error::Failed(format!(
            "apsctl does not know how to roll back a `{}` change",
            change.kind
        )));
    }
    let data: serde_json::Value = serde_json::from_str(&change.data_json).map_err(|e| {
        Error::Failed(format!(
            "unreadable system change `{}`: {e}",
            change.data_json
        ))
    })?;
    let rel = data["path"].as_str().unwrap_or("");
    if rel.is_empty() {
        return Ok(());
    }
    let (parent, name) = split_last(rel);
    let Ok(dir) = (crate::deploy::Place {
        docroot: &loaded.site.docroot,
        prefix: parent,
    })
    .open_root() else {
        return Ok(());
    };
    let empty = dir
        .open_dir(name)
        .and_then(|d| d.is_empty())
        .unwrap_or(false);
    if empty {
        dir.remove_dir(name).map_err(fs_error)?;
    }
    Ok(())
}

/// Splits `a/b/c` into `a/b` and `c`, and `c` into an empty parent and `c`.
fn split_last(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or(("", rel))
}
