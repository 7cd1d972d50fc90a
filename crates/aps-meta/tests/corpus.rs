//! Parses and lints every real APP-META.xml in `shared/corpus/aps1` and checks concrete values,
//! plus hostile inputs and robustness properties.
//!
//! The corpus is located relative to this crate; if it is missing these tests fail (they are
//! never skipped).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use aps_meta::lint::{self, Finding, Severity};
use aps_meta::model::{
    ApacheRequirement, ApsFormat, Identity, LicenseKind, Package, PhpFlag, PhpHandler,
    PhpPermissions, PhpRequirement, PhpSizeDirective, ROOT_SERVICE_ID, Requirement, Service, Uniq,
};
use aps_meta::parse::{ParseError, Parsed, parse_app_meta};
use aps_meta::value::{SettingType, TextConstraints};
use proptest::prelude::*;

const RELEASED: [&str; 5] = [
    "wordpress-5.2.3",
    "phpmyfaq-2.6.16",
    "ocstore-1.5.5.1.2",
    "contenido-4.9.7",
    "composr-10.0.25",
];

fn corpus_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/aps1");
    assert!(
        dir.is_dir(),
        "the APS corpus is missing at {}; these tests must not be skipped",
        dir.display()
    );
    dir
}

/// Every corpus directory holding an APP-META.xml, sorted.
fn corpus_packages() -> Vec<String> {
    let mut names: Vec<String> = fs_err::read_dir(corpus_dir())
        .expect("corpus folder is readable")
        .map(|e| e.expect("corpus entry is readable").path())
        .filter(|p| p.join("APP-META.xml").is_file())
        .filter_map(|p| Some(p.file_name()?.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    names
}

fn meta_bytes(name: &str) -> Vec<u8> {
    fs_err::read(corpus_dir().join(name).join("APP-META.xml")).expect("corpus file is readable")
}

fn parse_ok(name: &str) -> Parsed {
    parse_app_meta(&meta_bytes(name), "APP-META.xml")
        .unwrap_or_else(|e| panic!("{name} must parse: {e}"))
}

/// A template package with its placeholders filled, as its build script would.
fn filled(name: &str, replacements: &[(&str, &str)]) -> Parsed {
    let mut text = String::from_utf8(meta_bytes(name)).expect("corpus file is UTF-8");
    for (from, to) in replacements {
        assert!(text.contains(from), "{name} has no {from}");
        text = text.replace(from, to);
    }
    parse_app_meta(text.as_bytes(), "APP-META.xml")
        .unwrap_or_else(|e| panic!("filled {name} must parse: {e}"))
}

fn errors(findings: &[Finding]) -> Vec<&Finding> {
    findings.iter().filter(|f| f.is_error()).collect()
}

fn rules_of(findings: &[Finding], severity: Severity) -> Vec<&str> {
    findings
        .iter()
        .filter(|f| f.severity == severity)
        .map(|f| f.rule.as_str())
        .collect()
}

fn root(pkg: &Package) -> &Service {
    pkg.root_service().expect("package has a root service")
}

fn setting_ids(service: &Service) -> Vec<&str> {
    service
        .all_settings()
        .iter()
        .map(|s| s.id.as_str())
        .collect()
}

/// `exists` for `check_package_paths` from an APP-LIST.xml: listed files and their parent folders.
fn listed_paths(name: &str) -> BTreeSet<String> {
    let text = fs_err::read_to_string(corpus_dir().join(name).join("APP-LIST.xml"))
        .expect("APP-LIST.xml is readable");
    let doc = roxmltree::Document::parse(&text).expect("APP-LIST.xml is well-formed");
    let mut paths = BTreeSet::new();
    for file in doc.descendants().filter(|n| n.has_tag_name("file")) {
        let mut path = file.attribute("name").expect("file has a name").to_owned();
        paths.insert(path.clone());
        while let Some((parent, _)) = path.rsplit_once('/') {
            path = parent.to_owned();
            paths.insert(path.clone());
        }
    }
    paths
}

#[test]
fn corpus_is_complete() {
    let names = corpus_packages();
    assert!(names.len() >= 12, "{names:?}");
    for released in RELEASED {
        assert!(names.iter().any(|n| n == released), "{released} missing");
    }
}

#[test]
fn every_corpus_file_lints_and_agrees_with_the_parser() {
    for name in corpus_packages() {
        let bytes = meta_bytes(&name);
        let findings = lint::lint_meta(&bytes, "APP-META.xml");
        for f in &findings {
            assert!(
                lint::rule(&f.rule).is_some(),
                "{name}: unlisted rule {}",
                f.rule
            );
            assert_eq!(f.file, "APP-META.xml");
        }
        match parse_app_meta(&bytes, "APP-META.xml") {
            Ok(parsed) => {
                let mut expected = parsed.findings.clone();
                expected.sort_by_key(|f| (f.line.is_none(), f.line, f.column));
                assert_eq!(findings, expected, "{name}");
            }
            Err(e) => {
                assert!(
                    findings.contains(&e.to_finding()),
                    "{name}: lint must report the parse error {e}"
                );
                assert!(e.line.is_some() && e.column.is_some(), "{name}: {e}");
            }
        }
    }
}

#[test]
fn released_packages_parse_and_lint_without_errors() {
    for name in RELEASED {
        let parsed = parse_ok(name);
        assert!(
            errors(&parsed.findings).is_empty(),
            "{name}: {:?}",
            parsed.findings
        );
        let findings = lint::lint_meta(&meta_bytes(name), "APP-META.xml");
        assert!(errors(&findings).is_empty(), "{name}: {findings:?}");
    }
}

/// Issue 7 (D16): the rules added for ids that break variable names and for mapping paths that
/// are not plain folders find nothing in the real corpus, and find each defect planted in the
/// real metadata of `wordpress-5.2.3`, naming the setting or mapping.
#[test]
fn issue_7_variable_names_and_mapping_paths_in_real_metadata() {
    let new_rules = ["meta-variable-name", "meta-mapping-path"];
    for name in corpus_packages() {
        let findings = lint::lint_meta(&meta_bytes(&name), "APP-META.xml");
        assert!(
            findings
                .iter()
                .all(|f| !new_rules.contains(&f.rule.as_str())),
            "{name}: {findings:?}"
        );
    }
    let wordpress = String::from_utf8(meta_bytes("wordpress-5.2.3")).expect("UTF-8");
    let planted = [
        (
            r#"id="title""#,
            r#"id="a=b""#,
            "meta-variable-name",
            "setting id `a=b`",
        ),
        (
            "<db:id>main</db:id>",
            "<db:id>main=x</db:id>",
            "meta-variable-name",
            "db:id `main=x`",
        ),
        (
            r#"<mapping path="htdocs" url="/">"#,
            r#"<mapping path="htdocs/../scripts" url="/">"#,
            "meta-mapping-path",
            "mapping `/` has path `htdocs/../scripts`",
        ),
        (
            r#"<mapping url="tmp">"#,
            r#"<mapping url="/tmp">"#,
            "meta-mapping",
            "mapping url `/tmp` is absolute",
        ),
    ];
    for (from, to, rule, named) in planted {
        assert_eq!(wordpress.matches(from).count(), 1, "{from}");
        let text = wordpress.replace(from, to);
        let findings = lint::lint_meta(text.as_bytes(), "APP-META.xml");
        let errors = errors(&findings);
        assert_eq!(errors.len(), 1, "{to}: {errors:?}");
        assert_eq!(errors[0].rule, rule, "{to}");
        assert!(errors[0].message.contains(named), "{to}: {errors:?}");
        assert!(errors[0].line.is_some(), "{to}: {errors:?}");
        let refused = parse_app_meta(text.as_bytes(), "APP-META.xml").expect_err(to);
        assert_eq!(refused.rule, rule);
    }
}

#[test]
fn wordpress_values() {
    let parsed = parse_ok("wordpress-5.2.3");
    assert!(parsed.findings.is_empty(), "{:?}", parsed.findings);
    let pkg = parsed.package;
    assert_eq!(pkg.format, ApsFormat::V1_2);
    assert_eq!(pkg.packaged.as_deref(), Some("2019-09-05T03:41:13"));
    assert_eq!(pkg.identity(), Identity::Id("http://wordpress.org/".into()));
    assert_eq!(
        (
            pkg.name.as_str(),
            pkg.version.as_str(),
            pkg.release.as_str()
        ),
        ("WordPress", "5.2.3", "282")
    );
    let packager = pkg.packager.as_ref().unwrap();
    assert_eq!(
        packager.uri.as_deref(),
        Some("uuid:714f0a7b-85d6-4eb8-b68e-40f9acbb3103")
    );
    assert_eq!(packager.icon.as_deref(), Some("images/packager.png"));
    assert_eq!(pkg.vendor.as_ref().unwrap().names[0].text, "WordPress.org");
    assert_eq!(pkg.presentation.categories, ["Web/Blog"]);
    assert!(pkg.presentation.summaries[0].lang.is_none());
    assert!(
        pkg.presentation
            .summaries
            .iter()
            .any(|s| s.lang.as_deref() == Some("de-DE"))
    );
    assert_eq!(pkg.presentation.changelog[0].version, "5.2.3");
    assert_eq!(pkg.presentation.changelog[0].release, "282");
    assert_eq!(
        pkg.presentation.screenshots[0].path,
        "images/admin_page.jpg"
    );
    assert_eq!(
        pkg.upgrade.as_ref().unwrap().match_rule,
        "/application/version > '2.0' or /application/version = '2.0' and /application/release >= '1'"
    );
    assert!(pkg.patch.is_none() && pkg.upgradable_from.is_empty());
    assert_eq!(root(&pkg).id, "wordpress");
}

#[test]
fn wordpress_service_presentation_and_settings() {
    let pkg = parse_ok("wordpress-5.2.3").package;
    let service = root(&pkg);
    let license = service.license.as_ref().unwrap();
    assert!(license.must_accept);
    assert_eq!(license.kind, LicenseKind::None);
    assert_eq!(license.text_file.as_deref(), Some("htdocs/license.txt"));
    let entries = &service.presentation.entry_points;
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].dst, "/wp-login.php");
    assert_eq!(entries[0].method.as_deref(), Some("POST"));
    assert_eq!(entries[0].class.as_deref(), Some("control-panel"));
    let vars: Vec<_> = entries[0]
        .variables
        .iter()
        .map(|v| (v.name.as_str(), v.value_of_setting.as_deref()))
        .collect();
    assert_eq!(
        vars,
        [("log", Some("admin_name")), ("pwd", Some("admin_password"))]
    );

    assert_eq!(
        setting_ids(service),
        [
            "admin_name",
            "admin_password",
            "admin_email",
            "title",
            "locale"
        ]
    );
    let settings = service.all_settings();
    match &settings[0].kind {
        SettingType::String(c) => {
            assert_eq!((c.min_length, c.max_length), (Some(1), Some(32)));
            assert_eq!(
                c.regex.as_ref().unwrap().as_str(),
                "^[a-zA-Z][0-9a-zA-Z_.\\-@]*"
            );
        }
        other => panic!("admin_name is {other:?}"),
    }
    assert_eq!(settings[0].class.as_deref(), Some("login"));
    assert!(matches!(settings[1].kind, SettingType::Password(_)));
    assert_eq!(settings[2].kind, SettingType::Email);
    match &settings[4].kind {
        SettingType::Enum { choices } => {
            assert_eq!(choices.len(), 25);
            assert!(choices.iter().any(|c| c.id == "el-EL"));
        }
        other => panic!("locale is {other:?}"),
    }
    assert_eq!(settings[4].default_value.as_deref(), Some("en-US"));
}

