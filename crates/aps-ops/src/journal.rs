//! The operation journal (D13): every change an operation makes is written to the store before
//! it is made, and marked done (or failed) after.
//!
//! Main decision: the journal records, the executor undoes. A step of an operation is a named
//! group of [`Change`]s; [`Journal::change`] writes a change as `started`, runs the act, and
//! marks it `done` or `failed`, so the journal always says how far each change got — a deploy
//! that fails halfway, a database creation refused because the name appeared meanwhile, a crash
//! while a script runs. [`Journal::rollback`] (and `apsctl recover`, after a crash) hands each
//! change and its stage to `undo.rs`, newest first, which undoes only what the change
//! provably made. An operation may pass a commit point ([`Journal::commit_point`]); after it an
//! interruption is completed instead of undone (a removal whose `configure remove` succeeded).
//! The last store change of an operation and its outcome are one transaction
//! ([`Journal::finish_with`], §8.0 step 4).
//!
//! Fault points (test builds only, `aps_failpoint`): `after:<step>` when a step succeeded, and
//! `journal-write` before every journal write, so that a test can stop an operation between any
//! two store writes.
pub use aps_store::journal::Outcome;
use aps_store::journal::{NewOperation, OperationId, StepState};

use crate::change::{Change, Stage};
use crate::context::Context;
use crate::error::Error;
use crate::report::Reporter;
use crate::undo::Undone;

/// One journaled change and how far it got.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Its position in the operation.
    pub seq: u32,
    /// The step it belongs to.
    pub step: String,
    /// The change.
    pub change: Change,
    /// How far it got; `None` once undone.
    pub stage: Option<Stage>,
}

/// A running operation's journal.
#[derive(Debug)]
pub struct Journal<'c> {
    ctx: &'c Context,
    op: OperationId,
    /// The step running now (the `kind` of the rows it writes).
    step: String,
    entries: Vec<Entry>,
    /// Whether the operation passed its commit point.
    committed: bool,
}

impl<'c> Journal<'c> {
    /// Starts an operation record. `params` must hold no secret and no installation-only value.
    pub fn begin(
        ctx: &'c Context,
        instance: Option<&str>,
        kind: &str,
        params: &serde_json::Value,
    ) -> Result<Self, Error> {
        fault("journal-write")?;
        let op = ctx.store()?.journal().begin_operation(&NewOperation {
            instance: instance.map(str::to_owned),
            kind: kind.to_owned(),
            params_json: params.to_string(),
            started_at: crate::now(ctx),
            pid: std::process::id(),
            host: ctx.env.hostname(),
        })?;
        Ok(Self {
            ctx,
            op,
            step: String::new(),
            entries: Vec::new(),
            committed: false,
        })
    }

    /// Continues an operation found in the journal (by `recover`, or a removal resuming a
    /// committed one): its changes as recorded.
    pub(crate) fn resume(ctx: &'c Context, op: OperationId) -> Result<Self, Error> {
        let mut entries = Vec::new();
        for row in ctx.store()?.journal().steps(op)? {
            let stage = match row.state {
                StepState::Started => Some(Stage::Started),
                StepState::Done => Some(Stage::Done),
                StepState::Failed => Some(Stage::Failed),
                StepState::Undone => None,
            };
            entries.push(Entry {
                seq: row.seq,
                step: row.kind,
                change: Change::from_json(&row.undo_json)?,
                stage,
            });
        }
        let committed = ctx.store()?.journal().operation(op)?.committed_at.is_some();
        Ok(Self {
            ctx,
            op,
            step: String::new(),
            entries,
            committed,
        })
    }

    /// Whether the operation passed its commit point (then it is completed, not undone).
    pub(crate) fn is_committed(&self) -> bool {
        self.committed
    }

