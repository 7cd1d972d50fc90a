//! Lint findings about a package's metadata: the rule table, metadata-only checks, and checks of
//! the paths the metadata references.
//!
//! Main decision: every finding carries a stable kebab-case rule id from [`RULES`], the single
//! table of rules with their default severity. Structural problems (REFERENCE §2.4 checks 3–6)
//! are parse errors and reach lint output through [`lint_meta`]; metadata-only semantic checks
//! ([`lint_package`]: aspect support, defaults against their own constraints, dangling setting
//! references) run on the typed model, so they also work for packages loaded from the store, and
//! [`crate::parse::parse_app_meta`] already includes them in its findings. Checks that need the
//! archive take an `exists` callback ([`check_package_paths`]), keeping this crate free of I/O.
//! Anything that would pass import and then fail every install is an error here, not a warning:
//! ids that cannot be part of an environment variable name ([`variable_name_problem`]) and
//! mapping paths or URLs that are not plain relative folders ([`relative_path_problem`]).
//!
//! Known gaps: findings from [`lint_package`] have no line/column (the model keeps no source
//! positions); `match` expressions are checked by the match-expression module, not here.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::model::{Mapping, Package, Requirement, Service, Setting, UrlMapping};
use crate::ns;
use crate::value::{SettingType, parse_value};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The package cannot be imported.
    Error,
    /// Stored with the package and shown to the administrator; the import continues.
    Warning,
}

/// One lint finding, serialized with exactly the fields of the CLI contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable rule id from [`RULES`].
    pub rule: String,
    /// Error or warning.
    pub severity: Severity,
    /// One sentence naming what is at fault.
    pub message: String,
    /// File the finding is about (e.g. `APP-META.xml`).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<u32>,
    /// 1-based column in characters, when known.
    pub column: Option<u32>,
}

impl Finding {
    /// A finding of `rule` with the rule's default severity and no position.
    pub fn new(rule: &Rule, file: &str, message: impl Into<String>) -> Self {
        Finding {
            rule: rule.id.to_owned(),
            severity: rule.severity,
            message: message.into(),
            file: file.to_owned(),
            line: None,
            column: None,
        }
    }

    /// The same finding at a position.
    #[must_use]
    pub fn at(mut self, line: u32, column: u32) -> Self {
        self.line = Some(line);
        self.column = Some(column);
        self
    }

    /// The same finding with another severity.
    #[must_use]
    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// Whether this finding blocks an import.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A lint rule: stable id, default severity, one-line summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Stable kebab-case id, shown to users and stored with findings.
    pub id: &'static str,
    /// Severity unless the check says otherwise.
    pub severity: Severity,
    /// What the rule checks.
    pub summary: &'static str,
}

const fn error(id: &'static str, summary: &'static str) -> Rule {
    Rule {
        id,
        severity: Severity::Error,
        summary,
    }
}

const fn warning(id: &'static str, summary: &'static str) -> Rule {
    Rule {
        id,
        severity: Severity::Warning,
        summary,
    }
}

