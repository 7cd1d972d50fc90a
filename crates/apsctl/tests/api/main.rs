//! The HTTP service (issue 11) through the real binary: `apsctl serve` started on a
//! free loopback port with its own home, driven with a plain HTTP client, next to the CLI on the
//! same home.
//!
//! Main decision: the tests reuse the security area's world (a real tenant, a `--web none` site,
//! packages built in code with `sh` configuration scripts), so what the API does is checked where
//! it lands: the store (through the CLI), the site's folder, the job's own report.
//!
//! `flows.rs` has the whole flows (the example package's life, crash, load); `service.rs` the
//! harness. The web UI's browser tests are the `ui` area.
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

mod flows;
mod service;

use std::time::Duration;

use serde_json::json;
use service::Service;
use world::{Package, World};

/// A world with a tenant's site and the test package imported; returns it and the reference.
pub(crate) fn world(n: u32, configure: &str) -> (World, String) {
    let w = World::new(n);
    let tenant = w.tenant("a");
    w.site(&tenant, "site");
    let reference = w.package(&Package {
        name: "webapp",
        language: "sh",
        configure,
        sqlite: false,
    });
    (w, reference)
}

pub(crate) const CONFIGURE: &str = "#!/bin/sh\nexit 0\n";

/// Every `/v1` request needs the token; `/openapi.json` does not and describes the API.
#[test]
fn issue_11_the_token_is_required_and_the_openapi_document_is_public() {
    let (w, reference) = world(1101, CONFIGURE);
    let api = Service::start(&w);
    for token in [None, Some("wrong")] {
        let (status, body) = api.call_as(token, "GET", "/v1/instances", None);
        assert_eq!(status, 401, "{token:?}: {body}");
        assert_eq!(body["error"]["kind"], "unauthorized");
    }
    let (status, body) = api.call("GET", "/v1/instances", None);
    assert_eq!(status, 200);
    assert_eq!(body, json!({"instances": []}));
    // The list is cached while the store does not change: what the CLI does shows at once.
    let id = w.install(&reference, "site", "cli");
    let (_, body) = api.call("GET", "/v1/instances", None);
    assert_eq!(body["instances"][0]["instance"], id.as_str(), "{body}");
    w.apsctl(&["remove", &id, "--files", "all"]).ok();
    let (_, body) = api.call("GET", "/v1/instances", None);
    assert_eq!(body, json!({"instances": []}));
    let (status, doc) = api.call_as(None, "GET", "/openapi.json", None);
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    for path in [
        "/v1/instances",
        "/v1/instances/{id}",
        "/v1/operations/{opid}",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    assert_eq!(api.stop(), Some(0));
}

/// Install, configure (a refused setting listed in `details`), show and remove as operations
/// polled to their outcome; the CLI sees what the service did on the same home meanwhile.
#[test]
fn issue_11_operations_are_jobs_polled_to_their_outcome() {
    let (w, reference) = world(1102, CONFIGURE);
    let api = Service::start(&w);
    let op = api.operation(
        "POST",
        "/v1/instances",
        Some(&json!({"package": reference, "site": "site", "path": "shop"})),
    );
    assert_eq!(op["state"], "succeeded", "{op}");
    assert_eq!(op["kind"], "install");
    let id = op["result"]["instance"].as_str().unwrap().to_owned();
    assert!(
        !op["progress"]["steps"].as_array().unwrap().is_empty(),
        "{op}"
    );
    // The CLI, on the same home, sees it.
    assert_eq!(w.instances(), std::slice::from_ref(&id));
    let (status, shown) = api.call("GET", &format!("/v1/instances/{id}"), None);
    assert_eq!(status, 200);
    assert_eq!(shown["instance"], id.as_str());

    // Refused settings are refused at once (400), each in `details`; no job is started.
    let (status, body) = api.call(
        "POST",
        &format!("/v1/instances/{id}/configure"),
        Some(&json!({"settings": {"nope": "x"}})),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["kind"], "invalid", "{body}");
    assert_eq!(body["error"]["details"][0]["setting"], "nope", "{body}");
    // An unknown instance: 404 at once.
    let (status, body) = api.call(
        "POST",
        "/v1/instances/999/configure",
        Some(&json!({"settings": {"title": "x"}})),
    );
    assert_eq!(
        (status, &body["error"]["kind"]),
        (404, &json!("not_found")),
        "{body}"
    );
    // Unknown paths and bad query strings answer API.md's error body too.
    let (status, body) = api.call("GET", "/v1/nope", None);
    assert_eq!(
        (status, &body["error"]["kind"]),
        (404, &json!("not_found")),
        "{body}"
    );
    let (status, body) = api.call_as(None, "GET", "/v1/nope", None);
    assert_eq!(
        (status, &body["error"]["kind"]),
        (401, &json!("unauthorized")),
        "{body}"
    );
    let (status, body) = api.call(
        "DELETE",
        &format!("/v1/instances/{id}?files=all&force=1"),
        None,
    );
    assert_eq!(
        (status, &body["error"]["kind"]),
        (400, &json!("invalid")),
        "{body}"
    );

    let (status, body) = api.call("DELETE", &format!("/v1/instances/{id}"), None);
    assert_eq!(status, 400, "{body}");
    let op = api.operation("DELETE", &format!("/v1/instances/{id}?files=all"), None);
    assert_eq!(op["state"], "succeeded", "{op}");
    let (status, body) = api.call("GET", &format!("/v1/instances/{id}"), None);
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["kind"], "not_found");
    assert!(w.instances().is_empty());
    let (status, _) = api.call("GET", "/v1/operations/999", None);
    assert_eq!(status, 404);
    // The audit trail outlives the instance: its operations, newest first, with outcomes.
    let (status, trail) = api.call("GET", &format!("/v1/instances/{id}/operations"), None);
    assert_eq!(status, 200, "{trail}");
    let kinds: Vec<(&str, &str)> = trail["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().unwrap(),
                o["outcome"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [("remove", "rolled_forward"), ("install", "done")],
        "{trail}"
    );
    let run = w.apsctl(&["--json", "instance", "history", &id]);
    run.ok();
    assert_eq!(run.json()["operations"], trail["operations"]);
    let run = w.apsctl(&["--version"]);
    run.ok();
    assert!(run.stdout.contains("store schema 6"), "{run}");
}

/// SIGTERM while an install runs: the service lets it finish, then exits 0; `recover` finds
/// nothing to do.
#[test]
fn issue_11_sigterm_lets_a_running_install_finish() {
    let (w, reference) = world(1103, "#!/bin/sh\nsleep 2\nexit 0\n");
    let api = Service::start(&w);
    api.begin(
        "POST",
        "/v1/instances",
        Some(&json!({"package": reference, "site": "site"})),
    );
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(api.stop(), Some(0));
    let ids = w.instances();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(w.show(&ids[0])["state"], "ready");
    let run = w.apsctl(&["--json", "recover"]);
    run.ok();
    assert!(
        run.stdout.contains("[]") || run.json()["recovered"] == json!([]),
        "{run}"
    );
}

/// A package upload is the `.app.zip` itself: imported (201, the import object), listed; a body
/// that is not a package is refused with 400 and changes nothing.
#[test]
fn issue_11_packages_are_uploaded_as_their_archive() {
    let w = World::new(1104);
    let api = Service::start(&w);
    let zip = service::hello_zip(&w);
    let upload = |bytes: &[u8]| api.upload(bytes);
    let (status, body) = upload(b"not a zip at all");
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["kind"], "invalid");
    assert_eq!(
        api.call("GET", "/v1/packages", None).1,
        json!({"packages": []})
    );
    let (status, body) = upload(&fs_err::read(&zip).unwrap());
    assert_eq!(status, 201, "{body}");
    let reference = body["package"].as_str().unwrap().to_owned();
    let (_, list) = api.call("GET", "/v1/packages", None);
    assert_eq!(list["packages"][0]["package"], reference.as_str(), "{list}");
    let staging: Vec<_> = fs_err::read_dir(w.home.join("staging"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(staging.is_empty(), "left in staging: {staging:?}");
}

/// What an administrator packages: `apsctl openapi` is the document `/openapi.json` serves, the
/// completion scripts and man pages come from the same argument definitions.
#[test]
fn issue_11_openapi_completions_and_man_pages_for_admins() {
    let w = World::new(1105);
    let api = Service::start(&w);
    let (_, served) = api.call_as(None, "GET", "/openapi.json", None);
    let run = w.apsctl(&["openapi"]);
    run.ok();
    let printed: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(printed, served);
    for path in [
        "/v1/packages/{reference}/settings",
        "/v1/instances/{id}/backup",
        "/v1/restores",
        "/v1/instances/{id}/migrate",
        "/v1/operations",
    ] {
        assert!(printed["paths"].get(path).is_some(), "{path} missing");
    }
    let run = w.apsctl(&["completions", "bash"]);
    run.ok();
    assert!(
        run.stdout.contains("_apsctl()") && run.stdout.contains("serve"),
        "{run}"
    );
    let run = w.apsctl(&["completions", "zsh"]);
    run.ok();
    assert!(run.stdout.starts_with("#compdef apsctl"), "{run}");
    let run = w.apsctl(&["man"]);
    run.ok();
    assert!(
        run.stdout.contains(".TH apsctl 1") && run.stdout.contains("store schema 6"),
        "{run}"
    );
    let pages = w.dir.join("man");
    w.apsctl(&["man", "--out", &world::show(&pages)]).ok();
    for page in ["apsctl.1", "apsctl-install.1", "apsctl-serve.1"] {
        assert!(pages.join(page).is_file(), "{page} not written");
    }
    assert_eq!(api.stop(), Some(0));
}

/// An upload larger than the largest package (`--max-package-size` plus the zip's headers) is
/// refused while it arrives (400, the limit named) and leaves nothing in the staging folder.
#[test]
fn issue_11_an_oversized_upload_is_refused_and_leaves_nothing() {
    let w = World::new(1106);
    let api = Service::start_with(&w, &["--max-package-size", "1000"]);
    let (status, body) = api.upload(&vec![0u8; 17 << 20]);
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("--max-package-size"), "{message}");
    let staging: Vec<_> = fs_err::read_dir(w.home.join("staging"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(staging.is_empty(), "left in staging: {staging:?}");
    assert_eq!(
        api.call("GET", "/v1/packages", None).1,
        json!({"packages": []})
    );
    assert_eq!(api.stop(), Some(0));
}

/// A secret is shown as `***`, and a panel that sends every value it read back (`***` included)
/// keeps the secret: the configuration script still gets the real one.
#[test]
fn issue_11_secrets_are_masked_and_the_mask_never_replaces_them() {
    let w = World::new(1107);
    let tenant = w.tenant("a");
    w.site(&tenant, "site");
    let package = Package {
        name: "keyed",
        language: "sh",
        configure: "#!/bin/sh\nprintf '%s' \"$SETTINGS_api_key\" > \"$WEB___DIR/key.txt\"\n",
        sqlite: false,
    };
    let meta = package.meta_xml().replace(
        "<setting id=\"title\" type=\"string\" default-value=\"Hello\"><name>Title</name></setting>",
        "<setting id=\"title\" type=\"string\" default-value=\"Hello\"><name>Title</name></setting>\n      \
         <setting id=\"api_key\" type=\"password\" min-length=\"8\"><name>API key</name></setting>",
    );
    assert!(meta.contains("api_key"));
    let zip = w.dir.join("keyed.app.zip");
    aps_test_support::PackageBuilder::new()
        .app_meta(meta)
        .file("htdocs/index.html", "<h1>keyed</h1>\n")
        .file("scripts/configure", package.configure)
        .write(&zip)
        .unwrap();
    let api = Service::start(&w);
    let (status, imported) = api.upload(&fs_err::read(&zip).unwrap());
    assert_eq!(status, 201, "{imported}");
    let key = "Real-s3cret-key";
    let op = api.operation(
        "POST",
        "/v1/instances",
        Some(&json!({"package": imported["package"], "site": "site",
            "settings": {"api_key": key}})),
    );
    assert_eq!(op["state"], "succeeded", "{op}");
    let id = op["result"]["instance"].as_str().unwrap().to_owned();
    let (_, shown) = api.call("GET", &format!("/v1/instances/{id}"), None);
    assert_eq!(shown["settings"]["api_key"], "***", "{shown}");
    let root = std::path::PathBuf::from(shown["root"].as_str().unwrap());
    assert_eq!(fs_err::read_to_string(root.join("key.txt")).unwrap(), key);
    // Everything read sent back, one value changed.
    let mut settings = shown["settings"].clone();
    settings["title"] = json!("Changed");
    let op = api.operation(
        "POST",
        &format!("/v1/instances/{id}/configure"),
        Some(&json!({ "settings": settings })),
    );
    assert_eq!(op["state"], "succeeded", "{op}");
    assert_eq!(op["result"]["changed"], json!(["title"]), "{op}");
    assert_eq!(fs_err::read_to_string(root.join("key.txt")).unwrap(), key);
    let (_, all) = api.call("GET", "/v1/operations?limit=100", None);
    assert!(!all.to_string().contains(key), "{all}");
    assert!(!api.log_text().contains(key));
    assert_eq!(api.stop(), Some(0));
}
