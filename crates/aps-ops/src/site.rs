//! Sites: the web sites apsctl installs instances on (CLI.md `site add/list/show/remove`; the
//! checks of `site update` are `revised`, its operation `site_update.rs`).
//!
//! Main decision: a site is registered once with everything an install needs to know about it —
//! its document root (whose tree is its URL structure), its public URL, the system user that owns
//! its files and runs its scripts, and its PHP — and apsctl checks all of it at registration, so
//! an install never discovers a broken site half-way.
//!
//! apsctl runs as root and acts inside document roots that belong to site users, who may be
//! hostile to each other. `site add` therefore refuses every site it could not later act on
//! safely ([`add`]):
//!
//! - the document root is an absolute path without `..`, and neither it nor any folder above it
//!   is a symbolic link (it is walked from `/` with `O_NOFOLLOW`, [`SafeDir::open_ancestry`], and
//!   stored exactly as given: nothing is resolved behind the administrator's back);
//! - it is a folder that exists (a missing one is refused input, naming the first missing folder);
//! - it is no system folder ([`SYSTEM_FOLDERS`]), lies in no system tree ([`SYSTEM_TREES`]) and
//!   neither contains nor lies inside apsctl's home;
//! - it neither equals, contains nor lies inside another site's document root (compared by path
//!   components), so no site's files are another's;
//! - its user is a login account (uid at least `UID_MIN` of `/etc/login.defs`, or
//!   `--min-site-uid`; never root) and owns it;
//! - nobody but root and the site's user can replace a folder on the way: every folder above it
//!   belongs to root or to the site's user and is writable by no one else (its group is root's or
//!   the user's private group, [`SystemUser::private_group`]). One exception keeps `/tmp` usable:
//!   a world-writable folder with the sticky bit is fine when the entry below it belongs to root
//!   or the site's user (the sticky bit stops others from renaming or removing that entry). The
//!   document root itself is writable by no one but its user (same group rule);
//! - its URL is `http(s)://host[:port]/`, written without spaces, control characters,
//!   percent-encoding in the host, a path (not even `%2e%2e`) or port 0 ([`SiteUrl::parse`]).
//!
//! Known gaps: the checks are a snapshot taken at registration; a site user may still replace a
//! folder it owns later, which is why the operations open document roots through descriptors
//! without following links. Access control lists, bind mounts (two paths naming one folder) and
//! other accounts sharing a user's primary group are not looked at. Two `site add` running at
//! the same moment can both pass the overlap check.
use std::path::{Component, Path, PathBuf};