/// The file is empty.
pub const META_EMPTY: Rule = error("meta-empty", "APP-META.xml is empty");
/// The file is not UTF-8.
pub const META_ENCODING: Rule = error("meta-encoding", "APP-META.xml must be UTF-8");
/// A DTD or entity declaration is present; they are refused, never expanded.
pub const META_DTD: Rule = error("meta-dtd", "DTDs and entity declarations are refused");
/// The file is not well-formed XML (or is nested too deeply).
pub const META_XML: Rule = error("meta-xml", "APP-META.xml must be well-formed XML");
/// The root is in the APS 2 namespace.
pub const META_APS2: Rule = error("meta-aps2", "APS 2 packages are not supported");
/// The root is not `application` in the APS 1 core namespace.
pub const META_NAMESPACE: Rule = error(
    "meta-namespace",
    "the root must be `application` in the APS 1 core namespace",
);
/// `application/@version` is not absent, `1.1` or `1.2`.
pub const META_FORMAT_VERSION: Rule = error(
    "meta-format-version",
    "the APS format version must be absent (1.0), 1.1 or 1.2",
);
/// A required element is missing or empty.
pub const META_MISSING_ELEMENT: Rule = error(
    "meta-missing-element",
    "a required element is missing or empty",
);
/// A required attribute is missing or empty.
pub const META_MISSING_ATTRIBUTE: Rule = error(
    "meta-missing-attribute",
    "a required attribute is missing or empty",
);
/// A value has the wrong syntax (boolean, integer, size, enumerated attribute).
pub const META_INVALID_VALUE: Rule = error(
    "meta-invalid-value",
    "a value does not have the required syntax",
);
/// A setting has an unknown `type`.
pub const META_UNKNOWN_SETTING_TYPE: Rule =
    error("meta-unknown-setting-type", "setting types must be known");
/// A setting's `regex` does not compile.
pub const META_INVALID_REGEX: Rule = error(
    "meta-invalid-regex",
    "setting patterns must be valid regular expressions",
);
/// An unfilled build template (`%X%`, `__X__`, `{X}`) where a version or number is required.
pub const META_UNFILLED_TEMPLATE: Rule = error(
    "meta-unfilled-template",
    "version, release and sizes must not be unfilled template placeholders",
);
/// The mapping tree is malformed (root `url` not `/`, empty or `..` URL segments).
pub const META_MAPPING: Rule = error("meta-mapping", "the URL mapping tree must be well-formed");
/// A script declaration has no `script-language`.
pub const META_SCRIPT_LANGUAGE: Rule = error(
    "meta-script-language",
    "script declarations must name their script-language",
);
/// Two settings, services, database ids or choices share an id.
pub const META_DUPLICATE_ID: Rule = error("meta-duplicate-id", "ids must be unique in their scope");
/// Two exported variable names collide (REFERENCE §11 Q21).
pub const META_NAME_COLLISION: Rule = error(
    "meta-name-collision",
    "global and service settings, and WEB_ variable names, must not collide",
);
/// An element is in a place its format version does not allow.
pub const META_STRUCTURE: Rule = error(
    "meta-structure",
    "elements must be in the places their format version allows",
);
/// The misspelled core namespace `apsstandard.com` is used.
pub const META_MISSPELLED_NAMESPACE: Rule = warning(
    "meta-misspelled-namespace",
    "the APS namespace is misspelled (apsstandard.com)",
);
/// The file uses CRLF line endings.
pub const META_CRLF: Rule = warning("meta-crlf", "APP-META.xml uses CRLF line endings");
/// Comments precede the root element.
pub const META_COMMENT_BEFORE_ROOT: Rule = warning(
    "meta-comment-before-root",
    "a comment precedes the root element",
);
/// A `language` value is outside `[a-z]{2,3}`.
pub const META_LANGUAGE_TAG: Rule = warning(
    "meta-language-tag",
    "language values should be two or three lower-case letters",
);
/// The package `id` is not a URI.
pub const META_ID_NOT_URI: Rule = warning("meta-id-not-uri", "the package id should be a URI");
/// A setting id, `db:id` or mapping URL would put `=` or NUL into an exported variable name
/// (REFERENCE §5.2, §11 Q21); see [`variable_name_problem`].
pub const META_VARIABLE_NAME: Rule = error(
    "meta-variable-name",
    "setting ids, db:ids and mapping URLs become environment variable names and must not contain `=` or NUL",
);
/// A mapping `path` is absolute or has empty, `.` or `..` segments, backslashes or NUL; see
/// [`relative_path_problem`].
pub const META_MAPPING_PATH: Rule = error(
    "meta-mapping-path",
    "mapping paths must be relative package folders without empty, `.` or `..` segments",
);
/// A setting id or `db:id` has characters outside `[A-Za-z0-9_]` (REFERENCE §11 Q21).
pub const META_ID_CHARACTERS: Rule = warning(
    "meta-id-characters",
    "setting ids and db:ids should use only A-Z, a-z, 0-9 and _",
);
/// An element apsctl does not know is ignored.
pub const META_UNKNOWN_ELEMENT: Rule =
    warning("meta-unknown-element", "unknown elements are ignored");
