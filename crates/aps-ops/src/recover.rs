//! Recover: bring operations interrupted by a crash to a consistent state (REFERENCE §8.12; D13).
//!
//! Main decision: an operation without an outcome whose instance lock is free was interrupted.
//! Before its commit point it is rolled back: the journal's changes go, newest first, through
//! the same undo executor a live rollback uses (`undo.rs`), which undoes only what each
//! change provably made — a script that ran, or may have run when the crash came, is answered
//! by the script itself (`configure remove` after `configure install`, `configure configure`
//! with the stored values after `configure configure`). A removal past its commit point is
//! rolled forward; so is a removal interrupted while `configure remove` ran, whose script is run
//! again first, and one whose `configure remove` succeeded just before the crash, which took
//! the commit point with it (the application may already have dropped its data: giving the
//! instance back would give back a broken one). An operation whose lock is held belongs to a live process and
//! is left alone. Private folders that no instance and no operation owns (a crash right after an
//! install picked its id) are removed.
use aps_store::journal::{Operation, Outcome};
use serde::Serialize;

use crate::change::{Change, Stage};
use crate::context::Context;
use crate::error::Error;
use crate::journal::Journal;
use crate::report::{FileChoice, Reporter};

/// What happened to one interrupted operation.
#[derive(Debug, Clone, Serialize)]
pub struct Recovered {
    /// Journal id of the operation.
    pub operation: i64,
    /// `install`, `remove`, `configure`, …
    pub kind: String,
    /// The instance.
    pub instance: Option<String>,
    /// `rolled_back`, `rolled_forward`, `skipped` (still running) or `failed`.
    pub outcome: String,
    /// What was left for an administrator, if anything.
    pub note: Option<String>,
}

/// Recovers every interrupted operation, then removes orphaned private folders.
pub fn recover(ctx: &Context, reporter: &dyn Reporter) -> Result<Vec<Recovered>, Error> {
    let mut out = Vec::new();
    for op in ctx.store()?.journal().unfinished_operations()? {
        let _lock = match &op.instance {
            Some(instance) => {
                let Some(lock) = crate::lock::try_instance(ctx, instance, "recovery")? else {
                    out.push(entry(
                        &op,
                        "skipped",
                        Some("still running in a live process".into()),
                    ));
                    continue;
                };
                Some(lock)
            }
            None => None,
        };
        reporter.step(&format!(
            "recovering {} operation {} of instance {}",
            op.kind,
            op.id.0,
            op.instance.as_deref().unwrap_or("-")
        ));
        out.push(recover_one(ctx, &op, reporter));
    }
    sweep_private_folders(ctx, reporter)?;
    Ok(out)
}

fn entry(op: &Operation, outcome: &str, note: Option<String>) -> Recovered {
    Recovered {
        operation: op.id.0,
        kind: op.kind.clone(),
        instance: op.instance.clone(),
        outcome: outcome.into(),
        note,
    }
}

fn recover_one(ctx: &Context, op: &Operation, reporter: &dyn Reporter) -> Recovered {
    let mut journal = match Journal::resume(ctx, op.id) {
        Ok(journal) => journal,
        Err(e) => {
            let note = format!("{e}; undo this operation by hand");
            let _ = ctx.store().map(|s| {
                s.journal()
                    .finish_operation(op.id, Outcome::Failed, Some(&note), crate::now(ctx))
            });
            return entry(op, "failed", Some(note));
        }
    };
    if op.kind == "remove" {
        // `configure remove` ran, or may have: running (`started`), or done but the crash came
        // before the commit point was written. Either way the application's data may be gone.
        let removal_ran = journal.entries().iter().any(|e| {
            is_remove_script(&e.change) && matches!(e.stage, Some(Stage::Started | Stage::Done))
        });
        if op.committed_at.is_some() || removal_ran {
            return roll_forward(ctx, op, journal, reporter);
        }
    }
    let (kept, leftovers) = journal.undo_all(reporter);
    if op.kind == "upgrade" && leftovers.is_empty() {
        // The instance is back from its safety backup, which has done its job.
        let params: serde_json::Value = serde_json::from_str(&op.params_json).unwrap_or_default();
        if let Some(safety) = params["safety"].as_str() {
            let _ = fs_err::remove_file(safety);
        }
    }
    let (outcome, note) = if leftovers.is_empty() {
        let mut note = "interrupted; rolled back by recover".to_owned();
        if !kept.is_empty() {
            note.push_str("; left in place on purpose: ");
            note.push_str(&kept.join("; "));
        }
        (Outcome::RolledBack, note)
    } else {
        (Outcome::Failed, leftovers.join("; "))
    };
    let _ = journal.finish(outcome, Some(&note));
    if outcome == Outcome::RolledBack {
        entry(
            op,
            "rolled_back",
            (!kept.is_empty()).then(|| kept.join("; ")),
        )
    } else {
        entry(op, "failed", Some(note))
    }
}

