//! `apsctl package …`: lint, import, list, show, remove.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use crate::output::{EXIT_LINT_ERRORS, Printer};

/// Package commands.
#[derive(Debug, Subcommand)]
pub enum PackageCmd {
    /// Check an `.app.zip`, an unpacked package folder or a lone APP-META.xml.
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
            for w in &report.warnings {
                out.warning(&format!("{}: {} [{}]", w.file, w.message, w.rule));
            }
            out.data(&serde_json::to_value(&report)?, || {
                format!(
                    "built `{}` ({} files, {} bytes)",
                    report.path.display(),
                    report.files,
                    report.bytes
                )
            });
            Ok(ExitCode::SUCCESS)
        }
        PackageCmd::Import { file } => {
            let ctx = s.context()?;
            let report = aps_ops::package::import(&ctx, &file)?;
            for w in &report.warnings {
                out.warning(&format!("{}: {} [{}]", w.file, w.message, w.rule));
            }
            let s = &report.summary;
            out.data(&serde_json::to_value(&report)?, || {
                format!(
                    "imported {} {}-{} as `{}`",
                    s.name, s.version, s.release, s.package
                )
            });
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
                        p.package, p.name, p.version, p.release, p.aps_version
                    );
                }
                text
            });
            Ok(ExitCode::SUCCESS)
        }
        PackageCmd::Show { reference } => {
            let ctx = s.context()?;
            let p = aps_ops::package::load(&ctx, &reference)?;
            let mut value = serde_json::to_value(&p.summary)?;
            value["metadata"] = serde_json::to_value(&p.meta)?;
            value["warnings"] = serde_json::to_value(&p.warnings)?;
            out.data(&value, || {
                let s = &p.summary;
                format!(
                    "{} {}-{} (APS {})\nreference: {}\nidentity:  {}\n",
                    s.name, s.version, s.release, s.aps_version, s.package, s.identity
                )
            });
            Ok(ExitCode::SUCCESS)
        }
        PackageCmd::Remove { reference } => {
            let ctx = s.context()?;
            let s = aps_ops::package::remove(&ctx, &reference)?;
            out.data(&serde_json::to_value(&s)?, || {
                format!("removed `{}`", s.package)
            });
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn lint(path: &Path, s: &super::Session, out: &Printer) -> anyhow::Result<ExitCode> {
    let report = aps_ops::package::lint(path, &s.config)?;
    out.data(&serde_json::to_value(&report)?, || {
        let mut text = String::new();
        for (label, list) in [("error", &report.errors), ("warning", &report.warnings)] {
            for f in list {
                let at = match (f.line, f.column) {
                    (Some(l), Some(c)) => format!("{}:{l}:{c}", f.file),
                    _ => f.file.clone(),
                };
                let _ = writeln!(text, "{at}: {label}: {} [{}]", f.message, f.rule);
            }
        }
        let _ = write!(
            text,
            "{} error(s), {} warning(s)",
            report.errors.len(),
            report.warnings.len()
        );
        text
    });
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_LINT_ERRORS)
    })
}
