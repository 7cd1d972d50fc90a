//! Names and passwords for the databases and logins apsctl creates (decision D9).
//!
//! Main decision: a name is `<base>_<instance id>[_<n>]`, where `<base>` comes from the package's
//! `db:default-name`. Everything is reduced to `[a-z0-9_]`, starts with a letter, and is shortened
//! to the server's limit by cutting the *base*, never the instance-id suffix, so names of different
//! instances stay different however short the limit. When a name is taken anyway, [`unique_name`]
//! appends `_2`, `_3`… (again cutting the base to stay within the limit). Passwords come from the
//! operating system's CSPRNG.
//!
//! Known gaps: non-ASCII letters are not transliterated (`ü` becomes `_`), and two instance ids
//! that differ only in case or punctuation sanitise to the same suffix (apsctl's ids are plain
//! ASCII, so this does not happen in practice).

use rand::Rng as _;
use rand::distributions::Alphanumeric;
use rand::rngs::OsRng;

use crate::db::Secret;

/// Length of the passwords [`generate_password`] returns.
pub const PASSWORD_LENGTH: usize = 32;

/// Base used when `db:default-name` has no usable character.
const FALLBACK_BASE: &str = "db";

/// Upper bound on the `_2`, `_3`… attempts of [`unique_name`].
const MAX_ATTEMPTS: u32 = 1000;

/// Why a name could not be derived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The instance id has no character that survives sanitising.
    #[error("instance id `{id}` gives an empty name suffix")]
    EmptyInstanceId {
        /// The id as given.
        id: String,
    },
    /// The limit leaves no room for one letter of the base plus the suffix.
    #[error("a name limit of {limit} bytes leaves no room for the base and the suffix `{suffix}`")]
    LimitTooSmall {
        /// The server's limit, in bytes.
        limit: usize,
        /// The suffix that had to fit (`_<instance id>[_<n>]`).
        suffix: String,
    },
    /// Every candidate up to `<name>_<MAX_ATTEMPTS>` is taken.
    #[error("no free name found for `{first}` after {attempts} attempts")]
    Exhausted {
        /// The first candidate tried.
        first: String,
        /// How many candidates were tried.
        attempts: u32,
    },
}

/// The sanitised parts of a derived name: a base and an instance-id suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameParts {
    base: String,
    id: String,
}

impl NameParts {
    /// Sanitises `default_name` (from `db:default-name`) and `instance_id`.
    ///
    /// Both are lowercased and every character outside `[a-z0-9_]` becomes `_`; the base has runs
    /// of `_` collapsed and trimmed, falls back to `db` when nothing is left, and gets a `db_`
    /// prefix when it does not start with a letter.
    pub fn new(default_name: &str, instance_id: &str) -> Result<Self, NameError> {
        let id = sanitise(instance_id, Collapse::No);
        if id.trim_matches('_').is_empty() {
            return Err(NameError::EmptyInstanceId {
                id: instance_id.to_owned(),
            });
        }
        let mut base = sanitise(default_name, Collapse::Yes);
        if base.is_empty() {
            FALLBACK_BASE.clone_into(&mut base);
        } else if !base.starts_with(|c: char| c.is_ascii_lowercase()) {
            base.insert_str(0, "db_");
        }
        Ok(Self { base, id })
    }

    /// The sanitised base (from `db:default-name`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The sanitised instance id.
    pub fn instance_id(&self) -> &str {
        &self.id
    }

    /// The name for attempt `attempt` (1 = no counter, 2 = `_2`, …) within `limit` bytes.
    ///
    /// The suffix `_<id>[_<attempt>]` is always kept whole; the base is cut (and trailing `_`
    /// removed) to make room, keeping at least its first letter.
    pub fn render(&self, limit: usize, attempt: u32) -> Result<String, NameError> {
        let mut suffix = format!("_{}", self.id);
        if attempt > 1 {
            suffix.push('_');
            suffix.push_str(&attempt.to_string());
        }
        let room = limit.saturating_sub(suffix.len());
        if room == 0 {
            return Err(NameError::LimitTooSmall { limit, suffix });
        }
        // The base is ASCII, so byte and character positions agree.
        let mut base = &self.base[..self.base.len().min(room)];
        base = base.trim_end_matches('_');
        Ok(format!("{base}{suffix}"))
    }
}