/// A setting declares `charset`, which apsctl does not enforce (REFERENCE §11 Q12).
pub const SETTING_CHARSET_IGNORED: Rule = warning(
    "setting-charset-ignored",
    "setting charsets are not enforced",
);
/// `php:post_max_size` is written with an underscore.
pub const PHP_POST_MAX_SIZE_UNDERSCORE: Rule = warning(
    "php-post-max-size-underscore",
    "php:post_max_size should be written php:post-max-size",
);
/// A requirement, handler, content method or provision element cannot be satisfied by apsctl.
pub const ASPECT_UNSUPPORTED: Rule = error(
    "aspect-unsupported",
    "every aspect the package needs must be supported by apsctl",
);
/// A setting's default value breaks the setting's own constraints.
pub const DEFAULT_VIOLATES_CONSTRAINT: Rule = error(
    "default-violates-constraint",
    "default values must satisfy their setting's type and constraints",
);
/// A `host-name` default contains a port.
pub const SETTING_HOST_PORT: Rule = warning(
    "setting-host-port",
    "host-name defaults should not contain a port",
);
/// A `value-of-setting` or `limiting-setting` names no visible setting.
pub const SETTING_REFERENCE_UNKNOWN: Rule = warning(
    "setting-reference-unknown",
    "setting references should name a declared setting",
);
/// A referenced path is absolute or leaves the package (or its `scripts/` folder).
pub const PATH_ESCAPES_PACKAGE: Rule = error(
    "path-escapes-package",
    "metadata paths must stay inside the package",
);
/// A referenced script, mapped directory or license file is missing from the package.
pub const PATH_MISSING: Rule = error("path-missing", "referenced files must exist in the package");
/// A referenced icon or screenshot is missing from the package.
pub const PATH_MISSING_IMAGE: Rule = warning(
    "path-missing-image",
    "referenced icons and screenshots should exist",
);

/// Every rule, in documentation order.
pub const RULES: &[Rule] = &[
    META_EMPTY,
    META_ENCODING,
    META_DTD,
    META_XML,
    META_APS2,
    META_NAMESPACE,
    META_FORMAT_VERSION,
    META_MISSING_ELEMENT,
    META_MISSING_ATTRIBUTE,
    META_INVALID_VALUE,
    META_UNKNOWN_SETTING_TYPE,
    META_INVALID_REGEX,
    META_UNFILLED_TEMPLATE,
    META_MAPPING,
    META_SCRIPT_LANGUAGE,
    META_DUPLICATE_ID,
    META_NAME_COLLISION,
    META_STRUCTURE,
    META_MISSPELLED_NAMESPACE,
    META_CRLF,
    META_COMMENT_BEFORE_ROOT,
    META_LANGUAGE_TAG,
    META_ID_NOT_URI,
    META_VARIABLE_NAME,
    META_MAPPING_PATH,
    META_ID_CHARACTERS,
    META_UNKNOWN_ELEMENT,
    SETTING_CHARSET_IGNORED,
    PHP_POST_MAX_SIZE_UNDERSCORE,
    ASPECT_UNSUPPORTED,
    DEFAULT_VIOLATES_CONSTRAINT,
    SETTING_HOST_PORT,
    SETTING_REFERENCE_UNKNOWN,
    PATH_ESCAPES_PACKAGE,
    PATH_MISSING,
    PATH_MISSING_IMAGE,
];

/// Looks a rule up by id.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

/// File name used in findings about the metadata of a package.
pub const META_FILE: &str = "APP-META.xml";

