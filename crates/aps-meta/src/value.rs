//! Setting types with their constraints, typed setting values, and input validation.
//!
//! Main decision: a raw string becomes a [`SettingValue`] only through [`parse_value`] (one
//! value against one type) or [`validate`] (a whole form against a list of settings, returning
//! every error at once). Values reach scripts only as [`SettingValue::encode`] output, the D6
//! encoding: booleans `true`/`false`, enum = choice id, list = elements joined by `,`, numbers as
//! decimal text. Password values never appear in `Debug` output or error messages.
//!
//! Every value is capped at [`MAX_VALUE_BYTES`] whatever its setting declares, because values
//! travel to scripts as environment strings and Linux refuses to start a program with one longer
//! than 128 KiB (`MAX_ARG_STRLEN`) or with all of them together near 2 MiB: a larger value would
//! pass validation and only fail after the files are deployed.
//!
//! Known gaps: `charset` is parsed but not enforced (REFERENCE §11 Q12); `protected` (who may
//! change a value after install) is an access rule for the caller, not checked here; e-mail and
//! domain syntax are practical checks, not full RFC 5322 / IDNA validation.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::{LocalizedText, Setting};

/// The largest value, in UTF-8 bytes, that any setting accepts (64 KiB), whatever its own
/// `max-length`.
///
/// Values reach scripts as `SETTINGS_<id>=<value>` environment strings; Linux caps one such
/// string at 128 KiB (`MAX_ARG_STRLEN`) and all of them together with the arguments near 2 MiB,
/// so half the per-string limit leaves room for the name and for several large values at once.
/// The whole environment is capped separately by the operations that build it.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// The data type of a setting, with the constraints that apply to it (REFERENCE §3.5.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum SettingType {
    /// `true`/`false` (input also `1`/`0`).
    Boolean,
    /// Free text with optional length and pattern constraints.
    String(TextConstraints),
    /// Like `string`; masked in UIs and redacted in logs.
    Password(TextConstraints),
    /// Decimal integer with inclusive bounds.
    Integer {
        /// Inclusive lower bound.
        min: Option<i64>,
        /// Inclusive upper bound.
        max: Option<i64>,
    },
    /// Decimal number with inclusive bounds.
    Float {
        /// Inclusive lower bound.
        min: Option<f64>,
        /// Inclusive upper bound.
        max: Option<f64>,
    },
    /// E-mail address.
    Email,
    /// DNS domain name.
    DomainName,
    /// Host name or IP address; `host:port` is tolerated (REFERENCE §3.5.2).
    HostName,
    /// One of a fixed list of choices; the value is the choice id.
    Enum {
        /// Allowed choices in document order.
        choices: Vec<EnumChoice>,
    },
    /// Not editable; shown as text; the value is the default.
    StaticText,
    /// Never shown in any UI; still passed to scripts.
    Hidden,
    /// A list of values of one element type, encoded joined by `,`.
    List {
        /// Type of every element (`element-type`, `string` when absent).
        element_type: Box<SettingType>,
    },
}

impl SettingType {
    /// The APS name of the type (`"string"`, `"domain-name"` …).
    pub fn name(&self) -> &'static str {
        match self {
            SettingType::Boolean => "boolean",
            SettingType::String(_) => "string",
            SettingType::Password(_) => "password",
            SettingType::Integer { .. } => "integer",
            SettingType::Float { .. } => "float",
            SettingType::Email => "email",
            SettingType::DomainName => "domain-name",
            SettingType::HostName => "host-name",
            SettingType::Enum { .. } => "enum",
            SettingType::StaticText => "static-text",
            SettingType::Hidden => "hidden",
            SettingType::List { .. } => "list",
        }
    }

    /// Whether values of this type are secrets (passwords, or lists of them).
    pub fn is_secret(&self) -> bool {
        match self {
            SettingType::Password(_) => true,
            SettingType::List { element_type } => element_type.is_secret(),
            _ => false,
        }
    }
}

/// One allowed value of an `enum` setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnumChoice {
    /// The value passed to scripts.
    pub id: String,
    /// Display names per language.
    pub names: Vec<LocalizedText>,
}

/// Constraints of `string` and `password` settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TextConstraints {
    /// Minimum length in Unicode scalar values.
    pub min_length: Option<u32>,
    /// Maximum length in Unicode scalar values.
    pub max_length: Option<u32>,
    /// Pattern the value must match somewhere (unanchored unless the pattern anchors itself).
    pub regex: Option<SettingRegex>,
    /// Declared character set; parsed, not enforced (REFERENCE §11 Q12).
    pub charset: Option<String>,
}

/// A compiled setting pattern that keeps its source text (compared and serialized by source).
#[derive(Clone)]
pub struct SettingRegex {
    source: String,
    compiled: regex::Regex,
}

impl SettingRegex {
    /// Compiles a pattern with the `regex` crate (Perl-like syntax, no look-around).
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        Ok(SettingRegex {
            source: source.to_owned(),
            compiled: regex::Regex::new(source)?,
        })
    }

    /// The pattern as written in the metadata.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the pattern matches anywhere in `value` (unanchored, REFERENCE §11 Q12).
    pub fn is_match(&self, value: &str) -> bool {
        self.compiled.is_match(value)
    }
}

