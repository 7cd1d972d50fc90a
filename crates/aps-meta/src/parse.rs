//! The APP-META.xml parser: bytes in, a typed [`Package`] plus lint findings out.
//!
//! Main decision: namespace-aware by URI and order-tolerant, lenient where real packages are
//! sloppy (REFERENCE §2.5) and strict where a wrong reading would be dangerous. DTDs and entity
//! declarations are refused before parsing and never expanded; APS 2 and unknown root namespaces
//! are refused; structural problems (REFERENCE §2.4 checks 3–6) are collected as [`ParseError`]s
//! with line and column, and [`parse_app_meta`] returns the first one in document order. A 1.0
//! flat document is normalised into one root service here (REFERENCE §3.4), so no other code
//! needs to know about the flat layout. Raw XML never leaves this module.
//!
//! Known gaps: only the first `license/text` is read; `when-chosen` provisioning elements are
//! kept as unknown requirement elements; singletons given twice (two `url-mapping`s) use the
//! first silently; 1.2-only elements in a 1.1 document are accepted.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use roxmltree::{Document, Node, ParsingOptions};

use crate::lint::{self, Finding, Rule};
use crate::model::{
    Alternative, ApacheRequirement, ApsFormat, CgiExtension, CgiHandler, CgiHandlerType,
    ChangelogVersion, Choice, DbRequirement, EntryPoint, EntryVariable, ForeignElement, Group,
    InfoLink, License, LicenseKind, LocalizedText, Mapping, MasterPackage, Package, Party, PhpFlag,
    PhpHandler, PhpPermissions, PhpRequirement, PhpSizeDirective, Presentation, Provision,
    ROOT_SERVICE_ID, Requirement, Requirements, ResourceDecl, Screenshot, ScriptDecl, Service,
    ServicePresentation, Setting, SettingNode, Uniq, UpdateRule, UpgradableFrom, UrlMapping,
};
use crate::ns;
use crate::value::{EnumChoice, SettingRegex, SettingType, TextConstraints};

/// Deepest element nesting accepted; deeper documents are refused (no legitimate file comes close).
const MAX_DEPTH: usize = 100;
/// Most XML nodes accepted.
const MAX_NODES: u32 = 1_000_000;
/// Errors collected before the parser stops recording more.
const MAX_ERRORS: usize = 200;

/// A successfully parsed APP-META.xml.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The typed model.
    pub package: Package,
    /// Every metadata-only finding, sorted by position (findings without one last): the
    /// parser's warnings plus [`lint::lint_package`]'s findings.
    /// An import must refuse the package if any of them is an error.
    pub findings: Vec<Finding>,
}

/// Why APP-META.xml could not be read, with the position of the problem when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}", location(.file, *.line, *.column), .message)]
pub struct ParseError {
    /// The file name given by the caller.
    pub file: String,
    /// 1-based line.
    pub line: Option<u32>,
    /// 1-based column, in characters.
    pub column: Option<u32>,
    /// Stable lint rule id (see [`lint::RULES`]).
    pub rule: &'static str,
    /// One sentence naming what is wrong.
    pub message: String,
}

fn location(file: &str, line: Option<u32>, column: Option<u32>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("`{file}` line {l}, column {c}: "),
        (Some(l), None) => format!("`{file}` line {l}: "),
        _ => format!("`{file}`: "),
    }
}

impl ParseError {
    /// The error as an error-severity lint finding.
    pub fn to_finding(&self) -> Finding {
        Finding {
            rule: self.rule.to_owned(),
            severity: lint::Severity::Error,
            message: self.message.clone(),
            file: self.file.clone(),
            line: self.line,
            column: self.column,
        }
    }
}

/// Parses APP-META.xml bytes into the typed model.
///
/// `file` names the file in errors and findings. Returns the first structural error in document
/// order; [`lint::lint_meta`] reports all of them.
pub fn parse_app_meta(bytes: &[u8], file: &str) -> Result<Parsed, ParseError> {
    let outcome = parse_outcome(bytes, file);
    if let Some(first) = outcome.errors.into_iter().next() {
        return Err(first);
    }
    match outcome.package {
        Some(package) => Ok(Parsed {
            package,
            findings: outcome.findings,
        }),
        None => Err(ParseError {
            file: file.to_owned(),
            line: None,
            column: None,
            rule: lint::META_XML.id,
            message: "no application element could be read".to_owned(),
        }),
    }
}

/// Everything the parser found: the package (possibly partial when there are errors), all
/// errors sorted by position, and all findings.
pub(crate) struct Outcome {
    pub(crate) package: Option<Package>,
    pub(crate) errors: Vec<ParseError>,
    pub(crate) findings: Vec<Finding>,
}

pub(crate) fn parse_outcome(bytes: &[u8], file: &str) -> Outcome {
    let text = match decode(bytes, file) {
        Ok(text) => text,
        Err(error) => {
            return Outcome {
                package: None,
                errors: vec![error],
                findings: Vec::new(),
            };
        }
    };
    let mut ctx = Ctx::new(file, text);
    if let Some(offset) = find_dtd(text) {
        ctx.error_at(
            offset,
            &lint::META_DTD,
            "DTDs and entity declarations are refused, never expanded",
        );
        return ctx.finish(None);
    }
    if let Some(offset) = too_deep(text) {
        // roxmltree's tokenizer recurses per element: refuse deep nesting before it runs.
        let message = format!("elements are nested more than {MAX_DEPTH} levels deep");
        ctx.error_at(offset, &lint::META_XML, message);
        return ctx.finish(None);
    }
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
    };
    let doc = match Document::parse_with_options(text, options) {
        Ok(doc) => doc,
        Err(e) => {
            ctx.xml_error(&e);
            return ctx.finish(None);
        }
    };
    ctx.document_warnings(&doc);
    let Some(root) = doc.root().first_element_child() else {
        return ctx.finish(None);
    };
    let Some(format) = ctx.check_root(root) else {
        return ctx.finish(None);
    };
    ctx.format = format;
    let package = parse_application(&mut ctx, root);
    let lint_findings = lint::lint_package(&package, file);
    ctx.findings.extend(lint_findings);
    ctx.finish(Some(package))
}

/// Checks emptiness and encoding and strips a UTF-8 byte order mark.
fn decode<'b>(bytes: &'b [u8], file: &str) -> Result<&'b str, ParseError> {
    let error = |rule: &Rule, pos: Option<(u32, u32)>, message: String| ParseError {
        file: file.to_owned(),
        line: pos.map(|p| p.0),
        column: pos.map(|p| p.1),
        rule: rule.id,
        message,
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(error(
            &lint::META_EMPTY,
            None,
            "the file is empty".to_owned(),
        ));
    }
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        let message = "the file is UTF-16 encoded; APP-META.xml must be UTF-8".to_owned();
        return Err(error(&lint::META_ENCODING, Some((1, 1)), message));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
        let pos = LineIndex::new(valid).position(valid, valid.len());
        let message = "the file is not valid UTF-8".to_owned();
        error(&lint::META_ENCODING, Some(pos), message)
    })
}

/// Byte offset of the first DTD or entity declaration, if any.
fn find_dtd(text: &str) -> Option<usize> {
    ["<!DOCTYPE", "<!ENTITY"]
        .iter()
        .filter_map(|needle| text.find(needle))
        .min()
}

/// Byte offset of the first start tag nested deeper than [`MAX_DEPTH`], scanning the raw text.
///
/// Exact for well-formed XML and an over-estimate otherwise (a start tag interrupted by `<`
/// still counts as open), so roxmltree never recurses deeper than the limit.
fn too_deep(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let skip_past = |from: usize, end: &[u8]| {
        bytes[from..]
            .windows(end.len())
            .position(|w| w == end)
            .map_or(bytes.len(), |p| from + p + end.len())
    };
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'<' {
            i += 1;
            continue;
        }
        let rest = &bytes[i..];
        if rest.starts_with(b"<!--") {
            i = skip_past(i + 4, b"-->");
        } else if rest.starts_with(b"<![CDATA[") {
            i = skip_past(i + 9, b"]]>");
        } else if rest.starts_with(b"<?") {
            i = skip_past(i + 2, b"?>");
        } else if rest.starts_with(b"<!") {
            i = skip_past(i + 2, b">");
        } else if rest.starts_with(b"</") {
            depth = depth.saturating_sub(1);
            i = skip_past(i + 2, b">");
        } else {
            let start = i;
            let (end, self_closing) = scan_start_tag(bytes, i + 1);
            if !self_closing {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(start);
                }
            }
            i = end;
        }
    }
    None
}

/// Scans a start tag from just after its `<`: returns where scanning stops (after `>`, or at an
/// unexpected `<`) and whether the tag is self-closing. Quoted attribute values may hold `>`.
fn scan_start_tag(bytes: &[u8], mut i: usize) -> (usize, bool) {
    let mut quote = None;
    let mut last = 0u8;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'<' {
            // Not allowed in a tag, not even in a quoted value: the tag ends here.
            return (i, false);
        }
        if let Some(q) = quote {
            if b == q {
                quote = None;
            }
        } else if b == b'"' || b == b'\'' {
            quote = Some(b);
        } else if b == b'>' {
            return (i + 1, last == b'/');
        }
        if !b.is_ascii_whitespace() {
            last = b;
        }
        i += 1;
    }
    (i, false)
}

/// Start offsets of lines, for turning byte offsets into 1-based line/column.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { starts }
    }

    /// 1-based line and column (in characters) of a byte offset.
    fn position(&self, text: &str, offset: usize) -> (u32, u32) {
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts.get(line - 1).copied().unwrap_or(0);
        let column = text
            .get(start..offset)
            .map_or(offset.saturating_sub(start), |s| s.chars().count())
            + 1;
        (to_u32(line), to_u32(column))
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Parser state: where we are, what we found.
struct Ctx<'t> {
    file: &'t str,
    text: &'t str,
    lines: LineIndex,
    format: ApsFormat,
    errors: Vec<ParseError>,
    findings: Vec<Finding>,
}

impl<'t> Ctx<'t> {
    fn new(file: &'t str, text: &'t str) -> Self {
        Ctx {
            file,
            text,
            lines: LineIndex::new(text),
            format: ApsFormat::V1_2,
            errors: Vec::new(),
            findings: Vec::new(),
        }
    }

    fn finish(mut self, package: Option<Package>) -> Outcome {
        self.errors
            .sort_by_key(|e| (e.line.is_none(), e.line, e.column));
        self.findings
            .sort_by_key(|f| (f.line.is_none(), f.line, f.column));
        Outcome {
            package,
            errors: self.errors,
            findings: self.findings,
        }
    }

    fn error_at(&mut self, offset: usize, rule: &Rule, message: impl Into<String>) {
        if self.errors.len() >= MAX_ERRORS {
            return;
        }
        let (line, column) = self.lines.position(self.text, offset);
        self.errors.push(ParseError {
            file: self.file.to_owned(),
            line: Some(line),
            column: Some(column),
            rule: rule.id,
            message: message.into(),
        });
    }

    fn error(&mut self, node: Node, rule: &Rule, message: impl Into<String>) {
        self.error_at(node.range().start, rule, message);
    }

    fn warn_at(&mut self, offset: usize, rule: &Rule, message: impl Into<String>) {
        let (line, column) = self.lines.position(self.text, offset);
        self.findings
            .push(Finding::new(rule, self.file, message).at(line, column));
    }

    fn warn(&mut self, node: Node, rule: &Rule, message: impl Into<String>) {
        self.warn_at(node.range().start, rule, message);
    }

