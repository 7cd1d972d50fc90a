//! All output of the CLI: data on stdout (text or exactly one JSON document), diagnostics on stderr.
//!
//! Main decision: this is the only module that prints, so it is where untrusted text is defused.
//! Every line of text goes through [`aps_ops::shown::message`] (terminal controls and bidi
//! overrides become readable escapes); the continuation lines of a diagnostic are indented, so no
//! text embedded in a message can start a line that looks like apsctl's own `error:`; JSON strings
//! carry the same characters as `\uXXXX` escapes (the same JSON value, harmless on a terminal).
//! Renderers still wrap each untrusted value in [`aps_ops::shown::name`], which escapes its
//! newlines too.
//!
//! It writes through locked `stdout`/`stderr` handles rather than `println!`, which panics when
//! a write fails.
//!
//! A closed standard output (`apsctl … | head -3`) is not an error: the rest of the output is
//! dropped silently, as `cat` would, and the command keeps its own exit status. Any other failure
//! to write the result is reported and exits 70. A failure to write to stderr is ignored: there
//! is nowhere left to report it.

use std::cell::Cell;
use std::fmt;
use std::io::{self, IsTerminal, Write as _};
use std::process::ExitCode;

use aps_ops::report::FileChoice;
use aps_ops::{ErrorKind, Reporter, shown};

/// Exit status for lint findings with errors (CLI.md).
pub const EXIT_LINT_ERRORS: u8 = 1;
/// Exit status for an operation that failed (`ErrorKind::Failed`), also when it failed for some
/// of the instances it acts on (`recover`, `package settings`).
pub const EXIT_FAILED: u8 = 6;
/// Exit status for unexpected failures (also: the result could not be written).
pub const EXIT_INTERNAL: u8 = 70;

/// Prints data and diagnostics for one invocation.
#[derive(Debug)]
pub struct Printer {
    json: bool,
    quiet: bool,
    color: bool,
    /// Standard output was closed by its reader; nothing more is written to it.
    stdout_closed: Cell<bool>,
    /// The progress bar of a long operation, while one is drawn (a terminal only).
    bar: std::cell::RefCell<Option<indicatif::ProgressBar>>,
}

impl Printer {
    /// A printer for `--json` / `--quiet`; colours only on a terminal and without `NO_COLOR`.
    pub fn new(json: bool, quiet: bool, no_color: bool) -> Self {
        Self {
            json,
            quiet,
            color: !no_color && io::stderr().is_terminal(),
            stdout_closed: Cell::new(false),
            bar: std::cell::RefCell::new(None),
        }
    }

    /// Whether `--quiet` was given (no progress, no warnings).
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// Prints the command's result: `value` as JSON with `--json`, else `text`.
    pub fn data(
        &self,
        value: &serde_json::Value,
        text: impl FnOnce() -> String,
    ) -> Result<(), StdoutError> {
        if self.json {
            self.write_stdout(&terminal_safe_json(value))
        } else {
            let text = text();
            let text = text.trim_end();
            if text.is_empty() {
                Ok(())
            } else {
                self.write_stdout(&shown::message(text))
            }
        }
    }

    /// Prints a document apsctl generated itself (a completion script, a man page, the `OpenAPI`
    /// document) exactly as it is, with or without `--json`.
    pub fn document(&self, text: &str) -> Result<(), StdoutError> {
        self.write_stdout(text.trim_end())
    }

    fn write_stdout(&self, text: &str) -> Result<(), StdoutError> {
        if self.stdout_closed.get() {
            return Ok(());
        }
        let mut out = io::stdout().lock();
        match writeln!(out, "{text}").and_then(|()| out.flush()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.stdout_closed.set(true);
                Ok(())
            }
            Err(e) => Err(StdoutError(e)),
        }
    }

    /// A warning on stderr (not with `--quiet`).
    pub fn warning(&self, message: &str) {
        if !self.quiet {
            let tag = self.tag("warning", "33");
            write_stderr(&format!("{tag}: {}", diagnostic(message)));
        }
    }

    /// An error and its causes on stderr.
    pub fn error(&self, err: &anyhow::Error) {
        let tag = self.tag("error", "31");
        let mut message = err.to_string();
        for cause in err.chain().skip(1) {
            let cause = cause.to_string();
            if !message.contains(&cause) {
                message.push_str(": ");
                message.push_str(&cause);
            }
        }
        write_stderr(&format!("{tag}: {}", diagnostic(&message)));
    }

    fn tag(&self, word: &str, color: &str) -> String {
        if self.color {
            format!("\x1b[{color}m{word}\x1b[0m")
        } else {
            word.to_owned()
        }
    }
}

/// `message` escaped for the terminal, each continuation line indented unless it already is.
fn diagnostic(message: &str) -> String {
    let message = shown::message(message);
    let mut out = String::with_capacity(message.len());
    for (i, line) in message.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            if !line.is_empty() && !line.starts_with([' ', '\t']) {
                out.push_str("  ");
            }
        }
        out.push_str(line);
    }
    out
}

/// Writes one diagnostic line (or block) on stderr, ignoring failures.
fn write_stderr(text: &str) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{text}");
}

/// The result could not be written to standard output (for a reason other than a closed pipe).
#[derive(Debug)]
pub struct StdoutError(io::Error);

impl fmt::Display for StdoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot write the result to standard output")
    }
}

