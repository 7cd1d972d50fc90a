//! `site update` (CLI.md; issue 10 item 7): a site's new URL, PHP or web server, carried to
//! every instance on it — a domain rename, http → https, another PHP, a move to nginx.
//!
//! Main decision: the site record is written last, and everything that can refuse runs first.
//! The new values are checked by the code of `site add` (`site::revised`); then, for
//! every instance on the site (each under its own lock, all held to the end, and the site's lock
//! so that no install reserves a place meanwhile): its package's requirements with the new PHP or
//! PHP-FPM (of each `choice` the alternative taken at install; databases are not the site's
//! business), its configuration script's interpreter, and its configuration rendered for the new
//! web server (`apache:htaccess` on nginx is refused here). A refusal changes nothing. Then each
//! instance is changed under a journal of its own (`site-update`): `configure configure` with
//! the new URL (the instance's site is replaced in memory only), then its web server file
//! rewritten or moved between servers (`Change::WebConfigIn`, which names its folder). While
//! instances change the store still holds the old site, so every undo — the live rollback when an
//! instance fails, or `recover` after a crash — reconfigures with the old URL and puts the old
//! files back. Only when every instance succeeded are the site record, the instances' URLs, the
//! web system changes they keep (added when the site gets a web server, dropped when it loses
//! it) and every journal's outcome committed in one transaction.
//!
//! Known gaps: only `ready` instances are handled (any other state refuses the whole update). The
//! instance whose `configure configure` failed is not run again with the old URL (as for
//! `configure`, §11 Q27). An install whose checks ran before the update reserves its place after
//! it with the site record it read before. `--web-test` and `--web-reload` can be cleared only by
//! changing `--web`; the document root and the user cannot be changed.
use std::fmt::Write as _;
use std::path::PathBuf;

use aps_host::lock::OpLock;
use aps_host::web::Access;
use aps_store::instances::NewSystemChange;
use aps_store::sites::{Site, WebKind};
use serde::Serialize;

use crate::change::Change;
use crate::context::Context;
use crate::error::{Error, ErrorKind};
use crate::instance::Loaded;
use crate::journal::{Journal, Outcome};
use crate::report::Reporter;
use crate::site::{SiteUrl, SiteView};

/// What `site update` changes; an option left out keeps the site's value.
#[derive(Debug, Clone, Default)]
pub struct UpdateOptions {
    /// The site.
    pub name: String,
    /// The new public URL (`http(s)://host[:port]/`).
    pub url: Option<String>,
    /// The new PHP CLI.
    pub php: Option<PathBuf>,
    /// The new web server kind; a different one starts `web_dir`, `web_test` and `web_reload`
    /// afresh (not given: none).
    pub web: Option<WebKind>,
    /// The new include folder of the web server.
    pub web_dir: Option<PathBuf>,
    /// The new reload command.
    pub web_reload: Option<String>,
    /// The new configuration test command.
    pub web_test: Option<String>,
    /// The new PHP-FPM address.
    pub php_fastcgi: Option<String>,
}

/// What `site update` did.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateReport {
    /// The site as stored now.
    pub site: SiteView,
    /// What changed: `url`, `php`, `web`.
    pub changed: Vec<&'static str>,
    /// The instances reconfigured or whose web server configuration was rewritten.
    pub instances: Vec<String>,
}

/// What changes for one instance, checked before anything changes.
struct Plan {
    /// The instance, with the new site and URL in place of the stored ones.
    loaded: Loaded,
    /// Whether `configure configure` runs (a new URL and a configuration script).
    reconfigure: bool,
    /// The instance's configuration for the new web server, when its file changes.
    web: Option<WebText>,
    /// The system changes it keeps that go (the site loses its web server).
    forget: Vec<u32>,
    /// The system change it gets (the site gains a web server).
    keep: Option<Change>,
    _lock: OpLock,
}

/// An instance's configuration rendered for the site's new web server.
struct WebText {
    /// The file's text; `None` when the new site has no server apsctl configures.
    text: Option<String>,
}

