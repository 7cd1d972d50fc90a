//! The operation journal (REFERENCE §8.0, §8.12, D13): one record per operation and, before each
//! step acts, the step with its undo data, so that `recover` can roll an interrupted operation
//! back or forward.
//!
//! Main decision: every journal call is its own committed transaction and is durable when it
//! returns (WAL with `synchronous = FULL`, see the crate doc), so a step is on disk before the
//! caller acts on it. The only exception is a call made inside [`Store::atomically`], which is
//! durable at that transaction's commit. Operation and step kinds, parameters and undo data are
//! the caller's (opaque text here); the caller keeps secrets and installation-only values out.
//!
//! A step row records one change the operation makes to the system (the caller's vocabulary, as
//! JSON). Life cycle: `started` (written before acting: the change may have happened partly or
//! not at all) → `done` (the act completed) or `failed` (the act reported failure; it may have
//! left part of its work) → `undone` (after its undo ran); a `started` or `failed` row may go
//! straight to `undone`. An operation may pass its commit point ([`Journal::commit_point`]): after
//! it, an interruption is completed, not undone. A finished operation (one with an outcome) is
//! frozen.
//!
//! Known gap: records are never pruned; the journal grows by a few rows per operation.

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::{Failure, Object, Repr, StoreError};
use crate::sql::{enum_at, opt_enum_at, text_enum};
use crate::{Store, Timestamp};

text_enum! {
    /// How an operation ended.
    pub enum Outcome in "operations.outcome" {
        /// It succeeded.
        Done = "done",
        /// It failed and its completed steps were undone.
        RolledBack = "rolled_back",
        /// It was interrupted after its commit point and `recover` completed it.
        RolledForward = "rolled_forward",
        /// It could not be made consistent; manual action is needed.
        Failed = "failed",
    }
}

text_enum! {
    /// Where a journal step is in its life cycle.
    pub enum StepState in "operation_steps.state" {
        /// Recorded with its undo data; the step may have acted partly or not at all.
        Started = "started",
        /// The step finished acting.
        Done = "done",
        /// The step's act reported failure (it may have done part of its work).
        Failed = "failed",
        /// The step's undo ran.
        Undone = "undone",
    }
}

/// The id of a journaled operation (assigned by the store, increasing).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct OperationId(pub i64);

impl std::fmt::Display for OperationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// An operation to journal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewOperation {
    /// The instance it works on (`None` for operations on no instance).
    pub instance: Option<String>,
    /// What operation it is (`install`, `configure`, `remove`, …; defined by the caller).
    pub kind: String,
    /// Its parameters as JSON, without secrets or installation-only values.
    pub params_json: String,
    /// When it started.
    pub started_at: Timestamp,
    /// The process running it (for display only: the instance lock is the real guard).
    pub pid: u32,
    /// The host running it (for display only).
    pub host: String,
}

/// A journaled operation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Operation {
    /// Its id.
    pub id: OperationId,
    /// The instance it works on.
    pub instance: Option<String>,
    /// What operation it is.
    pub kind: String,
    /// Its parameters as JSON.
    pub params_json: String,
    /// When it started.
    pub started_at: Timestamp,
    /// The process that ran it.
    pub pid: u32,
    /// The host that ran it.
    pub host: String,
    /// How it ended; `None` while running or after a crash.
    pub outcome: Option<Outcome>,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
    /// The error that ended it, if any (already redacted by the caller).
    pub error: Option<String>,
    /// When it passed its commit point (after which it is completed rather than undone).
    pub committed_at: Option<Timestamp>,
}

/// A journaled step of an operation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Step {
    /// The operation it belongs to.
    pub op: OperationId,
    /// Its position in the operation (from 1); undo goes in reverse.
    pub seq: u32,
    /// What step it is (defined by the caller).
    pub kind: String,
    /// What undoing it needs, as JSON (defined by the caller).
    pub undo_json: String,
    /// Where it is in its life cycle.
    pub state: StepState,
}

/// The journal's queries; from [`Store::journal`].
#[derive(Debug, Clone, Copy)]
pub struct Journal<'s> {
    store: &'s Store,
}

const OPERATION_COLUMNS: &str = "id, instance, kind, params_json, started_at, pid, host, outcome, \
     finished_at, error, committed_at";

