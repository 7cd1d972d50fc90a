//! A5: apsctl's own files whatever the admin's umask, and an instance's private metadata changed
//! behind apsctl's back.
#![expect(
    clippy::unwrap_used,
    reason = "test: a failed setup step is a failed test"
)]
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;

use crate::world::{Package, World, show};

/// Logs every run to the tenant's `ran.log`; `install` also makes a file and a folder in the
/// instance root, whose modes show the umask scripts run under.
const LOGGING_CONFIGURE: &str = r#"echo "$1" >> "$HOME/ran.log"
if [ "$1" = install ]; then
  echo made > "$WEB___DIR/made-by-script" && mkdir "$WEB___DIR/dir-by-script" || exit 1
fi
exit 0
"#;

/// Every entry of `dir` and below that group or others may write to, with its mode.
fn writable_by_others(dir: &Path, out: &mut Vec<String>) {
    for entry in fs_err::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = fs_err::symlink_metadata(&path).unwrap();
        if meta.file_type().is_symlink() {
            continue;
        }
        if meta.mode() & 0o022 != 0 {
            out.push(format!("{} ({:o})", show(&path), meta.mode() & 0o7777));
        }
        if meta.is_dir() {
            writable_by_others(&path, out);
        }
    }
}

fn mode_of(path: &Path) -> u32 {
    fs_err::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// A5: under `umask 000` apsctl's home (folders, private metadata, lock files, store) is
/// writable by nobody but root. A private `APP-META.xml` whose script name leaves the private
/// folder, or that others may write to, is refused by `configure` and `remove`, naming the file,
/// before anything runs. Scripts run under umask 022 whatever apsctl's own is.
///
/// Before the fixes, the lock files and the private `APP-META.xml` were created 0666 under
/// umask 000, the tampered script name ran, and scripts inherited umask 000.
#[test]
fn issue_7_a5_umask_and_tampered_private_metadata() {
    let world = World::new(5);
    let a = world.tenant("a");
    world.set_umask("000");
    world.site(&a, "s");
    let reference = world.package(&Package {
        name: "logged",
        language: "sh",
        configure: LOGGING_CONFIGURE,
        sqlite: false,
    });
    let id = world.install(&reference, "s", "app");
    let root = world.root(&id);
    // Modes of what the script made; asserted last.
    let script_made = [
        (root.join("made-by-script"), 0o644),
        (root.join("dir-by-script"), 0o755),
    ]
    .map(|(path, wanted)| (mode_of(&path), wanted, path));

    let meta = world.private(&id).join("meta/APP-META.xml");
    let mut open = Vec::new();
    writable_by_others(&world.home, &mut open);
    assert!(
        open.is_empty(),
        "under umask 000 these are writable by group or others: {open:#?}"
    );
    assert!(meta.is_file());
    assert!(
        world
            .home
            .join(format!("locks/instance-{id}.lock"))
            .is_file()
    );
    assert!(world.home.join("locks/site-s.lock").is_file());

    // Root (or a bug) changes the private copy: the script name leaves the private folder and
    // points at a script waiting in the home.
    let original = fs_err::read_to_string(&meta).unwrap();
    let outside = world.home.join("tmp/x.php");
    let marker = a.home().join("outside-script-ran");
    fs_err::create_dir_all(outside.parent().unwrap()).unwrap();
    fs_err::write(&outside, format!("touch '{}'\n", show(&marker))).unwrap();
    for path in [outside.parent().unwrap(), &outside] {
        let mode = if path.is_dir() { 0o755 } else { 0o644 };
        fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let tampered = original.replace(
        r#"<configuration-script name="configure">"#,
        r#"<configuration-script name="../../../tmp/x.php">"#,
    );
    assert_ne!(tampered, original);
    fs_err::write(&meta, &tampered).unwrap();
    let ran_log = a.home().join("ran.log");
    let ran_before = fs_err::read_to_string(&ran_log).unwrap();
    refused_without_running(&world, &id, &meta, &root);
    assert!(
        !marker.exists(),
        "the script outside the private folder ran"
    );

    // The right content, but a file others may write to.
    fs_err::write(&meta, &original).unwrap();
    fs_err::set_permissions(&meta, std::fs::Permissions::from_mode(0o666)).unwrap();
    let run = refused_without_running(&world, &id, &meta, &root);
    assert!(
        run.stderr.contains("666"),
        "the mode at fault is named\n{run}"
    );
    assert_eq!(
        fs_err::read_to_string(&ran_log).unwrap(),
        ran_before,
        "a script ran from tampered metadata"
    );
    assert!(!marker.exists());

    // Put right, the same commands run again.
    fs_err::set_permissions(&meta, std::fs::Permissions::from_mode(0o644)).unwrap();
    world
        .apsctl(&["configure", &id, "--set", "title=fine"])
        .ok();
    world.apsctl(&["remove", &id, "--files", "all"]).ok();
    assert!(
        fs_err::read_to_string(&ran_log)
            .unwrap()
            .ends_with("configure\nremove\n")
    );

    for (mode, wanted, path) in script_made {
        assert_eq!(
            mode,
            wanted,
            "`{}`, made by the install script under apsctl's umask 000, has mode {mode:o}",
            show(&path)
        );
    }
}

/// `configure` and `remove` of instance `id` both refuse, naming `meta`; the instance and its
/// files (in `root`) stay. Returns the removal's run.
#[track_caller]
fn refused_without_running(world: &World, id: &str, meta: &Path, root: &Path) -> crate::world::Run {
    world
        .apsctl(&["configure", id, "--set", "title=tampered"])
        .refused()
        .names(&[&show(meta)]);
    let run = world.apsctl(&["remove", id, "--files", "all"]);
    run.refused().names(&[&show(meta)]);
    assert_eq!(world.instances(), [id.to_owned()]);
    assert!(root.join("index.html").exists());
    run
}
