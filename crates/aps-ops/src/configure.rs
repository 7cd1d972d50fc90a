//! Reconfigure: change an instance's settings (REFERENCE §8.4).
//!
//! Main decision: the new values are stored only after `configure configure` succeeded; a failed
//! run leaves the stored values as they were (the script is not re-run with the old values,
//! §11 Q27). The run is journaled before it starts: when the process dies while it runs, or
//! after it succeeded but before the new values were stored, `recover` runs `configure
//! configure` again with the stored values, so the application agrees with the store.
use std::collections::BTreeMap;

use aps_meta::value::ValidationMode;
use aps_store::instances::InstanceState;
use serde::Serialize;

use crate::context::Context;
use crate::error::Error;
use crate::instance::Loaded;
use crate::journal::Journal;
use crate::report::Reporter;
use crate::script::ConfigScript;
use crate::vars::VarSet;

/// What `configure` needs.
#[derive(Debug, Clone, Default)]
pub struct ConfigureOptions {
    /// Instance id.
    pub instance: String,
    /// New values by setting id.
    pub settings: BTreeMap<String, String>,
}

/// What `configure` changed.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigureReport {
    /// Instance id.
    pub instance: String,
    /// Ids of the settings whose value changed.
    pub changed: Vec<String>,
}

/// Reconfigures an instance.
pub fn configure(
    ctx: &Context,
    opts: &ConfigureOptions,
    reporter: &dyn Reporter,
) -> Result<ConfigureReport, Error> {
    if opts.settings.is_empty() {
        return Err(Error::Invalid(
            "nothing to change: give at least one --set ID=VALUE".into(),
        ));
    }
    reconfigure(ctx, opts, &[], reporter)
}

/// Every check `configure` makes before it changes anything (the instance is ready, each value
/// valid, with every refused setting listed); returns the ids of the settings that would change.
/// A form checks its values with it before starting the operation.
pub fn check(ctx: &Context, opts: &ConfigureOptions) -> Result<Vec<String>, Error> {
    let loaded = Loaded::load(ctx, &opts.instance)?;
    require_ready(&loaded, "reconfigured")?;
    Ok(new_values(ctx, &loaded, opts)?.1)
}

/// One `configure` operation on `opts.instance` (its lock, journal, `configure configure` and
/// commit); `globals` names the global settings whose change triggers it (journaled with it),
/// empty for an administrator's `configure`.
pub(crate) fn reconfigure(
    ctx: &Context,
    opts: &ConfigureOptions,
    globals: &[String],
    reporter: &dyn Reporter,
) -> Result<ConfigureReport, Error> {
    ctx.store()?.instances().get(&opts.instance)?;
    let _lock = crate::lock::instance(ctx, &opts.instance, "reconfiguration")?;
    let loaded = Loaded::load(ctx, &opts.instance)?;
    require_ready(&loaded, "reconfigured")?;
    let (encoded, changed) = new_values(ctx, &loaded, opts)?;
    let script = loaded.config_script(ctx)?;
    let params = if globals.is_empty() {
        serde_json::json!({ "changed": changed })
    } else {
        serde_json::json!({ "changed": changed, "global_settings": globals })
    };
    let mut journal = Journal::begin(ctx, Some(&opts.instance), "configure", &params)?;
    let result = (|| {
        if let Some(script) = &script {
            let vars = loaded.variables(Some(&encoded));
            run_script(&mut journal, &opts.instance, script, &vars, reporter)?;
        }
        encoded
            .iter()
            .map(|(k, (v, s))| {
                let value = if *s { ctx.vault.seal(v)? } else { v.clone() };
                Ok(aps_store::instances::Setting {
                    setting_id: k.clone(),
                    value,
                    secret: *s,
                })
            })
            .collect::<Result<Vec<_>, Error>>()
    })();
    let rows = match result {
        Ok(rows) => rows,
        Err(e) => return Err(journal.rollback(reporter, e)),
    };
    // §8.4 step 7 and §8.0 step 4: the new values and the operation's outcome in one transaction.
    let committed = journal.finish_with("commit", crate::journal::Outcome::Done, |store| {
        Ok(store
            .instances()
            .update_settings(&opts.instance, &rows, crate::now(ctx))?)
    });
    if let Err(e) = committed {
        return Err(journal.rollback(reporter, e));
    }
    Ok(ConfigureReport {
        instance: opts.instance.clone(),
        changed,
    })
}

