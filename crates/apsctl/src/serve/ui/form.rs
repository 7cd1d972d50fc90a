//! The settings forms generated from a package's metadata: the install form (every setting a
//! user gives) and the reconfigure form (what may change after the install).
//!
//! Main decisions:
//! - A form is a list of sections (a `group` becomes a titled `fieldset`), each field carrying
//!   what its HTML needs: a label in the reader's language, the input type and the type's
//!   constraints as HTML attributes (`minlength`, `maxlength`, `min`, `max`, `step`, `required`),
//!   the package's own error message and the refusal next to it. The browser's checks are a
//!   convenience; the operation validates again (`aps_ops::settings`) and its refusals come back
//!   to the fields by setting id.
//! - A setting's `regex` is shown as a hint, not put in `pattern`: APS patterns match anywhere
//!   unless anchored, HTML patterns must match the whole value.
//! - `hidden` settings (type or visibility) and `value-of-setting` ones (copied from another
//!   setting) are not shown and keep their defaults or copies; `static-text`
//!   is shown as text. In the reconfigure form, installation-only settings are absent and
//!   protected ones are read-only. A password is never written into a page: its field starts
//!   empty, and an empty password in the reconfigure form means "unchanged".
//! - A checkbox sends `true`; a hidden `false` before it gives the unchecked value (the last value
//!   of a name wins when the form is read).
use std::collections::BTreeMap;

use aps_meta::model::{LocalizedText, Setting, SettingNode};
use aps_meta::value::SettingType;
use serde::Serialize;

/// The prefix of a setting's form field name (`s.<id>`).
const FIELD_PREFIX: &str = "s.";

/// Which form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A new instance.
    Install,
    /// An instance's settings changed.
    Configure,
    /// A package's global settings (every one may change; an empty secret keeps its value).
    Global,
}

/// One section of a form.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Section {
    /// The group's name (`None`: the settings outside groups).
    pub title: Option<String>,
    /// Its fields.
    pub fields: Vec<Field>,
}

/// One field.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Field {
    /// The setting id.
    pub id: String,
    /// The form field name.
    pub name: String,
    /// Its label.
    pub label: String,
    /// Its help text.
    pub description: Option<String>,
    /// `text`, `password`, `number`, `email`, `checkbox`, `select` or `static`.
    pub input: &'static str,
    /// The value shown.
    pub value: String,
    /// Checked (a checkbox).
    pub checked: bool,
    /// A value is needed.
    pub required: bool,
    /// Read-only (a protected setting after the install).
    pub readonly: bool,
    /// HTML constraint attributes.
    pub minlength: Option<u32>,
    /// HTML constraint attributes.
    pub maxlength: Option<u32>,
    /// HTML constraint attributes.
    pub min: Option<String>,
    /// HTML constraint attributes.
    pub max: Option<String>,
    /// HTML constraint attributes.
    pub step: Option<&'static str>,
    /// The choices of a `select`: (id, label, selected).
    pub choices: Vec<(String, String, bool)>,
    /// What the value must be, in words (type and constraints).
    pub hint: String,
    /// The refusal of the last submission, next to the field.
    pub error: Option<String>,
    /// The ids of the texts that describe the input (`aria-describedby`): its hint (`h-ID`),
    /// description (`d-ID`) and refusal (`e-ID`), those it has.
    pub describedby: String,
}

