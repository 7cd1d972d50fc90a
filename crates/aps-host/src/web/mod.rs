//! Web server adapters: the configuration apsctl writes so that a site's web server serves an
//! instance (URL paths, PHP through PHP-FPM, access states), and the commands that check and
//! load it.
//!
//! Main decisions:
//! - One [`Adapter`] trait with three implementations: [`NoServer`] (`--web none`: the site's
//!   server already serves the document root and is not touched; access falls back to folder
//!   permissions), [`nginx::Nginx`] and [`apache::Apache`]. An adapter only renders text from an
//!   [`InstanceWeb`]; [`ConfigDir`] writes it, runs the server's own configuration test and its
//!   reload. `aps-ops` journals each of those steps.
//! - One file per instance, `<web-dir>/apsctl-instance-<id>.conf`, root's, mode 0644, written
//!   through a temporary file (`.apsctl-….tmp`, which a `*.conf` include never loads) and a
//!   rename, so that a reload sees the old file or the new one, never half of one.
//! - Everything that reaches a configuration file comes from packages or tenants, so it is
//!   checked, never escaped: paths and URL paths must be made of [`SAFE_PATH`] characters, file
//!   extensions and PHP values of letters, digits and a few marks. A value outside them is
//!   refused naming it (nginx and Apache each have their own quoting and variable rules; a
//!   character set both treat as plain text is the only rule that cannot be got wrong).
//! - Disabled access answers 503 for every URL of the instance; PHP is executed only for the
//!   declared extensions below the mappings that enable it; below `php:disabled` files with
//!   PHP-like extensions are refused (403), neither executed nor downloaded as source.
//!
//! Known gaps: a reload is a signal — nginx and Apache apply it asynchronously, within
//! milliseconds, and apsctl does not probe the site to see the new configuration answer. PHP
//! values set per instance go through the `FastCGI` parameter `PHP_VALUE`; PHP-FPM is known to
//! let such a value outlive its request in the worker that served it (PHP bug 51983), so on a
//! pool shared by several instances of one site an instance's raised value may be seen by
//! another's request. A pool serves one site (one tenant), so nothing crosses tenants.

pub mod apache;
pub mod nginx;

use std::fmt::Write as _;
use std::io::{Read as _, Seek as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The characters a path or URL path may have to be written into a web server configuration.
pub const SAFE_PATH: &str = "letters, digits and `/._-~+@,=`";

/// The first line of every file apsctl writes; what proves a file apsctl's before it is replaced
/// or deleted.
const HEADER: &str = "# Written by apsctl for instance ";

/// How long a configuration test or a reload may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Most output of a test or reload command kept for a message.
const OUTPUT_KEEP: u64 = 4096;

/// Why a web server step failed.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// A value from the package, the site or the instance cannot be written into a configuration.
    #[error("{0}")]
    Unsupported(String),
    /// The server's own configuration test refused the configuration.
    #[error("the web server refused the configuration (`{command}` {status}): {output}")]
    Rejected {
        /// The test command.
        command: String,
        /// How it ended.
        status: String,
        /// What it printed (stdout and stderr).
        output: String,
    },
    /// The reload command failed.
    #[error("reloading the web server failed (`{command}` {status}): {output}")]
    Reload {
        /// The reload command.
        command: String,
        /// How it ended.
        status: String,
        /// What it printed.
        output: String,
    },
    /// A file of the configuration folder could not be read or written.
    #[error("{action} `{}`: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file that should be apsctl's is not (its first line is not apsctl's).
    #[error("`{}` was not written by apsctl for instance {instance}; it is left as it is", path.display())]
    NotOurs {
        /// The file.
        path: PathBuf,
        /// The instance it should belong to.
        instance: String,
    },
}

/// Where PHP-FPM listens (`--php-fastcgi`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FastCgi {
    /// A unix socket.
    Unix(PathBuf),
    /// A TCP `host:port`.
    Tcp(String),
}

