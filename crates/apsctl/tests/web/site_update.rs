//! `site update` (issue 10 item 7) end to end: a new URL reaches every instance's application
//! (its configuration script writes `BASE_URL_*` into `config.php`, `base.php` shows it over
//! HTTP), a refused value changes nothing, a failing reconfiguration of one instance puts the
//! site and the instances before it back, and a move from nginx to Apache (both real servers
//! started by the test on the same document root) moves every instance's configuration.
use aps_test_support::web::WebServer;

use super::world::{self, World, as_tenant_ok, show};
use super::{
    Kind, Served, config_file, expect_status, package, package_with, served, served_from, web_files,
};

/// `site show NAME --json`.
fn site(w: &World, name: &str) -> serde_json::Value {
    let run = w.apsctl(&["--json", "site", "show", name]);
    run.ok();
    run.json()
}

/// The URLs `instance list` shows, by instance id.
fn instance_urls(w: &World) -> Vec<(String, String)> {
    let run = w.apsctl(&["--json", "instance", "list"]);
    run.ok();
    run.json()["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["instance"].as_str().unwrap().to_owned(),
                i["url"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// What the application at `path` believes its URL is (`base.php`).
#[track_caller]
fn base(s: &Served, path: &str) -> String {
    expect_status(s, &format!("{path}base.php"), 200)
}

/// A new URL reconfigures both instances of the site: each application shows its new
/// `BASE_URL_*`, `instance list` shows the new URLs; http → https with a port works the same.
#[test]
fn issue_10_site_update_url_reconfigures_every_instance() {
    let w = World::new(1071);
    let s = served(&w, Kind::Nginx, "a", "site");
    let reference = package(&w, "webapp", "");
    let one = w.install(&reference, "site", "one");
    let two = w.install(&reference, "site", "shop/two");
    let port = s.server.port;
    assert_eq!(base(&s, "/one/"), format!("http://127.0.0.1:{port}/one/"));

    let run = w.apsctl(&[
        "--json",
        "site",
        "update",
        "site",
        "--url",
        &format!("http://localhost:{port}"),
    ]);
    run.ok();
    assert_eq!(run.json()["changed"], serde_json::json!(["url"]), "{run}");
    assert_eq!(
        run.json()["instances"],
        serde_json::json!([one, two]),
        "{run}"
    );
    assert_eq!(base(&s, "/one/"), format!("http://localhost:{port}/one/"));
    assert_eq!(
        base(&s, "/shop/two/"),
        format!("http://localhost:{port}/shop/two/")
    );
    assert_eq!(site(&w, "site")["url"], format!("http://localhost:{port}/"));
    assert_eq!(
        instance_urls(&w),
        [
            (one.clone(), format!("http://localhost:{port}/one/")),
            (two.clone(), format!("http://localhost:{port}/shop/two/")),
        ]
    );

    w.apsctl(&[
        "site",
        "update",
        "site",
        "--url",
        "https://shop.example:8443/",
    ])
    .ok();
    assert_eq!(base(&s, "/one/"), "https://shop.example:8443/one/");
    assert_eq!(
        base(&s, "/shop/two/"),
        "https://shop.example:8443/shop/two/"
    );
    // The web server configuration did not change with the URL.
    assert!(config_file(&s, &one).exists() && config_file(&s, &two).exists());
    expect_status(&s, "/one/", 200);
}

/// Every refused value exits 2 naming it, and nothing changes: the site record, the
/// applications' configuration, the web server's files.
#[test]
fn issue_10_site_update_refused_values_change_nothing() {
    let w = World::new(1072);
    let s = served(&w, Kind::Nginx, "a", "site");
    let reference = package(&w, "webapp", "");
    let id = w.install(&reference, "site", "webapp");
    let record = site(&w, "site");
    let config = s.docroot.join("webapp/config.php");
    let config_before = fs_err::read_to_string(&config).unwrap();
    let files_before = web_files(&s);
    let conf_before = fs_err::read_to_string(config_file(&s, &id)).unwrap();
    let not_root = w.dir.join("not-roots");
    fs_err::create_dir(&not_root).unwrap();
    std::os::unix::fs::chown(&not_root, Some(s.tenant.uid()), None).unwrap();
    let not_root = show(&not_root);
    for (args, named) in [
        (vec!["--url", "ftp://a.example/"], "ftp://a.example/"),
        (
            vec!["--url", "https://a.example/blog/"],
            "https://a.example/blog/",
        ),
        (
            vec!["--url", "http://a.example\n.evil/"],
            "http://a.example\\n.evil/",
        ),
        (vec!["--php", "/nonexistent/php"], "/nonexistent/php"),
        (vec!["--web", "apache"], "--web-dir"),
        (vec!["--web-dir", &not_root], &not_root),
        (vec!["--php-fastcgi", "nowhere"], "--php-fastcgi"),
        (vec![], "nothing to change"),
    ] {
        let mut all = vec!["site", "update", "site"];
        all.extend(&args);
        let run = w.apsctl(&all);
        run.refused();
        assert_eq!(run.code, Some(2), "{args:?}: {run}");
        assert!(
            run.stderr.contains(named),
            "{args:?} must name {named}: {run}"
        );
        assert_eq!(site(&w, "site"), record, "{args:?}");
        assert_eq!(fs_err::read_to_string(&config).unwrap(), config_before);
        assert_eq!(web_files(&s), files_before, "{args:?}");
        assert_eq!(
            fs_err::read_to_string(config_file(&s, &id)).unwrap(),
            conf_before
        );
    }
    expect_status(&s, "/webapp/", 200);
}

/// The second instance's `configure configure` fails: the site keeps its URL, the first
/// instance (reconfigured already) is configured with the old URL again, and the message names
/// the instance and its script's reason. Without the failure the same update goes through.
#[test]
fn issue_10_site_update_failure_puts_the_site_and_instances_back() {
    let w = World::new(1073);
    let s = served(&w, Kind::Nginx, "a", "site");
    let reference = package(&w, "webapp", "");
    let one = w.install(&reference, "site", "one");
    let two = w.install(&reference, "site", "two");
    let port = s.server.port;
    let old = format!("http://127.0.0.1:{port}");
    let record = site(&w, "site");
    let urls = instance_urls(&w);
    let flag = s.docroot.join("two/uploads/fail-configure");
    as_tenant_ok(&s.tenant, &format!(": > '{}'", show(&flag)));

    let run = w.apsctl(&["site", "update", "site", "--url", "https://new.example/"]);
    run.refused();
    assert!(
        run.stderr.contains(&format!("instance {two} failed")),
        "{run}"
    );
    assert!(
        run.stderr
            .contains("the application refuses its new configuration"),
        "{run}"
    );
    assert!(
        run.stderr.contains("put back as they were") && run.stderr.contains(&one),
        "{run}"
    );
    assert_eq!(site(&w, "site"), record);
    assert_eq!(instance_urls(&w), urls);
    assert_eq!(base(&s, "/one/"), format!("{old}/one/"));
    assert_eq!(base(&s, "/two/"), format!("{old}/two/"));
    // Nothing is left for `recover`, and the locks are free again.
    let run = w.apsctl(&["--json", "recover"]);
    run.ok();
    assert_eq!(run.json()["operations"], serde_json::json!([]), "{run}");

    fs_err::remove_file(&flag).unwrap();
    w.apsctl(&["site", "update", "site", "--url", "https://new.example/"])
        .ok();
    assert_eq!(base(&s, "/one/"), "https://new.example/one/");
    assert_eq!(base(&s, "/two/"), "https://new.example/two/");
}

/// nginx → Apache with a new URL (Apache's port) in one update: the instance's file leaves
/// nginx's folder and Apache serves it (nginx answers 404), the application knows its new URL,
/// and the removal later removes the file from Apache's folder. A package needing `.htaccess`
/// installed on Apache then keeps the site from moving back to nginx, with nothing changed.
#[test]
fn issue_10_site_update_moves_instances_from_nginx_to_apache() {
    let w = World::new(1074);
    // nginx serves nothing of the site but what apsctl's files map.
    let empty = w.dir.join("nginx-root");
    fs_err::create_dir(&empty).unwrap();
    let s = served_from(&w, Kind::Nginx, "a", "site", &[], Some(&empty));
    let apache = WebServer::apache(&s.docroot);
    let reference = package(&w, "webapp", "");
    let id = w.install(&reference, "site", "webapp");
    let nginx_file = config_file(&s, &id);
    assert!(nginx_file.exists());
    let apache_file = apache.web_dir.join(format!("apsctl-instance-{id}.conf"));

    let run = w.apsctl(&[
        "--json",
        "site",
        "update",
        "site",
        "--url",
        &format!("http://127.0.0.1:{}/", apache.port),
        "--web",
        "apache",
        "--web-dir",
        &show(&apache.web_dir),
        "--web-test",
        &apache.test_cmd,
        "--web-reload",
        &apache.reload_cmd,
    ]);
    run.ok();
    assert_eq!(
        run.json()["changed"],
        serde_json::json!(["url", "web"]),
        "{run}"
    );
    assert!(!nginx_file.exists(), "{} is left", nginx_file.display());
    assert!(apache_file.exists(), "{run}");
    let (status, body) = apache.wait_for_status("/webapp/", 200);
    assert_eq!(status, 200, "{body}\n{}", apache.error_log());
    assert!(body.contains("<h1>Hello served by fpm-fcgi</h1>"), "{body}");
    let (_, body) = apache.wait_for_status("/webapp/base.php", 200);
    assert_eq!(body, format!("http://127.0.0.1:{}/webapp/", apache.port));
    expect_status(&s, "/webapp/", 404);
    let record = site(&w, "site");
    assert_eq!(record["web"], "apache");
    assert_eq!(record["web_dir"], show(&apache.web_dir));

    // Apache can serve `.htaccess`, nginx cannot: moving back is refused before anything changes.
    let htaccess = package_with(&w, "htapp", "<apache:htaccess/>", super::MAPPING, &[]);
    let other = w.install(&htaccess, "site", "htapp");
    let before = (site(&w, "site"), world::tree(&apache.web_dir));
    let run = w.apsctl(&[
        "site",
        "update",
        "site",
        "--web",
        "nginx",
        "--web-dir",
        &show(&s.server.web_dir),
        "--web-test",
        &s.server.test_cmd,
        "--web-reload",
        &s.server.reload_cmd,
    ]);
    run.refused();
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains(".htaccess"), "{run}");
    assert!(run.stderr.contains(&format!("instance {other}")), "{run}");
    assert_eq!((site(&w, "site"), world::tree(&apache.web_dir)), before);
    assert!(!nginx_file.exists());

    // The instance's kept system change follows the site: its removal clears Apache's folder.
    w.apsctl(&["remove", &id, "--files", "all", "--yes"]).ok();
    assert!(!apache_file.exists(), "{} is left", apache_file.display());
    let (status, _) = apache.wait_for_status("/webapp/", 404);
    assert_eq!(status, 404);
}
