//! Fault injection points: named places in the code where a test build can make apsctl fail or
//! abort, so that tests can check every rollback and every crash recovery path, including those
//! inside a step (after N of M files, while a script runs, between two store writes, during a
//! database creation).
//!
//! Main decision: the points exist only in test builds. Without the `enabled` feature,
//! [`hit`] is an inlined `Ok(())` and [`configure`] ignores its input, so a release binary
//! neither reads the test variable nor can be made to misbehave by it. apsctl's own
//! `[dev-dependencies]` turn the feature on, which Cargo unifies into the binary that
//! `cargo test` builds for the integration tests.
//!
//! The specification (from the variable [`SPEC_VAR`], read once by `main`) is a comma-separated
//! list of `point[@N]=action`: the point fires on its N-th hit (default: the first), and the
//! action is `fail` (the call returns [`Injected`], which the operation treats as any other
//! failure) or `crash` (the process aborts on the spot, as a power cut would leave it).
//!
//! Known gap: the counters are per process, and a point hit on several threads at once fires on
//! whichever thread reaches the N-th hit first.
#![deny(missing_docs)]

/// The variable holding the specification in test builds.
pub const SPEC_VAR: &str = "APSCTL_TEST_FAULT";

/// Whether this build has fault points at all.
pub const ENABLED: bool = cfg!(feature = "enabled");

/// A failure injected at a fault point.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("injected failure at fault point `{point}` ({SPEC_VAR})")]
pub struct Injected {
    /// The point that fired.
    pub point: String,
}

/// A specification that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fault specification `{entry}` is not `point[@N]=fail|crash`")]
pub struct SpecError {
    /// The entry at fault.
    pub entry: String,
}

/// What a point does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Return [`Injected`].
    Fail,
    /// Abort the process.
    Crash,
}

/// One armed point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The point's name.
    pub point: String,
    /// Fires on this hit (1-based).
    pub nth: u64,
    /// What it does.
    pub action: Action,
}

/// Parses a specification (see the module doc).
pub fn parse(spec: &str) -> Result<Vec<Rule>, SpecError> {
    spec.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let bad = || SpecError {
                entry: entry.to_owned(),
            };
            let (target, action) = entry.rsplit_once('=').ok_or_else(bad)?;
            let action = match action {
                "fail" => Action::Fail,
                "crash" => Action::Crash,
                _ => return Err(bad()),
            };
            let (point, nth) = match target.rsplit_once('@') {
                Some((point, n)) => (
                    point,
                    n.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(bad)?,
                ),
                None => (target, 1),
            };
            if point.is_empty() {
                return Err(bad());
            }
            Ok(Rule {
                point: point.to_owned(),
                nth,
                action,
            })
        })
        .collect()
}

#[cfg(feature = "enabled")]
mod armed {
    use std::collections::BTreeMap;
    use std::sync::{Mutex, PoisonError};

    use super::{Action, Injected, Rule};

    /// The armed rules and how often each point was hit.
    static STATE: Mutex<(Vec<Rule>, BTreeMap<String, u64>)> =
        Mutex::new((Vec::new(), BTreeMap::new()));

    pub(super) fn configure(rules: Vec<Rule>) {
        let mut state = STATE.lock().unwrap_or_else(PoisonError::into_inner);
        *state = (rules, BTreeMap::new());
    }

    pub(super) fn hit(point: &str) -> Result<(), Injected> {
        let action = {
            let mut state = STATE.lock().unwrap_or_else(PoisonError::into_inner);
            let (rules, hits) = &mut *state;
            if rules.is_empty() {
                return Ok(());
            }
            let count = hits.entry(point.to_owned()).or_insert(0);
            *count += 1;
            let count = *count;
            rules
                .iter()
                .find(|r| r.point == point && r.nth == count)
                .map(|r| r.action)
        };
        match action {
            None => Ok(()),
            Some(Action::Fail) => Err(Injected {
                point: point.to_owned(),
            }),
            Some(Action::Crash) => std::process::abort(),
        }
    }
}

/// Arms the points of `spec` (replacing earlier ones). Without the `enabled` feature the
/// specification is only checked.
pub fn configure(spec: &str) -> Result<(), SpecError> {
    let rules = parse(spec)?;
    #[cfg(feature = "enabled")]
    armed::configure(rules);
    #[cfg(not(feature = "enabled"))]
    drop(rules);
    Ok(())
}

/// Passes the point `point`: fails or aborts when an armed rule says so.
#[cfg(feature = "enabled")]
pub fn hit(point: &str) -> Result<(), Injected> {
    armed::hit(point)
}

/// Passes the point `point` (a no-op in this build).
#[cfg(not(feature = "enabled"))]
#[inline]
pub fn hit(_point: &str) -> Result<(), Injected> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specifications_parse() {
        let rules = parse("deploy-file@3=crash, after:stage=fail").unwrap();
        assert_eq!(
            rules,
            vec![
                Rule {
                    point: "deploy-file".into(),
                    nth: 3,
                    action: Action::Crash
                },
                Rule {
                    point: "after:stage".into(),
                    nth: 1,
                    action: Action::Fail
                },
            ]
        );
        for bad in ["x", "x=boom", "=fail", "x@0=fail", "x@y=crash"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse("").unwrap().is_empty());
    }

    #[cfg(feature = "enabled")]
    #[test]
    fn the_nth_hit_fires() {
        configure("unit-point@2=fail").unwrap();
        assert!(hit("unit-point").is_ok());
        assert_eq!(
            hit("unit-point"),
            Err(Injected {
                point: "unit-point".into()
            })
        );
        assert!(hit("unit-point").is_ok());
        assert!(hit("other-point").is_ok());
        configure("").unwrap();
    }
}