/// Lints APP-META.xml bytes: parse errors become error findings, followed by the parser's and
/// [`lint_package`]'s findings, sorted by position (findings without position last).
///
/// Never panics, whatever the input.
pub fn lint_meta(bytes: &[u8], file: &str) -> Vec<Finding> {
    let outcome = crate::parse::parse_outcome(bytes, file);
    let mut findings: Vec<Finding> = outcome
        .errors
        .into_iter()
        .map(|e| e.to_finding())
        .chain(outcome.findings)
        .collect();
    findings.sort_by_key(|f| (f.line.is_none(), f.line, f.column));
    findings
}

/// Metadata-only semantic checks on a parsed package (no positions).
///
/// Errors: defaults that break their own constraints; requirements, mapping handlers, content
/// methods and provision elements apsctl cannot satisfy (inside a `choice` only a warning when
/// another alternative is fully supported, REFERENCE §11 Q9). Warnings: `host-name` defaults
/// with a port; `value-of-setting` / `limiting-setting` naming no visible setting.
pub fn lint_package(pkg: &Package, file: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for setting in pkg.all_global_settings() {
        check_default(setting, "global settings", file, &mut out);
    }
    if let Some(content) = &pkg.content {
        out.push(Finding::new(
            &ASPECT_UNSUPPORTED,
            file,
            format!(
                "content delivery method {} cannot be satisfied by apsctl",
                describe_element(&content.namespace, &content.name)
            ),
        ));
    }
    let globals: BTreeSet<&str> = pkg
        .all_global_settings()
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    for service in &pkg.services {
        lint_service(service, &globals, file, &mut out);
    }
    out
}

fn lint_service(service: &Service, visible: &BTreeSet<&str>, file: &str, out: &mut Vec<Finding>) {
    let here = format!("service `{}`", service.id);
    let settings = service.all_settings();
    let mut visible = visible.clone();
    visible.extend(settings.iter().map(|s| s.id.as_str()));
    for setting in &settings {
        check_default(setting, &here, file, out);
        if let Some(source) = &setting.value_of_setting {
            check_reference(
                &visible,
                source,
                &format!("{here}: setting `{}`", setting.id),
                file,
                out,
            );
        }
    }
    for entry in &service.presentation.entry_points {
        for var in &entry.variables {
            if let Some(source) = &var.value_of_setting {
                let what = format!(
                    "{here}: entry point `{}` variable `{}`",
                    entry.dst, var.name
                );
                check_reference(&visible, source, &what, file, out);
            }
        }
    }
    for resource in &service.resources {
        if let Some(source) = &resource.limiting_setting {
            let what = format!("{here}: resource `{}`", resource.id);
            check_reference(&visible, source, &what, file, out);
        }
    }
    check_requirements(service, &here, file, out);
    if let Some(url_mapping) = &service.provision.url_mapping {
        check_mapping_aspects(url_mapping, &here, file, out);
    }
    for el in &service.provision.other {
        out.push(Finding::new(
            &ASPECT_UNSUPPORTED,
            file,
            format!(
                "{here}: provision element {} cannot be satisfied by apsctl",
                describe_element(&el.namespace, &el.name)
            ),
        ));
    }
    for child in &service.services {
        lint_service(child, &visible, file, out);
    }
}

fn check_reference(
    visible: &BTreeSet<&str>,
    source: &str,
    what: &str,
    file: &str,
    out: &mut Vec<Finding>,
) {
    if !visible.contains(source) {
        out.push(Finding::new(
            &SETTING_REFERENCE_UNKNOWN,
            file,
            format!("{what} refers to setting `{source}`, which is not declared here or in an enclosing scope"),
        ));
    }
}

