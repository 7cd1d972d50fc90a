//! Operations as jobs: an operation that changes an instance runs on the blocking pool while the
//! request answers `202 {"operation": OPID}`; its steps, warnings and progress (what the
//! operation tells its [`aps_ops::Reporter`]) and then its result or error are what
//! `GET /v1/operations/OPID` answers.
//!
//! Main decisions: a job is recorded in the store when it starts and gets its outcome there when
//! it ends (`aps_ops::jobs`), so a restarted service, the CLI's home and the audit trail keep it;
//! its live progress is in this service's memory only (a table of the running jobs), so an
//! operation copying thousands of files never writes the store for each. A job leaves the table
//! only after its outcome is in the store, so a reader always finds it in one of the two. The
//! operation itself is journaled as everywhere (so `recover` and the CLI see it).
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use serde_json::Value;

use super::App;

/// Most step lines kept per job.
const STEPS_KEPT: usize = 500;

/// What a job did so far (API.md `progress`).
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct JobProgress {
    /// The steps the operation announced, in order (the last ones when there are many).
    pub steps: Vec<String>,
    /// Its warnings.
    pub warnings: Vec<String>,
    /// The phase of its current long step (`files`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Files done in that phase.
    pub files: u64,
    /// Bytes done in that phase.
    pub bytes: u64,
    /// Bytes in all in that phase, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<u64>,
}

/// A running job's live state.
#[derive(Debug, Clone)]
struct Live {
    kind: String,
    instance: Option<String>,
    started_at: i64,
    progress: JobProgress,
}

/// The running jobs of this service.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    table: Mutex<BTreeMap<String, Live>>,
    running: AtomicUsize,
    idle: tokio::sync::Notify,
}

impl Jobs {
    /// Job `id` while it runs in this service, as API.md's operation object.
    pub fn running(&self, id: &str) -> Option<aps_ops::jobs::JobView> {
        let live = self.lock().get(id).cloned()?;
        Some(aps_ops::jobs::JobView {
            operation: id.to_owned(),
            kind: live.kind,
            instance: live.instance,
            state: "running",
            progress: serde_json::to_value(&live.progress).unwrap_or(Value::Null),
            result: None,
            error: None,
            started_at: live.started_at,
            ended_at: None,
        })
    }

    /// How many jobs run now.
    pub fn count(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Live>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, id: &str, change: impl FnOnce(&mut JobProgress)) {
        if let Some(live) = self.lock().get_mut(id) {
            change(&mut live.progress);
        }
    }

    /// Waits until no job runs.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Gives every job still running the error body `body` as its outcome (the service stops
/// without waiting for them); returns how many.
pub(crate) fn abandon(app: &App, body: &Value) -> usize {
    let running: Vec<(String, Value)> = app
        .jobs
        .lock()
        .iter()
        .map(|(id, live)| {
            (
                id.clone(),
                serde_json::to_value(&live.progress).unwrap_or(Value::Null),
            )
        })
        .collect();
    for (id, progress) in &running {
        let end = aps_ops::jobs::JobEnd::Failed(body);
        if let Err(e) = aps_ops::jobs::finish(&app.ctx, id, &end, progress, None) {
            tracing::error!(operation = %id, error = %aps_ops::error::chain(&e), "cannot record the operation's outcome");
        }
    }
    running.len()
}

/// What a job's work gives back: its `--json` object, or the operation's error.
pub(crate) type Outcome = Result<Value, aps_ops::Error>;

/// Starts `work` as job `kind` on `instance`: records it in the store, runs it on the blocking
/// pool and answers its id at once (or the error of recording it).
pub(crate) async fn spawn(
    app: &Arc<App>,
    kind: &str,
    instance: Option<String>,
    work: impl FnOnce(&aps_ops::Context, &dyn aps_ops::Reporter) -> Outcome + Send + 'static,
) -> Result<String, super::api::ApiError> {
    let started = {
        let app = Arc::clone(app);
        let kind = kind.to_owned();
        let instance = instance.clone();
        tokio::task::spawn_blocking(move || {
            aps_ops::jobs::start(&app.ctx, &kind, instance.as_deref())
        })
        .await
        .map_err(super::api::ApiError::internal)??
    };
    let id = started;
    app.jobs.lock().insert(
        id.clone(),
        Live {
            kind: kind.to_owned(),
            instance,
            started_at: millis(app.ctx.env.now()),
            progress: JobProgress::default(),
        },
    );
    app.jobs.running.fetch_add(1, Ordering::SeqCst);
    tracing::info!(operation = %id, kind, "operation started");
    let app = Arc::clone(app);
    let job = id.clone();
    tokio::task::spawn_blocking(move || {
        let reporter = JobReporter {
            app: &app,
            id: &job,
        };
        let outcome = work(&app.ctx, &reporter);
        record_outcome(&app, &job, &outcome);
        app.jobs.lock().remove(&job);
        app.jobs.running.fetch_sub(1, Ordering::SeqCst);
        app.jobs.idle.notify_waiters();
    });
    Ok(id)
}

/// Writes the outcome of job `id` into the store (and the log).
fn record_outcome(app: &App, id: &str, outcome: &Outcome) {
    let progress = app.jobs.lock().get(id).map_or(Value::Null, |live| {
        serde_json::to_value(&live.progress).unwrap_or(Value::Null)
    });
    let recorded = match outcome {
        Ok(result) => {
            tracing::info!(operation = %id, "operation succeeded");
            let instance = result.get("instance").and_then(Value::as_str);
            let end = aps_ops::jobs::JobEnd::Succeeded(result);
            aps_ops::jobs::finish(&app.ctx, id, &end, &progress, instance)
        }
        Err(e) => {
            let body = super::api::error_body(e);
            tracing::warn!(operation = %id, error = %body["error"]["message"], "operation failed");
            let end = aps_ops::jobs::JobEnd::Failed(&body);
            aps_ops::jobs::finish(&app.ctx, id, &end, &progress, None)
        }
    };
    if let Err(e) = recorded {
        tracing::error!(operation = %id, error = %aps_ops::error::chain(&e), "cannot record the operation's outcome");
    }
}

fn millis(at: std::time::SystemTime) -> i64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// What a job's operation reports goes into its progress.
struct JobReporter<'a> {
    app: &'a App,
    id: &'a str,
}

impl aps_ops::Reporter for JobReporter<'_> {
    fn progress(&self, progress: &aps_ops::report::Progress<'_>) {
        self.app.jobs.update(self.id, |p| {
            if p.phase.as_deref() != Some(progress.phase) {
                p.phase = Some(progress.phase.to_owned());
            }
            p.files = progress.files;
            p.bytes = progress.bytes;
            p.total_bytes = progress.total_bytes;
        });
    }

    fn step(&self, message: &str) {
        self.app.jobs.update(self.id, |p| {
            if p.steps.len() == STEPS_KEPT {
                p.steps.remove(0);
            }
            p.steps.push(message.to_owned());
        });
    }

    fn warn(&self, message: &str) {
        self.app.jobs.update(self.id, |p| {
            p.warnings.push(message.to_owned());
        });
    }

    fn ask_file_choice(&self, _kept_preview: &str) -> Option<aps_ops::report::FileChoice> {
        None
    }

    fn can_ask(&self) -> bool {
        false
    }
}
