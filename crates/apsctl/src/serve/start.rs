//! The operations the service runs as jobs, one function each, shared by the API (`api.rs`) and
//! the web UI (`ui/`): each takes the operation's options, makes the checks that answer at once,
//! starts the job and answers its id.
//!
//! Main decisions:
//! - This is the seam a later operation plugs into: one function here, then a route in each
//!   edge; the job table, progress, outcome and log come with it.
//! - Before a job starts, what can be refused at once is: an unknown instance (`404`), one an
//!   operation holds (`423`), refused settings (an install's dry run, `configure::check`: `400`
//!   with every setting in `details`). What can only fail while it runs is the job's outcome.
use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::jobs;
use super::{App, with_context};

/// A serializable result as JSON.
pub(crate) fn value(v: &impl serde::Serialize) -> Result<Value, aps_ops::Error> {
    serde_json::to_value(v).map_err(|e| aps_ops::Error::Failed(e.to_string()))
}

/// What a job start answers: its id, or why it could not start.
pub(crate) type Started = Result<String, aps_ops::Error>;

/// `check_free` of `instance` (exists, not held by an operation).
async fn free(app: &Arc<App>, instance: &str) -> Result<(), aps_ops::Error> {
    let id = instance.to_owned();
    with_context(app, move |ctx| aps_ops::instance::check_free(ctx, &id)).await
}

/// `install`.
pub(crate) async fn install(app: &Arc<App>, opts: aps_ops::install::InstallOptions) -> Started {
    let mut plan = opts.clone();
    plan.mode = aps_ops::install::RunMode::DryRun;
    with_context(app, move |ctx| {
        aps_ops::install::install(ctx, &plan, &aps_ops::report::Silent).map(drop)
    })
    .await?;
    jobs::spawn(app, "install", None, move |ctx, reporter| {
        value(&aps_ops::install::install(ctx, &opts, reporter)?)
    })
    .await
}

/// `configure`.
pub(crate) async fn configure(
    app: &Arc<App>,
    instance: String,
    settings: BTreeMap<String, String>,
) -> Started {
    let opts = aps_ops::configure::ConfigureOptions {
        instance: instance.clone(),
        settings,
    };
    free(app, &instance).await?;
    let checked = opts.clone();
    with_context(app, move |ctx| {
        aps_ops::configure::check(ctx, &checked).map(drop)
    })
    .await?;
    jobs::spawn(app, "configure", Some(instance), move |ctx, reporter| {
        value(&aps_ops::configure::configure(ctx, &opts, reporter)?)
    })
    .await
}

/// `remove`.
pub(crate) async fn remove(app: &Arc<App>, opts: aps_ops::remove::RemoveOptions) -> Started {
    let instance = opts.instance.clone();
    free(app, &instance).await?;
    jobs::spawn(app, "remove", Some(instance), move |ctx, reporter| {
        value(&aps_ops::remove::remove(ctx, &opts, reporter)?)
    })
    .await
}

/// `enable` or `disable`.
pub(crate) async fn status(app: &Arc<App>, instance: String, enable: bool) -> Started {
    let kind = if enable { "enable" } else { "disable" };
    free(app, &instance).await?;
    let id = instance.clone();
    jobs::spawn(app, kind, Some(instance), move |ctx, reporter| {
        value(&aps_ops::status::set(ctx, &id, enable, reporter)?)
    })
    .await
}

/// `upgrade`.
pub(crate) async fn upgrade(app: &Arc<App>, opts: aps_ops::upgrade::UpgradeOptions) -> Started {
    let instance = opts.instance.clone();
    free(app, &instance).await?;
    jobs::spawn(app, "upgrade", Some(instance), move |ctx, reporter| {
        value(&aps_ops::upgrade::upgrade(ctx, &opts, reporter)?)
    })
    .await
}

/// `backup`.
pub(crate) async fn backup(app: &Arc<App>, opts: aps_ops::backup::BackupOptions) -> Started {
    let instance = opts.instance.clone();
    free(app, &instance).await?;
    jobs::spawn(app, "backup", Some(instance), move |ctx, reporter| {
        value(&aps_ops::backup::backup(ctx, &opts, reporter)?)
    })
    .await
}

/// `restore`, over an instance or into a new one.
pub(crate) async fn restore(app: &Arc<App>, opts: aps_ops::restore::RestoreOptions) -> Started {
    let instance = match &opts.to {
        aps_ops::restore::RestoreTarget::Instance(id) => Some(id.clone()),
        aps_ops::restore::RestoreTarget::New { .. } => None,
    };
    if let Some(id) = &instance {
        free(app, id).await?;
    }
    jobs::spawn(app, "restore", instance, move |ctx, reporter| {
        value(&aps_ops::restore::restore(ctx, &opts, reporter)?)
    })
    .await
}

/// `migrate`.
pub(crate) async fn migrate(app: &Arc<App>, opts: aps_ops::restore::MigrateOptions) -> Started {
    let instance = opts.instance.clone();
    free(app, &instance).await?;
    jobs::spawn(app, "migrate", Some(instance), move |ctx, reporter| {
        value(&aps_ops::restore::migrate(ctx, &opts, reporter)?)
    })
    .await
}

/// `package settings` with values: save them, then reconfigure every instance of the package.
pub(crate) async fn package_settings(
    app: &Arc<App>,
    opts: aps_ops::global::GlobalOptions,
) -> Started {
    jobs::spawn(app, "package-settings", None, move |ctx, reporter| {
        value(&aps_ops::global::settings(ctx, &opts, reporter)?)
    })
    .await
}
