//! `apsctl serve`: the HTTP API for control panels (`../shared/aps/API.md`), a thin edge over
//! the same operations layer as the CLI.
//!
//! Main decisions:
//! - axum on tokio; the operations stay synchronous and run on tokio's blocking pool, sharing one
//!   [`aps_ops::Context`] (its store pool serves concurrent reads; each operation takes its own
//!   instance lock, so the CLI and the service can work on one home at the same time).
//! - Every `/v1/…` request needs the bearer token (compared in constant time); `/openapi.json` is
//!   public. The token file is created with a random token (mode 0600) when missing.
//! - Operations that change an instance are jobs (`jobs.rs`): `202 {"operation": OPID}` at once,
//!   then `GET /v1/operations/OPID` with the steps and progress the operation reports, and its
//!   `--json` result or its error body; `GET /v1/operations/OPID/events` streams the same object
//!   as server-sent events while it changes.
//! - SIGTERM (or SIGINT): stop accepting, wait for the running jobs to end (they finish or roll
//!   back themselves) for up to `--grace` seconds, exit 0. A job still running then gets its
//!   `failed` outcome saying so, and the process exits with it unfinished: its journal is
//!   `recover`'s to finish or undo (systemd's stop kills what its scripts left).
//! - The backup schedules that are due run every minute, as jobs (one at a time).
//! - One service per home (`<home>/locks/serve.lock`). At start it gives the jobs a dead service
//!   left `running` their `failed` outcome, then recovers interrupted operations as `apsctl
//!   recover` does (an operation whose lock a live process holds is left alone).
//! - Logs go through `tracing` (text, or JSON lines with `--log json`): one line per request
//!   (method, path without the query, status, time; at `debug`, or `error` for a 5xx) and per
//!   operation (`info`); no header, body or
//!   setting value is ever logged, so neither the token nor a secret reaches the log.
//! - The web UI (`ui/`) is served by the same process at `/`.
//!
//! Known gaps: no TLS of its own (it listens on loopback or a unix socket by default; put a
//! reverse proxy in front for remote panels, which is also why the session cookie has no
//! `Secure` flag); an operation still
//! running past `--grace` is left to `recover` at the next start rather than rolled back by the
//! stopping service.
mod api;
mod cache;
mod jobs;
mod log;
mod start;
mod ui;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use aps_ops::Reporter as _;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::output::Printer;

/// What `serve` needs.
#[derive(Debug)]
pub struct ServeOptions {
    /// `host:port` or `unix:/path`.
    pub listen: String,
    /// The bearer token's file.
    pub token_file: PathBuf,
    /// Log JSON lines instead of text.
    pub json_log: bool,
    /// How long SIGTERM waits for running operations.
    pub grace: std::time::Duration,
}

/// The service's shared state.
pub(crate) struct App {
    /// The operations' context.
    pub ctx: aps_ops::Context,
    /// The bearer token.
    token: String,
    /// The jobs.
    pub jobs: jobs::Jobs,
    /// The web UI's sessions.
    pub sessions: ui::Sessions,
    /// Hot list reads.
    pub cache: cache::ReadCache,
}

/// The `OpenAPI` document of the API, as `/openapi.json` answers it.
pub fn openapi_json() -> anyhow::Result<String> {
    api::openapi_text()
}

/// Runs `f` on tokio's blocking pool with the service's state: the operations and the store are
/// synchronous. A task that panicked is an internal error.
pub(crate) async fn blocking<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&Arc<App>) -> Result<T, aps_ops::Error> + Send + 'static,
) -> Result<T, aps_ops::Error> {
    let app = Arc::clone(app);
    tokio::task::spawn_blocking(move || f(&app))
        .await
        .map_err(|e| aps_ops::Error::Fs(std::io::Error::other(format!("the service: {e}"))))?
}

/// [`blocking`] for work that needs the operations' context alone (reads, checks).
pub(crate) async fn with_context<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&aps_ops::Context) -> Result<T, aps_ops::Error> + Send + 'static,
) -> Result<T, aps_ops::Error> {
    blocking(app, move |app| f(&app.ctx)).await
}