impl fmt::Debug for SettingRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SettingRegex").field(&self.source).finish()
    }
}

impl PartialEq for SettingRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Serialize for SettingRegex {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for SettingRegex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        SettingRegex::new(&source).map_err(serde::de::Error::custom)
    }
}

/// A validated setting value.
///
/// `Debug` never shows the text of a [`SettingValue::Password`].
#[derive(Clone, PartialEq)]
pub enum SettingValue {
    /// An empty value of an `optional` setting (or an empty `static-text`).
    Empty,
    /// A boolean.
    Boolean(bool),
    /// Text of a `string`, `email`, `domain-name`, `host-name`, `static-text` or `hidden` setting.
    Text(String),
    /// A password in clear text (scripts hash it themselves).
    Password(String),
    /// An integer.
    Integer(i64),
    /// A finite decimal number.
    Float(f64),
    /// The id of the chosen enum choice.
    Enum(String),
    /// List elements in order.
    List(Vec<SettingValue>),
}

impl SettingValue {
    /// The D6 encoding passed to scripts in `SETTINGS_<id>` (REFERENCE §5.3).
    pub fn encode(&self) -> String {
        match self {
            SettingValue::Empty => String::new(),
            SettingValue::Boolean(b) => if *b { "true" } else { "false" }.to_owned(),
            SettingValue::Text(s) | SettingValue::Password(s) | SettingValue::Enum(s) => s.clone(),
            SettingValue::Integer(i) => i.to_string(),
            SettingValue::Float(x) => x.to_string(),
            SettingValue::List(items) => items
                .iter()
                .map(SettingValue::encode)
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    /// Whether the value is (or contains) a password.
    pub fn is_secret(&self) -> bool {
        match self {
            SettingValue::Password(_) => true,
            SettingValue::List(items) => items.iter().any(SettingValue::is_secret),
            _ => false,
        }
    }
}

impl fmt::Debug for SettingValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingValue::Empty => f.write_str("Empty"),
            SettingValue::Boolean(b) => f.debug_tuple("Boolean").field(b).finish(),
            SettingValue::Text(s) => f.debug_tuple("Text").field(s).finish(),
            SettingValue::Password(_) => f.debug_tuple("Password").field(&"***").finish(),
            SettingValue::Integer(i) => f.debug_tuple("Integer").field(i).finish(),
            SettingValue::Float(x) => f.debug_tuple("Float").field(x).finish(),
            SettingValue::Enum(s) => f.debug_tuple("Enum").field(s).finish(),
            SettingValue::List(items) => f.debug_tuple("List").field(items).finish(),
        }
    }
}

/// Why a value was refused. Messages never contain the refused value itself.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingProblem {
    /// The input names a setting the package does not declare.
    #[error("the package declares no such setting")]
    Unknown,
    /// No value was given, there is no default and the setting is not optional.
    #[error("a value is required")]
    Required,
    /// The value contains a NUL character (D6).
    #[error("the value contains a NUL character")]
    ContainsNul,
    /// Larger than [`MAX_VALUE_BYTES`], whatever the setting's own constraints.
    #[error(
        "the value is {bytes} bytes long; at most {max} bytes are allowed for any setting, because values are passed to scripts in their environment"
    )]
    TooLarge {
        /// Size of the value in UTF-8 bytes.
        bytes: usize,
        /// The cap, [`MAX_VALUE_BYTES`].
        max: usize,
    },
    /// Shorter than `min-length`.
    #[error("the value is {length} characters long; at least {min} are required")]
    TooShort {
        /// Length of the value in Unicode scalar values.
        length: usize,
        /// Declared minimum.
        min: u32,
    },
    /// Longer than `max-length`.
    #[error("the value is {length} characters long; at most {max} are allowed")]
    TooLong {
        /// Length of the value in Unicode scalar values.
        length: usize,
        /// Declared maximum.
        max: u32,
    },
    /// Does not match `regex`.
    #[error("the value does not match the pattern `{pattern}`")]
    PatternMismatch {
        /// The declared pattern.
        pattern: String,
    },
    /// Not `true`, `false`, `1` or `0`.
    #[error("the value is not a boolean (true, false, 1 or 0)")]
    NotBoolean,
    /// Not a decimal integer in range of a 64-bit integer.
    #[error("the value is not a decimal integer")]
    NotInteger,
    /// Not a finite decimal number.
    #[error("the value is not a decimal number")]
    NotNumber,
    /// Below `min`.
    #[error("the value is below the minimum {min}")]
    BelowMin {
        /// Declared minimum, as text.
        min: String,
    },
    /// Above `max`.
    #[error("the value is above the maximum {max}")]
    AboveMax {
        /// Declared maximum, as text.
        max: String,
    },
    /// Not an e-mail address.
    #[error("the value is not an e-mail address")]
    NotEmail,
    /// Not a domain name.
    #[error("the value is not a domain name")]
    NotDomainName,
    /// Not a host name, IP address or `host:port`.
    #[error("the value is not a host name or IP address")]
    NotHostName,
    /// Not one of the enum choice ids.
    #[error("the value is not one of the choices {}", choices.join(", "))]
    NotAChoice {
        /// The allowed choice ids.
        choices: Vec<String>,
    },
    /// A list element contains `,`, which is the list separator (REFERENCE §11 Q15).
    #[error("list element {index} contains a comma, which separates list elements")]
    CommaInListElement {
        /// 1-based position of the element.
        index: usize,
    },
    /// A list element failed its element type.
    #[error("list element {index}: {problem}")]
    ListElement {
        /// 1-based position of the element.
        index: usize,
        /// What is wrong with the element.
        problem: Box<SettingProblem>,
    },
    /// The setting is installation-only and this is a reconfiguration.
    #[error("the setting can only be set at installation")]
    InstallationOnly,
    /// The setting is `static-text` and the input differs from its text.
    #[error("the setting is static text and cannot be changed")]
    NotEditable,
    /// The setting takes its value from another setting and cannot be given.
    #[error("the setting takes its value from setting `{source_id}` and cannot be given")]
    ValueFromOtherSetting {
        /// The referenced setting id.
        source_id: String,
    },
    /// The setting referenced by `value-of-setting` has no value.
    #[error("the setting takes its value from setting `{source_id}`, which has no value")]
    SourceMissing {
        /// The referenced setting id.
        source_id: String,
    },
    /// Another instance in the `uniq` scope already uses this value.
    #[error("the value is already used by another instance")]
    NotUnique,
}

