//! `apsctl install`, `instance …`, `configure`, `remove`, `recover`: instance life cycle.
//!
//! Setting values come from `--set ID=VALUE` and `--settings-file F` (`-`: standard input, so
//! secrets need not pass through argv, D14); the file is read here with a bound and parsed by
//! [`aps_ops::settings::parse_settings_json`]; `--set` wins for the same id. Text output wraps
//! what tenants and packages control (file names, setting values, names) in [`shown::name`].
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use aps_ops::install::{InstallOptions, License, RunMode};
use aps_ops::remove::{Databases, Force, RemoveOptions};
use aps_ops::report::FileChoice;
use aps_ops::settings::MAX_SETTINGS_BYTES;
use aps_ops::shown;
use clap::{ArgGroup, Args as ClapArgs, Subcommand, ValueEnum};
use serde_json::json;

use crate::output::Printer;

/// `install` arguments.
#[derive(Debug, ClapArgs)]
pub struct InstallArgs {
    /// The package reference printed by `package import`.
    reference: String,
    /// The site to install on.
    #[arg(long)]
    site: String,
    /// Path below the site root (default: the package's default prefix; `/` for the root).
    #[arg(long, value_name = "PREFIX")]
    path: Option<String>,
    /// A setting value (repeatable).
    #[arg(long = "set", value_name = "ID=VALUE")]
    set: Vec<String>,
    /// A JSON object of setting values (`{"id": "value"}`; `-` reads standard input, keeping
    /// passwords off the command line); `--set` wins for the same id.
    #[arg(long, value_name = "FILE")]
    settings_file: Option<PathBuf>,
    /// Accept the package's license.
    #[arg(long)]
    accept_license: bool,
    /// Create the databases on this registered server.
    #[arg(long, value_name = "NAME")]
    db_server: Option<String>,
    /// Give db:id ID the table prefix PREFIX (`DB_<ID>_PREFIX`; only where the package allows it).
    #[arg(long = "db-prefix", value_name = "ID=PREFIX")]
    db_prefix: Vec<String>,
    /// Install db:id ID into the database of another instance of the same site owner
    /// (INSTANCE's db:id DBID, default ID); needs --db-prefix for ID.
    #[arg(long = "use-database", value_name = "ID=INSTANCE[:DBID]")]
    use_database: Vec<String>,
    /// Check everything and print the plan; change nothing.
    #[arg(long)]
    dry_run: bool,
}

/// `instance` commands.
#[derive(Debug, Subcommand)]
pub enum InstanceCmd {
    /// List instances.
    List,
    /// Show an instance: settings (secrets masked), databases, system changes.
    Show {
        /// Instance id.
        id: String,
    },
    /// The packages in the repository that can update the instance (patch or upgrade, by their
    /// match rules against its installed metadata).
    Updates {
        /// Instance id.
        id: String,
    },
    /// The instance's operations, newest first (its audit trail, from the journal).
    History {
        /// Instance id (also of a removed instance).
        id: String,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// `configure` arguments.
#[derive(Debug, ClapArgs)]
#[command(group(
    ArgGroup::new("values")
        .required(true)
        .multiple(true)
        .args(["set", "settings_file"])
))]
pub struct ConfigureArgs {
    /// Instance id.
    id: String,
    /// A new setting value (repeatable).
    #[arg(long = "set", value_name = "ID=VALUE")]
    set: Vec<String>,
    /// A JSON object of new setting values (`{"id": "value"}`; `-` reads standard input, keeping
    /// passwords off the command line); `--set` wins for the same id.
    #[arg(long, value_name = "FILE")]
    settings_file: Option<PathBuf>,
}

/// `remove` arguments.
#[derive(Debug, ClapArgs)]
pub struct RemoveArgs {
    /// Instance id.
    id: String,
    /// Which files to remove: `all`, or `app` (keep what the instance created or changed).
    /// Without it apsctl asks on a terminal and refuses elsewhere.
    #[arg(long, value_enum)]
    files: Option<Files>,
    /// Keep the instance's databases and logins.
    #[arg(long)]
    keep_databases: bool,
    /// Do not ask for confirmation.
    #[arg(long)]
    yes: bool,
    /// When `configure remove` cannot run (the site's user, the package or the private copy is
    /// gone) or keeps failing, free everything apsctl can without it and say what was skipped.
    #[arg(long)]
    force: bool,
}