/// Derives the name for `default_name` and `instance_id` within `limit` bytes (attempt 1).
///
/// Take `limit` from `DatabaseServer::name_limits`: for `MySQL` 32 for databases (64, halved so
/// the escaped GRANT pattern fits) and 80/32/16 for logins by server version; for `PostgreSQL`
/// 63 for both; for `SQLite` 64.
pub fn derive_name(
    default_name: &str,
    instance_id: &str,
    limit: usize,
) -> Result<String, NameError> {
    NameParts::new(default_name, instance_id)?.render(limit, 1)
}

/// Returns the first of `name`, `name_2`, `name_3`… (each within `limit`) for which `exists`
/// answers `false`.
///
/// `exists` is typically `|n| server.database_exists(n)`; its error ends the search.
pub fn unique_name<E, F>(parts: &NameParts, limit: usize, mut exists: F) -> Result<String, E>
where
    E: From<NameError>,
    F: FnMut(&str) -> Result<bool, E>,
{
    let first = parts.render(limit, 1)?;
    if !exists(&first)? {
        return Ok(first);
    }
    for attempt in 2..=MAX_ATTEMPTS {
        let candidate = parts.render(limit, attempt)?;
        if !exists(&candidate)? {
            return Ok(candidate);
        }
    }
    Err(NameError::Exhausted {
        first,
        attempts: MAX_ATTEMPTS,
    }
    .into())
}

/// A new random password: [`PASSWORD_LENGTH`] ASCII letters and digits from the OS CSPRNG.
///
/// Alphanumeric only, so the value survives every configuration-file syntax an application may
/// paste it into (about 190 bits of entropy).
pub fn generate_password() -> Secret {
    let password: String = OsRng
        .sample_iter(&Alphanumeric)
        .take(PASSWORD_LENGTH)
        .map(char::from)
        .collect();
    Secret::new(password)
}

/// Whether [`sanitise`] merges runs of `_`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Collapse {
    Yes,
    No,
}

