//! Reconfigure: change an instance's settings (REFERENCE §8.4).
//!
//! Main decision: the new values are stored only after `configure configure` succeeded; a failed
//! run leaves the stored values as they were (the script is not re-run with the old values,
//! §11 Q27).
use std::collections::BTreeMap;

use aps_host::lock::OpLock;
use aps_meta::value::ValidationMode;
use serde::Serialize;

use crate::context::Context;
use crate::error::Error;
use crate::instance::Loaded;
use crate::journal::{Journal, Undo};
use crate::report::Reporter;

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

/// Takes the instance's operation lock, naming the operation for whoever is refused.
pub(crate) fn lock(ctx: &Context, id: &str, what: &str) -> Result<OpLock, Error> {
    ctx.store.instances().get(id)?;
    OpLock::acquire(
        &ctx.home.instance(id).join("lock"),
        &format!("{what} of instance {id} (pid {})", std::process::id()),
    )
    .map_err(|e| Error::Busy(format!("instance {id}: {e}")))
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
    let _lock = lock(ctx, &opts.instance, "reconfiguration")?;
    let loaded = Loaded::load(ctx, &opts.instance)?;
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
    input.extend(opts.settings.clone());
    let values = crate::install::validate_settings(
        ctx,
        &loaded.package,
        &loaded.site,
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
    let script = loaded.config_script(ctx)?;
    let params = serde_json::json!({ "changed": changed });
    let mut journal = Journal::begin(ctx, Some(&opts.instance), "configure", &params)?;
    let result = (|| {
        if let Some(script) = &script {
            let vars = loaded.variables(Some(&encoded));
            journal.step("configure-configure", Undo::Nothing, || {
                script.run(ctx, "configure", &[], &vars, reporter)
            })?;
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
    journal.finish_with("commit", crate::journal::Outcome::Done, |store| {
        Ok(store
            .instances()
            .update_settings(&opts.instance, &rows, crate::now(ctx))?)
    })?;
    Ok(ConfigureReport {
        instance: opts.instance.clone(),
        changed,
    })
}