impl FastCgi {
    /// Reads `unix:/absolute/path` or `host:port`.
    pub fn parse(addr: &str) -> Result<Self, WebError> {
        let bad = |why: &str| {
            WebError::Unsupported(format!(
                "PHP-FPM address `{addr}` {why}; give `unix:/absolute/path` or `host:port`"
            ))
        };
        if let Some(path) = addr.strip_prefix("unix:") {
            if !path.starts_with('/') {
                return Err(bad("is not an absolute socket path"));
            }
            check_path(path, "PHP-FPM socket")
                .map_err(|_| bad(&format!("may hold only {SAFE_PATH}")))?;
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad("has no port"))?;
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-[]:".contains(&b));
        if !host_ok || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(bad("is not a valid host and port"));
        }
        Ok(Self::Tcp(addr.to_owned()))
    }
}

/// Whether PHP runs in a part of the instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Php {
    /// Files with these extensions (without the dot) run through PHP-FPM.
    Run(Vec<String>),
    /// PHP is off (`php:disabled`, or no handler anywhere above).
    Off,
}

/// One URL path of an instance (a mapping of its package, with what it inherited resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Its URL path from the site root, without trailing slash; `/` for the site root.
    pub url: String,
    /// The folder it is served from (the document root joined with `url`).
    pub dir: PathBuf,
    /// Whether PHP runs there.
    pub php: Php,
    /// `php:permissions readable="false"`: the web server refuses every request below it.
    pub readable: bool,
}

/// What a web server needs to serve one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceWeb {
    /// The instance id (names the configuration file).
    pub instance: String,
    /// The site's document root (every location's folder is below it).
    pub docroot: PathBuf,
    /// The instance's locations, the instance root first, parents before children.
    pub locations: Vec<Location>,
    /// Where the site's PHP-FPM listens; needed when a location runs PHP.
    pub fastcgi: Option<FastCgi>,
    /// PHP settings for this instance only (`memory_limit` → `256M`).
    pub php_values: Vec<(String, String)>,
    /// `apache:htaccess`: `.htaccess` files are honoured in the instance's folders.
    pub htaccess: bool,
    /// `apache:required-module` names (`mod_rewrite`).
    pub modules: Vec<String>,
}

/// What the web server does with an instance's URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Served by its mapping.
    Enabled,
    /// Every URL answers 503 (during a removal, while disabled).
    Disabled,
}

/// Renders the configuration of one instance for one kind of web server.
pub trait Adapter {
    /// The server's name as `site add --web` spells it.
    fn name(&self) -> &'static str;

    /// The configuration file's text, or `None` for a server apsctl does not configure.
    fn render(&self, web: &InstanceWeb, access: Access) -> Result<Option<String>, WebError>;
}

/// `--web none`: nothing is written; the site's own server configuration serves the files.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoServer;

impl Adapter for NoServer {
    fn name(&self) -> &'static str {
        "none"
    }

    fn render(&self, _: &InstanceWeb, _: Access) -> Result<Option<String>, WebError> {
        Ok(None)
    }
}

/// The adapter for `site add --web NAME`.
pub fn adapter(name: &str) -> Option<&'static dyn Adapter> {
    match name {
        "none" => Some(&NoServer),
        "nginx" => Some(&nginx::Nginx),
        "apache" => Some(&apache::Apache),
        _ => None,
    }
}

