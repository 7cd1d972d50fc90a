//! Parses the structured output (`configure-output` XML) that scripts declaring
//! `structured-output` print on stdout (REFERENCE §4.4).
//!
//! Main decision: the caller parses only when the script declared `structured-output` (§9: output
//! of other scripts is never interpreted), and then stdout must be exactly one well-formed
//! document; anything else is an error. Errors are kept with their optional `setting-id` so they
//! can be reported per form field.
//!
//! Leniency: the root element is accepted in the configure-output namespace or in no namespace
//! (a script that forgot `xmlns`); children are read in the root's namespace. A byte-order mark
//! and surrounding whitespace are ignored. Unknown elements are ignored.
//!
//! Known gaps: localised `name` variants of a choice (`xml:lang`) are not told apart; the first
//! `name` is kept.
use roxmltree::{Document, Node};

/// Namespace of the configure-output document.
pub const CONFIGURE_OUTPUT_NS: &str = "http://apstandard.com/ns/1/configure-output";

/// A parsed `<output>` document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigureOutput {
    /// Reported errors, in document order.
    pub errors: Vec<ConfigureError>,
    /// Returned setting values or enum choices, in document order.
    pub settings: Vec<ReturnedSetting>,
}

impl ConfigureOutput {
    /// Tells whether the script reported any error (a failure even with exit status 0, §11 Q19).
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// Errors not tied to a setting.
    pub fn general_errors(&self) -> impl Iterator<Item = &ConfigureError> {
        self.errors.iter().filter(|e| e.setting_id.is_none())
    }

    /// Errors reported against setting `id`.
    pub fn errors_for<'s>(&'s self, id: &'s str) -> impl Iterator<Item = &'s ConfigureError> {
        self.errors
            .iter()
            .filter(move |e| e.setting_id.as_deref() == Some(id))
    }
}

/// One `<error>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigureError {
    /// The `id` attribute, when present.
    pub id: Option<String>,
    /// The setting the error is about (`setting-id`); `None` for a general error.
    pub setting_id: Option<String>,
    /// Text for the user (`<message>`), trimmed.
    pub message: Option<String>,
    /// Text for the log (`<system>`), trimmed.
    pub system: Option<String>,
}

/// One `<setting>` returned by the script.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReturnedSetting {
    /// The setting id.
    pub id: String,
    /// `<value>` texts (untrimmed: values are data).
    pub values: Vec<String>,
    /// `<choice>` entries, for dynamic enums.
    pub choices: Vec<ReturnedChoice>,
}

/// One `<choice>` of a returned enum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReturnedChoice {
    /// The choice id (the value passed back to scripts).
    pub id: String,
    /// The display name, trimmed.
    pub name: Option<String>,
}

/// Why stdout is not a usable configure-output document.
#[derive(Debug, thiserror::Error)]
pub enum ConfigureOutputError {
    /// The text is not well-formed XML.
    #[error("structured output of the script is not well-formed XML")]
    NotXml(#[source] roxmltree::Error),
    /// The root element is not `<output>` in the configure-output namespace.
    #[error(
        "structured output of the script has root element `{found}`, expected `output` in \
         namespace `{CONFIGURE_OUTPUT_NS}`"
    )]
    WrongRoot {
        /// The root element found, as `{namespace}name` or `name`.
        found: String,
    },
    /// A required attribute is missing.
    #[error("structured output of the script has an `{element}` element without `{attribute}`")]
    MissingAttribute {
        /// The element.
        element: &'static str,
        /// The attribute.
        attribute: &'static str,
    },
}

/// Parses a script's stdout as a configure-output document.
pub fn parse_configure_output(stdout: &str) -> Result<ConfigureOutput, ConfigureOutputError> {
    let text = stdout.strip_prefix('\u{feff}').unwrap_or(stdout).trim();
    let doc = Document::parse(text).map_err(ConfigureOutputError::NotXml)?;
    let root = doc.root_element();
    let ns = root.tag_name().namespace();
    if root.tag_name().name() != "output" || !matches!(ns, None | Some(CONFIGURE_OUTPUT_NS)) {
        let found = match ns {
            Some(ns) => format!("{{{ns}}}{}", root.tag_name().name()),
            None => root.tag_name().name().to_owned(),
        };
        return Err(ConfigureOutputError::WrongRoot { found });
    }
    let children = |node, name| children_named(node, ns, name);

    let mut out = ConfigureOutput::default();
    for errors in children(root, "errors") {
        for error in children(errors, "error") {
            let trimmed = |name| {
                children(error, name)
                    .first()
                    .map(|n| element_text(*n).trim().to_owned())
            };
            out.errors.push(ConfigureError {
                id: error.attribute("id").map(str::to_owned),
                setting_id: error.attribute("setting-id").map(str::to_owned),
                message: trimmed("message"),
                system: trimmed("system"),
            });
        }
    }
    for settings in children(root, "settings") {
        for setting in children(settings, "setting") {
            let id = setting
                .attribute("id")
                .ok_or(ConfigureOutputError::MissingAttribute {
                    element: "setting",
                    attribute: "id",
                })?;
            let values = children(setting, "value")
                .into_iter()
                .map(element_text)
                .collect();
            let mut choices = Vec::new();
            for choice in children(setting, "choice") {
                let id = choice
                    .attribute("id")
                    .ok_or(ConfigureOutputError::MissingAttribute {
                        element: "choice",
                        attribute: "id",
                    })?;
                let name = children(choice, "name")
                    .first()
                    .map(|n| element_text(*n).trim().to_owned());
                choices.push(ReturnedChoice {
                    id: id.to_owned(),
                    name,
                });
            }
            out.settings.push(ReturnedSetting {
                id: id.to_owned(),
                values,
                choices,
            });
        }
    }
    Ok(out)
}

