//! The operation journal (D13): every step is written to the store with its undo before it acts.
//!
//! Main decision: an undo is plain data ([`Undo`]), serialised into the step's journal row, and
//! executed by one idempotent function ([`apply_undo`]). The same code therefore undoes a step
//! after a failure in the running process and after a crash, from `apsctl recover`.
//!
//! Known gap: after a crash between a successful `configure install` and the end of the install,
//! `recover` deletes files and databases without running `configure remove` first (the in-process
//! rollback does run it, REFERENCE §11 Q27).
use std::path::{Path, PathBuf};

pub use aps_store::journal::Outcome;
use aps_store::journal::{NewOperation, OperationId};
use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::error::Error;
use crate::report::Reporter;

/// How to take one step back. Every variant is safe to apply twice and when the step never ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "undo", rename_all = "kebab-case")]
pub enum Undo {
    /// The step changes nothing that needs undoing.
    Nothing,
    /// Remove a folder apsctl created (a staging folder, an instance's private folder).
    RemoveTree {
        /// The folder.
        path: PathBuf,
    },
    /// Remove `rel` (a file or a whole folder) inside a site's document root, through folder
    /// descriptors (links the site's user planted are removed, never followed).
    RemoveInSite {
        /// The site's document root.
        docroot: PathBuf,
        /// The entry, relative to the document root.
        rel: String,
    },
    /// Remove the listed entries of the folder `rel` (which existed before, empty) in a site.
    RemoveEntries {
        /// The site's document root.
        docroot: PathBuf,
        /// The folder, relative to the document root (empty for the document root itself).
        rel: String,
        /// Its entries apsctl moved in.
        entries: Vec<String>,
    },
    /// Drop a database and its login that apsctl created.
    DropDatabase {
        /// The registered server (`db-server add` name).
        server: String,
        /// The database.
        name: String,
        /// The login.
        login: String,
    },
    /// Give a folder of a site its previous permission bits back.
    RestoreMode {
        /// The site's document root.
        docroot: PathBuf,
        /// The folder, relative to the document root (empty for the document root itself).
        rel: String,
        /// The previous mode (permission bits).
        mode: u32,
    },
}

/// A running operation's journal.
#[derive(Debug)]
pub struct Journal<'c> {
    ctx: &'c Context,
    op: OperationId,
    /// (seq, undo) of every step recorded so far, in order.
    steps: Vec<(u32, Undo)>,
}

impl<'c> Journal<'c> {
    /// Starts an operation record. `params` must hold no secret and no installation-only value.
    pub fn begin(
        ctx: &'c Context,
        instance: Option<&str>,
        kind: &str,
        params: &serde_json::Value,
    ) -> Result<Self, Error> {
        let op = ctx.store.journal().begin_operation(&NewOperation {
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
            steps: Vec::new(),
        })
    }

    /// Continues an operation found in the journal (by `recover`).
    pub fn resume(ctx: &'c Context, op: OperationId) -> Self {
        Self {
            ctx,
            op,
            steps: Vec::new(),
        }
    }

    /// Runs one step: writes `undo` to the journal, acts, marks the step done.
    pub fn step<T>(
        &mut self,
        kind: &str,
        undo: Undo,
        act: impl FnOnce() -> Result<T, Error>,
    ) -> Result<T, Error> {
        let seq = self
            .ctx
            .store
            .journal()
            .record_step(self.op, kind, &to_json(&undo))?;
        self.steps.push((seq, undo));
        let value = act()?;
        self.ctx.store.journal().step_done(self.op, seq)?;
        self.failpoint(kind)?;
        Ok(value)
    }

    /// The fault point after step `kind` (test builds only, see `aps_failpoint`): `after:<kind>`.
    fn failpoint(&self, kind: &str) -> Result<(), Error> {
        aps_failpoint::hit(&format!("after:{kind}")).map_err(|e| Error::Failed(e.to_string()))
    }

    /// Replaces the undo of the last step with what the step learned while acting.
    pub fn refine_last(&mut self, undo: Undo) -> Result<(), Error> {
        if let Some((seq, last)) = self.steps.last_mut() {
            self.ctx
                .store
                .journal()
                .update_step_undo(self.op, *seq, &to_json(&undo))?;
            *last = undo;
        }
        Ok(())
    }