/// The text of `texts` for `lang` (its primary tag), else the untagged or English one, else the
/// first.
pub(crate) fn localized(texts: &[LocalizedText], lang: &str) -> Option<String> {
    let primary = |tag: &str| {
        tag.split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let wanted = primary(lang);
    texts
        .iter()
        .find(|t| t.lang.as_deref().is_some_and(|l| primary(l) == wanted))
        .or_else(|| texts.iter().find(|t| t.lang.is_none()))
        .or_else(|| {
            texts
                .iter()
                .find(|t| t.lang.as_deref().is_some_and(|l| primary(l) == "en"))
        })
        .or_else(|| texts.first())
        .map(|t| t.text.clone())
}

/// The form of `nodes` for `purpose` in language `lang`, showing `values` (the current or
/// submitted ones; secrets are never shown) and `errors` by setting id.
pub(crate) fn build(
    nodes: &[SettingNode],
    purpose: Purpose,
    lang: &str,
    values: &BTreeMap<String, String>,
    errors: &BTreeMap<String, String>,
) -> Vec<Section> {
    let mut loose = Section {
        title: None,
        fields: Vec::new(),
    };
    let mut sections = Vec::new();
    for node in nodes {
        match node {
            SettingNode::Setting(s) => loose.fields.extend(field(s, purpose, lang, values, errors)),
            SettingNode::Group(g) => {
                let mut fields = Vec::new();
                collect(&g.items, purpose, lang, values, errors, &mut fields);
                if !fields.is_empty() {
                    sections.push(Section {
                        title: localized(&g.names, lang),
                        fields,
                    });
                }
            }
        }
    }
    if !loose.fields.is_empty() {
        sections.insert(0, loose);
    }
    sections
}

fn collect(
    nodes: &[SettingNode],
    purpose: Purpose,
    lang: &str,
    values: &BTreeMap<String, String>,
    errors: &BTreeMap<String, String>,
    out: &mut Vec<Field>,
) {
    for node in nodes {
        match node {
            SettingNode::Setting(s) => out.extend(field(s, purpose, lang, values, errors)),
            SettingNode::Group(g) => collect(&g.items, purpose, lang, values, errors, out),
        }
    }
}

fn field(
    setting: &Setting,
    purpose: Purpose,
    lang: &str,
    values: &BTreeMap<String, String>,
    errors: &BTreeMap<String, String>,
) -> Option<Field> {
    // A `value-of-setting` value is copied from another setting: nobody types it.
    if setting.visibility_hidden
        || matches!(setting.kind, SettingType::Hidden)
        || setting.value_of_setting.is_some()
    {
        return None;
    }
    if purpose == Purpose::Configure && setting.installation_only {
        return None;
    }
    let value = if setting.kind.is_secret() {
        String::new()
    } else {
        values
            .get(&setting.id)
            .or(setting.default_value.as_ref())
            .cloned()
            .unwrap_or_default()
    };
    let error = errors
        .get(&setting.id)
        .map(|e| match localized(&setting.error_messages, lang) {
            Some(own) => format!("{own} ({e})"),
            None => e.clone(),
        });
    let mut out = Field {
        id: setting.id.clone(),
        name: format!("{FIELD_PREFIX}{}", setting.id),
        label: localized(&setting.names, lang).unwrap_or_else(|| setting.id.clone()),
        description: localized(&setting.descriptions, lang),
        required: !(setting.optional || purpose != Purpose::Install && setting.kind.is_secret()),
        readonly: purpose == Purpose::Configure && setting.protected,
        error,
        ..Field::default()
    };
    typed(&mut out, &setting.kind, &value, lang)?;
    out.value = value;
    out.describedby = [
        (!out.hint.is_empty()).then(|| format!("h-{}", out.id)),
        out.description.as_ref().map(|_| format!("d-{}", out.id)),
        out.error.as_ref().map(|_| format!("e-{}", out.id)),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    Some(out)
}

/// Gives `out` the input and constraints of `kind`; `None` for a type never shown.
fn typed(out: &mut Field, kind: &SettingType, value: &str, lang: &str) -> Option<()> {
    match kind {
        SettingType::Boolean => {
            out.input = "checkbox";
            out.checked = value == "true" || value == "1";
            out.required = false;
            out.hint = "yes or no".into();
        }
        SettingType::String(c) | SettingType::Password(c) => {
            out.input = if kind.is_secret() { "password" } else { "text" };
            out.minlength = c.min_length;
            out.maxlength = c.max_length;
            let mut hint = Vec::new();
            match (c.min_length, c.max_length) {
                (Some(a), Some(b)) => hint.push(format!("{a} to {b} characters")),
                (Some(a), None) => hint.push(format!("at least {a} characters")),
                (None, Some(b)) => hint.push(format!("at most {b} characters")),
                (None, None) => {}
            }
            if let Some(re) = &c.regex {
                hint.push(format!("matching `{}`", re.as_str()));
            }
            out.hint = hint.join(", ");
        }
        SettingType::Integer { min, max } => {
            out.input = "number";
            out.step = Some("1");
            out.min = min.map(|v| v.to_string());
            out.max = max.map(|v| v.to_string());
            out.hint = range_hint("a whole number", out.min.as_deref(), out.max.as_deref());
        }
        SettingType::Float { min, max } => {
            out.input = "number";
            out.step = Some("any");
            out.min = min.map(|v| v.to_string());
            out.max = max.map(|v| v.to_string());
            out.hint = range_hint("a number", out.min.as_deref(), out.max.as_deref());
        }
        SettingType::Email => {
            out.input = "email";
            out.hint = "an e-mail address".into();
        }
        SettingType::DomainName => {
            out.input = "text";
            out.hint = "a domain name".into();
        }
        SettingType::HostName => {
            out.input = "text";
            out.hint = "a host name or IP address".into();
        }
        SettingType::Enum { choices } => {
            out.input = "select";
            out.choices = choices
                .iter()
                .map(|c| {
                    (
                        c.id.clone(),
                        localized(&c.names, lang).unwrap_or_else(|| c.id.clone()),
                        c.id == value,
                    )
                })
                .collect();
        }
        SettingType::StaticText => {
            out.input = "static";
            out.required = false;
        }
        SettingType::List { element_type } => {
            out.input = if element_type.is_secret() {
                "password"
            } else {
                "text"
            };
            out.hint = format!("values of type {} separated by commas", element_type.name());
        }
        SettingType::Hidden => return None,
    }
    Some(())
}

fn range_hint(what: &str, min: Option<&str>, max: Option<&str>) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!("{what} from {a} to {b}"),
        (Some(a), None) => format!("{what} of at least {a}"),
        (None, Some(b)) => format!("{what} of at most {b}"),
        (None, None) => what.to_owned(),
    }
}

