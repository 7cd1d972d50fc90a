//! The versions of the real packages in `shared/corpus/aps1` sort as D2 (§7.3) says.
//!
//! The corpus files are compiled in with `include_str!`, so a missing file fails the build of
//! this test rather than skipping it.

use aps_meta::version::{Version, VersionRelease};
use roxmltree::Document;

const CORE_NS: &str = "http://apstandard.com/ns/1";

macro_rules! corpus {
    ($($dir:literal),* $(,)?) => {
        &[$(($dir, include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/corpus/aps1/",
            $dir,
            "/APP-META.xml"
        )))),*]
    };
}

/// The corpus packages with real (not template placeholder) versions, in ascending D2 order.
const ASCENDING: &[(&str, &str)] = corpus![
    "communigate-pro-1.0",
    "ocstore-1.5.5.1.2",
    "phpmyfaq-2.6.14",
    "phpmyfaq-2.6.16",
    "contenido-4.9.7",
    "wordpress-5.2.3",
    "composr-10.alpha1",
    "composr-10.0.25",
];

/// `application/version` and `application/release` of a document.
fn version_release(xml: &str) -> VersionRelease {
    let document = Document::parse(xml).unwrap_or_else(|err| panic!("corpus XML: {err}"));
    let child_text = |name: &str| {
        document
            .root_element()
            .children()
            .find(|node| node.has_tag_name((CORE_NS, name)))
            .and_then(|node| node.text())
            .unwrap_or_else(|| panic!("no application/{name} text"))
            .trim()
            .to_owned()
    };
    VersionRelease::new(child_text("version"), child_text("release"))
}

#[test]
fn corpus_versions_are_read_as_expected() {
    let texts: Vec<String> = ASCENDING
        .iter()
        .map(|(_, xml)| version_release(xml).to_string())
        .collect();
    assert_eq!(
        texts,
        [
            "1.0-1",
            "1.5.5.1.2-1",
            "2.6.14-1",
            "2.6.16-1",
            "4.9.7-4.9",
            "5.2.3-282",
            "10.alpha1-1",
            "10.0.25-1",
        ]
    );
}

#[test]
fn corpus_versions_sort_in_d2_order() {
    let versions: Vec<VersionRelease> = ASCENDING
        .iter()
        .map(|(_, xml)| version_release(xml))
        .collect();
    for (i, a) in versions.iter().enumerate() {
        for (j, b) in versions.iter().enumerate() {
            assert_eq!(a.cmp(b), i.cmp(&j), "{a} vs {b}");
        }
    }
    let mut shuffled: Vec<VersionRelease> = versions.iter().rev().cloned().collect();
    shuffled.sort();
    assert_eq!(shuffled, versions);
}

#[test]
fn composr_pre_release_precedes_its_release() {
    let alpha = Version::new("10.alpha1");
    let release = Version::new("10.0.25");
    assert!(alpha < release);
    assert!(alpha < Version::new("10"));
    assert!(alpha.is_pre_release());
    assert!(!release.is_pre_release());
}