/// Child elements of `node` called `name` in namespace `ns`.
fn children_named<'a, 'input>(
    node: Node<'a, 'input>,
    ns: Option<&str>,
    name: &str,
) -> Vec<Node<'a, 'input>> {
    node.children()
        .filter(|c| c.is_element() && c.tag_name().name() == name && c.tag_name().namespace() == ns)
        .collect()
}

/// All text inside `node` (text and CDATA of descendants), concatenated.
fn element_text(node: Node<'_, '_>) -> String {
    node.descendants()
        .filter(Node::is_text)
        .filter_map(|n| n.text())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<output xmlns="http://apstandard.com/ns/1/configure-output">
  <errors>
    <error id="0" setting-id="admin_email">
      <message>Enter a valid e-mail address.</message>
      <system>SMTP check failed: 550</system>
    </error>
    <error id="1"><message> Database is not reachable. </message></error>
  </errors>
  <settings>
    <setting id="api_key"><value>generated value </value></setting>
    <setting id="plan">
      <choice id="basic"><name>Basic</name></choice>
      <choice id="pro"><name><![CDATA[Pro & more]]></name></choice>
    </setting>
  </settings>
</output>
"#;

    #[test]
    fn parses_errors_and_settings() {
        let out = parse_configure_output(SAMPLE).expect("parse");
        assert!(out.has_errors());
        assert_eq!(
            out.errors[0],
            ConfigureError {
                id: Some("0".into()),
                setting_id: Some("admin_email".into()),
                message: Some("Enter a valid e-mail address.".into()),
                system: Some("SMTP check failed: 550".into()),
            }
        );
        let general: Vec<_> = out.general_errors().collect();
        assert_eq!(general.len(), 1);
        assert_eq!(
            general[0].message.as_deref(),
            Some("Database is not reachable.")
        );
        assert_eq!(out.errors_for("admin_email").count(), 1);
        assert_eq!(out.errors_for("plan").count(), 0);
        assert_eq!(out.settings[0].id, "api_key");
        assert_eq!(out.settings[0].values, ["generated value "]);
        assert_eq!(
            out.settings[1].choices,
            [
                ReturnedChoice {
                    id: "basic".into(),
                    name: Some("Basic".into())
                },
                ReturnedChoice {
                    id: "pro".into(),
                    name: Some("Pro & more".into())
                },
            ]
        );
    }

    #[test]
    fn empty_output_element_means_success() {
        let out = parse_configure_output(
            "\u{feff}  <output xmlns='http://apstandard.com/ns/1/configure-output'/>\n",
        )
        .expect("parse");
        assert_eq!(out, ConfigureOutput::default());
        assert!(!out.has_errors());
    }

    #[test]
    fn root_without_namespace_is_accepted() {
        let out = parse_configure_output(
            "<output><errors><error setting-id='x'><message>bad</message></error></errors></output>",
        )
        .expect("parse");
        assert_eq!(out.errors_for("x").count(), 1);
    }

    #[test]
    fn debug_text_before_the_document_is_refused() {
        let err = parse_configure_output("Connecting...\n<output/>").expect_err("not xml");
        assert!(matches!(err, ConfigureOutputError::NotXml(_)), "{err}");
        let err = parse_configure_output("").expect_err("empty");
        assert!(matches!(err, ConfigureOutputError::NotXml(_)), "{err}");
    }

    #[test]
    fn wrong_root_is_named() {
        let err = parse_configure_output(
            "<resources xmlns='http://apstandard.com/ns/1/resource-output'/>",
        )
        .expect_err("wrong root");
        assert!(
            err.to_string().contains("resource-output}resources"),
            "{err}"
        );
        let err = parse_configure_output("<output xmlns='urn:other'/>").expect_err("wrong ns");
        assert!(matches!(err, ConfigureOutputError::WrongRoot { .. }));
    }

    #[test]
    fn elements_of_other_namespaces_are_ignored() {
        let out = parse_configure_output(
            "<output xmlns='http://apstandard.com/ns/1/configure-output' xmlns:x='urn:x'>\
             <x:errors><x:error/></x:errors></output>",
        )
        .expect("parse");
        assert!(!out.has_errors());
    }

    #[test]
    fn setting_without_id_is_refused() {
        let err = parse_configure_output(
            "<output><settings><setting><value>1</value></setting></settings></output>",
        )
        .expect_err("missing id");
        assert!(matches!(
            err,
            ConfigureOutputError::MissingAttribute {
                element: "setting",
                attribute: "id"
            }
        ));
    }
}