impl std::error::Error for StdoutError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl Reporter for Printer {
    fn step(&self, message: &str) {
        if !self.quiet && !self.json {
            match self.bar.borrow().as_ref() {
                Some(bar) => bar.suspend(|| write_stderr(&diagnostic(message))),
                None => write_stderr(&diagnostic(message)),
            }
        }
    }

    /// A bar on a terminal only (files, bytes, rate and, when the total is known, ETA); nothing
    /// with `--quiet`, `--json` or when stderr is not a terminal.
    fn progress(&self, progress: &aps_ops::report::Progress<'_>) {
        if self.quiet || self.json || !io::stderr().is_terminal() {
            return;
        }
        let mut slot = self.bar.borrow_mut();
        let bar = slot.get_or_insert_with(|| {
            let bar = indicatif::ProgressBar::new(0);
            let style = indicatif::ProgressStyle::with_template(
                "{spinner} {msg} {bytes} ({binary_bytes_per_sec}) {elapsed_precise} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
            bar.set_style(style);
            bar
        });
        if let Some(total) = progress.total_bytes {
            bar.set_length(total);
        }
        bar.set_position(progress.bytes);
        bar.set_message(format!(
            "{}: {} files",
            shown::message(progress.phase),
            progress.files
        ));
    }

    fn progress_done(&self) {
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.finish_and_clear();
        }
    }

    fn warn(&self, message: &str) {
        self.warning(message);
    }

    fn can_ask(&self) -> bool {
        io::stdin().is_terminal() && io::stderr().is_terminal()
    }

    fn ask_file_choice(&self, kept_preview: &str) -> Option<FileChoice> {
        let stdin = io::stdin();
        if !stdin.is_terminal() || !io::stderr().is_terminal() {
            return None;
        }
        write_stderr(&diagnostic(kept_preview));
        loop {
            {
                let mut err = io::stderr().lock();
                let _ = write!(
                    err,
                    "Remove [a]ll files of the instance, or only the [p]ackage's own files \
                     (keeping files the application created or changed)? [a/p] "
                );
                let _ = err.flush();
            }
            let mut line = String::new();
            if stdin.read_line(&mut line).ok()? == 0 {
                return None;
            }
            match line.trim().to_ascii_lowercase().as_str() {
                "a" | "all" => return Some(FileChoice::All),
                "p" | "app" | "package" => return Some(FileChoice::App),
                _ => write_stderr("Please answer `a` or `p`."),
            }
        }
    }
}

/// `value` as pretty JSON whose strings carry every character [`shown::is_unsafe`] names as a
/// `\uXXXX` escape (`serde_json` escapes the C0 controls itself, not DEL, C1 or bidi controls).
fn terminal_safe_json(value: &serde_json::Value) -> String {
    use serde::Serialize as _;
    let mut bytes = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut bytes,
        TerminalSafeJson(serde_json::ser::PrettyFormatter::new()),
    );
    if value.serialize(&mut ser).is_err() {
        return "null".into();
    }
    String::from_utf8(bytes).unwrap_or_else(|_| "null".into())
}

/// `serde_json`'s pretty formatter with the string escapes of [`terminal_safe_json`].
struct TerminalSafeJson(serde_json::ser::PrettyFormatter<'static>);

impl serde_json::ser::Formatter for TerminalSafeJson {
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }

    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }

    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }

    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut rest = fragment;
        while let Some(at) = rest.find(shown::is_unsafe) {
            w.write_all(&rest.as_bytes()[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            write!(w, "\\u{:04x}", u32::from(c))?;
            rest = &rest[at + c.len_utf8()..];
        }
        w.write_all(rest.as_bytes())
    }
}

/// The exit status for an error: by its `aps_ops` kind when it has one.
pub fn exit_code_for(err: &anyhow::Error) -> ExitCode {
    if err.downcast_ref::<StdoutError>().is_some() {
        return ExitCode::from(EXIT_INTERNAL);
    }
    let kind = err
        .downcast_ref::<aps_ops::Error>()
        .map(aps_ops::Error::kind);
    ExitCode::from(match kind {
        Some(ErrorKind::Invalid) | None => 2,
        Some(ErrorKind::NotFound) => 3,
        Some(ErrorKind::Conflict) => 4,
        Some(ErrorKind::Busy) => 5,
        Some(ErrorKind::Failed) => EXIT_FAILED,
        Some(ErrorKind::Internal) => EXIT_INTERNAL,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_indent_their_continuation_lines() {
        assert_eq!(
            diagnostic("cannot remove `a\nerror: forged`\n  kept\n\nlast"),
            "cannot remove `a\n  error: forged`\n  kept\n\n  last"
        );
        assert_eq!(diagnostic("one \x1b[2J line"), "one \\x1b[2J line");
    }

    #[test]
    fn json_escapes_bidi_c1_and_del_but_keeps_the_value() {
        let value = serde_json::json!({"name": "a\u{202e}b\u{9b}c\x7fd\x1be\u{2066}f é"});
        let text = terminal_safe_json(&value);
        assert!(
            text.contains(r"a\u202eb\u009bc\u007fd\u001be\u2066f é"),
            "{text}"
        );
        assert!(
            !text.chars().any(|c| c != '\n' && shown::is_unsafe(c)),
            "{text}"
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }
}
