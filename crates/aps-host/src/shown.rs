//! Untrusted text made safe to show on a terminal: script output, tenant file names, package texts.
//!
//! A tenant controls the names of the files its application creates and what its scripts print;
//! a package author controls its metadata. Printed raw, such text can clear the admin's screen,
//! move the cursor over earlier lines, write the admin's clipboard (OSC 52), reorder what the
//! admin reads (Unicode bidi overrides), or forge a line that looks like one of apsctl's own
//! `error:` lines (a newline in a file name).
//!
//! Main decision: two levels, both replacing every unsafe character by a readable escape
//! (`\x1b`, `\u{202e}`) rather than dropping it, so the admin sees that something was there:
//!
//! * [`message`] escapes a whole message built by apsctl: its structural newlines and tabs stay.
//!   The CLI applies it to every line it prints.
//! * [`name`] (and [`path`]) escape one untrusted value interpolated into a message: `\n`, `\r`
//!   and `\t` are escaped too, so a value can never start a line of its own.
//!
//! Unsafe are the C0 controls, DEL, the C1 controls (U+0080–U+009F; some terminals read U+009B as
//! CSI), the bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069), the bidi marks
//! U+200E, U+200F and U+061C, and the line and paragraph separators U+2028/U+2029.
//!
//! Known gaps: a backslash is not escaped, so a name that literally contains `\x1b` reads the same
//! as one holding the escape character (harmless: neither acts on the terminal). Look-alike
//! characters (homoglyphs) and zero-width characters other than the bidi marks pass unchanged.
use std::borrow::Cow;
use std::fmt;
use std::path::Path;

/// Whether `c` must never reach a terminal as it is (see the module documentation).
pub fn is_unsafe(c: char) -> bool {
    matches!(
        c,
        '\0'..='\x1f'
            | '\x7f'..='\u{9f}'
            | '\u{061c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

/// A whole message for the terminal: every unsafe character escaped except `\n` and `\t`, which
/// structure apsctl's own output.
pub fn message(text: &str) -> Cow<'_, str> {
    escape(text, |c| c != '\n' && c != '\t' && is_unsafe(c))
}

/// One untrusted value (a file name, a path, script text) to interpolate into a message: every
/// unsafe character escaped, `\n`, `\r` and `\t` included.
pub fn name<T: AsRef<str> + ?Sized>(text: &T) -> Name<'_> {
    Name(text.as_ref())
}

/// A path to interpolate into a message, escaped like [`name`] (not UTF-8: replaced by U+FFFD).
pub fn path<P: AsRef<Path> + ?Sized>(path: &P) -> ShownPath<'_> {
    ShownPath(path.as_ref())
}

/// An untrusted value that displays escaped; see [`name`].
#[derive(Debug, Clone, Copy)]
pub struct Name<'a>(&'a str);

impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0, is_unsafe)
    }
}

/// A path that displays escaped; see [`path`].
#[derive(Debug, Clone, Copy)]
pub struct ShownPath<'a>(&'a Path);

impl fmt::Display for ShownPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, &self.0.to_string_lossy(), is_unsafe)
    }
}

/// `text` with every character matching `unsafe_char` escaped; borrowed when nothing matches.
fn escape(text: &str, unsafe_char: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(&unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    // Writing into a String cannot fail.
    let _ = write_escaped(&mut out, text, unsafe_char);
    Cow::Owned(out)
}

fn write_escaped(
    out: &mut impl fmt::Write,
    text: &str,
    unsafe_char: impl Fn(char) -> bool,
) -> fmt::Result {
    let mut rest = text;
    while let Some(at) = rest.find(&unsafe_char) {
        out.write_str(&rest[..at])?;
        let c = rest[at..].chars().next().unwrap_or_default();
        write_escape(out, c)?;
        rest = &rest[at + c.len_utf8()..];
    }
    out.write_str(rest)
}

/// The readable escape of one character: `\n`, `\r`, `\t`, `\x1b` (C0 and DEL), `\u{9b}`.
fn write_escape(out: &mut impl fmt::Write, c: char) -> fmt::Result {
    match c {
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\t' => out.write_str("\\t"),
        '\0'..='\x7f' => write!(out, "\\x{:02x}", u32::from(c)),
        _ => write!(out, "\\u{{{:x}}}", u32::from(c)),
    }
}

/// `text` with every line indented by `indent`, so that captured output embedded in a message
/// never starts a line of its own (never looks like an `error:` line of apsctl). Lines are split
/// on `\n` only; a `\r` stays in its line, where [`message`] escapes it.
pub fn indented(text: &str, indent: &str) -> String {
    let mut out = String::with_capacity(text.len() + indent.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(indent);
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_keeps_newlines_and_tabs_and_escapes_the_rest() {
        assert_eq!(message("plain\ttext\nline"), "plain\ttext\nline");
        assert!(matches!(message("plain"), Cow::Borrowed(_)));
        assert_eq!(message("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(message("over\rwrite"), "over\\rwrite");
        assert_eq!(message("del\x7f"), "del\\x7f");
        assert_eq!(message("nul\0"), "nul\\x00");
        assert_eq!(message("csi\u{9b}31m"), "csi\\u{9b}31m");
        assert_eq!(message("bell\x07"), "bell\\x07");
    }

    #[test]
    fn osc52_clipboard_write_is_defused() {
        let attack = "\x1b]52;c;ZWNobyBwd25lZA==\x07";
        let shown = message(attack);
        assert!(
            !shown.contains('\x1b') && !shown.contains('\x07'),
            "{shown}"
        );
        assert_eq!(shown, "\\x1b]52;c;ZWNobyBwd25lZA==\\x07");
    }

    #[test]
    fn bidi_controls_are_escaped_in_both_levels() {
        for c in [
            '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200e}', '\u{200f}', '\u{061c}', '\u{2028}', '\u{2029}',
        ] {
            let text = format!("file{c}txt.exe");
            let expected = format!("file\\u{{{:x}}}txt.exe", u32::from(c));
            assert_eq!(message(&text), expected);
            assert_eq!(name(&text).to_string(), expected);
        }
    }

    #[test]
    fn names_escape_line_breaks_and_tabs() {
        assert_eq!(
            name("x\nerror: forged\r\tz").to_string(),
            "x\\nerror: forged\\r\\tz"
        );
        assert_eq!(name("ordinary name.txt").to_string(), "ordinary name.txt");
        assert_eq!(name("é ü 日本").to_string(), "é ü 日本");
    }

    #[test]
    fn paths_display_escaped() {
        let p = Path::new("/srv/www/a\nb\x1b");
        assert_eq!(path(p).to_string(), "/srv/www/a\\nb\\x1b");
    }

    #[test]
    fn non_ascii_text_is_kept() {
        assert_eq!(message("Grüße – “quoted” 🙂"), "Grüße – “quoted” 🙂");
        assert!(!is_unsafe('\u{a0}'));
        assert!(!is_unsafe('é'));
    }

    #[test]
    fn indented_text_never_starts_a_line() {
        let mut out = String::from("`configure install` exited with status 1:");
        out.push('\n');
        out.push_str(&indented("boom\nerror: forged\n", "    "));
        assert_eq!(
            out,
            "`configure install` exited with status 1:\n    boom\n    error: forged\n    "
        );
        assert!(out.lines().skip(1).all(|l| l.starts_with("    ")));
    }
}
