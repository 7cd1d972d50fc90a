//! Running a package's configuration script for an instance (REFERENCE §4.1–§4.4; D7).
//!
//! Main decision: one function runs every action (`install`, `configure`, `upgrade`, `remove`):
//! the interpreter is checked first, the run goes through [`aps_host::runner`] (site user, clean
//! environment, private scripts folder as working directory, timeout, capped and redacted
//! output), and a failure becomes an error that shows the script's own message. That message is
//! indented below the error's first line, so whatever the script prints can never look like a
//! line of apsctl's own (`error: …`); the CLI escapes terminal controls in it when printing.
use std::path::{Path, PathBuf};

use aps_host::interp::Interpreter;
use aps_host::runner::{RunStatus, ScriptRun};
use aps_host::shown::indented;
use aps_host::user::SystemUser;
use aps_meta::model::ScriptDecl;

use crate::context::Context;
use crate::error::Error;
use crate::report::Reporter;
use crate::vars::VarSet;

/// How much of a failed script's output an error shows.
const SHOWN_OUTPUT: usize = 4000;
/// The indentation of a script's own lines inside an error.
const OUTPUT_INDENT: &str = "    ";

/// A configuration script ready to run for one instance.
#[derive(Debug)]
pub(crate) struct ConfigScript<'a> {
    /// The declaration (name, language, structured output).
    pub decl: &'a ScriptDecl,
    /// The checked interpreter.
    pub interpreter: Interpreter,
    /// The instance's private `scripts/` folder (the working directory).
    pub scripts_dir: PathBuf,
    /// The site's user.
    pub user: &'a SystemUser,
}

impl ConfigScript<'_> {
    /// Journal step `configure-<action>`: [`ConfigScript::run_recorded`] in a step of its own.
    pub(crate) fn run_step(
        &self,
        journal: &mut crate::journal::Journal<'_>,
        instance: &str,
        action: &str,
        extra: &[String],
        vars: &VarSet,
        reporter: &dyn Reporter,
    ) -> Result<(), Error> {
        journal.step(&format!("configure-{action}"), |j| {
            self.run_recorded(j, instance, action, extra, vars, reporter)
        })
    }

    /// Runs `configure <action> <extra…>`, recorded first as a [`crate::change::Change::Script`]
    /// of `instance` in `journal` (so that a failure, or `recover` after a crash while it runs,
    /// answers it as `undo.rs` says).
    pub(crate) fn run_recorded(
        &self,
        journal: &mut crate::journal::Journal<'_>,
        instance: &str,
        action: &str,
        extra: &[String],
        vars: &VarSet,
        reporter: &dyn Reporter,
    ) -> Result<(), Error> {
        let change = crate::change::Change::Script {
            instance: instance.to_owned(),
            action: action.to_owned(),
        };
        let ctx = journal.context();
        journal.change(change, || self.run(ctx, action, extra, vars, reporter))
    }

    /// Runs `configure <action> <extra…>` with `vars`; `Ok` only for exit status 0 (and, with
    /// structured output, no reported error).
    pub(crate) fn run(
        &self,
        ctx: &Context,
        action: &str,
        extra: &[String],
        vars: &VarSet,
        reporter: &dyn Reporter,
    ) -> Result<(), Error> {
        let script = self.scripts_dir.join(&self.decl.name);
        reporter.step(&format!("running `{} {action}`", self.decl.name));
        let mut run = ScriptRun::script(
            &self.interpreter.program,
            &script,
            action,
            &self.scripts_dir,
            self.user,
        );
        run.args.extend(extra.iter().cloned());
        run.vars.clone_from(&vars.vars);
        run.secrets.clone_from(&vars.secrets);
        run.timeout = ctx.config.script_timeout;
        run.output_cap = ctx.config.output_cap;
        let shown = format!("`{} {action}`", self.decl.name);
        let outcome = aps_host::runner::run(&ctx.env, &run)
            .map_err(|e| Error::Failed(format!("{shown} could not be started: {e}")))?;
        let output = || {
            let text = if outcome.stderr.text.trim().is_empty() {
                &outcome.stdout.text
            } else {
                &outcome.stderr.text
            };
            tail(text.trim(), SHOWN_OUTPUT)
        };
        let why = match outcome.status {
            RunStatus::Exited(0) => None,
            RunStatus::Exited(code) => Some(format!("exited with status {code}")),
            RunStatus::Signaled(sig) => Some(format!("was killed by signal {sig}")),
            RunStatus::TimedOut => Some(format!(
                "ran longer than {} seconds and was stopped",
                run.timeout.as_secs()
            )),
        };
        if let Some(why) = why {
            let out = output();
            return Err(Error::Failed(if out.is_empty() {
                format!("{shown} {why} without a message")
            } else {
                format!("{shown} {why}:\n{}", indented(&out, OUTPUT_INDENT))
            }));
        }
        if self.decl.structured_output {
            if outcome.stdout.truncated {
                return Err(Error::Failed(format!(
                    "{shown} printed more structured output than apsctl keeps"
                )));
            }
            let parsed = aps_host::configure_output::parse_configure_output(&outcome.stdout.text)
                .map_err(|e| {
                Error::Failed(format!("{shown} printed invalid structured output: {e}"))
            })?;
            if parsed.has_errors() {
                let lines: Vec<String> = parsed
                    .errors
                    .iter()
                    .map(|e| {
                        let message = e.message.as_deref().unwrap_or("(no message)");
                        let line = match &e.setting_id {
                            Some(id) => format!("setting `{id}`: {message}"),
                            None => message.to_owned(),
                        };
                        indented(&line, OUTPUT_INDENT)
                    })
                    .collect();
                return Err(Error::Failed(format!(
                    "{shown} reported errors:\n{}",
                    lines.join("\n")
                )));
            }
        }
        Ok(())
    }
}

/// The last `max` bytes of `text`, cut at a character boundary.
fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

/// Creates the empty file `name` in the site user's folder `dir` (an instance's private `tmp/`)
/// for the site's user, mode 0600, through descriptors (the user owns the folder and may have
/// planted anything there: what has the name is removed first, a link never followed), and
/// returns it open for writing.
pub(crate) fn user_file(
    dir: &Path,
    name: &str,
    user: &aps_host::user::SystemUser,
) -> Result<std::fs::File, Error> {
    let folder = aps_host::safedir::SafeDir::open(dir).map_err(Error::Site)?;
    folder.remove_tree(name).map_err(Error::Site)?;
    let file = folder.create_file(name, 0o600).map_err(Error::Site)?;
    folder
        .chown_entry(std::ffi::OsStr::new(name), user.uid(), user.gid())
        .map_err(Error::Site)?;
    Ok(file)
}

/// The private `scripts/` folder of an instance.
pub(crate) fn scripts_dir(private: &Path) -> PathBuf {
    private.join("scripts")
}

#[cfg(test)]
mod tests {
    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        assert_eq!(super::tail("abc", 10), "abc");
        assert_eq!(super::tail("ééé", 3), "…é");
    }
}
