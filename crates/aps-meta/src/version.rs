//! Package versions and their order: [`Version`] and [`VersionRelease`] (REFERENCE §7.3, D2).
//!
//! Main decision: a version is any string. It is split into runs of digits and runs of letters;
//! every other character is a separator and is dropped. Runs are compared position by position,
//! with the missing run past the end of the shorter version ("the end") taking part as if it were
//! a run. At one position the ranks are, lowest first:
//!
//! 1. the pre-release words `alpha` < `beta` < `rc` (ASCII case-insensitive, whole runs only);
//! 2. the end;
//! 3. any other word, compared lexically after ASCII lower-casing;
//! 4. a number, compared numerically (arbitrary length, leading zeros ignored).
//!
//! So `10.alpha1` < `10.beta5` < `10.RC33` < `10`, `5.2` < `5.2.0` and `1.0` < `1.0a` < `1.0.1`.
//! The tie-breaks (items 1–4 beyond D2 itself) are the proposed defaults of §11 Q7.
//!
//! Equality is "compares equal", so it ignores separators, case and leading zeros: `1.0`, `1-0`
//! and `01.00` are equal versions, although each keeps its own text for display and
//! serialisation. `Hash` agrees with that equality.
//!
//! Known gaps: "letters" are Unicode alphabetic characters but only ASCII letters are
//! case-folded; digits are ASCII digits only (other numerals are separators). No other
//! pre-release words (`dev`, `pre`, `a`, `b`) are recognised (§11 Q7).

use std::cmp::Ordering;
use std::convert::Infallible;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A package version (or release) string with the D2 order.
///
/// Construction never fails: any string is a version. The empty string (or a string made only of
/// separators) is allowed; it has no runs and therefore sorts like "the end": above every
/// version that starts with a pre-release word and below every other non-empty version.
#[derive(Clone)]
pub struct Version {
    /// The text as given, used for display and serialisation.
    text: String,
    /// The runs that define the order.
    runs: Vec<Run>,
}

/// One run of a version string, normalised for comparison.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Run {
    /// A pre-release word.
    Pre(PreRelease),
    /// Any other run of letters, ASCII lower-cased.
    Word(String),
    /// A run of digits without its leading zeros (`"0"` becomes the empty string).
    Number(String),
}

/// The pre-release words, in their order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum PreRelease {
    Alpha,
    Beta,
    Rc,
}

impl Version {
    /// Parses `text` as a version; never fails.
    pub fn new(text: impl Into<String>) -> Self {
        let text = text.into();
        let runs = split_runs(&text);
        Self { text, runs }
    }

    /// The version text exactly as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the version contains a pre-release word (`alpha`, `beta` or `rc`) anywhere.
    pub fn is_pre_release(&self) -> bool {
        self.runs.iter().any(|run| matches!(run, Run::Pre(_)))
    }
}

/// Splits `text` into normalised runs of ASCII digits and of letters.
fn split_runs(text: &str) -> Vec<Run> {
    let mut runs = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c.is_ascii_digit() {
            let mut end = start + c.len_utf8();
            while let Some(&(i, d)) = chars.peek() {
                if !d.is_ascii_digit() {
                    break;
                }
                end = i + d.len_utf8();
                chars.next();
            }
            let digits = text[start..end].trim_start_matches('0');
            runs.push(Run::Number(digits.to_owned()));
        } else if c.is_alphabetic() {
            let mut end = start + c.len_utf8();
            while let Some(&(i, l)) = chars.peek() {
                if !l.is_alphabetic() {
                    break;
                }
                end = i + l.len_utf8();
                chars.next();
            }
            let word = text[start..end].to_ascii_lowercase();
            runs.push(match word.as_str() {
                "alpha" => Run::Pre(PreRelease::Alpha),
                "beta" => Run::Pre(PreRelease::Beta),
                "rc" => Run::Pre(PreRelease::Rc),
                _ => Run::Word(word),
            });
        }
    }
    runs
}

/// The rank of a run (or of the end, `None`) at one position; see the module documentation.
fn rank(run: Option<&Run>) -> u8 {
    match run {
        Some(Run::Pre(_)) => 0,
        None => 1,
        Some(Run::Word(_)) => 2,
        Some(Run::Number(_)) => 3,
    }
}