/// `upgrade` arguments.
#[derive(Debug, ClapArgs)]
#[command(group(ArgGroup::new("which").required(true).args(["id", "all"])))]
pub struct UpgradeArgs {
    /// Instance id.
    #[arg(requires = "to")]
    id: Option<String>,
    /// The package to update to (a reference from `instance updates`).
    #[arg(long, value_name = "REF")]
    to: Option<String>,
    /// Every instance, one at a time, each with its own safety backup and rollback, each to
    /// its newest update the flags allow; ends with a report (updated, rolled back, skipped).
    #[arg(long, conflicts_with_all = ["to", "set", "settings_file", "accept_license"])]
    all: bool,
    /// What `--all` takes.
    #[command(flatten)]
    fleet: FleetArgs,
    /// A value for a new setting, or a new value for a carried-over one (repeatable).
    #[arg(long = "set", value_name = "ID=VALUE")]
    set: Vec<String>,
    /// A JSON object of setting values (`-` reads standard input); `--set` wins for the same id.
    #[arg(long, value_name = "FILE")]
    settings_file: Option<PathBuf>,
    /// Accept the new package's license.
    #[arg(long)]
    accept_license: bool,
    /// Do not ask for confirmation.
    #[arg(long)]
    yes: bool,
}

/// The flags of `upgrade --all`.
#[derive(Debug, ClapArgs)]
pub struct FleetArgs {
    /// With `--all`: patches only.
    #[arg(long, requires = "all")]
    patches_only: bool,
    /// With `--all`: recommended patches only.
    #[arg(long, requires = "all")]
    recommended_only: bool,
    /// With `--all`: say what would be updated, change nothing.
    #[arg(long, requires = "all")]
    dry_run: bool,
}

/// `enable` / `disable` arguments.
#[derive(Debug, ClapArgs)]
pub struct StatusArgs {
    /// Instance id.
    id: String,
}

/// File choices of `remove`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Files {
    /// Every file and folder of the instance.
    All,
    /// Only the package's own unchanged files.
    App,
}

/// Parses the `ID=VALUE` pairs of a repeatable flag, refusing duplicates.
fn parse_pairs(flag: &str, pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for pair in pairs {
        let (id, value) = pair
            .split_once('=')
            .with_context(|| format!("an argument of `{flag}` has no `=`: write ID=VALUE"))?;
        if map.insert(id.to_owned(), value.to_owned()).is_some() {
            anyhow::bail!("`{flag}` names `{id}` twice");
        }
    }
    Ok(map)
}

/// The setting values of `--settings-file` (when given) overridden by those of `--set`.
pub(super) fn settings_input(
    file: Option<&Path>,
    set: &[String],
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut settings = match file {
        Some(file) => read_settings_file(file)?,
        None => BTreeMap::new(),
    };
    settings.extend(parse_pairs("--set", set)?);
    Ok(settings)
}

/// Reads a settings file (`-`: standard input), at most [`MAX_SETTINGS_BYTES`] of it, and parses
/// it strictly.
fn read_settings_file(file: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let from_stdin = file.as_os_str() == "-";
    let source = if from_stdin {
        "the settings on standard input".to_owned()
    } else {
        format!("settings file `{}`", shown::path(file))
    };
    let mut bytes = Vec::new();
    // One byte more than allowed tells "exactly at the bound" from "too long" (`/dev/zero`).
    let limit = MAX_SETTINGS_BYTES + 1;
    let read = if from_stdin {
        std::io::stdin().lock().take(limit).read_to_end(&mut bytes)
    } else {
        fs_err::File::open(file).and_then(|f| f.take(limit).read_to_end(&mut bytes))
    };
    read.map_err(|e| {
        // fs_err names the path again; the cause alone reads better after `source`.
        let cause = e
            .get_ref()
            .and_then(std::error::Error::source)
            .map_or_else(|| e.to_string(), ToString::to_string);
        aps_ops::Error::Invalid(format!("cannot read {source}: {cause}"))
    })?;
    if bytes.len() as u64 > MAX_SETTINGS_BYTES {
        return Err(aps_ops::settings::too_large(&source).into());
    }
    Ok(aps_ops::settings::parse_settings_json(&bytes, &source)?)
}

