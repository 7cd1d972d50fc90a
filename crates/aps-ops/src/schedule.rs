//! Periodic backups (CLI.md `schedule add/list/remove/run`): the seed's control panel triggers
//! backups periodically; apsctl serves panels that bring their own scheduler (they call
//! `backup`) and those that do not (`schedule run` from cron, the service later).
//!
//! Main decision: a schedule is a row (instance, period, folder, `--keep`); `run` backs up every
//! due instance one after the other with [`crate::backup::backup`] into the folder (with its
//! rotation), records each outcome and the next due time, and goes on after a failure, which it
//! reports. A new schedule is due at once.
//!
//! Known gap: a run that takes longer than a period does not catch up the missed periods; the
//! next one is a period after the run.
use std::path::PathBuf;
use std::time::Duration;

use aps_store::Timestamp;
use aps_store::schedules::Schedule;
use serde::Serialize;

use crate::backup::{BackupOptions, BackupTarget};
use crate::context::Context;
use crate::error::Error;
use crate::report::Reporter;

/// The shortest period accepted.
pub const MIN_PERIOD: Duration = Duration::from_secs(60);

/// What `schedule add` needs.
#[derive(Debug, Clone)]
pub struct ScheduleOptions {
    /// The instance.
    pub instance: String,
    /// The period, as written (`30m`, `12h`, `1d`, `1w`).
    pub every: String,
    /// The folder the backups go to.
    pub to_dir: PathBuf,
    /// How many backups of the instance to keep there.
    pub keep: Option<u32>,
}

/// A schedule as `schedule list` shows it (CLI.md fields).
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleView {
    /// Its id.
    pub schedule: i64,
    /// The instance.
    pub instance: String,
    /// The period (`1day`, `12h`, …).
    pub every: String,
    /// The folder.
    pub to_dir: PathBuf,
    /// How many backups are kept.
    pub keep: Option<u32>,
    /// When it last ran (RFC 3339), if it did.
    pub last: Option<String>,
    /// Why the last run failed, if it did.
    pub last_error: Option<String>,
    /// When it is due next (RFC 3339).
    pub next: String,
}

impl From<Schedule> for ScheduleView {
    fn from(s: Schedule) -> Self {
        let time = |t: Timestamp| humantime::format_rfc3339_seconds(t.to_system_time()).to_string();
        Self {
            schedule: s.id,
            instance: s.instance,
            every: humantime::format_duration(Duration::from_secs(s.every_secs)).to_string(),
            to_dir: s.to_dir,
            keep: s.keep,
            last: s.last_at.map(time),
            last_error: s.last_error,
            next: time(s.next_at),
        }
    }
}

/// Adds a schedule after checking the instance, the period and the folder.
pub fn add(ctx: &Context, opts: &ScheduleOptions) -> Result<ScheduleView, Error> {
    ctx.store()?.instances().get(&opts.instance)?;
    let every = humantime::parse_duration(&opts.every).map_err(|e| {
        Error::Invalid(format!(
            "`--every {}` is not a period such as `30m`, `12h` or `1d`: {e}",
            opts.every
        ))
    })?;
    if every < MIN_PERIOD {
        return Err(Error::Invalid(format!(
            "`--every {}` is shorter than the {} seconds a schedule may be",
            opts.every,
            MIN_PERIOD.as_secs()
        )));
    }
    if opts.keep == Some(0) {
        return Err(Error::Invalid(
            "`--keep 0` would delete every backup it makes".into(),
        ));
    }
    if !opts.to_dir.is_absolute() || !opts.to_dir.is_dir() {
        return Err(Error::Invalid(format!(
            "backup folder `{}` is not an existing folder given by an absolute path",
            opts.to_dir.display()
        )));
    }
    let now = crate::now(ctx);
    let schedule = Schedule {
        id: 0,
        instance: opts.instance.clone(),
        every_secs: every.as_secs(),
        to_dir: opts.to_dir.clone(),
        keep: opts.keep,
        created_at: now,
        last_at: None,
        last_error: None,
        next_at: now,
    };
    let id = ctx.store()?.schedules().insert(&schedule)?;
    Ok(ctx.store()?.schedules().get(id)?.into())
}

/// Every schedule.
pub fn list(ctx: &Context) -> Result<Vec<ScheduleView>, Error> {
    Ok(ctx
        .store()?
        .schedules()
        .list()?
        .into_iter()
        .map(ScheduleView::from)
        .collect())
}

/// Removes schedule `id`.
pub fn remove(ctx: &Context, id: i64) -> Result<ScheduleView, Error> {
    let schedule = ctx.store()?.schedules().get(id)?;
    ctx.store()?.schedules().delete(id)?;
    Ok(schedule.into())
}

/// One due schedule's run.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduledRun {
    /// The schedule.
    pub schedule: i64,
    /// The instance.
    pub instance: String,
    /// The archive made, when the backup succeeded.
    pub backup: Option<PathBuf>,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// How many schedules are due now (the service starts a `schedule` job only when some are).
pub fn due_count(ctx: &Context) -> Result<usize, Error> {
    Ok(ctx.store()?.schedules().due(crate::now(ctx))?.len())
}

/// Runs every due schedule (`schedule run`); a failure is recorded and the others go on.
pub fn run(ctx: &Context, reporter: &dyn Reporter) -> Result<Vec<ScheduledRun>, Error> {
    let mut runs = Vec::new();
    for schedule in ctx.store()?.schedules().due(crate::now(ctx))? {
        reporter.step(&format!(
            "schedule {}: backing up instance {} into `{}`",
            schedule.id,
            schedule.instance,
            schedule.to_dir.display()
        ));
        let result = crate::backup::backup(
            ctx,
            &BackupOptions {
                instance: schedule.instance.clone(),
                to: BackupTarget::Dir {
                    dir: schedule.to_dir.clone(),
                    keep: schedule.keep,
                },
            },
            reporter,
        );
        let at = crate::now(ctx);
        let next = Timestamp::from_system_time(
            at.to_system_time() + Duration::from_secs(schedule.every_secs),
        );
        let (backup, error) = match result {
            Ok(report) => (Some(report.backup), None),
            Err(e) => {
                let text = crate::error::chain(&e);
                reporter.warn(&format!("schedule {}: {text}", schedule.id));
                (None, Some(text))
            }
        };
        ctx.store()?
            .schedules()
            .record_run(schedule.id, at, error.as_deref(), next)?;
        runs.push(ScheduledRun {
            schedule: schedule.id,
            instance: schedule.instance,
            backup,
            error,
        });
    }
    Ok(runs)
}