/// Updates a site and every instance on it (see the module documentation).
pub fn update(
    ctx: &Context,
    opts: &UpdateOptions,
    reporter: &dyn Reporter,
) -> Result<UpdateReport, Error> {
    let nothing = opts.url.is_none()
        && opts.php.is_none()
        && opts.web.is_none()
        && opts.web_dir.is_none()
        && opts.web_reload.is_none()
        && opts.web_test.is_none()
        && opts.php_fastcgi.is_none();
    if nothing {
        return Err(Error::Invalid(
            "nothing to change: give --url, --php or the --web options".into(),
        ));
    }
    let _site_lock = crate::lock::site(ctx, &opts.name)?;
    let old = ctx.store()?.sites().get(&opts.name)?;
    let new = crate::site::revised(ctx, &old, opts)?;
    let changed = changes(&old, &new);
    if changed.is_empty() {
        return Ok(UpdateReport {
            site: new.into(),
            changed,
            instances: Vec::new(),
        });
    }
    let mut plans = Vec::new();
    for summary in ctx.store()?.instances().list()? {
        if summary.site == old.name {
            let plan = plan(ctx, &old, &new, &changed, &summary.id).map_err(|e| {
                about(
                    &e,
                    &format!(
                        "site `{}` was not changed: instance {}",
                        old.name, summary.id
                    ),
                )
            })?;
            plans.push(plan);
        }
    }
    // The instances changed so far and their journals, in order.
    let mut ids: Vec<String> = Vec::new();
    let mut journals: Vec<Journal<'_>> = Vec::new();
    for plan in &plans {
        match change_instance(ctx, &old, &new, plan, reporter) {
            Ok(Some(journal)) => {
                ids.push(plan.loaded.instance.id.clone());
                journals.push(journal);
            }
            Ok(None) => {}
            Err((journal, e)) => {
                let id = &plan.loaded.instance.id;
                let e = match journal {
                    Some(journal) => journal.rollback(reporter, e),
                    None => e,
                };
                let what = format!("instance {id}");
                return Err(put_back(
                    &old,
                    &what,
                    &e,
                    ids.into_iter().zip(journals),
                    reporter,
                ));
            }
        }
    }
    let committed = commit(ctx, &journals, &new, &plans, &changed);
    if let Err(e) = committed {
        let what = "the final store write";
        return Err(put_back(
            &old,
            what,
            &e,
            ids.into_iter().zip(journals),
            reporter,
        ));
    }
    Ok(UpdateReport {
        site: new.into(),
        changed,
        instances: plans
            .iter()
            .filter(|p| p.reconfigure || p.web.is_some())
            .map(|p| p.loaded.instance.id.clone())
            .collect(),
    })
}

/// The site record, the instances' URLs and kept web system changes, and the outcome of every
/// instance's journal, in one store transaction.
fn commit(
    ctx: &Context,
    journals: &[Journal<'_>],
    new: &Site,
    plans: &[Plan],
    changed: &[&str],
) -> Result<(), Error> {
    let url = SiteUrl::parse(&new.url)?;
    let at = crate::now(ctx);
    crate::journal::finish_together(ctx, journals, "commit", Outcome::Done, |store| {
        store.sites().update(new)?;
        for plan in plans {
            let id = &plan.loaded.instance.id;
            if changed.contains(&"url") {
                let prefix = &plan.loaded.instance.prefix;
                store
                    .instances()
                    .set_url(id, &url.instance_url(prefix), at)?;
            }
            for seq in &plan.forget {
                store.instances().delete_system_change(id, *seq, at)?;
            }
            if let Some(change) = &plan.keep {
                let kept = NewSystemChange {
                    kind: change.kind().to_owned(),
                    data_json: change.to_json(),
                };
                store.instances().append_system_change(id, &kept, at)?;
            }
        }
        Ok(())
    })
}

/// The parts of the site that differ: `url`, `php`, `web` (server, folder, commands, PHP-FPM).
fn changes(old: &Site, new: &Site) -> Vec<&'static str> {
    let web = |s: &Site| {
        (
            s.web,
            s.web_dir.clone(),
            s.web_test.clone(),
            s.web_reload.clone(),
            s.php_fastcgi.clone(),
        )
    };
    [
        ("url", old.url != new.url),
        ("php", old.php != new.php),
        ("web", web(old) != web(new)),
    ]
    .into_iter()
    .filter_map(|(what, differs)| differs.then_some(what))
    .collect()
}

