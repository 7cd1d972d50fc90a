//! The text form of `apsctl package show`: what an admin needs before installing a package.
//!
//! Main decision: the same facts a panel builds its forms from (`--json`), laid out for reading:
//! per service its license (the text when the package carries it, else its name), entry points,
//! requirements and the settings form (groups, ids, types with their constraints, defaults,
//! whether a value is required, installation-only, names and descriptions). Texts in several
//! languages are shown in English (or the first language given). Every value from the package
//! goes through [`shown::name`]; the license text, shown as a block, is escaped line by line
//! by the printer. A password's default is never printed.
//!
//! Known gaps: resources, URL mapping details, screenshots and the changelog are `--json` only.
use std::fmt::Write as _;

use aps_meta::model::{
    DbRequirement, EntryPoint, License, LicenseKind, LocalizedText, PhpRequirement, Requirement,
    Service, Setting, SettingNode, Uniq,
};
use aps_meta::value::{SettingType, TextConstraints};
use aps_ops::package::PackageDetails;
use aps_ops::shown;

/// The whole text of `package show`.
pub fn text(details: &PackageDetails) -> String {
    let p = &details.package;
    let (s, meta) = (&p.summary, &p.meta);
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{} {}-{} (APS {})",
        shown::name(&s.name),
        shown::name(&s.version),
        shown::name(&s.release),
        s.aps_version
    );
    let _ = writeln!(t, "reference: {}", s.package);
    let _ = writeln!(t, "identity:  {}", shown::name(&s.identity));
    if let Some(home) = &meta.homepage {
        let _ = writeln!(t, "homepage:  {}", shown::name(home));
    }
    if let Some(vendor) = meta.vendor.as_ref().and_then(|v| pick(&v.names)) {
        let _ = writeln!(t, "vendor:    {}", shown::name(&vendor));
    }
    if let Some(summary) = pick(&meta.presentation.summaries) {
        let _ = writeln!(t, "summary:   {}", shown::name(&summary));
    }
    if !p.warnings.is_empty() {
        let _ = writeln!(t, "lint:      {} warning(s) at import", p.warnings.len());
    }
    if !meta.global_settings.is_empty() {
        let _ = writeln!(t, "\nglobal settings (`apsctl package settings`):");
        settings(&mut t, &meta.global_settings, 1);
    }
    for service in meta.all_services() {
        let _ = writeln!(t);
        service_text(&mut t, service, details.license_texts.get(&service.id));
    }
    t
}

fn service_text(t: &mut String, service: &Service, license_text: Option<&String>) {
    let _ = write!(t, "service `{}`", shown::name(&service.id));
    if let Some(name) = pick(&service.presentation.names) {
        let _ = write!(t, ": {}", shown::name(&name));
    }
    let _ = writeln!(t);
    if let Some(summary) = pick(&service.presentation.summaries) {
        let _ = writeln!(t, "  {}", shown::name(&summary));
    }
    match &service.license {
        Some(license) => license_block(t, license, license_text),
        None => {
            let _ = writeln!(t, "  license: none declared");
        }
    }
    if !service.presentation.entry_points.is_empty() {
        let _ = writeln!(t, "  entry points:");
        for e in &service.presentation.entry_points {
            entry_point(t, e);
        }
    }
    let reqs = &service.requirements;
    if reqs.items.is_empty() && reqs.choices.is_empty() {
        let _ = writeln!(t, "  requirements: none");
    } else {
        let _ = writeln!(t, "  requirements:");
        for r in &reqs.items {
            let _ = writeln!(t, "    {}", requirement(r));
        }
        for choice in &reqs.choices {
            let _ = writeln!(t, "    one of:");
            for alt in &choice.alternatives {
                let items: Vec<String> = alt.items.iter().map(requirement).collect();
                let _ = writeln!(
                    t,
                    "      `{}`: {}",
                    shown::name(&alt.id),
                    if items.is_empty() {
                        "nothing more".to_owned()
                    } else {
                        items.join("; ")
                    }
                );
            }
        }
    }
    if service.settings.is_empty() {
        let _ = writeln!(t, "  settings: none");
    } else {
        let _ = writeln!(
            t,
            "  settings (install with --set ID=VALUE or --settings-file):"
        );
        settings(t, &service.settings, 2);
    }
}