/// The checks every adapter makes before rendering: safe paths, PHP-FPM where PHP runs, safe
/// extensions and values.
pub(crate) fn check(web: &InstanceWeb) -> Result<(), WebError> {
    check_path(&web.docroot.to_string_lossy(), "document root")?;
    for location in &web.locations {
        check_path(&location.url, "URL path")?;
        check_path(&location.dir.to_string_lossy(), "folder")?;
        if let Php::Run(extensions) = &location.php {
            if web.fastcgi.is_none() {
                return Err(WebError::Unsupported(format!(
                    "URL path `{}` runs PHP, but the site has no PHP-FPM address: register it with `--php-fastcgi`",
                    location.url
                )));
            }
            for ext in extensions {
                if ext.is_empty()
                    || ext.len() > 16
                    || !ext.bytes().all(|b| b.is_ascii_alphanumeric())
                {
                    return Err(WebError::Unsupported(format!(
                        "PHP handler extension `{ext}` of URL path `{}` is not made of letters and digits",
                        location.url
                    )));
                }
            }
        }
    }
    for (name, value) in &web.php_values {
        let plain = |s: &str, extra: &[u8]| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
        };
        if !plain(name, b"._") || !plain(value, b".-_") {
            return Err(WebError::Unsupported(format!(
                "PHP setting `{name}` = `{value}` cannot be set per instance (only letters, digits and `.-_`)"
            )));
        }
    }
    for module in &web.modules {
        if !module.starts_with("mod_")
            || !module[4..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(WebError::Unsupported(format!(
                "Apache module `{module}` is not a module name of the form `mod_name`"
            )));
        }
    }
    Ok(())
}

/// Refuses a path outside [`SAFE_PATH`] (or with an empty, `.` or `..` component).
fn check_path(path: &str, what: &str) -> Result<(), WebError> {
    let safe = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-~+@,=".contains(&b))
        && !path.split('/').any(|c| c == "." || c == "..");
    if safe {
        Ok(())
    } else {
        Err(WebError::Unsupported(format!(
            "{what} `{path}` cannot be written into a web server configuration: it may hold only {SAFE_PATH}"
        )))
    }
}

/// `|ext` for every extension a location of the instance runs through PHP (refused as
/// PHP-like where PHP is off, besides the usual ones).
fn declared_extensions(web: &InstanceWeb) -> String {
    let mut all: Vec<&str> = web
        .locations
        .iter()
        .filter_map(|l| match &l.php {
            Php::Run(exts) => Some(exts.iter().map(String::as_str)),
            Php::Off => None,
        })
        .flatten()
        .collect();
    all.sort_unstable();
    all.dedup();
    all.iter().fold(String::new(), |mut out, e| {
        let _ = write!(out, "|{e}");
        out
    })
}

/// ` index.<ext>` for each extension: the index pages of a folder where PHP runs.
fn index_pages(extensions: &[String]) -> String {
    extensions.iter().fold(String::new(), |mut out, e| {
        let _ = write!(out, " index.{e}");
        out
    })
}

/// The instance's PHP settings as `name=value` lines joined by `separator` (what PHP-FPM reads
/// from `PHP_VALUE`, in each server's own quoting).
fn php_value_lines(web: &InstanceWeb, separator: &str) -> String {
    let lines: Vec<String> = web
        .php_values
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    lines.join(separator)
}

/// The header line of an instance's file (followed by a comment on what it is).
fn header(out: &mut String, instance: &str, access: Access) {
    let state = match access {
        Access::Enabled => "served by its URL mapping",
        Access::Disabled => "disabled: every URL answers 503",
    };
    let _ = writeln!(
        out,
        "{HEADER}{instance}\n# ({state}). apsctl rewrites and removes this file; do not edit it."
    );
}

/// The folder of `*.conf` files a site's server includes (`--web-dir`), with its test and reload
/// commands: where configurations are written, checked and loaded.
#[derive(Debug, Clone)]
pub struct ConfigDir {
    /// The folder.
    pub dir: PathBuf,
    /// The server's configuration test (`sh -c`, exit 0 = valid), when the site has one.
    pub test: Option<String>,
    /// The reload command (`sh -c`), when the site has one.
    pub reload: Option<String>,
}

