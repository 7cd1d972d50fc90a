//! The HTTP service's operations ("jobs"): what a control panel polls at
//! `GET /v1/operations/{id}`, kept after the service that ran them stopped.
//!
//! Main decisions: a job is recorded `running` when it starts and gets its outcome (state,
//! final progress, result or error) in one write when it ends; live progress stays in the
//! service's memory, so a busy operation does not write the store for every file. A service that
//! starts marks the `running` jobs of one that died as `failed` ([`Jobs::abandon_running`]), so no
//! job stays without an outcome. The JSON documents are opaque here: the service writes them with
//! secrets already masked. Ids are never reused (`AUTOINCREMENT`).

use rusqlite::{OptionalExtension as _, params};

use crate::error::StoreError;
use crate::{Store, Timestamp};

/// A job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Still running.
    Running,
    /// Ended with a result.
    Succeeded,
    /// Ended with an error.
    Failed,
}

impl JobState {
    /// `running`, `succeeded` or `failed` (API.md).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            _ => Self::Running,
        }
    }
}

/// One job as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// Its id.
    pub id: i64,
    /// `install`, `configure`, `remove`, …
    pub kind: String,
    /// The instance, when known.
    pub instance: Option<String>,
    /// Its state.
    pub state: JobState,
    /// The progress document (JSON).
    pub progress: String,
    /// The result document (JSON), once succeeded.
    pub result: Option<String>,
    /// The error document (JSON), once failed.
    pub error: Option<String>,
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended.
    pub ended_at: Option<Timestamp>,
}

/// How a job ended.
#[derive(Debug, Clone)]
pub struct JobOutcome<'a> {
    /// `Succeeded` or `Failed`.
    pub state: JobState,
    /// The final progress document.
    pub progress: &'a str,
    /// The result document.
    pub result: Option<&'a str>,
    /// The error document.
    pub error: Option<&'a str>,
    /// The instance the job made, for a job that started without one (an install, a restore
    /// into a new instance); a job that has one keeps it.
    pub instance: Option<&'a str>,
}

/// The job queries; from [`Store::jobs`].
#[derive(Debug, Clone, Copy)]
pub struct Jobs<'s> {
    store: &'s Store,
}

const COLUMNS: &str = "id, kind, instance, state, progress, result, error, started_at, ended_at";

fn record(row: &rusqlite::Row<'_>) -> rusqlite::Result<JobRecord> {
    Ok(JobRecord {
        id: row.get(0)?,
        kind: row.get(1)?,
        instance: row.get(2)?,
        state: JobState::parse(&row.get::<_, String>(3)?),
        progress: row.get(4)?,
        result: row.get(5)?,
        error: row.get(6)?,
        started_at: Timestamp::from_unix_millis(row.get(7)?),
        ended_at: row
            .get::<_, Option<i64>>(8)?
            .map(Timestamp::from_unix_millis),
    })
}