use aps_host::safedir::{FolderInfo, SafeDir, SafeDirError};
use aps_host::user::{SystemUser, UserError};
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
    /// The command that runs the web server's own configuration test (exit 0: valid).
    pub web_test: Option<String>,
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
    /// Parses a site URL: `http(s)://host[:port]/` only, written out plainly. Refused: spaces
    /// and control characters anywhere (the URL parser would drop a newline silently),
    /// percent-encoding in the host, any path (also `%2e%2e` or `.` segments, which the parser
    /// would resolve to `/`), a query or fragment, credentials, and port 0.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let bad = |why: &str| {
            Error::Invalid(format!(
                "site URL `{}` is not usable: {why}",
                text.escape_debug()
            ))
        };
        if let Some(c) = text.chars().find(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad(&format!(
                "it contains {c:?}; a site URL has no spaces or control characters"
            )));
        }
        let url = url::Url::parse(text).map_err(|e| bad(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("the scheme must be http or https"));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("it has no host"))?;
        // The text itself, not only the parser's view of it: the parser resolves `%2e%2e` and
        // `\` in paths, and decodes percent-encoded hosts.
        let (authority, tail) = text
            .split_once("://")
            .map(|(_, rest)| rest.split_at(rest.find(['/', '\\', '?', '#']).unwrap_or(rest.len())))
            .ok_or_else(|| bad("write it as scheme://host[:port]/"))?;
        if url.path() != "/"
            || !matches!(tail, "" | "/")
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(bad(
                "a site URL has no path, query or fragment (instances get their path from --path)",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() || authority.contains('@') {
            return Err(bad("it must not carry credentials"));
        }
        if authority.contains('%') {
            return Err(bad("its host must be written without percent-encoding"));
        }
        if url.port() == Some(0) {
            return Err(bad("port 0 is not a port a site can be reached on"));
        }
        // D5: the host as configured; the URL parser turns internationalised names into
        // punycode, so a name is taken from the text itself (addresses keep the parser's form).
        let host = match url.host() {
            Some(url::Host::Domain(_)) => authority
                .split(':')
                .next()
                .filter(|h| !h.is_empty())
                .unwrap_or(host),
            _ => host,
        };
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

/// Folders that are never a document root themselves: the file-system root, the system's own
/// folders, and the parents under which sites, users and temporary files usually live (a site
/// there would contain every other one).
pub const SYSTEM_FOLDERS: &[&str] = &[
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/lost+found",
    "/media",
    "/mnt",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/snap",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/var",
    "/var/backups",
    "/var/cache",
    "/var/lib",
    "/var/local",
    "/var/lock",
    "/var/log",
    "/var/mail",
    "/var/opt",
    "/var/run",
    "/var/spool",
    "/var/tmp",
];

/// Folders nothing inside which is a document root: the system's programs, configuration,
/// kernel interfaces, root's home and the state of system services (apsctl's default home
/// `/var/lib/apsctl` among them). Every top-level folder whose name starts with `lib` counts too.
pub const SYSTEM_TREES: &[&str] = &[
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/sys",
    "/usr",
    "/var/backups",
    "/var/cache",
    "/var/lib",
    "/var/log",
    "/var/mail",
    "/var/spool",
];

/// Registers a site after checking its document root, URL, user and PHP (the rules are in the
/// module documentation). Refusals are [`Error::Invalid`] (exit 2), except an overlap with
/// another site, which is [`Error::Conflict`] (exit 4).
pub fn add(ctx: &Context, opts: &SiteOptions) -> Result<SiteView, Error> {
    check_name(&opts.name, "site")?;
    SiteUrl::parse(&opts.url)?;
    let docroot = plain_docroot(&opts.docroot)?;
    check_not_system(&docroot)?;
    check_apart_from_home(ctx, &docroot)?;
    check_no_overlap(ctx, &docroot)?;
    let chain = open_docroot(&docroot)?;
    // The walk hands back every folder from `/`; the last one is the document root itself.
    let root_info = chain
        .last()
        .ok_or_else(|| {
            Error::Invalid(format!(
                "document root `{}` cannot be used",
                docroot.display()
            ))
        })?
        .info()?;
    let user = match &opts.user {
        Some(name) => SystemUser::lookup(name).map_err(|e| Error::Invalid(e.to_string()))?,
        None => owner_of(&docroot, root_info.uid)?,
    };
    user.ensure_login_account(min_site_uid(ctx)?)
        .map_err(|e| Error::Invalid(format!("site `{}`: {e}", opts.name)))?;
    if root_info.uid != user.uid() {
        return Err(Error::Invalid(format!(
            "document root `{}` belongs to {}, not to the site's user `{}`: give the folder to `{}` or choose one of its own",
            docroot.display(),
            describe_user(root_info.uid),
            user.name(),
            user.name()
        )));
    }
    check_writers(&docroot, &chain, &user)?;
    let php = crate::runtime::resolve_php(ctx, opts.php.as_deref(), &user)?;
    check_web(opts)?;
    let site = Site {
        name: opts.name.clone(),
        docroot,
        url: stored_url(&opts.url),
        system_user: user.name().to_owned(),
        php,
        web: opts.web,
        web_dir: opts.web_dir.clone(),
        web_reload: opts.web_reload.clone(),
        web_test: opts.web_test.clone(),
        php_fastcgi: opts.php_fastcgi.clone(),
        created_at: crate::now(ctx),
    };
    ctx.store()?.sites().insert(&site)?;
    Ok(site.into())
}

/// The URL as stored: with one trailing `/`.
fn stored_url(url: &str) -> String {
    url.trim_end_matches('/').to_owned() + "/"
}

/// The site `old` with the changes of `site update`, checked by the rules of [`add`] for the
/// fields that change: the URL ([`SiteUrl::parse`]), the PHP CLI (resolved and run as the site's
/// user) and the web server options ([`check_web`] on the values that result). A new `--web`
/// kind starts the other web server options afresh (the old server's folder, test and reload
/// are not the new one's); otherwise each option not given keeps its value. The PHP-FPM address
/// belongs to PHP, not to the server: it is kept unless given.
pub(crate) fn revised(
    ctx: &Context,
    old: &Site,
    change: &crate::site_update::UpdateOptions,
) -> Result<Site, Error> {
    let url = match &change.url {
        Some(url) => {
            SiteUrl::parse(url)?;
            stored_url(url)
        }
        None => old.url.clone(),
    };
    let php = match &change.php {
        Some(php) => {
            let user = SystemUser::lookup(&old.system_user)
                .map_err(|e| Error::Invalid(format!("site `{}`: {e}", old.name)));
            crate::runtime::resolve_php(ctx, Some(php), &user?)?
        }
        None => old.php.clone(),
    };
    let web = change.web.unwrap_or(old.web);
    let afresh = web != old.web;
    let site = Site {
        url,
        php,
        web,
        web_dir: kept(change.web_dir.as_ref(), old.web_dir.as_ref(), afresh),
        web_reload: kept(change.web_reload.as_ref(), old.web_reload.as_ref(), afresh),
        web_test: kept(change.web_test.as_ref(), old.web_test.as_ref(), afresh),
        php_fastcgi: change
            .php_fastcgi
            .clone()
            .or_else(|| old.php_fastcgi.clone()),
        ..old.clone()
    };
    check_web(&SiteOptions {
        name: site.name.clone(),
        docroot: site.docroot.clone(),
        url: site.url.clone(),
        user: Some(site.system_user.clone()),
        php: site.php.clone(),
        web: site.web,
        web_dir: site.web_dir.clone(),
        web_reload: site.web_reload.clone(),
        web_test: site.web_test.clone(),
        php_fastcgi: site.php_fastcgi.clone(),
    })?;
    Ok(site)
}

/// The value `given`, else (unless the web server starts `afresh`) the one the site `had`.
fn kept<T: Clone>(given: Option<&T>, had: Option<&T>, afresh: bool) -> Option<T> {
    given.or(if afresh { None } else { had }).cloned()
}

/// The web server options of `site add`: a web server needs its include folder, which must be
/// root's and writable by root alone (the server loads what is in it as root), outside every
/// document root; the PHP-FPM address must be `unix:/absolute/path` or `host:port`.
fn check_web(opts: &SiteOptions) -> Result<(), Error> {
    if let Some(addr) = &opts.php_fastcgi {
        aps_host::web::FastCgi::parse(addr)
            .map_err(|e| Error::Invalid(format!("--php-fastcgi: {e}")))?;
    }
    if opts.web == WebKind::None {
        for (flag, given) in [
            ("--web-dir", opts.web_dir.is_some()),
            ("--web-reload", opts.web_reload.is_some()),
            ("--web-test", opts.web_test.is_some()),
        ] {
            if given {
                return Err(Error::Invalid(format!(
                    "`{flag}` needs `--web nginx` or `--web apache`"
                )));
            }
        }
        return Ok(());
    }
    let Some(dir) = &opts.web_dir else {
        return Err(Error::Invalid(format!(
            "`--web {}` needs `--web-dir`",
            opts.web.as_str()
        )));
    };
    aps_host::web::check_config_dir(dir).map_err(|e| Error::Invalid(format!("--web-dir: {e}")))
}

/// The document root as given, absolute and without `..` (`.` and repeated `/` dropped).
fn plain_docroot(docroot: &Path) -> Result<PathBuf, Error> {
    if !docroot.is_absolute() {
        return Err(Error::Invalid(format!(
            "document root `{}` must be an absolute path",
            docroot.display()
        )));
    }
    if docroot.components().any(|c| c == Component::ParentDir) {
        return Err(Error::Invalid(format!(
            "document root `{}` must not contain `..`: give the folder's own path",
            docroot.display()
        )));
    }
    Ok(docroot.components().collect())
}

/// Refuses the folders of [`SYSTEM_FOLDERS`] and anything in [`SYSTEM_TREES`].
fn check_not_system(docroot: &Path) -> Result<(), Error> {
    if SYSTEM_FOLDERS.iter().any(|f| docroot == Path::new(f)) {
        return Err(Error::Invalid(format!(
            "document root `{}` is a system folder; choose a folder of the site's own",
            docroot.display()
        )));
    }
    let lib_tree = docroot.components().nth(1).and_then(|top| match top {
        Component::Normal(name) if name.to_string_lossy().starts_with("lib") => {
            Some(Path::new("/").join(name))
        }
        _ => None,
    });
    let tree = SYSTEM_TREES
        .iter()
        .map(PathBuf::from)
        .chain(lib_tree)
        .find(|tree| docroot.starts_with(tree));
    if let Some(tree) = tree {
        return Err(Error::Invalid(format!(
            "document root `{}` lies inside the system folder `{}`; choose a folder of the site's own",
            docroot.display(),
            tree.display()
        )));
    }
    Ok(())
}

/// Refuses a document root that is, contains or lies inside apsctl's home.
fn check_apart_from_home(ctx: &Context, docroot: &Path) -> Result<(), Error> {
    let home = ctx.home.root();
    let real = fs_err::canonicalize(home).ok();
    for home in std::iter::once(home.to_path_buf()).chain(real) {
        if docroot.starts_with(&home) || home.starts_with(docroot) {
            return Err(Error::Invalid(format!(
                "document root `{}` overlaps apsctl's home `{}`; a site's files and apsctl's own must stay apart",
                docroot.display(),
                home.display()
            )));
        }
    }
    Ok(())
}

/// Refuses a document root that equals, contains or lies inside another site's (by components).
fn check_no_overlap(ctx: &Context, docroot: &Path) -> Result<(), Error> {
    for other in ctx.store()?.sites().list()? {
        let theirs = &other.docroot;
        let how = if theirs.as_path() == docroot {
            String::from("is already the document root")
        } else if docroot.starts_with(theirs) {
            format!("lies inside the document root `{}`", theirs.display())
        } else if theirs.starts_with(docroot) {
            format!("contains the document root `{}`", theirs.display())
        } else {
            continue;
        };
        return Err(Error::Conflict(format!(
            "document root `{}` {how} of site `{}`; sites must not share files",
            docroot.display(),
            other.name
        )));
    }
    Ok(())
}

/// Opens every folder from `/` to the document root without following a link.
fn open_docroot(docroot: &Path) -> Result<Vec<SafeDir>, Error> {
    SafeDir::open_ancestry(docroot).map_err(|e| refuse_open(docroot, e))
}

fn refuse_open(docroot: &Path, e: SafeDirError) -> Error {
    let (root, at) = (docroot.display(), e.path.display());
    if e.is_link() {
        Error::Invalid(format!(
            "document root `{root}` is not safe: `{at}` is a symbolic link, and apsctl follows no link on the way to a document root; register the real folder"
        ))
    } else if e.is_not_found() {
        Error::Invalid(format!(
            "document root `{root}` does not exist: there is no folder `{at}`"
        ))
    } else if e.source.kind() == std::io::ErrorKind::NotADirectory {
        Error::Invalid(format!(
            "document root `{root}` is not a folder: `{at}` is not a directory"
        ))
    } else {
        e.into()
    }
}

/// Refuses a document root that someone besides root and the site's user could replace or
/// write to (see the module documentation for the rule).
fn check_writers(docroot: &Path, chain: &[SafeDir], user: &SystemUser) -> Result<(), Error> {
    let own_group = user
        .private_group()
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let trusted_owner = |uid: u32| uid == 0 || uid == user.uid();
    let trusted_group = |gid: u32| gid == 0 || Some(gid) == own_group;
    let infos = chain
        .iter()
        .map(|d| d.info().map(|i| (d.path(), i)))
        .collect::<Result<Vec<(&Path, FolderInfo)>, _>>()?;
    let refuse = |dir: &Path, why: String| {
        let what = if dir == docroot {
            format!("document root `{}`", docroot.display())
        } else {
            format!(
                "folder `{}` above document root `{}`",
                dir.display(),
                docroot.display()
            )
        };
        Err(Error::Invalid(format!(
            "{what} {why}, who could replace the site's files; only root and the site's user `{}` may write on the way to a site",
            user.name()
        )))
    };
    for (i, (dir, info)) in infos.iter().enumerate() {
        let below = infos.get(i + 1);
        if !trusted_owner(info.uid) {
            return refuse(dir, format!("belongs to {}", describe_user(info.uid)));
        }
        if info.mode & 0o020 != 0 && !trusted_group(info.gid) {
            return refuse(
                dir,
                format!(
                    "is writable by group {} (mode {:o})",
                    describe_group(info.gid),
                    info.mode
                ),
            );
        }
        if info.mode & 0o002 != 0 {
            // Sticky: others may add entries but not rename or remove the one below.
            let why = match below {
                _ if info.mode & 0o1000 == 0 => {
                    format!("is writable by everyone (mode {:o})", info.mode)
                }
                Some((next, next_info)) if !trusted_owner(next_info.uid) => format!(
                    "is writable by everyone (mode {:o}) and `{}` below it belongs to {}",
                    info.mode,
                    next.display(),
                    describe_user(next_info.uid)
                ),
                None => format!("is writable by everyone (mode {:o})", info.mode),
                // Sticky: others may add entries but not rename or remove the one below.
                Some(_) => continue,
            };
            return refuse(dir, why);
        }
    }
    Ok(())
}

/// The start of the login range: `--min-site-uid`, else `UID_MIN` of `/etc/login.defs`.
fn min_site_uid(ctx: &Context) -> Result<u32, Error> {
    if let Some(uid) = ctx.config.min_site_uid {
        return Ok(uid);
    }
    aps_host::user::login_uid_min(Path::new(aps_host::user::LOGIN_DEFS)).map_err(|e| match e {
        UserError::ReadLoginDefs { path, source } => Error::io(&path, source),
        other => Error::Invalid(other.to_string()),
    })
}

fn describe_user(uid: u32) -> String {
    aps_host::user::user_name(uid).map_or_else(|| format!("uid {uid}"), |n| format!("`{n}`"))
}

fn describe_group(gid: u32) -> String {
    aps_host::user::group_name(gid).map_or_else(|| format!("gid {gid}"), |n| format!("`{n}`"))
}

fn owner_of(docroot: &Path, uid: u32) -> Result<SystemUser, Error> {
    SystemUser::by_uid(uid).map_err(|e| {
        Error::Invalid(format!(
            "cannot tell the system user of document root `{}` ({e}); give --user",
            docroot.display()
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

    #[test]
    fn issue_7_site_urls_with_hidden_parts_are_refused() {
        for (bad, why) in [
            ("http://a.example\n.evil/", "'\\n'"),
            ("http://a.exa\tmple/", "'\\t'"),
            ("http://a.example/\n", "'\\n'"),
            (" http://a.example/", "' '"),
            ("http://a.example/\u{7f}", "control"),
            ("http://a.example/%2e%2e/", "no path"),
            ("http://a.example/%2E%2E", "no path"),
            ("http://a.example/./", "no path"),
            ("http://a.example\\..\\", "no path"),
            ("http://a.example:0/", "port 0"),
            ("http://%61.example/", "percent-encoding"),
            ("http:a.example/", "scheme://host"),
        ] {
            let err = SiteUrl::parse(bad).expect_err(bad).to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
            assert!(
                !err.contains('\n'),
                "the message stays on one line: {err:?}"
            );
        }
        assert_eq!(
            SiteUrl::parse("http://a.example:8080/").unwrap().port,
            Some(8080)
        );
    }

    #[test]
    fn issue_7_system_folders_are_no_document_roots() {
        for bad in [
            "/",
            "/etc",
            "/usr",
            "/bin",
            "/sbin",
            "/lib",
            "/lib64",
            "/boot",
            "/dev",
            "/proc",
            "/sys",
            "/run",
            "/var/lib",
            "/var/log",
            "/var/spool",
            "/var/cache",
            "/root",
            "/tmp",
            "/var/tmp",
            "/home",
            "/var",
        ] {
            let err = check_not_system(Path::new(bad)).expect_err(bad).to_string();
            assert!(
                err.contains(&format!("`{bad}` is a system folder")),
                "{err}"
            );
        }
        for (bad, tree) in [
            ("/etc/nginx/html", "/etc"),
            ("/usr/share/nginx/html", "/usr"),
            ("/var/lib/apsctl/www", "/var/lib"),
            ("/dev/shm/site", "/dev"),
            ("/proc/1/cwd", "/proc"),
            ("/sys/x", "/sys"),
            ("/boot/efi", "/boot"),
            ("/libexec/x", "/libexec"),
            ("/root/site", "/root"),
        ] {
            let err = check_not_system(Path::new(bad)).expect_err(bad).to_string();
            assert!(
                err.contains(&format!("inside the system folder `{tree}`")),
                "{err}"
            );
        }
        for good in [
            "/var/www/html",
            "/home/u1/domains/a.example/public_html",
            "/tmp/site",
            "/srv/www/a",
            "/var/tmp/x",
            "/etcetera/site",
        ] {
            check_not_system(Path::new(good)).expect(good);
        }
    }

    #[test]
    fn issue_7_document_roots_are_plain_absolute_paths() {
        assert_eq!(
            plain_docroot(Path::new("/srv//www/./a/")).unwrap(),
            Path::new("/srv/www/a")
        );
        let err = plain_docroot(Path::new("/home/u1/../u2/www")).unwrap_err();
        assert!(err.to_string().contains("`..`"), "{err}");
        assert!(plain_docroot(Path::new("www")).is_err());
    }
}