/// Refuses a `--web-dir` that is missing, not a folder, a link, not root's, or writable by
/// anyone but root: the web server loads its files as root.
pub fn check_config_dir(dir: &Path) -> Result<(), WebError> {
    let shown = dir.display();
    if !dir.is_absolute() {
        return Err(WebError::Unsupported(format!(
            "`{shown}` must be an absolute path"
        )));
    }
    check_path(&dir.to_string_lossy(), "web server folder")?;
    let mut current = PathBuf::from("/");
    for part in dir.components().skip(1) {
        current.push(part);
        let meta = fs_err::symlink_metadata(&current).map_err(|e| {
            WebError::Unsupported(format!("`{}` cannot be read: {e}", current.display()))
        })?;
        if meta.file_type().is_symlink() {
            return Err(WebError::Unsupported(format!(
                "`{}` is a symbolic link; give the real folder",
                current.display()
            )));
        }
        // A sticky folder of root's (`/tmp`) lets nobody replace what root made in it.
        let sticky = meta.mode() & 0o1000 != 0 && current != dir;
        if meta.uid() != 0 || (meta.mode() & 0o022 != 0 && !sticky) {
            return Err(WebError::Unsupported(format!(
                "`{}` must belong to root and be writable by root alone: the web server loads the files of `{shown}` as root",
                current.display()
            )));
        }
    }
    if !fs_err::metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Err(WebError::Unsupported(format!("`{shown}` is not a folder")));
    }
    Ok(())
}

impl ConfigDir {
    /// The configuration file of `instance`.
    pub fn file(&self, instance: &str) -> PathBuf {
        self.dir.join(format!("apsctl-instance-{instance}.conf"))
    }

    /// The text of `instance`'s file, `None` when there is none.
    #[expect(
        clippy::disallowed_methods,
        reason = "`WebError::Io` names the path; a missing file is an answer, not an error"
    )]
    pub fn read(&self, instance: &str) -> Result<Option<String>, WebError> {
        let path = self.file(instance);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(WebError::Io {
                action: "cannot read",
                path,
                source,
            }),
        }
    }

    /// Sets `instance`'s file to `text` (`None`: no file), replacing or deleting only a file
    /// apsctl wrote for that instance.
    #[expect(
        clippy::disallowed_methods,
        reason = "`WebError::Io` names the path; a missing file is an answer, not an error"
    )]
    pub fn put(&self, instance: &str, text: Option<&str>) -> Result<(), WebError> {
        let path = self.file(instance);
        if let Some(current) = self.read(instance)? {
            if !current.starts_with(&format!("{HEADER}{instance}\n")) {
                return Err(WebError::NotOurs {
                    path,
                    instance: instance.to_owned(),
                });
            }
        }
        let io = |action, path: &Path| {
            let path = path.to_owned();
            move |source| WebError::Io {
                action,
                path,
                source,
            }
        };
        let temp = self
            .dir
            .join(format!(".apsctl-instance-{instance}.conf.tmp"));
        let Some(text) = text else {
            // Also what a crash between writing and renaming left.
            let _ = std::fs::remove_file(&temp);
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(io("cannot remove", &path)(e))
                }
                _ => Ok(()),
            };
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temp)
            .map_err(io("cannot write", &temp))?;
        file.set_permissions(std::fs::Permissions::from_mode(0o644))
            .and_then(|()| file.write_all(text.as_bytes()))
            .and_then(|()| file.sync_all())
            .map_err(io("cannot write", &temp))?;
        aps_failpoint::hit("web-config-written")
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|()| std::fs::rename(&temp, &path))
            .map_err(io("cannot rename into", &path))
    }

    /// Runs the server's configuration test, when the site has one.
    pub fn test(&self) -> Result<(), WebError> {
        let Some(command) = &self.test else {
            return Ok(());
        };
        let (status, output) = run_admin(command)?;
        if status.as_deref() == Some("0") {
            Ok(())
        } else {
            Err(WebError::Rejected {
                command: command.clone(),
                status: describe(status.as_deref()),
                output,
            })
        }
    }

    /// Runs the reload command, when the site has one.
    pub fn reload(&self) -> Result<(), WebError> {
        let Some(command) = &self.reload else {
            return Ok(());
        };
        aps_failpoint::hit("web-reload").map_err(|e| WebError::Reload {
            command: command.clone(),
            status: "was not run".into(),
            output: e.to_string(),
        })?;
        let (status, output) = run_admin(command)?;
        if status.as_deref() == Some("0") {
            Ok(())
        } else {
            Err(WebError::Reload {
                command: command.clone(),
                status: describe(status.as_deref()),
                output,
            })
        }
    }

    /// Sets `instance`'s file to `text` and checks it with the server's test; a refused file is
    /// put back as it was (`previous`) before the error returns. Does not reload.
    pub fn put_checked(
        &self,
        instance: &str,
        text: Option<&str>,
        previous: Option<&str>,
    ) -> Result<(), WebError> {
        self.put(instance, text)?;
        if let Err(e) = self.test() {
            self.put(instance, previous)?;
            return Err(e);
        }
        Ok(())
    }
}

