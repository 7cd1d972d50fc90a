//! Operations as jobs: an operation that changes an instance runs on the blocking pool while the
//! request answers `202 {"operation": OPID}`; its steps, warnings and progress (what the
//! operation tells its [`aps_ops::Reporter`]) and then its result or error are kept for
//! `GET /v1/operations/OPID`.
//!
//! Main decision: one [`Jobs`] table in memory, the service's; the operation itself is journaled
//! in the store as everywhere (so `recover` and the CLI see it). Known gap: the table is not
//! persisted, so a restarted service answers 404 for the jobs of the one before.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
}

/// One job (API.md: the operation object).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Job {
    /// Its id.
    pub operation: String,
    /// `install`, `configure`, `remove`, …
    pub kind: String,
    /// The instance, when known.
    pub instance: Option<String>,
    /// `running`, `succeeded` or `failed`.
    pub state: &'static str,
    /// Steps and progress.
    pub progress: JobProgress,
    /// The CLI command's `--json` object, once it succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The error body, once it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

/// The jobs of this service.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    next: AtomicU64,
    table: Mutex<BTreeMap<u64, Job>>,
    running: AtomicUsize,
    idle: tokio::sync::Notify,
}

impl Jobs {
    /// The job `id`, if this service ran it.
    pub fn get(&self, id: &str) -> Option<Job> {
        let id: u64 = id.parse().ok()?;
        self.lock().get(&id).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Job>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, id: u64, change: impl FnOnce(&mut Job)) {
        if let Some(job) = self.lock().get_mut(&id) {
            change(job);
        }
    }

    /// Waits until no job runs.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.running.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Starts `work` as job `kind` on `instance`; returns its id at once.
pub(crate) fn spawn(
    app: &Arc<App>,
    kind: &str,
    instance: Option<String>,
    work: impl FnOnce(&aps_ops::Context, &dyn aps_ops::Reporter) -> Result<Value, aps_ops::Error>
    + Send
    + 'static,
) -> String {
    let id = app.jobs.next.fetch_add(1, Ordering::SeqCst) + 1;
    app.jobs.lock().insert(
        id,
        Job {
            operation: id.to_string(),
            kind: kind.to_owned(),
            instance,
            state: "running",
            progress: JobProgress::default(),
            result: None,
            error: None,
        },
    );
    app.jobs.running.fetch_add(1, Ordering::SeqCst);
    let app = Arc::clone(app);
    tokio::task::spawn_blocking(move || {
        let reporter = JobReporter { app: &app, id };
        let outcome = work(&app.ctx, &reporter);
        app.jobs.update(id, |job| match outcome {
            Ok(result) => {
                job.state = "succeeded";
                job.result = Some(result);
            }
            Err(e) => {
                job.state = "failed";
                job.error = Some(super::api::error_body(&e));
            }
        });
        app.jobs.running.fetch_sub(1, Ordering::SeqCst);
        app.jobs.idle.notify_waiters();
    });
    id.to_string()
}

/// What a job's operation reports goes into its progress.
struct JobReporter<'a> {
    app: &'a App,
    id: u64,
}

impl aps_ops::Reporter for JobReporter<'_> {
    fn progress(&self, progress: &aps_ops::report::Progress<'_>) {
        self.app.jobs.update(self.id, |job| {
            job.progress.phase = Some(progress.phase.to_owned());
            job.progress.files = progress.files;
            job.progress.bytes = progress.bytes;
        });
    }

    fn step(&self, message: &str) {
        self.app.jobs.update(self.id, |job| {
            if job.progress.steps.len() == STEPS_KEPT {
                job.progress.steps.remove(0);
            }
            job.progress.steps.push(message.to_owned());
        });
    }

    fn warn(&self, message: &str) {
        self.app.jobs.update(self.id, |job| {
            job.progress.warnings.push(message.to_owned());
        });
    }

    fn ask_file_choice(&self, _kept_preview: &str) -> Option<aps_ops::report::FileChoice> {
        None
    }

    fn can_ask(&self) -> bool {
        false
    }
}
