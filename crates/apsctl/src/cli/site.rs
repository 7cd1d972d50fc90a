//! `apsctl site …` and `apsctl db-server …`: the places instances go to.
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use aps_ops::server::ServerOptions;
use aps_ops::site::SiteOptions;
use aps_ops::site_update::UpdateOptions;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use crate::output::Printer;

/// Site commands.
#[derive(Debug, Subcommand)]
pub enum SiteCmd {
    /// Register a web site.
    Add {
        /// The site's name in apsctl.
        name: String,
        /// Its document root (the directory tree is its URL structure).
        #[arg(long, value_name = "DIR")]
        docroot: PathBuf,
        /// Its public URL, e.g. `https://example.com/` or `http://localhost:8080/`.
        #[arg(long)]
        url: String,
        /// The system user owning its files and running its scripts (default: the docroot's owner).
        #[arg(long)]
        user: Option<String>,
        /// The PHP CLI for its scripts (default: `php` on PATH).
        #[arg(long, value_name = "PATH")]
        php: Option<PathBuf>,
        /// How its web server is configured.
        #[arg(long, value_enum, default_value_t = Web::None)]
        web: Web,
        /// Folder included by the site's server block / virtual host (`*.conf`).
        #[arg(long, value_name = "DIR")]
        web_dir: Option<PathBuf>,
        /// Command that reloads the web server (run by `sh -c` as root).
        #[arg(long, value_name = "CMD")]
        web_reload: Option<String>,
        /// Command that runs the web server's own configuration test, e.g. `nginx -t` or
        /// `apache2ctl -t` (run by `sh -c` as root; exit 0 means valid).
        #[arg(long, value_name = "CMD")]
        web_test: Option<String>,
        /// Where PHP-FPM listens for this site (`unix:/path` or `host:port`).
        #[arg(long, value_name = "ADDR")]
        php_fastcgi: Option<String>,
    },
    /// Change a site's URL, PHP or web server; every instance on it follows (a new URL
    /// reconfigures each, a new web server gets each one's configuration).
    Update(UpdateArgs),
    /// List sites.
    List,
    /// Show a site.
    Show {
        /// Site name.
        name: String,
    },
    /// Forget a site (refused while instances live on it).
    Remove {
        /// Site name.
        name: String,
    },
}

/// The options of `site update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The site's name in apsctl.
    pub name: String,
    /// Its new public URL.
    #[arg(long)]
    pub url: Option<String>,
    /// Its new PHP CLI.
    #[arg(long, value_name = "PATH")]
    pub php: Option<PathBuf>,
    /// Its new web server kind (a different one takes only the `--web-…` options given here).
    #[arg(long, value_enum)]
    pub web: Option<Web>,
    /// Folder included by the site's server block / virtual host (`*.conf`).
    #[arg(long, value_name = "DIR")]
    pub web_dir: Option<PathBuf>,
    /// Command that reloads the web server (run by `sh -c` as root).
    #[arg(long, value_name = "CMD")]
    pub web_reload: Option<String>,
    /// Command that runs the web server's own configuration test (exit 0 means valid).
    #[arg(long, value_name = "CMD")]
    pub web_test: Option<String>,
    /// Where PHP-FPM listens for this site (`unix:/path` or `host:port`).
    #[arg(long, value_name = "ADDR")]
    pub php_fastcgi: Option<String>,
}

/// Web server kinds.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Web {
    /// apsctl does not configure a web server.
    None,
    /// nginx.
    Nginx,
    /// Apache.
    Apache,
}

impl Web {
    fn kind(self) -> aps_ops::site::WebKind {
        match self {
            Self::None => aps_ops::site::WebKind::None,
            Self::Nginx => aps_ops::site::WebKind::Nginx,
            Self::Apache => aps_ops::site::WebKind::Apache,
        }
    }
}

/// Database server commands.
#[derive(Debug, Subcommand)]
pub enum ServerCmd {
    /// Register a database server apsctl may create databases and logins on.
    Add {
        /// The server's name in apsctl.
        name: String,
        /// Server type.
        #[arg(long = "type", value_enum)]
        kind: DbType,
        /// Host (default `localhost`).
        #[arg(long)]
        host: Option<String>,
        /// Port (default 3306 / 5432).
        #[arg(long)]
        port: Option<u16>,
        /// Administrator login.
        #[arg(long)]
        admin_user: Option<String>,
        /// File whose first line is the administrator's password.
        #[arg(long, value_name = "FILE")]
        admin_password_file: Option<PathBuf>,
    },
    /// List database servers.
    List,
    /// Forget a database server (refused while an instance database lives on it).
    Remove {
        /// Server name.
        name: String,
    },
}

/// Database server types.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DbType {
    /// MariaDB or MySQL.
    Mysql,
    /// PostgreSQL.
    Postgresql,
    /// SQLite files in apsctl's private storage.
    Sqlite,
}

