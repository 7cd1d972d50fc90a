//! Command-line arguments (clap) and dispatch: one sub-module per command group.
//!
//! Arguments are parsed in two stages, as ripgrep does: clap collects raw values here, and each
//! handler turns them into a checked `aps_ops` options struct before calling the operation.
mod backup;
mod database;
mod instance;
mod package;
mod site;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

use crate::output::Printer;

/// `apsctl --version`: the release and the store schema it writes.
fn version() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        format!(
            "{} (store schema {})",
            env!("CARGO_PKG_VERSION"),
            aps_ops::store_schema_version()
        )
    })
}

/// apsctl — an APS 1.x application controller.
///
/// Imports APS packages (`.app.zip`) and installs, reconfigures and removes their application
/// instances on web sites.
#[derive(Debug, Parser)]
#[command(name = "apsctl", version = version(), about, long_about = None, propagate_version = true)]
pub struct Args {
    /// The controller's home (configuration, store, package repository, instance folders);
    /// default /var/lib/apsctl for root and ~/.local/share/apsctl for other users.
    #[arg(long, global = true, value_name = "DIR", env = "APSCTL_HOME")]
    pub home: Option<PathBuf>,
    /// Seconds a package script may run before its process group is killed (default 900).
    #[arg(
        long,
        global = true,
        value_name = "SECONDS",
        env = "APSCTL_SCRIPT_TIMEOUT",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub script_timeout: Option<u64>,
    /// Largest total unpacked size of a package, in bytes (default 1 GiB).
    #[arg(
        long,
        global = true,
        value_name = "BYTES",
        env = "APSCTL_MAX_PACKAGE_SIZE"
    )]
    pub max_package_size: Option<u64>,
    /// Seconds to wait for a lock another operation holds: on the instance (default: do not
    /// wait, refuse at once) and on the site for an install (default 600).
    #[arg(long, global = true, value_name = "SECONDS", env = "APSCTL_WAIT")]
    pub wait: Option<u64>,
    /// Lowest uid a site's user may have (default: `UID_MIN` from /etc/login.defs, else 1000);
    /// root is always refused.
    #[arg(long, global = true, value_name = "UID", env = "APSCTL_MIN_SITE_UID")]
    pub min_site_uid: Option<u32>,
    /// Print exactly one JSON document on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print no progress and no warnings.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands of apsctl.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Lint, build, import, list, show and remove packages; their global settings.
    #[command(subcommand)]
    Package(package::PackageCmd),
    /// Register, list, show and remove web sites.
    #[command(subcommand)]
    Site(site::SiteCmd),
    /// Register, list and remove database servers.
    #[command(subcommand, name = "db-server")]
    DbServer(site::ServerCmd),
    /// Install a package on a site.
    Install(instance::InstallArgs),
    /// List and show instances.
    #[command(subcommand)]
    Instance(instance::InstanceCmd),
    /// Change an instance's settings.
    Configure(instance::ConfigureArgs),
    /// Remove an instance.
    Remove(instance::RemoveArgs),
    /// Update an instance to a newer package (patch or upgrade), with a safety backup and an
    /// automatic rollback.
    Upgrade(instance::UpgradeArgs),
    /// Enable a disabled instance (`configure enable`; its URLs answer again).
    Enable(instance::StatusArgs),
    /// Disable an instance (`configure disable`; every URL of it answers 503).
    Disable(instance::StatusArgs),
    /// Bring operations interrupted by a crash to a consistent state.
    Recover,
    /// Databases kept after their instance was removed: list and drop them.
    #[command(subcommand)]
    Database(database::DatabaseCmd),
    /// Back an instance up into one .tar.zst archive, or verify an archive (`backup verify FILE`).
    Backup(backup::BackupArgs),
    /// Restore an archive over an instance, or into a new instance on a site.
    Restore(backup::RestoreArgs),
    /// Move an instance to another site or path (backup, restore there, remove the old one).
    Migrate(backup::MigrateArgs),
    /// Periodic backups: add, list, remove, and run those that are due (for cron).
    #[command(subcommand)]
    Schedule(backup::ScheduleCmd),
    /// The HTTP API for control panels (API.md).
    Serve {
        /// `host:port` or `unix:/path`.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8714")]
        listen: String,
        /// The file holding the bearer token (created with a random one when missing; default
        /// `<home>/api-token`).
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// The log's format on stderr: `text` or `json` (one object per line). The level comes
        /// from `APSCTL_LOG` (default `info`).
        #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
        log: String,
        /// Seconds SIGTERM waits for running operations before the service exits anyway (their
        /// operations are then `apsctl recover`'s to finish or undo).
        #[arg(long, value_name = "SECONDS", default_value_t = 900)]
        grace: u64,
    },
    /// Print the HTTP API's `OpenAPI` 3 document (what `serve` answers at `/openapi.json`).
    Openapi,
    /// Print the completion script for SHELL (`bash`, `zsh`, `fish`, `elvish`, `powershell`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print apsctl's man page (roff) on stdout, or write one page per command into DIR.
    Man {
        /// Write `apsctl.1`, `apsctl-install.1`, … into this folder.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

/// Runs the command.
pub fn run(args: Args, env: aps_ops::Env, printer: &Printer) -> anyhow::Result<ExitCode> {
    let mut config = aps_ops::context::Config::default();
    if let Some(seconds) = args.script_timeout {
        config.script_timeout = std::time::Duration::from_secs(seconds);
    }
    if let Some(bytes) = args.max_package_size {
        config.archive_limits.max_total_uncompressed = bytes;
    }
    config.lock_wait = args.wait.map(std::time::Duration::from_secs);
    config.min_site_uid = args.min_site_uid;
    let s = Session {
        home: home_dir(args.home, &env),
        env,
        config,
    };
    match args.command {
        Command::Package(cmd) => package::run(cmd, s, printer),
        Command::Site(cmd) => site::run_site(cmd, s, printer),
        Command::DbServer(cmd) => site::run_server(cmd, s, printer),
        Command::Install(args) => instance::install(args, s, printer),
        Command::Instance(cmd) => instance::instance(cmd, s, printer),
        Command::Configure(args) => instance::configure(args, s, printer),
        Command::Remove(args) => instance::remove(args, s, printer),
        Command::Upgrade(args) => instance::upgrade(args, s, printer),
        Command::Enable(args) => instance::status(&args, true, s, printer),
        Command::Disable(args) => instance::status(&args, false, s, printer),
        Command::Recover => instance::recover(s, printer),
        Command::Database(cmd) => database::run(cmd, s, printer),
        Command::Backup(args) => backup::backup(args, s, printer),
        Command::Restore(args) => backup::restore(args, s, printer),
        Command::Migrate(args) => backup::migrate(args, s, printer),
        Command::Schedule(cmd) => backup::schedule(cmd, s, printer),
        Command::Openapi => {
            printer.document(&crate::serve::openapi_json()?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Args::command(), "apsctl", &mut script);
            printer.document(&String::from_utf8_lossy(&script))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { out } => {
            let command = Args::command();
            if let Some(dir) = out {
                fs_err::create_dir_all(&dir)?;
                clap_mangen::generate_to(command, &dir)?;
            } else {
                let mut page = Vec::new();
                clap_mangen::Man::new(command).render(&mut page)?;
                printer.document(&String::from_utf8_lossy(&page))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            listen,
            token_file,
            log,
            grace,
        } => {
            let token_file = token_file.unwrap_or_else(|| s.home.join("api-token"));
            let opts = crate::serve::ServeOptions {
                listen,
                token_file,
                json_log: log == "json",
                grace: std::time::Duration::from_secs(grace),
            };
            crate::serve::run(s.context()?, &opts, printer)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `--home` (or `APSCTL_HOME`, read by clap), else the default for this user.
fn home_dir(flag: Option<PathBuf>, env: &aps_ops::Env) -> PathBuf {
    flag.filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| {
            let home = env.var("HOME").map(PathBuf::from);
            aps_ops::home::default_home(env.is_root(), home.as_deref())
        })
}

/// What every command gets besides its own arguments: the home, the process environment and
/// the tunables from the global flags.
#[derive(Debug)]
pub struct Session {
    home: PathBuf,
    env: aps_ops::Env,
    config: aps_ops::context::Config,
}

impl Session {
    /// Opens the context (home + store) for commands that need it.
    fn context(self) -> anyhow::Result<aps_ops::Context> {
        Ok(aps_ops::Context::open(&self.home, self.env, self.config)?)
    }
}
