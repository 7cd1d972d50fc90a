//! Command-line arguments (clap) and dispatch: one sub-module per command group.
//!
//! Arguments are parsed in two stages, as ripgrep does: clap collects raw values here, and each
//! handler turns them into a checked `aps_ops` options struct before calling the operation.
mod instance;
mod package;
mod site;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::output::Printer;

/// apsctl — an APS 1.x application controller.
///
/// Imports APS packages (`.app.zip`) and installs, reconfigures and removes their application
/// instances on web sites.
#[derive(Debug, Parser)]
#[command(name = "apsctl", version, about, long_about = None, propagate_version = true)]
pub struct Args {
    /// The controller's home (configuration, store, package repository, instance folders).
    /// Default: $APSCTL_HOME, else /var/lib/apsctl for root and ~/.local/share/apsctl otherwise.
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
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
    /// Lint, import, list, show and remove packages.
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
    /// Bring operations interrupted by a crash to a consistent state.
    Recover,
}

/// Runs the command.
pub fn run(args: Args, printer: &Printer) -> anyhow::Result<ExitCode> {
    let env = aps_ops::Env::from_process();
    let home = home_dir(args.home, &env);
    match args.command {
        Command::Package(cmd) => package::run(cmd, &home, env, printer),
        Command::Site(cmd) => site::run_site(cmd, &home, env, printer),
        Command::DbServer(cmd) => site::run_server(cmd, &home, env, printer),
        Command::Install(args) => instance::install(args, &home, env, printer),
        Command::Instance(cmd) => instance::instance(cmd, &home, env, printer),
        Command::Configure(args) => instance::configure(args, &home, env, printer),
        Command::Remove(args) => instance::remove(args, &home, env, printer),
        Command::Recover => instance::recover(&home, env, printer),
    }
}

/// `--home`, else `$APSCTL_HOME`, else the default for this user.
fn home_dir(flag: Option<PathBuf>, env: &aps_ops::Env) -> PathBuf {
    flag.or_else(|| {
        env.var(aps_ops::home::HOME_VAR)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
    .unwrap_or_else(|| {
        let home = env.var("HOME").map(PathBuf::from);
        aps_ops::home::default_home(env.is_root(), home.as_deref())
    })
}

/// Opens the context (home + store) for commands that need it.
pub fn context(home: &std::path::Path, env: aps_ops::Env) -> anyhow::Result<aps_ops::Context> {
    Ok(aps_ops::Context::open(
        home,
        env,
        aps_ops::context::Config::default(),
    )?)
}