/// The settings a submitted form gives (the last value of each `s.<id>` field): an empty
/// required field or password is left out (the operation then keeps the current value or uses
/// the default), an empty optional field is the empty value, and fields the form did not offer
/// are left out.
pub(crate) fn submitted(
    pairs: &[(String, String)],
    sections: &[Section],
) -> BTreeMap<String, String> {
    let offered: BTreeMap<&str, &Field> = sections
        .iter()
        .flat_map(|s| &s.fields)
        .map(|f| (f.name.as_str(), f))
        .collect();
    let mut out = BTreeMap::new();
    for (name, value) in pairs {
        let Some(f) = offered.get(name.as_str()) else {
            continue;
        };
        if f.readonly || f.input == "static" {
            continue;
        }
        // An emptied optional field is an empty value; an empty required one or an empty
        // password is "no value given" (the current value or the default stays).
        if value.is_empty() && (f.required || f.input == "password") {
            out.remove(&f.id);
        } else {
            out.insert(f.id.clone(), value.clone());
        }
    }
    out
}

/// What a submitted form of `nodes` for `purpose` changes against `current` (the values it was
/// shown with): the [`submitted`] values that differ, so an unchanged protected or secret value is
/// never sent again.
pub(crate) fn changes(
    nodes: &[SettingNode],
    purpose: Purpose,
    current: &BTreeMap<String, String>,
    pairs: &[(String, String)],
) -> BTreeMap<String, String> {
    let offered = build(nodes, purpose, "en", current, &BTreeMap::new());
    submitted(pairs, &offered)
        .into_iter()
        .filter(|(k, v)| current.get(k) != Some(v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> aps_meta::model::Package {
        let xml = include_str!("../../../../../examples/hello/APP-META.xml");
        aps_meta::parse::parse_app_meta(xml.as_bytes(), "APP-META.xml")
            .unwrap()
            .package
    }

    #[test]
    fn the_install_form_has_every_shown_setting_with_its_constraints_and_groups() {
        let meta = hello();
        let service = meta.root_service().unwrap();
        let errors = BTreeMap::from([("admin_name".to_owned(), "bad".to_owned())]);
        let sections = build(
            &service.settings,
            Purpose::Install,
            "en",
            &BTreeMap::new(),
            &errors,
        );
        let ids: Vec<&str> = sections
            .iter()
            .flat_map(|s| &s.fields)
            .map(|f| f.id.as_str())
            .collect();
        assert_eq!(
            ids,
            [
                "title",
                "greeting",
                "show_time",
                "admin_name",
                "admin_password"
            ]
        );
        assert_eq!(sections[1].title.as_deref(), Some("Administrator"));
        let name = &sections[1].fields[0];
        assert_eq!((name.minlength, name.maxlength), (Some(1), Some(32)));
        assert_eq!(name.error.as_deref(), Some("bad"));
        assert_eq!(name.describedby, "h-admin_name e-admin_name");
        assert!(name.hint.contains("^[a-zA-Z0-9_]+$"), "{}", name.hint);
        let password = &sections[1].fields[1];
        assert_eq!(password.input, "password");
        assert!(password.required);
        let greeting = &sections[0].fields[1];
        assert_eq!(greeting.input, "select");
        assert!(greeting.choices[0].2, "the default is selected");
        // The reconfigure form has no installation-only setting.
        let configure = build(
            &service.settings,
            Purpose::Configure,
            "en",
            &BTreeMap::new(),
            &BTreeMap::new(),
        );
        assert!(
            configure
                .iter()
                .flat_map(|s| &s.fields)
                .all(|f| f.id != "admin_password")
        );
    }

    #[test]
    fn a_password_is_never_shown_and_the_last_checkbox_value_wins() {
        let meta = hello();
        let service = meta.root_service().unwrap();
        let values = BTreeMap::from([("admin_password".to_owned(), "s3cret-value".to_owned())]);
        let sections = build(
            &service.settings,
            Purpose::Install,
            "en",
            &values,
            &BTreeMap::new(),
        );
        assert!(
            sections
                .iter()
                .flat_map(|s| &s.fields)
                .all(|f| f.value != "s3cret-value")
        );
        let pairs = [
            ("s.show_time", "false"),
            ("s.show_time", "true"),
            ("s.title", ""),
            ("s.unknown", "x"),
            ("csrf", "t"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()));
        let got = submitted(&pairs, &sections);
        assert_eq!(
            got,
            BTreeMap::from([("show_time".to_owned(), "true".to_owned())])
        );
    }

    #[test]
    fn an_emptied_optional_field_is_an_empty_value() {
        let field = |id: &str, input: &'static str, required: bool| Field {
            id: id.to_owned(),
            name: format!("{FIELD_PREFIX}{id}"),
            input,
            required,
            ..Field::default()
        };
        let sections = [Section {
            title: None,
            fields: vec![
                field("motto", "text", false),
                field("title", "text", true),
                field("key", "password", false),
            ],
        }];
        let pairs = [("s.motto", ""), ("s.title", ""), ("s.key", "")]
            .map(|(a, b)| (a.to_owned(), b.to_owned()));
        assert_eq!(
            submitted(&pairs, &sections),
            BTreeMap::from([("motto".to_owned(), String::new())])
        );
    }

    #[test]
    fn labels_come_in_the_readers_language() {
        let texts = [
            LocalizedText {
                lang: None,
                text: "Title".into(),
            },
            LocalizedText {
                lang: Some("de-DE".into()),
                text: "Titel".into(),
            },
        ];
        assert_eq!(localized(&texts, "de").as_deref(), Some("Titel"));
        assert_eq!(localized(&texts, "fr-FR").as_deref(), Some("Title"));
        assert_eq!(localized(&[], "en"), None);
    }

    /// Every package of the corpus gets a form in which every field has a label and a known input.
    #[test]
    fn every_corpus_package_gets_a_labelled_form() {
        let corpus =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/aps1");
        let mut forms = 0;
        let mut fields = 0;
        for entry in walk(&corpus) {
            if entry.file_name().is_none_or(|n| n != "APP-META.xml") {
                continue;
            }
            let Ok(bytes) = fs_err::read(&entry) else {
                continue;
            };
            let Ok(parsed) = aps_meta::parse::parse_app_meta(&bytes, "APP-META.xml") else {
                continue;
            };
            let meta = parsed.package;
            for service in meta.all_services() {
                for purpose in [Purpose::Install, Purpose::Configure, Purpose::Global] {
                    let nodes = if purpose == Purpose::Global {
                        &meta.global_settings
                    } else {
                        &service.settings
                    };
                    for section in build(nodes, purpose, "en", &BTreeMap::new(), &BTreeMap::new()) {
                        for f in section.fields {
                            assert!(
                                !f.label.is_empty(),
                                "{}: {} has no label",
                                entry.display(),
                                f.id
                            );
                            assert!(!f.input.is_empty(), "{}: {}", entry.display(), f.id);
                            fields += 1;
                        }
                    }
                }
                forms += 1;
            }
        }
        assert!(
            forms >= 8 && fields >= 40,
            "{forms} forms, {fields} fields read from {}",
            corpus.display()
        );
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        let Ok(entries) = fs_err::read_dir(dir) else {
            return out;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }
}