#[test]
fn wordpress_requirements_and_mapping() {
    let pkg = parse_ok("wordpress-5.2.3").package;
    let service = root(&pkg);

    let items = &service.requirements.items;
    assert_eq!(
        items[0],
        Requirement::Php(PhpRequirement::Version {
            min: Some("5.6.20".into()),
            max_not_including: None
        })
    );
    assert_eq!(
        items[1],
        Requirement::Php(PhpRequirement::Extension("mysqli".into()))
    );
    assert_eq!(
        items[2],
        Requirement::Php(PhpRequirement::Flag {
            directive: PhpFlag::SafeMode,
            value: false
        })
    );
    let Requirement::Db(db) = &items[3] else {
        panic!("{:?}", items[3])
    };
    assert_eq!(db.id, "main");
    assert_eq!(db.default_name.as_deref(), Some("wordpress"));
    assert!(db.can_use_tables_prefix);
    assert_eq!(
        (db.server_type.as_str(), db.server_min_version.as_deref()),
        ("mysql", Some("5.0"))
    );
    assert!(service.requirements.choices.is_empty());

    let script = service.provision.configuration_script.as_ref().unwrap();
    assert_eq!(
        (script.name.as_str(), script.language.as_str()),
        ("configure", "php")
    );
    let um = service.provision.url_mapping.as_ref().unwrap();
    assert_eq!(um.default_prefix.as_deref(), Some("wordpress"));
    assert_eq!(um.installed_size, Some(97_857_175));
    assert_eq!(um.root.path.as_deref(), Some("htdocs"));
    assert_eq!(
        um.root.php_handler,
        Some(PhpHandler::Extensions(vec!["php".into()]))
    );
    let writable = Some(PhpPermissions {
        writable: Some(true),
        readable: None,
    });
    assert_eq!(um.root.php_permissions, writable);
    let children: Vec<_> = um
        .root
        .children
        .iter()
        .map(|m| (m.url.as_str(), m.php_permissions))
        .collect();
    assert_eq!(
        children,
        [
            ("wp-content", writable),
            ("blogs/media", writable),
            ("tmp", writable)
        ]
    );

    // REFERENCE §5.5: the WEB_ variables of WordPress.
    let names: Vec<String> = um
        .entries()
        .iter()
        .flat_map(|e| {
            e.web_variable
                .as_ref()
                .unwrap()
                .names()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        names,
        [
            "WEB___DIR",
            "WEB__wp-content_DIR",
            "WEB__wp_content_DIR",
            "WEB__blogs_media_DIR",
            "WEB__tmp_DIR"
        ]
    );
    let dirs: Vec<_> = um
        .entries()
        .into_iter()
        .map(|e| e.package_dir.unwrap())
        .collect();
    assert_eq!(
        dirs,
        [
            "htdocs",
            "htdocs/wp-content",
            "htdocs/blogs/media",
            "htdocs/tmp"
        ]
    );
}

#[test]
fn phpmyfaq_choice_has_four_database_alternatives() {
    let parsed = parse_ok("phpmyfaq-2.6.16");
    let service = root(&parsed.package);
    assert_eq!(service.id, "instance");
    assert_eq!(service.requirements.choices.len(), 1);
    let alternatives = &service.requirements.choices[0].alternatives;
    let ids: Vec<_> = alternatives.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(
        ids,
        ["mysql", "postgresql", "sqlite", "microsoft:sqlserver"]
    );
    let server_types: Vec<_> = alternatives
        .iter()
        .map(|a| match &a.items[1] {
            Requirement::Db(db) => (db.id.as_str(), db.server_type.as_str()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        server_types,
        [
            ("main", "mysql"),
            ("main", "postgresql"),
            ("main", "sqlite"),
            ("main", "microsoft:sqlserver")
        ]
    );
    assert!(
        service
            .requirements
            .items
            .contains(&Requirement::Php(PhpRequirement::Size {
                directive: PhpSizeDirective::MemoryLimit,
                bytes: 67_108_864
            }))
    );
    assert!(
        service.provision.configuration_script.is_none(),
        "phpMyFAQ has no configuration script"
    );
    let license = service.license.as_ref().unwrap();
    assert_eq!(
        license.text_url.as_deref(),
        Some("http://www.mozilla.org/MPL/MPL-1.1.txt")
    );
    assert!(!license.must_accept);
    assert_eq!(service.presentation.infolinks.len(), 4);
    assert_eq!(
        service.presentation.infolinks[0].label.lang.as_deref(),
        Some("en")
    );
    assert_eq!(
        service.presentation.infolinks[0].label.text,
        "Official phpMyFAQ homepage"
    );
    assert!(
        parsed
            .package
            .presentation
            .languages
            .contains(&"pt-br".to_owned())
    );

    // Lint: pt-br is a warning; the SQL Server alternative is unsupported but others are usable.
    assert_eq!(
        rules_of(&parsed.findings, Severity::Warning),
        ["meta-language-tag", "aspect-unsupported"]
    );
    let aspect = parsed
        .findings
        .iter()
        .find(|f| f.rule == "aspect-unsupported")
        .unwrap();
    assert!(
        aspect.message.contains("microsoft:sqlserver"),
        "{}",
        aspect.message
    );
}

#[test]
fn contenido_10_is_normalised_into_one_root_service() {
    let parsed = parse_ok("contenido-4.9.7");
    assert!(parsed.findings.is_empty(), "{:?}", parsed.findings);
    let pkg = parsed.package;
    assert_eq!(pkg.format, ApsFormat::V1_0);
    assert_eq!(pkg.release, "4.9", "dotted release accepted");
    assert_eq!(
        pkg.identity(),
        Identity::NameAndPackager {
            name: "CONTENIDO".into(),
            packager_uri: Some("uuid:245656b4-ae4e-423f-845a-54deac86e187".into())
        }
    );
    assert_eq!(
        pkg.packager.as_ref().unwrap().homepages,
        ["http://www.contenido.org/"]
    );
    assert_eq!(pkg.presentation.summaries.len(), 2);
    assert_eq!(pkg.presentation.summaries[1].lang.as_deref(), Some("de-DE"));
    assert_eq!(pkg.presentation.icon.as_deref(), Some("images/logo.png"));
    assert_eq!(pkg.presentation.languages, ["en", "de"]);
    assert_eq!(pkg.presentation.changelog[0].release, "49");
    assert_eq!(pkg.services.len(), 1);
    let service = root(&pkg);
    assert_eq!(service.id, ROOT_SERVICE_ID);
    let script = service.provision.configuration_script.as_ref().unwrap();
    assert_eq!(
        (script.name.as_str(), script.language.as_str()),
        ("configure", "php")
    );
    assert_eq!(
        service
            .presentation
            .entry_points
            .iter()
            .map(|e| e.dst.as_str())
            .collect::<Vec<_>>(),
        ["/contenido/", "/cms/"]
    );
    assert_eq!(
        setting_ids(service),
        ["http_root_path", "email", "password", "client_mode"]
    );
    let license = service.license.as_ref().unwrap();
    assert!(license.must_accept);
    assert_eq!(license.text_file.as_deref(), Some("htdocs/LICENSE.txt"));
    let um = service.provision.url_mapping.as_ref().unwrap();
    assert_eq!(um.default_prefix.as_deref(), Some("contenido"));
    assert_eq!(um.installed_size, Some(22_148_168));
    let urls: Vec<_> = um.root.children.iter().map(|m| m.url.as_str()).collect();
    assert_eq!(urls, ["setup", "contenido", "cms"]);
    let Requirement::Db(db) = &service.requirements.items[3] else {
        panic!()
    };
    assert_eq!(
        (db.id.as_str(), db.server_min_version.as_deref()),
        ("main", Some("5.0.15"))
    );
}

#[test]
fn composr_post_max_size_and_upper_case_db_id() {
    let parsed = parse_ok("composr-10.0.25");
    assert_eq!(
        rules_of(&parsed.findings, Severity::Warning),
        ["php-post-max-size-underscore"]
    );
    let warning = &parsed.findings[0];
    assert_eq!((warning.line, warning.column), (Some(311), Some(7)));
    let service = root(&parsed.package);
    assert!(
        service
            .requirements
            .items
            .contains(&Requirement::Php(PhpRequirement::Size {
                directive: PhpSizeDirective::PostMaxSize,
                bytes: 5_242_880
            }))
    );
    let db = service
        .requirements
        .items
        .iter()
        .find_map(|r| match r {
            Requirement::Db(db) => Some(db),
            _ => None,
        })
        .unwrap();
    assert_eq!(db.id, "MAIN");
    assert!(!db.can_use_tables_prefix);
    assert_eq!(service.license.as_ref().unwrap().kind, LicenseKind::Free);
    let entry = &service.presentation.entry_points[0];
    assert_eq!(entry.dst, "/index.php?page=login&type=login");
    assert_eq!(entry.variables[2].name, "redirect");
    assert_eq!(entry.variables[2].text, "index.php?page=start");
    assert!(entry.variables[2].value_of_setting.is_none());
    let um = service.provision.url_mapping.as_ref().unwrap();
    assert!(um.root.php_handler.is_none());
    let entries = um.entries();
    let errorlog = entries
        .iter()
        .find(|e| e.url_path == "/data_custom/errorlog.php")
        .unwrap();
    let variable = errorlog.web_variable.as_ref().unwrap();
    assert_eq!(variable.name, "WEB__data_custom_errorlog.php_DIR");
    assert_eq!(
        variable.alias.as_deref(),
        Some("WEB__data_custom_errorlog_php_DIR")
    );
    let config = entries
        .iter()
        .find(|e| e.url_path == "/_config.php")
        .unwrap();
    assert_eq!(
        config.web_variable.as_ref().unwrap().name,
        "WEB___config.php_DIR"
    );
    assert_eq!(entries.len(), 1 + um.root.children.len());
}

#[test]
fn ocstore_values() {
    let parsed = parse_ok("ocstore-1.5.5.1.2");
    assert_eq!(
        rules_of(&parsed.findings, Severity::Warning),
        ["meta-id-not-uri"]
    );
    let pkg = parsed.package;
    assert_eq!(pkg.version, "1.5.5.1.2");
    assert_eq!(pkg.identity(), Identity::Id("ocStore".into()));
    assert!(pkg.global_settings.is_empty());
    assert_eq!(
        pkg.upgrade.as_ref().unwrap().match_rule,
        "/application/version >= '1.5.1'"
    );
    let service = root(&pkg);
    assert_eq!(
        (service.id.as_str(), service.class.as_deref()),
        ("main", Some("service"))
    );
    let variable = &service.presentation.entry_points[0].variables[0];
    assert_eq!(variable.value_of_setting.as_deref(), Some("admin_name"));
    assert_eq!(variable.text, "admin@opencart.com");
    assert!(
        service
            .requirements
            .items
            .contains(&Requirement::Apache(ApacheRequirement::Htaccess))
    );
    assert!(
        service
            .requirements
            .items
            .contains(&Requirement::Php(PhpRequirement::Flag {
                directive: PhpFlag::MagicQuotesGpc,
                value: false
            }))
    );
    let um = service.provision.url_mapping.as_ref().unwrap();
    let paths: Vec<_> = um.entries().into_iter().map(|e| e.url_path).collect();
    assert_eq!(
        paths,
        [
            "/",
            "/download",
            "/image",
            "/image/cache",
            "/image/data",
            "/system",
            "/system/cache",
            "/system/logs"
        ]
    );
    assert!(
        um.root.children[2].php_permissions.is_none(),
        "/system has no permissions"
    );
}

#[test]
fn communigate_values() {
    let parsed = parse_ok("communigate-pro-1.0");
    assert_eq!(
        rules_of(&parsed.findings, Severity::Warning),
        ["setting-host-port"]
    );
    assert!(errors(&parsed.findings).is_empty());
    let pkg = parsed.package;
    assert_eq!(pkg.all_global_settings()[0].kind, SettingType::HostName);
    let service = root(&pkg);
    assert_eq!(service.id, "CommuniGate Pro");
    assert_eq!(
        service.license.as_ref().unwrap().kind,
        LicenseKind::Commercial
    );
    assert_eq!(
        service.presentation.entry_points[0].dst, "index.php",
        "1.2 dst kept as written"
    );
    let um = service.provision.url_mapping.as_ref().unwrap();
    assert_eq!(um.default_prefix.as_deref(), Some("CommuniGate"));
    assert_eq!(um.installed_size, None);
}

#[test]
fn afterlogic_template_errors_and_filled_10_values() {
    let findings = lint::lint_meta(&meta_bytes("afterlogic-webmail-template"), "APP-META.xml");
    let found: Vec<_> = findings.iter().map(|f| (f.rule.as_str(), f.line)).collect();
    assert_eq!(
        found,
        [
            ("meta-crlf", Some(1)),
            ("meta-unfilled-template", Some(3)),
            ("meta-unfilled-template", Some(4)),
            ("meta-unfilled-template", Some(49)),
        ]
    );
    let parsed = filled(
        "afterlogic-webmail-template",
        &[
            ("%PRODUCT_VERSION%", "9.1.0"),
            ("%PRODUCT_RELEASE%", "2"),
            ("%INSTALL_SIZE%", "1000"),
        ],
    );
    let pkg = parsed.package;
    assert_eq!(pkg.format, ApsFormat::V1_0);
    assert_eq!(pkg.upgradable_from.len(), 1);
    assert_eq!(pkg.upgradable_from[0].version, "9.0.0");
    assert_eq!(pkg.upgradable_from[0].release.as_deref(), Some("1"));
    assert!(pkg.upgrade.is_none());
    assert_eq!(pkg.presentation.screenshots.len(), 5);
    let service = root(&pkg);
    let um = service.provision.url_mapping.as_ref().unwrap();
    assert_eq!(
        um.default_prefix.as_deref(),
        Some("webmail"),
        "slashes stripped"
    );
    assert_eq!(um.installed_size, Some(1000));
    let dsts: Vec<_> = service
        .presentation
        .entry_points
        .iter()
        .map(|e| e.dst.as_str())
        .collect();
    assert_eq!(
        dsts,
        ["/index.php", "/adminpanel/"],
        "1.0 path gets a leading slash"
    );
    assert_eq!(setting_ids(service), ["admin_name", "admin_password"]);
}

#[test]
fn dolibarr_11_uses_the_10_script_language_element_which_is_an_error() {
    let bytes = meta_bytes("dolibarr-template-aps1.1");
    let err = parse_app_meta(&bytes, "APP-META.xml").unwrap_err();
    assert_eq!(
        (err.rule, err.line, err.column),
        ("meta-unfilled-template", Some(5), Some(2))
    );
    let findings = lint::lint_meta(&bytes, "APP-META.xml");
    let script = findings
        .iter()
        .find(|f| f.rule == "meta-script-language")
        .unwrap();
    assert_eq!((script.line, script.column), (Some(117), Some(13)));
    assert!(
        script.message.contains("configuration-script-language"),
        "{}",
        script.message
    );
    assert!(
        findings
            .iter()
            .any(|f| f.rule == "meta-comment-before-root")
    );
    // Even with its placeholders filled the 1.1 template stays invalid.
    let mut text = String::from_utf8(bytes).unwrap();
    text = text
        .replace("__VERSION__", "3.1.0")
        .replace("__RELEASE__", "1");
    let err = parse_app_meta(text.as_bytes(), "APP-META.xml").unwrap_err();
    assert_eq!(err.rule, "meta-script-language");
}

#[test]
fn dolibarr_12_filled_template_values() {
    let parsed = filled(
        "dolibarr-template-aps1.2",
        &[("__VERSION__", "3.1.0"), ("__RELEASE__", "1")],
    );
    let warnings = rules_of(&parsed.findings, Severity::Warning);
    assert_eq!(warnings, ["meta-comment-before-root", "meta-id-not-uri"]);
    let pkg = parsed.package;
    assert_eq!(pkg.format, ApsFormat::V1_2);
    assert_eq!(
        pkg.upgrade.as_ref().unwrap().match_rule,
        "/application/version = '3.0'"
    );
    let service = root(&pkg);
    assert_eq!(setting_ids(service), ["admin_name", "admin_password"]);
    assert_eq!(
        service.license.as_ref().unwrap().text_file.as_deref(),
        Some("COPYING")
    );
    let script = service.provision.configuration_script.as_ref().unwrap();
    assert_eq!(script.name, "configure.php");
    assert!(script.status_control);
}

#[test]
fn spamexperts_filled_template_values_and_unsupported_aspects() {
    let parsed = filled(
        "spamexperts-integration-template",
        &[("{VERSION}", "1.8"), ("{RELEASE}", "74165")],
    );
    let pkg = &parsed.package;
    assert_eq!(
        pkg.patch.as_ref().unwrap().match_rule,
        "/application/version > '2.0'"
    );
    assert!(pkg.patch.as_ref().unwrap().recommended);
    let ssl = pkg
        .all_global_settings()
        .into_iter()
        .find(|s| s.id == "ssl_enabled")
        .unwrap();
    assert_eq!(
        (&ssl.kind, ssl.default_value.as_deref()),
        (&SettingType::Boolean, Some("true"))
    );
    let context = root(pkg);
    assert_eq!(
        (context.id.as_str(), context.class.as_deref()),
        ("context", Some("service"))
    );
    let domains = context
        .all_settings()
        .into_iter()
        .find(|s| s.id == "domains")
        .unwrap();
    assert_eq!(
        domains.kind,
        SettingType::List {
            element_type: Box::new(SettingType::String(TextConstraints::default()))
        }
    );
    assert_eq!(domains.uniq, Some(Uniq::Owner));
    assert!(domains.visibility_hidden && domains.track_old_value);
    let email = context
        .all_settings()
        .into_iter()
        .find(|s| s.id == "email")
        .unwrap();
    assert!(email.optional);
    assert_eq!(context.resources.len(), 6);
    assert_eq!(
        context.resources[1].limiting_setting.as_deref(),
        Some("num_domains")
    );
    let script = context.provision.configuration_script.as_ref().unwrap();
    assert!(script.status_control && script.structured_output);
    assert_eq!(
        context.provision.resource_script.as_ref().unwrap().name,
        "report-resources.php"
    );
    assert_eq!(
        context.presentation.entry_points[0].dst,
        "{spampanel_url}/bridgelogin.php"
    );
    assert_eq!(context.services.len(), 1);
    let account = &context.services[0];
    assert_eq!(
        (account.id.as_str(), account.class.as_deref()),
        ("account", Some("account"))
    );
    assert_eq!(pkg.all_services().len(), 2);

    let unsupported: Vec<_> = errors(&parsed.findings)
        .into_iter()
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(unsupported.len(), 2, "{unsupported:?}");
    assert!(
        unsupported[0].contains("http://apstandard.com/ns/1/dns"),
        "{}",
        unsupported[0]
    );
    assert!(
        unsupported[1].contains("http://apstandard.com/ns/1/mail"),
        "{}",
        unsupported[1]
    );
    assert!(
        unsupported
            .iter()
            .all(|m| m.contains("cannot be satisfied by apsctl"))
    );
}

#[test]
fn package_paths_against_real_file_listings() {
    for name in ["wordpress-5.2.3", "communigate-pro-1.0"] {
        let pkg = parse_ok(name).package;
        let listed = listed_paths(name);
        let findings = lint::check_package_paths(&pkg, &|p| listed.contains(p));
        assert!(findings.is_empty(), "{name}: {findings:?}");
    }
    let wordpress = parse_ok("wordpress-5.2.3").package;
    let nothing = lint::check_package_paths(&wordpress, &|_| false);
    let found: Vec<_> = nothing
        .iter()
        .map(|f| (f.rule.as_str(), f.severity))
        .collect();
    assert_eq!(
        found,
        [
            ("path-missing-image", Severity::Warning),
            ("path-missing-image", Severity::Warning),
            ("path-missing-image", Severity::Warning),
            ("path-missing-image", Severity::Warning),
            ("path-missing", Severity::Error),
            ("path-missing", Severity::Error),
            ("path-missing", Severity::Error),
        ]
    );
    assert!(
        nothing[4].message.contains("htdocs/license.txt"),
        "{}",
        nothing[4].message
    );
    assert!(
        nothing[5].message.contains("scripts/configure"),
        "{}",
        nothing[5].message
    );
    assert!(
        nothing[6].message.contains("htdocs"),
        "{}",
        nothing[6].message
    );
}

#[test]
fn package_paths_that_escape_are_errors() {
    let mut pkg = parse_ok("wordpress-5.2.3").package;
    let service = &mut pkg.services[0];
    service.license.as_mut().unwrap().text_file = Some("../../etc/passwd".into());
    service
        .provision
        .configuration_script
        .as_mut()
        .unwrap()
        .name = "../htdocs/index.php".into();
    let um = service.provision.url_mapping.as_mut().unwrap();
    um.root.path = Some("/var/www".into());
    pkg.presentation.icon = Some("images/../../icon.png".into());
    let findings = lint::check_package_paths(&pkg, &|_| true);
    let escapes: Vec<_> = findings
        .iter()
        .filter(|f| f.rule == "path-escapes-package")
        .collect();
    assert_eq!(escapes.len(), 4, "{findings:?}");
    assert!(escapes.iter().all(|f| f.is_error()));
    assert!(
        findings
            .iter()
            .any(|f| f.message.contains("`scripts/` folder"))
    );
    pkg.services[0]
        .provision
        .url_mapping
        .as_mut()
        .unwrap()
        .root
        .path = Some(".".into());
    let whole = lint::check_package_paths(&pkg, &|_| true);
    assert!(
        whole.iter().any(|f| f.message.contains("whole package")),
        "{whole:?}"
    );
}

#[test]
fn json_round_trip_of_every_parsed_package() {
    let mut packages: Vec<Package> = corpus_packages()
        .iter()
        .filter_map(|name| parse_app_meta(&meta_bytes(name), "APP-META.xml").ok())
        .map(|p| p.package)
        .collect();
    packages.push(
        filled(
            "spamexperts-integration-template",
            &[("{VERSION}", "1"), ("{RELEASE}", "1")],
        )
        .package,
    );
    packages.push(
        filled(
            "dolibarr-template-aps1.2",
            &[("__VERSION__", "1"), ("__RELEASE__", "1")],
        )
        .package,
    );
    assert!(packages.len() >= 10);
    for pkg in packages {
        let json = serde_json::to_string(&pkg).unwrap();
        let back: Package = serde_json::from_str(&json).unwrap();
        assert_eq!(back, pkg, "{}", pkg.name);
    }
}

fn fixture(name: &str) -> Vec<u8> {
    fs_err::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .expect("fixture is readable")
}

fn refused(bytes: &[u8], file: &str) -> ParseError {
    let err = parse_app_meta(bytes, file).expect_err("input must be refused");
    assert!(err.to_string().contains(&format!("`{file}`")), "{err}");
    let findings = lint::lint_meta(bytes, file);
    assert!(findings.contains(&err.to_finding()), "{findings:?}");
    err
}

#[test]
fn hostile_and_foreign_inputs_are_refused_with_positions() {
    let laughs = refused(&fixture("billion-laughs.xml"), "laughs/APP-META.xml");
    assert_eq!(
        (laughs.rule, laughs.line, laughs.column),
        ("meta-dtd", Some(2), Some(1))
    );
    let external = refused(&fixture("external-entity.xml"), "xxe/APP-META.xml");
    assert_eq!((external.rule, external.line), ("meta-dtd", Some(1)));
    let aps2 = refused(&fixture("aps2.xml"), "aps2/APP-META.xml");
    assert_eq!(
        (aps2.rule, aps2.line, aps2.column),
        ("meta-aps2", Some(2), Some(1))
    );
    assert!(aps2.message.contains("APS 2"), "{aps2}");

    let empty = refused(b"", "empty/APP-META.xml");
    assert_eq!((empty.rule, empty.line), ("meta-empty", None));
    let blank = refused(b" \n\t", "blank/APP-META.xml");
    assert_eq!(blank.rule, "meta-empty");

    let mut latin1 = meta_bytes("contenido-4.9.7");
    let umlaut = latin1.windows(2).position(|w| w == "ü".as_bytes()).unwrap();
    latin1.splice(umlaut..umlaut + 2, [0xFC]);
    let encoding = refused(&latin1, "latin1/APP-META.xml");
    assert_eq!(encoding.rule, "meta-encoding");
    assert!(encoding.line.is_some() && encoding.column.is_some());

    let utf16 = refused(&[0xFF, 0xFE, b'<', 0], "utf16/APP-META.xml");
    assert_eq!(utf16.rule, "meta-encoding");

    let whole = meta_bytes("wordpress-5.2.3");
    let truncated = refused(&whole[..whole.len() / 2], "cut/APP-META.xml");
    assert_eq!(truncated.rule, "meta-xml");
    assert!(truncated.line.unwrap() > 100, "{truncated}");

    let with_bom = [b"\xEF\xBB\xBF".as_slice(), &meta_bytes("ocstore-1.5.5.1.2")].concat();
    assert!(parse_app_meta(&with_bom, "bom/APP-META.xml").is_ok());
}

#[test]
fn every_truncation_of_every_corpus_file_is_handled() {
    for name in corpus_packages() {
        let bytes = meta_bytes(&name);
        for end in (0..bytes.len()).step_by(61) {
            let _ = lint::lint_meta(&bytes[..end], "APP-META.xml");
            if let Err(e) = parse_app_meta(&bytes[..end], "APP-META.xml") {
                assert!(lint::rule(e.rule).is_some(), "{name}[..{end}]: {e}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = parse_app_meta(&bytes, "APP-META.xml");
        let _ = lint::lint_meta(&bytes, "APP-META.xml");
    }

    #[test]
    fn parse_never_panics_on_mutated_corpus_files(
        pick in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        insert in proptest::collection::vec(any::<u8>(), 0..16),
        remove in 0usize..16,
    ) {
        let names = corpus_packages();
        let mut bytes = meta_bytes(&names[pick.index(names.len())]);
        let start = at.index(bytes.len());
        let end = (start + remove).min(bytes.len());
        bytes.splice(start..end, insert);
        let _ = parse_app_meta(&bytes, "APP-META.xml");
        let _ = lint::lint_meta(&bytes, "APP-META.xml");
    }

    #[test]
    fn parse_never_panics_on_xmlish_text(text in "(<[a-z:]{1,8}( [a-z]{1,4}=\"[^\"<]{0,6}\")?/?>|</[a-z:]{1,8}>|[a-z0-9 %_{}&;]{0,8}){0,40}") {
        let doc = format!(r#"<application xmlns="http://apstandard.com/ns/1" version="1.2">{text}</application>"#);
        let _ = parse_app_meta(doc.as_bytes(), "APP-META.xml");
        let _ = lint::lint_meta(doc.as_bytes(), "APP-META.xml");
    }
}

#[test]
fn wordpress_install_form_validates_against_its_settings() {
    use std::collections::BTreeMap;

    use aps_meta::value::{SettingProblem, SettingValue, ValidateOptions, validate};

    let pkg = parse_ok("wordpress-5.2.3").package;
    let settings = root(&pkg).all_settings();
    let input: BTreeMap<String, String> = [
        ("admin_name", "admin"),
        ("admin_password", "s3cret!"),
        ("admin_email", "owner@example.com"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let values = validate(&settings, &input, &ValidateOptions::default()).expect("valid form");
    let encoded: Vec<_> = values
        .iter()
        .map(|(k, v)| (k.as_str(), v.encode()))
        .collect();
    assert_eq!(
        encoded,
        [
            ("admin_email", "owner@example.com".to_owned()),
            ("admin_name", "admin".to_owned()),
            ("admin_password", "s3cret!".to_owned()),
            ("locale", "en-US".to_owned()),
            ("title", "My CMS".to_owned()),
        ]
    );
    assert!(!format!("{values:?}").contains("s3cret!"));
    assert_eq!(values["locale"], SettingValue::Enum("en-US".into()));

    let bad: BTreeMap<String, String> = [("admin_name", "1admin"), ("locale", "xx-XX")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let errors = validate(&settings, &bad, &ValidateOptions::default()).expect_err("invalid form");
    let found: Vec<_> = errors
        .iter()
        .map(|e| (e.setting.as_str(), &e.problem))
        .collect();
    assert_eq!(found.len(), 4, "{errors:?}");
    assert!(matches!(
        found[0],
        ("admin_name", SettingProblem::PatternMismatch { .. })
    ));
    assert_eq!(found[1], ("admin_password", &SettingProblem::Required));
    assert_eq!(found[2], ("admin_email", &SettingProblem::Required));
    assert!(matches!(
        found[3],
        ("locale", SettingProblem::NotAChoice { .. })
    ));
}
