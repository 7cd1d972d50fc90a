//! `apsctl backup`, `backup verify`, `restore`, `migrate` and `schedule …`: data retention.
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use aps_ops::backup::{BackupOptions, BackupTarget};
use aps_ops::restore::{MigrateOptions, RestoreOptions, RestoreTarget};
use aps_ops::schedule::ScheduleOptions;
use aps_ops::shown;
use clap::{Args as ClapArgs, Subcommand};
use serde_json::json;

use crate::output::Printer;

/// `backup` arguments: `backup ID (--to FILE | --to-dir DIR [--keep N])`, or `backup verify FILE`.
#[derive(Debug, ClapArgs)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupArgs {
    /// Check an archive end to end without restoring it.
    #[command(subcommand)]
    verify: Option<BackupCmd>,
    /// The instance to back up.
    id: Option<String>,
    /// Write the archive to exactly this file (replaced when it exists).
    #[arg(long, value_name = "FILE", conflicts_with = "to_dir")]
    to: Option<PathBuf>,
    /// Write a new archive into this folder, named after the instance and the time.
    #[arg(long, value_name = "DIR")]
    to_dir: Option<PathBuf>,
    /// With --to-dir: keep only the newest N backups of this instance in the folder.
    #[arg(long, value_name = "N", requires = "to_dir", value_parser = clap::value_parser!(u32).range(1..))]
    keep: Option<u32>,
}

/// `backup` sub-commands.
#[derive(Debug, Subcommand)]
pub enum BackupCmd {
    /// Read an archive end to end (manifest, every checksum, the dumps) and say what is wrong.
    Verify {
        /// The archive.
        file: PathBuf,
    },
}

/// `restore` arguments.
#[derive(Debug, ClapArgs)]
pub struct RestoreArgs {
    /// Restore over this existing instance (its files and databases are replaced).
    id: Option<String>,
    /// The archive.
    #[arg(long, value_name = "FILE")]
    from: PathBuf,
    /// Restore into a new instance on this site.
    #[arg(long, value_name = "NAME", conflicts_with = "id")]
    site: Option<String>,
    /// With --site: the path below the site root (default: the backed-up instance's).
    #[arg(long, value_name = "PREFIX", requires = "site")]
    path: Option<String>,
}

/// `migrate` arguments.
#[derive(Debug, ClapArgs)]
pub struct MigrateArgs {
    /// The instance to move.
    id: String,
    /// The site it goes to.
    #[arg(long, value_name = "NAME")]
    site: String,
    /// The path there (default: its path now).
    #[arg(long, value_name = "PREFIX")]
    path: Option<String>,
    /// Keep the old instance once the new one works.
    #[arg(long)]
    keep_source: bool,
}

/// `schedule` commands.
#[derive(Debug, Subcommand)]
pub enum ScheduleCmd {
    /// Back an instance up periodically into a folder.
    Add {
        /// The instance.
        id: String,
        /// The period: `30m`, `12h`, `1d`, `1w`…
        #[arg(long, value_name = "DURATION")]
        every: String,
        /// The folder the backups go to.
        #[arg(long, value_name = "DIR")]
        to_dir: PathBuf,
        /// Keep only the newest N backups of the instance there.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        keep: Option<u32>,
    },
    /// List the schedules.
    List,
    /// Remove a schedule.
    Remove {
        /// The schedule's id.
        sid: i64,
    },
    /// Run the schedules that are due (for cron).
    Run,
}