/// Refuses an instance that is not `ready` (another operation runs on it, or one was
/// interrupted): it cannot be `what` (`reconfigured`, …).
pub(crate) fn require_ready(loaded: &Loaded, what: &str) -> Result<(), Error> {
    let state = loaded.instance.state;
    if state == InstanceState::Ready {
        return Ok(());
    }
    Err(Error::Conflict(format!(
        "instance {} is {state}, not ready: it cannot be {what}{}",
        loaded.instance.id,
        if state == InstanceState::Installing {
            " (its install is running or was interrupted: run `apsctl recover`)"
        } else {
            ""
        }
    )))
}

/// Journaled step `configure-configure`: runs `configure configure` with `vars`. Its undo
/// (a failed operation, or `recover`) runs it again with what the store holds.
pub(crate) fn run_script(
    journal: &mut Journal<'_>,
    instance: &str,
    script: &ConfigScript<'_>,
    vars: &VarSet,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    vars.check_size()?;
    script.run_step(journal, instance, "configure", &[], vars, reporter)
}

/// Setting values by id, encoded (D6), with whether each is a secret.
type Encoded = BTreeMap<String, (String, bool)>;

/// The instance's values after the change (encoded, with their secrecy), checked like an
/// install's, and the ids of those that change.
fn new_values(
    ctx: &Context,
    loaded: &Loaded,
    opts: &ConfigureOptions,
) -> Result<(Encoded, Vec<String>), Error> {
    let service = loaded.service()?;
    let settings: Vec<_> = service
        .all_settings()
        .into_iter()
        .filter(|s| !s.installation_only)
        .collect();
    for id in opts.settings.keys() {
        if let Some(s) = service.all_settings().into_iter().find(|s| &s.id == id) {
            if s.installation_only {
                return Err(Error::Invalid(format!(
                    "setting `{id}` can only be set at installation"
                )));
            }
            if s.protected {
                return Err(Error::Invalid(format!(
                    "setting `{id}` is protected and cannot be changed after installation"
                )));
            }
        }
    }
    let mut input: BTreeMap<String, String> = loaded
        .settings
        .iter()
        .map(|s| (s.setting_id.clone(), s.value.clone()))
        .collect();
    // A secret sent back as the mask `show` prints (a panel saving every field it read) keeps
    // its value: `***` is never taken as a new password.
    let masked = |id: &str, value: &str| {
        value == crate::instance::SECRET_MASK
            && settings.iter().any(|s| s.id == id && s.kind.is_secret())
            && input.contains_key(id)
    };
    let given: Vec<(String, String)> = opts
        .settings
        .iter()
        .filter(|(id, value)| !masked(id, value))
        .map(|(id, value)| (id.clone(), value.clone()))
        .collect();
    input.extend(given);
    let values = crate::settings::validate(
        ctx,
        loaded.package()?,
        Some(&loaded.site),
        &settings,
        &input,
        Some(&opts.instance),
        ValidationMode::Reconfigure,
    )?;
    let encoded: BTreeMap<String, (String, bool)> = values
        .iter()
        .map(|(k, v)| (k.clone(), (v.encode(), v.is_secret())))
        .collect();
    let changed: Vec<String> = encoded
        .iter()
        .filter(|(k, (v, _))| {
            loaded
                .settings
                .iter()
                .find(|s| &s.setting_id == *k)
                .is_none_or(|s| &s.value != v)
        })
        .map(|(k, _)| k.clone())
        .collect();
    Ok((encoded, changed))
}
