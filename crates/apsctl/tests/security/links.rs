//! Links the tenant plants in its own site while apsctl deploys or removes files there: apsctl
//! never follows one (`aps_host::safedir`), and a rollback removes only what it deployed.
use crate::world::{Package, World, as_tenant_ok, show, tree, victim};

/// A configuration script that does nothing.
const QUIET: &str = "exit 0\n";

fn quiet_package(world: &World) -> String {
    world.package(&Package {
        name: "quiet",
        language: "sh",
        configure: QUIET,
        sqlite: false,
    })
}

#[test]
fn a_link_planted_inside_the_instance_is_not_followed_when_removing_application_files() {
    let world = World::new(11);
    let tenant = world.tenant("a");
    world.site(&tenant, "s");
    let reference = quiet_package(&world);
    let id = world.install(&reference, "s", "app");
    let root = world.root(&id);
    let victim = victim(&world.dir, "victim");
    let before = tree(&victim);
    as_tenant_ok(
        &tenant,
        &format!(
            "cd '{}' && mv data data.real && ln -s '{}' data",
            show(&root),
            show(&victim)
        ),
    );

    let run = world.apsctl(&["--json", "remove", &id, "--files", "app"]);
    run.ok();
    assert_eq!(tree(&victim), before, "the link's target is untouched");
    let kept: Vec<String> = run.json()["kept_files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["path"].as_str().map(str::to_owned))
        .collect();
    assert!(
        kept.contains(&"data".to_owned()),
        "the planted link is listed as kept: {kept:?}"
    );
    assert!(
        fs_err::symlink_metadata(root.join("data"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn an_instance_root_swapped_for_a_link_is_neither_chmodded_nor_emptied() {
    let world = World::new(12);
    let tenant = world.tenant("a");
    let docroot = world.site(&tenant, "s");
    let reference = quiet_package(&world);
    let id = world.install(&reference, "s", "app");
    let victim = victim(&world.dir, "victim");
    let before = tree(&victim);
    as_tenant_ok(
        &tenant,
        &format!(
            "cd '{}' && mv app app.real && ln -s '{}' app",
            show(&docroot),
            show(&victim)
        ),
    );

    // The instance root is a link now: the removal takes the root for gone, and the link and
    // what it points to are left alone.
    let run = world.apsctl(&["--json", "remove", &id, "--files", "all"]);
    run.ok();
    assert_eq!(run.json()["removed"], 0, "{run}");
    assert_eq!(
        tree(&victim),
        before,
        "the link's target was not chmodded or emptied"
    );
    assert!(
        fs_err::symlink_metadata(docroot.join("app"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the tenant's link is theirs to keep"
    );
    assert!(
        docroot.join("app.real/index.html").exists(),
        "files moved away by the tenant are theirs to keep"
    );
    assert!(world.instances().is_empty());
}

#[test]
fn a_failed_install_after_deploy_removes_only_what_it_deployed() {
    let world = World::new(13);
    let tenant = world.tenant("a");
    let docroot = world.site(&tenant, "s");
    let reference = quiet_package(&world);
    // Something of the tenant's next to the instance must survive the rollback.
    as_tenant_ok(
        &tenant,
        &format!("echo mine > '{}'", show(&docroot.join("keep.txt"))),
    );
    let run = world.apsctl_env(
        &["install", &reference, "--site", "s", "--path", "app"],
        &[("APSCTL_TEST_FAULT", "after:deploy=fail")],
    );
    run.refused();
    assert!(run.stderr.contains("injected failure"), "{run}");
    let left: Vec<String> = fs_err::read_dir(&docroot)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["keep.txt"], "only the tenant's own file is left");
    assert!(world.instances().is_empty());
}
