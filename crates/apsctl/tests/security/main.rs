//! Security regressions: a site's user owns its document root and may plant symbolic links
//! anywhere in it while apsctl, running as root, deploys or removes files there. apsctl must
//! never follow such a link (`aps_host::safedir`).
#![expect(
    clippy::disallowed_methods,
    reason = "the test runs runuser and chown directly to play the site user"
)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const USER: &str = "apsctl-sec";

struct World {
    dir: tempfile::TempDir,
    reference: String,
}

impl World {
    /// A home with the example package imported and a site owned by the test user.
    fn new() -> Self {
        // A login account: `site add` refuses system accounts (issue 7).
        aps_host::user::ensure_test_user(&aps_host::env::Env::from_process(), USER)
            .unwrap_or_else(|e| panic!("cannot create the test user {USER}: {e}"));
        let dir = tempfile::Builder::new()
            .prefix("apsctl-sec-")
            .tempdir()
            .expect("temp dir");
        fs_err::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let docroot = dir.path().join("site");
        fs_err::create_dir(&docroot).expect("docroot");
        let chown = Command::new("chown")
            .arg(format!("{USER}:"))
            .arg(&docroot)
            .status()
            .expect("chown");
        assert!(chown.success());
        let mut world = Self {
            dir,
            reference: String::new(),
        };
        let zip = world.path("hello.app.zip");
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello");
        world.ok(&[
            "package",
            "build",
            examples.to_str().expect("utf-8"),
            "--out",
            zip.to_str().expect("utf-8"),
        ]);
        let out = world.ok(&["--json", "package", "import", zip.to_str().expect("utf-8")]);
        let json: serde_json::Value = serde_json::from_str(&out).expect("import prints JSON");
        json["package"]
            .as_str()
            .expect("a reference")
            .clone_into(&mut world.reference);
        let docroot = docroot.to_str().expect("utf-8").to_owned();
        world.ok(&[
            "site",
            "add",
            "sec",
            "--docroot",
            &docroot,
            "--url",
            "http://localhost/",
            "--user",
            USER,
        ]);
        world
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_apsctl"))
            .arg("--home")
            .arg(self.path("home"))
            .args(args)
            .env_remove("APSCTL_TEST_FAIL_AFTER")
            .env_remove("APSCTL_TEST_CRASH_AFTER")
            .output()
            .expect("run apsctl")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "apsctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn install(&self) {
        let reference = self.reference.clone();
        self.ok(&[
            "install",
            &reference,
            "--site",
            "sec",
            "--set",
            "admin_password=secret-123",
            "--accept-license",
        ]);
    }

    /// Runs a shell command as the site's user (the attacker).
    fn as_user(script: &str) {
        let status = Command::new("runuser")
            .args(["-u", USER, "--", "sh", "-c", script])
            .status()
            .expect("runuser");
        assert!(status.success(), "`{script}` failed as {USER}");
    }

    /// A root-owned folder outside the site with a file that looks like one of the package's.
    fn victim(&self) -> PathBuf {
        let victim = self.path("victim");
        fs_err::create_dir_all(&victim).expect("victim");
        fs_err::write(
            victim.join("README.txt"),
            "Files written by the application live here.\n",
        )
        .expect("victim file");
        fs_err::set_permissions(&victim, std::fs::Permissions::from_mode(0o751)).expect("chmod");
        victim
    }
}

#[test]
fn a_link_planted_inside_the_instance_is_not_followed_when_removing_application_files() {
    let world = World::new();
    world.install();
    let victim = world.victim();
    let root = world.path("site/hello");
    World::as_user(&format!(
        "cd {} && mv data data.real && ln -s {} data",
        root.display(),
        victim.display()
    ));

    let out = world.run(&["--json", "remove", "1", "--files", "app"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(
        fs_err::read_to_string(victim.join("README.txt")).expect("victim kept"),
        "Files written by the application live here.\n"
    );
    let kept: Vec<&str> = report["kept_files"]
        .as_array()
        .expect("kept_files")
        .iter()
        .filter_map(|k| k["path"].as_str())
        .collect();
    assert!(
        kept.contains(&"data"),
        "the planted link is listed as kept: {kept:?}"
    );
    assert!(
        fs_err::symlink_metadata(root.join("data"))
            .expect("link kept")
            .file_type()
            .is_symlink()
    );
}

#[test]
fn an_instance_root_swapped_for_a_link_is_neither_chmodded_nor_emptied() {
    let world = World::new();
    world.install();
    let victim = world.victim();
    let root = world.path("site/hello");
    World::as_user(&format!(
        "cd {} && mv hello hello.real && ln -s {} hello",
        root.parent().expect("parent").display(),
        victim.display()
    ));

    let out = world.run(&["remove", "1", "--files", "all"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta = fs_err::metadata(&victim).expect("victim");
    assert_eq!(
        meta.permissions().mode() & 0o7777,
        0o751,
        "the link's target was not chmodded"
    );
    assert!(
        victim.join("README.txt").exists(),
        "the link's target was not emptied"
    );
    assert!(
        world.path("site/hello.real/index.php").exists(),
        "files moved away by the user are theirs to keep"
    );
}

#[test]
fn a_failed_install_after_deploy_removes_only_what_it_deployed() {
    let world = World::new();
    // Something of the user's next to the instance must survive the rollback.
    World::as_user(&format!(
        "echo mine > {}",
        world.path("site/keep.txt").display()
    ));
    let reference = world.reference.clone();
    let out = Command::new(env!("CARGO_BIN_EXE_apsctl"))
        .arg("--home")
        .arg(world.path("home"))
        .args([
            "install",
            &reference,
            "--site",
            "sec",
            "--set",
            "admin_password=secret-123",
            "--accept-license",
        ])
        .env("APSCTL_TEST_FAIL_AFTER", "deploy")
        .output()
        .expect("run apsctl");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("injected failure"));
    let left: Vec<String> = fs_err::read_dir(world.path("site"))
        .expect("docroot")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        vec!["keep.txt".to_owned()],
        "only the user's own file is left"
    );
    assert_eq!(
        world
            .ok(&["--json", "instance", "list"])
            .matches("\"instance\"")
            .count(),
        0
    );
}