/// Runs the service until SIGTERM.
pub fn run(ctx: aps_ops::Context, opts: &ServeOptions, out: &Printer) -> anyhow::Result<()> {
    log::init(opts.json_log);
    let _service = aps_ops::jobs::service_lock(&ctx)?;
    let token = token(&opts.token_file, out)?;
    // A service that died left its running jobs without an outcome: they get one now (their
    // operations are the journal's, which `recover` finishes).
    let abandoned = aps_ops::jobs::abandon_running(
        &ctx,
        &api::error_body(&aps_ops::Error::Failed(
            "the service stopped before this operation ended; `apsctl recover` finishes or undoes it"
                .to_owned(),
        )),
    )?;
    if abandoned > 0 {
        tracing::warn!(abandoned, "operations of a stopped service marked failed");
    }
    // Then what they (or a crashed CLI) left half done is finished or undone, as `apsctl
    // recover` does; an operation whose lock a live process holds is left alone.
    match aps_ops::recover::recover(&ctx, &aps_ops::report::Silent) {
        Ok(recovered) => {
            for r in &recovered {
                tracing::warn!(operation = r.operation, kind = %r.kind, instance = ?r.instance, outcome = %r.outcome, "recovered an interrupted operation");
            }
        }
        Err(e) => {
            tracing::error!(error = %aps_ops::error::chain(&e), "cannot recover interrupted operations");
        }
    }
    let cache = cache::ReadCache::new(&ctx)?;
    let app = Arc::new(App {
        token,
        jobs: jobs::Jobs::default(),
        sessions: ui::Sessions::default(),
        cache,
        ctx,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the service's runtime")?;
    let served = runtime.block_on(serve(app, &opts.listen, opts.grace, out));
    // Operations still running past the grace period have their outcome already; their threads
    // are not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    served
}

async fn serve(
    app: Arc<App>,
    listen: &str,
    grace: std::time::Duration,
    out: &Printer,
) -> anyhow::Result<()> {
    let v1 = api::v1()
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            require_token,
        ))
        .with_state(app.clone());
    let router = axum::Router::new()
        .route("/openapi.json", axum::routing::get(api::openapi))
        .merge(v1)
        .merge(ui::router().with_state(app.clone()))
        .fallback(fallback)
        .with_state(app.clone())
        .layer(axum::middleware::from_fn(log::request));
    tokio::spawn(run_schedules(app.clone()));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot handle SIGTERM")?;
    let stopping = Arc::clone(&app);
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        // No job starts any more, and progress streams end, so that open connections close.
        stopping.jobs.close();
    };
    if let Some(path) = listen.strip_prefix("unix:") {
        let _ = fs_err::remove_file(path);
        let listener = tokio::net::UnixListener::bind(path)
            .with_context(|| format!("cannot listen on `{listen}`"))?;
        out.step(&format!("listening on {listen}"));
        tracing::info!(listen, "listening");
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await?;
    } else {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on `{listen}`"))?;
        let addr = listener.local_addr()?;
        out.step(&format!("listening on {addr}"));
        tracing::info!(listen = %addr, "listening");
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await?;
    }
    app.jobs.close();
    let running = app.jobs.count();
    out.step(&format!(
        "stopping: waiting for the {running} running operations"
    ));
    tracing::info!(running, "stopping: waiting for the running operations");
    if tokio::time::timeout(grace, app.jobs.wait_idle())
        .await
        .is_err()
    {
        let seconds = grace.as_secs();
        let message = format!(
            "the service stopped after its grace period of {seconds} s while this operation ran; `apsctl recover` finishes or undoes it"
        );
        let body = api::error_body(&aps_ops::Error::Failed(message));
        let left = jobs::abandon(&app, &body);
        tracing::warn!(
            left,
            "stopped with operations still running past the grace period"
        );
        out.step(&format!(
            "stopping: {left} operations still ran after {seconds} s; `apsctl recover` finishes them"
        ));
        return Ok(());
    }
    tracing::info!("stopped");
    Ok(())
}

/// Every minute, the backup schedules that are due (what `apsctl schedule run` does from cron),
/// as one job of kind `schedule` when any is due.
async fn run_schedules(app: Arc<App>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        // A run longer than the tick is not joined by a second one.
        if app.jobs.runs_kind("schedule") {
            continue;
        }
        match blocking(&app, |app| aps_ops::schedule::due_count(&app.ctx)).await {
            Ok(0) => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %aps_ops::error::chain(&e), "cannot read the backup schedules");
                continue;
            }
        }
        let started = jobs::spawn(&app, "schedule", None, |ctx, reporter| {
            let runs = aps_ops::schedule::run(ctx, reporter)?;
            serde_json::to_value(&runs).map_err(|e| aps_ops::Error::Failed(e.to_string()))
        })
        .await;
        if let Err(e) = started {
            tracing::error!(error = %aps_ops::error::chain(&e), "cannot start the due backup schedules");
        }
    }
}

/// The bearer token from `file`, created (random, mode 0600) when missing.
fn token(file: &Path, out: &Printer) -> anyhow::Result<String> {
    use fs_err::os::unix::fs::OpenOptionsExt as _;
    use std::io::Write as _;
    match fs_err::read_to_string(file) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
        Ok(_) => anyhow::bail!("token file `{}` is empty", file.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let token = random_hex(32);
    let mut written = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)?;
    writeln!(written, "{token}")?;
    out.step(&format!("a new bearer token is in `{}`", file.display()));
    Ok(token)
}

/// Whether `request` carries the bearer token.
fn authorized(app: &App, request: &Request) -> bool {
    let given = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, token)| token.trim());
    constant_time_eq(given.as_bytes(), app.token.as_bytes())
}

fn unauthorized() -> Response {
    let mut response = api::error_response(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "a valid `Authorization: Bearer <token>` header is needed",
    )
    .into_response();
    response.headers_mut().insert(
        axum::http::header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer"),
    );
    response
}

/// `401` unless the request carries the bearer token.
async fn require_token(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    if authorized(&app, &request) {
        next.run(request).await
    } else {
        unauthorized()
    }
}

/// A path no route has: under `/v1`, `401` without the token (as every `/v1` request) and a JSON
/// `404` with it; elsewhere a plain `404`.
async fn fallback(State(app): State<Arc<App>>, request: Request) -> Response {
    let path = request.uri().path();
    if path != "/v1" && !path.starts_with("/v1/") {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    if !authorized(&app, &request) {
        return unauthorized();
    }
    let message = format!("no endpoint `{} {path}`", request.method());
    api::error_response(StatusCode::NOT_FOUND, "not_found", &message).into_response()
}

/// `bytes` random bytes as lowercase hex (tokens, session ids).
pub(crate) fn random_hex(bytes: usize) -> String {
    (0..bytes).fold(String::new(), |mut text, _| {
        let _ = std::fmt::Write::write_fmt(&mut text, format_args!("{:02x}", rand::random::<u8>()));
        text
    })
}

/// Compares two byte strings in time independent of where they differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
