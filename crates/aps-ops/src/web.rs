//! An instance's web server configuration: its package's URL mapping translated for the site's
//! adapter (`aps_host::web`), and the journaled step that writes, checks and loads it.
//!
//! Main decisions:
//! - The translation resolves what the mapping tree leaves to inheritance (§3.8): each mapping's
//!   PHP handler and `readable` permission is its own or its nearest ancestor's; the root
//!   without a handler runs no PHP. Writable folders are the deployment's business (`deploy.rs`
//!   gives them to the site's group), not the web server's.
//! - Every configuration change is one [`Change::WebConfig`] holding the instance's previous
//!   file text: its undo (a failed step, `recover` after a crash between writing and reloading,
//!   a removal's rollback of what the install did) puts that text back and reloads. A file the
//!   server's own test refuses is put back before the step fails with the server's message.
//! - The states of §8.10 and D11: `Enabled` (the install's last step, kept by the instance as a
//!   system change whose undo removes the file), `Disabled` (503, the removal's first step; a
//!   failed removal gives access back), and removed (no file) once the removal is past its
//!   commit point.
//!
//! - A site update moving an instance's file between servers journals each file as a
//!   [`Change::WebConfigIn`], which names its folder instead of the site ([`move_config`]).
//!
//! Known gap: `apache:required-module` and `apache:htaccess` are read from the service's direct
//! requirements, not from the `choice` alternative taken.
use std::path::Path;

use aps_host::web::{
    self as host, Access, Adapter, ConfigDir, FastCgi, InstanceWeb, Location, Php,
};
use aps_meta::model::{ApacheRequirement, Mapping, PhpHandler, Requirement, Service};
use aps_store::sites::{Site, WebKind};

use crate::change::Change;
use crate::context::Context;
use crate::error::Error;
use crate::instance::Loaded;
use crate::journal::Journal;
use crate::report::Reporter;

/// The adapter of `site`.
pub(crate) fn adapter(site: &Site) -> &'static dyn Adapter {
    match site.web {
        WebKind::None => &host::NoServer,
        WebKind::Nginx => &host::nginx::Nginx,
        WebKind::Apache => &host::apache::Apache,
    }
}

/// The configuration folder of `site`; `None` when apsctl writes no configuration for it.
pub(crate) fn config_dir(site: &Site) -> Option<ConfigDir> {
    match (site.web, &site.web_dir) {
        (WebKind::None, _) | (_, None) => None,
        (_, Some(dir)) => Some(ConfigDir {
            dir: dir.clone(),
            test: site.web_test.clone(),
            reload: site.web_reload.clone(),
        }),
    }
}

/// What the site's web server needs to serve `service` installed at `prefix` (relative to the
/// document root, empty for the site root) as instance `id`, with the PHP settings the
/// requirement checks chose for it alone (`php_values`).
pub(crate) fn instance_web(
    site: &Site,
    id: &str,
    prefix: &str,
    service: &Service,
    php_values: &[(String, String)],
) -> Result<InstanceWeb, Error> {
    let fastcgi = site
        .php_fastcgi
        .as_deref()
        .map(FastCgi::parse)
        .transpose()
        .map_err(|e| Error::Invalid(format!("site `{}`: {e}", site.name)))?;
    let mut locations = Vec::new();
    if let Some(mapping) = &service.provision.url_mapping {
        let base = if prefix.is_empty() {
            String::new()
        } else {
            format!("/{}", prefix.trim_matches('/'))
        };
        walk(
            &site.docroot,
            &mapping.root,
            &base,
            &Php::Off,
            true,
            &mut locations,
        );
    }
    let mut htaccess = false;
    let mut modules = Vec::new();
    for req in &service.requirements.items {
        match req {
            Requirement::Apache(ApacheRequirement::Htaccess) => htaccess = true,
            Requirement::Apache(ApacheRequirement::RequiredModule(m)) => modules.push(m.clone()),
            _ => {}
        }
    }
    Ok(InstanceWeb {
        instance: id.to_owned(),
        docroot: site.docroot.clone(),
        locations,
        fastcgi,
        php_values: php_values.to_vec(),
        htaccess,
        modules,
    })
}

/// Pushes the location of `mapping` at URL path `url` (empty for the site root) and its
/// descendants, resolving what they inherit.
fn walk(
    docroot: &Path,
    mapping: &Mapping,
    url: &str,
    php: &Php,
    readable: bool,
    out: &mut Vec<Location>,
) {
    let php = match &mapping.php_handler {
        Some(PhpHandler::Extensions(exts)) => Php::Run(exts.clone()),
        Some(PhpHandler::Disabled) => Php::Off,
        None => php.clone(),
    };
    let readable = mapping
        .php_permissions
        .and_then(|p| p.readable)
        .unwrap_or(readable);
    let shown = if url.is_empty() { "/" } else { url };
    out.push(Location {
        dir: docroot.join(url.trim_start_matches('/')),
        url: shown.to_owned(),
        php: php.clone(),
        readable,
    });
    for child in &mapping.children {
        let child_url = format!("{url}/{}", child.url.trim_matches('/'));
        walk(docroot, child, &child_url, &php, readable, out);
    }
}

