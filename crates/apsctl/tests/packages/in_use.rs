//! `package remove` is refused while an instance uses the package (REFERENCE §2.6).
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt as _;

use crate::support::{SITE_USER, Sandbox};

#[test]
fn package_in_use_cannot_be_removed() {
    let env = aps_ops::Env::from_process();
    let user = aps_host::user::ensure_test_user(&env, SITE_USER).expect("create the site user");
    let sandbox = Sandbox::new();
    // The site user must reach its docroot and its instance's private folder in the home.
    fs_err::set_permissions(sandbox.root(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let docroot = sandbox.work("docroot");
    fs_err::create_dir(&docroot).unwrap();
    fs_err::set_permissions(
        sandbox.root().join("work"),
        std::fs::Permissions::from_mode(0o711),
    )
    .unwrap();
    std::os::unix::fs::chown(&docroot, Some(user.uid()), Some(user.gid())).unwrap();

    let zip = sandbox.build_hello();
    let imported = sandbox
        .run([
            OsStr::new("--json"),
            OsStr::new("package"),
            OsStr::new("import"),
            zip.as_os_str(),
        ])
        .ok()
        .json();
    let reference = imported["package"].as_str().unwrap().to_owned();
    sandbox
        .run([
            OsStr::new("site"),
            OsStr::new("add"),
            OsStr::new("pkgsite"),
            OsStr::new("--docroot"),
            docroot.as_os_str(),
            OsStr::new("--url"),
            OsStr::new("http://localhost:8080/"),
            OsStr::new("--user"),
            OsStr::new(SITE_USER),
        ])
        .ok();
    let installed = sandbox
        .run([
            "--json",
            "install",
            &reference,
            "--site",
            "pkgsite",
            "--set",
            "admin_password=correct-horse-1",
            "--accept-license",
        ])
        .ok()
        .json();
    let instance = installed["instance"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| installed["instance"].as_u64().map(|n| n.to_string()))
        .unwrap_or_else(|| panic!("no instance id in {installed}"));
    assert!(
        docroot.join("hello/index.php").is_file(),
        "the instance was not deployed"
    );

    // Refused while the instance exists: the reason names the instance; nothing changes.
    let refused = sandbox
        .run(["package", "remove", &reference])
        .failed()
        .stderr_names(&[&reference]);
    assert!(
        refused.stderr.contains(&format!("`{instance}`"))
            || refused.stderr.contains(&format!("instance {instance}")),
        "the reason does not name instance {instance}\n{refused}"
    );
    assert_eq!(sandbox.package_refs(), std::slice::from_ref(&reference));
    let repository = sandbox.home().join("repository");
    assert_eq!(crate::support::files_below(&repository).len(), 1);
    sandbox
        .run(["--json", "package", "show", &reference])
        .ok()
        .json();

    // After the instance is removed, the package can go.
    sandbox.run(["remove", &instance, "--files", "all"]).ok();
    sandbox.run(["package", "remove", &reference]).ok();
    assert!(sandbox.package_refs().is_empty());
    assert!(crate::support::files_below(&repository).is_empty());
}
