//! Update rules of the real packages in `shared/corpus/aps1` parse and evaluate as §7.4 expects.
//!
//! The corpus files are compiled in with `include_str!`, so a missing file fails the build of
//! this test rather than skipping it.

use aps_meta::matchexpr::{MatchErrorKind, MatchExpr};
use roxmltree::{Document, Node, ParsingOptions};

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

/// Every APP-META.xml of the corpus.
const CORPUS: &[(&str, &str)] = corpus![
    "afterlogic-webmail-template",
    "communigate-pro-1.0",
    "composr-10.0.25",
    "composr-10.alpha1",
    "contenido-4.9.7",
    "dolibarr-template-aps1.1",
    "dolibarr-template-aps1.2",
    "ocstore-1.5.5.1.2",
    "phpmyfaq-2.6.14",
    "phpmyfaq-2.6.16",
    "spamexperts-integration-template",
    "wordpress-5.2.3",
];

const WORDPRESS_RULE: &str =
    "/application/version > '2.0' or /application/version = '2.0' and /application/release >= '1'";
const OCSTORE_RULE: &str = "/application/version >= '1.5.1'";

/// `(corpus dir, element, rule text)` of every rule in the corpus, in document order.
const EXPECTED_RULES: &[(&str, &str, &str)] = &[
    (
        "dolibarr-template-aps1.1",
        "upgrade",
        "/application/version = '3.0'",
    ),
    (
        "dolibarr-template-aps1.2",
        "upgrade",
        "/application/version = '3.0'",
    ),
    ("ocstore-1.5.5.1.2", "upgrade", OCSTORE_RULE),
    (
        "spamexperts-integration-template",
        "patch",
        "/application/version > '2.0'",
    ),
    (
        "spamexperts-integration-template",
        "upgrade",
        "/application/version > '1.0'",
    ),
    ("wordpress-5.2.3", "upgrade", WORDPRESS_RULE),
];

fn parse_xml(xml: &str) -> Document<'_> {
    let options = ParsingOptions {
        allow_dtd: false,
        ..ParsingOptions::default()
    };
    Document::parse_with_options(xml, options).unwrap_or_else(|err| panic!("XML: {err}"))
}

fn is_core(node: Node<'_, '_>, name: &str) -> bool {
    node.is_element()
        && node.tag_name().name() == name
        && matches!(
            node.tag_name().namespace(),
            Some(CORE_NS | "http://apsstandard.com/ns/1")
        )
}

/// `patch/@match`, `upgrade/@match` and `master-package/package/@match` of one document.
fn rules_of(xml: &str) -> Vec<(String, String)> {
    let document = parse_xml(xml);
    document
        .descendants()
        .filter_map(|node| {
            let element = if is_core(node, "patch") || is_core(node, "upgrade") {
                node.tag_name().name().to_owned()
            } else if is_core(node, "package")
                && node.parent().is_some_and(|p| is_core(p, "master-package"))
            {
                "master-package/package".to_owned()
            } else {
                return None;
            };
            node.attribute("match")
                .map(|rule| (element, rule.to_owned()))
        })
        .collect()
}

fn corpus_doc(dir: &str) -> &'static str {
    CORPUS
        .iter()
        .find(|(name, _)| *name == dir)
        .map_or_else(|| panic!("no corpus directory {dir}"), |(_, xml)| *xml)
}

fn installed(version: &str, release: &str) -> String {
    format!(
        "<application xmlns=\"http://apstandard.com/ns/1\" version=\"1.2\">\n\
         <name>Installed</name>\n<version>{version}</version>\n<release>{release}</release>\n\
         </application>"
    )
}

#[test]
fn every_corpus_rule_is_found_and_parses() {
    let mut found = Vec::new();
    for (dir, xml) in CORPUS {
        for (element, rule) in rules_of(xml) {
            found.push((*dir, element, rule));
        }
    }
    let expected: Vec<(&str, String, String)> = EXPECTED_RULES
        .iter()
        .map(|(dir, element, rule)| (*dir, (*element).to_owned(), (*rule).to_owned()))
        .collect();
    assert_eq!(found, expected);
    for (dir, element, rule) in &found {
        let parsed = MatchExpr::parse(rule)
            .unwrap_or_else(|err| panic!("{dir} {element}/@match {rule:?}: {err}"));
        // The corpus rules are already in canonical form.
        assert_eq!(&parsed.to_string(), rule, "{dir}");
        assert!(
            !matches!(MatchExpr::parse(rule), Err(e) if e.kind() == MatchErrorKind::Unsupported)
        );
    }
}

#[test]
fn every_corpus_rule_evaluates_against_every_corpus_document() {
    for (_, _, rule) in EXPECTED_RULES {
        let rule = MatchExpr::parse(rule).unwrap();
        for (dir, xml) in CORPUS {
            rule.evaluate(xml)
                .unwrap_or_else(|err| panic!("{rule} against {dir}: {err}"));
        }
    }
}