/// "exited with 1", "was killed", "timed out".
fn describe(status: Option<&str>) -> String {
    match status {
        Some("timeout") => format!("timed out after {} s", COMMAND_TIMEOUT.as_secs()),
        Some("signal") => "was killed by a signal".into(),
        Some(code) => format!("exited with {code}"),
        None => "did not finish".into(),
    }
}

/// Runs an administrator's command line (`site add --web-test/--web-reload`) as root through
/// `sh -c`, with a fixed `PATH`, stdin from `/dev/null`, and its output in an anonymous file;
/// returns how it ended (`"0"`, `"1"`, `"signal"`, `"timeout"`) and the start of its output.
fn run_admin(command: &str) -> Result<(Option<String>, String), WebError> {
    let io = |source| WebError::Io {
        action: "cannot run the web server command",
        path: PathBuf::from("/bin/sh"),
        source,
    };
    let mut out = tempfile::tempfile().map_err(io)?;
    let mut child = crate::env::bare_command("/bin/sh")
        .arg("-c")
        .arg(command)
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(out.try_clone().map_err(io)?)
        .stderr(out.try_clone().map_err(io)?)
        .spawn()
        .map_err(io)?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(io)? {
            break Some(
                status
                    .code()
                    .map_or_else(|| "signal".into(), |c| c.to_string()),
            );
        }
        if started.elapsed() > COMMAND_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break Some("timeout".into());
        }
        // A configuration test takes a few milliseconds: a coarse poll would double it.
        std::thread::sleep(Duration::from_millis(1));
    };
    let mut text = Vec::new();
    out.rewind()
        .and_then(|()| out.take(OUTPUT_KEEP).read_to_end(&mut text))
        .map_err(io)?;
    Ok((status, String::from_utf8_lossy(&text).trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> InstanceWeb {
        InstanceWeb {
            instance: "7".into(),
            docroot: "/srv/a".into(),
            locations: vec![
                Location {
                    url: "/blog".into(),
                    dir: "/srv/a/blog".into(),
                    php: Php::Run(vec!["php".into()]),
                    readable: true,
                },
                Location {
                    url: "/blog/uploads".into(),
                    dir: "/srv/a/blog/uploads".into(),
                    php: Php::Off,
                    readable: true,
                },
                Location {
                    url: "/blog/private".into(),
                    dir: "/srv/a/blog/private".into(),
                    php: Php::Off,
                    readable: false,
                },
            ],
            fastcgi: Some(FastCgi::Unix("/run/php/fpm.sock".into())),
            php_values: vec![("memory_limit".into(), "256M".into())],
            htaccess: false,
            modules: vec![],
        }
    }

    #[test]
    fn fastcgi_addresses() {
        assert_eq!(
            FastCgi::parse("unix:/run/php.sock").unwrap(),
            FastCgi::Unix("/run/php.sock".into())
        );
        assert_eq!(
            FastCgi::parse("127.0.0.1:9000").unwrap(),
            FastCgi::Tcp("127.0.0.1:9000".into())
        );
        for bad in [
            "unix:run.sock",
            "unix:/a b",
            "host",
            "host:0",
            ":9000",
            "a;b:9000",
        ] {
            let e = FastCgi::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn hostile_values_are_refused_naming_them() {
        type Spoil = fn(&mut InstanceWeb);
        let cases: [(&str, Spoil); 6] = [
            ("/srv/a/x\"y", |w| w.locations[0].dir = "/srv/a/x\"y".into()),
            ("/blog/$uri", |w| w.locations[0].url = "/blog/$uri".into()),
            ("/blog/a b", |w| w.locations[1].url = "/blog/a b".into()),
            ("ph;p", |w| {
                w.locations[0].php = Php::Run(vec!["ph;p".into()]);
            }),
            ("1G\nx", |w| {
                w.php_values = vec![("memory_limit".into(), "1G\nx".into())];
            }),
            ("mod_x}", |w| w.modules = vec!["mod_x}".into()]),
        ];
        for (bad, spoil) in cases {
            let mut web = sample();
            spoil(&mut web);
            let e = check(&web).unwrap_err().to_string();
            assert!(e.contains(bad), "{bad}: {e}");
            for adapter in [&nginx::Nginx as &dyn Adapter, &apache::Apache] {
                assert!(adapter.render(&web, Access::Enabled).is_err());
            }
        }
    }

    #[test]
    fn php_without_fastcgi_is_refused() {
        let mut web = sample();
        web.fastcgi = None;
        let e = check(&web).unwrap_err().to_string();
        assert!(e.contains("--php-fastcgi"), "{e}");
    }

    #[test]
    fn files_are_replaced_and_removed_only_when_ours() {
        let dir = tempfile::tempdir().unwrap();
        let conf = ConfigDir {
            dir: dir.path().to_owned(),
            test: None,
            reload: None,
        };
        let text = nginx::Nginx
            .render(&sample(), Access::Enabled)
            .unwrap()
            .unwrap();
        conf.put("7", Some(&text)).unwrap();
        let meta = fs_err::metadata(conf.file("7")).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o644);
        assert_eq!(conf.read("7").unwrap().as_deref(), Some(text.as_str()));
        conf.put("7", None).unwrap();
        assert_eq!(conf.read("7").unwrap(), None);
        conf.put("7", None).unwrap();
        // A file of the same name that someone else wrote stays.
        fs_err::write(conf.file("8"), "server { }\n").unwrap();
        let e = conf.put("8", Some(&text)).unwrap_err();
        assert!(matches!(e, WebError::NotOurs { .. }), "{e}");
        assert_eq!(
            fs_err::read_to_string(conf.file("8")).unwrap(),
            "server { }\n"
        );
    }

    #[test]
    fn a_refused_test_puts_the_previous_file_back() {
        let dir = tempfile::tempdir().unwrap();
        let conf = ConfigDir {
            dir: dir.path().to_owned(),
            test: Some("echo 'bad directive in line 3' >&2; exit 1".into()),
            reload: None,
        };
        let old = "# Written by apsctl for instance 7\nold\n";
        conf.put("7", Some(old)).unwrap();
        let e = conf
            .put_checked(
                "7",
                Some("# Written by apsctl for instance 7\nnew\n"),
                Some(old),
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad directive in line 3"), "{e}");
        assert_eq!(conf.read("7").unwrap().as_deref(), Some(old));
        let reload = ConfigDir {
            reload: Some("exit 3".into()),
            ..conf
        };
        let e = reload.reload().unwrap_err().to_string();
        assert!(e.contains("exited with 3"), "{e}");
    }

    #[test]
    fn config_dirs_must_be_roots_alone() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        fs_err::create_dir(&open).unwrap();
        fs_err::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_config_dir(&open).unwrap_err().to_string();
        assert!(e.contains("writable by root alone"), "{e}");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/etc", &link).unwrap();
        let e = check_config_dir(&link).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        let e = check_config_dir(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing"), "{e}");
        let fine = dir.path().join("fine");
        fs_err::create_dir(&fine).unwrap();
        fs_err::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        fs_err::set_permissions(&fine, std::fs::Permissions::from_mode(0o755)).unwrap();
        check_config_dir(&fine).unwrap();
    }
}