/// Runs `install`.
pub fn install(args: InstallArgs, s: super::Session, out: &Printer) -> anyhow::Result<ExitCode> {
    let settings = settings_input(args.settings_file.as_deref(), &args.set)?;
    let ctx = s.context()?;
    let opts = InstallOptions {
        package: args.reference,
        site: args.site,
        path: args.path,
        settings,
        license: License::accepted_if(args.accept_license),
        db_server: args.db_server,
        table_prefixes: parse_pairs("--db-prefix", &args.db_prefix)?,
        shared_databases: parse_pairs("--use-database", &args.use_database)?
            .into_iter()
            .map(|(id, target)| {
                let (instance, db_id) = match target.split_once(':') {
                    Some((i, d)) => (i.to_owned(), d.to_owned()),
                    None => (target, id.clone()),
                };
                (id, aps_ops::database::SharedDatabase { instance, db_id })
            })
            .collect(),
        mode: if args.dry_run {
            RunMode::DryRun
        } else {
            RunMode::Apply
        },
    };
    let report = aps_ops::install::install(&ctx, &opts, out)?;
    out.data(&serde_json::to_value(&report)?, || {
        let p = &report.plan;
        let mut t = String::new();
        if let Some(id) = &report.instance {
            let _ = writeln!(t, "instance {id} installed at {}", shown::name(&report.url));
        } else {
            let _ = writeln!(t, "plan (nothing was changed):");
            let _ = writeln!(t, "  url:       {}", shown::name(&p.url));
            let _ = writeln!(t, "  directory: {}", shown::path(&p.root));
            let _ = writeln!(t, "  files:     {} ({} bytes)", p.files, p.bytes);
            for db in &p.databases {
                let _ = writeln!(
                    t,
                    "  database:  {} ({}) on `{}`",
                    shown::name(&db.id),
                    shown::name(&db.kind),
                    shown::name(&db.server)
                );
            }
            for c in &p.choices {
                let _ = writeln!(t, "  choice:    {}", shown::name(c));
            }
            for s in &p.scripts {
                let _ = writeln!(t, "  runs:      {}", shown::name(s));
            }
            let variables: Vec<String> = p
                .variables
                .iter()
                .map(|v| shown::name(v).to_string())
                .collect();
            let _ = writeln!(t, "  variables: {}", variables.join(" "));
        }
        t
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Runs an `instance` command.
pub fn instance(cmd: InstanceCmd, s: super::Session, out: &Printer) -> anyhow::Result<ExitCode> {
    let ctx = s.context()?;
    match cmd {
        InstanceCmd::List => {
            let list = aps_ops::instance::list(&ctx)?;
            out.data(&json!({ "instances": list }), || {
                let mut t = String::new();
                for i in &list {
                    let _ = writeln!(
                        t,
                        "{}\t{}\t{}\t{} {}-{}\t{}",
                        i.instance,
                        shown::name(&i.site),
                        shown::name(&i.url),
                        shown::name(&i.package.name),
                        shown::name(&i.package.version),
                        shown::name(&i.package.release),
                        i.state
                    );
                }
                t
            })?;
        }
        InstanceCmd::History { id, limit } => history(&ctx, &id, limit, out)?,
        InstanceCmd::Updates { id } => {
            let updates = aps_ops::updates::updates(&ctx, &id)?;
            out.data(&json!({ "updates": updates }), || {
                if updates.is_empty() {
                    return format!("instance {id}: no update in the repository\n");
                }
                let mut t = String::new();
                for u in &updates {
                    let kind = match u.kind {
                        aps_ops::updates::Kind::Patch => "patch",
                        aps_ops::updates::Kind::Upgrade => "upgrade",
                    };
                    let _ = writeln!(
                        t,
                        "{}\t{kind}\t{}-{}{}",
                        u.package,
                        shown::name(&u.version),
                        shown::name(&u.release),
                        if u.recommended { "\trecommended" } else { "" }
                    );
                }
                t
            })?;
        }
        InstanceCmd::Show { id } => {
            let d = aps_ops::instance::show(&ctx, &id)?;
            out.data(&serde_json::to_value(&d)?, || {
                let mut t = String::new();
                let v = &d.view;
                let _ = writeln!(t, "instance {} ({})", v.instance, v.state);
                let _ = writeln!(
                    t,
                    "package:   {} {}-{} (`{}`)",
                    shown::name(&v.package.name),
                    shown::name(&v.package.version),
                    shown::name(&v.package.release),
                    v.package.reference
                );
                let _ = writeln!(t, "site:      {}", shown::name(&v.site));
                let _ = writeln!(t, "url:       {}", shown::name(&v.url));
                let _ = writeln!(t, "directory: {}", shown::path(&d.root));
                let _ = writeln!(t, "files:     {}", d.application_files);
                for (k, val) in &d.settings {
                    let _ = writeln!(t, "setting:   {} = {}", shown::name(k), shown::name(val));
                }
                for db in &d.databases {
                    let _ = writeln!(
                        t,
                        "database:  {} {} `{}` login `{}` on {}:{}",
                        shown::name(&db.id),
                        db.kind,
                        shown::name(&db.name),
                        shown::name(&db.login),
                        shown::name(&db.host),
                        db.port.map(|p| p.to_string()).unwrap_or_default()
                    );
                }
                t
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `configure`.
pub fn configure(
    args: ConfigureArgs,
    s: super::Session,
    out: &Printer,
) -> anyhow::Result<ExitCode> {
    let settings = settings_input(args.settings_file.as_deref(), &args.set)?;
    let ctx = s.context()?;
    let opts = aps_ops::configure::ConfigureOptions {
        instance: args.id,
        settings,
    };
    let report = aps_ops::configure::configure(&ctx, &opts, out)?;
    out.data(&serde_json::to_value(&report)?, || {
        format!(
            "instance {} reconfigured ({} setting(s) changed)",
            report.instance,
            report.changed.len()
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Prints `instance history`.
fn history(ctx: &aps_ops::Context, id: &str, limit: u32, out: &Printer) -> anyhow::Result<()> {
    let ops = aps_ops::instance::history(ctx, id, limit)?;
    out.data(&json!({ "operations": ops }), || {
        let mut t = String::new();
        for op in &ops {
            let _ = writeln!(
                t,
                "{}\t{}\t{}\t{}",
                op.operation,
                op.kind,
                op.outcome.as_deref().unwrap_or("running or interrupted"),
                op.error
                    .as_deref()
                    .map_or(String::new(), |e| shown::message(e).into_owned())
            );
        }
        t
    })?;
    Ok(())
}

/// Runs `upgrade`.
pub fn upgrade(args: UpgradeArgs, s: super::Session, out: &Printer) -> anyhow::Result<ExitCode> {
    let _ = args.yes; // nothing else is asked
    if args.all {
        return upgrade_all(&args, s, out);
    }
    let settings = settings_input(args.settings_file.as_deref(), &args.set)?;
    let ctx = s.context()?;
    let opts = aps_ops::upgrade::UpgradeOptions {
        instance: args.id.unwrap_or_default(),
        to: args.to.unwrap_or_default(),
        settings,
        license: License::accepted_if(args.accept_license),
    };
    let report = aps_ops::upgrade::upgrade(&ctx, &opts, out)?;
    for kept in &report.kept_files {
        out.warning(&format!("kept: {}", shown::message(kept)));
    }
    out.data(&serde_json::to_value(&report)?, || {
        format!(
            "instance {} updated from {}-{} to {}-{} ({} old file(s) removed)\n",
            report.instance,
            shown::name(&report.from.version),
            shown::name(&report.from.release),
            shown::name(&report.to.version),
            shown::name(&report.to.release),
            report.removed_files
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `upgrade --all`: the report, and exit 6 when an instance was rolled back.
fn upgrade_all(args: &UpgradeArgs, s: super::Session, out: &Printer) -> anyhow::Result<ExitCode> {
    let ctx = s.context()?;
    let opts = aps_ops::upgrade::FleetOptions {
        patches_only: args.fleet.patches_only,
        recommended_only: args.fleet.recommended_only,
        dry_run: args.fleet.dry_run,
    };
    let report = aps_ops::upgrade::upgrade_all(&ctx, &opts, out)?;
    out.data(&serde_json::to_value(&report)?, || {
        let mut t = String::new();
        let verb = if args.fleet.dry_run {
            "would update"
        } else {
            "updated"
        };
        for (what, list) in [
            (verb, &report.updated),
            ("rolled back", &report.rolled_back),
            ("skipped", &report.skipped),
        ] {
            for e in list {
                let _ = writeln!(
                    t,
                    "{what}\tinstance {}\t{}\t{}",
                    e.instance,
                    e.package.as_deref().unwrap_or("-"),
                    e.reason
                        .as_deref()
                        .map_or(String::new(), |r| shown::message(r).into_owned())
                );
            }
        }
        t
    })?;
    Ok(if report.rolled_back.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(6)
    })
}

/// Runs `enable` (`enable == true`) or `disable`.
pub fn status(
    args: &StatusArgs,
    enable: bool,
    s: super::Session,
    out: &Printer,
) -> anyhow::Result<ExitCode> {
    let ctx = s.context()?;
    let report = aps_ops::status::set(&ctx, &args.id, enable, out)?;
    out.data(&serde_json::to_value(&report)?, || {
        format!("instance {} is {}\n", report.instance, report.state)
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `remove`.
pub fn remove(args: RemoveArgs, s: super::Session, out: &Printer) -> anyhow::Result<ExitCode> {
    let _ = args.yes; // nothing else is asked; accepted for scripts written against other panels
    let ctx = s.context()?;
    let opts = RemoveOptions {
        instance: args.id,
        files: args.files.map(|f| match f {
            Files::All => FileChoice::All,
            Files::App => FileChoice::App,
        }),
        databases: if args.keep_databases {
            Databases::Keep
        } else {
            Databases::Drop
        },
        force: if args.force { Force::Yes } else { Force::No },
    };
    let report = aps_ops::remove::remove(&ctx, &opts, out)?;
    for warning in &report.warnings {
        out.warning(warning);
    }
    out.data(&serde_json::to_value(&report)?, || {
        let mut t = format!(
            "instance {} removed ({} files and folders deleted)\n",
            report.instance, report.removed
        );
        if !report.kept_files.is_empty() {
            let _ = writeln!(t, "kept files ({}):", report.kept_files.len());
            for k in &report.kept_files {
                let _ = writeln!(t, "  {} ({})", shown::name(&k.path), k.reason);
            }
        }
        for db in &report.databases_kept {
            let _ = writeln!(t, "kept database: {}", shown::name(db));
        }
        for skipped in &report.skipped {
            let _ = writeln!(t, "skipped (--force): {}", shown::message(skipped));
        }
        for db in &report.databases_dropped {
            let _ = writeln!(t, "dropped database: {}", shown::name(db));
        }
        t
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `recover`.
pub fn recover(s: super::Session, out: &Printer) -> anyhow::Result<ExitCode> {
    let ctx = s.context()?;
    let list = aps_ops::recover::recover(&ctx, out)?;
    let failed = list.iter().any(|r| r.outcome == "failed");
    out.data(&json!({ "operations": list }), || {
        if list.is_empty() {
            return "nothing to recover".into();
        }
        let mut t = String::new();
        for r in &list {
            let _ = writeln!(
                t,
                "operation {} ({} of instance {}): {}{}",
                r.operation,
                r.kind,
                r.instance.as_deref().unwrap_or("-"),
                r.outcome,
                r.note
                    .as_deref()
                    .map(|n| format!(": {n}"))
                    .unwrap_or_default()
            );
        }
        t
    })?;
    Ok(if failed {
        ExitCode::from(6)
    } else {
        ExitCode::SUCCESS
    })
}