/// Completes a removal: runs `configure remove` again when the crash came while it ran, then the
/// rest of the removal as the interrupted one would have.
fn roll_forward(
    ctx: &Context,
    op: &Operation,
    mut journal: Journal<'_>,
    reporter: &dyn Reporter,
) -> Recovered {
    let Some(instance) = &op.instance else {
        return entry(op, "failed", Some("no instance recorded".into()));
    };
    let params: serde_json::Value = serde_json::from_str(&op.params_json).unwrap_or_default();
    let choice = match params["files"].as_str() {
        Some("all") => FileChoice::All,
        _ => FileChoice::App,
    };
    let databases = match params["databases"].as_str() {
        Some("keep") => crate::remove::Databases::Keep,
        _ => crate::remove::Databases::Drop,
    };
    let result = crate::instance::Loaded::load_lenient(ctx, instance).and_then(|loaded| {
        let interrupted = journal
            .entries()
            .iter()
            .any(|e| is_remove_script(&e.change) && e.stage == Some(Stage::Started));
        if op.committed_at.is_none() && interrupted {
            // Interrupted while `configure remove` ran: run it to its end, or give up the
            // removal (access back, instance kept) as a failed script would.
            let rerun = loaded.config_script(ctx).and_then(|script| match script {
                Some(script) => script.run(ctx, "remove", &[], &loaded.variables(None), reporter),
                None => Ok(()),
            });
            if let Err(e) = rerun {
                let (_, leftovers) = journal.undo_all(reporter);
                let note = format!(
                    "`configure remove` was interrupted and failed when run again: {e}; the removal was given up{}",
                    if leftovers.is_empty() {
                        String::new()
                    } else {
                        format!(" (not undone: {})", leftovers.join("; "))
                    }
                );
                let _ = journal.finish(Outcome::RolledBack, Some(&note));
                return Err(Error::Failed(note));
            }
        }
        if op.committed_at.is_none() {
            journal.commit_point()?;
        }
        let access = crate::remove::access_changes(&journal);
        crate::remove::finish(ctx, journal, &loaded, choice, databases, &access, Vec::new())
    });
    match result {
        Ok(_) => entry(op, "rolled_forward", None),
        Err(e) => {
            reporter.warn(&e.to_string());
            // Left for an administrator: record it once (a no-op when `finish` already did).
            let _ = ctx.store().map(|s| {
                s.journal().finish_operation(
                    op.id,
                    Outcome::Failed,
                    Some(&e.to_string()),
                    crate::now(ctx),
                )
            });
            entry(op, "failed", Some(e.to_string()))
        }
    }
}

/// Whether `change` is a run of `configure remove`.
fn is_remove_script(change: &Change) -> bool {
    matches!(change, Change::Script { action, .. } if action == "remove")
}

/// Removes the private folders of `<home>/instances` that belong to no instance and to no
/// unfinished operation (an install that crashed right after picking its id, before its
/// journal existed). A folder whose lock is held is left alone.
fn sweep_private_folders(ctx: &Context, reporter: &dyn Reporter) -> Result<(), Error> {
    let store = ctx.store()?;
    let known: std::collections::BTreeSet<String> = store
        .instances()
        .list()?
        .into_iter()
        .map(|i| i.id)
        .collect();
    let running: std::collections::BTreeSet<String> = store
        .journal()
        .unfinished_operations()?
        .into_iter()
        .filter_map(|op| op.instance)
        .collect();
    drop(store);
    for entry in fs_err::read_dir(ctx.home.instances())? {
        let name = entry?.file_name();
        let Some(id) = name
            .to_str()
            .filter(|n| n.chars().all(|c| c.is_ascii_digit()))
        else {
            continue;
        };
        if known.contains(id) || running.contains(id) {
            continue;
        }
        let Some(_lock) = crate::lock::try_instance(ctx, id, "recovery")? else {
            continue;
        };
        let path = ctx.home.instance(id);
        reporter.step(&format!(
            "removing `{}`, the private folder of an install that never started",
            path.display()
        ));
        crate::undo::undo(
            ctx,
            &Change::HomeFolder { path },
            Stage::Done,
            &crate::report::Silent,
        )?;
    }
    Ok(())
}