    fn xml_error(&mut self, e: &roxmltree::Error) {
        use roxmltree::Error as E;
        let pos = match e {
            // roxmltree reports 1:1 for these; the end of the text is where the problem shows.
            E::UnexpectedEndOfStream | E::UnclosedRootNode | E::NoRootNode => {
                Some(self.lines.position(self.text, self.text.len()))
            }
            E::NodesLimitReached | E::AttributesLimitReached | E::NamespacesLimitReached => None,
            other => Some((other.pos().row, other.pos().col)),
        };
        let (rule, message) = match e {
            roxmltree::Error::DtdDetected => (
                &lint::META_DTD,
                "DTDs and entity declarations are refused, never expanded".to_owned(),
            ),
            other => (&lint::META_XML, format!("not well-formed XML: {other}")),
        };
        self.errors.push(ParseError {
            file: self.file.to_owned(),
            line: pos.map(|p| p.0),
            column: pos.map(|p| p.1),
            rule: rule.id,
            message,
        });
    }

    /// Whole-document warnings: CRLF, comments before the root, misspelled namespaces.
    fn document_warnings(&mut self, doc: &Document) {
        if let Some(offset) = self.text.find("\r\n") {
            self.warn_at(offset, &lint::META_CRLF, "the file uses CRLF line endings");
        }
        let before_root = doc.root().children().take_while(|n| !n.is_element());
        if let Some(comment) = before_root.into_iter().find(Node::is_comment) {
            self.warn(
                comment,
                &lint::META_COMMENT_BEFORE_ROOT,
                "a comment precedes the root element",
            );
        }
        let mut warned = BTreeSet::new();
        for node in doc.descendants().filter(Node::is_element) {
            let uri = node.tag_name().namespace().unwrap_or_default();
            if ns::is_misspelled(uri) && warned.insert(uri) {
                self.warn(
                    node,
                    &lint::META_MISSPELLED_NAMESPACE,
                    format!(
                        "namespace `{uri}` is misspelled; it is read as `{}`",
                        ns::canonical(uri)
                    ),
                );
            }
        }
    }

    /// Checks the root element and the format version (REFERENCE §2.4 checks 4 and 5).
    fn check_root(&mut self, root: Node) -> Option<ApsFormat> {
        let uri = root.tag_name().namespace().unwrap_or_default();
        if uri == ns::APS2 {
            self.error(
                root,
                &lint::META_APS2,
                "APS 2 package: apsctl supports APS 1.0, 1.1 and 1.2 only",
            );
            return None;
        }
        if ns::canonical(uri) != ns::CORE || root.tag_name().name() != "application" {
            let shown = if uri.is_empty() {
                "no namespace".to_owned()
            } else {
                format!("namespace `{uri}`")
            };
            self.error(
                root,
                &lint::META_NAMESPACE,
                format!(
                    "the root element is `{}` in {shown}, not `application` in namespace `{}`",
                    root.tag_name().name(),
                    ns::CORE
                ),
            );
            return None;
        }
        match root.attribute("version").map(str::trim) {
            None => Some(ApsFormat::V1_0),
            Some("1.1") => Some(ApsFormat::V1_1),
            Some("1.2") => Some(ApsFormat::V1_2),
            Some(other) => {
                self.error(
                    root,
                    &lint::META_FORMAT_VERSION,
                    format!(
                        "APS format version `{other}` is not supported; apsctl reads 1.0 (no version), 1.1 and 1.2"
                    ),
                );
                None
            }
        }
    }

    /// Text of a required core child; records an error and returns `""` when missing or empty.
    fn required_text(&mut self, parent: Node, name: &str) -> String {
        match core_child(parent, name).map(|n| (n, text(n))) {
            Some((_, t)) if !t.is_empty() => t,
            Some((node, _)) => {
                self.error(
                    node,
                    &lint::META_MISSING_ELEMENT,
                    format!("`{name}` is empty"),
                );
                String::new()
            }
            None => {
                let message = format!("`{}` has no `{name}`", parent.tag_name().name());
                self.error(parent, &lint::META_MISSING_ELEMENT, message);
                String::new()
            }
        }
    }

    /// A version or release: required, and not an unfilled template.
    fn version_text(&mut self, parent: Node, name: &str) -> String {
        let value = self.required_text(parent, name);
        if has_template_token(&value) {
            if let Some(node) = core_child(parent, name) {
                self.error(
                    node,
                    &lint::META_UNFILLED_TEMPLATE,
                    format!("`{name}` is the unfilled template placeholder `{value}`"),
                );
            }
        }
        value
    }

    /// A required, non-empty attribute.
    fn required_attr(&mut self, node: Node, name: &str) -> Option<String> {
        match node.attribute(name).map(str::trim) {
            Some(v) if !v.is_empty() => Some(v.to_owned()),
            _ => {
                let message = format!("`{}` has no `{name}` attribute", node.tag_name().name());
                self.error(node, &lint::META_MISSING_ATTRIBUTE, message);
                None
            }
        }
    }

    /// A boolean attribute (`true`/`false`/`1`/`0`); absent or invalid is `false`.
    fn bool_attr(&mut self, node: Node, name: &str) -> bool {
        self.opt_bool_attr(node, name).unwrap_or(false)
    }

    fn opt_bool_attr(&mut self, node: Node, name: &str) -> Option<bool> {
        let raw = node.attribute(name)?;
        let parsed = parse_bool(raw);
        if parsed.is_none() {
            let offset = node
                .attribute_node(name)
                .map_or(node.range().start, |a| a.range().start);
            self.error_at(
                offset,
                &lint::META_INVALID_VALUE,
                format!("attribute `{name}` is `{raw}`, not true or false"),
            );
        }
        parsed
    }

    /// Boolean element text.
    fn bool_text(&mut self, node: Node) -> Option<bool> {
        let raw = text(node);
        let parsed = parse_bool(&raw);
        if parsed.is_none() {
            let message = format!("`{}` is `{raw}`, not true or false", qname(node));
            self.error(node, &lint::META_INVALID_VALUE, message);
        }
        parsed
    }

    /// A non-negative integer given as element text.
    fn u64_text(&mut self, node: Node) -> Option<u64> {
        let raw = text(node);
        let parsed = raw
            .parse::<u64>()
            .ok()
            .filter(|_| raw.bytes().all(|b| b.is_ascii_digit()));
        if parsed.is_none() {
            self.integer_error(node, &raw);
        }
        parsed
    }

    fn integer_error(&mut self, node: Node, raw: &str) {
        let name = qname(node);
        if has_template_token(raw) {
            self.error(
                node,
                &lint::META_UNFILLED_TEMPLATE,
                format!("`{name}` is the unfilled template placeholder `{raw}`, not an integer"),
            );
        } else {
            self.error(
                node,
                &lint::META_INVALID_VALUE,
                format!("`{name}` is `{raw}`, not a non-negative integer"),
            );
        }
    }

    fn unknown_element(&mut self, node: Node, parent: &str) {
        let message = format!("unknown element `{}` in `{parent}` is ignored", qname(node));
        self.warn(node, &lint::META_UNKNOWN_ELEMENT, message);
    }

