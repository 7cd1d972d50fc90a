//! The web server harness against the real servers: nginx and Apache, each with PHP-FPM, serve
//! PHP through the pool, pick up an included configuration on reload, and reject a broken one.
//!
//! The PHP file belongs to a system user of its own and is mode 0600: the web servers' workers
//! (`www-data`) cannot read it, so a 200 with PHP's output proves the request went through the
//! pool running as that user, and the 403 before the reload proves the include was not yet live.
#![expect(
    clippy::disallowed_methods,
    reason = "the tests run shell commands and useradd directly, as the harness does"
)]
#![expect(
    clippy::unwrap_used,
    reason = "test fixture: a failed setup step is a failed test"
)]

use std::fs::Permissions;
use std::os::unix::fs::{PermissionsExt as _, chown};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

use aps_test_support::web::{PhpFpm, WebServer};
use tempfile::TempDir;

/// The system user owning the docroots and running the PHP-FPM pools.
const USER: &str = "apsctl-web-test";
/// What `index.php` prints through PHP-FPM.
const PHP_SAYS: &str = "php:42:fpm-fcgi";

/// The test user's uid and gid, creating the user on first use.
fn test_user() -> (u32, u32) {
    static IDS: OnceLock<(u32, u32)> = OnceLock::new();
    *IDS.get_or_init(|| {
        if !Command::new("id")
            .arg("-u")
            .arg(USER)
            .output()
            .unwrap()
            .status
            .success()
        {
            let out = Command::new("useradd")
                .args(["--system", "--user-group", "--no-create-home"])
                .args([
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    "/usr/sbin/nologin",
                    USER,
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "useradd: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").arg(flag).arg(USER).output().unwrap();
            String::from_utf8(out.stdout)
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        (id("-u"), id("-g"))
    })
}

/// A docroot below /tmp owned by the test user (0755) with `index.php` (0600, the user's only).
fn docroot() -> TempDir {
    let (uid, gid) = test_user();
    let dir = tempfile::Builder::new()
        .prefix("apsctl-web-doc-")
        .tempdir()
        .unwrap();
    let php = dir.path().join("index.php");
    fs_err::write(&php, "<?php echo 'php:' . (6 * 7) . ':' . PHP_SAPI;").unwrap();
    fs_err::set_permissions(&php, Permissions::from_mode(0o600)).unwrap();
    fs_err::set_permissions(dir.path(), Permissions::from_mode(0o755)).unwrap();
    chown(&php, Some(uid), Some(gid)).unwrap();
    chown(dir.path(), Some(uid), Some(gid)).unwrap();
    dir
}

fn sh(line: &str) -> Output {
    Command::new("sh").arg("-c").arg(line).output().unwrap()
}

fn write_conf(server: &WebServer, name: &str, text: &str) {
    fs_err::write(server.web_dir.join(name), text).unwrap();
}

/// Runs the server's config test, then its reload; both must succeed.
fn test_and_reload(server: &WebServer) {
    let test = sh(&server.test_cmd);
    assert!(
        test.status.success(),
        "`{}` failed: {}",
        server.test_cmd,
        String::from_utf8_lossy(&test.stderr)
    );
    let reload = sh(&server.reload_cmd);
    assert!(
        reload.status.success(),
        "`{}` failed: {}{}",
        server.reload_cmd,
        String::from_utf8_lossy(&reload.stderr),
        server.error_log()
    );
}

/// A broken include makes `test_cmd` fail with `error` on stderr.
fn assert_test_rejects(server: &WebServer, broken: &str, error: &str) {
    write_conf(server, "broken.conf", broken);
    let test = sh(&server.test_cmd);
    let stderr = String::from_utf8_lossy(&test.stderr);
    assert!(
        !test.status.success(),
        "`{}` accepted {broken:?}",
        server.test_cmd
    );
    assert!(
        stderr.contains(error),
        "`{}` said: {stderr}",
        server.test_cmd
    );
}

/// Dropping the server stops it (even with a broken include left behind): the port goes quiet.
fn assert_stops(server: WebServer) {
    let port = server.port;
    drop(server);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still answers after drop"
    );
}

fn assert_php(server: &WebServer) {
    let (status, body) = server.wait_for_status("/index.php", 200);
    assert_eq!(
        (status, body.as_str()),
        (200, PHP_SAYS),
        "{}",
        server.error_log()
    );
}

#[test]
fn nginx_serves_php_through_fpm_reloads_and_rejects_broken_config() {
    let doc = docroot();
    let fpm = PhpFpm::start(USER, USER);
    let server = WebServer::nginx(doc.path());
    assert_eq!(server.get("/index.php").0, 403, "{}", server.error_log());

    let socket = fpm.listen.strip_prefix("unix:").unwrap();
    assert!(Path::new(socket).is_absolute(), "{}", fpm.listen);
    write_conf(
        &server,
        "t.conf",
        &format!(
            "location ~ \\.php$ {{\n    fastcgi_pass {};\n    fastcgi_param REQUEST_METHOD $request_method;\n    \
             fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n}}\n",
            fpm.listen
        ),
    );
    test_and_reload(&server);
    assert_php(&server);

    assert_eq!(server.get("/x/").0, 404);
    write_conf(&server, "x.conf", "location /x/ {\n    return 503;\n}\n");
    test_and_reload(&server);
    let (status, _) = server.wait_for_status("/x/", 503);
    assert_eq!(status, 503, "{}", server.error_log());
    assert_php(&server);

    assert_test_rejects(
        &server,
        "no_such_directive on;\n",
        "unknown directive \"no_such_directive\"",
    );
    assert_eq!(server.get("/x/").0, 503, "a failed test changes nothing");
    assert_stops(server);
    drop(fpm);
}

#[test]
fn apache_serves_php_through_fpm_reloads_and_rejects_broken_config() {
    let doc = docroot();
    let fpm = PhpFpm::start(USER, USER);
    let server = WebServer::apache(doc.path());
    assert_eq!(server.get("/index.php").0, 403, "{}", server.error_log());

    write_conf(
        &server,
        "t.conf",
        &format!(
            "<Directory \"{}\">\n    <FilesMatch \"\\.php$\">\n        \
             SetHandler \"proxy:{}|fcgi://localhost\"\n    </FilesMatch>\n</Directory>\n",
            doc.path().display(),
            fpm.listen
        ),
    );
    test_and_reload(&server);
    assert_php(&server);

    assert_eq!(server.get("/x/").0, 404);
    write_conf(&server, "x.conf", "RedirectMatch 503 ^/x(/|$)\n");
    test_and_reload(&server);
    let (status, _) = server.wait_for_status("/x/", 503);
    assert_eq!(status, 503, "{}", server.error_log());
    assert_eq!(server.get("/x").0, 503);
    assert_php(&server);

    assert_test_rejects(
        &server,
        "NoSuchDirective on\n",
        "Invalid command 'NoSuchDirective'",
    );
    assert_eq!(server.get("/x/").0, 503, "a failed test changes nothing");
    assert_stops(server);
    drop(fpm);
}
