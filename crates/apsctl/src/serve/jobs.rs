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
    /// The outcome of an ended job the store did not take: state, result, error body.
    unrecorded: Option<(&'static str, Option<Value>, Option<Value>)>,
}

/// The running jobs of this service.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    table: Mutex<BTreeMap<String, Live>>,
    /// Set when the service stops: no job starts any more.
    closing: std::sync::atomic::AtomicBool,
    running: AtomicUsize,
    idle: tokio::sync::Notify,
}

impl Jobs {
    /// Job `id` while it runs in this service (or ended without the store taking its outcome),
    /// as API.md's operation object.
    pub fn running(&self, id: &str) -> Option<aps_ops::jobs::JobView> {
        let live = self.lock().get(id).cloned()?;
        let (state, result, error) = live.unrecorded.unwrap_or(("running", None, None));
        Some(aps_ops::jobs::JobView {
            operation: id.to_owned(),
            kind: live.kind,
            instance: live.instance,
            state,
            progress: serde_json::to_value(&live.progress).unwrap_or(Value::Null),
            result,
            error,
            started_at: live.started_at,
            ended_at: None,
        })
    }

    /// Whether a job of `kind` runs now.
    pub fn runs_kind(&self, kind: &str) -> bool {
        self.lock()
            .values()
            .any(|live| live.kind == kind && live.unrecorded.is_none())
    }