impl<'s> Jobs<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Self { store }
    }

    /// Records a new `running` job; returns its id.
    pub fn start(
        &self,
        kind: &str,
        instance: Option<&str>,
        progress: &str,
        at: Timestamp,
    ) -> Result<i64, StoreError> {
        self.store.write("record a new service operation", |c| {
            c.prepare_cached(
                "INSERT INTO jobs (kind, instance, state, progress, started_at) \
                 VALUES (?1, ?2, 'running', ?3, ?4)",
            )?
            .execute(params![kind, instance, progress, at.unix_millis()])?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Records how job `id` ended; a job that already has an outcome keeps it.
    pub fn finish(
        &self,
        id: i64,
        outcome: &JobOutcome<'_>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let action = format!("record the outcome of service operation {id}");
        self.store.write(&action, |c| {
            c.prepare_cached(
                "UPDATE jobs SET state = ?2, progress = ?3, result = ?4, error = ?5, \
                 instance = coalesce(instance, ?6), ended_at = ?7 \
                 WHERE id = ?1 AND state = 'running'",
            )?
            .execute(params![
                id,
                outcome.state.as_str(),
                outcome.progress,
                outcome.result,
                outcome.error,
                outcome.instance,
                at.unix_millis()
            ])?;
            Ok(())
        })
    }

    /// Job `id`, if recorded.
    pub fn get(&self, id: i64) -> Result<Option<JobRecord>, StoreError> {
        let action = format!("read service operation {id}");
        self.store.read(&action, |c| {
            Ok(
                c.prepare_cached(&format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"))?
                    .query_row([id], record)
                    .optional()?,
            )
        })
    }

    /// The newest `limit` jobs of `instance`, newest first.
    pub fn of_instance(&self, instance: &str, limit: u32) -> Result<Vec<JobRecord>, StoreError> {
        let action = format!("list the service operations of instance `{instance}`");
        self.store.read(&action, |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM jobs WHERE instance = ?1 ORDER BY id DESC LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![instance, limit], record)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// The newest `limit` jobs, newest first.
    pub fn recent(&self, limit: u32) -> Result<Vec<JobRecord>, StoreError> {
        self.store.read("list the service operations", |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM jobs ORDER BY id DESC LIMIT ?1"
            ))?;
            let rows = stmt.query_map([limit], record)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Marks every `running` job as `failed` with `error` (a service that died left them);
    /// returns how many.
    pub fn abandon_running(&self, error: &str, at: Timestamp) -> Result<usize, StoreError> {
        self.store
            .write("close the operations of a stopped service", |c| {
                Ok(c.prepare_cached(
                    "UPDATE jobs SET state = 'failed', error = ?1, ended_at = ?2 \
                 WHERE state = 'running'",
                )?
                .execute(params![error, at.unix_millis()])?)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store.sqlite3")).unwrap();
        (dir, store)
    }

    #[test]
    fn a_job_starts_running_and_keeps_its_outcome() {
        let (_dir, store) = store();
        let jobs = store.jobs();
        let id = jobs
            .start("install", None, "{}", Timestamp::from_unix_millis(1))
            .unwrap();
        let started = jobs.get(id).unwrap().unwrap();
        assert_eq!(started.state, JobState::Running);
        assert_eq!(started.ended_at, None);
        jobs.finish(
            id,
            &JobOutcome {
                state: JobState::Succeeded,
                progress: r#"{"steps":["a"]}"#,
                result: Some(r#"{"id":"i-1"}"#),
                error: None,
                instance: Some("i-1"),
            },
            Timestamp::from_unix_millis(2),
        )
        .unwrap();
        let ended = jobs.get(id).unwrap().unwrap();
        assert_eq!(ended.state, JobState::Succeeded);
        assert_eq!(ended.instance.as_deref(), Some("i-1"));
        assert_eq!(ended.result.as_deref(), Some(r#"{"id":"i-1"}"#));
        assert_eq!(ended.ended_at, Some(Timestamp::from_unix_millis(2)));
        // A later outcome (a stopping service's) does not replace the first.
        jobs.finish(
            id,
            &JobOutcome {
                state: JobState::Failed,
                progress: "{}",
                result: None,
                error: Some("{}"),
                instance: None,
            },
            Timestamp::from_unix_millis(3),
        )
        .unwrap();
        assert_eq!(jobs.get(id).unwrap().unwrap(), ended);
        assert_eq!(jobs.of_instance("i-1", 10).unwrap(), vec![ended.clone()]);
        assert_eq!(jobs.recent(10).unwrap(), vec![ended]);
        assert_eq!(jobs.get(id + 1).unwrap(), None);
    }

    #[test]
    fn running_jobs_of_a_dead_service_become_failed_and_ids_are_not_reused() {
        let (_dir, store) = store();
        let jobs = store.jobs();
        let a = jobs
            .start("backup", Some("i-1"), "{}", Timestamp::from_unix_millis(1))
            .unwrap();
        assert_eq!(
            jobs.abandon_running(r#"{"error":{}}"#, Timestamp::from_unix_millis(5))
                .unwrap(),
            1
        );
        let abandoned = jobs.get(a).unwrap().unwrap();
        assert_eq!(abandoned.state, JobState::Failed);
        assert_eq!(abandoned.error.as_deref(), Some(r#"{"error":{}}"#));
        assert_eq!(
            jobs.abandon_running("x", Timestamp::from_unix_millis(6))
                .unwrap(),
            0
        );
        let b = jobs
            .start("backup", Some("i-1"), "{}", Timestamp::from_unix_millis(7))
            .unwrap();
        assert!(b > a);
        let listed: Vec<i64> = jobs
            .of_instance("i-1", 10)
            .unwrap()
            .iter()
            .map(|j| j.id)
            .collect();
        assert_eq!(listed, vec![b, a], "newest first");
    }
}
