//! Setting values: given as one JSON object (`--settings-file`, later the HTTP API) they are
//! strictly parsed into the `id → text` form every operation takes (REFERENCE D6, D15), and that
//! form is validated against a service's settings, with `uniq` looked up in the store
//! (`validate`, used by install, configure and the package's global settings).
//!
//! Main decision: only what has one obvious text is accepted. Strings are taken as they are,
//! booleans become `true`/`false`, numbers keep the exact text they were written with (`1.50`
//! stays `1.50`; the setting's type then judges it), and an array of strings is a list setting,
//! joined by `,` (D6), so an element holding a `,` is refused (§11 Q15). `null`, objects, nested
//! arrays and arrays of non-strings have no such text and are refused, naming the key. A key
//! given twice is refused too: a JSON parser would silently keep one of the two values, and the
//! admin could not tell which. Input is bounded by [`MAX_SETTINGS_BYTES`]; callers read at most
//! one byte more than that (`Read::take`) so that an endless input ends at once.
//!
//! Known gaps: [`parse_settings_json`] does not check the values against a package; `validate`
//! does (unknown ids, types and constraints).
use std::collections::BTreeMap;
use std::fmt;

use aps_host::shown;
use serde::Deserializer as _;
use serde::de::{self, MapAccess, Visitor};
use serde_json::value::RawValue;

use aps_meta::model::Setting;
use aps_meta::value::{SettingValue, ValidateOptions, ValidationMode};
use aps_store::instances::{OwnerScope, SettingValuesQuery};
use aps_store::sites::Site;

use crate::context::Context;
use crate::error::Error;
use crate::package::StoredPackage;

/// The largest settings document accepted, in bytes (1 MiB; real ones are well under 1 KiB).
pub const MAX_SETTINGS_BYTES: u64 = 1 << 20;

/// Validates user input against the service's settings (all errors at once), with `uniq`
/// checked against the values the package's other instances have (`instance`, when given, is
/// the one being reconfigured and does not count).
///
/// `site` is the one whose owner `uniq="owner"` compares with; the package's global settings
/// have no site (`None`), so theirs compares with every instance, as `uniq="global"` does.
pub(crate) fn validate(
    ctx: &Context,
    pkg: &StoredPackage,
    site: Option<&Site>,
    settings: &[&Setting],
    input: &BTreeMap<String, String>,
    instance: Option<&str>,
    mode: ValidationMode,
) -> Result<BTreeMap<String, SettingValue>, Error> {
    let mut taken = BTreeMap::new();
    for s in settings {
        let Some(uniq) = s.uniq else { continue };
        let scope = match (uniq, site) {
            (aps_meta::model::Uniq::Owner, Some(site)) => OwnerScope::SystemUser(&site.system_user),
            (aps_meta::model::Uniq::Global | aps_meta::model::Uniq::Owner, _) => OwnerScope::Global,
        };
        let uses = ctx
            .store()?
            .instances()
            .setting_values(&SettingValuesQuery {
                package_identity: &pkg.summary.identity,
                setting_id: &s.id,
                scope,
                exclude_instance: instance,
            })?;
        let values = uses
            .into_iter()
            .map(|u| ctx.vault.unseal(&u.value))
            .collect::<Result<_, _>>()?;
        taken.insert(s.id.clone(), values);
    }
    let opts = ValidateOptions {
        mode,
        taken,
        inherited: BTreeMap::new(),
    };
    aps_meta::value::validate(settings, input, &opts).map_err(|errors| {
        Error::Settings(
            errors
                .iter()
                .map(|e| (e.setting.clone(), e.problem.to_string()))
                .collect(),
        )
    })
}

