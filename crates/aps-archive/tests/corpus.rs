//! Real APP-LIST.xml files from the corpus checked against packages built around the real
//! APP-META.xml files they describe.

use std::path::PathBuf;

use aps_archive::{Archive, Limits, ListingProblem, ScanOptions, verify_listing};
use aps_meta::applist::{Digest, parse_app_list};
use aps_test_support::PackageBuilder;
use sha2::{Digest as _, Sha256};

fn corpus(path: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus/aps1")
        .join(path);
    fs_err::read(path).expect("test setup")
}

/// Keeps only the listing lines for `names` (the other files of the original packages are not
/// in the corpus).
fn filtered_list(list: &[u8], names: &[&str]) -> String {
    String::from_utf8(list.to_vec())
        .expect("test setup")
        .lines()
        .filter(|line| {
            !line.contains(":file ") || names.iter().any(|n| line.contains(&format!("\"{n}\"")))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn verify(meta: Vec<u8>, list: String) -> Result<(), Vec<ListingProblem>> {
    let dir = tempfile::tempdir().expect("test setup");
    let zip = PackageBuilder::new()
        .app_meta(String::from_utf8(meta).expect("test setup"))
        .app_list_xml(list)
        .write(&dir.path().join("corpus.app.zip"))
        .expect("test setup");
    let mut archive =
        Archive::open(&zip, &Limits::default()).expect("the archive passes its checks");
    let list = parse_app_list(
        &archive
            .read_file("APP-LIST.xml", 1 << 20)
            .expect("test setup"),
        "APP-LIST.xml",
    )
    .expect("test setup");
    let scanned = archive
        .scan(&ScanOptions::for_list(&list))
        .expect("the archive scans");
    verify_listing(&scanned.files, &list).map_err(|problems| problems.problems)
}

#[test]
fn wordpress_listing_matches_its_app_meta() {
    let meta = corpus("wordpress-5.2.3/APP-META.xml");
    let list_bytes = corpus("wordpress-5.2.3/APP-LIST.xml");
    let list = parse_app_list(&list_bytes, "APP-LIST.xml").unwrap();
    let entry = list
        .entries
        .iter()
        .find(|entry| entry.name == "APP-META.xml")
        .unwrap();
    assert_eq!(entry.size, meta.len() as u64);
    assert_eq!(entry.digest, Digest::Sha256(Sha256::digest(&meta).into()));
    verify(meta, filtered_list(&list_bytes, &["APP-META.xml"])).unwrap();
}

#[test]
fn wordpress_listing_reports_every_file_missing_from_a_bare_package() {
    let meta = corpus("wordpress-5.2.3/APP-META.xml");
    let list_bytes = corpus("wordpress-5.2.3/APP-LIST.xml");
    let listed = parse_app_list(&list_bytes, "APP-LIST.xml")
        .unwrap()
        .entries
        .len();
    let problems = verify(meta, String::from_utf8(list_bytes).unwrap()).unwrap_err();
    assert_eq!(problems.len(), listed - 1);
    assert!(
        problems
            .iter()
            .all(|p| matches!(p, ListingProblem::Missing { .. }))
    );
}

#[test]
fn communigate_listing_is_stale_for_its_app_meta() {
    let meta = corpus("communigate-pro-1.0/APP-META.xml");
    let list = filtered_list(
        &corpus("communigate-pro-1.0/APP-LIST.xml"),
        &["APP-META.xml"],
    );
    let problems = verify(meta.clone(), list).unwrap_err();
    let [
        ListingProblem::Size {
            name,
            listed,
            actual,
        },
        ListingProblem::Digest { .. },
    ] = problems.as_slice()
    else {
        panic!("{problems:?}");
    };
    assert_eq!(name, "APP-META.xml");
    assert_eq!(*listed, 2179);
    assert_eq!(*actual, meta.len() as u64);
}

#[test]
fn composr_empty_listing_reports_the_unlisted_app_meta() {
    let meta = corpus("composr-10.0.25/APP-META.xml");
    let list = String::from_utf8(corpus("composr-10.0.25/APP-LIST.xml")).unwrap();
    let problems = verify(meta, list).unwrap_err();
    assert_eq!(
        problems,
        vec![ListingProblem::Unlisted {
            name: "APP-META.xml".to_owned()
        }]
    );
}