#[test]
fn wordpress_rule() {
    let rule = MatchExpr::parse(WORDPRESS_RULE).unwrap();
    for (version, release, expected) in [
        ("5.2.3", "282", true),
        ("2.0", "1", true),
        ("2.0", "0", false),
        ("2.0.1", "0", true),
        ("1.9", "5", false),
        ("2.0.alpha1", "9", false),
        ("2.0rc2", "1", false),
        ("10.alpha1", "1", true),
    ] {
        assert_eq!(
            rule.evaluate(&installed(version, release)).unwrap(),
            expected,
            "{version}-{release}"
        );
    }
    for (dir, expected) in [
        ("wordpress-5.2.3", true),
        ("composr-10.alpha1", true),
        ("contenido-4.9.7", true),
        ("phpmyfaq-2.6.16", true),
        ("communigate-pro-1.0", false),
        ("ocstore-1.5.5.1.2", false),
    ] {
        assert_eq!(rule.evaluate(corpus_doc(dir)).unwrap(), expected, "{dir}");
    }
}

#[test]
fn ocstore_rule() {
    let rule = MatchExpr::parse(OCSTORE_RULE).unwrap();
    for (version, expected) in [
        ("1.5.5.1.2", true),
        ("1.5.1", true),
        ("1.5.1.0", true),
        ("1.5.10", true),
        ("1.5.1.rc1", false),
        ("1.5.0.9", false),
        ("1.4.9", false),
    ] {
        assert_eq!(
            rule.evaluate(&installed(version, "1")).unwrap(),
            expected,
            "{version}"
        );
    }
    for (dir, expected) in [
        ("ocstore-1.5.5.1.2", true),
        ("phpmyfaq-2.6.14", true),
        ("communigate-pro-1.0", false),
    ] {
        assert_eq!(rule.evaluate(corpus_doc(dir)).unwrap(), expected, "{dir}");
    }
}

#[test]
fn dolibarr_and_spamexperts_rules() {
    let dolibarr = MatchExpr::parse("/application/version = '3.0'").unwrap();
    assert!(dolibarr.evaluate(&installed("3.0", "1")).unwrap());
    assert!(!dolibarr.evaluate(&installed("3.0.0", "1")).unwrap());
    // The SpamExperts template is built as 1.8-74165 (its repository's version.txt).
    let patch = MatchExpr::parse("/application/version > '2.0'").unwrap();
    let upgrade = MatchExpr::parse("/application/version > '1.0'").unwrap();
    let previous = installed("1.8", "74165");
    assert!(!patch.evaluate(&previous).unwrap());
    assert!(upgrade.evaluate(&previous).unwrap());
    // Unfilled template placeholders are words, below any number at the same position.
    assert!(
        !upgrade
            .evaluate(corpus_doc("spamexperts-integration-template"))
            .unwrap()
    );
}

#[test]
fn afterlogic_upgradable_from() {
    let document = parse_xml(corpus_doc("afterlogic-webmail-template"));
    let items: Vec<(String, Option<String>)> = document
        .descendants()
        .filter(|node| is_core(*node, "upgradable-from"))
        .map(|node| {
            (
                node.attribute("version").unwrap().to_owned(),
                node.attribute("release").map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(items, [("9.0.0".to_owned(), Some("1".to_owned()))]);
    let rule = MatchExpr::from_upgradable_from(&items).unwrap();
    assert_eq!(
        rule.to_string(),
        "/application/version = '9.0.0' and /application/release = '1'"
    );
    assert!(rule.evaluate(&installed("9.0.0", "1")).unwrap());
    assert!(!rule.evaluate(&installed("9.0.0", "2")).unwrap());
    assert!(!rule.evaluate(&installed("9.0.1", "1")).unwrap());
}

#[test]
fn master_package_example() {
    // No corpus file has a master-package; this is the §7.4 example, whose context node is the
    // master instance's `application` element.
    let rule = MatchExpr::parse("version = 1.1").unwrap();
    for (version, expected) in [
        ("1.1", true),
        ("1.1.2", false),
        ("1.10", true),
        ("1.2", false),
    ] {
        let xml = installed(version, "1");
        let document = parse_xml(&xml);
        assert_eq!(
            rule.evaluate_at(document.root_element()),
            expected,
            "{version}"
        );
    }
    let communigate = parse_xml(corpus_doc("communigate-pro-1.0"));
    assert!(!rule.evaluate_at(communigate.root_element()));
    assert!(
        MatchExpr::parse("version = 1.0")
            .unwrap()
            .evaluate_at(communigate.root_element())
    );
}
