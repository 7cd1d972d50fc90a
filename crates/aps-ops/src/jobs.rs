//! The HTTP service's operations ("jobs") as the store keeps them: started `running`, ended with
//! their final progress and their result or error body, listed per instance.
//!
//! Main decision: this module only records and reads; the service (`apsctl serve`) runs the
//! operation, keeps its live progress in memory and writes the outcome here once. The documents
//! are JSON the service built (the CLI's `--json` objects and API.md's error body, secrets
//! already masked), kept as they were given.
use serde_json::Value;

use crate::{Context, Error, now};

/// One job as API.md's operation object.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobView {
    /// Its id.
    pub operation: String,
    /// `install`, `configure`, `remove`, …
    pub kind: String,
    /// The instance, when known.
    pub instance: Option<String>,
    /// `running`, `succeeded` or `failed`.
    pub state: &'static str,
    /// Steps and progress.
    pub progress: Value,
    /// The CLI command's `--json` object, once it succeeded (`null` before).
    pub result: Option<Value>,
    /// The error body, once it failed (`null` otherwise).
    pub error: Option<Value>,
    /// When it started (milliseconds since the epoch).
    pub started_at: i64,
    /// When it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<i64>,
}

/// How a job ended.
#[derive(Debug)]
pub enum JobEnd<'a> {
    /// With the command's `--json` object.
    Succeeded(&'a Value),
    /// With API.md's error body.
    Failed(&'a Value),
}

fn parse(text: Option<&str>) -> Option<Value> {
    text.map(|t| serde_json::from_str(t).unwrap_or(Value::String(t.to_owned())))
}

fn view(record: aps_store::JobRecord) -> JobView {
    JobView {
        operation: record.id.to_string(),
        kind: record.kind,
        instance: record.instance,
        state: record.state.as_str(),
        progress: parse(Some(&record.progress)).unwrap_or(Value::Null),
        result: parse(record.result.as_deref()),
        error: parse(record.error.as_deref()),
        started_at: record.started_at.unix_millis(),
        ended_at: record.ended_at.map(aps_store::Timestamp::unix_millis),
    }
}

/// Records a new `running` job; returns its id.
pub fn start(ctx: &Context, kind: &str, instance: Option<&str>) -> Result<String, Error> {
    let id = ctx.store()?.jobs().start(kind, instance, "{}", now(ctx))?;
    Ok(id.to_string())
}

/// Records how job `id` ended, with its final `progress` and, for an install, the `instance` it
/// created.
pub fn finish(
    ctx: &Context,
    id: &str,
    end: &JobEnd<'_>,
    progress: &Value,
    instance: Option<&str>,
) -> Result<(), Error> {
    let Ok(id) = id.parse::<i64>() else {
        return Err(Error::NotFound(format!("no operation `{id}`")));
    };
    let (state, result, error) = match end {
        JobEnd::Succeeded(v) => (aps_store::JobState::Succeeded, Some(v.to_string()), None),
        JobEnd::Failed(v) => (aps_store::JobState::Failed, None, Some(v.to_string())),
    };
    let progress = progress.to_string();
    ctx.store()?.jobs().finish(
        id,
        &aps_store::JobOutcome {
            state,
            progress: &progress,
            result: result.as_deref(),
            error: error.as_deref(),
            instance,
        },
        now(ctx),
    )?;
    Ok(())
}

/// Job `id` as recorded, if it is.
pub fn get(ctx: &Context, id: &str) -> Result<Option<JobView>, Error> {
    let Ok(id) = id.parse::<i64>() else {
        return Ok(None);
    };
    Ok(ctx.store()?.jobs().get(id)?.map(view))
}

/// The newest `limit` jobs of `instance` (or of all instances), newest first.
pub fn list(ctx: &Context, instance: Option<&str>, limit: u32) -> Result<Vec<JobView>, Error> {
    let store = ctx.store()?;
    let records = match instance {
        Some(instance) => store.jobs().of_instance(instance, limit)?,
        None => store.jobs().recent(limit)?,
    };
    Ok(records.into_iter().map(view).collect())
}

/// The lock of the one service of a home, held while it runs.
#[derive(Debug)]
pub struct ServiceLock(#[expect(dead_code, reason = "held for its Drop")] aps_host::lock::OpLock);

/// Takes the home's service lock (`<home>/locks/serve.lock`): a second `apsctl serve` on the same
/// home is refused before it touches the jobs or the socket of the first.
pub fn service_lock(ctx: &Context) -> Result<ServiceLock, Error> {
    aps_host::lock::OpLock::acquire(
        &ctx.home.locks().join("serve.lock"),
        &format!("apsctl serve (pid {})", std::process::id()),
    )
    .map(ServiceLock)
    .map_err(|e| Error::Busy(format!("another `apsctl serve` runs on this home: {e}")))
}

/// Gives every job a dead service left `running` the error body `error`; returns how many. The
/// operations they ran are the journal's to finish (`apsctl recover`).
pub fn abandon_running(ctx: &Context, error: &Value) -> Result<usize, Error> {
    Ok(ctx
        .store()?
        .jobs()
        .abandon_running(&error.to_string(), now(ctx))?)
}