    /// Refuses every later job (the service is stopping).
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
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

/// Operation `opid`: live from this service, else as the store keeps it.
pub(crate) async fn find(
    app: &Arc<App>,
    opid: String,
) -> Result<aps_ops::jobs::JobView, aps_ops::Error> {
    if let Some(job) = app.jobs.running(&opid) {
        return Ok(job);
    }
    super::blocking(app, move |app| {
        aps_ops::jobs::get(&app.ctx, &opid)?
            .ok_or_else(|| aps_ops::Error::NotFound(format!("no operation `{opid}`")))
    })
    .await
}

/// How often a progress stream looks at its job.
const EVENTS_TICK: std::time::Duration = std::time::Duration::from_millis(250);

/// Operation `opid` as a stream of server-sent events: `progress` (the operation object) each
/// time it changed, then `end` with its outcome; a stopping service ends the stream with
/// `stopping` (the operation goes on: poll it, or stream it again, from the next service). An
/// unknown operation is a `404` before the stream starts.
pub(crate) async fn events(app: Arc<App>, opid: String) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    use axum::response::sse::{Event, KeepAlive, Sse};
    if let Err(e) = find(&app, opid.clone()).await {
        return super::api::ApiError::from(e).into_response();
    }
    let stream = futures_util::stream::unfold(
        (app, opid, None::<String>, false),
        |(app, opid, last, done)| async move {
            if done {
                return None;
            }
            loop {
                if app.jobs.closing.load(Ordering::SeqCst) {
                    let event = Event::default().event("stopping").data("{}");
                    return Some((
                        Ok::<_, std::convert::Infallible>(event),
                        (app, opid, last, true),
                    ));
                }
                let (name, text, ended) = match find(&app, opid.clone()).await {
                    Ok(job) => {
                        let ended = job.state != "running";
                        let text = serde_json::to_string(&job).unwrap_or_default();
                        (if ended { "end" } else { "progress" }, text, ended)
                    }
                    Err(e) => ("error", super::api::error_body(&e).to_string(), true),
                };
                if ended || last.as_deref() != Some(text.as_str()) {
                    let event = Event::default().event(name).data(&text);
                    return Some((Ok(event), (app, opid, Some(text), ended)));
                }
                tokio::time::sleep(EVENTS_TICK).await;
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Gives every job still running the error body `body` as its outcome (the service stops
/// without waiting for them); returns how many.
pub(crate) fn abandon(app: &App, body: &Value) -> usize {
    let running: Vec<(String, Value)> = app
        .jobs
        .lock()
        .iter()
        .filter(|(_, live)| live.unrecorded.is_none())
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
///
/// The recording and the start are one spawned task, so a client that goes away while the job is
/// being recorded cannot leave a recorded job that never runs.
pub(crate) async fn spawn(
    app: &Arc<App>,
    kind: &str,
    instance: Option<String>,
    work: impl FnOnce(&aps_ops::Context, &dyn aps_ops::Reporter) -> Outcome + Send + 'static,
) -> Result<String, aps_ops::Error> {
    let kind = kind.to_owned();
    super::blocking(app, move |app| start_blocking(app, &kind, instance, work)).await
}

/// [`spawn`] on the blocking pool: records the job, then runs it on a thread of its own pool.
fn start_blocking(
    app: &Arc<App>,
    kind: &str,
    instance: Option<String>,
    work: impl FnOnce(&aps_ops::Context, &dyn aps_ops::Reporter) -> Outcome + Send + 'static,
) -> Result<String, aps_ops::Error> {
    if app.jobs.closing.load(Ordering::SeqCst) {
        return Err(aps_ops::Error::Busy(
            "the service is stopping: start the operation again once it runs".into(),
        ));
    }
    let id = aps_ops::jobs::start(&app.ctx, kind, instance.as_deref())?;
    app.jobs.lock().insert(
        id.clone(),
        Live {
            kind: kind.to_owned(),
            instance,
            started_at: millis(app.ctx.env.now()),
            progress: JobProgress::default(),
            unrecorded: None,
        },
    );
    app.jobs.running.fetch_add(1, Ordering::SeqCst);
    tracing::info!(operation = %id, kind, "operation started");
    let app = Arc::clone(app);
    let job = id.clone();
    let handle = tokio::runtime::Handle::current();
    handle.spawn_blocking(move || {
        let reporter = JobReporter {
            app: &app,
            id: &job,
        };
        // A panic in an operation is a failed job, never one left `running`.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            work(&app.ctx, &reporter)
        }))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(aps_ops::Error::Failed(format!(
                "the operation stopped on an internal error ({what}); `apsctl recover` finishes or undoes it"
            )))
        });
        if record_outcome(&app, &job, &outcome) {
            app.jobs.lock().remove(&job);
        }
        app.jobs.running.fetch_sub(1, Ordering::SeqCst);
        app.jobs.idle.notify_waiters();
    });
    Ok(id)
}

/// Writes the outcome of job `id` into the store (and the log); `false` when the store refused
/// it: the job then keeps its outcome in this service's table, so it is never seen `running`.
fn record_outcome(app: &App, id: &str, outcome: &Outcome) -> bool {
    let progress = app.jobs.lock().get(id).map_or(Value::Null, |live| {
        serde_json::to_value(&live.progress).unwrap_or(Value::Null)
    });
    let recorded = match outcome {
        Ok(result) => {
            tracing::info!(operation = %id, "operation succeeded");
            let instance = result.get("instance").and_then(Value::as_str);
            let end = aps_ops::jobs::JobEnd::Succeeded(result);
            aps_ops::jobs::finish(&app.ctx, id, &end, &progress, instance)
                .map_err(|e| (e, ("succeeded", Some(result.clone()), None)))
        }
        Err(e) => {
            let body = super::api::error_body(e);
            tracing::warn!(operation = %id, error = %body["error"]["message"], "operation failed");
            let end = aps_ops::jobs::JobEnd::Failed(&body);
            aps_ops::jobs::finish(&app.ctx, id, &end, &progress, None)
                .map_err(|e| (e, ("failed", None, Some(body.clone()))))
        }
    };
    match recorded {
        Ok(()) => true,
        Err((e, outcome)) => {
            tracing::error!(operation = %id, error = %aps_ops::error::chain(&e), "cannot record the operation's outcome");
            if let Some(live) = app.jobs.lock().get_mut(id) {
                live.unrecorded = Some(outcome);
            }
            false
        }
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