fn check_default(setting: &Setting, scope: &str, file: &str, out: &mut Vec<Finding>) {
    let Some(default) = setting.default_value.as_deref().filter(|d| !d.is_empty()) else {
        return;
    };
    match parse_value(&setting.kind, default) {
        Err(problem) => {
            let shown = if setting.kind.is_secret() {
                String::new()
            } else {
                format!(" `{default}`")
            };
            out.push(Finding::new(
                &DEFAULT_VIOLATES_CONSTRAINT,
                file,
                format!(
                    "{scope}: the default value{shown} of setting `{}` is invalid: {problem}",
                    setting.id
                ),
            ));
        }
        Ok(_) => {
            if matches!(setting.kind, SettingType::HostName) && has_port(default) {
                out.push(Finding::new(
                    &SETTING_HOST_PORT,
                    file,
                    format!(
                        "{scope}: the default value `{default}` of host-name setting `{}` contains a port",
                        setting.id
                    ),
                ));
            }
        }
    }
}

fn has_port(host: &str) -> bool {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.contains("]:");
    }
    host.matches(':').count() == 1
}

/// Why one requirement cannot be satisfied by apsctl, or `None` when it can be.
fn unsupported_reason(req: &Requirement) -> Option<String> {
    match req {
        Requirement::Php(_) | Requirement::Apache(_) => None,
        Requirement::Db(db) => (!matches!(db.server_type.as_str(), "mysql" | "postgresql" | "sqlite"))
            .then(|| {
                format!(
                    "database `{}` needs server type `{}`, which cannot be satisfied by apsctl (supported: mysql, postgresql, sqlite)",
                    db.id, db.server_type
                )
            }),
        Requirement::Other(el) => Some(format!(
            "requirement {} cannot be satisfied by apsctl",
            describe_element(&el.namespace, &el.name)
        )),
    }
}

fn check_requirements(service: &Service, here: &str, file: &str, out: &mut Vec<Finding>) {
    for req in &service.requirements.items {
        if let Some(reason) = unsupported_reason(req) {
            out.push(Finding::new(
                &ASPECT_UNSUPPORTED,
                file,
                format!("{here}: {reason}"),
            ));
        }
    }
    for choice in &service.requirements.choices {
        let usable: Vec<&str> = choice
            .alternatives
            .iter()
            .filter(|a| a.items.iter().all(|r| unsupported_reason(r).is_none()))
            .map(|a| a.id.as_str())
            .collect();
        for alternative in &choice.alternatives {
            for reason in alternative.items.iter().filter_map(unsupported_reason) {
                let (severity, note) = match usable.first() {
                    Some(other) => (
                        Severity::Warning,
                        format!("alternative `{other}` can be used instead"),
                    ),
                    None => (
                        Severity::Error,
                        "no alternative of this choice can be satisfied".to_owned(),
                    ),
                };
                out.push(
                    Finding::new(
                        &ASPECT_UNSUPPORTED,
                        file,
                        format!(
                            "{here}: choice alternative `{}`: {reason}; {note}",
                            alternative.id
                        ),
                    )
                    .with_severity(severity),
                );
            }
        }
    }
}

fn check_mapping_aspects(url_mapping: &UrlMapping, here: &str, file: &str, out: &mut Vec<Finding>) {
    for entry in url_mapping.entries() {
        for el in &entry.mapping.other_aspects {
            out.push(Finding::new(
                &ASPECT_UNSUPPORTED,
                file,
                format!(
                    "{here}: mapping `{}` uses {}, which cannot be satisfied by apsctl",
                    entry.url_path,
                    describe_element(&el.namespace, &el.name)
                ),
            ));
        }
    }
}

/// `name` with its namespace and aspect, for messages.
fn describe_element(namespace: &str, name: &str) -> String {
    if namespace == ns::CORE {
        return format!("`{name}` (an APS core element apsctl does not implement)");
    }
    let aspect = ns::aspect_name(namespace).map_or(String::new(), |a| format!("{a} aspect, "));
    if ns::is_supported_aspect(namespace) {
        format!("`{name}` ({aspect}namespace `{namespace}`; an element apsctl does not know)")
    } else {
        format!("`{name}` ({aspect}namespace `{namespace}`)")
    }
}