fn license_block(t: &mut String, license: &License, text: Option<&String>) {
    let name = license.text_name.as_deref().unwrap_or("unnamed");
    let mut notes = Vec::new();
    match license.kind {
        LicenseKind::Free => notes.push("free"),
        LicenseKind::Commercial => notes.push("commercial"),
        LicenseKind::None => {}
    }
    if license.must_accept {
        notes.push("must be accepted: install with --accept-license");
    }
    let _ = write!(t, "  license: {}", shown::name(name));
    if !notes.is_empty() {
        let _ = write!(t, " ({})", notes.join("; "));
    }
    let _ = writeln!(t);
    if let Some(url) = &license.text_url {
        let _ = writeln!(t, "    url: {}", shown::name(url));
    }
    if let Some(text) = text {
        // The printer escapes terminal controls in every line; the block stays indented.
        let _ = writeln!(t, "    ----");
        for line in text.trim_end().lines() {
            let line = line.trim_end();
            let _ = writeln!(t, "    |{}{line}", if line.is_empty() { "" } else { " " });
        }
        let _ = writeln!(t, "    ----");
    }
}

fn entry_point(t: &mut String, e: &EntryPoint) {
    let _ = write!(t, "    {}", shown::name(&e.dst));
    if let Some(method) = &e.method {
        let _ = write!(t, " [{}]", shown::name(method));
    }
    if let Some(class) = &e.class {
        let _ = write!(t, " ({})", shown::name(class));
    }
    if let Some(label) = pick(&e.labels) {
        let _ = write!(t, ": {}", shown::name(&label));
    }
    let _ = writeln!(t);
}

fn requirement(r: &Requirement) -> String {
    match r {
        Requirement::Php(php) => format!("php: {}", php_requirement(php)),
        Requirement::Db(db) => db_requirement(db),
        Requirement::Apache(a) => match a {
            aps_meta::model::ApacheRequirement::RequiredModule(m) => {
                format!("apache: module `{}`", shown::name(m))
            }
            aps_meta::model::ApacheRequirement::Htaccess => "apache: .htaccess files".into(),
        },
        Requirement::Other(e) => format!(
            "`{}` (namespace `{}`; not checked by apsctl)",
            shown::name(&e.name),
            shown::name(&e.namespace)
        ),
    }
}

fn php_requirement(r: &PhpRequirement) -> String {
    match r {
        PhpRequirement::Version {
            min,
            max_not_including,
        } => {
            let mut parts = Vec::new();
            if let Some(min) = min {
                parts.push(format!(">= {}", shown::name(min)));
            }
            if let Some(max) = max_not_including {
                parts.push(format!("< {}", shown::name(max)));
            }
            if parts.is_empty() {
                "any version".into()
            } else {
                format!("version {}", parts.join(", "))
            }
        }
        PhpRequirement::Extension(x) => format!("extension `{}`", shown::name(x)),
        PhpRequirement::Function(f) => format!("function `{}`", shown::name(f)),
        PhpRequirement::Flag { directive, value } => {
            format!(
                "{} = {}",
                directive.ini_name(),
                if *value { "on" } else { "off" }
            )
        }
        PhpRequirement::Size { directive, bytes } => {
            format!("{} >= {bytes} bytes", directive.ini_name())
        }
        PhpRequirement::MaxExecutionTime(0) => "max_execution_time unlimited".into(),
        PhpRequirement::MaxExecutionTime(s) => format!("max_execution_time >= {s} s"),
    }
}

fn db_requirement(db: &DbRequirement) -> String {
    let mut t = format!(
        "database `{}`: {}",
        shown::name(&db.id),
        shown::name(&db.server_type)
    );
    if let Some(min) = &db.server_min_version {
        let _ = write!(t, " >= {}", shown::name(min));
    }
    if db.can_use_tables_prefix {
        t.push_str(", table prefix allowed (--db-prefix)");
    }
    t
}

/// The settings form: groups as headings, one line per setting and one for its description.
fn settings(t: &mut String, nodes: &[SettingNode], depth: usize) {
    let indent = "  ".repeat(depth);
    for node in nodes {
        match node {
            SettingNode::Group(g) => {
                let _ = write!(t, "{indent}group");
                if let Some(name) = pick(&g.names) {
                    let _ = write!(t, " \"{}\"", shown::name(&name));
                }
                if let Some(class) = &g.class {
                    let _ = write!(t, " ({})", shown::name(class));
                }
                let _ = writeln!(t, ":");
                settings(t, &g.items, depth + 1);
            }
            SettingNode::Setting(s) => setting(t, s, &indent),
        }
    }
}