/// Compares two runs (or the end, `None`) at the same position.
fn cmp_run(a: Option<&Run>, b: Option<&Run>) -> Ordering {
    match (a, b) {
        (Some(Run::Pre(x)), Some(Run::Pre(y))) => x.cmp(y),
        (Some(Run::Word(x)), Some(Run::Word(y))) => x.cmp(y),
        // Leading zeros are already gone, so the longer digit string is the larger number.
        (Some(Run::Number(x)), Some(Run::Number(y))) => {
            x.len().cmp(&y.len()).then_with(|| x.cmp(y))
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let len = self.runs.len().max(other.runs.len());
        (0..len)
            .map(|i| cmp_run(self.runs.get(i), other.runs.get(i)))
            .find(|ordering| ordering.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Equality is "compares equal" (see the module documentation), not equality of the text.
impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.runs == other.runs
    }
}

impl Eq for Version {}

impl Hash for Version {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.runs.hash(state);
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({:?})", self.text)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Version {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(s))
    }
}

impl From<&str> for Version {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl From<String> for Version {
    fn from(text: String) -> Self {
        Self::new(text)
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

/// A package's version and release, ordered by version first, then by release (§7.3 item 5).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VersionRelease {
    /// The application version (`application/version`).
    pub version: Version,
    /// The package release (`application/release`).
    pub release: Version,
}

impl VersionRelease {
    /// Pairs a version with a release.
    pub fn new(version: impl Into<Version>, release: impl Into<Version>) -> Self {
        Self {
            version: version.into(),
            release: release.into(),
        }
    }
}

/// Displays as `version-release`, the form used in messages and in §7.3.
impl fmt::Display for VersionRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.version, self.release)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    fn v(text: &str) -> Version {
        Version::new(text)
    }

    #[track_caller]
    fn assert_lt(a: &str, b: &str) {
        assert_eq!(v(a).cmp(&v(b)), Ordering::Less, "{a} < {b}");
        assert_eq!(v(b).cmp(&v(a)), Ordering::Greater, "{b} > {a}");
        assert_ne!(v(a), v(b));
    }

    #[test]
    fn reference_table_rows() {
        assert!(v("5.2.3") > v("2.0"));
        assert!(v("1.5.5.1.2") > v("1.5.1"));
        assert!(v("10.alpha1") < v("10.0.25"));
        assert!(v("2.10") > v("2.9"));
        assert!(VersionRelease::new("6.0.0", "63") < VersionRelease::new("6.0.0", "80"));
    }

    #[test]
    fn pre_release_words_sort_before_the_release() {
        assert_lt("10.alpha1", "10.beta5");
        assert_lt("10.beta5", "10.RC33");
        assert_lt("10.RC33", "10");
        assert_lt("10.alpha1", "10");
        assert_lt("10.rc1", "10.rc2");
        assert_lt("1.0rc1", "1.0");
        assert_lt("1.0.alpha", "1.0.a");
        assert_lt("1.0.beta", "1.0.0");
    }

    #[test]
    fn tie_breaks_of_item_4() {
        assert_lt("5.2", "5.2.0");
        assert_lt("1.0", "1.0a");
        assert_lt("1.0a", "1.0.1");
        assert_lt("1.0a", "1.0b");
        assert_lt("1.0z", "1.0.0");
        assert_lt("2.9", "2.10");
    }

    #[test]
    fn words_other_than_alpha_beta_rc_are_ordinary() {
        // `alphabet` is one run, not the pre-release word `alpha`.
        assert_lt("1.0", "1.0alphabet");
        assert!(!v("1.0alphabet").is_pre_release());
        assert!(v("1.0-Beta2").is_pre_release());
        assert_lt("1.0dev", "1.0pre");
    }

    #[test]
    fn case_separators_and_leading_zeros_do_not_matter() {
        assert_eq!(v("1.0"), v("1-0"));
        assert_eq!(v("1.0"), v("01.00"));
        assert_eq!(v("1.0"), v("1_0"));
        assert_eq!(v("10.RC33"), v("10.rc33"));
        assert_eq!(v("1.0A"), v("1.0a"));
        assert_eq!(v("1.0").cmp(&v("1..0")), Ordering::Equal);
        let set: HashSet<Version> = ["1.0", "1-0", "001.0", "1.00"].into_iter().map(v).collect();
        assert_eq!(set.len(), 1);
        // The text is kept as given.
        assert_eq!(v("01.00").to_string(), "01.00");
    }

    #[test]
    fn long_digit_runs_compare_numerically_without_overflow() {
        let forty = "1234567890123456789012345678901234567890";
        let forty_one = "1234567890123456789012345678901234567891";
        assert_lt(forty, forty_one);
        assert_lt(&format!("1.{forty}"), &format!("1.1{forty}"));
        assert_eq!(v(&format!("000{forty}")), v(forty));
        assert_lt("99999999999999999999999", "100000000000000000000000");
    }

    #[test]
    fn empty_and_separator_only_versions() {
        assert_eq!(v(""), v("..."));
        assert_lt("alpha", "");
        assert_lt("", "0");
        assert_lt("", "a");
        assert_eq!(v("").to_string(), "");
    }

    #[test]
    fn unicode_letters_form_words() {
        assert_lt("1.0", "1.0é");
        assert_lt("1.0é", "1.0.0");
    }

    #[test]
    fn corpus_versions_in_order() {
        let sorted = [
            "1.5.5.1.2",
            "2.6.14",
            "2.6.16",
            "4.9.7",
            "5.2.3",
            "10.alpha1",
            "10.0.25",
        ];
        for pair in sorted.windows(2) {
            assert_lt(pair[0], pair[1]);
        }
        let mut shuffled: Vec<Version> = sorted.iter().rev().copied().map(v).collect();
        shuffled.sort();
        let texts: Vec<&str> = shuffled.iter().map(Version::as_str).collect();
        assert_eq!(texts, sorted);
    }

    #[test]
    fn version_release_orders_version_first() {
        assert!(VersionRelease::new("5.2.3", "1") > VersionRelease::new("5.2.2", "282"));
        assert!(VersionRelease::new("2.0", "1") > VersionRelease::new("2.0", "0"));
        assert_eq!(
            VersionRelease::new("2.0", "1"),
            VersionRelease::new("2-0", "01")
        );
        assert_eq!(VersionRelease::new("5.2.3", "282").to_string(), "5.2.3-282");
    }

    #[test]
    fn serde_uses_the_plain_text() {
        let json = serde_json::to_string(&v("10.RC33")).unwrap();
        assert_eq!(json, "\"10.RC33\"");
        let back: Version = serde_json::from_str(&json).unwrap();
        assert_eq!(back.as_str(), "10.RC33");
        let pair = VersionRelease::new("5.2.3", "282");
        let json = serde_json::to_string(&pair).unwrap();
        assert_eq!(json, r#"{"version":"5.2.3","release":"282"}"#);
        let back: VersionRelease = serde_json::from_str(&json).unwrap();
        assert_eq!(back.version.as_str(), "5.2.3");
        assert_eq!(back.release.as_str(), "282");
    }

    #[test]
    fn from_str_never_fails() {
        let parsed: Version = "anything at all ☃".parse().unwrap();
        assert_eq!(parsed.as_str(), "anything at all ☃");
    }

    fn version_text() -> impl Strategy<Value = String> {
        let fragment = prop::sample::select(vec![
            "0", "1", "2", "9", "10", "007", "alpha", "beta", "rc", "RC", "Alpha", "a", "b", "z",
            "dev", ".", "-", "_", "+", "~", "",
        ]);
        prop::collection::vec(fragment, 0..8).prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn order_is_antisymmetric(a in version_text(), b in version_text()) {
            let (a, b) = (v(&a), v(&b));
            prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
            prop_assert_eq!(a == b, a.cmp(&b) == Ordering::Equal);
            prop_assert_eq!(a.partial_cmp(&b), Some(a.cmp(&b)));
        }

        #[test]
        fn order_is_transitive(a in version_text(), b in version_text(), c in version_text()) {
            let mut all = [v(&a), v(&b), v(&c)];
            all.sort();
            prop_assert!(all[0] <= all[1]);
            prop_assert!(all[1] <= all[2]);
            prop_assert!(all[0] <= all[2]);
            for x in &all {
                for y in &all {
                    for z in &all {
                        if x <= y && y <= z {
                            prop_assert!(x <= z, "{:?} <= {:?} <= {:?}", x, y, z);
                        }
                        if x == y && y == z {
                            prop_assert!(x == z);
                        }
                    }
                }
            }
        }

        #[test]
        fn order_is_total_and_reflexive(a in version_text(), b in version_text()) {
            let (a, b) = (v(&a), v(&b));
            prop_assert!(a <= b || b <= a);
            prop_assert_eq!(a.cmp(&a), Ordering::Equal);
            prop_assert_eq!(a.clone(), a);
        }

        #[test]
        fn equal_versions_hash_alike(a in version_text(), b in version_text()) {
            let (a, b) = (v(&a), v(&b));
            if a == b {
                let set: HashSet<Version> = [a, b].into_iter().collect();
                prop_assert_eq!(set.len(), 1);
            }
        }

        #[test]
        fn any_string_is_a_version(text in ".*") {
            let version = v(&text);
            prop_assert_eq!(version.as_str(), text.as_str());
            prop_assert_eq!(version.cmp(&version), Ordering::Equal);
        }
    }
}
