//! All output of the CLI: data on stdout (text or exactly one JSON document), diagnostics on stderr.
//!
//! Main decision: this is the only module that prints. Errors are rendered as plain sentences,
//! the error and its causes joined, and mapped to exit statuses by kind.
#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the CLI's output module"
)]

use std::io::IsTerminal;
use std::process::ExitCode;

use aps_ops::report::FileChoice;
use aps_ops::{ErrorKind, Reporter};

/// Exit status for lint findings with errors (CLI.md).
pub const EXIT_LINT_ERRORS: u8 = 1;

/// Prints data and diagnostics for one invocation.
#[derive(Debug)]
pub struct Printer {
    json: bool,
    quiet: bool,
    color: bool,
}

impl Printer {
    /// A printer for `--json` / `--quiet`; colours only on a terminal and without `NO_COLOR`.
    pub fn new(json: bool, quiet: bool, no_color: bool) -> Self {
        Self {
            json,
            quiet,
            color: !no_color && std::io::stderr().is_terminal(),
        }
    }

    /// Prints the command's result: `value` as JSON with `--json`, else `text`.
    pub fn data(&self, value: &serde_json::Value, text: impl FnOnce() -> String) {
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into())
            );
        } else {
            let text = text();
            if !text.is_empty() {
                println!("{}", text.trim_end());
            }
        }
    }

    /// A warning on stderr.
    pub fn warning(&self, message: &str) {
        if !self.quiet {
            let tag = if self.color {
                "\x1b[33mwarning\x1b[0m"
            } else {
                "warning"
            };
            eprintln!("{tag}: {message}");
        }
    }

    /// An error and its causes on stderr.
    pub fn error(&self, err: &anyhow::Error) {
        let tag = if self.color {
            "\x1b[31merror\x1b[0m"
        } else {
            "error"
        };
        let mut message = err.to_string();
        for cause in err.chain().skip(1) {
            let cause = cause.to_string();
            if !message.contains(&cause) {
                message.push_str(": ");
                message.push_str(&cause);
            }
        }
        eprintln!("{tag}: {message}");
    }
}

impl Reporter for Printer {
    fn step(&self, message: &str) {
        if !self.quiet && !self.json {
            eprintln!("{message}");
        }
    }

    fn warn(&self, message: &str) {
        self.warning(message);
    }

    fn can_ask(&self) -> bool {
        std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
    }

    fn ask_file_choice(&self, kept_preview: &str) -> Option<FileChoice> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() || !std::io::stderr().is_terminal() {
            return None;
        }
        eprintln!("{kept_preview}");
        loop {
            eprint!(
                "Remove [a]ll files of the instance, or only the [p]ackage's own files \
                 (keeping files the application created or changed)? [a/p] "
            );
            let mut line = String::new();
            if stdin.read_line(&mut line).ok()? == 0 {
                return None;
            }
            match line.trim().to_ascii_lowercase().as_str() {
                "a" | "all" => return Some(FileChoice::All),
                "p" | "app" | "package" => return Some(FileChoice::App),
                _ => eprintln!("Please answer `a` or `p`."),
            }
        }
    }
}

/// The exit status for an error: by its `aps_ops` kind when it has one.
pub fn exit_code_for(err: &anyhow::Error) -> ExitCode {
    let kind = err
        .downcast_ref::<aps_ops::Error>()
        .map(aps_ops::Error::kind);
    ExitCode::from(match kind {
        Some(ErrorKind::Invalid) | None => 2,
        Some(ErrorKind::NotFound) => 3,
        Some(ErrorKind::Conflict) => 4,
        Some(ErrorKind::Busy) => 5,
        Some(ErrorKind::Failed) => 6,
        Some(ErrorKind::Internal) => 70,
    })
}
