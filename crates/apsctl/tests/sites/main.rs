//! `site add` refuses every site apsctl could not act on safely (hardening issue 7, items A2,
//! A3 and D16): links on the way to the document root, overlapping sites, document roots of
//! someone else or of the system, system accounts, folders others may write to, missing folders
//! and URLs with hidden parts.
//!
//! Main decision: every test drives the real binary as root with real login accounts
//! (`apsctl-st<N>a`, `apsctl-st<N>b`: tenants of test number N, created by
//! `aps_host::user::ensure_test_user` and deleted when the test's [`World`] is dropped), and
//! builds its folders below its own temporary folder, as an administrator would lay out sites
//! below `/home`. Every refusal is checked for its exit status, for naming the folder, site or
//! user at fault, and for storing nothing.
#![expect(
    clippy::unwrap_used,
    reason = "test fixture: a failed setup step is a failed test"
)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use aps_host::env::Env;
use aps_host::user::SystemUser;

/// userdel locks `/etc/passwd`; the tests of this binary take turns.
static ACCOUNTS: Mutex<()> = Mutex::new(());

/// One test's world: a controller home, a folder for its sites and its tenants.
struct World {
    n: u32,
    dir: tempfile::TempDir,
    users: Mutex<Vec<String>>,
}

/// What one apsctl run printed.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn ok(&self) -> &Self {
        assert_eq!(
            self.code,
            Some(0),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts exit status `code` and that stderr names every one of `names` in backticks.
    #[track_caller]
    fn refused(&self, code: i32, names: &[&str]) -> &Self {
        assert_eq!(self.code, Some(code), "stderr:\n{}", self.stderr);
        for name in names {
            assert!(
                self.stderr.contains(&format!("`{name}`")),
                "stderr does not name `{name}`:\n{}",
                self.stderr
            );
        }
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        self
    }
}