    /// Undoes every recorded step in reverse, records the outcome and returns `error` with a
    /// note on anything that could not be undone.
    pub fn rollback(self, reporter: &dyn Reporter, error: Error) -> Error {
        let mut leftovers = Vec::new();
        for (seq, undo) in self.steps.iter().rev() {
            match apply_undo(self.ctx, undo) {
                Ok(()) => {
                    let _ = self.ctx.store.journal().step_undone(self.op, *seq);
                }
                Err(e) => {
                    reporter.warn(&format!("could not undo a step: {e}"));
                    leftovers.push(e.to_string());
                }
            }
        }
        let outcome = if leftovers.is_empty() {
            Outcome::RolledBack
        } else {
            Outcome::Failed
        };
        let _ = self.ctx.store.journal().finish_operation(
            self.op,
            outcome,
            Some(&error.to_string()),
            crate::now(self.ctx),
        );
        if leftovers.is_empty() {
            error
        } else {
            Error::Failed(format!(
                "{error}\nThe rollback left work for an administrator (run `apsctl recover` to retry):\n  {}",
                leftovers.join("\n  ")
            ))
        }
    }

    /// Makes the operation's final store change and records its `outcome` in one store
    /// transaction (REFERENCE §8.0 step 4): either both happen or neither. `kind` names this
    /// commit for the test hooks, which fire just before the transaction (a failure after it
    /// would find nothing left to undo).
    pub fn finish_with(
        &self,
        kind: &str,
        outcome: Outcome,
        change: impl FnOnce(&aps_store::Store) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.failpoint(kind)?;
        let at = crate::now(self.ctx);
        self.ctx.store.atomically(|store| {
            change(store)?;
            store
                .journal()
                .finish_operation(self.op, outcome, None, at)?;
            Ok::<(), Error>(())
        })
    }

    /// Records that the operation went past its commit point and completed what was left.
    pub fn rolled_forward(self, note: Option<&str>) -> Result<(), Error> {
        self.ctx.store.journal().finish_operation(
            self.op,
            Outcome::RolledForward,
            note,
            crate::now(self.ctx),
        )?;
        Ok(())
    }
}

fn to_json(undo: &Undo) -> String {
    serde_json::to_string(undo).unwrap_or_else(|_| "{\"undo\":\"nothing\"}".into())
}

/// Parses an undo written by [`Journal::step`].
pub fn parse_undo(json: &str) -> Result<Undo, Error> {
    serde_json::from_str(json)
        .map_err(|e| Error::Failed(format!("unreadable journal entry `{json}`: {e}")))
}

/// Applies one undo. Idempotent: what is already gone is not an error.
pub fn apply_undo(ctx: &Context, undo: &Undo) -> Result<(), Error> {
    match undo {
        Undo::Nothing => Ok(()),
        Undo::RemoveTree { path } => remove_tree(path),
        Undo::RemoveInSite { docroot, rel } => {
            let place = crate::deploy::Place {
                docroot,
                prefix: rel,
            };
            let (parent, name) = match rel.rsplit_once('/') {
                Some((parent, name)) => (parent, name),
                None => ("", rel.as_str()),
            };
            match (crate::deploy::Place {
                docroot,
                prefix: parent,
            })
            .open_root()
            {
                Ok(dir) => dir.remove_tree(name).map_err(crate::deploy::fs_error),
                Err(_) if !place.root().exists() => Ok(()),
                Err(e) => Err(e),
            }
        }
        Undo::RemoveEntries {
            docroot,
            rel,
            entries,
        } => {
            let place = crate::deploy::Place {
                docroot,
                prefix: rel,
            };
            let dir = match place.open_root() {
                Ok(dir) => dir,
                Err(_) if !place.root().exists() => return Ok(()),
                Err(e) => return Err(e),
            };
            for entry in entries {
                dir.remove_tree(entry).map_err(crate::deploy::fs_error)?;
            }
            Ok(())
        }
        Undo::DropDatabase {
            server,
            name,
            login,
        } => {
            let server = crate::server::connect(ctx, server)?;
            crate::server::drop_database_and_login(server.as_ref(), name, login)
        }
        Undo::RestoreMode { docroot, rel, mode } => {
            let place = crate::deploy::Place {
                docroot,
                prefix: rel,
            };
            match place.open_root() {
                Ok(dir) => dir.set_mode(*mode).map_err(crate::deploy::fs_error),
                Err(_) if !place.root().exists() => Ok(()),
                Err(e) => Err(e),
            }
        }
    }
}

/// Removes a file or a folder tree without following symbolic links; absent is fine.
pub(crate) fn remove_tree(path: &Path) -> Result<(), Error> {
    match fs_err::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
        Ok(meta) if meta.is_dir() => Ok(fs_err::remove_dir_all(path)?),
        Ok(_) => Ok(fs_err::remove_file(path)?),
    }
}