/// Runs a site command.
pub fn run_site(cmd: SiteCmd, s: super::Session, out: &Printer) -> anyhow::Result<ExitCode> {
    let ctx = s.context()?;
    match cmd {
        SiteCmd::Add {
            name,
            docroot,
            url,
            user,
            php,
            web,
            web_dir,
            web_reload,
            web_test,
            php_fastcgi,
        } => {
            let web = web.kind();
            let opts = SiteOptions {
                name,
                docroot,
                url,
                user,
                php,
                web,
                web_dir,
                web_reload,
                web_test,
                php_fastcgi,
            };
            let site = aps_ops::site::add(&ctx, &opts)?;
            out.data(&serde_json::to_value(&site)?, || {
                format!(
                    "site `{}` added ({} as user {})",
                    site.name, site.url, site.user
                )
            })?;
        }
        SiteCmd::Update(args) => update(&ctx, args, out)?,
        SiteCmd::List => {
            let sites = aps_ops::site::list(&ctx)?;
            out.data(&json!({ "sites": sites }), || {
                let mut t = String::new();
                for s in &sites {
                    let _ = writeln!(
                        t,
                        "{}\t{}\t{}\t{}",
                        s.name,
                        s.url,
                        s.docroot.display(),
                        s.user
                    );
                }
                t
            })?;
        }
        SiteCmd::Show { name } => {
            let s = aps_ops::site::show(&ctx, &name)?;
            out.data(&serde_json::to_value(&s)?, || {
                format!(
                    "name:    {}\nurl:     {}\ndocroot: {}\nuser:    {}\nweb:     {}\n",
                    s.name,
                    s.url,
                    s.docroot.display(),
                    s.user,
                    s.web
                )
            })?;
        }
        SiteCmd::Remove { name } => {
            let s = aps_ops::site::remove(&ctx, &name)?;
            out.data(&serde_json::to_value(&s)?, || {
                format!("site `{}` removed", s.name)
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `site update`: the one operation, and what it changed.
fn update(ctx: &aps_ops::Context, args: UpdateArgs, out: &Printer) -> anyhow::Result<()> {
    let opts = UpdateOptions {
        name: args.name,
        url: args.url,
        php: args.php,
        web: args.web.map(Web::kind),
        web_dir: args.web_dir,
        web_reload: args.web_reload,
        web_test: args.web_test,
        php_fastcgi: args.php_fastcgi,
    };
    let report = aps_ops::site_update::update(ctx, &opts, out)?;
    out.data(&serde_json::to_value(&report)?, || {
        if report.changed.is_empty() {
            return format!("site `{}` unchanged", report.site.name);
        }
        let mut text = format!(
            "site `{}` updated ({})",
            report.site.name,
            report.changed.join(", ")
        );
        if !report.instances.is_empty() {
            let _ = write!(text, "; instances changed: {}", report.instances.join(", "));
        }
        text
    })?;
    Ok(())
}

/// Runs a database server command.
pub fn run_server(cmd: ServerCmd, s: super::Session, out: &Printer) -> anyhow::Result<ExitCode> {
    let ctx = s.context()?;
    match cmd {
        ServerCmd::Add {
            name,
            kind,
            host,
            port,
            admin_user,
            admin_password_file,
        } => {
            let kind = match kind {
                DbType::Mysql => aps_ops::server::ServerType::Mysql,
                DbType::Postgresql => aps_ops::server::ServerType::Postgresql,
                DbType::Sqlite => aps_ops::server::ServerType::Sqlite,
            };
            let opts = ServerOptions {
                name,
                kind,
                host,
                port,
                admin_user,
                admin_password_file,
            };
            let s = aps_ops::server::add(&ctx, &opts)?;
            out.data(&serde_json::to_value(&s)?, || {
                format!(
                    "database server `{}` added ({} {})",
                    s.name,
                    s.kind,
                    s.version.as_deref().unwrap_or("")
                )
            })?;
        }
        ServerCmd::List => {
            let servers = aps_ops::server::list(&ctx)?;
            out.data(&json!({ "servers": servers }), || {
                let mut t = String::new();
                for s in &servers {
                    let at = match (&s.host, s.port) {
                        (Some(h), Some(p)) => format!("{h}:{p}"),
                        (Some(h), None) => h.clone(),
                        _ => "-".into(),
                    };
                    let _ = writeln!(
                        t,
                        "{}\t{}\t{at}\t{}",
                        s.name,
                        s.kind,
                        s.version.as_deref().unwrap_or("")
                    );
                }
                t
            })?;
        }
        ServerCmd::Remove { name } => {
            let s = aps_ops::server::remove(&ctx, &name)?;
            out.data(&serde_json::to_value(&s)?, || {
                format!("database server `{}` removed", s.name)
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
