//! Where an instance lives on its site: the checked installation path, the instance root, and
//! opening site folders without following links (REFERENCE §8.3 step 4, §11 Q29; §9 lessons).
//!
//! Main decision: a prefix given by the user is validated, never rewritten (`blog.v2` stays
//! `blog.v2`), and compared with others component by component (`htdocs` never contains
//! `htdocsX`). Every site folder is opened through descriptors from the document root, which is
//! itself opened without following a link anywhere in its path: the site's user owns the tree
//! and may swap any folder for a link at any moment, while apsctl acts as root.
//!
//! Known gap: the checks before any change ([`Place::target`]) answer for the moment they run;
//! the install re-checks under its own claim of the folder (see `deploy.rs`), so a folder
//! filled in between makes the install fail, never merge.
use std::path::{Path, PathBuf};

use aps_host::safedir::SafeDir;

use crate::error::Error;

/// Checks a user-given prefix (`--path`): relative segments of visible characters, no `.`, `..`
/// or empty segment, no control or bidi characters, no name reserved by apsctl; it is never
/// rewritten (§9). Returns it without leading/trailing slashes.
pub(crate) fn check_prefix(prefix: &str) -> Result<String, Error> {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    for segment in trimmed.split('/') {
        let bad = segment.is_empty()
            || segment == "."
            || segment == ".."
            || segment.starts_with(".apsctl")
            || segment
                .chars()
                .any(|c| c.is_control() || c == '\\' || is_bidi(c))
            || segment.len() > 255;
        if bad {
            return Err(Error::Invalid(format!(
                "installation path `{}` is not usable: segment `{}` is empty, `.`, `..`, reserved, or has control or bidi characters",
                prefix.escape_debug(),
                segment.escape_debug()
            )));
        }
    }
    Ok(trimmed.to_owned())
}

/// Unicode bidi embeddings, overrides, isolates and marks: they make a shown path read
/// differently from what it is.
fn is_bidi(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Whether two prefixes would put one instance inside, onto or around another.
pub(crate) fn prefixes_overlap(a: &str, b: &str) -> bool {
    let inside = |outer: &str, inner: &str| {
        outer.is_empty() || inner == outer || inner.starts_with(&format!("{outer}/"))
    };
    inside(a, b) || inside(b, a)
}

/// Splits `a/b/c` into `a/b` and `c`, and `c` into an empty parent and `c`.
pub(crate) fn split_last(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or(("", rel))
}

/// Opens a site's document root, following no link anywhere in its path.
pub(crate) fn open_docroot(docroot: &Path) -> Result<SafeDir, Error> {
    SafeDir::open_no_links(docroot).map_err(Error::Site)
}

/// What lies at an instance root before the install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// Nothing: the install creates it. `first_missing` is the outermost folder of the prefix
    /// that does not exist (relative to the document root).
    Missing {
        /// The outermost missing folder.
        first_missing: String,
    },
    /// An existing empty folder (the document root itself for a root install).
    EmptyFolder,
}

/// Where an instance lives on its site.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Place<'a> {
    /// The site's document root.
    pub docroot: &'a Path,
    /// The installation path below it (empty for the document root).
    pub prefix: &'a str,
}

