//! The web UI in a real browser (issue 11): Debian's headless Chromium driven over `WebDriver`
//! (`chromedriver`, `fantoccini`) against the real `apsctl serve`, with the tenant's site served
//! by a real nginx and PHP-FPM so that the installed application's front page opens.
//!
//! Main decision: one test walks the issue's path in order, as a user would (log in, upload,
//! fill the generated install form, see a refused value next to its field, install and watch it
//! finish, open the front page, go through the removal dialog keeping the instance's files) and
//! checks each step where it lands: the page, the site's folder, the store through the CLI. A
//! screenshot of every page goes to `target/ui-screenshots/`. A second test checks the session
//! cookie and CSRF rules without a browser (forms must work without JavaScript).
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

#[path = "../api/service.rs"]
#[expect(
    dead_code,
    reason = "the API area's harness; this area uses part of it"
)]
mod service;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use aps_test_support::web::{PhpFpm, WebServer};
use fantoccini::{Client, ClientBuilder, Locator};
use service::Service;
use world::{World, show};

/// A running `chromedriver` on a free loopback port.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Self {
        let port = aps_test_support::web::free_port();
        let child = world::command("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver) must be installed");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Headless Chromium (as root it needs `--no-sandbox`).
async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--window-size=1280,1100", "--lang=en"]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("cannot start headless Chromium through chromedriver")
}

/// Where the screenshots go: `<target>/ui-screenshots/`.
fn screenshots() -> PathBuf {
    let target = aps_host::env::Env::from_process()
        .var("CARGO_TARGET_DIR")
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
            PathBuf::from,
        );
    let dir = target.join("ui-screenshots");
    fs_err::create_dir_all(&dir).unwrap();
    dir
}

