//! The service's log: `tracing` events on stderr, as text or JSON lines (`serve --log json`),
//! at the level `APSCTL_LOG` names (default `info`).
//!
//! Main decision: a request is logged by method, path (never the query), status and time; no
//! header and no body is logged, so the bearer token and setting values (secrets) never reach
//! the log. Operations log their id, kind and outcome (`jobs.rs`); the error message an
//! operation gives is the one the CLI prints, which already hides secrets.
use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

/// Installs the log subscriber (once; later calls do nothing).
pub(crate) fn init(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("APSCTL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// Logs one request: method, path, status, milliseconds.
pub(crate) async fn request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let start = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let millis = start.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::error!(%method, path, status, millis, "request");
    } else {
        tracing::debug!(%method, path, status, millis, "request");
    }
    response
}