/// Renders `web` for the site's adapter, refusing what it cannot serve (checked before an
/// operation changes anything).
pub(crate) fn render(
    site: &Site,
    web: &InstanceWeb,
    access: Access,
) -> Result<Option<String>, Error> {
    adapter(site).render(web, access).map_err(|e| {
        Error::Invalid(format!(
            "site `{}` ({}): {e}",
            site.name,
            adapter(site).name()
        ))
    })
}

/// Journaled step `step`: sets the instance's configuration to `access`, checks it with the
/// server's test (a refused file is put back) and reloads the server. Nothing for a site whose
/// server apsctl does not configure.
pub(crate) fn apply(
    journal: &mut Journal<'_>,
    step: &str,
    site: &Site,
    web: &InstanceWeb,
    access: Access,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    let Some(dir) = config_dir(site).filter(|_| !web.locations.is_empty()) else {
        return Ok(());
    };
    let text = render(site, web, access)?;
    reporter.step(&format!(
        "web server: {} `{}`",
        match access {
            Access::Enabled => "serving the instance through",
            Access::Disabled => "closing the instance (503) in",
        },
        dir.file(&web.instance).display()
    ));
    put(journal, step, site, &dir, &web.instance, text.as_deref())
}

/// Journaled step `step`: sets `instance`'s file in `dir` to `text` (`None`: no file), checks it
/// and reloads; the change records the text before.
pub(crate) fn put(
    journal: &mut Journal<'_>,
    step: &str,
    site: &Site,
    dir: &ConfigDir,
    instance: &str,
    text: Option<&str>,
) -> Result<(), Error> {
    let previous = dir.read(instance).map_err(web_error)?;
    let change = Change::WebConfig {
        site: site.name.clone(),
        instance: instance.to_owned(),
        previous: previous.clone(),
    };
    let ctx = journal.context();
    journal.step(step, |j| {
        j.change(change, || {
            let _lock = crate::lock::web_dir(ctx, &dir.dir)?;
            dir.put_checked(instance, text, previous.as_deref())
                .and_then(|()| dir.reload())
                .map_err(web_error)
        })
    })
}

/// What the 503 of a closed instance needs: only its URL path, not its package (so that it
/// works when the private metadata is gone, `remove --force`).
pub(crate) fn closed(loaded: &Loaded) -> InstanceWeb {
    InstanceWeb {
        instance: loaded.instance.id.clone(),
        docroot: loaded.site.docroot.clone(),
        locations: vec![Location {
            url: format!("/{}", loaded.instance.prefix.trim_matches('/')),
            dir: loaded.root.clone(),
            php: Php::Off,
            readable: true,
        }],
        fastcgi: None,
        php_values: Vec::new(),
        htaccess: false,
        modules: Vec::new(),
    }
}

/// Journaled step `step`: the instance root closed to everyone but its owner (0700; the web
/// server can serve nothing of it), its mode before recorded. A root that is gone needs nothing.
pub(crate) fn close_root(
    journal: &mut Journal<'_>,
    step: &str,
    loaded: &Loaded,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    let Some(root) = loaded.place().open_root_if_present()? else {
        return Ok(());
    };
    reporter.step(&format!(
        "closing `{}` to the web server",
        loaded.root.display()
    ));
    let mode = root.mode().map_err(Error::Site)?;
    let change = Change::FolderMode {
        docroot: loaded.site.docroot.clone(),
        rel: loaded.instance.prefix.clone(),
        mode,
    };
    journal.step(step, |j| {
        j.change(change, || root.set_mode(0o700).map_err(Error::Site))
    })
}