impl World {
    /// Test number `n`'s world; its folder is searchable by everyone, like `/home`.
    fn new(n: u32) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("apsctl-st{n}-"))
            .tempdir()
            .unwrap();
        fs_err::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Self {
            n,
            dir,
            users: Mutex::new(Vec::new()),
        }
    }

    /// The tenant `tag` (`a`, `b`) of this test, created on first use.
    fn user(&self, tag: &str) -> SystemUser {
        let name = format!("apsctl-st{}{tag}", self.n);
        let user = aps_host::user::ensure_test_user(&Env::from_process(), &name).unwrap();
        let mut users = self.users.lock().unwrap();
        if !users.contains(&name) {
            users.push(name);
        }
        user
    }

    /// A path in this test's folder.
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Creates the folders of `rel` (below this test's folder), each owned by `owner` (root
    /// when `None`) with mode 0755; returns the full path.
    fn folders(&self, rel: &str, owner: Option<&SystemUser>) -> PathBuf {
        let mut path = self.dir.path().to_path_buf();
        for part in Path::new(rel).components() {
            path.push(part);
            if !path.exists() {
                fs_err::create_dir(&path).unwrap();
                fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
                if let Some(user) = owner {
                    chown(&path, user);
                }
            }
        }
        path
    }

    fn apsctl(&self, args: &[&str]) -> Run {
        let out = assert_cmd::Command::new(env!("CARGO_BIN_EXE_apsctl"))
            .arg("--home")
            .arg(self.path("home"))
            .args(args)
            .env_remove("APSCTL_HOME")
            .env_remove("APSCTL_MIN_SITE_UID")
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `site add NAME --docroot DOCROOT --url http://NAME.test/ [--user USER] EXTRA…`.
    fn add(&self, name: &str, docroot: &Path, user: Option<&SystemUser>, extra: &[&str]) -> Run {
        let url = format!("http://{name}.test/");
        let docroot = docroot.to_str().unwrap();
        let mut args = vec!["site", "add", name, "--docroot", docroot, "--url", &url];
        if let Some(user) = user {
            args.extend(["--user", user.name()]);
        }
        args.extend(extra);
        self.apsctl(&args)
    }

    /// The names of the registered sites.
    fn sites(&self) -> Vec<String> {
        let run = self.apsctl(&["--json", "site", "list"]);
        run.ok();
        let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        json["sites"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Runs `script` with `sh -c` as `user` (playing the tenant).
    fn as_user(user: &SystemUser, script: &str) {
        let out = assert_cmd::Command::new("runuser")
            .args(["-u", user.name(), "--", "sh", "-c", script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "`{script}` failed as {}: {}",
            user.name(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _turn = ACCOUNTS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let users = std::mem::take(
            &mut *self
                .users
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for user in users {
            // Another test binary may hold the passwd lock for a moment (exit 10).
            for _ in 0..20 {
                let out = assert_cmd::Command::new("userdel")
                    .args(["--remove", &user])
                    .output();
                if !matches!(out, Ok(ref o) if o.status.code() == Some(10)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }
}

fn chown(path: &Path, user: &SystemUser) {
    std::os::unix::fs::lchown(path, Some(user.uid()), Some(user.gid())).unwrap();
}

fn chmod(path: &Path, mode: u32) {
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn show(path: &Path) -> String {
    path.display().to_string()
}

/// A2: the tenant of `a.example` replaces its own folder `a.example` with a link to the other
/// tenant's `b.example`; registering `a.example/public_html` then must not register (and later
/// remove files in) `b.example/public_html`.
#[test]
fn issue_7_a_docroot_behind_a_planted_link_is_refused() {
    let w = World::new(1);
    let (a, b) = (w.user("a"), w.user("b"));
    let theirs = w.folders("b/domains/b.example/public_html", Some(&b));
    fs_err::write(theirs.join("index.html"), "b's site").unwrap();
    let ours = w.folders("a/domains/a.example/public_html", Some(&a));
    // The layout itself is fine.
    w.add("a", &ours, Some(&a), &[]).ok();
    w.apsctl(&["site", "remove", "a"]).ok();

    let domains = w.path("a/domains");
    World::as_user(
        &a,
        &format!(
            "cd '{}' && mv a.example a.old && ln -s ../../b/domains/b.example a.example",
            show(&domains)
        ),
    );
    let link = domains.join("a.example");
    let run = w.add("a", &ours, Some(&a), &[]);
    run.refused(2, &[&show(&ours), &show(&link)]);
    assert!(run.stderr.contains("symbolic link"), "{}", run.stderr);
    // Without --user apsctl would otherwise take the owner of what the link points to.
    w.add("a", &ours, None, &[]).refused(2, &[&show(&link)]);

    // The document root itself as a link.
    let public = w.path("a/domains/a.old/public_html");
    World::as_user(
        &a,
        &format!(
            "cd '{}' && mv public_html real && ln -s '{}' public_html",
            show(&w.path("a/domains/a.old")),
            show(&theirs)
        ),
    );
    w.add("a", &public, Some(&a), &[])
        .refused(2, &[&show(&public)]);
    assert!(w.sites().is_empty());
    assert!(theirs.join("index.html").exists());
}

/// A3: no site's files are another's: equal, nested and enclosing document roots are refused
/// (exit 4, naming the other site), compared by path components.
#[test]
fn issue_7_overlapping_docroots_are_refused() {
    let w = World::new(2);
    let (a, b) = (w.user("a"), w.user("b"));
    let www = w.folders("sites/www", Some(&a));
    w.add("first", &www, Some(&a), &[]).ok();

    // The same folder for another user, spelled differently.
    let spelled = format!("{}//./", show(&www));
    let run = w.apsctl(&[
        "site",
        "add",
        "same",
        "--docroot",
        &spelled,
        "--url",
        "http://same.test/",
        "--user",
        a.name(),
    ]);
    run.refused(4, &["first"]);
    chown(&www, &b);
    w.add("same", &www, Some(&b), &[]).refused(4, &["first"]);
    chown(&www, &a);

    let inner = w.folders("sites/www/inner", Some(&a));
    w.add("inner", &inner, Some(&a), &[])
        .refused(4, &[&show(&inner), "first"]);
    // The parent of every site.
    let sites = w.path("sites");
    chown(&sites, &a);
    w.add("all", &sites, Some(&a), &[])
        .refused(4, &[&show(&sites), &show(&www), "first"]);
    assert_eq!(w.sites(), ["first"]);
    std::os::unix::fs::chown(&sites, Some(0), Some(0)).unwrap();

    // A sibling whose name merely starts with the same text is another folder.
    let sibling = w.folders("sites/www2", Some(&b));
    w.add("second", &sibling, Some(&b), &[]).ok();
    assert_eq!(w.sites(), ["first", "second"]);
}

/// A3: the document root belongs to the site's user; apsctl's own home and the system's folders
/// are nobody's document root.
#[test]
fn issue_7_docroots_of_others_and_of_the_system_are_refused() {
    let w = World::new(3);
    let (a, b) = (w.user("a"), w.user("b"));
    let bs = w.folders("b-www", Some(&b));
    w.add("s", &bs, Some(&a), &[])
        .refused(2, &[&show(&bs), a.name(), b.name()]);
    // Root's folder, with and without --user.
    let roots = w.folders("root-www", None);
    w.add("s", &roots, Some(&a), &[])
        .refused(2, &[&show(&roots), "root"]);
    w.add("s", &roots, None, &[]).refused(2, &["root"]);

    for system in ["/", "/etc", "/usr", "/tmp", "/var/tmp", "/var/lib", "/home"] {
        w.add("s", Path::new(system), Some(&a), &[])
            .refused(2, &[system]);
    }
    for (inside, tree) in [
        ("/etc/apsctl-st3", "/etc"),
        ("/usr/share/apsctl-st3", "/usr"),
        ("/var/lib/apsctl-st3", "/var/lib"),
        ("/dev/shm/apsctl-st3", "/dev"),
    ] {
        // Refused before anything looks at the folder (it need not exist).
        w.add("s", Path::new(inside), Some(&a), &[])
            .refused(2, &[inside, tree]);
    }

    // apsctl's home: neither inside it nor above it.
    w.apsctl(&["site", "list"]).ok();
    let home = w.path("home");
    let in_home = home.join("www");
    fs_err::create_dir(&in_home).unwrap();
    chown(&in_home, &a);
    w.add("s", &in_home, Some(&a), &[])
        .refused(2, &[&show(&in_home), &show(&home)]);
    chown(w.dir.path(), &a);
    w.add("s", w.dir.path(), Some(&a), &[])
        .refused(2, &[&show(w.dir.path()), &show(&home)]);
    assert!(w.sites().is_empty());
}

/// A3: a site's user is a login account; system accounts are refused unless the limit is
/// lowered on purpose, and root always.
#[test]
fn issue_7_system_accounts_are_refused_as_site_users() {
    let w = World::new(4);
    let daemon = SystemUser::lookup("daemon").unwrap();
    let www = w.folders("daemon-www", Some(&daemon));
    w.add("s", &www, Some(&daemon), &[]).refused(2, &["daemon"]);
    w.add("s", &www, None, &[]).refused(2, &["daemon"]);
    assert!(w.sites().is_empty());

    // Root stays refused whatever the limit.
    let roots = w.folders("root-www", None);
    let root = SystemUser::lookup("root").unwrap();
    w.add("s", &roots, Some(&root), &["--min-site-uid", "0"])
        .refused(2, &["root"]);

    // The limit is configurable (flag or environment).
    let uid = daemon.uid().to_string();
    w.add("s", &www, Some(&daemon), &["--min-site-uid", &uid])
        .ok();
    let out = assert_cmd::Command::new(env!("CARGO_BIN_EXE_apsctl"))
        .arg("--home")
        .arg(w.path("home"))
        .args(["site", "add", "t", "--url", "http://t.test/", "--docroot"])
        .arg(w.folders("daemon-www2", Some(&daemon)))
        .env("APSCTL_MIN_SITE_UID", &uid)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(w.sites(), ["s", "t"]);
}

/// A2: nobody but root and the site's user may be able to replace a folder on the way to the
/// document root; `/tmp`-like sticky folders are fine when the entry below them is trusted.
#[test]
fn issue_7_docroots_below_folders_others_can_write_are_refused() {
    let w = World::new(5);
    let (a, b) = (w.user("a"), w.user("b"));

    // Below a folder of another tenant.
    let under_b = w.folders("b-home", Some(&b));
    let docroot = w.folders("b-home/www", Some(&a));
    w.add("s", &docroot, Some(&a), &[])
        .refused(2, &[&show(&under_b), b.name(), a.name()]);

    // Below a world-writable folder without the sticky bit.
    let open = w.folders("open", None);
    chmod(&open, 0o777);
    let docroot = w.folders("open/www", Some(&a));
    let run = w.add("s", &docroot, Some(&a), &[]);
    run.refused(2, &[&show(&open)]);
    assert!(run.stderr.contains("777"), "{}", run.stderr);

    // Below a sticky world-writable folder, under an entry another tenant owns.
    let sticky = w.folders("sticky", None);
    chmod(&sticky, 0o1777);
    let bs = w.folders("sticky/b-dir", Some(&b));
    let docroot = w.folders("sticky/b-dir/www", Some(&a));
    w.add("s", &docroot, Some(&a), &[])
        .refused(2, &[&show(&bs), b.name()]);
    // … and one whose entry below belongs to the site's user: fine (like /tmp).
    let docroot = w.folders("sticky/a-www", Some(&a));
    w.add("sticky", &docroot, Some(&a), &[]).ok();

    // Below a folder writable by a group other than root's or the user's own.
    let shared = w.folders("shared", None);
    let b_group = b.gid();
    std::os::unix::fs::chown(&shared, None, Some(b_group)).unwrap();
    chmod(&shared, 0o775);
    let docroot = w.folders("shared/www", Some(&a));
    w.add("s", &docroot, Some(&a), &[])
        .refused(2, &[&show(&shared), b.name()]);

    // A document root others may write to.
    let docroot = w.folders("wide", Some(&a));
    chmod(&docroot, 0o777);
    w.add("s", &docroot, Some(&a), &[])
        .refused(2, &[&show(&docroot)]);
    assert_eq!(w.sites(), ["sticky"]);

    // Folders of the site's own user on the way, writable by its private group: fine
    // (`/home/u1/domains/a.example/public_html`).
    let own = w.folders("a-home/domains/a.example/public_html", Some(&a));
    chmod(&w.path("a-home"), 0o775);
    w.add("own", &own, Some(&a), &[]).ok();
    assert_eq!(w.sites(), ["own", "sticky"]);
}

/// D16: a missing document root is refused input (exit 2, not 70), naming the folder; so is a
/// file in its place.
#[test]
fn issue_7_missing_docroots_are_refused_input() {
    let w = World::new(6);
    let a = w.user("a");
    let missing = w.path("none/www");
    w.add("s", &missing, Some(&a), &[])
        .refused(2, &[&show(&w.path("none"))]);
    w.add("s", Path::new("/nonexistent"), Some(&a), &[])
        .refused(2, &["/nonexistent"]);
    let file = w.path("file");
    fs_err::write(&file, "not a folder").unwrap();
    chown(&file, &a);
    w.add("s", &file, Some(&a), &[]).refused(2, &[&show(&file)]);
    w.add("s", Path::new("relative/www"), Some(&a), &[])
        .refused(2, &["relative/www"]);
    assert!(w.sites().is_empty());
}

/// D16: site URLs with a newline or a space in the host, `%2e%2e` path segments or port 0 are
/// refused and never stored.
#[test]
fn issue_7_site_urls_with_hidden_parts_are_refused() {
    let w = World::new(7);
    let a = w.user("a");
    let www = w.folders("www", Some(&a));
    let docroot = show(&www);
    for url in [
        "http://a.test\n.evil/",
        "http://a.test\r/",
        "http://a .test/",
        "http://a.test/%2e%2e/",
        "http://a.test/%2e%2e",
        "http://a.test:0/",
    ] {
        let run = w.apsctl(&[
            "site",
            "add",
            "s",
            "--docroot",
            &docroot,
            "--url",
            url,
            "--user",
            a.name(),
        ]);
        run.refused(2, &[]);
        assert!(
            run.stderr.contains(&format!("`{}`", url.escape_debug())),
            "the URL is not named:\n{}",
            run.stderr
        );
    }
    assert!(w.sites().is_empty());
    w.add("s", &www, Some(&a), &[]).ok();
}