/// Parses a JSON object of setting values (see the module documentation for the rules).
///
/// `source` names the input in messages, e.g. ``settings file `a.json` `` or `standard input`.
/// Every refusal is [`Error::Invalid`] and names `source` and, where there is one, the key.
pub fn parse_settings_json(bytes: &[u8], source: &str) -> Result<BTreeMap<String, String>, Error> {
    if bytes.len() as u64 > MAX_SETTINGS_BYTES {
        return Err(too_large(source));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::Invalid(format!(
            "{source} is empty: it must hold a JSON object of setting values, like {{\"id\": \"value\"}}"
        )));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = de
        .deserialize_map(ObjectVisitor)
        .and_then(|values| de.end().map(|()| values));
    match parsed {
        Ok(Ok(values)) => Ok(values),
        Ok(Err(refusal)) => Err(Error::Invalid(format!("{source}: {refusal}"))),
        // A duplicate key or a top level that is no object (with its position).
        Err(e) if e.classify() == serde_json::error::Category::Data => {
            Err(Error::Invalid(format!("{source}: {e}")))
        }
        Err(e) => Err(Error::Invalid(format!("{source} is not valid JSON: {e}"))),
    }
}

/// The refusal of an input longer than [`MAX_SETTINGS_BYTES`].
pub fn too_large(source: &str) -> Error {
    Error::Invalid(format!(
        "{source} is larger than {MAX_SETTINGS_BYTES} bytes, the most apsctl reads as settings"
    ))
}

/// Visits the top-level object. A value apsctl refuses is returned as the inner `Err` (a plain
/// sentence naming the key), a syntax error or a duplicate key as a `serde_json` error (which
/// adds the position).
struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Result<BTreeMap<String, String>, String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of setting values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut values = BTreeMap::new();
        let mut refusal = None;
        while let Some(key) = map.next_key::<String>()? {
            if values.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "setting `{}` is given twice",
                    shown::name(&key)
                )));
            }
            let raw: Box<RawValue> = map.next_value()?;
            match value_text(&key, &raw) {
                Ok(text) => {
                    values.insert(key, text);
                }
                // Keep reading: a duplicate key later on is a syntax-level problem to report
                // with its position, but the first refused value is the answer otherwise.
                Err(why) => {
                    refusal.get_or_insert(why);
                    values.insert(key, String::new());
                }
            }
        }
        Ok(match refusal {
            Some(why) => Err(why),
            None => Ok(values),
        })
    }
}

/// The text of one value, or why it has none.
fn value_text(key: &str, raw: &RawValue) -> Result<String, String> {
    let key = shown::name(key);
    let text = raw.get();
    let refuse = |what: &str| {
        Err(format!(
            "setting `{key}` is {what}; give a string, a number, a boolean or an array of strings"
        ))
    };
    match text.as_bytes().first() {
        Some(b'"') => {
            let value: String = serde_json::from_str(text).map_err(|e| e.to_string())?;
            if value.contains('\0') {
                return Err(format!("setting `{key}` contains a NUL character"));
            }
            Ok(value)
        }
        Some(b't') => Ok("true".into()),
        Some(b'f') => Ok("false".into()),
        Some(b'n') => refuse("null"),
        Some(b'{') => refuse("an object"),
        Some(b'[') => list_text(&key, text),
        // A number, validated by the parser; its text exactly as written.
        _ => Ok(text.to_owned()),
    }
}

