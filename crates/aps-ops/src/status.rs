//! Enable / disable (REFERENCE §8.5, §11 Q30): status control of instances whose configuration
//! script declares `status-control`.
//!
//! Main decisions:
//! - Disabling closes access before the script runs (every URL of the instance answers 503
//!   through the site's web adapter; on a `--web none` site the instance root becomes 0700, so
//!   the server can serve nothing of it), then runs `configure disable`; enabling runs `configure
//!   enable` first and opens access last. A disabled instance never serves, even while its script
//!   runs.
//! - Each step is a journaled change: a failure (or a crash, through `recover`) undoes exactly
//!   what was done, the script's run being answered by the opposite action, and the state stays
//!   as it was. The new state and the outcome are one store transaction.
//! - Enabling gives back exactly what disabling took: the serving configuration text and the
//!   folder mode recorded by the latest `disable` of the instance.
//!
//! Known gap: an instance disabled by an apsctl without web serving gets its configuration
//! rendered afresh from its metadata on enable, without per-instance PHP values.
use aps_host::web::Access;
use aps_store::instances::InstanceState;
use serde::Serialize;

use crate::change::Change;
use crate::context::Context;
use crate::error::Error;
use crate::instance::Loaded;
use crate::journal::{Journal, Outcome};
use crate::report::Reporter;

/// What `enable`/`disable` did.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// Instance id.
    pub instance: String,
    /// The state now (`ready` or `disabled`).
    pub state: String,
}

/// Disables (`enable == false`) or enables instance `id`.
pub fn set(
    ctx: &Context,
    id: &str,
    enable: bool,
    reporter: &dyn Reporter,
) -> Result<StatusReport, Error> {
    let (verb, action, from, to) = if enable {
        (
            "enabled",
            "enable",
            InstanceState::Disabled,
            InstanceState::Ready,
        )
    } else {
        (
            "disabled",
            "disable",
            InstanceState::Ready,
            InstanceState::Disabled,
        )
    };
    ctx.store()?.instances().get(id)?;
    let _lock = crate::lock::instance(ctx, id, action)?;
    let loaded = Loaded::load(ctx, id)?;
    let declared = loaded
        .service()?
        .provision
        .configuration_script
        .as_ref()
        .is_some_and(|s| s.status_control);
    if !declared {
        return Err(Error::Invalid(format!(
            "instance {id} cannot be {verb}: its package does not declare `status-control` in its configuration script"
        )));
    }
    if loaded.instance.state != from {
        return Err(Error::Conflict(format!(
            "instance {id} is {}, so it cannot be {verb}",
            loaded.instance.state
        )));
    }
    let mut journal = Journal::begin(ctx, Some(id), action, &serde_json::json!({}))?;
    let steps = if enable {
        run_script(ctx, &mut journal, &loaded, action, reporter)
            .and_then(|()| open(ctx, &mut journal, &loaded, reporter))
    } else {
        close(&mut journal, &loaded, reporter)
            .and_then(|()| run_script(ctx, &mut journal, &loaded, action, reporter))
    };
    if let Err(e) = steps {
        return Err(journal.rollback(reporter, e));
    }
    let committed = journal.finish_with("commit", Outcome::Done, |store| {
        Ok(store.instances().set_state(id, to, crate::now(ctx))?)
    });
    if let Err(e) = committed {
        return Err(journal.rollback(reporter, e));
    }
    Ok(StatusReport {
        instance: id.to_owned(),
        state: to.to_string(),
    })
}

/// `configure enable` / `configure disable`, journaled before it runs.
fn run_script(
    ctx: &Context,
    journal: &mut Journal<'_>,
    loaded: &Loaded,
    action: &str,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    let Some(script) = loaded.config_script(ctx)? else {
        return Ok(());
    };
    let vars = loaded.variables(None);
    script.run_step(journal, &loaded.instance.id, action, &[], &vars, reporter)
}

/// Disabling's access step: the 503 configuration, or (no web server configured) the root
/// closed to everyone but its owner.
fn close(journal: &mut Journal<'_>, loaded: &Loaded, reporter: &dyn Reporter) -> Result<(), Error> {
    if crate::web::config_dir(&loaded.site).is_some() {
        let closed = crate::web::closed(loaded);
        return crate::web::apply(
            journal,
            "disable-web",
            &loaded.site,
            &closed,
            Access::Disabled,
            reporter,
        );
    }
    crate::web::close_root(journal, "disable-access", loaded, reporter)
}

/// Enabling's access step: what the latest `disable` took, given back.
fn open(
    ctx: &Context,
    journal: &mut Journal<'_>,
    loaded: &Loaded,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    let id = &loaded.instance.id;
    let taken: Vec<Change> = match ctx.store()?.journal().latest_operation(id, "disable")? {
        Some(op) => Journal::resume(ctx, op.id)?
            .entries()
            .iter()
            .map(|e| e.change.clone())
            .collect(),
        None => Vec::new(),
    };
    if let Some(dir) = crate::web::config_dir(&loaded.site) {
        let serving = taken.iter().find_map(|c| match c {
            Change::WebConfig { previous, .. } => previous.clone(),
            _ => None,
        });
        let serving = if let Some(text) = serving {
            Some(text)
        } else {
            let web = crate::web::instance_web(
                &loaded.site,
                id,
                &loaded.instance.prefix,
                loaded.service()?,
                &[],
            )?;
            crate::web::render(&loaded.site, &web, Access::Enabled)?
        };
        reporter.step(&format!(
            "web server: serving the instance again through `{}`",
            dir.file(id).display()
        ));
        return crate::web::put(
            journal,
            "enable-web",
            &loaded.site,
            &dir,
            id,
            serving.as_deref(),
        );
    }
    let Some(mode) = taken.iter().find_map(|c| match c {
        Change::FolderMode { mode, .. } => Some(*mode),
        _ => None,
    }) else {
        return Ok(());
    };
    let Some(root) = loaded.place().open_root_if_present()? else {
        return Ok(());
    };
    reporter.step(&format!(
        "opening `{}` to the web server again",
        loaded.root.display()
    ));
    let change = Change::FolderMode {
        docroot: loaded.site.docroot.clone(),
        rel: loaded.instance.prefix.clone(),
        mode: root.mode().map_err(Error::Site)?,
    };
    journal.step("enable-access", |j| {
        j.change(change, || root.set_mode(mode).map_err(Error::Site))
    })
}
