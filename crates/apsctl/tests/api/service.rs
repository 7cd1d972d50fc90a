//! A running `apsctl serve` of a test world, and a plain HTTP client for it.
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::world::{self, World};

/// A running `apsctl serve` of a world.
pub struct Service {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The bearer token.
    pub token: String,
    /// Every line it wrote on stderr (its log).
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Service {
    /// Starts it on a free port with its token in `<dir>/api-token` (text log).
    pub fn start(w: &World) -> Self {
        Self::start_with(w, &[])
    }

    /// Starts it with extra `serve` arguments.
    pub fn start_with(w: &World, extra: &[&str]) -> Self {
        let port = aps_test_support::web::free_port();
        let token_file = w.dir.join("api-token");
        let mut child = w
            .apsctl_command(
                &[
                    "serve",
                    "--listen",
                    &format!("127.0.0.1:{port}"),
                    "--token-file",
                    &world::show(&token_file),
                ]
                .iter()
                .chain(extra)
                .copied()
                .collect::<Vec<_>>(),
            )
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // It says where it listens once it does.
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let log = Arc::new(Mutex::new(Vec::new()));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let line = lines.next().expect("serve ended before listening").unwrap();
            log.lock().unwrap().push(line.clone());
            if line.contains("listening on") {
                break;
            }
            assert!(Instant::now() < deadline, "serve did not start");
        }
        let kept = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        let token = fs_err::read_to_string(&token_file)
            .unwrap()
            .trim()
            .to_owned();
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            token,
            log,
        }
    }

    /// A request with the token; returns the status and the JSON body.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.call_as(Some(&self.token), method, path, body)
    }

    pub fn call_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = ureq::request(method, &format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        let result = match body {
            Some(body) => request.send_json(body.clone()),
            None => request.call(),
        };
        let response = match result {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = response.status();
        let text = response.into_string().unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    /// Polls operation `opid` until it is no longer running; returns it.
    pub fn wait(&self, opid: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (status, op) = self.call("GET", &format!("/v1/operations/{opid}"), None);
            assert_eq!(status, 200, "{op}");
            if op["state"] != "running" {
                return op;
            }
            assert!(
                Instant::now() < deadline,
                "operation {opid} still runs: {op}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts an operation (`202`); returns its id.
    pub fn begin(&self, method: &str, path: &str, body: Option<&Value>) -> String {
        let (status, answer) = self.call(method, path, body);
        assert_eq!(status, 202, "{method} {path}: {answer}");
        answer["operation"].as_str().unwrap().to_owned()
    }

    /// Starts an operation and waits for its end.
    pub fn operation(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        self.wait(&self.begin(method, path, body))
    }

    /// SIGTERM, then the exit status.
    pub fn stop(mut self) -> Option<i32> {
        let pid = i32::try_from(self.child.id()).unwrap();
        world::command("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap().code()
    }
}

impl Service {
    /// Uploads a package archive; returns the status and the JSON body.
    pub fn upload(&self, bytes: &[u8]) -> (u16, Value) {
        let response = ureq::post(&format!("{}/v1/packages", self.base))
            .set("Authorization", &format!("Bearer {}", self.token))
            .set("Content-Type", "application/zip")
            .send_bytes(bytes);
        let response = match response {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("upload: {e}"),
        };
        let status = response.status();
        (status, response.into_json::<Value>().unwrap())
    }

    /// SIGKILL (a crash of the service), then waits for it.
    pub fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Its log so far, one string.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

/// `examples/hello` built into `<dir>/hello.app.zip`; returns the archive's path.
pub fn hello_zip(w: &World) -> std::path::PathBuf {
    let zip = w.dir.join("hello.app.zip");
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello");
    w.apsctl(&[
        "package",
        "build",
        &world::show(&source),
        "--out",
        &world::show(&zip),
    ])
    .ok();
    zip
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
