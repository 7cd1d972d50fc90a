//! Updates (issue 10) through the real `apsctl` binary: which packages of the repository can
//! update an instance (`instance updates`), by their `patch`/`upgrade` rules evaluated against the
//! instance's installed metadata (REFERENCE §7.2–§7.5), and applying them (`upgrade`, in
//! `upgrade.rs`: the guestbook with real PHP and MariaDB).
//!
//! Main decision: packages are built in code, one per version, all of one identity unless the
//! test says otherwise, with a `sh` configuration script; the instance lives on a `--web none`
//! site of a real tenant (the security area's world).

#![expect(
    clippy::unwrap_used,
    reason = "test code: a failed setup or inspection step is a failed test"
)]

#[path = "../security/world.rs"]
#[expect(
    dead_code,
    reason = "the security area's fixture; this area uses part of it"
)]
mod world;

#[path = "../lifecycle/world.rs"]
#[expect(
    dead_code,
    reason = "the lifecycle area's fixture; this area uses part of it"
)]
mod gb;
mod upgrade;

use aps_test_support::PackageBuilder;
use serde_json::{Value, json};
use world::{World, show};

/// Builds and imports version `version`-`release` of the package `id`, with `rules` (raw
/// `<patch …/>`/`<upgrade …/>`/`<upgradable-from …/>` elements) after its presentation.
fn import(w: &World, id: &str, version: &str, release: &str, rules: &str) -> String {
    let meta = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<application xmlns="http://apstandard.com/ns/1" version="1.2">
  <id>http://example.invalid/aps/{id}</id>
  <name>updatable</name>
  <version>{version}</version>
  <release>{release}</release>
  <presentation>
    <summary>a package of the update tests</summary>
    <categories><category>Test</category></categories>
  </presentation>
  {rules}
  <service id="main">
    <presentation><name>updatable</name></presentation>
    <provision>
      <url-mapping>
        <default-prefix>app</default-prefix>
        <mapping url="/" path="htdocs"/>
      </url-mapping>
      <configuration-script name="configure">
        <script-language>sh</script-language>
      </configuration-script>
    </provision>
  </service>
</application>
"#
    );
    let zip = w.dir.join(format!("{id}-{version}-{release}.app.zip"));
    PackageBuilder::new()
        .app_meta(meta)
        .file(
            "htdocs/index.html",
            format!("<h1>{version}-{release}</h1>\n"),
        )
        .file("scripts/configure", "#!/bin/sh\nexit 0\n")
        .write(&zip)
        .unwrap();
    let run = w.apsctl(&["--json", "package", "import", &show(&zip)]);
    run.ok();
    run.json()["package"].as_str().unwrap().to_owned()
}

/// `instance updates ID --json`'s list.
fn updates(w: &World, id: &str) -> Vec<Value> {
    let run = w.apsctl(&["--json", "instance", "updates", id]);
    run.ok();
    run.json()["updates"].as_array().unwrap().clone()
}

/// Only higher versions of the same identity whose rule holds for the installed 1.0-1 are
/// offered, each labelled patch or upgrade (a package whose two rules hold appears twice), newest
/// first; a rule outside the supported subset never matches.
#[test]
fn issue_10_instance_updates_lists_what_the_rules_allow() {
    let w = World::new(1001);
    let tenant = w.tenant("a");
    w.site(&tenant, "site");
    let installed = import(&w, "upd", "1.0", "1", "");
    let id = w.install(&installed, "site", "app");
    assert_eq!(updates(&w, &id), Vec::<Value>::new());

    let patch = import(
        &w,
        "upd",
        "1.0",
        "2",
        r#"<patch match="/application/version = '1.0'" recommended="true"/>"#,
    );
    let upgrade = import(
        &w,
        "upd",
        "1.1",
        "1",
        r#"<upgrade match="/application/version &lt; '1.1'"/>"#,
    );
    let both = import(
        &w,
        "upd",
        "1.2",
        "1",
        r#"<patch match="/application/release = '1'"/><upgrade match="/application/version >= '1.0'"/>"#,
    );
    // Not offered: older, a rule that does not hold, a rule outside the subset, another identity.
    import(
        &w,
        "upd",
        "0.9",
        "1",
        r#"<upgrade match="/application/version = '1.0'"/>"#,
    );
    import(
        &w,
        "upd",
        "2.0",
        "1",
        r#"<upgrade match="/application/version = '0.5'"/>"#,
    );
    import(&w, "upd", "3.0", "1", r#"<upgrade match="//version"/>"#);
    import(
        &w,
        "other",
        "9.0",
        "1",
        r#"<upgrade match="/application/version = '1.0'"/>"#,
    );

    let entry = |package: &str, kind: &str, version: &str, release: &str, recommended: bool| json!({"package": package, "kind": kind, "version": version, "release": release, "recommended": recommended});
    assert_eq!(
        updates(&w, &id),
        [
            entry(&both, "patch", "1.2", "1", false),
            entry(&both, "upgrade", "1.2", "1", false),
            entry(&upgrade, "upgrade", "1.1", "1", false),
            entry(&patch, "patch", "1.0", "2", true),
        ]
    );
    let run = w.apsctl(&["instance", "updates", &id]);
    run.ok();
    assert!(run.stdout.contains("recommended"), "{run}");
    let run = w.apsctl(&["instance", "updates", "999"]);
    run.refused();
    assert_eq!(run.code, Some(3), "{run}");
}

/// Builds and imports the APS 1.0 package `updatable` (no `id`: its identity is its name) at
/// `version`-`release`, with `rules` (`<upgradable-from …/>` elements).
fn import_1_0(w: &World, version: &str, release: &str, rules: &str) -> String {
    let zip = w.dir.join(format!("old-{version}-{release}.app.zip"));
    PackageBuilder::new()
        .app_meta(format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<application xmlns="http://apstandard.com/ns/1">
  <name>updatable</name>
  <version>{version}</version>
  <release>{release}</release>
  <summary>a 1.0 package of the update tests</summary>
  <category>Test</category>
  {rules}
  <url-mapping>
    <default-prefix>app</default-prefix>
    <mapping url="/" path="htdocs"/>
  </url-mapping>
  <configuration-script name="configure"><script-language>sh</script-language></configuration-script>
</application>
"#
        ))
        .file("htdocs/index.html", format!("<h1>{version}</h1>\n"))
        .file("scripts/configure", "#!/bin/sh\nexit 0\n")
        .write(&zip)
        .unwrap();
    let run = w.apsctl(&["--json", "package", "import", &show(&zip)]);
    run.ok();
    run.json()["package"].as_str().unwrap().to_owned()
}

/// APS 1.0 `upgradable-from` counts as an upgrade rule (§7.5): exactly the version (and release)
/// it names.
#[test]
fn issue_10_upgradable_from_counts_as_an_upgrade_rule() {
    let w = World::new(1002);
    let tenant = w.tenant("a");
    w.site(&tenant, "site");
    let installed = import_1_0(&w, "1.0", "1", "");
    let id = w.install(&installed, "site", "app");
    let named = import_1_0(
        &w,
        "1.5",
        "1",
        r#"<upgradable-from version="1.0" release="1"/><upgradable-from version="0.9"/>"#,
    );
    import_1_0(
        &w,
        "1.6",
        "1",
        r#"<upgradable-from version="1.0" release="2"/>"#,
    );
    let found = updates(&w, &id);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["package"], named.as_str());
    assert_eq!(found[0]["kind"], "upgrade");
}
