//! `apsctl package …`: lint, build, import, list, show, settings, remove.
//!
//! Text output names packages through [`shown::name`]: names, versions and findings come from
//! the package's author. `package lint` shows at most [`SHOWN_PER_RULE`] findings of one rule in
//! text mode, on a terminal or not (a stale APP-LIST.xml yields one per file), then counts the
//! rest; `--json` lists them all.
mod show;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aps_meta::lint::Finding;
use aps_ops::package::SHOWN_PER_RULE;
use aps_ops::shown;
use clap::Subcommand;
use serde_json::json;

use crate::output::{EXIT_FAILED, EXIT_LINT_ERRORS, Printer};

/// Package commands.
#[derive(Debug, Subcommand)]
pub enum PackageCmd {
    /// Check an `.app.zip`, an unpacked package folder or a lone APP-META.xml.
    ///
    /// Text output shows at most 20 findings of one rule and counts the rest (`--json` lists
    /// them all); with `--quiet` it shows errors only.
    Lint {
        /// The package to check.
        path: PathBuf,
    },
    /// Build an `.app.zip` from a package source folder (writes a fresh APP-LIST.xml).
    Build {
        /// The source folder (APP-META.xml at its top).
        dir: PathBuf,
        /// The archive to write.
        #[arg(long, short, value_name = "FILE")]
        out: PathBuf,
    },
    /// Verify a package and store it in the repository.
    Import {
        /// The `.app.zip` file.
        file: PathBuf,
    },
    /// List the packages in the repository.
    List,
    /// Show a package's metadata: settings, requirements, license, entry points.
    Show {
        /// The package reference printed by `import`.
        reference: String,
    },
    /// Show the package's global settings or, with --set, save them and reconfigure every
    /// instance of the package (of any version).
    Settings {
        /// The package reference printed by `import`.
        reference: String,
        /// A new global setting value (repeatable).
        #[arg(long = "set", value_name = "ID=VALUE")]
        set: Vec<String>,
        /// A JSON object of new values (`{"id": "value"}`; `-` reads standard input, keeping
        /// passwords off the command line); `--set` wins for the same id.
        #[arg(long, value_name = "FILE")]
        settings_file: Option<PathBuf>,
    },
    /// Remove a package from the repository (refused while an instance uses it).
    Remove {
        /// The package reference printed by `import`.
        reference: String,
    },
}