/// A refused value, naming the setting.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("setting `{setting}`: {problem}")]
pub struct SettingError {
    /// The setting id (as given by the caller for unknown settings).
    pub setting: String,
    /// What is wrong.
    pub problem: SettingProblem,
}

/// Which operation the values are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValidationMode {
    /// Installation: every setting is asked, `installation-only` included.
    #[default]
    Install,
    /// Reconfiguration: `installation-only` settings are refused and left out of the result.
    Reconfigure,
}

/// Context for [`validate`] beyond the form itself.
#[derive(Clone, Default)]
pub struct ValidateOptions {
    /// Install or reconfigure.
    pub mode: ValidationMode,
    /// Per setting id, the encoded values other instances already use, already filtered by the
    /// setting's `uniq` scope (`global`: instances of the same package identity; `owner`: those
    /// of the same owner). Only consulted for settings that declare `uniq`. List values are
    /// compared element by element.
    pub taken: BTreeMap<String, BTreeSet<String>>,
    /// Encoded values of enclosing declarations (ancestor services, then global settings),
    /// consulted by `value-of-setting` when the referenced id is not among the validated settings.
    pub inherited: BTreeMap<String, String>,
}

impl fmt::Debug for ValidateOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may be secrets: show only which settings they are for.
        f.debug_struct("ValidateOptions")
            .field("mode", &self.mode)
            .field("taken", &self.taken.keys().collect::<Vec<_>>())
            .field("inherited", &self.inherited.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Parses one non-empty raw value against a type and its constraints.
///
/// Does not apply defaults, `optional` or `uniq`; see [`validate`] for that. Refuses values
/// larger than [`MAX_VALUE_BYTES`] before any other check.
pub fn parse_value(kind: &SettingType, raw: &str) -> Result<SettingValue, SettingProblem> {
    check_size(raw)?;
    if raw.contains('\0') {
        return Err(SettingProblem::ContainsNul);
    }
    match kind {
        SettingType::Boolean => match raw {
            "true" | "1" => Ok(SettingValue::Boolean(true)),
            "false" | "0" => Ok(SettingValue::Boolean(false)),
            _ => Err(SettingProblem::NotBoolean),
        },
        SettingType::String(c) => check_text(c, raw).map(|()| SettingValue::Text(raw.to_owned())),
        SettingType::Password(c) => {
            check_text(c, raw).map(|()| SettingValue::Password(raw.to_owned()))
        }
        SettingType::Integer { min, max } => {
            let value = parse_integer(raw).ok_or(SettingProblem::NotInteger)?;
            check_bounds(value, *min, *max)?;
            Ok(SettingValue::Integer(value))
        }
        SettingType::Float { min, max } => {
            let value = parse_float(raw).ok_or(SettingProblem::NotNumber)?;
            check_bounds(value, *min, *max)?;
            Ok(SettingValue::Float(value))
        }
        SettingType::Email => is_email(raw)
            .then(|| SettingValue::Text(raw.to_owned()))
            .ok_or(SettingProblem::NotEmail),
        SettingType::DomainName => is_domain_name(raw)
            .then(|| SettingValue::Text(raw.to_owned()))
            .ok_or(SettingProblem::NotDomainName),
        SettingType::HostName => is_host_name(raw)
            .then(|| SettingValue::Text(raw.to_owned()))
            .ok_or(SettingProblem::NotHostName),
        SettingType::Enum { choices } => {
            if choices.iter().any(|c| c.id == raw) {
                Ok(SettingValue::Enum(raw.to_owned()))
            } else {
                Err(SettingProblem::NotAChoice {
                    choices: choices.iter().map(|c| c.id.clone()).collect(),
                })
            }
        }
        SettingType::StaticText | SettingType::Hidden => Ok(SettingValue::Text(raw.to_owned())),
        SettingType::List { element_type } => parse_list(element_type, raw),
    }
}

/// Validates a whole form: every setting of `settings` against `input`, all errors at once.
///
/// Rules: an input id that is not among `settings` is an error; a missing or empty value takes
/// the setting's non-empty default; a setting still without value is an error unless it is
/// `optional` (then [`SettingValue::Empty`]); `installation-only` settings are refused and
/// omitted on reconfiguration; `value-of-setting` settings are never taken from input and copy
/// the referenced setting's value (from this form, else [`ValidateOptions::inherited`]);
/// `static-text` takes its text from the default; `uniq` settings are checked against
/// [`ValidateOptions::taken`]; every value (given, default or copied) larger than
/// [`MAX_VALUE_BYTES`] is refused, whatever the setting's `max-length`.
pub fn validate(
    settings: &[&Setting],
    input: &BTreeMap<String, String>,
    opts: &ValidateOptions,
) -> Result<BTreeMap<String, SettingValue>, Vec<SettingError>> {
    let mut errors = Vec::new();
    let mut values = BTreeMap::new();
    let mut error = |setting: &str, problem| {
        errors.push(SettingError {
            setting: setting.to_owned(),
            problem,
        });
    };
    for id in input.keys() {
        if !settings.iter().any(|s| &s.id == id) {
            error(id, SettingProblem::Unknown);
        }
    }
    let mut copies = Vec::new();
    for setting in settings {
        let given = input.get(&setting.id);
        if setting.installation_only && opts.mode == ValidationMode::Reconfigure {
            if given.is_some() {
                error(&setting.id, SettingProblem::InstallationOnly);
            }
            continue;
        }
        if let Some(source_id) = &setting.value_of_setting {
            if given.is_some() {
                let source_id = source_id.clone();
                error(
                    &setting.id,
                    SettingProblem::ValueFromOtherSetting { source_id },
                );
            } else {
                copies.push(*setting);
            }
            continue;
        }
        match resolve_one(setting, given.map(String::as_str)) {
            Ok(value) => {
                if let Err(problem) = check_unique(setting, &value, opts) {
                    error(&setting.id, problem);
                } else {
                    values.insert(setting.id.clone(), value);
                }
            }
            Err(problem) => error(&setting.id, problem),
        }
    }
    for setting in copies {
        let Some(source_id) = setting.value_of_setting.as_deref() else {
            continue;
        };
        let source = values
            .get(source_id)
            .map(SettingValue::encode)
            .or_else(|| opts.inherited.get(source_id).cloned());
        let Some(raw) = source else {
            let source_id = source_id.to_owned();
            error(&setting.id, SettingProblem::SourceMissing { source_id });
            continue;
        };
        match resolve_one(setting, Some(&raw)) {
            Ok(value) => {
                values.insert(setting.id.clone(), value);
            }
            Err(problem) => error(&setting.id, problem),
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

/// Resolves one setting from its input (or default) to a value.
fn resolve_one(setting: &Setting, given: Option<&str>) -> Result<SettingValue, SettingProblem> {
    if let SettingType::StaticText = setting.kind {
        let text = setting.default_value.clone().unwrap_or_default();
        return match given {
            Some(g) if !g.is_empty() && g != text => Err(SettingProblem::NotEditable),
            _ if text.is_empty() => Ok(SettingValue::Empty),
            _ => check_size(&text).map(|()| SettingValue::Text(text)),
        };
    }
    let default = setting.default_value.as_deref().filter(|d| !d.is_empty());
    let raw = match given {
        Some(g) if !g.is_empty() => g,
        _ => match default {
            Some(d) => d,
            None if setting.optional => return Ok(SettingValue::Empty),
            None => return Err(SettingProblem::Required),
        },
    };
    parse_value(&setting.kind, raw)
}

/// Checks a `uniq` setting's value against the values of other instances.
fn check_unique(
    setting: &Setting,
    value: &SettingValue,
    opts: &ValidateOptions,
) -> Result<(), SettingProblem> {
    if setting.uniq.is_none() || matches!(value, SettingValue::Empty) {
        return Ok(());
    }
    let Some(taken) = opts.taken.get(&setting.id) else {
        return Ok(());
    };
    let conflict = match value {
        SettingValue::List(items) => {
            let taken_items: BTreeSet<&str> = taken.iter().flat_map(|t| t.split(',')).collect();
            items
                .iter()
                .any(|i| taken_items.contains(i.encode().as_str()))
        }
        other => taken.contains(&other.encode()),
    };
    if conflict {
        Err(SettingProblem::NotUnique)
    } else {
        Ok(())
    }
}

/// Refuses a value larger than [`MAX_VALUE_BYTES`].
fn check_size(raw: &str) -> Result<(), SettingProblem> {
    if raw.len() > MAX_VALUE_BYTES {
        return Err(SettingProblem::TooLarge {
            bytes: raw.len(),
            max: MAX_VALUE_BYTES,
        });
    }
    Ok(())
}

fn check_text(c: &TextConstraints, raw: &str) -> Result<(), SettingProblem> {
    let length = raw.chars().count();
    if let Some(min) = c.min_length {
        if length < min as usize {
            return Err(SettingProblem::TooShort { length, min });
        }
    }
    if let Some(max) = c.max_length {
        if length > max as usize {
            return Err(SettingProblem::TooLong { length, max });
        }
    }
    if let Some(re) = &c.regex {
        if !re.is_match(raw) {
            return Err(SettingProblem::PatternMismatch {
                pattern: re.as_str().to_owned(),
            });
        }
    }
    Ok(())
}

fn check_bounds<T: PartialOrd + ToString + Copy>(
    value: T,
    min: Option<T>,
    max: Option<T>,
) -> Result<(), SettingProblem> {
    if let Some(min) = min {
        if value < min {
            return Err(SettingProblem::BelowMin {
                min: min.to_string(),
            });
        }
    }
    if let Some(max) = max {
        if value > max {
            return Err(SettingProblem::AboveMax {
                max: max.to_string(),
            });
        }
    }
    Ok(())
}

fn parse_list(element_type: &SettingType, raw: &str) -> Result<SettingValue, SettingProblem> {
    // Input elements are separated by commas; an element can therefore never contain one. The
    // check below exists for callers that split lists themselves (e.g. JSON arrays).
    let mut items = Vec::new();
    for (i, element) in raw.split(',').enumerate() {
        let index = i + 1;
        if element.is_empty() {
            return Err(SettingProblem::ListElement {
                index,
                problem: Box::new(SettingProblem::Required),
            });
        }
        let value =
            parse_value(element_type, element).map_err(|p| SettingProblem::ListElement {
                index,
                problem: Box::new(p),
            })?;
        items.push(value);
    }
    Ok(SettingValue::List(items))
}

/// Parses list elements given one by one (e.g. from a JSON array) into a list value;
/// `element_type` is the list's element type (`SettingType::List::element_type`).
///
/// An element containing `,` is refused, because the D6 encoding joins elements with `,`; so is
/// a list whose encoding is larger than [`MAX_VALUE_BYTES`].
pub fn parse_list_elements(
    element_type: &SettingType,
    elements: &[&str],
) -> Result<SettingValue, SettingProblem> {
    if let Some(i) = elements.iter().position(|e| e.contains(',')) {
        return Err(SettingProblem::CommaInListElement { index: i + 1 });
    }
    let joined = elements.join(",");
    check_size(&joined)?;
    parse_list(element_type, &joined)
}

fn parse_integer(raw: &str) -> Option<i64> {
    let digits = raw.strip_prefix(['+', '-']).unwrap_or(raw);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

fn parse_float(raw: &str) -> Option<f64> {
    let body = raw.strip_prefix(['+', '-']).unwrap_or(raw);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return None;
    }
    raw.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// Whether `value` looks like an e-mail address: `local@domain` with a dot-atom local part.
pub fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.rsplit_once('@') else {
        return false;
    };
    let atext = |c: char| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
    !local.is_empty()
        && local.chars().count() <= 64
        && local
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(atext))
        && domain.contains('.')
        && is_domain_name(domain)
}

/// Whether `value` is a DNS name: dot-separated labels of letters, digits and inner hyphens,
/// each 1–63 characters, 253 at most in total, with an optional final dot. Non-ASCII letters
/// are allowed (internationalised names as typed).
pub fn is_domain_name(value: &str) -> bool {
    let name = value.strip_suffix('.').unwrap_or(value);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.chars().count() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

/// Whether `value` is a host name or IP address, optionally followed by `:port`
/// (IPv6 with a port as `[addr]:port`).
pub fn is_host_name(value: &str) -> bool {
    if value.parse::<IpAddr>().is_ok() {
        return true;
    }
    if let Some(rest) = value.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return false;
        };
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(is_port);
        return addr.parse::<Ipv6Addr>().is_ok() && port_ok;
    }
    let (host, port_ok) = match value.rsplit_once(':') {
        Some((host, port)) => (host, is_port(port)),
        None => (value, true),
    };
    port_ok && (host.parse::<IpAddr>().is_ok() || is_domain_name(host))
}

fn is_port(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && text.parse::<u16>().is_ok_and(|p| p > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Uniq;

    fn setting(id: &str, kind: SettingType) -> Setting {
        Setting {
            id: id.to_owned(),
            kind,
            default_value: None,
            installation_only: false,
            global: false,
            class: None,
            value_of_setting: None,
            uniq: None,
            visibility_hidden: false,
            protected: false,
            optional: false,
            track_old_value: false,
            names: Vec::new(),
            descriptions: Vec::new(),
            error_messages: Vec::new(),
        }
    }

    fn text(min: Option<u32>, max: Option<u32>, re: Option<&str>) -> SettingType {
        SettingType::String(TextConstraints {
            min_length: min,
            max_length: max,
            regex: re.map(|r| SettingRegex::new(r).unwrap()),
            charset: None,
        })
    }

    fn input(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn problems(errors: &[SettingError]) -> Vec<(&str, &SettingProblem)> {
        errors
            .iter()
            .map(|e| (e.setting.as_str(), &e.problem))
            .collect()
    }

    #[test]
    fn booleans_accept_four_spellings_and_encode_as_words() {
        for (raw, b) in [("true", true), ("1", true), ("false", false), ("0", false)] {
            let v = parse_value(&SettingType::Boolean, raw).unwrap();
            assert_eq!(v, SettingValue::Boolean(b));
            assert_eq!(v.encode(), if b { "true" } else { "false" });
        }
        assert_eq!(
            parse_value(&SettingType::Boolean, "yes"),
            Err(SettingProblem::NotBoolean)
        );
    }

    #[test]
    fn lengths_count_unicode_scalar_values() {
        let kind = text(Some(2), Some(3), None);
        assert!(parse_value(&kind, "äöü").is_ok(), "3 chars, 6 bytes");
        assert_eq!(
            parse_value(&kind, "ä"),
            Err(SettingProblem::TooShort { length: 1, min: 2 })
        );
        assert_eq!(
            parse_value(&kind, "äöüß"),
            Err(SettingProblem::TooLong { length: 4, max: 3 })
        );
    }

    #[test]
    fn regex_is_unanchored_unless_the_pattern_anchors() {
        let loose = text(None, None, Some("[0-9]"));
        assert!(parse_value(&loose, "abc1def").is_ok());
        let anchored = text(None, None, Some("^[a-zA-Z][0-9a-zA-Z_.\\-@]*"));
        assert!(parse_value(&anchored, "admin").is_ok());
        // Only the start is anchored, so trailing junk still matches (as in PHP controllers).
        assert!(parse_value(&anchored, "admin!!").is_ok());
        assert!(matches!(
            parse_value(&anchored, "1admin"),
            Err(SettingProblem::PatternMismatch { .. })
        ));
    }

    #[test]
    fn integer_and_float_bounds_are_inclusive() {
        let int = SettingType::Integer {
            min: Some(1),
            max: Some(10),
        };
        assert_eq!(parse_value(&int, "1"), Ok(SettingValue::Integer(1)));
        assert_eq!(parse_value(&int, "10"), Ok(SettingValue::Integer(10)));
        assert!(matches!(
            parse_value(&int, "0"),
            Err(SettingProblem::BelowMin { .. })
        ));
        assert!(matches!(
            parse_value(&int, "11"),
            Err(SettingProblem::AboveMax { .. })
        ));
        assert_eq!(parse_value(&int, "1.5"), Err(SettingProblem::NotInteger));
        assert_eq!(parse_value(&int, " 5"), Err(SettingProblem::NotInteger));
        assert_eq!(
            parse_value(&int, "99999999999999999999"),
            Err(SettingProblem::NotInteger)
        );
        let float = SettingType::Float {
            min: Some(0.5),
            max: Some(2.5),
        };
        assert_eq!(parse_value(&float, "2.5"), Ok(SettingValue::Float(2.5)));
        assert_eq!(parse_value(&float, ".5").unwrap().encode(), "0.5");
        assert_eq!(parse_value(&float, "1e3"), Err(SettingProblem::NotNumber));
        assert_eq!(parse_value(&float, "NaN"), Err(SettingProblem::NotNumber));
        assert!(matches!(
            parse_value(&float, "3"),
            Err(SettingProblem::AboveMax { .. })
        ));
    }

    #[test]
    fn email_domain_and_host_syntax() {
        assert!(is_email("owner@example.com"));
        assert!(is_email("first.last+tag@mail.example.org"));
        assert!(!is_email("owner@localhost"));
        assert!(!is_email("no-at-sign.example.com"));
        assert!(!is_email("a..b@example.com"));
        assert!(!is_email("a b@example.com"));
        assert!(is_domain_name("example.com"));
        assert!(is_domain_name("bücher.example"));
        assert!(is_domain_name("example.com."));
        assert!(!is_domain_name("-bad.example"));
        assert!(!is_domain_name("a..b"));
        assert!(!is_domain_name("exa mple.com"));
        assert!(is_host_name("77.77.150.135:1106"), "CommuniGate default");
        assert!(is_host_name("mail.example.com"));
        assert!(is_host_name("::1"));
        assert!(is_host_name("[::1]:8080"));
        assert!(!is_host_name("example.com:0"));
        assert!(!is_host_name("example.com:http"));
        assert!(!is_host_name("exa mple"));
    }

    #[test]
    fn enum_value_must_be_a_choice_id() {
        let kind = SettingType::Enum {
            choices: vec![
                EnumChoice {
                    id: "en-US".into(),
                    names: vec![],
                },
                EnumChoice {
                    id: "el-EL".into(),
                    names: vec![],
                },
            ],
        };
        assert_eq!(
            parse_value(&kind, "el-EL"),
            Ok(SettingValue::Enum("el-EL".into()))
        );
        let err = parse_value(&kind, "English").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the value is not one of the choices en-US, el-EL"
        );
    }

    #[test]
    fn lists_validate_each_element_and_join_with_commas() {
        let kind = SettingType::List {
            element_type: Box::new(SettingType::DomainName),
        };
        let v = parse_value(&kind, "a.example,b.example").unwrap();
        assert_eq!(v.encode(), "a.example,b.example");
        assert!(matches!(
            parse_value(&kind, "a.example,not a domain"),
            Err(SettingProblem::ListElement { index: 2, .. })
        ));
        assert_eq!(
            parse_list_elements(&SettingType::DomainName, &["a.example", "b,c"]),
            Err(SettingProblem::CommaInListElement { index: 2 })
        );
        assert_eq!(
            parse_list_elements(&SettingType::DomainName, &["a.example", "b.example"]).unwrap(),
            v
        );
    }

    #[test]
    fn nul_is_always_refused() {
        for kind in [
            SettingType::Hidden,
            text(None, None, None),
            SettingType::Boolean,
        ] {
            assert_eq!(parse_value(&kind, "a\0b"), Err(SettingProblem::ContainsNul));
        }
    }

    /// Issue 7 (D16): a value larger than the environment can carry is refused at validation,
    /// whatever the setting's own `max-length`, naming the setting and both figures.
    #[test]
    fn issue_7_values_are_capped_whatever_their_max_length() {
        let at_cap = "a".repeat(MAX_VALUE_BYTES);
        let over = "a".repeat(MAX_VALUE_BYTES + 1);
        let unbounded = text(None, None, None);
        let generous = text(None, Some(u32::MAX), None);
        for kind in [&unbounded, &generous, &SettingType::Hidden] {
            assert!(parse_value(kind, &at_cap).is_ok());
            assert_eq!(
                parse_value(kind, &over),
                Err(SettingProblem::TooLarge {
                    bytes: MAX_VALUE_BYTES + 1,
                    max: MAX_VALUE_BYTES
                })
            );
        }
        // Bytes count, not characters: 32 Ki two-byte characters are 64 KiB and one more is over.
        let wide = "ä".repeat(MAX_VALUE_BYTES / 2 + 1);
        assert!(matches!(
            parse_value(&unbounded, &wide),
            Err(SettingProblem::TooLarge { bytes, .. }) if bytes == MAX_VALUE_BYTES + 2
        ));
        let password = SettingType::Password(TextConstraints::default());
        let big_secret = "s".repeat(1 << 20);
        let title = setting("title", unbounded.clone());
        let secret = setting("admin_password", password);
        let errors = validate(
            &[&title, &secret],
            &input(&[
                ("title", &"t".repeat(1 << 20)),
                ("admin_password", &big_secret),
            ]),
            &ValidateOptions::default(),
        )
        .unwrap_err();
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown[0],
            "setting `title`: the value is 1048576 bytes long; at most 65536 bytes are allowed for any setting, because values are passed to scripts in their environment"
        );
        assert!(shown[1].starts_with("setting `admin_password`: the value is 1048576 bytes"));
        assert!(shown.iter().all(|m| !m.contains("sss")), "{shown:?}");
        // Lists: given joined or element by element; copies and static text too.
        let list = SettingType::List {
            element_type: Box::new(unbounded.clone()),
        };
        let half = "b".repeat(MAX_VALUE_BYTES / 2);
        assert!(matches!(
            parse_list_elements(&unbounded, &[&half, &half]),
            Err(SettingProblem::TooLarge { .. })
        ));
        assert!(matches!(
            parse_value(&list, &format!("{half},{half}")),
            Err(SettingProblem::TooLarge { .. })
        ));
        let mut info = setting("info", SettingType::StaticText);
        info.default_value = Some(over.clone());
        let mut copy = setting("copy", unbounded);
        copy.value_of_setting = Some("parent".into());
        let opts = ValidateOptions {
            inherited: [("parent".to_owned(), over)].into(),
            ..ValidateOptions::default()
        };
        let errors = validate(&[&info, &copy], &input(&[]), &opts).unwrap_err();
        assert_eq!(
            problems(&errors),
            vec![
                (
                    "info",
                    &SettingProblem::TooLarge {
                        bytes: MAX_VALUE_BYTES + 1,
                        max: MAX_VALUE_BYTES
                    }
                ),
                (
                    "copy",
                    &SettingProblem::TooLarge {
                        bytes: MAX_VALUE_BYTES + 1,
                        max: MAX_VALUE_BYTES
                    }
                )
            ]
        );
    }

    #[test]
    fn password_debug_is_redacted() {
        let v = SettingValue::Password("hunter2".into());
        let shown = format!("{:?}", SettingValue::List(vec![v.clone()]));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***"));
        assert_eq!(v.encode(), "hunter2");
        assert!(v.is_secret());
    }

    #[test]
    fn validate_reports_every_error_at_once() {
        let mut email = setting("admin_email", SettingType::Email);
        email.default_value = Some("bad".into());
        let name = setting("admin_name", text(Some(1), Some(4), None));
        let pass = setting(
            "admin_password",
            SettingType::Password(TextConstraints::default()),
        );
        let settings = [&email, &name, &pass];
        let errors = validate(
            &settings,
            &input(&[("admin_name", "toolong"), ("nope", "x")]),
            &ValidateOptions::default(),
        )
        .unwrap_err();
        assert_eq!(
            problems(&errors),
            vec![
                ("nope", &SettingProblem::Unknown),
                ("admin_email", &SettingProblem::NotEmail),
                ("admin_name", &SettingProblem::TooLong { length: 7, max: 4 }),
                ("admin_password", &SettingProblem::Required),
            ]
        );
        assert_eq!(
            errors[3].to_string(),
            "setting `admin_password`: a value is required"
        );
    }

    #[test]
    fn defaults_apply_and_optional_allows_empty() {
        let mut title = setting("title", text(Some(1), None, None));
        title.default_value = Some("My CMS".into());
        let mut email = setting("email", SettingType::Email);
        email.optional = true;
        let mut flag = setting("ssl", SettingType::Boolean);
        flag.default_value = Some("1".into());
        let values = validate(
            &[&title, &email, &flag],
            &input(&[("email", "")]),
            &ValidateOptions::default(),
        )
        .unwrap();
        assert_eq!(values["title"], SettingValue::Text("My CMS".into()));
        assert_eq!(values["email"], SettingValue::Empty);
        assert_eq!(values["ssl"].encode(), "true");
    }

    #[test]
    fn installation_only_is_refused_on_reconfigure() {
        let mut once = setting("once", SettingType::Hidden);
        once.installation_only = true;
        let other = setting("other", SettingType::Hidden);
        let reconf = ValidateOptions {
            mode: ValidationMode::Reconfigure,
            ..ValidateOptions::default()
        };
        let errors = validate(
            &[&once, &other],
            &input(&[("once", "x"), ("other", "y")]),
            &reconf,
        )
        .unwrap_err();
        assert_eq!(
            problems(&errors),
            vec![("once", &SettingProblem::InstallationOnly)]
        );
        let values = validate(&[&once, &other], &input(&[("other", "y")]), &reconf).unwrap();
        assert!(!values.contains_key("once"));
        let install = validate(
            &[&once, &other],
            &input(&[("once", "x"), ("other", "y")]),
            &ValidateOptions::default(),
        )
        .unwrap();
        assert_eq!(install["once"], SettingValue::Text("x".into()));
    }

    #[test]
    fn value_of_setting_copies_and_refuses_input() {
        let src = setting("spampanel_url", text(None, None, None));
        let mut copy = setting("url_copy", text(None, None, None));
        copy.value_of_setting = Some("spampanel_url".into());
        let mut inherited = setting("from_parent", SettingType::Hidden);
        inherited.value_of_setting = Some("parent_value".into());
        let opts = ValidateOptions {
            inherited: [("parent_value".to_owned(), "p".to_owned())].into(),
            ..ValidateOptions::default()
        };
        let values = validate(
            &[&src, &copy, &inherited],
            &input(&[("spampanel_url", "https://x.example/")]),
            &opts,
        )
        .unwrap();
        assert_eq!(values["url_copy"].encode(), "https://x.example/");
        assert_eq!(values["from_parent"].encode(), "p");
        let errors = validate(
            &[&src, &copy],
            &input(&[("spampanel_url", "u"), ("url_copy", "v")]),
            &ValidateOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(
            errors[0].problem,
            SettingProblem::ValueFromOtherSetting { .. }
        ));
        let mut dangling = setting("dangling", SettingType::Hidden);
        dangling.value_of_setting = Some("missing".into());
        let errors = validate(&[&dangling], &input(&[]), &ValidateOptions::default()).unwrap_err();
        assert!(matches!(
            errors[0].problem,
            SettingProblem::SourceMissing { .. }
        ));
    }

    #[test]
    fn uniq_conflicts_are_reported() {
        let mut login = setting("user_login", SettingType::Email);
        login.uniq = Some(Uniq::Global);
        let mut domains = setting(
            "domains",
            SettingType::List {
                element_type: Box::new(SettingType::DomainName),
            },
        );
        domains.uniq = Some(Uniq::Owner);
        let opts = ValidateOptions {
            taken: [
                ("user_login".to_owned(), ["a@example.com".to_owned()].into()),
                (
                    "domains".to_owned(),
                    ["x.example,y.example".to_owned()].into(),
                ),
            ]
            .into(),
            ..ValidateOptions::default()
        };
        let errors = validate(
            &[&login, &domains],
            &input(&[
                ("user_login", "a@example.com"),
                ("domains", "z.example,y.example"),
            ]),
            &opts,
        )
        .unwrap_err();
        assert_eq!(
            problems(&errors),
            vec![
                ("user_login", &SettingProblem::NotUnique),
                ("domains", &SettingProblem::NotUnique)
            ]
        );
        assert!(
            validate(
                &[&login, &domains],
                &input(&[("user_login", "b@example.com"), ("domains", "z.example")]),
                &opts,
            )
            .is_ok()
        );
    }

    #[test]
    fn static_text_is_not_editable() {
        let mut info = setting("info", SettingType::StaticText);
        info.default_value = Some("Read me".into());
        let ok = validate(&[&info], &input(&[]), &ValidateOptions::default()).unwrap();
        assert_eq!(ok["info"].encode(), "Read me");
        let errors = validate(
            &[&info],
            &input(&[("info", "changed")]),
            &ValidateOptions::default(),
        )
        .unwrap_err();
        assert_eq!(errors[0].problem, SettingProblem::NotEditable);
    }

    #[test]
    fn setting_type_serde_round_trip_keeps_regex() {
        let kind = SettingType::List {
            element_type: Box::new(text(Some(1), None, Some("^a+$"))),
        };
        let json = serde_json::to_string(&kind).unwrap();
        let back: SettingType = serde_json::from_str(&json).unwrap();
        assert_eq!(back, kind);
        assert!(json.contains("\"type\":\"list\""), "{json}");
        let bad =
            r#"{"type":"string","min_length":null,"max_length":null,"regex":"(","charset":null}"#;
        assert!(serde_json::from_str::<SettingType>(bad).is_err());
    }
}
