//! A package's global settings (REFERENCE §8.2): shown with their saved values (else their
//! defaults), saved, and pushed to every instance of the package.
//!
//! Main decision: new values are validated as an install validates (`settings::validate`, all
//! errors at once: types, constraints, `uniq`, NUL) against the global settings of the package
//! given, merged with the values saved before (as `configure` merges stored and new values);
//! on any refusal nothing is stored. Accepted values are saved by package identity, in one
//! transaction, before any instance is touched; then every instance of every version of that
//! identity is reconfigured by its own `configure` operation (`configure::reconfigure`: its
//! lock, journal, `configure configure` with the new environment, commit). One instance failing
//! stops neither the others nor undoes the save: it is reported, keeps its state, and the
//! values stay saved (§8.2 "Failure"). Installation-only global settings are saved for later
//! installs and reconfigure nothing.
//!
//! Known gaps:
//! * Saving and reconfiguring are not one journaled operation: a crash after the save leaves the
//!   instances' applications with the old values until the next `package settings --set`, which
//!   reconfigures every instance again even when no value changes.
//! * Values are checked against the declaration of the version given; another version whose
//!   declaration differs gets a saved value only when its own type accepts it, else its default
//!   (`vars.rs`).
//! * `uniq` on a global setting compares with instance settings of the same id, which import
//!   forbids (`meta-name-collision`), so it never refuses in practice.
//! * Instances are reconfigured one after another; a busy one (its lock held) is reported as
//!   failed, not waited for (unless `--wait`).
use std::collections::BTreeMap;

use aps_meta::model::Setting;
use aps_meta::value::ValidationMode;
use serde::Serialize;

use crate::configure::ConfigureOptions;
use crate::context::Context;
use crate::error::Error;
use crate::package::{self, StoredPackage};
use crate::report::Reporter;

/// What `package settings` needs.
#[derive(Debug, Clone, Default)]
pub struct GlobalOptions {
    /// The package reference; its version's `global-settings` are the form.
    pub package: String,
    /// New values by setting id; empty: only show the settings.
    pub settings: BTreeMap<String, String>,
}

/// An instance whose reconfiguration failed.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceFailure {
    /// Instance id.
    pub instance: String,
    /// Why (the operation's error).
    pub error: String,
}

/// What `package settings` shows and did.
#[derive(Debug, Clone, Serialize)]
pub struct GlobalReport {
    /// The package reference.
    pub package: String,
    /// The package identity the values are saved for.
    pub identity: String,
    /// Each global setting's value: the saved one, else the default (secrets as `***`).
    pub settings: BTreeMap<String, String>,
    /// The ids among `settings` whose value was saved (the others are defaults).
    pub saved: Vec<String>,
    /// The ids of the installation-only global settings (used by later installs only).
    pub installation_only: Vec<String>,
    /// The instances reconfigured with the new values.
    pub reconfigured: Vec<String>,
    /// The instances whose reconfiguration failed (they keep their state).
    pub failed: Vec<InstanceFailure>,
}

/// Shows the package's global settings or, with values, saves them and reconfigures every
/// instance of the package.
pub fn settings(
    ctx: &Context,
    opts: &GlobalOptions,
    reporter: &dyn Reporter,
) -> Result<GlobalReport, Error> {
    let pkg = package::load(ctx, &opts.package)?;
    let declared = pkg.meta.all_global_settings();
    let mut reconfigured = Vec::new();
    let mut failed = Vec::new();
    if !opts.settings.is_empty() {
        save(ctx, &pkg, &declared, &opts.settings)?;
        let live: Vec<String> = opts
            .settings
            .keys()
            .filter(|id| {
                declared
                    .iter()
                    .any(|s| &&s.id == id && !s.installation_only)
            })
            .cloned()
            .collect();
        if !live.is_empty() {
            for id in instances_of(ctx, &pkg.summary.identity)? {
                reporter.step(&format!("reconfiguring instance {id}"));
                let one = ConfigureOptions {
                    instance: id.clone(),
                    settings: BTreeMap::new(),
                };
                match crate::configure::reconfigure(ctx, &one, &live, reporter) {
                    Ok(_) => reconfigured.push(id),
                    Err(e) => failed.push(InstanceFailure {
                        instance: id,
                        error: e.to_string(),
                    }),
                }
            }
        }
    }
    let saved = saved(ctx, &pkg.summary.identity)?;
    let mut values = BTreeMap::new();
    let mut saved_ids = Vec::new();
    for s in &declared {
        let value = match saved.get(&s.id).filter(|v| !v.is_empty()) {
            Some(v) => {
                saved_ids.push(s.id.clone());
                v.clone()
            }
            None => s.default_value.clone().unwrap_or_default(),
        };
        let shown = if s.kind.is_secret() && !value.is_empty() {
            crate::instance::SECRET_MASK.to_owned()
        } else {
            value
        };
        values.insert(s.id.clone(), shown);
    }
    Ok(GlobalReport {
        package: pkg.summary.package.clone(),
        identity: pkg.summary.identity.clone(),
        settings: values,
        saved: saved_ids,
        installation_only: declared
            .iter()
            .filter(|s| s.installation_only)
            .map(|s| s.id.clone())
            .collect(),
        reconfigured,
        failed,
    })
}

/// Validates `new` merged with the values saved before and saves the given ones (an empty value
/// saved means "the default"); nothing is saved when any value is refused.
fn save(
    ctx: &Context,
    pkg: &StoredPackage,
    declared: &[&Setting],
    new: &BTreeMap<String, String>,
) -> Result<(), Error> {
    let identity = &pkg.summary.identity;
    let mut input: BTreeMap<String, String> = saved(ctx, identity)?
        .into_iter()
        .filter(|(id, v)| !v.is_empty() && declared.iter().any(|s| &s.id == id))
        .collect();
    input.extend(new.clone());
    let values = crate::settings::validate(
        ctx,
        pkg,
        None,
        declared,
        &input,
        None,
        ValidationMode::Install,
    )?;
    let mut rows = Vec::new();
    for (id, raw) in new {
        let Some(setting) = declared.iter().find(|s| &s.id == id) else {
            continue;
        };
        let secret = setting.kind.is_secret();
        let value = match values.get(id) {
            Some(v) if !raw.is_empty() => v.encode(),
            _ => String::new(),
        };
        rows.push(aps_store::GlobalSetting {
            setting_id: id.clone(),
            value: if secret && !value.is_empty() {
                ctx.vault.seal(&value)?
            } else {
                value
            },
            secret,
        });
    }
    ctx.store()?
        .global_settings()
        .save(identity, &rows, crate::now(ctx))?;
    Ok(())
}

/// The global setting values saved for package identity `identity`, unsealed, by setting id.
pub(crate) fn saved(ctx: &Context, identity: &str) -> Result<BTreeMap<String, String>, Error> {
    ctx.store()?
        .global_settings()
        .get(identity)?
        .into_iter()
        .map(|s| {
            let value = if s.secret {
                ctx.vault.unseal(&s.value)?
            } else {
                s.value
            };
            Ok((s.setting_id, value))
        })
        .collect()
}

/// The ids of every instance of any version of the package identity `identity`.
fn instances_of(ctx: &Context, identity: &str) -> Result<Vec<String>, Error> {
    Ok(ctx
        .store()?
        .instances()
        .list()?
        .into_iter()
        .filter(|i| i.package.identity == identity)
        .map(|i| i.id)
        .collect())
}