/// Checks every path the metadata references against the archive.
///
/// `exists` receives a normalised archive-relative path (`/`-separated, no leading or trailing
/// `/`, no `.`/`..` segments) and must answer for files and directories alike. Errors: absolute
/// paths or paths that leave the package (scripts: that leave `scripts/`), a root mapping that
/// would publish the whole package, a missing script file, root mapping directory or license
/// file. Warnings: a missing icon, screenshot, or explicit child mapping directory.
pub fn check_package_paths(pkg: &Package, exists: &dyn Fn(&str) -> bool) -> Vec<Finding> {
    let mut checker = PathChecker {
        exists,
        out: Vec::new(),
    };
    let images = pkg
        .presentation
        .icon
        .iter()
        .map(|p| (p, "application icon".to_owned()))
        .chain(
            pkg.presentation
                .screenshots
                .iter()
                .map(|s| (&s.path, "screenshot".to_owned())),
        )
        .chain(
            pkg.vendor
                .iter()
                .flat_map(|v| v.icon.iter())
                .map(|p| (p, "vendor icon".to_owned())),
        )
        .chain(
            pkg.packager
                .iter()
                .flat_map(|v| v.icon.iter())
                .map(|p| (p, "packager icon".to_owned())),
        );
    for (path, what) in images {
        checker.check(path, &what, &PATH_MISSING_IMAGE);
    }
    for service in pkg.all_services() {
        let here = format!("service `{}`", service.id);
        if let Some(icon) = &service.presentation.icon {
            checker.check(icon, &format!("{here}: icon"), &PATH_MISSING_IMAGE);
        }
        if let Some(file) = service.license.as_ref().and_then(|l| l.text_file.as_ref()) {
            checker.check(file, &format!("{here}: license file"), &PATH_MISSING);
        }
        for script in service.provision.scripts() {
            checker.check_script(&script.name, &here);
        }
        if let Some(url_mapping) = &service.provision.url_mapping {
            checker.check_mapping(&url_mapping.root, &here);
        }
    }
    checker.out
}

struct PathChecker<'a> {
    exists: &'a dyn Fn(&str) -> bool,
    out: Vec<Finding>,
}

impl PathChecker<'_> {
    fn push(&mut self, rule: &Rule, message: String) {
        self.out.push(Finding::new(rule, META_FILE, message));
    }

    /// Checks one archive-root relative path; returns the normalised path when inside.
    fn inside(&mut self, path: &str, what: &str) -> Option<String> {
        match normalize_archive_path(path) {
            Ok(normal) => Some(normal),
            Err(reason) => {
                self.push(&PATH_ESCAPES_PACKAGE, format!("{what} `{path}` {reason}"));
                None
            }
        }
    }

    fn check(&mut self, path: &str, what: &str, missing: &Rule) {
        if let Some(normal) = self.inside(path, what) {
            if normal.is_empty() || !(self.exists)(&normal) {
                self.push(missing, format!("{what} `{path}` is not in the package"));
            }
        }
    }

    fn check_script(&mut self, name: &str, here: &str) {
        let what = format!("{here}: script");
        let full = format!("scripts/{name}");
        let Some(normal) = self.inside(&full, &what) else {
            return;
        };
        if !normal.starts_with("scripts/") {
            self.push(
                &PATH_ESCAPES_PACKAGE,
                format!("{what} `{name}` leaves the package's `scripts/` folder"),
            );
        } else if !(self.exists)(&normal) {
            self.push(
                &PATH_MISSING,
                format!("{what} `{full}` is not in the package"),
            );
        }
    }

    fn check_mapping(&mut self, root: &Mapping, here: &str) {
        let what = format!("{here}: root mapping path");
        let Some(path) = &root.path else {
            return;
        };
        let Some(root_dir) = self.inside(path, &what) else {
            return;
        };
        if root_dir.is_empty() {
            self.push(
                &PATH_ESCAPES_PACKAGE,
                format!("{what} `{path}` would publish the whole package, scripts included"),
            );
            return;
        }
        if !(self.exists)(&root_dir) {
            self.push(
                &PATH_MISSING,
                format!("{what} `{path}` is not in the package"),
            );
        }
        self.check_children(root, &root_dir, "", here);
    }

    fn check_children(&mut self, parent: &Mapping, parent_dir: &str, parent_url: &str, here: &str) {
        for child in &parent.children {
            let url = child.url.trim_matches('/');
            let url_path = format!("{parent_url}/{url}");
            let relative = child.path.as_deref().unwrap_or(url);
            let joined = format!("{parent_dir}/{relative}");
            let what = format!("{here}: mapping `{url_path}` path");
            let Some(dir) = self.inside(&joined, &what) else {
                continue;
            };
            if child.path.is_some() && !child.is_virtual && !(self.exists)(&dir) {
                let finding = Finding::new(
                    &PATH_MISSING,
                    META_FILE,
                    format!("{what} `{relative}` is not in the package"),
                )
                .with_severity(Severity::Warning);
                self.out.push(finding);
            }
            self.check_children(child, &dir, &url_path, here);
        }
    }
}