async fn snap(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    fs_err::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// The text of the element `css`.
async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Waits until `css` is on the page (the page may be reloading).
async fn wait_for(c: &Client, css: &str) {
    c.wait()
        .at_most(Duration::from_secs(120))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no `{css}` on the page: {e}"));
}

/// Waits until the operation page shows `succeeded` (its script reloads the page at the end);
/// panics with the page when it shows `failed`.
async fn wait_until_done(c: &Client, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let state = match c.find(Locator::Css("#op-state")).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        match state.as_str() {
            "succeeded" => return,
            "failed" => panic!("{what} failed: {}", c.source().await.unwrap()),
            _ => {}
        }
        assert!(Instant::now() < deadline, "{what} did not finish");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The ids (or names) of the page's visible form fields without a label.
async fn unlabelled(c: &Client) -> Vec<String> {
    let found = c
        .execute(
            "return Array.from(document.querySelectorAll('input, select, textarea'))\
               .filter(e => e.type !== 'hidden' && e.labels.length === 0 && !e.getAttribute('aria-label'))\
               .map(e => e.id || e.name);",
            Vec::new(),
        )
        .await
        .unwrap();
    serde_json::from_value(found).unwrap()
}

async fn fill(c: &Client, css: &str, value: &str) {
    let field = c.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Issue 11: the whole path through the UI in headless Chromium.
#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one user's path, page by page: each step needs the one before"
)]
fn issue_11_install_and_remove_through_the_web_ui_in_chromium() {
    let w = World::new(1190);
    let tenant = w.tenant("a");
    let docroot = w.site_folder(&tenant, "site");
    let fpm = PhpFpm::start(tenant.name(), tenant.name());
    let server = WebServer::nginx(&docroot);
    w.apsctl(&[
        "site",
        "add",
        "site",
        "--docroot",
        &show(&docroot),
        "--url",
        &format!("http://127.0.0.1:{}/", server.port),
        "--user",
        tenant.name(),
        "--web",
        "nginx",
        "--web-dir",
        &show(&server.web_dir),
        "--web-test",
        &server.test_cmd,
        "--web-reload",
        &server.reload_cmd,
        "--php-fastcgi",
        &fpm.listen,
    ])
    .ok();
    let zip = service::hello_zip(&w);
    let api = Service::start(&w);
    let driver = Driver::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let base = api.base.clone();
    let token = api.token.clone();
    let root = docroot.join("hello");
    runtime.block_on(async {
        let c = browser(&driver).await;
        // Not logged in: the login page. A wrong token is refused there.
        c.goto(&format!("{base}/")).await.unwrap();
        wait_for(&c, "#token").await;
        assert!(c.current_url().await.unwrap().path().ends_with("/ui/login"));
        snap(&c, "01-login").await;
        fill(&c, "#token", "not-the-token").await;
        click(&c, "button[type=submit]").await;
        wait_for(&c, "#flash").await;
        assert!(text(&c, "#flash").await.contains("not the service's token"));
        fill(&c, "#token", &token).await;
        click(&c, "form[action='/ui/login'] button[type=submit]").await;
        wait_for(&c, "main h1").await;
        assert_eq!(text(&c, "main h1").await, "Instances");
        snap(&c, "02-instances-empty").await;

        // Upload the package: the install form is next.
        c.goto(&format!("{base}/ui/packages")).await.unwrap();
        wait_for(&c, "#package").await;
        c.find(Locator::Css("#package"))
            .await
            .unwrap()
            .send_keys(&show(&zip))
            .await
            .unwrap();
        assert_eq!(unlabelled(&c).await, Vec::<String>::new(), "packages page");
        snap(&c, "03-packages").await;
        click(&c, "form[action='/ui/packages'] button[type=submit]").await;
        wait_for(&c, "#f-admin_password").await;
        assert!(text(&c, "main h1").await.starts_with("Install Hello APS"));
        // Every setting has a label; the licence text is shown.
        for id in [
            "title",
            "greeting",
            "show_time",
            "admin_name",
            "admin_password",
        ] {
            let label = text(&c, &format!("label[for='f-{id}']")).await;
            assert!(!label.is_empty(), "{id} has no label");
        }
        assert!(
            text(&c, "pre.license")
                .await
                .contains("Permission is hereby granted")
        );
        assert_eq!(unlabelled(&c).await, Vec::<String>::new(), "install form");
        snap(&c, "04-install-form").await;

        // A value the browser lets through but the package refuses comes back next to its field.
        fill(&c, "#path", "hello").await;
        fill(&c, "#f-admin_name", "bad name!").await;
        fill(&c, "#f-admin_password", "Adm1n-s3cret-pw").await;
        fill(&c, "#f-title", "Shown in Chromium").await;
        click(&c, "#accept_license").await;
        click(&c, "main form button[type=submit]").await;
        wait_for(&c, "#e-admin_name").await;
        let refusal = text(&c, "#e-admin_name").await;
        assert!(!refusal.is_empty());
        let invalid = c
            .find(Locator::Css("#f-admin_name"))
            .await
            .unwrap()
            .attr("aria-invalid")
            .await
            .unwrap();
        assert_eq!(invalid.as_deref(), Some("true"));
        // The entered values are kept, never the password.
        let kept = c
            .find(Locator::Css("#f-title"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap();
        assert_eq!(kept.as_deref(), Some("Shown in Chromium"));
        let password = c
            .find(Locator::Css("#f-admin_password"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap();
        assert_eq!(password.as_deref(), Some(""));
        snap(&c, "05-install-refused").await;
        assert!(
            w.instances().is_empty(),
            "a refused install installs nothing"
        );

        // Corrected: the install runs, and the page follows it to its end.
        fill(&c, "#f-admin_name", "admin").await;
        fill(&c, "#f-admin_password", "Adm1n-s3cret-pw").await;
        click(&c, "#accept_license").await;
        click(&c, "main form button[type=submit]").await;
        wait_until_done(&c, "the install").await;
        snap(&c, "06-install-succeeded").await;
        let ids = w.instances();
        assert_eq!(ids.len(), 1);
        let id = ids[0].clone();

        // Its front page, served by nginx and PHP-FPM.
        click(&c, "a.entry").await;
        wait_for(&c, "h1").await;
        assert_eq!(text(&c, "h1").await, "Shown in Chromium");
        snap(&c, "07-front-page").await;

        // The instance page lists it ready with its entry point.
        c.goto(&format!("{base}/")).await.unwrap();
        wait_for(&c, "table").await;
        assert!(text(&c, "table").await.contains("ready"));
        snap(&c, "08-instances").await;
        c.goto(&format!("{base}/ui/instances/{id}")).await.unwrap();
        wait_for(&c, "dl.facts").await;
        assert_eq!(unlabelled(&c).await, Vec::<String>::new(), "instance page");
        snap(&c, "09-instance").await;

        // Reconfigure: a refused value comes back next to its field, then the change lands.
        c.goto(&format!("{base}/ui/instances/{id}/configure"))
            .await
            .unwrap();
        wait_for(&c, "#f-title").await;
        assert!(
            c.find(Locator::Css("#f-admin_password")).await.is_err(),
            "an installation-only setting is not reconfigurable"
        );
        assert_eq!(
            unlabelled(&c).await,
            Vec::<String>::new(),
            "reconfigure form"
        );
        fill(&c, "#f-title", "Reconfigured in Chromium").await;
        fill(&c, "#f-admin_name", "no spaces allowed").await;
        click(&c, "main form button[type=submit]").await;
        wait_for(&c, "#e-admin_name").await;
        snap(&c, "10-reconfigure-refused").await;
        assert_eq!(w.show(&id)["settings"]["title"], "Shown in Chromium");
        fill(&c, "#f-admin_name", "admin2").await;
        click(&c, "main form button[type=submit]").await;
        wait_until_done(&c, "the reconfiguration").await;
        assert_eq!(w.show(&id)["settings"]["admin_name"], "admin2");
        // PHP-FPM's opcache may serve the old `config.php` for up to `revalidate_freq` (2 s).
        click(&c, "a.entry").await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            wait_for(&c, "h1").await;
            if text(&c, "h1").await == "Reconfigured in Chromium" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the front page kept the old title"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
            c.refresh().await.unwrap();
        }

        // The removal dialog: the two trees, then "keep the instance's files".
        c.goto(&format!("{base}/ui/instances/{id}/remove"))
            .await
            .unwrap();
        wait_for(&c, "#tree-instance").await;
        let created = text(&c, "#tree-instance").await;
        assert!(created.contains("data/visits.txt"), "{created}");
        let application = text(&c, "#tree-application").await;
        assert!(application.contains("index.php"), "{application}");
        assert!(!application.contains("visits.txt"), "{application}");
        assert_eq!(unlabelled(&c).await, Vec::<String>::new(), "removal dialog");
        snap(&c, "11-remove-dialog").await;
        click(&c, "#files-app").await;
        click(&c, "main form button[type=submit]").await;
        wait_until_done(&c, "the removal").await;
        snap(&c, "12-removed").await;
        c.close().await.unwrap();
    });
    // What was kept: the instance's own files, not the application's.
    assert!(
        root.join("data/visits.txt").is_file(),
        "the instance's file is kept"
    );
    assert!(
        !root.join("index.php").exists(),
        "the application file is removed"
    );
    assert!(w.instances().is_empty());
    drop(fpm);
    drop(server);
}

/// Issue 11: the session cookie is `HttpOnly` and `SameSite=Strict`; a form without the CSRF
/// token is refused and changes nothing; the pages forbid inline script and framing.
#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one session's life, request by request"
)]
fn issue_11_the_ui_session_cookie_and_csrf_rules() {
    let w = World::new(1191);
    let tenant = w.tenant("a");
    w.site(&tenant, "site");
    let zip = service::hello_zip(&w);
    w.apsctl(&["package", "import", &show(&zip)]).ok();
    let api = Service::start(&w);
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let get = |path: &str, cookie: &str| match agent
        .get(&format!("{}{path}", api.base))
        .set("Cookie", cookie)
        .call()
    {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{path}: {e}"),
    };
    let post = |path: &str, cookie: &str, form: &[(&str, &str)]| match agent
        .post(&format!("{}{path}", api.base))
        .set("Cookie", cookie)
        .send_form(form)
    {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{path}: {e}"),
    };
    // Without a session: to the login page.
    let r = get("/", "");
    assert_eq!(r.status(), 303, "{}", r.status());
    assert_eq!(r.header("Location"), Some("/ui/login"));
    // The login form's CSRF token is bound to its own cookie.
    let r = get("/ui/login", "");
    let csp = r.header("Content-Security-Policy").unwrap().to_owned();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let login_cookie = r.header("Set-Cookie").unwrap().to_owned();
    assert!(login_cookie.contains("HttpOnly") && login_cookie.contains("SameSite=Strict"));
    let nonce = login_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let page = r.into_string().unwrap();
    assert!(page.contains(&nonce));
    let r = post("/ui/login", "", &[("csrf", &nonce), ("token", &api.token)]);
    assert_eq!(r.status(), 403, "a login without its cookie");
    let cookie = format!("apsctl_login={nonce}");
    let r = post(
        "/ui/login",
        &cookie,
        &[("csrf", &nonce), ("token", &api.token)],
    );
    assert_eq!(r.status(), 303);
    let session = r.header("Set-Cookie").unwrap().to_owned();
    assert!(session.starts_with("apsctl_session="), "{session}");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    let session = session.split(';').next().unwrap().to_owned();
    // Logged in; a form without or with a wrong CSRF token is refused and installs nothing.
    let reference = "hello-aps-1.0.0-1";
    let form = [
        ("site", "site"),
        ("s.admin_password", "Adm1n-s3cret-pw"),
        ("accept_license", "true"),
    ];
    let r = post(
        &format!("/ui/packages/{reference}/install"),
        &session,
        &form,
    );
    assert_eq!(r.status(), 403);
    let mut with_wrong = form.to_vec();
    with_wrong.push(("csrf", "0000"));
    let r = post(
        &format!("/ui/packages/{reference}/install"),
        &session,
        &with_wrong,
    );
    assert_eq!(r.status(), 403);
    assert!(w.instances().is_empty());
    // With the page's token the same form (no JavaScript) installs and answers 303.
    let page = get(&format!("/ui/packages/{reference}/install"), &session)
        .into_string()
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let mut good = form.to_vec();
    good.push(("csrf", &csrf));
    let r = post(
        &format!("/ui/packages/{reference}/install"),
        &session,
        &good,
    );
    assert_eq!(r.status(), 303);
    let location = r.header("Location").unwrap().to_owned();
    let opid = location.rsplit('/').next().unwrap().to_owned();
    let op = api.wait(&opid);
    assert_eq!(op["state"], "succeeded", "{op}");
    assert_eq!(w.instances().len(), 1);
    // Every page renders for a logged-in user (no template error), also with no JavaScript.
    let id = w.instances()[0].clone();
    for path in [
        "/".to_owned(),
        "/ui/packages".to_owned(),
        "/ui/operations".to_owned(),
        format!("/ui/operations/{opid}"),
        format!("/ui/packages/{reference}/install"),
        format!("/ui/packages/{reference}/settings"),
        format!("/ui/instances/{id}"),
        format!("/ui/instances/{id}/configure"),
        format!("/ui/instances/{id}/remove"),
    ] {
        let r = get(&path, &session);
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.header("Cache-Control"), Some("no-store"), "{path}");
        let html = r.into_string().unwrap();
        assert!(html.contains("</html>"), "{path}: {html}");
    }
    // Logged out: the session no longer opens pages.
    let r = post("/ui/logout", &session, &[("csrf", &csrf)]);
    assert_eq!(r.status(), 303);
    assert_eq!(get("/", &session).status(), 303);
}
