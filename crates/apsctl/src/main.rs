//! The `apsctl` command line: a thin edge over `aps_ops`.
//!
//! `main` parses the arguments, builds the one [`aps_ops::Env`] of the process, sends the
//! command to its handler in [`cli`] and turns the outcome into an exit status. Every handler
//! parses its arguments into an `aps_ops` options struct, calls one operation and renders the
//! report through [`output::Printer`].
mod cli;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    let env = aps_ops::Env::from_process();
    let printer =
        output::Printer::new(args.json, args.quiet, env.flag(aps_ops::env_vars::NO_COLOR));
    match cli::run(args, env, &printer) {
        Ok(code) => code,
        Err(err) => {
            printer.error(&err);
            output::exit_code_for(&err)
        }
    }
}
