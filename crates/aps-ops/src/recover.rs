//! Recover: bring operations interrupted by a crash to a consistent state (REFERENCE §8.12; D13).
//!
//! Main decision: an operation without an outcome whose instance lock is free was interrupted.
//! Before its commit point it is rolled back, executing the undo data of its steps in reverse
//! (the same [`crate::journal::apply_undo`] a live rollback uses). A removal that had already run
//! `configure remove` successfully is rolled forward instead. An operation whose lock is held
//! belongs to a live process and is left alone.
use aps_host::lock::OpLock;
use aps_store::journal::{Operation, Outcome, StepState};
use serde::Serialize;

use crate::context::Context;
use crate::error::Error;
use crate::journal::{Journal, apply_undo, parse_undo};
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

/// Recovers every interrupted operation.
pub fn recover(ctx: &Context, reporter: &dyn Reporter) -> Result<Vec<Recovered>, Error> {
    let mut out = Vec::new();
    for op in ctx.store.journal().unfinished_operations()? {
        let lock_path = op
            .instance
            .as_ref()
            .map(|i| ctx.home.instance(i).join("lock"));
        let _lock = if let Some(path) = lock_path
            .as_ref()
            .filter(|p| p.parent().is_some_and(std::path::Path::exists))
        {
            if let Ok(lock) =
                OpLock::acquire(path, &format!("recovery (pid {})", std::process::id()))
            {
                Some(lock)
            } else {
                out.push(entry(
                    &op,
                    "skipped",
                    Some("still running in a live process".into()),
                ));
                continue;
            }
        } else {
            None
        };
        reporter.step(&format!(
            "recovering {} operation {} of instance {}",
            op.kind,
            op.id.0,
            op.instance.as_deref().unwrap_or("-")
        ));
        out.push(recover_one(ctx, &op, reporter));
    }
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
    let steps = match ctx.store.journal().steps(op.id) {
        Ok(s) => s,
        Err(e) => return entry(op, "failed", Some(e.to_string())),
    };
    let past_commit = op.kind == "remove"
        && steps
            .iter()
            .any(|s| s.kind == "configure-remove" && s.state == StepState::Done);
    if past_commit {
        return roll_forward(ctx, op, reporter);
    }
    let mut problems = Vec::new();
    for step in steps.iter().rev().filter(|s| s.state != StepState::Undone) {
        match parse_undo(&step.undo_json).and_then(|undo| apply_undo(ctx, &undo)) {
            Ok(()) => {
                let _ = ctx.store.journal().step_undone(op.id, step.seq);
            }
            Err(e) => problems.push(format!("step {} ({}): {e}", step.seq, step.kind)),
        }
    }
    let at = crate::now(ctx);
    if problems.is_empty() {
        let _ = ctx.store.journal().finish_operation(
            op.id,
            Outcome::RolledBack,
            Some("interrupted; rolled back by recover"),
            at,
        );
        entry(op, "rolled_back", None)
    } else {
        let note = problems.join("; ");
        let _ = ctx
            .store
            .journal()
            .finish_operation(op.id, Outcome::Failed, Some(&note), at);
        entry(op, "failed", Some(note))
    }
}

fn roll_forward(ctx: &Context, op: &Operation, reporter: &dyn Reporter) -> Recovered {
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
    let result = crate::instance::Loaded::load(ctx, instance).and_then(|loaded| {
        let journal = Journal::resume(ctx, op.id);
        let mode = ctx.store.journal().steps(op.id)?.into_iter().find_map(|s| {
            match parse_undo(&s.undo_json) {
                Ok(crate::journal::Undo::RestoreMode { mode, .. }) => Some(mode),
                _ => None,
            }
        });
        crate::remove::finish(ctx, journal, &loaded, choice, databases, mode)
    });
    match result {
        Ok(_) => entry(op, "rolled_forward", None),
        Err(e) => {
            reporter.warn(&e.to_string());
            // Left for an administrator: record it once (a no-op when `finish` already did).
            let _ = ctx.store.journal().finish_operation(
                op.id,
                Outcome::Failed,
                Some(&e.to_string()),
                crate::now(ctx),
            );
            entry(op, "failed", Some(e.to_string()))
        }
    }
}