impl Place<'_> {
    /// The instance root as a path (for messages and variables).
    pub fn root(&self) -> PathBuf {
        if self.prefix.is_empty() {
            self.docroot.to_path_buf()
        } else {
            self.docroot.join(self.prefix)
        }
    }

    /// Opens the instance root without following links.
    pub fn open_root(&self) -> Result<SafeDir, Error> {
        let site = open_docroot(self.docroot)?;
        if self.prefix.is_empty() {
            Ok(site)
        } else {
            site.open_rel(Path::new(self.prefix)).map_err(Error::Site)
        }
    }

    /// Opens the instance root, or `None` when it (or a folder between it and the document
    /// root) is not there as a folder: gone, or replaced by a link or a file (which is never
    /// followed or touched: what the site's user put in its document root is theirs). A
    /// document root that cannot be opened (a link planted in its path) is an error.
    pub fn open_root_if_present(&self) -> Result<Option<SafeDir>, Error> {
        let site = open_docroot(self.docroot)?;
        if self.prefix.is_empty() {
            return Ok(Some(site));
        }
        match site.open_rel(Path::new(self.prefix)) {
            Ok(dir) => Ok(Some(dir)),
            Err(e) if e.is_not_found() || e.is_not_a_folder() => Ok(None),
            Err(e) => Err(Error::Site(e)),
        }
    }

    /// Opens the folder holding site-relative entry `rel` and returns it with the entry's name,
    /// or `None` when that folder does not exist.
    pub fn open_parent_of<'r>(
        docroot: &Path,
        rel: &'r str,
    ) -> Result<Option<(SafeDir, &'r str)>, Error> {
        let (parent, name) = split_last(rel);
        let place = Place {
            docroot,
            prefix: parent,
        };
        Ok(place.open_root_if_present()?.map(|dir| (dir, name)))
    }

    /// §8.3 step 4 / §11 Q29: the target must be absent or an empty folder, reached from the
    /// document root without links.
    pub fn target(&self) -> Result<Target, Error> {
        let mut dir = open_docroot(self.docroot)?;
        let mut rel = String::new();
        for part in self.prefix.split('/').filter(|p| !p.is_empty()) {
            if !rel.is_empty() {
                rel.push('/');
            }
            rel.push_str(part);
            if !dir.contains(part) {
                return Ok(Target::Missing { first_missing: rel });
            }
            dir = dir.open_dir(part).map_err(|e| {
                Error::Conflict(format!(
                    "installation directory `{}` cannot be used: {}",
                    self.root().display(),
                    crate::error::chain(&e)
                ))
            })?;
        }
        if dir.is_empty().map_err(Error::Site)? {
            Ok(Target::EmptyFolder)
        } else {
            Err(Error::Conflict(format!(
                "installation directory `{}` is not empty; choose another --path or empty it first",
                self.root().display()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_checked_not_rewritten() {
        assert_eq!(check_prefix("/blog/").unwrap(), "blog");
        assert_eq!(check_prefix("").unwrap(), "");
        assert_eq!(check_prefix("a/b.v2").unwrap(), "a/b.v2");
        for bad in [
            "a//b",
            "../x",
            "a/./b",
            "a\\b",
            ".apsctl-staging-1",
            "blog\u{202e}txt.php",
            "a\u{2066}b",
            "new\nline",
        ] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn overlap_compares_components_not_strings() {
        assert!(prefixes_overlap("", "blog"));
        assert!(prefixes_overlap("blog", "blog"));
        assert!(prefixes_overlap("blog", "blog/sub"));
        assert!(!prefixes_overlap("blog", "blogX"));
        assert!(!prefixes_overlap("a/b", "a/c"));
    }

    #[test]
    fn targets_are_missing_or_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let docroot = tmp.path();
        let place = |prefix| Place { docroot, prefix };
        assert_eq!(place("").target().unwrap(), Target::EmptyFolder);
        assert_eq!(
            place("a/b").target().unwrap(),
            Target::Missing {
                first_missing: "a".into()
            }
        );
        fs_err::create_dir_all(docroot.join("a")).unwrap();
        assert_eq!(
            place("a/b").target().unwrap(),
            Target::Missing {
                first_missing: "a/b".into()
            }
        );
        assert_eq!(place("a").target().unwrap(), Target::EmptyFolder);
        fs_err::write(docroot.join("a/index.html"), "x").unwrap();
        assert!(matches!(place("a").target(), Err(Error::Conflict(_))));
        assert!(matches!(place("").target(), Err(Error::Conflict(_))));
        std::os::unix::fs::symlink(docroot.join("a"), docroot.join("link")).unwrap();
        assert!(place("link/x").target().is_err(), "a link is never walked");
    }
}