/// Journaled step `step` of a site update: the instance's configuration leaves the server of
/// `from` and becomes `text` in the server of `to` (the same folder: rewritten in place). The
/// new file is written, checked by its server's test (a refused file is put back) and loaded
/// first; then the old one is removed and its server reloaded. Each file is one
/// [`Change::WebConfigIn`] naming its folder, so that its undo does not depend on the site
/// record, which the update changes.
pub(crate) fn move_config(
    journal: &mut Journal<'_>,
    step: &str,
    instance: &str,
    from: Option<&ConfigDir>,
    to: Option<&ConfigDir>,
    text: Option<&str>,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    let from = from.filter(|f| to.is_none_or(|t| t.dir != f.dir));
    let ctx = journal.context();
    journal.step(step, |j| {
        if let Some(dir) = to {
            let previous = dir.read(instance).map_err(web_error)?;
            reporter.step(&format!(
                "web server: serving the instance through `{}`",
                dir.file(instance).display()
            ));
            let change = Change::WebConfigIn {
                dir: dir.dir.clone(),
                reload: dir.reload.clone(),
                instance: instance.to_owned(),
                previous: previous.clone(),
            };
            j.change(change, || {
                let _lock = crate::lock::web_dir(ctx, &dir.dir)?;
                dir.put_checked(instance, text, previous.as_deref())
                    .and_then(|()| dir.reload())
                    .map_err(web_error)
            })?;
        }
        if let Some(dir) = from {
            let previous = dir.read(instance).map_err(web_error)?;
            reporter.step(&format!(
                "web server: removing `{}`",
                dir.file(instance).display()
            ));
            let change = Change::WebConfigIn {
                dir: dir.dir.clone(),
                reload: dir.reload.clone(),
                instance: instance.to_owned(),
                previous,
            };
            j.change(change, || {
                let _lock = crate::lock::web_dir(ctx, &dir.dir)?;
                dir.put(instance, None)
                    .and_then(|()| dir.reload())
                    .map_err(web_error)
            })?;
        }
        Ok(())
    })
}

/// Sets the instance's file in `dir` back to `previous` (`None`: removes it) and runs `reload`:
/// the undo of a [`Change::WebConfigIn`].
pub(crate) fn restore_in(
    ctx: &Context,
    dir: &Path,
    reload: Option<&str>,
    instance: &str,
    previous: Option<&str>,
) -> Result<(), Error> {
    let dir = ConfigDir {
        dir: dir.to_path_buf(),
        test: None,
        reload: reload.map(str::to_owned),
    };
    let _lock = crate::lock::web_dir(ctx, &dir.dir)?;
    dir.put(instance, previous)
        .and_then(|()| dir.reload())
        .map_err(web_error)
}

/// Sets the instance's file back to `previous` (`None`: removes it) and reloads: the undo of a
/// [`Change::WebConfig`], and the removal's last word on access.
pub(crate) fn restore(
    ctx: &Context,
    site: &str,
    instance: &str,
    previous: Option<&str>,
) -> Result<(), Error> {
    let site = ctx.store()?.sites().get(site)?;
    let Some(dir) = config_dir(&site) else {
        return Ok(());
    };
    let _lock = crate::lock::web_dir(ctx, &dir.dir)?;
    dir.put(instance, previous)
        .and_then(|()| dir.reload())
        .map_err(web_error)
}

/// A web server failure as an operation error.
fn web_error(e: host::WebError) -> Error {
    match e {
        host::WebError::Unsupported(why) => Error::Invalid(why),
        e => Error::Failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(meta: &str) -> Service {
        let parsed = aps_meta::parse::parse_app_meta(meta.as_bytes(), "APP-META.xml").unwrap();
        parsed.package.root_service().unwrap().clone()
    }

    fn site() -> Site {
        Site {
            name: "s".into(),
            docroot: "/srv/s".into(),
            url: "http://s.example/".into(),
            system_user: "u".into(),
            php: None,
            web: WebKind::Nginx,
            web_dir: Some("/etc/nginx/s".into()),
            web_reload: None,
            web_test: None,
            php_fastcgi: Some("unix:/run/php/s.sock".into()),
            created_at: aps_store::Timestamp::from_unix_millis(0),
        }
    }

    /// The corpus's `WordPress` 5.2.3 mapping: PHP everywhere, three writable folders.
    #[test]
    fn the_wordpress_mapping_runs_php_in_every_location() {
        let meta = fs_err::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/corpus/aps1/wordpress-5.2.3/APP-META.xml"
        ))
        .unwrap();
        let web = instance_web(&site(), "1", "blog", &service(&meta), &[]).unwrap();
        let urls: Vec<&str> = web.locations.iter().map(|l| l.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "/blog",
                "/blog/wp-content",
                "/blog/blogs/media",
                "/blog/tmp"
            ]
        );
        for l in &web.locations {
            assert_eq!(l.php, Php::Run(vec!["php".into()]), "{}", l.url);
            assert!(l.readable);
            assert_eq!(
                l.dir,
                Path::new("/srv/s").join(l.url.trim_start_matches('/'))
            );
        }
        let root = instance_web(&site(), "1", "", &service(&meta), &[]).unwrap();
        assert_eq!(root.locations[0].url, "/");
        assert_eq!(root.locations[1].url, "/wp-content");
        assert_eq!(root.locations[0].dir, Path::new("/srv/s"));
    }
}
