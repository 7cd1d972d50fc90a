//! Complete verification of an archive's files against its APP-LIST.xml.
//!
//! Main decision: verification never stops at the first difference: it collects every
//! unlisted, missing, resized or altered file so the packager sees the whole picture in one run.
//! `APP-LIST.xml` itself is never compared (it cannot list its own digest); a listing entry for
//! it is ignored. Entries with only an MD5 digest are compared against MD5, which the scan must
//! have computed ([`crate::ScanOptions::for_list`]).

use std::collections::BTreeMap;
use std::fmt;

use aps_meta::applist::{AppList, Digest};

use crate::archive::FileInfo;

/// The listing's own name, excluded from verification.
const APP_LIST: &str = "APP-LIST.xml";

/// One difference between an archive and its listing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListingProblem {
    /// A file in the archive has no listing entry.
    #[error("`{name}` is in the archive but not listed in APP-LIST.xml")]
    Unlisted {
        /// The file.
        name: String,
    },
    /// A listed file is not in the archive.
    #[error("`{name}` is listed in APP-LIST.xml but missing from the archive")]
    Missing {
        /// The file.
        name: String,
    },
    /// The sizes differ.
    #[error("`{name}` has {actual} bytes but APP-LIST.xml lists {listed}")]
    Size {
        /// The file.
        name: String,
        /// The listed size.
        listed: u64,
        /// The real size.
        actual: u64,
    },
    /// The digests differ.
    #[error("`{name}` has {algorithm} {actual} but APP-LIST.xml lists {listed}")]
    Digest {
        /// The file.
        name: String,
        /// `sha256` or `md5`.
        algorithm: &'static str,
        /// The listed digest, hex.
        listed: String,
        /// The real digest, hex.
        actual: String,
    },
    /// The listing has only an MD5 digest for the file but no MD5 was computed.
    #[error("`{name}` is listed with an md5 digest only, and no md5 was computed for it")]
    Md5NotComputed {
        /// The file.
        name: String,
    },
}

impl ListingProblem {
    /// The file the problem is about.
    pub fn name(&self) -> &str {
        match self {
            ListingProblem::Unlisted { name }
            | ListingProblem::Missing { name }
            | ListingProblem::Size { name, .. }
            | ListingProblem::Digest { name, .. }
            | ListingProblem::Md5NotComputed { name } => name,
        }
    }
}

/// Every difference found by [`verify_listing`], in file-name order; displayed one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingProblems {
    /// The differences, never empty.
    pub problems: Vec<ListingProblem>,
}

impl fmt::Display for ListingProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.problems.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ListingProblems {}

/// Checks that `files` (from [`crate::Archive::scan`] or [`crate::Archive::extract`]) are
/// exactly the files `list` describes: every file except APP-LIST.xml listed, every listed file
/// present, sizes and digests equal.
pub fn verify_listing(
    files: &BTreeMap<String, FileInfo>,
    list: &AppList,
) -> Result<(), ListingProblems> {
    let mut problems = Vec::new();
    let listed: BTreeMap<&str, _> = list
        .entries
        .iter()
        .filter(|entry| entry.name != APP_LIST)
        .map(|entry| (entry.name.as_str(), entry))
        .collect();
    for (name, info) in files {
        if name == APP_LIST {
            continue;
        }
        let Some(entry) = listed.get(name.as_str()) else {
            problems.push(ListingProblem::Unlisted { name: name.clone() });
            continue;
        };
        if entry.size != info.size {
            problems.push(ListingProblem::Size {
                name: name.clone(),
                listed: entry.size,
                actual: info.size,
            });
        }
        let actual = match entry.digest {
            Digest::Sha256(_) => Some(Digest::Sha256(info.sha256)),
            Digest::Md5(_) => info.md5.map(Digest::Md5),
        };
        match actual {
            None => problems.push(ListingProblem::Md5NotComputed { name: name.clone() }),
            Some(actual) if actual != entry.digest => problems.push(ListingProblem::Digest {
                name: name.clone(),
                algorithm: entry.digest.algorithm(),
                listed: entry.digest.to_hex(),
                actual: actual.to_hex(),
            }),
            Some(_) => {}
        }
    }
    for name in listed.keys() {
        if !files.contains_key(*name) {
            problems.push(ListingProblem::Missing {
                name: (*name).to_owned(),
            });
        }
    }
    problems.sort_by(|a, b| a.name().cmp(b.name()));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ListingProblems { problems })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aps_meta::applist::ListEntry;

    fn info(size: u64, byte: u8) -> FileInfo {
        FileInfo {
            size,
            sha256: [byte; 32],
            md5: Some([byte; 16]),
        }
    }

    fn list(entries: Vec<ListEntry>) -> AppList {
        AppList {
            entries,
            signatures: 0,
            misspelled_namespace: false,
        }
    }

    fn sha(name: &str, size: u64, byte: u8) -> ListEntry {
        ListEntry {
            name: name.to_owned(),
            size,
            digest: Digest::Sha256([byte; 32]),
        }
    }

    #[test]
    fn matching_files_verify() {
        let files = BTreeMap::from([
            ("a".to_owned(), info(1, 1)),
            ("APP-LIST.xml".to_owned(), info(9, 9)),
        ]);
        let md5 = ListEntry {
            name: "b".to_owned(),
            size: 2,
            digest: Digest::Md5([2; 16]),
        };
        let mut files_b = files.clone();
        files_b.insert("b".to_owned(), info(2, 2));
        verify_listing(&files, &list(vec![sha("a", 1, 1)])).unwrap();
        verify_listing(&files_b, &list(vec![sha("a", 1, 1), md5])).unwrap();
    }

    #[test]
    fn every_problem_is_collected_and_named() {
        let mut no_md5 = info(4, 4);
        no_md5.md5 = None;
        let files = BTreeMap::from([
            ("unlisted".to_owned(), info(1, 1)),
            ("resized".to_owned(), info(5, 2)),
            ("tampered".to_owned(), info(3, 7)),
            ("md5only".to_owned(), no_md5),
        ]);
        let entries = vec![
            sha("resized", 2, 2),
            sha("tampered", 3, 3),
            sha("missing", 1, 1),
            ListEntry {
                name: "md5only".to_owned(),
                size: 4,
                digest: Digest::Md5([4; 16]),
            },
            sha("APP-LIST.xml", 1, 1),
        ];
        let problems = verify_listing(&files, &list(entries)).unwrap_err();
        let names: Vec<&str> = problems.problems.iter().map(ListingProblem::name).collect();
        assert_eq!(
            names,
            ["md5only", "missing", "resized", "tampered", "unlisted"]
        );
        assert!(matches!(
            problems.problems[4],
            ListingProblem::Unlisted { .. }
        ));
        assert!(matches!(
            problems.problems[3],
            ListingProblem::Digest {
                algorithm: "sha256",
                ..
            }
        ));
        let text = problems.to_string();
        assert_eq!(text.lines().count(), 5, "{text}");
        assert!(text.contains("`tampered` has sha256 0707"), "{text}");
        assert!(
            text.contains("`resized` has 5 bytes but APP-LIST.xml lists 2"),
            "{text}"
        );
        assert!(text.contains("`missing` is listed"), "{text}");
    }
}
