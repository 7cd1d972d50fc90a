//! The `apsctl` command line: a thin edge over `aps_ops`.
//!
//! `main` parses the arguments, builds the one [`aps_ops::Env`] of the process, sends the
//! command to its handler in [`cli`] and turns the outcome into an exit status. Every handler
//! parses its arguments into an `aps_ops` options struct, calls one operation and renders the
//! report through [`output::Printer`].
mod cli;
mod output;
mod serve;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Before anything is created: files apsctl makes must never be writable by others.
    aps_ops::env::set_umask();
    let args = cli::Args::parse();
    let env = aps_ops::Env::from_process();
    let printer =
        output::Printer::new(args.json, args.quiet, env.flag(aps_ops::env_vars::NO_COLOR));
    if let Err(err) = arm_fault_points(&env) {
        printer.error(&err);
        return ExitCode::from(2);
    }
    match cli::run(args, env, &printer) {
        Ok(code) => code,
        Err(err) => {
            printer.error(&err);
            output::exit_code_for(&err)
        }
    }
}

/// Test builds only (CONTRIBUTING.md "Test hooks"): arms the fault points named in
/// `APSCTL_TEST_FAULT`, plus the step hooks `APSCTL_TEST_FAIL_AFTER=<step>` and
/// `APSCTL_TEST_CRASH_AFTER=<step>` (shorthands for `after:<step>=fail|crash`). A release build
/// has no fault points and reads none of these variables.
fn arm_fault_points(env: &aps_ops::Env) -> anyhow::Result<()> {
    if !aps_failpoint::ENABLED {
        return Ok(());
    }
    let mut spec = Vec::new();
    if let Some(s) = env.var(aps_failpoint::SPEC_VAR) {
        spec.push(s.to_owned());
    }
    for (var, action) in [
        (aps_ops::env_vars::TEST_FAIL_AFTER, "fail"),
        (aps_ops::env_vars::TEST_CRASH_AFTER, "crash"),
    ] {
        if let Some(step) = env.var(var).filter(|s| !s.is_empty()) {
            spec.push(format!("after:{step}={action}"));
        }
    }
    aps_failpoint::configure(&spec.join(","))?;
    Ok(())
}