impl<'s> Journal<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Self { store }
    }

    /// Journals the start of an operation and returns its id.
    pub fn begin_operation(&self, operation: &NewOperation) -> Result<OperationId, StoreError> {
        let action = format!("journal the start of operation `{}`", operation.kind);
        self.store.write(&action, |c| {
            c.execute(
                "INSERT INTO operations (instance, kind, params_json, started_at, pid, host) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    operation.instance,
                    operation.kind,
                    operation.params_json,
                    operation.started_at.unix_millis(),
                    operation.pid,
                    operation.host,
                ],
            )?;
            Ok(OperationId(c.last_insert_rowid()))
        })
    }

    /// Journals a step, in state `started`, BEFORE it acts; returns its `seq`.
    ///
    /// [`StoreErrorKind::Conflict`](crate::StoreErrorKind::Conflict) if the operation is finished.
    pub fn record_step(
        &self,
        op: OperationId,
        kind: &str,
        undo_json: &str,
    ) -> Result<u32, StoreError> {
        let action = format!("journal step `{kind}` of operation {op}");
        self.store.write(&action, |c| {
            require_running(c, op)?;
            let seq: u32 = c.query_row(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM operation_steps WHERE op = ?1",
                [op.0],
                |row| row.get(0),
            )?;
            c.execute(
                "INSERT INTO operation_steps (op, seq, kind, undo_json, state) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![op.0, seq, kind, undo_json, StepState::Started.as_str()],
            )?;
            Ok(seq)
        })
    }

    /// Marks a `started` step `done` (after it acted).
    pub fn step_done(&self, op: OperationId, seq: u32) -> Result<(), StoreError> {
        self.change_step(op, seq, &[StepState::Started], "be marked done", |c| {
            set_step_state(c, op, seq, StepState::Done)
        })
    }

    /// Marks a `started` step `failed` (its act reported failure).
    pub fn step_failed(&self, op: OperationId, seq: u32) -> Result<(), StoreError> {
        self.change_step(op, seq, &[StepState::Started], "be marked failed", |c| {
            set_step_state(c, op, seq, StepState::Failed)
        })
    }

    /// Marks a `started`, `done` or `failed` step `undone` (after its undo ran).
    pub fn step_undone(&self, op: OperationId, seq: u32) -> Result<(), StoreError> {
        self.change_step(
            op,
            seq,
            &[StepState::Started, StepState::Done, StepState::Failed],
            "be marked undone",
            |c| set_step_state(c, op, seq, StepState::Undone),
        )
    }

    /// Records that the running operation `op` passed its commit point: from now on an
    /// interruption is completed (rolled forward), not undone. Idempotent.
    pub fn commit_point(&self, op: OperationId, at: Timestamp) -> Result<(), StoreError> {
        let action = format!("journal the commit point of operation {op}");
        self.store.write(&action, |c| {
            require_running(c, op)?;
            c.execute(
                "UPDATE operations SET committed_at = COALESCE(committed_at, ?2) WHERE id = ?1",
                params![op.0, at.unix_millis()],
            )?;
            Ok(())
        })
    }

    /// The newest operation of `kind` on `instance`, finished or not.
    pub fn latest_operation(
        &self,
        instance: &str,
        kind: &str,
    ) -> Result<Option<Operation>, StoreError> {
        let action = format!("look up the latest `{kind}` of instance `{instance}`");
        self.store.read(&action, |c| {
            Ok(c.query_row(
                &format!(
                    "SELECT {OPERATION_COLUMNS} FROM operations WHERE instance = ?1 AND kind = ?2 \
                     ORDER BY id DESC LIMIT 1"
                ),
                params![instance, kind],
                operation_from_row,
            )
            .optional()?)
        })
    }

    /// The newest `limit` operations on `instance`, newest first (its audit trail).
    pub fn operations_of(&self, instance: &str, limit: u32) -> Result<Vec<Operation>, StoreError> {
        let action = format!("list the operations of instance `{instance}`");
        self.store.read(&action, |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {OPERATION_COLUMNS} FROM operations WHERE instance = ?1 \
                 ORDER BY id DESC LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![instance, limit], operation_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Replaces the undo data of a `started` or `done` step (a step may learn what it must undo
    /// only while acting, e.g. the files it created).
    pub fn update_step_undo(
        &self,
        op: OperationId,
        seq: u32,
        undo_json: &str,
    ) -> Result<(), StoreError> {
        self.change_step(
            op,
            seq,
            &[StepState::Started, StepState::Done],
            "change its undo data",
            |c| {
                c.execute(
                    "UPDATE operation_steps SET undo_json = ?3 WHERE op = ?1 AND seq = ?2",
                    params![op.0, seq, undo_json],
                )?;
                Ok(())
            },
        )
    }

    /// Records how the operation ended; it is frozen afterwards.
    ///
    /// [`StoreErrorKind::Conflict`](crate::StoreErrorKind::Conflict) if it already has an outcome.
    pub fn finish_operation(
        &self,
        op: OperationId,
        outcome: Outcome,
        error: Option<&str>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let action = format!("journal the end of operation {op}");
        self.store.write(&action, |c| {
            require_running(c, op)?;
            c.execute(
                "UPDATE operations SET outcome = ?2, error = ?3, finished_at = ?4 WHERE id = ?1",
                params![op.0, outcome.as_str(), error, at.unix_millis()],
            )?;
            Ok(())
        })
    }

    /// The operation `op`; [`StoreErrorKind::NotFound`](crate::StoreErrorKind::NotFound) if absent.
    pub fn operation(&self, op: OperationId) -> Result<Operation, StoreError> {
        let action = format!("read operation {op}");
        self.store.read(&action, |c| {
            c.query_row(
                &format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE id = ?1"),
                [op.0],
                operation_from_row,
            )
            .optional()?
            .ok_or_else(|| StoreError::not_found(Object::Operation(op.0)).into())
        })
    }

    /// Every operation without an outcome (running, or interrupted by a crash), oldest first.
    pub fn unfinished_operations(&self) -> Result<Vec<Operation>, StoreError> {
        self.store.read("list unfinished operations", |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {OPERATION_COLUMNS} FROM operations WHERE outcome IS NULL ORDER BY id"
            ))?;
            let rows = stmt.query_map([], operation_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// The steps of operation `op` in order; `NotFound` if the operation is absent.
    pub fn steps(&self, op: OperationId) -> Result<Vec<Step>, StoreError> {
        let action = format!("read the steps of operation {op}");
        self.store.read(&action, |c| {
            outcome_of(c, op)?;
            let mut stmt = c.prepare(
                "SELECT op, seq, kind, undo_json, state FROM operation_steps WHERE op = ?1 \
                 ORDER BY seq",
            )?;
            let rows = stmt.query_map([op.0], |row| {
                Ok(Step {
                    op: OperationId(row.get(0)?),
                    seq: row.get(1)?,
                    kind: row.get(2)?,
                    undo_json: row.get(3)?,
                    state: enum_at(row, 4)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Applies `change` to step `seq` of the running operation `op` if its state is in `from`.
    fn change_step(
        self,
        op: OperationId,
        seq: u32,
        from: &[StepState],
        change: &'static str,
        apply: impl FnOnce(&Connection) -> Result<(), Failure>,
    ) -> Result<(), StoreError> {
        let action = format!("journal step {seq} of operation {op}");
        self.store.write(&action, |c| {
            require_running(c, op)?;
            let state: StepState = c
                .query_row(
                    "SELECT state FROM operation_steps WHERE op = ?1 AND seq = ?2",
                    params![op.0, seq],
                    |row| enum_at(row, 0),
                )
                .optional()?
                .ok_or_else(|| StoreError::not_found(Object::Step { op: op.0, seq }))?;
            if !from.contains(&state) {
                return Err(Repr::StepState {
                    op: op.0,
                    seq,
                    found: state.as_str(),
                    change,
                }
                .into());
            }
            apply(c)
        })
    }
}

/// The outcome of operation `op`; `NotFound` if it does not exist.
fn outcome_of(c: &Connection, op: OperationId) -> Result<Option<Outcome>, Failure> {
    c.query_row(
        "SELECT outcome FROM operations WHERE id = ?1",
        [op.0],
        |row| opt_enum_at(row, 0),
    )
    .optional()?
    .ok_or_else(|| StoreError::not_found(Object::Operation(op.0)).into())
}

/// Fails unless operation `op` exists and has no outcome yet.
fn require_running(c: &Connection, op: OperationId) -> Result<(), Failure> {
    match outcome_of(c, op)? {
        None => Ok(()),
        Some(outcome) => Err(Repr::OperationFinished {
            op: op.0,
            outcome: outcome.as_str(),
        }
        .into()),
    }
}

fn set_step_state(
    c: &Connection,
    op: OperationId,
    seq: u32,
    state: StepState,
) -> Result<(), Failure> {
    c.execute(
        "UPDATE operation_steps SET state = ?3 WHERE op = ?1 AND seq = ?2",
        params![op.0, seq, state.as_str()],
    )?;
    Ok(())
}

fn operation_from_row(row: &Row<'_>) -> rusqlite::Result<Operation> {
    Ok(Operation {
        id: OperationId(row.get(0)?),
        instance: row.get(1)?,
        kind: row.get(2)?,
        params_json: row.get(3)?,
        started_at: Timestamp::from_unix_millis(row.get(4)?),
        pid: row.get(5)?,
        host: row.get(6)?,
        outcome: opt_enum_at(row, 7)?,
        finished_at: row
            .get::<_, Option<i64>>(8)?
            .map(Timestamp::from_unix_millis),
        error: row.get(9)?,
        committed_at: row
            .get::<_, Option<i64>>(10)?
            .map(Timestamp::from_unix_millis),
    })
}