/// Runs a package command.
pub fn run(cmd: PackageCmd, s: super::Session, out: &Printer) -> anyhow::Result<ExitCode> {
    match cmd {
        PackageCmd::Lint { path } => lint(&path, &s, out),
        PackageCmd::Build { dir, out: file } => {
            let report = aps_ops::package::build(&dir, &file)?;
            warn_findings(out, &report.warnings);
            out.data(&serde_json::to_value(&report)?, || {
                format!(
                    "built `{}` ({} files, {} bytes)",
                    shown::path(&report.path),
                    report.files,
                    report.bytes
                )
            })?;
            Ok(ExitCode::SUCCESS)
        }
        PackageCmd::Import { file } => {
            let ctx = s.context()?;
            let report = aps_ops::package::import(&ctx, &file)?;
            warn_findings(out, &report.warnings);
            let s = &report.summary;
            out.data(&serde_json::to_value(&report)?, || {
                format!(
                    "imported {} {}-{} as `{}`",
                    shown::name(&s.name),
                    shown::name(&s.version),
                    shown::name(&s.release),
                    s.package
                )
            })?;
            Ok(ExitCode::SUCCESS)
        }
        PackageCmd::List => {
            let ctx = s.context()?;
            let list = aps_ops::package::list(&ctx)?;
            out.data(&json!({ "packages": list }), || {
                let mut text = String::new();
                for p in &list {
                    let _ = writeln!(
                        text,
                        "{}\t{} {}-{}\tAPS {}",
                        p.package,
                        shown::name(&p.name),
                        shown::name(&p.version),
                        shown::name(&p.release),
                        p.aps_version
                    );
                }
                text
            })?;
            Ok(ExitCode::SUCCESS)
        }
        PackageCmd::Show { reference } => {
            let ctx = s.context()?;
            let details = aps_ops::package::show(&ctx, &reference)?;
            out.data(&details.to_json()?, || show::text(&details))?;
            Ok(ExitCode::SUCCESS)
        }
        PackageCmd::Settings {
            reference,
            set,
            settings_file,
        } => {
            let settings = super::instance::settings_input(settings_file.as_deref(), &set)?;
            let ctx = s.context()?;
            let opts = aps_ops::global::GlobalOptions {
                package: reference,
                settings,
            };
            let report = aps_ops::global::settings(&ctx, &opts, out)?;
            out.data(&serde_json::to_value(&report)?, || global_text(&report))?;
            // Like `recover`: the values are saved, but an instance could not follow them.
            Ok(if report.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_FAILED)
            })
        }
        PackageCmd::Remove { reference } => {
            let ctx = s.context()?;
            let s = aps_ops::package::remove(&ctx, &reference)?;
            out.data(&serde_json::to_value(&s)?, || {
                format!("removed `{}`", s.package)
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The text of `package settings`: one line per setting, then what happened to each instance.
fn global_text(report: &aps_ops::global::GlobalReport) -> String {
    let mut t = String::new();
    if report.settings.is_empty() {
        let _ = writeln!(t, "package `{}` has no global settings", report.package);
    }
    for (id, value) in &report.settings {
        let mut notes = Vec::new();
        if !report.saved.contains(id) {
            notes.push("default");
        }
        if report.installation_only.contains(id) {
            notes.push("installation only");
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join(", "))
        };
        let _ = writeln!(
            t,
            "setting:  {} = {}{notes}",
            shown::name(id),
            shown::name(value)
        );
    }
    for id in &report.reconfigured {
        let _ = writeln!(t, "instance {id} reconfigured");
    }
    for f in &report.failed {
        let _ = writeln!(
            t,
            "instance {} not reconfigured: {}",
            f.instance,
            shown::message(&f.error).replace('\n', "\n  ")
        );
    }
    t
}

fn lint(path: &Path, s: &super::Session, out: &Printer) -> anyhow::Result<ExitCode> {
    let report = aps_ops::package::lint(path, &s.config)?;
    out.data(&serde_json::to_value(&report)?, || {
        let mut text = String::new();
        write_findings(&mut text, "error", &report.errors);
        if !out.is_quiet() {
            write_findings(&mut text, "warning", &report.warnings);
        }
        let _ = write!(
            text,
            "{} error(s), {} warning(s)",
            report.errors.len(),
            report.warnings.len()
        );
        text
    })?;
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_LINT_ERRORS)
    })
}

/// One line per finding, at most [`SHOWN_PER_RULE`] of each rule, then a count of the rest.
fn write_findings(text: &mut String, label: &str, findings: &[Finding]) {
    let mut per_rule: BTreeMap<&str, usize> = BTreeMap::new();
    for f in findings {
        let seen = per_rule.entry(f.rule.as_str()).or_default();
        *seen += 1;
        if *seen > SHOWN_PER_RULE {
            continue;
        }
        let file = shown::name(&f.file);
        let at = match (f.line, f.column) {
            (Some(l), Some(c)) => format!("{file}:{l}:{c}"),
            _ => file.to_string(),
        };
        let _ = writeln!(
            text,
            "{at}: {label}: {} [{}]",
            shown::name(&f.message),
            f.rule
        );
    }
    for (rule, count) in per_rule {
        if count > SHOWN_PER_RULE {
            let _ = writeln!(
                text,
                "… and {} more {label}(s) of rule `{rule}` not shown (`--json` lists them all)",
                count - SHOWN_PER_RULE
            );
        }
    }
}

/// Lint warnings of a build or an import, on stderr.
fn warn_findings(out: &Printer, findings: &[Finding]) {
    for w in findings {
        out.warning(&format!(
            "{}: {} [{}]",
            shown::name(&w.file),
            shown::name(&w.message),
            w.rule
        ));
    }
}