    /// The context the operation runs in.
    pub(crate) fn context(&self) -> &'c Context {
        self.ctx
    }

    /// The operation's id in the journal.
    pub(crate) fn id(&self) -> OperationId {
        self.op
    }

    /// The changes recorded so far, oldest first.
    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Runs step `kind`: `act` makes its changes through [`Journal::change`]. When it succeeds
    /// the fault point `after:<kind>` is passed.
    pub fn step<T>(
        &mut self,
        kind: &str,
        act: impl FnOnce(&mut Self) -> Result<T, Error>,
    ) -> Result<T, Error> {
        kind.clone_into(&mut self.step);
        let value = act(self)?;
        fault(&format!("after:{kind}"))?;
        Ok(value)
    }

    /// Records `change` as started, runs `act`, and marks the change done (or failed, keeping
    /// `act`'s error). A change whose act has nothing to do afterwards (`act` is `|| Ok(())`
    /// for a change made just before) is recorded all the same.
    pub fn change<T>(
        &mut self,
        change: Change,
        act: impl FnOnce() -> Result<T, Error>,
    ) -> Result<T, Error> {
        fault("journal-write")?;
        let seq =
            self.ctx
                .store()?
                .journal()
                .record_step(self.op, &self.step, &change.to_json())?;
        self.entries.push(Entry {
            seq,
            step: self.step.clone(),
            change,
            stage: Some(Stage::Started),
        });
        match act() {
            Ok(value) => {
                self.mark(seq, Stage::Done)?;
                Ok(value)
            }
            Err(error) => {
                // Best effort: the entry stays `started`, which the undo treats the same way.
                let _ = self.mark(seq, Stage::Failed);
                Err(error)
            }
        }
    }

    fn mark(&mut self, seq: u32, stage: Stage) -> Result<(), Error> {
        fault("journal-write")?;
        let journal = self.ctx.store()?;
        match stage {
            Stage::Done => journal.journal().step_done(self.op, seq)?,
            Stage::Failed => journal.journal().step_failed(self.op, seq)?,
            Stage::Started => {}
        }
        if let Some(entry) = self.entries.iter_mut().find(|e| e.seq == seq) {
            entry.stage = Some(stage);
        }
        Ok(())
    }

    /// Marks the operation past its commit point: from now on it is completed, not undone.
    pub fn commit_point(&mut self) -> Result<(), Error> {
        fault("journal-write")?;
        self.ctx
            .store()?
            .journal()
            .commit_point(self.op, crate::now(self.ctx))?;
        self.committed = true;
        Ok(())
    }

    /// Undoes every recorded change in reverse, records the outcome and returns `error`, with
    /// what was deliberately kept and what could not be undone.
    pub fn rollback(self, reporter: &dyn Reporter, error: Error) -> Error {
        self.rollback_reporting(reporter, error).0
    }

    /// [`Journal::rollback`], also telling whether every change was undone (nothing left for an
    /// administrator).
    pub fn rollback_reporting(mut self, reporter: &dyn Reporter, error: Error) -> (Error, bool) {
        let (kept, leftovers) = self.undo_all(reporter);
        let complete = leftovers.is_empty();
        let outcome = if leftovers.is_empty() {
            Outcome::RolledBack
        } else {
            Outcome::Failed
        };
        let mut message = crate::error::chain(&error);
        if !kept.is_empty() {
            message.push_str("\nLeft in place on purpose:\n  ");
            message.push_str(&kept.join("\n  "));
        }
        if let Ok(store) = self.ctx.store() {
            let _ = store.journal().finish_operation(
                self.op,
                outcome,
                Some(&message),
                crate::now(self.ctx),
            );
        }
        let error = if leftovers.is_empty() && kept.is_empty() {
            error
        } else if leftovers.is_empty() {
            Error::Failed(message)
        } else {
            Error::Failed(format!(
                "{message}\nThe rollback left work for an administrator (run `apsctl recover` to retry):\n  {}",
                leftovers.join("\n  ")
            ))
        };
        (error, complete)
    }

    /// Runs the undo of every change not undone yet, newest first; returns what was kept on
    /// purpose and what failed.
    pub(crate) fn undo_all(&mut self, reporter: &dyn Reporter) -> (Vec<String>, Vec<String>) {
        let mut kept = Vec::new();
        let mut leftovers = Vec::new();
        for i in (0..self.entries.len()).rev() {
            let Some(stage) = self.entries[i].stage else {
                continue;
            };
            let entry = self.entries[i].clone();
            match crate::undo::undo(self.ctx, &entry.change, stage, reporter) {
                Ok(result) => {
                    if let Undone::Kept(why) = result {
                        reporter.warn(&why);
                        kept.push(why);
                    }
                    let marked = self
                        .ctx
                        .store()
                        .and_then(|s| Ok(s.journal().step_undone(self.op, entry.seq)?));
                    if marked.is_ok() {
                        self.entries[i].stage = None;
                    }
                }
                Err(e) => {
                    let text = format!("{} ({}): {e}", entry.change.kind(), entry.step);
                    reporter.warn(&format!("could not undo {text}"));
                    leftovers.push(text);
                }
            }
        }
        (kept, leftovers)
    }

    /// Makes the operation's final store change and records its `outcome` in one store
    /// transaction (REFERENCE §8.0 step 4): either both happen or neither. `kind` names this
    /// commit for the fault points, which fire just before the transaction (`after:<kind>`; a
    /// failure after it would find nothing left to undo).
    pub fn finish_with(
        &self,
        kind: &str,
        outcome: Outcome,
        change: impl FnOnce(&aps_store::Store) -> Result<(), Error>,
    ) -> Result<(), Error> {
        finish_together(self.ctx, std::slice::from_ref(self), kind, outcome, change)
    }

    /// Records the operation's end with `outcome` and a note.
    pub fn finish(self, outcome: Outcome, note: Option<&str>) -> Result<(), Error> {
        self.ctx.store()?.journal().finish_operation(
            self.op,
            outcome,
            note,
            crate::now(self.ctx),
        )?;
        Ok(())
    }
}

/// [`Journal::finish_with`] for an operation that keeps one journal per instance (`site
/// update`): its final store change and the `outcome` of every journal in `journals` are one
/// store transaction.
pub(crate) fn finish_together(
    ctx: &Context,
    journals: &[Journal<'_>],
    kind: &str,
    outcome: Outcome,
    change: impl FnOnce(&aps_store::Store) -> Result<(), Error>,
) -> Result<(), Error> {
    fault(&format!("after:{kind}"))?;
    fault("journal-write")?;
    let at = crate::now(ctx);
    ctx.store()?.atomically(|store| {
        change(store)?;
        for journal in journals {
            store
                .journal()
                .finish_operation(journal.op, outcome, None, at)?;
        }
        Ok::<(), Error>(())
    })
}

/// Passes fault point `point` (test builds only).
pub(crate) fn fault(point: &str) -> Result<(), Error> {
    aps_failpoint::hit(point).map_err(|e| Error::Failed(e.to_string()))
}