fn setting(t: &mut String, s: &Setting, indent: &str) {
    let mut facts = vec![type_text(&s.kind)];
    let default = s.default_value.as_deref().filter(|d| !d.is_empty());
    match default {
        Some(_) if s.kind.is_secret() => facts.push("has a default".into()),
        Some(d) => facts.push(format!("default `{}`", shown::name(d))),
        None => {}
    }
    if is_required(s) {
        facts.push("required".into());
    } else if s.optional && default.is_none() {
        facts.push("optional".into());
    }
    if s.installation_only {
        facts.push("installation-only".into());
    }
    if s.protected {
        facts.push("protected".into());
    }
    if s.visibility_hidden {
        facts.push("hidden".into());
    }
    if let Some(source) = &s.value_of_setting {
        facts.push(format!("copies `{}`", shown::name(source)));
    }
    match s.uniq {
        Some(Uniq::Owner) => facts.push("unique per owner".into()),
        Some(Uniq::Global) => facts.push("unique".into()),
        None => {}
    }
    let _ = write!(t, "{indent}{}: {}", shown::name(&s.id), facts.join(", "));
    if let Some(name) = pick(&s.names) {
        let _ = write!(t, " — {}", shown::name(&name));
    }
    let _ = writeln!(t);
    if let Some(description) = pick(&s.descriptions) {
        let _ = writeln!(t, "{indent}    {}", shown::name(&description));
    }
}

/// Whether an install must give a value: no default, not optional, not copied or fixed.
fn is_required(s: &Setting) -> bool {
    s.default_value.as_deref().is_none_or(str::is_empty)
        && !s.optional
        && s.value_of_setting.is_none()
        && !matches!(s.kind, SettingType::StaticText)
}

fn type_text(kind: &SettingType) -> String {
    let mut t = kind.name().to_owned();
    match kind {
        SettingType::String(c) | SettingType::Password(c) => text_constraints(&mut t, c),
        SettingType::Integer { min, max } => bounds(&mut t, *min, *max),
        SettingType::Float { min, max } => bounds(&mut t, *min, *max),
        SettingType::Enum { choices } => {
            let ids: Vec<String> = choices
                .iter()
                .map(|c| match pick(&c.names) {
                    Some(name) if name != c.id => {
                        format!("{} ({})", shown::name(&c.id), shown::name(&name))
                    }
                    _ => shown::name(&c.id).to_string(),
                })
                .collect();
            let _ = write!(t, " of {}", ids.join(" | "));
        }
        SettingType::List { element_type } => {
            let _ = write!(t, " of {} (comma-separated)", type_text(element_type));
        }
        _ => {}
    }
    t
}

fn text_constraints(t: &mut String, c: &TextConstraints) {
    match (c.min_length, c.max_length) {
        (Some(min), Some(max)) => {
            let _ = write!(t, " ({min}–{max} characters)");
        }
        (Some(min), None) => {
            let _ = write!(t, " (at least {min} characters)");
        }
        (None, Some(max)) => {
            let _ = write!(t, " (at most {max} characters)");
        }
        (None, None) => {}
    }
    if let Some(re) = &c.regex {
        let _ = write!(t, " matching `{}`", shown::name(re.as_str()));
    }
}

fn bounds<T: std::fmt::Display>(t: &mut String, min: Option<T>, max: Option<T>) {
    match (min, max) {
        (Some(min), Some(max)) => {
            let _ = write!(t, " ({min}..{max})");
        }
        (Some(min), None) => {
            let _ = write!(t, " (>= {min})");
        }
        (None, Some(max)) => {
            let _ = write!(t, " (<= {max})");
        }
        (None, None) => {}
    }
}

/// The English text (or the one without a language, else the first), whitespace collapsed.
fn pick(texts: &[LocalizedText]) -> Option<String> {
    let english = |t: &&LocalizedText| {
        t.lang
            .as_deref()
            .is_some_and(|l| l.eq_ignore_ascii_case("en") || l.starts_with("en-"))
    };
    let chosen = texts
        .iter()
        .find(english)
        .or_else(|| texts.iter().find(|t| t.lang.is_none()))
        .or_else(|| texts.first())?;
    let text = chosen.text.split_whitespace().collect::<Vec<_>>().join(" ");
    (!text.is_empty()).then_some(text)
}
