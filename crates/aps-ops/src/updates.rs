//! Update candidates (REFERENCE §7.1–§7.5, D2, D3): the packages in the repository that can
//! update an instance, each labelled patch or upgrade.
//!
//! Main decisions: a candidate has the instance's package identity and a higher version-release
//! (D2), and its `patch/@match` or `upgrade/@match` (or, for APS 1.0, its `upgradable-from`
//! turned into the equivalent rule) is true against the instance's **installed** metadata, read
//! from its private copy (which is checked like an import each time it is read). A package whose
//! two rules both hold is offered twice, once per kind (§11 Q14: every match, labelled); one
//! step only, no bridge upgrades. A rule outside the supported `XPath` subset never matches (it
//! was reported by lint at import).
//! Applying a candidate is `upgrade.rs`.
use aps_meta::matchexpr::MatchExpr;
use aps_meta::model::Package;
use aps_meta::version::Version;
use serde::Serialize;

use crate::context::Context;
use crate::error::Error;
use crate::instance::Loaded;

/// Patch or upgrade (§7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Version change only: no new resources, same mapping tree, no new setting without default.
    Patch,
    /// Anything may change.
    Upgrade,
}

/// One package that can update an instance (CLI.md `instance updates`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// The package's reference in the repository.
    pub package: String,
    /// Patch or upgrade.
    pub kind: Kind,
    /// Its version.
    pub version: String,
    /// Its release.
    pub release: String,
    /// `recommended="true"` on its patch rule (security or critical fixes).
    pub recommended: bool,
}

/// The rules of `meta` by kind, with their `recommended` flag: `patch`, `upgrade`, and 1.0
/// `upgradable-from` as an upgrade rule.
pub fn rules(meta: &Package) -> Vec<(Kind, Option<MatchExpr>, bool)> {
    let mut out = Vec::new();
    if let Some(rule) = &meta.patch {
        out.push((
            Kind::Patch,
            MatchExpr::parse(&rule.match_rule).ok(),
            rule.recommended,
        ));
    }
    if let Some(rule) = &meta.upgrade {
        out.push((
            Kind::Upgrade,
            MatchExpr::parse(&rule.match_rule).ok(),
            false,
        ));
    }
    if !meta.upgradable_from.is_empty() {
        let items: Vec<(String, Option<String>)> = meta
            .upgradable_from
            .iter()
            .map(|u| (u.version.clone(), u.release.clone()))
            .collect();
        out.push((
            Kind::Upgrade,
            MatchExpr::from_upgradable_from(&items),
            false,
        ));
    }
    out
}

/// Whether version-release `a` is above `b` (D2: version first, then release).
pub fn is_newer(a: (&str, &str), b: (&str, &str)) -> bool {
    (Version::new(a.0), Version::new(a.1)) > (Version::new(b.0), Version::new(b.1))
}

/// The kinds by which `candidate` can update an installed package whose APP-META.xml is
/// `installed_xml` at version-release `installed`.
pub fn kinds(
    candidate: &Package,
    installed: (&str, &str),
    installed_xml: &str,
) -> Vec<(Kind, bool)> {
    if !is_newer((&candidate.version, &candidate.release), installed) {
        return Vec::new();
    }
    rules(candidate)
        .into_iter()
        .filter_map(|(kind, rule, recommended)| {
            let holds = rule?.evaluate(installed_xml).unwrap_or(false);
            holds.then_some((kind, recommended))
        })
        .collect()
}

/// The candidates for instance `id`, newest first.
pub fn updates(ctx: &Context, id: &str) -> Result<Vec<Candidate>, Error> {
    let loaded = Loaded::load(ctx, id)?;
    let installed_xml = loaded.private_meta_text()?;
    let installed = ctx.store()?.packages().get(&loaded.instance.package_ref)?;
    let mut out = Vec::new();
    for summary in ctx
        .store()?
        .packages()
        .find_by_identity(&installed.summary.identity)?
    {
        let candidate = crate::package::load(ctx, &summary.package_ref)?;
        let version = (
            installed.summary.version.as_str(),
            installed.summary.release.as_str(),
        );
        for (kind, recommended) in kinds(&candidate.meta, version, &installed_xml) {
            out.push(Candidate {
                package: summary.package_ref.clone(),
                kind,
                version: candidate.meta.version.clone(),
                release: candidate.meta.release.clone(),
                recommended,
            });
        }
    }
    out.sort_by(|a, b| {
        (Version::new(&b.version), Version::new(&b.release))
            .cmp(&(Version::new(&a.version), Version::new(&a.release)))
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(path: &str) -> String {
        fs_err::read_to_string(format!(
            "{}/../../../shared/corpus/aps1/{path}/APP-META.xml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    /// The installed metadata of `xml` with its version and release replaced.
    fn at_version(xml: &str, version: &str, release: &str) -> String {
        let v0 = xml.find("<version>").unwrap();
        let v1 = xml[v0..].find("</version>").unwrap() + v0;
        let mut out = format!("{}<version>{version}{}", &xml[..v0], &xml[v1..]);
        let r0 = out.find("<release>").unwrap();
        let r1 = out[r0..].find("</release>").unwrap() + r0;
        out = format!("{}<release>{release}{}", &out[..r0], &out[r1..]);
        out
    }

    /// The real `WordPress` 5.2.3-282 metadata as a candidate, its upgrade rule evaluated against
    /// installed 5.0-1 (an older version: it applies) and 5.2.3-282 itself (not newer: none).
    #[test]
    fn the_wordpress_rule_against_installed_versions() {
        let xml = corpus("wordpress-5.2.3");
        let parsed = aps_meta::parse::parse_app_meta(xml.as_bytes(), "APP-META.xml").unwrap();
        let wp = parsed.package;
        assert!(
            !rules(&wp).is_empty(),
            "the corpus WordPress declares an update rule"
        );
        let old = at_version(&xml, "5.0", "1");
        let found = kinds(&wp, ("5.0", "1"), &old);
        assert!(!found.is_empty(), "5.2.3-282 updates 5.0-1");
        let same = kinds(&wp, ("5.2.3", "282"), &xml);
        assert!(
            same.is_empty(),
            "a package does not update itself: {same:?}"
        );
        let newer = at_version(&xml, "6.0", "1");
        assert!(kinds(&wp, ("6.0", "1"), &newer).is_empty());
    }

    #[test]
    fn versions_compare_by_d2() {
        assert!(is_newer(("5.2.3", "282"), ("5.0", "1")));
        assert!(is_newer(("1.0", "2"), ("1.0", "1")));
        assert!(is_newer(("10", "1"), ("10.RC33", "1")));
        assert!(!is_newer(("2.9", "1"), ("2.10", "1")));
        assert!(!is_newer(("1.0", "1"), ("1.0", "1")));
    }
}