/// Lowercases `raw` and maps every character outside `[a-z0-9_]` to `_`.
fn sanitise(raw: &str, collapse: Collapse) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '_'
        };
        if collapse == Collapse::Yes && c == '_' && (out.is_empty() || out.ends_with('_')) {
            continue;
        }
        out.push(c);
    }
    if collapse == Collapse::Yes {
        while out.ends_with('_') {
            out.pop();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn is_valid(name: &str) -> bool {
        name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    }

    #[test]
    fn plain_name_is_base_and_id() {
        assert_eq!(derive_name("wordpress", "42", 64).unwrap(), "wordpress_42");
    }

    #[test]
    fn uppercase_and_punctuation_are_sanitised() {
        assert_eq!(derive_name("My-App.DB", "7F", 64).unwrap(), "my_app_db_7f");
        assert_eq!(derive_name("a  --  b", "1", 64).unwrap(), "a_b_1");
    }

    #[test]
    fn unicode_becomes_underscores_and_stays_ascii() {
        let name = derive_name("Ünïcödé日本", "3", 64).unwrap();
        assert_eq!(name, "n_c_d_3");
        assert!(is_valid(&name));
        // Nothing usable at all falls back to `db`.
        assert_eq!(derive_name("日本語", "3", 64).unwrap(), "db_3");
        assert_eq!(derive_name("", "3", 64).unwrap(), "db_3");
    }

    #[test]
    fn names_starting_with_digits_or_underscore_get_a_letter_prefix() {
        assert_eq!(derive_name("123shop", "9", 64).unwrap(), "db_123shop_9");
        assert_eq!(derive_name("_x", "9", 64).unwrap(), "x_9");
        assert!(is_valid(&derive_name("9", "9", 64).unwrap()));
    }

    #[test]
    fn long_names_are_cut_in_the_base_and_keep_the_id() {
        let base = "a".repeat(200);
        for limit in [16, 32, 63, 64] {
            let name = derive_name(&base, "1234567", limit).unwrap();
            assert_eq!(name.len(), limit, "{name}");
            assert!(name.ends_with("_1234567"), "{name}");
            assert!(is_valid(&name));
        }
    }

    #[test]
    fn cutting_does_not_leave_a_trailing_underscore_in_the_base() {
        // "ab_cd" cut to 3 bytes would be "ab_"; the `_` goes, the id stays.
        assert_eq!(derive_name("ab_cd", "1", 5).unwrap(), "ab_1");
    }

    #[test]
    fn different_instances_stay_different_at_the_limit() {
        let base = "averyveryverylongapplicationname";
        let names: HashSet<String> = (0..50)
            .map(|i| derive_name(base, &i.to_string(), 16).unwrap())
            .collect();
        assert_eq!(names.len(), 50);
    }

    #[test]
    fn too_small_limit_is_an_error() {
        assert!(matches!(
            derive_name("wordpress", "123456", 7),
            Err(NameError::LimitTooSmall { limit: 7, .. })
        ));
        assert_eq!(derive_name("wordpress", "123456", 8).unwrap(), "w_123456");
    }

    #[test]
    fn empty_instance_id_is_an_error() {
        assert!(matches!(
            derive_name("wp", "", 64),
            Err(NameError::EmptyInstanceId { .. })
        ));
        assert!(matches!(
            derive_name("wp", "--", 64),
            Err(NameError::EmptyInstanceId { .. })
        ));
    }

    #[test]
    fn unique_name_appends_counters_within_the_limit() {
        let parts = NameParts::new("wordpress", "12").unwrap();
        // Limit 9: `wordpr_12`, then `word_12_2` (the counter costs two more bytes of the base).
        let taken: HashSet<&str> = ["wordpr_12", "word_12_2"].into();
        let name = unique_name::<NameError, _>(&parts, 9, |n| Ok(taken.contains(n))).unwrap();
        assert_eq!(name, "word_12_3");

        let taken: HashSet<String> =
            ["wordpress_12".to_owned(), "wordpress_12_2".to_owned()].into();
        let name = unique_name::<NameError, _>(&parts, 64, |n| Ok(taken.contains(n))).unwrap();
        assert_eq!(name, "wordpress_12_3");
    }

    #[test]
    fn unique_name_passes_the_check_error_through() {
        #[derive(Debug, PartialEq)]
        enum E {
            Check,
            Name(NameError),
        }
        impl From<NameError> for E {
            fn from(e: NameError) -> Self {
                E::Name(e)
            }
        }
        let parts = NameParts::new("wp", "1").unwrap();
        assert_eq!(unique_name(&parts, 64, |_| Err(E::Check)), Err(E::Check));
        let exhausted = unique_name(&parts, 64, |_| Ok::<_, E>(true)).unwrap_err();
        assert!(matches!(
            exhausted,
            E::Name(NameError::Exhausted { attempts: 1000, .. })
        ));
    }

    #[test]
    fn passwords_are_long_alphanumeric_and_different() {
        let a = generate_password();
        let b = generate_password();
        assert_eq!(a.expose().len(), PASSWORD_LENGTH);
        assert!(a.expose().chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a.expose(), b.expose());
        // Not all from one class (probability of failure ~ 2^-60).
        assert!(
            a.expose().chars().any(|c| c.is_ascii_digit())
                || b.expose().chars().any(|c| c.is_ascii_digit())
        );
        assert!(a.expose().chars().any(|c| c.is_ascii_uppercase()));
    }
}
