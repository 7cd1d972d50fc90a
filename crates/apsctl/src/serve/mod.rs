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
//!   `--json` result or its error body.
//! - SIGTERM (or SIGINT): stop accepting, wait for the running jobs to end (they finish or roll
//!   back themselves), exit 0.
//!
//! - The backup schedules that are due run every minute, as jobs.
//!
//! Known gaps (first slice of issue 11): jobs and their outcomes are kept in memory, not in the
//! store, so a restarted service forgets them (the journal keeps every operation's outcome); no
//! package show, global settings, site add, backup/restore/migrate endpoints yet; no web UI; logs
//! are not structured.
mod api;
mod jobs;

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
}

/// The service's shared state.
pub(crate) struct App {
    /// The operations' context.
    pub ctx: aps_ops::Context,
    /// The bearer token.
    token: String,
    /// The jobs.
    pub jobs: jobs::Jobs,
}

/// Runs the service until SIGTERM.
pub fn run(ctx: aps_ops::Context, opts: &ServeOptions, out: &Printer) -> anyhow::Result<()> {
    let token = token(&opts.token_file, out)?;
    let app = Arc::new(App {
        ctx,
        token,
        jobs: jobs::Jobs::default(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the service's runtime")?;
    runtime.block_on(serve(app, &opts.listen, out))
}

async fn serve(app: Arc<App>, listen: &str, out: &Printer) -> anyhow::Result<()> {
    let v1 = api::v1()
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            require_token,
        ))
        .with_state(app.clone());
    let router = axum::Router::new()
        .route("/openapi.json", axum::routing::get(api::openapi))
        .merge(v1);
    tokio::spawn(run_schedules(app.clone()));
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    if let Some(path) = listen.strip_prefix("unix:") {
        let _ = fs_err::remove_file(path);
        let listener = tokio::net::UnixListener::bind(path)
            .with_context(|| format!("cannot listen on `{listen}`"))?;
        out.step(&format!("listening on {listen}"));
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await?;
    } else {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on `{listen}`"))?;
        out.step(&format!("listening on {}", listener.local_addr()?));
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await?;
    }
    out.step("stopping: waiting for the running operations");
    app.jobs.wait_idle().await;
    Ok(())
}

/// Every minute, the backup schedules that are due (what `apsctl schedule run` does from cron),
/// each as a job of its own kind `schedule`.
async fn run_schedules(app: Arc<App>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        jobs::spawn(&app, "schedule", None, |ctx, reporter| {
            let runs = aps_ops::schedule::run(ctx, reporter)?;
            serde_json::to_value(&runs).map_err(|e| aps_ops::Error::Failed(e.to_string()))
        });
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
    let token: String = (0..32).fold(String::new(), |mut text, _| {
        let _ = std::fmt::Write::write_fmt(&mut text, format_args!("{:02x}", rand::random::<u8>()));
        text
    });
    let mut written = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)?;
    writeln!(written, "{token}")?;
    out.step(&format!("a new bearer token is in `{}`", file.display()));
    Ok(token)
}

/// `401` unless the request carries the bearer token.
async fn require_token(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if constant_time_eq(given.as_bytes(), app.token.as_bytes()) {
        next.run(request).await
    } else {
        api::error_response(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid `Authorization: Bearer <token>` header is needed",
            &[],
        )
        .into_response()
    }
}

/// Compares two byte strings in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