/// Locks instance `id` and checks what the update means for it.
fn plan(ctx: &Context, old: &Site, new: &Site, changed: &[&str], id: &str) -> Result<Plan, Error> {
    let lock = crate::lock::instance(ctx, id, "site update")?;
    let mut loaded = Loaded::load(ctx, id)?;
    crate::configure::require_ready(&loaded, "moved with its site")?;
    loaded.site = new.clone();
    loaded.url = SiteUrl::parse(&new.url)?;
    let url_changed = changed.contains(&"url");
    let web_changed = changed.contains(&"web");
    // The script's interpreter with the new PHP (for `php` scripts).
    let has_script = if url_changed || changed.contains(&"php") {
        loaded.config_script(ctx)?.is_some()
    } else {
        false
    };
    let mut satisfied = crate::runtime::Satisfied::default();
    if changed.contains(&"php") || web_changed {
        let chosen: Vec<String> =
            serde_json::from_str(&loaded.instance.choices_json).unwrap_or_default();
        let requirements =
            crate::runtime::installed_requirements(&loaded.service()?.requirements, &chosen);
        satisfied = crate::runtime::check(
            ctx,
            new,
            loaded.user()?,
            &requirements,
            None,
            &std::collections::BTreeMap::new(),
        )?;
    }
    let mut plan = Plan {
        reconfigure: url_changed && has_script,
        web: None,
        forget: Vec::new(),
        keep: None,
        _lock: lock,
        loaded,
    };
    if web_changed {
        let loaded = &plan.loaded;
        let web = crate::web::instance_web(
            new,
            id,
            &loaded.instance.prefix,
            loaded.service()?,
            &satisfied.php_values,
        )?;
        if !web.locations.is_empty() {
            // Both states the instance can be in later must be servable, as at install.
            crate::web::render(new, &web, Access::Disabled)?;
            plan.web = Some(WebText {
                text: crate::web::render(new, &web, Access::Enabled)?,
            });
            let kept: Vec<u32> = loaded
                .system_changes
                .iter()
                .filter(|c| c.kind == "web-config")
                .map(|c| c.seq)
                .collect();
            match (
                crate::web::config_dir(old).is_some(),
                crate::web::config_dir(new).is_some(),
            ) {
                (true, false) => plan.forget = kept,
                (false, true) if kept.is_empty() => {
                    plan.keep = Some(Change::WebConfig {
                        site: new.name.clone(),
                        instance: id.to_owned(),
                        previous: None,
                    });
                }
                _ => {}
            }
        }
    }
    Ok(plan)
}

/// Changes one instance under its own journal; `None` when nothing changes for it. On failure
/// the journal (if one began) comes back with the error, for the caller to roll back.
fn change_instance<'c>(
    ctx: &'c Context,
    old: &Site,
    new: &Site,
    plan: &Plan,
    reporter: &dyn Reporter,
) -> Result<Option<Journal<'c>>, (Option<Journal<'c>>, Error)> {
    if !plan.reconfigure && plan.web.is_none() {
        return Ok(None);
    }
    let loaded = &plan.loaded;
    let id = &loaded.instance.id;
    reporter.step(&format!("instance {id}: following site `{}`", new.name));
    let params = serde_json::json!({ "site": new.name, "url": new.url, "web": new.web.as_str() });
    let mut journal =
        Journal::begin(ctx, Some(id), "site-update", &params).map_err(|e| (None, e))?;
    let result = (|| {
        if plan.reconfigure {
            if let Some(script) = loaded.config_script(ctx)? {
                let vars = loaded.variables(None);
                crate::configure::run_script(&mut journal, id, &script, &vars, reporter)?;
            }
        }
        if let Some(web) = &plan.web {
            crate::web::move_config(
                &mut journal,
                "web-config",
                id,
                crate::web::config_dir(old).as_ref(),
                crate::web::config_dir(new).as_ref(),
                web.text.as_deref(),
                reporter,
            )?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(Some(journal)),
        Err(e) => Err((Some(journal), e)),
    }
}

/// Rolls back the instances changed before the failure (newest first) and says what failed and
/// what was put back. The site record was never changed.
fn put_back<'c>(
    old: &Site,
    failed: &str,
    error: &Error,
    changed: impl DoubleEndedIterator<Item = (String, Journal<'c>)>,
    reporter: &dyn Reporter,
) -> Error {
    let mut undone = Vec::new();
    let mut problems = Vec::new();
    for (id, journal) in changed.rev() {
        let note = format!("site `{}` update failed at {failed}", old.name);
        let rolled = journal.rollback(reporter, Error::Failed(note.clone()));
        if rolled.to_string() == note {
            undone.push(id);
        } else {
            problems.push(format!("instance {id}: {rolled}"));
        }
    }
    let mut text = format!(
        "site `{}` was not changed: {failed} failed: {}",
        old.name,
        crate::error::chain(error)
    );
    if !undone.is_empty() {
        undone.reverse();
        let _ = write!(
            text,
            "\nput back as they were (configured with `{}` again): instance {}",
            old.url,
            undone.join(", ")
        );
    }
    if !problems.is_empty() {
        text.push_str("\nnot put back completely:\n  ");
        text.push_str(&problems.join("\n  "));
    }
    about(error, &text)
}

/// `error`'s kind with the message `text` (a refusal stays a refusal).
fn about(error: &Error, text: &str) -> Error {
    let text = if text.contains(&error.to_string()) {
        text.to_owned()
    } else {
        format!("{text}: {}", crate::error::chain(error))
    };
    match error.kind() {
        ErrorKind::Invalid => Error::Invalid(text),
        ErrorKind::NotFound => Error::NotFound(text),
        ErrorKind::Conflict => Error::Conflict(text),
        ErrorKind::Busy => Error::Busy(text),
        ErrorKind::Failed | ErrorKind::Internal => Error::Failed(text),
    }
}
