//! Whole flows through the API: the example `hello` package uploaded, installed with refused and
//! then good settings, reconfigured, backed up, restored over itself and into a new instance,
//! migrated and removed, every change polled to its outcome; jobs kept across a restart and a
//! crash; 200 concurrent reads and the CLI on the same home while an install runs.
use std::time::Duration;

use serde_json::{Value, json};

use super::service::{Service, hello_zip};
use super::world::{self, World};

/// The administrator password given at install: it must never come back.
const SECRET: &str = "Adm1n-s3cret-pw";

/// The refused settings' ids of an error body, sorted.
fn refused(body: &Value) -> Vec<String> {
    let mut ids: Vec<String> = body["error"]["details"]
        .as_array()
        .unwrap_or_else(|| panic!("no details: {body}"))
        .iter()
        .map(|d| {
            assert!(!d["message"].as_str().unwrap().is_empty(), "{d}");
            d["setting"].as_str().unwrap().to_owned()
        })
        .collect();
    ids.sort();
    ids
}

fn kinds(list: &Value) -> Vec<String> {
    list["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "{}:{}",
                o["kind"].as_str().unwrap(),
                o["state"].as_str().unwrap()
            )
        })
        .collect()
}

/// Issue 11: the example package's whole life through the API.
#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one flow, step by step: each step needs the one before"
)]
fn issue_11_hello_is_uploaded_installed_backed_up_restored_migrated_and_removed() {
    let w = World::new(1110);
    let tenant = w.tenant("a");
    w.site(&tenant, "site");
    w.site(&tenant, "other");
    let api = Service::start(&w);

    let (status, imported) = api.upload(&fs_err::read(hello_zip(&w)).unwrap());
    assert_eq!(status, 201, "{imported}");
    let reference = imported["package"].as_str().unwrap().to_owned();
    let (status, shown) = api.call("GET", &format!("/v1/packages/{reference}"), None);
    assert_eq!(status, 200, "{shown}");
    assert!(
        shown["license_texts"]["hello"]
            .as_str()
            .unwrap()
            .contains("Permission is hereby granted"),
        "{shown}"
    );
    let (status, missing) = api.call("GET", "/v1/packages/nope", None);
    assert_eq!(
        (status, &missing["error"]["kind"]),
        (404, &json!("not_found")),
        "{missing}"
    );

    // Every refused value is listed by its id, at once (400); nothing is installed.
    let (status, body) = api.call(
        "POST",
        "/v1/instances",
        Some(
            &json!({"package": reference, "site": "site", "path": "hello",
            "accept_license": true,
            "settings": {"admin_name": "bad name!", "admin_password": "short"}}),
        ),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["kind"], "invalid", "{body}");
    assert_eq!(refused(&body), ["admin_name", "admin_password"], "{body}");
    // The licence must be accepted.
    let (status, body) = api.call(
        "POST",
        "/v1/instances",
        Some(&json!({"package": reference, "site": "site",
            "settings": {"admin_password": SECRET}})),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("licen"),
        "{body}"
    );
    assert!(w.instances().is_empty());
    // A body that is not the install object: 400 with the error body.
    let (status, bad) = api.call("POST", "/v1/instances", Some(&json!({"site": 3})));
    assert_eq!(
        (status, &bad["error"]["kind"]),
        (400, &json!("invalid")),
        "{bad}"
    );

    let op = api.operation(
        "POST",
        "/v1/instances",
        Some(
            &json!({"package": reference, "site": "site", "path": "hello",
            "accept_license": true,
            "settings": {"admin_password": SECRET, "show_time": true}}),
        ),
    );
    assert_eq!(op["state"], "succeeded", "{op}");
    let id = op["result"]["instance"].as_str().unwrap().to_owned();
    assert_eq!(
        op["instance"],
        id.as_str(),
        "the job learnt its instance: {op}"
    );
    let (_, shown) = api.call("GET", &format!("/v1/instances/{id}"), None);
    // An installation-only password is not kept at all (seed 003's conditions).
    assert_eq!(shown["settings"].get("admin_password"), None, "{shown}");
    assert!(!shown.to_string().contains(SECRET), "{shown}");
    assert_eq!(shown["settings"]["show_time"], "true", "{shown}");

    // Numbers are taken as text.
    let op = api.operation(
        "POST",
        &format!("/v1/instances/{id}/configure"),
        Some(&json!({"settings": {"title": 42}})),
    );
    assert_eq!(op["state"], "succeeded", "{op}");
    assert_eq!(w.show(&id)["settings"]["title"], "42");

    let backups = w.dir.join("backups");
    fs_err::create_dir(&backups).unwrap();
    let op = api.operation(
        "POST",
        &format!("/v1/instances/{id}/backup"),
        Some(&json!({"to_dir": backups, "keep": 3})),
    );
    assert_eq!(op["state"], "succeeded", "{op}");
    let archive = op["result"]["backup"].as_str().unwrap().to_owned();
    assert!(std::path::Path::new(&archive).is_file(), "{op}");
    let (status, bad) = api.call(
        "POST",
        &format!("/v1/instances/{id}/backup"),
        Some(&json!({})),
    );
    assert_eq!(status, 400, "{bad}");

    // Changed after the backup, then restored over itself: the backed-up title is back.
    api.operation(
        "POST",
        &format!("/v1/instances/{id}/configure"),
        Some(&json!({"settings": {"title": "changed"}})),
    );
    let op = api.operation(
        "POST",
        &format!("/v1/instances/{id}/restore"),
        Some(&json!({"from": archive})),
    );
    assert_eq!(op["state"], "succeeded", "{op}");
    assert_eq!(w.show(&id)["settings"]["title"], "42");

    // Into a new instance on the same site, then moved to the other site.
    let op = api.operation(
        "POST",
        "/v1/restores",
        Some(&json!({"from": archive, "site": "site", "path": "copy"})),
    );
    assert_eq!(op["state"], "succeeded", "{op}");
    let copy = op["result"]["instance"].as_str().unwrap().to_owned();
    assert_ne!(copy, id);
    assert_eq!(op["instance"], copy.as_str(), "{op}");
    let op = api.operation(
        "POST",
        &format!("/v1/instances/{copy}/migrate"),
        Some(&json!({"site": "other"})),
    );
    assert_eq!(op["state"], "succeeded", "{op}");
    let moved = op["result"]["instance"].as_str().unwrap().to_owned();
    assert_eq!(
        op["instance"],
        copy.as_str(),
        "a migrate job stays the source's: {op}"
    );
    let mut ids = w.instances();
    ids.sort();
    let mut expected = vec![id.clone(), moved.clone()];
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(w.show(&moved)["site"], "other");

    // The jobs of an instance, newest first.
    let (_, ops) = api.call("GET", &format!("/v1/operations?instance={id}"), None);
    assert_eq!(
        kinds(&ops),
        [
            "restore:succeeded",
            "configure:succeeded",
            "backup:succeeded",
            "configure:succeeded",
            "install:succeeded"
        ],
        "{ops}"
    );

    // Removal keeping the databases and the instance's own files.
    let op = api.operation(
        "DELETE",
        &format!("/v1/instances/{id}?files=app&keep_databases=true"),
        None,
    );
    assert_eq!(op["state"], "succeeded", "{op}");
    assert_eq!(w.instances(), [moved]);

    // No secret anywhere the service answers or logs; the token is not logged either.
    let (_, all) = api.call("GET", "/v1/operations?limit=1000", None);
    let answered = all.to_string();
    assert!(
        !answered.contains(SECRET),
        "a secret in the operations: {answered}"
    );
    let log = api.log_text();
    assert!(!log.contains(SECRET), "a secret in the log: {log}");
    assert!(!log.contains(&api.token), "the token in the log: {log}");
    let first = all["operations"].as_array().unwrap().last().unwrap()["operation"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(api.stop(), Some(0));

    // A restarted service still answers the jobs of the one before.
    let api = Service::start_with(&w, &["--log", "json"]);
    let (status, op) = api.call("GET", &format!("/v1/operations/{first}"), None);
    assert_eq!(status, 200, "{op}");
    assert_eq!(
        (&op["kind"], &op["state"]),
        (&json!("install"), &json!("succeeded")),
        "{op}"
    );
    let (status, ops) = api.call("GET", "/v1/operations?limit=1000", None);
    assert_eq!(status, 200);
    assert_eq!(ops, all, "the same operations after a restart");
    let lines = api_log_lines(&api);
    assert!(
        lines.iter().any(|l| l["message"] == "listening"),
        "JSON log lines: {lines:?}"
    );
    assert_eq!(api.stop(), Some(0));
}

fn api_log_lines(api: &Service) -> Vec<Value> {
    api.log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Issue 11: a service killed while an install runs leaves its job `running` in the store; the
/// next service gives it an outcome at start, and `recover` undoes the install.
#[test]
fn issue_11_a_crashed_services_running_job_gets_an_outcome() {
    let (w, reference) = super::world(1111, "#!/bin/sh\nsleep 5\nexit 0\n");
    let api = Service::start(&w);
    let opid = api.begin(
        "POST",
        "/v1/instances",
        Some(&json!({"package": reference, "site": "site"})),
    );
    std::thread::sleep(Duration::from_secs(1));
    let (_, running) = api.call("GET", &format!("/v1/operations/{opid}"), None);
    assert_eq!(running["state"], "running", "{running}");
    api.crash();
    let api = Service::start(&w);
    let (status, op) = api.call("GET", &format!("/v1/operations/{opid}"), None);
    assert_eq!(status, 200, "{op}");
    assert_eq!(op["state"], "failed", "{op}");
    assert!(
        op["error"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("apsctl recover"),
        "{op}"
    );
    assert_eq!(api.stop(), Some(0));
    let run = w.apsctl(&["--json", "recover"]);
    run.ok();
    assert!(
        w.instances().is_empty(),
        "the interrupted install was undone: {run}"
    );
}

/// Issue 11: 200 concurrent reads while an install runs all answer 200; meanwhile the CLI
/// installs and lists on the same home without a "database is locked".
#[test]
fn issue_11_concurrent_reads_and_the_cli_while_an_install_runs() {
    let (w, reference) = super::world(1112, "#!/bin/sh\nsleep 3\nexit 0\n");
    let api = Service::start(&w);
    let opid = api.begin(
        "POST",
        "/v1/instances",
        Some(&json!({"package": reference, "site": "site", "path": "api"})),
    );
    let cli = {
        let cli_home = w.home.clone();
        let reference = reference.clone();
        std::thread::spawn(move || {
            let out = world::command(env!("CARGO_BIN_EXE_apsctl"))
                .arg("--home")
                .arg(&cli_home)
                .args([
                    "--json", "install", &reference, "--site", "site", "--path", "cli",
                ])
                .output()
                .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
    };
    let readers: Vec<_> = (0..200)
        .map(|i| {
            let base = api.base.clone();
            let token = api.token.clone();
            let opid = opid.clone();
            std::thread::spawn(move || {
                let path = if i % 2 == 0 {
                    "/v1/instances".to_owned()
                } else {
                    format!("/v1/operations/{opid}")
                };
                let answer = ureq::get(&format!("{base}{path}"))
                    .set("Authorization", &format!("Bearer {token}"))
                    .timeout(Duration::from_secs(60))
                    .call();
                match answer {
                    Ok(r) => r.status(),
                    Err(ureq::Error::Status(code, _)) => code,
                    Err(e) => panic!("{path}: {e}"),
                }
            })
        })
        .collect();
    let statuses: Vec<u16> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let listed = w.apsctl(&["--json", "instance", "list"]);
    listed.ok();
    let (ok, stderr) = cli.join().unwrap();
    assert!(ok, "the CLI install failed: {stderr}");
    assert!(!stderr.contains("locked"), "{stderr}");
    let op = api.wait(&opid);
    assert_eq!(op["state"], "succeeded", "{op}");
    assert_eq!(w.instances().len(), 2);
    // An instance an operation holds: 423 at once for the next one.
    let id = op["result"]["instance"].as_str().unwrap().to_owned();
    let first = api.begin(
        "POST",
        &format!("/v1/instances/{id}/configure"),
        Some(&json!({"settings": {"title": "one"}})),
    );
    let (status, second) = api.call("POST", &format!("/v1/instances/{id}/disable"), None);
    assert_eq!(
        (status, &second["error"]["kind"]),
        (423, &json!("busy")),
        "{second}"
    );
    let op = api.wait(&first);
    assert_eq!(op["state"], "succeeded", "{op}");
    assert!(!api.log_text().contains("locked"), "{}", api.log_text());
}

/// Issue 11: SIGTERM with an operation running past `--grace`: the service exits 0 at once with
/// the job's outcome recorded (`failed`, saying why), and `recover` undoes the install.
#[test]
fn issue_11_sigterm_past_the_grace_period_leaves_an_outcome() {
    let (w, reference) = super::world(1113, "#!/bin/sh\nsleep 8\nexit 0\n");
    let api = Service::start_with(&w, &["--grace", "1"]);
    let opid = api.begin(
        "POST",
        "/v1/instances",
        Some(&json!({"package": reference, "site": "site"})),
    );
    std::thread::sleep(Duration::from_millis(800));
    // Had it waited for the install, the job would say `succeeded`.
    assert_eq!(api.stop(), Some(0));
    let api = Service::start(&w);
    let (status, op) = api.call("GET", &format!("/v1/operations/{opid}"), None);
    assert_eq!(status, 200, "{op}");
    assert_eq!(op["state"], "failed", "{op}");
    assert!(
        op["error"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("grace period"),
        "{op}"
    );
    assert_eq!(api.stop(), Some(0));
    // Let the orphaned script end, then undo the interrupted install.
    std::thread::sleep(Duration::from_secs(8));
    w.apsctl(&["--json", "recover"]).ok();
    assert!(w.instances().is_empty());
}

/// Issue 11: an operation's progress as server-sent events: `progress` events while it runs
/// (its steps as they come), then `end` with its outcome; an unknown operation is a 404.
#[test]
fn issue_11_operation_progress_streams_as_server_sent_events() {
    use std::io::BufRead as _;
    let (w, reference) = super::world(1114, "#!/bin/sh\nsleep 2\nexit 0\n");
    let api = Service::start(&w);
    let (status, missing) = api.call("GET", "/v1/operations/999/events", None);
    assert_eq!(
        (status, &missing["error"]["kind"]),
        (404, &json!("not_found")),
        "{missing}"
    );
    let opid = api.begin(
        "POST",
        "/v1/instances",
        Some(&json!({"package": reference, "site": "site"})),
    );
    let response = ureq::get(&format!("{}/v1/operations/{opid}/events", api.base))
        .set("Authorization", &format!("Bearer {}", api.token))
        .call()
        .unwrap();
    assert_eq!(response.content_type(), "text/event-stream");
    let mut events: Vec<(String, Value)> = Vec::new();
    let mut name = String::new();
    for line in std::io::BufReader::new(response.into_reader()).lines() {
        let line = line.unwrap();
        if let Some(event) = line.strip_prefix("event: ") {
            name = event.to_owned();
        } else if let Some(data) = line.strip_prefix("data: ") {
            events.push((name.clone(), serde_json::from_str(data).unwrap()));
        }
    }
    let (last, outcome) = events.last().unwrap();
    assert_eq!(last, "end", "{events:?}");
    assert_eq!(outcome["state"], "succeeded", "{outcome}");
    let progress: Vec<&Value> = events
        .iter()
        .filter(|(n, _)| n == "progress")
        .map(|(_, v)| v)
        .collect();
    assert!(!progress.is_empty(), "{events:?}");
    assert!(progress.iter().all(|v| v["state"] == "running"));
    assert!(
        progress
            .iter()
            .any(|v| !v["progress"]["steps"].as_array().unwrap().is_empty()),
        "the steps arrive while it runs: {events:?}"
    );
    // SIGTERM with a stream open: the stream ends (`stopping`), the operation finishes, the
    // service exits 0.
    let id = outcome["instance"].as_str().unwrap().to_owned();
    let opid = api.begin(
        "POST",
        &format!("/v1/instances/{id}/configure"),
        Some(&json!({"settings": {"title": "streamed"}})),
    );
    let url = format!("{}/v1/operations/{opid}/events", api.base);
    let token = api.token.clone();
    let reader = std::thread::spawn(move || {
        let response = ureq::get(&url)
            .set("Authorization", &format!("Bearer {token}"))
            .call()
            .unwrap();
        std::io::BufReader::new(response.into_reader())
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| l.strip_prefix("event: ").map(str::to_owned))
            .collect::<Vec<_>>()
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(api.stop(), Some(0));
    let names = reader.join().unwrap();
    let last = names.last().map(String::as_str);
    assert!(matches!(last, Some("stopping" | "end")), "{names:?}");
    assert_eq!(w.show(&id)["settings"]["title"], "streamed");
}
