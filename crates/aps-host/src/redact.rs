//! Replaces secret values (passwords, `DB_*_PASSWORD`) by `***` in text apsctl keeps or shows.
//!
//! Main decision: every non-empty secret is redacted, however short. A one-character password
//! makes captured output hard to read, but leaking any password into a log is worse; short
//! passwords are refused elsewhere (generated ones are long). Longer secrets are replaced first,
//! so a secret that contains another is hidden whole.
//!
//! Text cut at a size cap may end with the first part of a secret; [`Redactor::apply_cut`] also
//! masks such a trailing fragment.
//!
//! Known gaps: only the literal value is found. A secret that a script prints transformed
//! (URL-encoded, JSON-escaped, base64, split across lines) is not recognised.

/// The text that stands in for a secret.
pub const MASK: &str = "***";

/// A set of secret values to hide.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Non-empty, distinct secrets, longest first.
    secrets: Vec<String>,
}

impl Redactor {
    /// Builds a redactor for `secrets`; empty values are ignored.
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .map(Into::into)
            .filter(|s| !s.is_empty())
            .collect();
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Self { secrets }
    }

    /// Tells whether there is nothing to hide.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Returns `text` with every occurrence of every secret replaced by [`MASK`].
    pub fn apply(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        out
    }

    /// Like [`Redactor::apply`], for text that was cut off at a size limit: a trailing fragment
    /// that could be the start of a secret is masked too.
    pub fn apply_cut(&self, text: &str) -> String {
        let mut out = self.apply(text);
        let longest_fragment = self
            .secrets
            .iter()
            .filter_map(|secret| {
                // Proper prefixes of the secret, longest first, ending on a char boundary.
                let ends: Vec<usize> = secret.char_indices().skip(1).map(|(end, _)| end).collect();
                ends.into_iter()
                    .rev()
                    .find(|&end| out.ends_with(&secret[..end]))
            })
            .max();
        if let Some(len) = longest_fragment {
            out.truncate(out.len() - len);
            out.push_str(MASK);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_every_occurrence() {
        let r = Redactor::new(["s3cret"]);
        assert_eq!(r.apply("pw=s3cret; again s3cret."), "pw=***; again ***.");
    }

    #[test]
    fn longer_secret_wins_over_its_substring() {
        let r = Redactor::new(["abc", "xxabcxx"]);
        assert_eq!(r.apply("1 xxabcxx 2 abc"), "1 *** 2 ***");
    }

    #[test]
    fn empty_secrets_are_ignored_and_short_ones_redacted() {
        let r = Redactor::new(["", "q"]);
        assert_eq!(r.apply("quiq"), "***ui***");
        assert!(Redactor::new([""]).is_empty());
        assert_eq!(Redactor::new([""]).apply("text"), "text");
    }

    #[test]
    fn cut_text_masks_a_trailing_fragment() {
        let r = Redactor::new(["hunter2", "pässwörd"]);
        assert_eq!(r.apply_cut("password is hunt"), "password is ***");
        assert_eq!(r.apply_cut("and pässw"), "and ***");
        assert_eq!(r.apply_cut("nothing here"), "nothing here");
        // A whole secret at the end is handled by the plain replacement.
        assert_eq!(r.apply_cut("x hunter2"), "x ***");
    }

    #[test]
    fn non_ascii_secrets() {
        let r = Redactor::new(["пароль"]);
        assert_eq!(r.apply("a пароль b"), "a *** b");
    }
}