/// Why `id` cannot be part of an exported environment variable name (`SETTINGS_<id>`,
/// `DB_<id>_NAME`, `WEB_<url>_DIR`), or `None` when it can.
///
/// Refused: an empty id, `=` (the environment splits `NAME=value` at the first `=`, so the script
/// would see another variable) and NUL (it ends the string). Other characters outside
/// `[A-Za-z0-9_]` are exported verbatim and only warned about (REFERENCE §11 Q21,
/// [`META_ID_CHARACTERS`]).
pub fn variable_name_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("is empty")
    } else if id.contains('=') {
        Some("contains `=`")
    } else if id.contains('\0') {
        Some("contains a NUL character")
    } else {
        None
    }
}

/// Why a mapping `path` (a package folder) or a child mapping `url` is not a plain relative
/// path, or `None` when it is.
///
/// Refused: NUL, backslashes, a leading `/` or drive letter (absolute), and empty, `.` or `..`
/// segments: such paths either leave their folder or name the same folder in a second way that
/// deployment would not recognise. One trailing `/` (`htdocs/`) is accepted: it still names one
/// folder unambiguously.
pub fn relative_path_problem(path: &str) -> Option<&'static str> {
    if path.contains('\0') {
        return Some("contains a NUL character");
    }
    if path.contains('\\') {
        return Some("contains a backslash");
    }
    if path.starts_with('/') {
        return Some("is absolute");
    }
    let bytes = path.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Some("starts with a drive letter");
    }
    let body = path.strip_suffix('/').unwrap_or(path);
    for segment in body.split('/') {
        match segment {
            "" if body.is_empty() => return Some("is empty"),
            "" => return Some("has an empty segment"),
            "." => return Some("has a `.` segment"),
            ".." => return Some("has a `..` segment"),
            _ => {}
        }
    }
    None
}

