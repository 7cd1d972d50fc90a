//! Sites: the web sites apsctl installs instances on (CLI.md `site add/list/show/remove`).
//!
//! Main decision: a site is registered once with everything an install needs to know about it —
//! its document root (whose tree is its URL structure), its public URL, the system user that owns
//! its files and runs its scripts, and its PHP — and apsctl checks all of it at registration, so
//! an install never discovers a broken site half-way.
use std::path::{Path, PathBuf};

use aps_host::user::SystemUser;
use aps_store::sites::Site;
pub use aps_store::sites::WebKind;
use serde::Serialize;

use crate::context::Context;
use crate::error::Error;

/// What `site add` needs.
#[derive(Debug, Clone)]
pub struct SiteOptions {
    /// The site's name in apsctl.
    pub name: String,
    /// The document root.
    pub docroot: PathBuf,
    /// The public URL (`http://host[:port]/`).
    pub url: String,
    /// The system user owning the site; default: the owner of the document root.
    pub user: Option<String>,
    /// The PHP CLI of the site; default: `php` from `PATH`.
    pub php: Option<PathBuf>,
    /// How the site's web server is configured.
    pub web: WebKind,
    /// The folder the site's server block / virtual host includes (`*.conf`).
    pub web_dir: Option<PathBuf>,
    /// The command that makes the web server reload.
    pub web_reload: Option<String>,
    /// Where PHP-FPM listens for this site.
    pub php_fastcgi: Option<String>,
}

/// A site as shown by `site list/show`.
#[derive(Debug, Clone, Serialize)]
pub struct SiteView {
    /// Name.
    pub name: String,
    /// Document root.
    pub docroot: PathBuf,
    /// Public URL.
    pub url: String,
    /// System user.
    pub user: String,
    /// PHP CLI.
    pub php: Option<PathBuf>,
    /// Web server kind.
    pub web: String,
    /// Web server include folder.
    pub web_dir: Option<PathBuf>,
}

impl From<Site> for SiteView {
    fn from(s: Site) -> Self {
        Self {
            name: s.name,
            docroot: s.docroot,
            url: s.url,
            user: s.system_user,
            php: s.php,
            web: s.web.as_str().to_owned(),
            web_dir: s.web_dir,
        }
    }
}

/// The parts of a site's URL the scripts see (D5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteUrl {
    /// `http` or `https`.
    pub scheme: String,
    /// Host name as configured.
    pub host: String,
    /// Port, `None` when it is the scheme's default.
    pub port: Option<u16>,
}

impl SiteUrl {
    /// Parses a site URL; only `http`/`https` with a host and no path, query or credentials.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::Invalid(format!("site URL `{text}` is not usable: {why}"));
        let url = url::Url::parse(text).map_err(|e| bad(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("the scheme must be http or https"));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("it has no host"))?;
        // D5: the host as configured; the URL parser turns internationalised names into
        // punycode, so a name is taken from the text itself (addresses keep the parser's form).
        let host = match url.host() {
            Some(url::Host::Domain(_)) => text
                .split_once("://")
                .and_then(|(_, rest)| rest.split(['/', ':', '?', '#']).next())
                .filter(|h| !h.is_empty())
                .unwrap_or(host),
            _ => host,
        };
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(bad(
                "a site URL has no path, query or fragment (instances get their path from --path)",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("it must not carry credentials"));
        }
        Ok(Self {
            scheme: url.scheme().to_owned(),
            host: host.to_owned(),
            port: url.port(),
        })
    }

    /// The URL of an instance at `prefix` (no leading or trailing slash; empty for the root).
    pub fn instance_url(&self, prefix: &str) -> String {
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        let path = if prefix.is_empty() {
            "/".to_owned()
        } else {
            format!("/{prefix}/")
        };
        format!("{}://{}{port}{path}", self.scheme, self.host)
    }
}

