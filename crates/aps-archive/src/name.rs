//! Checks of archive entry names: the only names apsctl accepts are plain relative paths.
//!
//! Main decision: names are checked as raw bytes from the central directory, before any data is
//! read, and refused rather than repaired: a name that needs sanitising is a hostile or broken
//! package. After the checks a name is already normal (no empty or `.` segments), so comparing
//! names only needs the trailing `/` of directory entries removed.

use crate::error::NameProblem;

/// A checked entry name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryName {
    /// The name without the trailing `/` of a directory entry.
    pub(crate) path: String,
    /// The raw name ended in `/` (zip's marker of a directory entry).
    pub(crate) has_trailing_slash: bool,
}

/// Why a raw name was refused before it could be checked as a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawNameError {
    /// The bytes are not UTF-8.
    NotUtf8,
    /// The name is UTF-8 but not a safe relative path.
    Unsafe(NameProblem),
}

/// Checks a raw entry name from the central directory.
pub(crate) fn check_raw(raw: &[u8]) -> Result<EntryName, RawNameError> {
    let name = std::str::from_utf8(raw).map_err(|_| RawNameError::NotUtf8)?;
    check(name).map_err(RawNameError::Unsafe)
}

/// Checks a UTF-8 entry name: relative, `/`-separated, no `..`, `.` or empty segment, no
/// backslash, drive letter or control character.
pub(crate) fn check(name: &str) -> Result<EntryName, NameProblem> {
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    if name.chars().any(char::is_control) {
        return Err(NameProblem::ControlCharacter);
    }
    if name.contains('\\') {
        return Err(NameProblem::Backslash);
    }
    if name.starts_with('/') {
        return Err(NameProblem::Absolute);
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err(NameProblem::DriveLetter);
    }
    let (path, has_trailing_slash) = match name.strip_suffix('/') {
        Some(path) => (path, true),
        None => (name, false),
    };
    for segment in path.split('/') {
        match segment {
            "" => return Err(NameProblem::EmptySegment),
            "." => return Err(NameProblem::DotSegment),
            ".." => return Err(NameProblem::ParentSegment),
            _ => {}
        }
    }
    Ok(EntryName {
        path: path.to_owned(),
        has_trailing_slash,
    })
}

/// A name made safe to show in a message: control characters are escaped, invalid UTF-8 is
/// replaced.
pub(crate) fn display(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The proper ancestors of a checked path: `a/b/c` gives `a` and `a/b`.
pub(crate) fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/')
        .map(move |(index, _)| &path[..index])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_accepted() {
        for (name, path, dir) in [
            ("APP-META.xml", "APP-META.xml", false),
            ("htdocs/index.php", "htdocs/index.php", false),
            ("htdocs/", "htdocs", true),
            ("htdocs/wp-content/", "htdocs/wp-content", true),
            ("a/.hidden", "a/.hidden", false),
            ("a/..b/c...", "a/..b/c...", false),
            ("été/日本.txt", "été/日本.txt", false),
            ("ab:c", "ab:c", false),
            ("a/c:d", "a/c:d", false),
            ("1:x", "1:x", false),
        ] {
            let checked = check(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(checked.path, path);
            assert_eq!(checked.has_trailing_slash, dir, "{name}");
        }
    }

    #[test]
    fn unsafe_names_are_refused() {
        for (name, problem) in [
            ("", NameProblem::Empty),
            ("/", NameProblem::Absolute),
            ("/etc/passwd", NameProblem::Absolute),
            ("../evil", NameProblem::ParentSegment),
            ("a/../../evil", NameProblem::ParentSegment),
            ("a/..", NameProblem::ParentSegment),
            ("a/../", NameProblem::ParentSegment),
            ("./a", NameProblem::DotSegment),
            ("a/./b", NameProblem::DotSegment),
            ("a//b", NameProblem::EmptySegment),
            ("a//", NameProblem::EmptySegment),
            ("a\\b", NameProblem::Backslash),
            ("..\\evil", NameProblem::Backslash),
            ("C:/Windows", NameProblem::DriveLetter),
            ("c:evil", NameProblem::DriveLetter),
            ("a:b", NameProblem::DriveLetter),
            ("a\0b", NameProblem::ControlCharacter),
            ("a\nb", NameProblem::ControlCharacter),
            ("a\u{7f}", NameProblem::ControlCharacter),
            ("a\u{85}", NameProblem::ControlCharacter),
        ] {
            assert_eq!(check(name), Err(problem), "{name:?}");
        }
    }

    #[test]
    fn raw_names_must_be_utf8() {
        assert_eq!(check_raw(b"a\xffb"), Err(RawNameError::NotUtf8));
        assert_eq!(
            check_raw(b"../x"),
            Err(RawNameError::Unsafe(NameProblem::ParentSegment))
        );
        assert_eq!(check_raw(b"x/").unwrap().path, "x");
    }

    #[test]
    fn display_escapes_control_characters_and_bad_bytes() {
        assert_eq!(display(b"a\nb"), "a\\nb");
        assert_eq!(display(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(display(b"a\\b"), "a\\b");
    }

    #[test]
    fn ancestors_are_proper_prefixes() {
        assert_eq!(ancestors("a/b/c").collect::<Vec<_>>(), ["a", "a/b"]);
        assert_eq!(ancestors("a").count(), 0);
    }
}