/// Runs `backup`.
pub fn backup(args: BackupArgs, s: super::Session, out: &Printer) -> anyhow::Result<ExitCode> {
    let ctx = s.context()?;
    if let Some(BackupCmd::Verify { file }) = args.verify {
        let report = aps_ops::backup::verify(&file)?;
        out.data(&serde_json::to_value(&report)?, || {
            let m = &report.manifest;
            format!(
                "backup `{}` is sound: {} {}-{} of instance {} ({}), {} entries, {} bytes",
                shown::path(&report.backup),
                shown::name(&m.package.name),
                shown::name(&m.package.version),
                shown::name(&m.package.release),
                shown::name(&m.instance.id),
                shown::name(&m.instance.url),
                report.entries,
                report.bytes
            )
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(id) = args.id else {
        anyhow::bail!(
            "give the instance to back up: `apsctl backup ID --to FILE` or `--to-dir DIR`"
        );
    };
    let to = match (args.to, args.to_dir) {
        (Some(file), None) => BackupTarget::File(file),
        (None, Some(dir)) => BackupTarget::Dir {
            dir,
            keep: args.keep,
        },
        _ => anyhow::bail!("give where the backup goes: `--to FILE` or `--to-dir DIR`"),
    };
    let report = aps_ops::backup::backup(&ctx, &BackupOptions { instance: id, to }, out)?;
    out.data(&serde_json::to_value(&report)?, || {
        let mut t = format!(
            "backup of instance written to `{}` ({} bytes, {} files",
            shown::path(&report.backup),
            report.bytes,
            report.files
        );
        if !report.databases.is_empty() {
            let _ = write!(t, ", databases {}", report.databases.join(", "));
        }
        t.push_str(")\n");
        for old in &report.rotated {
            let _ = writeln!(t, "deleted older backup `{}`", shown::path(old));
        }
        t
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `restore`.
pub fn restore(args: RestoreArgs, s: super::Session, out: &Printer) -> anyhow::Result<ExitCode> {
    let ctx = s.context()?;
    let to = match (args.id, args.site) {
        (Some(id), None) => RestoreTarget::Instance(id),
        (None, Some(site)) => RestoreTarget::New {
            site,
            path: args.path,
        },
        _ => anyhow::bail!(
            "say where to restore: `apsctl restore ID --from FILE` (over an instance) or `apsctl restore --from FILE --site NAME [--path PREFIX]` (a new one)"
        ),
    };
    let report = aps_ops::restore::restore(
        &ctx,
        &RestoreOptions {
            from: args.from,
            to,
        },
        out,
    )?;
    out.data(&serde_json::to_value(&report)?, || {
        format!(
            "instance {} restored at {} (from instance {} of the backup)",
            shown::name(&report.instance),
            shown::name(&report.url),
            shown::name(&report.from_instance)
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `migrate`.
pub fn migrate(args: MigrateArgs, s: super::Session, out: &Printer) -> anyhow::Result<ExitCode> {
    let ctx = s.context()?;
    let report = aps_ops::restore::migrate(
        &ctx,
        &MigrateOptions {
            instance: args.id,
            site: args.site,
            path: args.path,
            keep_source: args.keep_source,
        },
        out,
    )?;
    out.data(&serde_json::to_value(&report)?, || {
        format!(
            "instance {} moved to instance {} at {}{}",
            shown::name(&report.from),
            shown::name(&report.instance),
            shown::name(&report.url),
            if report.source_removed {
                "; the old instance was removed"
            } else {
                "; the old instance was kept"
            }
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Runs a `schedule` command.
pub fn schedule(cmd: ScheduleCmd, s: super::Session, out: &Printer) -> anyhow::Result<ExitCode> {
    let ctx = s.context()?;
    match cmd {
        ScheduleCmd::Add {
            id,
            every,
            to_dir,
            keep,
        } => {
            let view = aps_ops::schedule::add(
                &ctx,
                &ScheduleOptions {
                    instance: id,
                    every,
                    to_dir,
                    keep,
                },
            )?;
            out.data(&serde_json::to_value(&view)?, || {
                format!(
                    "schedule {}: instance {} every {} into `{}`",
                    view.schedule,
                    shown::name(&view.instance),
                    view.every,
                    shown::path(&view.to_dir)
                )
            })?;
        }
        ScheduleCmd::List => {
            let list = aps_ops::schedule::list(&ctx)?;
            out.data(&json!({ "schedules": list }), || {
                let mut t = String::new();
                for v in &list {
                    let _ = writeln!(
                        t,
                        "{}\tinstance {}\tevery {}\t`{}`\tkeep {}\tlast {}\tnext {}{}",
                        v.schedule,
                        shown::name(&v.instance),
                        v.every,
                        shown::path(&v.to_dir),
                        v.keep.map_or_else(|| "all".to_owned(), |k| k.to_string()),
                        v.last.as_deref().unwrap_or("never"),
                        v.next,
                        v.last_error
                            .as_deref()
                            .map(|e| format!("\tlast error: {}", shown::name(e)))
                            .unwrap_or_default()
                    );
                }
                t
            })?;
        }
        ScheduleCmd::Remove { sid } => {
            let view = aps_ops::schedule::remove(&ctx, sid)?;
            out.data(&serde_json::to_value(&view)?, || {
                format!("schedule {} removed", view.schedule)
            })?;
        }
        ScheduleCmd::Run => {
            let runs = aps_ops::schedule::run(&ctx, out)?;
            let failed = runs.iter().any(|r| r.error.is_some());
            out.data(&json!({ "runs": runs }), || {
                if runs.is_empty() {
                    return "no schedule is due".into();
                }
                let mut t = String::new();
                for r in &runs {
                    match (&r.backup, &r.error) {
                        (Some(path), _) => {
                            let _ = writeln!(
                                t,
                                "schedule {}: instance {} backed up to `{}`",
                                r.schedule,
                                shown::name(&r.instance),
                                shown::path(path)
                            );
                        }
                        (None, error) => {
                            let _ = writeln!(
                                t,
                                "schedule {}: instance {} failed: {}",
                                r.schedule,
                                shown::name(&r.instance),
                                shown::message(error.as_deref().unwrap_or(""))
                            );
                        }
                    }
                }
                t
            })?;
            if failed {
                return Ok(ExitCode::from(6));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