    /// Checks an id that becomes part of environment variable names (`variable`, e.g.
    /// `SETTINGS_a=b`): an error when it cannot be exported at all, else a warning when it has
    /// characters outside `[A-Za-z0-9_]` (REFERENCE §11 Q21).
    fn check_id_characters(&mut self, node: Node, what: &str, id: &str, variable: &str) {
        if let Some(problem) = lint::variable_name_problem(id) {
            let message = format!(
                "{what} `{}` {problem}, which cannot be part of the environment variable name `{}`",
                id.escape_debug(),
                variable.escape_debug()
            );
            self.error(node, &lint::META_VARIABLE_NAME, message);
        } else if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            self.warn(
                node,
                &lint::META_ID_CHARACTERS,
                format!(
                    "{what} `{id}` has characters outside A-Z, a-z, 0-9 and _; its variable name is exported verbatim"
                ),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Small XML helpers: namespaces by URI, texts, attributes.

fn elements<'a, 'i>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(Node::is_element)
}

/// The element's namespace URI with misspellings folded.
fn namespace<'a>(node: Node<'a, '_>) -> Cow<'a, str> {
    ns::canonical(node.tag_name().namespace().unwrap_or_default())
}

fn is_in(node: Node, uri: &str, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name && namespace(node) == uri
}

fn is_core(node: Node) -> bool {
    node.is_element() && namespace(node) == ns::CORE
}

fn child_in<'a, 'i>(node: Node<'a, 'i>, uri: &str, name: &str) -> Option<Node<'a, 'i>> {
    elements(node).find(|c| is_in(*c, uri, name))
}

fn core_child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    child_in(node, ns::CORE, name)
}

fn core_children<'a, 'i>(node: Node<'a, 'i>, name: &'a str) -> impl Iterator<Item = Node<'a, 'i>> {
    elements(node).filter(move |c| is_in(*c, ns::CORE, name))
}

/// `prefix:name` for messages, using the aspect's usual prefix.
fn qname(node: Node) -> String {
    let name = node.tag_name().name();
    let prefix = match namespace(node).as_ref() {
        ns::PHP => "php:",
        ns::DB => "db:",
        ns::APACHE => "apache:",
        ns::CGI => "cgi:",
        _ => "",
    };
    format!("{prefix}{name}")
}

/// The element's own text (text and CDATA children), trimmed.
fn text(node: Node) -> String {
    let joined: String = node
        .children()
        .filter(Node::is_text)
        .filter_map(|t| t.text())
        .collect();
    joined.trim().to_owned()
}

fn child_text(node: Node, name: &str) -> Option<String> {
    core_child(node, name).map(text).filter(|t| !t.is_empty())
}

fn lang(node: Node) -> Option<String> {
    node.attribute((ns::XML, "lang"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
}

fn localized(node: Node) -> LocalizedText {
    LocalizedText {
        lang: lang(node),
        text: text(node),
    }
}

/// Localized texts of the `name` children; empty elements (`<name/>`) are skipped.
fn localized_children(node: Node, name: &str) -> Vec<LocalizedText> {
    elements(node)
        .filter(|c| is_in(*c, ns::CORE, name))
        .map(localized)
        .filter(|t| !t.text.is_empty())
        .collect()
}

fn attr(node: Node, name: &str) -> Option<String> {
    node.attribute(name)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn path_attr(node: Node) -> Option<String> {
    attr(node, "path")
}

fn parse_bool(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// Converts any element into an opaque [`ForeignElement`].
fn foreign(node: Node) -> ForeignElement {
    ForeignElement {
        namespace: namespace(node).into_owned(),
        name: node.tag_name().name().to_owned(),
        attributes: node
            .attributes()
            .map(|a| {
                let name = match a.namespace() {
                    Some(uri) => format!("{{{uri}}}{}", a.name()),
                    None => a.name().to_owned(),
                };
                (name, a.value().to_owned())
            })
            .collect(),
        text: text(node),
        children: elements(node).map(foreign).collect(),
    }
}

/// Whether the text contains an unfilled build placeholder: `%NAME%`, `__NAME__` or `{NAME}`
/// with NAME in upper case (lower-case `{setting}` placeholders are legitimate in entry points).
fn has_template_token(s: &str) -> bool {
    let is_token = |t: &str| {
        t.starts_with(|c: char| c.is_ascii_uppercase())
            && t.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    };
    [("%", "%"), ("__", "__"), ("{", "}")]
        .iter()
        .any(|(open, close)| {
            let mut rest = s;
            while let Some(i) = rest.find(open) {
                let after = &rest[i + open.len()..];
                if after.find(close).is_some_and(|j| is_token(&after[..j])) {
                    return true;
                }
                rest = after;
            }
            false
        })
}

/// Whether the text starts with a URI scheme (`http:`, `uuid:` …) followed by something.
fn looks_like_uri(s: &str) -> bool {
    s.split_once(':').is_some_and(|(scheme, rest)| {
        !rest.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    })
}

// ---------------------------------------------------------------------------------------------
// Application level.

const COMMON_CHILDREN: &[&str] = &["name", "version", "release", "homepage"];
const FLAT_CHILDREN: &[&str] = &[
    "package-homepage",
    "packager-uri",
    "default-prefix",
    "summary",
    "description",
    "icon",
    "screenshot",
    "license",
    "configuration-script-language",
    "upgradable-from",
    "changelog",
    "entry-points",
    "installed-size",
    "categories",
    "languages",
    "settings",
    "requirements",
    "mapping",
];
const STRUCTURED_CHILDREN: &[&str] = &[
    "id",
    "vendor",
    "packager",
    "presentation",
    "global-settings",
    "patch",
    "upgrade",
    "master-package",
    "content",
    "service",
];

const PRESENTATION_CHILDREN: &[&str] = &[
    "summary",
    "description",
    "icon",
    "screenshot",
    "changelog",
    "categories",
    "languages",
    "extension",
];
const SERVICE_CHILDREN: &[&str] = &[
    "license",
    "presentation",
    "settings",
    "resources",
    "requirements",
    "provision",
    "service",
];

fn parse_application(ctx: &mut Ctx, app: Node) -> Package {
    let mut pkg = Package {
        format: ctx.format,
        packaged: attr(app, "packaged"),
        id: None,
        name: ctx.required_text(app, "name"),
        version: ctx.version_text(app, "version"),
        release: ctx.version_text(app, "release"),
        homepage: child_text(app, "homepage"),
        vendor: None,
        packager: None,
        presentation: Presentation::default(),
        global_settings: Vec::new(),
        patch: None,
        upgrade: None,
        upgradable_from: Vec::new(),
        master_package: None,
        content: None,
        services: Vec::new(),
    };
    check_application_children(ctx, app);
    if ctx.format == ApsFormat::V1_0 {
        parse_flat(ctx, app, &mut pkg);
    } else {
        parse_structured(ctx, app, &mut pkg);
    }
    pkg
}

fn check_application_children(ctx: &mut Ctx, app: Node) {
    let flat = ctx.format == ApsFormat::V1_0;
    for child in elements(app) {
        let name = child.tag_name().name();
        if !is_core(child) {
            ctx.unknown_element(child, "application");
        } else if COMMON_CHILDREN.contains(&name)
            || (flat && FLAT_CHILDREN.contains(&name))
            || (!flat && STRUCTURED_CHILDREN.contains(&name))
        {
            // Known in this format.
        } else if flat && STRUCTURED_CHILDREN.contains(&name) {
            ctx.error(
                child,
                &lint::META_STRUCTURE,
                format!(
                    "`{name}` belongs to APS 1.1/1.2, but `application` has no `version` attribute, so the document is read as APS 1.0"
                ),
            );
        } else if FLAT_CHILDREN.contains(&name) {
            ctx.warn(
                child,
                &lint::META_UNKNOWN_ELEMENT,
                format!(
                    "`{name}` is an APS 1.0 element and is ignored in an APS {} document",
                    ctx.format.as_str()
                ),
            );
        } else {
            ctx.unknown_element(child, "application");
        }
    }
}

fn parse_structured(ctx: &mut Ctx, app: Node, pkg: &mut Package) {
    if let Some(node) = core_child(app, "id") {
        let id = text(node);
        if id.is_empty() {
            ctx.error(node, &lint::META_MISSING_ELEMENT, "`id` is empty");
        } else {
            if !looks_like_uri(&id) {
                let message = format!("package id `{id}` is not a URI");
                ctx.warn(node, &lint::META_ID_NOT_URI, message);
            }
            pkg.id = Some(id);
        }
    }
    pkg.vendor = core_child(app, "vendor").map(|n| parse_party(ctx, n));
    pkg.packager = core_child(app, "packager").map(|n| parse_party(ctx, n));
    if let Some(node) = core_child(app, "presentation") {
        pkg.presentation = parse_presentation(ctx, node, node);
    }
    let mut global_scope = SettingScope::default();
    if let Some(node) = core_child(app, "global-settings") {
        pkg.global_settings = parse_setting_nodes(ctx, node, &mut global_scope);
    }
    pkg.patch = core_child(app, "patch").and_then(|n| parse_update_rule(ctx, n));
    pkg.upgrade = core_child(app, "upgrade").and_then(|n| parse_update_rule(ctx, n));
    pkg.master_package = core_child(app, "master-package").and_then(|n| parse_master(ctx, n));
    if let Some(node) = core_child(app, "content") {
        pkg.content = elements(node).next().map(foreign);
        if pkg.content.is_none() {
            ctx.warn(
                node,
                &lint::META_UNKNOWN_ELEMENT,
                "`content` names no delivery method",
            );
        }
    }
    let globals = global_scope.seen;
    let mut service_ids = BTreeSet::new();
    for node in core_children(app, "service") {
        if let Some(service) = parse_service(ctx, node, &globals, &mut service_ids) {
            pkg.services.push(service);
        }
    }
    if core_children(app, "service").next().is_none() {
        ctx.error(
            app,
            &lint::META_MISSING_ELEMENT,
            format!(
                "`application` has no `service`; an APS {} package needs at least one",
                ctx.format.as_str()
            ),
        );
    }
}

fn parse_party(ctx: &mut Ctx, node: Node) -> Party {
    let party = Party {
        names: localized_children(node, "name"),
        homepages: core_children(node, "homepage")
            .map(text)
            .filter(|t| !t.is_empty())
            .collect(),
        icon: core_child(node, "icon").and_then(path_attr),
        uri: child_text(node, "uri"),
    };
    for child in elements(node) {
        if !["name", "homepage", "icon", "uri"].contains(&child.tag_name().name())
            || !is_core(child)
        {
            ctx.unknown_element(child, node.tag_name().name());
        }
    }
    party
}

/// Application presentation. In 1.0 `texts` and `lists` are both the application element.
fn parse_presentation(ctx: &mut Ctx, texts: Node, lists: Node) -> Presentation {
    let mut presentation = Presentation {
        summaries: localized_children(texts, "summary"),
        descriptions: localized_children(texts, "description"),
        icon: core_child(texts, "icon").and_then(path_attr),
        screenshots: Vec::new(),
        changelog: Vec::new(),
        categories: Vec::new(),
        languages: Vec::new(),
    };
    for node in core_children(texts, "screenshot") {
        if let Some(path) = ctx.required_attr(node, "path") {
            presentation.screenshots.push(Screenshot {
                path,
                descriptions: localized_children(node, "description"),
            });
        }
    }
    if let Some(changelog) = core_child(lists, "changelog") {
        for node in core_children(changelog, "version") {
            let (Some(version), Some(release)) = (
                ctx.required_attr(node, "version"),
                ctx.required_attr(node, "release"),
            ) else {
                continue;
            };
            presentation.changelog.push(ChangelogVersion {
                version,
                release,
                date: attr(node, "date"),
                entries: localized_children(node, "entry"),
            });
        }
    }
    if let Some(categories) = core_child(lists, "categories") {
        presentation.categories = core_children(categories, "category")
            .map(text)
            .filter(|t| !t.is_empty())
            .collect();
    }
    if let Some(languages) = core_child(lists, "languages") {
        for node in core_children(languages, "language") {
            let tag = text(node);
            let well_formed =
                (2..=3).contains(&tag.len()) && tag.bytes().all(|b| b.is_ascii_lowercase());
            if !well_formed {
                let message = format!("language `{tag}` is not two or three lower-case letters");
                ctx.warn(node, &lint::META_LANGUAGE_TAG, message);
            }
            if !tag.is_empty() {
                presentation.languages.push(tag);
            }
        }
    }
    if texts == lists {
        // 1.0: these are application children, checked there.
        return presentation;
    }
    for child in elements(texts) {
        if !is_core(child) || !PRESENTATION_CHILDREN.contains(&child.tag_name().name()) {
            ctx.unknown_element(child, "presentation");
        }
    }
    presentation
}

fn parse_update_rule(ctx: &mut Ctx, node: Node) -> Option<UpdateRule> {
    Some(UpdateRule {
        match_rule: ctx.required_attr(node, "match")?,
        recommended: ctx.bool_attr(node, "recommended"),
    })
}

fn parse_master(ctx: &mut Ctx, node: Node) -> Option<MasterPackage> {
    let Some(package) = core_child(node, "package") else {
        ctx.error(
            node,
            &lint::META_MISSING_ELEMENT,
            "`master-package` has no `package`",
        );
        return None;
    };
    let id = ctx.required_attr(package, "id");
    let match_rule = ctx.required_attr(package, "match");
    Some(MasterPackage {
        id: id?,
        match_rule: match_rule?,
    })
}

// ---------------------------------------------------------------------------------------------
// 1.0 flat layout, normalised into one root service (REFERENCE §3.4).

fn parse_flat(ctx: &mut Ctx, app: Node, pkg: &mut Package) {
    let packager_uri = child_text(app, "packager-uri");
    let package_homepage = child_text(app, "package-homepage");
    if packager_uri.is_some() || package_homepage.is_some() {
        pkg.packager = Some(Party {
            names: Vec::new(),
            homepages: package_homepage.into_iter().collect(),
            icon: None,
            uri: packager_uri,
        });
    }
    pkg.presentation = parse_presentation(ctx, app, app);
    for node in core_children(app, "upgradable-from") {
        if let Some(version) = ctx.required_attr(node, "version") {
            pkg.upgradable_from.push(UpgradableFrom {
                version,
                release: attr(node, "release"),
            });
        }
    }
    let mut scope = SettingScope::default();
    let settings = core_child(app, "settings")
        .map(|n| parse_setting_nodes(ctx, n, &mut scope))
        .unwrap_or_default();
    let configuration_script = core_child(app, "configuration-script-language").map(|n| {
        let language = text(n);
        if language.is_empty() {
            ctx.error(
                n,
                &lint::META_SCRIPT_LANGUAGE,
                "`configuration-script-language` is empty",
            );
        }
        ScriptDecl {
            name: "configure".to_owned(),
            language,
            status_control: false,
            structured_output: false,
            sufficient: false,
            poll_interval: None,
        }
    });
    let url_mapping = if let Some(mapping) = core_child(app, "mapping") {
        parse_url_mapping_parts(ctx, app, app, mapping)
    } else {
        for orphan in ["default-prefix", "installed-size"] {
            if let Some(node) = core_child(app, orphan) {
                let message = format!("`{orphan}` without `mapping` is ignored");
                ctx.warn(node, &lint::META_UNKNOWN_ELEMENT, message);
            }
        }
        None
    };
    let entry_points = core_child(app, "entry-points")
        .map(|n| parse_flat_entries(ctx, n))
        .unwrap_or_default();
    pkg.services.push(Service {
        id: ROOT_SERVICE_ID.to_owned(),
        class: None,
        license: core_child(app, "license").map(|n| parse_license(ctx, n)),
        presentation: ServicePresentation {
            entry_points,
            ..ServicePresentation::default()
        },
        settings,
        resources: Vec::new(),
        requirements: core_child(app, "requirements")
            .map(|n| parse_requirements(ctx, n))
            .unwrap_or_default(),
        provision: Provision {
            url_mapping,
            configuration_script,
            ..Provision::default()
        },
        services: Vec::new(),
    });
}

fn parse_flat_entries(ctx: &mut Ctx, node: Node) -> Vec<EntryPoint> {
    let mut out = Vec::new();
    for entry in core_children(node, "entry") {
        let path = ctx.required_text(entry, "path");
        let dst = if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        };
        out.push(EntryPoint {
            dst,
            method: None,
            class: None,
            labels: localized_children(entry, "label"),
            descriptions: localized_children(entry, "description"),
            variables: Vec::new(),
        });
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Services.

fn parse_service(
    ctx: &mut Ctx,
    node: Node,
    globals: &BTreeSet<String>,
    service_ids: &mut BTreeSet<String>,
) -> Option<Service> {
    let id = ctx.required_attr(node, "id")?;
    if !service_ids.insert(id.clone()) {
        let message = format!("service id `{id}` is used twice");
        ctx.error(node, &lint::META_DUPLICATE_ID, message);
    }
    let mut scope = SettingScope {
        seen: BTreeSet::new(),
        reserved: globals.clone(),
    };
    let settings = core_child(node, "settings")
        .map(|n| parse_setting_nodes(ctx, n, &mut scope))
        .unwrap_or_default();
    let service = Service {
        class: attr(node, "class"),
        license: core_child(node, "license").map(|n| parse_license(ctx, n)),
        presentation: core_child(node, "presentation")
            .map(|n| parse_service_presentation(ctx, n))
            .unwrap_or_default(),
        settings,
        resources: core_child(node, "resources")
            .map(|n| parse_resources(ctx, n))
            .unwrap_or_default(),
        requirements: core_child(node, "requirements")
            .map(|n| parse_requirements(ctx, n))
            .unwrap_or_default(),
        provision: core_child(node, "provision")
            .map(|n| parse_provision(ctx, n))
            .unwrap_or_default(),
        services: core_children(node, "service")
            .filter_map(|child| parse_service(ctx, child, globals, service_ids))
            .collect(),
        id,
    };
    for child in elements(node) {
        if !is_core(child) || !SERVICE_CHILDREN.contains(&child.tag_name().name()) {
            ctx.unknown_element(child, "service");
        }
    }
    Some(service)
}

fn parse_license(ctx: &mut Ctx, node: Node) -> License {
    let kind = if core_child(node, "free").is_some() {
        LicenseKind::Free
    } else if core_child(node, "commercial").is_some() {
        LicenseKind::Commercial
    } else {
        LicenseKind::None
    };
    let text_node = core_child(node, "text");
    License {
        must_accept: ctx.bool_attr(node, "must-accept"),
        kind,
        text_name: text_node.and_then(|t| child_text(t, "name")),
        text_file: text_node.and_then(|t| child_text(t, "file")),
        text_url: text_node.and_then(|t| child_text(t, "url")),
    }
}

fn parse_service_presentation(ctx: &mut Ctx, node: Node) -> ServicePresentation {
    let mut presentation = ServicePresentation {
        names: localized_children(node, "name"),
        summaries: localized_children(node, "summary"),
        descriptions: localized_children(node, "description"),
        icon: core_child(node, "icon").and_then(path_attr),
        infolinks: Vec::new(),
        entry_points: Vec::new(),
    };
    if let Some(links) = core_child(node, "infolinks") {
        for link in core_children(links, "link") {
            if let Some(href) = ctx.required_attr(link, "href") {
                presentation.infolinks.push(InfoLink {
                    href,
                    class: attr(link, "class"),
                    label: localized(link),
                });
            }
        }
    }
    if let Some(entries) = core_child(node, "entry-points") {
        for entry in core_children(entries, "entry") {
            if let Some(point) = parse_entry(ctx, entry) {
                presentation.entry_points.push(point);
            }
        }
    }
    presentation
}

fn parse_entry(ctx: &mut Ctx, entry: Node) -> Option<EntryPoint> {
    let dst = ctx.required_attr(entry, "dst")?;
    let mut variables = Vec::new();
    for var in core_children(entry, "variable") {
        if let Some(name) = ctx.required_attr(var, "name") {
            variables.push(EntryVariable {
                name,
                value_of_setting: attr(var, "value-of-setting"),
                class: attr(var, "class"),
                text: text(var),
            });
        }
    }
    Some(EntryPoint {
        dst,
        method: attr(entry, "method"),
        class: attr(entry, "class"),
        labels: localized_children(entry, "label"),
        descriptions: localized_children(entry, "description"),
        variables,
    })
}

fn parse_resources(ctx: &mut Ctx, node: Node) -> Vec<ResourceDecl> {
    let mut out = Vec::new();
    let mut ids = BTreeSet::new();
    for resource in core_children(node, "resource") {
        let Some(id) = ctx.required_attr(resource, "id") else {
            continue;
        };
        if !ids.insert(id.clone()) {
            let message = format!("resource id `{id}` is used twice");
            ctx.error(resource, &lint::META_DUPLICATE_ID, message);
        }
        out.push(ResourceDecl {
            id,
            class: attr(resource, "class"),
            limiting_setting: attr(resource, "limiting-setting"),
            names: localized_children(resource, "name"),
            descriptions: localized_children(resource, "description"),
        });
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Settings.

/// Ids seen in one settings scope, and ids that must not be reused there (global settings).
#[derive(Default)]
struct SettingScope {
    seen: BTreeSet<String>,
    reserved: BTreeSet<String>,
}

fn parse_setting_nodes(
    ctx: &mut Ctx,
    container: Node,
    scope: &mut SettingScope,
) -> Vec<SettingNode> {
    let is_group = container.tag_name().name() == "group";
    let mut out = Vec::new();
    for child in elements(container) {
        if is_in(child, ns::CORE, "setting") {
            if let Some(setting) = parse_setting(ctx, child, scope) {
                out.push(SettingNode::Setting(setting));
            }
        } else if is_in(child, ns::CORE, "group") {
            out.push(SettingNode::Group(Group {
                class: attr(child, "class"),
                names: localized_children(child, "name"),
                items: parse_setting_nodes(ctx, child, scope),
            }));
        } else if !(is_group && is_in(child, ns::CORE, "name")) {
            ctx.unknown_element(child, container.tag_name().name());
        }
    }
    out
}

fn parse_setting(ctx: &mut Ctx, node: Node, scope: &mut SettingScope) -> Option<Setting> {
    let id = ctx.required_attr(node, "id")?;
    if !scope.seen.insert(id.clone()) {
        let message = format!("setting id `{id}` is used twice in the same service");
        ctx.error(node, &lint::META_DUPLICATE_ID, message);
    }
    if scope.reserved.contains(&id) {
        let message = format!(
            "setting id `{id}` is also a global setting; both would export `SETTINGS_{id}`"
        );
        ctx.error(node, &lint::META_NAME_COLLISION, message);
    }
    ctx.check_id_characters(node, "setting id", &id, &format!("SETTINGS_{id}"));
    let type_name = ctx.required_attr(node, "type")?;
    let kind = parse_setting_type(ctx, node, &type_name, &id, false)?;
    if node.attribute("charset").is_some() {
        let message = format!("setting `{id}` declares a charset, which apsctl does not enforce");
        ctx.warn(node, &lint::SETTING_CHARSET_IGNORED, message);
    }
    let mut default_value = node.attribute("default-value").map(str::to_owned);
    if kind == SettingType::Boolean {
        // D6: boolean defaults are normalised; anything else is left for lint to report.
        if let Some(b) = default_value.as_deref().and_then(parse_bool) {
            default_value = Some(b.to_string());
        }
    }
    let uniq = match node.attribute("uniq").map(str::trim) {
        None | Some("") => None,
        Some("owner") => Some(Uniq::Owner),
        Some("global") => Some(Uniq::Global),
        Some(other) => {
            let message =
                format!("setting `{id}` has uniq=`{other}`; only owner and global are known");
            ctx.error(node, &lint::META_INVALID_VALUE, message);
            None
        }
    };
    let visibility_hidden = match node.attribute("visibility").map(str::trim) {
        Some("hidden") => true,
        None | Some("" | "visible") => false,
        Some(other) => {
            let message = format!("setting `{id}` has visibility=`{other}`, read as visible");
            ctx.warn(node, &lint::META_UNKNOWN_ELEMENT, message);
            false
        }
    };
    for child in elements(node) {
        let known = ["name", "description", "error-message", "choice"];
        if !is_core(child) || !known.contains(&child.tag_name().name()) {
            ctx.unknown_element(child, "setting");
        }
    }
    Some(Setting {
        kind,
        default_value,
        installation_only: ctx.bool_attr(node, "installation-only"),
        global: ctx.bool_attr(node, "global"),
        class: attr(node, "class"),
        value_of_setting: attr(node, "value-of-setting"),
        uniq,
        visibility_hidden,
        protected: ctx.bool_attr(node, "protected"),
        optional: ctx.bool_attr(node, "optional"),
        track_old_value: ctx.bool_attr(node, "track-old-value"),
        names: localized_children(node, "name"),
        descriptions: localized_children(node, "description"),
        error_messages: localized_children(node, "error-message"),
        id,
    })
}

fn parse_setting_type(
    ctx: &mut Ctx,
    node: Node,
    type_name: &str,
    id: &str,
    is_element: bool,
) -> Option<SettingType> {
    Some(match type_name {
        "boolean" => SettingType::Boolean,
        "string" => SettingType::String(parse_text_constraints(ctx, node, id)?),
        "password" => SettingType::Password(parse_text_constraints(ctx, node, id)?),
        "integer" => {
            let (min, max) = parse_bounds::<i64>(ctx, node, id)?;
            SettingType::Integer { min, max }
        }
        "float" => {
            let (min, max) = parse_bounds::<f64>(ctx, node, id)?;
            SettingType::Float { min, max }
        }
        "email" => SettingType::Email,
        "domain-name" => SettingType::DomainName,
        "host-name" => SettingType::HostName,
        "enum" => SettingType::Enum {
            choices: parse_enum_choices(ctx, node, id)?,
        },
        "static-text" => SettingType::StaticText,
        "hidden" => SettingType::Hidden,
        "list" if !is_element => {
            let element = node.attribute("element-type").map_or("string", str::trim);
            SettingType::List {
                element_type: Box::new(parse_setting_type(ctx, node, element, id, true)?),
            }
        }
        "list" => {
            let message = format!("setting `{id}` is a list of lists, which is not supported");
            ctx.error(node, &lint::META_UNKNOWN_SETTING_TYPE, message);
            return None;
        }
        other => {
            let what = if is_element { "element type" } else { "type" };
            let message = format!("setting `{id}` has unknown {what} `{other}`");
            ctx.error(node, &lint::META_UNKNOWN_SETTING_TYPE, message);
            return None;
        }
    })
}

fn parse_text_constraints(ctx: &mut Ctx, node: Node, id: &str) -> Option<TextConstraints> {
    let (min_length, max_length) =
        parse_bounds_named::<u32>(ctx, node, id, "min-length", "max-length")?;
    let regex = match node.attribute("regex") {
        None => None,
        Some(pattern) => match SettingRegex::new(pattern) {
            Ok(re) => Some(re),
            Err(e) => {
                let detail = e.to_string();
                let reason = detail
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                let message = format!(
                    "setting `{id}` has regex `{pattern}`, which is not a valid regular expression ({})",
                    reason.trim()
                );
                ctx.error(node, &lint::META_INVALID_REGEX, message);
                return None;
            }
        },
    };
    Some(TextConstraints {
        min_length,
        max_length,
        regex,
        charset: attr(node, "charset"),
    })
}

fn parse_bounds<T: std::str::FromStr + PartialOrd + Copy>(
    ctx: &mut Ctx,
    node: Node,
    id: &str,
) -> Option<(Option<T>, Option<T>)> {
    parse_bounds_named(ctx, node, id, "min", "max")
}

/// Two numeric attributes where the first must not exceed the second.
fn parse_bounds_named<T: std::str::FromStr + PartialOrd + Copy>(
    ctx: &mut Ctx,
    node: Node,
    id: &str,
    low: &str,
    high: &str,
) -> Option<(Option<T>, Option<T>)> {
    let mut read = |name: &str| -> Result<Option<T>, ()> {
        let Some(raw) = node
            .attribute(name)
            .map(str::trim)
            .filter(|r| !r.is_empty())
        else {
            return Ok(None);
        };
        let parsed = raw.parse::<T>().ok().filter(|_| {
            raw.bytes()
                .all(|b| b.is_ascii_digit() || b"+-.".contains(&b))
        });
        if parsed.is_none() {
            let message = format!("setting `{id}` has {name}=`{raw}`, which is not a number");
            ctx.error(node, &lint::META_INVALID_VALUE, message);
        }
        parsed.map(Some).ok_or(())
    };
    let (min, max) = (read(low).ok()?, read(high).ok()?);
    if let (Some(a), Some(b)) = (min, max) {
        if a > b {
            let message = format!("setting `{id}` has {low} greater than {high}");
            ctx.error(node, &lint::META_INVALID_VALUE, message);
            return None;
        }
    }
    Some((min, max))
}

fn parse_enum_choices(ctx: &mut Ctx, node: Node, id: &str) -> Option<Vec<EnumChoice>> {
    let mut choices = Vec::new();
    let mut ids = BTreeSet::new();
    for choice in core_children(node, "choice") {
        let Some(choice_id) = ctx.required_attr(choice, "id") else {
            continue;
        };
        if !ids.insert(choice_id.clone()) {
            let message = format!("setting `{id}` lists choice `{choice_id}` twice");
            ctx.error(choice, &lint::META_DUPLICATE_ID, message);
        }
        choices.push(EnumChoice {
            id: choice_id,
            names: localized_children(choice, "name"),
        });
    }
    if choices.is_empty() {
        let message = format!("enum setting `{id}` has no `choice`");
        ctx.error(node, &lint::META_MISSING_ELEMENT, message);
        return None;
    }
    Some(choices)
}

// ---------------------------------------------------------------------------------------------
// Requirements (REFERENCE §3.6, §6).

fn parse_requirements(ctx: &mut Ctx, node: Node) -> Requirements {
    let mut requirements = Requirements::default();
    let mut direct_db = Vec::new();
    let mut alternatives_db = Vec::new();
    for child in elements(node) {
        if is_in(child, ns::CORE, "choice") {
            let (choice, dbs) = parse_choice(ctx, child);
            requirements.choices.push(choice);
            alternatives_db.extend(dbs);
        } else if let Some(req) = parse_requirement(ctx, child) {
            if let Requirement::Db(db) = &req {
                direct_db.push((db.id.clone(), child));
            }
            requirements.items.push(req);
        }
    }
    check_db_ids(ctx, &direct_db, &[]);
    for alternative in &alternatives_db {
        check_db_ids(ctx, alternative, &direct_db);
    }
    requirements
}

/// `db:id`s must be unique among the direct requirements plus any one alternative.
fn check_db_ids(ctx: &mut Ctx, ids: &[(String, Node)], outer: &[(String, Node)]) {
    let mut seen: BTreeSet<&str> = outer.iter().map(|(id, _)| id.as_str()).collect();
    for (id, node) in ids {
        if !seen.insert(id) {
            let message = format!("db:id `{id}` is used twice");
            ctx.error(*node, &lint::META_DUPLICATE_ID, message);
        }
    }
}

type DbIds<'a, 'i> = Vec<(String, Node<'a, 'i>)>;

fn parse_choice<'a, 'i>(ctx: &mut Ctx, node: Node<'a, 'i>) -> (Choice, Vec<DbIds<'a, 'i>>) {
    let mut choice = Choice {
        alternatives: Vec::new(),
    };
    let mut dbs = Vec::new();
    let mut ids = BTreeSet::new();
    for child in elements(node) {
        if !is_in(child, ns::CORE, "requirements") {
            ctx.unknown_element(child, "choice");
            continue;
        }
        let Some(id) = ctx.required_attr(child, "id") else {
            continue;
        };
        if !ids.insert(id.clone()) {
            let message = format!("choice alternative id `{id}` is used twice");
            ctx.error(child, &lint::META_DUPLICATE_ID, message);
        }
        let mut items = Vec::new();
        let mut alternative_db = Vec::new();
        for item in elements(child) {
            if is_in(item, ns::CORE, "choice") {
                ctx.error(
                    item,
                    &lint::META_STRUCTURE,
                    "a `choice` inside a choice alternative is not supported",
                );
            } else if let Some(req) = parse_requirement(ctx, item) {
                if let Requirement::Db(db) = &req {
                    alternative_db.push((db.id.clone(), item));
                }
                items.push(req);
            }
        }
        dbs.push(alternative_db);
        choice.alternatives.push(Alternative { id, items });
    }
    if choice.alternatives.is_empty() {
        ctx.error(
            node,
            &lint::META_MISSING_ELEMENT,
            "`choice` has no alternative `requirements`",
        );
    }
    (choice, dbs)
}

/// One requirement element; `None` when it was invalid (an error is recorded).
fn parse_requirement(ctx: &mut Ctx, node: Node) -> Option<Requirement> {
    let name = node.tag_name().name();
    match namespace(node).as_ref() {
        ns::PHP => parse_php(ctx, node, name),
        ns::DB if name == "db" => parse_db(ctx, node).map(Requirement::Db),
        ns::APACHE if name == "required-module" => {
            let module = text(node);
            if module.is_empty() {
                ctx.error(
                    node,
                    &lint::META_MISSING_ELEMENT,
                    "`apache:required-module` is empty",
                );
                return None;
            }
            Some(Requirement::Apache(ApacheRequirement::RequiredModule(
                module,
            )))
        }
        ns::APACHE if name == "htaccess" => Some(Requirement::Apache(ApacheRequirement::Htaccess)),
        _ => Some(Requirement::Other(foreign(node))),
    }
}

fn parse_php(ctx: &mut Ctx, node: Node, name: &str) -> Option<Requirement> {
    let flag = |d| Some(d);
    let requirement = match name {
        "version" => PhpRequirement::Version {
            min: attr(node, "min"),
            max_not_including: attr(node, "max-not-including"),
        },
        "extension" | "function" => {
            let value = text(node);
            if value.is_empty() {
                let message = format!("`php:{name}` is empty");
                ctx.error(node, &lint::META_MISSING_ELEMENT, message);
                return None;
            }
            if name == "extension" {
                PhpRequirement::Extension(value)
            } else {
                PhpRequirement::Function(value)
            }
        }
        "memory-limit" | "post-max-size" | "post_max_size" => {
            if name == "post_max_size" {
                ctx.warn(
                    node,
                    &lint::PHP_POST_MAX_SIZE_UNDERSCORE,
                    "`php:post_max_size` is read as `php:post-max-size`",
                );
            }
            let directive = if name == "memory-limit" {
                PhpSizeDirective::MemoryLimit
            } else {
                PhpSizeDirective::PostMaxSize
            };
            let raw = text(node);
            let Some(bytes) = parse_byte_size(&raw) else {
                let message = format!("`{}` is `{raw}`, not a size in bytes", qname(node));
                ctx.error(node, &lint::META_INVALID_VALUE, message);
                return None;
            };
            PhpRequirement::Size { directive, bytes }
        }
        "max-execution-time" => PhpRequirement::MaxExecutionTime(ctx.u64_text(node)?),
        other => {
            let directive = match other {
                "short-open-tag" => flag(PhpFlag::ShortOpenTag),
                "file-uploads" => flag(PhpFlag::FileUploads),
                "allow-url-fopen" => flag(PhpFlag::AllowUrlFopen),
                "safe-mode" => flag(PhpFlag::SafeMode),
                "register-globals" => flag(PhpFlag::RegisterGlobals),
                "magic-quotes-gpc" => flag(PhpFlag::MagicQuotesGpc),
                _ => None,
            };
            let Some(directive) = directive else {
                return Some(Requirement::Other(foreign(node)));
            };
            PhpRequirement::Flag {
                directive,
                value: ctx.bool_text(node)?,
            }
        }
    };
    Some(Requirement::Php(requirement))
}

/// Bytes with an optional `K`/`M`/`G` suffix (case-insensitive), as php.ini writes sizes.
fn parse_byte_size(raw: &str) -> Option<u64> {
    let (digits, factor) = match raw.char_indices().last() {
        Some((i, 'k' | 'K')) => (&raw[..i], 1024),
        Some((i, 'm' | 'M')) => (&raw[..i], 1024 * 1024),
        Some((i, 'g' | 'G')) => (&raw[..i], 1024 * 1024 * 1024),
        _ => (raw, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(factor)
}

fn parse_db(ctx: &mut Ctx, node: Node) -> Option<DbRequirement> {
    let child = |name: &str| child_in(node, ns::DB, name);
    let child_value = |name: &str| child(name).map(text).filter(|t| !t.is_empty());
    let Some(id) = child_value("id") else {
        ctx.error(node, &lint::META_MISSING_ELEMENT, "`db:db` has no `db:id`");
        return None;
    };
    if let Some(id_node) = child("id") {
        ctx.check_id_characters(id_node, "db:id", &id, &format!("DB_{id}_NAME"));
    }
    let Some(server_type) = child_value("server-type") else {
        let message = format!("`db:db` `{id}` has no `db:server-type`");
        ctx.error(node, &lint::META_MISSING_ELEMENT, message);
        return None;
    };
    let can_use_tables_prefix = match child("can-use-tables-prefix") {
        Some(flag) => ctx.bool_text(flag)?,
        None => false,
    };
    for element in elements(node) {
        let known = [
            "id",
            "default-name",
            "can-use-tables-prefix",
            "server-type",
            "server-min-version",
        ];
        if namespace(element) != ns::DB || !known.contains(&element.tag_name().name()) {
            ctx.unknown_element(element, "db:db");
        }
    }
    Some(DbRequirement {
        id,
        default_name: child_value("default-name"),
        can_use_tables_prefix,
        server_type,
        server_min_version: child_value("server-min-version"),
    })
}

// ---------------------------------------------------------------------------------------------
// Provision: URL mapping and scripts (REFERENCE §3.8, §3.9).

fn parse_provision(ctx: &mut Ctx, node: Node) -> Provision {
    let mut provision = Provision::default();
    for child in elements(node) {
        if !is_core(child) {
            provision.other.push(foreign(child));
            continue;
        }
        match child.tag_name().name() {
            "url-mapping" if provision.url_mapping.is_none() => {
                provision.url_mapping = parse_url_mapping(ctx, child);
            }
            "configuration-script" => provision.configuration_script = parse_script(ctx, child),
            "verification-script" => provision.verification_script = parse_script(ctx, child),
            "resource-script" => provision.resource_script = parse_script(ctx, child),
            "backup-script" => provision.backup_script = parse_script(ctx, child),
            _ => ctx.unknown_element(child, "provision"),
        }
    }
    provision
}

fn parse_script(ctx: &mut Ctx, node: Node) -> Option<ScriptDecl> {
    let element = node.tag_name().name();
    let name = ctx.required_attr(node, "name");
    let language = child_text(node, "script-language");
    if language.is_none() {
        let hint = if core_child(node, "configuration-script-language").is_some() {
            " (it has the APS 1.0 element `configuration-script-language`, which is not valid here)"
        } else {
            ""
        };
        let message = format!("`{element}` has no `script-language`{hint}");
        ctx.error(node, &lint::META_SCRIPT_LANGUAGE, message);
    }
    for child in elements(node) {
        // `configuration-script-language` is already named by the error above.
        let known = [
            "script-language",
            "status-control",
            "structured-output",
            "sufficient",
            "configuration-script-language",
        ];
        if !is_core(child) || !known.contains(&child.tag_name().name()) {
            ctx.unknown_element(child, element);
        }
    }
    Some(ScriptDecl {
        name: name?,
        language: language?,
        status_control: core_child(node, "status-control").is_some(),
        structured_output: core_child(node, "structured-output").is_some(),
        sufficient: core_child(node, "sufficient").is_some(),
        poll_interval: attr(node, "poll-interval"),
    })
}

fn parse_url_mapping(ctx: &mut Ctx, node: Node) -> Option<UrlMapping> {
    let mut roots = core_children(node, "mapping");
    let Some(root) = roots.next() else {
        ctx.error(
            node,
            &lint::META_MISSING_ELEMENT,
            "`url-mapping` has no `mapping`",
        );
        return None;
    };
    if let Some(extra) = roots.next() {
        ctx.error(
            extra,
            &lint::META_MAPPING,
            "`url-mapping` has more than one root `mapping`",
        );
    }
    for child in elements(node) {
        let known = ["default-prefix", "installed-size", "mapping"];
        if !is_core(child) || !known.contains(&child.tag_name().name()) {
            ctx.unknown_element(child, "url-mapping");
        }
    }
    parse_url_mapping_parts(ctx, node, node, root)
}

/// `default-prefix` and `installed-size` from `holder` (url-mapping, or the 1.0 application),
/// the mapping tree from `root`, and the D4 name collision check.
fn parse_url_mapping_parts(
    ctx: &mut Ctx,
    holder: Node,
    report_at: Node,
    root: Node,
) -> Option<UrlMapping> {
    let default_prefix =
        core_child(holder, "default-prefix").map(|n| text(n).trim_matches('/').to_owned());
    let installed_size = match core_child(holder, "installed-size") {
        Some(n) => Some(ctx.u64_text(n)?),
        None => None,
    };
    let url_mapping = UrlMapping {
        default_prefix,
        installed_size,
        root: parse_mapping(ctx, root, true),
    };
    // Q21: every exported WEB_ name (primary or alias) must belong to exactly one mapping.
    let mut names: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for (index, entry) in url_mapping.entries().into_iter().enumerate() {
        let Some(variable) = &entry.web_variable else {
            continue;
        };
        for name in variable.names() {
            let owner = (index, entry.url_path.clone());
            if let Some((other, other_path)) = names.insert(name.to_owned(), owner) {
                if other != index {
                    let message = format!(
                        "mappings `{other_path}` and `{}` both export `{name}`",
                        entry.url_path
                    );
                    ctx.error(report_at, &lint::META_NAME_COLLISION, message);
                }
            }
        }
    }
    Some(url_mapping)
}

fn parse_mapping(ctx: &mut Ctx, node: Node, is_root: bool) -> Mapping {
    let url = ctx.required_attr(node, "url").unwrap_or_default();
    if is_root && url != "/" {
        let message = format!("the root mapping has url `{url}`; it must be `/`");
        ctx.error(node, &lint::META_MAPPING, message);
    }
    let is_virtual = match node.attribute("virtual").map(str::trim) {
        None | Some("" | "false") => false,
        Some("virtual" | "true") => true,
        Some(other) => {
            let message = format!("mapping `{url}` has virtual=`{other}`, not `virtual`");
            ctx.error(node, &lint::META_INVALID_VALUE, message);
            false
        }
    };
    if !is_root && !url.is_empty() {
        check_child_url(ctx, node, &url, is_virtual);
    }
    check_mapping_path(ctx, node, &url);
    let mut mapping = Mapping {
        url,
        path: path_attr(node),
        is_virtual,
        php_handler: None,
        php_permissions: None,
        cgi_handler: None,
        other_aspects: Vec::new(),
        children: Vec::new(),
    };
    for child in elements(node) {
        let name = child.tag_name().name();
        match namespace(child).as_ref() {
            ns::CORE if name == "mapping" => {
                mapping.children.push(parse_mapping(ctx, child, false));
            }
            ns::CORE => ctx.unknown_element(child, "mapping"),
            ns::PHP if name == "handler" => {
                mapping.php_handler = Some(parse_php_handler(ctx, child));
            }
            ns::PHP if name == "permissions" => {
                mapping.php_permissions = Some(PhpPermissions {
                    writable: ctx.opt_bool_attr(child, "writable"),
                    readable: ctx.opt_bool_attr(child, "readable"),
                });
            }
            ns::CGI if name == "handler" => {
                mapping.cgi_handler = Some(parse_cgi_handler(ctx, child));
            }
            _ => mapping.other_aspects.push(foreign(child)),
        }
    }
    mapping
}

/// A child mapping URL must be relative segments without `.`/`..` (it becomes a deployed path),
/// and, unless virtual, must not put `=` into its `WEB_` variable name.
fn check_child_url(ctx: &mut Ctx, node: Node, url: &str, is_virtual: bool) {
    if let Some(problem) = lint::relative_path_problem(url) {
        let message = format!(
            "mapping url `{}` {problem}; it must be a relative path without empty, `.` or `..` segments",
            url.escape_debug()
        );
        ctx.error(node, &lint::META_MAPPING, message);
    } else if let Some(problem) = lint::variable_name_problem(url).filter(|_| !is_virtual) {
        let message = format!(
            "mapping url `{}` {problem}, which cannot be part of its environment variable name `WEB_…_DIR`",
            url.escape_debug()
        );
        ctx.error(node, &lint::META_VARIABLE_NAME, message);
    }
}

/// A mapping's `path` must be a plain relative package folder: deployment matches archive
/// entries against it literally, so `htdocs/../scripts` or `./htdocs` would fail every install.
fn check_mapping_path(ctx: &mut Ctx, node: Node, url: &str) {
    let Some(attribute) = node.attribute_node("path") else {
        return;
    };
    let path = attribute.value().trim();
    if let Some(problem) = lint::relative_path_problem(path) {
        let message = format!(
            "mapping `{}` has path `{}`, which {problem}; it must be a package folder such as `htdocs`",
            url.escape_debug(),
            path.escape_debug()
        );
        ctx.error_at(attribute.range().start, &lint::META_MAPPING_PATH, message);
    }
}

fn parse_php_handler(ctx: &mut Ctx, node: Node) -> PhpHandler {
    let mut extensions = Vec::new();
    let mut disabled = false;
    for child in elements(node) {
        match (namespace(child).as_ref(), child.tag_name().name()) {
            (ns::PHP, "extension") => extensions.push(text(child)),
            (ns::PHP, "disabled") => disabled = true,
            _ => ctx.unknown_element(child, "php:handler"),
        }
    }
    if disabled {
        PhpHandler::Disabled
    } else {
        PhpHandler::Extensions(extensions)
    }
}

fn parse_cgi_handler(ctx: &mut Ctx, node: Node) -> CgiHandler {
    let mut extensions = Vec::new();
    let mut result = None;
    for child in elements(node) {
        match (namespace(child).as_ref(), child.tag_name().name()) {
            (ns::CGI, "disabled") => result = Some(CgiHandler::Disabled),
            (ns::CGI, "all-files") => {
                result = Some(CgiHandler::AllFiles {
                    handler_type: cgi_handler_type(ctx, child),
                });
            }
            (ns::CGI, "extension") => extensions.push(CgiExtension {
                extension: text(child),
                handler_type: cgi_handler_type(ctx, child),
            }),
            _ => ctx.unknown_element(child, "cgi:handler"),
        }
    }
    result.unwrap_or(CgiHandler::Extensions(extensions))
}

/// `h:handler-type`, when present and valid (an invalid value records an error).
fn cgi_handler_type(ctx: &mut Ctx, node: Node) -> Option<CgiHandlerType> {
    let raw = node.attribute((ns::CGI_HANDLERS, "handler-type"))?;
    let kind = match raw.trim() {
        "executable" => CgiHandlerType::Executable,
        "perl" => CgiHandlerType::Perl,
        "php" => CgiHandlerType::Php,
        "python" => CgiHandlerType::Python,
        "ssi" => CgiHandlerType::Ssi,
        other => {
            let message = format!("CGI handler type `{other}` is not known");
            ctx.error(node, &lint::META_INVALID_VALUE, message);
            return None;
        }
    };
    Some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::Severity;

    const HEAD: &str = r#"<application xmlns="http://apstandard.com/ns/1" version="1.2">"#;

    /// A minimal valid 1.2 document with `body` inside the service.
    fn doc12(body: &str) -> String {
        format!(
            r#"{HEAD}<name>X</name><version>1.0</version><release>1</release>
<service id="main">{body}</service></application>"#
        )
    }

    fn parse(text: &str) -> Result<Parsed, ParseError> {
        parse_app_meta(text.as_bytes(), "APP-META.xml")
    }

    fn rules(findings: &[Finding]) -> Vec<&str> {
        findings.iter().map(|f| f.rule.as_str()).collect()
    }

    fn all_errors(text: &str) -> Vec<ParseError> {
        parse_outcome(text.as_bytes(), "APP-META.xml").errors
    }

    #[test]
    fn minimal_12_document_parses() {
        let parsed = parse(&doc12("")).unwrap();
        let pkg = parsed.package;
        assert_eq!(pkg.format, ApsFormat::V1_2);
        assert_eq!(
            (
                pkg.name.as_str(),
                pkg.version.as_str(),
                pkg.release.as_str()
            ),
            ("X", "1.0", "1")
        );
        assert_eq!(pkg.root_service().unwrap().id, "main");
        assert!(parsed.findings.is_empty(), "{:?}", parsed.findings);
    }

    #[test]
    fn bom_crlf_and_comment_before_root_are_tolerated_with_warnings() {
        let text = format!("\u{feff}<!-- hi -->\r\n{}", doc12("").replace('\n', "\r\n"));
        let parsed = parse(&text).unwrap();
        let found = rules(&parsed.findings);
        assert!(found.contains(&"meta-crlf"), "{found:?}");
        assert!(found.contains(&"meta-comment-before-root"), "{found:?}");
        let comment = parsed
            .findings
            .iter()
            .find(|f| f.rule == "meta-comment-before-root")
            .unwrap();
        assert_eq!((comment.line, comment.column), (Some(1), Some(1)));
    }

    #[test]
    fn namespaces_are_matched_by_uri_not_prefix() {
        let text = r#"<a:application xmlns:a="http://apstandard.com/ns/1" version="1.2">
<a:name>X</a:name><a:version>1</a:version><a:release>1</a:release>
<a:service id="s"><a:requirements xmlns:p="http://apstandard.com/ns/1/php">
<p:version min="7.4"/></a:requirements></a:service></a:application>"#;
        let pkg = parse(text).unwrap().package;
        assert_eq!(
            pkg.services[0].requirements.items,
            vec![Requirement::Php(PhpRequirement::Version {
                min: Some("7.4".into()),
                max_not_including: None
            })]
        );
        // An element with the right local name in the wrong namespace is not core.
        let wrong = doc12(
            r#"<x:settings xmlns:x="urn:other"><setting id="a" type="string"/></x:settings>"#,
        );
        let parsed = parse(&wrong).unwrap();
        assert!(parsed.package.services[0].settings.is_empty());
        assert!(rules(&parsed.findings).contains(&"meta-unknown-element"));
    }

    #[test]
    fn misspelled_namespace_is_accepted_with_a_warning() {
        let text = doc12("").replace("apstandard.com", "apsstandard.com");
        let parsed = parse(&text).unwrap();
        assert_eq!(rules(&parsed.findings), ["meta-misspelled-namespace"]);
        assert_eq!(parsed.package.name, "X");
    }

    #[test]
    fn aps2_and_foreign_roots_are_refused() {
        let aps2 = r#"<application xmlns="http://aps-standard.org/ns/2" version="2.0"><id>x</id></application>"#;
        let err = parse(aps2).unwrap_err();
        assert_eq!(err.rule, "meta-aps2");
        assert!(err.message.contains("APS 2"), "{err}");
        assert_eq!((err.line, err.column), (Some(1), Some(1)));
        let other = parse(r#"<application xmlns="urn:x"/>"#).unwrap_err();
        assert_eq!(other.rule, "meta-namespace");
        let list = parse(r#"<files xmlns="http://apstandard.com/ns/1"/>"#).unwrap_err();
        assert_eq!(list.rule, "meta-namespace");
        assert!(list.message.contains("`files`"), "{list}");
    }

    #[test]
    fn format_version_is_checked() {
        let err = parse(&doc12("").replace("version=\"1.2\"", "version=\"1.3\"")).unwrap_err();
        assert_eq!(err.rule, "meta-format-version");
        let v11 = parse(&doc12("").replace("version=\"1.2\"", "version=\"1.1\"")).unwrap();
        assert_eq!(v11.package.format, ApsFormat::V1_1);
    }

    #[test]
    fn dtd_and_entities_are_refused_never_expanded() {
        let text = r#"<?xml version="1.0"?>
<!DOCTYPE application [<!ENTITY x "boom">]>
<application xmlns="http://apstandard.com/ns/1"><name>&x;</name></application>"#;
        let err = parse(text).unwrap_err();
        assert_eq!(err.rule, "meta-dtd");
        assert_eq!((err.line, err.column), (Some(2), Some(1)));
        assert!(
            err.to_string()
                .starts_with("`APP-META.xml` line 2, column 1: "),
            "{err}"
        );
    }

    #[test]
    fn empty_invalid_utf8_and_truncated_inputs_name_the_file() {
        let empty = parse_app_meta(b"", "pkg/APP-META.xml").unwrap_err();
        assert_eq!(empty.rule, "meta-empty");
        assert!(empty.to_string().contains("`pkg/APP-META.xml`"), "{empty}");
        let bad = parse_app_meta(b"<application>\n  <name>\xff</name>", "f.xml").unwrap_err();
        assert_eq!(bad.rule, "meta-encoding");
        assert_eq!((bad.line, bad.column), (Some(2), Some(9)));
        assert_eq!(
            bad.to_string(),
            "`f.xml` line 2, column 9: the file is not valid UTF-8"
        );
        let truncated =
            parse("<application xmlns=\"http://apstandard.com/ns/1\">\n<name>X</na").unwrap_err();
        assert_eq!(truncated.rule, "meta-xml");
        assert_eq!(
            (truncated.line, truncated.column),
            (Some(2), Some(12)),
            "{truncated}"
        );
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let depth = 5000;
        let text = format!(
            "{HEAD}{}{}</application>",
            "<group>".repeat(depth),
            "</group>".repeat(depth)
        );
        let err = parse(&text).unwrap_err();
        assert_eq!(err.rule, "meta-xml");
        assert!(err.message.contains("nested"), "{err}");
        // Unclosed and malformed deep nesting is refused the same way, before roxmltree runs.
        let unclosed = format!("{HEAD}{}", "<a x='>'>".repeat(depth));
        assert_eq!(parse(&unclosed).unwrap_err().rule, "meta-xml");
        let broken = format!("{HEAD}{}", "<a x='<".repeat(depth));
        assert!(parse(&broken).is_err());
        // Self-closing tags, comments and CDATA do not count as nesting.
        let flat = doc12(&"<x:a xmlns:x='urn:x' b='/>'/><!-- <a> --><![CDATA[<a>]]>".repeat(depth));
        assert!(parse(&flat).is_ok());
    }

    #[test]
    fn missing_required_elements_are_errors_with_positions() {
        let text = format!("{HEAD}\n<version>1</version><release>1</release></application>");
        let errors = all_errors(&text);
        assert_eq!(
            errors.iter().map(|e| e.rule).collect::<Vec<_>>(),
            ["meta-missing-element", "meta-missing-element"],
            "no name, no service: {errors:?}"
        );
        assert_eq!((errors[0].line, errors[0].column), (Some(1), Some(1)));
    }

    #[test]
    fn setting_types_and_constraints_parse() {
        let parsed = parse(&doc12(
            r#"<settings>
<setting id="a" type="string" min-length="1" max-length="32" regex="^[a-z]"/>
<setting id="b" type="integer" min="1" max="9" default-value="3"/>
<setting id="c" type="boolean" default-value="1"/>
<setting id="d" type="enum" default-value="x"><choice id="x"><name>X</name></choice></setting>
<setting id="e" type="list" element-type="domain-name"/>
<group class="vcard"><name>G</name><group class="email"><setting id="f" type="email" optional="true" uniq="owner"/></group></group>
</settings>"#,
        ))
        .unwrap();
        let service = parsed.package.root_service().unwrap();
        let settings = service.all_settings();
        let ids: Vec<_> = settings.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c", "d", "e", "f"]);
        assert!(matches!(&settings[0].kind, SettingType::String(c) if c.max_length == Some(32)));
        assert_eq!(
            settings[1].kind,
            SettingType::Integer {
                min: Some(1),
                max: Some(9)
            }
        );
        assert_eq!(
            settings[2].default_value.as_deref(),
            Some("true"),
            "D6 normalisation"
        );
        assert!(
            matches!(&settings[4].kind, SettingType::List { element_type } if **element_type == SettingType::DomainName)
        );
        assert!(settings[5].optional);
        assert_eq!(settings[5].uniq, Some(Uniq::Owner));
    }

    #[test]
    fn setting_errors_unknown_type_bad_regex_duplicates() {
        let errors = all_errors(&doc12(
            r#"<settings>
<setting id="a" type="colour"/>
<setting id="b" type="string" regex="(unclosed"/>
<group><setting id="c" type="string"/></group>
<group><setting id="c" type="string"/></group>
<setting id="d" type="integer" min="x"/>
<setting id="e" type="enum"/>
</settings>"#,
        ));
        let found: Vec<_> = errors.iter().map(|e| (e.rule, e.line)).collect();
        assert_eq!(
            found,
            [
                ("meta-unknown-setting-type", Some(3)),
                ("meta-invalid-regex", Some(4)),
                ("meta-duplicate-id", Some(6)),
                ("meta-invalid-value", Some(7)),
                ("meta-missing-element", Some(8)),
            ]
        );
    }

    #[test]
    fn global_and_service_setting_ids_must_not_collide() {
        let text = format!(
            r#"{HEAD}<name>X</name><version>1</version><release>1</release>
<global-settings><setting id="url" type="string"/></global-settings>
<service id="s"><settings><setting id="url" type="string"/></settings></service></application>"#
        );
        let err = parse(&text).unwrap_err();
        assert_eq!(err.rule, "meta-name-collision");
        assert_eq!(err.line, Some(3));
    }

    #[test]
    fn duplicate_service_and_db_ids_are_errors_but_choices_may_repeat_db_ids() {
        let dup_service = format!(
            r#"{HEAD}<name>X</name><version>1</version><release>1</release>
<service id="s"/><service id="s"/></application>"#
        );
        assert_eq!(parse(&dup_service).unwrap_err().rule, "meta-duplicate-id");
        let db = |id: &str| {
            format!(
                r#"<db:db xmlns:db="http://apstandard.com/ns/1/db"><db:id>{id}</db:id><db:server-type>mysql</db:server-type></db:db>"#
            )
        };
        let dup_db = doc12(&format!(
            "<requirements>{}{}</requirements>",
            db("main"),
            db("main")
        ));
        assert_eq!(parse(&dup_db).unwrap_err().rule, "meta-duplicate-id");
        let alternatives = doc12(&format!(
            r#"<requirements><choice><requirements id="a">{}</requirements><requirements id="b">{}</requirements></choice></requirements>"#,
            db("main"),
            db("main")
        ));
        assert!(parse(&alternatives).is_ok());
        let clash = doc12(&format!(
            r#"<requirements>{}<choice><requirements id="a">{}</requirements></choice></requirements>"#,
            db("main"),
            db("main")
        ));
        assert_eq!(parse(&clash).unwrap_err().rule, "meta-duplicate-id");
    }

    #[test]
    fn php_requirements_are_typed() {
        let parsed = parse(&doc12(
            r#"<requirements xmlns:php="http://apstandard.com/ns/1/php" xmlns:apache="http://apstandard.com/ns/1/apache">
<php:memory-limit>64M</php:memory-limit><php:post_max_size>5242880</php:post_max_size>
<php:safe-mode>false</php:safe-mode><php:max-execution-time>30</php:max-execution-time>
<php:function>mail</php:function><php:frobnicate/>
<apache:required-module>mod_rewrite</apache:required-module><apache:htaccess/>
</requirements>"#,
        ))
        .unwrap();
        let items = &parsed.package.services[0].requirements.items;
        assert_eq!(
            items[..5],
            [
                Requirement::Php(PhpRequirement::Size {
                    directive: PhpSizeDirective::MemoryLimit,
                    bytes: 64 * 1024 * 1024
                }),
                Requirement::Php(PhpRequirement::Size {
                    directive: PhpSizeDirective::PostMaxSize,
                    bytes: 5_242_880
                }),
                Requirement::Php(PhpRequirement::Flag {
                    directive: PhpFlag::SafeMode,
                    value: false
                }),
                Requirement::Php(PhpRequirement::MaxExecutionTime(30)),
                Requirement::Php(PhpRequirement::Function("mail".into())),
            ]
        );
        assert!(
            matches!(&items[5], Requirement::Other(el) if el.name == "frobnicate" && el.namespace == ns::PHP)
        );
        assert_eq!(
            items[6..],
            [
                Requirement::Apache(ApacheRequirement::RequiredModule("mod_rewrite".into())),
                Requirement::Apache(ApacheRequirement::Htaccess)
            ]
        );
        let found = rules(&parsed.findings);
        assert!(found.contains(&"php-post-max-size-underscore"), "{found:?}");
        assert!(
            found.contains(&"aspect-unsupported"),
            "unknown php element: {found:?}"
        );
        let bad = parse(&doc12(
            r#"<requirements xmlns:php="http://apstandard.com/ns/1/php"><php:safe-mode>maybe</php:safe-mode></requirements>"#,
        ))
        .unwrap_err();
        assert_eq!(bad.rule, "meta-invalid-value");
    }

    #[test]
    fn mapping_rules() {
        let mapping = |inner: &str| {
            doc12(&format!(
                "<provision><url-mapping><default-prefix>/Blog/</default-prefix><installed-size>10</installed-size>{inner}</url-mapping></provision>"
            ))
        };
        let ok = parse(&mapping(
            r#"<mapping url="/" path="htdocs" xmlns:php="http://apstandard.com/ns/1/php" xmlns:cgi="http://apstandard.com/ns/1/cgi" xmlns:h="http://apstandard.com/ns/1/cgi/handlers">
<php:handler><php:extension>php</php:extension></php:handler>
<mapping url="tmp"><php:permissions writable="true"/><php:handler><php:disabled/></php:handler></mapping>
<mapping url="cgi-bin"><cgi:handler><cgi:extension h:handler-type="perl">pl</cgi:extension></cgi:handler></mapping>
<mapping url="config.php" virtual="virtual"/></mapping>"#,
        ))
        .unwrap();
        let um = ok.package.services[0]
            .provision
            .url_mapping
            .clone()
            .unwrap();
        assert_eq!(um.default_prefix.as_deref(), Some("Blog"));
        assert_eq!(um.installed_size, Some(10));
        assert_eq!(
            um.root.php_handler,
            Some(PhpHandler::Extensions(vec!["php".into()]))
        );
        assert_eq!(um.root.children[0].php_handler, Some(PhpHandler::Disabled));
        assert_eq!(
            um.root.children[0].php_permissions,
            Some(PhpPermissions {
                writable: Some(true),
                readable: None
            })
        );
        assert_eq!(
            um.root.children[1].cgi_handler,
            Some(CgiHandler::Extensions(vec![CgiExtension {
                extension: "pl".into(),
                handler_type: Some(CgiHandlerType::Perl)
            }]))
        );
        assert!(um.root.children[2].is_virtual);

        let not_root = parse(&mapping(r#"<mapping url="/x" path="htdocs"/>"#)).unwrap_err();
        assert_eq!(not_root.rule, "meta-mapping");
        let dotdot = parse(&mapping(
            r#"<mapping url="/" path="htdocs"><mapping url="../etc"/></mapping>"#,
        ))
        .unwrap_err();
        assert_eq!(dotdot.rule, "meta-mapping");
        let size = parse(&mapping(r#"<mapping url="/"/>"#).replace(">10<", ">%INSTALL_SIZE%<"))
            .unwrap_err();
        assert_eq!(size.rule, "meta-unfilled-template");
        let size = parse(&mapping(r#"<mapping url="/"/>"#).replace(">10<", ">ten<")).unwrap_err();
        assert_eq!(size.rule, "meta-invalid-value");
        let twice = parse(&mapping(
            r#"<mapping url="/"><mapping url="wp-content"/><mapping url="wp-content/"/></mapping>"#,
        ))
        .unwrap_err();
        assert_eq!(twice.rule, "meta-name-collision");
        let collide = parse(&mapping(
            r#"<mapping url="/"><mapping url="a-b"/><mapping url="a_b"/></mapping>"#,
        ))
        .unwrap_err();
        assert_eq!(collide.rule, "meta-name-collision");
        assert!(collide.message.contains("WEB__a_b_DIR"), "{collide}");
    }

    #[test]
    fn script_declarations_need_a_language() {
        let ok = parse(&doc12(
            r#"<provision><configuration-script name="configure"><script-language>php</script-language><status-control/></configuration-script>
<resource-script name="r.php" poll-interval="3h"><script-language>php</script-language></resource-script>
<backup-script name="b.php"><script-language>php</script-language><sufficient/></backup-script></provision>"#,
        ))
        .unwrap();
        let provision = &ok.package.services[0].provision;
        let cs = provision.configuration_script.as_ref().unwrap();
        assert!(cs.status_control && !cs.structured_output);
        assert_eq!(
            provision
                .resource_script
                .as_ref()
                .unwrap()
                .poll_interval
                .as_deref(),
            Some("3h")
        );
        assert!(provision.backup_script.as_ref().unwrap().sufficient);
        let old_style = parse(&doc12(
            r#"<provision><configuration-script name="configure.php"><configuration-script-language>php</configuration-script-language></configuration-script></provision>"#,
        ))
        .unwrap_err();
        assert_eq!(old_style.rule, "meta-script-language");
        assert!(
            old_style.message.contains("configuration-script-language"),
            "{old_style}"
        );
    }

    #[test]
    fn unfilled_version_templates_are_errors() {
        for placeholder in ["__VERSION__", "{VERSION}", "%PRODUCT_VERSION%"] {
            let text = doc12("").replace(
                "<version>1.0</version>",
                &format!("<version>{placeholder}</version>"),
            );
            assert_eq!(
                parse(&text).unwrap_err().rule,
                "meta-unfilled-template",
                "{placeholder}"
            );
        }
        assert!(has_template_token("%A_B%"));
        assert!(!has_template_token("{spampanel_url}/x"));
        assert!(!has_template_token("5.2.3"));
        assert!(!has_template_token("100%"));
    }

    #[test]
    fn flat_10_document_is_normalised() {
        let text = r#"<application xmlns="http://apstandard.com/ns/1">
<name>Old</name><version>9.1</version><release>2</release>
<packager-uri>uuid:1</packager-uri><default-prefix>/old/</default-prefix>
<configuration-script-language>php</configuration-script-language>
<upgradable-from version="9.0.0" release="1"/><upgradable-from version="8"/>
<entry-points><entry><path>admin/</path><label>Admin</label></entry></entry-points>
<settings><setting id="g" type="string" global="true"/></settings>
<mapping url="/" path="htdocs"/></application>"#;
        let pkg = parse(text).unwrap().package;
        assert_eq!(pkg.format, ApsFormat::V1_0);
        assert!(pkg.upgrade.is_none());
        assert_eq!(
            pkg.upgradable_from,
            [
                UpgradableFrom {
                    version: "9.0.0".into(),
                    release: Some("1".into())
                },
                UpgradableFrom {
                    version: "8".into(),
                    release: None
                }
            ]
        );
        assert_eq!(pkg.services.len(), 1);
        let root = &pkg.services[0];
        assert_eq!(root.id, ROOT_SERVICE_ID);
        assert_eq!(root.presentation.entry_points[0].dst, "/admin/");
        assert!(root.all_settings()[0].global);
        let script = root.provision.configuration_script.as_ref().unwrap();
        assert_eq!(
            (script.name.as_str(), script.language.as_str()),
            ("configure", "php")
        );
        let um = root.provision.url_mapping.as_ref().unwrap();
        assert_eq!(um.default_prefix.as_deref(), Some("old"));
        assert_eq!(
            pkg.identity(),
            crate::model::Identity::NameAndPackager {
                name: "Old".into(),
                packager_uri: Some("uuid:1".into())
            }
        );
        let with_service = text.replace("<mapping url", "<service id=\"x\"/><mapping url");
        assert_eq!(parse(&with_service).unwrap_err().rule, "meta-structure");
    }

    /// Issue 7 (D16): a setting id or `db:id` with `=` passed lint and import and then broke
    /// every install; it is now an error naming the id and the variable it would make.
    #[test]
    fn issue_7_ids_that_break_variable_names_are_errors() {
        let setting = doc12(r#"<settings><setting id="a=b" type="string"/></settings>"#);
        let errors = all_errors(&setting);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].rule, "meta-variable-name");
        assert_eq!(
            errors[0].message,
            "setting id `a=b` contains `=`, which cannot be part of the environment variable name `SETTINGS_a=b`"
        );
        assert_eq!((errors[0].line, errors[0].column), (Some(2), Some(30)));
        // No extra character warning for the same id.
        let lint = lint::lint_meta(setting.as_bytes(), "APP-META.xml");
        assert_eq!(rules(&lint), ["meta-variable-name"], "{lint:?}");

        let global = format!(
            r#"{HEAD}<name>X</name><version>1.0</version><release>1</release>
<global-settings><setting id="=x" type="string"/></global-settings>
<service id="main"/></application>"#
        );
        let errors = all_errors(&global);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].rule, "meta-variable-name");
        assert!(errors[0].message.contains("`SETTINGS_=x`"), "{errors:?}");

        let child = doc12(
            r#"<service id="child"><settings><group><setting id="x=" type="string"/></group></settings></service>"#,
        );
        assert_eq!(all_errors(&child)[0].rule, "meta-variable-name");

        let db = doc12(
            r#"<requirements xmlns:db="http://apstandard.com/ns/1/db"><db:db><db:id>main=1</db:id><db:server-type>mysql</db:server-type></db:db></requirements>"#,
        );
        let errors = all_errors(&db);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].rule, "meta-variable-name");
        assert_eq!(
            errors[0].message,
            "db:id `main=1` contains `=`, which cannot be part of the environment variable name `DB_main=1_NAME`"
        );

        // Empty ids were already errors, and stay errors.
        let empty = doc12(r#"<settings><setting id=" " type="string"/></settings>"#);
        assert_eq!(all_errors(&empty)[0].rule, "meta-missing-attribute");
        let empty_db = doc12(
            r#"<requirements xmlns:db="http://apstandard.com/ns/1/db"><db:db><db:id></db:id><db:server-type>mysql</db:server-type></db:db></requirements>"#,
        );
        assert_eq!(all_errors(&empty_db)[0].rule, "meta-missing-element");
        // Other unusual characters stay warnings (REFERENCE §11 Q21).
        let dashed = doc12(r#"<settings><setting id="admin-name" type="string"/></settings>"#);
        let parsed = parse(&dashed).unwrap();
        assert_eq!(rules(&parsed.findings), ["meta-id-characters"]);
    }

    /// Issue 7 (D16): a mapping path such as `htdocs/../scripts` passed lint and import and then
    /// broke every install; paths and URLs must now be plain relative folders.
    #[test]
    fn issue_7_mapping_paths_and_urls_must_be_plain_relative_folders() {
        let mapping = |inner: &str| {
            doc12(&format!(
                "<provision><url-mapping><installed-size>10</installed-size>{inner}</url-mapping></provision>"
            ))
        };
        let root = |path: &str| mapping(&format!(r#"<mapping url="/" path="{path}"/>"#));
        for ok in ["htdocs", "htdocs/", "web/htdocs"] {
            assert!(parse(&root(ok)).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("htdocs/../scripts", "has a `..` segment"),
            ("./htdocs", "has a `.` segment"),
            ("htdocs//www", "has an empty segment"),
            ("/var/www", "is absolute"),
            ("htdocs\\www", "contains a backslash"),
            ("", "is empty"),
        ] {
            let errors = all_errors(&root(bad));
            assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
            assert_eq!(errors[0].rule, "meta-mapping-path", "{bad}");
            assert_eq!(
                errors[0].message,
                format!(
                    "mapping `/` has path `{}`, which {why}; it must be a package folder such as `htdocs`",
                    bad.escape_debug()
                )
            );
            assert!(errors[0].line.is_some() && errors[0].column.is_some());
        }
        let child_path = mapping(
            r#"<mapping url="/" path="htdocs"><mapping url="tmp" path="../tmp"/></mapping>"#,
        );
        let errors = all_errors(&child_path);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].rule, "meta-mapping-path");
        assert!(
            errors[0]
                .message
                .starts_with("mapping `tmp` has path `../tmp`")
        );

        let child_url = |url: &str, extra: &str| {
            mapping(&format!(
                r#"<mapping url="/" path="htdocs"><mapping url="{url}"{extra}/></mapping>"#
            ))
        };
        for ok in ["tmp", "tmp/", "blogs/media", "data_custom/errorlog.php"] {
            assert!(parse(&child_url(ok, "")).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("/tmp", "is absolute"),
            ("a//b", "has an empty segment"),
            ("a/./b", "has a `.` segment"),
            ("a/../b", "has a `..` segment"),
            ("a\\b", "contains a backslash"),
        ] {
            let errors = all_errors(&child_url(bad, ""));
            assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
            assert_eq!(errors[0].rule, "meta-mapping", "{bad}");
            assert!(errors[0].message.contains(why), "{bad}: {errors:?}");
        }
        let equals = all_errors(&child_url("a=b", ""));
        assert_eq!(equals.len(), 1, "{equals:?}");
        assert_eq!(equals[0].rule, "meta-variable-name");
        assert!(
            equals[0]
                .message
                .starts_with("mapping url `a=b` contains `=`")
        );
        // A virtual mapping exports no variable, so `=` does not matter there.
        assert!(parse(&child_url("a=b", r#" virtual="virtual""#)).is_ok());
    }

    #[test]
    fn id_warnings() {
        let text = doc12(r#"<settings><setting id="admin-name" type="string"/></settings>"#)
            .replace("<name>X</name>", "<id>dolibarr</id><name>X</name>");
        let parsed = parse(&text).unwrap();
        let found = rules(&parsed.findings);
        assert!(found.contains(&"meta-id-not-uri"), "{found:?}");
        assert!(found.contains(&"meta-id-characters"), "{found:?}");
        assert!(
            parsed
                .findings
                .iter()
                .all(|f| f.severity == Severity::Warning)
        );
        assert!(looks_like_uri("uuid:714f0a7b"));
        assert!(looks_like_uri("http://wordpress.org/"));
        assert!(!looks_like_uri("ocStore"));
        assert!(!looks_like_uri("microsoft:"));
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("67108864"), Some(67_108_864));
        assert_eq!(parse_byte_size("64M"), Some(64 << 20));
        assert_eq!(parse_byte_size("1g"), Some(1 << 30));
        assert_eq!(parse_byte_size("-1"), None);
        assert_eq!(parse_byte_size("M"), None);
        assert_eq!(parse_byte_size(""), None);
    }

    #[test]
    fn line_index_positions_count_characters() {
        let text = "ab\nçd\n\nx";
        let index = LineIndex::new(text);
        assert_eq!(index.position(text, 0), (1, 1));
        assert_eq!(index.position(text, 3), (2, 1));
        assert_eq!(
            index.position(text, 5),
            (2, 2),
            "ç is two bytes, one column"
        );
        assert_eq!(index.position(text, 7), (3, 1));
        assert_eq!(index.position(text, 8), (4, 1));
    }
}