/// A list setting from an array of strings: the elements joined by `,` (D6, §11 Q15).
fn list_text(key: &shown::Name<'_>, text: &str) -> Result<String, String> {
    let items: Vec<Box<RawValue>> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut elements = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let position = i + 1;
        if !item.get().starts_with('"') {
            return Err(format!(
                "setting `{key}`: list element {position} is not a string; a list setting is an array of strings"
            ));
        }
        let element: String = serde_json::from_str(item.get()).map_err(|e| e.to_string())?;
        if element.contains(',') {
            return Err(format!(
                "setting `{key}`: list element {position} (`{}`) contains `,`, which separates the elements of a list setting",
                shown::name(&element)
            ));
        }
        if element.contains('\0') {
            return Err(format!(
                "setting `{key}`: list element {position} contains a NUL character"
            ));
        }
        elements.push(element);
    }
    Ok(elements.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "settings file `s.json`";

    fn parse(text: &str) -> Result<BTreeMap<String, String>, String> {
        parse_settings_json(text.as_bytes(), SRC).map_err(|e| {
            assert!(
                matches!(e, Error::Invalid(_)),
                "refusals are Invalid (exit 2): {e:?}"
            );
            e.to_string()
        })
    }

    fn ok(text: &str) -> Vec<(String, String)> {
        parse(text)
            .unwrap_or_else(|e| panic!("{text} was refused: {e}"))
            .into_iter()
            .collect()
    }

    fn refused(text: &str, needles: &[&str]) {
        let e = parse(text).expect_err(text);
        assert!(e.starts_with(SRC), "the message names the source: {e}");
        for n in needles {
            assert!(e.contains(n), "`{e}` does not contain `{n}`");
        }
    }

    #[test]
    fn strings_booleans_and_numbers_become_text() {
        assert_eq!(
            ok(r#"{"a": "x y", "b": true, "c": false, "d": 42, "e": -1.50, "f": 1e3, "g": ""}"#),
            [
                ("a", "x y"),
                ("b", "true"),
                ("c", "false"),
                ("d", "42"),
                ("e", "-1.50"),
                ("f", "1e3"),
                ("g", ""),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn big_numbers_keep_every_digit() {
        assert_eq!(
            ok(r#"{"n": 123456789012345678901234567890}"#)[0].1,
            "123456789012345678901234567890"
        );
    }

    #[test]
    fn string_escapes_are_decoded() {
        assert_eq!(ok(r#"{"p": "a\"b\\c\u00e9"}"#)[0].1, "a\"b\\cé");
    }

    #[test]
    fn arrays_of_strings_are_lists_joined_by_commas() {
        assert_eq!(ok(r#"{"l": ["a", "b c", ""]}"#)[0].1, "a,b c,");
        assert_eq!(ok(r#"{"l": []}"#)[0].1, "");
    }

    #[test]
    fn a_list_element_with_a_comma_is_refused() {
        refused(
            r#"{"tags": ["ok", "a,b"]}"#,
            &["`tags`", "element 2", "`,`"],
        );
    }

    #[test]
    fn values_without_one_text_are_refused_naming_the_key() {
        refused(r#"{"a": "x", "n": null}"#, &["`n`", "null"]);
        refused(r#"{"o": {"x": "y"}}"#, &["`o`", "an object"]);
        refused(r#"{"l": [["x"]]}"#, &["`l`", "element 1", "not a string"]);
        refused(r#"{"l": ["x", 1]}"#, &["`l`", "element 2", "not a string"]);
        refused(r#"{"l": [null]}"#, &["`l`", "element 1"]);
    }

    #[test]
    fn duplicate_keys_are_refused_naming_the_key() {
        refused(
            r#"{"admin_password": "a", "title": "t", "admin_password": "b"}"#,
            &["`admin_password`", "twice", "line 1"],
        );
        // Also after a refused value, and for lists.
        refused(r#"{"n": null, "n": "x"}"#, &["`n`", "twice"]);
        refused(r#"{"l": ["a"], "l": ["b"]}"#, &["`l`", "twice"]);
    }

    #[test]
    fn the_top_level_must_be_an_object() {
        for text in [r#"["a"]"#, r#""a""#, "1", "null", "true"] {
            refused(text, &["expected a JSON object of setting values"]);
        }
        refused("", &["empty"]);
        refused("  \n", &["empty"]);
    }

    #[test]
    fn syntax_errors_and_trailing_data_are_refused() {
        refused(r#"{"a": "x""#, &["not valid JSON", "line 1"]);
        refused(r#"{"a": "x"} {"b": "y"}"#, &["not valid JSON", "trailing"]);
        refused(r#"{"a": 'x'}"#, &["not valid JSON"]);
    }

    #[test]
    fn nul_characters_are_refused() {
        refused(r#"{"a": "x\u0000y"}"#, &["`a`", "NUL"]);
    }

    #[test]
    fn oversized_input_is_refused() {
        let mut big = String::from(r#"{"a": ""#);
        big.push_str(&"x".repeat(usize::try_from(MAX_SETTINGS_BYTES).unwrap()));
        big.push_str(r#""}"#);
        refused(&big, &["larger than 1048576 bytes"]);
    }

    #[test]
    fn keys_are_escaped_in_messages() {
        let e = parse("{\"a\\nerror: forged\": null}").unwrap_err();
        assert!(e.contains("`a\\nerror: forged`"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }
}