/// Normalises an archive-root relative path, refusing absolute paths and paths leaving the root.
///
/// Returns the `/`-joined path without `.` or empty segments (empty for the archive root).
pub fn normalize_archive_path(path: &str) -> Result<String, &'static str> {
    if path.contains('\0') {
        return Err("contains a NUL character");
    }
    if path.contains('\\') {
        return Err("contains a backslash");
    }
    if path.starts_with('/') {
        return Err("is absolute");
    }
    let bytes = path.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err("starts with a drive letter");
    }
    let mut parts: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err("leaves the package");
                }
            }
            other => parts.push(other),
        }
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_unique_kebab_case_and_all_listed() {
        let mut seen = BTreeSet::new();
        for r in RULES {
            assert!(seen.insert(r.id), "duplicate rule id {}", r.id);
            assert!(
                r.id.split('-').all(|w| !w.is_empty()
                    && w.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())),
                "{} is not kebab-case",
                r.id
            );
            assert!(!r.summary.is_empty());
        }
        // Every `pub const X: Rule` in this file is in RULES.
        let source = include_str!("lint.rs");
        let declared = source.matches([": Rule", " ="].concat().as_str()).count();
        assert_eq!(
            declared,
            RULES.len(),
            "a rule constant is missing from RULES"
        );
        assert_eq!(rule("meta-dtd"), Some(&META_DTD));
        assert_eq!(rule("no-such-rule"), None);
    }

    #[test]
    fn finding_serializes_with_contract_field_names() {
        let f = Finding::new(&META_CRLF, "APP-META.xml", "uses CRLF").at(3, 7);
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "rule": "meta-crlf",
                "severity": "warning",
                "message": "uses CRLF",
                "file": "APP-META.xml",
                "line": 3,
                "column": 7
            })
        );
        let back: Finding = serde_json::from_value(json).unwrap();
        assert_eq!(back, f);
        let e = Finding::new(&META_DTD, "f", "x");
        assert_eq!(serde_json::to_value(&e).unwrap()["severity"], "error");
        assert_eq!(
            serde_json::to_value(&e).unwrap()["line"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn archive_paths_normalise_or_are_refused() {
        assert_eq!(normalize_archive_path("htdocs/").unwrap(), "htdocs");
        assert_eq!(normalize_archive_path("./a//b/../c").unwrap(), "a/c");
        assert_eq!(normalize_archive_path(".").unwrap(), "");
        assert_eq!(normalize_archive_path("../etc"), Err("leaves the package"));
        assert_eq!(
            normalize_archive_path("a/../../b"),
            Err("leaves the package")
        );
        assert_eq!(normalize_archive_path("/etc/passwd"), Err("is absolute"));
        assert_eq!(
            normalize_archive_path("C:/x"),
            Err("starts with a drive letter")
        );
        assert_eq!(normalize_archive_path("a\\b"), Err("contains a backslash"));
    }

    /// Issue 7 (D16): ids that would break their environment variable, and mapping paths that
    /// are not plain relative folders, are named by these checks.
    #[test]
    fn issue_7_variable_names_and_relative_paths() {
        assert_eq!(variable_name_problem("admin_name"), None);
        assert_eq!(variable_name_problem("admin-name"), None, "only a warning");
        assert_eq!(variable_name_problem("MAIN"), None);
        assert_eq!(variable_name_problem(""), Some("is empty"));
        assert_eq!(variable_name_problem("a=b"), Some("contains `=`"));
        assert_eq!(
            variable_name_problem("a\0b"),
            Some("contains a NUL character")
        );
        for ok in [
            "htdocs",
            "htdocs/",
            "web/htdocs",
            "wp-content",
            "_config.php",
            "a..b",
        ] {
            assert_eq!(relative_path_problem(ok), None, "{ok}");
        }
        for (bad, why) in [
            ("htdocs/../scripts", "has a `..` segment"),
            ("..", "has a `..` segment"),
            ("./htdocs", "has a `.` segment"),
            ("htdocs/.", "has a `.` segment"),
            ("htdocs//www", "has an empty segment"),
            ("htdocs//", "has an empty segment"),
            ("", "is empty"),
            ("/", "is absolute"),
            ("/var/www", "is absolute"),
            ("C:/www", "starts with a drive letter"),
            ("htdocs\\www", "contains a backslash"),
            ("htdocs\0", "contains a NUL character"),
        ] {
            assert_eq!(relative_path_problem(bad), Some(why), "{bad:?}");
        }
    }

    #[test]
    fn host_port_detection() {
        assert!(has_port("77.77.150.135:1106"));
        assert!(has_port("[::1]:80"));
        assert!(!has_port("::1"));
        assert!(!has_port("mail.example.com"));
    }
}