/// Registers a site after checking its document root, URL, user and PHP.
pub fn add(ctx: &Context, opts: &SiteOptions) -> Result<SiteView, Error> {
    check_name(&opts.name, "site")?;
    let docroot = &opts.docroot;
    if !docroot.is_absolute() {
        return Err(Error::Invalid(format!(
            "document root `{}` must be an absolute path",
            docroot.display()
        )));
    }
    let meta = fs_err::metadata(docroot)?;
    if !meta.is_dir() {
        return Err(Error::Invalid(format!(
            "document root `{}` is not a directory",
            docroot.display()
        )));
    }
    let docroot = fs_err::canonicalize(docroot)?;
    if docroot == Path::new("/") {
        return Err(Error::Invalid("the document root cannot be `/`".into()));
    }
    SiteUrl::parse(&opts.url)?;
    let user = match &opts.user {
        Some(name) => SystemUser::lookup(name).map_err(|e| Error::Invalid(e.to_string()))?,
        None => owner_of(&docroot)?,
    };
    user.ensure_not_root()
        .map_err(|e| Error::Invalid(format!("site `{}`: {e}", opts.name)))?;
    let php = crate::runtime::resolve_php(ctx, opts.php.as_deref(), &user)?;
    if opts.web != WebKind::None && opts.web_dir.is_none() {
        return Err(Error::Invalid(format!(
            "`--web {}` needs `--web-dir`",
            opts.web.as_str()
        )));
    }
    let site = Site {
        name: opts.name.clone(),
        docroot,
        url: opts.url.trim_end_matches('/').to_owned() + "/",
        system_user: user.name().to_owned(),
        php,
        web: opts.web,
        web_dir: opts.web_dir.clone(),
        web_reload: opts.web_reload.clone(),
        php_fastcgi: opts.php_fastcgi.clone(),
        created_at: crate::now(ctx),
    };
    ctx.store()?.sites().insert(&site)?;
    Ok(site.into())
}

fn owner_of(dir: &Path) -> Result<SystemUser, Error> {
    use std::os::unix::fs::MetadataExt;
    let uid = fs_err::metadata(dir)?.uid();
    SystemUser::by_uid(uid).map_err(|e| {
        Error::Invalid(format!(
            "cannot tell the system user of `{}` ({e}); give --user",
            dir.display()
        ))
    })
}

/// Names of sites and servers: letters, digits, `.`, `_`, `-`, starting with a letter or digit.
pub(crate) fn check_name(name: &str, what: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{what} name `{name}` is not valid: use up to 64 letters, digits, `.`, `_` or `-`, starting with a letter or digit"
        )))
    }
}

/// Every registered site.
pub fn list(ctx: &Context) -> Result<Vec<SiteView>, Error> {
    Ok(ctx
        .store()?
        .sites()
        .list()?
        .into_iter()
        .map(SiteView::from)
        .collect())
}

/// One site.
pub fn show(ctx: &Context, name: &str) -> Result<SiteView, Error> {
    Ok(ctx.store()?.sites().get(name)?.into())
}

/// Forgets a site; refused while instances live on it.
pub fn remove(ctx: &Context, name: &str) -> Result<SiteView, Error> {
    let site = ctx.store()?.sites().get(name)?;
    ctx.store()?.sites().delete(name)?;
    Ok(site.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_urls_keep_the_host_as_configured() {
        let url = SiteUrl::parse("https://bücher.example:8443/").unwrap();
        assert_eq!(
            (url.scheme.as_str(), url.host.as_str(), url.port),
            ("https", "bücher.example", Some(8443))
        );
        assert_eq!(
            url.instance_url("blog"),
            "https://bücher.example:8443/blog/"
        );
        let url = SiteUrl::parse("http://Example.COM/").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("Example.COM", None));
        assert_eq!(url.instance_url(""), "http://Example.COM/");
        assert_eq!(
            SiteUrl::parse("https://example.com:443").unwrap().port,
            None,
            "default port is empty (D5)"
        );
        assert_eq!(SiteUrl::parse("http://[::1]:8080/").unwrap().host, "[::1]");
    }

    #[test]
    fn unusable_site_urls_are_refused() {
        for bad in [
            "ftp://example.com/",
            "https://example.com/blog/",
            "https://u:p@example.com/",
            "example.com",
            "http:///",
        ] {
            assert!(SiteUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
